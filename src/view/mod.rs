//! The sans-IO core of Cyclon: a node's partial view and the shuffle rules.
//!
//! [`PartialView`] is a pure, deterministic state machine. It does no IO, reads no clock and
//! owns no random number generator: the caller passes one in, so a run is reproducible from a
//! seed. The libp2p [`Behaviour`](crate::Behaviour), the simulator and the property tests all
//! drive this very type.
//!
//! It is generic over the node identifier `I` ([`PeerId`](libp2p_identity::PeerId) in the
//! behaviour, a compact `u32` in the simulator) and over the per-entry address payload `A`
//! (`Vec<Multiaddr>` in the behaviour, `()` in the simulator).
//!
//! # The protocol (enhanced shuffling)
//!
//! Initiator P, once per cycle ([`PartialView::start_shuffle`]):
//! 1. increases by one the age of every entry in its view;
//! 2. selects Q, the oldest entry (ties broken at random), and `l - 1` other random entries,
//!    and removes Q from its view (the link P→Q is about to become Q→P);
//! 3. sends to Q those `l - 1` entries plus a fresh entry for itself with age 0.
//!
//! Responder Q ([`PartialView::answer_shuffle`]) replies with a random subset of at most `l`
//! of its entries (never P's), chosen before merging, and merges what it received. It does not
//! age its view.
//!
//! When the reply arrives, P merges it ([`PartialView::complete_shuffle`]). Merging discards
//! entries naming the local node and entries already in the view, then fills empty slots first
//! and then replaces entries among those sent to the partner (only those still in the view).
//! If Q never answers ([`PartialView::fail_shuffle`]), Q stays removed: that is how dead peers
//! leave views. A shuffle the local node could not even send (its own swarm refused the dial)
//! is withdrawn instead ([`PartialView::cancel_shuffle`]): Q goes back; and while only some
//! peers are reachable, [`PartialView::periodic_shuffle_among`] picks the oldest of them.
//!
//! In [`ShuffleMode::Basic`] the target is chosen uniformly at random instead of by age, as in
//! the paper's "basic shuffling" baseline.
//!
//! An opt-in [`Defence`] against colluding peers changes these rules: see the `seeded` and
//! `anchored` submodules.
//!
//! # Signed records: which payload wins
//!
//! An address payload may carry a signed record with a sequence number; which of two payloads
//! of one peer the view keeps is a rule of the merge too, described on [`EntryPayload`].
//!
//! # Rejoining (opt-in)
//!
//! With a [`Rejoin`] rule ([`PartialView::set_rejoin`]) the view also keeps seeds
//! ([`PartialView::add_seed`]) and the peers it lost to failed shuffles, and
//! [`PartialView::periodic_probe`] shuffles with one of them every few rounds (every round
//! while the view is empty). Without failures and seeds it never probes.

mod anchored;
mod defence;
mod entry;
mod merge;
mod params;
pub(crate) mod rank;
mod rejoin;
pub(crate) mod secure_params;
mod seeded;
mod shuffle;
#[cfg(test)]
mod tests;

use std::hash::Hash;

use rand::{Rng, RngExt};

#[cfg(any(test, feature = "sim"))]
pub(crate) use self::merge::MergeCounts;
#[cfg(test)]
pub(crate) use self::params::DEFAULT_MAX_AGE;
use self::{
    anchored::Anchored,
    defence::{DefenceState, parked},
    merge::MergeLog,
    rejoin::RejoinState,
    seeded::Seeded,
    shuffle::PendingShuffle,
};
pub use self::{
    anchored::AnchoredParams,
    defence::Defence,
    entry::{AddressList, Entry, EntryPayload},
    merge::{IgnoredEntries, MergeOutcome},
    params::{MAX_DEFENDED_VIEW_SIZE, ParamsError, ShuffleMode, ShuffleParams},
    rejoin::Rejoin,
    seeded::SeededParams,
    shuffle::{
        CancelledShuffle, CompletedShuffle, FailedShuffle, OutgoingShuffle, ShuffleId,
        StartShuffleError,
    },
};

/// What [`PartialView::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InsertOutcome {
    /// The entry was added to the view.
    Added,
    /// The view already holds this identifier; nothing changed.
    AlreadyPresent,
    /// The view already held this identifier; the address was added to its entry
    /// ([`PartialView::add_address`]).
    AddressAdded,
    /// The view is full; nothing changed.
    ViewFull,
    /// The entry names the local node; nothing changed.
    LocalNode,
}

