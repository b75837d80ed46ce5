//! Losses of a logit `x` against a target `t`, the mean over every
//! element: the GAN losses beside the cross-entropy
//! ([`crate::ops::least_squares`], [`crate::ops::hinge`],
//! [`crate::ops::linear_loss`]). Each is one WGSL function
//! `loss_elem(x, t) -> (loss, d loss / d x)` in its own file, which the
//! shared row pass `shaders/target_rows.wgsl` runs (one workgroup per row:
//! the row's summed loss, and the gradient), and one f64 function for its
//! CPU reference: each op file is one [`TargetLoss`], which this module runs.
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

/// One target loss: its op name, the WGSL file defining its
/// `loss_elem`, and the same per-element loss and derivative in f64.
#[derive(Clone, Copy, Debug)]
pub struct TargetLoss {
    pub op: &'static str,
    pub shader: Shader,
    pub elem: fn(f64, f64) -> (f64, f64),
}

impl TargetLoss {
    /// The loss's row pass.
    pub fn kernel(self) -> Kernel {
        use Access::*;
        snippet_kernel(
            &[shaders::WG_REDUCE, shaders::TARGET_ROWS],
            self.shader,
            "target_rows_grad",
            &[Read, Read, ReadWrite, ReadWrite],
        )
    }

    /// Record the row pass: `row_loss[r]` the sum of row `r`'s losses and
    /// `grad` (shaped like `x`); one dispatch. Returns the factor that
    /// turns the sum of `row_loss` into the scalar loss, `scale / (N F)`
    /// (for the step's end kernel, [`crate::gpu::StepState::record_end`]).
    #[allow(clippy::too_many_arguments)]
    pub fn rows(
        self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        t: &Tensor,
        row_loss: &Tensor,
        grad: &Tensor,
        scale: f32,
    ) -> Result<f32> {
        let op = self.op;
        let (rows, f) = check_loss_outputs(op, x, row_loss, None, Some(grad))?;
        t.expect_dtype(op, DType::F32)?;
        t.expect_shape(op, x.shape())?;
        if x.numel() > u32::MAX as usize {
            return Err(Error::invalid(op, "more than 2^32 elements"));
        }
        let gscale = (scale as f64 / (rows * f) as f64) as f32;
        let params = [rows as u32, f as u32, f32_param(gscale), 0];
        let kernel = |_grad: bool| self.kernel();
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

    /// CPU reference in f64: rows of `f` features.
    pub fn cpu<T: Real>(self, x: &[T], t: &[T], f: usize, scale: f64) -> LossCpu<T> {
        let gscale = scale / x.len() as f64;
        let each: Vec<(f64, f64)> = x
            .iter()
            .zip(t)
            .map(|(a, b)| (self.elem)(a.to_f64(), b.to_f64()))
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
}
