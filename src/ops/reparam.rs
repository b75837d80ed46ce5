//! The VAE reparameterisation `z = mu + exp(0.5 logvar) * eps`,
//! `eps ~ N(0, 1)` drawn from Philox and saved for the backward.
//!
//! **Layout.** mu and logvar come as the two halves of ONE tensor
//! `h: [N, 2L]`, the encoder's dense output: row `r` holds mu in columns
//! `0..L` and logvar in columns `L..2L` (the Keras VAE's
//! `Dense(latent + latent)` split in two). Taking `h` whole keeps the VAE
//! step free of split/concat copies: the backward writes `dh: [N, 2L]`,
//! which goes straight into the dense layer's backward, and
//! [`crate::ops::kl`]'s backward then ADDS the KL gradient into the same
//! `dh` (its `accumulate` flag). So: `reparam_backward` first (overwrites
//! `dh`), `kl_forward_backward(.., accumulate = true)` second.
//!
//! **Clamp.** logvar is clamped to `[-LOGVAR_CLAMP, LOGVAR_CLAMP]` (30)
//! before the exp, here and in the KL: `exp(100)` overflows f32, so without
//! it the KL at logvar = 100 would be infinite (`exp(0.5*100)` is still
//! finite but `exp(100)` is not). `|logvar| <= 30` spans std devs from
//! 3e-7 to 3.3e6, far past anything a trained VAE uses. The gradient is the
//! exact derivative of the clamped function: where `|logvar| > 30` the
//! logvar gradient is 0 (the mu gradient is unaffected). A logvar driven
//! past the clamp therefore gets no gradient from this op or the KL; that is
//! the documented price of finite losses at |x| = 100.
//!
//! The draw of latent element `e = r*L + j` at step `s` is the Philox normal
//! of counter `(e, s, stream, 0)`: exactly [`crate::ops::rng::fill_normal`]
//! on an `[N, L]` tensor with the same stream.

use crate::error::{Error, Result};
use crate::gpu::{f32_param, grid, Access, DType, Gpu, Kernel, Step, Tensor};
use crate::ops::rng::{check_counters, snippet_kernel, Philox};
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

/// logvar is clamped to `[-LOGVAR_CLAMP, LOGVAR_CLAMP]` before `exp` (see
/// the module doc); shared with [`crate::ops::kl`].
pub const LOGVAR_CLAMP: f32 = 30.0;

fn kernel(entry: &'static str, access: &[Access]) -> Kernel {
    snippet_kernel(&[shaders::PHILOX], shaders::REPARAM, entry, access)
}

fn forward_kernel() -> Kernel {
    use Access::*;
    kernel("reparam_forward", &[Read, Read, ReadWrite, ReadWrite])
}

fn backward_kernel() -> Kernel {
    use Access::*;
    kernel("reparam_backward", &[Read, Read, Read, ReadWrite])
}

fn mean_kernel() -> Kernel {
    kernel("reparam_mean", &[Access::Read, Access::ReadWrite])
}

/// `(N, L)` of `h: [N, 2L]`, checked.
fn latent_dims(op: &'static str, h: &Tensor) -> Result<(usize, usize)> {
    h.expect_dtype(op, DType::F32)?;
    match *h.shape() {
        [n, two_l] if two_l % 2 == 0 && two_l > 0 && n > 0 => Ok((n, two_l / 2)),
        _ => Err(Error::invalid(
            op,
            format!(
                "h {:?} must be [N, 2L] (mu then logvar per row), got {:?}",
                h.label(),
                h.shape()
            ),
        )),
    }
}

fn params(rng: Philox, n: usize, l: usize) -> Result<[u32; 6]> {
    if n > u32::MAX as usize {
        return Err(Error::invalid("reparam", "more than 2^32 elements"));
    }
    let k = rng.params(n as u32);
    Ok([
        n as u32,
        l as u32,
        k[1],
        k[2],
        k[3],
        f32_param(LOGVAR_CLAMP),
    ])
}

