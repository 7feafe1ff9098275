//! The flags, and the scenarios they ask for: one per protocol variant, or per malicious share
//! and caps setting.

use std::path::PathBuf;

use clap::Parser;
use cyclon_examples::cli::{DefenceKind, Mode, RejoinFlags, ShuffleFlags, Topology};
use libp2p_cyclon::secure::RepairCopies;
use libp2p_cyclon::sim::{
    Attack, AttackTarget, Bootstrap, Kill, Partition, Scenario, ScenarioError, SecureAttack,
};
use libp2p_cyclon::{AnchoredParams, Defence, SeededParams};

use crate::tables::significant;

/// Simulates the Cyclon membership protocol (enhanced or basic shuffling) in cycles, as the
/// paper's PeerSim experiments do, and prints the overlay's metrics beside those of a uniform
/// random c-out graph of the same size generated in the same run.
///
/// Each cycle, every live node initiates one shuffle with its oldest neighbour, in random
/// order. Clustering and path length are taken on the undirected overlay; the path length is
/// averaged over BFS from `--bfs-sources` sampled nodes to all others. Same seed, same output.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
pub struct Args {
    /// Number of nodes N.
    #[arg(short, long, default_value_t = 10_000)]
    pub nodes: usize,
    #[command(flatten)]
    pub shuffle: ShuffleFlags,
    /// Cycles to run.
    #[arg(short = 't', long, default_value_t = 100)]
    pub cycles: u64,
    /// Seed of every random choice.
    #[arg(short, long, default_value_t = 1)]
    pub seed: u64,
    /// Initial overlay. ring: node i knows i+1..i+c; star: everyone knows node 0; random: c
    /// random nodes each; growing: nodes join one by one, each through one random live contact.
    #[arg(long, value_enum, default_value_t = Topology::Ring)]
    pub bootstrap: Topology,
    /// Growing bootstrap: nodes joining per cycle [default: ceil(N / 20)].
    #[arg(long)]
    pub joins_per_cycle: Option<usize>,
    /// Also run basic shuffling on the same scenario and seed, and show it beside.
    #[arg(long, conflicts_with = "malicious")]
    pub compare_basic: bool,
    /// Fail this share of the live nodes at once (0..=1), at --kill-at.
    #[arg(long)]
    pub kill_fraction: Option<f64>,
    /// Cycle after which the --kill-fraction nodes fail [default: half of --cycles].
    #[arg(long, requires = "kill_fraction")]
    pub kill_at: Option<u64>,
    /// Churn: share of live nodes (0..=1) that leave at the start of each cycle, replaced by
    /// as many new nodes joining through one random live contact.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Message loss: each shuffle request and each reply is lost with this probability
    /// (0..=1). A lost request or reply fails the initiator's shuffle as a timeout does (after
    /// a lost reply, the target has merged the request).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub loss: f64,
    /// Partition: right after this cycle the live nodes split 50/50 at random, and shuffles
    /// across the cut fail as with dead targets, until --heal-at.
    #[arg(long, value_name = "CYCLE", requires = "heal_at")]
    pub partition_at: Option<u64>,
    /// The partition heals right after this cycle.
    #[arg(long, value_name = "CYCLE", requires = "partition_at")]
    pub heal_at: Option<u64>,
    #[command(flatten)]
    pub rejoin: RejoinFlags,
    /// Rejoin rule: nodes 0..S are every node's seeds (kept forever and probed like lost
    /// peers).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seeds: usize,
    /// With --loss, --partition-at or --rejoin-every: write the overlay after every cycle
    /// (view fill, dead links, links across the partition, components) as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    pub faults_csv: Option<PathBuf>,
    /// Full metrics every K cycles (cycle 0 and the last are always measured; 0: only those).
    /// Dead links are counted every cycle.
    #[arg(long, default_value_t = 10)]
    pub metrics_every: u64,
    /// BFS sources sampled for the average path length.
    #[arg(long, default_value_t = 100)]
    pub bfs_sources: usize,
    /// Random removal orders averaged in the robustness experiment (remove 0-95% of the
    /// final overlay's nodes without healing; largest component's share of survivors).
    /// 0 skips it.
    #[arg(long, default_value_t = 5)]
    pub robustness_trials: usize,
    /// Malicious nodes: this share of the initial nodes (0..=1) collude from --attack-start
    /// on. They answer every shuffle with c malicious entries of age 0 and push malicious
    /// entries of age 0 to honest nodes (--malicious-pushes). Several comma-separated shares
    /// run one after the other on the same seed.
    #[arg(long, value_delimiter = ',', value_name = "SHARE")]
    pub malicious: Vec<f64>,
    /// The malicious nodes behave honestly up to this cycle and attack from the next one.
    #[arg(long, default_value_t = 50, requires = "malicious")]
    pub attack_start: u64,
    /// Shuffles each malicious node initiates per cycle during the attack (1: an honest rate;
    /// fractions allowed).
    #[arg(long, default_value_t = 1.0, requires = "malicious")]
    pub malicious_pushes: f64,
    /// Focused attack: every push goes to one of this many honest victims, drawn at random
    /// when the attack starts [default: spread, to any honest node the attackers know].
    #[arg(long, value_name = "VICTIMS", requires = "malicious")]
    pub focus: Option<usize>,
    /// Honest nodes without the behaviour's limits on what they take ("caps"): they consider up to c received entries instead of l,
    /// and have no per-peer inbound rate limit.
    #[arg(long, requires = "malicious", conflicts_with = "compare_caps")]
    pub no_caps: bool,
    /// Run every --malicious share both with and without the honest nodes' limits ("caps").
    #[arg(long, requires = "malicious")]
    pub compare_caps: bool,
    /// Run every --malicious share both without a defence and with --defence (seeded when
    /// --defence is not given).
    #[arg(long, requires = "malicious", conflicts_with = "compare_caps")]
    pub compare_defence: bool,
    /// Seeded defence: entries sent beyond l in every request and reply [default: 5].
    #[arg(long, value_name = "N")]
    pub extra_entries: Option<usize>,
    /// Seeded defence: entries of a message taken from the view, the others being news
    /// [default: 2].
    #[arg(long, value_name = "N")]
    pub from_view: Option<usize>,
    /// Seeded defence: news remembered to be passed on (0: send view entries only)
    /// [default: 40].
    #[arg(long, value_name = "N")]
    pub news: Option<usize>,
    /// Seeded defence: peers remembered as heard of per filter generation (0: no filter)
    /// [default: 4096].
    #[arg(long, value_name = "N")]
    pub seen_memory: Option<usize>,
    /// Seeded defence: one shuffle in N contacts the oldest view entry, the others a random
    /// news peer [default: 1].
    #[arg(long, value_name = "N")]
    pub probe_every: Option<u32>,
    /// Seeded defence: entries older than this many cycles are not passed on [default: 40].
    #[arg(long, value_name = "CYCLES")]
    pub relay_age: Option<u32>,
    /// Both defences: failed peers remembered and not taken back [default: 100].
    #[arg(long, value_name = "N")]
    pub dead_memory: Option<usize>,
    /// Under --defence secure: how the coalition attacks. cloner: hands copies of its
    /// descriptors to many (forks) and mints --malicious-pushes times per cycle; hoarder:
    /// rate-honest, keeps every honest descriptor and hands out only its own; focused:
    /// hoarders spending everything on the --focus victims; answers: never initiates, answers
    /// with its own descriptors only; deplete: takes one transfer and stops [default: the
    /// strongest measured: focused with --focus, else hoarder].
    #[arg(long, value_enum, value_name = "KIND", requires = "malicious")]
    pub attack: Option<AttackKind>,
    /// Anchored and secure defences: view entries chosen by private seeded ranks (anchors)
    /// [default: anchored 2, secure 1].
    #[arg(long, value_name = "N")]
    pub anchors: Option<usize>,
    /// Secure defence: one exchange in N contacts an anchor (0: never) [default: 0].
    #[arg(long, value_name = "N")]
    pub anchor_probe_every: Option<u32>,
    /// Secure defence: joins (contacts without a redemption: newcomers, empty views) a node
    /// accepts per gap [default: 2].
    #[arg(long, value_name = "N")]
    pub joins_per_gap: Option<usize>,
    /// Secure defence: swappable redemptions a node accepts per gap (0: no limit)
    /// [default: 0].
    #[arg(long, value_name = "N")]
    pub redemptions_per_gap: Option<usize>,
    /// Secure defence: which descriptors empty slots keep non-swappable copies of after an
    /// exchange [default: given-and-redeemed].
    #[arg(long, value_name = "WHICH")]
    pub repair_copies: Option<RepairCopiesArg>,
    /// Secure defence: descriptors the evidence store remembers per node [default: 1024].
    #[arg(long, value_name = "N")]
    pub evidence_capacity: Option<usize>,
    /// Anchored defence: private samplers [default: 20].
    #[arg(long, value_name = "N")]
    pub samplers: Option<usize>,
    /// Anchored defence: inbound shuffles per cycle whose entries are merged (0: no budget)
    /// [default: 3].
    #[arg(long, value_name = "N")]
    pub push_budget: Option<u32>,
    /// Write the attack's progress, one CSV row per cycle and run, to FILE.
    #[arg(long, value_name = "FILE", requires = "malicious")]
    pub attack_csv: Option<PathBuf>,
    /// Write one CSV row per measured cycle (of the first run) to FILE.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write the final overlay (first run) as `src dst` lines to FILE: links between live
    /// nodes, which are numbered 0..L-1 in id order (0..N-1 without failures or churn).
    #[arg(long, value_name = "FILE")]
    pub edges_out: Option<PathBuf>,
    /// Write SVG figures (in-degree distribution, path length and clustering per cycle, dead
    /// links after the failure, largest component vs. fraction removed) into DIR. Under
    /// --malicious, only the malicious share of honest views per cycle, for every run
    /// (malicious_spread.svg, or malicious_focused.svg for the victims).
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

/// One protocol variant to simulate: its label in the tables and figures, and its scenario.
pub struct Variant {
    pub label: String,
    pub scenario: Scenario,
}

impl Args {
    /// The failure the flags ask for, if any.
    pub fn kill(&self) -> Option<Kill> {
        self.kill_fraction.map(|fraction| Kill {
            fraction,
            at_cycle: self.kill_at.unwrap_or(self.cycles / 2),
        })
    }

