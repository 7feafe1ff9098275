//! The Cyclon simulator: N nodes shuffling in cycles over the crate's sans-IO core, measured
//! beside a uniform random c-out graph of the same size, as in the Cyclon paper.
//!
//! ```sh
//! cargo run --release --bin simulate -- --help
//! cargo run --release --bin simulate -- --nodes 10000 --compare-basic --plot docs/figures
//! cargo run --release --bin simulate -- --nodes 10000 --kill-fraction 0.5 --kill-at 50
//! cargo run --release --bin simulate -- --malicious 0.01,0.1,0.2 --compare-caps --cycles 150
//! cargo run --release --bin simulate -- --partition-at 50 --heal-at 90 --rejoin-every 5
//! cargo run --release --bin simulate -- --loss 0.2 --cycles 200
//! ```

mod args;
mod plots;
mod run;
mod tables;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;

use cyclon_examples::cli;
use libp2p_cyclon::sim::Report;

use crate::args::{Args, Variant};
use crate::run::Run;

type AnyError = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args = match cli::parse::<Args>() {
        Ok(args) => args,
        Err(code) => return code,
    };
    // One run per protocol variant, or per malicious share and caps setting.
    let variants = match args.variants() {
        Ok(variants) => variants,
        Err(error) => return cli::usage_error(error),
    };
    match simulate(&args, variants) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The faults part of the header line: empty without loss, partition and rejoin rule.
fn faults_header(args: &Args) -> String {
    let mut header = String::new();
    if args.loss > 0.0 {
        header.push_str(&format!(" loss={}%", args.loss * 100.0));
    }
    if let (Some(at), Some(heal)) = (args.partition_at, args.heal_at) {
        header.push_str(&format!(
            " partition after cycle {at}, healed after cycle {heal}"
        ));
    }
    if let Some(rule) = args.rejoin.rule(args.shuffle.view_size) {
        header.push_str(&format!(
            " rejoin every {} rounds (memory {}, seeds {})",
            rule.probe_every, rule.remember, args.seeds
        ));
    }
    header
}

/// Runs the variants, prints the tables and writes the files the flags ask for.
fn simulate(args: &Args, variants: Vec<Variant>) -> Result<(), AnyError> {
    println!(
        "Cyclon simulation: N={} c={} l={} cycles={} bootstrap={:?} seed={}{}{}{}",
        args.nodes,
        args.shuffle.view_size,
        args.shuffle.shuffle_length,
        args.cycles,
        args.bootstrap,
        args.seed,
        args.kill()
            .map(|k| format!(
                " kill={:.0}% after cycle {}",
                k.fraction * 100.0,
                k.at_cycle
            ))
            .unwrap_or_default(),
        if args.churn > 0.0 {
            format!(" churn={:.2}%/cycle", args.churn * 100.0)
        } else {
            String::new()
        },
        faults_header(args),
    );

    let mut runs: Vec<Run> = Vec::new();
    for Variant { label, scenario } in variants {
        runs.push(run::run(scenario, &label, args.quiet)?);
    }

    tables::print_summary(&runs);
    if !args.malicious.is_empty() {
        tables::print_attack(&runs);
    }
    tables::print_faults(&runs);

    let first = &runs[0];
    if let Some(path) = &args.csv {
        first
            .report
            .write_csv(BufWriter::new(File::create(path)?))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.faults_csv {
        first
            .report
            .write_faults_csv(BufWriter::new(File::create(path)?))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.attack_csv {
        let mut out = BufWriter::new(File::create(path)?);
        // SecureCyclon's columns only when a run has them: other files stay as they were.
        let secure = runs.iter().any(|run| run.report.is_secure());
        let header = if secure {
            Report::SECURE_ATTACK_CSV_HEADER
        } else {
            Report::ATTACK_CSV_HEADER
        };
        writeln!(out, "{header}")?;
        for run in &runs {
            run.report.write_attack_csv_rows_with(&mut out, secure)?;
        }
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.edges_out {
        first
            .experiment
            .simulation()
            .write_edges(BufWriter::new(File::create(path)?))?;
        println!("wrote {}", path.display());
    }
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir)?;
        let written = if args.malicious.is_empty() {
            plots::plot_all(dir, &runs)?
        } else {
            vec![plots::plot_attack(dir, &runs)?]
        };
        for file in written {
            println!("wrote {}", file.display());
        }
    }
    Ok(())
}
