//! What both training examples do around the loop: open the adapter and
//! say which, pick the preset, guard the output folder, and find the
//! checkpoint to resume from.

use std::path::{Path, PathBuf};

use crate::data::GpuDataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState};
use crate::io::remove_stale_temps;
use crate::io::Checkpoint;
use crate::train::run::STEPS_PER_SUBMIT;
use crate::train::{
    interrupt, progress_bar, run_epoch, AdapterDesc, EpochMetrics, EpochOutcome, EpochPlan,
    EpochProgress, EpochRun, Metrics, Preset,
};

/// What every training run can be told; `None` takes the preset's value.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub preset: Preset,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    /// Learning rate (the GAN: both optimizers unless `lr_d` is given).
    pub lr: Option<f32>,
    pub latent_dim: Option<usize>,
    pub seed: u64,
    pub out: PathBuf,
    pub dataset: crate::data::Dataset,
    pub data_dir: Option<PathBuf>,
    /// Continue the run in `out`.
    pub resume: bool,
    pub train_images: Option<usize>,
    /// Replace a run already in `out`.
    pub overwrite: bool,
    /// Write the final plots.
    pub plots: bool,
    /// With `resume`, take a run that has done all its epochs as it is
    /// (the comparison's reuse) instead of refusing it.
    pub reuse_finished: bool,
}

impl RunOptions {
    /// The preset's run into `out`.
    pub fn new(preset: Preset, out: &Path) -> RunOptions {
        RunOptions {
            preset,
            epochs: None,
            batch_size: None,
            lr: None,
            latent_dim: None,
            seed: 0,
            out: out.to_path_buf(),
            dataset: crate::data::Dataset::Mnist,
            data_dir: None,
            resume: false,
            train_images: None,
            overwrite: false,
            plots: true,
            reuse_finished: false,
        }
    }

    /// The data folder: `data_dir`, or the dataset's default.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.dataset.default_dir())
    }
}

/// The checkpoint file inside a run's output folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// Open the selected adapter and print one line naming it.
pub fn open_gpu() -> Result<Gpu> {
    let gpu = Gpu::new()?;
    eprintln!("adapter: {}; {}", gpu.describe(), gpu.describe_kernels());
    Ok(gpu)
}

/// The preset asked for, or the default for this adapter (said in one line).
pub fn choose_preset(gpu: &Gpu, asked: Option<Preset>) -> Preset {
    asked.unwrap_or_else(|| {
        let p = Preset::default_for(gpu.is_cpu());
        if gpu.is_cpu() {
            eprintln!("CPU adapter: using the `{}` preset (pass --preset article for the article's full run)", p.name());
        } else {
            eprintln!("GPU adapter: using the `{}` preset", p.name());
        }
        p
    })
}

/// Files a training run writes into its folder: what `--overwrite`
/// removes before the new run starts (nothing else in the folder is
/// touched).
pub const RUN_FILES: &[&str] = &[
    CHECKPOINT,
    "metrics.json",
    "loss.png",
    "reconstructions.png",
    "latent_manifold.png",
    "latent_scatter.png",
];

/// Refuse, before anything is loaded or written, an `out` that cannot take
/// this run: a file; a folder holding another run (unless `overwrite`); a
/// `--resume` folder with no checkpoint; a folder (or, for one not made
/// yet, its nearest existing parent) where no file can be created. Creates
/// nothing: [`create_out`] does, once the run is ready to start.
pub fn check_out(out: &Path, resuming: bool, overwrite: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::data(out, "--out is a file, not a folder"));
    }
    if resuming {
        resume_path(out)?;
    }
    let ck = out.join(CHECKPOINT);
    if ck.exists() && !resuming && !overwrite {
        return Err(Error::data(
            &ck,
            "this folder already holds a training run: pass --resume to continue it, \
             --overwrite to replace it, or choose another --out",
        ));
    }
    check_writable(out)
}

