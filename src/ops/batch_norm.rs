//! Batch normalisation over the last dimension (Keras `BatchNormalization`
//! with `axis=-1`).
//!
//! The input is viewed as `[R, C]` with `C` the last dimension: NHWC
//! activations `[N, H, W, C]` get one statistic per channel over `N*H*W`
//! rows, dense `[N, F]` one per feature over `N` rows. One kernel family
//! (`shaders/norm.wgsl`) serves both.
//!
//! - Training forward: batch mean and biased variance per channel,
//!   `y = gamma * (x - mean) / sqrt(var + eps) + beta`; the batch `mean` and
//!   `inv_std = 1/sqrt(var + eps)` are saved for the backward; the running
//!   averages are updated Keras-style, `running = momentum * running +
//!   (1 - momentum) * batch_stat` (Keras keeps the BIASED batch variance).
//! - Eval forward: the same affine map from the running mean and variance.
//! - Backward (of the training forward): `dbeta = sum(dy)`,
//!   `dgamma = sum(dy * xhat)`, `dx = gamma * inv_std / R * (R dy - dbeta -
//!   xhat * dgamma)`. `dgamma`/`dbeta` are overwritten, not accumulated.
//!
//! The per-channel reductions run over row chunks in parallel (R can be
//! 128*14*14 = 25,088), each chunk a fixed tree, the chunks then summed in
//! order by one thread per channel: no atomics, identical bits on every run.
//! The chunk partial sums live in a scratch tensor owned by [`BatchNorm`].
//!
//! One op, one file (forward, backward, their CPU references, the kernel
//! list), as for every op.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::activation::Activation;
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

/// Channels per workgroup of the partial-sum kernels.
const CT: u32 = 16;
/// Row lanes per workgroup of the partial-sum kernels (CT * RT = 256).
const RT: u32 = 16;
/// At most this many row chunks (the finalize kernel sums them in order).
const MAX_CHUNKS: usize = 1024;

/// Hyperparameters; the default is Keras's `BatchNormalization()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance before the square root (Keras default 1e-3).
    pub eps: f32,
    /// Running-average decay (Keras default 0.99).
    pub momentum: f32,
    /// Whether a training forward updates the running averages (Keras does;
    /// turn off for a forward that must leave them untouched).
    pub update_running: bool,
    /// The ReLU or LeakyReLU that follows, applied by the forward's last
    /// kernel as it writes `y` (a layer's activation fused: no dispatch of
    /// its own). `y` is then the activation's output.
    pub act: Option<Activation>,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-3,
            momentum: 0.99,
            update_running: true,
            act: None,
        }
    }
}

/// The learned and running per-channel tensors of one batch norm, all `[C]`.
#[derive(Clone, Copy, Debug)]
pub struct BnParams<'a> {
    pub gamma: &'a Tensor,
    pub beta: &'a Tensor,
    pub running_mean: &'a Tensor,
    pub running_var: &'a Tensor,
}

impl BnParams<'_> {
    /// The four tensors, in the order above.
    fn all(&self) -> [&Tensor; 4] {
        [self.gamma, self.beta, self.running_mean, self.running_var]
    }
}

/// What the training forward saves for the backward, both `[C]`: the batch
/// mean and `inv_std = 1/sqrt(var + eps)`.
#[derive(Clone, Copy, Debug)]
pub struct BnSaved<'a> {
    pub mean: &'a Tensor,
    pub inv_std: &'a Tensor,
}

/// The backward's inputs: the training forward's input `x`, the upstream
/// gradient `dy` (shaped like `x`), `gamma` and the forward's saved
/// statistics.
#[derive(Clone, Copy, Debug)]
pub struct BnBackward<'a> {
    pub x: &'a Tensor,
    pub dy: &'a Tensor,
    pub gamma: &'a Tensor,
    pub saved: BnSaved<'a>,
}

/// The backward's outputs: `dx` shaped like `x`, `dgamma`/`dbeta` `[C]`.
#[derive(Clone, Copy, Debug)]
pub struct BnGrads<'a> {
    pub dx: &'a Tensor,
    pub dgamma: &'a Tensor,
    pub dbeta: &'a Tensor,
}

/// A batch norm over inputs of one shape: its configuration and the scratch
/// for the chunked reductions. Create once, at model build.
pub struct BatchNorm {
    pub config: BatchNormConfig,
    x_shape: Vec<usize>,
    rows: usize,
    channels: usize,
    chunk_rows: usize,
    chunks: usize,
    /// `[2, chunks, C]` partial sums, shared by forward and backward (they
    /// are recorded in order in one step, never concurrently).
    partials: Tensor,
}

const OP: &str = "batch_norm";

