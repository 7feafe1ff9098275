//! The evidence store: what a node remembers of the descriptors it has seen, to catch clones
//! (two chains of one descriptor that fork) and over-minting (two descriptors of one creator
//! closer than the gap).
//!
//! One record per descriptor: the mint time, the longest chain path seen (short digests) and,
//! when the node saw that chain in full, the chain itself. A conflict between two full chains
//! is a proof; a conflict between a full chain and a partner's sample makes the node show its
//! chain to that partner (who holds the other in full and so completes the proof); a conflict
//! with digests only is counted and the full side, if any, kept as a suspect. The oldest
//! records are forgotten first.
//!
//! Records are grouped by creator tag in a hash map keyed with a private random key, so a
//! look-up costs one hash whatever the creator's number of records.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasher, Hasher},
};

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

/// A path of short digests, inline up to 7 positions (most chains are shorter).
#[derive(Debug, Clone)]
enum Path {
    Inline { len: u8, positions: [u32; 7] },
    Heap(Box<[u32]>),
}

impl Path {
    fn new(path: &[u32]) -> Self {
        if path.len() <= 7 {
            let mut positions = [0; 7];
            positions[..path.len()].copy_from_slice(path);
            Path::Inline {
                len: path.len() as u8,
                positions,
            }
        } else {
            Path::Heap(path.into())
        }
    }

    fn get(&self) -> &[u32] {
        match self {
            Path::Inline { len, positions } => &positions[..*len as usize],
            Path::Heap(p) => p,
        }
    }
}

#[derive(Debug, Clone)]
struct Record<I, A, G, D> {
    minted_at: u64,
    path: Path,
    /// The longest chain seen in full, a prefix of (or equal to) `path`.
    full: Option<Box<Token<I, A, G, D>>>,
}

/// A keyed multiply-xorshift hash of a creator tag (tags are digests already; the key keeps
/// an attacker from choosing colliding ones).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TagHash(u64);

#[derive(Debug, Clone, Copy)]
pub(crate) struct TagHasher(u64, u64);

impl BuildHasher for TagHash {
    type Hasher = TagHasher;

    fn build_hasher(&self) -> TagHasher {
        TagHasher(self.0, 0)
    }
}

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        let mut z = self.1 ^ self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.1 = self.1.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.1 = self.1.rotate_left(29) ^ n;
    }
}

/// The records of one creator.
type Records<I, A, G, D> = Vec<Record<I, A, G, D>>;

/// Remembered descriptors, by creator tag.
#[derive(Debug, Clone)]
pub(crate) struct Evidence<I, A, G, D> {
    records: HashMap<u64, Records<I, A, G, D>, TagHash>,
    /// Records in the order they were made (tag, mint time), oldest first.
    order: VecDeque<(u64, u64)>,
    len: usize,
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
    pub(crate) fn new(capacity: usize, gap: u64, key: u64) -> Self {
        Self {
            records: HashMap::with_hasher(TagHash(key)),
            order: VecDeque::new(),
            len: 0,
            capacity,
            gap: gap.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Forgets every record of `tag` (its creator was blacklisted).
    pub(crate) fn forget_tag(&mut self, tag: u64) {
        if let Some(list) = self.records.remove(&tag) {
            self.len -= list.len();
        }
    }

    /// Whether a chain of this descriptor was seen (a replayed fresh descriptor).
    pub(crate) fn seen(&self, tag: u64, minted_at: u64) -> bool {
        self.records
            .get(&tag)
            .is_some_and(|list| list.iter().any(|r| r.minted_at == minted_at))
    }

    /// The record of `tag` dated within a gap of `t`, if any (the first found).
    fn near(&mut self, tag: u64, t: u64) -> Option<&mut Record<I, A, G, D>> {
        let gap = self.gap;
        self.records
            .get_mut(&tag)?
            .iter_mut()
            .find(|r| r.minted_at.abs_diff(t) < gap)
    }

    /// A chain seen in full (verified). A trailing non-swappable redemption is left out: it
    /// may fork legally.
    pub(crate) fn observe_full(
        &mut self,
        tag: u64,
        token: &Token<I, A, G, D>,
        short: impl Fn(&D) -> u32,
    ) -> Found<I, A, G, D> {
        let n =
            token.digests().len() - usize::from(token.ends_with(HandOverKind::RedeemNonSwappable));
        let keep = || {
            let mut t = token.clone();
            if n < t.digests().len() {
                t.pop();
            }
            Box::new(t)
        };
        let mut buf = [0u32; 40];
        let heap: Vec<u32>;
        let path: &[u32] = if n <= buf.len() {
            for (slot, d) in buf.iter_mut().zip(&token.digests()[..n]) {
                *slot = short(d);
            }
            &buf[..n]
        } else {
            heap = token.digests()[..n].iter().map(&short).collect();
            &heap
        };
        let t = token.minted_at();
        let gap = self.gap;
        let Some(r) = self.near(tag, t) else {
            self.insert(tag, t, path, Some(keep()));
            return Found::Nothing;
        };
        if r.minted_at != t || r.path.get()[0] != path[0] {
            // Two descriptors of one creator within a gap.
            return match &r.full {
                Some(full) => conflict(full, &keep(), gap).map_or(Found::Nothing, Found::Proof),
                None => Found::Unresolved,
            };
        }
        match fork_position(r.path.get(), path) {
            None => {
                if path.len() > r.path.get().len() {
                    r.path = Path::new(path);
                }
                if r.full.as_ref().is_none_or(|f| f.digests().len() < n) {
                    r.full = Some(keep());
                }
                Found::Nothing
            }
            Some(_) => match &r.full {
                Some(full) => conflict(full, &keep(), gap).map_or(Found::Unresolved, Found::Proof),
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
        let Some(r) = self.near(sample.tag, t) else {
            self.insert(sample.tag, t, sample.path, None);
            return Found::Nothing;
        };
        if r.minted_at != t || r.path.get()[0] != sample.path[0] {
            return match &r.full {
                Some(full) => Found::Show((**full).clone()),
                None => Found::Unresolved,
            };
        }
        match fork_position(r.path.get(), sample.path) {
            None => {
                if sample.path.len() > r.path.get().len() {
                    r.path = Path::new(sample.path);
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

    fn insert(
        &mut self,
        tag: u64,
        minted_at: u64,
        path: &[u32],
        full: Option<Box<Token<I, A, G, D>>>,
    ) {
        if self.capacity == 0 {
            return;
        }
        while self.len >= self.capacity {
            let Some((old_tag, old_t)) = self.order.pop_front() else {
                break;
            };
            if let Some(list) = self.records.get_mut(&old_tag)
                && let Some(k) = list.iter().position(|r| r.minted_at == old_t)
            {
                list.swap_remove(k);
                self.len -= 1;
                if list.is_empty() {
                    self.records.remove(&old_tag);
                }
            }
        }
        self.records.entry(tag).or_default().push(Record {
            minted_at,
            path: Path::new(path),
            full,
        });
        self.len += 1;
        self.order.push_back((tag, minted_at));
        // Records forgotten by `forget_tag` linger in `order`: trim them when it doubles.
        if self.order.len() > 2 * self.capacity {
            let records = &self.records;
            self.order.retain(|(tag, t)| {
                records
                    .get(tag)
                    .is_some_and(|l| l.iter().any(|r| r.minted_at == *t))
            });
        }
    }
}
