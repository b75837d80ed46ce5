//! Deterministic reductions: whole-tensor sum/mean and per-row sums, GPU vs
//! the f64 CPU sum, bit-for-bit repeatability, and per-step means of RNG
//! draws through the loss ring.
//!
//! Tolerance: a fixed-order f32 sum rounds each element at most
//! `k = reduce::rounding_depth(n)` times (sequential part, tree depth 8, per
//! pass, plus the scale), so `|gpu - exact| <= k * 2^-24 * sum|x|`
//! (Higham's bound for recursive summation, gamma_k ~ k u). That is the
//! atol used, computed from the data; it grows with the reduction length.

use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::reduce::{self, rounding_depth, SumPlan};
use vae_vs_gan::ops::rng::{self as philox, Philox};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("reduce sum and mean", sum_and_mean(g).await);
    r.record("reduce row sums", row_sums(g).await);
    r.record("reduce sum deterministic", deterministic(g).await);
    r.record(
        "reduce mean of rng draws per step",
        mean_of_rng_draws_per_step(g).await,
    );
    r.record(
        "reduce row sums past 65535 rows",
        row_sums_past_65535_rows(g).await,
    );
}

fn sum_tol(x: &[f32]) -> f64 {
    let abs: f64 = x.iter().map(|v| v.abs() as f64).sum();
    rounding_depth(x.len()) as f64 * U * abs + 1e-30
}

pub async fn sum_and_mean(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    // 1, around the workgroup (255, 257), around the chunk (4096, 4097),
    // 3x5x13x13, and two passes with a ragged last chunk.
    for (j, &n) in [1usize, 255, 257, 4096, 4097, 3 * 5 * 13 * 13, 100_003]
        .iter()
        .enumerate()
    {
        let x = uniform(n, -1.0, 1.0, 10 + j as u64);
        let xt = tensor(g, &[n], &x, "x")?;
        let st = poisoned(g, &[1], "sum")?;
        let mt = poisoned(g, &[1], "mean")?;
        let plan = SumPlan::new(g, n)?;
        let mut s = Step::new("sum");
        plan.sum(g, &mut s, &xt, &st)?;
        plan.mean(g, &mut s, &xt, &mt)?;
        run(g, &[&s])?;
        let tol = sum_tol(&x);
        let want = reduce::sum_cpu(&x);
        worst.close(
            &format!("sum n={n}"),
            &read(g, &st).await?,
            &[want as f32],
            tol,
            0.0,
        )?;
        worst.close(
            &format!("mean n={n}"),
            &read(g, &mt).await?,
            &[reduce::mean_cpu(&x) as f32],
            tol / n as f64 + 2.0 * U * (want.abs() / n as f64),
            0.0,
        )?;
    }
    worst.done()
}

pub async fn row_sums(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
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
        let xt = tensor(g, shape, &x, "x")?;
        for scale in [1.0f32, 1.0 / f as f32] {
            let out = poisoned(g, &[rows], "rows")?;
            let mut s = Step::new("rows");
            reduce::row_sums(g, &mut s, &xt, &out, scale)?;
            run(g, &[&s])?;
            let got = read(g, &out).await?;
            let want = reduce::row_sums_cpu(&x, f, scale as f64);
            for r in 0..rows {
                let row = &x[r * f..(r + 1) * f];
                // one pass of chunk f: depth(f) roundings (f <= CHUNK or not,
                // the single-chunk depth is f/256 + 8 + 1)
                let abs: f64 = row.iter().map(|v| v.abs() as f64).sum();
                let k = (f.div_ceil(256) + 9) as f64;
                let tol = scale as f64 * k * U * abs + 1e-30;
                worst.close(
                    &format!("row_sums {shape:?} scale {scale} row {r}"),
                    &got[r..r + 1],
                    &want[r..r + 1],
                    tol,
                    2.0 * U,
                )?;
            }
        }
    }
    worst.done()
}

