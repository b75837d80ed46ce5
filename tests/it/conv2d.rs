//! conv2d, every direction: GPU vs the CPU reference on odd shapes (batch
//! 3, 5 channels, 13x13, stride 1 and 2, asymmetric padding, kernels 3 and
//! 5; no size a multiple of a tile), outputs poisoned before the dispatch;
//! the CPU backward vs central finite differences in f64; shape mismatches
//! refused at record time.
//!
//! Tolerance: an output sums K = KH*KW*C products of inputs in [-1, 1]
//! (forward: C = Cin; backward data: taps * Cout; backward weights: K =
//! N*OH*OW). The GPU accumulates in f32 in tile order, the reference in
//! f64: the error grows like sqrt(K) eps (random walk), so atol =
//! 2e-5 * sqrt(K/100) (outputs near 0 after cancellation) and rtol 1e-4.

use crate::common::*;
use vae_vs_gan::ops::bias::{bias_grad, bias_grad_cpu};
use vae_vs_gan::ops::conv2d::*;
use vae_vs_gan::ops::gemm::{Fused, GemmConfig, Main};
use vae_vs_gan::{Step, Tensor};

fn atol(k: usize) -> f64 {
    2e-5 * (k as f64 / 100.0).sqrt().max(1.0)
}

fn t(shape: &[usize], data: &[f32], label: &str) -> Tensor {
    Tensor::from_f32(gpu(), shape, data, label).unwrap()
}

fn poisoned(shape: &[usize], label: &str) -> Tensor {
    let x = Tensor::zeros(gpu(), shape, label).unwrap();
    x.poison(gpu());
    x
}

/// (batch, h, w, cin, cout, conv) cases.
fn cases() -> Vec<(usize, usize, usize, usize, usize, Conv2d)> {
    let asym = Padding {
        top: 2,
        bottom: 0,
        left: 1,
        right: 2,
    };
    vec![
        (3, 13, 13, 5, 7, Conv2d::new(3, 3, 1, Padding::uniform(1))),
        (
            3,
            13,
            11,
            5,
            6,
            Conv2d::new(5, 5, 2, Padding::same(13, 5, 2)),
        ),
        (2, 13, 13, 3, 5, Conv2d::new(5, 5, 1, asym)),
        (3, 12, 9, 4, 3, Conv2d::new(3, 3, 2, asym)),
        (
            2,
            14,
            14,
            5,
            1,
            Conv2d::new(5, 5, 2, Padding::same(14, 5, 2)),
        ),
        (3, 9, 9, 1, 67, Conv2d::new(3, 5, 2, Padding::valid())),
        (
            1,
            7,
            7,
            130,
            3,
            Conv2d::new(3, 3, 1, Padding::same(7, 3, 1)),
        ),
    ]
}

