//! conv_transpose2d, every direction: GPU vs the CPU reference on odd
//! shapes (batch 3, 5 channels, 13x13, stride 1 and 2, asymmetric padding,
//! kernels 3 and 5), outputs poisoned; the CPU forward is the adjoint of the
//! conv forward (<conv(x), y> == <x, convT(y)>); the CPU backward vs central
//! finite differences in f64; shape mismatches refused at record time.
//!
//! Tolerance as in tests/it/conv2d.rs: atol = 2e-5 * sqrt(K/100) for a
//! reduction of length K (random-walk growth of f32 rounding vs the f64
//! reference), rtol 1e-4. Forward: K = taps * Ci_t; backward data:
//! KH*KW*Co_t; backward weights: N*Hi*Wi.

use crate::common::*;
use vae_vs_gan::ops::conv2d::{self, Padding};
use vae_vs_gan::ops::conv_transpose2d::*;
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

/// (batch, hi, wi, ci_t, co_t, op) cases; the output size is explicit.
fn cases() -> Vec<(usize, usize, usize, usize, usize, ConvTranspose2d)> {
    let asym = Padding {
        top: 2,
        bottom: 0,
        left: 1,
        right: 2,
    };
    vec![
        // same, stride 2: 7 -> 13 and 7 -> 14 (two output sizes, one input)
        (
            3,
            7,
            7,
            5,
            6,
            ConvTranspose2d::new(5, 5, 2, Padding::same(13, 5, 2), 13, 13),
        ),
        (
            2,
            7,
            7,
            3,
            5,
            ConvTranspose2d::new(5, 5, 2, Padding::same(14, 5, 2), 14, 14),
        ),
        (
            3,
            13,
            13,
            5,
            4,
            ConvTranspose2d::new(3, 3, 1, Padding::uniform(1), 13, 13),
        ),
        // asymmetric padding, stride 2, non-square
        (2, 6, 5, 4, 5, ConvTranspose2d::new(3, 3, 2, asym, 12, 9)),
        // stride 3 with a 3x3 kernel: every phase has exactly one tap
        (
            2,
            5,
            5,
            3,
            2,
            ConvTranspose2d::new(3, 3, 3, Padding::valid(), 15, 17),
        ),
        // stride 2 with a 1x1 kernel: three of the four phases have no taps
        (
            2,
            4,
            4,
            3,
            2,
            ConvTranspose2d::new(1, 1, 2, Padding::valid(), 8, 8),
        ),
        // the generator's last layer, small batch: 64 -> 1 channels
        (
            2,
            14,
            14,
            64,
            1,
            ConvTranspose2d::new(5, 5, 2, Padding::same(28, 5, 2), 28, 28),
        ),
    ]
}

#[test]
fn conv_transpose2d_forward_backward_data_backward_weights_match_cpu() {
    let g = gpu();
    for (i, (batch, hi, wi, ci_t, co_t, op)) in cases().into_iter().enumerate() {
        let d = op.dims("test", batch, hi, wi, ci_t, co_t).unwrap();
        // d is the adjoint conv: d.x = this op's y, d.y = this op's x
        let (xs, ys, ws) = (d.y_shape(), d.x_shape(), d.w_shape());
        let n = |s: [usize; 4]| s.iter().product::<usize>();
        let seed = 5000 + 10 * i as u64;
        let x = uniform(n(xs), -1.0, 1.0, seed);
        let w = uniform(n(ws), -1.0, 1.0, seed + 1);
        let b = uniform(co_t, -1.0, 1.0, seed + 2);
        let dy = uniform(n(ys), -1.0, 1.0, seed + 3);
        let (xg, wg, bg, dyg) = (
            t(&xs, &x, "x"),
            t(&ws, &w, "w"),
            t(&[co_t], &b, "b"),
            t(&ys, &dy, "dy"),
        );
        let y = poisoned(&ys, "y");
        let dx = poisoned(&xs, "dx");
        let dw = poisoned(&ws, "dw");
        let mut s = Step::new("convT");
        let _s1 = op.forward(g, &mut s, &xg, &wg, Some(&bg), &y).unwrap();
        let _s2 = op.backward_data(g, &mut s, &dyg, &wg, &dx).unwrap();
        let _s3 = op.backward_weights(g, &mut s, &xg, &dyg, &dw).unwrap();
        run(&s);
        let tag = format!("{:?} x={xs:?} y={ys:?}", op.conv);
        let (kh, kw, st) = (op.conv.kh, op.conv.kw, op.conv.stride);
        assert_close(
            &format!("conv_transpose2d_forward {tag}"),
            &y.read_f32(g).unwrap(),
            &forward_cpu(&d, &x, &w, Some(&b)),
            atol(kh.div_ceil(st) * kw.div_ceil(st) * ci_t),
            1e-4,
        );
        assert_close(
            &format!("conv_transpose2d_backward_data {tag}"),
            &dx.read_f32(g).unwrap(),
            &backward_data_cpu(&d, &dy, &w),
            atol(kh * kw * co_t),
            1e-4,
        );
        assert_close(
            &format!("conv_transpose2d_backward_weights {tag}"),
            &dw.read_f32(g).unwrap(),
            &backward_weights_cpu(&d, &x, &dy),
            atol(batch * hi * wi),
            1e-4,
        );
    }
}

