//! Binary cross-entropy with logits.
//!
//! Per element, for logit `x` and target `z` in `[0, 1]`:
//! `l = max(x, 0) - x z + log1p(exp(-|x|))`, the stable form of
//! `-(z log s + (1-z) log(1-s))` with `s = sigmoid(x)`: exp only ever sees
//! `-|x|`, so `l` is finite for any finite `x` (|x| = 100 included), and
//! `log1p` is computed accurately for tiny arguments. Gradient
//! `dl/dx = sigmoid(x) - z`.
//!
//! `x: [N, ...]`: rows are samples (the first axis), each of `F` features.
//! The op writes `row_loss[n] = sum_f l` (per-sample nats) and the scalar
//! `loss[0] = scale * R(l)` where the reduction `R` is
//! - [`BceReduction::Mean`]: the mean over all `N*F` elements (Keras
//!   `binary_crossentropy`, the GAN's losses);
//! - [`BceReduction::SumPerSampleMean`]: sum over features, mean over the
//!   batch (the VAE's reconstruction term in nats);
//!
//! and, when asked, the gradient of that scalar:
//! `grad = (sigmoid(x) - z) * scale / (N*F)` or `... * scale / N`.
//! One workgroup per row (fixed-order tree), then one workgroup over the rows.
//!
//! **Soft targets.** Nothing in the form above needs `z` in `[0, 1]`: for
//! any real target `t`, `l = softplus(x) - t x` (what
//! `max(x, 0) - x t + log1p(exp(-|x|))` is) with `dl/dx = sigmoid(x) - t`.
//! [`bce_rows_label_noise`] draws such targets in the kernel, `t = z +
//! noise * u` with `u ~ U(0, 1)` from Philox per element and step: the
//! article's `labels += 0.05 * tf.random.uniform(labels.shape)` for its
//! discriminator (the GAN's `label_noise`, see [`crate::models::gan`]).
//! For `t > 1` the loss is no longer a cross-entropy of two distributions
//! (its minimum over `x` is then at `x = +inf`), but it is the very function
//! TensorFlow's `sigmoid_cross_entropy_with_logits` computes for such
//! labels.

use crate::error::Result;
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::reduce::{check_loss_outputs, dispatch_rows, record_loss, LossCpu};
use crate::ops::rng::{check_counters, snippet_kernel, Philox};
use crate::ops::Real;
use crate::shaders;

/// How the per-element losses become the scalar loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BceReduction {
    /// Mean over all `N*F` elements.
    Mean,
    /// Sum over the `F` features of each sample, mean over the `N` samples.
    SumPerSampleMean,
}

impl BceReduction {
    /// Divisor of the summed loss.
    pub fn divisor(self, rows: usize, f: usize) -> f64 {
        match self {
            BceReduction::Mean => (rows * f) as f64,
            BceReduction::SumPerSampleMean => rows as f64,
        }
    }
}

fn rows_kernel(grad: bool) -> Kernel {
    let (entry, access): (&'static str, &[Access]) = if grad {
        (
            "bce_rows_grad",
            &[
                Access::Read,
                Access::Read,
                Access::ReadWrite,
                Access::ReadWrite,
            ],
        )
    } else {
        ("bce_rows", &[Access::Read, Access::Read, Access::ReadWrite])
    };
    snippet_kernel(&[shaders::WG_REDUCE], shaders::BCE, entry, access)
}

fn label_noise_kernel() -> Kernel {
    use Access::*;
    snippet_kernel(
        &[shaders::PHILOX, shaders::WG_REDUCE, shaders::BCE],
        shaders::BCE_LABEL_NOISE,
        "bce_rows_label_noise_grad",
        &[Read, Read, ReadWrite, ReadWrite, Read],
    )
}

/// Record the loss (and its gradient when `grad` is given).
/// `x`, `z`, `grad`: f32 `[N, ...]`; `row_loss`: `[N]`; `loss`: `[1]`.
#[allow(clippy::too_many_arguments)]
pub fn bce_with_logits(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    z: &Tensor,
    row_loss: &Tensor,
    loss: &Tensor,
    grad: Option<&Tensor>,
    reduction: BceReduction,
    scale: f32,
) -> Result<()> {
    record_loss(gpu, step, "bce_with_logits", x, row_loss, loss, grad, |s| {
        bce_rows(gpu, s, x, z, row_loss, grad, reduction, scale)
    })
}

/// The first pass of [`bce_with_logits`] alone: `row_loss` and the
/// gradient, one dispatch. Returns the factor that turns the sum of
/// `row_loss` into the scalar loss (for a training step's end kernel,
/// [`crate::gpu::StepState::record_end`], which sums it as the second pass
/// would).
#[allow(clippy::too_many_arguments)]
pub fn bce_rows(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    z: &Tensor,
    row_loss: &Tensor,
    grad: Option<&Tensor>,
    reduction: BceReduction,
    scale: f32,
) -> Result<f32> {
    let op = "bce_with_logits";
    let (rows, f) = check_loss_outputs(op, x, row_loss, None, grad)?;
    z.expect_dtype(op, DType::F32)?;
    z.expect_shape(op, x.shape())?;
    if x.numel() > u32::MAX as usize {
        return Err(crate::Error::invalid(op, "more than 2^32 elements"));
    }
    let div = reduction.divisor(rows, f);
    let gscale = (scale as f64 / div) as f32;
    let params = [rows as u32, f as u32, f32_param(gscale), 0];
    dispatch_rows(gpu, step, op, rows_kernel, &params, &[x, z], row_loss, grad)?;
    Ok(gscale)
}

