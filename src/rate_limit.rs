//! The per-peer inbound rate limit: one token bucket per remote peer that asks us to shuffle.
//!
//! Sans-IO, like the view: the caller passes the time in, as a [`Duration`] since any fixed
//! origin it keeps (the [`Behaviour`](crate::Behaviour) uses the instant it was created, the
//! simulator its cycle count). Both drive this very type, so the simulator measures the limit
//! the behaviour enforces.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, RandomState},
    time::Duration,
};

use crate::config::InboundRateLimit;

/// Most peers whose inbound rate is tracked at once.
pub(crate) const MAX_RATE_LIMITED_PEERS: usize = 4096;

/// One token bucket per remote peer: a peer may ask `burst` times in a row, then once per
/// `refill_every` (see [`InboundRateLimit`]). At most `max_peers` buckets are kept: when a new
/// peer arrives at a full table, buckets that have refilled completely are forgotten first
/// (they carry no information: a missing bucket is a full one), then the stalest one.
///
/// `S` hashes the peer keys; the simulator passes a fixed hasher so that which bucket is
/// evicted on a tie does not depend on a random hash seed.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter<K, S = RandomState> {
    buckets: HashMap<K, TokenBucket, S>,
    max_peers: usize,
}

#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    updated: Duration,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// An empty limiter tracking at most `max_peers` peers (at least one).
    pub(crate) fn new(max_peers: usize) -> Self {
        Self::with_hasher(max_peers, RandomState::new())
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher> RateLimiter<K, S> {
    /// An empty limiter tracking at most `max_peers` peers (at least one), hashing with
    /// `hasher`.
    pub(crate) fn with_hasher(max_peers: usize, hasher: S) -> Self {
        Self {
            buckets: HashMap::with_hasher(hasher),
            max_peers: max_peers.max(1),
        }
    }

    /// Whether `peer` may make us shuffle at time `now`; takes a token if so. A peer seen for
    /// the first time starts with a full bucket. Time going backwards refills nothing.
    pub(crate) fn allow(&mut self, peer: K, limit: InboundRateLimit, now: Duration) -> bool {
        let burst = f64::from(limit.burst);
        let refilled = |bucket: &TokenBucket| {
            let elapsed = now.saturating_sub(bucket.updated);
            (bucket.tokens + elapsed.as_secs_f64() / limit.refill_every.as_secs_f64()).min(burst)
        };
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= self.max_peers {
            // Full buckets carry no information: forget them first, then the stalest.
            self.buckets.retain(|_, bucket| refilled(bucket) < burst);
            if self.buckets.len() >= self.max_peers
                && let Some(stalest) = self
                    .buckets
                    .iter()
                    .min_by_key(|(_, bucket)| bucket.updated)
                    .map(|(peer, _)| peer.clone())
            {
                self.buckets.remove(&stalest);
            }
        }
        let bucket = self.buckets.entry(peer).or_insert(TokenBucket {
            tokens: burst,
            updated: now,
        });
        bucket.tokens = refilled(bucket);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Peers currently tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: InboundRateLimit = InboundRateLimit {
        burst: 3,
        refill_every: Duration::from_secs(10),
    };

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn a_burst_then_one_per_refill_period() {
        let mut limiter = RateLimiter::new(16);
        let allowed: Vec<bool> = (0..5)
            .map(|_| limiter.allow(1u32, LIMIT, secs(0.0)))
            .collect();
        assert_eq!(allowed, [true, true, true, false, false]);
        assert!(!limiter.allow(1, LIMIT, secs(9.9)), "not refilled yet");
        assert!(limiter.allow(1, LIMIT, secs(10.0)));
        assert!(!limiter.allow(1, LIMIT, secs(10.0)));
        // Refilling never exceeds the burst.
        let after_a_long_pause: Vec<bool> = (0..4)
            .map(|_| limiter.allow(1, LIMIT, secs(1_000.0)))
            .collect();
        assert_eq!(after_a_long_pause, [true, true, true, false]);
    }

    #[test]
    fn peers_have_separate_buckets() {
        let mut limiter = RateLimiter::new(16);
        for _ in 0..3 {
            assert!(limiter.allow(1u32, LIMIT, secs(0.0)));
        }
        assert!(!limiter.allow(1, LIMIT, secs(0.0)));
        assert!(limiter.allow(2, LIMIT, secs(0.0)));
    }

    #[test]
    fn asking_once_per_period_is_never_refused() {
        let mut limiter = RateLimiter::new(16);
        let limit = InboundRateLimit {
            burst: 1,
            refill_every: Duration::from_secs(5),
        };
        for k in 0..100 {
            assert!(limiter.allow(7u32, limit, secs(5.0 * f64::from(k))));
        }
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut limiter = RateLimiter::new(16);
        for _ in 0..3 {
            assert!(limiter.allow(1u32, LIMIT, secs(100.0)));
        }
        assert!(!limiter.allow(1, LIMIT, secs(50.0)));
        assert!(!limiter.allow(1, LIMIT, secs(59.0)));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_refilled_buckets_first() {
        let mut limiter = RateLimiter::new(4);
        // Peer 0 is drained at t = 0; peers 1..4 ask once at t = 1..3.
        for _ in 0..3 {
            assert!(limiter.allow(0u32, LIMIT, secs(0.0)));
        }
        for peer in 1..4 {
            assert!(limiter.allow(peer, LIMIT, secs(f64::from(peer))));
        }
        assert_eq!(limiter.tracked(), 4);
        // At t = 15 peers 1..3 have refilled (one token in 10 s): a new peer evicts them, and
        // peer 0, still short of tokens, keeps its bucket.
        assert!(limiter.allow(9, LIMIT, secs(15.0)));
        assert_eq!(limiter.tracked(), 2);
        assert!(limiter.allow(0, LIMIT, secs(15.0)));
        assert!(
            !limiter.allow(0, LIMIT, secs(15.0)),
            "peer 0 was remembered"
        );
    }

    #[test]
    fn the_stalest_bucket_goes_when_none_has_refilled() {
        let mut limiter = RateLimiter::new(2);
        for _ in 0..3 {
            assert!(limiter.allow(1u32, LIMIT, secs(0.0)));
        }
        for _ in 0..3 {
            assert!(limiter.allow(2u32, LIMIT, secs(1.0)));
        }
        assert!(limiter.allow(3, LIMIT, secs(2.0)));
        assert_eq!(limiter.tracked(), 2);
        // Peer 1 (the stalest) was forgotten and starts over with a full bucket; peer 2 was not.
        assert!(!limiter.allow(2, LIMIT, secs(2.0)));
        assert!(limiter.allow(1, LIMIT, secs(2.0)));
    }
}
