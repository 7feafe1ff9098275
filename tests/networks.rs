//! Separate overlays on the same hosts: two applications that use Cyclon under different
//! protocol prefixes never exchange entries, even when each knows peers of the other.

mod support;

use std::time::Duration;

use libp2p::{PeerId, Swarm};
use libp2p_cyclon::{Behaviour, Config};
use libp2p_swarm_test::SwarmExt;
use support::poll_all;

const PER_NETWORK: usize = 8;
const INTERVAL: Duration = Duration::from_millis(100);
const MIN_ROUNDS: u64 = 10;
const MAX_ROUNDS: u64 = 200;

fn config(prefix: &str) -> Config {
    Config::default()
        .with_view_size(4)
        .with_shuffle_length(2)
        .with_shuffle_interval(INTERVAL)
        .with_request_timeout(Duration::from_secs(2))
        .with_protocol_prefix(prefix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_prefixes_on_the_same_hosts_stay_two_overlays() {
    let prefixes = ["/app-a", "/app-b"];
    let mut swarms: Vec<Swarm<Behaviour>> = Vec::new();
    let mut addresses = Vec::new();
    for k in 0..2 * PER_NETWORK {
        let prefix = prefixes[k / PER_NETWORK];
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let mut behaviour = Behaviour::new(key.public().to_peer_id(), config(prefix));
            behaviour.pause();
            behaviour
        });
        let (memory, _tcp) = swarm.listen().with_memory_addr_external().await;
        addresses.push(memory);
        swarms.push(swarm);
    }
    assert_eq!(
        swarms[0].behaviour().config().protocol_names()[0].as_ref(),
        "/app-a/cyclon/1.1.0"
    );
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    let network = |k: usize| k / PER_NETWORK;
    // Each peer knows the next of its own network and one peer of the other.
    for (k, swarm) in swarms.iter_mut().enumerate() {
        let base = network(k) * PER_NETWORK;
        let next = base + (k + 1 - base) % PER_NETWORK;
        let other = (k + PER_NETWORK) % (2 * PER_NETWORK);
        swarm
            .behaviour_mut()
            .add_address(&ids[next], addresses[next].clone());
        swarm
            .behaviour_mut()
            .add_address(&ids[other], addresses[other].clone());
        swarm.behaviour_mut().resume();
    }
    // Until every view holds only peers of its own overlay and is nearly full (the other
    // overlay's entries leave as they are contacted, which takes them being the oldest).
    let apart = |swarms: &[Swarm<Behaviour>]| {
        swarms.iter().enumerate().all(|(k, swarm)| {
            let view: Vec<usize> = swarm
                .behaviour()
                .view()
                .map(|e| ids.iter().position(|id| id == e.peer_id()).unwrap())
                .collect();
            view.len() >= 3 && view.iter().all(|&j| network(j) == network(k))
        })
    };
    let run = async {
        loop {
            poll_all(swarms.iter_mut().collect()).await;
            let rounds = swarms
                .iter()
                .map(|s| s.behaviour().stats().shuffles_started)
                .min()
                .unwrap_or(0);
            if rounds >= MIN_ROUNDS && apart(&swarms) {
                return rounds;
            }
            assert!(rounds <= MAX_ROUNDS, "not apart within {MAX_ROUNDS} rounds");
        }
    };
    let rounds = tokio::time::timeout(INTERVAL * MAX_ROUNDS as u32 * 10, run)
        .await
        .expect("within the time bound");
    println!("two overlays apart after {rounds} rounds");
    let mut unsupported = 0;
    for swarm in &swarms {
        let stats = swarm.behaviour().stats();
        assert_eq!(stats.exchanges_v1_0, 0);
        unsupported += stats.shuffles_failed.unsupported_protocol;
    }
    // Every peer started with one peer of the other overlay; each such shuffle failed.
    assert!(unsupported > 0, "no shuffle ever reached the other overlay");
}
