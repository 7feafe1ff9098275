//! Scenarios (bootstrap, failures, churn, measurements) and their reports.

use std::io::{self, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::graph::{ComponentStats, DegreeStats, Graph, PathStats, Undirected};
use super::{
    Attack, AttackSnapshot, AttackTarget, Bootstrap, FaultSnapshot, Partition, PartitionOutcome,
    ShuffleCounters, SimRng, Simulation,
};
use crate::view::{ParamsError, Rejoin, ShuffleParams};

/// Seed offsets of the independent random streams of a run, so that measuring more or less
/// often never changes the simulated overlay, nor the reference graph.
const METRICS_STREAM: u64 = 0x6d65_7472_6963_7331;
const REFERENCE_STREAM: u64 = 0x7261_6e64_6f6d_6731;
const ROBUSTNESS_STREAM: u64 = 0x726f_6275_7374_3131;

/// The fractions of nodes removed in the robustness experiment: 0, 5, …, 95 %.
pub fn robustness_fractions() -> Vec<f64> {
    (0..20).map(|k| f64::from(k) * 0.05).collect()
}

/// Fail a share of the nodes at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kill {
    /// Share of the live nodes that fail, in `[0, 1]`.
    pub fraction: f64,
    /// The nodes fail right after this cycle (after its measurement); 0 means before the
    /// first cycle.
    pub at_cycle: u64,
}

/// What to simulate and measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Number of nodes N (with [`Bootstrap::Growing`], the size the network grows to).
    pub nodes: usize,
    /// View size, shuffle length, enhanced or basic shuffling.
    pub params: ShuffleParams,
    /// How the overlay starts.
    pub bootstrap: Bootstrap,
    /// Seed of every random choice of the run.
    pub seed: u64,
    /// Cycles to run.
    pub cycles: u64,
    /// Growing bootstrap: nodes joining per cycle (`None`: `ceil(N / 20)`).
    pub joins_per_cycle: Option<usize>,
    /// Share of live nodes replaced by new ones at the start of each cycle, in `[0, 1]`.
    pub churn: f64,
    /// A massive failure.
    pub kill: Option<Kill>,
    /// Measure the full metrics every this many cycles (cycle 0 and the last cycle are always
    /// measured; 0: only those). Dead links are counted every cycle.
    pub metrics_every: u64,
    /// Breadth-first-search sources sampled for the average path length.
    pub bfs_sources: usize,
    /// Random removal orders averaged in the robustness experiment on the final overlay and
    /// the reference graph (0: no robustness experiment).
    pub robustness_trials: usize,
    /// A coalition of malicious nodes (see [`Attack`]); its progress is measured every cycle.
    pub attack: Option<Attack>,
    /// Probability that one shuffle message (request or reply) is lost, in `[0, 1]`.
    pub loss: f64,
    /// A network partition splitting the overlay 50/50 for a while.
    pub partition: Option<Partition>,
    /// Every node runs this [`Rejoin`] rule (`None`: plain Cyclon).
    pub rejoin: Option<Rejoin>,
    /// With [`rejoin`](Self::rejoin): nodes `0..seeds` are every node's seeds.
    pub seeds: usize,
}

impl Default for Scenario {
    /// The paper's setting: N = 10,000, c = 20, l = 5, enhanced shuffling, 100 cycles from a
    /// ring, full metrics every 10 cycles with 100 BFS sources, robustness experiment averaged
    /// over 5 removal orders.
    fn default() -> Self {
        Self {
            nodes: 10_000,
            params: ShuffleParams::default(),
            bootstrap: Bootstrap::Ring,
            seed: 1,
            cycles: 100,
            joins_per_cycle: None,
            churn: 0.0,
            kill: None,
            metrics_every: 10,
            bfs_sources: 100,
            robustness_trials: 5,
            attack: None,
            loss: 0.0,
            partition: None,
            rejoin: None,
            seeds: 0,
        }
    }
}

