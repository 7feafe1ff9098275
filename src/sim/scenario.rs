//! What a run simulates: a [`Scenario`] (size, rules, bootstrap, failures, churn, faults, an
//! attack, what to measure) and why one cannot run ([`ScenarioError`]).

use super::{Attack, AttackTarget, Bootstrap, Partition};
use crate::view::{ParamsError, Rejoin, ShuffleParams};

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
            if let crate::view::Defence::Secure(_) = self.params.defence {
                return Err(ScenarioError::Params(ParamsError::Defence(
                    "the rejoin rule is not for secure mode, whose nodes join their contact",
                )));
            }
        }
        Ok(())
    }

    /// Whether the scenario has loss, a partition or the rejoin rule: then the overlay is
    /// measured every cycle into [`Report::faults`](super::Report::faults).
    pub fn has_faults(&self) -> bool {
        self.loss > 0.0 || self.partition.is_some() || self.rejoin.is_some()
    }
}
