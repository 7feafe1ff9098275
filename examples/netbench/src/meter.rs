//! Byte counters: what each swarm writes at the raw socket, after the security upgrade and on
//! each substream, split by protocol into multistream-select negotiation and payload.
//!
//! Written by hand rather than taken from libp2p-metrics: its bandwidth transport (0.18) counts
//! only the bytes of muxed substreams, so it cannot tell connection setup, noise and yamux
//! framing, multistream-select and payload apart, which is what this benchmark is for. Only
//! writes are counted: every byte one swarm writes is read by another swarm of the same
//! process, so the sum of writes is the traffic. Reads are counted at the raw level only, per
//! swarm, for the bootstrap node's share of inbound bytes.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    task::{Context, Poll, ready},
};

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use serde::{Deserialize, Serialize};

/// The protocols whose substreams are told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Cyclon,
    Kad,
    Identify,
    Ping,
    Other,
}

impl Class {
    const ALL: [Class; 5] = [
        Class::Cyclon,
        Class::Kad,
        Class::Identify,
        Class::Ping,
        Class::Other,
    ];

    fn of(protocol: &[u8]) -> Class {
        if protocol.starts_with(b"/cyclon/") {
            Class::Cyclon
        } else if protocol.starts_with(b"/ipfs/kad/") {
            Class::Kad
        } else if protocol.starts_with(b"/ipfs/id/") {
            Class::Identify
        } else if protocol.starts_with(b"/ipfs/ping/") {
            Class::Ping
        } else {
            Class::Other
        }
    }

    fn index(self) -> usize {
        Class::ALL.iter().position(|c| *c == self).unwrap_or(4)
    }
}

/// Live counters of one swarm (atomics: substreams are written from the connection tasks).
#[derive(Debug, Default)]
pub struct Meter {
    raw_written: AtomicU64,
    raw_read: AtomicU64,
    secured_written: AtomicU64,
    setup_raw: AtomicU64,
    setup_secured: AtomicU64,
    negotiation: [AtomicU64; 5],
    payload: [AtomicU64; 5],
    messages: [AtomicU64; 5],
    pub connections_out: AtomicU64,
    pub connections_in: AtomicU64,
    pub shuffles_completed: AtomicU64,
    pub shuffles_failed: AtomicU64,
    pub shuffles_answered: AtomicU64,
}

/// A snapshot of a [`Meter`], or a sum or difference of snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub raw_written: u64,
    pub raw_read: u64,
    pub secured_written: u64,
    pub setup_raw: u64,
    pub setup_secured: u64,
    pub negotiation: [u64; 5],
    pub payload: [u64; 5],
    pub messages: [u64; 5],
    pub connections_out: u64,
    pub connections_in: u64,
    pub shuffles_completed: u64,
    pub shuffles_failed: u64,
    pub shuffles_answered: u64,
}

impl Meter {
    pub fn counts(&self) -> Counts {
        let load = |a: &AtomicU64| a.load(Relaxed);
        Counts {
            raw_written: load(&self.raw_written),
            raw_read: load(&self.raw_read),
            secured_written: load(&self.secured_written),
            setup_raw: load(&self.setup_raw),
            setup_secured: load(&self.setup_secured),
            negotiation: self.negotiation.each_ref().map(load),
            payload: self.payload.each_ref().map(load),
            messages: self.messages.each_ref().map(load),
            connections_out: load(&self.connections_out),
            connections_in: load(&self.connections_in),
            shuffles_completed: load(&self.shuffles_completed),
            shuffles_failed: load(&self.shuffles_failed),
            shuffles_answered: load(&self.shuffles_answered),
        }
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}

impl Counts {
    fn zip(self, other: Counts, f: impl Fn(u64, u64) -> u64) -> Counts {
        let arr = |a: [u64; 5], b: [u64; 5]| std::array::from_fn(|i| f(a[i], b[i]));
        Counts {
            raw_written: f(self.raw_written, other.raw_written),
            raw_read: f(self.raw_read, other.raw_read),
            secured_written: f(self.secured_written, other.secured_written),
            setup_raw: f(self.setup_raw, other.setup_raw),
            setup_secured: f(self.setup_secured, other.setup_secured),
            negotiation: arr(self.negotiation, other.negotiation),
            payload: arr(self.payload, other.payload),
            messages: arr(self.messages, other.messages),
            connections_out: f(self.connections_out, other.connections_out),
            connections_in: f(self.connections_in, other.connections_in),
            shuffles_completed: f(self.shuffles_completed, other.shuffles_completed),
            shuffles_failed: f(self.shuffles_failed, other.shuffles_failed),
            shuffles_answered: f(self.shuffles_answered, other.shuffles_answered),
        }
    }

    pub fn plus(self, other: Counts) -> Counts {
        self.zip(other, u64::wrapping_add)
    }

    pub fn minus(self, other: Counts) -> Counts {
        self.zip(other, u64::saturating_sub)
    }

    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Arc<Meter>>) -> Counts {
        all.into_iter()
            .fold(Counts::default(), |sum, m| sum.plus(m.counts()))
    }

