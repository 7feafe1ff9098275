//! 30 `chat` processes on emulated hosts (network namespaces, as root; see
//! `examples/common/src/netns.rs`): Cyclon with neighbours, gossipsub, identify and a
//! connection limit, 10 % of them replaced while every live chat publishes lines. Every line a
//! chat publishes reaches every chat that was live for the whole run, and the hosts keep few
//! TCP connections open (counted with `ss` inside each namespace), against the chat that
//! dials every peer of its view (`--neighbours 0`, ignored: run with `--ignored`).
//!
//! Figures: `cargo test -p cyclon-chat --test netns -- --include-ignored --nocapture
//! --test-threads 1` (docs/production.md).

#![cfg(target_os = "linux")]

mod support;

use std::{
    process::Command,
    sync::Mutex,
    thread,
    time::{Duration, Instant},
};

use cyclon_examples::{
    netns::{Network, network_or_skip},
    testing::{Group, Output},
};
use support::{identity, members};

const PROGRAM: &str = env!("CARGO_BIN_EXE_chat");
const HOSTS: usize = 30;
const REPLACED: usize = 3;
const PORT: u16 = 4001;
const INTERVAL_MS: u64 = 500;
/// Bootstrap peers of a chat, drawn from those started before it.
const CONTACTS: usize = 2;
const WAIT: Duration = Duration::from_secs(60);

/// One scenario at a time: 30 processes share two cores.
static SERIAL: Mutex<()> = Mutex::new(());

struct Chat {
    host: usize,
    process: usize,
    id: String,
    address: String,
    /// Started before the run and never stopped.
    whole_run: bool,
    live: bool,
}

fn chat_on(network: &Network, host: usize, extra: &[&str]) -> Command {
    let mut command = network.exec(host, PROGRAM);
    let listen = format!("/ip4/{}/tcp/{PORT}", network.address(host));
    command.args(["--listen", &listen]);
    command.args(["--secret-key-seed", &(host + 1).to_string()]);
    command.args(["--interval-ms", &INTERVAL_MS.to_string()]);
    command.args([
        "--view-size",
        "8",
        "--shuffle-length",
        "4",
        "--rejoin-every",
        "3",
    ]);
    command.args(extra);
    command
}

