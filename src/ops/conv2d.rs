//! 2-D convolution, NHWC activations, HWIO weights, as implicit GEMM.
//!
//! `y[n, oy, ox, co] = b[co] + sum_{ky, kx, ci} x[n, oy*s + ky - top, ox*s + kx - left, ci]
//!                                           * w[ky, kx, ci, co]`
//! with zero outside the image (padding before/after set per axis, so the
//! uneven Keras `same` at stride 2 is expressible).
//!
//! All three directions run on the one register-tiled GEMM template of
//! [`crate::ops::gemm`], with different index functions:
//! - forward: M = N*OH*OW, K = KH*KW*Cin, N = Cout; A is the im2col matrix
//!   of x, gathered on the fly; B is w as stored.
//! - backward data: by stride phases. Input pixels with the same
//!   `(iy + top) % s, (ix + left) % s` are reached by the same kernel taps,
//!   so each of the s*s phases is a dense GEMM (M = N * pixels of the phase,
//!   K = taps of the phase * Cout, N = Cin) over dy, without the zeros a
//!   dilated-input formulation would multiply. All phases go in one
//!   dispatch (workgroup z = phase).
//! - backward weights: M = KH*KW*Cin, N = Cout, K = N*OH*OW (the batch
//!   reduction), split along K into partial sums added in a fixed order.
//!
//! Transposed convolution ([`crate::ops::conv_transpose2d`]) reuses these
//! three recordings with the roles swapped.
//!
//! One op, one file (forward, both backwards, their CPU references, the
//! kernel list), as for every op.

use crate::error::{Error, Result};
use crate::gpu::{grid, Access, Gpu, Kernel, Step, Tensor};
use crate::ops::gemm::{
    self, BiasGrad, DySide, EpiKind, Epilogue, Fused, GemmCall, GemmConfig, Geo, Scratch,
};
use crate::ops::Real;
use crate::shaders;

/// Zero padding before and after, per axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Padding {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl Padding {
    /// No padding (Keras `valid`).
    pub fn valid() -> Padding {
        Padding::default()
    }

    /// The same padding on every side.
    pub fn uniform(p: usize) -> Padding {
        Padding {
            top: p,
            bottom: p,
            left: p,
            right: p,
        }
    }

    /// Keras/TensorFlow `same` for a square input of size `size`: output
    /// `ceil(size / stride)`, the total padding split with the extra pixel
    /// after (5x5 stride 2 on 28: 1 before, 2 after).
    pub fn same(size: usize, k: usize, stride: usize) -> Padding {
        let out = size.div_ceil(stride.max(1));
        let total = ((out.saturating_sub(1)) * stride + k).saturating_sub(size);
        let before = total / 2;
        Padding {
            top: before,
            bottom: total - before,
            left: before,
            right: total - before,
        }
    }
}

/// A convolution's hyperparameters (the tensor shapes give the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: Padding,
}

/// Every size of one convolution: input `[batch, h, w, cin]`, weight
/// `[kh, kw, cin, cout]`, output `[batch, oh, ow, cout]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvDims {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub oh: usize,
    pub ow: usize,
    pub cout: usize,
    pub conv: Conv2d,
}

impl ConvDims {
    pub fn x_shape(&self) -> [usize; 4] {
        [self.batch, self.h, self.w, self.cin]
    }
    pub fn w_shape(&self) -> [usize; 4] {
        [self.conv.kh, self.conv.kw, self.cin, self.cout]
    }
    pub fn y_shape(&self) -> [usize; 4] {
        [self.batch, self.oh, self.ow, self.cout]
    }
    /// Multiply-adds times two of the forward pass (each direction costs the
    /// same for a stride-1 conv; backward data skips nothing but padding).
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.oh * self.ow * self.cout) as f64
            * (self.conv.kh * self.conv.kw * self.cin) as f64
    }

    fn geo(&self) -> Geo {
        Geo {
            batch: self.batch,
            h: self.h,
            w: self.w,
            cin: self.cin,
            oh: self.oh,
            ow: self.ow,
            cout: self.cout,
            kh: self.conv.kh,
            kw: self.conv.kw,
            stride: self.conv.stride,
            pad_y: self.conv.pad.top,
            pad_x: self.conv.pad.left,
        }
    }
}

