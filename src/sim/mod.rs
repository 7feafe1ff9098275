//! A cycle-driven simulator of Cyclon, for checking the paper's claims at scale.
//!
//! [`Simulation`] drives the very sans-IO core the
//! [`Behaviour`](crate::Behaviour) runs, [`PartialView`], with compact `u32` node ids and no
//! addresses. Time advances in *cycles*, as in PeerSim's cycle-driven engine: in each cycle
//! every live node initiates one shuffle, in a random order, and each shuffle completes at once
//! (request, answer, merge). A shuffle whose target has failed fails, and the target stays out
//! of the initiator's view (rule 7).
//!
//! [`Experiment`] runs a [`Scenario`]
//! (bootstrap, failures, churn, how often to measure) and returns a
//! [`Report`]: the overlay's [`OverlayMetrics`] per measured
//! cycle, dead links per cycle, the same metrics for a uniform random `c`-out graph of the same
//! size generated in the same run (the paper's reference), and a robustness experiment. An
//! [`Attack`] adds colluding malicious nodes and measures, every cycle,
//! how much of the honest nodes' views they hold.
//! Everything is seeded: the same scenario gives the same report (timings aside) and
//! byte-identical CSV.
//!
//! ```
//! use libp2p_cyclon::sim::{Bootstrap, Experiment, Scenario};
//!
//! let scenario = Scenario {
//!     nodes: 300,
//!     cycles: 30,
//!     bootstrap: Bootstrap::Ring,
//!     ..Scenario::default()
//! };
//! let report = Experiment::new(scenario)?.run(|_| {});
//! let last = report.last();
//! assert_eq!(last.full_views, 300);
//! assert!(last.metrics.in_degree.std_dev < report.reference.in_degree.std_dev);
//! # Ok::<(), libp2p_cyclon::sim::ScenarioError>(())
//! ```

mod attack;
mod experiment;
mod faults;
pub mod graph;
mod prefetch;
mod report;
mod scenario;
mod secure;
mod secure_attack;
mod secure_engine;

use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus, seq::SliceRandom};

use self::attack::AttackState;
pub use self::attack::{Attack, AttackCounters, AttackMeasurement, AttackTarget, CYCLE_DURATION};
pub use self::experiment::{Experiment, Progress, robustness_fractions};
use self::faults::Faults;
pub use self::faults::{FaultMeasurement, Partition, PartitionOutcome};
use self::graph::Graph;
use self::prefetch::prefetch_bytes;
pub use self::report::{KillOutcome, Measurement, OverlayMetrics, Report, RobustnessRow, Timing};
pub use self::scenario::{Kill, Scenario, ScenarioError};
use self::secure_attack::Coalition;
pub use self::secure_attack::{SecureAttack, SecureAttackMeasurement};
use self::secure_engine::SecureEngine;
pub use self::secure_engine::{SecureCounters, SimView};
use crate::view::{Defence, Entry, PartialView, ShuffleId};
use crate::view::{MergeCounts, Rejoin, ShuffleMode, ShuffleParams};

/// A node's identifier in the simulator: its index, `0..` in order of creation.
pub type NodeId = u32;

/// The random number generator of the simulator (xoshiro256++, a portable, documented
/// algorithm: a seed gives the same stream on every platform).
pub type SimRng = Xoshiro256PlusPlus;

/// How the overlay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Bootstrap {
    /// A ring lattice: node `i` knows its `c` successors `i+1, …, i+c` (mod N). The paper's
    /// "poor start": high clustering, long paths.
    #[default]
    Ring,
    /// Every node knows node 0 only; node 0 knows nobody.
    Star,
    /// Every node knows `c` distinct nodes chosen uniformly at random.
    Random,
    /// The network grows from node 0: nodes join one by one, each knowing one random node
    /// already in the network, [`Simulation::joins_per_cycle`] of them at the start of each
    /// cycle.
    Growing,
}

/// Whether a node has joined, is alive or has failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Not joined yet (growing bootstrap).
    Absent,
    /// In the network, shuffling every cycle.
    Live,
    /// Failed silently: it answers no shuffle, and its entries linger in others' views until
    /// they are contacted.
    Dead,
}

