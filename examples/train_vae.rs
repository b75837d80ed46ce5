//! Train the article's convolutional VAE on MNIST (or Fashion-MNIST) on the
//! GPU, with a progress bar, a log line per epoch in the article's form,
//! sample grids, metrics.json, loss curves, reconstructions, latent plots
//! and an atomic checkpoint after every epoch.
//!
//! `cargo run --release --example train_vae -- --preset smoke --out target/vae`

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use vae_vs_gan::data::Dataset;
use vae_vs_gan::train::session::{choose_preset, open_gpu};
use vae_vs_gan::train::vae_run::{train_vae, VaeRun};
use vae_vs_gan::train::Preset;
#[derive(Parser, Debug)]
#[command(about = "Train the article's convolutional VAE on the GPU")]
struct Args {
    /// Hyperparameter preset (default: article on a GPU, smoke on a CPU adapter).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long)]
    lr: Option<f32>,
    #[arg(long)]
    latent_dim: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder (default target/vae, or the --resume folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder with the four IDX files (default: data/mnist, or the Debian
    /// package's folder for --dataset fashion).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: DatasetArg,
    /// Continue the run saved in this folder, bit-identically.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Static binarisation of pixels at 0.5 (how published ELBOs are measured).
    #[arg(long)]
    binarize: bool,
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
        .unwrap_or_else(|| PathBuf::from("target/vae"));
    let run = VaeRun {
        preset,
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr,
        latent_dim: a.latent_dim,
        seed: a.seed,
        out: out.clone(),
        dataset: match a.dataset {
            DatasetArg::Mnist => Dataset::Mnist,
            DatasetArg::Fashion => Dataset::Fashion,
        },
        data_dir: a.data_dir,
        resume: a.resume.is_some(),
        binarize: a.binarize,
        train_images: a.train_images,
        overwrite: a.overwrite,
        plots: true,
    };
    if let Some(r) = &a.resume {
        if r != &out {
            anyhow::bail!(
                "--resume {} and --out {} differ: a resumed run continues in its own folder",
                r.display(),
                out.display()
            );
        }
    }
    train_vae(&gpu, &run)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}
