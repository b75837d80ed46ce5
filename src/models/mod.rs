//! The article's two models, built on the engine's layers: each is an
//! explicit list of ops, forward then backward then optimizer.

pub mod gan;
pub mod gan_cpu;
pub mod vae;
pub mod vae_cpu;

use crate::error::Result;
use crate::gpu::{Gpu, Step, StepState, Tensor};
use crate::nn::Param;
use crate::optim::adam::{Adam, AdamTensors};

/// Most images one inference submit (encode, decode, generate, classify)
/// holds: bounds the activations' memory (500 decoded VAE images take about
/// 120 MB).
pub const CHUNK: usize = 500;

/// Record one Adam update per parameter.
pub fn record_adam(
    gpu: &Gpu,
    step: &mut Step,
    state: &StepState,
    adam: &Adam,
    params: &[&Param],
) -> Result<()> {
    for p in params {
        let t = AdamTensors {
            param: &p.value,
            grad: &p.grad,
            m: &p.m,
            v: &p.v,
        };
        adam.record_update(gpu, step, &state.counters, &t)?;
    }
    Ok(())
}

/// The `[B, F]` view of an `[B, ...]` activation (flatten: no copy).
pub fn flat(t: &Tensor) -> Result<Tensor> {
    let b = t.shape()[0];
    t.reshape(&[b, t.numel() / b])
}

/// Number of scalars in `params`.
pub fn count(params: &[&Param]) -> usize {
    params.iter().map(|p| p.numel()).sum()
}
pub mod classifier;
