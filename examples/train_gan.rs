//! Train the article's DCGAN on MNIST (or Fashion-MNIST) on the GPU, with a
//! progress bar, a log line per epoch in the article's form, sample grids,
//! metrics.json, loss curves, the 20x20 latent grid for a 2-D latent, and an
//! atomic checkpoint after every epoch.
//!
//! `cargo run --release --example train_gan -- --preset smoke --out target/gan`

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use vae_vs_gan::data::Dataset;
use vae_vs_gan::models::gan::DHead;
use vae_vs_gan::train::gan_run::{train_gan, GanRun};
use vae_vs_gan::train::session::{choose_preset, open_gpu};
use vae_vs_gan::train::Preset;

#[derive(Parser, Debug)]
#[command(about = "Train the article's DCGAN on the GPU")]
struct Args {
    /// Hyperparameter preset (default: article on a GPU, smoke on a CPU adapter).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate of both optimizers.
    #[arg(long)]
    lr: Option<f32>,
    /// The discriminator's learning rate (overrides --lr for it).
    #[arg(long)]
    lr_d: Option<f32>,
    #[arg(long)]
    latent_dim: Option<usize>,
    /// The discriminator's head: the article's global max pool, or flatten.
    #[arg(long, value_enum)]
    d_head: Option<DHead>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (default target/gan, or the --resume folder).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetArg,
    /// Continue the run saved in this folder, bit-identically.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    train_images: Option<usize>,
    /// Replace a run already in --out.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DatasetArg {
    Mnist,
    Fashion,
}

fn main() -> Result<()> {
    let a = Args::parse();
    let gpu = open_gpu()?;
    let preset = choose_preset(&gpu, a.preset);
    let out = a
        .out
        .clone()
        .or(a.resume.clone())
        .unwrap_or_else(|| PathBuf::from("target/gan"));
    if let Some(r) = &a.resume {
        if r != &out {
            anyhow::bail!(
                "--resume {} and --out {} differ: a resumed run continues in its own folder",
                r.display(),
                out.display()
            );
        }
    }
    let run = GanRun {
        preset,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        lr_d: a.lr_d,
        latent_dim: a.latent_dim,
        head: a.d_head,
        seed: a.seed,
        out: out.clone(),
        dataset: match a.dataset {
            DatasetArg::Mnist => Dataset::Mnist,
            DatasetArg::Fashion => Dataset::Fashion,
        },
        data_dir: a.data_dir,
        resume: a.resume.is_some(),
        train_images: a.train_images,
        overwrite: a.overwrite,
        plots: true,
    };
    train_gan(&gpu, &run)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