/// Established TCP connections of `host` (both directions, listening sockets excluded).
fn connections(network: &Network, host: usize) -> usize {
    network
        .run_in(host, "ss", &["-Htn", "state", "established"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// A simple linear congruential generator: the test needs no cryptographic randomness.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize % n
    }
}

struct Run {
    /// Mean and largest number of established connections per host over the samples.
    mean_connections: f64,
    max_connections: usize,
    /// Lines published by chats live to the end, and deliveries missing at chats live for the
    /// whole run.
    published: usize,
    missing: Vec<String>,
}

fn run(test: &str, extra: &[&str]) -> Option<Run> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut network = network_or_skip(test)?;
    let mut group = Group::new();
    let mut rng = Lcg(0x5eed_c4a7);
    let mut chats: Vec<Chat> = Vec::new();
    let start = |network: &mut Network, group: &mut Group, chats: &[Chat], rng: &mut Lcg| {
        let host = network.add_host();
        let mut command = chat_on(network, host, extra);
        let live: Vec<&Chat> = chats.iter().filter(|c| c.live).collect();
        for _ in 0..CONTACTS.min(live.len()) {
            command.args(["--bootstrap", &live[rng.below(live.len())].address]);
        }
        let process = group.spawn(&format!("chat on host {host}"), command);
        let (id, address) = group.wait_until("a chat to listen", WAIT, |o| identity(&o[process]));
        Chat {
            host,
            process,
            id,
            address,
            whole_run: false,
            live: true,
        }
    };
    for _ in 0..HOSTS {
        let chat = start(&mut network, &mut group, &chats, &mut rng);
        chats.push(chat);
    }
    for chat in &mut chats {
        chat.whole_run = true;
    }
    // Until every chat sees at least two others in the chat (connected and subscribed).
    let begun = Instant::now();
    group.wait_until("every chat to see two others", WAIT, |o| {
        chats
            .iter()
            .all(|c| members(&o[c.process]).len() >= 2)
            .then_some(())
    });
    println!(
        "{test}: {HOSTS} chats meshed after {:.1} s",
        begun.elapsed().as_secs_f64()
    );

    // The run: every live chat publishes a line every 4 intervals; one chat is replaced every
    // 12 intervals (3 in all); connections are sampled every 4 intervals.
    let interval = Duration::from_millis(INTERVAL_MS);
    let mut published: Vec<(usize, String)> = Vec::new();
    let mut samples: Vec<usize> = Vec::new();
    let mut replaced = 0;
    for tick in 0..48u32 {
        thread::sleep(interval);
        if tick % 4 == 0 {
            // A chat publishes once it sees two others (a newcomer's first lines would find
            // nobody subscribed yet, and the chat says so instead of sending them).
            let ready: Vec<bool> = group.with_outputs(|o| {
                chats
                    .iter()
                    .map(|c| members(&o[c.process]).len() >= 2)
                    .collect()
            });
            for (k, chat) in chats.iter().enumerate() {
                if chat.live && ready[k] {
                    let line = format!("line {tick} from chat {k}");
                    group.write_line(chat.process, &line);
                    published.push((k, line));
                }
            }
        }
        if tick % 4 == 2 {
            for chat in chats.iter().filter(|c| c.live) {
                samples.push(connections(&network, chat.host));
            }
        }
        if tick % 12 == 6 && replaced < REPLACED {
            let live: Vec<usize> = (0..chats.len()).filter(|&k| chats[k].live).collect();
            let victim = live[rng.below(live.len())];
            group.kill(chats[victim].process);
            chats[victim].live = false;
            chats[victim].whole_run = false;
            let chat = start(&mut network, &mut group, &chats, &mut rng);
            chats.push(chat);
            replaced += 1;
        }
    }
    // Lines of chats that were live when they published them, wanted at every chat live for
    // the whole run (but their own author): wait for them, within a bound.
    let wanted: Vec<(usize, String)> = published
        .into_iter()
        .filter(|(author, _)| chats[*author].live)
        .collect();
    let receivers: Vec<usize> = (0..chats.len()).filter(|&k| chats[k].whole_run).collect();
    let missing = |o: &[Output]| -> Vec<String> {
        let mut missing = Vec::new();
        for (author, line) in &wanted {
            let expected = format!("{}: {line}", chats[*author].id);
            for &k in &receivers {
                if k != *author && !o[chats[k].process].stdout.contains(&expected) {
                    missing.push(format!("chat {k} lacks '{expected}'"));
                }
            }
        }
        missing
    };
    let deadline = Instant::now() + WAIT;
    let missing = loop {
        // (Distinct authors missing, for the figures.)
        let now_missing = group.with_outputs(|o| missing(o));
        if now_missing.is_empty() || Instant::now() > deadline {
            break now_missing;
        }
        thread::sleep(interval);
    };
    let mean = samples.iter().sum::<usize>() as f64 / samples.len().max(1) as f64;
    let max = samples.iter().copied().max().unwrap_or(0);
    let result = Run {
        mean_connections: mean,
        max_connections: max,
        published: wanted.len(),
        missing,
    };
    println!(
        "{test}: {} lines from live chats to {} chats live throughout; {} deliveries missing; \
         TCP connections per host: mean {:.2}, max {} ({} samples)",
        result.published,
        receivers.len(),
        result.missing.len(),
        result.mean_connections,
        result.max_connections,
        samples.len()
    );
    Some(result)
}

/// The chat as shipped: 4 neighbours, at most 12 connections per host.
#[test]
fn lines_reach_every_chat_over_few_stable_connections() {
    let Some(run) = run(
        "lines_reach_every_chat_over_few_stable_connections",
        &["--neighbours", "4", "--max-connections", "12"],
    ) else {
        return;
    };
    assert!(
        run.missing.is_empty(),
        "{} deliveries missing, e.g. {:?}",
        run.missing.len(),
        &run.missing[..run.missing.len().min(5)]
    );
    assert!(
        run.mean_connections <= 4.0 + 3.0,
        "mean {:.2} connections per host",
        run.mean_connections
    );
}

/// The chat before neighbours: it dials every peer of its view, and keeps idle connections a
/// minute (for the comparison in docs/production.md).
#[test]
#[ignore = "the comparison; run with --ignored --nocapture"]
fn dialling_every_view_peer_for_comparison() {
    if let Some(run) = run(
        "dialling_every_view_peer_for_comparison",
        &["--neighbours", "0"],
    ) {
        assert!(run.published > 0);
    }
}
