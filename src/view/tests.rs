//! Unit tests of the core.

use rand::{SeedableRng, rngs::StdRng};

use super::*;
use crate::view::DEFAULT_MAX_AGE;

fn params(c: usize, l: usize) -> ShuffleParams {
    ShuffleParams {
        view_size: c,
        shuffle_length: l,
        ..ShuffleParams::default()
    }
}

fn view_with(local: u32, c: usize, l: usize, ids: &[(u32, u32)]) -> PartialView<u32> {
    let mut view = PartialView::new(local, params(c, l)).unwrap();
    for &(id, age) in ids {
        assert_eq!(view.insert(Entry::new(id, (), age)), InsertOutcome::Added);
    }
    view
}

fn ids(view: &PartialView<u32>) -> Vec<u32> {
    let mut ids: Vec<u32> = view.entries().iter().map(|e| *e.peer_id()).collect();
    ids.sort_unstable();
    ids
}

fn age_of(view: &PartialView<u32>, id: u32) -> u32 {
    view.get(&id).unwrap().age()
}

#[test]
fn params_are_validated() {
    assert_eq!(params(0, 1).validate(), Err(ParamsError::ZeroViewSize));
    assert_eq!(params(5, 0).validate(), Err(ParamsError::ZeroShuffleLength));
    assert!(matches!(
        params(5, 6).validate(),
        Err(ParamsError::ShuffleLengthExceedsViewSize { .. })
    ));
    assert!(PartialView::<u32>::new(0, params(5, 6)).is_err());
    assert!(params(5, 5).validate().is_ok());
}

#[test]
fn insert_refuses_self_duplicates_and_overflow() {
    let mut view = view_with(0, 2, 1, &[(1, 0)]);
    assert_eq!(view.insert(Entry::new(0, (), 0)), InsertOutcome::LocalNode);
    assert_eq!(
        view.insert(Entry::new(1, (), 0)),
        InsertOutcome::AlreadyPresent
    );
    assert_eq!(view.insert(Entry::new(2, (), 0)), InsertOutcome::Added);
    assert_eq!(view.insert(Entry::new(3, (), 0)), InsertOutcome::ViewFull);
    assert_eq!(ids(&view), vec![1, 2]);
}

#[test]
fn initiator_ages_view_picks_oldest_and_sends_itself_fresh() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut view = view_with(0, 10, 3, &[(1, 0), (2, 7), (3, 2), (4, 1)]);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(*shuffle.target.peer_id(), 2);
    assert_eq!(
        shuffle.target.age(),
        8,
        "the target was aged before selection"
    );
    assert!(!view.contains(&2), "the target leaves the view");
    assert_eq!(shuffle.request.len(), 3);
    assert_eq!(shuffle.request[0], Entry::new(0, (), 0));
    for sent in &shuffle.request[1..] {
        assert!(
            view.contains(sent.peer_id()),
            "sent entries stay until replaced"
        );
    }
    assert_eq!(age_of(&view, 1), 1);
    assert_eq!(age_of(&view, 3), 3);
    assert_eq!(age_of(&view, 4), 2);
}

#[test]
fn oldest_ties_are_broken_at_random() {
    let mut seen = [0usize; 3];
    for seed in 0..300 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut view = view_with(0, 10, 1, &[(1, 5), (2, 5), (3, 5)]);
        let target = *view.start_shuffle(&mut rng, ()).unwrap().target.peer_id();
        seen[target as usize - 1] += 1;
    }
    for count in seen {
        assert!(
            (70..=130).contains(&count),
            "tie-break not uniform: {seen:?}"
        );
    }
}

#[test]
fn basic_mode_picks_random_target() {
    let mut counts = [0usize; 4];
    for seed in 0..400 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut view = PartialView::new(
            0u32,
            ShuffleParams {
                mode: ShuffleMode::Basic,
                ..params(10, 2)
            },
        )
        .unwrap();
        for (id, age) in [(1, 100), (2, 0), (3, 0), (4, 0)] {
            view.insert(Entry::new(id, (), age));
        }
        counts[*view.start_shuffle(&mut rng, ()).unwrap().target.peer_id() as usize - 1] += 1;
    }
    assert!(
        counts.iter().all(|&c| (60..=140).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn empty_view_does_not_shuffle() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut view = view_with(0, 3, 1, &[]);
    assert_eq!(
        view.start_shuffle(&mut rng, ()).unwrap_err(),
        StartShuffleError::EmptyView
    );
    assert_eq!(view.pending_shuffles(), 0);
}

#[test]
fn responder_replies_without_ageing_and_never_returns_the_sender() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut view = view_with(9, 10, 3, &[(1, 4), (2, 4), (3, 4), (4, 4)]);
    for _ in 0..50 {
        let (reply, _) = view.answer_shuffle(&mut rng, &2, Vec::new());
        assert_eq!(reply.len(), 3);
        assert!(reply.iter().all(|e| *e.peer_id() != 2));
    }
    assert!(
        view.entries().iter().all(|e| e.age() == 4),
        "the responder does not age"
    );
}

