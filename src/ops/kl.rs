//! KL divergence of the VAE's diagonal Gaussian posterior from `N(0, I)`.
//!
//! Input `h: [N, 2L]`, mu then logvar per row (the layout of
//! [`crate::ops::reparam`]). Per sample
//! `kl[n] = -0.5 * sum_j (1 + c - mu^2 - exp(c))`, computed as
//! `0.5 * sum_j ((exp(c) - 1 - c) + mu^2)` (every term >= 0), with
//! `c = clamp(logvar, -LOGVAR_CLAMP, LOGVAR_CLAMP)`
//! ([`crate::ops::reparam::LOGVAR_CLAMP`] = 30: `exp(100)` overflows f32, and
//! the issue requires a finite KL at |x| = 100). The scalar
//! `loss[0] = scale * mean_n kl[n]`; the gradient of that scalar is
//! `dmu = mu * scale / N`, `dlogvar = 0.5 (exp(c) - 1) * scale / N` where
//! `|logvar| <= 30` and 0 beyond (the exact derivative of the clamped
//! function: a logvar past the clamp gets no KL gradient).
//!
//! The gradient goes into `dh: [N, 2L]`, overwritten or, with
//! `accumulate = true`, added to what is there: the VAE step records
//! `reparam_backward` (which writes `dh`) and then this op with
//! `accumulate = true`, so `dh` holds the sum of both paths with no extra
//! add kernel.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, Access, Gpu, Kernel, Step, Tensor};
use crate::ops::reduce::{check_loss_outputs, dispatch_rows, record_loss, LossCpu};
use crate::ops::reparam::{clamp_logvar, LOGVAR_CLAMP};
use crate::ops::rng::snippet_kernel;
use crate::ops::Real;
use crate::shaders;

fn rows_kernel(grad: bool) -> Kernel {
    let (entry, access): (&'static str, &[Access]) = if grad {
        (
            "kl_rows_grad",
            &[Access::Read, Access::ReadWrite, Access::ReadWrite],
        )
    } else {
        ("kl_rows", &[Access::Read, Access::ReadWrite])
    };
    snippet_kernel(&[shaders::WG_REDUCE], shaders::KL, entry, access)
}

/// Record the KL loss and, when `dh` is given, its gradient (written, or
/// added to `dh` when `accumulate`). `h`, `dh`: f32 `[N, 2L]`;
/// `row_kl`: `[N]` (per-sample KL in nats, unscaled); `loss`: `[1]`.
#[allow(clippy::too_many_arguments)]
pub fn kl_divergence(
    gpu: &Gpu,
    step: &mut Step,
    h: &Tensor,
    row_kl: &Tensor,
    loss: &Tensor,
    dh: Option<&Tensor>,
    accumulate: bool,
    scale: f32,
) -> Result<()> {
    record_loss(gpu, step, "kl", h, row_kl, loss, dh, |s| {
        kl_rows(gpu, s, h, row_kl, dh, accumulate, scale)
    })
}

/// Check `h` (`[N, 2L]`, mu then logvar) and the outputs of a per-row KL
/// kernel, and build its parameter block: rows, L, the gradient scale
/// `scale / N`, accumulate, the logvar clamp. Shared by the analytic KL
/// and the one-sample estimate ([`crate::ops::kl_mc`]).
pub(crate) fn kl_params(
    op: &'static str,
    h: &Tensor,
    row_kl: &Tensor,
    dh: Option<&Tensor>,
    accumulate: bool,
    scale: f32,
) -> Result<(usize, [u32; 8])> {
    let (rows, two_l) = check_loss_outputs(op, h, row_kl, None, dh)?;
    if h.shape().len() != 2 || two_l % 2 != 0 {
        return Err(Error::invalid(
            op,
            format!(
                "h {:?} must be [N, 2L] (mu then logvar per row), got {:?}",
                h.label(),
                h.shape()
            ),
        ));
    }
    if h.numel() > u32::MAX as usize {
        return Err(Error::invalid(op, "more than 2^32 elements"));
    }
    let gscale = (scale as f64 / rows as f64) as f32;
    let params = [
        rows as u32,
        (two_l / 2) as u32,
        f32_param(gscale),
        accumulate as u32,
        f32_param(LOGVAR_CLAMP),
        0,
        0,
        0,
    ];
    Ok((rows, params))
}

/// The first pass of [`kl_divergence`] alone: `row_kl` and the gradient,
/// one dispatch. Returns the factor that turns the sum of `row_kl` into
/// the scalar loss (see [`crate::ops::bce::bce_rows`]).
pub fn kl_rows(
    gpu: &Gpu,
    step: &mut Step,
    h: &Tensor,
    row_kl: &Tensor,
    dh: Option<&Tensor>,
    accumulate: bool,
    scale: f32,
) -> Result<f32> {
    let op = "kl";
    let (_, params) = kl_params(op, h, row_kl, dh, accumulate, scale)?;
    dispatch_rows(gpu, step, op, rows_kernel, &params, &[h], row_kl, dh)?;
    Ok(f32::from_bits(params[2]))
}

/// CPU reference for `h: [N, 2L]` (row-major, `l` = L). `grad` is the KL
/// gradient alone (not accumulated).
pub fn kl_cpu<T: Real>(h: &[T], l: usize, scale: f64) -> LossCpu<T> {
    let rows = h.len() / (2 * l);
    let gscale = scale / rows as f64;
    let mut grad = vec![T::default(); h.len()];
    let mut row_vals = Vec::with_capacity(rows);
    for (r, hr) in h.chunks(2 * l).enumerate() {
        let mut s = 0.0;
        for j in 0..l {
            let mu = hr[j].to_f64();
            let lv = hr[l + j].to_f64();
            let c = clamp_logvar(lv);
            s += (c.exp() - 1.0 - c) + mu * mu;
            grad[r * 2 * l + j] = T::from_f64(mu * gscale);
            let d = if lv.abs() <= LOGVAR_CLAMP as f64 {
                0.5 * (c.exp() - 1.0) * gscale
            } else {
                0.0
            };
            grad[r * 2 * l + l + j] = T::from_f64(d);
        }
        row_vals.push(0.5 * s);
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
