//! What the two examples that run one peer per process (`node`, `chat`) share: the
//! `--bootstrap` flag's type, starting up (flags, Cyclon configuration, logs), the identity,
//! listening, waiting for a signal and the exit status.
//!
//! Bad flags and an invalid configuration print one line on stderr and exit with status 2;
//! `--help` and `--version` print in full and exit with status 0.

use std::{error::Error, io::IsTerminal, process::ExitCode, str::FromStr};

use clap::Parser;
use libp2p::{
    Multiaddr, PeerId, Swarm, core::transport::ListenerId, identity, multiaddr::Protocol,
    swarm::NetworkBehaviour,
};
use libp2p_cyclon as cyclon;
use tracing_subscriber::EnvFilter;

/// Exit status for bad flags (as clap uses).
const USAGE_ERROR: u8 = 2;

/// A `--bootstrap` address: a multiaddr ending in `/p2p/<peer id>`.
#[derive(Debug, Clone)]
pub(crate) struct Bootstrap {
    pub(crate) peer_id: PeerId,
    pub(crate) address: Multiaddr,
}

impl FromStr for Bootstrap {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let address: Multiaddr = s.parse().map_err(|e| format!("{e}"))?;
        match address.iter().last() {
            Some(Protocol::P2p(peer_id)) => Ok(Bootstrap { peer_id, address }),
            _ => Err("the address must end in /p2p/<peer id>".to_string()),
        }
    }
}

/// Parses the flags, builds the Cyclon configuration they ask for and checks it, then sends
/// logs to stderr: level from `RUST_LOG` (`default_log_level` when it is unset or invalid),
/// colours only on a terminal. `Err` is the exit status to end with at once.
pub(crate) fn start<A: Parser>(
    cyclon_config: impl FnOnce(&A) -> cyclon::Config,
    default_log_level: &str,
) -> Result<(A, cyclon::Config), ExitCode> {
    let args = parse_args()?;
    let config = cyclon_config(&args);
    if let Err(error) = config.validate() {
        eprintln!("error: invalid Cyclon configuration: {error}");
        return Err(ExitCode::from(USAGE_ERROR));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_log_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok((args, config))
}

/// Parses the flags; on an error prints a one-line message (help and version print in full).
fn parse_args<A: Parser>() -> Result<A, ExitCode> {
    match A::try_parse() {
        Ok(args) => Ok(args),
        Err(error) if !error.use_stderr() => {
            let _ = error.print(); // --help, --version
            Err(ExitCode::SUCCESS)
        }
        Err(error) => {
            let rendered = error.to_string();
            let line = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{line} (see --help)");
            Err(ExitCode::from(USAGE_ERROR))
        }
    }
}

/// The exit status for how the peer ended: 0, or 1 with the error on stderr.
pub(crate) fn exit_status(result: Result<(), Box<dyn Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A deterministic ed25519 identity from `--secret-key-seed` (as rust-libp2p's examples
/// derive it), or a random one.
pub(crate) fn keypair(seed: Option<u8>) -> identity::Keypair {
    match seed {
        Some(seed) => {
            let mut bytes = [0u8; 32];
            bytes[0] = seed;
            identity::Keypair::ed25519_from_bytes(bytes).expect("32 bytes are a valid ed25519 key")
        }
        None => identity::Keypair::generate_ed25519(),
    }
}

/// Listens on the `--listen` addresses, by default on `/ip4/0.0.0.0/tcp/0` and
/// `/ip4/0.0.0.0/udp/0/quic-v1`; returns the listeners started.
pub(crate) fn listen<B: NetworkBehaviour>(
    swarm: &mut Swarm<B>,
    addresses: Vec<Multiaddr>,
) -> Result<Vec<ListenerId>, Box<dyn Error>> {
    let addresses = if addresses.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/0".parse()?,
            "/ip4/0.0.0.0/udp/0/quic-v1".parse()?,
        ]
    } else {
        addresses
    };
    let mut listeners = Vec::with_capacity(addresses.len());
    for address in addresses {
        let id = swarm
            .listen_on(address.clone())
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        listeners.push(id);
    }
    Ok(listeners)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM, with the signal's name.
pub(crate) async fn shutdown_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.map(|()| "SIGINT"),
            _ = terminate.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
    }
}