#[test]
fn received_entries_fill_empty_slots_first_then_replace_sent_ones() {
    let mut rng = StdRng::seed_from_u64(5);
    // Full view of 4, l = 3.
    let mut view = view_with(0, 4, 3, &[(1, 9), (2, 0), (3, 0), (4, 0)]);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(*shuffle.target.peer_id(), 1);
    let sent: Vec<u32> = shuffle.request[1..].iter().map(|e| *e.peer_id()).collect();
    assert_eq!(sent.len(), 2);
    let kept: Vec<u32> = (2..=4).filter(|id| !sent.contains(id)).collect();
    let done = view
        .complete_shuffle(
            shuffle.id,
            vec![
                Entry::new(10, (), 1),
                Entry::new(11, (), 1),
                Entry::new(12, (), 1),
            ],
        )
        .unwrap();
    // 10 takes the target's empty slot; 11 and 12 replace the two sent entries.
    assert_eq!(done.target, 1);
    assert_eq!(done.merge.added, vec![10, 11, 12]);
    let mut replaced = done.merge.removed.clone();
    replaced.sort_unstable();
    let mut sent_sorted = sent.clone();
    sent_sorted.sort_unstable();
    assert_eq!(replaced, sent_sorted);
    assert!(
        view.contains(&kept[0]),
        "an entry not sent is never replaced"
    );
    assert_eq!(view.len(), 4);
}

#[test]
fn merge_discards_self_duplicates_excess_and_clamps_ages() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut view = view_with(0, 10, 3, &[(1, 0)]);
    let (_, merge) = view.answer_shuffle(
        &mut rng,
        &7,
        vec![
            Entry::new(0, (), 1),
            Entry::new(1, (), 1),
            Entry::new(8, (), u32::MAX),
            Entry::new(9, (), 1),
        ],
    );
    assert_eq!(merge.added, vec![8]);
    assert_eq!(merge.ignored.local, 1);
    assert_eq!(merge.ignored.duplicate, 1);
    assert_eq!(merge.ignored.excess, 1);
    assert_eq!(age_of(&view, 8), DEFAULT_MAX_AGE);
}

#[test]
fn a_larger_receive_limit_considers_more_entries_for_the_same_slots() {
    let received: Vec<Entry<u32>> = [1, 2, 3, 4, 5, 6].map(|id| Entry::new(id, (), 0)).into();
    // A full view of 5 (c = 5, l = 2) already holding 1 and 2.
    let initial = [(1, 0), (2, 0), (20, 0), (21, 0), (22, 0)];
    let mut default = view_with(0, 5, 2, &initial);
    assert_eq!(default.message_length(), 2);
    let mut wide = default.clone();
    wide.set_message_length(5);
    let mut none = default.clone();
    none.set_message_length(0);
    let mut unbounded = default.clone();
    unbounded.set_message_length(usize::MAX);
    assert_eq!(unbounded.message_length(), u32::MAX as usize);

    // The default considers 1 and 2 only: both duplicates, nothing replaced.
    let (reply, merge) =
        default.answer_shuffle(&mut StdRng::seed_from_u64(1), &9, received.clone());
    assert_eq!(reply.len(), 2);
    assert_eq!(merge.ignored.duplicate, 2);
    assert_eq!(merge.ignored.excess, 4);
    assert!(merge.added.is_empty());

    // Up to 5 considered: 3 and 4 replace the two replied entries, 5 finds no room, 6 is
    // excess. Still at most l replacements, and only of replied entries.
    let (reply, merge) = wide.answer_shuffle(&mut StdRng::seed_from_u64(1), &9, received.clone());
    assert_eq!(merge.added, vec![3, 4]);
    let mut replaced = merge.removed.clone();
    replaced.sort_unstable();
    let mut replied: Vec<u32> = reply.iter().map(|e| *e.peer_id()).collect();
    replied.sort_unstable();
    assert_eq!(replaced, replied);
    assert_eq!(merge.ignored.duplicate, 2);
    assert_eq!(merge.ignored.no_room, 1);
    assert_eq!(merge.ignored.excess, 1);
    assert_eq!(wide.len(), 5);

    let (_, merge) = none.answer_shuffle(&mut StdRng::seed_from_u64(1), &9, received);
    assert_eq!(merge.ignored.excess, 6);
    assert_eq!(ids(&none), ids(&view_with(0, 5, 2, &initial)));
}

