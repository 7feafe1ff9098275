//! Property tests of SecureCyclon's core (`secure::SecureView`), with proptest.
//!
//! Honest nodes, whatever happens to them — lost messages, exchanges that overlap, crashes and
//! restarts from fresh or stale snapshots, clocks apart by up to `max_skew` — never sign two
//! hand-overs of one position that a proof could use, never mint two descriptors closer than
//! the gap, and so are never blacklisted. Forged and malformed input is dropped and counted,
//! never a panic, never a blacklisting.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    rc::Rc,
};

use libp2p_cyclon::{
    secure::{
        Advance, Answer, Chain, DescriptorBody, ExchangeId, ExchangeOutcome, HandOver,
        HandOverKind, Incoming, Link, Open, Proof, Scheme, SecureParams, SecureSnapshot,
        SecureView, SignError, SignedDescriptor, Signer, Step,
        sim_scheme::{SimAuthority, SimScheme, SimSigner},
    },
    view::{Defence, ShuffleParams},
};
use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};

const GAP: u64 = 1_000;
const T0: u64 = 10_000_000;

/// Every hand-over and descriptor honest nodes signed: `(signer, prev) -> [(to, kind)]` and
/// `signer -> [minted_at]`.
#[derive(Default)]
struct Log {
    handovers: HashMap<(u32, u64), Vec<(u32, HandOverKind)>>,
    mints: HashMap<u32, Vec<u64>>,
}

/// A signer that reports what it signs to the shared log.
#[derive(Clone)]
struct Recording {
    inner: SimSigner,
    log: Rc<RefCell<Log>>,
}

impl Signer<u32, (), SimScheme> for Recording {
    fn id(&self) -> &u32 {
        self.inner.id()
    }

    fn sign_descriptor(
        &self,
        scheme: &SimScheme,
        body: &DescriptorBody<u32, ()>,
    ) -> Result<(u64, u64), SignError> {
        self.log
            .borrow_mut()
            .mints
            .entry(body.creator)
            .or_default()
            .push(body.minted_at);
        self.inner.sign_descriptor(scheme, body)
    }

    fn sign_handover(
        &self,
        scheme: &SimScheme,
        handover: &HandOver<u32, u64>,
    ) -> Result<(u64, u64), SignError> {
        let mut log = self.log.borrow_mut();
        let signed = log
            .handovers
            .entry((*self.inner.id(), handover.prev))
            .or_default();
        if !signed.contains(&(handover.to, handover.kind)) {
            signed.push((handover.to, handover.kind));
        }
        drop(log);
        self.inner.sign_handover(scheme, handover)
    }
}

type View = SecureView<u32, (), SimScheme, Recording>;
type Msg = Incoming<u32, (), u64, u64>;

fn params(c: usize, l: usize, anchors: usize) -> ShuffleParams {
    let secure = SecureParams::scaled(c, GAP)
        .with_anchors(anchors)
        .with_evidence_capacity(64)
        .with_max_suspects(4)
        .with_redemption_cache(2);
    ShuffleParams::new(c, l).with_defence(Defence::Secure(secure))
}

/// What is on the wire of one exchange in progress.
enum Pending {
    ToResponder(Open<u32, (), u64, u64>),
    ToInitiator(Msg),
    StepToResponder {
        step: Step<u32, (), u64, u64>,
        last: bool,
    },
}

struct Conversation {
    initiator: u32,
    responder: u32,
    initiator_id: ExchangeId,
    responder_id: Option<ExchangeId>,
    pending: Pending,
}

struct World {
    authority: SimAuthority,
    log: Rc<RefCell<Log>>,
    params: ShuffleParams,
    views: Vec<View>,
    /// Each node's clock is `now + offset`, offsets within half of `max_skew` of each other.
    offsets: Vec<i64>,
    saved: Vec<Option<SecureSnapshot<u32, (), u64, u64>>>,
    conversations: Vec<Conversation>,
    now: u64,
    rng: StdRng,
    outcomes: Vec<ExchangeOutcome<u32>>,
}

