//! The article's DCGAN (Keras semantics, the TensorFlow DCGAN tutorial's
//! architecture).
//!
//! Generator: dense L -> 12544 (no bias), batch norm over the 12544 features
//! (per feature over the batch, like Keras `BatchNormalization` on the dense
//! output before the reshape), LeakyReLU(0.2), reshape to 7x7x256; convT 128
//! 5x5 s1 same (7 -> 7, no bias), BN, LeakyReLU; convT 64 5x5 s2 same
//! (7 -> 14, no bias), BN, LeakyReLU; convT 1 5x5 s2 same (14 -> 28, no
//! bias), tanh. Batch norm: eps 1e-3, momentum 0.99 (Keras defaults).
//! Discriminator: conv 64 5x5 s2 same (28 -> 14) LeakyReLU(0.2) dropout 0.3,
//! conv 128 5x5 s2 same (14 -> 7) LeakyReLU dropout 0.3, then the head
//! ([`DHead`]): global max pool to 128 (the article's) or flatten to 6272
//! (the TF tutorial's), dense to one logit. Images are in [-1, 1].
//!
//! Losses: non-saturating, binary cross-entropy with logits, Keras mean
//! (the default; [`GanOptions::loss`] picks another of
//! [`crate::models::gan_loss`]'s: minimax, least squares, hinge). One
//! training step: gather the real batch, draw z ~ N(0, I) on the GPU,
//! generate (batch-norm in training mode); update D on the stacked batch
//! [real; fake] (targets 1 and 0, `d_loss = BCE(real, 1) + BCE(fake, 0)`);
//! then update G through the UPDATED discriminator on the same fake batch
//! (`g_loss = BCE(D(fake), 1)`, dropout active with fresh draws, no D
//! gradients). Separate Adam for G and D.
//!
//! The Wasserstein GAN (`--gan-loss wasserstein`, [`Wasserstein`]) runs
//! the first two parts n_critic times, each on its own real batch
//! (`BatchPick`: batch `n_critic * step + j` of the epoch's order) and
//! latents ([`critic_streams`]), each discriminator update by RMSProp and
//! followed by clipping every discriminator parameter; then the generator's
//! update (RMSProp) on the last iteration's fake batch. An epoch is then
//! `batches / n_critic` steps.
//!
//! Two of the article's choices are options, off by default (the step is
//! then exactly the one above):
//! - [`GanOptions::label_noise`] `F > 0`: D's targets become `1 + F u` for
//!   real images and `F u` for fakes, `u ~ U(0, 1)` drawn afresh per target
//!   and step (Philox stream [`STREAM_LABEL_NOISE`], in the loss kernel:
//!   [`crate::ops::bce::bce_rows_label_noise`]), the article's
//!   `labels += 0.05 * tf.random.uniform(labels.shape)`. G's targets stay 1.
//! - [`GanOptions::fresh_noise_for_g`]: G's update draws its own latents
//!   (stream [`STREAM_Z_FOR_G`]) and generates again (batch norm in training
//!   mode: the running averages are updated by this forward too, as every
//!   training-mode call in Keras does), as the article draws
//!   `random_latent_vectors` again before `gan.train_on_batch`; without it
//!   G's update reuses the D step's latents and fake batch.
//!
//! PyTorch twin (checkpoint names; every conv pads with `F.pad` in its
//! forward for the Keras `same` alignment, so padding adds no modules):
//! ```text
//! generator = Sequential(
//!   0  Linear(L, 12544, bias=False)
//!   1  BatchNorm1d(12544, eps=1e-3, momentum=0.01)
//!   2  LeakyReLU(0.2)
//!   3  Unflatten(1, (7, 7, 256))          # the engine's NHWC feature order
//!   4  Permute(0, 3, 1, 2)                # NHWC -> NCHW (no parameters)
//!   5  ConvTranspose2d(256, 128, 5, 1, bias=False)
//!   6  BatchNorm2d(128, eps=1e-3, momentum=0.01)
//!   7  LeakyReLU(0.2)
//!   8  ConvTranspose2d(128, 64, 5, 2, bias=False)
//!   9  BatchNorm2d(64, eps=1e-3, momentum=0.01)
//!   10 LeakyReLU(0.2)
//!   11 ConvTranspose2d(64, 1, 5, 2, bias=False)
//!   12 Tanh)
//! discriminator = Sequential(
//!   0  Conv2d(1, 64, 5, 2)    1 LeakyReLU(0.2)   2 Dropout(0.3)
//!   3  Conv2d(64, 128, 5, 2)  4 LeakyReLU(0.2)   5 Dropout(0.3)
//!   global max pool head:  6 AdaptiveMaxPool2d(1), 7 Flatten, 8 Linear(128, 1)
//!   flatten head:          6 Flatten, 7 Linear(6272, 1))
//! ```
//! The 12544 dense features keep the engine's order (NHWC flatten of
//! 7x7x256) in the checkpoint: `generator.0.weight` is `[12544, L]` with
//! rows in that order and `generator.1.*` (gamma, beta, running statistics)
//! follow it, so the twin unflattens as (7, 7, 256) and permutes to NCHW
//! AFTER the BatchNorm1d. The flatten head's `discriminator.7.weight`
//! `[1, 6272]` is in PyTorch's NCHW flatten order (converted at save/load).
//! Adam moments are stored as `optimizer.<name>.exp_avg` / `.exp_avg_sq`;
//! the Wasserstein GAN's RMSProp keeps PyTorch's `square_avg` in
//! `.exp_avg_sq`, and its `.exp_avg` stays zero.
//!
//! The model is three files: this one (the layers, their parameters,
//! inference and checkpoints), `config.rs` (its settings and options) and
//! `step.rs` (the activations and the recorded training step, read top to
//! bottom in the order it runs: forward, both losses, backward in reverse,
//! both Adams).

