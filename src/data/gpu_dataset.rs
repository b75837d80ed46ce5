//! A dataset resident on the GPU: images and labels as bytes, uploaded
//! once, and the epoch's permutation, re-uploaded (between submits) when the
//! epoch changes.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::data::{Images, PIXELS};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};

/// Images `[n, 784]` u8, labels `[n]` u8, permutation `[n]` u32.
pub struct GpuDataset {
    pub images: Tensor,
    pub labels: Tensor,
    pub perm: Tensor,
    pub len: usize,
}

impl GpuDataset {
    /// Upload `data` once; the permutation starts as the identity.
    pub fn upload(gpu: &Gpu, data: &Images, name: &str) -> Result<GpuDataset> {
        let len = data.len();
        if len == 0 {
            return Err(Error::invalid("dataset", format!("{name}: no images")));
        }
        Ok(GpuDataset {
            images: Tensor::from_u8(gpu, &[len, PIXELS], &data.pixels, &format!("{name} images"))?,
            labels: Tensor::from_u8(gpu, &[len], &data.labels, &format!("{name} labels"))?,
            perm: Tensor::from_u32(
                gpu,
                &[len],
                &(0..len as u32).collect::<Vec<_>>(),
                &format!("{name} order"),
            )?,
            len,
        })
    }

    /// Full batches per epoch (the last partial batch is dropped).
    pub fn batches(&self, batch: usize) -> usize {
        self.len / batch
    }

    /// Upload the shuffled order of `epoch` (a seeded RNG: the same seed and
    /// epoch give the same order on every machine).
    pub fn shuffle(&self, gpu: &Gpu, seed: u64, epoch: usize) -> Result<()> {
        self.perm
            .write_u32(gpu, &epoch_order(self.len, seed, epoch))
    }
}

/// The order of `len` images in `epoch` for `seed`.
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..len as u32).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(epoch as u64 + 1)),
    );
    order.shuffle(&mut rng);
    order
}