#[test]
fn conv2d_forward_backward_data_backward_weights_match_cpu() {
    let g = gpu();
    for (i, (batch, h, w, cin, cout, conv)) in cases().into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout).unwrap();
        let seed = 3000 + 10 * i as u64;
        let x = uniform(batch * h * w * cin, -1.0, 1.0, seed);
        let wt = uniform(conv.kh * conv.kw * cin * cout, -1.0, 1.0, seed + 1);
        let b = uniform(cout, -1.0, 1.0, seed + 2);
        let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed + 3);
        let (xg, wg, bg, dyg) = (
            t(&d.x_shape(), &x, "x"),
            t(&d.w_shape(), &wt, "w"),
            t(&[cout], &b, "b"),
            t(&d.y_shape(), &dy, "dy"),
        );
        let y = poisoned(&d.y_shape(), "y");
        let y0 = poisoned(&d.y_shape(), "y (no bias)");
        let dx = poisoned(&d.x_shape(), "dx");
        let dw = poisoned(&d.w_shape(), "dw");
        let db = poisoned(&[cout], "db");
        let mut s = Step::new("conv");
        let _s1 = conv.forward(g, &mut s, &xg, &wg, Some(&bg), &y).unwrap();
        let _s2 = conv.forward(g, &mut s, &xg, &wg, None, &y0).unwrap();
        let _s3 = conv.backward_data(g, &mut s, &dyg, &wg, &dx).unwrap();
        let _s4 = conv.backward_weights(g, &mut s, &xg, &dyg, &dw).unwrap();
        let _s5 = bias_grad(g, &mut s, &dyg, &db).unwrap();
        run(&s);
        let tag = format!("{:?} x={:?} cout={cout}", conv, d.x_shape());
        let kf = conv.kh * conv.kw * cin;
        assert_close(
            &format!("conv2d_forward {tag}"),
            &y.read_f32(g).unwrap(),
            &forward_cpu(&d, &x, &wt, Some(&b)),
            atol(kf),
            1e-4,
        );
        assert_close(
            &format!("conv2d_forward no bias {tag}"),
            &y0.read_f32(g).unwrap(),
            &forward_cpu(&d, &x, &wt, None),
            atol(kf),
            1e-4,
        );
        assert_close(
            &format!("conv2d_backward_data {tag}"),
            &dx.read_f32(g).unwrap(),
            &backward_data_cpu(&d, &dy, &wt),
            atol(conv.kh * conv.kw * cout),
            1e-4,
        );
        assert_close(
            &format!("conv2d_backward_weights {tag}"),
            &dw.read_f32(g).unwrap(),
            &backward_weights_cpu(&d, &x, &dy),
            atol(batch * d.oh * d.ow),
            1e-4,
        );
        assert_close(
            &format!("conv2d_bias_grad {tag}"),
            &db.read_f32(g).unwrap(),
            &bias_grad_cpu(&dy, cout),
            atol(batch * d.oh * d.ow),
            1e-4,
        );
    }
}

/// Both GEMM mains forced (the default on lavapipe is the direct one), each
/// with its default tile and with forced split-K, every direction, backward
/// data both by stride phases and by GEMM + col2im, on the cases above plus
/// Cin = 2 (backward data N = 2, backward weights M = 18): together N = 1,
/// 2, 3 and M <= 64 outputs. Tolerances as above (split-K and col2im only
/// reorder the sums).
#[test]
fn conv2d_every_gemm_main_matches_cpu() {
    let g = gpu();
    let mut all = cases();
    all.push((
        3,
        11,
        10,
        2,
        9,
        Conv2d::new(3, 3, 2, Padding::same(11, 3, 2)),
    ));
    for (i, (batch, h, w, cin, cout, conv)) in all.into_iter().enumerate() {
        let d = conv.dims("test", batch, h, w, cin, cout).unwrap();
        let seed = 5000 + 10 * i as u64;
        let x = uniform(batch * h * w * cin, -1.0, 1.0, seed);
        let wt = uniform(conv.kh * conv.kw * cin * cout, -1.0, 1.0, seed + 1);
        let b = uniform(cout, -1.0, 1.0, seed + 2);
        let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, seed + 3);
        let (xg, wg, bg, dyg) = (
            t(&d.x_shape(), &x, "x"),
            t(&d.w_shape(), &wt, "w"),
            t(&[cout], &b, "b"),
            t(&d.y_shape(), &dy, "dy"),
        );
        let want_y = forward_cpu(&d, &x, &wt, Some(&b));
        let want_dx = backward_data_cpu(&d, &dy, &wt);
        let want_dw = backward_weights_cpu(&d, &x, &dy);
        for (main, splits, col2im) in [
            (Main::Tiled, None, false),
            (Main::Tiled, Some(3), true),
            (Main::Direct, None, false),
            (Main::Direct, Some(3), false),
            (Main::Direct, None, true),
            (Main::Tiled, None, true),
            (Main::Subgroup, None, false),
            (Main::Subgroup, Some(3), false),
            (Main::Subgroup, None, true),
        ]
        .into_iter()
        .filter(|c| runs_here(c.0))
        {
            {
                let cfg = GemmConfig {
                    main: Some(main),
                    tile: None,
                    col2im: Some(col2im),
                    splits,
                };
                let y = poisoned(&d.y_shape(), "y");
                let dx = poisoned(&d.x_shape(), "dx");
                let dw = poisoned(&d.w_shape(), "dw");
                let mut s = Step::new("conv");
                let op = "conv2d_test";
                let fb = Fused::bias(Some(&bg));
                let _s1 = record_forward(g, &mut s, op, &d, &xg, &wg, &fb, &y, &cfg).unwrap();
                let _s2 = record_backward_data(
                    g,
                    &mut s,
                    op,
                    &d,
                    &dyg,
                    &wg,
                    &Fused::default(),
                    &dx,
                    &cfg,
                )
                .unwrap();
                let _s3 =
                    record_backward_weights(g, &mut s, op, &d, &xg, &dyg, &dw, None, &cfg).unwrap();
                run(&s);
                let tag = format!(
                    "{main:?} splits={splits:?} {conv:?} x={:?} cout={cout}",
                    d.x_shape()
                );
                assert_close(
                    &format!("conv2d_forward {tag}"),
                    &y.read_f32(g).unwrap(),
                    &want_y,
                    atol(conv.kh * conv.kw * cin),
                    1e-4,
                );
                assert_close(
                    &format!("conv2d_backward_data {tag}"),
                    &dx.read_f32(g).unwrap(),
                    &want_dx,
                    atol(conv.kh * conv.kw * cout),
                    1e-4,
                );
                assert_close(
                    &format!("conv2d_backward_weights {tag}"),
                    &dw.read_f32(g).unwrap(),
                    &want_dw,
                    atol(batch * d.oh * d.ow),
                    1e-4,
                );
            }
        }
    }
}

