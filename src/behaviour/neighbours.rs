//! Carrying the neighbour set's decisions: asking view peers to be neighbours each round,
//! answering their requests, and following the links' streams and connections
//! ([`Config::with_neighbours`](crate::Config::with_neighbours)).

use libp2p_identity::PeerId;
use libp2p_swarm::{ConnectionId, NotifyHandler, ToSwarm};

use super::{Behaviour, Event};
use crate::{
    handler::{Command, InEvent, InboundId},
    neighbours::{Accepted, Change},
};

impl Behaviour {
    /// The neighbours: the peers this peer keeps a link (an open connection) with, in no
    /// particular order. Empty unless [`Config::with_neighbours`](crate::Config::with_neighbours)
    /// asks for some.
    pub fn neighbours(&self) -> &[PeerId] {
        self.neighbours.as_ref().map_or(&[], |n| n.links())
    }

    /// Asks peers of the view to be neighbours while links are missing (once per round).
    pub(super) fn neighbour_round(&mut self) {
        let Some(neighbours) = self.neighbours.as_mut() else {
            return;
        };
        let view: Vec<PeerId> = self.view.entries().iter().map(|e| *e.peer_id()).collect();
        let priority = neighbours.needs_priority();
        for peer in neighbours.round(&mut self.rng, &view) {
            let addresses = self
                .view
                .get(&peer)
                .map(|e| e.addresses().to_vec())
                .unwrap_or_default();
            tracing::debug!(%peer, "asking a peer to be a neighbour");
            let action = self.outbound.open_neighbour(peer, addresses, priority);
            self.events.push_back(action);
        }
    }

    /// `peer` asks to be a neighbour (with priority: it has none), on `connection`.
    pub(super) fn neighbour_request(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        id: InboundId,
        priority: bool,
    ) {
        let (accept, changes) = match self.neighbours.as_mut() {
            Some(neighbours) => neighbours.request(&mut self.rng, &peer, priority),
            None => (false, Vec::new()),
        };
        if accept {
            self.count_stream(peer, connection);
        }
        self.events.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: InEvent(Command::AnswerNeighbour { id, accept }),
        });
        for change in changes {
            if let Change::Down(dropped) = &change {
                // Dropped for a peer with no link: its streams are closed.
                self.close_neighbour_streams(dropped);
                self.release(dropped);
            }
            self.report_neighbours(Some(change));
        }
    }

    /// `peer` answered our request, on `connection`.
    pub(super) fn neighbour_answered(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        accepted: bool,
    ) {
        let Some(neighbours) = self.neighbours.as_mut() else {
            return;
        };
        if !accepted {
            neighbours.not_accepted(&peer);
            self.release(&peer);
            return;
        }
        let (answer, change) = neighbours.accepted(&peer);
        if answer == Accepted::NotKept {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: peer,
                handler: NotifyHandler::One(connection),
                event: InEvent(Command::CloseNeighbours),
            });
            self.release(&peer);
            return;
        }
        self.count_stream(peer, connection);
        self.report_neighbours(change);
    }

    /// Our request to `peer` failed before it was asked (no connection).
    pub(super) fn neighbour_not_accepted(&mut self, peer: &PeerId) {
        if let Some(neighbours) = self.neighbours.as_mut() {
            neighbours.not_accepted(peer);
        }
        self.release(peer);
    }

    /// A link stream with `peer` is held on `connection`.
    fn count_stream(&mut self, peer: PeerId, connection: ConnectionId) {
        *self
            .neighbour_streams
            .entry(peer)
            .or_default()
            .entry(connection)
            .or_default() += 1;
    }

    /// One of the link's streams to `peer`, on `connection`, ended: the link is down with its
    /// last stream.
    pub(super) fn neighbour_stream_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        let Some(streams) = self.neighbour_streams.get_mut(&peer) else {
            return;
        };
        if let Some(open) = streams.get_mut(&connection) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                streams.remove(&connection);
            }
        }
        if streams.is_empty() {
            self.neighbour_down(&peer);
        }
    }

    /// `connection` to `peer` closed: the link streams it held are gone, and the link with
    /// them if none is left on another connection; a request to a peer no longer connected
    /// at all is moot.
    pub(super) fn neighbour_connection_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        let streams_left = match self.neighbour_streams.get_mut(&peer) {
            Some(streams) => {
                streams.remove(&connection);
                streams.len()
            }
            None => 0,
        };
        let Some(neighbours) = self.neighbours.as_ref() else {
            return;
        };
        let linked = neighbours.is_linked(&peer);
        let asked = !linked && neighbours.is_involved(&peer);
        if (linked && streams_left == 0) || (asked && self.outbound.connections(&peer).is_empty()) {
            self.neighbour_down(&peer);
        }
    }

    /// The link to `peer` is down: its last connection closed, or the peer is found dead. Its
    /// streams, if any are left, are closed.
    pub(super) fn neighbour_down(&mut self, peer: &PeerId) {
        let Some(neighbours) = self.neighbours.as_mut() else {
            return;
        };
        let change = neighbours.down(peer);
        self.close_neighbour_streams(peer);
        self.release(peer);
        self.report_neighbours(change);
    }

    /// Closes the neighbour streams left to `peer`, on each connection that holds some.
    fn close_neighbour_streams(&mut self, peer: &PeerId) {
        for (connection, _) in self.neighbour_streams.remove(peer).unwrap_or_default() {
            self.events.push_back(ToSwarm::NotifyHandler {
                peer_id: *peer,
                handler: NotifyHandler::One(connection),
                event: InEvent(Command::CloseNeighbours),
            });
        }
    }

    fn report_neighbours(&mut self, change: Option<Change<PeerId>>) {
        match change {
            Some(Change::Up(peer_id)) => {
                tracing::debug!(peer = %peer_id, "neighbour up");
                self.emit(Event::NeighbourUp { peer_id });
            }
            Some(Change::Down(peer_id)) => {
                tracing::debug!(peer = %peer_id, "neighbour down");
                self.emit(Event::NeighbourDown { peer_id });
            }
            None => {}
        }
    }
}
