//! The epoch loop shared by the training examples: submit recorded steps in
//! chunks (several steps per submit), read the loss ring once per chunk,
//! stop at the first NaN or infinite loss naming its step, stop after the
//! chunk in flight when interrupted (Ctrl-C), and measure images per
//! second by the wall clock.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::data::GpuDataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState};
use crate::train::interrupt;

/// Steps per submit (and per loss readback) in the training loop.
pub const STEPS_PER_SUBMIT: usize = 16;

/// What one epoch measured.
#[derive(Clone, Debug)]
pub struct EpochRun {
    /// Mean of each loss slot over the epoch's steps.
    pub mean_losses: Vec<f64>,
    pub steps: usize,
    /// Steps completed overall at the end of the epoch.
    pub global_steps: u64,
    pub seconds: f64,
    pub images_per_sec: f64,
}

/// How far an interrupted epoch got: what resuming it continues from.
/// The step counter picks each batch and the epoch's order is seeded, so
/// the continued epoch runs exactly the steps the uninterrupted one would.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochProgress {
    /// Steps of the epoch done.
    pub steps: usize,
    /// Sum of each loss slot over those steps.
    pub sums: Vec<f64>,
    /// Wall-clock seconds they took.
    pub seconds: f64,
}

/// How an epoch ended.
#[derive(Clone, Debug)]
pub enum EpochOutcome {
    Done(EpochRun),
    /// Interrupted after the chunk in flight.
    Interrupted(EpochProgress),
}

/// Which epoch to run and how: the shuffle seed, the batch size, the names
/// of the ring's loss slots, and where an interrupted epoch resumes.
#[derive(Clone, Debug)]
pub struct EpochPlan<'a> {
    pub seed: u64,
    pub epoch: usize,
    pub batch: usize,
    pub names: &'a [&'a str],
    pub from: Option<EpochProgress>,
}

/// A progress bar for `steps` steps: epoch, step, loss, images/s, ETA.
pub fn progress_bar(steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let pb = ProgressBar::new(steps as u64);
    let style =
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] step {pos}/{len} {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(format!("{}/{epochs}", epoch + 1));
    pb
}

/// Run one epoch of `step` over `data` (shuffled for the plan's epoch
/// from its seed), from where `plan.from` left it. Returns early, after the
/// chunk in flight, when an interrupt was asked for.
pub fn run_epoch(
    gpu: &Gpu,
    step: &Step,
    state: &StepState,
    data: &GpuDataset,
    plan: &EpochPlan,
    pb: &ProgressBar,
) -> Result<EpochOutcome> {
    let (batch, epoch, names) = (plan.batch, plan.epoch, plan.names);
    let steps = data.batches(batch);
    if steps == 0 {
        return Err(Error::invalid(
            "train",
            format!("batch {batch} is larger than the {} images", data.len),
        ));
    }
    data.shuffle(gpu, plan.seed, epoch)?;
    let from_progress = plan.from.clone().unwrap_or_default();
    let mut done = from_progress.steps;
    let mut sums = if from_progress.sums.len() == names.len() {
        from_progress.sums
    } else {
        vec![0.0f64; names.len()]
    };
    let mut from = state.steps_done(gpu)?;
    let first = from - done as u64;
    let t0 = Instant::now();
    let seconds = || from_progress.seconds + t0.elapsed().as_secs_f64();
    pb.set_position(done as u64);
    while done < steps {
        let chunk = (steps - done).min(STEPS_PER_SUBMIT).min(state.capacity);
        let list: Vec<&Step> = std::iter::repeat_n(step, chunk).collect();
        gpu.run(&list)?;
        let rows = state.read_losses(gpu, from)?;
        for r in &rows {
            for (k, &v) in r.values.iter().enumerate() {
                if !v.is_finite() {
                    pb.abandon();
                    return Err(Error::NonFinite {
                        loss: names.get(k).unwrap_or(&"?").to_string(),
                        value: v,
                        epoch: epoch + 1,
                        step: (r.step - first) as usize + 1,
                        global_step: r.step + 1,
                    });
                }
                sums[k] += v as f64;
            }
        }
        from += rows.len() as u64;
        done += chunk;
        let last: Vec<String> = names
            .iter()
            .zip(&rows.last().map(|r| r.values.clone()).unwrap_or_default())
            .map(|(n, v)| format!("{n} {v:.3}"))
            .collect();
        pb.set_position(done as u64);
        pb.set_message(format!(
            "{} | {:.0} img/s",
            last.join(" "),
            (done * batch) as f64 / seconds()
        ));
        if interrupt::requested() && done < steps {
            pb.abandon();
            return Ok(EpochOutcome::Interrupted(EpochProgress {
                steps: done,
                sums,
                seconds: seconds(),
            }));
        }
    }
    let seconds = seconds();
    pb.finish_and_clear();
    Ok(EpochOutcome::Done(EpochRun {
        mean_losses: sums.iter().map(|s| s / steps as f64).collect(),
        steps,
        global_steps: from,
        seconds,
        images_per_sec: (steps * batch) as f64 / seconds,
    }))
}