impl World {
    fn new(n: u32, c: usize, l: usize, anchors: usize, offsets: Vec<i64>) -> Self {
        let authority = SimAuthority::new((11, 12), (13, 14));
        let log = Rc::new(RefCell::new(Log::default()));
        let params = params(c, l, anchors);
        let mut rng = StdRng::seed_from_u64(u64::from(n));
        let start = T0 - 100 * GAP;
        let mut views: Vec<View> = (0..n)
            .map(|id| {
                let signer = Recording {
                    inner: authority.signer(id),
                    log: log.clone(),
                };
                View::new_identity(params, authority.scheme(), signer, start, &mut rng).unwrap()
            })
            .collect();
        // A ring: node i holds descriptors of its successors, minted in the past.
        let k = (c - anchors).min(n as usize - 1) as u32;
        for step in 1..=k {
            for i in 0..n {
                let at = T0 - u64::from(k + 2 - step) * GAP;
                let creator = (i + step) % n;
                let chain = views[creator as usize].hand_out(at, i, ()).unwrap();
                views[i as usize].take_handed(at, chain);
            }
        }
        Self {
            authority,
            log,
            params,
            saved: vec![None; n as usize],
            views,
            offsets,
            conversations: Vec::new(),
            now: T0,
            rng,
            outcomes: Vec::new(),
        }
    }

    fn clock(&self, id: u32, jitter: i64) -> u64 {
        self.now
            .saturating_add_signed(self.offsets[id as usize] + jitter)
    }

    fn start(&mut self, p: u32, jitter: i64) {
        let now = self.clock(p, jitter);
        let Ok(sel) = self.views[p as usize].select(&mut self.rng, now) else {
            return;
        };
        if sel.target as usize >= self.views.len() || sel.target == p {
            let out = self.views[p as usize].abandon(sel.id);
            self.outcomes.push(out);
            return;
        }
        match self.views[p as usize].open(&mut self.rng, now, sel.id, ()) {
            Ok((open, out)) => {
                self.outcomes.push(out);
                self.conversations.push(Conversation {
                    initiator: p,
                    responder: sel.target,
                    initiator_id: sel.id,
                    responder_id: None,
                    pending: Pending::ToResponder(open),
                });
            }
            Err(_) => {
                let out = self.views[p as usize].abandon(sel.id);
                self.outcomes.push(out);
            }
        }
    }

    /// Delivers the next message of conversation `k`, or loses it.
    fn deliver(&mut self, k: usize, lose: bool, jitter: i64) {
        if self.conversations.is_empty() {
            return;
        }
        let k = k % self.conversations.len();
        let c = self.conversations.swap_remove(k);
        let (i, r) = (c.initiator, c.responder);
        if lose {
            let out = self.views[i as usize].fail(c.initiator_id);
            self.outcomes.push(out);
            if let Some(rid) = c.responder_id {
                let out = self.views[r as usize].fail(rid);
                self.outcomes.push(out);
            }
            return;
        }
        let (ti, tr) = (self.clock(i, jitter), self.clock(r, -jitter));
        let mut rng = StdRng::seed_from_u64(self.now ^ u64::from(i) << 32 ^ u64::from(r));
        let [vi, vr] = self
            .views
            .get_disjoint_mut([i as usize, r as usize])
            .expect("distinct nodes");
        match c.pending {
            Pending::ToResponder(open) => {
                let (answer, out) = vr.answer(&mut rng, tr, &i, open);
                self.outcomes.push(out);
                let (rid, msg) = match answer {
                    Answer::Accept { id, accept } => (Some(id), Incoming::Accept(accept)),
                    Answer::Refuse(refuse) => (None, Incoming::Refuse(refuse)),
                    _ => unreachable!(),
                };
                self.conversations.push(Conversation {
                    responder_id: rid,
                    pending: Pending::ToInitiator(msg),
                    ..c
                });
            }
            Pending::ToInitiator(msg) => {
                let (next, out) = vi.advance(&mut rng, ti, c.initiator_id, msg);
                self.outcomes.push(out);
                let step = match next {
                    Advance::Send(step) => Some((step, false)),
                    Advance::SendAndFinish(step) => Some((step, true)),
                    _ => None,
                };
                match (step, c.responder_id) {
                    (Some((step, last)), Some(_)) => self.conversations.push(Conversation {
                        pending: Pending::StepToResponder { step, last },
                        ..c
                    }),
                    (_, Some(rid)) => {
                        let out = vr.fail(rid);
                        self.outcomes.push(out);
                    }
                    _ => {}
                }
            }
            Pending::StepToResponder { step, last } => {
                let rid = c.responder_id.expect("accepted");
                let (next, out) = vr.advance(&mut rng, tr, rid, Incoming::Step(step));
                let finished = out.finished;
                self.outcomes.push(out);
                match next {
                    Advance::Send(step) if !last => self.conversations.push(Conversation {
                        pending: Pending::ToInitiator(Incoming::Step(step)),
                        ..c
                    }),
                    _ => {
                        if !last {
                            let out = vi.fail(c.initiator_id);
                            self.outcomes.push(out);
                        }
                        if !finished {
                            let out = vr.fail(rid);
                            self.outcomes.push(out);
                        }
                    }
                }
            }
        }
    }

