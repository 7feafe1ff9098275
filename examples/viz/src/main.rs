//! A live Cyclon network in the browser.
//!
//! ```sh
//! cargo run --release --bin viz                # then open http://127.0.0.1:8080
//! cargo run --release --bin viz -- --peers 50 --interval-ms 500 --bootstrap star
//! ```
//!
//! Starts `--peers` real libp2p swarms in this process (TCP on 127.0.0.1, noise, yamux),
//! bootstrapped poorly (a ring by default, or everyone knowing the first peer), and serves a
//! page that draws the overlay their views form and updates it live. From the page one adds and
//! kills peers, makes a peer shuffle now (click it), pauses and resumes shuffling, and changes
//! the shuffle interval. The page uses a small JSON API (`docs/viz.md`) that scripts can use
//! too. The page's files are compiled into the binary: it works offline.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use cyclon_examples::{
    cli::{self, CyclonFlags, Mode, Topology},
    logs,
};
use viz::{
    network::{self, Network},
    server,
};

#[derive(Parser, Debug)]
#[command(
    about = "Serve a live visualisation of a Cyclon network of real libp2p peers on loopback",
    after_help = "Open the printed address in a browser. API: GET /api/graph, GET /api/events, \
                  POST /api/peers, DELETE /api/peers/{id}, POST /api/peers/{id}/shuffle, \
                  GET|PUT /api/settings.",
    // A sparse overlay that mixes and heals visibly: many peers, small views.
    mut_arg("view_size", |a| a.default_value("4")),
    mut_arg("shuffle_length", |a| a.default_value("2")),
    mut_arg("interval_ms", |a| a.default_value("1000")),
    mut_arg("request_timeout_ms", |a| a.default_value("2000"))
)]
struct Args {
    /// Number of peers to start with.
    #[arg(long, default_value_t = network::Options::default().peers)]
    peers: usize,
    /// Address of the web page and API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// How the initial peers learn about each other (ring, star; random and growing too).
    #[arg(long, value_enum, default_value_t = Topology::Ring)]
    bootstrap: Topology,
    #[command(flatten)]
    cyclon: CyclonFlags,
    /// The same as `--mode basic` (kept for scripts written before `--mode`).
    #[arg(long, hide = true)]
    basic: bool,
    /// Start with periodic shuffling paused.
    #[arg(long)]
    paused: bool,
}

fn main() -> ExitCode {
    let args = match cli::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let mode = if args.basic {
        Mode::Basic
    } else {
        args.cyclon.shuffle.mode
    };
    let options = network::Options {
        peers: args.peers,
        view_size: args.cyclon.shuffle.view_size,
        shuffle_length: args.cyclon.shuffle.shuffle_length,
        interval: args.cyclon.interval(),
        request_timeout: Duration::from_millis(args.cyclon.request_timeout_ms),
        mode: mode.into(),
        bootstrap: args.bootstrap,
        paused: args.paused,
    };
    if let Err(error) = options.cyclon_config() {
        return cli::usage_error(error);
    }
    logs::init("error");
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    cli::exit_status(runtime.block_on(serve(args, options)))
}

async fn serve(args: Args, options: network::Options) -> Result<(), Box<dyn std::error::Error>> {
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: {} is not a loopback address: anyone who reaches it can add and kill peers",
            args.listen
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let network = Network::start(options).await?;
    println!(
        "{} Cyclon peers on 127.0.0.1 ({:?} bootstrap, c = {}, l = {}, interval {} ms)",
        args.peers,
        args.bootstrap,
        args.cyclon.shuffle.view_size,
        args.cyclon.shuffle.shuffle_length,
        args.cyclon.interval_ms
    );
    println!("open http://{}/  (Ctrl-C to stop)", listener.local_addr()?);
    tokio::select! {
        served = server::serve(listener, network) => served?,
        _ = tokio::signal::ctrl_c() => println!("stopping"),
    }
    Ok(())
}
