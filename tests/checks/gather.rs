//! Batch gathering from the byte-packed dataset on the GPU: GPU equals the
//! CPU reference, the step counter picks the batch (wrapping at the end of
//! the epoch), consecutive steps in one submit read consecutive batches of
//! the permutation, a step that reads several batches reads the one its
//! pick names (`BatchPick`, the Wasserstein critic's iterations), and the fused pixels-and-normals kernel equals the two
//! separate kernels bit for bit. The checks on real images take MNIST's
//! first 11 training images from their caller (natively the files, in a
//! browser the bytes the page fetched).
//!
//! Tolerance: one byte -> one f32 through x/255*scale+shift, the same f32
//! operations on both sides. WGSL's division is within 2.5 ULP (at most
//! 2.5 * 2^-24 < 1.5e-7 on [0, 1]), not correctly rounded (SwiftShader is
//! 1 ULP off where lavapipe is exact): atol 1e-7 plus rtol 1e-7.

use super::*;
use rand::seq::SliceRandom;
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::PIXELS;
use vae_vs_gan::gpu::{DType, StepState};
use vae_vs_gan::ops::gather::{
    gather_labels, gather_labels_cpu, gather_pixels, gather_pixels_and_normals, gather_pixels_cpu,
    gather_pixels_picked_cpu, BatchPick, PixelMap,
};
use vae_vs_gan::ops::rng::{fill_normal, Philox};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record(
        "gather consecutive steps in one submit",
        consecutive_steps(g).await,
    );
}

/// The checks on real images: `images` holds at least [`IMAGES`].
pub async fn all_on(g: &Gpu, images: &Images, r: &mut Report<'_>) {
    r.record(
        "gather follows the step counter",
        follow_the_step_counter(g, images).await,
    );
    r.record(
        "gather pixels and normals fused",
        pixels_and_normals_fused(g, images).await,
    );
    r.record(
        "gather picks one of a step's batches",
        pick_one_of_a_steps_batches(g, images).await,
    );
}

/// Images the checks on real images gather from: batch 3, 3 batches per
/// epoch, 2 images dropped.
pub const IMAGES: usize = 11;

/// The first [`IMAGES`] of `images`, uploaded: pixels and labels.
fn upload(g: &Gpu, images: &Images) -> Result<(Vec<u8>, Vec<u8>, Tensor, Tensor), Failure> {
    let n = IMAGES;
    ensure(images.len() >= n, || {
        format!("{} images, want {n}", images.len())
    })?;
    let (pixels, labels) = (
        images.pixels[..n * PIXELS].to_vec(),
        images.labels[..n].to_vec(),
    );
    let data = Tensor::from_u8(g, &[n, PIXELS], &pixels, "images")?;
    let labelt = Tensor::from_u8(g, &[n], &labels, "labels")?;
    Ok((pixels, labels, data, labelt))
}

/// Pixels (each map) and labels gathered at several step counters,
/// wrapping past the epoch's end, against the CPU reference.
pub async fn follow_the_step_counter(g: &Gpu, images: &Images) -> Outcome {
    let mut worst = Worst::default();
    let n = IMAGES;
    let (pixels, labels, data, labelt) = upload(g, images)?;
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(&mut rng(5));
    let permt = Tensor::from_u32(g, &[n], &perm, "perm")?;
    let batch = 3;
    let maps = [
        PixelMap::UNIT,
        PixelMap::SIGNED,
        PixelMap {
            binarize: true,
            ..PixelMap::UNIT
        },
    ];
    for map in maps {
        for start in [0u32, 1, 2, 3, 7] {
            let st = StepState::new(g, 1, 1, start)?;
            let out = poisoned(g, &[batch, 28, 28, 1], "x")?;
            let lab = Tensor::new(g, &[batch], DType::U32, "y")?;
            lab.poison(g);
            let mut s = Step::new("gather");
            gather_pixels(g, &mut s, &st.counters, &permt, &data, &out, map)?;
            gather_labels(g, &mut s, &st.counters, &permt, &labelt, &lab)?;
            run(g, &[&s])?;
            let want = gather_pixels_cpu::<f32>(start as u64, &perm, &pixels, batch, PIXELS, map);
            let what = format!("gather_pixels {map:?} step {start}");
            worst.close(&what, &read(g, &out).await?, &want, 1e-7, 1e-7)?;
            worst.equal(
                &format!("gather_labels step {start}"),
                &lab.read_u32_async(g).await?,
                &gather_labels_cpu(start as u64, &perm, &labels, batch),
            )?;
        }
    }
    worst.done()
}

