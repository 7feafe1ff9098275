//! Signed peer records: the address payload of the behaviour's entries ([`PeerAddresses`]),
//! signing the local peer's own record ([`LocalRecord`]) and verifying received ones
//! ([`SignedPeerRecord::verify`]).
//!
//! A record is a libp2p signed envelope (RFC 0002) in the standard format every libp2p
//! implementation produces and verifies: domain `libp2p-peer-record`, payload type the
//! multicodec `0x0301` (bytes `03 01`), payload the peer record (RFC 0003) of the signer: its
//! peer id, a sequence number and its addresses. Verification is `libp2p-core`'s
//! (`PeerRecord::from_signed_envelope_interop`); the record's bytes are kept exactly as
//! received, so forwarding one sends the very bytes its signer made.
//!
//! No IO and no clock here: the caller passes the time it signs at.

use std::{ops::Deref, sync::Arc};

use libp2p_core::{
    Multiaddr, PeerRecord, SignedEnvelope, peer_record::FromEnvelopeError,
    signed_envelope::ReadPayloadError,
};
use libp2p_identity::{Keypair, PeerId, SigningError};
use prost::Message as _;

use crate::view::{AddressList, EntryPayload};

/// The domain of the standard peer record's signature (RFC 0003).
const DOMAIN: &str = "libp2p-peer-record";
/// The payload type of the standard peer record: multicodec `0x0301` as an unsigned varint.
const PAYLOAD_TYPE: [u8; 2] = [0x03, 0x01];

/// The protobuf payload of a peer record, generated from `proto/peer_record.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/peer_record.pb.rs"));
}

/// A signed peer record that verified: the signed envelope's bytes exactly as they were
/// signed (or received), and the record's sequence number.
///
/// Cheap to clone (the bytes are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPeerRecord {
    bytes: Arc<[u8]>,
    seq: u64,
}

/// Why a received signed peer record was refused. The entry that carried it is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The record is larger than the limit
    /// ([`Config::with_max_record_size`](crate::Config::with_max_record_size)); it was not
    /// decoded.
    #[error("the record has {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// The record's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a signed envelope holding a standard peer record: bad protobuf, another payload
    /// type (such as the legacy Rust-only `libp2p-routing-state` format), an invalid peer id
    /// or address, or a key of a type this build cannot read.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// The signature does not verify.
    #[error("the record's signature does not verify")]
    BadSignature,
    /// The record is signed by, or names, another peer than the entry's.
    #[error("the record is not the entry's peer's own")]
    WrongPeer,
}

impl RecordError {
    fn malformed(error: impl std::fmt::Display) -> Self {
        RecordError::Malformed(error.to_string())
    }
}

impl SignedPeerRecord {
    /// Signs `addresses` as the peer record of `keypair`'s peer with sequence number `seq`, in
    /// the standard format (what go- and js-libp2p verify).
    pub fn sign(
        keypair: &Keypair,
        addresses: &[Multiaddr],
        seq: u64,
    ) -> Result<Self, SigningError> {
        let payload = proto::PeerRecord {
            peer_id: keypair.public().to_peer_id().to_bytes(),
            seq,
            addresses: addresses
                .iter()
                .map(|a| proto::peer_record::AddressInfo {
                    multiaddr: a.to_vec(),
                })
                .collect(),
        }
        .encode_to_vec();
        let envelope =
            SignedEnvelope::new(keypair, DOMAIN.to_owned(), PAYLOAD_TYPE.to_vec(), payload)?;
        Ok(Self {
            bytes: envelope.into_protobuf_encoding().into(),
            seq,
        })
    }

    /// Verifies `bytes` as the signed peer record of `peer`: at most `max_size` bytes (checked
    /// before anything is decoded), a standard signed envelope whose signature verifies, signed
    /// by `peer`'s key and naming `peer`. Returns the record, bytes kept as they are, and the
    /// addresses it lists.
    pub fn verify(
        bytes: &[u8],
        peer: &PeerId,
        max_size: usize,
    ) -> Result<(Self, Vec<Multiaddr>), RecordError> {
        if bytes.len() > max_size {
            return Err(RecordError::TooLarge {
                size: bytes.len(),
                max: max_size,
            });
        }
        let envelope =
            SignedEnvelope::from_protobuf_encoding(bytes).map_err(RecordError::malformed)?;
        let record =
            PeerRecord::from_signed_envelope_interop(envelope).map_err(|error| match error {
                FromEnvelopeError::BadPayload(ReadPayloadError::InvalidSignature) => {
                    RecordError::BadSignature
                }
                // The signature verifies, under a key that is not the named peer's.
                FromEnvelopeError::MismatchedSignature => RecordError::WrongPeer,
                other => RecordError::malformed(other),
            })?;
        if record.peer_id() != *peer {
            return Err(RecordError::WrongPeer);
        }
        let signed = Self {
            bytes: bytes.into(),
            seq: record.seq(),
        };
        Ok((signed, record.addresses().to_vec()))
    }