impl Conv2d {
    pub fn new(kh: usize, kw: usize, stride: usize, pad: Padding) -> Conv2d {
        Conv2d {
            kh,
            kw,
            stride,
            pad,
        }
    }

    /// Output height and width for an `h x w` input; an error names `op`
    /// when the kernel does not fit or the stride is 0.
    pub fn out_size(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        let ph = h + self.pad.top + self.pad.bottom;
        let pw = w + self.pad.left + self.pad.right;
        if self.stride == 0 || self.kh == 0 || self.kw == 0 || ph < self.kh || pw < self.kw {
            return Err(Error::invalid(
                op,
                format!(
                    "{}x{} kernel, stride {} does not fit a {h}x{w} input padded by {:?}",
                    self.kh, self.kw, self.stride, self.pad
                ),
            ));
        }
        Ok((
            (ph - self.kh) / self.stride + 1,
            (pw - self.kw) / self.stride + 1,
        ))
    }

    /// All sizes, for input `[batch, h, w, cin]` and `cout` output channels.
    pub fn dims(
        &self,
        op: &'static str,
        batch: usize,
        h: usize,
        w: usize,
        cin: usize,
        cout: usize,
    ) -> Result<ConvDims> {
        let (oh, ow) = self.out_size(op, h, w)?;
        Ok(ConvDims {
            batch,
            h,
            w,
            cin,
            oh,
            ow,
            cout,
            conv: *self,
        })
    }

    /// Sizes from the input tensor and the weight tensor, checked.
    fn dims_of(&self, op: &'static str, x: &Tensor, w: &Tensor) -> Result<ConvDims> {
        let [n, h, wd, cin] = nhwc(op, x)?;
        let cout = match w.shape() {
            [kh, kw, ci, co] if *kh == self.kh && *kw == self.kw && *ci == cin => *co,
            s => {
                return Err(Error::shape(
                    op,
                    format!(
                        "{} (weight, HWIO, Cin from {} {:?})",
                        w.label(),
                        x.label(),
                        x.shape()
                    ),
                    &[self.kh, self.kw, cin, s.get(3).copied().unwrap_or(0)],
                    s,
                ))
            }
        };
        self.dims(op, n, h, wd, cin, cout)
    }

    /// Record `y = conv(x, w) + b`: x `[N, H, W, Cin]`, w `[KH, KW, Cin,
    /// Cout]`, b `[Cout]`, y `[N, OH, OW, Cout]`.
    pub fn forward(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        y: &Tensor,
    ) -> Result<Scratch> {
        self.forward_fused(gpu, step, x, w, &Fused::bias(b), y)
    }

    /// [`Conv2d::forward`] with the bias and epilogue of `f`.
    pub fn forward_fused(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        w: &Tensor,
        f: &Fused,
        y: &Tensor,
    ) -> Result<Scratch> {
        let op = "conv2d_forward";
        let d = self.dims_of(op, x, w)?;
        y.expect_shape(op, &d.y_shape())?;
        f.check_bias(op, d.cout)?;
        record_forward(gpu, step, op, &d, x, w, f, y, &GemmConfig::default())
    }

    /// Record `dx = d(sum y*dy)/dx`: dy `[N, OH, OW, Cout]`, w as in forward,
    /// dx `[N, H, W, Cin]`. Every element of dx is written.
    pub fn backward_data(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        dy: &Tensor,
        w: &Tensor,
        dx: &Tensor,
    ) -> Result<Scratch> {
        self.backward_data_fused(gpu, step, dy, w, &Epilogue::NONE, dx)
    }

