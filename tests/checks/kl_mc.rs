//! The one-sample KL estimate `log q(z|x) - log p(z)` on h = [mu | logvar],
//! eps and z (src/ops/kl_mc.rs): GPU vs CPU (latent widths below and above
//! the workgroup, odd row counts, poisoned outputs), the accumulate mode on
//! top of reparam_backward (the VAE's dh), and finiteness at |x| = 100.
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

use super::kl::{check_extremes, make_h, outputs, DIMS, EXTREME_H};
use super::*;
use vae_vs_gan::ops::kl_mc::{self, kl_mc_cpu};
use vae_vs_gan::ops::reduce::rounding_depth;
use vae_vs_gan::ops::reparam::{self, clamp_logvar, reparam_forward_cpu};
use vae_vs_gan::ops::rng::Philox;

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("kl_mc matches cpu", matches_cpu(g).await);
    r.record(
        "kl_mc accumulates onto reparam backward",
        accumulates_onto_reparam_backward(g).await,
    );
    r.record("kl_mc finite at extremes", finite_at_extremes(g).await);
}

/// Inputs of `n` rows of `l` latents: h, eps (Philox normals) and z.
fn inputs(n: usize, l: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let h = make_h(n, l, seed);
    let eps: Vec<f32> = Philox::new(seed, 1).normal_cpu(3, n * l);
    let z = reparam_forward_cpu(&h, &eps, l);
    (h, eps, z)
}

/// Require `|got - want| <= tol` element by element (NaN fails).
fn close_each(
    worst: &mut Worst,
    what: &str,
    got: &[f32],
    want: &[f32],
    tol: &[f64],
) -> Result<(), Failure> {
    ensure(got.len() == want.len() && tol.len() == want.len(), || {
        format!("{what}: {} values, want {}", got.len(), want.len())
    })?;
    for (i, ((&g, &w), &t)) in got.iter().zip(want).zip(tol).enumerate() {
        worst.close(&format!("{what}[{i}]"), &[g], &[w], t, 0.0)?;
    }
    Ok(())
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

pub async fn matches_cpu(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (j, &(n, l)) in DIMS.iter().enumerate() {
        let (h, eps, z) = inputs(n, l, 700 + 2 * j as u64);
        let ht = tensor(g, &[n, 2 * l], &h, "h")?;
        let et = tensor(g, &[n, l], &eps, "eps")?;
        let zt = tensor(g, &[n, l], &z, "z")?;
        for (scale, with_grad) in [(1.0f32, true), (0.5, true), (1.0, false)] {
            let o = outputs(g, n, l)?;
            let mut s = Step::new("kl_mc");
            let d = if with_grad { Some(&o.dh) } else { None };
            kl_mc::kl_mc(g, &mut s, &ht, &et, &zt, &o.row, &o.loss, d, false, scale)?;
            run(g, &[&s])?;
            let want = kl_mc_cpu(&h, &eps, &z, l, scale as f64);
            let (row_tol, loss_tol, dh_tol) = tolerances(&h, &eps, &z, l, scale as f64, &want.rows);
            let what = format!("kl_mc {n}x{l} scale {scale}");
            close_each(
                &mut worst,
                &format!("{what} rows"),
                &read(g, &o.row).await?,
                &want.rows,
                &row_tol,
            )?;
            close_each(
                &mut worst,
                &format!("{what} loss"),
                &read(g, &o.loss).await?,
                &[want.loss as f32],
                &[loss_tol + U * want.loss.abs()],
            )?;
            let got = read(g, &o.dh).await?;
            if with_grad {
                close_each(&mut worst, &format!("{what} dh"), &got, &want.grad, &dh_tol)?;
            } else {
                ensure(got.iter().all(|v| v.is_nan()), || {
                    format!("{what}: dh untouched without grad")
                })?;
            }
        }
    }
    worst.done()
}

/// The VAE's latent backward with the estimate: reparam_backward writes dh,
/// then kl_mc adds its gradient (accumulate = true): dh = reparam's + the
/// estimate's. Tolerance: reparam's 4e-6 (tests/checks/reparam.rs) plus the
/// estimate's per element, plus the rounding of the sum (u |dh|).
pub async fn accumulates_onto_reparam_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, l) = (3, 13);
    let (h, eps, z) = inputs(n, l, 720);
    let dz = uniform(n * l, -1.0, 1.0, 723);
    let ht = tensor(g, &[n, 2 * l], &h, "h")?;
    let et = tensor(g, &[n, l], &eps, "eps")?;
    let zt = tensor(g, &[n, l], &z, "z")?;
    let dzt = tensor(g, &[n, l], &dz, "dz")?;
    let o = outputs(g, n, l)?;
    let mut s = Step::new("latent bwd");
    reparam::reparam_backward(g, &mut s, &ht, &et, &dzt, &o.dh)?;
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
    )?;
    run(g, &[&s])?;
    let r = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
    let k = kl_mc_cpu(&h, &eps, &z, l, 1.0);
    let want: Vec<f32> = r.iter().zip(&k.grad).map(|(a, b)| a + b).collect();
    let (_, _, dh_tol) = tolerances(&h, &eps, &z, l, 1.0, &k.rows);
    let tol: Vec<f64> = dh_tol
        .iter()
        .zip(&want)
        .map(|(t, w)| 4e-6 + t + U * (*w as f64).abs())
        .collect();
    close_each(
        &mut worst,
        "kl_mc accumulate dh",
        &read(g, &o.dh).await?,
        &want,
        &tol,
    )?;
    worst.done()
}

/// mu and logvar at +-100 and at the clamp: finite on the GPU and equal to
/// the CPU (z reaches exp(15) * |eps| ~ 1e7, z^2 / 2 ~ 5e13: rtol 1e-5 for
/// the rows and dh, whose terms are of one sign at these sizes); past the
/// clamp no logvar gradient.
pub async fn finite_at_extremes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, l) = (2, 3);
    let h = EXTREME_H.to_vec();
    let eps = vec![1.5f32, -0.5, 2.0, -1.0, 0.25, 3.0];
    let z = reparam_forward_cpu(&h, &eps, l);
    let ht = tensor(g, &[n, 2 * l], &h, "h")?;
    let et = tensor(g, &[n, l], &eps, "eps")?;
    let zt = tensor(g, &[n, l], &z, "z")?;
    let o = outputs(g, n, l)?;
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
    )?;
    run(g, &[&s])?;
    let want = kl_mc_cpu(&h, &eps, &z, l, 1.0);
    check_extremes(g, &mut worst, "kl_mc", &o, &want).await?;
    worst.done()
}
