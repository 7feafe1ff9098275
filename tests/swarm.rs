//! Two- and three-peer tests of the behaviour over real swarms (memory transport), driven by
//! `libp2p-swarm-test`.

use std::time::Duration;

use futures::StreamExt;
use libp2p::{
    PeerId, Swarm,
    swarm::{SwarmEvent, dummy},
};
use libp2p_cyclon::{Behaviour, Config, Event, RemovalReason, ShuffleError, StartShuffleError};
use libp2p_swarm_test::SwarmExt;

/// A swarm whose periodic shuffling is paused, listening on a memory address that it
/// advertises as external.
async fn paused_peer() -> (Swarm<Behaviour>, libp2p::Multiaddr) {
    let config = Config::default()
        .with_view_size(4)
        .with_shuffle_length(3)
        .with_request_timeout(Duration::from_secs(5));
    let mut swarm = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), config);
        behaviour.pause();
        behaviour
    });
    let (memory, _tcp) = swarm.listen().with_memory_addr_external().await;
    (swarm, memory)
}

fn knows(swarm: &Swarm<Behaviour>, peer: &PeerId) -> bool {
    swarm.behaviour().view().any(|e| e.peer_id() == peer)
}

/// Drives both swarms for `duration`, dropping their events.
async fn drive_for(a: &mut Swarm<Behaviour>, b: &mut Swarm<Behaviour>, duration: Duration) {
    let quiet = tokio::time::sleep(duration);
    tokio::pin!(quiet);
    loop {
        tokio::select! {
            _ = a.select_next_some() => {}
            _ = b.select_next_some() => {}
            _ = &mut quiet => break,
        }
    }
}

/// Drives both swarms until A completes a shuffle; returns the peer A shuffled with.
async fn next_shuffle_completed(a: &mut Swarm<Behaviour>, b: &mut Swarm<Behaviour>) -> PeerId {
    loop {
        tokio::select! {
            event = a.next_behaviour_event() => {
                if let Event::ShuffleCompleted { peer_id, .. } = event { return peer_id; }
            }
            _ = b.next_swarm_event() => {}
        }
    }
}

#[tokio::test]
async fn two_peers_shuffle_and_the_link_reverses() {
    let (mut a, _) = paused_peer().await;
    let (mut b, b_addr) = paused_peer().await;
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());

    a.behaviour_mut().add_address(&b_id, b_addr);
    let id = a.behaviour_mut().shuffle_now().unwrap();

    let ([bootstrapped, removed, completed], [added, answered]): ([Event; 3], [Event; 2]) =
        libp2p_swarm_test::drive(&mut a, &mut b).await;
    assert!(matches!(bootstrapped, Event::PeerAdded { peer_id, .. } if peer_id == b_id));
    assert!(matches!(
        removed,
        Event::PeerRemoved { peer_id, reason: RemovalReason::ShuffleTarget } if peer_id == b_id
    ));
    assert!(matches!(
        completed,
        Event::ShuffleCompleted { id: done, peer_id, sent: 1, received: 0 } if done == id && peer_id == b_id
    ));
    assert!(matches!(added, Event::PeerAdded { peer_id, .. } if peer_id == a_id));
    assert!(matches!(
        answered,
        Event::ShuffleAnswered { peer_id, received: 1, sent: 0 } if peer_id == a_id
    ));
    // A's link to B became B's link to A, with A's advertised address and age 0.
    assert!(!knows(&a, &b_id));
    let entry = b.behaviour().get(&a_id).expect("B learned A");
    assert_eq!(entry.age(), 0);
    assert_eq!(
        entry.addresses().as_slice(),
        &a.external_addresses().cloned().collect::<Vec<_>>()
    );

    // And back: B shuffles with A, so A knows B again.
    b.behaviour_mut().shuffle_now().unwrap();
    let ([_, _], [_, _]): ([Event; 2], [Event; 2]) = libp2p_swarm_test::drive(&mut b, &mut a).await;
    assert!(knows(&a, &b_id));
    assert!(!knows(&b, &a_id));
}

#[tokio::test]
async fn entries_are_exchanged_both_ways() {
    let (mut a, _) = paused_peer().await;
    let (mut b, b_addr) = paused_peer().await;
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
    let y = PeerId::random();
    a.behaviour_mut().add_address(&b_id, b_addr);
    b.behaviour_mut()
        .add_address(&y, "/memory/1002".parse().unwrap());
    let id = a.behaviour_mut().shuffle_now().unwrap();
    // Run until A's shuffle with B completes.
    let completed = loop {
        tokio::select! {
            event = a.next_behaviour_event() => {
                if let Event::ShuffleCompleted { id: done, received, .. } = event
                    && done == id
                {
                    break received;
                }
            }
            _ = b.next_swarm_event() => {}
        }
    };
    assert_eq!(completed, 1, "B sent its one entry (Y)");
    assert!(knows(&a, &y));
    assert!(knows(&b, &a_id));
    assert!(
        knows(&b, &y),
        "B keeps Y: there was room, nothing had to be replaced"
    );
}

