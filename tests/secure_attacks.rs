//! SecureCyclon's behaviour against hostile peers over real swarms (memory transport):
//!
//! - a cloner signs two hand-overs of one descriptor (its own fresh one, to two honest
//!   nodes) with its own key and the wire functions, and delivers them in two joins on
//!   `/cyclon/2.0.0`, again every few gaps as a real cloner would: the honest nodes
//!   (`secure::Behaviour`) must find the contradiction, blacklist the cloner everywhere, and
//!   blacklist no one else (6 and 20 honest nodes);
//! - 20 honest nodes against the cloner and three rate-honest hoarders: the cloner is
//!   blacklisted everywhere, the hoarders hold at most twice their fair share;
//! - a peer sending garbage, an oversized length, a message out of place and a forged
//!   signature: each is counted by reason, no one is blacklisted, and the node goes on
//!   exchanging with honest peers.

mod support;

use std::{collections::HashSet, time::Duration};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{
    Multiaddr, PeerId, Stream, Swarm,
    identity::Keypair,
    swarm::{SwarmEvent, dial_opts::DialOpts},
};
use libp2p_cyclon::{
    secure::{
        self, Accept, Advance, Event, HandOver, HandOverKind, Incoming, Invalid, Link, Open,
        ProofKind, Scheme, SecureParams, SecureView,
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

/// A cloner: a raw peer with a SecureCyclon core of its own, which it uses to mint and to
/// sign the first hand-over of each descriptor, and its key, which it uses to sign more.
struct Cloner {
    control: Opener,
    key: Keypair,
    address: Multiaddr,
    view: RawView,
    rng: StdRng,
}

impl Cloner {
    fn new(control: Opener, key: Keypair, address: Multiaddr) -> Self {
        let mut rng = StdRng::seed_from_u64(7);
        let shuffle = ShuffleParams::new(C, L).with_defence(Defence::Secure(params()));
        let signer = KeypairSigner::new(key.clone()).unwrap();
        let view =
            RawView::new_identity(shuffle, Libp2pScheme, signer, now_ms(), &mut rng).unwrap();
        Self {
            control,
            key,
            address,
            view,
            rng,
        }
    }

    /// Sends `open` to `victim` on a stream of its own; returns the stream and the victim's
    /// `Accept`, or `None` when no stream opened, the write failed or the victim refused (it
    /// blacklisted the cloner, or its join budget is spent).
    async fn offer(
        &mut self,
        victim: PeerId,
        open: Open<PeerId, Vec<Multiaddr>, Vec<u8>, [u8; 32]>,
        out: &Peers,
    ) -> Option<(Stream, Accept<PeerId, Vec<Multiaddr>, Vec<u8>, [u8; 32]>)> {
        let mut stream = self.control.open(victim).await.ok()?;
        try_write_frame(&mut stream, &wire::encode_frame(&Frame::Open(open), out)).await?;
        let back = Peers {
            sender: victim,
            receiver: out.sender,
        };
        let reply = try_read_frame(&mut stream).await?;
        match wire::decode_frame(&reply, &back, &WireLimits::default()) {
            Ok(Frame::Accept(accept)) => Some((stream, accept)),
            _ => None,
        }
    }

    /// One strike: mints a descriptor, hands it to `victims[0]` (signed by its core) and to
    /// each other victim (more `TRANSFER`s of the same position, signed by hand), each in a
    /// join, and closes every exchange properly. Returns itself and how many victims
    /// accepted (one that already blacklisted the cloner refuses). The first victim's answer
    /// is the exchange its core signed for: if it does not accept, the strike ends there.
    async fn strike(mut self, victims: Vec<PeerId>) -> (Self, usize) {
        let me = self.key.public().to_peer_id();
        let now = now_ms();
        let Ok(selected) = self.view.join(now, victims[0]) else {
            return (self, 0);
        };
        let Ok((open, _)) =
            self.view
                .open(&mut self.rng, now, selected.id, vec![self.address.clone()])
        else {
            self.view.abandon(selected.id);
            return (self, 0);
        };
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
                signature: self
                    .key
                    .sign(&wire::handover_signature_input(&handover))
                    .unwrap(),
            };
            opens.push((victim, clone));
        }
        let mut closing = None;
        let mut accepted = 0;
        for (victim, open) in opens {
            let out = Peers {
                sender: me,
                receiver: victim,
            };
            let Some((mut stream, accept)) = self.offer(victim, open, &out).await else {
                if victim == victims[0] {
                    // The exchange the core signed for is over: no strike this time.
                    break;
                }
                continue;
            };
            accepted += 1;
            // The closing step (no transfer) comes from the cloner's core, once.
            if closing.is_none() {
                let (next, _) = self.view.advance(
                    &mut self.rng,
                    now_ms(),
                    selected.id,
                    Incoming::Accept(accept),
                );
                let Advance::SendAndFinish(mut step) = next else {
                    panic!("{next:?}")
                };
                step.suspects.clear();
                step.proofs.clear();
                assert!(step.transfer.is_none());
                closing = Some(step);
            }
            let step = Frame::Step(closing.clone().unwrap());
            let _ = try_write_frame(&mut stream, &wire::encode_frame(&step, &out)).await;
            let _ = bounded(stream.close()).await;
        }
        if closing.is_none() {
            self.view.fail(selected.id);
        }
        (self, accepted)
    }
}

