//! [`Defence::Seeded`](crate::Defence::Seeded): view slots with private seeds, after Basalt,
//! fed by a relay of news.
//!
//! **Slots.** Slot `i` has a secret seed `s_i`. Of all the peers the node hears of (partners,
//! and the entries of every request and reply it receives), the slot keeps the one whose keyed
//! hash ranks lowest under `s_i`: a peer heard of takes the first slot that is empty or whose
//! occupant it outranks, and the occupant leaves. Ranks depend on nothing an attacker
//! controls, so sending the same entries again and again gains nothing: a coalition of K
//! identities that shows all of them to a node that has heard of D honest peers holds about
//! K / (K + D) of its slots. The defence is therefore only as good as D is large.
//!
//! **News.** So that D grows fast, the entries a node sends are mostly *news*: entries it
//! received lately for peers it had not heard of before (a filter remembers the peers heard
//! of), `news` of them in a ring. The rest (`from_view`) are random view entries. Each
//! node's own fresh entry starts in its requests; news spreads from there.
//!
//! **Shuffles copy instead of swap.** The initiator contacts its oldest entry (the one reached
//! longest ago), which stays in its slot and becomes young again when it answers (one shuffle
//! in `probe_every` does this; the others contact a random peer of the news ring instead, so
//! that a node does not only talk to its fixed slots). A target that does not answer leaves,
//! and is remembered, so that neighbours' copies of it are not taken back for a while.
//! Entries carry ages (cycles since the sender last reached the peer or heard of it); entries
//! older than `relay_age` are not passed on, so entries for failed peers stop spreading and are
//! contacted soon by whoever takes them.

use std::hash::Hash;

use rand::{Rng, RngExt};

use super::{
    DefenceState, Entry, EntryPayload, MergeLog, PartialView, PendingShuffle, ShuffleId,
    rank::{DeadRing, Keys, SeenFilter, rank},
};
use crate::view::ShuffleMode;

/// Slot index meaning "empty".
const EMPTY: u32 = u32::MAX;

/// The seeded slots' private state beside the view's entries.
#[derive(Debug, Clone)]
pub(super) struct Seeded<I, A> {
    params: SeededParams,
    keys: Keys,
    /// Each slot's secret seed.
    seeds: Box<[u64]>,
    /// Each slot's occupant: an index into the view's entries, or [`EMPTY`].
    occupant: Box<[u32]>,
    /// Per entry (parallel to the view's entries): its slot and the keyed hash of its id.
    meta: Vec<Meta>,
    dead: DeadRing<I>,
    /// News: entries received lately for peers not heard of before, with the cycle they came
    /// in (a ring of `news`).
    news: Vec<(Entry<I, A>, u64)>,
    next_news: usize,
    /// Peers heard of lately (`None`: the news ring itself is the memory).
    seen: Option<SeenFilter>,
    /// Shuffles started so far: the node's clock, in cycles.
    cycle: u64,
    /// Indices of entries that may be passed on (a buffer reused by every message).
    candidates: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Meta {
    slot: u32,
    hash: u64,
}

impl<I: Clone + PartialEq + Hash, A: EntryPayload> Seeded<I, A> {
    pub(super) fn new<R: Rng + ?Sized>(params: SeededParams, slots: usize, rng: &mut R) -> Self {
        let keys = Keys::draw(rng);
        let seeds = (0..slots).map(|_| rng.next_u64()).collect();
        Self {
            params,
            keys,
            seeds,
            occupant: vec![EMPTY; slots].into_boxed_slice(),
            meta: Vec::with_capacity(slots),
            dead: DeadRing::new(params.dead_memory, u64::from(params.relay_age)),
            news: Vec::new(),
            next_news: 0,
            seen: (params.seen_memory > 0).then(|| SeenFilter::new(params.seen_memory)),
            cycle: 0,
            candidates: Vec::new(),
        }
    }

