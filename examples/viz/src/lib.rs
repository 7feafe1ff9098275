//! The browser visualisation of a Cyclon network of real libp2p peers on loopback: the
//! network ([`network`]), the JSON it is pictured in ([`api`]) and the HTTP server of the page
//! and API ([`server`]). The `viz` binary serves it; the tests drive it in-process.

pub mod api;
pub mod network;
mod peer;
mod registry;
pub mod server;

pub use api::{Graph, NetError, Node, Settings, SettingsUpdate};
pub use network::{Network, Options};
