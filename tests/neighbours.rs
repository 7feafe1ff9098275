//! The neighbour set over real swarms (memory transport): each peer keeps links to at most `D`
//! peers drawn from its view, links are symmetric and keep their connection open, a link is
//! not replaced while it stands (the views keep changing), and a dead neighbour is replaced;
//! connections dialled for shuffles close once the shuffles ended, when asked to.

mod support;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::StreamExt;
use libp2p::{
    PeerId, Swarm, Transport,
    core::{multiaddr::Protocol, transport::MemoryTransport, upgrade},
    identity::Keypair,
    swarm::SwarmEvent,
};
use libp2p_cyclon::{Behaviour, Config, Event};
use support::{Network, ring};

const NODES: usize = 12;
const DEGREE: usize = 3;
const INTERVAL: Duration = Duration::from_millis(150);

fn config() -> Config {
    Config::default()
        .with_view_size(6)
        .with_shuffle_length(3)
        .with_shuffle_interval(INTERVAL)
        .with_request_timeout(Duration::from_secs(2))
        .with_neighbours(DEGREE)
}

/// Each live peer's neighbours.
fn links(net: &Network) -> HashMap<PeerId, HashSet<PeerId>> {
    net.live()
        .map(|s| {
            let neighbours = s.behaviour().neighbours().iter().copied().collect();
            (*s.local_peer_id(), neighbours)
        })
        .collect()
}

