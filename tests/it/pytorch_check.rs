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
//! `gan_matches_pytorch` does the same for the GAN (see its doc comment), and
//! `gan_step_matches_pytorch` for one whole GAN training step per loss.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::checks::gan_step::scale;
use crate::checks::whole_step::{gpu_normals, GRAD_RTOL};
use crate::checks::U;
use crate::common::{gpu, mnist_dir};
use crate::{fixture_loader, gan_check_model};
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::{load, Dataset, GpuDataset, Split, PIXELS};
use vae_vs_gan::gpu::{Gpu, StepState};
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::models::gan::{DHead, Gan, GanOptions, SLOT_D, SLOT_G};
use vae_vs_gan::models::gan_cpu::{GanCpu, GanCpuStep};
use vae_vs_gan::models::gan_loss::GanLoss;
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::nn::Param;
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::optim::adam::AdamConfig;

const NAME: &str = "vae_pytorch_check";
const STEP_FIXTURE: &str = "gan_step_pytorch_check";
/// Adam's own f32 arithmetic per step at lr 1e-3 (tests/checks/whole_step.rs).
const ADAM_ATOL_AT_1E3: f64 = 5e-7;

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
                assert!(
                    f.has(&key),
                    "gan_pytorch_check.json has no {key}: the engine has a GAN loss the fixture \
                     lacks: regenerate it (tools/check_with_pytorch.py --model gan, tools/README.md)"
                );
                within(&key, v, f.scalar(&key), 2.5e-5, 0.0);
            }
        }
    }
}

// ------------------------------------------------------------ one training step

/// The f64 unit roundoff, 2^-53.
const U64: f64 = 1.0 / 9_007_199_254_740_992.0;
/// The summed reduction lengths along the step's deepest gradient chain
/// (tests/checks/gan_step.rs derives it for this architecture at batch 8).
const K_CHAIN: f64 = 26_600.0;
/// Batch-norm running-average decay (Keras).
const BN_MOMENTUM: f64 = 0.99;

/// What the step fixture keeps of a tensor (PyTorch layout, flat): sum,
/// sum of |x|, sum of squares, max |x|, and the values at the fixture's
/// `digest_index`.
#[derive(Clone, Debug)]
struct Digest {
    sum: f64,
    sum_abs: f64,
    sum_sq: f64,
    max_abs: f64,
    at: Vec<f64>,
}

/// Neumaier's compensated sum: within a few ulp of the exact sum, as the
/// twin's `math.fsum` is within half of one, so the digests' own summation
/// order does not enter the tight comparison.
fn sum_exact(v: impl Iterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in v {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

impl Digest {
    fn of(v: &[f64], idx: &[usize]) -> Digest {
        Digest {
            sum: sum_exact(v.iter().copied()),
            sum_abs: sum_exact(v.iter().map(|x| x.abs())),
            sum_sq: sum_exact(v.iter().map(|x| x * x)),
            max_abs: v.iter().fold(0.0, |m, x| m.max(x.abs())),
            at: idx.iter().map(|&i| v[i]).collect(),
        }
    }

    fn from_json(v: &Value) -> Digest {
        let num = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("digest: no {k} in {v}"))
        };
        Digest {
            sum: num("sum"),
            sum_abs: num("sum_abs"),
            sum_sq: num("sum_sq"),
            max_abs: num("max_abs"),
            at: v["at"]
                .as_array()
                .expect("digest: no values")
                .iter()
                .map(|x| x.as_f64().expect("digest value"))
                .collect(),
        }
    }

    /// The largest each field can move when every value `x_i` moves by at
    /// most `tol_i`: the sums by sum tol (sum of squares: 2|x| tol + tol^2
    /// per value), the maximum by max tol, each value by its own.
    fn tolerance(x: &[f64], tol: &[f64], idx: &[usize]) -> Digest {
        Digest {
            sum: sum_exact(tol.iter().copied()),
            sum_abs: sum_exact(tol.iter().copied()),
            sum_sq: sum_exact(x.iter().zip(tol).map(|(x, t)| 2.0 * x.abs() * t + t * t)),
            max_abs: tol.iter().fold(0.0, |m: f64, t| m.max(*t)),
            at: idx.iter().map(|&i| tol[i]).collect(),
        }
    }

    /// Fieldwise `|self - o|`.
    fn diff(&self, o: &Digest) -> Digest {
        Digest {
            sum: (self.sum - o.sum).abs(),
            sum_abs: (self.sum_abs - o.sum_abs).abs(),
            sum_sq: (self.sum_sq - o.sum_sq).abs(),
            max_abs: (self.max_abs - o.max_abs).abs(),
            at: self
                .at
                .iter()
                .zip(&o.at)
                .map(|(a, b)| (a - b).abs())
                .collect(),
        }
    }

    /// Fieldwise `self + o` (tolerances that add).
    fn plus(&self, o: &Digest) -> Digest {
        Digest {
            sum: self.sum + o.sum,
            sum_abs: self.sum_abs + o.sum_abs,
            sum_sq: self.sum_sq + o.sum_sq,
            max_abs: self.max_abs + o.max_abs,
            at: self.at.iter().zip(&o.at).map(|(a, b)| a + b).collect(),
        }
    }

    fn fields(&self) -> Vec<(String, f64)> {
        let mut f = vec![
            ("sum".to_string(), self.sum),
            ("sum_abs".into(), self.sum_abs),
            ("sum_sq".into(), self.sum_sq),
            ("max_abs".into(), self.max_abs),
        ];
        f.extend(
            self.at
                .iter()
                .enumerate()
                .map(|(k, &v)| (format!("value {k}"), v)),
        );
        f
    }
}

