//! The conversation of each exchange stream, both roles: what the core decides on each frame
//! ([`SecureView::open`](crate::secure::SecureView::open),
//! [`answer`](crate::secure::SecureView::answer),
//! [`advance`](crate::secure::SecureView::advance)) and what that means for the stream
//! ([`Reply`]).

use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::ConnectionId;
use web_time::Instant;

use super::{
    Answered, Behaviour, ExchangeError,
    event::Event,
    handler::{Reply, StreamKey, Then},
    now_ms,
};
use crate::secure::{
    Advance, Answer, ExchangeId, Incoming, Invalid, InvalidItems, Role, wire::Frame,
};

impl Behaviour {
    /// The stream of exchange `id` is up: the core opens it (mints, signs the redemption).
    pub(super) fn on_ready(&mut self, peer: PeerId, connection: ConnectionId, id: ExchangeId) {
        let key = StreamKey::Exchange(id);
        let Some(exchange) = self.outgoing.get_mut(&id) else {
            self.reply(peer, connection, key, reset());
            return;
        };
        exchange.connection = Some(connection);
        let addresses = self.local.advertised();
        match self.view.open(&mut self.rng, now_ms(), id, addresses) {
            Ok((open, out)) => {
                self.apply(Some(peer), out);
                let reply = Reply {
                    frame: Some(Box::new(Frame::Open(open))),
                    then: Then::Read,
                };
                self.reply(peer, connection, key, reply);
            }
            Err(error) => {
                self.outgoing.remove(&id);
                let out = self.view.abandon(id);
                self.apply(Some(peer), out);
                self.reply(peer, connection, key, reset());
                self.failed(peer, Role::Initiator, ExchangeError::Open(error));
            }
        }
    }

    /// A frame of an exchange this node opened.
    pub(super) fn on_outgoing_frame(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        id: ExchangeId,
        frame: Box<Frame>,
    ) {
        let key = StreamKey::Exchange(id);
        if !self.outgoing.contains_key(&id) {
            self.reply(peer, connection, key, reset());
            return;
        }
        let incoming = match *frame {
            Frame::Accept(accept) => Incoming::Accept(accept),
            Frame::Refuse(refuse) => Incoming::Refuse(refuse),
            Frame::Step(step) => Incoming::Step(step),
            // The core judges a message that does not fit the step.
            Frame::Open(_) | Frame::Push(_) => {
                self.unexpected(peer, connection, key, Some(id), Role::Initiator);
                return;
            }
        };
        let (advance, out) = self.view.advance(&mut self.rng, now_ms(), id, incoming);
        let refused = out.refused;
        if let Some(exchange) = self.outgoing.get_mut(&id) {
            exchange.gained += out.gained.len();
            exchange.given += out.given.len();
        }
        self.apply(Some(peer), out);
        let (reply, end) = carry(advance);
        self.reply(peer, connection, key, reply);
        let Some(end) = end else {
            return;
        };
        let Some(exchange) = self.outgoing.remove(&id) else {
            return;
        };
        match (end, refused) {
            (Ok(()), Some(reason)) => {
                self.stats.refused_by_peer += 1;
                self.failed(peer, Role::Initiator, ExchangeError::Refused(reason));
            }
            (Ok(()), None) => {
                self.stats.exchanges_completed += 1;
                self.emit(Event::ExchangeCompleted {
                    peer_id: peer,
                    received: exchange.gained,
                    given: exchange.given,
                });
            }
            (Err(error), _) => self.failed(peer, Role::Initiator, error),
        }
    }

