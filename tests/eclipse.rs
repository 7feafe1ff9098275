//! The eclipse attack over real swarms (memory transport): 20 honest `Behaviour`s converge,
//! then 4 malicious peers that answer every shuffle with entries naming only themselves
//! (age 0) and push such shuffles to every honest peer as often as the honest peers' rate
//! limit lets them join in. Without a defence the malicious share of honest views grows far
//! beyond their share of the peers; with `Defence::Seeded` it stays within the simulator's
//! bound.

use std::{collections::HashSet, time::Duration};

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Swarm,
    peer_store::{self, memory_store::MemoryStore},
    swarm::NetworkBehaviour,
};
use libp2p_cyclon::{Behaviour, Config, Defence, PROTOCOL_NAME, SeededParams};
use libp2p_swarm_test::SwarmExt;

mod support;
mod wire;
use support::{Network, ring};
use wire::{entry, frame, proto, read_frame, request, response};

const HONEST: usize = 20;
const MALICIOUS: usize = 4;
const VIEW_SIZE: usize = 4;
const SHUFFLE_LENGTH: usize = 2;
const INTERVAL: Duration = Duration::from_millis(200);
/// Rounds (shuffles per honest peer) the honest peers run before the attack, at most.
const MAX_ROUNDS_TO_CONVERGE: u64 = 40;
/// Rounds the defended network runs under attack.
const ROUNDS: u64 = 40;
/// Generous bound on the rounds the undefended network may take to be taken over.
const MAX_ROUNDS_TO_TAKE_OVER: u64 = 60;

/// The min-wise bound the simulator confirms (docs/simulation.md): a node that has heard of
/// every peer keeps a malicious peer in a slot with probability K / (K + H - 1).
fn bound() -> f64 {
    MALICIOUS as f64 / (MALICIOUS + HONEST - 1) as f64
}

fn config(defence: Defence) -> Config {
    Config::default()
        .with_view_size(VIEW_SIZE)
        .with_shuffle_length(SHUFFLE_LENGTH)
        .with_shuffle_interval(INTERVAL)
        .with_request_timeout(Duration::from_secs(1))
        .with_defence(defence)
}

/// The seeded defence scaled to 20 peers: 2 extra entries per message (twice `l`), news and
/// a filter small enough to wrap around during the test.
fn seeded() -> Defence {
    Defence::Seeded(
        SeededParams::default()
            .with_extra_entries(2)
            .with_news(8)
            .with_seen_memory(64),
    )
}

/// Raw `/cyclon/1.0.0` streams, plus an address book to dial the honest peers.
#[derive(NetworkBehaviour)]
struct Attacker {
    streams: libp2p_stream::Behaviour,
    addresses: peer_store::Behaviour<MemoryStore>,
}

/// Starts a malicious peer: it answers every shuffle with `entries` (all the malicious peers,
/// age 0) and pushes its own fresh entry plus the others to every honest peer once per refill
/// period of their rate limit.
fn attack(mut swarm: Swarm<Attacker>, entries: Vec<proto::Entry>, honest: &[(PeerId, Multiaddr)]) {
    let own = swarm.local_peer_id().to_bytes();
    for (peer, address) in honest {
        swarm.add_peer_address(*peer, address.clone());
    }
    let mut control = swarm.behaviour().streams.new_control();
    let mut incoming = control.accept(PROTOCOL_NAME).unwrap();
    let answer = frame(&response(entries.clone()));
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                if read_frame(&mut stream).await.is_ok() {
                    let _ = stream.write_all(&answer).await;
                }
                let _ = stream.close().await;
            });
        }
    });
    // Own entry first, as an initiator sends it.
    let mut pushed = entries;
    let first = pushed.iter().position(|e| e.peer_id == own).unwrap();
    pushed.swap(0, first);
    let push = frame(&request(pushed));
    let refill = Config::default()
        .with_shuffle_interval(INTERVAL)
        .inbound_rate_limit()
        .unwrap()
        .refill_every;
    for &(peer, _) in honest {
        let (mut control, push) = (control.clone(), push.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(mut stream) = control.open_stream(peer, PROTOCOL_NAME).await {
                    let _ = stream.write_all(&push).await;
                    let _ = read_frame(&mut stream).await;
                    let _ = stream.close().await;
                }
                tokio::time::sleep(refill).await;
            }
        });
    }
    tokio::spawn(swarm.loop_on_next());
}

