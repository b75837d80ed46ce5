//! Whole-step numerics of the GAN: 3 training steps (tiny preset: 64 real
//! MNIST images, batch 8, latent 2, Adam 1e-3 for both nets, fixed seeds)
//! on the GPU, each checked against one step of the f64 CPU reference
//! (src/models/gan_cpu/, built only from the ops' CPU references) taken
//! from the GPU's own state before it (parameters, Adam moments, running
//! statistics; at step 1 the initial ones), for both discriminator heads.
//! Step by step rather than two free-running trajectories: after a step
//! the two sides differ within tolerance, and the next forward's inputs
//! with them, which no rounding tolerance covers (on SwiftShader a
//! discriminator unit crossed its LeakyReLU kink at step 3 that way;
//! tests/checks/vae_step.rs has the VAE's case).
//!
//! Tolerances (u = 2^-24, the f32 unit roundoff), every step:
//!
//! - **Gradients**, per parameter p and element i:
//!   `|g_gpu - g_cpu| <= 4 u sqrt(K) max|g_cpu,p| + 1e-4 |g_cpu,i|`, K =
//!   [`K_CHAIN`]. Rounding errors of a length-k f32 sum grow like u sqrt(k)
//!   relative to the sum of |terms|, and along a chain of reductions the
//!   relative errors add (independently: their squares add), so the
//!   deepest gradient, the generator's first layer, carries ~u sqrt(sum of
//!   the chain's lengths). That chain, per output element: the generator
//!   forward (dense 2, batch-norm statistics over 8 rows, convT1 25 x 256 =
//!   6400, BN over 392, convT2 <= 9 x 128 = 1152, BN over 1568, convT3 <=
//!   9 x 64 = 576), the discriminator forward on the fake batch (25, 25 x
//!   64 = 1600, head dense 128 or 6272), its backward to the images (dense
//!   1, d2 backward data <= 9 x 128, d1 backward data <= 9 x 64), the
//!   generator's backward (convT3 backward data 25, BN 1568, convT2 1600,
//!   BN 392, convT1 25 x 128 = 3200, BN 8, dense weights 8): ~20,400 with
//!   the max-pool head, ~26,500 with the flatten head; K = 26,600 bounds
//!   both (4 u sqrt(K) = 3.9e-5 of max|g|). The terms of one parameter's
//!   gradient are on the scale of its largest element and cancel (bias and
//!   batch-norm beta gradients sum dy of both signs), hence an atol scaled
//!   by max|g| of that parameter, plus the contract's fp32 rtol 1e-4.
//!   The z draws enter exactly: the reference takes the GPU's own f32
//!   draws (`whole_step::gpu_normals`; see tests/checks/vae_step.rs), not its f64
//!   Box-Muller, whose distance WGSL bounds only by 4e-3.
//!   A LeakyReLU whose input lies within the GPU's forward error of 0, or
//!   a max pool whose top two values are that close, could take the other
//!   branch on the GPU: a derivative of 1 instead of 0.2 at one unit (its
//!   gradient contribution off by 80%), or the gradient routed to another
//!   position, which no rounding tolerance covers. The step exposes its
//!   LeakyReLU outputs and max-pool winners (`TrainStep::leaky_outputs`,
//!   `pool_argmax`), so after every step the check compares the GPU's side
//!   of every kink and every winner with the CPU's, prints the forward
//!   difference, the CPU's smallest margin and how many units lie within
//!   that difference of their switch point, and requires no flip (with
//!   these seeds: none, on lavapipe and SwiftShader; at most a handful of
//!   units per tensor are within reach, see the output; the VAE's test has
//!   its reference follow the GPU's branch at such units instead,
//!   `models::kink`). A flip would make the comparison ill-posed, not the GPU
//!   wrong; the failure says which tensor.
//! - **Forward** (same weights): fake images and logits within
//!   `4 u sqrt(K) max|y| + 1e-6` (the 1e-6 for tanh's own error, see
//!   tests/checks/activation.rs); `d_loss` within rtol 4 u sqrt(K).
//! - **Parameters after the step**, per element: `whole_step::adam_step_tol`,
//!   as tests/checks/vae_step.rs (~lr x the gradient's relative error where it
//!   is well determined, up to ~2 lr where |g| is near its own error, plus
//!   Adam's own f32 arithmetic and u |p|). The check requires most elements
//!   moved by more than their tolerance (a uniform tolerance of 3 lr would
//!   be vacuous).
//! - **`g_loss`**: computed on the discriminator after its update in the
//!   same step, so rtol 4 u sqrt(K) plus twice the first-order effect of
//!   D's parameter differences, `2 sum_i |dL/dp_i| tol_i` (the reference
//!   returns that sensitivity, which the step itself does not compute).
//! - **Batch-norm running statistics**: `running = 0.99 r0 + 0.01 s` with
//!   the batch statistic s from identical weights: within `0.01 x 2 x 4 u
//!   sqrt(K) max|s|` (the statistic's error; the variance doubles the
//!   relative error of its input) plus `2 u |running|` (the GPU's f32
//!   update rounds two products and a sum, each by <= u/2).
//!
//! The article's options run through the same comparison
//! ([`matches_cpu`] takes the config): `label_noise` 0.05 (the
//! reference's targets are `label_noise_targets_cpu`'s; the check also
//! requires the noise to move the head's bias gradient far past its
//! tolerance, so it is not vacuous) and `fresh_noise_for_g` (G's own
//! latents are the GPU's draws of stream `STREAM_Z_FOR_G` fed to the
//! reference; its fake batch is checked like the first and must differ
//! from it; the running statistics get one update per generator forward,
//! so their step-1 tolerance sums `0.01 x 2 x 4 u sqrt(K) max|s_k|` over the
//! batch statistics `s_k` the reference reports, plus `2 u |running|` per
//! update). With the options off the step is the one these tests always
//! checked (tests/it/gan_step.rs's `gan_step_options_cost_what_they_add`: the same dispatches with
//! label noise, more with fresh noise).
//!
//! The log has every comparison's worst error as a fraction of its
//! tolerance; all comparisons run before the check fails, naming each
//! failure.

