//! A training run's session around the loop: resume (metadata checks,
//! counter, epoch and history restored), the epoch loop, the checkpoint
//! saved with the run's history each epoch and on an interrupt, and the
//! stop that names the last good checkpoint. The options, the output
//! folder and the prior grid live in their own modules and are re-exported
//! here, the one place a run's API is imported from.

use std::path::Path;
use std::time::Instant;

use crate::data::GpuDataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState};
use crate::io::remove_stale_temps;
use crate::io::Checkpoint;
use crate::models::gan::GanOptions;
use crate::models::settings::default_setting;
use crate::models::vae::VaeOptions;
use crate::train::budget::{Budget, CurvePlan, CurvePoint, Marks, PointFigures, Position};
use crate::train::run::LOG_INTERVAL;
use crate::train::{
    interrupt, progress_bar, run_epoch, AdapterDesc, EpochMetrics, EpochOutcome, EpochPlan,
    EpochProgress, EpochRun, Metrics, Preset,
};

pub use crate::models::prior::{normal_quantile, prior_grid};
pub use crate::train::options::{
    check_run, choose_preset, open_gpu, DeviceArgs, RunOptions, MAX_LATENT,
};
pub use crate::train::out::{
    check_out, check_writable, create_out, resume_path, CHECKPOINT, RUN_FILES,
};

/// Where a resumed run starts.
pub struct Resumed {
    /// Epochs already completed.
    pub epoch: usize,
    /// The step counter to start from.
    pub step: u32,
    /// The completed epochs' metrics.
    pub metrics: Vec<EpochMetrics>,
    /// The memory high-water marks recorded so far (overall, training
    /// steps only), the floor of the continued run's.
    pub peaks: (u64, u64),
    /// The allocator figures recorded so far.
    pub allocator: Option<crate::gpu::AllocatorFigures>,
    /// Where the interrupted epoch `epoch + 1` stopped, if it did.
    pub progress: Option<EpochProgress>,
    /// The curve's points so far.
    pub curve: Vec<CurvePoint>,
}

/// Checkpoint metadata keys the session writes: the run's metrics (the
/// history a resume continues, so checkpoint and history are one unit)
/// and an interrupted epoch's progress.
pub const META_METRICS: &str = "metrics";
pub const META_PROGRESS: &str = "epoch_progress";
/// Checkpoint metadata key of the comparison a run was trained for
/// ([`crate::train::RunOptions::comparison`]); absent for a run of its own.
pub const META_COMPARISON: &str = "comparison";

/// Run settings recorded in checkpoint metadata only since they became
/// options, with the value every earlier run had: a resume compares a
/// checkpoint without one as if it held that value. The models' own
/// options default through [`default_setting`] (their `Default`).
pub const META_DEFAULTS: [(&str, &str); 2] = [("budget", "none"), ("curve_points", "none")];

