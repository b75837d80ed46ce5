//! The VAE's settings as data: its sizes, optimizer and seed
//! ([`VaeConfig`], from a preset) and its training options
//! ([`VaeOptions`], each a command-line flag and a checkpoint setting).

use crate::models::settings::to_settings;
use crate::optim::adam::AdamConfig;

/// How the ELBO's KL term is computed (training and evaluation alike):
/// [`crate::ops::kl`] or [`crate::ops::kl_mc`]. (The variants' comments
/// are `train_vae --kl`'s help.)
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum KlEstimator {
    /// The closed form -0.5 sum(1 + logvar - mu^2 - exp(logvar)): exact, no
    /// variance (the default).
    #[default]
    Analytic,
    /// The article's one-sample estimate log q(z|x) - log p(z) at the
    /// sampled z, its gradient taken through z: unbiased, noisier.
    Mc,
}

impl KlEstimator {
    /// Name in checkpoint metadata and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            KlEstimator::Analytic => "analytic",
            KlEstimator::Mc => "mc",
        }
    }

    /// The estimator of that [`Self::name`].
    pub fn from_name(name: &str) -> Option<KlEstimator> {
        [KlEstimator::Analytic, KlEstimator::Mc]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// The VAE's settings: sizes, optimizer and seed (from a preset), and its
/// [`VaeOptions`]. The default is the article's model and step.
#[derive(Clone, Debug)]
pub struct VaeConfig {
    pub latent: usize,
    pub batch: usize,
    pub adam: AdamConfig,
    pub seed: u64,
    pub options: VaeOptions,
}

impl Default for VaeConfig {
    fn default() -> VaeConfig {
        VaeConfig {
            latent: 2,
            batch: 32,
            adam: AdamConfig::keras(1e-4),
            seed: 0,
            options: VaeOptions::default(),
        }
    }
}

/// The VAE's training options beyond its preset (each a command-line flag
/// of the runs and of `compare`, recorded in the checkpoint:
/// [`crate::models::settings`]). The defaults are the engine's step.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeOptions {
    /// Static binarisation of pixels at 0.5 (how published ELBOs are
    /// measured).
    #[arg(long)]
    pub binarize: bool,
    /// The KL term: `analytic` (closed form) or `mc` (the article's
    /// one-sample estimate log q(z|x) - log p(z) at the sampled z).
    #[arg(long, value_enum, default_value = "analytic")]
    pub kl: KlEstimator,
}

impl VaeConfig {
    /// The training settings a run records in its checkpoint's metadata
    /// (the latent size is the model's own: [`Vae::checkpoint`]).
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("batch".into(), self.batch.to_string()),
            ("seed".into(), self.seed.to_string()),
            ("lr".into(), self.adam.lr.to_string()),
        ]
        .into_iter()
        .chain(to_settings(&self.options))
        .collect()
    }
}
