//! The GAN's target losses (least squares, hinge, the critic's linear
//! loss; `vae_vs_gan::ops::target_loss`): GPU vs their f64 CPU references
//! on random logits and targets at odd shapes, the row losses, the
//! gradient and the returned factor.
//!
//! Tolerances (WGSL rounds `+ - *` correctly, u = 2^-24; x in [-8, 8],
//! t in [0, 1], so |x - t| <= 9): each element's loss has an error `e` of
//! its own, least squares `0.5 (x - t)^2` 4 u of at most 40.5 (1e-5),
//! hinge `1 - s x` u of at most 9 (6e-7), linear `-s x` exact for hard
//! targets (soft ones: u of 8). A row's fixed-order sum of F of them adds
//! at most (8 + F/256) <= 12 roundings of partial sums no larger than F
//! times the largest |l|: atol per row `F (e + 12 u lmax)`, lmax 40.5, 9,
//! 8. The gradient is `l'(x, t)` (least squares one rounding, the others
//! exact) times the f32 factor (the reference's is f64: one more
//! rounding): rtol 1e-6, no atol. Hinge logits are kept 1e-3 away from the
//! kink `s x = 1`, where either side is right.

use super::*;
use vae_vs_gan::ops::hinge::HINGE;
use vae_vs_gan::ops::least_squares::LEAST_SQUARES;
use vae_vs_gan::ops::linear_loss::LINEAR_LOSS;
use vae_vs_gan::ops::target_loss::TargetLoss;

const SHAPES: [&[usize]; 4] = [&[1, 1], &[7, 1], &[3, 5, 13], &[33, 784]];
const U: f64 = 1.0 / 16_777_216.0;

/// One loss with its per-element error and largest |loss| on these inputs.
pub struct Loss {
    pub loss: TargetLoss,
    elem_err: f64,
    lmax: f64,
}

pub const LOSSES: [Loss; 3] = [
    Loss {
        loss: LEAST_SQUARES,
        elem_err: 4.0 * U * 40.5,
        lmax: 40.5,
    },
    Loss {
        loss: HINGE,
        elem_err: U * 9.0,
        lmax: 9.0,
    },
    Loss {
        loss: LINEAR_LOSS,
        elem_err: U * 8.0,
        lmax: 8.0,
    },
];

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    for loss in &LOSSES {
        r.record(
            &format!("{} matches cpu", loss.loss.op),
            matches_cpu(g, loss).await,
        );
    }
}

/// Logits in [-8, 8] and targets: hard (0 or 1, the GAN's) or soft in
/// [0, 1]; hinge logits moved off the kink.
fn inputs(loss: &Loss, n: usize, hard: bool, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut x = uniform(n, -8.0, 8.0, seed);
    let t: Vec<f32> = uniform(n, 0.0, 1.0, seed + 1)
        .into_iter()
        .map(|v| if hard { v.round() } else { v })
        .collect();
    if loss.loss.op == HINGE.op {
        for (x, t) in x.iter_mut().zip(&t) {
            let s = 2.0 * t - 1.0;
            if (1.0 - s * *x).abs() < 1e-3 {
                *x += 0.01;
            }
        }
    }
    (x, t)
}

pub async fn matches_cpu(g: &Gpu, loss: &Loss) -> Outcome {
    let mut worst = Worst::default();
    for (j, shape) in SHAPES.iter().enumerate() {
        for hard in [true, false] {
            let n: usize = shape.iter().product();
            let (rows, f) = (shape[0], n / shape[0]);
            let (x, t) = inputs(loss, n, hard, 400 + 2 * j as u64);
            let xt = tensor(g, shape, &x, "x")?;
            let tt = tensor(g, shape, &t, "t")?;
            for scale in [1.0f32, 2.0, -1.0] {
                let row = poisoned(g, &[rows], "row")?;
                let grad = poisoned(g, shape, "grad")?;
                let mut s = Step::new(loss.loss.op);
                let factor = loss.loss.rows(g, &mut s, &xt, &tt, &row, &grad, scale)?;
                run(g, &[&s])?;
                let what = format!("{} {shape:?} hard {hard} scale {scale}", loss.loss.op);
                let want = loss.loss.cpu(&x, &t, f, scale as f64);
                let gscale = scale as f64 / n as f64;
                ensure(factor == gscale as f32, || {
                    format!("{what}: factor {factor}, want {gscale}")
                })?;
                let atol_row = f as f64 * (loss.elem_err + 12.0 * U * loss.lmax);
                let got_rows = read(g, &row).await?;
                worst.close(
                    &format!("{what} rows"),
                    &got_rows,
                    &want.rows,
                    atol_row,
                    0.0,
                )?;
                let got_grad = read(g, &grad).await?;
                worst.close(&format!("{what} grad"), &got_grad, &want.grad, 0.0, 1e-6)?;
                // the scalar the step's end kernel forms from the rows
                let sum: f64 = got_rows.iter().map(|&v| v as f64).sum();
                let tol = gscale.abs() * rows as f64 * atol_row;
                worst.close_f64(
                    &format!("{what} loss"),
                    &[sum * gscale],
                    &[want.loss],
                    tol,
                    0.0,
                )?;
            }
        }
    }
    worst.done()
}
