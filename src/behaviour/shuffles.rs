//! Carrying the core's shuffles: the periodic round, sending a shuffle the core started,
//! ending it with the reply or the failure, answering other peers' shuffles, and reporting
//! what each merge changed.

use libp2p_identity::PeerId;
use libp2p_swarm::{CloseConnection, ConnectionId, NotifyHandler, ToSwarm};

use super::{Behaviour, Event, RemovalReason};
use crate::{
    handler::{Command, InEvent, InboundId, OutboundShuffle, ShuffleError},
    protocol::ViewEntry,
    record::PeerAddresses,
    stats::Count,
    view::{MergeOutcome, OutgoingShuffle, ShuffleId, StartShuffleError},
};

/// While the local swarm refuses dials, one periodic round in this many runs as usual (dials
/// if it must); the others shuffle with connected peers only, or are skipped.
pub(super) const DIAL_RETRY_ROUNDS: u32 = 5;

impl Behaviour {
    /// Sends a shuffle the core started to its target: on a connection if there is one,
    /// otherwise after dialling it with the view's addresses.
    pub(super) fn send_shuffle(
        &mut self,
        shuffle: OutgoingShuffle<PeerId, PeerAddresses>,
    ) -> ShuffleId {
        let id = shuffle.id;
        let (peer, addresses, _) = shuffle.target.into_parts();
        self.count(Count::ShuffleStarted);
        if shuffle.probe {
            self.count(Count::ProbeStarted);
            tracing::debug!(%peer, %id, "probing a seed or a lost peer");
        } else {
            tracing::debug!(%peer, %id, "starting a shuffle");
        }
        if shuffle.target_left {
            self.emit(Event::PeerRemoved {
                peer_id: peer,
                reason: RemovalReason::ShuffleTarget,
            });
        }
        let outbound = OutboundShuffle::new(id, shuffle.request);
        // A shuffle that needs a dial gets one timeout for the dial and one for the exchange.
        let timeout = 2 * self.config.request_timeout;
        let action = self
            .outbound
            .send(peer, addresses.to_vec(), outbound, timeout);
        self.events.push_back(action);
        id
    }

    pub(super) fn complete_shuffle(&mut self, id: ShuffleId, entries: Vec<ViewEntry>) {
        let Some(peer) = self.outbound.end(id) else {
            return; // Already failed, e.g. by its deadline.
        };
        self.release(&peer);
        let received = entries.len();
        let Some(done) = self.view.complete_shuffle(id, entries) else {
            return;
        };
        self.count(Count::ShuffleCompleted);
        tracing::debug!(peer = %done.target, %id, received, "shuffle completed");
        self.report_merge(done.merge);
        self.emit(Event::ShuffleCompleted {
            id,
            peer_id: done.target,
            sent: done.sent,
            received,
        });
    }

    pub(super) fn fail_shuffle(&mut self, id: ShuffleId, error: ShuffleError) {
        if let ShuffleError::DialRefusedLocally(_) = error {
            return self.cancel_shuffle(id, error);
        }
        let Some(failed) = self.view.fail_shuffle(id) else {
            return; // Already ended.
        };
        let peer = failed.target;
        if failed.removed {
            self.emit(Event::PeerRemoved {
                peer_id: peer,
                reason: RemovalReason::ShuffleTarget,
            });
        }
        self.outbound.end(id);
        self.release(&peer);
        // A neighbour that fails a shuffle is dead: its link goes.
        self.neighbour_down(&peer);
        self.count(Count::ShuffleFailed(&error));
        tracing::debug!(%peer, %id, %error, "shuffle failed");
        self.emit(Event::ShuffleFailed {
            id,
            peer_id: peer,
            error,
        });
    }

