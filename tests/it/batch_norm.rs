//! Batch norm: GPU vs CPU reference for the training forward (y, saved
//! mean and inv_std), the running-average update, the eval forward and the
//! backward (dx, dgamma, dbeta); CPU backward vs central finite differences
//! in f64; determinism; shape errors at record time.
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

use crate::common::*;
use vae_vs_gan::ops::batch_norm::{
    backward_cpu, forward_eval_cpu, forward_train_cpu, running_update_cpu, BatchNorm,
    BatchNormConfig, BnBackward, BnGrads, BnParams, BnSaved,
};
use vae_vs_gan::{Gpu, Step, Tensor};

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

const EPS: f64 = 1e-3;

struct Bn {
    bn: BatchNorm,
    gamma: Tensor,
    beta: Tensor,
    rmean: Tensor,
    rvar: Tensor,
    mean: Tensor,
    inv: Tensor,
}

struct Host {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    rmean: Vec<f32>,
    rvar: Vec<f32>,
}

fn setup(g: &Gpu, shape: &[usize], seed: u64, config: BatchNormConfig) -> (Bn, Host) {
    let c = *shape.last().unwrap();
    let host = Host {
        gamma: uniform(c, 0.5, 1.5, seed + 1),
        beta: uniform(c, -0.5, 0.5, seed + 2),
        rmean: uniform(c, -1.0, 1.0, seed + 3),
        rvar: uniform(c, 0.5, 2.0, seed + 4),
    };
    let bn = Bn {
        bn: BatchNorm::new(g, shape, config).unwrap(),
        gamma: Tensor::from_f32(g, &[c], &host.gamma, "gamma").unwrap(),
        beta: Tensor::from_f32(g, &[c], &host.beta, "beta").unwrap(),
        rmean: Tensor::from_f32(g, &[c], &host.rmean, "running_mean").unwrap(),
        rvar: Tensor::from_f32(g, &[c], &host.rvar, "running_var").unwrap(),
        mean: Tensor::zeros(g, &[c], "save_mean").unwrap(),
        inv: Tensor::zeros(g, &[c], "save_inv_std").unwrap(),
    };
    bn.mean.poison(g);
    bn.inv.poison(g);
    (bn, host)
}

impl Bn {
    fn params(&self) -> BnParams<'_> {
        BnParams {
            gamma: &self.gamma,
            beta: &self.beta,
            running_mean: &self.rmean,
            running_var: &self.rvar,
        }
    }
    fn saved(&self) -> BnSaved<'_> {
        BnSaved {
            mean: &self.mean,
            inv_std: &self.inv,
        }
    }
}

#[test]
fn batch_norm_forward_train_matches_cpu() {
    let g = gpu();
    for (k, &(shape, lo, hi, atol, _)) in CASES.iter().enumerate() {
        let seed = 1000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = *shape.last().unwrap();
        let (bn, h) = setup(g, shape, seed, BatchNormConfig::default());
        let x = uniform(n, lo, hi, seed);
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        let yt = Tensor::zeros(g, shape, "y").unwrap();
        yt.poison(g);
        let mut s = Step::new("bn_fwd");
        bn.bn
            .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)
            .unwrap();
        run(&s);
        let want = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
        let what = format!("batch_norm_forward_train {shape:?} x in [{lo}, {hi}]");
        assert_close(
            &format!("{what} y"),
            &yt.read_f32(g).unwrap(),
            &want.y,
            atol,
            1e-4,
        );
        assert_close(
            &format!("{what} mean"),
            &bn.mean.read_f32(g).unwrap(),
            &want.mean,
            atol,
            1e-4,
        );
        assert_close(
            &format!("{what} inv_std"),
            &bn.inv.read_f32(g).unwrap(),
            &want.inv_std,
            atol,
            1e-4,
        );
    }
}

