//! What both defences share: private keys, the keyed rank of a peer id under a seed, and the
//! ring of peers that failed to answer.

use std::{
    fmt,
    hash::{Hash, Hasher},
};

use rand::Rng;
use siphasher::sip::SipHasher13;

/// A node's private keys: a keyed hash (SipHash-1-3, a pseudo-random function) of peer ids.
/// Nobody else knows them, so nobody can tell which ids a node's slots or samplers prefer, nor
/// make up ids that rank well.
#[derive(Clone)]
pub(crate) struct Keys {
    k0: u64,
    k1: u64,
}

impl Keys {
    pub(crate) fn draw<R: Rng + ?Sized>(rng: &mut R) -> Self {
        Self {
            k0: rng.next_u64(),
            k1: rng.next_u64(),
        }
    }

    /// The keyed hash of `id`, computed once per id seen; [`rank`] derives every slot's or
    /// sampler's rank from it.
    pub(crate) fn hash<I: Hash + ?Sized>(&self, id: &I) -> u64 {
        let mut hasher = SipHasher13::new_with_keys(self.k0, self.k1);
        id.hash(&mut hasher);
        hasher.finish()
    }

    /// A fresh secret seed, the `n`-th derived from the keys (for a sampler reset, which has
    /// no random number generator at hand).
    pub(super) fn derive_seed(&self, n: u64) -> u64 {
        self.hash(&(u64::MAX, n))
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(private)")
    }
}

/// The rank of an id whose keyed hash is `hash` under a slot's or sampler's secret `seed`:
/// lower is better. A bijective 64-bit mix (the SplitMix64 finaliser) of `hash ^ seed`, so
/// that `c` ranks cost one keyed hash and `c` mixes.
pub(crate) fn rank(hash: u64, seed: u64) -> u64 {
    let mut z = hash ^ seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The last `capacity` peers that failed to answer a shuffle, each for `ttl` cycles (oldest
/// overwritten first). A defence does not take them back meanwhile: neighbours that have not
/// tried them yet keep passing them on for a while. They are forgotten after `ttl` cycles, so
/// that a peer that failed once (a timeout, a restart) can come back.
#[derive(Debug, Clone)]
pub(super) struct DeadRing<I> {
    ids: Vec<(I, u64)>,
    next: usize,
    capacity: usize,
    ttl: u64,
}

impl<I: PartialEq> DeadRing<I> {
    pub(super) fn new(capacity: usize, ttl: u64) -> Self {
        Self {
            ids: Vec::new(),
            next: 0,
            capacity,
            ttl,
        }
    }

    /// Remembers that `id` failed at cycle `now`.
    pub(super) fn push(&mut self, id: I, now: u64) {
        if self.capacity == 0 {
            return;
        }
        if let Some(item) = self.ids.iter_mut().find(|(i, _)| *i == id) {
            item.1 = now;
        } else if self.ids.len() < self.capacity {
            self.ids.push((id, now));
        } else {
            self.ids[self.next] = (id, now);
            self.next = (self.next + 1) % self.capacity;
        }
    }

    /// Whether `id` failed within the last `ttl` cycles before `now`.
    pub(super) fn contains(&self, id: &I, now: u64) -> bool {
        self.ids
            .iter()
            .any(|(i, at)| i == id && now.saturating_sub(*at) < self.ttl)
    }
}

/// Which peers a node has heard of lately: two generations of a blocked Bloom filter over the
/// keyed hashes of their ids (10 bits per id; the 3 bits of an id lie in one 64-bit word, so a
/// look-up touches one word per generation: about 2 % false positives). When the current
/// generation holds `capacity` ids it becomes the previous one and the oldest is forgotten.
/// Memory: `2 × 10 × capacity` bits.
#[derive(Debug, Clone)]
pub(super) struct SeenFilter {
    current: Vec<u64>,
    previous: Vec<u64>,
    inserted: usize,
    capacity: usize,
}

impl SeenFilter {
    pub(super) fn new(capacity: usize) -> Self {
        let words = (capacity * 10).div_ceil(64).max(1);
        Self {
            current: vec![0; words],
            previous: vec![0; words],
            inserted: 0,
            capacity,
        }
    }

    /// The word and the mask of the 3 bits for the id with this keyed hash.
    fn probe(&self, hash: u64) -> (usize, u64) {
        let mixed = rank(hash, 0x9e37_79b9_7f4a_7c15);
        let word = (mixed % self.current.len() as u64) as usize;
        let bits = mixed >> 40;
        let mask = (1 << (bits & 63)) | (1 << ((bits >> 6) & 63)) | (1 << ((bits >> 12) & 63));
        (word, mask)
    }

    /// Whether the id with this keyed hash was seen lately; remembers it either way.
    pub(super) fn check_and_insert(&mut self, hash: u64) -> bool {
        let (word, mask) = self.probe(hash);
        if self.current[word] & mask == mask {
            return true;
        }
        let seen = self.previous[word] & mask == mask;
        if self.inserted >= self.capacity {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.fill(0);
            self.inserted = 0;
        }
        self.current[word] |= mask;
        self.inserted += 1;
        seen
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn ranks_depend_on_the_private_keys_and_the_seed() {
        let mut rng = StdRng::seed_from_u64(1);
        let (a, b) = (Keys::draw(&mut rng), Keys::draw(&mut rng));
        assert_eq!(a.hash(&7u32), a.hash(&7u32));
        assert_ne!(a.hash(&7u32), b.hash(&7u32));
        assert_ne!(rank(a.hash(&7u32), 1), rank(a.hash(&7u32), 2));
        assert_ne!(a.derive_seed(0), a.derive_seed(1));
        assert_eq!(format!("{a:?}"), "Keys(private)");
    }

    #[test]
    fn the_seen_filter_remembers_two_generations() {
        let mut rng = StdRng::seed_from_u64(2);
        let keys = Keys::draw(&mut rng);
        let mut seen = SeenFilter::new(100);
        let hashes: Vec<u64> = (0..250u32).map(|id| keys.hash(&id)).collect();
        let new = hashes[..100]
            .iter()
            .filter(|&&h| !seen.check_and_insert(h))
            .count();
        assert!(new >= 95, "few false positives: {new}");
        assert!(hashes[..100].iter().all(|&h| seen.check_and_insert(h)));
        for &h in &hashes[100..200] {
            seen.check_and_insert(h);
        }
        // 0..100 now in the previous generation, 100..200 in the current one.
        assert!(hashes[100..200].iter().all(|&h| seen.check_and_insert(h)));
        for &h in &hashes[200..250] {
            seen.check_and_insert(h);
        }
        let remembered = hashes[..100]
            .iter()
            .filter(|&&h| seen.check_and_insert(h))
            .count();
        assert!(
            remembered < 30,
            "the oldest generation is forgotten: {remembered}"
        );
    }

    #[test]
    fn the_dead_ring_forgets_the_oldest_and_after_its_time() {
        let mut ring = DeadRing::new(2, 10);
        ring.push(1, 0);
        ring.push(2, 0);
        ring.push(2, 5);
        assert!(ring.contains(&1, 9) && ring.contains(&2, 14));
        assert!(!ring.contains(&1, 10), "forgotten after ttl cycles");
        ring.push(3, 6);
        assert!(!ring.contains(&1, 6) && ring.contains(&2, 6) && ring.contains(&3, 6));
        let mut none = DeadRing::new(0, 10);
        none.push(1, 0);
        assert!(!none.contains(&1, 0));
    }
}
