//! A CPU reference of the VAE training step ([`crate::models::vae::Vae::train_step`]),
//! built only from the ops' CPU reference functions, for the whole-step
//! numerics test (tests/it/vae_step.rs).
//!
//! It is written out top to bottom like the GPU step: gather the batch,
//! the forward list, the two losses, the backward list in reverse, Adam.
//! The architecture is spelled out here again from the article (not taken
//! from the GPU model's layer structs), so a layer built with the wrong
//! geometry on the GPU shows up as a mismatch. Generic over [`Real`]: with
//! `f64` every stored intermediate is f64 too, the tight reference.
//!
//! Randomness and data follow the GPU step exactly: the batch is
//! [`gather_pixels_cpu`] of the step index (the GPU's `counters[0]`), eps
//! is `Philox::new(seed, 1).normal_cpu(step, B * L)` (element `r * L + j`
//! at counter `(e, step, 1, 0)`, see [`crate::ops::reparam`]), and Adam's
//! step is `t = step + 1`.
//!
//! The KL term follows `config.kl`: [`kl_cpu`] (analytic) or [`kl_mc_cpu`]
//! (the one-sample estimate at the reparameterised z, its gradient the
//! total derivative through z), added into the gradient at the encoder's
//! output after the reparameterisation's backward, as the GPU step does.

use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Tensor};
use crate::models::kink::{relu_family_backward, KinkCount, KinkSides};
use crate::models::vae::{KlEstimator, Vae, VaeConfig};
use crate::nn::Param;
use crate::ops::activation::Activation;
use crate::ops::bce::{bce_cpu, BceReduction};
use crate::ops::bias::bias_grad_cpu;
use crate::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use crate::ops::conv_transpose2d::{self, ConvTranspose2d};
use crate::ops::dense::{dense_backward_data_cpu, dense_backward_weights_cpu, dense_forward_cpu};
use crate::ops::gather::{gather_pixels_cpu, PixelMap};
use crate::ops::kl::kl_cpu;
use crate::ops::kl_mc::kl_mc_cpu;
use crate::ops::reparam::{clamp_logvar, reparam_backward_cpu, reparam_forward_cpu};
use crate::ops::rng::Philox;
use crate::ops::Real;
use crate::optim::adam::adam_update_cpu;

const RELU: Activation = Activation::Relu;
/// The ReLUs of the step, in forward order: encoder conv 1, 2, decoder
/// dense, transposed conv 1, 2.
const RELUS: usize = 5;

/// One parameter on the CPU: engine layout, with its Adam moments.
#[derive(Clone, Debug)]
pub struct CpuParam<T> {
    /// The PyTorch name, as [`crate::nn::Param::name`].
    pub name: String,
    pub shape: Vec<usize>,
    pub value: Vec<T>,
    pub m: Vec<T>,
    pub v: Vec<T>,
}

impl<T: Real> CpuParam<T> {
    /// Copies of GPU parameters' values and Adam moments (engine layout).
    pub fn read_all(gpu: &Gpu, params: &[&Param]) -> Result<Vec<CpuParam<T>>> {
        pollster::block_on(Self::read_all_async(gpu, params))
    }

    /// [`CpuParam::read_all`], awaited (a browser cannot block).
    pub async fn read_all_async(gpu: &Gpu, params: &[&Param]) -> Result<Vec<CpuParam<T>>> {
        let mut all = Vec::with_capacity(params.len());
        for p in params {
            all.push(CpuParam {
                name: p.name.clone(),
                shape: p.shape().to_vec(),
                value: read_as(gpu, &p.value).await?,
                m: read_as(gpu, &p.m).await?,
                v: read_as(gpu, &p.v).await?,
            });
        }
        Ok(all)
    }
}

/// A tensor's f32 values, converted to `T`.
pub(crate) async fn read_as<T: Real>(gpu: &Gpu, t: &Tensor) -> Result<Vec<T>> {
    let v = t.read_f32_async(gpu).await?;
    Ok(v.into_iter().map(|x| T::from_f64(x as f64)).collect())
}