/// Backward weights with a long reduction (K = N*OH*OW = 416,120, the
/// output 3x3x1x2): the kernels split k into (n, oy, ox) with an f32
/// division plus one correction step, exact below 2^24; this walks k over
/// a wide range with divisors 10,403 and 103 that are not powers of two.
/// Tolerance as above with that K (atol 1.3e-3; the sums are ~200).
#[test]
fn conv2d_backward_weights_long_reduction_matches_cpu() {
    let g = gpu();
    let conv = Conv2d::new(3, 3, 1, Padding::uniform(1));
    let d = conv.dims("test", 40, 101, 103, 1, 2).unwrap();
    let x = uniform(d.x_shape().iter().product(), -1.0, 1.0, 77);
    let dy = uniform(d.y_shape().iter().product(), -1.0, 1.0, 78);
    let dw = poisoned(&d.w_shape(), "dw");
    let mut s = Step::new("conv");
    let _s = conv
        .backward_weights(
            g,
            &mut s,
            &t(&d.x_shape(), &x, "x"),
            &t(&d.y_shape(), &dy, "dy"),
            &dw,
        )
        .unwrap();
    run(&s);
    assert_close(
        "conv2d_backward_weights long K",
        &dw.read_f32(g).unwrap(),
        &backward_weights_cpu(&d, &x, &dy),
        atol(40 * 101 * 103),
        1e-4,
    );
}

