//! Signed peer records and the two protocol versions over real swarms (memory transport): a
//! node's own record, verified and forwarded byte for byte over `/cyclon/1.1.0`; shuffles
//! both ways with peers that speak only `/cyclon/1.0.0` (a raw `libp2p-stream` peer that
//! checks every byte it gets, and a behaviour configured without `/cyclon/1.1.0`); a strict
//! node.

mod wire;

use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Swarm,
    core::{PeerRecord, SignedEnvelope},
    identity::Keypair,
};
use libp2p_cyclon::{Behaviour, Config, Event, PROTOCOL_NAME, PROTOCOL_NAME_V1_1};
use libp2p_swarm_test::SwarmExt;
use wire::{
    addr, assert_v1_0_layout, decode_response, entry, frame, proto, read_frame, request, response,
    send_raw,
};

/// Bound on how long any single step of a test may take.
const STEP_BOUND: Duration = Duration::from_secs(20);

fn config() -> Config {
    Config::default()
        .with_view_size(4)
        .with_shuffle_length(3)
        .with_request_timeout(Duration::from_secs(5))
}

/// A paused peer listening on a memory address it advertises: signing its own record with its
/// key (`keyed`), or not.
async fn peer(config: Config, keyed: bool) -> (Swarm<Behaviour>, Multiaddr) {
    let mut swarm = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = if keyed {
            Behaviour::with_keypair(key, config)
        } else {
            Behaviour::new(key.public().to_peer_id(), config)
        };
        behaviour.pause();
        behaviour
    });
    let (memory, _) = swarm.listen().with_memory_addr_external().await;
    (swarm, memory)
}

/// Drives both swarms until `a` completes a shuffle with `b`; returns what `b` emitted meanwhile.
async fn shuffle(a: &mut Swarm<Behaviour>, b: &mut Swarm<Behaviour>) -> Vec<Event> {
    let b_id = *b.local_peer_id();
    let a_id = *a.local_peer_id();
    a.behaviour_mut().shuffle_now().unwrap();
    let mut seen = Vec::new();
    let mut completed = false;
    let mut answered = false;
    tokio::time::timeout(STEP_BOUND, async {
        while !(completed && answered) {
            tokio::select! {
                event = a.next_behaviour_event() => match event {
                    Event::ShuffleCompleted { peer_id, .. } if peer_id == b_id => completed = true,
                    Event::ShuffleFailed { error, .. } => panic!("shuffle failed: {error}"),
                    _ => {}
                },
                event = b.next_behaviour_event() => {
                    answered |= matches!(&event, Event::ShuffleAnswered { peer_id, .. } if *peer_id == a_id);
                    seen.push(event);
                }
            }
        }
    })
    .await
    .expect("no shuffle in time");
    seen
}

/// Runs `work` while driving `swarm`, within [`STEP_BOUND`].
async fn driving<T>(swarm: &mut Swarm<Behaviour>, work: impl std::future::Future<Output = T>) -> T {
    let work = async {
        tokio::pin!(work);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = swarm.select_next_some() => {}
            }
        }
    };
    tokio::time::timeout(STEP_BOUND, work)
        .await
        .expect("step not done in time")
}

/// Whether `events` say that `peer` entered the view, with verified addresses or not.
fn added(events: &[Event], peer: &PeerId) -> Option<bool> {
    events.iter().find_map(|event| match event {
        Event::PeerAdded {
            peer_id, verified, ..
        } if peer_id == peer => Some(*verified),
        _ => None,
    })
}

/// The peer record inside `bytes`, read with libp2p-core's standard (interop) format.
fn standard_record(bytes: &[u8]) -> PeerRecord {
    let envelope = SignedEnvelope::from_protobuf_encoding(bytes).unwrap();
    PeerRecord::from_signed_envelope_interop(envelope).unwrap()
}

