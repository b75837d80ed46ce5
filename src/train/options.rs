//! What every training run can be told, the adapter and preset it runs
//! on, and the refusal of settings that cannot train.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::gpu::{AutotunePolicy, Gpu, GpuOptions};
use crate::io::Checkpoint;
use crate::train::budget::{Budget, CurvePlan, MAX_POINTS};
use crate::train::out::resume_path;
use crate::train::session::{Schedule, META_COMPARISON};
use crate::train::Preset;

/// What every training run can be told; `None` takes the preset's value.
/// The model's own options travel beside it ([`crate::train::vae_run::VaeRun`],
/// [`crate::train::gan_run::GanRun`]).
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
    /// The comparison this run belongs to (its id, written into the
    /// checkpoint's metadata as [`META_COMPARISON`]): how a resumed
    /// comparison tells its own runs from those of one it replaced.
    pub comparison: Option<String>,
    /// Train until this budget is spent instead of for the preset's
    /// epochs ([`crate::train::budget`]).
    pub budget: Option<Budget>,
    /// Score the model along the way, at this many marks.
    pub curve: Option<CurvePlan>,
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
            comparison: None,
            budget: None,
            curve: None,
        }
    }

    /// The run's checkpoint metadata `meta` with what every run records
    /// beside its model's settings: its budget and curve (a resume must
    /// match them) and the comparison it belongs to, if any.
    pub fn with_common(&self, mut meta: Vec<(String, String)>) -> Vec<(String, String)> {
        meta.extend(self.length_meta().map(|(k, v)| (k.to_string(), v)));
        if let Some(id) = &self.comparison {
            meta.push((META_COMPARISON.into(), id.clone()));
        }
        meta
    }

    /// How long the run trains and where its curve is scored, as
    /// checkpoint metadata: `budget` and `curve_points` (`none` for
    /// neither, their value in checkpoints from before them).
    pub fn length_meta(&self) -> [(&'static str, String); 2] {
        let or_none = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        [
            ("budget", or_none(self.budget.map(|b| b.describe()))),
            (
                "curve_points",
                or_none(self.curve.map(|c| c.points.to_string())),
            ),
        ]
    }

    /// The run's schedule at `batch` over `epochs` (unless its budget says
    /// otherwise), with the ring's loss slots `names`.
    pub fn schedule<'a>(
        &self,
        seed: u64,
        batch: usize,
        epochs: usize,
        names: &'a [&'a str],
    ) -> Schedule<'a> {
        Schedule {
            seed,
            batch,
            epochs,
            names,
            budget: self.budget,
            curve: self.curve,
        }
    }

    /// The data folder: `data_dir`, or the dataset's default.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.dataset.default_dir())
    }
}

/// Device options every example takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DeviceArgs {
    /// Time candidate GEMM tiles on this GPU when a model is built and keep
    /// the fastest, cached per adapter, driver and shape in the cache
    /// folder (default: on for GPUs, off for CPU drivers; also
    /// VAE_VS_GAN_AUTOTUNE).
    #[arg(long, value_enum)]
    pub autotune: Option<AutotunePolicy>,
}

/// Open the selected adapter and print one line naming it, its kernel
/// policy and the autotuner's setting.
pub fn open_gpu(d: &DeviceArgs) -> Result<Gpu> {
    let gpu = Gpu::with_options(GpuOptions {
        autotune: d.autotune,
        ..GpuOptions::default()
    })?;
    eprintln!(
        "adapter: {}; {}; {}",
        gpu.describe(),
        gpu.describe_kernels(),
        gpu.describe_autotune()
    );
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
    if let (Some(b), Some(e)) = (opts.budget, opts.epochs) {
        return bad(format!(
            "--epochs {e} and a budget of {} both say how long to train: give one",
            b.describe()
        ));
    }
    if let Some(Budget::Seconds(s)) = opts.budget {
        if !(s.is_finite() && s > 0.0) {
            return bad(format!("a budget of {s} s: must be a positive number"));
        }
    }
    if opts.budget == Some(Budget::Images(0)) {
        return bad("a budget of 0 images: must be at least 1".into());
    }
    if let Some(c) = opts.curve {
        if !(2..=MAX_POINTS).contains(&c.points) {
            return bad(format!(
                "--curve-points {}: must be in 2..={MAX_POINTS}",
                c.points
            ));
        }
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
    if opts.resume && !opts.reuse_finished && opts.budget.is_none() {
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
