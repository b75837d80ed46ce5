//! Transposed 2-D convolution: the exact adjoint of a [`Conv2d`].
//!
//! A transposed conv with `Ci_t` input and `Co_t` output channels, input
//! `[N, Hi, Wi, Ci_t]` and output `[N, Ho, Wo, Co_t]`, is the adjoint of the
//! conv `[N, Ho, Wo, Co_t] -> [N, Hi, Wi, Ci_t]` with the same kernel, stride
//! and padding; its weight is that conv's HWIO weight `[KH, KW, Co_t, Ci_t]`.
//! The output size is given explicitly (several sizes map onto the same
//! input at stride > 1); it must satisfy `conv.out_size(Ho, Wo) == (Hi, Wi)`.
//!
//! No kernel of its own: the same three GEMM recordings as [`Conv2d`],
//! roles swapped:
//! - forward          = conv backward data (by stride phases, no inserted zeros)
//! - backward data    = conv forward
//! - backward weights = conv backward weights with x := dy_t, dy := x_t.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, Tensor};
use crate::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use crate::ops::gemm::{BiasGrad, DySide, Epilogue, Fused, GemmConfig, Scratch};
use crate::ops::Real;

/// A transposed convolution: kernel, stride, padding (of the conv it is the
/// adjoint of, so a `same` transposed conv uses [`Padding::same`] of its
/// output size) and the explicit output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2d {
    pub conv: Conv2d,
    pub out_h: usize,
    pub out_w: usize,
}

impl ConvTranspose2d {
    pub fn new(
        kh: usize,
        kw: usize,
        stride: usize,
        pad: Padding,
        out_h: usize,
        out_w: usize,
    ) -> ConvTranspose2d {
        ConvTranspose2d {
            conv: Conv2d::new(kh, kw, stride, pad),
            out_h,
            out_w,
        }
    }

    /// The dims of the adjoint conv (its x is this op's y), checking that
    /// the explicit output size maps back onto the input size.
    pub fn dims(
        &self,
        op: &'static str,
        batch: usize,
        hi: usize,
        wi: usize,
        ci_t: usize,
        co_t: usize,
    ) -> Result<ConvDims> {
        let d = self
            .conv
            .dims(op, batch, self.out_h, self.out_w, co_t, ci_t)?;
        if (d.oh, d.ow) != (hi, wi) {
            return Err(Error::invalid(
                op,
                format!(
                    "output {}x{} with {}x{} kernel, stride {}, padding {:?} maps back to \
                     {}x{}, not the input's {hi}x{wi}",
                    self.out_h,
                    self.out_w,
                    self.conv.kh,
                    self.conv.kw,
                    self.conv.stride,
                    self.conv.pad,
                    d.oh,
                    d.ow
                ),
            ));
        }
        Ok(d)
    }

    /// Dims from this op's input `x` `[N, Hi, Wi, Ci_t]` and weight
    /// `[KH, KW, Co_t, Ci_t]`.
    fn dims_of(&self, op: &'static str, x: &Tensor, w: &Tensor) -> Result<ConvDims> {
        let [n, hi, wi, ci_t] = match x.shape() {
            [n, h, w, c] => [*n, *h, *w, *c],
            s => {
                return Err(Error::invalid(
                    op,
                    format!("{} must be NHWC [N, H, W, C], got shape {s:?}", x.label()),
                ))
            }
        };
        let co_t = match w.shape() {
            [kh, kw, co, ci] if *kh == self.conv.kh && *kw == self.conv.kw && *ci == ci_t => *co,
            s => {
                return Err(Error::shape(
                    op,
                    format!(
                        "{} (weight [KH, KW, Co_t, Ci_t], Ci_t from {} {:?})",
                        w.label(),
                        x.label(),
                        x.shape()
                    ),
                    &[
                        self.conv.kh,
                        self.conv.kw,
                        s.get(2).copied().unwrap_or(0),
                        ci_t,
                    ],
                    s,
                ))
            }
        };
        self.dims(op, n, hi, wi, ci_t, co_t)
    }

