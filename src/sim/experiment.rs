//! Running a [`Scenario`]: the cycles, the measurements on a second thread, the random
//! reference graph and the robustness experiment, reported as a [`Report`].

use std::sync::mpsc;
use std::time::Instant;

use rand::SeedableRng;

use super::graph::{Graph, Undirected};
use super::{
    AttackMeasurement, FaultMeasurement, KillOutcome, Measurement, OverlayMetrics,
    PartitionOutcome, Report, RobustnessRow, Scenario, ScenarioError, SimRng, Simulation, Timing,
};

/// Seed offsets of the independent random streams of a run, so that measuring more or less
/// often never changes the simulated overlay, nor the reference graph.
const METRICS_STREAM: u64 = 0x6d65_7472_6963_7331;
const REFERENCE_STREAM: u64 = 0x7261_6e64_6f6d_6731;
const ROBUSTNESS_STREAM: u64 = 0x726f_6275_7374_3131;

/// The fractions of nodes removed in the robustness experiment: 0, 5, …, 95 %.
pub fn robustness_fractions() -> Vec<f64> {
    (0..20).map(|k| f64::from(k) * 0.05).collect()
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
                        OverlayMetrics::measure_owned(graph, &mut rng, bfs_sources);
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
        measured: impl FnOnce() -> (Vec<OverlayMetrics>, Undirected),
    ) -> Report {
        let scenario = self.scenario.clone();
        let mut timing = Timing::default();
        // The measured cycles, their metrics to come.
        let mut rows = Vec::new();
        let mut kill = None;

        let started = Instant::now();
        rows.push(self.snapshot(&overlays));
        let mut dead_links = vec![self.sim.dead_links()];
        let mut attack: Vec<AttackMeasurement> =
            self.sim.measure_attack(true).into_iter().collect();
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
            attack.extend(self.sim.measure_attack(measured));
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
        let (reference, reference_undirected) = OverlayMetrics::measure_owned(
            reference_graph,
            &mut reference_rng,
            scenario.bfs_sources,
        );
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
        faults: &mut Vec<FaultMeasurement>,
        outcome: &mut Option<PartitionOutcome>,
    ) {
        if !self.scenario.has_faults() {
            return;
        }
        let now = self.sim.measure_faults();
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
                cross_links_before: self.sim.measure_faults().cross_links,
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
    fn snapshot(&self, overlays: &mpsc::SyncSender<Graph>) -> Measurement {
        let overlay = self.sim.overlay();
        // Fails only if the measuring thread has panicked: `run` raises that panic.
        let _ = overlays.send(overlay.graph);
        Measurement {
            cycle: self.sim.cycle(),
            dead_links: overlay.dead_links,
            full_views: overlay.full_views,
            metrics: OverlayMetrics::default(),
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
