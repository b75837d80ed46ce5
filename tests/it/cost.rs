//! The cost claim's measurements (src/compare/cost.rs): both models'
//! training steps counted alike. Memory excludes the datasets and whatever
//! else the device holds, for both; it includes at least the weights,
//! gradients and both Adam moments; GEMM work is counted per product and
//! scales with the batch. Speeds are measured, never asserted.

use crate::common::*;
use vae_vs_gan::compare::cost::{gan_step_cost, vae_step_cost, StepCost, TIMED_REPEATS};
use vae_vs_gan::data::{load, Dataset, GpuDataset, Split};
use vae_vs_gan::gpu::{Step, Tensor};
use vae_vs_gan::models::gan::{DHead, Gan, GanConfig};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::{Gpu, GpuOptions};

/// `n` MNIST training images on `g`.
fn images(g: &Gpu, n: usize) -> GpuDataset {
    let im = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(n)).expect("mnist");
    GpuDataset::upload(g, &im, "cost test").expect("upload")
}

/// A device of the test's own: memory is counted per device, and the
/// shared one is used by tests running beside this one.
fn own_gpu() -> Gpu {
    Gpu::with_options(GpuOptions::default()).expect("an adapter")
}

/// The article's VAE and GAN (the probe sets the batch).
fn vae_config() -> VaeConfig {
    VaeConfig {
        latent: 2,
        batch: 1,
        adam: AdamConfig::keras(1e-4),
        seed: 0,
        ..VaeConfig::default()
    }
}

fn gan_config() -> GanConfig {
    GanConfig {
        latent: 2,
        batch: 1,
        adam_g: AdamConfig::keras(1e-3),
        adam_d: AdamConfig::keras(1e-3),
        seed: 0,
        head: DHead::GlobalMaxPool,
        ..GanConfig::default()
    }
}

/// Both models' step costs at batch `b` on `gpu`.
fn costs(gpu: &Gpu, b: usize) -> (StepCost, StepCost) {
    let data = images(gpu, b);
    let v = vae_step_cost(gpu, &vae_config(), &data, b).expect("vae cost");
    let g = gan_step_cost(gpu, &gan_config(), &data, b).expect("gan cost");
    (v, g)
}

#[test]
fn cost_memory_excludes_datasets_and_other_tensors_for_both() {
    let g = &own_gpu();
    let (v1, g1) = costs(g, 8);
    // A larger dataset and 4 MiB of unrelated tensors on the device, held
    // while both are measured again: the figures must not move.
    let big = images(g, 512);
    let other = Tensor::zeros(g, &[1 << 20], "unrelated").unwrap();
    let (v2, g2) = costs(g, 8);
    assert_eq!(v1.peak_bytes, v2.peak_bytes, "VAE counts other memory");
    assert_eq!(g1.peak_bytes, g2.peak_bytes, "GAN counts other memory");
    drop((big, other));
    // Each includes its weights, gradients and two Adam moments (4 f32
    // per parameter), and something for activations on top.
    let params = |n: usize| 16 * n as u64;
    let vae = Vae::new(g, vae_config()).unwrap();
    let gan = Gan::new(g, gan_config()).unwrap();
    assert!(v1.peak_bytes > params(vae.param_count()), "{v1:?}");
    assert!(g1.peak_bytes > params(gan.param_count()), "{g1:?}");
    // Every timed submit gives a speed (the cost claim's spread).
    for c in [&v1, &g1] {
        assert_eq!(c.images_per_sec.len(), TIMED_REPEATS, "{c:?}");
        assert!(c.images_per_sec.iter().all(|&v| v > 0.0), "{c:?}");
    }
    assert_eq!((v1.batch, g1.batch), (8, 8));
}

#[test]
fn cost_gemm_work_scales_with_the_batch_for_both() {
    let (v8, g8) = costs(gpu(), 8);
    let (v16, g16) = costs(gpu(), 16);
    // Every GEMM of a training step has one dimension that is the batch
    // (or batch x pixels): the work per image is the same at any batch,
    // exactly (integer counts).
    assert_eq!(v8.gemm_flops_per_image, v16.gemm_flops_per_image);
    assert_eq!(g8.gemm_flops_per_image, g16.gemm_flops_per_image);
    // The GAN runs a generator and three discriminator batches per image,
    // with a 1.28 M parameter generator against the VAE's 70 k
    // parameters: far more work per image.
    assert!(v8.gemm_flops_per_image > 1e6, "{v8:?}");
    assert!(
        g8.gemm_flops_per_image > 10.0 * v8.gemm_flops_per_image,
        "{g8:?} vs {v8:?}"
    );
}

#[test]
fn a_dense_product_counts_two_flops_per_multiply_add() {
    let g = gpu();
    let (m, k, n) = (5, 7, 3);
    let x = Tensor::zeros(g, &[m, k], "x").unwrap();
    let w = Tensor::zeros(g, &[k, n], "w").unwrap();
    let y = Tensor::zeros(g, &[m, n], "y").unwrap();
    let mut s = Step::new("dense");
    let _scratch = vae_vs_gan::ops::dense::dense_forward(g, &mut s, &x, &w, None, &y).unwrap();
    assert_eq!(s.stats().gemm_flops, 2 * (m * k * n) as u64);
    let before = s.stats().gemm_flops;
    let _scratch = vae_vs_gan::ops::dense::dense_forward(g, &mut s, &x, &w, None, &y).unwrap();
    assert_eq!(
        s.stats().gemm_flops,
        2 * before,
        "each product counted once"
    );
}
