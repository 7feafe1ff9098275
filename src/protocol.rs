//! The wire protocol, `/cyclon/1.0.0` and `/cyclon/1.1.0` ([`Version`]): framing, message
//! exchange, the view entries it carries ([`ViewEntry`]), their encoding for each version and
//! validation of what remote peers send.
//!
//! `/cyclon/1.1.0` is `/cyclon/1.0.0` with one more field on an entry: the signed peer record
//! of the entry's peer (see `src/record.rs`). An entry with a record carries no unsigned
//! addresses there; on `/cyclon/1.0.0` records are never sent and ignored if received.
//!
//! One stream per shuffle. The initiator writes one `Message{request}`, reads one
//! `Message{response}` and closes; the responder reads one request, writes one response and
//! closes. Each message is an unsigned-varint length prefix followed by the protobuf bytes of
//! `proto/cyclon.proto`; the length is checked against the maximum message size before
//! anything is buffered.

use std::io;

use asynchronous_codec::Framed;
use futures::{AsyncRead, AsyncWrite, SinkExt, StreamExt};
use libp2p_core::{Multiaddr, multiaddr::Protocol};
use libp2p_identity::PeerId;
use libp2p_swarm::StreamProtocol;

use crate::{
    address_scope::AddressScope,
    config::Config,
    record::{PeerAddresses, RecordError, SignedPeerRecord},
    view::Entry,
};

const NAME_V1_0: &str = "/cyclon/1.0.0";
const NAME_V1_1: &str = "/cyclon/1.1.0";

/// The name of the protocol's first version, `/cyclon/1.0.0` (entries without signed records),
/// which other implementations and tools call the Cyclon protocol: every node listens on it,
/// and diallers fall back to it. Nodes prefer [`PROTOCOL_NAME_V1_1`].
pub const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new(NAME_V1_0);

/// The name of the protocol version with signed peer records in entries, `/cyclon/1.1.0`;
/// diallers offer it first.
pub const PROTOCOL_NAME_V1_1: StreamProtocol = StreamProtocol::new(NAME_V1_1);

/// A version of the wire protocol, as negotiated for one stream (reachable through the
/// `NetworkBehaviour` trait's handler types, not meant to be used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `/cyclon/1.0.0`: plain entries.
    V1_0,
    /// `/cyclon/1.1.0`: entries may carry signed peer records.
    V1_1,
}

impl Version {
    /// Both versions, the preferred one first.
    pub(crate) const ALL: &'static [Version] = &[Version::V1_1, Version::V1_0];
    /// `/cyclon/1.0.0` only.
    pub(crate) const V1_0_ONLY: &'static [Version] = &[Version::V1_0];

    /// Whether entries on this version carry signed peer records.
    pub(crate) fn carries_records(self) -> bool {
        self == Version::V1_1
    }
}

impl Version {
    /// The protocol name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => NAME_V1_0,
            Version::V1_1 => NAME_V1_1,
        }
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

const NAME_NEIGHBOUR: &str = "/cyclon/neighbour/1.0.0";

/// What a stream is for, as its protocol name says (reachable through the `NetworkBehaviour`
/// trait's handler types, not meant to be used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A shuffle over this version.
    Shuffle(Version),
    /// A neighbour link (`/cyclon/neighbour/1.0.0`).
    Neighbour,
}

impl StreamKind {
    fn as_str(self) -> &'static str {
        match self {
            StreamKind::Shuffle(version) => version.as_str(),
            StreamKind::Neighbour => NAME_NEIGHBOUR,
        }
    }
}

/// A protocol name as this peer speaks it: `/cyclon/1.1.0`, or under a
/// [protocol prefix](crate::Config::with_protocol_prefix) `<prefix>/cyclon/1.1.0`
/// (reachable through the `NetworkBehaviour` trait's handler types, opaque).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolId {
    kind: StreamKind,
    name: StreamProtocol,
}

impl ProtocolId {
    /// What streams of this name are for.
    pub(crate) fn kind(&self) -> StreamKind {
        self.kind
    }

    /// The shuffle version this name stands for, if it names one.
    pub(crate) fn version(&self) -> Option<Version> {
        match self.kind {
            StreamKind::Shuffle(version) => Some(version),
            StreamKind::Neighbour => None,
        }
    }
}

impl AsRef<str> for ProtocolId {
    fn as_ref(&self) -> &str {
        self.name.as_ref()
    }
}

