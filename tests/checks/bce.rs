//! BCE with logits: GPU vs CPU for both reductions (with and without the
//! gradient), finiteness at |x| = 100, determinism, and the label-noise
//! kernel against its CPU reference and, at noise 0, against the plain
//! kernel bit for bit.
//!
//! Tolerances (from WGSL's accuracy rules, x in [-8, 8]): per element,
//! exp(-|x|) has <= 3 + 2*8 = 19 ulp relative error, log on [1, 2] has
//! absolute error <= 2^-21 = 4.8e-7, and max(x,0) - x z rounds twice at
//! magnitude <= 8 (ulp 9.5e-7): under 2e-6 absolute per element. A row sum
//! adds F of them plus its own rounding (F/256 + 8 steps of relative 2^-24):
//! atol F * 2e-6, rtol 1e-5. The scalar is that divided by its divisor. The
//! gradient (sigmoid(x) - z) * gscale: sigmoid inherits exp's 19 ulp (2.3e-6
//! relative) and the subtraction may cancel: atol 3e-6 * gscale, rtol 1e-5.

use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::bce::{self, BceReduction};
use vae_vs_gan::ops::rng::Philox;

const SHAPES: [&[usize]; 4] = [&[1, 1], &[7, 1], &[3, 5, 13, 13], &[33, 784]];
pub const REDS: [BceReduction; 2] = [BceReduction::Mean, BceReduction::SumPerSampleMean];

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("bce matches cpu", matches_cpu(g).await);
    r.record("bce finite at extremes", finite_at_extremes(g).await);
    r.record("bce deterministic", deterministic(g).await);
    r.record("bce label noise", label_noise(g).await);
    r.record(
        "bce label noise zero is the plain kernel",
        label_noise_zero_is_plain(g).await,
    );
}

/// The op's outputs: per-row losses, the scalar loss, the gradient.
pub struct Out {
    pub row: Tensor,
    pub loss: Tensor,
    pub grad: Tensor,
}

/// Poisoned outputs for inputs of `shape`.
pub fn outputs(g: &Gpu, shape: &[usize]) -> Result<Out, Failure> {
    Ok(Out {
        row: poisoned(g, &[shape[0]], "row")?,
        loss: poisoned(g, &[1], "loss")?,
        grad: poisoned(g, shape, "grad")?,
    })
}

#[allow(clippy::too_many_arguments)]
async fn compare(
    g: &Gpu,
    worst: &mut Worst,
    what: &str,
    o: &Out,
    x: &[f32],
    z: &[f32],
    shape: &[usize],
    red: BceReduction,
    scale: f32,
    grad: bool,
) -> Result<(), Failure> {
    let (rows, f) = (shape[0], x.len() / shape[0]);
    let want = bce::bce_cpu(x, z, f, red, scale as f64);
    let div = red.divisor(rows, f);
    let atol_row = f as f64 * 2e-6;
    worst.close(
        &format!("{what} rows"),
        &read(g, &o.row).await?,
        &want.rows,
        atol_row,
        1e-5,
    )?;
    worst.close(
        &format!("{what} loss"),
        &read(g, &o.loss).await?,
        &[want.loss as f32],
        scale as f64 * rows as f64 * atol_row / div,
        1e-5,
    )?;
    let got = read(g, &o.grad).await?;
    if grad {
        let gscale = scale as f64 / div;
        worst.close(
            &format!("{what} grad"),
            &got,
            &want.grad,
            3e-6 * gscale,
            1e-5,
        )?;
    } else {
        ensure(got.iter().all(|v| v.is_nan()), || {
            format!("{what}: grad untouched")
        })?;
    }
    Ok(())
}

pub async fn matches_cpu(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (j, shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = uniform(n, -8.0, 8.0, 200 + j as u64);
        // soft targets in [0, 1], as MNIST intensities / 255
        let z = uniform(n, 0.0, 1.0, 300 + j as u64);
        let xt = tensor(g, shape, &x, "x")?;
        let zt = tensor(g, shape, &z, "z")?;
        for red in REDS {
            for (scale, with_grad) in [(1.0f32, true), (0.5, true), (1.0, false)] {
                let o = outputs(g, shape)?;
                let mut s = Step::new("bce");
                let gr = if with_grad { Some(&o.grad) } else { None };
                bce::bce_with_logits(g, &mut s, &xt, &zt, &o.row, &o.loss, gr, red, scale)?;
                run(g, &[&s])?;
                compare(
                    g,
                    &mut worst,
                    &format!("bce {shape:?} {red:?} scale {scale} grad {with_grad}"),
                    &o,
                    &x,
                    &z,
                    shape,
                    red,
                    scale,
                    with_grad,
                )
                .await?;
            }
        }
    }
    worst.done()
}