    /// Bootstrap: `entry` (new to the view, not the local node) takes the first empty slot, if
    /// any. Returns whether it did.
    pub(super) fn insert(&mut self, entries: &mut Vec<Entry<I, A>>, entry: Entry<I, A>) -> bool {
        let Some(slot) = self.occupant.iter().position(|&k| k == EMPTY) else {
            return false;
        };
        let hash = self.keys.hash(&entry.id);
        self.place(entries, slot, hash, entry);
        true
    }

    fn place(
        &mut self,
        entries: &mut Vec<Entry<I, A>>,
        slot: usize,
        hash: u64,
        entry: Entry<I, A>,
    ) {
        self.occupant[slot] = entries.len() as u32;
        self.meta.push(Meta {
            slot: slot as u32,
            hash,
        });
        entries.push(entry);
    }

    /// Removes entry `k`, emptying its slot.
    pub(super) fn remove_at(&mut self, entries: &mut Vec<Entry<I, A>>, k: usize) -> Entry<I, A> {
        let removed = entries.swap_remove(k);
        let meta = self.meta.swap_remove(k);
        self.occupant[meta.slot as usize] = EMPTY;
        if let Some(moved) = self.meta.get(k) {
            self.occupant[moved.slot as usize] = k as u32;
        }
        removed
    }

    /// The target of a shuffle did not answer: it leaves its slot, if it has one, and is not
    /// taken back while it is remembered. Returns whether it had a slot.
    pub(super) fn fail(&mut self, entries: &mut Vec<Entry<I, A>>, target: &I) -> bool {
        let k = entries.iter().position(|e| &e.id == target);
        if let Some(k) = k {
            self.remove_at(entries, k);
        }
        self.dead.push(target.clone(), self.cycle);
        k.is_some()
    }

    /// A peer the node heard of (`entry` is not the local node's): news if it was not heard
    /// of lately, and offered to the slots. Returns the entry it displaced from a slot, if any.
    fn observe(
        &mut self,
        entries: &mut Vec<Entry<I, A>>,
        entry: Entry<I, A>,
        log: &mut impl MergeLog<I>,
    ) -> Option<Entry<I, A>> {
        let hash = self.keys.hash(&entry.id);
        if let Some(held) = entries.iter_mut().find(|e| e.id == entry.id) {
            // The signed-record rule of every merge: a newer record replaces the held one.
            if entry.addresses.supersedes(&held.addresses) {
                held.addresses = entry.addresses;
                log.updated(&held.id);
            } else {
                log.ignored().duplicate += 1;
            }
            return None;
        }
        self.remember(&entry, hash);
        let mut slot = None;
        for (i, &seed) in self.seeds.iter().enumerate() {
            let k = self.occupant[i];
            if k == EMPTY || rank(hash, seed) < rank(self.meta[k as usize].hash, seed) {
                slot = Some(i);
                break;
            }
        }
        let Some(slot) = slot else {
            log.ignored().no_room += 1;
            return None;
        };
        if self.dead.contains(&entry.id, self.cycle) {
            log.ignored().dead += 1;
            return None;
        }
        log.added(&entry.id);
        match self.occupant[slot] {
            EMPTY => {
                self.place(entries, slot, hash, entry);
                None
            }
            k => {
                let k = k as usize;
                self.meta[k].hash = hash;
                let old = std::mem::replace(&mut entries[k], entry);
                log.replaced(old.id.clone());
                Some(old)
            }
        }
    }

    /// Keeps `entry` (not in the view) in the news ring if the node had not heard of it lately.
    fn remember(&mut self, entry: &Entry<I, A>, hash: u64) {
        let capacity = self.params.news;
        if capacity == 0 {
            return;
        }
        let heard = match &mut self.seen {
            Some(seen) => seen.check_and_insert(hash),
            None => self.news.iter().any(|(e, _)| e.id == entry.id),
        };
        if heard || self.dead.contains(&entry.id, self.cycle) {
            return;
        }
        let item = (entry.clone(), self.cycle);
        if self.news.len() < capacity {
            self.news.push(item);
        } else {
            self.news[self.next_news] = item;
            self.next_news = (self.next_news + 1) % capacity;
        }
    }

