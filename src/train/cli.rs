//! Command-line options both training examples share, and how every
//! example ends.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::train::budget::{self, Budget};
use crate::train::options::DeviceArgs;
use crate::train::session::{choose_preset, RunOptions};
use crate::train::Preset;

/// Options of every training run.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    /// Hyperparameter preset (default: article on a GPU, smoke on a CPU adapter).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    #[arg(long, allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    #[arg(long, allow_negative_numbers = true)]
    pub batch_size: Option<usize>,
    /// Learning rate (for the GAN: both optimizers).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub latent_dim: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder (default `target/<model>`, or the --resume folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder with the four IDX files (default: data/mnist, or the Debian
    /// package's folder for --dataset fashion).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "mnist")]
    pub dataset: Dataset,
    /// Continue the run saved in this folder, bit-identically.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long, allow_negative_numbers = true)]
    pub train_images: Option<usize>,
    /// Replace a run already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Train for this many seconds of the training loop (scoring and
    /// checkpoints not counted) instead of the preset's epochs.
    #[arg(long, value_parser = budget::parse_seconds, conflicts_with_all = ["epochs", "budget_images"])]
    pub budget_seconds: Option<f64>,
    /// Train on this many images instead of the preset's epochs (the last
    /// step completes: a whole batch).
    #[arg(long, value_parser = budget::parse_images, conflicts_with = "epochs")]
    pub budget_images: Option<u64>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl CommonArgs {
    /// The output folder: --out, else the --resume folder, else `default`.
    /// A resumed run continues in its own folder.
    pub fn out_dir(&self, default: &str) -> Result<PathBuf> {
        let out = self
            .out
            .clone()
            .or(self.resume.clone())
            .unwrap_or_else(|| PathBuf::from(default));
        match &self.resume {
            Some(r) if r != &out => Err(Error::data(
                r,
                format!(
                    "--resume and --out {} differ: a resumed run continues in its own folder",
                    out.display()
                ),
            )),
            _ => Ok(out),
        }
    }

    /// The run these options describe, on `gpu` (which picks the default
    /// preset), writing to `out`.
    pub fn into_options(self, gpu: &Gpu, out: PathBuf) -> Result<RunOptions> {
        Ok(RunOptions {
            preset: choose_preset(gpu, self.preset),
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            latent_dim: self.latent_dim,
            seed: self.seed,
            out,
            dataset: self.dataset,
            data_dir: self.data_dir,
            resume: self.resume.is_some(),
            train_images: self.train_images,
            overwrite: self.overwrite,
            plots: true,
            reuse_finished: false,
            comparison: None,
            budget: Budget::from_flags(self.budget_seconds, self.budget_images)?,
            curve: None,
        })
    }
}

/// How every example's `main` ends: on an error, `Error: <message>` and
/// each cause on stderr and exit status 1 (no stack backtrace, even with
/// `RUST_BACKTRACE` set: backtraces are for panics, which are bugs).
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}
