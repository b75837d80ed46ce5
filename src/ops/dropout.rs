//! Inverted dropout (Keras semantics), rate `p`.
//!
//! Training: element `i` is kept when its uniform draw `u >= p` and then
//! scaled by `1/(1-p)`, so the expected output equals the input and eval is
//! the identity. The draw is the Philox uniform of element `i` at the
//! current step on the layer's stream (exactly what
//! [`crate::ops::rng::fill_uniform`] writes). The forward saves the mask
//! (`1/(1-p)` or `0`, f32, same shape as `x`); the backward is
//! `dx = dy * mask`, so the same elements are dropped in both directions even
//! if the step counter moves between them.
//!
//! Eval: the layer may pass `x` straight on; [`dropout_eval`] is a copy for
//! callers that need the output in its own tensor (its backward is the
//! identity as well).
//!
//! The CPU twin gives the same mask (the comparison `u >= p` is exact in
//! f32) and the same outputs bit for bit (`x * mask` rounds once on both).

use crate::error::{Error, Result};
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::rng::{check_counters, snippet_kernel, Philox};
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

fn kernel(entry: &'static str, access: &[Access]) -> Kernel {
    snippet_kernel(&[shaders::PHILOX], shaders::DROPOUT, entry, access)
}

fn forward_kernel() -> Kernel {
    kernel(
        "dropout_forward",
        &[
            Access::Read,
            Access::Read,
            Access::ReadWrite,
            Access::ReadWrite,
        ],
    )
}

fn backward_kernel() -> Kernel {
    kernel(
        "dropout_backward",
        &[Access::Read, Access::Read, Access::ReadWrite],
    )
}

fn copy_kernel() -> Kernel {
    kernel("dropout_copy", &[Access::Read, Access::ReadWrite])
}

/// The scale of kept elements, `1/(1-p)` in f32 (what GPU and CPU use).
pub fn keep_scale(p: f32) -> f32 {
    1.0 / (1.0 - p)
}

fn check_rate(p: f32) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::invalid(
            "dropout",
            format!("rate {p} must be in [0, 1)"),
        ));
    }
    Ok(())
}

fn params(rng: Philox, n: usize, p: f32) -> Result<[u32; 6]> {
    if n > u32::MAX as usize {
        return Err(Error::invalid("dropout", "more than 2^32 elements"));
    }
    let k = rng.params(n as u32);
    Ok([
        k[0],
        k[1],
        k[2],
        k[3],
        f32_param(p),
        f32_param(keep_scale(p)),
    ])
}

/// Record the training forward: draw, save `mask`, write `y = x * mask`.
/// `x`, `mask`, `y` are f32 of one shape; `counters` is `StepState.counters`.
#[allow(clippy::too_many_arguments)]
pub fn dropout_forward(
    gpu: &Gpu,
    step: &mut Step,
    rng: Philox,
    counters: &Tensor,
    p: f32,
    x: &Tensor,
    mask: &Tensor,
    y: &Tensor,
) -> Result<()> {
    let op = "dropout";
    check_rate(p)?;
    check_counters(op, counters)?;
    for t in [x, mask, y] {
        t.expect_dtype(op, DType::F32)?;
    }
    mask.expect_shape(op, x.shape())?;
    y.expect_shape(op, x.shape())?;
    let n = x.numel();
    let groups = grid(gpu, (n as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &forward_kernel(),
        &params(rng, n, p)?,
        &[counters, x, mask, y],
        groups,
    )
}

/// Record the backward: `dx = dy * mask` (the mask saved by the forward).
pub fn dropout_backward(
    gpu: &Gpu,
    step: &mut Step,
    mask: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    let op = "dropout_backward";
    for t in [mask, dy, dx] {
        t.expect_dtype(op, DType::F32)?;
    }
    dy.expect_shape(op, mask.shape())?;
    dx.expect_shape(op, mask.shape())?;
    let n = mask.numel();
    let groups = grid(gpu, (n as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    let pr = [n as u32, 0, 0, 0, 0, 0];
    step.dispatch(gpu, op, &backward_kernel(), &pr, &[mask, dy, dx], groups)
}

/// Record the eval forward as a copy `y = x` (or skip it and use `x`).
pub fn dropout_eval(gpu: &Gpu, step: &mut Step, x: &Tensor, y: &Tensor) -> Result<()> {
    let op = "dropout_eval";
    x.expect_dtype(op, DType::F32)?;
    y.expect_dtype(op, DType::F32)?;
    y.expect_shape(op, x.shape())?;
    let n = x.numel();
    let groups = grid(gpu, (n as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    let pr = [n as u32, 0, 0, 0, 0, 0];
    step.dispatch(gpu, op, &copy_kernel(), &pr, &[x, y], groups)
}

/// CPU twin of the mask at step counter `step`: `1/(1-p)` where the uniform
/// draw is `>= p`, else 0.
pub fn dropout_mask_cpu(rng: Philox, step: u32, n: usize, p: f32) -> Vec<f32> {
    let s = keep_scale(p);
    rng.uniform_cpu(step, n)
        .into_iter()
        .map(|u| if u >= p { s } else { 0.0 })
        .collect()
}

/// CPU reference forward: `x * mask`.
pub fn dropout_forward_cpu<T: Real>(x: &[T], mask: &[f32]) -> Vec<T> {
    x.iter()
        .zip(mask)
        .map(|(&v, &m)| T::from_f64(v.to_f64() * m as f64))
        .collect()
}

/// CPU reference backward: `dy * mask`.
pub fn dropout_backward_cpu<T: Real>(mask: &[f32], dy: &[T]) -> Vec<T> {
    dropout_forward_cpu(dy, mask)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![forward_kernel(), backward_kernel(), copy_kernel()]
}
