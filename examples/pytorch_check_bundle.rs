//! Write a check bundle for `tools/check_with_pytorch.py`: a VAE (latent 2,
//! batch 8, seed 7) trained for a few steps on the first 64 MNIST training
//! images (so the weights are not just the initialisation), its checkpoint,
//! and the engine's negative ELBO on a fixed batch (the first 8 MNIST test
//! images, pixels / 255) with a fixed noise `eps` (Philox, seed 7, stream 9).
//!
//! `cargo run --release --example pytorch_check_bundle [-- OUT_DIR]`
//! (default `target/pytorch_check`) writes `OUT_DIR/vae.safetensors` and
//! `OUT_DIR/bundle.json`; then
//! `python tools/check_with_pytorch.py OUT_DIR` prints PyTorch's loss
//! beside the engine's. See tools/README.md.

use std::path::PathBuf;

use vae_vs_gan::data::{load, Dataset, Split, PIXELS};
use vae_vs_gan::gpu::{Gpu, StepState};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::{write_atomic, GpuDataset};

const SEED: u64 = 7;
const LATENT: usize = 2;
const BATCH: usize = 8;
const TRAIN_IMAGES: usize = 64;
const EPOCHS: usize = 4;
/// Philox stream of the fixed noise (the model uses streams 1 to 3).
const EPS_STREAM: u32 = 9;

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/pytorch_check".into()),
    );
    std::fs::create_dir_all(&out)?;
    let gpu = Gpu::new()?;
    let dir = Dataset::Mnist.default_dir();

    // A few epochs of training on a tiny set.
    let train = load(Dataset::Mnist, &dir, Split::Train, Some(TRAIN_IMAGES))?;
    let data = GpuDataset::upload(&gpu, &train, "train")?;
    let vae = Vae::new(
        &gpu,
        VaeConfig {
            latent: LATENT,
            batch: BATCH,
            adam: AdamConfig::keras(1e-3),
            seed: SEED,
            binarize: false,
        },
    )?;
    let steps = data.batches(BATCH);
    let state = StepState::new(&gpu, 2, steps * EPOCHS, 0)?;
    let ts = vae.train_step(&gpu, &state, &data)?;
    for epoch in 0..EPOCHS {
        data.shuffle(&gpu, SEED, epoch)?;
        gpu.run(&std::iter::repeat_n(&ts.step, steps).collect::<Vec<_>>())?;
    }
    let last = state.read_losses(&gpu, 0)?;
    let ckpt = out.join("vae.safetensors");
    vae.checkpoint(&gpu)?.save(&ckpt)?;

    // The fixed batch and noise, and the engine's loss on them.
    let test = load(Dataset::Mnist, &dir, Split::Test, Some(BATCH))?;
    let pixels: Vec<f32> = test.pixels.iter().map(|&b| b as f32 / 255.0).collect();
    assert_eq!(pixels.len(), BATCH * PIXELS);
    let eps: Vec<f32> = Philox::new(SEED, EPS_STREAM).normal_cpu(0, BATCH * LATENT);
    let (recon, kl) = vae.loss_on(&gpu, &pixels, &eps)?;

    let bundle = serde_json::json!({
        "checkpoint": "vae.safetensors",
        "split": "test",
        "indices": (0..BATCH).collect::<Vec<_>>(),
        "latent": LATENT,
        "eps": eps,
        "engine_recon": recon,
        "engine_kl": kl,
        "train_steps": steps * EPOCHS,
        "seed": SEED,
        "adapter": gpu.describe(),
    });
    let path = out.join("bundle.json");
    write_atomic(&path, serde_json::to_string_pretty(&bundle)?.as_bytes())?;
    if let Some(r) = last.last() {
        println!(
            "trained {} steps; last train loss {:.3} + {:.3}",
            last.len(),
            r.values[0],
            r.values[1]
        );
    }
    println!(
        "engine ({}): recon {recon:.6} kl {kl:.6} total {:.6}",
        gpu.describe(),
        recon + kl
    );
    println!("wrote {} and {}", ckpt.display(), path.display());
    Ok(())
}