/// The names of `kinds` (in that order) under `prefix` (`""` for none), or `None` if the
/// prefix makes an invalid protocol name.
pub(crate) fn protocol_ids(
    prefix: &str,
    kinds: impl IntoIterator<Item = StreamKind>,
) -> Option<Vec<ProtocolId>> {
    kinds
        .into_iter()
        .map(|kind| {
            let name = if prefix.is_empty() {
                StreamProtocol::new(kind.as_str())
            } else {
                StreamProtocol::try_from_owned(format!("{prefix}{}", kind.as_str())).ok()?
            };
            Some(ProtocolId { kind, name })
        })
        .collect()
}

/// The protobuf types generated from `proto/cyclon.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod proto {
    include!(concat!(env!("OUT_DIR"), "/cyclon.pb.rs"));
}

/// An entry of the [`Behaviour`](crate::Behaviour)'s view: a peer, its addresses (verified by
/// the peer's signed record, or not: [`PeerAddresses`]) and the entry's age, as the wire
/// carries it.
pub type ViewEntry = Entry<PeerId, PeerAddresses>;

use proto::message::Payload;

/// A protobuf message stream with the varint length framing of `/cyclon/1.0.0`.
pub(crate) type FramedStream<S> = Framed<S, prost_codec::Codec<proto::Message>>;

/// Wraps `stream` in the `/cyclon/1.0.0` framing, accepting messages of at most `max_size`
/// bytes.
pub(crate) fn framed<S: AsyncRead + AsyncWrite>(stream: S, max_size: usize) -> FramedStream<S> {
    Framed::new(stream, prost_codec::Codec::new(max_size))
}

/// Reads one message; the end of the stream before a whole message is an error.
pub(crate) async fn read_message<S>(framed: &mut FramedStream<S>) -> io::Result<proto::Message>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match framed.next().await {
        Some(message) => Ok(message?),
        None => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "stream closed before a message arrived",
        )),
    }
}

/// The initiator's side of one shuffle: sends the request, reads the response, closes.
pub(crate) async fn request_shuffle<S>(
    stream: S,
    entries: Vec<proto::Entry>,
    max_size: usize,
) -> io::Result<Vec<proto::Entry>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = framed(stream, max_size);
    framed
        .send(proto::Message {
            payload: Some(Payload::Request(proto::ShuffleRequest { entries })),
        })
        .await?;
    let entries = match read_message(&mut framed).await?.payload {
        Some(Payload::Response(response)) => response.entries,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "expected a shuffle response",
            ));
        }
    };
    // The exchange is complete; a failure to close cleanly does not undo it.
    if let Err(error) = framed.close().await {
        tracing::debug!(%error, "closing a completed shuffle stream failed");
    }
    Ok(entries)
}

/// The responder's first step: reads the request of one shuffle.
pub(crate) async fn read_request<S>(
    stream: S,
    max_size: usize,
) -> io::Result<(FramedStream<S>, Vec<proto::Entry>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut framed = framed(stream, max_size);
    match read_message(&mut framed).await?.payload {
        Some(Payload::Request(request)) => Ok((framed, request.entries)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected a shuffle request",
        )),
    }
}

/// The responder's second step: writes the response and closes the stream.
pub(crate) async fn write_response<S>(
    mut framed: FramedStream<S>,
    entries: Vec<proto::Entry>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    framed
        .send(proto::Message {
            payload: Some(Payload::Response(proto::ShuffleResponse { entries })),
        })
        .await?;
    framed.close().await?;
    Ok(())
}

/// Bounds applied to the entries a remote peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryLimits {
    /// Entries beyond this count are ignored (the shuffle length `l`, plus the seeded
    /// defence's extra entries).
    pub(crate) message_length: usize,
    /// Addresses beyond this count, per entry, are ignored.
    pub(crate) max_addresses: usize,
    /// Ages are clamped to this value.
    pub(crate) max_age: u32,
    /// Signed records larger than this are dropped undecoded.
    pub(crate) max_record_size: usize,
    /// Whether entries without a signed record are dropped.
    pub(crate) require_signed: bool,
    /// Addresses outside it are dropped.
    pub(crate) scope: AddressScope,
}

impl EntryLimits {
    /// The bounds `config` sets.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            message_length: config.shuffle_params().message_length(),
            max_addresses: config.max_addresses_per_entry(),
            max_age: config.shuffle_params().max_age,
            max_record_size: config.max_record_size(),
            require_signed: config.require_signed_records(),
            scope: config.address_scope(),
        }
    }
}

