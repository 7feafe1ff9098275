//! Proofs of misbehaviour ([`Proof`]), their clock-free check ([`verify_proof`]), how they are
//! built from two conflicting chains, and the blacklist they feed.

use std::{
    collections::{HashSet, VecDeque},
    hash::Hash,
};

use crate::secure::{
    chain::{DescriptorBody, HandOver, HandOverKind, Link, Token},
    outcome::ProofKind,
    sample::fork_position,
    scheme::Scheme,
};

/// A descriptor and its creator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignedDescriptor<I, A, G> {
    /// The descriptor.
    pub body: DescriptorBody<I, A>,
    /// Its creator's signature.
    pub signature: G,
}

/// Two signed objects that together show a violation of the protocol. Any node checks one
/// with [`verify_proof`], with no clock and no other state: a proof valid anywhere is valid
/// everywhere, forever.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Proof<I, A, G, D> {
    /// `offender` signed two different hand-overs of the same position `prev`, neither of
    /// them a non-swappable redemption: it handed one descriptor to two owners.
    Fork {
        /// The signer of both hand-overs.
        offender: I,
        /// The digest both hand-overs name.
        prev: D,
        /// One hand-over.
        a: Link<I, G>,
        /// The other.
        b: Link<I, G>,
    },
    /// One creator signed two different descriptors dated less than the gap apart.
    Frequency {
        /// One descriptor.
        a: SignedDescriptor<I, A, G>,
        /// The other.
        b: SignedDescriptor<I, A, G>,
    },
}

impl<I, A, G, D> Proof<I, A, G, D> {
    /// The node the proof accuses.
    pub fn offender(&self) -> &I {
        match self {
            Proof::Fork { offender, .. } => offender,
            Proof::Frequency { a, .. } => &a.body.creator,
        }
    }

    /// Which violation it shows.
    pub fn kind(&self) -> ProofKind {
        match self {
            Proof::Fork { .. } => ProofKind::Fork,
            Proof::Frequency { .. } => ProofKind::Frequency,
        }
    }
}

/// Why a proof does not prove anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// A signature does not verify.
    #[error("a signature does not verify")]
    BadSignature,
    /// The two objects are the same hand-over or the same descriptor.
    #[error("the two objects do not conflict")]
    NoConflict,
    /// One hand-over is a non-swappable redemption, which is allowed.
    #[error("a non-swappable redemption is exempt")]
    Exempt,
    /// The descriptors have different creators, or a hand-over names its signer.
    #[error("the objects are not about one offender")]
    Mismatch,
    /// The descriptors are at least one gap apart.
    #[error("the descriptors are at least one gap apart")]
    FarApart,
    /// A descriptor declares another gap than the verifier's.
    #[error("a descriptor declares another gap")]
    GapMismatch,
}

/// Checks `proof` against the verifier's `mint_gap`; returns the offender if it proves a
/// violation. Pure: no clock, no state.
pub fn verify_proof<I, A, S>(
    scheme: &S,
    mint_gap: u64,
    proof: &Proof<I, A, S::Signature, S::Digest>,
) -> Result<I, ProofError>
where
    I: Clone + PartialEq,
    S: Scheme<I, A>,
{
    match proof {
        Proof::Fork {
            offender,
            prev,
            a,
            b,
        } => {
            if a.kind == HandOverKind::RedeemNonSwappable
                || b.kind == HandOverKind::RedeemNonSwappable
            {
                return Err(ProofError::Exempt);
            }
            if (&a.to, a.kind) == (&b.to, b.kind) {
                return Err(ProofError::NoConflict);
            }
            if a.to == *offender || b.to == *offender {
                return Err(ProofError::Mismatch);
            }
            for link in [a, b] {
                let handover = HandOver {
                    prev: *prev,
                    to: link.to.clone(),
                    kind: link.kind,
                };
                if scheme
                    .verify_handover(offender, &handover, &link.signature)
                    .is_none()
                {
                    return Err(ProofError::BadSignature);
                }
            }
            Ok(offender.clone())
        }
        Proof::Frequency { a, b } => {
            if a.body.creator != b.body.creator {
                return Err(ProofError::Mismatch);
            }
            if a.body.mint_gap != mint_gap || b.body.mint_gap != mint_gap {
                return Err(ProofError::GapMismatch);
            }
            if a.body.minted_at.abs_diff(b.body.minted_at) >= mint_gap {
                return Err(ProofError::FarApart);
            }
            let da = scheme.verify_descriptor(&a.body, &a.signature);
            let db = scheme.verify_descriptor(&b.body, &b.signature);
            match (da, db) {
                (Some(da), Some(db)) if da == db => Err(ProofError::NoConflict),
                (Some(_), Some(_)) => Ok(a.body.creator.clone()),
                _ => Err(ProofError::BadSignature),
            }
        }
    }
}

