//! Training presets: the article's settings, the TensorFlow DCGAN
//! tutorial's, a CPU-sized smoke run, and a tiny one for tests. Portable
//! (the browser's runs take their settings from here too); `train`
//! re-exports it as `train::preset`.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::gan::{DHead, GanConfig};
use crate::models::vae::VaeConfig;
use crate::optim::adam::AdamConfig;

/// A named set of hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The article: VAE latent 2, Adam 1e-4, batch 32, 10 epochs; GAN
    /// latent 2, batch 32, Adam 1e-3 for both nets, global max pool head,
    /// 100 epochs.
    Article,
    /// The TensorFlow DCGAN tutorial (GAN only): latent 100, batch 256,
    /// Adam 1e-4, flatten head, 50 epochs.
    Dcgan,
    /// Sized for a CPU adapter (lavapipe): minutes, not hours.
    Smoke,
    /// 64 images, batch 8: for tests.
    Tiny,
}

/// VAE hyperparameters of a preset.
#[derive(Clone, Debug, PartialEq)]
pub struct VaePreset {
    pub latent: usize,
    pub batch: usize,
    pub lr: f32,
    pub epochs: usize,
    /// Training images used (`None`: all 60,000).
    pub train_images: Option<usize>,
    /// Test images scored each epoch (`None`: all 10,000).
    pub test_images: Option<usize>,
}

/// GAN hyperparameters of a preset.
#[derive(Clone, Debug, PartialEq)]
pub struct GanPreset {
    pub latent: usize,
    pub batch: usize,
    pub lr_g: f32,
    pub lr_d: f32,
    pub epochs: usize,
    pub head: DHead,
    pub train_images: Option<usize>,
}

impl VaePreset {
    /// The model this preset trains, with the seed `seed`: the article's
    /// options at their defaults (analytic KL, grey-level targets).
    pub fn config(&self, seed: u64) -> VaeConfig {
        VaeConfig {
            latent: self.latent,
            batch: self.batch,
            adam: AdamConfig::keras(self.lr),
            seed,
            ..VaeConfig::default()
        }
    }
}

impl GanPreset {
    /// The model this preset trains, with the seed `seed`: the article's
    /// options at their defaults (clean labels, G's update on D's latents).
    pub fn config(&self, seed: u64) -> GanConfig {
        GanConfig {
            latent: self.latent,
            batch: self.batch,
            adam_g: AdamConfig::keras(self.lr_g),
            adam_d: AdamConfig::keras(self.lr_d),
            seed,
            head: self.head,
            ..GanConfig::default()
        }
    }
}

/// What a training run records in its checkpoint's metadata, and what a
/// resume must share with the checkpoint it continues: the preset, the
/// training images (how many, of which dataset), then the model's own
/// settings (`VaeConfig::settings`, `GanConfig::settings`). The native
/// runs and the browser lab write the same.
pub fn run_metadata(
    preset: Preset,
    train_images: usize,
    dataset: Dataset,
    settings: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut meta = vec![
        ("preset".to_string(), preset.name().to_string()),
        ("train_images".into(), train_images.to_string()),
        ("dataset".into(), dataset.name().into()),
    ];
    meta.extend(settings);
    meta
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Article => "article",
            Preset::Dcgan => "dcgan",
            Preset::Smoke => "smoke",
            Preset::Tiny => "tiny",
        }
    }

    /// The default: the article on a GPU, smoke on a CPU adapter.
    pub fn default_for(cpu_adapter: bool) -> Preset {
        if cpu_adapter {
            Preset::Smoke
        } else {
            Preset::Article
        }
    }

    pub fn vae(self) -> Result<VaePreset> {
        Ok(match self {
            Preset::Article => VaePreset {
                latent: 2,
                batch: 32,
                lr: 1e-4,
                epochs: 10,
                train_images: None,
                test_images: None,
            },
            Preset::Smoke => VaePreset {
                latent: 2,
                batch: 32,
                lr: 1e-3,
                epochs: 3,
                train_images: Some(12_000),
                test_images: None,
            },
            Preset::Tiny => VaePreset {
                latent: 2,
                batch: 8,
                lr: 1e-3,
                epochs: 2,
                train_images: Some(64),
                test_images: Some(64),
            },
            Preset::Dcgan => {
                return Err(Error::invalid(
                    "preset",
                    "dcgan is a GAN preset: use article, smoke or tiny for the VAE",
                ))
            }
        })
    }

    pub fn gan(self) -> GanPreset {
        match self {
            Preset::Article => GanPreset {
                latent: 2,
                batch: 32,
                lr_g: 1e-3,
                lr_d: 1e-3,
                epochs: 100,
                head: DHead::GlobalMaxPool,
                train_images: None,
            },
            Preset::Dcgan => GanPreset {
                latent: 100,
                batch: 256,
                lr_g: 1e-4,
                lr_d: 1e-4,
                epochs: 50,
                head: DHead::Flatten,
                train_images: None,
            },
            Preset::Smoke => GanPreset {
                latent: 2,
                batch: 32,
                lr_g: 1e-3,
                lr_d: 1e-3,
                epochs: 2,
                head: DHead::GlobalMaxPool,
                train_images: Some(3_200),
            },
            Preset::Tiny => GanPreset {
                latent: 2,
                batch: 8,
                lr_g: 1e-3,
                lr_d: 1e-3,
                epochs: 2,
                head: DHead::GlobalMaxPool,
                train_images: Some(64),
            },
        }
    }
}
