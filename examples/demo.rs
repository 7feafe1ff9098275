//! A few Cyclon peers on loopback, bootstrapped as a ring (each knows only its successor),
//! printing how their views converge to a random-like overlay.
//!
//! ```sh
//! cargo run --release --example demo -- --peers 12 --rounds 15
//! ```
//!
//! Every peer is a real libp2p swarm (TCP on 127.0.0.1, noise, yamux), all in one process.

#[path = "common/logs.rs"]
mod logs;

use std::{collections::HashMap, time::Duration};

use clap::Parser;
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, Swarm, noise, swarm::SwarmEvent, tcp, yamux};
use libp2p_cyclon::{self as cyclon, sim::graph::Graph};

#[derive(Parser, Debug)]
#[command(about = "Run Cyclon peers on loopback and watch their views converge")]
struct Args {
    /// Number of peers.
    #[arg(long, default_value_t = 12)]
    peers: usize,
    /// View size c.
    #[arg(long, default_value_t = 6)]
    view_size: usize,
    /// Shuffle length l.
    #[arg(long, default_value_t = 3)]
    shuffle_length: usize,
    /// Shuffle interval in milliseconds.
    #[arg(long, default_value_t = 500)]
    interval_ms: u64,
    /// Number of intervals to run before printing the final views and exiting.
    #[arg(long, default_value_t = 15)]
    rounds: u32,
}

type CyclonSwarm = Swarm<cyclon::Behaviour>;

fn new_swarm(config: &cyclon::Config) -> Result<CyclonSwarm, Box<dyn std::error::Error>> {
    let config = config.clone();
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| cyclon::Behaviour::new(key.public().to_peer_id(), config))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(5)))
        .build())
}

/// Waits for the swarm's first listen address.
async fn listen(swarm: &mut CyclonSwarm) -> Result<Multiaddr, Box<dyn std::error::Error>> {
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            return Ok(address);
        }
    }
}

/// Figures of the overlay formed by the peers' views.
struct Snapshot {
    mean_view: f64,
    full_views: usize,
    in_degree_min: usize,
    in_degree_max: usize,
    components: usize,
}

fn snapshot(swarms: &[CyclonSwarm], view_size: usize) -> Snapshot {
    let index: HashMap<PeerId, u32> = swarms
        .iter()
        .zip(0..)
        .map(|(s, i)| (*s.local_peer_id(), i))
        .collect();
    // The overlay as the simulator's graph type, so the figures are computed the same way.
    let graph = Graph::from_out_links(swarms.iter().map(|s| {
        s.behaviour()
            .view()
            .filter_map(|e| index.get(e.peer_id()).copied())
            .collect::<Vec<u32>>()
    }));
    let in_degrees = graph.in_degrees();
    Snapshot {
        mean_view: graph.link_count() as f64 / swarms.len() as f64,
        full_views: swarms
            .iter()
            .filter(|s| s.behaviour().view_len() == view_size)
            .count(),
        in_degree_min: in_degrees.iter().copied().min().unwrap_or(0) as usize,
        in_degree_max: in_degrees.iter().copied().max().unwrap_or(0) as usize,
        components: graph.undirected().components().count,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    logs::init();
    let args = Args::parse();
    let interval = Duration::from_millis(args.interval_ms);
    let config = cyclon::Config::default()
        .with_view_size(args.view_size)
        .with_shuffle_length(args.shuffle_length)
        .with_shuffle_interval(interval)
        .with_request_timeout(Duration::from_secs(2));
    if let Err(error) = config.validate() {
        eprintln!("error: {error}");
        std::process::exit(2);
    }
    if args.peers < 2 {
        eprintln!("error: --peers must be at least 2");
        std::process::exit(2);
    }

    let mut swarms = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..args.peers {
        let mut swarm = new_swarm(&config)?;
        addresses.push(listen(&mut swarm).await?);
        swarms.push(swarm);
    }
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for (i, swarm) in swarms.iter_mut().enumerate() {
        let next = (i + 1) % args.peers;
        swarm
            .behaviour_mut()
            .add_address(&ids[next], addresses[next].clone());
    }
    println!(
        "{} peers on 127.0.0.1, ring bootstrap, c = {}, l = {}, interval {:?}",
        args.peers, args.view_size, args.shuffle_length, interval
    );
    println!("round  mean view  full views  in-degree min..max  components");

    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    for round in 1..=args.rounds {
        let tick = ticker.tick();
        tokio::pin!(tick);
        // Drive every swarm until the next interval.
        loop {
            let all = futures::future::select_all(swarms.iter_mut().map(|s| s.next()));
            tokio::select! {
                _ = all => {}
                _ = &mut tick => break,
            }
        }
        let s = snapshot(&swarms, args.view_size);
        println!(
            "{round:>5}  {:>9.1}  {:>6}/{:<3}  {:>9}..{:<8}  {:>10}",
            s.mean_view, s.full_views, args.peers, s.in_degree_min, s.in_degree_max, s.components
        );
    }

    println!("\nfinal views (peer: neighbour@age ...):");
    let short = |p: &PeerId| {
        let s = p.to_base58();
        s[s.len() - 6..].to_string()
    };
    for swarm in &swarms {
        let mut view: Vec<String> = swarm
            .behaviour()
            .view()
            .map(|e| format!("{}@{}", short(e.peer_id()), e.age()))
            .collect();
        view.sort();
        println!("{}: {}", short(swarm.local_peer_id()), view.join(" "));
    }
    Ok(())
}
