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
//! leave views.
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
mod rank;
mod seeded;

use std::{fmt, hash::Hash};

use rand::{Rng, RngExt};

use self::{anchored::Anchored, seeded::Seeded};
use crate::config::{Defence, ParamsError, Rejoin, ShuffleMode, ShuffleParams};

/// What the core needs to know of an entry's address payload `A`: whether it carries a signed
/// record, and that record's sequence number.
///
/// Seqs are compared only between payloads of the same identifier (their units are the
/// signer's: one implementation counts seconds, another nanoseconds). Two rules of the merge
/// use them, and neither changes who is in the view:
/// - a received entry for an identifier already in the view is still not taken, but when its
///   payload [supersedes](Self::supersedes) the held one (it carries a record, the held one
///   none or one with a lower seq), the held entry's payload becomes the received one, its age
///   unchanged ([`MergeOutcome::updated`](field@crate::MergeOutcome::updated));
/// - a record with a lower seq never replaces a held one, also when one merge replaces an
///   entry and then takes the same identifier back from later in the received entries.
///
/// Payloads without records (`()`, plain address lists) never compare: the paper's rules run
/// unchanged for them.
pub trait EntryPayload: Clone {
    /// The sequence number of the signed record this payload carries, or `None` (the default)
    /// if it carries none.
    fn record_seq(&self) -> Option<u64> {
        None
    }

    /// Whether `self`, received, should replace `held`, the payload in the view for the same
    /// identifier: `self` carries a record, and `held` none or one with a lower seq.
    fn supersedes(&self, held: &Self) -> bool {
        match (self.record_seq(), held.record_seq()) {
            (Some(received), Some(held)) => received > held,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// No addresses at all (the simulator's payload): never a record.
impl EntryPayload for () {}

/// Plain address lists: never a record.
impl<T: Clone> EntryPayload for Vec<T> {}

/// Address payloads that learn single addresses out of band ([`PartialView::add_address`]).
pub trait AddressList: EntryPayload {
    /// One address.
    type Address;

    /// A payload holding just `address`.
    fn from_address(address: Self::Address) -> Self;

    /// Adds `address` unless the payload already has it or holds `max` addresses (or takes no
    /// addresses from outside, as a payload fixed by a signature); returns whether it did.
    fn add_address(&mut self, address: Self::Address, max: usize) -> bool;
}

impl<T: Clone + PartialEq> AddressList for Vec<T> {
    type Address = T;

    fn from_address(address: T) -> Self {
        vec![address]
    }

    fn add_address(&mut self, address: T, max: usize) -> bool {
        if self.len() < max && !self.contains(&address) {
            self.push(address);
            true
        } else {
            false
        }
    }
}

/// One entry of a partial view: a neighbour, how to reach it, and how old the entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry<I, A = ()> {
    id: I,
    addresses: A,
    age: u32,
}

impl<I, A> Entry<I, A> {
    /// Creates an entry.
    pub fn new(id: I, addresses: A, age: u32) -> Self {
        Self { id, addresses, age }
    }

    /// The neighbour's identifier.
    pub fn id(&self) -> &I {
        &self.id
    }

    /// How to reach the neighbour.
    pub fn addresses(&self) -> &A {
        &self.addresses
    }

    /// The entry's age in shuffle rounds of the node that holds it.
    pub fn age(&self) -> u32 {
        self.age
    }

    /// Splits the entry into identifier, addresses and age.
    pub fn into_parts(self) -> (I, A, u32) {
        (self.id, self.addresses, self.age)
    }
}

/// Identifies one shuffle started by [`PartialView::start_shuffle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShuffleId(u64);

impl ShuffleId {
    /// The raw number (unique per view, increasing).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ShuffleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A shuffle the local node initiates: send `request` to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingShuffle<I, A> {
    /// Identifies the shuffle in [`PartialView::complete_shuffle`] and
    /// [`PartialView::fail_shuffle`].
    pub id: ShuffleId,
    /// The neighbour to shuffle with, as its entry was when the shuffle started.
    pub target: Entry<I, A>,
    /// Whether the target left the view when the shuffle started. It does under plain
    /// Cyclon (the link P→Q is about to become Q→P); under a [`Defence`] it may stay until the
    /// shuffle fails; a [`Rejoin`] probe's target was not in the view.
    pub target_left: bool,
    /// The entries to send: first the fresh entry for the local node (age 0), then up to
    /// `l - 1` entries of the view.
    pub request: Vec<Entry<I, A>>,
    /// Whether this is a [`Rejoin`] probe ([`PartialView::periodic_probe`]): its target was a
    /// seed or a lost peer, not a view entry, so no entry left the view.
    pub probe: bool,
}

/// How a merge of received entries changed the view: the net change, from the view before
/// the merge to the view after it.
///
/// One merge can replace a sent entry and then take the same peer back from later in the
/// received entries; that peer did not leave the view, so it is neither in `added` nor in
/// `removed`, but in `refreshed` (its entry is now the received one).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeOutcome<I> {
    /// Identifiers that entered the view, in the order they were taken.
    pub added: Vec<I>,
    /// Identifiers that left the view, replaced by received entries.
    pub removed: Vec<I>,
    /// Identifiers that stayed in the view with a received entry in place of their own.
    pub refreshed: Vec<I>,
    /// Identifiers already in the view whose payload a received one superseded (a newer
    /// signed record, see [`EntryPayload::supersedes`]); the entry and its age stayed. Never
    /// for payloads without records.
    pub updated: Vec<I>,
    /// Received entries that were not taken, by reason.
    pub ignored: IgnoredEntries,
}

impl<I> Default for MergeOutcome<I> {
    fn default() -> Self {
        Self {
            added: Vec::new(),
            removed: Vec::new(),
            refreshed: Vec::new(),
            updated: Vec::new(),
            ignored: IgnoredEntries::default(),
        }
    }
}

impl<I: PartialEq> MergeOutcome<I> {
    /// Finishes the net change (added, removed and refreshed are recorded net as the merge
    /// goes): a peer updated in the same merge that added, removed or refreshed it is reported
    /// as that only.
    fn into_net_change(mut self) -> Self {
        let (added, removed, refreshed) = (&self.added, &self.removed, &self.refreshed);
        self.updated
            .retain(|id| !added.contains(id) && !removed.contains(id) && !refreshed.contains(id));
        self
    }
}

/// Counts of received entries that a merge did not take, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IgnoredEntries {
    /// Entries naming the local node.
    pub local: usize,
    /// Entries for a neighbour already in the view (or given twice).
    pub duplicate: usize,
    /// Entries beyond the shuffle length `l`.
    pub excess: usize,
    /// Entries that found neither an empty slot nor a sent entry to replace (under
    /// [`Defence::Seeded`]: entries that ranked above every slot's occupant).
    pub no_room: usize,
    /// Entries for peers a defence saw fail to answer recently.
    pub dead: usize,
    /// Entries of inbound shuffles beyond [`Defence::Anchored`]'s per-cycle budget.
    pub over_budget: usize,
}

impl IgnoredEntries {
    /// All ignored entries.
    pub fn total(&self) -> usize {
        self.local + self.duplicate + self.excess + self.no_room + self.dead + self.over_budget
    }

    /// Adds `other`'s counts to `self`.
    pub fn add(&mut self, other: &IgnoredEntries) {
        self.local += other.local;
        self.duplicate += other.duplicate;
        self.excess += other.excess;
        self.no_room += other.no_room;
        self.dead += other.dead;
        self.over_budget += other.over_budget;
    }
}

/// What a merge did, as counts only: the allocation-free counterpart of [`MergeOutcome`]
/// (counted step by step, not as the net change), for the simulator.
#[cfg(any(test, feature = "sim"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MergeCounts {
    /// Received entries that entered the view.
    pub added: usize,
    /// Entries that left the view, replaced by received entries.
    pub replaced: usize,
    /// Held entries whose payload a received one superseded.
    pub updated: usize,
    /// Received entries that were not taken, by reason.
    pub ignored: IgnoredEntries,
}

