//! The three transports measured, each with byte counters at every layer: TCP and the memory
//! transport with noise and yamux (as `SwarmBuilder::with_tcp` builds them: multistream-select
//! `V1Lazy` for the connection upgrades), and QUIC (its own TLS and streams).
//!
//! The upgrades are applied by hand (not with `Transport::upgrade`) so that one counter sees
//! the raw bytes of a connection and the bytes after noise, and knows when setup ends.

use std::{fmt, io, str::FromStr, sync::Arc, time::Duration};

use futures::{AsyncRead, AsyncWrite};
use libp2p::{
    Multiaddr, PeerId, Transport,
    core::{
        ConnectedPoint, Endpoint, Negotiated,
        muxing::StreamMuxerBox,
        transport::{Boxed, MemoryTransport, timeout::TransportTimeout},
        upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, Version},
    },
    identity::Keypair,
    noise, quic, tcp, yamux,
};

use crate::meter::{Connection, Counted, Layer, Meter, MeteredMuxer};

/// A transport to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The in-process memory transport, with noise and yamux.
    Memory,
    /// TCP on 127.0.0.1, with noise and yamux.
    Tcp,
    /// QUIC v1 on 127.0.0.1.
    Quic,
}

impl Kind {
    /// The address a swarm listens on.
    pub fn listen_address(self) -> Multiaddr {
        let text = match self {
            Kind::Memory => "/memory/0",
            Kind::Tcp => "/ip4/127.0.0.1/tcp/0",
            Kind::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        };
        text.parse().expect("a valid multiaddr")
    }

    /// Whether the transport goes through the kernel's loopback interface.
    pub fn uses_kernel(self) -> bool {
        !matches!(self, Kind::Memory)
    }

    /// Builds the transport of one swarm, counting into `meter`.
    pub fn build(self, key: &Keypair, meter: Arc<Meter>) -> Boxed<(PeerId, StreamMuxerBox)> {
        match self {
            Kind::Memory => secured(MemoryTransport::default(), key, meter),
            Kind::Tcp => secured(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true)),
                key,
                meter,
            ),
            Kind::Quic => quic::tokio::Transport::new(quic::Config::new(key))
                .map(move |(peer, connection), _| {
                    let muxer = MeteredMuxer::new(connection, Arc::clone(&meter));
                    (peer, StreamMuxerBox::new(muxer))
                })
                .boxed(),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Memory => "memory",
            Kind::Tcp => "tcp",
            Kind::Quic => "quic",
        })
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Kind as clap::ValueEnum>::from_str(s, true)
    }
}

/// `raw` with noise and yamux, counted at the raw and secured layers and per substream.
fn secured<T>(raw: T, key: &Keypair, meter: Arc<Meter>) -> Boxed<(PeerId, StreamMuxerBox)>
where
    T: Transport + Send + Unpin + 'static,
    T::Output: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T::Error: Send + Sync + 'static,
    T::Dial: Send + 'static,
    T::ListenerUpgrade: Send + 'static,
{
    let noise = noise::Config::new(key).expect("an ed25519 key signs a noise key");
    let upgraded = raw.and_then(move |io, endpoint| {
        let noise = noise.clone();
        let connection = Connection::new(Arc::clone(&meter));
        let dialer = matches!(
            endpoint,
            ConnectedPoint::Dialer {
                role_override: Endpoint::Dialer,
                ..
            }
        );
        async move {
            let io = Counted::new(io, Arc::clone(&connection), Layer::Raw);
            let (peer, secure) = upgrade(io, noise, dialer).await?;
            let secure = Counted::new(secure, Arc::clone(&connection), Layer::Secured);
            let muxer = upgrade(secure, yamux::Config::default(), dialer).await?;
            connection.set_up();
            let muxer = MeteredMuxer::new(muxer, Arc::clone(connection.meter()));
            Ok::<_, io::Error>((peer, StreamMuxerBox::new(muxer)))
        }
    });
    TransportTimeout::new(upgraded, Duration::from_secs(20)).boxed()
}

/// Negotiates `up` with multistream-select and applies it, as the dialer or the listener.
async fn upgrade<C, U, O, E>(io: C, up: U, dialer: bool) -> io::Result<O>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: InboundConnectionUpgrade<Negotiated<C>, Output = O, Error = E>
        + OutboundConnectionUpgrade<Negotiated<C>, Output = O, Error = E>,
    E: std::error::Error + Send + Sync + 'static,
{
    if dialer {
        let (info, io) =
            multistream_select::dialer_select_proto(io, up.protocol_info(), Version::V1Lazy)
                .await
                .map_err(io::Error::other)?;
        up.upgrade_outbound(io, info)
            .await
            .map_err(io::Error::other)
    } else {
        let (info, io) = multistream_select::listener_select_proto(io, up.protocol_info())
            .await
            .map_err(io::Error::other)?;
        up.upgrade_inbound(io, info).await.map_err(io::Error::other)
    }
}
