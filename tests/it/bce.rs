//! BCE with logits: GPU vs CPU for both reductions (with and without the
//! gradient), CPU backward vs finite differences, finiteness at |x| = 100,
//! determinism, and shape refusal.
//!
//! Tolerances (from WGSL's accuracy rules, x in [-8, 8]): per element,
//! exp(-|x|) has <= 3 + 2*8 = 19 ulp relative error, log on [1, 2] has
//! absolute error <= 2^-21 = 4.8e-7, and max(x,0) - x z rounds twice at
//! magnitude <= 8 (ulp 9.5e-7): under 2e-6 absolute per element. A row sum
//! adds F of them plus its own rounding (F/256 + 8 steps of relative 2^-24):
//! atol F * 2e-6, rtol 1e-5. The scalar is that divided by its divisor. The
//! gradient (sigmoid(x) - z) * gscale: sigmoid inherits exp's 19 ulp (2.3e-6
//! relative) and the subtraction may cancel: atol 3e-6 * gscale, rtol 1e-5.

use crate::common::*;
use vae_vs_gan::ops::bce::{self, BceReduction};
use vae_vs_gan::{Step, Tensor};

const SHAPES: [&[usize]; 4] = [&[1, 1], &[7, 1], &[3, 5, 13, 13], &[33, 784]];
const REDS: [BceReduction; 2] = [BceReduction::Mean, BceReduction::SumPerSampleMean];

struct Out {
    row: Tensor,
    loss: Tensor,
    grad: Tensor,
}

fn outputs(shape: &[usize]) -> Out {
    let g = gpu();
    let o = Out {
        row: Tensor::zeros(g, &[shape[0]], "row").unwrap(),
        loss: Tensor::zeros(g, &[1], "loss").unwrap(),
        grad: Tensor::zeros(g, shape, "grad").unwrap(),
    };
    for t in [&o.row, &o.loss, &o.grad] {
        t.poison(g);
    }
    o
}

#[allow(clippy::too_many_arguments)]
fn check(
    what: &str,
    o: &Out,
    x: &[f32],
    z: &[f32],
    shape: &[usize],
    red: BceReduction,
    scale: f32,
    grad: bool,
) {
    let g = gpu();
    let (rows, f) = (shape[0], x.len() / shape[0]);
    let want = bce::bce_cpu(x, z, f, red, scale as f64);
    let div = red.divisor(rows, f);
    let atol_row = f as f64 * 2e-6;
    assert_close(
        &format!("{what} rows"),
        &o.row.read_f32(g).unwrap(),
        &want.rows,
        atol_row,
        1e-5,
    );
    assert_close(
        &format!("{what} loss"),
        &o.loss.read_f32(g).unwrap(),
        &[want.loss as f32],
        scale as f64 * rows as f64 * atol_row / div,
        1e-5,
    );
    if grad {
        let gscale = scale as f64 / div;
        assert_close(
            &format!("{what} grad"),
            &o.grad.read_f32(g).unwrap(),
            &want.grad,
            3e-6 * gscale,
            1e-5,
        );
    } else {
        assert!(
            o.grad.read_f32(g).unwrap().iter().all(|v| v.is_nan()),
            "{what}: grad untouched"
        );
    }
}

#[test]
fn bce_with_logits_matches_cpu() {
    let g = gpu();
    for (j, shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = uniform(n, -8.0, 8.0, 200 + j as u64);
        // soft targets in [0, 1], as MNIST intensities / 255
        let z = uniform(n, 0.0, 1.0, 300 + j as u64);
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        let zt = Tensor::from_f32(g, shape, &z, "z").unwrap();
        for red in REDS {
            for (scale, with_grad) in [(1.0f32, true), (0.5, true), (1.0, false)] {
                let o = outputs(shape);
                let mut s = Step::new("bce");
                let gr = if with_grad { Some(&o.grad) } else { None };
                bce::bce_with_logits(g, &mut s, &xt, &zt, &o.row, &o.loss, gr, red, scale).unwrap();
                run(&s);
                check(
                    &format!("bce {shape:?} {red:?} scale {scale} grad {with_grad}"),
                    &o,
                    &x,
                    &z,
                    shape,
                    red,
                    scale,
                    with_grad,
                );
            }
        }
    }
}

/// The CPU gradient is the gradient of the CPU scalar loss: central
/// differences in f64 with h = 1e-6 (truncation ~h^2 |l'''| <= 1e-12, roundoff
/// ~1e-16 |loss| / h ~ 1e-9).
#[test]
fn bce_backward_cpu_matches_finite_differences() {
    let (rows, f) = (3, 7);
    let x = to_f64(&uniform(rows * f, -4.0, 4.0, 210));
    let z = to_f64(&uniform(rows * f, 0.0, 1.0, 211));
    for red in REDS {
        for scale in [1.0, 0.7] {
            let num = fd_grad(|x| bce::bce_cpu(x, &z, f, red, scale).loss, &x, 1e-6);
            let ana = bce::bce_cpu(&x, &z, f, red, scale).grad;
            assert_close_f64(&format!("bce_backward_fd {red:?}"), &ana, &num, 1e-8, 1e-6);
        }
    }
}

