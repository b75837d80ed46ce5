//! Losses of a logit `x` against a target `t`, the mean over every
//! element: the GAN losses beside the cross-entropy
//! ([`crate::ops::least_squares`], [`crate::ops::hinge`],
//! [`crate::ops::linear_loss`]). Each is one WGSL function
//! `loss_elem(x, t) -> (loss, d loss / d x)` in its own file, which the
//! shared row pass `shaders/target_rows.wgsl` runs (one workgroup per row:
//! the row's summed loss, and the gradient), and one f64 function for its
//! CPU reference. This module is what they share.
//!
//! `x, t: [N, ...]`, rows of `F` features; the scalar loss is
//! `scale * sum(l) / (N F)` (Keras' mean), its gradient
//! `l'(x, t) * scale / (N F)`.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, Access, DType, Gpu, Kernel, Shader, Step, Tensor};
use crate::ops::reduce::{check_loss_outputs, dispatch_rows, LossCpu};
use crate::ops::rng::snippet_kernel;
use crate::ops::Real;
use crate::shaders;

/// The row pass of the loss whose `loss_elem` is in `loss`.
pub(crate) fn kernel(loss: Shader) -> Kernel {
    use Access::*;
    snippet_kernel(
        &[shaders::WG_REDUCE, shaders::TARGET_ROWS],
        loss,
        "target_rows_grad",
        &[Read, Read, ReadWrite, ReadWrite],
    )
}

/// Record the row pass of `loss` (op name `op`): `row_loss[r]` the sum of
/// row `r`'s losses, and `grad`; one dispatch. Returns the factor that
/// turns the sum of `row_loss` into the scalar loss, `scale / (N F)` (for
/// the step's end kernel, [`crate::gpu::StepState::record_end`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn target_rows(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    loss: Shader,
    x: &Tensor,
    t: &Tensor,
    row_loss: &Tensor,
    grad: &Tensor,
    scale: f32,
) -> Result<f32> {
    let (rows, f) = check_loss_outputs(op, x, row_loss, None, Some(grad))?;
    t.expect_dtype(op, DType::F32)?;
    t.expect_shape(op, x.shape())?;
    if x.numel() > u32::MAX as usize {
        return Err(Error::invalid(op, "more than 2^32 elements"));
    }
    let gscale = (scale as f64 / (rows * f) as f64) as f32;
    let params = [rows as u32, f as u32, f32_param(gscale), 0];
    let kernel = |_grad: bool| kernel(loss);
    dispatch_rows(
        gpu,
        step,
        op,
        kernel,
        &params,
        &[x, t],
        row_loss,
        Some(grad),
    )?;
    Ok(gscale)
}

/// CPU reference of a target loss whose per-element loss and derivative
/// are `elem(x, t)`, in f64: rows of `f` features.
pub fn target_cpu<T: Real>(
    x: &[T],
    t: &[T],
    f: usize,
    scale: f64,
    elem: fn(f64, f64) -> (f64, f64),
) -> LossCpu<T> {
    let gscale = scale / x.len() as f64;
    let each: Vec<(f64, f64)> = x
        .iter()
        .zip(t)
        .map(|(a, b)| elem(a.to_f64(), b.to_f64()))
        .collect();
    let rows: Vec<f64> = each
        .chunks(f)
        .map(|r| r.iter().map(|(l, _)| l).sum())
        .collect();
    LossCpu {
        loss: gscale * rows.iter().sum::<f64>(),
        rows: rows.into_iter().map(T::from_f64).collect(),
        grad: each.iter().map(|(_, d)| T::from_f64(d * gscale)).collect(),
    }
}
