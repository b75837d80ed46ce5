//! Gaussian KL on h = [mu | logvar]: GPU vs CPU (latent widths below and
//! above the workgroup), the accumulate mode on top of reparam_backward
//! (the VAE's dh), CPU backward vs finite differences including past the
//! logvar clamp, finiteness at |x| = 100, and shape refusal.
//!
//! Tolerances (mu in [-2, 2], logvar in [-3, 3]): each term
//! (exp(c) - 1 - c) + mu^2 is <= ~21; WGSL exp on |c| <= 3 has <= 9 ulp
//! error (1.1e-6 relative, 2.2e-5 absolute at exp(3) = 20), and three
//! roundings at magnitude <= 24 (ulp 1.9e-6): under 3e-5 absolute per term.
//! A row sums L terms (plus L/256 + 8 roundings): atol L * 3e-5, rtol 1e-5.
//! The gradient 0.5 (exp(c) - 1) * gscale inherits exp's error: atol
//! 2e-5 * gscale (at exp(3)), rtol 1e-5.

use crate::common::*;
use vae_vs_gan::ops::kl;
use vae_vs_gan::ops::reduce::LossCpu;
use vae_vs_gan::ops::reparam::{self, LOGVAR_CLAMP};
use vae_vs_gan::{Step, Tensor};

/// `n` rows of `[mu | logvar]`, mu in [-2, 2], logvar in [-3, 3] (shared
/// with the one-sample estimator's tests, `crate::kl_mc`).
pub(crate) fn make_h(n: usize, l: usize, seed: u64) -> Vec<f32> {
    let mu = uniform(n * l, -2.0, 2.0, seed);
    let lv = uniform(n * l, -3.0, 3.0, seed + 1);
    let mut h = Vec::new();
    for r in 0..n {
        h.extend_from_slice(&mu[r * l..(r + 1) * l]);
        h.extend_from_slice(&lv[r * l..(r + 1) * l]);
    }
    h
}

/// A KL op's outputs: per-row values, the scalar loss, the gradient.
pub(crate) struct Out {
    pub row: Tensor,
    pub loss: Tensor,
    pub dh: Tensor,
}

/// Poisoned outputs for `n` rows of `l` latents.
pub(crate) fn outputs(n: usize, l: usize) -> Out {
    let g = gpu();
    let o = Out {
        row: Tensor::zeros(g, &[n], "row").unwrap(),
        loss: Tensor::zeros(g, &[1], "loss").unwrap(),
        dh: Tensor::zeros(g, &[n, 2 * l], "dh").unwrap(),
    };
    for t in [&o.row, &o.loss, &o.dh] {
        t.poison(g);
    }
    o
}

/// (rows, latents): widths below and above the 256-invocation workgroup.
pub(crate) const DIMS: [(usize, usize); 4] = [(1, 1), (3, 13), (129, 2), (2, 300)];

#[test]
fn kl_matches_cpu() {
    let g = gpu();
    for (j, &(n, l)) in DIMS.iter().enumerate() {
        let h = make_h(n, l, 600 + 2 * j as u64);
        let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
        for (scale, with_grad) in [(1.0f32, true), (0.5, true), (1.0, false)] {
            let o = outputs(n, l);
            let mut s = Step::new("kl");
            let d = if with_grad { Some(&o.dh) } else { None };
            kl::kl_divergence(g, &mut s, &ht, &o.row, &o.loss, d, false, scale).unwrap();
            run(&s);
            let want = kl::kl_cpu(&h, l, scale as f64);
            let what = format!("kl {n}x{l} scale {scale}");
            let atol = l as f64 * 3e-5;
            assert_close(
                &format!("{what} rows"),
                &o.row.read_f32(g).unwrap(),
                &want.rows,
                atol,
                1e-5,
            );
            assert_close(
                &format!("{what} loss"),
                &o.loss.read_f32(g).unwrap(),
                &[want.loss as f32],
                scale as f64 * atol,
                1e-5,
            );
            let got = o.dh.read_f32(g).unwrap();
            if with_grad {
                let gscale = scale as f64 / n as f64;
                assert_close(&format!("{what} dh"), &got, &want.grad, 2e-5 * gscale, 1e-5);
            } else {
                assert!(got.iter().all(|v| v.is_nan()), "dh untouched without grad");
            }
        }
    }
}

