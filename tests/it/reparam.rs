//! Reparameterisation z = mu + exp(0.5 logvar) eps on h = [mu | logvar]:
//! eps is the Philox normal (the same draws as fill_normal), z and the
//! backward match the CPU, the CPU backward matches finite differences
//! (including past the logvar clamp), and |x| = 100 stays finite.
//!
//! Tolerances: eps within rng::NORMAL_ATOL of the f64 Box-Muller (see its
//! doc). z is compared with the CPU formula applied to the GPU's own eps:
//! exp(0.5c) with |0.5c| <= 1.5 has error <= 3 + 2*1.5 = 6 ulp (WGSL), then
//! one multiply and one add: rtol 2e-6 (~17 ulp) plus atol 1e-6 for results
//! near 0 from cancellation of mu against the noise term (|terms| <= ~9, so
//! a few ulp of 9 is ~2e-6: atol 4e-6). The backward has the same exp and
//! two more multiplies: same tolerance.

use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::reparam::{self, LOGVAR_CLAMP};
use vae_vs_gan::ops::rng::{self, Philox, NORMAL_ATOL};
use vae_vs_gan::{Step, Tensor};

/// h = [mu | logvar] rows: mu in [-2, 2], logvar in [-3, 3].
fn make_h(n: usize, l: usize, seed: u64) -> Vec<f32> {
    let mu = uniform(n * l, -2.0, 2.0, seed);
    let lv = uniform(n * l, -3.0, 3.0, seed + 1);
    let mut h = Vec::with_capacity(2 * n * l);
    for r in 0..n {
        h.extend_from_slice(&mu[r * l..(r + 1) * l]);
        h.extend_from_slice(&lv[r * l..(r + 1) * l]);
    }
    h
}

const DIMS: [(usize, usize); 3] = [(1, 1), (3, 13), (129, 2)];

#[test]
fn reparam_forward_matches_cpu() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 4).unwrap();
    for (k, &(n, l)) in DIMS.iter().enumerate() {
        let r = Philox::new(500 + k as u64, 2);
        let h = make_h(n, l, 60 + 2 * k as u64);
        let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
        let eps = Tensor::zeros(g, &[n, l], "eps").unwrap();
        let z = Tensor::zeros(g, &[n, l], "z").unwrap();
        let fill = Tensor::zeros(g, &[n, l], "fill").unwrap();
        for t in [&eps, &z, &fill] {
            t.poison(g);
        }
        let mut s = Step::new("reparam");
        reparam::reparam_forward(g, &mut s, r, &state.counters, &ht, &eps, &z).unwrap();
        rng::fill_normal(g, &mut s, r, &state.counters, &fill).unwrap();
        run(&s);
        let eg = eps.read_f32(g).unwrap();
        assert_eq!(
            eg.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            fill.read_f32(g)
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
            "reparam eps is fill_normal's draw"
        );
        assert_close(
            &format!("reparam eps {n}x{l}"),
            &eg,
            &r.normal_cpu::<f32>(4, n * l),
            NORMAL_ATOL,
            1e-5,
        );
        assert_close(
            &format!("reparam z {n}x{l}"),
            &z.read_f32(g).unwrap(),
            &reparam::reparam_forward_cpu(&h, &eg, l),
            4e-6,
            2e-6,
        );
    }
}

#[test]
fn reparam_backward_matches_cpu() {
    let g = gpu();
    for (k, &(n, l)) in DIMS.iter().enumerate() {
        let mut h = make_h(n, l, 70 + 2 * k as u64);
        if n * l > 2 {
            h[l] = 31.0; // logvar past the clamp: zero logvar gradient
            h[2 * l - 1] = -40.0;
        }
        let eps = uniform(n * l, -3.0, 3.0, 80 + k as u64);
        let dz = uniform(n * l, -1.0, 1.0, 90 + k as u64);
        let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
        let et = Tensor::from_f32(g, &[n, l], &eps, "eps").unwrap();
        let dzt = Tensor::from_f32(g, &[n, l], &dz, "dz").unwrap();
        let dh = Tensor::zeros(g, &[n, 2 * l], "dh").unwrap();
        dh.poison(g);
        let mut s = Step::new("reparam bwd");
        reparam::reparam_backward(g, &mut s, &ht, &et, &dzt, &dh).unwrap();
        run(&s);
        let want = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
        let got = dh.read_f32(g).unwrap();
        assert_close(&format!("reparam dh {n}x{l}"), &got, &want, 4e-6, 2e-6);
        if n * l > 2 {
            assert_eq!(got[l], 0.0, "no logvar gradient past the clamp (31)");
            assert_eq!(
                got[2 * l - 1],
                0.0,
                "no logvar gradient past the clamp (-40)"
            );
        }
    }
}

