//! The neighbour set: a small, stable set of peers drawn from the view that the local peer
//! keeps connections open to, for a broadcast layer to mesh over (as HyParView's active view
//! serves PlumTree in iroh-gossip).
//!
//! [`Neighbours`] is sans-IO, like the view: it decides which peers to ask, which requests to
//! accept, and when a link is up or down; the behaviour carries its decisions over neighbour
//! streams. Links are symmetric: a peer that accepts a request counts the link among its own
//! neighbours, so each link is one connection that both ends keep open, and each peer has at
//! most `degree` of them. A link is replaced only when it goes down (its stream or connection
//! closes, or its peer is found dead by a failed shuffle), never because its peer left the
//! view: a broadcast layer wants a stable set.

use std::hash::Hash;

use rand::{Rng, RngExt};

/// What [`Neighbours`] decided about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change<I> {
    /// A link is up.
    Up(I),
    /// A link is down.
    Down(I),
}

/// The neighbour set's state.
#[derive(Debug, Clone)]
pub(crate) struct Neighbours<I> {
    degree: usize,
    /// Peers linked with, in the order the links came up.
    links: Vec<I>,
    /// Peers asked, whose answer has not come.
    asking: Vec<I>,
    /// Peers that refused, failed or dropped a link lately, and the round until which they are
    /// not asked again.
    resting: Vec<(I, u64)>,
    round: u64,
}

/// Rounds a peer that refused or failed is not asked again.
const REST_ROUNDS: u64 = 5;

impl<I: Clone + PartialEq + Hash> Neighbours<I> {
    /// A set of at most `degree` links.
    pub(crate) fn new(degree: usize) -> Self {
        Self {
            degree,
            links: Vec::with_capacity(degree),
            asking: Vec::new(),
            resting: Vec::new(),
            round: 0,
        }
    }

    /// The peers linked with, in the order the links came up.
    pub(crate) fn links(&self) -> &[I] {
        &self.links
    }

    /// Whether `peer` is a neighbour.
    pub(crate) fn is_linked(&self, peer: &I) -> bool {
        self.links.contains(peer)
    }

    /// Whether `peer` is a neighbour or is being asked to be one.
    pub(crate) fn is_involved(&self, peer: &I) -> bool {
        self.links.contains(peer) || self.asking.contains(peer)
    }

    /// A new round (once per shuffle interval): the peers to ask now, drawn uniformly at
    /// random from `view` among those neither linked, asked nor resting, so that links and
    /// requests together reach `degree`.
    pub(crate) fn round<R: Rng + ?Sized>(&mut self, rng: &mut R, view: &[I]) -> Vec<I> {
        self.round += 1;
        let round = self.round;
        self.resting.retain(|(_, until)| *until > round);
        let wanted = self
            .degree
            .saturating_sub(self.links.len() + self.asking.len());
        if wanted == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<&I> = view
            .iter()
            .filter(|peer| {
                !self.links.contains(peer)
                    && !self.asking.contains(peer)
                    && !self.resting.iter().any(|(p, _)| p == *peer)
            })
            .collect();
        let count = wanted.min(candidates.len());
        for i in 0..count {
            let j = rng.random_range(i..candidates.len());
            candidates.swap(i, j);
        }
        let chosen: Vec<I> = candidates[..count].iter().map(|p| (*p).clone()).collect();
        self.asking.extend(chosen.iter().cloned());
        chosen
    }

    /// Whether our requests now ask for priority: we have no link at all.
    pub(crate) fn needs_priority(&self) -> bool {
        self.links.is_empty()
    }

