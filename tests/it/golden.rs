//! The engine against PyTorch: golden fixtures computed in float64 by
//! `tests/fixtures/make_fixtures.py` (an independent library), compared with
//! both the CPU reference and the GPU kernels.
//!
//! Tolerances. A fixture value is the f64 result rounded to f32 (0.5 ulp,
//! 6e-8 relative). The CPU reference accumulates in f64 from the same f32
//! inputs, so it agrees to a few f32 ulp: rtol 1e-5, atol 1e-6 (values are
//! O(1)). The GPU sums in f32; its bounds are those of each op's own test
//! file (batch norm: reductions over R <= 252 rows, rtol 1e-4, atol 2e-5;
//! Adam: atol 1e-6, rtol 1e-6 as argued in tests/it/adam.rs).

use crate::common::*;
use crate::fixture_loader::{self, load};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::nn::WeightOp;
use vae_vs_gan::ops::batch_norm::{
    self, BatchNorm, BatchNormConfig, BnBackward, BnGrads, BnParams, BnSaved,
};
use vae_vs_gan::ops::gemm::{Epilogue, Fused};
use vae_vs_gan::optim::adam::{adam_update_cpu, Adam, AdamConfig, AdamTensors, EpsConvention};
use vae_vs_gan::{Step, Tensor};

const CPU_ATOL: f64 = 1e-6;
const CPU_RTOL: f64 = 1e-5;

#[test]
fn batch_norm_train_matches_pytorch_fixture() {
    let g = gpu();
    for name in ["batchnorm_nhwc", "batchnorm_dense"] {
        let f = load(name);
        let (shape, x) = f.tensor("x");
        let c = *shape.last().unwrap();
        let (eps, momentum) = (f.scalar("eps"), f.scalar("momentum"));
        let (_, gamma) = f.tensor("gamma");
        let (_, beta) = f.tensor("beta");
        let (_, dy) = f.tensor("dy");
        let want = |k: &str| f.tensor(k).1;

        // CPU reference.
        let fwd = batch_norm::forward_train_cpu(&x, c, &gamma, &beta, eps);
        assert_close(
            &format!("{name} cpu y"),
            &fwd.y,
            &want("y"),
            CPU_ATOL,
            CPU_RTOL,
        );
        assert_close(
            &format!("{name} cpu mean"),
            &fwd.mean,
            &want("batch_mean"),
            CPU_ATOL,
            CPU_RTOL,
        );
        assert_close(
            &format!("{name} cpu var"),
            &fwd.var,
            &want("batch_var"),
            CPU_ATOL,
            CPU_RTOL,
        );
        let (dx, dgamma, dbeta) =
            batch_norm::backward_cpu(&x, &dy, c, &gamma, &fwd.mean, &fwd.inv_std);
        assert_close(
            &format!("{name} cpu dx"),
            &dx,
            &want("dx"),
            CPU_ATOL,
            CPU_RTOL,
        );
        assert_close(
            &format!("{name} cpu dgamma"),
            &dgamma,
            &want("dgamma"),
            CPU_ATOL,
            CPU_RTOL,
        );
        assert_close(
            &format!("{name} cpu dbeta"),
            &dbeta,
            &want("dbeta"),
            CPU_ATOL,
            CPU_RTOL,
        );
        let mut rm = want("running_mean_in");
        let mut rv = want("running_var_in");
        batch_norm::running_update_cpu(&mut rm, &fwd.mean, momentum);
        batch_norm::running_update_cpu(&mut rv, &fwd.var, momentum);
        assert_close(
            &format!("{name} cpu running_mean"),
            &rm,
            &want("running_mean_out"),
            CPU_ATOL,
            CPU_RTOL,
        );
        assert_close(
            &format!("{name} cpu running_var"),
            &rv,
            &want("running_var_out"),
            CPU_ATOL,
            CPU_RTOL,
        );

        // GPU.
        let t = |k: &str, d: &[f32]| Tensor::from_f32(g, &[d.len()], d, k).unwrap();
        let xt = Tensor::from_f32(g, &shape, &x, "x").unwrap();
        let dyt = Tensor::from_f32(g, &shape, &dy, "dy").unwrap();
        let (gt, bt) = (t("gamma", &gamma), t("beta", &beta));
        let (rmt, rvt) = (
            t("rm", &want("running_mean_in")),
            t("rv", &want("running_var_in")),
        );
        let (mean, inv) = (
            Tensor::zeros(g, &[c], "mean").unwrap(),
            Tensor::zeros(g, &[c], "inv").unwrap(),
        );
        let y = Tensor::zeros(g, &shape, "y").unwrap();
        let dxt = Tensor::zeros(g, &shape, "dx").unwrap();
        let (dg, db) = (
            Tensor::zeros(g, &[c], "dg").unwrap(),
            Tensor::zeros(g, &[c], "db").unwrap(),
        );
        for p in [&y, &dxt, &dg, &db, &mean, &inv] {
            p.poison(g);
        }
        let cfg = BatchNormConfig {
            eps: eps as f32,
            momentum: momentum as f32,
            update_running: true,
            act: None,
        };
        let bn = BatchNorm::new(g, &shape, cfg).unwrap();
        let params = BnParams {
            gamma: &gt,
            beta: &bt,
            running_mean: &rmt,
            running_var: &rvt,
        };
        let saved = BnSaved {
            mean: &mean,
            inv_std: &inv,
        };
        let mut s = Step::new("bn");
        bn.forward_train(g, &mut s, &xt, &params, &saved, &y)
            .unwrap();
        let inputs = BnBackward {
            x: &xt,
            dy: &dyt,
            gamma: &gt,
            saved,
        };
        let grads = BnGrads {
            dx: &dxt,
            dgamma: &dg,
            dbeta: &db,
        };
        bn.backward(g, &mut s, &inputs, &grads).unwrap();
        run(&s);
        let (atol, rtol) = (2e-5, 1e-4);
        assert_close(
            &format!("{name} gpu y"),
            &y.read_f32(g).unwrap(),
            &want("y"),
            atol,
            rtol,
        );
        assert_close(
            &format!("{name} gpu dx"),
            &dxt.read_f32(g).unwrap(),
            &want("dx"),
            atol,
            rtol,
        );
        assert_close(
            &format!("{name} gpu dgamma"),
            &dg.read_f32(g).unwrap(),
            &want("dgamma"),
            atol,
            rtol,
        );
        assert_close(
            &format!("{name} gpu dbeta"),
            &db.read_f32(g).unwrap(),
            &want("dbeta"),
            atol,
            rtol,
        );
        assert_close(
            &format!("{name} gpu running_mean"),
            &rmt.read_f32(g).unwrap(),
            &want("running_mean_out"),
            atol,
            rtol,
        );
        assert_close(
            &format!("{name} gpu running_var"),
            &rvt.read_f32(g).unwrap(),
            &want("running_var_out"),
            atol,
            rtol,
        );
    }
}

