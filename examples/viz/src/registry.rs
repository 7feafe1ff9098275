//! The registry of the network's peers: what each one last reported, its task and command
//! channel, and the picture of the whole overlay built from them ([`Graph`]).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use libp2p::{Multiaddr, PeerId};
use libp2p_cyclon::{self as cyclon, sim::graph::Graph as OverlayGraph};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use crate::{
    api::{Edge, Graph, NetError, Node, Settings, Stats},
    peer::{Board, Command, Counters, Schedule},
};

/// Shuffles per second are counted over this window.
const RATE_WINDOW: Duration = Duration::from_secs(5);

pub(crate) struct PeerRecord {
    pub(crate) id: PeerId,
    pub(crate) label: String,
    pub(crate) address: Multiaddr,
    pub(crate) alive: bool,
    pub(crate) paused: bool,
    /// The view as (peer, age), sorted by peer.
    pub(crate) view: Vec<(PeerId, u32)>,
    pub(crate) counters: Counters,
    pub(crate) commands: Option<mpsc::UnboundedSender<Command>>,
    pub(crate) task: Option<JoinHandle<()>>,
}

pub(crate) struct State {
    pub(crate) peers: Vec<PeerRecord>,
    pub(crate) index: HashMap<PeerId, usize>,
    pub(crate) schedule: Schedule,
    pub(crate) completions: VecDeque<(Instant, u64)>,
    pub(crate) completed_total: u64,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    pub(crate) version: watch::Sender<u64>,
    pub(crate) config: cyclon::Config,
    pub(crate) started: Instant,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters for a picture of it, so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub(crate) fn settings(&self, state: &State) -> Settings {
        Settings {
            paused: state.schedule.paused,
            interval_ms: state.schedule.interval.as_millis() as u64,
            view_size: self.config.view_size(),
            shuffle_length: self.config.shuffle_length(),
            mode: match self.config.shuffle_mode() {
                cyclon::ShuffleMode::Basic => "basic",
                _ => "enhanced",
            }
            .to_string(),
        }
    }
}

impl Board for Inner {
    fn publish(&self, id: PeerId, view: Vec<(PeerId, u32)>, counters: Counters, paused: bool) {
        let mut state = self.lock();
        let Some(&position) = state.index.get(&id) else {
            return;
        };
        let record = &mut state.peers[position];
        if !record.alive {
            return; // Killed meanwhile: its last words do not count.
        }
        if record.view == view && record.counters == counters && record.paused == paused {
            return;
        }
        let new_completions = counters.completed.saturating_sub(record.counters.completed);
        record.view = view;
        record.counters = counters;
        record.paused = paused;
        if new_completions > 0 {
            state
                .completions
                .push_back((Instant::now(), new_completions));
            state.completed_total += new_completions;
        }
        drop(state);
        self.changed();
    }
}

impl State {
    pub(crate) fn record_mut(&mut self, id: &PeerId) -> Result<&mut PeerRecord, NetError> {
        let position = *self.index.get(id).ok_or(NetError::UnknownPeer)?;
        let record = &mut self.peers[position];
        if !record.alive {
            return Err(NetError::PeerDead);
        }
        Ok(record)
    }
}

impl Inner {
    /// The overlay as the views are now.
    pub(crate) fn graph(&self) -> Graph {
        let mut state = self.lock();
        let now = Instant::now();
        while state
            .completions
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            state.completions.pop_front();
        }
        let window = now.duration_since(self.started).clamp(
            Duration::from_millis(500), // Do not divide by (almost) nothing right after start.
            RATE_WINDOW,
        );
        let recent: u64 = state.completions.iter().map(|(_, n)| n).sum();
        let shuffles_per_second = recent as f64 / window.as_secs_f64();

        // Live peers, numbered for the simulator's graph type, which counts the components.
        let alive: HashMap<PeerId, u32> = state
            .peers
            .iter()
            .filter(|p| p.alive)
            .zip(0..)
            .map(|(p, i)| (p.id, i))
            .collect();
        let mut edges = Vec::new();
        let mut in_degree: HashMap<PeerId, usize> = HashMap::new();
        let mut referenced_dead: HashSet<PeerId> = HashSet::new();
        let mut live_links: Vec<Vec<u32>> = vec![Vec::new(); alive.len()];
        for source in state.peers.iter().filter(|p| p.alive) {
            for (target, age) in &source.view {
                let dead = !alive.contains_key(target);
                if dead {
                    referenced_dead.insert(*target);
                } else {
                    live_links[alive[&source.id] as usize].push(alive[target]);
                }
                *in_degree.entry(*target).or_default() += 1;
                edges.push(Edge {
                    source: source.id.to_base58(),
                    target: target.to_base58(),
                    age: *age,
                    dead,
                });
            }
        }
        let nodes: Vec<Node> = state
            .peers
            .iter()
            .filter(|p| p.alive)
            .chain(
                state
                    .peers
                    .iter()
                    .filter(|p| !p.alive && referenced_dead.contains(&p.id)),
            )
            .map(|p| Node {
                id: p.id.to_base58(),
                label: p.label.clone(),
                alive: p.alive,
                address: p.address.to_string(),
                paused: p.paused,
                view_len: p.view.len(),
                in_degree: in_degree.get(&p.id).copied().unwrap_or(0),
                shuffles_started: p.counters.started,
                shuffles_completed: p.counters.completed,
                shuffles_failed: p.counters.failed,
                shuffles_answered: p.counters.answered,
            })
            .collect();

        let mut in_degree_histogram = Vec::new();
        for node in nodes.iter().filter(|n| n.alive) {
            if in_degree_histogram.len() <= node.in_degree {
                in_degree_histogram.resize(node.in_degree + 1, 0);
            }
            in_degree_histogram[node.in_degree] += 1;
        }
        let components = OverlayGraph::from_out_links(live_links)
            .undirected()
            .components()
            .count;
        let dead_links = edges.iter().filter(|e| e.dead).count();
        Graph {
            stats: Stats {
                peers: alive.len(),
                dead_peers: referenced_dead.len(),
                edges: edges.len(),
                dead_links,
                components,
                connected: components == 1,
                in_degree_histogram,
                shuffles_per_second,
                shuffles_completed: state.completed_total,
            },
            settings: self.settings(&state),
            nodes,
            edges,
        }
    }
}
