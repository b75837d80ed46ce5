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
//! Adam moments are stored as `optimizer.<name>.exp_avg` / `.exp_avg_sq`.
//!
//! One file, read top to bottom: the layers, their activations, the
//! recorded training step (forward, both losses, backward in reverse, both
//! Adams) and inference are one model's forward/backward pair, and
//! splitting them would scatter the order the step runs in.

use std::path::Path;

use rand::SeedableRng;

use crate::data::GpuDataset;
use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::gpu::{DType, Gpu, Step, StepLoss, StepState, Tensor};
use crate::io::Checkpoint;
use crate::models::gan_loss::GanLoss;
use crate::models::settings::{from_settings, to_settings};
use crate::models::{count, expect_model, flat, infer_chunked, meta_usize, record_adam, Stored};
use crate::nn::{BatchNormLayer, Dense, Layer, Param, ParamArena, WeightOp};
use crate::ops::activation::Activation;
use crate::ops::bce::{check_label_noise, LabelNoise};
use crate::ops::conv2d::{Conv2d, Padding};
use crate::ops::conv_transpose2d::ConvTranspose2d;
use crate::ops::copy::copy_rows;
use crate::ops::gather::{gather_pixels_and_normals, PixelMap};
use crate::ops::gemm::{Dropout, Epilogue};
use crate::ops::pool::{global_max_pool_backward_fused, global_max_pool_forward};
use crate::ops::rng::{fill_normal, Philox};
use crate::optim::adam::{Adam, AdamConfig};

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

/// The discriminator's head after the second conv.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DHead {
    /// Global max pool to 128 features (the article's).
    #[default]
    GlobalMaxPool,
    /// Flatten the 7x7x128 image to 6272 features (the TF DCGAN tutorial).
    Flatten,
}

impl DHead {
    /// Name in checkpoint metadata.
    pub fn name(self) -> &'static str {
        match self {
            DHead::GlobalMaxPool => "global_max_pool",
            DHead::Flatten => "flatten",
        }
    }

    /// The head of that [`Self::name`].
    pub fn from_name(name: &str) -> Option<DHead> {
        [DHead::GlobalMaxPool, DHead::Flatten]
            .into_iter()
            .find(|h| h.name() == name)
    }

    /// Features into the final dense layer.
    pub fn features(self) -> usize {
        match self {
            DHead::GlobalMaxPool => D_HWC.2,
            DHead::Flatten => D_HWC.0 * D_HWC.1 * D_HWC.2,
        }
    }
}

/// The GAN's settings: sizes, optimizers and seed (from a preset), and its
/// [`GanOptions`]. The default is the article's model and step.
#[derive(Clone, Debug)]
pub struct GanConfig {
    pub latent: usize,
    pub batch: usize,
    /// The generator's optimizer.
    pub adam_g: AdamConfig,
    /// The discriminator's optimizer.
    pub adam_d: AdamConfig,
    pub seed: u64,
    pub head: DHead,
    pub options: GanOptions,
}

impl Default for GanConfig {
    fn default() -> GanConfig {
        GanConfig {
            latent: 2,
            batch: 32,
            adam_g: AdamConfig::keras(1e-3),
            adam_d: AdamConfig::keras(1e-3),
            seed: 0,
            head: DHead::default(),
            options: GanOptions::default(),
        }
    }
}

/// The GAN's training options beyond its preset (each a command-line flag
/// of the runs and of `compare`, recorded in the checkpoint:
/// [`crate::models::settings`]). The defaults are the engine's step.
#[derive(clap::Args, Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GanOptions {
    /// What D and G minimise: the original minimax loss, the non-saturating
    /// one (the default), least squares, or the hinge loss
    /// ([`crate::models::gan_loss`]).
    #[arg(long = "gan-loss", value_enum, default_value_t = GanLoss::default())]
    pub loss: GanLoss,
    /// Uniform noise F >= 0 on the discriminator's targets: real images
    /// 1 + F*u, fakes F*u, u ~ U(0,1) drawn per target and step (the
    /// article's 0.05; 0: none). F > 1 is accepted: fake targets then
    /// overlap the real ones' range, and real targets above 1 push D's
    /// logits on real images to +inf (the loss stays softplus(x) - t x, as
    /// TensorFlow computes it).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub label_noise: f32,
    /// The generator's update draws new latent noise and generates again
    /// (the article's), instead of reusing the discriminator step's fakes.
    #[arg(long)]
    pub fresh_noise_for_g: bool,
}

