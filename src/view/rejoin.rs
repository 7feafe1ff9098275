//! The opt-in [`Rejoin`](crate::view::Rejoin) rule: seeds and lost peers kept beside the view, and the probes that
//! shuffle with them.

use std::hash::Hash;

use rand::{Rng, RngExt};

use super::{
    AddressList, DefenceState, Entry, EntryPayload, OutgoingShuffle, ParamsError, PartialView,
    ShuffleId, params::DEFAULT_VIEW_SIZE,
};

/// Default [`Rejoin::probe_every`](crate::view::Rejoin::probe_every): one probe every 5 periodic rounds.
pub(crate) const DEFAULT_REJOIN_PROBE_EVERY: u32 = 5;

/// The opt-in rule that makes an overlay find itself again after a partition, a lost bootstrap
/// peer or heavy loss (off by default: plain Cyclon, the paper's protocol).
///
/// Plain Cyclon forgets a peer for good when a shuffle with it fails. During a long partition
/// each side so purges the other, and after the partition heals nothing crosses again. With
/// `Rejoin`, the core ([`PartialView`](crate::view::PartialView)) keeps two lists beside the view:
///
/// - **seeds**: peers configured by the application (e.g. its bootstrap peers), never
///   forgotten;
/// - **lost peers**: the last [`remember`](Self::remember) peers that left the view because a
///   shuffle with them failed.
///
/// Every [`probe_every`](Self::probe_every) periodic rounds, and in every round while the view
/// is empty, the node *probes* one of them not in its view, chosen at random: an extra shuffle
/// with it, on top of the regular one. A probe is a normal exchange (a fresh entry for the local
/// node and `l - 1` view entries against up to `l` of the partner's), except that the partner
/// was not in the view, so none leaves it. A probe that fails changes nothing; one that
/// completes forgets the lost peer (it is reachable again, and knows us now).
///
/// In a network without failures no shuffle fails, the lost list stays empty, and with no
/// seeds no probe is ever made: the protocol runs exactly as without `Rejoin`.
///
/// ```
/// use libp2p_cyclon::{Config, Rejoin};
///
/// let config = Config::default().with_rejoin(Rejoin::new(20, 5));
/// assert!(config.validate().is_ok());
/// assert!(Rejoin::new(20, 0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Rejoin {
    /// How many peers lost to failed shuffles are remembered (the most recent ones).
    pub remember: usize,
    /// One probe every this many periodic rounds (at least 1), and one every round while the
    /// view is empty.
    pub probe_every: u32,
}

impl Default for Rejoin {
    /// Remember 20 lost peers (the default view size), probe every 5
    /// rounds.
    fn default() -> Self {
        Self::new(DEFAULT_VIEW_SIZE, DEFAULT_REJOIN_PROBE_EVERY)
    }
}

impl Rejoin {
    /// Remember `remember` lost peers and probe every `probe_every` rounds.
    pub fn new(remember: usize, probe_every: u32) -> Self {
        Self {
            remember,
            probe_every,
        }
    }

    /// Checks `probe_every >= 1`.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.probe_every == 0 {
            return Err(ParamsError::ZeroProbeInterval);
        }
        Ok(())
    }
}

