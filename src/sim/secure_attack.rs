//! Colluding nodes against SecureCyclon ([`SecureAttack`]): the coalition speaks the
//! protocol's messages to honest cores, with the signers of its own members and nothing else,
//! and breaks the rules its attack says.

use rand::{RngExt, SeedableRng, seq::SliceRandom};

use super::graph::Graph;
use super::secure_engine::{SecureEngine, SimView};
use super::{
    Attack, AttackCounters, AttackMeasurement, AttackTarget, NodeId, NodeState, SimRng, Simulation,
};
use crate::secure::{
    Accept, Advance, Answer, Chain, ChainRules, DescriptorBody, HandOver, HandOverKind, Incoming,
    Link, Open, Samples, Selected, Signer, Step, Token,
    sim_scheme::{SimScheme, SimSigner},
    verify_chain,
};

/// Seed offset of the coalition's own random choices.
const COALITION_STREAM: u64 = 0x636f_616c_6974_3131;

/// How a coalition attacks SecureCyclon (`simulate --attack KIND`). Before the attack starts
/// its members run the protocol honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SecureAttack {
    /// The strongest attack measured: [`Focused`](Self::Focused) against victims, else
    /// [`Hoarder`](Self::Hoarder) (docs/defence.md).
    #[default]
    Strongest,
    /// The paper's hub attack: every descriptor a member hands an honest node is a copy of a
    /// coalition descriptor it keeps handing out (a fork), and it initiates
    /// [`Attack::pushes`] exchanges per cycle, minting for each (over-minting beyond one).
    Cloner,
    /// Rate-honest: mints once per gap (dated as late as the skew allows), never forks, keeps
    /// every honest descriptor it receives and hands out only coalition descriptors.
    Hoarder,
    /// Hoarders spending every coalition descriptor on the victims (`--focus`): they redeem
    /// or join victims whenever they can, and hand non-victims honest descriptors to stay
    /// engaged.
    Focused,
    /// Never initiates; answers every honest initiator with coalition descriptors only.
    Answers,
    /// Takes one transfer and stops: answers with nothing, initiates and ends after the
    /// first reply (the paper's link depletion).
    Deplete,
}

impl SecureAttack {
    /// The attack's name, as `--attack` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecureAttack::Strongest => "strongest",
            SecureAttack::Cloner => "cloner",
            SecureAttack::Hoarder => "hoarder",
            SecureAttack::Focused => "focused",
            SecureAttack::Answers => "answers",
            SecureAttack::Deplete => "deplete",
        }
    }

    /// What [`Strongest`](Self::Strongest) means against `target`.
    pub fn resolve(self, target: AttackTarget) -> Self {
        match (self, target) {
            (SecureAttack::Strongest, AttackTarget::Focused { .. }) => SecureAttack::Focused,
            (SecureAttack::Strongest, AttackTarget::Spread) => SecureAttack::Hoarder,
            (kind, _) => kind,
        }
    }
}

/// SecureCyclon's own figures under an attack, after one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct SecureAttackMeasurement {
    /// The attack run.
    pub kind: SecureAttack,
    /// Mean share of the coalition's members each live honest node blacklists.
    pub blacklisted_share: f64,
    /// Share of live honest nodes that blacklist every member.
    pub blacklisting_all: f64,
    /// The least share of live honest nodes that blacklist one member (measured cycles only).
    pub least_member_blacklisted: Option<f64>,
    /// Honest nodes blacklisted by honest nodes (measured cycles only; 0 is the property).
    pub honest_blacklisted: Option<u64>,
    /// Proofs honest nodes built so far.
    pub proofs_found: u64,
    /// Share of honest view entries that are non-swappable copies.
    pub ns_share: f64,
    /// Exchanges honest responders refused so far.
    pub refused: u64,
    /// Descriptors honest nodes dropped as expired so far.
    pub expired: u64,
}

/// The coalition's state.
#[derive(Debug, Clone)]
pub(super) struct Coalition {
    attack: Attack,
    kind: SecureAttack,
    rng: SimRng,
    scheme: SimScheme,
    members: Vec<NodeId>,
    /// `index[id]`: the member's position in `members` and `signers`, or `u32::MAX`.
    index: Vec<u32>,
    signers: Vec<SimSigner>,
    next_mint: Vec<u64>,
    victims: Vec<NodeId>,
    victim_mask: Vec<bool>,
    started: bool,
    /// Coalition descriptors the members own.
    pool: Vec<Token<NodeId, (), u64, u64>>,
    /// Honest descriptors the members own (victims' apart).
    hoard: Vec<Token<NodeId, (), u64, u64>>,
    victim_tokens: Vec<Token<NodeId, (), u64, u64>>,
    /// Cloners: coalition descriptors handed out again and again.
    sources: Vec<Token<NodeId, (), u64, u64>>,
    counters: AttackCounters,
    gap: u64,
    lead: u64,
    max_links: usize,
    swap_length: usize,
}

