//! Cyclon beside libp2p's own connection limits: 20 swarms (memory transport), each allowed at
//! most 2 established outgoing connections by `connection_limits`, bootstrapped as a ring.
//! Dials the local swarm refuses say nothing about the peer: the overlay must stay full and
//! connected, and the refusals must be counted as such, not as failures of the peers.
//!
//! Run with `-- --nocapture` to see the figures (docs/production.md).

mod support;

use std::time::Duration;

use libp2p::{
    Swarm,
    connection_limits::{self, ConnectionLimits},
    swarm::NetworkBehaviour,
};
use libp2p_cyclon::{Behaviour, Config, Stats};
use support::{components, poll_all, ring_of};

const NODES: usize = 20;
const VIEW_SIZE: usize = 6;
const SHUFFLE_LENGTH: usize = 3;
const INTERVAL: Duration = Duration::from_millis(200);
const INTERVALS: u32 = 80;
const MAX_OUTGOING: u32 = 2;

#[derive(NetworkBehaviour)]
struct Limited {
    limits: connection_limits::Behaviour,
    cyclon: Behaviour,
}

fn config() -> Config {
    Config::default()
        .with_view_size(VIEW_SIZE)
        .with_shuffle_length(SHUFFLE_LENGTH)
        .with_shuffle_interval(INTERVAL)
        .with_request_timeout(Duration::from_secs(2))
}

/// `NODES` swarms with the connection limit, bootstrapped as a ring (each knows the next).
async fn ring() -> Vec<Swarm<Limited>> {
    let limited = |_, key: libp2p::identity::Keypair| Limited {
        limits: connection_limits::Behaviour::new(
            ConnectionLimits::default().with_max_established_outgoing(Some(MAX_OUTGOING)),
        ),
        cyclon: Behaviour::new(key.public().to_peer_id(), config()),
    };
    ring_of(NODES, limited, |b| &mut b.cyclon, false).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_stay_full_at_the_outgoing_connection_limit() {
    let mut swarms = ring().await;
    // The run: INTERVALS shuffle intervals of the slowest peer, with a wall-clock bound.
    let run = async {
        let mut check = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = poll_all(swarms.iter_mut().collect()) => {}
                _ = check.tick() => {
                    let rounds = swarms.iter().map(|s| rounds(s.behaviour().cyclon.stats())).min();
                    if rounds.unwrap_or(0) >= u64::from(INTERVALS) {
                        return;
                    }
                }
            }
        }
    };
    tokio::time::timeout(INTERVAL * INTERVALS * 10, run)
        .await
        .expect("every peer ran its rounds within the time bound");

    let sizes: Vec<usize> = swarms
        .iter()
        .map(|s| s.behaviour().cyclon.view_len())
        .collect();
    let fill = sizes.iter().sum::<usize>() as f64 / (NODES * VIEW_SIZE) as f64;
    let smallest = sizes.iter().copied().min().unwrap_or(0);
    let mut total = Stats::default();
    for swarm in &swarms {
        add(&mut total, swarm.behaviour().cyclon.stats());
    }
    let failures = total.shuffles_failed;
    let attempted = total.shuffles_started;
    let completed = total.shuffles_completed as f64 / attempted.max(1) as f64;
    let components = components(&swarms, |b| &b.cyclon);
    println!(
        "{NODES} swarms, c = {VIEW_SIZE}, l = {SHUFFLE_LENGTH}, at most {MAX_OUTGOING} \
         outgoing connections, {INTERVALS} intervals: views {:.1} % full, smallest {smallest}, \
         {components} component(s); {attempted} shuffles started, {:.1} % completed, \
         {} refused locally, {} failed otherwise (dial {}, timeout {}, closed {}, io {}), \
         {} rounds without a reachable peer",
        100.0 * fill,
        100.0 * completed,
        failures.refused_locally,
        failures.total(),
        failures.dial,
        failures.timeout,
        failures.connection_closed,
        failures.io,
        total.rounds_without_reachable_peer,
    );
    assert!(fill >= 0.9, "views {:.1} % full", 100.0 * fill);
    assert_eq!(components, 1, "the overlay split");
    assert!(
        failures.refused_locally > 0,
        "the limit never refused a dial: the test does not test it"
    );
    assert_eq!(
        failures.dial, 0,
        "a dial the local swarm refused was reported as a failure of the peer"
    );
}

/// Periodic rounds a peer ran: shuffles it started and rounds it skipped for want of a
/// reachable peer.
fn rounds(stats: &Stats) -> u64 {
    stats.shuffles_started + stats.rounds_without_reachable_peer
}

fn add(total: &mut Stats, stats: &Stats) {
    total.shuffles_started += stats.shuffles_started;
    total.shuffles_completed += stats.shuffles_completed;
    total.rounds_without_reachable_peer += stats.rounds_without_reachable_peer;
    let (t, s) = (&mut total.shuffles_failed, &stats.shuffles_failed);
    t.dial += s.dial;
    t.refused_locally += s.refused_locally;
    t.unsupported_protocol += s.unsupported_protocol;
    t.timeout += s.timeout;
    t.connection_closed += s.connection_closed;
    t.io += s.io;
}
