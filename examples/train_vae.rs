//! Train the article's convolutional VAE on MNIST (or Fashion-MNIST) on the
//! GPU, with a progress bar, a log line per epoch in the article's form,
//! sample grids, metrics.json, loss curves, reconstructions, latent plots
//! and an atomic checkpoint after every epoch.
//!
//! `cargo run --release --example train_vae -- --preset smoke --out target/vae`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use vae_vs_gan::data::{self, Dataset, Split, PIXELS};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::vae::{Vae, VaeConfig, SLOT_KL, SLOT_RECON};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::report::{line_plot, save_grid, scatter_by_class};
use vae_vs_gan::train::session::{choose_preset, open_gpu, prepare_out, prior_grid, resume_path, CHECKPOINT};
use vae_vs_gan::train::{progress_bar, run_epoch, AdapterDesc, Checkpoint, EpochMetrics, GpuDataset, Metrics, Preset};
use vae_vs_gan::{Error, Gpu};

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
    let args = Args::parse();
    let gpu = open_gpu()?;
    let preset = choose_preset(&gpu, args.preset);
    let p = preset.vae()?;
    let dataset = match args.dataset {
        DatasetArg::Mnist => Dataset::Mnist,
        DatasetArg::Fashion => Dataset::Fashion,
    };
    let dir = args.data_dir.clone().unwrap_or_else(|| dataset.default_dir());
    let out = args.out.clone().or(args.resume.clone()).unwrap_or_else(|| PathBuf::from("target/vae"));
    prepare_out(&out, args.resume.is_some(), args.overwrite)?;

    let config = VaeConfig {
        latent: args.latent_dim.unwrap_or(p.latent),
        batch: args.batch_size.unwrap_or(p.batch),
        adam: AdamConfig::keras(args.lr.unwrap_or(p.lr)),
        seed: args.seed,
        binarize: args.binarize,
    };
    let epochs = args.epochs.unwrap_or(p.epochs);
    let train = data::load(dataset, &dir, Split::Train, args.train_images.or(p.train_images))?;
    let test = data::load(dataset, &dir, Split::Test, p.test_images)?;
    let train_gpu = GpuDataset::upload(&gpu, &train, "train")?;
    let test_gpu = GpuDataset::upload(&gpu, &test, "test")?;
    let vae = Vae::new(&gpu, config.clone())?;
    eprintln!(
        "VAE: latent {}, batch {}, lr {}, {} parameters; {} training and {} test images of {}",
        config.latent,
        config.batch,
        config.adam.lr,
        vae.param_count(),
        train.len(),
        test.len(),
        dataset.name()
    );

    // Resume: parameters, Adam moments, step counter, epoch, metrics.
    let mut start_epoch = 0;
    let mut start_step = 0u32;
    let mut metrics = Metrics {
        model: "vae".into(),
        preset: preset.name().into(),
        adapter: AdapterDesc::of(&gpu),
        params: vae.param_count(),
        epochs: Vec::new(),
        peak_gpu_bytes: 0,
    };
    let run_meta = run_metadata(&config, preset, train.len(), dataset);
    if let Some(dir) = &args.resume {
        let path = resume_path(dir)?;
        let ck = Checkpoint::load(&path)?;
        check_same_run(&ck, &run_meta, &path)?;
        vae.restore(&gpu, &ck, &path)?;
        start_epoch = meta_num(&ck, "epoch", &path)?;
        start_step = meta_num(&ck, "steps", &path)? as u32;
        if let Ok(m) = Metrics::load(dir) {
            metrics.epochs = m.epochs.into_iter().filter(|e| e.epoch <= start_epoch).collect();
        }
        eprintln!("resuming {} after epoch {start_epoch} (step {start_step})", path.display());
    }

    let steps = train_gpu.batches(config.batch);
    let state = StepState::new(&gpu, 2, vae_vs_gan::train::run::STEPS_PER_SUBMIT, start_step)?;
    let ts = vae.train_step(&gpu, &state, &train_gpu)?;
    let names = ["recon", "kl"];
    for epoch in start_epoch..epochs {
        let pb = progress_bar(steps, epoch, epochs);
        let run = run_epoch(&gpu, &ts.step, &state, &train_gpu, config.seed, epoch, config.batch, &names, &pb)
            .map_err(|e| with_checkpoint_hint(e, &out))?;
        let train_loss = run.mean_losses[SLOT_RECON] + run.mean_losses[SLOT_KL];
        let test_loss = vae.test_loss(&gpu, &test_gpu, 500)?;
        println!("Epoch: {}, Loss: {:.4}", epoch + 1, test_loss);
        eprintln!(
            "  train loss {train_loss:.4} (recon {:.4}, kl {:.4}), {:.1} s, {:.0} images/s",
            run.mean_losses[SLOT_RECON], run.mean_losses[SLOT_KL], run.seconds, run.images_per_sec
        );
        if !test_loss.is_finite() {
            return Err(with_checkpoint_hint(
                Error::NonFinite { loss: "test".into(), value: test_loss as f32, epoch: epoch + 1, step: steps, global_step: state.steps_done(&gpu)? },
                &out,
            ));
        }
        save_grid(&out.join(format!("samples_epoch_{:03}.png", epoch + 1)), &vae.sample(&gpu, 100, config.seed)?, 28, 10, 10, 0.0, 1.0)?;
        metrics.epochs.push(EpochMetrics {
            epoch: epoch + 1,
            train_loss: Some(train_loss),
            test_loss: Some(test_loss),
            seconds: run.seconds,
            images_per_sec: run.images_per_sec,
            ..Default::default()
        });
        metrics.peak_gpu_bytes = metrics.peak_gpu_bytes.max(gpu.peak_bytes());
        let mut ck = vae.checkpoint(&gpu)?;
        ck.metadata.extend(run_meta.clone());
        ck.metadata.insert("epoch".into(), (epoch + 1).to_string());
        ck.metadata.insert("steps".into(), state.steps_done(&gpu)?.to_string());
        ck.save(&out.join(CHECKPOINT))?;
        metrics.save(&out)?;
    }
    final_plots(&gpu, &vae, &metrics, &test, &out)?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

