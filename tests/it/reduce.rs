//! Deterministic reductions: whole-tensor sum/mean and per-row sums, GPU vs
//! the f64 CPU sum, bit-for-bit repeatability, per-step means of RNG draws
//! through the loss ring, and shape refusal.
//!
//! Tolerance: a fixed-order f32 sum rounds each element at most
//! `k = reduce::rounding_depth(n)` times (sequential part, tree depth 8, per
//! pass, plus the scale), so `|gpu - exact| <= k * 2^-24 * sum|x|`
//! (Higham's bound for recursive summation, gamma_k ~ k u). That is the
//! atol used, computed from the data; it grows with the reduction length.

use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::reduce::{self, rounding_depth, SumPlan};
use vae_vs_gan::ops::rng::{self, Philox};
use vae_vs_gan::{Step, Tensor};

const U: f64 = 1.0 / 16_777_216.0;

fn sum_tol(x: &[f32]) -> f64 {
    let abs: f64 = x.iter().map(|v| v.abs() as f64).sum();
    rounding_depth(x.len()) as f64 * U * abs + 1e-30
}

#[test]
fn reduce_sum_and_mean_match_cpu() {
    let g = gpu();
    // 1, around the workgroup (255, 257), around the chunk (4096, 4097),
    // 3x5x13x13, and two passes with a ragged last chunk.
    for (j, &n) in [1usize, 255, 257, 4096, 4097, 3 * 5 * 13 * 13, 100_003]
        .iter()
        .enumerate()
    {
        let x = uniform(n, -1.0, 1.0, 10 + j as u64);
        let xt = Tensor::from_f32(g, &[n], &x, "x").unwrap();
        let st = Tensor::zeros(g, &[1], "sum").unwrap();
        let mt = Tensor::zeros(g, &[1], "mean").unwrap();
        st.poison(g);
        mt.poison(g);
        let plan = SumPlan::new(g, n).unwrap();
        let mut s = Step::new("sum");
        plan.sum(g, &mut s, &xt, &st).unwrap();
        plan.mean(g, &mut s, &xt, &mt).unwrap();
        run(&s);
        let tol = sum_tol(&x);
        let want = reduce::sum_cpu(&x);
        assert_close(
            &format!("sum n={n}"),
            &st.read_f32(g).unwrap(),
            &[want as f32],
            tol,
            0.0,
        );
        assert_close(
            &format!("mean n={n}"),
            &mt.read_f32(g).unwrap(),
            &[reduce::mean_cpu(&x) as f32],
            tol / n as f64 + 2.0 * U * (want.abs() / n as f64),
            0.0,
        );
    }
}

#[test]
fn reduce_row_sums_match_cpu() {
    let g = gpu();
    let shapes: [&[usize]; 5] = [
        &[3, 5, 13, 13],
        &[7, 1],
        &[1, 1000],
        &[300, 10],
        &[2, 70_001],
    ];
    for (j, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let (rows, f) = (shape[0], n / shape[0]);
        let x = uniform(n, -1.0, 1.0, 20 + j as u64);
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        for scale in [1.0f32, 1.0 / f as f32] {
            let out = Tensor::zeros(g, &[rows], "rows").unwrap();
            out.poison(g);
            let mut s = Step::new("rows");
            reduce::row_sums(g, &mut s, &xt, &out, scale).unwrap();
            run(&s);
            let got = out.read_f32(g).unwrap();
            let want = reduce::row_sums_cpu(&x, f, scale as f64);
            for r in 0..rows {
                let row = &x[r * f..(r + 1) * f];
                // one pass of chunk f: depth(f) roundings (f <= CHUNK or not,
                // the single-chunk depth is f/256 + 8 + 1)
                let abs: f64 = row.iter().map(|v| v.abs() as f64).sum();
                let k = (f.div_ceil(256) + 9) as f64;
                let tol = scale as f64 * k * U * abs + 1e-30;
                assert_close(
                    &format!("row_sums {shape:?} scale {scale} row {r}"),
                    &got[r..r + 1],
                    &want[r..r + 1],
                    tol,
                    2.0 * U,
                );
            }
        }
    }
}