    /// [`Conv2d::backward_data`] ending in `epi` (the derivative of the
    /// input's activation).
    pub fn backward_data_fused(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        dy: &Tensor,
        w: &Tensor,
        epi: &Epilogue,
        dx: &Tensor,
    ) -> Result<Scratch> {
        let op = "conv2d_backward_data";
        let d = self.dims_of(op, dx, w)?;
        dy.expect_shape(op, &d.y_shape())?;
        let f = Fused::epi(*epi);
        record_backward_data(gpu, step, op, &d, dy, w, &f, dx, &GemmConfig::default())
    }

    /// Record `dw = d(sum y*dy)/dw`: x `[N, H, W, Cin]`, dy `[N, OH, OW,
    /// Cout]`, dw `[KH, KW, Cin, Cout]` (overwritten, not accumulated).
    pub fn backward_weights(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
    ) -> Result<Scratch> {
        let op = "conv2d_backward_weights";
        let d = self.dims_of(op, x, dw)?;
        dy.expect_shape(op, &d.y_shape())?;
        record_backward_weights(gpu, step, op, &d, x, dy, dw, None, &GemmConfig::default())
    }

    /// Weight and bias gradients in one dispatch: `dwb` holds dw (`dw`'s
    /// `[KH, KW, Cin, Cout]` values) then db (`[Cout]`), back to back.
    pub fn backward_weights_bias(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
        dwb: &Tensor,
    ) -> Result<Scratch> {
        let op = "conv2d_backward_weights";
        let d = self.dims_of(op, x, dw)?;
        dy.expect_shape(op, &d.y_shape())?;
        let nw = d.conv.kh * d.conv.kw * d.cin * d.cout;
        expect_numel(op, dwb, nw + d.cout)?;
        let bg = BiasGrad {
            side: DySide::B,
            rows: d.batch * d.oh * d.ow,
            cols: d.cout,
            off: nw,
        };
        record_backward_weights(
            gpu,
            step,
            op,
            &d,
            x,
            dy,
            dwb,
            Some(bg),
            &GemmConfig::default(),
        )
    }
}

fn nhwc(op: &'static str, t: &Tensor) -> Result<[usize; 4]> {
    match t.shape() {
        [n, h, w, c] => Ok([*n, *h, *w, *c]),
        s => Err(Error::invalid(
            op,
            format!("{} must be NHWC [N, H, W, C], got shape {s:?}", t.label()),
        )),
    }
}

const FWD: &[&str] = &["setup_plain", "a_conv_fwd", "b_dense", "c_row_plain"];
const DGRAD: &[&str] = &["conv_dgrad"];
const WGRAD: &[&str] = &["setup_plain", "a_conv_wgrad", "b_dense", "c_row_plain"];
/// `Z = dy W^T` of the col2im backward data: dy as `[N*OH*OW, Cout]`, W as
/// `[KH*KW*Cin, Cout]` read transposed.
const COLS: &[&str] = &["setup_plain", "a_dense", "b_dense_t", "c_row_plain"];

/// Record the forward GEMM for sizes `d` (shapes already checked).
#[allow(clippy::too_many_arguments)]
pub fn record_forward(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    d: &ConvDims,
    x: &Tensor,
    w: &Tensor,
    f: &Fused,
    y: &Tensor,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    let mn_k = (d.batch * d.oh * d.ow, d.cout, d.conv.kh * d.conv.kw * d.cin);
    let call = GemmCall::plain(op, FWD, mn_k, 1, d.geo(), x, w, y).with(f);
    gemm::record(gpu, step, &call, cfg)
}

/// Record backward data by stride phases for sizes `d` (shapes checked),
/// plus `bias[ci]` per input channel (the transposed conv's bias).
#[allow(clippy::too_many_arguments)]
pub fn record_backward_data(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    d: &ConvDims,
    dy: &Tensor,
    w: &Tensor,
    f: &Fused,
    dx: &Tensor,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    if cfg.col2im.unwrap_or(d.cin <= 8) {
        return record_backward_data_col2im(gpu, step, op, d, dy, w, f, dx, cfg);
    }
    let s = d.conv.stride;
    // the largest phase: ceil(H/s) x ceil(W/s) pixels, ceil(K/s)^2 taps
    let mn_k = (
        d.batch * d.h.div_ceil(s) * d.w.div_ceil(s),
        d.cin,
        d.conv.kh.div_ceil(s) * d.conv.kw.div_ceil(s) * d.cout,
    );
    let call = GemmCall::plain(op, DGRAD, mn_k, (s * s) as u32, d.geo(), dy, w, dx).with(f);
    gemm::record(gpu, step, &call, cfg)
}