/// Every comparison of one side (engine GPU or f64 reference) against the
/// twin: the worst ratio of difference to tolerance, and the failures.
#[derive(Default)]
struct Comparison {
    worst: (f64, String),
    failures: Vec<String>,
}

impl Comparison {
    fn value(&mut self, what: &str, got: f64, want: f64, tol: f64) {
        let err = (got - want).abs();
        let r = if !got.is_finite() {
            f64::INFINITY
        } else if err == 0.0 {
            0.0
        } else {
            err / tol
        };
        if r > self.worst.0 || r.is_nan() {
            self.worst = (r, what.to_string());
        }
        if r.is_nan() || r > 1.0 {
            self.failures.push(format!(
                "{what}: got {got:e}, pytorch {want:e}, |diff| {err:.3e} = {r:.3} x the tolerance {tol:.3e}"
            ));
        }
    }

    fn digest(&mut self, what: &str, got: &Digest, want: &Digest, tol: &Digest) {
        assert_eq!(got.at.len(), want.at.len(), "{what}: digest length");
        for (((name, g), (_, w)), (_, t)) in got
            .fields()
            .into_iter()
            .zip(want.fields())
            .zip(tol.fields())
        {
            self.value(&format!("{what} {name}"), g, w, t);
        }
    }

    /// Print the worst and fail with every failure (the first 20).
    fn finish(self, who: &str) -> Vec<String> {
        eprintln!(
            "  {who}: worst {:.3e} of the tolerance ({})",
            self.worst.0, self.worst.1
        );
        self.failures
            .into_iter()
            .take(20)
            .map(|f| format!("{who}: {f}"))
            .collect()
    }
}

/// For each PyTorch flat index of parameter `p`, the engine element there.
fn torch_order(p: &Param) -> Vec<usize> {
    let idx: Vec<f32> = (0..p.numel()).map(|i| i as f32).collect();
    p.layout
        .to_torch(p.shape(), &idx)
        .into_iter()
        .map(|i| i as usize)
        .collect()
}

fn permute(v: &[f64], order: &[usize]) -> Vec<f64> {
    order.iter().map(|&i| v[i]).collect()
}

/// One side's step, in PyTorch layout by checkpoint name: each parameter's
/// and running statistic's change over the step, each gradient, the losses.
struct StepResult {
    update: BTreeMap<String, Vec<f64>>,
    grad: BTreeMap<String, Vec<f64>>,
    running: BTreeMap<String, Vec<f64>>,
    d_loss: f64,
    g_loss: f64,
}