#[test]
fn replaced_entries_must_still_be_present() {
    let mut rng = StdRng::seed_from_u64(8);
    let mut view = view_with(0, 3, 3, &[(1, 9), (2, 0), (3, 0)]);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    // Meanwhile the view is refilled and a sent entry disappears.
    view.insert(Entry::new(20, (), 0));
    view.remove(&2);
    view.insert(Entry::new(21, (), 0));
    let done = view
        .complete_shuffle(
            shuffle.id,
            vec![
                Entry::new(10, (), 0),
                Entry::new(11, (), 0),
                Entry::new(12, (), 0),
            ],
        )
        .unwrap();
    assert_eq!(done.merge.removed, vec![3]);
    assert_eq!(done.merge.added, vec![10]);
    assert_eq!(done.merge.ignored.no_room, 2);
    assert_eq!(ids(&view), vec![10, 20, 21]);
}

#[test]
fn a_sent_peer_that_left_and_returns_is_not_replaced_by_the_same_merge() {
    let mut rng = StdRng::seed_from_u64(9);
    // View {1 (oldest), 2}, c = 2, l = 2: the shuffle targets 1 and sends 2.
    let mut view = view_with(0, 2, 2, &[(1, 9), (2, 0)]);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(shuffle.request[1].peer_id(), &2);
    // 2 leaves meanwhile and 3 comes in: one slot is free.
    view.remove(&2);
    view.insert(Entry::new(3, (), 0));
    // The reply returns 2 (into the free slot) and 4, which finds no sent entry left.
    let done = view
        .complete_shuffle(shuffle.id, vec![Entry::new(2, (), 0), Entry::new(4, (), 0)])
        .unwrap();
    assert_eq!(done.merge.added, vec![2]);
    assert!(done.merge.removed.is_empty());
    assert_eq!(done.merge.ignored.no_room, 1);
    assert_eq!(done.sent, 2);
    assert_eq!(ids(&view), vec![2, 3]);
}

#[test]
fn a_peer_replaced_and_taken_back_by_one_merge_is_a_refresh_not_a_change() {
    // A full view {1, 2, 3} answers with two entries (l = 2) and considers up to 4 received
    // ones. 10 replaces the first replied entry, which comes back later in the request and
    // replaces the second one; the other copy of a replied peer is a duplicate or finds no
    // room.
    let mut view = view_with(0, 3, 2, &[(1, 0), (2, 0), (3, 0)]);
    view.set_message_length(4);
    let request = [10, 1, 2, 3].map(|id| Entry::new(id, (), 5));
    let (reply, merge) = view.answer_shuffle(&mut StdRng::seed_from_u64(3), &9, request);
    let (first, second) = (*reply[0].peer_id(), *reply[1].peer_id());
    assert_eq!(merge.added, vec![10]);
    assert_eq!(merge.refreshed, vec![first]);
    assert_eq!(merge.removed, vec![second]);
    assert!(view.contains(&first) && !view.contains(&second));
    assert_eq!(age_of(&view, first), 5, "the entry is the received one");
    assert_eq!(view.len(), 3);
}

/// A payload with an optional record seq, and a label to tell payloads apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec(Option<u64>, &'static str);

impl EntryPayload for Rec {
    fn record_seq(&self) -> Option<u64> {
        self.0
    }
}

fn payload_of(view: &PartialView<u32, Rec>, id: u32) -> &'static str {
    view.get(&id).unwrap().addresses().1
}

