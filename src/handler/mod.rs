//! The [`ConnectionHandler`] of Cyclon: runs the shuffle streams of one connection, and the
//! [`ShuffleError`] a shuffle ends with when it fails.
//!
//! Streams speak `/cyclon/1.1.0` or `/cyclon/1.0.0`, whichever was negotiated: the handler
//! listens on both, and offers `/cyclon/1.1.0` first when it opens a stream. Once the remote
//! has answered an outbound stream with `/cyclon/1.0.0`, later outbound streams on the same
//! connection offer only that (no second refusal round trip). Entries are encoded for the
//! stream's version, and received ones decoded and verified for it.
//!
//! Outbound shuffles run one at a time per connection (the remote answers at most one inbound
//! shuffle per connection at a time). Inbound shuffles are bounded per connection and over all
//! connections; streams beyond the bounds are refused. Every step of a stream runs under the
//! request timeout.
//!
//! What passes between the behaviour and a handler ([`InEvent`], [`OutEvent`]) is opaque
//! outside the crate: the `NetworkBehaviour` trait makes the types reachable, but there is
//! nothing in them for a user to build or match.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::FutureExt;
use futures_bounded::{Delay, FuturesMap, FuturesSet, Timeout};
use libp2p_core::upgrade::NegotiationError;
use libp2p_swarm::{
    ConnectionHandler, ConnectionHandlerEvent, Stream, StreamUpgradeError, SubstreamProtocol,
    handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound},
};

mod neighbour;

use self::neighbour::{NeighbourEvent, NeighbourStreams};
use crate::{
    config::Config,
    protocol::{
        self, EntryLimits, FramedStream, InvalidEntries, ProtocolId, StreamKind, Version,
        ViewEntry, proto,
    },
    upgrade::Upgrade,
    view::ShuffleId,
};

/// Why a shuffle did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShuffleError {
    /// No connection to the target could be established.
    #[error("could not connect to the peer: {0}")]
    Dial(String),
    /// The local swarm refused or aborted the dial to the target (`DialError::Denied`, e.g. by
    /// libp2p's `connection_limits`, or `DialError::Aborted`): the shuffle was never sent and
    /// nothing is known of the target, which is back in the view (unlike every other error).
    #[error("the local swarm refused the dial: {0}")]
    DialRefusedLocally(String),
    /// The target speaks neither `/cyclon/1.1.0` nor `/cyclon/1.0.0` (nor the one this peer
    /// is configured to speak).
    #[error("the peer does not support the Cyclon protocol")]
    UnsupportedProtocol,
    /// Opening the stream or the exchange took longer than allowed.
    #[error("the shuffle timed out")]
    Timeout,
    /// The connection closed before the exchange completed.
    #[error("the connection closed during the shuffle")]
    ConnectionClosed,
    /// The stream failed, or the peer sent something that is not a valid message.
    #[error("stream error: {0}")]
    Io(#[from] io::Error),
}

impl ShuffleError {
    /// A short, stable name for the kind of error (used as a metrics label).
    pub fn kind(&self) -> &'static str {
        match self {
            ShuffleError::Dial(_) => "dial",
            ShuffleError::DialRefusedLocally(_) => "refused_locally",
            ShuffleError::UnsupportedProtocol => "unsupported_protocol",
            ShuffleError::Timeout => "timeout",
            ShuffleError::ConnectionClosed => "connection_closed",
            ShuffleError::Io(_) => "io",
        }
    }

    /// The error of a stream step that ran under the request timeout.
    fn from_step<T>(result: Result<io::Result<T>, Timeout>) -> Result<T, ShuffleError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(ShuffleError::from_io(error)),
            Err(_) => Err(ShuffleError::Timeout),
        }
    }

    /// The error of a failed stream read or write. With optimistic negotiation
    /// (multistream-select `V1Lazy`, a swarm setting) the request is written before the peer
    /// confirms the protocol, so a peer that does not speak it shows up as a failed read.
    fn from_io(error: io::Error) -> ShuffleError {
        let refused = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<NegotiationError>())
            .is_some_and(|inner| matches!(inner, NegotiationError::Failed));
        if refused {
            ShuffleError::UnsupportedProtocol
        } else {
            ShuffleError::Io(error)
        }
    }
}

