//! Layers with weights: dense, conv and transposed conv share one shape of
//! code (forward; backward = weight gradient, bias gradient, input
//! gradient), so one generic [`Layer`] serves all three through [`WeightOp`].

use rand::Rng;

use crate::error::Result;
use crate::gpu::{Gpu, Step, Tensor};
use crate::nn::param::{glorot_uniform, Layout, Param};
use crate::ops::conv2d::{Conv2d, Padding};
use crate::ops::conv_transpose2d::ConvTranspose2d;
use crate::ops::gemm::{Epilogue, Fused, Scratch};
use crate::ops::{bias, dense};

/// An op of the form `y = f(x, w) + b`, with its two backward passes, in
/// the fused forms a layer records (bias, activation and dropout in the
/// forward's store; the input activation's derivative in backward data's;
/// the bias gradient in backward weights').
pub trait WeightOp {
    fn forward(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        w: &Tensor,
        f: &Fused,
        y: &Tensor,
    ) -> Result<Scratch>;
    fn backward_data(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        dy: &Tensor,
        w: &Tensor,
        epi: &Epilogue,
        dx: &Tensor,
    ) -> Result<Scratch>;
    fn backward_weights(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
    ) -> Result<Scratch>;
    /// Weight and bias gradient into `dwb` (dw's values, then db's).
    fn backward_weights_bias(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
        dwb: &Tensor,
    ) -> Result<Scratch>;
}

/// The dense op: x `[N, in]`, w `[in, out]`.
#[derive(Clone, Copy, Debug)]
pub struct Dense;

impl WeightOp for Dense {
    fn forward(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        w: &Tensor,
        f: &Fused,
        y: &Tensor,
    ) -> Result<Scratch> {
        dense::dense_forward_fused(gpu, step, x, w, f, y)
    }
    fn backward_data(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        dy: &Tensor,
        w: &Tensor,
        epi: &Epilogue,
        dx: &Tensor,
    ) -> Result<Scratch> {
        dense::dense_backward_data_fused(gpu, step, dy, w, epi, dx)
    }
    fn backward_weights(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
    ) -> Result<Scratch> {
        dense::dense_backward_weights(gpu, step, x, dy, dw)
    }
    fn backward_weights_bias(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dw: &Tensor,
        dwb: &Tensor,
    ) -> Result<Scratch> {
        dense::dense_backward_weights_bias(gpu, step, x, dy, dw, dwb)
    }
}

/// `WeightOp` for ops whose inherent methods already have the trait's
/// signatures (conv and transposed conv): the trait forwards to them, so
/// the ops stay usable without importing the trait.
macro_rules! weight_op_from_inherent {
    ($($op:ty),*) => {$(
        impl WeightOp for $op {
            fn forward(
                &self,
                gpu: &Gpu,
                step: &mut Step,
                x: &Tensor,
                w: &Tensor,
                f: &Fused,
                y: &Tensor,
            ) -> Result<Scratch> {
                <$op>::forward_fused(self, gpu, step, x, w, f, y)
            }
            fn backward_data(
                &self,
                gpu: &Gpu,
                step: &mut Step,
                dy: &Tensor,
                w: &Tensor,
                epi: &Epilogue,
                dx: &Tensor,
            ) -> Result<Scratch> {
                <$op>::backward_data_fused(self, gpu, step, dy, w, epi, dx)
            }
            fn backward_weights(
                &self,
                gpu: &Gpu,
                step: &mut Step,
                x: &Tensor,
                dy: &Tensor,
                dw: &Tensor,
            ) -> Result<Scratch> {
                <$op>::backward_weights(self, gpu, step, x, dy, dw)
            }
            fn backward_weights_bias(
                &self,
                gpu: &Gpu,
                step: &mut Step,
                x: &Tensor,
                dy: &Tensor,
                dw: &Tensor,
                dwb: &Tensor,
            ) -> Result<Scratch> {
                <$op>::backward_weights_bias(self, gpu, step, x, dy, dw, dwb)
            }
        }
    )*};
}

weight_op_from_inherent!(Conv2d, ConvTranspose2d);

/// A layer's op with its weight and optional bias (Keras initialisation:
/// Glorot-uniform weight, zero bias).
pub struct Layer<Op> {
    pub op: Op,
    pub w: Param,
    pub b: Option<Param>,
}

impl<Op: WeightOp> Layer<Op> {
    fn build(
        gpu: &Gpu,
        op: Op,
        name: &str,
        w: (&[usize], Vec<f32>, Layout),
        bias: Option<(usize, Layout)>,
    ) -> Result<Self> {
        let w = Param::new(gpu, &format!("{name}.weight"), w.0, &w.1, w.2)?;
        let b = match bias {
            Some((n, layout)) => Some(Param::new(
                gpu,
                &format!("{name}.bias"),
                &[n],
                &vec![0.0; n],
                layout,
            )?),
            None => None,
        };
        Ok(Layer { op, w, b })
    }

    /// Record `y = op(x, w) + b`.
    pub fn forward(&self, gpu: &Gpu, step: &mut Step, x: &Tensor, y: &Tensor) -> Result<()> {
        self.forward_fused(gpu, step, x, y, Epilogue::NONE)
    }