type Tok = Token<NodeId, (), u64, u64>;
type SimChain = Chain<NodeId, (), u64>;

impl Coalition {
    /// Draws the members among the `nodes` initial ones; they get their own signers only.
    pub(super) fn new(attack: Attack, engine: &SecureEngine, nodes: usize, seed: u64) -> Self {
        let mut rng = SimRng::seed_from_u64(seed ^ COALITION_STREAM);
        let count = (attack.fraction.clamp(0.0, 1.0) * nodes as f64).round() as usize;
        let mut ids: Vec<NodeId> = (0..nodes as NodeId).collect();
        let (chosen, _) = ids.partial_shuffle(&mut rng, count);
        let mut members = chosen.to_vec();
        members.sort_unstable();
        let mut index = vec![u32::MAX; nodes];
        for (k, &m) in members.iter().enumerate() {
            index[m as usize] = k as u32;
        }
        let signers = members
            .iter()
            .map(|&m| engine.authority.signer(m))
            .collect();
        Self {
            kind: attack.secure.resolve(attack.target),
            attack,
            rng,
            scheme: engine.authority.scheme(),
            next_mint: vec![0; members.len()],
            signers,
            members,
            index,
            victims: Vec::new(),
            victim_mask: Vec::new(),
            started: false,
            pool: Vec::new(),
            hoard: Vec::new(),
            victim_tokens: Vec::new(),
            sources: Vec::new(),
            counters: AttackCounters::default(),
            gap: engine.secure.mint_gap,
            lead: engine.secure.max_skew / 2,
            max_links: engine.secure.max_links,
            swap_length: engine.params.shuffle_length,
        }
    }

    pub(super) fn attack(&self) -> &Attack {
        &self.attack
    }

    pub(super) fn members(&self) -> &[NodeId] {
        &self.members
    }

    pub(super) fn victims(&self) -> &[NodeId] {
        &self.victims
    }

    pub(super) fn is_member(&self, id: NodeId) -> bool {
        self.index.get(id as usize).is_some_and(|&k| k != u32::MAX)
    }

    fn is_victim(&self, id: NodeId) -> bool {
        self.victim_mask.get(id as usize).copied().unwrap_or(false)
    }

    pub(super) fn attacking(&self, cycle: u64) -> bool {
        cycle > self.attack.start && !self.members.is_empty()
    }

    pub(super) fn started(&self) -> bool {
        self.started
    }

    /// The attack starts: the members pool what they own, and victims are drawn.
    pub(super) fn begin(
        &mut self,
        engine: &mut SecureEngine,
        live: &[NodeId],
        state: &[NodeState],
        now: u64,
    ) {
        self.started = true;
        if let AttackTarget::Focused { victims } = self.attack.target {
            let mut honest: Vec<NodeId> = live
                .iter()
                .copied()
                .filter(|&id| !self.is_member(id))
                .collect();
            honest.sort_unstable();
            let count = victims.min(honest.len());
            let (chosen, _) = honest.partial_shuffle(&mut self.rng, count);
            self.victims = chosen.to_vec();
            self.victims.sort_unstable();
            self.victim_mask = vec![false; state.len()];
            for &v in &self.victims {
                self.victim_mask[v as usize] = true;
            }
        }
        for k in 0..self.members.len() {
            let m = self.members[k];
            let view = &engine.views[m as usize];
            self.next_mint[k] = view.next_mint(now);
            // Non-swappable copies stay out: handing one on would be a fork.
            let swappable: Vec<bool> = view.holdings().map(|h| h.swappable).collect();
            for (chain, swappable) in view.export().holdings.into_iter().zip(swappable) {
                if swappable {
                    self.receive(chain);
                }
            }
        }
        if self.kind == SecureAttack::Cloner {
            self.sources = std::mem::take(&mut self.pool);
        }
    }

    /// Adds the members' initiations to `order`: `pushes` each per cycle for cloners (a
    /// fraction adds one more with that probability), one for the rate-honest kinds, none
    /// for `answers`.
    pub(super) fn order(&mut self, live: &[NodeId], order: &mut Vec<NodeId>) {
        for &id in live {
            if !self.is_member(id) {
                order.push(id);
                continue;
            }
            let n = match self.kind {
                SecureAttack::Answers => 0,
                SecureAttack::Cloner => {
                    let p = self.attack.pushes;
                    let extra = self.rng.random::<f64>() < p.fract();
                    p.floor() as usize + usize::from(extra)
                }
                _ => usize::from(self.attack.pushes > 0.0),
            };
            order.extend(std::iter::repeat_n(id, n));
        }
    }

