//! The core's rules, exchange by exchange, over the simulator's scheme.

use rand::{SeedableRng, rngs::StdRng};

use super::{
    memory::{Exchanged, exchange},
    sim_scheme::{SimAuthority, SimScheme, SimSigner},
    *,
};
use crate::view::{Defence, ShuffleParams};

type View = SecureView<u32, (), SimScheme, SimSigner>;

const GAP: u64 = 1_000;
/// A start time far from 0, so that descriptors dated in the past fit in a `u64`.
const T0: u64 = 1_000_000;

fn params(c: usize, l: usize, anchors: usize) -> ShuffleParams {
    ShuffleParams::new(c, l).with_defence(Defence::Secure(
        SecureParams::scaled(c, GAP).with_anchors(anchors),
    ))
}

struct Net {
    authority: SimAuthority,
    views: Vec<View>,
}

impl Net {
    fn new(n: u32, c: usize, l: usize, anchors: usize) -> Self {
        Self::with_params(n, params(c, l, anchors))
    }

    fn with_params(n: u32, params: ShuffleParams) -> Self {
        let c = params.view_size;
        let authority = SimAuthority::new((1, 2), (3, 4));
        let mut rng = StdRng::seed_from_u64(7);
        let start = T0 - 10 * c as u64 * GAP;
        let views = (0..n)
            .map(|id| {
                View::new_identity(
                    params,
                    authority.scheme(),
                    authority.signer(id),
                    start,
                    &mut rng,
                )
                .unwrap()
            })
            .collect();
        Self { authority, views }
    }

    /// `creator` hands `holder` a descriptor minted at `at`.
    fn give(&mut self, creator: u32, holder: u32, at: u64) {
        let chain = self.views[creator as usize]
            .hand_out(at, holder, ())
            .unwrap();
        let out = self.views[holder as usize].take_handed(at, chain);
        assert_eq!(out.gained, vec![creator], "{out:?}");
    }

    /// Every node `i` holds descriptors of `i+1..=i+k` (mod n), minted in the past.
    fn ring(&mut self, k: u32) {
        let n = self.views.len() as u32;
        for step in 1..=k {
            for i in 0..n {
                let at = T0 - (k + 1 - step) as u64 * GAP - u64::from(i);
                self.give((i + step) % n, i, at);
            }
        }
    }

    fn two(&mut self, a: u32, b: u32) -> (&mut View, &mut View) {
        let [x, y] = self
            .views
            .get_disjoint_mut([a as usize, b as usize])
            .unwrap();
        (x, y)
    }

    /// `p` selects and runs a whole exchange at `now` with no loss.
    fn shuffle(&mut self, p: u32, now: u64) -> (u32, Exchanged<u32>) {
        let mut rng = StdRng::seed_from_u64(now ^ u64::from(p));
        let sel = self.views[p as usize].select(&mut rng, now).unwrap();
        let q = sel.target;
        let (a, b) = self.two(p, q);
        (q, exchange(a, b, &sel, (), &mut rng, now, || false))
    }

    fn creators(&self, id: u32) -> Vec<u32> {
        let mut c: Vec<u32> = self.views[id as usize]
            .holdings()
            .map(|h| *h.creator)
            .collect();
        c.sort_unstable();
        c
    }
}

