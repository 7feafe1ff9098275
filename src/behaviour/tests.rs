//! Unit tests of the behaviour: events against the view, records, snapshots, probes and
//! run-time settings.

use std::task::{Context, Poll};

use futures::task::noop_waker_ref;

use super::*;
use crate::snapshot::SnapshotError;

fn entry(peer: PeerId, age: u32) -> ViewEntry {
    let addresses = vec!["/ip4/127.0.0.1/tcp/4001".parse().unwrap()];
    ViewEntry::new(peer, PeerAddresses::unverified(addresses), age)
}

/// The behaviour's events so far, as the view changes they report.
fn view_events(behaviour: &mut Behaviour) -> Vec<(PeerId, bool)> {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut changes = Vec::new();
    while let Poll::Ready(event) = behaviour.poll(&mut cx) {
        match event {
            ToSwarm::GenerateEvent(Event::PeerAdded { peer_id, .. }) => {
                changes.push((peer_id, true))
            }
            ToSwarm::GenerateEvent(Event::PeerRemoved { peer_id, .. }) => {
                changes.push((peer_id, false))
            }
            _ => {}
        }
    }
    changes
}

fn respond(behaviour: &mut Behaviour, from: PeerId, id: ShuffleId, entries: Vec<ViewEntry>) {
    behaviour.on_connection_handler_event(
        from,
        ConnectionId::new_unchecked(0),
        OutEvent(HandlerEvent::ShuffleResponse {
            id,
            entries,
            invalid: Default::default(),
            version: crate::protocol::Version::V1_1,
        }),
    );
}

/// A peer sent in a request, lost meanwhile and returned in the reply: the events still
/// replay to the view.
#[test]
fn events_replay_to_the_view_when_a_sent_peer_returns() {
    let [q, a, x, s, y] = std::array::from_fn(|_| PeerId::random());
    let config = Config::default().with_view_size(2).with_shuffle_length(2);
    let mut behaviour = Behaviour::new(PeerId::random(), config);
    behaviour.pause();
    let mut replayed = std::collections::HashSet::new();
    let mut replay = |behaviour: &mut Behaviour| {
        for (peer, added) in view_events(behaviour) {
            if added {
                assert!(replayed.insert(peer), "added a peer already in the view");
            } else {
                assert!(replayed.remove(&peer), "removed a peer not in the view");
            }
        }
        let view: std::collections::HashSet<PeerId> =
            behaviour.view().map(|e| *e.peer_id()).collect();
        assert_eq!(replayed, view, "the events do not replay to the view");
    };

    // View {a (old), x}: the next shuffle targets a and sends x.
    behaviour.add_address(&q, "/ip4/127.0.0.1/tcp/1".parse().unwrap());
    let first = behaviour.shuffle_now().unwrap();
    respond(&mut behaviour, q, first, vec![entry(a, 10), entry(x, 0)]);
    replay(&mut behaviour);
    let second = behaviour.shuffle_now().unwrap();
    assert!(behaviour.get(&a).is_none(), "a, the oldest, is the target");
    // x leaves meanwhile, s comes in: one slot is free.
    assert!(behaviour.remove_peer(&x));
    behaviour.add_address(&s, "/ip4/127.0.0.1/tcp/2".parse().unwrap());
    replay(&mut behaviour);

    // a returns x and y: x fills the free slot; the x we sent is gone, so y finds no
    // sent entry to replace (the returned x is a new entry, not the one we sent).
    respond(&mut behaviour, a, second, vec![entry(x, 0), entry(y, 0)]);
    replay(&mut behaviour);
    assert!(behaviour.get(&x).is_some());
    assert!(behaviour.get(&y).is_none());
}

