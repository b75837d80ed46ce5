//! Count and time one training step of a model: first one line for the
//! whole step (dispatches, bind groups, bytes bound, total time), then
//! every op's time (GPU timestamps when the adapter has them), sorted.
//!
//! `cargo run --release --example profile_step -- --model vae|gan|classifier [batch]`
//! (`--each`: then every dispatch in recorded order, with its kernel key
//! and, for a matrix product, its GFLOP/s).
//!
//! The models are built as the article preset trains them (VAE latent 2,
//! GAN latent 2 with the global-max-pool head); `--latent` overrides the
//! latent size.

use clap::{Parser, ValueEnum};
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{self, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::classifier::{Classifier, ClassifierConfig};
use vae_vs_gan::models::gan::{Gan, GanConfig};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::Preset;
use vae_vs_gan::Step;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Model {
    Vae,
    Gan,
    Classifier,
}

#[derive(Parser, Debug)]
#[command(about = "Count and time every dispatch of one training step")]
struct Args {
    /// Which model's training step.
    #[arg(long, value_enum, default_value = "vae")]
    model: Model,
    /// Batch size.
    #[arg(default_value_t = 32)]
    batch: usize,
    /// Latent size of the VAE or GAN (default: the article preset's).
    #[arg(long)]
    latent: Option<usize>,
    /// Also list every dispatch: time, GFLOP/s of a matrix product, op,
    /// kernel key.
    #[arg(long)]
    each: bool,
    #[command(flatten)]
    device: vae_vs_gan::train::options::DeviceArgs,
}

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let a = Args::parse();
    let batch = a.batch;
    anyhow::ensure!(batch > 0, "the batch must be at least 1");
    let gpu = vae_vs_gan::train::session::open_gpu(&a.device)?;
    let imgs = data::load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Train,
        Some(batch * 4),
    )?;
    let data = GpuDataset::upload(&gpu, &imgs, "train")?;
    let state = StepState::new(&gpu, 2, 16, 0)?;
    // The model lives as long as its step: the step keeps the tensors it
    // binds, the model the rest (and `_model` must outlive `step`).
    let (name, step, _model): (&str, Step, Box<dyn std::any::Any>) = match a.model {
        Model::Vae => {
            let p = Preset::Article.vae()?;
            let vae = Vae::new(
                &gpu,
                VaeConfig {
                    latent: a.latent.unwrap_or(p.latent),
                    batch,
                    adam: AdamConfig::keras(p.lr),
                    seed: 0,
                    ..VaeConfig::default()
                },
            )?;
            let ts = vae.train_step(&gpu, &state, &data)?;
            ("VAE", ts.step, Box::new(vae))
        }
        Model::Gan => {
            let p = Preset::Article.gan();
            let gan = Gan::new(
                &gpu,
                GanConfig {
                    latent: a.latent.unwrap_or(p.latent),
                    batch,
                    adam_g: AdamConfig::keras(p.lr_g),
                    adam_d: AdamConfig::keras(p.lr_d),
                    seed: 0,
                    head: p.head,
                    ..GanConfig::default()
                },
            )?;
            let ts = gan.train_step(&gpu, &state, &data)?;
            ("GAN", ts.step, Box::new(gan))
        }
        Model::Classifier => {
            let net = Classifier::new(
                &gpu,
                ClassifierConfig {
                    batch,
                    adam: AdamConfig::keras(1e-3),
                    seed: 0,
                },
            )?;
            let ts = net.train_step(&gpu, &state, &data)?;
            ("classifier", ts.step, Box::new(net))
        }
    };
    gpu.run(&[&step])?; // warm up: pipelines compiled, caches filled
    let times = gpu.profile(&step)?;
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    let mut by_op: Vec<(&str, f64, usize)> = Vec::new();
    for t in &times {
        match by_op.iter_mut().find(|e| e.0 == t.op) {
            Some(e) => {
                e.1 += t.seconds;
                e.2 += 1;
            }
            None => by_op.push((t.op, t.seconds, 1)),
        }
    }
    by_op.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "{name} step, batch {batch}: {}, {:.2} ms ({} timestamps)",
        step.stats(),
        total * 1e3,
        if times.first().is_some_and(|t| t.gpu_timestamps) {
            "GPU"
        } else {
            "wall-clock"
        }
    );
    for (op, s, n) in by_op {
        println!(
            "{:>10.3} ms  {:5.1}%  {n:3}x  {op}",
            s * 1e3,
            100.0 * s / total
        );
    }
    if a.each {
        println!("every dispatch, in recorded order:");
        for t in &times {
            let rate = if t.gemm_flops > 0 && t.seconds > 0.0 {
                format!("{:7.2} GFLOP/s", t.gemm_flops as f64 / t.seconds * 1e-9)
            } else {
                " ".repeat(15)
            };
            println!(
                "{:>10.3} ms  {rate}  {}  {}",
                t.seconds * 1e3,
                t.op,
                t.kernel
            );
        }
    }
    Ok(())
}
