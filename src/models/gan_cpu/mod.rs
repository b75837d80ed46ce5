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
//! The Wasserstein GAN repeats the real batch, z, the generator forward and
//! the discriminator's update n_critic times: iteration `j` reads batch
//! `(s mod S) n + j` of the order (`S` = batches / n,
//! [`gather_pixels_picked_cpu`]), draws z from stream 1 for `j = 0` and
//! `16 + 3j` after, masks from streams 2 and 3 for `j = 0` and `17 + 3j`,
//! `18 + 3j` after; each update is RMSProp followed by [`clamp_cpu`] of
//! every discriminator parameter; the generator's update (RMSProp) runs on
//! the last iteration's fake batch, and the step reports that iteration's
//! `d_loss`, gradients, logits and activations.
//!
//! Two files, as the GPU model's: this one holds the reference step, in
//! the GPU step's order, so the two can be read side by side; `nets.rs` the
//! generator's and the discriminator's forward and backward it runs.

mod nets;

use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::gan::{DHead, Gan, GanConfig};
use crate::models::vae_cpu::{read_as, CpuParam};
use crate::models::Optimizer;
use crate::ops::activation::Activation;
use crate::ops::bce::label_noise_targets_cpu;
use crate::ops::clamp::clamp_cpu;
use crate::ops::copy::copy_rows_cpu;
use crate::ops::gather::{gather_pixels_picked_cpu, BatchPick, PixelMap};
use crate::ops::rng::Philox;
use crate::ops::Real;
use nets::GForward;

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

