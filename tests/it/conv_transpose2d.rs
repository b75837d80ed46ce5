//! conv_transpose2d, every direction: GPU vs the CPU reference on odd
//! shapes (the shared check, tests/checks/conv_transpose2d.rs, with its
//! tolerances); the CPU forward is the adjoint of the conv forward
//! (<conv(x), y> == <x, convT(y)>); the CPU backward vs central finite
//! differences in f64; shape mismatches refused at record time.

use crate::common::*;
use vae_vs_gan::ops::conv2d::{self, Padding};
use vae_vs_gan::ops::conv_transpose2d::*;
use vae_vs_gan::{Step, Tensor};

use crate::checks::conv_transpose2d::{self as check, cases};

#[test]
fn conv_transpose2d_forward_backward_data_backward_weights_match_cpu() {
    pass(check::all_directions(gpu()));
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