mod config;
mod step;

pub use config::{DHead, GanConfig, GanOptions, Wasserstein, MAX_N_CRITIC};
pub use step::TrainStep;

use std::path::Path;

use rand::SeedableRng;

use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, Tensor};
use crate::io::Checkpoint;
use crate::models::settings::from_settings;
use crate::models::{count, expect_model, infer_chunked, meta_usize, Stored};
use crate::nn::{BatchNormLayer, Dense, Layer, Param, ParamArena};
use crate::ops::activation::Activation;
use crate::ops::conv2d::{Conv2d, Padding};
use crate::ops::conv_transpose2d::ConvTranspose2d;
use crate::ops::rng::Philox;
use step::{DActs, GActs};

/// The generator's first image, 7x7x256 (12544 dense features).
const G_HWC: (usize, usize, usize) = (7, 7, 256);
const G0: usize = 7 * 7 * 256;
/// The discriminator's last image, 7x7x128.
const D_HWC: (usize, usize, usize) = (7, 7, 128);
const LEAKY: Activation = Activation::LeakyRelu(0.2);
/// Dropout rate of the discriminator.
pub const DROPOUT: f32 = 0.3;

/// Loss slots in the step's ring row.
pub const SLOT_G: usize = 0;
pub const SLOT_D: usize = 1;

/// Philox streams of one training step.
const STREAM_Z: u32 = 1;
const STREAM_D_UPDATE: [u32; 2] = [2, 3];
const STREAM_G_UPDATE: [u32; 2] = [4, 5];
/// Stream of [`Gan::sample`]'s latents (drawn on the CPU).
const STREAM_SAMPLE: u32 = 6;
/// Stream of the discriminator's label noise ([`GanOptions::label_noise`]).
pub const STREAM_LABEL_NOISE: u32 = 7;
/// Stream of the generator update's own latents
/// ([`GanOptions::fresh_noise_for_g`]).
pub const STREAM_Z_FOR_G: u32 = 8;

/// The latents' stream and the discriminator update's two dropout streams
/// of critic iteration `j`: [`STREAM_Z`] and [`STREAM_D_UPDATE`] for the
/// first (every loss's one discriminator update), `16 + 3j` and the two
/// after it for the Wasserstein GAN's later ones (clear of the streams
/// above for every `j`).
pub fn critic_streams(j: usize) -> (u32, [u32; 2]) {
    match j as u32 {
        0 => (STREAM_Z, STREAM_D_UPDATE),
        j => (16 + 3 * j, [17 + 3 * j, 18 + 3 * j]),
    }
}

/// The generator's tanh outputs (in [-1, 1]) as [0, 1] pixels, as the
/// VAE's samples and the data are.
pub fn to_pixels(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(|x| (x + 1.0) * 0.5).collect()
}

/// The GAN's layers. Batch norms are built for training batches of
/// `config.batch` (eval runs at any size from the running statistics).
/// The generator's and the discriminator's parameters each live in one
/// [`ParamArena`] (one Adam dispatch each).
pub struct Gan {
    pub config: GanConfig,
    pub g_arena: ParamArena,
    pub d_arena: ParamArena,
    pub g_fc: Layer<Dense>,
    pub g_bn0: BatchNormLayer,
    pub g1: Layer<ConvTranspose2d>,
    pub g_bn1: BatchNormLayer,
    pub g2: Layer<ConvTranspose2d>,
    pub g_bn2: BatchNormLayer,
    pub g3: Layer<ConvTranspose2d>,
    pub d1: Layer<Conv2d>,
    pub d2: Layer<Conv2d>,
    pub d_fc: Layer<Dense>,
}

