//! Models from checkpoints: the metadata checked, the model built at the
//! checkpoint's sizes and restored, and the training figures beside it.

use std::path::Path;

use crate::compare::options::default_classifier;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::Checkpoint;
use crate::models::classifier::Classifier;
use crate::models::expect_model;
use crate::models::gan::Gan;
use crate::models::vae::Vae;
use crate::train::Metrics;

/// `metrics.json` beside a loaded checkpoint, if there is one.
pub(crate) fn metrics_beside(ckpt: &Path) -> Option<Metrics> {
    Metrics::load(ckpt.parent().unwrap_or(Path::new("."))).ok()
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
    Classifier::from_checkpoint(gpu, &ck, path)
}

/// A VAE from a checkpoint ([`Vae::from_checkpoint`]).
pub fn load_vae(gpu: &Gpu, path: &Path) -> Result<Vae> {
    Vae::from_checkpoint(gpu, &Checkpoint::load(path)?, path)
}

/// A GAN from a checkpoint ([`Gan::from_checkpoint`]).
pub fn load_gan(gpu: &Gpu, path: &Path) -> Result<Gan> {
    Gan::from_checkpoint(gpu, &Checkpoint::load(path)?, path)
}
