//! [`Defence::Anchored`](crate::Defence::Anchored): Cyclon with a few sampler-held anchors and
//! limited push, after Brahms.
//!
//! The node keeps `samplers` private min-wise samplers. Each has a secret seed and keeps, of
//! all the peers heard of *directly* (the initiators of the shuffles it answers, and the
//! entries of the replies to its own shuffles: Brahms' push and pull streams), the one whose
//! keyed hash ranks lowest under that seed. The first `anchors` samplers' peers are pinned in
//! the view after every completed shuffle: Cyclon's swaps never send or replace them, and when
//! one is the oldest entry the shuffle with it leaves it in place. A pinned peer that fails to
//! answer leaves, is remembered, and the samplers holding it start afresh with new seeds.
//! Every other entry follows Cyclon's rules. Inbound shuffles beyond `push_budget` per cycle
//! (between two shuffles the node starts) are answered, but their entries are not merged.

use std::hash::Hash;

use super::{
    Entry, EntryPayload, MergeLog,
    rank::{DeadRing, Keys, rank},
};

#[derive(Debug, Clone)]
struct Sampler<I, A> {
    seed: u64,
    rank: u64,
    best: Option<Entry<I, A>>,
}

/// The anchored defence's private state beside the view's entries.
#[derive(Debug, Clone)]
pub(super) struct Anchored<I, A> {
    params: AnchoredParams,
    keys: Keys,
    samplers: Vec<Sampler<I, A>>,
    /// Peers pinned in the view (at most `anchors`).
    pins: Vec<I>,
    /// How many pinned entries [`park`](Self::park) moved to the end of the entries.
    parked: usize,
    dead: DeadRing<I>,
    /// Inbound shuffles since the node last started one.
    inbound: u32,
    /// Sampler resets so far (numbers the derived seeds).
    resets: u64,
    /// Shuffles started so far: the node's clock, in cycles.
    cycle: u64,
}

/// Cycles a failed peer is not taken back into a sampler.
const FAILED_PEER_CYCLES: u64 = 40;

impl<I, A> Anchored<I, A> {
    /// How many pinned entries the last [`park`](Self::park) moved to the end.
    pub(super) fn parked(&self) -> usize {
        self.parked
    }
}

impl<I: Clone + PartialEq + Hash, A: EntryPayload> Anchored<I, A> {
    pub(super) fn new<R: rand::Rng + ?Sized>(params: AnchoredParams, rng: &mut R) -> Self {
        let keys = Keys::draw(rng);
        let samplers = (0..params.samplers)
            .map(|_| Sampler {
                seed: rng.next_u64(),
                rank: u64::MAX,
                best: None,
            })
            .collect();
        Self {
            params,
            keys,
            samplers,
            pins: Vec::with_capacity(params.anchors),
            parked: 0,
            dead: DeadRing::new(params.dead_memory, FAILED_PEER_CYCLES),
            inbound: 0,
            resets: 0,
            cycle: 0,
        }
    }

    /// Feeds a peer heard of directly to every sampler.
    pub(super) fn observe(&mut self, local: &I, entry: &Entry<I, A>) {
        if entry.id == *local || self.dead.contains(&entry.id, self.cycle) {
            return;
        }
        let hash = self.keys.hash(&entry.id);
        for sampler in &mut self.samplers {
            let rank = rank(hash, sampler.seed);
            if rank < sampler.rank {
                sampler.rank = rank;
                sampler.best = Some(entry.clone());
            }
        }
        self.refresh_payload(entry);
    }

    /// A peer heard of indirectly: it feeds no sampler, but a sampler that holds it takes a
    /// newer signed record (the record rule of every merge: an anchor never brings back an
    /// older record than the node has seen).
    pub(super) fn refresh_payload(&mut self, entry: &Entry<I, A>) {
        for sampler in &mut self.samplers {
            if let Some(best) = sampler.best.as_mut()
                && best.id == entry.id
                && entry.addresses.supersedes(&best.addresses)
            {
                best.addresses = entry.addresses.clone();
            }
        }
    }

    /// Moves the pinned entries to the end of `entries` (forgetting pins no longer in the
    /// view), so that Cyclon's random choices run over the first
    /// `entries.len() - parked()` entries only.
    pub(super) fn park(&mut self, entries: &mut [Entry<I, A>]) {
        self.pins.retain(|pin| entries.iter().any(|e| &e.id == pin));
        let len = entries.len();
        self.parked = 0;
        for pin in &self.pins {
            if let Some(k) = entries[..len - self.parked]
                .iter()
                .position(|e| &e.id == pin)
            {
                entries.swap(k, len - 1 - self.parked);
                self.parked += 1;
            }
        }
    }

    /// A new cycle: the node starts a shuffle. Parks the pins and resets the inbound budget.
    pub(super) fn start_cycle(&mut self, entries: &mut [Entry<I, A>]) {
        self.inbound = 0;
        self.cycle += 1;
        self.park(entries);
    }

