//! The Cyclon simulator: N nodes shuffling in cycles over the crate's sans-IO core, measured
//! beside a uniform random c-out graph of the same size, as in the Cyclon paper.
//!
//! ```sh
//! cargo run --release --example simulate -- --help
//! cargo run --release --example simulate -- --nodes 10000 --compare-basic --plot docs/figures
//! cargo run --release --example simulate -- --nodes 10000 --kill-fraction 0.5 --kill-at 50
//! cargo run --release --example simulate -- --malicious 0.01,0.1,0.2 --compare-caps --cycles 150
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use libp2p_cyclon::sim::{
    Attack, AttackSnapshot, AttackTarget, Bootstrap, Experiment, Kill, Progress, Report, Scenario,
};
use libp2p_cyclon::{ShuffleMode, ShuffleParams};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// Simulates the Cyclon membership protocol (enhanced or basic shuffling) in cycles, as the
/// paper's PeerSim experiments do, and prints the overlay's metrics beside those of a uniform
/// random c-out graph of the same size generated in the same run.
///
/// Each cycle, every live node initiates one shuffle with its oldest neighbour, in random
/// order. Clustering and path length are taken on the undirected overlay; the path length is
/// averaged over BFS from `--bfs-sources` sampled nodes to all others. Same seed, same output.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Number of nodes N.
    #[arg(short, long, default_value_t = 10_000)]
    nodes: usize,
    /// View (cache) size c.
    #[arg(short = 'c', long, default_value_t = 20)]
    view_size: usize,
    /// Shuffle length l (entries exchanged each way, 1 <= l <= c).
    #[arg(short = 'l', long, default_value_t = 5)]
    shuffle_length: usize,
    /// Cycles to run.
    #[arg(short = 't', long, default_value_t = 100)]
    cycles: u64,
    /// Seed of every random choice.
    #[arg(short, long, default_value_t = 1)]
    seed: u64,
    /// Initial overlay. ring: node i knows i+1..i+c; star: everyone knows node 0; random: c
    /// random nodes each; growing: nodes join one by one, each through one random live contact.
    #[arg(long, value_enum, default_value_t = BootstrapArg::Ring)]
    bootstrap: BootstrapArg,
    /// Growing bootstrap: nodes joining per cycle [default: ceil(N / 20)].
    #[arg(long)]
    joins_per_cycle: Option<usize>,
    /// Target selection: enhanced (oldest entry, the Cyclon protocol) or basic (random entry).
    #[arg(long, value_enum, default_value_t = ModeArg::Enhanced)]
    mode: ModeArg,
    /// Also run basic shuffling on the same scenario and seed, and show it beside.
    #[arg(long, conflicts_with = "malicious")]
    compare_basic: bool,
    /// Fail this share of the live nodes at once (0..=1), at --kill-at.
    #[arg(long)]
    kill_fraction: Option<f64>,
    /// Cycle after which the --kill-fraction nodes fail [default: half of --cycles].
    #[arg(long, requires = "kill_fraction")]
    kill_at: Option<u64>,
    /// Churn: share of live nodes (0..=1) that leave at the start of each cycle, replaced by
    /// as many new nodes joining through one random live contact.
    #[arg(long, default_value_t = 0.0)]
    churn: f64,
    /// Full metrics every K cycles (cycle 0 and the last are always measured; 0: only those).
    /// Dead links are counted every cycle.
    #[arg(long, default_value_t = 10)]
    metrics_every: u64,
    /// BFS sources sampled for the average path length.
    #[arg(long, default_value_t = 100)]
    bfs_sources: usize,
    /// Random removal orders averaged in the robustness experiment (remove 0-95% of the
    /// final overlay's nodes without healing; largest component's share of survivors).
    /// 0 skips it.
    #[arg(long, default_value_t = 5)]
    robustness_trials: usize,
    /// Malicious nodes: this share of the initial nodes (0..=1) collude from --attack-start
    /// on. They answer every shuffle with c malicious entries of age 0 and push malicious
    /// entries of age 0 to honest nodes (--malicious-pushes). Several comma-separated shares
    /// run one after the other on the same seed.
    #[arg(long, value_delimiter = ',', value_name = "SHARE")]
    malicious: Vec<f64>,
    /// The malicious nodes behave honestly up to this cycle and attack from the next one.
    #[arg(long, default_value_t = 50, requires = "malicious")]
    attack_start: u64,
    /// Shuffles each malicious node initiates per cycle during the attack (1: an honest rate;
    /// fractions allowed).
    #[arg(long, default_value_t = 1.0, requires = "malicious")]
    malicious_pushes: f64,
    /// Focused attack: every push goes to one of this many honest victims, drawn at random
    /// when the attack starts [default: spread, to any honest node the attackers know].
    #[arg(long, value_name = "VICTIMS", requires = "malicious")]
    focus: Option<usize>,
    /// Honest nodes without our caps: they consider up to c received entries instead of l,
    /// and have no per-peer inbound rate limit.
    #[arg(long, requires = "malicious", conflicts_with = "compare_caps")]
    no_caps: bool,
    /// Run every --malicious share both with and without our caps.
    #[arg(long, requires = "malicious")]
    compare_caps: bool,
    /// Write the attack's progress, one CSV row per cycle and run, to FILE.
    #[arg(long, value_name = "FILE", requires = "malicious")]
    attack_csv: Option<PathBuf>,
    /// Write one CSV row per measured cycle (of the first run) to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write the final overlay (first run) as `src dst` lines to FILE: links between live
    /// nodes, which are numbered 0..L-1 in id order (0..N-1 without failures or churn).
    #[arg(long, value_name = "FILE")]
    edges_out: Option<PathBuf>,
    /// Write SVG figures (in-degree distribution, path length and clustering per cycle, dead
    /// links after the failure, largest component vs. fraction removed) into DIR. Under
    /// --malicious, only the malicious share of honest views per cycle, for every run
    /// (malicious_spread.svg, or malicious_focused.svg for the victims).
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BootstrapArg {
    Ring,
    Star,
    Random,
    Growing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Enhanced,
    Basic,
}

