//! Whole-step numerics of the VAE: 3 training steps (tiny preset: 64 real
//! MNIST images, batch 8, latent 2, fixed seeds) on the GPU and on the f64
//! CPU reference (src/models/vae_cpu.rs, built only from the ops' CPU
//! references) from identical initial weights.
//!
//! Tolerances (u = 2^-24, the f32 unit roundoff):
//!
//! - **First-step gradients**, per parameter p and element i:
//!   `|g_gpu - g_cpu| <= 4 u sqrt(K) max|g_cpu,p| + 1e-4 |g_cpu,i|`, K = 6272.
//!   Every gradient element is the end of a chain of f32 reductions (forward
//!   convs and dense layers of length up to 2304, the BCE, the backward
//!   data passes, then the weight/bias-gradient reduction over the batch
//!   and pixels, up to 8 x 28 x 28 = 6272 terms for the last transposed
//!   conv). Rounding errors of a length-K sum grow like u sqrt(K) relative
//!   to the sum of |terms|; the terms of one parameter's gradient are on
//!   the scale of its largest element, and cancellation (bias gradients
//!   summing dy of both signs) makes per-element relative error useless
//!   for small elements, hence an atol scaled by max|g| of that parameter
//!   and the longest reduction (4 u sqrt(6272) = 1.9e-5 of max|g|), plus
//!   the contract's fp32 rtol 1e-4. The eps draws enter exactly: the
//!   reference takes the GPU's own f32 draws (`common::gpu_normals`, the
//!   RNG kernel at the same counters, checked only against WGSL's bound
//!   `ops::rng::NORMAL_ATOL` = 4e-3), not its f64 Box-Muller, so a driver
//!   with fast transcendentals passes as lavapipe does; the reparameterising
//!   kernel recomputes the same draw in another shader, a few ulps apart at
//!   most, far inside the tolerances above.
//! - **Step-1 losses** (forward only, same weights): rtol 4 u sqrt(K) =
//!   1.9e-5 for both; the KL (~1e-3 at init: mu, logvar ~ 0) is a sum of
//!   `exp(c) - 1 - c` terms that cancel in f32, each off by <= ~5 ulp(1)
//!   (WGSL exp is 3 + 2|x| ulp, plus roundings), so it also gets atol
//!   L * 5 ulp(1) ~ 1e-6.
//! - **Parameters after 3 steps**, per element: Adam normalises the
//!   gradient, so where |g| is near its own error the GPU and CPU updates
//!   can differ by up to 2 lr (opposite signs), while well-determined
//!   gradients give updates that agree to ~lr x the relative gradient
//!   error. With m, v Adam's moments, the update `lr c_t m / (sqrt(v) + eps)`
//!   moves by at most `2 lr sum_k dg_k / max_k |g_k|` (the m and the sqrt(v)
//!   terms, each <= lr x relative error; c_t (1 - b1) / sqrt(1 - b2) <= 1
//!   for t <= 3) when each step's gradient g_k is off by dg_k (the
//!   first-step gradient tolerance applied to the CPU's gradient of that
//!   step), and never by more than 2.01 lr (|update| <= 1.0013 lr for t <=
//!   3). Per step that term, plus Adam's own f32 arithmetic (5e-7 per step
//!   at lr 1e-3: tests/it/adam.rs derives 1.5e-7 from the bias corrections
//!   plus a few ulp), plus the rounding of the parameter (u |p|). Elements
//!   with sign-ambiguous gradients thus get ~2 lr per step, the rest stay
//!   tight; the test asserts that most elements moved by more than their
//!   tolerance (so it is not vacuous: a uniform tolerance of 3 lr would be,
//!   since no Adam step moves an element by more than ~lr).
//! - **Losses of steps 2 and 3** (the negative ELBO, recon + KL, whose
//!   gradient the step computes): the step-1 tolerance plus twice the
//!   first-order effect of the parameter differences,
//!   `2 sum_i |g_i| tol_p,i` (the factor 2 covers the second-order term).
//!
//! With `--kl mc` (`vae_step_with_mc_kl_matches_cpu_reference`) the same
//! checks run against the reference's `kl_mc_cpu`; the estimate's addends
//! (`0.5 z^2`, `0.5 (eps^2 + c)`) cancel, so its KL tolerances take
//! `rtol * kl_abs` (the batch mean of their magnitudes, `CpuStep::kl_abs`)
//! in place of `rtol * |kl|`. z itself differs between GPU (f32, WGSL exp)
//! and reference (f64) by ~1e-6 relative, inside that rtol.
//!
//! The test prints the worst error of each check as a fraction of its
//! tolerance.