#[test]
fn a_newer_record_updates_a_held_entry_and_an_older_one_never_does() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut view: PartialView<u32, Rec> = PartialView::new(0, params(10, 3)).unwrap();
    view.insert(Entry::new(1, Rec(Some(5), "held"), 3));
    view.insert(Entry::new(2, Rec(None, "unsigned"), 4));
    let mut answer = |view: &mut PartialView<u32, Rec>, entries: Vec<Entry<u32, Rec>>| {
        view.answer_shuffle(&mut rng, &9, entries).1
    };

    // Older, equal and unsigned payloads for a held record: duplicates, nothing changes.
    for received in [
        Rec(Some(4), "older"),
        Rec(Some(5), "same"),
        Rec(None, "plain"),
    ] {
        let merge = answer(&mut view, vec![Entry::new(1, received, 0)]);
        assert_eq!(merge.ignored.duplicate, 1);
        assert!(merge.updated.is_empty());
        assert_eq!(payload_of(&view, 1), "held");
    }
    // A newer record replaces the payload; the entry keeps its age and its place.
    let merge = answer(&mut view, vec![Entry::new(1, Rec(Some(6), "newer"), 0)]);
    assert_eq!(merge.updated, vec![1]);
    assert_eq!(merge.ignored.total(), 0);
    assert!(merge.added.is_empty() && merge.removed.is_empty());
    assert_eq!(payload_of(&view, 1), "newer");
    assert_eq!(view.get(&1).unwrap().age(), 3);
    // A record replaces a held entry that has none; another unsigned one does not.
    let merge = answer(&mut view, vec![Entry::new(2, Rec(None, "plain"), 0)]);
    assert_eq!((merge.updated.len(), merge.ignored.duplicate), (0, 1));
    let merge = answer(&mut view, vec![Entry::new(2, Rec(Some(1), "signed"), 0)]);
    assert_eq!(merge.updated, vec![2]);
    assert_eq!(payload_of(&view, 2), "signed");
    assert_eq!(view.get(&2).unwrap().age(), 4);
    // Given twice in one message, the peer is reported once.
    let merge = answer(
        &mut view,
        vec![
            Entry::new(2, Rec(Some(2), "second"), 0),
            Entry::new(2, Rec(Some(3), "third"), 0),
        ],
    );
    assert_eq!(merge.updated, vec![2]);
    assert_eq!(payload_of(&view, 2), "third");
}

#[test]
fn a_peer_replaced_and_taken_back_keeps_its_newer_record() {
    // As in the refresh test above: 10 replaces the first replied entry, which comes back
    // later in the request and takes the second one's slot.
    for (returned_seq, expected) in [(3, "held"), (11, "received")] {
        let mut view: PartialView<u32, Rec> = PartialView::new(0, params(3, 2)).unwrap();
        for id in 1..=3 {
            view.insert(Entry::new(id, Rec(Some(10), "held"), 0));
        }
        view.set_message_length(4);
        let mut request = vec![Entry::new(10, Rec(None, "new"), 5)];
        request.extend((1..=3).map(|id| Entry::new(id, Rec(Some(returned_seq), "received"), 5)));
        let (reply, merge) = view.answer_shuffle(&mut StdRng::seed_from_u64(3), &9, request);
        let first = *reply[0].peer_id();
        assert_eq!(merge.refreshed, vec![first]);
        assert_eq!(payload_of(&view, first), expected, "seq {returned_seq}");
        assert_eq!(
            view.get(&first).unwrap().age(),
            5,
            "the age is the received one"
        );
        // The peer that was not replied and is still held is a duplicate (older) or
        // updated (newer).
        let kept = (1..=3)
            .find(|id| reply.iter().all(|e| e.peer_id() != id))
            .unwrap();
        assert_eq!(payload_of(&view, kept), expected);
        assert_eq!(merge.updated.contains(&kept), returned_seq > 10);
    }
}

#[test]
fn periodic_shuffles_need_a_partner_and_a_local_address() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut view: PartialView<u32, Vec<u8>> = PartialView::new(0, params(3, 2)).unwrap();
    assert_eq!(
        view.periodic_shuffle(&mut rng, None).unwrap_err(),
        StartShuffleError::EmptyView
    );
    assert_eq!(
        view.add_address(1, 7, 2),
        InsertOutcome::Added,
        "a new peer enters with its address"
    );
    assert_eq!(view.add_address(1, 8, 2), InsertOutcome::AddressAdded);
    assert_eq!(view.add_address(1, 9, 2), InsertOutcome::AlreadyPresent);
    assert_eq!(view.add_address(0, 9, 2), InsertOutcome::LocalNode);
    assert_eq!(
        view.periodic_shuffle(&mut rng, None).unwrap_err(),
        StartShuffleError::NoLocalAddress
    );
    assert_eq!(view.len(), 1, "a skipped round changes nothing");
    assert_eq!(view.get(&1).unwrap().age(), 0, "nor ages the view");
    let shuffle = view.periodic_shuffle(&mut rng, Some(vec![4])).unwrap();
    assert_eq!(shuffle.target, Entry::new(1, vec![7, 8], 1));
    assert_eq!(shuffle.request, vec![Entry::new(0, vec![4], 0)]);
}