/// The latents' and the discriminator update's dropout streams of critic
/// iteration `j` (see the module doc).
fn critic_streams(j: usize) -> (u32, [u32; 2]) {
    match j as u32 {
        0 => (STREAM_Z, STREAM_D_UPDATE),
        j => (16 + 3 * j, [17 + 3 * j, 18 + 3 * j]),
    }
}
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

    /// `opt`'s update (Adam's t = `step + 1`) of the parameters whose names
    /// start with `prefix`, from their gradients in `grads`.
    fn optimize(
        &mut self,
        opt: &Optimizer,
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
            opt.update_cpu(step as u32 + 1, &mut p.value, g, &mut p.m, &mut p.v);
        }
        Ok(())
    }

    /// One training step at step index `step` on the dataset `images`
    /// (`n * 784` bytes) in the order `perm`, exactly as the GPU step with
    /// `counters[0] == step`: returns losses and gradients, updates the
    /// parameters, moments and running statistics in place.
    pub fn train_step(&mut self, step: u64, perm: &[u32], images: &[u8]) -> Result<GanCpuStep<T>> {
        self.train_step_with_noises(step, perm, images, Vec::new(), None)
    }

    /// [`Self::train_step`] with the latents `z` (`B * L` values) given: a
    /// test feeds the very draws the GPU made, so both sides compute from
    /// the same inputs whatever the accuracy of the driver's `log`/`cos`.
    /// With `fresh_noise_for_g` the generator update's own latents, and the
    /// Wasserstein GAN's later critic iterations' latents, are drawn here
    /// (f64 Box-Muller); [`Self::train_step_with_noises`] takes them too.
    pub fn train_step_with_noise(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        z: Vec<T>,
    ) -> Result<GanCpuStep<T>> {
        self.train_step_with_noises(step, perm, images, vec![z], None)
    }

    /// [`Self::train_step_with_noise`] with the latents of the first
    /// `zs.len()` critic iterations given (the rest drawn here; one
    /// iteration but for the Wasserstein GAN), and the generator update's
    /// own latents `z_g` (`B * L` values each), for `fresh_noise_for_g`
    /// (`None`: drawn on the CPU from stream 8; given without
    /// `fresh_noise_for_g`: refused).
    pub fn train_step_with_noises(
        &mut self,
        step: u64,
        perm: &[u32],
        images: &[u8],
        zs: Vec<Vec<T>>,
        z_g: Option<Vec<T>>,
    ) -> Result<GanCpuStep<T>> {
        let (b, l, seed) = (self.config.batch, self.config.latent, self.config.seed);
        let n_critic = self.config.critic_iterations();
        if zs.len() > n_critic {
            return Err(Error::invalid(
                "gan cpu",
                format!("latents for {} critic iterations of {n_critic}", zs.len()),
            ));
        }
        let s = step as u32;
        let mut zs = zs;
        for j in zs.len()..n_critic {
            zs.push(Philox::new(seed, critic_streams(j).0).normal_cpu(s, b * l));
        }
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
        if let Some(z) = zs.iter().chain(&z_g).find(|z| z.len() != b * l) {
            return Err(Error::invalid(
                "gan cpu",
                format!("{} latent values for batch {b} x latent {l}", z.len()),
            ));
        }
        if b == 0 || perm.len() < b * n_critic || images.len() < perm.len() * PIXELS {
            return Err(Error::invalid(
                "gan cpu",
                format!(
                    "batch {b} with {} images in the order and {} bytes",
                    perm.len(),
                    images.len()
                ),
            ));
        }
        let (opt_g, opt_d) = self.config.optimizers();
        let clip = self.config.options.wasserstein().map(|w| w.clip);
        let loss = self.config.options.loss;
        let mut forwards = Vec::with_capacity(n_critic + 1);
        let mut last = None;
        for (j, z) in zs.into_iter().enumerate() {
            let (_, stream_d) = critic_streams(j);
            let pick = BatchPick {
                stride: n_critic as u32,
                offset: j as u32,
            };
            // (1) The real batch in [-1, 1] (the j-th of the step's), the
            // latents, the generator forward (batch norm from batch
            // statistics, running averages updated).
            let map = PixelMap::SIGNED;
            let real: Vec<T> = gather_pixels_picked_cpu(step, pick, perm, images, b, PIXELS, map);
            let gf = self.generate(z)?;
            let img = gf.img.clone();

            // (2) The discriminator's update on [real; fake], targets 1 then
            // 0 (with label noise 1 + F u and F u): the mean BCE over the 2B
            // rows times 2 = BCE(real, 1) + BCE(fake, 0); the Wasserstein
            // critic's then clipped.
            let both = copy_rows_cpu(&real, &vec![T::default(); 2 * b * PIXELS], 0, PIXELS);
            let both = copy_rows_cpu(&img, &both, b, PIXELS);
            let da = self.discriminate(both, 2 * b, s, stream_d)?;
            let mut targets: Vec<T> = (0..2 * b)
                .map(|i| T::from_f64((i < b) as u8 as f64))
                .collect();
            let noise = self.config.options.label_noise;
            if noise > 0.0 {
                let rng = Philox::new(seed, STREAM_LABEL_NOISE);
                targets = label_noise_targets_cpu(&targets, noise, rng, s);
            }
            let d_loss = loss.d_cpu(&da.logits, &targets);
            let mut d_grads = Vec::new();
            self.d_backward(&da, &d_loss.grad, true, &mut d_grads);
            self.optimize(&opt_d, step, "discriminator.", &d_grads)?;
            if let Some(c) = clip {
                for p in self
                    .params
                    .iter_mut()
                    .filter(|p| p.name.starts_with("discriminator."))
                {
                    clamp_cpu(&mut p.value, c as f64);
                }
            }
            forwards.push(bn_stats(&gf));
            last = Some((gf, img, da, targets, d_loss, d_grads));
        }
        let Some((gf, img, da, targets, d_loss, d_grads)) = last else {
            return Err(Error::invalid("gan cpu", "no critic iteration"));
        };

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
        self.optimize(&opt_g, step, "generator.", &g_grads)?;

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
        forwards.extend(gf_own.as_ref().map(bn_stats));
        let bn_batch_stats = forwards;
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

/// The batch statistics a training-mode generator forward averaged into
/// the running ones, by running statistic name.
fn bn_stats<T: Real>(f: &GForward<T>) -> Vec<(String, Vec<T>)> {
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
}