/// Links are symmetric, at most D per peer, and each stands on an open connection.
fn assert_links_sane(net: &Network) {
    let links = links(net);
    for swarm in net.live() {
        let own = swarm.local_peer_id();
        let mine = &links[own];
        assert!(mine.len() <= DEGREE, "{own} has {} neighbours", mine.len());
        assert!(!mine.contains(own));
        for peer in mine {
            assert!(
                swarm.is_connected(peer),
                "{own}: no connection to neighbour {peer}"
            );
            assert!(
                links.get(peer).is_some_and(|theirs| theirs.contains(own)),
                "{own} counts {peer} as a neighbour, not the other way round"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_keep_a_small_stable_set_of_connected_neighbours() {
    let mut net = ring(NODES, INTERVAL, |_, key| {
        Behaviour::new(key.public().to_peer_id(), config())
    })
    .await;
    // Until every peer has a neighbour and the links are symmetric. (Every peer reaching D is
    // not guaranteed: the links a peer can still make depend on whether peers of its view have
    // room; a peer with none asks with priority, which a full peer grants.)
    let symmetric = |net: &Network| {
        let links = links(net);
        links.iter().all(|(peer, mine)| {
            !mine.is_empty()
                && mine
                    .iter()
                    .all(|other| links.get(other).is_some_and(|l| l.contains(peer)))
        })
    };
    let rounds = net.run_until(60, symmetric).await;
    // A few more rounds to fill up, then the links must stand.
    net.run_until(200, |n| n.min_rounds() >= rounds + 5).await;
    let before = links(&net);
    let mean = before.values().map(HashSet::len).sum::<usize>() as f64 / NODES as f64;
    println!(
        "neighbour sets symmetric after {rounds} rounds; {mean:.2} neighbours per peer (D = {DEGREE})"
    );
    let peers: Vec<usize> = net.live().map(|s| s.network_info().num_peers()).collect();
    println!("connected peers per swarm: {peers:?}");
    assert!(mean >= (DEGREE - 1) as f64, "{mean} neighbours per peer");
    assert_links_sane(&net);

    // The views keep changing; the links stand (a peer still short of D may gain one).
    net.run_until(200, |n| n.min_rounds() >= rounds + 20).await;
    let after = links(&net);
    for (peer, mine) in &before {
        assert!(
            mine.is_subset(&after[peer]),
            "a standing link of {peer} was replaced"
        );
    }
    assert_links_sane(&net);

    // A neighbour dies: its peers take the link down, and those left with room find another
    // when a live peer they are not linked to has room too. Whether one has depends on the
    // links the run drew: when every peer was full, the only peers with room are the orphans
    // themselves, and if they are all linked to each other (the victim and its three
    // neighbours a complete group of four) no new link can be made; then only the drop is
    // checked.
    let victim = net.ids[0];
    let orphans: Vec<PeerId> = after[&victim].iter().copied().collect();
    assert!(!orphans.is_empty());
    net.swarms[0] = None;
    let room = |p: &PeerId| after[p].iter().filter(|q| **q != victim).count() < DEGREE;
    let replaceable = orphans.iter().any(|o| {
        after
            .keys()
            .any(|q| q != o && *q != victim && room(q) && !after[o].contains(q))
    });
    let dropped: usize = orphans.iter().map(|o| after[o].len() - 1).sum();
    let replaced = net
        .run_until(60, |n| {
            let links = links(n);
            let now: usize = orphans.iter().map(|o| links[o].len()).sum();
            orphans.iter().all(|o| !links[o].contains(&victim)) && (!replaceable || now > dropped)
        })
        .await;
    if replaceable {
        println!("a dead neighbour's link dropped and replaced within {replaced} rounds");
    } else {
        println!(
            "a dead neighbour's link dropped within {replaced} rounds; no replacement could be made (its neighbours, all linked to each other, were the only peers with room)"
        );
    }
    assert_links_sane(&net);
}

/// Without the setting no neighbour link is made, and the protocol is not spoken.
#[tokio::test]
async fn without_the_setting_there_are_no_neighbours() {
    let config = Config::default();
    assert_eq!(config.neighbours(), 0);
    assert!(
        !config
            .protocol_names()
            .iter()
            .any(|p| p.as_ref().contains("neighbour"))
    );
    let with = config.with_neighbours(2);
    assert_eq!(
        with.protocol_names().last().map(|p| p.as_ref().to_owned()),
        Some("/cyclon/neighbour/1.0.0".to_owned())
    );
    let behaviour = Behaviour::new(PeerId::random(), Config::default());
    assert!(behaviour.neighbours().is_empty());
    let _ = Event::NeighbourUp {
        peer_id: PeerId::random(),
    };
}

/// A swarm over the memory transport that never closes an idle connection on its own (an hour),
/// so a connection that closes was closed by the behaviour.
fn patient_swarm(config: Config) -> Swarm<Behaviour> {
    let key = Keypair::generate_ed25519();
    let peer_id = key.public().to_peer_id();
    let transport = MemoryTransport::default()
        .upgrade(upgrade::Version::V1)
        .authenticate(libp2p::plaintext::Config::new(&key))
        .multiplex(libp2p::yamux::Config::default())
        .boxed();
    Swarm::new(
        transport,
        Behaviour::new(peer_id, config),
        peer_id,
        libp2p::swarm::Config::with_tokio_executor()
            .with_idle_connection_timeout(Duration::from_secs(3600)),
    )
}

/// Runs `shuffles` shuffles of a peer with a paused one, one after the other, and returns the
/// connections the first peer dialled and the ones it closed. With `close`, it waits after each
/// shuffle for its connection to close.
async fn shuffle_with_a_quiet_peer(close: bool, shuffles: usize) -> (usize, usize) {
    let config = Config::default()
        .with_view_size(6)
        .with_shuffle_length(3)
        .with_shuffle_interval(Duration::from_secs(3600))
        .with_close_shuffle_connections(close);
    let mut a = patient_swarm(config.clone());
    let mut b = patient_swarm(config);
    b.behaviour_mut().pause();
    b.listen_on(Protocol::Memory(0).into()).unwrap();
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = b.select_next_some().await {
            break address;
        }
    };
    let b_id = *b.local_peer_id();
    // Plain Cyclon takes the target out of the view and the quiet peer sends nothing back:
    // it is added again before each shuffle.
    let again = |a: &mut Swarm<Behaviour>| {
        a.behaviour_mut().add_address(&b_id, address.clone());
        a.behaviour_mut().shuffle_now().expect("b is in the view");
    };
    let (mut dialled, mut closed, mut completed) = (0, 0, 0);
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    again(&mut a);
    loop {
        tokio::select! {
            event = a.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. }
                    if peer_id == b_id && endpoint.is_dialer() => dialled += 1,
                SwarmEvent::ConnectionClosed { peer_id, endpoint, .. }
                    if peer_id == b_id && endpoint.is_dialer() =>
                {
                    closed += 1;
                    if close && closed == completed && completed < shuffles {
                        again(&mut a);
                    }
                }
                SwarmEvent::Behaviour(Event::ShuffleCompleted { peer_id, .. }) if peer_id == b_id => {
                    completed += 1;
                    if !close && completed < shuffles {
                        again(&mut a);
                    }
                }
                _ => {}
            },
            _ = b.select_next_some() => {}
            _ = &mut deadline => panic!("{completed} shuffles completed, {closed} connections closed"),
        }
        let done = if close {
            closed == shuffles
        } else {
            completed == shuffles
        };
        if done {
            return (dialled, closed);
        }
    }
}

/// With `with_close_shuffle_connections`, the connection a shuffle dialled closes once the
/// shuffle ended, and the next shuffle dials again; without it, the connection stays and the
/// next shuffle uses it.
#[tokio::test]
async fn connections_dialled_for_shuffles_close_once_their_shuffles_ended() {
    assert_eq!(shuffle_with_a_quiet_peer(true, 3).await, (3, 3));
    assert_eq!(shuffle_with_a_quiet_peer(false, 3).await, (1, 0));
}
