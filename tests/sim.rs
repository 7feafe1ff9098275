//! The simulator reproduces the Cyclon paper's claims on small, fast, seeded runs.

use libp2p_cyclon::ShuffleMode;
use libp2p_cyclon::sim::{
    Attack, AttackTarget, Bootstrap, Experiment, Kill, NodeState, Partition, Report, Scenario,
    Simulation,
};
use libp2p_cyclon::view::ShuffleParams;

fn scenario(nodes: usize, cycles: u64) -> Scenario {
    Scenario {
        nodes,
        cycles,
        metrics_every: 10,
        bfs_sources: 30,
        ..Scenario::default()
    }
}

fn run(scenario: Scenario) -> (Report, Experiment) {
    let mut experiment = Experiment::new(scenario).expect("valid scenario");
    let report = experiment.run(|_| {});
    (report, experiment)
}

fn csv(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    report.write_csv(&mut out).unwrap();
    out
}

#[test]
fn ring_converges_to_full_views_and_a_narrower_in_degree_than_random() {
    let (report, _) = run(scenario(2_000, 60));
    let first = &report.rows[0].metrics;
    let last = report.last();
    let reference = &report.reference;

    // The ring is a poor start: every in-degree is exactly c, paths are long, clustering high.
    assert_eq!(first.in_degree.std_dev, 0.0);
    assert!(first.path.mean > 20.0, "{}", first.path.mean);
    assert!(first.clustering > 0.5, "{}", first.clustering);

    assert_eq!(last.cycle, 60);
    assert_eq!(last.full_views, 2_000, "every view is full");
    assert_eq!(last.metrics.links, 2_000 * 20);
    assert_eq!(last.metrics.components.count, 1);
    assert_eq!(last.dead_links, 0);
    // Claim 3: a narrower in-degree distribution than the random c-out graph (std ≈ √c).
    assert!((reference.in_degree.std_dev - 20f64.sqrt()).abs() < 0.5);
    assert!(
        last.metrics.in_degree.std_dev < 0.6 * reference.in_degree.std_dev,
        "cyclon {} vs random {}",
        last.metrics.in_degree.std_dev,
        reference.in_degree.std_dev
    );
    // Claims 1, 2 and 6: random-like paths and clustering after a few tens of cycles.
    let path_ratio = last.metrics.path.mean / reference.path.mean;
    assert!(
        (0.97..1.03).contains(&path_ratio),
        "path ratio {path_ratio}"
    );
    let clustering_ratio = last.metrics.clustering / reference.clustering;
    assert!(
        (0.8..1.2).contains(&clustering_ratio),
        "clustering ratio {clustering_ratio}"
    );
    assert_eq!(last.metrics.path.unreachable, 0);
    assert_eq!(last.metrics.path.sources, 30);
}

#[test]
fn enhanced_shuffling_has_a_narrower_in_degree_than_basic() {
    let enhanced = run(scenario(1_000, 40)).0;
    let mut basic = scenario(1_000, 40);
    basic.params.mode = ShuffleMode::Basic;
    let basic = run(basic).0;
    let (e, b) = (
        enhanced.last().metrics.in_degree.std_dev,
        basic.last().metrics.in_degree.std_dev,
    );
    assert!(e < 0.75 * b, "enhanced {e} vs basic {b}");
}

