//! The parameters of SecureCyclon ([`SecureParams`](crate::secure::SecureParams)): every limit
//! of the mode is a field here, with its default and the reason for it. They live beside the
//! view's other parameters because [`Defence::Secure`](crate::view::Defence::Secure) carries
//! them; the secure core (`src/secure/`) takes them from here, so the view never imports it.

use crate::view::ParamsError;

/// The parameters of SecureCyclon: the time rules, the chain and message bounds, the memory
/// of each structure and the anchors. All times are in milliseconds of the caller's clock (the
/// unit the wire carries). [`SecureParams::validate`] checks them.
///
/// ```
/// use libp2p_cyclon::secure::SecureParams;
/// use libp2p_cyclon::view::{Defence, ShuffleParams};
///
/// let params = SecureParams::default();
/// assert_eq!(params.mint_gap, 10_000);
/// let shuffle = ShuffleParams::new(20, 5).with_defence(Defence::Secure(params));
/// assert!(shuffle.validate().is_ok());
/// let skewed = params.with_max_skew(20_000); // the skew must stay below the gap
/// assert!(shuffle.with_defence(Defence::Secure(skewed)).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SecureParams {
    /// The overlay's minting period: a node mints at most one descriptor of itself per gap,
    /// and two descriptors of one creator closer than this prove a violation. Every
    /// descriptor declares it; descriptors declaring another gap are refused (never proofs).
    /// It must not exceed the shuffle interval. Default: 10,000 ms (the default interval).
    pub mint_gap: u64,
    /// How far in the future a received descriptor may be dated; a node dates its own at
    /// most half of this ahead. Must be below `mint_gap`. Default: 5,000 ms.
    pub max_skew: u64,
    /// The oldest a *fresh* descriptor (handed over by its creator, one link) may be on
    /// arrival. Default: 15,000 ms (a request timeout plus `max_skew`).
    pub fresh_window: u64,
    /// A descriptor's lifetime: older ones are dropped, refused and never redeemed. Every
    /// descriptor of a dead node is gone after this. Default: 400,000 ms (`2 c` gaps).
    pub max_age: u64,
    /// Hand-overs per chain: longer chains are refused; a holding at the bound is only
    /// redeemed, never transferred. Default: 32.
    pub max_links: usize,
    /// Redeemed descriptors remembered and sent as samples (the paper's `r`). Default: 5.
    pub redemption_cache: usize,
    /// Descriptors remembered by the evidence store (digest paths, and the full chain of
    /// those received in full). Default: 1,024.
    pub evidence_capacity: usize,
    /// Samples considered per message: more are ignored and counted. Default: 25 (`c + r`).
    pub max_samples: usize,
    /// Full chains kept to show partners because they conflict with a digest seen before
    /// (suspects). Default: 16.
    pub max_suspects: usize,
    /// Suspects sent per message. Default: 2.
    pub suspects_per_message: usize,
    /// Proofs of misbehaviour kept to pass on (newest first). Default: 1,024.
    pub max_proofs: usize,
    /// Proofs sent per exchange message. Default: 2.
    pub proofs_per_message: usize,
    /// Proofs accepted per received message or push; more are ignored and counted.
    /// Default: 8.
    pub max_proofs_received: usize,
    /// Offenders remembered (the oldest is forgotten first). Default: 16,384.
    pub max_blacklist: usize,
    /// Floods queued for the caller ([`SecureView::drain_floods`](crate::secure::SecureView::drain_floods)).
    /// Default: 64.
    pub max_floods: usize,
    /// Non-swappable redemptions a node accepts per `mint_gap` (and makes: at most one per
    /// gap). Default: 1 (the paper).
    pub ns_redemptions_per_gap: usize,
    /// Swappable redemptions a node accepts per `mint_gap`; 0: no limit (IOG's "volume
    /// limit"). An honest node is redeemed at about once per gap on average. Default: 0.
    pub redemptions_per_gap: usize,
    /// Joins (contacts without any redemption: newcomers, views with nothing to redeem) a
    /// node accepts per `mint_gap`. Default: 2. Each join pulls a descriptor out of a full
    /// responder, so fewer joins protect a victim better (N = 1,000, focused coalitions: 0.43
    /// of the victim's view at 10 % and 0.70 at 20 % with 2, 0.23 and 0.41 with 1), but with 1
    /// an overlay grown from one node at 10 newcomers per cycle split in two (N = 200, 60
    /// cycles; docs/defence.md).
    pub joins_per_gap: usize,
    /// Transfers each way in a join. Default: 1.
    pub join_transfers: usize,
    /// Exchanges in progress at once, both roles; more inbound ones are refused (busy).
    /// Default: 64.
    pub max_exchanges: usize,
    /// While a view holds fewer descriptors than this, every other exchange joins one of its
    /// seeds ([`SecureView::add_seed`](crate::secure::SecureView::add_seed): bootstrap
    /// contacts) instead, so that small views grow from the network rather than from each
    /// other; an empty view always does. Default: 3.
    pub seed_join_below: usize,
    /// Seeds remembered (the oldest forgotten first). Default: 8.
    pub max_seeds: usize,
    /// Anchor slots among the `c`: contacts chosen by a private seeded rank over creators of
    /// verified descriptors, never swapped. 0: none. Default: 1 (two widen the in-degree
    /// beyond 2.0 at `c` = 20; docs/defence.md).
    pub anchors: usize,
    /// One exchange in this many contacts an anchor instead of the oldest holding; 0: never
    /// (an anchor is then a contact the view keeps, joined only when the view has nothing to
    /// redeem). Default: 0: probes pull the anchor's descriptors next to the anchor and close
    /// triangles (clustering 15-23 % above the random graph's at N = 10,000 when every 8th
    /// exchange probes), and did not lower a focused victim's share (docs/defence.md).
    pub anchor_probe_every: u32,
    /// How long an anchor's creator stays eligible after its last verified descriptor was
    /// seen. Default: 400,000 ms (`max_age`).
    pub anchor_memory: u64,
    /// Which descriptors an exchange's empty slots take non-swappable copies of when it ends.
    /// Default: [`RepairCopies::GivenAndRedeemed`] (the paper's repair).
    pub repair_copies: RepairCopies,
}

