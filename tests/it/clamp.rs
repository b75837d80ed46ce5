//! Clamp in place (the WGAN's weight clipping): GPU equals the CPU
//! reference bit for bit (the shared checks, tests/checks/clamp.rs), and a
//! bad bound or dtype is refused at record time with nothing recorded.

use crate::common::*;
use vae_vs_gan::ops::clamp::{clamp_cpu, clamp_in_place};
use vae_vs_gan::{Step, Tensor};

use crate::checks::clamp as check;

#[test]
fn clamp_matches_cpu_bit_for_bit() {
    pass(check::bit_for_bit(gpu()));
}

#[test]
fn clamp_to_zero_gives_zeros() {
    pass(check::to_zero(gpu()));
}

#[test]
fn clamp_cpu_keeps_inside_and_clips_beyond() {
    let mut x = [-0.5f64, -0.01, -0.005, 0.0, 0.003, 0.01, 2.0];
    clamp_cpu(&mut x, 0.01);
    assert_eq!(x, [-0.01, -0.01, -0.005, 0.0, 0.003, 0.01, 0.01]);
}

#[test]
fn clamp_bad_bound_or_dtype_is_refused_at_record_time() {
    let g = gpu();
    let x = Tensor::zeros(g, &[3, 5], "x").unwrap();
    let mut s = Step::new("bad");
    for (c, shows) in [
        (-0.01f32, "c = -0.01"),
        (f32::NAN, "c = NaN"),
        (f32::INFINITY, "c = inf"),
    ] {
        let err = clamp_in_place(g, &mut s, &x, c).unwrap_err().to_string();
        assert!(
            err.contains("clamp") && err.contains("finite and >= 0") && err.contains(shows),
            "{err}"
        );
    }
    let u = Tensor::from_u32(g, &[3, 5], &[0; 15], "x u32").unwrap();
    let err = clamp_in_place(g, &mut s, &u, 0.01).unwrap_err().to_string();
    assert!(
        err.contains("clamp") && err.contains("x u32") && err.contains("U32"),
        "{err}"
    );
    assert!(s.is_empty(), "nothing recorded after a refused op");
}
