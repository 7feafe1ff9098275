//! The JSON the page and the API exchange with the network: the overlay ([`Graph`]), the
//! settings, and the errors of network operations.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a network operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// No peer has this id.
    UnknownPeer,
    /// The peer was killed.
    PeerDead,
    /// The peer's view is empty: it has nobody to shuffle with.
    EmptyView,
    /// The options or the requested settings are out of range.
    InvalidOptions(String),
    /// A swarm could not be built or did not answer.
    Swarm(String),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::UnknownPeer => write!(f, "no such peer"),
            NetError::PeerDead => write!(f, "the peer is dead"),
            NetError::EmptyView => write!(f, "the peer's view is empty: nobody to shuffle with"),
            NetError::InvalidOptions(why) => write!(f, "invalid settings: {why}"),
            NetError::Swarm(why) => write!(f, "swarm error: {why}"),
        }
    }
}

impl std::error::Error for NetError {}

/// The network-wide settings the page shows and changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Whether periodic shuffling is paused on every peer.
    pub paused: bool,
    /// Shuffle interval in milliseconds.
    pub interval_ms: u64,
    /// View size c.
    pub view_size: usize,
    /// Shuffle length l.
    pub shuffle_length: usize,
    /// `"enhanced"` or `"basic"`.
    pub mode: String,
}

/// A change of [`Settings`]; absent fields stay as they are.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize)]
pub struct SettingsUpdate {
    /// Pause (`true`) or resume (`false`) periodic shuffling on every peer.
    pub paused: Option<bool>,
    /// New shuffle interval in milliseconds.
    pub interval_ms: Option<u64>,
}

/// A peer in [`Graph`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Peer id, base58.
    pub id: String,
    /// Short name, in creation order: `p0`, `p1`, ...
    pub label: String,
    /// False once the peer was killed; dead peers are listed while live views point to them.
    pub alive: bool,
    /// The TCP address the peer listens on.
    pub address: String,
    /// Whether its periodic shuffling is paused.
    pub paused: bool,
    /// Number of entries in its view.
    pub view_len: usize,
    /// Number of live views that contain it.
    pub in_degree: usize,
    /// Shuffles it started.
    pub shuffles_started: u64,
    /// Shuffles it started that completed.
    pub shuffles_completed: u64,
    /// Shuffles it started that failed.
    pub shuffles_failed: u64,
    /// Shuffles other peers started with it that it answered.
    pub shuffles_answered: u64,
}

/// A view entry: `source` has `target` in its view, with this age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// The peer whose view holds the entry.
    pub source: String,
    /// The peer the entry points to.
    pub target: String,
    /// The entry's age, in shuffle rounds.
    pub age: u32,
    /// Whether `target` is dead (a dead link).
    pub dead: bool,
}

/// Figures of the whole overlay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Live peers.
    pub peers: usize,
    /// Dead peers that live views still point to.
    pub dead_peers: usize,
    /// View entries of live peers.
    pub edges: usize,
    /// View entries of live peers that point to dead peers.
    pub dead_links: usize,
    /// Connected components of the live overlay, links taken as undirected.
    pub components: usize,
    /// Whether the live overlay is one component.
    pub connected: bool,
    /// `in_degree_histogram[d]` live peers are in exactly `d` live views.
    pub in_degree_histogram: Vec<usize>,
    /// Completed shuffles per second, over the last few seconds.
    pub shuffles_per_second: f64,
    /// Completed shuffles since the start, all peers together.
    pub shuffles_completed: u64,
}

/// The overlay as `GET /api/graph` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// Live peers, then dead ones still pointed to, in creation order.
    pub nodes: Vec<Node>,
    /// Every view entry of every live peer.
    pub edges: Vec<Edge>,
    /// Figures of the overlay.
    pub stats: Stats,
    /// The network's settings.
    pub settings: Settings,
}

/// What `POST /api/peers/{id}/shuffle` started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShuffleStarted {
    /// The peer that shuffles.
    pub peer: String,
    /// The shuffle's id, unique for that peer.
    pub shuffle_id: u64,
}
