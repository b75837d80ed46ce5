//! Softmax cross-entropy with integer labels (the feature classifier's loss).
//!
//! `logits: [N, K]`, `labels: u32 [N]`. Per row, stable (the row max is
//! subtracted before exp, so exp never sees a positive argument and |x| = 100
//! is fine): `row_loss[n] = log(sum_k exp(x_k - m)) + m - x_label`.
//! The scalar `loss[0] = scale * mean_n row_loss[n]`; its gradient
//! `grad = (softmax(x) - onehot(label)) * scale / N`.
//! A label `>= K` cannot be refused at record time (labels live on the GPU):
//! the kernel writes NaN into that row's loss and gradient, so the loss ring
//! shows a NaN at the step of the bad batch.

use crate::error::Result;
use crate::gpu::{f32_param, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::reduce::{check_loss_outputs, dispatch_rows, record_loss, LossCpu};
use crate::ops::rng::snippet_kernel;
use crate::ops::Real;
use crate::shaders;

fn rows_kernel(grad: bool) -> Kernel {
    let (entry, access): (&'static str, &[Access]) = if grad {
        (
            "ce_rows_grad",
            &[
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
            ],
        )
    } else {
        ("ce_rows", &[Access::Read, Access::Read, Access::ReadWrite])
    };
    snippet_kernel(&[shaders::WG_REDUCE], shaders::SOFTMAX_CE, entry, access)
}

/// Record the loss (and its gradient when `grad` is given).
/// `logits`, `grad`: f32 `[N, K]`; `labels`: u32 `[N]`; `row_loss`: `[N]`;
/// `loss`: `[1]`.
#[allow(clippy::too_many_arguments)]
pub fn softmax_ce(
    gpu: &Gpu,
    step: &mut Step,
    logits: &Tensor,
    labels: &Tensor,
    row_loss: &Tensor,
    loss: &Tensor,
    grad: Option<&Tensor>,
    scale: f32,
) -> Result<()> {
    record_loss(gpu, step, "softmax_ce", logits, row_loss, loss, grad, |s| {
        softmax_ce_rows(gpu, s, logits, labels, row_loss, grad, scale)
    })
}

/// The first pass of [`softmax_ce`] alone: `row_loss` and the gradient,
/// one dispatch. Returns the factor that turns the sum of `row_loss` into
/// the scalar loss (see [`crate::ops::bce::bce_rows`]).
pub fn softmax_ce_rows(
    gpu: &Gpu,
    step: &mut Step,
    logits: &Tensor,
    labels: &Tensor,
    row_loss: &Tensor,
    grad: Option<&Tensor>,
    scale: f32,
) -> Result<f32> {
    let op = "softmax_ce";
    if logits.shape().len() != 2 {
        return Err(crate::Error::invalid(
            op,
            format!("logits must be [N, K], got {:?}", logits.shape()),
        ));
    }
    let (rows, k) = check_loss_outputs(op, logits, row_loss, None, grad)?;
    labels.expect_dtype(op, DType::U32)?;
    labels.expect_shape(op, &[rows])?;
    if logits.numel() > u32::MAX as usize {
        return Err(crate::Error::invalid(op, "more than 2^32 elements"));
    }
    let gscale = (scale as f64 / rows as f64) as f32;
    let params = [rows as u32, k as u32, f32_param(gscale), 0];
    let inputs = [logits, labels];
    dispatch_rows(gpu, step, op, rows_kernel, &params, &inputs, row_loss, grad)?;
    Ok(gscale)
}

/// CPU reference: rows of `k` logits.
pub fn softmax_ce_cpu<T: Real>(logits: &[T], labels: &[u32], k: usize, scale: f64) -> LossCpu<T> {
    let rows = logits.len() / k;
    let gscale = scale / rows as f64;
    let mut grad = vec![T::default(); logits.len()];
    let mut row_vals = Vec::with_capacity(rows);
    for (r, xr) in logits.chunks(k).enumerate() {
        let label = labels[r] as usize;
        let m = xr
            .iter()
            .map(|v| v.to_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = xr.iter().map(|v| (v.to_f64() - m).exp()).sum();
        if label >= k {
            row_vals.push(f64::NAN);
            for g in &mut grad[r * k..(r + 1) * k] {
                *g = T::from_f64(f64::NAN);
            }
            continue;
        }
        row_vals.push(s.ln() + m - xr[label].to_f64());
        for (j, v) in xr.iter().enumerate() {
            let p = (v.to_f64() - m).exp() / s;
            let oh = if j == label { 1.0 } else { 0.0 };
            grad[r * k + j] = T::from_f64((p - oh) * gscale);
        }
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