#[test]
fn an_exchange_swaps_descriptors_one_for_one_and_redeems_the_target() {
    // Full views (5 holdings each): no room for non-swappable copies.
    let mut net = Net::new(12, 5, 3, 0);
    net.ring(5);
    let before: usize = net.views.iter().map(View::len).sum();
    let (q, done) = net.shuffle(0, T0);
    assert_eq!(q, 1, "the oldest holding names node 1");
    let (i, r) = (&done.initiator, &done.responder);
    assert!(i.finished && r.finished, "{done:?}");
    assert_eq!(i.redeemed, Some((1, HandOverKind::Redeem)));
    assert_eq!(i.minted, Some(T0));
    // Tit-for-tat: the responder's k-th transfer answers the initiator's k-th (its fresh
    // descriptor first), so neither gives more than one unanswered.
    assert!((1..=3).contains(&r.given.len()));
    assert!(i.given.len() + 1 >= r.given.len() && i.given.len() <= r.given.len());
    assert_eq!(i.gained.len() + i.dropped.len(), r.given.len());
    assert!(
        r.gained.contains(&0),
        "the responder took the fresh descriptor"
    );
    let after: usize = net.views.iter().map(View::len).sum();
    assert_eq!(
        after, before,
        "one descriptor redeemed, one minted, the rest swapped"
    );
    assert!(
        done.messages >= 3,
        "open, accept and the closing step at least"
    );
    assert!(net.views[0].holdings().all(|h| *h.creator != 0));
}

#[test]
fn the_mint_clock_allows_one_exchange_per_gap() {
    let mut net = Net::new(12, 6, 3, 0);
    net.ring(5);
    net.shuffle(0, T0);
    let mut rng = StdRng::seed_from_u64(1);
    let early = net.views[0].select(&mut rng, T0 + GAP / 2);
    assert_eq!(
        early,
        Err(StartExchangeError::MintTooSoon {
            retry_at: T0 + GAP - GAP / 4
        })
    );
    assert!(net.views[0].select(&mut rng, T0 + GAP).is_ok());
}

#[test]
fn a_restarted_identity_waits_before_minting() {
    let net = Net::new(2, 6, 3, 0);
    let mut rng = StdRng::seed_from_u64(1);
    let view = View::new(
        params(6, 3, 0),
        net.authority.scheme(),
        net.authority.signer(0),
        T0,
        &mut rng,
    )
    .unwrap();
    assert_eq!(view.next_mint(T0), T0 + GAP / 2 + GAP);
}

#[test]
fn many_exchanges_keep_views_full_without_any_proof() {
    let mut net = Net::new(30, 8, 3, 0);
    net.ring(7);
    let mut proofs = 0;
    for cycle in 0..40u64 {
        let now = T0 + cycle * GAP;
        for p in 0..30 {
            let mut rng = StdRng::seed_from_u64(cycle * 100 + u64::from(p));
            let Ok(sel) = net.views[p as usize].select(&mut rng, now) else {
                continue;
            };
            let (a, b) = net.two(p, sel.target);
            let done = exchange(a, b, &sel, (), &mut rng, now, || false);
            proofs += done.initiator.proofs_found.len() + done.responder.proofs_found.len();
            assert_eq!(done.initiator.invalid.total(), 0, "{done:?}");
            assert_eq!(done.responder.invalid.total(), 0, "{done:?}");
        }
        for v in &mut net.views {
            v.tick(now);
        }
    }
    assert_eq!(proofs, 0);
    assert!(net.views.iter().all(|v| v.blacklist_len() == 0));
    let full = net.views.iter().filter(|v| v.len() >= 6).count();
    assert!(full >= 27, "views stay nearly full: {full}");
}

#[test]
fn a_forged_transfer_aborts_the_exchange_and_is_counted() {
    let mut net = Net::new(12, 6, 3, 0);
    net.ring(5);
    let mut rng = StdRng::seed_from_u64(3);
    let sel = net.views[0].select(&mut rng, T0).unwrap();
    let (open, _) = net.views[0].open(&mut rng, T0, sel.id, ()).unwrap();
    let (answer, _) = net.views[1].answer(&mut rng, T0, &0, open);
    let Answer::Accept { mut accept, .. } = answer else {
        panic!("refused")
    };
    let transfer = accept.transfer.as_mut().unwrap();
    transfer.links.last_mut().unwrap().signature ^= 1;
    let (next, out) = net.views[0].advance(&mut rng, T0, sel.id, Incoming::Accept(accept));
    assert_eq!(next, Advance::Abort(Invalid::BadSignature));
    assert_eq!(out.invalid.get(Invalid::BadSignature), 1);
    assert!(out.finished);
}

