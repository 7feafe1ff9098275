//! What signed peer records cost: bytes per shuffle and CPU per shuffle, `/cyclon/1.0.0`
//! against `/cyclon/1.1.0`, at the default `c = 20`, `l = 5`. A measurement program that prints
//! figures (not a test, and nothing in it can fail on speed):
//!
//! ```sh
//! cargo bench --bench records
//! ```
//!
//! Every peer has an ed25519 identity and two addresses, `/ip4/…/tcp/4001` and
//! `/ip4/…/udp/4001/quic-v1`; records carry a seq in Unix milliseconds, as the behaviour signs
//! them.
//!
//! - **Bytes**: a real node N (the behaviour, its view full of 20 verified entries) shuffles
//!   with raw `libp2p-stream` peers; the program reads the frames N writes: its request
//!   (its own entry and `l - 1` others) and its answer (`l` entries), on each version.
//! - **CPU per shuffle**: a raw peer R asks N to shuffle over and over on a memory transport
//!   (plaintext, yamux), sending `l` signed entries; N decodes, verifies, merges and answers
//!   with `l` entries, which R verifies as the behaviour would (`SignedPeerRecord::verify`). So
//!   each exchange does a whole shuffle's verification work: `2 l` records. Measured as the CPU
//!   time of the one thread that runs both swarms (`/proc/thread-self/schedstat`), and as wall
//!   time; the same exchange over `/cyclon/1.0.0` with the same peers and addresses, unsigned,
//!   is the baseline.
//! - **Per record**: signing and verifying one record.

#[path = "../tests/wire/mod.rs"]
mod wire;

use std::{future::Future, hint::black_box, time::Instant};

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identity::Keypair};
use libp2p_cyclon::{Behaviour, Config, PROTOCOL_NAME, PROTOCOL_NAME_V1_1, SignedPeerRecord};
use libp2p_swarm_test::SwarmExt;
use prost::Message as _;
use wire::{frame, proto, read_frame, request, response, send_raw, signed_entry};

const EXCHANGES: u32 = 2_000;

/// A peer of the fixture: its id, addresses, and signed record.
struct Fake {
    id: PeerId,
    addresses: Vec<Multiaddr>,
    record: Vec<u8>,
}

fn addresses(i: u32) -> Vec<Multiaddr> {
    let ip = format!("198.51.{}.{}", i / 250, i % 250 + 1);
    vec![
        format!("/ip4/{ip}/tcp/4001").parse().unwrap(),
        format!("/ip4/{ip}/udp/4001/quic-v1").parse().unwrap(),
    ]
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn fakes(n: u32) -> Vec<Fake> {
    (0..n)
        .map(|i| {
            let key = Keypair::generate_ed25519();
            let addresses = addresses(i);
            let record = SignedPeerRecord::sign(&key, &addresses, now_ms())
                .unwrap()
                .as_bytes()
                .to_vec();
            Fake {
                id: key.public().to_peer_id(),
                addresses,
                record,
            }
        })
        .collect()
}

/// The entry of `fake` as it travels on `version`.
fn wire_entry(fake: &Fake, signed: bool, age: u64) -> proto::Entry {
    if signed {
        signed_entry(&fake.id, &fake.record, age)
    } else {
        wire::entry(&fake.id, &fake.addresses, age)
    }
}

/// CPU time of the calling thread in nanoseconds (Linux), if readable.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Runs `work` while driving `node`.
async fn drive<T>(node: &mut Swarm<Behaviour>, work: impl Future<Output = T>) -> T {
    tokio::pin!(work);
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = node.select_next_some() => {}
        }
    }
}

/// A raw peer connected to `node`, driven in the background.
async fn raw_peer(node: &mut Swarm<Behaviour>) -> (PeerId, Multiaddr, libp2p_stream::Control) {
    let mut raw = Swarm::new_ephemeral_tokio(|_| libp2p_stream::Behaviour::new());
    let (address, _) = raw.listen().with_memory_addr_external().await;
    raw.connect(node).await;
    let id = *raw.local_peer_id();
    let control = raw.behaviour().new_control();
    tokio::spawn(raw.loop_on_next());
    (id, address, control)
}