    /// A frame on a stream the remote opened: an `Open`, a later `Step`, or a `ProofPush`.
    pub(super) fn on_inbound_frame(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        key: StreamKey,
        frame: Box<Frame>,
    ) {
        if let Some(exchange) = self.answered.get(&(connection, key)) {
            let id = exchange.id;
            let Frame::Step(step) = *frame else {
                self.unexpected(peer, connection, key, Some(id), Role::Responder);
                return;
            };
            let (advance, out) =
                self.view
                    .advance(&mut self.rng, now_ms(), id, Incoming::Step(step));
            if let Some(exchange) = self.answered.get_mut(&(connection, key)) {
                exchange.gained += out.gained.len();
                exchange.given += out.given.len();
            }
            self.apply(Some(peer), out);
            let (reply, end) = carry(advance);
            self.reply(peer, connection, key, reply);
            if let Some(end) = end
                && let Some(exchange) = self.answered.remove(&(connection, key))
            {
                match end {
                    Ok(()) => {
                        self.stats.exchanges_answered += 1;
                        self.emit(Event::ExchangeAnswered {
                            peer_id: peer,
                            received: exchange.gained,
                            given: exchange.given,
                        });
                    }
                    Err(error) => self.failed(peer, Role::Responder, error),
                }
            }
            return;
        }
        match *frame {
            Frame::Open(open) => {
                let (answer, out) = self.view.answer(&mut self.rng, now_ms(), &peer, open);
                let (gained, given) = (out.gained.len(), out.given.len());
                self.apply(Some(peer), out);
                match answer {
                    Answer::Accept { id, accept } => {
                        self.answered.insert(
                            (connection, key),
                            Answered {
                                peer,
                                id,
                                deadline: Instant::now() + self.config.request_timeout(),
                                gained,
                                given,
                            },
                        );
                        let reply = Reply {
                            frame: Some(Box::new(Frame::Accept(accept))),
                            then: Then::Read,
                        };
                        self.reply(peer, connection, key, reply);
                    }
                    Answer::Refuse(refuse) => {
                        let reason = refuse.reason;
                        let reply = Reply {
                            frame: Some(Box::new(Frame::Refuse(refuse))),
                            then: Then::Close,
                        };
                        self.reply(peer, connection, key, reply);
                        self.stats.exchanges_refused += 1;
                        self.emit(Event::ExchangeRefused {
                            peer_id: peer,
                            reason,
                        });
                    }
                }
            }
            Frame::Push(proofs) => {
                self.stats.pushes_received += 1;
                let out = self.view.receive_proofs(proofs);
                self.apply(Some(peer), out);
                self.reply(peer, connection, key, close());
            }
            Frame::Accept(_) | Frame::Refuse(_) | Frame::Step(_) => {
                self.unexpected(peer, connection, key, None, Role::Responder);
            }
        }
    }

    /// A message of the wrong type for its stream: counted, the exchange (if any) failed,
    /// the stream reset.
    pub(super) fn unexpected(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        key: StreamKey,
        id: Option<ExchangeId>,
        role: Role,
    ) {
        let mut items = InvalidItems::default();
        items.count(Invalid::Unexpected);
        self.invalid(peer, items);
        self.reply(peer, connection, key, reset());
        if let Some(id) = id {
            self.outgoing.remove(&id);
            self.answered.remove(&(connection, key));
            let out = self.view.fail(id);
            self.apply(Some(peer), out);
            self.failed(peer, role, ExchangeError::Invalid(Invalid::Unexpected));
        }
    }
}

type NodeAdvance = Advance<PeerId, Vec<Multiaddr>, Vec<u8>, [u8; 32]>;

/// What the core's decision on a message means for the stream, and whether (and how) the
/// exchange ended.
fn carry(advance: NodeAdvance) -> (Reply, Option<Result<(), ExchangeError>>) {
    let send = |step, then| Reply {
        frame: Some(Box::new(Frame::Step(step))),
        then,
    };
    match advance {
        Advance::Send(step) => (send(step, Then::Read), None),
        Advance::SendAndFinish(step) => (send(step, Then::Close), Some(Ok(()))),
        Advance::Finished => (close(), Some(Ok(()))),
        Advance::Abort(why) => (reset(), Some(Err(ExchangeError::Invalid(why)))),
    }
}

pub(super) fn close() -> Reply {
    Reply {
        frame: None,
        then: Then::Close,
    }
}

pub(super) fn reset() -> Reply {
    Reply {
        frame: None,
        then: Then::Reset,
    }
}
