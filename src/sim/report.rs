//! What a run measured: the overlay's metrics per measured cycle ([`Measurement`],
//! [`OverlayMetrics`]), the failure's course, the robustness experiment, and the
//! [`Report`] that holds them all and writes them as CSV.

use std::io::{self, Write};
use std::time::Duration;

use rand::Rng;

use super::graph::{ComponentStats, DegreeStats, Graph, PathStats, Undirected};
use super::{
    AttackMeasurement, AttackTarget, FaultMeasurement, PartitionOutcome, Scenario, ShuffleCounters,
};

/// The paper's metrics of one graph.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OverlayMetrics {
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

impl OverlayMetrics {
    /// Measures `graph`, with `bfs_sources` BFS sources drawn from `rng`.
    pub fn measure<R: Rng + ?Sized>(graph: &Graph, rng: &mut R, bfs_sources: usize) -> Self {
        let directed = Self::directed(graph);
        directed.measure_undirected(&graph.undirected(), rng, bfs_sources)
    }

    /// [`measure`](Self::measure), freeing `graph` once its undirected graph is built (a
    /// million-node graph takes about 90 MB); returns the undirected graph too.
    pub(super) fn measure_owned<R: Rng + ?Sized>(
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
pub struct Measurement {
    /// Cycles run (0: the bootstrap overlay).
    pub cycle: u64,
    /// Entries of live nodes' views pointing to failed nodes.
    pub dead_links: u64,
    /// Live nodes whose view is full (`c` entries).
    pub full_views: usize,
    /// OverlayMetrics of the graph of links between live nodes.
    pub metrics: OverlayMetrics,
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

/// Everything a run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// What was run.
    pub scenario: Scenario,
    /// The measured cycles, in order; the last one is the final overlay.
    pub rows: Vec<Measurement>,
    /// `dead_links[t]`: dead links after cycle `t` (before a failure scheduled at `t`).
    pub dead_links: Vec<u64>,
    /// The massive failure, if the scenario had one.
    pub kill: Option<KillOutcome>,
    /// A uniform random `c`-out graph with as many nodes as the final overlay, measured the
    /// same way.
    pub reference: OverlayMetrics,
    /// Largest component vs. fraction removed (empty unless the scenario asked for it).
    pub robustness: Vec<RobustnessRow>,
    /// Shuffles run.
    pub counters: ShuffleCounters,
    /// Malicious nodes (0 without an attack).
    pub malicious_nodes: usize,
    /// Under an attack, the malicious nodes' progress after every cycle (`attack[t]`: after
    /// cycle `t`); empty without one.
    pub attack: Vec<AttackMeasurement>,
    /// With loss, a partition or the rejoin rule ([`Scenario::has_faults`]), the overlay after
    /// every cycle (`faults[t]`: after cycle `t`); empty otherwise.
    pub faults: Vec<FaultMeasurement>,
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

    /// The header of [`write_attack_csv`](Self::write_attack_csv) when a run is under
    /// [`Defence::Secure`](crate::view::Defence::Secure): [`ATTACK_CSV_HEADER`](Self::ATTACK_CSV_HEADER)
    /// and SecureCyclon's own columns (empty for runs without it; the `least_member_` and
    /// `honest_blacklisted` columns on measured cycles only).
    pub const SECURE_ATTACK_CSV_HEADER: &'static str = "malicious_fraction,malicious_nodes,caps,\
        target,victims,pushes_per_cycle,attack_start,cycle,attacking,honest_nodes,entries,\
        malicious_entries,malicious_share,eclipsed,victim_entries,victim_malicious_entries,\
        victim_share,victims_eclipsed,pushes,refused,answered,honest_components,\
        honest_largest_component,attack_kind,blacklisted_share,blacklisting_all,\
        least_member_blacklisted,honest_blacklisted,proofs_found,ns_share,refused_by_honest,\
        expired";

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
    pub fn last(&self) -> &Measurement {
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
        if self.is_secure() {
            writeln!(out, "{}", Self::SECURE_ATTACK_CSV_HEADER)?;
            return self.write_attack_csv_rows_with(out, true);
        }
        writeln!(out, "{}", Self::ATTACK_CSV_HEADER)?;
        self.write_attack_csv_rows(out)
    }

    /// Whether the run was under [`Defence::Secure`](crate::view::Defence::Secure).
    pub fn is_secure(&self) -> bool {
        matches!(
            self.scenario.params.defence,
            crate::view::Defence::Secure(_)
        )
    }

    /// [`write_attack_csv`](Self::write_attack_csv) without the header, to put several runs
    /// in one file: each row names its run's attack.
    pub fn write_attack_csv_rows(&self, out: impl Write) -> io::Result<()> {
        self.write_attack_csv_rows_with(out, false)
    }

    /// [`write_attack_csv_rows`](Self::write_attack_csv_rows), with SecureCyclon's columns
    /// ([`SECURE_ATTACK_CSV_HEADER`](Self::SECURE_ATTACK_CSV_HEADER)) when `secure_columns`.
    pub fn write_attack_csv_rows_with(
        &self,
        mut out: impl Write,
        secure_columns: bool,
    ) -> io::Result<()> {
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
            write!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{},{:.6},{},{},{},{},{},{}",
                attack.fraction,
                self.malicious_nodes,
                attack.honest_limits,
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
            if secure_columns {
                match &row.secure {
                    Some(m) => write!(
                        out,
                        ",{},{:.6},{:.6},{},{},{},{:.6},{},{}",
                        m.kind.as_str(),
                        m.blacklisted_share,
                        m.blacklisting_all,
                        m.least_member_blacklisted
                            .map_or(String::new(), |v| format!("{v:.6}")),
                        m.honest_blacklisted
                            .map_or(String::new(), |v| v.to_string()),
                        m.proofs_found,
                        m.ns_share,
                        m.refused,
                        m.expired,
                    )?,
                    None => write!(out, ",,,,,,,,,")?,
                }
            }
            writeln!(out)?;
        }
        out.flush()
    }
}
