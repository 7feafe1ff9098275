//! N swarms in one process, each on a task of its own: Cyclon or kad discovery (and, for the
//! `node` stack, identify and ping as the `node` example has them), on one of the measured
//! transports, bootstrapped from a topology; what each knows, on request; killing some.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm,
    core::upgrade::Version,
    identify, identity, kad,
    swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle},
};
use libp2p_cyclon as cyclon;
use tokio::sync::{mpsc, oneshot};

use crate::{meter::Meter, transport::Kind};

/// The discovery protocol the swarms run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Cyclon shuffles.
    Cyclon,
    /// kad: a `get_closest_peers` for a random key every interval, periodic bootstrap on.
    Kad,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Cyclon => "cyclon",
            Protocol::Kad => "kad",
        })
    }
}

/// The behaviours beside the discovery protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    /// The discovery protocol alone.
    Alone,
    /// With identify and ping, as the `node` example runs Cyclon.
    Node,
}

/// How multistream-select negotiates the substreams a swarm opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Negotiation {
    /// libp2p's default: wait for the listener's confirmation before writing.
    V1,
    /// Write the request right behind the proposal (one round trip less).
    V1Lazy,
}

/// Settings shared by every swarm of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub transport: Kind,
    pub protocol: Protocol,
    pub stack: Stack,
    pub cyclon: cyclon::Config,
    /// SecureCyclon (`/cyclon/2.0.0`) instead of plain Cyclon (`--defence secure`).
    pub secure: Option<cyclon::secure::Config>,
    /// Plain Cyclon signs its own entry (`/cyclon/1.1.0` entries carry signed peer records).
    pub sign_records: bool,
    pub interval: Duration,
    pub idle_timeout: Duration,
    pub negotiation: Negotiation,
}

#[derive(NetworkBehaviour)]
struct Node {
    cyclon: Toggle<cyclon::Behaviour>,
    secure: Toggle<cyclon::secure::Behaviour>,
    kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    identify: Toggle<identify::Behaviour>,
    ping: Toggle<libp2p::ping::Behaviour>,
}

/// What a swarm task is asked.
enum Command {
    /// The peers it knows (Cyclon's view or kad's routing table) and its open connections.
    Known(oneshot::Sender<Known>),
    /// A bootstrap contact.
    Introduce(PeerId, Multiaddr),
    /// Dial an address (to measure what a connection costs).
    Dial(Multiaddr),
}

/// What one swarm knows.
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub peers: Vec<PeerId>,
    pub connections: usize,
}

/// A running swarm: its identity, address, counters and the way to ask or stop it.
pub struct Handle {
    pub peer_id: PeerId,
    pub address: Multiaddr,
    pub meter: Arc<Meter>,
    commands: Option<mpsc::Sender<Command>>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops the swarm at once (its connections drop, as if the process died).
    pub fn kill(&mut self) {
        self.commands = None;
        self.task.abort();
    }

    pub async fn known(&self) -> Option<Known> {
        let commands = self.commands.as_ref()?;
        let (tx, rx) = oneshot::channel();
        commands.send(Command::Known(tx)).await.ok()?;
        rx.await.ok()
    }
}

fn behaviour(key: &identity::Keypair, settings: &Settings) -> Node {
    let peer_id = key.public().to_peer_id();
    let secure = settings
        .secure
        .clone()
        .filter(|_| settings.protocol == Protocol::Cyclon)
        .map(|config| cyclon::secure::Behaviour::new(key.clone(), config));
    let cyclon = (settings.protocol == Protocol::Cyclon && secure.is_none()).then(|| {
        if settings.sign_records {
            cyclon::Behaviour::with_keypair(key.clone(), settings.cyclon.clone())
        } else {
            cyclon::Behaviour::new(peer_id, settings.cyclon.clone())
        }
    });
    let kad = (settings.protocol == Protocol::Kad).then(|| {
        let mut config = kad::Config::new(StreamProtocol::new("/ipfs/kad/1.0.0"));
        config.set_query_timeout(settings.cyclon.request_timeout() * 2);
        let mut kad =
            kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), config);
        // Without identify nothing confirms an external address: serve requests anyway.
        kad.set_mode(Some(kad::Mode::Server));
        kad
    });
    let node = settings.stack == Stack::Node;
    // kad learns a peer's listen addresses from identify (as rust-libp2p's kad examples do):
    // without it, a node that dials in never enters the routing table of the node it reached.
    let identify = node || settings.protocol == Protocol::Kad;
    Node {
        cyclon: cyclon.into(),
        secure: secure.into(),
        kad: kad.into(),
        identify: identify
            .then(|| {
                identify::Behaviour::new(identify::Config::new(
                    "/libp2p-cyclon/0.1.0".to_string(),
                    key.public(),
                ))
            })
            .into(),
        ping: node.then(libp2p::ping::Behaviour::default).into(),
    }
}

fn new_swarm(settings: &Settings, meter: &Arc<Meter>) -> Swarm<Node> {
    let key = identity::Keypair::generate_ed25519();
    let transport = settings.transport.build(&key, Arc::clone(meter));
    let mut config = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(settings.idle_timeout);
    if settings.negotiation == Negotiation::V1Lazy {
        config = config.with_substream_upgrade_protocol_override(Version::V1Lazy);
    }
    Swarm::new(
        transport,
        behaviour(&key, settings),
        key.public().to_peer_id(),
        config,
    )
}