use crate::common::*;
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{load, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::vae::{KlEstimator, Vae, VaeConfig, SLOT_KL, SLOT_RECON};
use vae_vs_gan::models::vae_cpu::{CpuStep, VaeCpu};
use vae_vs_gan::ops::gemm::Policy;
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::Gpu;

const LR: f64 = 1e-3;
const STEPS: usize = 3;
/// f32 unit roundoff.
const U: f64 = 1.0 / 16_777_216.0;
/// The longest reduction of the step (last transposed conv's weight and
/// bias gradients: 8 x 28 x 28).
const K_MAX: f64 = 6272.0;
const GRAD_RTOL: f64 = 1e-4;
const KL_ATOL: f64 = 1e-6;
/// Adam's own f32 arithmetic per step at lr 1e-3 (tests/it/adam.rs).
const ADAM_ATOL: f64 = 5e-7;
/// Largest |Adam update| for t <= 3, in units of lr.
const MAX_UPDATE: f64 = 1.005;

fn grad_atol_scale() -> f64 {
    4.0 * U * K_MAX.sqrt()
}

fn tiny() -> VaeConfig {
    VaeConfig {
        latent: 2,
        batch: 8,
        adam: AdamConfig::keras(LR as f32),
        seed: 7,
        binarize: false,
        kl: Default::default(),
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Per-element gradient tolerance for a CPU gradient of one parameter.
fn grad_tol(g: &[f64]) -> Vec<f64> {
    let atol = grad_atol_scale() * max_abs(g);
    g.iter().map(|x| atol + GRAD_RTOL * x.abs()).collect()
}

/// Per-element tolerance of parameter `p` (index into the parameter list)
/// after the CPU steps `steps`, ending at CPU values `value`.
fn param_tol(steps: &[CpuStep<f64>], p: usize, value: &[f64]) -> Vec<f64> {
    let tols: Vec<Vec<f64>> = steps.iter().map(|s| grad_tol(&s.grads[p].1)).collect();
    (0..value.len())
        .map(|i| {
            let mut total = 0.0;
            let (mut dg, mut gmax) = (0.0f64, 0.0f64);
            for (s, t) in steps.iter().zip(&tols) {
                dg += t[i];
                gmax = gmax.max(s.grads[p].1[i].abs());
                let sens = (2.0 * LR * dg / gmax).min(2.0 * MAX_UPDATE * LR);
                total += ADAM_ATOL + U * value[i].abs() + sens;
            }
            total
        })
        .collect()
}

/// Worst |got - want| / tol; panics naming `what` past 1.
fn check(what: &str, got: &[f64], want: &[f64], tol: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = (0, 0.0f64);
    for (i, ((g, w), t)) in got.iter().zip(want).zip(tol).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= *t,
            "{what}: element {i}: gpu {g}, cpu {w}, |diff| {err:e} > tol {t:e}"
        );
        if err / t > worst.1 {
            worst = (i, err / t);
        }
    }
    eprintln!(
        "{what}: {} elements, worst at {}: {:.3} of the tolerance",
        got.len(),
        worst.0,
        worst.1
    );
    worst.1
}

#[test]
fn vae_step_matches_cpu_reference() {
    vae_step_matches_cpu(tiny());
}

/// The step with the article's KL estimate (`--kl mc`) against the
/// reference's (`kl_mc_cpu` at the reparameterised z, its gradient through
/// z), with the tolerances above; the estimate's addends cancel (z^2
/// against eps^2), so its rounding error scales with their magnitudes
/// (`CpuStep::kl_abs`), not with the KL: the KL checks take
/// `rtol * kl_abs` instead of `rtol * |kl|`.
#[test]
fn vae_step_with_mc_kl_matches_cpu_reference() {
    vae_step_matches_cpu(VaeConfig {
        kl: KlEstimator::Mc,
        ..tiny()
    });
}

/// Both estimators record the same number of dispatches and bind groups
/// (the KL term is one dispatch either way): `--kl mc` costs no dispatch,
/// and the default step is the analytic one.
#[test]
fn vae_step_kl_estimators_cost_the_same_dispatches() {
    let g = gpu();
    let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(64)).unwrap();
    let data = GpuDataset::upload(g, &imgs, "train").unwrap();
    let state = StepState::new(g, 2, 1, 0).unwrap();
    assert_eq!(tiny().kl, KlEstimator::Analytic, "the default");
    let stats = |kl: KlEstimator| {
        let vae = Vae::new(g, VaeConfig { kl, ..tiny() }).unwrap();
        let s = vae.train_step(g, &state, &data).unwrap().step.stats();
        (s.dispatches, s.bind_groups)
    };
    let (a, m) = (stats(KlEstimator::Analytic), stats(KlEstimator::Mc));
    eprintln!("vae step: analytic {a:?}, mc {m:?} (dispatches, bind groups)");
    assert_eq!(a, m);
}

