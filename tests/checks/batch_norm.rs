//! Batch norm: GPU vs CPU reference for the training forward (y, saved
//! mean and inv_std), the running-average update, the eval forward and the
//! backward (dx, dgamma, dbeta), the whole forward-then-backward chain, and
//! determinism.
//!
//! Tolerances. The GPU sums each channel over a chain of at most
//! L = 16 (per-thread strided loop) + 4 (tree over 16 row lanes) + P (row
//! chunks of 256, summed in order) roundings, so a sum's error is at most
//! L * 2^-24 * sum|terms| (Higham's recursive-summation bound):
//! - 13x13 shapes: R <= 507 rows, P <= 2, L <= 22: 1.3e-6 relative. The
//!   mean and variance feed y = gamma * xhat + beta with |xhat| <= ~2,
//!   gamma <= 1.5; the variance is formed from shifted sums, where
//!   subtracting shift^2 can amplify its relative error by up to
//!   1 + 2 * range^2 / var (<= 7 for uniform inputs): y errs by at most
//!   ~1.5 * 2 * 7 * 1.3e-6 / 2 ~ 1.4e-5 absolute. atol 2e-5, rtol 1e-4.
//! - 128x14x14 (R = 25,088, the model's largest BN): P = 98, L = 118,
//!   7e-6 relative: the same argument gives ~7e-5. atol 1e-4, rtol 1e-4.
//! - dgamma = sum(dy * xhat) and dbeta = sum(dy) mix signs, so their bound
//!   is absolute: atol = L * 2^-24 * max_c sum_r |term| (computed per case),
//!   rtol 1e-4. dx = gamma * inv_std / R * (R dy - dbeta - xhat dgamma):
//!   the sums' errors are divided by R, the rest is a few roundings of
//!   terms of size |dy| <= 1: atol 1e-5 (small) / 2e-5 (large), rtol 1e-4.
//! - The eval forward has no reduction: a few roundings of |y| <= ~10,
//!   atol 1e-5, rtol 1e-5.
//! - The running averages are one fused multiply-add per step of the batch
//!   statistics, so they inherit the mean/variance error above.

use super::*;
use vae_vs_gan::ops::batch_norm::{
    backward_cpu, forward_eval_cpu, forward_train_cpu, running_update_cpu, BatchNorm,
    BatchNormConfig, BnBackward, BnGrads, BnParams, BnSaved,
};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("batch_norm forward train", forward_train(g).await);
    r.record("batch_norm running average", running_average(g).await);
    r.record("batch_norm forward eval", forward_eval(g).await);
    r.record("batch_norm backward", backward(g).await);
    r.record(
        "batch_norm forward then backward",
        forward_then_backward(g).await,
    );
    r.record("batch_norm deterministic", deterministic(g).await);
}

/// (shape, input low, input high, atol for y, chain length L).
/// C = 37 and 300 span several 16-channel tiles, the last one ragged; the
/// offset input ([10, 12]) has |mean| >> std: the shifted sums must keep
/// the variance accurate there; R = 507 and 25,088 span 2 and 98 chunks.
const CASES: [(&[usize], f32, f32, f64, usize); 7] = [
    (&[3, 13, 13, 5], -2.0, 3.0, 2e-5, 22),
    (&[2, 5, 5, 37], -2.0, 3.0, 2e-5, 21),
    (&[9, 300], -1.0, 2.0, 2e-5, 17),
    (&[7, 9], -1.0, 2.0, 2e-5, 17),
    (&[1, 1, 1, 3], -1.0, 1.0, 2e-5, 17),
    (&[3, 13, 13, 5], 10.0, 12.0, 2e-5, 22),
    (&[128, 14, 14, 4], -2.0, 3.0, 1e-4, 118),
];

pub const EPS: f64 = 1e-3;

/// A batch norm op with its parameters, running statistics and saved
/// statistics on the GPU.
pub struct Bn {
    pub bn: BatchNorm,
    pub gamma: Tensor,
    pub beta: Tensor,
    pub rmean: Tensor,
    pub rvar: Tensor,
    pub mean: Tensor,
    pub inv: Tensor,
}

/// The host copies of [`Bn`]'s parameters and running statistics.
pub struct Host {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub rmean: Vec<f32>,
    pub rvar: Vec<f32>,
}