/// Counts of what was dropped while validating the entries of one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidEntries {
    /// Entries beyond the shuffle length, ignored unread.
    pub excess_entries: usize,
    /// Entries whose `peer_id` is not a valid peer id (entry dropped).
    pub invalid_peer_id: usize,
    /// Entries left with no usable address (entry dropped).
    pub no_address: usize,
    /// Addresses that are not valid multiaddrs (address dropped).
    pub invalid_address: usize,
    /// Addresses whose `/p2p/` names another peer than the entry's (address dropped).
    pub foreign_peer_address: usize,
    /// Addresses beyond the per-entry maximum, or repeated (address dropped).
    pub excess_addresses: usize,
    /// Addresses outside the [address scope](crate::Config::with_address_scope) (address
    /// dropped; a signed record keeps it, unused).
    pub out_of_scope_address: usize,
    /// Entries left with no address within the
    /// [address scope](crate::Config::with_address_scope) (entry dropped).
    pub out_of_scope: usize,
    /// Entries without a signed record, while records are required
    /// ([`Config::with_require_signed_records`](crate::Config::with_require_signed_records))
    /// (entry dropped).
    pub unsigned: usize,
    /// Entries whose signed record is larger than
    /// [`Config::with_max_record_size`](crate::Config::with_max_record_size) (entry dropped,
    /// the record not decoded): [`RecordError::TooLarge`].
    pub record_too_large: usize,
    /// Entries whose signed record is not a standard signed peer record
    /// ([`RecordError::Malformed`]; entry dropped).
    pub record_malformed: usize,
    /// Entries whose signed record's signature does not verify ([`RecordError::BadSignature`];
    /// entry dropped).
    pub record_bad_signature: usize,
    /// Entries carrying a record signed by, or naming, another peer than the entry's
    /// ([`RecordError::WrongPeer`]; entry dropped).
    pub record_wrong_peer: usize,
}

impl InvalidEntries {
    /// Entries dropped or ignored as a whole.
    pub fn entries_dropped(&self) -> usize {
        self.excess_entries
            + self.invalid_peer_id
            + self.no_address
            + self.out_of_scope
            + self.unsigned
            + self.records_refused()
    }

    /// Entries dropped because of their signed record, whatever the reason.
    pub fn records_refused(&self) -> usize {
        self.record_too_large
            + self.record_malformed
            + self.record_bad_signature
            + self.record_wrong_peer
    }

    fn count_record(&mut self, error: &RecordError) {
        let counter = match error {
            RecordError::TooLarge { .. } => &mut self.record_too_large,
            RecordError::Malformed(_) => &mut self.record_malformed,
            RecordError::BadSignature => &mut self.record_bad_signature,
            RecordError::WrongPeer => &mut self.record_wrong_peer,
        };
        *counter += 1;
    }

    /// Single addresses dropped from entries that were otherwise kept or dropped.
    pub fn addresses_dropped(&self) -> usize {
        self.invalid_address
            + self.foreign_peer_address
            + self.excess_addresses
            + self.out_of_scope_address
    }

    /// Adds `other`'s counts to `self`.
    pub fn add(&mut self, other: &InvalidEntries) {
        self.excess_entries += other.excess_entries;
        self.invalid_peer_id += other.invalid_peer_id;
        self.no_address += other.no_address;
        self.invalid_address += other.invalid_address;
        self.foreign_peer_address += other.foreign_peer_address;
        self.excess_addresses += other.excess_addresses;
        self.out_of_scope_address += other.out_of_scope_address;
        self.out_of_scope += other.out_of_scope;
        self.unsigned += other.unsigned;
        self.record_too_large += other.record_too_large;
        self.record_malformed += other.record_malformed;
        self.record_bad_signature += other.record_bad_signature;
        self.record_wrong_peer += other.record_wrong_peer;
    }
}

