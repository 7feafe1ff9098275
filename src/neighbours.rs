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

/// What became of our request to a peer that accepted it ([`Neighbours::accepted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// The link is up.
    Up,
    /// The peer was a neighbour already (two requests crossed): one link.
    AlreadyLinked,
    /// The answer came too late (the request had expired, or the set filled meanwhile): the
    /// link is not kept, and its stream is to be closed.
    NotKept,
}

/// The neighbour set's state.
#[derive(Debug, Clone)]
pub(crate) struct Neighbours<I> {
    degree: usize,
    /// Peers linked with.
    links: Vec<I>,
    /// Peers asked whose answer has not come, and the round they were asked in.
    asking: Vec<(I, u64)>,
    /// Peers that refused, failed or dropped a link lately, and the round until which they are
    /// neither asked nor accepted (but with priority).
    resting: Vec<(I, u64)>,
    round: u64,
    /// The last round a priority request made room by dropping a link.
    last_eviction: Option<u64>,
}

/// Rounds a peer that refused or failed is not asked again.
const REST_ROUNDS: u64 = 5;
/// Rounds an unanswered request counts before it is given up (its stream or dial was lost).
const ASK_ROUNDS: u64 = 3;

impl<I: Clone + PartialEq + Hash> Neighbours<I> {
    /// A set of at most `degree` links.
    pub(crate) fn new(degree: usize) -> Self {
        Self {
            degree,
            links: Vec::new(),
            asking: Vec::new(),
            resting: Vec::new(),
            round: 0,
            last_eviction: None,
        }
    }

    /// The peers linked with (in no particular order).
    pub(crate) fn links(&self) -> &[I] {
        &self.links
    }

    /// Whether `peer` is a neighbour.
    pub(crate) fn is_linked(&self, peer: &I) -> bool {
        self.links.contains(peer)
    }

    /// Whether `peer` is a neighbour or is being asked to be one.
    pub(crate) fn is_involved(&self, peer: &I) -> bool {
        self.links.contains(peer) || self.asked(peer).is_some()
    }

    fn asked(&self, peer: &I) -> Option<usize> {
        self.asking.iter().position(|(p, _)| p == peer)
    }

    fn is_resting(&self, peer: &I) -> bool {
        self.resting.iter().any(|(p, _)| p == peer)
    }

    /// A new round (once per shuffle interval): requests unanswered for [`ASK_ROUNDS`] are
    /// given up, then the peers to ask now are drawn uniformly at random from `view` among
    /// those neither linked, asked nor resting, so that links and requests together reach
    /// `degree`.
    pub(crate) fn round<R: Rng + ?Sized>(&mut self, rng: &mut R, view: &[I]) -> Vec<I> {
        self.round += 1;
        let round = self.round;
        self.resting.retain(|(_, until)| *until > round);
        let expired: Vec<I> = self
            .asking
            .iter()
            .filter(|(_, asked)| round - asked > ASK_ROUNDS)
            .map(|(p, _)| p.clone())
            .collect();
        for peer in expired {
            self.not_accepted(&peer);
        }
        let wanted = self
            .degree
            .saturating_sub(self.links.len() + self.asking.len());
        if wanted == 0 {
            return Vec::new();
        }
        let mut candidates: Vec<&I> = view
            .iter()
            .filter(|peer| {
                !self.links.contains(peer) && self.asked(peer).is_none() && !self.is_resting(peer)
            })
            .collect();
        let count = wanted.min(candidates.len());
        for i in 0..count {
            let j = rng.random_range(i..candidates.len());
            candidates.swap(i, j);
        }
        let chosen: Vec<I> = candidates[..count].iter().map(|p| (*p).clone()).collect();
        self.asking
            .extend(chosen.iter().map(|p| (p.clone(), round)));
        chosen
    }

    /// Whether our requests now ask for priority: we have no link at all.
    pub(crate) fn needs_priority(&self) -> bool {
        self.links.is_empty()
    }

