//! `netbench kad`: Cyclon beside kad's random walks, same swarms and transport, every node
//! bootstrapped from node 0 (kad with identify, which tells it the listen addresses of the
//! peers that connect; its bytes count as kad's): time until every node knows enough live peers, steady-state
//! traffic, the bootstrap node's share of the load, in-degree spread, and how long dead peers
//! stay known after 30 % of the nodes die.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use cyclon_examples::cli::{CyclonFlags, Topology};
use libp2p::PeerId;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::{
    cost::start_all,
    meter::Counts,
    net::{Handle, Negotiation, Protocol, Settings, Stack},
    system,
    transport::Kind,
};

#[derive(clap::Args, Debug, Clone)]
#[command(
    mut_arg("interval_ms", |a| a.default_value("1000")),
    mut_arg("request_timeout_ms", |a| a.default_value("5000"))
)]
pub struct KadArgs {
    /// Network sizes to run (comma-separated or repeated).
    #[arg(short = 'n', long, value_delimiter = ',', default_values_t = [100])]
    pub nodes: Vec<usize>,
    /// Protocols to run (comma-separated or repeated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Protocol::Cyclon, Protocol::Kad])]
    pub protocol: Vec<Protocol>,
    /// The transport of every swarm.
    #[arg(long, value_enum, default_value_t = Kind::Memory)]
    pub transport: Kind,
    /// A node "knows enough" once it knows this many live peers.
    #[arg(long, value_name = "K", default_value_t = 8)]
    pub min_known: usize,
    /// Longest wait for every node to know enough, in seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub max_converge_s: u64,
    /// Seconds of steady state measured after convergence.
    #[arg(long, value_name = "S", default_value_t = 10)]
    pub steady_s: u64,
    /// Share of the nodes killed (never node 0, the bootstrap node).
    #[arg(long, value_name = "F", default_value_t = 0.3)]
    pub kill_fraction: f64,
    /// Longest wait, in seconds, for the last dead peer to leave every view / routing table.
    #[arg(long, value_name = "S", default_value_t = 60)]
    pub after_kill_s: u64,
    /// How long a connection no behaviour uses stays open (libp2p's default: 10000).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub idle_timeout_ms: u64,
    /// multistream-select for the substreams a swarm opens: v1 (libp2p's default) or v1-lazy.
    #[arg(long, value_enum, default_value_t = Negotiation::V1)]
    pub negotiation: Negotiation,
    /// Write one SVG figure per network size into this directory.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cyclon: CyclonFlags,
}

/// One protocol at one network size.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub protocol: Protocol,
    pub nodes: usize,
    /// Seconds until every node knew `min_known` live peers; `None` if not within the run.
    pub time_to_min_known_s: Option<f64>,
    pub bytes_per_node_per_s: f64,
    pub bootstrap_share_of_inbound_connections: f64,
    pub bootstrap_share_of_inbound_bytes: f64,
    pub known_mean: f64,
    pub in_degree: Spread,
    pub killed: usize,
    /// Seconds after the kill until no live node knew a dead peer; `None` if not within the run.
    pub dead_gone_s: Option<f64>,
    /// Dead peers still known (entries, over all live nodes) when the run ended.
    pub dead_entries_left: usize,
    /// Share of live nodes that knew enough live peers when the run ended.
    pub min_known_after_kill: f64,
    /// (seconds since start, share of nodes knowing `min_known` live peers).
    pub convergence: Vec<(f64, f64)>,
    /// (seconds since the kill, dead entries known by live nodes).
    pub dead_entries: Vec<(f64, usize)>,
}

/// Spread of a distribution: mean, standard deviation, extremes.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Spread {
    pub mean: f64,
    pub std: f64,
    pub min: usize,
    pub max: usize,
}

impl Spread {
    fn of(values: &[usize]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let n = values.len() as f64;
        let mean = values.iter().sum::<usize>() as f64 / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        Spread {
            mean,
            std: var.sqrt(),
            min: *values.iter().min().unwrap_or(&0),
            max: *values.iter().max().unwrap_or(&0),
        }
    }
}