    /// Node `p` crashes and restarts: from its saved snapshot (maybe stale), or empty. The
    /// other sides of its exchanges time out.
    fn restart(&mut self, p: u32, from_snapshot: bool) {
        let mut k = 0;
        while k < self.conversations.len() {
            let c = &self.conversations[k];
            if c.initiator == p || c.responder == p {
                let c = self.conversations.swap_remove(k);
                if c.initiator != p {
                    let out = self.views[c.initiator as usize].fail(c.initiator_id);
                    self.outcomes.push(out);
                }
                if c.responder != p
                    && let Some(rid) = c.responder_id
                {
                    let out = self.views[c.responder as usize].fail(rid);
                    self.outcomes.push(out);
                }
            } else {
                k += 1;
            }
        }
        let now = self.clock(p, 0);
        let signer = Recording {
            inner: self.authority.signer(p),
            log: self.log.clone(),
        };
        let mut view = View::new(
            self.params,
            self.authority.scheme(),
            signer,
            now,
            &mut self.rng,
        )
        .unwrap();
        if from_snapshot && let Some(saved) = self.saved[p as usize].clone() {
            let out = view.import(now, saved);
            self.outcomes.push(out);
        }
        self.views[p as usize] = view;
    }

    fn check(&self) {
        let log = self.log.borrow();
        for ((signer, _), signed) in &log.handovers {
            let binding: Vec<_> = signed
                .iter()
                .filter(|(_, kind)| *kind != HandOverKind::RedeemNonSwappable)
                .collect();
            assert!(
                binding.len() <= 1,
                "node {signer} signed two hand-overs of one position: {signed:?}"
            );
        }
        for (creator, mints) in &log.mints {
            for w in mints.windows(2) {
                assert!(
                    w[1] >= w[0] + GAP,
                    "node {creator} minted {} then {}",
                    w[0],
                    w[1]
                );
            }
        }
        for view in &self.views {
            assert_eq!(view.blacklist_len(), 0, "an honest node was blacklisted");
            let creators: HashSet<u32> = view.holdings().map(|h| *h.creator).collect();
            assert_eq!(creators.len(), view.len(), "two holdings of one creator");
            assert!(view.len() <= view.capacity());
            assert!(!creators.contains(view.local()));
        }
        for out in &self.outcomes {
            assert!(out.proofs_found.is_empty() && out.blacklisted.is_empty());
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Start(u32, i64),
    Deliver(usize, bool, i64),
    Time(u64),
    Save(u32),
    Restart(u32, bool),
    Tick(u32),
}

fn op(n: u32, skew: i64) -> impl Strategy<Value = Op> {
    let jitter = -skew / 8..=skew / 8;
    prop_oneof![
        4 => (0..n, jitter.clone()).prop_map(|(p, j)| Op::Start(p, j)),
        10 => (0..16usize, prop::bool::weighted(0.1), jitter).prop_map(|(k, l, j)| Op::Deliver(k, l, j)),
        3 => (0..(2 * GAP)).prop_map(Op::Time),
        1 => (0..n).prop_map(Op::Save),
        1 => (0..n, any::<bool>()).prop_map(|(p, s)| Op::Restart(p, s)),
        1 => (0..n).prop_map(Op::Tick),
    ]
}

fn scenario() -> impl Strategy<Value = (u32, usize, usize, usize, Vec<i64>, Vec<Op>)> {
    (4u32..9, 3usize..7, 1usize..4, 0usize..2).prop_flat_map(|(n, c, l, anchors)| {
        let c = c.max(anchors + 2);
        let l = l.min(c);
        let skew = (GAP / 2) as i64;
        (
            Just(n),
            Just(c),
            Just(l),
            Just(anchors),
            prop::collection::vec(-skew / 4..=skew / 4, n as usize),
            prop::collection::vec(op(n, skew), 1..250),
        )
    })
}

proptest! {
    // Deterministic: a fixed seed, and no regression files written.
    #![proptest_config(ProptestConfig {
        cases: 200,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5EC_C7C1),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn honest_nodes_never_sign_a_fork_nor_get_blacklisted(
        (n, c, l, anchors, offsets, ops) in scenario()
    ) {
        let mut world = World::new(n, c, l, anchors, offsets);
        for op in ops {
            match op {
                Op::Start(p, j) => world.start(p, j),
                Op::Deliver(k, lose, j) => world.deliver(k, lose, j),
                Op::Time(dt) => world.now += dt,
                Op::Save(p) => world.saved[p as usize] = Some(world.views[p as usize].export()),
                Op::Restart(p, s) => world.restart(p, s),
                Op::Tick(p) => {
                    let now = world.clock(p, 0);
                    let out = world.views[p as usize].tick(now);
                    world.outcomes.push(out);
                }
            }
            world.check();
        }
        // The run did exchange descriptors (unless it was very short).
        let moved: usize = world.outcomes.iter().map(|o| o.gained.len() + o.dropped.len()).sum();
        let delivered = world.outcomes.iter().filter(|o| o.finished).count();
        prop_assert!(moved > 0 || delivered < 20, "nothing was exchanged in {delivered} exchanges");
    }
}

// ---------------------------------------------------------------------------- bad input

/// Ways to spoil a message.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    DescriptorSignature,
    LinkSignature(usize),
    LinkTarget(usize),
    DropLink(usize),
    RepeatLinks(usize),
    FutureDate,
    OldDate,
    Gap,
    Creator,
    Kind(usize),
}

