//! Philox 4x32-10 counter-based random numbers: u32, uniform and normal
//! draws, on the GPU and bit-compatible on the CPU.
//!
//! Every draw is a pure function of `(seed, stream, step, element index)`:
//! element `i` of a tensor filled at step `s` gets the Philox block of
//! counter `(i, s, stream, 0)` under key `(seed low word, seed high word)`.
//! The step `s` is `StepState.counters[0]`, read by the kernel from a storage
//! binding (never a uniform rewritten per step), so N steps recorded into one
//! submit draw exactly what N separate submits draw, and successive steps
//! draw different numbers. Different consumers in one step (each dropout
//! layer, the reparameterisation) take different `stream` ids.
//!
//! Outputs from one block `w = philox(ctr, key)`:
//! - u32: `w[0]`;
//! - uniform in `[0, 1)`: `(w[0] >> 8) * 2^-24`, exact in f32, so GPU and
//!   CPU agree bit for bit;
//! - standard normal (Box-Muller): `u1 = ((w[0] >> 8) + 1) * 2^-24` in
//!   `(0, 1]`, `u2 = (w[1] >> 8) * 2^-24`,
//!   `z = -sqrt(-2 ln u1) * cos(2 pi u2 - pi)`. The GPU computes it in f32
//!   with WGSL `log`/`cos`, whose errors are bounded but not exact (cos: 2^-11
//!   absolute on `[-pi, pi]`, which is why the angle is shifted into that
//!   range); the CPU reference computes the same formula in f64. See
//!   [`NORMAL_ATOL`].
//!
//! The WGSL lives in `shaders/philox.wgsl`, a snippet of functions that
//! [`snippet_kernel`] concatenates in front of each kernel file that draws.

use std::borrow::Cow;

use crate::error::Result;
use crate::gpu::{grid, Access, DType, Gpu, Kernel, Shader, Step, Tensor};
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

/// Philox 4x32 round multipliers and Weyl key increments (Random123).
const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// 2^-24: one step of the 24-bit uniform grid.
pub const UNIT: f32 = 1.0 / 16_777_216.0;

/// Bound on |GPU normal - f64 reference| per draw, from the WGSL accuracy
/// rules: `cos` on `[-pi, pi]` has absolute error <= 2^-11, multiplied by
/// `r = sqrt(-2 ln u1) <= sqrt(2 * 24 ln 2) = 5.77`, gives 2.8e-3; `log` near
/// 1 has absolute error <= 2^-21, which moves `r` by at most
/// `sqrt(2 * 2^-21) = 9.8e-4` where `r` is near 0 (and far less elsewhere);
/// together under 4e-3. Real drivers are far better (lavapipe: ~1e-6);
/// the tests print the worst error seen.
pub const NORMAL_ATOL: f64 = 4e-3;

/// One random stream: a 64-bit seed (the Philox key) and a stream id (the
/// third counter word) that separates consumers drawing in the same step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Philox {
    pub seed: u64,
    pub stream: u32,
}

impl Philox {
    pub fn new(seed: u64, stream: u32) -> Philox {
        Philox { seed, stream }
    }

    /// The key words `(low, high)` of the seed.
    pub fn key(self) -> [u32; 2] {
        [self.seed as u32, (self.seed >> 32) as u32]
    }

    /// Uniform parameter words shared by every drawing kernel:
    /// `[n, seed_lo, seed_hi, stream]`.
    pub fn params(self, n: u32) -> [u32; 4] {
        let k = self.key();
        [n, k[0], k[1], self.stream]
    }

    /// CPU: the block for element `i` at step `step`.
    pub fn block(self, i: u32, step: u32) -> [u32; 4] {
        philox4x32_10([i, step, self.stream, 0], self.key())
    }

    /// CPU: `n` u32 draws at step `step` (what [`fill_u32`] writes).
    pub fn u32_cpu(self, step: u32, n: usize) -> Vec<u32> {
        (0..n).map(|i| self.block(i as u32, step)[0]).collect()
    }

    /// CPU: `n` uniform draws in `[0, 1)` at step `step` (bit-equal to
    /// [`fill_uniform`]).
    pub fn uniform_cpu(self, step: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| unit(self.block(i as u32, step)[0]))
            .collect()
    }

    /// CPU: `n` standard normal draws at step `step`, the Box-Muller formula
    /// in f64 (the GPU's f32 values are within [`NORMAL_ATOL`]).
    pub fn normal_cpu<T: Real>(self, step: u32, n: usize) -> Vec<T> {
        (0..n)
            .map(|i| T::from_f64(normal(self.block(i as u32, step))))
            .collect()
    }
}