impl Gan {
    /// Build with Keras initialisation from `config.seed`: Glorot-uniform
    /// kernels (generator first, in layer order), zero biases, batch-norm
    /// gamma 1, beta 0, running mean 0, variance 1.
    pub fn new(gpu: &Gpu, config: GanConfig) -> Result<Gan> {
        if config.latent == 0 || config.batch == 0 {
            return Err(Error::invalid(
                "gan",
                "latent_dim and batch size must be positive",
            ));
        }
        config.adam_g.validate()?;
        config.adam_d.validate()?;
        config.options.check("gan")?;
        let (l, b) = (config.latent, config.batch);
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let r = &mut rng;
        let (d_fc_name, d_in_nhwc) = match config.head {
            DHead::GlobalMaxPool => ("discriminator.8", None),
            DHead::Flatten => ("discriminator.7", Some(D_HWC)),
        };
        let leaky = Some(LEAKY);
        let mut g_fc = Layer::dense(gpu, r, "generator.0", l, G0, false, None, None)?;
        let mut g_bn0 = BatchNormLayer::new(gpu, "generator.1", &[b, G0], leaky)?;
        let mut g1 = Layer::conv_transpose_same(gpu, r, "generator.5", 5, 1, 7, 256, 128, false)?;
        let mut g_bn1 = BatchNormLayer::new(gpu, "generator.6", &[b, 7, 7, 128], leaky)?;
        let mut g2 = Layer::conv_transpose_same(gpu, r, "generator.8", 5, 2, 7, 128, 64, false)?;
        let mut g_bn2 = BatchNormLayer::new(gpu, "generator.9", &[b, 14, 14, 64], leaky)?;
        let mut g3 = Layer::conv_transpose_same(gpu, r, "generator.11", 5, 2, 14, 64, 1, false)?;
        let mut d1 = Layer::conv(
            gpu,
            r,
            "discriminator.0",
            5,
            2,
            Padding::same(28, 5, 2),
            1,
            64,
            true,
        )?;
        let mut d2 = Layer::conv(
            gpu,
            r,
            "discriminator.3",
            5,
            2,
            Padding::same(14, 5, 2),
            64,
            128,
            true,
        )?;
        let mut d_fc = Layer::dense(
            gpu,
            r,
            d_fc_name,
            config.head.features(),
            1,
            true,
            d_in_nhwc,
            None,
        )?;
        let mut runs = g_fc.runs();
        runs.extend(g_bn0.runs());
        runs.extend(g1.runs());
        runs.extend(g_bn1.runs());
        runs.extend(g2.runs());
        runs.extend(g_bn2.runs());
        runs.extend(g3.runs());
        let g_arena = ParamArena::pack(gpu, "generator", runs)?;
        let mut runs = d1.runs();
        runs.extend(d2.runs());
        runs.extend(d_fc.runs());
        let d_arena = ParamArena::pack(gpu, "discriminator", runs)?;
        Ok(Gan {
            g_fc,
            g_bn0,
            g1,
            g_bn1,
            g2,
            g_bn2,
            g3,
            d1,
            d2,
            d_fc,
            g_arena,
            d_arena,
            config,
        })
    }

    fn batch_norms(&self) -> [&BatchNormLayer; 3] {
        [&self.g_bn0, &self.g_bn1, &self.g_bn2]
    }

    /// The generator's parameters, in layer order.
    pub fn generator_params(&self) -> Vec<&Param> {
        self.g_fc
            .params()
            .into_iter()
            .chain(self.g_bn0.params())
            .chain(self.g1.params())
            .chain(self.g_bn1.params())
            .chain(self.g2.params())
            .chain(self.g_bn2.params())
            .chain(self.g3.params())
            .collect()
    }

    /// The discriminator's parameters, in layer order.
    pub fn discriminator_params(&self) -> Vec<&Param> {
        [&self.d1, &self.d2]
            .iter()
            .flat_map(|l| l.params())
            .chain(self.d_fc.params())
            .collect()
    }

    /// Every parameter, generator first.
    pub fn params(&self) -> Vec<&Param> {
        let mut p = self.generator_params();
        p.extend(self.discriminator_params());
        p
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        count(&self.params())
    }

    /// Trainable scalars of the generator (batch-norm gamma and beta
    /// included; running statistics are not trainable).
    pub fn generator_param_count(&self) -> usize {
        count(&self.generator_params())
    }

    /// Trainable scalars of the discriminator.
    pub fn discriminator_param_count(&self) -> usize {
        count(&self.discriminator_params())
    }