/// Setting `key` as checkpoint metadata `meta` records it; for a setting
/// recorded only since it became an option, a checkpoint without it was
/// trained with its default ([`META_DEFAULTS`], the models' options).
pub fn saved_setting(
    meta: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Option<String> {
    meta.get(key).cloned().or_else(|| {
        META_DEFAULTS
            .iter()
            .find(|(d, _)| *d == key)
            .map(|(_, v)| v.to_string())
            .or_else(|| default_setting::<VaeOptions>(key))
            .or_else(|| default_setting::<GanOptions>(key))
    })
}

/// The completed epochs' history and memory peaks of the checkpoint at
/// `path` after `epoch` epochs: from its own metadata, or (checkpoints from
/// before it carried them) from `metrics.json` beside it when that lists
/// exactly epochs 1..=epoch. Anything else is refused: a resumed history
/// with holes or repeats would be silently wrong.
fn history(ck: &Checkpoint, path: &Path, out: &Path, epoch: usize) -> Result<Metrics> {
    if let Some(text) = ck.metadata.get(META_METRICS) {
        let m: Metrics = serde_json::from_str(text)
            .map_err(|e| Error::data(path, format!("checkpoint metrics are not valid: {e}")))?;
        if m.epochs.iter().map(|e| e.epoch).eq(1..=epoch) {
            return Ok(m);
        }
        return Err(Error::data(
            path,
            format!(
                "checkpoint metrics list epochs {:?}, not 1..={epoch}",
                epoch_list(&m)
            ),
        ));
    }
    let refuse = |why: String| {
        Error::data(
            path,
            format!(
                "cannot rebuild this run's per-epoch history: {why}; the checkpoint is after                  epoch {epoch}, so metrics.json must list epochs 1..={epoch}. Start the run                  again with --overwrite"
            ),
        )
    };
    let mut m = Metrics::load(out).map_err(|e| refuse(e.to_string()))?;
    m.epochs.retain(|e| e.epoch <= epoch);
    // where a point of metrics.json was taken, the checkpoint cannot say
    m.curve.clear();
    if !m.epochs.iter().map(|e| e.epoch).eq(1..=epoch) {
        return Err(refuse(format!(
            "metrics.json lists epochs {:?}",
            epoch_list(&m)
        )));
    }
    Ok(m)
}

fn epoch_list(m: &Metrics) -> Vec<usize> {
    m.epochs.iter().map(|e| e.epoch).collect()
}

/// Load `out`'s checkpoint, refuse it if it is of another model or was
/// trained with other `meta`,
/// hand it to `restore` (which refuses another architecture), and say where
/// the run continues.
pub fn resume(
    gpu: &Gpu,
    out: &Path,
    model: &str,
    meta: &[(String, String)],
    restore: impl FnOnce(&Checkpoint, &Path) -> Result<()>,
) -> Result<Resumed> {
    let path = resume_path(out)?;
    let ck = Checkpoint::load(&path)?;
    if let Some(m) = ck.metadata.get("model").filter(|m| m.as_str() != model) {
        return Err(Error::data(
            &path,
            format!("this is a {m} run, not a {model} run: resume it with its own example"),
        ));
    }
    for (k, v) in meta {
        match saved_setting(&ck.metadata, k) {
            Some(saved) if &saved != v => {
                return Err(Error::data(
                    &path,
                    format!("the checkpoint was trained with {k} = {saved}, this run has {k} = {v}: pass the same options to resume"),
                ));
            }
            _ => {}
        }
    }
    restore(&ck, &path)?;
    let num = |key: &str| -> Result<usize> {
        ck.metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::data(&path, format!("checkpoint metadata has no valid {key:?}")))
    };
    let (epoch, step) = (num("epoch")?, num("steps")? as u32);
    let m = history(&ck, &path, out, epoch)?;
    let here = AdapterDesc::of(gpu);
    if m.adapter != here {
        eprintln!(
            "warning: this run was trained on {} ({}); resuming on {} ({}): a resumed run is \
             bit-identical to an uninterrupted one only on the same adapter",
            m.adapter.name, m.adapter.backend, here.name, here.backend
        );
    }
    let progress = match ck.metadata.get(META_PROGRESS) {
        Some(t) => Some(serde_json::from_str::<EpochProgress>(t).map_err(|e| {
            Error::data(
                &path,
                format!("checkpoint epoch progress is not valid: {e}"),
            )
        })?),
        None => None,
    };
    let at = match &progress {
        Some(p) => format!("in epoch {} (step {} of it)", epoch + 1, p.steps),
        None => format!("after epoch {epoch}"),
    };
    eprintln!(
        "resuming {} {at}, step {step} overall, on {}",
        path.display(),
        gpu.describe()
    );
    Ok(Resumed {
        epoch,
        step,
        peaks: (m.peak_gpu_bytes, m.peak_train_gpu_bytes),
        allocator: m.train_allocator,
        metrics: m.epochs,
        progress,
        curve: m.curve,
    })
}