    /// Record `y = convT(x, w) + b`: x `[N, Hi, Wi, Ci_t]`, w `[KH, KW,
    /// Co_t, Ci_t]`, b `[Co_t]`, y `[N, out_h, out_w, Co_t]`.
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

    /// [`ConvTranspose2d::forward`] with the bias and epilogue of `f`.
    pub fn forward_fused(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        w: &Tensor,
        f: &Fused,
        y: &Tensor,
    ) -> Result<Scratch> {
        let op = "conv_transpose2d_forward";
        let d = self.dims_of(op, x, w)?;
        y.expect_shape(op, &d.x_shape())?;
        f.check_bias(op, d.cin)?;
        conv2d::record_backward_data(gpu, step, op, &d, x, w, f, y, &GemmConfig::default())
    }

    /// Record `dx = d(sum y*dy)/dx`: dy `[N, out_h, out_w, Co_t]`, dx like x.
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

    /// [`ConvTranspose2d::backward_data`] ending in `epi` (the derivative
    /// of the input's activation).
    pub fn backward_data_fused(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        dy: &Tensor,
        w: &Tensor,
        epi: &Epilogue,
        dx: &Tensor,
    ) -> Result<Scratch> {
        let op = "conv_transpose2d_backward_data";
        let d = self.dims_of(op, dx, w)?;
        dy.expect_shape(op, &d.x_shape())?;
        let f = Fused::epi(*epi);
        conv2d::record_forward(gpu, step, op, &d, dy, w, &f, dx, &GemmConfig::default())
    }

    /// Record `dw = d(sum y*dy)/dw`: x `[N, Hi, Wi, Ci_t]`, dy `[N, out_h,
    /// out_w, Co_t]`, dw `[KH, KW, Co_t, Ci_t]` (overwritten).
    pub fn backward_weights(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
    ) -> Result<Scratch> {
        self.weights(gpu, step, x, dy, dw, dw, false)
    }

    /// Weight and bias gradients in one dispatch: `dwb` holds dw (`dw`'s
    /// `[KH, KW, Co_t, Ci_t]` values) then db (`[Co_t]`), back to back.
    pub fn backward_weights_bias(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
        dwb: &Tensor,
    ) -> Result<Scratch> {
        self.weights(gpu, step, x, dy, dw, dwb, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn weights(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
        out: &Tensor,
        bias: bool,
    ) -> Result<Scratch> {
        let op = "conv_transpose2d_backward_weights";
        let d = self.dims_of(op, x, dw)?;
        dy.expect_shape(op, &d.x_shape())?;
        let nw = dw.numel();
        // the adjoint conv's x is this op's dy: its column sums are db
        let bg = bias.then_some(BiasGrad {
            side: DySide::A,
            rows: d.batch * d.h * d.w,
            cols: d.cin,
            off: nw,
        });
        if bias {
            conv2d::expect_numel(op, out, nw + d.cin)?;
        }
        let cfg = GemmConfig::default();
        conv2d::record_backward_weights(gpu, step, op, &d, dy, x, out, bg, &cfg)
    }
}

/// CPU reference forward, for the adjoint conv's dims `d` (d.x is this op's
/// output): `y = conv^T x + b`.
pub fn forward_cpu<T: Real>(d: &ConvDims, x: &[T], w: &[T], b: Option<&[T]>) -> Vec<T> {
    let mut y = conv2d::backward_data_cpu(d, x, w);
    if let Some(b) = b {
        for (i, v) in y.iter_mut().enumerate() {
            *v = T::from_f64(v.to_f64() + b[i % d.cin].to_f64());
        }
    }
    y
}

/// CPU reference backward data: the conv forward of dy.
pub fn backward_data_cpu<T: Real>(d: &ConvDims, dy: &[T], w: &[T]) -> Vec<T> {
    conv2d::forward_cpu(d, dy, w, None)
}

/// CPU reference backward weights.
pub fn backward_weights_cpu<T: Real>(d: &ConvDims, x: &[T], dy: &[T]) -> Vec<T> {
    conv2d::backward_weights_cpu(d, dy, x)
}
