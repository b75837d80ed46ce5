//! The one-sample KL estimate `log q(z|x) - log p(z)` on h = [mu | logvar],
//! eps and z (src/ops/kl_mc.rs): GPU vs CPU (latent widths below and above
//! the workgroup, odd row counts, poisoned outputs), the accumulate mode on
//! top of reparam_backward (the VAE's dh), the CPU backward against central
//! differences of the loss as a function of h with z = mu + exp(c/2) eps
//! recomputed (the total derivative through z), the estimate and its
//! gradient averaged over many eps against the analytic KL's (the estimate
//! is unbiased), finiteness at |x| = 100, and shape refusal.
//!
//! Inputs: mu in [-2, 2], logvar in [-3, 3], eps the Philox normals, z their
//! reparameterised sample (the CPU formula in f64, rounded to f32: both sides
//! read the same z, as the step's kernel reads reparam_forward's). u = 2^-24.
//!
//! Tolerances, from WGSL's accuracy rules (`+`, `*` correctly rounded; `exp`
//! within 3 + 2|x| ulp):
//! - **rows**: each term `0.5 (z z) - 0.5 (e e + c)` takes no transcendental:
//!   four roundings (z z, e e, + c, the difference; the halvings are exact),
//!   each <= u times a magnitude <= A = 0.5 z^2 + 0.5 (e^2 + |c|): <= 4 u A.
//!   The row sum (fixed-order tree, `ops::reduce`: ceil(L/256) + 8 roundings
//!   of partial sums, each <= u sum |term| <= u sum A, the terms having both
//!   signs) and the stored value: row tolerance
//!   `(4 + ceil(L/256) + 9) u sum_j A_j`.
//! - **loss**: the rows' tolerances times gscale, plus the scalar pass's
//!   `(rounding_depth(N) + 2) u gscale sum |row|`.
//! - **dmu** = z gscale: gscale rounded to f32, one product, and the
//!   reference's own rounding to f32: `3 u |dmu|`.
//! - **dlogvar** = (0.5 z e exp(c/2) - 0.5) gscale: exp(|c/2| <= 1.5) is
//!   within 6 ulp = 12 u relative, two more products: the product P is
//!   within 15 u P; the subtraction, the gscale product, gscale's rounding
//!   and the reference's add 4 u |dlogvar|: `gscale 15 u |P| + 4 u |dlogvar|`.
//!   (The rows' and the loss's reference roundings are inside their
//!   counts: the `+ 9` is the tree's 8 levels and the reference's f32.)

use crate::common::*;
use crate::kl::{make_h, outputs, DIMS};
use vae_vs_gan::ops::kl::kl_cpu;
use vae_vs_gan::ops::kl_mc::{self, kl_mc_cpu};
use vae_vs_gan::ops::reduce::rounding_depth;
use vae_vs_gan::ops::reparam::{self, clamp_logvar, reparam_forward_cpu};
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::{Step, Tensor};

const U: f64 = 1.0 / 16_777_216.0;

/// Inputs of `n` rows of `l` latents: h, eps (Philox normals) and z.
fn inputs(n: usize, l: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = make_h(n, l, seed);
    let eps: Vec<f32> = Philox::new(seed, 1).normal_cpu(3, n * l);
    let z = reparam_forward_cpu(&h, &eps, l);
    (h, eps, z)
}

fn check_each(what: &str, got: &[f32], want: &[f32], tol: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0.0f64;
    for (i, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= t,
            "{what}: element {i}: gpu {g}, cpu {w}, |diff| {err:e} > tol {t:e}"
        );
        worst = worst.max(err / t.max(1e-300));
    }
    eprintln!(
        "{what}: {} elements, worst {worst:.3} of the tolerance",
        got.len()
    );
}

/// The tolerances of the module doc: rows, the scalar loss, dh.
fn tolerances(
    h: &[f32],
    eps: &[f32],
    z: &[f32],
    l: usize,
    scale: f64,
    rows: &[f32],
) -> (Vec<f64>, f64, Vec<f64>) {
    let n = h.len() / (2 * l);
    let gscale = scale / n as f64;
    let mut row_tol = vec![0.0; n];
    let mut dh_tol = vec![0.0; h.len()];
    let k = (4 + l.div_ceil(256) + 9) as f64;
    for r in 0..n {
        let mut a = 0.0;
        for j in 0..l {
            let lv = h[r * 2 * l + l + j] as f64;
            let c = clamp_logvar(lv);
            let (e, zz) = (eps[r * l + j] as f64, z[r * l + j] as f64);
            a += 0.5 * zz * zz + 0.5 * (e * e + c.abs());
            dh_tol[r * 2 * l + j] = 3.0 * U * (zz * gscale).abs();
            let p = 0.5 * zz * e * (0.5 * c).exp();
            dh_tol[r * 2 * l + l + j] =
                gscale * 15.0 * U * p.abs() + 4.0 * U * ((p - 0.5) * gscale).abs();
        }
        row_tol[r] = k * U * a;
    }
    let sum_abs: f64 = rows.iter().map(|v| (*v as f64).abs()).sum();
    let loss_tol = gscale * row_tol.iter().sum::<f64>()
        + (rounding_depth(n) + 2) as f64 * U * gscale * sum_abs;
    (row_tol, loss_tol, dh_tol)
}

