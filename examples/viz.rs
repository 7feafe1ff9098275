//! A live Cyclon network in the browser.
//!
//! ```sh
//! cargo run --release --example viz                # then open http://127.0.0.1:8080
//! cargo run --release --example viz -- --peers 50 --interval-ms 500 --bootstrap seed
//! ```
//!
//! Starts `--peers` real libp2p swarms in this process (TCP on 127.0.0.1, noise, yamux),
//! bootstrapped poorly (a ring, or everyone knowing one seed), and serves a page that draws
//! the overlay their views form and updates it live. From the page one adds and kills peers,
//! makes a peer shuffle now (click it), pauses and resumes shuffling, and changes the shuffle
//! interval. The page uses a small JSON API (see the README's "Visualisation" section) that
//! scripts can use too. The page's files are compiled into the binary: it works offline.

#[path = "common/logs.rs"]
mod logs;
#[path = "viz/network.rs"]
mod network;
#[path = "viz/server.rs"]
mod server;

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use libp2p_cyclon::ShuffleMode;

#[derive(Parser, Debug)]
#[command(
    about = "Serve a live visualisation of a Cyclon network of real libp2p peers on loopback",
    after_help = "Open the printed address in a browser. API: GET /api/graph, GET /api/events, \
                  POST /api/peers, DELETE /api/peers/{id}, POST /api/peers/{id}/shuffle, \
                  GET|PUT /api/settings."
)]
struct Args {
    /// Number of peers to start with.
    #[arg(long, default_value_t = 12)]
    peers: usize,
    /// Address of the web page and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// View size c.
    #[arg(long, default_value_t = 8)]
    view_size: usize,
    /// Shuffle length l (1 <= l <= c).
    #[arg(long, default_value_t = 4)]
    shuffle_length: usize,
    /// Shuffle interval in milliseconds (changeable from the page).
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Timeout of one shuffle exchange, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    request_timeout_ms: u64,
    /// How the initial peers learn about each other.
    #[arg(long, value_enum, default_value_t = network::Bootstrap::Ring)]
    bootstrap: network::Bootstrap,
    /// Basic shuffling (random target, as the paper's baseline) instead of Cyclon's.
    #[arg(long)]
    basic: bool,
    /// Start with periodic shuffling paused.
    #[arg(long)]
    paused: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    logs::init();
    let args = Args::parse();
    let options = network::Options {
        peers: args.peers,
        view_size: args.view_size,
        shuffle_length: args.shuffle_length,
        interval: Duration::from_millis(args.interval_ms),
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        mode: if args.basic {
            ShuffleMode::Basic
        } else {
            ShuffleMode::Enhanced
        },
        bootstrap: args.bootstrap,
        paused: args.paused,
    };
    if let Err(error) = options.cyclon_config() {
        eprintln!("error: {error}");
        std::process::exit(2);
    }
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: {} is not a loopback address: anyone who reaches it can add and kill peers",
            args.listen
        );
    }

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let network = network::Network::start(options).await?;
    println!(
        "{} Cyclon peers on 127.0.0.1 ({:?} bootstrap, c = {}, l = {}, interval {} ms)",
        args.peers, args.bootstrap, args.view_size, args.shuffle_length, args.interval_ms
    );
    println!("open http://{}/  (Ctrl-C to stop)", listener.local_addr()?);
    tokio::select! {
        served = server::serve(listener, network) => served?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}