/// Where a merge records what it does: identifiers ([`MergeOutcome`]) or counts
/// (`MergeCounts`). The merge rules themselves exist once, in `PartialView::merge`.
trait MergeRecord<I> {
    fn added(&mut self, id: &I);
    fn replaced(&mut self, id: I);
    fn updated(&mut self, id: &I);
    fn ignored(&mut self) -> &mut IgnoredEntries;
}

/// Records the net change as the merge goes: a peer removed and taken back was refreshed; a
/// peer taken and removed again by the same merge (a defence's slot can be won twice) did not
/// change the view.
impl<I: Clone + PartialEq> MergeRecord<I> for MergeOutcome<I> {
    fn added(&mut self, id: &I) {
        match self.removed.iter().position(|r| r == id) {
            Some(k) => self.refreshed.push(self.removed.remove(k)),
            None => self.added.push(id.clone()),
        }
    }
    fn replaced(&mut self, id: I) {
        // A peer updated and then removed by the same merge was removed.
        self.updated.retain(|u| *u != id);
        if let Some(k) = self.added.iter().position(|a| *a == id) {
            self.added.remove(k);
        } else if let Some(k) = self.refreshed.iter().position(|r| *r == id) {
            self.removed.push(self.refreshed.remove(k));
        } else {
            self.removed.push(id);
        }
    }
    fn updated(&mut self, id: &I) {
        if !self.updated.contains(id) {
            self.updated.push(id.clone());
        }
    }
    fn ignored(&mut self) -> &mut IgnoredEntries {
        &mut self.ignored
    }
}

#[cfg(any(test, feature = "sim"))]
impl<I> MergeRecord<I> for MergeCounts {
    fn added(&mut self, _: &I) {
        self.added += 1;
    }
    fn replaced(&mut self, _: I) {
        self.replaced += 1;
    }
    fn updated(&mut self, _: &I) {
        self.updated += 1;
    }
    fn ignored(&mut self) -> &mut IgnoredEntries {
        &mut self.ignored
    }
}

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

/// The outcome of a shuffle the local node started and that has now ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompletedShuffle<I> {
    /// The neighbour the shuffle was with.
    pub target: I,
    /// How many entries were sent (including the local node's own entry).
    pub sent: usize,
    /// How the merge of the reply changed the view.
    pub merge: MergeOutcome<I>,
}

/// A shuffle the local node started that ended without a reply
/// ([`PartialView::fail_shuffle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedShuffle<I> {
    /// The neighbour the shuffle was with.
    pub target: I,
    /// Whether the failure took the target out of the view: under a [`Defence`] the target
    /// may stay in the view while the shuffle runs, and leaves when it fails. Under plain
    /// Cyclon it left when the shuffle started ([`OutgoingShuffle::target_left`]), so this is
    /// `false`.
    pub removed: bool,
}

/// Why no shuffle was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum StartShuffleError {
    /// The view is empty: there is nobody to shuffle with.
    #[error("the view is empty: there is no peer to shuffle with")]
    EmptyView,
    /// A periodic shuffle while the local node has no address to advertise: the partner would
    /// drop its own entry, and the shuffle would only cost it a link (possibly its only one).
    #[error("the local peer has no address to advertise yet")]
    NoLocalAddress,
}

#[derive(Debug, Clone)]
struct PendingShuffle<I, A> {
    id: ShuffleId,
    /// The target's entry as it was when the shuffle started: kept in a saved view while the
    /// shuffle runs ([`PartialView::in_flight`]), and with [`Rejoin`] remembered if it fails.
    target: Entry<I, A>,
    /// Whether the target left the view when the shuffle started.
    target_left: bool,
    /// Identifiers of the view entries sent (the local node's entry excluded).
    sent: Vec<I>,
    /// A [`Rejoin`] probe.
    probe: bool,
}

/// The lists a [`Rejoin`] rule keeps beside the view.
#[derive(Debug, Clone)]
struct RejoinState<I, A> {
    rule: Rejoin,
    /// Configured peers, never forgotten.
    seeds: Vec<Entry<I, A>>,
    /// Peers that left the view through a failed shuffle, the oldest loss first; at most
    /// `rule.remember`.
    lost: Vec<Entry<I, A>>,
    /// Periodic rounds left before the next probe.
    countdown: u32,
}