    /// Images `[n, 784]` in [-1, 1] generated from `z` (`n * L` values),
    /// batch norm from the running statistics (eval mode), in submits of at
    /// most [`CHUNK`](super::CHUNK) images.
    pub fn generate(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.generate_async(gpu, z))
    }

    /// [`Gan::generate`] as a future, which a browser awaits.
    pub async fn generate_async(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>> {
        let l = self.config.latent;
        let mut out = Vec::with_capacity(z.len() / l * PIXELS);
        infer_chunked(
            gpu,
            "gan generate",
            z,
            l,
            |m| GActs::new(gpu, m, l),
            |a, chunk, s| {
                a.z.write_f32(gpu, chunk)?;
                self.record_generate(gpu, s, a, false)?;
                Ok(vec![a.img.clone()])
            },
            |read| {
                out.extend_from_slice(&read[0]);
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    /// `n` samples (eval mode) at z ~ N(0, I) drawn from `seed`.
    pub fn sample(&self, gpu: &Gpu, n: usize, seed: u64) -> Result<Vec<f32>> {
        pollster::block_on(self.sample_async(gpu, n, seed))
    }

    /// [`Gan::sample`] as a future, which a browser awaits.
    pub async fn sample_async(&self, gpu: &Gpu, n: usize, seed: u64) -> Result<Vec<f32>> {
        let z = Philox::new(seed, STREAM_SAMPLE).normal_cpu(0, n * self.config.latent);
        self.generate_async(gpu, &z).await
    }

    /// The discriminator's logits `[n]` on `images` (`n * 784` values in
    /// [-1, 1]), eval mode (no dropout).
    pub fn discriminate(&self, gpu: &Gpu, images: &[f32]) -> Result<Vec<f32>> {
        let n = images.len() / PIXELS;
        if n == 0 || !images.len().is_multiple_of(PIXELS) {
            return Err(Error::invalid(
                "gan discriminate",
                format!("{} values are not whole 28x28 images", images.len()),
            ));
        }
        let x = Tensor::from_f32(gpu, &[n, 28, 28, 1], images, "images")?;
        let a = DActs::new(gpu, x, self.config.head)?;
        let mut s = Step::new("gan discriminate");
        self.record_discriminate(gpu, &mut s, &a, None)?;
        gpu.run(&[&s])?;
        a.logits.read_f32(gpu)
    }

    /// Parameters, Adam moments, batch-norm running statistics and
    /// metadata, PyTorch names and layouts.
    pub fn checkpoint(&self, gpu: &Gpu) -> Result<Checkpoint> {
        pollster::block_on(self.checkpoint_async(gpu))
    }

    /// [`Gan::checkpoint`] as a future, which a browser awaits.
    pub async fn checkpoint_async(&self, gpu: &Gpu) -> Result<Checkpoint> {
        let mut ck = self.stored().checkpoint_async(gpu).await?;
        ck.metadata
            .insert("latent_dim".into(), self.config.latent.to_string());
        ck.metadata
            .insert("d_head".into(), self.config.head.name().into());
        Ok(ck)
    }

    /// The GAN of checkpoint `ck` (read from `path`, which errors name),
    /// built at its latent size and head and restored.
    pub fn from_checkpoint(gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<Gan> {
        expect_model(ck, path, "gan")?;
        let head = match ck.metadata.get("d_head") {
            Some(h) => DHead::from_name(h).ok_or_else(|| {
                Error::data(path, format!("checkpoint d_head {h:?} is no known head"))
            })?,
            None => DHead::default(),
        };
        let gan = Gan::new(
            gpu,
            GanConfig {
                latent: meta_usize(ck, path, "latent_dim")?,
                batch: 1,
                head,
                options: from_settings(&ck.metadata, path)?,
                ..GanConfig::default()
            },
        )?;
        gan.restore(gpu, ck, path)?;
        Ok(gan)
    }

    /// What the checkpoint holds: parameters, Adam moments, running
    /// statistics.
    fn stored(&self) -> Stored<'_> {
        Stored {
            model: "gan",
            label: "the GAN",
            params: self.params(),
            batch_norms: self.batch_norms().to_vec(),
            weights_only_ok: false,
        }
    }

    /// Names and PyTorch shapes a checkpoint of this model holds.
    pub fn checkpoint_entries(&self) -> Vec<(String, Vec<usize>)> {
        self.stored().entries(true)
    }

    /// Restore parameters, Adam moments and running statistics; a
    /// checkpoint of another model, head or size is refused with every
    /// mismatched tensor listed.
    pub fn restore(&self, gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<()> {
        self.stored().restore(gpu, ck, path)
    }
}