/// Create and remove a probe file in `dir`, or in its nearest existing
/// parent when `dir` does not exist yet.
pub fn check_writable(dir: &Path) -> Result<()> {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    let probe = at.join(format!(".vae-vs-gan-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| Error::data(dir, format!("cannot write there ({}: {e})", at.display())))
}

/// Create `out` for a run that is ready to start; with `overwrite` (and not
/// resuming), remove the earlier run's files ([`RUN_FILES`] and its
/// per-epoch sample grids) so none of them survive into the new run.
pub fn create_out(out: &Path, resuming: bool, overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(out)
        .map_err(|e| Error::data(out, format!("cannot create output folder: {e}")))?;
    if overwrite && !resuming {
        let entries =
            std::fs::read_dir(out).map_err(|e| Error::data(out, format!("cannot list: {e}")))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = RUN_FILES.contains(&name.as_str())
                || (name.starts_with("samples_epoch_") && name.ends_with(".png"));
            if old && e.path().is_file() {
                std::fs::remove_file(e.path()).map_err(|err| {
                    Error::data(
                        &e.path(),
                        format!("cannot remove the earlier run's file: {err}"),
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// Refuse run settings that cannot train: no epochs, no batch, a latent
/// size outside 1..=[`MAX_LATENT`], a learning rate that is not a positive
/// number; and a `--resume` whose `epochs` would not continue the run
/// (unless `reuse_finished`: the comparison reuses finished runs as they
/// are).
pub fn check_run(
    opts: &RunOptions,
    epochs: usize,
    batch: usize,
    latent: usize,
    lrs: &[(&str, f32)],
) -> Result<()> {
    let bad = |msg: String| Err(Error::invalid("train", msg));
    if epochs == 0 {
        return bad("--epochs must be at least 1".into());
    }
    if batch == 0 {
        return bad("--batch-size must be at least 1".into());
    }
    if latent == 0 || latent > MAX_LATENT {
        return bad(format!(
            "--latent-dim {latent}: must be in 1..={MAX_LATENT} (the article uses 2, the \
             TensorFlow tutorial 100)"
        ));
    }
    for (name, lr) in lrs {
        if !(lr.is_finite() && *lr > 0.0) {
            return bad(format!("{name} {lr}: must be a positive number"));
        }
    }
    if opts.resume && !opts.reuse_finished {
        let path = resume_path(&opts.out)?;
        let done = Checkpoint::load(&path)?
            .metadata
            .get("epoch")
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| Error::data(&path, "checkpoint metadata has no valid \"epoch\""))?;
        if epochs <= done {
            return Err(Error::data(
                &path,
                format!(
                    "this run has done {done} epochs, so --epochs {epochs} has nothing to \
                     continue: pass --epochs above {done}"
                ),
            ));
        }
    }
    Ok(())
}

/// The largest latent size a run accepts: far above any published MNIST
/// model, far below what would exhaust a binding (the GAN's first dense
/// layer holds latent x 12544 weights).
pub const MAX_LATENT: usize = 1024;

/// The checkpoint path in a run folder given to `--resume`.
pub fn resume_path(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(CHECKPOINT);
    if !p.is_file() {
        return Err(Error::data(&p, "no checkpoint to resume from"));
    }
    Ok(p)
}

/// Inverse of the standard normal CDF (Acklam's rational approximation,
/// relative error below 1.2e-9), for grids over the prior's quantiles.
#[allow(clippy::excessive_precision)] // the published coefficients, as published
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// A `side x side` grid of 2-D latents at the prior's quantiles
/// (probabilities evenly spaced in [0.05, 0.95]), rows top to bottom.
pub fn prior_grid(side: usize) -> Vec<f32> {
    let q: Vec<f64> = (0..side)
        .map(|i| normal_quantile(0.05 + 0.9 * i as f64 / (side - 1).max(1) as f64))
        .collect();
    let mut z = Vec::with_capacity(side * side * 2);
    for row in 0..side {
        for col in 0..side {
            z.push(q[col] as f32);
            z.push(q[side - 1 - row] as f32);
        }
    }
    z
}

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
    /// Where the interrupted epoch `epoch + 1` stopped, if it did.
    pub progress: Option<EpochProgress>,
}

/// Checkpoint metadata keys the session writes: the run's metrics (the
/// history a resume continues, so checkpoint and history are one unit)
/// and an interrupted epoch's progress.
pub const META_METRICS: &str = "metrics";
pub const META_PROGRESS: &str = "epoch_progress";

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
        match ck.metadata.get(k) {
            Some(saved) if saved != v => {
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
        metrics: m.epochs,
        progress,
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
/// in all, and the names of the ring's loss slots.
#[derive(Clone, Copy, Debug)]
pub struct Schedule<'a> {
    pub seed: u64,
    pub batch: usize,
    pub epochs: usize,
    pub names: &'a [&'a str],
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
            adapter: AdapterDesc::of(gpu),
            params,
            epochs: Vec::new(),
            peak_gpu_bytes: 0,
            peak_train_gpu_bytes: 0,
        };
        let (mut start_epoch, mut start_step, mut progress) = (0, 0u32, None);
        if resuming {
            let r = resume(gpu, out, model, &meta, restore)?;
            (start_epoch, start_step, progress) = (r.epoch, r.step, r.progress);
            metrics.epochs = r.metrics;
            (metrics.peak_gpu_bytes, metrics.peak_train_gpu_bytes) = r.peaks;
        }
        let state = StepState::new(gpu, 2, STEPS_PER_SUBMIT, start_step)?;
        Ok(Session {
            gpu,
            out,
            meta,
            metrics,
            start_epoch,
            progress,
            state,
        })
    }

    /// Run epochs `start_epoch..epochs` of `step` over `data`. After each,
    /// `after` logs, writes the epoch's pictures and returns its metrics;
    /// the checkpoint (`checkpoint`) is saved with `metrics.json`. A failure
    /// names the last good checkpoint. An interrupt (Ctrl-C) stops after the
    /// chunk in flight, saves a checkpoint there and returns
    /// `Error::Interrupted`.
    pub fn run_epochs(
        &mut self,
        step: &Step,
        data: &GpuDataset,
        plan: Schedule,
        checkpoint: impl Fn() -> Result<Checkpoint>,
        mut after: impl FnMut(usize, &EpochRun) -> Result<EpochMetrics>,
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
        for epoch in self.start_epoch..plan.epochs {
            let pb = progress_bar(steps, epoch, plan.epochs);
            self.gpu.reset_peak();
            let ep = EpochPlan {
                seed: plan.seed,
                epoch,
                batch: plan.batch,
                names: plan.names,
                from: self.progress.take(),
            };
            let outcome = run_epoch(self.gpu, step, &self.state, data, &ep, &pb)
                .map_err(|e| stopped(e, self.out))?;
            let m = &mut self.metrics;
            m.peak_train_gpu_bytes = m.peak_train_gpu_bytes.max(self.gpu.peak_bytes());
            let run = match outcome {
                EpochOutcome::Done(run) => run,
                EpochOutcome::Interrupted(p) => {
                    self.save(checkpoint()?, epoch, Some(&p))?;
                    return Err(self.interrupted(epoch, p.steps, steps));
                }
            };
            let m = after(epoch, &run).map_err(|e| stopped(e, self.out))?;
            self.metrics.epochs.push(m);
            self.metrics.peak_gpu_bytes = self.metrics.peak_gpu_bytes.max(self.gpu.peak_bytes());
            self.save(checkpoint()?, epoch + 1, None)?;
            if interrupt::requested() && epoch + 1 < plan.epochs {
                return Err(self.interrupted(epoch + 1, 0, steps));
            }
        }
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