use super::whole_step::{
    self, adam_step_tol, gpu_normals, max_abs, read64, rmsprop_step_tol, Checks,
};
use super::*;
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::gan::{
    critic_streams, DHead, Gan, GanConfig, GanOptions, TrainStep, SLOT_D, SLOT_G, STREAM_Z_FOR_G,
};
use vae_vs_gan::models::gan_cpu::{GanCpu, GanCpuStep};
use vae_vs_gan::models::gan_loss::GanLoss;
use vae_vs_gan::models::preset::Preset;
use vae_vs_gan::models::Optimizer;
use vae_vs_gan::optim::adam::AdamConfig;

/// The whole steps the browser runs: both heads ([`configs`]), on
/// `images` (the first 64 MNIST training images). The options' whole
/// steps ([`option_configs`]: the article's label noise and fresh noise
/// for G, each GAN loss) run natively only, under the CPU driver's kernel
/// policy: each differs from the default step in its loss kernels or in
/// one more generator forward, not in the GEMMs a kernel policy or a
/// driver changes, and those kernels have their own checks everywhere
/// (bce, target_loss, rng); a browser's CPU adapter takes half a minute a
/// step check.
pub async fn all(g: &Gpu, images: &Images, r: &mut Report<'_>) {
    for (name, cfg) in configs() {
        r.record(
            &format!("gan step ({name}) vs f64"),
            matches_cpu(g, images, cfg).await,
        );
    }
}

/// The tiny preset with each discriminator head.
pub fn configs() -> Vec<(String, GanConfig)> {
    vec![
        ("max-pool head".to_string(), tiny(DHead::GlobalMaxPool)),
        ("flatten head".into(), tiny(DHead::Flatten)),
    ]
}