/// Facts a resumed run must share with the checkpoint it continues.
fn run_metadata(c: &VaeConfig, preset: Preset, train_images: usize, d: Dataset) -> Vec<(String, String)> {
    vec![
        ("preset".into(), preset.name().into()),
        ("batch".into(), c.batch.to_string()),
        ("seed".into(), c.seed.to_string()),
        ("train_images".into(), train_images.to_string()),
        ("dataset".into(), d.name().into()),
        ("binarize".into(), c.binarize.to_string()),
        ("lr".into(), c.adam.lr.to_string()),
    ]
}

fn check_same_run(ck: &Checkpoint, meta: &[(String, String)], path: &Path) -> Result<()> {
    for (k, v) in meta {
        match ck.metadata.get(k) {
            Some(saved) if saved != v => {
                anyhow::bail!("{}: the checkpoint was trained with {k} = {saved}, this run has {k} = {v}: pass the same options to resume", path.display())
            }
            _ => {}
        }
    }
    Ok(())
}

fn meta_num(ck: &Checkpoint, key: &str, path: &Path) -> Result<usize> {
    ck.metadata
        .get(key)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("{}: checkpoint metadata has no valid {key:?}", path.display()))
}

/// Name the last good checkpoint in a training failure.
fn with_checkpoint_hint(e: Error, out: &Path) -> anyhow::Error {
    let ck = out.join(CHECKPOINT);
    let hint = if ck.exists() {
        format!("the last good checkpoint is {} (intact)", ck.display())
    } else {
        "no checkpoint was written yet".to_string()
    };
    anyhow::Error::new(e).context(hint)
}

/// Loss curves, test images vs reconstructions, and for a 2-D latent the
/// manifold and the scatter of the test set's latent means.
fn final_plots(gpu: &Gpu, vae: &Vae, m: &Metrics, test: &data::Images, out: &Path) -> Result<()> {
    let pts = |f: fn(&EpochMetrics) -> Option<f64>| m.epochs.iter().filter_map(|e| f(e).map(|v| (e.epoch as f64, v))).collect();
    line_plot(
        &out.join("loss.png"),
        "VAE negative ELBO",
        "epoch",
        "nats per image",
        &[("train".into(), pts(|e| e.train_loss)), ("test".into(), pts(|e| e.test_loss))],
    )?;
    let n = test.len().min(10);
    let imgs: Vec<f32> = test.pixels[..n * PIXELS].iter().map(|&b| b as f32 / 255.0).collect();
    let rec = vae.reconstruct(gpu, &imgs)?;
    let both: Vec<f32> = imgs.iter().chain(&rec).copied().collect();
    save_grid(&out.join("reconstructions.png"), &both, 28, 2, n, 0.0, 1.0)?;
    if vae.config.latent == 2 {
        save_grid(&out.join("latent_manifold.png"), &vae.decode(gpu, &prior_grid(20))?, 28, 20, 20, 0.0, 1.0)?;
        let k = test.len().min(5000);
        let all: Vec<f32> = test.pixels[..k * PIXELS].iter().map(|&b| b as f32 / 255.0).collect();
        let mut means = Vec::with_capacity(2 * k);
        for chunk in all.chunks(500 * PIXELS) {
            means.extend(vae.encode(gpu, chunk)?.0);
        }
        let points: Vec<(f32, f32)> = means.chunks(2).map(|c| (c[0], c[1])).collect();
        scatter_by_class(&out.join("latent_scatter.png"), "test set latent means", &points, &test.labels[..k])?;
    }
    Ok(())
}
