//! Ops: one file per op. Each file holds the op's GPU dispatch (a function
//! that records it into a [`crate::gpu::Step`], checking shapes) and its CPU
//! reference, forward and backward, side by side.
//!
//! CPU references are generic over [`Real`]: `f32` to compare with the GPU,
//! `f64` for the finite-difference checks of the backward passes. Either
//! way they accumulate in f64.

pub mod activation;
pub mod batch_norm;
pub mod bce;
pub mod bias;
pub mod clamp;
pub mod conv2d;
pub mod conv_transpose2d;
pub mod copy;
pub mod dense;
pub mod dropout;
pub mod epilogue;
pub mod gather;
pub mod gemm;
pub mod hinge;
pub mod kl;
pub mod kl_mc;
pub mod least_squares;
pub mod linear_loss;
pub mod pool;
pub mod reduce;
pub mod reparam;
pub mod rng;
pub mod softmax_ce;
pub mod target_loss;

use crate::error::{Error, Result};
use crate::gpu::{grid, DType, Gpu, Kernel, Tensor};

/// A float the CPU references can store: `f32` or `f64`.
pub trait Real: Copy + Default + PartialOrd + std::fmt::Debug + Send + Sync + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Threads per workgroup of the one-element-per-thread kernels.
pub const ELEMENTWISE_WG: u32 = 256;

/// The element count and grid of a kernel that runs one thread per element
/// of `tensors` ([`ELEMENTWISE_WG`] a workgroup): each f32 and of the first
/// one's shape, at most 2^32 elements, else refused in `op`'s name before
/// anything is recorded (the optimizers' updates, the clamp).
pub fn elementwise_grid(
    gpu: &Gpu,
    op: &'static str,
    tensors: &[&Tensor],
) -> Result<(u32, [u32; 3])> {
    let Some(first) = tensors.first() else {
        return Err(Error::invalid(op, "no operands"));
    };
    for x in tensors {
        x.expect_dtype(op, DType::F32)?;
        x.expect_shape(op, first.shape())?;
    }
    let n = first.numel();
    let n32 = u32::try_from(n)
        .map_err(|_| Error::invalid(op, format!("{n} elements exceed u32 indexing")))?;
    let groups = grid(gpu, (n as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    Ok((n32, groups))
}

/// Every kernel the ops compile, with representative parameters (the
/// optimizers' and the step state's are added by [`crate::all_kernels`]).
pub fn kernels() -> Vec<Kernel> {
    let mut v = Vec::new();
    v.extend(activation::kernels());
    v.extend(gather::kernels());
    v.extend(batch_norm::kernels());
    v.extend(pool::kernels());
    v.extend(rng::kernels());
    v.extend(reduce::kernels());
    v.extend(dropout::kernels());
    v.extend(reparam::kernels());
    v.extend(bce::kernels());
    v.extend(least_squares::kernels());
    v.extend(hinge::kernels());
    v.extend(linear_loss::kernels());
    v.extend(softmax_ce::kernels());
    v.extend(kl::kernels());
    v.extend(kl_mc::kernels());
    v.extend(bias::kernels());
    v.extend(dense::kernels());
    v.extend(conv2d::kernels());
    v.extend(copy::kernels());
    v.extend(clamp::kernels());
    v
}