/// Shuffle counts since the simulation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShuffleCounters {
    /// Shuffles that completed (the target answered).
    pub completed: u64,
    /// Shuffles that failed: the target had failed, was across a partition, or a message was
    /// lost. The target of a regular shuffle left the initiator's view.
    pub failed: u64,
    /// Of the failed shuffles, those that failed because the request or the reply was lost.
    pub lost: u64,
    /// Initiations skipped because the node's view was empty.
    pub idle: u64,
    /// Entries honest nodes sent: in their requests (own entry included) and replies.
    pub entries_sent: u64,
    /// [`Rejoin`] probes made (their outcomes are counted in `completed` and `failed`).
    pub probes: u64,
}

impl ShuffleCounters {
    /// Shuffles initiated (completed or failed).
    pub fn initiated(&self) -> u64 {
        self.completed + self.failed
    }

    /// Entries honest nodes sent per shuffle they initiated (request and reply together):
    /// the protocol's cost.
    pub fn entries_per_shuffle(&self) -> f64 {
        self.entries_sent as f64 / self.initiated().max(1) as f64
    }
}

/// Seed offset of the defences' private keys, drawn for each view from their own stream so
/// that the rest of a run's random choices start as in a run without a defence.
const DEFENCE_STREAM: u64 = 0x6465_6665_6e63_6531;

/// The live part of the overlay as a graph over dense indices.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// Links between live nodes; node `k` of the graph is `ids[k]`.
    pub graph: Graph,
    /// The simulator id of each graph node, increasing.
    pub ids: Vec<NodeId>,
    /// Entries of live nodes' views that point to failed nodes (not in `graph`).
    pub dead_links: u64,
    /// Live nodes whose view holds `c` entries.
    pub full_views: usize,
}

/// N nodes running Cyclon in cycles over the sans-IO core.
#[derive(Debug, Clone)]
pub struct Simulation {
    params: ShuffleParams,
    rng: SimRng,
    views: Vec<PartialView<NodeId>>,
    state: Vec<NodeState>,
    live: Vec<NodeId>,
    order: Vec<NodeId>,
    request: Vec<Entry<NodeId>>,
    reply: Vec<Entry<NodeId>>,
    /// Growing bootstrap: the nodes `0..growing_to` that have not joined yet start here.
    next_join: usize,
    growing_to: usize,
    joins_per_cycle: usize,
    churn: f64,
    any_failed: bool,
    cycle: u64,
    counters: ShuffleCounters,
    /// A coalition of malicious nodes ([`Simulation::set_attack`]).
    attack: Option<Box<AttackState>>,
    /// Draws the private keys of each new view's defence.
    defence_rng: SimRng,
    /// Message loss and partitions.
    faults: Faults,
    /// The rule every node runs, and how many seeds (nodes `0..seeds`) each keeps
    /// ([`Simulation::set_rejoin`]).
    rejoin: Option<(Rejoin, usize)>,
    /// Under [`Defence::Secure`], the SecureCyclon engine (and `views` is empty).
    secure: Option<Box<SecureEngine>>,
    /// Under [`Defence::Secure`], a coalition attacking SecureCyclon
    /// ([`Simulation::set_attack`]).
    secure_coalition: Option<Box<Coalition>>,
}