#[test]
fn dead_links_disappear_after_a_massive_failure() {
    let (report, experiment) = run(Scenario {
        kill: Some(Kill {
            fraction: 0.5,
            at_cycle: 30,
        }),
        robustness_trials: 0,
        ..scenario(1_000, 80)
    });
    let kill = report.kill.expect("the failure happened");
    assert_eq!(kill.killed, 500);
    // About half of the survivors' 10,000 entries point to the failed half.
    assert!(
        (4_000..6_000).contains(&kill.dead_links),
        "{}",
        kill.dead_links
    );
    assert_eq!(report.dead_links[30], 0, "no dead link before the failure");
    // Claim 5: every dead link is purged within a few tens of cycles, never to come back.
    let cycles = kill.cycles_to_zero.expect("dead links reached zero");
    assert!(cycles <= 40, "took {cycles} cycles");
    assert!(
        report.dead_links[(30 + cycles) as usize..]
            .iter()
            .all(|&d| d == 0)
    );
    assert!(report.dead_links[31] < kill.dead_links);

    let last = report.last();
    assert_eq!(last.dead_links, 0);
    assert_eq!(last.metrics.nodes, 500);
    assert_eq!(
        last.metrics.components.count, 1,
        "the survivors stay connected"
    );
    assert_eq!(last.full_views, 500, "the survivors refill their views");
    assert_eq!(
        report.reference.nodes, 500,
        "the reference has the survivors' size"
    );
    let sim = experiment.simulation();
    assert_eq!(sim.live_nodes().len(), 500);
    for &id in sim.live_nodes() {
        assert!(
            sim.view(id)
                .entries()
                .iter()
                .all(|e| sim.state(*e.peer_id()) == NodeState::Live)
        );
    }
}

#[test]
fn the_same_seed_gives_byte_identical_csv_and_edges() {
    let make = |seed| Scenario {
        seed,
        kill: Some(Kill {
            fraction: 0.3,
            at_cycle: 10,
        }),
        churn: 0.01,
        metrics_every: 5,
        ..scenario(1_000, 30)
    };
    let (a, experiment_a) = run(make(7));
    let (b, experiment_b) = run(make(7));
    let (c, _) = run(make(8));
    assert_eq!(csv(&a), csv(&b));
    assert_ne!(csv(&a), csv(&c));
    assert_eq!(a.robustness, b.robustness);
    let edges = |e: &Experiment| {
        let mut out = Vec::new();
        e.simulation().write_edges(&mut out).unwrap();
        out
    };
    assert_eq!(edges(&experiment_a), edges(&experiment_b));

    let text = String::from_utf8(csv(&a)).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(Report::CSV_HEADER));
    let cycles: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(cycles, ["0", "5", "10", "15", "20", "25", "30"]);
}

#[test]
fn measuring_more_often_does_not_change_the_overlay() {
    let (a, _) = run(Scenario {
        metrics_every: 1,
        ..scenario(500, 20)
    });
    let (b, _) = run(Scenario {
        metrics_every: 0,
        ..scenario(500, 20)
    });
    assert_eq!(a.rows.len(), 21);
    assert_eq!(b.rows.len(), 2);
    assert_eq!(a.last().metrics.in_degree, b.last().metrics.in_degree);
    assert_eq!(a.last().metrics.clustering, b.last().metrics.clustering);
}

