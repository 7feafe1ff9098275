//! The network of Cyclon peers behind the visualisation: real libp2p swarms (TCP on
//! 127.0.0.1, noise, yamux), one tokio task each, all in one process. [`Network`] starts them,
//! adds and kills peers, makes one shuffle, changes the schedule, and pictures the overlay.
//!
//! Shuffle timing is the behaviours' own: the page pauses, resumes and changes the interval of
//! a running network with [`cyclon::Behaviour::pause`], [`cyclon::Behaviour::resume`] and
//! [`cyclon::Behaviour::set_shuffle_interval`].

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use cyclon_examples::cli::Topology;
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, noise, swarm::SwarmEvent, tcp, yamux};
use libp2p_cyclon as cyclon;
use tokio::{
    sync::{mpsc, oneshot, watch},
    time::Instant,
};

use crate::{
    api::{Graph, NetError, Node, Settings, SettingsUpdate, ShuffleStarted},
    peer::{Command, Counters, CyclonSwarm, Schedule, run_peer, view_of},
    registry::{Inner, PeerRecord, State},
};

/// The shortest shuffle interval the network accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// The longest shuffle interval the network accepts.
pub const MAX_INTERVAL: Duration = Duration::from_secs(600);
/// How long a peer's task may take to answer a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub bootstrap: Topology,
    /// Whether periodic shuffling starts paused.
    pub paused: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            peers: 30,
            view_size: 4,
            shuffle_length: 2,
            interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(2),
            mode: cyclon::ShuffleMode::Enhanced,
            bootstrap: Topology::Ring,
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
            let known = options
                .bootstrap
                .contacts(i, n, options.view_size, |k| rand::random_range(0..k));
            for j in known {
                let (peer, address) = &contacts[j];
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
        self.inner.graph()
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