    /// A request from `peer`: accepted while there is room (a link to a peer already linked
    /// or asked is accepted too: two requests crossed, one link). A `priority` request (its
    /// peer has no link at all) is accepted when the set is full too, at the cost of a link
    /// chosen at random, as HyParView keeps a peer that lost every neighbour connected.
    /// Returns whether to accept, and the changes (a link dropped, the link up).
    pub(crate) fn request<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        peer: &I,
        priority: bool,
    ) -> (bool, Vec<Change<I>>) {
        if self.links.contains(peer) {
            return (true, Vec::new());
        }
        let mut changes = Vec::new();
        if let Some(k) = self.asking.iter().position(|p| p == peer) {
            self.asking.swap_remove(k);
        } else if self.links.len() + self.asking.len() >= self.degree {
            if !priority || self.links.is_empty() {
                return (false, changes);
            }
            let dropped = self
                .links
                .swap_remove(rng.random_range(0..self.links.len()));
            self.rest(&dropped);
            changes.push(Change::Down(dropped));
        }
        self.links.push(peer.clone());
        changes.push(Change::Up(peer.clone()));
        (true, changes)
    }

    /// `peer` accepted our request.
    pub(crate) fn accepted(&mut self, peer: &I) -> Option<Change<I>> {
        let k = self.asking.iter().position(|p| p == peer);
        if let Some(k) = k {
            self.asking.swap_remove(k);
        }
        if self.links.contains(peer) {
            return None;
        }
        if k.is_none() && self.links.len() >= self.degree {
            // An answer to a request we no longer count (the link went down meanwhile, and
            // others took its place): keep to the degree.
            return None;
        }
        self.links.push(peer.clone());
        Some(Change::Up(peer.clone()))
    }

    /// Our request to `peer` was refused or failed (`dead`: the peer itself failed, not our
    /// side). It is not asked again for a few rounds.
    pub(crate) fn not_accepted(&mut self, peer: &I) {
        if let Some(k) = self.asking.iter().position(|p| p == peer) {
            self.asking.swap_remove(k);
        }
        self.rest(peer);
    }

    /// The link to `peer` went down (its last stream or connection closed, or a shuffle with
    /// it failed): its place is free for another peer at the next round.
    pub(crate) fn down(&mut self, peer: &I) -> Option<Change<I>> {
        if let Some(k) = self.asking.iter().position(|p| p == peer) {
            self.asking.swap_remove(k);
            self.rest(peer);
        }
        let k = self.links.iter().position(|p| p == peer)?;
        self.links.remove(k);
        self.rest(peer);
        Some(Change::Down(peer.clone()))
    }

    fn rest(&mut self, peer: &I) {
        let until = self.round + REST_ROUNDS;
        match self.resting.iter_mut().find(|(p, _)| p == peer) {
            Some(resting) => resting.1 = until,
            None => self.resting.push((peer.clone(), until)),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn rounds_ask_for_the_missing_links_among_view_peers() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut n = Neighbours::new(3);
        let view: Vec<u32> = (1..=6).collect();
        let asked = n.round(&mut rng, &view);
        assert_eq!(asked.len(), 3);
        assert!(n.round(&mut rng, &view).is_empty(), "requests count");
        assert_eq!(n.accepted(&asked[0]), Some(Change::Up(asked[0])));
        n.not_accepted(&asked[1]);
        let again = n.round(&mut rng, &view);
        assert_eq!(again.len(), 1);
        assert!(
            !asked[..2].contains(&again[0]),
            "neither linked nor resting"
        );
        assert!(n.round(&mut rng, &[]).is_empty());
    }

    #[test]
    fn requests_are_accepted_while_there_is_room_and_crossings_make_one_link() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut n = Neighbours::new(2);
        let asked = n.round(&mut rng, &[7, 8]);
        assert_eq!(asked.len(), 2);
        // 7 asks us while we ask it: one link.
        assert_eq!(n.request(&mut rng, &7, false), (true, vec![Change::Up(7)]));
        assert_eq!(n.accepted(&7), None);
        assert_eq!(
            n.request(&mut rng, &9, false),
            (false, vec![]),
            "full: one link, one request"
        );
        n.not_accepted(&8);
        assert_eq!(n.request(&mut rng, &9, false), (true, vec![Change::Up(9)]));
        assert_eq!(n.links(), &[7, 9]);
        assert_eq!(
            n.request(&mut rng, &9, false),
            (true, vec![]),
            "already linked"
        );
        // Full: a peer with no link at all is taken in place of a random one.
        assert_eq!(n.request(&mut rng, &4, false), (false, vec![]));
        let (accepted, changes) = n.request(&mut rng, &4, true);
        assert!(accepted);
        assert_eq!(changes.len(), 2);
        assert!(matches!(changes[0], Change::Down(7 | 9)));
        assert_eq!(changes[1], Change::Up(4));
        assert_eq!(n.links().len(), 2);
        assert!(!n.needs_priority());
    }

    #[test]
    fn a_link_is_replaced_only_when_it_goes_down() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut n = Neighbours::new(1);
        let first = n.round(&mut rng, &[1, 2, 3])[0];
        n.accepted(&first);
        // The view changes completely: the link stays.
        assert!(n.round(&mut rng, &[4, 5]).is_empty());
        assert!(n.is_linked(&first));
        assert_eq!(n.down(&first), Some(Change::Down(first)));
        assert_eq!(n.down(&first), None);
        let next = n.round(&mut rng, &[first, 4]);
        assert_eq!(next, vec![4], "the peer that went down rests");
        // A late answer after the degree was reached again does not exceed it.
        assert_eq!(n.accepted(&4), Some(Change::Up(4)));
        assert_eq!(n.accepted(&5), None);
        assert_eq!(n.links(), &[4]);
    }
}
