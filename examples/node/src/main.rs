//! A headless Cyclon peer for scripts, operations and other implementations.
//!
//! ```sh
//! # A first node, with a fixed identity and port:
//! cargo run --release --bin node -- --secret-key-seed 1 --listen /ip4/127.0.0.1/tcp/4001
//! # More nodes, bootstrapped from the first (its address is in its `listening` event):
//! cargo run --release --bin node -- --listen /ip4/127.0.0.1/tcp/0 \
//!     --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X
//! ```
//!
//! The node speaks Cyclon (`/cyclon/1.1.0`, falling back to `/cyclon/1.0.0`), identify and ping
//! over TCP and QUIC (noise, yamux). Its own entry carries its signed peer record; with
//! `--require-signed-records` it drops every received entry without a verified record.
//! It prints one JSON object per line on stdout for every event, each with an `"event"` field
//! and peer ids in base58:
//!
//! ```text
//! {"event":"listening","peer_id":"12D3…","addresses":["/ip4/127.0.0.1/tcp/4001/p2p/12D3…"]}
//! {"event":"peer_added","peer_id":"12D3…","addresses":["/ip4/127.0.0.1/tcp/4001"],"signed":true,"verified":true}
//! {"event":"peer_removed","peer_id":"12D3…","reason":"shuffle_target"}
//! {"event":"shuffle_completed","id":3,"peer_id":"12D3…","sent":5,"received":5}
//! {"event":"shuffle_failed","id":4,"peer_id":"12D3…","error":"the shuffle timed out"}
//! {"event":"shuffle_answered","peer_id":"12D3…","received":5,"sent":5}
//! {"event":"neighbour_up","peer_id":"12D3…"}
//! {"event":"neighbour_down","peer_id":"12D3…"}
//! ```
//!
//! `listening` is printed once every listener has an address, then again whenever the set of
//! listen addresses changes; each one carries all current addresses. `peer_removed` reasons are
//! `shuffle_target`, `replaced` and `manual`. `signed` in `peer_added` (and `verified`, the same
//! value under the name the library's `Event::PeerAdded` gives it) says whether the
//! addresses come from the peer's own signed peer record that verified (`false`: entries of
//! `/cyclon/1.0.0` peers, unsigned entries, bootstrap addresses). Logs go to stderr (level from `RUST_LOG`, default
//! `info`). Ctrl-C or SIGTERM stops the node with exit status 0; bad flags exit with status 2
//! and a one-line message.
//!
//! `--state-file PATH` keeps the view across restarts: restored at start (one `peer_added` per
//! entry), saved when it changed (at most once per interval) and on exit, atomically. A file
//! that is not a view snapshot, or is another peer's, stops the node with status 2 and a
//! one-line message, and is left untouched. `--rejoin-every K` turns on the rejoin rule: the
//! `--bootstrap` peers are kept as seeds, and every K rounds the node also shuffles with a seed
//! or a peer it lost to a failed shuffle, so that the overlay finds itself again after a
//! partition.
//!
//! `--address-scope any|lan|global` decides which addresses the node advertises and takes
//! from others (default `any`; `global` on the public internet); `--protocol-prefix PREFIX`
//! runs a separate overlay under `PREFIX/cyclon/…`; `--neighbours D` keeps open connections
//! to D neighbours drawn from the view, reported as `neighbour_up` / `neighbour_down`.
//!
//! `--defence secure` runs SecureCyclon instead (`libp2p_cyclon::secure::Behaviour`,
//! `/cyclon/2.0.0` only): the `--bootstrap` peers are seeds it joins, its view holds
//! descriptors signed by the peers themselves (`peer_added` is always `signed`), and a descriptor
//! is minted per exchange, at most one per interval (the mint gap is `--interval-ms`). It
//! prints `peer_added`, `peer_removed` (reason `not_held`) and these events of its own:
//!
//! ```text
//! {"event":"exchange_completed","peer_id":"12D3…","received":2,"given":3}
//! {"event":"exchange_answered","peer_id":"12D3…","received":3,"given":2}
//! {"event":"exchange_refused","peer_id":"12D3…","reason":"Busy"}
//! {"event":"exchange_failed","peer_id":"12D3…","role":"initiator","error":"the peer refused the exchange: Busy"}
//! {"event":"proof_found","offender":"12D3…","kind":"fork"}
//! {"event":"blacklisted","peer_id":"12D3…"}
//! {"event":"invalid_items","peer_id":"12D3…","count":1}
//! ```
//!
//! It does not combine with `--state-file`, `--neighbours` or `--rejoin-every` yet.