/// Same input, same bits: the sum recorded twice, run in one submit and in
/// separate submits, and from a second plan.
pub async fn deterministic(g: &Gpu) -> Outcome {
    let n = 100_003;
    let x = uniform(n, -1.0, 1.0, 30);
    let xt = tensor(g, &[n], &x, "x")?;
    let mut bits = Vec::new();
    for _ in 0..2 {
        let plan = SumPlan::new(g, n)?;
        let a = Tensor::zeros(g, &[1], "a")?;
        let b = Tensor::zeros(g, &[1], "b")?;
        let mut s = Step::new("sum");
        plan.sum(g, &mut s, &xt, &a)?;
        plan.sum(g, &mut s, &xt, &b)?;
        run(g, &[&s, &s])?;
        bits.push(read(g, &a).await?[0].to_bits());
        bits.push(read(g, &b).await?[0].to_bits());
        run(g, &[&s])?;
        bits.push(read(g, &a).await?[0].to_bits());
    }
    ensure(bits.windows(2).all(|w| w[0] == w[1]), || {
        format!("{bits:08x?}")
    })?;
    Ok(format!("{} sums, all {:08x}", bits.len(), bits[0]))
}

/// Three steps of "draw uniforms, write their mean into the loss ring,
/// advance", in one submit (`one`) or three; the ring's rows.
async fn means_of_draws(g: &Gpu, r: Philox, n: usize, one: bool) -> Result<Vec<f32>, Failure> {
    let state = StepState::new(g, 1, 4, 0)?;
    state.ring.poison(g);
    let u = Tensor::zeros(g, &[n], "u")?;
    let m = Tensor::zeros(g, &[1], "m")?;
    let plan = SumPlan::new(g, n)?;
    let mut s = Step::new("draw+mean");
    philox::fill_uniform(g, &mut s, r, &state.counters, &u)?;
    plan.mean(g, &mut s, &u, &m)?;
    state.record_loss(g, &mut s, &m, 0)?;
    state.record_advance(g, &mut s)?;
    if one {
        run(g, &[&s, &s, &s])?;
    } else {
        for _ in 0..3 {
            run(g, &[&s])?;
        }
    }
    Ok(state
        .snapshot_async(g)
        .await?
        .losses(0)?
        .iter()
        .map(|l| l.values[0])
        .collect())
}

/// A step that draws uniforms, writes their mean into the loss ring and
/// advances: three steps in one submit give the same ring as three submits,
/// each row close to the CPU mean of that step's draws, all distinct.
pub async fn mean_of_rng_draws_per_step(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let n = 5000; // two passes
    let r = Philox::new(7, 9);
    let a = means_of_draws(g, r, n, true).await?;
    let b = means_of_draws(g, r, n, false).await?;
    ensure(a.len() == 3, || format!("{} ring rows, want 3", a.len()))?;
    worst.equal("means: one submit vs three", &bits(&a), &bits(&b))?;
    for (k, &v) in a.iter().enumerate() {
        let draws = r.uniform_cpu(k as u32, n);
        let tol = sum_tol(&draws) / n as f64 + 2.0 * U;
        worst.close(
            &format!("mean of step {k}"),
            &[v],
            &[reduce::mean_cpu(&draws) as f32],
            tol,
            0.0,
        )?;
    }
    ensure(a[0] != a[1] && a[1] != a[2], || {
        format!("successive steps' means not distinct: {a:?}")
    })?;
    worst.done()
}

/// More rows than one grid dimension holds (65,535): the grid spills into y
/// (65,535 x 2 workgroups, 61,069 past the end): every row written (output
/// poisoned) and right; the extra workgroups exit before touching anything.
pub async fn row_sums_past_65535_rows(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (rows, f) = (70_001usize, 2usize);
    let x = uniform(rows * f, -1.0, 1.0, 60);
    let xt = tensor(g, &[rows, f], &x, "x")?;
    let view = poisoned(g, &[rows], "rows exact")?;
    let mut s = Step::new("rows");
    reduce::row_sums(g, &mut s, &xt, &view, 1.0)?;
    run(g, &[&s])?;
    let want = reduce::row_sums_cpu(&x, f, 1.0);
    // two elements: one add, one tree step of exact zeros: 2 ulp of |a|+|b|
    let got = read(g, &view).await?;
    worst.close("row_sums 70001x2", &got, &want, 1e-7, 2.0 * U)?;
    worst.done()
}