    /// Record `y = epi(op(x, w) + b)`: the activation (and training
    /// dropout) applied in the same dispatch.
    pub fn forward_fused(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        y: &Tensor,
        epi: Epilogue,
    ) -> Result<()> {
        // a bias packed after the weight is bound through the joined range
        // (its own offset need not be aligned)
        let joined = self.joined(|p| &p.value);
        let bias = match (&joined, &self.b) {
            (Some(wb), _) => Some((wb, self.w.numel())),
            (None, Some(b)) => Some((&b.value, 0)),
            (None, None) => None,
        };
        let f = Fused {
            bias,
            epi,
            bias_grad: None,
        };
        let s = self.op.forward(gpu, step, x, &self.w.value, &f, y)?;
        step.retain(s.tensors);
        Ok(())
    }

    /// Weight and bias as one range (of value, or of grad), when the bias
    /// follows the weight (a [`crate::nn::ParamArena`]).
    fn joined(&self, t: fn(&Param) -> &Tensor) -> Option<Tensor> {
        let b = self.b.as_ref()?;
        t(&self.w).joined(t(b), &format!("{}+bias", t(&self.w).label()))
    }

    /// Record the parameter gradients (overwritten) and, when `dx` is given,
    /// the input gradient ending in its epilogue (the derivative of the
    /// input's activation, or none).
    pub fn backward(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        x: &Tensor,
        dy: &Tensor,
        dx: Option<(&Tensor, Epilogue)>,
    ) -> Result<()> {
        let s = match (self.joined(|p| &p.grad), &self.b) {
            // weight and bias gradients in one dispatch
            (Some(dwb), _) => {
                self.op
                    .backward_weights_bias(gpu, step, x, dy, &self.w.grad, &dwb)?
            }
            (None, b) => {
                let s = self.op.backward_weights(gpu, step, x, dy, &self.w.grad)?;
                if let Some(b) = b {
                    let sb = bias::bias_grad(gpu, step, dy, &b.grad)?;
                    step.retain(sb.tensors);
                }
                s
            }
        };
        step.retain(s.tensors);
        if let Some((dx, epi)) = dx {
            self.backward_input(gpu, step, dy, dx, epi)?;
        }
        Ok(())
    }

    /// Record only the input gradient, ending in `epi` (the generator's
    /// update backpropagates through the discriminator without touching
    /// its gradients).
    pub fn backward_input(
        &self,
        gpu: &Gpu,
        step: &mut Step,
        dy: &Tensor,
        dx: &Tensor,
        epi: Epilogue,
    ) -> Result<()> {
        let s = self
            .op
            .backward_data(gpu, step, dy, &self.w.value, &epi, dx)?;
        step.retain(s.tensors);
        Ok(())
    }

    /// The parameters packed as one run each ([`crate::nn::ParamArena::pack`]):
    /// the weight with its bias right after it.
    pub fn runs(&mut self) -> Vec<Vec<&mut Param>> {
        vec![std::iter::once(&mut self.w)
            .chain(self.b.as_mut())
            .collect()]
    }

    pub fn params(&self) -> Vec<&Param> {
        std::iter::once(&self.w).chain(self.b.as_ref()).collect()
    }
}

/// Flattened NHWC image shape `(h, w, c)` on one side of a dense layer.
pub type Nhwc = Option<(usize, usize, usize)>;

impl Layer<Dense> {
    /// Dense `fan_in -> fan_out`; `name` is the PyTorch module path.
    #[allow(clippy::too_many_arguments)]
    pub fn dense(
        gpu: &Gpu,
        rng: &mut impl Rng,
        name: &str,
        fan_in: usize,
        fan_out: usize,
        bias: bool,
        in_nhwc: Nhwc,
        out_nhwc: Nhwc,
    ) -> Result<Self> {
        let w0 = glorot_uniform(rng, fan_in, fan_out, fan_in * fan_out);
        let bias_layout = match out_nhwc {
            Some((h, w, c)) => Layout::BiasNhwc { h, w, c },
            None => Layout::Same,
        };
        Layer::build(
            gpu,
            Dense,
            name,
            (&[fan_in, fan_out], w0, Layout::Dense { in_nhwc, out_nhwc }),
            bias.then_some((fan_out, bias_layout)),
        )
    }
}

impl Layer<Conv2d> {
    /// KxK conv, weight `[K, K, Cin, Cout]`.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        gpu: &Gpu,
        rng: &mut impl Rng,
        name: &str,
        k: usize,
        stride: usize,
        pad: Padding,
        cin: usize,
        cout: usize,
        bias: bool,
    ) -> Result<Self> {
        let w0 = glorot_uniform(rng, cin * k * k, cout * k * k, k * k * cin * cout);
        Layer::build(
            gpu,
            Conv2d::new(k, k, stride, pad),
            name,
            (&[k, k, cin, cout], w0, Layout::Conv),
            bias.then_some((cout, Layout::Same)),
        )
    }
}

impl Layer<ConvTranspose2d> {
    /// Keras `same` transposed conv from `size` to `size * stride`; weight
    /// `[K, K, Cout, Cin]` (the `Conv2DTranspose` kernel layout).
    #[allow(clippy::too_many_arguments)]
    pub fn conv_transpose_same(
        gpu: &Gpu,
        rng: &mut impl Rng,
        name: &str,
        k: usize,
        stride: usize,
        size: usize,
        cin: usize,
        cout: usize,
        bias: bool,
    ) -> Result<Self> {
        let out = size * stride;
        let op = ConvTranspose2d::new(k, k, stride, Padding::same(out, k, stride), out, out);
        let w0 = glorot_uniform(rng, cout * k * k, cin * k * k, k * k * cout * cin);
        Layer::build(
            gpu,
            op,
            name,
            (&[k, k, cout, cin], w0, Layout::ConvTranspose),
            bias.then_some((cout, Layout::Same)),
        )
    }
}
