//! SecureCyclon's behaviour against hostile peers over real swarms (memory transport):
//!
//! - a cloner signs two hand-overs of one descriptor (its own fresh one, to two honest
//!   nodes) with its own key and the wire functions, and delivers them in two joins on
//!   `/cyclon/2.0.0`: the honest nodes (`secure::Behaviour`) must find the contradiction,
//!   blacklist the cloner everywhere, and blacklist no one else (6 and 20 honest nodes);
//! - a peer sending garbage, an oversized length, a message out of place and a forged
//!   signature: each is counted by reason, no one is blacklisted, and the node goes on
//!   exchanging with honest peers.

use std::{collections::HashSet, task::Poll, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Stream, Swarm,
    identity::Keypair,
    swarm::{SwarmEvent, dial_opts::DialOpts},
};
use libp2p_cyclon::{
    secure::{
        self, Advance, Event, HandOver, HandOverKind, Incoming, Invalid, Link, ProofKind, Scheme,
        SecureParams, SecureView,
        keys::{KeypairSigner, Libp2pScheme},
        wire::{self, Frame, PROTOCOL_NAME, Peers, WireLimits},
    },
    view::{Defence, ShuffleParams},
};
use libp2p_swarm_test::SwarmExt;
use rand::{SeedableRng, rngs::StdRng};

const GAP_MS: u64 = 500;
const C: usize = 8;
const L: usize = 3;

fn params() -> SecureParams {
    SecureParams::scaled(C, GAP_MS).with_anchors(0)
}

fn config() -> secure::Config {
    secure::Config::default()
        .with_view_size(C)
        .with_shuffle_length(L)
        .with_params(params())
        .with_request_timeout(Duration::from_secs(5))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn write_frame(stream: &mut Stream, bytes: &[u8]) {
    let mut out = Vec::new();
    let mut n = bytes.len();
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(bytes);
    stream.write_all(&out).await.unwrap();
    stream.flush().await.unwrap();
}

async fn read_frame(stream: &mut Stream) -> Vec<u8> {
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut b = [0u8; 1];
        stream.read_exact(&mut b).await.unwrap();
        len |= usize::from(b[0] & 0x7f) << shift;
        shift += 7;
        if b[0] & 0x80 == 0 {
            break;
        }
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

/// The cloner's script: mints one descriptor, hands it to `victims[0]` (signed by its core)
/// and to `victims[1]` (a second `TRANSFER` of the same position, signed by hand), each in a
/// join, and closes both exchanges properly. Returns when both victims accepted.
async fn clone_descriptor(
    mut control: libp2p_stream::Control,
    key: Keypair,
    address: Multiaddr,
    victims: [PeerId; 2],
) {
    let me = key.public().to_peer_id();
    let mut rng = StdRng::seed_from_u64(7);
    let shuffle = ShuffleParams::new(C, L).with_defence(Defence::Secure(params()));
    let signer = KeypairSigner::new(key.clone()).unwrap();
    let now = now_ms();
    let mut view = SecureView::new_identity(shuffle, Libp2pScheme, signer, now, &mut rng).unwrap();
    let selected = view.join(now, victims[0]).unwrap();
    let (open, _) = view
        .open(&mut rng, now, selected.id, vec![address])
        .unwrap();
    // The clone: the same descriptor's first position handed to the second victim.
    let mut clone = open.clone();
    let handover = HandOver {
        prev: Libp2pScheme.descriptor_digest(&open.fresh.body),
        to: victims[1],
        kind: HandOverKind::Transfer,
    };
    clone.fresh.links[0] = Link {
        to: victims[1],
        kind: HandOverKind::Transfer,
        signature: key
            .sign(&wire::handover_signature_input(&handover))
            .unwrap(),
    };
    let mut closing = None;
    for (victim, open) in [(victims[0], open), (victims[1], clone)] {
        let mut stream = control.open_stream(victim, PROTOCOL_NAME).await.unwrap();
        let out = Peers {
            sender: me,
            receiver: victim,
        };
        let back = Peers {
            sender: victim,
            receiver: me,
        };
        write_frame(&mut stream, &wire::encode_frame(&Frame::Open(open), &out)).await;
        let reply = read_frame(&mut stream).await;
        let frame = wire::decode_frame(&reply, &back, &WireLimits::default()).unwrap();
        let Frame::Accept(accept) = frame else {
            panic!("the victim did not accept the join: {frame:?}");
        };
        // The closing step (no transfer) comes from the cloner's core, once.
        if closing.is_none() {
            let (next, _) = view.advance(&mut rng, now_ms(), selected.id, Incoming::Accept(accept));
            let Advance::SendAndFinish(mut step) = next else {
                panic!("{next:?}")
            };
            step.suspects.clear();
            step.proofs.clear();
            assert!(step.transfer.is_none());
            closing = Some(step);
        }
        let step = Frame::Step(closing.clone().unwrap());
        write_frame(&mut stream, &wire::encode_frame(&step, &out)).await;
        stream.close().await.unwrap();
    }
}

/// What one honest node reported.
#[derive(Default)]
struct Seen {
    blacklisted: HashSet<PeerId>,
    found: Vec<(PeerId, ProofKind)>,
    completed: usize,
}

impl Seen {
    fn record(&mut self, event: SwarmEvent<Event>) {
        match event {
            SwarmEvent::Behaviour(Event::Blacklisted { peer_id }) => {
                self.blacklisted.insert(peer_id);
            }
            SwarmEvent::Behaviour(Event::ProofFound { offender, kind }) => {
                self.found.push((offender, kind))
            }
            SwarmEvent::Behaviour(Event::ExchangeCompleted { .. }) => self.completed += 1,
            _ => {}
        }
    }
}

/// `n` honest swarms bootstrapped as a ring of seeds, running.
async fn honest_ring(n: usize) -> (Vec<Swarm<secure::Behaviour>>, Vec<Multiaddr>, Vec<PeerId>) {
    let mut swarms: Vec<Swarm<secure::Behaviour>> = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..n {
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let mut b = secure::Behaviour::new(key, config());
            b.pause(); // until every node listens
            b
        });
        let (memory, _) = swarm.listen().with_memory_addr_external().await;
        addresses.push(memory);
        swarms.push(swarm);
    }
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for (i, swarm) in swarms.iter_mut().enumerate() {
        let next = (i + 1) % n;
        swarm
            .behaviour_mut()
            .add_seed(ids[next], addresses[next].clone());
        swarm.behaviour_mut().resume();
    }
    (swarms, addresses, ids)
}