/// Same input, same bits: the sum recorded twice, run in one submit and in
/// separate submits, and from a second plan.
#[test]
fn reduce_sum_is_deterministic() {
    let g = gpu();
    let n = 100_003;
    let x = uniform(n, -1.0, 1.0, 30);
    let xt = Tensor::from_f32(g, &[n], &x, "x").unwrap();
    let mut bits = Vec::new();
    for _ in 0..2 {
        let plan = SumPlan::new(g, n).unwrap();
        let a = Tensor::zeros(g, &[1], "a").unwrap();
        let b = Tensor::zeros(g, &[1], "b").unwrap();
        let mut s = Step::new("sum");
        plan.sum(g, &mut s, &xt, &a).unwrap();
        plan.sum(g, &mut s, &xt, &b).unwrap();
        g.run(&[&s, &s]).unwrap();
        bits.push(a.read_f32(g).unwrap()[0].to_bits());
        bits.push(b.read_f32(g).unwrap()[0].to_bits());
        run(&s);
        bits.push(a.read_f32(g).unwrap()[0].to_bits());
    }
    assert!(bits.windows(2).all(|w| w[0] == w[1]), "{bits:08x?}");
}

/// A step that draws uniforms, writes their mean into the loss ring and
/// advances: three steps in one submit give the same ring as three submits,
/// each row close to the CPU mean of that step's draws, all distinct.
#[test]
fn reduce_mean_of_rng_draws_per_step_in_one_submit() {
    let g = gpu();
    let n = 5000; // two passes
    let r = Philox::new(7, 9);
    let go = |one: bool| {
        let state = StepState::new(g, 1, 4, 0).unwrap();
        state.ring.poison(g);
        let u = Tensor::zeros(g, &[n], "u").unwrap();
        let m = Tensor::zeros(g, &[1], "m").unwrap();
        let plan = SumPlan::new(g, n).unwrap();
        let mut s = Step::new("draw+mean");
        rng::fill_uniform(g, &mut s, r, &state.counters, &u).unwrap();
        plan.mean(g, &mut s, &u, &m).unwrap();
        state.record_loss(g, &mut s, &m, 0).unwrap();
        state.record_advance(g, &mut s).unwrap();
        if one {
            g.run(&[&s, &s, &s]).unwrap();
        } else {
            for _ in 0..3 {
                g.run(&[&s]).unwrap();
            }
        }
        state
            .read_losses(g, 0)
            .unwrap()
            .iter()
            .map(|l| l.values[0])
            .collect::<Vec<f32>>()
    };
    let a = go(true);
    let b = go(false);
    assert_eq!(a.len(), 3);
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    for (k, &v) in a.iter().enumerate() {
        let draws = r.uniform_cpu(k as u32, n);
        let tol = sum_tol(&draws) / n as f64 + 2.0 * U;
        assert_close(
            &format!("mean of step {k}"),
            &[v],
            &[reduce::mean_cpu(&draws) as f32],
            tol,
            0.0,
        );
    }
    assert!(a[0] != a[1] && a[1] != a[2]);
}

#[test]
fn reduce_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let out2 = Tensor::zeros(g, &[2], "out").unwrap();
    let mut s = Step::new("bad");
    let plan = SumPlan::new(g, 20).unwrap();
    let e = plan.sum(g, &mut s, &x, &out2).unwrap_err().to_string();
    assert!(
        e.contains("sum") && e.contains("[1]") && e.contains("[2]"),
        "{e}"
    );
    let wrong_n = SumPlan::new(g, 21).unwrap();
    let out1 = Tensor::zeros(g, &[1], "out1").unwrap();
    assert!(wrong_n.sum(g, &mut s, &x, &out1).is_err());
    let e = reduce::row_sums(g, &mut s, &x, &out2, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row_sums") && e.contains("[4]") && e.contains("[2]"),
        "{e}"
    );
    assert!(SumPlan::new(g, 0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}

/// More rows than one grid dimension holds (65,535): the grid spills into y
/// (65,535 x 2 workgroups, 61,069 past the end): every row written (output
/// poisoned) and right; the extra workgroups exit before touching anything.
#[test]
fn reduce_row_sums_past_65535_rows() {
    let g = gpu();
    let (rows, f) = (70_001usize, 2usize);
    let x = uniform(rows * f, -1.0, 1.0, 60);
    let xt = Tensor::from_f32(g, &[rows, f], &x, "x").unwrap();
    let view = Tensor::zeros(g, &[rows], "rows exact").unwrap();
    view.poison(g);
    let mut s = Step::new("rows");
    reduce::row_sums(g, &mut s, &xt, &view, 1.0).unwrap();
    run(&s);
    let want = reduce::row_sums_cpu(&x, f, 1.0);
    // two elements: one add, one tree step of exact zeros: 2 ulp of |a|+|b|
    let got = view.read_f32(g).unwrap();
    assert_close("row_sums 70001x2", &got, &want, 1e-7, 2.0 * U);
}