/// Two training steps: the running averages follow Keras's
/// `momentum * running + (1 - momentum) * batch` (biased variance) each
/// time; with `update_running: false` they are left untouched.
#[test]
fn batch_norm_running_average_update_matches_cpu() {
    let g = gpu();
    for (k, &(shape, lo, hi, atol, _)) in CASES.iter().enumerate() {
        let seed = 2000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = *shape.last().unwrap();
        let config = BatchNormConfig {
            momentum: 0.9,
            ..Default::default()
        };
        let (bn, mut h) = setup(g, shape, seed, config);
        let x = uniform(n, lo, hi, seed);
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        let yt = Tensor::zeros(g, shape, "y").unwrap();
        let mut s = Step::new("bn_fwd");
        bn.bn
            .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)
            .unwrap();
        g.run(&[&s, &s]).unwrap();
        let want = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
        for _ in 0..2 {
            running_update_cpu(&mut h.rmean, &want.mean, 0.9);
            running_update_cpu(&mut h.rvar, &want.var, 0.9);
        }
        let what = format!("batch_norm_running_average {shape:?} x in [{lo}, {hi}]");
        assert_close(
            &format!("{what} running_mean"),
            &bn.rmean.read_f32(g).unwrap(),
            &h.rmean,
            atol,
            1e-4,
        );
        assert_close(
            &format!("{what} running_var"),
            &bn.rvar.read_f32(g).unwrap(),
            &h.rvar,
            atol,
            1e-4,
        );
    }

    // update_running: false leaves them bit-identical.
    let shape = [7, 9];
    let config = BatchNormConfig {
        update_running: false,
        ..Default::default()
    };
    let (bn, h) = setup(g, &shape, 2100, config);
    let xt = Tensor::from_f32(g, &shape, &uniform(63, -1.0, 1.0, 2101), "x").unwrap();
    let yt = Tensor::zeros(g, &shape, "y").unwrap();
    let mut s = Step::new("bn_fwd_frozen");
    bn.bn
        .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)
        .unwrap();
    run(&s);
    assert_eq!(bn.rmean.read_f32(g).unwrap(), h.rmean);
    assert_eq!(bn.rvar.read_f32(g).unwrap(), h.rvar);
}

#[test]
fn batch_norm_forward_eval_matches_cpu() {
    let g = gpu();
    for (k, &(shape, lo, hi, _, _)) in CASES.iter().enumerate() {
        let seed = 3000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = *shape.last().unwrap();
        let (bn, h) = setup(g, shape, seed, BatchNormConfig::default());
        let x = uniform(n, lo, hi, seed);
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        let yt = Tensor::zeros(g, shape, "y").unwrap();
        yt.poison(g);
        let mut s = Step::new("bn_eval");
        bn.bn
            .forward_eval(g, &mut s, &xt, &bn.params(), &yt)
            .unwrap();
        run(&s);
        let want = forward_eval_cpu(&x, c, &h.gamma, &h.beta, &h.rmean, &h.rvar, EPS);
        assert_close(
            &format!("batch_norm_forward_eval {shape:?}"),
            &yt.read_f32(g).unwrap(),
            &want,
            1e-5,
            1e-5,
        );
        // The eval forward must not touch the running statistics.
        assert_eq!(bn.rmean.read_f32(g).unwrap(), h.rmean);
        assert_eq!(bn.rvar.read_f32(g).unwrap(), h.rvar);
    }
}

/// The backward is fed the CPU's saved statistics (as f32), so the check
/// isolates the backward kernels from the forward's rounding.
#[test]
fn batch_norm_backward_matches_cpu() {
    let g = gpu();
    for (k, &(shape, lo, hi, _, chain)) in CASES.iter().enumerate() {
        let seed = 4000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = *shape.last().unwrap();
        let (bn, h) = setup(g, shape, seed, BatchNormConfig::default());
        let x = uniform(n, lo, hi, seed);
        let dy = uniform(n, -1.0, 1.0, seed + 5);
        let fwd = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
        bn.mean.write_f32(g, &fwd.mean).unwrap();
        bn.inv.write_f32(g, &fwd.inv_std).unwrap();
        let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
        let dyt = Tensor::from_f32(g, shape, &dy, "dy").unwrap();
        let dxt = Tensor::zeros(g, shape, "dx").unwrap();
        let dgt = Tensor::zeros(g, &[c], "dgamma").unwrap();
        let dbt = Tensor::zeros(g, &[c], "dbeta").unwrap();
        for t in [&dxt, &dgt, &dbt] {
            t.poison(g);
        }
        let mut s = Step::new("bn_bwd");
        let grads = BnGrads {
            dx: &dxt,
            dgamma: &dgt,
            dbeta: &dbt,
        };
        bn.bn
            .backward(
                g,
                &mut s,
                &BnBackward {
                    x: &xt,
                    dy: &dyt,
                    gamma: &bn.gamma,
                    saved: bn.saved(),
                },
                &grads,
            )
            .unwrap();
        run(&s);
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
        assert_close(
            &format!("{what} dgamma"),
            &dgt.read_f32(g).unwrap(),
            &dgamma,
            bound(&abs_dg).max(1e-6),
            1e-4,
        );
        assert_close(
            &format!("{what} dbeta"),
            &dbt.read_f32(g).unwrap(),
            &dbeta,
            bound(&abs_db).max(1e-6),
            1e-4,
        );
        let dx_atol = if n > 100_000 { 2e-5 } else { 1e-5 };
        assert_close(
            &format!("{what} dx"),
            &dxt.read_f32(g).unwrap(),
            &dx,
            dx_atol,
            1e-4,
        );
    }
}

