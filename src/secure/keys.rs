//! SecureCyclon over libp2p identity keys: [`Libp2pScheme`] verifies, [`KeypairSigner`]
//! signs, both with libp2p-core's signed-envelope semantics (RFC 0002).
//!
//! A descriptor and a hand-over are each the payload of a signed envelope with a
//! Cyclon-specific domain and payload type ([`crate::secure::wire`] defines the bytes):
//! the signature covers `varint(len(domain)) ‖ domain ‖ varint(len(type)) ‖ type ‖
//! varint(len(payload)) ‖ payload`, exactly what `SignedEnvelope::new` signs, and the digest
//! of an object is the SHA-256 of those bytes. The envelope itself never travels: the key
//! comes from the signer's peer id, which must inline it (an identity multihash: ed25519 and
//! secp256k1 ids do; RSA and ECDSA ids are hashes, so their objects cannot be verified and
//! such nodes cannot run this mode).

use libp2p_core::Multiaddr;
use libp2p_identity::{Keypair, PeerId};
use sha2::{Digest as _, Sha256};

use crate::secure::{
    chain::{DescriptorBody, HandOver},
    scheme::{Scheme, SignError, Signer},
    wire,
};

/// The scheme of real nodes: ed25519 (or any key a peer id inlines) signatures over
/// RFC 0002 signature inputs, SHA-256 digests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Libp2pScheme;

pub use crate::secure::wire::public_key;

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Libp2pScheme {
    fn verify(signer: &PeerId, input: &[u8], signature: &[u8]) -> Option<[u8; 32]> {
        let key = public_key(signer)?;
        key.verify(input, signature).then(|| sha256(input))
    }
}

impl Scheme<PeerId, Vec<Multiaddr>> for Libp2pScheme {
    type Signature = Vec<u8>;
    type Digest = [u8; 32];

    fn descriptor_digest(&self, body: &DescriptorBody<PeerId, Vec<Multiaddr>>) -> [u8; 32] {
        sha256(&wire::descriptor_signature_input(body))
    }

    fn verify_descriptor(
        &self,
        body: &DescriptorBody<PeerId, Vec<Multiaddr>>,
        signature: &Vec<u8>,
    ) -> Option<[u8; 32]> {
        Self::verify(
            &body.creator,
            &wire::descriptor_signature_input(body),
            signature,
        )
    }

    fn handover_digest(&self, handover: &HandOver<PeerId, [u8; 32]>) -> [u8; 32] {
        sha256(&wire::handover_signature_input(handover))
    }

    fn verify_handover(
        &self,
        signer: &PeerId,
        handover: &HandOver<PeerId, [u8; 32]>,
        signature: &Vec<u8>,
    ) -> Option<[u8; 32]> {
        Self::verify(signer, &wire::handover_signature_input(handover), signature)
    }

    fn short(&self, digest: &[u8; 32]) -> u32 {
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
    }

    fn tag(&self, id: &PeerId) -> u64 {
        wire::tag(id)
    }
}

/// A node's identity key as a SecureCyclon signer.
#[derive(Debug, Clone)]
pub struct KeypairSigner {
    keypair: Keypair,
    id: PeerId,
}

impl KeypairSigner {
    /// Signs with `keypair`. Fails if the key's peer id does not inline the public key (RSA,
    /// ECDSA): others could not verify what it signs.
    pub fn new(keypair: Keypair) -> Result<Self, SignError> {
        let id = keypair.public().to_peer_id();
        if public_key(&id).is_none() {
            return Err(SignError(
                "the key's peer id does not carry the public key".into(),
            ));
        }
        Ok(Self { keypair, id })
    }
}

impl Signer<PeerId, Vec<Multiaddr>, Libp2pScheme> for KeypairSigner {
    fn id(&self) -> &PeerId {
        &self.id
    }

    fn sign_descriptor(
        &self,
        _: &Libp2pScheme,
        body: &DescriptorBody<PeerId, Vec<Multiaddr>>,
    ) -> Result<(Vec<u8>, [u8; 32]), SignError> {
        if body.creator != self.id {
            return Err(SignError("a descriptor names its signer".into()));
        }
        let input = wire::descriptor_signature_input(body);
        let signature = self
            .keypair
            .sign(&input)
            .map_err(|e| SignError(e.to_string()))?;
        Ok((signature, sha256(&input)))
    }

    fn sign_handover(
        &self,
        _: &Libp2pScheme,
        handover: &HandOver<PeerId, [u8; 32]>,
    ) -> Result<(Vec<u8>, [u8; 32]), SignError> {
        let input = wire::handover_signature_input(handover);
        let signature = self
            .keypair
            .sign(&input)
            .map_err(|e| SignError(e.to_string()))?;
        Ok((signature, sha256(&input)))
    }
}

#[cfg(test)]
mod tests {
    use libp2p_core::SignedEnvelope;

    use super::*;
    use crate::secure::HandOverKind;

    fn key(seed: u8) -> Keypair {
        let mut bytes = [0u8; 32];
        bytes[0] = seed;
        Keypair::ed25519_from_bytes(bytes).unwrap()
    }

    #[test]
    fn signatures_are_those_of_a_stock_signed_envelope() {
        let k = key(1);
        let signer = KeypairSigner::new(k.clone()).unwrap();
        let body = DescriptorBody {
            creator: *signer.id(),
            minted_at: 1_767_225_600_000,
            mint_gap: 10_000,
            addresses: vec!["/ip4/192.0.2.1/tcp/4001".parse().unwrap()],
        };
        let (signature, digest) = signer.sign_descriptor(&Libp2pScheme, &body).unwrap();
        let envelope = SignedEnvelope::new(
            &k,
            wire::DESCRIPTOR_DOMAIN.to_owned(),
            wire::DESCRIPTOR_PAYLOAD_TYPE.to_vec(),
            wire::descriptor_payload(&body),
        )
        .unwrap();
        let bytes = envelope.into_protobuf_encoding();
        let decoded = SignedEnvelope::from_protobuf_encoding(&bytes).unwrap();
        let (payload, signing_key) = decoded
            .payload_and_signing_key(
                wire::DESCRIPTOR_DOMAIN.to_owned(),
                &wire::DESCRIPTOR_PAYLOAD_TYPE,
            )
            .unwrap();
        assert_eq!(payload, wire::descriptor_payload(&body).as_slice());
        assert_eq!(signing_key.to_peer_id(), body.creator);
        // ed25519 is deterministic: the envelope's signature is ours.
        assert!(bytes.ends_with(&signature));
        assert_eq!(
            Libp2pScheme.verify_descriptor(&body, &signature),
            Some(digest)
        );
        let other = DescriptorBody {
            minted_at: body.minted_at + 1,
            ..body.clone()
        };
        assert_eq!(Libp2pScheme.verify_descriptor(&other, &signature), None);
        let h = HandOver {
            prev: digest,
            to: key(2).public().to_peer_id(),
            kind: HandOverKind::Transfer,
        };
        let (sig, d) = signer.sign_handover(&Libp2pScheme, &h).unwrap();
        assert_eq!(Libp2pScheme.verify_handover(signer.id(), &h, &sig), Some(d));
        assert_eq!(Libp2pScheme.verify_handover(&h.to, &h, &sig), None);
    }

    #[test]
    fn ids_that_do_not_inline_their_key_are_refused() {
        assert!(public_key(&PeerId::random()).is_none());
        assert!(public_key(&key(3).public().to_peer_id()).is_some());
    }
}
