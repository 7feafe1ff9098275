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

mod entries;
#[cfg(test)]
mod tests;

use std::io;

use asynchronous_codec::Framed;
use futures::{AsyncRead, AsyncWrite, SinkExt, StreamExt};
use libp2p_swarm::StreamProtocol;

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

pub(crate) use self::entries::{EntryLimits, decode_entries, encode_entries, strip_own_peer_id};
pub use self::entries::{InvalidEntries, ViewEntry};

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
