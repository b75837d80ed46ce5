//! Max pooling over NHWC activations: global max pool `[N, H, W, C] ->
//! [N, C]` and 2x2 stride-2 max pool `[N, H, W, C] -> [N, H/2, W/2, C]`
//! (floor: a trailing odd row or column is dropped, as Keras `valid`).
//!
//! The forward saves the argmax (u32, the flat index into `x` of the winning
//! element; ties go to the first in row-major order). The backward routes
//! `dy` to it: one thread per input element gathers from its pooled output,
//! so every `dx` element is written (zeros elsewhere) without atomics.

use crate::error::{Error, Result};
use crate::gpu::{grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::epilogue::{epilogue_kernel, EpiKind, Epilogue};
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

fn fwd_kernel(entry: &'static str) -> Kernel {
    epilogue_kernel(
        shaders::POOL,
        entry,
        &[Access::Read, Access::ReadWrite, Access::ReadWrite],
        EpiKind::default(),
    )
}

fn bwd_kernel(entry: &'static str, epi: EpiKind) -> Kernel {
    epilogue_kernel(
        shaders::POOL,
        entry,
        &[Access::Read, Access::Read, Access::ReadWrite],
        epi,
    )
}

/// `[N, H, W, C]` of an NHWC input, refusing anything else.
fn nhwc(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    x.expect_dtype(op, DType::F32)?;
    match *x.shape() {
        [n, h, w, c] if n * h * w * c > 0 && n * h * w * c <= u32::MAX as usize => Ok([n, h, w, c]),
        _ => Err(Error::invalid(
            op,
            format!(
                "input {:?} must be a non-empty NHWC [N, H, W, C] tensor, got shape {:?}",
                x.label(),
                x.shape()
            ),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    kernel: &Kernel,
    threads: usize,
    dims: [usize; 4],
    tensors: &[&Tensor],
    epi: &Epilogue,
) -> Result<()> {
    let [_, h, w, c] = dims;
    let groups = grid(gpu, (threads as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    let mut params = vec![threads as u32, h as u32, w as u32, c as u32];
    params.extend(epi.words(0)?);
    let mut t = tensors.to_vec();
    t.extend(epi.tensors());
    step.dispatch(gpu, op, kernel, &params, &t, groups)
}

/// Record the global max pool forward: `y [N, C]` and `argmax [N, C]` (u32).
pub fn global_max_pool_forward(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    y: &Tensor,
    argmax: &Tensor,
) -> Result<()> {
    const OP: &str = "global_max_pool";
    let d = nhwc(OP, x)?;
    y.expect_shape(OP, &[d[0], d[3]])?;
    y.expect_dtype(OP, DType::F32)?;
    argmax.expect_shape(OP, &[d[0], d[3]])?;
    argmax.expect_dtype(OP, DType::U32)?;
    let k = fwd_kernel("global_max_pool_forward");
    let none = &Epilogue::NONE;
    dispatch(gpu, step, OP, &k, d[0] * d[3], d, &[x, y, argmax], none)
}

/// Record the global max pool backward: `dx [N, H, W, C]` from `dy [N, C]`
/// and the forward's `argmax`.
pub fn global_max_pool_backward(
    gpu: &Gpu,
    step: &mut Step,
    argmax: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    global_max_pool_backward_fused(gpu, step, argmax, dy, dx, &Epilogue::NONE)
}

/// [`global_max_pool_backward`] ending in `epi` (the dropout mask and the
/// activation derivative of the layer before the pool).
pub fn global_max_pool_backward_fused(
    gpu: &Gpu,
    step: &mut Step,
    argmax: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    epi: &Epilogue,
) -> Result<()> {
    const OP: &str = "global_max_pool_backward";
    epi.check(OP, dx)?;
    let d = nhwc(OP, dx)?;
    dy.expect_shape(OP, &[d[0], d[3]])?;
    dy.expect_dtype(OP, DType::F32)?;
    argmax.expect_shape(OP, &[d[0], d[3]])?;
    argmax.expect_dtype(OP, DType::U32)?;
    let k = bwd_kernel("global_max_pool_backward", epi.kind(false));
    dispatch(gpu, step, OP, &k, dx.numel(), d, &[argmax, dy, dx], epi)
}

/// Output shape of the 2x2 stride-2 max pool of an NHWC `x_shape`.
pub fn max_pool2x2_out_shape(x_shape: &[usize]) -> Result<[usize; 4]> {
    match *x_shape {
        [n, h, w, c] if h >= 2 && w >= 2 => Ok([n, h / 2, w / 2, c]),
        _ => Err(Error::invalid(
            "max_pool2x2",
            format!("input must be NHWC [N, H, W, C] with H, W >= 2, got shape {x_shape:?}"),
        )),
    }
}

/// Record the 2x2 stride-2 max pool forward: `y` and `argmax` (u32), both
/// `[N, H/2, W/2, C]`.
pub fn max_pool2x2_forward(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    y: &Tensor,
    argmax: &Tensor,
) -> Result<()> {
    const OP: &str = "max_pool2x2";
    let d = nhwc(OP, x)?;
    let out = max_pool2x2_out_shape(&d)?;
    y.expect_shape(OP, &out)?;
    y.expect_dtype(OP, DType::F32)?;
    argmax.expect_shape(OP, &out)?;
    argmax.expect_dtype(OP, DType::U32)?;
    let k = fwd_kernel("max_pool2x2_forward");
    dispatch(
        gpu,
        step,
        OP,
        &k,
        y.numel(),
        d,
        &[x, y, argmax],
        &Epilogue::NONE,
    )
}

/// Record the 2x2 stride-2 max pool backward: `dx [N, H, W, C]` from
/// `dy [N, H/2, W/2, C]` and the forward's `argmax`.
pub fn max_pool2x2_backward(
    gpu: &Gpu,
    step: &mut Step,
    argmax: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<()> {
    max_pool2x2_backward_fused(gpu, step, argmax, dy, dx, &Epilogue::NONE)
}

/// [`max_pool2x2_backward`] ending in `epi` (the activation derivative of
/// the layer before the pool).
pub fn max_pool2x2_backward_fused(
    gpu: &Gpu,
    step: &mut Step,
    argmax: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
    epi: &Epilogue,
) -> Result<()> {
    const OP: &str = "max_pool2x2_backward";
    epi.check(OP, dx)?;
    let d = nhwc(OP, dx)?;
    let out = max_pool2x2_out_shape(&d)?;
    dy.expect_shape(OP, &out)?;
    dy.expect_dtype(OP, DType::F32)?;
    argmax.expect_shape(OP, &out)?;
    argmax.expect_dtype(OP, DType::U32)?;
    let k = bwd_kernel("max_pool2x2_backward", epi.kind(false));
    dispatch(gpu, step, OP, &k, dx.numel(), d, &[argmax, dy, dx], epi)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    let mut v = vec![
        fwd_kernel("global_max_pool_forward"),
        fwd_kernel("max_pool2x2_forward"),
    ];
    for epi in crate::ops::epilogue::test_kinds() {
        v.push(bwd_kernel("global_max_pool_backward", epi));
        v.push(bwd_kernel("max_pool2x2_backward", epi));
    }
    v
}

/// Index of the first maximum of `x` at the flat indices `idx`, in order.
fn first_max<T: Real>(x: &[T], idx: impl Iterator<Item = usize>) -> usize {
    let mut best: Option<usize> = None;
    for i in idx {
        best = match best {
            Some(b) if x[i] > x[b] => Some(i),
            Some(b) => Some(b),
            None => Some(i),
        };
    }
    best.unwrap_or(0)
}

/// CPU reference: global max pool of NHWC `x` with dims `[n, h, w, c]`;
/// returns `(y [N, C], argmax [N, C])`.
pub fn global_max_pool_cpu<T: Real>(x: &[T], dims: [usize; 4]) -> (Vec<T>, Vec<u32>) {
    let [n, h, w, c] = dims;
    let mut y = Vec::with_capacity(n * c);
    let mut arg = Vec::with_capacity(n * c);
    for b in 0..n {
        for ch in 0..c {
            let base = b * h * w * c + ch;
            let i = first_max(x, (0..h * w).map(|s| base + s * c));
            y.push(x[i]);
            arg.push(i as u32);
        }
    }
    (y, arg)
}

/// CPU reference: 2x2 stride-2 max pool of NHWC `x` with dims
/// `[n, h, w, c]`; returns `(y, argmax)`, both `[N, H/2, W/2, C]`.
pub fn max_pool2x2_cpu<T: Real>(x: &[T], dims: [usize; 4]) -> (Vec<T>, Vec<u32>) {
    let [n, h, w, c] = dims;
    let (oh, ow) = (h / 2, w / 2);
    let mut y = Vec::with_capacity(n * oh * ow * c);
    let mut arg = Vec::with_capacity(n * oh * ow * c);
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    let at =
                        |di: usize, dj: usize| ((b * h + 2 * i + di) * w + 2 * j + dj) * c + ch;
                    let k = first_max(x, [at(0, 0), at(0, 1), at(1, 0), at(1, 1)].into_iter());
                    y.push(x[k]);
                    arg.push(k as u32);
                }
            }
        }
    }
    (y, arg)
}

/// CPU reference of either pool's backward: `dx` of `x_len` elements, zero
/// except `dx[argmax[o]] += dy[o]` (each input wins at most one output, so
/// the sum is a plain assignment for these pools).
pub fn max_pool_backward_cpu<T: Real>(argmax: &[u32], dy: &[T], x_len: usize) -> Vec<T> {
    let mut dx = vec![0.0f64; x_len];
    for (&a, &g) in argmax.iter().zip(dy) {
        dx[a as usize] += g.to_f64();
    }
    dx.into_iter().map(T::from_f64).collect()
}
