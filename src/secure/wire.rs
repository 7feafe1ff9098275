//! The `/cyclon/2.0.0` wire format as pure functions: what is signed, byte for byte
//! ([`descriptor_payload`], [`handover_payload`], [`signature_input`]), and the messages of
//! one exchange ([`encode_frame`], [`decode_frame`]) between the protobuf schema
//! `proto/cyclon_v2.proto` and the core's types, with every limit checked ([`WireLimits`]).
//!
//! Decoding is strict: a frame must be the canonical protobuf encoding of what it decodes to
//! (fields in order, no defaults written, no unknown fields), so that one message has one
//! byte form; `to` fields the position implies are omitted, and an explicit one must equal
//! the implied one. The full specification is in `docs/protocol.md`; framing on the stream
//! is `/cyclon/1.0.0`'s (an unsigned-varint length, then the message).

use libp2p_core::Multiaddr;
use libp2p_identity::{PeerId, PublicKey};
use libp2p_swarm::StreamProtocol;
use prost::Message as _;
use sha2::{Digest as _, Sha256};

use crate::secure::{
    Accept, Open, Refuse, SecureParams, Step,
    chain::{Chain, DescriptorBody, HandOver, HandOverKind, Link},
    outcome::{Invalid, RefuseReason},
    proof::{Proof, SignedDescriptor},
    sample::Samples,
};

/// The protobuf types generated from `proto/cyclon_v2.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
mod proto {
    include!(concat!(env!("OUT_DIR"), "/cyclon.v2.rs"));
}

/// The protocol name of SecureCyclon's exchanges, `/cyclon/2.0.0`.
pub const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new("/cyclon/2.0.0");

/// The RFC 0002 domain of a descriptor's signature.
pub const DESCRIPTOR_DOMAIN: &str = "libp2p-cyclon-descriptor";
/// The RFC 0002 domain of a hand-over's signature.
pub const HANDOVER_DOMAIN: &str = "libp2p-cyclon-handover";
/// The payload type of a descriptor: `0x300c01` (multicodec private use) as an unsigned
/// varint.
pub const DESCRIPTOR_PAYLOAD_TYPE: [u8; 4] = [0x81, 0x98, 0xc0, 0x01];
/// The payload type of a hand-over: `0x300c02` as an unsigned varint.
pub const HANDOVER_PAYLOAD_TYPE: [u8; 4] = [0x82, 0x98, 0xc0, 0x01];

/// The addresses a descriptor carries on the wire.
pub type Addresses = Vec<Multiaddr>;
/// A digest: SHA-256 of a signature input.
pub type Digest = [u8; 32];
/// A chain as `/cyclon/2.0.0` carries it.
pub type WireChain = Chain<PeerId, Addresses, Vec<u8>>;
/// A proof as `/cyclon/2.0.0` carries it.
pub type WireProof = Proof<PeerId, Addresses, Vec<u8>, Digest>;

/// One `/cyclon/2.0.0` message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// Initiator to responder, first.
    Open(Open<PeerId, Addresses, Vec<u8>, Digest>),
    /// Responder to initiator, second.
    Accept(Accept<PeerId, Addresses, Vec<u8>, Digest>),
    /// Responder to initiator, second, ending the exchange.
    Refuse(Refuse<PeerId, Addresses, Vec<u8>, Digest>),
    /// Every later message.
    Step(Step<PeerId, Addresses, Vec<u8>, Digest>),
    /// Proofs flooded on a stream of their own.
    Push(Vec<WireProof>),
}

/// Who sends and who receives a frame: the `to` fields a chain's position implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peers {
    /// The sender.
    pub sender: PeerId,
    /// The receiver.
    pub receiver: PeerId,
}

