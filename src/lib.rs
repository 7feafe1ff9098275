//! # libp2p-cyclon
//!
//! The Cyclon gossip membership protocol (S. Voulgaris, D. Gavidia, M. van Steen, *CYCLON:
//! Inexpensive Membership Management for Unstructured P2P Overlays*, J. Network Syst. Manage.
//! 13(2), 2005) as a libp2p [`NetworkBehaviour`](libp2p_swarm::NetworkBehaviour).
//!
//! Each peer keeps a small *partial view* of the network: at most `c` entries of peer id,
//! addresses and age. Every interval it ages its view, picks the **oldest** neighbour and
//! swaps up to `l` entries with it, sending itself with age 0. The overlay this builds is
//! random-like (short paths, low clustering, narrow in-degree), heals itself after massive
//! failures (dead peers are the oldest entries, get contacted, and are dropped) and costs one
//! small message exchange per peer per interval.
//!
//! The protocol rules live in a sans-IO core, [`PartialView`] (no IO, no clock, the random
//! number generator passed in); [`Behaviour`] is a thin adapter that runs it over
//! `/cyclon/1.0.0` streams. Addresses learned from the view are reported to the swarm with
//! [`ToSwarm::NewExternalAddrOfPeer`](libp2p_swarm::ToSwarm::NewExternalAddrOfPeer) and
//! answered from `handle_pending_outbound_connection`, so other behaviours (gossipsub, kad,
//! request-response) can dial the peers Cyclon discovers.
//!
//! # Example
//!
//! Compose the behaviour into a swarm, bootstrap it with one known peer, and watch the view
//! change:
//!
//! ```
//! use std::time::Duration;
//!
//! use libp2p::{Multiaddr, PeerId, noise, ping, swarm::NetworkBehaviour, tcp, yamux};
//! use libp2p_cyclon as cyclon;
//!
//! #[derive(NetworkBehaviour)]
//! struct MyBehaviour {
//!     cyclon: cyclon::Behaviour,
//!     ping: ping::Behaviour,
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut swarm = libp2p::SwarmBuilder::with_new_identity()
//!     .with_tokio()
//!     .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)?
//!     .with_behaviour(|key| MyBehaviour {
//!         cyclon: cyclon::Behaviour::new(
//!             key.public().to_peer_id(),
//!             cyclon::Config::default()
//!                 .with_view_size(20)
//!                 .with_shuffle_length(5)
//!                 .with_shuffle_interval(Duration::from_secs(10)),
//!         ),
//!         ping: ping::Behaviour::default(),
//!     })?
//!     .build();
//! swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
//!
//! // Bootstrap: one peer we know of (in real use, from configuration).
//! let bootstrap = PeerId::random();
//! let address: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse()?;
//! swarm.behaviour_mut().cyclon.add_address(&bootstrap, address);
//! assert_eq!(swarm.behaviour().cyclon.view().count(), 1);
//!
//! // Then drive the swarm and react to view changes:
//! // match swarm.select_next_some().await {
//! //     SwarmEvent::Behaviour(MyBehaviourEvent::Cyclon(cyclon::Event::PeerAdded { peer_id, .. })) => {}
//! //     _ => {}
//! // }
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `sim`: the cycle-driven simulator engine (module `sim`), which drives the same core over
//!   hundreds of thousands of nodes.
//! - `metrics`: Prometheus metrics (module `metrics`, `Behaviour::enable_metrics`).

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod behaviour;
mod config;
mod handler;
#[cfg(feature = "metrics")]
pub mod metrics;
mod protocol;
mod rate_limit;
/// The cycle-driven simulator: N nodes running the sans-IO core in cycles, the paper's metrics
/// beside a random reference graph, failures, churn and the robustness experiment.
#[cfg(feature = "sim")]
pub mod sim;
pub mod view;

pub use behaviour::{
    AddAddressResult, Behaviour, Event, RemovalReason, ShuffleError, ShuffleFailures, Stats,
};
pub use config::{
    Config, ConfigError, DEFAULT_INBOUND_BURST, DEFAULT_MAX_ADDRESSES_PER_ENTRY,
    DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_MAX_INBOUND_STREAMS_PER_CONNECTION,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SHUFFLE_INTERVAL, InboundRateLimit,
    MIN_MESSAGE_SIZE,
};
pub use handler::Handler;
pub use protocol::{InvalidEntries, PROTOCOL_NAME, proto};
pub use view::{Entry, IgnoredEntries, PartialView, ShuffleId, ShuffleMode, ShuffleParams};

/// Entry points for the fuzz targets under `fuzz/`. Not part of the public API.
#[doc(hidden)]
pub mod fuzzing {
    use std::io;

    use crate::{
        Config, InvalidEntries, ViewEntry,
        protocol::{self, EntryLimits},
    };

    /// Reads one shuffle request from `bytes` exactly as an inbound stream is read (framing,
    /// size limit, message type), then validates its entries with `config`'s limits.
    pub fn read_request(
        bytes: &[u8],
        config: &Config,
    ) -> io::Result<(Vec<ViewEntry>, InvalidEntries)> {
        let (_, entries) = futures::executor::block_on(protocol::read_request(
            futures::io::Cursor::new(bytes.to_vec()),
            config.max_message_size(),
        ))?;
        let limits = EntryLimits {
            max_entries: config.shuffle_length(),
            max_addresses: config.max_addresses_per_entry(),
            max_age: config.shuffle_params().max_age,
        };
        Ok(protocol::decode_entries(entries, &limits))
    }
}

/// The README's Rust snippets, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// An entry of the [`Behaviour`]'s view: a peer, its addresses and the entry's age.
pub type ViewEntry = view::Entry<libp2p_identity::PeerId, Vec<libp2p_core::Multiaddr>>;

impl<A> view::Entry<libp2p_identity::PeerId, A> {
    /// The peer this entry points to.
    pub fn peer_id(&self) -> &libp2p_identity::PeerId {
        self.id()
    }
}
