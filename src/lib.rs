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
//! # The core decides, the adapter carries
//!
//! Every protocol rule lives in the sans-IO core, the module [`view`]: [`view::PartialView`] is
//! a deterministic state machine with no IO, no clock and the random number generator passed
//! in. It decides whom to shuffle with, what to send, what to answer and what the view
//! becomes, and reports every decision it makes ([`view::OutgoingShuffle`] with whether its
//! target left the view, [`view::CompletedShuffle`] and [`view::MergeOutcome`] with the net
//! change, [`view::FailedShuffle`] with what the failure removed). The simulator (feature
//! `sim`), the property tests and the fuzzers drive this very type.
//!
//! [`Behaviour`] carries those decisions to the swarm over `/cyclon/1.1.0` and `/cyclon/1.0.0`
//! streams (and `/cyclon/neighbour/1.0.0`, with neighbours): it owns the connections, dials, the
//! shuffle timer, deadlines and the addresses the local peer advertises, and turns the core's
//! outcomes into [`Event`]s. A dial the local swarm itself refuses (its connection limits) is
//! not held against the peer. Addresses learned from
//! the view are reported to the swarm with
//! [`ToSwarm::NewExternalAddrOfPeer`](libp2p_swarm::ToSwarm::NewExternalAddrOfPeer) and
//! answered from `handle_pending_outbound_connection`, so other behaviours (gossipsub, kad,
//! request-response) can dial the peers Cyclon discovers.
//!
//! # Signed peer records
//!
//! Over `/cyclon/1.1.0` an entry carries its peer's signed peer record (the standard libp2p
//! format, RFC 0002/0003), so the pairing of a peer id with its addresses is authentic: built
//! with [`Behaviour::with_keypair`], a node signs its own; every node verifies the records it
//! receives and forwards them unchanged. [`Event::PeerAdded`] says whether an entry's
//! addresses are verified; `/cyclon/1.0.0` peers and unsigned entries are accepted unverified
//! unless [`Config::with_require_signed_records`] says otherwise. Ages, and which peers a node
//! chooses to send, stay unauthenticated. Details and costs: `docs/protocol.md`.
//!
//! # Opt-in rules
//!
//! Off by default, so that the crate runs the paper's protocol: the rejoin rule
//! ([`Config::with_rejoin`], partitions and lost contacts; `docs/faults.md`) and the eclipse
//! defence ([`Config::with_defence`] with [`Defence::Seeded`]: view slots that keep the peer
//! ranking lowest under a private seed, so that flooding views with repeated entries buys a
//! coalition nothing beyond its number of identities; `docs/defence.md`).
//!
//! For trust at 10-20 % attackers, SecureCyclon ([`secure`]): descriptors signed by the peer
//! they name and transferred, never copied, over `/cyclon/2.0.0`. It is a behaviour of its own,
//! [`secure::Behaviour`], over its own sans-IO core, [`secure::SecureView`].
//!
//! # Beside the rest of a swarm
//!
//! Also opt-in (`docs/production.md`): which addresses travel
//! ([`Config::with_address_scope`]), a separate overlay per application
//! ([`Config::with_protocol_prefix`]), and a small, stable set of connected neighbours drawn
//! from the view for a broadcast layer to mesh over ([`Config::with_neighbours`],
//! [`Config::with_close_shuffle_connections`]); [`Behaviour::sample`] draws peers of the view
//! at random.
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
//!         // With the identity key, the peer signs its own entry (a signed peer record).
//!         cyclon: cyclon::Behaviour::with_keypair(
//!             key.clone(),
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
//! - `metrics`: Prometheus metrics (`Behaviour::enable_metrics`, see [below](#metrics)).
//!
//! # Metrics
//!
//! With the feature `metrics`, `Behaviour::enable_metrics` registers these in a
//! `prometheus-client` registry (the one `libp2p-metrics` uses, so one registry serves both).
//! Counters are recorded where each event happens, from the moment metrics are enabled; the
//! gauges are sampled every time the swarm polls the behaviour. Labels are types, so a family
//! carries only the values listed here.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `cyclon_shuffles_started_total` | counter | |
//! | `cyclon_probes_started_total` | counter | |
//! | `cyclon_shuffles_completed_total` | counter | |
//! | `cyclon_rounds_without_reachable_peer_total` | counter | |
//! | `cyclon_shuffles_failed_total` | counter | `reason`: `dial`, `refused_locally`, `unsupported_protocol`, `timeout`, `connection_closed`, `io` |
//! | `cyclon_inbound_answered_total` | counter | |
//! | `cyclon_inbound_refused_total` | counter | `reason`: `capacity`, `rate_limit` |
//! | `cyclon_inbound_failed_total` | counter | |
//! | `cyclon_exchanges_total` | counter | `protocol`: `/cyclon/1.0.0`, `/cyclon/1.1.0` (messages received) |
//! | `cyclon_entries_invalid_total` | counter | `reason` (dropped by validation, [`InvalidEntries`]): `excess`, `invalid_peer_id`, `no_address`, `out_of_scope`, `unsigned`, `record_too_large`, `record_malformed`, `record_bad_signature`, `record_wrong_peer` |
//! | `cyclon_entries_ignored_total` | counter | `reason` (valid, not taken by the rules, [`IgnoredEntries`]): `excess`, `local`, `duplicate`, `no_room`, `dead`, `over_budget` (the last two under a defence) |
//! | `cyclon_addresses_dropped_total` | counter | `reason`: `invalid`, `foreign_peer`, `excess`, `out_of_scope` |
//! | `cyclon_view_size` | gauge | |
//! | `cyclon_view_mean_age` | gauge | |
//! | `cyclon_shuffles_in_flight` | gauge | |
//! | `cyclon_neighbours` | gauge | |

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod address_scope;
mod behaviour;
mod config;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod handler;
mod local_peer;
#[cfg(feature = "metrics")]
mod metrics;
mod neighbours;
mod outbound;
mod protocol;
mod rate_limit;
mod record;
pub mod secure;
#[cfg(feature = "sim")]
pub mod sim;
mod snapshot;
mod stats;
mod upgrade;
pub mod view;

pub use address_scope::AddressScope;
pub use behaviour::{AddAddressResult, Behaviour, Event, RemovalReason};
pub use config::{Config, ConfigError, InboundRateLimit};
pub use handler::ShuffleError;
pub use protocol::{InvalidEntries, PROTOCOL_NAME, PROTOCOL_NAME_V1_1, ViewEntry};
pub use record::{PeerAddresses, RecordError, SignedPeerRecord};
pub use snapshot::{ImportedView, SnapshotError};
pub use stats::{ShuffleFailures, Stats};
pub use view::{
    AnchoredParams, Defence, IgnoredEntries, Rejoin, SeededParams, ShuffleId, ShuffleMode,
    StartShuffleError,
};

/// The README's Rust snippets, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