    /// Forgets descriptors too old to redeem.
    pub(super) fn expire(&mut self, now: u64, max_age: u64) {
        let fresh = |t: &Tok| now.saturating_sub(t.minted_at()) <= max_age;
        self.pool.retain(fresh);
        self.hoard.retain(fresh);
        self.victim_tokens.retain(fresh);
        self.sources.retain(fresh);
    }

    /// A chain handed to a member: verified (for its digests) and kept by kind.
    fn receive(&mut self, chain: SimChain) {
        let rules = ChainRules {
            mint_gap: self.gap,
            max_links: self.max_links,
        };
        let Ok(token) = verify_chain(&self.scheme, rules, chain) else {
            return;
        };
        let creator = *token.creator();
        if self.is_member(creator) {
            self.pool.push(token);
        } else if self.is_victim(creator) {
            self.victim_tokens.push(token);
        } else {
            self.hoard.push(token);
        }
    }

    fn signer(&self, id: NodeId) -> &SimSigner {
        &self.signers[self.index[id as usize] as usize]
    }

    /// Member `m` signs `token` over to `to` (after an internal transfer from its current
    /// owner, a member, if need be).
    fn hand(&self, mut token: Tok, m: NodeId, to: NodeId, kind: HandOverKind) -> Option<SimChain> {
        let owner = *token.owner();
        let internal = usize::from(owner != m);
        if token.links().len() + internal + 1 > self.max_links || !self.is_member(owner) {
            return None;
        }
        for (signer, next, kind) in [(owner, m, HandOverKind::Transfer), (m, to, kind)]
            .into_iter()
            .skip(1 - internal)
        {
            let handover = HandOver {
                prev: token.head(),
                to: next,
                kind,
            };
            let (signature, digest) = self
                .signer(signer)
                .sign_handover(&self.scheme, &handover)
                .ok()?;
            token.push(
                Link {
                    to: next,
                    kind,
                    signature,
                },
                digest,
            );
        }
        Some(token.into_chain())
    }

    /// What member `m` hands `partner` next, as its attack says (`None`: it ends).
    fn give(&mut self, m: NodeId, partner: NodeId) -> Option<SimChain> {
        let from = match self.kind {
            SecureAttack::Deplete => return None,
            SecureAttack::Cloner => {
                if self.sources.is_empty() {
                    return None;
                }
                for _ in 0..4 {
                    let k = self.rng.random_range(0..self.sources.len());
                    if *self.sources[k].creator() != partner {
                        let token = self.sources[k].clone();
                        return self.hand(token, m, partner, HandOverKind::Transfer);
                    }
                }
                return None;
            }
            SecureAttack::Focused if !self.is_victim(partner) => Pool::Hoard,
            _ => Pool::Coalition,
        };
        let list = match from {
            Pool::Coalition => &mut self.pool,
            Pool::Hoard => &mut self.hoard,
        };
        let n = list.len();
        if n == 0 {
            return None;
        }
        let start = self.rng.random_range(0..n);
        let k = (0..n)
            .map(|i| (start + i) % n)
            .find(|&k| *list[k].creator() != partner)?;
        let token = list.swap_remove(k);
        self.hand(token, m, partner, HandOverKind::Transfer)
    }

    /// Member `m` mints a descriptor: as late as the skew allows and one gap after its last
    /// (rate-honest), or the `repeat`-th of this cycle (a cloner's over-minting).
    fn mint(&mut self, m: NodeId, repeat: usize, now: u64) -> Option<Tok> {
        let k = self.index[m as usize] as usize;
        let minted_at = if self.kind == SecureAttack::Cloner {
            (now + self.lead).saturating_sub(repeat as u64)
        } else {
            let t = (now + self.lead).max(self.next_mint[k]);
            if t > now + self.lead {
                return None;
            }
            t
        };
        self.next_mint[k] = minted_at + self.gap;
        let body = DescriptorBody {
            creator: m,
            minted_at,
            mint_gap: self.gap,
            addresses: (),
        };
        let (signature, digest) = self.signers[k].sign_descriptor(&self.scheme, &body).ok()?;
        Some(Token::minted(body, signature, digest))
    }

