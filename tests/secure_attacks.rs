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
/// and to each other victim (more `TRANSFER`s of the same position, signed by hand), each in
/// a join, and closes every exchange properly. Returns when every victim accepted.
async fn clone_descriptor(
    mut control: Opener,
    key: Keypair,
    address: Multiaddr,
    victims: Vec<PeerId>,
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
    // The clones: the same descriptor's first position handed to the other victims.
    let mut opens = vec![(victims[0], open.clone())];
    for &victim in &victims[1..] {
        let mut clone = open.clone();
        let handover = HandOver {
            prev: Libp2pScheme.descriptor_digest(&open.fresh.body),
            to: victim,
            kind: HandOverKind::Transfer,
        };
        clone.fresh.links[0] = Link {
            to: victim,
            kind: HandOverKind::Transfer,
            signature: key
                .sign(&wire::handover_signature_input(&handover))
                .unwrap(),
        };
        opens.push((victim, clone));
    }
    let mut closing = None;
    for (victim, open) in opens {
        let mut stream = control.open(victim).await.unwrap();
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

/// A raw peer's way to open streams: it connects first (idle connections close after 5 s),
/// then opens the stream.
struct Opener {
    control: libp2p_stream::Control,
    connect:
        futures::channel::mpsc::UnboundedSender<(PeerId, futures::channel::oneshot::Sender<()>)>,
}

impl Opener {
    async fn open(&mut self, peer: PeerId) -> Result<Stream, libp2p_stream::OpenStreamError> {
        let (tx, rx) = futures::channel::oneshot::channel();
        self.connect.unbounded_send((peer, tx)).unwrap();
        let _ = rx.await;
        self.control.open_stream(peer, PROTOCOL_NAME).await
    }
}

/// A raw peer: a swarm that opens `/cyclon/2.0.0` streams by hand (and takes, then drops,
/// those opened to it), able to reach `targets`, running in its own task. Returns its key,
/// stream opener and address.
async fn raw_peer(targets: &[(PeerId, Multiaddr)]) -> (Keypair, Opener, Multiaddr) {
    let mut key = None;
    let mut swarm = Swarm::new_ephemeral_tokio(|k| {
        key = Some(k);
        libp2p_stream::Behaviour::new()
    });
    let (address, _) = swarm.listen().with_memory_addr_external().await;
    let control = swarm.behaviour().new_control();
    let mut incoming = control.clone().accept(PROTOCOL_NAME).unwrap();
    let book: std::collections::HashMap<PeerId, Multiaddr> = targets.iter().cloned().collect();
    let (connect, mut requests) =
        futures::channel::mpsc::unbounded::<(PeerId, futures::channel::oneshot::Sender<()>)>();
    tokio::spawn(async move {
        let mut waiting: Vec<(PeerId, futures::channel::oneshot::Sender<()>)> = Vec::new();
        loop {
            tokio::select! {
                event = swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionEstablished { peer_id, .. } = event {
                        for (_, tx) in waiting.extract_if(.., |(p, _)| *p == peer_id) {
                            let _ = tx.send(());
                        }
                    }
                }
                Some((peer, tx)) = requests.next() => {
                    if swarm.is_connected(&peer) {
                        let _ = tx.send(());
                    } else if let Some(address) = book.get(&peer) {
                        let _ = swarm.dial(DialOpts::peer_id(peer).addresses(vec![address.clone()]).build());
                        waiting.push((peer, tx));
                    }
                }
                Some(_dropped) = incoming.next() => {}
            }
        }
    });
    (key.unwrap(), Opener { control, connect }, address)
}

/// Polls the swarms, recording events, until `done` holds (checked every gap) or `limit`
/// passes; returns whether `done` held.
async fn run_until(
    swarms: &mut [Swarm<secure::Behaviour>],
    seen: &mut [Seen],
    limit: Duration,
    mut done: impl FnMut(&[Swarm<secure::Behaviour>], &[Seen]) -> bool,
) -> bool {
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
                    return true;
                }
                if tokio::time::Instant::now() >= deadline {
                    return false;
                }
            }
        }
    }
}

