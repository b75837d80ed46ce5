//! Deterministic reductions: the sum or mean of a whole tensor, and per-row
//! sums of `[N, ...]`.
//!
//! Fixed order, no float atomics, so the same input gives the same bits on
//! every run: each 256-invocation workgroup sums one chunk (invocation `t`
//! adds elements `t, t+256, ...` of the chunk in order, then a fixed binary
//! tree over the 256 partial sums, `shaders/wg_reduce.wgsl`). A whole-tensor
//! sum of more than [`SUM_CHUNK`] elements takes two passes: chunks of
//! [`SUM_CHUNK`] into a partials tensor owned by a [`SumPlan`], then one
//! workgroup over the partials. The CPU references sum in f64.
//!
//! Rounding: a sum of `n` f32 values this way rounds at most
//! `ceil(n_chunk / 256) + 8` times per pass (sequential part plus tree
//! depth), so `|gpu - exact| <= k * 2^-24 * sum |x|` with `k` the total over
//! the passes (see [`rounding_depth`]); the tests use that bound.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::rng::snippet_kernel;
use crate::ops::Real;
use crate::shaders;

/// Elements per workgroup in the first pass of a whole-tensor sum.
pub const SUM_CHUNK: usize = 4096;

/// Threads per reducing workgroup.
pub const WG: usize = 256;

pub(crate) fn chunk_kernel() -> Kernel {
    snippet_kernel(
        &[shaders::WG_REDUCE],
        shaders::REDUCE,
        "reduce_chunks",
        &[Access::Read, Access::ReadWrite],
    )
}

/// Record one pass: `out[g] = scale * sum(x[g*chunk .. min((g+1)*chunk, n)])`
/// for `g < ceil(n / chunk)`. Callers have checked shapes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_chunks(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    x: &Tensor,
    out: &Tensor,
    n: usize,
    chunk: usize,
    scale: f32,
) -> Result<()> {
    if n == 0 || chunk == 0 {
        return Err(Error::invalid(op, "cannot reduce an empty tensor"));
    }
    if n > u32::MAX as usize {
        return Err(Error::invalid(op, "more than 2^32 elements"));
    }
    let ngroups = n.div_ceil(chunk);
    let groups = grid(gpu, ngroups as u64)?;
    let params = [n as u32, chunk as u32, f32_param(scale), ngroups as u32];
    step.dispatch(gpu, op, &chunk_kernel(), &params, &[x, out], groups)
}

/// Number of roundings a value passes through in a sum of `n` elements
/// by [`SumPlan`] (per element, worst case): for the error bound
/// `k * 2^-24 * sum |x|` in tests.
pub fn rounding_depth(n: usize) -> usize {
    let tree = WG.trailing_zeros() as usize; // 8 levels
    if n <= SUM_CHUNK {
        n.div_ceil(WG) + tree + 1
    } else {
        let parts = n.div_ceil(SUM_CHUNK);
        SUM_CHUNK / WG + tree + parts.div_ceil(WG) + tree + 1
    }
}

/// A whole-tensor sum of `n` elements, planned once (it owns the partials
/// of its first pass when `n > SUM_CHUNK`), recorded into any number of steps.
pub struct SumPlan {
    n: usize,
    partials: Option<Tensor>,
}

impl SumPlan {
    /// Plan a sum of `n > 0` elements, allocating the partials if needed.
    pub fn new(gpu: &Gpu, n: usize) -> Result<SumPlan> {
        if n == 0 {
            return Err(Error::invalid("sum", "cannot reduce an empty tensor"));
        }
        let partials = if n > SUM_CHUNK {
            Some(Tensor::zeros(
                gpu,
                &[n.div_ceil(SUM_CHUNK)],
                "sum partials",
            )?)
        } else {
            None
        };
        Ok(SumPlan { n, partials })
    }

