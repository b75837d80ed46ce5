//! What both training examples do around the loop: open the adapter and
//! say which, pick the preset, guard the output folder, and find the
//! checkpoint to resume from.

use std::path::{Path, PathBuf};

use crate::data::GpuDataset;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState};
use crate::io::Checkpoint;
use crate::train::run::STEPS_PER_SUBMIT;
use crate::train::{progress_bar, run_epoch, AdapterDesc, EpochMetrics, EpochRun, Metrics, Preset};

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
    eprintln!("adapter: {}", gpu.describe());
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

/// Make sure `out` can take this run's files without destroying another
/// run's: it must not be a file, and a fresh run refuses a folder that
/// already holds a checkpoint unless `overwrite` (a resumed run continues
/// its own).
pub fn prepare_out(out: &Path, resuming: bool, overwrite: bool) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(Error::data(out, "--out is a file, not a folder"));
    }
    std::fs::create_dir_all(out)
        .map_err(|e| Error::data(out, format!("cannot create output folder: {e}")))?;
    let ck = out.join(CHECKPOINT);
    if ck.exists() && !resuming && !overwrite {
        return Err(Error::data(
            &ck,
            "this folder already holds a training run: pass --resume to continue it, \
             --overwrite to replace it, or choose another --out",
        ));
    }
    Ok(())
}

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
    let (metrics, peaks) = Metrics::load(out)
        .map(|m| {
            let peaks = (m.peak_gpu_bytes, m.peak_train_gpu_bytes);
            (
                m.epochs.into_iter().filter(|e| e.epoch <= epoch).collect(),
                peaks,
            )
        })
        .unwrap_or_default();
    eprintln!(
        "resuming {} after epoch {epoch} (step {step}) on {}",
        path.display(),
        gpu.describe()
    );
    Ok(Resumed {
        epoch,
        step,
        metrics,
        peaks,
    })
}

/// End of an epoch: the checkpoint (with the run's metadata, the epoch and
/// the step counter) and `metrics.json`, both written atomically.
pub fn save_epoch(
    gpu: &Gpu,
    out: &Path,
    mut ck: Checkpoint,
    meta: &[(String, String)],
    epoch: usize,
    state: &StepState,
    metrics: &Metrics,
) -> Result<()> {
    ck.metadata.extend(meta.iter().cloned());
    ck.metadata.insert("epoch".into(), epoch.to_string());
    ck.metadata
        .insert("steps".into(), state.steps_done(gpu)?.to_string());
    ck.save(&out.join(CHECKPOINT))?;
    metrics.save(out)
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

/// A training run's bookkeeping around the model: its output folder, the
/// metadata a resume must match, the metrics so far, and the GPU step state
/// (counter and loss ring, two loss slots).
pub struct Session<'a> {
    gpu: &'a Gpu,
    out: &'a Path,
    meta: Vec<(String, String)>,
    pub metrics: Metrics,
    pub start_epoch: usize,
    pub state: StepState,
}

impl<'a> Session<'a> {
    /// Start a run of `model` in `out`, or continue it (`resume`): the
    /// checkpoint goes to `restore`, the counter and epoch come back.
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
        let mut metrics = Metrics {
            model: model.into(),
            preset: preset.name().into(),
            adapter: AdapterDesc::of(gpu),
            params,
            epochs: Vec::new(),
            peak_gpu_bytes: 0,
            peak_train_gpu_bytes: 0,
        };
        let (mut start_epoch, mut start_step) = (0, 0u32);
        if resuming {
            let r = resume(gpu, out, model, &meta, restore)?;
            (start_epoch, start_step) = (r.epoch, r.step);
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
            state,
        })
    }

    /// Run epochs `start_epoch..epochs` of `step` over `data`. After each,
    /// `after` logs, writes the epoch's pictures and returns its metrics and
    /// the checkpoint, which is saved with `metrics.json`. A failure names
    /// the last good checkpoint.
    #[allow(clippy::too_many_arguments)]
    pub fn run_epochs(
        &mut self,
        step: &Step,
        data: &GpuDataset,
        seed: u64,
        batch: usize,
        epochs: usize,
        names: &[&str],
        mut after: impl FnMut(usize, &EpochRun) -> Result<(EpochMetrics, Checkpoint)>,
    ) -> Result<()> {
        let steps = data.batches(batch);
        for epoch in self.start_epoch..epochs {
            let pb = progress_bar(steps, epoch, epochs);
            self.gpu.reset_peak();
            let run = run_epoch(
                self.gpu,
                step,
                &self.state,
                data,
                seed,
                epoch,
                batch,
                names,
                &pb,
            )
            .map_err(|e| stopped(e, self.out))?;
            let m = &mut self.metrics;
            m.peak_train_gpu_bytes = m.peak_train_gpu_bytes.max(self.gpu.peak_bytes());
            let (m, ck) = after(epoch, &run).map_err(|e| stopped(e, self.out))?;
            self.metrics.epochs.push(m);
            self.metrics.peak_gpu_bytes = self.metrics.peak_gpu_bytes.max(self.gpu.peak_bytes());
            save_epoch(
                self.gpu,
                self.out,
                ck,
                &self.meta,
                epoch + 1,
                &self.state,
                &self.metrics,
            )?;
        }
        Ok(())
    }
}