/// The same step on the device opened without subgroups: the CPU policy's
/// fallback (the direct GEMM main), which an adapter without subgroups of
/// 8 runs. On lavapipe the default device's step uses the subgroup main.
#[test]
fn vae_step_without_subgroups_matches_cpu_reference() {
    let g = gpu_without_subgroups();
    assert_eq!(g.subgroup_lanes(), None);
    let mains = |g: &Gpu| {
        let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(8)).unwrap();
        let data = GpuDataset::upload(g, &imgs, "train").unwrap();
        let state = StepState::new(g, 2, 1, 0).unwrap();
        let vae = Vae::new(g, tiny()).unwrap();
        let step = vae.train_step(g, &state, &data).unwrap().step;
        let keys: Vec<String> = step.kernels().map(str::to_string).collect();
        keys.iter().any(|k| k.contains(",Subgroup,"))
    };
    assert!(!mains(g), "no subgroup kernel without subgroups");
    if Policy::of(gpu()).subgroups {
        assert!(
            mains(gpu()),
            "the default device's step uses the subgroup main"
        );
    }
    vae_step_matches_cpu_on(g, tiny());
}

fn vae_step_matches_cpu(cfg: VaeConfig) {
    vae_step_matches_cpu_on(gpu(), cfg)
}

fn vae_step_matches_cpu_on(g: &Gpu, cfg: VaeConfig) {
    let mc = cfg.kl == KlEstimator::Mc;
    // The GPU's own eps draws (stream 1), fed to the reference.
    let eps = gpu_normals(cfg.seed, 1, cfg.batch * cfg.latent, STEPS);
    let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(64)).unwrap();
    let data = GpuDataset::upload(g, &imgs, "train").unwrap();
    data.shuffle(g, 3, 0).unwrap();
    let perm = data.perm.read_u32(g).unwrap();
    let vae = Vae::new(g, cfg.clone()).unwrap();
    let state = StepState::new(g, 2, STEPS, 0).unwrap();
    let ts = vae.train_step(g, &state, &data).unwrap();

    // The CPU reference from the GPU's initial weights (and zero moments).
    let mut cpu: VaeCpu<f64> = VaeCpu::from_gpu(g, &vae).unwrap();
    let init = cpu.clone();
    let cpu_steps: Vec<CpuStep<f64>> = (0..STEPS as u64)
        .map(|s| {
            cpu.train_step_with_noise(s, &perm, &imgs.pixels, &eps[s as usize])
                .unwrap()
        })
        .collect();
    for s in &cpu_steps {
        eprintln!(
            "cpu step {}: smallest nonzero |ReLU input| {:.2e}",
            s.step, s.relu_margin
        );
    }

    // GPU: step 1 alone, its gradients, then steps 2 and 3.
    g.run(&[&ts.step]).unwrap();
    let grads1: Vec<Vec<f64>> = vae
        .params()
        .iter()
        .map(|p| to_f64(&p.grad.read_f32(g).unwrap()))
        .collect();
    g.run(&[&ts.step, &ts.step]).unwrap();
    assert_eq!(state.steps_done(g).unwrap(), STEPS as u64);
    let losses = state.read_losses(g, 0).unwrap();
    let params3: Vec<Vec<f64>> = vae
        .params()
        .iter()
        .map(|p| to_f64(&p.value.read_f32(g).unwrap()))
        .collect();

    // First-step gradients, tight; and not all ~0.
    let mut worst = 0.0f64;
    for (p, (got, (name, want))) in vae
        .params()
        .iter()
        .zip(grads1.iter().zip(&cpu_steps[0].grads))
    {
        assert_eq!(&p.name, name, "parameter order");
        assert!(
            max_abs(want) > 1e-4,
            "{name}: gradient ~0 (max {:e}): the test would be vacuous",
            max_abs(want)
        );
        worst = worst.max(check(
            &format!("vae step 1 gradient {name}"),
            got,
            want,
            &grad_tol(want),
        ));
    }
    eprintln!("first-step gradients: worst {worst:.3} of the tolerance");

    // Step-1 losses, tight.
    let (recon0, kl0) = (&losses[0].values[SLOT_RECON], &losses[0].values[SLOT_KL]);
    let rtol = grad_atol_scale();
    check(
        "vae step 1 recon loss",
        &[*recon0 as f64],
        &[cpu_steps[0].recon],
        &[rtol * cpu_steps[0].recon.abs()],
    );
    // (analytic: kl_abs is the KL itself, the tolerance as it was)
    let kl_scale = |c: &CpuStep<f64>| if mc { c.kl_abs } else { c.kl.abs() };
    check(
        &format!("vae step 1 kl loss ({})", cfg.kl.name()),
        &[*kl0 as f64],
        &[cpu_steps[0].kl],
        &[KL_ATOL + rtol * kl_scale(&cpu_steps[0])],
    );

    // Parameters after 3 steps, per-element tolerances; and they moved.
    let mut tols = Vec::new();
    let (mut moved, mut total, mut ambiguous) = (0usize, 0usize, 0usize);
    for (pi, (p, (got, (c, c0)))) in vae
        .params()
        .iter()
        .zip(params3.iter().zip(cpu.params.iter().zip(&init.params)))
        .enumerate()
    {
        let tol = param_tol(&cpu_steps, pi, &c.value);
        check(
            &format!("vae params after 3 steps {}", p.name),
            got,
            &c.value,
            &tol,
        );
        let m = c
            .value
            .iter()
            .zip(&c0.value)
            .zip(&tol)
            .filter(|((a, b), t)| (*a - *b).abs() > **t)
            .count();
        let amb = tol.iter().filter(|&&t| t > LR).count();
        eprintln!(
            "{}: {m} of {} elements moved by more than their tolerance; {amb} with a \
             sign-ambiguous gradient (tolerance > lr)",
            p.name,
            tol.len()
        );
        assert!(
            m * 2 > tol.len(),
            "{}: only {m} of {} elements moved past their tolerance",
            p.name,
            tol.len()
        );
        moved += m;
        total += tol.len();
        ambiguous += amb;
        tols.push(tol);
    }
    eprintln!("{moved} of {total} parameters moved past their tolerance, {ambiguous} ambiguous");

    // Losses of steps 2 and 3: the ELBO, with the parameter differences'
    // first-order effect. Parameter tolerances before step s from the CPU
    // steps before it.
    for s in 1..STEPS {
        let c = &cpu_steps[s];
        let mut effect = 0.0;
        for (pi, p) in cpu.params.iter().enumerate() {
            // The CPU values before step s are not kept; the tolerance's
            // u |p| term is negligible next to ADAM_ATOL, so use the final
            // values.
            let tol = param_tol(&cpu_steps[..s], pi, &p.value);
            effect += c.grads[pi]
                .1
                .iter()
                .zip(&tol)
                .map(|(gr, t)| gr.abs() * t)
                .sum::<f64>();
        }
        let want = c.recon + c.kl;
        let got = (losses[s].values[SLOT_RECON] + losses[s].values[SLOT_KL]) as f64;
        let kl_extra = if mc { rtol * c.kl_abs } else { 0.0 };
        let tol = rtol * want.abs() + KL_ATOL + kl_extra + 2.0 * effect;
        eprintln!(
            "step {}: recon gpu {} cpu {}, kl gpu {} cpu {}",
            s + 1,
            losses[s].values[SLOT_RECON],
            c.recon,
            losses[s].values[SLOT_KL],
            c.kl
        );
        check(&format!("vae step {} loss", s + 1), &[got], &[want], &[tol]);
    }
}
