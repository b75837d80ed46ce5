//! Clamp in place (the WGAN's weight clipping): GPU equals the CPU
//! reference bit for bit, tolerance 0 (each result is the element itself or
//! exactly ±c: nothing rounds). The inputs hold values beyond ±c (far
//! beyond too), exactly ±c, the floats just inside and just outside ±c,
//! ±0, and random values inside; every tensor of one c is clamped in one
//! step, as the critic's parameters are. At c = 0 every result is a zero,
//! whose sign WGSL lets an implementation ignore: compared by value there.

use super::*;
use vae_vs_gan::ops::clamp::{clamp_cpu, clamp_in_place};

pub async fn all(g: &Gpu, r: &mut Report<'_>) {
    r.record("clamp bit for bit", bit_for_bit(g).await);
    r.record("clamp to zero", to_zero(g).await);
}

/// Odd sizes: none a multiple of the 256-thread workgroup.
const SHAPES: [&[usize]; 5] = [&[1], &[7], &[257], &[1000], &[13, 77]];

/// `n` inputs for bound `c`: a cycle of specials (c, -c, the floats next
/// to ±c on both sides, ±0, far beyond) among uniform draws in [-3c, 3c)
/// (two thirds of them beyond ±c).
fn inputs(n: usize, c: f32, seed: u64) -> Vec<f32> {
    let up = |x: f32| f32::from_bits(x.to_bits() + 1); // away from 0
    let down = |x: f32| f32::from_bits(x.to_bits() - 1); // toward 0
    let mut x = uniform(n, -3.0 * c, 3.0 * c, seed);
    for (i, v) in x.iter_mut().enumerate() {
        *v = match i % 13 {
            0 => c,
            1 => -c,
            2 => up(c),
            3 => up(-c),
            4 => down(c),
            5 => down(-c),
            6 => 0.0,
            7 => -0.0,
            8 => 1e30,
            9 => -1e30,
            _ => *v,
        };
    }
    x
}

pub async fn bit_for_bit(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let (mut clipped, mut kept) = (0usize, 0usize);
    // The paper's 0.01, and others.
    for (k, c) in [0.01f32, 0.5, 3.0].into_iter().enumerate() {
        let mut s = Step::new("clamp");
        let mut cases = Vec::new();
        for (j, shape) in SHAPES.iter().enumerate() {
            let n: usize = shape.iter().product();
            let x = inputs(n, c, 100 * k as u64 + j as u64);
            let xt = tensor(g, shape, &x, "x")?;
            clamp_in_place(g, &mut s, &xt, c)?;
            cases.push((shape, x, xt));
        }
        run(g, &[&s])?;
        for (shape, x, xt) in &cases {
            let mut want = x.clone();
            clamp_cpu(&mut want, c as f64);
            clipped += x.iter().zip(&want).filter(|(a, b)| a != b).count();
            kept += x.iter().zip(&want).filter(|(a, b)| a == b).count();
            ensure(want.iter().all(|v| v.abs() <= c), || {
                format!("clamp_cpu c={c} {shape:?}: a result beyond ±c")
            })?;
            worst.equal(
                &format!("clamp c={c} {shape:?}"),
                &bits(&read(g, xt).await?),
                &bits(&want),
            )?;
        }
    }
    ensure(clipped > 1000 && kept > 1000, || {
        format!("clamp: {clipped} elements clipped, {kept} kept: both should be many")
    })?;
    worst.done()
}

/// c = 0: every element becomes a zero. WGSL lets an implementation
/// ignore the sign of a zero, so the zeros are compared by value.
pub async fn to_zero(g: &Gpu) -> Outcome {
    let mut worst = Worst::default();
    let mut s = Step::new("clamp");
    let mut cases = Vec::new();
    for (j, shape) in SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = inputs(n, 1.0, 500 + j as u64);
        let xt = tensor(g, shape, &x, "x")?;
        clamp_in_place(g, &mut s, &xt, 0.0)?;
        cases.push((shape, x, xt));
    }
    run(g, &[&s])?;
    for (shape, x, xt) in &cases {
        let mut want = x.clone();
        clamp_cpu(&mut want, 0.0);
        ensure(want.iter().all(|&v| v == 0.0), || {
            format!("clamp_cpu c=0 {shape:?}: a nonzero result")
        })?;
        worst.close(
            &format!("clamp c=0 {shape:?}"),
            &read(g, xt).await?,
            &want,
            0.0,
            0.0,
        )?;
    }
    worst.done()
}
