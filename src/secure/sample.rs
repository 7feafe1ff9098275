//! Samples: what a node shows of the descriptors it holds and redeemed lately, as digests,
//! so that partners can spot two chains of one descriptor that fork ([`Samples`]).
//!
//! A sample is a creator tag, the mint time and one 32-bit short digest per chain position
//! (the descriptor, then each hand-over). Every digest commits to its prefix, so chain X is a
//! prefix of chain Y exactly when `Y.path[len(X) - 1] == X.path.last()`. Truncating digests
//! can only make two different chains look compatible (a missed detection), never make two
//! compatible chains look forked; proofs are built from full signed objects only.

/// The samples of one message, stored flat (two allocations however many there are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Samples {
    heads: Vec<Head>,
    positions: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    tag: u64,
    minted_at: u64,
    start: u32,
    len: u32,
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// The creator's tag ([`Scheme::tag`](crate::secure::Scheme::tag)).
    pub tag: u64,
    /// When the descriptor was minted.
    pub minted_at: u64,
    /// The short digest of each position: the descriptor, then each hand-over.
    pub path: &'a [u32],
}

impl Samples {
    /// No samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample.
    pub fn push(&mut self, tag: u64, minted_at: u64, path: impl IntoIterator<Item = u32>) {
        let start = self.positions.len();
        self.positions.extend(path);
        self.heads.push(Head {
            tag,
            minted_at,
            start: start as u32,
            len: (self.positions.len() - start) as u32,
        });
    }

    /// No samples, with room for `samples` of `positions` positions in all.
    pub fn with_capacity(samples: usize, positions: usize) -> Self {
        Self {
            heads: Vec::with_capacity(samples),
            positions: Vec::with_capacity(positions),
        }
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The samples, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Sample<'_>> + '_ {
        self.heads.iter().map(|h| Sample {
            tag: h.tag,
            minted_at: h.minted_at,
            path: &self.positions[h.start as usize..(h.start + h.len) as usize],
        })
    }

    /// Keeps the first `n` samples.
    pub fn truncate(&mut self, n: usize) {
        if n < self.heads.len() {
            let end = self.heads[n].start as usize;
            self.heads.truncate(n);
            self.positions.truncate(end);
        }
    }

    /// Empties the set, keeping its memory.
    pub fn clear(&mut self) {
        self.heads.clear();
        self.positions.clear();
    }
}

/// Where two paths of one descriptor first differ, if neither is a prefix of the other.
pub(crate) fn fork_position<T: PartialEq>(a: &[T], b: &[T]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_stored_flat_and_read_back_in_order() {
        let mut s = Samples::new();
        s.push(1, 10, [1, 2, 3]);
        s.push(2, 20, []);
        s.push(3, 30, [4]);
        let all: Vec<_> = s.iter().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].path, &[1, 2, 3]);
        assert!(all[1].path.is_empty());
        assert_eq!(
            (all[2].tag, all[2].minted_at, all[2].path),
            (3, 30, &[4][..])
        );
        s.truncate(1);
        assert_eq!(s.len(), 1);
        assert_eq!(s.positions.len(), 3);
    }

    #[test]
    fn a_fork_is_the_first_differing_position() {
        assert_eq!(fork_position(&[1, 2, 3], &[1, 2]), None);
        assert_eq!(fork_position(&[1, 2, 3], &[1, 5, 3]), Some(1));
        assert_eq!(fork_position(&[0], &[1]), Some(0));
    }
}
