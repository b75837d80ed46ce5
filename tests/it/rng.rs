//! Philox 4x32-10 random numbers: known-answer vectors, GPU draws vs the CPU
//! twin (u32 and uniform bit for bit, normals within a stated bound), normal
//! moments, and the step counter: three steps in one submit draw what three
//! submits draw, and successive steps draw different numbers.

use crate::common::*;
use vae_vs_gan::gpu::{DType, StepState};
use vae_vs_gan::ops::rng::{self, philox4x32_10, Philox, NORMAL_ATOL};
use vae_vs_gan::{Step, Tensor};

/// Odd sizes: 1, not a multiple of the 256-thread workgroup, and 3x5x13x13.
const SIZES: [usize; 3] = [1, 1001, 3 * 5 * 13 * 13];

/// Random123's known-answer vectors for philox4x32_10 (kat_vectors).
#[test]
fn rng_philox_known_answer_vectors() {
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        (
            [0, 0, 0, 0],
            [0, 0],
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
        ),
        (
            [0xffffffff; 4],
            [0xffffffff; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (ctr, key, want) in cases {
        assert_eq!(
            philox4x32_10(ctr, key),
            want,
            "ctr {ctr:08x?} key {key:08x?}"
        );
    }
}

/// The GPU Philox (16-bit-limb mulhi) against the KAT: a u32 fill's element
/// i has counter (i, step, stream, 0), so the KAT counters that fit that form
/// are checked directly: counter 0 / key 0 (element 0, step 0, stream 0), and
/// counter (0xffffffff, 0xffffffff, 0xffffffff, 0) vs the CPU.
#[test]
fn rng_philox_gpu_known_answer() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let out = Tensor::new(g, &[3], DType::U32, "out").unwrap();
    out.poison(g);
    let mut s = Step::new("kat");
    rng::fill_u32(g, &mut s, Philox::new(0, 0), &state.counters, &out).unwrap();
    run(&s);
    let got = out.read_u32(g).unwrap();
    assert_eq!(
        got[0], 0x6627e8d5,
        "element 0 = KAT counter 0 key 0, word 0"
    );
    assert_eq!(got, Philox::new(0, 0).u32_cpu(0, 3));

    // All-ones key and step/stream words: compare with the CPU block.
    let state = StepState::new(g, 1, 1, u32::MAX).unwrap();
    let r = Philox::new(u64::MAX, u32::MAX);
    let out = Tensor::new(g, &[5], DType::U32, "out").unwrap();
    out.poison(g);
    let mut s = Step::new("kat");
    rng::fill_u32(g, &mut s, r, &state.counters, &out).unwrap();
    run(&s);
    assert_eq!(out.read_u32(g).unwrap(), r.u32_cpu(u32::MAX, 5));
}

#[test]
fn rng_u32_and_uniform_match_cpu_bit_for_bit() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 7).unwrap();
    for (j, &n) in SIZES.iter().enumerate() {
        let r = Philox::new(0x0123_4567_89ab_cdef ^ j as u64, 3 + j as u32);
        let ut = Tensor::new(g, &[n], DType::U32, "u32").unwrap();
        let ft = Tensor::zeros(g, &[n], "uniform").unwrap();
        ut.poison(g);
        ft.poison(g);
        let mut s = Step::new("draw");
        rng::fill_u32(g, &mut s, r, &state.counters, &ut).unwrap();
        rng::fill_uniform(g, &mut s, r, &state.counters, &ft).unwrap();
        run(&s);
        assert_eq!(ut.read_u32(g).unwrap(), r.u32_cpu(7, n), "u32 n={n}");
        let got = ft.read_f32(g).unwrap();
        let want = r.uniform_cpu(7, n);
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "uniform n={n} differs from the CPU"
        );
        assert!(got.iter().all(|&u| (0.0..1.0).contains(&u)));
    }
}

/// Normals: GPU f32 Box-Muller vs the f64 formula within NORMAL_ATOL (4e-3,
/// derived in its doc from WGSL's cos bound 2^-11 on [-pi, pi] times the
/// largest radius 5.77, plus log's 2^-21 near 1), plus rtol 1e-5 for the f32
/// rounding of r itself.
#[test]
fn rng_normal_matches_cpu() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 11).unwrap();
    for (j, &n) in SIZES.iter().enumerate() {
        let r = Philox::new(42 + j as u64, 1);
        let t = Tensor::zeros(g, &[n], "normal").unwrap();
        t.poison(g);
        let mut s = Step::new("normal");
        rng::fill_normal(g, &mut s, r, &state.counters, &t).unwrap();
        run(&s);
        assert_close(
            &format!("normal n={n}"),
            &t.read_f32(g).unwrap(),
            &r.normal_cpu::<f32>(11, n),
            NORMAL_ATOL,
            1e-5,
        );
    }
}

