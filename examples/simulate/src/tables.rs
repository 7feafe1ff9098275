//! The text tables: the final overlay beside the random graph, failures, robustness and timing
//! ([`print_summary`]), the attack's course ([`print_attack`]), and number formatting.

use std::time::Duration;

use libp2p_cyclon::sim::{AttackMeasurement, AttackTarget};

use crate::run::Run;

pub fn print_summary(runs: &[Run]) {
    let reference = &runs[0].report.reference;
    let sources = runs[0].report.scenario.bfs_sources.min(reference.nodes);
    let mut header = vec!["metric".to_owned()];
    header.extend(runs.iter().map(|r| format!("cyclon {}", r.label)));
    header.push("random c-out graph".to_owned());

    type Cell = fn(&libp2p_cyclon::sim::OverlayMetrics) -> String;
    let metric_rows: Vec<(String, Cell)> = vec![
        ("nodes".into(), |m| m.nodes.to_string()),
        ("links".into(), |m| m.links.to_string()),
        ("in-degree mean".into(), |m| {
            format!("{:.3}", m.in_degree.mean)
        }),
        ("in-degree std dev".into(), |m| {
            format!("{:.3}", m.in_degree.std_dev)
        }),
        ("in-degree min / max".into(), |m| {
            format!("{} / {}", m.in_degree.min, m.in_degree.max)
        }),
        ("clustering coefficient".into(), |m| {
            significant(m.clustering, 4)
        }),
        (format!("avg path length ({sources} BFS src)"), |m| {
            format!("{:.4}", m.path.mean)
        }),
        ("longest path seen".into(), |m| m.path.max.to_string()),
        ("connected components".into(), |m| {
            m.components.count.to_string()
        }),
        ("largest component".into(), |m| {
            format!(
                "{} ({:.2}%)",
                m.components.largest,
                100.0 * m.largest_component_share()
            )
        }),
    ];
    let mut table: Vec<Vec<String>> = vec![header];
    for (name, cell) in &metric_rows {
        let mut row = vec![name.clone()];
        row.extend(runs.iter().map(|r| cell(&r.report.last().metrics)));
        row.push(cell(reference));
        table.push(row);
    }
    let mut row = vec!["dead links".to_owned()];
    row.extend(runs.iter().map(|r| r.report.last().dead_links.to_string()));
    row.push("-".into());
    table.push(row);
    let mut row = vec!["full views".to_owned()];
    row.extend(runs.iter().map(|r| r.report.last().full_views.to_string()));
    row.push("-".into());
    table.push(row);

    println!(
        "\nFinal overlay after {} cycles (undirected graph for clustering, paths and \
         components; path length averaged over BFS from {} sampled sources to all nodes):",
        runs[0].report.last().cycle,
        sources
    );
    print_table(&table);

    for run in runs {
        if let Some(kill) = run.report.kill {
            println!(
                "\nFailure ({}): {} nodes failed after cycle {}, leaving {} dead links in \
                 live views; {}",
                run.label,
                kill.killed,
                kill.at_cycle,
                kill.dead_links,
                match kill.cycles_to_zero {
                    Some(k) => format!("no dead link left after {k} cycles"),
                    None => format!(
                        "still {} dead links at the end of the run",
                        run.report.dead_links.last().copied().unwrap_or(0)
                    ),
                }
            );
        }
    }

    if !runs[0].report.robustness.is_empty() {
        println!(
            "\nRobustness: largest component's share of survivors after removing nodes at \
             random, no healing (mean over {} removal orders):",
            runs[0].report.scenario.robustness_trials
        );
        let mut table = vec![{
            let mut h = vec!["removed".to_owned()];
            h.extend(runs.iter().map(|r| format!("cyclon {}", r.label)));
            h.push("random c-out graph".into());
            h
        }];
        for (i, point) in runs[0].report.robustness.iter().enumerate() {
            let mut row = vec![format!("{:.0}%", point.removed * 100.0)];
            row.extend(
                runs.iter()
                    .map(|r| format!("{:.2}%", 100.0 * r.report.robustness[i].cyclon)),
            );
            row.push(format!("{:.2}%", 100.0 * point.random));
            table.push(row);
        }
        print_table(&table);
    }

    println!("\nTiming:");
    for run in runs {
        let r = &run.report;
        let t = &r.timing;
        println!(
            "  {:>9}: {} shuffles in {} ({} ns and {:.2} entries sent per shuffle); metrics {}, \
             random graph {}, robustness {}; total {}",
            run.label,
            r.counters.initiated(),
            secs(t.shuffling),
            r.time_per_shuffle().as_nanos(),
            r.counters.entries_per_shuffle(),
            secs(t.metrics),
            secs(t.reference),
            secs(t.robustness),
            secs(t.total()),
        );
    }
}

