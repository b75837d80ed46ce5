//! Inverted dropout: GPU vs the CPU twin bit for bit (same seed, stream and
//! step counter give the same mask; `x * mask` rounds once on both sides, so
//! no tolerance is needed), the backward applies the forward's mask, eval is
//! the identity, masks change with the step, and bad input is refused.

use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::ops::dropout::{self, keep_scale};
use vae_vs_gan::ops::rng::Philox;
use vae_vs_gan::{Step, Tensor};

const SHAPES: [&[usize]; 3] = [&[1], &[1001], &[3, 5, 13, 13]];

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn dropout_forward_matches_cpu_bit_for_bit() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 3).unwrap();
    for (j, shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        for (k, p) in [0.0f32, 0.25, 0.5].into_iter().enumerate() {
            let r = Philox::new(1234 + j as u64, 5 + k as u32);
            let x = uniform(n, -2.0, 2.0, 40 + (j * 3 + k) as u64);
            let xt = Tensor::from_f32(g, shape, &x, "x").unwrap();
            let mt = Tensor::zeros(g, shape, "mask").unwrap();
            let yt = Tensor::zeros(g, shape, "y").unwrap();
            mt.poison(g);
            yt.poison(g);
            let mut s = Step::new("dropout");
            dropout::dropout_forward(g, &mut s, r, &state.counters, p, &xt, &mt, &yt).unwrap();
            run(&s);
            let mask = dropout::dropout_mask_cpu(r, 3, n, p);
            let mg = mt.read_f32(g).unwrap();
            assert_eq!(bits(&mg), bits(&mask), "mask {shape:?} p={p}");
            assert_eq!(
                bits(&yt.read_f32(g).unwrap()),
                bits(&dropout::dropout_forward_cpu(&x, &mask)),
                "y {shape:?} p={p}"
            );
            let kept = mg.iter().filter(|&&m| m != 0.0).count();
            assert!(mg.iter().all(|&m| m == 0.0 || m == keep_scale(p)));
            if n > 1000 {
                // binomial: sd of the kept fraction <= 0.5/sqrt(1001) = 0.016
                let frac = kept as f64 / n as f64;
                assert!(
                    (frac - (1.0 - p as f64)).abs() < 0.06,
                    "kept {frac} at p={p}"
                );
            }
            if p == 0.0 {
                assert_eq!(kept, n, "p = 0 keeps everything");
            }
        }
    }
}

/// Forward then backward on the GPU, the backward reading the forward's
/// mask: dx equals the CPU `dy * mask` bit for bit and is zero exactly where
/// the forward dropped.
#[test]
fn dropout_backward_applies_the_forward_mask() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let shape = [3, 5, 13, 13];
    let n: usize = shape.iter().product();
    let r = Philox::new(77, 1);
    let p = 0.3;
    let x = away_from_zero(n, 0.01, 50);
    let dy = uniform(n, -1.0, 1.0, 51);
    let xt = Tensor::from_f32(g, &shape, &x, "x").unwrap();
    let dyt = Tensor::from_f32(g, &shape, &dy, "dy").unwrap();
    let mt = Tensor::zeros(g, &shape, "mask").unwrap();
    let yt = Tensor::zeros(g, &shape, "y").unwrap();
    let dxt = Tensor::zeros(g, &shape, "dx").unwrap();
    dxt.poison(g);
    let mut s = Step::new("dropout fwd+bwd");
    dropout::dropout_forward(g, &mut s, r, &state.counters, p, &xt, &mt, &yt).unwrap();
    dropout::dropout_backward(g, &mut s, &mt, &dyt, &dxt).unwrap();
    state.record_advance(g, &mut s).unwrap();
    run(&s);
    let mask = dropout::dropout_mask_cpu(r, 0, n, p);
    let dx = dxt.read_f32(g).unwrap();
    assert_eq!(bits(&dx), bits(&dropout::dropout_backward_cpu(&mask, &dy)));
    let y = yt.read_f32(g).unwrap();
    for i in 0..n {
        assert_eq!(y[i] == 0.0, dx[i] == 0.0 || dy[i] == 0.0, "element {i}");
    }
    // The next step draws another mask.
    run(&s);
    let m2 = mt.read_f32(g).unwrap();
    assert_eq!(bits(&m2), bits(&dropout::dropout_mask_cpu(r, 1, n, p)));
    assert_ne!(
        bits(&m2),
        bits(&mask),
        "successive steps drop different elements"
    );
}

#[test]
fn dropout_eval_is_identity() {
    let g = gpu();
    let n = 1001;
    let x = uniform(n, -3.0, 3.0, 52);
    let xt = Tensor::from_f32(g, &[n], &x, "x").unwrap();
    let yt = Tensor::zeros(g, &[n], "y").unwrap();
    yt.poison(g);
    let mut s = Step::new("eval");
    dropout::dropout_eval(g, &mut s, &xt, &yt).unwrap();
    run(&s);
    assert_eq!(bits(&yt.read_f32(g).unwrap()), bits(&x));
}

/// dropout is linear given its mask: the CPU backward is the gradient of
/// `sum(forward(x) * dy)`; central differences with h = 1e-6 are exact up to
/// f64 rounding (~1e-10).
#[test]
fn dropout_backward_cpu_matches_finite_differences() {
    let r = Philox::new(3, 3);
    let n = 41;
    let mask = dropout::dropout_mask_cpu(r, 2, n, 0.4);
    let x = to_f64(&uniform(n, -1.0, 1.0, 53));
    let dy = to_f64(&uniform(n, -1.0, 1.0, 54));
    let num = fd_grad(
        |x| dot(&dropout::dropout_forward_cpu(x, &mask), &dy),
        &x,
        1e-6,
    );
    let ana = dropout::dropout_backward_cpu(&mask, &dy);
    assert_close_f64("dropout_backward_fd", &ana, &num, 1e-8, 1e-6);
}

#[test]
fn dropout_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let r = Philox::new(0, 0);
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let bad = Tensor::zeros(g, &[4, 6], "bad").unwrap();
    let ok = Tensor::zeros(g, &[4, 5], "ok").unwrap();
    let mut s = Step::new("bad");
    let e = dropout::dropout_forward(g, &mut s, r, &state.counters, 0.5, &x, &bad, &ok)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("dropout") && e.contains("[4, 5]") && e.contains("[4, 6]"),
        "{e}"
    );
    assert!(dropout::dropout_forward(g, &mut s, r, &state.counters, 1.0, &x, &ok, &ok).is_err());
    assert!(dropout::dropout_forward(g, &mut s, r, &state.counters, -0.1, &x, &ok, &ok).is_err());
    assert!(dropout::dropout_backward(g, &mut s, &x, &bad, &ok).is_err());
    assert!(dropout::dropout_eval(g, &mut s, &x, &bad).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