/// Uniform noise on the targets of [`bce_rows_label_noise`]: element `i`
/// of the targets at step `s` (the step counter `counters[0]`) becomes
/// `z[i] + amount * u` with `u` the Philox uniform of counter
/// `(i, s, rng.stream, 0)` under `rng.seed` (what
/// [`crate::ops::rng::fill_uniform`] draws for that element), so each target
/// of each step gets a fresh draw and a resumed run draws the same ones.
#[derive(Clone, Copy, Debug)]
pub struct LabelNoise<'a> {
    /// The noise's width `F >= 0`: targets move up by `F * u`, `u` in
    /// `[0, 1)`. The article's is 0.05. `F > 1` is allowed: fake targets
    /// then reach above the smallest real ones.
    pub amount: f32,
    pub rng: Philox,
    /// `StepState.counters`.
    pub counters: &'a Tensor,
}

/// Refuse a label noise that is not a finite number >= 0.
pub fn check_label_noise(op: &'static str, amount: f32) -> Result<()> {
    if amount.is_finite() && amount >= 0.0 {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            op,
            format!(
                "label noise {amount}: must be a finite number >= 0 (0: the targets as \
                 they are; the article's is 0.05)"
            ),
        ))
    }
}

/// [`bce_rows`] with its gradient against the noisy targets
/// `z + noise.amount * u` (see [`LabelNoise`]), drawn in the kernel: one
/// dispatch, like [`bce_rows`], and no target tensor is written. Returns
/// the factor that turns the sum of `row_loss` into the scalar loss. With
/// `amount` 0 the outputs are bit-equal to [`bce_rows`]'s (`z + 0 u = z`),
/// though a step with no noise records [`bce_rows`] itself.
#[allow(clippy::too_many_arguments)]
pub fn bce_rows_label_noise(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    z: &Tensor,
    noise: LabelNoise,
    row_loss: &Tensor,
    grad: &Tensor,
    reduction: BceReduction,
    scale: f32,
) -> Result<f32> {
    let op = "bce_with_logits";
    let (rows, f) = check_loss_outputs(op, x, row_loss, None, Some(grad))?;
    z.expect_dtype(op, DType::F32)?;
    z.expect_shape(op, x.shape())?;
    check_counters(op, noise.counters)?;
    check_label_noise(op, noise.amount)?;
    if x.numel() > u32::MAX as usize {
        return Err(crate::Error::invalid(op, "more than 2^32 elements"));
    }
    let gscale = (scale as f64 / reduction.divisor(rows, f)) as f32;
    let k = noise.rng.key();
    let params = [
        rows as u32,
        f as u32,
        f32_param(gscale),
        f32_param(noise.amount),
        k[0],
        k[1],
        noise.rng.stream,
        0,
    ];
    step.dispatch(
        gpu,
        op,
        &label_noise_kernel(),
        &params,
        &[x, z, row_loss, grad, noise.counters],
        grid(gpu, rows as u64)?,
    )?;
    Ok(gscale)
}

/// CPU reference of the targets [`bce_rows_label_noise`] uses at step
/// `step`: `z + amount * u`, computed as the kernel does, in f32 (the
/// product rounded, then the sum; `u` is exact). WGSL rounds `+` and `*`
/// correctly, so the GPU's targets are these bits unless the driver fuses
/// the two into one fma, which moves them by at most 1 ulp of the target.
/// Feed them to [`bce_cpu`] for the loss and gradient.
pub fn label_noise_targets_cpu<T: Real>(z: &[T], amount: f32, rng: Philox, step: u32) -> Vec<T> {
    z.iter()
        .zip(rng.uniform_cpu(step, z.len()))
        .map(|(&t, u)| T::from_f64((t.to_f64() as f32 + amount * u) as f64))
        .collect()
}

/// The per-element loss in f64 (any real target `z`).
pub fn bce_elem(x: f64, z: f64) -> f64 {
    x.max(0.0) - x * z + (-x.abs()).exp().ln_1p()
}

/// Sigmoid in f64, finite for any x.
pub fn sigmoid(x: f64) -> f64 {
    let e = (-x.abs()).exp();
    if x >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

/// CPU reference: rows of `f` features.
pub fn bce_cpu<T: Real>(
    x: &[T],
    z: &[T],
    f: usize,
    reduction: BceReduction,
    scale: f64,
) -> LossCpu<T> {
    let rows = x.len() / f;
    let gscale = scale / reduction.divisor(rows, f);
    let row_vals: Vec<f64> = x
        .chunks(f)
        .zip(z.chunks(f))
        .map(|(xr, zr)| {
            xr.iter()
                .zip(zr)
                .map(|(a, b)| bce_elem(a.to_f64(), b.to_f64()))
                .sum()
        })
        .collect();
    let grad = x
        .iter()
        .zip(z)
        .map(|(a, b)| T::from_f64((sigmoid(a.to_f64()) - b.to_f64()) * gscale))
        .collect();
    LossCpu {
        loss: gscale * row_vals.iter().sum::<f64>(),
        rows: row_vals.into_iter().map(T::from_f64).collect(),
        grad,
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![rows_kernel(true), rows_kernel(false), label_noise_kernel()]
}
