//! Binary cross-entropy with logits.
//!
//! Per element, for logit `x` and target `z` in `[0, 1]`:
//! `l = max(x, 0) - x z + log1p(exp(-|x|))`, the stable form of
//! `-(z log s + (1-z) log(1-s))` with `s = sigmoid(x)`: exp only ever sees
//! `-|x|`, so `l` is finite for any finite `x` (|x| = 100 included), and
//! `log1p` is computed accurately for tiny arguments. Gradient
//! `dl/dx = sigmoid(x) - z`.
//!
//! `x: [N, ...]`: rows are samples (the first axis), each of `F` features.
//! The op writes `row_loss[n] = sum_f l` (per-sample nats) and the scalar
//! `loss[0] = scale * R(l)` where the reduction `R` is
//! - [`BceReduction::Mean`]: the mean over all `N*F` elements (Keras
//!   `binary_crossentropy`, the GAN's losses);
//! - [`BceReduction::SumPerSampleMean`]: sum over features, mean over the
//!   batch (the VAE's reconstruction term in nats);
//!
//! and, when asked, the gradient of that scalar:
//! `grad = (sigmoid(x) - z) * scale / (N*F)` or `... * scale / N`.
//! One workgroup per row (fixed-order tree), then one workgroup over the rows.

use crate::error::Result;
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::reduce::{check_loss_outputs, record_chunks, LossCpu};
use crate::ops::rng::snippet_kernel;
use crate::ops::Real;
use crate::shaders;

/// How the per-element losses become the scalar loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BceReduction {
    /// Mean over all `N*F` elements.
    Mean,
    /// Sum over the `F` features of each sample, mean over the `N` samples.
    SumPerSampleMean,
}

impl BceReduction {
    /// Divisor of the summed loss.
    pub fn divisor(self, rows: usize, f: usize) -> f64 {
        match self {
            BceReduction::Mean => (rows * f) as f64,
            BceReduction::SumPerSampleMean => rows as f64,
        }
    }
}

fn rows_kernel(grad: bool) -> Kernel {
    let (entry, access): (&'static str, &[Access]) = if grad {
        (
            "bce_rows_grad",
            &[
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
            ],
        )
    } else {
        ("bce_rows", &[Access::Read, Access::Read, Access::ReadWrite])
    };
    snippet_kernel(&[shaders::WG_REDUCE], shaders::BCE, entry, access)
}

/// Record the loss (and its gradient when `grad` is given).
/// `x`, `z`, `grad`: f32 `[N, ...]`; `row_loss`: `[N]`; `loss`: `[1]`.
#[allow(clippy::too_many_arguments)]
pub fn bce_with_logits(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    z: &Tensor,
    row_loss: &Tensor,
    loss: &Tensor,
    grad: Option<&Tensor>,
    reduction: BceReduction,
    scale: f32,
) -> Result<()> {
    let op = "bce_with_logits";
    check_loss_outputs(op, x, row_loss, Some(loss), grad)?;
    let gscale = bce_rows(gpu, step, x, z, row_loss, grad, reduction, scale)?;
    let rows = row_loss.numel();
    record_chunks(gpu, step, op, row_loss, loss, rows, rows, gscale)
}

/// The first pass of [`bce_with_logits`] alone: `row_loss` and the
/// gradient, one dispatch. Returns the factor that turns the sum of
/// `row_loss` into the scalar loss (for a training step's end kernel,
/// [`crate::gpu::StepState::record_end`], which sums it as the second pass
/// would).
#[allow(clippy::too_many_arguments)]
pub fn bce_rows(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    z: &Tensor,
    row_loss: &Tensor,
    grad: Option<&Tensor>,
    reduction: BceReduction,
    scale: f32,
) -> Result<f32> {
    let op = "bce_with_logits";
    let (rows, f) = check_loss_outputs(op, x, row_loss, None, grad)?;
    z.expect_dtype(op, DType::F32)?;
    z.expect_shape(op, x.shape())?;
    if x.numel() > u32::MAX as usize {
        return Err(crate::Error::invalid(op, "more than 2^32 elements"));
    }
    let div = reduction.divisor(rows, f);
    let gscale = (scale as f64 / div) as f32;
    let params = [rows as u32, f as u32, f32_param(gscale), 0];
    let groups = grid(gpu, rows as u64)?;
    match grad {
        Some(g) => step.dispatch(
            gpu,
            op,
            &rows_kernel(true),
            &params,
            &[x, z, row_loss, g],
            groups,
        )?,
        None => step.dispatch(
            gpu,
            op,
            &rows_kernel(false),
            &params,
            &[x, z, row_loss],
            groups,
        )?,
    }
    Ok(gscale)
}

/// The per-element loss in f64.
pub fn bce_elem(x: f64, z: f64) -> f64 {
    x.max(0.0) - x * z + (-x.abs()).exp().ln_1p()
}

/// Sigmoid in f64, finite for any x.
pub fn sigmoid(x: f64) -> f64 {
    let e = (-x.abs()).exp();
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// CPU reference: rows of `f` features.
pub fn bce_cpu<T: Real>(
    x: &[T],
    z: &[T],
    f: usize,
    reduction: BceReduction,
    scale: f64,
) -> LossCpu<T> {
    let rows = x.len() / f;
    let gscale = scale / reduction.divisor(rows, f);
    let row_vals: Vec<f64> = x
        .chunks(f)
        .zip(z.chunks(f))
        .map(|(xr, zr)| {
            xr.iter()
                .zip(zr)
                .map(|(a, b)| bce_elem(a.to_f64(), b.to_f64()))
                .sum()
        })
        .collect();
    let grad = x
        .iter()
        .zip(z)
        .map(|(a, b)| T::from_f64((sigmoid(a.to_f64()) - b.to_f64()) * gscale))
        .collect();
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