#[test]
fn adam_matches_pytorch_fixture_in_both_conventions() {
    let g = gpu();
    let f = load("adam");
    let steps = f.int("steps");
    let (pshape, p0) = f.tensor("param_init");
    let (_, grads) = f.tensor("grads");
    let n = p0.len();
    for (conv, key) in [
        (EpsConvention::PyTorch, "torch_params"),
        (EpsConvention::Keras, "keras_params"),
    ] {
        let cfg = AdamConfig {
            lr: f.scalar("lr") as f32,
            beta1: f.scalar("beta1") as f32,
            beta2: f.scalar("beta2") as f32,
            eps: f.scalar("eps") as f32,
            convention: conv,
        };
        let (_, want) = f.tensor(key);
        let (_, want_m) = f.tensor("m");
        let (_, want_v) = f.tensor("v");

        // CPU reference, step by step.
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        for t in 0..steps {
            adam_update_cpu(
                &cfg,
                t as u32 + 1,
                &mut p,
                &grads[t * n..(t + 1) * n],
                &mut m,
                &mut v,
            );
            let what = format!("adam {conv:?} cpu step {}", t + 1);
            assert_close(&what, &p, &want[t * n..(t + 1) * n], 1e-7, 1e-6);
            assert_close(
                &format!("{what} m"),
                &m,
                &want_m[t * n..(t + 1) * n],
                1e-9,
                1e-5,
            );
            // beta2 = 0.999 as f32 is 0.99900001287: (1 - beta2) is off by 1.3e-5
            // relative from the fixture's exact decimal, and v inherits it (p does
            // not: the bias correction cancels it).
            assert_close(
                &format!("{what} v"),
                &v,
                &want_v[t * n..(t + 1) * n],
                1e-12,
                3e-5,
            );
        }

        // GPU: one recorded step, the gradient rewritten between submits.
        let state = StepState::new(g, 1, 1, 0).unwrap();
        let pt = Tensor::from_f32(g, &pshape, &p0, "p").unwrap();
        let gt = Tensor::zeros(g, &pshape, "g").unwrap();
        let mt = Tensor::zeros(g, &pshape, "m").unwrap();
        let vt = Tensor::zeros(g, &pshape, "v").unwrap();
        let adam = Adam::new(cfg).unwrap();
        let mut s = Step::new("adam");
        let ts = AdamTensors {
            param: &pt,
            grad: &gt,
            m: &mt,
            v: &vt,
        };
        adam.record_update(g, &mut s, &state.counters, &ts).unwrap();
        state.record_advance(g, &mut s).unwrap();
        for t in 0..steps {
            gt.write_f32(g, &grads[t * n..(t + 1) * n]).unwrap();
            run(&s);
            let what = format!("adam {conv:?} gpu step {}", t + 1);
            assert_close(
                &what,
                &pt.read_f32(g).unwrap(),
                &want[t * n..(t + 1) * n],
                1e-6,
                1e-6,
            );
        }
    }
}