/// The f64 reference's step from `cpu` (the GPU model's state before the
/// step), with the latents `z` of the first iteration (`None`: all drawn in
/// f64 from Philox, the twin's draws).
fn cpu_step(
    gan: &Gan,
    cpu: &GanCpu<f64>,
    step: u64,
    order: &[u32],
    images: &Images,
    z: Option<Vec<f64>>,
) -> (StepResult, GanCpuStep<f64>, GanCpu<f64>) {
    let mut after = cpu.clone();
    let cs = match z {
        Some(z) => after.train_step_with_noise(step, order, &images.pixels, z),
        None => after.train_step(step, order, &images.pixels),
    }
    .unwrap();
    let mut r = StepResult {
        update: BTreeMap::new(),
        grad: BTreeMap::new(),
        running: BTreeMap::new(),
        d_loss: cs.d_loss,
        g_loss: cs.g_loss,
    };
    for (((p, c0), c1), (gname, g)) in gan
        .params()
        .iter()
        .zip(&cpu.params)
        .zip(&after.params)
        .zip(&cs.grads)
    {
        assert!(p.name == c0.name && p.name == *gname, "parameter order");
        let o = torch_order(p);
        let d: Vec<f64> = c1.value.iter().zip(&c0.value).map(|(a, b)| a - b).collect();
        r.update.insert(p.name.clone(), permute(&d, &o));
        r.grad.insert(p.name.clone(), permute(g, &o));
    }
    for ((name, r0), (_, r1)) in cpu.running.iter().zip(&after.running) {
        let d = r1.iter().zip(r0).map(|(a, b)| a - b).collect();
        r.running.insert(name.clone(), d);
    }
    (r, cs, after)
}

/// Which units the GPU's step put on the other side of a LeakyReLU kink or
/// a max-pool switch than the reference from the same z did: a flip makes
/// the comparison ill-posed (tests/checks/gan_step.rs), so it is reported
/// as such rather than as an error of the engine.
fn flips(g: &Gpu, ts: &vae_vs_gan::models::gan::TrainStep, cs: &GanCpuStep<f64>) -> Vec<String> {
    let mut out = Vec::new();
    for ((name, t), (_, want)) in ts.leaky_outputs.iter().zip(&cs.leaky_outputs) {
        let got = t.read_f32(g).unwrap();
        let n = got
            .iter()
            .zip(want)
            .filter(|(a, b)| (**a > 0.0) != (**b > 0.0))
            .count();
        if n > 0 {
            out.push(format!(
                "{n} units of {name} on the other side of the LeakyReLU kink"
            ));
        }
    }
    for ((name, t), (_, want)) in ts.pool_argmax.iter().zip(&cs.pool_argmax) {
        let got = t.read_u32(g).unwrap();
        let n = got.iter().zip(want).filter(|(a, b)| a != b).count();
        if n > 0 {
            out.push(format!("{n} max-pool winners of {name} differ"));
        }
    }
    out
}

