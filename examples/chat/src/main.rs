//! A terminal chat whose peers find each other through Cyclon alone (no mDNS, no DHT).
//!
//! rust-libp2p's chat example, with peer discovery replaced by Cyclon: start one peer, point
//! the next ones at any peer already running, and type. Lines typed on stdin are published
//! over gossipsub; messages received print as `<peer>: <text>`.
//!
//! ```sh
//! # terminal 1
//! cargo run --release --bin chat -- --secret-key-seed 1 --listen /ip4/127.0.0.1/tcp/4001
//! # terminal 2: knows only the first peer
//! cargo run --release --bin chat -- --secret-key-seed 2 --listen /ip4/127.0.0.1/tcp/4002 \
//!     --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X
//! # terminal 3: knows only the second peer, and still chats with the first
//! cargo run --release --bin chat -- --secret-key-seed 3 --listen /ip4/127.0.0.1/tcp/4003 \
//!     --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3
//! ```
//!
//! How it works: every peer runs Cyclon, and keeps open connections to a few neighbours Cyclon
//! draws from its view (`--neighbours D`, 4 by default: symmetric links, replaced only when
//! they close or their peer is found dead), so a small, stable, random set of connections,
//! and with them the gossipsub mesh, forms among peers that were never told about each other.
//! With `--neighbours 0` the chat instead dials every peer that enters the view: more
//! connections, and they churn with the view.
//! `--max-connections N` caps the established connections (libp2p's `connection_limits`).
//! A peer prints as `* <peer> joined` once it is connected and subscribed to the chat topic,
//! and as `* <peer> left` when it unsubscribes or its last connection closes. The raw view
//! changes are logged at debug level: `RUST_LOG=chat=debug`.

use std::{collections::HashSet, io::BufRead, process::ExitCode, time::Duration};

use clap::Parser;
use cyclon_examples::{
    cli::{self, BootstrapPeer, CyclonFlags, PeerFlags, RejoinFlags},
    peer,
};
use futures::StreamExt;
use libp2p::{
    PeerId, Swarm,
    connection_limits::{self, ConnectionLimits},
    gossipsub, identify, identity, noise,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use libp2p_cyclon as cyclon;

#[derive(Parser, Debug)]
#[command(
    name = "chat",
    about = "Chat over gossipsub with peers found through Cyclon (no mDNS)",
    after_help = "Type a line and press Enter to send it. Ctrl-D or Ctrl-C quits.\n\
                  Logs (stderr): level from RUST_LOG, e.g. RUST_LOG=chat=debug shows the Cyclon \
                  view changes.",
    // Short, so that peers find each other quickly.
    mut_arg("interval_ms", |a| a.default_value("1000")),
    mut_arg("request_timeout_ms", |a| a.default_value("5000")),
    mut_arg("neighbours", |a| a.default_value("4"))
)]
struct Args {
    #[command(flatten)]
    peer: PeerFlags,
    /// The gossipsub topic to chat on.
    #[arg(long, default_value = "cyclon-chat")]
    topic: String,
    #[command(flatten)]
    cyclon: CyclonFlags,
    #[command(flatten)]
    rejoin: RejoinFlags,
    /// At most N established connections (libp2p's connection_limits); further ones are
    /// refused, and Cyclon does not hold that against the peers it could not reach.
    #[arg(long, value_name = "N")]
    max_connections: Option<u32>,
    /// How long a connection no protocol needs stays open, in milliseconds [default: 2 shuffle
    /// intervals with neighbours, 60 s with --neighbours 0].
    #[arg(long, value_name = "MS")]
    idle_timeout_ms: Option<u64>,
}

#[derive(NetworkBehaviour)]
struct ChatBehaviour {
    limits: connection_limits::Behaviour,
    cyclon: cyclon::Behaviour,
    gossipsub: gossipsub::Behaviour,
    identify: identify::Behaviour,
}