/// The honest peers, bootstrapped as a ring and converged to full views, then attacked by the
/// malicious peers.
async fn network(defence: Defence) -> (Network, HashSet<PeerId>) {
    let mut net = ring(HONEST, INTERVAL, |_, key| {
        Behaviour::new(key.public().to_peer_id(), config(defence))
    })
    .await;
    let honest: Vec<(PeerId, Multiaddr)> = net
        .ids
        .iter()
        .copied()
        .zip(net.addresses.iter().cloned())
        .collect();
    let mut attackers = Vec::new();
    let mut entries = Vec::new();
    for _ in 0..MALICIOUS {
        let mut swarm = Swarm::new_ephemeral_tokio(|_| Attacker {
            streams: libp2p_stream::Behaviour::new(),
            addresses: peer_store::Behaviour::new(MemoryStore::new(Default::default())),
        });
        let (memory, _tcp) = swarm.listen().with_memory_addr_external().await;
        entries.push(entry(swarm.local_peer_id(), &[memory], 0));
        attackers.push(swarm);
    }
    let malicious = attackers.iter().map(|s| *s.local_peer_id()).collect();
    net.run_until(MAX_ROUNDS_TO_CONVERGE, |net| {
        net.live().all(|s| s.behaviour().view_len() == VIEW_SIZE) && net.min_rounds() >= 10
    })
    .await;
    for swarm in attackers {
        attack(swarm, entries.clone(), &honest);
    }
    (net, malicious)
}

/// The malicious share of the honest peers' view entries.
fn malicious_share(net: &Network, malicious: &HashSet<PeerId>) -> f64 {
    let (mut all, mut bad) = (0, 0);
    for swarm in net.live() {
        for entry in swarm.behaviour().view() {
            all += 1;
            bad += usize::from(malicious.contains(entry.peer_id()));
        }
    }
    bad as f64 / all.max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_defence_the_attackers_take_over_honest_views() {
    let (mut net, malicious) = network(Defence::Off).await;
    let rounds = net
        .run_until(MAX_ROUNDS_TO_TAKE_OVER, |net| {
            malicious_share(net, &malicious) >= 2.0 * bound().max(0.35)
        })
        .await;
    let share = malicious_share(&net, &malicious);
    println!(
        "taken over: {:.0} % of honest slots after {rounds} rounds",
        100.0 * share
    );
    let fair = MALICIOUS as f64 / (MALICIOUS + HONEST) as f64;
    assert!(share > 3.0 * fair, "far beyond their share of the peers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_seeded_defence_the_attackers_stay_within_the_bound() {
    let (mut net, malicious) = network(seeded()).await;
    let mut shares = Vec::new();
    let start = net.min_rounds();
    net.run_until(ROUNDS + 10, |net| {
        shares.push(malicious_share(net, &malicious));
        net.min_rounds() - start >= ROUNDS
    })
    .await;
    // Every honest peer heard of every malicious one (they push to all), and the honest
    // views are full.
    assert!(
        net.live().all(|s| s.behaviour().view_len() == VIEW_SIZE),
        "views are full"
    );
    let last = &shares[shares.len() - shares.len() / 4..];
    let mean = last.iter().sum::<f64>() / last.len() as f64;
    println!(
        "malicious share over the last quarter: {:.0} % (bound {:.0} %)",
        100.0 * mean,
        100.0 * bound()
    );
    assert!(
        mean <= 2.0 * bound(),
        "mean share {mean:.3} above twice the bound {:.3}",
        bound()
    );
    assert!(
        net.live().all(|s| s
            .behaviour()
            .view()
            .any(|e| !malicious.contains(e.peer_id()))),
        "no honest peer is eclipsed"
    );
}
