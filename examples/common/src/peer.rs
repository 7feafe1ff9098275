//! What the programs that run one peer per process (`node`, `chat`) share: starting up (flags,
//! Cyclon configuration, logs), the identity, listening, waiting for a signal and the exit
//! status.
//!
//! Bad flags and an invalid configuration print one line on stderr and exit with status 2;
//! `--help` and `--version` print in full and exit with status 0.

use std::{error::Error, process::ExitCode};

use clap::Parser;
use libp2p::{Multiaddr, Swarm, core::transport::ListenerId, identity, swarm::NetworkBehaviour};
use libp2p_cyclon as cyclon;

use crate::{cli, logs};

/// Parses the flags, builds the Cyclon configuration they ask for and checks it, then sends
/// logs to stderr (`default_log_filter` unless `RUST_LOG` says otherwise). `Err` is the exit
/// status to end with at once.
pub fn start<A: Parser>(
    cyclon_config: impl FnOnce(&A) -> cyclon::Config,
    default_log_filter: &str,
) -> Result<(A, cyclon::Config), ExitCode> {
    let args = cli::parse::<A>()?;
    let config = cyclon_config(&args);
    if let Err(error) = config.validate() {
        return Err(cli::usage_error(format!(
            "invalid Cyclon configuration: {error}"
        )));
    }
    logs::init(default_log_filter);
    Ok((args, config))
}

/// A deterministic ed25519 identity from `--secret-key-seed` (as rust-libp2p's examples
/// derive it), or a random one.
pub fn keypair(seed: Option<u8>) -> identity::Keypair {
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
pub fn listen<B: NetworkBehaviour>(
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
pub async fn shutdown_signal() -> std::io::Result<&'static str> {
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
