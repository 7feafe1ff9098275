//! What the SecureCyclon behaviour reports: its [`Event`]s, why an exchange failed
//! ([`ExchangeError`], [`StreamError`]) and its cumulative counts ([`Stats`]).

use std::io;

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;

use crate::secure::{
    InvalidItems, OpenError, ProofKind, RefuseReason, Role, StartExchangeError, wire::WireError,
};

/// What the SecureCyclon [`Behaviour`](super::Behaviour) reports to the swarm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A descriptor of `peer_id` entered the view's holdings (it had none): the node can now
    /// contact it. Its `addresses` were signed by `peer_id` itself (every descriptor is
    /// verified) and are reported to the swarm too.
    PeerAdded {
        /// The descriptor's creator.
        peer_id: PeerId,
        /// Where it said it can be reached.
        addresses: Vec<Multiaddr>,
    },
    /// The view no longer holds a descriptor of `peer_id` (handed on, redeemed, expired,
    /// displaced, or its creator blacklisted).
    PeerRemoved {
        /// The creator.
        peer_id: PeerId,
    },
    /// An exchange this node opened ended as the protocol says (the responder's `Accept` and
    /// the steps that follow).
    ExchangeCompleted {
        /// The responder.
        peer_id: PeerId,
        /// Descriptors received (transfers taken or not).
        received: usize,
        /// Descriptors handed on, the fresh one included.
        given: usize,
    },
    /// An exchange another node opened ended as the protocol says.
    ExchangeAnswered {
        /// The initiator.
        peer_id: PeerId,
        /// Descriptors received, the initiator's fresh one included.
        received: usize,
        /// Descriptors handed on.
        given: usize,
    },
    /// This node refused an exchange another node opened (the core's decision).
    ExchangeRefused {
        /// The initiator.
        peer_id: PeerId,
        /// Why.
        reason: RefuseReason,
    },
    /// An exchange did not end as the protocol says: what was signed stays signed.
    ExchangeFailed {
        /// The partner.
        peer_id: PeerId,
        /// Which side the local node was.
        role: Role,
        /// Why.
        error: ExchangeError,
    },
    /// No exchange could start this round (the core's answer); nothing was sent.
    RoundSkipped {
        /// Why.
        reason: StartExchangeError,
    },
    /// This node built a proof that `offender` broke the rules (and blacklisted it).
    ProofFound {
        /// Who signed the contradiction.
        offender: PeerId,
        /// What it contradicts.
        kind: ProofKind,
    },
    /// `peer_id` is blacklisted from now on: by a proof this node found or received.
    Blacklisted {
        /// The offender.
        peer_id: PeerId,
    },
    /// `peer_id` sent items the core or the codec dropped as invalid (never a reason to
    /// blacklist it: only a proof is).
    InvalidItems {
        /// The sender.
        peer_id: PeerId,
        /// By reason.
        items: InvalidItems,
    },
}

/// Why a stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The peer does not speak `/cyclon/2.0.0` (under the configured prefix).
    #[error("the peer does not support /cyclon/2.0.0")]
    UnsupportedProtocol,
    /// The stream, or its negotiation, outlived the request timeout.
    #[error("the stream timed out")]
    Timeout,
    /// The peer closed the stream before the exchange ended.
    #[error("the stream ended before the exchange did")]
    Closed,
    /// The local side dropped the stream (the connection is going away).
    #[error("the stream was dropped locally")]
    Cancelled,
    /// Too many outbound streams on the connection.
    #[error("too many streams on the connection")]
    Capacity,
    /// A length prefix announcing more bytes than the maximum message size.
    #[error("a message of {0} bytes, over the limit")]
    TooLarge(usize),
    /// A length prefix that is not a minimal varint.
    #[error("a malformed length prefix")]
    BadLengthPrefix,
    /// A frame that does not decode (or not canonically).
    #[error("an undecodable message: {0}")]
    Wire(WireError),
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(io::Error),
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// No connection to the partner could be made (or no address was known).
    #[error("could not connect to the peer: {0}")]
    Dial(String),
    /// The connection closed during the exchange.
    #[error("the connection closed during the exchange")]
    ConnectionClosed,
    /// The exchange's stream failed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The exchange outlived its deadline (the request timeout, from selection).
    #[error("the exchange timed out")]
    Timeout,
    /// The responder refused it.
    #[error("the peer refused the exchange: {0:?}")]
    Refused(RefuseReason),
    /// The partner sent a message the core found invalid (it ended the exchange).
    #[error("the peer sent an invalid message: {}", .0.as_str())]
    Invalid(crate::secure::Invalid),
    /// The core could not open it (its mint clock moved on, or signing failed).
    #[error("the exchange could not be opened: {0}")]
    Open(OpenError),
}

/// Cumulative counts of one behaviour, since it was created. The core's own counts are in
/// [`SecureCounters`](crate::secure::SecureCounters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Rounds the timer started (or [`Behaviour::exchange_now`](super::Behaviour::exchange_now)).
    pub rounds: u64,
    /// Rounds in which no exchange started (the core said why, or no address to advertise).
    pub rounds_skipped: u64,
    /// Exchanges selected (a stream was asked for).
    pub exchanges_started: u64,
    /// Exchanges this node opened that completed.
    pub exchanges_completed: u64,
    /// Exchanges other nodes opened that completed.
    pub exchanges_answered: u64,
    /// Exchanges other nodes opened that this node refused.
    pub exchanges_refused: u64,
    /// Exchanges this node opened that the responder refused.
    pub refused_by_peer: u64,
    /// Exchanges that failed, either role (refusals by the peer included).
    pub exchanges_failed: u64,
    /// Inbound streams refused for want of capacity.
    pub inbound_refused: u64,
    /// Items dropped as invalid, by reason (the codec's and the core's).
    pub invalid: InvalidItems,
    /// Proofs this node built.
    pub proofs_found: u64,
    /// Offenders blacklisted.
    pub blacklisted: u64,
    /// Proof pushes sent whole.
    pub pushes_sent: u64,
    /// Proof pushes that failed (no connection, stream error).
    pub pushes_failed: u64,
    /// Proof pushes received.
    pub pushes_received: u64,
}
