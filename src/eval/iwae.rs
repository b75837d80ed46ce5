//! The importance-weighted bound on a VAE's log-likelihood (Burda et al.
//! 2016, "Importance Weighted Autoencoders"), in nats.
//!
//! For an image `x` with posterior `q(z|x) = N(mu, exp(logvar))`, draw
//! `z_j = mu + exp(logvar / 2) eps_j`, `j = 1..k`, and weight each by
//! `log w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x)`. Then
//! `log p(x) >= log (1/k) sum_j w_j`, a bound that tightens as `k` grows;
//! `k = 1` is the single-sample ELBO. The `log 2 pi` terms of the prior and
//! the posterior cancel and are left out.
//!
//! The decoder is the model's business: [`draw`] makes the latents and
//! their prior/posterior correction, the caller decodes them and scores
//! `log p(x|z)` (e.g. with [`bernoulli_log_likelihood`]), and [`bound`]
//! combines. All in f64.

use crate::ops::reparam::clamp_logvar;
use crate::ops::rng::Philox;
use crate::{Error, Result};

const OP: &str = "iwae";

/// Latents for the bound.
#[derive(Clone, Debug)]
pub struct Draws {
    /// `[n, k, L]`: the `k` latents of each image, image-major.
    pub z: Vec<f32>,
    /// `[n, k]`: `log p(z) - log q(z|x)` of each latent.
    pub log_ratio: Vec<f64>,
}

/// `k` posterior draws per image from the means and log-variances
/// (`[n, L]` each; logvar clamped as the reparameterisation clamps it),
/// the noise from Philox `(seed, stream 7)`.
pub fn draw(mu: &[f32], logvar: &[f32], l: usize, k: usize, seed: u64) -> Result<Draws> {
    if l == 0 || k == 0 || mu.is_empty() || mu.len() != logvar.len() || !mu.len().is_multiple_of(l)
    {
        return Err(Error::invalid(
            OP,
            format!(
                "{} means and {} log-variances are not n whole {l}-d rows (k = {k})",
                mu.len(),
                logvar.len()
            ),
        ));
    }
    let n = mu.len() / l;
    let eps: Vec<f64> = Philox::new(seed, 7).normal_cpu(0, n * k * l);
    let mut z = Vec::with_capacity(n * k * l);
    let mut log_ratio = Vec::with_capacity(n * k);
    for (i, e) in eps.chunks_exact(l).enumerate() {
        let row = i / k;
        let mut r = 0.0;
        for j in 0..l {
            let m = mu[row * l + j] as f64;
            let lv = clamp_logvar(logvar[row * l + j] as f64);
            let zj = (m + (0.5 * lv).exp() * e[j]) as f32;
            // log N(z; 0, 1) - log N(z; mu, exp(lv)), with z as rounded.
            let eps_exact = (zj as f64 - m) * (-0.5 * lv).exp();
            r += -0.5 * (zj as f64).powi(2) + 0.5 * eps_exact * eps_exact + 0.5 * lv;
            z.push(zj);
        }
        log_ratio.push(r);
    }
    Ok(Draws { z, log_ratio })
}

/// `log p(x|z)` of one image `x` (values in [0, 1], used as Bernoulli
/// targets) under the decoder's logits: `sum x l - softplus(l)`, the
/// negative of the sigmoid cross-entropy the VAE trains on.
pub fn bernoulli_log_likelihood(logits: &[f32], x: &[f32]) -> f64 {
    logits
        .iter()
        .zip(x)
        .map(|(&l, &x)| {
            let (l, x) = (l as f64, x as f64);
            let softplus = l.max(0.0) + (-l.abs()).exp().ln_1p();
            x * l - softplus
        })
        .sum()
}

/// `log (1/k) sum exp(v)`, stable for any magnitudes.
pub fn log_mean_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + (v.iter().map(|&x| (x - m).exp()).sum::<f64>() / v.len() as f64).ln()
}

/// The bound per image: `log_px_z` and `log_ratio` are `[n, k]`; returns
/// `n` lower bounds on `log p(x)` (nats; negate for a negative
/// log-likelihood).
pub fn bound(log_px_z: &[f64], log_ratio: &[f64], k: usize) -> Result<Vec<f64>> {
    if k == 0 || log_px_z.len() != log_ratio.len() || !log_px_z.len().is_multiple_of(k) {
        return Err(Error::invalid(
            OP,
            format!(
                "{} likelihoods and {} ratios are not n rows of k = {k}",
                log_px_z.len(),
                log_ratio.len()
            ),
        ));
    }
    let w: Vec<f64> = log_px_z.iter().zip(log_ratio).map(|(a, b)| a + b).collect();
    Ok(w.chunks_exact(k).map(log_mean_exp).collect())
}
