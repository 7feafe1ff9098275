//! What the core decided: every call of [`SecureView`](crate::secure::SecureView) reports what
//! changed ([`ExchangeOutcome`]), what it refused and why ([`Invalid`], [`InvalidItems`],
//! [`DropReason`], [`RefuseReason`]) and which offenders it found ([`ProofKind`]).

/// Why a received item (a chain, a sample, a proof, a message) was dropped as invalid. Never
/// a reason to blacklist its sender: only a proof is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invalid {
    /// Not decodable, or a field out of its range (wire).
    Malformed,
    /// A signed payload not in its canonical encoding (wire).
    NonCanonical,
    /// A field over its size limit (wire).
    TooLarge,
    /// A peer id whose public key cannot be read from it (wire).
    UnsupportedKey,
    /// A descriptor declaring another mint gap than ours.
    GapMismatch,
    /// A chain longer than [`SecureParams::max_links`](crate::secure::SecureParams::max_links).
    TooLong,
    /// A signature that does not verify.
    BadSignature,
    /// A hand-over signed by another than the previous owner, naming its signer, or a
    /// redemption before the last link.
    BrokenChain,
    /// Dated beyond `max_skew` in the future.
    FromFuture,
    /// Older than `max_age`.
    Expired,
    /// A fresh descriptor older than `fresh_window`.
    StaleFresh,
    /// A fresh descriptor seen before.
    Replay,
    /// A chain whose last hand-over is not the sender's to us, or of the wrong kind.
    WrongHandOver,
    /// Items beyond a per-message limit (samples, suspects, proofs, transfers).
    Excess,
    /// A proof that does not prove, or declares another gap.
    BadProof,
    /// A message that does not fit the exchange's state.
    Unexpected,
}

impl Invalid {
    /// Every reason, in [`InvalidItems`]' order.
    pub const ALL: [Invalid; 16] = [
        Invalid::Malformed,
        Invalid::NonCanonical,
        Invalid::TooLarge,
        Invalid::UnsupportedKey,
        Invalid::GapMismatch,
        Invalid::TooLong,
        Invalid::BadSignature,
        Invalid::BrokenChain,
        Invalid::FromFuture,
        Invalid::Expired,
        Invalid::StaleFresh,
        Invalid::Replay,
        Invalid::WrongHandOver,
        Invalid::Excess,
        Invalid::BadProof,
        Invalid::Unexpected,
    ];

    /// A short name, for labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed",
            Invalid::NonCanonical => "non_canonical",
            Invalid::TooLarge => "too_large",
            Invalid::UnsupportedKey => "unsupported_key",
            Invalid::GapMismatch => "gap_mismatch",
            Invalid::TooLong => "too_long",
            Invalid::BadSignature => "bad_signature",
            Invalid::BrokenChain => "broken_chain",
            Invalid::FromFuture => "from_future",
            Invalid::Expired => "expired",
            Invalid::StaleFresh => "stale_fresh",
            Invalid::Replay => "replay",
            Invalid::WrongHandOver => "wrong_hand_over",
            Invalid::Excess => "excess",
            Invalid::BadProof => "bad_proof",
            Invalid::Unexpected => "unexpected",
        }
    }

    fn index(self) -> usize {
        Invalid::ALL
            .iter()
            .position(|&r| r == self)
            .expect("listed")
    }
}

/// Invalid items by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvalidItems {
    counts: [u32; Invalid::ALL.len()],
}

impl InvalidItems {
    /// Counts one item dropped for `reason`.
    pub fn count(&mut self, reason: Invalid) {
        self.add_n(reason, 1);
    }

    /// Counts `n` items dropped for `reason`.
    pub fn add_n(&mut self, reason: Invalid, n: u32) {
        let c = &mut self.counts[reason.index()];
        *c = c.saturating_add(n);
    }

    /// Items dropped for `reason`.
    pub fn get(&self, reason: Invalid) -> u32 {
        self.counts[reason.index()]
    }

    /// Items dropped for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &InvalidItems) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
    }

    /// The non-zero counts, by reason.
    pub fn iter(&self) -> impl Iterator<Item = (Invalid, u32)> + '_ {
        Invalid::ALL
            .iter()
            .zip(self.counts)
            .filter(|(_, c)| *c > 0)
            .map(|(&r, c)| (r, c))
    }
}

/// Why a valid descriptor left, or never entered, the holdings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// It names the local node (a legal transfer: the node's own descriptor came back).
    Own,
    /// The holdings have one of this creator already: the younger is kept.
    Duplicate,
    /// Its creator is blacklisted.
    Blacklisted,
    /// No slot was free.
    NoRoom,
    /// Older than `max_age`.
    Expired,
    /// Its creator could not be reached (the exchange failed before anything was signed), or
    /// refused the redemption.
    Unreachable,
    /// A join brought a descriptor into a full view: the oldest holding made room.
    Displaced,
}

