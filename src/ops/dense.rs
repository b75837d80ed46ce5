//! Dense (fully connected) layers and the general matrix multiply under them.
//!
//! `gemm`: `C = op(A) op(B) (+ bias)` where `op` optionally transposes a
//! stored operand. Dense is three uses of it, with x `[N, in]`, W `[in, out]`:
//! - forward          `y  = x W + b`      (A = x, B = W)
//! - backward data    `dx = dy W^T`       (B = W read transposed)
//! - backward weights `dW = x^T dy`       (A = x read transposed; K = N, the
//!   batch, is split into fixed-order partial sums when the output is small)
//!
//! The bias gradient `db = sum_rows dy` is [`crate::ops::bias::bias_grad`].
//! The GPU side is the register-tiled template of [`crate::ops::gemm`].

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Kernel, Step, Tensor};
use crate::ops::conv2d::{self, Conv2d, Padding};
use crate::ops::gemm::{
    self, BiasGrad, DySide, EpiKind, Epilogue, Fused, GemmCall, GemmConfig, Geo, Scratch,
};
use crate::ops::Real;

/// Sections of the template for each transpose combination.
fn sections(trans_a: bool, trans_b: bool) -> &'static [&'static str] {
    match (trans_a, trans_b) {
        (false, false) => &["setup_plain", "a_dense", "b_dense", "c_row_plain"],
        (true, false) => &["setup_plain", "a_dense_t", "b_dense", "c_row_plain"],
        (false, true) => &["setup_plain", "a_dense", "b_dense_t", "c_row_plain"],
        (true, true) => &["setup_plain", "a_dense_t", "b_dense_t", "c_row_plain"],
    }
}

fn matrix(op: &'static str, name: &str, t: &Tensor) -> Result<(usize, usize)> {
    match t.shape() {
        [r, c] => Ok((*r, *c)),
        s => Err(Error::invalid(
            op,
            format!("{name} ({}) must be a matrix, got shape {s:?}", t.label()),
        )),
    }
}

/// Record `c = op(a) op(b) (+ bias)`: `a` is `[M, K]` (`[K, M]` when
/// `trans_a`), `b` is `[K, N]` (`[N, K]` when `trans_b`), `c` is `[M, N]`,
/// `bias` is `[N]`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    gpu: &Gpu,
    step: &mut Step,
    a: &Tensor,
    trans_a: bool,
    b: &Tensor,
    trans_b: bool,
    bias: Option<&Tensor>,
    c: &Tensor,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    let f = Fused::bias(bias);
    gemm_op(gpu, step, "gemm", a, trans_a, b, trans_b, &f, c, cfg)
}

#[allow(clippy::too_many_arguments)]
fn gemm_op(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    a: &Tensor,
    trans_a: bool,
    b: &Tensor,
    trans_b: bool,
    f: &Fused,
    c: &Tensor,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    let (ar, ac) = matrix(op, "A", a)?;
    let (br, bc) = matrix(op, "B", b)?;
    let (m, k) = if trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if trans_b { (bc, br) } else { (br, bc) };
    if kb != k {
        let want = if trans_b { [n, k] } else { [k, n] };
        return Err(Error::shape(
            op,
            format!(
                "{} (inner dimension must match {} {:?})",
                b.label(),
                a.label(),
                a.shape()
            ),
            &want,
            b.shape(),
        ));
    }
    c.expect_shape(op, &[m, n])?;
    f.check_bias(op, n)?;
    let call = GemmCall::plain(
        op,
        sections(trans_a, trans_b),
        (m, n, k),
        1,
        Geo::default(),
        a,
        b,
        c,
    )
    .with(f);
    gemm::record(gpu, step, &call, cfg)
}

/// Record the dense forward `y = x w + b`: x `[N, in]`, w `[in, out]`,
/// b `[out]`, y `[N, out]`.
pub fn dense_forward(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
) -> Result<Scratch> {
    dense_forward_fused(gpu, step, x, w, &Fused::bias(b), y)
}

/// [`dense_forward`] with the bias and epilogue of `f`.
pub fn dense_forward_fused(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    w: &Tensor,
    f: &Fused,
    y: &Tensor,
) -> Result<Scratch> {
    let cfg = GemmConfig::default();
    gemm_op(gpu, step, "dense_forward", x, false, w, false, f, y, &cfg)
}

/// Record `dx = dy w^T`: dy `[N, out]`, w `[in, out]`, dx `[N, in]`.
pub fn dense_backward_data(
    gpu: &Gpu,
    step: &mut Step,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
) -> Result<Scratch> {
    dense_backward_data_fused(gpu, step, dy, w, &Epilogue::NONE, dx)
}

/// [`dense_backward_data`] ending in `epi` (the derivative of the input's
/// activation).
pub fn dense_backward_data_fused(
    gpu: &Gpu,
    step: &mut Step,
    dy: &Tensor,
    w: &Tensor,
    epi: &Epilogue,
    dx: &Tensor,
) -> Result<Scratch> {
    let (cfg, f) = (GemmConfig::default(), Fused::epi(*epi));
    let op = "dense_backward_data";
    gemm_op(gpu, step, op, dy, false, w, true, &f, dx, &cfg)
}

