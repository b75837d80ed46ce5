//! Train the LeNet-style classifier (src/models/classifier.rs) on MNIST or
//! Fashion-MNIST on the GPU: per epoch, the mean training cross-entropy, the test accuracy and
//! the time, and a weights-only checkpoint (`classifier.safetensors`, Adam
//! moments left out) in `--out` after every epoch.
//!
//! `cargo run --release --example train_classifier -- --epochs 3 --out target/classifier`

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{self, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::classifier::{Classifier, ClassifierConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::run::LOG_INTERVAL;
use vae_vs_gan::train::session::{open_gpu, DeviceArgs};
use vae_vs_gan::train::{progress_bar, run_epoch, EpochOutcome, EpochPlan};

#[derive(Parser, Debug)]
#[command(about = "Train the LeNet-style classifier (MNIST or Fashion-MNIST) on the GPU")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    epochs: usize,
    #[arg(long, default_value_t = ClassifierConfig::default().batch, allow_negative_numbers = true)]
    batch_size: usize,
    /// Adam learning rate (Keras defaults otherwise).
    #[arg(long, default_value_t = ClassifierConfig::default().adam.lr, allow_negative_numbers = true)]
    lr: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder for the checkpoint.
    #[arg(long, default_value = "target/classifier")]
    out: PathBuf,
    /// Which dataset to learn: its checkpoint records it, and the
    /// comparison refuses a classifier of another dataset.
    #[arg(long, value_enum, default_value = "mnist")]
    dataset: Dataset,
    /// Folder with the four IDX files (default: data/mnist, or the Debian
    /// package's folder for --dataset fashion).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long)]
    train_images: Option<usize>,
    /// Score only the first N test images each epoch.
    #[arg(long)]
    test_images: Option<usize>,
    /// Replace a classifier already in --out (data/classifier holds the one
    /// the comparison uses).
    #[arg(long)]
    overwrite: bool,
}

/// Refuse, before any work, what would fail later or replace a classifier
/// silently.
fn check(a: &Args) -> anyhow::Result<()> {
    use vae_vs_gan::train::session::check_writable;
    if a.epochs == 0 {
        anyhow::bail!("--epochs must be at least 1 (0 would write no classifier)");
    }
    if a.batch_size == 0 {
        anyhow::bail!("--batch-size must be at least 1");
    }
    if !(a.lr.is_finite() && a.lr > 0.0) {
        anyhow::bail!("--lr {}: must be a positive number", a.lr);
    }
    if a.out.exists() && !a.out.is_dir() {
        anyhow::bail!("{}: --out is a file, not a folder", a.out.display());
    }
    let ck = a.out.join(CHECKPOINT);
    if ck.exists() && !a.overwrite {
        anyhow::bail!(
            "{}: a classifier is already there: pass --overwrite to replace it, or choose \
             another --out",
            ck.display()
        );
    }
    check_writable(&a.out)?;
    Ok(())
}

/// The checkpoint file in --out.
const CHECKPOINT: &str = "classifier.safetensors";

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    vae_vs_gan::train::run::mark_process_start();
    let a = Args::parse();
    check(&a)?;
    let gpu = open_gpu(&a.device)?;
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| a.dataset.default_dir());
    let train = data::load(a.dataset, &dir, Split::Train, a.train_images)?;
    let test = data::load(a.dataset, &dir, Split::Test, a.test_images)?;
    let train_gpu = GpuDataset::upload(&gpu, &train, "train")?;
    let model = Classifier::new(
        &gpu,
        ClassifierConfig {
            batch: a.batch_size,
            adam: AdamConfig::keras(a.lr),
            seed: a.seed,
        },
    )?;
    eprintln!(
        "classifier: {} parameters, {} {} training images, {} test images, batch {}",
        model.param_count(),
        a.dataset.name(),
        train.len(),
        test.len(),
        a.batch_size
    );
    let state = StepState::new(&gpu, 1, LOG_INTERVAL, 0)?;
    let step = model.train_step(&gpu, &state, &train_gpu)?;
    // after the last refusal (a batch larger than the data): a refused run
    // leaves no folder behind
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("{}: cannot create output folder: {e}", a.out.display()))?;
    let t0 = Instant::now();
    for epoch in 0..a.epochs {
        let pb = progress_bar(train_gpu.batches(a.batch_size), epoch, Some(a.epochs));
        let plan = EpochPlan {
            seed: a.seed,
            epoch,
            batch: a.batch_size,
            names: &["ce"],
            from: None,
            until_step: None,
            until_seconds: None,
        };
        let EpochOutcome::Done(run) = run_epoch(&gpu, &step.step, &state, &train_gpu, &plan, &pb)?
        else {
            anyhow::bail!("interrupted");
        };
        let te = Instant::now();
        let acc = model.accuracy(&gpu, &test)?;
        let path = a.out.join(CHECKPOINT);
        let mut ck = model.checkpoint(&gpu, false)?;
        ck.metadata
            .insert("dataset".into(), a.dataset.name().into());
        ck.save(&path)?;
        println!(
            "epoch {}/{}: train ce {:.4}, test accuracy {:.2}% ({} images), train {:.1}s ({:.0} img/s), eval {:.1}s, total {:.1}s",
            epoch + 1,
            a.epochs,
            run.mean_losses[0],
            100.0 * acc,
            test.len(),
            run.seconds,
            run.images_per_sec,
            te.elapsed().as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
    }
    eprintln!("wrote {}", a.out.join(CHECKPOINT).display());
    Ok(())
}