impl BatchNorm {
    /// A batch norm for inputs shaped `x_shape` (at least 1-D; the last
    /// dimension is the channel axis, every other dimension is reduced).
    pub fn new(gpu: &Gpu, x_shape: &[usize], config: BatchNormConfig) -> Result<BatchNorm> {
        let channels = *x_shape
            .last()
            .ok_or_else(|| Error::invalid(OP, "input shape is empty"))?;
        let rows: usize = x_shape[..x_shape.len() - 1].iter().product();
        if rows == 0 || channels == 0 {
            return Err(Error::invalid(
                OP,
                format!("input shape {x_shape:?} has no rows or no channels"),
            ));
        }
        let eps_ok = config.eps.is_finite() && config.eps > 0.0;
        if !eps_ok || !(0.0..=1.0).contains(&config.momentum) {
            return Err(Error::invalid(
                OP,
                format!(
                    "eps must be > 0 and momentum in [0, 1], got eps {} momentum {}",
                    config.eps, config.momentum
                ),
            ));
        }
        if rows * channels > u32::MAX as usize {
            return Err(Error::invalid(
                OP,
                format!("{} elements exceed u32 indexing", rows * channels),
            ));
        }
        if matches!(config.act, Some(Activation::Sigmoid | Activation::Tanh)) {
            return Err(Error::invalid(
                OP,
                format!(
                    "{:?} cannot follow in the same kernel: only ReLU and LeakyReLU",
                    config.act
                ),
            ));
        }
        let (chunk_rows, chunks) = chunking(rows);
        let partials = Tensor::zeros(gpu, &[2, chunks, channels], "batch_norm partials")?;
        Ok(BatchNorm {
            config,
            x_shape: x_shape.to_vec(),
            rows,
            channels,
            chunk_rows,
            chunks,
            partials,
        })
    }

    /// Rows `R` of the `[R, C]` view.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Channels `C` (the last dimension).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The input shape this batch norm was built for.
    pub fn x_shape(&self) -> &[usize] {
        &self.x_shape
    }

    fn params(&self, flag: bool) -> [u32; 12] {
        self.params_act(flag, None)
    }

    /// The parameter block, `act` the activation `bn_apply` applies.
    fn params_act(&self, flag: bool, act: Option<Activation>) -> [u32; 12] {
        let (code, alpha) = match act {
            None => (0, 0.0),
            Some(Activation::Relu) => (1, 0.0),
            Some(Activation::LeakyRelu(a)) => (2, a),
            // refused by check_act
            Some(_) => (0, 0.0),
        };
        [
            self.rows as u32,
            self.channels as u32,
            self.chunks as u32,
            self.chunk_rows as u32,
            f32_param(self.config.eps),
            f32_param(self.config.momentum),
            flag as u32,
            (self.rows * self.channels) as u32,
            code,
            f32_param(alpha),
            0,
            0,
        ]
    }

    fn expect_x(&self, what: &Tensor) -> Result<()> {
        what.expect_dtype(OP, DType::F32)?;
        what.expect_shape(OP, &self.x_shape)
    }

    fn expect_c(&self, what: &Tensor) -> Result<()> {
        what.expect_dtype(OP, DType::F32)?;
        what.expect_shape(OP, &[self.channels])
    }

    fn partial_groups(&self) -> [u32; 3] {
        [(self.channels as u32).div_ceil(CT), self.chunks as u32, 1]
    }

    fn channel_groups(&self) -> [u32; 3] {
        [(self.channels as u32).div_ceil(ELEMENTWISE_WG), 1, 1]
    }

    fn element_groups(&self, gpu: &Gpu) -> Result<[u32; 3]> {
        grid(
            gpu,
            ((self.rows * self.channels) as u64).div_ceil(ELEMENTWISE_WG as u64),
        )
    }

    /// Record the training forward: batch statistics into `saved`, running
    /// averages updated (if `config.update_running`), `y` written.
    pub fn forward_train(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        params: &BnParams,
        saved: &BnSaved,
        y: &Tensor,
    ) -> Result<()> {
        self.expect_x(x)?;
        self.expect_x(y)?;
        for t in params.all().into_iter().chain([saved.mean, saved.inv_std]) {
            self.expect_c(t)?;
        }
        let k = kernels_by_entry();
        // Build the whole sub-step first so nothing is recorded on error.
        let mut s = Step::new(OP);
        let finalize: [&Tensor; 6] = [
            &self.partials,
            x,
            params.running_mean,
            params.running_var,
            saved.mean,
            saved.inv_std,
        ];
        let fin_params = self.params(self.config.update_running);
        if self.chunks == 1 {
            // partial sums and finalize in one dispatch
            s.dispatch(
                gpu,
                "batch_norm_stats",
                &k.stats_single,
                &fin_params,
                &finalize,
                self.partial_groups(),
            )?;
        } else {
            s.dispatch(
                gpu,
                "batch_norm_stats_partial",
                &k.stats_partial,
                &self.params(false),
                &[x, &self.partials],
                self.partial_groups(),
            )?;
            s.dispatch(
                gpu,
                "batch_norm_stats_finalize",
                &k.stats_finalize,
                &fin_params,
                &finalize,
                self.channel_groups(),
            )?;
        }
        s.dispatch(
            gpu,
            "batch_norm_apply",
            &k.apply,
            &self.params_act(false, self.config.act),
            &[x, saved.mean, saved.inv_std, params.gamma, params.beta, y],
            self.element_groups(gpu)?,
        )?;
        step.extend(s);
        Ok(())
    }