#[test]
fn failed_target_stays_removed_and_ids_are_single_use() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut view = view_with(0, 5, 2, &[(1, 3), (2, 0)]);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(view.pending_target(shuffle.id), Some(&1));
    assert_eq!(view.fail_shuffle(shuffle.id).map(|f| f.target), Some(1));
    assert!(!view.contains(&1));
    assert_eq!(view.fail_shuffle(shuffle.id), None);
    assert!(view.complete_shuffle(shuffle.id, Vec::new()).is_none());
    assert_eq!(view.pending_shuffles(), 0);
}

/// A target out of the view only because its shuffle is in flight is saved with the view,
/// at its age, until the shuffle ends; then it is not (failed: it stays out; completed:
/// the link turned around).
#[test]
fn a_target_in_flight_is_saved_until_its_shuffle_ends() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut view = view_with(0, 3, 2, &[(1, 3), (2, 0), (3, 1)]);
    let exported = |view: &PartialView<u32>| -> Vec<(u32, u32)> {
        view.export().map(|e| (e.id, e.age)).collect()
    };
    let first = view.start_shuffle(&mut rng, ()).unwrap();
    assert!(first.target_left);
    assert_eq!(first.target, Entry::new(1, (), 4));
    assert_eq!(view.in_flight().collect::<Vec<_>>(), vec![&first.target]);
    let saved = exported(&view);
    assert_eq!(saved.len(), 3);
    assert_eq!(
        saved.last(),
        Some(&(1, 4)),
        "the view first, then the target"
    );
    // A full view leaves no room for the target in a saved view.
    assert_eq!(view.insert(Entry::new(4, (), 0)), InsertOutcome::Added);
    assert!(!exported(&view).iter().any(|&(id, _)| id == 1));
    assert!(view.remove(&4).is_some());
    // The target back in the view (another peer sent it) is saved once.
    assert_eq!(view.insert(Entry::new(1, (), 0)), InsertOutcome::Added);
    assert_eq!(view.in_flight().count(), 0);
    assert!(view.remove(&1).is_some());
    // A failed shuffle: the target is no longer saved; a completed one: neither.
    assert!(!view.fail_shuffle(first.id).unwrap().removed);
    assert_eq!(view.in_flight().count(), 0);
    let second = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(view.in_flight().count(), 1);
    view.complete_shuffle(second.id, Vec::new()).unwrap();
    assert_eq!(view.in_flight().count(), 0);
    assert_eq!(exported(&view).len(), view.len());
}

/// Runs `rounds` shuffles between two views with both APIs on the same seeds and checks
/// that requests, replies, targets, merge results and the views stay identical.
#[test]
fn allocation_free_variants_follow_the_same_rules() {
    let defences = [Defence::Off, Defence::seeded(), Defence::anchored()];
    let modes = [ShuffleMode::Enhanced, ShuffleMode::Basic];
    for (mode, defence) in modes.into_iter().flat_map(|m| defences.map(|d| (m, d))) {
        let p_params = ShuffleParams {
            mode,
            defence,
            ..params(6, 3)
        };
        let mut keys = StdRng::seed_from_u64(1);
        let mut a = [
            PartialView::with_rng(0u32, p_params, &mut keys).unwrap(),
            PartialView::with_rng(1u32, p_params, &mut keys).unwrap(),
        ];
        for (i, view) in a.iter_mut().enumerate() {
            for id in 2..9u32 {
                view.insert(Entry::new(id + 10 * i as u32, (), id % 3));
            }
        }
        let mut b = a.clone();
        let (mut rng_a, mut rng_b) = (StdRng::seed_from_u64(9), StdRng::seed_from_u64(9));
        let (mut request, mut reply) = (Vec::new(), Vec::new());
        for round in 0..200 {
            let (i, j) = if round % 2 == 0 { (0, 1) } else { (1, 0) };
            let from = i as u32;
            let out = a[i].start_shuffle(&mut rng_a, ()).unwrap();
            let (id, target) = b[i]
                .start_shuffle_into(&mut rng_b, (), &mut request)
                .unwrap();
            assert_eq!((out.id, &out.target), (id, &target));
            assert_eq!(out.request, request);
            let (reply_a, merge_a) = a[j].answer_shuffle(&mut rng_a, &from, out.request);
            let mut counts = MergeCounts::default();
            b[j].answer_shuffle_into(
                &mut rng_b,
                &from,
                request.drain(..),
                &mut reply,
                &mut counts,
            );
            assert_eq!(reply_a, reply);
            assert_counts_match(&merge_a, counts);
            if round % 7 == 3 {
                assert_eq!(a[i].fail_shuffle(out.id), b[i].fail_shuffle(id));
            } else {
                let done = a[i].complete_shuffle(out.id, reply_a).unwrap();
                let mut counts = MergeCounts::default();
                assert!(b[i].complete_shuffle_into(id, reply.drain(..), &mut counts));
                assert_counts_match(&done.merge, counts);
            }
            // Keep the views populated: the link to the partner reverses every round.
            for k in 0..2 {
                let refill = Entry::new(100 + round as u32, (), 0);
                a[k].insert(refill.clone());
                b[k].insert(refill);
                assert_eq!(a[k].entries(), b[k].entries());
            }
        }
        assert_eq!(b[0].pending_shuffles(), 0);
        assert!(!b[0].complete_shuffle_into(ShuffleId(0), Vec::new(), &mut MergeCounts::default()));
    }
}

