//! Hostile input over real swarms: an attacker opens raw `/cyclon/1.0.0` and `/cyclon/1.1.0`
//! streams to a victim (with `libp2p-stream`) and sends what no honest peer would, forged
//! signed records included. After each attack the victim's view holds no junk and it still
//! shuffles with an honest peer.

mod wire;

use std::{collections::HashSet, time::Duration};

use futures::{AsyncWriteExt, StreamExt, future::BoxFuture};
use libp2p::{
    Multiaddr, PeerId, Stream, Swarm,
    core::{PeerRecord, SignedEnvelope},
    identity::Keypair,
    multiaddr::Protocol,
    peer_store::{self, memory_store::MemoryStore},
    swarm::NetworkBehaviour,
};
use libp2p_cyclon::{
    Behaviour, Config, Event, PROTOCOL_NAME, PROTOCOL_NAME_V1_1, ShuffleError, SignedPeerRecord,
};
use libp2p_swarm_test::SwarmExt;
use prost::Message as _;
use rand::{RngExt, SeedableRng, rngs::StdRng};
use wire::{addr, decode_response, entry, frame, proto, request, send_raw, signed_entry};

const VIEW_SIZE: usize = 6;
const SHUFFLE_LENGTH: usize = 3;
const TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on how long any single step of a test may take.
const STEP_BOUND: Duration = Duration::from_secs(20);

fn victim_config() -> Config {
    Config::default()
        .with_view_size(VIEW_SIZE)
        .with_shuffle_length(SHUFFLE_LENGTH)
        .with_request_timeout(TIMEOUT)
}

/// Raw streams, plus an address book to redial the victim.
#[derive(NetworkBehaviour)]
struct Attacker {
    streams: libp2p_stream::Behaviour,
    addresses: peer_store::Behaviour<MemoryStore>,
}

struct Setup {
    victim: Swarm<Behaviour>,
    victim_id: PeerId,
    attacker: libp2p_stream::Control,
    attacker_id: PeerId,
    attacker_addr: Multiaddr,
    honest_id: PeerId,
    honest_addr: Multiaddr,
}

async fn setup(config: Config) -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut victim = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), config);
        behaviour.pause();
        behaviour
    });
    victim.listen().with_memory_addr_external().await;
    let victim_id = *victim.local_peer_id();

    let mut honest = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::new(key.public().to_peer_id(), Config::default());
        behaviour.pause();
        behaviour
    });
    let (honest_addr, _) = honest.listen().with_memory_addr_external().await;
    let honest_id = *honest.local_peer_id();
    tokio::spawn(honest.loop_on_next());

    let mut attacker = Swarm::new_ephemeral_tokio(|_| Attacker {
        streams: libp2p_stream::Behaviour::new(),
        addresses: peer_store::Behaviour::new(MemoryStore::new(Default::default())),
    });
    let (attacker_addr, _) = attacker.listen().with_memory_addr_external().await;
    attacker.connect(&mut victim).await;
    // So the attacker can reconnect when its connection breaks (e.g. its muxer gives up).
    let victim_addr = victim.external_addresses().next().unwrap().clone();
    attacker.add_peer_address(victim_id, victim_addr);
    let attacker_id = *attacker.local_peer_id();
    let control = attacker.behaviour().streams.new_control();
    tokio::spawn(attacker.loop_on_next());
    Setup {
        victim,
        victim_id,
        attacker: control,
        attacker_id,
        attacker_addr,
        honest_id,
        honest_addr,
    }
}

/// Runs `work` while driving the victim swarm, within [`STEP_BOUND`].
async fn drive<T>(victim: &mut Swarm<Behaviour>, work: BoxFuture<'static, T>) -> T {
    let bounded = tokio::time::timeout(STEP_BOUND, work);
    tokio::pin!(bounded);
    loop {
        tokio::select! {
            result = &mut bounded => return result.expect("step did not finish in time"),
            _ = victim.select_next_some() => {}
        }
    }
}

/// Drives the victim until `done` holds for its behaviour, within [`STEP_BOUND`].
async fn drive_until(victim: &mut Swarm<Behaviour>, done: impl Fn(&Behaviour) -> bool) {
    let deadline = tokio::time::sleep(STEP_BOUND);
    tokio::pin!(deadline);
    // Counters change without a swarm event, so look again at least every 20 ms.
    let mut recheck = tokio::time::interval(Duration::from_millis(20));
    while !done(victim.behaviour()) {
        tokio::select! {
            _ = victim.select_next_some() => {}
            _ = recheck.tick() => {}
            _ = &mut deadline => panic!("condition not reached in time: {:?}", victim.behaviour().stats()),
        }
    }
}

