//! SecureCyclon over real swarms (memory transport, `/cyclon/2.0.0`): nodes exchange through
//! the behaviour, learn each other's signed addresses, and an honest overlay fills and stays
//! in one piece without a single invalid item or blacklisting.

mod support;

use std::{collections::HashMap, time::Duration};

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, Swarm, swarm::SwarmEvent};
use libp2p_cyclon::secure::{self, Event, SecureParams};
use libp2p_swarm_test::SwarmExt;

const GAP_MS: u64 = 300;

fn config(c: usize, l: usize) -> secure::Config {
    secure::Config::default()
        .with_view_size(c)
        .with_shuffle_length(l)
        .with_params(SecureParams::scaled(c, GAP_MS).with_anchors(0))
        .with_request_timeout(Duration::from_secs(5))
}

/// What one node reported.
#[derive(Default)]
struct Seen {
    completed: usize,
    answered: usize,
    failed: usize,
    /// Why exchanges failed.
    failures: HashMap<String, usize>,
    invalid: u64,
    blacklisted: Vec<PeerId>,
    /// Verified addresses learned per peer (`PeerAdded`).
    added: HashMap<PeerId, Vec<Multiaddr>>,
    /// Addresses the behaviour reported to the swarm.
    reported: HashMap<PeerId, Vec<Multiaddr>>,
}

impl Seen {
    fn record(&mut self, event: SwarmEvent<Event>) {
        match event {
            SwarmEvent::Behaviour(Event::ExchangeCompleted { .. }) => self.completed += 1,
            SwarmEvent::Behaviour(Event::ExchangeAnswered { .. }) => self.answered += 1,
            SwarmEvent::Behaviour(Event::ExchangeFailed { error, .. }) => {
                self.failed += 1;
                *self.failures.entry(error.to_string()).or_default() += 1;
            }
            SwarmEvent::Behaviour(Event::InvalidItems { items, .. }) => {
                self.invalid += items.total()
            }
            SwarmEvent::Behaviour(Event::Blacklisted { peer_id }) => self.blacklisted.push(peer_id),
            SwarmEvent::Behaviour(Event::PeerAdded { peer_id, addresses }) => {
                self.added.insert(peer_id, addresses);
            }
            SwarmEvent::NewExternalAddrOfPeer { peer_id, address } => {
                self.reported.entry(peer_id).or_default().push(address)
            }
            _ => {}
        }
    }
}

/// `n` listening swarms, paused, each with its memory address.
async fn swarms(
    n: usize,
    config: secure::Config,
) -> (Vec<Swarm<secure::Behaviour>>, Vec<Multiaddr>) {
    let mut swarms = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..n {
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let mut b = secure::Behaviour::new(key, config.clone());
            b.pause();
            b
        });
        let (memory, _tcp) = swarm.listen().with_memory_addr_external().await;
        addresses.push(memory);
        swarms.push(swarm);
    }
    (swarms, addresses)
}

/// Polls the swarms, recording events, until `done` holds (checked every gap) or `limit`
/// passes; returns whether `done` held.
async fn run_until(
    swarms: &mut [Swarm<secure::Behaviour>],
    seen: &mut [Seen],
    limit: Duration,
    done: impl FnMut(&[Swarm<secure::Behaviour>], &[Seen]) -> bool,
) -> bool {
    let check = Duration::from_millis(GAP_MS);
    support::run_until(swarms, seen, Seen::record, check, limit, done).await
}

/// Weakly connected components of the overlay the contacts form.
fn components(swarms: &[Swarm<secure::Behaviour>]) -> usize {
    support::components_by(swarms, secure::Behaviour::contacts)
}