#[test]
fn a_bad_open_is_refused_never_panics() {
    let mut net = Net::new(12, 6, 3, 0);
    net.ring(5);
    let mut rng = StdRng::seed_from_u64(3);
    let sel = net.views[0].select(&mut rng, T0).unwrap();
    let (open, _) = net.views[0].open(&mut rng, T0, sel.id, ()).unwrap();
    // Forged descriptor signature, wrong sender, future date, oversized chain, no redemption.
    let mut forged = open.clone();
    forged.fresh.signature ^= 1;
    let (a, out) = net.views[1].answer(&mut rng, T0, &0, forged);
    assert!(matches!(
        a,
        Answer::Refuse(Refuse {
            reason: RefuseReason::Invalid,
            ..
        })
    ));
    assert_eq!(out.invalid.get(Invalid::BadSignature), 1);
    let (a, _) = net.views[1].answer(&mut rng, T0, &5, open.clone());
    assert!(
        matches!(a, Answer::Refuse(_)),
        "the fresh descriptor is not the sender's"
    );
    let (a, out) = net.views[1].answer(&mut rng, T0 - 10 * GAP, &0, open.clone());
    assert!(matches!(a, Answer::Refuse(_)));
    assert_eq!(out.invalid.get(Invalid::FromFuture), 1);
    let mut long = open.clone();
    let link = long.redeem.as_ref().unwrap().links[0].clone();
    long.redeem.as_mut().unwrap().links = vec![link; 40];
    let (a, out) = net.views[1].answer(&mut rng, T0, &0, long);
    assert!(matches!(a, Answer::Refuse(_)));
    assert_eq!(out.invalid.get(Invalid::TooLong), 1);
    let mut none = open.clone();
    none.redeem = None;
    let (a, _) = net.views[1].answer(&mut rng, T0, &0, none);
    assert!(matches!(a, Answer::Refuse(_)));
    // The genuine one is accepted once; its replay is refused.
    let (a, _) = net.views[1].answer(&mut rng, T0, &0, open.clone());
    assert!(matches!(a, Answer::Accept { .. }));
    let (a, out) = net.views[1].answer(&mut rng, T0, &0, open);
    assert!(matches!(a, Answer::Refuse(_)));
    assert_eq!(out.invalid.get(Invalid::Replay), 1);
    assert_eq!(
        net.views[1].blacklist_len(),
        0,
        "bad input never blacklists"
    );
}