/// Identifies an inbound shuffle on one connection, until it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct InboundId(u64);

/// A shuffle request to send on one connection (opaque). Its entries are encoded once the
/// stream's version is known.
#[derive(Debug)]
pub struct OutboundShuffle {
    pub(crate) id: ShuffleId,
    entries: Vec<ViewEntry>,
}

impl OutboundShuffle {
    /// Shuffle `id` sending `request`.
    pub(crate) fn new(id: ShuffleId, request: Vec<ViewEntry>) -> Self {
        Self {
            id,
            entries: request,
        }
    }
}

/// A message from the [`Behaviour`](crate::Behaviour) to a [`Handler`] (opaque).
#[derive(Debug)]
pub struct InEvent(pub(crate) Command);

/// What the behaviour asks of a handler.
#[derive(Debug)]
pub(crate) enum Command {
    /// Run this shuffle on the connection.
    Shuffle(OutboundShuffle),
    /// The reply to an inbound shuffle.
    Answer {
        id: InboundId,
        entries: Vec<ViewEntry>,
    },
    /// Refuse an inbound shuffle: reset its stream without an answer.
    Refuse { id: InboundId },
    /// Ask the remote to be a neighbour (with priority: we have none).
    OpenNeighbour { priority: bool },
    /// The decision on the remote's neighbour request `id`.
    AnswerNeighbour { id: InboundId, accept: bool },
    /// End every neighbour link of this connection.
    CloseNeighbours,
    /// Report [`HandlerEvent::Idle`] once no Cyclon stream runs on this connection.
    ReportIdle,
}

/// What an outbound stream is opened for (reachable through the `NetworkBehaviour` trait's
/// handler types, opaque).
#[derive(Debug)]
pub enum Opening {
    /// A shuffle.
    Shuffle(OutboundShuffle),
    /// A neighbour request, with priority or not.
    Neighbour(bool),
}

/// A message from a [`Handler`] to the [`Behaviour`](crate::Behaviour) (opaque).
#[derive(Debug)]
pub struct OutEvent(pub(crate) HandlerEvent);

/// What a handler tells the behaviour.
#[derive(Debug)]
pub(crate) enum HandlerEvent {
    /// The remote answered our shuffle `id` over `version` with these valid entries.
    ShuffleResponse {
        id: ShuffleId,
        entries: Vec<ViewEntry>,
        invalid: InvalidEntries,
        version: Version,
    },
    /// Our shuffle `id` failed.
    ShuffleFailed { id: ShuffleId, error: ShuffleError },
    /// The remote asks us to shuffle over `version`; the behaviour answers with
    /// [`Command::Answer`] or [`Command::Refuse`].
    InboundRequest {
        id: InboundId,
        entries: Vec<ViewEntry>,
        invalid: InvalidEntries,
        version: Version,
    },
    /// An inbound shuffle stream failed (bad message, timeout, IO error).
    InboundFailed { error: ShuffleError },
    /// An inbound shuffle stream was refused because too many were in flight.
    InboundRefused,
    /// The remote asks to be a neighbour (with priority: it has none); the behaviour answers
    /// with [`Command::AnswerNeighbour`].
    NeighbourRequest { id: InboundId, priority: bool },
    /// The remote answered our neighbour request.
    NeighbourAnswered { accepted: bool },
    /// A neighbour link's stream on this connection ended.
    NeighbourClosed,
    /// No Cyclon stream runs on this connection any more (after [`Command::ReportIdle`]).
    Idle,
}

/// Bounds the inbound shuffles in flight over all connections of one behaviour.
#[derive(Debug, Clone)]
pub(crate) struct InboundLimit {
    in_flight: Arc<AtomicUsize>,
    max: usize,
}

impl InboundLimit {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            in_flight: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    pub(crate) fn try_acquire(&self) -> Option<InboundPermit> {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| InboundPermit(self.in_flight.clone()))
    }
}

/// One slot of an [`InboundLimit`], released on drop.
#[derive(Debug)]
pub(crate) struct InboundPermit(Arc<AtomicUsize>);