/// The options at the max-pool head: label noise 0.05 (seed 11: no unit
/// within reach of a LeakyReLU flip in 3 steps; seeds 7 to 10 each put a
/// unit on the other side at step 2 or 3, which makes the comparison
/// ill-posed, not the GPU wrong), fresh noise for G, each GAN loss but the
/// default, the Wasserstein GAN at one critic iteration (its RMSProp,
/// clipping and losses, at the paper's c and RMSProp's lr 5e-8), and at
/// three critic iterations with RMSProp's lr at 1e-30. Why not the paper's
/// lr 5e-5: RMSProp's first update is 10 lr sign(g) for every gradient
/// above eps, so a gradient within its rounding error of 0 (the linear
/// loss's bias gradients nearly cancel) moves its parameter by ±5e-4 on
/// either side, and the clipped critic's activations are small (weights
/// at most 0.01): at 5e-5 the G update's critic forward differed by 1.3e-4
/// (of at most 4.4e-2) and 59 units crossed their LeakyReLU kink, which
/// makes the comparison ill-posed (see `check_branches`); at 5e-8 that
/// difference shrinks a thousandfold while every update (5e-7) still
/// moves its parameter (|p| <= 0.2) far past the rounding of the
/// parameter. Three critic iterations at lr 1e-30 and c 1 (clipping then
/// leaves the initial weights, all within 0.22, as they are: clipped to
/// ±0.01, several weights of one 5x5 filter cancel exactly on the
/// background's constant pixels, the unit's value is then its bias alone,
/// ±1e-29 after updates of that size, and its side of the LeakyReLU kink
/// is a coin toss; the one-iteration config checks the clipping): every
/// update is then below f32's
/// resolution of the parameters (10 lr = 1e-29 at most), so each iteration
/// runs on the same clipped critic and generator whatever the others did,
/// and its last iteration's gradients, losses and activations, each
/// iteration's batch norm statistics and the clipping compare as tightly
/// as one iteration's. (With the paper's lr, the n_critic updates of one
/// step move the critic between iterations by differences the rounding
/// bound of a single update does not cover.)
pub fn option_configs() -> Vec<(String, GanConfig)> {
    let with = |options: GanOptions| GanConfig {
        options,
        ..tiny(DHead::GlobalMaxPool)
    };
    let article = [
        (
            "label noise".to_string(),
            GanConfig {
                seed: 11,
                ..with(GanOptions {
                    label_noise: 0.05,
                    ..GanOptions::default()
                })
            },
        ),
        (
            "fresh noise for G".into(),
            with(GanOptions {
                fresh_noise_for_g: true,
                ..GanOptions::default()
            }),
        ),
    ];
    let losses = GanLoss::ALL
        .into_iter()
        .filter(|&loss| loss != GanLoss::default() && loss != GanLoss::Wasserstein)
        .map(|loss| {
            let cfg = with(GanOptions {
                loss,
                ..GanOptions::default()
            });
            (format!("{} loss", loss.name()), cfg)
        });
    let wasserstein = |n_critic, rmsprop_lr, weight_clip| {
        with(GanOptions {
            loss: GanLoss::Wasserstein,
            n_critic: Some(n_critic),
            rmsprop_lr: Some(rmsprop_lr),
            weight_clip,
            ..GanOptions::default()
        })
    };
    let critics = [
        ("wasserstein loss".to_string(), wasserstein(1, 5e-8, None)),
        (
            "wasserstein loss, 3 critic iterations".into(),
            wasserstein(3, 1e-30, Some(1.0)),
        ),
    ];
    article.into_iter().chain(losses).chain(critics).collect()
}

pub const STEPS: usize = 3;
/// The summed reduction lengths along the deepest gradient chain (see the
/// module doc).
const K_CHAIN: f64 = 26_600.0;
/// tanh's own absolute error (tests/checks/activation.rs).
const TANH_ATOL: f64 = 1e-6;
/// Batch-norm running-average decay.
const MOMENTUM: f64 = 0.99;

/// The step's relative rounding bound, 4 u sqrt(K): gradients' atol (of max|g|)
/// and the forward's rtol.
pub fn scale() -> f64 {
    4.0 * U * K_CHAIN.sqrt()
}

/// The tiny preset's GAN with `head`, seed 7.
pub fn tiny(head: DHead) -> GanConfig {
    let p = Preset::Tiny.gan();
    GanConfig {
        latent: p.latent,
        batch: p.batch,
        adam_g: AdamConfig::keras(p.lr_g),
        adam_d: AdamConfig::keras(p.lr_d),
        seed: 7,
        head,
        ..GanConfig::default()
    }
}