pub fn run(args: KadArgs) -> ExitCode {
    let config = args.cyclon.config();
    if let Err(error) = config.validate() {
        return crate::fail(format!("invalid Cyclon configuration: {error}"));
    }
    if !(0.0..1.0).contains(&args.kill_fraction) {
        return crate::fail("--kill-fraction must be in [0, 1)");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return crate::fail(error),
    };
    let mut outcomes = Vec::new();
    for &n in &args.nodes {
        for &protocol in &args.protocol {
            if !args.json {
                eprintln!("running {protocol} with {n} nodes ...");
            }
            let settings = Settings {
                transport: args.transport,
                protocol,
                stack: Stack::Alone,
                cyclon: config.clone(),
                secure: None,
                sign_records: false,
                interval: args.cyclon.interval(),
                idle_timeout: Duration::from_millis(args.idle_timeout_ms),
                negotiation: args.negotiation,
            };
            match runtime.block_on(run_one(&args, settings, n)) {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => return crate::fail(format!("{protocol}, {n} nodes: {error}")),
            }
        }
    }
    if let Some(dir) = &args.plot
        && let Err(error) = crate::plot::comparison(dir, &outcomes, args.min_known)
    {
        return crate::fail(format!("cannot write the figures: {error}"));
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcomes).expect("serializable")
        );
    } else {
        print_table(&args, &outcomes);
    }
    ExitCode::SUCCESS
}

/// What every live node knows, by index.
async fn snapshot(handles: &[Handle]) -> Vec<Option<Vec<PeerId>>> {
    let mut all = Vec::with_capacity(handles.len());
    for handle in handles {
        all.push(handle.known().await.map(|k| k.peers));
    }
    all
}

/// Share of live nodes that know at least `k` live peers, and the dead entries they hold.
fn judge(known: &[Option<Vec<PeerId>>], alive: &HashSet<PeerId>, k: usize) -> (f64, usize) {
    let mut enough = 0;
    let mut live_nodes = 0;
    let mut dead = 0;
    for peers in known.iter().flatten() {
        live_nodes += 1;
        let live = peers.iter().filter(|p| alive.contains(p)).count();
        dead += peers.len() - live;
        if live >= k {
            enough += 1;
        }
    }
    (enough as f64 / live_nodes.max(1) as f64, dead)
}

