//! Adam: three GPU steps vs the CPU reference in both epsilon conventions
//! and at two step offsets; three steps in ONE submit equal three submits
//! bit for bit (the step t comes from the GPU counter); errors at record
//! time.
//!
//! Tolerances. m and v are one multiply-add each per step: a few f32 ulp
//! of the CPU's f64 value rounded to f32, rtol 1e-5 (atol 1e-7 for m,
//! which can cancel toward 0; 1e-12 for v >= 0). For p, the update is
//! `lr * r` with |r| <= ~3; its relative error is dominated by the bias
//! corrections: b^t by repeated squaring is off by ~2 log2(t) half-ulps,
//! and 1 - b2^t = 0.002 at t = 2 turns that into ~3e-5 relative, plus a
//! few ulp for sqrt and the divisions: |dp| <= 5e-5 * lr * 3 per step, and
//! p itself rounds to 0.5 ulp (3e-8 at |p| <= 1) per step. Three steps at
//! lr <= 1e-3: atol 1e-6, rtol 1e-6.

use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::optim::adam::{adam_update_cpu, Adam, AdamConfig, AdamTensors, EpsConvention};
use vae_vs_gan::{Gpu, Step, Tensor};

struct Slot {
    p: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
}

impl Slot {
    fn new(g: &Gpu, shape: &[usize], p0: &[f32]) -> Slot {
        let n: usize = shape.iter().product();
        Slot {
            p: Tensor::from_f32(g, shape, p0, "param").unwrap(),
            g: Tensor::zeros(g, shape, "grad").unwrap(),
            m: Tensor::from_f32(g, shape, &vec![0.0; n], "m").unwrap(),
            v: Tensor::from_f32(g, shape, &vec![0.0; n], "v").unwrap(),
        }
    }
    fn tensors(&self) -> AdamTensors<'_> {
        AdamTensors {
            param: &self.p,
            grad: &self.g,
            m: &self.m,
            v: &self.v,
        }
    }
}

/// A step: the Adam update, then the counter advance (always last).
fn record(g: &Gpu, adam: &Adam, state: &StepState, slot: &Slot) -> Step {
    let mut s = Step::new("adam_step");
    adam.record_update(g, &mut s, &state.counters, &slot.tensors())
        .unwrap();
    state.record_advance(g, &mut s).unwrap();
    s
}

#[test]
fn adam_three_steps_match_cpu() {
    let g = gpu();
    let configs = [
        AdamConfig::default(),
        AdamConfig {
            beta1: 0.5,
            ..AdamConfig::keras(2e-4)
        },
        AdamConfig::pytorch(1e-3),
        AdamConfig {
            beta1: 0.5,
            ..AdamConfig::pytorch(2e-4)
        },
    ];
    // Odd sizes: not multiples of the 256-thread workgroup.
    let shapes: [&[usize]; 2] = [&[5, 5, 3, 7], &[7, 9]];
    for (k, cfg) in configs.iter().enumerate() {
        for (j, shape) in shapes.iter().enumerate() {
            // start = 0: t = 1, 2, 3 (bias corrections matter most);
            // start = 999: t = 1000, 1001, 1002.
            for start in [0u32, 999] {
                let seed = 100 * k as u64 + 10 * j as u64 + start as u64;
                let n: usize = shape.iter().product();
                let adam = Adam::new(*cfg).unwrap();
                let state = StepState::new(g, 1, 4, start).unwrap();
                let mut p = uniform(n, -1.0, 1.0, seed);
                let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
                let slot = Slot::new(g, shape, &p);
                let s = record(g, &adam, &state, &slot);
                for step in 0..3u32 {
                    let grad = uniform(n, -1.0, 1.0, seed + 1 + step as u64);
                    slot.g.write_f32(g, &grad).unwrap();
                    run(&s);
                    adam_update_cpu(cfg, start + step + 1, &mut p, &grad, &mut m, &mut v);
                    let what = format!(
                        "adam {:?} lr {} b1 {} {shape:?} t={}",
                        cfg.convention,
                        cfg.lr,
                        cfg.beta1,
                        start + step + 1
                    );
                    assert_close(
                        &format!("{what} m"),
                        &slot.m.read_f32(g).unwrap(),
                        &m,
                        1e-7,
                        1e-5,
                    );
                    assert_close(
                        &format!("{what} v"),
                        &slot.v.read_f32(g).unwrap(),
                        &v,
                        1e-12,
                        1e-5,
                    );
                    assert_close(
                        &format!("{what} p"),
                        &slot.p.read_f32(g).unwrap(),
                        &p,
                        1e-6,
                        1e-6,
                    );
                }
                assert_eq!(state.steps_done(g).unwrap(), start as u64 + 3);
            }
        }
    }
}

