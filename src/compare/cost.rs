//! The cost claim's figures, measured alike for both models.
//!
//! Each model's training step is rebuilt at one batch size (the cost
//! batch, `--cost-batch`), at the trained model's other settings, on the
//! comparison's device. Three figures come out of the same procedure for
//! both:
//!
//! - **speed**: training images per second of the step alone (no data
//!   shuffling, evaluation, checkpoints or pictures), each of
//!   [`TIMED_REPEATS`] timed submits after a warm-up (their spread is the
//!   cost claim's noise: it needs no training, so it gets a verdict on any
//!   run);
//! - **memory**: the high-water mark of the engine's buffer accounting
//!   while the step is built and run, above what the device held before:
//!   weights, gradients, Adam moments, activations, scratch and the step's
//!   loss state. Datasets are excluded for both (the batch's images are
//!   uploaded before the count starts), and so is everything else the
//!   comparison holds;
//! - **work**: the GEMM floating-point operations the recorded step
//!   dispatches ([`crate::gpu::StepStats::gemm_flops`]) per training image.
//!
//! The training runs' own speed and peak are still reported, but they are
//! at each model's own batch size and the VAE's includes its test set (for
//! the per-epoch ELBO), so they do not vote.

use std::time::Instant;

use crate::data::{GpuDataset, Images, PIXELS};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, StepState};
use crate::models::gan::{Gan, GanConfig};
use crate::models::vae::{Vae, VaeConfig};

/// The cost batch unless `--cost-batch` says otherwise: the article's
/// batch size for both models.
pub const DEFAULT_COST_BATCH: usize = 32;
/// Timed submits, each one value of the speed figure.
pub const TIMED_REPEATS: usize = 5;
/// Each timed submit runs enough steps to last about this long, so that
/// one submit's fixed cost does not dominate on a fast GPU.
const SUBMIT_SECONDS: f64 = 0.2;
/// The most steps in one submit.
const MAX_STEPS_PER_SUBMIT: usize = 256;

/// One model's training step, measured at the cost batch.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCost {
    pub batch: usize,
    /// Each timed submit's speed, in the order timed.
    pub images_per_sec: Vec<f64>,
    /// Bytes the step's model and buffers held at their peak.
    pub peak_bytes: u64,
    pub gemm_flops_per_image: f64,
}

/// The images the probes gather their batches from, uploaded before any
/// count starts (so no model's memory includes them): `batch` times the
/// most batches a probed step reads (`per_step`: the Wasserstein GAN's
/// critic iterations).
pub(crate) fn probe_data(
    gpu: &Gpu,
    train: &Images,
    batch: usize,
    per_step: usize,
) -> Result<GpuDataset> {
    let n = batch * per_step;
    if train.len() < n {
        return Err(Error::invalid(
            "compare",
            format!(
                "--cost-batch {batch} x {per_step} batches a step: only {} training images loaded",
                train.len()
            ),
        ));
    }
    let images = Images {
        pixels: train.pixels[..n * PIXELS].to_vec(),
        labels: train.labels[..n].to_vec(),
    };
    GpuDataset::upload(gpu, &images, "cost probe")
}

/// The VAE's training step at `batch` (the model's other settings kept).
pub fn vae_step_cost(
    gpu: &Gpu,
    config: &VaeConfig,
    data: &GpuDataset,
    batch: usize,
) -> Result<StepCost> {
    measure(gpu, batch, || {
        let vae = Vae::new(
            gpu,
            VaeConfig {
                batch,
                ..config.clone()
            },
        )?;
        let state = StepState::new(gpu, 2, 64, 0)?;
        let ts = vae.train_step(gpu, &state, data)?;
        Ok((ts.step, Box::new((vae, state))))
    })
}

/// The GAN's training step at `batch` (the model's other settings kept);
/// its images are the real ones it reads (the Wasserstein GAN's critic
/// reads `batch` per iteration).
pub fn gan_step_cost(
    gpu: &Gpu,
    config: &GanConfig,
    data: &GpuDataset,
    batch: usize,
) -> Result<StepCost> {
    measure(gpu, batch * config.critic_iterations(), || {
        let gan = Gan::new(
            gpu,
            GanConfig {
                batch,
                ..config.clone()
            },
        )?;
        let state = StepState::new(gpu, 2, 64, 0)?;
        let ts = gan.train_step(gpu, &state, data)?;
        Ok((ts.step, Box::new((gan, state))))
    })
}

/// What a probe keeps alive while its step runs: the model and the loss
/// state (the step itself keeps every tensor it binds).
type Kept = Box<dyn std::any::Any>;

/// Count memory from now, build the step with `build`, time it, and
/// report; everything built is dropped before returning.
fn measure(
    gpu: &Gpu,
    batch: usize,
    build: impl FnOnce() -> Result<(Step, Kept)>,
) -> Result<StepCost> {
    let before = gpu.allocated_bytes();
    gpu.reset_peak();
    let (step, kept) = build()?;
    // Warm-up: builds (or fetches) the pipelines, first touch of memory.
    gpu.run(&[&step])?;
    let t = Instant::now();
    gpu.run(&[&step])?;
    let one = t.elapsed().as_secs_f64().max(1e-6);
    let reps = ((SUBMIT_SECONDS / one).ceil() as usize).clamp(1, MAX_STEPS_PER_SUBMIT);
    let steps: Vec<&Step> = std::iter::repeat_n(&step, reps).collect();
    let images_per_sec: Vec<f64> = (0..TIMED_REPEATS)
        .map(|_| {
            let t = Instant::now();
            gpu.run(&steps)?;
            Ok((batch * reps) as f64 / t.elapsed().as_secs_f64())
        })
        .collect::<Result<_>>()?;
    let cost = StepCost {
        batch,
        images_per_sec,
        peak_bytes: gpu.peak_bytes().saturating_sub(before),
        gemm_flops_per_image: step.stats().gemm_flops as f64 / batch as f64,
    };
    drop(steps);
    drop((step, kept));
    Ok(cost)
}
