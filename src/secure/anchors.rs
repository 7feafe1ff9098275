//! Anchor slots: a few contacts per view that the coalition cannot choose (issue 20's
//! combination of SecureCyclon with the seeded defence).
//!
//! Each slot has a private seed and keeps, of the creators whose descriptors the node saw
//! *verified* within [`SecureParams::anchor_memory`](crate::secure::SecureParams::anchor_memory),
//! the one whose keyed rank (`view::rank`, as the seeded defence ranks) is lowest. Nothing
//! unverified feeds them, so an attacker cannot fill them with made-up creators; showing its
//! identities more often buys it nothing. Every few rounds a node contacts an anchor instead of
//! its oldest holding (a join, or a redemption if it holds one of the anchor's descriptors).
//! A refusal or a failure empties the slot until a better-ranked creator is seen.

use std::hash::Hash;

use rand::Rng;

use crate::{
    secure::chain::DescriptorBody,
    view::rank::{Keys, rank},
};

#[derive(Debug, Clone)]
struct Occupant<I, A> {
    rank: u64,
    body: DescriptorBody<I, A>,
    seen: u64,
}

/// The anchor slots of one view.
#[derive(Debug, Clone)]
pub(crate) struct Anchors<I, A> {
    keys: Keys,
    seeds: Vec<u64>,
    slots: Vec<Option<Occupant<I, A>>>,
    memory: u64,
    next: usize,
}

impl<I: Clone + Eq + Hash, A: Clone> Anchors<I, A> {
    pub(crate) fn new<R: Rng + ?Sized>(count: usize, memory: u64, rng: &mut R) -> Self {
        Self {
            keys: Keys::draw(rng),
            seeds: (0..count).map(|_| rng.next_u64()).collect(),
            slots: vec![None; count],
            memory,
            next: 0,
        }
    }

    /// A verified descriptor of a creator (not the local node, not blacklisted) was seen at
    /// `now`. Returns the creator if it entered a slot.
    pub(crate) fn observe(&mut self, body: &DescriptorBody<I, A>, now: u64) -> Option<I> {
        if self.slots.is_empty() {
            return None;
        }
        if let Some(o) = self
            .slots
            .iter_mut()
            .flatten()
            .find(|o| o.body.creator == body.creator)
        {
            o.seen = o.seen.max(now);
            if body.minted_at > o.body.minted_at {
                o.body = body.clone();
            }
            return None;
        }
        let hash = self.keys.hash(&body.creator);
        for (slot, &seed) in self.slots.iter_mut().zip(&self.seeds) {
            let r = rank(hash, seed);
            let expired = slot
                .as_ref()
                .is_some_and(|o| now.saturating_sub(o.seen) > self.memory);
            if slot.as_ref().is_none_or(|o| expired || r < o.rank) {
                *slot = Some(Occupant {
                    rank: r,
                    body: body.clone(),
                    seen: now,
                });
                return Some(body.creator.clone());
            }
        }
        None
    }

    /// Empties the slot of `id` (it failed, refused, or was blacklisted).
    pub(crate) fn remove(&mut self, id: &I) -> bool {
        let mut removed = false;
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|o| o.body.creator == *id) {
                *slot = None;
                removed = true;
            }
        }
        removed
    }

    /// Empties the slots not refreshed within the memory.
    pub(crate) fn expire(&mut self, now: u64) {
        for slot in &mut self.slots {
            if slot
                .as_ref()
                .is_some_and(|o| now.saturating_sub(o.seen) > self.memory)
            {
                *slot = None;
            }
        }
    }

    /// The next anchor to contact (round robin over the occupied slots).
    pub(crate) fn next_contact(&mut self) -> Option<&DescriptorBody<I, A>> {
        let n = self.slots.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.slots[i].is_some() {
                self.next = (i + 1) % n;
                return self.slots[i].as_ref().map(|o| &o.body);
            }
        }
        None
    }

    /// The creators in the slots, and the descriptors that name them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &DescriptorBody<I, A>> + '_ {
        self.slots.iter().flatten().map(|o| &o.body)
    }
}
