//! The `netbench` program as a process: a tiny run prints a well-formed table and valid JSON,
//! the kad comparison runs and draws its figure, bad flags are one-line errors. No figure is
//! checked against a target: timings belong to the program's output, not to tests.

use std::{process::Command, time::Duration};

use cyclon_examples::testing::{assert_bad_flags_rejected, assert_help_mentions, run_to_exit};

/// The `netbench` binary, built by Cargo for this test.
const PROGRAM: &str = env!("CARGO_BIN_EXE_netbench");

/// A few memory-transport swarms for a few short intervals.
const TINY_COST: &[&str] = &[
    "cost",
    "--transport",
    "memory",
    "-n",
    "5",
    "-c",
    "3",
    "-l",
    "2",
    "--interval-ms",
    "200",
    "--warmup-intervals",
    "2",
    "--intervals",
    "4",
];

fn run(args: &[&str]) -> String {
    let mut command = Command::new(PROGRAM);
    command.args(args);
    let (status, stdout, stderr) = run_to_exit(command, Duration::from_secs(120));
    assert!(status.success(), "{args:?}: {status}: {stderr}");
    stdout
}

#[test]
fn a_tiny_cost_run_prints_a_table() {
    let stdout = run(TINY_COST);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("Cyclon cost per completed shuffle: 5 swarms"),
        "{stdout}"
    );
    let header = lines
        .iter()
        .find(|l| l.trim() == "memory")
        .unwrap_or_else(|| panic!("no column header:\n{stdout}"));
    assert!(!header.is_empty());
    for row in [
        "shuffles completed",
        "Cyclon payload",
        "stream negotiation",
        "yamux framing",
        "noise framing",
        "connection setup",
        "connections opened per shuffle",
        "CPU per shuffle (us)",
        "memory per swarm (KiB RSS)",
    ] {
        let line = lines
            .iter()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("no row {row}:\n{stdout}"));
        let value = line.split_whitespace().last().unwrap_or_default();
        assert!(
            value == "n/a" || value.trim_matches(['x', '(', ')']).parse::<f64>().is_ok(),
            "{row}: {value}\n{stdout}"
        );
    }
    assert!(
        lines.iter().any(|l| l.starts_with("memory: 5 swarms")),
        "{stdout}"
    );
}

#[test]
fn a_tiny_cost_run_prints_json() {
    let mut args = TINY_COST.to_vec();
    args.push("--json");
    let stdout = run(&args);
    let results: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let results = results.as_array().expect("an array");
    assert_eq!(results.len(), 1);
    let memory = &results[0];
    assert_eq!(memory["transport"], "memory");
    assert_eq!(memory["nodes"], 5);
    assert!(memory["shuffles_completed"].as_u64().is_some(), "{memory}");
    for field in [
        "cyclon_payload",
        "negotiation",
        "mux_framing",
        "connection_setup",
    ] {
        assert!(
            memory["bytes"][field].as_f64().is_some(),
            "{field}: {memory}"
        );
    }
    assert!(memory["cpu_us_per_shuffle"].as_f64().is_some());
    assert!(memory["rss_per_swarm_kib"].as_f64().is_some());
}

#[test]
fn a_tiny_kad_comparison_prints_json_and_draws() {
    let dir = std::env::temp_dir().join(format!("netbench-test-{}", std::process::id()));
    let dir_arg = dir.to_string_lossy().to_string();
    let stdout = run(&[
        "kad",
        "-n",
        "6",
        "-c",
        "4",
        "-l",
        "2",
        "--interval-ms",
        "200",
        "--min-known",
        "3",
        "--max-converge-s",
        "10",
        "--steady-s",
        "1",
        "--after-kill-s",
        "2",
        "--plot",
        &dir_arg,
        "--json",
    ]);
    let outcomes: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let outcomes = outcomes.as_array().expect("an array");
    let protocols: Vec<&str> = outcomes
        .iter()
        .map(|o| o["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, ["cyclon", "kad"]);
    for o in outcomes {
        assert_eq!(o["nodes"], 6);
        assert_eq!(o["killed"], 2, "{o}");
        assert!(o["in_degree"]["mean"].as_f64().is_some(), "{o}");
        assert!(o["bytes_per_node_per_s"].as_f64().is_some(), "{o}");
    }
    let svg = std::fs::read_to_string(dir.join("netbench-n6.svg")).expect("the figure");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(svg.starts_with("<svg"), "{svg}");
}

/// SecureCyclon's behaviour and plain Cyclon with signed records run on the same swarms and
/// say so in the JSON; payload is counted for both (no figure is checked against a target).
#[test]
fn a_tiny_cost_run_measures_securecyclon_and_signed_records() {
    for (flag, defence, signed) in [
        ("--defence=secure", "secure", false),
        ("--signed-records", "off", true),
    ] {
        let args = [
            "cost",
            "--transport",
            "memory",
            "-n",
            "6",
            "-c",
            "4",
            "-l",
            "2",
            "--interval-ms",
            "200",
            "--warmup-intervals",
            "2",
            "--intervals",
            "4",
            "--json",
            flag,
        ];
        let stdout = run(&args);
        let results: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
        let memory = &results[0];
        assert_eq!(memory["defence"], defence, "{memory}");
        assert_eq!(memory["signed_records"], signed, "{memory}");
        assert!(
            memory["shuffles_completed"].as_u64().unwrap_or(0) > 0,
            "{flag}: nothing completed: {memory}"
        );
        assert!(memory["bytes"]["cyclon_payload"].as_f64().unwrap_or(0.0) > 0.0);
    }
}

#[test]
fn bad_flags_are_one_line_errors() {
    assert_bad_flags_rejected(
        PROGRAM,
        &[
            &[],
            &["bogus"],
            &["cost", "--transport", "pigeon"],
            &["cost", "-n", "1"],
            &["cost", "-c", "2", "-l", "3"],
            &["cost", "--interval-ms", "0"],
            &["kad", "--kill-fraction", "1.5"],
            &["kad", "--protocol", "gossip"],
            &["kad", "--defence", "secure"],
            &["cost", "--defence", "secure", "--neighbours", "2"],
        ],
    );
}

#[test]
fn help_names_the_subcommands_and_flags() {
    assert_help_mentions(PROGRAM, &["cost", "kad"]);
    let mut command = Command::new(PROGRAM);
    command.args(["cost", "--help"]);
    let (status, stdout, _) = run_to_exit(command, Duration::from_secs(10));
    assert!(status.success());
    for flag in [
        "--view-size",
        "--shuffle-length",
        "--mode",
        "--interval-ms",
        "--request-timeout-ms",
        "--transport",
        "--idle-timeout-ms",
        "--negotiation",
        "--json",
    ] {
        assert!(stdout.contains(flag), "cost --help lacks {flag}:\n{stdout}");
    }
}