/// Validates the entries of a received message, which arrived over `version`: at most
/// `message_length` are read, so at most that many records are verified; invalid peer ids drop
/// the entry. On `/cyclon/1.1.0` an entry with a signed record is kept only if the record
/// verifies as its peer's own ([`SignedPeerRecord::verify`]), and its addresses are the
/// record's (its unsigned ones are ignored); otherwise the entry is dropped and counted by
/// reason. On `/cyclon/1.0.0` records are ignored. An entry without a record is dropped when
/// records are required, and otherwise keeps its unsigned addresses. Addresses that are
/// invalid, name another peer or exceed `max_addresses` are dropped; a trailing `/p2p/<own
/// id>` is stripped; an entry left without addresses is dropped; ages are clamped. Duplicates
/// and entries naming the local peer are left to the core, which counts them.
pub(crate) fn decode_entries(
    entries: Vec<proto::Entry>,
    limits: &EntryLimits,
    version: Version,
) -> (Vec<ViewEntry>, InvalidEntries) {
    let mut invalid = InvalidEntries {
        excess_entries: entries.len().saturating_sub(limits.message_length),
        ..InvalidEntries::default()
    };
    let mut decoded = Vec::with_capacity(entries.len().min(limits.message_length));
    for entry in entries.into_iter().take(limits.message_length) {
        let Ok(peer_id) = PeerId::from_bytes(&entry.peer_id) else {
            invalid.invalid_peer_id += 1;
            continue;
        };
        let has_record = version.carries_records() && !entry.signed_peer_record.is_empty();
        // The candidate addresses (`None`: not a valid multiaddr) and the verified record.
        let (candidates, record): (Vec<Option<Multiaddr>>, _) = if has_record {
            let bytes = &entry.signed_peer_record;
            match SignedPeerRecord::verify(bytes, &peer_id, limits.max_record_size) {
                Ok((record, addresses)) => {
                    (addresses.into_iter().map(Some).collect(), Some(record))
                }
                Err(error) => {
                    invalid.count_record(&error);
                    continue;
                }
            }
        } else if limits.require_signed {
            invalid.unsigned += 1;
            continue;
        } else {
            let parsed = entry.addrs.into_iter().map(|b| Multiaddr::try_from(b).ok());
            (parsed.collect(), None)
        };
        let mut addresses: Vec<Multiaddr> = Vec::new();
        let mut dropped_for_scope = false;
        for address in candidates {
            if addresses.len() >= limits.max_addresses {
                invalid.excess_addresses += 1;
                continue;
            }
            let Some(address) = address else {
                invalid.invalid_address += 1;
                continue;
            };
            let Some(address) = strip_own_peer_id(address, &peer_id) else {
                invalid.foreign_peer_address += 1;
                continue;
            };
            if !limits.scope.allows(&address) {
                invalid.out_of_scope_address += 1;
                dropped_for_scope = true;
                continue;
            }
            if addresses.contains(&address) {
                invalid.excess_addresses += 1;
                continue;
            }
            addresses.push(address);
        }
        if addresses.is_empty() {
            if dropped_for_scope {
                invalid.out_of_scope += 1;
            } else {
                invalid.no_address += 1;
            }
            continue;
        }
        let age = u32::try_from(entry.age)
            .unwrap_or(u32::MAX)
            .min(limits.max_age);
        let payload = match record {
            Some(record) => PeerAddresses::signed(record, addresses),
            None => PeerAddresses::unverified(addresses),
        };
        decoded.push(ViewEntry::new(peer_id, payload, age));
    }
    (decoded, invalid)
}

/// Returns `address` without a trailing `/p2p/<peer>`, or `None` if it names another peer or
/// is empty.
pub(crate) fn strip_own_peer_id(mut address: Multiaddr, peer: &PeerId) -> Option<Multiaddr> {
    if let Some(Protocol::P2p(named)) = address.iter().last() {
        if named != *peer {
            return None;
        }
        address.pop();
    }
    (!address.is_empty()).then_some(address)
}

