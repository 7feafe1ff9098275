//! Networks of 30 real swarms (memory transport) bootstrapped as a ring: the overlay must
//! converge to full views and one connected component, and heal after a third of the peers
//! are killed; a mixed network of `/cyclon/1.1.0` and `/cyclon/1.0.0`-only peers converges too.

mod support;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::Duration,
};

use libp2p::PeerId;
use libp2p_cyclon::{Behaviour, Config};
use support::{Network, ring};

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

fn config() -> Config {
    Config::default()
        .with_view_size(VIEW_SIZE)
        .with_shuffle_length(SHUFFLE_LENGTH)
        .with_shuffle_interval(INTERVAL)
        .with_request_timeout(Duration::from_secs(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_converges_to_a_random_like_overlay_and_heals_after_failures() {
    let mut net = ring(NODES, INTERVAL, |_, key| {
        Behaviour::new(key.public().to_peer_id(), config())
    })
    .await;

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

/// A third of the peers speak only `/cyclon/1.0.0`, a third speak `/cyclon/1.1.0` and sign
/// their entries, a third speak `/cyclon/1.1.0` without a key. The overlay converges as the
/// plain one does; entries are verified only where a signed entry travelled over
/// `/cyclon/1.1.0` all the way, and a verified entry always names a signing peer at the address
/// it signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_network_of_1_0_and_1_1_peers_converges() {
    let kind = |i: usize| i % 3; // 0: 1.0.0 only, 1: 1.1.0 signing, 2: 1.1.0 unsigned
    let mut net = ring(NODES, INTERVAL, |i, key| match kind(i) {
        0 => Behaviour::new(
            key.public().to_peer_id(),
            config().with_signed_records(false),
        ),
        1 => Behaviour::with_keypair(key, config()),
        _ => Behaviour::new(key.public().to_peer_id(), config()),
    })
    .await;
    let rounds = net
        .run_until(MAX_ROUNDS_TO_CONVERGE, |net| {
            net.live().all(|s| s.behaviour().view_len() == VIEW_SIZE) && connected(net)
        })
        .await;
    println!("mixed network converged in {rounds} rounds");
    assert_views_sane(&net);

    let index: HashMap<PeerId, usize> = net.ids.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut verified = 0;
    for (i, swarm) in net.live().enumerate() {
        let stats = swarm.behaviour().stats();
        if kind(i) == 0 {
            assert_eq!(stats.exchanges_v1_1, 0, "peer {i} speaks only 1.0.0");
        }
        for entry in swarm.behaviour().view() {
            if !entry.addresses().is_verified() {
                continue;
            }
            verified += 1;
            assert_ne!(kind(i), 0, "a 1.0.0-only peer holds a verified entry");
            let j = index[entry.peer_id()];
            assert_eq!(kind(j), 1, "verified entry of a peer that does not sign");
            let own: Vec<_> = net.swarms[j]
                .as_ref()
                .unwrap()
                .external_addresses()
                .cloned()
                .collect();
            assert_eq!(entry.addresses().as_slice(), own.as_slice());
        }
    }
    assert!(verified > 0, "no signed entry travelled over 1.1.0");
    let v1_0: u64 = net
        .live()
        .map(|s| s.behaviour().stats().exchanges_v1_0)
        .sum();
    let v1_1: u64 = net
        .live()
        .map(|s| s.behaviour().stats().exchanges_v1_1)
        .sum();
    println!("verified entries held: {verified}; messages over 1.0.0: {v1_0}, over 1.1.0: {v1_1}");
    assert!(v1_0 > 0 && v1_1 > 0);
    let failed: u64 = net
        .live()
        .map(|s| s.behaviour().stats().shuffles_failed.total())
        .sum();
    assert_eq!(failed, 0, "every pair of versions shuffles");
}