impl Simulation {
    /// Creates `nodes` nodes wired by `bootstrap`, with the random stream seeded by `seed`.
    ///
    /// # Panics
    ///
    /// If `params` are invalid or `nodes` exceeds `u32::MAX` ([`Experiment::new`] checks both
    /// and returns an error instead).
    pub fn new(nodes: usize, params: ShuffleParams, bootstrap: Bootstrap, seed: u64) -> Self {
        params.validate().expect("invalid shuffle parameters");
        assert!(u32::try_from(nodes).is_ok(), "too many nodes");
        let mut rng = SimRng::seed_from_u64(seed);
        let mut defence_rng = SimRng::seed_from_u64(seed ^ DEFENCE_STREAM);
        let secure = matches!(params.defence, Defence::Secure(_));
        let views: Vec<_> = if secure {
            Vec::new()
        } else {
            (0..nodes as NodeId)
                .map(|id| new_view(id, params, &mut defence_rng))
                .collect()
        };
        let mut sim = Self {
            params,
            rng: SimRng::seed_from_u64(0),
            views,
            state: vec![NodeState::Live; nodes],
            live: (0..nodes as NodeId).collect(),
            order: Vec::with_capacity(nodes),
            request: Vec::with_capacity(params.message_length().max(params.view_size)),
            reply: Vec::with_capacity(params.message_length().max(params.view_size)),
            next_join: nodes,
            growing_to: nodes,
            joins_per_cycle: nodes.div_ceil(20).max(1),
            churn: 0.0,
            any_failed: false,
            cycle: 0,
            counters: ShuffleCounters::default(),
            attack: None,
            defence_rng,
            faults: Faults::new(seed),
            rejoin: None,
            secure: None,
            secure_coalition: None,
        };
        if secure {
            let engine = SecureEngine::new(nodes, params, bootstrap, seed, &mut rng);
            if bootstrap == Bootstrap::Growing {
                sim.state[1..].fill(NodeState::Absent);
                sim.live.truncate(nodes.min(1));
                sim.next_join = nodes.min(1);
            }
            sim.secure = Some(Box::new(engine));
            sim.rng = rng;
            return sim;
        }
        let n = nodes as NodeId;
        let c = params.view_size;
        match bootstrap {
            Bootstrap::Ring => {
                for id in 0..n {
                    for k in 1..=c.min(nodes.saturating_sub(1)) as NodeId {
                        sim.views[id as usize].insert(Entry::new((id + k) % n, (), 0));
                    }
                }
            }
            Bootstrap::Star => {
                for id in 1..n {
                    sim.views[id as usize].insert(Entry::new(0, (), 0));
                }
            }
            Bootstrap::Random => {
                let graph = Graph::random_out(&mut rng, nodes, c);
                for id in 0..nodes {
                    for &t in graph.out_links(id) {
                        sim.views[id].insert(Entry::new(t, (), 0));
                    }
                }
            }
            Bootstrap::Growing => {
                sim.state[1..].fill(NodeState::Absent);
                sim.live.truncate(nodes.min(1));
                sim.next_join = nodes.min(1);
            }
        }
        sim.rng = rng;
        sim
    }

    /// The shuffle parameters every node uses.
    pub fn params(&self) -> &ShuffleParams {
        &self.params
    }

    /// Cycles run so far.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Shuffle counts so far.
    pub fn counters(&self) -> ShuffleCounters {
        self.counters
    }

    /// Total number of nodes ever created (absent, live and dead).
    pub fn node_count(&self) -> usize {
        self.state.len()
    }

    /// The live nodes, in no particular order.
    pub fn live_nodes(&self) -> &[NodeId] {
        &self.live
    }

    /// The state of node `id`.
    pub fn state(&self, id: NodeId) -> NodeState {
        self.state[id as usize]
    }

    /// The view of node `id` (empty for absent nodes; frozen for dead ones).
    ///
    /// # Panics
    ///
    /// Under [`Defence::Secure`], whose views are [`secure_view`](Self::secure_view)s.
    pub fn view(&self, id: NodeId) -> &PartialView<NodeId> {
        &self.views[id as usize]
    }

    /// Nodes that join at the start of each cycle while some have not joined yet (growing
    /// bootstrap). Defaults to `ceil(N / 20)`, so everyone has joined after 20 cycles.
    pub fn joins_per_cycle(&self) -> usize {
        self.joins_per_cycle
    }

    /// Sets [`joins_per_cycle`](Self::joins_per_cycle) (at least 1).
    pub fn set_joins_per_cycle(&mut self, joins: usize) {
        self.joins_per_cycle = joins.max(1);
    }

    /// Churn: at the start of each cycle this share of the live nodes fails and as many new
    /// nodes join, each knowing one random live node. Clamped to `[0, 1]`.
    pub fn set_churn(&mut self, rate: f64) {
        self.churn = if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }

    /// Each message (request or reply) is lost with this probability, in `[0, 1]` (clamped).
    /// A lost request fails the initiator's shuffle before the target sees it; a lost reply
    /// fails it after the target has merged the request, as a timeout would.
    pub fn set_loss(&mut self, probability: f64) {
        self.faults.set_loss(probability);
    }

    /// The probability that a message is lost.
    pub fn loss(&self) -> f64 {
        self.faults.loss()
    }

    /// Splits the live nodes 50/50 at random: from now on until [`heal`](Self::heal), a
    /// shuffle across the cut fails as one with a dead target does.
    pub fn partition(&mut self) {
        self.faults.partition(self.state.len(), &self.live);
    }

    /// Ends the partition.
    pub fn heal(&mut self) {
        self.faults.heal();
    }

    /// Whether a partition is in force.
    pub fn is_partitioned(&self) -> bool {
        self.faults.is_partitioned()
    }

    /// The side of node `id` in the last partition (`false` before any).
    pub fn side(&self, id: NodeId) -> bool {
        self.faults.side(id)
    }

