//! The simulator's signature scheme: keyed MACs standing in for signatures.
//!
//! Digests are SipHash-1-3 of an object's fields under a public key; a "signature" is
//! SipHash-1-3 of the signer and the digest under a secret key known only to the
//! [`SimAuthority`]. Verification is the authority's (the scheme holds its key privately and
//! only answers yes or no), and signing needs a [`SimSigner`], which only the authority
//! makes: the simulator hands adversary code the signers of the coalition's ids and nothing
//! else, so it cannot forge an honest node's signature short of guessing a 64-bit MAC.

use std::{
    hash::{Hash, Hasher},
    sync::Arc,
};

use siphasher::sip::SipHasher13;

use crate::secure::{
    chain::{DescriptorBody, HandOver},
    scheme::{Scheme, SignError, Signer},
};

#[derive(Debug)]
struct Keys {
    public: (u64, u64),
    secret: (u64, u64),
}

/// Makes the simulator's scheme and signers from two secrets.
#[derive(Debug, Clone)]
pub struct SimAuthority {
    keys: Arc<Keys>,
}

impl SimAuthority {
    /// An authority with these keys (drawn from the run's seed).
    pub fn new(public: (u64, u64), secret: (u64, u64)) -> Self {
        Self {
            keys: Arc::new(Keys { public, secret }),
        }
    }

    /// The scheme every node verifies with.
    pub fn scheme(&self) -> SimScheme {
        SimScheme {
            keys: self.keys.clone(),
        }
    }

    /// The private key of node `id`.
    pub fn signer(&self, id: u32) -> SimSigner {
        SimSigner {
            id,
            keys: self.keys.clone(),
        }
    }
}

/// The simulator's [`Scheme`] over `u32` node ids and no addresses.
#[derive(Debug, Clone)]
pub struct SimScheme {
    keys: Arc<Keys>,
}

/// One simulated node's private key.
#[derive(Debug, Clone)]
pub struct SimSigner {
    id: u32,
    keys: Arc<Keys>,
}

fn hash_with(key: (u64, u64), fields: impl Hash) -> u64 {
    let mut h = SipHasher13::new_with_keys(key.0, key.1);
    fields.hash(&mut h);
    h.finish()
}

impl Keys {
    fn mac(&self, signer: u32, digest: u64) -> u64 {
        hash_with(self.secret, (signer, digest))
    }
}

impl Scheme<u32, ()> for SimScheme {
    type Signature = u64;
    type Digest = u64;

    fn descriptor_digest(&self, body: &DescriptorBody<u32, ()>) -> u64 {
        hash_with(
            self.keys.public,
            (0u8, body.creator, body.minted_at, body.mint_gap),
        )
    }

    fn verify_descriptor(&self, body: &DescriptorBody<u32, ()>, signature: &u64) -> Option<u64> {
        let digest = self.descriptor_digest(body);
        (self.keys.mac(body.creator, digest) == *signature).then_some(digest)
    }

    fn handover_digest(&self, h: &HandOver<u32, u64>) -> u64 {
        hash_with(self.keys.public, (1u8, h.prev, h.to, h.kind as u8))
    }

    fn verify_handover(
        &self,
        signer: &u32,
        h: &HandOver<u32, u64>,
        signature: &u64,
    ) -> Option<u64> {
        let digest = self.handover_digest(h);
        (self.keys.mac(*signer, digest) == *signature).then_some(digest)
    }

    fn short(&self, digest: &u64) -> u32 {
        (*digest >> 32) as u32
    }

    fn tag(&self, id: &u32) -> u64 {
        u64::from(*id)
    }
}

impl Signer<u32, (), SimScheme> for SimSigner {
    fn id(&self) -> &u32 {
        &self.id
    }

    fn sign_descriptor(
        &self,
        scheme: &SimScheme,
        body: &DescriptorBody<u32, ()>,
    ) -> Result<(u64, u64), SignError> {
        if body.creator != self.id {
            return Err(SignError("a descriptor names its signer".into()));
        }
        let digest = scheme.descriptor_digest(body);
        Ok((self.keys.mac(self.id, digest), digest))
    }

    fn sign_handover(
        &self,
        scheme: &SimScheme,
        handover: &HandOver<u32, u64>,
    ) -> Result<(u64, u64), SignError> {
        let digest = scheme.handover_digest(handover);
        Ok((self.keys.mac(self.id, digest), digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secure::HandOverKind;

    #[test]
    fn signatures_verify_only_for_their_signer_and_object() {
        let authority = SimAuthority::new((1, 2), (3, 4));
        let scheme = authority.scheme();
        let alice = authority.signer(7);
        let body = DescriptorBody {
            creator: 7,
            minted_at: 100,
            mint_gap: 10,
            addresses: (),
        };
        let (sig, digest) = alice.sign_descriptor(&scheme, &body).unwrap();
        assert_eq!(scheme.verify_descriptor(&body, &sig), Some(digest));
        let other = DescriptorBody {
            minted_at: 101,
            ..body.clone()
        };
        assert_eq!(scheme.verify_descriptor(&other, &sig), None);
        assert!(
            alice
                .sign_descriptor(&scheme, &DescriptorBody { creator: 8, ..body })
                .is_err()
        );
        let h = HandOver {
            prev: digest,
            to: 9,
            kind: HandOverKind::Transfer,
        };
        let (sig, d) = alice.sign_handover(&scheme, &h).unwrap();
        assert_eq!(scheme.verify_handover(&7, &h, &sig), Some(d));
        assert_eq!(scheme.verify_handover(&8, &h, &sig), None);
        let forged = SimAuthority::new((1, 2), (5, 6)).signer(7);
        let (sig, _) = forged.sign_handover(&scheme, &h).unwrap();
        assert_eq!(
            scheme.verify_handover(&7, &h, &sig),
            None,
            "another secret forges nothing"
        );
    }
}
