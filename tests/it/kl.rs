//! Gaussian KL on h = [mu | logvar]: GPU vs CPU, the accumulate mode on top
//! of reparam_backward and finiteness at |x| = 100 (the shared checks,
//! tests/checks/kl.rs, with their tolerances), CPU backward vs finite
//! differences including past the logvar clamp, and shape refusal.

use crate::common::*;
use vae_vs_gan::ops::kl;
use vae_vs_gan::{Step, Tensor};

use crate::checks::kl::{self as check, make_h, outputs};

#[test]
fn kl_matches_cpu() {
    pass(check::matches_cpu(gpu()));
}

#[test]
fn kl_accumulates_onto_reparam_backward() {
    pass(check::accumulates_onto_reparam_backward(gpu()));
}

/// Central differences of the f64 CPU loss (h = 1e-6, truncation ~1e-12,
/// roundoff ~1e-16 * |loss| / h ~ 1e-9).
#[test]
fn kl_backward_cpu_matches_finite_differences() {
    let (n, l) = (3, 4);
    let h = to_f64(&make_h(n, l, 630));
    for scale in [1.0, 0.4] {
        let num = fd_grad(|h| kl::kl_cpu(h, l, scale).loss, &h, 1e-6);
        let ana = kl::kl_cpu(&h, l, scale).grad;
        assert_close_f64("kl_backward_fd", &ana, &num, 1e-8, 1e-6);
    }
}

/// At the clamp. Past it (logvar 31, -45) the loss does not change with
/// logvar: the central difference is exactly 0, as is the gradient. Just
/// inside (29.9, exp ~ 1e13) the gradient is the full 0.5 (exp(c) - 1) / N:
/// step 1e-3 there gives truncation (h^2 / 6) f3 / f1 ~ 2e-7 relative and
/// roundoff 1e-16 * 5e12 / 1e-3 = 0.5 absolute on a 5e12 gradient. Only the
/// logvar coordinates are differenced: the 1e13 loss term swamps the mu
/// differences in rounding (mu's gradient is covered by the test above).
#[test]
fn kl_backward_cpu_matches_finite_differences_at_clamp() {
    let l = 3;
    let mut h = to_f64(&make_h(2, l, 640));
    h[l] = 31.0;
    h[l + 1] = 29.9;
    h[2 * l + l + 2] = -45.0;
    let ana = kl::kl_cpu(&h, l, 1.0).grad;
    for (i, step, want_zero) in [
        (l, 1e-6, true),
        (2 * l + l + 2, 1e-6, true),
        (l + 1, 1e-3, false),
    ] {
        let f = |d: f64| {
            let mut hh = h.clone();
            hh[i] += d;
            kl::kl_cpu(&hh, l, 1.0).loss
        };
        let num = (f(step) - f(-step)) / (2.0 * step);
        if want_zero {
            assert_eq!(num, 0.0, "coordinate {i}");
            assert_eq!(ana[i], 0.0, "coordinate {i}");
        } else {
            assert_close_f64("kl_backward_fd near clamp", &[ana[i]], &[num], 1.0, 1e-6);
            assert!(ana[i] > 1e12);
        }
    }
}

#[test]
fn kl_finite_at_extremes() {
    pass(check::finite_at_extremes(gpu()));
}

#[test]
fn kl_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let h = Tensor::zeros(g, &[4, 6], "h").unwrap();
    let odd = Tensor::zeros(g, &[4, 5], "odd").unwrap();
    let o = outputs(g, 4, 3).unwrap();
    let row3 = Tensor::zeros(g, &[3], "row3").unwrap();
    let mut s = Step::new("bad");
    let e = kl::kl_divergence(g, &mut s, &h, &row3, &o.loss, None, false, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("kl") && e.contains("[4]") && e.contains("[3]"),
        "{e}"
    );
    assert!(kl::kl_divergence(g, &mut s, &odd, &o.row, &o.loss, None, false, 1.0).is_err());
    let e = kl::kl_divergence(g, &mut s, &h, &o.row, &o.loss, Some(&odd), true, 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[4, 6]") && e.contains("[4, 5]"), "{e}");
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