    /// Elements this plan sums.
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Record `out[0] = scale * sum(x)`. `x` is f32 with `n` elements (any
    /// shape), `out` is f32 `[1]`.
    pub fn record(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        out: &Tensor,
        scale: f32,
    ) -> Result<()> {
        let op = "sum";
        x.expect_dtype(op, DType::F32)?;
        out.expect_dtype(op, DType::F32)?;
        if x.numel() != self.n {
            return Err(Error::shape(op, x.label(), &[self.n], &[x.numel()]));
        }
        out.expect_shape(op, &[1])?;
        match &self.partials {
            None => record_chunks(gpu, step, op, x, out, self.n, self.n, scale),
            Some(p) => {
                let parts = p.numel();
                record_chunks(gpu, step, op, x, p, self.n, SUM_CHUNK, 1.0)?;
                record_chunks(gpu, step, op, p, out, parts, parts, scale)
            }
        }
    }

    /// Record `out[0] = sum(x)`.
    pub fn sum(&self, gpu: &Gpu, step: &mut Step, x: &Tensor, out: &Tensor) -> Result<()> {
        self.record(gpu, step, x, out, 1.0)
    }

    /// Record `out[0] = sum(x) / n`.
    pub fn mean(&self, gpu: &Gpu, step: &mut Step, x: &Tensor, out: &Tensor) -> Result<()> {
        self.record(gpu, step, x, out, 1.0 / self.n as f32)
    }
}

/// Record per-row sums: `x` is f32 `[N, d1, d2, ...]` (rows are the first
/// axis, each of `F = d1*d2*...` elements), `out` is f32 `[N]`,
/// `out[r] = scale * sum(x[r, ..])`. One workgroup per row. `scale = 1/F`
/// gives per-row means.
pub fn row_sums(gpu: &Gpu, step: &mut Step, x: &Tensor, out: &Tensor, scale: f32) -> Result<()> {
    let op = "row_sums";
    x.expect_dtype(op, DType::F32)?;
    out.expect_dtype(op, DType::F32)?;
    let rows = *x
        .shape()
        .first()
        .ok_or_else(|| Error::invalid(op, "a 0-d tensor has no rows"))?;
    out.expect_shape(op, &[rows])?;
    let f = x.numel() / rows.max(1);
    record_chunks(gpu, step, op, x, out, x.numel(), f, scale)
}

/// CPU reference: the sum in f64.
pub fn sum_cpu<T: Real>(x: &[T]) -> f64 {
    x.iter().map(|v| v.to_f64()).sum()
}

/// CPU reference: the mean in f64.
pub fn mean_cpu<T: Real>(x: &[T]) -> f64 {
    sum_cpu(x) / x.len() as f64
}

/// CPU reference: `scale * sum` of each of the rows of `f` elements.
pub fn row_sums_cpu<T: Real>(x: &[T], f: usize, scale: f64) -> Vec<T> {
    x.chunks(f)
        .map(|r| T::from_f64(scale * sum_cpu(r)))
        .collect()
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![chunk_kernel()]
}

/// What a CPU loss reference returns: the scalar loss (f64), the per-row
/// (per-sample) losses before the batch reduction, and the gradient.
#[derive(Clone, Debug)]
pub struct LossCpu<T> {
    pub loss: f64,
    pub rows: Vec<T>,
    pub grad: Vec<T>,
}

/// A whole row loss, recorded: the shapes checked ([`check_loss_outputs`]),
/// then its first pass (`rows`, which records `row_loss` and the gradient
/// and returns the factor that turns the sum of `row_loss` into the scalar
/// loss), then the second: `loss[0] = factor * sum(row_loss)`. Every loss
/// op (bce, softmax_ce, kl, kl_mc) is this with its own first pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_loss(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    x: &Tensor,
    row_loss: &Tensor,
    loss: &Tensor,
    grad: Option<&Tensor>,
    rows: impl FnOnce(&mut Step) -> Result<f32>,
) -> Result<()> {
    check_loss_outputs(op, x, row_loss, Some(loss), grad)?;
    let factor = rows(step)?;
    let n = row_loss.numel();
    record_chunks(gpu, step, op, row_loss, loss, n, n, factor)
}

/// A row loss's first pass: one workgroup per row, binding `inputs`, then
/// `row_loss`, then the gradient when there is one; `kernel(true)` is the
/// entry that also writes the gradient, `kernel(false)` the one that
/// does not.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dispatch_rows(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    kernel: impl Fn(bool) -> Kernel,
    params: &[u32],
    inputs: &[&Tensor],
    row_loss: &Tensor,
    grad: Option<&Tensor>,
) -> Result<()> {
    let bound: Vec<&Tensor> = inputs
        .iter()
        .copied()
        .chain([row_loss])
        .chain(grad)
        .collect();
    let groups = grid(gpu, row_loss.numel() as u64)?;
    step.dispatch(gpu, op, &kernel(grad.is_some()), params, &bound, groups)
}

/// Shared shape checks of the row losses: `rows` (the first axis of `x`),
/// `row_loss: [rows]`, `loss: [1]`, and `grad` shaped like `x`.
pub(crate) fn check_loss_outputs(
    op: &'static str,
    x: &Tensor,
    row_loss: &Tensor,
    loss: Option<&Tensor>,
    grad: Option<&Tensor>,
) -> Result<(usize, usize)> {
    x.expect_dtype(op, DType::F32)?;
    let rows = *x
        .shape()
        .first()
        .ok_or_else(|| Error::invalid(op, "a 0-d tensor has no rows"))?;
    let f = x.numel() / rows.max(1);
    if rows == 0 || f == 0 {
        return Err(Error::invalid(
            op,
            format!("empty input {:?} {:?}", x.label(), x.shape()),
        ));
    }
    row_loss.expect_dtype(op, DType::F32)?;
    row_loss.expect_shape(op, &[rows])?;
    if let Some(loss) = loss {
        loss.expect_dtype(op, DType::F32)?;
        loss.expect_shape(op, &[1])?;
    }
    if let Some(g) = grad {
        g.expect_dtype(op, DType::F32)?;
        g.expect_shape(op, x.shape())?;
    }
    Ok((rows, f))
}
