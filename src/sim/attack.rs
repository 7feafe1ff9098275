//! Colluding malicious nodes that flood honest views with their own entries (hub and eclipse
//! attacks), measured against honest nodes with and without the behaviour's limits on what
//! they take (see [`Attack`]).

use std::hash::{BuildHasherDefault, DefaultHasher};
use std::time::Duration;

use rand::{RngExt, SeedableRng, seq::SliceRandom};

use super::graph::{ComponentStats, Graph};
use super::secure_attack::Coalition;
use super::{NodeId, NodeState, SecureAttack, SecureAttackMeasurement, SimRng, Simulation};
use crate::config::{Config, DEFAULT_SHUFFLE_INTERVAL, InboundRateLimit};
use crate::rate_limit::{MAX_RATE_LIMITED_PEERS, RateLimiter};
use crate::view::{Entry, MergeCounts};

/// Seed offset of the attackers' own random choices (who is malicious, whom they push to,
/// which entries they send), so that the run up to the attack is the run without one.
const ATTACK_STREAM: u64 = 0x6174_7461_636b_3131;

/// The simulated length of a cycle, for the rate limit: the default shuffle interval.
pub const CYCLE_DURATION: Duration = DEFAULT_SHUFFLE_INTERVAL;

/// Whom the malicious nodes push their entries to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AttackTarget {
    /// Each push goes to an honest node drawn uniformly from those the coalition has heard
    /// of: it poisons the whole overlay. One attacker rarely hits one target twice in a row,
    /// so the per-peer rate limit hardly ever binds.
    #[default]
    Spread,
    /// Every push goes to one of this many honest victims, drawn at random when the attack
    /// starts (an eclipse attempt on a few nodes). Each attacker hits each victim
    /// `pushes / victims` times per cycle: this is where the per-peer rate limit binds.
    Focused {
        /// Number of victims (at least 1).
        victims: usize,
    },
}

/// A coalition of malicious nodes, set up with [`Simulation::set_attack`] or
/// [`Scenario::attack`](super::Scenario::attack).
///
/// K of the N initial nodes (chosen at random) are malicious. Up to and including cycle
/// [`Attack::start`] they run the protocol like everyone else, so the overlay converges with
/// them in it and they hold about K/N of every view. From the next cycle on they collude:
///
/// - **Every shuffle they answer** (an honest node picked one of them as its oldest neighbour)
///   is answered with `c` distinct malicious entries of age 0. The honest initiator merges as
///   many as it considers (the message length `l` with the behaviour's limits, `c` without).
/// - **They initiate [`Attack::pushes`] shuffles per cycle each** (1 is an honest node's rate),
///   at random moments of the cycle, to honest nodes: a fresh entry for themselves plus `c - 1`
///   other malicious entries, all of age 0. The honest target answers and merges them by the
///   protocol's rules (fill empty slots, replace the entries it replied with), unless the
///   per-peer inbound rate limit refuses the request. Targets are chosen by
///   [`AttackTarget`]: any honest node the coalition has heard of, or a few victims.
/// - They share everything they learn: every honest initiator that contacts one of them and
///   every honest entry they receive joins a common pool of targets.
///
/// Honest nodes run the very core ([`PartialView`](crate::view::PartialView)) the behaviour
/// runs. With [`Attack::honest_limits`], they consider at most `l` received entries (the core's
/// default) and refuse requests beyond the behaviour's default per-peer rate limit (burst 5,
/// refilled twice per shuffle interval), enforced by the behaviour's own token bucket, with one
/// simulated cycle counted as one shuffle interval. Without the limits, they consider up to `c`
/// received entries and answer every request. Ages are clamped to `max_age` in both cases;
/// that clamp cannot matter here, since the attackers send the lowest age, 0.
///
/// The rate limit is only checked on the malicious nodes' requests: an honest node starts one
/// shuffle per cycle, so it asks any one peer at most once per interval, while the default
/// bucket refills twice per interval: it is never refused, and skipping the check changes
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attack {
    /// Share K/N of the initial nodes that are malicious, in `[0, 1]` (rounded to the nearest
    /// count). Nodes that join later are honest.
    pub fraction: f64,
    /// The malicious nodes behave honestly up to and including this cycle, and attack from
    /// the next one on.
    pub start: u64,
    /// Shuffles each malicious node initiates per cycle during the attack, instead of its
    /// honest one (a fraction `f` adds one more with probability `f`). 1 is an honest rate.
    pub pushes: f64,
    /// Whom they push to.
    pub target: AttackTarget,
    /// Whether the honest nodes enforce the behaviour's limits on what they take ("caps" in
    /// the simulator's output): at most `l` received entries considered per message and the
    /// default per-peer inbound rate limit. Without them: up to `c` received entries
    /// considered, no rate limit.
    pub honest_limits: bool,
    /// How the coalition attacks under [`Defence::Secure`](crate::view::Defence::Secure)
    /// (ignored otherwise: against Cyclon and the other defences it floods, as above).
    pub secure: SecureAttack,
}

