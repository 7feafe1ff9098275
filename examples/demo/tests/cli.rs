//! The `demo` program as a process: real swarms on loopback converge and it prints a row per
//! cycle and the final views; bad flags are one-line errors.

use std::{process::Command, time::Duration};

use cyclon_examples::testing::{assert_bad_flags_rejected, assert_help_mentions, run_to_exit};

/// The `demo` binary, built by Cargo for this test.
const PROGRAM: &str = env!("CARGO_BIN_EXE_demo");

#[test]
fn a_small_network_runs_and_prints_every_cycle() {
    let mut command = Command::new(PROGRAM);
    command.args([
        "--peers",
        "6",
        "--cycles",
        "10",
        "--interval-ms",
        "300",
        "-c",
        "3",
        "-l",
        "2",
        "--bootstrap",
        "star",
    ]);
    let (status, stdout, stderr) = run_to_exit(command, Duration::from_secs(60));
    assert!(status.success(), "{status}: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("6 peers on 127.0.0.1, Star bootstrap, c = 3, l = 2"),
        "{stdout}"
    );
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .skip_while(|l| !l.starts_with("round"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 10, "one row per cycle:\n{stdout}");
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row[0], (k + 1).to_string(), "{stdout}");
    }
    // By the last cycle the views have grown (a star gives each only the first peer: a mean
    // below 1); ten intervals leave room for a slow machine.
    let mean_view: f64 = rows[9][1].parse().unwrap();
    assert!(mean_view > 1.0, "views did not grow:\n{stdout}");
    let finals = lines
        .iter()
        .skip_while(|l| !l.starts_with("final views"))
        .skip(1)
        .count();
    assert_eq!(finals, 6, "one final view per peer:\n{stdout}");
}

#[test]
fn bad_flags_are_one_line_errors() {
    assert_bad_flags_rejected(
        PROGRAM,
        &[
            &["--peers", "many"],
            &["--mode", "fastest"],
            &["--bootstrap", "mesh"],
            &["--peers", "1"],
            &["-c", "2", "-l", "3"],
        ],
    );
    assert_help_mentions(
        PROGRAM,
        &[
            "--peers",
            "--cycles",
            "--bootstrap",
            "--mode",
            "--view-size",
        ],
    );
}
