//! The [`ConnectionHandler`] of Cyclon: runs the `/cyclon/1.0.0` streams of one connection.
//!
//! Outbound shuffles run one at a time per connection (the remote answers at most one inbound
//! shuffle per connection at a time). Inbound shuffles are bounded per connection and over all
//! connections; streams beyond the bounds are refused. Every step of a stream runs under the
//! request timeout.

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
use futures_bounded::{Delay, FuturesMap, FuturesSet};
use libp2p_core::upgrade::ReadyUpgrade;
use libp2p_swarm::{
    ConnectionHandler, ConnectionHandlerEvent, Stream, StreamProtocol, StreamUpgradeError,
    SubstreamProtocol,
    handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound},
};

use crate::{
    ShuffleError, ShuffleId, ViewEntry,
    protocol::{self, EntryLimits, FramedStream, InvalidEntries, PROTOCOL_NAME, proto},
};

/// Identifies an inbound shuffle on one connection, until it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InboundId(u64);

/// A shuffle request to send on this connection.
#[derive(Debug)]
pub struct OutboundShuffle {
    pub(crate) id: ShuffleId,
    pub(crate) entries: Vec<proto::Entry>,
}

/// A message from the [`Behaviour`](crate::Behaviour) to a [`Handler`].
#[derive(Debug)]
pub enum FromBehaviour {
    /// Run this shuffle on the connection.
    Shuffle(OutboundShuffle),
    /// The reply to an inbound shuffle.
    Answer {
        /// The inbound shuffle this answers.
        id: InboundId,
        /// The entries of the reply.
        entries: Vec<proto::Entry>,
    },
    /// Refuse an inbound shuffle: reset its stream without an answer.
    Refuse {
        /// The inbound shuffle to refuse.
        id: InboundId,
    },
}

/// A message from a [`Handler`] to the [`Behaviour`](crate::Behaviour).
#[derive(Debug)]
pub enum ToBehaviour {
    /// The remote answered our shuffle.
    ShuffleResponse {
        /// Our shuffle.
        id: ShuffleId,
        /// The valid entries of the response.
        entries: Vec<ViewEntry>,
        /// What validation dropped.
        invalid: InvalidEntries,
    },
    /// Our shuffle failed.
    ShuffleFailed {
        /// Our shuffle.
        id: ShuffleId,
        /// Why.
        error: ShuffleError,
    },
    /// The remote asks us to shuffle; the behaviour must answer with
    /// [`FromBehaviour::Answer`].
    InboundRequest {
        /// Identifies the request in the answer.
        id: InboundId,
        /// The valid entries of the request.
        entries: Vec<ViewEntry>,
        /// What validation dropped.
        invalid: InvalidEntries,
    },
    /// An inbound shuffle stream failed (bad message, timeout, IO error).
    InboundFailed {
        /// Why.
        error: ShuffleError,
    },
    /// An inbound shuffle stream was refused because too many were in flight.
    InboundRefused,
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

    fn try_acquire(&self) -> Option<InboundPermit> {
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
struct InboundPermit(Arc<AtomicUsize>);

impl Drop for InboundPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Settings a handler needs, taken from the [`Config`](crate::Config).
#[derive(Debug, Clone)]
pub(crate) struct HandlerSettings {
    pub(crate) request_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) max_inbound_streams: usize,
    pub(crate) limits: EntryLimits,
    pub(crate) inbound_limit: InboundLimit,
}

type InboundRead = (FramedStream<Stream>, Vec<proto::Entry>, InboundPermit);

/// The [`ConnectionHandler`] of Cyclon.
pub struct Handler {
    settings: HandlerSettings,
    /// Shuffles waiting for the connection's single outbound slot.
    queued: VecDeque<OutboundShuffle>,
    /// Whether a stream was requested and not yet negotiated.
    stream_requested: bool,
    outbound: FuturesMap<ShuffleId, io::Result<Vec<proto::Entry>>>,
    reading: FuturesMap<InboundId, io::Result<InboundRead>>,
    awaiting_answer: HashMap<InboundId, (FramedStream<Stream>, InboundPermit)>,
    writing: FuturesSet<io::Result<()>>,
    next_inbound_id: u64,
    events: VecDeque<ToBehaviour>,
}

impl Handler {
    pub(crate) fn new(settings: HandlerSettings, preloaded: Vec<OutboundShuffle>) -> Self {
        let timeout = settings.request_timeout;
        let inbound = settings.max_inbound_streams;
        Self {
            queued: preloaded.into(),
            stream_requested: false,
            outbound: FuturesMap::new(move || Delay::futures_timer(timeout), 1),
            reading: FuturesMap::new(move || Delay::futures_timer(timeout), inbound),
            awaiting_answer: HashMap::new(),
            writing: FuturesSet::new(move || Delay::futures_timer(timeout), inbound),
            next_inbound_id: 0,
            events: VecDeque::new(),
            settings,
        }
    }

    fn inbound_in_flight(&self) -> usize {
        self.reading.len() + self.awaiting_answer.len() + self.writing.len()
    }