#[test]
fn only_verified_addresses_reach_the_swarm_when_records_are_required() {
    let unverified: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
    let signed: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
    for strict in [false, true] {
        let config = Config::default()
            .with_view_size(4)
            .with_shuffle_length(2)
            .with_require_signed_records(strict);
        let mut behaviour = Behaviour::new(PeerId::random(), config);
        behaviour.pause();
        let q = PeerId::random();
        behaviour.add_address(&q, unverified.clone());
        let id = behaviour.shuffle_now().unwrap();
        let key = Keypair::generate_ed25519();
        let v = key.public().to_peer_id();
        let record = SignedPeerRecord::sign(&key, std::slice::from_ref(&signed), 1).unwrap();
        let payload = PeerAddresses::signed(record, vec![signed.clone()]);
        respond(&mut behaviour, q, id, vec![ViewEntry::new(v, payload, 0)]);

        let mut cx = Context::from_waker(noop_waker_ref());
        let (mut reported, mut added) = (Vec::new(), Vec::new());
        while let Poll::Ready(event) = behaviour.poll(&mut cx) {
            match event {
                ToSwarm::NewExternalAddrOfPeer { peer_id, address } => {
                    reported.push((peer_id, address))
                }
                ToSwarm::GenerateEvent(Event::PeerAdded {
                    peer_id, verified, ..
                }) => added.push((peer_id, verified)),
                _ => {}
            }
        }
        assert_eq!(added, vec![(q, false), (v, true)]);
        let mut expected = vec![(v, signed.clone())];
        if !strict {
            expected.insert(0, (q, unverified.clone()));
        }
        assert_eq!(reported, expected, "strict: {strict}");
    }
}

#[test]
fn a_behaviour_with_a_key_signs_its_own_entry() {
    let key = Keypair::generate_ed25519();
    let mut behaviour = Behaviour::with_keypair(key.clone(), Config::default());
    assert_eq!(behaviour.local_peer_id(), &key.public().to_peer_id());
    assert!(behaviour.local_record().is_none());
    let address: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
    behaviour.on_swarm_event(FromSwarm::NewListenAddr(
        libp2p_swarm::behaviour::NewListenAddr {
            listener_id: libp2p_core::transport::ListenerId::next(),
            addr: &address,
        },
    ));
    let record = behaviour.local_record().expect("signed").clone();
    let own = behaviour.local.payload();
    assert_eq!(own.signed_record(), Some(&record));
    let mut unkeyed = Behaviour::new(PeerId::random(), Config::default());
    unkeyed.on_swarm_event(FromSwarm::NewListenAddr(
        libp2p_swarm::behaviour::NewListenAddr {
            listener_id: libp2p_core::transport::ListenerId::next(),
            addr: &address,
        },
    ));
    assert_eq!(unkeyed.local.payload().to_vec(), vec![address]);
    assert!(!unkeyed.local.payload().is_verified());
}

#[test]
fn a_view_exported_and_imported_comes_back_with_its_ages() {
    let local = PeerId::random();
    let mut behaviour = Behaviour::new(local, Config::default());
    behaviour.pause();
    let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
    for peer in &peers {
        behaviour.add_address(peer, "/ip4/10.0.0.1/tcp/1".parse().unwrap());
    }
    let first = behaviour.shuffle_now().unwrap(); // ages the other two
    respond(&mut behaviour, peers[0], first, Vec::new());
    let saved = behaviour.export_view();

    let mut restarted = Behaviour::new(local, Config::default());
    let imported = restarted.import_view(&saved).unwrap();
    assert_eq!(imported.added, behaviour.view_len());
    let ages = |b: &Behaviour| {
        let mut v: Vec<(PeerId, u32)> = b.view().map(|e| (*e.peer_id(), e.age())).collect();
        v.sort();
        v
    };
    assert_eq!(ages(&restarted), ages(&behaviour));
    assert_eq!(
        view_events(&mut restarted).len(),
        imported.added,
        "one PeerAdded per entry"
    );
    // Again: nothing new. Another peer's snapshot or garbage: an error, nothing changed.
    assert_eq!(
        restarted.import_view(&saved).unwrap().not_taken,
        imported.added
    );
    let mut other = Behaviour::new(PeerId::random(), Config::default());
    assert!(matches!(
        other.import_view(&saved),
        Err(SnapshotError::ForeignPeer { .. })
    ));
    assert!(other.import_view(b"garbage").is_err());
    assert_eq!(other.view_len(), 0);
}

