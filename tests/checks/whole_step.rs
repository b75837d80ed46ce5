//! What the whole-step checks (vae_step, gan_step) share: the GPU's own
//! normal draws for the reference, Adam's single-step tolerance, and a
//! collector that runs every comparison of a step before it fails.

use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::rng::{fill_normal, Philox, NORMAL_ATOL};
use vae_vs_gan::optim::rmsprop::RmsPropConfig;

pub fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// The contract's fp32 relative tolerance of a gradient element.
pub const GRAD_RTOL: f64 = 1e-4;

/// Per-element tolerance of one parameter's reference gradient `g`:
/// `scale x max|g|` (a step's rounding, `4 u sqrt(K)` of the largest
/// element: cancellation makes small elements' relative error useless)
/// plus [`GRAD_RTOL`] of each element.
pub fn grad_tol(g: &[f64], scale: f64) -> Vec<f64> {
    let atol = scale * max_abs(g);
    g.iter().map(|x| atol + GRAD_RTOL * x.abs()).collect()
}

/// A tensor's values as f64, awaited.
pub async fn read64(g: &Gpu, t: &Tensor) -> Result<Vec<f64>, Failure> {
    Ok(to_f64(&read(g, t).await?))
}

/// The normals the GPU's RNG kernel draws on stream `stream` of `seed` at
/// step counters `0..steps` (`n` each), as f64: what a whole-step check
/// feeds its CPU reference, so both sides compute from the same noise
/// whatever the driver's transcendental accuracy. Each draw is checked
/// only against what WGSL allows (`rng::NORMAL_ATOL`, derived from the
/// spec's `cos` and `log` bounds, plus 1e-5 relative, as the rng checks).
pub async fn gpu_normals(
    g: &Gpu,
    seed: u64,
    stream: u32,
    n: usize,
    steps: usize,
) -> Result<Vec<Vec<f64>>, Failure> {
    let rng = Philox::new(seed, stream);
    let mut all = Vec::with_capacity(steps);
    for s in 0..steps as u32 {
        let state = StepState::new(g, 1, 1, s)?;
        let out = Tensor::zeros(g, &[n], "normals")?;
        let mut step = Step::new("normal draws");
        fill_normal(g, &mut step, rng, &state.counters, &out)?;
        run(g, &[&step])?;
        let got = read64(g, &out).await?;
        let want: Vec<f64> = rng.normal_cpu(s, n);
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let tol = NORMAL_ATOL + 1e-5 * b.abs();
            ensure((a - b).abs() <= tol, || {
                format!("normal {i} at step {s}: gpu {a}, f64 {b}: beyond WGSL's bounds ({tol:e})")
            })?;
        }
        all.push(got);
    }
    Ok(all)
}

/// Adam's own f32 arithmetic per step at lr 1e-3 (the adam checks derive
/// 1.5e-7 from the bias corrections plus a few ulp); scales with lr.
const ADAM_ATOL_AT_1E3: f64 = 5e-7;
/// Largest |Adam update| for t <= 3, in units of lr.
const ADAM_MAX_UPDATE: f64 = 1.005;

/// Per-element tolerance of one parameter after one Adam step taken by the
/// GPU and by the CPU reference from the same state (values and moments):
/// the step's gradients differ by at most `dg` (the gradient tolerance),
/// and `history` holds the reference's gradients of this parameter at
/// every step so far, this one last.
///
/// Adam normalises the gradient: the update `lr c_t m / (sqrt(v) + eps)`
/// moves by at most `2 lr dg / max_k |g_k|` (the m and the sqrt(v) terms,
/// each <= lr x the relative error, since sqrt(v) >= sqrt(1 - b2) max_k
/// |g_k| up to b2^t and c_t (1 - b1) / sqrt(1 - b2) <= 1 for t <= 3), and
/// never by more than 2.01 lr (opposite signs, |update| <= 1.005 lr for t
/// <= 3): elements with a gradient near its own error get ~2 lr, the rest
/// stay tight. Plus Adam's own f32 arithmetic and the rounding of the
/// parameter (u |p|).
pub fn adam_step_tol(history: &[&[f64]], dg: &[f64], value: &[f64], lr: f64) -> Vec<f64> {
    (0..value.len())
        .map(|i| {
            let gmax = history.iter().fold(0.0f64, |m, g| m.max(g[i].abs()));
            let sens = (2.0 * lr * dg[i] / gmax).min(2.0 * ADAM_MAX_UPDATE * lr);
            ADAM_ATOL_AT_1E3 * lr / 1e-3 + U * value[i].abs() + sens
        })
        .collect()
}