/// What one CPU training step produced.
#[derive(Clone, Debug)]
pub struct CpuStep<T> {
    /// The step index (the GPU's `counters[0]` before the step).
    pub step: u64,
    /// Reconstruction loss (BCE summed per sample, batch mean), nats.
    pub recon: f64,
    /// KL loss (batch mean), nats: the configured estimator's.
    pub kl: f64,
    /// The batch mean of each row's sum of the KL term's addends'
    /// magnitudes (analytic: `0.5 sum ((exp(c) - 1 - c) + mu^2)`, the KL
    /// itself; the estimate: `0.5 sum (z^2 + eps^2 + |c|)`, whose addends
    /// cancel): the scale of the KL's rounding error.
    pub kl_abs: f64,
    /// Every parameter's gradient, `(name, gradient)` in
    /// [`Vae::params`] order.
    pub grads: Vec<(String, Vec<T>)>,
    /// The smallest nonzero |pre-activation| over all ReLU inputs: below
    /// the f32 error of the GPU's forward, a ReLU could switch sides between
    /// GPU and CPU (a diagnostic for the test, which prints it).
    pub relu_margin: f64,
    /// Where the step followed the GPU's ReLU branches
    /// ([`VaeCpu::train_step_following`]; empty otherwise).
    pub kinks: KinkCount,
}

/// The VAE's parameters and hyperparameters on the CPU.
#[derive(Clone, Debug)]
pub struct VaeCpu<T> {
    pub config: VaeConfig,
    /// In [`Vae::params`] order (encoder first).
    pub params: Vec<CpuParam<T>>,
}

/// The layer geometries for batch `b`: the dims of each conv, and of the
/// conv each transposed conv is the adjoint of.
struct Dims {
    enc1: ConvDims,
    enc2: ConvDims,
    dec1: ConvDims,
    dec2: ConvDims,
    dec3: ConvDims,
}

impl Dims {
    fn new(b: usize) -> Result<Dims> {
        let valid_s2 = Conv2d::new(3, 3, 2, Padding::valid());
        // Keras `same` transposed conv from `size` to `size * stride`.
        let same_t = |stride: usize, size: usize| {
            let out = size * stride;
            ConvTranspose2d::new(3, 3, stride, Padding::same(out, 3, stride), out, out)
        };
        let op = "vae cpu";
        Ok(Dims {
            enc1: valid_s2.dims(op, b, 28, 28, 1, 32)?,
            enc2: valid_s2.dims(op, b, 13, 13, 32, 64)?,
            dec1: same_t(2, 7).dims(op, b, 7, 7, 32, 64)?,
            dec2: same_t(2, 14).dims(op, b, 14, 14, 64, 32)?,
            dec3: same_t(1, 28).dims(op, b, 28, 28, 32, 1)?,
        })
    }
}

/// Smallest nonzero |x| in `xs` (infinity when all are zero).
fn min_nonzero_abs<T: Real>(xs: &[T]) -> f64 {
    xs.iter()
        .map(|v| v.to_f64().abs())
        .filter(|&a| a > 0.0)
        .fold(f64::INFINITY, f64::min)
}

impl<T: Real> VaeCpu<T> {
    /// Copy the GPU model's parameters and Adam moments (engine layout).
    pub fn from_gpu(gpu: &Gpu, vae: &Vae) -> Result<VaeCpu<T>> {
        pollster::block_on(Self::from_gpu_async(gpu, vae))
    }