/// The private state of an eclipse defence.
#[derive(Debug, Clone)]
enum DefenceState<I, A> {
    Seeded(Seeded<I, A>),
    Anchored(Anchored<I, A>),
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
    /// The most received entries a merge considers (`l` unless changed). A `u32`, so that
    /// it fits in padding: the simulator keeps a million views in memory.
    receive_limit: u32,
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
            receive_limit: saturating_u32(params.message_length()),
            defence,
            rejoin: None,
        }
    }

    /// Turns on the [`Rejoin`] rule (or changes it, keeping the seeds and lost peers; a smaller
    /// [`Rejoin::remember`] forgets the oldest losses).
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

    /// Delays the next [`Rejoin`] probe by `rounds` (at most `probe_every - 1`): the simulator
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

    /// How many entries of a received request or reply a merge considers at most; the rest
    /// are counted as [`IgnoredEntries::excess`]. The shuffle length `l` unless the simulator
    /// changed it.
    #[cfg(test)]
    fn receive_limit(&self) -> usize {
        self.receive_limit as usize
    }

    /// Sets [`receive_limit`](Self::receive_limit). The default, `l`, is the protocol's bound
    /// and what the [`Behaviour`](crate::Behaviour) uses; a larger limit only lets more
    /// received entries compete for the same slots (a merge still fills empty slots and
    /// replaces entries sent in that exchange, nothing else), which the simulator uses to
    /// measure what the bound is worth. 0 makes merges take nothing.
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn set_receive_limit(&mut self, limit: usize) {
        self.receive_limit = saturating_u32(limit);
    }

    /// The local node's identifier.
    pub fn local_id(&self) -> &I {
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

    /// Iterates over the entries, in no particular order.
    pub fn iter(&self) -> std::slice::Iter<'_, Entry<I, A>> {
        self.entries.iter()
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

    /// Number of shuffles started and neither completed nor failed yet.
    pub fn pending_shuffles(&self) -> usize {
        self.pending.len()
    }

    /// The target of a pending shuffle.
    pub fn pending_target(&self, id: ShuffleId) -> Option<&I> {
        self.pending
            .iter()
            .find(|p| p.id == id)
            .map(|p| &p.target.id)
    }

    /// The entries that are out of the view only because a shuffle with them is in flight:
    /// the targets that left the view when their shuffle started
    /// ([`OutgoingShuffle::target_left`]) and have not come back, as their entries were then
    /// (with the age they had). Nobody has found them dead; the shuffle's outcome decides
    /// whether they stay out (it failed) or the link has turned around (it completed). A
    /// target that stays in the view while its shuffle runs (under a [`Defence`]) and a
    /// [`Rejoin`] probe's target are not here.
    pub fn in_flight(&self) -> impl Iterator<Item = &Entry<I, A>> {
        self.pending.iter().enumerate().filter_map(|(k, p)| {
            // Of two shuffles in flight with one peer, the later one's entry.
            let latest = !self.pending[k + 1..]
                .iter()
                .any(|q| q.target.id == p.target.id);
            (p.target_left && latest && !self.contains(&p.target.id)).then_some(&p.target)
        })
    }

    /// What a saved view holds, so that a restart starts from it: the view's entries, then the
    /// [in-flight](Self::in_flight) targets while there is room (at most `view_size` entries
    /// in all). The entries sent in a shuffle in flight stay in the view until a reply
    /// replaces them, so they are saved too.
    pub fn export(&self) -> impl Iterator<Item = &Entry<I, A>> {
        self.entries
            .iter()
            .chain(self.in_flight())
            .take(self.params.view_size)
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
        match self.defence.as_deref_mut() {
            Some(DefenceState::Seeded(seeded)) => {
                return if seeded.insert(&mut self.entries, entry) {
                    InsertOutcome::Added
                } else {
                    InsertOutcome::ViewFull
                };
            }
            Some(DefenceState::Anchored(anchored)) => anchored.observe(&self.local, &entry),
            None => {}
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
            Some(DefenceState::Seeded(seeded)) => seeded.remove_at(&mut self.entries, k),
            Some(DefenceState::Anchored(anchored)) => {
                anchored.unpin(id);
                self.entries.swap_remove(k)
            }
            None => self.entries.swap_remove(k),
        })
    }

    /// Starts a shuffle (steps 1–3 of the protocol): ages the view, selects and removes the
    /// target (it has left the view when this returns, unless a [`Defence`] keeps it:
    /// [`OutgoingShuffle::target_left`]), and builds the request with a fresh entry for the
    /// local node reachable at `local_addresses`. Fails with
    /// [`StartShuffleError::EmptyView`] when there is nobody to shuffle with.
    ///
    /// The caller must end every returned shuffle with [`complete_shuffle`](Self::complete_shuffle)
    /// or [`fail_shuffle`](Self::fail_shuffle).
    pub fn start_shuffle<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
    ) -> Result<OutgoingShuffle<I, A>, StartShuffleError> {
        let mut request = Vec::with_capacity(self.params.shuffle_length);
        let (id, target) = self
            .start_shuffle_into(rng, local_addresses, &mut request)
            .ok_or(StartShuffleError::EmptyView)?;
        Ok(self.outgoing(id, target, request))
    }

    /// The started shuffle `id` as the caller sees it.
    fn outgoing(
        &self,
        id: ShuffleId,
        target: Entry<I, A>,
        request: Vec<Entry<I, A>>,
    ) -> OutgoingShuffle<I, A> {
        let pending = self.pending.iter().find(|p| p.id == id);
        OutgoingShuffle {
            id,
            target,
            target_left: pending.is_some_and(|p| p.target_left),
            request,
            probe: pending.is_some_and(|p| p.probe),
        }
    }

    /// The shuffle of a periodic schedule (once per cycle): [`start_shuffle`](Self::start_shuffle),
    /// unless the local node has no address to advertise (`local_addresses` is `None`). Then
    /// the round is skipped with [`StartShuffleError::NoLocalAddress`] and nothing changes:
    /// the partner would drop an entry nobody can dial, and the local node would only lose a
    /// link (possibly its only one).
    pub fn periodic_shuffle<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: Option<A>,
    ) -> Result<OutgoingShuffle<I, A>, StartShuffleError> {
        match local_addresses {
            Some(addresses) => self.start_shuffle(rng, addresses),
            None if self.is_empty() => Err(StartShuffleError::EmptyView),
            None => Err(StartShuffleError::NoLocalAddress),
        }
    }

    /// [`start_shuffle`](Self::start_shuffle) writing the request into `request` (cleared
    /// first; left empty when the view is empty) instead of a new vector, and returning the
    /// shuffle's id and target. Same rules, same random choices; it allocates nothing once
    /// `request` and the view's internal buffers have grown (for the simulator).
    pub(crate) fn start_shuffle_into<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
        request: &mut Vec<Entry<I, A>>,
    ) -> Option<(ShuffleId, Entry<I, A>)> {
        request.clear();
        if self.entries.is_empty() {
            return None;
        }
        match self.defence.as_deref_mut() {
            Some(DefenceState::Seeded(_)) => {
                return Some(self.seeded_start_into(rng, local_addresses, request));
            }
            Some(DefenceState::Anchored(anchored)) => anchored.start_cycle(&mut self.entries),
            None => {}
        }
        let max_age = self.params.max_age;
        for entry in &mut self.entries {
            entry.age = entry.age.saturating_add(1).min(max_age);
        }
        let target_index = match self.params.mode {
            ShuffleMode::Enhanced => self.oldest_index(rng),
            ShuffleMode::Basic => rng.random_range(0..self.entries.len()),
        };
        // An anchor (parked at the end) stays in the view when it is the target.
        let target_left = target_index < self.swappable_len();
        let target = if target_left {
            let target = self.entries.swap_remove(target_index);
            if let Some(DefenceState::Anchored(anchored)) = self.defence.as_deref_mut() {
                anchored.park(&mut self.entries);
            }
            target
        } else {
            self.entries[target_index].clone()
        };
        let others = self.fill_request(rng, local_addresses, request);
        let id = self.push_pending(target.clone(), target_left, others, false);
        Some((id, target))
    }

    /// Step 3: the request is a fresh entry for the local node and `l - 1` random view
    /// entries (never an anchor), moved to the front of the view. Returns how many view
    /// entries it holds.
    fn fill_request<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
        request: &mut Vec<Entry<I, A>>,
    ) -> usize {
        let swappable = self.swappable_len();
        let others = (self.params.shuffle_length - 1).min(swappable);
        self.move_random_to_front(rng, others, swappable);
        request.push(Entry::new(self.local.clone(), local_addresses, 0));
        request.extend_from_slice(&self.entries[..others]);
        others
    }

    /// Records a new pending shuffle with `target` that sent the first `others` entries.
    fn push_pending(
        &mut self,
        target: Entry<I, A>,
        target_left: bool,
        others: usize,
        probe: bool,
    ) -> ShuffleId {
        let id = ShuffleId(self.next_shuffle_id);
        self.next_shuffle_id += 1;
        let mut sent = std::mem::take(&mut self.spare_sent);
        sent.extend(self.entries[..others].iter().map(|e| e.id.clone()));
        self.pending.push(PendingShuffle {
            id,
            target,
            target_left,
            sent,
            probe,
        });
        id
    }

    /// The [`Rejoin`] probe of a periodic round, called once per round after
    /// [`periodic_shuffle`](Self::periodic_shuffle): `None` without the rule, without an
    /// address to advertise, between probes, and when every seed and lost peer is in the view
    /// or already being shuffled with. Otherwise a shuffle with one of them, chosen at random,
    /// that takes nobody out of the view ([`OutgoingShuffle::probe`]). A probe is made every
    /// [`Rejoin::probe_every`] rounds, and in every round in which the view is empty. Nothing is
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
        if matches!(self.defence.as_deref(), Some(DefenceState::Seeded(_))) {
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

    /// Ends the shuffle `id` with the partner's reply (steps 4–6): merges `response`, replacing
    /// only entries sent in the request that are still in the view. Returns `None` (and changes
    /// nothing) if `id` is not pending.
    pub fn complete_shuffle(
        &mut self,
        id: ShuffleId,
        response: impl IntoIterator<Item = Entry<I, A>>,
    ) -> Option<CompletedShuffle<I>> {
        let mut merge = MergeOutcome::default();
        let (target, sent) = self.complete_pending(id, response, &mut merge)?;
        Some(CompletedShuffle {
            target,
            sent: sent + 1,
            merge: merge.into_net_change(),
        })
    }

    /// [`complete_shuffle`](Self::complete_shuffle) reporting the merge as counts only: same
    /// rules, no allocation (for the simulator). Returns `None` (and changes nothing) if `id`
    /// is not pending.
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn complete_shuffle_counted(
        &mut self,
        id: ShuffleId,
        response: impl IntoIterator<Item = Entry<I, A>>,
    ) -> Option<MergeCounts> {
        let mut counts = MergeCounts::default();
        self.complete_pending(id, response, &mut counts)?;
        Some(counts)
    }

    /// Ends the pending shuffle `id` by merging `response`; returns its target and the number
    /// of view entries it sent.
    fn complete_pending(
        &mut self,
        id: ShuffleId,
        response: impl IntoIterator<Item = Entry<I, A>>,
        record: &mut impl MergeRecord<I>,
    ) -> Option<(I, usize)> {
        let index = self.pending.iter().position(|p| p.id == id)?;
        let mut pending = self.pending.swap_remove(index);
        let sent = pending.sent.len();
        let target = pending.target.id;
        if pending.probe
            && let Some(state) = self.rejoin.as_mut()
        {
            // The probed peer answered: it is reachable and knows us again.
            state.lost.retain(|e| e.id != target);
        }
        if matches!(self.defence.as_deref(), Some(DefenceState::Seeded(_))) {
            self.seeded_complete(&target, response, record);
            self.recycle_sent(pending.sent);
            return Some((target, sent));
        }
        let mut state = self.defence.take();
        match state.as_deref_mut() {
            Some(DefenceState::Anchored(anchored)) => {
                // A pinned target stayed; it answered, so it is young again.
                if let Some(k) = self.position(&target) {
                    self.entries[k].age = 0;
                }
                pending.sent.retain(|id| self.contains(id));
                // The payloads held before the merge: an anchor the merge displaces and
                // `refresh` brings back never carries an older record than the view held.
                let held: Vec<(I, A)> = self
                    .entries
                    .iter()
                    .map(|e| (e.id.clone(), e.addresses.clone()))
                    .collect();
                let local = self.local.clone();
                self.merge(response, pending.sent.iter(), record, |entry| {
                    anchored.observe(&local, entry)
                });
                let (view_size, max_age) = (self.params.view_size, self.params.max_age);
                anchored.refresh(&mut self.entries, &held, view_size, max_age, record);
            }
            _ => {
                // Only sent entries still in the view now may be replaced: a sent peer that
                // left the view meanwhile and comes back in this very response is a new
                // entry, not one we sent.
                pending.sent.retain(|id| self.contains(id));
                self.merge(response, pending.sent.iter(), record, |_| {});
            }
        }
        self.defence = state;
        self.recycle_sent(pending.sent);
        Some((target, sent))
    }

    fn recycle_sent(&mut self, mut sent: Vec<I>) {
        if self.spare_sent.capacity() == 0 {
            sent.clear();
            self.spare_sent = sent;
        }
    }

    /// Ends the shuffle `id` without a reply (step 7): the target stays out of the view (under
    /// a [`Defence`], where it may have stayed, it leaves now and is not taken back for a
    /// while: [`FailedShuffle::removed`]). With [`Rejoin`], the target of a regular shuffle is
    /// remembered as lost (unless it is a seed); a failed probe changes nothing. Returns
    /// `None` (and changes nothing) if `id` is not pending.
    pub fn fail_shuffle(&mut self, id: ShuffleId) -> Option<FailedShuffle<I>> {
        let index = self.pending.iter().position(|p| p.id == id)?;
        let pending = self.pending.swap_remove(index);
        self.recycle_sent(pending.sent);
        let target = pending.target;
        let removed = match self.defence.as_deref_mut() {
            Some(DefenceState::Seeded(seeded)) => seeded.fail(&mut self.entries, &target.id),
            Some(DefenceState::Anchored(anchored)) => {
                anchored.fail(&target.id);
                let k = self.entries.iter().position(|e| e.id == target.id);
                k.map(|k| self.entries.swap_remove(k)).is_some()
            }
            None => false,
        };
        let id = target.id.clone();
        if !pending.probe
            && let Some(state) = self.rejoin.as_mut()
            && !state.seeds.iter().any(|s| s.id == target.id)
            && state.rule.remember > 0
        {
            state.lost.retain(|e| e.id != target.id);
            if state.lost.len() >= state.rule.remember {
                state.lost.remove(0);
            }
            state.lost.push(target);
        }
        Some(FailedShuffle {
            target: id,
            removed,
        })
    }

    /// Answers a shuffle request from `from`: picks a random subset of at most `l` entries
    /// (never `from`'s own), then merges `request`, replacing only entries of that reply.
    /// The view is not aged. Returns the reply and what the merge did.
    pub fn answer_shuffle<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: &I,
        request: impl IntoIterator<Item = Entry<I, A>>,
    ) -> (Vec<Entry<I, A>>, MergeOutcome<I>) {
        let mut reply = Vec::with_capacity(self.params.message_length());
        let mut merge = MergeOutcome::default();
        self.answer(rng, from, request, &mut reply, &mut merge);
        (reply, merge.into_net_change())
    }

    /// [`answer_shuffle`](Self::answer_shuffle) writing the reply into `reply` (cleared first)
    /// and reporting the merge as counts only. Same rules, same random choices; it allocates
    /// nothing once `reply` has grown (for the simulator).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn answer_shuffle_into<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: &I,
        request: impl IntoIterator<Item = Entry<I, A>>,
        reply: &mut Vec<Entry<I, A>>,
    ) -> MergeCounts {
        let mut counts = MergeCounts::default();
        self.answer(rng, from, request, reply, &mut counts);
        counts
    }

    fn answer<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: &I,
        request: impl IntoIterator<Item = Entry<I, A>>,
        reply: &mut Vec<Entry<I, A>>,
        record: &mut impl MergeRecord<I>,
    ) {
        if matches!(self.defence.as_deref(), Some(DefenceState::Seeded(_))) {
            return self.seeded_answer(rng, from, request, reply, record);
        }
        let mut state = self.defence.take();
        let mut over_budget = false;
        if let Some(DefenceState::Anchored(anchored)) = state.as_deref_mut() {
            anchored.park(&mut self.entries);
            over_budget = anchored.over_budget();
        }
        // Move `from`'s entry, if any, to the end so the random choice can skip it (anchors
        // are parked after the eligible entries and never chosen).
        let mut eligible = self.entries.len() - parked(&state);
        if let Some(i) = self.position(from).filter(|&i| i < eligible) {
            eligible -= 1;
            self.entries.swap(i, eligible);
        }
        let count = self.params.shuffle_length.min(eligible);
        self.move_random_to_front(rng, count, eligible);
        reply.clear();
        reply.extend_from_slice(&self.entries[..count]);
        match state.as_deref_mut() {
            Some(DefenceState::Anchored(_)) if over_budget => {
                let received = request.into_iter().count();
                let limit = self.receive_limit as usize;
                record.ignored().over_budget += received.min(limit);
                record.ignored().excess += received.saturating_sub(limit);
            }
            Some(DefenceState::Anchored(anchored)) => {
                let local = self.local.clone();
                // The push stream: only the authenticated initiator's own entry.
                self.merge(request, reply.iter().map(|e| &e.id), record, |entry| {
                    if entry.id == *from {
                        anchored.observe(&local, entry)
                    } else {
                        anchored.refresh_payload(entry)
                    }
                });
            }
            _ => self.merge(request, reply.iter().map(|e| &e.id), record, |_| {}),
        }
        self.defence = state;
    }

    /// How many entries Cyclon's random choices run over: all of them, except the anchors of
    /// [`Defence::Anchored`] (parked at the end).
    fn swappable_len(&self) -> usize {
        self.entries.len() - parked(&self.defence)
    }

    /// Merges received entries (rules 5–6): at most `l` (the receive limit) are considered;
    /// those naming the local node or already present are discarded (a held entry's payload
    /// is updated when the received one supersedes it); the rest fill empty slots first, then
    /// replace entries among `replaceable` that are still in the view.
    /// Every considered entry is shown to `observe` first (the anchored defence's samplers).
    fn merge<'a>(
        &mut self,
        received: impl IntoIterator<Item = Entry<I, A>>,
        mut replaceable: impl Iterator<Item = &'a I>,
        outcome: &mut impl MergeRecord<I>,
        mut observe: impl FnMut(&Entry<I, A>),
    ) where
        I: 'a,
    {
        // Payloads with a record that this merge replaced: should the same peer come back
        // later in `received` with an older record, it keeps the newer one. Stays empty (and
        // unallocated) for payloads without records.
        let mut displaced: Vec<(I, A)> = Vec::new();
        for (n, entry) in received.into_iter().enumerate() {
            if n >= self.receive_limit as usize {
                outcome.ignored().excess += 1;
                continue;
            }
            observe(&entry);
            if entry.id == self.local {
                outcome.ignored().local += 1;
                continue;
            }
            if let Some(i) = self.position(&entry.id) {
                let held = &mut self.entries[i];
                if entry.addresses.supersedes(&held.addresses) {
                    held.addresses = entry.addresses;
                    outcome.updated(&held.id);
                } else {
                    outcome.ignored().duplicate += 1;
                }
                continue;
            }
            let mut entry = Entry {
                age: entry.age.min(self.params.max_age),
                ..entry
            };
            if let Some(k) = displaced.iter().position(|(id, _)| *id == entry.id) {
                let (_, newer) = displaced.swap_remove(k);
                if !entry.addresses.supersedes(&newer) {
                    entry.addresses = newer;
                }
            }
            if !self.is_full() {
                outcome.added(&entry.id);
                self.entries.push(entry);
                continue;
            }
            let slot = replaceable.find_map(|id| self.position(id));
            match slot {
                Some(i) => {
                    outcome.added(&entry.id);
                    let old = std::mem::replace(&mut self.entries[i], entry);
                    if old.addresses.record_seq().is_some() {
                        displaced.push((old.id.clone(), old.addresses));
                    }
                    outcome.replaced(old.id);
                }
                None => outcome.ignored().no_room += 1,
            }
        }
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

    /// Moves `count` entries chosen uniformly at random among the first `among` to the front
    /// (a partial Fisher–Yates shuffle; the view is a set, so its order carries no meaning).
    fn move_random_to_front<R: Rng + ?Sized>(&mut self, rng: &mut R, count: usize, among: usize) {
        for i in 0..count {
            let j = rng.random_range(i..among);
            self.entries.swap(i, j);
        }
    }
}

