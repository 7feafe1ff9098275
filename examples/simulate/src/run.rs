//! Running one scenario, with a progress bar.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use libp2p_cyclon::sim::{Experiment, Progress, Report, Scenario};

use crate::AnyError;

/// One simulated protocol variant and what it measured.
pub struct Run {
    pub label: String,
    pub report: Report,
    pub experiment: Experiment,
}

/// Runs `scenario` to its end, showing its progress under `label` unless `quiet`.
pub fn run(scenario: Scenario, label: &str, quiet: bool) -> Result<Run, AnyError> {
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