impl Default for Attack {
    /// 10 % malicious nodes attacking from cycle 50, at an honest rate, spread over the
    /// overlay, against honest nodes with the behaviour's limits.
    fn default() -> Self {
        Self {
            fraction: 0.1,
            start: 50,
            pushes: 1.0,
            target: AttackTarget::Spread,
            honest_limits: true,
            secure: SecureAttack::Strongest,
        }
    }
}

impl Attack {
    /// The per-peer rate limit honest nodes enforce: the behaviour's default
    /// ([`Config::inbound_rate_limit`]) with [`honest_limits`](Self::honest_limits), none without.
    pub fn rate_limit(&self) -> Option<InboundRateLimit> {
        if self.honest_limits {
            Config::default()
                .with_shuffle_interval(CYCLE_DURATION)
                .inbound_rate_limit()
        } else {
            None
        }
    }
}

/// What the malicious nodes did, since the simulation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttackCounters {
    /// Shuffles they initiated to a live honest node (answered or refused).
    pub pushes: u64,
    /// Of those, requests the target's per-peer rate limit refused.
    pub refused: u64,
    /// Shuffles honest nodes initiated with one of them, answered with malicious entries.
    pub answered: u64,
}

/// How far the malicious nodes have got into honest views after one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AttackMeasurement {
    /// Cycles run.
    pub cycle: u64,
    /// Whether the malicious nodes were attacking during this cycle.
    pub attacking: bool,
    /// Live honest nodes.
    pub honest_nodes: usize,
    /// Entries in their views.
    pub entries: u64,
    /// Of those, entries naming a malicious node.
    pub malicious_entries: u64,
    /// Live honest nodes with no entry naming a live honest node: every neighbour they know
    /// is malicious (eclipsed).
    pub eclipsed: usize,
    /// Live victims of a focused attack (0 for a spread one).
    pub victims: usize,
    /// Entries in the victims' views.
    pub victim_entries: u64,
    /// Of those, entries naming a malicious node.
    pub victim_malicious_entries: u64,
    /// Victims eclipsed.
    pub victims_eclipsed: usize,
    /// The malicious nodes' counters so far.
    pub counters: AttackCounters,
    /// Connected components of the overlay of honest nodes and the links between them (the
    /// undirected graph), on the cycles whose full metrics are measured.
    pub honest_components: Option<ComponentStats>,
    /// SecureCyclon's own figures, under [`Defence::Secure`](crate::view::Defence::Secure).
    pub secure: Option<SecureAttackMeasurement>,
}

impl AttackMeasurement {
    /// The malicious nodes' share of the honest nodes' view entries.
    pub fn malicious_share(&self) -> f64 {
        ratio(self.malicious_entries, self.entries)
    }

    /// The malicious nodes' share of the victims' view entries.
    pub fn victim_share(&self) -> f64 {
        ratio(self.victim_malicious_entries, self.victim_entries)
    }