/// Node 0 clones: it hands one descriptor of node 1 to nodes 2 and 3, which both redeem it
/// at node 1.
#[test]
fn a_clone_redeemed_twice_is_proven_blacklisted_and_flooded() {
    let mut net = Net::new(6, 6, 3, 0);
    net.give(1, 0, T0 - 5 * GAP);
    net.give(4, 2, T0 - 2 * GAP);
    net.give(5, 3, T0 - 2 * GAP);
    let scheme = net.authority.scheme();
    let cloner = net.authority.signer(0);
    let held = net.views[0].export().holdings.remove(0);
    let token = verify_chain(&scheme, net.views[0].rules, held).unwrap();
    for (to, at) in [(2u32, T0 - 4 * GAP), (3, T0 - 3 * GAP)] {
        let handover = HandOver {
            prev: token.head(),
            to,
            kind: HandOverKind::Transfer,
        };
        let (signature, _) = cloner.sign_handover(&scheme, &handover).unwrap();
        let mut chain = token.chain().clone();
        chain.links.push(Link {
            to,
            kind: HandOverKind::Transfer,
            signature,
        });
        // A hand-over from a non-creator is taken like a transfer in an exchange would be.
        let mut out = ExchangeOutcome::default();
        let t = net.views[to as usize].verify(chain).unwrap();
        net.views[to as usize].take(t, false, at, &mut out);
        assert_eq!(out.gained, vec![1]);
    }
    let (q, first) = net.shuffle(2, T0);
    assert_eq!(q, 1);
    assert!(first.responder.proofs_found.is_empty());
    let (q, second) = net.shuffle(3, T0 + GAP);
    assert_eq!(q, 1);
    assert_eq!(second.responder.proofs_found, vec![(0, ProofKind::Fork)]);
    assert_eq!(second.responder.blacklisted, vec![0]);
    assert_eq!(
        second.responder.refused,
        Some(RefuseReason::AlreadyRedeemed)
    );
    assert!(net.views[1].is_blacklisted(&0));
    let floods: Vec<_> = net.views[1].drain_floods().collect();
    assert_eq!(floods.len(), 1);
    let (proof, _) = &floods[0];
    assert_eq!(verify_proof(&scheme, GAP, proof), Ok(0));
    // Anyone who receives the proof blacklists the cloner and drops its descriptors.
    net.give(0, 4, T0);
    let out = net.views[4].receive_proofs(vec![proof.clone()]);
    assert_eq!(out.blacklisted, vec![0]);
    assert!(out.dropped.contains(&(0, DropReason::Blacklisted)));
    assert!(net.views[4].holdings().all(|h| *h.creator != 0));
    // Received again: skipped unchecked, nothing new.
    assert!(
        net.views[4]
            .receive_proofs(vec![proof.clone()])
            .blacklisted
            .is_empty()
    );
    // A blacklisted node's exchanges are refused with the proof.
    let mut rng = StdRng::seed_from_u64(9);
    let sel = net.views[0].join(T0 + 2 * GAP, 4).unwrap();
    let (open, _) = net.views[0]
        .open(&mut rng, T0 + 2 * GAP, sel.id, ())
        .unwrap();
    let (answer, _) = net.views[4].answer(&mut rng, T0 + 2 * GAP, &0, open);
    let Answer::Refuse(refuse) = answer else {
        panic!("accepted a blacklisted node")
    };
    assert_eq!(refuse.reason, RefuseReason::Blacklisted);
    assert_eq!(refuse.proofs, vec![proof.clone()]);
}

#[test]
fn proofs_that_do_not_prove_are_rejected() {
    let net = Net::new(4, 6, 3, 0);
    let scheme = net.authority.scheme();
    let a = net.authority.signer(0);
    let body = |t| DescriptorBody {
        creator: 0,
        minted_at: t,
        mint_gap: GAP,
        addresses: (),
    };
    let signed = |t| SignedDescriptor {
        body: body(t),
        signature: a.sign_descriptor(&scheme, &body(t)).unwrap().0,
    };
    let freq = |x, y| Proof::Frequency {
        a: signed(x),
        b: signed(y),
    };
    assert_eq!(verify_proof(&scheme, GAP, &freq(T0, T0 + GAP - 1)), Ok(0));
    assert_eq!(
        verify_proof(&scheme, GAP, &freq(T0, T0 + GAP)),
        Err(ProofError::FarApart)
    );
    assert_eq!(
        verify_proof(&scheme, GAP, &freq(T0, T0)),
        Err(ProofError::NoConflict)
    );
    assert_eq!(
        verify_proof(&scheme, 2 * GAP, &freq(T0, T0 + 1)),
        Err(ProofError::GapMismatch)
    );
    let digest = scheme.descriptor_digest(&body(T0));
    let link = |to, kind| {
        let h = HandOver {
            prev: digest,
            to,
            kind,
        };
        Link {
            to,
            kind,
            signature: a.sign_handover(&scheme, &h).unwrap().0,
        }
    };
    let fork = |x: Link<u32, u64>, y: Link<u32, u64>| Proof::Fork {
        offender: 0,
        prev: digest,
        a: x,
        b: y,
    };
    let t = HandOverKind::Transfer;
    assert_eq!(
        verify_proof(&scheme, GAP, &fork(link(1, t), link(2, t))),
        Ok(0)
    );
    assert_eq!(
        verify_proof(
            &scheme,
            GAP,
            &fork(link(1, t), link(2, HandOverKind::RedeemNonSwappable))
        ),
        Err(ProofError::Exempt)
    );
    assert_eq!(
        verify_proof(&scheme, GAP, &fork(link(1, t), link(1, t))),
        Err(ProofError::NoConflict)
    );
    let mut bad = link(2, t);
    bad.signature ^= 1;
    assert_eq!(
        verify_proof(&scheme, GAP, &fork(link(1, t), bad)),
        Err(ProofError::BadSignature)
    );
    let framed = Proof::Fork {
        offender: 3,
        prev: digest,
        a: link(1, t),
        b: link(2, t),
    };
    assert_eq!(
        verify_proof(&scheme, GAP, &framed),
        Err(ProofError::BadSignature),
        "node 0's signatures cannot accuse node 3"
    );
}

