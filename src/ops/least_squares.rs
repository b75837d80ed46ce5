//! The least-squares GAN loss (Mao et al. 2017, "Least Squares Generative
//! Adversarial Networks"): per element `l = (x - t)^2 / 2`,
//! `dl/dx = x - t`, on the discriminator's output as it is (no sigmoid).
//! With targets 1 (real) and 0 (fake) for the discriminator and 1 for the
//! generator it is the paper's `a = 0, b = c = 1` objective. Kernel
//! `shaders/least_squares.wgsl`; the row pass and the mean are
//! [`crate::ops::target_loss`]'s.

use crate::gpu::Kernel;
use crate::ops::target_loss::TargetLoss;
use crate::shaders;

/// The loss: record it with [`TargetLoss::rows`], its CPU reference
/// [`TargetLoss::cpu`].
pub const LEAST_SQUARES: TargetLoss = TargetLoss {
    op: "least_squares",
    shader: shaders::LEAST_SQUARES,
    elem: least_squares_elem,
};

/// The per-element loss and its derivative in f64.
pub fn least_squares_elem(x: f64, t: f64) -> (f64, f64) {
    (0.5 * (x - t) * (x - t), x - t)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![LEAST_SQUARES.kernel()]
}
