//! Bias gradient: `db[c] = sum_r dy[r, c]` over every row of `dy` viewed as
//! `[rows, C]` (dense: rows = batch; conv: rows = N * H * W, NHWC).
//!
//! Fixed order, no atomics: rows are cut into `nsplit` consecutive chunks,
//! each summed in ascending row order by one thread per (chunk, column);
//! the chunk sums are then added in ascending chunk order. Enough chunks are
//! used that the first pass has a few thousand threads.

use crate::error::{Error, Result};
use crate::gpu::{grid, Access, Gpu, Kernel, Step, Tensor};
use crate::ops::gemm::{self, EpiKind, Epilogue, Scratch};
use crate::ops::Real;
use crate::shaders;

/// Rows per chunk are at least this many (fewer chunks for short inputs).
const MIN_CHUNK: usize = 64;
/// The first pass aims for about this many threads.
const TARGET_THREADS: usize = 4096;

fn partial_kernel() -> Kernel {
    gemm::epilogue_kernel(
        shaders::SPLITS,
        "bias_grad_partial",
        &[Access::Read, Access::ReadWrite],
        EpiKind::default(),
    )
}

/// Record `db = sum over rows of dy`, where `dy`'s last dimension is C and
/// `db` is `[C]`.
pub fn bias_grad(gpu: &Gpu, step: &mut Step, dy: &Tensor, db: &Tensor) -> Result<Scratch> {
    let op = "bias_grad";
    let c = match dy.shape().last() {
        Some(&c) if c > 0 => c,
        _ => {
            return Err(Error::invalid(
                op,
                format!("dy {:?} has no channel dimension", dy.shape()),
            ))
        }
    };
    db.expect_shape(op, &[c])?;
    let rows = dy.numel() / c;
    let nsplit = (TARGET_THREADS / c).clamp(1, rows.div_ceil(MIN_CHUNK).max(1));
    let chunk = rows.div_ceil(nsplit).max(1);
    let nsplit = rows.div_ceil(chunk).max(1);
    let as_u32 = |v: usize| {
        u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds u32")))
    };
    let mut params = vec![
        as_u32(c)?,
        as_u32(nsplit)?,
        as_u32(c)?,
        as_u32(rows)?,
        as_u32(chunk)?,
        0,
        0,
        0,
    ];
    params.extend(Epilogue::NONE.words(0)?);
    let groups = grid(gpu, (nsplit * c).div_ceil(256) as u64)?;
    if nsplit == 1 {
        step.dispatch(gpu, op, &partial_kernel(), &params, &[dy, db], groups)?;
        return Ok(Scratch::default());
    }
    let part = Tensor::zeros(gpu, &[nsplit, c], "bias_grad partials")?;
    step.dispatch(gpu, op, &partial_kernel(), &params, &[dy, &part], groups)?;
    gemm::reduce_splits(gpu, step, op, &part, nsplit, db, 1, None, &Epilogue::NONE)?;
    Ok(Scratch {
        tensors: vec![part],
    })
}

/// CPU reference: column sums of `dy` viewed as `[rows, c]`, in f64.
pub fn bias_grad_cpu<T: Real>(dy: &[T], c: usize) -> Vec<T> {
    let mut acc = vec![0.0f64; c];
    for (i, v) in dy.iter().enumerate() {
        acc[i % c] += v.to_f64();
    }
    acc.into_iter().map(T::from_f64).collect()
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![partial_kernel()]
}
