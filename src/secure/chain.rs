//! Descriptors and their chains of hand-overs: how a chain travels ([`Chain`], [`Link`]) and a
//! chain whose every signature was checked ([`Token`], made only by [`verify_chain`]). What is
//! signed ([`DescriptorBody`], [`HandOver`]) is in `signed.rs`, beneath the scheme.

pub use crate::secure::signed::{DescriptorBody, HandOver, HandOverKind};
use crate::secure::{outcome::Invalid, scheme::Scheme};

/// A signed hand-over as a chain carries it: its `prev` is implied by its position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link<I, G> {
    /// The next owner.
    pub to: I,
    /// What the hand-over does.
    pub kind: HandOverKind,
    /// The signature of the previous owner (the creator for the first link).
    pub signature: G,
}

/// A descriptor and its hand-overs in order, as received: nothing about it is checked yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chain<I, A, G> {
    /// The descriptor.
    pub body: DescriptorBody<I, A>,
    /// The creator's signature over it.
    pub signature: G,
    /// The hand-overs, first to last.
    pub links: Vec<Link<I, G>>,
}

impl<I, A, G> Chain<I, A, G> {
    /// The current owner: the last link's `to`, or the creator.
    pub fn owner(&self) -> &I {
        self.links.last().map_or(&self.body.creator, |l| &l.to)
    }

    /// The signer of link `k`: the creator for the first, the previous link's `to` after.
    pub fn signer(&self, k: usize) -> &I {
        match k {
            0 => &self.body.creator,
            k => &self.links[k - 1].to,
        }
    }
}

/// A chain whose signatures all verified, with the digest of each position: `digests[0]` is
/// the descriptor's, `digests[k]` the `k`-th hand-over's. Made only by the core's verification and
/// by signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<I, A, G, D> {
    chain: Chain<I, A, G>,
    digests: Vec<D>,
}

impl<I, A, G, D: Copy> Token<I, A, G, D> {
    /// A freshly signed descriptor, no hand-over yet.
    pub(crate) fn minted(body: DescriptorBody<I, A>, signature: G, digest: D) -> Self {
        Self {
            chain: Chain {
                body,
                signature,
                links: Vec::new(),
            },
            digests: vec![digest],
        }
    }

    /// Appends a hand-over signed by the current owner.
    pub(crate) fn push(&mut self, link: Link<I, G>, digest: D) {
        self.chain.links.push(link);
        self.digests.push(digest);
    }

    /// Removes the last hand-over (the token as it was before it).
    pub(crate) fn pop(&mut self) {
        if !self.chain.links.is_empty() {
            self.chain.links.pop();
            self.digests.pop();
        }
    }

    /// The chain.
    pub fn chain(&self) -> &Chain<I, A, G> {
        &self.chain
    }

    /// The chain, given up.
    pub fn into_chain(self) -> Chain<I, A, G> {
        self.chain
    }

    /// The descriptor.
    pub fn body(&self) -> &DescriptorBody<I, A> {
        &self.chain.body
    }

    /// The creator.
    pub fn creator(&self) -> &I {
        &self.chain.body.creator
    }

    /// When the descriptor was minted.
    pub fn minted_at(&self) -> u64 {
        self.chain.body.minted_at
    }

    /// The hand-overs.
    pub fn links(&self) -> &[Link<I, G>] {
        &self.chain.links
    }

    /// The digest of each position (descriptor first).
    pub fn digests(&self) -> &[D] {
        &self.digests
    }

    /// The digest of the last position: it commits to the whole chain.
    pub fn head(&self) -> D {
        *self.digests.last().expect("a token has a descriptor")
    }

    /// The current owner.
    pub fn owner(&self) -> &I {
        self.chain.owner()
    }

    /// Whether the last hand-over is a redemption of this kind.
    pub(crate) fn ends_with(&self, kind: HandOverKind) -> bool {
        self.chain.links.last().is_some_and(|l| l.kind == kind)
    }
}

/// The bounds a chain is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainRules {
    pub(crate) mint_gap: u64,
    pub(crate) max_links: usize,
}

/// Checks every signature of `chain` and its shape: the declared gap, at most `max_links`
/// hand-overs, each signed by the previous owner (the creator first) and naming another node,
/// only the last one a redemption. Time is checked by the caller.
pub(crate) fn verify_chain<I, A, S>(
    scheme: &S,
    rules: ChainRules,
    chain: Chain<I, A, S::Signature>,
) -> Result<Token<I, A, S::Signature, S::Digest>, Invalid>
where
    I: Clone + PartialEq,
    S: Scheme<I, A>,
{
    if chain.body.mint_gap != rules.mint_gap {
        return Err(Invalid::GapMismatch);
    }
    if chain.links.len() > rules.max_links {
        return Err(Invalid::TooLong);
    }
    let last = chain.links.len().saturating_sub(1);
    for (k, link) in chain.links.iter().enumerate() {
        if (link.kind.is_redeem() && k != last) || link.to == *chain.signer(k) {
            return Err(Invalid::BrokenChain);
        }
    }
    let Some(first) = scheme.verify_descriptor(&chain.body, &chain.signature) else {
        return Err(Invalid::BadSignature);
    };
    let mut digests = Vec::with_capacity(chain.links.len() + 1);
    digests.push(first);
    for (k, link) in chain.links.iter().enumerate() {
        let handover = HandOver {
            prev: digests[k],
            to: link.to.clone(),
            kind: link.kind,
        };
        match scheme.verify_handover(chain.signer(k), &handover, &link.signature) {
            Some(digest) => digests.push(digest),
            None => return Err(Invalid::BadSignature),
        }
    }
    Ok(Token { chain, digests })
}
