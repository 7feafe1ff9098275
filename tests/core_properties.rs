//! Property tests of the sans-IO core (`PartialView`), with proptest.

use std::collections::{HashMap, HashSet};

use libp2p_cyclon::view::{
    AnchoredParams, Defence, Entry, EntryPayload, MergeOutcome, OutgoingShuffle, PartialView,
    SeededParams, ShuffleMode, ShuffleParams,
};
use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

type View = PartialView<u32>;

fn params(c: usize, l: usize, mode: ShuffleMode) -> ShuffleParams {
    ShuffleParams::new(c, l).with_mode(mode).with_max_age(50)
}

/// No defence (0), seeded slots (1) or anchored samplers (2), sized for a view of `c`, with
/// small memories so that they fill up and wrap around.
fn defence(kind: u8, c: usize) -> Defence {
    match kind {
        0 => Defence::Off,
        1 => {
            let mut p = SeededParams::default();
            p.extra_entries = c.min(2);
            p.news = 4;
            p.seen_memory = 8;
            p.probe_every = 2;
            p.dead_memory = 3;
            Defence::Seeded(p)
        }
        _ => {
            let mut p = AnchoredParams::default();
            p.anchors = (c - 1).min(2);
            p.samplers = 3;
            p.push_budget = 2;
            p.dead_memory = 3;
            Defence::Anchored(p)
        }
    }
}

fn assert_invariants(view: &View) {
    let p = view.params();
    assert!(view.len() <= p.view_size, "view exceeds c");
    let ids: HashSet<u32> = view.entries().iter().map(|e| *e.peer_id()).collect();
    assert_eq!(ids.len(), view.len(), "duplicate entry");
    assert!(!ids.contains(view.local_peer_id()), "view holds self");
    assert!(
        view.entries().iter().all(|e| e.age() <= p.max_age),
        "age above max"
    );
}

/// A saved view holds the view, then targets in flight that are out of it: no duplicate, never
/// the local node, at most `c` entries.
fn assert_export(view: &View) {
    let exported: Vec<&Entry<u32>> = view.export().collect();
    let unique: HashSet<u32> = exported.iter().map(|e| *e.peer_id()).collect();
    assert_eq!(unique.len(), exported.len(), "duplicate in the export");
    assert!(
        exported.len() <= view.params().view_size,
        "export exceeds c"
    );
    assert!(!unique.contains(view.local_peer_id()), "export holds self");
    let in_view = exported
        .iter()
        .take_while(|e| view.contains(e.peer_id()))
        .count();
    assert_eq!(in_view, view.len(), "the view comes first, whole");
    for entry in view.in_flight() {
        assert!(
            !view.contains(entry.peer_id()),
            "an entry in flight is in the view"
        );
    }
}

fn ids(view: &View) -> HashSet<u32> {
    view.entries().iter().map(|e| *e.peer_id()).collect()
}

/// The net change a merge reports replays the view from `before` to what it is now.
fn assert_replays(before: &HashSet<u32>, view: &View, merge: &MergeOutcome<u32>) {
    let mut replayed = before.clone();
    for id in &merge.removed {
        assert!(
            replayed.remove(id),
            "removed {id}, which was not in the view"
        );
    }
    for id in &merge.added {
        assert!(replayed.insert(*id), "added {id}, which was in the view");
    }
    assert_eq!(&replayed, &ids(view), "the reported change does not replay");
    for id in &merge.refreshed {
        assert!(
            before.contains(id) && view.contains(id),
            "refreshed {id} left or entered"
        );
    }
}

fn targets(view: &View) -> Vec<u32> {
    let mut t: Vec<u32> = view.entries().iter().map(|e| *e.peer_id()).collect();
    t.sort_unstable();
    t
}