/// Why a [`Scenario`] cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Invalid view size or shuffle length.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// Fewer than two nodes.
    #[error("need at least 2 nodes, got {0}")]
    TooFewNodes(usize),
    /// More nodes than `u32` ids can name.
    #[error("at most 4294967295 nodes are supported, got {0}")]
    TooManyNodes(usize),
    /// A kill fraction outside `[0, 1]`.
    #[error("the kill fraction must be within [0, 1], got {0}")]
    KillFraction(f64),
    /// A kill after the last cycle.
    #[error("the kill cycle {at_cycle} is after the last cycle {cycles}")]
    KillAfterEnd {
        /// The requested cycle.
        at_cycle: u64,
        /// Cycles in the run.
        cycles: u64,
    },
    /// A churn rate outside `[0, 1]`.
    #[error("the churn rate must be within [0, 1], got {0}")]
    Churn(f64),
    /// A share of malicious nodes outside `[0, 1]`.
    #[error("the share of malicious nodes must be within [0, 1], got {0}")]
    MaliciousFraction(f64),
    /// A negative or non-finite push rate.
    #[error("the malicious push rate must be a finite number >= 0, got {0}")]
    MaliciousPushes(f64),
    /// An attack starting after the last cycle.
    #[error("the attack starts after cycle {start}, but the run has {cycles} cycles")]
    AttackAfterEnd {
        /// The requested start.
        start: u64,
        /// Cycles in the run.
        cycles: u64,
    },
    /// A focused attack without victims.
    #[error("a focused attack needs at least one victim")]
    NoVictims,
    /// A loss probability outside `[0, 1]`.
    #[error("the loss probability must be within [0, 1], got {0}")]
    Loss(f64),
    /// A partition that does not heal after it starts, or heals after the last cycle.
    #[error(
        "the partition must heal after it starts and by the last cycle {cycles}, got \
         {at_cycle}..{heal_cycle}"
    )]
    PartitionCycles {
        /// The cycle after which it starts.
        at_cycle: u64,
        /// The cycle after which it heals.
        heal_cycle: u64,
        /// Cycles in the run.
        cycles: u64,
    },
    /// Faults (loss, partition, rejoin) together with an attack.
    #[error("an attack cannot be combined with loss, a partition or the rejoin rule")]
    AttackWithFaults,
}

impl Scenario {
    /// Checks the scenario.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.params.validate()?;
        if self.nodes < 2 {
            return Err(ScenarioError::TooFewNodes(self.nodes));
        }
        if u32::try_from(self.nodes).is_err() {
            return Err(ScenarioError::TooManyNodes(self.nodes));
        }
        if let Some(kill) = self.kill {
            if !(0.0..=1.0).contains(&kill.fraction) {
                return Err(ScenarioError::KillFraction(kill.fraction));
            }
            if kill.at_cycle > self.cycles {
                return Err(ScenarioError::KillAfterEnd {
                    at_cycle: kill.at_cycle,
                    cycles: self.cycles,
                });
            }
        }
        if !(0.0..=1.0).contains(&self.churn) {
            return Err(ScenarioError::Churn(self.churn));
        }
        if let Some(attack) = self.attack {
            if !(0.0..=1.0).contains(&attack.fraction) {
                return Err(ScenarioError::MaliciousFraction(attack.fraction));
            }
            if !attack.pushes.is_finite() || attack.pushes < 0.0 {
                return Err(ScenarioError::MaliciousPushes(attack.pushes));
            }
            if attack.start >= self.cycles {
                return Err(ScenarioError::AttackAfterEnd {
                    start: attack.start,
                    cycles: self.cycles,
                });
            }
            if attack.target == (AttackTarget::Focused { victims: 0 }) {
                return Err(ScenarioError::NoVictims);
            }
            if self.has_faults() {
                return Err(ScenarioError::AttackWithFaults);
            }
        }
        if !(0.0..=1.0).contains(&self.loss) {
            return Err(ScenarioError::Loss(self.loss));
        }
        if let Some(p) = self.partition
            && (p.heal_cycle <= p.at_cycle || p.heal_cycle > self.cycles)
        {
            return Err(ScenarioError::PartitionCycles {
                at_cycle: p.at_cycle,
                heal_cycle: p.heal_cycle,
                cycles: self.cycles,
            });
        }
        if let Some(rejoin) = self.rejoin {
            rejoin.validate()?;
        }
        Ok(())
    }

    /// Whether the scenario has loss, a partition or the rejoin rule: then the overlay is
    /// measured every cycle into [`Report::faults`].
    pub fn has_faults(&self) -> bool {
        self.loss > 0.0 || self.partition.is_some() || self.rejoin.is_some()
    }
}