    /// Counts an inbound shuffle; returns whether it is beyond the budget.
    pub(super) fn over_budget(&mut self) -> bool {
        self.inbound = self.inbound.saturating_add(1);
        self.params.push_budget > 0 && self.inbound > self.params.push_budget
    }

    pub(super) fn unpin(&mut self, id: &I) {
        self.pins.retain(|pin| pin != id);
    }

    /// The target of a shuffle did not answer: remembered, and every sampler holding it starts
    /// afresh with a new secret seed.
    pub(super) fn fail(&mut self, target: &I) {
        self.dead.push(target.clone(), self.cycle);
        self.unpin(target);
        for sampler in &mut self.samplers {
            if sampler.best.as_ref().is_some_and(|e| &e.id == target) {
                sampler.seed = self.keys.derive_seed(self.resets);
                self.resets += 1;
                sampler.rank = u64::MAX;
                sampler.best = None;
            }
        }
    }

    /// Pins the first `anchors` samplers' peers in the view: a peer already there is pinned
    /// where it is; a new one takes an empty slot or the oldest entry that is not pinned. A
    /// peer in `held` (the view's payloads before the merge that preceded) comes back with the
    /// newer of the two records.
    pub(super) fn refresh(
        &mut self,
        entries: &mut Vec<Entry<I, A>>,
        held: &[(I, A)],
        view_size: usize,
        max_age: u32,
        log: &mut impl MergeLog<I>,
    ) {
        let anchors = &self.samplers[..self.params.anchors];
        self.pins.retain(|pin| {
            anchors
                .iter()
                .any(|s| s.best.as_ref().is_some_and(|e| &e.id == pin))
        });
        for sampler in anchors {
            let Some(best) = &sampler.best else {
                continue;
            };
            if self.pins.contains(&best.id) {
                continue;
            }
            if entries.iter().any(|e| e.id == best.id) {
                self.pins.push(best.id.clone());
                continue;
            }
            let mut entry = Entry {
                age: best.age.min(max_age),
                ..best.clone()
            };
            if let Some((_, newer)) = held.iter().find(|(id, _)| *id == entry.id)
                && newer.supersedes(&entry.addresses)
            {
                entry.addresses = newer.clone();
            }
            if entries.len() < view_size {
                log.added(&entry.id);
                self.pins.push(entry.id.clone());
                entries.push(entry);
                continue;
            }
            let oldest = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !self.pins.contains(&e.id))
                .max_by_key(|&(k, e)| (e.age, std::cmp::Reverse(k)))
                .map(|(k, _)| k);
            if let Some(k) = oldest {
                log.added(&entry.id);
                self.pins.push(entry.id.clone());
                let old = std::mem::replace(&mut entries[k], entry);
                log.replaced(old.id);
            }
        }
    }
}

/// The parameters of [`Defence::Anchored`](crate::view::Defence::Anchored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AnchoredParams {
    /// View entries held by samplers instead of by Cyclon's swaps. Default: 2.
    pub anchors: usize,
    /// Private min-wise samplers (the first `anchors` fill the anchor entries). Default: 20.
    pub samplers: usize,
    /// Inbound shuffles per cycle (between two shuffles the node starts) whose entries are
    /// merged; later ones are answered but their entries are ignored. 0: no budget. Default: 3.
    pub push_budget: u32,
    /// Failed peers remembered (a ring), each kept out of the samplers for 40 cycles.
    /// Default: 100.
    pub dead_memory: usize,
}

impl Default for AnchoredParams {
    fn default() -> Self {
        Self {
            anchors: 2,
            samplers: 20,
            push_budget: 3,
            dead_memory: 100,
        }
    }
}

impl AnchoredParams {
    /// Sets [`anchors`](Self::anchors).
    pub fn with_anchors(mut self, anchors: usize) -> Self {
        self.anchors = anchors;
        self
    }

    /// Sets [`samplers`](Self::samplers).
    pub fn with_samplers(mut self, samplers: usize) -> Self {
        self.samplers = samplers;
        self
    }

    /// Sets [`push_budget`](Self::push_budget).
    pub fn with_push_budget(mut self, push_budget: u32) -> Self {
        self.push_budget = push_budget;
        self
    }