/// Per-element tolerance of one parameter after one step of `k` RMSProp
/// updates (PyTorch's: `v = a v + (1 - a) g^2`, `p -= lr g / (sqrt(v) +
/// eps)`) taken by the GPU and by the CPU reference from the same state,
/// their gradients within `dg` of each other; `history` holds the
/// reference's gradients of this parameter at every step so far, this one
/// last (some of the gradients that entered `v`: the fewer, the smaller
/// the bound below on `sqrt(v)` and the looser the tolerance).
///
/// `sqrt(v) >= sqrt(1 - a) a^((t-1)/2) max_k |g_k|` after t updates, and
/// one update's error is at most `lr dg / sqrt(v)` through `g` plus as
/// much through `sqrt(v)` (whose error is at most `sqrt(1 - a) dg`, times
/// `|g| / sqrt(v) <= 1 / sqrt(1 - a)`), so `2 lr dg / sqrt(v)`; and an
/// update is at most `lr / sqrt(1 - a)` (10 lr at a = 0.99), so two
/// updates differ by at most twice that (elements whose gradient is near
/// its own error). With `k > 1` updates in the step (the Wasserstein
/// critic's n_critic) only the last one's gradients are known, so each
/// update gets that largest difference, `2 lr / sqrt(1 - a)` (the bound
/// holds when the parameters do not move the later gradients, as at the
/// check's lr 1e-30). Plus the
/// update's own f32 arithmetic (a few roundings of at most 10 lr) and the
/// rounding of the parameter (u |p|).
pub fn rmsprop_step_tol(
    history: &[&[f64]],
    dg: &[f64],
    value: &[f64],
    config: &RmsPropConfig,
    k: usize,
) -> Vec<f64> {
    let (lr, a) = (config.lr as f64, config.alpha as f64);
    let t = (history.len() * k) as f64;
    let floor = (1.0 - a).sqrt() * a.powf((t - 1.0).max(0.0) / 2.0);
    let max_update = lr / (1.0 - a).sqrt();
    (0..value.len())
        .map(|i| {
            let gmax = history.iter().fold(0.0f64, |m, g| m.max(g[i].abs()));
            let sens = match k {
                1 => (2.0 * lr * dg[i] / (floor * gmax)).min(2.0 * max_update),
                _ => 2.0 * max_update,
            };
            k as f64 * (sens + 8.0 * U * max_update) + U * value[i].abs()
        })
        .collect()
}

/// Every comparison of a whole-step check, run to the end before the
/// check fails: the log (each comparison's worst error as a fraction of
/// its tolerance, and notes), and every failure.
#[derive(Default)]
pub struct Checks {
    log: Vec<String>,
    failures: Vec<String>,
    worst: (f64, String),
}

impl Checks {
    /// Compare elementwise, `|got - want| <= tol` (NaN fails); the worst
    /// ratio of error to tolerance.
    pub fn check(&mut self, what: &str, got: &[f64], want: &[f64], tol: &[f64]) -> f64 {
        if got.len() != want.len() {
            self.failures
                .push(format!("{what}: {} values, want {}", got.len(), want.len()));
            return f64::INFINITY;
        }
        let mut worst = (0, 0.0f64);
        let mut bad = 0;
        for (i, ((g, w), t)) in got.iter().zip(want).zip(tol).enumerate() {
            let err = (g - w).abs();
            if err > *t || err.is_nan() {
                if bad == 0 {
                    self.failures.push(format!(
                        "{what}: element {i}: gpu {g}, cpu {w}, |diff| {err:e} > tol {t:e}"
                    ));
                }
                bad += 1;
            }
            if err / t > worst.1 || err.is_nan() {
                worst = (i, err / t);
            }
        }
        let failed = if bad > 0 {
            format!(" ({bad} FAILED)")
        } else {
            String::new()
        };
        self.note(format!(
            "{what}: {} elements, worst at {}: {:.3} of the tolerance{failed}",
            got.len(),
            worst.0,
            worst.1
        ));
        if worst.1 > self.worst.0 || worst.1.is_nan() {
            self.worst = (worst.1, what.to_string());
        }
        worst.1
    }

    /// A parameter after the step (`got`) against the reference's
    /// (`want`), within `tol`; and more than half its elements moved from
    /// `before` by more than their tolerance (so the check is not
    /// vacuous). The number that moved.
    pub fn check_moved(
        &mut self,
        what: &str,
        got: &[f64],
        want: &[f64],
        before: &[f64],
        tol: &[f64],
    ) -> usize {
        self.check(what, got, want, tol);
        let moved = want
            .iter()
            .zip(before)
            .zip(tol)
            .filter(|((a, b), t)| (*a - *b).abs() > **t)
            .count();
        self.require(moved * 2 > tol.len(), || {
            format!(
                "{what}: only {moved} of {} elements moved past their tolerance",
                tol.len()
            )
        });
        moved
    }

    /// A requirement that is not a comparison (a check is not vacuous, a
    /// branch was not flipped).
    pub fn require(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            let msg = msg();
            self.note(format!("FAILED: {msg}"));
            self.failures.push(msg);
        }
    }

    /// A line of the log.
    pub fn note(&mut self, line: String) {
        self.log.push(line);
    }

    /// The log and its last line, the summary; or every failure.
    pub fn finish(self, summary: String) -> Outcome {
        if !self.failures.is_empty() {
            // the log first: the figures around a failure explain it
            return Err(Failure(format!(
                "{}\n{} checks failed:\n{}",
                self.log.join("\n"),
                self.failures.len(),
                self.failures.join("\n")
            )));
        }
        let mut log = self.log;
        log.push(format!(
            "{summary}; worst {:.3} of the tolerance ({})",
            self.worst.0, self.worst.1
        ));
        Ok(log.join("\n"))
    }
}
