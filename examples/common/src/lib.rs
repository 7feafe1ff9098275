//! What the libp2p-cyclon example programs share: their common flags and the one way they all
//! handle bad ones ([`cli`]), start-up of one-peer-per-process programs ([`peer`]), logs
//! ([`logs`]), and, with the feature `testing`, helpers for their process tests ([`testing`])
//! and emulated hosts (`netns`, Linux).

pub mod cli;
pub mod logs;
#[cfg(all(feature = "testing", target_os = "linux"))]
pub mod netns;
pub mod peer;
#[cfg(feature = "testing")]
pub mod testing;
