//! Time every dispatch of one VAE training step (GPU timestamps when the
//! adapter has them) and print them sorted, with the step's total.
//!
//! `cargo run --release --example profile_step -- [batch]`

use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{self, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let batch: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(32);
    let gpu = vae_vs_gan::train::session::open_gpu()?;
    let imgs = data::load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Train,
        Some(batch * 4),
    )?;
    let data = GpuDataset::upload(&gpu, &imgs, "train")?;
    let vae = Vae::new(
        &gpu,
        VaeConfig {
            latent: 2,
            batch,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
            binarize: false,
        },
    )?;
    let state = StepState::new(&gpu, 2, 16, 0)?;
    let ts = vae.train_step(&gpu, &state, &data)?;
    gpu.run(&[&ts.step])?; // warm up: pipelines compiled, caches filled
    let times = gpu.profile(&ts.step)?;
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
        "VAE step, batch {batch}: {} dispatches, {:.2} ms ({} timestamps)",
        times.len(),
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
    Ok(())
}