    /// Fills `out` up to `total` entries: `from_view` random view entries, then news, then
    /// more view entries if the news run short; never the entry or the peer in `skip`.
    fn fill<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        entries: &[Entry<I, A>],
        skip: (Option<usize>, &I),
        total: usize,
        from_view: usize,
        out: &mut Vec<Entry<I, A>>,
    ) {
        let from_view = if self.params.news == 0 {
            total
        } else {
            from_view
        };
        let end = out.len().saturating_add(from_view).min(total);
        self.relay_view(rng, entries, skip.0, end, out);
        self.relay_news(rng, skip.1, total, out);
        self.relay_view(rng, entries, skip.0, total, out);
    }

    /// Adds random view entries younger than `relay_age` and not in `out` yet, until `out`
    /// holds `end` entries or none is left; never entry `skip`.
    fn relay_view<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        entries: &[Entry<I, A>],
        skip: Option<usize>,
        end: usize,
        out: &mut Vec<Entry<I, A>>,
    ) {
        let relay_age = self.params.relay_age;
        self.candidates.clear();
        self.candidates
            .extend((0..entries.len() as u32).filter(|&k| {
                let entry = &entries[k as usize];
                Some(k as usize) != skip
                    && entry.age <= relay_age
                    && out.iter().all(|o| o.id != entry.id)
            }));
        for i in 0..self.candidates.len() {
            if out.len() >= end {
                break;
            }
            let j = rng.random_range(i..self.candidates.len());
            self.candidates.swap(i, j);
            out.push(entries[self.candidates[i] as usize].clone());
        }
    }

    /// The age of a news item now: its age when it came in, plus the cycles since.
    fn news_age(&self, (entry, at): &(Entry<I, A>, u64)) -> u32 {
        u32::try_from(self.cycle - at).map_or(u32::MAX, |d| entry.age.saturating_add(d))
    }

    /// Adds random news younger than `relay_age`, never naming `skip` nor a peer in `out`
    /// yet, until `out` holds `end` entries or none is left.
    fn relay_news<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        skip: &I,
        end: usize,
        out: &mut Vec<Entry<I, A>>,
    ) {
        let relay_age = self.params.relay_age;
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        candidates.extend((0..self.news.len() as u32).filter(|&k| {
            let item = &self.news[k as usize];
            &item.0.id != skip && self.news_age(item) <= relay_age
        }));
        for i in 0..candidates.len() {
            if out.len() >= end {
                break;
            }
            let j = rng.random_range(i..candidates.len());
            candidates.swap(i, j);
            let item = &self.news[candidates[i] as usize];
            if out.iter().all(|e| e.id != item.0.id) {
                let age = self.news_age(item);
                out.push(Entry {
                    age,
                    ..item.0.clone()
                });
            }
        }
        self.candidates = candidates;
    }

    /// A random news item younger than `relay_age`, not in the view and not remembered as
    /// failed: a target for exploring beyond the slots.
    fn pick_news<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        entries: &[Entry<I, A>],
    ) -> Option<Entry<I, A>> {
        let relay_age = self.params.relay_age;
        let candidates = (0..self.news.len()).filter(|&k| {
            let item = &self.news[k];
            self.news_age(item) <= relay_age
                && !self.dead.contains(&item.0.id, self.cycle)
                && entries.iter().all(|e| e.id != item.0.id)
        });
        let count = candidates.clone().count();
        let k = candidates.clone().nth(rng.random_range(0..count.max(1)))?;
        let item = &self.news[k];
        Some(Entry {
            age: self.news_age(item),
            ..item.0.clone()
        })
    }
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: EntryPayload,
{
    /// Starts a shuffle with the oldest entry (or a random one in basic mode), which stays in
    /// its slot, or with a random news item (one shuffle in `probe_every` probes the slots).
    /// The view is not empty.
    pub(super) fn seeded_start_into<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
        request: &mut Vec<Entry<I, A>>,
    ) -> (ShuffleId, Entry<I, A>) {
        let max_age = self.params.max_age;
        for entry in &mut self.entries {
            entry.age = entry.age.saturating_add(1).min(max_age);
        }
        let explore = {
            let (_, entries, seeded) = self.seeded();
            seeded.cycle += 1;
            let every = u64::from(seeded.params.probe_every.max(1));
            if seeded.cycle % every != 0 {
                seeded.pick_news(rng, entries)
            } else {
                None
            }
        };
        let (target, target_index) = match explore {
            Some(target) => (target, None),
            None => {
                let index = match self.params.mode {
                    ShuffleMode::Enhanced => self.oldest_index(rng),
                    ShuffleMode::Basic => rng.random_range(0..self.entries.len()),
                };
                (self.entries[index].clone(), Some(index))
            }
        };
        self.seeded_request(rng, local_addresses, (target_index, &target.id), request);

        let id = ShuffleId(self.next_shuffle_id);
        self.next_shuffle_id += 1;
        let mut sent = std::mem::take(&mut self.spare_sent);
        sent.extend(request[1..].iter().map(|e| e.id.clone()));
        // The target keeps its slot while the shuffle runs (it leaves if the shuffle fails).
        self.pending.push(PendingShuffle {
            id,
            target: target.clone(),
            target_left: false,
            sent,
            probe: false,
        });
        (id, target)
    }

    /// A request to `target` (at `target_index` in the view, if there): the local node's fresh
    /// entry, view entries and news, never the target's own entry. The view's order is kept.
    pub(super) fn seeded_request<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
        (target_index, target): (Option<usize>, &I),
        request: &mut Vec<Entry<I, A>>,
    ) {
        request.push(Entry::new(self.local.clone(), local_addresses, 0));
        let total = self.params.message_length();
        let (_, entries, seeded) = self.seeded();
        // The local node's own entry counts as one of the view's.
        let from_view = seeded.params.from_view.saturating_sub(1);
        seeded.fill(
            rng,
            entries,
            (target_index, target),
            total,
            from_view,
            request,
        );
    }

    /// Answers `from`: view entries and news (never `from`'s own entry), then every received
    /// entry is offered to the slots. `from` just proved to be alive: its entry, if any, is
    /// young again.
    pub(super) fn seeded_answer<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: &I,
        request: impl IntoIterator<Item = Entry<I, A>>,
        reply: &mut Vec<Entry<I, A>>,
        log: &mut impl MergeLog<I>,
    ) {
        reply.clear();
        let from_index = self.position(from);
        let total = self.params.message_length();
        let (_, entries, seeded) = self.seeded();
        let from_view = seeded.params.from_view;
        seeded.fill(rng, entries, (from_index, from), total, from_view, reply);
        if let Some(k) = from_index {
            self.entries[k].age = 0;
        }
        self.seeded_observe_all(request, log);
    }

    /// Ends a shuffle whose target answered: the target is young again, and every entry of
    /// the reply is offered to the slots.
    pub(super) fn seeded_complete(
        &mut self,
        target: &I,
        response: impl IntoIterator<Item = Entry<I, A>>,
        log: &mut impl MergeLog<I>,
    ) {
        if let Some(k) = self.position(target) {
            self.entries[k].age = 0;
        }
        self.seeded_observe_all(response, log);
    }

    /// Offers the received entries (at most the receive limit) to the slots.
    fn seeded_observe_all(
        &mut self,
        received: impl IntoIterator<Item = Entry<I, A>>,
        log: &mut impl MergeLog<I>,
    ) {
        let limit = self.message_length as usize;
        let max_age = self.params.max_age;
        let (local, entries, seeded) = self.seeded();
        // Payloads of peers this merge displaced from a slot: one that wins a slot back in the
        // same merge keeps the newer record (the record rule of every merge).
        let mut displaced: Vec<(I, A)> = Vec::new();
        for (n, entry) in received.into_iter().enumerate() {
            if n >= limit {
                log.ignored().excess += 1;
            } else if entry.id == *local {
                log.ignored().local += 1;
            } else {
                let mut entry = Entry {
                    age: entry.age.min(max_age),
                    ..entry
                };
                if let Some(k) = displaced.iter().position(|(id, _)| *id == entry.id)
                    && !entry.addresses.supersedes(&displaced[k].1)
                {
                    entry.addresses = displaced[k].1.clone();
                }
                if let Some(old) = seeded.observe(entries, entry, log) {
                    displaced.retain(|(id, _)| *id != old.id);
                    displaced.push((old.id, old.addresses));
                }
            }
        }
    }

    /// The local id, the entries and the seeded state, borrowed together.
    fn seeded(&mut self) -> (&I, &mut Vec<Entry<I, A>>, &mut Seeded<I, A>) {
        let Self {
            local,
            entries,
            defence,
            ..
        } = self;
        let Some(DefenceState::Seeded(seeded)) = defence.as_deref_mut() else {
            unreachable!("called under the seeded defence only")
        };
        (local, entries, seeded)
    }
}