#[test]
fn edges_out_lists_live_links_with_dense_ids() {
    let (report, experiment) = run(Scenario {
        kill: Some(Kill {
            fraction: 0.25,
            at_cycle: 5,
        }),
        ..scenario(400, 6)
    });
    let mut out = Vec::new();
    experiment.simulation().write_edges(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let edges: Vec<(u32, u32)> = text
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    let last = report.last();
    assert_eq!(edges.len(), last.metrics.links);
    assert!(edges.iter().all(|&(a, b)| a < 300 && b < 300 && a != b));
    assert!(last.dead_links > 0, "dead links are not written");
}

#[test]
fn star_and_growing_bootstraps_converge() {
    for bootstrap in [Bootstrap::Star, Bootstrap::Growing] {
        let (report, experiment) = run(Scenario {
            bootstrap,
            joins_per_cycle: Some(100),
            metrics_every: 0,
            ..scenario(1_000, 40)
        });
        let last = report.last();
        assert_eq!(last.metrics.nodes, 1_000, "{bootstrap:?}");
        assert_eq!(last.full_views, 1_000, "{bootstrap:?}");
        assert_eq!(last.metrics.components.count, 1, "{bootstrap:?}");
        assert!(
            last.metrics.in_degree.std_dev < report.reference.in_degree.std_dev,
            "{bootstrap:?}"
        );
        assert_eq!(experiment.simulation().node_count(), 1_000);
    }
    // Growing: node 0 alone at first, then 100 joins per cycle.
    let (report, _) = run(Scenario {
        bootstrap: Bootstrap::Growing,
        joins_per_cycle: Some(100),
        metrics_every: 1,
        ..scenario(1_000, 12)
    });
    let sizes: Vec<usize> = report.rows.iter().map(|r| r.metrics.nodes).collect();
    assert_eq!(&sizes[..4], &[1, 101, 201, 301]);
    assert_eq!(sizes[12], 1_000);
}

#[test]
fn churn_replaces_nodes_and_keeps_the_network_size() {
    let (report, experiment) = run(Scenario {
        churn: 0.02,
        metrics_every: 0,
        ..scenario(1_000, 30)
    });
    let sim = experiment.simulation();
    assert_eq!(sim.live_nodes().len(), 1_000);
    assert!(sim.node_count() > 1_500, "{}", sim.node_count());
    let last = report.last();
    assert_eq!(last.metrics.nodes, 1_000);
    assert!(last.dead_links > 0, "churn leaves some dead links");
    // Each cycle 20 nodes fail, leaving ~400 dead links, which are purged within a few cycles.
    let share = last.dead_links as f64 / (last.dead_links as f64 + last.metrics.links as f64);
    assert!(share < 0.3, "dead links are {share} of all entries");
    assert!(last.metrics.largest_component_share() > 0.99);
}

#[test]
fn growing_with_churn_joins_every_node_once() {
    let (report, experiment) = run(Scenario {
        bootstrap: Bootstrap::Growing,
        joins_per_cycle: Some(50),
        churn: 0.05,
        metrics_every: 0,
        robustness_trials: 0,
        ..scenario(500, 30)
    });
    let sim = experiment.simulation();
    let mut live = sim.live_nodes().to_vec();
    live.sort_unstable();
    live.dedup();
    assert_eq!(live.len(), sim.live_nodes().len(), "no node is live twice");
    assert_eq!(live.len(), 500);
    assert!((0..500).all(|id| sim.state(id) != NodeState::Absent));
    assert_eq!(report.last().metrics.nodes, 500);
}

#[test]
fn robustness_matches_a_random_graph() {
    let (report, _) = run(Scenario {
        metrics_every: 0,
        ..scenario(2_000, 40)
    });
    assert_eq!(report.robustness.len(), 20);
    let first = report.robustness[0];
    assert_eq!((first.removed, first.cyclon, first.random), (0.0, 1.0, 1.0));
    // Claim 4: after removing up to 80% of the nodes, the survivors stay (almost) connected,
    // as in a random graph.
    for point in report.robustness.iter().filter(|p| p.removed <= 0.8) {
        assert!(point.cyclon > 0.98, "{point:?}");
        assert!((point.cyclon - point.random).abs() < 0.02, "{point:?}");
    }
}

#[test]
fn invalid_scenarios_are_errors() {
    let bad = [
        Scenario {
            nodes: 1,
            ..Scenario::default()
        },
        Scenario {
            params: ShuffleParams::new(20, 30),
            ..Scenario::default()
        },
        Scenario {
            kill: Some(Kill {
                fraction: 1.5,
                at_cycle: 1,
            }),
            ..Scenario::default()
        },
        Scenario {
            kill: Some(Kill {
                fraction: 0.5,
                at_cycle: 101,
            }),
            ..Scenario::default()
        },
        Scenario {
            churn: -0.1,
            ..Scenario::default()
        },
    ];
    for scenario in bad {
        assert!(Experiment::new(scenario.clone()).is_err(), "{scenario:?}");
    }
}

#[test]
fn the_simulation_drives_the_core_one_shuffle_per_live_node() {
    let mut sim = Simulation::new(300, ShuffleParams::default(), Bootstrap::Random, 3);
    for _ in 0..10 {
        sim.step();
    }
    let counters = sim.counters();
    assert_eq!(counters.initiated(), 3_000);
    assert_eq!(counters.failed, 0);
    assert_eq!(sim.cycle(), 10);
    let killed = sim.fail_random(0.2);
    assert_eq!(killed, 60);
    let before = sim.dead_links();
    assert!(before > 0);
    sim.step();
    assert!(sim.counters().failed > 0);
    assert!(sim.dead_links() < before);
    // Core invariants hold for every view.
    for &id in sim.live_nodes() {
        let view = sim.view(id);
        assert!(view.len() <= 20);
        assert!(!view.contains(&id));
        let mut ids: Vec<u32> = view.entries().iter().map(|e| *e.peer_id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), view.len());
    }
}

