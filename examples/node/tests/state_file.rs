//! `node --state-file` on 127.0.0.1: the view is saved on exit and restored at the next start,
//! also when the node stops while a shuffle is in flight; a corrupt or foreign file stops the
//! node with status 2 and a one-line message, and is left as it was.
//!
//! Node 1's partner, node 2, is frozen (SIGSTOP) while node 1 runs: the kernel still accepts
//! node 1's connection, but nothing answers, so node 1's shuffle with node 2 stays in flight
//! (its timeout is an hour) and nothing else can change node 1's view. Whatever node 1 had done
//! when it is stopped, node 2 is in its view or in flight: the outcome does not depend on which
//! of two events comes first. (With node 2 answering, a two-node overlay hands its one link back
//! and forth, and a node stopped right after handing it over rightly knows nobody.)

#![cfg(unix)]

use std::{path::Path, process::Command, time::Duration};

use cyclon_examples::testing::{Group, Output, run_to_exit};
use serde_json::Value;

const PROGRAM: &str = env!("CARGO_BIN_EXE_node");
const WAIT: Duration = Duration::from_secs(20);

fn node(seed: u8, state_file: &Path) -> Command {
    let mut command = Command::new(PROGRAM);
    command.args(["--listen", "/ip4/127.0.0.1/tcp/0", "--interval-ms", "200"]);
    command.args(["--secret-key-seed", &seed.to_string()]);
    command.arg("--state-file").arg(state_file);
    command
}

/// `node(seed, state_file)` whose shuffles wait an hour for an answer.
fn patient_node(seed: u8, state_file: &Path) -> Command {
    let mut command = node(seed, state_file);
    command.args(["--request-timeout-ms", "3600000"]);
    command
}

fn events(output: &Output) -> Vec<Value> {
    output
        .stdout
        .iter()
        .map(|line| serde_json::from_str(line).expect("JSON"))
        .collect()
}

fn listening(output: &Output) -> Option<(String, String)> {
    let event = events(output)
        .into_iter()
        .find(|e| e["event"] == "listening")?;
    Some((
        event["peer_id"].as_str()?.to_owned(),
        event["addresses"][0].as_str()?.to_owned(),
    ))
}

/// Whether `output` has an event `kind` about `peer` (and `extra` holds for it).
fn has_event(output: &Output, kind: &str, peer: &str, extra: impl Fn(&Value) -> bool) -> bool {
    events(output)
        .iter()
        .any(|e| e["event"] == kind && e["peer_id"] == peer && extra(e))
}

fn added(output: &Output) -> Vec<String> {
    events(output)
        .iter()
        .filter(|e| e["event"] == "peer_added")
        .map(|e| e["peer_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Starts node 2 and freezes it (SIGSTOP) once it listens, then starts node 1 (patient, saving
/// to `state`) bootstrapped from it. Returns node 1's and node 2's indices in `group` and node 2's peer id.
fn start_with_frozen_partner(
    group: &mut Group,
    state: &Path,
    other_state: &Path,
) -> (usize, usize, String) {
    let two = group.spawn("node 2", node(2, other_state));
    let (two_id, two_address) = group.wait_until("node 2 listening", WAIT, |o| listening(&o[two]));
    group.signal(two, "STOP");
    let mut first = patient_node(1, state);
    first.args(["--bootstrap", &two_address]);
    (group.spawn("node 1", first), two, two_id)
}

/// Runs `command` to its end and checks the refusal: status 2, one error line on stderr.
fn assert_refused(command: Command, mentions: &str) {
    let (status, stdout, stderr) = run_to_exit(command, WAIT);
    assert_eq!(status.code(), Some(2), "{status}: {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    // Logs may come first; the error is one line, the last.
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "not one error line: {stderr}");
    let line = stderr.trim().lines().last().unwrap_or_default();
    assert_eq!(line, errors[0], "{stderr}");
    assert!(line.starts_with("error: state file "), "{line}");
    assert!(line.contains(mentions), "{line}");
    assert!(!line.contains("panicked"), "{line}");
}

#[test]
fn the_view_survives_a_restart_and_bad_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("view.pb");
    let other_state = dir.path().join("other.pb");

    // Node 1 learns node 2, frozen, and saves its view on SIGTERM.
    let mut group = Group::new();
    let (one, _, two_id) = start_with_frozen_partner(&mut group, &state, &other_state);
    group.wait_until("node 1 to add node 2", WAIT, |o| {
        added(&o[one]).contains(&two_id).then_some(())
    });
    group.signal(one, "TERM");
    assert!(group.wait_exit(one, WAIT).success());
    let saved = std::fs::read(&state).expect("the state file was written on exit");
    assert!(!saved.is_empty());

    // Restarted without --bootstrap, node 1 starts with node 2 in its view.
    let again = group.spawn("node 1 again", patient_node(1, &state));
    group.wait_until("node 1 to restore node 2", WAIT, |o| {
        added(&o[again]).contains(&two_id).then_some(())
    });
    group.signal(again, "TERM");
    assert!(group.wait_exit(again, WAIT).success());
    drop(group);

    // Another peer's file: refused, untouched.
    let before = std::fs::read(&state).unwrap();
    assert_refused(node(3, &state), "not of this peer");
    assert_eq!(std::fs::read(&state).unwrap(), before);

    // Garbage and an empty file: refused, untouched.
    for garbage in [&b"{\"view\": [1, 2, 3]}\n"[..], &[0xff; 40], b""] {
        std::fs::write(&state, garbage).unwrap();
        assert_refused(node(1, &state), "not a Cyclon view snapshot");
        assert_eq!(std::fs::read(&state).unwrap(), garbage);
    }

    // A directory in place of the file: refused.
    assert_refused(node(1, dir.path()), "cannot be read");
}

/// A node stopped while its shuffle with its only peer is in flight saves that peer, and a
/// restart without `--bootstrap` knows it again and shuffles with it.
#[test]
fn a_node_stopped_mid_shuffle_knows_its_partner_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("view.pb");
    let other_state = dir.path().join("other.pb");

    let mut group = Group::new();
    let (one, two, two_id) = start_with_frozen_partner(&mut group, &state, &other_state);
    // Node 1's first shuffle takes node 2, its only peer, out of its view; node 2 never answers.
    group.wait_until("node 1 to start a shuffle with node 2", WAIT, |o| {
        has_event(&o[one], "peer_removed", &two_id, |e| {
            e["reason"] == "shuffle_target"
        })
        .then_some(())
    });
    group.signal(one, "TERM");
    assert!(group.wait_exit(one, WAIT).success());
    let stopped = group.with_outputs(|o| events(&o[one]));
    assert!(
        !stopped
            .iter()
            .any(|e| e["event"] == "shuffle_completed" || e["event"] == "shuffle_failed"),
        "the shuffle ended before the node stopped: {stopped:?}"
    );

    // Restarted without --bootstrap, node 1 knows node 2 again; node 2 thawed answers it.
    let again = group.spawn("node 1 again", patient_node(1, &state));
    group.wait_until("node 1 to restore node 2", WAIT, |o| {
        added(&o[again]).contains(&two_id).then_some(())
    });
    group.signal(two, "CONT");
    group.wait_until("node 1 to shuffle with node 2 again", WAIT, |o| {
        has_event(&o[again], "shuffle_completed", &two_id, |_| true).then_some(())
    });
    group.signal(again, "TERM");
    assert!(group.wait_exit(again, WAIT).success());
}