/// The bounds a decoder enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WireLimits {
    /// Bytes per message. Default: 24 KiB.
    pub max_message_size: usize,
    /// Hand-overs per chain. Default: 32 ([`SecureParams::max_links`]).
    pub max_links: usize,
    /// Addresses per descriptor. Default: 8.
    pub max_addresses: usize,
    /// Bytes per address. Default: 128.
    pub max_address_len: usize,
    /// Bytes of a descriptor payload. Default: 1,024.
    pub max_descriptor_len: usize,
    /// Bytes per signature. Default: 96 (ed25519: 64, secp256k1 DER: at most 72).
    pub max_signature_len: usize,
    /// Bytes per peer id. Default: 64.
    pub max_peer_id_len: usize,
    /// Samples per message. Default: 25 ([`SecureParams::max_samples`]).
    pub max_samples: usize,
    /// Suspects per message. Default: 2 ([`SecureParams::suspects_per_message`]).
    pub max_suspects: usize,
    /// Proofs per message. Default: 8 ([`SecureParams::max_proofs_received`]).
    pub max_proofs: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        Self::from_params(&SecureParams::default())
    }
}

impl WireLimits {
    /// The limits that match `params`.
    pub fn from_params(params: &SecureParams) -> Self {
        Self {
            max_message_size: 24 * 1024,
            max_links: params.max_links,
            max_addresses: 8,
            max_address_len: 128,
            max_descriptor_len: 1024,
            max_signature_len: 96,
            max_peer_id_len: 64,
            max_samples: params.max_samples,
            max_suspects: params.suspects_per_message,
            max_proofs: params.max_proofs_received,
        }
    }
}

/// Why a frame or object did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not valid protobuf, a missing or out-of-range field, a bad peer id or address.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// Not the canonical encoding of what it decodes to.
    #[error("not in canonical encoding")]
    NonCanonical,
    /// Over a limit of [`WireLimits`].
    #[error("over a limit: {0}")]
    TooLarge(&'static str),
    /// A peer id that does not carry its public key.
    #[error("a peer id without an inlined public key")]
    UnsupportedKey,
    /// An explicit `to` that differs from the one its position implies.
    #[error("an explicit `to` differs from the implied one")]
    ImpliedMismatch,
}

impl WireError {
    /// The reason the core counts it under.
    pub fn invalid(self) -> Invalid {
        match self {
            WireError::Malformed(_) => Invalid::Malformed,
            WireError::NonCanonical => Invalid::NonCanonical,
            WireError::TooLarge(_) => Invalid::TooLarge,
            WireError::UnsupportedKey => Invalid::UnsupportedKey,
            WireError::ImpliedMismatch => Invalid::WrongHandOver,
        }
    }
}

// ------------------------------------------------------------------------- signed bytes

/// RFC 0002's signature input: `varint(len(domain)) ‖ domain ‖ varint(len(payload_type)) ‖
/// payload_type ‖ varint(len(payload)) ‖ payload`.
pub fn signature_input(domain: &str, payload_type: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + payload_type.len() + payload.len() + 6);
    for part in [domain.as_bytes(), payload_type, payload] {
        prost::encoding::encode_varint(part.len() as u64, &mut out);
        out.extend_from_slice(part);
    }
    out
}

/// A descriptor's signed payload: the canonical encoding of `Descriptor`.
pub fn descriptor_payload(body: &DescriptorBody<PeerId, Addresses>) -> Vec<u8> {
    proto::Descriptor {
        creator: body.creator.to_bytes(),
        minted_at_ms: body.minted_at,
        mint_gap_ms: body.mint_gap,
        addrs: body.addresses.iter().map(|a| a.to_vec()).collect(),
    }
    .encode_to_vec()
}

/// A hand-over's signed payload: the canonical encoding of `HandOver`.
pub fn handover_payload(handover: &HandOver<PeerId, Digest>) -> Vec<u8> {
    proto::HandOver {
        prev: handover.prev.to_vec(),
        to: handover.to.to_bytes(),
        kind: handover.kind as i32,
    }
    .encode_to_vec()
}

/// What a descriptor's creator signs.
pub fn descriptor_signature_input(body: &DescriptorBody<PeerId, Addresses>) -> Vec<u8> {
    signature_input(
        DESCRIPTOR_DOMAIN,
        &DESCRIPTOR_PAYLOAD_TYPE,
        &descriptor_payload(body),
    )
}

