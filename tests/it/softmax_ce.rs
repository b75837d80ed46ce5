//! Softmax cross-entropy: GPU vs CPU (rows wider than the workgroup too),
//! finiteness at |x| = 100 and NaN for an out-of-range label (the shared
//! checks, tests/checks/softmax_ce.rs, with their tolerances), the CPU
//! backward vs finite differences, and shape refusal.

use crate::common::*;
use vae_vs_gan::gpu::DType;
use vae_vs_gan::ops::softmax_ce;
use vae_vs_gan::{Step, Tensor};

use crate::checks::softmax_ce::{self as check, labels, outputs};

#[test]
fn softmax_ce_matches_cpu() {
    pass(check::matches_cpu(gpu()));
}

/// Central differences of the f64 CPU loss, h = 1e-6.
#[test]
fn softmax_ce_backward_cpu_matches_finite_differences() {
    let (n, k) = (4, 7);
    let x = to_f64(&uniform(n * k, -3.0, 3.0, 420));
    let lab = labels(n, k, 421);
    for scale in [1.0, 0.3] {
        let num = fd_grad(
            |x| softmax_ce::softmax_ce_cpu(x, &lab, k, scale).loss,
            &x,
            1e-6,
        );
        let ana = softmax_ce::softmax_ce_cpu(&x, &lab, k, scale).grad;
        assert_close_f64("softmax_ce_backward_fd", &ana, &num, 1e-8, 1e-6);
    }
}

#[test]
fn softmax_ce_finite_at_extremes() {
    pass(check::finite_at_extremes(gpu()));
}

#[test]
fn softmax_ce_out_of_range_label_gives_nan() {
    pass(check::out_of_range_label_gives_nan(gpu()));
}

#[test]
fn softmax_ce_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "logits").unwrap();
    let lab = Tensor::new(g, &[4], DType::U32, "labels").unwrap();
    let lab3 = Tensor::new(g, &[3], DType::U32, "labels3").unwrap();
    let labf = Tensor::zeros(g, &[4], "labels_f32").unwrap();
    let o = outputs(g, 4, 5).unwrap();
    let gbad = Tensor::zeros(g, &[4, 6], "grad").unwrap();
    let mut s = Step::new("bad");
    let e = softmax_ce::softmax_ce(g, &mut s, &x, &lab3, &o.row, &o.loss, None, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("softmax_ce") && e.contains("[4]") && e.contains("[3]"),
        "{e}"
    );
    assert!(softmax_ce::softmax_ce(g, &mut s, &x, &labf, &o.row, &o.loss, None, 1.0).is_err());
    let e = softmax_ce::softmax_ce(g, &mut s, &x, &lab, &o.row, &o.loss, Some(&gbad), 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[4, 5]") && e.contains("[4, 6]"), "{e}");
    let x3 = Tensor::zeros(g, &[4, 5, 1], "logits3d").unwrap();
    assert!(softmax_ce::softmax_ce(g, &mut s, &x3, &lab, &o.row, &o.loss, None, 1.0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
