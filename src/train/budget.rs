//! Training to a budget, and the points along the way where the model is
//! scored (its curve).
//!
//! A run trains for its preset's epochs, or, with a [`Budget`], until the
//! budget is spent: so many training seconds (the training loop's wall
//! clock, scoring and checkpoints not counted) or so many images seen. A
//! budget ends where the step in flight ends, mid-epoch as a rule; that
//! last partial epoch counts.
//!
//! A run with a curve stops at [`CurvePlan::points`] evenly spaced marks
//! (in images, or in seconds for a seconds budget), and at its end, to have
//! the model scored by whoever asked for the curve (the comparison scores
//! samples through its classifier; the VAE's run adds its test ELBO). Each
//! point records where it was taken in images, steps, cumulative GEMM work
//! and training seconds, and how long its scoring took. The points live in
//! the run's metrics, so a resumed run keeps its curve whole.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How much training a run gets, when not its preset's epochs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Budget {
    /// Seconds of the training loop's wall clock.
    Seconds(f64),
    /// Training images seen (steps times the batch size).
    Images(u64),
}

impl Budget {
    /// `300 s` or `60000 images`: for report lines and checkpoint metadata.
    pub fn describe(&self) -> String {
        match self {
            Budget::Seconds(s) => format!("{s} s"),
            Budget::Images(n) => format!("{n} images"),
        }
    }

    /// `Some(budget)` from the two flags, refusing both at once.
    pub fn from_flags(seconds: Option<f64>, images: Option<u64>) -> Result<Option<Budget>> {
        match (seconds, images) {
            (Some(_), Some(_)) => Err(Error::invalid(
                "train",
                "--budget-seconds and --budget-images are two budgets: give one".to_string(),
            )),
            (Some(s), None) => Ok(Some(Budget::Seconds(s))),
            (None, Some(n)) => Ok(Some(Budget::Images(n))),
            (None, None) => Ok(None),
        }
    }
}

/// `--budget-seconds S`: a positive, finite number of seconds.
pub fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a budget: give a positive number of seconds (e.g. 300)"
        )),
    }
}

/// `--budget-images N`: a positive whole number of images.
pub fn parse_images(s: &str) -> std::result::Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!(
            "{s:?} is not a budget: give a positive whole number of images (e.g. 60000)"
        )),
    }
}

/// Points a curve has unless told otherwise (and the start): within the
/// 10 to 20 that show a curve's shape without the scoring dominating.
pub const DEFAULT_POINTS: usize = 15;
/// The most points a curve may have.
pub const MAX_POINTS: usize = 100;

/// Where a run's curve is scored: at the start, at `points` evenly spaced
/// marks up to its budget (or its epochs' images), and at its end.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePlan {
    pub points: usize,
}

/// What a point's scorer measured: figure name to value.
pub type PointFigures = BTreeMap<String, f64>;

/// One point of a run's curve.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Training steps done.
    pub steps: u64,
    /// Training images seen (steps times the batch).
    pub images: u64,
    /// Training wall seconds so far (scoring, pictures, checkpoints not
    /// counted).
    pub seconds: f64,
    /// GEMM work of those steps, in GFLOP ([`crate::gpu::StepStats::gemm_flops`]).
    pub gemm_gflop: f64,
    /// Seconds the scoring of this point took.
    pub score_seconds: f64,
    pub figures: PointFigures,
}

/// A position in a run: steps done and training seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    pub steps: u64,
    pub seconds: f64,
}

/// A run's stopping rule and curve marks, in steps or seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Marks {
    pub budget: Option<Budget>,
    pub curve: Option<CurvePlan>,
    /// The run's batch size (images per step).
    pub batch: usize,
    /// Steps the run's epochs make, when no budget says otherwise.
    pub epoch_steps: u64,
}

/// Where the next stop is: at a step, or at a training second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    Step(u64),
    Seconds(f64),
}

impl Marks {
    /// The step where the run ends by images: the budget's (rounded up to a
    /// whole step) or its epochs'; `None` for a seconds budget.
    fn end_step(&self) -> Option<u64> {
        match self.budget {
            Some(Budget::Images(n)) => Some(n.div_ceil(self.batch as u64)),
            Some(Budget::Seconds(_)) => None,
            None => Some(self.epoch_steps),
        }
    }

    /// Whether the run is over at `p`.
    pub fn spent(&self, p: Position) -> bool {
        match (self.budget, self.end_step()) {
            (Some(Budget::Seconds(s)), _) => p.seconds >= s,
            (_, Some(end)) => p.steps >= end,
            _ => false,
        }
    }

    /// Mark `k` (1..=points) of the curve.
    fn mark(&self, k: usize, points: usize) -> Stop {
        let f = k as f64 / points as f64;
        match (self.budget, self.end_step()) {
            (Some(Budget::Seconds(s)), _) => Stop::Seconds(s * f),
            (_, Some(end)) => Stop::Step(((end as f64) * f).ceil() as u64),
            _ => Stop::Step(u64::MAX),
        }
    }

    fn reached(stop: Stop, p: Position) -> bool {
        match stop {
            Stop::Step(s) => p.steps >= s,
            Stop::Seconds(s) => p.seconds >= s,
        }
    }

    /// Whether a point is due at `p`, given the points already taken: the
    /// start, each mark passed since the last point, and the end.
    pub fn point_due(&self, taken: &[CurvePoint], p: Position) -> bool {
        let Some(c) = self.curve else {
            return false;
        };
        let Some(last) = taken.last() else {
            return true;
        };
        if last.steps == p.steps {
            return false;
        }
        let last = Position {
            steps: last.steps,
            seconds: last.seconds,
        };
        self.spent(p)
            || (1..=c.points)
                .map(|k| self.mark(k, c.points))
                .any(|m| Self::reached(m, p) && !Self::reached(m, last))
    }

    /// The next place to stop after `p`: the first curve mark not yet
    /// reached, or the end, whichever comes first; each kind (steps,
    /// seconds) separately, since a run can stop on either.
    pub fn next_stop(&self, p: Position) -> (Option<u64>, Option<f64>) {
        let mut stops: Vec<Stop> = Vec::new();
        if let Some(c) = self.curve {
            stops.extend(
                (1..=c.points)
                    .map(|k| self.mark(k, c.points))
                    .find(|&m| !Self::reached(m, p)),
            );
        }
        match (self.budget, self.end_step()) {
            (Some(Budget::Seconds(s)), _) => stops.push(Stop::Seconds(s)),
            (_, Some(end)) => stops.push(Stop::Step(end)),
            _ => {}
        }
        let step = stops
            .iter()
            .filter_map(|s| match s {
                Stop::Step(v) => Some(*v),
                _ => None,
            })
            .min();
        let secs = stops
            .iter()
            .filter_map(|s| match s {
                Stop::Seconds(v) => Some(*v),
                _ => None,
            })
            .reduce(f64::min);
        (step, secs)
    }
}