    /// The defence `--defence` and the tuning flags ask for (seeded under
    /// `--compare-defence` without `--defence`).
    pub fn defence(&self) -> Defence {
        let kind = match self.shuffle.defence {
            Some(kind) => kind,
            None if self.compare_defence => DefenceKind::Seeded,
            None => return Defence::Off,
        };
        match kind {
            DefenceKind::Seeded => {
                let mut p = SeededParams::default();
                p.extra_entries = self.extra_entries.unwrap_or(p.extra_entries);
                p.from_view = self.from_view.unwrap_or(p.from_view);
                p.news = self.news.unwrap_or(p.news);
                p.seen_memory = self.seen_memory.unwrap_or(p.seen_memory);
                p.probe_every = self.probe_every.unwrap_or(p.probe_every);
                p.relay_age = self.relay_age.unwrap_or(p.relay_age);
                p.dead_memory = self.dead_memory.unwrap_or(p.dead_memory);
                Defence::Seeded(p)
            }
            DefenceKind::Anchored => {
                let mut p = AnchoredParams::default();
                p.anchors = self.anchors.unwrap_or(p.anchors);
                p.samplers = self.samplers.unwrap_or(p.samplers);
                p.push_budget = self.push_budget.unwrap_or(p.push_budget);
                p.dead_memory = self.dead_memory.unwrap_or(p.dead_memory);
                Defence::Anchored(p)
            }
            DefenceKind::Secure => {
                let Defence::Secure(mut p) = kind.defence(self.shuffle.view_size) else {
                    unreachable!("the secure kind")
                };
                p.anchors = self.anchors.unwrap_or(p.anchors);
                p.anchor_probe_every = self.anchor_probe_every.unwrap_or(p.anchor_probe_every);
                p.evidence_capacity = self.evidence_capacity.unwrap_or(p.evidence_capacity);
                p.joins_per_gap = self.joins_per_gap.unwrap_or(p.joins_per_gap);
                p.redemptions_per_gap = self.redemptions_per_gap.unwrap_or(p.redemptions_per_gap);
                if let Some(copies) = self.repair_copies {
                    p.repair_copies = copies.setting();
                }
                Defence::Secure(p)
            }
        }
    }