    /// A request from `peer`: accepted while there is room (a request from a peer already
    /// linked, or asked by us, is accepted too: two requests crossed, one link); refused from
    /// a resting peer. A `priority` request (its peer has no link at all) is accepted when the
    /// set is full too: an unanswered request of ours is given up for it, or, failing that, a
    /// link chosen at random is dropped, at most once per round, as HyParView keeps a peer that
    /// lost every neighbour connected. Returns whether to accept, and the changes (a link
    /// dropped, the link up).
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
        if let Some(k) = self.asked(peer) {
            self.asking.swap_remove(k);
        } else if self.degree == 0 || (!priority && self.is_resting(peer)) {
            return (false, changes);
        } else if self.links.len() + self.asking.len() >= self.degree {
            if !priority {
                return (false, changes);
            }
            if !self.asking.is_empty() {
                // The request asked longest ago gives way.
                let k = (0..self.asking.len())
                    .min_by_key(|&k| self.asking[k].1)
                    .unwrap_or(0);
                let (given_up, _) = self.asking.swap_remove(k);
                self.rest(&given_up);
            } else if self.last_eviction != Some(self.round) && !self.links.is_empty() {
                self.last_eviction = Some(self.round);
                let dropped = self
                    .links
                    .swap_remove(rng.random_range(0..self.links.len()));
                self.rest(&dropped);
                changes.push(Change::Down(dropped));
            } else {
                return (false, changes);
            }
        }
        self.links.push(peer.clone());
        changes.push(Change::Up(peer.clone()));
        (true, changes)
    }

    /// `peer` accepted our request.
    pub(crate) fn accepted(&mut self, peer: &I) -> (Accepted, Option<Change<I>>) {
        let Some(k) = self.asked(peer) else {
            return if self.links.contains(peer) {
                (Accepted::AlreadyLinked, None)
            } else {
                // A request given up (expired, or the peer went down meanwhile): the set may
                // be full again with others, and the peer may be resting.
                (Accepted::NotKept, None)
            };
        };
        self.asking.swap_remove(k);
        if self.links.contains(peer) {
            return (Accepted::AlreadyLinked, None);
        }
        self.links.push(peer.clone());
        (Accepted::Up, Some(Change::Up(peer.clone())))
    }

    /// Our request to `peer` was refused, failed, or given up. It is not asked again for a
    /// few rounds.
    pub(crate) fn not_accepted(&mut self, peer: &I) {
        if let Some(k) = self.asked(peer) {
            self.asking.swap_remove(k);
        }
        self.rest(peer);
    }

    /// The link to `peer` went down (its last stream closed, the connection it stood on
    /// closed, or a shuffle with it failed), or our request to it is moot: its place is free
    /// for another peer at the next round, and the peer rests.
    pub(crate) fn down(&mut self, peer: &I) -> Option<Change<I>> {
        if let Some(k) = self.asked(peer) {
            self.asking.swap_remove(k);
            self.rest(peer);
        }
        let k = self.links.iter().position(|p| p == peer)?;
        self.links.swap_remove(k);
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

    fn up(peer: u32) -> (Accepted, Option<Change<u32>>) {
        (Accepted::Up, Some(Change::Up(peer)))
    }

    #[test]
    fn rounds_ask_for_the_missing_links_among_view_peers() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut n = Neighbours::new(3);
        let view: Vec<u32> = (1..=6).collect();
        let asked = n.round(&mut rng, &view);
        assert_eq!(asked.len(), 3);
        assert!(n.round(&mut rng, &view).is_empty(), "requests count");
        assert_eq!(n.accepted(&asked[0]), up(asked[0]));
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
        assert_eq!(n.accepted(&7), (Accepted::AlreadyLinked, None));
        assert_eq!(
            n.request(&mut rng, &9, false),
            (false, vec![]),
            "full: one link, one request"
        );
        n.not_accepted(&8);
        assert_eq!(n.request(&mut rng, &8, false), (false, vec![]), "resting");
        assert_eq!(n.request(&mut rng, &9, false), (true, vec![Change::Up(9)]));
        assert_eq!(
            n.request(&mut rng, &9, false),
            (true, vec![]),
            "already linked"
        );
        // Full of links: a peer with no link at all is taken in place of a random one, once
        // per round.
        assert_eq!(n.request(&mut rng, &4, false), (false, vec![]));
        let (accepted, changes) = n.request(&mut rng, &4, true);
        assert!(accepted);
        assert_eq!(changes.len(), 2);
        assert!(matches!(changes[0], Change::Down(7 | 9)));
        assert_eq!(changes[1], Change::Up(4));
        assert_eq!(n.links().len(), 2);
        assert_eq!(
            n.request(&mut rng, &5, true),
            (false, vec![]),
            "once per round"
        );
        n.round(&mut rng, &[]);
        assert!(n.request(&mut rng, &5, true).0, "the next round again");
        assert!(!n.needs_priority());
    }

    /// A set full only with requests of its own gives one up for a priority request, rather
    /// than a link.
    #[test]
    fn a_priority_request_takes_the_place_of_a_request_first() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut n = Neighbours::new(2);
        assert_eq!(n.round(&mut rng, &[1, 2, 3]).len(), 2);
        let (accepted, changes) = n.request(&mut rng, &9, true);
        assert!(accepted);
        assert_eq!(changes, vec![Change::Up(9)], "no link dropped");
        assert_eq!(n.links(), &[9]);
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
        assert_eq!(n.accepted(&4), up(4));
        assert_eq!(n.links(), &[4]);
    }

    /// An answer to a request that was given up, or that comes after the peer went down, is
    /// not kept: the set never exceeds its degree.
    #[test]
    fn late_answers_never_exceed_the_degree() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut n = Neighbours::new(2);
        let asked = n.round(&mut rng, &[1, 2]);
        // 1 is taken down while asked (a shuffle with it failed); another is asked instead.
        n.down(&asked[0]);
        let replacement = n.round(&mut rng, &[1, 2, 3]);
        assert_eq!(replacement, vec![3]);
        assert_eq!(n.accepted(&asked[0]), (Accepted::NotKept, None));
        assert_eq!(n.accepted(&asked[1]), up(asked[1]));
        assert_eq!(n.accepted(&3), up(3));
        assert_eq!(n.links().len(), 2);
        // A request never answered is given up after a few rounds.
        let mut n = Neighbours::new(1);
        assert_eq!(n.round(&mut rng, &[7]), vec![7]);
        for _ in 0..ASK_ROUNDS {
            assert!(n.round(&mut rng, &[7, 8]).is_empty());
        }
        assert_eq!(
            n.round(&mut rng, &[7, 8]),
            vec![8],
            "7 given up and resting"
        );
        assert_eq!(n.accepted(&7), (Accepted::NotKept, None));
    }
}