impl ModeArg {
    fn mode(self) -> ShuffleMode {
        match self {
            ModeArg::Enhanced => ShuffleMode::Enhanced,
            ModeArg::Basic => ShuffleMode::Basic,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ModeArg::Enhanced => "enhanced",
            ModeArg::Basic => "basic",
        }
    }
}

/// One simulated protocol variant and what it measured.
struct Run {
    label: String,
    report: Report,
    experiment: Experiment,
}

type AnyError = Box<dyn std::error::Error>;

fn main() -> Result<(), AnyError> {
    let args = Args::parse();
    let scenario = Scenario {
        nodes: args.nodes,
        params: ShuffleParams::new(args.view_size, args.shuffle_length).with_mode(args.mode.mode()),
        bootstrap: match args.bootstrap {
            BootstrapArg::Ring => Bootstrap::Ring,
            BootstrapArg::Star => Bootstrap::Star,
            BootstrapArg::Random => Bootstrap::Random,
            BootstrapArg::Growing => Bootstrap::Growing,
        },
        seed: args.seed,
        cycles: args.cycles,
        joins_per_cycle: args.joins_per_cycle,
        churn: args.churn,
        kill: args.kill_fraction.map(|fraction| Kill {
            fraction,
            at_cycle: args.kill_at.unwrap_or(args.cycles / 2),
        }),
        metrics_every: args.metrics_every,
        bfs_sources: args.bfs_sources,
        robustness_trials: args.robustness_trials,
        attack: None,
    };
    scenario.validate()?;

    // One run per protocol variant, or per malicious share and caps setting.
    let mut variants: Vec<(String, Scenario)> = Vec::new();
    if args.malicious.is_empty() {
        let mut modes = vec![args.mode];
        if args.compare_basic && args.mode != ModeArg::Basic {
            modes.push(ModeArg::Basic);
        }
        for mode in modes {
            let scenario = Scenario {
                params: scenario.params.with_mode(mode.mode()),
                ..scenario.clone()
            };
            variants.push((mode.name().to_owned(), scenario));
        }
    } else {
        let caps: &[bool] = match (args.compare_caps, args.no_caps) {
            (true, _) => &[true, false],
            (false, true) => &[false],
            (false, false) => &[true],
        };
        for &fraction in &args.malicious {
            for &caps in caps {
                let attack = Attack {
                    fraction,
                    start: args.attack_start,
                    pushes: args.malicious_pushes,
                    target: match args.focus {
                        Some(victims) => AttackTarget::Focused { victims },
                        None => AttackTarget::Spread,
                    },
                    caps,
                };
                let scenario = Scenario {
                    attack: Some(attack),
                    ..scenario.clone()
                };
                scenario.validate()?;
                let label = format!(
                    "{}% {}",
                    significant(fraction * 100.0, 3),
                    if caps { "caps" } else { "no caps" }
                );
                variants.push((label, scenario));
            }
        }
    }
    println!(
        "Cyclon simulation: N={} c={} l={} cycles={} bootstrap={:?} seed={}{}{}",
        args.nodes,
        args.view_size,
        args.shuffle_length,
        args.cycles,
        args.bootstrap,
        args.seed,
        scenario
            .kill
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
    );

    let mut runs = Vec::new();
    for (label, scenario) in variants {
        runs.push(run(scenario, &label, args.quiet)?);
    }

    print_summary(&runs);
    if !args.malicious.is_empty() {
        print_attack(&runs);
    }

    let first = &runs[0];
    if let Some(path) = &args.csv {
        first
            .report
            .write_csv(BufWriter::new(File::create(path)?))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = &args.attack_csv {
        let mut out = BufWriter::new(File::create(path)?);
        writeln!(out, "{}", Report::ATTACK_CSV_HEADER)?;
        for run in &runs {
            run.report.write_attack_csv_rows(&mut out)?;
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
            plot_all(dir, &runs)?
        } else {
            vec![plot_attack(dir, &runs)?]
        };
        for file in written {
            println!("wrote {}", file.display());
        }
    }
    Ok(())
}

fn run(scenario: Scenario, label: &str, quiet: bool) -> Result<Run, AnyError> {
    let bar = ProgressBar::new(scenario.cycles);
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>9} [{elapsed_precise}] {wide_bar} {pos}/{len} cycles (eta {eta}) {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    let mut experiment = Experiment::new(scenario)?;
    let report = experiment.run(|progress| match progress {
        Progress::Cycle { done, .. } => bar.set_position(done),
        Progress::Reference => bar.set_message("measuring the random reference graph"),
        Progress::Robustness => bar.set_message("robustness experiment"),
    });
    bar.finish_and_clear();
    Ok(Run {
        label: label.to_owned(),
        report,
        experiment,
    })
}

fn print_summary(runs: &[Run]) {
    let reference = &runs[0].report.reference;
    let sources = runs[0].report.scenario.bfs_sources.min(reference.nodes);
    let mut header = vec!["metric".to_owned()];
    header.extend(runs.iter().map(|r| format!("cyclon {}", r.label)));
    header.push("random c-out graph".to_owned());

    type Cell = fn(&libp2p_cyclon::sim::Metrics) -> String;
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
            "  {:>9}: {} shuffles in {} ({} ns per shuffle); metrics {}, random graph {}, \
             robustness {}; total {}",
            run.label,
            r.counters.initiated(),
            secs(t.shuffling),
            r.time_per_shuffle().as_nanos(),
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
fn print_attack(runs: &[Run]) {
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
        let share = |s: &AttackSnapshot| {
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

/// `x` in decimal notation with `digits` significant digits.
fn significant(x: f64, digits: i32) -> String {
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

const RANDOM_COLOR: RGBColor = RGBColor(90, 90, 90);
/// Attack runs: one hue per malicious share, dark with caps and light without.
const ATTACK_COLORS: [(RGBColor, RGBColor); 4] = [
    (RGBColor(30, 90, 200), RGBColor(130, 175, 240)),
    (RGBColor(200, 30, 30), RGBColor(240, 140, 140)),
    (RGBColor(20, 130, 50), RGBColor(120, 205, 140)),
    (RGBColor(120, 60, 170), RGBColor(195, 160, 225)),
];
const COLORS: [RGBColor; 2] = [RGBColor(200, 30, 30), RGBColor(30, 90, 200)];
const SIZE: (u32, u32) = (640, 400);

/// One line of a chart.
struct Series<X, Y> {
    label: String,
    color: RGBColor,
    points: Vec<(X, Y)>,
}

/// Axis descriptions, legend position and caption of a chart.
struct Layout<'a> {
    caption: String,
    x_desc: &'a str,
    y_desc: &'a str,
    legend: SeriesLabelPosition,
}

fn plot_all(dir: &Path, runs: &[Run]) -> Result<Vec<PathBuf>, AnyError> {
    let mut written = vec![
        plot_in_degree(dir, runs)?,
        plot_per_cycle(
            dir,
            runs,
            ("path_length", "Average shortest path length"),
            "average path length (hops, log scale)",
            true,
            |m| m.path.mean,
        )?,
        plot_per_cycle(
            dir,
            runs,
            ("clustering", "Clustering coefficient"),
            "clustering coefficient (log scale)",
            true,
            |m| m.clustering,
        )?,
    ];
    if runs[0].report.kill.is_some() {
        written.push(plot_dead_links(dir, runs)?);
    }
    if !runs[0].report.robustness.is_empty() {
        written.push(plot_robustness(dir, runs)?);
    }
    Ok(written)
}

/// The malicious share of honest view entries (of the victims', in a focused attack) per
/// cycle, one line per run.
fn plot_attack(dir: &Path, runs: &[Run]) -> Result<PathBuf, AnyError> {
    let attack = runs[0].report.scenario.attack.expect("attack runs");
    let focused = matches!(attack.target, AttackTarget::Focused { .. });
    let path = dir.join(if focused {
        "malicious_focused.svg"
    } else {
        "malicious_spread.svg"
    });
    let mut fractions: Vec<f64> = Vec::new();
    let series = runs
        .iter()
        .map(|run| {
            let attack = run.report.scenario.attack.expect("attack runs");
            let hue = match fractions.iter().position(|&f| f == attack.fraction) {
                Some(i) => i,
                None => {
                    fractions.push(attack.fraction);
                    fractions.len() - 1
                }
            };
            let (dark, light) = ATTACK_COLORS[hue % ATTACK_COLORS.len()];
            Series {
                label: format!("K/N = {}", run.label.replace('%', " %")),
                color: if attack.caps { dark } else { light },
                points: run
                    .report
                    .attack
                    .iter()
                    .map(|s| {
                        let share = if focused {
                            s.victim_share()
                        } else {
                            s.malicious_share()
                        };
                        (s.cycle, 100.0 * share)
                    })
                    .collect(),
            }
        })
        .collect();
    let s = &runs[0].report.scenario;
    let what = match attack.target {
        AttackTarget::Spread => "honest views".to_owned(),
        AttackTarget::Focused { victims } => format!("the views of {victims} victims"),
    };
    let x_desc = format!("cycle (the attack starts after cycle {})", attack.start);
    let layout = Layout {
        caption: format!(
            "Malicious share of {what} (N={}, c={}, l={})",
            s.nodes, s.params.view_size, s.params.shuffle_length
        ),
        x_desc: &x_desc,
        y_desc: "entries naming a malicious node (%)",
        legend: SeriesLabelPosition::UpperLeft,
    };
    line_chart(&path, layout, 0..s.cycles, 0.0..100.0, series)?;
    Ok(path)
}

/// Draws `series` as lines on the axes `x` and `y` into the SVG file `path`.
fn line_chart<X, Y>(
    path: &Path,
    layout: Layout<'_>,
    x: X,
    y: Y,
    series: Vec<Series<X::Value, Y::Value>>,
) -> Result<(), AnyError>
where
    X: AsRangedCoord,
    Y: AsRangedCoord,
    X::CoordDescType: ValueFormatter<X::Value>,
    Y::CoordDescType: ValueFormatter<Y::Value>,
    X::Value: Clone + 'static,
    Y::Value: Clone + 'static,
{
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(layout.caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(65)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(layout.x_desc)
        .y_desc(layout.y_desc)
        .draw()?;
    for line in series {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(line.points, color.stroke_width(2)))?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(layout.legend)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()?;
    root.present()?;
    Ok(())
}

fn caption(runs: &[Run], title: &str) -> String {
    let s = &runs[0].report.scenario;
    format!(
        "{title} (N={}, c={}, l={})",
        s.nodes, s.params.view_size, s.params.shuffle_length
    )
}

/// One series per simulated variant, in the variant's colour.
fn per_run<X, Y>(runs: &[Run], points: impl Fn(&Report) -> Vec<(X, Y)>) -> Vec<Series<X, Y>> {
    runs.iter()
        .zip(COLORS)
        .map(|(run, color)| Series {
            label: format!("cyclon {}", run.label),
            color,
            points: points(&run.report),
        })
        .collect()
}

fn reference<X, Y>(points: Vec<(X, Y)>) -> Series<X, Y> {
    Series {
        label: "random c-out graph".into(),
        color: RANDOM_COLOR,
        points,
    }
}

fn plot_in_degree(dir: &Path, runs: &[Run]) -> Result<PathBuf, AnyError> {
    let path = dir.join("in_degree.svg");
    let histogram = |h: &[u64]| -> Vec<(u32, u64)> {
        h.iter().enumerate().map(|(d, &n)| (d as u32, n)).collect()
    };
    let mut series = per_run(runs, |r| histogram(&r.last().metrics.in_degree.histogram));
    series.push(reference(histogram(
        &runs[0].report.reference.in_degree.histogram,
    )));
    let max_degree = series.iter().flat_map(|s| &s.points).map(|p| p.0).max();
    let max_count = series.iter().flat_map(|s| &s.points).map(|p| p.1).max();
    let layout = Layout {
        caption: caption(runs, "In-degree distribution"),
        x_desc: "in-degree",
        y_desc: "number of nodes",
        legend: SeriesLabelPosition::UpperRight,
    };
    let max_count = max_count.unwrap_or(1);
    line_chart(
        &path,
        layout,
        0..max_degree.unwrap_or(1) + 1,
        0..max_count + max_count / 10,
        series,
    )?;
    Ok(path)
}

fn plot_per_cycle(
    dir: &Path,
    runs: &[Run],
    (name, title): (&str, &str),
    y_desc: &str,
    log: bool,
    value: fn(&libp2p_cyclon::sim::Metrics) -> f64,
) -> Result<PathBuf, AnyError> {
    let path = dir.join(format!("{name}.svg"));
    let cycles = runs[0].report.last().cycle.max(1);
    let random = value(&runs[0].report.reference);
    let mut series = per_run(runs, |r| {
        r.rows
            .iter()
            .map(|row| (row.cycle, value(&row.metrics)))
            .filter(|&(_, v)| v.is_finite() && (!log || v > 0.0))
            .collect()
    });
    series.push(reference(vec![(0, random), (cycles, random)]));
    let (lo, hi) = series
        .iter()
        .flat_map(|s| &s.points)
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let layout = Layout {
        caption: caption(runs, title),
        x_desc: "cycle",
        y_desc,
        legend: SeriesLabelPosition::UpperRight,
    };
    if log {
        let ticks = one_two_five(lo, hi);
        let (lo, hi) = (ticks[0], ticks[ticks.len() - 1]);
        let axis = (lo..hi).log_scale().with_key_points(ticks);
        line_chart(&path, layout, 0..cycles, axis, series)?;
    } else {
        let margin = (hi - lo).max(0.1) * 0.1;
        line_chart(&path, layout, 0..cycles, lo - margin..hi + margin, series)?;
    }
    Ok(path)
}

/// Axis ticks 1, 2, 5, 10, 20, 50, … (times powers of ten) from the last one at or below
/// `lo` to the first one at or above `hi` (both positive).
fn one_two_five(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks: Vec<f64> = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while ticks.last().is_none_or(|&t| t < hi) {
        for m in [1.0, 2.0, 5.0] {
            let tick = m * decade;
            if tick <= lo {
                ticks.clear();
            }
            if ticks.last().is_none_or(|&t| t < hi) {
                ticks.push(tick);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn plot_dead_links(dir: &Path, runs: &[Run]) -> Result<PathBuf, AnyError> {
    let path = dir.join("dead_links.svg");
    let kill = runs[0].report.kill.expect("checked by the caller");
    let series = per_run(runs, |r| {
        let Some(kill) = r.kill else {
            return Vec::new();
        };
        std::iter::once((0, kill.dead_links))
            .chain(
                r.dead_links[kill.at_cycle as usize + 1..]
                    .iter()
                    .enumerate()
                    .map(|(k, &d)| (k as u64 + 1, d)),
            )
            .collect()
    });
    let max_x = series
        .iter()
        .map(|s| s.points.len() as u64)
        .max()
        .unwrap_or(2)
        .max(2)
        - 1;
    let max_y = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.1)
        .max()
        .unwrap_or(1)
        .max(1);
    let fraction = runs[0].report.scenario.kill.map_or(0.0, |k| k.fraction);
    let x_desc = format!("cycles after the failure (after cycle {})", kill.at_cycle);
    let layout = Layout {
        caption: caption(
            runs,
            &format!("Dead links after {:.0}% of nodes fail", fraction * 100.0),
        ),
        x_desc: &x_desc,
        y_desc: "dead links in live views",
        legend: SeriesLabelPosition::UpperRight,
    };
    line_chart(&path, layout, 0..max_x, 0..max_y + max_y / 20, series)?;
    Ok(path)
}

fn plot_robustness(dir: &Path, runs: &[Run]) -> Result<PathBuf, AnyError> {
    let path = dir.join("robustness.svg");
    let mut series = per_run(runs, |r| {
        r.robustness
            .iter()
            .map(|p| (p.removed * 100.0, p.cyclon * 100.0))
            .collect()
    });
    series.push(reference(
        runs[0]
            .report
            .robustness
            .iter()
            .map(|p| (p.removed * 100.0, p.random * 100.0))
            .collect(),
    ));
    let lowest = series
        .iter()
        .flat_map(|s| &s.points)
        .map(|p| p.1)
        .fold(100.0f64, f64::min);
    let layout = Layout {
        caption: caption(runs, "Largest component after random removal"),
        x_desc: "nodes removed (%)",
        y_desc: "largest component (% of survivors)",
        legend: SeriesLabelPosition::LowerLeft,
    };
    line_chart(
        &path,
        layout,
        0.0..100.0,
        (lowest - 5.0).max(0.0)..100.5,
        series,
    )?;
    Ok(path)
}