#[test]
fn a_sample_conflicting_with_a_chain_seen_in_full_leads_to_a_proof() {
    // Node 0 forks one descriptor of node 5 to nodes 1 and 2. Node 1 then answers node 2's
    // samples by showing its branch; node 2 holds the other and proves the fork.
    let mut net = Net::new(6, 6, 3, 0);
    net.give(5, 0, T0 - 8 * GAP);
    net.give(1, 2, T0 - 9 * GAP);
    let scheme = net.authority.scheme();
    let cloner = net.authority.signer(0);
    let held = net.views[0].export().holdings.remove(0);
    let token = verify_chain(&scheme, net.views[0].rules, held).unwrap();
    for to in [1u32, 2] {
        let h = HandOver {
            prev: token.head(),
            to,
            kind: HandOverKind::Transfer,
        };
        let mut chain = token.chain().clone();
        chain.links.push(Link {
            to,
            kind: HandOverKind::Transfer,
            signature: cloner.sign_handover(&scheme, &h).unwrap().0,
        });
        let mut out = ExchangeOutcome::default();
        let t = net.views[to as usize].verify(chain).unwrap();
        net.views[to as usize].observe_full(&t, &mut out);
        net.views[to as usize].take(t, false, T0, &mut out);
    }
    // Node 2 redeems node 1's descriptor: its samples show its branch of node 5's descriptor.
    let (q, done) = net.shuffle(2, T0);
    assert_eq!(q, 1);
    let found: Vec<_> = done
        .initiator
        .proofs_found
        .iter()
        .chain(&done.responder.proofs_found)
        .collect();
    assert_eq!(found, vec![&(0, ProofKind::Fork)], "{done:?}");
    assert!(net.views[2].is_blacklisted(&0));
}

#[test]
fn an_early_end_leaves_room_for_non_swappable_copies_redeemed_once() {
    let mut net = Net::new(8, 6, 3, 0);
    // Node 0 holds descriptors of 1, 2 and 3; node 1 holds nothing to give.
    net.give(1, 0, T0 - 9 * GAP);
    net.give(2, 0, T0 - 8 * GAP);
    net.give(3, 0, T0 - 7 * GAP);
    let (q, done) = net.shuffle(0, T0);
    assert_eq!(q, 1);
    // Node 1 had nothing to give: it ended at once; node 0 keeps a copy of what it redeemed.
    assert!(done.initiator.given.is_empty(), "{done:?}");
    assert_eq!(done.initiator.kept_non_swappable, vec![1]);
    let ns: Vec<_> = net.views[0]
        .holdings()
        .filter(|h| !h.swappable)
        .map(|h| *h.creator)
        .collect();
    assert_eq!(ns, vec![1]);
    // The copy is the oldest: redeemed as non-swappable, accepted once.
    let (q, done) = net.shuffle(0, T0 + GAP);
    assert_eq!(q, 1);
    assert_eq!(
        done.initiator.redeemed,
        Some((1, HandOverKind::RedeemNonSwappable))
    );
    assert_eq!(done.responder.refused, None, "{done:?}");
    assert_eq!(
        done.initiator.proofs_found.len() + done.responder.proofs_found.len(),
        0
    );
}

