//! The signature scheme SecureCyclon runs over: [`Scheme`] (digests and verification, no
//! private key) and [`Signer`] (one node's private key). The core is generic over both, so
//! the simulator runs it with keyed MACs (`secure::sim_scheme`) and the behaviour with libp2p
//! identity keys (`secure::keys`).

use std::{fmt::Debug, hash::Hash};

use crate::secure::signed::{DescriptorBody, HandOver};

/// Digests and signature checks of SecureCyclon's two signed objects: a descriptor (signed by
/// its creator) and a hand-over (signed by the owner that hands the descriptor on). Shared
/// and stateless: it holds no private key.
///
/// A digest commits to the whole object, and a hand-over names the digest of what it hands
/// on (`prev`), so the digest of a chain's last link commits to the whole chain.
pub trait Scheme<I, A> {
    /// A signature.
    type Signature: Clone + Eq + Debug;
    /// A digest of a signed object (its signature excluded).
    type Digest: Copy + Eq + Hash + Debug;

    /// The digest of a descriptor.
    fn descriptor_digest(&self, body: &DescriptorBody<I, A>) -> Self::Digest;

    /// Checks that `signature` is `body.creator`'s over `body`; returns the body's digest if
    /// so.
    fn verify_descriptor(
        &self,
        body: &DescriptorBody<I, A>,
        signature: &Self::Signature,
    ) -> Option<Self::Digest>;

    /// The digest of a hand-over.
    fn handover_digest(&self, handover: &HandOver<I, Self::Digest>) -> Self::Digest;

    /// Checks that `signature` is `signer`'s over `handover`; returns the hand-over's digest
    /// if so.
    fn verify_handover(
        &self,
        signer: &I,
        handover: &HandOver<I, Self::Digest>,
        signature: &Self::Signature,
    ) -> Option<Self::Digest>;

    /// The first 32 bits of a digest: one position of a sample's path.
    fn short(&self, digest: &Self::Digest) -> u32;

    /// A 64-bit tag naming a creator in samples.
    fn tag(&self, id: &I) -> u64;
}

/// Why a [`Signer`] could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// One node's private key: signs its descriptors and its hand-overs.
pub trait Signer<I, A, S: Scheme<I, A>> {
    /// The node the key belongs to.
    fn id(&self) -> &I;

    /// Signs a descriptor of this node; returns the signature and the descriptor's digest.
    fn sign_descriptor(
        &self,
        scheme: &S,
        body: &DescriptorBody<I, A>,
    ) -> Result<(S::Signature, S::Digest), SignError>;

    /// Signs a hand-over; returns the signature and the hand-over's digest.
    fn sign_handover(
        &self,
        scheme: &S,
        handover: &HandOver<I, S::Digest>,
    ) -> Result<(S::Signature, S::Digest), SignError>;
}
