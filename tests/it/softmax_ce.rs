//! Softmax cross-entropy: GPU vs CPU (rows wider than the workgroup too),
//! CPU backward vs finite differences, finiteness at |x| = 100, NaN for an
//! out-of-range label, and shape refusal.
//!
//! Tolerances (logits in [-8, 8], so x - max in [-16, 0]): WGSL exp there
//! has <= 3 + 2*16 = 35 ulp (4.2e-6 relative) error; the row sum of K terms
//! adds K/256 + 8 roundings; log on s in [1, K] has 2^-21 absolute error
//! near 1 and 3 ulp elsewhere; the loss log(s) + m - x_l is <= ~25 in size
//! (ulp 1.9e-6). atol 1e-5, rtol 1e-5 for rows; the mean the same. The
//! gradient (p - onehot) * gscale inherits exp's and the division's error
//! (~5e-6 relative): atol 1e-6 * gscale, rtol 2e-5.

use crate::common::*;
use vae_vs_gan::gpu::DType;
use vae_vs_gan::ops::softmax_ce;
use vae_vs_gan::{Step, Tensor};

fn labels(n: usize, k: usize, seed: u64) -> Vec<u32> {
    uniform(n, 0.0, k as f32, seed)
        .iter()
        .map(|&v| (v as u32).min(k as u32 - 1))
        .collect()
}

struct Out {
    row: Tensor,
    loss: Tensor,
    grad: Tensor,
}

fn outputs(n: usize, k: usize) -> Out {
    let g = gpu();
    let o = Out {
        row: Tensor::zeros(g, &[n], "row").unwrap(),
        loss: Tensor::zeros(g, &[1], "loss").unwrap(),
        grad: Tensor::zeros(g, &[n, k], "grad").unwrap(),
    };
    for t in [&o.row, &o.loss, &o.grad] {
        t.poison(g);
    }
    o
}

#[test]
fn softmax_ce_matches_cpu() {
    let g = gpu();
    for (j, &(n, k)) in [(1usize, 1usize), (3, 10), (37, 13), (5, 300)]
        .iter()
        .enumerate()
    {
        let x = uniform(n * k, -8.0, 8.0, 400 + j as u64);
        let lab = labels(n, k, 410 + j as u64);
        let xt = Tensor::from_f32(g, &[n, k], &x, "logits").unwrap();
        let lt = Tensor::from_u32(g, &[n], &lab, "labels").unwrap();
        for (scale, with_grad) in [(1.0f32, true), (0.25, true), (1.0, false)] {
            let o = outputs(n, k);
            let mut s = Step::new("ce");
            let gr = if with_grad { Some(&o.grad) } else { None };
            softmax_ce::softmax_ce(g, &mut s, &xt, &lt, &o.row, &o.loss, gr, scale).unwrap();
            run(&s);
            let want = softmax_ce::softmax_ce_cpu(&x, &lab, k, scale as f64);
            let what = format!("softmax_ce {n}x{k} scale {scale}");
            assert_close(
                &format!("{what} rows"),
                &o.row.read_f32(g).unwrap(),
                &want.rows,
                1e-5,
                1e-5,
            );
            assert_close(
                &format!("{what} loss"),
                &o.loss.read_f32(g).unwrap(),
                &[want.loss as f32],
                1e-5,
                1e-5,
            );
            let got = o.grad.read_f32(g).unwrap();
            if with_grad {
                let gscale = scale as f64 / n as f64;
                assert_close(
                    &format!("{what} grad"),
                    &got,
                    &want.grad,
                    1e-6 * gscale,
                    2e-5,
                );
            } else {
                assert!(
                    got.iter().all(|v| v.is_nan()),
                    "grad untouched without grad"
                );
            }
        }
    }
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

/// Logits at +-100 (a 200-nat gap): finite everywhere, matching the f64
/// reference; the row loss reaches 200 (ulp 1.5e-5): atol 3e-5.
#[test]
fn softmax_ce_finite_at_extremes() {
    let g = gpu();
    let (n, k) = (3, 4);
    let x = vec![
        100.0f32, -100.0, 0.0, 99.0, //
        -100.0, -100.0, -100.0, -100.0, //
        100.0, 100.0, -100.0, 50.0,
    ];
    let lab = vec![1u32, 2, 2];
    let xt = Tensor::from_f32(g, &[n, k], &x, "logits").unwrap();
    let lt = Tensor::from_u32(g, &[n], &lab, "labels").unwrap();
    let o = outputs(n, k);
    let mut s = Step::new("ce extreme");
    softmax_ce::softmax_ce(g, &mut s, &xt, &lt, &o.row, &o.loss, Some(&o.grad), 1.0).unwrap();
    run(&s);
    let want = softmax_ce::softmax_ce_cpu(&x, &lab, k, 1.0);
    let rows = o.row.read_f32(g).unwrap();
    let grad = o.grad.read_f32(g).unwrap();
    assert!(rows.iter().chain(&grad).all(|v| v.is_finite()));
    assert_close("softmax_ce extreme rows", &rows, &want.rows, 3e-5, 1e-5);
    assert_close("softmax_ce extreme grad", &grad, &want.grad, 1e-6, 2e-5);
    assert_close(
        "softmax_ce extreme loss",
        &o.loss.read_f32(g).unwrap(),
        &[want.loss as f32],
        3e-5,
        1e-5,
    );
}

/// A label >= K cannot be refused at record time: that row's loss and
/// gradient are NaN (so the loss ring names the step); other rows are fine.
#[test]
fn softmax_ce_out_of_range_label_gives_nan() {
    let g = gpu();
    let (n, k) = (2, 3);
    let x = uniform(n * k, -1.0, 1.0, 430);
    let xt = Tensor::from_f32(g, &[n, k], &x, "logits").unwrap();
    let lt = Tensor::from_u32(g, &[n], &[1, 7], "labels").unwrap();
    let o = outputs(n, k);
    let mut s = Step::new("ce bad label");
    softmax_ce::softmax_ce(g, &mut s, &xt, &lt, &o.row, &o.loss, Some(&o.grad), 1.0).unwrap();
    run(&s);
    let rows = o.row.read_f32(g).unwrap();
    let grad = o.grad.read_f32(g).unwrap();
    assert!(rows[0].is_finite() && rows[1].is_nan(), "{rows:?}");
    assert!(grad[..k].iter().all(|v| v.is_finite()) && grad[k..].iter().all(|v| v.is_nan()));
    assert!(o.loss.read_f32(g).unwrap()[0].is_nan());
}

#[test]
fn softmax_ce_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "logits").unwrap();
    let lab = Tensor::new(g, &[4], DType::U32, "labels").unwrap();
    let lab3 = Tensor::new(g, &[3], DType::U32, "labels3").unwrap();
    let labf = Tensor::zeros(g, &[4], "labels_f32").unwrap();
    let o = outputs(4, 5);
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
