//! The SVG figures, drawn with plotters: in-degree distribution, path length and clustering
//! per cycle, dead links after a failure, robustness ([`plot_all`]), and the attack's course
//! ([`plot_attack`]).

use std::path::{Path, PathBuf};

use libp2p_cyclon::sim::{AttackTarget, Report};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use crate::AnyError;
use crate::run::Run;

const RANDOM_COLOR: RGBColor = RGBColor(90, 90, 90);
/// Attack runs: one hue per malicious share, dark with caps and light without (when runs
/// with a defence are drawn too: dark with the defence, light without).
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

pub fn plot_all(dir: &Path, runs: &[Run]) -> Result<Vec<PathBuf>, AnyError> {
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
/// cycle, one line per run. With a defence in any run, the file name ends in `_defence`.
pub fn plot_attack(dir: &Path, runs: &[Run]) -> Result<PathBuf, AnyError> {
    let attack = runs[0].report.scenario.attack.expect("attack runs");
    let focused = matches!(attack.target, AttackTarget::Focused { .. });
    let defended = |run: &Run| run.report.scenario.params.defence.is_on();
    let any_defence = runs.iter().any(defended);
    let path = dir.join(format!(
        "malicious_{}{}.svg",
        if focused { "focused" } else { "spread" },
        if any_defence { "_defence" } else { "" }
    ));
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
                color: match (any_defence, attack.honest_limits) {
                    (true, true) if defended(run) => dark,
                    (false, true) => dark,
                    _ => light,
                },
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
    value: fn(&libp2p_cyclon::sim::OverlayMetrics) -> f64,
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
