//! The engine's VAE loss (and the GAN's outputs) equal PyTorch's on the same weights, batch and
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
//!
//! `gan_matches_pytorch` does the same for the GAN (see its doc comment).

use crate::common::{gpu, mnist_dir};
use crate::{fixture_loader, gan_check_model};
use vae_vs_gan::data::{load, Dataset, Split, PIXELS};
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::models::gan::DHead;
use vae_vs_gan::models::gan_loss::GanLoss;
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;

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
            ..VaeConfig::default()
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
    let test = load(Dataset::Mnist, &mnist_dir(), Split::Test, Some(last)).unwrap();
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
            ..VaeConfig::default()
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

/// Largest `|got - want| / (atol + rtol |want|)`; panics past 1.
fn all_within(what: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let (mut worst, mut at, mut max_err) = (0.0f64, 0, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g as f64 - w as f64).abs();
        let r = if g.is_finite() {
            err / (atol + rtol * (w as f64).abs())
        } else {
            f64::INFINITY
        };
        max_err = max_err.max(err);
        if r > worst {
            (worst, at) = (r, i);
        }
    }
    eprintln!(
        "{what}: max |engine - pytorch| {max_err:.3e}, worst {worst:.3} of tol (atol {atol:e} + rtol {rtol:e})"
    );
    assert!(
        worst <= 1.0,
        "{what}[{at}]: engine {}, pytorch {}: {worst:.2}x the tolerance atol {atol:e} + rtol {rtol:e}",
        got[at],
        want[at]
    );
}

/// The GAN's eval-mode outputs equal PyTorch's on the same weights, latents
/// and batch, for both discriminator heads, without PyTorch and without a
/// 5 MB weight fixture: `tests/it/gan_check_model.rs` rebuilds the check's model
/// bit for bit (seeded CPU init, batch norms and biases from an integer
/// hash), the fixture's `<head>_weights_hash` proves it is the model
/// PyTorch loaded, and `tests/fixtures/gan_pytorch_check.json` holds the
/// twin's float64 images G(z), logits D(real) and D(G(z)), and the losses
/// `d_loss = BCE(real, 1) + BCE(fake, 0)`, `g_loss = BCE(fake, 1)` (written
/// by `tools/check_with_pytorch.py --model gan`, see tools/README.md). This
/// checks every layer's checkpoint layout (the NHWC order of the 12544
/// dense features and of their batch norm, transposed-conv weights, the
/// flatten head's NCHW order), Keras `same` padding of the stride-2 convs
/// and transposed convs, eval-mode batch norm from the running statistics,
/// dropout off, the max pool, and the logits' sign convention.
///
/// Tolerances. Weights, z and pixels are the same f32 values on both sides;
/// the difference is the engine's f32 arithmetic vs PyTorch's f64. The
/// longest reduction is the 5x5 stride-1 transposed conv (6400 terms), and
/// the first batch norm divides by sqrt(var + 1e-3) ~ 0.035 to 0.045,
/// magnifying the dense output's absolute rounding but not its relative
/// one: activations carry relative errors of order 1e-6, and tanh only
/// shrinks them (its slope is at most 1). Images (in [-1, 1]): atol 2e-5 +
/// rtol 2e-5. Logits (|z| < 0.25 here, a 128- or 6272-term dense on
/// 3200-term conv outputs): atol 1e-5 + rtol 1e-5. The losses follow from
/// the logits (BCE's slope in the logit is at most 1, and d_loss adds two
/// means), so they get what the logit tolerance allows, atol 2.5e-5 and no
/// rtol; they check the loss definitions, whose mistakes move them by far
/// more (a sum for a mean by 8x, a swapped target by a mean logit: 7.6e-3
/// to 0.2 here). Measured on lavapipe when the
/// fixture was written: images 2.7e-6, logits 1.2e-7 at most, losses
/// 1.1e-8 at most, from PyTorch. Each layout mistake tried in the twin
/// (tools/README.md) moves the images by 1.39 or more (generator mistakes)
/// or some logit by 5e-2 or more (discriminator ones), thousands of times
/// these tolerances.
#[test]
fn gan_matches_pytorch() {
    let g = gpu();
    let f = fixture_loader::load("gan_pytorch_check");
    assert_eq!(f.int("latent"), gan_check_model::LATENT);
    assert_eq!(f.int("seed") as u64, gan_check_model::SEED);
    let (zshape, z) = f.tensor("z");
    let n = zshape[0];
    assert_eq!(zshape, [n, gan_check_model::LATENT]);
    let (_, idx) = f.tensor("indices");
    let (ishape, torch_images) = f.tensor("torch_images");
    assert_eq!(ishape, [n, PIXELS]);

    let last = idx.iter().map(|&i| i as usize).max().unwrap() + 1;
    let test = load(Dataset::Mnist, &mnist_dir(), Split::Test, Some(last)).unwrap();
    let real: Vec<f32> = idx
        .iter()
        .flat_map(|&i| {
            test.image(i as usize)
                .iter()
                .map(|&b| b as f32 / 255.0 * 2.0 - 1.0)
        })
        .collect();

    for head in [DHead::GlobalMaxPool, DHead::Flatten] {
        let h = head.name();
        let gan = gan_check_model::build(g, head).unwrap();
        let hash = gan_check_model::weights_hash(&gan.checkpoint(g).unwrap());
        let want = f.int(&format!("{h}_weights_hash")) as u64;
        assert_eq!(
            hash, want,
            "{h}: the rebuilt GAN's weights hash {hash:#x} is not the fixture's {want:#x}: the \
             seeded initialisation changed (rand / StdRng version, init order or formula, or \
             tests/it/gan_check_model.rs): regenerate the fixture as tools/README.md says"
        );
        let images = gan.generate(g, &z).unwrap();
        all_within(&format!("{h} images"), &images, &torch_images, 2e-5, 2e-5);
        let real_logits = gan.discriminate(g, &real).unwrap();
        let fake_logits = gan.discriminate(g, &images).unwrap();
        let (_, tr) = f.tensor(&format!("{h}_torch_real_logits"));
        let (_, tf) = f.tensor(&format!("{h}_torch_fake_logits"));
        all_within(&format!("{h} real logits"), &real_logits, &tr, 1e-5, 1e-5);
        all_within(&format!("{h} fake logits"), &fake_logits, &tf, 1e-5, 1e-5);
        let d_loss = bce_mean(&real_logits, 1.0) + bce_mean(&fake_logits, 0.0);
        let g_loss = bce_mean(&fake_logits, 1.0);
        within(
            &format!("{h} d_loss"),
            d_loss,
            f.scalar(&format!("{h}_torch_d_loss")),
            2.5e-5,
            0.0,
        );
        within(
            &format!("{h} g_loss"),
            g_loss,
            f.scalar(&format!("{h}_torch_g_loss")),
            2.5e-5,
            0.0,
        );
        // Every GAN loss of the engine's logits through the step's own
        // ops, against PyTorch's (mse_loss, relu, BCE) of its own logits:
        // each loss is at most Lipschitz max(1, |x| + 1) in each logit and a
        // batch mean, so logits within 1e-5 keep it within 2.5e-5 here
        // (|x| < 0.5 for this untrained model).
        for loss in GanLoss::ALL {
            let (d, gl) = loss.evaluate(g, &real_logits, &fake_logits).unwrap();
            for (side, v) in [("d", d), ("g", gl)] {
                let key = format!("{h}_torch_{}_{side}_loss", loss.name());
                within(&key, v, f.scalar(&key), 2.5e-5, 0.0);
            }
        }
    }
}
