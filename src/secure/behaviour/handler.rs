//! The [`ConnectionHandler`] of SecureCyclon: carries the frames of each `/cyclon/2.0.0` stream
//! of one connection between the stream and the behaviour.
//!
//! Every stream is one *conversation*: a future that writes what the behaviour decided, reads
//! the next frame, decodes it and hands it to the behaviour with a one-shot channel for the
//! reply ([`Reply`]: a frame to send or none, then read on, close or reset). Each step needs
//! the core's decision, so the handler decides nothing: it owns the streams, the codec
//! ([`wire::encode_frame`], [`wire::decode_frame`] with the [`WireLimits`]) and the bounds:
//! inbound streams per connection and over all connections (refused beyond), outbound streams
//! per connection, and the request timeout over each whole stream.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    task::{Context, Poll},
    time::Duration,
};

use futures::{
    AsyncWriteExt, StreamExt,
    channel::{mpsc, oneshot},
};
use futures_bounded::{Delay, FuturesMap, Timeout};
use libp2p_core::upgrade::ReadyUpgrade;
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionHandler, ConnectionHandlerEvent, Stream, StreamProtocol, StreamUpgradeError,
    SubstreamProtocol,
    handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound},
};

use super::{
    event::StreamError,
    framing::{self, FrameError},
};
use crate::{
    handler::{InboundLimit, InboundPermit},
    secure::{
        ExchangeId,
        wire::{self, Frame, Peers, WireLimits, WireProof},
    },
};

/// One stream of one connection, as the behaviour names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum StreamKey {
    /// The stream of an exchange the local node opened.
    Exchange(ExchangeId),
    /// A stream the remote opened (an exchange or a proof push), numbered per connection.
    Inbound(u64),
    /// A proof push the local node sends, numbered per connection.
    Push(u64),
}

/// What a conversation does after the behaviour's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Wait for the peer's next frame.
    Read,
    /// Close the stream (the exchange is over).
    Close,
    /// Drop the stream without closing it (an invalid message or an abort).
    Reset,
}

/// The behaviour's decision for one stream: a frame to send, if any, then what to do.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) frame: Option<Box<Frame>>,
    pub(crate) then: Then,
}

/// A message from the behaviour to a [`Handler`] (opaque).
#[derive(Debug)]
pub struct InEvent(pub(crate) Command);

/// What the behaviour asks of a handler.
#[derive(Debug)]
pub(crate) enum Command {
    /// Open a stream for this exchange; report [`HandlerEvent::Ready`] once it is up.
    Open(ExchangeId),
    /// Send these proofs on a stream of their own.
    Push(Vec<WireProof>),
    /// The decision on a stream that reported a frame or readiness.
    Reply(StreamKey, Reply),
}

/// A message from a [`Handler`] to the behaviour (opaque).
#[derive(Debug)]
pub struct OutEvent(pub(crate) HandlerEvent);

/// What a handler reports.
#[derive(Debug)]
pub(crate) enum HandlerEvent {
    /// The stream of an exchange is up: the behaviour opens the exchange and replies.
    Ready(ExchangeId),
    /// A decoded frame arrived on a stream; the behaviour replies.
    Frame(StreamKey, Box<Frame>),
    /// A stream failed (not after a close or reset the behaviour asked for).
    Failed(StreamKey, StreamError),
    /// A proof push went out whole.
    PushSent,
    /// An inbound stream was refused: too many in flight.
    InboundRefused,
}

/// What a conversation tells its handler.
enum Note {
    Ready(ExchangeId, oneshot::Sender<Reply>),
    Frame(StreamKey, Box<Frame>, oneshot::Sender<Reply>),
}

/// What an outbound stream is requested for.
#[derive(Debug)]
pub enum Opening {
    /// An exchange (opaque).
    Exchange(ExchangeId),
    /// A proof push (opaque).
    Push(Vec<WireProof>),
}

/// How a conversation starts.
enum Start {
    /// Read the peer's first frame (inbound).
    Read,
    /// Ask the behaviour for the first frame (an exchange the local node opens).
    Ask(ExchangeId),
    /// Send this frame and close (a proof push).
    Send(Box<Frame>),
}

/// The settings every handler of one behaviour shares.
#[derive(Debug, Clone)]
pub(crate) struct HandlerSettings {
    pub(crate) local: PeerId,
    pub(crate) protocol: StreamProtocol,
    pub(crate) request_timeout: Duration,
    pub(crate) limits: WireLimits,
    pub(crate) max_inbound_per_connection: usize,
    pub(crate) max_outbound_per_connection: usize,
    pub(crate) inbound_limit: InboundLimit,
}

type Conversations = FuturesMap<StreamKey, Result<(), StreamError>>;

