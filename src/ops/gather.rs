//! Gathering a training batch on the GPU from the byte-packed dataset.
//!
//! The dataset is uploaded once as u8 (60,000 x 784 bytes fits every
//! adapter's 128 MiB binding limit; f32 would not). Each epoch uploads a
//! shuffled permutation of image indices; the step counter picks the batch,
//! so no upload or readback happens inside a step.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::rng::{snippet_kernel, Philox};
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

/// How bytes become pixel values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelMap {
    /// `x * scale + shift` after mapping the byte to [0, 1]: (1, 0) gives
    /// [0, 1] (the VAE), (2, -1) gives [-1, 1] (the GAN).
    pub scale: f32,
    pub shift: f32,
    /// Static binarisation: byte > 127 (intensity > 0.5) becomes 1, else 0.
    pub binarize: bool,
}

impl PixelMap {
    pub const UNIT: PixelMap = PixelMap {
        scale: 1.0,
        shift: 0.0,
        binarize: false,
    };
    pub const SIGNED: PixelMap = PixelMap {
        scale: 2.0,
        shift: -1.0,
        binarize: false,
    };

    /// The value of one byte, in f64 (the CPU reference).
    pub fn apply(&self, byte: u8) -> f64 {
        let x = if self.binarize {
            (byte > BINARIZE_THRESHOLD) as u8 as f64
        } else {
            byte as f64 / 255.0
        };
        x * self.scale as f64 + self.shift as f64
    }
}

/// Which batch of the epoch's order a step reads: batch
/// `(counters[0] % steps) * stride + offset`, where an epoch has
/// `steps = batches / stride` steps. [`BatchPick::EACH`] (stride 1, offset
/// 0) is one batch per step; a step that reads `stride` batches (the
/// Wasserstein GAN's critic iterations) reads its `offset`-th with
/// `BatchPick { stride, offset }`, so its iterations see different images
/// and an epoch still sees each image once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPick {
    pub stride: u32,
    pub offset: u32,
}

impl BatchPick {
    pub const EACH: BatchPick = BatchPick {
        stride: 1,
        offset: 0,
    };

    /// Steps in an epoch of `batches` batches (the last partial stride
    /// dropped).
    pub fn steps(self, batches: usize) -> usize {
        batches / self.stride.max(1) as usize
    }

    /// The batch index that step `step` reads, of an epoch of `batches`.
    pub fn batch_index(self, step: u64, batches: usize) -> usize {
        (step % self.steps(batches) as u64) as usize * self.stride as usize + self.offset as usize
    }

    fn check(self, op: &'static str, batches: usize) -> Result<()> {
        if self.offset >= self.stride {
            return Err(Error::invalid(
                op,
                format!(
                    "batch offset {} is not below the stride {}",
                    self.offset, self.stride
                ),
            ));
        }
        if self.steps(batches) == 0 {
            return Err(Error::invalid(
                op,
                format!(
                    "a step reads {} batches, but the epoch's order holds {batches}",
                    self.stride
                ),
            ));
        }
        Ok(())
    }
}

/// Bytes above this are 1 under binarisation (0.5 of 255).
pub const BINARIZE_THRESHOLD: u8 = 127;

/// Bindings: counters, permutation, bytes, output.
const ACCESS: [Access; 4] = [Access::Read, Access::Read, Access::Read, Access::ReadWrite];

/// A kernel of `shaders/gather.wgsl` (after the Philox snippet, which the
/// gather that also draws normals uses).
fn kernel(entry: &'static str) -> Kernel {
    snippet_kernel(&[shaders::PHILOX], shaders::GATHER, entry, &ACCESS)
}

fn normals_kernel() -> Kernel {
    let mut access = ACCESS.to_vec();
    access.push(Access::ReadWrite);
    snippet_kernel(
        &[shaders::PHILOX],
        shaders::GATHER,
        "gather_pixels_normals",
        &access,
    )
}

fn check(
    op: &'static str,
    counters: &Tensor,
    perm: &Tensor,
    data: &Tensor,
    batch: usize,
    item: usize,
) -> Result<usize> {
    counters.expect_dtype(op, DType::U32)?;
    perm.expect_dtype(op, DType::U32)?;
    data.expect_dtype(op, DType::U8)?;
    if batch == 0 || perm.numel() < batch {
        return Err(Error::invalid(
            op,
            format!(
                "batch {batch} needs a permutation of at least {batch} indices, got {}",
                perm.numel()
            ),
        ));
    }
    if item == 0 || !data.numel().is_multiple_of(item) {
        return Err(Error::invalid(
            op,
            format!(
                "dataset of {} bytes is not whole items of {item}",
                data.numel()
            ),
        ));
    }
    // The last partial batch is dropped.
    Ok(perm.numel() / batch)
}

