//! The article's convolutional VAE (Keras semantics).
//!
//! Encoder: conv 32 3x3 s2 valid ReLU (28 -> 13), conv 64 3x3 s2 valid ReLU
//! (13 -> 6), flatten 2304, dense to 2L (mean | log-variance).
//! Reparameterisation z = mu + exp(logvar / 2) * eps.
//! Decoder: dense L -> 7x7x32 ReLU, convT 64 3x3 s2 same ReLU (7 -> 14),
//! convT 32 3x3 s2 same ReLU (14 -> 28), convT 1 3x3 s1 same: logits.
//! Loss per sample: sigmoid cross-entropy summed over the 784 pixels plus
//! the KL term, averaged over the batch, in nats. The KL term is the
//! analytic Gaussian KL ([`KlEstimator::Analytic`], the default), or the
//! article's one-sample estimate `log q(z|x) - log p(z)` at the sample the
//! decoder saw ([`KlEstimator::Mc`], [`crate::ops::kl_mc`]); the step
//! optimises, and reports in ring slot [`SLOT_KL`], the one configured.
//!
//! PyTorch twin (checkpoint names): `encoder = Sequential(Conv2d(1,32,3,2),
//! ReLU, Conv2d(32,64,3,2), ReLU, Flatten, Linear(2304, 2L))`, `decoder =
//! Sequential(Linear(L, 1568), ReLU, Unflatten(32,7,7), ConvTranspose2d(32,
//! 64,3,2), ReLU, ConvTranspose2d(64,32,3,2), ReLU, ConvTranspose2d(32,1,3,1))`
//! with Keras `same` alignment (see tools/check_with_pytorch.py).
//!
//! The model is three files: this one (the layers, their parameters,
//! inference and checkpoints), `config.rs` (its settings and options) and
//! `step.rs` (the activations and the recorded training and eval steps,
//! read top to bottom in the order they run).

mod config;
mod step;

pub use config::{KlEstimator, VaeConfig, VaeOptions};
pub use step::{EvalStep, TrainStep};

use std::path::Path;

use rand::SeedableRng;

use crate::data::PIXELS;
use crate::error::{Error, Result};
use crate::eval::iwae;
use crate::gpu::{Gpu, Step, Tensor};
use crate::io::Checkpoint;
use crate::models::settings::from_settings;
use crate::models::{count, expect_model, flat, infer_chunked, meta_usize, Stored, CHUNK};
use crate::nn::{Dense, Layer, Param, ParamArena};
use crate::ops::activation::Activation;
use crate::ops::bce::{bce_with_logits, BceReduction};
use crate::ops::conv2d::{Conv2d, Padding};
use crate::ops::conv_transpose2d::ConvTranspose2d;
use crate::ops::gemm::Epilogue;
use crate::ops::kl::kl_divergence;
use crate::ops::kl_mc::kl_mc;
use crate::ops::reparam::reparam_forward_cpu;
use crate::ops::rng::Philox;
use step::{DecActs, EncActs};

/// Encoder output image after the second conv: 6x6x64.
const ENC_HWC: (usize, usize, usize) = (6, 6, 64);
/// Decoder input image: 7x7x32.
const DEC_HWC: (usize, usize, usize) = (7, 7, 32);
const RELU: Activation = Activation::Relu;
const RELU_EPI: Epilogue<'static> = Epilogue {
    act: Some(RELU),
    ..Epilogue::NONE
};

/// Loss slots in the step's ring row.
pub const SLOT_RECON: usize = 0;
pub const SLOT_KL: usize = 1;

/// The VAE's layers, their parameters in one [`ParamArena`].
pub struct Vae {
    pub config: VaeConfig,
    pub arena: ParamArena,
    pub enc1: Layer<Conv2d>,
    pub enc2: Layer<Conv2d>,
    pub enc_fc: Layer<Dense>,
    pub dec_fc: Layer<Dense>,
    pub dec1: Layer<ConvTranspose2d>,
    pub dec2: Layer<ConvTranspose2d>,
    pub dec3: Layer<ConvTranspose2d>,
}

