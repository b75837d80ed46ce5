//! RMSProp: three GPU steps vs the CPU reference from a nonzero
//! square_avg at the WGAN paper's lr and larger ones, and three steps in
//! ONE submit equal to three submits bit for bit (the shared checks,
//! tests/checks/rmsprop.rs, with their tolerances); PyTorch's defaults;
//! errors at record time.

use crate::common::*;
use vae_vs_gan::optim::rmsprop::{RmsProp, RmsPropConfig, RmsPropTensors};
use vae_vs_gan::{Step, Tensor};

use crate::checks::rmsprop as check;

#[test]
fn rmsprop_three_steps_match_cpu() {
    pass(check::three_steps(gpu()));
}

#[test]
fn rmsprop_three_steps_in_one_submit_equal_three_submits() {
    pass(check::one_submit(gpu()));
}

#[test]
fn rmsprop_defaults_are_pytorchs() {
    let c = RmsPropConfig::default();
    assert_eq!(
        c,
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8
        }
    );
    assert_eq!(RmsPropConfig::pytorch(5e-5).lr, 5e-5);
    assert_eq!(RmsPropConfig::pytorch(5e-5).alpha, 0.99);
}

#[test]
fn rmsprop_bad_operands_are_refused_at_record_time() {
    let g = gpu();
    let opt = RmsProp::new(RmsPropConfig::default()).unwrap();
    let p = Tensor::zeros(g, &[3, 5], "param").unwrap();
    let gr = Tensor::zeros(g, &[3, 5], "grad").unwrap();
    let v = Tensor::zeros(g, &[5, 3], "square_avg").unwrap();
    let mut s = Step::new("bad");
    let err = opt
        .record_update(
            g,
            &mut s,
            &RmsPropTensors {
                param: &p,
                grad: &gr,
                square_avg: &v,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rmsprop")
            && err.contains("square_avg")
            && err.contains("[3, 5]")
            && err.contains("[5, 3]"),
        "{err}"
    );
    // Every operand is f32.
    let u = Tensor::from_u32(g, &[3, 5], &[0; 15], "grad u32").unwrap();
    let err = opt
        .record_update(
            g,
            &mut s,
            &RmsPropTensors {
                param: &p,
                grad: &u,
                square_avg: &gr,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rmsprop") && err.contains("grad u32") && err.contains("U32"),
        "{err}"
    );
    // Hyperparameters changed after `new` are checked again at record time.
    let mut bad = opt.clone();
    bad.config.alpha = 1.0;
    let err = bad
        .record_update(
            g,
            &mut s,
            &RmsPropTensors {
                param: &p,
                grad: &gr,
                square_avg: &gr,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("rmsprop") && err.contains("alpha 1"), "{err}");
    assert!(s.is_empty(), "nothing recorded after a refused op");
}

#[test]
fn rmsprop_bad_hyperparameters_are_refused() {
    let (d, nan, inf) = (RmsPropConfig::default(), f32::NAN, f32::INFINITY);
    for (cfg, shows) in [
        (RmsPropConfig { alpha: 1.0, ..d }, "alpha 1"),
        (RmsPropConfig { alpha: -0.1, ..d }, "alpha -0.1"),
        (RmsPropConfig { alpha: nan, ..d }, "alpha NaN"),
        (RmsPropConfig { lr: -1e-3, ..d }, "lr -0.001"),
        (RmsPropConfig { lr: nan, ..d }, "lr NaN"),
        (RmsPropConfig { lr: inf, ..d }, "lr inf"),
        (RmsPropConfig { eps: -1e-8, ..d }, "eps -0.00000001"),
        (RmsPropConfig { eps: inf, ..d }, "eps inf"),
    ] {
        let err = RmsProp::new(cfg).unwrap_err().to_string();
        assert!(
            err.contains("rmsprop") && err.contains("alpha in [0, 1)") && err.contains(shows),
            "{cfg:?}: {err}"
        );
        assert_eq!(cfg.validate().unwrap_err().to_string(), err);
    }
    // The edges of the domain are accepted.
    for cfg in [
        RmsPropConfig { alpha: 0.0, ..d },
        RmsPropConfig { lr: 0.0, ..d },
        RmsPropConfig { eps: 0.0, ..d },
    ] {
        RmsProp::new(cfg).unwrap();
    }
}
