//! One of the lab's two models: built from a preset and trained here, or
//! loaded from a checkpoint to sample and explore; what it draws, scores
//! and saves.

use std::collections::BTreeMap;
use std::path::Path;

use vae_vs_gan::compare::score::{latent_figures_async, score_async, POINT_SAMPLES};
use vae_vs_gan::compare::{Column, Figure, Figures};
use vae_vs_gan::data::{GpuDataset, Images, SIDE};
use vae_vs_gan::gpu::{Step, StepState};
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::models::classifier::Classifier;
use vae_vs_gan::models::gan::{to_pixels, Gan, SLOT_D, SLOT_G};
use vae_vs_gan::models::prior::{prior_grid, GRID};
use vae_vs_gan::models::vae::{Vae, SLOT_KL, SLOT_RECON};
use vae_vs_gan::report::grid_image;
use vae_vs_gan::{Error, Gpu, Result};

/// Most steps one training call runs (one submit, one read-back): the
/// size of each model's loss ring.
pub const MAX_STEPS_PER_CALL: usize = 50;
/// Side of the sample grid, and the seed of its fixed latents.
const SAMPLES_SIDE: usize = 10;
const SAMPLE_SEED: u64 = 1000;
/// The seed of the latents a model's scored samples come from.
const SCORE_SEED: u64 = 5000;
/// Test images in one batch of the VAE's test ELBO (the native runs').
const TEST_BATCH: usize = 500;

pub enum Model {
    Vae(Box<Vae>),
    Gan(Box<Gan>),
}

impl Model {
    /// "VAE" or "GAN".
    pub fn name(&self) -> &'static str {
        match self {
            Model::Vae(_) => "VAE",
            Model::Gan(_) => "GAN",
        }
    }

    fn latent(&self) -> usize {
        match self {
            Model::Vae(v) => v.config.latent,
            Model::Gan(g) => g.config.latent,
        }
    }

    pub fn param_count(&self) -> usize {
        match self {
            Model::Vae(v) => v.param_count(),
            Model::Gan(g) => g.param_count(),
        }
    }

    /// The model of checkpoint `bytes` (a file named `name`), which must
    /// be of the model in slot `index` (0 the VAE, 1 the GAN).
    pub fn load(gpu: &Gpu, index: usize, name: &str, bytes: &[u8]) -> Result<(Model, Checkpoint)> {
        let path = Path::new(name);
        let ck = Checkpoint::from_bytes(bytes, path)?;
        let model = match index {
            0 => Model::Vae(Box::new(Vae::from_checkpoint(gpu, &ck, path)?)),
            _ => Model::Gan(Box::new(Gan::from_checkpoint(gpu, &ck, path)?)),
        };
        Ok((model, ck))
    }

    /// Images decoded (VAE: the decoder's means) or generated (GAN) at
    /// latents `z`, in [0, 1].
    async fn images(&self, gpu: &Gpu, z: &[f32]) -> Result<Vec<f32>> {
        match self {
            Model::Vae(v) => v.decode_async(gpu, z).await,
            Model::Gan(g) => Ok(to_pixels(g.generate_async(gpu, z).await?)),
        }
    }

    /// `n` samples at the prior's latents drawn from `seed`, in [0, 1].
    async fn samples(&self, gpu: &Gpu, n: usize, seed: u64) -> Result<Vec<f32>> {
        match self {
            Model::Vae(v) => v.sample_async(gpu, n, seed).await,
            Model::Gan(g) => Ok(to_pixels(g.sample_async(gpu, n, seed).await?)),
        }
    }

    async fn checkpoint(&self, gpu: &Gpu) -> Result<Checkpoint> {
        match self {
            Model::Vae(v) => v.checkpoint_async(gpu).await,
            Model::Gan(g) => g.checkpoint_async(gpu).await,
        }
    }

    /// The loss slots' names, in slot order.
    pub fn loss_names(&self) -> [&'static str; 2] {
        let mut n = [""; 2];
        match self {
            Model::Vae(_) => {
                n[SLOT_RECON] = "recon";
                n[SLOT_KL] = "kl";
            }
            Model::Gan(_) => {
                n[SLOT_G] = "g_loss";
                n[SLOT_D] = "d_loss";
            }
        }
        n
    }
}

/// A model's training here: its data on the device, step state and
/// recorded step, and how far it has come.
pub struct Training {
    state: StepState,
    step: Step,
    data: GpuDataset,
    seed: u64,
    pub batch: usize,
    pub epochs: usize,
    /// Steps done.
    pub done: usize,
}

impl Training {
    /// `model`'s training on `images` from its first step.
    pub fn new(
        gpu: &Gpu,
        model: &Model,
        images: &Images,
        seed: u64,
        batch: usize,
        epochs: usize,
    ) -> Result<Training> {
        let data = GpuDataset::upload(gpu, images, &format!("{} train", model.name()))?;
        let state = StepState::new(gpu, 2, MAX_STEPS_PER_CALL, 0)?;
        let step = match model {
            Model::Vae(v) => v.train_step(gpu, &state, &data)?.step,
            Model::Gan(g) => g.train_step(gpu, &state, &data)?.step,
        };
        Ok(Training {
            state,
            step,
            data,
            seed,
            batch,
            epochs,
            done: 0,
        })
    }

    pub fn per_epoch(&self) -> usize {
        self.data.batches(self.batch)
    }

    pub fn total(&self) -> usize {
        self.per_epoch() * self.epochs
    }

