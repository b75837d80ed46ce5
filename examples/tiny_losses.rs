//! The tiny VAE and GAN runs of the shared checks (tests/checks/training.rs)
//! on this machine's adapter, their losses as one line of JSON on stdout:
//! what the browser's tests compare their own runs with
//! (scripts/web/test.sh runs it on lavapipe and on SwiftShader); and each
//! model's training speed there (`training::images_per_second`) on stderr.
//!
//! `cargo run --release --example tiny_losses`; the adapter as every
//! example selects it (`VAE_VS_GAN_ADAPTER`, `VK_ICD_FILENAMES`).

#[path = "../tests/checks/mod.rs"]
mod checks;

use checks::training::{images_per_second, Tiny, TIMED_STEPS};
use vae_vs_gan::{Gpu, GpuOptions};

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let gpu = Gpu::with_options(GpuOptions::default())?;
    let runs = pollster::block_on(checks::training::runs(&gpu))
        .map_err(|e| anyhow::anyhow!("the tiny runs on {}: {e}", gpu.describe()))?;
    println!("{}", serde_json::to_string(&runs)?);
    let start = std::time::Instant::now();
    let now = || start.elapsed().as_secs_f64();
    for model in [Tiny::Vae, Tiny::Gan] {
        let speed = pollster::block_on(images_per_second(&gpu, model, &now))
            .map_err(|e| anyhow::anyhow!("timing the tiny {}: {e}", model.name()))?;
        eprintln!(
            "{}: tiny {} {speed:.1} images/s (batch 8, {TIMED_STEPS} warm steps)",
            gpu.describe(),
            model.name()
        );
    }
    Ok(())
}