/// Sends one request on `protocol` and returns the answer's frame (prefix included).
async fn exchange(
    node: &mut Swarm<Behaviour>,
    control: &libp2p_stream::Control,
    protocol: StreamProtocol,
    entries: Vec<proto::Entry>,
) -> Vec<u8> {
    let id = *node.local_peer_id();
    let send = send_raw(control.clone(), id, protocol, frame(&request(entries)));
    drive(node, send).await
}

/// Makes `node` shuffle with the raw peer `target` (put in its view as the oldest entry) and
/// returns the request frame's size.
async fn request_size(
    node: &mut Swarm<Behaviour>,
    control: &mut libp2p_stream::Control,
    target: (PeerId, &Multiaddr),
    accepts: StreamProtocol,
) -> usize {
    let mut incoming = control.accept(accepts.clone()).unwrap();
    let oldest = wire::entry(&target.0, std::slice::from_ref(target.1), 999);
    exchange(node, control, PROTOCOL_NAME, vec![oldest]).await;
    node.behaviour_mut().shuffle_now().unwrap();
    let answer = async {
        let (_, mut stream) = incoming.next().await.unwrap();
        let body = read_frame(&mut stream).await.unwrap();
        stream
            .write_all(&frame(&response(Vec::new())))
            .await
            .unwrap();
        stream.close().await.unwrap();
        body
    };
    let body = drive(node, answer).await;
    let prefix =
        unsigned_varint::encode::usize(body.len(), &mut unsigned_varint::encode::usize_buffer())
            .len();
    let message = proto::Message::decode(&body[..]).unwrap();
    let Some(proto::message::Payload::Request(request)) = message.payload else {
        panic!("not a request");
    };
    assert_eq!(request.entries.len(), 5);
    let signed = request
        .entries
        .iter()
        .filter(|e| !e.signed_peer_record.is_empty())
        .count();
    println!(
        "  request on {accepts}: {} bytes ({} of {} entries signed)",
        prefix + body.len(),
        signed,
        request.entries.len()
    );
    prefix + body.len()
}

/// Verifies the records of an answer as the behaviour does; returns how many verified.
fn verify_answer(frame_bytes: &[u8]) -> usize {
    let entries = wire::decode_response(frame_bytes).expect("an answer");
    entries
        .iter()
        .filter(|e| !e.signed_peer_record.is_empty())
        .filter(|e| {
            let peer = PeerId::from_bytes(&e.peer_id).unwrap();
            SignedPeerRecord::verify(&e.signed_peer_record, &peer, 512).is_ok()
        })
        .count()
}

async fn node(signed_records: bool) -> Swarm<Behaviour> {
    let config = Config::default()
        .without_inbound_rate_limit()
        .with_signed_records(signed_records);
    let mut node = Swarm::new_ephemeral_tokio(|key| {
        let mut behaviour = Behaviour::with_keypair(key, config);
        behaviour.pause();
        behaviour
    });
    node.listen().with_memory_addr_external().await;
    node
}

/// Makes `node` advertise (and sign) realistic addresses instead of its memory address, once
/// the raw peers are connected (they connect to external addresses).
fn go_public(node: &mut Swarm<Behaviour>) {
    let memory: Vec<Multiaddr> = node.external_addresses().cloned().collect();
    for address in addresses(999) {
        node.add_external_address(address);
    }
    for address in memory {
        node.remove_external_address(&address);
    }
    let mut advertised = node.behaviour().advertised_addresses();
    advertised.sort();
    let mut expected = addresses(999);
    expected.sort();
    assert_eq!(advertised, expected);
    assert!(node.behaviour().local_record().is_some());
}

