//! RMSProp: three GPU steps vs the f64 CPU reference from a NONZERO
//! square_avg (the test can tell a kernel that ignores it), at the WGAN
//! paper's lr 5e-5 and larger ones, at odd sizes (1, 7, 257, 1000 and
//! 13x77 elements: not multiples of the 256-thread workgroup); and three
//! steps in ONE submit equal three submits bit for bit. RMSProp has no step
//! counter, so the latter checks that each recorded step's in-place writes
//! reach the next one inside a submit. Every operand is updated in place:
//! there is no output buffer to poison.
//!
//! Tolerances, from WGSL's accuracy bounds (§ "Floating Point Accuracy"),
//! in units of U = 2^-24 (a correctly rounded f32 operation errs by at most
//! U relative; k ULP is at most 2k U relative):
//!
//! - `v = alpha v + (1 - alpha) g g`: four or five f32 operations, each
//!   correctly rounded (`1 - alpha` is exact for alpha >= 0.5, Sterbenz),
//!   on non-negative terms (no cancellation): <= 5U relative; the CPU's
//!   stored f32 rounds once more (U). A relative error of the stored v
//!   passes into the next step's v at most unchanged (a weighted average of
//!   non-negative terms), so after step k: <= 6k U; three steps 18U
//!   (1.1e-6). Tolerance twice that: rtol 36U, atol 0 (v >= (1 - alpha) g^2
//!   stays far above the subnormals, which WGSL may flush).
//! - `p -= lr * (g / (sqrt(v) + eps))`: sqrt is "inherited from
//!   1.0 / inverseSqrt(x)", a 2 ULP reciprocal root through a 2.5 ULP
//!   division, <= 9U, plus half of v's error (<= 3k U at step k); `+ eps`
//!   U; the division 2.5 ULP (|y| >= eps >= 2^-126 here) 5U; `lr *` U:
//!   the update errs by <= (16 + 3k) U relative, and |update| <= lr r with
//!   r = 1 / sqrt(1 - alpha) (since v >= (1 - alpha) g^2; r = 10 at alpha
//!   0.99). The subtraction rounds on the GPU and the CPU's stored p rounds
//!   too: 2U |p_k| per step, |p_k| <= |p_3| + (3 - k) lr r. Three steps:
//!   |dp| <= 72U lr r + 6U |p_3|. Tolerance twice that: atol 144U lr r,
//!   rtol 12U.

use super::*;
use vae_vs_gan::optim::rmsprop::{rmsprop_update_cpu, RmsProp, RmsPropConfig, RmsPropTensors};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("rmsprop three steps", three_steps(g).await);
    r.record("rmsprop one submit equals three", one_submit(g).await);
}

/// Relative tolerance of square_avg after three steps (module doc).
const V_RTOL: f64 = 36.0 * U;
/// Relative tolerance of p after three steps (module doc).
const P_RTOL: f64 = 12.0 * U;

/// Absolute tolerance of p after three steps at `cfg` (module doc).
fn p_atol(cfg: &RmsPropConfig) -> f64 {
    144.0 * U * cfg.lr as f64 / (1.0 - cfg.alpha as f64).sqrt()
}

struct Slot {
    p: Tensor,
    g: Tensor,
    v: Tensor,
}

impl Slot {
    fn new(g: &Gpu, shape: &[usize], p0: &[f32], v0: &[f32]) -> Result<Slot, Failure> {
        Ok(Slot {
            p: tensor(g, shape, p0, "param")?,
            g: Tensor::zeros(g, shape, "grad")?,
            v: tensor(g, shape, v0, "square_avg")?,
        })
    }
    fn tensors(&self) -> RmsPropTensors<'_> {
        RmsPropTensors {
            param: &self.p,
            grad: &self.g,
            square_avg: &self.v,
        }
    }
}

fn record(g: &Gpu, opt: &RmsProp, slot: &Slot) -> Result<Step, Failure> {
    let mut s = Step::new("rmsprop_step");
    opt.record_update(g, &mut s, &slot.tensors())?;
    Ok(s)
}

/// One case: the hyperparameters, the range of the initial p, and the
/// scale of the gradients (square_avg starts at up to a quarter of its
/// square: a state part way into training).
struct Case {
    what: &'static str,
    cfg: RmsPropConfig,
    p_range: f32,
    g_scale: f32,
}

fn cases() -> [Case; 4] {
    [
        // The WGAN's: lr 5e-5, critic weights clipped to [-0.01, 0.01].
        Case {
            what: "paper lr 5e-5",
            cfg: RmsPropConfig::pytorch(5e-5),
            p_range: 0.01,
            g_scale: 1.0,
        },
        // Tiny gradients: sqrt(v) ~ 1e-7, so eps 1e-8 matters.
        Case {
            what: "paper lr 5e-5, gradients ~1e-6",
            cfg: RmsPropConfig::pytorch(5e-5),
            p_range: 0.01,
            g_scale: 1e-6,
        },
        // PyTorch's default lr, 200 times the paper's.
        Case {
            what: "default lr 1e-2",
            cfg: RmsPropConfig::default(),
            p_range: 1.0,
            g_scale: 1.0,
        },
        // alpha < 0.5 (1 - alpha rounds in f32) and a large eps.
        Case {
            what: "alpha 0.3 eps 1e-3 lr 1e-3",
            cfg: RmsPropConfig {
                alpha: 0.3,
                eps: 1e-3,
                ..RmsPropConfig::pytorch(1e-3)
            },
            p_range: 1.0,
            g_scale: 1e-2,
        },
    ]
}

/// Odd sizes: none a multiple of the 256-thread workgroup.
const SHAPES: [&[usize]; 5] = [&[1], &[7], &[257], &[1000], &[13, 77]];