/// The attack's course in every run: the malicious share of honest view entries at the
/// attack's start and after some of its cycles, eclipsed nodes, refused pushes, and whether
/// the honest nodes still form one overlay among themselves.
pub fn print_attack(runs: &[Run]) {
    let first = &runs[0].report.scenario;
    let attack = first.attack.expect("attack runs");
    let target = match attack.target {
        AttackTarget::Spread => "spread over every honest node the attackers know".to_owned(),
        AttackTarget::Focused { victims } => format!("focused on {victims} random honest victims"),
    };
    let focused = matches!(attack.target, AttackTarget::Focused { .. });
    println!(
        "\nMalicious nodes: from cycle {} on they answer every shuffle with c entries naming \
         malicious nodes (age 0) and push such entries {} times per cycle each, {}. Share of \
         {} view entries naming a malicious node (baseline: K/N, what they hold when honest):",
        attack.start + 1,
        attack.pushes,
        target,
        if focused {
            "the victims'"
        } else {
            "honest nodes'"
        },
    );
    let end = first.cycles;
    let mut points: Vec<u64> = [0, 1, 5, 10, 20, 50, 100]
        .iter()
        .map(|d| attack.start + d)
        .filter(|&t| t < end)
        .collect();
    points.push(end);
    let mut header = vec!["run".to_owned(), "K".into(), "K/N".into()];
    header.extend(points.iter().map(|&t| {
        if t == attack.start {
            format!("cycle {t} (start)")
        } else {
            format!("cycle {t}")
        }
    }));
    if focused {
        header.push("all honest views at end".to_owned());
    }
    header.extend([
        "eclipsed at end".to_owned(),
        "pushes refused".into(),
        "honest overlay at end".into(),
    ]);
    let mut table = vec![header];
    for run in runs {
        let r = &run.report;
        let share = |s: &AttackMeasurement| {
            if focused {
                s.victim_share()
            } else {
                s.malicious_share()
            }
        };
        let last = r.attack.last().expect("one row per cycle");
        let mut row = vec![
            run.label.clone(),
            r.malicious_nodes.to_string(),
            format!(
                "{:.2}%",
                100.0 * r.malicious_nodes as f64 / r.scenario.nodes as f64
            ),
        ];
        row.extend(
            points
                .iter()
                .map(|&t| format!("{:.2}%", 100.0 * share(&r.attack[t as usize]))),
        );
        if focused {
            row.push(format!("{:.2}%", 100.0 * last.malicious_share()));
        }
        row.push(if focused {
            format!("{} of {} victims", last.victims_eclipsed, last.victims)
        } else {
            format!("{} of {}", last.eclipsed, last.honest_nodes)
        });
        row.push(format!(
            "{} of {}",
            last.counters.refused, last.counters.pushes
        ));
        row.push(match last.honest_components {
            Some(c) => format!(
                "{} component{}, largest {}",
                c.count,
                if c.count == 1 { "" } else { "s" },
                c.largest
            ),
            None => "-".into(),
        });
        table.push(row);
    }
    print_table(&table);
}

/// Loss, partition and rejoin runs: the overlay cycle by cycle (view fill, dead links, links
/// across the partition, components) and how it went through the partition.
pub fn print_faults(runs: &[Run]) {
    for run in runs {
        let r = &run.report;
        if r.faults.is_empty() {
            continue;
        }
        let s = &r.scenario;
        let c = s.params.view_size;
        let rejoin = match s.rejoin {
            Some(rule) => format!(
                "rejoin every {} rounds, {} lost peers remembered, {} seeds",
                rule.probe_every, rule.remember, s.seeds
            ),
            None => "no rejoin rule (plain Cyclon)".to_owned(),
        };
        println!(
            "\nFaults ({}): loss {}% per message, {}; {} of {} shuffles lost a message, {} \
             probes:",
            run.label,
            significant(s.loss * 100.0, 3),
            rejoin,
            r.counters.lost,
            r.counters.initiated(),
            r.counters.probes,
        );
        let mut cycles: Vec<u64> = (0..=s.cycles)
            .filter(|t| s.metrics_every > 0 && t % s.metrics_every == 0)
            .collect();
        if let Some(p) = s.partition {
            cycles.extend([p.at_cycle, p.at_cycle + 1]);
            cycles.extend((p.heal_cycle..=p.heal_cycle + 10).filter(|&t| t <= s.cycles));
        }
        cycles.push(s.cycles);
        cycles.sort_unstable();
        cycles.dedup();
        let mut table = vec![
            [
                "cycle",
                "partitioned",
                "view fill",
                "full views",
                "dead links",
                "links across the cut",
                "components",
                "largest",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for &t in &cycles {
            let f = &r.faults[t as usize];
            table.push(vec![
                t.to_string(),
                if f.partitioned { "yes" } else { "no" }.to_owned(),
                format!("{:.2}%", 100.0 * f.view_fill(c)),
                format!("{} of {}", f.full_views, f.nodes),
                f.dead_links.to_string(),
                format!("{} ({:.1}%)", f.cross_links, 100.0 * f.cross_share()),
                f.components.to_string(),
                f.largest_component.to_string(),
            ]);
        }
        print_table(&table);
        let half = &r.faults[r.faults.len() / 2..];
        let mean_fill = half.iter().map(|f| f.view_fill(c)).sum::<f64>() / half.len() as f64;
        let connected = half.iter().filter(|f| f.components == 1).count();
        println!(
            "  second half of the run: mean view fill {:.2}%, one component in {} of {} cycles",
            100.0 * mean_fill,
            connected,
            half.len()
        );
        if let Some(p) = r.partition {
            println!(
                "  partition after cycle {} ({} links crossed the cut), healed after cycle {} \
                 ({} left); {}; {}",
                p.partition.at_cycle,
                p.cross_links_before,
                p.partition.heal_cycle,
                p.cross_links_at_heal,
                match p.cycles_to_connected {
                    Some(k) => format!("one component again {k} cycles after the heal"),
                    None => "never one component again within the run".to_owned(),
                },
                match p.cycles_to_mixed {
                    Some(k) => format!("a quarter of the links across after {k} cycles"),
                    None => "never a quarter of the links across within the run".to_owned(),
                },
            );
        }
    }
}

/// `x` in decimal notation with `digits` significant digits.
pub fn significant(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("  {}", cells.join("  "));
        if i == 0 {
            println!(
                "  {}",
                "-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1))
            );
        }
    }
}