async fn bytes(fakes: &[Fake]) {
    println!("bytes per shuffle (c = 20, l = 5, every entry signed where the version allows):");
    let mut n = node(true).await;
    let (_, _, control) = raw_peer(&mut n).await;
    let mut targets = Vec::new();
    for _ in 0..2 {
        targets.push(raw_peer(&mut n).await);
    }
    go_public(&mut n);
    for chunk in fakes[..20].chunks(5) {
        let entries = chunk.iter().map(|f| wire_entry(f, true, 0)).collect();
        exchange(&mut n, &control, PROTOCOL_NAME_V1_1, entries).await;
    }
    assert_eq!(n.behaviour().view_len(), 20);
    assert!(n.behaviour().view().all(|e| e.addresses().is_verified()));
    let mut totals = Vec::new();
    for (protocol, (target, address, mut control)) in
        [PROTOCOL_NAME, PROTOCOL_NAME_V1_1].into_iter().zip(targets)
    {
        let request =
            request_size(&mut n, &mut control, (target, &address), protocol.clone()).await;
        let answer = exchange(&mut n, &control, protocol.clone(), Vec::new()).await;
        let signed = wire::decode_response(&answer)
            .unwrap()
            .iter()
            .filter(|e| !e.signed_peer_record.is_empty())
            .count();
        println!(
            "  answer on {protocol}: {} bytes ({signed} of 5 entries signed)",
            answer.len()
        );
        totals.push(request + answer.len());
    }
    println!(
        "  shuffle (request + answer): {} bytes on 1.0.0, {} bytes on 1.1.0 (x{:.2})",
        totals[0],
        totals[1],
        totals[1] as f64 / totals[0] as f64
    );
    println!(
        "  one record: {} bytes; one plain entry's two addresses: {} bytes",
        fakes[0].record.len(),
        fakes[0]
            .addresses
            .iter()
            .map(|a| a.to_vec().len())
            .sum::<usize>()
    );
}

/// CPU and wall time per exchange of `l` entries each way on `protocol`.
async fn cpu(fakes: &[Fake], signed: bool) -> (f64, f64) {
    let mut n = node(signed).await;
    let (_, _, control) = raw_peer(&mut n).await;
    go_public(&mut n);
    let protocol = if signed {
        PROTOCOL_NAME_V1_1
    } else {
        PROTOCOL_NAME
    };
    let requests: Vec<Vec<proto::Entry>> = fakes
        .chunks(5)
        .map(|chunk| chunk.iter().map(|f| wire_entry(f, signed, 1)).collect())
        .collect();
    // Warm up: fill the view.
    for entries in &requests {
        exchange(&mut n, &control, protocol.clone(), entries.clone()).await;
    }
    let (cpu_start, wall_start) = (thread_cpu_ns(), Instant::now());
    let mut verified = 0;
    for i in 0..EXCHANGES as usize {
        let entries = requests[i % requests.len()].clone();
        let answer = exchange(&mut n, &control, protocol.clone(), entries).await;
        verified += black_box(verify_answer(&answer));
    }
    let wall = wall_start.elapsed().as_secs_f64() * 1e6 / f64::from(EXCHANGES);
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(start), Some(end)) => (end - start) as f64 / 1e3 / f64::from(EXCHANGES),
        _ => f64::NAN,
    };
    let stats = n.behaviour().stats();
    let checked = stats.exchanges_v1_0 + stats.exchanges_v1_1;
    assert!(checked >= u64::from(EXCHANGES));
    assert_eq!(stats.invalid.records_refused(), 0);
    if signed {
        assert_eq!(
            verified,
            5 * EXCHANGES as usize,
            "every answer carries l records"
        );
    }
    (cpu, wall)
}

fn per_record(fakes: &[Fake]) {
    let key = Keypair::generate_ed25519();
    let addresses = addresses(7);
    let runs = 5_000u32;
    let start = Instant::now();
    for seq in 0..runs {
        black_box(SignedPeerRecord::sign(&key, &addresses, u64::from(seq)).unwrap());
    }
    let sign = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    let start = Instant::now();
    for i in 0..runs as usize {
        let fake = &fakes[i % fakes.len()];
        black_box(SignedPeerRecord::verify(&fake.record, &fake.id, 512).unwrap());
    }
    let verify = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!("per record: sign {sign:.1} µs, verify {verify:.1} µs (wall, mean of {runs})");
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fakes = fakes(40);
    runtime.block_on(async {
        bytes(&fakes).await;
        println!("CPU per shuffle (l = 5 entries each way, both sides' work, {EXCHANGES} exchanges, one thread):");
        let mut rows = Vec::new();
        for signed in [false, true] {
            let (cpu, wall) = cpu(&fakes, signed).await;
            let name = if signed { "/cyclon/1.1.0" } else { "/cyclon/1.0.0" };
            println!("  {name}: {cpu:.0} µs CPU, {wall:.0} µs wall per shuffle");
            rows.push(cpu);
        }
        println!(
            "  signed records add {:.0} µs CPU per shuffle (x{:.2})",
            rows[1] - rows[0],
            rows[1] / rows[0]
        );
    });
    per_record(&fakes);
}