impl Drop for InboundPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Settings a handler needs, taken from the [`Config`], and the bound on inbound shuffles
/// that all handlers of one behaviour share.
#[derive(Debug, Clone)]
pub(crate) struct HandlerSettings {
    request_timeout: Duration,
    max_message_size: usize,
    max_inbound_streams: usize,
    limits: EntryLimits,
    inbound_limit: InboundLimit,
    /// The protocol names spoken, preferred first.
    offered: Arc<[ProtocolId]>,
    /// The name of `/cyclon/1.0.0` alone, for a remote that picked it once.
    v1_0_only: Arc<[ProtocolId]>,
    /// The neighbour protocol's name, when neighbours are on.
    neighbour: Option<ProtocolId>,
}

impl HandlerSettings {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            request_timeout: config.request_timeout,
            max_message_size: config.max_message_size(),
            max_inbound_streams: config.max_inbound_streams_per_connection,
            limits: config.entry_limits(),
            inbound_limit: InboundLimit::new(config.max_inbound_streams),
            offered: config.protocol_ids().into(),
            v1_0_only: config
                .protocol_ids()
                .into_iter()
                .filter(|id| id.version() == Some(Version::V1_0))
                .collect(),
            neighbour: config.neighbour_protocol_id(),
        }
    }
}

/// An inbound stream whose request was read, waiting for the behaviour's answer.
#[derive(Debug)]
struct AwaitingAnswer {
    framed: FramedStream<Stream>,
    version: Version,
    permit: InboundPermit,
}

type InboundRead = (AwaitingAnswer, Vec<proto::Entry>);

/// The [`ConnectionHandler`] of Cyclon (reachable through the `NetworkBehaviour` trait; not
/// meant to be used on its own).
pub struct Handler {
    settings: HandlerSettings,
    /// Shuffles waiting for the connection's single outbound slot.
    queued: VecDeque<OutboundShuffle>,
    /// Whether a stream was requested and not yet negotiated.
    stream_requested: bool,
    /// The versions outbound streams offer: the configured ones, until the remote picks
    /// `/cyclon/1.0.0` from them.
    outbound_versions: Arc<[ProtocolId]>,
    outbound: FuturesMap<ShuffleId, (Version, io::Result<Vec<proto::Entry>>)>,
    reading: FuturesMap<InboundId, io::Result<InboundRead>>,
    awaiting_answer: HashMap<InboundId, AwaitingAnswer>,
    writing: FuturesSet<io::Result<()>>,
    next_inbound_id: u64,
    neighbours: NeighbourStreams,
    /// Report [`HandlerEvent::Idle`] when nothing runs.
    report_idle: bool,
    events: VecDeque<HandlerEvent>,
}

impl Handler {
    /// A handler that runs `preloaded` shuffles at once, and asks the remote to be a
    /// neighbour if `neighbour` says so (with priority or not).
    pub(crate) fn new(
        settings: HandlerSettings,
        preloaded: Vec<OutboundShuffle>,
        neighbour: Option<bool>,
    ) -> Self {
        let timeout = settings.request_timeout;
        let inbound = settings.max_inbound_streams;
        let mut neighbours = NeighbourStreams::new(timeout);
        if let Some(priority) = neighbour {
            neighbours.open(priority);
        }
        Self {
            queued: preloaded.into(),
            stream_requested: false,
            outbound_versions: Arc::clone(&settings.offered),
            outbound: FuturesMap::new(move || Delay::futures_timer(timeout), 1),
            reading: FuturesMap::new(move || Delay::futures_timer(timeout), inbound),
            awaiting_answer: HashMap::new(),
            writing: FuturesSet::new(move || Delay::futures_timer(timeout), inbound),
            next_inbound_id: 0,
            neighbours,
            report_idle: false,
            events: VecDeque::new(),
            settings,
        }
    }

    fn inbound_in_flight(&self) -> usize {
        self.reading.len() + self.awaiting_answer.len() + self.writing.len()
    }

    fn next_inbound_id(&mut self) -> InboundId {
        let id = InboundId(self.next_inbound_id);
        self.next_inbound_id += 1;
        id
    }

