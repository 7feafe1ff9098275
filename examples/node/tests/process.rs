//! The `node` example as processes on 127.0.0.1: eight nodes bootstrapped from the first form
//! full views without a hub, with entries verified by the nodes' signed records, forget nodes
//! killed with SIGKILL, and stop cleanly on signals; a node with `--require-signed-records`
//! takes a signing node's entry and drops an unsigned peer's; nodes running the `--defence`
//! fill their views, and so do nodes running SecureCyclon (`--defence secure`); bad flags are
//! one-line errors.
//!
//! Each node's view is replayed from its `peer_added` / `peer_removed` events, checking on the
//! way that the event stream itself is consistent (no self, no duplicate, never more than `c`).

#![cfg(unix)]

use std::{
    collections::BTreeSet,
    process::Command,
    time::{Duration, Instant},
};

use cyclon_examples::testing::{Group, Output, assert_bad_flags_rejected, assert_help_mentions};
use futures::StreamExt;
use libp2p::{
    Multiaddr, Swarm, identify, identity, noise, ping,
    swarm::{NetworkBehaviour, SwarmEvent},
    tcp, yamux,
};
use serde_json::Value;

/// The `node` binary, built by Cargo for this test.
const PROGRAM: &str = env!("CARGO_BIN_EXE_node");

const NODES: usize = 8;
const VIEW_SIZE: usize = 4;

fn node(listen: &str, bootstrap: Option<&str>) -> Command {
    let mut command = Command::new(PROGRAM);
    command.args(["--listen", listen]);
    command.args([
        "--view-size",
        &VIEW_SIZE.to_string(),
        "--shuffle-length",
        "2",
    ]);
    command.args(["--interval-ms", "200", "--request-timeout-ms", "1000"]);
    if let Some(bootstrap) = bootstrap {
        command.args(["--bootstrap", bootstrap]);
    }
    command
}

/// The node's stdout as JSON events; every line must be one JSON object with an `"event"`.
fn events(output: &Output) -> impl Iterator<Item = Value> + '_ {
    output.stdout.iter().map(|line| {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert!(event["event"].is_string(), "no \"event\" field: {line}");
        event
    })
}

