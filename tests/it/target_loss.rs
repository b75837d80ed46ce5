//! The GAN's target losses (least squares, hinge, linear; src/ops/
//! least_squares.rs, hinge.rs, linear_loss.rs): GPU vs CPU (the shared
//! checks, tests/checks/target_loss.rs, with their tolerances), each CPU
//! backward against central differences of its CPU loss, and shape
//! refusal.

use crate::checks::target_loss::{self as check, LOSSES};
use crate::common::*;
use vae_vs_gan::ops::least_squares::LEAST_SQUARES;
use vae_vs_gan::{Step, Tensor};

#[test]
fn target_losses_match_cpu() {
    for loss in &LOSSES {
        pass(check::matches_cpu(gpu(), loss));
    }
}

/// Each CPU gradient is the gradient of its CPU scalar loss: central
/// differences in f64 with h = 1e-6. Least squares is quadratic and the
/// others are linear between kinks (the hinge's logits stay 0.1 away from
/// its kink), so the truncation error is 0 and roundoff ~1e-16 |loss| / h
/// ~1e-9: atol 1e-8.
#[test]
fn target_loss_backward_cpu_matches_finite_differences() {
    let (rows, f) = (3, 7);
    let t: Vec<f64> = to_f64(&uniform(rows * f, 0.0, 1.0, 221))
        .into_iter()
        .map(f64::round)
        .collect();
    let x: Vec<f64> = to_f64(&uniform(rows * f, -4.0, 4.0, 220))
        .into_iter()
        .zip(&t)
        .map(|(x, t)| {
            let s = 2.0 * t - 1.0;
            if (1.0 - s * x).abs() < 0.1 {
                x + 0.2 * s
            } else {
                x
            }
        })
        .collect();
    for loss in LOSSES.map(|l| l.loss) {
        for scale in [1.0, 2.0, -1.0] {
            let num = fd_grad(|x| loss.cpu(x, &t, f, scale).loss, &x, 1e-6);
            let ana = loss.cpu(&x, &t, f, scale).grad;
            assert_close_f64(&format!("{} backward fd", loss.op), &ana, &num, 1e-8, 1e-6);
        }
    }
}

/// Targets of another shape, and a gradient of another shape, are refused
/// when the op is recorded.
#[test]
fn target_loss_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 1], "x").unwrap();
    let row = Tensor::zeros(g, &[4], "row").unwrap();
    let grad = Tensor::zeros(g, &[4, 1], "grad").unwrap();
    let bad = Tensor::zeros(g, &[5, 1], "bad").unwrap();
    let mut s = Step::new("bad");
    let e = LEAST_SQUARES
        .rows(g, &mut s, &x, &bad, &row, &grad, 1.0)
        .unwrap_err();
    assert!(e.to_string().contains("least_squares"), "{e}");
    let e = LEAST_SQUARES
        .rows(g, &mut s, &x, &x, &row, &bad, 1.0)
        .unwrap_err();
    assert!(e.to_string().contains("least_squares"), "{e}");
    assert_eq!(s.stats().dispatches, 0, "nothing recorded");
}