    /// The signed envelope's protobuf bytes, as signed: what field 4 of an entry carries.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The record's sequence number. Its unit is the signer's own (this crate signs with Unix
    /// time in milliseconds, go-libp2p in nanoseconds): compare it only with another record of
    /// the same peer.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// The addresses of an entry of the [`Behaviour`](crate::Behaviour)'s view, and the signed peer
/// record they come from, if any.
///
/// Verified addresses ([`is_verified`](Self::is_verified)) are exactly the ones the peer itself
/// signed (validated as every received address is); unverified ones are what some peer said,
/// or what the application added. Dereferences to the address slice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerAddresses {
    addresses: Vec<Multiaddr>,
    record: Option<SignedPeerRecord>,
}

impl PeerAddresses {
    /// Addresses that no signature vouches for.
    pub fn unverified(addresses: Vec<Multiaddr>) -> Self {
        Self {
            addresses,
            record: None,
        }
    }

    /// The addresses of the verified `record`.
    pub(crate) fn signed(record: SignedPeerRecord, addresses: Vec<Multiaddr>) -> Self {
        Self {
            addresses,
            record: Some(record),
        }
    }

    /// The addresses.
    pub fn as_slice(&self) -> &[Multiaddr] {
        &self.addresses
    }

    /// Whether the addresses come from a signed peer record of the entry's peer that verified.
    pub fn is_verified(&self) -> bool {
        self.record.is_some()
    }

    /// The signed peer record the addresses come from, if any.
    pub fn signed_record(&self) -> Option<&SignedPeerRecord> {
        self.record.as_ref()
    }
}

impl Deref for PeerAddresses {
    type Target = [Multiaddr];

    fn deref(&self) -> &[Multiaddr] {
        &self.addresses
    }
}

impl<'a> IntoIterator for &'a PeerAddresses {
    type Item = &'a Multiaddr;
    type IntoIter = std::slice::Iter<'a, Multiaddr>;

    fn into_iter(self) -> Self::IntoIter {
        self.addresses.iter()
    }
}

/// The record's seq decides which payload of a peer the view keeps.
impl EntryPayload for PeerAddresses {
    fn record_seq(&self) -> Option<u64> {
        self.record.as_ref().map(SignedPeerRecord::seq)
    }
}

/// Verified addresses are exactly the record's: an address learned out of band is added only
/// to unverified ones.
impl AddressList for PeerAddresses {
    type Address = Multiaddr;

    fn from_address(address: Multiaddr) -> Self {
        Self::unverified(vec![address])
    }

    fn add_address(&mut self, address: Multiaddr, max: usize) -> bool {
        !self.is_verified() && self.addresses.add_address(address, max)
    }
}

/// The local peer's own signed record, re-signed whenever the addresses it advertises change.
#[derive(Debug)]
pub(crate) struct LocalRecord {
    keypair: Keypair,
    /// The addresses last signed, and their record; `None` before the first signature (or
    /// while there is no address to sign).
    current: Option<(Vec<Multiaddr>, SignedPeerRecord)>,
    /// The highest seq signed so far: the next one is above it.
    last_seq: u64,
}

impl LocalRecord {
    pub(crate) fn new(keypair: Keypair) -> Self {
        Self {
            keypair,
            current: None,
            last_seq: 0,
        }
    }