/// The lists a [`Rejoin`](crate::view::Rejoin) rule keeps beside the view.
#[derive(Debug, Clone)]
pub(super) struct RejoinState<I, A> {
    pub(super) rule: Rejoin,
    /// Configured peers, never forgotten.
    pub(super) seeds: Vec<Entry<I, A>>,
    /// Peers that left the view through a failed shuffle, the oldest loss first; at most
    /// `rule.remember`.
    pub(super) lost: Vec<Entry<I, A>>,
    /// Periodic rounds left before the next probe.
    pub(super) countdown: u32,
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: EntryPayload,
{
    /// Turns on the [`Rejoin`] rule (or changes it, keeping the seeds and lost peers; a smaller
    /// [`Rejoin::remember`](crate::view::Rejoin::remember) forgets the oldest losses).
    pub fn set_rejoin(&mut self, rule: Rejoin) -> Result<(), ParamsError> {
        rule.validate()?;
        let state = self.rejoin.get_or_insert_with(|| {
            Box::new(RejoinState {
                rule,
                seeds: Vec::new(),
                lost: Vec::new(),
                countdown: 0,
            })
        });
        state.rule = rule;
        state.countdown = rule.probe_every - 1;
        let excess = state.lost.len().saturating_sub(rule.remember);
        state.lost.drain(..excess);
        Ok(())
    }

    /// Delays the next [`Rejoin`](crate::view::Rejoin) probe by `rounds` (at most `probe_every - 1`): the simulator
    /// spreads its nodes' probes over the rounds, as unsynchronised timers do.
    #[cfg(feature = "sim")]
    pub(crate) fn set_probe_phase(&mut self, rounds: u32) {
        if let Some(state) = self.rejoin.as_mut() {
            state.countdown = rounds.min(state.rule.probe_every - 1);
        }
    }

    /// The [`Rejoin`] rule, if on.
    pub fn rejoin(&self) -> Option<Rejoin> {
        self.rejoin.as_ref().map(|state| state.rule)
    }

    /// Keeps `entry` as a seed of the [`Rejoin`] rule: never forgotten, probed like a lost
    /// peer when not in the view. Returns `false` (and changes nothing) without the rule, for
    /// the local node, or for a peer already a seed. The view itself is not changed: insert
    /// the entry too to bootstrap from it.
    pub fn add_seed(&mut self, entry: Entry<I, A>) -> bool {
        let local = &self.local;
        match self.rejoin.as_mut() {
            Some(state) if entry.id != *local && !state.seeds.iter().any(|s| s.id == entry.id) => {
                state.seeds.push(entry);
                true
            }
            _ => false,
        }
    }

    /// The seeds of the [`Rejoin`] rule (empty without it).
    pub fn seeds(&self) -> &[Entry<I, A>] {
        self.rejoin.as_ref().map_or(&[], |state| &state.seeds)
    }

    /// The peers the [`Rejoin`] rule remembers as lost to failed shuffles, the oldest loss first
    /// (empty without it).
    pub fn lost_peers(&self) -> &[Entry<I, A>] {
        self.rejoin.as_ref().map_or(&[], |state| &state.lost)
    }

    /// The [`Rejoin`] probe of a periodic round, called once per round after
    /// [`periodic_shuffle`](Self::periodic_shuffle): `None` without the rule, without an
    /// address to advertise, between probes, and when every seed and lost peer is in the view
    /// or already being shuffled with. Otherwise a shuffle with one of them, chosen at random,
    /// that takes nobody out of the view ([`OutgoingShuffle::probe`](crate::view::OutgoingShuffle::probe)). A probe is made every
    /// [`Rejoin::probe_every`](crate::view::Rejoin::probe_every) rounds, and in every round in which the view is empty. Nothing is
    /// drawn from `rng` unless a probe is made, so a run with the rule and nothing to probe
    /// is the very run without it.
    ///
    /// Like any shuffle, it must be ended with [`complete_shuffle`](Self::complete_shuffle)
    /// (which forgets a lost peer: it is reachable again) or
    /// [`fail_shuffle`](Self::fail_shuffle) (which changes nothing).
    pub fn periodic_probe<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: Option<A>,
    ) -> Option<OutgoingShuffle<I, A>> {
        let mut request = Vec::new();
        let (id, target) = self.periodic_probe_into(rng, local_addresses?, &mut request)?;
        Some(self.outgoing(id, target, request))
    }

    /// [`periodic_probe`](Self::periodic_probe) writing the request into `request` (cleared
    /// first).
    pub(crate) fn periodic_probe_into<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
        request: &mut Vec<Entry<I, A>>,
    ) -> Option<(ShuffleId, Entry<I, A>)> {
        request.clear();
        let empty = self.entries.is_empty();
        let state = self.rejoin.as_mut()?;
        if state.countdown > 0 && !empty {
            state.countdown -= 1;
            return None;
        }
        state.countdown = state.rule.probe_every.max(1) - 1;
        // A lost peer back in the view is no longer lost.
        let entries = &self.entries;
        state
            .lost
            .retain(|lost| !entries.iter().any(|e| e.id == lost.id));
        let pending = &self.pending;
        let candidate = |entry: &&Entry<I, A>| {
            !entries.iter().any(|e| e.id == entry.id)
                && !pending.iter().any(|p| p.target.id == entry.id)
        };
        let count = state
            .seeds
            .iter()
            .chain(&state.lost)
            .filter(candidate)
            .count();
        if count == 0 {
            return None;
        }
        let pick = rng.random_range(0..count);
        let target = state
            .seeds
            .iter()
            .chain(&state.lost)
            .filter(candidate)
            .nth(pick)
            .expect("counted")
            .clone();
        if self.defence.as_deref().is_some_and(DefenceState::is_seeded) {
            // The seeded slots keep the view's order: the request is built without moving it.
            // Nothing leaves the view, so no sent entry needs remembering.
            self.seeded_request(rng, local_addresses, (None, &target.id), request);
            let id = self.push_pending(target.clone(), false, 0, true);
            return Some((id, target));
        }
        let others = self.fill_request(rng, local_addresses, request);
        let id = self.push_pending(target.clone(), false, others, true);
        Some((id, target))
    }
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: AddressList,
{
    /// Keeps `id`, reachable at `address`, as a seed of the [`Rejoin`] rule
    /// ([`add_seed`](Self::add_seed)), or adds `address` to the seed's addresses (at most
    /// `max`). Returns whether anything changed: `false` without the rule, for the local node,
    /// or for an address already known.
    pub fn add_seed_address(&mut self, id: I, address: A::Address, max: usize) -> bool {
        let Some(state) = self.rejoin.as_mut() else {
            return false;
        };
        match state.seeds.iter_mut().find(|s| s.id == id) {
            Some(seed) => seed.addresses.add_address(address, max),
            None => self.add_seed(Entry::new(id, A::from_address(address), 0)),
        }
    }
}
