//! Deterministic reductions: whole-tensor sum/mean and per-row sums, GPU vs
//! the f64 CPU sum, bit-for-bit repeatability, per-step means of RNG draws
//! through the loss ring (the shared checks, tests/checks/reduce.rs, with
//! their tolerances), and shape refusal.

use crate::common::*;
use vae_vs_gan::ops::reduce::{self, SumPlan};
use vae_vs_gan::{Step, Tensor};

use crate::checks::reduce as check;

#[test]
fn reduce_sum_and_mean_match_cpu() {
    pass(check::sum_and_mean(gpu()));
}

#[test]
fn reduce_row_sums_match_cpu() {
    pass(check::row_sums(gpu()));
}

/// Same input, same bits: the sum recorded twice, run in one submit and in
/// separate submits, and from a second plan.
#[test]
fn reduce_sum_is_deterministic() {
    pass(check::deterministic(gpu()));
}

/// A step that draws uniforms, writes their mean into the loss ring and
/// advances: three steps in one submit give the same ring as three submits,
/// each row close to the CPU mean of that step's draws, all distinct.
#[test]
fn reduce_mean_of_rng_draws_per_step_in_one_submit() {
    pass(check::mean_of_rng_draws_per_step(gpu()));
}

#[test]
fn reduce_shape_mismatch_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[4, 5], "x").unwrap();
    let out2 = Tensor::zeros(g, &[2], "out").unwrap();
    let mut s = Step::new("bad");
    let plan = SumPlan::new(g, 20).unwrap();
    let e = plan.sum(g, &mut s, &x, &out2).unwrap_err().to_string();
    assert!(
        e.contains("sum") && e.contains("[1]") && e.contains("[2]"),
        "{e}"
    );
    let wrong_n = SumPlan::new(g, 21).unwrap();
    let out1 = Tensor::zeros(g, &[1], "out1").unwrap();
    assert!(wrong_n.sum(g, &mut s, &x, &out1).is_err());
    let e = reduce::row_sums(g, &mut s, &x, &out2, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row_sums") && e.contains("[4]") && e.contains("[2]"),
        "{e}"
    );
    assert!(SumPlan::new(g, 0).is_err());
    assert!(s.is_empty(), "nothing recorded after a refused op");
}

/// More rows than one grid dimension holds (65,535): the grid spills into
/// y; every row written and right.
#[test]
fn reduce_row_sums_past_65535_rows() {
    pass(check::row_sums_past_65535_rows(gpu()));
}
