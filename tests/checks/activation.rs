//! Pointwise activations against their CPU reference on odd sizes, and
//! finite at |x| = 100.
//!
//! Tolerance: one f32 op per element, so the GPU differs from the f64-
//! accumulated reference by a few ulp: rtol 1e-5 is ~80 ulp. sigmoid and tanh
//! go through WGSL `exp`, whose error bound is 3 + 2|x| ulp (|x| <= 8
//! here): rtol 1e-5 plus atol 1e-6 for outputs near 0.

use super::*;
use vae_vs_gan::ops::activation::Activation;

pub const ALL: [Activation; 4] = [
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Sigmoid,
    Activation::Tanh,
];

/// Odd sizes: not multiples of the 256-thread workgroup.
const SIZES: [usize; 3] = [1, 3 * 5 * 13 * 13, 70_001];

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("activation forward", forward(g).await);
    r.record("activation backward", backward(g).await);
    r.record("activation finite at extremes", finite_at_extremes(g).await);
}

pub async fn forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, act) in ALL.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            let x = uniform(n, -8.0, 8.0, 100 + (k * 10 + j) as u64);
            let xt = tensor(g, &[n], &x, "x")?;
            let yt = poisoned(g, &[n], "y")?;
            let mut s = Step::new("fwd");
            act.forward(g, &mut s, &xt, &yt)?;
            run(g, &[&s])?;
            let what = format!("{act:?}_forward n={n}");
            worst.close(
                &what,
                &read(g, &yt).await?,
                &act.forward_cpu(&x),
                1e-6,
                1e-5,
            )?;
        }
    }
    worst.done()
}

pub async fn backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, act) in ALL.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            let x = uniform(n, -8.0, 8.0, 200 + (k * 10 + j) as u64);
            let dy = uniform(n, -1.0, 1.0, 300 + (k * 10 + j) as u64);
            let saved = if act.backward_uses_output() {
                act.forward_cpu(&x)
            } else {
                x.clone()
            };
            let st = tensor(g, &[n], &saved, "saved")?;
            let dyt = tensor(g, &[n], &dy, "dy")?;
            let dxt = poisoned(g, &[n], "dx")?;
            let mut s = Step::new("bwd");
            act.backward(g, &mut s, &st, &dyt, &dxt)?;
            run(g, &[&s])?;
            let what = format!("{act:?}_backward n={n}");
            let want = act.backward_cpu(&saved, &dy);
            worst.close(&what, &read(g, &dxt).await?, &want, 1e-6, 1e-5)?;
        }
    }
    worst.done()
}

/// Every activation finite, and within the same tolerance, at |x| up to 100
/// (exp overflows f32 past 88).
pub async fn finite_at_extremes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let x = [-100.0f32, -88.0, -20.0, 0.0, 20.0, 88.0, 100.0];
    for act in ALL {
        let xt = tensor(g, &[x.len()], &x, "x")?;
        let yt = poisoned(g, &[x.len()], "y")?;
        let mut s = Step::new("extreme");
        act.forward(g, &mut s, &xt, &yt)?;
        run(g, &[&s])?;
        let y = read(g, &yt).await?;
        ensure(y.iter().all(|v| v.is_finite()), || {
            format!("{act:?} at ±100: {y:?}")
        })?;
        worst.close(
            &format!("{act:?}_extreme"),
            &y,
            &act.forward_cpu(&x),
            1e-6,
            1e-5,
        )?;
    }
    worst.done()
}