/// The [`ConnectionHandler`] of SecureCyclon (reachable through the `NetworkBehaviour`
/// trait; not meant to be used on its own).
pub struct Handler {
    settings: HandlerSettings,
    remote: PeerId,
    /// Outbound streams to request.
    opening: VecDeque<Opening>,
    /// Outbound streams requested and not yet negotiated.
    requested: usize,
    inbound: Conversations,
    outbound: Conversations,
    notes: mpsc::UnboundedReceiver<Note>,
    notes_tx: mpsc::UnboundedSender<Note>,
    /// Conversations waiting for the behaviour's reply.
    awaiting: HashMap<StreamKey, oneshot::Sender<Reply>>,
    next_inbound: u64,
    next_push: u64,
    events: VecDeque<HandlerEvent>,
}

impl Handler {
    /// A handler for a connection to `remote` that opens `preloaded` exchanges and pushes at
    /// once.
    pub(crate) fn new(settings: HandlerSettings, remote: PeerId, preloaded: Vec<Opening>) -> Self {
        let timeout = settings.request_timeout;
        let (notes_tx, notes) = mpsc::unbounded();
        Self {
            inbound: FuturesMap::new(
                move || Delay::futures_timer(timeout),
                settings.max_inbound_per_connection,
            ),
            outbound: FuturesMap::new(
                move || Delay::futures_timer(timeout),
                settings.max_outbound_per_connection,
            ),
            settings,
            remote,
            opening: preloaded.into(),
            requested: 0,
            notes,
            notes_tx,
            awaiting: HashMap::new(),
            next_inbound: 0,
            next_push: 0,
            events: VecDeque::new(),
        }
    }

    fn peers(&self) -> Peers {
        Peers {
            sender: self.settings.local,
            receiver: self.remote,
        }
    }

    fn on_inbound(&mut self, stream: Stream) {
        let permit = if self.inbound.len() < self.settings.max_inbound_per_connection {
            self.settings.inbound_limit.try_acquire()
        } else {
            None
        };
        let Some(permit) = permit else {
            tracing::debug!(peer = %self.remote, "refusing a /cyclon/2.0.0 stream: too many");
            self.events.push_back(HandlerEvent::InboundRefused);
            return;
        };
        let key = StreamKey::Inbound(self.next_inbound);
        self.next_inbound += 1;
        let talk = converse(
            stream,
            key,
            Start::Read,
            self.notes_tx.clone(),
            self.peers(),
            self.settings.limits,
            Some(permit),
        );
        if self.inbound.try_push(key, talk).is_err() {
            self.events.push_back(HandlerEvent::InboundRefused);
        }
    }

    fn on_outbound(&mut self, stream: Stream, opening: Opening) {
        self.requested = self.requested.saturating_sub(1);
        let (key, start) = match opening {
            Opening::Exchange(id) => (StreamKey::Exchange(id), Start::Ask(id)),
            Opening::Push(proofs) => {
                self.next_push += 1;
                (
                    StreamKey::Push(self.next_push),
                    Start::Send(Box::new(Frame::Push(proofs))),
                )
            }
        };
        let talk = converse(
            stream,
            key,
            start,
            self.notes_tx.clone(),
            self.peers(),
            self.settings.limits,
            None,
        );
        if self.outbound.try_push(key, talk).is_err() {
            self.events
                .push_back(HandlerEvent::Failed(key, StreamError::Capacity));
        }
    }

    fn on_reply(&mut self, key: StreamKey, reply: Reply) {
        if reply.frame.is_none() && reply.then == Then::Reset {
            // Dropping the conversation drops the stream: a reset.
            self.awaiting.remove(&key);
            let _ = self.inbound.remove(key);
            let _ = self.outbound.remove(key);
            return;
        }
        if let Some(sender) = self.awaiting.remove(&key) {
            let _ = sender.send(reply);
        }
    }

    fn on_done(&mut self, key: StreamKey, result: Result<Result<(), StreamError>, Timeout>) {
        self.awaiting.remove(&key);
        let result = result.unwrap_or(Err(StreamError::Timeout));
        match (key, result) {
            (StreamKey::Push(_), Ok(())) => self.events.push_back(HandlerEvent::PushSent),
            (_, Ok(())) => {}
            (key, Err(error)) => self.events.push_back(HandlerEvent::Failed(key, error)),
        }
    }
}