/// The 24-bit uniform of a word: `(w >> 8) * 2^-24`, exact.
pub fn unit(w: u32) -> f32 {
    (w >> 8) as f32 * UNIT
}

/// Box-Muller in f64 from words 0 and 1 of a block (see the module doc).
pub fn normal(w: [u32; 4]) -> f64 {
    let u1 = ((w[0] >> 8) as f64 + 1.0) * UNIT as f64;
    let u2 = (w[1] >> 8) as f64 * UNIT as f64;
    let r = (-2.0 * u1.ln()).sqrt();
    -r * (std::f64::consts::TAU * u2 - std::f64::consts::PI).cos()
}

fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = a as u64 * b as u64;
    ((p >> 32) as u32, p as u32)
}

/// Philox 4x32 with 10 rounds, exactly Random123's `philox4x32_10`.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for r in 0..10 {
        if r > 0 {
            k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// A kernel whose WGSL is `snippets` followed by `shader`, concatenated in
/// that order (e.g. `shaders/philox.wgsl` in front of `shaders/dropout.wgsl`).
/// The cache key names every part.
pub fn snippet_kernel(
    snippets: &[Shader],
    shader: Shader,
    entry: &'static str,
    access: &[Access],
) -> Kernel {
    let mut source = String::new();
    let mut key = String::new();
    for s in snippets {
        source.push_str(s.source);
        source.push('\n');
        key.push_str(s.name);
        key.push('+');
    }
    source.push_str(shader.source);
    key.push_str(shader.name);
    Kernel {
        key,
        source: Cow::Owned(source),
        entry,
        access: access.to_vec(),
        trusted: false,
        subgroups: false,
    }
}

/// Check that `counters` is a StepState counter tensor (u32, at least one word).
pub(crate) fn check_counters(op: &'static str, counters: &Tensor) -> Result<()> {
    counters.expect_dtype(op, DType::U32)?;
    if counters.numel() == 0 {
        return Err(crate::Error::invalid(
            op,
            "the step counter tensor is empty (pass StepState.counters)",
        ));
    }
    Ok(())
}

fn fill_kernel(entry: &'static str) -> Kernel {
    snippet_kernel(
        &[shaders::PHILOX],
        shaders::RNG,
        entry,
        &[Access::Read, Access::ReadWrite],
    )
}

fn fill(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    dtype: DType,
    rng: Philox,
    counters: &Tensor,
    out: &Tensor,
) -> Result<()> {
    check_counters(op, counters)?;
    out.expect_dtype(op, dtype)?;
    let n = out.numel();
    if n > u32::MAX as usize {
        return Err(crate::Error::invalid(op, "more than 2^32 elements"));
    }
    let groups = grid(gpu, (n as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &fill_kernel(op),
        &rng.params(n as u32),
        &[counters, out],
        groups,
    )
}

/// Record: fill the u32 tensor `out` with raw Philox words (word 0 of the
/// block of each element). `counters` is `StepState.counters`.
pub fn fill_u32(
    gpu: &Gpu,
    step: &mut Step,
    rng: Philox,
    counters: &Tensor,
    out: &Tensor,
) -> Result<()> {
    fill(gpu, step, "fill_u32", DType::U32, rng, counters, out)
}

/// Record: fill the f32 tensor `out` with uniform draws in `[0, 1)`.
pub fn fill_uniform(
    gpu: &Gpu,
    step: &mut Step,
    rng: Philox,
    counters: &Tensor,
    out: &Tensor,
) -> Result<()> {
    fill(gpu, step, "fill_uniform", DType::F32, rng, counters, out)
}

/// Record: fill the f32 tensor `out` with standard normal draws.
pub fn fill_normal(
    gpu: &Gpu,
    step: &mut Step,
    rng: Philox,
    counters: &Tensor,
    out: &Tensor,
) -> Result<()> {
    fill(gpu, step, "fill_normal", DType::F32, rng, counters, out)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![
        fill_kernel("fill_u32"),
        fill_kernel("fill_uniform"),
        fill_kernel("fill_normal"),
    ]
}