/// The paper's metrics of one graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Nodes in the graph.
    pub nodes: usize,
    /// Directed links.
    pub links: usize,
    /// In-degree distribution (directed graph).
    pub in_degree: DegreeStats,
    /// Average local clustering coefficient (undirected graph, exact).
    pub clustering: f64,
    /// Average shortest path length (undirected graph, sampled BFS sources).
    pub path: PathStats,
    /// Connected components (undirected graph).
    pub components: ComponentStats,
}

impl Metrics {
    /// Measures `graph`, with `bfs_sources` BFS sources drawn from `rng`.
    pub fn measure<R: Rng + ?Sized>(graph: &Graph, rng: &mut R, bfs_sources: usize) -> Self {
        let directed = Self::directed(graph);
        directed.measure_undirected(&graph.undirected(), rng, bfs_sources)
    }

    /// [`measure`](Self::measure), freeing `graph` once its undirected graph is built (a
    /// million-node graph takes about 90 MB); returns the undirected graph too.
    fn measure_owned<R: Rng + ?Sized>(
        graph: Graph,
        rng: &mut R,
        bfs_sources: usize,
    ) -> (Self, Undirected) {
        let directed = Self::directed(&graph);
        let undirected = graph.undirected();
        drop(graph);
        let metrics = directed.measure_undirected(&undirected, rng, bfs_sources);
        (metrics, undirected)
    }

    /// The metrics of the directed graph; the others are left at zero.
    fn directed(graph: &Graph) -> Self {
        Self {
            nodes: graph.node_count(),
            links: graph.link_count(),
            in_degree: graph.in_degree_stats(),
            ..Self::default()
        }
    }

    /// Adds the metrics of the undirected graph.
    fn measure_undirected<R: Rng + ?Sized>(
        self,
        undirected: &Undirected,
        rng: &mut R,
        bfs_sources: usize,
    ) -> Self {
        Self {
            clustering: undirected.clustering(),
            path: undirected.path_lengths(rng, bfs_sources),
            components: undirected.components(),
            ..self
        }
    }

    /// The largest component's share of the nodes.
    pub fn largest_component_share(&self) -> f64 {
        if self.nodes == 0 {
            0.0
        } else {
            self.components.largest as f64 / self.nodes as f64
        }
    }
}

/// The overlay measured after one cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Cycles run (0: the bootstrap overlay).
    pub cycle: u64,
    /// Entries of live nodes' views pointing to failed nodes.
    pub dead_links: u64,
    /// Live nodes whose view is full (`c` entries).
    pub full_views: usize,
    /// Metrics of the graph of links between live nodes.
    pub metrics: Metrics,
}

/// The course of a massive failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KillOutcome {
    /// The failure happened right after this cycle.
    pub at_cycle: u64,
    /// Nodes that failed.
    pub killed: usize,
    /// Dead links right after the failure.
    pub dead_links: u64,
    /// Cycles after the failure until no live view held a dead link (`None`: not within the
    /// run).
    pub cycles_to_zero: Option<u64>,
}

/// One point of the robustness experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustnessRow {
    /// Fraction of nodes removed at random.
    pub removed: f64,
    /// Largest component's share of the survivors in the Cyclon overlay (mean over the
    /// trials).
    pub cyclon: f64,
    /// The same in the random reference graph.
    pub random: f64,
}

/// Wall time spent in each phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timing {
    /// Running cycles (joins, churn, shuffles).
    pub shuffling: Duration,
    /// Measuring the overlay: per-cycle dead links, building the measured overlays, and
    /// waiting for the thread that measures them while the cycles run.
    pub metrics: Duration,
    /// Generating and measuring the random reference graph.
    pub reference: Duration,
    /// The robustness experiment.
    pub robustness: Duration,
}

