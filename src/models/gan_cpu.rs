//! A CPU reference of the GAN training step ([`crate::models::gan::Gan::train_step`]),
//! built only from the ops' CPU reference functions, for the whole-step
//! numerics test (tests/it/gan_step.rs).
//!
//! It is written out top to bottom like the GPU step: gather the real
//! batch, draw z, the generator forward (batch norm in training mode, the
//! running averages updated), the discriminator on [real; fake] with its
//! dropout masks, `d_loss`, the discriminator's backward and Adam; then the
//! UPDATED discriminator on the fake batch with fresh dropout masks,
//! `g_loss`, the backward to the discriminator's input only, through tanh
//! and the generator, and the generator's Adam. The architecture is spelled
//! out here again from the article (not taken from the GPU model's layer
//! structs), so a layer built with the wrong geometry on the GPU shows up as
//! a mismatch. Generic over [`Real`]: with `f64` every stored intermediate
//! is f64 too, the tight reference.
//!
//! Randomness and data follow the GPU step exactly, with `s` the step index
//! (the GPU's `counters[0]` before the step): the real batch is
//! [`gather_pixels_cpu`] of `s` mapped to [-1, 1] ([`PixelMap::SIGNED`]);
//! z is `Philox::new(seed, 1).normal_cpu(s, B * L)` (element `r * L + j` at
//! counter `(e, s, 1, 0)`, what `fill_normal` draws); the dropout masks are
//! [`dropout_mask_cpu`] at step `s` on streams 2 and 3 (discriminator
//! update: layer 1, layer 2) and 4 and 5 (generator update), bit-equal to
//! the GPU's; both Adams use `t = s + 1`.
//!
//! The options: with `label_noise` F > 0 the discriminator's targets are
//! [`label_noise_targets_cpu`] of [1; 0] at step `s` on stream 7 (`1 + F u`,
//! `F u`, bit-equal to the kernel's unless its driver fuses the multiply-add);
//! with `fresh_noise_for_g` the generator's update runs the generator again
//! (training mode: the running averages updated a second time) on its own
//! latents, `Philox::new(seed, 8).normal_cpu(s, B * L)`, and backpropagates
//! through that forward.
//!
//! One file: the whole reference step, in the GPU step's order, so the two
//! can be read side by side.

use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::gan::{DHead, Gan, GanConfig};
use crate::models::vae_cpu::{read_as, CpuParam};
use crate::ops::activation::Activation;
use crate::ops::batch_norm::{self, BnForwardCpu};
use crate::ops::bce::label_noise_targets_cpu;
use crate::ops::bias::bias_grad_cpu;
use crate::ops::conv2d::{self, Conv2d, ConvDims, Padding};
use crate::ops::conv_transpose2d::{self, ConvTranspose2d};
use crate::ops::copy::copy_rows_cpu;
use crate::ops::dense::{dense_backward_data_cpu, dense_backward_weights_cpu, dense_forward_cpu};
use crate::ops::dropout::{dropout_backward_cpu, dropout_forward_cpu, dropout_mask_cpu};
use crate::ops::gather::{gather_pixels_cpu, PixelMap};
use crate::ops::pool::{global_max_pool_cpu, max_pool_backward_cpu};
use crate::ops::rng::Philox;
use crate::ops::Real;
use crate::optim::adam::{adam_update_cpu, AdamConfig};

const LEAKY: Activation = Activation::LeakyRelu(0.2);
const TANH: Activation = Activation::Tanh;
/// The discriminator's dropout rate.
const DROPOUT: f32 = 0.3;
/// Keras `BatchNormalization` defaults, as the f32 values the GPU holds.
const BN_EPS: f64 = 1e-3f32 as f64;
const BN_MOMENTUM: f64 = 0.99f32 as f64;
/// Philox streams of one step (see the module doc).
const STREAM_Z: u32 = 1;
const STREAM_D_UPDATE: [u32; 2] = [2, 3];
const STREAM_G_UPDATE: [u32; 2] = [4, 5];
const STREAM_LABEL_NOISE: u32 = 7;
const STREAM_Z_FOR_G: u32 = 8;
/// The generator's first image 7x7x256 (12544 dense features).
const G0: usize = 7 * 7 * 256;