    fn on_inbound_stream(&mut self, stream: Stream) {
        let permit = if self.inbound_in_flight() < self.settings.max_inbound_streams {
            self.settings.inbound_limit.try_acquire()
        } else {
            None
        };
        let Some(permit) = permit else {
            tracing::debug!("refusing an inbound shuffle stream: too many in flight");
            drop(stream);
            self.events.push_back(ToBehaviour::InboundRefused);
            return;
        };
        let id = InboundId(self.next_inbound_id);
        self.next_inbound_id += 1;
        let max_size = self.settings.max_message_size;
        let read = protocol::read_request(stream, max_size)
            .map(|result| result.map(|(framed, entries)| (framed, entries, permit)));
        if self.reading.try_push(id, read).is_err() {
            // Unreachable: the count was checked above.
            self.events.push_back(ToBehaviour::InboundRefused);
        }
    }

    fn on_outbound_stream(&mut self, stream: Stream, shuffle: OutboundShuffle) {
        self.stream_requested = false;
        let exchange =
            protocol::request_shuffle(stream, shuffle.entries, self.settings.max_message_size);
        if self.outbound.try_push(shuffle.id, exchange).is_err() {
            // Unreachable: one outbound shuffle at a time.
            self.events.push_back(ToBehaviour::ShuffleFailed {
                id: shuffle.id,
                error: ShuffleError::Io(io::Error::other("outbound capacity exceeded")),
            });
        }
    }

    fn on_answer(&mut self, id: InboundId, entries: Vec<proto::Entry>) {
        let Some((framed, permit)) = self.awaiting_answer.remove(&id) else {
            return;
        };
        let write = protocol::write_response(framed, entries).map(move |result| {
            drop(permit);
            result
        });
        if self.writing.try_push(write).is_err() {
            self.events.push_back(ToBehaviour::InboundRefused);
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = FromBehaviour;
    type ToBehaviour = ToBehaviour;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = OutboundShuffle;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL_NAME), ())
            .with_timeout(self.settings.request_timeout)
    }

    fn on_behaviour_event(&mut self, event: FromBehaviour) {
        match event {
            FromBehaviour::Shuffle(shuffle) => self.queued.push_back(shuffle),
            FromBehaviour::Answer { id, entries } => self.on_answer(id, entries),
            FromBehaviour::Refuse { id } => {
                // Dropping the stream without closing it resets it.
                self.awaiting_answer.remove(&id);
            }
        }
    }

    fn connection_keep_alive(&self) -> bool {
        !self.queued.is_empty()
            || self.stream_requested
            || !self.outbound.is_empty()
            || self.inbound_in_flight() > 0
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, OutboundShuffle, ToBehaviour>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
            }
            if !self.stream_requested
                && self.outbound.is_empty()
                && let Some(shuffle) = self.queued.pop_front()
            {
                self.stream_requested = true;
                return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(ReadyUpgrade::new(PROTOCOL_NAME), shuffle)
                        .with_timeout(self.settings.request_timeout),
                });
            }
            if let Poll::Ready((id, result)) = self.outbound.poll_unpin(cx) {
                let event = match result {
                    Ok(Ok(entries)) => {
                        let (entries, invalid) =
                            protocol::decode_entries(entries, &self.settings.limits);
                        ToBehaviour::ShuffleResponse {
                            id,
                            entries,
                            invalid,
                        }
                    }
                    Ok(Err(error)) => ToBehaviour::ShuffleFailed {
                        id,
                        error: ShuffleError::Io(error),
                    },
                    Err(_) => ToBehaviour::ShuffleFailed {
                        id,
                        error: ShuffleError::Timeout,
                    },
                };
                self.events.push_back(event);
                continue;
            }
            if let Poll::Ready((id, result)) = self.reading.poll_unpin(cx) {
                let event = match result {
                    Ok(Ok((framed, entries, permit))) => {
                        self.awaiting_answer.insert(id, (framed, permit));
                        let (entries, invalid) =
                            protocol::decode_entries(entries, &self.settings.limits);
                        ToBehaviour::InboundRequest {
                            id,
                            entries,
                            invalid,
                        }
                    }
                    Ok(Err(error)) => ToBehaviour::InboundFailed {
                        error: ShuffleError::Io(error),
                    },
                    Err(_) => ToBehaviour::InboundFailed {
                        error: ShuffleError::Timeout,
                    },
                };
                self.events.push_back(event);
                continue;
            }
            if let Poll::Ready(result) = self.writing.poll_unpin(cx) {
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => self.events.push_back(ToBehaviour::InboundFailed {
                        error: ShuffleError::Io(error),
                    }),
                    Err(_) => self.events.push_back(ToBehaviour::InboundFailed {
                        error: ShuffleError::Timeout,
                    }),
                }
                continue;
            }
            return Poll::Pending;
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol, (), OutboundShuffle>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: stream,
                ..
            }) => self.on_inbound_stream(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info,
            }) => self.on_outbound_stream(stream, info),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                self.stream_requested = false;
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => ShuffleError::UnsupportedProtocol,
                    StreamUpgradeError::Timeout => ShuffleError::Timeout,
                    StreamUpgradeError::Io(error) => ShuffleError::Io(error),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                self.events
                    .push_back(ToBehaviour::ShuffleFailed { id: info.id, error });
            }
            ConnectionEvent::ListenUpgradeError(failure) => {
                let never: Infallible = failure.error;
                match never {}
            }
            _ => {}
        }
    }
}