impl Timing {
    /// All phases together.
    pub fn total(&self) -> Duration {
        self.shuffling + self.metrics + self.reference + self.robustness
    }
}

/// Progress of [`Experiment::run`], for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// `done` of `total` cycles have run.
    Cycle {
        /// Cycles run.
        done: u64,
        /// Cycles in the run.
        total: u64,
    },
    /// Generating and measuring the reference graph.
    Reference,
    /// Running the robustness experiment.
    Robustness,
}

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was run.
    pub scenario: Scenario,
    /// The measured cycles, in order; the last one is the final overlay.
    pub rows: Vec<Snapshot>,
    /// `dead_links[t]`: dead links after cycle `t` (before a failure scheduled at `t`).
    pub dead_links: Vec<u64>,
    /// The massive failure, if the scenario had one.
    pub kill: Option<KillOutcome>,
    /// A uniform random `c`-out graph with as many nodes as the final overlay, measured the
    /// same way.
    pub reference: Metrics,
    /// Largest component vs. fraction removed (empty unless the scenario asked for it).
    pub robustness: Vec<RobustnessRow>,
    /// Shuffles run.
    pub counters: ShuffleCounters,
    /// Malicious nodes (0 without an attack).
    pub malicious_nodes: usize,
    /// Under an attack, the malicious nodes' progress after every cycle (`attack[t]`: after
    /// cycle `t`); empty without one.
    pub attack: Vec<AttackSnapshot>,
    /// With loss, a partition or the rejoin rule ([`Scenario::has_faults`]), the overlay after
    /// every cycle (`faults[t]`: after cycle `t`); empty otherwise.
    pub faults: Vec<FaultSnapshot>,
    /// How the overlay went through the scenario's partition, if it had one.
    pub partition: Option<PartitionOutcome>,
    /// Wall time per phase (the only part of a report that is not reproducible).
    pub timing: Timing,
}

impl Report {
    /// The header of [`write_csv`](Self::write_csv).
    pub const CSV_HEADER: &'static str = "cycle,nodes,links,dead_links,full_views,\
        in_degree_mean,in_degree_std,in_degree_min,in_degree_max,clustering,path_length,\
        path_max,path_sources,unreachable_pairs,components,largest_component";

    /// The header of [`write_attack_csv`](Self::write_attack_csv).
    pub const ATTACK_CSV_HEADER: &'static str = "malicious_fraction,malicious_nodes,caps,\
        target,victims,pushes_per_cycle,attack_start,cycle,attacking,honest_nodes,entries,\
        malicious_entries,malicious_share,eclipsed,victim_entries,victim_malicious_entries,\
        victim_share,victims_eclipsed,pushes,refused,answered,honest_components,\
        honest_largest_component";

    /// The header of [`write_faults_csv`](Self::write_faults_csv).
    pub const FAULTS_CSV_HEADER: &'static str = "cycle,partitioned,nodes,entries,view_fill,\
        dead_links,full_views,links,cross_links,cross_share,components,largest_component";

    /// Writes [`FAULTS_CSV_HEADER`](Self::FAULTS_CSV_HEADER) and one row per cycle of
    /// [`faults`](Self::faults) (nothing but the header without faults). The same seed gives
    /// the same bytes.
    pub fn write_faults_csv(&self, mut out: impl Write) -> io::Result<()> {
        writeln!(out, "{}", Self::FAULTS_CSV_HEADER)?;
        let c = self.scenario.params.view_size;
        for row in &self.faults {
            writeln!(
                out,
                "{},{},{},{},{:.6},{},{},{},{},{:.6},{},{}",
                row.cycle,
                u8::from(row.partitioned),
                row.nodes,
                row.entries,
                row.view_fill(c),
                row.dead_links,
                row.full_views,
                row.links,
                row.cross_links,
                row.cross_share(),
                row.components,
                row.largest_component,
            )?;
        }
        out.flush()
    }

    /// The final measured overlay.
    pub fn last(&self) -> &Snapshot {
        self.rows.last().expect("cycle 0 is always measured")
    }

