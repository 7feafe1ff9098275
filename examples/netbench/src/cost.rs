//! `netbench cost`: what a Cyclon shuffle costs on each transport: bytes split by layer,
//! connections opened, CPU time, memory per swarm, and whether one process sustains N swarms.

use std::{
    process::{Command as Process, ExitCode},
    time::{Duration, Instant},
};

use cyclon_examples::cli::{CyclonFlags, Topology};
use serde::{Deserialize, Serialize};

use crate::{
    meter::{Class, Counts},
    net::{self, Handle, Negotiation, Protocol, Settings, Stack},
    system::{self, Loopback},
    transport::Kind,
};

#[derive(clap::Args, Debug, Clone)]
#[command(
    mut_arg("view_size", |a| a.default_value("8")),
    mut_arg("shuffle_length", |a| a.default_value("4")),
    mut_arg("interval_ms", |a| a.default_value("1000")),
    mut_arg("request_timeout_ms", |a| a.default_value("5000"))
)]
pub struct CostArgs {
    /// Number of swarms, all in this process.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub nodes: usize,
    /// Transports to measure, each in a process of its own (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Kind::Memory, Kind::Tcp, Kind::Quic])]
    pub transport: Vec<Kind>,
    /// How the swarms learn about each other at the start.
    #[arg(long, value_enum, default_value_t = Topology::Random)]
    pub bootstrap: Topology,
    /// Intervals to run before measuring.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub warmup_intervals: u32,
    /// Intervals to measure.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub intervals: u32,
    /// How long a connection no behaviour uses stays open (libp2p's default: 10000).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub idle_timeout_ms: u64,
    /// multistream-select for the substreams a swarm opens: v1 (libp2p's default) or v1-lazy.
    #[arg(long, value_enum, default_value_t = Negotiation::V1)]
    pub negotiation: Negotiation,
    /// The behaviours beside Cyclon: alone, or node (identify and ping, as the node example).
    #[arg(long, value_enum, default_value_t = Stack::Alone)]
    pub stack: Stack,
    /// Plain Cyclon: every swarm signs its own entry, so `/cyclon/1.1.0` entries carry signed
    /// peer records (as SecureCyclon's descriptors always do).
    #[arg(long)]
    pub signed_records: bool,
    /// Do not move into a network namespace of its own (then QUIC's bytes are not counted).
    #[arg(long)]
    pub no_netns: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cyclon: CyclonFlags,
}

/// The environment variable that makes a child process measure one transport and print JSON.
const CHILD: &str = "NETBENCH_ONE_TRANSPORT";

/// What one transport costs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostResult {
    pub transport: String,
    pub nodes: usize,
    pub view_size: usize,
    pub shuffle_length: usize,
    pub interval_ms: u64,
    pub idle_timeout_ms: u64,
    pub negotiation: String,
    pub stack: String,
    /// `secure` when the swarms ran SecureCyclon (`/cyclon/2.0.0`; a shuffle is one
    /// exchange), `off` for plain Cyclon, else the defence's name.
    #[serde(default)]
    pub defence: String,
    /// Whether plain Cyclon's entries carried signed peer records (`--signed-records`).
    #[serde(default)]
    pub signed_records: bool,
    pub measured_s: f64,
    pub shuffles_completed: u64,
    pub shuffles_failed: u64,
    pub shuffles_expected: u64,
    pub cyclon_messages_per_shuffle: f64,
    /// Bytes per completed shuffle, by layer.
    pub bytes: Bytes,
    /// Transport bytes (on the socket; QUIC: UDP payload) over Cyclon payload, counting only
    /// what a shuffle costs on a connection that exists: payload, negotiation, framing.
    pub existing_connection_ratio: Option<f64>,
    /// All bytes written over the Cyclon payload.
    pub total_ratio: Option<f64>,
    pub connections_per_shuffle: f64,
    /// Bytes written to set up one connection (both sides).
    pub setup_bytes_per_connection: Option<f64>,
    pub cpu_us_per_shuffle: f64,
    pub cores_used: f64,
    pub rss_mib: f64,
    pub rss_per_swarm_kib: f64,
    pub open_connections_per_swarm: f64,
}

/// Bytes per completed shuffle; `None` where this transport does not let them be told apart.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bytes {
    pub cyclon_payload: f64,
    pub negotiation: f64,
    pub mux_framing: Option<f64>,
    pub security_framing: Option<f64>,
    /// QUIC: its packet headers, acknowledgements and encryption tags, after setup.
    pub transport_framing: Option<f64>,
    pub connection_setup: Option<f64>,
    pub other_protocols: f64,
    /// Everything written on the transport's sockets (QUIC: UDP payload).
    pub total: Option<f64>,
    /// IP packets on the loopback interface, headers and TCP acknowledgements included.
    pub ip: Option<f64>,
}