    /// Record the eval forward: `y` from the running mean and variance.
    pub fn forward_eval(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        params: &BnParams,
        y: &Tensor,
    ) -> Result<()> {
        self.expect_x(x)?;
        self.expect_x(y)?;
        for t in params.all() {
            self.expect_c(t)?;
        }
        let k = kernels_by_entry();
        step.dispatch(
            gpu,
            "batch_norm_apply",
            &k.apply,
            &self.params_act(true, self.config.act),
            &[
                x,
                params.running_mean,
                params.running_var,
                params.gamma,
                params.beta,
                y,
            ],
            self.element_groups(gpu)?,
        )
    }

    /// Record the backward of the training forward, from the forward's input
    /// `x`, `gamma` and saved statistics: writes `grads.dx`, `grads.dgamma`,
    /// `grads.dbeta` (overwriting them).
    pub fn backward(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        inputs: &BnBackward,
        grads: &BnGrads,
    ) -> Result<()> {
        let BnBackward {
            x,
            dy,
            gamma,
            saved,
        } = *inputs;
        self.expect_x(x)?;
        self.expect_x(dy)?;
        self.expect_x(grads.dx)?;
        for t in [gamma, saved.mean, saved.inv_std, grads.dgamma, grads.dbeta] {
            self.expect_c(t)?;
        }
        let k = kernels_by_entry();
        let mut s = Step::new(OP);
        let sums = [x, dy, saved.mean, saved.inv_std];
        if self.chunks == 1 {
            let mut t = sums.to_vec();
            t.extend([grads.dgamma, grads.dbeta]);
            s.dispatch(
                gpu,
                "batch_norm_grad",
                &k.grad_single,
                &self.params(false),
                &t,
                self.partial_groups(),
            )?;
        } else {
            let mut t = sums.to_vec();
            t.push(&self.partials);
            s.dispatch(
                gpu,
                "batch_norm_grad_partial",
                &k.grad_partial,
                &self.params(false),
                &t,
                self.partial_groups(),
            )?;
            s.dispatch(
                gpu,
                "batch_norm_grad_finalize",
                &k.grad_finalize,
                &self.params(false),
                &[&self.partials, grads.dgamma, grads.dbeta],
                self.channel_groups(),
            )?;
        }
        s.dispatch(
            gpu,
            "batch_norm_backward_dx",
            &k.backward_dx,
            &self.params(false),
            &[
                x,
                dy,
                saved.mean,
                saved.inv_std,
                gamma,
                grads.dgamma,
                grads.dbeta,
                grads.dx,
            ],
            self.element_groups(gpu)?,
        )?;
        step.extend(s);
        Ok(())
    }
}

/// Rows per chunk (a multiple of the row lanes, at least 16 rows per lane)
/// and the number of chunks (at most [`MAX_CHUNKS`]). Up to 256 rows are
/// one chunk: then the sums and the finalize are one dispatch.
fn chunking(rows: usize) -> (usize, usize) {
    let min = 16 * RT as usize;
    let per = rows.div_ceil(MAX_CHUNKS).div_ceil(RT as usize) * RT as usize;
    let chunk_rows = per.max(min);
    (chunk_rows, rows.div_ceil(chunk_rows))
}

struct BnKernels {
    stats_partial: Kernel,
    stats_finalize: Kernel,
    stats_single: Kernel,
    grad_single: Kernel,
    apply: Kernel,
    grad_partial: Kernel,
    grad_finalize: Kernel,
    backward_dx: Kernel,
}

fn kernel(entry: &'static str, access: &[Access]) -> Kernel {
    Kernel::with_consts(shaders::NORM, entry, access, &[("CT", CT), ("RT", RT)])
}