    /// Average wall time of one shuffle (cycle time divided by shuffles initiated).
    pub fn time_per_shuffle(&self) -> Duration {
        match u32::try_from(self.counters.initiated().max(1)) {
            Ok(n) => self.timing.shuffling / n,
            Err(_) => Duration::from_secs_f64(
                self.timing.shuffling.as_secs_f64() / self.counters.initiated() as f64,
            ),
        }
    }

    /// Writes one CSV row per measured cycle (see [`CSV_HEADER`](Self::CSV_HEADER)). The
    /// output depends on the scenario only: the same seed gives the same bytes.
    pub fn write_csv(&self, mut out: impl Write) -> io::Result<()> {
        writeln!(out, "{}", Self::CSV_HEADER)?;
        for row in &self.rows {
            let m = &row.metrics;
            writeln!(
                out,
                "{},{},{},{},{},{:.6},{:.6},{},{},{:.8},{:.6},{},{},{},{},{}",
                row.cycle,
                m.nodes,
                m.links,
                row.dead_links,
                row.full_views,
                m.in_degree.mean,
                m.in_degree.std_dev,
                m.in_degree.min,
                m.in_degree.max,
                m.clustering,
                m.path.mean,
                m.path.max,
                m.path.sources,
                m.path.unreachable,
                m.components.count,
                m.components.largest,
            )?;
        }
        out.flush()
    }

    /// Writes [`ATTACK_CSV_HEADER`](Self::ATTACK_CSV_HEADER) and one row per cycle of the
    /// attack's progress (nothing but the header without an attack). The same seed gives the
    /// same bytes.
    pub fn write_attack_csv(&self, mut out: impl Write) -> io::Result<()> {
        writeln!(out, "{}", Self::ATTACK_CSV_HEADER)?;
        self.write_attack_csv_rows(out)
    }

    /// [`write_attack_csv`](Self::write_attack_csv) without the header, to put several runs
    /// in one file: each row names its run's attack.
    pub fn write_attack_csv_rows(&self, mut out: impl Write) -> io::Result<()> {
        let Some(attack) = self.scenario.attack else {
            return out.flush();
        };
        let (target, victims) = match attack.target {
            AttackTarget::Spread => ("spread", 0),
            AttackTarget::Focused { victims } => ("focused", victims),
        };
        for row in &self.attack {
            let (count, largest) = row
                .honest_components
                .map_or((String::new(), String::new()), |c| {
                    (c.count.to_string(), c.largest.to_string())
                });
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{},{:.6},{},{},{},{},{},{}",
                attack.fraction,
                self.malicious_nodes,
                attack.caps,
                target,
                victims,
                attack.pushes,
                attack.start,
                row.cycle,
                row.attacking,
                row.honest_nodes,
                row.entries,
                row.malicious_entries,
                row.malicious_share(),
                row.eclipsed,
                row.victim_entries,
                row.victim_malicious_entries,
                row.victim_share(),
                row.victims_eclipsed,
                row.counters.pushes,
                row.counters.refused,
                row.counters.answered,
                count,
                largest,
            )?;
        }
        out.flush()
    }
}

/// A [`Scenario`] ready to run on its [`Simulation`].
#[derive(Debug, Clone)]
pub struct Experiment {
    scenario: Scenario,
    sim: Simulation,
}