impl Default for GanOptions {
    fn default() -> GanOptions {
        GanOptions {
            loss: GanLoss::default(),
            label_noise: 0.0,
            fresh_noise_for_g: false,
        }
    }
}

impl GanOptions {
    /// Refuse options that cannot train, in the words of the command line;
    /// `op` names who refuses them (`train`, `compare`, `gan`).
    pub fn check(&self, op: &'static str) -> Result<()> {
        check_label_noise(op, self.label_noise).map_err(|_| {
            Error::invalid(
                op,
                format!(
                    "--label-noise {}: must be a number >= 0 (0: no noise, the default; the \
                     article uses 0.05)",
                    self.label_noise
                ),
            )
        })?;
        if self.label_noise > 0.0 && !self.loss.is_cross_entropy() {
            return Err(self.loss.no_label_noise(op));
        }
        Ok(())
    }
}

/// The generator's tanh outputs (in [-1, 1]) as [0, 1] pixels, as the
/// VAE's samples and the data are.
pub fn to_pixels(v: Vec<f32>) -> Vec<f32> {
    v.into_iter().map(|x| (x + 1.0) * 0.5).collect()
}

impl GanConfig {
    /// The training settings a run records in its checkpoint's metadata
    /// (latent size and head are the model's own: [`Gan::checkpoint`]).
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("batch".into(), self.batch.to_string()),
            ("seed".into(), self.seed.to_string()),
            ("lr_g".into(), self.adam_g.lr.to_string()),
            ("lr_d".into(), self.adam_d.lr.to_string()),
        ]
        .into_iter()
        .chain(to_settings(&self.options))
        .collect()
    }
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

/// Generator activations for one batch size: each layer's output, then its
/// batch norm's with the LeakyReLU fused in (`g0a` `[B, 7, 7, 256]`).
struct GActs {
    z: Tensor,
    /// `[B, 12544]` dense output.
    g0: Tensor,
    g0a: Tensor,
    g1: Tensor,
    g1a: Tensor,
    g2: Tensor,
    g2a: Tensor,
    /// tanh output `[B, 28, 28, 1]` (fused into the last layer's store).
    img: Tensor,
}

impl GActs {
    fn new(gpu: &Gpu, b: usize, l: usize) -> Result<GActs> {
        let (h, w, c) = G_HWC;
        Ok(GActs {
            z: Tensor::zeros(gpu, &[b, l], "z")?,
            g0: Tensor::zeros(gpu, &[b, G0], "gen fc")?,
            g0a: Tensor::zeros(gpu, &[b, h, w, c], "gen fc bn leaky")?,
            g1: Tensor::zeros(gpu, &[b, 7, 7, 128], "gen1")?,
            g1a: Tensor::zeros(gpu, &[b, 7, 7, 128], "gen1 bn leaky")?,
            g2: Tensor::zeros(gpu, &[b, 14, 14, 64], "gen2")?,
            g2a: Tensor::zeros(gpu, &[b, 14, 14, 64], "gen2 bn leaky")?,
            img: Tensor::zeros(gpu, &[b, 28, 28, 1], "fake images")?,
        })
    }
}

/// Discriminator activations for one batch size: each conv's output with
/// its LeakyReLU and (training) dropout fused in, and the dropout masks.
struct DActs {
    x: Tensor,
    m1: Tensor,
    o1: Tensor,
    m2: Tensor,
    o2: Tensor,
    /// Head features `[B, F]` (the flatten head: a view of `o2`).
    feat: Tensor,
    /// Global max pool winners (max pool head only).
    argmax: Option<Tensor>,
    /// `[B, 1]`.
    logits: Tensor,
}