/// |x| up to 100 with hard and soft targets: every output finite and equal
/// to the f64 reference (the loss terms reach 100, ulp 7.6e-6: atol 2e-5 per
/// element; sigmoid saturates to exactly 0 or 1 where the reference does
/// to f32).
#[test]
fn bce_finite_at_extremes() {
    let g = gpu();
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
    let xt = Tensor::from_f32(g, &shape, &x, "x").unwrap();
    let zt = Tensor::from_f32(g, &shape, &z, "z").unwrap();
    for red in REDS {
        let o = outputs(&shape);
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
        )
        .unwrap();
        run(&s);
        let rows = o.row.read_f32(g).unwrap();
        let grad = o.grad.read_f32(g).unwrap();
        let loss = o.loss.read_f32(g).unwrap();
        assert!(
            rows.iter().chain(&grad).chain(&loss).all(|v| v.is_finite()),
            "{rows:?} {grad:?}"
        );
        let want = bce::bce_cpu(&x, &z, xs.len(), red, 1.0);
        assert_close(
            "bce extreme rows",
            &rows,
            &want.rows,
            2e-5 * xs.len() as f64,
            1e-5,
        );
        assert_close("bce extreme grad", &grad, &want.grad, 1e-6, 1e-5);
        assert!(want.loss.is_finite() && want.grad.iter().all(|v: &f32| v.is_finite()));
    }
    // The CPU reference alone, in f64, at |x| = 1000.
    let w = bce::bce_cpu(
        &[1000.0f64, -1000.0],
        &[0.0, 1.0],
        2,
        BceReduction::Mean,
        1.0,
    );
    assert!(w.loss.is_finite() && (w.loss - 1000.0).abs() < 1e-9);
}

#[test]
fn bce_is_deterministic() {
    let g = gpu();
    let shape = [33, 784];
    let n = 33 * 784;
    let xt = Tensor::from_f32(g, &shape, &uniform(n, -8.0, 8.0, 220), "x").unwrap();
    let zt = Tensor::from_f32(g, &shape, &uniform(n, 0.0, 1.0, 221), "z").unwrap();
    let o = outputs(&shape);
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
    )
    .unwrap();
    run(&s);
    let a = o.loss.read_f32(g).unwrap()[0].to_bits();
    g.run(&[&s, &s]).unwrap();
    assert_eq!(a, o.loss.read_f32(g).unwrap()[0].to_bits());
}

#[test]
fn bce_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let zbad = Tensor::zeros(g, &[4, 6], "z").unwrap();
    let o = outputs(&[4, 5]);
    let mut s = Step::new("bad");
    let red = BceReduction::Mean;
    let e = bce::bce_with_logits(
        g,
        &mut s,
        &x,
        &zbad,
        &o.row,
        &o.loss,
        Some(&o.grad),
        red,
        1.0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("bce_with_logits") && e.contains("[4, 5]") && e.contains("[4, 6]"),
        "{e}"
    );
    let row5 = Tensor::zeros(g, &[5], "row").unwrap();
    assert!(bce::bce_with_logits(g, &mut s, &x, &x, &row5, &o.loss, None, red, 1.0).is_err());
    let loss2 = Tensor::zeros(g, &[2], "loss").unwrap();
    assert!(bce::bce_with_logits(g, &mut s, &x, &x, &o.row, &loss2, None, red, 1.0).is_err());
    assert!(
        bce::bce_with_logits(g, &mut s, &x, &x, &o.row, &o.loss, Some(&zbad), red, 1.0).is_err()
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
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
#[test]
fn bce_label_noise_matches_cpu() {
    use vae_vs_gan::gpu::StepState;
    use vae_vs_gan::ops::bce::{bce_rows_label_noise, label_noise_targets_cpu, LabelNoise};
    use vae_vs_gan::ops::rng::Philox;
    let g = gpu();
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
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        let zt = Tensor::from_f32(g, shape, &z, "z").unwrap();
        for (amount, red, scale) in [
            (0.05f32, BceReduction::Mean, 2.0f32),
            (1.0, BceReduction::SumPerSampleMean, 1.0),
            (2.5, BceReduction::Mean, 0.5),
        ] {
            let mut by_step = Vec::new();
            for step in [0u32, 5] {
                let state = StepState::new(g, 1, 1, step).unwrap();
                let o = outputs(shape);
                let noise = LabelNoise {
                    amount,
                    rng,
                    counters: &state.counters,
                };
                let mut s = Step::new("bce label noise");
                let gs =
                    bce_rows_label_noise(g, &mut s, &xt, &zt, noise, &o.row, &o.grad, red, scale)
                        .unwrap();
                run(&s);
                let t = label_noise_targets_cpu(&z, amount, rng, step);
                assert!(
                    t.iter().zip(&z).all(|(t, z)| *t >= *z && *t <= *z + amount),
                    "targets in [z, z + F]"
                );
                let want = bce::bce_cpu(&x, &t, f, red, scale as f64);
                let gscale = scale as f64 / red.divisor(rows, f);
                assert!(((gs as f64) - gscale).abs() <= 1e-7 * gscale);
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
                let rows_got = o.row.read_f32(g).unwrap();
                let atol = f as f64 * elem + sum_tol;
                assert_close(&format!("{what} rows"), &rows_got, &want.rows, atol, 1e-5);
                assert_close(
                    &format!("{what} grad"),
                    &o.grad.read_f32(g).unwrap(),
                    &want.grad,
                    (3e-6 + ulp(big_t)) * gscale,
                    1e-5,
                );
                by_step.push(rows_got);
            }
            assert_ne!(by_step[0], by_step[1], "each step draws its own noise");
        }
    }
}