/// Waits for `copies` honest nodes with a free slot and returns them: the cloner strikes
/// there, so that they keep their clones (a join's descriptor only enters a free slot, and a
/// clone no one keeps does no harm; the samples of a view show how full it is).
async fn victims_with_room(
    swarms: &mut [Swarm<secure::Behaviour>],
    seen: &mut [Seen],
    copies: usize,
) -> Vec<usize> {
    let mut victims = Vec::new();
    let ok = run_until(swarms, seen, Duration::from_secs(60), |swarms, _| {
        victims = (0..swarms.len())
            .filter(|&k| swarms[k].behaviour().view().len() < C)
            .take(copies)
            .collect();
        victims.len() == copies
    })
    .await;
    assert!(ok, "not done in time: {copies} views with room");
    victims
}

/// `n` honest nodes fill their views a little; a cloner hands its fresh descriptor to
/// `copies` of them; every honest node must blacklist the cloner, and only it.
///
/// A clone is found when the samples of one copy meet a node that saw another in full:
/// likely, not certain. Two copies among 6 nodes were always found (within 1-3 gaps); among
/// 20 nodes one run in about six found none within 90 s, so that network gets four copies.
async fn cloner_is_blacklisted_everywhere(n: usize, copies: usize, limit: Duration) {
    let (mut swarms, addresses, ids) = honest_ring(n).await;
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let targets: Vec<(PeerId, Multiaddr)> = ids.iter().copied().zip(addresses).collect();
    let (key, control, cloner_address) = raw_peer(&targets).await;
    let cloner_id = key.public().to_peer_id();
    assert!(
        run_until(&mut swarms, &mut seen, limit, |swarms, _| {
            swarms.iter().all(|s| s.behaviour().view().len() >= 3)
        })
        .await,
        "not done in time: views of 3"
    );
    let victims: Vec<PeerId> = victims_with_room(&mut swarms, &mut seen, copies)
        .await
        .into_iter()
        .map(|k| ids[k])
        .collect();
    let cloned_at = tokio::time::Instant::now();
    let mut script = Some(tokio::spawn(clone_descriptor(
        control,
        key,
        cloner_address,
        victims,
    )));
    let mut script_done = false;
    let mut finished = None;
    let ok = run_until(&mut swarms, &mut seen, limit, |_, seen| {
        if script.as_ref().is_some_and(|h| h.is_finished()) {
            finished = script.take();
            script_done = true;
        }
        script_done && seen.iter().all(|s| s.blacklisted.contains(&cloner_id))
    })
    .await;
    assert!(ok, "not done in time: the cloner blacklisted everywhere");
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
    // The proof travelled in `ProofPush`es (and in exchange messages).
    let sent: u64 = swarms
        .iter()
        .map(|s| s.behaviour().stats().pushes_sent)
        .sum();
    let received: u64 = swarms
        .iter()
        .map(|s| s.behaviour().stats().pushes_received)
        .sum();
    println!("proof pushes: {sent} sent, {received} received");
    assert!(sent >= 1 && received >= 1);
}

#[tokio::test]
async fn a_cloner_is_blacklisted_by_six_honest_nodes_and_no_one_else() {
    cloner_is_blacklisted_everywhere(6, 2, Duration::from_secs(60)).await;
}

#[tokio::test]
async fn a_cloner_of_four_copies_is_blacklisted_by_twenty_honest_nodes_and_no_one_else() {
    cloner_is_blacklisted_everywhere(20, 4, Duration::from_secs(90)).await;
}

/// Opens a stream to `peer` and writes `bytes` raw; returns the stream.
async fn send_raw(control: &mut Opener, peer: PeerId, bytes: &[u8]) -> Stream {
    let mut stream = control.open(peer).await.unwrap();
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
    mut control: Opener,
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
    let mut stream = control.open(victim).await.unwrap();
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
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(30),
        |swarms, _| {
            let invalid = swarms[0].behaviour().stats().invalid;
            reasons.iter().all(|&r| invalid.get(r) >= 1)
        },
    )
    .await;
    assert!(ok, "not done in time: every input counted");
    let reason = script.await.expect("the hostile script ran to its end");
    assert_eq!(reason, secure::RefuseReason::Invalid);
    let invalid = swarms[0].behaviour().stats().invalid;
    for r in reasons {
        assert_eq!(invalid.get(r), 1, "{}", r.as_str());
    }
    assert_eq!(invalid.total(), 4);
    // The node goes on exchanging with honest peers, and no one was blacklisted.
    let before = seen[0].completed;
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(30),
        |_, seen| seen[0].completed >= before + 3,
    )
    .await;
    assert!(ok, "not done in time: exchanges go on");
    for (k, s) in seen.iter().enumerate() {
        assert!(s.blacklisted.is_empty(), "node {k}");
        assert!(!swarms[k].behaviour().view().is_blacklisted(&hostile));
    }
}