fn cyclon_config(args: &Args) -> cyclon::Config {
    // With neighbours, gossipsub's mesh must form over them: the connections Cyclon dials for
    // shuffles close once used (gossipsub's streams would keep every one of them open).
    let config = args
        .cyclon
        .config()
        .with_close_shuffle_connections(args.cyclon.neighbours > 0);
    match args.rejoin.rule(args.cyclon.shuffle.view_size) {
        Some(rule) => config.with_rejoin(rule),
        None => config,
    }
}

fn build_swarm(
    key: identity::Keypair,
    config: cyclon::Config,
    args: &Args,
) -> Result<Swarm<ChatBehaviour>, Box<dyn std::error::Error>> {
    let idle_timeout = match (args.idle_timeout_ms, config.neighbours()) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, 0) => Duration::from_secs(60),
        (None, _) => 2 * config.shuffle_interval(),
    };
    let limits = ConnectionLimits::default().with_max_established(args.max_connections);
    // Without neighbours, gossipsub's own mesh size (6).
    let neighbours = match config.neighbours() {
        0 => 6,
        d => d,
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|key| {
            // The mesh takes the neighbours: as many peers as Cyclon keeps links with, so that
            // gossipsub keeps few other connections open (its mesh connections stay open).
            let mesh = neighbours.max(2);
            let gossipsub_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_secs(1))
                .mesh_n(mesh)
                .mesh_n_low(mesh - 1)
                .mesh_n_high(mesh + 2)
                .mesh_outbound_min(1)
                .validation_mode(gossipsub::ValidationMode::Strict)
                .build()?;
            Ok(ChatBehaviour {
                limits: connection_limits::Behaviour::new(limits),
                // With the key, the peer's own entry carries its signed peer record.
                cyclon: cyclon::Behaviour::try_with_keypair(key.clone(), config)?,
                gossipsub: gossipsub::Behaviour::new(
                    gossipsub::MessageAuthenticity::Signed(key.clone()),
                    gossipsub_config,
                )?,
                identify: identify::Behaviour::new(identify::Config::new(
                    format!("/libp2p-cyclon-chat/{}", env!("CARGO_PKG_VERSION")),
                    key.public(),
                )),
            })
        })?
        // Neighbour links and gossipsub's mesh keep their connections open; the others close
        // once idle this long.
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
        .build();
    Ok(swarm)
}

/// Lines read from stdin on a thread of their own.
///
/// Not `tokio::io::stdin()`: its read runs on the runtime's blocking pool, and the runtime
/// waits for it at shutdown, so Ctrl-C would hang until the next line is typed.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if sender.blocking_send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Text from the network, made safe to print on a terminal (no escape sequences).
fn printable(data: &[u8]) -> String {
    String::from_utf8_lossy(data)
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[tokio::main]
async fn main() -> ExitCode {
    match peer::start(cyclon_config, "warn") {
        Ok((args, config)) => cli::exit_status(run(args, config).await),
        Err(code) => code,
    }
}

async fn run(args: Args, config: cyclon::Config) -> Result<(), Box<dyn std::error::Error>> {
    let mut swarm = build_swarm(peer::keypair(args.peer.secret_key_seed), config, &args)?;
    let local_peer_id = *swarm.local_peer_id();
    let topic = gossipsub::IdentTopic::new(args.topic);
    swarm.behaviour_mut().gossipsub.subscribe(&topic)?;

    peer::listen(&mut swarm, args.peer.listen)?;
    println!("Local peer id: {local_peer_id}");
    println!("Chatting on topic '{topic}'. Type a line and press Enter to send it; Ctrl-D quits.");

    let mut chat = Chat {
        swarm,
        topic,
        members: HashSet::new(),
        bootstrap: Some(args.peer.bootstrap),
        dial_view: args.cyclon.neighbours == 0,
    };
    let mut stdin = stdin_lines();
    let shutdown = peer::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            signal = &mut shutdown => {
                signal.map_err(|e| format!("cannot wait for signals: {e}"))?;
                return Ok(());
            }
            line = stdin.recv() => match line {
                Some(line) => chat.send(line?.trim_end()),
                None => return Ok(()), // end of input
            },
            event = chat.swarm.select_next_some() => chat.on_swarm_event(event),
        }
    }
}