/// <conv(x), y> == <x, convT(y)> for the CPU references, in f64: both sides
/// sum the same products in different orders (rounding ~1e-13).
#[test]
fn conv_transpose2d_forward_is_adjoint_of_conv2d_forward() {
    for (i, (batch, hi, wi, ci_t, co_t, op)) in cases().into_iter().take(6).enumerate() {
        let d = op.dims("adjoint", batch, hi, wi, ci_t, co_t).unwrap();
        let n = |s: [usize; 4]| s.iter().product::<usize>();
        let seed = 6000 + 10 * i as u64;
        let x = to_f64(&uniform(n(d.x_shape()), -1.0, 1.0, seed));
        let w = to_f64(&uniform(n(d.w_shape()), -1.0, 1.0, seed + 1));
        let y = to_f64(&uniform(n(d.y_shape()), -1.0, 1.0, seed + 2));
        let lhs = dot(&conv2d::forward_cpu(&d, &x, &w, None), &y);
        let rhs = dot(&x, &forward_cpu(&d, &y, &w, None));
        assert!(
            (lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()),
            "conv_transpose2d adjoint {:?}: {lhs} vs {rhs}",
            op.conv
        );
    }
}

/// The CPU backward is the gradient of `sum(convT(x, w, b) * dy)`: central
/// differences in f64, h = 1e-4 (bilinear: no truncation error).
#[test]
fn conv_transpose2d_backward_cpu_matches_finite_differences() {
    let asym = Padding {
        top: 0,
        bottom: 1,
        left: 2,
        right: 1,
    };
    for (i, op) in [
        ConvTranspose2d::new(3, 3, 2, asym, 8, 7),
        ConvTranspose2d::new(5, 5, 2, Padding::same(8, 5, 2), 8, 8),
    ]
    .into_iter()
    .enumerate()
    {
        let (hi, wi) = op.conv.out_size("fd", op.out_h, op.out_w).unwrap();
        let d = op.dims("fd", 2, hi, wi, 3, 2).unwrap();
        let n = |s: [usize; 4]| s.iter().product::<usize>();
        let seed = 7000 + 10 * i as u64;
        let x = to_f64(&uniform(n(d.y_shape()), -1.0, 1.0, seed));
        let w = to_f64(&uniform(n(d.w_shape()), -1.0, 1.0, seed + 1));
        let b = to_f64(&uniform(d.cin, -1.0, 1.0, seed + 2));
        let dy = to_f64(&uniform(n(d.x_shape()), -1.0, 1.0, seed + 3));
        let fx = |x: &[f64]| dot(&forward_cpu(&d, x, &w, Some(&b)), &dy);
        let fw = |w: &[f64]| dot(&forward_cpu(&d, &x, w, Some(&b)), &dy);
        let tag = format!("{:?}", op.conv);
        assert_close_f64(
            &format!("conv_transpose2d_backward_data_fd {tag}"),
            &backward_data_cpu(&d, &dy, &w),
            &fd_grad(fx, &x, 1e-4),
            1e-9,
            1e-7,
        );
        assert_close_f64(
            &format!("conv_transpose2d_backward_weights_fd {tag}"),
            &backward_weights_cpu(&d, &x, &dy),
            &fd_grad(fw, &w, 1e-4),
            1e-9,
            1e-7,
        );
    }
}

#[test]
fn conv_transpose2d_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let op = ConvTranspose2d::new(5, 5, 2, Padding::same(14, 5, 2), 14, 14);
    let x = Tensor::zeros(g, &[2, 7, 7, 4], "x").unwrap();
    let w = Tensor::zeros(g, &[5, 5, 3, 4], "w").unwrap();
    let y = Tensor::zeros(g, &[2, 13, 14, 3], "y").unwrap();
    let mut s = Step::new("bad");
    assert_err_mentions(
        op.forward(g, &mut s, &x, &w, None, &y),
        &[
            "conv_transpose2d_forward",
            "[2, 14, 14, 3]",
            "[2, 13, 14, 3]",
        ],
    );
    let w5 = Tensor::zeros(g, &[5, 5, 3, 5], "w").unwrap();
    assert_err_mentions(
        op.forward(g, &mut s, &x, &w5, None, &y),
        &["conv_transpose2d_forward", "[5, 5, 3, 4]", "[5, 5, 3, 5]"],
    );
    // an output size that does not map back onto the input
    let bad = ConvTranspose2d::new(5, 5, 2, Padding::same(14, 5, 2), 20, 20);
    let y20 = Tensor::zeros(g, &[2, 20, 20, 3], "y").unwrap();
    assert_err_mentions(
        bad.forward(g, &mut s, &x, &w, None, &y20),
        &["conv_transpose2d_forward", "7x7"],
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