#[tokio::test]
async fn a_signed_entry_is_verified_and_forwarded_byte_for_byte() {
    let (mut a, _) = peer(config(), true).await;
    let (mut b, b_addr) = peer(config(), true).await;
    let (a_id, b_id) = (*a.local_peer_id(), *b.local_peer_id());
    let a_record = a
        .behaviour()
        .local_record()
        .expect("A signed its record")
        .clone();
    let a_addr = a.external_addresses().next().unwrap().clone();
    // A standard record of A's advertised address, readable by any libp2p implementation.
    let parsed = standard_record(a_record.as_bytes());
    assert_eq!(
        (parsed.peer_id(), parsed.addresses()),
        (a_id, &[a_addr.clone()][..])
    );

    a.behaviour_mut().add_address(&b_id, b_addr);
    let events = shuffle(&mut a, &mut b).await;
    assert_eq!(added(&events, &a_id), Some(true), "B verified A's entry");
    let held = b.behaviour().get(&a_id).unwrap();
    assert_eq!(held.addresses().as_slice(), std::slice::from_ref(&a_addr));
    assert_eq!(held.addresses().signed_record(), Some(&a_record));
    assert_eq!(b.behaviour().stats().exchanges_v1_1, 1);

    // A raw /cyclon/1.1.0 peer asks B to shuffle: B's answer carries A's record, the very bytes
    // A signed, and no unsigned address beside it.
    let mut raw = Swarm::new_ephemeral_tokio(|_| libp2p_stream::Behaviour::new());
    raw.connect(&mut b).await;
    let control = raw.behaviour().new_control();
    tokio::spawn(raw.loop_on_next());
    let ask = frame(&request(vec![entry(&PeerId::random(), &[addr(5)], 0)]));
    let reply = driving(&mut b, send_raw(control, b_id, PROTOCOL_NAME_V1_1, ask)).await;
    let entries = decode_response(&reply).expect("answered");
    let forwarded = entries
        .iter()
        .find(|e| e.peer_id == a_id.to_bytes())
        .expect("B answers with its only entry, A");
    assert_eq!(forwarded.signed_peer_record, a_record.as_bytes());
    assert!(forwarded.addrs.is_empty());
}

#[tokio::test]
async fn the_own_record_is_re_signed_when_the_advertised_addresses_change() {
    let mut swarm = Swarm::new_ephemeral_tokio(|key| Behaviour::with_keypair(key, config()));
    assert!(
        swarm.behaviour().local_record().is_none(),
        "nothing to sign yet"
    );
    let (memory, _) = swarm.listen().with_memory_addr_external().await;
    let first = swarm.behaviour().local_record().unwrap().clone();
    assert_eq!(
        standard_record(first.as_bytes()).addresses(),
        std::slice::from_ref(&memory)
    );

    let other = addr(4242);
    swarm.add_external_address(other.clone());
    tokio::time::timeout(STEP_BOUND, async {
        while swarm.behaviour().local_record() == Some(&first) {
            swarm.next_swarm_event().await;
        }
    })
    .await
    .expect("re-signed");
    let second = swarm.behaviour().local_record().unwrap().clone();
    assert!(second.seq() > first.seq());
    let mut signed = standard_record(second.as_bytes()).addresses().to_vec();
    signed.sort();
    let mut expected = vec![memory.clone(), other.clone()];
    expected.sort();
    assert_eq!(signed, expected);
    swarm.remove_external_address(&other);
    tokio::time::timeout(STEP_BOUND, async {
        while swarm.behaviour().local_record() == Some(&second) {
            swarm.next_swarm_event().await;
        }
    })
    .await
    .expect("re-signed");
    let third = swarm.behaviour().local_record().unwrap();
    assert!(third.seq() > second.seq());
    assert_eq!(standard_record(third.as_bytes()).addresses(), &[memory]);
}

/// A peer that speaks only `/cyclon/1.0.0`, byte by byte: it answers one shuffle with
/// `reply` after checking that the request has the old layout, and hands the request over.
async fn answer_as_a_1_0_0_peer(
    mut incoming: libp2p_stream::IncomingStreams,
    reply: Vec<proto::Entry>,
) -> Vec<proto::Entry> {
    let (_, mut stream) = incoming.next().await.unwrap();
    let body = read_frame(&mut stream).await.unwrap();
    let entries = assert_v1_0_layout(&body);
    stream.write_all(&frame(&response(reply))).await.unwrap();
    stream.close().await.unwrap();
    entries
}

