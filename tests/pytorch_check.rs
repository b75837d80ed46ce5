//! The engine's VAE loss equals PyTorch's on the same weights, batch and
//! noise, without PyTorch: `tests/fixtures/vae_pytorch_check.safetensors`
//! holds the weights of an engine checkpoint (latent 2, trained 32 steps;
//! written by `examples/pytorch_check_bundle.rs`), and
//! `tests/fixtures/vae_pytorch_check.json` the batch (MNIST test image
//! indices), the noise `eps` and the reconstruction and KL terms that
//! `tools/check_with_pytorch.py` computed with the PyTorch twin in float64
//! (see tools/README.md). This checks the checkpoint names and layouts
//! (NCHW-flattened dense weights, transposed-conv weights, Keras `same`
//! cropping) and the loss definition end to end against an independent
//! implementation.
//!
//! Tolerance. The weights, pixels and eps are the same f32 values on both
//! sides; the difference is the engine's f32 arithmetic on the GPU vs
//! PyTorch's f64. Forward reductions are at most 2304 long (dense) and 576
//! (64-channel 3x3 conv), so activations and logits carry relative errors of
//! order 1e-6; a logit error dz moves a pixel's BCE by at most |dz|, and the
//! reconstruction sums 784 pixels per image (~200 to 360 nats each here) in
//! f32: even adding the errors linearly (784 x 1e-5) plus the f32 rounding of
//! the 784-term sum (784 x 6e-8 x 360 in the worst order) stays below 3e-2,
//! and random-sign errors give ~1e-4. rtol 1e-5 (2.6e-3 nats on 259) plus
//! atol 1e-4 covers that with margin for GPUs whose exp/log are a few ulp
//! off, and is still ~400x tighter than the smallest layout mistake we
//! tried (a flipped decoder kernel moves the loss by 1.2 nats; an NHWC
//! instead of NCHW flatten by 2.6; a crop off by one by 13 or more). The KL
//! (~0.7 nats, 2 latents per image, from the encoder's f32 mean/log-variance)
//! gets atol 1e-5 + rtol 1e-5. Measured on lavapipe when the fixture was
//! written: recon 2.7e-6 and KL 6.2e-8 away from PyTorch.

mod common;
mod fixture_loader;

use common::gpu;
use vae_vs_gan::data::{load, Dataset, Split, PIXELS};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::Checkpoint;

const NAME: &str = "vae_pytorch_check";

fn within(what: &str, got: f64, want: f64, atol: f64, rtol: f64) {
    let err = (got - want).abs();
    let tol = atol + rtol * want.abs();
    eprintln!("{what}: engine {got:.9}, pytorch {want:.9}, |diff| {err:.3e} (tol {tol:.3e})");
    assert!(
        got.is_finite() && err <= tol,
        "{what}: engine {got}, pytorch {want}, |diff| {err:e} > tol {tol:e}"
    );
}

#[test]
fn vae_loss_on_matches_pytorch() {
    let g = gpu();
    let f = fixture_loader::load(NAME);
    let latent = f.int("latent");
    let (ishape, idx) = f.tensor("indices");
    let n = ishape[0];
    let (eshape, eps) = f.tensor("eps");
    assert_eq!(eshape, [n, latent]);
    let indices: Vec<usize> = idx.iter().map(|&i| i as usize).collect();

    // The checkpoint holds the weights only: the Adam moments do not enter
    // the loss, so they are restored as zeros.
    let path = fixture_loader::dir().join(format!("{NAME}.safetensors"));
    let mut ck = Checkpoint::load(&path).unwrap();
    let vae = Vae::new(
        g,
        VaeConfig {
            latent,
            batch: n,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
            binarize: false,
        },
    )
    .unwrap();
    let weights = ck.clone();
    for (name, shape) in vae.checkpoint_entries() {
        if name.starts_with("optimizer.") {
            assert!(!ck.tensors.contains_key(&name), "{name} in the fixture");
            let zeros = vec![0.0; shape.iter().product()];
            ck.insert(&name, &shape, zeros).unwrap();
        }
    }
    vae.restore(g, &ck, &path).unwrap();
    // The restored weights read back in PyTorch layout are the file's, bit for bit.
    let back = vae.checkpoint(g).unwrap();
    for (name, (shape, data)) in &weights.tensors {
        assert_eq!(
            back.tensors.get(name),
            Some(&(shape.clone(), data.clone())),
            "{name} after restore"
        );
    }

    let last = indices.iter().max().unwrap() + 1;
    let test = load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Test,
        Some(last),
    )
    .unwrap();
    let pixels: Vec<f32> = indices
        .iter()
        .flat_map(|&i| test.image(i).iter().map(|&b| b as f32 / 255.0))
        .collect();
    assert_eq!(pixels.len(), n * PIXELS);

    let (recon, kl) = vae.loss_on(g, &pixels, &eps).unwrap();
    within("recon", recon, f.scalar("torch_recon"), 1e-4, 1e-5);
    within("kl", kl, f.scalar("torch_kl"), 1e-5, 1e-5);
}

#[test]
fn vae_loss_on_refuses_mismatched_inputs() {
    let g = gpu();
    let vae = Vae::new(
        g,
        VaeConfig {
            latent: 2,
            batch: 4,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
            binarize: false,
        },
    )
    .unwrap();
    let px = vec![0.5; 3 * PIXELS];
    for (p, e) in [(&px[..], 5), (&px[..100], 6), (&px[..0], 0)] {
        let err = vae.loss_on(g, p, &vec![0.0; e]).unwrap_err().to_string();
        assert!(err.contains("vae loss_on"), "{err}");
    }
    assert!(vae.loss_on(g, &px, &[0.0; 6]).is_ok());
}