/// What an owner signs when it hands a descriptor on.
pub fn handover_signature_input(handover: &HandOver<PeerId, Digest>) -> Vec<u8> {
    signature_input(
        HANDOVER_DOMAIN,
        &HANDOVER_PAYLOAD_TYPE,
        &handover_payload(handover),
    )
}

/// A creator's tag in samples: the first 8 bytes of SHA-256 of its peer id bytes, read
/// big-endian.
pub fn tag(id: &PeerId) -> u64 {
    let digest: [u8; 32] = Sha256::digest(id.to_bytes()).into();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Decodes a descriptor payload, checking that it is canonical and within the limits.
pub fn decode_descriptor(
    payload: &[u8],
    limits: &WireLimits,
) -> Result<DescriptorBody<PeerId, Addresses>, WireError> {
    if payload.len() > limits.max_descriptor_len {
        return Err(WireError::TooLarge("descriptor"));
    }
    let d = proto::Descriptor::decode(payload).map_err(|_| WireError::Malformed("descriptor"))?;
    if d.encode_to_vec() != payload {
        return Err(WireError::NonCanonical);
    }
    if d.addrs.len() > limits.max_addresses {
        return Err(WireError::TooLarge("addresses"));
    }
    let creator = peer_id(&d.creator, limits)?;
    if public_key(&creator).is_none() {
        return Err(WireError::UnsupportedKey);
    }
    let addresses = d
        .addrs
        .into_iter()
        .map(|bytes| {
            if bytes.len() > limits.max_address_len {
                return Err(WireError::TooLarge("address"));
            }
            let address =
                Multiaddr::try_from(bytes.clone()).map_err(|_| WireError::Malformed("address"))?;
            if address.to_vec() != bytes {
                return Err(WireError::NonCanonical);
            }
            Ok(address)
        })
        .collect::<Result<_, _>>()?;
    Ok(DescriptorBody {
        creator,
        minted_at: d.minted_at_ms,
        mint_gap: d.mint_gap_ms,
        addresses,
    })
}

fn peer_id(bytes: &[u8], limits: &WireLimits) -> Result<PeerId, WireError> {
    if bytes.len() > limits.max_peer_id_len {
        return Err(WireError::TooLarge("peer id"));
    }
    let id = PeerId::from_bytes(bytes).map_err(|_| WireError::Malformed("peer id"))?;
    if id.to_bytes() != bytes {
        return Err(WireError::NonCanonical);
    }
    Ok(id)
}

fn signature(bytes: Vec<u8>, limits: &WireLimits) -> Result<Vec<u8>, WireError> {
    if bytes.len() > limits.max_signature_len {
        return Err(WireError::TooLarge("signature"));
    }
    if bytes.is_empty() {
        return Err(WireError::Malformed("empty signature"));
    }
    Ok(bytes)
}

fn kind(n: i32) -> Result<HandOverKind, WireError> {
    HandOverKind::from_number(n).ok_or(WireError::Malformed("hand-over kind"))
}

// ------------------------------------------------------------------------- chains

/// Which `to` fields of a chain are implied: the last link's is the receiver, the one
/// before it the sender.
#[derive(Clone, Copy)]
enum Implied<'a> {
    Nothing,
    By(&'a Peers),
}

impl Implied<'_> {
    /// The `to` implied at link `k` of `n`.
    fn at(&self, k: usize, n: usize) -> Option<&PeerId> {
        match self {
            Implied::By(peers) if k + 1 == n => Some(&peers.receiver),
            Implied::By(peers) if k + 2 == n => Some(&peers.sender),
            _ => None,
        }
    }
}

fn chain_to_proto(chain: &WireChain, implied: Implied<'_>) -> proto::Chain {
    let n = chain.links.len();
    proto::Chain {
        descriptor: descriptor_payload(&chain.body),
        signature: chain.signature.clone(),
        links: chain
            .links
            .iter()
            .enumerate()
            .map(|(k, link)| proto::Link {
                to: match implied.at(k, n) {
                    Some(to) if *to == link.to => Vec::new(),
                    _ => link.to.to_bytes(),
                },
                kind: link.kind as i32,
                signature: link.signature.clone(),
            })
            .collect(),
    }
}

