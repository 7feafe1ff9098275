//! Exchanges that end badly: stream errors, dial failures, closed connections, deadlines.
//! Each goes to the core ([`SecureView::fail`](crate::secure::SecureView::fail),
//! [`SecureView::abandon`](crate::secure::SecureView::abandon)), which decides what it costs.

use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, DialError};
use web_time::Instant;

use super::{
    Behaviour, ExchangeError,
    event::StreamError,
    exchanges::reset,
    handler::{Opening, StreamKey},
    now_ms,
};
use crate::secure::{ExchangeId, Invalid, InvalidItems, Role};

impl Behaviour {
    pub(super) fn on_stream_failed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        key: StreamKey,
        error: StreamError,
    ) {
        let invalid = match &error {
            StreamError::Wire(wire) => Some(wire.invalid()),
            StreamError::TooLarge(_) => Some(Invalid::TooLarge),
            StreamError::BadLengthPrefix => Some(Invalid::Malformed),
            _ => None,
        };
        if let Some(why) = invalid {
            let mut items = InvalidItems::default();
            items.count(why);
            self.invalid(peer, items);
        }
        match key {
            StreamKey::Exchange(id) => {
                if self.outgoing.remove(&id).is_some() {
                    let out = self.view.fail(id);
                    self.apply(Some(peer), out);
                    self.failed(peer, Role::Initiator, ExchangeError::Stream(error));
                }
            }
            StreamKey::Inbound(_) => {
                if let Some(exchange) = self.answered.remove(&(connection, key)) {
                    let out = self.view.fail(exchange.id);
                    self.apply(Some(peer), out);
                    self.failed(peer, Role::Responder, ExchangeError::Stream(error));
                } else {
                    tracing::debug!(%peer, %error, "an inbound /cyclon/2.0.0 stream failed");
                }
            }
            StreamKey::Push(_) => {
                self.stats.pushes_failed += 1;
                tracing::debug!(%peer, %error, "a proof push failed");
            }
        }
    }

    pub(super) fn on_dial_failure(&mut self, peer: PeerId, error: &DialError) {
        if matches!(error, DialError::DialPeerConditionFalse(_))
            || self.connections.contains_key(&peer)
        {
            // A dial is under way (or a connection is up): the waiting streams go there.
            return;
        }
        for opening in self.waiting.remove(&peer).unwrap_or_default() {
            match opening {
                Opening::Exchange(id) => {
                    if self.outgoing.remove(&id).is_some() {
                        let out = self.view.abandon(id);
                        self.apply(Some(peer), out);
                        self.failed(
                            peer,
                            Role::Initiator,
                            ExchangeError::Dial(error.to_string()),
                        );
                    }
                }
                Opening::Push(_) => self.stats.pushes_failed += 1,
            }
        }
    }

    pub(super) fn on_connection_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        if let Some(list) = self.connections.get_mut(&peer) {
            list.retain(|c| *c != connection);
            if list.is_empty() {
                self.connections.remove(&peer);
            }
        }
        let lost: Vec<ExchangeId> = self
            .outgoing
            .iter()
            .filter(|(_, e)| e.connection == Some(connection))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            self.outgoing.remove(&id);
            let out = self.view.fail(id);
            self.apply(Some(peer), out);
            self.failed(peer, Role::Initiator, ExchangeError::ConnectionClosed);
        }
        let lost: Vec<(ConnectionId, StreamKey)> = self
            .answered
            .keys()
            .filter(|(c, _)| *c == connection)
            .copied()
            .collect();
        for key in lost {
            if let Some(exchange) = self.answered.remove(&key) {
                let out = self.view.fail(exchange.id);
                self.apply(Some(peer), out);
                self.failed(peer, Role::Responder, ExchangeError::ConnectionClosed);
            }
        }
    }

    /// Housekeeping: the core's expiry, and exchanges past their deadline.
    pub(super) fn housekeeping(&mut self) {
        let out = self.view.tick(now_ms());
        self.apply(None, out);
        let now = Instant::now();
        let late: Vec<ExchangeId> = self
            .outgoing
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let Some(exchange) = self.outgoing.remove(&id) else {
                continue;
            };
            if let Some(list) = self.waiting.get_mut(&exchange.peer) {
                list.retain(|o| !matches!(o, Opening::Exchange(x) if *x == id));
            }
            if let Some(connection) = exchange.connection {
                self.reply(exchange.peer, connection, StreamKey::Exchange(id), reset());
            }
            let out = self.view.fail(id);
            self.apply(Some(exchange.peer), out);
            self.failed(exchange.peer, Role::Initiator, ExchangeError::Timeout);
        }
        let late: Vec<(ConnectionId, StreamKey)> = self
            .answered
            .iter()
            .filter(|(_, e)| e.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for (connection, key) in late {
            let Some(exchange) = self.answered.remove(&(connection, key)) else {
                continue;
            };
            self.reply(exchange.peer, connection, key, reset());
            let out = self.view.fail(exchange.id);
            self.apply(Some(exchange.peer), out);
            self.failed(exchange.peer, Role::Responder, ExchangeError::Timeout);
        }
    }
}