/// What one CPU training step produced.
#[derive(Clone, Debug)]
pub struct GanCpuStep<T> {
    /// The step index (the GPU's `counters[0]` before the step).
    pub step: u64,
    /// `BCE(D(real), 1) + BCE(D(fake), 0)` (batch means), nats.
    pub d_loss: f64,
    /// `BCE(D'(fake), 1)` through the updated discriminator D', nats.
    pub g_loss: f64,
    /// Every parameter's gradient, `(name, gradient)` in [`Gan::params`]
    /// order (generator first).
    pub grads: Vec<(String, Vec<T>)>,
    /// The generated batch `[B, 28, 28, 1]` (the discriminator update's).
    pub fake: Vec<T>,
    /// The batch the generator's update ran on: `fake`, or with
    /// `fresh_noise_for_g` its own.
    pub g_fake: Vec<T>,
    /// The discriminator's targets on [real; fake] `[2B]`: 1 and 0, or with
    /// label noise `1 + F u` and `F u`.
    pub d_targets: Vec<T>,
    /// The discriminator's logits on [real; fake] `[2B]` (before its update).
    pub d_logits: Vec<T>,
    /// Every LeakyReLU output of the step (the discriminator's after
    /// dropout), named and ordered as the GPU's
    /// [`crate::models::gan::TrainStep::leaky_outputs`]: which side of the
    /// kink a unit is on decides its derivative (1 or 0.2), and the output
    /// has the input's sign.
    pub leaky_outputs: Vec<(&'static str, Vec<T>)>,
    /// The global max pool winners (max pool head only), as the GPU's
    /// `pool_argmax`, and the pooled NHWC tensors `[n, 7, 7, 128]` they
    /// were picked from.
    pub pool_argmax: Vec<(&'static str, Vec<u32>)>,
    pub pool_inputs: Vec<(&'static str, Vec<T>)>,
    /// The batch statistics each training-mode generator forward of the
    /// step averaged into the running ones, by running statistic name
    /// (`generator.1.running_mean`, ...): one forward, or two with
    /// `fresh_noise_for_g` (in order), for bounding the running averages'
    /// error.
    pub bn_batch_stats: Vec<Vec<(String, Vec<T>)>>,
    /// A gradient the step computes but does not use, to bound how the
    /// discriminator's update moves `g_loss`: `g_loss` w.r.t. the UPDATED
    /// discriminator's parameters (`(name, gradient)`, layer order).
    pub g_loss_wrt_d: Vec<(String, Vec<T>)>,
}

/// The GAN's parameters, running statistics and hyperparameters on the CPU.
#[derive(Clone, Debug)]
pub struct GanCpu<T> {
    pub config: GanConfig,
    /// In [`Gan::params`] order (generator first).
    pub params: Vec<CpuParam<T>>,
    /// The batch norms' running statistics by checkpoint name
    /// (`generator.1.running_mean`, ...).
    pub running: Vec<(String, Vec<T>)>,
}

/// The generator's transposed convs for a batch of `b`, as the dims of the
/// convs they are the adjoints of.
struct Dims {
    g1: ConvDims,
    g2: ConvDims,
    g3: ConvDims,
}

/// Keras `same` transposed conv, 5x5, from `size` to `size * stride`.
fn same_t(stride: usize, size: usize) -> ConvTranspose2d {
    let out = size * stride;
    ConvTranspose2d::new(5, 5, stride, Padding::same(out, 5, stride), out, out)
}

/// The discriminator's two convs for a batch of `n`.
fn d_dims(n: usize) -> Result<[ConvDims; 2]> {
    let conv = |size: usize| Conv2d::new(5, 5, 2, Padding::same(size, 5, 2));
    Ok([
        conv(28).dims("gan cpu", n, 28, 28, 1, 64)?,
        conv(14).dims("gan cpu", n, 14, 14, 64, 128)?,
    ])
}

impl Dims {
    fn new(b: usize) -> Result<Dims> {
        let op = "gan cpu";
        Ok(Dims {
            g1: same_t(1, 7).dims(op, b, 7, 7, 256, 128)?,
            g2: same_t(2, 7).dims(op, b, 7, 7, 128, 64)?,
            g3: same_t(2, 14).dims(op, b, 14, 14, 64, 1)?,
        })
    }
}

/// The discriminator's forward on `n` images, with what its backward needs.
struct DForward<T> {
    n: usize,
    dims: [ConvDims; 2],
    x: Vec<T>,
    h1: Vec<T>,
    m1: Vec<f32>,
    o1: Vec<T>,
    h2: Vec<T>,
    m2: Vec<f32>,
    o2: Vec<T>,
    /// Head features `[n, F]`.
    feat: Vec<T>,
    /// Global max pool winners (max pool head only).
    argmax: Option<Vec<u32>>,
    logits: Vec<T>,
}

/// The generator's forward (training mode), with what its backward needs.
struct GForward<T> {
    dims: Dims,
    z: Vec<T>,
    g0: Vec<T>,
    bn0: BnForwardCpu<T>,
    g0a: Vec<T>,
    g1: Vec<T>,
    bn1: BnForwardCpu<T>,
    g1a: Vec<T>,
    g2: Vec<T>,
    bn2: BnForwardCpu<T>,
    g2a: Vec<T>,
    /// tanh output `[B, 28, 28, 1]`.
    img: Vec<T>,
}

impl<T: Real> GanCpu<T> {
    /// Copy the GPU model's parameters, Adam moments (engine layout) and
    /// running statistics.
    pub fn from_gpu(gpu: &Gpu, gan: &Gan) -> Result<GanCpu<T>> {
        pollster::block_on(Self::from_gpu_async(gpu, gan))
    }

    /// [`GanCpu::from_gpu`], awaited (a browser cannot block).
    pub async fn from_gpu_async(gpu: &Gpu, gan: &Gan) -> Result<GanCpu<T>> {
        let params = CpuParam::read_all_async(gpu, &gan.params()).await?;
        let mut running = Vec::new();
        for bn in [&gan.g_bn0, &gan.g_bn1, &gan.g_bn2] {
            for (name, t) in bn.buffers() {
                running.push((name, read_as(gpu, t).await?));
            }
        }
        Ok(GanCpu {
            config: gan.config.clone(),
            params,
            running,
        })
    }

    /// The parameter named `name`.
    pub fn param(&self, name: &str) -> Option<&CpuParam<T>> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The running statistic named `name`.
    pub fn running_stat(&self, name: &str) -> Option<&[T]> {
        self.running
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The value of `name` (a missing name is a bug in this file).
    fn w(&self, name: &str) -> &[T] {
        match self.param(name) {
            Some(p) => &p.value,
            None => panic!("gan cpu: no parameter {name}"),
        }
    }

    /// The final dense layer's name and input features.
    fn head(&self) -> (&'static str, usize) {
        match self.config.head {
            DHead::GlobalMaxPool => ("discriminator.8", 128),
            DHead::Flatten => ("discriminator.7", 7 * 7 * 128),
        }
    }

    /// Batch norm `name` (training mode) on `x` with `c` channels: batch
    /// statistics, running averages updated Keras-style.
    fn bn_train(&mut self, name: &str, x: &[T], c: usize) -> BnForwardCpu<T> {
        let f = batch_norm::forward_train_cpu(
            x,
            c,
            self.w(&format!("{name}.weight")),
            self.w(&format!("{name}.bias")),
            BN_EPS,
        );
        for (stat, batch) in [("running_mean", &f.mean), ("running_var", &f.var)] {
            let key = format!("{name}.{stat}");
            match self.running.iter_mut().find(|(n, _)| *n == key) {
                Some((_, r)) => batch_norm::running_update_cpu(r, batch, BN_MOMENTUM),
                None => panic!("gan cpu: no running statistic {key}"),
            }
        }
        f
    }

    /// The discriminator (training mode) on `x` (`n` images), dropout masks
    /// of step `step` on `streams`.
    fn discriminate(
        &self,
        x: Vec<T>,
        n: usize,
        step: u32,
        streams: [u32; 2],
    ) -> Result<DForward<T>> {
        let seed = self.config.seed;
        let dims = d_dims(n)?;
        let h1 = conv2d::forward_cpu(
            &dims[0],
            &x,
            self.w("discriminator.0.weight"),
            Some(self.w("discriminator.0.bias")),
        );
        let m1 = dropout_mask_cpu(Philox::new(seed, streams[0]), step, h1.len(), DROPOUT);
        let o1 = dropout_forward_cpu(&LEAKY.forward_cpu(&h1), &m1);
        let h2 = conv2d::forward_cpu(
            &dims[1],
            &o1,
            self.w("discriminator.3.weight"),
            Some(self.w("discriminator.3.bias")),
        );
        let m2 = dropout_mask_cpu(Philox::new(seed, streams[1]), step, h2.len(), DROPOUT);
        let o2 = dropout_forward_cpu(&LEAKY.forward_cpu(&h2), &m2);
        let (feat, argmax) = match self.config.head {
            DHead::GlobalMaxPool => {
                let (y, a) = global_max_pool_cpu(&o2, [n, 7, 7, 128]);
                (y, Some(a))
            }
            DHead::Flatten => (o2.clone(), None),
        };
        let (fc, f) = self.head();
        let logits = dense_forward_cpu(
            &feat,
            self.w(&format!("{fc}.weight")),
            Some(self.w(&format!("{fc}.bias"))),
            n,
            f,
            1,
        );
        Ok(DForward {
            n,
            dims,
            x,
            h1,
            m1,
            o1,
            h2,
            m2,
            o2,
            feat,
            argmax,
            logits,
        })
    }

    /// The discriminator's backward from `dlogits`: its parameter gradients
    /// into `grads` when `weights`, and the gradient of its input.
    fn d_backward(
        &self,
        a: &DForward<T>,
        dlogits: &[T],
        weights: bool,
        grads: &mut Vec<(String, Vec<T>)>,
    ) -> Vec<T> {
        let n = a.n;
        let (fc, f) = self.head();
        let mut push = |name: String, g: Vec<T>| {
            if weights {
                grads.push((name, g));
            }
        };
        push(
            format!("{fc}.weight"),
            dense_backward_weights_cpu(&a.feat, dlogits, n, f, 1),
        );
        push(format!("{fc}.bias"), bias_grad_cpu(dlogits, 1));
        let dfeat = dense_backward_data_cpu(dlogits, self.w(&format!("{fc}.weight")), n, f, 1);
        let do2 = match &a.argmax {
            Some(argmax) => max_pool_backward_cpu(argmax, &dfeat, a.o2.len()),
            None => dfeat,
        };
        let dh2 = LEAKY.backward_cpu(&a.h2, &dropout_backward_cpu(&a.m2, &do2));
        push(
            "discriminator.3.weight".into(),
            conv2d::backward_weights_cpu(&a.dims[1], &a.o1, &dh2),
        );
        push("discriminator.3.bias".into(), bias_grad_cpu(&dh2, 128));
        let do1 = conv2d::backward_data_cpu(&a.dims[1], &dh2, self.w("discriminator.3.weight"));
        let dh1 = LEAKY.backward_cpu(&a.h1, &dropout_backward_cpu(&a.m1, &do1));
        push(
            "discriminator.0.weight".into(),
            conv2d::backward_weights_cpu(&a.dims[0], &a.x, &dh1),
        );
        push("discriminator.0.bias".into(), bias_grad_cpu(&dh1, 64));
        conv2d::backward_data_cpu(&a.dims[0], &dh1, self.w("discriminator.0.weight"))
    }

    /// The generator (batch norm from batch statistics, running averages
    /// updated) on the latents `z` `[B, L]`.
    fn generate(&mut self, z: Vec<T>) -> Result<GForward<T>> {
        let (b, l) = (self.config.batch, self.config.latent);
        let dims = Dims::new(b)?;
        let g0 = dense_forward_cpu(&z, self.w("generator.0.weight"), None, b, l, G0);
        let bn0 = self.bn_train("generator.1", &g0, G0);
        let g0a = LEAKY.forward_cpu(&bn0.y);
        let g1 = conv_transpose2d::forward_cpu(&dims.g1, &g0a, self.w("generator.5.weight"), None);
        let bn1 = self.bn_train("generator.6", &g1, 128);
        let g1a = LEAKY.forward_cpu(&bn1.y);
        let g2 = conv_transpose2d::forward_cpu(&dims.g2, &g1a, self.w("generator.8.weight"), None);
        let bn2 = self.bn_train("generator.9", &g2, 64);
        let g2a = LEAKY.forward_cpu(&bn2.y);
        let g3 = conv_transpose2d::forward_cpu(&dims.g3, &g2a, self.w("generator.11.weight"), None);
        let img = TANH.forward_cpu(&g3);
        Ok(GForward {
            dims,
            z,
            g0,
            bn0,
            g0a,
            g1,
            bn1,
            g1a,
            g2,
            bn2,
            g2a,
            img,
        })
    }

    /// The generator's backward from the gradient of its images `dimg`
    /// (through tanh, the transposed convs, LeakyReLUs and batch norms, in
    /// reverse): its parameter gradients.
    fn g_backward(&self, f: &GForward<T>, dimg: &[T]) -> Vec<(String, Vec<T>)> {
        let (b, l, d) = (self.config.batch, self.config.latent, &f.dims);
        let mut g: Vec<(String, Vec<T>)> = Vec::new();
        let mut push = |name: &str, v: Vec<T>| g.push((name.to_string(), v));
        let dg3 = TANH.backward_cpu(&f.img, dimg);
        push(
            "generator.11.weight",
            conv_transpose2d::backward_weights_cpu(&d.g3, &f.g2a, &dg3),
        );
        let dg2a = conv_transpose2d::backward_data_cpu(&d.g3, &dg3, self.w("generator.11.weight"));
        let dg2n = LEAKY.backward_cpu(&f.bn2.y, &dg2a);
        let (dg2, dgamma2, dbeta2) = batch_norm::backward_cpu(
            &f.g2,
            &dg2n,
            64,
            self.w("generator.9.weight"),
            &f.bn2.mean,
            &f.bn2.inv_std,
        );
        push("generator.9.weight", dgamma2);
        push("generator.9.bias", dbeta2);
        push(
            "generator.8.weight",
            conv_transpose2d::backward_weights_cpu(&d.g2, &f.g1a, &dg2),
        );
        let dg1a = conv_transpose2d::backward_data_cpu(&d.g2, &dg2, self.w("generator.8.weight"));
        let dg1n = LEAKY.backward_cpu(&f.bn1.y, &dg1a);
        let (dg1, dgamma1, dbeta1) = batch_norm::backward_cpu(
            &f.g1,
            &dg1n,
            128,
            self.w("generator.6.weight"),
            &f.bn1.mean,
            &f.bn1.inv_std,
        );
        push("generator.6.weight", dgamma1);
        push("generator.6.bias", dbeta1);
        push(
            "generator.5.weight",
            conv_transpose2d::backward_weights_cpu(&d.g1, &f.g0a, &dg1),
        );
        let dg0a = conv_transpose2d::backward_data_cpu(&d.g1, &dg1, self.w("generator.5.weight"));
        let dg0n = LEAKY.backward_cpu(&f.bn0.y, &dg0a);
        let (dg0, dgamma0, dbeta0) = batch_norm::backward_cpu(
            &f.g0,
            &dg0n,
            G0,
            self.w("generator.1.weight"),
            &f.bn0.mean,
            &f.bn0.inv_std,
        );
        push("generator.1.weight", dgamma0);
        push("generator.1.bias", dbeta0);
        push(
            "generator.0.weight",
            dense_backward_weights_cpu(&f.z, &dg0, b, l, G0),
        );
        g
    }

    /// Adam (t = `step + 1`) on the parameters whose names start with
    /// `prefix`, from their gradients in `grads`.
    fn adam(
        &mut self,
        config: &AdamConfig,
        step: u64,
        prefix: &str,
        grads: &[(String, Vec<T>)],
    ) -> Result<()> {
        for p in self
            .params
            .iter_mut()
            .filter(|p| p.name.starts_with(prefix))
        {
            let g = match grads.iter().find(|(n, _)| *n == p.name) {
                Some((_, g)) => g,
                None => {
                    return Err(Error::invalid(
                        "gan cpu",
                        format!("no gradient computed for {}", p.name),
                    ))
                }
            };
            adam_update_cpu(config, step as u32 + 1, &mut p.value, g, &mut p.m, &mut p.v);
        }
        Ok(())
    }

    /// One training step at step index `step` on the dataset `images`
    /// (`n * 784` bytes) in the order `perm`, exactly as the GPU step with
    /// `counters[0] == step`: returns losses and gradients, updates the
    /// parameters, moments and running statistics in place.
    pub fn train_step(&mut self, step: u64, perm: &[u32], images: &[u8]) -> Result<GanCpuStep<T>> {
        let (n, seed) = (self.config.batch * self.config.latent, self.config.seed);
        let z: Vec<T> = Philox::new(seed, STREAM_Z).normal_cpu(step as u32, n);
        self.train_step_with_noise(step, perm, images, z)
    }

    /// [`Self::train_step`] with the latents `z` (`B * L` values) given: a
    /// test feeds the very draws the GPU made, so both sides compute from
    /// the same inputs whatever the accuracy of the driver's `log`/`cos`.
    /// With `fresh_noise_for_g` the generator update's own latents are
    /// drawn here (f64 Box-Muller); [`Self::train_step_with_noises`] takes
    /// them too.
    pub fn train_step_with_noise(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        z: Vec<T>,
    ) -> Result<GanCpuStep<T>> {
        self.train_step_with_noises(step, perm, images, z, None)
    }

    /// [`Self::train_step_with_noise`] with the generator update's own
    /// latents `z_g` (`B * L` values) given as well, for
    /// `fresh_noise_for_g` (`None`: drawn on the CPU from stream 8; given
    /// without `fresh_noise_for_g`: refused).
    pub fn train_step_with_noises(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        z: Vec<T>,
        z_g: Option<Vec<T>>,
    ) -> Result<GanCpuStep<T>> {
        let (b, l, seed) = (self.config.batch, self.config.latent, self.config.seed);
        let z_g = match (self.config.options.fresh_noise_for_g, z_g) {
            (true, Some(z)) => Some(z),
            (true, None) => Some(Philox::new(seed, STREAM_Z_FOR_G).normal_cpu(step as u32, b * l)),
            (false, None) => None,
            (false, Some(_)) => {
                return Err(Error::invalid(
                    "gan cpu",
                    "latents for the generator's update given, but fresh_noise_for_g is off",
                ))
            }
        };
        if z.len() != b * l || z_g.as_ref().is_some_and(|z| z.len() != b * l) {
            return Err(Error::invalid(
                "gan cpu",
                format!("{} latent values for batch {b} x latent {l}", z.len()),
            ));
        }
        if b == 0 || perm.len() < b || images.len() < perm.len() * PIXELS {
            return Err(Error::invalid(
                "gan cpu",
                format!(
                    "batch {b} with {} images in the order and {} bytes",
                    perm.len(),
                    images.len()
                ),
            ));
        }
        let s = step as u32;

        // (1) The real batch in [-1, 1], the latents, the generator forward
        // (batch norm from batch statistics, running averages updated).
        let real: Vec<T> = gather_pixels_cpu(step, perm, images, b, PIXELS, PixelMap::SIGNED);
        let gf = self.generate(z)?;
        let img = gf.img.clone();

        // (2) The discriminator's update on [real; fake], targets 1 then 0
        // (with label noise 1 + F u and F u): the mean BCE over the 2B rows
        // times 2 = BCE(real, 1) + BCE(fake, 0).
        let both = copy_rows_cpu(&real, &vec![T::default(); 2 * b * PIXELS], 0, PIXELS);
        let both = copy_rows_cpu(&img, &both, b, PIXELS);
        let da = self.discriminate(both, 2 * b, s, STREAM_D_UPDATE)?;
        let mut targets: Vec<T> = (0..2 * b)
            .map(|i| T::from_f64((i < b) as u8 as f64))
            .collect();
        let noise = self.config.options.label_noise;
        if noise > 0.0 {
            let rng = Philox::new(seed, STREAM_LABEL_NOISE);
            targets = label_noise_targets_cpu(&targets, noise, rng, s);
        }
        let loss = self.config.options.loss;
        let d_loss = loss.d_cpu(&da.logits, &targets);
        let mut d_grads = Vec::new();
        self.d_backward(&da, &d_loss.grad, true, &mut d_grads);
        let adam_d = self.config.adam_d;
        self.adam(&adam_d, step, "discriminator.", &d_grads)?;

        // (3) The generator's update through the UPDATED discriminator on
        // the same fake batch (or, with fresh noise, on a batch generated
        // again from its own latents), fresh dropout masks; the backward
        // through the discriminator to its input, then tanh and the
        // generator.
        let gf_own = match z_g {
            Some(z) => Some(self.generate(z)?),
            None => None,
        };
        let gfu = gf_own.as_ref().unwrap_or(&gf);
        let g_img = gfu.img.clone();
        let ga = self.discriminate(g_img.clone(), b, s, STREAM_G_UPDATE)?;
        let g_loss = loss.g_cpu(&ga.logits);
        // (The discriminator's gradients are not used by the step.)
        let mut g_loss_wrt_d = Vec::new();
        let dimg = self.d_backward(&ga, &g_loss.grad, true, &mut g_loss_wrt_d);
        let g_grads = self.g_backward(gfu, &dimg);
        let adam_g = self.config.adam_g;
        self.adam(&adam_g, step, "generator.", &g_grads)?;

        // Every gradient, in the GPU model's parameter order.
        let mut all: Vec<(String, Vec<T>)> = g_grads.into_iter().chain(d_grads).collect();
        let mut grads = Vec::with_capacity(self.params.len());
        for p in &self.params {
            match all.iter().position(|(n, _)| *n == p.name) {
                Some(i) => grads.push(all.swap_remove(i)),
                None => {
                    return Err(Error::invalid(
                        "gan cpu",
                        format!("no gradient computed for {}", p.name),
                    ))
                }
            }
        }
        let mut leaky_outputs = vec![
            ("gen fc bn", LEAKY.forward_cpu(&gf.bn0.y)),
            ("gen1 bn", LEAKY.forward_cpu(&gf.bn1.y)),
            ("gen2 bn", LEAKY.forward_cpu(&gf.bn2.y)),
            ("d update disc1", da.o1.clone()),
            ("d update disc2", da.o2.clone()),
            ("g update disc1", ga.o1.clone()),
            ("g update disc2", ga.o2.clone()),
        ];
        if let Some(own) = &gf_own {
            leaky_outputs.extend([
                ("g update gen fc bn", LEAKY.forward_cpu(&own.bn0.y)),
                ("g update gen1 bn", LEAKY.forward_cpu(&own.bn1.y)),
                ("g update gen2 bn", LEAKY.forward_cpu(&own.bn2.y)),
            ]);
        }
        let pool_argmax = [("d update", &da.argmax), ("g update", &ga.argmax)]
            .into_iter()
            .filter_map(|(n, a)| a.clone().map(|a| (n, a)))
            .collect();
        let bn_stats = |f: &GForward<T>| -> Vec<(String, Vec<T>)> {
            [
                ("generator.1", &f.bn0),
                ("generator.6", &f.bn1),
                ("generator.9", &f.bn2),
            ]
            .into_iter()
            .flat_map(|(name, bn)| {
                [
                    (format!("{name}.running_mean"), bn.mean.clone()),
                    (format!("{name}.running_var"), bn.var.clone()),
                ]
            })
            .collect()
        };
        let bn_batch_stats = std::iter::once(&gf)
            .chain(gf_own.as_ref())
            .map(bn_stats)
            .collect();
        let pool_inputs = match self.config.head {
            DHead::GlobalMaxPool => vec![("d update", da.o2.clone()), ("g update", ga.o2.clone())],
            DHead::Flatten => Vec::new(),
        };
        Ok(GanCpuStep {
            step,
            d_loss: d_loss.loss,
            g_loss: g_loss.loss,
            grads,
            fake: img,
            g_fake: g_img,
            d_targets: targets,
            d_logits: da.logits,
            leaky_outputs,
            pool_argmax,
            pool_inputs,
            bn_batch_stats,
            g_loss_wrt_d,
        })
    }
}