fn kernels_by_entry() -> BnKernels {
    use Access::{Read as R, ReadWrite as W};
    BnKernels {
        stats_partial: kernel("bn_stats_partial", &[R, W]),
        stats_finalize: kernel("bn_stats_finalize", &[R, R, W, W, W, W]),
        stats_single: kernel("bn_stats_single", &[R, R, W, W, W, W]),
        grad_single: kernel("bn_grad_single", &[R, R, R, R, W, W]),
        apply: kernel("bn_apply", &[R, R, R, R, R, W]),
        grad_partial: kernel("bn_grad_partial", &[R, R, R, R, W]),
        grad_finalize: kernel("bn_grad_finalize", &[R, W, W]),
        backward_dx: kernel("bn_backward_dx", &[R, R, R, R, R, R, R, W]),
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    let k = kernels_by_entry();
    vec![
        k.stats_partial,
        k.stats_finalize,
        k.stats_single,
        k.grad_single,
        k.apply,
        k.grad_partial,
        k.grad_finalize,
        k.backward_dx,
    ]
}

/// CPU reference of the training forward.
#[derive(Clone, Debug)]
pub struct BnForwardCpu<T> {
    pub y: Vec<T>,
    /// Batch mean per channel.
    pub mean: Vec<T>,
    /// Biased batch variance per channel (what the running average takes).
    pub var: Vec<T>,
    /// `1/sqrt(var + eps)`.
    pub inv_std: Vec<T>,
}

/// CPU reference: training forward on `x` viewed as `[R, channels]`,
/// two-pass statistics in f64.
pub fn forward_train_cpu<T: Real>(
    x: &[T],
    channels: usize,
    gamma: &[T],
    beta: &[T],
    eps: f64,
) -> BnForwardCpu<T> {
    let rows = x.len() / channels;
    let mut mean = vec![0.0f64; channels];
    for r in 0..rows {
        for c in 0..channels {
            mean[c] += x[r * channels + c].to_f64();
        }
    }
    mean.iter_mut().for_each(|m| *m /= rows as f64);
    let mut var = vec![0.0f64; channels];
    for r in 0..rows {
        for c in 0..channels {
            let d = x[r * channels + c].to_f64() - mean[c];
            var[c] += d * d;
        }
    }
    var.iter_mut().for_each(|v| *v /= rows as f64);
    let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let y = x
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i % channels;
            T::from_f64(gamma[c].to_f64() * (v.to_f64() - mean[c]) * inv[c] + beta[c].to_f64())
        })
        .collect();
    let conv = |v: &[f64]| v.iter().map(|&a| T::from_f64(a)).collect();
    BnForwardCpu {
        y,
        mean: conv(&mean),
        var: conv(&var),
        inv_std: conv(&inv),
    }
}

/// CPU reference: eval forward from the running statistics.
pub fn forward_eval_cpu<T: Real>(
    x: &[T],
    channels: usize,
    gamma: &[T],
    beta: &[T],
    running_mean: &[T],
    running_var: &[T],
    eps: f64,
) -> Vec<T> {
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i % channels;
            let inv = 1.0 / (running_var[c].to_f64() + eps).sqrt();
            T::from_f64(
                gamma[c].to_f64() * (v.to_f64() - running_mean[c].to_f64()) * inv
                    + beta[c].to_f64(),
            )
        })
        .collect()
}

/// CPU reference: `running = momentum * running + (1 - momentum) * batch`.
pub fn running_update_cpu<T: Real>(running: &mut [T], batch: &[T], momentum: f64) {
    for (r, &b) in running.iter_mut().zip(batch) {
        *r = T::from_f64(momentum * r.to_f64() + (1.0 - momentum) * b.to_f64());
    }
}

/// CPU reference of the backward: `(dx, dgamma, dbeta)` from the forward's
/// input, `gamma` and saved `mean`/`inv_std`.
pub fn backward_cpu<T: Real>(
    x: &[T],
    dy: &[T],
    channels: usize,
    gamma: &[T],
    mean: &[T],
    inv_std: &[T],
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let rows = x.len() / channels;
    let xhat = |i: usize| {
        let c = i % channels;
        (x[i].to_f64() - mean[c].to_f64()) * inv_std[c].to_f64()
    };
    let mut dbeta = vec![0.0f64; channels];
    let mut dgamma = vec![0.0f64; channels];
    for (i, g) in dy.iter().enumerate() {
        let c = i % channels;
        dbeta[c] += g.to_f64();
        dgamma[c] += g.to_f64() * xhat(i);
    }
    let rn = rows as f64;
    let dx = (0..x.len())
        .map(|i| {
            let c = i % channels;
            T::from_f64(
                gamma[c].to_f64() * inv_std[c].to_f64() / rn
                    * (rn * dy[i].to_f64() - dbeta[c] - xhat(i) * dgamma[c]),
            )
        })
        .collect();
    let conv = |v: &[f64]| v.iter().map(|&a| T::from_f64(a)).collect();
    (dx, conv(&dgamma), conv(&dbeta))
}
