//! Inverted dropout: GPU vs the CPU twin bit for bit, the backward applying
//! the forward's mask, eval the identity, masks changing with the step (the
//! shared checks, tests/checks/dropout.rs, which say why no tolerance is
//! needed), the CPU backward vs finite differences, and bad input refused.

use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::dropout;
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::{Step, Tensor};

use crate::checks::dropout as check;

#[test]
fn dropout_forward_matches_cpu_bit_for_bit() {
    pass(check::forward(gpu()));
}

#[test]
fn dropout_backward_applies_the_forward_mask() {
    pass(check::backward(gpu()));
}

#[test]
fn dropout_eval_is_identity() {
    pass(check::eval_identity(gpu()));
}

/// dropout is linear given its mask: the CPU backward is the gradient of
/// `sum(forward(x) * dy)`; central differences with h = 1e-6 are exact up to
/// f64 rounding (~1e-10).
#[test]
fn dropout_backward_cpu_matches_finite_differences() {
    let r = Philox::new(3, 3);
    let n = 41;
    let mask = dropout::dropout_mask_cpu(r, 2, n, 0.4);
    let x = to_f64(&uniform(n, -1.0, 1.0, 53));
    let dy = to_f64(&uniform(n, -1.0, 1.0, 54));
    let num = fd_grad(
        |x| dot(&dropout::dropout_forward_cpu(x, &mask), &dy),
        &x,
        1e-6,
    );
    let ana = dropout::dropout_backward_cpu(&mask, &dy);
    assert_close_f64("dropout_backward_fd", &ana, &num, 1e-8, 1e-6);
}

#[test]
fn dropout_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let r = Philox::new(0, 0);
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let bad = Tensor::zeros(g, &[4, 6], "bad").unwrap();
    let ok = Tensor::zeros(g, &[4, 5], "ok").unwrap();
    let mut s = Step::new("bad");
    let e = dropout::dropout_forward(g, &mut s, r, &state.counters, 0.5, &x, &bad, &ok)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dropout") && e.contains("[4, 5]") && e.contains("[4, 6]"),
        "{e}"
    );
    assert!(dropout::dropout_forward(g, &mut s, r, &state.counters, 1.0, &x, &ok, &ok).is_err());
    assert!(dropout::dropout_forward(g, &mut s, r, &state.counters, -0.1, &x, &ok, &ok).is_err());
    assert!(dropout::dropout_backward(g, &mut s, &x, &bad, &ok).is_err());
    assert!(dropout::dropout_eval(g, &mut s, &x, &bad).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