/// |x| up to 100 with hard and soft targets: every output finite and equal
/// to the f64 reference (the loss terms reach 100, ulp 7.6e-6: atol 2e-5 per
/// element; sigmoid saturates to exactly 0 or 1 where the reference does
/// to f32).
pub async fn finite_at_extremes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let xs = [-100.0f32, -88.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 88.0, 100.0];
    let mut x = Vec::new();
    let mut z = Vec::new();
    for &t in &[0.0f32, 0.5, 1.0] {
        for &v in &xs {
            x.push(v);
            z.push(t);
        }
    }
    let shape = [3, xs.len()];
    let xt = tensor(g, &shape, &x, "x")?;
    let zt = tensor(g, &shape, &z, "z")?;
    for red in REDS {
        let o = outputs(g, &shape)?;
        let mut s = Step::new("bce extreme");
        bce::bce_with_logits(
            g,
            &mut s,
            &xt,
            &zt,
            &o.row,
            &o.loss,
            Some(&o.grad),
            red,
            1.0,
        )?;
        run(g, &[&s])?;
        let rows = read(g, &o.row).await?;
        let grad = read(g, &o.grad).await?;
        let loss = read(g, &o.loss).await?;
        ensure(
            rows.iter().chain(&grad).chain(&loss).all(|v| v.is_finite()),
            || format!("{rows:?} {grad:?}"),
        )?;
        let want = bce::bce_cpu(&x, &z, xs.len(), red, 1.0);
        worst.close(
            "bce extreme rows",
            &rows,
            &want.rows,
            2e-5 * xs.len() as f64,
            1e-5,
        )?;
        worst.close("bce extreme grad", &grad, &want.grad, 1e-6, 1e-5)?;
        ensure(
            want.loss.is_finite() && want.grad.iter().all(|v: &f32| v.is_finite()),
            || format!("bce extreme: CPU reference not finite, loss {}", want.loss),
        )?;
    }
    // The CPU reference alone, in f64, at |x| = 1000.
    let w = bce::bce_cpu(
        &[1000.0f64, -1000.0],
        &[0.0, 1.0],
        2,
        BceReduction::Mean,
        1.0,
    );
    ensure(w.loss.is_finite() && (w.loss - 1000.0).abs() < 1e-9, || {
        format!(
            "bce CPU reference at |x| = 1000: loss {}, want 1000",
            w.loss
        )
    })?;
    worst.done()
}

/// The same step run again (twice in one submit) gives the same loss, bit
/// for bit.
pub async fn deterministic(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let shape = [33, 784];
    let n = 33 * 784;
    let xt = tensor(g, &shape, &uniform(n, -8.0, 8.0, 220), "x")?;
    let zt = tensor(g, &shape, &uniform(n, 0.0, 1.0, 221), "z")?;
    let o = outputs(g, &shape)?;
    let mut s = Step::new("bce");
    bce::bce_with_logits(
        g,
        &mut s,
        &xt,
        &zt,
        &o.row,
        &o.loss,
        Some(&o.grad),
        BceReduction::SumPerSampleMean,
        1.0,
    )?;
    run(g, &[&s])?;
    let a = read(g, &o.loss).await?[0].to_bits();
    run(g, &[&s, &s])?;
    let b = read(g, &o.loss).await?[0].to_bits();
    worst.equal("bce loss rerun", &[b], &[a])?;
    worst.done()
}

/// One ulp of `x > 0` in f32 (2 u |x| rounded up to a power of two).
fn ulp(x: f64) -> f64 {
    2f64.powi(x.log2().floor() as i32 - 23)
}