#[tokio::test]
async fn a_1_1_0_node_and_a_1_0_0_only_peer_shuffle_both_ways() {
    // N holds a verified entry of M, so that its answers have a record to leave out.
    let (mut n, n_addr) = peer(config(), true).await;
    let (mut m, _) = peer(config(), true).await;
    let (n_id, m_id) = (*n.local_peer_id(), *m.local_peer_id());
    m.behaviour_mut().add_address(&n_id, n_addr);
    shuffle(&mut m, &mut n).await;
    assert!(n.behaviour().get(&m_id).unwrap().addresses().is_verified());

    // The old peer listens on /cyclon/1.0.0 only.
    let mut old = Swarm::new_ephemeral_tokio(|_| libp2p_stream::Behaviour::new());
    let (old_addr, _) = old.listen().with_memory_addr_external().await;
    let old_id = *old.local_peer_id();
    old.connect(&mut n).await;
    let mut control = old.behaviour().new_control();
    tokio::spawn(old.loop_on_next());

    // The old peer shuffles with N: N answers in the old layout, M's entry as a plain one.
    let ask = frame(&request(vec![entry(
        &old_id,
        std::slice::from_ref(&old_addr),
        0,
    )]));
    let reply = driving(&mut n, send_raw(control.clone(), n_id, PROTOCOL_NAME, ask)).await;
    let (len, body) = unsigned_varint::decode::usize(&reply).unwrap();
    assert_eq!(body.len(), len);
    let answered = assert_v1_0_layout(body);
    let m_entry = answered
        .iter()
        .find(|e| e.peer_id == m_id.to_bytes())
        .unwrap();
    let m_addresses = n.behaviour().get(&m_id).unwrap().addresses().to_vec();
    let sent: Vec<Vec<u8>> = m_addresses.iter().map(|a| a.to_vec()).collect();
    assert_eq!(m_entry.addrs, sent, "the record's addresses, unsigned");
    let held = n
        .behaviour()
        .get(&old_id)
        .expect("N took the old peer's entry");
    assert!(!held.addresses().is_verified());

    // N shuffles with the old peer: it offers /cyclon/1.1.0, is refused, falls back to
    // /cyclon/1.0.0 and sends its own (signed) entry as a plain one.
    assert!(n.behaviour_mut().remove_peer(&m_id));
    let y = PeerId::random();
    let incoming = control.accept(PROTOCOL_NAME).unwrap();
    let answering = tokio::spawn(answer_as_a_1_0_0_peer(
        incoming,
        vec![entry(&y, &[addr(77)], 2)],
    ));
    let id = n.behaviour_mut().shuffle_now().unwrap();
    let (received, added_y) = tokio::time::timeout(STEP_BOUND, async {
        let mut added_y = None;
        loop {
            match n.next_behaviour_event().await {
                Event::PeerAdded {
                    peer_id, verified, ..
                } if peer_id == y => added_y = Some(verified),
                Event::ShuffleCompleted {
                    id: done, received, ..
                } if done == id => {
                    return (received, added_y);
                }
                Event::ShuffleFailed { error, .. } => panic!("no fallback: {error}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!((received, added_y), (1, Some(false)));
    let request = answering.await.unwrap();
    assert_eq!(request.len(), 1, "N's own entry");
    assert_eq!(request[0].peer_id, n_id.to_bytes());
    assert_eq!(
        request[0].addrs,
        vec![n.external_addresses().next().unwrap().to_vec()]
    );
    let stats = n.behaviour().stats();
    assert_eq!((stats.exchanges_v1_0, stats.exchanges_v1_1), (2, 1));
    assert_eq!(stats.shuffles_failed.total(), 0);
}

#[tokio::test]
async fn a_behaviour_without_1_1_0_and_one_with_it_shuffle_both_ways() {
    let (mut new, _) = peer(config(), true).await;
    let (mut old, old_addr) = peer(config().with_signed_records(false), true).await;
    let (new_id, old_id) = (*new.local_peer_id(), *old.local_peer_id());

    new.behaviour_mut().add_address(&old_id, old_addr);
    let events = shuffle(&mut new, &mut old).await;
    assert_eq!(added(&events, &new_id), Some(false), "no record over 1.0.0");
    let events = shuffle(&mut old, &mut new).await;
    assert_eq!(added(&events, &old_id), Some(false));
    for swarm in [&new, &old] {
        let stats = swarm.behaviour().stats();
        assert_eq!((stats.exchanges_v1_0, stats.exchanges_v1_1), (2, 0));
        assert!(
            swarm
                .behaviour()
                .view()
                .all(|e| !e.addresses().is_verified())
        );
    }
}

#[tokio::test]
async fn unsigned_entries_are_accepted_by_default_and_refused_by_a_strict_node() {
    let (mut strict, strict_addr) = peer(config().with_require_signed_records(true), true).await;
    let (mut lenient, lenient_addr) = peer(config(), true).await;
    let (mut unkeyed, _) = peer(config(), false).await;
    let (mut keyed, _) = peer(config(), true).await;
    let (unkeyed_id, keyed_id) = (*unkeyed.local_peer_id(), *keyed.local_peer_id());
    assert!(unkeyed.behaviour().local_record().is_none());

    // The unkeyed peer's own entry is unsigned: taken, unverified, by default; dropped by the
    // strict node (which still answers).
    unkeyed
        .behaviour_mut()
        .add_address(lenient.local_peer_id(), lenient_addr);
    let events = shuffle(&mut unkeyed, &mut lenient).await;
    assert_eq!(added(&events, &unkeyed_id), Some(false));
    unkeyed
        .behaviour_mut()
        .add_address(strict.local_peer_id(), strict_addr.clone());
    let events = shuffle(&mut unkeyed, &mut strict).await;
    assert_eq!(added(&events, &unkeyed_id), None);
    assert_eq!(strict.behaviour().stats().invalid.unsigned, 1);
    assert!(strict.behaviour().get(&unkeyed_id).is_none());

    // A keyed peer's entry is verified and taken.
    keyed
        .behaviour_mut()
        .add_address(strict.local_peer_id(), strict_addr);
    let events = shuffle(&mut keyed, &mut strict).await;
    assert_eq!(added(&events, &keyed_id), Some(true));
    assert_eq!(strict.behaviour().view_len(), 1);
}

#[tokio::test]
async fn a_record_of_a_signed_envelope_from_libp2p_core_is_accepted() {
    // A record made by libp2p-core's own standard signer (seconds as seq, as rust-libp2p
    // makes them), forwarded to a node: taken as verified.
    let (mut node, _) = peer(config(), true).await;
    let node_id = *node.local_peer_id();
    let key = Keypair::generate_ed25519();
    let bytes = PeerRecord::new_interop(&key, vec![addr(61)])
        .unwrap()
        .into_signed_envelope()
        .into_protobuf_encoding();
    let mut raw = Swarm::new_ephemeral_tokio(|_| libp2p_stream::Behaviour::new());
    raw.connect(&mut node).await;
    let control = raw.behaviour().new_control();
    tokio::spawn(raw.loop_on_next());
    let peer = key.public().to_peer_id();
    let ask = frame(&request(vec![wire::signed_entry(&peer, &bytes, 1)]));
    let exchange = send_raw(control, node_id, PROTOCOL_NAME_V1_1, ask);
    tokio::spawn(exchange);
    tokio::time::timeout(STEP_BOUND, async {
        while node.behaviour().get(&peer).is_none() {
            node.select_next_some().await;
        }
    })
    .await
    .unwrap();
    let held = node.behaviour().get(&peer).unwrap();
    assert!(held.addresses().is_verified());
    assert_eq!(held.addresses().signed_record().unwrap().as_bytes(), bytes);
}