/// Record: `out [batch, ...]` = the pixels of this step's batch, mapped by `map`.
/// `data` is `[n, item]` bytes; `perm` holds the epoch's image order.
pub fn gather_pixels(
    gpu: &Gpu,
    step: &mut Step,
    counters: &Tensor,
    perm: &Tensor,
    data: &Tensor,
    out: &Tensor,
    map: PixelMap,
) -> Result<()> {
    let op = "gather_pixels";
    let (params, n) = pixel_params(op, counters, perm, data, out, map, BatchPick::EACH)?;
    let groups = grid(gpu, n.div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &kernel("gather_pixels"),
        &params,
        &[counters, perm, data, out],
        groups,
    )
}

/// [`gather_pixels`], and in the same dispatch `z` filled with the normals
/// of `rng` at this step (exactly what [`crate::ops::rng::fill_normal`]
/// writes): a GAN step's real batch (the one `pick` names) and latents.
#[allow(clippy::too_many_arguments)]
pub fn gather_pixels_and_normals(
    gpu: &Gpu,
    step: &mut Step,
    counters: &Tensor,
    perm: &Tensor,
    data: &Tensor,
    out: &Tensor,
    map: PixelMap,
    pick: BatchPick,
    rng: Philox,
    z: &Tensor,
) -> Result<()> {
    let op = "gather_pixels";
    let (mut params, n) = pixel_params(op, counters, perm, data, out, map, pick)?;
    z.expect_dtype(op, DType::F32)?;
    let zn = u32::try_from(z.numel()).map_err(|_| Error::invalid(op, "more than 2^32 normals"))?;
    let key = rng.key();
    params[7..11].copy_from_slice(&[zn, key[0], key[1], rng.stream]);
    let groups = grid(gpu, (n + zn as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &normals_kernel(),
        &params,
        &[counters, perm, data, out, z],
        groups,
    )
}

/// The parameter block of a pixel gather into `out` (without the normals'
/// words) and its element count.
fn pixel_params(
    op: &'static str,
    counters: &Tensor,
    perm: &Tensor,
    data: &Tensor,
    out: &Tensor,
    map: PixelMap,
    pick: BatchPick,
) -> Result<(Vec<u32>, u64)> {
    let batch = out.shape()[0];
    let item = out.numel() / batch.max(1);
    let batches = check(op, counters, perm, data, batch, item)?;
    pick.check(op, batches)?;
    let params = vec![
        batch as u32,
        item as u32,
        pick.steps(batches) as u32,
        map.binarize as u32,
        f32_param(map.scale),
        f32_param(map.shift),
        BINARIZE_THRESHOLD as u32,
        0,
        0,
        0,
        0,
        pick.stride,
        pick.offset,
    ];
    Ok((params, (batch * item) as u64))
}

/// Record: `out [batch]` (u32) = the labels of this step's batch.
pub fn gather_labels(
    gpu: &Gpu,
    step: &mut Step,
    counters: &Tensor,
    perm: &Tensor,
    labels: &Tensor,
    out: &Tensor,
) -> Result<()> {
    let op = "gather_labels";
    out.expect_dtype(op, DType::U32)?;
    let batch = out.numel();
    let steps = check(op, counters, perm, labels, batch, 1)?;
    let params = [batch as u32, 1, steps as u32, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let groups = grid(gpu, (batch as u32).div_ceil(ELEMENTWISE_WG) as u64)?;
    step.dispatch(
        gpu,
        op,
        &kernel("gather_labels"),
        &params,
        &[counters, perm, labels, out],
        groups,
    )
}

/// CPU reference: the pixels of batch `step % (perm.len() / batch)`.
pub fn gather_pixels_cpu<T: Real>(
    step: u64,
    perm: &[u32],
    data: &[u8],
    batch: usize,
    item: usize,
    map: PixelMap,
) -> Vec<T> {
    gather_pixels_picked_cpu(step, BatchPick::EACH, perm, data, batch, item, map)
}

/// CPU reference: the pixels of the batch `pick` names at `step`.
pub fn gather_pixels_picked_cpu<T: Real>(
    step: u64,
    pick: BatchPick,
    perm: &[u32],
    data: &[u8],
    batch: usize,
    item: usize,
    map: PixelMap,
) -> Vec<T> {
    let b0 = pick.batch_index(step, perm.len() / batch) * batch;
    perm[b0..b0 + batch]
        .iter()
        .flat_map(|&i| data[i as usize * item..(i as usize + 1) * item].iter())
        .map(|&v| T::from_f64(map.apply(v)))
        .collect()
}

/// CPU reference of [`gather_labels`].
pub fn gather_labels_cpu(step: u64, perm: &[u32], labels: &[u8], batch: usize) -> Vec<u32> {
    let b0 = (step % (perm.len() / batch) as u64) as usize * batch;
    perm[b0..b0 + batch]
        .iter()
        .map(|&i| labels[i as usize] as u32)
        .collect()
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![
        kernel("gather_pixels"),
        kernel("gather_labels"),
        normals_kernel(),
    ]
}
