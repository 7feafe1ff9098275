//! The neighbour streams of one connection (`/cyclon/neighbour/1.0.0`): asking the remote to
//! be a neighbour, answering its request as the behaviour decides, and holding the streams of
//! the links that are up, which keep the connection open until either side closes them.

use std::{
    collections::{HashMap, VecDeque},
    io,
    task::{Context, Poll},
    time::Duration,
};

use asynchronous_codec::Framed;
use futures::{
    AsyncReadExt, FutureExt, SinkExt, StreamExt,
    future::BoxFuture,
    stream::{AbortHandle, Abortable, FuturesUnordered},
};
use futures_bounded::{Delay, FuturesMap, FuturesSet};
use libp2p_swarm::Stream;

use super::InboundId;
use crate::protocol::proto;

/// Neighbour messages are a few bytes; anything larger is not one.
const MAX_NEIGHBOUR_MESSAGE: usize = 64;

/// Inbound neighbour requests one connection may have waiting for the behaviour's decision.
const MAX_PENDING_REQUESTS: usize = 2;

/// Links one connection may hold (one per direction: two requests that crossed).
const MAX_HELD: usize = 2;

/// The asking side: writes a request, reads a reply.
type RequestFramed =
    Framed<Stream, prost_codec::Codec<proto::NeighbourRequest, proto::NeighbourReply>>;
/// The answering side: reads a request, writes a reply.
type ReplyFramed =
    Framed<Stream, prost_codec::Codec<proto::NeighbourReply, proto::NeighbourRequest>>;

/// What the neighbour streams tell the handler to report.
#[derive(Debug)]
pub(super) enum NeighbourEvent {
    /// The remote asks to be a neighbour (with priority: it has none); the behaviour answers
    /// with [`NeighbourStreams::answer`].
    Request { id: InboundId, priority: bool },
    /// The remote answered our request (`false` also when the stream failed or the remote does
    /// not speak the protocol).
    Answered { accepted: bool },
    /// A held link's stream ended (the remote closed it, or it failed).
    Closed,
}

/// The neighbour streams of one connection.
pub(super) struct NeighbourStreams {
    /// Requests to make, once a stream is open (with priority or not).
    opens: VecDeque<bool>,
    /// Inbound requests being read: the stream and whether the request has priority.
    reading: FuturesMap<InboundId, io::Result<(ReplyFramed, bool)>>,
    /// Inbound requests read, waiting for the behaviour's decision.
    awaiting: HashMap<InboundId, ReplyFramed>,
    /// Our requests, until the answer is read: the stream to hold if the remote accepted.
    asking: FuturesSet<io::Result<Option<Stream>>>,
    /// Our replies, until written: whether we accepted, and the stream to hold then.
    replying: FuturesSet<(bool, io::Result<Option<Stream>>)>,
    /// The streams of the links that are up: each future ends when its stream does.
    held: FuturesUnordered<BoxFuture<'static, ()>>,
    aborts: Vec<AbortHandle>,
    events: VecDeque<NeighbourEvent>,
}

impl NeighbourStreams {
    pub(super) fn new(timeout: Duration) -> Self {
        Self {
            opens: VecDeque::new(),
            reading: FuturesMap::new(move || Delay::futures_timer(timeout), MAX_PENDING_REQUESTS),
            awaiting: HashMap::new(),
            asking: FuturesSet::new(move || Delay::futures_timer(timeout), MAX_HELD),
            replying: FuturesSet::new(move || Delay::futures_timer(timeout), MAX_HELD),
            held: FuturesUnordered::new(),
            aborts: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Whether the connection must stay open: a link is up, or one is being made.
    pub(super) fn keep_alive(&self) -> bool {
        !self.opens.is_empty()
            || !self.held.is_empty()
            || !self.reading.is_empty()
            || !self.awaiting.is_empty()
            || !self.asking.is_empty()
            || !self.replying.is_empty()
    }

    /// The behaviour asks the remote to be a neighbour: a stream is requested.
    pub(super) fn open(&mut self, priority: bool) {
        self.opens.push_back(priority);
    }

    /// Takes one pending request to open a stream for, if any: whether it has priority.
    pub(super) fn take_open(&mut self) -> Option<bool> {
        self.opens.pop_front()
    }

    /// Our neighbour stream could not be opened (the remote does not speak the protocol, or
    /// the upgrade failed).
    pub(super) fn open_failed(&mut self) {
        self.events
            .push_back(NeighbourEvent::Answered { accepted: false });
    }

    /// Our neighbour stream is open: ask, and read the answer.
    pub(super) fn on_outbound(&mut self, stream: Stream, priority: bool) {
        let mut framed: RequestFramed =
            Framed::new(stream, prost_codec::Codec::new(MAX_NEIGHBOUR_MESSAGE));
        let ask = async move {
            framed.send(proto::NeighbourRequest { priority }).await?;
            let reply = framed.next().await.ok_or_else(|| {
                io::Error::new(io::ErrorKind::UnexpectedEof, "no neighbour reply")
            })??;
            Ok(reply.accepted.then(|| framed.into_inner()))
        };
        if self.asking.try_push(ask.boxed()).is_err() {
            self.open_failed();
        }
    }

    /// The remote opened a neighbour stream: read its request (`id` names it).
    pub(super) fn on_inbound(&mut self, id: InboundId, stream: Stream) {
        if self.held.len() + self.awaiting.len() >= MAX_HELD {
            tracing::debug!("refusing a neighbour stream: enough on this connection");
            return; // Dropping the stream resets it.
        }
        let mut framed: ReplyFramed =
            Framed::new(stream, prost_codec::Codec::new(MAX_NEIGHBOUR_MESSAGE));
        let read = async move {
            match framed.next().await {
                Some(Ok(proto::NeighbourRequest { priority })) => Ok((framed, priority)),
                Some(Err(error)) => Err(io::Error::from(error)),
                None => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "no neighbour request",
                )),
            }
        };
        if self.reading.try_push(id, read.boxed()).is_err() {
            tracing::debug!("refusing a neighbour stream: requests pending");
        }
    }

