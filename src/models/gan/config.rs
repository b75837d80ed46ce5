//! The GAN's settings as data: its discriminator head, its sizes,
//! optimizers and seed ([`GanConfig`], from a preset) and its training
//! options ([`GanOptions`], each a command-line flag and a checkpoint
//! setting).

use crate::error::{Error, Result};
use crate::models::gan_loss::GanLoss;
use crate::models::settings::to_settings;
use crate::ops::bce::check_label_noise;
use crate::optim::adam::AdamConfig;

use super::D_HWC;

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