/// 2,000 nodes from a ring, a coalition attacking after cycle 30.
fn attack_scenario(attack: Attack, cycles: u64) -> Scenario {
    Scenario {
        attack: Some(attack),
        metrics_every: 0,
        robustness_trials: 0,
        ..scenario(2_000, cycles)
    }
}

fn attack(fraction: f64, caps: bool) -> Attack {
    Attack {
        fraction,
        start: 30,
        honest_limits: caps,
        ..Attack::default()
    }
}

#[test]
fn malicious_nodes_gain_honest_view_slots_and_caps_do_not_make_it_worse() {
    let (with_caps, experiment) = run(attack_scenario(attack(0.1, true), 45));
    let (without_caps, _) = run(attack_scenario(attack(0.1, false), 45));
    let sim = experiment.simulation();
    assert_eq!(with_caps.malicious_nodes, 200);
    assert_eq!(sim.malicious_nodes().len(), 200);
    assert!(sim.malicious_nodes().iter().all(|&id| sim.is_malicious(id)));
    assert_eq!(
        with_caps.attack.len(),
        46,
        "one row per cycle, cycle 0 included"
    );
    for (t, row) in with_caps.attack.iter().enumerate() {
        assert_eq!(row.cycle, t as u64);
        assert_eq!(row.attacking, t > 30);
        assert_eq!(row.honest_nodes, 1_800);
    }

    // While they behave, they hold about their share of the honest views, K/N.
    let start = with_caps.attack[30];
    assert!(
        (0.08..0.12).contains(&start.malicious_share()),
        "{}",
        start.malicious_share()
    );
    assert_eq!(start, without_caps.attack[30], "same run up to the attack");
    // Attacking, they hold far more: the attack is modelled.
    let (capped, uncapped) = (
        with_caps.attack.last().unwrap(),
        without_caps.attack.last().unwrap(),
    );
    assert!(
        capped.malicious_share() > 0.2,
        "{}",
        capped.malicious_share()
    );
    let shares: Vec<f64> = with_caps.attack[30..]
        .iter()
        .map(|r| r.malicious_share())
        .collect();
    assert!(
        shares.windows(2).all(|w| w[1] >= w[0] - 0.005),
        "{shares:?}"
    );
    // Our caps never make it worse (they do not make it much better either: see SECURITY.md).
    assert!(
        capped.malicious_share() <= uncapped.malicious_share() + 0.01,
        "caps {} vs no caps {}",
        capped.malicious_share(),
        uncapped.malicious_share()
    );
    // Spread over the overlay, each attacker rarely hits one target twice in an interval:
    // the rate limit refuses (almost) nothing. Every malicious node pushed once per cycle.
    assert_eq!(capped.counters.pushes, 200 * 15);
    assert!(capped.counters.refused <= capped.counters.pushes / 100);
    assert_eq!(uncapped.counters.refused, 0);
    assert!(capped.counters.answered > 0);
    assert!(
        capped.honest_components.is_some(),
        "measured on the last cycle"
    );
}