/// Why a responder refused an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefuseReason {
    /// The redeemed descriptor is not the responder's, or not owned by the initiator.
    NotOwned,
    /// The redeemed descriptor is older than `max_age`.
    Expired,
    /// The descriptor was redeemed before (this kind).
    AlreadyRedeemed,
    /// Too many exchanges at once, or no join or non-swappable redemption left in this gap.
    Busy,
    /// The initiator is blacklisted (the proof comes with the refusal).
    Blacklisted,
    /// Something in the opening message was invalid.
    Invalid,
    /// The initiator's fresh descriptor is too old.
    StaleFresh,
    /// The initiator's descriptors declare another mint gap.
    GapMismatch,
}

impl RefuseReason {
    /// The reason with this wire number.
    pub fn from_number(n: i32) -> Option<Self> {
        Some(match n {
            0 => RefuseReason::NotOwned,
            1 => RefuseReason::Expired,
            2 => RefuseReason::AlreadyRedeemed,
            3 => RefuseReason::Busy,
            4 => RefuseReason::Blacklisted,
            5 => RefuseReason::Invalid,
            6 => RefuseReason::StaleFresh,
            7 => RefuseReason::GapMismatch,
            _ => return None,
        })
    }

    /// The wire number.
    pub fn number(self) -> i32 {
        self as i32
    }
}

/// The two violations a proof shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProofKind {
    /// One owner signed two hand-overs of one descriptor position (cloning).
    Fork,
    /// One creator minted two descriptors closer than the gap.
    Frequency,
}

/// Which side of an exchange the local node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// It opened the exchange.
    Initiator,
    /// It answered.
    Responder,
}

/// What one call of the core did. The simulator adds the counts up; the behaviour turns the
/// lists into events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangeOutcome<I> {
    /// Creators whose descriptors entered the holdings.
    pub gained: Vec<I>,
    /// Creators whose descriptors were handed on (signed transfers).
    pub given: Vec<I>,
    /// Descriptors redeemed by this call: whose, and how (initiator).
    pub redeemed: Option<(I, crate::secure::HandOverKind)>,
    /// When the descriptor minted by this call was dated (initiator).
    pub minted: Option<u64>,
    /// Creators whose descriptors handed on were kept as non-swappable copies (repair).
    pub kept_non_swappable: Vec<I>,
    /// Valid descriptors dropped or not taken, with why.
    pub dropped: Vec<(I, DropReason)>,
    /// Invalid items, by reason.
    pub invalid: InvalidItems,
    /// Offenders proven by this node in this call.
    pub proofs_found: Vec<(I, ProofKind)>,
    /// Offenders newly blacklisted in this call (found here or received).
    pub blacklisted: Vec<I>,
    /// A refusal: ours (responder) or the partner's (initiator).
    pub refused: Option<RefuseReason>,
    /// Whether the exchange is over.
    pub finished: bool,
}

impl<I> Default for ExchangeOutcome<I> {
    fn default() -> Self {
        Self {
            gained: Vec::new(),
            given: Vec::new(),
            redeemed: None,
            minted: None,
            kept_non_swappable: Vec::new(),
            dropped: Vec::new(),
            invalid: InvalidItems::default(),
            proofs_found: Vec::new(),
            blacklisted: Vec::new(),
            refused: None,
            finished: false,
        }
    }
}

impl<I> ExchangeOutcome<I> {
    /// Adds `other` to this outcome (the lists appended, counts added).
    pub fn merge(&mut self, other: ExchangeOutcome<I>) {
        self.gained.extend(other.gained);
        self.given.extend(other.given);
        self.redeemed = self.redeemed.take().or(other.redeemed);
        self.minted = self.minted.or(other.minted);
        self.kept_non_swappable.extend(other.kept_non_swappable);
        self.dropped.extend(other.dropped);
        self.invalid.add(&other.invalid);
        self.proofs_found.extend(other.proofs_found);
        self.blacklisted.extend(other.blacklisted);
        self.refused = self.refused.or(other.refused);
        self.finished |= other.finished;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_items_count_by_reason() {
        let mut items = InvalidItems::default();
        items.count(Invalid::BadSignature);
        items.add_n(Invalid::Excess, 3);
        let mut more = InvalidItems::default();
        more.count(Invalid::BadSignature);
        items.add(&more);
        assert_eq!(items.get(Invalid::BadSignature), 2);
        assert_eq!(items.total(), 5);
        assert_eq!(items.iter().count(), 2);
        assert!(Invalid::ALL.iter().all(|r| !r.as_str().is_empty()));
    }

    #[test]
    fn refuse_reasons_round_trip_their_numbers() {
        for n in 0..8 {
            assert_eq!(RefuseReason::from_number(n).unwrap().number(), n);
        }
        assert_eq!(RefuseReason::from_number(8), None);
    }
}
