//! The sans-IO core fed with arbitrary sequences of shuffle starts, requests, responses,
//! timeouts, adds and removes across a few nodes, with payloads that may carry a signed
//! record's seq; the invariants (size <= c, no self, no duplicate, ages <= max, and a peer in
//! a view before and after a step never holds an older record) are checked after every step.

#![no_main]

use std::collections::{HashMap, HashSet};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use libp2p_cyclon::view::{
    Entry, EntryPayload, OutgoingShuffle, PartialView, ShuffleMode, ShuffleParams,
};
use rand::{SeedableRng, rngs::StdRng};

const NODES: u8 = 5;

/// A payload that may carry a signed record's seq.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
struct Seq(Option<u16>);

impl EntryPayload for Seq {
    fn record_seq(&self) -> Option<u64> {
        self.0.map(u64::from)
    }
}

type View = PartialView<u16, Seq>;

#[derive(Arbitrary, Debug)]
enum Operation {
    /// A node starts a shuffle; the request is kept in flight.
    Start { node: u8 },
    /// The k-th in-flight shuffle reaches its target, which answers; the reply is delivered.
    Deliver { k: u8 },
    /// The k-th in-flight shuffle times out.
    Timeout { k: u8 },
    /// A request with arbitrary entries arrives at a node from an arbitrary sender.
    Request {
        node: u8,
        from: u16,
        entries: Vec<(u16, u32, Seq)>,
    },
    /// An arbitrary response arrives for the k-th in-flight shuffle.
    Response {
        k: u8,
        entries: Vec<(u16, u32, Seq)>,
    },
    /// A node learns of another node.
    Add {
        node: u8,
        id: u16,
        age: u32,
        seq: Seq,
    },
    /// A node forgets another node.
    Remove { node: u8, id: u16 },
}

#[derive(Arbitrary, Debug)]
struct Input {
    seed: u64,
    view_size: u8,
    shuffle_length: u8,
    basic: bool,
    operations: Vec<Operation>,
}

fn entries(list: Vec<(u16, u32, Seq)>) -> Vec<Entry<u16, Seq>> {
    list.into_iter()
        .map(|(id, age, seq)| Entry::new(id, seq, age))
        .collect()
}

fn seqs(view: &View) -> HashMap<u16, Option<u64>> {
    view.entries().iter()
        .map(|e| (*e.peer_id(), e.addresses().record_seq()))
        .collect()
}

fn check(view: &View) {
    let params = view.params();
    assert!(view.len() <= params.view_size);
    let ids: HashSet<u16> = view.entries().iter().map(|e| *e.peer_id()).collect();
    assert_eq!(ids.len(), view.len(), "duplicate");
    assert!(!ids.contains(view.local_peer_id()), "self");
    assert!(view.entries().iter().all(|e| e.age() <= params.max_age));
}

fuzz_target!(|input: Input| {
    let view_size = usize::from(input.view_size % 12) + 1;
    let shuffle_length = usize::from(input.shuffle_length) % view_size + 1;
    let mode = if input.basic {
        ShuffleMode::Basic
    } else {
        ShuffleMode::Enhanced
    };
    let params = ShuffleParams::new(view_size, shuffle_length)
        .with_mode(mode)
        .with_max_age(100);
    let mut rng = StdRng::seed_from_u64(input.seed);
    let mut views: Vec<View> = (0..u16::from(NODES))
        .map(|id| PartialView::new(id, params).unwrap())
        .collect();
    let mut in_flight: Vec<(usize, OutgoingShuffle<u16, Seq>)> = Vec::new();
    let mut own_seq = [0u16; NODES as usize];
    let node = |n: u8| usize::from(n % NODES);
    for operation in input.operations {
        let before: Vec<_> = views.iter().map(seqs).collect();
        let is_remove = matches!(operation, Operation::Remove { .. });
        match operation {
            Operation::Start { node: n } => {
                own_seq[node(n)] = own_seq[node(n)].saturating_add(1);
                let own = Seq(Some(own_seq[node(n)]));
                if let Ok(shuffle) = views[node(n)].start_shuffle(&mut rng, own) {
                    assert!(shuffle.request.len() <= shuffle_length);
                    in_flight.push((node(n), shuffle));
                }
            }
            Operation::Deliver { k } if !in_flight.is_empty() => {
                let (n, shuffle) = in_flight.remove(usize::from(k) % in_flight.len());
                let target = usize::from(*shuffle.target.peer_id());
                if target < views.len() {
                    let (reply, _) =
                        views[target].answer_shuffle(&mut rng, &(n as u16), shuffle.request);
                    assert!(reply.len() <= shuffle_length);
                    assert!(views[n].complete_shuffle(shuffle.id, reply).is_some());
                } else {
                    assert!(views[n].fail_shuffle(shuffle.id).is_some());
                }
            }
            Operation::Timeout { k } if !in_flight.is_empty() => {
                let (n, shuffle) = in_flight.remove(usize::from(k) % in_flight.len());
                assert_eq!(
                    views[n].fail_shuffle(shuffle.id).map(|f| f.target),
                    Some(*shuffle.target.peer_id())
                );
            }
            Operation::Request {
                node: n,
                from,
                entries: list,
            } => {
                let (reply, _) = views[node(n)].answer_shuffle(&mut rng, &from, entries(list));
                assert!(reply.len() <= shuffle_length);
                assert!(reply.iter().all(|e| *e.peer_id() != from));
            }
            Operation::Response { k, entries: list } if !in_flight.is_empty() => {
                let (n, shuffle) = in_flight.remove(usize::from(k) % in_flight.len());
                assert!(
                    views[n]
                        .complete_shuffle(shuffle.id, entries(list))
                        .is_some()
                );
            }
            Operation::Add {
                node: n,
                id,
                age,
                seq,
            } => {
                views[node(n)].insert(Entry::new(id, seq, age));
            }
            Operation::Remove { node: n, id } => {
                views[node(n)].remove(&id);
            }
            _ => {}
        }
        views.iter().for_each(check);
        // A removal may drop a record; nothing else brings an older one back for a peer that
        // stayed.
        if !is_remove {
            for (view, before) in views.iter().zip(&before) {
                for (id, seq) in seqs(view) {
                    if let Some(old) = before.get(&id) {
                        assert!(seq >= *old, "{id}: {old:?} -> {seq:?}");
                    }
                }
            }
        }
    }
    for (n, shuffle) in in_flight {
        assert!(views[n].fail_shuffle(shuffle.id).is_some());
    }
    assert!(views.iter().all(|v| v.pending_shuffles() == 0));
});