    /// The scenario the flags describe, before any attack or comparison (not validated).
    pub fn scenario(&self) -> Scenario {
        Scenario {
            nodes: self.nodes,
            params: self.shuffle.params().with_defence(self.defence()),
            bootstrap: bootstrap(self.bootstrap),
            seed: self.seed,
            cycles: self.cycles,
            joins_per_cycle: self.joins_per_cycle,
            churn: self.churn,
            kill: self.kill(),
            metrics_every: self.metrics_every,
            bfs_sources: self.bfs_sources,
            robustness_trials: self.robustness_trials,
            attack: None,
            loss: self.loss,
            partition: self
                .partition_at
                .zip(self.heal_at)
                .map(|(at_cycle, heal_cycle)| Partition {
                    at_cycle,
                    heal_cycle,
                }),
            rejoin: self.rejoin.rule(self.shuffle.view_size),
            seeds: self.seeds,
        }
    }

    /// One validated scenario per protocol variant (the mode, and basic with
    /// `--compare-basic`), or per malicious share and caps setting.
    pub fn variants(&self) -> Result<Vec<Variant>, ScenarioError> {
        let scenario = self.scenario();
        scenario.validate()?;
        let mut variants = Vec::new();
        if self.malicious.is_empty() {
            let mut modes = vec![self.shuffle.mode];
            if self.compare_basic && self.shuffle.mode != Mode::Basic {
                modes.push(Mode::Basic);
            }
            for mode in modes {
                let scenario = Scenario {
                    params: scenario.params.with_mode(mode.into()),
                    ..scenario.clone()
                };
                let label = format!("{}{}", mode_name(mode), defence_suffix(self.defence()));
                variants.push(Variant { label, scenario });
            }
        } else {
            let caps: &[bool] = match (self.compare_caps, self.no_caps) {
                (true, _) => &[true, false],
                (false, true) => &[false],
                (false, false) => &[true],
            };
            let defences = if self.compare_defence {
                vec![Defence::Off, self.defence()]
            } else {
                vec![self.defence()]
            };
            for &fraction in &self.malicious {
                for (&caps, &defence) in caps
                    .iter()
                    .flat_map(|caps| defences.iter().map(move |d| (caps, d)))
                {
                    let attack = Attack {
                        fraction,
                        start: self.attack_start,
                        pushes: self.malicious_pushes,
                        target: match self.focus {
                            Some(victims) => AttackTarget::Focused { victims },
                            None => AttackTarget::Spread,
                        },
                        honest_limits: caps,
                        secure: self
                            .attack
                            .map_or(SecureAttack::Strongest, AttackKind::kind),
                    };
                    let scenario = Scenario {
                        attack: Some(attack),
                        params: scenario.params.with_defence(defence),
                        ..scenario.clone()
                    };
                    scenario.validate()?;
                    let label = format!(
                        "{}% {}{}",
                        significant(fraction * 100.0, 3),
                        if caps { "caps" } else { "no caps" },
                        defence_suffix(defence),
                    );
                    variants.push(Variant { label, scenario });
                }
            }
        }
        Ok(variants)
    }
}

/// The simulator's initial overlay for `--bootstrap`.
fn bootstrap(topology: Topology) -> Bootstrap {
    match topology {
        Topology::Ring => Bootstrap::Ring,
        Topology::Star => Bootstrap::Star,
        Topology::Random => Bootstrap::Random,
        Topology::Growing => Bootstrap::Growing,
    }
}

/// What a run's label says about its defence (nothing without one).
pub fn defence_suffix(defence: Defence) -> &'static str {
    match defence {
        Defence::Seeded(_) => " seeded",
        Defence::Anchored(_) => " anchored",
        Defence::Secure(_) => " secure",
        _ => "",
    }
}

