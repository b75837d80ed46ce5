//! Write check bundles for `tools/check_with_pytorch.py`.
//!
//! VAE: a VAE (latent 2, batch 8, seed 7) trained for a few steps on the
//! first 64 MNIST training images (so the weights are not just the
//! initialisation), its checkpoint, and the engine's negative ELBO on a
//! fixed batch (the first 8 MNIST test images, pixels / 255) with a fixed
//! noise `eps` (Philox, seed 7, stream 9).
//!
//! GAN: for each discriminator head, the check's GAN of
//! `tests/it/gan_check_model.rs` (latent 2, batch 8, seed 7, NOT trained: the
//! seeded init with its batch norms and biases overwritten by exact
//! hash-derived values, so a test can rebuild it bit for bit without a 5 MB
//! fixture), its checkpoint, and in eval mode the engine's images
//! `Gan::generate(z)` for a fixed z (Philox, seed 7, stream 9), the logits
//! `Gan::discriminate` on the first 8 MNIST test images (byte / 255 * 2 - 1)
//! and on the generated images, and the losses from those logits.
//!
//! `cargo run --release --example pytorch_check_bundle [-- OUT_DIR]`
//! (default `target/pytorch_check`) writes `OUT_DIR/vae.safetensors`,
//! `OUT_DIR/bundle.json`, `OUT_DIR/gan_{global_max_pool,flatten}.safetensors`
//! and `OUT_DIR/gan_bundle.json`; then
//! `python tools/check_with_pytorch.py OUT_DIR [--model gan]` prints
//! PyTorch's numbers beside the engine's. See tools/README.md.

#[path = "../tests/it/gan_check_model.rs"]
mod gan_check_model;

use std::path::{Path, PathBuf};

use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{load, Dataset, Split, PIXELS};
use vae_vs_gan::gpu::{Gpu, StepState};
use vae_vs_gan::io::write_atomic;
use vae_vs_gan::models::gan::DHead;
use vae_vs_gan::models::gan_loss::GanLoss;
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::optim::adam::AdamConfig;

const SEED: u64 = 7;
const LATENT: usize = 2;
const BATCH: usize = 8;
const TRAIN_IMAGES: usize = 64;
const EPOCHS: usize = 4;
/// Philox stream of the fixed noise (the model uses streams 1 to 3).
const EPS_STREAM: u32 = 9;

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "target/pytorch_check".into()),
    );
    std::fs::create_dir_all(&out)?;
    let gpu = Gpu::new()?;
    vae_bundle(&gpu, &out)?;
    gan_bundle(&gpu, &out)
}

/// Mean binary cross-entropy with logits against `target`, in f64.
fn bce_mean(logits: &[f32], target: f64) -> f64 {
    let n = logits.len() as f64;
    logits
        .iter()
        .map(|&z| {
            let z = z as f64;
            z.max(0.0) - z * target + (-z.abs()).exp().ln_1p()
        })
        .sum::<f64>()
        / n
}

fn gan_bundle(gpu: &Gpu, out: &Path) -> anyhow::Result<()> {
    use gan_check_model::{build, weights_hash, BATCH, LATENT, SEED, Z_STREAM};
    let test = load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Test,
        Some(BATCH),
    )?;
    let real: Vec<f32> = test
        .pixels
        .iter()
        .map(|&b| b as f32 / 255.0 * 2.0 - 1.0)
        .collect();
    let z: Vec<f32> = Philox::new(SEED, Z_STREAM).normal_cpu(0, BATCH * LATENT);
    let mut heads = serde_json::Map::new();
    for head in [DHead::GlobalMaxPool, DHead::Flatten] {
        let gan = build(gpu, head)?;
        let ck = gan.checkpoint(gpu)?;
        let file = format!("gan_{}.safetensors", head.name());
        ck.save(&out.join(&file))?;
        let images = gan.generate(gpu, &z)?;
        let real_logits = gan.discriminate(gpu, &real)?;
        let fake_logits = gan.discriminate(gpu, &images)?;
        let d_loss = bce_mean(&real_logits, 1.0) + bce_mean(&fake_logits, 0.0);
        let g_loss = bce_mean(&fake_logits, 1.0);
        println!(
            "gan {} ({} params): d_loss {d_loss:.9} g_loss {g_loss:.9}; real logits {real_logits:?}",
            head.name(),
            gan.param_count()
        );
        // every GAN loss of these logits, through the step's own ops
        let mut losses = serde_json::Map::new();
        for loss in GanLoss::ALL {
            let (d, g) = loss.evaluate(gpu, &real_logits, &fake_logits)?;
            losses.insert(loss.name().into(), serde_json::json!([d, g]));
        }
        heads.insert(
            head.name().into(),
            serde_json::json!({
                "engine_losses": losses,
                "checkpoint": file,
                "weights_hash": weights_hash(&ck),
                "engine_images": images,
                "engine_real_logits": real_logits,
                "engine_fake_logits": fake_logits,
                "engine_d_loss": d_loss,
                "engine_g_loss": g_loss,
            }),
        );
    }
    let bundle = serde_json::json!({
        "split": "test",
        "indices": (0..BATCH).collect::<Vec<_>>(),
        "latent": LATENT,
        "z": z,
        "seed": SEED,
        "train_steps": 0,
        "adapter": gpu.describe(),
        "heads": heads,
    });
    let path = out.join("gan_bundle.json");
    write_atomic(&path, serde_json::to_string(&bundle)?.as_bytes())?;
    println!("wrote {} and the checkpoints", path.display());
    Ok(())
}

fn vae_bundle(gpu: &Gpu, out: &Path) -> anyhow::Result<()> {
    let dir = Dataset::Mnist.default_dir();

    // A few epochs of training on a tiny set.
    let train = load(Dataset::Mnist, &dir, Split::Train, Some(TRAIN_IMAGES))?;
    let data = GpuDataset::upload(gpu, &train, "train")?;
    let vae = Vae::new(
        gpu,
        VaeConfig {
            latent: LATENT,
            batch: BATCH,
            adam: AdamConfig::keras(1e-3),
            seed: SEED,
            ..VaeConfig::default()
        },
    )?;
    let steps = data.batches(BATCH);
    let state = StepState::new(gpu, 2, steps * EPOCHS, 0)?;
    let ts = vae.train_step(gpu, &state, &data)?;
    for epoch in 0..EPOCHS {
        data.shuffle(gpu, SEED, epoch)?;
        gpu.run(&std::iter::repeat_n(&ts.step, steps).collect::<Vec<_>>())?;
    }
    let last = state.read_losses(gpu, 0)?;
    let ckpt = out.join("vae.safetensors");
    vae.checkpoint(gpu)?.save(&ckpt)?;

    // The fixed batch and noise, and the engine's loss on them.
    let test = load(Dataset::Mnist, &dir, Split::Test, Some(BATCH))?;
    let pixels: Vec<f32> = test.pixels.iter().map(|&b| b as f32 / 255.0).collect();
    assert_eq!(pixels.len(), BATCH * PIXELS);
    let eps: Vec<f32> = Philox::new(SEED, EPS_STREAM).normal_cpu(0, BATCH * LATENT);
    let (recon, kl) = vae.loss_on(gpu, &pixels, &eps)?;

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
