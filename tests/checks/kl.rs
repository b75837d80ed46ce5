//! Gaussian KL on h = [mu | logvar]: GPU vs CPU (latent widths below and
//! above the workgroup), the accumulate mode on top of reparam_backward
//! (the VAE's dh), and finiteness at |x| = 100.
//!
//! Tolerances (mu in [-2, 2], logvar in [-3, 3]): each term
//! (exp(c) - 1 - c) + mu^2 is <= ~21; WGSL exp on |c| <= 3 has <= 9 ulp
//! error (1.1e-6 relative, 2.2e-5 absolute at exp(3) = 20), and three
//! roundings at magnitude <= 24 (ulp 1.9e-6): under 3e-5 absolute per term.
//! A row sums L terms (plus L/256 + 8 roundings): atol L * 3e-5, rtol 1e-5.
//! The gradient 0.5 (exp(c) - 1) * gscale inherits exp's error: atol
//! 2e-5 * gscale (at exp(3)), rtol 1e-5.

use super::*;
use vae_vs_gan::ops::kl;
use vae_vs_gan::ops::reduce::LossCpu;
use vae_vs_gan::ops::reparam::{self, LOGVAR_CLAMP};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("kl matches cpu", matches_cpu(g).await);
    r.record(
        "kl accumulates onto reparam backward",
        accumulates_onto_reparam_backward(g).await,
    );
    r.record("kl finite at extremes", finite_at_extremes(g).await);
}

/// `n` rows of `[mu | logvar]`, mu in [-2, 2], logvar in [-3, 3] (shared
/// with the one-sample estimator's checks, `super::kl_mc`).
pub fn make_h(n: usize, l: usize, seed: u64) -> Vec<f32> {
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
pub struct Out {
    pub row: Tensor,
    pub loss: Tensor,
    pub dh: Tensor,
}

/// Poisoned outputs for `n` rows of `l` latents.
pub fn outputs(g: &Gpu, n: usize, l: usize) -> Result<Out, Failure> {
    Ok(Out {
        row: poisoned(g, &[n], "row")?,
        loss: poisoned(g, &[1], "loss")?,
        dh: poisoned(g, &[n, 2 * l], "dh")?,
    })
}

/// (rows, latents): widths below and above the 256-invocation workgroup.
pub const DIMS: [(usize, usize); 4] = [(1, 1), (3, 13), (129, 2), (2, 300)];

pub async fn matches_cpu(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (j, &(n, l)) in DIMS.iter().enumerate() {
        let h = make_h(n, l, 600 + 2 * j as u64);
        let ht = tensor(g, &[n, 2 * l], &h, "h")?;
        for (scale, with_grad) in [(1.0f32, true), (0.5, true), (1.0, false)] {
            let o = outputs(g, n, l)?;
            let mut s = Step::new("kl");
            let d = if with_grad { Some(&o.dh) } else { None };
            kl::kl_divergence(g, &mut s, &ht, &o.row, &o.loss, d, false, scale)?;
            run(g, &[&s])?;
            let want = kl::kl_cpu(&h, l, scale as f64);
            let what = format!("kl {n}x{l} scale {scale}");
            let atol = l as f64 * 3e-5;
            worst.close(
                &format!("{what} rows"),
                &read(g, &o.row).await?,
                &want.rows,
                atol,
                1e-5,
            )?;
            worst.close(
                &format!("{what} loss"),
                &read(g, &o.loss).await?,
                &[want.loss as f32],
                scale as f64 * atol,
                1e-5,
            )?;
            let got = read(g, &o.dh).await?;
            if with_grad {
                let gscale = scale as f64 / n as f64;
                worst.close(&format!("{what} dh"), &got, &want.grad, 2e-5 * gscale, 1e-5)?;
            } else {
                ensure(got.iter().all(|v| v.is_nan()), || {
                    format!("{what}: dh untouched without grad")
                })?;
            }
        }
    }
    worst.done()
}

/// The VAE's latent backward: reparam_backward writes dh, then the KL adds
/// its gradient (accumulate = true). dh = reparam grad + KL grad.
pub async fn accumulates_onto_reparam_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, l) = (3, 13);
    let h = make_h(n, l, 620);
    let eps = uniform(n * l, -2.0, 2.0, 622);
    let dz = uniform(n * l, -1.0, 1.0, 623);
    let ht = tensor(g, &[n, 2 * l], &h, "h")?;
    let et = tensor(g, &[n, l], &eps, "eps")?;
    let dzt = tensor(g, &[n, l], &dz, "dz")?;
    let o = outputs(g, n, l)?;
    let mut s = Step::new("latent bwd");
    reparam::reparam_backward(g, &mut s, &ht, &et, &dzt, &o.dh)?;
    kl::kl_divergence(g, &mut s, &ht, &o.row, &o.loss, Some(&o.dh), true, 1.0)?;
    run(g, &[&s])?;
    let r = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
    let k = kl::kl_cpu(&h, l, 1.0);
    let want: Vec<f32> = r.iter().zip(&k.grad).map(|(a, b)| a + b).collect();
    // reparam's 4e-6 (see tests/checks/reparam.rs) plus the KL's 2e-5 / N.
    worst.close(
        "kl accumulate dh",
        &read(g, &o.dh).await?,
        &want,
        4e-6 + 2e-5 / n as f64,
        1e-5,
    )?;
    worst.done()
}

