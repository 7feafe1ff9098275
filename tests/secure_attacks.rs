//! SecureCyclon against a cloner over real swarms: a malicious node signs two hand-overs of
//! one descriptor (its own fresh one, to two honest nodes) with its own key and the wire
//! functions, and delivers them in two joins on `/cyclon/2.0.0`. The honest nodes
//! (`secure::Behaviour`) must find the contradiction, blacklist the cloner everywhere, and
//! blacklist no one else.

use std::{collections::HashSet, task::Poll, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Stream, Swarm,
    identity::Keypair,
    swarm::{SwarmEvent, dial_opts::DialOpts},
};
use libp2p_cyclon::{
    secure::{
        self, Advance, Event, HandOver, HandOverKind, Incoming, Link, ProofKind, Scheme,
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

#[derive(Default)]
struct Seen {
    blacklisted: HashSet<PeerId>,
    found: Vec<(PeerId, ProofKind)>,
}

#[tokio::test]
async fn a_cloner_is_blacklisted_by_every_honest_node_and_no_one_else() {
    let n = 6;
    let mut swarms: Vec<Swarm<secure::Behaviour>> = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..n {
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let mut b = secure::Behaviour::new(key, config());
            b.pause();
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
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();

    // The cloner: a swarm that opens raw /cyclon/2.0.0 streams, and takes (and drops) those
    // opened to it, so that the victims' redemptions of its descriptor are signed.
    let mut key = None;
    let mut cloner = Swarm::new_ephemeral_tokio(|k| {
        key = Some(k);
        libp2p_stream::Behaviour::new()
    });
    let (cloner_address, _) = cloner.listen().with_memory_addr_external().await;
    let cloner_id = *cloner.local_peer_id();
    let control = cloner.behaviour().new_control();
    let mut incoming = control.clone().accept(PROTOCOL_NAME).unwrap();
    let victims = [ids[0], ids[3]];
    for &v in &victims {
        let k = ids.iter().position(|id| *id == v).unwrap();
        cloner
            .dial(
                DialOpts::peer_id(v)
                    .addresses(vec![addresses[k].clone()])
                    .build(),
            )
            .unwrap();
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = cloner.select_next_some() => {}
                Some(_dropped) = incoming.next() => {}
            }
        }
    });

    let mut script: Option<tokio::task::JoinHandle<()>> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut check = tokio::time::interval(Duration::from_millis(GAP_MS));
    let mut cloned_at = None;
    let mut script_done = false;
    loop {
        let progress = futures::future::poll_fn(|cx| {
            let mut progressed = false;
            for (swarm, seen) in swarms.iter_mut().zip(seen.iter_mut()) {
                for _ in 0..64 {
                    match swarm.poll_next_unpin(cx) {
                        Poll::Ready(Some(SwarmEvent::Behaviour(Event::Blacklisted {
                            peer_id,
                        }))) => {
                            seen.blacklisted.insert(peer_id);
                            progressed = true;
                        }
                        Poll::Ready(Some(SwarmEvent::Behaviour(Event::ProofFound {
                            offender,
                            kind,
                        }))) => {
                            seen.found.push((offender, kind));
                            progressed = true;
                        }
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
        });
        tokio::select! {
            _ = progress => {}
            _ = check.tick() => {
                assert!(tokio::time::Instant::now() < deadline, "not blacklisted everywhere in time");
                // The honest overlay first fills up a little; then the cloner strikes once.
                if cloned_at.is_none() && swarms.iter().all(|s| s.behaviour().view().len() >= 3) {
                    let task = clone_descriptor(control.clone(), key.take().unwrap(), cloner_address.clone(), victims);
                    script = Some(tokio::spawn(task));
                    cloned_at = Some(tokio::time::Instant::now());
                }
                if let Some(handle) = script.take_if(|h| h.is_finished()) {
                    handle.await.expect("the cloner's script ran to its end");
                    script_done = true;
                }
                if script_done && seen.iter().all(|s| s.blacklisted.contains(&cloner_id)) {
                    break;
                }
            }
        }
    }
    let took = cloned_at.unwrap().elapsed();
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