    /// Every node, present and future, runs the [`Rejoin`] rule and keeps nodes
    /// `0..seeds` as its seeds (the local node excepted); every cycle, after its regular
    /// shuffle, each live node makes the probe the rule asks for, if any.
    ///
    /// # Panics
    ///
    /// If `rejoin` is invalid ([`Scenario::validate`] checks it).
    pub fn set_rejoin(&mut self, rejoin: Rejoin, seeds: usize) {
        if self.secure.is_some() {
            // SecureCyclon rejoins by joining its contact ([`Scenario::validate`] refuses).
            return;
        }
        self.rejoin = Some((rejoin, seeds));
        for id in 0..self.views.len() {
            self.apply_rejoin(id as NodeId);
        }
    }

    fn apply_rejoin(&mut self, id: NodeId) {
        let Some((rejoin, seeds)) = self.rejoin else {
            return;
        };
        let view = &mut self.views[id as usize];
        view.set_rejoin(rejoin).expect("a valid rejoin rule");
        view.set_probe_phase(self.faults.probe_phase(rejoin.probe_every));
        let seeds = seeds.min(self.state.len());
        for seed in 0..seeds as NodeId {
            view.add_seed(Entry::new(seed, (), 0));
        }
    }

    /// Runs one cycle: joins (growing bootstrap), churn, then one shuffle initiated by every
    /// live node in a random order (under an [`Attack`], the malicious nodes initiate
    /// [`Attack::pushes`] shuffles each instead).
    pub fn step(&mut self) {
        self.cycle += 1;
        if self.secure.is_some() {
            self.secure_step();
            return;
        }
        for id in self.growth() {
            self.join(id as NodeId);
        }
        for _ in 0..self.churn_leaving() {
            let id = self.views.len() as NodeId;
            let mut view = new_view(id, self.params, &mut self.defence_rng);
            view.set_message_length(self.message_length());
            self.views.push(view);
            self.state.push(NodeState::Absent);
            self.apply_rejoin(id);
            self.faults.on_new_node(id);
            self.join(id);
        }
        if self
            .attack
            .as_ref()
            .is_some_and(|attack| attack.attacking(self.cycle))
        {
            self.attack_cycle();
            return;
        }
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend_from_slice(&self.live);
        order.shuffle(&mut self.rng);
        // The shuffles run strictly one after the other, in `order`. The views they touch are
        // scattered over memory, so ask the CPU to load them a few shuffles ahead: the view
        // of each upcoming initiator, its entries, then its oldest entry's view (the likely
        // target in enhanced mode). These are hints only: the results do not depend on them.
        let enhanced = self.params.mode == ShuffleMode::Enhanced;
        let mut likely_targets = [0 as NodeId; LOOKAHEAD];
        for (i, &p) in order.iter().enumerate() {
            if let Some(&ahead) = order.get(i + 8) {
                prefetch_view(&self.views[ahead as usize]);
            }
            if let Some(&ahead) = order.get(i + 5) {
                prefetch_entries(&self.views[ahead as usize]);
            }
            if enhanced {
                if let Some(&ahead) = order.get(i + 3) {
                    let view = &self.views[ahead as usize];
                    if let Some(oldest) = view.entries().iter().max_by_key(|e| e.age()) {
                        let q = *oldest.peer_id();
                        likely_targets[(i + 3) % LOOKAHEAD] = q;
                        prefetch_view(&self.views[q as usize]);
                    }
                }
                if i + 1 < order.len() {
                    let q = likely_targets[(i + 1) % LOOKAHEAD];
                    prefetch_entries(&self.views[q as usize]);
                }
            }
            self.shuffle_from(p);
            if self.rejoin.is_some() {
                self.probe_from(p);
            }
        }
        self.order = order;
    }

    /// Node `p` makes the [`Rejoin`] probe of this round, if the rule asks for one.
    fn probe_from(&mut self, p: NodeId) {
        let Some((id, target)) =
            self.views[p as usize].periodic_probe_into(&mut self.rng, (), &mut self.request)
        else {
            return;
        };
        self.counters.probes += 1;
        let q = *target.peer_id();
        if self.state[q as usize] != NodeState::Live || self.faults.cut(p, q) {
            self.views[p as usize].fail_shuffle(id);
            self.counters.failed += 1;
            return;
        }
        self.answer_shuffle(p, q, id);
    }

