//! Reparameterisation z = mu + exp(0.5 logvar) eps on h = [mu | logvar]:
//! eps is the Philox normal, z and the backward match the CPU, |x| = 100
//! stays finite and the mean mode copies mu (the shared checks,
//! tests/checks/reparam.rs, with their tolerances); the CPU backward matches
//! finite differences (including past the logvar clamp); refusals.

use crate::checks::kl::make_h;
use crate::checks::reparam as check;
use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::reparam;
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::{Step, Tensor};

#[test]
fn reparam_forward_matches_cpu() {
    pass(check::forward(gpu()));
}

#[test]
fn reparam_backward_matches_cpu() {
    pass(check::backward(gpu()));
}

/// The CPU backward is the gradient of `sum(z(h) * dz)` at fixed eps:
/// central differences in f64, h = 1e-6, truncation ~h^2 |z'''| < 1e-10.
/// Two logvars sit past the clamp (31 and -35), where both give 0. z at
/// logvar 31 is ~3e6, so f subtracts z(h0) elementwise before the dot: the
/// untouched elements then cancel exactly and do not swamp the difference.
#[test]
fn reparam_backward_cpu_matches_finite_differences() {
    let (n, l) = (3, 5);
    let mut h = to_f64(&make_h(n, l, 100));
    h[l] = 31.0;
    h[2 * l + l + 2] = -35.0;
    let mut eps = to_f64(&uniform(n * l, -2.0, 2.0, 101));
    // Small noise where exp(0.5 c) = 3.3e6, so z stays O(1) and the FD of
    // mu there is not lost to rounding; unclamped, the logvar gradient
    // would still be 0.5 * 3.3e6 * 1e-7 * dz ~ 0.1, easily seen.
    eps[0] = 1e-7;
    eps[l + 2] = -1e-7;
    let dz = to_f64(&uniform(n * l, -1.0, 1.0, 102));
    let z0 = reparam::reparam_forward_cpu(&h, &eps, l);
    let f = |h: &[f64]| {
        let z = reparam::reparam_forward_cpu(h, &eps, l);
        let dzv: Vec<f64> = z.iter().zip(&z0).map(|(a, b)| a - b).collect();
        dot(&dzv, &dz)
    };
    let num = fd_grad(f, &h, 1e-6);
    let ana = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
    assert_close_f64("reparam_backward_fd", &ana, &num, 1e-7, 1e-6);
    assert_eq!(ana[l], 0.0);
}

#[test]
fn reparam_finite_at_extremes() {
    pass(check::finite_at_extremes(gpu()));
}

#[test]
fn reparam_mean_copies_mu() {
    pass(check::mean_copies_mu(gpu()));
}

#[test]
fn reparam_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let r = Philox::new(0, 0);
    let h = Tensor::zeros(g, &[4, 6], "h").unwrap();
    let odd = Tensor::zeros(g, &[4, 5], "odd").unwrap();
    let ok = Tensor::zeros(g, &[4, 3], "ok").unwrap();
    let bad = Tensor::zeros(g, &[4, 2], "bad").unwrap();
    let mut s = Step::new("bad");
    let e = reparam::reparam_forward(g, &mut s, r, &state.counters, &h, &ok, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("reparam") && e.contains("[4, 3]") && e.contains("[4, 2]"),
        "{e}"
    );
    assert!(reparam::reparam_forward(g, &mut s, r, &state.counters, &odd, &ok, &ok).is_err());
    assert!(reparam::reparam_backward(g, &mut s, &h, &ok, &ok, &odd).is_err());
    assert!(reparam::reparam_backward(g, &mut s, &h, &bad, &ok, &h).is_err());
    assert!(reparam::reparam_mean(g, &mut s, &h, &bad).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