/// The CPU backward is the gradient of `sum(z(h) * dz)` at fixed eps:
/// central differences in f64, h = 1e-6, truncation ~h^2 |z'''| < 1e-10.
/// Two logvars sit past the clamp (31 and -35), where both give 0. z at
/// logvar 31 is ~3e6, so f subtracts z(h0) elementwise before the dot: the
/// untouched elements then cancel exactly and do not swamp the difference.
#[test]
fn reparam_backward_cpu_matches_finite_differences() {
    let (n, l) = (3, 5);
    let mut h = to_f64(&make_h(n, l, 100));
    h[l] = 31.0;
    h[2 * l + l + 2] = -35.0;
    let mut eps = to_f64(&uniform(n * l, -2.0, 2.0, 101));
    // Small noise where exp(0.5 c) = 3.3e6, so z stays O(1) and the FD of
    // mu there is not lost to rounding; unclamped, the logvar gradient
    // would still be 0.5 * 3.3e6 * 1e-7 * dz ~ 0.1, easily seen.
    eps[0] = 1e-7;
    eps[l + 2] = -1e-7;
    let dz = to_f64(&uniform(n * l, -1.0, 1.0, 102));
    let z0 = reparam::reparam_forward_cpu(&h, &eps, l);
    let f = |h: &[f64]| {
        let z = reparam::reparam_forward_cpu(h, &eps, l);
        let dzv: Vec<f64> = z.iter().zip(&z0).map(|(a, b)| a - b).collect();
        dot(&dzv, &dz)
    };
    let num = fd_grad(f, &h, 1e-6);
    let ana = reparam::reparam_backward_cpu(&h, &eps, &dz, l);
    assert_close_f64("reparam_backward_fd", &ana, &num, 1e-7, 1e-6);
    assert_eq!(ana[l], 0.0);
}

/// mu and logvar at +-100: the clamp keeps exp(0.5 c) <= exp(15), so z and
/// dh are finite on GPU and CPU and agree (z up to ~3.3e6 * |eps|: rtol).
#[test]
fn reparam_finite_at_extremes() {
    let g = gpu();
    let (n, l) = (2, 3);
    let h = vec![
        100.0f32,
        -100.0,
        0.0,
        100.0,
        -100.0,
        0.0, //
        -100.0,
        100.0,
        5.0,
        LOGVAR_CLAMP,
        -LOGVAR_CLAMP,
        88.0,
    ];
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let r = Philox::new(1, 1);
    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let eps = Tensor::zeros(g, &[n, l], "eps").unwrap();
    let z = Tensor::zeros(g, &[n, l], "z").unwrap();
    let dh = Tensor::zeros(g, &[n, 2 * l], "dh").unwrap();
    let dz = Tensor::from_f32(g, &[n, l], &[1.0; 6], "dz").unwrap();
    let mut s = Step::new("extreme");
    reparam::reparam_forward(g, &mut s, r, &state.counters, &ht, &eps, &z).unwrap();
    reparam::reparam_backward(g, &mut s, &ht, &eps, &dz, &dh).unwrap();
    run(&s);
    let eg = eps.read_f32(g).unwrap();
    let zg = z.read_f32(g).unwrap();
    let dg = dh.read_f32(g).unwrap();
    assert!(zg.iter().chain(&dg).all(|v| v.is_finite()), "{zg:?} {dg:?}");
    let zc = reparam::reparam_forward_cpu(&h, &eg, l);
    let dc = reparam::reparam_backward_cpu(&h, &eg, &[1.0; 6], l);
    assert!(zc.iter().chain(&dc).all(|v| v.is_finite()));
    // exp(15) has up to 3 + 2*15 = 33 ulp of error in WGSL: rtol 4e-6.
    assert_close("reparam z extreme", &zg, &zc, 1e-5, 4e-6);
    assert_close("reparam dh extreme", &dg, &dc, 1e-5, 4e-6);
}

#[test]
fn reparam_mean_copies_mu() {
    let g = gpu();
    let (n, l) = (3, 13);
    let h = make_h(n, l, 110);
    let ht = Tensor::from_f32(g, &[n, 2 * l], &h, "h").unwrap();
    let z = Tensor::zeros(g, &[n, l], "z").unwrap();
    z.poison(g);
    let mut s = Step::new("mean");
    reparam::reparam_mean(g, &mut s, &ht, &z).unwrap();
    run(&s);
    let want: Vec<f32> = (0..n * l).map(|e| h[(e / l) * 2 * l + e % l]).collect();
    assert_eq!(z.read_f32(g).unwrap(), want);
}

#[test]
fn reparam_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let r = Philox::new(0, 0);
    let h = Tensor::zeros(g, &[4, 6], "h").unwrap();
    let odd = Tensor::zeros(g, &[4, 5], "odd").unwrap();
    let ok = Tensor::zeros(g, &[4, 3], "ok").unwrap();
    let bad = Tensor::zeros(g, &[4, 2], "bad").unwrap();
    let mut s = Step::new("bad");
    let e = reparam::reparam_forward(g, &mut s, r, &state.counters, &h, &ok, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("reparam") && e.contains("[4, 3]") && e.contains("[4, 2]"),
        "{e}"
    );
    assert!(reparam::reparam_forward(g, &mut s, r, &state.counters, &odd, &ok, &ok).is_err());
    assert!(reparam::reparam_backward(g, &mut s, &h, &ok, &ok, &odd).is_err());
    assert!(reparam::reparam_backward(g, &mut s, &h, &bad, &ok, &h).is_err());
    assert!(reparam::reparam_mean(g, &mut s, &h, &bad).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
