//! A few Cyclon peers on loopback, bootstrapped as a ring (each knows only its successor) by
//! default, printing how their views converge to a random-like overlay.
//!
//! ```sh
//! cargo run --release --bin demo -- --peers 12 --cycles 15
//! ```
//!
//! Every peer is a real libp2p swarm (TCP on 127.0.0.1, noise, yamux), all in one process.

use std::{collections::HashMap, process::ExitCode, time::Duration};

use clap::Parser;
use cyclon_examples::{
    cli::{self, CyclonFlags, Topology},
    logs,
};
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, Swarm, noise, swarm::SwarmEvent, tcp, yamux};
use libp2p_cyclon::{self as cyclon, sim::graph::Graph};

#[derive(Parser, Debug)]
#[command(
    about = "Run Cyclon peers on loopback and watch their views converge",
    mut_arg("view_size", |a| a.default_value("6")),
    mut_arg("shuffle_length", |a| a.default_value("3")),
    mut_arg("interval_ms", |a| a.default_value("500")),
    mut_arg("request_timeout_ms", |a| a.default_value("2000"))
)]
struct Args {
    /// Number of peers.
    #[arg(long, default_value_t = 12)]
    peers: usize,
    /// How the peers learn about each other at the start.
    #[arg(long, value_enum, default_value_t = Topology::Ring)]
    bootstrap: Topology,
    /// Number of shuffle intervals (cycles) to run before printing the final views and
    /// exiting.
    #[arg(long, alias = "rounds", default_value_t = 15)]
    cycles: u32,
    #[command(flatten)]
    cyclon: CyclonFlags,
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
struct Measurement {
    mean_view: f64,
    full_views: usize,
    in_degree_min: usize,
    in_degree_max: usize,
    components: usize,
}

fn snapshot(swarms: &[CyclonSwarm], view_size: usize) -> Measurement {
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
    Measurement {
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

fn main() -> ExitCode {
    let args = match cli::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let config = args.cyclon.config();
    if let Err(error) = config.validate() {
        return cli::usage_error(error);
    }
    if args.peers < 2 {
        return cli::usage_error("--peers must be at least 2");
    }
    logs::init("error");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    cli::exit_status(runtime.block_on(run(args, config)))
}

async fn run(args: Args, config: cyclon::Config) -> Result<(), Box<dyn std::error::Error>> {
    let interval = args.cyclon.interval();
    let view_size = args.cyclon.shuffle.view_size;
    let mut swarms = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..args.peers {
        let mut swarm = new_swarm(&config)?;
        addresses.push(listen(&mut swarm).await?);
        swarms.push(swarm);
    }
    let ids: Vec<PeerId> = swarms.iter().map(|s| *s.local_peer_id()).collect();
    for (i, swarm) in swarms.iter_mut().enumerate() {
        let contacts = args
            .bootstrap
            .contacts(i, args.peers, view_size, |k| rand::random_range(0..k));
        for j in contacts {
            swarm
                .behaviour_mut()
                .add_address(&ids[j], addresses[j].clone());
        }
    }
    println!(
        "{} peers on 127.0.0.1, {:?} bootstrap, c = {}, l = {}, interval {:?}",
        args.peers, args.bootstrap, view_size, args.cyclon.shuffle.shuffle_length, interval
    );
    println!("round  mean view  full views  in-degree min..max  components");

    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    for round in 1..=args.cycles {
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
        let s = snapshot(&swarms, view_size);
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