    /// Up to `steps` more steps, within the current epoch (each epoch
    /// starts with its seeded shuffle, as natively); the last step's
    /// losses. `what` names the model in errors.
    pub async fn run(&mut self, gpu: &Gpu, steps: usize, what: &str) -> Result<Vec<f32>> {
        let per_epoch = self.per_epoch();
        let in_epoch = self.done % per_epoch;
        if in_epoch == 0 {
            self.data.shuffle(gpu, self.seed, self.done / per_epoch)?;
        }
        let n = steps
            .clamp(1, MAX_STEPS_PER_CALL)
            .min(per_epoch - in_epoch)
            .min(self.total() - self.done);
        let chunk: Vec<&Step> = std::iter::repeat_n(&self.step, n).collect();
        let snap = self
            .state
            .submit(gpu, &chunk)?
            .wait_async(gpu, &format!("training the {what}"))
            .await?;
        let rows = snap.losses(self.done as u64)?;
        self.done += n;
        Ok(rows.last().map(|r| r.values.clone()).unwrap_or_default())
    }
}

/// The test images a model is scored against.
pub struct Reference {
    /// In [0, 1] pixels...
    pub pixels: Vec<f32>,
    /// ... in the classifier's feature space...
    pub features: Vec<f32>,
    /// ... and on the device, for the VAE's test ELBO.
    pub data: GpuDataset,
}

/// What [`Slot::picture`] draws.
#[derive(Clone, Copy)]
pub enum Picture {
    Samples,
    Latents,
}

/// A model in one of the lab's two places.
pub struct Slot {
    pub model: Model,
    /// Its training (none for a loaded checkpoint).
    pub training: Option<Training>,
    /// Where it comes from: "tiny preset, seed 0" or "loaded from NAME".
    pub source: String,
    /// What its checkpoint's metadata says besides the weights: the run's
    /// settings (a loaded checkpoint's own metadata, kept as it was).
    pub meta: BTreeMap<String, String>,
    /// The checkpoint last kept ([`Slot::keep`]): what a download gives
    /// once the device is lost.
    pub kept: Option<Checkpoint>,
}

impl Slot {
    /// Steps trained: here, or (loaded) as its checkpoint records them.
    pub fn steps(&self) -> Option<usize> {
        match &self.training {
            Some(t) => Some(t.done),
            None => self.meta.get("steps").and_then(|s| s.parse().ok()),
        }
    }

    /// The model's checkpoint now, with its metadata: the run's settings,
    /// and for a model trained here the epochs completed and steps done.
    pub async fn checkpoint(&self, gpu: &Gpu) -> Result<Checkpoint> {
        let mut ck = self.model.checkpoint(gpu).await?;
        for (k, v) in &self.meta {
            ck.metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if let Some(t) = &self.training {
            ck.metadata
                .insert("epoch".into(), (t.done / t.per_epoch()).to_string());
            ck.metadata.insert("steps".into(), t.done.to_string());
        }
        Ok(ck)
    }

    /// Keep the checkpoint now, for a download after the device is lost.
    pub async fn keep(&mut self, gpu: &Gpu) -> Result<()> {
        self.kept = Some(self.checkpoint(gpu).await?);
        Ok(())
    }

    /// The picture `which` as RGBA bytes: the 100 samples from fixed
    /// latents as a 10x10 grid, or the 20x20 grid of images over the
    /// prior's quantiles (a 2-D latent only).
    pub async fn picture(&self, gpu: &Gpu, which: Picture) -> Result<Vec<u8>> {
        let (images, side) = match which {
            Picture::Samples => {
                let n = SAMPLES_SIDE * SAMPLES_SIDE;
                let px = self.model.samples(gpu, n, SAMPLE_SEED).await?;
                (px, SAMPLES_SIDE)
            }
            Picture::Latents => (self.latent_images(gpu).await?, GRID),
        };
        let grey = grid_image(&images, SIDE, side, side, 0.0, 1.0)?;
        Ok(grey.as_raw().iter().flat_map(|&g| [g, g, g, 255]).collect())
    }

    async fn latent_images(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        let l = self.model.latent();
        if l != 2 {
            return Err(Error::invalid(
                "latent grid",
                format!(
                    "the {} has a {l}-d latent: a grid needs 2",
                    self.model.name()
                ),
            ));
        }
        self.model.images(gpu, &prior_grid(GRID)).await
    }

    /// The comparison's figures that are cheap here, into column `col`:
    /// [`POINT_SAMPLES`] samples' FID, precision, recall, class coverage,
    /// Inception Score and sharpness against the reference (as a point of
    /// the native comparison's curves scores them); the VAE's test ELBO on
    /// the reference images; a 2-D latent grid's structure.
    pub async fn score(
        &self,
        gpu: &Gpu,
        classifier: &Classifier,
        reference: &Reference,
        figs: &mut Figures,
        col: Column,
    ) -> Result<()> {
        let px = self.model.samples(gpu, POINT_SAMPLES, SCORE_SEED).await?;
        score_async(gpu, classifier, &reference.features, figs, col, &px).await?;
        if let Model::Vae(v) = &self.model {
            let elbo = v.test_loss_async(gpu, &reference.data, TEST_BATCH).await?;
            figs.push(col, Figure::TestNegElbo, elbo);
        }
        if self.model.latent() == 2 {
            let grid = self.latent_images(gpu).await?;
            latent_figures_async(gpu, classifier, &grid, GRID, figs, col).await?;
        }
        Ok(())
    }
}