#[test]
fn the_rate_limit_refuses_a_focused_flood_but_a_coalition_still_eclipses_its_victim() {
    let focused = |caps| Attack {
        fraction: 0.05,
        pushes: 10.0,
        target: AttackTarget::Focused { victims: 1 },
        ..attack(0.05, caps)
    };
    let (with_caps, experiment) = run(attack_scenario(focused(true), 40));
    let (without_caps, _) = run(attack_scenario(focused(false), 40));
    let victims = experiment.simulation().victims();
    assert_eq!(victims.len(), 1);
    assert!(!experiment.simulation().is_malicious(victims[0]));
    let (capped, uncapped) = (
        with_caps.attack.last().unwrap(),
        without_caps.attack.last().unwrap(),
    );
    // 100 attackers push 10 times per cycle each at one victim for 10 cycles: a burst of 5
    // and 2 more per interval let about 25 of each one's 100 pushes through.
    assert_eq!(capped.counters.pushes, 100 * 10 * 10);
    let refused = capped.counters.refused as f64 / capped.counters.pushes as f64;
    assert!((0.7..0.8).contains(&refused), "{refused}");
    assert_eq!(uncapped.counters.refused, 0);
    // Yet 2 pushes per interval from each of 100 attackers are far more than 20 slots.
    assert_eq!((capped.victims, capped.victims_eclipsed), (1, 1));
    assert_eq!(uncapped.victims_eclipsed, 1);
    assert_eq!(capped.victim_share(), 1.0);
}

#[test]
fn one_identity_holds_at_most_one_slot_per_view() {
    let (report, experiment) = run(attack_scenario(
        Attack {
            fraction: 0.0005, // a single malicious node
            pushes: 10.0,
            target: AttackTarget::Focused { victims: 1 },
            ..attack(0.0005, true)
        },
        40,
    ));
    assert_eq!(report.malicious_nodes, 1);
    let sim = experiment.simulation();
    let victim = sim.victims()[0];
    let bad = sim.malicious_nodes()[0];
    assert!(
        sim.view(victim)
            .entries()
            .iter()
            .filter(|e| *e.peer_id() == bad)
            .count()
            <= 1
    );
    let last = report.attack.last().unwrap();
    assert!(last.victim_share() <= 1.0 / 20.0);
    assert_eq!(last.victims_eclipsed, 0);
}