    /// With [`Config::with_close_shuffle_connections`](crate::Config::with_close_shuffle_connections),
    /// asks the handlers of the connections our dials opened to `peer` to say when no Cyclon
    /// stream runs on them any more ([`Self::close_if_released`] then closes them), unless
    /// `peer` is (or is being asked to be) a neighbour.
    pub(super) fn release(&mut self, peer: &PeerId) {
        if !self.config.close_shuffle_connections()
            || self
                .neighbours
                .as_ref()
                .is_some_and(|n| n.is_involved(peer))
        {
            return;
        }
        for connection in self.outbound.dialled(peer) {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: *peer,
                handler: NotifyHandler::One(connection),
                event: InEvent(Command::ReportIdle),
            });
        }
    }

    /// The handler of a connection our dial opened runs no Cyclon stream any more: closed,
    /// unless its peer is (or is being asked to be) a neighbour.
    pub(super) fn close_if_released(&mut self, peer: PeerId, connection: ConnectionId) {
        let neighbour = self
            .neighbours
            .as_ref()
            .is_some_and(|n| n.is_involved(&peer));
        // A shuffle handed to the connection since its handler reported: the next release.
        if !neighbour && !self.outbound.busy(connection) {
            tracing::debug!(%peer, "closing a connection our dial opened");
            self.events.push_back(ToSwarm::CloseConnection {
                peer_id: peer,
                connection: CloseConnection::One(connection),
            });
        }
    }

    /// Ends a shuffle the local swarm would not let us send: the core puts its target back,
    /// nothing counts against the peer.
    fn cancel_shuffle(&mut self, id: ShuffleId, error: ShuffleError) {
        let Some(cancelled) = self.view.cancel_shuffle(id) else {
            return; // Already ended.
        };
        let peer = cancelled.target;
        self.outbound.end(id);
        self.release(&peer);
        if cancelled.restored
            && let Some(entry) = self.view.get(&peer)
        {
            let addresses = entry.addresses().to_vec();
            let verified = entry.addresses().is_verified();
            self.emit(Event::PeerAdded {
                peer_id: peer,
                addresses,
                verified,
            });
        }
        self.refused_retries = self.refused_retries.saturating_add(1);
        self.count(Count::ShuffleFailed(&error));
        tracing::debug!(%peer, %id, %error, "shuffle withdrawn: the local swarm refused the dial");
        self.emit(Event::ShuffleFailed {
            id,
            peer_id: peer,
            error,
        });
    }

    pub(super) fn answer_shuffle(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        id: InboundId,
        entries: Vec<ViewEntry>,
    ) {
        let notify = |command| ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: InEvent(command),
        };
        if let Some(limit) = self.config.inbound_rate_limit()
            && !self.rate_limiter.allow(peer, limit, self.created.elapsed())
        {
            self.count(Count::InboundRateLimited);
            tracing::debug!(%peer, "refusing a shuffle: the peer asks too often");
            self.events.push_back(notify(Command::Refuse { id }));
            return;
        }
        let received = entries.len();
        let (reply, merge) = self.view.answer_shuffle(&mut self.rng, &peer, entries);
        self.count(Count::InboundAnswered);
        let sent = reply.len();
        self.events
            .push_back(notify(Command::Answer { id, entries: reply }));
        self.report_merge(merge);
        self.emit(Event::ShuffleAnswered {
            peer_id: peer,
            received,
            sent,
        });
    }

    /// Reports how a merge changed the view: events for the peers that left and entered it,
    /// and the addresses of the entries it took or updated to the swarm (only verified ones
    /// when signed records are required).
    pub(super) fn report_merge(&mut self, merge: MergeOutcome<PeerId>) {
        self.count(Count::Ignored(&merge.ignored));
        for peer_id in merge.removed {
            self.emit(Event::PeerRemoved {
                peer_id,
                reason: RemovalReason::Replaced,
            });
        }
        let taken = merge.added.iter().map(|peer| (peer, true));
        let kept = merge.refreshed.iter().chain(&merge.updated);
        for (&peer_id, entered) in taken.chain(kept.map(|peer| (peer, false))) {
            let Some(entry) = self.view.get(&peer_id) else {
                continue;
            };
            let verified = entry.addresses().is_verified();
            let addresses = entry.addresses().to_vec();
            self.report_addresses(peer_id, &addresses, verified);
            if entered {
                self.emit(Event::PeerAdded {
                    peer_id,
                    addresses,
                    verified,
                });
            }
        }
    }

    /// The periodic shuffle, when the timer fires: the core decides whether this round runs,
    /// and whether a [`Rejoin`](crate::Rejoin) probe follows it.
    ///
    /// While the local swarm refuses new dials (its connection limits), the round's target is
    /// the oldest peer of the view the node is connected to; without one, the round is
    /// skipped (a dial would be refused again, after a handshake's worth of work). Every
    /// [`DIAL_RETRY_ROUNDS`]th round of such a time runs as usual, dialling if it must (the
    /// budget may have freed without a connection closing), and every dial refused again
    /// doubles that wait, up to 8 times.
    pub(super) fn periodic_shuffle(&mut self) {
        let own = self.local.payload();
        let own = (!own.is_empty()).then_some(own);
        let refused = self.outbound.dials_refused();
        if refused {
            // Each retry refused again doubles the wait before the next (up to 8 times).
            let every = DIAL_RETRY_ROUNDS << self.refused_retries.min(3);
            self.rounds_without_dial = (self.rounds_without_dial + 1) % every;
        } else {
            self.rounds_without_dial = 0;
            self.refused_retries = 0;
        }
        let started = if refused && self.rounds_without_dial != 0 {
            let outbound = &self.outbound;
            self.view
                .periodic_shuffle_among(&mut self.rng, own.clone(), |peer| {
                    outbound.is_connected(peer)
                })
        } else {
            self.view.periodic_shuffle(&mut self.rng, own.clone())
        };
        match started {
            Ok(shuffle) => _ = self.send_shuffle(shuffle),
            Err(StartShuffleError::NoReachablePeer) => {
                self.count(Count::NoReachablePeer);
                tracing::debug!("no periodic shuffle: dials are refused and no peer is connected");
            }
            Err(reason) => tracing::debug!(%reason, "no periodic shuffle"),
        }
        if let Some(probe) = self.view.periodic_probe(&mut self.rng, own) {
            self.send_shuffle(probe);
        }
    }
}
