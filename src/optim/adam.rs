//! Adam (Kingma & Ba), as a GPU kernel (`shaders/adam.wgsl`) and a CPU
//! reference.
//!
//! Per parameter tensor `p` with gradient `g` and moments `m`, `v`:
//! `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`, then one of two
//! epsilon conventions:
//! - [`EpsConvention::Keras`] (default; the article trains with Keras):
//!   `p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`, eps 1e-7;
//! - [`EpsConvention::PyTorch`]: `p -= lr * mhat / (sqrt(vhat) + eps)` with
//!   `mhat = m / (1 - b1^t)`, `vhat = v / (1 - b2^t)`, eps 1e-8.
//!
//! They differ only in where eps enters (Keras's eps is effectively
//! `eps * sqrt(1 - b2^t)` in PyTorch terms).
//!
//! The step `t = counters[0] + 1` is read by the kernel from the GPU step
//! counter ([`crate::gpu::StepState::counters`], bound as storage), never
//! from a uniform rewritten per step: N steps recorded into one submit see
//! t, t+1, ..., exactly as N submits would, provided every step ends with
//! [`crate::gpu::StepState::record_advance`].

use crate::error::{Error, Result};
use crate::gpu::{f32_param, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::{elementwise_grid, Real};
use crate::shaders;

/// Where epsilon enters the update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EpsConvention {
    /// `lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)` (Keras, TF).
    #[default]
    Keras,
    /// `lr * mhat / (sqrt(vhat) + eps)` (PyTorch).
    PyTorch,
}

/// Adam hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub convention: EpsConvention,
}

impl Default for AdamConfig {
    /// Keras `Adam()`: lr 1e-3, betas 0.9 / 0.999, eps 1e-7.
    fn default() -> Self {
        AdamConfig::keras(1e-3)
    }
}

impl AdamConfig {
    /// Keras defaults with learning rate `lr`.
    pub fn keras(lr: f32) -> AdamConfig {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
            convention: EpsConvention::Keras,
        }
    }

    /// PyTorch defaults with learning rate `lr` (eps 1e-8).
    pub fn pytorch(lr: f32) -> AdamConfig {
        AdamConfig {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            convention: EpsConvention::PyTorch,
        }
    }

    /// Refuse hyperparameters outside their domain.
    pub fn validate(&self) -> Result<()> {
        let ok = self.lr.is_finite()
            && self.lr >= 0.0
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2)
            && self.eps.is_finite()
            && self.eps >= 0.0;
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                OP,
                format!("need lr >= 0, betas in [0, 1), eps >= 0; got {self:?}"),
            ))
        }
    }
}

/// One parameter tensor's update operands, all the same shape, f32.
#[derive(Clone, Copy, Debug)]
pub struct AdamTensors<'a> {
    /// Updated in place.
    pub param: &'a Tensor,
    /// Read only.
    pub grad: &'a Tensor,
    /// First moment, updated in place (starts at zero).
    pub m: &'a Tensor,
    /// Second moment, updated in place (starts at zero).
    pub v: &'a Tensor,
}

const OP: &str = "adam";

/// The Adam optimizer: its hyperparameters and kernel.
#[derive(Clone, Debug)]
pub struct Adam {
    pub config: AdamConfig,
}

impl Adam {
    /// An optimizer with checked hyperparameters.
    pub fn new(config: AdamConfig) -> Result<Adam> {
        config.validate()?;
        Ok(Adam { config })
    }

    /// Record the update of one parameter tensor. `counters` is the step
    /// counter tensor ([`crate::gpu::StepState::counters`], u32); the kernel
    /// uses `t = counters[0] + 1`.
    pub fn record_update(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        counters: &Tensor,
        t: &AdamTensors,
    ) -> Result<()> {
        self.config.validate()?;
        counters.expect_dtype(OP, DType::U32)?;
        if counters.numel() == 0 {
            return Err(Error::invalid(OP, "the step counter tensor is empty"));
        }
        let (n, groups) = elementwise_grid(gpu, OP, &[t.param, t.grad, t.m, t.v])?;
        let c = &self.config;
        let params = [
            n,
            (c.convention == EpsConvention::PyTorch) as u32,
            f32_param(c.lr),
            f32_param(c.beta1),
            f32_param(c.beta2),
            f32_param(c.eps),
        ];
        step.dispatch(
            gpu,
            OP,
            &kernel(),
            &params,
            &[counters, t.grad, t.param, t.m, t.v],
            groups,
        )
    }
}

fn kernel() -> Kernel {
    use Access::{Read as R, ReadWrite as W};
    Kernel::new(shaders::ADAM, "adam_update", &[R, R, W, W, W])
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![kernel()]
}

/// CPU reference: one Adam update at step `t` (1-based: the first update
/// has t = 1), in f64 from the stored values, in place.
pub fn adam_update_cpu<T: Real>(
    config: &AdamConfig,
    t: u32,
    param: &mut [T],
    grad: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    let (lr, b1, b2, eps) = (
        config.lr as f64,
        config.beta1 as f64,
        config.beta2 as f64,
        config.eps as f64,
    );
    let c1 = 1.0 - b1.powi(t as i32);
    let c2 = 1.0 - b2.powi(t as i32);
    for i in 0..param.len() {
        let g = grad[i].to_f64();
        let mi = b1 * m[i].to_f64() + (1.0 - b1) * g;
        let vi = b2 * v[i].to_f64() + (1.0 - b2) * g * g;
        let upd = match config.convention {
            EpsConvention::Keras => lr * c2.sqrt() / c1 * mi / (vi.sqrt() + eps),
            EpsConvention::PyTorch => lr * (mi / c1) / ((vi / c2).sqrt() + eps),
        };
        m[i] = T::from_f64(mi);
        v[i] = T::from_f64(vi);
        param[i] = T::from_f64(param[i].to_f64() - upd);
    }
}
