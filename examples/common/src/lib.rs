//! What the libp2p-cyclon example programs share: their common flags and the one way they all
//! handle bad ones ([`cli`]), start-up of one-peer-per-process programs ([`peer`]), logs
//! ([`logs`]), and, with the feature `testing`, helpers for their process tests ([`testing`]).

pub mod cli;
pub mod logs;
pub mod peer;
#[cfg(feature = "testing")]
pub mod testing;