#[test]
fn kl_mc_matches_cpu() {
    let g = gpu();
    for (j, &(n, l)) in DIMS.iter().enumerate() {
        let (h, eps, z) = inputs(n, l, 700 + 2 * j as u64);
        let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
        let et = Tensor::from_f32(g, &[n, l], &eps, "eps").unwrap();
        let zt = Tensor::from_f32(g, &[n, l], &z, "z").unwrap();
        for (scale, with_grad) in [(1.0f32, true), (0.5, true), (1.0, false)] {
            let o = outputs(n, l);
            let mut s = Step::new("kl_mc");
            let d = if with_grad { Some(&o.dh) } else { None };
            kl_mc::kl_mc(g, &mut s, &ht, &et, &zt, &o.row, &o.loss, d, false, scale).unwrap();
            run(&s);
            let want = kl_mc_cpu(&h, &eps, &z, l, scale as f64);
            let (row_tol, loss_tol, dh_tol) = tolerances(&h, &eps, &z, l, scale as f64, &want.rows);
            let what = format!("kl_mc {n}x{l} scale {scale}");
            check_each(
                &format!("{what} rows"),
                &o.row.read_f32(g).unwrap(),
                &want.rows,
                &row_tol,
            );
            check_each(
                &format!("{what} loss"),
                &o.loss.read_f32(g).unwrap(),
                &[want.loss as f32],
                &[loss_tol + U * want.loss.abs()],
            );
            let got = o.dh.read_f32(g).unwrap();
            if with_grad {
                check_each(&format!("{what} dh"), &got, &want.grad, &dh_tol);
            } else {
                assert!(got.iter().all(|v| v.is_nan()), "dh untouched without grad");
            }
        }
    }
}

/// The VAE's latent backward with the estimate: reparam_backward writes dh,
/// then kl_mc adds its gradient (accumulate = true): dh = reparam's + the
/// estimate's. Tolerance: reparam's 4e-6 (tests/it/reparam.rs) plus the
/// estimate's per element, plus the rounding of the sum (u |dh|).
#[test]
fn kl_mc_accumulates_onto_reparam_backward() {
    let g = gpu();
    let (n, l) = (3, 13);
    let (h, eps, z) = inputs(n, l, 720);
    let dz = uniform(n * l, -1.0, 1.0, 723);
    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let et = Tensor::from_f32(g, &[n, l], &eps, "eps").unwrap();
    let zt = Tensor::from_f32(g, &[n, l], &z, "z").unwrap();
    let dzt = Tensor::from_f32(g, &[n, l], &dz, "dz").unwrap();
    let o = outputs(n, l);
    let mut s = Step::new("latent bwd");
    reparam::reparam_backward(g, &mut s, &ht, &et, &dzt, &o.dh).unwrap();
    kl_mc::kl_mc(
        g,
        &mut s,
        &ht,
        &et,
        &zt,
        &o.row,
        &o.loss,
        Some(&o.dh),
        true,
        1.0,
    )
    .unwrap();
    run(&s);
    let r = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
    let k = kl_mc_cpu(&h, &eps, &z, l, 1.0);
    let want: Vec<f32> = r.iter().zip(&k.grad).map(|(a, b)| a + b).collect();
    let (_, _, dh_tol) = tolerances(&h, &eps, &z, l, 1.0, &k.rows);
    let tol: Vec<f64> = dh_tol
        .iter()
        .zip(&want)
        .map(|(t, w)| 4e-6 + t + U * (*w as f64).abs())
        .collect();
    check_each(
        "kl_mc accumulate dh",
        &o.dh.read_f32(g).unwrap(),
        &want,
        &tol,
    );
}

/// The CPU gradient is the total derivative: central differences (step
/// 1e-6) of the f64 loss as a function of h alone, eps held fixed and
/// z = mu + exp(c/2) eps recomputed from h, in f64 (truncation ~1e-12,
/// roundoff ~1e-16 |loss| / h ~ 1e-9). A gradient that left out the path
/// through z (or took only it) fails: that path is what makes d/dmu = z
/// rather than 0 and d/dlogvar differ from -0.5.
#[test]
fn kl_mc_backward_cpu_is_the_total_derivative() {
    let (n, l) = (3, 4);
    let h = to_f64(&make_h(n, l, 730));
    let eps: Vec<f64> = Philox::new(731, 1).normal_cpu(0, n * l);
    for scale in [1.0, 0.4] {
        let loss = |h: &[f64]| {
            let z = reparam_forward_cpu(h, &eps, l);
            kl_mc_cpu(h, &eps, &z, l, scale).loss
        };
        let num = fd_grad(loss, &h, 1e-6);
        let z = reparam_forward_cpu(&h, &eps, l);
        let ana = kl_mc_cpu(&h, &eps, &z, l, scale).grad;
        assert_close_f64("kl_mc_backward_fd", &ana, &num, 1e-8, 1e-6);
    }
}