/// A batch norm over `shape` (channels last) with random parameters and
/// running statistics from `seed`, its saved statistics poisoned.
pub fn setup(
    g: &Gpu,
    shape: &[usize],
    seed: u64,
    config: BatchNormConfig,
) -> Result<(Bn, Host), Failure> {
    let c = shape.last().copied().unwrap_or(1);
    let host = Host {
        gamma: uniform(c, 0.5, 1.5, seed + 1),
        beta: uniform(c, -0.5, 0.5, seed + 2),
        rmean: uniform(c, -1.0, 1.0, seed + 3),
        rvar: uniform(c, 0.5, 2.0, seed + 4),
    };
    let bn = Bn {
        bn: BatchNorm::new(g, shape, config)?,
        gamma: tensor(g, &[c], &host.gamma, "gamma")?,
        beta: tensor(g, &[c], &host.beta, "beta")?,
        rmean: tensor(g, &[c], &host.rmean, "running_mean")?,
        rvar: tensor(g, &[c], &host.rvar, "running_var")?,
        mean: poisoned(g, &[c], "save_mean")?,
        inv: poisoned(g, &[c], "save_inv_std")?,
    };
    Ok((bn, host))
}

impl Bn {
    pub fn params(&self) -> BnParams<'_> {
        BnParams {
            gamma: &self.gamma,
            beta: &self.beta,
            running_mean: &self.rmean,
            running_var: &self.rvar,
        }
    }
    pub fn saved(&self) -> BnSaved<'_> {
        BnSaved {
            mean: &self.mean,
            inv_std: &self.inv,
        }
    }
}

pub async fn forward_train(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, &(shape, lo, hi, atol, _)) in CASES.iter().enumerate() {
        let seed = 1000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = shape[shape.len() - 1];
        let (bn, h) = setup(g, shape, seed, BatchNormConfig::default())?;
        let x = uniform(n, lo, hi, seed);
        let xt = tensor(g, shape, &x, "x")?;
        let yt = poisoned(g, shape, "y")?;
        let mut s = Step::new("bn_fwd");
        bn.bn
            .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)?;
        run(g, &[&s])?;
        let want = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
        let what = format!("batch_norm_forward_train {shape:?} x in [{lo}, {hi}]");
        worst.close(
            &format!("{what} y"),
            &read(g, &yt).await?,
            &want.y,
            atol,
            1e-4,
        )?;
        worst.close(
            &format!("{what} mean"),
            &read(g, &bn.mean).await?,
            &want.mean,
            atol,
            1e-4,
        )?;
        worst.close(
            &format!("{what} inv_std"),
            &read(g, &bn.inv).await?,
            &want.inv_std,
            atol,
            1e-4,
        )?;
    }
    worst.done()
}

/// Two training steps: the running averages follow Keras's
/// `momentum * running + (1 - momentum) * batch` (biased variance) each
/// time; with `update_running: false` they are left untouched.
pub async fn running_average(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, &(shape, lo, hi, atol, _)) in CASES.iter().enumerate() {
        let seed = 2000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = shape[shape.len() - 1];
        let config = BatchNormConfig {
            momentum: 0.9,
            ..Default::default()
        };
        let (bn, mut h) = setup(g, shape, seed, config)?;
        let x = uniform(n, lo, hi, seed);
        let xt = tensor(g, shape, &x, "x")?;
        let yt = Tensor::zeros(g, shape, "y")?;
        let mut s = Step::new("bn_fwd");
        bn.bn
            .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)?;
        run(g, &[&s, &s])?;
        let want = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
        for _ in 0..2 {
            running_update_cpu(&mut h.rmean, &want.mean, 0.9);
            running_update_cpu(&mut h.rvar, &want.var, 0.9);
        }
        let what = format!("batch_norm_running_average {shape:?} x in [{lo}, {hi}]");
        worst.close(
            &format!("{what} running_mean"),
            &read(g, &bn.rmean).await?,
            &h.rmean,
            atol,
            1e-4,
        )?;
        worst.close(
            &format!("{what} running_var"),
            &read(g, &bn.rvar).await?,
            &h.rvar,
            atol,
            1e-4,
        )?;
    }

    // update_running: false leaves them bit-identical.
    let shape = [7, 9];
    let config = BatchNormConfig {
        update_running: false,
        ..Default::default()
    };
    let (bn, h) = setup(g, &shape, 2100, config)?;
    let xt = tensor(g, &shape, &uniform(63, -1.0, 1.0, 2101), "x")?;
    let yt = Tensor::zeros(g, &shape, "y")?;
    let mut s = Step::new("bn_fwd_frozen");
    bn.bn
        .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)?;
    run(g, &[&s])?;
    worst.equal("frozen running_mean", &read(g, &bn.rmean).await?, &h.rmean)?;
    worst.equal("frozen running_var", &read(g, &bn.rvar).await?, &h.rvar)?;
    worst.done()
}

