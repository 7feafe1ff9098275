//! The merge of received entries (rules 5–6) and what it reports: the net change
//! ([`MergeOutcome`]) or, for the simulator, counts only (`MergeCounts`).

use std::hash::Hash;

use super::{Entry, EntryPayload, PartialView};

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
    pub(super) fn into_net_change(mut self) -> Self {
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
    /// [`Defence::Seeded`](crate::view::Defence::Seeded): entries that ranked above every slot's occupant).
    pub no_room: usize,
    /// Entries for peers a defence saw fail to answer recently.
    pub dead: usize,
    /// Entries of inbound shuffles beyond [`Defence::Anchored`](crate::view::Defence::Anchored)'s per-cycle budget.
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
pub(super) trait MergeLog<I> {
    fn added(&mut self, id: &I);
    fn replaced(&mut self, id: I);
    fn updated(&mut self, id: &I);
    fn ignored(&mut self) -> &mut IgnoredEntries;
}

/// Records the net change as the merge goes: a peer removed and taken back was refreshed; a
/// peer taken and removed again by the same merge (a defence's slot can be won twice) did not
/// change the view.
impl<I: Clone + PartialEq> MergeLog<I> for MergeOutcome<I> {
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
impl<I> MergeLog<I> for MergeCounts {
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

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: EntryPayload,
{
    /// How many entries of a received request or reply a merge considers at most; the rest
    /// are counted as [`IgnoredEntries::excess`]. The message length unless the simulator
    /// raised it.
    #[cfg(test)]
    pub(super) fn message_length(&self) -> usize {
        self.message_length as usize
    }

    /// Considers up to `limit` entries of each received message instead of the message
    /// length, which is the protocol's bound and what the [`Behaviour`](crate::Behaviour)
    /// uses; what the view sends is unchanged. A larger limit only lets more received entries
    /// compete for the same slots (a merge still fills empty slots and replaces entries sent
    /// in that exchange, nothing else), which the simulator uses to measure what the bound is
    /// worth. 0 makes merges take nothing.
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn set_message_length(&mut self, limit: usize) {
        self.message_length = super::saturating_u32(limit);
    }

    /// Merges received entries (rules 5–6): at most the message length are considered;
    /// those naming the local node or already present are discarded (a held entry's payload
    /// is updated when the received one supersedes it); the rest fill empty slots first, then
    /// replace entries among `replaceable` that are still in the view.
    /// Every considered entry is shown to `observe` first (the anchored defence's samplers).
    pub(super) fn merge<'a>(
        &mut self,
        received: impl IntoIterator<Item = Entry<I, A>>,
        mut replaceable: impl Iterator<Item = &'a I>,
        log: &mut impl MergeLog<I>,
        mut observe: impl FnMut(&Entry<I, A>),
    ) where
        I: 'a,
    {
        // Payloads with a record that this merge replaced: should the same peer come back
        // later in `received` with an older record, it keeps the newer one. Stays empty (and
        // unallocated) for payloads without records.
        let mut displaced: Vec<(I, A)> = Vec::new();
        for (n, entry) in received.into_iter().enumerate() {
            if n >= self.message_length as usize {
                log.ignored().excess += 1;
                continue;
            }
            observe(&entry);
            if entry.id == self.local {
                log.ignored().local += 1;
                continue;
            }
            if let Some(i) = self.position(&entry.id) {
                let held = &mut self.entries[i];
                if entry.addresses.supersedes(&held.addresses) {
                    held.addresses = entry.addresses;
                    log.updated(&held.id);
                } else {
                    log.ignored().duplicate += 1;
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
                log.added(&entry.id);
                self.entries.push(entry);
                continue;
            }
            let slot = replaceable.find_map(|id| self.position(id));
            match slot {
                Some(i) => {
                    log.added(&entry.id);
                    let old = std::mem::replace(&mut self.entries[i], entry);
                    if old.addresses.record_seq().is_some() {
                        displaced.push((old.id.clone(), old.addresses));
                    }
                    log.replaced(old.id);
                }
                None => log.ignored().no_room += 1,
            }
        }
    }
}