mod state;

use std::{collections::HashSet, io::Write, path::PathBuf, process::ExitCode};

use clap::Parser;
use cyclon_examples::{
    cli::{self, BootstrapPeer, CyclonFlags, PeerFlags, RejoinFlags},
    peer,
};
use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm, identify, identity, noise, ping,
    swarm::{NetworkBehaviour, SwarmEvent, behaviour::toggle::Toggle},
    tcp, yamux,
};
use libp2p_cyclon as cyclon;
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "node",
    about = "A headless Cyclon peer: JSON-lines events on stdout, logs on stderr",
    after_help = "Events (stdout, one JSON object per line): listening, peer_added, peer_removed, \
                  shuffle_completed, shuffle_failed, shuffle_answered, neighbour_up, \
                  neighbour_down.\n\
                  Logs (stderr): level from RUST_LOG, e.g. RUST_LOG=debug. Ctrl-C or SIGTERM stops \
                  the node."
)]
struct Args {
    #[command(flatten)]
    peer: PeerFlags,
    #[command(flatten)]
    cyclon: CyclonFlags,
    /// Drop every received entry that does not carry a signed peer record that verifies (all
    /// entries of /cyclon/1.0.0 peers); the swarm hears only verified addresses.
    #[arg(long)]
    require_signed_records: bool,
    #[command(flatten)]
    rejoin: RejoinFlags,
    /// Keep the view in FILE across restarts: read at start, written when it changed (at most
    /// once per interval) and on exit, atomically.
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,
}

/// Cyclon (`/cyclon/1.x`) or SecureCyclon (`/cyclon/2.0.0`), one of the two.
#[derive(NetworkBehaviour)]
struct NodeBehaviour {
    cyclon: Toggle<cyclon::Behaviour>,
    secure: Toggle<cyclon::secure::Behaviour>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// Whether `--defence secure` asks for SecureCyclon.
fn is_secure(args: &Args) -> bool {
    args.cyclon.is_secure()
}

/// SecureCyclon's configuration from the flags: the mint gap is the interval.
fn secure_config(args: &Args) -> Result<cyclon::secure::Config, String> {
    if args.state_file.is_some() || args.cyclon.neighbours > 0 || args.rejoin.rejoin_every > 0 {
        return Err(
            "--defence secure does not combine with --state-file, --neighbours or --rejoin-every"
                .into(),
        );
    }
    args.cyclon.secure_config()
}

fn cyclon_config(args: &Args) -> cyclon::Config {
    let mut config = args
        .cyclon
        .config()
        .with_require_signed_records(args.require_signed_records);
    if is_secure(args) {
        // The plain behaviour is not built; its configuration only has to validate.
        config = config.with_defence(cyclon::Defence::Off);
    }
    match args.rejoin.rule(args.cyclon.shuffle.view_size) {
        Some(rule) => config.with_rejoin(rule),
        None => config,
    }
}

fn build_swarm(
    key: identity::Keypair,
    config: cyclon::Config,
    secure: Option<cyclon::secure::Config>,
) -> Result<Swarm<NodeBehaviour>, Box<dyn std::error::Error>> {
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic()
        .with_behaviour(|key| {
            Ok(NodeBehaviour {
                // With the key, the node's own entry carries its signed peer record.
                cyclon: match secure {
                    Some(_) => None,
                    None => Some(cyclon::Behaviour::try_with_keypair(key.clone(), config)?),
                }
                .into(),
                secure: secure
                    .map(|secure| cyclon::secure::Behaviour::try_new(key.clone(), secure))
                    .transpose()?
                    .into(),
                identify: identify::Behaviour::new(
                    identify::Config::new(
                        format!("/libp2p-cyclon/{}", env!("CARGO_PKG_VERSION")),
                        key.public(),
                    )
                    .with_agent_version(format!(
                        "libp2p-cyclon-node/{}",
                        env!("CARGO_PKG_VERSION")
                    )),
                ),
                ping: ping::Behaviour::default(),
            })
        })?
        .build();
    Ok(swarm)
}

/// One line of output: a JSON object whose `"event"` field names the event.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Output {
    Listening {
        peer_id: String,
        addresses: Vec<String>,
    },
    PeerAdded {
        peer_id: String,
        addresses: Vec<String>,
        /// The event's `verified`, under the name design.md fixes for this output.
        signed: bool,
        /// The same, under the event's own name.
        verified: bool,
    },
    PeerRemoved {
        peer_id: String,
        reason: &'static str,
    },
    ShuffleCompleted {
        id: u64,
        peer_id: String,
        sent: usize,
        received: usize,
    },
    ShuffleFailed {
        id: u64,
        peer_id: String,
        error: String,
    },
    ShuffleAnswered {
        peer_id: String,
        received: usize,
        sent: usize,
    },
    NeighbourUp {
        peer_id: String,
    },
    NeighbourDown {
        peer_id: String,
    },
    ExchangeCompleted {
        peer_id: String,
        received: usize,
        given: usize,
    },
    ExchangeAnswered {
        peer_id: String,
        received: usize,
        given: usize,
    },
    ExchangeRefused {
        peer_id: String,
        reason: String,
    },
    ExchangeFailed {
        peer_id: String,
        role: &'static str,
        error: String,
    },
    ProofFound {
        offender: String,
        kind: &'static str,
    },
    Blacklisted {
        peer_id: String,
    },
    InvalidItems {
        peer_id: String,
        count: u64,
    },
}

