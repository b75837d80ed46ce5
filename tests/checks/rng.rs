//! Philox 4x32-10 random numbers on the GPU: the known answer, draws vs the
//! CPU twin (u32 and uniform bit for bit, normals within a stated bound),
//! normal moments, and the step counter: three steps in one submit draw
//! what three submits draw, and successive steps draw different numbers.
//!
//! Tolerance of the normals: GPU f32 Box-Muller vs the f64 formula within
//! NORMAL_ATOL (4e-3, derived in its doc from WGSL's cos bound 2^-11 on
//! [-pi, pi] times the largest radius 5.77, plus log's 2^-21 near 1), plus
//! rtol 1e-5 for the f32 rounding of r itself. Everything else is bit for
//! bit.

use super::*;
use vae_vs_gan::gpu::{DType, StepState};
use vae_vs_gan::ops::rng::{self as philox, Philox, NORMAL_ATOL};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("rng philox gpu known answer", gpu_known_answer(g).await);
    r.record("rng u32 and uniform bit for bit", u32_and_uniform(g).await);
    r.record("rng normal", normal(g).await);
    r.record("rng normal moments", normal_moments(g).await);
    r.record(
        "rng three steps in one submit",
        three_steps_in_one_submit(g).await,
    );
}

/// Odd sizes: 1, not a multiple of the 256-thread workgroup, and 3x5x13x13.
const SIZES: [usize; 3] = [1, 1001, 3 * 5 * 13 * 13];

/// A u32 tensor of `n`, poisoned.
fn u32_out(g: &Gpu, n: usize, label: &str) -> Result<Tensor, Failure> {
    let t = Tensor::new(g, &[n], DType::U32, label)?;
    t.poison(g);
    Ok(t)
}

/// The GPU Philox (16-bit-limb mulhi) against the KAT: a u32 fill's element
/// i has counter (i, step, stream, 0), so the KAT counters that fit that form
/// are checked directly: counter 0 / key 0 (element 0, step 0, stream 0), and
/// counter (0xffffffff, 0xffffffff, 0xffffffff, 0) vs the CPU.
pub async fn gpu_known_answer(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, 0)?;
    let out = u32_out(g, 3, "out")?;
    let mut s = Step::new("kat");
    philox::fill_u32(g, &mut s, Philox::new(0, 0), &state.counters, &out)?;
    run(g, &[&s])?;
    let got = out.read_u32_async(g).await?;
    worst.equal(
        "element 0 = KAT counter 0 key 0, word 0",
        &got[..1],
        &[0x6627e8d5],
    )?;
    worst.equal("key 0", &got, &Philox::new(0, 0).u32_cpu(0, 3))?;

    // All-ones key and step/stream words: compare with the CPU block.
    let state = StepState::new(g, 1, 1, u32::MAX)?;
    let r = Philox::new(u64::MAX, u32::MAX);
    let out = u32_out(g, 5, "out")?;
    let mut s = Step::new("kat");
    philox::fill_u32(g, &mut s, r, &state.counters, &out)?;
    run(g, &[&s])?;
    worst.equal(
        "all-ones key and counter",
        &out.read_u32_async(g).await?,
        &r.u32_cpu(u32::MAX, 5),
    )?;
    worst.done()
}

pub async fn u32_and_uniform(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, 7)?;
    for (j, &n) in SIZES.iter().enumerate() {
        let r = Philox::new(0x0123_4567_89ab_cdef ^ j as u64, 3 + j as u32);
        let ut = u32_out(g, n, "u32")?;
        let ft = poisoned(g, &[n], "uniform")?;
        let mut s = Step::new("draw");
        philox::fill_u32(g, &mut s, r, &state.counters, &ut)?;
        philox::fill_uniform(g, &mut s, r, &state.counters, &ft)?;
        run(g, &[&s])?;
        worst.equal(
            &format!("u32 n={n}"),
            &ut.read_u32_async(g).await?,
            &r.u32_cpu(7, n),
        )?;
        let got = read(g, &ft).await?;
        let want = r.uniform_cpu(7, n);
        worst.equal(&format!("uniform n={n}"), &bits(&got), &bits(&want))?;
        ensure(got.iter().all(|&u| (0.0..1.0).contains(&u)), || {
            format!("uniform n={n}: a draw outside [0, 1)")
        })?;
    }
    worst.done()
}

/// Normals: GPU f32 Box-Muller vs the f64 formula within NORMAL_ATOL plus
/// rtol 1e-5 (the module doc).
pub async fn normal(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let state = StepState::new(g, 1, 1, 11)?;
    for (j, &n) in SIZES.iter().enumerate() {
        let r = Philox::new(42 + j as u64, 1);
        let t = poisoned(g, &[n], "normal")?;
        let mut s = Step::new("normal");
        philox::fill_normal(g, &mut s, r, &state.counters, &t)?;
        run(g, &[&s])?;
        worst.close(
            &format!("normal n={n}"),
            &read(g, &t).await?,
            &r.normal_cpu::<f32>(11, n),
            NORMAL_ATOL,
            1e-5,
        )?;
    }
    worst.done()
}