/// The parameters of [`Defence::Seeded`](crate::view::Defence::Seeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SeededParams {
    /// Entries sent beyond the shuffle length `l` in every request and reply, so that nodes
    /// hear of more peers per shuffle (the slots keep the best-ranked peer *heard of*). The
    /// receiver considers up to `l + extra_entries`. Default: 5 (with `l` = 5, twice the
    /// entries of a plain shuffle).
    pub extra_entries: usize,
    /// Entries of a message taken from the view (the local node's own entry in a request
    /// counts as one); the others are news. Default: 2.
    pub from_view: usize,
    /// News remembered to be passed on: entries received lately for peers the node had not
    /// heard of (a ring). 0: every entry sent comes from the view. Default: 40.
    pub news: usize,
    /// Peers remembered as heard of, in each of the two generations of a Bloom filter
    /// (10 bits per peer): only peers not heard of lately are news. 0: no filter (a peer is
    /// news unless it is in the news ring already). Default: 4,096 (10 KiB).
    pub seen_memory: usize,
    /// One shuffle in this many contacts the oldest view entry (checking it is alive); the
    /// others contact a random peer from the news, so that a node does not only talk to its
    /// fixed slots. 1: every shuffle contacts the oldest entry. Default: 1.
    pub probe_every: u32,
    /// Entries older than this (cycles since the holder last reached the peer, or since it
    /// was heard of) are not passed on, so entries for failed peers stop spreading; a peer
    /// that failed to answer is not taken back for as many cycles. Default: 40.
    pub relay_age: u32,
    /// Failed peers remembered (a ring), each for `relay_age` cycles. Default: 100.
    pub dead_memory: usize,
}