/// The forward and backward after the GPU's own forward: the whole chain
/// (GPU saved statistics feeding the GPU backward) against the CPU.
#[test]
fn batch_norm_forward_then_backward_on_gpu_matches_cpu() {
    let g = gpu();
    let shape = [3, 13, 13, 5];
    let (n, c) = (3 * 13 * 13 * 5, 5);
    let (bn, h) = setup(g, &shape, 4500, BatchNormConfig::default());
    let x = uniform(n, -2.0, 3.0, 4501);
    let dy = uniform(n, -1.0, 1.0, 4502);
    let xt = Tensor::from_f32(g, &shape, &x, "x").unwrap();
    let yt = Tensor::zeros(g, &shape, "y").unwrap();
    let dyt = Tensor::from_f32(g, &shape, &dy, "dy").unwrap();
    let dxt = Tensor::zeros(g, &shape, "dx").unwrap();
    let dgt = Tensor::zeros(g, &[c], "dgamma").unwrap();
    let dbt = Tensor::zeros(g, &[c], "dbeta").unwrap();
    dxt.poison(g);
    let mut s = Step::new("bn_fwd_bwd");
    bn.bn
        .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)
        .unwrap();
    let grads = BnGrads {
        dx: &dxt,
        dgamma: &dgt,
        dbeta: &dbt,
    };
    bn.bn
        .backward(
            g,
            &mut s,
            &BnBackward {
                x: &xt,
                dy: &dyt,
                gamma: &bn.gamma,
                saved: bn.saved(),
            },
            &grads,
        )
        .unwrap();
    // 507 rows make two chunks of at most 256: partial sums and finalize
    // for the statistics and for the gradients, plus apply and dx (one
    // chunk fuses each pair: tests/it/epilogue.rs and the GAN's 32-row norm)
    assert_eq!(s.len(), 6);
    run(&s);
    let fwd = forward_train_cpu(&x, c, &h.gamma, &h.beta, EPS);
    let (dx, _, _) = backward_cpu(&x, &dy, c, &h.gamma, &fwd.mean, &fwd.inv_std);
    // dx also carries the forward's saved-statistics error (~1e-6
    // relative on inv_std, see the module doc), times |dx| <= ~3.
    assert_close(
        "batch_norm_forward_then_backward dx",
        &dxt.read_f32(g).unwrap(),
        &dx,
        2e-5,
        1e-4,
    );
}

/// Same inputs, same bits: the reductions have a fixed order.
#[test]
fn batch_norm_is_deterministic() {
    let g = gpu();
    let shape = [128, 14, 14, 4];
    let n: usize = shape.iter().product();
    let (bn, _) = setup(g, &shape, 5000, BatchNormConfig::default());
    let xt = Tensor::from_f32(g, &shape, &uniform(n, -2.0, 3.0, 5001), "x").unwrap();
    let yt = Tensor::zeros(g, &shape, "y").unwrap();
    let mut s = Step::new("bn_fwd");
    bn.bn
        .forward_train(g, &mut s, &xt, &bn.params(), &bn.saved(), &yt)
        .unwrap();
    let bits =
        |t: &Tensor| -> Vec<u32> { t.read_f32(g).unwrap().iter().map(|v| v.to_bits()).collect() };
    run(&s);
    let first = (bits(&yt), bits(&bn.mean), bits(&bn.inv));
    run(&s);
    let second = (bits(&yt), bits(&bn.mean), bits(&bn.inv));
    assert!(first == second, "batch_norm forward differs between runs");
}

