//! Batch gathering from the byte-packed dataset: GPU equals the CPU
//! reference (one byte -> one f32 through x/255*scale+shift; the tolerance,
//! 1e-7, is derived in tests/checks/gather.rs), and the step counter picks
//! the batch, wrapping at the end of the epoch (the shared checks, which
//! take MNIST's first images from here, or from the page in a browser);
//! and a batch larger than the epoch refused.

use crate::common::*;
use vae_vs_gan::data::{load, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::gather::{gather_pixels, PixelMap};
use vae_vs_gan::{Step, Tensor};

use crate::checks::gather as check;

/// MNIST's first training images, as many as the checks gather from.
fn images() -> vae_vs_gan::data::Images {
    load(
        Dataset::Mnist,
        &mnist_dir(),
        Split::Train,
        Some(check::IMAGES),
    )
    .unwrap()
}

#[test]
fn gather_pixels_and_labels_follow_the_step_counter() {
    pass(check::follow_the_step_counter(gpu(), &images()));
}

#[test]
fn gather_consecutive_steps_in_one_submit_read_consecutive_batches() {
    pass(check::consecutive_steps(gpu()));
}

#[test]
fn gather_refuses_a_batch_larger_than_the_epoch() {
    let g = gpu();
    let data = Tensor::from_u8(g, &[2, 4], &[0; 8], "images").unwrap();
    let permt = Tensor::from_u32(g, &[2], &[0, 1], "perm").unwrap();
    let st = StepState::new(g, 1, 1, 0).unwrap();
    let out = Tensor::zeros(g, &[3, 4], "x").unwrap();
    let mut s = Step::new("gather");
    let e = gather_pixels(g, &mut s, &st.counters, &permt, &data, &out, PixelMap::UNIT)
        .unwrap_err()
        .to_string();
    assert!(e.contains("gather_pixels") && e.contains("batch 3"), "{e}");
}

#[test]
fn gather_pixels_and_normals_equal_the_two_separate_kernels() {
    pass(check::pixels_and_normals_fused(gpu(), &images()));
}

#[test]
fn gather_picks_one_of_a_steps_batches() {
    pass(check::pick_one_of_a_steps_batches(gpu(), &images()));
}