/// Save the checkpoint (with the run's metadata, the epochs completed, the
/// step counter, the metrics and, mid-epoch, the epoch's progress), then
/// `metrics.json`, both atomically. The checkpoint is the record: a kill
/// between the two renames leaves a checkpoint whose own metrics a resume
/// continues.
#[allow(clippy::too_many_arguments)]
pub fn save_checkpoint(
    gpu: &Gpu,
    out: &Path,
    mut ck: Checkpoint,
    meta: &[(String, String)],
    epoch: usize,
    state: &StepState,
    metrics: &Metrics,
    progress: Option<&EpochProgress>,
) -> Result<()> {
    ck.metadata.extend(meta.iter().cloned());
    ck.metadata.insert("epoch".into(), epoch.to_string());
    ck.metadata
        .insert("steps".into(), state.steps_done(gpu)?.to_string());
    ck.metadata
        .insert(META_METRICS.into(), to_json(metrics, out)?);
    match progress {
        Some(p) => ck.metadata.insert(META_PROGRESS.into(), to_json(p, out)?),
        None => ck.metadata.remove(META_PROGRESS),
    };
    ck.save(&out.join(CHECKPOINT))?;
    metrics.save(out)
}

fn to_json<T: serde::Serialize>(v: &T, out: &Path) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::data(out, format!("cannot serialise: {e}")))
}

/// A training failure, with what was kept: the last good checkpoint.
pub fn stopped(e: Error, out: &Path) -> Error {
    let ck = out.join(CHECKPOINT);
    let hint = if ck.exists() {
        format!("the last good checkpoint is {} (intact)", ck.display())
    } else {
        "no checkpoint was written yet".to_string()
    };
    Error::Stopped {
        cause: Box::new(e),
        hint,
    }
}

/// The schedule of a run: the shuffle seed, the batch size, the epochs
/// in all (unless a budget says how long it trains), the names of the
/// ring's loss slots, and where its curve is scored, if it has one.
#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    pub seed: u64,
    pub batch: usize,
    pub epochs: usize,
    pub names: &'a [&'a str],
    pub budget: Option<Budget>,
    pub curve: Option<CurvePlan>,
}

/// A training run's bookkeeping around the model: its output folder, the
/// metadata a resume must match, the metrics so far, and the GPU step state
/// (counter and loss ring, two loss slots).
pub struct Session<'a> {
    gpu: &'a Gpu,
    out: &'a Path,
    meta: Vec<(String, String)>,
    pub metrics: Metrics,
    pub start_epoch: usize,
    /// Where an interrupted `start_epoch` resumes.
    pub progress: Option<EpochProgress>,
    pub state: StepState,
    /// Bytes others held on the device when the run began (a comparison's
    /// data, earlier models): left out of the run's peaks.
    others: u64,
}