/// The VAE's latent backward: reparam_backward writes dh, then the KL adds
/// its gradient (accumulate = true). dh = reparam grad + KL grad.
#[test]
fn kl_accumulates_onto_reparam_backward() {
    let g = gpu();
    let (n, l) = (3, 13);
    let h = make_h(n, l, 620);
    let eps = uniform(n * l, -2.0, 2.0, 622);
    let dz = uniform(n * l, -1.0, 1.0, 623);
    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let et = Tensor::from_f32(g, &[n, l], &eps, "eps").unwrap();
    let dzt = Tensor::from_f32(g, &[n, l], &dz, "dz").unwrap();
    let o = outputs(n, l);
    let mut s = Step::new("latent bwd");
    reparam::reparam_backward(g, &mut s, &ht, &et, &dzt, &o.dh).unwrap();
    kl::kl_divergence(g, &mut s, &ht, &o.row, &o.loss, Some(&o.dh), true, 1.0).unwrap();
    run(&s);
    let r = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
    let k = kl::kl_cpu(&h, l, 1.0);
    let want: Vec<f32> = r.iter().zip(&k.grad).map(|(a, b)| a + b).collect();
    // reparam's 4e-6 (see tests/it/reparam.rs) plus the KL's 2e-5 / N.
    assert_close(
        "kl accumulate dh",
        &o.dh.read_f32(g).unwrap(),
        &want,
        4e-6 + 2e-5 / n as f64,
        1e-5,
    );
}

/// Central differences of the f64 CPU loss (h = 1e-6, truncation ~1e-12,
/// roundoff ~1e-16 * |loss| / h ~ 1e-9).
#[test]
fn kl_backward_cpu_matches_finite_differences() {
    let (n, l) = (3, 4);
    let h = to_f64(&make_h(n, l, 630));
    for scale in [1.0, 0.4] {
        let num = fd_grad(|h| kl::kl_cpu(h, l, scale).loss, &h, 1e-6);
        let ana = kl::kl_cpu(&h, l, scale).grad;
        assert_close_f64("kl_backward_fd", &ana, &num, 1e-8, 1e-6);
    }
}

/// At the clamp. Past it (logvar 31, -45) the loss does not change with
/// logvar: the central difference is exactly 0, as is the gradient. Just
/// inside (29.9, exp ~ 1e13) the gradient is the full 0.5 (exp(c) - 1) / N:
/// step 1e-3 there gives truncation (h^2 / 6) f3 / f1 ~ 2e-7 relative and
/// roundoff 1e-16 * 5e12 / 1e-3 = 0.5 absolute on a 5e12 gradient. Only the
/// logvar coordinates are differenced: the 1e13 loss term swamps the mu
/// differences in rounding (mu's gradient is covered by the test above).
#[test]
fn kl_backward_cpu_matches_finite_differences_at_clamp() {
    let l = 3;
    let mut h = to_f64(&make_h(2, l, 640));
    h[l] = 31.0;
    h[l + 1] = 29.9;
    h[2 * l + l + 2] = -45.0;
    let ana = kl::kl_cpu(&h, l, 1.0).grad;
    for (i, step, want_zero) in [
        (l, 1e-6, true),
        (2 * l + l + 2, 1e-6, true),
        (l + 1, 1e-3, false),
    ] {
        let f = |d: f64| {
            let mut hh = h.clone();
            hh[i] += d;
            kl::kl_cpu(&hh, l, 1.0).loss
        };
        let num = (f(step) - f(-step)) / (2.0 * step);
        if want_zero {
            assert_eq!(num, 0.0, "coordinate {i}");
            assert_eq!(ana[i], 0.0, "coordinate {i}");
        } else {
            assert_close_f64("kl_backward_fd near clamp", &[ana[i]], &[num], 1.0, 1e-6);
            assert!(ana[i] > 1e12);
        }
    }
}