async fn run_one(
    args: &KadArgs,
    settings: Settings,
    n: usize,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let poll = (settings.interval / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
    let mut handles = start_all(&settings, n, Topology::Star).await?;
    let mut alive: HashSet<PeerId> = handles.iter().map(|h| h.peer_id).collect();
    let start = Instant::now();

    // Until every node knows enough live peers.
    let mut convergence = Vec::new();
    let mut converged = None;
    while start.elapsed() < Duration::from_secs(args.max_converge_s) {
        let (share, _) = judge(&snapshot(&handles).await, &alive, args.min_known);
        let t = start.elapsed().as_secs_f64();
        convergence.push((t, share));
        if share >= 1.0 {
            converged = Some(t);
            break;
        }
        tokio::time::sleep(poll).await;
    }

    // Steady state.
    let before = Counts::sum(handles.iter().map(|h| &h.meter));
    let steady_start = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.steady_s)).await;
    let after = Counts::sum(handles.iter().map(|h| &h.meter));
    let steady = after.minus(before);
    let bytes_per_node_per_s =
        steady.raw_written as f64 / n as f64 / steady_start.elapsed().as_secs_f64();

    // Load on the bootstrap node, since the start.
    let bootstrap = handles[0].meter.counts();
    let share = |part: u64, all: u64| part as f64 / all.max(1) as f64;
    let connection_share = share(bootstrap.connections_in, after.connections_in);
    let byte_share = share(bootstrap.raw_read, after.raw_read);

    // The "knows" graph.
    let known = snapshot(&handles).await;
    let mut in_degree: HashMap<PeerId, usize> = alive.iter().map(|p| (*p, 0)).collect();
    let mut known_total = 0;
    for peers in known.iter().flatten() {
        known_total += peers.len();
        for peer in peers {
            if let Some(d) = in_degree.get_mut(peer) {
                *d += 1;
            }
        }
    }
    let degrees: Vec<usize> = in_degree.values().copied().collect();

    // Kill a share of the nodes (never the bootstrap node).
    let mut victims: Vec<usize> = (1..n).collect();
    victims.shuffle(&mut rand::rng());
    victims.truncate((args.kill_fraction * n as f64).round() as usize);
    for &i in &victims {
        handles[i].kill();
        alive.remove(&handles[i].peer_id);
    }
    let killed_at = Instant::now();
    let mut dead_entries = Vec::new();
    let mut dead_gone = None;
    let mut last = (0.0, 0);
    while killed_at.elapsed() < Duration::from_secs(args.after_kill_s) {
        let (enough, dead) = judge(&snapshot(&handles).await, &alive, args.min_known);
        let t = killed_at.elapsed().as_secs_f64();
        dead_entries.push((t, dead));
        last = (enough, dead);
        if dead == 0 && !victims.is_empty() {
            dead_gone = Some(t);
            break;
        }
        tokio::time::sleep(poll).await;
    }
    for handle in &mut handles {
        handle.kill();
    }
    Ok(Outcome {
        protocol: settings.protocol,
        nodes: n,
        time_to_min_known_s: converged,
        bytes_per_node_per_s,
        bootstrap_share_of_inbound_connections: connection_share,
        bootstrap_share_of_inbound_bytes: byte_share,
        known_mean: known_total as f64 / n as f64,
        in_degree: Spread::of(&degrees),
        killed: victims.len(),
        dead_gone_s: dead_gone,
        dead_entries_left: last.1,
        min_known_after_kill: last.0,
        convergence,
        dead_entries,
    })
}

fn print_table(args: &KadArgs, outcomes: &[Outcome]) {
    println!(
        "Cyclon (c = {}, l = {}) beside kad random walks (get_closest_peers every interval, \
         periodic bootstrap on): {} transport, interval {} ms, every node bootstrapped from \
         node 0, {:.0} % killed after the steady state",
        args.cyclon.shuffle.view_size,
        args.cyclon.shuffle.shuffle_length,
        args.transport,
        args.cyclon.interval_ms,
        args.kill_fraction * 100.0,
    );
    println!(
        "machine: {} ({} cores)\n",
        system::cpu_model(),
        system::cores()
    );
    println!(
        "{:<8} {:>6} {:>12} {:>12} {:>10} {:>10} {:>7} {:>22} {:>14} {:>10}",
        "protocol",
        "nodes",
        format!("knows>={} s", args.min_known),
        "B/node/s",
        "boot conn",
        "boot bytes",
        "known",
        "in-degree mean/sd/min/max",
        "dead gone s",
        "dead left"
    );
    for o in outcomes {
        let seconds = |t: Option<f64>| t.map_or("never".to_string(), |t| format!("{t:.1}"));
        println!(
            "{:<8} {:>6} {:>12} {:>12.0} {:>9.1}% {:>9.1}% {:>7.1} {:>22} {:>14} {:>10}",
            o.protocol.to_string(),
            o.nodes,
            seconds(o.time_to_min_known_s),
            o.bytes_per_node_per_s,
            o.bootstrap_share_of_inbound_connections * 100.0,
            o.bootstrap_share_of_inbound_bytes * 100.0,
            o.known_mean,
            format!(
                "{:.1}/{:.1}/{}/{}",
                o.in_degree.mean, o.in_degree.std, o.in_degree.min, o.in_degree.max
            ),
            seconds(o.dead_gone_s),
            o.dead_entries_left,
        );
    }
    println!(
        "\n\"never\": not within the run ({} s to converge, {} s after the kill).",
        args.max_converge_s, args.after_kill_s
    );
}