/// Moments of 1e5 GPU normals: the standard error of the mean is
/// 1/sqrt(1e5) = 0.0032 (0.01 is 3.2 sigma) and of the variance
/// sqrt(2/1e5) = 0.0045 (0.02 is 4.4 sigma); the seed is fixed, so this is
/// deterministic. The uniforms' mean (0.5, se 0.0009) is checked alongside.
pub async fn normal_moments(g: &Gpu) -> Outcome {
    let n = 100_000;
    let state = StepState::new(g, 1, 1, 0)?;
    let r = Philox::new(2024, 0);
    let t = Tensor::zeros(g, &[n], "normal")?;
    let u = Tensor::zeros(g, &[n], "uniform")?;
    let mut s = Step::new("normal");
    philox::fill_normal(g, &mut s, r, &state.counters, &t)?;
    philox::fill_uniform(g, &mut s, Philox::new(2024, 1), &state.counters, &u)?;
    run(g, &[&s])?;
    let z: Vec<f64> = read(g, &t).await?.iter().map(|&v| v as f64).collect();
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    ensure(mean.abs() < 0.01, || format!("mean {mean}"))?;
    ensure((var - 1.0).abs() < 0.02, || format!("variance {var}"))?;
    ensure(z.iter().all(|v| v.is_finite() && v.abs() < 6.0), || {
        "a normal not finite or beyond 6".to_string()
    })?;
    let um = read(g, &u).await?.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    ensure((um - 0.5).abs() < 0.005, || format!("uniform mean {um}"))?;
    Ok(format!(
        "normal: mean {mean:.5}, variance {var:.5}; uniform mean {um:.5}"
    ))
}

/// Three steps of "fill uniforms, copy element 0 into the loss ring,
/// advance" from step `start`, in one submit or three: the ring's rows and
/// the final tensor, as bits.
async fn three_steps(
    g: &Gpu,
    r: Philox,
    n: usize,
    start: u32,
    one_submit: bool,
) -> Result<(Vec<u32>, Vec<u32>), Failure> {
    let state = StepState::new(g, 1, 8, start)?;
    state.ring.poison(g);
    let out = Tensor::zeros(g, &[n], "u")?;
    let mut s = Step::new("draw");
    philox::fill_uniform(g, &mut s, r, &state.counters, &out)?;
    state.record_loss(g, &mut s, &out, 0)?;
    state.record_advance(g, &mut s)?;
    if one_submit {
        run(g, &[&s, &s, &s])?;
    } else {
        for _ in 0..3 {
            run(g, &[&s])?;
        }
    }
    let ring: Vec<u32> = state
        .snapshot_async(g)
        .await?
        .losses(start as u64)?
        .iter()
        .map(|l| l.values[0].to_bits())
        .collect();
    let last = bits(&read(g, &out).await?);
    Ok((ring, last))
}

/// One step = fill uniforms at the current step counter, copy element 0 into
/// the loss ring, advance. Recorded once, run 3 times in ONE submit vs 3
/// submits: identical ring rows and final tensor, each equal (bit for bit) to
/// the CPU draws at steps start, start+1, start+2, and all different.
pub async fn three_steps_in_one_submit(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let n = 1001;
    let start = 5u32;
    let r = Philox::new(99, 2);
    let (ring1, last1) = three_steps(g, r, n, start, true).await?;
    let (ring3, last3) = three_steps(g, r, n, start, false).await?;
    ensure(ring1.len() == 3, || {
        format!("{} ring rows, want 3", ring1.len())
    })?;
    worst.equal("per-step draws: one submit vs three", &ring1, &ring3)?;
    worst.equal("final tensor: one submit vs three", &last1, &last3)?;
    let want: Vec<u32> = (0..3u32)
        .map(|k| r.uniform_cpu(start + k, 1)[0].to_bits())
        .collect();
    worst.equal("per-step draws vs the CPU", &ring1, &want)?;
    let want_last: Vec<u32> = r
        .uniform_cpu(start + 2, n)
        .iter()
        .map(|v| v.to_bits())
        .collect();
    worst.equal("final tensor vs the CPU", &last1, &want_last)?;
    ensure(
        ring1[0] != ring1[1] && ring1[1] != ring1[2] && ring1[0] != ring1[2],
        || format!("successive steps drew the same first number: {ring1:08x?}"),
    )?;
    let a = r.uniform_cpu(start, n);
    let b = r.uniform_cpu(start + 1, n);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    ensure(same < 5, || {
        format!("successive steps share {same} of {n} draws")
    })?;
    worst.done()
}
