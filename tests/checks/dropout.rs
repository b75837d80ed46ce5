//! Inverted dropout: GPU vs the CPU twin bit for bit (same seed, stream and
//! step counter give the same mask; `x * mask` rounds once on both sides, so
//! no tolerance is needed), the backward applies the forward's mask, eval is
//! the identity, and masks change with the step.

use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::dropout::{self, keep_scale};
use vae_vs_gan::ops::rng::Philox;

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("dropout forward", forward(g).await);
    r.record(
        "dropout backward applies the forward mask",
        backward(g).await,
    );
    r.record("dropout eval is identity", eval_identity(g).await);
}

const SHAPES: [&[usize]; 3] = [&[1], &[1001], &[3, 5, 13, 13]];

pub async fn forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, 3)?;
    for (j, shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        for (k, p) in [0.0f32, 0.25, 0.5].into_iter().enumerate() {
            let r = Philox::new(1234 + j as u64, 5 + k as u32);
            let x = uniform(n, -2.0, 2.0, 40 + (j * 3 + k) as u64);
            let xt = tensor(g, shape, &x, "x")?;
            let mt = poisoned(g, shape, "mask")?;
            let yt = poisoned(g, shape, "y")?;
            let mut s = Step::new("dropout");
            dropout::dropout_forward(g, &mut s, r, &state.counters, p, &xt, &mt, &yt)?;
            run(g, &[&s])?;
            let mask = dropout::dropout_mask_cpu(r, 3, n, p);
            let mg = read(g, &mt).await?;
            worst.equal(&format!("mask {shape:?} p={p}"), &bits(&mg), &bits(&mask))?;
            worst.equal(
                &format!("y {shape:?} p={p}"),
                &bits(&read(g, &yt).await?),
                &bits(&dropout::dropout_forward_cpu(&x, &mask)),
            )?;
            let kept = mg.iter().filter(|&&m| m != 0.0).count();
            ensure(mg.iter().all(|&m| m == 0.0 || m == keep_scale(p)), || {
                format!(
                    "mask {shape:?} p={p}: values other than 0 and {}",
                    keep_scale(p)
                )
            })?;
            if n > 1000 {
                // binomial: sd of the kept fraction <= 0.5/sqrt(1001) = 0.016
                let frac = kept as f64 / n as f64;
                ensure((frac - (1.0 - p as f64)).abs() < 0.06, || {
                    format!("kept {frac} at p={p}")
                })?;
            }
            if p == 0.0 {
                ensure(kept == n, || {
                    format!("p = 0 keeps everything: kept {kept} of {n}")
                })?;
            }
        }
    }
    worst.done()
}

/// Forward then backward on the GPU, the backward reading the forward's
/// mask: dx equals the CPU `dy * mask` bit for bit and is zero exactly where
/// the forward dropped.
pub async fn backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, 0)?;
    let shape = [3, 5, 13, 13];
    let n: usize = shape.iter().product();
    let r = Philox::new(77, 1);
    let p = 0.3;
    let x = away_from_zero(n, 0.01, 50);
    let dy = uniform(n, -1.0, 1.0, 51);
    let xt = tensor(g, &shape, &x, "x")?;
    let dyt = tensor(g, &shape, &dy, "dy")?;
    let mt = Tensor::zeros(g, &shape, "mask")?;
    let yt = Tensor::zeros(g, &shape, "y")?;
    let dxt = poisoned(g, &shape, "dx")?;
    let mut s = Step::new("dropout fwd+bwd");
    dropout::dropout_forward(g, &mut s, r, &state.counters, p, &xt, &mt, &yt)?;
    dropout::dropout_backward(g, &mut s, &mt, &dyt, &dxt)?;
    state.record_advance(g, &mut s)?;
    run(g, &[&s])?;
    let mask = dropout::dropout_mask_cpu(r, 0, n, p);
    let dx = read(g, &dxt).await?;
    worst.equal(
        "dropout dx",
        &bits(&dx),
        &bits(&dropout::dropout_backward_cpu(&mask, &dy)),
    )?;
    let y = read(g, &yt).await?;
    for i in 0..n {
        ensure((y[i] == 0.0) == (dx[i] == 0.0 || dy[i] == 0.0), || {
            format!("element {i}: y {}, dx {}, dy {}", y[i], dx[i], dy[i])
        })?;
    }
    // The next step draws another mask.
    run(g, &[&s])?;
    let m2 = read(g, &mt).await?;
    worst.equal(
        "dropout mask at step 1",
        &bits(&m2),
        &bits(&dropout::dropout_mask_cpu(r, 1, n, p)),
    )?;
    ensure(bits(&m2) != bits(&mask), || {
        "successive steps drop different elements".to_string()
    })?;
    worst.done()
}

pub async fn eval_identity(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let n = 1001;
    let x = uniform(n, -3.0, 3.0, 52);
    let xt = tensor(g, &[n], &x, "x")?;
    let yt = poisoned(g, &[n], "y")?;
    let mut s = Step::new("eval");
    dropout::dropout_eval(g, &mut s, &xt, &yt)?;
    run(g, &[&s])?;
    worst.equal("dropout eval", &bits(&read(g, &yt).await?), &bits(&x))?;
    worst.done()
}
