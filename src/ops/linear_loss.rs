//! The critic's linear loss: per element `l = -s x` with `s = 2t - 1`
//! (`-x` for a target 1, `x` for a target 0), `dl/dx = -s`. The hinge
//! GAN's generator minimises it with target 1, `-E[D(G(z))]`. Kernel
//! `shaders/linear_loss.wgsl`; the row pass and the mean are
//! [`crate::ops::target_loss`]'s.

use crate::error::Result;
use crate::gpu::{Gpu, Kernel, Step, Tensor};
use crate::ops::reduce::LossCpu;
use crate::ops::target_loss::{kernel, target_cpu, target_rows};
use crate::ops::Real;
use crate::shaders;

/// Record the loss's row pass: `row_loss` `[N]` and `grad` (shaped like
/// `x`); returns the factor from the sum of `row_loss` to the scalar loss.
pub fn linear_loss_rows(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    t: &Tensor,
    row_loss: &Tensor,
    grad: &Tensor,
    scale: f32,
) -> Result<f32> {
    let shader = shaders::LINEAR_LOSS;
    target_rows(
        gpu,
        step,
        "linear_loss",
        shader,
        x,
        t,
        row_loss,
        grad,
        scale,
    )
}

/// The per-element loss and its derivative in f64.
pub fn linear_loss_elem(x: f64, t: f64) -> (f64, f64) {
    let s = 2.0 * t - 1.0;
    (-s * x, -s)
}

/// CPU reference: rows of `f` features.
pub fn linear_loss_cpu<T: Real>(x: &[T], t: &[T], f: usize, scale: f64) -> LossCpu<T> {
    target_cpu(x, t, f, scale, linear_loss_elem)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![kernel(shaders::LINEAR_LOSS)]
}
