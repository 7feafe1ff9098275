//! A network of Cyclon swarms driven together ([`Network`]), shared by the integration tests
//! that run many real swarms.
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet, VecDeque},
    task::Poll,
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    Multiaddr, PeerId, Swarm,
    identity::Keypair,
    swarm::{NetworkBehaviour, SwarmEvent},
};
use libp2p_cyclon::Behaviour;
use libp2p_swarm_test::SwarmExt;

/// Cyclon swarms driven together; a `None` is a peer that was killed.
pub struct Network {
    pub ids: Vec<PeerId>,
    /// Each peer's memory-transport listen address.
    pub addresses: Vec<Multiaddr>,
    pub swarms: Vec<Option<Swarm<Behaviour>>>,
    /// The shuffle interval: conditions are checked this often.
    pub interval: Duration,
}

impl Network {
    pub fn live(&self) -> impl Iterator<Item = &Swarm<Behaviour>> {
        self.swarms.iter().flatten()
    }

    /// Shuffles started by the live node that started the fewest.
    pub fn min_rounds(&self) -> u64 {
        self.live()
            .map(|s| s.behaviour().stats().shuffles_started)
            .min()
            .unwrap_or(0)
    }

    /// Polls every live swarm until `done` holds (checked every interval) or `max_rounds`
    /// rounds pass. Returns the rounds it took.
    pub async fn run_until(
        &mut self,
        max_rounds: u64,
        mut done: impl FnMut(&Network) -> bool,
    ) -> u64 {
        let start = self.min_rounds();
        let mut check = tokio::time::interval(self.interval);
        // A hard wall-clock bound as well, in case shuffles stopped altogether.
        let give_up = tokio::time::sleep(self.interval * (max_rounds as u32) * 3);
        tokio::pin!(give_up);
        loop {
            tokio::select! {
                _ = poll_all(self.swarms.iter_mut().flatten().collect()) => {}
                _ = check.tick() => {
                    let rounds = self.min_rounds() - start;
                    if done(self) {
                        return rounds;
                    }
                    assert!(rounds <= max_rounds, "not done within {max_rounds} rounds");
                }
                _ = &mut give_up => panic!("not done within the time bound"),
            }
        }
    }
}

/// `n` peers (memory transport), peer `i` made by `behaviour(i, key)`, bootstrapped as a ring
/// (each knows the next) and shuffling every `interval`.
pub async fn ring(
    n: usize,
    interval: Duration,
    behaviour: impl Fn(usize, Keypair) -> Behaviour,
) -> Network {
    let (swarms, addresses) = ring_of(n, behaviour, |b| b, false).await;
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    Network {
        ids,
        addresses,
        swarms: swarms.into_iter().map(Some).collect(),
        interval,
    }
}

/// `n` swarms (memory transport) of behaviour `B`, swarm `i` made by `behaviour(i, key)`, whose
/// Cyclon behaviour (`cyclon(&mut B)`) is paused until every swarm listens, then bootstrapped
/// as a ring: each knows the next (as a seed of the rejoin rule when `seeds`). Returns the
/// swarms and their listen addresses.
pub async fn ring_of<B>(
    n: usize,
    behaviour: impl Fn(usize, Keypair) -> B,
    cyclon: impl Fn(&mut B) -> &mut Behaviour,
    seeds: bool,
) -> (Vec<Swarm<B>>, Vec<Multiaddr>)
where
    B: NetworkBehaviour + Send,
    B::ToSwarm: std::fmt::Debug,
{
    let mut swarms = Vec::new();
    let mut addresses = Vec::new();
    for i in 0..n {
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let mut behaviour = behaviour(i, key);
            cyclon(&mut behaviour).pause(); // until every peer listens
            behaviour
        });
        let (memory, _tcp) = swarm.listen().with_memory_addr_external().await;
        addresses.push(memory);
        swarms.push(swarm);
    }
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for (i, swarm) in swarms.iter_mut().enumerate() {
        let next = (i + 1) % n;
        let cyclon = cyclon(swarm.behaviour_mut());
        if seeds {
            cyclon.add_seed(&ids[next], addresses[next].clone());
        } else {
            cyclon.add_address(&ids[next], addresses[next].clone());
        }
        cyclon.resume();
    }
    (swarms, addresses)
}

/// Polls the given swarms; resolves once at least one of them made progress.
pub async fn poll_all<B: NetworkBehaviour>(mut swarms: Vec<&mut Swarm<B>>) {
    futures::future::poll_fn(|cx| {
        let mut progressed = false;
        for swarm in swarms.iter_mut() {
            for _ in 0..64 {
                match swarm.poll_next_unpin(cx) {
                    Poll::Ready(Some(_)) => progressed = true,
                    _ => break,
                }
            }
        }
        if progressed {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// Weakly connected components of the overlay the swarms' Cyclon views form.
pub fn components<B: NetworkBehaviour>(
    swarms: &[Swarm<B>],
    cyclon: impl Fn(&B) -> &Behaviour,
) -> usize {
    components_by(swarms, |b| {
        cyclon(b).view().map(|entry| *entry.peer_id()).collect()
    })
}

/// Weakly connected components of the overlay in which each swarm links to the peers `links`
/// names for its behaviour.
pub fn components_by<B: NetworkBehaviour>(
    swarms: &[Swarm<B>],
    links_of: impl Fn(&B) -> Vec<PeerId>,
) -> usize {
    let mut links: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
    for swarm in swarms {
        let from = *swarm.local_peer_id();
        links.entry(from).or_default();
        for to in links_of(swarm.behaviour()) {
            links.entry(from).or_default().push(to);
            links.entry(to).or_default().push(from);
        }
    }
    let mut seen: HashSet<PeerId> = HashSet::new();
    let mut count = 0;
    for start in links.keys() {
        if !seen.insert(*start) {
            continue;
        }
        count += 1;
        let mut queue = VecDeque::from([*start]);
        while let Some(peer) = queue.pop_front() {
            for next in &links[&peer] {
                if seen.insert(*next) {
                    queue.push_back(*next);
                }
            }
        }
    }
    count
}

/// Polls every swarm, handing each of its events to `record` with what is kept for that
/// swarm, until `done` holds (checked every `check`) or `limit` passes; returns whether `done`
/// held.
pub async fn run_until<B: NetworkBehaviour, S>(
    swarms: &mut [Swarm<B>],
    seen: &mut [S],
    record: impl Fn(&mut S, SwarmEvent<B::ToSwarm>),
    check: Duration,
    limit: Duration,
    mut done: impl FnMut(&[Swarm<B>], &[S]) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    let mut check = tokio::time::interval(check);
    loop {
        let progress = futures::future::poll_fn(|cx| {
            let mut progressed = false;
            for (swarm, seen) in swarms.iter_mut().zip(seen.iter_mut()) {
                for _ in 0..64 {
                    match swarm.poll_next_unpin(cx) {
                        Poll::Ready(Some(event)) => {
                            record(seen, event);
                            progressed = true;
                        }
                        _ => break,
                    }
                }
            }
            if progressed {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        tokio::select! {
            _ = progress => {}
            _ = check.tick() => {
                if done(swarms, seen) {
                    return true;
                }
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
            }
        }
    }
}
