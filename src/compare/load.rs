//! Models from checkpoints: the metadata checked, the model built at the
//! checkpoint's sizes and restored, and the training figures beside it.

use std::path::Path;

use clap::ValueEnum;

use crate::compare::options::default_classifier;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::Checkpoint;
use crate::models::classifier::{Classifier, ClassifierConfig};
use crate::models::gan::{DHead, Gan, GanConfig};
use crate::models::vae::{KlEstimator, Vae, VaeConfig};
use crate::optim::adam::AdamConfig;
use crate::train::Metrics;

/// `metrics.json` beside a loaded checkpoint, if there is one.
pub(crate) fn metrics_beside(ckpt: &Path) -> Option<Metrics> {
    Metrics::load(ckpt.parent().unwrap_or(Path::new("."))).ok()
}

fn meta_usize(ck: &Checkpoint, path: &Path, key: &str) -> Result<usize> {
    let v = ck
        .metadata
        .get(key)
        .ok_or_else(|| Error::data(path, format!("checkpoint metadata has no {key:?}")))?;
    v.parse().map_err(|_| {
        Error::data(
            path,
            format!("checkpoint metadata {key} = {v:?} is not a number"),
        )
    })
}

fn expect_model(ck: &Checkpoint, path: &Path, want: &str) -> Result<()> {
    match ck.metadata.get("model") {
        Some(m) if m == want => Ok(()),
        Some(m) => Err(Error::data(
            path,
            format!(
                "checkpoint is of model {m:?}, not the {}",
                want.to_uppercase()
            ),
        )),
        None => Err(Error::data(path, "checkpoint metadata names no model")),
    }
}

/// The feature network from its weights, refused when its metadata
/// names another dataset than the comparison's (a checkpoint without a
/// `dataset` entry predates it and is MNIST's).
pub fn load_classifier(gpu: &Gpu, path: &Path, dataset: Dataset) -> Result<Classifier> {
    let ck = Checkpoint::load(path)?;
    expect_model(&ck, path, "classifier")?;
    let trained_on = ck.metadata.get("dataset").map_or("mnist", |d| d.as_str());
    if trained_on != dataset.name() {
        return Err(Error::data(
            path,
            format!(
                "this classifier was trained on {trained_on}, not {}: pass the {} one with \
                 --classifier (default {})",
                dataset.name(),
                dataset.name(),
                default_classifier(dataset).display()
            ),
        ));
    }
    let classifier = Classifier::new(
        gpu,
        ClassifierConfig {
            batch: 1,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
        },
    )?;
    classifier.restore(gpu, &ck, path)?;
    Ok(classifier)
}

/// A VAE from a checkpoint (its latent size from the metadata).
pub fn load_vae(gpu: &Gpu, path: &Path) -> Result<Vae> {
    let ck = Checkpoint::load(path)?;
    expect_model(&ck, path, "vae")?;
    let vae = Vae::new(
        gpu,
        VaeConfig {
            latent: meta_usize(&ck, path, "latent_dim")?,
            batch: 1,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
            // A VAE trained on binarised pixels is scored on binarised pixels.
            binarize: ck.metadata.get("binarize").is_some_and(|b| b == "true"),
            // The KL estimator it was trained with (absent: the analytic).
            kl: ck
                .metadata
                .get("kl")
                .and_then(|k| KlEstimator::from_name(k))
                .unwrap_or_default(),
        },
    )?;
    vae.restore(gpu, &ck, path)?;
    Ok(vae)
}

/// A GAN from a checkpoint (latent size and head from the metadata).
pub fn load_gan(gpu: &Gpu, path: &Path) -> Result<Gan> {
    let ck = Checkpoint::load(path)?;
    expect_model(&ck, path, "gan")?;
    let head = match ck.metadata.get("d_head") {
        Some(h) => *DHead::value_variants()
            .iter()
            .find(|d| d.name() == h)
            .ok_or_else(|| {
                Error::data(path, format!("checkpoint d_head {h:?} is no known head"))
            })?,
        None => DHead::default(),
    };
    let gan = Gan::new(
        gpu,
        GanConfig {
            latent: meta_usize(&ck, path, "latent_dim")?,
            batch: 1,
            adam_g: AdamConfig::keras(1e-3),
            adam_d: AdamConfig::keras(1e-3),
            seed: 0,
            head,
            // training-only settings: inference does not use them
            label_noise: 0.0,
            fresh_noise_for_g: false,
        },
    )?;
    gan.restore(gpu, &ck, path)?;
    Ok(gan)
}