/// Two rows of `[mu | logvar]` at L = 3 with mu and logvar at +-100, 0,
/// 5, at the clamp and beyond it: the extremes both KL estimators are
/// tested at.
pub(crate) const EXTREME_H: [f32; 12] = [
    100.0,
    -100.0,
    0.0,
    100.0,
    -100.0,
    0.0, //
    -100.0,
    100.0,
    5.0,
    LOGVAR_CLAMP,
    -LOGVAR_CLAMP,
    88.0,
];

/// mu and logvar at +-100 (and at the clamp): without the clamp exp(100)
/// would overflow f32 to inf. Finite on GPU and CPU, and equal: the terms
/// reach exp(30) = 1.07e13 and mu^2 = 1e4; WGSL exp(30) has <= 63 ulp
/// (7.5e-6 relative): rtol 1e-5.
#[test]
fn kl_finite_at_extremes() {
    let g = gpu();
    let (n, l) = (2, 3);
    let h = EXTREME_H.to_vec();
    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let o = outputs(n, l);
    let mut s = Step::new("kl extreme");
    kl::kl_divergence(g, &mut s, &ht, &o.row, &o.loss, Some(&o.dh), false, 1.0).unwrap();
    run(&s);
    check_extremes("kl", &o, &kl::kl_cpu(&h, l, 1.0));
}

/// A KL op's outputs on [`EXTREME_H`] against its CPU reference `want`:
/// all finite, rows and loss within rtol 1e-5 (atol 1e-5), dh within rtol
/// 1e-5 (atol 1e-6), and no logvar gradient past the clamp (logvar 100,
/// -100 and 88).
pub(crate) fn check_extremes(what: &str, o: &Out, want: &LossCpu<f32>) {
    let g = gpu();
    let rows = o.row.read_f32(g).unwrap();
    let dh = o.dh.read_f32(g).unwrap();
    let loss = o.loss.read_f32(g).unwrap();
    assert!(
        rows.iter().chain(&dh).chain(&loss).all(|v| v.is_finite()),
        "{what}: {rows:?} {dh:?}"
    );
    assert!(want.loss.is_finite(), "{what}: CPU loss {}", want.loss);
    assert_close(
        &format!("{what} extreme rows"),
        &rows,
        &want.rows,
        1e-5,
        1e-5,
    );
    assert_close(&format!("{what} extreme dh"), &dh, &want.grad, 1e-6, 1e-5);
    assert_close(
        &format!("{what} extreme loss"),
        &loss,
        &[want.loss as f32],
        1e-5,
        1e-5,
    );
    assert_eq!(dh[3], 0.0, "{what}");
    assert_eq!(dh[4], 0.0, "{what}");
    assert_eq!(dh[6 + 5], 0.0, "{what}");
}

#[test]
fn kl_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let h = Tensor::zeros(g, &[4, 6], "h").unwrap();
    let odd = Tensor::zeros(g, &[4, 5], "odd").unwrap();
    let o = outputs(4, 3);
    let row3 = Tensor::zeros(g, &[3], "row3").unwrap();
    let mut s = Step::new("bad");
    let e = kl::kl_divergence(g, &mut s, &h, &row3, &o.loss, None, false, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("kl") && e.contains("[4]") && e.contains("[3]"),
        "{e}"
    );
    assert!(kl::kl_divergence(g, &mut s, &odd, &o.row, &o.loss, None, false, 1.0).is_err());
    let e = kl::kl_divergence(g, &mut s, &h, &o.row, &o.loss, Some(&odd), true, 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[4, 6]") && e.contains("[4, 5]"), "{e}");
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
