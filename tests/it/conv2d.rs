//! conv2d, every direction: GPU vs the CPU reference on odd shapes with
//! every GEMM main (the shared checks, tests/checks/conv2d.rs, with their
//! tolerances); the CPU backward vs central finite differences in f64;
//! Keras' same padding; shape mismatches refused at record time.

use crate::common::*;
use vae_vs_gan::ops::bias::bias_grad_cpu;
use vae_vs_gan::ops::conv2d::*;
use vae_vs_gan::{Step, Tensor};

use crate::checks::conv2d as check;

#[test]
fn conv2d_forward_backward_data_backward_weights_match_cpu() {
    pass(check::all_directions(gpu()));
}

#[test]
fn conv2d_every_gemm_main_matches_cpu() {
    pass(check::every_gemm_main(gpu()));
}

#[test]
fn conv2d_backward_weights_long_reduction_matches_cpu() {
    pass(check::backward_weights_long_reduction(gpu()));
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
