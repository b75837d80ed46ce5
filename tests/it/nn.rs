//! Layers: PyTorch layout conversion of parameters, and a layer's recorded
//! forward/backward against the op CPU references.

#![allow(clippy::identity_op)] // indices written out as (row * stride + col)

use crate::common::*;
use vae_vs_gan::nn::{Layer, Layout};
use vae_vs_gan::ops::dense;
use vae_vs_gan::ops::gemm::Epilogue;
use vae_vs_gan::{Step, Tensor};

#[test]
fn layout_conversions_round_trip_and_match_pytorch_order() {
    // Conv weight [KH, KW, Cin, Cout] -> [Cout, Cin, KH, KW].
    let s = [2, 3, 4, 5];
    let e: Vec<f32> = (0..120).map(|i| i as f32).collect();
    let t = Layout::Conv.to_torch(&s, &e);
    // engine element (y=1, x=2, ci=3, co=4) sits at torch (4, 3, 1, 2).
    let engine_idx = ((1 * 3 + 2) * 4 + 3) * 5 + 4;
    let torch_idx = ((4 * 4 + 3) * 2 + 1) * 3 + 2;
    assert_eq!(t[torch_idx], e[engine_idx]);
    assert_eq!(Layout::Conv.torch_shape(&s), vec![5, 4, 2, 3]);
    assert_eq!(Layout::Conv.from_torch(&s, &t), e);

    // Dense [in, out] with an NHWC (2, 3, 4) input image -> [out, in] with
    // the input in NCHW order.
    let dl = Layout::Dense {
        in_nhwc: Some((2, 3, 4)),
        out_nhwc: None,
    };
    let s = [24, 2];
    let e: Vec<f32> = (0..48).map(|i| i as f32).collect();
    let t = dl.to_torch(&s, &e);
    // input feature (h=1, w=2, c=3) = NHWC index 1*12+2*4+3 = 23, NCHW index 3*6+1*3+2 = 23;
    // (h=0, w=1, c=2): NHWC 6, NCHW 2*6+0+1 = 13.
    assert_eq!(t[1 * 24 + 13], e[6 * 2 + 1]);
    assert_eq!(dl.from_torch(&s, &t), e);

    let bl = Layout::BiasNhwc { h: 2, w: 3, c: 4 };
    let b: Vec<f32> = (0..24).map(|i| i as f32).collect();
    assert_eq!(bl.from_torch(&[24], &bl.to_torch(&[24], &b)), b);
}

/// A dense layer's recorded forward and backward equal the op references.
/// K <= 37: f32 rounding far below atol 1e-5, rtol 1e-4.
#[test]
fn layer_dense_forward_backward_match_cpu() {
    let g = gpu();
    let mut r = rng(3);
    let layer = Layer::dense(g, &mut r, "fc", 37, 5, true, None, None).unwrap();
    let x = uniform(3 * 37, -1.0, 1.0, 11);
    let dy = uniform(3 * 5, -1.0, 1.0, 12);
    let xt = Tensor::from_f32(g, &[3, 37], &x, "x").unwrap();
    let dyt = Tensor::from_f32(g, &[3, 5], &dy, "dy").unwrap();
    let yt = Tensor::zeros(g, &[3, 5], "y").unwrap();
    let dxt = Tensor::zeros(g, &[3, 37], "dx").unwrap();
    for p in [&yt, &dxt, &layer.w.grad, &layer.b.as_ref().unwrap().grad] {
        p.poison(g);
    }
    let mut s = Step::new("layer");
    layer.forward(g, &mut s, &xt, &yt).unwrap();
    layer
        .backward(g, &mut s, &xt, &dyt, Some((&dxt, Epilogue::NONE)))
        .unwrap();
    run(&s);
    let w = layer.w.value.read_f32(g).unwrap();
    let b = vec![0.0f32; 5];
    assert_close(
        "dense layer y",
        &yt.read_f32(g).unwrap(),
        &dense::dense_forward_cpu(&x, &w, Some(&b), 3, 37, 5),
        1e-5,
        1e-4,
    );
    assert_close(
        "dense layer dx",
        &dxt.read_f32(g).unwrap(),
        &dense::dense_backward_data_cpu(&dy, &w, 3, 37, 5),
        1e-5,
        1e-4,
    );
    assert_close(
        "dense layer dw",
        &layer.w.grad.read_f32(g).unwrap(),
        &dense::dense_backward_weights_cpu(&x, &dy, 3, 37, 5),
        1e-5,
        1e-4,
    );
}
