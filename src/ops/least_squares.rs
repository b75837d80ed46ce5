//! The least-squares GAN loss (Mao et al. 2017, "Least Squares Generative
//! Adversarial Networks"): per element `l = (x - t)^2 / 2`,
//! `dl/dx = x - t`, on the discriminator's output as it is (no sigmoid).
//! With targets 1 (real) and 0 (fake) for the discriminator and 1 for the
//! generator it is the paper's `a = 0, b = c = 1` objective. Kernel
//! `shaders/least_squares.wgsl`; the row pass and the mean are
//! [`crate::ops::target_loss`]'s.

use crate::error::Result;
use crate::gpu::{Gpu, Kernel, Step, Tensor};
use crate::ops::reduce::LossCpu;
use crate::ops::target_loss::{kernel, target_cpu, target_rows};
use crate::ops::Real;
use crate::shaders;

/// Record the loss's row pass: `row_loss` `[N]` and `grad` (shaped like
/// `x`); returns the factor from the sum of `row_loss` to the scalar loss.
pub fn least_squares_rows(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    t: &Tensor,
    row_loss: &Tensor,
    grad: &Tensor,
    scale: f32,
) -> Result<f32> {
    let shader = shaders::LEAST_SQUARES;
    target_rows(
        gpu,
        step,
        "least_squares",
        shader,
        x,
        t,
        row_loss,
        grad,
        scale,
    )
}

/// The per-element loss and its derivative in f64.
pub fn least_squares_elem(x: f64, t: f64) -> (f64, f64) {
    (0.5 * (x - t) * (x - t), x - t)
}

/// CPU reference: rows of `f` features.
pub fn least_squares_cpu<T: Real>(x: &[T], t: &[T], f: usize, scale: f64) -> LossCpu<T> {
    target_cpu(x, t, f, scale, least_squares_elem)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![kernel(shaders::LEAST_SQUARES)]
}
