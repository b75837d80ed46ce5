//! Models from checkpoints: the metadata checked, the model built at the
//! checkpoint's sizes and restored, and the training figures beside it.

use std::path::Path;

use clap::ValueEnum;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::io::Checkpoint;
use crate::models::gan::{DHead, Gan, GanConfig};
use crate::models::vae::{Vae, VaeConfig};
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
        },
    )?;
    gan.restore(gpu, &ck, path)?;
    Ok(gan)
}