    /// Node `p` initiates one shuffle with its oldest neighbour (or a random one in basic
    /// mode), which answers at once; if that neighbour has failed, the shuffle fails.
    ///
    /// It uses the core's allocation-free calls, which follow the very rules of
    /// [`PartialView::start_shuffle`], [`PartialView::answer_shuffle`] and
    /// [`PartialView::complete_shuffle`].
    fn shuffle_from(&mut self, p: NodeId) {
        if let Some((id, q)) = self.start_shuffle(p) {
            self.answer_shuffle(p, q, id);
        }
    }

    /// Node `p` starts shuffle `id` with its oldest neighbour (or a random one in basic mode)
    /// `q`, its request in `self.request`. Returns `(id, q)` if `q` is live; otherwise counts
    /// the shuffle as idle (an empty view) or failed (`q` has failed) and returns `None`.
    fn start_shuffle(&mut self, p: NodeId) -> Option<(ShuffleId, NodeId)> {
        let Some((id, target)) =
            self.views[p as usize].start_shuffle_into(&mut self.rng, (), &mut self.request)
        else {
            self.counters.idle += 1;
            return None;
        };
        let q = *target.peer_id();
        self.counters.entries_sent += self.request.len() as u64;
        if self.state[q as usize] != NodeState::Live || self.faults.cut(p, q) {
            self.views[p as usize].fail_shuffle(id);
            self.counters.failed += 1;
            return None;
        }
        Some((id, q))
    }

    /// Live node `q` answers `p`'s shuffle `id` (the request in `self.request`) as the
    /// protocol says, and `p` merges the reply. With message loss, a lost request fails the
    /// shuffle before `q` sees it, and a lost reply fails it after `q` has merged the request.
    fn answer_shuffle(&mut self, p: NodeId, q: NodeId, id: ShuffleId) {
        if self.faults.lose_message() {
            self.request.clear();
            self.lose(p, id);
            return;
        }
        let [initiator, responder] = self
            .views
            .get_disjoint_mut([p as usize, q as usize])
            .expect("a view never holds its own node");
        let mut counts = MergeCounts::default();
        responder.answer_shuffle_into(
            &mut self.rng,
            &p,
            self.request.drain(..),
            &mut self.reply,
            &mut counts,
        );
        self.counters.entries_sent += self.reply.len() as u64;
        if self.faults.lose_message() {
            self.reply.clear();
            self.lose(p, id);
            return;
        }
        initiator.complete_shuffle_into(id, self.reply.drain(..), &mut counts);
        self.counters.completed += 1;
    }

    /// `p`'s shuffle `id` fails because a message was lost.
    fn lose(&mut self, p: NodeId, id: ShuffleId) {
        self.views[p as usize].fail_shuffle(id);
        self.counters.failed += 1;
        self.counters.lost += 1;
    }

    /// Node `id` joins through one random live contact.
    fn join(&mut self, id: NodeId) {
        if !self.live.is_empty() {
            let contact = self.live[self.rng.random_range(0..self.live.len())];
            self.views[id as usize].insert(Entry::new(contact, (), 0));
        }
        self.state[id as usize] = NodeState::Live;
        self.live.push(id);
    }

    /// Fails this share of the live nodes at once, chosen uniformly at random (rounded to the
    /// nearest count). Returns how many failed.
    pub fn fail_random(&mut self, fraction: f64) -> usize {
        let count = (fraction.clamp(0.0, 1.0) * self.live.len() as f64).round() as usize;
        self.fail_random_count(count);
        count
    }

    fn fail_random_count(&mut self, count: usize) {
        let count = count.min(self.live.len());
        if count == 0 {
            return;
        }
        // `partial_shuffle` moves the chosen elements to the end of the slice.
        let (failing, _) = self.live.partial_shuffle(&mut self.rng, count);
        for &id in failing.iter() {
            self.state[id as usize] = NodeState::Dead;
        }
        self.live.truncate(self.live.len() - count);
        self.any_failed = true;
    }

    /// Entries of live nodes' views that point to failed nodes.
    pub fn dead_links(&self) -> u64 {
        if !self.any_failed {
            return 0;
        }
        if let Some(engine) = self.secure() {
            return self.secure_dead_links(engine);
        }
        self.live
            .iter()
            .flat_map(|&id| self.views[id as usize].entries().iter())
            .filter(|e| self.state[*e.peer_id() as usize] == NodeState::Dead)
            .count() as u64
    }

