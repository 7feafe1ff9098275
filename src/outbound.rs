//! Delivery of what the local peer sends: where each shuffle it started runs, and until when
//! (on a connection to its target, or queued for a connection being dialled), the neighbour
//! requests waiting for a connection, the connections the swarm has open and which of them
//! our dials opened, and what a dial error says about the peer ([`refusal`]). The shuffles'
//! targets and contents are the core's.

use std::{
    collections::{HashMap, HashSet},
    task::{Context, Poll},
    time::Duration,
};

use futures::FutureExt;
use futures_timer::Delay;
use libp2p_connection_limits::Exceeded;
use libp2p_core::Multiaddr;
use libp2p_identity::PeerId;
use libp2p_swarm::{
    ConnectionClosed, ConnectionId, DialError, DialFailure, FromSwarm, NotifyHandler, ToSwarm,
    behaviour::ConnectionEstablished,
    dial_opts::{DialOpts, PeerCondition},
};
use web_time::Instant;

use crate::{
    handler::{Command, InEvent, OutboundShuffle, ShuffleError},
    view::ShuffleId,
};

#[derive(Debug)]
struct InFlight {
    /// The shuffle's target.
    peer: PeerId,
    /// The connection the shuffle was handed to, once there is one.
    connection: Option<ConnectionId>,
    deadline: Instant,
}

/// Shuffles waiting for a connection to their target, and the addresses to dial it at.
#[derive(Debug, Default)]
struct AwaitingConnection {
    addresses: Vec<Multiaddr>,
    shuffles: Vec<OutboundShuffle>,
}

/// The delivery of outbound shuffles.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    awaiting_connection: HashMap<PeerId, AwaitingConnection>,
    in_flight: HashMap<ShuffleId, InFlight>,
    /// Fires at the earliest deadline; `None` when nothing is in flight.
    deadline_timer: Option<Delay>,
    /// The local swarm refused or aborted one of our dials, and no outgoing connection has
    /// closed or opened since: new dials would likely be refused too.
    dials_refused: bool,
    /// Peers asked to be neighbours once a connection to them opens: where to dial them, and
    /// whether the request has priority.
    awaiting_neighbour: HashMap<PeerId, (Vec<Multiaddr>, bool)>,
    /// Peers whose neighbour request failed for want of a connection.
    failed_neighbours: Vec<PeerId>,
    /// Connections opened by our dials, for shuffles or neighbour requests (not yet closed).
    dialled: HashSet<ConnectionId>,
    /// Policy refusals in a row, per peer.
    policy_refusals: HashMap<PeerId, u8>,
}

/// Local refusals of one peer in a row, not by the connection limits, after which the peer
/// counts as failed: a policy of the local swarm (a block list) refuses it every time.
const MAX_POLICY_REFUSALS: u8 = 3;

/// Peers whose policy refusals are counted at most (the table starts afresh beyond).
const MAX_REFUSED_PEERS: usize = 1024;

/// What a dial error says about the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Nothing: the local swarm's connection budget refused the dial (libp2p's
    /// `connection_limits`, before or after the handshake), or it was aborted locally.
    Budget,
    /// Nothing, this time: another behaviour of the local swarm denied it (a block list, a
    /// memory limit, an application's policy).
    Policy,
    /// The dial failed for a reason of the peer or its addresses (transport, wrong peer id,
    /// no addresses).
    NotLocal,
}

/// How the local swarm's part in a dial error is taken. `DialPeerConditionFalse` (no dial
/// happened) is not an error of a dial: the shuffle waits for the dial under way.
pub(crate) fn refusal(error: &DialError) -> Refusal {
    match error {
        DialError::Aborted => Refusal::Budget,
        DialError::Denied { cause } if cause.downcast_ref::<Exceeded>().is_some() => {
            Refusal::Budget
        }
        DialError::Denied { .. } => Refusal::Policy,
        _ => Refusal::NotLocal,
    }
}

impl Outbound {
    /// Shuffles in flight.
    pub(crate) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether a connection to `peer` is open.
    pub(crate) fn is_connected(&self, peer: &PeerId) -> bool {
        self.connections.contains_key(peer)
    }

    /// Whether the local swarm's budget refused a dial (ours or another behaviour's) and no
    /// connection has opened or closed since.
    pub(crate) fn dials_refused(&self) -> bool {
        self.dials_refused
    }

