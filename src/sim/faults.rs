//! Faults a deployment meets besides crashes: lost messages and network partitions
//! ([`Partition`]), and what they do to the overlay, cycle by cycle ([`FaultMeasurement`]); and
//! the rejoin rule's unsynchronised probe rounds.

use rand::{RngExt, SeedableRng, seq::SliceRandom};

use super::{NodeId, SimRng};

/// Seed offsets of the faults' own random streams (which messages are lost, who is on which
/// side), so that they never shift the protocol's own random choices.
const LOSS_STREAM: u64 = 0x6c6f_7373_6573_3131;
const PARTITION_STREAM: u64 = 0x7061_7274_6974_3131;
const REJOIN_STREAM: u64 = 0x7265_6a6f_696e_3131;

/// A network partition: half of the nodes, drawn at random, cannot reach the other half from
/// right after cycle [`at_cycle`](Self::at_cycle) until right after cycle
/// [`heal_cycle`](Self::heal_cycle). A shuffle across the cut fails as one with a dead target
/// does (the initiator drops the target). Nodes that join meanwhile land on a random side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    /// The overlay splits right after this cycle.
    pub at_cycle: u64,
    /// The cut heals right after this cycle (after `at_cycle`).
    pub heal_cycle: u64,
}

/// The state of the faults inside a [`Simulation`](super::Simulation).
#[derive(Debug, Clone)]
pub(super) struct Faults {
    /// Probability that one message (a request or a reply) is lost.
    loss: f64,
    loss_rng: SimRng,
    partition_rng: SimRng,
    /// Draws each node's first probe round.
    rejoin_rng: SimRng,
    /// Side of each node (by id) once a partition has started; `true`: the second half.
    side: Vec<bool>,
    partitioned: bool,
}

impl Faults {
    pub(super) fn new(seed: u64) -> Self {
        Self {
            loss: 0.0,
            loss_rng: SimRng::seed_from_u64(seed ^ LOSS_STREAM),
            partition_rng: SimRng::seed_from_u64(seed ^ PARTITION_STREAM),
            rejoin_rng: SimRng::seed_from_u64(seed ^ REJOIN_STREAM),
            side: Vec::new(),
            partitioned: false,
        }
    }

    pub(super) fn loss(&self) -> f64 {
        self.loss
    }

    pub(super) fn set_loss(&mut self, loss: f64) {
        self.loss = if loss.is_finite() {
            loss.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }

    /// A node's first probe comes after this many rounds, in `0..probe_every`.
    pub(super) fn probe_phase(&mut self, probe_every: u32) -> u32 {
        self.rejoin_rng.random_range(0..probe_every.max(1))
    }

    /// Whether the next message is lost. Draws nothing without loss.
    pub(super) fn lose_message(&mut self) -> bool {
        self.loss > 0.0 && self.loss_rng.random::<f64>() < self.loss
    }

    /// Splits `live` 50/50 at random; the other nodes (`nodes` in all) get a random side.
    pub(super) fn partition(&mut self, nodes: usize, live: &[NodeId]) {
        self.side = (0..nodes)
            .map(|_| self.partition_rng.random::<bool>())
            .collect();
        let mut order = live.to_vec();
        order.shuffle(&mut self.partition_rng);
        let half = order.len() / 2;
        for (i, id) in order.into_iter().enumerate() {
            self.side[id as usize] = i >= half;
        }
        self.partitioned = true;
    }

    pub(super) fn heal(&mut self) {
        self.partitioned = false;
    }

    pub(super) fn is_partitioned(&self) -> bool {
        self.partitioned
    }

    /// A node created while partitioned lands on a random side.
    pub(super) fn on_new_node(&mut self, id: NodeId) {
        if !self.side.is_empty() {
            debug_assert_eq!(self.side.len(), id as usize);
            let side = self.partition_rng.random::<bool>();
            self.side.push(side);
        }
    }

    /// The side of `id` in the last partition (`false` if there never was one).
    pub(super) fn side(&self, id: NodeId) -> bool {
        self.side.get(id as usize).copied().unwrap_or(false)
    }

    /// Whether the partition separates `p` from `q` now.
    pub(super) fn cut(&self, p: NodeId, q: NodeId) -> bool {
        self.partitioned && self.side(p) != self.side(q)
    }
}

/// The overlay after one cycle of a run with faults (message loss or a partition).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct FaultMeasurement {
    /// Cycles run.
    pub cycle: u64,
    /// Whether the partition was in force during this cycle.
    pub partitioned: bool,
    /// Live nodes.
    pub nodes: usize,
    /// Entries in live nodes' views (dead links included).
    pub entries: u64,
    /// Entries pointing to failed nodes.
    pub dead_links: u64,
    /// Live nodes whose view is full.
    pub full_views: usize,
    /// Links between live nodes on different sides of the partition (0 without one): the
    /// overlay's bridges across the cut. A random graph has about half of its links there.
    pub cross_links: u64,
    /// Links between live nodes.
    pub links: u64,
    /// Connected components of the live overlay (undirected).
    pub components: usize,
    /// The largest one's size.
    pub largest_component: usize,
}

impl FaultMeasurement {
    /// Entries per live node over the view size `c`: 1 when every view is full.
    pub fn view_fill(&self, view_size: usize) -> f64 {
        if self.nodes == 0 || view_size == 0 {
            0.0
        } else {
            self.entries as f64 / (self.nodes * view_size) as f64
        }
    }

    /// The share of links that cross the partition.
    pub fn cross_share(&self) -> f64 {
        if self.links == 0 {
            0.0
        } else {
            self.cross_links as f64 / self.links as f64
        }
    }
}

/// How the overlay went through a [`Partition`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PartitionOutcome {
    /// The partition as scheduled.
    pub partition: Partition,
    /// Links across the cut right before it split.
    pub cross_links_before: u64,
    /// Links across the cut when it healed.
    pub cross_links_at_heal: u64,
    /// Cycles after the heal until the live overlay was one connected component again
    /// (`None`: not within the run).
    pub cycles_to_connected: Option<u64>,
    /// Cycles after the heal until at least a quarter of the links crossed the former cut
    /// (half as many as a random graph has; `None`: not within the run).
    pub cycles_to_mixed: Option<u64>,
}