impl<'a> Session<'a> {
    /// Start a run of `model` in `out`, or continue it (`resume`): the
    /// checkpoint goes to `restore`, the counter, epoch and history come
    /// back. Stale temporary files of a killed earlier run are removed.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        gpu: &'a Gpu,
        out: &'a Path,
        resuming: bool,
        model: &str,
        preset: Preset,
        params: usize,
        meta: Vec<(String, String)>,
        restore: impl FnOnce(&Checkpoint, &Path) -> Result<()>,
    ) -> Result<Session<'a>> {
        remove_stale_temps(out)?;
        let mut metrics = Metrics {
            model: model.into(),
            preset: preset.name().into(),
            settings: meta.iter().cloned().collect(),
            adapter: AdapterDesc::of(gpu),
            params,
            epochs: Vec::new(),
            peak_gpu_bytes: 0,
            peak_train_gpu_bytes: 0,
            train_step: None,
            train_allocator: None,
            curve: Vec::new(),
        };
        let (mut start_epoch, mut start_step, mut progress) = (0, 0u32, None);
        if resuming {
            let r = resume(gpu, out, model, &meta, restore)?;
            (start_epoch, start_step, progress) = (r.epoch, r.step, r.progress);
            metrics.epochs = r.metrics;
            (metrics.peak_gpu_bytes, metrics.peak_train_gpu_bytes) = r.peaks;
            metrics.train_allocator = r.allocator;
            metrics.curve = r.curve;
        }
        let state = StepState::new(gpu, 2, LOG_INTERVAL, start_step)?;
        Ok(Session {
            gpu,
            out,
            meta,
            metrics,
            start_epoch,
            progress,
            state,
            others: 0,
        })
    }

    /// Count this run's peak memory above `bytes`: what the device held
    /// before the run allocated anything ([`Gpu::allocated_bytes`] then),
    /// so a run on a shared device reports its own peak.
    pub fn excluding(mut self, bytes: u64) -> Session<'a> {
        self.others = bytes;
        self
    }

    /// The device's peak since the last reset, less what others held.
    fn own_peak(&self) -> u64 {
        self.gpu.peak_bytes().saturating_sub(self.others)
    }

    /// Run epochs `start_epoch..epochs` of `step` over `data`, or with a
    /// budget ([`crate::train::budget`]) until it is spent. After each
    /// epoch, `after` logs, writes the epoch's pictures and returns its
    /// metrics; the checkpoint (`checkpoint`) is saved with `metrics.json`.
    /// With a curve, `point` scores the model at the start, at each mark
    /// and at the end (training paused meanwhile, its seconds not counted).
    /// A budget spent mid-epoch saves the checkpoint there, with the
    /// epoch's progress. A failure names the last good checkpoint. An
    /// interrupt (Ctrl-C) stops after the chunks in flight, saves a
    /// checkpoint there and returns `Error::Interrupted`. `metrics.json`
    /// gets the step's recorded counts ([`Step::stats`]), each epoch's
    /// blocking waits, and wgpu's allocator figures where the backend
    /// reports them.
    pub fn run_epochs(
        &mut self,
        step: &Step,
        data: &GpuDataset,
        plan: Schedule,
        checkpoint: impl Fn() -> Result<Checkpoint>,
        mut after: impl FnMut(usize, &EpochRun) -> Result<EpochMetrics>,
        mut point: impl FnMut() -> Result<PointFigures>,
    ) -> Result<()> {
        let steps = data.batches(plan.batch);
        let done = self.progress.as_ref().map_or(0, |p| p.steps);
        let expected = (self.start_epoch * steps + done) as u64;
        let counter = self.state.steps_done(self.gpu)?;
        if counter != expected {
            return Err(Error::data(
                &self.out.join(CHECKPOINT),
                format!(
                    "the step counter is {counter}, but {} epochs of {steps} steps and {done} \
                     more make {expected}: the checkpoint does not belong to this schedule",
                    self.start_epoch
                ),
            ));
        }
        self.metrics.train_step = Some(step.stats());
        let marks = Marks {
            budget: plan.budget,
            curve: plan.curve,
            batch: plan.batch,
            epoch_steps: (plan.epochs * steps) as u64,
        };
        if let Some(Budget::Images(n)) = plan.budget {
            let full = (plan.epochs * steps * plan.batch) as u64;
            if n > full {
                eprintln!(
                    "note: the budget of {n} images is more than the {} preset's {} epoch(s) \
                     ({full} images): the run trains on past them until the budget is spent",
                    self.metrics.preset, plan.epochs
                );
            }
        }
        let gflop = step.stats().gemm_flops as f64 * 1e-9;
        let mut epoch = self.start_epoch;
        self.take_point(&marks, epoch, steps, gflop, &mut point)?;
        while !marks.spent(self.position(epoch, steps)) {
            let known = plan.budget.is_none().then_some(plan.epochs);
            let pb = progress_bar(steps, epoch, known);
            self.gpu.reset_peak();
            let run = loop {
                let (until_step, until_seconds) = marks.next_stop(self.position(epoch, steps));
                let before = (epoch * steps) as u64;
                let ep = EpochPlan {
                    seed: plan.seed,
                    epoch,
                    batch: plan.batch,
                    names: plan.names,
                    from: self.progress.take(),
                    until_step: until_step.map(|s| s.saturating_sub(before) as usize),
                    until_seconds: until_seconds.map(|s| s - self.seconds_before()),
                };
                let outcome = run_epoch(self.gpu, step, &self.state, data, &ep, &pb)
                    .map_err(|e| stopped(e, self.out))?;
                let own_peak = self.own_peak();
                let m = &mut self.metrics;
                m.peak_train_gpu_bytes = m.peak_train_gpu_bytes.max(own_peak);
                m.note_allocator(self.gpu.allocator_report());
                match outcome {
                    EpochOutcome::Done(run) => break run,
                    EpochOutcome::Interrupted(p) => {
                        self.save(checkpoint()?, epoch, Some(&p))?;
                        return Err(self.interrupted(epoch, p.steps, steps));
                    }
                    EpochOutcome::Paused(p) => {
                        self.progress = Some(p);
                        self.take_point(&marks, epoch, steps, gflop, &mut point)?;
                        if marks.spent(self.position(epoch, steps)) {
                            pb.finish_and_clear();
                            let p = self.progress.clone();
                            return self.save(checkpoint()?, epoch, p.as_ref());
                        }
                    }
                }
            };
            let mut m = after(epoch, &run).map_err(|e| stopped(e, self.out))?;
            m.train_blocking_waits = Some(run.blocking_waits);
            m.ready_seconds = run.ready_seconds;
            self.metrics.epochs.push(m);
            self.metrics.peak_gpu_bytes = self.metrics.peak_gpu_bytes.max(self.own_peak());
            epoch += 1;
            self.take_point(&marks, epoch, steps, gflop, &mut point)?;
            self.save(checkpoint()?, epoch, None)?;
            if interrupt::requested() && !marks.spent(self.position(epoch, steps)) {
                return Err(self.interrupted(epoch, 0, steps));
            }
        }
        Ok(())
    }

    /// Training seconds of the completed epochs.
    fn seconds_before(&self) -> f64 {
        self.metrics.epochs.iter().map(|e| e.seconds).sum()
    }

    /// Where the run is: at the start of `epoch` plus its progress.
    fn position(&self, epoch: usize, per_epoch: usize) -> Position {
        let (done, secs) = self
            .progress
            .as_ref()
            .map_or((0, 0.0), |p| (p.steps, p.seconds));
        Position {
            steps: (epoch * per_epoch + done) as u64,
            seconds: self.seconds_before() + secs,
        }
    }

    /// Score a curve point here if one is due ([`Marks::point_due`]). The
    /// scoring's memory counts in the run's overall peak, not its training
    /// peak.
    fn take_point(
        &mut self,
        marks: &Marks,
        epoch: usize,
        per_epoch: usize,
        gflop_per_step: f64,
        point: &mut impl FnMut() -> Result<PointFigures>,
    ) -> Result<()> {
        let here = self.position(epoch, per_epoch);
        if !marks.point_due(&self.metrics.curve, here) {
            return Ok(());
        }
        let t = Instant::now();
        let figures = point().map_err(|e| stopped(e, self.out))?;
        self.metrics.curve.push(CurvePoint {
            steps: here.steps,
            images: here.steps * marks.batch as u64,
            seconds: here.seconds,
            gemm_gflop: here.steps as f64 * gflop_per_step,
            score_seconds: t.elapsed().as_secs_f64(),
            figures,
        });
        self.metrics.peak_gpu_bytes = self.metrics.peak_gpu_bytes.max(self.own_peak());
        self.gpu.reset_peak();
        Ok(())
    }

    fn save(&self, ck: Checkpoint, epochs_done: usize, p: Option<&EpochProgress>) -> Result<()> {
        save_checkpoint(
            self.gpu,
            self.out,
            ck,
            &self.meta,
            epochs_done,
            &self.state,
            &self.metrics,
            p,
        )
    }

    /// The stop after an interrupt: the checkpoint saved at step `done` of
    /// epoch `epoch` (0-based; `done` 0: at the epoch's start).
    fn interrupted(&self, epoch: usize, done: usize, per_epoch: usize) -> Error {
        Error::Interrupted {
            checkpoint: self.out.join(CHECKPOINT).display().to_string(),
            dir: self.out.display().to_string(),
            epoch: epoch + 1,
            done,
            per_epoch,
            steps: (epoch * per_epoch + done) as u64,
        }
    }
}