/// The label-noise kernel against the CPU reference (its targets from
/// `label_noise_targets_cpu`, then `bce_cpu`), at two step counters, on
/// the plain kernel's shapes plus the GAN's `[2B, 1]`, with poisoned
/// outputs.
///
/// Tolerance: the plain kernel's (module doc) widened for targets up to
/// `T = 1 + F`: `max(x, 0) - x t + log1p(..)` now reaches `M = 8 (1 + T) + 1`
/// in magnitude, so its three roundings add `1.5 ulp(M)` per element; and a
/// driver that fuses `z + F * u` into one fma moves `t` by at most
/// `ulp(T)`, which moves the loss by `|x| ulp(T) <= 8 ulp(T)` and the
/// gradient by `ulp(T) * gscale`. Per row F times that; and since
/// targets past 1 give terms of both signs, the row sum's own roundings
/// (F/256 + 9 of them, see `ops::reduce`) are bounded by `u sum |l|`, not by
/// a relative error of the row: that term is added. The gradient
/// `(3e-6 + ulp(T)) * gscale`, rtol 1e-5.
pub async fn label_noise(g: &Gpu) -> Outcome {
    use vae_vs_gan::ops::bce::{bce_rows_label_noise, label_noise_targets_cpu, LabelNoise};
    let mut worst = Worst::default();
    let shapes: [&[usize]; 5] = [&[1, 1], &[7, 1], &[64, 1], &[3, 5, 13, 13], &[33, 784]];
    let rng = Philox::new(0x1234_5678_9abc, 7);
    for (j, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let (rows, f) = (shape[0], n / shape[0]);
        let x = uniform(n, -8.0, 8.0, 240 + j as u64);
        // hard targets as the GAN's, then soft ones
        let z: Vec<f32> = if j % 2 == 0 {
            (0..n).map(|i| ((i / f) % 2) as f32).collect()
        } else {
            uniform(n, 0.0, 1.0, 250 + j as u64)
        };
        let xt = tensor(g, shape, &x, "x")?;
        let zt = tensor(g, shape, &z, "z")?;
        for (amount, red, scale) in [
            (0.05f32, BceReduction::Mean, 2.0f32),
            (1.0, BceReduction::SumPerSampleMean, 1.0),
            (2.5, BceReduction::Mean, 0.5),
        ] {
            let mut by_step = Vec::new();
            for step in [0u32, 5] {
                let state = StepState::new(g, 1, 1, step)?;
                let o = outputs(g, shape)?;
                let noise = LabelNoise {
                    amount,
                    rng,
                    counters: &state.counters,
                };
                let mut s = Step::new("bce label noise");
                let gs =
                    bce_rows_label_noise(g, &mut s, &xt, &zt, noise, &o.row, &o.grad, red, scale)?;
                run(g, &[&s])?;
                let t = label_noise_targets_cpu(&z, amount, rng, step);
                ensure(
                    t.iter().zip(&z).all(|(t, z)| *t >= *z && *t <= *z + amount),
                    || format!("label noise {amount}: targets in [z, z + F]"),
                )?;
                let want = bce::bce_cpu(&x, &t, f, red, scale as f64);
                let gscale = scale as f64 / red.divisor(rows, f);
                ensure(((gs as f64) - gscale).abs() <= 1e-7 * gscale, || {
                    format!("label noise gradient scale {gs}, want {gscale}")
                })?;
                let big_t = 1.0 + amount as f64;
                let elem = 2e-6 + 1.5 * ulp(8.0 * (1.0 + big_t) + 1.0) + 8.0 * ulp(big_t);
                // targets past 1 make terms of both signs: the row sum's
                // own roundings are bounded by sum |l|, not |row|
                let sum_abs = x
                    .chunks(f)
                    .zip(t.chunks(f))
                    .map(|(xr, tr)| {
                        xr.iter()
                            .zip(tr)
                            .map(|(&a, &b)| bce::bce_elem(a as f64, b as f64).abs())
                            .sum::<f64>()
                    })
                    .fold(0.0, f64::max);
                let sum_tol = (f.div_ceil(256) + 9) as f64 * 2f64.powi(-24) * sum_abs;
                let what = format!("bce label noise {amount} {shape:?} {red:?} step {step}");
                let rows_got = read(g, &o.row).await?;
                let atol = f as f64 * elem + sum_tol;
                worst.close(&format!("{what} rows"), &rows_got, &want.rows, atol, 1e-5)?;
                worst.close(
                    &format!("{what} grad"),
                    &read(g, &o.grad).await?,
                    &want.grad,
                    (3e-6 + ulp(big_t)) * gscale,
                    1e-5,
                )?;
                by_step.push(rows_got);
            }
            ensure(by_step[0] != by_step[1], || {
                format!("label noise {amount} {shape:?}: each step draws its own noise")
            })?;
        }
    }
    worst.done()
}

/// With noise 0 the label-noise kernel is the plain kernel, bit for bit
/// (`z + 0 * u = z`): what lets the training step keep the plain kernel
/// when the option is off without changing what an F = 0 run would be.
pub async fn label_noise_zero_is_plain(g: &Gpu) -> Outcome {
    use vae_vs_gan::ops::bce::{bce_rows, bce_rows_label_noise, LabelNoise};
    let mut worst = Worst::default();
    let shape = [33, 784];
    let n = 33 * 784;
    let xt = tensor(g, &shape, &uniform(n, -8.0, 8.0, 260), "x")?;
    let zt = tensor(g, &shape, &uniform(n, 0.0, 1.0, 261), "z")?;
    let state = StepState::new(g, 1, 1, 3)?;
    let (a, b) = (outputs(g, &shape)?, outputs(g, &shape)?);
    let red = BceReduction::Mean;
    let mut s = Step::new("bce both");
    let ga = bce_rows(g, &mut s, &xt, &zt, &a.row, Some(&a.grad), red, 2.0)?;
    let noise = LabelNoise {
        amount: 0.0,
        rng: Philox::new(9, 7),
        counters: &state.counters,
    };
    let gb = bce_rows_label_noise(g, &mut s, &xt, &zt, noise, &b.row, &b.grad, red, 2.0)?;
    run(g, &[&s])?;
    worst.equal("gradient scale", &[gb.to_bits()], &[ga.to_bits()])?;
    worst.equal(
        "rows",
        &bits(&read(g, &b.row).await?),
        &bits(&read(g, &a.row).await?),
    )?;
    worst.equal(
        "gradient",
        &bits(&read(g, &b.grad).await?),
        &bits(&read(g, &a.grad).await?),
    )?;
    worst.done()
}