/// Per-element gradient tolerance for a CPU gradient of one parameter.
fn grad_tol(g: &[f64]) -> Vec<f64> {
    whole_step::grad_tol(g, scale())
}

/// Which side of every branch point the GPU's step `s` took, against the
/// CPU's: LeakyReLU outputs (the sign of the input) (the derivative is 1 above 0, 0.2 below) and
/// global max-pool winners. Prints per tensor the forward difference
/// (step 1: rounding only; later steps also the parameter differences),
/// the CPU's smallest margin (|x|, or the gap between a pool's top two
/// values), and how many units lie within the observed forward difference
/// of their switch point (where a flip was possible); requires no flip:
/// a flipped unit changes its gradient contribution by 80% (or moves it
/// to another position), which no rounding tolerance covers, so the
/// comparison would be ill-posed rather than the GPU wrong.
async fn check_branches(
    g: &Gpu,
    c: &mut Checks,
    head: DHead,
    s: usize,
    ts: &TrainStep,
    cs: &GanCpuStep<f64>,
) -> Result<(), Failure> {
    for ((name, t), (cname, want)) in ts.leaky_outputs.iter().zip(&cs.leaky_outputs) {
        ensure(name == cname, || {
            format!("LeakyReLU output order: {name} vs {cname}")
        })?;
        let got = read64(g, t).await?;
        ensure(got.len() == want.len(), || format!("{name}: length"))?;
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let margin = want
            .iter()
            .map(|v| v.abs())
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let at_risk = want.iter().filter(|v| v.abs() <= diff).count();
        let flips = got
            .iter()
            .zip(want)
            .filter(|(a, b)| (**a > 0.0) != (**b > 0.0))
            .count();
        c.note(format!(
            "{head:?} step {} {name} (LeakyReLU output, {} units, max|x| {:.2e}): max |gpu - cpu| \
             {diff:.2e}, smallest |x| {margin:.2e}, {at_risk} units within that difference of 0, \
             {flips} on the other side",
            s + 1,
            want.len(),
            max_abs(want)
        ));
        c.require(flips == 0, || {
            format!(
                "step {}: {flips} units of {name} are on the other side of the LeakyReLU kink on \
                 the GPU: the gradient comparison is ill-posed at those units",
                s + 1
            )
        });
    }
    for ((name, t), ((cname, want), (_, x))) in ts
        .pool_argmax
        .iter()
        .zip(cs.pool_argmax.iter().zip(&cs.pool_inputs))
    {
        ensure(name == cname, || {
            format!("max pool order: {name} vs {cname}")
        })?;
        let got = t.read_u32_async(g).await?;
        let moved = got.iter().zip(want).filter(|(a, b)| a != b).count();
        // The gap between each pool's top two values (pools whose top two
        // are both exactly 0, dropped units, are exact on both sides).
        let (n, hw, ch) = (x.len() / (49 * 128), 49, 128);
        let mut gap = f64::INFINITY;
        for b in 0..n {
            for k in 0..ch {
                let (mut top, mut second) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
                for p in 0..hw {
                    let v = x[(b * hw + p) * ch + k];
                    if v > top {
                        second = top;
                        top = v;
                    } else if v > second {
                        second = v;
                    }
                }
                if !(top == 0.0 && second == 0.0) {
                    gap = gap.min(top - second);
                }
            }
        }
        c.note(format!(
            "{head:?} step {} {name} (global max pool, {} pools): smallest gap between the top \
             two {gap:.2e}, {moved} winners differ",
            s + 1,
            want.len()
        ));
        c.require(moved == 0, || {
            format!(
                "step {}: {moved} max-pool winners of {name} differ on the GPU",
                s + 1
            )
        });
    }
    Ok(())
}