struct Chat {
    swarm: Swarm<ChatBehaviour>,
    topic: gossipsub::IdentTopic,
    /// Peers connected to us and subscribed to the topic.
    members: HashSet<PeerId>,
    /// Peers to put in the Cyclon view once we listen: a shuffle before that would send them
    /// our entry without an address, which they drop, and leave us unknown to anyone.
    bootstrap: Option<Vec<BootstrapPeer>>,
    /// Dial every peer that enters the view (`--neighbours 0`).
    dial_view: bool,
}

impl Chat {
    /// Publishes a line typed by the user.
    fn send(&mut self, line: &str) {
        if line.is_empty() {
            return;
        }
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        match gossipsub.publish(self.topic.clone(), line.as_bytes()) {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                println!("! not sent: nobody else is in the chat yet");
            }
            Err(error) => println!("! not sent: {error}"),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<ChatBehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(ChatBehaviourEvent::Cyclon(event)) => self.on_cyclon_event(event),
            SwarmEvent::Behaviour(ChatBehaviourEvent::Gossipsub(event)) => {
                self.on_gossipsub_event(event)
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => self.left(peer_id),
            SwarmEvent::NewListenAddr { address, .. } => {
                let local_peer_id = *self.swarm.local_peer_id();
                let address = address.with_p2p(local_peer_id).unwrap_or_else(|a| a);
                println!("Listening on {address}");
                for BootstrapPeer { peer_id, address } in self.bootstrap.take().unwrap_or_default()
                {
                    // A seed of the rejoin rule, when it is on (else the same as add_address).
                    let result = self
                        .swarm
                        .behaviour_mut()
                        .cyclon
                        .add_seed(&peer_id, address);
                    if matches!(
                        result,
                        cyclon::AddAddressResult::Rejected | cyclon::AddAddressResult::ViewFull
                    ) {
                        tracing::warn!(%peer_id, ?result, "bootstrap address not used");
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            _ => {}
        }
    }

    /// Follows the Cyclon view (and, with `--neighbours 0`, connects to every peer that enters
    /// it).
    fn on_cyclon_event(&mut self, event: cyclon::Event) {
        match event {
            cyclon::Event::PeerAdded {
                peer_id,
                addresses,
                verified,
                ..
            } => {
                tracing::debug!(%peer_id, ?addresses, verified, "view: peer added");
                if self.dial_view && !self.swarm.is_connected(&peer_id) {
                    // By peer id only: Cyclon gives the swarm the addresses from its view.
                    if let Err(error) = self.swarm.dial(peer_id) {
                        tracing::debug!(%peer_id, %error, "not dialling");
                    }
                }
            }
            cyclon::Event::PeerRemoved { peer_id, reason } => {
                tracing::debug!(%peer_id, ?reason, "view: peer removed");
            }
            cyclon::Event::ShuffleFailed { peer_id, error, .. } => {
                tracing::debug!(%peer_id, %error, "shuffle failed");
            }
            cyclon::Event::NeighbourUp { peer_id } => tracing::debug!(%peer_id, "neighbour up"),
            cyclon::Event::NeighbourDown { peer_id } => {
                tracing::debug!(%peer_id, "neighbour down")
            }
            event => tracing::trace!(?event, "cyclon"),
        }
    }

    fn on_gossipsub_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message,
                ..
            } => {
                let author = message.source.unwrap_or(propagation_source);
                println!("{author}: {}", printable(&message.data));
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } if topic == self.topic.hash() => {
                self.joined(peer_id)
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } if topic == self.topic.hash() => {
                self.left(peer_id)
            }
            _ => {}
        }
    }

    fn joined(&mut self, peer_id: PeerId) {
        if self.members.insert(peer_id) {
            println!("* {peer_id} joined");
        }
    }

    fn left(&mut self, peer_id: PeerId) {
        if self.members.remove(&peer_id) {
            println!("* {peer_id} left");
        }
    }
}
