//! Pointwise activations: ReLU, LeakyReLU, sigmoid, tanh.
//!
//! Forward `y = f(x)`; backward `dx = dy * f'`. ReLU and LeakyReLU take the
//! derivative from the saved input `x`; sigmoid and tanh from the saved
//! output `y` (what their layers keep). Sigmoid and tanh are written so no
//! `exp` ever overflows: finite at |x| = 100 and beyond.

use crate::error::Result;
use crate::gpu::{f32_param, grid, Access, Gpu, Kernel, Step, Tensor};
use crate::ops::rng::snippet_kernel;
use crate::ops::{Real, ELEMENTWISE_WG};
use crate::shaders;

/// Which pointwise function.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    /// Negative slope alpha (Keras LeakyReLU default 0.3; the models use 0.2).
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
}

impl Activation {
    fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
        }
    }

    fn alpha(self) -> f32 {
        match self {
            Activation::LeakyRelu(a) => a,
            _ => 0.0,
        }
    }

    /// True when the backward pass needs the forward output, not the input.
    pub fn backward_uses_output(self) -> bool {
        matches!(self, Activation::Sigmoid | Activation::Tanh)
    }

    fn forward_kernel(self) -> Kernel {
        let entry = match self {
            Activation::Relu => "relu_forward",
            Activation::LeakyRelu(_) => "leaky_relu_forward",
            Activation::Sigmoid => "sigmoid_forward",
            Activation::Tanh => "tanh_forward",
        };
        snippet_kernel(
            &[shaders::ACTIVATIONS],
            shaders::ELEMENTWISE,
            entry,
            &[Access::Read, Access::ReadWrite],
        )
    }

    fn backward_kernel(self) -> Kernel {
        let entry = match self {
            Activation::Relu => "relu_backward",
            Activation::LeakyRelu(_) => "leaky_relu_backward",
            Activation::Sigmoid => "sigmoid_backward",
            Activation::Tanh => "tanh_backward",
        };
        snippet_kernel(
            &[shaders::ACTIVATIONS],
            shaders::ELEMENTWISE,
            entry,
            &[Access::Read, Access::Read, Access::ReadWrite],
        )
    }

    /// Record `y = f(x)`. `x` and `y` must have the same shape.
    pub fn forward(self, gpu: &Gpu, step: &mut Step, x: &Tensor, y: &Tensor) -> Result<()> {
        let op = self.name();
        y.expect_shape(op, x.shape())?;
        let n = x.numel() as u32;
        let groups = grid(gpu, n.div_ceil(ELEMENTWISE_WG) as u64)?;
        let params = [n, f32_param(self.alpha())];
        step.dispatch(gpu, op, &self.forward_kernel(), &params, &[x, y], groups)
    }

    /// Record `dx = dy * f'`. `saved` is `x` for ReLU/LeakyReLU and `y` for
    /// sigmoid/tanh (see [`Activation::backward_uses_output`]).
    pub fn backward(
        self,
        gpu: &Gpu,
        step: &mut Step,
        saved: &Tensor,
        dy: &Tensor,
        dx: &Tensor,
    ) -> Result<()> {
        let op = self.name();
        dy.expect_shape(op, saved.shape())?;
        dx.expect_shape(op, saved.shape())?;
        let n = saved.numel() as u32;
        let groups = grid(gpu, n.div_ceil(ELEMENTWISE_WG) as u64)?;
        let params = [n, f32_param(self.alpha())];
        step.dispatch(
            gpu,
            op,
            &self.backward_kernel(),
            &params,
            &[saved, dy, dx],
            groups,
        )
    }

    /// CPU reference: `f(x)`, computed in f64.
    pub fn forward_cpu<T: Real>(self, x: &[T]) -> Vec<T> {
        x.iter()
            .map(|&v| T::from_f64(self.apply(v.to_f64())))
            .collect()
    }

    /// CPU reference: `dy * f'`, from the saved tensor as the GPU takes it.
    pub fn backward_cpu<T: Real>(self, saved: &[T], dy: &[T]) -> Vec<T> {
        saved
            .iter()
            .zip(dy)
            .map(|(&s, &g)| {
                let s = s.to_f64();
                let d = match self {
                    Activation::Relu => (s > 0.0) as u8 as f64,
                    Activation::LeakyRelu(a) => {
                        if s > 0.0 {
                            1.0
                        } else {
                            a as f64
                        }
                    }
                    Activation::Sigmoid => s * (1.0 - s),
                    Activation::Tanh => 1.0 - s * s,
                };
                T::from_f64(g.to_f64() * d)
            })
            .collect()
    }

    /// The function itself, in f64.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a as f64 * x
                }
            }
            Activation::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    let e = x.exp();
                    e / (1.0 + e)
                }
            }
            Activation::Tanh => x.tanh(),
        }
    }
}

/// The kernels of this module, for the shader validation test.
pub fn kernels() -> Vec<Kernel> {
    [
        Activation::Relu,
        Activation::LeakyRelu(0.2),
        Activation::Sigmoid,
        Activation::Tanh,
    ]
    .iter()
    .flat_map(|a| [a.forward_kernel(), a.backward_kernel()])
    .collect()
}