/// Two rows of `[mu | logvar]` at L = 3 with mu and logvar at +-100, 0,
/// 5, at the clamp and beyond it: the extremes both KL estimators are
/// tested at.
pub const EXTREME_H: [f32; 12] = [
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
pub async fn finite_at_extremes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, l) = (2, 3);
    let h = EXTREME_H.to_vec();
    let ht = tensor(g, &[n, 2 * l], &h, "h")?;
    let o = outputs(g, n, l)?;
    let mut s = Step::new("kl extreme");
    kl::kl_divergence(g, &mut s, &ht, &o.row, &o.loss, Some(&o.dh), false, 1.0)?;
    run(g, &[&s])?;
    check_extremes(g, &mut worst, "kl", &o, &kl::kl_cpu(&h, l, 1.0)).await?;
    worst.done()
}

/// A KL op's outputs on [`EXTREME_H`] against its CPU reference `want`:
/// all finite, rows and loss within rtol 1e-5 (atol 1e-5), dh within rtol
/// 1e-5 (atol 1e-6), and no logvar gradient past the clamp (logvar 100,
/// -100 and 88).
pub async fn check_extremes(
    g: &Gpu,
    worst: &mut Worst,
    what: &str,
    o: &Out,
    want: &LossCpu<f32>,
) -> Result<(), Failure> {
    let rows = read(g, &o.row).await?;
    let dh = read(g, &o.dh).await?;
    let loss = read(g, &o.loss).await?;
    ensure(
        rows.iter().chain(&dh).chain(&loss).all(|v| v.is_finite()),
        || format!("{what}: {rows:?} {dh:?}"),
    )?;
    ensure(want.loss.is_finite(), || {
        format!("{what}: CPU loss {}", want.loss)
    })?;
    worst.close(
        &format!("{what} extreme rows"),
        &rows,
        &want.rows,
        1e-5,
        1e-5,
    )?;
    worst.close(&format!("{what} extreme dh"), &dh, &want.grad, 1e-6, 1e-5)?;
    worst.close(
        &format!("{what} extreme loss"),
        &loss,
        &[want.loss as f32],
        1e-5,
        1e-5,
    )?;
    worst.equal(
        &format!("{what} logvar gradient past the clamp"),
        &[dh[3], dh[4], dh[6 + 5]],
        &[0.0, 0.0, 0.0],
    )
}