/// An operation on a small network of views.
#[derive(Debug, Clone)]
enum Op {
    /// Node starts a shuffle (kept pending).
    Start(usize),
    /// The k-th pending shuffle is answered by its target (if it is alive) and completed.
    Deliver(usize),
    /// The k-th pending shuffle fails.
    Fail(usize),
    /// The k-th pending shuffle is withdrawn: the local node could not send it.
    Cancel(usize),
    /// Node learns of another node, with an age (possibly absurd).
    Insert(usize, u32, u32),
    /// Node forgets another node.
    Remove(usize, u32),
    /// A node dies (stays in others' views, never answers).
    Kill(usize),
    /// A forged request arrives at a node: entries naming anyone (itself included), any age,
    /// repeated, more than `l` of them.
    Forged(usize, Vec<(u32, u32)>),
}

fn op(nodes: usize) -> impl Strategy<Value = Op> {
    let node = 0..nodes;
    let id = 0..(nodes as u32 + 3); // a few ids that are not nodes at all
    prop_oneof![
        4 => node.clone().prop_map(Op::Start),
        4 => (0usize..8).prop_map(Op::Deliver),
        1 => (0usize..8).prop_map(Op::Fail),
        1 => (0usize..8).prop_map(Op::Cancel),
        2 => (node.clone(), id.clone(), any::<u32>()).prop_map(|(n, i, a)| Op::Insert(n, i, a)),
        1 => (node.clone(), id.clone()).prop_map(|(n, i)| Op::Remove(n, i)),
        1 => node.clone().prop_map(Op::Kill),
        1 => (node, prop::collection::vec((id, any::<u32>()), 0..12))
            .prop_map(|(n, e)| Op::Forged(n, e)),
    ]
}

/// A payload that may carry a signed record's seq (as the behaviour's does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seq(Option<u64>);

impl EntryPayload for Seq {
    fn record_seq(&self) -> Option<u64> {
        self.0
    }
}

/// The seq each peer's entry holds in `view` (`None` below every `Some`).
fn seqs(view: &PartialView<u32, Seq>) -> HashMap<u32, Option<u64>> {
    view.entries()
        .iter()
        .map(|e| (*e.peer_id(), e.addresses().0))
        .collect()
}

/// Across one merge, a peer in the view before and after never holds a lower seq, and a
/// payload that changed without the entry being refreshed is reported as updated.
fn assert_seqs_never_go_back(
    before: &HashMap<u32, Option<u64>>,
    view: &PartialView<u32, Seq>,
    merge: &MergeOutcome<u32>,
) {
    for (id, seq) in seqs(view) {
        let Some(&old) = before.get(&id) else {
            continue;
        };
        assert!(seq >= old, "{id}: seq went back from {old:?} to {seq:?}");
        if seq != old && !merge.refreshed.contains(&id) {
            assert!(
                merge.updated.contains(&id),
                "{id}: payload changed silently"
            );
        }
    }
    for id in &merge.updated {
        assert!(
            before.contains_key(id) && view.contains(id),
            "{id} updated but not held"
        );
    }
}

