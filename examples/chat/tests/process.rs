//! The `chat` example as processes on 127.0.0.1: four chats where C and D know only B and B
//! knows only A find each other through Cyclon, a line typed into D reaches A, B and C, and
//! once B is killed C and D still reach A over the connections Cyclon led them to.

#![cfg(unix)]

mod support;

use std::{
    collections::BTreeSet,
    process::Command,
    time::{Duration, Instant},
};

use cyclon_examples::testing::{Group, Output, assert_bad_flags_rejected, assert_help_mentions};
use support::{identity, members};

/// The `chat` binary, built by Cargo for this test.
const PROGRAM: &str = env!("CARGO_BIN_EXE_chat");

const TIMEOUT: Duration = Duration::from_secs(30);

fn chat(bootstrap: Option<&str>) -> Command {
    let mut command = Command::new(PROGRAM);
    command.args(["--listen", "/ip4/127.0.0.1/tcp/0", "--interval-ms", "200"]);
    if let Some(bootstrap) = bootstrap {
        command.args(["--bootstrap", bootstrap]);
    }
    command
}

fn received(output: &Output, from: &str, text: &str) -> bool {
    let line = format!("{from}: {text}");
    output.stdout.contains(&line)
}

#[test]
fn four_chats_find_each_other_through_cyclon_and_chat() {
    let mut group = Group::new();
    let (a, b, c, d) = (0, 1, 2, 3);
    group.spawn("A", chat(None));
    let (_, a_address) = group.wait_until("A to listen", TIMEOUT, |o| identity(&o[a]));
    group.spawn("B", chat(Some(&a_address)));
    let (_, b_address) = group.wait_until("B to listen", TIMEOUT, |o| identity(&o[b]));
    group.spawn("C", chat(Some(&b_address)));
    group.spawn("D", chat(Some(&b_address)));
    let ids: Vec<String> = group.wait_until("C and D to listen", TIMEOUT, |o| {
        o.iter().map(|o| identity(o).map(|(id, _)| id)).collect()
    });

    // Everybody ends up connected to everybody else: A was told about nobody, C and D only
    // about B.
    let start = Instant::now();
    group.wait_until("every chat to see the three others join", TIMEOUT, |o| {
        (0..4)
            .all(|i| {
                let others: BTreeSet<String> =
                    (0..4).filter(|&j| j != i).map(|j| ids[j].clone()).collect();
                members(&o[i]) == others
            })
            .then_some(())
    });

    eprintln!("all four chats joined after {:?}", start.elapsed());

    group.write_line(d, "hello from D");
    group.wait_until("D's line at A, B and C", TIMEOUT, |o| {
        [a, b, c]
            .iter()
            .all(|&i| received(&o[i], &ids[d], "hello from D"))
            .then_some(())
    });

    // Without B, through which C and D first heard of anyone, the others still talk.
    group.kill(b);
    group.wait_until("A, C and D to see B leave", TIMEOUT, |o| {
        [a, c, d]
            .iter()
            .all(|&i| !members(&o[i]).contains(&ids[b]))
            .then_some(())
    });
    group.write_line(c, "B is gone, still here?");
    group.wait_until("C's line at A and D", TIMEOUT, |o| {
        [a, d]
            .iter()
            .all(|&i| received(&o[i], &ids[c], "B is gone, still here?"))
            .then_some(())
    });
    group.with_outputs(|o| {
        assert!(
            !received(&o[c], &ids[c], "B is gone, still here?"),
            "C printed its own line as received"
        );
    });

    // End of input, Ctrl-C and SIGTERM each stop a chat with exit status 0.
    group.close_stdin(a);
    group.signal(c, "INT");
    group.signal(d, "TERM");
    for i in [a, c, d] {
        let status = group.wait_exit(i, Duration::from_secs(10));
        assert!(status.success(), "chat {i} exited with {status}");
    }
}

#[test]
fn bad_flags_exit_non_zero_with_a_one_line_message() {
    assert_bad_flags_rejected(
        PROGRAM,
        &[
            &["--listen", "not-a-multiaddr"],
            &["--bootstrap", "/ip4/127.0.0.1/tcp/4001"],
            &["--view-size", "0"],
            &["--interval-ms", "0"],
        ],
    );
}

#[test]
fn help_documents_the_flags() {
    assert_help_mentions(
        PROGRAM,
        &[
            "--listen",
            "--bootstrap",
            "--topic",
            "--secret-key-seed",
            "--neighbours",
            "--max-connections",
            "--idle-timeout-ms",
            "--address-scope",
            "--protocol-prefix",
        ],
    );
}