impl Output {
    fn listening(local_peer_id: &PeerId, addresses: &[Multiaddr]) -> Self {
        Output::Listening {
            peer_id: local_peer_id.to_base58(),
            addresses: strings(addresses),
        }
    }

    /// Writes the event as one line on stdout.
    fn print(&self) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, self)?;
        out.write_all(b"\n")?;
        out.flush()
    }
}

fn strings(addresses: &[Multiaddr]) -> Vec<String> {
    addresses.iter().map(ToString::to_string).collect()
}

impl Output {
    /// The line for a Cyclon event; `None` for kinds of events this version does not print.
    fn of(event: cyclon::Event) -> Option<Self> {
        Some(match event {
            cyclon::Event::PeerAdded {
                peer_id,
                addresses,
                verified,
                ..
            } => Output::PeerAdded {
                peer_id: peer_id.to_base58(),
                addresses: strings(&addresses),
                signed: verified,
                verified,
            },
            cyclon::Event::PeerRemoved { peer_id, reason } => Output::PeerRemoved {
                peer_id: peer_id.to_base58(),
                reason: reason.as_str(),
            },
            cyclon::Event::ShuffleCompleted {
                id,
                peer_id,
                sent,
                received,
            } => Output::ShuffleCompleted {
                id: id.get(),
                peer_id: peer_id.to_base58(),
                sent,
                received,
            },
            cyclon::Event::ShuffleFailed { id, peer_id, error } => Output::ShuffleFailed {
                id: id.get(),
                peer_id: peer_id.to_base58(),
                error: error.to_string(),
            },
            cyclon::Event::ShuffleAnswered {
                peer_id,
                received,
                sent,
            } => Output::ShuffleAnswered {
                peer_id: peer_id.to_base58(),
                received,
                sent,
            },
            cyclon::Event::NeighbourUp { peer_id } => Output::NeighbourUp {
                peer_id: peer_id.to_base58(),
            },
            cyclon::Event::NeighbourDown { peer_id } => Output::NeighbourDown {
                peer_id: peer_id.to_base58(),
            },
            _ => return None,
        })
    }
}

