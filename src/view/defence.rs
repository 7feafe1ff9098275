//! The opt-in eclipse defences ([`Defence`](crate::view::Defence)) and their private state beside the view.

use std::hash::Hash;

use crate::view::secure_params::SecureParams;

use super::{
    Entry, EntryPayload, PartialView,
    anchored::{Anchored, AnchoredParams},
    seeded::{Seeded, SeededParams},
};

/// An opt-in defence against colluding peers that flood views with entries naming themselves
/// (eclipse and hub attacks; see `SECURITY.md`). [`Defence::Off`](crate::view::Defence::Off), the default, is the paper's
/// Cyclon.
///
/// Both defences keep private random keys drawn from the random number generator given to
/// [`PartialView::with_rng`](crate::view::PartialView::with_rng); nothing about them goes on the
/// wire, and the messages are those of `/cyclon/1.0.0`.
///
/// ```
/// use libp2p_cyclon::view::{Defence, ShuffleParams};
///
/// let params = ShuffleParams::new(20, 5).with_defence(Defence::seeded());
/// assert!(params.validate().is_ok());
/// assert_eq!(params.message_length(), 10); // l plus 5 extra entries per message
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Defence {
    /// No defence: the paper's Cyclon.
    #[default]
    Off,
    /// Seeded slots, after Basalt (Auvolat et al., 2023): every view slot has a private random
    /// seed and keeps, of all the peers the node has heard of, the one whose keyed hash ranks
    /// lowest under that seed. Hearing of a peer again changes nothing, so flooding buys an
    /// attacker nothing beyond showing each of its identities once. Shuffles copy entries
    /// instead of swapping them: the target stays in its slot (the shuffle checks it is alive),
    /// a peer that fails to answer leaves and is not taken back for a while.
    Seeded(SeededParams),
    /// Anchored samplers, after Brahms (Bortnikov et al., 2009): the view runs Cyclon's rules,
    /// except for a few *anchor* entries filled from private min-wise samplers over the peers
    /// heard of directly (partners and their replies), and a per-cycle budget of inbound
    /// shuffles whose entries are merged ("limited push").
    Anchored(AnchoredParams),
    /// SecureCyclon: transferable signed descriptors (see [`crate::secure`]). Its rules run in
    /// their own state machine, [`SecureView`](crate::secure::SecureView), and on their own
    /// wire protocol, `/cyclon/2.0.0`; [`PartialView`] refuses this variant.
    Secure(SecureParams),
}

impl Defence {
    /// Seeded slots with the recommended parameters ([`SeededParams::default`](crate::view::SeededParams::default)).
    pub fn seeded() -> Self {
        Defence::Seeded(SeededParams::default())
    }

    /// Anchored samplers with the recommended parameters ([`AnchoredParams::default`](crate::view::AnchoredParams::default)).
    pub fn anchored() -> Self {
        Defence::Anchored(AnchoredParams::default())
    }

    /// SecureCyclon with the recommended parameters ([`SecureParams::default`]).
    pub fn secure() -> Self {
        Defence::Secure(SecureParams::default())
    }

    /// Whether a defence is on.
    pub fn is_on(&self) -> bool {
        !matches!(self, Defence::Off)
    }
}

/// The private state of an eclipse defence.
#[derive(Debug, Clone)]
pub(super) enum DefenceState<I, A> {
    Seeded(Seeded<I, A>),
    Anchored(Anchored<I, A>),
}

/// Anchors parked at the end of the entries under [`Defence::Anchored`] (0 otherwise).
pub(super) fn parked<I, A>(state: &Option<Box<DefenceState<I, A>>>) -> usize {
    match state.as_deref() {
        Some(DefenceState::Anchored(anchored)) => anchored.parked(),
        _ => 0,
    }
}

/// How each defence changes the view's simple operations; the shuffle flows that differ as a
/// whole (the seeded defence copies instead of swapping) branch on [`DefenceState::Seeded`].
impl<I: Clone + PartialEq + Hash, A: EntryPayload> DefenceState<I, A> {
    /// Whether the seeded slots hold the view (they keep its order and run their own
    /// shuffle flows).
    pub(super) fn is_seeded(&self) -> bool {
        matches!(self, DefenceState::Seeded(_))
    }

    /// A new entry (not the local node's, not in the view, age clamped) offered by
    /// [`PartialView::insert`]: `Some(taken)` when the defence decides, `None` when the
    /// view's own rule does (the anchored defence's samplers hear of it first).
    pub(super) fn insert(
        &mut self,
        local: &I,
        entries: &mut Vec<Entry<I, A>>,
        entry: &Entry<I, A>,
    ) -> Option<bool> {
        match self {
            DefenceState::Seeded(seeded) => Some(seeded.insert(entries, entry.clone())),
            DefenceState::Anchored(anchored) => {
                anchored.observe(local, entry);
                None
            }
        }
    }

    /// Removes the entry at `k`, as the defence keeps its slots or pins.
    pub(super) fn remove_at(&mut self, entries: &mut Vec<Entry<I, A>>, k: usize) -> Entry<I, A> {
        match self {
            DefenceState::Seeded(seeded) => seeded.remove_at(entries, k),
            DefenceState::Anchored(anchored) => {
                anchored.unpin(&entries[k].id);
                entries.swap_remove(k)
            }
        }
    }

    /// The target of a shuffle did not answer: it leaves the view if it stayed there, and is
    /// not taken back for a while. Returns whether it left the view now.
    pub(super) fn fail(&mut self, entries: &mut Vec<Entry<I, A>>, target: &I) -> bool {
        match self {
            DefenceState::Seeded(seeded) => seeded.fail(entries, target),
            DefenceState::Anchored(anchored) => {
                anchored.fail(target);
                let k = entries.iter().position(|e| &e.id == target);
                k.map(|k| entries.swap_remove(k)).is_some()
            }
        }
    }

    /// A plain shuffle starts (not under the seeded defence): the anchors are parked out of
    /// Cyclon's choices and the inbound budget starts afresh.
    pub(super) fn start_cycle(&mut self, entries: &mut [Entry<I, A>]) {
        if let DefenceState::Anchored(anchored) = self {
            anchored.start_cycle(entries);
        }
    }

    /// The entries changed places: park the anchors again.
    pub(super) fn repark(&mut self, entries: &mut [Entry<I, A>]) {
        if let DefenceState::Anchored(anchored) = self {
            anchored.park(entries);
        }
    }
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: EntryPayload,
{
    /// How many entries Cyclon's random choices run over: all of them, except the anchors of
    /// [`Defence::Anchored`](crate::view::Defence::Anchored) (parked at the end).
    pub(super) fn swappable_len(&self) -> usize {
        self.entries.len() - parked(&self.defence)
    }
}