/// The proof two verified tokens of one creator make, if they conflict: different
/// descriptors less than `mint_gap` apart, or one descriptor whose chains fork at a
/// hand-over that is not a non-swappable redemption.
pub(crate) fn conflict<I, A, G, D>(
    a: &Token<I, A, G, D>,
    b: &Token<I, A, G, D>,
    mint_gap: u64,
) -> Option<Proof<I, A, G, D>>
where
    I: Clone + PartialEq,
    A: Clone,
    G: Clone,
    D: Copy + PartialEq,
{
    if a.creator() != b.creator() {
        return None;
    }
    if a.digests()[0] != b.digests()[0] {
        if a.minted_at().abs_diff(b.minted_at()) >= mint_gap {
            return None;
        }
        let signed = |t: &Token<I, A, G, D>| SignedDescriptor {
            body: t.body().clone(),
            signature: t.chain().signature.clone(),
        };
        return Some(Proof::Frequency {
            a: signed(a),
            b: signed(b),
        });
    }
    let f = fork_position(a.digests(), b.digests())?;
    // Position f >= 1 is hand-over f - 1, signed by the owner at position f - 1.
    let (la, lb) = (&a.links()[f - 1], &b.links()[f - 1]);
    if la.kind == HandOverKind::RedeemNonSwappable || lb.kind == HandOverKind::RedeemNonSwappable {
        return None;
    }
    Some(Proof::Fork {
        offender: a.chain().signer(f - 1).clone(),
        prev: a.digests()[f - 1],
        a: la.clone(),
        b: lb.clone(),
    })
}

/// Offenders and the proofs against them: the blacklist, the proofs to pass on (newest
/// first) and the floods waiting for the caller.
#[derive(Debug, Clone)]
pub(crate) struct Blacklist<I, A, G, D> {
    offenders: HashSet<I>,
    tags: HashSet<u64>,
    /// Offenders in the order they were blacklisted, with their tags (oldest first).
    order: VecDeque<(I, u64)>,
    max: usize,
    /// Proofs to pass on, newest first.
    proofs: VecDeque<Proof<I, A, G, D>>,
    max_proofs: usize,
    /// Where the round robin of proofs sent on exchanges stands.
    cursor: usize,
}

impl<I: Clone + Eq + Hash, A, G, D> Blacklist<I, A, G, D> {
    pub(crate) fn new(max: usize, max_proofs: usize) -> Self {
        Self {
            offenders: HashSet::new(),
            tags: HashSet::new(),
            order: VecDeque::new(),
            max,
            proofs: VecDeque::new(),
            max_proofs,
            cursor: 0,
        }
    }

    pub(crate) fn contains(&self, id: &I) -> bool {
        !self.offenders.is_empty() && self.offenders.contains(id)
    }

    pub(crate) fn contains_tag(&self, tag: u64) -> bool {
        !self.tags.is_empty() && self.tags.contains(&tag)
    }

    pub(crate) fn len(&self) -> usize {
        self.offenders.len()
    }

    pub(crate) fn offenders(&self) -> impl Iterator<Item = &I> + '_ {
        self.order.iter().map(|(id, _)| id)
    }

    /// Blacklists the offender of a verified proof; false if it was already.
    pub(crate) fn insert(&mut self, offender: I, tag: u64, proof: Proof<I, A, G, D>) -> bool {
        if self.max == 0 || self.offenders.contains(&offender) {
            return false;
        }
        if self.order.len() >= self.max
            && let Some((old, old_tag)) = self.order.pop_front()
        {
            self.offenders.remove(&old);
            self.tags.remove(&old_tag);
        }
        self.offenders.insert(offender.clone());
        self.tags.insert(tag);
        self.order.push_back((offender, tag));
        if self.max_proofs > 0 {
            if self.proofs.len() >= self.max_proofs {
                self.proofs.pop_back();
            }
            self.proofs.push_front(proof);
            self.cursor = 0;
        }
        true
    }

    /// The proof against `offender`, if kept.
    pub(crate) fn proof_of(&self, offender: &I) -> Option<&Proof<I, A, G, D>> {
        self.proofs.iter().find(|p| p.offender() == offender)
    }

    /// The next `n` proofs of the round robin (newest first).
    pub(crate) fn next_proofs(&mut self, n: usize) -> impl Iterator<Item = &Proof<I, A, G, D>> {
        let len = self.proofs.len();
        let n = n.min(len);
        let start = if len == 0 { 0 } else { self.cursor % len };
        self.cursor = if len == 0 { 0 } else { (start + n) % len };
        let proofs = &self.proofs;
        (0..n).map(move |k| &proofs[(start + k) % len])
    }

    pub(crate) fn proofs(&self) -> impl Iterator<Item = &Proof<I, A, G, D>> + '_ {
        self.proofs.iter()
    }
}
