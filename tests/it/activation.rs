//! Pointwise activations: GPU vs CPU reference and finiteness at |x| = 100
//! (the shared checks, tests/checks/activation.rs, with their tolerances),
//! the CPU backward vs finite differences, and refusals.

use crate::common::*;
use vae_vs_gan::ops::activation::Activation;
use vae_vs_gan::{Step, Tensor};

use crate::checks::activation::{self as check, ALL};

#[test]
fn activation_forward_matches_cpu() {
    pass(check::forward(gpu()));
}

#[test]
fn activation_backward_matches_cpu() {
    pass(check::backward(gpu()));
}

/// The CPU backward is the gradient of `sum(f(x) * dy)`: central differences
/// in f64 with h = 1e-6 have truncation error ~h^2 |f'''| < 1e-10, and
/// inputs stay 0.05 away from the ReLU kink.
#[test]
fn activation_backward_cpu_matches_finite_differences() {
    for (k, act) in ALL.iter().enumerate() {
        let x = to_f64(&away_from_zero(37, 0.05, 400 + k as u64));
        let dy = to_f64(&uniform(37, -1.0, 1.0, 500 + k as u64));
        let f = |x: &[f64]| dot(&act.forward_cpu(x), &dy);
        let num = fd_grad(f, &x, 1e-6);
        let saved = if act.backward_uses_output() {
            act.forward_cpu(&x)
        } else {
            x.clone()
        };
        let ana = act.backward_cpu(&saved, &dy);
        assert_close_f64(&format!("{act:?}_backward_fd"), &ana, &num, 1e-8, 1e-6);
    }
}

#[test]
fn activation_finite_at_extremes() {
    pass(check::finite_at_extremes(gpu()));
}

#[test]
fn activation_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let y = Tensor::zeros(g, &[4, 6], "y").unwrap();
    let mut s = Step::new("bad");
    let err = Activation::Relu
        .forward(g, &mut s, &x, &y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("relu") && err.contains("[4, 5]") && err.contains("[4, 6]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
}

/// The whole-step references' kink rule (`models::kink`): without the
/// GPU's branches it is `backward_cpu` exactly; with them, an input within
/// `rtol * max|x|` of 0 takes the GPU's branch (counted as followed), and
/// a GPU branch on the other side farther out is reported, not taken.
#[test]
fn kink_backward_follows_the_gpu_only_within_reach_of_zero() {
    use vae_vs_gan::models::kink::{relu_family_backward, KinkCount, KinkSides};
    let x = [2.0f64, -1e-9, 1e-9, -0.5, 0.75];
    let dy = [1.0f64, 2.0, 3.0, 4.0, 5.0];
    for (slope, act) in [
        (0.0, Activation::Relu),
        (0.2f32 as f64, Activation::LeakyRelu(0.2)),
    ] {
        let mut count = KinkCount::default();
        let own = relu_family_backward(slope, &x, &dy, None, &mut count);
        assert_eq!(own, act.backward_cpu(&x, &dy), "{act:?} without sides");
        assert_eq!(count, KinkCount::default());

        // The GPU put the two tiny inputs on the other side, and -0.5 above
        // 0: rtol 1e-6 of max|x| = 2 reaches 2e-6, so the first two are
        // followed and the third is reported.
        let sides = KinkSides {
            above: vec![vec![true, true, false, true, true]],
            rtol: 1e-6,
        };
        let got = relu_family_backward(slope, &x, &dy, Some((&sides, 0)), &mut count);
        assert_eq!(
            got,
            vec![1.0, 2.0, 3.0 * slope, 4.0 * slope, 5.0],
            "{act:?}"
        );
        assert_eq!(count.followed, 2, "{act:?}");
        assert_eq!(count.beyond, vec![(0, 3)], "{act:?}");
    }
}
