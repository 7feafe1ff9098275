//! The `simulate` program as a process: a small run writes its CSV and edges, the same way
//! every time; bad flags and unusable settings are one-line errors.

use std::{fs, path::PathBuf, process::Command, time::Duration};

use cyclon_examples::testing::{assert_bad_flags_rejected, assert_help_mentions, run_to_exit};

/// The `simulate` binary, built by Cargo for this test.
const PROGRAM: &str = env!("CARGO_BIN_EXE_simulate");

/// A file path of this test run, named after `name` and the process.
fn temp_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("simulate-{}-{name}", std::process::id()))
}

/// Runs a small simulation writing its CSV and edges; returns both files' contents.
fn small_run(tag: &str) -> (String, String) {
    let csv = temp_path(&format!("{tag}.csv"));
    let edges = temp_path(&format!("{tag}.edges"));
    let mut command = Command::new(PROGRAM);
    command
        .args(["-n", "300", "-t", "10", "-q", "--csv"])
        .arg(&csv)
        .arg("--edges-out")
        .arg(&edges);
    let (status, stdout, stderr) = run_to_exit(command, Duration::from_secs(60));
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        stdout.starts_with("Cyclon simulation: N=300 c=20 l=5 cycles=10 bootstrap=Ring seed=1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("wrote {}", csv.display())),
        "{stdout}"
    );
    let read = |path: &PathBuf| {
        let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let _ = fs::remove_file(path);
        text
    };
    (read(&csv), read(&edges))
}

#[test]
fn a_small_run_writes_its_files_reproducibly() {
    let (csv, edges) = small_run("first");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines.len() >= 3, "a header and 2+ rows:\n{csv}");
    assert!(
        lines[0]
            .split(',')
            .all(|field| field.parse::<f64>().is_err()),
        "the first line is not a header: {}",
        lines[0]
    );
    let columns = lines[0].split(',').count();
    for row in &lines[1..] {
        assert_eq!(row.split(',').count(), columns, "{row}");
    }
    assert!(!edges.trim().is_empty(), "no edges");
    for line in edges.lines() {
        let ends: Vec<u32> = line
            .split_whitespace()
            .map(|n| n.parse().unwrap_or_else(|e| panic!("{line}: {e}")))
            .collect();
        assert_eq!(ends.len(), 2, "{line}");
        assert!(ends.iter().all(|&n| n < 300), "{line}");
    }

    let (csv_again, edges_again) = small_run("second");
    assert_eq!(csv, csv_again, "same seed, different CSV");
    assert_eq!(edges, edges_again, "same seed, different edges");
}

#[test]
fn bad_flags_are_one_line_errors() {
    assert_bad_flags_rejected(
        PROGRAM,
        &[
            &["--nodes", "x"],
            &["--mode", "nope"],
            &["--kill-fraction", "2"],
            &["--bootstrap", "nope"],
            &["-c", "3", "-l", "5"],
            &["--nodes", "1"],
            &["-n", "100", "-t", "10", "--malicious", "0.1"],
        ],
    );
}

#[test]
fn help_lists_the_flags() {
    assert_help_mentions(
        PROGRAM,
        &[
            "--malicious",
            "--mode",
            "--bootstrap",
            "--view-size",
            "--shuffle-length",
            "--nodes",
            "--cycles",
            "--seed",
            "--quiet",
        ],
    );
}
