//! Philox 4x32-10 random numbers: known-answer vectors on the CPU, and GPU
//! draws vs the CPU twin (u32 and uniform bit for bit, normals within a
//! stated bound), normal moments, and the step counter: three steps in one
//! submit draw what three submits draw (the shared checks,
//! tests/checks/rng.rs, with their tolerances); refusals of wrong dtypes.

use crate::common::*;
use vae_vs_gan::gpu::{DType, StepState};
use vae_vs_gan::ops::rng::{self, philox4x32_10, Philox};
use vae_vs_gan::{Step, Tensor};

use crate::checks::rng as check;

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

/// The GPU Philox against the KAT (counter 0 / key 0) and the CPU block at
/// all-ones key and counter words.
#[test]
fn rng_philox_gpu_known_answer() {
    pass(check::gpu_known_answer(gpu()));
}

#[test]
fn rng_u32_and_uniform_match_cpu_bit_for_bit() {
    pass(check::u32_and_uniform(gpu()));
}

#[test]
fn rng_normal_matches_cpu() {
    pass(check::normal(gpu()));
}

#[test]
fn rng_normal_moments() {
    pass(check::normal_moments(gpu()));
}

#[test]
fn rng_three_steps_in_one_submit_equal_three_submits() {
    pass(check::three_steps_in_one_submit(gpu()));
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
