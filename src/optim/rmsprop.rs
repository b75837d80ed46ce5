//! RMSProp (Tieleman & Hinton), as a GPU kernel (`shaders/rmsprop.wgsl`)
//! and a CPU reference: the optimizer of the Wasserstein GAN (Arjovsky et
//! al. 2017), which trains both critic and generator with RMSProp at lr
//! 5e-5 (momentum-based optimizers such as Adam made its critic's training
//! unstable, the paper reports).
//!
//! The semantics are PyTorch's `torch.optim.RMSprop` with its defaults
//! (alpha 0.99, eps 1e-8, no momentum, not centered, no weight decay). Per
//! parameter tensor `p` with gradient `g` and running average of squared
//! gradients `v` (PyTorch's `square_avg`, starting at zero):
//! `v = alpha v + (1 - alpha) g^2`, then `p -= lr * g / (sqrt(v) + eps)`.
//!
//! There is no bias correction and so no step counter: the update reads
//! the stored `square_avg` alone, and N steps recorded into one submit
//! equal N submits.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, Access, Gpu, Kernel, Step, Tensor};
use crate::ops::{elementwise_grid, Real};
use crate::shaders;

/// RMSProp hyperparameters (PyTorch's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    pub lr: f32,
    /// Smoothing constant of the running average of squared gradients.
    pub alpha: f32,
    /// Added to `sqrt(square_avg)` in the denominator.
    pub eps: f32,
}

impl Default for RmsPropConfig {
    /// PyTorch's `RMSprop(params)`: lr 1e-2, alpha 0.99, eps 1e-8.
    fn default() -> Self {
        RmsPropConfig::pytorch(1e-2)
    }
}

impl RmsPropConfig {
    /// PyTorch's defaults (alpha 0.99, eps 1e-8) with learning rate `lr`;
    /// the WGAN paper's is `pytorch(5e-5)`.
    pub fn pytorch(lr: f32) -> RmsPropConfig {
        RmsPropConfig {
            lr,
            alpha: 0.99,
            eps: 1e-8,
        }
    }

    /// Refuse hyperparameters outside their domain: lr finite and >= 0,
    /// alpha in [0, 1), eps finite and >= 0.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr >= 0.0
            && (0.0..1.0).contains(&self.alpha)
            && self.eps.is_finite()
            && self.eps >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                OP,
                format!(
                    "need lr finite and >= 0, alpha in [0, 1), eps finite and >= 0; \
                     got lr {}, alpha {}, eps {}",
                    self.lr, self.alpha, self.eps
                ),
            ))
        }
    }
}

/// One parameter tensor's update operands, all the same shape, f32.
#[derive(Clone, Copy, Debug)]
pub struct RmsPropTensors<'a> {
    /// Updated in place.
    pub param: &'a Tensor,
    /// Read only.
    pub grad: &'a Tensor,
    /// Running average of squared gradients, updated in place (starts at
    /// zero).
    pub square_avg: &'a Tensor,
}

const OP: &str = "rmsprop";

/// The RMSProp optimizer: its hyperparameters and kernel.
#[derive(Clone, Debug)]
pub struct RmsProp {
    pub config: RmsPropConfig,
}

impl RmsProp {
    /// An optimizer with checked hyperparameters.
    pub fn new(config: RmsPropConfig) -> Result<RmsProp> {
        config.validate()?;
        Ok(RmsProp { config })
    }

    /// Record the update of one parameter tensor. Every operand is f32 and
    /// of the parameter's shape; anything else is refused before anything
    /// is recorded.
    pub fn record_update(&self, gpu: &Gpu, step: &mut Step, t: &RmsPropTensors) -> Result<()> {
        self.config.validate()?;
        let (n, groups) = elementwise_grid(gpu, OP, &[t.param, t.grad, t.square_avg])?;
        let c = &self.config;
        let params = [n, f32_param(c.lr), f32_param(c.alpha), f32_param(c.eps)];
        step.dispatch(
            gpu,
            OP,
            &kernel(),
            &params,
            &[t.grad, t.param, t.square_avg],
            groups,
        )
    }
}

fn kernel() -> Kernel {
    use Access::{Read as R, ReadWrite as W};
    Kernel::new(shaders::RMSPROP, "rmsprop_update", &[R, W, W])
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![kernel()]
}

/// CPU reference: one RMSProp update, in f64 from the stored values, in
/// place.
pub fn rmsprop_update_cpu<T: Real>(
    config: &RmsPropConfig,
    param: &mut [T],
    grad: &[T],
    square_avg: &mut [T],
) {
    let (lr, alpha, eps) = (config.lr as f64, config.alpha as f64, config.eps as f64);
    for i in 0..param.len() {
        let g = grad[i].to_f64();
        let v = alpha * square_avg[i].to_f64() + (1.0 - alpha) * g * g;
        square_avg[i] = T::from_f64(v);
        param[i] = T::from_f64(param[i].to_f64() - lr * g / (v.sqrt() + eps));
    }
}