impl Vae {
    /// Build with Keras initialisation from `config.seed`.
    pub fn new(gpu: &Gpu, config: VaeConfig) -> Result<Vae> {
        if config.latent == 0 || config.batch == 0 {
            return Err(Error::invalid(
                "vae",
                "latent_dim and batch size must be positive",
            ));
        }
        config.adam.validate()?;
        let l = config.latent;
        let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
        let r = &mut rng;
        let valid = Padding::valid();
        let mut enc1 = Layer::conv(gpu, r, "encoder.0", 3, 2, valid, 1, 32, true)?;
        let mut enc2 = Layer::conv(gpu, r, "encoder.2", 3, 2, valid, 32, 64, true)?;
        let mut enc_fc = Layer::dense(gpu, r, "encoder.5", 2304, 2 * l, true, Some(ENC_HWC), None)?;
        let mut dec_fc = Layer::dense(gpu, r, "decoder.0", l, 1568, true, None, Some(DEC_HWC))?;
        let mut dec1 = Layer::conv_transpose_same(gpu, r, "decoder.3", 3, 2, 7, 32, 64, true)?;
        let mut dec2 = Layer::conv_transpose_same(gpu, r, "decoder.5", 3, 2, 14, 64, 32, true)?;
        let mut dec3 = Layer::conv_transpose_same(gpu, r, "decoder.7", 3, 1, 28, 32, 1, true)?;
        let mut runs = enc1.runs();
        runs.extend(enc2.runs());
        runs.extend(enc_fc.runs());
        runs.extend(dec_fc.runs());
        runs.extend(dec1.runs());
        runs.extend(dec2.runs());
        runs.extend(dec3.runs());
        let arena = ParamArena::pack(gpu, "vae", runs)?;
        Ok(Vae {
            enc1,
            enc2,
            enc_fc,
            dec_fc,
            dec1,
            dec2,
            dec3,
            arena,
            config,
        })
    }

    /// Every parameter, encoder first.
    pub fn params(&self) -> Vec<&Param> {
        [&self.enc1, &self.enc2]
            .iter()
            .flat_map(|l| l.params())
            .chain(self.enc_fc.params())
            .chain(self.dec_fc.params())
            .chain(
                [&self.dec1, &self.dec2, &self.dec3]
                    .iter()
                    .flat_map(|l| l.params()),
            )
            .collect()
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        count(&self.params())
    }

    /// Mean and log-variance `[n, L]` each of `pixels` (`n * 784` values in
    /// [0, 1]), in submits of at most [`CHUNK`] images.
    pub fn encode(&self, gpu: &Gpu, pixels: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let l = self.config.latent;
        let n = pixels.len() / PIXELS;
        let (mut mu, mut lv) = (Vec::with_capacity(n * l), Vec::with_capacity(n * l));
        pollster::block_on(infer_chunked(
            gpu,
            "vae encode",
            pixels,
            PIXELS,
            |m| EncActs::new(gpu, m, l),
            |enc, chunk, s| {
                enc.x.write_f32(gpu, chunk)?;
                self.record_encode(gpu, s, enc)?;
                Ok(vec![enc.h.clone()])
            },
            |read| {
                for row in read[0].chunks(2 * l) {
                    mu.extend_from_slice(&row[..l]);
                    lv.extend_from_slice(&row[l..]);
                }
                Ok(())
            },
        ))?;
        Ok((mu, lv))
    }