    fn on_inbound_stream(&mut self, stream: Stream, version: Version) {
        let permit = if self.inbound_in_flight() < self.settings.max_inbound_streams {
            self.settings.inbound_limit.try_acquire()
        } else {
            None
        };
        let Some(permit) = permit else {
            tracing::debug!("refusing an inbound shuffle stream: too many in flight");
            drop(stream);
            self.events.push_back(HandlerEvent::InboundRefused);
            return;
        };
        let id = self.next_inbound_id();
        let max_size = self.settings.max_message_size;
        let read = protocol::read_request(stream, max_size).map(move |result| {
            result.map(|(framed, entries)| {
                let awaiting = AwaitingAnswer {
                    framed,
                    version,
                    permit,
                };
                (awaiting, entries)
            })
        });
        if self.reading.try_push(id, read).is_err() {
            // Unreachable: the count was checked above.
            self.events.push_back(HandlerEvent::InboundRefused);
        }
    }

    fn on_outbound_stream(&mut self, stream: Stream, version: Version, shuffle: OutboundShuffle) {
        self.stream_requested = false;
        if version == Version::V1_0 {
            self.outbound_versions = Arc::clone(&self.settings.v1_0_only);
        }
        let max_addresses = self.settings.limits.max_addresses;
        let entries = protocol::encode_entries(&shuffle.entries, version, max_addresses);
        let exchange = protocol::request_shuffle(stream, entries, self.settings.max_message_size)
            .map(move |result| (version, result));
        if self.outbound.try_push(shuffle.id, exchange).is_err() {
            // Unreachable: one outbound shuffle at a time.
            self.events.push_back(HandlerEvent::ShuffleFailed {
                id: shuffle.id,
                error: ShuffleError::Io(io::Error::other("outbound capacity exceeded")),
            });
        }
    }

