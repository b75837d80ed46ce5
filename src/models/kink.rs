//! Which branch a CPU reference takes at a ReLU-family kink that f32
//! cannot place.
//!
//! A whole-step test runs the GPU step in f32 and its reference in f64.
//! Where an activation's input lies within the f32 forward's error of 0,
//! the two may take different branches (a derivative of 1 against 0, or
//! 0.2 for LeakyReLU): the gradient differs there by a finite amount that
//! no rounding tolerance covers, and the comparison says nothing about the
//! kernels. [`KinkSides`] hands the reference the GPU's branch at exactly
//! those units, and counts the units where the GPU took the other branch
//! farther from 0 than that: those are a wrong kernel, which the test
//! reports.

use crate::ops::Real;

/// The GPU's branch at every unit of each kink tensor, in the reference's
/// forward order, and how close to 0 an input must be to take it.
#[derive(Clone, Debug)]
pub struct KinkSides {
    /// Per activation: whether the GPU's input was above 0 (its output
    /// > 0: ReLU and LeakyReLU keep the sign).
    pub above: Vec<Vec<bool>>,
    /// An input within `rtol * max|input|` of 0 (over its tensor) takes the
    /// GPU's branch: the f32 forward's error bound, relative to the
    /// tensor's largest value.
    pub rtol: f64,
}

/// What following the GPU's branches did in one reference step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KinkCount {
    /// Units within the bound where the GPU took the other branch than the
    /// reference would have, and the reference followed it.
    pub followed: usize,
    /// Units where the GPU took the other branch farther from 0 than the
    /// bound, by activation index: a wrong kernel, not a rounding.
    pub beyond: Vec<(usize, usize)>,
}

/// The backward of a ReLU-family activation (`slope` below the kink: 0
/// for ReLU, the LeakyReLU's alpha) at pre-activation `x`: unit `i` is
/// above the kink where `x > 0`, or where `sides` (the GPU's branches and
/// the index of this activation in them) says so for an input within the
/// bound of 0. Without `sides`, `Activation::backward_cpu` exactly.
pub fn relu_family_backward<T: Real>(
    slope: f64,
    x: &[T],
    dy: &[T],
    sides: Option<(&KinkSides, usize)>,
    count: &mut KinkCount,
) -> Vec<T> {
    let near = sides.map(|(s, _)| s.rtol * x.iter().fold(0.0f64, |m, v| m.max(v.to_f64().abs())));
    x.iter()
        .zip(dy)
        .enumerate()
        .map(|(i, (&v, &g))| {
            let v = v.to_f64();
            let mut above = v > 0.0;
            if let (Some((s, k)), Some(near)) = (sides, near) {
                let gpu = s.above[k][i];
                if gpu != above {
                    if v.abs() <= near {
                        above = gpu;
                        count.followed += 1;
                    } else {
                        count.beyond.push((k, i));
                    }
                }
            }
            T::from_f64(g.to_f64() * if above { 1.0 } else { slope })
        })
        .collect()
}