pub async fn forward_eval(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, &(shape, lo, hi, _, _)) in CASES.iter().enumerate() {
        let seed = 3000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = shape[shape.len() - 1];
        let (bn, h) = setup(g, shape, seed, BatchNormConfig::default())?;
        let x = uniform(n, lo, hi, seed);
        let xt = tensor(g, shape, &x, "x")?;
        let yt = poisoned(g, shape, "y")?;
        let mut s = Step::new("bn_eval");
        bn.bn.forward_eval(g, &mut s, &xt, &bn.params(), &yt)?;
        run(g, &[&s])?;
        let want = forward_eval_cpu(&x, c, &h.gamma, &h.beta, &h.rmean, &h.rvar, EPS);
        let what = format!("batch_norm_forward_eval {shape:?} x in [{lo}, {hi}]");
        worst.close(&what, &read(g, &yt).await?, &want, 1e-5, 1e-5)?;
        // The eval forward must not touch the running statistics.
        worst.equal(
            &format!("{what} running_mean"),
            &read(g, &bn.rmean).await?,
            &h.rmean,
        )?;
        worst.equal(
            &format!("{what} running_var"),
            &read(g, &bn.rvar).await?,
            &h.rvar,
        )?;
    }
    worst.done()
}

/// The backward is fed the CPU's saved statistics (as f32), so the check
/// isolates the backward kernels from the forward's rounding.
pub async fn backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    for (k, &(shape, lo, hi, _, chain)) in CASES.iter().enumerate() {
        let seed = 4000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = shape[shape.len() - 1];
        let (bn, h) = setup(g, shape, seed, BatchNormConfig::default())?;
        let x = uniform(n, lo, hi, seed);
        let dy = uniform(n, -1.0, 1.0, seed + 5);
        let fwd = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
        bn.mean.write_f32(g, &fwd.mean)?;
        bn.inv.write_f32(g, &fwd.inv_std)?;
        let xt = tensor(g, shape, &x, "x")?;
        let dyt = tensor(g, shape, &dy, "dy")?;
        let dxt = poisoned(g, shape, "dx")?;
        let dgt = poisoned(g, &[c], "dgamma")?;
        let dbt = poisoned(g, &[c], "dbeta")?;
        let mut s = Step::new("bn_bwd");
        let grads = BnGrads {
            dx: &dxt,
            dgamma: &dgt,
            dbeta: &dbt,
        };
        bn.bn.backward(
            g,
            &mut s,
            &BnBackward {
                x: &xt,
                dy: &dyt,
                gamma: &bn.gamma,
                saved: bn.saved(),
            },
            &grads,
        )?;
        run(g, &[&s])?;
        let (dx, dgamma, dbeta) = backward_cpu(&x, &dy, c, &h.gamma, &fwd.mean, &fwd.inv_std);

        // Absolute bounds of the two sums: L * 2^-24 * max_c sum_r |term|.
        let mut abs_dg = vec![0.0f64; c];
        let mut abs_db = vec![0.0f64; c];
        for i in 0..n {
            let ch = i % c;
            let xhat = (x[i] as f64 - fwd.mean[ch] as f64) * fwd.inv_std[ch] as f64;
            abs_dg[ch] += (dy[i] as f64 * xhat).abs();
            abs_db[ch] += (dy[i] as f64).abs();
        }
        let bound =
            |v: &[f64]| chain as f64 * 2f64.powi(-24) * v.iter().cloned().fold(0.0, f64::max);
        let what = format!("batch_norm_backward {shape:?} x in [{lo}, {hi}]");
        worst.close(
            &format!("{what} dgamma"),
            &read(g, &dgt).await?,
            &dgamma,
            bound(&abs_dg).max(1e-6),
            1e-4,
        )?;
        worst.close(
            &format!("{what} dbeta"),
            &read(g, &dbt).await?,
            &dbeta,
            bound(&abs_db).max(1e-6),
            1e-4,
        )?;
        let dx_atol = if n > 100_000 { 2e-5 } else { 1e-5 };
        worst.close(
            &format!("{what} dx"),
            &read(g, &dxt).await?,
            &dx,
            dx_atol,
            1e-4,
        )?;
    }
    worst.done()
}

