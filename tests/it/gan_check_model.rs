//! The GAN of the PyTorch check, rebuilt bit for bit on any machine: shared
//! by `examples/pytorch_check_bundle.rs` (which saves it for
//! `tools/check_with_pytorch.py --model gan`) and `tests/it/pytorch_check.rs`
//! (which compares it with PyTorch's numbers in
//! `tests/fixtures/gan_pytorch_check.json`).
//!
//! Why not a trained checkpoint: the GAN has 1.28M parameters (5 MB as f32),
//! too big for a fixture, and GPU training is not bit-reproducible across
//! machines. The seeded initialisation is: [`Gan::new`] draws every kernel
//! on the CPU from `StdRng::seed_from_u64(SEED)` (ChaCha12; rand pinned by
//! Cargo.lock; IEEE f32 arithmetic only). Its batch norms, though, start at
//! gamma 1, beta 0, running mean 0, variance 1 and its biases at 0, which
//! would leave the batch norms' feature order and the biases unchecked, so
//! [`build`] overwrites every such vector with values from an integer hash
//! of (tensor name, index) ([`perturbed`]): exact on every machine, and of
//! roughly the size of the activations they normalise. [`weights_hash`]
//! pins the result: the fixture stores the hash of the weights PyTorch used.
#![allow(dead_code)]

use std::path::Path;

use vae_vs_gan::gpu::Gpu;
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::models::gan::{DHead, Gan, GanConfig, GanOptions};
use vae_vs_gan::optim::adam::AdamConfig;

pub const SEED: u64 = 7;
pub const LATENT: usize = 2;
pub const BATCH: usize = 8;
/// Philox stream of the fixed latents (the model uses streams 1 to 6).
pub const Z_STREAM: u32 = 9;

/// FNV-1a, 64 bits, over `bytes` continuing from `h`.
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// A uniform value in [0, 1) (a multiple of 2^-24, so exact in f32) from
/// the tensor's salt and the element index.
fn unit(salt: u32, i: usize) -> f32 {
    // splitmix32-style finaliser of (salt, i).
    let mut x = salt ^ (i as u32).wrapping_mul(0x9e37_79b9);
    x = (x ^ (x >> 16)).wrapping_mul(0x7feb_352d);
    x = (x ^ (x >> 15)).wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    (x >> 8) as f32 / 16_777_216.0
}

/// The replacement of the init value of tensor `name`: `offset + scale * u`
/// with u uniform in [0, 1), or `None` for tensors left at their init.
pub fn perturbed(name: &str) -> Option<(f32, f32)> {
    // Scales chosen with the PyTorch twin on this z: the dense features
    // have std ~ 0.016 (so running variances of 2e-4 to 8e-4, near eps 1e-3),
    // the two convT outputs ~ 0.35 and ~ 0.5; the tanh input ends with std
    // ~ 1 and 2.5% of the pixels beyond |0.99|.
    Some(match name {
        "generator.1.weight" | "generator.6.weight" | "generator.9.weight" => (0.5, 1.0),
        "generator.1.bias" | "generator.6.bias" | "generator.9.bias" => (-0.25, 0.5),
        "generator.1.running_mean" => (-0.01, 0.02),
        "generator.1.running_var" => (2e-4, 6e-4),
        "generator.6.running_mean" | "generator.9.running_mean" => (-0.1, 0.2),
        "generator.6.running_var" | "generator.9.running_var" => (0.02, 0.1),
        "discriminator.0.bias" | "discriminator.3.bias" => (-0.1, 0.2),
        "discriminator.7.bias" | "discriminator.8.bias" => (0.1, 0.0),
        _ => return None,
    })
}

/// The check's GAN with `head`: [`Gan::new`] (latent 2, batch 8, seed 7),
/// then the vectors of [`perturbed`] overwritten.
pub fn build(gpu: &Gpu, head: DHead) -> vae_vs_gan::Result<Gan> {
    build_with(gpu, head, GanOptions::default())
}

/// [`build`] with training `options` (the GAN loss of the one-step check):
/// the same weights, whatever the options.
pub fn build_with(gpu: &Gpu, head: DHead, options: GanOptions) -> vae_vs_gan::Result<Gan> {
    let gan = Gan::new(
        gpu,
        GanConfig {
            latent: LATENT,
            batch: BATCH,
            adam_g: AdamConfig::keras(1e-4),
            adam_d: AdamConfig::keras(1e-4),
            seed: SEED,
            head,
            options,
        },
    )?;
    let mut ck = gan.checkpoint(gpu)?;
    for (name, (_, data)) in ck.tensors.iter_mut() {
        if let Some((offset, scale)) = perturbed(name) {
            let salt = fnv1a(FNV_OFFSET, name.as_bytes()) as u32;
            for (i, v) in data.iter_mut().enumerate() {
                *v = offset + scale * unit(salt, i);
            }
        }
    }
    gan.restore(gpu, &ck, Path::new("<gan pytorch check>"))?;
    Ok(gan)
}

/// FNV-1a 64 of the checkpoint's weights (Adam moments left out): for each
/// tensor in name order, the name's bytes, a zero byte, then the f32 values'
/// little-endian bytes; folded to 52 bits so that JSON keeps it exact.
/// `tools/check_with_pytorch.py` computes the same over the file it loads.
pub fn weights_hash(ck: &Checkpoint) -> u64 {
    let mut h = FNV_OFFSET;
    for (name, (_, data)) in &ck.tensors {
        if name.starts_with("optimizer.") {
            continue;
        }
        h = fnv1a(h, name.as_bytes());
        h = fnv1a(h, &[0]);
        for v in data {
            h = fnv1a(h, &v.to_le_bytes());
        }
    }
    (h ^ (h >> 52)) & ((1 << 52) - 1)
}