/// The node's peer id and listen addresses, from its first `listening` event.
fn listening(output: &Output) -> Option<(String, Vec<String>)> {
    let event = events(output).find(|e| e["event"] == "listening")?;
    let peer_id = event["peer_id"].as_str().expect("peer_id").to_string();
    let addresses = event["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| a.as_str().expect("address").to_string())
        .collect();
    Some((peer_id, addresses))
}

/// A node's view, replayed from its events.
struct Replayed {
    view: BTreeSet<String>,
    /// Whether the view ever held `c` entries.
    was_full: bool,
}

fn replay(output: &Output, own_id: &str) -> Replayed {
    let mut view = BTreeSet::new();
    let mut was_full = false;
    for (n, event) in events(output).enumerate() {
        let peer = || event["peer_id"].as_str().expect("peer_id").to_string();
        let context = || output.stdout[n.saturating_sub(12)..=n].join("\n");
        match event["event"].as_str() {
            Some("peer_added") => {
                let peer = peer();
                assert_ne!(peer, own_id, "a node added itself to its view");
                assert!(
                    event["addresses"].as_array().is_some_and(|a| !a.is_empty()),
                    "peer_added without addresses:\n{}",
                    context()
                );
                assert!(
                    event["signed"].is_boolean(),
                    "peer_added without \"signed\":\n{}",
                    context()
                );
                assert!(
                    view.insert(peer),
                    "peer_added for a peer in the view:\n{}",
                    context()
                );
                assert!(view.len() <= VIEW_SIZE, "the view exceeds c = {VIEW_SIZE}");
                was_full |= view.len() == VIEW_SIZE;
            }
            Some("peer_removed") => {
                assert!(
                    view.remove(&peer()),
                    "peer_removed for a peer not in the view:\n{}",
                    context()
                );
            }
            _ => {}
        }
    }
    Replayed { view, was_full }
}

/// Whether the undirected graph of the given nodes' views connects them all.
fn connected(ids: &[&String], views: &[BTreeSet<String>]) -> bool {
    let mut reached = BTreeSet::from([ids[0]]);
    loop {
        let before = reached.len();
        for (id, view) in ids.iter().zip(views) {
            if reached.contains(id) || view.iter().any(|p| reached.contains(p)) {
                reached.insert(id);
                reached.extend(ids.iter().filter(|i| view.contains(**i)));
            }
        }
        if reached.len() == before {
            return reached.len() == ids.len();
        }
    }
}

/// How many of the given views hold each of `ids`.
fn in_degrees(ids: &[String], views: &[BTreeSet<String>]) -> Vec<usize> {
    ids.iter()
        .map(|id| views.iter().filter(|v| v.contains(id)).count())
        .collect()
}

#[test]
fn eight_nodes_converge_without_a_hub_and_forget_killed_nodes() {
    let mut group = Group::new();
    let first = group.spawn("node 0", node("/ip4/127.0.0.1/tcp/0", None));
    let (first_id, first_addresses) =
        group.wait_until("node 0 to listen", Duration::from_secs(10), |o| {
            listening(&o[first])
        });
    assert!(first_addresses[0].ends_with(&format!("/p2p/{first_id}")));
    let bootstrap = first_addresses[0].clone();

    // The others know only the first. One of them listens on QUIC only, so everybody dials it
    // over QUIC.
    for i in 1..NODES {
        let listen = if i == NODES - 1 {
            "/ip4/127.0.0.1/udp/0/quic-v1"
        } else {
            "/ip4/127.0.0.1/tcp/0"
        };
        group.spawn(&format!("node {i}"), node(listen, Some(&bootstrap)));
    }
    let ids: Vec<String> = group.wait_until("all nodes to listen", Duration::from_secs(10), |o| {
        o.iter()
            .map(|output| listening(output).map(|(id, _)| id))
            .collect()
    });
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), NODES);

    // Every view fills up (c = 4 < 7 others), and at one moment all views are full but for at
    // most one slot, hold only peers we started, and node 0 is not a hub: its in-degree is at
    // most one above the others' mean (a hub would be in all 7 other views).
    //
    // Why not "all views full at one moment": link reversal takes the target of each shuffle
    // out of the initiator's view, and in a network this small most entries a partner sends
    // back are duplicates, so a view often sits at c - 1 for a while.
    let start = Instant::now();
    let degrees = group.wait_until("full views and no hub", Duration::from_secs(30), |o| {
        let replayed: Vec<_> = o
            .iter()
            .zip(&ids)
            .map(|(out, id)| replay(out, id))
            .collect();
        let views: Vec<_> = replayed.iter().map(|r| r.view.clone()).collect();
        for view in &views {
            assert!(
                view.iter().all(|p| ids.contains(p)),
                "unknown peer in {view:?}"
            );
        }
        if replayed
            .iter()
            .any(|r| !r.was_full || r.view.len() + 1 < VIEW_SIZE)
        {
            return None;
        }
        let degrees = in_degrees(&ids, &views);
        let others_mean = degrees[1..].iter().sum::<usize>() as f64 / (NODES - 1) as f64;
        (degrees[0] as f64 <= others_mean + 1.0).then_some(degrees)
    });
    eprintln!(
        "views full after {:?}; in-degrees {degrees:?}",
        start.elapsed()
    );
    // Every node signs its own entry: entries learned by shuffling are verified; only the
    // bootstrap address (given on the command line) is not.
    group.with_outputs(|o| {
        let added: Vec<Value> = o
            .iter()
            .flat_map(events)
            .filter(|e| e["event"] == "peer_added")
            .collect();
        let unsigned = added.iter().filter(|e| e["signed"] == false).count();
        assert!(added.iter().any(|e| e["signed"] == true));
        assert!(
            unsigned < NODES,
            "{unsigned} unsigned entries, more than the {} bootstrap ones",
            NODES - 1
        );
    });

    // SIGKILL three nodes, the bootstrap node among them: within a bounded time no survivor's
    // view holds them, and the survivors' views still connect them all.
    let killed = [0, 3, 5];
    for &i in &killed {
        group.kill(i);
    }
    let survivors: Vec<usize> = (0..NODES).filter(|i| !killed.contains(i)).collect();
    let survivor_ids: Vec<&String> = survivors.iter().map(|&i| &ids[i]).collect();
    let start = Instant::now();
    let sizes = group.wait_until(
        "the killed nodes to leave all views",
        Duration::from_secs(30),
        |o| {
            let views: Vec<_> = survivors
                .iter()
                .map(|&i| replay(&o[i], &ids[i]).view)
                .collect();
            let forgotten = views
                .iter()
                .all(|view| killed.iter().all(|&k| !view.contains(&ids[k])));
            (forgotten && connected(&survivor_ids, &views))
                .then(|| views.iter().map(BTreeSet::len).collect::<Vec<_>>())
        },
    );
    eprintln!(
        "killed nodes forgotten after {:?}; survivors' view sizes {sizes:?}",
        start.elapsed()
    );
    group.with_outputs(|o| {
        let failures = survivors
            .iter()
            .flat_map(|&i| events(&o[i]))
            .filter(|e| e["event"] == "shuffle_failed")
            .count();
        assert!(failures > 0, "no shuffle with a killed node failed");
    });

    // Ctrl-C and SIGTERM stop a node with exit status 0.
    for (n, &i) in survivors.iter().enumerate() {
        group.signal(i, if n % 2 == 0 { "INT" } else { "TERM" });
    }
    for &i in &survivors {
        let status = group.wait_exit(i, Duration::from_secs(10));
        assert!(
            status.success(),
            "node {i} exited with {status} on a signal"
        );
    }
}