/// BCE with logits, both reductions. The GPU sums F = 10 terms per row in
/// f32 (|terms| <= 100 at the |x| = 100 logits): atol F * 2e-6 per row as in
/// tests/it/bce.rs, rtol 1e-5.
#[test]
fn bce_matches_pytorch_fixture() {
    use vae_vs_gan::ops::bce::{bce_cpu, bce_with_logits, BceReduction};
    let g = gpu();
    let f = load("bce_logits");
    let (shape, x) = f.tensor("logits");
    let (_, z) = f.tensor("targets");
    let (n, feat) = (shape[0], shape[1]);
    let cases = [
        (BceReduction::Mean, "loss_mean", "dlogits_mean"),
        (
            BceReduction::SumPerSampleMean,
            "loss_sum_mean",
            "dlogits_sum_mean",
        ),
    ];
    for (red, loss_key, grad_key) in cases {
        let want_loss = f.scalar(loss_key);
        let (_, want_grad) = f.tensor(grad_key);
        let cpu = bce_cpu(&x, &z, feat, red, 1.0);
        assert!(
            (cpu.loss - want_loss).abs() <= 1e-6 + 1e-6 * want_loss.abs(),
            "bce {red:?} cpu loss {} vs {want_loss}",
            cpu.loss
        );
        assert_close(
            &format!("bce {red:?} cpu grad"),
            &cpu.grad,
            &want_grad,
            CPU_ATOL,
            CPU_RTOL,
        );
        if red == BceReduction::SumPerSampleMean {
            let (_, rows) = f.tensor("loss_per_sample");
            assert_close("bce cpu rows", &cpu.rows, &rows, CPU_ATOL, CPU_RTOL);
        }

        let xt = Tensor::from_f32(g, &shape, &x, "x").unwrap();
        let zt = Tensor::from_f32(g, &shape, &z, "z").unwrap();
        let rows = Tensor::zeros(g, &[n], "rows").unwrap();
        let loss = Tensor::zeros(g, &[1], "loss").unwrap();
        let grad = Tensor::zeros(g, &shape, "grad").unwrap();
        for t in [&rows, &loss, &grad] {
            t.poison(g);
        }
        let mut s = Step::new("bce");
        bce_with_logits(g, &mut s, &xt, &zt, &rows, &loss, Some(&grad), red, 1.0).unwrap();
        run(&s);
        let atol = feat as f64 * 2e-6;
        assert_close(
            &format!("bce {red:?} gpu loss"),
            &loss.read_f32(g).unwrap(),
            &[want_loss as f32],
            atol,
            1e-5,
        );
        assert_close(
            &format!("bce {red:?} gpu grad"),
            &grad.read_f32(g).unwrap(),
            &want_grad,
            1e-6,
            1e-5,
        );
    }
}