#[test]
fn a_probe_takes_nobody_out_of_the_view() {
    use crate::view::Rejoin;
    let config = Config::default().with_rejoin(Rejoin::new(4, 1));
    let mut behaviour = Behaviour::new(PeerId::random(), config);
    behaviour.pause();
    let seed = PeerId::random();
    assert_eq!(
        behaviour.add_seed(&seed, "/ip4/10.0.0.1/tcp/1".parse().unwrap()),
        AddAddressResult::PeerAdded
    );
    assert_eq!(behaviour.seeds().count(), 1);
    let id = behaviour.shuffle_now().unwrap();
    behaviour.fail_shuffle(id, ShuffleError::Timeout);
    assert_eq!(behaviour.view_len(), 0);
    assert_eq!(behaviour.lost_peers().count(), 0, "a seed is not lost");
    view_events(&mut behaviour);
    // No address to advertise: no probe; with one, the empty view probes the seed.
    behaviour.periodic_shuffle();
    assert_eq!(behaviour.stats().probes_started, 0);
    behaviour
        .local
        .on_swarm_event(&FromSwarm::NewListenAddr(libp2p_swarm::NewListenAddr {
            listener_id: libp2p_core::transport::ListenerId::next(),
            addr: &"/ip4/10.0.0.2/tcp/1".parse().unwrap(),
        }));
    behaviour.periodic_shuffle();
    assert_eq!(behaviour.stats().probes_started, 1);
    assert!(
        view_events(&mut behaviour).is_empty(),
        "no PeerRemoved for a probe's target"
    );
    assert_eq!(behaviour.shuffles_in_flight(), 1);
}

#[test]
fn the_interval_changes_at_run_time() {
    let mut behaviour = Behaviour::new(PeerId::random(), Config::default());
    let error = behaviour.set_shuffle_interval(Duration::ZERO).unwrap_err();
    assert!(matches!(error, ConfigError::ZeroShuffleInterval));
    behaviour.pause();
    behaviour
        .set_shuffle_interval(Duration::from_millis(500))
        .unwrap();
    assert!(behaviour.is_paused(), "a new interval does not resume");
    assert_eq!(
        behaviour.config().shuffle_interval(),
        Duration::from_millis(500)
    );
    let limit = behaviour.config().inbound_rate_limit().unwrap();
    assert_eq!(limit.refill_every, Duration::from_millis(250));
    behaviour.resume();
    behaviour
        .set_shuffle_interval(Duration::from_secs(1))
        .unwrap();
    assert!(!behaviour.is_paused());
}

#[test]
fn the_local_peer_advertises_only_addresses_within_its_scope() {
    let listen = |behaviour: &mut Behaviour, address: &str| {
        let addr: Multiaddr = address.parse().unwrap();
        behaviour.on_swarm_event(FromSwarm::NewListenAddr(
            libp2p_swarm::behaviour::NewListenAddr {
                listener_id: libp2p_core::transport::ListenerId::next(),
                addr: &addr,
            },
        ));
    };
    let key = Keypair::generate_ed25519();
    let config = Config::default().with_address_scope(crate::AddressScope::Lan);
    let mut behaviour = Behaviour::with_keypair(key, config);
    listen(&mut behaviour, "/ip4/127.0.0.1/tcp/1");
    assert!(behaviour.advertised_addresses().is_empty());
    assert!(behaviour.local_record().is_none(), "nothing to sign");
    listen(&mut behaviour, "/ip4/192.168.1.5/tcp/1");
    let lan: Multiaddr = "/ip4/192.168.1.5/tcp/1".parse().unwrap();
    assert_eq!(behaviour.advertised_addresses(), vec![lan.clone()]);
    assert!(behaviour.local_record().is_some(), "signed");
    let own = behaviour.local.payload();
    assert_eq!(own.to_vec(), vec![lan]);
    assert!(own.is_verified());
}