    /// Sets [`dead_memory`](Self::dead_memory).
    pub fn with_dead_memory(mut self, dead_memory: usize) -> Self {
        self.dead_memory = dead_memory;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::view::PartialView;
    use crate::view::{Defence, ShuffleParams};

    fn view(c: usize, l: usize, anchored: AnchoredParams, seed: u64) -> PartialView<u32> {
        let params = ShuffleParams::new(c, l).with_defence(Defence::Anchored(anchored));
        PartialView::with_rng(0, params, &mut StdRng::seed_from_u64(seed)).unwrap()
    }

    fn entries(ids: impl IntoIterator<Item = u32>) -> Vec<Entry<u32>> {
        ids.into_iter().map(|id| Entry::new(id, (), 0)).collect()
    }

    fn pins(view: &PartialView<u32>) -> Vec<u32> {
        match view.defence.as_deref() {
            Some(crate::view::DefenceState::Anchored(a)) => a.pins.clone(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn parameters_are_checked() {
        let p = AnchoredParams::default().with_anchors(4);
        let params = ShuffleParams::new(4, 2).with_defence(Defence::Anchored(p));
        assert!(params.validate().is_err(), "no Cyclon entry left");
        let p = p.with_anchors(2).with_samplers(1);
        let params = ShuffleParams::new(4, 2).with_defence(Defence::Anchored(p));
        assert!(params.validate().is_err(), "fewer samplers than anchors");
    }

    /// After a completed shuffle the anchors are pinned in the view; Cyclon's swaps never
    /// send or replace them, and a pinned target stays.
    #[test]
    fn anchors_are_pinned_and_never_swapped() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut v = view(6, 3, AnchoredParams::default(), 1);
        for id in 1..=6 {
            v.insert(Entry::new(id, (), 0));
        }
        let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
        v.complete_shuffle(shuffle.id, entries([20, 21, 22]))
            .unwrap();
        assert_eq!(pins(&v).len(), 2);
        for round in 0..40u32 {
            let pinned = pins(&v);
            assert!(pinned.iter().all(|p| v.contains(p)), "round {round}");
            let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
            assert!(
                shuffle.request[1..]
                    .iter()
                    .all(|e| !pinned.contains(e.peer_id()))
            );
            if pinned.contains(shuffle.target.peer_id()) {
                assert!(
                    v.contains(shuffle.target.peer_id()),
                    "a pinned target stays"
                );
            }
            let fresh = 100 + 3 * round;
            v.complete_shuffle(shuffle.id, entries(fresh..fresh + 3))
                .unwrap();
            let pinned = pins(&v);
            let (reply, _) = v.answer_shuffle(&mut rng, &7, entries([fresh + 1000]));
            assert!(reply.iter().all(|e| !pinned.contains(e.peer_id())));
            assert!(
                pinned.iter().all(|p| v.contains(p)),
                "merges never replace anchors"
            );
        }
        let ids: HashSet<u32> = v.entries().iter().map(|e| *e.peer_id()).collect();
        assert_eq!(ids.len(), v.len());
        assert!(v.len() <= 6);
    }

    #[test]
    fn inbound_shuffles_beyond_the_budget_are_answered_but_not_merged() {
        let mut rng = StdRng::seed_from_u64(2);
        let p = AnchoredParams::default().with_push_budget(2);
        let mut v = view(6, 3, p, 2);
        v.insert(Entry::new(1, (), 0));
        v.start_shuffle(&mut rng, ()).unwrap();
        for (n, id) in [10u32, 20, 30].into_iter().enumerate() {
            let (_, merge) = v.answer_shuffle(&mut rng, &id, entries(id..id + 4));
            if n < 2 {
                assert_eq!(merge.added.len(), 3);
            } else {
                assert!(merge.added.is_empty());
                assert_eq!(merge.ignored.over_budget, 3);
                assert_eq!(merge.ignored.excess, 1);
            }
        }
        // A new cycle, a new budget.
        v.start_shuffle(&mut rng, ()).unwrap();
        let (_, merge) = v.answer_shuffle(&mut rng, &40, entries([40]));
        assert_eq!(merge.ignored.over_budget, 0);
    }

    #[test]
    fn a_failed_anchor_leaves_and_its_samplers_start_afresh() {
        let mut rng = StdRng::seed_from_u64(3);
        let p = AnchoredParams::default().with_anchors(1).with_samplers(1);
        let mut v = view(4, 2, p, 3);
        v.insert(Entry::new(1, (), 0));
        let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
        v.complete_shuffle(shuffle.id, entries([5])).unwrap();
        let anchor = pins(&v)[0];
        for entry in &mut v.entries {
            entry.age = if entry.id == anchor { 90 } else { 0 };
        }
        let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.peer_id(), anchor);
        assert!(v.contains(&anchor));
        assert_eq!(v.fail_shuffle(shuffle.id).map(|f| f.target), Some(anchor));
        assert!(!v.contains(&anchor), "a failed anchor leaves");
        assert!(pins(&v).is_empty());
        // Heard of again, it is not taken back into a sampler.
        v.start_shuffle(&mut rng, ()).ok();
        let shuffle = v.start_shuffle(&mut rng, ()).ok();
        if let Some(shuffle) = shuffle {
            v.complete_shuffle(shuffle.id, entries([anchor])).unwrap();
        }
        assert!(!pins(&v).contains(&anchor));
    }
}