    /// Bernoulli means (pixel probabilities) `[n, 784]` decoded from `z`
    /// (`n * L` values), in submits of at most [`CHUNK`] images.
    pub fn decode(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.decode_async(gpu, z))
    }

    /// [`Vae::decode`] as a future, which a browser awaits.
    pub async fn decode_async(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>> {
        self.decode_with(gpu, z, true).await
    }

    /// The decoder's logits `[n, 784]` at `z`: what the likelihood is
    /// computed from (probabilities saturate to 0 or 1 in f32).
    pub fn decode_logits(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>> {
        pollster::block_on(self.decode_with(gpu, z, false))
    }

    async fn decode_with(&self, gpu: &Gpu, z: &[f32], sigmoid: bool) -> Result<Vec<f32>> {
        let l = self.config.latent;
        let mut out = Vec::with_capacity(z.len() / l * PIXELS);
        infer_chunked(
            gpu,
            "vae decode",
            z,
            l,
            |m| DecActs::new(gpu, m, l),
            |dec, chunk, s| {
                let probs = self.record_decode_from(gpu, s, dec, chunk, sigmoid)?;
                Ok(vec![probs.unwrap_or_else(|| dec.logits.clone())])
            },
            |read| {
                out.extend_from_slice(&read[0]);
                Ok(())
            },
        )
        .await?;
        Ok(out)
    }

    /// Write latents `z` into `dec` and record their decoding: logits, and
    /// with `sigmoid` the probabilities (returned).
    fn record_decode_from(
        &self,
        gpu: &Gpu,
        s: &mut Step,
        dec: &DecActs,
        z: &[f32],
        sigmoid: bool,
    ) -> Result<Option<Tensor>> {
        dec.z.write_f32(gpu, z)?;
        self.record_decode(gpu, s, dec)?;
        if !sigmoid {
            return Ok(None);
        }
        let m = z.len() / self.config.latent;
        let probs = Tensor::zeros(gpu, &[m, 28, 28, 1], "probabilities")?;
        Activation::Sigmoid.forward(gpu, s, &dec.logits, &probs)?;
        Ok(Some(probs))
    }

    /// [`Vae::sample`] as a future, which a browser awaits.
    pub async fn sample_async(&self, gpu: &Gpu, n: usize, seed: u64) -> Result<Vec<f32>> {
        let z: Vec<f32> = Philox::new(seed, 3).normal_cpu(0, n * self.config.latent);
        self.decode_async(gpu, &z).await
    }

    /// The importance-weighted bound (crate::eval::iwae) with `k` samples
    /// per image, as a negative log-likelihood in nats per image (an upper
    /// bound on `-log p(x)`, tighter than the negative ELBO), for each of
    /// `pixels` (`n * 784` values in [0, 1], the Bernoulli targets as
    /// given), the noise from `seed`. `progress` is called with the images
    /// done so far.
    pub fn iwae_nll(
        &self,
        gpu: &Gpu,
        pixels: &[f32],
        k: usize,
        seed: u64,
        mut progress: impl FnMut(usize),
    ) -> Result<Vec<f64>> {
        let (mu, lv) = self.encode(gpu, pixels)?;
        let l = self.config.latent;
        // Decode whole images' k latents per submit.
        let per = (CHUNK / k).max(1);
        let mut out = Vec::with_capacity(mu.len() / l);
        for (i, (x, (m, v))) in pixels
            .chunks(per * PIXELS)
            .zip(mu.chunks(per * l).zip(lv.chunks(per * l)))
            .enumerate()
        {
            let d = iwae::draw(m, v, l, k, seed.wrapping_add(i as u64))?;
            let logits = self.decode_logits(gpu, &d.z)?;
            let log_px_z: Vec<f64> = logits
                .chunks_exact(PIXELS)
                .enumerate()
                .map(|(j, row)| {
                    let img = j / k;
                    iwae::bernoulli_log_likelihood(row, &x[img * PIXELS..(img + 1) * PIXELS])
                })
                .collect();
            out.extend(iwae::bound(&log_px_z, &d.log_ratio, k)?.iter().map(|b| -b));
            progress(out.len());
        }
        Ok(out)
    }

    /// The negative ELBO of `pixels` (`n * 784` values in [0, 1], used as
    /// given: no binarisation) with the noise `eps` (`n * L` values) given
    /// instead of drawn: `(reconstruction, KL)`, each the batch mean of the
    /// per-image nats, as the training step computes them (the KL by the
    /// configured estimator, at this eps for [`KlEstimator::Mc`]). For comparing
    /// with another implementation on the same inputs
    /// (tools/check_with_pytorch.py). Two submits: the encoder, then
    /// `z = mu + exp(clamp(logvar) / 2) * eps` on the CPU
    /// ([`reparam_forward_cpu`], f64 rounded to f32), then decoder and losses.
    pub fn loss_on(&self, gpu: &Gpu, pixels: &[f32], eps: &[f32]) -> Result<(f64, f64)> {
        let n = pixels.len() / PIXELS;
        let l = self.config.latent;
        if n == 0 || !pixels.len().is_multiple_of(PIXELS) || eps.len() != n * l {
            return Err(Error::invalid(
                "vae loss_on",
                format!(
                    "{} pixel values and {} noise values are not n whole 28x28 images \
                     and n {l}-d latents",
                    pixels.len(),
                    eps.len()
                ),
            ));
        }
        let enc = EncActs::new(gpu, n, l)?;
        enc.x.write_f32(gpu, pixels)?;
        let mut s = Step::new("vae loss_on encode");
        self.record_encode(gpu, &mut s, &enc)?;
        gpu.run(&[&s])?;
        let z = reparam_forward_cpu(&enc.h.read_f32(gpu)?, eps, l);
        let dec = DecActs::new(gpu, n, l)?;
        dec.z.write_f32(gpu, &z)?;
        let g = |shape: &[usize], name: &str| Tensor::zeros(gpu, shape, name);
        let (recon_rows, recon) = (g(&[n], "recon rows")?, g(&[1], "recon")?);
        let (kl_rows, kl) = (g(&[n], "kl rows")?, g(&[1], "kl")?);
        let mut s = Step::new("vae loss_on decode");
        let st = &mut s;
        self.record_decode(gpu, st, &dec)?;
        bce_with_logits(
            gpu,
            st,
            &flat(&dec.logits)?,
            &flat(&enc.x)?,
            &recon_rows,
            &recon,
            None,
            BceReduction::SumPerSampleMean,
            1.0,
        )?;
        match self.config.options.kl {
            KlEstimator::Analytic => {
                kl_divergence(gpu, st, &enc.h, &kl_rows, &kl, None, false, 1.0)?
            }
            KlEstimator::Mc => {
                let eps = Tensor::from_f32(gpu, &[n, l], eps, "eps")?;
                kl_mc(
                    gpu, st, &enc.h, &eps, &dec.z, &kl_rows, &kl, None, false, 1.0,
                )?
            }
        }
        gpu.run(&[&s])?;
        Ok((recon.read_f32(gpu)?[0] as f64, kl.read_f32(gpu)?[0] as f64))
    }

    /// Reconstructions (decoder means at the posterior means) of `pixels`.
    pub fn reconstruct(&self, gpu: &Gpu, pixels: &[f32]) -> Result<Vec<f32>> {
        let (mu, _) = self.encode(gpu, pixels)?;
        self.decode(gpu, &mu)
    }

    /// `n` samples: decoder means at z ~ N(0, I) drawn from `seed`.
    pub fn sample(&self, gpu: &Gpu, n: usize, seed: u64) -> Result<Vec<f32>> {
        pollster::block_on(self.sample_async(gpu, n, seed))
    }

    /// Parameters, Adam moments and metadata, PyTorch names and layouts.
    pub fn checkpoint(&self, gpu: &Gpu) -> Result<Checkpoint> {
        pollster::block_on(self.checkpoint_async(gpu))
    }

    /// [`Vae::checkpoint`] as a future, which a browser awaits.
    pub async fn checkpoint_async(&self, gpu: &Gpu) -> Result<Checkpoint> {
        let mut ck = self.stored().checkpoint_async(gpu).await?;
        ck.metadata
            .insert("latent_dim".into(), self.config.latent.to_string());
        Ok(ck)
    }

    /// The VAE of checkpoint `ck` (read from `path`, which errors name),
    /// built at its sizes and settings and restored: its latent size, and
    /// the likelihood's pixels and the KL estimator it was trained with,
    /// so it is scored as it was trained.
    pub fn from_checkpoint(gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<Vae> {
        expect_model(ck, path, "vae")?;
        let vae = Vae::new(
            gpu,
            VaeConfig {
                latent: meta_usize(ck, path, "latent_dim")?,
                batch: 1,
                options: from_settings(&ck.metadata, path)?,
                ..VaeConfig::default()
            },
        )?;
        vae.restore(gpu, ck, path)?;
        Ok(vae)
    }

    /// What the checkpoint holds: parameters and Adam moments.
    fn stored(&self) -> Stored<'_> {
        Stored {
            model: "vae",
            label: "the VAE",
            params: self.params(),
            batch_norms: Vec::new(),
            weights_only_ok: false,
        }
    }

    /// Names and PyTorch shapes a checkpoint of this model holds.
    pub fn checkpoint_entries(&self) -> Vec<(String, Vec<usize>)> {
        self.stored().entries(true)
    }

    /// Restore parameters and Adam moments; a checkpoint of another model
    /// or size is refused with every mismatched tensor listed.
    pub fn restore(&self, gpu: &Gpu, ck: &Checkpoint, path: &Path) -> Result<()> {
        self.stored().restore(gpu, ck, path)
    }
}