/// [`STEPS`] steps of `cfg` on `images`, each against the reference from
/// the GPU's state before it.
pub async fn matches_cpu(g: &Gpu, images: &Images, cfg: GanConfig) -> Outcome {
    let head = cfg.head;
    // The hinge loss while every margin is unmet (every |logit| < 1, as
    // at the start): real rows pull D's logits by -1/B each, fake rows by
    // +1/B, so the head's bias gradient is exactly 0 and the biases below
    // see only the real and fake rows' difference, near its tolerance.
    // Those biases are compared, not required to move.
    // The Wasserstein critic's linear loss pulls likewise at every logit,
    // margin or not. Those biases are compared, not required to move.
    let linear = matches!(cfg.options.loss, GanLoss::Hinge | GanLoss::Wasserstein);
    let hinge_bias =
        |name: &str| linear && name.starts_with("discriminator.") && name.ends_with(".bias");
    // The Wasserstein critic: its parameters clipped to [-c, c] after each
    // of the step's n_critic updates (the step reports the last one's
    // gradients); the generator's gradient through a clipped critic is
    // small (its weights are at most c), so the vacuity floor is lower.
    let wgan = cfg.options.wasserstein();
    let n_critic = cfg.critic_iterations();
    let floor = if wgan.is_some() { 1e-8 } else { 1e-4 };
    let mut c = Checks::default();
    c.note(format!(
        "{head:?}: label noise {}, fresh noise for G {}",
        cfg.options.label_noise, cfg.options.fresh_noise_for_g
    ));
    // The GPU's own z draws (stream 1, and the later critic iterations'
    // streams; with fresh noise for G also its update's, stream
    // STREAM_Z_FOR_G), fed to the reference.
    let n = cfg.batch * cfg.latent;
    let mut zs = Vec::with_capacity(n_critic);
    for j in 0..n_critic {
        zs.push(gpu_normals(g, cfg.seed, critic_streams(j).0, n, STEPS).await?);
    }
    let zs_g = match cfg.options.fresh_noise_for_g {
        true => Some(gpu_normals(g, cfg.seed, STREAM_Z_FOR_G, n, STEPS).await?),
        false => None,
    };
    let data = GpuDataset::upload(g, images, "train")?;
    data.shuffle(g, 3, 0)?;
    let perm = data.perm.read_u32_async(g).await?;
    let gan = Gan::new(g, cfg.clone())?;
    let state = StepState::new(g, 2, STEPS, 0)?;
    let ts = gan.train_step(g, &state, &data)?;
    let gparams = gan.params();
    let n_gen = gan.generator_params().len();
    let (opt_g, opt_d) = cfg.optimizers();
    // A parameter's optimizer and its updates per step.
    let opt_of = |pi: usize| match pi < n_gen {
        true => (opt_g, 1),
        false => (opt_d, n_critic),
    };
    let bns = [&gan.g_bn0, &gan.g_bn1, &gan.g_bn2];

    let sc = scale();
    let ftol = |y: &[f64], extra: f64| vec![sc * max_abs(y) + extra; y.len()];
    // Every step's reference gradients, per parameter (Adam's tolerance
    // needs the largest so far).
    let mut history: Vec<Vec<Vec<f64>>> = vec![Vec::new(); gparams.len()];
    let (mut moved, mut total) = (0usize, 0usize);
    for s in 0..STEPS {
        // The reference from the GPU's state before this step: parameters,
        // Adam moments, running statistics (at step 1 the initial ones).
        let mut cpu: GanCpu<f64> = GanCpu::from_gpu_async(g, &gan).await?;
        let before = cpu.clone();
        let z = zs.iter().map(|z| z[s].clone()).collect();
        let z_g = zs_g.as_ref().map(|v| v[s].clone());
        let cs = cpu.train_step_with_noises(s as u64, &perm, &images.pixels, z, z_g)?;
        run(g, &[&ts.step])?;
        check_branches(g, &mut c, head, s, &ts, &cs).await?;
        let step = s + 1;

        // The forward: fake images, logits, losses. The fake images are
        // tanh of g3, |g3| up to atanh(max|img|); the error of g3 passes
        // with factor 1 - img^2 <= 1.
        c.check(
            &format!("{head:?} step {step} fake images"),
            &read64(g, &ts.fake).await?,
            &cs.fake,
            &ftol(&cs.fake, TANH_ATOL),
        );
        let g_fake = read64(g, &ts.g_fake).await?;
        if cfg.options.fresh_noise_for_g {
            c.check(
                &format!("{head:?} step {step} fake images of G's update"),
                &g_fake,
                &cs.g_fake,
                &ftol(&cs.g_fake, TANH_ATOL),
            );
            // Not vacuous: G's update ran on another batch than D's.
            let apart = cs
                .g_fake
                .iter()
                .zip(&cs.fake)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            c.require(apart > 1e3 * (sc * max_abs(&cs.fake) + TANH_ATOL), || {
                format!("G's own fake batch is within {apart:e} of D's: the option did nothing")
            });
        } else {
            let fake = read64(g, &ts.fake).await?;
            c.require(g_fake == fake, || {
                "without fresh noise G's update reuses D's fakes: they differ".to_string()
            });
        }
        if cfg.options.label_noise > 0.0 {
            // Not vacuous: the noise moves the head's bias gradient, the sum
            // of (sigmoid(x) - t) / B, by sum (t - t0) / B, far past its
            // tolerance.
            let shift = cs
                .d_targets
                .iter()
                .enumerate()
                .map(|(i, t)| t - (i < cfg.batch) as u8 as f64)
                .sum::<f64>()
                / cfg.batch as f64;
            let fc = gparams
                .last()
                .ok_or_else(|| Failure("no parameters".into()))?;
            let (_, gb) = cs
                .grads
                .iter()
                .find(|(n, _)| *n == fc.name)
                .ok_or_else(|| Failure(format!("no gradient of {}", fc.name)))?;
            let tol = grad_tol(gb)[0];
            c.note(format!(
                "{head:?} step {step} label noise shifts {} by {shift:.3e} (tolerance {tol:.1e})",
                fc.name
            ));
            c.require(
                shift > 100.0 * tol && shift <= 2.0 * cfg.options.label_noise as f64,
                || {
                    format!(
                        "label noise shifts {} by {shift:e}: the option did nothing",
                        fc.name
                    )
                },
            );
        }
        c.check(
            &format!("{head:?} step {step} d logits"),
            &read64(g, &ts.d_logits).await?,
            &cs.d_logits,
            &ftol(&cs.d_logits, 0.0),
        );

        // Gradients, tight; and not all ~0.
        let mut worst = (String::new(), 0.0f64);
        for (pi, (p, (name, want))) in gparams.iter().zip(&cs.grads).enumerate() {
            ensure(&p.name == name, || {
                format!("parameter order: {} vs {name}", p.name)
            })?;
            c.require(max_abs(want) > floor || hinge_bias(name), || {
                format!(
                    "{name}: gradient ~0 (max {:e}): the check would be vacuous",
                    max_abs(want)
                )
            });
            let w = c.check(
                &format!("{head:?} step {step} gradient {name}"),
                &read64(g, &p.grad).await?,
                want,
                &grad_tol(want),
            );
            if w > worst.1 {
                worst = (name.clone(), w);
            }
            history[pi].push(want.clone());
        }
        c.note(format!(
            "{head:?} step {step} gradients: worst {:.3} of the tolerance ({})",
            worst.1, worst.0
        ));

        // Running statistics, tight: each training-mode forward of the step
        // (one; two with fresh noise for G) averaged in a batch statistic
        // s_k with weight <= 0.01, whose error is <= 2 sc max|s_k|, and
        // rounded the update (<= 2 u |running| each).
        let mut running = Vec::new();
        for (name, t) in bns.iter().flat_map(|bn| bn.buffers()) {
            running.push((name, read64(g, t).await?));
        }
        for ((name, got), (n2, want)) in running.iter().zip(&cpu.running) {
            ensure(name == n2, || {
                format!("running statistic order: {name} vs {n2}")
            })?;
            let mut stats: Vec<&Vec<f64>> = Vec::new();
            for f in &cs.bn_batch_stats {
                let (_, s) = f
                    .iter()
                    .find(|(n, _)| n == name)
                    .ok_or_else(|| Failure(format!("no batch statistic {name}")))?;
                stats.push(s);
            }
            let from_stats: f64 = stats
                .iter()
                .map(|s| (1.0 - MOMENTUM) * 2.0 * sc * max_abs(s))
                .sum();
            let k = stats.len() as f64;
            let tol: Vec<f64> = want
                .iter()
                .map(|r| from_stats + 2.0 * k * U * r.abs())
                .collect();
            c.check(&format!("{head:?} step {step} {name}"), got, want, &tol);
        }

        // Parameters after the step, per-element tolerances; and they moved.
        let tols: Vec<Vec<f64>> = cpu
            .params
            .iter()
            .enumerate()
            .map(|(pi, p)| {
                let seen: Vec<&[f64]> = history[pi].iter().map(Vec::as_slice).collect();
                let dg = grad_tol(&cs.grads[pi].1);
                match opt_of(pi) {
                    (Optimizer::Adam(a), _) => adam_step_tol(&seen, &dg, &p.value, a.lr as f64),
                    (Optimizer::RmsProp(r), k) => rmsprop_step_tol(&seen, &dg, &p.value, &r, k),
                }
            })
            .collect();
        for (pi, (p, (cp, c0))) in gparams
            .iter()
            .zip(cpu.params.iter().zip(&before.params))
            .enumerate()
        {
            let tol = &tols[pi];
            let what = format!("{head:?} params after step {step} {}", p.name);
            let got = read64(g, &p.value).await?;
            let clipped = wgan.is_some() && p.name.starts_with("discriminator.");
            if let (true, Some(w)) = (clipped, wgan) {
                // Clipping is 1-Lipschitz: it keeps the tolerance. Weights
                // pushed past c stay at c, so fewer move at later steps;
                // instead every value must lie in [-c, c], and at step 1
                // the Glorot initialisation's beyond c (its limits 0.035
                // to 0.22: most of each weight tensor, for c below 0.035)
                // must have been clipped to it.
                c.check(&what, &got, &cp.value, tol);
                let c_at = got.iter().filter(|v| v.abs() == w.clip as f64).count();
                let inside = got.iter().all(|v| v.abs() <= w.clip as f64);
                let clips = step == 1 && p.name.ends_with(".weight") && w.clip < 0.035;
                c.require(inside && (!clips || c_at * 2 > got.len()), || {
                    format!(
                        "{what}: max |value| {:e} with clip {}, {c_at} of {} at ±c",
                        max_abs(&got),
                        w.clip,
                        got.len()
                    )
                });
            } else if hinge_bias(&p.name) || wgan.is_some_and(|w| w.lr < 1e-20) {
                c.check(&what, &got, &cp.value, tol);
            } else {
                moved += c.check_moved(&what, &got, &cp.value, &c0.value, tol);
            }
            total += tol.len();
        }

        // The losses: d_loss from the step's starting state (rounding
        // only); g_loss on the discriminator after its update, so with
        // twice the first-order effect of D's parameter differences.
        // The first-order effect on g_loss of D's parameter differences:
        // sum_i |dL/dp_i| tol_i over D's parameters.
        let mut g_effect = 0.0;
        for (name, sens) in &cs.g_loss_wrt_d {
            let i = cpu
                .params
                .iter()
                .position(|p| p.name == *name)
                .ok_or_else(|| Failure(format!("no parameter {name}")))?;
            g_effect += sens
                .iter()
                .zip(&tols[i])
                .map(|(d, t)| d.abs() * t)
                .sum::<f64>();
        }
        let snap = state.snapshot_async(g).await?;
        let losses = snap.losses(0)?;
        for (slot, name, want, eff) in [
            (SLOT_D, "d_loss", cs.d_loss, 0.0),
            (SLOT_G, "g_loss", cs.g_loss, g_effect),
        ] {
            c.check(
                &format!("{head:?} step {step} {name}"),
                &[losses[s].values[slot] as f64],
                &[want],
                &[sc * want.abs() + 2.0 * eff],
            );
        }
    }
    let done = state.snapshot_async(g).await?.steps_done;
    ensure(done == STEPS as u64, || {
        format!("{done} steps done, want {STEPS}")
    })?;
    c.finish(format!(
        "{head:?}, {STEPS} steps: {moved} of {total} parameters moved past their tolerance"
    ))
}