/// An in-process libp2p peer over TCP (noise, yamux), to talk to the node; needs a tokio
/// runtime.
fn tcp_peer<B: NetworkBehaviour>(behaviour: impl FnOnce(&identity::Keypair) -> B) -> Swarm<B> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(behaviour)
        .expect("behaviour")
        .build()
}

/// What a generic libp2p peer runs to talk to the node.
#[derive(NetworkBehaviour)]
struct Probe {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[test]
fn answers_identify_and_ping() {
    let mut group = Group::new();
    let index = group.spawn("node", node("/ip4/127.0.0.1/tcp/0", None));
    let (peer_id, addresses) =
        group.wait_until("the node to listen", Duration::from_secs(10), |o| {
            listening(&o[index])
        });
    let address: Multiaddr = addresses[0].parse().expect("a multiaddr");

    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let (identified, info) = runtime.block_on(async {
        let mut swarm = tcp_peer(|key| Probe {
            identify: identify::Behaviour::new(identify::Config::new(
                "/probe/1.0.0".to_string(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
        });
        swarm.dial(address.clone()).expect("dial");
        let (mut identified, mut pinged) = (None, false);
        let answered = async {
            while identified.is_none() || !pinged {
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(ProbeEvent::Identify(identify::Event::Received {
                        peer_id,
                        info,
                        ..
                    })) => identified = Some((peer_id, info)),
                    SwarmEvent::Behaviour(ProbeEvent::Ping(ping::Event {
                        result: Ok(_), ..
                    })) => pinged = true,
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        panic!("cannot connect to the node: {error}")
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), answered)
            .await
            .expect("identify and ping answered within 20 s");
        identified.expect("identified")
    });
    assert_eq!(identified.to_base58(), peer_id);
    for protocol in [
        libp2p_cyclon::PROTOCOL_NAME.as_ref(),
        libp2p_cyclon::PROTOCOL_NAME_V1_1.as_ref(),
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
    ] {
        assert!(
            info.protocols.iter().any(|p| p.as_ref() == protocol),
            "{protocol} missing from {:?}",
            info.protocols
        );
    }
    assert!(info.agent_version.starts_with("libp2p-cyclon-node/"));
    let listen_address = address.with_p2p(identified).unwrap_or_else(|a| a);
    assert!(
        info.listen_addrs
            .iter()
            .any(|a| a.clone().with_p2p(identified).unwrap_or_else(|a| a) == listen_address),
        "{listen_address} missing from {:?}",
        info.listen_addrs
    );
}

#[test]
fn bad_flags_exit_non_zero_with_a_one_line_message() {
    assert_bad_flags_rejected(
        PROGRAM,
        &[
            &["--listen", "not-a-multiaddr"],
            &["--bootstrap", "/ip4/127.0.0.1/tcp/4001"],
            &["--bootstrap", "/ip4/127.0.0.1/tcp/4001/p2p/not-a-peer-id"],
            &["--view-size", "0"],
            &["--view-size", "3", "--shuffle-length", "4"],
            &["--interval-ms", "0"],
            &["--secret-key-seed", "256"],
            &["--address-scope", "planet"],
            &["--protocol-prefix", "no-slash"],
            &["--protocol-prefix", "/trailing/"],
            &["--defence", "secure", "--neighbours", "2"],
            &["--defence", "secure", "--view-size", "0"],
            &["--no-such-flag"],
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
            "--secret-key-seed",
            "--view-size",
            "--shuffle-length",
            "--interval-ms",
            "--require-signed-records",
            "--state-file",
            "--rejoin-every",
            "--rejoin-memory",
            "--defence",
            "--address-scope",
            "--protocol-prefix",
            "--neighbours",
            "RUST_LOG",
        ],
    );
}

#[test]
fn a_node_requiring_signed_records_takes_signed_entries_only() {
    let mut group = Group::new();
    let mut strict = node("/ip4/127.0.0.1/tcp/0", None);
    strict.arg("--require-signed-records");
    let strict = group.spawn("strict node", strict);
    let (strict_id, strict_addresses) =
        group.wait_until("the strict node to listen", Duration::from_secs(10), |o| {
            listening(&o[strict])
        });
    let signer = group.spawn(
        "signing node",
        node("/ip4/127.0.0.1/tcp/0", Some(&strict_addresses[0])),
    );
    let (signer_id, _) = group.wait_until("the node to listen", Duration::from_secs(10), |o| {
        listening(&o[signer])
    });

    // A peer that does not sign (no key given to the behaviour) shuffles with the strict node
    // until two shuffles completed: its own entry is refused each time.
    let address: Multiaddr = strict_addresses[0].parse().unwrap();
    let strict_peer: libp2p::PeerId = strict_id.parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let unsigned_id = runtime.block_on(async {
        let config = libp2p_cyclon::Config::default()
            .with_view_size(VIEW_SIZE)
            .with_shuffle_length(2);
        let mut swarm = tcp_peer(|key| {
            let mut cyclon = libp2p_cyclon::Behaviour::new(key.public().to_peer_id(), config);
            cyclon.pause();
            cyclon
        });
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let mut completed = 0;
        let shuffles = async {
            while completed < 2 {
                if swarm.behaviour().get(&strict_peer).is_none() {
                    swarm
                        .behaviour_mut()
                        .add_address(&strict_peer, address.clone());
                }
                if swarm.behaviour().shuffles_in_flight() == 0 && swarm.listeners().count() > 0 {
                    swarm.behaviour_mut().shuffle_now().unwrap();
                }
                match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(libp2p_cyclon::Event::ShuffleCompleted {
                        peer_id,
                        ..
                    }) if peer_id == strict_peer => completed += 1,
                    SwarmEvent::Behaviour(libp2p_cyclon::Event::ShuffleFailed {
                        error, ..
                    }) => {
                        panic!("shuffle with the strict node failed: {error}")
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), shuffles)
            .await
            .expect("two shuffles within 20 s");
        swarm.local_peer_id().to_base58()
    });

    // The signing node's entry arrives verified; the unsigned peer never enters.
    group.wait_until(
        "the strict node to take the signing node",
        Duration::from_secs(20),
        |o| {
            events(&o[strict])
                .any(|e| e["event"] == "peer_added" && e["peer_id"] == signer_id.as_str())
                .then_some(())
        },
    );
    group.with_outputs(|o| {
        let added: Vec<Value> = events(&o[strict])
            .filter(|e| e["event"] == "peer_added")
            .collect();
        assert!(added.iter().all(|e| e["signed"] == true), "{added:?}");
        assert!(added.iter().all(|e| e["peer_id"] != unsigned_id.as_str()));
    });
}

#[test]
fn nodes_with_the_defence_fill_their_views_with_consistent_events() {
    // Six nodes run the seeded eclipse defence, bootstrapped from the first: every view fills
    // up and holds only the nodes started, and each node's event stream replays consistently
    // (under the defence a shuffle's target stays in the view unless the shuffle fails).
    const DEFENDED: usize = 6;
    let mut group = Group::new();
    let mut first = node("/ip4/127.0.0.1/tcp/0", None);
    first.arg("--defence");
    let first = group.spawn("node 0", first);
    let (_, first_addresses) = group.wait_until("node 0 to listen", Duration::from_secs(10), |o| {
        listening(&o[first])
    });
    for i in 1..DEFENDED {
        let mut command = node("/ip4/127.0.0.1/tcp/0", Some(&first_addresses[0]));
        command.args(["--defence", "seeded"]);
        group.spawn(&format!("node {i}"), command);
    }
    let ids: Vec<String> = group.wait_until("all nodes to listen", Duration::from_secs(10), |o| {
        o.iter()
            .map(|output| listening(output).map(|(id, _)| id))
            .collect()
    });
    let views = group.wait_until("full views", Duration::from_secs(30), |o| {
        let views: Vec<_> = o
            .iter()
            .zip(&ids)
            .map(|(out, id)| replay(out, id).view)
            .collect();
        views.iter().all(|v| v.len() == VIEW_SIZE).then_some(views)
    });
    for view in &views {
        assert!(
            view.iter().all(|p| ids.contains(p)),
            "unknown peer in {view:?}"
        );
    }
    let id_refs: Vec<&String> = ids.iter().collect();
    assert!(connected(&id_refs, &views), "the views connect all nodes");
}

/// Two nodes under different protocol prefixes: the one that knows the other fails to shuffle
/// with it (the other does not speak its protocol) and drops it, and neither ever takes the
/// other's entry. A third node under the first one's prefix shuffles with it.
#[test]
fn nodes_under_another_protocol_prefix_never_exchange_entries() {
    let mut group = Group::new();
    let mut other = node("/ip4/127.0.0.1/tcp/0", None);
    other.args(["--protocol-prefix", "/other-app"]);
    let other = group.spawn("node of /other-app", other);
    let (other_id, other_addresses) =
        group.wait_until("it to listen", Duration::from_secs(10), |o| {
            listening(&o[other])
        });
    let mut first = node("/ip4/127.0.0.1/tcp/0", Some(&other_addresses[0]));
    first.args(["--protocol-prefix", "/my-app"]);
    let first = group.spawn("node of /my-app", first);
    let (first_id, first_addresses) =
        group.wait_until("it to listen", Duration::from_secs(10), |o| {
            listening(&o[first])
        });
    group.wait_until(
        "the /my-app node to fail to shuffle with the /other-app node",
        Duration::from_secs(20),
        |o| {
            events(&o[first])
                .any(|e| {
                    e["event"] == "shuffle_failed"
                        && e["peer_id"] == other_id.as_str()
                        && e["error"]
                            .as_str()
                            .is_some_and(|m| m.contains("does not support"))
                })
                .then_some(())
        },
    );
    let mut second = node("/ip4/127.0.0.1/tcp/0", Some(&first_addresses[0]));
    second.args(["--protocol-prefix", "/my-app"]);
    let second = group.spawn("second node of /my-app", second);
    group.wait_until(
        "the second /my-app node to shuffle with the first",
        Duration::from_secs(20),
        |o| {
            events(&o[second])
                .any(|e| e["event"] == "shuffle_completed" && e["peer_id"] == first_id.as_str())
                .then_some(())
        },
    );
    group.with_outputs(|o| {
        assert!(
            !events(&o[other]).any(|e| e["event"] == "peer_added"),
            "the /other-app node took an entry"
        );
        let first_view = replay(&o[first], &first_id).view;
        assert!(!first_view.contains(&other_id), "{first_view:?}");
    });
}

/// With `--address-scope lan`, a node takes no loopback address from the network: a peer on
/// loopback that shuffles with it is answered, but its entry (and every other it sends) is
/// dropped, so the node reports no valid entry received; an unscoped node answering the same
/// peer takes its entry.
#[test]
fn a_node_drops_received_addresses_outside_its_scope() {
    let mut group = Group::new();
    let mut scoped = node("/ip4/127.0.0.1/tcp/0", None);
    scoped.args(["--address-scope", "lan"]);
    let scoped = group.spawn("node with --address-scope lan", scoped);
    let (scoped_id, scoped_addresses) =
        group.wait_until("it to listen", Duration::from_secs(10), |o| {
            listening(&o[scoped])
        });
    let plain = group.spawn("unscoped node", node("/ip4/127.0.0.1/tcp/0", None));
    let (_, plain_addresses) = group.wait_until("it to listen", Duration::from_secs(10), |o| {
        listening(&o[plain])
    });
    // The peer knows both and shuffles with each (the oldest first, then the other).
    let mut peer = node("/ip4/127.0.0.1/tcp/0", Some(&scoped_addresses[0]));
    peer.args(["--bootstrap", &plain_addresses[0]]);
    let peer = group.spawn("peer on loopback", peer);
    let (peer_id, _) = group.wait_until("the peer to listen", Duration::from_secs(10), |o| {
        listening(&o[peer])
    });
    let answered = |output: &Output| -> Option<u64> {
        events(output)
            .find(|e| e["event"] == "shuffle_answered" && e["peer_id"] == peer_id.as_str())
            .and_then(|e| e["received"].as_u64())
    };
    let (scoped_received, plain_received) = group.wait_until(
        "both nodes to answer the peer",
        Duration::from_secs(20),
        |o| Some((answered(&o[scoped])?, answered(&o[plain])?)),
    );
    assert_eq!(scoped_received, 0, "the scoped node took a loopback entry");
    assert!(plain_received >= 1, "the unscoped node took nothing");
    group.with_outputs(|o| {
        assert!(!replay(&o[scoped], &scoped_id).view.contains(&peer_id));
        assert!(
            events(&o[plain])
                .any(|e| e["event"] == "peer_added" && e["peer_id"] == peer_id.as_str())
        );
    });
}

/// Five nodes with `--neighbours 2`: every node reports neighbours, and every link is reported
/// by both of its ends (links are symmetric).
#[test]
fn nodes_report_symmetric_neighbour_links() {
    const NEIGHBOURED: usize = 5;
    let mut group = Group::new();
    let mut first = node("/ip4/127.0.0.1/tcp/0", None);
    first.args(["--neighbours", "2"]);
    let first = group.spawn("node 0", first);
    let (_, first_addresses) = group.wait_until("node 0 to listen", Duration::from_secs(10), |o| {
        listening(&o[first])
    });
    let mut nodes = vec![first];
    for k in 1..NEIGHBOURED {
        let mut command = node("/ip4/127.0.0.1/tcp/0", Some(&first_addresses[0]));
        command.args(["--neighbours", "2"]);
        nodes.push(group.spawn(&format!("node {k}"), command));
    }
    let ids: Vec<String> = nodes
        .iter()
        .map(|&n| {
            group
                .wait_until("a node to listen", Duration::from_secs(10), |o| {
                    listening(&o[n])
                })
                .0
        })
        .collect();
    // Each node's neighbours, replayed from its neighbour_up / neighbour_down events.
    let links = |o: &[Output]| -> Vec<BTreeSet<String>> {
        nodes
            .iter()
            .map(|&n| {
                let mut links = BTreeSet::new();
                for e in events(&o[n]) {
                    let peer = e["peer_id"].as_str().unwrap_or_default().to_owned();
                    match e["event"].as_str() {
                        Some("neighbour_up") => assert!(links.insert(peer), "up twice"),
                        Some("neighbour_down") => assert!(links.remove(&peer), "down, not up"),
                        _ => {}
                    }
                }
                links
            })
            .collect()
    };
    group.wait_until(
        "every node to have symmetric neighbours",
        Duration::from_secs(30),
        |o| {
            let links = links(o);
            let symmetric = links.iter().enumerate().all(|(k, mine)| {
                !mine.is_empty()
                    && mine.len() <= 2
                    && mine.iter().all(|peer| {
                        ids.iter()
                            .position(|id| id == peer)
                            .is_some_and(|j| links[j].contains(&ids[k]))
                    })
            });
            symmetric.then_some(())
        },
    );
}

/// Six nodes run SecureCyclon (`--defence secure`), each knowing only the first as a seed:
/// every node completes exchanges over `/cyclon/2.0.0`, the views (replayed from the events)
/// hold only signed descriptors of the nodes started and connect them all, and no node sees
/// an invalid item, finds a proof or blacklists anyone.
#[test]
fn nodes_running_secure_cyclon_fill_their_views_with_signed_descriptors() {
    const SECURE: usize = 6;
    let mut group = Group::new();
    let mut first = node("/ip4/127.0.0.1/tcp/0", None);
    first.args(["--defence", "secure"]);
    let first = group.spawn("node 0", first);
    let (_, first_addresses) = group.wait_until("node 0 to listen", Duration::from_secs(10), |o| {
        listening(&o[first])
    });
    for i in 1..SECURE {
        let mut command = node("/ip4/127.0.0.1/tcp/0", Some(&first_addresses[0]));
        command.args(["--defence", "secure"]);
        group.spawn(&format!("node {i}"), command);
    }
    let ids: Vec<String> = group.wait_until("all nodes to listen", Duration::from_secs(10), |o| {
        o.iter()
            .map(|output| listening(output).map(|(id, _)| id))
            .collect()
    });
    let id_refs: Vec<&String> = ids.iter().collect();
    let views = group.wait_until("filled, connected views", Duration::from_secs(40), |o| {
        let views: Vec<_> = o
            .iter()
            .zip(&ids)
            .map(|(out, id)| replay(out, id).view)
            .collect();
        let exchanged = o.iter().all(|out| {
            events(out).any(|e| e["event"] == "exchange_completed")
                && events(out).any(|e| e["event"] == "exchange_answered")
        });
        (exchanged && views.iter().all(|v| v.len() >= 2) && connected(&id_refs, &views))
            .then_some(views)
    });
    for view in &views {
        assert!(
            view.iter().all(|p| ids.contains(p)),
            "unknown peer in {view:?}"
        );
    }
    group.with_outputs(|outputs| {
        for (k, output) in outputs.iter().enumerate() {
            for event in events(output) {
                let kind = event["event"].as_str().unwrap_or_default();
                assert!(
                    !matches!(kind, "invalid_items" | "proof_found" | "blacklisted"),
                    "node {k}: {event}"
                );
                if kind == "peer_added" {
                    assert_eq!(event["signed"], true, "node {k}: {event}");
                }
            }
        }
    });
}
