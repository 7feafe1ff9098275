//! What Cyclon costs a libp2p node, measured on real transports, and beside kad.
//!
//! ```sh
//! # Bytes, connections, CPU and memory per shuffle on the memory transport, TCP and QUIC:
//! cargo run --release --bin netbench -- cost
//! # One process, 1,000 swarms on the memory transport at a 1 s interval:
//! cargo run --release --bin netbench -- cost --transport memory -n 1000
//! # Cyclon beside kad's random walks at 100 and 500 nodes, with figures:
//! cargo run --release --bin netbench -- kad -n 100,500 --plot docs/figures
//! ```
//!
//! Every swarm is a real libp2p swarm on a task of its own, all in one process, with byte
//! counters at the raw socket, after noise and on every substream (see `meter.rs`). Numbers
//! and how to read them: docs/performance.md.

mod compare;
mod cost;
mod meter;
mod net;
mod plot;
mod system;
mod transport;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cyclon_examples::{cli, logs};

#[derive(Parser, Debug)]
#[command(
    name = "netbench",
    // A missing subcommand is a one-line error, as every bad flag.
    arg_required_else_help = false,
    about = "What Cyclon costs on real transports (bytes, connections, CPU, memory per shuffle), \
             and Cyclon beside kad's random walks"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bytes (by layer), connections, CPU and memory per Cyclon shuffle, per transport.
    Cost(cost::CostArgs),
    /// Cyclon beside kad random-walk discovery: convergence, traffic, load on the bootstrap
    /// node, in-degree spread, dead peers after a failure.
    Kad(compare::KadArgs),
}

/// Prints `error: {message}` and returns status 1 (a failure during a run, not a bad flag).
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args = match cli::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    logs::init("error");
    match args.command {
        Command::Cost(args) => {
            if args.cyclon.is_secure() {
                if let Err(error) = args.cyclon.secure_config() {
                    return cli::usage_error(error);
                }
            } else if let Err(error) = args.cyclon.config().validate() {
                return cli::usage_error(format!("invalid Cyclon configuration: {error}"));
            }
            if args.nodes < 2 {
                return cli::usage_error("--nodes must be at least 2");
            }
            cost::run(args)
        }
        Command::Kad(args) => {
            if args.cyclon.is_secure() {
                return cli::usage_error("--defence secure: netbench kad compares plain Cyclon");
            }
            if let Err(error) = args.cyclon.config().validate() {
                return cli::usage_error(format!("invalid Cyclon configuration: {error}"));
            }
            if args.nodes.iter().any(|&n| n < 2) {
                return cli::usage_error("--nodes must be at least 2");
            }
            if !(0.0..1.0).contains(&args.kill_fraction) {
                return cli::usage_error("--kill-fraction must be in [0, 1)");
            }
            compare::run(args)
        }
    }
}
