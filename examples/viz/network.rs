//! The peers behind the visualisation: real libp2p swarms (TCP on 127.0.0.1, noise, yamux),
//! one tokio task each, all in one process, plus the shared picture of their views that the
//! HTTP layer turns into JSON.
//!
//! Shuffle timing is the behaviours' own: the page pauses, resumes and changes the interval of
//! a running network with [`cyclon::Behaviour::pause`], [`cyclon::Behaviour::resume`] and
//! [`cyclon::Behaviour::set_shuffle_interval`].

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, Swarm, noise, swarm::SwarmEvent, tcp, yamux};
use libp2p_cyclon::{self as cyclon, sim::graph::Graph as OverlayGraph};
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
    time::Instant,
};

/// The shortest shuffle interval the network accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// The longest shuffle interval the network accepts.
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// Shuffles per second are counted over this window.
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// How long a peer's task may take to answer a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// How the initial peers learn about each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bootstrap {
    /// Peer i knows only peer i + 1 (mod N).
    Ring,
    /// Every peer knows only the first one.
    Seed,
}

/// What the network starts with.
#[derive(Debug, Clone)]
pub struct Options {
    /// Initial number of peers.
    pub peers: usize,
    /// View size c.
    pub view_size: usize,
    /// Shuffle length l.
    pub shuffle_length: usize,
    /// Shuffle interval.
    pub interval: Duration,
    /// Timeout of one shuffle exchange.
    pub request_timeout: Duration,
    /// Enhanced (Cyclon) or basic shuffling.
    pub mode: cyclon::ShuffleMode,
    /// Initial overlay.
    pub bootstrap: Bootstrap,
    /// Whether periodic shuffling starts paused.
    pub paused: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            peers: 12,
            view_size: 8,
            shuffle_length: 4,
            interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            mode: cyclon::ShuffleMode::Enhanced,
            bootstrap: Bootstrap::Ring,
            paused: false,
        }
    }
}

impl Options {
    /// The configuration every peer's behaviour gets, or why the options are unusable.
    pub fn cyclon_config(&self) -> Result<cyclon::Config, NetError> {
        check_interval(self.interval)?;
        // The default inbound rate limit follows the interval, also when the page changes it.
        let config = cyclon::Config::default()
            .with_view_size(self.view_size)
            .with_shuffle_length(self.shuffle_length)
            .with_shuffle_mode(self.mode)
            .with_shuffle_interval(self.interval)
            .with_request_timeout(self.request_timeout);
        config
            .validate()
            .map_err(|e| NetError::InvalidOptions(e.to_string()))?;
        Ok(config)
    }
}

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

fn check_interval(interval: Duration) -> Result<(), NetError> {
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(NetError::InvalidOptions(format!(
            "the shuffle interval must be between {} ms and {} ms",
            MIN_INTERVAL.as_millis(),
            MAX_INTERVAL.as_millis()
        )));
    }
    Ok(())
}

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

type CyclonSwarm = Swarm<cyclon::Behaviour>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    started: u64,
    completed: u64,
    failed: u64,
    answered: u64,
}

impl Counters {
    fn of(behaviour: &cyclon::Behaviour) -> Self {
        let stats = behaviour.stats();
        let in_flight = behaviour.shuffles_in_flight() as u64;
        Self {
            started: stats.shuffles_started,
            completed: stats.shuffles_completed,
            // Every started shuffle is in flight, completed or failed.
            failed: stats
                .shuffles_started
                .saturating_sub(stats.shuffles_completed + in_flight),
            answered: stats.inbound_answered,
        }
    }
}

