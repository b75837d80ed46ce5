//! Reparameterisation z = mu + exp(0.5 logvar) eps on h = [mu | logvar]:
//! eps is the Philox normal (the same draws as fill_normal), z and the
//! backward match the CPU (including past the logvar clamp), |x| = 100
//! stays finite, and the mean mode copies mu.
//!
//! Tolerances: eps within rng::NORMAL_ATOL of the f64 Box-Muller (see its
//! doc). z is compared with the CPU formula applied to the GPU's own eps:
//! exp(0.5c) with |0.5c| <= 1.5 has error <= 3 + 2*1.5 = 6 ulp (WGSL), then
//! one multiply and one add: rtol 2e-6 (~17 ulp) plus atol 1e-6 for results
//! near 0 from cancellation of mu against the noise term (|terms| <= ~9, so
//! a few ulp of 9 is ~2e-6: atol 4e-6). The backward has the same exp and
//! two more multiplies: same tolerance.

use super::kl::make_h;
use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::reparam;
use vae_vs_gan::ops::rng::{self, Philox, NORMAL_ATOL};

const DIMS: [(usize, usize); 3] = [(1, 1), (3, 13), (129, 2)];

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("reparam forward", forward(g).await);
    r.record("reparam backward", backward(g).await);
    r.record("reparam finite at extremes", finite_at_extremes(g).await);
    r.record("reparam mean copies mu", mean_copies_mu(g).await);
}

pub async fn forward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, 4)?;
    for (k, &(n, l)) in DIMS.iter().enumerate() {
        let r = Philox::new(500 + k as u64, 2);
        let h = make_h(n, l, 60 + 2 * k as u64);
        let ht = tensor(g, &[n, 2 * l], &h, "h")?;
        let eps = poisoned(g, &[n, l], "eps")?;
        let z = poisoned(g, &[n, l], "z")?;
        let fill = poisoned(g, &[n, l], "fill")?;
        let mut s = Step::new("reparam");
        reparam::reparam_forward(g, &mut s, r, &state.counters, &ht, &eps, &z)?;
        rng::fill_normal(g, &mut s, r, &state.counters, &fill)?;
        run(g, &[&s])?;
        let eg = read(g, &eps).await?;
        worst.equal(
            &format!("reparam eps {n}x{l} is fill_normal's draw"),
            &bits(&eg),
            &bits(&read(g, &fill).await?),
        )?;
        worst.close(
            &format!("reparam eps {n}x{l}"),
            &eg,
            &r.normal_cpu::<f32>(4, n * l),
            NORMAL_ATOL,
            1e-5,
        )?;
        worst.close(
            &format!("reparam z {n}x{l}"),
            &read(g, &z).await?,
            &reparam::reparam_forward_cpu(&h, &eg, l),
            4e-6,
            2e-6,
        )?;
    }
    worst.done()
}

pub async fn backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, &(n, l)) in DIMS.iter().enumerate() {
        let mut h = make_h(n, l, 70 + 2 * k as u64);
        if n * l > 2 {
            h[l] = 31.0; // logvar past the clamp: zero logvar gradient
            h[2 * l - 1] = -40.0;
        }
        let eps = uniform(n * l, -3.0, 3.0, 80 + k as u64);
        let dz = uniform(n * l, -1.0, 1.0, 90 + k as u64);
        let ht = tensor(g, &[n, 2 * l], &h, "h")?;
        let et = tensor(g, &[n, l], &eps, "eps")?;
        let dzt = tensor(g, &[n, l], &dz, "dz")?;
        let dh = poisoned(g, &[n, 2 * l], "dh")?;
        let mut s = Step::new("reparam bwd");
        reparam::reparam_backward(g, &mut s, &ht, &et, &dzt, &dh)?;
        run(g, &[&s])?;
        let want = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
        let got = read(g, &dh).await?;
        worst.close(&format!("reparam dh {n}x{l}"), &got, &want, 4e-6, 2e-6)?;
        if n * l > 2 {
            worst.equal(
                &format!("reparam {n}x{l}: no logvar gradient past the clamp (31, -40)"),
                &[got[l], got[2 * l - 1]],
                &[0.0, 0.0],
            )?;
        }
    }
    worst.done()
}

/// mu and logvar at +-100: the clamp keeps exp(0.5 c) <= exp(15), so z and
/// dh are finite on GPU and CPU and agree (z up to ~3.3e6 * |eps|: rtol).
pub async fn finite_at_extremes(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, l) = (2, 3);
    let h = super::kl::EXTREME_H.to_vec();
    let state = StepState::new(g, 1, 1, 0)?;
    let r = Philox::new(1, 1);
    let ht = tensor(g, &[n, 2 * l], &h, "h")?;
    let eps = Tensor::zeros(g, &[n, l], "eps")?;
    let z = Tensor::zeros(g, &[n, l], "z")?;
    let dh = Tensor::zeros(g, &[n, 2 * l], "dh")?;
    let dz = tensor(g, &[n, l], &[1.0; 6], "dz")?;
    let mut s = Step::new("extreme");
    reparam::reparam_forward(g, &mut s, r, &state.counters, &ht, &eps, &z)?;
    reparam::reparam_backward(g, &mut s, &ht, &eps, &dz, &dh)?;
    run(g, &[&s])?;
    let eg = read(g, &eps).await?;
    let zg = read(g, &z).await?;
    let dg = read(g, &dh).await?;
    ensure(zg.iter().chain(&dg).all(|v| v.is_finite()), || {
        format!("reparam extreme: {zg:?} {dg:?}")
    })?;
    let zc = reparam::reparam_forward_cpu(&h, &eg, l);
    let dc = reparam::reparam_backward_cpu(&h, &eg, &[1.0; 6], l);
    ensure(zc.iter().chain(&dc).all(|v| v.is_finite()), || {
        format!("reparam extreme: CPU reference {zc:?} {dc:?}")
    })?;
    // exp(15) has up to 3 + 2*15 = 33 ulp of error in WGSL: rtol 4e-6.
    worst.close("reparam z extreme", &zg, &zc, 1e-5, 4e-6)?;
    worst.close("reparam dh extreme", &dg, &dc, 1e-5, 4e-6)?;
    worst.done()
}

pub async fn mean_copies_mu(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (n, l) = (3, 13);
    let h = make_h(n, l, 110);
    let ht = tensor(g, &[n, 2 * l], &h, "h")?;
    let z = poisoned(g, &[n, l], "z")?;
    let mut s = Step::new("mean");
    reparam::reparam_mean(g, &mut s, &ht, &z)?;
    run(g, &[&s])?;
    let want: Vec<f32> = (0..n * l).map(|e| h[(e / l) * 2 * l + e % l]).collect();
    worst.equal("reparam mean", &read(g, &z).await?, &want)?;
    worst.done()
}