    /// Makes the record say `addresses`: re-signs unless it already says the same set (in any
    /// order: a re-confirmed external address moves to the front), with seq
    /// `max(now_ms, last seq + 1)` (Unix time in milliseconds, strictly increasing even when
    /// the clock stalls or steps back). No addresses, no record. Returns whether the record
    /// changed.
    pub(crate) fn update(&mut self, addresses: &[Multiaddr], now_ms: u64) -> bool {
        let unchanged = match &self.current {
            Some((signed, _)) => same_set(signed, addresses),
            None => addresses.is_empty(),
        };
        if unchanged {
            return false;
        }
        self.current = None;
        if addresses.is_empty() {
            return true;
        }
        let seq = now_ms.max(self.last_seq.saturating_add(1));
        match SignedPeerRecord::sign(&self.keypair, addresses, seq) {
            Ok(record) => {
                self.last_seq = seq;
                self.current = Some((addresses.to_vec(), record));
            }
            // Not with ed25519 keys; an RSA key may refuse. The own entry goes unsigned.
            Err(error) => tracing::warn!(%error, "cannot sign the local peer record"),
        }
        true
    }

    /// The current record, if there is one.
    pub(crate) fn record(&self) -> Option<&SignedPeerRecord> {
        self.current.as_ref().map(|(_, record)| record)
    }

    /// The payload of the local peer's own entry for `addresses`: signed (in the record's
    /// order) when the record says these addresses.
    pub(crate) fn payload(&self, addresses: Vec<Multiaddr>) -> PeerAddresses {
        match &self.current {
            Some((signed, record)) if same_set(signed, &addresses) => {
                PeerAddresses::signed(record.clone(), signed.clone())
            }
            _ => PeerAddresses::unverified(addresses),
        }
    }
}

