//! Unit tests of the wire protocol.

use asynchronous_codec::{Decoder, Encoder};
use bytes::BytesMut;
use futures::{executor::block_on, io::Cursor};
use libp2p_core::Multiaddr;
use libp2p_identity::{Keypair, PeerId};
use prost::Message as _;

use super::*;
use crate::{
    address_scope::AddressScope,
    record::{PeerAddresses, SignedPeerRecord},
};

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
    let mut broken = encode_entries(&[signed_entry(&key, &[1], 1, 0)], Version::V1_1, 8).remove(0);
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