    /// [`VaeCpu::from_gpu`], awaited (a browser cannot block).
    pub async fn from_gpu_async(gpu: &Gpu, vae: &Vae) -> Result<VaeCpu<T>> {
        let params = CpuParam::read_all_async(gpu, &vae.params()).await?;
        Ok(VaeCpu {
            config: vae.config.clone(),
            params,
        })
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&CpuParam<T>> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The value of `name` (a missing name is a bug in this file).
    fn w(&self, name: &str) -> &[T] {
        match self.param(name) {
            Some(p) => &p.value,
            None => panic!("vae cpu: no parameter {name}"),
        }
    }

    /// One training step at step index `step` on the dataset `images`
    /// (`n * 784` bytes) in the order `perm`, exactly as the GPU step with
    /// `counters[0] == step`: returns losses and gradients, updates the
    /// parameters and moments in place.
    pub fn train_step(&mut self, step: u64, perm: &[u32], images: &[u8]) -> Result<CpuStep<T>> {
        let n = self.config.batch * self.config.latent;
        let eps: Vec<T> = Philox::new(self.config.seed, 1).normal_cpu(step as u32, n);
        self.train_step_with_noise(step, perm, images, &eps)
    }

    /// [`Self::train_step`] with the reparameterisation noise `eps`
    /// (`B * L` values) given: a test feeds the very draws the GPU made, so
    /// both sides compute from the same inputs whatever the accuracy of the
    /// driver's `log`/`cos` (WGSL allows 2^-11 absolute for `cos`).
    pub fn train_step_with_noise(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        eps: &[T],
    ) -> Result<CpuStep<T>> {
        self.step(step, perm, images, eps, None)
    }

    /// [`Self::train_step_with_noise`] taking the GPU's branch at every
    /// ReLU input within f32's reach of 0 (`sides.above`: the GPU step's
    /// [`crate::models::vae::TrainStep::relu_outputs`] > 0, in that order);
    /// [`CpuStep::kinks`] counts what it followed and where the GPU's
    /// branch was wrong.
    pub fn train_step_following(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        eps: &[T],
        sides: &KinkSides,
    ) -> Result<CpuStep<T>> {
        if sides.above.len() != RELUS {
            return Err(Error::invalid(
                "vae cpu",
                format!("{} ReLU sides for {RELUS} ReLUs", sides.above.len()),
            ));
        }
        self.step(step, perm, images, eps, Some(sides))
    }

    fn step(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        eps: &[T],
        sides: Option<&KinkSides>,
    ) -> Result<CpuStep<T>> {
        let (b, l) = (self.config.batch, self.config.latent);
        if eps.len() != b * l {
            return Err(Error::invalid(
                "vae cpu",
                format!("{} noise values for batch {b} x latent {l}", eps.len()),
            ));
        }
        if b == 0 || perm.len() < b || images.len() < perm.len() * PIXELS {
            return Err(Error::invalid(
                "vae cpu",
                format!(
                    "batch {b} with {} images in the order and {} bytes",
                    perm.len(),
                    images.len()
                ),
            ));
        }
        let d = Dims::new(b)?;
        let map = PixelMap {
            binarize: self.config.options.binarize,
            ..PixelMap::UNIT
        };
        let x: Vec<T> = gather_pixels_cpu(step, perm, images, b, PIXELS, map);

        // Forward: encoder.
        let h1 = conv2d::forward_cpu(
            &d.enc1,
            &x,
            self.w("encoder.0.weight"),
            Some(self.w("encoder.0.bias")),
        );
        let a1 = RELU.forward_cpu(&h1);
        let h2 = conv2d::forward_cpu(
            &d.enc2,
            &a1,
            self.w("encoder.2.weight"),
            Some(self.w("encoder.2.bias")),
        );
        let a2 = RELU.forward_cpu(&h2);
        let h = dense_forward_cpu(
            &a2,
            self.w("encoder.5.weight"),
            Some(self.w("encoder.5.bias")),
            b,
            2304,
            2 * l,
        );
        // Sampling.
        let z = reparam_forward_cpu(&h, eps, l);
        // Decoder.
        let d0 = dense_forward_cpu(
            &z,
            self.w("decoder.0.weight"),
            Some(self.w("decoder.0.bias")),
            b,
            l,
            1568,
        );
        let d0a = RELU.forward_cpu(&d0);
        let d1 = conv_transpose2d::forward_cpu(
            &d.dec1,
            &d0a,
            self.w("decoder.3.weight"),
            Some(self.w("decoder.3.bias")),
        );
        let d1a = RELU.forward_cpu(&d1);
        let d2 = conv_transpose2d::forward_cpu(
            &d.dec2,
            &d1a,
            self.w("decoder.5.weight"),
            Some(self.w("decoder.5.bias")),
        );
        let d2a = RELU.forward_cpu(&d2);
        let logits = conv_transpose2d::forward_cpu(
            &d.dec3,
            &d2a,
            self.w("decoder.7.weight"),
            Some(self.w("decoder.7.bias")),
        );

        // Losses: BCE (per-sample sum, batch mean) and KL (batch mean).
        let recon = bce_cpu(&logits, &x, PIXELS, BceReduction::SumPerSampleMean, 1.0);
        let kl = match self.config.options.kl {
            KlEstimator::Analytic => kl_cpu(&h, l, 1.0),
            KlEstimator::Mc => kl_mc_cpu(&h, eps, &z, l, 1.0),
        };
        let kl_abs = match self.config.options.kl {
            KlEstimator::Analytic => kl.loss,
            KlEstimator::Mc => {
                let mut a = 0.0;
                for (e, (ep, zz)) in eps.iter().zip(&z).enumerate() {
                    let (r, j) = (e / l, e % l);
                    let c = clamp_logvar(h[r * 2 * l + l + j].to_f64());
                    let (ep, zz) = (ep.to_f64(), zz.to_f64());
                    a += 0.5 * (zz * zz + ep * ep + c.abs());
                }
                a / b as f64
            }
        };

        // Backward, in reverse. The ReLUs' derivatives: at index k of the
        // forward order, following the GPU's branches where given.
        let mut kinks = KinkCount::default();
        let mut relu_backward = |k: usize, x: &[T], dy: &[T]| {
            relu_family_backward(0.0, x, dy, sides.map(|s| (s, k)), &mut kinks)
        };
        let mut g: Vec<(&str, Vec<T>)> = Vec::new();
        let dlogits = recon.grad;
        g.push((
            "decoder.7.weight",
            conv_transpose2d::backward_weights_cpu(&d.dec3, &d2a, &dlogits),
        ));
        g.push(("decoder.7.bias", bias_grad_cpu(&dlogits, 1)));
        let dd2a =
            conv_transpose2d::backward_data_cpu(&d.dec3, &dlogits, self.w("decoder.7.weight"));
        let dd2 = relu_backward(4, &d2, &dd2a);
        g.push((
            "decoder.5.weight",
            conv_transpose2d::backward_weights_cpu(&d.dec2, &d1a, &dd2),
        ));
        g.push(("decoder.5.bias", bias_grad_cpu(&dd2, 32)));
        let dd1a = conv_transpose2d::backward_data_cpu(&d.dec2, &dd2, self.w("decoder.5.weight"));
        let dd1 = relu_backward(3, &d1, &dd1a);
        g.push((
            "decoder.3.weight",
            conv_transpose2d::backward_weights_cpu(&d.dec1, &d0a, &dd1),
        ));
        g.push(("decoder.3.bias", bias_grad_cpu(&dd1, 64)));
        let dd0a = conv_transpose2d::backward_data_cpu(&d.dec1, &dd1, self.w("decoder.3.weight"));
        let dd0 = relu_backward(2, &d0, &dd0a);
        g.push((
            "decoder.0.weight",
            dense_backward_weights_cpu(&z, &dd0, b, l, 1568),
        ));
        g.push(("decoder.0.bias", bias_grad_cpu(&dd0, 1568)));
        let dz = dense_backward_data_cpu(&dd0, self.w("decoder.0.weight"), b, l, 1568);
        // Through the sampling, plus the KL term's own gradient.
        let dh: Vec<T> = reparam_backward_cpu(&h, eps, &dz, l)
            .iter()
            .zip(&kl.grad)
            .map(|(r, k)| T::from_f64(r.to_f64() + k.to_f64()))
            .collect();
        g.push((
            "encoder.5.weight",
            dense_backward_weights_cpu(&a2, &dh, b, 2304, 2 * l),
        ));
        g.push(("encoder.5.bias", bias_grad_cpu(&dh, 2 * l)));
        let da2 = dense_backward_data_cpu(&dh, self.w("encoder.5.weight"), b, 2304, 2 * l);
        let dh2 = relu_backward(1, &h2, &da2);
        g.push((
            "encoder.2.weight",
            conv2d::backward_weights_cpu(&d.enc2, &a1, &dh2),
        ));
        g.push(("encoder.2.bias", bias_grad_cpu(&dh2, 64)));
        let da1 = conv2d::backward_data_cpu(&d.enc2, &dh2, self.w("encoder.2.weight"));
        let dh1 = relu_backward(0, &h1, &da1);
        g.push((
            "encoder.0.weight",
            conv2d::backward_weights_cpu(&d.enc1, &x, &dh1),
        ));
        g.push(("encoder.0.bias", bias_grad_cpu(&dh1, 32)));

        // Adam on every parameter, t = step + 1 (as the GPU's counter + 1).
        let mut grads = Vec::with_capacity(self.params.len());
        let adam = self.config.adam;
        for p in &mut self.params {
            let grad = match g.iter().position(|(n, _)| *n == p.name) {
                Some(i) => g.swap_remove(i).1,
                None => {
                    return Err(Error::invalid(
                        "vae cpu",
                        format!("no gradient computed for {}", p.name),
                    ))
                }
            };
            adam_update_cpu(
                &adam,
                step as u32 + 1,
                &mut p.value,
                &grad,
                &mut p.m,
                &mut p.v,
            );
            grads.push((p.name.clone(), grad));
        }

        let relu_margin = [&h1, &h2, &d0, &d1, &d2]
            .iter()
            .map(|t| min_nonzero_abs(t))
            .fold(f64::INFINITY, f64::min);
        Ok(CpuStep {
            step,
            recon: recon.loss,
            kl: kl.loss,
            kl_abs,
            grads,
            relu_margin,
            kinks,
        })
    }
}
