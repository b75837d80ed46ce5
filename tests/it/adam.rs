//! Adam: three GPU steps vs the CPU reference in both epsilon conventions
//! and at two step offsets, and three steps in ONE submit equal to three
//! submits bit for bit (the shared checks, tests/checks/adam.rs, with their
//! tolerances); errors at record time.

use crate::common::*;
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::optim::adam::{Adam, AdamConfig, AdamTensors};
use vae_vs_gan::{Step, Tensor};

use crate::checks::adam as check;

#[test]
fn adam_three_steps_match_cpu() {
    pass(check::three_steps(gpu()));
}

#[test]
fn adam_eps_conventions_differ_as_specified() {
    pass(check::eps_conventions(gpu()));
}

#[test]
fn adam_three_steps_in_one_submit_equal_three_submits() {
    pass(check::one_submit(gpu()));
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