    /// Chooses whom member `m` contacts: a victim when it can (focused), else the creator of
    /// a hoarded descriptor. Returns the redemption (`None`: a join) and the target.
    fn target(&mut self, m: NodeId, sim: &Simulation) -> Option<(Option<Tok>, NodeId)> {
        let live = |id: NodeId| sim.state.get(id as usize) == Some(&NodeState::Live);
        if self.kind == SecureAttack::Focused {
            while let Some(t) = self.victim_tokens.pop() {
                let creator = *t.creator();
                if live(creator) {
                    return Some((Some(t), creator));
                }
            }
            let victims: Vec<NodeId> = self.victims.iter().copied().filter(|&v| live(v)).collect();
            if !victims.is_empty() {
                let v = victims[self.rng.random_range(0..victims.len())];
                return Some((None, v));
            }
        }
        let _ = m;
        for _ in 0..8 {
            if self.hoard.is_empty() {
                return None;
            }
            let k = self.rng.random_range(0..self.hoard.len());
            let t = self.hoard.swap_remove(k);
            let creator = *t.creator();
            if live(creator) {
                return Some((Some(t), creator));
            }
        }
        None
    }

    /// Member `m` initiates an exchange with an honest node.
    pub(super) fn initiate(
        &mut self,
        engine: &mut SecureEngine,
        m: NodeId,
        repeat: usize,
        sim: &mut Simulation,
        now: u64,
    ) {
        let Some((redeem, q)) = self.target(m, sim) else {
            return;
        };
        let Some(mut fresh) = self.mint(m, repeat, now) else {
            return;
        };
        if self.kind == SecureAttack::Cloner {
            self.sources.push(fresh.clone());
        }
        let handover = HandOver {
            prev: fresh.head(),
            to: q,
            kind: HandOverKind::Transfer,
        };
        let Ok((signature, digest)) = self.signer(m).sign_handover(&self.scheme, &handover) else {
            return;
        };
        fresh.push(
            Link {
                to: q,
                kind: HandOverKind::Transfer,
                signature,
            },
            digest,
        );
        let join = redeem.is_none();
        let redeem = match redeem {
            Some(t) => match self.hand(t, m, q, HandOverKind::Redeem) {
                Some(chain) => Some(chain),
                None => return,
            },
            None => None,
        };
        let open = Open {
            redeem,
            fresh: fresh.into_chain(),
            samples: Samples::new(),
            suspects: Vec::new(),
            proofs: Vec::new(),
            join,
        };
        self.counters.pushes += 1;
        let view: &mut SimView = &mut engine.views[q as usize];
        let (answer, out) = view.answer(&mut sim.rng, now, &m, open);
        engine.counters.refused += u64::from(out.refused.is_some());
        let Answer::Accept { id, accept } = answer else {
            self.counters.refused += 1;
            return;
        };
        let Accept { transfer, .. } = accept;
        let mut incoming = transfer;
        let limit = if join {
            engine.secure.join_transfers
        } else {
            self.swap_length
        };
        let mut sent = 1;
        loop {
            let ended = incoming.is_none();
            if let Some(chain) = incoming.take() {
                self.receive(chain);
            }
            let ours = if ended || sent >= limit {
                None
            } else {
                self.give(m, q)
            };
            let last = ours.is_none();
            sent += usize::from(!last);
            let step = bare_step(ours);
            let (next, _) =
                engine.views[q as usize].advance(&mut sim.rng, now, id, Incoming::Step(step));
            match next {
                Advance::Send(step) if !last => incoming = step.transfer,
                Advance::Send(step) => {
                    // It answered our end with its own end; nothing more to take.
                    let _ = step;
                    let (_, _) = engine.views[q as usize].advance(
                        &mut sim.rng,
                        now,
                        id,
                        Incoming::Step(bare_step(None)),
                    );
                    return;
                }
                _ => return,
            }
        }
    }

    /// Honest node `p` redeemed a descriptor of member `m`: the member answers by its attack.
    pub(super) fn answer(
        &mut self,
        engine: &mut SecureEngine,
        p: NodeId,
        m: NodeId,
        selected: &Selected<NodeId, ()>,
        rng: &mut SimRng,
        now: u64,
    ) {
        let view = &mut engine.views[p as usize];
        let Ok((open, _)) = view.open(rng, now, selected.id, ()) else {
            view.abandon(selected.id);
            return;
        };
        self.counters.answered += 1;
        let Open { fresh, join, .. } = open;
        self.receive(fresh);
        let limit = if join {
            engine.secure.join_transfers
        } else {
            self.swap_length
        };
        let mut ours = self.give(m, p);
        let mut sent = usize::from(ours.is_some());
        let mut message = Incoming::Accept(Accept {
            transfer: ours.take(),
            samples: Samples::new(),
            suspects: Vec::new(),
            proofs: Vec::new(),
        });
        loop {
            let (next, out) = engine.views[p as usize].advance(rng, now, selected.id, message);
            engine.counters.kept_non_swappable += out.kept_non_swappable.len() as u64;
            let (step, last) = match next {
                Advance::Send(step) => (step, false),
                Advance::SendAndFinish(step) => (step, true),
                _ => return,
            };
            let transfer = step.transfer;
            let got = transfer.is_some();
            if let Some(chain) = transfer {
                self.receive(chain);
            }
            if last || !got {
                return;
            }
            let ours = if sent < limit { self.give(m, p) } else { None };
            sent += usize::from(ours.is_some());
            message = Incoming::Step(bare_step(ours));
        }
    }