/// Record `dw = x^T dy`: x `[N, in]`, dy `[N, out]`, dw `[in, out]`.
pub fn dense_backward_weights(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
) -> Result<Scratch> {
    weights_as_conv(gpu, step, x, dy, dw, dw, false)
}

/// Weight and bias gradients in one dispatch: `dwb` holds dw (`[in, out]`
/// values, `dw`'s shape) then db (`[out]`), back to back.
pub fn dense_backward_weights_bias(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    dwb: &Tensor,
) -> Result<Scratch> {
    weights_as_conv(gpu, step, x, dy, dw, dwb, true)
}

/// `dw = x^T dy` recorded as the weight gradient of a 1x1 convolution over
/// `[N, 1, 1, in]` (the same [in, out] layout, the same sums): on lavapipe
/// the transposed-A dense variant writing into a parameter arena grew the
/// process's memory by ~0.5 MB per submitted step (found by tests/global/soak.rs;
/// the conv variant does not), so dense layers use the conv kernel.
fn weights_as_conv(
    gpu: &Gpu,
    step: &mut Step,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    out: &Tensor,
    bias: bool,
) -> Result<Scratch> {
    let op = "dense_backward_weights";
    let (n, fin) = matrix(op, "x", x)?;
    let (fin_w, fout) = matrix(op, "dw", dw)?;
    if fin_w != fin {
        return Err(Error::shape(
            op,
            dw.label().to_string(),
            &[fin, fout],
            dw.shape(),
        ));
    }
    dy.expect_shape(op, &[n, fout])?;
    let bg = if bias {
        conv2d::expect_numel(op, out, fin * fout + fout)?;
        Some(BiasGrad {
            side: DySide::B,
            rows: n,
            cols: fout,
            off: fin * fout,
        })
    } else {
        None
    };
    let d = Conv2d::new(1, 1, 1, Padding::valid()).dims(op, n, 1, 1, fin, fout)?;
    let (x4, dy4) = (x.reshape(&[n, 1, 1, fin])?, dy.reshape(&[n, 1, 1, fout])?);
    let cfg = GemmConfig::default();
    conv2d::record_backward_weights(gpu, step, op, &d, &x4, &dy4, out, bg, &cfg)
}

/// CPU reference of [`gemm()`]: `a`, `b` stored as described there; returns
/// `[m, n]`, accumulated in f64.
#[allow(clippy::too_many_arguments)]
pub fn gemm_cpu<T: Real>(
    a: &[T],
    trans_a: bool,
    b: &[T],
    trans_b: bool,
    bias: Option<&[T]>,
    m: usize,
    n: usize,
    k: usize,
) -> Vec<T> {
    let mut c = vec![T::default(); m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = bias.map_or(0.0, |b| b[j].to_f64());
            for l in 0..k {
                let av = if trans_a { a[l * m + i] } else { a[i * k + l] };
                let bv = if trans_b { b[j * k + l] } else { b[l * n + j] };
                acc += av.to_f64() * bv.to_f64();
            }
            c[i * n + j] = T::from_f64(acc);
        }
    }
    c
}

/// CPU reference: `y = x w + b` with x `[batch, fin]`, w `[fin, fout]`.
pub fn dense_forward_cpu<T: Real>(
    x: &[T],
    w: &[T],
    b: Option<&[T]>,
    batch: usize,
    fin: usize,
    fout: usize,
) -> Vec<T> {
    gemm_cpu(x, false, w, false, b, batch, fout, fin)
}

/// CPU reference: `dx = dy w^T`.
pub fn dense_backward_data_cpu<T: Real>(
    dy: &[T],
    w: &[T],
    batch: usize,
    fin: usize,
    fout: usize,
) -> Vec<T> {
    gemm_cpu(dy, false, w, true, None, batch, fin, fout)
}

/// CPU reference: `dw = x^T dy`.
pub fn dense_backward_weights_cpu<T: Real>(
    x: &[T],
    dy: &[T],
    batch: usize,
    fin: usize,
    fout: usize,
) -> Vec<T> {
    gemm_cpu(x, true, dy, false, None, fin, fout, batch)
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    let mut v = Vec::new();
    let none = EpiKind::default();
    for ta in [false, true] {
        for tb in [false, true] {
            for (main, tile) in gemm::test_tiles() {
                v.push(gemm::gemm_kernel(sections(ta, tb), none, None, tile, main));
            }
        }
    }
    let bias = EpiKind { bias: true, ..none };
    for (main, tile) in gemm::test_tiles() {
        v.push(gemm::gemm_kernel(
            sections(false, false),
            bias,
            None,
            tile,
            main,
        ));
        let wgrad = sections(true, false);
        v.push(gemm::gemm_kernel(wgrad, none, Some(DySide::B), tile, main));
    }
    for (main, tile) in gemm::epilogue_test_tiles() {
        for epi in crate::ops::epilogue::test_kinds() {
            v.push(gemm::gemm_kernel(
                sections(false, false),
                epi,
                None,
                tile,
                main,
            ));
            v.push(gemm::gemm_kernel(
                sections(false, true),
                epi,
                None,
                tile,
                main,
            ));
        }
    }
    for epi in crate::ops::epilogue::test_kinds() {
        v.push(gemm::reduce_kernel(epi));
    }
    v
}