/// Which descriptors a node keeps non-swappable copies of in its empty slots after an
/// exchange ([`SecureParams::repair_copies`]): a copy can only contact its creator, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum RepairCopies {
    /// What it handed on and the descriptor it redeemed (the paper's repair).
    #[default]
    GivenAndRedeemed,
    /// Only what it handed on. A copy of the redeemed descriptor brings the node back to the
    /// partner it just left; when that partner hoards, each return hands it another fresh
    /// descriptor (docs/defence.md: at 20 % rate-honest hoarders, 36 % of the honest slots at
    /// cycle 150 instead of 59 %).
    Given,
    /// None: emptied slots stay empty until a swap fills them (views drain under hoarders:
    /// docs/defence.md).
    Off,
}

impl Default for SecureParams {
    fn default() -> Self {
        Self {
            mint_gap: 10_000,
            max_skew: 5_000,
            fresh_window: 15_000,
            max_age: 400_000,
            max_links: 32,
            redemption_cache: 5,
            evidence_capacity: 1024,
            max_samples: 25,
            max_suspects: 16,
            suspects_per_message: 2,
            max_proofs: 1024,
            proofs_per_message: 2,
            max_proofs_received: 8,
            max_blacklist: 16_384,
            max_floods: 64,
            redemptions_per_gap: 0,
            ns_redemptions_per_gap: 1,
            joins_per_gap: 2,
            join_transfers: 1,
            max_exchanges: 64,
            seed_join_below: 3,
            max_seeds: 8,
            anchors: 1,
            anchor_probe_every: 0,
            anchor_memory: 400_000,
            repair_copies: RepairCopies::GivenAndRedeemed,
        }
    }
}

