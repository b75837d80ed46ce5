//! Copy a tensor into a range of rows of a larger one: `dst[row .. row + n]
//! = src` along the first axis, trailing dimensions equal. The GAN stacks
//! its real and generated batches into one `[2B, 28, 28, 1]` discriminator
//! input this way (a [`Tensor`] is a whole buffer and cannot view a range).
//!
//! Words are moved as u32, so f32 and u32 tensors are copied bit for bit;
//! rows outside the range are left untouched.

use crate::error::{Error, Result};
use crate::gpu::{grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::ELEMENTWISE_WG;
use crate::shaders;

const OP: &str = "copy_rows";

fn kernel() -> Kernel {
    Kernel::new(
        shaders::COPY,
        "copy_into",
        &[Access::Read, Access::ReadWrite],
    )
}

/// Record `dst[row .. row + src.shape()[0]] = src`. Both tensors have the
/// same dtype (f32 or u32) and the same trailing dimensions.
pub fn copy_rows(gpu: &Gpu, step: &mut Step, src: &Tensor, dst: &Tensor, row: usize) -> Result<()> {
    if !matches!(src.dtype(), DType::F32 | DType::U32) {
        return Err(Error::invalid(
            OP,
            format!(
                "{:?} is {:?}: only f32 and u32 are copied",
                src.label(),
                src.dtype()
            ),
        ));
    }
    dst.expect_dtype(OP, src.dtype())?;
    let (ss, ds) = (src.shape(), dst.shape());
    if ss.is_empty() || ds.is_empty() || ss[1..] != ds[1..] {
        return Err(Error::shape(
            OP,
            "trailing dimensions of src and dst",
            ds,
            ss,
        ));
    }
    if row + ss[0] > ds[0] {
        return Err(Error::invalid(
            OP,
            format!(
                "rows {row}..{} of src {ss:?} do not fit in dst {ds:?}",
                row + ss[0]
            ),
        ));
    }
    let per_row: usize = ss[1..].iter().product();
    let (n, offset) = (src.numel(), row * per_row);
    if dst.numel() > u32::MAX as usize {
        return Err(Error::invalid(OP, "more than 2^32 elements"));
    }
    if n == 0 {
        return Ok(());
    }
    let groups = grid(gpu, (n as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        OP,
        &kernel(),
        &[n as u32, offset as u32],
        &[src, dst],
        groups,
    )
}

/// CPU reference: `dst` with rows `row ..` replaced by `src` (`row_len`
/// elements per row).
pub fn copy_rows_cpu<T: Copy>(src: &[T], dst: &[T], row: usize, row_len: usize) -> Vec<T> {
    let mut out = dst.to_vec();
    out[row * row_len..row * row_len + src.len()].copy_from_slice(src);
    out
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![kernel()]
}
