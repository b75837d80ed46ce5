//! The critic's linear loss: per element `l = -s x` with `s = 2t - 1`
//! (`-x` for a target 1, `x` for a target 0), `dl/dx = -s`. The hinge
//! GAN's generator minimises it with target 1, `-E[D(G(z))]`. Kernel
//! `shaders/linear_loss.wgsl`; the row pass and the mean are
//! [`crate::ops::target_loss`]'s.

use crate::gpu::Kernel;
use crate::ops::target_loss::TargetLoss;
use crate::shaders;

/// The loss: record it with [`TargetLoss::rows`], its CPU reference
/// [`TargetLoss::cpu`].
pub const LINEAR_LOSS: TargetLoss = TargetLoss {
    op: "linear_loss",
    shader: shaders::LINEAR_LOSS,
    elem: linear_loss_elem,
};

/// The per-element loss and its derivative in f64.
pub fn linear_loss_elem(x: f64, t: f64) -> (f64, f64) {
    let s = 2.0 * t - 1.0;
    (-s * x, -s)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![LINEAR_LOSS.kernel()]
}