/// Counts are step by step, the outcome is the net change: a peer replaced and taken back
/// counts in both (and is refreshed); one taken and replaced again by the same merge (a
/// defence's slot won twice) counts in both (and is in neither net list).
fn assert_counts_match(merge: &MergeOutcome<u32>, counts: MergeCounts) {
    let again = merge.refreshed.len();
    let transient = counts.added - (merge.added.len() + again);
    assert_eq!(
        (merge.removed.len() + again + transient, merge.ignored),
        (counts.replaced, counts.ignored)
    );
}

#[test]
fn start_shuffle_into_clears_the_buffer_and_handles_an_empty_view() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut request = vec![Entry::new(42u32, (), 0)];
    let mut view = view_with(0, 3, 2, &[]);
    assert!(
        view.start_shuffle_into(&mut rng, (), &mut request)
            .is_none()
    );
    assert!(request.is_empty());
    view.insert(Entry::new(1, (), 0));
    let (_, target) = view.start_shuffle_into(&mut rng, (), &mut request).unwrap();
    assert_eq!(*target.peer_id(), 1);
    assert_eq!(request, vec![Entry::new(0, (), 0)]);
}

fn rejoining(view: &mut PartialView<u32>, remember: usize, probe_every: u32) {
    view.set_rejoin(Rejoin::new(remember, probe_every)).unwrap();
}

#[test]
fn without_rejoin_nothing_is_remembered_or_probed() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut view = view_with(0, 5, 2, &[(1, 3), (2, 0)]);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    view.fail_shuffle(shuffle.id);
    assert!(view.lost_peers().is_empty());
    assert!(!view.add_seed(Entry::new(7, (), 0)));
    let (mut probing, mut untouched) = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(7));
    for _ in 0..10 {
        assert!(view.periodic_probe(&mut probing, Some(())).is_none());
    }
    assert_eq!(
        probing.random::<u64>(),
        untouched.random::<u64>(),
        "no random draw without the rule"
    );
}

#[test]
fn failed_targets_are_remembered_most_recent_last_and_bounded() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut view = view_with(0, 5, 1, &[(1, 9), (2, 8), (3, 7)]);
    rejoining(&mut view, 2, 1);
    for expected in [1, 2, 3] {
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.peer_id(), expected);
        assert!(!shuffle.probe);
        view.fail_shuffle(shuffle.id);
    }
    let lost: Vec<u32> = view.lost_peers().iter().map(|e| *e.peer_id()).collect();
    assert_eq!(lost, vec![2, 3], "the oldest loss is forgotten first");
    // A completed shuffle is not a loss.
    view.insert(Entry::new(4, (), 0));
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    view.complete_shuffle(shuffle.id, Vec::new()).unwrap();
    assert_eq!(view.lost_peers().len(), 2);
    // Seeds are kept apart and never counted as lost.
    assert!(view.add_seed(Entry::new(5, (), 0)));
    assert!(!view.add_seed(Entry::new(5, (), 0)));
    assert!(!view.add_seed(Entry::new(0, (), 0)), "never the local node");
    view.insert(Entry::new(5, (), 0));
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(*shuffle.target.peer_id(), 5);
    view.fail_shuffle(shuffle.id);
    assert_eq!(view.lost_peers().len(), 2);
    assert_eq!(view.seeds().len(), 1);
}