/// The CPU backward is the gradient of `sum(conv(x, w, b) * dy)`: central
/// differences in f64 with h = 1e-4. The function is bilinear in (x, w), so
/// the truncation error is 0 and only rounding (~1e-16 * |f| / h) remains.
#[test]
fn conv2d_backward_cpu_matches_finite_differences() {
    let asym = Padding {
        top: 0,
        bottom: 1,
        left: 2,
        right: 1,
    };
    for (i, conv) in [
        Conv2d::new(3, 3, 2, asym),
        Conv2d::new(5, 5, 2, Padding::same(7, 5, 2)),
        Conv2d::new(3, 5, 1, Padding::uniform(1)),
    ]
    .into_iter()
    .enumerate()
    {
        let d = conv.dims("fd", 2, 7, 6, 3, 2).unwrap();
        let seed = 4000 + 10 * i as u64;
        let n = |s: [usize; 4]| s.iter().product::<usize>();
        let x = to_f64(&uniform(n(d.x_shape()), -1.0, 1.0, seed));
        let w = to_f64(&uniform(n(d.w_shape()), -1.0, 1.0, seed + 1));
        let b = to_f64(&uniform(d.cout, -1.0, 1.0, seed + 2));
        let dy = to_f64(&uniform(n(d.y_shape()), -1.0, 1.0, seed + 3));
        let fx = |x: &[f64]| dot(&forward_cpu(&d, x, &w, Some(&b)), &dy);
        let fw = |w: &[f64]| dot(&forward_cpu(&d, &x, w, Some(&b)), &dy);
        let fb = |b: &[f64]| dot(&forward_cpu(&d, &x, &w, Some(b)), &dy);
        let tag = format!("{conv:?}");
        assert_close_f64(
            &format!("conv2d_backward_data_fd {tag}"),
            &backward_data_cpu(&d, &dy, &w),
            &fd_grad(fx, &x, 1e-4),
            1e-9,
            1e-7,
        );
        assert_close_f64(
            &format!("conv2d_backward_weights_fd {tag}"),
            &backward_weights_cpu(&d, &x, &dy),
            &fd_grad(fw, &w, 1e-4),
            1e-9,
            1e-7,
        );
        assert_close_f64(
            &format!("conv2d_bias_grad_fd {tag}"),
            &bias_grad_cpu(&dy, d.cout),
            &fd_grad(fb, &b, 1e-4),
            1e-9,
            1e-7,
        );
    }
}

#[test]
fn conv2d_same_padding_is_keras() {
    assert_eq!(
        Padding::same(28, 5, 2),
        Padding {
            top: 1,
            bottom: 2,
            left: 1,
            right: 2
        }
    );
    let p = Padding::same(14, 3, 2);
    assert_eq!((p.top, p.bottom), (0, 1));
    let p = Padding::same(7, 5, 1);
    assert_eq!((p.top, p.bottom), (2, 2));
    let conv = Conv2d::new(5, 5, 2, Padding::same(28, 5, 2));
    assert_eq!(conv.out_size("t", 28, 28).unwrap(), (14, 14));
}

#[test]
fn conv2d_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let conv = Conv2d::new(3, 3, 1, Padding::uniform(1));
    let x = Tensor::zeros(g, &[2, 5, 5, 3], "x").unwrap();
    let w = Tensor::zeros(g, &[3, 3, 4, 6], "w").unwrap();
    let y = Tensor::zeros(g, &[2, 5, 5, 6], "y").unwrap();
    let mut s = Step::new("bad");
    assert_err_mentions(
        conv.forward(g, &mut s, &x, &w, None, &y),
        &["conv2d_forward", "[3, 3, 3, 6]", "[3, 3, 4, 6]"],
    );
    let w = Tensor::zeros(g, &[3, 3, 3, 6], "w").unwrap();
    let y = Tensor::zeros(g, &[2, 4, 5, 6], "y").unwrap();
    assert_err_mentions(
        conv.forward(g, &mut s, &x, &w, None, &y),
        &["conv2d_forward", "[2, 5, 5, 6]", "[2, 4, 5, 6]"],
    );
    let dx = Tensor::zeros(g, &[2, 5, 5, 3], "dx").unwrap();
    assert_err_mentions(
        conv.backward_data(g, &mut s, &y, &w, &dx),
        &["conv2d_backward_data", "[2, 4, 5, 6]"],
    );
    let dw = Tensor::zeros(g, &[3, 3, 3, 6], "dw").unwrap();
    assert_err_mentions(
        conv.backward_weights(g, &mut s, &x, &y, &dw),
        &["conv2d_backward_weights", "[2, 4, 5, 6]"],
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