impl Output {
    /// The line for a SecureCyclon event; `None` for kinds of events this version does not
    /// print.
    fn of_secure(event: cyclon::secure::Event) -> Option<Self> {
        use cyclon::secure::{Event, ProofKind, Role};
        Some(match event {
            Event::PeerAdded { peer_id, addresses } => Output::PeerAdded {
                peer_id: peer_id.to_base58(),
                addresses: strings(&addresses),
                signed: true,
                verified: true,
            },
            Event::PeerRemoved { peer_id } => Output::PeerRemoved {
                peer_id: peer_id.to_base58(),
                reason: "not_held",
            },
            Event::ExchangeCompleted {
                peer_id,
                received,
                given,
            } => Output::ExchangeCompleted {
                peer_id: peer_id.to_base58(),
                received,
                given,
            },
            Event::ExchangeAnswered {
                peer_id,
                received,
                given,
            } => Output::ExchangeAnswered {
                peer_id: peer_id.to_base58(),
                received,
                given,
            },
            Event::ExchangeRefused { peer_id, reason } => Output::ExchangeRefused {
                peer_id: peer_id.to_base58(),
                reason: format!("{reason:?}"),
            },
            Event::ExchangeFailed {
                peer_id,
                role,
                error,
            } => Output::ExchangeFailed {
                peer_id: peer_id.to_base58(),
                role: match role {
                    Role::Initiator => "initiator",
                    Role::Responder => "responder",
                },
                error: error.to_string(),
            },
            Event::ProofFound { offender, kind } => Output::ProofFound {
                offender: offender.to_base58(),
                kind: match kind {
                    ProofKind::Fork => "fork",
                    ProofKind::Frequency => "frequency",
                    _ => "other",
                },
            },
            Event::Blacklisted { peer_id } => Output::Blacklisted {
                peer_id: peer_id.to_base58(),
            },
            Event::InvalidItems { peer_id, items } => Output::InvalidItems {
                peer_id: peer_id.to_base58(),
                count: items.total(),
            },
            _ => return None,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let (mut args, config) = match peer::start(cyclon_config, "info") {
        Ok(started) => started,
        Err(code) => return code,
    };
    let interval = config.shuffle_interval();
    let secure = if is_secure(&args) {
        match secure_config(&args) {
            Ok(secure) => Some(secure),
            Err(message) => return cli::usage_error(message),
        }
    } else {
        None
    };
    let mut swarm = match build_swarm(peer::keypair(args.peer.secret_key_seed), config, secure) {
        Ok(swarm) => swarm,
        Err(error) => return cli::exit_status(Err(error)),
    };
    // The saved view enters before anything else happens; an unusable file stops the node
    // before it could be overwritten.
    let state = match (
        args.state_file.take(),
        swarm.behaviour_mut().cyclon.as_mut(),
    ) {
        (Some(path), Some(cyclon)) => match state::StateFile::restore(path, cyclon) {
            Ok(state) => Some(state),
            Err(message) => return cli::usage_error(message),
        },
        _ => None,
    };
    cli::exit_status(run(args, swarm, state, interval).await)
}

async fn run(
    args: Args,
    mut swarm: Swarm<NodeBehaviour>,
    mut state: Option<state::StateFile>,
    interval: std::time::Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let local_peer_id = *swarm.local_peer_id();
    tracing::info!(%local_peer_id, "starting");

    // Listeners that have not reported an address yet; `listening` waits for all of them.
    let mut starting: HashSet<_> = peer::listen(&mut swarm, args.peer.listen)?
        .into_iter()
        .collect();
    let mut listeners = starting.len();
    let mut listen_addresses: Vec<Multiaddr> = Vec::new();

    // The bootstrap peers enter the view once we listen: a shuffle before that would send
    // them our entry without an address, which they drop, and leave us unknown to anyone.
    let mut bootstrap = Some(args.peer.bootstrap);
    let seeds = args.rejoin.rejoin_every > 0;

    // The state file is written when the view changed, at most once per interval.
    let mut save_timer = tokio::time::interval(interval);
    save_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut view_changed = false;

    let shutdown = peer::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            // The signal handlers are installed when this branch is first polled: before
            // anything is printed, so a script that reacts to our output can always stop us.
            biased;
            signal = &mut shutdown => {
                let signal = signal.map_err(|e| format!("cannot wait for signals: {e}"))?;
                tracing::info!(signal, "shutting down");
                if let (Some(state), Some(cyclon)) = (state.as_mut(), swarm.behaviour().cyclon.as_ref()) {
                    state
                        .save(cyclon)
                        .map_err(|e| format!("cannot write the state file: {e}"))?;
                }
                return Ok(());
            }
            _ = save_timer.tick(), if state.is_some() && view_changed => {
                if let (Some(state), Some(cyclon)) = (state.as_mut(), swarm.behaviour().cyclon.as_ref())
                    && let Err(error) = state.save(cyclon)
                {
                    tracing::warn!(%error, "cannot write the state file");
                }
                view_changed = false;
                continue;
            }
            event = swarm.select_next_some() => event,
        };
        let output = match event {
            SwarmEvent::Behaviour(NodeBehaviourEvent::Cyclon(event)) => {
                view_changed |= matches!(
                    event,
                    cyclon::Event::PeerAdded { .. } | cyclon::Event::PeerRemoved { .. }
                );
                Output::of(event)
            }
            SwarmEvent::Behaviour(NodeBehaviourEvent::Secure(event)) => Output::of_secure(event),
            SwarmEvent::Behaviour(NodeBehaviourEvent::Identify(event)) => {
                tracing::debug!(?event, "identify");
                None
            }
            SwarmEvent::Behaviour(NodeBehaviourEvent::Ping(event)) => {
                tracing::trace!(?event, "ping");
                None
            }
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                starting.remove(&listener_id);
                listen_addresses.push(address.with_p2p(local_peer_id).unwrap_or_else(|a| a));
                starting
                    .is_empty()
                    .then(|| Output::listening(&local_peer_id, &listen_addresses))
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!(%address, "listen address expired");
                let address = address.with_p2p(local_peer_id).unwrap_or_else(|a| a);
                listen_addresses.retain(|a| *a != address);
                starting
                    .is_empty()
                    .then(|| Output::listening(&local_peer_id, &listen_addresses))
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                match &reason {
                    Ok(()) => tracing::info!(?addresses, "listener closed"),
                    Err(error) => tracing::warn!(?addresses, %error, "listener failed"),
                }
                starting.remove(&listener_id);
                listeners -= 1;
                if listeners == 0 {
                    return Err("no listener left".into());
                }
                None
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::warn!(%error, "listener error");
                None
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                tracing::debug!(%peer_id, address = %endpoint.get_remote_address(), "connected");
                None
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                tracing::debug!(%peer_id, ?cause, "connection closed");
                None
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
                None
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
                None
            }
            _ => None,
        };
        if let Some(output) = output
            && let Err(error) = output.print()
        {
            // Whoever read our events is gone (e.g. `node | head`): nothing left to do.
            tracing::info!(%error, "stdout closed, shutting down");
            return Ok(());
        }
        if starting.is_empty()
            && let Some(peers) = bootstrap.take()
        {
            let behaviour = swarm.behaviour_mut();
            if let Some(secure) = behaviour.secure.as_mut() {
                // SecureCyclon takes no unsigned entry: the bootstrap peers are seeds it joins.
                for BootstrapPeer { peer_id, address } in peers {
                    secure.add_seed(peer_id, address);
                }
            } else if let Some(cyclon) = behaviour.cyclon.as_mut() {
                add_bootstrap_peers(cyclon, peers, seeds);
            }
        }
    }
}

/// Bootstraps the view from `peers`; with the rejoin rule (`seeds`), also keeps them as seeds.
fn add_bootstrap_peers(cyclon: &mut cyclon::Behaviour, peers: Vec<BootstrapPeer>, seeds: bool) {
    for BootstrapPeer { peer_id, address } in peers {
        let result = if seeds {
            cyclon.add_seed(&peer_id, address.clone())
        } else {
            cyclon.add_address(&peer_id, address.clone())
        };
        tracing::debug!(%address, ?result, "bootstrap");
        if matches!(
            result,
            cyclon::AddAddressResult::Rejected | cyclon::AddAddressResult::ViewFull
        ) {
            tracing::warn!(%address, ?result, "bootstrap address not used");
        }
    }
}
