//! The epoch loop shared by the training examples: submit recorded steps in
//! chunks of one log interval (100 steps), two chunks in flight, read the
//! step counter and loss ring once per chunk, stop at the first NaN or
//! infinite loss naming its step, stop after the chunks in flight when
//! interrupted (Ctrl-C), and measure images per second by the wall clock.
//!
//! The GPU never waits for the CPU inside an epoch: chunk k+1 is encoded
//! and submitted while chunk k runs, and only then does the loop block, on
//! chunk k alone. Each chunk's submit ends with a copy of the counter and
//! the ring into a persistent readback buffer ([`StepState::submit`]), so
//! reading them is that one wait and a map: one blocking wait per log
//! interval, none for the epoch's start (the first chunk's counter says
//! where the epoch started), no staging buffer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::data::GpuDataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState, IN_FLIGHT};
use crate::train::interrupt;

/// Steps per log interval: per submit, per loss readback (one blocking
/// wait) and per progress-bar update in the training loop. A run's ring
/// holds one interval; [`run_epoch`] uses the smaller of this and its
/// ring's capacity.
pub const LOG_INTERVAL: usize = 100;

/// When the process started, as far as the engine knows: set by
/// [`mark_process_start`], the first thing each example does.
static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// Whether "ready in X s" was said (once per process).
static READY_SAID: AtomicBool = AtomicBool::new(false);

/// Start the clock that "ready in X s" counts from: the time from process
/// start to the first finished training step, the figure a user waits
/// through (device open, data, model build, pipeline compiles, one step).
/// Call it first thing in `main`. Once it is set, the process's first
/// epoch runs its first step as a chunk of its own (one more readback,
/// nothing else changes) and prints the time when it finishes; without it
/// nothing is reported (the tests' loops stay as they are).
pub fn mark_process_start() {
    PROCESS_START.get_or_init(Instant::now);
}

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
    /// Blocking waits on the device during the epoch's loop
    /// ([`Gpu::blocking_waits`]: on a device other threads use too, theirs
    /// are counted as well).
    pub blocking_waits: u64,
    /// Seconds from process start to this epoch's first finished step,
    /// when this epoch was the process's first ([`mark_process_start`]).
    pub ready_seconds: Option<f64>,
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
    /// Interrupted after the chunks in flight.
    Interrupted(EpochProgress),
    /// Stopped where the plan said ([`EpochPlan::until_step`],
    /// [`EpochPlan::until_seconds`]): a curve point or the end of a budget.
    Paused(EpochProgress),
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
    /// Pause when this many of the epoch's steps are done.
    pub until_step: Option<usize>,
    /// Pause once the epoch's training seconds reach this: the steps
    /// submitted are sized from the speed so far so that the pause comes
    /// soon after it (one step at first, to measure that speed).
    pub until_seconds: Option<f64>,
}

/// A progress bar for `steps` steps: epoch (of `epochs`, when known),
/// step, loss, images/s, ETA.
pub fn progress_bar(steps: usize, epoch: usize, epochs: Option<usize>) -> ProgressBar {
    let pb = ProgressBar::new(steps as u64);
    let style =
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] step {pos}/{len} {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(match epochs {
        Some(n) => format!("{}/{n}", epoch + 1),
        None => format!("{}", epoch + 1),
    });
    pb
}