#[tokio::test]
async fn two_nodes_exchange_and_learn_each_others_signed_addresses() {
    let (mut swarms, addresses) = swarms(2, config(4, 2)).await;
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    swarms[0]
        .behaviour_mut()
        .add_seed(ids[1], addresses[1].clone());
    for swarm in &mut swarms {
        swarm.behaviour_mut().resume();
    }
    let mut seen = [Seen::default(), Seen::default()];
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(30),
        |_, seen| seen.iter().all(|s| s.completed >= 3 && s.answered >= 3),
    )
    .await;
    let stats: Vec<_> = swarms.iter().map(|s| *s.behaviour().stats()).collect();
    assert!(ok, "exchanges did not complete: {stats:?}");
    for (k, other) in [(0, 1), (1, 0)] {
        assert_eq!(
            seen[k].added.get(&ids[other]),
            Some(&vec![addresses[other].clone()]),
            "node {k} learned node {other}'s signed address"
        );
        assert!(
            seen[k]
                .reported
                .get(&ids[other])
                .is_some_and(|a| a.contains(&addresses[other])),
            "node {k} reported node {other}'s address to the swarm"
        );
        assert_eq!(seen[k].invalid, 0);
        assert!(seen[k].blacklisted.is_empty());
        assert_eq!(stats[k].invalid.total(), 0);
        assert_eq!(swarms[k].behaviour().view().blacklist_len(), 0);
    }
    // Node 1 was never told of node 0: it came to know it only from node 0's descriptors.
    println!("{stats:?}");
}

#[tokio::test]
async fn twenty_honest_nodes_from_a_ring_fill_their_views_in_one_component() {
    let (n, c, l) = (20, 8, 3);
    let (mut swarms, addresses) = swarms(n, config(c, l)).await;
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for (i, swarm) in swarms.iter_mut().enumerate() {
        let next = (i + 1) % n;
        swarm
            .behaviour_mut()
            .add_seed(ids[next], addresses[next].clone());
        swarm.behaviour_mut().resume();
    }
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let full = |swarms: &[Swarm<secure::Behaviour>]| -> f64 {
        let held: usize = swarms.iter().map(|s| s.behaviour().view().len()).sum();
        held as f64 / (swarms.len() * c) as f64
    };
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(60),
        |swarms, _| {
            full(swarms) >= 0.75
                && swarms.iter().all(|s| s.behaviour().view().len() >= 3)
                && components(swarms) == 1
        },
    )
    .await;
    let lens: Vec<usize> = swarms.iter().map(|s| s.behaviour().view().len()).collect();
    let completed: usize = seen.iter().map(|s| s.completed).sum();
    let failed: usize = seen.iter().map(|s| s.failed).sum();
    let mut failures: HashMap<String, usize> = HashMap::new();
    for s in &seen {
        for (why, k) in &s.failures {
            *failures.entry(why.clone()).or_default() += k;
        }
    }
    println!(
        "views {lens:?}, {:.0} % full, {} component(s), {completed} exchanges completed, {failed} failed ({failures:?})",
        100.0 * full(&swarms),
        components(&swarms)
    );
    assert!(ok, "views did not fill in one component: {lens:?}");
    // Then the overlay runs on for a while (past a descriptor's lifetime, 2 c gaps): it stays
    // in one piece, views stay filled, nothing invalid is seen.
    let lifetime = Duration::from_millis(2 * c as u64 * GAP_MS);
    let start = tokio::time::Instant::now();
    run_until(&mut swarms, &mut seen, lifetime * 2, |_, _| {
        start.elapsed() >= lifetime + lifetime / 2
    })
    .await;
    let lens: Vec<usize> = swarms.iter().map(|s| s.behaviour().view().len()).collect();
    let completed_later: usize = seen.iter().map(|s| s.completed).sum::<usize>() - completed;
    println!(
        "later: views {lens:?}, {:.0} % full, {} component(s), {completed_later} more exchanges",
        100.0 * full(&swarms),
        components(&swarms)
    );
    assert!(full(&swarms) >= 0.7, "views emptied: {lens:?}");
    assert_eq!(components(&swarms), 1);
    assert!(
        completed_later >= 5 * n,
        "exchanges went on: {completed_later}"
    );
    for (k, s) in seen.iter().enumerate() {
        assert_eq!(s.invalid, 0, "node {k} saw invalid items");
        assert!(s.blacklisted.is_empty(), "node {k} blacklisted someone");
        assert_eq!(swarms[k].behaviour().view().blacklist_len(), 0);
        // Every node it holds a descriptor of came with the address that node signed.
        for h in swarms[k].behaviour().view().holdings() {
            let j = ids.iter().position(|id| id == h.creator).unwrap();
            assert_eq!(h.addresses, &vec![addresses[j].clone()]);
        }
    }
}