/// The CPU backward is the gradient of `sum(y * dy)` with batch statistics
/// recomputed from x (so dx includes the paths through mean and variance).
/// Central differences in f64, h = 1e-5: the loss is smooth (eps = 1e-3
/// keeps sqrt away from 0), truncation ~h^2 |f'''| ~ 1e-10 and rounding
/// ~1e-16 / h ~ 1e-11: atol 1e-7, rtol 1e-6.
#[test]
fn batch_norm_backward_cpu_matches_finite_differences() {
    for (k, shape) in [&[2usize, 3, 3, 4][..], &[5, 3][..]].iter().enumerate() {
        let seed = 6000 + 10 * k as u64;
        let n: usize = shape.iter().product();
        let c = *shape.last().unwrap();
        let x = to_f64(&uniform(n, -2.0, 3.0, seed));
        let dy = to_f64(&uniform(n, -1.0, 1.0, seed + 1));
        let gamma = to_f64(&uniform(c, 0.5, 1.5, seed + 2));
        let beta = to_f64(&uniform(c, -0.5, 0.5, seed + 3));
        let fwd = forward_train_cpu(&x, c, &gamma, &beta, EPS);
        let (dx, dgamma, dbeta) = backward_cpu(&x, &dy, c, &gamma, &fwd.mean, &fwd.inv_std);

        let f_x = |x: &[f64]| dot(&forward_train_cpu(x, c, &gamma, &beta, EPS).y, &dy);
        let f_g = |gm: &[f64]| dot(&forward_train_cpu(&x, c, gm, &beta, EPS).y, &dy);
        let f_b = |bt: &[f64]| dot(&forward_train_cpu(&x, c, &gamma, bt, EPS).y, &dy);
        let what = format!("batch_norm_backward_fd {shape:?}");
        assert_close_f64(
            &format!("{what} dx"),
            &dx,
            &fd_grad(f_x, &x, 1e-5),
            1e-7,
            1e-6,
        );
        assert_close_f64(
            &format!("{what} dgamma"),
            &dgamma,
            &fd_grad(f_g, &gamma, 1e-5),
            1e-7,
            1e-6,
        );
        assert_close_f64(
            &format!("{what} dbeta"),
            &dbeta,
            &fd_grad(f_b, &beta, 1e-5),
            1e-7,
            1e-6,
        );
    }
}

#[test]
fn batch_norm_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let shape = [3, 13, 13, 5];
    let (bn, _) = setup(g, &shape, 7000, BatchNormConfig::default());
    let x = Tensor::zeros(g, &shape, "x").unwrap();
    let y = Tensor::zeros(g, &[3, 13, 13, 6], "y").unwrap();
    let mut s = Step::new("bad");
    let err = bn
        .bn
        .forward_train(g, &mut s, &x, &bn.params(), &bn.saved(), &y)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_norm")
            && err.contains("[3, 13, 13, 5]")
            && err.contains("[3, 13, 13, 6]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");

    // A per-channel tensor of the wrong length, in the backward.
    let y = Tensor::zeros(g, &shape, "y").unwrap();
    let bad_gamma = Tensor::zeros(g, &[4], "gamma").unwrap();
    let dg = Tensor::zeros(g, &[5], "dgamma").unwrap();
    let db = Tensor::zeros(g, &[5], "dbeta").unwrap();
    let grads = BnGrads {
        dx: &y,
        dgamma: &dg,
        dbeta: &db,
    };
    let err = bn
        .bn
        .backward(
            g,
            &mut s,
            &BnBackward {
                x: &x,
                dy: &x,
                gamma: &bad_gamma,
                saved: bn.saved(),
            },
            &grads,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_norm") && err.contains("[5]") && err.contains("[4]"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");

    // An input of another shape than the op was built for.
    let x2 = Tensor::zeros(g, &[2, 13, 13, 5], "x").unwrap();
    let err = bn
        .bn
        .forward_eval(g, &mut s, &x2, &bn.params(), &x2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("batch_norm") && err.contains("[2, 13, 13, 5]"),
        "{err}"
    );
    assert!(s.is_empty());
}