impl Experiment {
    /// Checks the scenario and builds the bootstrap overlay.
    pub fn new(scenario: Scenario) -> Result<Self, ScenarioError> {
        scenario.validate()?;
        let mut sim = Simulation::new(
            scenario.nodes,
            scenario.params,
            scenario.bootstrap,
            scenario.seed,
        );
        if let Some(joins) = scenario.joins_per_cycle {
            sim.set_joins_per_cycle(joins);
        }
        sim.set_churn(scenario.churn);
        if let Some(attack) = scenario.attack {
            sim.set_attack(attack, scenario.seed);
        }
        sim.set_loss(scenario.loss);
        if let Some(rejoin) = scenario.rejoin {
            sim.set_rejoin(rejoin, scenario.seeds);
        }
        Ok(Self { scenario, sim })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The simulation (after [`run`](Self::run): the final overlay).
    pub fn simulation(&self) -> &Simulation {
        &self.sim
    }

    /// Runs the scenario, calling `progress` after each cycle and phase.
    ///
    /// The measured overlays are measured on a second thread, one after the other with one
    /// random stream, while the cycles go on, and the reference graph while the last overlay
    /// is: the figures are those of measuring each overlay in place.
    pub fn run(&mut self, progress: impl FnMut(Progress)) -> Report {
        let bfs_sources = self.scenario.bfs_sources;
        let metrics_seed = self.scenario.seed ^ METRICS_STREAM;
        std::thread::scope(|scope| {
            // A rendezvous channel: at most one overlay waits while another is measured.
            let (overlays, received) = mpsc::sync_channel::<Graph>(0);
            let measurer = scope.spawn(move || {
                let mut rng = SimRng::seed_from_u64(metrics_seed);
                let mut metrics = Vec::new();
                let mut last = Undirected::default();
                for graph in received {
                    // Only the last overlay is kept (for the robustness experiment).
                    drop(std::mem::take(&mut last));
                    let (measured, undirected) =
                        Metrics::measure_owned(graph, &mut rng, bfs_sources);
                    metrics.push(measured);
                    last = undirected;
                }
                (metrics, last)
            });
            self.run_measuring(progress, overlays, || {
                measurer
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
        })
    }

    /// [`run`](Self::run), sending each overlay to measure to `overlays`; `measured` waits
    /// for their metrics (in order) and the last one's undirected graph.
    fn run_measuring(
        &mut self,
        mut progress: impl FnMut(Progress),
        overlays: mpsc::SyncSender<Graph>,
        measured: impl FnOnce() -> (Vec<Metrics>, Undirected),
    ) -> Report {
        let scenario = self.scenario.clone();
        let mut timing = Timing::default();
        // The measured cycles, their metrics to come.
        let mut rows = Vec::new();
        let mut kill = None;

        let started = Instant::now();
        rows.push(self.snapshot(&overlays));
        let mut dead_links = vec![self.sim.dead_links()];
        let mut attack: Vec<AttackSnapshot> = self.sim.attack_snapshot(true).into_iter().collect();
        let mut faults = Vec::new();
        let mut partition = None;
        self.track_faults(&mut faults, &mut partition);
        timing.metrics += started.elapsed();
        self.maybe_kill(&mut kill);

        for t in 1..=scenario.cycles {
            let started = Instant::now();
            self.sim.step();
            timing.shuffling += started.elapsed();

            let started = Instant::now();
            let dead = self.sim.dead_links();
            dead_links.push(dead);
            if let Some(kill) = kill.as_mut().filter(|k: &&mut KillOutcome| {
                k.cycles_to_zero.is_none() && k.at_cycle < t && dead == 0
            }) {
                kill.cycles_to_zero = Some(t - kill.at_cycle);
            }
            let every = scenario.metrics_every;
            let measured = (every > 0 && t % every == 0) || t == scenario.cycles;
            if measured {
                rows.push(self.snapshot(&overlays));
            }
            attack.extend(self.sim.attack_snapshot(measured));
            self.track_faults(&mut faults, &mut partition);
            timing.metrics += started.elapsed();
            self.maybe_kill(&mut kill);
            progress(Progress::Cycle {
                done: t,
                total: scenario.cycles,
            });
        }
        drop(overlays);

        progress(Progress::Reference);
        let started = Instant::now();
        let nodes = self.sim.live_nodes().len();
        let mut reference_rng = SimRng::seed_from_u64(scenario.seed ^ REFERENCE_STREAM);
        let reference_graph =
            Graph::random_out(&mut reference_rng, nodes, scenario.params.view_size);
        let (reference, reference_undirected) =
            Metrics::measure_owned(reference_graph, &mut reference_rng, scenario.bfs_sources);
        timing.reference = started.elapsed();

        let started = Instant::now();
        let (metrics, last_undirected) = measured();
        timing.metrics += started.elapsed();
        for (row, metrics) in rows.iter_mut().zip(metrics) {
            row.metrics = metrics;
        }

        let mut robustness = Vec::new();
        if scenario.robustness_trials > 0 {
            progress(Progress::Robustness);
            let started = Instant::now();
            let mut rng = SimRng::seed_from_u64(scenario.seed ^ ROBUSTNESS_STREAM);
            let fractions = robustness_fractions();
            robustness = fractions
                .iter()
                .map(|&removed| RobustnessRow {
                    removed,
                    cyclon: 0.0,
                    random: 0.0,
                })
                .collect();
            let trials = scenario.robustness_trials;
            for _ in 0..trials {
                // The random orders are drawn in turn from one stream, then both graphs are
                // taken apart at once, the reference graph on a second thread.
                let cyclon_order = last_undirected.removal_order(&mut rng);
                let random_order = reference_undirected.removal_order(&mut rng);
                let (cyclon, random) = std::thread::scope(|scope| {
                    let random = scope.spawn(|| {
                        reference_undirected.robustness_in_order(&random_order, &fractions)
                    });
                    let cyclon = last_undirected.robustness_in_order(&cyclon_order, &fractions);
                    let random = random
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (cyclon, random)
                });
                for ((row, c), r) in robustness.iter_mut().zip(cyclon).zip(random) {
                    row.cyclon += c.largest_share / trials as f64;
                    row.random += r.largest_share / trials as f64;
                }
            }
            timing.robustness = started.elapsed();
        }

        Report {
            scenario,
            rows,
            dead_links,
            kill,
            reference,
            robustness,
            counters: self.sim.counters(),
            malicious_nodes: self.sim.malicious_nodes().len(),
            attack,
            faults,
            partition,
            timing,
        }
    }

    /// With faults, measures the overlay after this cycle, then splits or heals it if the
    /// partition is scheduled right after this cycle.
    fn track_faults(
        &mut self,
        faults: &mut Vec<FaultSnapshot>,
        outcome: &mut Option<PartitionOutcome>,
    ) {
        if !self.scenario.has_faults() {
            return;
        }
        let now = self.sim.fault_snapshot();
        faults.push(now);
        let Some(partition) = self.scenario.partition else {
            return;
        };
        let cycle = self.sim.cycle();
        if let Some(outcome) = outcome.as_mut()
            && cycle > partition.heal_cycle
        {
            let since = cycle - partition.heal_cycle;
            if outcome.cycles_to_connected.is_none() && now.components == 1 {
                outcome.cycles_to_connected = Some(since);
            }
            if outcome.cycles_to_mixed.is_none() && now.cross_share() >= 0.25 {
                outcome.cycles_to_mixed = Some(since);
            }
        }
        if cycle == partition.at_cycle {
            self.sim.partition();
            *outcome = Some(PartitionOutcome {
                partition,
                cross_links_before: self.sim.fault_snapshot().cross_links,
                cross_links_at_heal: 0,
                cycles_to_connected: None,
                cycles_to_mixed: None,
            });
        }
        if cycle == partition.heal_cycle {
            self.sim.heal();
            if let Some(outcome) = outcome.as_mut() {
                outcome.cross_links_at_heal = now.cross_links;
            }
        }
    }

    /// The overlay after this cycle, its metrics left to the measuring thread.
    fn snapshot(&self, overlays: &mpsc::SyncSender<Graph>) -> Snapshot {
        let overlay = self.sim.overlay();
        // Fails only if the measuring thread has panicked: `run` raises that panic.
        let _ = overlays.send(overlay.graph);
        Snapshot {
            cycle: self.sim.cycle(),
            dead_links: overlay.dead_links,
            full_views: overlay.full_views,
            metrics: Metrics::default(),
        }
    }

    fn maybe_kill(&mut self, outcome: &mut Option<KillOutcome>) {
        let Some(kill) = self.scenario.kill else {
            return;
        };
        if kill.at_cycle != self.sim.cycle() || outcome.is_some() {
            return;
        }
        let killed = self.sim.fail_random(kill.fraction);
        let dead = self.sim.dead_links();
        *outcome = Some(KillOutcome {
            at_cycle: kill.at_cycle,
            killed,
            dead_links: dead,
            cycles_to_zero: (dead == 0).then_some(0),
        });
    }
}