/// One training step per GAN loss equals the PyTorch twin's, for both
/// discriminator heads, without PyTorch at test time.
/// `tests/fixtures/gan_step_pytorch_check.json` holds what
/// `tools/check_with_pytorch.py --model gan-step` computed in float64 with
/// torch autograd for the check model of `tests/it/gan_check_model.rs`
/// (pinned by its weights hash): step index 2 (so Adam's t = 3 and every
/// Philox draw at counter 2) on a dataset of the MNIST training images
/// 0..40 in a fixed shuffled order (batch 2 of 5, images 16..24 of the
/// order, for the one-iteration losses); the twin reimplements, from the
/// engine's documented rules, Philox4x32-10, the dropout mask rule, Keras
/// batch norm in training mode (biased variance, running averages at
/// momentum 0.99), Keras Adam, PyTorch RMSprop and each loss. Per loss and
/// head it keeps `d_loss`, `g_loss` and digests ([`Digest`]: sum, sum of
/// |x|, sum of squares, max |x| and 16 values at fixed pseudo-random
/// indices, PyTorch layout) of every parameter's change over the step, of
/// every gradient and of every running statistic's change. A layout or
/// formula mistake moves the values and the sum of squares (tools/README.md
/// lists the mistakes tried and by how much).
///
/// Per loss of [`GanLoss::ALL`] (a loss the fixture lacks fails: regenerate
/// it; a loss the fixture has and `ALL` lacks is reported and skipped) and
/// head, the test builds the check model with that loss, runs ONE engine
/// step ([`Gan::train_step`] on a [`GpuDataset`] of those images with the
/// fixture's order as its permutation, the step counter at 2), and runs the
/// f64 reference ([`GanCpu::train_step`]) from the same state twice: with
/// every latent drawn in f64 (the twin's z: the fixture's z must equal
/// `Philox::normal_cpu`'s) and with the GPU's own z (what its f32 Box-Muller
/// drew, within WGSL's `NORMAL_ATOL`).
///
/// Tolerances (per value `x_i` first; a digest field then gets what its
/// values' tolerances `t_i` allow: the sums `sum t_i`, the sum of squares
/// `sum 2|x_i| t_i + t_i^2`, the maximum `max t_i`, a sampled value its own):
///
/// - **f64 reference vs twin** (the reference with the twin's z): both
///   f64, the same formulas, only the order of every reduction differs, so
///   the step's relative rounding bound is `4 u64 sqrt(K)` (u64 = 2^-53, K
///   = 26,600 the deepest chain's summed reduction lengths, as
///   tests/checks/gan_step.rs derives: 7.2e-14). Gradients `4 u64 sqrt(K)
///   (max|g| + |g_i|)`; the change of a parameter through Adam (t = 3, zero
///   moments: an update of `lr c g / (|g| sqrt(1-b2) + eps)`, a normalised
///   gradient) moves by at most `2 lr t_g,i / |g_i|` (capped at 2.01 lr, as
///   `whole_step::adam_step_tol` derives) plus `4 u64 |p|` (the difference
///   of two f64 parameters); a running statistic's change `0.01 (s - r)` by
///   `0.01 x 2 x 4 u64 sqrt(K) max|s| + 4 u64 |r|`; `d_loss` by `4 u64
///   sqrt(K) |d_loss|`, `g_loss` as well plus the first-order effect of D's
///   parameter differences, `2 sum_i |dg_loss/dp_i| t_p,i`.
/// - **Engine GPU vs twin**: the f32 step against the reference from the
///   GPU's own z is what tests/checks/gan_step.rs bounds, with the same
///   formulas and u = 2^-24 (`4 u sqrt(K)` = 3.9e-5 of max|g| plus the fp32
///   contract's 1e-4 |g_i| per gradient; `whole_step::adam_step_tol` per
///   parameter; running statistics; losses), computed here from the
///   reference's values. Two terms are added: how far the reference itself
///   moves between the twin's z and the GPU's (computed, per digest field,
///   from the two reference runs: the exact effect of the GPU's normal
///   error, ~1e-6 on lavapipe, up to WGSL's 4e-3 elsewhere) and the tight
///   tolerance above. A GPU unit on the other side of a LeakyReLU kink or a
///   max-pool switch than the reference from the same z would make the
///   comparison ill-posed: when the GPU comparison fails, the failure says
///   whether that happened.
///
/// What it catches (tools/README.md has the table): each deliberate
/// mistake tried in the twin failed the test for every loss and head it
/// changes, the GPU comparison by 9.3 to 5e7 times its tolerance and the
/// f64 reference's by 4e9 or more: Adam with PyTorch's eps placement (the
/// smallest: `generator.1`'s gradients are ~1e-6, where eps matters),
/// Adam's t one step off, running averages at momentum 0.01, the running
/// variance unbiased, D's targets swapped, the dropout mask laid out NCHW,
/// the G update drawing the D update's masks. With the correct twin the
/// worst ratios on lavapipe are 0.39 (GPU) and 0.24 (reference).
///
/// The Wasserstein GAN (when [`GanLoss::ALL`] has it; the fixture has it
/// from the twin: 5 critic iterations, each on its own batch, latents and
/// dropout streams, RMSprop and clipping): the reference is held to the
/// twin with the tight tolerance times n_critic² (each critic iteration
/// starts from the previous one's parameters, whose rounding differences it
/// carries: at most n_critic chains of at most n_critic iterations), and the
/// GPU to the reference by its own whole-step check (tests/it/gan_options.rs,
/// `GanLoss::ALL`'s every loss): a GPU-vs-twin tolerance would have to bound
/// how a unit near zero in one critic iteration's RMSprop update (sign-like:
/// `lr g / (0.1 |g| + eps)`) moves the next iteration's gradients, which no
/// rounding argument gives.
#[test]
fn gan_step_matches_pytorch() {
    let g = gpu();
    let path = fixture_loader::dir().join(format!("{STEP_FIXTURE}.json"));
    let f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let int = |k: &str| {
        f[k].as_u64()
            .unwrap_or_else(|| panic!("{STEP_FIXTURE}: no {k}")) as usize
    };
    assert_eq!(int("latent"), gan_check_model::LATENT);
    assert_eq!(int("batch"), gan_check_model::BATCH);
    assert_eq!(int("seed") as u64, gan_check_model::SEED);
    assert_eq!(f["split"], "train");
    let (b, l, seed) = (
        gan_check_model::BATCH,
        gan_check_model::LATENT,
        gan_check_model::SEED,
    );
    let step = int("step") as u64;
    let ints = |k: &str| -> Vec<usize> {
        f[k].as_array()
            .unwrap_or_else(|| panic!("{STEP_FIXTURE}: no {k}"))
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect()
    };
    let indices = ints("indices");
    let order: Vec<u32> = ints("order").into_iter().map(|i| i as u32).collect();
    let n_critic = int("n_critic");

    // The twin's Philox and Box-Muller are the engine's: its z of every
    // stream equals `Philox::normal_cpu`'s (both f64 from libm's log and cos).
    for (stream, zs) in f["z"].as_object().unwrap() {
        let want: Vec<f64> =
            Philox::new(seed, stream.parse().unwrap()).normal_cpu(step as u32, b * l);
        for (a, w) in zs.as_array().unwrap().iter().zip(&want) {
            let a = a.as_f64().unwrap();
            assert!(
                (a - w).abs() <= 4.0 * U64 * w.abs().max(1.0),
                "stream {stream}: the twin's z {a} is not the engine's {w}"
            );
        }
    }

    // The dataset: the fixture's MNIST training images, in its order.
    let last = indices.iter().max().unwrap() + 1;
    let train = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(last)).unwrap();
    let images = Images {
        pixels: indices
            .iter()
            .flat_map(|&i| train.image(i).to_vec())
            .collect(),
        labels: indices.iter().map(|&i| train.labels[i]).collect(),
    };
    let data = GpuDataset::upload(g, &images, "train").unwrap();
    data.perm.write_u32(g, &order).unwrap();
    let digest_index: BTreeMap<String, Vec<usize>> = f["digest_index"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let idx = v
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_u64().unwrap() as usize);
            (k.clone(), idx.collect())
        })
        .collect();
    let gpu_z = pollster::block_on(gpu_normals(g, seed, 1, b * l, step as usize + 1))
        .unwrap_or_else(|e| panic!("{e}"));
    let gpu_z = gpu_z[step as usize].clone();
    let twin_z: Vec<f64> = Philox::new(seed, 1).normal_cpu(step as u32, b * l);
    let dz = gpu_z
        .iter()
        .zip(&twin_z)
        .map(|(a, w)| (a - w).abs())
        .fold(0.0, f64::max);
    eprintln!("the GPU's z (f32 Box-Muller) is within {dz:.3e} of the twin's (f64)");

    let mut failures = Vec::new();
    let have: Vec<&str> = GanLoss::ALL.iter().map(|l| l.name()).collect();
    for head in [DHead::GlobalMaxPool, DHead::Flatten] {
        let h = head.name();
        let steps = &f["steps"][h];
        for name in steps.as_object().unwrap().keys() {
            if !have.contains(&name.as_str()) {
                eprintln!(
                    "{h}: the fixture's {name} step is not a GanLoss of this engine: skipped"
                );
            }
        }
        for loss in GanLoss::ALL {
            let rec = steps.get(loss.name()).unwrap_or_else(|| {
                panic!(
                    "{STEP_FIXTURE}.json has no {h} step for the GAN loss {}: regenerate it with \
                     tools/check_with_pytorch.py --model gan-step (tools/README.md)",
                    loss.name()
                )
            });
            failures.extend(step_matches(
                g,
                head,
                loss,
                rec,
                &f,
                (step, &order, &images, &data),
                &digest_index,
                &gpu_z,
                n_critic,
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One loss and head of [`gan_step_matches_pytorch`]: the failures.
#[allow(clippy::too_many_arguments)]
fn step_matches(
    g: &Gpu,
    head: DHead,
    loss: GanLoss,
    rec: &Value,
    f: &Value,
    (step, order, images, data): (u64, &[u32], &Images, &GpuDataset),
    digest_index: &BTreeMap<String, Vec<usize>>,
    gpu_z: &[f64],
    n_critic: usize,
) -> Vec<String> {
    let (h, lname) = (head.name(), loss.name());
    let who = format!("{h} {lname}");
    eprintln!("{who}:");
    let options = GanOptions {
        loss,
        ..GanOptions::default()
    };
    let gan = gan_check_model::build_with(g, head, options).unwrap();
    let hash = gan_check_model::weights_hash(&gan.checkpoint(g).unwrap());
    let want = f["weights_hash"][h].as_u64().unwrap();
    assert_eq!(
        hash, want,
        "{h}: the rebuilt GAN's weights hash {hash:#x} is not the step fixture's {want:#x}: the \
         seeded initialisation changed: regenerate the fixtures as tools/README.md says"
    );
    let wasserstein = lname == "wasserstein";
    let cpu: GanCpu<f64> = GanCpu::from_gpu(g, &gan).unwrap();

    // The reference with the twin's z (every latent drawn in f64), and with
    // the GPU's own z.
    let (fixz, cs_fix, _) = cpu_step(&gan, &cpu, step, order, images, None);
    let (gpuz, cs_gpu, _) = cpu_step(&gan, &cpu, step, order, images, Some(gpu_z.to_vec()));

    // The engine's step.
    let before = gan.checkpoint(g).unwrap();
    let state = StepState::new(g, 2, 1, step as u32).unwrap();
    let ts = gan.train_step(g, &state, data).unwrap();
    g.run(&[&ts.step]).unwrap();
    let after = gan.checkpoint(g).unwrap();
    let snap = state.snapshot(g).unwrap();
    let ring = snap.losses(step).unwrap();
    let delta = |name: &str| -> Vec<f64> {
        let (_, a) = &after.tensors[name];
        let (_, b0) = &before.tensors[name];
        a.iter()
            .zip(b0)
            .map(|(a, b)| *a as f64 - *b as f64)
            .collect()
    };
    let mut engine = StepResult {
        update: BTreeMap::new(),
        grad: BTreeMap::new(),
        running: BTreeMap::new(),
        d_loss: ring[0].values[SLOT_D] as f64,
        g_loss: ring[0].values[SLOT_G] as f64,
    };
    for p in gan.params() {
        let grad: Vec<f64> = p
            .grad
            .read_f32(g)
            .unwrap()
            .iter()
            .map(|&v| v as f64)
            .collect();
        engine
            .grad
            .insert(p.name.clone(), permute(&grad, &torch_order(p)));
        engine.update.insert(p.name.clone(), delta(&p.name));
    }
    for name in fixz.running.keys() {
        engine.running.insert(name.clone(), delta(name));
    }

    // Per-value tolerances: `sigma` the relative rounding scale, `u` the
    // unit roundoff of the stored values.
    let n_gen = gan.generator_params().len();
    let tolerances = |sigma: f64, u: f64, rtol: f64, adam_atol: f64| {
        let mut t: BTreeMap<(&str, String), Vec<f64>> = BTreeMap::new();
        for (pi, p) in gan.params().iter().enumerate() {
            let gr = &fixz.grad[&p.name];
            let gmax = gr.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            let tg: Vec<f64> = gr.iter().map(|x| sigma * gmax + rtol * x.abs()).collect();
            let lr = if pi < n_gen {
                gan.config.adam_g.lr
            } else {
                gan.config.adam_d.lr
            } as f64;
            let (_, p0) = &before.tensors[&p.name];
            let tp: Vec<f64> = (0..gr.len())
                .map(|i| {
                    let sens = (2.0 * lr * tg[i] / gr[i].abs()).min(2.01 * lr);
                    adam_atol * lr / 1e-3 + u * (p0[i] as f64).abs() + sens
                })
                .collect();
            t.insert(("grad", p.name.clone()), tg);
            t.insert(("update", p.name.clone()), tp);
        }
        for (name, (_, r0)) in before
            .tensors
            .iter()
            .filter(|(n, _)| n.contains(".running_"))
        {
            let k = cs_fix.bn_batch_stats.len() as f64;
            let smax = cs_fix
                .bn_batch_stats
                .iter()
                .flat_map(|s| {
                    s.iter()
                        .filter(|(n, _)| n == name)
                        .flat_map(|(_, v)| v.iter())
                })
                .fold(0.0f64, |m, x| m.max(x.abs()));
            let tr = r0
                .iter()
                .map(|r| {
                    k * ((1.0 - BN_MOMENTUM) * 2.0 * sigma * smax + 2.0 * u * (*r as f64).abs())
                })
                .collect();
            t.insert(("running", name.clone()), tr);
        }
        t
    };
    let iters = if wasserstein { n_critic as f64 } else { 1.0 };
    let tight_sigma = 4.0 * U64 * K_CHAIN.sqrt() * iters * iters;
    let tight = tolerances(tight_sigma, 4.0 * U64 * iters * iters, tight_sigma, 0.0);
    let loose = tolerances(scale(), U, GRAD_RTOL, ADAM_ATOL_AT_1E3);

    // g_loss runs on D after its update: the first-order effect of D's
    // parameter differences, sum |dg_loss/dp| t_p.
    let g_effect = |t: &BTreeMap<(&str, String), Vec<f64>>| -> f64 {
        cs_fix
            .g_loss_wrt_d
            .iter()
            .map(|(name, sens)| {
                let p = gan.params().into_iter().find(|p| p.name == *name).unwrap();
                let sens = permute(sens, &torch_order(p));
                sens.iter()
                    .zip(&t[&("update", name.clone())])
                    .map(|(d, t)| d.abs() * t)
                    .sum::<f64>()
            })
            .sum()
    };
    let want_d = rec["d_loss"].as_f64().unwrap();
    let want_g = rec["g_loss"].as_f64().unwrap();
    let tight_d = tight_sigma * want_d.abs();
    let tight_g = tight_sigma * want_g.abs() + 2.0 * g_effect(&tight);

    let mut cpu_cmp = Comparison::default();
    let mut gpu_cmp = Comparison::default();
    cpu_cmp.value("d_loss", fixz.d_loss, want_d, tight_d);
    cpu_cmp.value("g_loss", fixz.g_loss, want_g, tight_g);
    if !wasserstein {
        let sc = scale();
        let dz_d = (gpuz.d_loss - fixz.d_loss).abs();
        let dz_g = (gpuz.g_loss - fixz.g_loss).abs();
        gpu_cmp.value(
            "d_loss",
            engine.d_loss,
            want_d,
            sc * want_d.abs() + dz_d + tight_d,
        );
        let tol_g = sc * want_g.abs() + 2.0 * g_effect(&loose) + dz_g + tight_g;
        gpu_cmp.value("g_loss", engine.g_loss, want_g, tol_g);
    }
    for kind in ["update", "grad", "running"] {
        let fx = |r: &StepResult| match kind {
            "update" => r.update.clone(),
            "grad" => r.grad.clone(),
            _ => r.running.clone(),
        };
        let (fix_map, gz_map, eng_map) = (fx(&fixz), fx(&gpuz), fx(&engine));
        let recs = rec[kind].as_object().unwrap();
        assert_eq!(
            recs.keys().collect::<Vec<_>>(),
            fix_map.keys().collect::<Vec<_>>(),
            "{who}: the fixture's {kind} tensors are not the model's"
        );
        for (name, x) in &fix_map {
            let idx = &digest_index[name];
            let want = Digest::from_json(&recs[name]);
            let what = format!("{kind} {name}");
            let key = (kind, name.clone());
            let t_tight = Digest::tolerance(x, &tight[&key], idx);
            cpu_cmp.digest(&what, &Digest::of(x, idx), &want, &t_tight);
            if !wasserstein {
                let by_z = Digest::of(&gz_map[name], idx).diff(&Digest::of(x, idx));
                let t = Digest::tolerance(x, &loose[&key], idx)
                    .plus(&by_z)
                    .plus(&t_tight);
                gpu_cmp.digest(&what, &Digest::of(&eng_map[name], idx), &want, &t);
            }
        }
    }
    let mut failures = cpu_cmp.finish(&format!("{who} f64 reference vs pytorch"));
    if wasserstein {
        eprintln!("  {who} engine: checked against the f64 reference by tests/it/gan_options.rs");
        return failures;
    }
    let flipped = flips(g, &ts, &cs_gpu);
    let gpu_failures = gpu_cmp.finish(&format!("{who} engine (GPU) vs pytorch"));
    if !flipped.is_empty() && !gpu_failures.is_empty() {
        failures.push(format!(
            "{who}: the GPU's step is not comparable with the twin's: {}; (then) {}",
            flipped.join(", "),
            gpu_failures.join("; ")
        ));
    } else {
        failures.extend(gpu_failures);
    }
    failures
}
