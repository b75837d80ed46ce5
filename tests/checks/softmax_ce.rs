//! Softmax cross-entropy: GPU vs CPU (rows wider than the workgroup too),
//! finiteness at |x| = 100, and NaN for an out-of-range label.
//!
//! Tolerances (logits in [-8, 8], so x - max in [-16, 0]): WGSL exp there
//! has <= 3 + 2*16 = 35 ulp (4.2e-6 relative) error; the row sum of K terms
//! adds K/256 + 8 roundings; log on s in [1, K] has 2^-21 absolute error
//! near 1 and 3 ulp elsewhere; the loss log(s) + m - x_l is <= ~25 in size
//! (ulp 1.9e-6). atol 1e-5, rtol 1e-5 for rows; the mean the same. The
//! gradient (p - onehot) * gscale inherits exp's and the division's error
//! (~5e-6 relative): atol 1e-6 * gscale, rtol 2e-5.

use super::*;
use vae_vs_gan::ops::softmax_ce;

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("softmax_ce matches cpu", matches_cpu(g).await);
    r.record("softmax_ce finite at extremes", finite_at_extremes(g).await);
    r.record(
        "softmax_ce out-of-range label gives NaN",
        out_of_range_label_gives_nan(g).await,
    );
}

/// `n` labels in `0..k`.
pub fn labels(n: usize, k: usize, seed: u64) -> Vec<u32> {
    uniform(n, 0.0, k as f32, seed)
        .iter()
        .map(|&v| (v as u32).min(k as u32 - 1))
        .collect()
}

/// The op's outputs: per-row losses, the scalar loss, the gradient.
pub struct Out {
    pub row: Tensor,
    pub loss: Tensor,
    pub grad: Tensor,
}

/// Poisoned outputs for `n` rows of `k` logits.
pub fn outputs(g: &Gpu, n: usize, k: usize) -> Result<Out, Failure> {
    Ok(Out {
        row: poisoned(g, &[n], "row")?,
        loss: poisoned(g, &[1], "loss")?,
        grad: poisoned(g, &[n, k], "grad")?,
    })
}

pub async fn matches_cpu(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (j, &(n, k)) in [(1usize, 1usize), (3, 10), (37, 13), (5, 300)]
        .iter()
        .enumerate()
    {
        let x = uniform(n * k, -8.0, 8.0, 400 + j as u64);
        let lab = labels(n, k, 410 + j as u64);
        let xt = tensor(g, &[n, k], &x, "logits")?;
        let lt = Tensor::from_u32(g, &[n], &lab, "labels")?;
        for (scale, with_grad) in [(1.0f32, true), (0.25, true), (1.0, false)] {
            let o = outputs(g, n, k)?;
            let mut s = Step::new("ce");
            let gr = if with_grad { Some(&o.grad) } else { None };
            softmax_ce::softmax_ce(g, &mut s, &xt, &lt, &o.row, &o.loss, gr, scale)?;
            run(g, &[&s])?;
            let want = softmax_ce::softmax_ce_cpu(&x, &lab, k, scale as f64);
            let what = format!("softmax_ce {n}x{k} scale {scale}");
            worst.close(
                &format!("{what} rows"),
                &read(g, &o.row).await?,
                &want.rows,
                1e-5,
                1e-5,
            )?;
            worst.close(
                &format!("{what} loss"),
                &read(g, &o.loss).await?,
                &[want.loss as f32],
                1e-5,
                1e-5,
            )?;
            let got = read(g, &o.grad).await?;
            if with_grad {
                let gscale = scale as f64 / n as f64;
                worst.close(
                    &format!("{what} grad"),
                    &got,
                    &want.grad,
                    1e-6 * gscale,
                    2e-5,
                )?;
            } else {
                ensure(got.iter().all(|v| v.is_nan()), || {
                    format!("{what}: grad untouched without grad")
                })?;
            }
        }
    }
    worst.done()
}

/// Logits at +-100 (a 200-nat gap): finite everywhere, matching the f64
/// reference; the row loss reaches 200 (ulp 1.5e-5): atol 3e-5.
pub async fn finite_at_extremes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, k) = (3, 4);
    let x = vec![
        100.0f32, -100.0, 0.0, 99.0, //
        -100.0, -100.0, -100.0, -100.0, //
        100.0, 100.0, -100.0, 50.0,
    ];
    let lab = vec![1u32, 2, 2];
    let xt = tensor(g, &[n, k], &x, "logits")?;
    let lt = Tensor::from_u32(g, &[n], &lab, "labels")?;
    let o = outputs(g, n, k)?;
    let mut s = Step::new("ce extreme");
    softmax_ce::softmax_ce(g, &mut s, &xt, &lt, &o.row, &o.loss, Some(&o.grad), 1.0)?;
    run(g, &[&s])?;
    let want = softmax_ce::softmax_ce_cpu(&x, &lab, k, 1.0);
    let rows = read(g, &o.row).await?;
    let grad = read(g, &o.grad).await?;
    ensure(rows.iter().chain(&grad).all(|v| v.is_finite()), || {
        format!("softmax_ce extreme: {rows:?} {grad:?}")
    })?;
    worst.close("softmax_ce extreme rows", &rows, &want.rows, 3e-5, 1e-5)?;
    worst.close("softmax_ce extreme grad", &grad, &want.grad, 1e-6, 2e-5)?;
    worst.close(
        "softmax_ce extreme loss",
        &read(g, &o.loss).await?,
        &[want.loss as f32],
        3e-5,
        1e-5,
    )?;
    worst.done()
}

/// A label >= K cannot be refused at record time: that row's loss and
/// gradient are NaN (so the loss ring names the step); other rows are fine.
pub async fn out_of_range_label_gives_nan(g: &Gpu) -> Outcome {
    let (n, k) = (2, 3);
    let x = uniform(n * k, -1.0, 1.0, 430);
    let xt = tensor(g, &[n, k], &x, "logits")?;
    let lt = Tensor::from_u32(g, &[n], &[1, 7], "labels")?;
    let o = outputs(g, n, k)?;
    let mut s = Step::new("ce bad label");
    softmax_ce::softmax_ce(g, &mut s, &xt, &lt, &o.row, &o.loss, Some(&o.grad), 1.0)?;
    run(g, &[&s])?;
    let rows = read(g, &o.row).await?;
    let grad = read(g, &o.grad).await?;
    ensure(rows[0].is_finite() && rows[1].is_nan(), || {
        format!("rows {rows:?}: want finite, NaN")
    })?;
    ensure(
        grad[..k].iter().all(|v| v.is_finite()) && grad[k..].iter().all(|v| v.is_nan()),
        || format!("grad {grad:?}: want the first row finite, the second NaN"),
    )?;
    let loss = read(g, &o.loss).await?;
    ensure(loss[0].is_nan(), || format!("loss {loss:?}: want NaN"))?;
    Ok(format!("row 0 finite ({}), row 1 NaN, loss NaN", rows[0]))
}