/// The forward and backward after the GPU's own forward: the whole chain
/// (GPU saved statistics feeding the GPU backward) against the CPU.
pub async fn forward_then_backward(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let shape = [3, 13, 13, 5];
    let (n, c) = (3 * 13 * 13 * 5, 5);
    let (bn, h) = setup(g, &shape, 4500, BatchNormConfig::default())?;
    let x = uniform(n, -2.0, 3.0, 4501);
    let dy = uniform(n, -1.0, 1.0, 4502);
    let xt = tensor(g, &shape, &x, "x")?;
    let yt = Tensor::zeros(g, &shape, "y")?;
    let dyt = tensor(g, &shape, &dy, "dy")?;
    let dxt = poisoned(g, &shape, "dx")?;
    let dgt = Tensor::zeros(g, &[c], "dgamma")?;
    let dbt = Tensor::zeros(g, &[c], "dbeta")?;
    let mut s = Step::new("bn_fwd_bwd");
    bn.bn
        .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)?;
    let grads = BnGrads {
        dx: &dxt,
        dgamma: &dgt,
        dbeta: &dbt,
    };
    bn.bn.backward(
        g,
        &mut s,
        &BnBackward {
            x: &xt,
            dy: &dyt,
            gamma: &bn.gamma,
            saved: bn.saved(),
        },
        &grads,
    )?;
    // 507 rows make two chunks of at most 256: partial sums and finalize
    // for the statistics and for the gradients, plus apply and dx (one
    // chunk fuses each pair: tests/it/epilogue.rs and the GAN's 32-row norm)
    ensure(s.len() == 6, || {
        format!(
            "batch_norm forward + backward recorded {} dispatches, want 6",
            s.len()
        )
    })?;
    run(g, &[&s])?;
    let fwd = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
    let (dx, _, _) = backward_cpu(&x, &dy, c, &h.gamma, &fwd.mean, &fwd.inv_std);
    // dx also carries the forward's saved-statistics error (~1e-6
    // relative on inv_std, see the module doc), times |dx| <= ~3.
    worst.close(
        "batch_norm_forward_then_backward dx",
        &read(g, &dxt).await?,
        &dx,
        2e-5,
        1e-4,
    )?;
    worst.done()
}

/// y, the saved mean and the saved inv_std of `bn`, as bits.
async fn forward_bits(g: &Gpu, y: &Tensor, bn: &Bn) -> Result<Vec<Vec<u32>>, Failure> {
    let mut out = Vec::new();
    for t in [y, &bn.mean, &bn.inv] {
        out.push(bits(&read(g, t).await?));
    }
    Ok(out)
}

/// Same inputs, same bits: the reductions have a fixed order.
pub async fn deterministic(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let shape = [128, 14, 14, 4];
    let n: usize = shape.iter().product();
    let (bn, _) = setup(g, &shape, 5000, BatchNormConfig::default())?;
    let xt = tensor(g, &shape, &uniform(n, -2.0, 3.0, 5001), "x")?;
    let yt = Tensor::zeros(g, &shape, "y")?;
    let mut s = Step::new("bn_fwd");
    bn.bn
        .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)?;
    run(g, &[&s])?;
    let first = forward_bits(g, &yt, &bn).await?;
    run(g, &[&s])?;
    let second = forward_bits(g, &yt, &bn).await?;
    for (name, (a, b)) in ["y", "mean", "inv_std"]
        .iter()
        .zip(first.iter().zip(&second))
    {
        worst.equal(
            &format!("batch_norm forward {name}, second run vs first"),
            b,
            a,
        )?;
    }
    worst.done()
}
