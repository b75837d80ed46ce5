//! The discriminator's hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato
//! et al. 2018): per element `l = max(0, 1 - s x)` with `s = 2t - 1`
//! (+1 for a real image's target 1, -1 for a fake's target 0), so the
//! discriminator's loss is `E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]`;
//! `dl/dx = -s` where the margin is unmet and 0 where it is met (at the
//! kink, `1 - s x = 0`, the subgradient 0). Its generator's loss is the
//! linear [`crate::ops::linear_loss`]. Kernel `shaders/hinge.wgsl`; the
//! row pass and the mean are [`crate::ops::target_loss`]'s.

use crate::gpu::Kernel;
use crate::ops::target_loss::TargetLoss;
use crate::shaders;

/// The loss: record it with [`TargetLoss::rows`], its CPU reference
/// [`TargetLoss::cpu`].
pub const HINGE: TargetLoss = TargetLoss {
    op: "hinge",
    shader: shaders::HINGE,
    elem: hinge_elem,
};

/// The per-element loss and its (sub)derivative in f64.
pub fn hinge_elem(x: f64, t: f64) -> (f64, f64) {
    let s = 2.0 * t - 1.0;
    let m = 1.0 - s * x;
    (m.max(0.0), if m > 0.0 { -s } else { 0.0 })
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![HINGE.kernel()]
}