    pub fn negotiation(&self, class: Class) -> u64 {
        self.negotiation[class.index()]
    }

    pub fn payload(&self, class: Class) -> u64 {
        self.payload[class.index()]
    }

    pub fn messages(&self, class: Class) -> u64 {
        self.messages[class.index()]
    }

    /// Bytes written on substreams of every protocol, negotiation included.
    pub fn streams(&self) -> u64 {
        self.negotiation.iter().sum::<u64>() + self.payload.iter().sum::<u64>()
    }

    /// Bytes written on substreams of protocols other than `class`.
    pub fn other_streams(&self, class: Class) -> u64 {
        self.streams() - self.negotiation(class) - self.payload(class)
    }
}

/// The raw bytes of one connection until its security and multiplexer upgrades complete:
/// those are its setup cost. A connection that never completes them is all setup.
#[derive(Debug)]
pub struct Connection {
    meter: Arc<Meter>,
    raw: AtomicU64,
    secured: AtomicU64,
    set_up: AtomicBool,
}

impl Connection {
    pub fn new(meter: Arc<Meter>) -> Arc<Self> {
        Arc::new(Self {
            meter,
            raw: AtomicU64::new(0),
            secured: AtomicU64::new(0),
            set_up: AtomicBool::new(false),
        })
    }

    /// The upgrades completed: what was written so far is the setup.
    pub fn set_up(&self) {
        if !self.set_up.swap(true, Relaxed) {
            self.meter
                .setup_raw
                .fetch_add(self.raw.load(Relaxed), Relaxed);
            self.meter
                .setup_secured
                .fetch_add(self.secured.load(Relaxed), Relaxed);
        }
    }

    pub fn meter(&self) -> &Arc<Meter> {
        &self.meter
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.set_up();
    }
}

/// Which layer a [`Counted`] stream sits at.
#[derive(Debug, Clone, Copy)]
pub enum Layer {
    /// The transport's own stream (TCP socket, memory channel).
    Raw,
    /// The plaintext side of the security upgrade (noise).
    Secured,
}

/// Counts the bytes read and written through a connection's stream at one layer.
pub struct Counted<S> {
    inner: S,
    connection: Arc<Connection>,
    layer: Layer,
}

impl<S> Counted<S> {
    pub fn new(inner: S, connection: Arc<Connection>, layer: Layer) -> Self {
        Self {
            inner,
            connection,
            layer,
        }
    }