/// Gaussian KL on `[N, 2L]` = mu | logvar. GPU: L = 8 terms per row with
/// |terms| <= e^3: atol L * 3e-5 as in tests/it/kl.rs, rtol 1e-5.
#[test]
fn kl_matches_pytorch_fixture() {
    use vae_vs_gan::ops::kl::{kl_cpu, kl_divergence};
    let g = gpu();
    let f = load("gaussian_kl");
    let (shape, mu) = f.tensor("mu");
    let (_, lv) = f.tensor("logvar");
    let (n, l) = (shape[0], shape[1]);
    let h: Vec<f32> = (0..n)
        .flat_map(|r| {
            mu[r * l..(r + 1) * l]
                .iter()
                .chain(&lv[r * l..(r + 1) * l])
                .copied()
        })
        .collect();
    let (_, dmu) = f.tensor("dmu");
    let (_, dlv) = f.tensor("dlogvar");
    let want_dh: Vec<f32> = (0..n)
        .flat_map(|r| {
            dmu[r * l..(r + 1) * l]
                .iter()
                .chain(&dlv[r * l..(r + 1) * l])
                .copied()
        })
        .collect();
    let want_loss = f.scalar("kl_mean");
    let (_, want_rows) = f.tensor("kl_per_sample");

    let cpu = kl_cpu(&h, l, 1.0);
    assert!((cpu.loss - want_loss).abs() <= 1e-6 + 1e-6 * want_loss.abs());
    assert_close("kl cpu rows", &cpu.rows, &want_rows, CPU_ATOL, CPU_RTOL);
    assert_close("kl cpu grad", &cpu.grad, &want_dh, CPU_ATOL, CPU_RTOL);

    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let rows = Tensor::zeros(g, &[n], "rows").unwrap();
    let loss = Tensor::zeros(g, &[1], "loss").unwrap();
    let dh = Tensor::zeros(g, &[n, 2 * l], "dh").unwrap();
    for t in [&rows, &loss, &dh] {
        t.poison(g);
    }
    let mut s = Step::new("kl");
    kl_divergence(g, &mut s, &ht, &rows, &loss, Some(&dh), false, 1.0).unwrap();
    run(&s);
    let atol = l as f64 * 3e-5;
    assert_close(
        "kl gpu loss",
        &loss.read_f32(g).unwrap(),
        &[want_loss as f32],
        atol,
        1e-5,
    );
    assert_close(
        "kl gpu rows",
        &rows.read_f32(g).unwrap(),
        &want_rows,
        atol,
        1e-5,
    );
    assert_close(
        "kl gpu grad",
        &dh.read_f32(g).unwrap(),
        &want_dh,
        1e-6,
        1e-5,
    );
}

/// Convs with Keras padding (asymmetric `same` at stride 1 and 2, `valid`
/// at stride 2), all three directions, CPU and GPU. GPU tolerance as in
/// tests/it/conv2d.rs: f32 rounding grows like sqrt(K) over the reduction
/// length K, so atol 2e-5 * sqrt(K / 100), rtol 1e-4.
#[test]
fn conv2d_matches_pytorch_fixtures() {
    use vae_vs_gan::ops::bias::bias_grad_cpu;
    use vae_vs_gan::ops::conv2d::{self, Conv2d, Padding};
    for name in [
        "conv2d_same_s1_3x3",
        "conv2d_same_s1_4x4",
        "conv2d_same_s2_5x5",
        "conv2d_same_s2_3x3",
        "conv2d_valid_s2_3x3",
    ] {
        let f = load(name);
        let pad = Padding {
            top: f.int("pad_top"),
            bottom: f.int("pad_bottom"),
            left: f.int("pad_left"),
            right: f.int("pad_right"),
        };
        let conv = Conv2d::new(f.int("kernel_h"), f.int("kernel_w"), f.int("stride"), pad);
        let (xs, x) = f.tensor("x");
        let (ws, w) = f.tensor("w");
        let (_, b) = f.tensor("b");
        let (ys, dy) = f.tensor("dy");
        let want = |k: &str| f.tensor(k).1;
        let d = conv
            .dims("golden", xs[0], xs[1], xs[2], xs[3], ws[3])
            .unwrap();
        assert_eq!(d.y_shape().to_vec(), ys, "{name}: output shape");

        let y = conv2d::forward_cpu(&d, &x, &w, Some(&b));
        assert_close(&format!("{name} cpu y"), &y, &want("y"), CPU_ATOL, CPU_RTOL);
        let dx = conv2d::backward_data_cpu(&d, &dy, &w);
        assert_close(
            &format!("{name} cpu dx"),
            &dx,
            &want("dx"),
            CPU_ATOL,
            CPU_RTOL,
        );
        let dw = conv2d::backward_weights_cpu(&d, &x, &dy);
        assert_close(
            &format!("{name} cpu dw"),
            &dw,
            &want("dw"),
            CPU_ATOL,
            CPU_RTOL,
        );
        let db = bias_grad_cpu(&dy, ws[3]);
        assert_close(
            &format!("{name} cpu db"),
            &db,
            &want("db"),
            CPU_ATOL,
            CPU_RTOL,
        );

        // Reduction lengths: forward KH*KW*Cin, backward data KH*KW*Cout,
        // backward weights N*OH*OW.
        let k = [
            ws[0] * ws[1] * ws[2],
            ws[0] * ws[1] * ws[3],
            ys[0] * ys[1] * ys[2],
        ];
        gpu_matches_fixture(name, &conv, &f, k);
    }
}