/// Starts a swarm listening on the transport's address; returns once it listens.
pub async fn start(settings: &Settings) -> Result<Handle, Box<dyn std::error::Error>> {
    let meter = Arc::new(Meter::default());
    let mut swarm = new_swarm(settings, &meter);
    swarm.listen_on(settings.transport.listen_address())?;
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let peer_id = *swarm.local_peer_id();
    let (tx, rx) = mpsc::channel(4);
    let walk = (settings.protocol == Protocol::Kad).then_some(settings.interval);
    let task = tokio::spawn(drive(swarm, Arc::clone(&meter), rx, walk));
    Ok(Handle {
        peer_id,
        address,
        meter,
        commands: Some(tx),
        task,
    })
}

/// Tells a swarm about `peer` at `address` (its bootstrap contacts), before it runs.
pub async fn introduce(handle: &Handle, peer: PeerId, address: Multiaddr) {
    if let Some(commands) = &handle.commands {
        let _ = commands.send(Command::Introduce(peer, address)).await;
    }
}

/// Makes a swarm dial `address`.
pub async fn dial(handle: &Handle, address: Multiaddr) {
    if let Some(commands) = &handle.commands {
        let _ = commands.send(Command::Dial(address)).await;
    }
}

async fn drive(
    mut swarm: Swarm<Node>,
    meter: Arc<Meter>,
    mut commands: mpsc::Receiver<Command>,
    walk: Option<Duration>,
) {
    // kad's random walk: the first after a random share of the interval, so that the nodes do
    // not walk in lock-step (as Cyclon's first shuffle).
    let period = walk.unwrap_or(Duration::from_secs(3600));
    let start = tokio::time::Instant::now() + period.mul_f64(rand::random::<f64>());
    let mut walks = tokio::time::interval_at(start, period);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => return,
                Some(Command::Known(reply)) => {
                    let _ = reply.send(known(&mut swarm));
                }
                Some(Command::Introduce(peer, address)) => introduce_now(&mut swarm, peer, address),
                Some(Command::Dial(address)) => {
                    let _ = swarm.dial(address);
                }
            },
            event = swarm.select_next_some() => {
                learn_kad_addresses(&mut swarm, &event);
                record(&meter, event);
            }
            _ = walks.tick(), if walk.is_some() => {
                if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
                    kad.get_closest_peers(PeerId::random());
                }
            }
        }
    }
}

/// Gives kad the listen addresses identify reported, for peers that speak kad.
fn learn_kad_addresses(swarm: &mut Swarm<Node>, event: &SwarmEvent<NodeEvent>) {
    let SwarmEvent::Behaviour(NodeEvent::Identify(identify::Event::Received {
        peer_id, info, ..
    })) = event
    else {
        return;
    };
    let Some(kad) = swarm.behaviour_mut().kad.as_mut() else {
        return;
    };
    if info
        .protocols
        .iter()
        .any(|p| p.as_ref().starts_with("/ipfs/kad/"))
    {
        for address in &info.listen_addrs {
            kad.add_address(peer_id, address.clone());
        }
    }
}

fn introduce_now(swarm: &mut Swarm<Node>, peer: PeerId, address: Multiaddr) {
    let behaviour = swarm.behaviour_mut();
    if let Some(cyclon) = behaviour.cyclon.as_mut() {
        cyclon.add_address(&peer, address.clone());
    }
    if let Some(secure) = behaviour.secure.as_mut() {
        secure.add_seed(peer, address.clone());
    }
    if let Some(kad) = behaviour.kad.as_mut() {
        kad.add_address(&peer, address);
    }
}

fn known(swarm: &mut Swarm<Node>) -> Known {
    let connections = swarm.network_info().connection_counters().num_established() as usize;
    let behaviour = swarm.behaviour_mut();
    let mut peers: Vec<PeerId> = Vec::new();
    if let Some(cyclon) = behaviour.cyclon.as_ref() {
        peers.extend(cyclon.view().map(|e| *e.peer_id()));
    }
    if let Some(secure) = behaviour.secure.as_ref() {
        peers.extend(secure.contacts());
    }
    if let Some(kad) = behaviour.kad.as_mut() {
        for bucket in kad.kbuckets() {
            peers.extend(bucket.iter().map(|e| *e.node.key.preimage()));
        }
    }
    Known { peers, connections }
}

fn record(meter: &Meter, event: SwarmEvent<NodeEvent>) {
    match event {
        SwarmEvent::ConnectionEstablished { endpoint, .. } => {
            if endpoint.is_dialer() {
                Meter::count(&meter.connections_out);
            } else {
                Meter::count(&meter.connections_in);
            }
        }
        SwarmEvent::Behaviour(NodeEvent::Cyclon(event)) => match event {
            cyclon::Event::ShuffleCompleted { .. } => Meter::count(&meter.shuffles_completed),
            cyclon::Event::ShuffleFailed { .. } => Meter::count(&meter.shuffles_failed),
            cyclon::Event::ShuffleAnswered { .. } => Meter::count(&meter.shuffles_answered),
            _ => {}
        },
        // A SecureCyclon exchange is counted as a shuffle.
        SwarmEvent::Behaviour(NodeEvent::Secure(event)) => match event {
            cyclon::secure::Event::ExchangeCompleted { .. } => {
                Meter::count(&meter.shuffles_completed)
            }
            cyclon::secure::Event::ExchangeFailed { .. } => Meter::count(&meter.shuffles_failed),
            cyclon::secure::Event::ExchangeAnswered { .. } => {
                Meter::count(&meter.shuffles_answered)
            }
            _ => {}
        },
        _ => {}
    }
}