#[test]
fn repair_copies_follow_the_setting() {
    let mut kept = Vec::new();
    for copies in [
        RepairCopies::GivenAndRedeemed,
        RepairCopies::Given,
        RepairCopies::Off,
    ] {
        let secure = SecureParams::scaled(6, GAP)
            .with_anchors(0)
            .with_repair_copies(copies);
        let mut net = Net::with_params(
            8,
            ShuffleParams::new(6, 3).with_defence(Defence::Secure(secure)),
        );
        // Node 0 holds descriptors of 1, 2 and 3; node 1 holds one of 5 to give back.
        net.give(1, 0, T0 - 9 * GAP);
        net.give(2, 0, T0 - 8 * GAP);
        net.give(3, 0, T0 - 7 * GAP);
        net.give(5, 1, T0 - 6 * GAP);
        let (q, done) = net.shuffle(0, T0);
        assert_eq!(q, 1);
        assert!(!done.initiator.given.is_empty(), "{done:?}");
        kept.push(done.initiator.kept_non_swappable);
    }
    assert!(kept[0].contains(&1), "the redeemed descriptor: {kept:?}");
    assert!(!kept[1].contains(&1) && !kept[1].is_empty(), "{kept:?}");
    assert!(kept[1].iter().all(|c| kept[0].contains(c)), "{kept:?}");
    assert!(kept[2].is_empty(), "{kept:?}");
}

#[test]
fn joins_are_accepted_within_the_budget_per_gap() {
    let mut net = Net::new(5, 6, 3, 0);
    net.give(3, 0, T0 - 5 * GAP);
    let mut rng = StdRng::seed_from_u64(4);
    let busy = Some(RefuseReason::Busy);
    for (joiner, expect) in [(1u32, None), (2, None), (4, busy)] {
        let sel = net.views[joiner as usize].join(T0, 0).unwrap();
        assert!(sel.join);
        let (a, b) = net.two(joiner, 0);
        let done = exchange(a, b, &sel, (), &mut rng, T0, || false);
        assert_eq!(done.responder.refused, expect, "{done:?}");
    }
    assert_eq!(
        net.creators(1),
        vec![3],
        "the first joiner got node 0's descriptor"
    );
    assert!(
        net.views[0].holdings().all(|h| h.swappable),
        "a join leaves no copy of what it gave"
    );
    let sel = net.views[4].join(T0 + GAP, 0).unwrap();
    let (a, b) = net.two(4, 0);
    let done = exchange(a, b, &sel, (), &mut rng, T0 + GAP, || false);
    assert_eq!(done.responder.refused, None, "a gap later: {done:?}");
}

#[test]
fn expired_descriptors_leave_and_are_never_redeemed() {
    let mut net = Net::new(4, 6, 3, 0);
    let max_age = net.views[0].params().max_age;
    net.give(1, 0, T0);
    net.give(2, 0, T0 + 1);
    let out = net.views[0].tick(T0 + max_age + 1);
    assert_eq!(out.dropped, vec![(1, DropReason::Expired)]);
    assert_eq!(net.views[0].len(), 1);
}

#[test]
fn restored_holdings_come_back_non_swappable_and_the_mint_clock_waits() {
    let mut net = Net::new(6, 6, 3, 0);
    net.ring(4);
    net.shuffle(0, T0);
    let snapshot = net.views[0].export();
    assert_eq!(snapshot.holdings.len(), net.views[0].len());
    let mut rng = StdRng::seed_from_u64(5);
    let mut restarted = View::new(
        params(6, 3, 0),
        net.authority.scheme(),
        net.authority.signer(0),
        T0 + GAP,
        &mut rng,
    )
    .unwrap();
    let out = restarted.import(T0 + GAP, snapshot);
    assert_eq!(out.gained.len(), net.views[0].len());
    assert!(restarted.holdings().all(|h| !h.swappable));
    assert!(restarted.next_mint(T0 + GAP) >= T0 + 2 * GAP + GAP / 2);
}

