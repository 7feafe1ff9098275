//! The neighbour streams of one connection (`/cyclon/neighbour/1.0.0`): asking the remote to
//! be a neighbour, answering its request as the behaviour decides, and holding the streams of
//! the links that are up, which keep the connection open until either side closes them.
//!
//! Every stream carries an id. [`NeighbourStreams::close_all`] forgets every id it knows, so
//! that work started before it (a reply being written, an answer being read, a held stream
//! being aborted) can never bring a link back nor report one closed afterwards.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    io,
    task::{Context, Poll},
};

use asynchronous_codec::Framed;
use futures::{
    AsyncReadExt, FutureExt, SinkExt, StreamExt,
    future::BoxFuture,
    stream::{AbortHandle, Abortable, FuturesUnordered},
};
use futures_bounded::{Delay, FuturesMap};
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
    /// A link's stream ended (the remote closed it, it failed, or a reply we accepted with
    /// could not be written).
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
    asking: FuturesMap<u64, io::Result<Option<Stream>>>,
    /// Our replies, until written: the stream to hold if we accepted.
    replying: FuturesMap<u64, io::Result<Option<Stream>>>,
    /// Of the replies being written, those that accept (a reply that times out loses its
    /// output: this says whether the behaviour counted a link for it).
    accepting: HashSet<u64>,
    /// The ids of work still current: asks, replies and held streams started since the last
    /// [`close_all`](Self::close_all).
    current: HashSet<u64>,
    /// The streams of the links that are up: each future ends, with its id, when its stream
    /// does (or is aborted).
    held: FuturesUnordered<BoxFuture<'static, u64>>,
    aborts: HashMap<u64, AbortHandle>,
    next_id: u64,
    events: VecDeque<NeighbourEvent>,
}

impl NeighbourStreams {
    pub(super) fn new(timeout: std::time::Duration) -> Self {
        let delay = move || Delay::futures_timer(timeout);
        Self {
            opens: VecDeque::new(),
            reading: FuturesMap::new(delay, MAX_PENDING_REQUESTS),
            awaiting: HashMap::new(),
            asking: FuturesMap::new(delay, MAX_HELD),
            replying: FuturesMap::new(delay, MAX_HELD),
            accepting: HashSet::new(),
            current: HashSet::new(),
            held: FuturesUnordered::new(),
            aborts: HashMap::new(),
            next_id: 0,
            events: VecDeque::new(),
        }
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.current.insert(id);
        id
    }

    /// Whether the connection must stay open: a link is up, or one is being made.
    pub(super) fn keep_alive(&self) -> bool {
        !self.opens.is_empty()
            || !self.aborts.is_empty()
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
        let id = self.next_id();
        if self.asking.try_push(id, ask.boxed()).is_err() {
            self.current.remove(&id);
            self.open_failed();
        }
    }

    /// The remote opened a neighbour stream: read its request (`id` names it).
    pub(super) fn on_inbound(&mut self, id: InboundId, stream: Stream) {
        if self.aborts.len() + self.awaiting.len() >= MAX_HELD {
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
    /// accepted. An accepting decision for a request this connection no longer has (closed
    /// meanwhile) reports the link closed at once.
    pub(super) fn answer(&mut self, id: InboundId, accepted: bool) {
        let Some(mut framed) = self.awaiting.remove(&id) else {
            if accepted {
                self.events.push_back(NeighbourEvent::Closed);
            }
            return;
        };
        let reply = async move {
            framed.send(proto::NeighbourReply { accepted }).await?;
            if accepted {
                Ok(Some(framed.into_inner()))
            } else {
                framed.close().await?;
                Ok(None)
            }
        };
        let reply_id = self.next_id();
        if accepted {
            self.accepting.insert(reply_id);
        }
        if self.replying.try_push(reply_id, reply.boxed()).is_err() {
            self.current.remove(&reply_id);
            if self.accepting.remove(&reply_id) {
                self.events.push_back(NeighbourEvent::Closed);
            }
        }
    }

    /// Ends every link of this connection (the behaviour took the peer down): held streams are
    /// aborted, and answers, replies and requests under way are forgotten; none of them
    /// reports anything afterwards.
    pub(super) fn close_all(&mut self) {
        for (_, abort) in self.aborts.drain() {
            abort.abort();
        }
        self.awaiting.clear();
        self.opens.clear();
        self.accepting.clear();
        self.current.clear();
    }

    fn hold(&mut self, stream: Stream) {
        let id = self.next_id();
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
        self.aborts.insert(id, abort);
        self.held
            .push(Abortable::new(wait, registration).map(move |_| id).boxed());
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
            if let Poll::Ready((id, result)) = self.asking.poll_unpin(cx) {
                if !self.current.remove(&id) {
                    continue; // Asked before the links were closed: moot.
                }
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
            if let Poll::Ready((id, result)) = self.replying.poll_unpin(cx) {
                let counted = self.accepting.remove(&id);
                if !self.current.remove(&id) {
                    continue; // Written after the links were closed: the stream is dropped.
                }
                // The behaviour counted a link for an accepting reply: one that fails ends it.
                match result {
                    Ok(Ok(Some(stream))) => self.hold(stream),
                    Ok(Ok(None)) => {}
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "a neighbour reply failed");
                        if counted {
                            return Poll::Ready(NeighbourEvent::Closed);
                        }
                    }
                    Err(_) => {
                        tracing::debug!("a neighbour reply timed out");
                        if counted {
                            return Poll::Ready(NeighbourEvent::Closed);
                        }
                    }
                }
                continue;
            }
            if let Poll::Ready(Some(id)) = self.held.poll_next_unpin(cx) {
                // An aborted stream was closed by the behaviour, which knows.
                if self.aborts.remove(&id).is_some() && self.current.remove(&id) {
                    return Poll::Ready(NeighbourEvent::Closed);
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}