impl Default for SeededParams {
    fn default() -> Self {
        Self {
            extra_entries: 5,
            from_view: 2,
            news: 40,
            seen_memory: 4096,
            probe_every: 1,
            relay_age: 40,
            dead_memory: 100,
        }
    }
}

impl SeededParams {
    /// Sets [`extra_entries`](Self::extra_entries).
    pub fn with_extra_entries(mut self, extra_entries: usize) -> Self {
        self.extra_entries = extra_entries;
        self
    }

    /// Sets [`from_view`](Self::from_view).
    pub fn with_from_view(mut self, from_view: usize) -> Self {
        self.from_view = from_view;
        self
    }

    /// Sets [`news`](Self::news).
    pub fn with_news(mut self, news: usize) -> Self {
        self.news = news;
        self
    }

    /// Sets [`seen_memory`](Self::seen_memory).
    pub fn with_seen_memory(mut self, seen_memory: usize) -> Self {
        self.seen_memory = seen_memory;
        self
    }

    /// Sets [`probe_every`](Self::probe_every).
    pub fn with_probe_every(mut self, probe_every: u32) -> Self {
        self.probe_every = probe_every;
        self
    }

    /// Sets [`relay_age`](Self::relay_age).
    pub fn with_relay_age(mut self, relay_age: u32) -> Self {
        self.relay_age = relay_age;
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
    use crate::view::InsertOutcome;
    use crate::view::{Defence, ShuffleParams};

    /// The seeded defence on a view of `c`, with at most `c` extra entries.
    fn params(c: usize, l: usize, mut seeded: SeededParams) -> ShuffleParams {
        seeded.extra_entries = seeded.extra_entries.min(c);
        ShuffleParams::new(c, l).with_defence(Defence::Seeded(seeded))
    }

    fn view(local: u32, params: ShuffleParams, seed: u64) -> PartialView<u32> {
        PartialView::with_rng(local, params, &mut StdRng::seed_from_u64(seed)).unwrap()
    }

    fn entries(ids: impl IntoIterator<Item = u32>) -> Vec<Entry<u32>> {
        ids.into_iter().map(|id| Entry::new(id, (), 0)).collect()
    }

    fn ids(view: &PartialView<u32>) -> HashSet<u32> {
        view.entries().iter().map(|e| *e.peer_id()).collect()
    }

    #[test]
    fn a_defence_needs_keys_from_a_random_number_generator() {
        let p = params(4, 2, SeededParams::default());
        assert_eq!(
            PartialView::<u32>::new(0, p).unwrap_err(),
            crate::view::ParamsError::DefenceNeedsRng
        );
        let mut bad = SeededParams::default().with_extra_entries(5);
        let too_many = ShuffleParams::new(4, 2).with_defence(Defence::Seeded(bad));
        assert!(too_many.validate().is_err());
        bad.extra_entries = 2;
        bad.probe_every = 0;
        assert!(params(4, 2, bad).validate().is_err());
    }

    /// Hearing of the same peers again changes nothing: each slot keeps the best-ranked peer
    /// heard of, whatever the order and however often.
    #[test]
    fn repeats_change_nothing_and_the_order_does_not_matter() {
        let p = params(6, 3, SeededParams::default());
        let mut rng = StdRng::seed_from_u64(1);
        let mut a = view(0, p, 7);
        let mut b = view(0, p, 7);
        let all: Vec<u32> = (1..200).collect();
        for chunk in all.chunks(8) {
            a.answer_shuffle(&mut rng, &chunk[0], entries(chunk.iter().copied()));
        }
        for chunk in all.rchunks(8) {
            b.answer_shuffle(&mut rng, &chunk[0], entries(chunk.iter().copied()));
        }
        assert_eq!(a.len(), 6);
        assert_eq!(ids(&a), ids(&b), "the same peers heard of, the same view");
        let before = ids(&a);
        for _ in 0..50 {
            let (_, merge) = a.answer_shuffle(&mut rng, &1, entries(1..9));
            assert!(merge.added.is_empty() && merge.removed.is_empty());
        }
        assert_eq!(ids(&a), before);
    }

    /// K identities repeated over and over against D honest ones heard of once each hold
    /// about K / (K + D) of the slots, over many nodes (each with its own keys); without the
    /// defence they take over.
    #[test]
    fn a_flood_holds_about_its_share_of_the_ids_heard_of() {
        let (k, d, c) = (10u32, 90u32, 8usize);
        let mut rng = StdRng::seed_from_u64(2);
        let malicious = |id: &u32| *id >= 1000;
        let mut held = 0;
        let mut plain_held = 0;
        for node in 0..200u64 {
            let mut defended = view(0, params(c, 4, SeededParams::default()), node);
            let mut plain = PartialView::<u32>::new(0, ShuffleParams::new(c, 4)).unwrap();
            for round in 0..d {
                let flood = entries((0..8).map(|i| 1000 + (round * 8 + i) % k));
                for v in [&mut defended, &mut plain] {
                    v.answer_shuffle(&mut rng, &(1 + round), entries([1 + round]));
                    v.answer_shuffle(&mut rng, &1000, flood.clone());
                }
            }
            held += defended
                .entries()
                .iter()
                .filter(|e| malicious(e.peer_id()))
                .count();
            plain_held += plain
                .entries()
                .iter()
                .filter(|e| malicious(e.peer_id()))
                .count();
        }
        let share = held as f64 / (200 * c) as f64;
        let bound = f64::from(k) / f64::from(k + d);
        assert!((share - bound).abs() < 0.04, "share {share}, bound {bound}");
        assert!(plain_held as f64 / (200 * c) as f64 > 0.8);
    }

    #[test]
    fn the_target_stays_and_a_failed_one_leaves_and_is_not_taken_back() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut v = view(0, params(4, 2, SeededParams::default()), 3);
        for (id, age) in [(1, 9), (2, 0), (3, 0)] {
            assert_eq!(v.insert(Entry::new(id, (), age)), InsertOutcome::Added);
        }
        let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.peer_id(), 1);
        assert!(v.contains(&1), "the target stays in its slot");
        assert!(shuffle.request.len() <= 2 + 4);
        assert!(shuffle.request.iter().skip(1).all(|e| *e.peer_id() != 1));
        let done = v.complete_shuffle(shuffle.id, entries([])).unwrap();
        assert_eq!(done.target, 1);
        assert_eq!(v.get(&1).unwrap().age(), 0, "it answered: young again");