    /// The behaviour's decision on request `id`: the reply is written, and the stream held if
    /// accepted.
    pub(super) fn answer(&mut self, id: InboundId, accepted: bool) {
        let Some(mut framed) = self.awaiting.remove(&id) else {
            if accepted {
                self.events.push_back(NeighbourEvent::Closed);
            }
            return;
        };
        let reply = async move {
            let written = async {
                framed.send(proto::NeighbourReply { accepted }).await?;
                if accepted {
                    Ok(Some(framed.into_inner()))
                } else {
                    framed.close().await?;
                    Ok(None)
                }
            };
            (accepted, written.await)
        };
        if self.replying.try_push(reply.boxed()).is_err() && accepted {
            self.events.push_back(NeighbourEvent::Closed);
        }
    }

    /// Ends every link of this connection (the behaviour took the peer down).
    pub(super) fn close_all(&mut self) {
        for abort in self.aborts.drain(..) {
            abort.abort();
        }
        self.awaiting.clear();
    }

    fn hold(&mut self, stream: Stream) {
        let (abort, registration) = AbortHandle::new_pair();
        let wait = async move {
            let mut stream = stream;
            let mut buf = [0u8; 16];
            // Nothing is sent on a held stream: it ends when either side closes it.
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        };
        self.aborts.push(abort);
        self.held
            .push(Abortable::new(wait, registration).map(|_| ()).boxed());
    }

    pub(super) fn poll(&mut self, cx: &mut Context<'_>) -> Poll<NeighbourEvent> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(event);
            }
            if let Poll::Ready((id, result)) = self.reading.poll_unpin(cx) {
                match result {
                    Ok(Ok((framed, priority))) => {
                        self.awaiting.insert(id, framed);
                        return Poll::Ready(NeighbourEvent::Request { id, priority });
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "a neighbour request failed"),
                    Err(_) => tracing::debug!("a neighbour request timed out"),
                }
                continue;
            }
            if let Poll::Ready(result) = self.asking.poll_unpin(cx) {
                let accepted = match result {
                    Ok(Ok(Some(stream))) => {
                        self.hold(stream);
                        true
                    }
                    Ok(Ok(None)) => false,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "a neighbour request failed");
                        false
                    }
                    Err(_) => {
                        tracing::debug!("a neighbour request timed out");
                        false
                    }
                };
                return Poll::Ready(NeighbourEvent::Answered { accepted });
            }
            if let Poll::Ready(result) = self.replying.poll_unpin(cx) {
                // The behaviour counted an accepted link when it decided: a reply that fails
                // ends it.
                match result {
                    Ok((_, Ok(Some(stream)))) => self.hold(stream),
                    Ok((_, Ok(None))) => {}
                    Ok((accepted, Err(error))) => {
                        tracing::debug!(%error, "a neighbour reply failed");
                        if accepted {
                            return Poll::Ready(NeighbourEvent::Closed);
                        }
                    }
                    Err(_) => {
                        tracing::debug!("a neighbour reply timed out");
                        return Poll::Ready(NeighbourEvent::Closed);
                    }
                }
                continue;
            }
            if let Poll::Ready(Some(())) = self.held.poll_next_unpin(cx) {
                self.aborts.retain(|a| !a.is_aborted());
                return Poll::Ready(NeighbourEvent::Closed);
            }
            return Poll::Pending;
        }
    }
}