/// Transposed convs (Keras `Conv2DTranspose` `same`, stride 1 and 2), all
/// three directions, CPU and GPU; tolerances as for the convs.
#[test]
fn conv_transpose2d_matches_pytorch_fixtures() {
    use vae_vs_gan::ops::conv2d::Padding;
    use vae_vs_gan::ops::conv_transpose2d::{self as ct, ConvTranspose2d};
    for name in [
        "conv_transpose_same_s1_5x5",
        "conv_transpose_same_s2_5x5",
        "conv_transpose_same_s2_3x3",
    ] {
        let f = load(name);
        let pad = Padding {
            top: f.int("pad_top"),
            bottom: f.int("pad_bottom"),
            left: f.int("pad_left"),
            right: f.int("pad_right"),
        };
        let (oh, ow) = (f.int("out_h"), f.int("out_w"));
        let op = ConvTranspose2d::new(
            f.int("kernel_h"),
            f.int("kernel_w"),
            f.int("stride"),
            pad,
            oh,
            ow,
        );
        let (xs, x) = f.tensor("x");
        let (ws, w) = f.tensor("w");
        let (_, b) = f.tensor("b");
        let (_, dy) = f.tensor("dy");
        let want = |k: &str| f.tensor(k).1;
        let d = op
            .dims("golden", xs[0], xs[1], xs[2], xs[3], ws[2])
            .unwrap();

        let y = ct::forward_cpu(&d, &x, &w, Some(&b));
        assert_close(&format!("{name} cpu y"), &y, &want("y"), CPU_ATOL, CPU_RTOL);
        let dx = ct::backward_data_cpu(&d, &dy, &w);
        assert_close(
            &format!("{name} cpu dx"),
            &dx,
            &want("dx"),
            CPU_ATOL,
            CPU_RTOL,
        );
        let dw = ct::backward_weights_cpu(&d, &x, &dy);
        assert_close(
            &format!("{name} cpu dw"),
            &dw,
            &want("dw"),
            CPU_ATOL,
            CPU_RTOL,
        );

        // The adjoint conv's lengths, roles swapped.
        let k = [
            ws[0] * ws[1] * ws[3],
            ws[0] * ws[1] * ws[2],
            xs[0] * xs[1] * xs[2],
        ];
        gpu_matches_fixture(name, &op, &f, k);
    }
}

/// Run forward, backward data and backward weights of `op` on the GPU with
/// the fixture's x, w, b, dy (outputs poisoned) and compare y, dx, dw with
/// the fixture. `k`: the three reduction lengths; f32 rounding grows like
/// sqrt(K), so atol 2e-5 * sqrt(K / 100), rtol 1e-4.
fn gpu_matches_fixture(name: &str, op: &impl WeightOp, f: &fixture_loader::Fixture, k: [usize; 3]) {
    let g = gpu();
    let t = |key: &str| {
        let (s, v) = f.tensor(key);
        Tensor::from_f32(g, &s, &v, key).unwrap()
    };
    let (x, w, b, dy) = (t("x"), t("w"), t("b"), t("dy"));
    let y = Tensor::zeros(g, dy.shape(), "y").unwrap();
    let dx = Tensor::zeros(g, x.shape(), "dx").unwrap();
    let dw = Tensor::zeros(g, w.shape(), "dw").unwrap();
    for p in [&y, &dx, &dw] {
        p.poison(g);
    }
    let mut s = Step::new(name);
    let scratch = [
        op.forward(g, &mut s, &x, &w, &Fused::bias(Some(&b)), &y)
            .unwrap(),
        op.backward_data(g, &mut s, &dy, &w, &Epilogue::NONE, &dx)
            .unwrap(),
        op.backward_weights(g, &mut s, &x, &dy, &dw).unwrap(),
    ];
    s.retain(scratch.into_iter().flat_map(|sc| sc.tensors));
    run(&s);
    for ((out, key), k) in [(&y, "y"), (&dx, "dx"), (&dw, "dw")].into_iter().zip(k) {
        let atol = 2e-5 * (k as f64 / 100.0).sqrt().max(1.0);
        assert_close(
            &format!("{name} gpu {key}"),
            &out.read_f32(g).unwrap(),
            &f.tensor(key).1,
            atol,
            1e-4,
        );
    }
}