#[test]
fn anchors_fill_from_verified_descriptors_and_are_contacted() {
    let mut net = Net::new(12, 8, 3, 2);
    for v in &mut net.views {
        v.params.anchor_probe_every = 8;
    }
    net.ring(6);
    let anchors: Vec<u32> = net.views[0].anchors().map(|b| b.creator).collect();
    assert_eq!(anchors.len(), 2);
    assert!(anchors.iter().all(|a| (1..=6).contains(a)));
    // One round in `anchor_probe_every` contacts an anchor, at a phase drawn at random.
    let mut rng = StdRng::seed_from_u64(1);
    let mut targets = Vec::new();
    let every = u64::from(net.views[0].params().anchor_probe_every);
    for k in 0..every {
        let sel = net.views[0].select(&mut rng, T0 + k * GAP).unwrap();
        targets.push(sel.target);
        let (open, _) = net.views[0]
            .open(&mut rng, T0 + k * GAP, sel.id, ())
            .unwrap();
        drop(open);
        net.views[0].fail(sel.id);
    }
    assert!(
        targets.iter().any(|t| anchors.contains(t)),
        "{targets:?} {anchors:?}"
    );
    // A view with nothing to redeem joins an anchor.
    let mut lonely = View::new_identity(
        ShuffleParams::new(8, 3).with_defence(Defence::Secure(
            SecureParams::scaled(8, GAP)
                .with_anchors(2)
                .with_anchor_memory(1000 * GAP),
        )),
        net.authority.scheme(),
        net.authority.signer(11),
        T0,
        &mut rng,
    )
    .unwrap();
    let chain = net.views[3].hand_out(T0 + 9 * GAP, 11, ()).unwrap();
    lonely.take_handed(T0 + 9 * GAP, chain);
    let late = T0 + 9 * GAP + lonely.params().max_age + 1;
    lonely.tick(late);
    assert!(lonely.is_empty());
    let sel = lonely.select(&mut rng, late).unwrap();
    assert!(sel.join);
    assert_eq!(sel.target, 3);
}

#[test]
fn the_view_reports_each_creator_that_enters_or_leaves_once() {
    let mut net = Net::new(12, 5, 3, 0);
    net.ring(5);
    let added = |changes: &[ViewChange<u32, ()>]| -> Vec<u32> {
        let mut v: Vec<u32> = changes
            .iter()
            .filter_map(|c| match c {
                ViewChange::Added { peer, .. } => Some(*peer),
                ViewChange::Removed { .. } => None,
            })
            .collect();
        v.sort_unstable();
        v
    };
    let removed = |changes: &[ViewChange<u32, ()>]| -> Vec<u32> {
        let mut v: Vec<u32> = changes
            .iter()
            .filter_map(|c| match c {
                ViewChange::Removed { peer } => Some(*peer),
                ViewChange::Added { .. } => None,
            })
            .collect();
        v.sort_unstable();
        v
    };
    let first = net.views[0].drain_changes();
    assert_eq!(added(&first), vec![1, 2, 3, 4, 5], "every holding, once");
    assert!(removed(&first).is_empty());
    assert!(
        net.views[0].drain_changes().is_empty(),
        "nothing moved since"
    );

    let before = net.creators(0);
    let (q, _) = net.shuffle(0, T0);
    let after = net.creators(0);
    let changes = net.views[0].drain_changes();
    let gone: Vec<u32> = before
        .iter()
        .copied()
        .filter(|c| !after.contains(c))
        .collect();
    let new: Vec<u32> = after
        .iter()
        .copied()
        .filter(|c| !before.contains(c))
        .collect();
    assert!(
        gone.contains(&q),
        "the redeemed target left: {before:?} -> {after:?}"
    );
    assert_eq!(removed(&changes), gone);
    assert_eq!(added(&changes), new);
    assert!(net.views[0].drain_changes().is_empty());

    // Expiry is reported too.
    let max_age = net.views[0].params().max_age;
    net.views[0].tick(T0 + 2 * max_age);
    assert!(net.views[0].is_empty());
    assert_eq!(removed(&net.views[0].drain_changes()), after);
}
