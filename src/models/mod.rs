//! The article's two models, built on the engine's layers: each is an
//! explicit list of ops, forward then backward then optimizer.

pub mod gan;
pub mod gan_cpu;
pub mod gan_loss;
pub mod kink;
pub mod preset;
pub mod prior;
pub mod settings;
pub mod vae;
pub mod vae_cpu;

use std::path::Path;

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState, Tensor};
use crate::io::Checkpoint;
use crate::nn::{BatchNormLayer, Param, ParamArena};
use crate::optim::adam::{adam_update_cpu, Adam, AdamConfig, AdamTensors};
use crate::optim::rmsprop::{rmsprop_update_cpu, RmsProp, RmsPropConfig, RmsPropTensors};

/// Most images one inference submit (encode, decode, generate, classify)
/// holds: bounds the activations' memory (500 decoded VAE images take about
/// 120 MB).
pub const CHUNK: usize = 500;

/// Run an inference forward over `input`, whole rows of `row` values
/// (784-value images, or `row`-d latents), in submits of at most [`CHUNK`]
/// rows. Per chunk of `m` rows: `acts(m)` allocates the activations (kept
/// while `m` repeats), `record` writes the chunk into them and records the
/// forward into a step named `op`, returning the tensors to read back once
/// the step has run; `collect` gets their values, in that order. A future
/// (a browser awaits it); the blocking forms call it through
/// `pollster::block_on`.
pub(crate) async fn infer_chunked<A>(
    gpu: &Gpu,
    op: &'static str,
    input: &[f32],
    row: usize,
    mut acts: impl FnMut(usize) -> Result<A>,
    mut record: impl FnMut(&A, &[f32], &mut Step) -> Result<Vec<Tensor>>,
    mut collect: impl FnMut(Vec<Vec<f32>>) -> Result<()>,
) -> Result<()> {
    if input.is_empty() || !input.len().is_multiple_of(row) {
        let what = if row == crate::data::PIXELS {
            "28x28 images".to_string()
        } else {
            format!("{row}-d latents")
        };
        return Err(Error::invalid(
            op,
            format!("{} values are not whole {what}", input.len()),
        ));
    }
    let mut kept: Option<(usize, A)> = None;
    for chunk in input.chunks(CHUNK * row) {
        let m = chunk.len() / row;
        if kept.as_ref().map(|(n, _)| *n) != Some(m) {
            kept = Some((m, acts(m)?));
        }
        let a = &kept.as_ref().expect("just set").1;
        let mut s = Step::new(op);
        let outputs = record(a, chunk, &mut s)?;
        gpu.submit(&[&s])?;
        let mut values = Vec::with_capacity(outputs.len());
        for t in &outputs {
            values.push(t.read_f32_async(gpu).await?);
        }
        collect(values)?;
    }
    Ok(())
}

/// The checkpoint metadata `key` as a count, refused (naming the file
/// `path`) when it is missing or not a number.
pub(crate) fn meta_usize(ck: &Checkpoint, path: &Path, key: &str) -> Result<usize> {
    let v = ck
        .metadata
        .get(key)
        .ok_or_else(|| Error::data(path, format!("checkpoint metadata has no {key:?}")))?;
    v.parse().map_err(|_| {
        Error::data(
            path,
            format!("checkpoint metadata {key} = {v:?} is not a number"),
        )
    })
}

/// Refuse a checkpoint whose metadata names another model than `want`
/// (or none).
pub(crate) fn expect_model(ck: &Checkpoint, path: &Path, want: &str) -> Result<()> {
    match ck.metadata.get("model") {
        Some(m) if m == want => Ok(()),
        Some(m) => Err(Error::data(
            path,
            format!(
                "checkpoint is of model {m:?}, not the {}",
                want.to_uppercase()
            ),
        )),
        None => Err(Error::data(path, "checkpoint metadata names no model")),
    }
}

/// What a model keeps in its checkpoint: its parameters with their Adam
/// moments (PyTorch names and layouts), then its batch norms' running
/// statistics. One restore path serves every model.
pub(crate) struct Stored<'a> {
    /// The checkpoint's "model" metadata.
    pub model: &'static str,
    /// How errors name the model ("the VAE").
    pub label: &'static str,
    pub params: Vec<&'a Param>,
    pub batch_norms: Vec<&'a BatchNormLayer>,
    /// Whether a weights-only checkpoint (no `optimizer.` tensors) is
    /// accepted, its moments starting at zero.
    pub weights_only_ok: bool,
}

