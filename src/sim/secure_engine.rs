//! The state of the simulator's SecureCyclon engine ([`Defence::Secure`]): one crate
//! [`SecureView`] per node with the simulator's keyed-MAC scheme, the initial overlay, and the
//! counters of what the honest nodes did. The cycle that drives it is in `secure.rs`, the
//! coalition that attacks it in `secure_attack.rs`; both take it from here.

use rand::{Rng, SeedableRng};

use super::graph::Graph;
use super::{Bootstrap, NodeId, SimRng};
use crate::secure::{
    ExchangeOutcome, SecureParams, SecureView,
    sim_scheme::{SimAuthority, SimScheme, SimSigner},
};
use crate::view::{Defence, ShuffleParams};

/// A node's view in the secure simulator.
pub type SimView = SecureView<NodeId, (), SimScheme, SimSigner>;

/// Seed offset of the engine's own stream (the scheme's keys, the anchors' seeds).
const SECURE_STREAM: u64 = 0x7365_6375_7265_3131;

/// What SecureCyclon did in a run, since it started (honest nodes only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SecureCounters {
    /// Proofs honest nodes built.
    pub proofs_found: u64,
    /// Times an honest node blacklisted a node (found or received).
    pub blacklistings: u64,
    /// Exchanges an honest responder refused.
    pub refused: u64,
    /// Non-swappable copies honest nodes kept.
    pub kept_non_swappable: u64,
    /// Descriptors honest nodes dropped as expired.
    pub expired: u64,
    /// Items honest nodes dropped as invalid.
    pub invalid: u64,
    /// Joins honest nodes made (seeds and anchors).
    pub joins: u64,
    /// Proof pushes delivered by floods.
    pub flood_pushes: u64,
}

/// The secure engine inside a [`Simulation`].
#[derive(Debug, Clone)]
pub(super) struct SecureEngine {
    pub(super) authority: SimAuthority,
    pub(super) params: ShuffleParams,
    pub(super) secure: SecureParams,
    pub(super) views: Vec<SimView>,
    pub(super) counters: SecureCounters,
    rng: SimRng,
    /// Nodes that may have floods to send.
    pub(super) flooding: Vec<NodeId>,
}

/// The first cycle's time is this many gaps after 0, so that the initial overlay's
/// descriptors, minted in the cycles before, have positive dates.
fn base_cycles(params: &ShuffleParams, secure: &SecureParams) -> u64 {
    2 * (secure.max_age / secure.mint_gap) + 2 * params.view_size as u64 + 4
}

impl SecureEngine {
    /// The engine for `nodes` nodes wired by `bootstrap`; the bootstrap's random choices come
    /// from `rng` (the run's stream), the engine's keys from its own stream.
    pub(super) fn new(
        nodes: usize,
        params: ShuffleParams,
        bootstrap: Bootstrap,
        seed: u64,
        rng: &mut SimRng,
    ) -> Self {
        let Defence::Secure(secure) = params.defence else {
            unreachable!("built under Defence::Secure only")
        };
        let mut own = SimRng::seed_from_u64(seed ^ SECURE_STREAM);
        let authority = SimAuthority::new(
            (own.next_u64(), own.next_u64()),
            (own.next_u64(), own.next_u64()),
        );
        let mut engine = Self {
            authority,
            params,
            secure,
            views: Vec::with_capacity(nodes),
            counters: SecureCounters::default(),
            rng: own,
            flooding: Vec::new(),
        };
        let base = base_cycles(&params, &secure);
        for id in 0..nodes as NodeId {
            let view = engine.new_view(id, 0);
            engine.views.push(view);
        }
        let n = nodes as NodeId;
        let k = engine.views[0].capacity().min(nodes.saturating_sub(1)) as u32;
        let gap = secure.mint_gap;
        match bootstrap {
            Bootstrap::Ring => {
                // Node i holds descriptors of i+1..=i+k; creator j minted them k..1 cycles
                // before the first, one per cycle.
                for step in 1..=k {
                    let at = (base - u64::from(k + 1 - step)) * gap;
                    for i in 0..n {
                        engine.hand((i + step) % n, i, at);
                    }
                }
            }
            Bootstrap::Random => {
                // A creator that `d` holders link to minted their descriptors in the `d`
                // cycles before the first, in holder order: its mint clock only moves forward,
                // so the dates must rise as it hands them out.
                let graph = Graph::random_out(rng, nodes, k as usize);
                let mut holders = vec![0u64; nodes];
                for i in 0..nodes {
                    for &creator in graph.out_links(i) {
                        holders[creator as usize] += 1;
                    }
                }
                let mut minted = vec![0u64; nodes];
                for i in 0..nodes {
                    for &creator in graph.out_links(i) {
                        let c = creator as usize;
                        let cycles_before = holders[c] - minted[c];
                        minted[c] += 1;
                        if cycles_before < base {
                            engine.hand(creator, i as NodeId, (base - cycles_before) * gap);
                        }
                    }
                }
            }
            Bootstrap::Star => {
                for view in engine.views.iter_mut().skip(1) {
                    view.add_seed(0);
                }
            }
            Bootstrap::Growing => {}
        }
        engine
    }

    fn new_view(&mut self, id: NodeId, now: u64) -> SimView {
        SimView::new_identity(
            self.params,
            self.authority.scheme(),
            self.authority.signer(id),
            now,
            &mut self.rng,
        )
        .expect("validated")
    }

    /// `creator` hands `holder` a descriptor minted at `at` (the initial overlay).
    fn hand(&mut self, creator: NodeId, holder: NodeId, at: u64) {
        if let Ok(chain) = self.views[creator as usize].hand_out(at, holder, ()) {
            self.views[holder as usize].take_handed(at, chain);
        }
    }

    /// The time of cycle `cycle`.
    pub(super) fn time(&self, cycle: u64) -> u64 {
        (base_cycles(&self.params, &self.secure) + cycle) * self.secure.mint_gap
    }

    /// A node joins at `now`, knowing `contact`.
    pub(super) fn add_node(&mut self, id: NodeId, contact: Option<NodeId>, now: u64) {
        let mut view = self.new_view(id, now);
        if let Some(contact) = contact {
            view.add_seed(contact);
        }
        if self.views.len() <= id as usize {
            self.views.push(view);
        } else {
            self.views[id as usize] = view;
        }
    }

    /// The nodes `id` links to: its holdings' creators and its anchors.
    pub(super) fn links(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.views[id as usize].contacts().copied()
    }

    /// Adds up what an honest node's call reported.
    pub(super) fn count(&mut self, id: NodeId, out: &ExchangeOutcome<NodeId>) {
        self.counters.proofs_found += out.proofs_found.len() as u64;
        self.counters.blacklistings += out.blacklisted.len() as u64;
        self.counters.kept_non_swappable += out.kept_non_swappable.len() as u64;
        self.counters.invalid += out.invalid.total();
        if !out.blacklisted.is_empty() {
            self.flooding.push(id);
        }
    }
}