fn chain_from_proto(
    chain: proto::Chain,
    implied: Implied<'_>,
    limits: &WireLimits,
) -> Result<WireChain, WireError> {
    if chain.links.len() > limits.max_links {
        return Err(WireError::TooLarge("links"));
    }
    let body = decode_descriptor(&chain.descriptor, limits)?;
    let n = chain.links.len();
    let links = chain
        .links
        .into_iter()
        .enumerate()
        .map(|(k, link)| {
            let to = match (implied.at(k, n), link.to.is_empty()) {
                (Some(to), true) => *to,
                (Some(to), false) => {
                    if peer_id(&link.to, limits)? != *to {
                        return Err(WireError::ImpliedMismatch);
                    }
                    *to
                }
                (None, true) => return Err(WireError::Malformed("missing `to`")),
                (None, false) => peer_id(&link.to, limits)?,
            };
            Ok(Link {
                to,
                kind: kind(link.kind)?,
                signature: signature(link.signature, limits)?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Chain {
        body,
        signature: signature(chain.signature, limits)?,
        links,
    })
}

/// A chain with every `to` explicit (as suspects carry them), as protobuf `Chain` bytes.
pub fn encode_chain(chain: &WireChain) -> Vec<u8> {
    chain_to_proto(chain, Implied::Nothing).encode_to_vec()
}

/// Decodes [`encode_chain`]'s bytes, strictly.
pub fn decode_chain(bytes: &[u8], limits: &WireLimits) -> Result<WireChain, WireError> {
    let chain = decode_canonical::<proto::Chain>(bytes, limits)?;
    chain_from_proto(chain, Implied::Nothing, limits)
}

fn decode_canonical<M: prost::Message + Default>(
    bytes: &[u8],
    limits: &WireLimits,
) -> Result<M, WireError> {
    if bytes.len() > limits.max_message_size {
        return Err(WireError::TooLarge("message"));
    }
    let message = M::decode(bytes).map_err(|_| WireError::Malformed("protobuf"))?;
    if message.encode_to_vec() != bytes {
        return Err(WireError::NonCanonical);
    }
    Ok(message)
}

// ------------------------------------------------------------------------- proofs

fn link_to_proto(link: &Link<PeerId, Vec<u8>>) -> proto::Link {
    proto::Link {
        to: link.to.to_bytes(),
        kind: link.kind as i32,
        signature: link.signature.clone(),
    }
}

fn link_from_proto(
    link: Option<proto::Link>,
    limits: &WireLimits,
) -> Result<Link<PeerId, Vec<u8>>, WireError> {
    let link = link.ok_or(WireError::Malformed("missing link"))?;
    Ok(Link {
        to: peer_id(&link.to, limits)?,
        kind: kind(link.kind)?,
        signature: signature(link.signature, limits)?,
    })
}

fn signed_to_proto(d: &SignedDescriptor<PeerId, Addresses, Vec<u8>>) -> proto::Chain {
    proto::Chain {
        descriptor: descriptor_payload(&d.body),
        signature: d.signature.clone(),
        links: Vec::new(),
    }
}

fn signed_from_proto(
    chain: Option<proto::Chain>,
    limits: &WireLimits,
) -> Result<SignedDescriptor<PeerId, Addresses, Vec<u8>>, WireError> {
    let chain = chain.ok_or(WireError::Malformed("missing descriptor"))?;
    if !chain.links.is_empty() {
        return Err(WireError::Malformed("links in a frequency proof"));
    }
    Ok(SignedDescriptor {
        body: decode_descriptor(&chain.descriptor, limits)?,
        signature: signature(chain.signature, limits)?,
    })
}

fn proof_to_proto(proof: &WireProof) -> proto::Proof {
    use proto::proof::Evidence;
    let evidence = match proof {
        Proof::Fork {
            offender,
            prev,
            a,
            b,
        } => Evidence::Fork(proto::ForkProof {
            offender: offender.to_bytes(),
            prev: prev.to_vec(),
            a: Some(link_to_proto(a)),
            b: Some(link_to_proto(b)),
        }),
        Proof::Frequency { a, b } => Evidence::Frequency(proto::FrequencyProof {
            a: Some(signed_to_proto(a)),
            b: Some(signed_to_proto(b)),
        }),
    };
    proto::Proof {
        evidence: Some(evidence),
    }
}

fn proof_from_proto(proof: proto::Proof, limits: &WireLimits) -> Result<WireProof, WireError> {
    use proto::proof::Evidence;
    match proof.evidence {
        Some(Evidence::Fork(f)) => Ok(Proof::Fork {
            offender: peer_id(&f.offender, limits)?,
            prev: f
                .prev
                .as_slice()
                .try_into()
                .map_err(|_| WireError::Malformed("prev is not 32 bytes"))?,
            a: link_from_proto(f.a, limits)?,
            b: link_from_proto(f.b, limits)?,
        }),
        Some(Evidence::Frequency(f)) => Ok(Proof::Frequency {
            a: signed_from_proto(f.a, limits)?,
            b: signed_from_proto(f.b, limits)?,
        }),
        None => Err(WireError::Malformed("empty proof")),
    }
}

/// A proof as protobuf `Proof` bytes.
pub fn encode_proof(proof: &WireProof) -> Vec<u8> {
    proof_to_proto(proof).encode_to_vec()
}

/// Decodes [`encode_proof`]'s bytes, strictly.
pub fn decode_proof(bytes: &[u8], limits: &WireLimits) -> Result<WireProof, WireError> {
    proof_from_proto(decode_canonical(bytes, limits)?, limits)
}

fn proofs_from_proto(
    proofs: Vec<proto::Proof>,
    limits: &WireLimits,
) -> Result<Vec<WireProof>, WireError> {
    if proofs.len() > limits.max_proofs {
        return Err(WireError::TooLarge("proofs"));
    }
    proofs
        .into_iter()
        .map(|p| proof_from_proto(p, limits))
        .collect()
}

// ------------------------------------------------------------------------- samples

fn samples_to_proto(samples: &Samples) -> Vec<proto::Sample> {
    samples
        .iter()
        .map(|s| proto::Sample {
            tag: s.tag,
            minted_at_ms: s.minted_at,
            path: s.path.iter().flat_map(|p| p.to_be_bytes()).collect(),
        })
        .collect()
}

fn samples_from_proto(
    samples: Vec<proto::Sample>,
    limits: &WireLimits,
) -> Result<Samples, WireError> {
    if samples.len() > limits.max_samples {
        return Err(WireError::TooLarge("samples"));
    }
    let mut out = Samples::with_capacity(samples.len(), 8 * samples.len());
    for s in samples {
        if s.path.len() % 4 != 0 || s.path.is_empty() {
            return Err(WireError::Malformed("sample path"));
        }
        if s.path.len() > 4 * (limits.max_links + 1) {
            return Err(WireError::TooLarge("sample path"));
        }
        out.push(
            s.tag,
            s.minted_at_ms,
            s.path
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        );
    }
    Ok(out)
}

fn suspects_to_proto(suspects: &[WireChain]) -> Vec<proto::Chain> {
    suspects
        .iter()
        .map(|c| chain_to_proto(c, Implied::Nothing))
        .collect()
}

fn suspects_from_proto(
    suspects: Vec<proto::Chain>,
    limits: &WireLimits,
) -> Result<Vec<WireChain>, WireError> {
    if suspects.len() > limits.max_suspects {
        return Err(WireError::TooLarge("suspects"));
    }
    suspects
        .into_iter()
        .map(|c| chain_from_proto(c, Implied::Nothing, limits))
        .collect()
}

// ------------------------------------------------------------------------- frames

/// Encodes one message from `peers.sender` to `peers.receiver` (the protobuf bytes, without
/// the length prefix).
pub fn encode_frame(frame: &Frame, peers: &Peers) -> Vec<u8> {
    use proto::message::Payload;
    let implied = Implied::By(peers);
    let payload = match frame {
        Frame::Open(open) => Payload::Open(proto::Open {
            redeem: open.redeem.as_ref().map(|c| chain_to_proto(c, implied)),
            fresh: Some(chain_to_proto(&open.fresh, implied)),
            samples: samples_to_proto(&open.samples),
            suspects: suspects_to_proto(&open.suspects),
            proofs: open.proofs.iter().map(proof_to_proto).collect(),
            join: open.join,
        }),
        Frame::Accept(accept) => Payload::Accept(proto::Accept {
            transfer: accept.transfer.as_ref().map(|c| chain_to_proto(c, implied)),
            samples: samples_to_proto(&accept.samples),
            suspects: suspects_to_proto(&accept.suspects),
            proofs: accept.proofs.iter().map(proof_to_proto).collect(),
        }),
        Frame::Refuse(refuse) => Payload::Refuse(proto::Refuse {
            reason: refuse.reason.number(),
            proofs: refuse.proofs.iter().map(proof_to_proto).collect(),
        }),
        Frame::Step(step) => Payload::Step(proto::Step {
            transfer: step.transfer.as_ref().map(|c| chain_to_proto(c, implied)),
            suspects: suspects_to_proto(&step.suspects),
            proofs: step.proofs.iter().map(proof_to_proto).collect(),
        }),
        Frame::Push(proofs) => Payload::Push(proto::ProofPush {
            proofs: proofs.iter().map(proof_to_proto).collect(),
        }),
    };
    proto::Message {
        payload: Some(payload),
    }
    .encode_to_vec()
}

/// Decodes one message from `peers.sender` to `peers.receiver`, strictly: canonical
/// encoding, every limit, implied `to` fields filled in (or checked).
pub fn decode_frame(bytes: &[u8], peers: &Peers, limits: &WireLimits) -> Result<Frame, WireError> {
    use proto::message::Payload;
    let message: proto::Message = decode_canonical(bytes, limits)?;
    let implied = Implied::By(peers);
    let chain =
        |c: Option<proto::Chain>| c.map(|c| chain_from_proto(c, implied, limits)).transpose();
    Ok(match message.payload {
        Some(Payload::Open(o)) => Frame::Open(Open {
            redeem: chain(o.redeem)?,
            fresh: chain(o.fresh)?.ok_or(WireError::Malformed("missing fresh descriptor"))?,
            samples: samples_from_proto(o.samples, limits)?,
            suspects: suspects_from_proto(o.suspects, limits)?,
            proofs: proofs_from_proto(o.proofs, limits)?,
            join: o.join,
        }),
        Some(Payload::Accept(a)) => Frame::Accept(Accept {
            transfer: chain(a.transfer)?,
            samples: samples_from_proto(a.samples, limits)?,
            suspects: suspects_from_proto(a.suspects, limits)?,
            proofs: proofs_from_proto(a.proofs, limits)?,
        }),
        Some(Payload::Refuse(r)) => Frame::Refuse(Refuse {
            reason: RefuseReason::from_number(r.reason)
                .ok_or(WireError::Malformed("refuse reason"))?,
            proofs: proofs_from_proto(r.proofs, limits)?,
        }),
        Some(Payload::Step(s)) => Frame::Step(Step {
            transfer: chain(s.transfer)?,
            suspects: suspects_from_proto(s.suspects, limits)?,
            proofs: proofs_from_proto(s.proofs, limits)?,
        }),
        Some(Payload::Push(p)) => Frame::Push(proofs_from_proto(p.proofs, limits)?),
        None => return Err(WireError::Malformed("empty message")),
    })
}

/// The public key a peer id inlines, if it does (identity multihash).
pub fn public_key(id: &PeerId) -> Option<PublicKey> {
    // A multihash: varint code (0 for identity), varint length, digest.
    let bytes = id.to_bytes();
    let mut rest = bytes.as_slice();
    let code = prost::encoding::decode_varint(&mut rest).ok()?;
    let len = prost::encoding::decode_varint(&mut rest).ok()?;
    if code != 0 || len != rest.len() as u64 {
        return None;
    }
    PublicKey::try_decode_protobuf(rest)
        .ok()
        .filter(|key| key.to_peer_id() == *id)
}