#[test]
fn probes_come_every_few_rounds_and_every_round_when_the_view_is_empty() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut view = view_with(0, 5, 2, &[(1, 0), (2, 0)]);
    rejoining(&mut view, 5, 3);
    assert!(view.add_seed(Entry::new(9, (), 0)));
    let probes: Vec<bool> = (0..12)
        .map(|_| match view.periodic_probe(&mut rng, Some(())) {
            Some(probe) => {
                assert!(probe.probe);
                assert_eq!(*probe.target.peer_id(), 9);
                assert_eq!(probe.request.len(), 2, "own entry and l - 1 view entries");
                assert_eq!(view.len(), 2, "nobody leaves the view");
                view.fail_shuffle(probe.id);
                true
            }
            None => false,
        })
        .collect();
    assert_eq!(probes.iter().filter(|p| **p).count(), 4, "{probes:?}");
    let first = probes.iter().position(|p| *p).unwrap();
    for (round, probed) in probes.iter().enumerate() {
        assert_eq!(*probed, round >= first && (round - first) % 3 == 0);
    }
    assert!(
        view.lost_peers().is_empty(),
        "a failed probe changes nothing"
    );
    // No address to advertise: no probe.
    let mut empty = view_with(0, 5, 2, &[]);
    rejoining(&mut empty, 5, 100);
    empty.add_seed(Entry::new(9, (), 0));
    assert!(empty.periodic_probe(&mut rng, None).is_none());
    // An empty view probes every round, without a countdown.
    for _ in 0..3 {
        let probe = empty.periodic_probe(&mut rng, Some(())).unwrap();
        assert_eq!(probe.request, vec![Entry::new(0, (), 0)]);
        empty.fail_shuffle(probe.id);
    }
}

#[test]
fn a_completed_probe_forgets_the_lost_peer_and_merges_the_reply() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut view = view_with(0, 3, 2, &[(1, 9), (2, 0)]);
    rejoining(&mut view, 5, 1);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    view.fail_shuffle(shuffle.id);
    assert_eq!(view.lost_peers().len(), 1);
    let probe = view.periodic_probe(&mut rng, Some(())).unwrap();
    assert_eq!(*probe.target.peer_id(), 1);
    assert!(
        view.periodic_probe(&mut rng, Some(())).is_none(),
        "a peer being probed is not probed twice"
    );
    let done = view
        .complete_shuffle(probe.id, vec![Entry::new(7, (), 1), Entry::new(8, (), 1)])
        .unwrap();
    assert_eq!(done.target, 1);
    assert_eq!(done.merge.added, vec![7, 8], "two empty slots");
    assert!(view.lost_peers().is_empty());
    assert_eq!(ids(&view), vec![2, 7, 8], "nobody left the view");
    // A lost peer back in the view is dropped instead of probed.
    let mut view = view_with(0, 3, 1, &[(1, 9)]);
    rejoining(&mut view, 5, 1);
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    view.fail_shuffle(shuffle.id);
    view.insert(Entry::new(1, (), 0));
    assert!(view.periodic_probe(&mut rng, Some(())).is_none());
    assert!(view.lost_peers().is_empty());
}

#[test]
fn seed_addresses_grow_up_to_the_bound() {
    let mut view: PartialView<u32, Vec<u8>> = PartialView::new(0, params(3, 2)).unwrap();
    assert!(!view.add_seed_address(1, 7, 2), "no rule, no seeds");
    view.set_rejoin(Rejoin::new(0, 1)).unwrap();
    assert!(view.add_seed_address(1, 7, 2));
    assert!(view.add_seed_address(1, 8, 2));
    assert!(!view.add_seed_address(1, 8, 2));
    assert!(!view.add_seed_address(1, 9, 2));
    assert_eq!(view.seeds(), &[Entry::new(1, vec![7, 8], 0)]);
    assert!(view.is_empty(), "a seed is not a view entry");
    assert!(view.set_rejoin(Rejoin::new(0, 0)).is_err());
}

#[test]
fn shuffle_reverses_the_link_between_two_nodes() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut p = view_with(1, 5, 3, &[(2, 0)]);
    let mut q = view_with(2, 5, 3, &[]);
    let shuffle = p.start_shuffle(&mut rng, ()).unwrap();
    let (reply, _) = q.answer_shuffle(&mut rng, &1, shuffle.request);
    p.complete_shuffle(shuffle.id, reply).unwrap();
    assert_eq!(ids(&p), Vec::<u32>::new());
    assert_eq!(ids(&q), vec![1]);
}

#[test]
fn an_address_learned_out_of_band_joins_a_held_entry_and_never_inserts() {
    let mut view: PartialView<u32, Vec<u8>> = PartialView::new(0, params(3, 2)).unwrap();
    assert!(!view.learn_address(&1, 7, 2), "not in the view: nothing");
    assert!(view.is_empty());
    assert_eq!(view.add_address(1, 7, 2), InsertOutcome::Added);
    assert!(view.learn_address(&1, 8, 2));
    assert!(!view.learn_address(&1, 8, 2), "already known");
    assert!(!view.learn_address(&1, 9, 2), "at the bound");
    assert_eq!(view.get(&1).unwrap().addresses(), &vec![7, 8]);
}