    /// The share of live honest nodes that are eclipsed.
    pub fn eclipsed_share(&self) -> f64 {
        ratio(self.eclipsed as u64, self.honest_nodes as u64)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A deterministic hasher for the simulated rate limiters: the evicted bucket on a tie must
/// not depend on a random seed.
type FixedHasher = BuildHasherDefault<DefaultHasher>;

/// The coalition's state inside a [`Simulation`].
#[derive(Debug, Clone)]
pub(super) struct AttackState {
    attack: Attack,
    rng: SimRng,
    /// `malicious[id]` for the initial nodes; later nodes are honest.
    malicious: Vec<bool>,
    members: Vec<NodeId>,
    /// Honest nodes the coalition has heard of (the spread attack's targets).
    known: Vec<NodeId>,
    known_mask: Vec<bool>,
    victims: Vec<NodeId>,
    victim_mask: Vec<bool>,
    limit: Option<InboundRateLimit>,
    /// One rate limiter per honest node, by id (grown on demand).
    limiters: Vec<RateLimiter<NodeId, FixedHasher>>,
    started: bool,
    counters: AttackCounters,
}

impl AttackState {
    /// Chooses the malicious nodes among the `nodes` initial ones.
    pub(super) fn new(attack: Attack, nodes: usize, seed: u64) -> Self {
        let mut rng = SimRng::seed_from_u64(seed ^ ATTACK_STREAM);
        let count = (attack.fraction.clamp(0.0, 1.0) * nodes as f64).round() as usize;
        let mut ids: Vec<NodeId> = (0..nodes as NodeId).collect();
        let (members, _) = ids.partial_shuffle(&mut rng, count);
        let mut members = members.to_vec();
        members.sort_unstable();
        let mut malicious = vec![false; nodes];
        for &id in &members {
            malicious[id as usize] = true;
        }
        Self {
            attack,
            rng,
            malicious,
            members,
            known: Vec::new(),
            known_mask: Vec::new(),
            victims: Vec::new(),
            victim_mask: Vec::new(),
            limit: attack.rate_limit(),
            limiters: Vec::new(),
            started: false,
            counters: AttackCounters::default(),
        }
    }

    pub(super) fn attack(&self) -> &Attack {
        &self.attack
    }

    pub(super) fn is_malicious(&self, id: NodeId) -> bool {
        self.malicious.get(id as usize).copied().unwrap_or(false)
    }

    fn is_victim(&self, id: NodeId) -> bool {
        self.victim_mask.get(id as usize).copied().unwrap_or(false)
    }

    /// Whether the coalition attacks during cycle `cycle`.
    pub(super) fn attacking(&self, cycle: u64) -> bool {
        cycle > self.attack.start && !self.members.is_empty()
    }

    fn learn(&mut self, id: NodeId) {
        if self.is_malicious(id) {
            return;
        }
        let i = id as usize;
        if self.known_mask.len() <= i {
            self.known_mask.resize(i + 1, false);
        }
        if !self.known_mask[i] {
            self.known_mask[i] = true;
            self.known.push(id);
        }
    }

    /// Writes `count` distinct malicious entries of age 0 into `out` (cleared first), the
    /// first one naming `first` when given; fewer when the coalition is smaller.
    fn malicious_entries(
        &mut self,
        first: Option<NodeId>,
        count: usize,
        out: &mut Vec<Entry<NodeId>>,
    ) {
        out.clear();
        if let Some(id) = first {
            out.push(Entry::new(id, (), 0));
        }
        let others = self
            .members
            .len()
            .saturating_sub(usize::from(first.is_some()));
        let wanted = count.saturating_sub(out.len()).min(others);
        if wanted == others {
            let start = out.len();
            out.extend(
                self.members
                    .iter()
                    .filter(|&&id| Some(id) != first)
                    .map(|&id| Entry::new(id, (), 0)),
            );
            out[start..].shuffle(&mut self.rng);
            return;
        }
        while out.len() < count {
            let id = self.members[self.rng.random_range(0..self.members.len())];
            if out.iter().all(|e| *e.peer_id() != id) {
                out.push(Entry::new(id, (), 0));
            }
        }
    }

    fn limiter(&mut self, id: NodeId) -> &mut RateLimiter<NodeId, FixedHasher> {
        let i = id as usize;
        if self.limiters.len() <= i {
            self.limiters.resize_with(i + 1, || {
                RateLimiter::with_hasher(MAX_RATE_LIMITED_PEERS, FixedHasher::default())
            });
        }
        &mut self.limiters[i]
    }
}

impl Simulation {
    /// Sets up a coalition of malicious nodes among the initial nodes (before the first
    /// cycle; the attackers are drawn from their own random stream seeded by `seed`, so the
    /// cycles up to [`Attack::start`] are exactly those of a run without an attack). Without
    /// limits, every honest view considers up to `c` received entries from now on.
    pub fn set_attack(&mut self, attack: Attack, seed: u64) {
        if let Some(engine) = self.secure() {
            let coalition = Coalition::new(attack, engine, self.state.len(), seed);
            self.secure_coalition = Some(Box::new(coalition));
            return;
        }
        let state = AttackState::new(attack, self.views.len(), seed);
        self.attack = Some(Box::new(state));
        let limit = self.message_length();
        for view in &mut self.views {
            view.set_message_length(limit);
        }
    }

    /// The receive limit of every view: `l`, or `c` under an attack without the limits.
    pub(super) fn message_length(&self) -> usize {
        match &self.attack {
            Some(state) if !state.attack.honest_limits => {
                self.params.view_size.max(self.params.message_length())
            }
            _ => self.params.message_length(),
        }
    }

    /// How many malicious entries an attacker sends in one message: `c`, or as many as an
    /// honest node considers under a defence, if that is more.
    fn malicious_message_length(&self) -> usize {
        self.params.view_size.max(self.params.message_length())
    }

    /// The attack, if one was set.
    pub fn attack(&self) -> Option<&Attack> {
        if self.secure.is_some() {
            return self.secure_coalition.as_deref().map(Coalition::attack);
        }
        self.attack.as_deref().map(AttackState::attack)
    }

    /// The malicious nodes, in increasing id order (empty without an attack).
    pub fn malicious_nodes(&self) -> &[NodeId] {
        if self.secure.is_some() {
            return self
                .secure_coalition
                .as_deref()
                .map_or(&[], Coalition::members);
        }
        self.attack.as_deref().map_or(&[], |a| &a.members)
    }

    /// Whether `id` is malicious.
    pub fn is_malicious(&self, id: NodeId) -> bool {
        if self.secure.is_some() {
            return self
                .secure_coalition
                .as_deref()
                .is_some_and(|c| c.is_member(id));
        }
        self.attack.as_deref().is_some_and(|a| a.is_malicious(id))
    }

    /// The victims of a focused attack (empty before it starts and for a spread attack).
    pub fn victims(&self) -> &[NodeId] {
        if self.secure.is_some() {
            return self
                .secure_coalition
                .as_deref()
                .map_or(&[], Coalition::victims);
        }
        self.attack.as_deref().map_or(&[], |a| &a.victims)
    }

    /// One attack cycle: every live honest node initiates one shuffle, every live malicious
    /// node [`Attack::pushes`] of them, all in a random order.
    pub(super) fn attack_cycle(&mut self) {
        let mut attack = self.attack.take().expect("called under an attack");
        if !attack.started {
            attack.started = true;
            self.begin_attack(&mut attack);
        }
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        let pushes = attack.attack.pushes;
        for &id in &self.live {
            if attack.is_malicious(id) {
                let extra = attack.rng.random::<f64>() < pushes.fract();
                let n = pushes.floor() as usize + usize::from(extra);
                order.extend(std::iter::repeat_n(id, n));
            } else {
                order.push(id);
            }
        }
        order.shuffle(&mut self.rng);
        let (cycle, len) = ((self.cycle - 1) as f64, order.len().max(1) as f64);
        for (i, &p) in order.iter().enumerate() {
            if attack.is_malicious(p) {
                let now = CYCLE_DURATION.mul_f64(cycle + i as f64 / len);
                self.push_from(&mut attack, p, now);
            } else {
                self.honest_shuffle_under_attack(&mut attack, p);
            }
        }
        self.order = order;
        self.attack = Some(attack);
    }

    /// The coalition pools what its members know, and a focused attack picks its victims.
    fn begin_attack(&mut self, attack: &mut AttackState) {
        for i in 0..attack.members.len() {
            let m = attack.members[i];
            for j in 0..self.views[m as usize].len() {
                let id = *self.views[m as usize].entries()[j].peer_id();
                attack.learn(id);
            }
        }
        if let AttackTarget::Focused { victims } = attack.attack.target {
            let mut honest: Vec<NodeId> = self
                .live
                .iter()
                .copied()
                .filter(|&id| !attack.is_malicious(id))
                .collect();
            honest.sort_unstable();
            let count = victims.min(honest.len());
            let (chosen, _) = honest.partial_shuffle(&mut attack.rng, count);
            attack.victims = chosen.to_vec();
            attack.victims.sort_unstable();
            attack.victim_mask = vec![false; self.views.len()];
            for &v in &attack.victims {
                attack.victim_mask[v as usize] = true;
            }
        }
    }

    /// Honest node `p` shuffles as usual; a malicious target answers with malicious entries
    /// and learns `p` and the honest entries `p` sent.
    fn honest_shuffle_under_attack(&mut self, attack: &mut AttackState, p: NodeId) {
        let Some((id, q)) = self.start_shuffle(p) else {
            return;
        };
        if attack.is_malicious(q) {
            for entry in self.request.drain(..) {
                attack.learn(*entry.peer_id());
            }
            attack.malicious_entries(None, self.malicious_message_length(), &mut self.reply);
            let mut counts = MergeCounts::default();
            self.views[p as usize].complete_shuffle_into(id, self.reply.drain(..), &mut counts);
            attack.counters.answered += 1;
            self.counters.completed += 1;
        } else {
            self.answer_shuffle(p, q, id);
        }
    }

    /// Malicious node `m` pushes malicious entries to an honest target at time `now`.
    fn push_from(&mut self, attack: &mut AttackState, m: NodeId, now: Duration) {
        let pool = match attack.attack.target {
            AttackTarget::Spread => &attack.known,
            AttackTarget::Focused { .. } => &attack.victims,
        };
        if pool.is_empty() {
            return;
        }
        let t = pool[attack.rng.random_range(0..pool.len())];
        if self.state[t as usize] != NodeState::Live {
            return;
        }
        attack.counters.pushes += 1;
        if let Some(limit) = attack.limit
            && !attack.limiter(t).allow(m, limit, now)
        {
            attack.counters.refused += 1;
            return;
        }
        let count = self.malicious_message_length();
        attack.malicious_entries(Some(m), count, &mut self.request);
        self.views[t as usize].answer_shuffle_into(
            &mut self.rng,
            &m,
            self.request.drain(..),
            &mut self.reply,
            &mut MergeCounts::default(),
        );
        for entry in self.reply.drain(..) {
            attack.learn(*entry.peer_id());
        }
    }

    /// How far the malicious nodes have got into the live honest nodes' views now (`None`
    /// without an attack). With `components`, also the connected components of the overlay
    /// of honest nodes.
    pub fn measure_attack(&self, components: bool) -> Option<AttackMeasurement> {
        if let Some(engine) = self.secure() {
            return self.secure_measure_attack(engine, components);
        }
        let attack = self.attack.as_deref()?;
        let mut snapshot = AttackMeasurement {
            cycle: self.cycle,
            attacking: attack.attacking(self.cycle),
            counters: attack.counters,
            ..AttackMeasurement::default()
        };
        let live_honest =
            |id: NodeId| self.state[id as usize] == NodeState::Live && !attack.is_malicious(id);
        for &id in &self.live {
            if attack.is_malicious(id) {
                continue;
            }
            let view = &self.views[id as usize];
            let malicious = view
                .entries()
                .iter()
                .filter(|e| attack.is_malicious(*e.peer_id()))
                .count() as u64;
            let eclipsed = !view.entries().iter().any(|e| live_honest(*e.peer_id()));
            snapshot.honest_nodes += 1;
            snapshot.entries += view.len() as u64;
            snapshot.malicious_entries += malicious;
            snapshot.eclipsed += usize::from(eclipsed);
            if attack.is_victim(id) {
                snapshot.victims += 1;
                snapshot.victim_entries += view.len() as u64;
                snapshot.victim_malicious_entries += malicious;
                snapshot.victims_eclipsed += usize::from(eclipsed);
            }
        }
        if components {
            let mut index = vec![u32::MAX; self.views.len()];
            let mut honest = Vec::with_capacity(snapshot.honest_nodes);
            for (id, slot) in index.iter_mut().enumerate() {
                if live_honest(id as NodeId) {
                    *slot = honest.len() as u32;
                    honest.push(id as NodeId);
                }
            }
            let graph = Graph::from_out_links(honest.iter().map(|&id| {
                self.views[id as usize]
                    .entries()
                    .iter()
                    .map(|e| index[*e.peer_id() as usize])
                    .filter(|&k| k != u32::MAX)
                    .collect::<Vec<u32>>()
            }));
            snapshot.honest_components = Some(graph.undirected().components());
        }
        Some(snapshot)
    }
}