/// The depleters' core type.
type RawView = SecureView<PeerId, Vec<Multiaddr>, Libp2pScheme, KeypairSigner>;

/// Runs `io` under a bound, so that a silent peer cannot stall a depleter.
async fn bounded<T>(io: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(2), io).await.ok()
}

/// Writes one frame, or `None` if the stream fails or stalls.
async fn try_write_frame(stream: &mut Stream, bytes: &[u8]) -> Option<()> {
    let mut out = Vec::new();
    varint(bytes.len(), &mut out);
    out.extend_from_slice(bytes);
    bounded(async {
        stream.write_all(&out).await.ok()?;
        stream.flush().await.ok()
    })
    .await
    .flatten()
}

fn varint(mut n: usize, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads one frame, or `None` if the stream ends or stalls.
async fn try_read_frame(stream: &mut Stream) -> Option<Vec<u8>> {
    bounded(async {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).await.ok()?;
            len |= usize::from(b[0] & 0x7f) << shift;
            shift += 7;
            if b[0] & 0x80 == 0 {
                break;
            }
            if shift > 28 {
                return None;
            }
        }
        let mut buf = vec![0u8; len.min(64 * 1024)];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf)
    })
    .await
    .flatten()
}

/// One member of a depleting coalition (the simulator's `deplete` attack): it speaks the
/// protocol with a core of its own and its own key, but hands on nothing it can keep: its
/// answers carry no transfer, and its exchanges end after the responder's first transfer.
/// So it takes one descriptor per exchange, either role, and gives back only its fresh one.
struct Depleter {
    me: PeerId,
    address: Multiaddr,
    view: RawView,
    rng: StdRng,
    control: libp2p_stream::Control,
    dial: futures::channel::mpsc::UnboundedSender<(PeerId, Vec<Multiaddr>)>,
    book: std::collections::HashMap<PeerId, Vec<Multiaddr>>,
}

impl Depleter {
    async fn run(mut self, mut incoming: libp2p_stream::IncomingStreams) {
        let mut round = tokio::time::interval(Duration::from_millis(GAP_MS));
        loop {
            tokio::select! {
                _ = round.tick() => self.initiate().await,
                Some((peer, stream)) = incoming.next() => self.answer(peer, stream).await,
            }
        }
    }

    fn peers(&self, other: PeerId) -> (Peers, Peers) {
        let out = Peers {
            sender: self.me,
            receiver: other,
        };
        let back = Peers {
            sender: other,
            receiver: self.me,
        };
        (out, back)
    }

