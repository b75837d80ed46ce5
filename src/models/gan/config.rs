//! The GAN's settings as data: its discriminator head, its sizes,
//! optimizers and seed ([`GanConfig`], from a preset) and its training
//! options ([`GanOptions`], each a command-line flag and a checkpoint
//! setting).

use crate::error::{Error, Result};
use crate::models::gan_loss::GanLoss;
use crate::models::settings::to_settings;
use crate::models::Optimizer;
use crate::ops::bce::check_label_noise;
use crate::optim::adam::AdamConfig;
use crate::optim::rmsprop::RmsPropConfig;

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
    /// Critic iterations per generator step, each on its own real batch
    /// (`--gan-loss wasserstein` only; the paper's 5).
    #[arg(long, value_name = "N")]
    pub n_critic: Option<u32>,
    /// Every critic parameter is clamped to [-C, C] after each critic
    /// update (`--gan-loss wasserstein` only; the paper's 0.01).
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub weight_clip: Option<f32>,
    /// RMSProp's learning rate, for the critic and the generator
    /// (`--gan-loss wasserstein` only; the paper's 5e-5).
    #[arg(long, value_name = "LR", allow_negative_numbers = true)]
    pub rmsprop_lr: Option<f32>,
}

impl Default for GanOptions {
    fn default() -> GanOptions {
        GanOptions {
            loss: GanLoss::default(),
            label_noise: 0.0,
            fresh_noise_for_g: false,
            n_critic: None,
            weight_clip: None,
            rmsprop_lr: None,
        }
    }
}

/// The Wasserstein GAN's training (Arjovsky et al. 2017, Algorithm 1):
/// `n_critic` critic updates per generator update, each on its own real
/// batch and latents, each followed by clipping every critic parameter to
/// `[-clip, clip]`; both networks trained by RMSProp (PyTorch's, alpha
/// 0.99, eps 1e-8) at `lr`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wasserstein {
    pub n_critic: u32,
    pub clip: f32,
    pub lr: f32,
}

impl Wasserstein {
    /// The paper's settings: n_critic 5, c 0.01, lr 5e-5.
    pub const PAPER: Wasserstein = Wasserstein {
        n_critic: 5,
        clip: 0.01,
        lr: 5e-5,
    };
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
        let given = [
            ("--n-critic", self.n_critic.map(|n| n.to_string())),
            ("--weight-clip", self.weight_clip.map(|c| c.to_string())),
            ("--rmsprop-lr", self.rmsprop_lr.map(|l| l.to_string())),
        ];
        if self.loss != GanLoss::Wasserstein {
            if let Some((flag, Some(v))) = given.iter().find(|(_, v)| v.is_some()) {
                return Err(Error::invalid(
                    op,
                    format!(
                        "{flag} {v} is an option of the Wasserstein GAN (--gan-loss \
                         wasserstein); --gan-loss {} has no critic iterations, clipping or \
                         RMSProp",
                        self.loss.name()
                    ),
                ));
            }
            return Ok(());
        }
        let w = self.wasserstein().unwrap_or(Wasserstein::PAPER);
        let bad = |flag: &str, v: String, want: &str| {
            Err(Error::invalid(
                op,
                format!("{flag} {v}: must be {want} (the paper's {})", paper(flag)),
            ))
        };
        if w.n_critic == 0 || w.n_critic > MAX_N_CRITIC {
            return bad("--n-critic", w.n_critic.to_string(), "from 1 to 100");
        }
        if !(w.clip.is_finite() && w.clip > 0.0) {
            return bad("--weight-clip", w.clip.to_string(), "a number > 0");
        }
        if !(w.lr.is_finite() && w.lr > 0.0) {
            return bad("--rmsprop-lr", w.lr.to_string(), "a number > 0");
        }
        Ok(())
    }

    /// The Wasserstein GAN's settings, the paper's where not given
    /// (`None` for the other losses).
    pub fn wasserstein(&self) -> Option<Wasserstein> {
        let p = Wasserstein::PAPER;
        (self.loss == GanLoss::Wasserstein).then(|| Wasserstein {
            n_critic: self.n_critic.unwrap_or(p.n_critic),
            clip: self.weight_clip.unwrap_or(p.clip),
            lr: self.rmsprop_lr.unwrap_or(p.lr),
        })
    }

    /// These options with the Wasserstein GAN's settings filled in where
    /// they were not given: what a run records, so that a resume that
    /// leaves them out and one that gives the paper's values agree.
    pub fn resolved(&self) -> GanOptions {
        let w = self.wasserstein();
        GanOptions {
            n_critic: w.map(|w| w.n_critic),
            weight_clip: w.map(|w| w.clip),
            rmsprop_lr: w.map(|w| w.lr),
            ..self.clone()
        }
    }
}

/// The most critic iterations a step may take (the paper's is 5; each is a
/// whole discriminator update recorded into the step).
pub const MAX_N_CRITIC: u32 = 100;

/// The paper's value of a Wasserstein flag, for error messages.
fn paper(flag: &str) -> String {
    let p = Wasserstein::PAPER;
    match flag {
        "--n-critic" => p.n_critic.to_string(),
        "--weight-clip" => p.clip.to_string(),
        _ => p.lr.to_string(),
    }
}

impl GanConfig {
    /// The training settings a run records in its checkpoint's metadata
    /// (latent size and head are the model's own: [`Gan::checkpoint`]).
    /// The Wasserstein GAN's settings are recorded as they train (the
    /// paper's where not given), and Adam's rates (`lr_g`, `lr_d`) only
    /// where Adam trains.
    pub fn settings(&self) -> Vec<(String, String)> {
        let adam = match self.options.wasserstein() {
            None => vec![
                ("lr_g".into(), self.adam_g.lr.to_string()),
                ("lr_d".into(), self.adam_d.lr.to_string()),
            ],
            Some(_) => Vec::new(),
        };
        vec![
            ("batch".into(), self.batch.to_string()),
            ("seed".into(), self.seed.to_string()),
        ]
        .into_iter()
        .chain(adam)
        .chain(to_settings(&self.options.resolved()))
        .collect()
    }

    /// The generator's and the discriminator's optimizers: Adam at the
    /// preset's rates, or for the Wasserstein GAN RMSProp at its rate.
    pub fn optimizers(&self) -> (Optimizer, Optimizer) {
        match self.options.wasserstein() {
            Some(w) => {
                let rms = Optimizer::RmsProp(RmsPropConfig::pytorch(w.lr));
                (rms, rms)
            }
            None => (Optimizer::Adam(self.adam_g), Optimizer::Adam(self.adam_d)),
        }
    }

    /// Discriminator updates per step: the Wasserstein GAN's n_critic, or 1.
    pub fn critic_iterations(&self) -> usize {
        self.options
            .wasserstein()
            .map_or(1, |w| w.n_critic as usize)
    }

    /// Real images a step reads: the batch times [`Self::critic_iterations`]
    /// (an epoch is the training images over this, and an image budget
    /// counts these).
    pub fn images_per_step(&self) -> usize {
        self.batch * self.critic_iterations()
    }
}