/// A shuffles with a peer that does not speak Cyclon: the shuffle fails with
/// `UnsupportedProtocol` and the peer stays out of A's view.
async fn assert_unsupported_protocol_reported(mut a: Swarm<Behaviour>) {
    let mut other = Swarm::new_ephemeral_tokio(|_| dummy::Behaviour);
    let (other_addr, _) = other.listen().with_memory_addr_external().await;
    let other_id = *other.local_peer_id();
    tokio::spawn(other.loop_on_next());

    a.behaviour_mut().add_address(&other_id, other_addr);
    let id = a.behaviour_mut().shuffle_now().unwrap();
    let failure = loop {
        if let Event::ShuffleFailed {
            id: failed,
            peer_id,
            error,
        } = a.next_behaviour_event().await
        {
            assert_eq!(failed, id);
            assert_eq!(peer_id, other_id);
            break error;
        }
    };
    assert!(
        matches!(failure, ShuffleError::UnsupportedProtocol),
        "{failure:?}"
    );
    assert!(!knows(&a, &other_id));
    assert_eq!(a.behaviour().shuffles_in_flight(), 0);
}

#[tokio::test]
async fn unsupported_protocol_fails_the_shuffle_and_drops_the_peer() {
    let (a, _) = paused_peer().await;
    assert_unsupported_protocol_reported(a).await;
}

/// With optimistic negotiation (multistream-select `V1Lazy`, a swarm setting that saves the
/// initiator a round trip) the request leaves before the peer refuses the protocol; the
/// refusal is still reported as such.
#[tokio::test]
async fn unsupported_protocol_is_reported_with_lazy_negotiation() {
    use libp2p::{
        Transport,
        core::{transport::MemoryTransport, upgrade::Version},
        identity, plaintext, yamux,
    };
    let key = identity::Keypair::generate_ed25519();
    let peer_id = key.public().to_peer_id();
    let transport = MemoryTransport::default()
        .upgrade(Version::V1)
        .authenticate(plaintext::Config::new(&key))
        .multiplex(yamux::Config::default())
        .boxed();
    let mut behaviour = Behaviour::new(peer_id, Config::default());
    behaviour.pause();
    let config = libp2p::swarm::Config::with_tokio_executor()
        .with_substream_upgrade_protocol_override(Version::V1Lazy);
    let a = Swarm::new(transport, behaviour, peer_id, config);
    assert_unsupported_protocol_reported(a).await;
}

#[tokio::test]
async fn unreachable_peer_fails_the_shuffle_and_is_dropped() {
    let (mut a, _) = paused_peer().await;
    let ghost = PeerId::random();
    // Nobody listens on this memory port.
    a.behaviour_mut()
        .add_address(&ghost, "/memory/987654321".parse().unwrap());
    let id = a.behaviour_mut().shuffle_now().unwrap();
    let error = loop {
        if let Event::ShuffleFailed {
            id: failed, error, ..
        } = a.next_behaviour_event().await
        {
            assert_eq!(failed, id);
            break error;
        }
    };
    assert!(matches!(error, ShuffleError::Dial(_)), "{error:?}");
    assert!(!knows(&a, &ghost));
}

#[tokio::test]
async fn shuffle_now_yields_exactly_one_completion_with_its_id() {
    let (mut a, _) = paused_peer().await;
    let (mut b, b_addr) = paused_peer().await;
    let b_id = *b.local_peer_id();
    a.behaviour_mut().add_address(&b_id, b_addr);
    assert!(matches!(
        paused_peer().await.0.behaviour_mut().shuffle_now(),
        Err(StartShuffleError::EmptyView)
    ));

    let id = a.behaviour_mut().shuffle_now().unwrap();
    let mut outcomes = Vec::new();
    // Drive both swarms for a bounded time, well past the exchange.
    let deadline = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = a.select_next_some() => {
                if let SwarmEvent::Behaviour(
                    e @ (Event::ShuffleCompleted { .. } | Event::ShuffleFailed { .. }),
                ) = event
                {
                    outcomes.push(e);
                }
            }
            _ = b.select_next_some() => {}
            _ = &mut deadline => break,
        }
    }
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert!(matches!(outcomes[0], Event::ShuffleCompleted { id: done, .. } if done == id));
    assert_eq!(a.behaviour().stats().shuffles_started, 1);
}