    async fn initiate(&mut self) {
        let now = now_ms();
        self.view.tick(now);
        for h in self.view.holdings() {
            self.book.insert(*h.creator, h.addresses.clone());
        }
        let Ok(selected) = self.view.select(&mut self.rng, now) else {
            return;
        };
        let target = selected.target;
        let (out, back) = self.peers(target);
        if let Some(addresses) = selected
            .addresses
            .clone()
            .or_else(|| self.book.get(&target).cloned())
        {
            let _ = self.dial.unbounded_send((target, addresses));
        }
        let stream = bounded(self.control.open_stream(target, PROTOCOL_NAME)).await;
        let Some(Ok(mut stream)) = stream else {
            self.view.abandon(selected.id);
            return;
        };
        let Ok((open, _)) = self.view.open(
            &mut self.rng,
            now_ms(),
            selected.id,
            vec![self.address.clone()],
        ) else {
            self.view.abandon(selected.id);
            return;
        };
        let frame = wire::encode_frame(&Frame::Open(open), &out);
        if try_write_frame(&mut stream, &frame).await.is_none() {
            self.view.fail(selected.id);
            return;
        }
        let reply = try_read_frame(&mut stream).await;
        match reply.and_then(|r| wire::decode_frame(&r, &back, &WireLimits::default()).ok()) {
            Some(Frame::Accept(accept)) => {
                let (next, _) = self.view.advance(
                    &mut self.rng,
                    now_ms(),
                    selected.id,
                    Incoming::Accept(accept),
                );
                if let Advance::Send(mut step) | Advance::SendAndFinish(mut step) = next {
                    // Depletion: the transfer the core signed is never sent.
                    step.transfer = None;
                    let frame = wire::encode_frame(&Frame::Step(step), &out);
                    let _ = try_write_frame(&mut stream, &frame).await;
                }
                self.view.fail(selected.id);
            }
            Some(Frame::Refuse(refuse)) => {
                self.view.advance(
                    &mut self.rng,
                    now_ms(),
                    selected.id,
                    Incoming::Refuse(refuse),
                );
            }
            _ => {
                self.view.fail(selected.id);
            }
        }
        let _ = bounded(stream.close()).await;
    }

    async fn answer(&mut self, peer: PeerId, mut stream: Stream) {
        let (out, back) = self.peers(peer);
        let Some(bytes) = try_read_frame(&mut stream).await else {
            return;
        };
        match wire::decode_frame(&bytes, &back, &WireLimits::default()) {
            Ok(Frame::Open(open)) => {
                let (answer, _) = self.view.answer(&mut self.rng, now_ms(), &peer, open);
                match answer {
                    secure::Answer::Accept { id, mut accept } => {
                        // Depletion: nothing handed on.
                        accept.transfer = None;
                        let frame = wire::encode_frame(&Frame::Accept(accept), &out);
                        let _ = try_write_frame(&mut stream, &frame).await;
                        let _ = try_read_frame(&mut stream).await;
                        self.view.fail(id);
                    }
                    secure::Answer::Refuse(refuse) => {
                        let frame = wire::encode_frame(&Frame::Refuse(refuse), &out);
                        let _ = try_write_frame(&mut stream, &frame).await;
                    }
                    _ => {}
                }
            }
            Ok(Frame::Push(proofs)) => {
                self.view.receive_proofs(proofs);
            }
            _ => {}
        }
        let _ = bounded(stream.close()).await;
    }
}

/// Starts a depleter that knows `seeds`; returns its peer id.
async fn spawn_depleter(seeds: &[(PeerId, Multiaddr)], seed: u64) -> PeerId {
    let mut key = None;
    let mut swarm = Swarm::new_ephemeral_tokio(|k| {
        key = Some(k);
        libp2p_stream::Behaviour::new()
    });
    let (address, _) = swarm.listen().with_memory_addr_external().await;
    let me = *swarm.local_peer_id();
    let control = swarm.behaviour().new_control();
    let incoming = control.clone().accept(PROTOCOL_NAME).unwrap();
    let (dial, mut dials) = futures::channel::mpsc::unbounded::<(PeerId, Vec<Multiaddr>)>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = swarm.select_next_some() => {}
                Some((peer, addresses)) = dials.next() => {
                    if !swarm.is_connected(&peer) {
                        let _ = swarm.dial(DialOpts::peer_id(peer).addresses(addresses).build());
                    }
                }
            }
        }
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let shuffle = ShuffleParams::new(C, L).with_defence(Defence::Secure(params()));
    let signer = KeypairSigner::new(key.unwrap()).unwrap();
    let mut view =
        RawView::new_identity(shuffle, Libp2pScheme, signer, now_ms(), &mut rng).unwrap();
    let mut book = std::collections::HashMap::new();
    for (peer, address) in seeds {
        view.add_seed(*peer);
        book.insert(*peer, vec![address.clone()]);
    }
    let depleter = Depleter {
        me,
        address,
        view,
        rng,
        control,
        dial,
        book,
    };
    tokio::spawn(depleter.run(incoming));
    me
}