/// Whether `a` and `b`, each without repeats, hold the same addresses.
fn same_set(a: &[Multiaddr], b: &[Multiaddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ports: &[u16]) -> Vec<Multiaddr> {
        ports
            .iter()
            .map(|p| format!("/ip4/10.0.0.1/tcp/{p}").parse().unwrap())
            .collect()
    }

    const MAX: usize = 1024;

    #[test]
    fn a_record_we_sign_is_a_standard_record_and_verifies() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let record = SignedPeerRecord::sign(&key, &addrs(&[1, 2]), 42).unwrap();
        // libp2p-core's standard (interop) reading accepts it; the legacy one does not.
        let envelope = SignedEnvelope::from_protobuf_encoding(record.as_bytes()).unwrap();
        let parsed = PeerRecord::from_signed_envelope_interop(envelope.clone()).unwrap();
        assert_eq!((parsed.peer_id(), parsed.seq()), (peer, 42));
        assert_eq!(parsed.addresses(), &addrs(&[1, 2])[..]);
        assert!(PeerRecord::from_signed_envelope(envelope).is_err());
        let (verified, addresses) =
            SignedPeerRecord::verify(record.as_bytes(), &peer, MAX).unwrap();
        assert_eq!(verified, record);
        assert_eq!(addresses, addrs(&[1, 2]));
    }

    #[test]
    fn a_record_libp2p_core_signs_in_the_standard_format_verifies() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let record = PeerRecord::new_interop(&key, addrs(&[7])).unwrap();
        let bytes = record.to_signed_envelope().into_protobuf_encoding();
        let (verified, addresses) = SignedPeerRecord::verify(&bytes, &peer, MAX).unwrap();
        assert_eq!(verified.seq(), record.seq());
        assert_eq!(verified.as_bytes(), &bytes[..]);
        assert_eq!(addresses, addrs(&[7]));
        // The legacy Rust-only format is not a standard record.
        let legacy = PeerRecord::new(&key, addrs(&[7])).unwrap();
        let bytes = legacy.to_signed_envelope().into_protobuf_encoding();
        assert!(matches!(
            SignedPeerRecord::verify(&bytes, &peer, MAX),
            Err(RecordError::Malformed(_))
        ));
    }

    #[test]
    fn forged_oversized_and_garbage_records_are_refused_by_reason() {
        let key = Keypair::generate_ed25519();
        let peer = key.public().to_peer_id();
        let record = SignedPeerRecord::sign(&key, &addrs(&[1]), 1).unwrap();

        // One byte of the signed payload changed after signing: the peer record's last
        // address byte (the envelope ends with the payload, then the signature field).
        let mut broken = record.as_bytes().to_vec();
        let signature_start = broken.len() - 66; // tag, length, 64-byte ed25519 signature
        broken[signature_start - 1] ^= 0x01;
        assert_eq!(
            SignedPeerRecord::verify(&broken, &peer, MAX),
            Err(RecordError::BadSignature)
        );
        // A flipped signature bit.
        let mut broken = record.as_bytes().to_vec();
        *broken.last_mut().unwrap() ^= 0x80;
        assert_eq!(
            SignedPeerRecord::verify(&broken, &peer, MAX),
            Err(RecordError::BadSignature)
        );
        // Valid, but the record of another peer than the entry's.
        let other = PeerId::random();
        assert_eq!(
            SignedPeerRecord::verify(record.as_bytes(), &other, MAX),
            Err(RecordError::WrongPeer)
        );
        // Too large: refused from its size alone.
        assert_eq!(
            SignedPeerRecord::verify(record.as_bytes(), &peer, record.as_bytes().len() - 1),
            Err(RecordError::TooLarge {
                size: record.as_bytes().len(),
                max: record.as_bytes().len() - 1
            })
        );
        for garbage in [&[][..], &[0xff; 40][..], &record.as_bytes()[..20]] {
            assert!(
                matches!(
                    SignedPeerRecord::verify(garbage, &peer, MAX),
                    Err(RecordError::Malformed(_))
                ),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn a_record_naming_another_peer_than_its_signer_is_the_wrong_peer() {
        // The signer puts a victim's peer id into the record it signs with its own key.
        let signer = Keypair::generate_ed25519();
        let victim = PeerId::random();
        let payload = proto::PeerRecord {
            peer_id: victim.to_bytes(),
            seq: 1,
            addresses: Vec::new(),
        }
        .encode_to_vec();
        let envelope =
            SignedEnvelope::new(&signer, DOMAIN.to_owned(), PAYLOAD_TYPE.to_vec(), payload)
                .unwrap();
        let bytes = envelope.into_protobuf_encoding();
        assert_eq!(
            SignedPeerRecord::verify(&bytes, &victim, MAX),
            Err(RecordError::WrongPeer)
        );
    }

    #[test]
    fn the_local_record_is_re_signed_when_the_addresses_change_with_a_growing_seq() {
        let key = Keypair::generate_ed25519();
        let mut local = LocalRecord::new(key);
        assert!(!local.update(&[], 1_000), "no addresses, no record");
        assert!(local.payload(addrs(&[1])).signed_record().is_none());
        assert!(local.update(&addrs(&[1]), 1_000));
        assert_eq!(local.record().unwrap().seq(), 1_000);
        assert!(!local.update(&addrs(&[1]), 5_000), "same addresses");
        assert!(local.payload(addrs(&[1])).is_verified());
        assert!(!local.payload(addrs(&[2])).is_verified());
        assert!(local.update(&addrs(&[1, 2]), 1_000));
        assert_eq!(local.record().unwrap().seq(), 1_001);
        assert!(
            !local.update(&addrs(&[2, 1]), 6_000),
            "the same set, reordered"
        );
        let payload = local.payload(addrs(&[2, 1]));
        assert!(payload.is_verified());
        assert_eq!(
            payload.as_slice(),
            &addrs(&[1, 2])[..],
            "in the signed order"
        );
        // The clock stalls (above), then steps back: the seq still grows.
        assert!(local.update(&addrs(&[2]), 10));
        assert_eq!(local.record().unwrap().seq(), 1_002);
        assert!(local.update(&addrs(&[3]), 9_000));
        assert_eq!(local.record().unwrap().seq(), 9_000);
        assert!(local.update(&[], 9_500));
        assert!(local.record().is_none());
        assert!(local.update(&addrs(&[3]), 9_500));
        assert_eq!(local.record().unwrap().seq(), 9_500);
    }

    #[test]
    fn verified_addresses_take_no_address_from_outside() {
        let key = Keypair::generate_ed25519();
        let record = SignedPeerRecord::sign(&key, &addrs(&[1]), 1).unwrap();
        let mut verified = PeerAddresses::signed(record, addrs(&[1]));
        assert!(!verified.add_address(addrs(&[2])[0].clone(), 8));
        assert_eq!(verified.as_slice(), &addrs(&[1])[..]);
        let mut plain = PeerAddresses::unverified(addrs(&[1]));
        assert!(plain.add_address(addrs(&[2])[0].clone(), 8));
        assert!(!plain.add_address(addrs(&[2])[0].clone(), 8));
        assert!(!plain.add_address(addrs(&[3])[0].clone(), 2));
        assert_eq!(plain.len(), 2);
        assert_eq!(verified.record_seq(), Some(1));
        assert_eq!(plain.record_seq(), None);
    }
}