    /// How far the coalition has got into the honest views.
    pub(super) fn measure(
        &self,
        sim: &Simulation,
        engine: &SecureEngine,
        components: bool,
    ) -> AttackMeasurement {
        let mut snapshot = AttackMeasurement {
            cycle: sim.cycle,
            attacking: self.attacking(sim.cycle),
            counters: self.counters,
            ..AttackMeasurement::default()
        };
        let started = self.started;
        let honest_live = |id: NodeId| {
            sim.state[id as usize] == NodeState::Live && !(started && self.is_member(id))
        };
        let k = self.members.len().max(1) as f64;
        let (mut blacklisted, mut all, mut ns) = (0.0, 0usize, 0u64);
        let mut per_member = vec![0u64; if components { self.members.len() } else { 0 }];
        let mut honest_blacklisted = 0u64;
        for &id in &sim.live {
            if !honest_live(id) {
                continue;
            }
            let view = &engine.views[id as usize];
            let mut entries = 0u64;
            let mut malicious = 0u64;
            let mut eclipsed = true;
            for t in view.contacts() {
                entries += 1;
                if self.is_member(*t) {
                    malicious += 1;
                } else if sim.state[*t as usize] == NodeState::Live {
                    eclipsed = false;
                }
            }
            ns += view.holdings().filter(|h| !h.swappable).count() as u64;
            let listed = view.blacklist_len();
            blacklisted += (listed as f64 / k).min(1.0);
            all += usize::from(listed >= self.members.len() && !self.members.is_empty());
            if components {
                for b in view.blacklisted() {
                    match self.index.get(*b as usize) {
                        Some(&i) if i != u32::MAX => per_member[i as usize] += 1,
                        _ => honest_blacklisted += 1,
                    }
                }
            }
            snapshot.honest_nodes += 1;
            snapshot.entries += entries;
            snapshot.malicious_entries += malicious;
            snapshot.eclipsed += usize::from(eclipsed);
            if self.is_victim(id) {
                snapshot.victims += 1;
                snapshot.victim_entries += entries;
                snapshot.victim_malicious_entries += malicious;
                snapshot.victims_eclipsed += usize::from(eclipsed);
            }
        }
        let h = snapshot.honest_nodes.max(1) as f64;
        let counters = engine.counters;
        snapshot.secure = Some(SecureAttackMeasurement {
            kind: self.kind,
            blacklisted_share: blacklisted / h,
            blacklisting_all: all as f64 / h,
            least_member_blacklisted: components
                .then(|| per_member.iter().min().map_or(0.0, |&c| c as f64 / h)),
            honest_blacklisted: components.then_some(honest_blacklisted),
            proofs_found: counters.proofs_found,
            ns_share: ns as f64 / snapshot.entries.max(1) as f64,
            refused: counters.refused,
            expired: counters.expired,
        });
        if components {
            let mut index = vec![u32::MAX; sim.state.len()];
            let mut honest = Vec::with_capacity(snapshot.honest_nodes);
            for (id, slot) in index.iter_mut().enumerate() {
                if honest_live(id as NodeId) {
                    *slot = honest.len() as u32;
                    honest.push(id as NodeId);
                }
            }
            let graph = Graph::from_out_links(honest.iter().map(|&id| {
                engine
                    .links(id)
                    .map(|t| index[t as usize])
                    .filter(|&k| k != u32::MAX)
                    .collect::<Vec<u32>>()
            }));
            snapshot.honest_components = Some(graph.undirected().components());
        }
        snapshot
    }
}

enum Pool {
    Coalition,
    Hoard,
}

/// A step that carries a transfer or ends, and nothing else: the coalition shows nothing.
fn bare_step(transfer: Option<SimChain>) -> Step<NodeId, (), u64, u64> {
    Step {
        transfer,
        suspects: Vec::new(),
        proofs: Vec::new(),
    }
}