/// Anchors parked at the end of the entries under [`Defence::Anchored`] (0 otherwise).
fn parked<I, A>(state: &Option<Box<DefenceState<I, A>>>) -> usize {
    match state.as_deref() {
        Some(DefenceState::Anchored(anchored)) => anchored.parked(),
        _ => 0,
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

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::config::DEFAULT_MAX_AGE;

    fn params(c: usize, l: usize) -> ShuffleParams {
        ShuffleParams {
            view_size: c,
            shuffle_length: l,
            ..ShuffleParams::default()
        }
    }

    fn view_with(local: u32, c: usize, l: usize, ids: &[(u32, u32)]) -> PartialView<u32> {
        let mut view = PartialView::new(local, params(c, l)).unwrap();
        for &(id, age) in ids {
            assert_eq!(view.insert(Entry::new(id, (), age)), InsertOutcome::Added);
        }
        view
    }

    fn ids(view: &PartialView<u32>) -> Vec<u32> {
        let mut ids: Vec<u32> = view.iter().map(|e| *e.id()).collect();
        ids.sort_unstable();
        ids
    }

    fn age_of(view: &PartialView<u32>, id: u32) -> u32 {
        view.get(&id).unwrap().age()
    }

    #[test]
    fn params_are_validated() {
        assert_eq!(params(0, 1).validate(), Err(ParamsError::ZeroViewSize));
        assert_eq!(params(5, 0).validate(), Err(ParamsError::ZeroShuffleLength));
        assert!(matches!(
            params(5, 6).validate(),
            Err(ParamsError::ShuffleLengthExceedsViewSize { .. })
        ));
        assert!(PartialView::<u32>::new(0, params(5, 6)).is_err());
        assert!(params(5, 5).validate().is_ok());
    }

    #[test]
    fn insert_refuses_self_duplicates_and_overflow() {
        let mut view = view_with(0, 2, 1, &[(1, 0)]);
        assert_eq!(view.insert(Entry::new(0, (), 0)), InsertOutcome::LocalNode);
        assert_eq!(
            view.insert(Entry::new(1, (), 0)),
            InsertOutcome::AlreadyPresent
        );
        assert_eq!(view.insert(Entry::new(2, (), 0)), InsertOutcome::Added);
        assert_eq!(view.insert(Entry::new(3, (), 0)), InsertOutcome::ViewFull);
        assert_eq!(ids(&view), vec![1, 2]);
    }

    #[test]
    fn initiator_ages_view_picks_oldest_and_sends_itself_fresh() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut view = view_with(0, 10, 3, &[(1, 0), (2, 7), (3, 2), (4, 1)]);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.id(), 2);
        assert_eq!(
            shuffle.target.age(),
            8,
            "the target was aged before selection"
        );
        assert!(!view.contains(&2), "the target leaves the view");
        assert_eq!(shuffle.request.len(), 3);
        assert_eq!(shuffle.request[0], Entry::new(0, (), 0));
        for sent in &shuffle.request[1..] {
            assert!(view.contains(sent.id()), "sent entries stay until replaced");
        }
        assert_eq!(age_of(&view, 1), 1);
        assert_eq!(age_of(&view, 3), 3);
        assert_eq!(age_of(&view, 4), 2);
    }

    #[test]
    fn oldest_ties_are_broken_at_random() {
        let mut seen = [0usize; 3];
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut view = view_with(0, 10, 1, &[(1, 5), (2, 5), (3, 5)]);
            let target = *view.start_shuffle(&mut rng, ()).unwrap().target.id();
            seen[target as usize - 1] += 1;
        }
        for count in seen {
            assert!(
                (70..=130).contains(&count),
                "tie-break not uniform: {seen:?}"
            );
        }
    }

    #[test]
    fn basic_mode_picks_random_target() {
        let mut counts = [0usize; 4];
        for seed in 0..400 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut view = PartialView::new(
                0u32,
                ShuffleParams {
                    mode: ShuffleMode::Basic,
                    ..params(10, 2)
                },
            )
            .unwrap();
            for (id, age) in [(1, 100), (2, 0), (3, 0), (4, 0)] {
                view.insert(Entry::new(id, (), age));
            }
            counts[*view.start_shuffle(&mut rng, ()).unwrap().target.id() as usize - 1] += 1;
        }
        assert!(
            counts.iter().all(|&c| (60..=140).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn empty_view_does_not_shuffle() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut view = view_with(0, 3, 1, &[]);
        assert_eq!(
            view.start_shuffle(&mut rng, ()).unwrap_err(),
            StartShuffleError::EmptyView
        );
        assert_eq!(view.pending_shuffles(), 0);
    }

    #[test]
    fn responder_replies_without_ageing_and_never_returns_the_sender() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut view = view_with(9, 10, 3, &[(1, 4), (2, 4), (3, 4), (4, 4)]);
        for _ in 0..50 {
            let (reply, _) = view.answer_shuffle(&mut rng, &2, Vec::new());
            assert_eq!(reply.len(), 3);
            assert!(reply.iter().all(|e| *e.id() != 2));
        }
        assert!(
            view.iter().all(|e| e.age() == 4),
            "the responder does not age"
        );
    }

    #[test]
    fn received_entries_fill_empty_slots_first_then_replace_sent_ones() {
        let mut rng = StdRng::seed_from_u64(5);
        // Full view of 4, l = 3.
        let mut view = view_with(0, 4, 3, &[(1, 9), (2, 0), (3, 0), (4, 0)]);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.id(), 1);
        let sent: Vec<u32> = shuffle.request[1..].iter().map(|e| *e.id()).collect();
        assert_eq!(sent.len(), 2);
        let kept: Vec<u32> = (2..=4).filter(|id| !sent.contains(id)).collect();
        let done = view
            .complete_shuffle(
                shuffle.id,
                vec![
                    Entry::new(10, (), 1),
                    Entry::new(11, (), 1),
                    Entry::new(12, (), 1),
                ],
            )
            .unwrap();
        // 10 takes the target's empty slot; 11 and 12 replace the two sent entries.
        assert_eq!(done.target, 1);
        assert_eq!(done.merge.added, vec![10, 11, 12]);
        let mut replaced = done.merge.removed.clone();
        replaced.sort_unstable();
        let mut sent_sorted = sent.clone();
        sent_sorted.sort_unstable();
        assert_eq!(replaced, sent_sorted);
        assert!(
            view.contains(&kept[0]),
            "an entry not sent is never replaced"
        );
        assert_eq!(view.len(), 4);
    }

    #[test]
    fn merge_discards_self_duplicates_excess_and_clamps_ages() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut view = view_with(0, 10, 3, &[(1, 0)]);
        let (_, merge) = view.answer_shuffle(
            &mut rng,
            &7,
            vec![
                Entry::new(0, (), 1),
                Entry::new(1, (), 1),
                Entry::new(8, (), u32::MAX),
                Entry::new(9, (), 1),
            ],
        );
        assert_eq!(merge.added, vec![8]);
        assert_eq!(merge.ignored.local, 1);
        assert_eq!(merge.ignored.duplicate, 1);
        assert_eq!(merge.ignored.excess, 1);
        assert_eq!(age_of(&view, 8), DEFAULT_MAX_AGE);
    }

    #[test]
    fn a_larger_receive_limit_considers_more_entries_for_the_same_slots() {
        let received: Vec<Entry<u32>> = [1, 2, 3, 4, 5, 6].map(|id| Entry::new(id, (), 0)).into();
        // A full view of 5 (c = 5, l = 2) already holding 1 and 2.
        let initial = [(1, 0), (2, 0), (20, 0), (21, 0), (22, 0)];
        let mut default = view_with(0, 5, 2, &initial);
        assert_eq!(default.receive_limit(), 2);
        let mut wide = default.clone();
        wide.set_receive_limit(5);
        let mut none = default.clone();
        none.set_receive_limit(0);
        let mut unbounded = default.clone();
        unbounded.set_receive_limit(usize::MAX);
        assert_eq!(unbounded.receive_limit(), u32::MAX as usize);

        // The default considers 1 and 2 only: both duplicates, nothing replaced.
        let (reply, merge) =
            default.answer_shuffle(&mut StdRng::seed_from_u64(1), &9, received.clone());
        assert_eq!(reply.len(), 2);
        assert_eq!(merge.ignored.duplicate, 2);
        assert_eq!(merge.ignored.excess, 4);
        assert!(merge.added.is_empty());

        // Up to 5 considered: 3 and 4 replace the two replied entries, 5 finds no room, 6 is
        // excess. Still at most l replacements, and only of replied entries.
        let (reply, merge) =
            wide.answer_shuffle(&mut StdRng::seed_from_u64(1), &9, received.clone());
        assert_eq!(merge.added, vec![3, 4]);
        let mut replaced = merge.removed.clone();
        replaced.sort_unstable();
        let mut replied: Vec<u32> = reply.iter().map(|e| *e.id()).collect();
        replied.sort_unstable();
        assert_eq!(replaced, replied);
        assert_eq!(merge.ignored.duplicate, 2);
        assert_eq!(merge.ignored.no_room, 1);
        assert_eq!(merge.ignored.excess, 1);
        assert_eq!(wide.len(), 5);

        let (_, merge) = none.answer_shuffle(&mut StdRng::seed_from_u64(1), &9, received);
        assert_eq!(merge.ignored.excess, 6);
        assert_eq!(ids(&none), ids(&view_with(0, 5, 2, &initial)));
    }

    #[test]
    fn replaced_entries_must_still_be_present() {
        let mut rng = StdRng::seed_from_u64(8);
        let mut view = view_with(0, 3, 3, &[(1, 9), (2, 0), (3, 0)]);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        // Meanwhile the view is refilled and a sent entry disappears.
        view.insert(Entry::new(20, (), 0));
        view.remove(&2);
        view.insert(Entry::new(21, (), 0));
        let done = view
            .complete_shuffle(
                shuffle.id,
                vec![
                    Entry::new(10, (), 0),
                    Entry::new(11, (), 0),
                    Entry::new(12, (), 0),
                ],
            )
            .unwrap();
        assert_eq!(done.merge.removed, vec![3]);
        assert_eq!(done.merge.added, vec![10]);
        assert_eq!(done.merge.ignored.no_room, 2);
        assert_eq!(ids(&view), vec![10, 20, 21]);
    }

    #[test]
    fn a_sent_peer_that_left_and_returns_is_not_replaced_by_the_same_merge() {
        let mut rng = StdRng::seed_from_u64(9);
        // View {1 (oldest), 2}, c = 2, l = 2: the shuffle targets 1 and sends 2.
        let mut view = view_with(0, 2, 2, &[(1, 9), (2, 0)]);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(shuffle.request[1].id(), &2);
        // 2 leaves meanwhile and 3 comes in: one slot is free.
        view.remove(&2);
        view.insert(Entry::new(3, (), 0));
        // The reply returns 2 (into the free slot) and 4, which finds no sent entry left.
        let done = view
            .complete_shuffle(shuffle.id, vec![Entry::new(2, (), 0), Entry::new(4, (), 0)])
            .unwrap();
        assert_eq!(done.merge.added, vec![2]);
        assert!(done.merge.removed.is_empty());
        assert_eq!(done.merge.ignored.no_room, 1);
        assert_eq!(done.sent, 2);
        assert_eq!(ids(&view), vec![2, 3]);
    }

    #[test]
    fn a_peer_replaced_and_taken_back_by_one_merge_is_a_refresh_not_a_change() {
        // A full view {1, 2, 3} answers with two entries (l = 2) and considers up to 4 received
        // ones. 10 replaces the first replied entry, which comes back later in the request and
        // replaces the second one; the other copy of a replied peer is a duplicate or finds no
        // room.
        let mut view = view_with(0, 3, 2, &[(1, 0), (2, 0), (3, 0)]);
        view.set_receive_limit(4);
        let request = [10, 1, 2, 3].map(|id| Entry::new(id, (), 5));
        let (reply, merge) = view.answer_shuffle(&mut StdRng::seed_from_u64(3), &9, request);
        let (first, second) = (*reply[0].id(), *reply[1].id());
        assert_eq!(merge.added, vec![10]);
        assert_eq!(merge.refreshed, vec![first]);
        assert_eq!(merge.removed, vec![second]);
        assert!(view.contains(&first) && !view.contains(&second));
        assert_eq!(age_of(&view, first), 5, "the entry is the received one");
        assert_eq!(view.len(), 3);
    }

    /// A payload with an optional record seq, and a label to tell payloads apart.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Rec(Option<u64>, &'static str);

    impl EntryPayload for Rec {
        fn record_seq(&self) -> Option<u64> {
            self.0
        }
    }

    fn payload_of(view: &PartialView<u32, Rec>, id: u32) -> &'static str {
        view.get(&id).unwrap().addresses().1
    }

    #[test]
    fn a_newer_record_updates_a_held_entry_and_an_older_one_never_does() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut view: PartialView<u32, Rec> = PartialView::new(0, params(10, 3)).unwrap();
        view.insert(Entry::new(1, Rec(Some(5), "held"), 3));
        view.insert(Entry::new(2, Rec(None, "unsigned"), 4));
        let mut answer = |view: &mut PartialView<u32, Rec>, entries: Vec<Entry<u32, Rec>>| {
            view.answer_shuffle(&mut rng, &9, entries).1
        };

        // Older, equal and unsigned payloads for a held record: duplicates, nothing changes.
        for received in [
            Rec(Some(4), "older"),
            Rec(Some(5), "same"),
            Rec(None, "plain"),
        ] {
            let merge = answer(&mut view, vec![Entry::new(1, received, 0)]);
            assert_eq!(merge.ignored.duplicate, 1);
            assert!(merge.updated.is_empty());
            assert_eq!(payload_of(&view, 1), "held");
        }
        // A newer record replaces the payload; the entry keeps its age and its place.
        let merge = answer(&mut view, vec![Entry::new(1, Rec(Some(6), "newer"), 0)]);
        assert_eq!(merge.updated, vec![1]);
        assert_eq!(merge.ignored.total(), 0);
        assert!(merge.added.is_empty() && merge.removed.is_empty());
        assert_eq!(payload_of(&view, 1), "newer");
        assert_eq!(view.get(&1).unwrap().age(), 3);
        // A record replaces a held entry that has none; another unsigned one does not.
        let merge = answer(&mut view, vec![Entry::new(2, Rec(None, "plain"), 0)]);
        assert_eq!((merge.updated.len(), merge.ignored.duplicate), (0, 1));
        let merge = answer(&mut view, vec![Entry::new(2, Rec(Some(1), "signed"), 0)]);
        assert_eq!(merge.updated, vec![2]);
        assert_eq!(payload_of(&view, 2), "signed");
        assert_eq!(view.get(&2).unwrap().age(), 4);
        // Given twice in one message, the peer is reported once.
        let merge = answer(
            &mut view,
            vec![
                Entry::new(2, Rec(Some(2), "second"), 0),
                Entry::new(2, Rec(Some(3), "third"), 0),
            ],
        );
        assert_eq!(merge.updated, vec![2]);
        assert_eq!(payload_of(&view, 2), "third");
    }

    #[test]
    fn a_peer_replaced_and_taken_back_keeps_its_newer_record() {
        // As in the refresh test above: 10 replaces the first replied entry, which comes back
        // later in the request and takes the second one's slot.
        for (returned_seq, expected) in [(3, "held"), (11, "received")] {
            let mut view: PartialView<u32, Rec> = PartialView::new(0, params(3, 2)).unwrap();
            for id in 1..=3 {
                view.insert(Entry::new(id, Rec(Some(10), "held"), 0));
            }
            view.set_receive_limit(4);
            let mut request = vec![Entry::new(10, Rec(None, "new"), 5)];
            request
                .extend((1..=3).map(|id| Entry::new(id, Rec(Some(returned_seq), "received"), 5)));
            let (reply, merge) = view.answer_shuffle(&mut StdRng::seed_from_u64(3), &9, request);
            let first = *reply[0].id();
            assert_eq!(merge.refreshed, vec![first]);
            assert_eq!(payload_of(&view, first), expected, "seq {returned_seq}");
            assert_eq!(
                view.get(&first).unwrap().age(),
                5,
                "the age is the received one"
            );
            // The peer that was not replied and is still held is a duplicate (older) or
            // updated (newer).
            let kept = (1..=3)
                .find(|id| reply.iter().all(|e| e.id() != id))
                .unwrap();
            assert_eq!(payload_of(&view, kept), expected);
            assert_eq!(merge.updated.contains(&kept), returned_seq > 10);
        }
    }

    #[test]
    fn periodic_shuffles_need_a_partner_and_a_local_address() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut view: PartialView<u32, Vec<u8>> = PartialView::new(0, params(3, 2)).unwrap();
        assert_eq!(
            view.periodic_shuffle(&mut rng, None).unwrap_err(),
            StartShuffleError::EmptyView
        );
        assert_eq!(
            view.add_address(1, 7, 2),
            InsertOutcome::Added,
            "a new peer enters with its address"
        );
        assert_eq!(view.add_address(1, 8, 2), InsertOutcome::AddressAdded);
        assert_eq!(view.add_address(1, 9, 2), InsertOutcome::AlreadyPresent);
        assert_eq!(view.add_address(0, 9, 2), InsertOutcome::LocalNode);
        assert_eq!(
            view.periodic_shuffle(&mut rng, None).unwrap_err(),
            StartShuffleError::NoLocalAddress
        );
        assert_eq!(view.len(), 1, "a skipped round changes nothing");
        assert_eq!(view.get(&1).unwrap().age(), 0, "nor ages the view");
        let shuffle = view.periodic_shuffle(&mut rng, Some(vec![4])).unwrap();
        assert_eq!(shuffle.target, Entry::new(1, vec![7, 8], 1));
        assert_eq!(shuffle.request, vec![Entry::new(0, vec![4], 0)]);
    }

    #[test]
    fn failed_target_stays_removed_and_ids_are_single_use() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut view = view_with(0, 5, 2, &[(1, 3), (2, 0)]);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(view.pending_target(shuffle.id), Some(&1));
        assert_eq!(view.fail_shuffle(shuffle.id).map(|f| f.target), Some(1));
        assert!(!view.contains(&1));
        assert_eq!(view.fail_shuffle(shuffle.id), None);
        assert!(view.complete_shuffle(shuffle.id, Vec::new()).is_none());
        assert_eq!(view.pending_shuffles(), 0);
    }

    /// A target out of the view only because its shuffle is in flight is saved with the view,
    /// at its age, until the shuffle ends; then it is not (failed: it stays out; completed:
    /// the link turned around).
    #[test]
    fn a_target_in_flight_is_saved_until_its_shuffle_ends() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut view = view_with(0, 3, 2, &[(1, 3), (2, 0), (3, 1)]);
        let exported = |view: &PartialView<u32>| -> Vec<(u32, u32)> {
            view.export().map(|e| (e.id, e.age)).collect()
        };
        let first = view.start_shuffle(&mut rng, ()).unwrap();
        assert!(first.target_left);
        assert_eq!(first.target, Entry::new(1, (), 4));
        assert_eq!(view.in_flight().collect::<Vec<_>>(), vec![&first.target]);
        let saved = exported(&view);
        assert_eq!(saved.len(), 3);
        assert_eq!(
            saved.last(),
            Some(&(1, 4)),
            "the view first, then the target"
        );
        // A full view leaves no room for the target in a saved view.
        assert_eq!(view.insert(Entry::new(4, (), 0)), InsertOutcome::Added);
        assert!(!exported(&view).iter().any(|&(id, _)| id == 1));
        assert!(view.remove(&4).is_some());
        // The target back in the view (another peer sent it) is saved once.
        assert_eq!(view.insert(Entry::new(1, (), 0)), InsertOutcome::Added);
        assert_eq!(view.in_flight().count(), 0);
        assert!(view.remove(&1).is_some());
        // A failed shuffle: the target is no longer saved; a completed one: neither.
        assert!(!view.fail_shuffle(first.id).unwrap().removed);
        assert_eq!(view.in_flight().count(), 0);
        let second = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(view.in_flight().count(), 1);
        view.complete_shuffle(second.id, Vec::new()).unwrap();
        assert_eq!(view.in_flight().count(), 0);
        assert_eq!(exported(&view).len(), view.len());
    }

    /// Runs `rounds` shuffles between two views with both APIs on the same seeds and checks
    /// that requests, replies, targets, merge results and the views stay identical.
    #[test]
    fn allocation_free_variants_follow_the_same_rules() {
        let defences = [Defence::Off, Defence::seeded(), Defence::anchored()];
        let modes = [ShuffleMode::Enhanced, ShuffleMode::Basic];
        for (mode, defence) in modes.into_iter().flat_map(|m| defences.map(|d| (m, d))) {
            let p_params = ShuffleParams {
                mode,
                defence,
                ..params(6, 3)
            };
            let mut keys = StdRng::seed_from_u64(1);
            let mut a = [
                PartialView::with_rng(0u32, p_params, &mut keys).unwrap(),
                PartialView::with_rng(1u32, p_params, &mut keys).unwrap(),
            ];
            for (i, view) in a.iter_mut().enumerate() {
                for id in 2..9u32 {
                    view.insert(Entry::new(id + 10 * i as u32, (), id % 3));
                }
            }
            let mut b = a.clone();
            let (mut rng_a, mut rng_b) = (StdRng::seed_from_u64(9), StdRng::seed_from_u64(9));
            let (mut request, mut reply) = (Vec::new(), Vec::new());
            for round in 0..200 {
                let (i, j) = if round % 2 == 0 { (0, 1) } else { (1, 0) };
                let from = i as u32;
                let out = a[i].start_shuffle(&mut rng_a, ()).unwrap();
                let (id, target) = b[i]
                    .start_shuffle_into(&mut rng_b, (), &mut request)
                    .unwrap();
                assert_eq!((out.id, &out.target), (id, &target));
                assert_eq!(out.request, request);
                let (reply_a, merge_a) = a[j].answer_shuffle(&mut rng_a, &from, out.request);
                let counts =
                    b[j].answer_shuffle_into(&mut rng_b, &from, request.drain(..), &mut reply);
                assert_eq!(reply_a, reply);
                assert_counts_match(&merge_a, counts);
                if round % 7 == 3 {
                    assert_eq!(a[i].fail_shuffle(out.id), b[i].fail_shuffle(id));
                } else {
                    let done = a[i].complete_shuffle(out.id, reply_a).unwrap();
                    let counts = b[i].complete_shuffle_counted(id, reply.drain(..)).unwrap();
                    assert_counts_match(&done.merge, counts);
                }
                // Keep the views populated: the link to the partner reverses every round.
                for k in 0..2 {
                    let refill = Entry::new(100 + round as u32, (), 0);
                    a[k].insert(refill.clone());
                    b[k].insert(refill);
                    assert_eq!(a[k].entries(), b[k].entries());
                }
            }
            assert_eq!(b[0].pending_shuffles(), 0);
            assert!(
                b[0].complete_shuffle_counted(ShuffleId(0), Vec::new())
                    .is_none()
            );
        }
    }

    /// Counts are step by step, the outcome is the net change: a peer replaced and taken back
    /// counts in both (and is refreshed); one taken and replaced again by the same merge (a
    /// defence's slot won twice) counts in both (and is in neither net list).
    fn assert_counts_match(merge: &MergeOutcome<u32>, counts: MergeCounts) {
        let again = merge.refreshed.len();
        let transient = counts.added - (merge.added.len() + again);
        assert_eq!(
            (merge.removed.len() + again + transient, merge.ignored),
            (counts.replaced, counts.ignored)
        );
    }

    #[test]
    fn start_shuffle_into_clears_the_buffer_and_handles_an_empty_view() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut request = vec![Entry::new(42u32, (), 0)];
        let mut view = view_with(0, 3, 2, &[]);
        assert!(
            view.start_shuffle_into(&mut rng, (), &mut request)
                .is_none()
        );
        assert!(request.is_empty());
        view.insert(Entry::new(1, (), 0));
        let (_, target) = view.start_shuffle_into(&mut rng, (), &mut request).unwrap();
        assert_eq!(*target.id(), 1);
        assert_eq!(request, vec![Entry::new(0, (), 0)]);
    }

    fn rejoining(view: &mut PartialView<u32>, remember: usize, probe_every: u32) {
        view.set_rejoin(Rejoin::new(remember, probe_every)).unwrap();
    }

    #[test]
    fn without_rejoin_nothing_is_remembered_or_probed() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut view = view_with(0, 5, 2, &[(1, 3), (2, 0)]);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        view.fail_shuffle(shuffle.id);
        assert!(view.lost_peers().is_empty());
        assert!(!view.add_seed(Entry::new(7, (), 0)));
        let (mut probing, mut untouched) = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(7));
        for _ in 0..10 {
            assert!(view.periodic_probe(&mut probing, Some(())).is_none());
        }
        assert_eq!(
            probing.random::<u64>(),
            untouched.random::<u64>(),
            "no random draw without the rule"
        );
    }

    #[test]
    fn failed_targets_are_remembered_most_recent_last_and_bounded() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut view = view_with(0, 5, 1, &[(1, 9), (2, 8), (3, 7)]);
        rejoining(&mut view, 2, 1);
        for expected in [1, 2, 3] {
            let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
            assert_eq!(*shuffle.target.id(), expected);
            assert!(!shuffle.probe);
            view.fail_shuffle(shuffle.id);
        }
        let lost: Vec<u32> = view.lost_peers().iter().map(|e| *e.id()).collect();
        assert_eq!(lost, vec![2, 3], "the oldest loss is forgotten first");
        // A completed shuffle is not a loss.
        view.insert(Entry::new(4, (), 0));
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        view.complete_shuffle(shuffle.id, Vec::new()).unwrap();
        assert_eq!(view.lost_peers().len(), 2);
        // Seeds are kept apart and never counted as lost.
        assert!(view.add_seed(Entry::new(5, (), 0)));
        assert!(!view.add_seed(Entry::new(5, (), 0)));
        assert!(!view.add_seed(Entry::new(0, (), 0)), "never the local node");
        view.insert(Entry::new(5, (), 0));
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        assert_eq!(*shuffle.target.id(), 5);
        view.fail_shuffle(shuffle.id);
        assert_eq!(view.lost_peers().len(), 2);
        assert_eq!(view.seeds().len(), 1);
    }

    #[test]
    fn probes_come_every_few_rounds_and_every_round_when_the_view_is_empty() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut view = view_with(0, 5, 2, &[(1, 0), (2, 0)]);
        rejoining(&mut view, 5, 3);
        assert!(view.add_seed(Entry::new(9, (), 0)));
        let probes: Vec<bool> = (0..12)
            .map(|_| match view.periodic_probe(&mut rng, Some(())) {
                Some(probe) => {
                    assert!(probe.probe);
                    assert_eq!(*probe.target.id(), 9);
                    assert_eq!(probe.request.len(), 2, "own entry and l - 1 view entries");
                    assert_eq!(view.len(), 2, "nobody leaves the view");
                    view.fail_shuffle(probe.id);
                    true
                }
                None => false,
            })
            .collect();
        assert_eq!(probes.iter().filter(|p| **p).count(), 4, "{probes:?}");
        let first = probes.iter().position(|p| *p).unwrap();
        for (round, probed) in probes.iter().enumerate() {
            assert_eq!(*probed, round >= first && (round - first) % 3 == 0);
        }
        assert!(
            view.lost_peers().is_empty(),
            "a failed probe changes nothing"
        );
        // No address to advertise: no probe.
        let mut empty = view_with(0, 5, 2, &[]);
        rejoining(&mut empty, 5, 100);
        empty.add_seed(Entry::new(9, (), 0));
        assert!(empty.periodic_probe(&mut rng, None).is_none());
        // An empty view probes every round, without a countdown.
        for _ in 0..3 {
            let probe = empty.periodic_probe(&mut rng, Some(())).unwrap();
            assert_eq!(probe.request, vec![Entry::new(0, (), 0)]);
            empty.fail_shuffle(probe.id);
        }
    }

    #[test]
    fn a_completed_probe_forgets_the_lost_peer_and_merges_the_reply() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut view = view_with(0, 3, 2, &[(1, 9), (2, 0)]);
        rejoining(&mut view, 5, 1);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        view.fail_shuffle(shuffle.id);
        assert_eq!(view.lost_peers().len(), 1);
        let probe = view.periodic_probe(&mut rng, Some(())).unwrap();
        assert_eq!(*probe.target.id(), 1);
        assert!(
            view.periodic_probe(&mut rng, Some(())).is_none(),
            "a peer being probed is not probed twice"
        );
        let done = view
            .complete_shuffle(probe.id, vec![Entry::new(7, (), 1), Entry::new(8, (), 1)])
            .unwrap();
        assert_eq!(done.target, 1);
        assert_eq!(done.merge.added, vec![7, 8], "two empty slots");
        assert!(view.lost_peers().is_empty());
        assert_eq!(ids(&view), vec![2, 7, 8], "nobody left the view");
        // A lost peer back in the view is dropped instead of probed.
        let mut view = view_with(0, 3, 1, &[(1, 9)]);
        rejoining(&mut view, 5, 1);
        let shuffle = view.start_shuffle(&mut rng, ()).unwrap();
        view.fail_shuffle(shuffle.id);
        view.insert(Entry::new(1, (), 0));
        assert!(view.periodic_probe(&mut rng, Some(())).is_none());
        assert!(view.lost_peers().is_empty());
    }

    #[test]
    fn seed_addresses_grow_up_to_the_bound() {
        let mut view: PartialView<u32, Vec<u8>> = PartialView::new(0, params(3, 2)).unwrap();
        assert!(!view.add_seed_address(1, 7, 2), "no rule, no seeds");
        view.set_rejoin(Rejoin::new(0, 1)).unwrap();
        assert!(view.add_seed_address(1, 7, 2));
        assert!(view.add_seed_address(1, 8, 2));
        assert!(!view.add_seed_address(1, 8, 2));
        assert!(!view.add_seed_address(1, 9, 2));
        assert_eq!(view.seeds(), &[Entry::new(1, vec![7, 8], 0)]);
        assert!(view.is_empty(), "a seed is not a view entry");
        assert!(view.set_rejoin(Rejoin::new(0, 0)).is_err());
    }

    #[test]
    fn shuffle_reverses_the_link_between_two_nodes() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut p = view_with(1, 5, 3, &[(2, 0)]);
        let mut q = view_with(2, 5, 3, &[]);
        let shuffle = p.start_shuffle(&mut rng, ()).unwrap();
        let (reply, _) = q.answer_shuffle(&mut rng, &1, shuffle.request);
        p.complete_shuffle(shuffle.id, reply).unwrap();
        assert_eq!(ids(&p), Vec::<u32>::new());
        assert_eq!(ids(&q), vec![1]);
    }
}