/// The cloner's campaign, as a real cloner runs it: a strike on `copies` honest nodes with
/// room (see [`victims_with_room`]) every `STRIKE_EVERY` gaps, until every honest node
/// blacklists it. Returns how many strikes it took.
///
/// A clone is found when the samples of one copy meet a node that saw another in full, or
/// when two copies are redeemed: likely, not certain, before the copies expire. One strike
/// of two copies among 20 honest nodes went unfound in about one run in six; repeated
/// strikes make the outcome certain in practice (the limit allows `MAX_STRIKES`).
async fn clone_until_blacklisted(
    swarms: &mut [Swarm<secure::Behaviour>],
    seen: &mut [Seen],
    mut cloner: Cloner,
    copies: usize,
) -> usize {
    const STRIKE_EVERY: u64 = 10;
    const MAX_STRIKES: usize = 12;
    let cloner_id = cloner.key.public().to_peer_id();
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for strike in 1..=MAX_STRIKES {
        let victims: Vec<PeerId> = victims_with_room(swarms, seen, copies, &cloner_id)
            .await
            .into_iter()
            .map(|k| ids[k])
            .collect();
        let mut task = Some(tokio::spawn(cloner.strike(victims)));
        let mut done = None;
        let ok = run_until(swarms, seen, Duration::from_secs(60), |_, _| {
            if task.as_ref().is_some_and(|t| t.is_finished()) {
                done = task.take();
            }
            done.is_some()
        })
        .await;
        assert!(ok, "not done in time: strike {strike}");
        let (back, accepted) = done.unwrap().await.expect("the strike ran to its end");
        cloner = back;
        let wait = Duration::from_millis(STRIKE_EVERY * GAP_MS);
        let all = run_until(swarms, seen, wait, |_, seen| {
            seen.iter().all(|s| s.blacklisted.contains(&cloner_id))
        })
        .await;
        println!(
            "strike {strike}: {accepted} of {copies} copies taken; blacklisted by {} of {}",
            seen.iter()
                .filter(|s| s.blacklisted.contains(&cloner_id))
                .count(),
            seen.len()
        );
        if all {
            return strike;
        }
    }
    panic!("the cloner was not blacklisted everywhere after {MAX_STRIKES} strikes");
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
    done: impl FnMut(&[Swarm<secure::Behaviour>], &[Seen]) -> bool,
) -> bool {
    let check = Duration::from_millis(GAP_MS);
    support::run_until(swarms, seen, Seen::record, check, limit, done).await
}