impl DActs {
    /// Activations for the input `x` `[B, 28, 28, 1]`.
    fn new(gpu: &Gpu, x: Tensor, head: DHead) -> Result<DActs> {
        let b = x.shape()[0];
        let s1 = [b, 14, 14, 64];
        let s2 = [b, D_HWC.0, D_HWC.1, D_HWC.2];
        let o2 = Tensor::zeros(gpu, &s2, "disc2 leaky dropout")?;
        let (feat, argmax) = match head {
            DHead::GlobalMaxPool => (
                Tensor::zeros(gpu, &[b, D_HWC.2], "disc pooled")?,
                Some(Tensor::new(gpu, &[b, D_HWC.2], DType::U32, "disc argmax")?),
            ),
            DHead::Flatten => (flat(&o2)?, None),
        };
        Ok(DActs {
            x,
            m1: Tensor::zeros(gpu, &s1, "disc1 mask")?,
            o1: Tensor::zeros(gpu, &s1, "disc1 leaky dropout")?,
            m2: Tensor::zeros(gpu, &s2, "disc2 mask")?,
            o2,
            feat,
            argmax,
            logits: Tensor::zeros(gpu, &[b, 1], "disc logits")?,
        })
    }
}

/// Gradients through the discriminator for one batch size, at each conv's
/// output before its LeakyReLU (the kernel writing them applies the
/// dropout mask and the LeakyReLU's derivative).
struct DGrads {
    dlogits: Tensor,
    /// The head's input gradient (the flatten head: a view of `dh2`).
    dfeat: Tensor,
    dh2: Tensor,
    dh1: Tensor,
}

impl DGrads {
    fn new(gpu: &Gpu, b: usize, head: DHead) -> Result<DGrads> {
        let s1 = [b, 14, 14, 64];
        let s2 = [b, D_HWC.0, D_HWC.1, D_HWC.2];
        let dh2 = Tensor::zeros(gpu, &s2, "d disc2")?;
        let dfeat = match head {
            DHead::GlobalMaxPool => Tensor::zeros(gpu, &[b, D_HWC.2], "d disc pooled")?,
            DHead::Flatten => flat(&dh2)?,
        };
        Ok(DGrads {
            dlogits: Tensor::zeros(gpu, &[b, 1], "d disc logits")?,
            dfeat,
            dh2,
            dh1: Tensor::zeros(gpu, &s1, "d disc1")?,
        })
    }
}

/// Backward of one weight layer: parameter gradients and (when given) the
/// input gradient ending in its epilogue, or the input gradient alone.
fn layer_backward<Op: WeightOp>(
    l: &Layer<Op>,
    weights: bool,
    gpu: &Gpu,
    s: &mut Step,
    x: &Tensor,
    dy: &Tensor,
    dx: Option<(&Tensor, Epilogue)>,
) -> Result<()> {
    match (weights, dx) {
        (true, dx) => l.backward(gpu, s, x, dy, dx),
        (false, Some((dx, epi))) => l.backward_input(gpu, s, dy, dx, epi),
        (false, None) => Ok(()),
    }
}

/// The backward epilogue through a fused LeakyReLU + dropout: the saved
/// mask, then the derivative from the saved output `o` (its sign is the
/// LeakyReLU input's wherever the mask keeps the unit).
fn d_leaky_dropout<'a>(mask: &'a Tensor, o: &'a Tensor) -> Epilogue<'a> {
    Epilogue {
        dmask: Some(mask),
        dact: Some((LEAKY, o)),
        ..Epilogue::NONE
    }
}