fn spoil(chain: &mut Chain<u32, (), u64>, how: Spoil) {
    let n = chain.links.len().max(1);
    match how {
        Spoil::DescriptorSignature => chain.signature ^= 1,
        Spoil::LinkSignature(k) => {
            if let Some(l) = chain.links.get_mut(k % n) {
                l.signature = l.signature.rotate_left(1) ^ 1;
            }
        }
        Spoil::LinkTarget(k) => {
            if let Some(l) = chain.links.get_mut(k % n) {
                l.to = l.to.wrapping_add(1);
            }
        }
        Spoil::DropLink(k) => {
            if !chain.links.is_empty() {
                chain.links.remove(k % n);
            }
        }
        Spoil::RepeatLinks(k) => {
            if let Some(l) = chain.links.first().cloned() {
                chain.links.extend(std::iter::repeat_n(l, 30 + k % 10));
            }
        }
        Spoil::FutureDate => chain.body.minted_at += 100 * GAP,
        Spoil::OldDate => chain.body.minted_at = chain.body.minted_at.saturating_sub(1000 * GAP),
        Spoil::Gap => chain.body.mint_gap += 1,
        Spoil::Creator => chain.body.creator = chain.body.creator.wrapping_add(1),
        Spoil::Kind(k) => {
            if let Some(l) = chain.links.get_mut(k % n) {
                l.kind = match l.kind {
                    HandOverKind::Transfer => HandOverKind::Redeem,
                    _ => HandOverKind::Transfer,
                };
            }
        }
    }
}

fn spoil_strategy() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        Just(Spoil::DescriptorSignature),
        (0..40usize).prop_map(Spoil::LinkSignature),
        (0..40usize).prop_map(Spoil::LinkTarget),
        (0..40usize).prop_map(Spoil::DropLink),
        (0..40usize).prop_map(Spoil::RepeatLinks),
        Just(Spoil::FutureDate),
        Just(Spoil::OldDate),
        Just(Spoil::Gap),
        Just(Spoil::Creator),
        (0..40usize).prop_map(Spoil::Kind),
    ]
}