/// Record the forward: draw `eps: [N, L]` (saved), write `z: [N, L]`.
/// `h: [N, 2L]` as in the module doc; `counters` is `StepState.counters`.
pub fn reparam_forward(
    gpu: &Gpu,
    step: &mut Step,
    rng: Philox,
    counters: &Tensor,
    h: &Tensor,
    eps: &Tensor,
    z: &Tensor,
) -> Result<()> {
    let op = "reparam";
    check_counters(op, counters)?;
    let (n, l) = latent_dims(op, h)?;
    for t in [eps, z] {
        t.expect_dtype(op, DType::F32)?;
        t.expect_shape(op, &[n, l])?;
    }
    let groups = grid(gpu, ((n * l) as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &forward_kernel(),
        &params(rng, n * l, l)?,
        &[counters, h, eps, z],
        groups,
    )
}

/// Record the backward: `dh[:, :L] = dz`,
/// `dh[:, L:] = dz * eps * 0.5 * exp(0.5 clamp(logvar))` (0 past the clamp).
/// Overwrites `dh: [N, 2L]`; add the KL gradient afterwards.
pub fn reparam_backward(
    gpu: &Gpu,
    step: &mut Step,
    h: &Tensor,
    eps: &Tensor,
    dz: &Tensor,
    dh: &Tensor,
) -> Result<()> {
    let op = "reparam_backward";
    let (n, l) = latent_dims(op, h)?;
    for t in [eps, dz] {
        t.expect_dtype(op, DType::F32)?;
        t.expect_shape(op, &[n, l])?;
    }
    dh.expect_dtype(op, DType::F32)?;
    dh.expect_shape(op, h.shape())?;
    let groups = grid(gpu, ((n * l) as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &backward_kernel(),
        &params(Philox::new(0, 0), n * l, l)?,
        &[h, eps, dz, dh],
        groups,
    )
}

/// Record the eval forward `z = mu` (no noise), e.g. for reconstructions.
pub fn reparam_mean(gpu: &Gpu, step: &mut Step, h: &Tensor, z: &Tensor) -> Result<()> {
    let op = "reparam_mean";
    let (n, l) = latent_dims(op, h)?;
    z.expect_dtype(op, DType::F32)?;
    z.expect_shape(op, &[n, l])?;
    let groups = grid(gpu, ((n * l) as u64).div_ceil(ELEMENTWISE_WG as u64))?;
    step.dispatch(
        gpu,
        op,
        &mean_kernel(),
        &params(Philox::new(0, 0), n * l, l)?,
        &[h, z],
        groups,
    )
}

/// The clamped logvar, in f64.
pub fn clamp_logvar(lv: f64) -> f64 {
    lv.clamp(-(LOGVAR_CLAMP as f64), LOGVAR_CLAMP as f64)
}

/// CPU reference forward: `z = mu + exp(0.5 clamp(logvar)) * eps` for
/// `h: [N, 2L]` (row-major, `l` = L) and `eps: [N, L]`.
pub fn reparam_forward_cpu<T: Real>(h: &[T], eps: &[T], l: usize) -> Vec<T> {
    eps.iter()
        .enumerate()
        .map(|(e, &ep)| {
            let (r, j) = (e / l, e % l);
            let mu = h[r * 2 * l + j].to_f64();
            let c = clamp_logvar(h[r * 2 * l + l + j].to_f64());
            T::from_f64(mu + (0.5 * c).exp() * ep.to_f64())
        })
        .collect()
}

/// CPU reference backward: `dh: [N, 2L]` from `dz: [N, L]`.
pub fn reparam_backward_cpu<T: Real>(h: &[T], eps: &[T], dz: &[T], l: usize) -> Vec<T> {
    let mut dh = vec![T::default(); h.len()];
    for (e, (&ep, &g)) in eps.iter().zip(dz).enumerate() {
        let (r, j) = (e / l, e % l);
        let lv = h[r * 2 * l + l + j].to_f64();
        let g = g.to_f64();
        dh[r * 2 * l + j] = T::from_f64(g);
        let inside = lv.abs() <= LOGVAR_CLAMP as f64;
        let d = if inside {
            g * ep.to_f64() * 0.5 * (0.5 * clamp_logvar(lv)).exp()
        } else {
            0.0
        };
        dh[r * 2 * l + l + j] = T::from_f64(d);
    }
    dh
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    vec![forward_kernel(), backward_kernel(), mean_kernel()]
}