/// The target: 20 honest nodes against 4 malicious ones, a coalition of three
/// depleters (they keep what they receive and hand on nothing) from the start, and a cloner
/// once the views have filled. The cloner is blacklisted by every honest node and no one else
/// is (depletion proves nothing); the honest overlay stays in one piece and filled, and the
/// coalition's share of honest views is reported and bounded.
#[tokio::test]
async fn twenty_honest_nodes_against_a_cloner_and_three_depleters() {
    let n = 20;
    let (mut swarms, addresses, ids) = honest_ring(n).await;
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let mut coalition = HashSet::new();
    for k in 0..3 {
        let seeds = [(ids[5 * k], addresses[5 * k].clone())];
        coalition.insert(spawn_depleter(&seeds, 100 + k as u64).await);
    }
    let targets: Vec<(PeerId, Multiaddr)> = ids.iter().copied().zip(addresses.clone()).collect();
    let (key, control, cloner_address) = raw_peer(&targets).await;
    let cloner_id = key.public().to_peer_id();
    coalition.insert(cloner_id);
    let share = |swarms: &[Swarm<secure::Behaviour>]| -> f64 {
        let (mut bad, mut all) = (0usize, 0usize);
        for s in swarms {
            for h in s.behaviour().view().holdings() {
                all += 1;
                bad += usize::from(coalition.contains(h.creator));
            }
        }
        bad as f64 / all.max(1) as f64
    };
    let full = |swarms: &[Swarm<secure::Behaviour>]| -> f64 {
        let held: usize = swarms.iter().map(|s| s.behaviour().view().len()).sum();
        held as f64 / (swarms.len() * C) as f64
    };
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(60),
        |swarms, _| swarms.iter().all(|s| s.behaviour().view().len() >= 3),
    )
    .await;
    assert!(ok, "not done in time: views of 3");
    // Four copies (see `cloner_is_blacklisted_everywhere`), at nodes with room.
    const CLONES: usize = 4;
    let victims_at = victims_with_room(&mut swarms, &mut seen, CLONES).await;
    let victims: Vec<PeerId> = victims_at.iter().map(|&k| ids[k]).collect();
    let room: Vec<usize> = victims_at
        .iter()
        .map(|&k| C - swarms[k].behaviour().view().len())
        .collect();
    let mut script = Some(tokio::spawn(clone_descriptor(
        control,
        key,
        cloner_address,
        victims,
    )));
    let cloned_at = tokio::time::Instant::now();
    let mut finished = None;
    let mut held = [false; CLONES];
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(90),
        |swarms, seen| {
            if script.as_ref().is_some_and(|h| h.is_finished()) {
                finished = script.take();
            }
            for (k, &v) in victims_at.iter().enumerate() {
                held[k] |= swarms[v].behaviour().contacts().contains(&cloner_id);
            }
            finished.is_some() && seen.iter().all(|s| s.blacklisted.contains(&cloner_id))
        },
    )
    .await;
    let blacklisting = seen
        .iter()
        .filter(|s| s.blacklisted.contains(&cloner_id))
        .count();
    let finders: Vec<usize> = (0..n).filter(|&k| !seen[k].found.is_empty()).collect();
    assert!(
        ok,
        "the cloner blacklisted by {blacklisting} of {n} (proofs found by {finders:?}, script done: {}, victims' free slots {room:?}, the clone held by the victims: {held:?}); coalition share {:.2}",
        finished.is_some(),
        share(&swarms)
    );
    finished
        .unwrap()
        .await
        .expect("the cloner's script ran to its end");
    let took = cloned_at.elapsed();
    // Then the overlay runs on for a descriptor's lifetime (2 c gaps) under the depleters.
    let lifetime = Duration::from_millis(2 * C as u64 * GAP_MS);
    let start = tokio::time::Instant::now();
    let mut shares = Vec::new();
    let ok = run_until(&mut swarms, &mut seen, lifetime * 3, |swarms, _| {
        shares.push(share(swarms));
        start.elapsed() >= lifetime
    })
    .await;
    assert!(ok, "not done in time: a lifetime");
    let mean_share = shares.iter().sum::<f64>() / shares.len() as f64;
    let max_share = shares.iter().cloned().fold(0.0, f64::max);
    let honest: HashSet<PeerId> = ids.iter().copied().collect();
    let lens: Vec<usize> = swarms.iter().map(|s| s.behaviour().view().len()).collect();
    println!(
        "the cloner blacklisted by all {n} honest nodes {:.0} gaps after the clone (victims' free slots {room:?}); coalition share of honest views over a lifetime: mean {:.2}, max {:.2} (population {:.2}); views {lens:?}, {:.0} % full",
        took.as_millis() as f64 / GAP_MS as f64,
        mean_share,
        max_share,
        4.0 / 24.0,
        100.0 * full(&swarms),
    );
    for (k, s) in seen.iter().enumerate() {
        assert_eq!(s.blacklisted, HashSet::from([cloner_id]), "node {k}");
        assert!(s.blacklisted.is_disjoint(&honest));
    }
    assert!(full(&swarms) >= 0.6, "honest views emptied: {lens:?}");
    assert!(max_share <= 0.5, "the coalition took over: {max_share:.2}");
    // One component among the honest nodes alone.
    let mut reached = HashSet::from([ids[0]]);
    loop {
        let before = reached.len();
        for s in &swarms {
            let from = *s.local_peer_id();
            for to in s.behaviour().contacts() {
                if honest.contains(&to) && (reached.contains(&from) || reached.contains(&to)) {
                    reached.insert(from);
                    reached.insert(to);
                }
            }
        }
        if reached.len() == before {
            break;
        }
    }
    if reached.len() < n {
        let views: Vec<Vec<usize>> = swarms
            .iter()
            .map(|s| {
                s.behaviour()
                    .contacts()
                    .iter()
                    .filter_map(|p| ids.iter().position(|id| id == p))
                    .collect()
            })
            .collect();
        let stats: Vec<(u64, u64, u64)> = swarms
            .iter()
            .map(|s| {
                let st = s.behaviour().stats();
                (
                    st.exchanges_completed,
                    st.exchanges_failed,
                    st.invalid.total(),
                )
            })
            .collect();
        println!("honest contacts {views:?}\n(completed, failed, invalid) {stats:?}");
    }
    assert_eq!(reached.len(), n, "the honest overlay split");
}