/// With noise 0 the label-noise kernel is the plain kernel, bit for bit
/// (`z + 0 * u = z`): what lets the training step keep the plain kernel
/// when the option is off without changing what an F = 0 run would be.
#[test]
fn bce_label_noise_zero_is_the_plain_kernel_bit_for_bit() {
    use vae_vs_gan::gpu::StepState;
    use vae_vs_gan::ops::bce::{bce_rows, bce_rows_label_noise, LabelNoise};
    use vae_vs_gan::ops::rng::Philox;
    let g = gpu();
    let shape = [33, 784];
    let n = 33 * 784;
    let xt = Tensor::from_f32(g, &shape, &uniform(n, -8.0, 8.0, 260), "x").unwrap();
    let zt = Tensor::from_f32(g, &shape, &uniform(n, 0.0, 1.0, 261), "z").unwrap();
    let state = StepState::new(g, 1, 1, 3).unwrap();
    let (a, b) = (outputs(&shape), outputs(&shape));
    let red = BceReduction::Mean;
    let mut s = Step::new("bce both");
    let ga = bce_rows(g, &mut s, &xt, &zt, &a.row, Some(&a.grad), red, 2.0).unwrap();
    let noise = LabelNoise {
        amount: 0.0,
        rng: Philox::new(9, 7),
        counters: &state.counters,
    };
    let gb = bce_rows_label_noise(g, &mut s, &xt, &zt, noise, &b.row, &b.grad, red, 2.0).unwrap();
    run(&s);
    assert_eq!(ga.to_bits(), gb.to_bits());
    let bits =
        |t: &Tensor| -> Vec<u32> { t.read_f32(g).unwrap().iter().map(|v| v.to_bits()).collect() };
    assert_eq!(bits(&a.row), bits(&b.row), "rows");
    assert_eq!(bits(&a.grad), bits(&b.grad), "gradient");
}

/// The CPU gradient `sigmoid(x) - t` is the gradient of `softplus(x) - t x`
/// for targets past 1 too (label noise makes real targets `1 + F u`):
/// central differences as in `bce_backward_cpu_matches_finite_differences`.
#[test]
fn bce_backward_cpu_matches_finite_differences_for_targets_above_one() {
    let (rows, f) = (4, 5);
    let x = to_f64(&uniform(rows * f, -4.0, 4.0, 270));
    let z = to_f64(&uniform(rows * f, 0.0, 3.5, 271));
    for red in REDS {
        let num = fd_grad(|x| bce::bce_cpu(x, &z, f, red, 2.0).loss, &x, 1e-6);
        let ana = bce::bce_cpu(&x, &z, f, red, 2.0).grad;
        assert_close_f64("bce_backward_fd soft targets", &ana, &num, 1e-8, 1e-6);
    }
}

/// A label noise that is not a finite number >= 0, or a counter tensor that
/// is not one, is refused at record time, naming the op; nothing recorded.
#[test]
fn bce_label_noise_bad_settings_are_refused() {
    use vae_vs_gan::gpu::StepState;
    use vae_vs_gan::ops::bce::{bce_rows_label_noise, LabelNoise};
    use vae_vs_gan::ops::rng::Philox;
    let g = gpu();
    let shape = [4, 1];
    let x = Tensor::zeros(g, &shape, "x").unwrap();
    let o = outputs(&shape);
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let mut s = Step::new("bad");
    let red = BceReduction::Mean;
    for amount in [-0.05f32, f32::NAN, f32::INFINITY] {
        let noise = LabelNoise {
            amount,
            rng: Philox::new(0, 7),
            counters: &state.counters,
        };
        let e = bce_rows_label_noise(g, &mut s, &x, &x, noise, &o.row, &o.grad, red, 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bce_with_logits") && e.contains("label noise") && e.contains(">= 0"),
            "{e}"
        );
    }
    let noise = LabelNoise {
        amount: 0.05,
        rng: Philox::new(0, 7),
        counters: &x, // f32, not the step counters
    };
    assert!(bce_rows_label_noise(g, &mut s, &x, &x, noise, &o.row, &o.grad, red, 1.0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