proptest! {
    // Deterministic: a fixed seed, and no regression files written.
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x00C7_C10A),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the sequence of shuffles, failures, inserts, removals, deaths and forged
    /// requests — including shuffles that overlap — every view keeps its invariants, with or
    /// without a defence, and every merge reports the change it made.
    #[test]
    fn invariants_hold_under_arbitrary_operations(
        seed in any::<u64>(),
        c in 1usize..8,
        l_frac in 0.0f64..1.0,
        basic in any::<bool>(),
        kind in 0u8..3,
        ops in prop::collection::vec(op(6), 1..120),
    ) {
        let l = 1 + ((c - 1) as f64 * l_frac) as usize;
        let mode = if basic { ShuffleMode::Basic } else { ShuffleMode::Enhanced };
        let p = params(c, l, mode).with_defence(defence(kind, c));
        let length = p.message_length();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut views: Vec<View> = (0..6)
            .map(|i| PartialView::with_rng(i as u32, p, &mut rng).unwrap())
            .collect();
        let mut alive = [true; 6];
        let mut pending: Vec<(usize, OutgoingShuffle<u32, ()>)> = Vec::new();
        for op in ops {
            match op {
                Op::Start(n) => {
                    let before = ids(&views[n]);
                    if let Ok(s) = views[n].start_shuffle(&mut rng, ()) {
                        // The shuffle says whether its target left the view.
                        prop_assert_eq!(
                            s.target_left,
                            before.contains(s.target.peer_id()) && !views[n].contains(s.target.peer_id())
                        );
                        if kind == 0 {
                            prop_assert!(s.target_left);
                        }
                        if s.target_left {
                            prop_assert!(views[n].in_flight().any(|e| e.peer_id() == s.target.peer_id()));
                        }
                        prop_assert!(s.request.len() <= length);
                        prop_assert_eq!(s.request[0].age(), 0);
                        pending.push((n, s));
                    }
                }
                Op::Deliver(k) if k < pending.len() => {
                    let (n, s) = pending.remove(k);
                    let target = *s.target.peer_id() as usize;
                    if target < views.len() && alive[target] {
                        let before = ids(&views[target]);
                        let (reply, merge) = views[target].answer_shuffle(&mut rng, &(n as u32), s.request);
                        assert_replays(&before, &views[target], &merge);
                        prop_assert!(reply.len() <= length);
                        prop_assert!(reply.iter().all(|e| *e.peer_id() != n as u32));
                        let before = ids(&views[n]);
                        let done = views[n].complete_shuffle(s.id, reply).unwrap();
                        assert_replays(&before, &views[n], &done.merge);
                    } else {
                        prop_assert_eq!(views[n].fail_shuffle(s.id).map(|f| f.target), Some(target as u32));
                    }
                }
                Op::Fail(k) if k < pending.len() => {
                    let (n, s) = pending.remove(k);
                    let target = *s.target.peer_id();
                    let held = views[n].contains(&target);
                    let failed = views[n].fail_shuffle(s.id).unwrap();
                    prop_assert_eq!(failed.target, target);
                    // The failure says whether it took the target out of the view.
                    prop_assert_eq!(failed.removed, held && !views[n].contains(&target));
                    if kind != 0 {
                        // Under a defence the target may have stayed; it leaves now. (Without
                        // one it left at the start, and may have come back since.)
                        prop_assert!(!views[n].contains(&target), "a failed target is gone");
                    }
                }
                Op::Cancel(k) if k < pending.len() => {
                    let (n, s) = pending.remove(k);
                    let target = *s.target.peer_id();
                    let (held, full) = (views[n].contains(&target), views[n].is_full());
                    let cancelled = views[n].cancel_shuffle(s.id).unwrap();
                    prop_assert_eq!(cancelled.target, target);
                    // The target comes back when it had left, was not back and there is room.
                    prop_assert_eq!(cancelled.restored, s.target_left && !held && !full);
                    prop_assert_eq!(views[n].contains(&target), held || cancelled.restored);
                }
                Op::Insert(n, id, age) => { views[n].insert(Entry::new(id, (), age)); }
                Op::Remove(n, id) => { views[n].remove(&id); }
                Op::Kill(n) => alive[n] = false,
                Op::Forged(n, entries) => {
                    let entries = entries.into_iter().map(|(id, age)| Entry::new(id, (), age));
                    let before = ids(&views[n]);
                    let (_, merge) = views[n].answer_shuffle(&mut rng, &99, entries);
                    assert_replays(&before, &views[n], &merge);
                }
                Op::Deliver(_) | Op::Fail(_) | Op::Cancel(_) => {}
            }
            for view in &views {
                assert_invariants(view);
                assert_export(view);
            }
        }
        for (n, s) in pending {
            prop_assert!(views[n].fail_shuffle(s.id).is_some());
        }
        prop_assert!(views.iter().all(|v| v.pending_shuffles() == 0));
    }

    /// Between two full views with no peer in common, one shuffle preserves the multiset of
    /// links, with P's link to Q turned into Q's link to P. Ages grow only at the initiator,
    /// and only entries sent to the partner are replaced.
    #[test]
    fn a_shuffle_reverses_one_link_and_preserves_the_others(
        seed in any::<u64>(),
        c in 2usize..12,
        l_frac in 0.0f64..1.0,
        ages in prop::collection::vec(0u32..40, 24),
    ) {
        let l = 1 + ((c - 1) as f64 * l_frac) as usize;
        let mut rng = StdRng::seed_from_u64(seed);
        let (p_id, q_id) = (0u32, 1u32);
        let mut p = PartialView::new(p_id, params(c, l, ShuffleMode::Enhanced)).unwrap();
        let mut q = PartialView::new(q_id, params(c, l, ShuffleMode::Enhanced)).unwrap();
        // Q is the oldest in P's view; the other ids are disjoint between the two views.
        p.insert(Entry::new(q_id, (), 45));
        for (i, &age) in ages[..c - 1].iter().enumerate() {
            p.insert(Entry::new(100 + i as u32, (), age));
        }
        for (i, &age) in ages[12..12 + c].iter().enumerate() {
            q.insert(Entry::new(200 + i as u32, (), age));
        }
        let p_ages: HashMap<u32, u32> = p.entries().iter().map(|e| (*e.peer_id(), e.age())).collect();
        let q_ages: HashMap<u32, u32> = q.entries().iter().map(|e| (*e.peer_id(), e.age())).collect();
        let mut before: Vec<u32> = targets(&p).into_iter().chain(targets(&q)).collect();
        before.sort_unstable();

        let shuffle = p.start_shuffle(&mut rng, ()).unwrap();
        prop_assert_eq!(*shuffle.target.peer_id(), q_id);
        let sent: HashSet<u32> = shuffle.request[1..].iter().map(|e| *e.peer_id()).collect();
        let (reply, _) = q.answer_shuffle(&mut rng, &p_id, shuffle.request);
        prop_assert_eq!(reply.len(), l);
        let replied: HashSet<u32> = reply.iter().map(|e| *e.peer_id()).collect();
        p.complete_shuffle(shuffle.id, reply).unwrap();

        let mut after: Vec<u32> = targets(&p).into_iter().chain(targets(&q)).collect();
        after.sort_unstable();
        let mut expected = before.clone();
        let q_pos = expected.iter().position(|&t| t == q_id).unwrap();
        expected[q_pos] = p_id;
        expected.sort_unstable();
        prop_assert_eq!(after, expected, "links are preserved, P->Q reversed");
        prop_assert_eq!(p.len(), c);
        prop_assert_eq!(q.len(), c);
        prop_assert!(q.contains(&p_id), "Q now points to P");
        prop_assert!(!p.contains(&q_id), "P no longer points to Q");

        for entry in p.entries().iter() {
            match p_ages.get(entry.peer_id()) {
                // Kept entries of P were aged once, and none that was kept was sent.
                Some(&age) => {
                    prop_assert_eq!(entry.age(), age + 1);
                    prop_assert!(!sent.contains(entry.peer_id()));
                }
                None => prop_assert!(replied.contains(entry.peer_id())),
            }
        }
        for entry in q.entries().iter() {
            match q_ages.get(entry.peer_id()) {
                // The responder does not age, and only replaced what it replied with.
                Some(&age) => {
                    prop_assert_eq!(entry.age(), age);
                    prop_assert!(!replied.contains(entry.peer_id()));
                }
                None => prop_assert!(sent.contains(entry.peer_id()) || *entry.peer_id() == p_id),
            }
        }
    }

    /// Received entries take empty slots first; only when none is left do they replace
    /// entries that were sent, and entries that were not sent always stay.
    #[test]
    fn empty_slots_are_filled_before_anything_is_replaced(
        seed in any::<u64>(),
        c in 4usize..12,
        have in 1usize..4,
    ) {
        let l = 3.min(c);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut p = PartialView::new(0u32, params(c, l, ShuffleMode::Enhanced)).unwrap();
        for i in 0..have {
            p.insert(Entry::new(10 + i as u32, (), 0));
        }
        let before: HashSet<u32> = p.entries().iter().map(|e| *e.peer_id()).collect();
        let shuffle = p.start_shuffle(&mut rng, ()).unwrap();
        let target = *shuffle.target.peer_id();
        let sent: HashSet<u32> = shuffle.request[1..].iter().map(|e| *e.peer_id()).collect();
        let reply: Vec<Entry<u32>> = (0..l as u32).map(|i| Entry::new(50 + i, (), 1)).collect();
        let done = p.complete_shuffle(shuffle.id, reply).unwrap();
        let room = c - (have - 1);
        prop_assert_eq!(done.merge.added.len(), l.min(room + sent.len()));
        prop_assert_eq!(done.merge.removed.len(), done.merge.added.len().saturating_sub(room));
        prop_assert!(done.merge.removed.iter().all(|id| sent.contains(id)));
        for id in before {
            prop_assert!(id == target || sent.contains(&id) || p.contains(&id));
        }
    }

    /// A failed target never comes back through the failed shuffle.
    #[test]
    fn a_failed_target_stays_removed(seed in any::<u64>(), n in 1usize..10) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut p = PartialView::new(0u32, params(10, 3, ShuffleMode::Enhanced)).unwrap();
        for i in 0..n {
            p.insert(Entry::new(1 + i as u32, (), i as u32));
        }
        let shuffle = p.start_shuffle(&mut rng, ()).unwrap();
        let target = *shuffle.target.peer_id();
        prop_assert_eq!(target, n as u32, "the oldest is the target");
        prop_assert_eq!(p.fail_shuffle(shuffle.id).map(|f| f.target), Some(target));
        prop_assert!(!p.contains(&target));
        prop_assert_eq!(p.len(), n - 1);
        prop_assert!(p.complete_shuffle(shuffle.id, vec![Entry::new(target, (), 0)]).is_none());
        prop_assert!(!p.contains(&target));
    }

    /// Honest nodes re-sign their own record with a growing seq at every shuffle; forged
    /// requests replay any seq (older, newer, none) for any peer. Whatever the order, a peer
    /// that stays in a view never holds an older record than before, and every payload change
    /// of a held entry is reported, with or without a defence.
    #[test]
    fn a_held_record_is_never_replaced_by_an_older_one(
        seed in any::<u64>(),
        c in 2usize..8,
        l_frac in 0.0f64..1.0,
        kind in 0u8..3,
        ops in prop::collection::vec(
            prop_oneof![
                3 => (0usize..6).prop_map(|n| (n, Vec::new())),
                2 => (0usize..6, prop::collection::vec(
                    (0u32..8, 0u32..20, prop::option::of(0u64..40)), 0..10)),
            ],
            1..100,
        ),
    ) {
        let l = 1 + ((c - 1) as f64 * l_frac) as usize;
        let mut rng = StdRng::seed_from_u64(seed);
        let p = params(c, l, ShuffleMode::Enhanced).with_defence(defence(kind, c));
        let mut views: Vec<PartialView<u32, Seq>> = (0..6)
            .map(|i| PartialView::with_rng(i as u32, p, &mut rng).unwrap())
            .collect();
        for (i, view) in views.iter_mut().enumerate() {
            view.insert(Entry::new((i as u32 + 1) % 6, Seq(None), 0));
        }
        let mut own_seq = [0u64; 6];
        for (n, forged) in ops {
            if forged.is_empty() {
                // An honest shuffle, answered at once by a live target.
                own_seq[n] += 1;
                let Ok(s) = views[n].start_shuffle(&mut rng, Seq(Some(own_seq[n]))) else {
                    continue;
                };
                let target = *s.target.peer_id() as usize;
                if target >= views.len() {
                    views[n].fail_shuffle(s.id);
                    continue;
                }
                let before = seqs(&views[target]);
                let (reply, merge) = views[target].answer_shuffle(&mut rng, &(n as u32), s.request);
                assert_seqs_never_go_back(&before, &views[target], &merge);
                let before = seqs(&views[n]);
                let done = views[n].complete_shuffle(s.id, reply).unwrap();
                assert_seqs_never_go_back(&before, &views[n], &done.merge);
            } else {
                let entries = forged.into_iter().map(|(id, age, seq)| Entry::new(id, Seq(seq), age));
                let before = seqs(&views[n]);
                let (_, merge) = views[n].answer_shuffle(&mut rng, &99, entries);
                assert_seqs_never_go_back(&before, &views[n], &merge);
            }
        }
    }
}