macro_rules! setter {
    ($(#[$doc:meta] $name:ident: $field:ident: $ty:ty),* $(,)?) => {
        $(
            #[$doc]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )*
    };
}

impl SecureParams {
    /// The defaults for a view of `c` entries, with the time rules scaled to the gap:
    /// `max_skew` half a gap, `fresh_window` one and a half, `max_age` and `anchor_memory`
    /// `2 c` gaps, `max_samples` `c + r`, and no anchors in views of fewer than 9 entries.
    pub fn scaled(view_size: usize, mint_gap: u64) -> Self {
        let d = Self::default();
        let lifetime = mint_gap.saturating_mul(2 * view_size as u64);
        Self {
            mint_gap,
            max_skew: mint_gap / 2,
            fresh_window: mint_gap.saturating_add(mint_gap / 2),
            max_age: lifetime,
            anchor_memory: lifetime,
            max_samples: view_size + d.redemption_cache,
            anchors: d.anchors.min(view_size.saturating_sub(1) / 4),
            ..d
        }
    }

    setter! {
        /// Sets [`mint_gap`](Self::mint_gap).
        with_mint_gap: mint_gap: u64,
        /// Sets [`max_skew`](Self::max_skew).
        with_max_skew: max_skew: u64,
        /// Sets [`fresh_window`](Self::fresh_window).
        with_fresh_window: fresh_window: u64,
        /// Sets [`max_age`](Self::max_age).
        with_max_age: max_age: u64,
        /// Sets [`max_links`](Self::max_links).
        with_max_links: max_links: usize,
        /// Sets [`redemption_cache`](Self::redemption_cache).
        with_redemption_cache: redemption_cache: usize,
        /// Sets [`evidence_capacity`](Self::evidence_capacity).
        with_evidence_capacity: evidence_capacity: usize,
        /// Sets [`max_samples`](Self::max_samples).
        with_max_samples: max_samples: usize,
        /// Sets [`max_suspects`](Self::max_suspects).
        with_max_suspects: max_suspects: usize,
        /// Sets [`suspects_per_message`](Self::suspects_per_message).
        with_suspects_per_message: suspects_per_message: usize,
        /// Sets [`max_proofs`](Self::max_proofs).
        with_max_proofs: max_proofs: usize,
        /// Sets [`proofs_per_message`](Self::proofs_per_message).
        with_proofs_per_message: proofs_per_message: usize,
        /// Sets [`max_proofs_received`](Self::max_proofs_received).
        with_max_proofs_received: max_proofs_received: usize,
        /// Sets [`max_blacklist`](Self::max_blacklist).
        with_max_blacklist: max_blacklist: usize,
        /// Sets [`max_floods`](Self::max_floods).
        with_max_floods: max_floods: usize,
        /// Sets [`redemptions_per_gap`](Self::redemptions_per_gap).
        with_redemptions_per_gap: redemptions_per_gap: usize,
        /// Sets [`ns_redemptions_per_gap`](Self::ns_redemptions_per_gap).
        with_ns_redemptions_per_gap: ns_redemptions_per_gap: usize,
        /// Sets [`joins_per_gap`](Self::joins_per_gap).
        with_joins_per_gap: joins_per_gap: usize,
        /// Sets [`join_transfers`](Self::join_transfers).
        with_join_transfers: join_transfers: usize,
        /// Sets [`max_exchanges`](Self::max_exchanges).
        with_max_exchanges: max_exchanges: usize,
        /// Sets [`seed_join_below`](Self::seed_join_below).
        with_seed_join_below: seed_join_below: usize,
        /// Sets [`max_seeds`](Self::max_seeds).
        with_max_seeds: max_seeds: usize,
        /// Sets [`anchors`](Self::anchors).
        with_anchors: anchors: usize,
        /// Sets [`anchor_probe_every`](Self::anchor_probe_every).
        with_anchor_probe_every: anchor_probe_every: u32,
        /// Sets [`anchor_memory`](Self::anchor_memory).
        with_anchor_memory: anchor_memory: u64,
        /// Sets [`repair_copies`](Self::repair_copies).
        with_repair_copies: repair_copies: RepairCopies,
    }

    /// Checks that the parameters can work together with a view of `view_size` entries and
    /// swap length `swap_length` (which [`ShuffleParams::validate`](crate::view::ShuffleParams::validate)
    /// checks first: `1 <= l <= c`).
    pub fn validate(&self, view_size: usize, swap_length: usize) -> Result<(), ParamsError> {
        let fail = |why| Err(ParamsError::Defence(why));
        if view_size > MAX_SECURE_VIEW_SIZE {
            return fail("secure view size above 1024");
        }
        if self.mint_gap == 0 {
            return fail("mint_gap must be at least 1 ms");
        }
        if self.max_skew >= self.mint_gap {
            return fail("max_skew must be below mint_gap");
        }
        if self.fresh_window == 0 || self.max_age < self.fresh_window {
            return fail("need 0 < fresh_window <= max_age");
        }
        if self.max_age < self.mint_gap {
            return fail("max_age must be at least one mint_gap");
        }
        if self.max_links < 2 || self.max_links > MAX_LINKS {
            return fail("max_links must be within 2..=256");
        }
        if self.anchors >= view_size {
            return fail("anchors must leave holdings");
        }
        if self.join_transfers == 0 || self.join_transfers > swap_length {
            return fail("join_transfers must be within 1..=swap_length");
        }
        if self.max_exchanges == 0 {
            return fail("max_exchanges must be at least 1");
        }
        Ok(())
    }

    /// Whether a descriptor minted at `minted_at` is dated acceptably at `now`: not beyond
    /// `max_skew` in the future, not older than `max_age`.
    pub(crate) fn in_time(&self, minted_at: u64, now: u64) -> Result<(), TimeError> {
        if minted_at > now.saturating_add(self.max_skew) {
            Err(TimeError::FromFuture)
        } else if now.saturating_sub(minted_at) > self.max_age {
            Err(TimeError::Expired)
        } else {
            Ok(())
        }
    }
}

/// Why a descriptor's date is not acceptable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeError {
    FromFuture,
    Expired,
}

/// The largest view SecureCyclon supports.
pub const MAX_SECURE_VIEW_SIZE: usize = 1024;
/// The largest chain bound [`SecureParams::max_links`] may be set to.
pub const MAX_LINKS: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_scale_with_the_gap() {
        assert!(SecureParams::default().validate(20, 5).is_ok());
        let p = SecureParams::scaled(20, 1000);
        assert_eq!((p.max_skew, p.fresh_window, p.max_age), (500, 1500, 40_000));
        assert!(p.validate(20, 3).is_ok());
        assert_eq!(SecureParams::scaled(4, 1000).anchors, 0);
    }

    #[test]
    fn bad_combinations_are_errors() {
        let d = SecureParams::default();
        assert!(d.validate(2000, 5).is_err());
        for bad in [
            d.with_mint_gap(0),
            d.with_max_skew(10_000),
            d.with_fresh_window(0),
            d.with_max_age(100),
            d.with_max_links(1),
            d.with_anchors(20),
            d.with_join_transfers(0),
            d.with_join_transfers(6),
            d.with_max_exchanges(0),
        ] {
            assert!(bad.validate(20, 5).is_err(), "{bad:?}");
        }
    }
}