pub fn run(args: CostArgs) -> ExitCode {
    if let Ok(only) = std::env::var(CHILD) {
        let Ok(kind) = only.parse::<Kind>() else {
            return crate::fail(format!("{CHILD}={only}: not a transport"));
        };
        return match measure_here(&args, kind) {
            Ok(result) => {
                println!("{}", serde_json::to_string(&result).expect("serializable"));
                ExitCode::SUCCESS
            }
            Err(error) => crate::fail(error),
        };
    }
    let mut results = Vec::new();
    for &kind in &args.transport {
        if !args.json {
            eprintln!("measuring {kind}: {} swarms ...", args.nodes);
        }
        match measure_in_child(kind) {
            Ok(result) => results.push(result),
            Err(error) => return crate::fail(format!("{kind}: {error}")),
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).expect("serializable")
        );
    } else {
        print_table(&args, &results);
    }
    ExitCode::SUCCESS
}

/// Measures `kind` in a child process (a clean heap for the memory figures, and a network
/// namespace of its own).
fn measure_in_child(kind: Kind) -> Result<CostResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Process::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD, kind.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "{}: {}",
            output.status,
            stderr.lines().last().unwrap_or("")
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("bad output: {e}"))
}

fn measure_here(args: &CostArgs, kind: Kind) -> Result<CostResult, String> {
    let netns = kind.uses_kernel()
        && !args.no_netns
        && match system::enter_own_network_namespace() {
            Ok(()) => true,
            Err(error) => {
                eprintln!("note: no network namespace of its own ({error}): IP bytes not counted");
                false
            }
        };
    let secure = if args.cyclon.is_secure() {
        Some(args.cyclon.secure_config()?)
    } else {
        None
    };
    let mut config = args.cyclon.config();
    if secure.is_some() {
        // The plain behaviour is not built; its configuration only has to validate.
        config = config.with_defence(libp2p_cyclon::Defence::Off);
    }
    config
        .validate()
        .map_err(|e| format!("invalid Cyclon configuration: {e}"))?;
    let settings = Settings {
        secure,
        sign_records: args.signed_records,
        transport: kind,
        protocol: Protocol::Cyclon,
        stack: args.stack,
        cyclon: config,
        interval: args.cyclon.interval(),
        idle_timeout: Duration::from_millis(args.idle_timeout_ms),
        negotiation: args.negotiation,
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime
        .block_on(measure(args, settings, netns))
        .map_err(|e| e.to_string())
}

async fn measure(
    args: &CostArgs,
    settings: Settings,
    netns: bool,
) -> Result<CostResult, Box<dyn std::error::Error>> {
    let quic_setup = if settings.transport == Kind::Quic && netns {
        Some(quic_connection_bytes(&settings).await?)
    } else {
        None
    };
    let rss_before = system::resident_bytes();
    let handles = start_all(&settings, args.nodes, args.bootstrap).await?;
    let interval = settings.interval;
    tokio::time::sleep(interval * args.warmup_intervals).await;

    let start = (
        Counts::sum(handles.iter().map(|h| &h.meter)),
        system::cpu_time(),
        Instant::now(),
        Loopback::read(),
    );
    tokio::time::sleep(interval * args.intervals).await;
    let end = (
        Counts::sum(handles.iter().map(|h| &h.meter)),
        system::cpu_time(),
        Instant::now(),
        Loopback::read(),
    );
    let rss = system::resident_bytes();
    let mut connections = 0;
    for handle in &handles {
        connections += handle.known().await.map_or(0, |k| k.connections);
    }
    let counts = end.0.minus(start.0);
    let cpu = end.1.saturating_sub(start.1);
    let wall = end.2 - start.2;
    let loopback = match (netns, start.3, end.3) {
        (true, Some(before), Some(after)) => Some(after.minus(before)),
        _ => None,
    };

    let n = args.nodes as f64;
    let shuffles = counts.shuffles_completed.max(1) as f64;
    let per = |bytes: u64| bytes as f64 / shuffles;
    let payload = counts.payload(Class::Cyclon);
    let negotiation = counts.negotiation(Class::Cyclon);
    let other = counts.other_streams(Class::Cyclon);
    let connections_opened = counts.connections_out;
    let mut bytes = Bytes {
        cyclon_payload: per(payload),
        negotiation: per(negotiation),
        other_protocols: per(other),
        ip: loopback.map(|l| per(l.bytes)),
        ..Bytes::default()
    };
    let (existing, total, setup_per_connection) = if settings.transport == Kind::Quic {
        // QUIC's own bytes are seen only on the loopback interface (UDP payload); its setup
        // per connection was measured on its own before the run.
        match (loopback, quic_setup) {
            (Some(l), Some(per_connection)) => {
                let udp = l.bytes.saturating_sub(l.packets * system::UDP_IPV4_HEADERS);
                let setup = per_connection * connections_opened as f64;
                let framing = (udp as f64 - setup - counts.streams() as f64).max(0.0);
                bytes.total = Some(per(udp));
                bytes.connection_setup = Some(setup / shuffles);
                bytes.transport_framing = Some(framing / shuffles);
                (
                    Some((payload + negotiation) as f64 + framing),
                    Some(udp as f64),
                    Some(per_connection),
                )
            }
            _ => (None, None, None),
        }
    } else {
        let after_setup_raw = counts.raw_written - counts.setup_raw;
        let after_setup_secured = counts.secured_written - counts.setup_secured;
        let security = after_setup_raw.saturating_sub(after_setup_secured);
        let mux = after_setup_secured.saturating_sub(counts.streams());
        bytes.security_framing = Some(per(security));
        bytes.mux_framing = Some(per(mux));
        bytes.connection_setup = Some(per(counts.setup_raw));
        bytes.total = Some(per(counts.raw_written));
        (
            Some((payload + negotiation + security + mux) as f64),
            Some(counts.raw_written as f64),
            (connections_opened > 0).then(|| counts.setup_raw as f64 / connections_opened as f64),
        )
    };
    let ratio = |x: Option<f64>| x.map(|x| x / payload.max(1) as f64);
    let result = CostResult {
        transport: settings.transport.to_string(),
        nodes: args.nodes,
        view_size: args.cyclon.shuffle.view_size,
        shuffle_length: args.cyclon.shuffle.shuffle_length,
        interval_ms: args.cyclon.interval_ms,
        idle_timeout_ms: args.idle_timeout_ms,
        negotiation: format!("{:?}", settings.negotiation).to_lowercase(),
        stack: format!("{:?}", settings.stack).to_lowercase(),
        defence: args
            .cyclon
            .shuffle
            .defence
            .map_or("off".to_string(), |d| format!("{d:?}").to_lowercase()),
        signed_records: settings.sign_records,
        measured_s: wall.as_secs_f64(),
        shuffles_completed: counts.shuffles_completed,
        shuffles_failed: counts.shuffles_failed,
        shuffles_expected: (n * wall.as_secs_f64() / interval.as_secs_f64()).round() as u64,
        cyclon_messages_per_shuffle: counts.messages(Class::Cyclon) as f64 / shuffles,
        bytes,
        existing_connection_ratio: ratio(existing),
        total_ratio: ratio(total),
        connections_per_shuffle: connections_opened as f64 / shuffles,
        setup_bytes_per_connection: setup_per_connection,
        cpu_us_per_shuffle: cpu.as_secs_f64() * 1e6 / shuffles,
        cores_used: cpu.as_secs_f64() / wall.as_secs_f64(),
        rss_mib: rss as f64 / (1 << 20) as f64,
        rss_per_swarm_kib: rss.saturating_sub(rss_before) as f64 / n / 1024.0,
        open_connections_per_swarm: connections as f64 / n,
    };
    drop(handles);
    Ok(result)
}

/// Starts `n` swarms and introduces each to its contacts in `topology`.
pub async fn start_all(
    settings: &Settings,
    n: usize,
    topology: Topology,
) -> Result<Vec<Handle>, Box<dyn std::error::Error>> {
    let mut handles = Vec::with_capacity(n);
    for _ in 0..n {
        handles.push(net::start(settings).await?);
    }
    let view_size = settings.cyclon.view_size();
    for i in 0..n {
        for j in topology.contacts(i, n, view_size, |k| rand::random_range(0..k)) {
            let (peer, address) = (handles[j].peer_id, handles[j].address.clone());
            net::introduce(&handles[i], peer, address).await;
        }
    }
    Ok(handles)
}

/// What one QUIC connection costs on the loopback interface (UDP payload, both directions):
/// setup, the path-MTU probes of its first second and its close, from connections between
/// idle swarms held open 2 s.
async fn quic_connection_bytes(settings: &Settings) -> Result<f64, Box<dyn std::error::Error>> {
    const CONNECTIONS: usize = 10;
    let settings = Settings {
        idle_timeout: Duration::from_secs(2),
        ..settings.clone()
    };
    let listener = net::start(&settings).await?;
    let mut dialers = Vec::new();
    for _ in 0..CONNECTIONS {
        dialers.push(net::start(&settings).await?);
    }
    let before = Loopback::read().ok_or("no loopback counters")?;
    for dialer in &dialers {
        net::dial(dialer, listener.address.clone()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let open = listener.known().await.map_or(0, |k| k.connections);
        let opened: u64 = dialers
            .iter()
            .map(|d| d.meter.counts().connections_out)
            .sum();
        if (opened as usize >= CONNECTIONS && open == 0) || Instant::now() > deadline {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let used = Loopback::read()
        .ok_or("no loopback counters")?
        .minus(before);
    let opened: u64 = dialers
        .iter()
        .map(|d| d.meter.counts().connections_out)
        .sum();
    let udp = used
        .bytes
        .saturating_sub(used.packets * system::UDP_IPV4_HEADERS);
    Ok(udp as f64 / opened.max(1) as f64)
}

fn print_table(args: &CostArgs, results: &[CostResult]) {
    let first = &results[0];
    println!(
        "Cyclon cost per completed shuffle: {} swarms in one process, c = {}, l = {}, interval {} ms, \
         idle timeout {} ms, substream negotiation {}, stack: {}, defence: {}",
        args.nodes,
        first.view_size,
        first.shuffle_length,
        first.interval_ms,
        first.idle_timeout_ms,
        first.negotiation,
        first.stack,
        first.defence,
    );
    println!(
        "machine: {} ({} cores)\n",
        system::cpu_model(),
        system::cores()
    );
    let mut header = format!("{:<44}", "");
    for r in results {
        header.push_str(&format!("{:>12}", r.transport));
    }
    println!("{header}");
    let row = |name: &str, value: &dyn Fn(&CostResult) -> String| {
        let mut line = format!("{name:<44}");
        for r in results {
            line.push_str(&format!("{:>12}", value(r)));
        }
        println!("{line}");
    };
    let bytes = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.0}"));
    let times = |x: Option<f64>| x.map_or("n/a".to_string(), |x| format!("{x:.2}x"));
    row("shuffles completed (failed)", &|r| {
        format!("{} ({})", r.shuffles_completed, r.shuffles_failed)
    });
    row("  of expected (N x intervals)", &|r| {
        format!(
            "{:.0} %",
            100.0 * r.shuffles_completed as f64 / r.shuffles_expected.max(1) as f64
        )
    });
    row("Cyclon messages per shuffle", &|r| {
        format!("{:.2}", r.cyclon_messages_per_shuffle)
    });
    println!("bytes per shuffle, written:");
    row("  Cyclon payload (varint + protobuf)", &|r| {
        bytes(Some(r.bytes.cyclon_payload))
    });
    row("  stream negotiation (multistream-select)", &|r| {
        bytes(Some(r.bytes.negotiation))
    });
    row("  yamux framing", &|r| bytes(r.bytes.mux_framing));
    row("  noise framing", &|r| bytes(r.bytes.security_framing));
    row("  QUIC framing (headers, acks, tags)", &|r| {
        bytes(r.bytes.transport_framing)
    });
    row("  connection setup", &|r| bytes(r.bytes.connection_setup));
    row("  other protocols (identify, ping)", &|r| {
        bytes(Some(r.bytes.other_protocols))
    });
    row("  total on the transport", &|r| bytes(r.bytes.total));
    row("  IP packets on loopback (headers, acks)", &|r| {
        bytes(r.bytes.ip)
    });
    row("on an existing connection, x payload", &|r| {
        times(r.existing_connection_ratio)
    });
    row("all bytes, x payload", &|r| times(r.total_ratio));
    row("connections opened per shuffle", &|r| {
        format!("{:.3}", r.connections_per_shuffle)
    });
    row("setup bytes per connection", &|r| {
        bytes(r.setup_bytes_per_connection)
    });
    row("CPU per shuffle (us)", &|r| {
        format!("{:.0}", r.cpu_us_per_shuffle)
    });
    row("CPU used (cores)", &|r| format!("{:.3}", r.cores_used));
    row("memory per swarm (KiB RSS)", &|r| {
        format!("{:.0}", r.rss_per_swarm_kib)
    });
    row("process RSS (MiB)", &|r| format!("{:.0}", r.rss_mib));
    row("open connections per swarm", &|r| {
        format!("{:.1}", r.open_connections_per_swarm)
    });
    println!();
    for r in results {
        let sustained = r.shuffles_completed as f64 >= 0.95 * r.shuffles_expected as f64;
        println!(
            "{}: {} swarms at a {} ms interval: {:.3} cores ({}), {:.0} MiB ({}), {:.0} % of \
             expected shuffles ({})",
            r.transport,
            r.nodes,
            r.interval_ms,
            r.cores_used,
            verdict(r.cores_used < 1.0, "< 1 core"),
            r.rss_mib,
            verdict(r.rss_mib < 1024.0, "< 1 GiB"),
            100.0 * r.shuffles_completed as f64 / r.shuffles_expected.max(1) as f64,
            verdict(sustained, ">= 95 %"),
        );
    }
}

fn verdict(ok: bool, target: &str) -> String {
    format!("{} {target}", if ok { "meets" } else { "misses" })
}