/// Streams beyond the per-connection bound are refused and counted; the node still answers
/// exchanges once they are gone.
#[tokio::test]
async fn inbound_streams_beyond_the_bound_are_refused_and_counted() {
    let mut swarms = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let mut swarm = Swarm::new_ephemeral_tokio(|key| {
            let config = config()
                .with_max_inbound_streams_per_connection(2)
                .with_request_timeout(Duration::from_secs(2));
            let mut b = secure::Behaviour::new(key, config);
            b.pause();
            b
        });
        let (memory, _) = swarm.listen().with_memory_addr_external().await;
        addresses.push(memory);
        swarms.push(swarm);
    }
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    let mut seen: Vec<Seen> = (0..2).map(|_| Seen::default()).collect();
    let (_key, mut control, _) = raw_peer(&[(ids[0], addresses[0].clone())]).await;
    // Six silent streams on one connection: two are taken (and time out), four refused.
    let target = ids[0];
    let script = tokio::spawn(async move {
        let mut held = Vec::new();
        for _ in 0..6 {
            if let Ok(stream) = control.open(target).await {
                held.push(stream);
            }
        }
        held
    });
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(20),
        |swarms, _| swarms[0].behaviour().stats().inbound_refused >= 4,
    )
    .await;
    assert!(
        ok,
        "refused: {}",
        swarms[0].behaviour().stats().inbound_refused
    );
    let held = script.await.unwrap();
    assert_eq!(swarms[0].behaviour().stats().inbound_refused, 4);
    drop(held);
    // An honest peer's exchanges are still answered.
    swarms[1]
        .behaviour_mut()
        .add_seed(ids[0], addresses[0].clone());
    swarms[1].behaviour_mut().resume();
    let ok = run_until(
        &mut swarms,
        &mut seen,
        Duration::from_secs(20),
        |_, seen| seen[1].completed >= 2,
    )
    .await;
    assert!(ok, "no exchange completed after the refusals");
}