/// The estimate is unbiased: over M = 20000 eps draws (the Philox normals,
/// f64), its mean is the analytic KL, and so is its gradient's mean (E[z] =
/// mu; E[0.5 z eps exp(c/2) - 0.5] = 0.5 (exp(c) - 1)), within 5 standard
/// errors of the sample means (a correct estimator fails this with
/// probability ~6e-7 per figure; the draws are fixed, so the test is
/// deterministic). A sign or factor slip in either fails by many errors.
#[test]
fn kl_mc_is_unbiased_for_the_analytic_kl() {
    let (n, l, m) = (2, 3, 20_000);
    let h = to_f64(&make_h(n, l, 740));
    let rng = Philox::new(741, 1);
    let exact = kl_cpu(&h, l, 1.0);
    let k = 1 + h.len();
    let (mut sum, mut sq) = (vec![0.0; k], vec![0.0; k]);
    for s in 0..m {
        let eps: Vec<f64> = rng.normal_cpu(s as u32, n * l);
        let z = reparam_forward_cpu(&h, &eps, l);
        let e = kl_mc_cpu(&h, &eps, &z, l, 1.0);
        for (i, v) in std::iter::once(e.loss).chain(e.grad).enumerate() {
            sum[i] += v;
            sq[i] += v * v;
        }
    }
    for (i, want) in std::iter::once(exact.loss)
        .chain(exact.grad.iter().copied())
        .enumerate()
    {
        let mean = sum[i] / m as f64;
        let var = (sq[i] / m as f64 - mean * mean).max(0.0);
        let se = (var / m as f64).sqrt();
        let what = if i == 0 {
            "loss".into()
        } else {
            format!("grad {}", i - 1)
        };
        eprintln!("kl_mc mean {what}: {mean:.5} vs analytic {want:.5} (se {se:.1e})");
        assert!(
            (mean - want).abs() <= 5.0 * se + 1e-12,
            "kl_mc {what}: mean over {m} draws {mean}, analytic {want}, standard error {se}"
        );
    }
}

/// mu and logvar at +-100 and at the clamp: finite on the GPU and equal to
/// the CPU (z reaches exp(15) * |eps| ~ 1e7, z^2 / 2 ~ 5e13: rtol 1e-5 for
/// the rows and dh, whose terms are of one sign at these sizes); past the
/// clamp no logvar gradient.
#[test]
fn kl_mc_finite_at_extremes() {
    let g = gpu();
    let (n, l) = (2, 3);
    let h = crate::kl::EXTREME_H.to_vec();
    let eps = vec![1.5f32, -0.5, 2.0, -1.0, 0.25, 3.0];
    let z = reparam_forward_cpu(&h, &eps, l);
    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let et = Tensor::from_f32(g, &[n, l], &eps, "eps").unwrap();
    let zt = Tensor::from_f32(g, &[n, l], &z, "z").unwrap();
    let o = outputs(n, l);
    let mut s = Step::new("kl_mc extreme");
    kl_mc::kl_mc(
        g,
        &mut s,
        &ht,
        &et,
        &zt,
        &o.row,
        &o.loss,
        Some(&o.dh),
        false,
        1.0,
    )
    .unwrap();
    run(&s);
    crate::kl::check_extremes("kl_mc", &o, &kl_mc_cpu(&h, &eps, &z, l, 1.0));
}

#[test]
fn kl_mc_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let h = Tensor::zeros(g, &[4, 6], "h").unwrap();
    let e = Tensor::zeros(g, &[4, 3], "eps").unwrap();
    let bad = Tensor::zeros(g, &[4, 2], "bad").unwrap();
    let o = outputs(4, 3);
    let mut s = Step::new("bad");
    let msg = kl_mc::kl_mc(g, &mut s, &h, &bad, &e, &o.row, &o.loss, None, false, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("kl_mc") && msg.contains("[4, 3]") && msg.contains("[4, 2]"),
        "{msg}"
    );
    assert!(kl_mc::kl_mc(g, &mut s, &h, &e, &bad, &o.row, &o.loss, None, false, 1.0).is_err());
    let odd = Tensor::zeros(g, &[4, 5], "odd").unwrap();
    assert!(kl_mc::kl_mc(g, &mut s, &odd, &e, &e, &o.row, &o.loss, None, false, 1.0).is_err());
    let row3 = Tensor::zeros(g, &[3], "row3").unwrap();
    assert!(kl_mc::kl_mc(g, &mut s, &h, &e, &e, &row3, &o.loss, None, false, 1.0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