/// The fused pixels-and-normals kernel writes, bit for bit, the pixels
/// `gather_pixels` writes and the normals `fill_normal` writes at that
/// step; both outputs poisoned first, 7 normals (not a multiple of the
/// workgroup).
pub async fn pixels_and_normals_fused(g: &Gpu, images: &Images) -> Outcome {
    let mut worst = Worst::default();
    let n = IMAGES;
    let (_, _, data, _) = upload(g, images)?;
    let perm: Vec<u32> = (0..n as u32).rev().collect();
    let permt = Tensor::from_u32(g, &[n], &perm, "perm")?;
    let r = Philox::new(99, 4);
    for start in [0u32, 2, 5] {
        let st = StepState::new(g, 1, 1, start)?;
        let (x1, x2) = (
            poisoned(g, &[3, 28, 28, 1], "x fused")?,
            poisoned(g, &[3, 28, 28, 1], "x")?,
        );
        let (z1, z2) = (poisoned(g, &[7], "z fused")?, poisoned(g, &[7], "z")?);
        let mut s = Step::new("gather");
        let map = PixelMap::SIGNED;
        let each = BatchPick::EACH;
        gather_pixels_and_normals(
            g,
            &mut s,
            &st.counters,
            &permt,
            &data,
            &x1,
            map,
            each,
            r,
            &z1,
        )?;
        gather_pixels(g, &mut s, &st.counters, &permt, &data, &x2, map)?;
        fill_normal(g, &mut s, r, &st.counters, &z2)?;
        run(g, &[&s])?;
        let (a, b) = (read(g, &x1).await?, read(g, &x2).await?);
        ensure(a.iter().all(|v| v.is_finite()), || {
            format!("pixels not written at step {start}")
        })?;
        worst.equal(&format!("pixels at step {start}"), &bits(&a), &bits(&b))?;
        let (za, zb) = (read(g, &z1).await?, read(g, &z2).await?);
        ensure(za.iter().all(|v| v.is_finite()), || {
            format!("normals not written at step {start}: {za:?}")
        })?;
        worst.equal(&format!("normals at step {start}"), &bits(&za), &bits(&zb))?;
    }
    worst.done()
}

/// A step that reads `stride` batches reads batch
/// `(step % steps) * stride + offset` (steps = batches / stride): batch 1 of 11 images with stride 3
/// is 3 steps an epoch (the last two images dropped), each offset at steps
/// that wrap, against the CPU reference (the module doc's tolerance); the
/// latents are drawn as with one batch a step. An offset at or past the
/// stride, or a stride larger than the epoch, is refused.
pub async fn pick_one_of_a_steps_batches(g: &Gpu, images: &Images) -> Outcome {
    let mut worst = Worst::default();
    let n = IMAGES;
    let (pixels, _, data, _) = upload(g, images)?;
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(&mut rng(9));
    let permt = Tensor::from_u32(g, &[n], &perm, "perm")?;
    let (map, r) = (PixelMap::SIGNED, Philox::new(3, 1));
    for start in [0u32, 1, 2, 4, 8] {
        for offset in 0..3 {
            let pick = BatchPick { stride: 3, offset };
            let st = StepState::new(g, 1, 1, start)?;
            let x = poisoned(g, &[1, 28, 28, 1], "x")?;
            let z = poisoned(g, &[5], "z")?;
            let mut s = Step::new("gather");
            gather_pixels_and_normals(
                g,
                &mut s,
                &st.counters,
                &permt,
                &data,
                &x,
                map,
                pick,
                r,
                &z,
            )?;
            run(g, &[&s])?;
            let want =
                gather_pixels_picked_cpu::<f32>(start as u64, pick, &perm, &pixels, 1, PIXELS, map);
            let what = format!("step {start} stride 3 offset {offset}");
            worst.close(&what, &read(g, &x).await?, &want, 1e-7, 1e-7)?;
            let zs = read(g, &z).await?;
            ensure(zs.iter().all(|v| v.is_finite()), || {
                format!("{what}: normals not written")
            })?;
        }
    }
    let st = StepState::new(g, 1, 1, 0)?;
    let (x, z) = (
        Tensor::zeros(g, &[1, 28, 28, 1], "x")?,
        Tensor::zeros(g, &[5], "z")?,
    );
    for (pick, why) in [
        (
            BatchPick {
                stride: 3,
                offset: 3,
            },
            "not below the stride",
        ),
        (
            BatchPick {
                stride: 12,
                offset: 0,
            },
            "holds 11",
        ),
    ] {
        let mut s = Step::new("gather");
        match gather_pixels_and_normals(
            g,
            &mut s,
            &st.counters,
            &permt,
            &data,
            &x,
            map,
            pick,
            r,
            &z,
        ) {
            Err(e) if e.to_string().contains(why) => {}
            other => {
                return Err(Failure(format!(
                    "{pick:?}: want an error saying {why:?}, got {other:?}"
                )))
            }
        }
    }
    worst.done()
}

pub async fn consecutive_steps(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let n = 6;
    let bytes: Vec<u8> = (0..n * PIXELS).map(|i| (i * 7 % 256) as u8).collect();
    let perm: Vec<u32> = vec![5, 2, 0, 4, 1, 3];
    let data = Tensor::from_u8(g, &[n, PIXELS], &bytes, "images")?;
    let permt = Tensor::from_u32(g, &[n], &perm, "perm")?;
    let st = StepState::new(g, 1, 8, 0)?;
    let out = Tensor::zeros(g, &[2, PIXELS], "x")?;
    let mut s = Step::new("gather");
    gather_pixels(g, &mut s, &st.counters, &permt, &data, &out, PixelMap::UNIT)?;
    // The first pixel of the batch into the loss ring: one value per step.
    st.record_loss(g, &mut s, &out, 0)?;
    st.record_advance(g, &mut s)?;
    run(g, &[&s, &s, &s, &s])?;
    let got: Vec<f32> = st
        .snapshot_async(g)
        .await?
        .losses(0)?
        .iter()
        .map(|l| l.values[0])
        .collect();
    let want: Vec<f32> = (0..4)
        .map(|k| gather_pixels_cpu::<f32>(k, &perm, &bytes, 2, PIXELS, PixelMap::UNIT)[0])
        .collect();
    // The tolerance of the module doc.
    worst.close("the first pixel of each step", &got, &want, 1e-7, 1e-7)?;
    worst.done()
}