/// Opens a stream, writes `bytes`, closes the write side and reads whatever comes back until
/// the stream ends or fails.
/// The view holds at most c entries, never the victim, never a duplicate, and only entries
/// with at least one address that names no other peer.
fn assert_no_junk(victim: &Swarm<Behaviour>) {
    let me = victim.local_peer_id();
    let view: Vec<_> = victim.behaviour().view().collect();
    assert!(view.len() <= victim.behaviour().config().view_size());
    let ids: HashSet<&PeerId> = view.iter().map(|e| e.peer_id()).collect();
    assert_eq!(ids.len(), view.len(), "duplicate entries");
    assert!(!ids.contains(me), "the victim holds itself");
    for entry in view {
        assert!(!entry.addresses().is_empty(), "entry without address");
        for address in entry.addresses() {
            assert!(
                !address.iter().any(|p| matches!(p, Protocol::P2p(_))),
                "address with a /p2p/ component kept: {address}"
            );
        }
    }
}

/// The victim still completes a shuffle with an honest peer.
async fn assert_still_shuffles(s: &mut Setup) {
    let honest = s.honest_id;
    s.victim
        .behaviour_mut()
        .add_address(&honest, s.honest_addr.clone());
    // Shuffle until the honest peer was the target (it is the oldest after a few rounds).
    let deadline = tokio::time::sleep(STEP_BOUND);
    tokio::pin!(deadline);
    loop {
        if s.victim.behaviour().view().all(|e| *e.peer_id() != honest) {
            s.victim
                .behaviour_mut()
                .add_address(&honest, s.honest_addr.clone());
        }
        s.victim.behaviour_mut().shuffle_now().unwrap();
        loop {
            let event = tokio::select! {
                event = s.victim.select_next_some() => event,
                _ = &mut deadline => panic!("no shuffle with the honest peer in time"),
            };
            match event {
                libp2p::swarm::SwarmEvent::Behaviour(Event::ShuffleCompleted {
                    peer_id, ..
                }) if peer_id == honest => {
                    assert_no_junk(&s.victim);
                    return;
                }
                libp2p::swarm::SwarmEvent::Behaviour(
                    Event::ShuffleCompleted { .. } | Event::ShuffleFailed { .. },
                ) => break,
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn oversized_frame_is_rejected() {
    let mut s = setup(victim_config()).await;
    let mut prefix = unsigned_varint::encode::usize_buffer();
    let mut bytes = unsigned_varint::encode::usize(1 << 20, &mut prefix).to_vec();
    bytes.extend_from_slice(&[0u8; 1000]);
    let reply = drive(
        &mut s.victim,
        Box::pin(send_raw(
            s.attacker.clone(),
            s.victim_id,
            PROTOCOL_NAME,
            bytes,
        )),
    )
    .await;
    assert!(decode_response(&reply).is_none());
    drive_until(&mut s.victim, |b| b.stats().inbound_failed == 1).await;
    assert_eq!(s.victim.behaviour().view_len(), 0);
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn truncated_frame_garbage_and_wrong_message_type_are_rejected() {
    let mut s = setup(victim_config()).await;
    let x = PeerId::random();
    let valid = frame(&request(vec![entry(&x, &[addr(7)], 1)]));
    let truncated = valid[..valid.len() - 4].to_vec();
    let mut rng = StdRng::seed_from_u64(7);
    let garbage: Vec<u8> = (0..300).map(|_| rng.random()).collect();
    let wrong_type = frame(&proto::Message {
        payload: Some(proto::message::Payload::Response(proto::ShuffleResponse {
            entries: vec![entry(&x, &[addr(7)], 1)],
        })),
    });
    let empty_message = frame(&proto::Message { payload: None });
    let attacks = [truncated, garbage, wrong_type, empty_message, Vec::new()];
    let count = attacks.len() as u64;
    for bytes in attacks {
        let reply = drive(
            &mut s.victim,
            Box::pin(send_raw(
                s.attacker.clone(),
                s.victim_id,
                PROTOCOL_NAME,
                bytes,
            )),
        )
        .await;
        assert!(decode_response(&reply).is_none());
    }
    drive_until(&mut s.victim, |b| b.stats().inbound_failed == count).await;
    assert_eq!(s.victim.behaviour().stats().inbound_answered, 0);
    assert!(!s.victim.behaviour().view().any(|e| *e.peer_id() == x));
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn ten_thousand_entries_are_bounded() {
    // Too big for the default 8 KiB limit: rejected from the length prefix.
    let mut s = setup(victim_config()).await;
    let entries: Vec<proto::Entry> = (0..10_000)
        .map(|i| entry(&PeerId::random(), &[addr(i)], 0))
        .collect();
    let bytes = frame(&request(entries.clone()));
    drive(
        &mut s.victim,
        Box::pin(send_raw(
            s.attacker.clone(),
            s.victim_id,
            PROTOCOL_NAME,
            bytes.clone(),
        )),
    )
    .await;
    drive_until(&mut s.victim, |b| b.stats().inbound_failed == 1).await;
    assert_eq!(s.victim.behaviour().view_len(), 0);
    assert_still_shuffles(&mut s).await;

    // With a limit large enough to read it, only `l` entries are considered.
    let mut s = setup(victim_config().with_max_message_size(2 << 20)).await;
    let reply = drive(
        &mut s.victim,
        Box::pin(send_raw(
            s.attacker.clone(),
            s.victim_id,
            PROTOCOL_NAME,
            bytes,
        )),
    )
    .await;
    assert!(decode_response(&reply).is_some(), "a bounded answer");
    let stats = s.victim.behaviour().stats().clone();
    assert_eq!(stats.inbound_answered, 1);
    assert_eq!(stats.invalid.excess_entries, 10_000 - SHUFFLE_LENGTH);
    assert_eq!(s.victim.behaviour().view_len(), SHUFFLE_LENGTH);
    assert_no_junk(&s.victim);
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn self_entries_copies_and_invalid_entries_are_dropped() {
    let mut s = setup(victim_config().with_max_addresses_per_entry(2)).await;
    let x = PeerId::random();
    let y = PeerId::random();
    let other = PeerId::random();
    let cases: Vec<Vec<proto::Entry>> = vec![
        // The receiver itself, then one valid entry.
        vec![entry(&s.victim_id, &[addr(1)], 0), entry(&x, &[addr(2)], 0)],
        // 50 copies of one peer.
        (0..50).map(|_| entry(&y, &[addr(3)], 0)).collect(),
        // Invalid peer ids and addresses.
        vec![
            proto::Entry {
                peer_id: vec![0xde, 0xad],
                addrs: vec![addr(4).to_vec()],
                age: 0,
                ..Default::default()
            },
            proto::Entry {
                peer_id: PeerId::random().to_bytes(),
                addrs: vec![
                    vec![0xff, 0xff, 0xff],
                    addr(5).with(Protocol::P2p(other)).to_vec(),
                ],
                age: 0,
                ..Default::default()
            },
            proto::Entry {
                peer_id: PeerId::random().to_bytes(),
                addrs: vec![],
                age: u64::MAX,
                ..Default::default()
            },
        ],
    ];
    for entries in cases {
        let reply = drive(
            &mut s.victim,
            Box::pin(send_raw(
                s.attacker.clone(),
                s.victim_id,
                PROTOCOL_NAME,
                frame(&request(entries)),
            )),
        )
        .await;
        // Answers never hand the attacker its own entry or invalid data.
        for e in decode_response(&reply).expect("answered") {
            assert_ne!(e.peer_id, s.attacker_id.to_bytes());
        }
        assert_no_junk(&s.victim);
    }
    let stats = s.victim.behaviour().stats().clone();
    assert_eq!(stats.inbound_answered, 3);
    assert_eq!(stats.ignored.local, 1);
    assert_eq!(stats.invalid.excess_entries, 50 - SHUFFLE_LENGTH);
    assert_eq!(stats.ignored.duplicate, SHUFFLE_LENGTH - 1);
    assert_eq!(stats.invalid.invalid_peer_id, 1);
    assert_eq!(stats.invalid.invalid_address, 1);
    assert_eq!(stats.invalid.foreign_peer_address, 1);
    assert_eq!(stats.invalid.no_address, 2);
    let view: HashSet<PeerId> = s.victim.behaviour().view().map(|e| *e.peer_id()).collect();
    assert_eq!(view, HashSet::from([x, y]));
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn stalled_and_trickling_streams_are_cut_off() {
    let mut s = setup(victim_config()).await;
    // Opens a stream and sends nothing.
    let mut control = s.attacker.clone();
    let victim_id = s.victim_id;
    let stalled = drive(
        &mut s.victim,
        Box::pin(async move { control.open_stream(victim_id, PROTOCOL_NAME).await.unwrap() }),
    )
    .await;
    drive_until(&mut s.victim, |b| b.stats().inbound_failed == 1).await;
    drop(stalled);

    // Trickles a valid frame one byte every 300 ms: cut off at the 1 s timeout.
    let bytes = frame(&request(vec![entry(&PeerId::random(), &[addr(9)], 0)]));
    let mut control = s.attacker.clone();
    let trickle = tokio::spawn(async move {
        let mut stream = control.open_stream(victim_id, PROTOCOL_NAME).await.unwrap();
        for byte in bytes {
            if stream.write_all(&[byte]).await.is_err() || stream.flush().await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        false
    });
    drive_until(&mut s.victim, |b| b.stats().inbound_failed == 2).await;
    assert_eq!(s.victim.behaviour().stats().inbound_answered, 0);
    assert_eq!(s.victim.behaviour().view_len(), 0);
    trickle.abort();
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn a_target_that_never_answers_is_removed_at_the_timeout() {
    let mut s = setup(victim_config()).await;
    // The attacker accepts shuffle streams and then stalls on them.
    let mut incoming = s.attacker.accept(PROTOCOL_NAME).unwrap();
    let held = tokio::spawn(async move {
        let mut streams = Vec::new();
        while let Some((_, stream)) = incoming.next().await {
            streams.push(stream);
        }
    });
    let attacker = s.attacker_id;
    s.victim
        .behaviour_mut()
        .add_address(&attacker, s.attacker_addr.clone());
    let id = s.victim.behaviour_mut().shuffle_now().unwrap();
    let error = loop {
        if let Event::ShuffleFailed {
            id: failed,
            peer_id,
            error,
        } = s.victim.next_behaviour_event().await
        {
            assert_eq!((failed, peer_id), (id, attacker));
            break error;
        }
    };
    assert!(matches!(error, ShuffleError::Timeout), "{error:?}");
    assert!(
        !s.victim
            .behaviour()
            .view()
            .any(|e| *e.peer_id() == attacker)
    );
    held.abort();
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn a_thousand_streams_at_once_are_refused_not_queued() {
    let mut s = setup(victim_config()).await;
    let victim_id = s.victim_id;
    let control = s.attacker.clone();
    let opened = drive(
        &mut s.victim,
        Box::pin(async move {
            let opens = (0..1_000).map(|_| {
                let mut control = control.clone();
                async move { control.open_stream(victim_id, PROTOCOL_NAME).await }
            });
            futures::future::join_all(opens).await
        }),
    )
    .await;
    let opened: Vec<Stream> = opened.into_iter().filter_map(Result::ok).collect();
    // The victim takes one stream per connection and refuses the others at once (the muxer
    // itself caps how many streams can be open: yamux allows 512).
    drive_until(&mut s.victim, |b| b.stats().inbound_refused >= 500).await;
    let stats = s.victim.behaviour().stats().clone();
    assert_eq!(stats.inbound_answered, 0);
    assert!(stats.inbound_refused + stats.inbound_failed <= opened.len() as u64);
    drop(opened);

    // Nothing was queued: once the flood is gone, the victim answers a valid request again.
    let control = s.attacker.clone();
    let request = frame(&request(vec![entry(&PeerId::random(), &[addr(77)], 0)]));
    let answered = drive(
        &mut s.victim,
        Box::pin(async move {
            loop {
                let reply =
                    send_raw(control.clone(), victim_id, PROTOCOL_NAME, request.clone()).await;
                if decode_response(&reply).is_some() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }),
    )
    .await;
    assert!(answered);
    assert_eq!(s.victim.behaviour().stats().inbound_answered, 1);
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn a_peer_asking_too_often_is_rate_limited() {
    let config = victim_config()
        .with_view_size(30)
        .with_shuffle_interval(Duration::from_secs(60))
        .with_inbound_rate_limit(4, Duration::from_secs(30));
    let mut s = setup(config).await;
    let victim_id = s.victim_id;
    let control = s.attacker.clone();
    let answers = drive(
        &mut s.victim,
        Box::pin(async move {
            let mut answers = Vec::new();
            for round in 0..20u64 {
                let entries = (0..SHUFFLE_LENGTH as u64)
                    .map(|i| entry(&PeerId::random(), &[addr(round * 10 + i)], 0))
                    .collect();
                let reply = send_raw(
                    control.clone(),
                    victim_id,
                    PROTOCOL_NAME,
                    frame(&request(entries)),
                )
                .await;
                answers.push(decode_response(&reply).is_some());
            }
            answers
        }),
    )
    .await;
    assert_eq!(answers.iter().filter(|a| **a).count(), 4, "{answers:?}");
    assert!(answers[..4].iter().all(|a| *a));
    let stats = s.victim.behaviour().stats().clone();
    assert_eq!(stats.inbound_answered, 4);
    assert_eq!(stats.inbound_rate_limited, 16);
    // The attacker could place at most 4 shuffles' worth of entries.
    assert_eq!(s.victim.behaviour().view_len(), 4 * SHUFFLE_LENGTH);
    assert_still_shuffles(&mut s).await;
}

/// An honest peer's key, whose records the attacker captures or forges, and its peer id.
fn honest_signer() -> (Keypair, PeerId) {
    let key = Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    (key, id)
}

/// The standard signed peer record of `key` for `addresses`, as its owner signs it.
fn record(key: &Keypair, addresses: &[Multiaddr], seq: u64) -> Vec<u8> {
    SignedPeerRecord::sign(key, addresses, seq)
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Sends each request over `protocol` and waits until the victim answered them all.
async fn send_requests(
    s: &mut Setup,
    protocol: libp2p::StreamProtocol,
    requests: Vec<Vec<proto::Entry>>,
) {
    let answered = s.victim.behaviour().stats().inbound_answered;
    let count = requests.len() as u64;
    for entries in requests {
        let reply = drive(
            &mut s.victim,
            Box::pin(send_raw(
                s.attacker.clone(),
                s.victim_id,
                protocol.clone(),
                frame(&request(entries)),
            )),
        )
        .await;
        assert!(decode_response(&reply).is_some(), "answered");
    }
    drive_until(&mut s.victim, |b| {
        b.stats().inbound_answered == answered + count
    })
    .await;
    assert_no_junk(&s.victim);
}

/// The payload of a peer record (RFC 0003) naming `peer`, for forging one by hand.
#[derive(Clone, PartialEq, prost::Message)]
struct RecordPayload {
    #[prost(bytes = "vec", tag = "1")]
    peer_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    seq: u64,
}

#[tokio::test]
async fn forged_records_are_dropped_by_reason() {
    let mut s = setup(victim_config()).await;
    let (honest, h) = honest_signer();
    let valid = record(&honest, &[addr(11)], 5);

    // Broken after signing: one byte of the signed payload (its last address byte, just
    // before the 66-byte signature field), and one bit of the signature.
    let mut payload_changed = valid.clone();
    let at = payload_changed.len() - 67;
    payload_changed[at] ^= 0x01;
    let mut signature_changed = valid.clone();
    *signature_changed.last_mut().unwrap() ^= 0x80;
    // The honest peer's valid record inside an entry for another peer.
    let x = PeerId::random();
    // A record naming the honest peer, signed with the attacker's own key.
    let attacker_key = Keypair::generate_ed25519();
    let payload = RecordPayload {
        peer_id: h.to_bytes(),
        seq: 6,
    }
    .encode_to_vec();
    let impostor = SignedEnvelope::new(
        &attacker_key,
        "libp2p-peer-record".into(),
        vec![0x03, 0x01],
        payload,
    )
    .unwrap()
    .into_protobuf_encoding();
    // Too large (100 addresses), garbage, and the legacy Rust-only format.
    let many: Vec<Multiaddr> = (0..100).map(addr).collect();
    let oversized = record(&honest, &many, 7);
    assert!(oversized.len() > Config::default().max_record_size());
    let legacy = PeerRecord::new(&honest, vec![addr(12)])
        .unwrap()
        .into_signed_envelope()
        .into_protobuf_encoding();

    send_requests(
        &mut s,
        PROTOCOL_NAME_V1_1,
        vec![
            vec![
                signed_entry(&h, &payload_changed, 0),
                signed_entry(&h, &signature_changed, 0),
                signed_entry(&x, &valid, 0),
            ],
            vec![
                signed_entry(&h, &impostor, 0),
                signed_entry(&h, &oversized, 0),
                signed_entry(&h, &[0xff; 40], 0),
            ],
            vec![signed_entry(&h, &legacy, 0)],
        ],
    )
    .await;
    let stats = s.victim.behaviour().stats().clone();
    assert_eq!(stats.invalid.record_bad_signature, 2);
    assert_eq!(stats.invalid.record_wrong_peer, 2);
    assert_eq!(stats.invalid.record_too_large, 1);
    assert_eq!(stats.invalid.record_malformed, 2);
    assert_eq!(s.victim.behaviour().view_len(), 0, "no forged entry got in");

    // The valid record, with the attacker's address beside it as an unsigned one: the entry
    // is taken with the record's address only, and the record kept byte for byte.
    let mut with_addrs = signed_entry(&h, &valid, 0);
    with_addrs.addrs = vec![s.attacker_addr.to_vec()];
    send_requests(&mut s, PROTOCOL_NAME_V1_1, vec![vec![with_addrs]]).await;
    let held = s
        .victim
        .behaviour()
        .get(&h)
        .expect("the valid record is taken");
    assert!(held.addresses().is_verified());
    assert_eq!(held.addresses().as_slice(), &[addr(11)]);
    assert_eq!(held.addresses().signed_record().unwrap().as_bytes(), valid);
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn a_replayed_older_record_never_replaces_a_newer_one() {
    let mut s = setup(victim_config()).await;
    let (honest, h) = honest_signer();
    // The honest peer signed three records over time; the attacker captured them all.
    let [old, current, newer] =
        [(3, 21), (7, 22), (9, 23)].map(|(seq, port)| record(&honest, &[addr(port)], seq));
    // The held record's seq and addresses, the entry's age, and the duplicates counted.
    let state = |s: &Setup| {
        let behaviour = s.victim.behaviour();
        let entry = behaviour.get(&h).unwrap();
        let seq = entry.addresses().signed_record().unwrap().seq();
        let duplicates = behaviour.stats().ignored.duplicate;
        (seq, entry.addresses().to_vec(), entry.age(), duplicates)
    };
    let first = vec![vec![signed_entry(&h, &current, 4)]];
    send_requests(&mut s, PROTOCOL_NAME_V1_1, first).await;
    let (seq, addresses, age, duplicates) = state(&s);
    assert_eq!((seq, addresses, age), (7, vec![addr(22)], 4));

    // Replaying the older record (or an unsigned entry) changes nothing: two duplicates.
    let replays = vec![
        vec![signed_entry(&h, &old, 0)],
        vec![entry(&h, &[addr(99)], 0)],
    ];
    send_requests(&mut s, PROTOCOL_NAME_V1_1, replays).await;
    assert_eq!(state(&s), (7, vec![addr(22)], 4, duplicates + 2));

    // The newer one updates the entry's addresses and keeps its age (not a duplicate).
    let update = vec![vec![signed_entry(&h, &newer, 0)]];
    send_requests(&mut s, PROTOCOL_NAME_V1_1, update).await;
    assert_eq!(state(&s), (9, vec![addr(23)], 4, duplicates + 2));
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn a_record_sent_over_1_0_0_is_ignored() {
    let mut s = setup(victim_config()).await;
    let (honest, h) = honest_signer();
    let mut smuggled = signed_entry(&h, &record(&honest, &[addr(31)], 1), 0);
    smuggled.addrs = vec![addr(32).to_vec()];
    send_requests(&mut s, PROTOCOL_NAME, vec![vec![smuggled]]).await;
    let held = s.victim.behaviour().get(&h).unwrap();
    assert!(
        !held.addresses().is_verified(),
        "/cyclon/1.0.0 verifies nothing"
    );
    assert_eq!(held.addresses().as_slice(), &[addr(32)]);
    assert_eq!(s.victim.behaviour().stats().exchanges_v1_0, 1);
    assert_still_shuffles(&mut s).await;
}

#[tokio::test]
async fn a_strict_victim_takes_only_verified_entries() {
    let mut s = setup(victim_config().with_require_signed_records(true)).await;
    let (honest, h) = honest_signer();
    let (x, y) = (PeerId::random(), PeerId::random());
    send_requests(
        &mut s,
        PROTOCOL_NAME_V1_1,
        vec![vec![
            entry(&x, &[addr(41)], 0),
            signed_entry(&h, &record(&honest, &[addr(42)], 1), 0),
        ]],
    )
    .await;
    send_requests(&mut s, PROTOCOL_NAME, vec![vec![entry(&y, &[addr(43)], 0)]]).await;
    let stats = s.victim.behaviour().stats().clone();
    assert_eq!(stats.invalid.unsigned, 2);
    let view: HashSet<PeerId> = s.victim.behaviour().view().map(|e| *e.peer_id()).collect();
    assert_eq!(view, HashSet::from([h]));
    assert!(
        s.victim
            .behaviour()
            .view()
            .all(|e| e.addresses().is_verified())
    );
    assert_still_shuffles(&mut s).await;
}