impl Stored<'_> {
    /// Names and PyTorch shapes of the tensors, with or without the moments.
    pub fn entries(&self, with_moments: bool) -> Vec<(String, Vec<usize>)> {
        let mut e: Vec<(String, Vec<usize>)> = Vec::new();
        for p in &self.params {
            if with_moments {
                e.extend(p.checkpoint_entries());
            } else {
                e.push((p.name.clone(), p.torch_shape()));
            }
        }
        for bn in &self.batch_norms {
            for (name, t) in bn.buffers() {
                e.push((name, t.shape().to_vec()));
            }
        }
        e
    }

    /// Everything into a new checkpoint (the moments too), with the
    /// model's name as its "model" metadata.
    pub async fn checkpoint_async(&self, gpu: &Gpu) -> Result<Checkpoint> {
        let mut ck = Checkpoint::default();
        for p in &self.params {
            p.save_async(gpu, &mut ck).await?;
        }
        for bn in &self.batch_norms {
            bn.save_buffers_async(gpu, &mut ck).await?;
        }
        ck.metadata.insert("model".into(), self.model.into());
        Ok(ck)
    }

    /// Restore everything from `ck`; a checkpoint of another model or size
    /// is refused with every mismatched tensor listed.
    pub fn restore(&self, gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<()> {
        if let Some(m) = ck.metadata.get("model") {
            if m != self.model {
                return Err(Error::data(
                    path,
                    format!("checkpoint is of model {m:?}, not {}", self.label),
                ));
            }
        }
        let with_moments =
            !self.weights_only_ok || ck.tensors.keys().any(|n| n.starts_with("optimizer."));
        ck.expect(path, &self.entries(with_moments))?;
        for p in &self.params {
            if with_moments {
                p.load(gpu, ck, path)?;
            } else {
                p.load_weights(gpu, ck, path)?;
            }
        }
        for bn in &self.batch_norms {
            bn.load_buffers(gpu, ck, path)?;
        }
        Ok(())
    }
}

/// Record one Adam update of every parameter in `arena`: one dispatch.
pub fn record_adam(
    gpu: &Gpu,
    step: &mut Step,
    state: &StepState,
    adam: &Adam,
    arena: &ParamArena,
) -> Result<()> {
    let t = AdamTensors {
        param: &arena.value,
        grad: &arena.grad,
        m: &arena.m,
        v: &arena.v,
    };
    adam.record_update(gpu, step, &state.counters, &t)
}

/// Which optimizer updates a network's parameter arena: Adam (every model's
/// default), or RMSProp (the Wasserstein GAN's). RMSProp keeps its running
/// mean square in the arena's second moment `v` (`m` stays zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Adam(AdamConfig),
    RmsProp(RmsPropConfig),
}

impl Optimizer {
    /// Record one update of every parameter in `arena`: one dispatch.
    pub fn record(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        state: &StepState,
        arena: &ParamArena,
    ) -> Result<()> {
        match *self {
            Optimizer::Adam(c) => record_adam(gpu, step, state, &Adam::new(c)?, arena),
            Optimizer::RmsProp(c) => {
                let t = RmsPropTensors {
                    param: &arena.value,
                    grad: &arena.grad,
                    square_avg: &arena.v,
                };
                RmsProp::new(c)?.record_update(gpu, step, &t)
            }
        }
    }

    /// CPU reference of [`Self::record`] on one parameter at step `t`
    /// (1-based; Adam's bias correction), in place.
    pub fn update_cpu<T: crate::ops::Real>(
        &self,
        t: u32,
        param: &mut [T],
        grad: &[T],
        m: &mut [T],
        v: &mut [T],
    ) {
        match self {
            Optimizer::Adam(c) => adam_update_cpu(c, t, param, grad, m, v),
            Optimizer::RmsProp(c) => rmsprop_update_cpu(c, param, grad, v),
        }
    }

    /// Refuse hyperparameters outside their domain.
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Adam(c) => c.validate(),
            Optimizer::RmsProp(c) => c.validate(),
        }
    }
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
