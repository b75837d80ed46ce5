//! The main job: train the article's VAE and GAN (or load them), score
//! their samples and latents with classifier-based metrics against the real
//! MNIST test images, test the article's claims, and write `report.md`,
//! `report.json`, pictures and the samples as IDX files into `--out`.
//!
//! `cargo run --release --example compare -- --preset smoke`
//! (the default preset: article on a GPU, smoke on a CPU adapter).

use std::path::PathBuf;

use clap::Parser;
use vae_vs_gan::compare::{compare, CompareOptions};
use vae_vs_gan::data::Dataset;
use vae_vs_gan::models::gan::GanOptions;
use vae_vs_gan::models::vae::VaeOptions;
use vae_vs_gan::train::budget::{self, Budget};
use vae_vs_gan::train::session::{choose_preset, open_gpu, DeviceArgs};
use vae_vs_gan::train::Preset;

#[derive(Parser, Debug)]
#[command(
    about = "Train and compare the article's VAE and GAN on MNIST (or Fashion-MNIST), with a measured report"
)]
struct Args {
    /// Preset of both models (default: article on a GPU, smoke on a CPU adapter).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// The VAE's preset, when it differs from --preset.
    #[arg(long, value_enum)]
    vae_preset: Option<Preset>,
    /// The GAN's preset, when it differs from --preset (e.g. `--preset
    /// article --gan-preset dcgan`: the article's VAE against the GAN in
    /// the setting GANs are usually judged in).
    #[arg(long, value_enum)]
    gan_preset: Option<Preset>,
    /// Train and score seeds 0..N and report mean and standard deviation
    /// (verdicts need at least 3; default 3 for the article preset, else 1).
    #[arg(long)]
    seeds: Option<usize>,
    /// Samples scored per model (default 10000; smoke 2000).
    #[arg(long)]
    samples: Option<usize>,
    /// Test images for the IWAE bound (default: all 10000; smoke 200).
    #[arg(long)]
    iwae_images: Option<usize>,
    /// Importance samples per image for the IWAE bound.
    #[arg(long, default_value_t = 100)]
    iwae_k: usize,
    /// Output folder.
    #[arg(long, default_value = "target/compare")]
    out: PathBuf,
    /// Score this VAE checkpoint (from train_vae) instead of training one.
    #[arg(long)]
    vae_ckpt: Option<PathBuf>,
    /// Score this GAN checkpoint (from train_gan) instead of training one.
    #[arg(long)]
    gan_ckpt: Option<PathBuf>,
    /// The dataset: MNIST (shipped in data/mnist) or Fashion-MNIST (`apt-get
    /// install dataset-fashion-mnist`).
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: Dataset,
    /// The feature network's weights (default: the dataset's, in
    /// data/classifier or data/classifier-fashion).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Folder with the dataset's four IDX files (default: data/mnist, or
    /// /usr/share/datasets/fashion-mnist for --dataset fashion).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The VAE's options.
    #[command(flatten)]
    vae: VaeOptions,
    /// The GAN's options.
    #[command(flatten)]
    gan: GanOptions,
    /// Batch size both training steps are timed and measured at for the
    /// cost claim (default: the article's 32 for both; 8 for tiny).
    #[arg(long)]
    cost_batch: Option<usize>,
    /// Replace an earlier comparison in --out (and its training runs).
    #[arg(long)]
    overwrite: bool,
    /// Continue an earlier comparison in --out: finished training runs are
    /// reused, interrupted ones continue from their last epoch.
    #[arg(long)]
    resume: bool,
    /// Train each model, per seed, for this many seconds of its training
    /// loop (scoring and checkpoints not counted) instead of its preset's
    /// epochs: verdicts at an equal budget, with curves.
    #[arg(long, value_parser = budget::parse_seconds, conflicts_with = "budget_images")]
    budget_seconds: Option<f64>,
    /// Train each model, per seed, on this many images instead of its
    /// preset's epochs (may end mid-epoch; more than the preset's epochs
    /// trains on past them).
    #[arg(long, value_parser = budget::parse_images)]
    budget_images: Option<u64>,
    /// Score each model at this many evenly spaced points of its training,
    /// and at the start (default: 15 with a budget; none without).
    #[arg(long)]
    curve_points: Option<usize>,
    #[command(flatten)]
    device: DeviceArgs,
}

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    vae_vs_gan::train::run::mark_process_start();
    vae_vs_gan::train::interrupt::install()?;
    let a = Args::parse();
    let gpu = open_gpu(&a.device)?;
    let mut o = CompareOptions::new(choose_preset(&gpu, a.preset), &a.out);
    o.vae_preset = a.vae_preset;
    o.gan_preset = a.gan_preset;
    if let Some(n) = a.seeds {
        o.seeds = n;
    }
    o.samples = a.samples;
    o.iwae_images = a.iwae_images;
    o.iwae_k = a.iwae_k;
    o.vae_ckpt = a.vae_ckpt;
    o.gan_ckpt = a.gan_ckpt;
    o.classifier = a.classifier;
    o.data_dir = a.data_dir;
    o.dataset = a.dataset;
    o.vae = a.vae;
    o.gan = a.gan;
    if let Some(b) = a.cost_batch {
        o.cost_batch = b;
    }
    o.overwrite = a.overwrite;
    o.resume = a.resume;
    o.budget = Budget::from_flags(a.budget_seconds, a.budget_images)?;
    o.curve_points = a.curve_points;
    let report = compare(&gpu, &o)?;
    println!("{}", report.table());
    for v in &report.verdicts {
        println!("{}", v.line());
    }
    eprintln!("wrote {}", a.out.join("report.md").display());
    Ok(())
}