    fn on_answer(&mut self, id: InboundId, entries: Vec<ViewEntry>) {
        let Some(AwaitingAnswer {
            framed,
            version,
            permit,
        }) = self.awaiting_answer.remove(&id)
        else {
            return;
        };
        let max_addresses = self.settings.limits.max_addresses;
        let entries = protocol::encode_entries(&entries, version, max_addresses);
        let write = protocol::write_response(framed, entries).map(move |result| {
            drop(permit);
            result
        });
        if self.writing.try_push(write).is_err() {
            self.events.push_back(HandlerEvent::InboundRefused);
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = InEvent;
    type ToBehaviour = OutEvent;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Opening;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        let mut offered = self.settings.offered.to_vec();
        offered.extend(self.settings.neighbour.clone());
        SubstreamProtocol::new(Upgrade::new(offered.into()), ())
            .with_timeout(self.settings.request_timeout)
    }

    fn on_behaviour_event(&mut self, InEvent(command): InEvent) {
        match command {
            Command::Shuffle(shuffle) => self.queued.push_back(shuffle),
            Command::Answer { id, entries } => self.on_answer(id, entries),
            Command::Refuse { id } => {
                // Dropping the stream without closing it resets it.
                self.awaiting_answer.remove(&id);
            }
            Command::OpenNeighbour { priority } => self.neighbours.open(priority),
            Command::AnswerNeighbour { id, accept } => self.neighbours.answer(id, accept),
            Command::CloseNeighbours => self.neighbours.close_all(),
            Command::ReportIdle => self.report_idle = true,
        }
    }

    fn connection_keep_alive(&self) -> bool {
        !self.queued.is_empty()
            || self.stream_requested
            || !self.outbound.is_empty()
            || self.inbound_in_flight() > 0
            || self.neighbours.keep_alive()
    }

    #[tracing::instrument(level = "trace", name = "ConnectionHandler::poll", skip(self, cx))]
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Opening, OutEvent>> {
        loop {
            if let Some(report) = self.events.pop_front() {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(OutEvent(report)));
            }
            if !self.stream_requested
                && self.outbound.is_empty()
                && let Some(shuffle) = self.queued.pop_front()
            {
                self.stream_requested = true;
                return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(
                        Upgrade::new(Arc::clone(&self.outbound_versions)),
                        Opening::Shuffle(shuffle),
                    )
                    .with_timeout(self.settings.request_timeout),
                });
            }
            if let Some(neighbour) = self.settings.neighbour.clone()
                && let Some(priority) = self.neighbours.take_open()
            {
                return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(
                        Upgrade::new(Arc::new([neighbour])),
                        Opening::Neighbour(priority),
                    )
                    .with_timeout(self.settings.request_timeout),
                });
            }
            if let Poll::Ready(event) = self.neighbours.poll(cx) {
                self.events.push_back(match event {
                    NeighbourEvent::Request { id, priority } => {
                        HandlerEvent::NeighbourRequest { id, priority }
                    }
                    NeighbourEvent::Answered { accepted } => {
                        HandlerEvent::NeighbourAnswered { accepted }
                    }
                    NeighbourEvent::Closed => HandlerEvent::NeighbourClosed,
                });
                continue;
            }
            if let Poll::Ready((id, result)) = self.outbound.poll_unpin(cx) {
                let result = result.map(|(version, entries)| entries.map(|e| (version, e)));
                self.events
                    .push_back(match ShuffleError::from_step(result) {
                        Ok((version, entries)) => {
                            let (entries, invalid) =
                                protocol::decode_entries(entries, &self.settings.limits, version);
                            HandlerEvent::ShuffleResponse {
                                id,
                                entries,
                                invalid,
                                version,
                            }
                        }
                        Err(error) => HandlerEvent::ShuffleFailed { id, error },
                    });
                continue;
            }
            if let Poll::Ready((id, result)) = self.reading.poll_unpin(cx) {
                self.events
                    .push_back(match ShuffleError::from_step(result) {
                        Ok((awaiting, entries)) => {
                            let version = awaiting.version;
                            self.awaiting_answer.insert(id, awaiting);
                            let (entries, invalid) =
                                protocol::decode_entries(entries, &self.settings.limits, version);
                            HandlerEvent::InboundRequest {
                                id,
                                entries,
                                invalid,
                                version,
                            }
                        }
                        Err(error) => HandlerEvent::InboundFailed { error },
                    });
                continue;
            }
            if let Poll::Ready(result) = self.writing.poll_unpin(cx) {
                if let Err(error) = ShuffleError::from_step(result) {
                    self.events.push_back(HandlerEvent::InboundFailed { error });
                }
                continue;
            }
            if self.report_idle && !self.connection_keep_alive() {
                self.report_idle = false;
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(OutEvent(
                    HandlerEvent::Idle,
                )));
            }
            return Poll::Pending;
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), Opening>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, kind),
                ..
            }) => match kind {
                StreamKind::Shuffle(version) => self.on_inbound_stream(stream, version),
                StreamKind::Neighbour => {
                    let id = self.next_inbound_id();
                    self.neighbours.on_inbound(id, stream);
                }
            },
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, kind),
                info,
            }) => match (kind, info) {
                (StreamKind::Shuffle(version), Opening::Shuffle(shuffle)) => {
                    self.on_outbound_stream(stream, version, shuffle)
                }
                (StreamKind::Neighbour, Opening::Neighbour(priority)) => {
                    self.neighbours.on_outbound(stream, priority)
                }
                (_, Opening::Shuffle(shuffle)) => {
                    // Unreachable: a shuffle's upgrade offers shuffle versions only.
                    self.stream_requested = false;
                    self.events.push_back(HandlerEvent::ShuffleFailed {
                        id: shuffle.id,
                        error: ShuffleError::UnsupportedProtocol,
                    });
                }
                (_, Opening::Neighbour(_)) => self.neighbours.open_failed(),
            },
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: Opening::Neighbour(_),
                ..
            }) => self.neighbours.open_failed(),
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: Opening::Shuffle(info),
                error,
            }) => {
                self.stream_requested = false;
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => ShuffleError::UnsupportedProtocol,
                    StreamUpgradeError::Timeout => ShuffleError::Timeout,
                    StreamUpgradeError::Io(error) => ShuffleError::Io(error),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                self.events
                    .push_back(HandlerEvent::ShuffleFailed { id: info.id, error });
            }
            ConnectionEvent::ListenUpgradeError(failure) => {
                let never: Infallible = failure.error;
                match never {}
            }
            _ => {}
        }
    }
}
