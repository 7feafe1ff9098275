//! The comparison's figure, drawn with plotters as the simulator's are: per network size, the
//! share of nodes that know enough live peers over time, and the dead peers still known after
//! the kill, one line per protocol.

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::{compare::Outcome, net::Protocol};

fn color(protocol: Protocol) -> RGBColor {
    match protocol {
        Protocol::Cyclon => RGBColor(200, 30, 30),
        Protocol::Kad => RGBColor(30, 90, 200),
    }
}

/// Writes `netbench-n<N>.svg` into `dir` for each network size; returns the paths.
pub fn comparison(
    dir: &Path,
    outcomes: &[Outcome],
    min_known: usize,
) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut sizes: Vec<usize> = outcomes.iter().map(|o| o.nodes).collect();
    sizes.dedup();
    let mut written = Vec::new();
    for n in sizes {
        let runs: Vec<&Outcome> = outcomes.iter().filter(|o| o.nodes == n).collect();
        let path = dir.join(format!("netbench-n{n}.svg"));
        written.push(path.clone());
        let root = SVGBackend::new(&path, (1000, 380)).into_drawing_area();
        root.fill(&WHITE)?;
        let (left, right) = root.split_horizontally(500);

        let t_max = runs
            .iter()
            .flat_map(|o| o.convergence.iter().map(|p| p.0))
            .fold(1.0_f64, f64::max);
        let mut chart = ChartBuilder::on(&left)
            .caption(
                format!("{n} nodes: share knowing >= {min_known} live peers"),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(0.0..t_max, 0.0..1.05)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc("share of nodes")
            .draw()?;
        for o in &runs {
            let c = color(o.protocol);
            chart
                .draw_series(LineSeries::new(
                    o.convergence.iter().copied(),
                    c.stroke_width(2),
                ))?
                .label(o.protocol.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;

        let t_max = runs
            .iter()
            .flat_map(|o| o.dead_entries.iter().map(|p| p.0))
            .fold(1.0_f64, f64::max);
        let d_max = runs
            .iter()
            .flat_map(|o| o.dead_entries.iter().map(|p| p.1))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let mut chart = ChartBuilder::on(&right)
            .caption(
                format!("{n} nodes: dead peers still known after the kill"),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..t_max, 0.0..d_max * 1.05)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the kill")
            .y_desc("dead entries (all live nodes)")
            .draw()?;
        for o in &runs {
            let c = color(o.protocol);
            chart
                .draw_series(LineSeries::new(
                    o.dead_entries.iter().map(|&(t, d)| (t, d as f64)),
                    c.stroke_width(2),
                ))?
                .label(o.protocol.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(written)
}