/// The two conventions really differ where eps matters (tiny gradients,
/// large eps): a guard that the mode switch reaches the kernel.
#[test]
fn adam_eps_conventions_differ_as_specified() {
    let g = gpu();
    let n = 37;
    let grad: Vec<f32> = uniform(n, -1e-3, 1e-3, 7);
    let mut results = Vec::new();
    for conv in [EpsConvention::Keras, EpsConvention::PyTorch] {
        let cfg = AdamConfig {
            eps: 1e-3,
            convention: conv,
            ..AdamConfig::keras(1e-2)
        };
        let state = StepState::new(g, 1, 4, 0).unwrap();
        let p0 = vec![0.0f32; n];
        let slot = Slot::new(g, &[n], &p0);
        slot.g.write_f32(g, &grad).unwrap();
        run(&record(g, &Adam::new(cfg).unwrap(), &state, &slot));
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        adam_update_cpu(&cfg, 1, &mut p, &grad, &mut m, &mut v);
        let got = slot.p.read_f32(g).unwrap();
        assert_close(&format!("adam {conv:?} large eps"), &got, &p, 1e-9, 1e-5);
        results.push(got);
    }
    let diff = results[0]
        .iter()
        .zip(&results[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        diff > 1e-6,
        "adam Keras and PyTorch eps conventions gave the same update"
    );
}

/// The same recorded step three times in ONE submit gives the same bits as
/// three submits: each step reads its own t from the GPU counter.
#[test]
fn adam_three_steps_in_one_submit_equal_three_submits() {
    let g = gpu();
    let shape = [13, 13, 5];
    let n = 13 * 13 * 5;
    let p0 = uniform(n, -1.0, 1.0, 900);
    let grad = uniform(n, -1.0, 1.0, 901);
    for cfg in [AdamConfig::default(), AdamConfig::pytorch(1e-3)] {
        let adam = Adam::new(cfg).unwrap();
        let bits = |slot: &Slot| -> Vec<Vec<u32>> {
            [&slot.p, &slot.m, &slot.v]
                .iter()
                .map(|t| t.read_f32(g).unwrap().iter().map(|x| x.to_bits()).collect())
                .collect()
        };

        let state1 = StepState::new(g, 1, 4, 0).unwrap();
        let one = Slot::new(g, &shape, &p0);
        one.g.write_f32(g, &grad).unwrap();
        let s1 = record(g, &adam, &state1, &one);
        g.run(&[&s1, &s1, &s1]).unwrap();

        let state3 = StepState::new(g, 1, 4, 0).unwrap();
        let three = Slot::new(g, &shape, &p0);
        three.g.write_f32(g, &grad).unwrap();
        let s3 = record(g, &adam, &state3, &three);
        for _ in 0..3 {
            g.run(&[&s3]).unwrap();
        }

        assert_eq!(state1.steps_done(g).unwrap(), 3);
        assert_eq!(state3.steps_done(g).unwrap(), 3);
        assert!(
            bits(&one) == bits(&three),
            "adam {:?}: one submit of 3 steps differs from 3 submits",
            cfg.convention
        );

        // And both equal the CPU's t = 1, 2, 3 (a counter stuck at one t
        // would not).
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        for t in 1..=3 {
            adam_update_cpu(&cfg, t, &mut p, &grad, &mut m, &mut v);
        }
        assert_close(
            &format!("adam {:?} one-submit p", cfg.convention),
            &one.p.read_f32(g).unwrap(),
            &p,
            1e-6,
            1e-6,
        );
        // A counter stuck at t = 1 would give a different p: check the
        // test can tell.
        let (mut ps, mut ms, mut vs) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        for _ in 0..3 {
            adam_update_cpu(&cfg, 1, &mut ps, &grad, &mut ms, &mut vs);
        }
        let sep = p
            .iter()
            .zip(&ps)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            sep > 1e-5,
            "adam: t = 1,2,3 and t = 1,1,1 indistinguishable ({sep})"
        );
    }
}

#[test]
fn adam_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let state = StepState::new(g, 1, 4, 0).unwrap();
    let adam = Adam::new(AdamConfig::default()).unwrap();
    let p = Tensor::zeros(g, &[3, 5], "param").unwrap();
    let gr = Tensor::zeros(g, &[3, 5], "grad").unwrap();
    let m = Tensor::zeros(g, &[3, 5], "m").unwrap();
    let v = Tensor::zeros(g, &[5, 3], "v").unwrap();
    let mut s = Step::new("bad");
    let err = adam
        .record_update(
            g,
            &mut s,
            &state.counters,
            &AdamTensors {
                param: &p,
                grad: &gr,
                m: &m,
                v: &v,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("adam") && err.contains("[3, 5]") && err.contains("[5, 3]"),
        "{err}"
    );
    // The counter must be the u32 step counter, not an f32 tensor.
    let err = adam
        .record_update(
            g,
            &mut s,
            &p,
            &AdamTensors {
                param: &p,
                grad: &gr,
                m: &m,
                v: &m,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("adam") && err.contains("U32"), "{err}");
    assert!(s.is_empty(), "nothing recorded after a refused op");
    // Hyperparameters out of range.
    assert!(Adam::new(AdamConfig {
        beta2: 1.0,
        ..AdamConfig::default()
    })
    .is_err());
}