/// Backward data for few input channels: `Z = dy W^T` (M = N*OH*OW, N =
/// KH*KW*Cin, K = Cout: wide, where the phases' GEMM has N = Cin and each
/// loaded element feeds one FMA), then col2im sums the taps reaching each
/// input pixel (+ bias). On lavapipe, convT 14->28 64->1: see
/// docs/PERFORMANCE.md.
#[allow(clippy::too_many_arguments)]
fn record_backward_data_col2im(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    d: &ConvDims,
    dy: &Tensor,
    w: &Tensor,
    f: &Fused,
    dx: &Tensor,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    f.epi.check(op, dx)?;
    let m = d.batch * d.oh * d.ow;
    let taps = d.conv.kh * d.conv.kw * d.cin;
    let z = Tensor::zeros(gpu, &[m, taps], &format!("{op} col2im columns"))?;
    let call = GemmCall::plain(op, COLS, (m, taps, d.cout), 1, Geo::default(), dy, w, &z);
    let mut scratch = gemm::record(gpu, step, &call, cfg)?;
    let len = dx.numel();
    let u = |v: usize| {
        u32::try_from(v).map_err(|_| Error::invalid(op, format!("size {v} exceeds u32")))
    };
    let mut params = vec![
        u(len)?,
        u(d.h)?,
        u(d.w)?,
        u(d.cin)?,
        u(d.oh)?,
        u(d.ow)?,
        u(d.conv.kh)?,
        u(d.conv.kw)?,
        u(d.conv.stride)?,
        u(d.conv.pad.top)?,
        u(d.conv.pad.left)?,
        0,
    ];
    params.extend(f.epi.words(f.bias.map_or(0, |b| b.1))?);
    u(z.numel())?;
    let groups = grid(gpu, len.div_ceil(256) as u64)?;
    let mut t = vec![&z, dx];
    t.extend(f.bias.map(|b| b.0));
    t.extend(f.epi.tensors());
    let kernel = col2im_kernel(f.epi.kind(f.bias.is_some()));
    step.dispatch(gpu, op, &kernel, &params, &t, groups)?;
    scratch.tensors.push(z);
    Ok(scratch)
}

fn col2im_kernel(epi: EpiKind) -> Kernel {
    gemm::epilogue_kernel(
        shaders::COL2IM,
        "col2im",
        &[Access::Read, Access::ReadWrite],
        epi,
    )
}

/// Refuse a tensor that does not hold `n` elements.
pub(crate) fn expect_numel(op: &'static str, t: &Tensor, n: usize) -> Result<()> {
    if t.numel() != n {
        return Err(Error::shape(op, t.label().to_string(), &[n], t.shape()));
    }
    Ok(())
}

/// Record backward weights for sizes `d` (shapes checked), and the bias
/// gradient into the same output when `bias_grad` says where.
#[allow(clippy::too_many_arguments)]
pub fn record_backward_weights(
    gpu: &Gpu,
    step: &mut Step,
    op: &'static str,
    d: &ConvDims,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    bias_grad: Option<BiasGrad>,
    cfg: &GemmConfig,
) -> Result<Scratch> {
    let mn_k = (d.conv.kh * d.conv.kw * d.cin, d.cout, d.batch * d.oh * d.ow);
    let mut call = GemmCall::plain(op, WGRAD, mn_k, 1, d.geo(), x, dy, dw);
    call.bias_grad = bias_grad;
    gemm::record(gpu, step, &call, cfg)
}

