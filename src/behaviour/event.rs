//! What the [`Behaviour`](super::Behaviour) reports: its [`Event`]s, why a peer left the view
//! ([`RemovalReason`]) and what [`Behaviour::add_address`](super::Behaviour::add_address) did.

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;

use crate::{handler::ShuffleError, view::ShuffleId};

/// Why a peer left the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalReason {
    /// It was the target of one of our shuffles: our link to it turned into its link to us.
    /// If the shuffle then fails ([`Event::ShuffleFailed`]), it is not put back: that is how
    /// dead peers leave views. (Under a [`Defence`](crate::Defence) the target may stay in the
    /// view while the shuffle runs; it leaves, with this reason, if the shuffle fails.)
    ShuffleTarget,
    /// It was sent to a shuffle partner and replaced by an entry received from it.
    Replaced,
    /// [`Behaviour::remove_peer`](super::Behaviour::remove_peer) removed it.
    Manual,
}

impl RemovalReason {
    /// A short, stable name: `shuffle_target`, `replaced` or `manual` (for logs, metrics and
    /// JSON output).
    pub fn as_str(&self) -> &'static str {
        match self {
            RemovalReason::ShuffleTarget => "shuffle_target",
            RemovalReason::Replaced => "replaced",
            RemovalReason::Manual => "manual",
        }
    }
}

impl std::fmt::Display for RemovalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Behaviour::add_address`](super::Behaviour::add_address) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddAddressResult {
    /// The peer entered the view.
    PeerAdded,
    /// The peer was in the view; the address was added to its entry.
    AddressAdded,
    /// The peer was in the view with this address (or its entry is full of addresses).
    Unchanged,
    /// The peer is not in the view and the view is full.
    ViewFull,
    /// The peer is the local peer, or the address ends in `/p2p/` of another peer.
    Rejected,
}

/// Events of the Cyclon [`Behaviour`](super::Behaviour).
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A peer entered the view.
    PeerAdded {
        /// The peer.
        peer_id: PeerId,
        /// Its addresses, as stored in the view.
        addresses: Vec<Multiaddr>,
        /// Whether the addresses are verified: they come from the peer's own signed peer record
        /// (received over `/cyclon/1.1.0`, signature checked), so the peer itself says it
        /// listens there. A peer store or a Kademlia routing table may keep verified addresses
        /// as the peer's own.
        ///
        /// Unverified addresses are what some peer said (an entry from a `/cyclon/1.0.0` peer,
        /// or an unsigned one), or what the application added
        /// ([`Behaviour::add_address`](super::Behaviour::add_address)). Anyone may have put them next to this peer id: use
        /// them as dial hints (the connection's handshake still authenticates the peer id), but
        /// do not hand them on as the peer's addresses, e.g. in a Kademlia reply. With
        /// [`Config::with_require_signed_records`](crate::Config::with_require_signed_records) the network can no longer add unverified
        /// addresses at all.
        verified: bool,
    },
    /// A peer left the view.
    PeerRemoved {
        /// The peer.
        peer_id: PeerId,
        /// Why it left.
        reason: RemovalReason,
    },
    /// A shuffle we initiated completed.
    ShuffleCompleted {
        /// The shuffle.
        id: ShuffleId,
        /// The peer we shuffled with.
        peer_id: PeerId,
        /// Entries sent, our own fresh entry included.
        sent: usize,
        /// Valid entries received.
        received: usize,
    },
    /// A shuffle we initiated failed; its target stays out of the view.
    ShuffleFailed {
        /// The shuffle.
        id: ShuffleId,
        /// The peer we tried to shuffle with.
        peer_id: PeerId,
        /// Why it failed.
        error: ShuffleError,
    },
    /// A neighbour link is up: a connection to this peer stays open
    /// ([`Config::with_neighbours`](crate::Config::with_neighbours)).
    NeighbourUp {
        /// The neighbour.
        peer_id: PeerId,
    },
    /// A neighbour link is down: its last stream or the connection it stood on closed, the
    /// peer failed a shuffle, or a peer with no neighbour at all took its place. Another peer
    /// of the view takes its place at a later round.
    NeighbourDown {
        /// The former neighbour.
        peer_id: PeerId,
    },
    /// We answered a shuffle another peer initiated.
    ShuffleAnswered {
        /// The initiator.
        peer_id: PeerId,
        /// Valid entries received.
        received: usize,
        /// Entries sent back.
        sent: usize,
    },
}
