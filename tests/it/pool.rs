//! Max pools (global and 2x2 stride 2): GPU vs CPU reference, forward
//! (values and argmax) and backward; tie-breaking; CPU backward vs central
//! finite differences in f64; shape errors at record time.
//!
//! Tolerance: none. A max copies one input, the argmax is an integer and
//! the backward copies `dy` or writes 0, with no arithmetic: GPU and CPU
//! must agree bit for bit (atol 0, rtol 0).

use crate::common::*;
use vae_vs_gan::ops::pool::{
    global_max_pool_backward, global_max_pool_cpu, global_max_pool_forward, max_pool2x2_backward,
    max_pool2x2_cpu, max_pool2x2_forward, max_pool2x2_out_shape, max_pool_backward_cpu,
};
use vae_vs_gan::{DType, Gpu, Step, Tensor};

const SHAPES: [[usize; 4]; 4] = [[3, 13, 13, 5], [2, 14, 14, 33], [1, 2, 3, 1], [2, 7, 5, 3]];

fn u32_tensor(g: &Gpu, shape: &[usize], label: &str) -> Tensor {
    let t = Tensor::new(g, shape, DType::U32, label).unwrap();
    t.poison(g);
    t
}

fn gmp_forward(g: &Gpu, d: [usize; 4], x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let xt = Tensor::from_f32(g, &d, x, "x").unwrap();
    let yt = Tensor::zeros(g, &[d[0], d[3]], "y").unwrap();
    yt.poison(g);
    let at = u32_tensor(g, &[d[0], d[3]], "argmax");
    let mut s = Step::new("gmp");
    global_max_pool_forward(g, &mut s, &xt, &yt, &at).unwrap();
    run(&s);
    (yt.read_f32(g).unwrap(), at.read_u32(g).unwrap())
}

fn mp_forward(g: &Gpu, d: [usize; 4], x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let out = max_pool2x2_out_shape(&d).unwrap();
    let xt = Tensor::from_f32(g, &d, x, "x").unwrap();
    let yt = Tensor::zeros(g, &out, "y").unwrap();
    yt.poison(g);
    let at = u32_tensor(g, &out, "argmax");
    let mut s = Step::new("mp");
    max_pool2x2_forward(g, &mut s, &xt, &yt, &at).unwrap();
    run(&s);
    (yt.read_f32(g).unwrap(), at.read_u32(g).unwrap())
}

#[test]
fn global_max_pool_forward_matches_cpu() {
    let g = gpu();
    for (k, d) in SHAPES.iter().enumerate() {
        let x = uniform(d.iter().product(), -3.0, 3.0, 100 + k as u64);
        let (y, arg) = gmp_forward(g, *d, &x);
        let (wy, warg) = global_max_pool_cpu(&x, *d);
        assert_close(&format!("global_max_pool {d:?} y"), &y, &wy, 0.0, 0.0);
        assert_eq!(arg, warg, "global_max_pool {d:?} argmax");
    }
}

#[test]
fn max_pool2x2_forward_matches_cpu() {
    let g = gpu();
    for (k, d) in SHAPES.iter().enumerate() {
        let x = uniform(d.iter().product(), -3.0, 3.0, 200 + k as u64);
        let (y, arg) = mp_forward(g, *d, &x);
        let (wy, warg) = max_pool2x2_cpu(&x, *d);
        assert_close(&format!("max_pool2x2 {d:?} y"), &y, &wy, 0.0, 0.0);
        assert_eq!(arg, warg, "max_pool2x2 {d:?} argmax");
    }
}

/// Ties go to the first element in row-major order, on GPU and CPU.
#[test]
fn max_pool_ties_pick_first_in_row_major_order() {
    let g = gpu();
    // Quantised values: many ties inside every window.
    let d = [3, 13, 13, 5];
    let n: usize = d.iter().product();
    let x: Vec<f32> = uniform(n, 0.0, 3.0, 300)
        .iter()
        .map(|v| v.floor())
        .collect();
    let (y, arg) = gmp_forward(g, d, &x);
    let (wy, warg) = global_max_pool_cpu(&x, d);
    assert_eq!((y, arg), (wy, warg.clone()), "global_max_pool ties");
    let (y, arg) = mp_forward(g, d, &x);
    let (wy, warg2) = max_pool2x2_cpu(&x, d);
    assert_eq!((y, arg), (wy, warg2), "max_pool2x2 ties");

    // All equal: the argmax is the first element of each window / image.
    let x = vec![1.5f32; n];
    let (_, arg) = gmp_forward(g, d, &x);
    for b in 0..3 {
        for c in 0..5 {
            assert_eq!(
                arg[b * 5 + c] as usize,
                b * 13 * 13 * 5 + c,
                "global_max_pool ties"
            );
        }
    }
    let (_, arg) = mp_forward(g, d, &x);
    for (o, &a) in arg.iter().enumerate() {
        let c = o % 5;
        let ow = (o / 5) % 6;
        let oh = (o / 30) % 6;
        let b = o / 180;
        assert_eq!(
            a as usize,
            ((b * 13 + 2 * oh) * 13 + 2 * ow) * 5 + c,
            "max_pool2x2 ties"
        );
    }
}

#[test]
fn global_max_pool_backward_matches_cpu() {
    let g = gpu();
    for (k, d) in SHAPES.iter().enumerate() {
        let n: usize = d.iter().product();
        let x = uniform(n, -3.0, 3.0, 400 + k as u64);
        let (_, arg) = global_max_pool_cpu(&x, *d);
        let dy = uniform(d[0] * d[3], -1.0, 1.0, 450 + k as u64);
        let at = Tensor::from_u32(g, &[d[0], d[3]], &arg, "argmax").unwrap();
        let dyt = Tensor::from_f32(g, &[d[0], d[3]], &dy, "dy").unwrap();
        let dxt = Tensor::zeros(g, d, "dx").unwrap();
        dxt.poison(g);
        let mut s = Step::new("gmp_bwd");
        global_max_pool_backward(g, &mut s, &at, &dyt, &dxt).unwrap();
        run(&s);
        assert_close(
            &format!("global_max_pool_backward {d:?}"),
            &dxt.read_f32(g).unwrap(),
            &max_pool_backward_cpu(&arg, &dy, n),
            0.0,
            0.0,
        );
    }
}

#[test]
fn max_pool2x2_backward_matches_cpu() {
    let g = gpu();
    for (k, d) in SHAPES.iter().enumerate() {
        let n: usize = d.iter().product();
        let out = max_pool2x2_out_shape(d).unwrap();
        let x = uniform(n, -3.0, 3.0, 500 + k as u64);
        let (_, arg) = max_pool2x2_cpu(&x, *d);
        let dy = uniform(out.iter().product(), -1.0, 1.0, 550 + k as u64);
        let at = Tensor::from_u32(g, &out, &arg, "argmax").unwrap();
        let dyt = Tensor::from_f32(g, &out, &dy, "dy").unwrap();
        let dxt = Tensor::zeros(g, d, "dx").unwrap();
        dxt.poison(g);
        let mut s = Step::new("mp_bwd");
        max_pool2x2_backward(g, &mut s, &at, &dyt, &dxt).unwrap();
        run(&s);
        assert_close(
            &format!("max_pool2x2_backward {d:?}"),
            &dxt.read_f32(g).unwrap(),
            &max_pool_backward_cpu(&arg, &dy, n),
            0.0,
            0.0,
        );
    }
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
    let a = u32_tensor(g, &[3, 6, 6, 5], "argmax");
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
    let ag = u32_tensor(g, &[3, 5], "argmax");
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
