//! What SecureCyclon signs: a descriptor's body ([`DescriptorBody`], signed by its creator)
//! and a hand-over ([`HandOver`], signed by the owner that hands the descriptor on). The
//! signature scheme (`scheme.rs`) and the chains (`chain.rs`) both build on these.

/// What a descriptor says, as its creator signs it: who, when, the overlay's gap and the
/// creator's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DescriptorBody<I, A> {
    /// The node the descriptor names and that signed it.
    pub creator: I,
    /// When it was minted (ms of the creator's clock).
    pub minted_at: u64,
    /// The overlay's minting period it was minted under ([`SecureParams::mint_gap`](crate::secure::SecureParams::mint_gap)).
    pub mint_gap: u64,
    /// Where the creator can be reached.
    pub addresses: A,
}

/// What a hand-over does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HandOverKind {
    /// Ownership passes to the next owner, which may swap it on.
    Transfer = 0,
    /// The owner presents the descriptor to its creator to open an exchange (the last link).
    Redeem = 1,
    /// The owner presents a non-swappable copy it kept of a descriptor it handed on (the last
    /// link). Exempt from fork proofs: it is the paper's permitted repair, which creators
    /// bound instead (one per descriptor, a few per gap).
    RedeemNonSwappable = 2,
}

impl HandOverKind {
    /// The kind with this wire number.
    pub fn from_number(n: i32) -> Option<Self> {
        match n {
            0 => Some(HandOverKind::Transfer),
            1 => Some(HandOverKind::Redeem),
            2 => Some(HandOverKind::RedeemNonSwappable),
            _ => None,
        }
    }

    /// Whether this hand-over presents the descriptor to its creator.
    pub fn is_redeem(self) -> bool {
        !matches!(self, HandOverKind::Transfer)
    }
}

/// What an owner signs when it hands a descriptor on: the digest of what it received
/// (`prev`: the descriptor, or the previous hand-over), the next owner and the kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandOver<I, D> {
    /// The digest of the descriptor (first hand-over) or of the previous hand-over.
    pub prev: D,
    /// The next owner (the creator for a redemption).
    pub to: I,
    /// What the hand-over does.
    pub kind: HandOverKind,
}
