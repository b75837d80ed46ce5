//! The one-sample KL estimate `log q(z|x) - log p(z)` on h = [mu | logvar],
//! eps and z (src/ops/kl_mc.rs): GPU vs CPU, the accumulate mode on top of
//! reparam_backward and finiteness at |x| = 100 (the shared checks,
//! tests/checks/kl_mc.rs, with their tolerances), the CPU backward against
//! central differences of the loss as a function of h with z = mu +
//! exp(c/2) eps recomputed (the total derivative through z), the estimate
//! and its gradient averaged over many eps against the analytic KL's (the
//! estimate is unbiased), and shape refusal.

use crate::checks::kl::{make_h, outputs};
use crate::checks::kl_mc as check;
use crate::common::*;
use vae_vs_gan::ops::kl::kl_cpu;
use vae_vs_gan::ops::kl_mc::{self, kl_mc_cpu};
use vae_vs_gan::ops::reparam::reparam_forward_cpu;
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::{Step, Tensor};

#[test]
fn kl_mc_matches_cpu() {
    pass(check::matches_cpu(gpu()));
}

#[test]
fn kl_mc_accumulates_onto_reparam_backward() {
    pass(check::accumulates_onto_reparam_backward(gpu()));
}

/// The CPU gradient is the total derivative: central differences (step
/// 1e-6) of the f64 loss as a function of h alone, eps held fixed and
/// z = mu + exp(c/2) eps recomputed from h, in f64 (truncation ~1e-12,
/// roundoff ~1e-16 |loss| / h ~ 1e-9). A gradient that left out the path
/// through z (or took only it) fails: that path is what makes d/dmu = z
/// rather than 0 and d/dlogvar differ from -0.5.
#[test]
fn kl_mc_backward_cpu_is_the_total_derivative() {
    let (n, l) = (3, 4);
    let h = to_f64(&make_h(n, l, 730));
    let eps: Vec<f64> = Philox::new(731, 1).normal_cpu(0, n * l);
    for scale in [1.0, 0.4] {
        let loss = |h: &[f64]| {
            let z = reparam_forward_cpu(h, &eps, l);
            kl_mc_cpu(h, &eps, &z, l, scale).loss
        };
        let num = fd_grad(loss, &h, 1e-6);
        let z = reparam_forward_cpu(&h, &eps, l);
        let ana = kl_mc_cpu(&h, &eps, &z, l, scale).grad;
        assert_close_f64("kl_mc_backward_fd", &ana, &num, 1e-8, 1e-6);
    }
}

/// The estimate is unbiased: over M = 20000 eps draws (the Philox normals,
/// f64), its mean is the analytic KL, and so is its gradient's mean (E[z] =
/// mu; E[0.5 z eps exp(c/2) - 0.5] = 0.5 (exp(c) - 1)), within 5 standard
/// errors of the sample means (a correct estimator fails this with
/// probability ~6e-7 per figure; the draws are fixed, so the test is
/// deterministic). A sign or factor slip in either fails by many errors.
#[test]
fn kl_mc_is_unbiased_for_the_analytic_kl() {
    let (n, l, m) = (2, 3, 20_000);
    let h = to_f64(&make_h(n, l, 740));
    let rng = Philox::new(741, 1);
    let exact = kl_cpu(&h, l, 1.0);
    let k = 1 + h.len();
    let (mut sum, mut sq) = (vec![0.0; k], vec![0.0; k]);
    for s in 0..m {
        let eps: Vec<f64> = rng.normal_cpu(s as u32, n * l);
        let z = reparam_forward_cpu(&h, &eps, l);
        let e = kl_mc_cpu(&h, &eps, &z, l, 1.0);
        for (i, v) in std::iter::once(e.loss).chain(e.grad).enumerate() {
            sum[i] += v;
            sq[i] += v * v;
        }
    }
    for (i, want) in std::iter::once(exact.loss)
        .chain(exact.grad.iter().copied())
        .enumerate()
    {
        let mean = sum[i] / m as f64;
        let var = (sq[i] / m as f64 - mean * mean).max(0.0);
        let se = (var / m as f64).sqrt();
        let what = if i == 0 {
            "loss".into()
        } else {
            format!("grad {}", i - 1)
        };
        eprintln!("kl_mc mean {what}: {mean:.5} vs analytic {want:.5} (se {se:.1e})");
        assert!(
            (mean - want).abs() <= 5.0 * se + 1e-12,
            "kl_mc {what}: mean over {m} draws {mean}, analytic {want}, standard error {se}"
        );
    }
}

#[test]
fn kl_mc_finite_at_extremes() {
    pass(check::finite_at_extremes(gpu()));
}

#[test]
fn kl_mc_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let h = Tensor::zeros(g, &[4, 6], "h").unwrap();
    let e = Tensor::zeros(g, &[4, 3], "eps").unwrap();
    let bad = Tensor::zeros(g, &[4, 2], "bad").unwrap();
    let o = outputs(g, 4, 3).unwrap();
    let mut s = Step::new("bad");
    let msg = kl_mc::kl_mc(g, &mut s, &h, &bad, &e, &o.row, &o.loss, None, false, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("kl_mc") && msg.contains("[4, 3]") && msg.contains("[4, 2]"),
        "{msg}"
    );
    assert!(kl_mc::kl_mc(g, &mut s, &h, &e, &bad, &o.row, &o.loss, None, false, 1.0).is_err());
    let odd = Tensor::zeros(g, &[4, 5], "odd").unwrap();
    assert!(kl_mc::kl_mc(g, &mut s, &odd, &e, &e, &o.row, &o.loss, None, false, 1.0).is_err());
    let row3 = Tensor::zeros(g, &[3], "row3").unwrap();
    assert!(kl_mc::kl_mc(g, &mut s, &h, &e, &e, &row3, &o.loss, None, false, 1.0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
