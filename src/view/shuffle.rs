//! A shuffle from start to end: the initiator's side (start, complete, fail), the responder's
//! (answer), and what each step reports.

use std::{fmt, hash::Hash};

use rand::{Rng, RngExt};

#[cfg(any(test, feature = "sim"))]
use super::MergeCounts;
use super::{
    DefenceState, Entry, EntryPayload, MergeOutcome, PartialView, ShuffleMode, merge::MergeLog,
    parked,
};

/// Identifies one shuffle started by [`PartialView::start_shuffle`](crate::view::PartialView::start_shuffle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShuffleId(pub(super) u64);

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
    /// Identifies the shuffle in [`PartialView::complete_shuffle`](crate::view::PartialView::complete_shuffle) and
    /// [`PartialView::fail_shuffle`](crate::view::PartialView::fail_shuffle).
    pub id: ShuffleId,
    /// The neighbour to shuffle with, as its entry was when the shuffle started.
    pub target: Entry<I, A>,
    /// Whether the target left the view when the shuffle started. It does under plain
    /// Cyclon (the link P→Q is about to become Q→P); under a [`Defence`](crate::view::Defence) it may stay until the
    /// shuffle fails; a [`Rejoin`](crate::view::Rejoin) probe's target was not in the view.
    pub target_left: bool,
    /// The entries to send: first the fresh entry for the local node (age 0), then up to
    /// `l - 1` entries of the view.
    pub request: Vec<Entry<I, A>>,
    /// Whether this is a [`Rejoin`](crate::view::Rejoin) probe ([`PartialView::periodic_probe`](crate::view::PartialView::periodic_probe)): its target was a
    /// seed or a lost peer, not a view entry, so no entry left the view.
    pub probe: bool,
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
/// ([`PartialView::fail_shuffle`](crate::view::PartialView::fail_shuffle)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedShuffle<I> {
    /// The neighbour the shuffle was with.
    pub target: I,
    /// Whether the failure took the target out of the view: under a [`Defence`](crate::view::Defence) the target
    /// may stay in the view while the shuffle runs, and leaves when it fails. Under plain
    /// Cyclon it left when the shuffle started ([`OutgoingShuffle::target_left`](crate::view::OutgoingShuffle::target_left)), so this is
    /// `false`.
    pub removed: bool,
}

/// A shuffle the local node started and then withdrew, because it could not send it
/// ([`PartialView::cancel_shuffle`](crate::view::PartialView::cancel_shuffle)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CancelledShuffle<I> {
    /// The neighbour the shuffle was for.
    pub target: I,
    /// Whether the target went back into the view (it had left it when the shuffle started,
    /// and was not back yet).
    pub restored: bool,
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
    /// A periodic shuffle restricted to the peers the local node can reach now
    /// ([`PartialView::periodic_shuffle_among`](crate::view::PartialView::periodic_shuffle_among)) found none in the view.
    #[error("no peer of the view is reachable now")]
    NoReachablePeer,
}

#[derive(Debug, Clone)]
pub(super) struct PendingShuffle<I, A> {
    pub(super) id: ShuffleId,
    /// The target's entry as it was when the shuffle started: kept in a saved view while the
    /// shuffle runs ([`PartialView::in_flight`](crate::view::PartialView::in_flight)), and with [`Rejoin`](crate::view::Rejoin) remembered if it fails.
    pub(super) target: Entry<I, A>,
    /// Whether the target left the view when the shuffle started.
    pub(super) target_left: bool,
    /// Identifiers of the view entries sent (the local node's entry excluded).
    pub(super) sent: Vec<I>,
    /// A [`Rejoin`](crate::view::Rejoin) probe.
    pub(super) probe: bool,
}