/// A node whose seeds fail in three ways: one is not listening (the dial fails), one does not
/// speak `/cyclon/2.0.0` (negotiation fails), one takes the stream and never answers (the
/// request timeout). Each exchange fails with its own error, the core hears of it (no
/// exchange stays in flight), and nothing is counted as invalid.
#[tokio::test]
async fn failed_dials_protocols_and_silent_peers_fail_their_exchanges() {
    let timeout = Duration::from_millis(1500);
    let (mut swarms, _) = swarms(1, config(4, 2).with_request_timeout(timeout)).await;

    // Not listening: a memory address nobody listens on.
    let absent = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let nowhere: Multiaddr = "/memory/1".parse().unwrap();
    // Not speaking the protocol, and silent: raw swarms, the second taking streams and
    // holding them unanswered.
    let mut others = Vec::new();
    for silent in [false, true] {
        let mut swarm = Swarm::new_ephemeral_tokio(|_| libp2p_stream::Behaviour::new());
        let (address, _) = swarm.listen().with_memory_addr_external().await;
        let id = *swarm.local_peer_id();
        let mut incoming = silent.then(|| {
            swarm
                .behaviour()
                .new_control()
                .accept(secure::wire::PROTOCOL_NAME)
                .unwrap()
        });
        tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    _ = swarm.select_next_some() => {}
                    Some((_, stream)) = async {
                        match incoming.as_mut() {
                            Some(incoming) => incoming.next().await,
                            None => futures::future::pending().await,
                        }
                    } => held.push(stream),
                }
            }
        });
        others.push((id, address));
    }
    let node = swarms[0].behaviour_mut();
    node.add_seed(absent, nowhere);
    for (id, address) in &others {
        node.add_seed(*id, address.clone());
    }
    node.resume();
    let mut seen = [Seen::default()];
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(30),
        |_, seen| {
            let failures = &seen[0].failures;
            ["could not connect", "does not support", "timed out"]
                .iter()
                .all(|what| failures.keys().any(|k| k.contains(what)))
        },
    )
    .await;
    assert!(ok, "{:?}", seen[0].failures);
    let stats = *swarms[0].behaviour().stats();
    assert!(stats.exchanges_failed >= 3);
    assert_eq!(stats.invalid.total(), 0);
    assert_eq!(stats.exchanges_completed, 0);
    // Every failed exchange left the core; at most the current round's is in flight.
    assert!(swarms[0].behaviour().exchanges_in_flight() <= 1);
    println!("{:?}", seen[0].failures);
}

/// Under a protocol prefix a node speaks `<prefix>/cyclon/2.0.0` only: it exchanges with a
/// node of its prefix, fails to reach one without (unsupported protocol), and neither of them
/// ever holds the other's descriptor.
#[tokio::test]
async fn a_protocol_prefix_keeps_overlays_apart() {
    let app = config(4, 2).with_protocol_prefix("/app");
    let (mut prefixed, prefixed_addresses) = swarms(2, app).await;
    let (mut plain, plain_addresses) = swarms(1, config(4, 2)).await;
    let plain_id = *plain[0].local_peer_id();
    let ids: Vec<PeerId> = prefixed.iter().map(|s| *s.local_peer_id()).collect();
    let node = prefixed[0].behaviour_mut();
    node.add_seed(ids[1], prefixed_addresses[1].clone());
    node.add_seed(plain_id, plain_addresses[0].clone());
    node.resume();
    prefixed[1].behaviour_mut().resume();
    plain[0]
        .behaviour_mut()
        .add_seed(ids[0], prefixed_addresses[0].clone());
    plain[0].behaviour_mut().resume();
    let mut all: Vec<Swarm<secure::Behaviour>> = prefixed.into_iter().chain(plain).collect();
    let mut seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let ok = run_until(&mut all, &mut seen, Duration::from_secs(30), |_, seen| {
        seen[0].completed >= 2
            && seen[0].added.contains_key(&ids[1])
            && seen[0]
                .failures
                .keys()
                .any(|k| k.contains("does not support"))
            && seen[2]
                .failures
                .keys()
                .any(|k| k.contains("does not support"))
    })
    .await;
    assert!(ok, "{:?} {:?}", seen[0].failures, seen[2].failures);
    assert!(!seen[0].added.contains_key(&plain_id));
    assert!(!seen[2].added.contains_key(&ids[0]));
    assert_eq!(seen[2].completed + seen[2].answered, 0);
    assert!(seen[0].added.contains_key(&ids[1]));
}