    fn wrote(&self, n: usize) {
        let n = n as u64;
        let (own, total) = match self.layer {
            Layer::Raw => (&self.connection.raw, &self.connection.meter.raw_written),
            Layer::Secured => (
                &self.connection.secured,
                &self.connection.meter.secured_written,
            ),
        };
        own.fetch_add(n, Relaxed);
        total.fetch_add(n, Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        if let Layer::Raw = self.layer {
            self.connection.meter.raw_read.fetch_add(n as u64, Relaxed);
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.wrote(n);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// Splits what one side writes on a substream into multistream-select messages and the
/// protocol's payload, following the bytes (not the calls): a varint-length-prefixed line
/// (`/multistream/1.0.0\n`, a protocol, `na\n`, `ls\n`) is negotiation, the first message
/// that is not such a line starts the payload of the last protocol named. The payload of
/// varint-framed protocols (Cyclon, kad, identify) is counted in messages too.
#[derive(Debug, Default)]
struct Splitter {
    /// Bytes of the current negotiation message, until it is classified.
    pending: Vec<u8>,
    /// Negotiation bytes not yet attributed to a protocol (the header comes before the
    /// protocol's name).
    unattributed: u64,
    /// The protocol last named; `Some` once the payload started.
    protocol: Vec<u8>,
    payload: Option<Class>,
    /// Payload framing: bytes left in the current message, and a partial length prefix.
    frame_left: u64,
    prefix: Vec<u8>,
}

/// A varint at the start of `bytes`: its value and length, `None` if incomplete or too long.
fn varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The longest multistream-select message (a protocol name) this splitter waits for.
const MAX_LINE: u64 = 1024;

impl Splitter {
    fn feed(&mut self, meter: &Meter, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if let Some(class) = self.payload {
                self.count_payload(meter, class, bytes);
                return;
            }
            self.pending.push(bytes[0]);
            bytes = &bytes[1..];
            match self.classify() {
                Some(true) => {
                    self.unattributed += self.pending.len() as u64;
                    self.pending.clear();
                    if !self.protocol.is_empty() {
                        self.attribute(meter);
                    }
                }
                Some(false) => {
                    let class = Class::of(&self.protocol);
                    self.attribute(meter);
                    self.payload = Some(class);
                    let pending = std::mem::take(&mut self.pending);
                    self.count_payload(meter, class, &pending);
                }
                None => {}
            }
        }
    }

    /// Counts the negotiation bytes so far for the protocol last named (or as `Other`).
    fn attribute(&mut self, meter: &Meter) {
        let class = Class::of(&self.protocol);
        meter.negotiation[class.index()].fetch_add(self.unattributed, Relaxed);
        self.unattributed = 0;
    }

    /// Whether the pending bytes are a whole negotiation message (`Some(true)`, and the
    /// protocol it names is noted), the start of the payload (`Some(false)`), or not known yet.
    fn classify(&mut self) -> Option<bool> {
        let Some((len, prefix)) = varint(&self.pending) else {
            return (self.pending.len() >= 9).then_some(false);
        };
        if len == 0 || len > MAX_LINE {
            return Some(false);
        }
        let body = &self.pending[prefix..];
        match body.first() {
            None => return None,
            Some(b'/' | b'n' | b'l') => {}
            Some(_) => return Some(false),
        }
        if (body.len() as u64) < len {
            return None;
        }
        if !body.ends_with(b"\n") {
            return Some(false);
        }
        if body.starts_with(b"/") && body != b"/multistream/1.0.0\n" {
            self.protocol = body.to_vec();
        } else if body != b"na\n" && body != b"ls\n" && body != b"/multistream/1.0.0\n" {
            return Some(false);
        }
        Some(true)
    }

    fn count_payload(&mut self, meter: &Meter, class: Class, mut bytes: &[u8]) {
        let index = class.index();
        meter.payload[index].fetch_add(bytes.len() as u64, Relaxed);
        if matches!(class, Class::Ping | Class::Other) {
            return;
        }
        while !bytes.is_empty() {
            if self.frame_left > 0 {
                let take = self.frame_left.min(bytes.len() as u64);
                self.frame_left -= take;
                bytes = &bytes[take as usize..];
                continue;
            }
            self.prefix.push(bytes[0]);
            bytes = &bytes[1..];
            if let Some((len, _)) = varint(&self.prefix) {
                meter.messages[index].fetch_add(1, Relaxed);
                self.frame_left = len;
                self.prefix.clear();
            } else if self.prefix.len() >= 9 {
                self.prefix.clear();
            }
        }
    }
}

/// A substream whose writes are split into negotiation and payload by protocol.
pub struct MeteredStream<S> {
    inner: S,
    meter: Arc<Meter>,
    splitter: Splitter,
}

impl<S: AsyncRead + Unpin> AsyncRead for MeteredStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MeteredStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let n = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        let this = &mut *self;
        this.splitter.feed(&this.meter, &buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<S> Drop for MeteredStream<S> {
    fn drop(&mut self) {
        // A stream that ended during negotiation.
        self.splitter.attribute(&self.meter);
    }
}

/// A multiplexer whose substreams are [`MeteredStream`]s.
pub struct MeteredMuxer<M> {
    inner: M,
    meter: Arc<Meter>,
}

impl<M> MeteredMuxer<M> {
    pub fn new(inner: M, meter: Arc<Meter>) -> Self {
        Self { inner, meter }
    }

    fn wrap<S>(&self, inner: S) -> MeteredStream<S> {
        MeteredStream {
            inner,
            meter: Arc::clone(&self.meter),
            splitter: Splitter::default(),
        }
    }
}

impl<M> StreamMuxer for MeteredMuxer<M>
where
    M: StreamMuxer + Unpin,
    M::Substream: Unpin,
{
    type Substream = MeteredStream<M::Substream>;
    type Error = M::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let stream = ready!(Pin::new(&mut self.inner).poll_inbound(cx))?;
        Poll::Ready(Ok(self.wrap(stream)))
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let stream = ready!(Pin::new(&mut self.inner).poll_outbound(cx))?;
        Poll::Ready(Ok(self.wrap(stream)))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Vec<u8> {
        let mut bytes = vec![text.len() as u8];
        bytes.extend_from_slice(text.as_bytes());
        bytes
    }

    #[test]
    fn negotiation_and_payload_are_told_apart_across_writes() {
        let meter = Meter::default();
        let mut splitter = Splitter::default();
        let mut bytes = line("/multistream/1.0.0\n");
        bytes.extend(line("/cyclon/1.0.0\n"));
        let negotiation = bytes.len() as u64;
        // Two framed messages of 3 and 200 bytes.
        bytes.extend([3, 0x0a, 1, 2]);
        bytes.extend([0xc8, 0x01]);
        bytes.extend([0x12; 200]);
        for chunk in bytes.chunks(7) {
            splitter.feed(&meter, chunk);
        }
        let counts = meter.counts();
        assert_eq!(counts.negotiation(Class::Cyclon), negotiation);
        assert_eq!(
            counts.payload(Class::Cyclon),
            bytes.len() as u64 - negotiation
        );
        assert_eq!(counts.messages(Class::Cyclon), 2);
    }

    #[test]
    fn a_refused_proposal_is_negotiation() {
        let meter = Meter::default();
        let mut splitter = Splitter::default();
        let mut bytes = line("/multistream/1.0.0\n");
        bytes.extend(line("na\n"));
        splitter.feed(&meter, &bytes);
        // The stream ends here (as its drop does).
        splitter.attribute(&meter);
        assert_eq!(meter.counts().streams(), bytes.len() as u64);
        assert_eq!(meter.counts().payload.iter().sum::<u64>(), 0);
    }
}
