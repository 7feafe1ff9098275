//! A network of 30 real swarms (memory transport) bootstrapped as a ring: the overlay must
//! converge to full views and one connected component, and heal after a third of the peers
//! are killed.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use libp2p::{PeerId, Swarm};
use libp2p_cyclon::{Behaviour, Config};
use libp2p_swarm_test::SwarmExt;

mod support;
use support::Network;

const NODES: usize = 30;
const VIEW_SIZE: usize = 8;
const SHUFFLE_LENGTH: usize = 4;
const INTERVAL: Duration = Duration::from_millis(200);
/// Generous bounds on the rounds (shuffles per node) each phase may take.
const MAX_ROUNDS_TO_CONVERGE: u64 = 40;
const MAX_ROUNDS_TO_HEAL: u64 = 60;

/// Directed overlay among live peers: who is in whose view.
fn edges(net: &Network) -> HashMap<PeerId, Vec<PeerId>> {
    net.live()
        .map(|s| {
            let view = s.behaviour().view().map(|e| *e.peer_id()).collect();
            (*s.local_peer_id(), view)
        })
        .collect()
}

/// Whether the live peers form one weakly connected component.
fn connected(net: &Network) -> bool {
    let edges = edges(net);
    let mut undirected: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
    for (from, tos) in &edges {
        for to in tos {
            if edges.contains_key(to) {
                undirected.entry(*from).or_default().push(*to);
                undirected.entry(*to).or_default().push(*from);
            }
        }
    }
    let Some(start) = edges.keys().next() else {
        return true;
    };
    let mut seen = HashSet::from([*start]);
    let mut queue = VecDeque::from([*start]);
    while let Some(peer) = queue.pop_front() {
        for next in undirected.get(&peer).into_iter().flatten() {
            if seen.insert(*next) {
                queue.push_back(*next);
            }
        }
    }
    seen.len() == edges.len()
}

fn assert_views_sane(net: &Network) {
    for swarm in net.live() {
        let own = swarm.local_peer_id();
        let view: Vec<PeerId> = swarm.behaviour().view().map(|e| *e.peer_id()).collect();
        let unique: HashSet<&PeerId> = view.iter().collect();
        assert!(view.len() <= VIEW_SIZE);
        assert_eq!(unique.len(), view.len(), "duplicate in {own}'s view");
        assert!(!unique.contains(own), "{own} holds itself");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_converges_to_a_random_like_overlay_and_heals_after_failures() {
    let config = Config::default()
        .with_view_size(VIEW_SIZE)
        .with_shuffle_length(SHUFFLE_LENGTH)
        .with_shuffle_interval(INTERVAL)
        .with_request_timeout(Duration::from_secs(2));
    let mut swarms = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..NODES {
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let mut behaviour = Behaviour::new(key.public().to_peer_id(), config.clone());
            behaviour.pause(); // until every peer listens
            behaviour
        });
        let (memory, _tcp) = swarm.listen().with_memory_addr_external().await;
        addresses.push(memory);
        swarms.push(swarm);
    }
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for (i, swarm) in swarms.iter_mut().enumerate() {
        let next = (i + 1) % NODES;
        swarm
            .behaviour_mut()
            .add_address(&ids[next], addresses[next].clone());
        swarm.behaviour_mut().resume();
    }
    let mut net = Network {
        ids,
        swarms: swarms.into_iter().map(Some).collect(),
        interval: INTERVAL,
    };

    // Phase 1: from a ring to full views and one connected overlay.
    let rounds = net
        .run_until(MAX_ROUNDS_TO_CONVERGE, |net| {
            net.live().all(|s| s.behaviour().view_len() == VIEW_SIZE) && connected(net)
        })
        .await;
    assert_views_sane(&net);
    println!("converged in {rounds} rounds");

    // The ring is gone: views hold far more than the successor.
    let known: usize = net.live().map(|s| s.behaviour().view_len()).sum::<usize>();
    assert_eq!(known, NODES * VIEW_SIZE);

    // Phase 2: kill every third peer at once.
    let mut dead = HashSet::new();
    for i in (0..NODES).step_by(3) {
        net.swarms[i] = None;
        dead.insert(net.ids[i]);
    }
    let rounds = net
        .run_until(MAX_ROUNDS_TO_HEAL, |net| {
            net.live()
                .all(|s| s.behaviour().view().all(|e| !dead.contains(e.peer_id())))
        })
        .await;
    println!("dead links gone in {rounds} rounds");
    assert_views_sane(&net);
    assert!(connected(&net), "the survivors stay one overlay");
    assert!(
        net.live().all(|s| s.behaviour().view_len() > 0),
        "no survivor is isolated"
    );
}
