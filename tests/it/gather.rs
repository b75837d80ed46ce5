//! Batch gathering from the byte-packed dataset: GPU equals the CPU
//! reference exactly (one byte -> one f32 through x/255*scale+shift, the
//! same f32 operations on both sides: tolerance 1 ulp-scale, 1e-7), and the
//! step counter picks the batch, wrapping at the end of the epoch.

use crate::common::*;
use rand::seq::SliceRandom;
use vae_vs_gan::data::{load, Dataset, Split, PIXELS};
use vae_vs_gan::gpu::{DType, StepState};
use vae_vs_gan::ops::gather::{
    gather_labels, gather_labels_cpu, gather_pixels, gather_pixels_and_normals, gather_pixels_cpu,
    PixelMap,
};
use vae_vs_gan::ops::rng::{self, Philox};
use vae_vs_gan::{Step, Tensor};

#[test]
fn gather_pixels_and_labels_follow_the_step_counter() {
    let g = gpu();
    let n = 11; // 11 images, batch 3: 3 batches per epoch, 2 images dropped
    let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(n)).unwrap();
    let mut perm: Vec<u32> = (0..n as u32).collect();
    perm.shuffle(&mut rng(5));
    let data = Tensor::from_u8(g, &[n, PIXELS], &imgs.pixels, "images").unwrap();
    let labels = Tensor::from_u8(g, &[n], &imgs.labels, "labels").unwrap();
    let permt = Tensor::from_u32(g, &[n], &perm, "perm").unwrap();
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
            let st = StepState::new(g, 1, 1, start).unwrap();
            let out = Tensor::zeros(g, &[batch, 28, 28, 1], "x").unwrap();
            let lab = Tensor::new(g, &[batch], DType::U32, "y").unwrap();
            out.poison(g);
            lab.poison(g);
            let mut s = Step::new("gather");
            gather_pixels(g, &mut s, &st.counters, &permt, &data, &out, map).unwrap();
            gather_labels(g, &mut s, &st.counters, &permt, &labels, &lab).unwrap();
            run(&s);
            let want =
                gather_pixels_cpu::<f32>(start as u64, &perm, &imgs.pixels, batch, PIXELS, map);
            assert_close(
                &format!("gather_pixels {map:?} step {start}"),
                &out.read_f32(g).unwrap(),
                &want,
                1e-7,
                1e-7,
            );
            assert_eq!(
                lab.read_u32(g).unwrap(),
                gather_labels_cpu(start as u64, &perm, &imgs.labels, batch),
                "gather_labels step {start}"
            );
        }
    }
}

#[test]
fn gather_consecutive_steps_in_one_submit_read_consecutive_batches() {
    let g = gpu();
    let n = 6;
    let bytes: Vec<u8> = (0..n * PIXELS).map(|i| (i * 7 % 256) as u8).collect();
    let perm: Vec<u32> = vec![5, 2, 0, 4, 1, 3];
    let data = Tensor::from_u8(g, &[n, PIXELS], &bytes, "images").unwrap();
    let permt = Tensor::from_u32(g, &[n], &perm, "perm").unwrap();
    let st = StepState::new(g, 1, 8, 0).unwrap();
    let out = Tensor::zeros(g, &[2, PIXELS], "x").unwrap();
    let mut s = Step::new("gather");
    gather_pixels(g, &mut s, &st.counters, &permt, &data, &out, PixelMap::UNIT).unwrap();
    // The first pixel of the batch into the loss ring: one value per step.
    st.record_loss(g, &mut s, &out, 0).unwrap();
    st.record_advance(g, &mut s).unwrap();
    g.run(&[&s, &s, &s, &s]).unwrap();
    let got: Vec<f32> = st
        .read_losses(g, 0)
        .unwrap()
        .iter()
        .map(|l| l.values[0])
        .collect();
    let want: Vec<f32> = (0..4)
        .map(|k| gather_pixels_cpu::<f32>(k, &perm, &bytes, 2, PIXELS, PixelMap::UNIT)[0])
        .collect();
    // byte / 255 in [0, 1]: WGSL's division is within 2.5 ULP (at most
    // 2.5 * 2^-24 < 1.5e-7 there), not correctly rounded (SwiftShader is 1
    // ULP off where lavapipe is exact); the tolerance of the test above.
    assert_close("the first pixel of each step", &got, &want, 1e-7, 1e-7);
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

/// The gather that also draws the step's normals (a GAN step's inputs in
/// one dispatch) writes the same pixels as `gather_pixels` and, bit for
/// bit, the normals `fill_normal` writes at that step; both outputs
/// poisoned first, 7 normals (not a multiple of the workgroup).
#[test]
fn gather_pixels_and_normals_equal_the_two_separate_kernels() {
    let g = gpu();
    let n = 11;
    let imgs = load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(n)).unwrap();
    let perm: Vec<u32> = (0..n as u32).rev().collect();
    let data = Tensor::from_u8(g, &[n, PIXELS], &imgs.pixels, "images").unwrap();
    let permt = Tensor::from_u32(g, &[n], &perm, "perm").unwrap();
    let r = Philox::new(99, 4);
    for start in [0u32, 2, 5] {
        let st = StepState::new(g, 1, 1, start).unwrap();
        let outs: Vec<Tensor> = (0..4)
            .map(|i| Tensor::zeros(g, &[3, 28, 28, 1], &format!("x{i}")).unwrap())
            .collect();
        let (x1, x2) = (&outs[0], &outs[1]);
        let (z1, z2) = (
            Tensor::zeros(g, &[7], "z fused").unwrap(),
            Tensor::zeros(g, &[7], "z").unwrap(),
        );
        for t in [x1, x2, &z1, &z2] {
            t.poison(g);
        }
        let mut s = Step::new("gather");
        let map = PixelMap::SIGNED;
        gather_pixels_and_normals(g, &mut s, &st.counters, &permt, &data, x1, map, r, &z1).unwrap();
        gather_pixels(g, &mut s, &st.counters, &permt, &data, x2, map).unwrap();
        rng::fill_normal(g, &mut s, r, &st.counters, &z2).unwrap();
        run(&s);
        let (a, b) = (x1.read_f32(g).unwrap(), x2.read_f32(g).unwrap());
        assert!(a.iter().all(|v| v.is_finite()), "pixels written");
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "pixels at step {start}"
        );
        let (za, zb) = (z1.read_f32(g).unwrap(), z2.read_f32(g).unwrap());
        assert!(za.iter().all(|v| v.is_finite()), "normals written: {za:?}");
        assert_eq!(
            za.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            zb.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "normals at step {start}"
        );
    }
}
