//! The evidence store: what a node remembers of the descriptors it has seen, to catch clones
//! (two chains of one descriptor that fork) and over-minting (two descriptors of one creator
//! closer than the gap).
//!
//! One record per creator tag and gap-wide time bucket: the mint time, the longest chain
//! path seen (short digests) and, when the node saw that chain in full, the chain itself. A
//! conflict between two full chains is a proof; a conflict between a full chain and a
//! partner's sample makes the node show its chain to that partner (who holds the other in
//! full and so completes the proof); a conflict with digests only is counted and the full
//! side, if any, kept as a suspect. The oldest records are forgotten first.

use std::collections::{HashMap, VecDeque};

use crate::secure::{
    chain::{HandOverKind, Token},
    proof::{Proof, conflict},
    sample::{Sample, fork_position},
};

/// What the store found about one chain or sample.
#[derive(Debug)]
pub(crate) enum Found<I, A, G, D> {
    /// Nothing conflicting (new, or compatible with what was seen).
    Nothing,
    /// A proof, from the incoming full chain and one remembered in full.
    Proof(Proof<I, A, G, D>),
    /// The incoming sample conflicts with this remembered full chain: show it to the sample's
    /// sender.
    Show(Token<I, A, G, D>),
    /// A conflict that the store cannot prove (it has digests only).
    Unresolved,
}

#[derive(Debug, Clone)]
struct Record<I, A, G, D> {
    minted_at: u64,
    path: Vec<u32>,
    /// The longest chain seen in full, a prefix of (or equal to) `path`.
    full: Option<Box<Token<I, A, G, D>>>,
}

/// Remembered descriptors, keyed by creator tag and `minted_at / gap`.
#[derive(Debug, Clone)]
pub(crate) struct Evidence<I, A, G, D> {
    records: HashMap<(u64, u64), Record<I, A, G, D>>,
    order: VecDeque<(u64, u64)>,
    capacity: usize,
    gap: u64,
}

impl<I, A, G, D> Evidence<I, A, G, D>
where
    I: Clone + PartialEq,
    A: Clone,
    G: Clone,
    D: Copy + PartialEq,
{
    pub(crate) fn new(capacity: usize, gap: u64) -> Self {
        Self {
            records: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            gap: gap.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Forgets every record of `tag` (its creator was blacklisted).
    pub(crate) fn forget_tag(&mut self, tag: u64) {
        self.records.retain(|&(t, _), _| t != tag);
    }

    /// Whether a chain of this descriptor was seen (a replayed fresh descriptor).
    pub(crate) fn seen(&self, tag: u64, minted_at: u64) -> bool {
        self.records
            .get(&(tag, minted_at / self.gap))
            .is_some_and(|r| r.minted_at == minted_at)
    }

    /// A chain seen in full (verified), `paths` its short digests. A trailing non-swappable
    /// redemption is left out: it may fork legally.
    pub(crate) fn observe_full(
        &mut self,
        tag: u64,
        token: &Token<I, A, G, D>,
        short: impl Fn(&D) -> u32,
    ) -> Found<I, A, G, D> {
        let mut token = token.clone();
        if token.ends_with(HandOverKind::RedeemNonSwappable) {
            token.pop();
        }
        let t = token.minted_at();
        let bucket = t / self.gap;
        let path: Vec<u32> = token.digests().iter().map(&short).collect();
        let mut found = Found::Nothing;
        for b in [bucket.wrapping_sub(1), bucket + 1] {
            if let Some(r) = self.records.get(&(tag, b))
                && r.minted_at.abs_diff(t) < self.gap
            {
                found = match &r.full {
                    Some(full) => {
                        conflict(full, &token, self.gap).map_or(Found::Nothing, Found::Proof)
                    }
                    None => Found::Unresolved,
                };
                if !matches!(found, Found::Nothing) {
                    return found;
                }
            }
        }
        let Some(r) = self.records.get_mut(&(tag, bucket)) else {
            self.insert(
                (tag, bucket),
                Record {
                    minted_at: t,
                    path,
                    full: Some(Box::new(token)),
                },
            );
            return found;
        };
        if r.minted_at != t || r.path[0] != path[0] {
            // Two descriptors of one creator in one bucket.
            return match &r.full {
                Some(full) => conflict(full, &token, self.gap).map_or(Found::Nothing, Found::Proof),
                None => Found::Unresolved,
            };
        }
        match fork_position(&r.path, &path) {
            None => {
                if path.len() > r.path.len() {
                    r.path = path;
                }
                if r.full
                    .as_ref()
                    .is_none_or(|f| f.digests().len() < token.digests().len())
                {
                    r.full = Some(Box::new(token));
                }
                Found::Nothing
            }
            Some(_) => match &r.full {
                Some(full) => {
                    conflict(full, &token, self.gap).map_or(Found::Unresolved, Found::Proof)
                }
                None => Found::Unresolved,
            },
        }
    }

    /// A partner's sample (unverified digests).
    pub(crate) fn observe_sample(&mut self, sample: Sample<'_>) -> Found<I, A, G, D> {
        if sample.path.is_empty() {
            return Found::Nothing;
        }
        let t = sample.minted_at;
        let bucket = t / self.gap;
        for b in [bucket.wrapping_sub(1), bucket + 1] {
            if let Some(r) = self.records.get(&(sample.tag, b))
                && r.minted_at.abs_diff(t) < self.gap
            {
                return match &r.full {
                    Some(full) => Found::Show((**full).clone()),
                    None => Found::Unresolved,
                };
            }
        }
        let Some(r) = self.records.get_mut(&(sample.tag, bucket)) else {
            self.insert(
                (sample.tag, bucket),
                Record {
                    minted_at: t,
                    path: sample.path.to_vec(),
                    full: None,
                },
            );
            return Found::Nothing;
        };
        if r.minted_at != t || r.path[0] != sample.path[0] {
            return match &r.full {
                Some(full) => Found::Show((**full).clone()),
                None => Found::Unresolved,
            };
        }
        match fork_position(&r.path, sample.path) {
            None => {
                if sample.path.len() > r.path.len() {
                    r.path.clear();
                    r.path.extend_from_slice(sample.path);
                }
                Found::Nothing
            }
            Some(f) => match &r.full {
                // The full chain shows the remembered branch at the fork only if it reaches it.
                Some(full) if full.digests().len() > f => Found::Show((**full).clone()),
                _ => Found::Unresolved,
            },
        }
    }

    fn insert(&mut self, key: (u64, u64), record: Record<I, A, G, D>) {
        if self.capacity == 0 {
            return;
        }
        while self.records.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.records.remove(&old);
                }
                None => break,
            }
        }
        self.records.insert(key, record);
        self.order.push_back(key);
        // Keys forgotten by `forget_tag` linger in `order`: trim them when it doubles.
        if self.order.len() > 2 * self.capacity {
            let records = &self.records;
            self.order.retain(|k| records.contains_key(k));
        }
    }
}
