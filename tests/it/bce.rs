//! BCE with logits: GPU vs CPU for both reductions (with and without the
//! gradient), finiteness at |x| = 100, determinism and the label-noise
//! kernel (the shared checks, tests/checks/bce.rs, with their tolerances),
//! the CPU backward vs finite differences, and refusals.

use crate::common::*;
use vae_vs_gan::ops::bce::{self, BceReduction};
use vae_vs_gan::{Step, Tensor};

use crate::checks::bce::{self as check, outputs, REDS};

#[test]
fn bce_with_logits_matches_cpu() {
    pass(check::matches_cpu(gpu()));
}

/// The CPU gradient is the gradient of the CPU scalar loss: central
/// differences in f64 with h = 1e-6 (truncation ~h^2 |l'''| <= 1e-12, roundoff
/// ~1e-16 |loss| / h ~ 1e-9).
#[test]
fn bce_backward_cpu_matches_finite_differences() {
    let (rows, f) = (3, 7);
    let x = to_f64(&uniform(rows * f, -4.0, 4.0, 210));
    let z = to_f64(&uniform(rows * f, 0.0, 1.0, 211));
    for red in REDS {
        for scale in [1.0, 0.7] {
            let num = fd_grad(|x| bce::bce_cpu(x, &z, f, red, scale).loss, &x, 1e-6);
            let ana = bce::bce_cpu(&x, &z, f, red, scale).grad;
            assert_close_f64(&format!("bce_backward_fd {red:?}"), &ana, &num, 1e-8, 1e-6);
        }
    }
}

#[test]
fn bce_finite_at_extremes() {
    pass(check::finite_at_extremes(gpu()));
}

#[test]
fn bce_is_deterministic() {
    pass(check::deterministic(gpu()));
}

#[test]
fn bce_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let zbad = Tensor::zeros(g, &[4, 6], "z").unwrap();
    let o = outputs(g, &[4, 5]).unwrap();
    let mut s = Step::new("bad");
    let red = BceReduction::Mean;
    let e = bce::bce_with_logits(
        g,
        &mut s,
        &x,
        &zbad,
        &o.row,
        &o.loss,
        Some(&o.grad),
        red,
        1.0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("bce_with_logits") && e.contains("[4, 5]") && e.contains("[4, 6]"),
        "{e}"
    );
    let row5 = Tensor::zeros(g, &[5], "row").unwrap();
    assert!(bce::bce_with_logits(g, &mut s, &x, &x, &row5, &o.loss, None, red, 1.0).is_err());
    let loss2 = Tensor::zeros(g, &[2], "loss").unwrap();
    assert!(bce::bce_with_logits(g, &mut s, &x, &x, &o.row, &loss2, None, red, 1.0).is_err());
    assert!(
        bce::bce_with_logits(g, &mut s, &x, &x, &o.row, &o.loss, Some(&zbad), red, 1.0).is_err()
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
}

#[test]
fn bce_label_noise_matches_cpu() {
    pass(check::label_noise(gpu()));
}

#[test]
fn bce_label_noise_zero_is_the_plain_kernel_bit_for_bit() {
    pass(check::label_noise_zero_is_plain(gpu()));
}

/// The CPU gradient `sigmoid(x) - t` is the gradient of `softplus(x) - t x`
/// for targets past 1 too (label noise makes real targets `1 + F u`):
/// central differences as in `bce_backward_cpu_matches_finite_differences`.
#[test]
fn bce_backward_cpu_matches_finite_differences_for_targets_above_one() {
    let (rows, f) = (4, 5);
    let x = to_f64(&uniform(rows * f, -4.0, 4.0, 270));
    let z = to_f64(&uniform(rows * f, 0.0, 3.5, 271));
    for red in REDS {
        let num = fd_grad(|x| bce::bce_cpu(x, &z, f, red, 2.0).loss, &x, 1e-6);
        let ana = bce::bce_cpu(&x, &z, f, red, 2.0).grad;
        assert_close_f64("bce_backward_fd soft targets", &ana, &num, 1e-8, 1e-6);
    }
}

/// A label noise that is not a finite number >= 0, or a counter tensor that
/// is not one, is refused at record time, naming the op; nothing recorded.
#[test]
fn bce_label_noise_bad_settings_are_refused() {
    use vae_vs_gan::gpu::StepState;
    use vae_vs_gan::ops::bce::{bce_rows_label_noise, LabelNoise};
    use vae_vs_gan::ops::rng::Philox;
    let g = gpu();
    let shape = [4, 1];
    let x = Tensor::zeros(g, &shape, "x").unwrap();
    let o = outputs(g, &shape).unwrap();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let mut s = Step::new("bad");
    let red = BceReduction::Mean;
    for amount in [-0.05f32, f32::NAN, f32::INFINITY] {
        let noise = LabelNoise {
            amount,
            rng: Philox::new(0, 7),
            counters: &state.counters,
        };
        let e = bce_rows_label_noise(g, &mut s, &x, &x, noise, &o.row, &o.grad, red, 1.0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bce_with_logits") && e.contains("label noise") && e.contains(">= 0"),
            "{e}"
        );
    }
    let noise = LabelNoise {
        amount: 0.05,
        rng: Philox::new(0, 7),
        counters: &x, // f32, not the step counters
    };
    assert!(bce_rows_label_noise(g, &mut s, &x, &x, noise, &o.row, &o.grad, red, 1.0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
