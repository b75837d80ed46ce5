//! Adam: three GPU steps vs the CPU reference in both epsilon conventions
//! and at two step offsets; the conventions differ where eps matters; three
//! steps in ONE submit equal three submits bit for bit (the step t comes
//! from the GPU counter).
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

use super::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::optim::adam::{adam_update_cpu, Adam, AdamConfig, AdamTensors, EpsConvention};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("adam three steps", three_steps(g).await);
    r.record("adam eps conventions differ", eps_conventions(g).await);
    r.record("adam one submit equals three", one_submit(g).await);
}

struct Slot {
    p: Tensor,
    g: Tensor,
    m: Tensor,
    v: Tensor,
}

impl Slot {
    fn new(g: &Gpu, shape: &[usize], p0: &[f32]) -> Result<Slot, Failure> {
        let n: usize = shape.iter().product();
        Ok(Slot {
            p: tensor(g, shape, p0, "param")?,
            g: Tensor::zeros(g, shape, "grad")?,
            m: tensor(g, shape, &vec![0.0; n], "m")?,
            v: tensor(g, shape, &vec![0.0; n], "v")?,
        })
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
fn record(g: &Gpu, adam: &Adam, state: &StepState, slot: &Slot) -> Result<Step, Failure> {
    let mut s = Step::new("adam_step");
    adam.record_update(g, &mut s, &state.counters, &slot.tensors())?;
    state.record_advance(g, &mut s)?;
    Ok(s)
}

/// Steps completed, read without blocking.
async fn steps_done(g: &Gpu, state: &StepState) -> Result<u64, Failure> {
    Ok(state.snapshot_async(g).await?.steps_done)
}

pub async fn three_steps(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
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
                let adam = Adam::new(*cfg)?;
                let state = StepState::new(g, 1, 4, start)?;
                let mut p = uniform(n, -1.0, 1.0, seed);
                let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
                let slot = Slot::new(g, shape, &p)?;
                let s = record(g, &adam, &state, &slot)?;
                for step in 0..3u32 {
                    let grad = uniform(n, -1.0, 1.0, seed + 1 + step as u64);
                    slot.g.write_f32(g, &grad)?;
                    run(g, &[&s])?;
                    adam_update_cpu(cfg, start + step + 1, &mut p, &grad, &mut m, &mut v);
                    let what = format!(
                        "adam {:?} lr {} b1 {} {shape:?} t={}",
                        cfg.convention,
                        cfg.lr,
                        cfg.beta1,
                        start + step + 1
                    );
                    worst.close(
                        &format!("{what} m"),
                        &read(g, &slot.m).await?,
                        &m,
                        1e-7,
                        1e-5,
                    )?;
                    worst.close(
                        &format!("{what} v"),
                        &read(g, &slot.v).await?,
                        &v,
                        1e-12,
                        1e-5,
                    )?;
                    worst.close(
                        &format!("{what} p"),
                        &read(g, &slot.p).await?,
                        &p,
                        1e-6,
                        1e-6,
                    )?;
                }
                let done = steps_done(g, &state).await?;
                ensure(done == start as u64 + 3, || {
                    format!("adam: {done} steps done, want {}", start as u64 + 3)
                })?;
            }
        }
    }
    worst.done()
}

/// The two conventions really differ where eps matters (tiny gradients,
/// large eps): a guard that the mode switch reaches the kernel.
pub async fn eps_conventions(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let n = 37;
    let grad: Vec<f32> = uniform(n, -1e-3, 1e-3, 7);
    let mut results = Vec::new();
    for conv in [EpsConvention::Keras, EpsConvention::PyTorch] {
        let cfg = AdamConfig {
            eps: 1e-3,
            convention: conv,
            ..AdamConfig::keras(1e-2)
        };
        let state = StepState::new(g, 1, 4, 0)?;
        let p0 = vec![0.0f32; n];
        let slot = Slot::new(g, &[n], &p0)?;
        slot.g.write_f32(g, &grad)?;
        run(g, &[&record(g, &Adam::new(cfg)?, &state, &slot)?])?;
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        adam_update_cpu(&cfg, 1, &mut p, &grad, &mut m, &mut v);
        let got = read(g, &slot.p).await?;
        worst.close(&format!("adam {conv:?} large eps"), &got, &p, 1e-9, 1e-5)?;
        results.push(got);
    }
    let diff = results[0]
        .iter()
        .zip(&results[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    ensure(diff > 1e-6, || {
        "adam Keras and PyTorch eps conventions gave the same update".to_string()
    })?;
    worst.done()
}

/// p, m and v of `slot`, as bits.
async fn bits(g: &Gpu, slot: &Slot) -> Result<Vec<Vec<u32>>, Failure> {
    let mut out = Vec::new();
    for t in [&slot.p, &slot.m, &slot.v] {
        out.push(super::bits(&read(g, t).await?));
    }
    Ok(out)
}

/// The same recorded step three times in ONE submit gives the same bits as
/// three submits: each step reads its own t from the GPU counter.
pub async fn one_submit(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let shape = [13, 13, 5];
    let n = 13 * 13 * 5;
    let p0 = uniform(n, -1.0, 1.0, 900);
    let grad = uniform(n, -1.0, 1.0, 901);
    for cfg in [AdamConfig::default(), AdamConfig::pytorch(1e-3)] {
        let adam = Adam::new(cfg)?;

        let state1 = StepState::new(g, 1, 4, 0)?;
        let one = Slot::new(g, &shape, &p0)?;
        one.g.write_f32(g, &grad)?;
        let s1 = record(g, &adam, &state1, &one)?;
        run(g, &[&s1, &s1, &s1])?;

        let state3 = StepState::new(g, 1, 4, 0)?;
        let three = Slot::new(g, &shape, &p0)?;
        three.g.write_f32(g, &grad)?;
        let s3 = record(g, &adam, &state3, &three)?;
        for _ in 0..3 {
            run(g, &[&s3])?;
        }

        let (done1, done3) = (steps_done(g, &state1).await?, steps_done(g, &state3).await?);
        ensure(done1 == 3 && done3 == 3, || {
            format!("adam: steps done {done1} (one submit) and {done3} (three), want 3")
        })?;
        let (b1, b3) = (bits(g, &one).await?, bits(g, &three).await?);
        for (name, (a, b)) in ["p", "m", "v"].iter().zip(b1.iter().zip(&b3)) {
            let what = format!(
                "adam {:?} {name}: one submit of 3 steps vs 3 submits",
                cfg.convention
            );
            worst.equal(&what, a, b)?;
        }

        // And both equal the CPU's t = 1, 2, 3 (a counter stuck at one t
        // would not).
        let (mut p, mut m, mut v) = (p0.clone(), vec![0.0f32; n], vec![0.0f32; n]);
        for t in 1..=3 {
            adam_update_cpu(&cfg, t, &mut p, &grad, &mut m, &mut v);
        }
        worst.close(
            &format!("adam {:?} one-submit p", cfg.convention),
            &read(g, &one.p).await?,
            &p,
            1e-6,
            1e-6,
        )?;
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
        ensure(sep > 1e-5, || {
            format!("adam: t = 1,2,3 and t = 1,1,1 indistinguishable ({sep})")
        })?;
    }
    worst.done()
}