/// `--attack`: how a coalition attacks SecureCyclon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttackKind {
    /// Hands copies of its descriptors to many (forks), over-mints with --malicious-pushes.
    Cloner,
    /// Rate-honest: keeps honest descriptors, hands out only its own.
    Hoarder,
    /// Hoarders spending everything on the --focus victims.
    Focused,
    /// Never initiates; answers with its own descriptors only.
    Answers,
    /// Takes one transfer and stops.
    Deplete,
}

impl AttackKind {
    fn kind(self) -> SecureAttack {
        match self {
            AttackKind::Cloner => SecureAttack::Cloner,
            AttackKind::Hoarder => SecureAttack::Hoarder,
            AttackKind::Focused => SecureAttack::Focused,
            AttackKind::Answers => SecureAttack::Answers,
            AttackKind::Deplete => SecureAttack::Deplete,
        }
    }
}

/// `--repair-copies`: which descriptors SecureCyclon's empty slots keep copies of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RepairCopiesArg {
    /// What the node handed on and the descriptor it redeemed (the paper's repair).
    GivenAndRedeemed,
    /// Only what it handed on.
    Given,
    /// None.
    Off,
}

impl RepairCopiesArg {
    fn setting(self) -> RepairCopies {
        match self {
            RepairCopiesArg::GivenAndRedeemed => RepairCopies::GivenAndRedeemed,
            RepairCopiesArg::Given => RepairCopies::Given,
            RepairCopiesArg::Off => RepairCopies::Off,
        }
    }
}

/// The label of a mode's run.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enhanced => "enhanced",
        Mode::Basic => "basic",
    }
}