/// Input pixel `(iy, ix)` hit by output `(oy, ox)` through tap `(ky, kx)`,
/// or None in the padding.
fn tap(d: &ConvDims, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
    let iy = (oy * d.conv.stride + ky).checked_sub(d.conv.pad.top)?;
    let ix = (ox * d.conv.stride + kx).checked_sub(d.conv.pad.left)?;
    (iy < d.h && ix < d.w).then_some((iy, ix))
}

/// Visit every (x index, w index, y index) triple of the convolution.
fn for_each_tap(d: &ConvDims, mut f: impl FnMut(usize, usize, usize)) {
    for n in 0..d.batch {
        for oy in 0..d.oh {
            for ox in 0..d.ow {
                for ky in 0..d.conv.kh {
                    for kx in 0..d.conv.kw {
                        let Some((iy, ix)) = tap(d, oy, ox, ky, kx) else {
                            continue;
                        };
                        let xb = ((n * d.h + iy) * d.w + ix) * d.cin;
                        let wb = (ky * d.conv.kw + kx) * d.cin * d.cout;
                        let yb = ((n * d.oh + oy) * d.ow + ox) * d.cout;
                        for ci in 0..d.cin {
                            for co in 0..d.cout {
                                f(xb + ci, wb + ci * d.cout + co, yb + co);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// CPU reference forward, accumulated in f64.
pub fn forward_cpu<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T> {
    let mut acc = vec![0.0f64; d.batch * d.oh * d.ow * d.cout];
    if let Some(b) = b {
        for (i, a) in acc.iter_mut().enumerate() {
            *a = b[i % d.cout].to_f64();
        }
    }
    for_each_tap(d, |xi, wi, yi| acc[yi] += x[xi].to_f64() * w[wi].to_f64());
    acc.into_iter().map(T::from_f64).collect()
}

/// CPU reference backward data: `dx = d(sum y*dy)/dx`.
pub fn backward_data_cpu<T: Real>(d: &ConvDims, dy: &[T], w: &[T]) -> Vec<T> {
    let mut acc = vec![0.0f64; d.batch * d.h * d.w * d.cin];
    for_each_tap(d, |xi, wi, yi| acc[xi] += dy[yi].to_f64() * w[wi].to_f64());
    acc.into_iter().map(T::from_f64).collect()
}

/// CPU reference backward weights: `dw = d(sum y*dy)/dw`.
pub fn backward_weights_cpu<T: Real>(d: &ConvDims, x: &[T], dy: &[T]) -> Vec<T> {
    let mut acc = vec![0.0f64; d.conv.kh * d.conv.kw * d.cin * d.cout];
    for_each_tap(d, |xi, wi, yi| acc[wi] += x[xi].to_f64() * dy[yi].to_f64());
    acc.into_iter().map(T::from_f64).collect()
}

/// The kernels of this module (and so of transposed conv), for the shader
/// validation test.
pub fn kernels() -> Vec<Kernel> {
    let mut v = Vec::new();
    let bias = EpiKind {
        bias: true,
        ..EpiKind::default()
    };
    for (main, tile) in gemm::test_tiles() {
        for epi in [EpiKind::default(), bias] {
            v.push(gemm::gemm_kernel(FWD, epi, None, tile, main));
            v.push(gemm::gemm_kernel(DGRAD, epi, None, tile, main));
        }
        for side in [None, Some(DySide::A), Some(DySide::B)] {
            v.push(gemm::gemm_kernel(
                WGRAD,
                EpiKind::default(),
                side,
                tile,
                main,
            ));
        }
        v.push(gemm::gemm_kernel(
            COLS,
            EpiKind::default(),
            None,
            tile,
            main,
        ));
    }
    for (main, tile) in gemm::epilogue_test_tiles() {
        for epi in crate::ops::epilogue::test_kinds() {
            v.push(gemm::gemm_kernel(FWD, epi, None, tile, main));
            v.push(gemm::gemm_kernel(DGRAD, epi, None, tile, main));
        }
    }
    for epi in crate::ops::epilogue::test_kinds() {
        v.push(col2im_kernel(epi));
    }
    v
}
