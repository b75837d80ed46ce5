//! The report's Settings table: every setting each model was trained
//! with, read back from its checkpoint's metadata (so a loaded checkpoint
//! reports what it was trained with, not what this comparison would do).

use std::collections::BTreeMap;
use std::path::Path;

use crate::compare::report::Setting;
use crate::error::Result;
use crate::io::Checkpoint;
use crate::optim::adam::AdamConfig;
use crate::optim::rmsprop::RmsPropConfig;
use crate::train::session::{META_COMPARISON, META_METRICS, META_PROGRESS};

/// Known metadata keys in table order, with the names a reader knows.
/// Keys not listed follow in alphabetical order under their own names.
const KNOWN: [(&str, &str); 21] = [
    ("preset", "preset"),
    ("dataset", "dataset"),
    ("latent_dim", "latent size"),
    ("batch", "batch size"),
    ("lr", "Adam learning rate"),
    ("lr_g", "Adam learning rate, generator"),
    ("lr_d", "Adam learning rate, discriminator"),
    ("epoch", "epochs trained"),
    ("steps", "steps trained"),
    ("train_images", "training images"),
    ("d_head", "discriminator head"),
    ("loss", "GAN loss"),
    ("binarize", "binarised pixels"),
    ("kl", "KL estimator"),
    ("label_noise", "D label noise (x U(0,1))"),
    ("fresh_noise_for_g", "fresh noise for G's update"),
    ("n_critic", "critic steps per G step (Wasserstein)"),
    ("weight_clip", "critic weight clip (Wasserstein)"),
    ("rmsprop_lr", "RMSProp learning rate (Wasserstein)"),
    ("seed", "seed (first)"),
    ("trained_in", "trained in"),
];

/// Metadata that is not a setting: the model's name, the run's history
/// and the comparison it was trained for.
fn is_setting(key: &str) -> bool {
    !matches!(key, "model") && ![META_METRICS, META_PROGRESS, META_COMPARISON].contains(&key)
}

/// The settings of the VAE and GAN checkpoints at `vae` and `gan`, and
/// the optimizers' constants (Keras' Adam, or for the Wasserstein GAN
/// PyTorch's RMSProp; their learning rates are recorded per run).
pub fn settings(vae: &Path, gan: &Path) -> Result<Vec<Setting>> {
    let (v, g) = (
        Checkpoint::load(vae)?.metadata,
        Checkpoint::load(gan)?.metadata,
    );
    let mut out = rows(&v, &g);
    let a = AdamConfig::keras(0.0);
    let adam = format!(
        "Adam: beta1 {}, beta2 {}, eps {:e} ({:?} epsilon)",
        a.beta1, a.beta2, a.eps, a.convention
    );
    let r = RmsPropConfig::pytorch(0.0);
    let gan_opt = match g.get("loss").map(String::as_str) {
        Some("wasserstein") => format!("RMSProp: alpha {}, eps {:e}", r.alpha, r.eps),
        _ => adam.clone(),
    };
    out.push(Setting {
        name: "optimizer constants".into(),
        vae: adam,
        gan: gan_opt,
    });
    Ok(out)
}

/// The table's rows from the two metadata maps.
pub fn rows(vae: &BTreeMap<String, String>, gan: &BTreeMap<String, String>) -> Vec<Setting> {
    let cell = |m: &BTreeMap<String, String>, k: &str| m.get(k).cloned().unwrap_or("–".into());
    let row = |k: &str, name: &str| Setting {
        name: name.to_string(),
        vae: cell(vae, k),
        gan: cell(gan, k),
    };
    let mut out: Vec<Setting> = KNOWN
        .iter()
        .filter(|(k, _)| vae.contains_key(*k) || gan.contains_key(*k))
        .map(|(k, name)| row(k, name))
        .collect();
    let mut rest: Vec<&String> = vae.keys().chain(gan.keys()).collect();
    rest.sort();
    rest.dedup();
    for k in rest {
        if is_setting(k) && !KNOWN.iter().any(|(known, _)| known == k) {
            out.push(row(k, k));
        }
    }
    out
}