        for entry in v.entries.iter_mut() {
            entry.age = if entry.id == 2 { 50 } else { 0 };
        }
        let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.peer_id(), 2);
        assert_eq!(v.fail_shuffle(shuffle.id).map(|f| f.target), Some(2));
        assert!(!v.contains(&2), "a target that does not answer leaves");
        let (_, merge) = v.answer_shuffle(&mut rng, &9, entries([2]));
        assert_eq!(merge.ignored.dead, 1, "and is not taken back");
        assert!(!v.contains(&2));
    }

    #[test]
    fn bootstrap_fills_empty_slots_only() {
        let mut v = view(0, params(2, 1, SeededParams::default()), 4);
        assert_eq!(v.insert(Entry::new(0, (), 0)), InsertOutcome::LocalNode);
        assert_eq!(v.insert(Entry::new(1, (), 0)), InsertOutcome::Added);
        assert_eq!(
            v.insert(Entry::new(1, (), 0)),
            InsertOutcome::AlreadyPresent
        );
        assert_eq!(v.insert(Entry::new(2, (), 0)), InsertOutcome::Added);
        assert_eq!(v.insert(Entry::new(3, (), 0)), InsertOutcome::ViewFull);
        assert_eq!(v.remove(&1).map(|e| *e.peer_id()), Some(1));
        assert_eq!(v.insert(Entry::new(3, (), 0)), InsertOutcome::Added);
        assert_eq!(ids(&v), HashSet::from([2, 3]));
    }

    /// Messages carry `l + extra_entries` entries: the view's, then news (peers heard of
    /// lately and not before), never the partner, never an entry older than `relay_age`.
    #[test]
    fn messages_carry_view_entries_and_news() {
        let mut rng = StdRng::seed_from_u64(5);
        let seeded = SeededParams::default()
            .with_extra_entries(3)
            .with_from_view(2)
            .with_relay_age(10);
        let mut v = view(0, params(4, 2, seeded), 5);
        for id in 1..=4 {
            v.insert(Entry::new(id, (), 0));
        }
        // Heard of 10..30: news (some take slots, the rest do not).
        for chunk in (10..30).collect::<Vec<u32>>().chunks(5) {
            v.answer_shuffle(&mut rng, &chunk[0], entries(chunk.iter().copied()));
        }
        let view_ids = ids(&v);
        let (reply, _) = v.answer_shuffle(&mut rng, &3, Vec::new());
        assert_eq!(reply.len(), 5, "l + extra");
        assert!(reply.iter().all(|e| *e.peer_id() != 3), "never the partner");
        let from_view = reply
            .iter()
            .filter(|e| view_ids.contains(e.peer_id()))
            .count();
        assert!(from_view >= 2, "the view's share");
        assert!(reply.iter().any(|e| *e.peer_id() >= 10), "news");
        let unique: HashSet<u32> = reply.iter().map(|e| *e.peer_id()).collect();
        assert_eq!(unique.len(), reply.len());
        // Old entries are not passed on.
        for entry in v.entries.iter_mut() {
            entry.age = 11;
        }
        for _ in 0..12 {
            v.seeded().2.cycle += 1;
        }
        let (reply, _) = v.answer_shuffle(&mut rng, &3, Vec::new());
        assert!(reply.is_empty(), "{reply:?}");
    }

    /// With `probe_every` > 1, shuffles between probes go to news peers outside the view.
    #[test]
    fn shuffles_between_probes_explore_news_peers() {
        let mut rng = StdRng::seed_from_u64(6);
        let seeded = SeededParams::default().with_probe_every(2);
        let mut v = view(0, params(3, 2, seeded), 6);
        for id in 1..=3 {
            v.insert(Entry::new(id, (), 0));
        }
        v.answer_shuffle(&mut rng, &50, entries(50..57));
        let mut explored = 0;
        for _ in 0..10 {
            let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
            if !v.contains(shuffle.target.peer_id()) {
                explored += 1;
                assert!((50..57).contains(shuffle.target.peer_id()));
            }
            v.complete_shuffle(shuffle.id, Vec::new()).unwrap();
        }
        assert!(explored >= 4, "{explored}");
    }

    /// Every entry sits in the slot that names it, and every occupied slot names its entry.
    fn assert_slots_consistent(v: &mut PartialView<u32>) {
        let (_, entries, seeded) = v.seeded();
        assert_eq!(seeded.meta.len(), entries.len());
        for (k, meta) in seeded.meta.iter().enumerate() {
            assert_eq!(seeded.occupant[meta.slot as usize], k as u32, "entry {k}");
            assert_eq!(meta.hash, seeded.keys.hash(&entries[k].id), "entry {k}");
        }
        let occupied = seeded.occupant.iter().filter(|&&k| k != EMPTY).count();
        assert_eq!(occupied, entries.len());
    }

    /// A rejoin probe under the seeded defence builds its request without reordering the view
    /// (the slots index it), and a failed shuffle's target is remembered as lost.
    #[test]
    fn rejoin_probes_keep_the_slots_consistent() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut v = view(0, params(6, 3, SeededParams::default()), 7);
        v.set_rejoin(crate::view::Rejoin::new(10, 1)).unwrap();
        v.add_seed(Entry::new(100, (), 0));
        for id in 1..=6 {
            v.insert(Entry::new(id, (), 0));
        }
        v.answer_shuffle(&mut rng, &50, entries(50..60));
        assert_slots_consistent(&mut v);
        let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
        let target = *shuffle.target.peer_id();
        v.fail_shuffle(shuffle.id).unwrap();
        assert!(!v.contains(&target));
        assert!(v.lost_peers().iter().any(|e| e.id == target));
        assert_slots_consistent(&mut v);
        let mut probes = 0;
        for _ in 0..10 {
            if let Some(probe) = v.periodic_probe(&mut rng, Some(())) {
                probes += 1;
                assert!(probe.probe);
                assert!(!v.contains(probe.target.peer_id()));
                assert!(probe.request.len() > 1, "the request carries entries");
                assert_slots_consistent(&mut v);
                v.complete_shuffle(probe.id, entries(60..63)).unwrap();
                assert_slots_consistent(&mut v);
            }
            let shuffle = v.start_shuffle(&mut rng, ()).unwrap();
            v.complete_shuffle(shuffle.id, entries(70..72)).unwrap();
            assert_slots_consistent(&mut v);
        }
        assert!(probes > 0);
    }
}
