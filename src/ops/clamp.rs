//! Clamp in place: `x = clamp(x, -c, c)` elementwise. The Wasserstein GAN
//! (Arjovsky et al. 2017) keeps its critic Lipschitz by weight clipping:
//! after each critic update every critic parameter is clipped to
//! `[-c, c]` (the paper's c = 0.01): one call over the critic's parameter
//! arena (`Gan::train_step`).
//!
//! Clamping is exact in f32: each result is the element itself or exactly
//! `±c`, nothing is rounded, so the GPU equals the CPU reference bit for
//! bit (tolerance 0). The one exception is the sign of a zero, which WGSL
//! lets an implementation ignore: with c = 0 every result is a zero.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, Access, Gpu, Kernel, Step, Tensor};
use crate::ops::{elementwise_grid, Real};
use crate::shaders;

const OP: &str = "clamp";

fn kernel() -> Kernel {
    Kernel::new(shaders::CLAMP, "clamp_in_place", &[Access::ReadWrite])
}

/// Record `x = clamp(x, -c, c)`, in place. `x` is f32; `c` is finite and
/// `>= 0`, else refused before anything is recorded.
pub fn clamp_in_place(gpu: &Gpu, step: &mut Step, x: &Tensor, c: f32) -> Result<()> {
    if !(c.is_finite() && c >= 0.0) {
        return Err(Error::invalid(
            OP,
            format!(
                "the clipping bound c must be finite and >= 0 (x is clamped to [-c, c]); got c = {c}"
            ),
        ));
    }
    let (n, groups) = elementwise_grid(gpu, OP, &[x])?;
    if n == 0 {
        return Ok(());
    }
    step.dispatch(gpu, OP, &kernel(), &[n, f32_param(c)], &[x], groups)
}

/// CPU reference: `x = clamp(x, -c, c)` in place. Elements inside the
/// range keep their bits; those beyond become `±c` converted to `T`. The
/// GPU takes c as an f32: to compare, pass `c as f32 as f64`.
pub fn clamp_cpu<T: Real>(x: &mut [T], c: f64) {
    for v in x.iter_mut() {
        let f = v.to_f64();
        if f > c {
            *v = T::from_f64(c);
        } else if f < -c {
            *v = T::from_f64(-c);
        }
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![kernel()]
}