impl ConnectionHandler for Handler {
    type FromBehaviour = InEvent;
    type ToBehaviour = OutEvent;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = Opening;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(ReadyUpgrade::new(self.settings.protocol.clone()), ())
            .with_timeout(self.settings.request_timeout)
    }

    fn on_behaviour_event(&mut self, InEvent(command): InEvent) {
        match command {
            Command::Open(id) => self.opening.push_back(Opening::Exchange(id)),
            Command::Push(proofs) => self.opening.push_back(Opening::Push(proofs)),
            Command::Reply(key, reply) => self.on_reply(key, reply),
        }
    }

    fn connection_keep_alive(&self) -> bool {
        !self.opening.is_empty()
            || self.requested > 0
            || !self.inbound.is_empty()
            || !self.outbound.is_empty()
    }

    #[tracing::instrument(level = "trace", name = "secure::Handler::poll", skip(self, cx))]
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Opening, OutEvent>> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(OutEvent(event)));
            }
            if let Some(opening) = self.opening.pop_front() {
                self.requested += 1;
                return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(
                        ReadyUpgrade::new(self.settings.protocol.clone()),
                        opening,
                    )
                    .with_timeout(self.settings.request_timeout),
                });
            }
            if let Poll::Ready(Some(note)) = self.notes.poll_next_unpin(cx) {
                match note {
                    Note::Ready(id, reply) => {
                        let key = StreamKey::Exchange(id);
                        if self.outbound.contains(key) {
                            self.awaiting.insert(key, reply);
                            self.events.push_back(HandlerEvent::Ready(id));
                        }
                    }
                    Note::Frame(key, frame, reply) => {
                        if self.inbound.contains(key) || self.outbound.contains(key) {
                            self.awaiting.insert(key, reply);
                            self.events.push_back(HandlerEvent::Frame(key, frame));
                        }
                    }
                }
                continue;
            }
            if let Poll::Ready((key, result)) = self.inbound.poll_unpin(cx) {
                self.on_done(key, result);
                continue;
            }
            if let Poll::Ready((key, result)) = self.outbound.poll_unpin(cx) {
                self.on_done(key, result);
                continue;
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
                protocol: stream,
                ..
            }) => self.on_inbound(stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                info,
            }) => self.on_outbound(stream, info),
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                self.requested = self.requested.saturating_sub(1);
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => StreamError::UnsupportedProtocol,
                    StreamUpgradeError::Timeout => StreamError::Timeout,
                    StreamUpgradeError::Io(error) => StreamError::Io(error),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                let key = match info {
                    Opening::Exchange(id) => StreamKey::Exchange(id),
                    Opening::Push(_) => {
                        self.next_push += 1;
                        StreamKey::Push(self.next_push)
                    }
                };
                self.events.push_back(HandlerEvent::Failed(key, error));
            }
            ConnectionEvent::ListenUpgradeError(failure) => {
                let never: Infallible = failure.error;
                match never {}
            }
            _ => {}
        }
    }
}

/// One stream's conversation: writes the behaviour's frames, reads and decodes the peer's, one
/// at a time, until the behaviour closes or resets it. `peers` names the local node as sender.
async fn converse(
    mut stream: Stream,
    key: StreamKey,
    start: Start,
    notes: mpsc::UnboundedSender<Note>,
    peers: Peers,
    limits: WireLimits,
    _permit: Option<InboundPermit>,
) -> Result<(), StreamError> {
    let incoming = Peers {
        sender: peers.receiver,
        receiver: peers.sender,
    };
    let mut reply = match start {
        Start::Read => Reply {
            frame: None,
            then: Then::Read,
        },
        Start::Ask(id) => {
            let (tx, rx) = oneshot::channel();
            notes
                .unbounded_send(Note::Ready(id, tx))
                .map_err(|_| StreamError::Cancelled)?;
            rx.await.map_err(|_| StreamError::Cancelled)?
        }
        Start::Send(frame) => Reply {
            frame: Some(frame),
            then: Then::Close,
        },
    };
    loop {
        if let Some(frame) = reply.frame.take() {
            let bytes = wire::encode_frame(&frame, &peers);
            framing::write_frame(&mut stream, &bytes)
                .await
                .map_err(StreamError::Io)?;
        }
        match reply.then {
            Then::Read => {}
            Then::Close => return stream.close().await.map_err(StreamError::Io),
            Then::Reset => return Ok(()),
        }
        let bytes = match framing::read_frame(&mut stream, limits.max_message_size).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(StreamError::Closed),
            Err(FrameError::TooLarge(len)) => return Err(StreamError::TooLarge(len)),
            Err(FrameError::BadPrefix) => return Err(StreamError::BadLengthPrefix),
            Err(FrameError::Io(error)) => return Err(StreamError::Io(error)),
        };
        let frame = wire::decode_frame(&bytes, &incoming, &limits).map_err(StreamError::Wire)?;
        let (tx, rx) = oneshot::channel();
        notes
            .unbounded_send(Note::Frame(key, Box::new(frame), tx))
            .map_err(|_| StreamError::Cancelled)?;
        reply = rx.await.map_err(|_| StreamError::Cancelled)?;
    }
}