    /// The live overlay: links between live nodes, numbered densely in increasing id order.
    pub fn overlay(&self) -> Overlay {
        if let Some(engine) = self.secure() {
            return self.secure_overlay(engine);
        }
        let mut index = vec![u32::MAX; self.views.len()];
        let mut ids = Vec::with_capacity(self.live.len());
        for (id, state) in self.state.iter().enumerate() {
            if *state == NodeState::Live {
                index[id] = ids.len() as u32;
                ids.push(id as NodeId);
            }
        }
        let dead_links = std::cell::Cell::new(0);
        let mut full_views = 0;
        let graph = Graph::from_out_links(ids.iter().map(|&id| {
            let view = &self.views[id as usize];
            full_views += usize::from(view.is_full());
            let (index, dead_links) = (&index, &dead_links);
            view.entries()
                .iter()
                .filter_map(move |e| match index[*e.peer_id() as usize] {
                    u32::MAX => {
                        dead_links.set(dead_links.get() + 1);
                        None
                    }
                    k => Some(k),
                })
        }));
        let dead_links = dead_links.get();
        Overlay {
            graph,
            ids,
            dead_links,
            full_views,
        }
    }

    /// The nodes a growing bootstrap adds this cycle.
    fn growth(&mut self) -> std::ops::Range<usize> {
        let first = self.next_join;
        self.next_join = (first + self.joins_per_cycle)
            .min(self.growing_to)
            .max(first);
        first..self.next_join
    }

    /// Under churn, fails this cycle's share of the live nodes (a random count with the
    /// right mean) and returns how many newcomers replace them.
    fn churn_leaving(&mut self) -> usize {
        if self.churn <= 0.0 || self.live.is_empty() {
            return 0;
        }
        let expected = self.churn * self.live.len() as f64;
        let mut leaving = expected.floor() as usize;
        if self.rng.random::<f64>() < expected - leaving as f64 {
            leaving += 1;
        }
        self.fail_random_count(leaving);
        leaving
    }

    /// The live overlay under faults: entries, links across the partition's sides and
    /// connected components, after cycle [`cycle`](Self::cycle).
    pub fn measure_faults(&self) -> FaultMeasurement {
        if let Some(engine) = self.secure() {
            return self.fault_measurement(self.secure_overlay(engine), |id| engine.links(id));
        }
        self.fault_measurement(self.overlay(), |id| {
            self.views[id as usize]
                .entries()
                .iter()
                .map(|e| *e.peer_id())
        })
    }

    /// The fault figures of `overlay`, whose live node `id` links to `links(id)`.
    fn fault_measurement<L: IntoIterator<Item = NodeId>>(
        &self,
        overlay: Overlay,
        links: impl Fn(NodeId) -> L,
    ) -> FaultMeasurement {
        let mut cross_links = 0;
        let mut entries = 0;
        for &id in &self.live {
            for t in links(id) {
                entries += 1;
                if self.state[t as usize] == NodeState::Live
                    && self.faults.side(id) != self.faults.side(t)
                {
                    cross_links += 1;
                }
            }
        }
        let components = overlay.graph.undirected().components();
        FaultMeasurement {
            cycle: self.cycle,
            partitioned: self.faults.is_partitioned(),
            nodes: overlay.ids.len(),
            entries,
            dead_links: overlay.dead_links,
            full_views: overlay.full_views,
            cross_links,
            links: overlay.graph.link_count() as u64,
            components: components.count,
            largest_component: components.largest,
        }
    }

    /// Writes the live overlay as `src dst` lines, one per link between live nodes, with the
    /// live nodes numbered `0..L-1` in increasing id order (without failures or churn, the
    /// simulator's own ids `0..N-1`).
    pub fn write_edges(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        let overlay = self.overlay();
        for (src, dst) in overlay.graph.links() {
            writeln!(out, "{src} {dst}")?;
        }
        out.flush()
    }
}

/// A view for node `id`: its defence's keys, if any, come from `rng`.
fn new_view(id: NodeId, params: ShuffleParams, rng: &mut SimRng) -> PartialView<NodeId> {
    PartialView::with_rng(id, params, rng).expect("validated")
}

/// How many upcoming shuffles [`Simulation::step`] remembers likely targets for.
const LOOKAHEAD: usize = 4;

/// Prefetches the cache lines holding a view's own fields.
#[inline(always)]
fn prefetch_view(view: &PartialView<NodeId>) {
    prefetch_bytes(view, std::mem::size_of::<PartialView<NodeId>>());
}

/// Prefetches the cache lines holding a view's entries.
#[inline(always)]
fn prefetch_entries(view: &PartialView<NodeId>) {
    let entries = view.entries();
    prefetch_bytes(entries.as_ptr(), std::mem::size_of_val(entries));
}
