//! The simulator reproduces the Cyclon paper's claims on small, fast, seeded runs.

use libp2p_cyclon::ShuffleMode;
use libp2p_cyclon::sim::{Bootstrap, Experiment, Kill, NodeState, Report, Scenario, Simulation};
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
                .iter()
                .all(|e| sim.state(*e.id()) == NodeState::Live)
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
            params: ShuffleParams {
                shuffle_length: 30,
                ..ShuffleParams::default()
            },
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
        let mut ids: Vec<u32> = view.iter().map(|e| *e.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), view.len());
    }
}