/// A node's partial view of the overlay and the Cyclon shuffle rules over it.
///
/// Invariants, kept whatever the input: at most `view_size` entries, never an entry for the
/// local node, never two entries for one identifier, every age at most `max_age`.
#[derive(Debug, Clone)]
pub struct PartialView<I, A = ()> {
    local: I,
    params: ShuffleParams,
    entries: Vec<Entry<I, A>>,
    pending: Vec<PendingShuffle<I, A>>,
    /// A cleared buffer for the next pending shuffle's `sent` list, so that a view that
    /// shuffles one at a time allocates it once.
    spare_sent: Vec<I>,
    next_shuffle_id: u64,
    /// The most entries of a received message a merge considers: the message length
    /// ([`ShuffleParams::message_length`]) unless the simulator raised it. A `u32`, so that it
    /// fits in padding: the simulator keeps a million views in memory.
    message_length: u32,
    /// The eclipse defence's state (`None` without one: the paper's Cyclon).
    defence: Option<Box<DefenceState<I, A>>>,
    /// The [`Rejoin`] rule's lists, boxed so that a view without it stays small.
    rejoin: Option<Box<RejoinState<I, A>>>,
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: EntryPayload,
{
    /// Creates an empty view for the node `local`. A [`Defence`] needs private keys: with one,
    /// this fails with [`ParamsError::DefenceNeedsRng`]; use [`with_rng`](Self::with_rng).
    pub fn new(local: I, params: ShuffleParams) -> Result<Self, ParamsError> {
        params.validate()?;
        if let Defence::Secure(_) = params.defence {
            return Err(SECURE_REFUSED);
        }
        if params.defence.is_on() {
            return Err(ParamsError::DefenceNeedsRng);
        }
        Ok(Self::build(local, params, None))
    }

    /// Creates an empty view for the node `local`, drawing the private keys of the
    /// [`Defence`], if any, from `rng` (nothing is drawn without one). The keys decide which
    /// peers the defence prefers; they must stay secret, so draw them from a secure source
    /// in a real node.
    pub fn with_rng<R: Rng + ?Sized>(
        local: I,
        params: ShuffleParams,
        rng: &mut R,
    ) -> Result<Self, ParamsError> {
        params.validate()?;
        let defence = match params.defence {
            Defence::Off => None,
            Defence::Seeded(seeded) => Some(DefenceState::Seeded(Seeded::new(
                seeded,
                params.view_size,
                rng,
            ))),
            Defence::Anchored(anchored) => {
                Some(DefenceState::Anchored(Anchored::new(anchored, rng)))
            }
            Defence::Secure(_) => return Err(SECURE_REFUSED),
        };
        Ok(Self::build(local, params, defence.map(Box::new)))
    }

    fn build(local: I, params: ShuffleParams, defence: Option<Box<DefenceState<I, A>>>) -> Self {
        Self {
            local,
            params,
            entries: Vec::with_capacity(params.view_size),
            // Room for one shuffle at a time, allocated beside the entries: the simulator
            // keeps a million views, each with one shuffle pending at most.
            pending: Vec::with_capacity(1),
            spare_sent: Vec::with_capacity(params.shuffle_length - 1),
            next_shuffle_id: 0,
            message_length: saturating_u32(params.message_length()),
            defence,
            rejoin: None,
        }
    }

    /// The local node's identifier.
    pub fn local_peer_id(&self) -> &I {
        &self.local
    }

    /// The parameters the view was created with.
    pub fn params(&self) -> &ShuffleParams {
        &self.params
    }

    /// The entries, in no particular order.
    pub fn entries(&self) -> &[Entry<I, A>] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the view holds `view_size` entries.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.params.view_size
    }