/// A shuffle the local node could not send leaves the view as it was: its target goes back,
/// is not remembered as lost, and the sent entries stayed.
#[test]
fn a_cancelled_shuffle_puts_its_target_back_and_forgets_nothing() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut view = view_with(0, 4, 2, &[(1, 5), (2, 0), (3, 1)]);
    view.set_rejoin(Rejoin::new(4, 5)).unwrap();
    let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(*shuffle.target.peer_id(), 1);
    assert!(!view.contains(&1));
    let cancelled = view.cancel_shuffle(shuffle.id).unwrap();
    assert_eq!((cancelled.target, cancelled.restored), (1, true));
    assert_eq!(ids(&view), vec![1, 2, 3]);
    assert_eq!(
        age_of(&view, 1),
        6,
        "at the age it had when the shuffle started"
    );
    assert!(
        view.lost_peers().is_empty(),
        "not lost: nothing is known of it"
    );
    assert_eq!(view.pending_shuffles(), 0);
    assert!(view.cancel_shuffle(shuffle.id).is_none());
    // A target back in the view meanwhile, or a full view: nothing to restore.
    let again = view.start_shuffle(&mut rng, ()).unwrap();
    assert_eq!(view.insert(Entry::new(1, (), 0)), InsertOutcome::Added);
    assert!(!view.cancel_shuffle(again.id).unwrap().restored);
}

/// While only some peers are reachable, the target is the oldest of them; with none the round
/// is skipped and nothing changes.
#[test]
fn a_restricted_round_takes_the_oldest_reachable_peer_or_none() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut view = view_with(0, 5, 2, &[(1, 9), (2, 3), (3, 5), (4, 5)]);
    let none = view.periodic_shuffle_among(&mut rng, Some(()), |_| false);
    assert_eq!(none.unwrap_err(), StartShuffleError::NoReachablePeer);
    assert_eq!(age_of(&view, 1), 9, "a skipped round does not age the view");
    assert_eq!(
        view.periodic_shuffle_among(&mut rng, None, |_| true)
            .unwrap_err(),
        StartShuffleError::NoLocalAddress
    );
    let shuffle = view
        .periodic_shuffle_among(&mut rng, Some(()), |id| *id != 1)
        .unwrap();
    assert!(
        [3, 4].contains(shuffle.target.peer_id()),
        "the oldest reachable"
    );
    assert!(shuffle.target_left);
    assert!(view.contains(&1));
    assert_eq!(age_of(&view, 1), 10, "a round that runs ages the view");
    // Ties among the reachable are broken at random, over both.
    let mut seen = std::collections::HashSet::new();
    for seed in 0..40 {
        let mut v = view_with(0, 5, 2, &[(1, 9), (2, 3), (3, 5), (4, 5)]);
        let mut rng = StdRng::seed_from_u64(seed);
        let s = v
            .periodic_shuffle_among(&mut rng, Some(()), |id| *id != 1)
            .unwrap();
        seen.insert(*s.target.peer_id());
    }
    assert_eq!(seen, [3, 4].into_iter().collect());
}

/// A sample holds distinct entries of the view, at most `n`, and over many draws every entry
/// is about equally likely; the view does not change.
#[test]
fn samples_are_distinct_bounded_and_uniform() {
    let view = view_with(0, 8, 2, &[(1, 0), (2, 5), (3, 1), (4, 9), (5, 2)]);
    let mut rng = StdRng::seed_from_u64(5);
    let mut counts = [0u32; 6];
    for _ in 0..5000 {
        let sample: Vec<u32> = view.sample(&mut rng, 2).map(|e| *e.peer_id()).collect();
        assert_eq!(sample.len(), 2);
        assert_ne!(sample[0], sample[1]);
        for id in sample {
            counts[id as usize] += 1;
        }
    }
    // 5000 × 2 / 5 = 2000 each; a fair draw stays well within ±10 %.
    assert!(
        counts[1..].iter().all(|&c| (1800..2200).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(
        view.sample(&mut rng, 10).count(),
        5,
        "at most the whole view"
    );
    assert_eq!(view.sample(&mut rng, 0).count(), 0);
    assert_eq!(ids(&view), vec![1, 2, 3, 4, 5]);
}