pub async fn three_steps(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, case) in cases().iter().enumerate() {
        let cfg = &case.cfg;
        let opt = RmsProp::new(*cfg)?;
        let atol = p_atol(cfg);
        // How far the first step from v0 lands from the first step from
        // zero, in p tolerances: the check must tell them apart.
        let mut sep = 0.0f64;
        for (j, shape) in SHAPES.iter().enumerate() {
            let seed = 1000 * k as u64 + 10 * j as u64;
            let n: usize = shape.iter().product();
            let mut p = uniform(n, -case.p_range, case.p_range, seed);
            let mut v: Vec<f32> = uniform(n, 0.0, 0.25, seed + 1)
                .iter()
                .map(|x| x * case.g_scale * case.g_scale)
                .collect();
            ensure(v.iter().any(|&x| x > 0.0), || {
                format!("rmsprop {}: square_avg starts at zero", case.what)
            })?;
            let slot = Slot::new(g, shape, &p, &v)?;
            let s = record(g, &opt, &slot)?;
            for step in 0..3u64 {
                let grad = uniform(n, -case.g_scale, case.g_scale, seed + 2 + step);
                slot.g.write_f32(g, &grad)?;
                run(g, &[&s])?;
                if step == 0 {
                    let (mut p0, mut v0) = (p.clone(), vec![0.0f32; n]);
                    rmsprop_update_cpu(cfg, &mut p0, &grad, &mut v0);
                    rmsprop_update_cpu(cfg, &mut p, &grad, &mut v);
                    for (a, b) in p.iter().zip(&p0) {
                        let tol = atol + P_RTOL * a.abs() as f64;
                        sep = sep.max((a - b).abs() as f64 / tol);
                    }
                } else {
                    rmsprop_update_cpu(cfg, &mut p, &grad, &mut v);
                }
                let what = format!("rmsprop {} {shape:?} step {}", case.what, step + 1);
                worst.close(
                    &format!("{what} square_avg"),
                    &read(g, &slot.v).await?,
                    &v,
                    0.0,
                    V_RTOL,
                )?;
                worst.close(
                    &format!("{what} p"),
                    &read(g, &slot.p).await?,
                    &p,
                    atol,
                    P_RTOL,
                )?;
            }
        }
        ensure(sep > 10.0, || {
            format!(
                "rmsprop {}: a step from square_avg = 0 lands within {sep:.1} tolerances of one \
                 from the nonzero start: the check cannot tell whether the kernel reads it",
                case.what
            )
        })?;
    }
    worst.done()
}

/// p and square_avg of `slot`, as bits.
async fn state_bits(g: &Gpu, slot: &Slot) -> Result<Vec<Vec<u32>>, Failure> {
    let mut out = Vec::new();
    for t in [&slot.p, &slot.v] {
        out.push(bits(&read(g, t).await?));
    }
    Ok(out)
}

/// The same recorded step three times in ONE submit gives the same bits as
/// three submits, and both are three steps of the CPU reference, not one
/// (a submit whose steps did not see each other's in-place writes would
/// land on one step).
pub async fn one_submit(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let shape = [13, 13, 5];
    let n = 13 * 13 * 5;
    let p0 = uniform(n, -1.0, 1.0, 900);
    let v0 = uniform(n, 0.0, 0.25, 901);
    let grad = uniform(n, -1.0, 1.0, 902);
    for cfg in [RmsPropConfig::pytorch(5e-5), RmsPropConfig::default()] {
        let opt = RmsProp::new(cfg)?;

        let one = Slot::new(g, &shape, &p0, &v0)?;
        one.g.write_f32(g, &grad)?;
        let s1 = record(g, &opt, &one)?;
        run(g, &[&s1, &s1, &s1])?;

        let three = Slot::new(g, &shape, &p0, &v0)?;
        three.g.write_f32(g, &grad)?;
        let s3 = record(g, &opt, &three)?;
        for _ in 0..3 {
            run(g, &[&s3])?;
        }

        let (b1, b3) = (state_bits(g, &one).await?, state_bits(g, &three).await?);
        for (name, (a, b)) in ["p", "square_avg"].iter().zip(b1.iter().zip(&b3)) {
            let what = format!(
                "rmsprop lr {} {name}: one submit of 3 steps vs 3 submits",
                cfg.lr
            );
            worst.equal(&what, a, b)?;
        }

        let (mut p, mut v) = (p0.clone(), v0.clone());
        rmsprop_update_cpu(&cfg, &mut p, &grad, &mut v);
        let (p1, v1) = (p.clone(), v.clone());
        for _ in 0..2 {
            rmsprop_update_cpu(&cfg, &mut p, &grad, &mut v);
        }
        let what = format!("rmsprop lr {} one submit", cfg.lr);
        worst.close(
            &format!("{what} square_avg"),
            &read(g, &one.v).await?,
            &v,
            0.0,
            V_RTOL,
        )?;
        worst.close(
            &format!("{what} p"),
            &read(g, &one.p).await?,
            &p,
            p_atol(&cfg),
            P_RTOL,
        )?;
        // One step and three are far apart: check the test can tell.
        let sep = p
            .iter()
            .zip(&p1)
            .map(|(a, b)| (a - b).abs() as f64 / (p_atol(&cfg) + P_RTOL * a.abs() as f64))
            .fold(0.0f64, f64::max);
        let vsep = v
            .iter()
            .zip(&v1)
            .map(|(a, b)| (a - b).abs() as f64 / (V_RTOL * a.abs() as f64))
            .fold(0.0f64, f64::max);
        ensure(sep > 10.0 && vsep > 10.0, || {
            format!(
                "rmsprop lr {}: one step and three indistinguishable ({sep:.1}, {vsep:.1} \
                 tolerances)",
                cfg.lr
            )
        })?;
    }
    worst.done()
}