    /// `n` distinct entries chosen uniformly at random (every entry if the view holds fewer),
    /// in random order: a sample of the overlay, as a peer-sampling service gives it. The view
    /// does not change.
    pub fn sample<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        n: usize,
    ) -> impl Iterator<Item = &Entry<I, A>> {
        let n = n.min(self.entries.len());
        rand::seq::index::sample(rng, self.entries.len(), n)
            .into_iter()
            .map(|i| &self.entries[i])
    }

    /// Whether the view holds an entry for `id`.
    pub fn contains(&self, id: &I) -> bool {
        self.position(id).is_some()
    }

    /// The entry for `id`, if any.
    pub fn get(&self, id: &I) -> Option<&Entry<I, A>> {
        self.position(id).map(|i| &self.entries[i])
    }

    /// Mutable access to the addresses of the entry for `id` (identifier and age stay
    /// untouchable, so the invariants hold).
    pub fn addresses_mut(&mut self, id: &I) -> Option<&mut A> {
        self.position(id).map(|i| &mut self.entries[i].addresses)
    }

    /// Adds an entry if there is room and it is new (bootstrap, or a peer learned out of band).
    /// Its age is clamped to `max_age`. Under [`Defence::Seeded`] it takes an empty slot;
    /// under [`Defence::Anchored`] the samplers hear of it too.
    pub fn insert(&mut self, entry: Entry<I, A>) -> InsertOutcome {
        if entry.id == self.local {
            return InsertOutcome::LocalNode;
        }
        if self.contains(&entry.id) {
            return InsertOutcome::AlreadyPresent;
        }
        let age = entry.age.min(self.params.max_age);
        let entry = Entry { age, ..entry };
        let decided = self
            .defence
            .as_deref_mut()
            .and_then(|defence| defence.insert(&self.local, &mut self.entries, &entry));
        if let Some(taken) = decided {
            return if taken {
                InsertOutcome::Added
            } else {
                InsertOutcome::ViewFull
            };
        }
        if self.is_full() {
            InsertOutcome::ViewFull
        } else {
            self.entries.push(entry);
            InsertOutcome::Added
        }
    }

    /// Removes the entry for `id`.
    pub fn remove(&mut self, id: &I) -> Option<Entry<I, A>> {
        let k = self.position(id)?;
        Some(match self.defence.as_deref_mut() {
            Some(defence) => defence.remove_at(&mut self.entries, k),
            None => self.entries.swap_remove(k),
        })
    }

    fn position(&self, id: &I) -> Option<usize> {
        self.entries.iter().position(|e| &e.id == id)
    }

    /// Index of the oldest entry, ties broken uniformly at random. The view is not empty.
    fn oldest_index<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let mut best = 0;
        let mut ties = 1u32;
        for (i, entry) in self.entries.iter().enumerate().skip(1) {
            let best_age = self.entries[best].age;
            if entry.age > best_age {
                best = i;
                ties = 1;
            } else if entry.age == best_age {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
        }
        best
    }

    /// Index of the target among the entries `reachable` accepts (at least one does): the
    /// oldest of them, ties broken uniformly at random, or a uniformly random one in basic
    /// mode.
    fn reachable_index<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        mode: ShuffleMode,
        reachable: &dyn Fn(&I) -> bool,
    ) -> usize {
        let candidates = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| reachable(&e.id));
        let mut best: Option<usize> = None;
        let mut ties = 0u32;
        for (i, entry) in candidates {
            let better = match (mode, best) {
                (_, None) => true,
                (ShuffleMode::Basic, Some(_)) => false,
                (ShuffleMode::Enhanced, Some(b)) => entry.age > self.entries[b].age,
            };
            let tie = match (mode, best) {
                (ShuffleMode::Basic, Some(_)) => true,
                (ShuffleMode::Enhanced, Some(b)) => entry.age == self.entries[b].age,
                (_, None) => false,
            };
            if better {
                best = Some(i);
                ties = 1;
            } else if tie {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some(i);
                }
            }
        }
        best.expect("the caller checked that an entry is reachable")
    }

    /// Moves `count` entries chosen uniformly at random among the first `among` to the front
    /// (a partial Fisher–Yates shuffle; the view is a set, so its order carries no meaning).
    fn move_random_to_front<R: Rng + ?Sized>(&mut self, rng: &mut R, count: usize, among: usize) {
        for i in 0..count {
            let j = rng.random_range(i..among);
            self.entries.swap(i, j);
        }
    }
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: AddressList,
{
    /// Learns that `id` is reachable at `address`: adds it to the entry for `id` (unless the
    /// entry already has it, holds `max` addresses or takes none from outside:
    /// [`InsertOutcome::AlreadyPresent`]), or inserts a new entry of age 0 with this one
    /// address if there is room.
    pub fn add_address(&mut self, id: I, address: A::Address, max: usize) -> InsertOutcome {
        if let Some(addresses) = self.addresses_mut(&id) {
            return if addresses.add_address(address, max) {
                InsertOutcome::AddressAdded
            } else {
                InsertOutcome::AlreadyPresent
            };
        }
        self.insert(Entry::new(id, A::from_address(address), 0))
    }

    /// Learns that `id`, if it is in the view, is reachable at `address` too (as
    /// [`add_address`](Self::add_address), but never inserts: an address heard of out of band
    /// does not bootstrap the view). Returns whether the entry took the address.
    pub fn learn_address(&mut self, id: &I, address: A::Address, max: usize) -> bool {
        self.addresses_mut(id)
            .is_some_and(|addresses| addresses.add_address(address, max))
    }
}

/// Why a [`PartialView`] refuses [`Defence::Secure`].
const SECURE_REFUSED: ParamsError = ParamsError::Defence(
    "Defence::Secure runs in secure::SecureView (its own state machine and wire protocol), not in PartialView",
);

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