    /// Sends `shuffle` to `peer` within `timeout`: to a handler of an open connection, or by
    /// dialling `peer` at `addresses` and handing it to the new connection's handler. Returns
    /// what the swarm must do.
    pub(crate) fn send<E>(
        &mut self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        shuffle: OutboundShuffle,
        timeout: Duration,
    ) -> ToSwarm<E, InEvent> {
        let id = shuffle.id;
        let connection = self.connections.get(&peer).and_then(|c| c.first()).copied();
        self.in_flight.insert(
            id,
            InFlight {
                peer,
                connection,
                deadline: Instant::now() + timeout,
            },
        );
        if self.deadline_timer.is_none() {
            self.deadline_timer = Some(Delay::new(timeout));
        }
        if let Some(connection) = connection {
            return ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: InEvent(Command::Shuffle(shuffle)),
            };
        }
        let waiting = self.awaiting_connection.entry(peer).or_default();
        waiting.shuffles.push(shuffle);
        for address in &addresses {
            if !waiting.addresses.contains(address) {
                waiting.addresses.push(address.clone());
            }
        }
        ToSwarm::Dial {
            opts: DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
        }
    }

    /// Asks `peer` to be a neighbour: on an open connection, or by dialling it at `addresses`
    /// and asking once the connection is there. Returns what the swarm must do.
    pub(crate) fn open_neighbour<E>(
        &mut self,
        peer: PeerId,
        addresses: Vec<Multiaddr>,
        priority: bool,
    ) -> ToSwarm<E, InEvent> {
        if let Some(&connection) = self.connections.get(&peer).and_then(|c| c.first()) {
            return ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: InEvent(Command::OpenNeighbour { priority }),
            };
        }
        self.awaiting_neighbour
            .insert(peer, (addresses.clone(), priority));
        ToSwarm::Dial {
            opts: DialOpts::peer_id(peer)
                .addresses(addresses)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build(),
        }
    }

    /// The peers whose neighbour request failed because no connection to them could be made,
    /// since the last call.
    pub(crate) fn take_failed_neighbours(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.failed_neighbours)
    }

    /// The open connections to `peer`.
    pub(crate) fn connections(&self, peer: &PeerId) -> &[ConnectionId] {
        self.connections.get(peer).map_or(&[], Vec::as_slice)
    }

    /// Ends shuffle `id`; returns its target if it was still in flight.
    pub(crate) fn end(&mut self, id: ShuffleId) -> Option<PeerId> {
        let peer = self.in_flight.remove(&id)?.peer;
        if let Some(waiting) = self.awaiting_connection.get_mut(&peer) {
            waiting.shuffles.retain(|s| s.id != id);
            if waiting.shuffles.is_empty() {
                self.awaiting_connection.remove(&peer);
            }
        }
        Some(peer)
    }

    /// The open connections to `peer` that our dials opened.
    pub(crate) fn dialled(&self, peer: &PeerId) -> Vec<ConnectionId> {
        self.connections(peer)
            .iter()
            .copied()
            .filter(|c| self.dialled.contains(c))
            .collect()
    }

    /// What a new connection to `peer` runs at once: the shuffles waiting for it, and the
    /// neighbour request waiting for it, if any (with priority or not).
    pub(crate) fn on_new_connection(
        &mut self,
        peer: &PeerId,
        connection: ConnectionId,
        dialer: bool,
    ) -> (Vec<OutboundShuffle>, Option<bool>) {
        let neighbour = self
            .awaiting_neighbour
            .remove(peer)
            .map(|(_, priority)| priority);
        let shuffles = self
            .awaiting_connection
            .remove(peer)
            .map(|w| w.shuffles)
            .unwrap_or_default();
        for shuffle in &shuffles {
            if let Some(in_flight) = self.in_flight.get_mut(&shuffle.id) {
                in_flight.connection = Some(connection);
            }
        }
        if dialer && (!shuffles.is_empty() || neighbour.is_some()) {
            self.dialled.insert(connection);
        }
        (shuffles, neighbour)
    }

    /// The addresses to dial `peer` at: `known` ones, then those of the shuffles waiting for
    /// it (the target has left the view, but not these shuffles' addresses).
    pub(crate) fn dial_addresses(&self, peer: &PeerId, known: &[Multiaddr]) -> Vec<Multiaddr> {
        let mut addresses = known.to_vec();
        let waiting = self.awaiting_connection.get(peer).map(|w| &w.addresses);
        let neighbour = self.awaiting_neighbour.get(peer).map(|(a, _)| a);
        for address in waiting.into_iter().chain(neighbour).flatten() {
            if !addresses.contains(address) {
                addresses.push(address.clone());
            }
        }
        addresses
    }

    /// Follows the swarm's connections; returns the shuffles that failed with them, in the
    /// order they started.
    pub(crate) fn on_swarm_event(&mut self, event: &FromSwarm) -> Vec<(ShuffleId, ShuffleError)> {
        let failed_on = |connection: ConnectionId, this: &Self| -> Vec<ShuffleId> {
            this.select(|f| f.connection == Some(connection))
        };
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                if endpoint.is_dialer() {
                    self.dials_refused = false;
                }
                self.policy_refusals.remove(peer_id);
                self.connections
                    .entry(*peer_id)
                    .or_default()
                    .push(*connection_id);
                Vec::new()
            }
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                ..
            }) => {
                // An outgoing connection closing frees outgoing budget. (Beside protocols that
                // keep connections open, none may close: a periodic round dials every few
                // rounds anyway.)
                if endpoint.is_dialer() {
                    self.dials_refused = false;
                }
                self.dialled.remove(connection_id);
                if let Some(connections) = self.connections.get_mut(peer_id) {
                    connections.retain(|c| c != connection_id);
                    if connections.is_empty() {
                        self.connections.remove(peer_id);
                    }
                }
                let failed = failed_on(*connection_id, self);
                with_error(failed, || ShuffleError::ConnectionClosed)
            }
            FromSwarm::DialFailure(DialFailure {
                peer_id,
                error,
                connection_id,
            }) => {
                // A connection that got our handler and was then denied.
                self.dialled.remove(connection_id);
                let mut failed = failed_on(*connection_id, self);
                if !matches!(error, DialError::DialPeerConditionFalse(_))
                    && let Some(peer) = peer_id
                    && self.awaiting_neighbour.remove(peer).is_some()
                {
                    self.failed_neighbours.push(*peer);
                }
                // Unless our dial was skipped because another one is under way (then we wait
                // for that one), the shuffles waiting for this peer fail.
                if !matches!(error, DialError::DialPeerConditionFalse(_))
                    && let Some(waiting) = peer_id.and_then(|p| self.awaiting_connection.get(&p))
                {
                    failed.extend(waiting.shuffles.iter().map(|s| s.id));
                    failed.sort_unstable();
                    failed.dedup();
                }
                let refusal = match refusal(error) {
                    Refusal::Policy => self.count_policy_refusal(*peer_id),
                    other => other,
                };
                match refusal {
                    Refusal::Budget | Refusal::Policy => {
                        self.dials_refused |= refusal == Refusal::Budget;
                        with_error(failed, || {
                            ShuffleError::DialRefusedLocally(error.to_string())
                        })
                    }
                    Refusal::NotLocal => {
                        with_error(failed, || ShuffleError::Dial(error.to_string()))
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    /// Counts a policy refusal of `peer`: still a refusal, or, the
    /// [`MAX_POLICY_REFUSALS`]th in a row, a failure of the peer (the local swarm refuses it
    /// every time).
    fn count_policy_refusal(&mut self, peer: Option<PeerId>) -> Refusal {
        let Some(peer) = peer else {
            return Refusal::Policy;
        };
        if self.policy_refusals.len() >= MAX_REFUSED_PEERS {
            self.policy_refusals.clear();
        }
        let count = self.policy_refusals.entry(peer).or_default();
        *count += 1;
        if *count >= MAX_POLICY_REFUSALS {
            self.policy_refusals.remove(&peer);
            Refusal::NotLocal
        } else {
            Refusal::Policy
        }
    }

    /// Whether a shuffle of ours runs or waits on `connection`.
    pub(crate) fn busy(&self, connection: ConnectionId) -> bool {
        self.in_flight
            .values()
            .any(|f| f.connection == Some(connection))
    }

    /// The shuffles whose deadline has passed, once the deadline timer fires.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Vec<ShuffleId>> {
        let Some(timer) = self.deadline_timer.as_mut() else {
            return Poll::Pending;
        };
        if timer.poll_unpin(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        let expired = self.select(|f| f.deadline <= now);
        self.deadline_timer = self
            .in_flight
            .iter()
            .filter(|(id, _)| !expired.contains(id))
            .map(|(_, f)| f.deadline)
            .min()
            .map(|next| {
                Delay::new(
                    next.saturating_duration_since(now)
                        .max(Duration::from_millis(1)),
                )
            });
        Poll::Ready(expired)
    }

    /// The shuffles in flight that `which` selects, in the order they started.
    fn select(&self, which: impl Fn(&InFlight) -> bool) -> Vec<ShuffleId> {
        let mut ids: Vec<ShuffleId> = self
            .in_flight
            .iter()
            .filter(|(_, f)| which(f))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }
}

fn with_error(
    ids: Vec<ShuffleId>,
    error: impl Fn() -> ShuffleError,
) -> Vec<(ShuffleId, ShuffleError)> {
    ids.into_iter().map(|id| (id, error())).collect()
}

#[cfg(test)]
mod tests {
    use std::io;

    use libp2p_swarm::ConnectionDenied;

    use super::*;

    #[test]
    fn dial_errors_are_read_for_what_they_say_about_the_peer() {
        assert_eq!(refusal(&DialError::Aborted), Refusal::Budget);
        let policy = DialError::Denied {
            cause: ConnectionDenied::new(io::Error::other("blocked")),
        };
        assert_eq!(refusal(&policy), Refusal::Policy);
        assert_eq!(refusal(&DialError::NoAddresses), Refusal::NotLocal);
        // A policy that refuses one peer every time: the third refusal in a row is a failure.
        let mut outbound = Outbound::default();
        let peer = PeerId::random();
        assert_eq!(outbound.count_policy_refusal(Some(peer)), Refusal::Policy);
        assert_eq!(outbound.count_policy_refusal(Some(peer)), Refusal::Policy);
        assert_eq!(outbound.count_policy_refusal(Some(peer)), Refusal::NotLocal);
        assert_eq!(outbound.count_policy_refusal(Some(peer)), Refusal::Policy);
    }
}