/// Encodes view entries for the wire in `version`, with at most `max_addresses` addresses
/// each. On `/cyclon/1.1.0` an entry with a signed record carries the record's bytes exactly as
/// received and no unsigned addresses; on `/cyclon/1.0.0` no entry ever carries a record (the
/// encoding is byte for byte that of `/cyclon/1.0.0` before records existed).
pub(crate) fn encode_entries(
    entries: &[ViewEntry],
    version: Version,
    max_addresses: usize,
) -> Vec<proto::Entry> {
    entries
        .iter()
        .map(|entry| {
            let record = entry
                .addresses()
                .signed_record()
                .filter(|_| version.carries_records());
            let addrs = match record {
                Some(_) => Vec::new(),
                None => entry
                    .addresses()
                    .iter()
                    .take(max_addresses)
                    .map(|a| a.to_vec())
                    .collect(),
            };
            proto::Entry {
                peer_id: entry.peer_id().to_bytes(),
                addrs,
                age: u64::from(entry.age()),
                signed_peer_record: record.map_or_else(Vec::new, |r| r.as_bytes().to_vec()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use asynchronous_codec::{Decoder, Encoder};
    use bytes::BytesMut;
    use futures::{executor::block_on, io::Cursor};
    use libp2p_identity::Keypair;
    use prost::Message as _;

    use super::*;

    const MAX: usize = 1024;

    fn limits() -> EntryLimits {
        EntryLimits {
            message_length: 5,
            max_addresses: 2,
            max_age: 100,
            max_record_size: 1024,
            require_signed: false,
            scope: AddressScope::Any,
        }
    }

    fn entry(peer: &PeerId, addrs: &[&str], age: u64) -> proto::Entry {
        proto::Entry {
            peer_id: peer.to_bytes(),
            addrs: addrs
                .iter()
                .map(|a| a.parse::<Multiaddr>().unwrap().to_vec())
                .collect(),
            age,
            signed_peer_record: Vec::new(),
        }
    }

    fn request(entries: Vec<proto::Entry>) -> proto::Message {
        proto::Message {
            payload: Some(Payload::Request(proto::ShuffleRequest { entries })),
        }
    }

    fn encode(message: proto::Message) -> BytesMut {
        let mut buf = BytesMut::new();
        prost_codec::Codec::<proto::Message>::new(usize::MAX)
            .encode(message, &mut buf)
            .unwrap();
        buf
    }

    #[test]
    fn protocol_name() {
        assert_eq!(PROTOCOL_NAME.as_ref(), "/cyclon/1.0.0");
        assert_eq!(PROTOCOL_NAME_V1_1.as_ref(), "/cyclon/1.1.0");
        assert_eq!(Version::ALL, &[Version::V1_1, Version::V1_0], "1.1.0 first");
        assert_eq!(Version::V1_0.as_ref(), PROTOCOL_NAME.as_ref());
        assert_eq!(Version::V1_1.as_ref(), PROTOCOL_NAME_V1_1.as_ref());
    }

    #[test]
    fn frame_round_trip() {
        let peer = PeerId::random();
        let message = request(vec![entry(&peer, &["/ip4/127.0.0.1/tcp/1"], 3)]);
        let mut buf = encode(message.clone());
        // The frame is the varint length followed by exactly the protobuf bytes.
        assert_eq!(buf[0] as usize, message.encoded_len());
        let mut codec = prost_codec::Codec::<proto::Message>::new(MAX);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(message));
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_frame_is_rejected_from_its_length_prefix() {
        // Only the prefix announcing 1 MiB has arrived: the decoder must fail now rather
        // than wait for (and buffer) the body.
        let mut prefix = unsigned_varint::encode::usize_buffer();
        let prefix = unsigned_varint::encode::usize(1 << 20, &mut prefix);
        let mut buf = BytesMut::from(prefix);
        let mut codec = prost_codec::Codec::<proto::Message>::new(MAX);
        let error = io::Error::from(codec.decode(&mut buf).unwrap_err());
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_frame_is_an_error() {
        let peer = PeerId::random();
        let full = encode(request(vec![entry(&peer, &["/ip4/127.0.0.1/tcp/1"], 3)]));
        let truncated = full[..full.len() - 3].to_vec();
        let result = block_on(read_request(Cursor::new(truncated), MAX));
        assert!(result.is_err());
        let result = block_on(read_request(Cursor::new(Vec::new()), MAX));
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn garbage_is_an_error() {
        // A plausible length followed by bytes that are not a protobuf message.
        let mut garbage = vec![8u8];
        garbage.extend_from_slice(&[0xff; 8]);
        assert!(block_on(read_request(Cursor::new(garbage), MAX)).is_err());
        // A varint that never ends.
        assert!(block_on(read_request(Cursor::new(vec![0xff; 16]), MAX)).is_err());
    }

    #[test]
    fn wrong_message_type_is_an_error() {
        let response = proto::Message {
            payload: Some(Payload::Response(proto::ShuffleResponse {
                entries: vec![],
            })),
        };
        let bytes = encode(response).to_vec();
        let error = block_on(read_request(Cursor::new(bytes), MAX)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn exchange_round_trip_over_a_stream() {
        let peer = PeerId::random();
        let entries = vec![entry(&peer, &["/ip4/127.0.0.1/tcp/1"], 3)];
        // The responder's bytes, as the initiator will read them.
        let mut reply = Vec::new();
        block_on(write_response(
            framed(Cursor::new(&mut reply), MAX),
            entries.clone(),
        ))
        .unwrap();
        struct Duplex {
            input: Cursor<Vec<u8>>,
            output: Vec<u8>,
        }
        impl AsyncRead for Duplex {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<io::Result<usize>> {
                std::pin::Pin::new(&mut self.input).poll_read(cx, buf)
            }
        }
        impl AsyncWrite for Duplex {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<io::Result<usize>> {
                std::pin::Pin::new(&mut self.output).poll_write(cx, buf)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
        }
        let mut duplex = Duplex {
            input: Cursor::new(reply),
            output: Vec::new(),
        };
        let received = block_on(request_shuffle(&mut duplex, entries.clone(), MAX)).unwrap();
        assert_eq!(received, entries);
        // What the initiator wrote is a well-formed request the responder can read.
        let (_, request) = block_on(read_request(Cursor::new(duplex.output), MAX)).unwrap();
        assert_eq!(request, entries);
    }

    #[test]
    fn entries_are_validated() {
        let a = PeerId::random();
        let b = PeerId::random();
        let c = PeerId::random();
        let other = PeerId::random();
        let own_p2p = format!("/ip4/127.0.0.1/tcp/2/p2p/{b}");
        let foreign_p2p = format!("/ip4/127.0.0.1/tcp/3/p2p/{other}");
        let mut bad_id = entry(&a, &["/ip4/127.0.0.1/tcp/9"], 0);
        bad_id.peer_id = vec![1, 2, 3];
        let mut bad_addr = entry(&c, &["/ip4/127.0.0.1/tcp/4"], u64::MAX);
        bad_addr.addrs.insert(0, vec![0xff, 0xff, 0xff]);
        let entries = vec![
            entry(
                &a,
                &[
                    "/ip4/127.0.0.1/tcp/1",
                    "/ip4/127.0.0.1/tcp/1",
                    "/ip4/127.0.0.1/tcp/5",
                    "/ip4/127.0.0.1/tcp/6",
                ],
                7,
            ),
            entry(&b, &[&own_p2p, &foreign_p2p], 1),
            bad_id,
            bad_addr,
            entry(&other, &[], 1),
            entry(&other, &["/ip4/127.0.0.1/tcp/8"], 1),
        ];
        // Unsigned entries decode alike on both versions.
        let (decoded, invalid) = decode_entries(entries.clone(), &limits(), Version::V1_1);
        assert_eq!(
            (decoded.clone(), invalid),
            decode_entries(entries, &limits(), Version::V1_0)
        );
        assert!(decoded.iter().all(|e| !e.addresses().is_verified()));
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[0].peer_id(), &a);
        assert_eq!(decoded[0].addresses().len(), 2);
        assert_eq!(decoded[0].age(), 7);
        assert_eq!(
            decoded[1].addresses().as_slice(),
            &["/ip4/127.0.0.1/tcp/2".parse().unwrap()]
        );
        assert_eq!(decoded[2].peer_id(), &c);
        assert_eq!(decoded[2].age(), 100, "ages are clamped");
        assert_eq!(
            invalid,
            InvalidEntries {
                excess_entries: 1,
                invalid_peer_id: 1,
                no_address: 1,
                invalid_address: 1,
                foreign_peer_address: 1,
                excess_addresses: 2,
                ..InvalidEntries::default()
            }
        );
    }

    /// The entry layout of `/cyclon/1.0.0` as it was before records: fields 1 to 3 only.
    #[derive(Clone, PartialEq, prost::Message)]
    struct EntryV1_0 {
        #[prost(bytes = "vec", tag = "1")]
        peer_id: Vec<u8>,
        #[prost(bytes = "vec", repeated, tag = "2")]
        addrs: Vec<Vec<u8>>,
        #[prost(uint64, tag = "3")]
        age: u64,
    }

    fn signed_entry(key: &Keypair, ports: &[u16], seq: u64, age: u32) -> ViewEntry {
        let addresses: Vec<Multiaddr> = ports
            .iter()
            .map(|p| format!("/ip4/10.0.0.1/tcp/{p}").parse().unwrap())
            .collect();
        let record = SignedPeerRecord::sign(key, &addresses, seq).unwrap();
        ViewEntry::new(
            key.public().to_peer_id(),
            PeerAddresses::signed(record, addresses),
            age,
        )
    }

    fn unsigned_entry(ports: &[u16], age: u32) -> ViewEntry {
        let addresses = ports
            .iter()
            .map(|p| format!("/ip4/10.0.0.2/tcp/{p}").parse().unwrap())
            .collect();
        ViewEntry::new(PeerId::random(), PeerAddresses::unverified(addresses), age)
    }

    #[test]
    fn v1_0_never_carries_a_record_and_is_encoded_as_before() {
        let key = Keypair::generate_ed25519();
        let entries = vec![signed_entry(&key, &[1, 2], 9, 3), unsigned_entry(&[3], 4)];
        let encoded = encode_entries(&entries, Version::V1_0, 8);
        assert!(encoded.iter().all(|e| e.signed_peer_record.is_empty()));
        // Byte for byte the old layout: what a 1.0.0-only schema encodes from the same
        // fields, and what it decodes without skipping any unknown field.
        for (entry, view_entry) in encoded.iter().zip(&entries) {
            let bytes = entry.encode_to_vec();
            let old = EntryV1_0 {
                peer_id: view_entry.peer_id().to_bytes(),
                addrs: view_entry.addresses().iter().map(|a| a.to_vec()).collect(),
                age: u64::from(view_entry.age()),
            };
            assert_eq!(bytes, old.encode_to_vec());
            assert_eq!(
                EntryV1_0::decode(&bytes[..]).unwrap().encode_to_vec(),
                bytes
            );
        }
        let message = request(encoded.clone());
        let decoded_as_v1_1 = proto::Message::decode(&message.encode_to_vec()[..]).unwrap();
        assert_eq!(decoded_as_v1_1, message);
        // The signed entry is a plain entry with the record's addresses there.
        let (decoded, invalid) = decode_entries(encoded, &limits(), Version::V1_0);
        assert_eq!(invalid, InvalidEntries::default());
        assert_eq!(
            decoded[0].addresses().as_slice(),
            entries[0].addresses().as_slice()
        );
        assert!(!decoded[0].addresses().is_verified());
    }

    #[test]
    fn v1_1_carries_records_byte_for_byte_and_takes_addresses_from_them() {
        let key = Keypair::generate_ed25519();
        let entries = vec![signed_entry(&key, &[1, 2], 9, 3), unsigned_entry(&[3], 4)];
        let mut encoded = encode_entries(&entries, Version::V1_1, 8);
        let record = entries[0].addresses().signed_record().unwrap();
        assert_eq!(encoded[0].signed_peer_record, record.as_bytes());
        assert!(
            encoded[0].addrs.is_empty(),
            "no unsigned addresses beside a record"
        );
        assert_eq!(encoded[1].addrs.len(), 1);
        assert!(encoded[1].signed_peer_record.is_empty());
        // Unsigned addresses beside a record are ignored: the record's are taken.
        encoded[0].addrs = vec![
            "/ip4/6.6.6.6/tcp/666"
                .parse::<Multiaddr>()
                .unwrap()
                .to_vec(),
        ];
        let (decoded, invalid) = decode_entries(encoded.clone(), &limits(), Version::V1_1);
        assert_eq!(invalid, InvalidEntries::default());
        assert_eq!(decoded, entries, "the same entries, the same record bytes");
        assert_eq!(decoded[0].addresses().signed_record(), Some(record));
        assert!(decoded[0].addresses().is_verified());
        // Forwarded: the very bytes again.
        let forwarded = encode_entries(&decoded, Version::V1_1, 8);
        assert_eq!(forwarded[0].signed_peer_record, record.as_bytes());
        // Over 1.0.0 a received record is ignored: the entry is unsigned with its addrs.
        let (decoded, _) = decode_entries(encoded, &limits(), Version::V1_0);
        assert!(!decoded[0].addresses().is_verified());
        assert_eq!(
            decoded[0].addresses().as_slice(),
            &["/ip4/6.6.6.6/tcp/666".parse::<Multiaddr>().unwrap()]
        );
    }

    #[test]
    fn forged_records_drop_their_entries_by_reason() {
        let key = Keypair::generate_ed25519();
        let valid = encode_entries(&[signed_entry(&key, &[1], 1, 0)], Version::V1_1, 8).remove(0);
        let mut bad_signature = valid.clone();
        *bad_signature.signed_peer_record.last_mut().unwrap() ^= 1;
        // Another peer's valid record inside an entry.
        let mut wrong_peer = valid.clone();
        wrong_peer.peer_id = PeerId::random().to_bytes();
        let mut malformed = valid.clone();
        malformed.signed_peer_record = vec![0xff; 30];
        let other = Keypair::generate_ed25519();
        let many: Vec<u16> = (1..=100).collect();
        let oversized =
            encode_entries(&[signed_entry(&other, &many, 1, 0)], Version::V1_1, 8).remove(0);
        assert!(oversized.signed_peer_record.len() > 1024);
        let entries = vec![bad_signature, wrong_peer, malformed, oversized, valid];
        let (decoded, invalid) = decode_entries(entries, &limits(), Version::V1_1);
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].peer_id(), &key.public().to_peer_id());
        assert_eq!(
            invalid,
            InvalidEntries {
                record_bad_signature: 1,
                record_wrong_peer: 1,
                record_malformed: 1,
                record_too_large: 1,
                ..InvalidEntries::default()
            }
        );
        assert_eq!(invalid.entries_dropped(), 4);
        assert_eq!(invalid.records_refused(), 4);
    }

    #[test]
    fn at_most_l_records_are_verified_per_message() {
        let key = Keypair::generate_ed25519();
        let mut broken =
            encode_entries(&[signed_entry(&key, &[1], 1, 0)], Version::V1_1, 8).remove(0);
        *broken.signed_peer_record.last_mut().unwrap() ^= 1;
        let (decoded, invalid) = decode_entries(vec![broken; 50], &limits(), Version::V1_1);
        assert!(decoded.is_empty());
        assert_eq!(invalid.record_bad_signature, limits().message_length);
        assert_eq!(invalid.excess_entries, 50 - limits().message_length);
    }

    #[test]
    fn unsigned_entries_are_accepted_by_default_and_refused_when_records_are_required() {
        let key = Keypair::generate_ed25519();
        let entries = vec![signed_entry(&key, &[1], 1, 0), unsigned_entry(&[2], 0)];
        let strict = EntryLimits {
            require_signed: true,
            ..limits()
        };
        let (decoded, invalid) = decode_entries(
            encode_entries(&entries, Version::V1_1, 8),
            &strict,
            Version::V1_1,
        );
        assert_eq!(decoded, entries[..1]);
        assert_eq!(invalid.unsigned, 1);
        // Over 1.0.0 nothing is signed: a strict receiver takes nothing.
        let (decoded, invalid) = decode_entries(
            encode_entries(&entries, Version::V1_0, 8),
            &strict,
            Version::V1_0,
        );
        assert!(decoded.is_empty());
        assert_eq!(invalid.unsigned, 2);
        let (decoded, invalid) = decode_entries(
            encode_entries(&entries, Version::V1_1, 8),
            &limits(),
            Version::V1_1,
        );
        assert_eq!(decoded, entries);
        assert_eq!(invalid, InvalidEntries::default());
    }

    /// Addresses outside the scope are dropped and counted; an entry with none left is
    /// dropped; a signed record keeps its addresses (forwarded byte for byte) while only those
    /// within the scope are used.
    #[test]
    fn addresses_outside_the_scope_are_dropped_and_counted() {
        let peer = PeerId::random();
        let lan = EntryLimits {
            scope: AddressScope::Lan,
            ..limits()
        };
        let entries = vec![
            entry(&peer, &["/ip4/127.0.0.1/tcp/1", "/ip4/10.0.0.1/tcp/1"], 1),
            entry(&PeerId::random(), &["/ip4/127.0.0.1/tcp/2"], 1),
        ];
        let (decoded, invalid) = decode_entries(entries, &lan, Version::V1_1);
        assert_eq!(decoded.len(), 1);
        assert_eq!(
            decoded[0].addresses().as_slice(),
            &["/ip4/10.0.0.1/tcp/1".parse::<Multiaddr>().unwrap()]
        );
        assert_eq!(invalid.out_of_scope_address, 2);
        assert_eq!(invalid.out_of_scope, 1);
        assert_eq!(invalid.no_address, 0);
        assert_eq!(invalid.entries_dropped(), 1);

        let key = Keypair::generate_ed25519();
        let addresses: Vec<Multiaddr> = ["/ip4/10.0.0.1/tcp/1", "/ip4/8.8.8.8/tcp/1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let record = SignedPeerRecord::sign(&key, &addresses, 1).unwrap();
        let signed = ViewEntry::new(
            key.public().to_peer_id(),
            PeerAddresses::signed(record.clone(), addresses.clone()),
            0,
        );
        let global = EntryLimits {
            scope: AddressScope::Global,
            ..limits()
        };
        let wire = encode_entries(std::slice::from_ref(&signed), Version::V1_1, 8);
        let (decoded, invalid) = decode_entries(wire, &global, Version::V1_1);
        assert_eq!(decoded[0].addresses().as_slice(), &addresses[1..]);
        assert!(decoded[0].addresses().is_verified());
        assert_eq!(invalid.out_of_scope_address, 1);
        let forwarded = encode_entries(&decoded, Version::V1_1, 8);
        assert_eq!(forwarded[0].signed_peer_record, record.as_bytes());
    }
}
