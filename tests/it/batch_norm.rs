//! Batch norm: GPU vs CPU reference for the training forward, the
//! running-average update, the eval forward, the backward and the whole
//! chain, and determinism (the shared checks, tests/checks/batch_norm.rs,
//! with their tolerances); CPU backward vs central finite differences in
//! f64; shape errors at record time.

use crate::common::*;
use vae_vs_gan::ops::batch_norm::{
    backward_cpu, forward_train_cpu, BatchNormConfig, BnBackward, BnGrads,
};
use vae_vs_gan::{Step, Tensor};

use crate::checks::batch_norm::{self as check, setup, EPS};

#[test]
fn batch_norm_forward_train_matches_cpu() {
    pass(check::forward_train(gpu()));
}

#[test]
fn batch_norm_running_average_update_matches_cpu() {
    pass(check::running_average(gpu()));
}

#[test]
fn batch_norm_forward_eval_matches_cpu() {
    pass(check::forward_eval(gpu()));
}

#[test]
fn batch_norm_backward_matches_cpu() {
    pass(check::backward(gpu()));
}

#[test]
fn batch_norm_forward_then_backward_on_gpu_matches_cpu() {
    pass(check::forward_then_backward(gpu()));
}

#[test]
fn batch_norm_is_deterministic() {
    pass(check::deterministic(gpu()));
}

/// The CPU backward is the gradient of `sum(y * dy)` with batch statistics
/// recomputed from x (so dx includes the paths through mean and variance).
/// Central differences in f64, h = 1e-5: the loss is smooth (eps = 1e-3
/// keeps sqrt away from 0), truncation ~h^2 |f'''| ~ 1e-10 and rounding
/// ~1e-16 / h ~ 1e-11: atol 1e-7, rtol 1e-6.
#[test]
fn batch_norm_backward_cpu_matches_finite_differences() {
    for (k, shape) in [&[2usize, 3, 3, 4][..], &[5, 3][..]].iter().enumerate() {
        let seed = 6000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = *shape.last().unwrap();
        let x = to_f64(&uniform(n, -2.0, 3.0, seed));
        let dy = to_f64(&uniform(n, -1.0, 1.0, seed + 1));
        let gamma = to_f64(&uniform(c, 0.5, 1.5, seed + 2));
        let beta = to_f64(&uniform(c, -0.5, 0.5, seed + 3));
        let fwd = forward_train_cpu(&x, c, &gamma, &beta, EPS);
        let (dx, dgamma, dbeta) = backward_cpu(&x, &dy, c, &gamma, &fwd.mean, &fwd.inv_std);

        let f_x = |x: &[f64]| dot(&forward_train_cpu(x, c, &gamma, &beta, EPS).y, &dy);
        let f_g = |gm: &[f64]| dot(&forward_train_cpu(&x, c, gm, &beta, EPS).y, &dy);
        let f_b = |bt: &[f64]| dot(&forward_train_cpu(&x, c, &gamma, bt, EPS).y, &dy);
        let what = format!("batch_norm_backward_fd {shape:?}");
        assert_close_f64(
            &format!("{what} dx"),
            &dx,
            &fd_grad(f_x, &x, 1e-5),
            1e-7,
            1e-6,
        );
        assert_close_f64(
            &format!("{what} dgamma"),
            &dgamma,
            &fd_grad(f_g, &gamma, 1e-5),
            1e-7,
            1e-6,
        );
        assert_close_f64(
            &format!("{what} dbeta"),
            &dbeta,
            &fd_grad(f_b, &beta, 1e-5),
            1e-7,
            1e-6,
        );
    }
}

#[test]
fn batch_norm_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let shape = [3, 13, 13, 5];
    let (bn, _) = setup(g, &shape, 7000, BatchNormConfig::default()).unwrap();
    let x = Tensor::zeros(g, &shape, "x").unwrap();
    let y = Tensor::zeros(g, &[3, 13, 13, 6], "y").unwrap();
    let mut s = Step::new("bad");
    let err = bn
        .bn
        .forward_train(g, &mut s, &x, &bn.params(), &bn.saved(), &y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_norm")
            && err.contains("[3, 13, 13, 5]")
            && err.contains("[3, 13, 13, 6]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");

    // A per-channel tensor of the wrong length, in the backward.
    let y = Tensor::zeros(g, &shape, "y").unwrap();
    let bad_gamma = Tensor::zeros(g, &[4], "gamma").unwrap();
    let dg = Tensor::zeros(g, &[5], "dgamma").unwrap();
    let db = Tensor::zeros(g, &[5], "dbeta").unwrap();
    let grads = BnGrads {
        dx: &y,
        dgamma: &dg,
        dbeta: &db,
    };
    let err = bn
        .bn
        .backward(
            g,
            &mut s,
            &BnBackward {
                x: &x,
                dy: &x,
                gamma: &bad_gamma,
                saved: bn.saved(),
            },
            &grads,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_norm") && err.contains("[5]") && err.contains("[4]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");

    // An input of another shape than the op was built for.
    let x2 = Tensor::zeros(g, &[2, 13, 13, 5], "x").unwrap();
    let err = bn
        .bn
        .forward_eval(g, &mut s, &x2, &bn.params(), &x2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_norm") && err.contains("[2, 13, 13, 5]"),
        "{err}"
    );
    assert!(s.is_empty());
}