/// Run one epoch of `step` over `data` (shuffled for the plan's epoch
/// from its seed), from where `plan.from` left it, in chunks of
/// [`LOG_INTERVAL`] steps (or the ring's capacity, if smaller) with two in
/// flight. The progress bar and its loss and images/s message move once
/// per chunk. A NaN or infinite loss ends the epoch with
/// [`Error::NonFinite`] naming its step (in the epoch and overall), once
/// its chunk is read; the chunk submitted after it still runs. When an
/// interrupt is asked for, no further chunk is submitted, the ones in
/// flight finish and are read, and the epoch returns
/// [`EpochOutcome::Interrupted`] with every step they ran; likewise
/// [`EpochOutcome::Paused`] where the plan says to stop.
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
    let waits = gpu.blocking_waits();
    let interval = LOG_INTERVAL.min(state.capacity);
    let chunk_list: Vec<&Step> = std::iter::repeat_n(step, interval).collect();
    let context = format!("running step {}", step.label);
    let t0 = Instant::now();
    let seconds = || from_progress.seconds + t0.elapsed().as_secs_f64();
    pb.set_position(done as u64);
    // The counter value at the epoch's first step, known from the first
    // chunk's readback (counter after it = first + steps done after it).
    let mut first: Option<u64> = None;
    let mut submitted = done;
    let mut flight = VecDeque::with_capacity(IN_FLIGHT);
    // the process's first step runs alone, so its end can be timed
    let first_alone = PROCESS_START
        .get()
        .filter(|_| !READY_SAID.swap(true, Ordering::Relaxed));
    let mut ready_seconds = None;
    let stop_step = plan.until_step.map_or(steps, |s| s.min(steps));
    loop {
        while flight.len() < IN_FLIGHT && submitted < stop_step && !interrupt::requested() {
            let mut chunk = match first_alone {
                Some(_) if submitted == done => 1,
                _ => (stop_step - submitted).min(interval),
            };
            if let Some(limit) = plan.until_seconds {
                let timed = done - from_progress.steps;
                let sized = steps_within(
                    limit - seconds(),
                    timed as f64 / t0.elapsed().as_secs_f64(),
                    timed > 0,
                    submitted - done,
                );
                match sized {
                    Some(n) => chunk = chunk.min(n),
                    None => break,
                }
            }
            flight.push_back(state.submit(gpu, &chunk_list[..chunk])?);
            submitted += chunk;
        }
        let Some(chunk) = flight.pop_front() else {
            break;
        };
        let n = chunk.steps();
        let snap = chunk.wait(gpu, &context)?;
        if let (Some(t), None) = (first_alone, ready_seconds) {
            let s = t.elapsed().as_secs_f64();
            pb.suspend(|| {
                eprintln!("ready in {s:.1} s (process start to the first finished training step)")
            });
            ready_seconds = Some(s);
        }
        let start = *first.get_or_insert(snap.steps_done.wrapping_sub((done + n) as u64));
        let from = start + done as u64;
        if snap.steps_done != from + n as u64 {
            return Err(Error::invalid(
                "train",
                format!(
                    "the step counter is {} after steps {from}..{} of this epoch's loop: \
                     something else ran steps on this state meanwhile",
                    snap.steps_done,
                    from + n as u64
                ),
            ));
        }
        let rows = snap.losses(from)?;
        for r in &rows {
            for (k, &v) in r.values.iter().enumerate() {
                if !v.is_finite() {
                    pb.abandon();
                    return Err(Error::NonFinite {
                        loss: names.get(k).unwrap_or(&"?").to_string(),
                        value: v,
                        epoch: epoch + 1,
                        step: (r.step - start) as usize + 1,
                        global_step: r.step + 1,
                    });
                }
                sums[k] += v as f64;
            }
        }
        done += n;
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
    }
    if done < steps {
        let p = EpochProgress {
            steps: done,
            sums,
            seconds: seconds(),
        };
        if interrupt::requested() {
            pb.abandon();
            return Ok(EpochOutcome::Interrupted(p));
        }
        return Ok(EpochOutcome::Paused(p));
    }
    let global_steps = match first {
        Some(f) => f + steps as u64,
        None => state.steps_done(gpu)?,
    };
    let blocking_waits = gpu.blocking_waits() - waits;
    let seconds = seconds();
    pb.finish_and_clear();
    Ok(EpochOutcome::Done(EpochRun {
        mean_losses: sums.iter().map(|s| s / steps as f64).collect(),
        steps,
        global_steps,
        seconds,
        images_per_sec: (steps * batch) as f64 / seconds,
        blocking_waits,
        ready_seconds,
    }))
}

/// How many steps to submit with `left` seconds to go before a pause, at
/// `rate` steps per second (`known` once a step was timed), with
/// `in_flight` steps already submitted: `None` submits nothing now. With
/// nothing in flight at least one step goes (the pause comes after a step,
/// never before the first); before the speed is known, one step alone.
fn steps_within(left: f64, rate: f64, known: bool, in_flight: usize) -> Option<usize> {
    if left <= 0.0 {
        return None;
    }
    if !known {
        return (in_flight == 0).then_some(1);
    }
    let wanted = (left * rate).ceil() as usize;
    match wanted.saturating_sub(in_flight) {
        0 if in_flight == 0 => Some(1),
        0 => None,
        n => Some(n),
    }
}