#[tokio::test]
async fn pause_stops_periodic_shuffles_and_resume_restarts_them() {
    let interval = Duration::from_millis(50);
    let config = Config::default()
        .with_view_size(4)
        .with_shuffle_length(2)
        .with_shuffle_interval(interval);
    let mut a = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), config.clone());
        behaviour.pause();
        behaviour
    });
    let mut b = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), config.clone());
        behaviour.pause();
        behaviour
    });
    a.listen().with_memory_addr_external().await;
    let (b_addr, _) = b.listen().with_memory_addr_external().await;
    a.behaviour_mut().add_address(b.local_peer_id(), b_addr);
    assert!(a.behaviour().is_paused());

    // Twenty intervals pass with the view non-empty: no shuffle starts.
    drive_for(&mut a, &mut b, interval * 20).await;
    assert_eq!(a.behaviour().stats().shuffles_started, 0);
    assert_eq!(b.behaviour().stats().inbound_answered, 0);

    // Resumed, A shuffles on its own.
    a.behaviour_mut().resume();
    assert!(!a.behaviour().is_paused());
    let completed = next_shuffle_completed(&mut a, &mut b).await;
    assert_eq!(completed, *b.local_peer_id());
}

#[tokio::test]
async fn a_new_interval_takes_effect_at_once() {
    let config = Config::default()
        .with_view_size(4)
        .with_shuffle_length(2)
        .with_shuffle_interval(Duration::from_secs(100 * 24 * 3600));
    let mut a =
        Swarm::new_ephemeral_tokio(|key| Behaviour::new(key.public().to_peer_id(), config.clone()));
    let (mut b, b_addr) = paused_peer().await;
    a.listen().with_memory_addr_external().await;
    a.behaviour_mut().add_address(b.local_peer_id(), b_addr);

    // A hundred days: the first shuffle comes after a random share of that, so nothing within
    // a second (but for a chance of 1 in 8.6 million).
    drive_for(&mut a, &mut b, Duration::from_secs(1)).await;
    assert_eq!(a.behaviour().stats().shuffles_started, 0);

    // A 100 ms interval: the next shuffle comes within it, without pausing or restarting.
    a.behaviour_mut()
        .set_shuffle_interval(Duration::from_millis(100))
        .unwrap();
    let completed = tokio::time::timeout(
        Duration::from_secs(10),
        next_shuffle_completed(&mut a, &mut b),
    )
    .await
    .expect("a periodic shuffle at the new interval");
    assert_eq!(completed, *b.local_peer_id());
}

#[tokio::test]
async fn add_and_remove_peer() {
    let (mut a, _) = paused_peer().await;
    let a_id = *a.local_peer_id();
    let p = PeerId::random();
    let addr: libp2p::Multiaddr = "/memory/5".parse().unwrap();
    use libp2p_cyclon::AddAddressResult::*;
    assert_eq!(a.behaviour_mut().add_address(&a_id, addr.clone()), Rejected);
    let foreign = addr
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(PeerId::random()));
    assert_eq!(a.behaviour_mut().add_address(&p, foreign), Rejected);
    let own = addr.clone().with(libp2p::multiaddr::Protocol::P2p(p));
    assert_eq!(a.behaviour_mut().add_address(&p, own), PeerAdded);
    assert_eq!(a.behaviour_mut().add_address(&p, addr.clone()), Unchanged);
    assert_eq!(
        a.behaviour_mut()
            .add_address(&p, "/memory/6".parse().unwrap()),
        AddressAdded
    );
    assert_eq!(a.behaviour().get(&p).unwrap().addresses().len(), 2);
    for _ in 0..3 {
        a.behaviour_mut()
            .add_address(&PeerId::random(), addr.clone());
    }
    assert_eq!(a.behaviour().view_len(), 4);
    assert_eq!(
        a.behaviour_mut()
            .add_address(&PeerId::random(), addr.clone()),
        ViewFull
    );
    assert!(a.behaviour_mut().remove_peer(&p));
    assert!(!a.behaviour_mut().remove_peer(&p));
    assert_eq!(a.behaviour().view_len(), 3);
}

#[tokio::test]
async fn no_periodic_shuffle_before_there_is_an_address_to_advertise() {
    let interval = Duration::from_millis(50);
    let config = Config::default()
        .with_view_size(4)
        .with_shuffle_length(2)
        .with_shuffle_interval(interval);
    let (mut b, b_addr) = paused_peer().await;
    let b_id = *b.local_peer_id();
    // A is not listening yet: it has nothing to advertise.
    let mut a = Swarm::new_ephemeral_tokio(|key| Behaviour::new(key.public().to_peer_id(), config));
    a.behaviour_mut().add_address(&b_id, b_addr);
    drive_for(&mut a, &mut b, interval * 20).await;
    assert_eq!(a.behaviour().stats().shuffles_started, 0);
    assert_eq!(a.behaviour().view_len(), 1, "B is still known");

    // Once A listens, its periodic shuffles start and B learns A.
    a.listen_on("/memory/0".parse().unwrap()).unwrap();
    let a_id = *a.local_peer_id();
    assert_eq!(next_shuffle_completed(&mut a, &mut b).await, b_id);
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    while !knows(&b, &a_id) {
        tokio::select! {
            _ = b.select_next_some() => {}
            _ = a.select_next_some() => {}
            _ = &mut deadline => panic!("B did not learn A"),
        }
    }
}
