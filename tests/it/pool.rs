//! Max pools (global and 2x2 stride 2): GPU vs CPU reference, forward
//! (values and argmax) and backward, and tie-breaking (the shared checks,
//! tests/checks/pool.rs, with their tolerances); CPU backward vs central
//! finite differences in f64; shape errors at record time.

use crate::common::*;
use vae_vs_gan::ops::pool::{
    global_max_pool_backward, global_max_pool_cpu, global_max_pool_forward, max_pool2x2_backward,
    max_pool2x2_cpu, max_pool2x2_forward, max_pool2x2_out_shape, max_pool_backward_cpu,
};
use vae_vs_gan::{Step, Tensor};

use crate::checks::pool::{self as check, u32_tensor};

#[test]
fn global_max_pool_forward_matches_cpu() {
    pass(check::global_forward(gpu()));
}

#[test]
fn max_pool2x2_forward_matches_cpu() {
    pass(check::max2x2_forward(gpu()));
}

/// Ties go to the first element in row-major order, on GPU and CPU.
#[test]
fn max_pool_ties_pick_first_in_row_major_order() {
    pass(check::ties_pick_first(gpu()));
}

#[test]
fn global_max_pool_backward_matches_cpu() {
    pass(check::global_backward(gpu()));
}

#[test]
fn max_pool2x2_backward_matches_cpu() {
    pass(check::max2x2_backward(gpu()));
}

/// Distinct inputs (a shuffled grid 0.01 apart), h = 1e-4: no perturbation
/// can change an argmax, so the pooled loss `sum(pool(x) * dy)` is linear
/// in x around the point and central differences are exact up to f64
/// rounding (~1e-16 / h ~ 1e-12): atol 1e-9.
#[test]
fn max_pool_backward_cpu_matches_finite_differences() {
    use rand::seq::SliceRandom;
    for (k, d) in [[2usize, 5, 5, 3], [1, 4, 7, 2]].iter().enumerate() {
        let n: usize = d.iter().product();
        let mut x: Vec<f64> = (0..n).map(|i| i as f64 * 0.01 - 1.0).collect();
        x.shuffle(&mut rng(600 + k as u64));

        let dy_g = to_f64(&uniform(d[0] * d[3], -1.0, 1.0, 650 + k as u64));
        let (_, arg) = global_max_pool_cpu(&x, *d);
        let f = |x: &[f64]| dot(&global_max_pool_cpu(x, *d).0, &dy_g);
        assert_close_f64(
            &format!("global_max_pool_backward_fd {d:?}"),
            &max_pool_backward_cpu(&arg, &dy_g, n),
            &fd_grad(f, &x, 1e-4),
            1e-9,
            0.0,
        );

        let out = max_pool2x2_out_shape(d).unwrap();
        let dy_m = to_f64(&uniform(out.iter().product(), -1.0, 1.0, 660 + k as u64));
        let (_, arg) = max_pool2x2_cpu(&x, *d);
        let f = |x: &[f64]| dot(&max_pool2x2_cpu(x, *d).0, &dy_m);
        assert_close_f64(
            &format!("max_pool2x2_backward_fd {d:?}"),
            &max_pool_backward_cpu(&arg, &dy_m, n),
            &fd_grad(f, &x, 1e-4),
            1e-9,
            0.0,
        );
    }
}

#[test]
fn max_pool_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[3, 13, 13, 5], "x").unwrap();
    let mut s = Step::new("bad");

    let y = Tensor::zeros(g, &[3, 6, 6, 5], "y").unwrap();
    let a = u32_tensor(g, &[3, 6, 6, 5], "argmax").unwrap();
    let err = global_max_pool_forward(g, &mut s, &x, &y, &a)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("global_max_pool") && err.contains("[3, 5]") && err.contains("[3, 6, 6, 5]"),
        "{err}"
    );

    let y = Tensor::zeros(g, &[3, 7, 7, 5], "y").unwrap();
    let err = max_pool2x2_forward(g, &mut s, &x, &y, &a)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_pool2x2") && err.contains("[3, 6, 6, 5]") && err.contains("[3, 7, 7, 5]"),
        "{err}"
    );

    // argmax must be u32.
    let y = Tensor::zeros(g, &[3, 6, 6, 5], "y").unwrap();
    let af = Tensor::zeros(g, &[3, 6, 6, 5], "argmax").unwrap();
    let err = max_pool2x2_forward(g, &mut s, &x, &y, &af)
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_pool2x2") && err.contains("U32"), "{err}");

    // Backward: dy of the wrong shape.
    let dy = Tensor::zeros(g, &[3, 6, 5, 5], "dy").unwrap();
    let err = max_pool2x2_backward(g, &mut s, &a, &dy, &x)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_pool2x2") && err.contains("[3, 6, 6, 5]") && err.contains("[3, 6, 5, 5]"),
        "{err}"
    );
    let dy = Tensor::zeros(g, &[3, 4], "dy").unwrap();
    let ag = u32_tensor(g, &[3, 5], "argmax").unwrap();
    let err = global_max_pool_backward(g, &mut s, &ag, &dy, &x)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("global_max_pool") && err.contains("[3, 5]") && err.contains("[3, 4]"),
        "{err}"
    );

    // Not NHWC / too small to pool.
    let flat = Tensor::zeros(g, &[3, 5], "x").unwrap();
    let err = global_max_pool_forward(g, &mut s, &flat, &dy, &ag)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("global_max_pool") && err.contains("[3, 5]"),
        "{err}"
    );
    let thin = Tensor::zeros(g, &[3, 1, 13, 5], "x").unwrap();
    let err = max_pool2x2_forward(g, &mut s, &thin, &y, &a)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_pool2x2") && err.contains("[3, 1, 13, 5]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after refused ops");
}
