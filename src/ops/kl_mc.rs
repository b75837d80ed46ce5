//! One-sample (Monte Carlo) estimate of the VAE's KL term, at the
//! reparameterised sample: the article's `logqz_x - logpz` (the TensorFlow
//! CVAE's `log_normal_pdf(z, mean, logvar) - log_normal_pdf(z, 0, 0)`),
//! where [`crate::ops::kl`] is its expectation in closed form.
//!
//! Inputs: `h: [N, 2L]` (mu then logvar per row, the layout of
//! [`crate::ops::reparam`]), `eps: [N, L]` the reparameterisation's noise and
//! `z: [N, L]` its sample `z = mu + exp(c / 2) eps` (what
//! [`crate::ops::reparam::reparam_forward`] wrote, read as it is: the
//! estimate is taken at the very sample the decoder saw), with
//! `c = clamp(logvar, -LOGVAR_CLAMP, LOGVAR_CLAMP)` as everywhere. Per
//! latent element, the `log 2 pi` terms cancelling,
//! `log q(z|x) = -0.5 ((z - mu)^2 exp(-c) + c) = -0.5 (eps^2 + c)` (since
//! `z - mu = exp(c / 2) eps`: the form without the cancellation is used) and
//! `log p(z) = -0.5 z^2`, so per sample
//! `kl[n] = sum_j (0.5 z^2 - 0.5 (eps^2 + c))`. It can be negative; its
//! mean over eps is the analytic KL. The scalar `loss[0] = scale * mean_n
//! kl[n]`.
//!
//! **Gradient.** Of that scalar with eps held fixed and z moving with mu
//! and logvar (`dz/dmu = 1`, `dz/dlogvar = 0.5 exp(c / 2) eps` inside the
//! clamp): `log q`'s direct part `(z - mu) exp(-c)` and its part through z
//! `-(z - mu) exp(-c)` cancel for mu; for logvar the direct
//! `0.5 (z - mu)^2 exp(-c) - 0.5 = 0.5 eps^2 - 0.5` and the through-z
//! `-(z - mu) exp(-c) * 0.5 exp(c / 2) eps = -0.5 eps^2` leave `-0.5`.
//! `-log p(z)` gives `z` and `z * 0.5 exp(c / 2) eps`. So
//! `dmu = z * scale / N`, `dlogvar = (0.5 z eps exp(c / 2) - 0.5) * scale / N`
//! where `|logvar| <= 30`, 0 beyond (the exact derivative of the clamped
//! function, as in [`crate::ops::kl`]). The decoder's gradient reaches mu
//! and logvar through [`crate::ops::reparam::reparam_backward`]; this op
//! adds its own into the same `dh` (`accumulate`), as the analytic KL does.

use crate::error::Result;
use crate::gpu::{Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::kl::kl_params;
use crate::ops::reduce::{dispatch_rows, record_loss, LossCpu};
use crate::ops::reparam::{clamp_logvar, LOGVAR_CLAMP};
use crate::ops::rng::snippet_kernel;
use crate::ops::Real;
use crate::shaders;

fn rows_kernel(grad: bool) -> Kernel {
    use Access::*;
    let (entry, access): (&'static str, &[Access]) = if grad {
        ("kl_mc_rows_grad", &[Read, Read, Read, ReadWrite, ReadWrite])
    } else {
        ("kl_mc_rows", &[Read, Read, Read, ReadWrite])
    };
    snippet_kernel(&[shaders::WG_REDUCE], shaders::KL_MC, entry, access)
}

/// Record the estimate and, when `dh` is given, its gradient (written, or
/// added to `dh` when `accumulate`). `h`, `dh`: f32 `[N, 2L]`; `eps`, `z`:
/// `[N, L]`; `row_kl`: `[N]` (per-sample estimate in nats, unscaled);
/// `loss`: `[1]`.
#[allow(clippy::too_many_arguments)]
pub fn kl_mc(
    gpu: &Gpu,
    step: &mut Step,
    h: &Tensor,
    eps: &Tensor,
    z: &Tensor,
    row_kl: &Tensor,
    loss: &Tensor,
    dh: Option<&Tensor>,
    accumulate: bool,
    scale: f32,
) -> Result<()> {
    record_loss(gpu, step, "kl_mc", h, row_kl, loss, dh, |s| {
        kl_mc_rows(gpu, s, h, eps, z, row_kl, dh, accumulate, scale)
    })
}

/// The first pass of [`kl_mc`] alone: `row_kl` and the gradient, one
/// dispatch. Returns the factor that turns the sum of `row_kl` into the
/// scalar loss (see [`crate::ops::bce::bce_rows`]).
#[allow(clippy::too_many_arguments)]
pub fn kl_mc_rows(
    gpu: &Gpu,
    step: &mut Step,
    h: &Tensor,
    eps: &Tensor,
    z: &Tensor,
    row_kl: &Tensor,
    dh: Option<&Tensor>,
    accumulate: bool,
    scale: f32,
) -> Result<f32> {
    let op = "kl_mc";
    let (rows, params) = kl_params(op, h, row_kl, dh, accumulate, scale)?;
    let gscale = f32::from_bits(params[2]);
    for t in [eps, z] {
        t.expect_dtype(op, DType::F32)?;
        t.expect_shape(op, &[rows, params[1] as usize])?;
    }
    dispatch_rows(
        gpu,
        step,
        op,
        rows_kernel,
        &params,
        &[h, eps, z],
        row_kl,
        dh,
    )?;
    Ok(gscale)
}

/// CPU reference for `h: [N, 2L]`, `eps`, `z: [N, L]` (row-major, `l` = L).
/// `grad` is the estimate's gradient alone (not accumulated). It is the
/// total derivative only when `z` is the reparameterised sample of `h` and
/// `eps` ([`crate::ops::reparam::reparam_forward_cpu`]), as in the step.
pub fn kl_mc_cpu<T: Real>(h: &[T], eps: &[T], z: &[T], l: usize, scale: f64) -> LossCpu<T> {
    let rows = h.len() / (2 * l);
    let gscale = scale / rows as f64;
    let mut grad = vec![T::default(); h.len()];
    let mut row_vals = Vec::with_capacity(rows);
    for r in 0..rows {
        let mut s = 0.0;
        for j in 0..l {
            let lv = h[r * 2 * l + l + j].to_f64();
            let c = clamp_logvar(lv);
            let e = eps[r * l + j].to_f64();
            let zz = z[r * l + j].to_f64();
            s += 0.5 * zz * zz - 0.5 * (e * e + c);
            grad[r * 2 * l + j] = T::from_f64(zz * gscale);
            let d = if lv.abs() <= LOGVAR_CLAMP as f64 {
                (0.5 * zz * e * (0.5 * c).exp() - 0.5) * gscale
            } else {
                0.0
            };
            grad[r * 2 * l + l + j] = T::from_f64(d);
        }
        row_vals.push(s);
    }
    LossCpu {
        loss: gscale * row_vals.iter().sum::<f64>(),
        rows: row_vals.into_iter().map(T::from_f64).collect(),
        grad,
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![rows_kernel(true), rows_kernel(false)]
}