#[test]
fn an_attack_is_reproducible_and_the_run_before_it_is_the_run_without_one() {
    let scenario = |attack| Scenario {
        attack,
        metrics_every: 5,
        robustness_trials: 0,
        ..scenario(500, 25)
    };
    let spread = Attack {
        fraction: 0.1,
        start: 15,
        pushes: 1.5,
        ..Attack::default()
    };
    let (a, _) = run(scenario(Some(spread)));
    let (b, _) = run(scenario(Some(spread)));
    let (honest, _) = run(scenario(None));
    let attack_csv = |r: &Report| {
        let mut out = Vec::new();
        r.write_attack_csv(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(attack_csv(&a), attack_csv(&b));
    assert_eq!(csv(&a), csv(&b));
    let text = attack_csv(&a);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(Report::ATTACK_CSV_HEADER));
    assert_eq!(lines.count(), 26);
    // Up to the attack, the overlay is the one without an attack.
    assert_eq!(&a.rows[..4], &honest.rows[..4]);
    assert_ne!(a.rows[5], honest.rows[5]);
    assert!(honest.attack.is_empty());
    assert_eq!(honest.malicious_nodes, 0);
    assert_eq!(
        attack_csv(&honest),
        format!("{}\n", Report::ATTACK_CSV_HEADER)
    );
}

#[test]
fn invalid_attacks_are_errors() {
    for attack in [
        Attack {
            fraction: 1.5,
            ..Attack::default()
        },
        Attack {
            pushes: -1.0,
            ..Attack::default()
        },
        Attack {
            pushes: f64::NAN,
            ..Attack::default()
        },
        Attack {
            start: 100,
            ..Attack::default()
        },
        Attack {
            target: AttackTarget::Focused { victims: 0 },
            ..Attack::default()
        },
    ] {
        let scenario = Scenario {
            attack: Some(attack),
            ..Scenario::default()
        };
        assert!(Experiment::new(scenario).is_err(), "{attack:?}");
    }
}

fn partitioned(rejoin: Option<libp2p_cyclon::Rejoin>) -> Scenario {
    Scenario {
        partition: Some(Partition {
            at_cycle: 30,
            heal_cycle: 70,
        }),
        rejoin,
        robustness_trials: 0,
        ..scenario(2_000, 100)
    }
}

#[test]
fn plain_cyclon_never_reconnects_after_a_long_partition() {
    let (report, _) = run(partitioned(None));
    let outcome = report.partition.expect("a partition outcome");
    assert!(outcome.cross_links_before > 10_000);
    assert_eq!(outcome.cross_links_at_heal, 0, "each side purged the other");
    assert_eq!(outcome.cycles_to_connected, None);
    let last = report.faults.last().unwrap();
    assert_eq!((last.components, last.cross_links), (2, 0));
    assert_eq!(report.counters.probes, 0);
}

#[test]
fn the_rejoin_rule_reconnects_within_a_few_cycles_of_the_heal() {
    let (report, _) = run(partitioned(Some(libp2p_cyclon::Rejoin::new(20, 5))));
    let outcome = report.partition.unwrap();
    assert_eq!(outcome.cross_links_at_heal, 0, "probes across the cut fail");
    assert!(outcome.cycles_to_connected.unwrap() <= 2, "{outcome:?}");
    assert!(outcome.cycles_to_mixed.unwrap() <= 10, "{outcome:?}");
    assert!(report.faults.last().unwrap().cross_share() > 0.45);
}

#[test]
fn the_rejoin_rule_changes_nothing_without_failures() {
    let plain = run(scenario(1_000, 40)).0;
    let rejoin = run(Scenario {
        rejoin: Some(libp2p_cyclon::Rejoin::default()),
        ..scenario(1_000, 40)
    })
    .0;
    assert_eq!(
        csv(&plain),
        csv(&rejoin),
        "no failure, no lost peer, no probe"
    );
    assert_eq!(rejoin.counters.probes, 0);
}

#[test]
fn at_20_percent_loss_views_stay_90_percent_full_and_connected() {
    let make = || Scenario {
        loss: 0.2,
        robustness_trials: 0,
        ..scenario(2_000, 100)
    };
    let (report, _) = run(make());
    let c = report.scenario.params.view_size;
    let half = &report.faults[50..];
    let fill = half.iter().map(|f| f.view_fill(c)).sum::<f64>() / half.len() as f64;
    assert!(fill >= 0.9, "{fill}");
    assert!(half.iter().all(|f| f.components == 1));
    let lost = report.counters.lost as f64 / report.counters.initiated() as f64;
    assert!(
        (0.3..0.42).contains(&lost),
        "1 - 0.8^2 = 36 % of shuffles lose a message: {lost}"
    );
    // Reproducible, faults included.
    let faults_csv = |report: &Report| {
        let mut out = Vec::new();
        report.write_faults_csv(&mut out).unwrap();
        out
    };
    assert_eq!(faults_csv(&report), faults_csv(&run(make()).0));
}

#[test]
fn fault_scenarios_are_validated() {
    let bad = [
        Scenario {
            loss: 1.5,
            ..scenario(100, 10)
        },
        Scenario {
            partition: Some(Partition {
                at_cycle: 5,
                heal_cycle: 5,
            }),
            ..scenario(100, 10)
        },
        Scenario {
            partition: Some(Partition {
                at_cycle: 5,
                heal_cycle: 11,
            }),
            ..scenario(100, 10)
        },
        Scenario {
            rejoin: Some(libp2p_cyclon::Rejoin::new(5, 0)),
            ..scenario(100, 10)
        },
        Scenario {
            loss: 0.1,
            attack: Some(Attack {
                start: 5,
                ..Attack::default()
            }),
            ..scenario(100, 10)
        },
    ];
    for scenario in bad {
        assert!(Experiment::new(scenario.clone()).is_err(), "{scenario:?}");
    }
}

// ------------------------------------------------------------------ SecureCyclon (issue 20)

use libp2p_cyclon::sim::SecureAttack;
use libp2p_cyclon::view::Defence;

fn secure(nodes: usize, cycles: u64) -> Scenario {
    let params = ShuffleParams::new(20, 5).with_defence(Defence::Secure(
        libp2p_cyclon::secure::SecureParams::scaled(20, 10_000),
    ));
    Scenario {
        params,
        robustness_trials: 0,
        metrics_every: 10,
        ..scenario(nodes, cycles)
    }
}

fn secure_attack(kind: SecureAttack, fraction: f64, start: u64) -> Attack {
    Attack {
        fraction,
        start,
        secure: kind,
        ..Attack::default()
    }
}

#[test]
fn secure_mode_keeps_cyclon_s_overlay_without_an_attack() {
    let (report, experiment) = run(secure(300, 40));
    let last = report.last();
    assert_eq!(last.metrics.components.count, 1);
    assert!(
        last.metrics.in_degree.std_dev < 2.5,
        "{:?}",
        last.metrics.in_degree
    );
    assert!(report.counters.completed > 300 * 38);
    let counters = experiment.simulation().secure_counters().unwrap();
    assert_eq!(counters.proofs_found, 0, "no honest node is ever accused");
    assert_eq!(counters.blacklistings, 0);
    // PartialView refuses the mode, with a reason.
    let err =
        libp2p_cyclon::view::PartialView::<u32>::with_rng(0, secure(2, 1).params, &mut rand::rng())
            .unwrap_err();
    assert!(err.to_string().contains("SecureView"), "{err}");
}

#[test]
fn secure_cloners_are_blacklisted_and_their_share_falls_to_zero() {
    let scenario = Scenario {
        attack: Some(Attack {
            pushes: 2.0,
            ..secure_attack(SecureAttack::Cloner, 0.05, 20)
        }),
        ..secure(300, 60)
    };
    let (report, _) = run(scenario);
    let at = |cycle: u64| &report.attack[cycle as usize];
    let secure = |cycle: u64| at(cycle).secure.unwrap();
    assert!(secure(20).blacklisted_share == 0.0);
    assert!(
        secure(40).blacklisting_all >= 0.99,
        "every honest node blacklists every cloner within 20 cycles: {:?}",
        secure(40)
    );
    assert!(secure(60).proofs_found > 0);
    assert_eq!(secure(60).honest_blacklisted, Some(0));
    assert_eq!(at(60).malicious_share(), 0.0);
    assert_eq!(at(60).eclipsed, 0);
}

#[test]
fn secure_hoarders_are_bounded_near_their_share() {
    let scenario = Scenario {
        attack: Some(secure_attack(SecureAttack::Hoarder, 0.1, 20)),
        ..secure(300, 60)
    };
    let (report, _) = run(scenario);
    for row in &report.attack[21..] {
        assert!(
            row.malicious_share() <= 0.2,
            "cycle {}: {}",
            row.cycle,
            row.malicious_share()
        );
        assert_eq!(row.eclipsed, 0);
    }
    let last = report.attack.last().unwrap();
    assert_eq!(last.honest_components.unwrap().count, 1);
    assert_eq!(last.secure.unwrap().honest_blacklisted, Some(0));
    assert_eq!(last.secure.unwrap().kind, SecureAttack::Hoarder);
}

#[test]
fn a_secure_run_is_reproducible() {
    let scenario = Scenario {
        attack: Some(secure_attack(SecureAttack::Strongest, 0.1, 10)),
        ..secure(200, 25)
    };
    let attack_csv = |r: &Report| {
        let mut out = Vec::new();
        r.write_attack_csv(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let edges = |e: &Experiment| {
        let mut out = Vec::new();
        e.simulation().write_edges(&mut out).unwrap();
        out
    };
    let (a, ea) = run(scenario.clone());
    let (b, eb) = run(scenario);
    assert_eq!(attack_csv(&a), attack_csv(&b));
    assert_eq!(csv(&a), csv(&b));
    assert_eq!(edges(&ea), edges(&eb));
    assert!(attack_csv(&a).starts_with(Report::SECURE_ATTACK_CSV_HEADER));
}

#[test]
fn a_secure_network_grows_from_one_node_and_newcomers_fill_their_views() {
    let scenario = Scenario {
        bootstrap: Bootstrap::Growing,
        joins_per_cycle: Some(10),
        ..secure(200, 60)
    };
    let (report, _) = run(scenario);
    let last = report.last();
    assert_eq!(last.metrics.nodes, 200);
    assert_eq!(last.metrics.components.count, 1);
    // Views hold 95 % of their slots on average at cycle 60 (half of them entirely full: the
    // last newcomers arrived at cycle 20), where a node had nobody to exchange with at first.
    let fill = last.metrics.links as f64 / (200.0 * 20.0);
    assert!(fill >= 0.9, "views {:.1} % full", 100.0 * fill);
    assert!(last.full_views >= 80, "{} full views", last.full_views);

    // Newcomers joining an established overlay through one random contact.
    let params = secure(2, 1).params;
    let mut sim = Simulation::new(300, params, Bootstrap::Ring, 3);
    for _ in 0..30 {
        sim.step();
    }
    let first = sim.node_count() as u32;
    sim.set_churn(0.02);
    sim.step();
    sim.set_churn(0.0);
    let newcomers: Vec<u32> = (first..sim.node_count() as u32).collect();
    assert_eq!(newcomers.len(), 6);
    for _ in 0..20 {
        sim.step();
    }
    for id in newcomers {
        let view = sim.secure_view(id).unwrap();
        assert_eq!(view.len(), view.capacity(), "newcomer {id} after 20 cycles");
    }
}

/// Plain Cyclon and the other defences are untouched by secure mode: these small runs give
/// the bytes they gave before it existed.
#[test]
fn plain_and_defended_runs_are_unchanged() {
    let plain = Scenario {
        robustness_trials: 0,
        ..scenario(300, 20)
    };
    let (report, _) = run(plain);
    let text = String::from_utf8(csv(&report)).unwrap();
    assert_eq!(text.lines().last().unwrap(), PLAIN_LAST_ROW);
    let seeded = Scenario {
        params: ShuffleParams::new(20, 5).with_defence(Defence::seeded()),
        attack: Some(Attack {
            start: 10,
            ..Attack::default()
        }),
        ..scenario(300, 20)
    };
    let (report, _) = run(seeded);
    let mut out = Vec::new();
    report.write_attack_csv(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with(Report::ATTACK_CSV_HEADER));
    assert!(!text.contains("blacklisted_share"));
    assert_eq!(text.lines().last().unwrap(), SEEDED_LAST_ATTACK_ROW);
}

/// The last rows of these runs by the simulator before secure mode (`simulate -q -n 300 -t 20
/// --metrics-every 10 --bfs-sources 30 --robustness-trials 0`, with `--defence seeded
/// --malicious 0.1 --attack-start 10` for the second).
const PLAIN_LAST_ROW: &str =
    "20,300,6000,0,300,20.000000,3.345644,12,33,0.12580505,1.877815,3,30,0,1,300";
const SEEDED_LAST_ATTACK_ROW: &str =
    "0.1,30,true,spread,0,1,10,20,true,270,5400,718,0.132963,0,0,0,0.000000,0,300,0,222,1,270";

/// Both bootstraps start every secure view full (each creator mints the descriptors it hands
/// out one gap apart, in order), and without an attack almost every exchange completes.
#[test]
fn secure_bootstraps_start_views_full_and_exchanges_complete() {
    for bootstrap in [Bootstrap::Ring, Bootstrap::Random] {
        let params = secure(300, 30).params;
        let mut sim = Simulation::new(300, params, bootstrap, 1);
        for id in 0..300 {
            let view = sim.secure_view(id).unwrap();
            assert_eq!(view.len(), view.capacity(), "{bootstrap:?}: node {id}");
        }
        for _ in 0..30 {
            sim.step();
        }
        let counters = sim.counters();
        let refused = sim.secure_counters().unwrap().refused;
        assert_eq!(counters.idle, 0, "{bootstrap:?}");
        assert!(
            refused * 20 <= counters.initiated(),
            "{bootstrap:?}: {refused} of {} exchanges refused",
            counters.initiated()
        );
    }
}