enum Command {
    Shuffle(oneshot::Sender<Result<cyclon::ShuffleId, cyclon::StartShuffleError>>),
    Schedule {
        schedule: Schedule,
        done: oneshot::Sender<()>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Schedule {
    paused: bool,
    interval: Duration,
}

impl Schedule {
    /// Applies the schedule to a peer's behaviour. After a change, the behaviour's next
    /// shuffle comes after a random share of the interval, so that the peers do not shuffle
    /// in lockstep.
    fn apply(&self, behaviour: &mut cyclon::Behaviour) {
        if behaviour.config().shuffle_interval() != self.interval
            && let Err(error) = behaviour.set_shuffle_interval(self.interval)
        {
            tracing::warn!(%error, "interval not applied"); // Checked by `check_interval`.
        }
        if self.paused {
            behaviour.pause();
        } else {
            behaviour.resume();
        }
    }
}

struct PeerRecord {
    id: PeerId,
    label: String,
    address: Multiaddr,
    alive: bool,
    paused: bool,
    /// The view as (peer, age), sorted by peer.
    view: Vec<(PeerId, u32)>,
    counters: Counters,
    commands: Option<mpsc::UnboundedSender<Command>>,
    task: Option<JoinHandle<()>>,
}

struct State {
    peers: Vec<PeerRecord>,
    index: HashMap<PeerId, usize>,
    schedule: Schedule,
    completions: VecDeque<(Instant, u64)>,
    completed_total: u64,
}

struct Inner {
    state: Mutex<State>,
    version: watch::Sender<u64>,
    config: cyclon::Config,
    started: Instant,
}

/// A running network of Cyclon peers. Cheap to clone; every clone drives the same peers.
#[derive(Clone)]
pub struct Network {
    inner: Arc<Inner>,
}

impl Network {
    /// Starts `options.peers` swarms listening on 127.0.0.1, bootstrapped as
    /// `options.bootstrap` says.
    pub async fn start(options: Options) -> Result<Self, NetError> {
        let config = options.cyclon_config()?;
        let network = Network {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    peers: Vec::new(),
                    index: HashMap::new(),
                    schedule: Schedule {
                        paused: options.paused,
                        interval: options.interval,
                    },
                    completions: VecDeque::new(),
                    completed_total: 0,
                }),
                version: watch::Sender::new(0),
                config,
                started: Instant::now(),
            }),
        };
        let mut swarms = Vec::with_capacity(options.peers);
        for _ in 0..options.peers {
            swarms.push(network.new_swarm().await?);
        }
        let contacts: Vec<(PeerId, Multiaddr)> = swarms
            .iter()
            .map(|(swarm, address)| (*swarm.local_peer_id(), address.clone()))
            .collect();
        let n = swarms.len();
        for (i, (swarm, _)) in swarms.iter_mut().enumerate() {
            let contact = match options.bootstrap {
                Bootstrap::Ring if n > 1 => Some(&contacts[(i + 1) % n]),
                Bootstrap::Seed if i > 0 => Some(&contacts[0]),
                _ => None,
            };
            if let Some((peer, address)) = contact {
                swarm.behaviour_mut().add_address(peer, address.clone());
            }
        }
        for (swarm, address) in swarms {
            network.spawn_peer(swarm, address);
        }
        Ok(network)
    }

    /// A receiver that sees a new value whenever the overlay or the settings change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.version.subscribe()
    }

    /// The current network settings.
    pub fn settings(&self) -> Settings {
        let state = self.inner.lock();
        self.inner.settings(&state)
    }

    /// Adds a peer that knows one random live peer (or nobody, if none is alive).
    pub async fn add_peer(&self) -> Result<Node, NetError> {
        let (mut swarm, address) = self.new_swarm().await?;
        let contact = {
            let state = self.inner.lock();
            let alive: Vec<&PeerRecord> = state.peers.iter().filter(|p| p.alive).collect();
            (!alive.is_empty()).then(|| {
                let peer = alive[rand::random_range(0..alive.len())];
                (peer.id, peer.address.clone())
            })
        };
        if let Some((peer, contact_address)) = contact {
            swarm.behaviour_mut().add_address(&peer, contact_address);
        }
        let id = self.spawn_peer(swarm, address);
        self.graph()
            .nodes
            .into_iter()
            .find(|n| n.id == id.to_base58())
            .ok_or(NetError::UnknownPeer)
    }

    /// Kills a peer: its swarm is dropped (listener and connections closed) before this
    /// returns. Live views keep pointing to it until Cyclon purges those dead links.
    pub async fn kill_peer(&self, id: &PeerId) -> Result<(), NetError> {
        let task = {
            let mut state = self.inner.lock();
            let record = state.record_mut(id)?;
            record.alive = false;
            record.view.clear();
            record.commands = None; // The task stops when its command channel closes.
            record.task.take()
        };
        self.inner.changed();
        if let Some(task) = task {
            tokio::time::timeout(COMMAND_TIMEOUT, task)
                .await
                .map_err(|_| NetError::Swarm("the peer did not stop in time".into()))?
                .map_err(|e| NetError::Swarm(e.to_string()))?;
        }
        Ok(())
    }

    /// Makes a peer start a shuffle now.
    pub async fn shuffle_peer(&self, id: &PeerId) -> Result<ShuffleStarted, NetError> {
        let commands = self.inner.lock().record_mut(id)?.commands.clone();
        let commands = commands.ok_or(NetError::PeerDead)?;
        let (reply, answer) = oneshot::channel();
        commands
            .send(Command::Shuffle(reply))
            .map_err(|_| NetError::PeerDead)?;
        match tokio::time::timeout(COMMAND_TIMEOUT, answer).await {
            Ok(Ok(Ok(shuffle))) => Ok(ShuffleStarted {
                peer: id.to_base58(),
                shuffle_id: shuffle.get(),
            }),
            Ok(Ok(Err(cyclon::StartShuffleError::EmptyView))) => Err(NetError::EmptyView),
            Ok(Ok(Err(error))) => Err(NetError::Swarm(error.to_string())),
            Ok(Err(_)) => Err(NetError::PeerDead),
            Err(_) => Err(NetError::Swarm("the peer did not answer in time".into())),
        }
    }

    /// Pauses, resumes or changes the interval of every peer; returns once every live peer
    /// applied the change.
    pub async fn update_settings(&self, update: SettingsUpdate) -> Result<Settings, NetError> {
        let interval = update.interval_ms.map(Duration::from_millis);
        if let Some(interval) = interval {
            check_interval(interval)?;
        }
        let (schedule, peers) = {
            let mut state = self.inner.lock();
            if let Some(paused) = update.paused {
                state.schedule.paused = paused;
            }
            if let Some(interval) = interval {
                state.schedule.interval = interval;
            }
            let peers: Vec<_> = state
                .peers
                .iter()
                .filter_map(|p| p.commands.clone())
                .collect();
            (state.schedule, peers)
        };
        let mut acks = Vec::with_capacity(peers.len());
        for commands in peers {
            let (done, ack) = oneshot::channel();
            // A peer killed meanwhile has nothing to apply.
            if commands.send(Command::Schedule { schedule, done }).is_ok() {
                acks.push(ack);
            }
        }
        tokio::time::timeout(COMMAND_TIMEOUT, futures::future::join_all(acks))
            .await
            .map_err(|_| NetError::Swarm("the peers did not apply the settings in time".into()))?;
        self.inner.changed();
        Ok(self.settings())
    }

    /// The overlay as the views are now.
    pub fn graph(&self) -> Graph {
        let mut state = self.inner.lock();
        let now = Instant::now();
        while state
            .completions
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            state.completions.pop_front();
        }
        let window = now.duration_since(self.inner.started).clamp(
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
            settings: self.inner.settings(&state),
            nodes,
            edges,
        }
    }

    /// Builds a swarm and waits until it listens on 127.0.0.1.
    async fn new_swarm(&self) -> Result<(CyclonSwarm, Multiaddr), NetError> {
        let config = self.inner.config.clone();
        let swarm_error = |e: &dyn fmt::Display| NetError::Swarm(e.to_string());
        let mut swarm = libp2p::SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| swarm_error(&e))?
            .with_behaviour(|key| {
                let mut behaviour = cyclon::Behaviour::new(key.public().to_peer_id(), config);
                behaviour.pause(); // Until `run_peer` applies the network's schedule.
                behaviour
            })
            .map_err(|e| swarm_error(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(5)))
            .build();
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().expect("a valid multiaddr");
        swarm.listen_on(listen).map_err(|e| swarm_error(&e))?;
        let address = tokio::time::timeout(COMMAND_TIMEOUT, async {
            loop {
                if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                    return address;
                }
            }
        })
        .await
        .map_err(|_| NetError::Swarm("no listen address in time".into()))?;
        Ok((swarm, address))
    }

    /// Registers a listening swarm and starts its task.
    fn spawn_peer(&self, swarm: CyclonSwarm, address: Multiaddr) -> PeerId {
        let id = *swarm.local_peer_id();
        let (commands, receiver) = mpsc::unbounded_channel();
        let mut state = self.inner.lock();
        let schedule = state.schedule;
        let label = format!("p{}", state.peers.len());
        let position = state.peers.len();
        state.index.insert(id, position);
        state.peers.push(PeerRecord {
            id,
            label,
            address,
            alive: true,
            paused: schedule.paused,
            view: view_of(&swarm),
            counters: Counters::default(),
            commands: Some(commands),
            task: None,
        });
        let task = tokio::spawn(run_peer(swarm, receiver, self.inner.clone(), schedule));
        state.peers[position].task = Some(task);
        drop(state);
        self.inner.changed();
        id
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters for a picture of it, so a poisoned lock is used as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    fn settings(&self, state: &State) -> Settings {
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

    /// Records the peer's current view, counters and schedule; tells subscribers if anything
    /// changed.
    fn publish(&self, swarm: &CyclonSwarm, schedule: &Schedule) {
        let view = view_of(swarm);
        let counters = Counters::of(swarm.behaviour());
        let mut state = self.lock();
        let Some(&position) = state.index.get(swarm.local_peer_id()) else {
            return;
        };
        let record = &mut state.peers[position];
        if !record.alive {
            return; // Killed meanwhile: its last words do not count.
        }
        if record.view == view && record.counters == counters && record.paused == schedule.paused {
            return;
        }
        let new_completions = counters.completed.saturating_sub(record.counters.completed);
        record.view = view;
        record.counters = counters;
        record.paused = schedule.paused;
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
    fn record_mut(&mut self, id: &PeerId) -> Result<&mut PeerRecord, NetError> {
        let position = *self.index.get(id).ok_or(NetError::UnknownPeer)?;
        let record = &mut self.peers[position];
        if !record.alive {
            return Err(NetError::PeerDead);
        }
        Ok(record)
    }
}

fn view_of(swarm: &CyclonSwarm) -> Vec<(PeerId, u32)> {
    let mut view: Vec<(PeerId, u32)> = swarm
        .behaviour()
        .view()
        .map(|e| (*e.peer_id(), e.age()))
        .collect();
    view.sort_unstable();
    view
}

/// One peer: drives its swarm and answers commands until the command channel closes (the
/// peer was killed), then drops the swarm.
async fn run_peer(
    mut swarm: CyclonSwarm,
    mut commands: mpsc::UnboundedReceiver<Command>,
    inner: Arc<Inner>,
    mut schedule: Schedule,
) {
    schedule.apply(swarm.behaviour_mut());
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(Command::Shuffle(reply)) => {
                    let result = swarm.behaviour_mut().shuffle_now();
                    inner.publish(&swarm, &schedule);
                    let _ = reply.send(result);
                    continue;
                }
                Some(Command::Schedule { schedule: new, done }) => {
                    schedule = new;
                    schedule.apply(swarm.behaviour_mut());
                    inner.publish(&swarm, &schedule);
                    let _ = done.send(());
                    continue;
                }
            },
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(cyclon::Event::ShuffleFailed { peer_id, error, .. }) = &event {
                    tracing::debug!(%peer_id, %error, "shuffle failed");
                }
            }
        }
        inner.publish(&swarm, &schedule);
    }
}