/// Waits for `copies` honest nodes with a free slot that have not blacklisted `cloner`, and
/// returns them: the cloner strikes
/// there, so that they keep their clones (a join's descriptor only enters a free slot, and a
/// clone no one keeps does no harm; the samples of a view show how full it is).
async fn victims_with_room(
    swarms: &mut [Swarm<secure::Behaviour>],
    seen: &mut [Seen],
    copies: usize,
    cloner: &PeerId,
) -> Vec<usize> {
    let mut victims = Vec::new();
    let ok = run_until(swarms, seen, Duration::from_secs(60), |swarms, seen| {
        victims = (0..swarms.len())
            .filter(|&k| {
                swarms[k].behaviour().view().len() < C && !seen[k].blacklisted.contains(cloner)
            })
            .take(copies)
            .collect();
        victims.len() == copies
    })
    .await;
    assert!(ok, "not done in time: {copies} views with room");
    victims
}

/// `n` honest nodes fill their views a little; a cloner hands descriptors to `copies` of them
/// at a time ([`clone_until_blacklisted`]); every honest node must blacklist the cloner, and
/// only it.
async fn cloner_is_blacklisted_everywhere(n: usize, copies: usize) {
    let (mut swarms, addresses, ids) = honest_ring(n).await;
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let targets: Vec<(PeerId, Multiaddr)> = ids.iter().copied().zip(addresses).collect();
    let (key, control, cloner_address) = raw_peer(&targets).await;
    let cloner_id = key.public().to_peer_id();
    assert!(
        run_until(
            &mut swarms,
            &mut seen,
            Duration::from_secs(60),
            |swarms, _| { swarms.iter().all(|s| s.behaviour().view().len() >= 3) }
        )
        .await,
        "not done in time: views of 3"
    );
    let cloner = Cloner::new(control, key, cloner_address);
    let started = tokio::time::Instant::now();
    let strikes = clone_until_blacklisted(&mut swarms, &mut seen, cloner, copies).await;
    let took = started.elapsed();
    let finders: Vec<usize> = (0..n).filter(|&k| !seen[k].found.is_empty()).collect();
    println!(
        "blacklisted by all {n} honest nodes after {strikes} strike(s), {:.1} s ({:.0} gaps) after the first; proofs found by nodes {finders:?}",
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
    cloner_is_blacklisted_everywhere(6, 2).await;
}

#[tokio::test]
async fn a_cloner_of_two_copies_is_blacklisted_by_twenty_honest_nodes_and_no_one_else() {
    cloner_is_blacklisted_everywhere(20, 2).await;
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

/// The hoarders' core type.
type RawView = SecureView<PeerId, Vec<Multiaddr>, Libp2pScheme, KeypairSigner>;

/// Runs `io` under a bound, so that a silent peer cannot stall a hoarder.
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

/// One member of a rate-honest hoarding coalition: it speaks the protocol with a core of its
/// own and its own key, mints at the allowed rate and never clones, but keeps every honest
/// descriptor it receives and hands on only its own: its answers carry no transfer, and its
/// exchanges end after the responder's first transfer. So it takes one honest descriptor per
/// exchange, either role, and gives back only its fresh one. (The simulator's hoarders also
/// pool the coalition's descriptors, so that each exchange can hand out several; these do
/// not: that is the simulator's `deplete` attack.)
struct Hoarder {
    me: PeerId,
    address: Multiaddr,
    view: RawView,
    rng: StdRng,
    control: libp2p_stream::Control,
    dial: futures::channel::mpsc::UnboundedSender<(PeerId, Vec<Multiaddr>)>,
    book: std::collections::HashMap<PeerId, Vec<Multiaddr>>,
}

impl Hoarder {
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
                    // Hoarding: the transfer the core signed is never sent.
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
                        // Hoarding: nothing of its holdings handed on.
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

/// Starts a hoarder that knows `seeds`; returns its peer id.
async fn spawn_hoarder(seeds: &[(PeerId, Multiaddr)], seed: u64) -> PeerId {
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
    let hoarder = Hoarder {
        me,
        address,
        view,
        rng,
        control,
        dial,
        book,
    };
    tokio::spawn(hoarder.run(incoming));
    me
}

/// The target: 20 honest nodes against 4 malicious ones, a coalition of three
/// rate-honest hoarders from the start ([`Hoarder`]: they never clone, mint at the allowed
/// rate, keep every honest descriptor they receive and hand on only their own), and a cloner
/// once the views have filled. The cloner is blacklisted by every honest node and no one else
/// is (hoarding proves nothing); the honest overlay stays in one piece and filled; over the
/// second half of a run of two descriptor lifetimes after that, the hoarders hold at most
/// twice their fair share of the honest view slots (3 of the 22 others each honest node can
/// hold).
#[tokio::test]
async fn twenty_honest_nodes_against_a_cloner_and_three_hoarders() {
    let n = 20;
    let (mut swarms, addresses, ids) = honest_ring(n).await;
    let mut seen: Vec<Seen> = (0..n).map(|_| Seen::default()).collect();
    let mut hoarders = HashSet::new();
    for k in 0..3 {
        let seeds = [(ids[5 * k], addresses[5 * k].clone())];
        hoarders.insert(spawn_hoarder(&seeds, 100 + k as u64).await);
    }
    let targets: Vec<(PeerId, Multiaddr)> = ids.iter().copied().zip(addresses.clone()).collect();
    let (key, control, cloner_address) = raw_peer(&targets).await;
    let cloner_id = key.public().to_peer_id();
    let share = |swarms: &[Swarm<secure::Behaviour>]| -> f64 {
        let (mut bad, mut all) = (0usize, 0usize);
        for s in swarms {
            for h in s.behaviour().view().holdings() {
                all += 1;
                bad += usize::from(hoarders.contains(h.creator));
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
    let cloner = Cloner::new(control, key, cloner_address);
    let strikes = clone_until_blacklisted(&mut swarms, &mut seen, cloner, 2).await;
    // Then the overlay runs on for two descriptor lifetimes (2 c gaps each) under the
    // hoarders; their share is read every gap of the second.
    let lifetime = Duration::from_millis(2 * C as u64 * GAP_MS);
    let start = tokio::time::Instant::now();
    let mut shares = Vec::new();
    let ok = run_until(&mut swarms, &mut seen, lifetime * 4, |swarms, _| {
        if start.elapsed() >= lifetime {
            shares.push(share(swarms));
        }
        start.elapsed() >= 2 * lifetime
    })
    .await;
    assert!(ok, "not done in time: two lifetimes");
    let mean_share = shares.iter().sum::<f64>() / shares.len() as f64;
    let max_share = shares.iter().cloned().fold(0.0, f64::max);
    let fair = 3.0 / 22.0;
    let honest: HashSet<PeerId> = ids.iter().copied().collect();
    let lens: Vec<usize> = swarms.iter().map(|s| s.behaviour().view().len()).collect();
    println!(
        "the cloner blacklisted by all {n} honest nodes after {strikes} strike(s); the hoarders' share of honest views over the second lifetime: mean {mean_share:.2}, max {max_share:.2} (fair share {fair:.2}); views {lens:?}, {:.0} % full",
        100.0 * full(&swarms),
    );
    for (k, s) in seen.iter().enumerate() {
        assert_eq!(s.blacklisted, HashSet::from([cloner_id]), "node {k}");
        assert!(s.blacklisted.is_disjoint(&honest));
    }
    assert!(full(&swarms) >= 0.6, "honest views emptied: {lens:?}");
    assert!(
        mean_share <= 2.0 * fair,
        "the hoarders hold {mean_share:.2} of the honest slots (fair share {fair:.2})"
    );
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