/// Moments of 1e5 GPU normals: the standard error of the mean is
/// 1/sqrt(1e5) = 0.0032 (0.01 is 3.2 sigma) and of the variance
/// sqrt(2/1e5) = 0.0045 (0.02 is 4.4 sigma); the seed is fixed, so this is
/// deterministic. The uniforms' mean (0.5, se 0.0009) is checked alongside.
#[test]
fn rng_normal_moments() {
    let g = gpu();
    let n = 100_000;
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let r = Philox::new(2024, 0);
    let t = Tensor::zeros(g, &[n], "normal").unwrap();
    let u = Tensor::zeros(g, &[n], "uniform").unwrap();
    let mut s = Step::new("normal");
    rng::fill_normal(g, &mut s, r, &state.counters, &t).unwrap();
    rng::fill_uniform(g, &mut s, Philox::new(2024, 1), &state.counters, &u).unwrap();
    run(&s);
    let z = to_f64(&t.read_f32(g).unwrap());
    let mean = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64;
    eprintln!("normal: mean {mean:.5}, variance {var:.5}");
    assert!(mean.abs() < 0.01, "mean {mean}");
    assert!((var - 1.0).abs() < 0.02, "variance {var}");
    assert!(z.iter().all(|v| v.is_finite() && v.abs() < 6.0));
    let um = u
        .read_f32(g)
        .unwrap()
        .iter()
        .map(|&v| v as f64)
        .sum::<f64>()
        / n as f64;
    assert!((um - 0.5).abs() < 0.005, "uniform mean {um}");
}

/// One step = fill uniforms at the current step counter, copy element 0 into
/// the loss ring, advance. Recorded once, run 3 times in ONE submit vs 3
/// submits: identical ring rows and final tensor, each equal (bit for bit) to
/// the CPU draws at steps start, start+1, start+2, and all different.
#[test]
fn rng_three_steps_in_one_submit_equal_three_submits() {
    let g = gpu();
    let n = 1001;
    let start = 5u32;
    let r = Philox::new(99, 2);
    let run_steps = |one_submit: bool| {
        let state = StepState::new(g, 1, 8, start).unwrap();
        state.ring.poison(g);
        let out = Tensor::zeros(g, &[n], "u").unwrap();
        let mut s = Step::new("draw");
        rng::fill_uniform(g, &mut s, r, &state.counters, &out).unwrap();
        state.record_loss(g, &mut s, &out, 0).unwrap();
        state.record_advance(g, &mut s).unwrap();
        if one_submit {
            g.run(&[&s, &s, &s]).unwrap();
        } else {
            for _ in 0..3 {
                g.run(&[&s]).unwrap();
            }
        }
        let ring: Vec<u32> = state
            .read_losses(g, start as u64)
            .unwrap()
            .iter()
            .map(|l| l.values[0].to_bits())
            .collect();
        let last: Vec<u32> = out
            .read_f32(g)
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        (ring, last)
    };
    let (ring1, last1) = run_steps(true);
    let (ring3, last3) = run_steps(false);
    assert_eq!(ring1.len(), 3);
    assert_eq!(ring1, ring3, "per-step draws: one submit vs three");
    assert_eq!(last1, last3, "final tensor: one submit vs three");
    for k in 0..3u32 {
        let want = r.uniform_cpu(start + k, 1)[0].to_bits();
        assert_eq!(ring1[k as usize], want, "step {k}");
    }
    let want_last: Vec<u32> = r
        .uniform_cpu(start + 2, n)
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(last1, want_last);
    assert!(ring1[0] != ring1[1] && ring1[1] != ring1[2] && ring1[0] != ring1[2]);
    let a = r.uniform_cpu(start, n);
    let b = r.uniform_cpu(start + 1, n);
    let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
    assert!(same < 5, "successive steps share {same} of {n} draws");
}

/// Different streams and seeds give different numbers at the same step.
#[test]
fn rng_streams_and_seeds_differ() {
    let n = 1000;
    let a = Philox::new(1, 0).u32_cpu(0, n);
    let b = Philox::new(1, 1).u32_cpu(0, n);
    let c = Philox::new(2, 0).u32_cpu(0, n);
    let c2 = Philox::new(1 << 32, 0).u32_cpu(0, n);
    for (x, y) in [(&a, &b), (&a, &c), (&a, &c2)] {
        assert!(x.iter().zip(y.iter()).filter(|(p, q)| p == q).count() < 2);
    }
}

#[test]
fn rng_fill_refuses_wrong_dtypes_at_record_time() {
    let g = gpu();
    let state = StepState::new(g, 1, 1, 0).unwrap();
    let f = Tensor::zeros(g, &[4], "f").unwrap();
    let u = Tensor::new(g, &[4], DType::U32, "u").unwrap();
    let mut s = Step::new("bad");
    let r = Philox::new(0, 0);
    let e = rng::fill_u32(g, &mut s, r, &state.counters, &f)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fill_u32"), "{e}");
    assert!(rng::fill_normal(g, &mut s, r, &state.counters, &u).is_err());
    assert!(
        rng::fill_uniform(g, &mut s, r, &f, &f).is_err(),
        "f32 counters refused"
    );
    assert!(s.is_empty());
}