/// A proof spoiled or made of honest pieces that do not conflict.
fn bad_proof(world: &World, pick: u8) -> Proof<u32, (), u64, u64> {
    let scheme = world.authority.scheme();
    let honest = world.authority.signer(1);
    let body = |t| DescriptorBody {
        creator: 1,
        minted_at: t,
        mint_gap: GAP,
        addresses: (),
    };
    let signed = |t: u64| SignedDescriptor {
        body: body(t),
        signature: honest.sign_descriptor(&scheme, &body(t)).unwrap().0,
    };
    let d = scheme.descriptor_digest(&body(T0));
    let link = |to, kind| Link {
        to,
        kind,
        signature: honest
            .sign_handover(&scheme, &HandOver { prev: d, to, kind })
            .unwrap()
            .0,
    };
    match pick % 4 {
        // One gap apart: no violation.
        0 => Proof::Frequency {
            a: signed(T0),
            b: signed(T0 + GAP),
        },
        // An exempt pair.
        1 => Proof::Fork {
            offender: 1,
            prev: d,
            a: link(2, HandOverKind::Transfer),
            b: link(1 + 2, HandOverKind::RedeemNonSwappable),
        },
        // A forged second signature.
        2 => {
            let mut b = link(3, HandOverKind::Transfer);
            b.signature ^= 1 | u64::from(pick);
            Proof::Fork {
                offender: 1,
                prev: d,
                a: link(2, HandOverKind::Transfer),
                b,
            }
        }
        // Another's signatures naming node 1.
        _ => {
            let other = world.authority.signer(2);
            let l = |to| Link {
                to,
                kind: HandOverKind::Transfer,
                signature: other
                    .sign_handover(
                        &scheme,
                        &HandOver {
                            prev: d,
                            to,
                            kind: HandOverKind::Transfer,
                        },
                    )
                    .unwrap()
                    .0,
            };
            Proof::Fork {
                offender: 1,
                prev: d,
                a: l(3),
                b: l(4),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0xBAD_1A9),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Spoiled chains in every slot of every message, oversized sample sets and bad proofs
    /// are dropped and counted; nothing panics and nobody is blacklisted.
    #[test]
    fn bad_input_is_dropped_and_counted(
        how in spoil_strategy(),
        slot in 0u8..6,
        pick in any::<u8>(),
        extra_samples in 0usize..60,
    ) {
        let mut world = World::new(6, 5, 3, 0, vec![0; 6]);
        let now = world.now;
        let mut rng = StdRng::seed_from_u64(1);
        let sel = world.views[0].select(&mut rng, now).unwrap();
        let q = sel.target;
        let (mut open, _) = world.views[0].open(&mut rng, now, sel.id, ()).unwrap();
        let proof = bad_proof(&world, pick);
        let mut rejected = 0;
        match slot {
            0 => spoil(open.redeem.as_mut().unwrap(), how),
            1 => spoil(&mut open.fresh, how),
            2 => open.proofs = vec![proof; 1 + extra_samples % 12],
            3 => {
                let template = open.samples.iter().next().map(|s| (s.tag, s.minted_at));
                let (tag, t) = template.unwrap_or((1, now));
                for k in 0..extra_samples {
                    open.samples.push(tag + k as u64, t, [k as u32; 40]);
                }
            }
            _ => {
                let mut suspect = open.fresh.clone();
                spoil(&mut suspect, how);
                open.suspects = vec![suspect; 1 + slot as usize];
            }
        }
        let (answer, out) = world.views[q as usize].answer(&mut rng, now, &0, open);
        rejected += out.invalid.total();
        if let Answer::Refuse(r) = &answer {
            prop_assert!(r.proofs.is_empty() || out.refused.is_some());
            rejected += 1;
        }
        // Whatever happened, the responder's state is sound and nobody is blacklisted.
        world.check();
        if slot <= 2 {
            prop_assert!(rejected > 0, "a spoiled open went unnoticed: {how:?} in slot {slot}");
        }
        // The initiator then meets a spoiled transfer in the reply, if there is one.
        if let Answer::Accept { accept, .. } = answer {
            let mut accept = accept;
            if let Some(t) = accept.transfer.as_mut() {
                spoil(t, how);
                let (next, out) = world.views[0].advance(&mut rng, now, sel.id, Incoming::Accept(accept));
                prop_assert!(matches!(next, Advance::Abort(_)) || out.invalid.total() > 0 || out.dropped.len() == 1,
                    "a spoiled transfer went unnoticed: {how:?}: {next:?} {out:?}");
                world.check();
            }
        }
    }
}