/// A raw peer: a swarm that opens `/cyclon/2.0.0` streams by hand (and takes, then drops,
/// those opened to it), connected to `targets`, running in its own task. Returns its key,
/// stream control and address.
async fn raw_peer(targets: &[(PeerId, Multiaddr)]) -> (Keypair, libp2p_stream::Control, Multiaddr) {
    let mut key = None;
    let mut swarm = Swarm::new_ephemeral_tokio(|k| {
        key = Some(k);
        libp2p_stream::Behaviour::new()
    });
    let (address, _) = swarm.listen().with_memory_addr_external().await;
    let control = swarm.behaviour().new_control();
    let mut incoming = control.clone().accept(PROTOCOL_NAME).unwrap();
    for (peer, address) in targets {
        swarm
            .dial(
                DialOpts::peer_id(*peer)
                    .addresses(vec![address.clone()])
                    .build(),
            )
            .unwrap();
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                Some(_dropped) = incoming.next() => {}
            }
        }
    });
    (key.unwrap(), control, address)
}

/// Polls the swarms, recording events, until `done` holds (checked every gap); panics after
/// `limit`.
async fn run_until(
    swarms: &mut [Swarm<secure::Behaviour>],
    seen: &mut [Seen],
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&[Swarm<secure::Behaviour>], &[Seen]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut check = tokio::time::interval(Duration::from_millis(GAP_MS));
    loop {
        let progress = futures::future::poll_fn(|cx| {
            let mut progressed = false;
            for (swarm, seen) in swarms.iter_mut().zip(seen.iter_mut()) {
                for _ in 0..64 {
                    match swarm.poll_next_unpin(cx) {
                        Poll::Ready(Some(event)) => {
                            seen.record(event);
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
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "not done in time: {what}");
            }
        }
    }
}

/// `n` honest nodes fill their views a little; a cloner hands its fresh descriptor to two of
/// them; every honest node must blacklist the cloner, and only it.
async fn cloner_is_blacklisted_everywhere(n: usize, limit: Duration) {
    let (mut swarms, addresses, ids) = honest_ring(n).await;
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let victims = [ids[0], ids[n / 2]];
    let targets = [
        (ids[0], addresses[0].clone()),
        (ids[n / 2], addresses[n / 2].clone()),
    ];
    let (key, control, cloner_address) = raw_peer(&targets).await;
    let cloner_id = key.public().to_peer_id();
    run_until(&mut swarms, &mut seen, limit, "views of 3", |swarms, _| {
        swarms.iter().all(|s| s.behaviour().view().len() >= 3)
    })
    .await;
    let cloned_at = tokio::time::Instant::now();
    let mut script = Some(tokio::spawn(clone_descriptor(
        control,
        key,
        cloner_address,
        victims,
    )));
    let mut script_done = false;
    let mut finished = None;
    run_until(
        &mut swarms,
        &mut seen,
        limit,
        "the cloner blacklisted everywhere",
        |_, seen| {
            if script.as_ref().is_some_and(|h| h.is_finished()) {
                finished = script.take();
                script_done = true;
            }
            script_done && seen.iter().all(|s| s.blacklisted.contains(&cloner_id))
        },
    )
    .await;
    finished
        .unwrap()
        .await
        .expect("the cloner's script ran to its end");
    let took = cloned_at.elapsed();
    let finders: Vec<usize> = (0..n).filter(|&k| !seen[k].found.is_empty()).collect();
    println!(
        "blacklisted by all {n} honest nodes {:.1} s ({:.0} gaps) after the clone; proofs found by nodes {finders:?}",
        took.as_secs_f64(),
        took.as_millis() as f64 / GAP_MS as f64
    );
    for (k, s) in seen.iter().enumerate() {
        assert_eq!(s.blacklisted, HashSet::from([cloner_id]), "node {k}");
        assert!(
            s.found
                .iter()
                .all(|&(o, kind)| o == cloner_id && kind == ProofKind::Fork)
        );
        assert!(swarms[k].behaviour().view().is_blacklisted(&cloner_id));
        assert!(
            swarms[k]
                .behaviour()
                .contacts()
                .iter()
                .all(|p| *p != cloner_id),
            "node {k} still holds the cloner"
        );
    }
    assert!(!finders.is_empty());
}

#[tokio::test]
async fn a_cloner_is_blacklisted_by_six_honest_nodes_and_no_one_else() {
    cloner_is_blacklisted_everywhere(6, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_cloner_is_blacklisted_by_twenty_honest_nodes_and_no_one_else() {
    cloner_is_blacklisted_everywhere(20, Duration::from_secs(90)).await;
}

/// Opens a stream to `peer` and writes `bytes` raw; returns the stream.
async fn send_raw(control: &mut libp2p_stream::Control, peer: PeerId, bytes: &[u8]) -> Stream {
    let mut stream = control.open_stream(peer, PROTOCOL_NAME).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Reads until the peer ends the stream (it resets or closes it after a bad input).
async fn until_ended(mut stream: Stream) {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

/// The hostile peer's inputs, in order; returns the reason the forged `Open` was refused for.
async fn hostile_inputs(
    mut control: libp2p_stream::Control,
    key: Keypair,
    address: Multiaddr,
    victim: PeerId,
) -> secure::RefuseReason {
    let me = key.public().to_peer_id();
    // Garbage in a well-formed frame.
    let mut garbage = vec![3u8];
    garbage.extend([0xff, 0xff, 0xff]);
    until_ended(send_raw(&mut control, victim, &garbage).await).await;
    // A length over the message size limit (100,000 bytes announced).
    until_ended(send_raw(&mut control, victim, &[0xa0, 0x8d, 0x06]).await).await;
    // A `Step` (field 4, empty) where an `Open` must come first.
    until_ended(send_raw(&mut control, victim, &[2, 0x22, 0x00]).await).await;
    // An `Open` whose fresh descriptor's signature is forged (one bit flipped).
    let mut rng = StdRng::seed_from_u64(9);
    let shuffle = ShuffleParams::new(C, L).with_defence(Defence::Secure(params()));
    let now = now_ms();
    let signer = KeypairSigner::new(key).unwrap();
    let mut view = SecureView::new_identity(shuffle, Libp2pScheme, signer, now, &mut rng).unwrap();
    let selected = view.join(now, victim).unwrap();
    let (mut open, _) = view
        .open(&mut rng, now, selected.id, vec![address])
        .unwrap();
    open.fresh.signature[0] ^= 1;
    let out = Peers {
        sender: me,
        receiver: victim,
    };
    let mut stream = control.open_stream(victim, PROTOCOL_NAME).await.unwrap();
    write_frame(&mut stream, &wire::encode_frame(&Frame::Open(open), &out)).await;
    let reply = read_frame(&mut stream).await;
    let back = Peers {
        sender: victim,
        receiver: me,
    };
    match wire::decode_frame(&reply, &back, &WireLimits::default()).unwrap() {
        Frame::Refuse(refuse) => refuse.reason,
        other => panic!("a forged Open was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn hostile_input_is_counted_by_reason_and_never_blacklists() {
    let (mut swarms, addresses, ids) = honest_ring(3).await;
    let mut seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let (key, control, address) = raw_peer(&[(ids[0], addresses[0].clone())]).await;
    let hostile = key.public().to_peer_id();
    let script = tokio::spawn(hostile_inputs(control, key, address, ids[0]));
    let reasons = [
        Invalid::Malformed,
        Invalid::TooLarge,
        Invalid::Unexpected,
        Invalid::BadSignature,
    ];
    run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(30),
        "every input counted",
        |swarms, _| {
            let invalid = swarms[0].behaviour().stats().invalid;
            reasons.iter().all(|&r| invalid.get(r) >= 1)
        },
    )
    .await;
    let reason = script.await.expect("the hostile script ran to its end");
    assert_eq!(reason, secure::RefuseReason::Invalid);
    let invalid = swarms[0].behaviour().stats().invalid;
    for r in reasons {
        assert_eq!(invalid.get(r), 1, "{}", r.as_str());
    }
    assert_eq!(invalid.total(), 4);
    // The node goes on exchanging with honest peers, and no one was blacklisted.
    let before = seen[0].completed;
    run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(30),
        "exchanges go on",
        |_, seen| seen[0].completed >= before + 3,
    )
    .await;
    for (k, s) in seen.iter().enumerate() {
        assert!(s.blacklisted.is_empty(), "node {k}");
        assert!(!swarms[k].behaviour().view().is_blacklisted(&hostile));
    }
}
