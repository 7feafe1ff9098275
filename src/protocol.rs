//! The wire protocol `/cyclon/1.0.0`: framing, message exchange, the view entries it carries
//! ([`ViewEntry`]) and validation of what remote peers send.
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

use crate::{config::Config, view::Entry};

/// The protocol name: `/cyclon/1.0.0`.
pub const PROTOCOL_NAME: StreamProtocol = StreamProtocol::new("/cyclon/1.0.0");

/// The protobuf types generated from `proto/cyclon.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub(crate) mod proto {
    include!(concat!(env!("OUT_DIR"), "/cyclon.pb.rs"));
}

/// An entry of the [`Behaviour`](crate::Behaviour)'s view: a peer, its addresses and the
/// entry's age, as the wire carries it.
pub type ViewEntry = Entry<PeerId, Vec<Multiaddr>>;

impl<A> Entry<PeerId, A> {
    /// The peer this entry points to.
    pub fn peer_id(&self) -> &PeerId {
        self.id()
    }
}

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
    pub(crate) max_entries: usize,
    /// Addresses beyond this count, per entry, are ignored.
    pub(crate) max_addresses: usize,
    /// Ages are clamped to this value.
    pub(crate) max_age: u32,
}

impl EntryLimits {
    /// The bounds `config` sets.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            max_entries: config.shuffle_params().message_length(),
            max_addresses: config.max_addresses_per_entry(),
            max_age: config.shuffle_params().max_age,
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
}

impl InvalidEntries {
    /// Entries dropped or ignored as a whole.
    pub fn entries_dropped(&self) -> usize {
        self.excess_entries + self.invalid_peer_id + self.no_address
    }

    /// Single addresses dropped from entries that were otherwise kept or dropped.
    pub fn addresses_dropped(&self) -> usize {
        self.invalid_address + self.foreign_peer_address + self.excess_addresses
    }

    /// Adds `other`'s counts to `self`.
    pub fn add(&mut self, other: &InvalidEntries) {
        self.excess_entries += other.excess_entries;
        self.invalid_peer_id += other.invalid_peer_id;
        self.no_address += other.no_address;
        self.invalid_address += other.invalid_address;
        self.foreign_peer_address += other.foreign_peer_address;
        self.excess_addresses += other.excess_addresses;
    }
}

/// Validates the entries of a received message: at most `max_entries` are read; invalid peer
/// ids drop the entry; invalid addresses, addresses naming another peer and addresses beyond
/// `max_addresses` are dropped; a trailing `/p2p/<own id>` is stripped; an entry left without
/// addresses is dropped; ages are clamped. Duplicates and entries naming the local peer are
/// left to the core, which counts them.
pub(crate) fn decode_entries(
    entries: Vec<proto::Entry>,
    limits: &EntryLimits,
) -> (Vec<ViewEntry>, InvalidEntries) {
    let mut invalid = InvalidEntries {
        excess_entries: entries.len().saturating_sub(limits.max_entries),
        ..InvalidEntries::default()
    };
    let mut decoded = Vec::with_capacity(entries.len().min(limits.max_entries));
    for entry in entries.into_iter().take(limits.max_entries) {
        let Ok(peer_id) = PeerId::from_bytes(&entry.peer_id) else {
            invalid.invalid_peer_id += 1;
            continue;
        };
        let mut addresses: Vec<Multiaddr> = Vec::new();
        for bytes in entry.addrs {
            if addresses.len() >= limits.max_addresses {
                invalid.excess_addresses += 1;
                continue;
            }
            let Ok(address) = Multiaddr::try_from(bytes) else {
                invalid.invalid_address += 1;
                continue;
            };
            let Some(address) = strip_own_peer_id(address, &peer_id) else {
                invalid.foreign_peer_address += 1;
                continue;
            };
            if addresses.contains(&address) {
                invalid.excess_addresses += 1;
                continue;
            }
            addresses.push(address);
        }
        if addresses.is_empty() {
            invalid.no_address += 1;
            continue;
        }
        let age = u32::try_from(entry.age)
            .unwrap_or(u32::MAX)
            .min(limits.max_age);
        decoded.push(ViewEntry::new(peer_id, addresses, age));
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

/// Encodes view entries for the wire, with at most `max_addresses` addresses each.
pub(crate) fn encode_entries(entries: &[ViewEntry], max_addresses: usize) -> Vec<proto::Entry> {
    entries
        .iter()
        .map(|entry| proto::Entry {
            peer_id: entry.id().to_bytes(),
            addrs: entry
                .addresses()
                .iter()
                .take(max_addresses)
                .map(|a| a.to_vec())
                .collect(),
            age: u64::from(entry.age()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use asynchronous_codec::{Decoder, Encoder};
    use bytes::BytesMut;
    use futures::{executor::block_on, io::Cursor};
    use prost::Message as _;

    use super::*;

    const MAX: usize = 1024;

    fn limits() -> EntryLimits {
        EntryLimits {
            max_entries: 5,
            max_addresses: 2,
            max_age: 100,
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
        let (decoded, invalid) = decode_entries(entries, &limits());
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[0].id(), &a);
        assert_eq!(decoded[0].addresses().len(), 2);
        assert_eq!(decoded[0].age(), 7);
        assert_eq!(
            decoded[1].addresses(),
            &vec!["/ip4/127.0.0.1/tcp/2".parse().unwrap()]
        );
        assert_eq!(decoded[2].id(), &c);
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
            }
        );
    }
}