/// A recorded training step, with the tensors it writes.
pub struct TrainStep {
    pub step: Step,
    /// The step's generated batch `[B, 28, 28, 1]`, in [-1, 1] (the one the
    /// discriminator's update saw).
    pub fake: Tensor,
    /// The batch the generator's update ran on: `fake` itself, or with
    /// [`GanOptions::fresh_noise_for_g`] the one generated from its own
    /// latents.
    pub g_fake: Tensor,
    /// The discriminator's logits on [real; fake], `[2B, 1]`.
    pub d_logits: Tensor,
    /// Every LeakyReLU output of the step by name (the generator's three
    /// batch norms', then the discriminator's two convs' after dropout, in
    /// the D update on [real; fake] and in the G update on fake, then with
    /// [`GanOptions::fresh_noise_for_g`] the generator's three again from
    /// the G update's own forward), for tests
    /// that check which side of the kink each unit took: the output has the
    /// input's sign (a dropped unit is 0, and has no gradient).
    pub leaky_outputs: Vec<(&'static str, Tensor)>,
    /// The global max pool winners (max pool head only): D update, G update.
    pub pool_argmax: Vec<(&'static str, Tensor)>,
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

    /// Record the generator from `a.z` to `a.img`: batch norm from batch
    /// statistics (running averages updated) when `train`, else from the
    /// running statistics.
    fn record_generate(&self, gpu: &Gpu, s: &mut Step, a: &GActs, train: bool) -> Result<()> {
        let bn = |layer: &BatchNormLayer, s: &mut Step, x: &Tensor, y: &Tensor| {
            if train {
                layer.forward_train(gpu, s, x, y)
            } else {
                layer.forward_eval(gpu, s, x, y)
            }
        };
        self.g_fc.forward(gpu, s, &a.z, &a.g0)?;
        bn(&self.g_bn0, s, &a.g0, &flat(&a.g0a)?)?;
        self.g1.forward(gpu, s, &a.g0a, &a.g1)?;
        bn(&self.g_bn1, s, &a.g1, &a.g1a)?;
        self.g2.forward(gpu, s, &a.g1a, &a.g2)?;
        bn(&self.g_bn2, s, &a.g2, &a.g2a)?;
        let tanh = Epilogue::act(Activation::Tanh);
        self.g3.forward_fused(gpu, s, &a.g2a, &a.img, tanh)
    }

    /// Record the discriminator from `a.x` to `a.logits`. `dropout`: the
    /// step counter and the two layers' streams (training), or `None`
    /// (eval: dropout is the identity).
    fn record_discriminate<'a>(
        &self,
        gpu: &Gpu,
        s: &mut Step,
        a: &'a DActs,
        dropout: Option<(&'a Tensor, [u32; 2])>,
    ) -> Result<()> {
        // LeakyReLU, then (training) dropout, in each conv's store
        let epi = |k: usize, mask: &'a Tensor| -> Epilogue<'a> {
            Epilogue {
                act: Some(LEAKY),
                dropout: dropout.map(|(counters, streams)| Dropout {
                    rng: Philox::new(self.config.seed, streams[k]),
                    rate: DROPOUT,
                    counters,
                    mask,
                }),
                ..Epilogue::NONE
            }
        };
        self.d1.forward_fused(gpu, s, &a.x, &a.o1, epi(0, &a.m1))?;
        self.d2.forward_fused(gpu, s, &a.o1, &a.o2, epi(1, &a.m2))?;
        if let Some(argmax) = &a.argmax {
            global_max_pool_forward(gpu, s, &a.o2, &a.feat, argmax)?;
        }
        self.d_fc.forward(gpu, s, &a.feat, &a.logits)
    }

    /// Record the discriminator's backward from `g.dlogits`: parameter
    /// gradients when `weights`, the input gradient into `dx` when given.
    fn record_d_backward(
        &self,
        gpu: &Gpu,
        s: &mut Step,
        a: &DActs,
        g: &DGrads,
        weights: bool,
        dx: Option<(&Tensor, Epilogue)>,
    ) -> Result<()> {
        let d2_out = d_leaky_dropout(&a.m2, &a.o2);
        match &a.argmax {
            Some(argmax) => {
                layer_backward(
                    &self.d_fc,
                    weights,
                    gpu,
                    s,
                    &a.feat,
                    &g.dlogits,
                    Some((&g.dfeat, Epilogue::NONE)),
                )?;
                global_max_pool_backward_fused(gpu, s, argmax, &g.dfeat, &g.dh2, &d2_out)?;
            }
            // dfeat is dh2 flattened: the head's backward data ends in d2's
            // dropout and LeakyReLU derivative
            None => {
                let (m2, o2) = (flat(&a.m2)?, flat(&a.o2)?);
                let epi = d_leaky_dropout(&m2, &o2);
                layer_backward(
                    &self.d_fc,
                    weights,
                    gpu,
                    s,
                    &a.feat,
                    &g.dlogits,
                    Some((&g.dfeat, epi)),
                )?;
            }
        }
        let d1_out = d_leaky_dropout(&a.m1, &a.o1);
        layer_backward(
            &self.d2,
            weights,
            gpu,
            s,
            &a.o1,
            &g.dh2,
            Some((&g.dh1, d1_out)),
        )?;
        layer_backward(&self.d1, weights, gpu, s, &a.x, &g.dh1, dx)
    }

    /// Record one training step on `data` (gather the batch the step
    /// counter picks, draw z, generate, update D on [real; fake] (targets
    /// with [`GanOptions::label_noise`] when it is above 0), update G through
    /// the updated D (on fresh latents, generated again, with
    /// [`GanOptions::fresh_noise_for_g`]), advance): losses go to ring slots
    /// [`SLOT_G`] and [`SLOT_D`].
    pub fn train_step(&self, gpu: &Gpu, state: &StepState, data: &GpuDataset) -> Result<TrainStep> {
        let (b, l, head) = (self.config.batch, self.config.latent, self.config.head);
        if data.batches(b) == 0 {
            return Err(Error::invalid(
                "gan",
                format!(
                    "batch size {b} is larger than the {} training images",
                    data.len
                ),
            ));
        }
        let seed = self.config.seed;
        // The real batch is gathered, and the fake one generated, straight
        // into the halves of the discriminator's [real; fake] input (views:
        // no copies), unless the fake half's offset cannot be bound on this
        // adapter (then it is generated on its own and copied).
        let both_x = Tensor::zeros(gpu, &[2 * b, 28, 28, 1], "real|fake")?;
        let real = both_x.view(0, &[b, 28, 28, 1], "real images")?;
        let mut ga = GActs::new(gpu, b, l)?;
        let fake_half = both_x.view(b * PIXELS, &[b, 28, 28, 1], "fake images")?;
        let copy_fake = !fake_half.bindable(gpu);
        if !copy_fake {
            ga.img = fake_half;
        }
        let both = DActs::new(gpu, both_x, head)?;
        let both_g = DGrads::new(gpu, 2 * b, head)?;
        // The generator's update: on the same fake batch, or on its own
        // (fresh latents, generated again).
        let ga_own = match self.config.options.fresh_noise_for_g {
            true => Some(GActs::new(gpu, b, l)?),
            false => None,
        };
        let gg = ga_own.as_ref().unwrap_or(&ga);
        let fake = DActs::new(gpu, gg.img.clone(), head)?;
        let fake_g = DGrads::new(gpu, b, head)?;
        let mut t = vec![1.0f32; b];
        t.resize(2 * b, 0.0);
        let d_targets = Tensor::from_f32(gpu, &[2 * b, 1], &t, "real|fake targets")?;
        let loss = self.config.options.loss;
        let g_t = vec![loss.g_target(); b];
        let g_targets = Tensor::from_f32(gpu, &[b, 1], &g_t, "generator targets")?;
        let d_rows = Tensor::zeros(gpu, &[2 * b], "d loss rows")?;
        let g_rows = Tensor::zeros(gpu, &[b], "g loss rows")?;
        // gradients at each batch norm's output before its LeakyReLU and at
        // each layer's output (the derivatives are applied by the kernels
        // that write them)
        let dg3 = Tensor::zeros(gpu, &[b, 28, 28, 1], "d gen3")?;
        let dg2n = Tensor::zeros(gpu, &[b, 14, 14, 64], "d gen2 bn")?;
        let dg2 = Tensor::zeros(gpu, &[b, 14, 14, 64], "d gen2")?;
        let dg1n = Tensor::zeros(gpu, &[b, 7, 7, 128], "d gen1 bn")?;
        let dg1 = Tensor::zeros(gpu, &[b, 7, 7, 128], "d gen1")?;
        let dg0n = Tensor::zeros(gpu, &[b, G_HWC.0, G_HWC.1, G_HWC.2], "d gen fc bn")?;
        let dg0 = Tensor::zeros(gpu, &[b, G0], "d gen fc")?;

        let mut s = Step::new("gan train");
        let st = &mut s;
        // (1) Real batch, latents, fake batch.
        gather_pixels_and_normals(
            gpu,
            st,
            &state.counters,
            &data.perm,
            &data.images,
            &real,
            PixelMap::SIGNED,
            Philox::new(seed, STREAM_Z),
            &ga.z,
        )?;
        self.record_generate(gpu, st, &ga, true)?;
        // (2) Discriminator update on [real; fake]: the mean loss over the
        // 2B rows times 2, e.g. BCE(real, 1) + BCE(fake, 0).
        if copy_fake {
            copy_rows(gpu, st, &ga.img, &both.x, b)?;
        }
        self.record_discriminate(gpu, st, &both, Some((&state.counters, STREAM_D_UPDATE)))?;
        // Targets 1 and 0, or with label noise 1 + F u and F u drawn in the
        // loss kernel (no noise: the plain kernel, today's step).
        let noise = (self.config.options.label_noise > 0.0).then(|| LabelNoise {
            amount: self.config.options.label_noise,
            rng: Philox::new(seed, STREAM_LABEL_NOISE),
            counters: &state.counters,
        });
        let (logits, dlogits) = (&both.logits, &both_g.dlogits);
        let d_scale = loss.record_d(gpu, st, logits, &d_targets, noise, &d_rows, dlogits)?;
        self.record_d_backward(gpu, st, &both, &both_g, true, None)?;
        let adam_d = Adam::new(self.config.adam_d)?;
        record_adam(gpu, st, state, &adam_d, &self.d_arena)?;
        // (3) Generator update through the updated discriminator (with
        // fresh noise: on its own latents, generated again first).
        if let Some(own) = &ga_own {
            fill_normal(
                gpu,
                st,
                Philox::new(seed, STREAM_Z_FOR_G),
                &state.counters,
                &own.z,
            )?;
            self.record_generate(gpu, st, own, true)?;
        }
        self.record_discriminate(gpu, st, &fake, Some((&state.counters, STREAM_G_UPDATE)))?;
        let (logits, dlogits) = (&fake.logits, &fake_g.dlogits);
        let g_scale = loss.record_g(gpu, st, logits, &g_targets, &g_rows, dlogits)?;
        // D's input gradient ends in tanh's derivative: d gen3 directly
        let dtanh = Epilogue::dact(Activation::Tanh, &gg.img);
        self.record_d_backward(gpu, st, &fake, &fake_g, false, Some((&dg3, dtanh)))?;
        self.g3.backward(
            gpu,
            st,
            &gg.g2a,
            &dg3,
            Some((&dg2n, Epilogue::dact(LEAKY, &gg.g2a))),
        )?;
        self.g_bn2.backward(gpu, st, &gg.g2, &dg2n, &dg2)?;
        self.g2.backward(
            gpu,
            st,
            &gg.g1a,
            &dg2,
            Some((&dg1n, Epilogue::dact(LEAKY, &gg.g1a))),
        )?;
        self.g_bn1.backward(gpu, st, &gg.g1, &dg1n, &dg1)?;
        self.g1.backward(
            gpu,
            st,
            &gg.g0a,
            &dg1,
            Some((&dg0n, Epilogue::dact(LEAKY, &gg.g0a))),
        )?;
        self.g_bn0.backward(gpu, st, &gg.g0, &flat(&dg0n)?, &dg0)?;
        self.g_fc.backward(gpu, st, &gg.z, &dg0, None)?;
        let adam_g = Adam::new(self.config.adam_g)?;
        record_adam(gpu, st, state, &adam_g, &self.g_arena)?;
        // both losses to the ring, then the counter
        let losses = [
            StepLoss {
                slot: SLOT_D,
                rows: &d_rows,
                scale: d_scale,
            },
            StepLoss {
                slot: SLOT_G,
                rows: &g_rows,
                scale: g_scale,
            },
        ];
        state.record_end(gpu, st, &losses)?;

        let d_logits = both.logits.clone();
        let fake_img = ga.img.clone();
        let g_fake = gg.img.clone();
        let mut leaky_outputs = vec![
            ("gen fc bn", flat(&ga.g0a)?),
            ("gen1 bn", ga.g1a.clone()),
            ("gen2 bn", ga.g2a.clone()),
            ("d update disc1", both.o1.clone()),
            ("d update disc2", both.o2.clone()),
            ("g update disc1", fake.o1.clone()),
            ("g update disc2", fake.o2.clone()),
        ];
        if let Some(own) = &ga_own {
            leaky_outputs.extend([
                ("g update gen fc bn", flat(&own.g0a)?),
                ("g update gen1 bn", own.g1a.clone()),
                ("g update gen2 bn", own.g2a.clone()),
            ]);
        }
        let pool_argmax = [("d update", &both.argmax), ("g update", &fake.argmax)]
            .into_iter()
            .filter_map(|(n, a)| a.clone().map(|a| (n, a)))
            .collect();
        Ok(TrainStep {
            step: s,
            fake: fake_img,
            g_fake,
            d_logits,
            leaky_outputs,
            pool_argmax,
        })
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