impl<I, A> PartialView<I, A>
where
    I: Clone + PartialEq + Hash,
    A: EntryPayload,
{
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
    /// ([`OutgoingShuffle::target_left`](crate::view::OutgoingShuffle::target_left)) and have not come back, as their entries were then
    /// (with the age they had). Nobody has found them dead; the shuffle's outcome decides
    /// whether they stay out (it failed) or the link has turned around (it completed). A
    /// target that stays in the view while its shuffle runs (under a [`Defence`](crate::view::Defence)) and a
    /// [`Rejoin`](crate::view::Rejoin) probe's target are not here.
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

    /// Starts a shuffle (steps 1–3 of the protocol): ages the view, selects and removes the
    /// target (it has left the view when this returns, unless a [`Defence`](crate::view::Defence) keeps it:
    /// [`OutgoingShuffle::target_left`](crate::view::OutgoingShuffle::target_left)), and builds the request with a fresh entry for the
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
    pub(super) fn outgoing(
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

    /// [`periodic_shuffle`](Self::periodic_shuffle) with the target chosen among the peers
    /// `reachable` accepts (the oldest of them, or a random one in basic mode), for a node
    /// that cannot reach every peer now: one whose own connection limits refuse new dials
    /// shuffles with a peer it is connected to. Without such a peer the round is skipped with
    /// [`StartShuffleError::NoReachablePeer`] and nothing changes (the view is not aged).
    /// Under [`Defence::Seeded`](crate::view::Defence::Seeded), whose targets keep their slots, the restriction does not
    /// apply: this is `periodic_shuffle`.
    pub fn periodic_shuffle_among<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: Option<A>,
        reachable: impl Fn(&I) -> bool,
    ) -> Result<OutgoingShuffle<I, A>, StartShuffleError> {
        let seeded = self.defence.as_deref().is_some_and(DefenceState::is_seeded);
        if seeded {
            return self.periodic_shuffle(rng, local_addresses);
        }
        let Some(addresses) = local_addresses else {
            return self.periodic_shuffle(rng, None);
        };
        if self.is_empty() {
            return Err(StartShuffleError::EmptyView);
        }
        if !self.entries.iter().any(|e| reachable(&e.id)) {
            return Err(StartShuffleError::NoReachablePeer);
        }
        let mut request = Vec::with_capacity(self.params.shuffle_length);
        let (id, target) = self
            .start_into(rng, addresses, &mut request, Some(&reachable))
            .ok_or(StartShuffleError::EmptyView)?;
        Ok(self.outgoing(id, target, request))
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
        self.start_into(rng, local_addresses, request, None)
    }

    /// Steps 1–3, the target chosen among the entries `reachable` accepts (all without it;
    /// the caller made sure one is).
    fn start_into<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        local_addresses: A,
        request: &mut Vec<Entry<I, A>>,
        reachable: Option<&dyn Fn(&I) -> bool>,
    ) -> Option<(ShuffleId, Entry<I, A>)> {
        request.clear();
        if self.entries.is_empty() {
            return None;
        }
        match self.defence.as_deref_mut() {
            Some(defence) if defence.is_seeded() => {
                return Some(self.seeded_start_into(rng, local_addresses, request));
            }
            Some(defence) => defence.start_cycle(&mut self.entries),
            None => {}
        }
        let max_age = self.params.max_age;
        for entry in &mut self.entries {
            entry.age = entry.age.saturating_add(1).min(max_age);
        }
        let target_index = match (self.params.mode, reachable) {
            (ShuffleMode::Enhanced, None) => self.oldest_index(rng),
            (ShuffleMode::Basic, None) => rng.random_range(0..self.entries.len()),
            (mode, Some(reachable)) => self.reachable_index(rng, mode, reachable),
        };
        // An anchor (parked at the end) stays in the view when it is the target.
        let target_left = target_index < self.swappable_len();
        let target = if target_left {
            let target = self.entries.swap_remove(target_index);
            if let Some(defence) = self.defence.as_deref_mut() {
                defence.repark(&mut self.entries);
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
    pub(super) fn fill_request<R: Rng + ?Sized>(
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
    pub(super) fn push_pending(
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

    /// [`complete_shuffle`](Self::complete_shuffle) adding what the merge did to `counts`
    /// instead of reporting it: same rules, no allocation (for the simulator). Returns
    /// whether `id` was pending (if not, nothing changed).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn complete_shuffle_into(
        &mut self,
        id: ShuffleId,
        response: impl IntoIterator<Item = Entry<I, A>>,
        counts: &mut MergeCounts,
    ) -> bool {
        self.complete_pending(id, response, counts).is_some()
    }

    /// Ends the pending shuffle `id` by merging `response`; returns its target and the number
    /// of view entries it sent.
    pub(super) fn complete_pending(
        &mut self,
        id: ShuffleId,
        response: impl IntoIterator<Item = Entry<I, A>>,
        log: &mut impl MergeLog<I>,
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
        if self.defence.as_deref().is_some_and(DefenceState::is_seeded) {
            self.seeded_complete(&target, response, log);
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
                self.merge(response, pending.sent.iter(), log, |entry| {
                    anchored.observe(&local, entry)
                });
                let (view_size, max_age) = (self.params.view_size, self.params.max_age);
                anchored.refresh(&mut self.entries, &held, view_size, max_age, log);
            }
            _ => {
                // Only sent entries still in the view now may be replaced: a sent peer that
                // left the view meanwhile and comes back in this very response is a new
                // entry, not one we sent.
                pending.sent.retain(|id| self.contains(id));
                self.merge(response, pending.sent.iter(), log, |_| {});
            }
        }
        self.defence = state;
        self.recycle_sent(pending.sent);
        Some((target, sent))
    }

    pub(super) fn recycle_sent(&mut self, mut sent: Vec<I>) {
        if self.spare_sent.capacity() == 0 {
            sent.clear();
            self.spare_sent = sent;
        }
    }

    /// Ends the shuffle `id` without a reply (step 7): the target stays out of the view (under
    /// a [`Defence`](crate::view::Defence), where it may have stayed, it leaves now and is not taken back for a
    /// while: [`FailedShuffle::removed`]). With [`Rejoin`](crate::view::Rejoin), the target of a regular shuffle is
    /// remembered as lost (unless it is a seed); a failed probe changes nothing. Returns
    /// `None` (and changes nothing) if `id` is not pending.
    pub fn fail_shuffle(&mut self, id: ShuffleId) -> Option<FailedShuffle<I>> {
        let index = self.pending.iter().position(|p| p.id == id)?;
        let pending = self.pending.swap_remove(index);
        self.recycle_sent(pending.sent);
        let target = pending.target;
        let removed = self
            .defence
            .as_deref_mut()
            .is_some_and(|defence| defence.fail(&mut self.entries, &target.id));
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

    /// Withdraws the shuffle `id`, which the local node could not send: its own connection
    /// limits refused the dial, or the dial was aborted locally. Nothing is known of the
    /// target, so, unlike [`fail_shuffle`](Self::fail_shuffle), it goes back into the view if
    /// it left it (with the age it had, when there is room), it is not remembered as lost,
    /// and no defence counts it as failed. The entries sent stayed in the view. Returns
    /// `None` (and changes nothing) if `id` is not pending.
    pub fn cancel_shuffle(&mut self, id: ShuffleId) -> Option<CancelledShuffle<I>> {
        let index = self.pending.iter().position(|p| p.id == id)?;
        let pending = self.pending.swap_remove(index);
        self.recycle_sent(pending.sent);
        let target = pending.target.id.clone();
        let restored =
            pending.target_left && self.insert(pending.target) == super::InsertOutcome::Added;
        Some(CancelledShuffle { target, restored })
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
    /// and adding what the merge did to `counts`. Same rules, same random choices; it
    /// allocates nothing once `reply` has grown (for the simulator).
    #[cfg(any(test, feature = "sim"))]
    pub(crate) fn answer_shuffle_into<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: &I,
        request: impl IntoIterator<Item = Entry<I, A>>,
        reply: &mut Vec<Entry<I, A>>,
        counts: &mut MergeCounts,
    ) {
        self.answer(rng, from, request, reply, counts);
    }

    pub(super) fn answer<R: Rng + ?Sized>(
        &mut self,
        rng: &mut R,
        from: &I,
        request: impl IntoIterator<Item = Entry<I, A>>,
        reply: &mut Vec<Entry<I, A>>,
        log: &mut impl MergeLog<I>,
    ) {
        if self.defence.as_deref().is_some_and(DefenceState::is_seeded) {
            return self.seeded_answer(rng, from, request, reply, log);
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
                let limit = self.message_length as usize;
                log.ignored().over_budget += received.min(limit);
                log.ignored().excess += received.saturating_sub(limit);
            }
            Some(DefenceState::Anchored(anchored)) => {
                let local = self.local.clone();
                // The push stream: only the authenticated initiator's own entry.
                self.merge(request, reply.iter().map(|e| &e.id), log, |entry| {
                    if entry.id == *from {
                        anchored.observe(&local, entry)
                    } else {
                        anchored.refresh_payload(entry)
                    }
                });
            }
            _ => self.merge(request, reply.iter().map(|e| &e.id), log, |_| {}),
        }
        self.defence = state;
    }
}
