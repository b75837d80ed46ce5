//! The GAN's losses (`--gan-loss`): what the discriminator and the
//! generator minimise, from the discriminator's logits `x`. Means over the
//! batch; `D = x` is the discriminator's output before any sigmoid.
//!
//! | loss | discriminator, on `[real; fake]` | generator, on fakes |
//! |---|---|---|
//! | `minimax` (Goodfellow et al. 2014) | `BCE(D(x), 1) + BCE(D(G(z)), 0)` | `-BCE(D(G(z)), 0) = E[log(1 - sigmoid(D(G(z))))]` |
//! | `non-saturating` (the same paper's; the default) | the same | `BCE(D(G(z)), 1)` |
//! | `least-squares` (Mao et al. 2017) | `½(D(x) - 1)² + ½D(G(z))²` | `½(D(G(z)) - 1)²` |
//! | `hinge` (Lim & Ye 2017) | `max(0, 1 - D(x)) + max(0, 1 + D(G(z)))` | `-D(G(z))` |
//! | `wasserstein` (Arjovsky et al. 2017) | `-D(x) + D(G(z))` | `-D(G(z))` |
//!
//! The Wasserstein GAN's critic is the same network without a sigmoid (no
//! loss here applies one but the cross-entropy), and it trains differently
//! as well: n_critic critic updates per generator update, weight clipping
//! and RMSProp ([`crate::models::gan::Wasserstein`]; the step records them).
//!
//! Each loss is one [`Spec`] ([`GanLoss::spec`]): the criterion each
//! network minimises ([`crate::ops::bce`]'s cross-entropy, or a
//! [`crate::ops::target_loss::TargetLoss`]: [`crate::ops::least_squares`],
//! [`crate::ops::hinge`], [`crate::ops::linear_loss`]) and the generator's
//! target and sign. The step records the spec's ops and
//! [`crate::models::gan_cpu`] runs their f64 references, so a new loss is
//! its op (one kernel, one op file), its variant and name, and one arm of
//! [`GanLoss::spec`].

use crate::error::{Error, Result};
use crate::gpu::{Gpu, Step, Tensor};
use crate::ops::bce::{bce_cpu, bce_rows, bce_rows_label_noise, BceReduction, LabelNoise};
use crate::ops::hinge::HINGE;
use crate::ops::least_squares::LEAST_SQUARES;
use crate::ops::linear_loss::LINEAR_LOSS;
use crate::ops::reduce::LossCpu;
use crate::ops::target_loss::TargetLoss;
use crate::ops::Real;

/// Which GAN loss a model trains with.
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
#[serde(rename_all = "kebab-case")]
pub enum GanLoss {
    /// Goodfellow et al.'s original: G minimises log(1 - D(G(z))).
    Minimax,
    /// G maximises log D(G(z)) instead (the article's, and the default).
    #[default]
    NonSaturating,
    /// Least squares on D's raw output (Mao et al. 2017).
    LeastSquares,
    /// D's hinge loss, G's -D(G(z)) (Lim & Ye 2017).
    Hinge,
    /// The critic's estimate of the Wasserstein-1 distance (Arjovsky et
    /// al. 2017): n_critic clipped critic steps per G step, RMSProp.
    Wasserstein,
}

/// What one network minimises on D's logits: the cross-entropy with
/// logits (Keras' mean), or a target loss.
#[derive(Clone, Copy, Debug)]
pub enum Criterion {
    CrossEntropy,
    Target(TargetLoss),
}

/// A GAN loss: the discriminator's criterion on `[real; fake]` against 1
/// and 0 (the mean over the 2B rows times 2: the mean over the real rows
/// plus the mean over the fake), and the generator's on fakes against
/// `g_target`, times `g_sign`.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub d: Criterion,
    pub g: Criterion,
    pub g_target: f32,
    pub g_sign: f32,
}

/// The discriminator's loss is the mean over the `2B` rows times 2.
const D_SCALE: f32 = 2.0;

impl GanLoss {
    /// Every loss, in the table's order.
    pub const ALL: [GanLoss; 5] = [
        GanLoss::Minimax,
        GanLoss::NonSaturating,
        GanLoss::LeastSquares,
        GanLoss::Hinge,
        GanLoss::Wasserstein,
    ];

    /// Name on the command line and in checkpoint metadata.
    pub fn name(self) -> &'static str {
        match self {
            GanLoss::Minimax => "minimax",
            GanLoss::NonSaturating => "non-saturating",
            GanLoss::LeastSquares => "least-squares",
            GanLoss::Hinge => "hinge",
            GanLoss::Wasserstein => "wasserstein",
        }
    }

    /// What each network minimises (the table above).
    pub fn spec(self) -> Spec {
        use Criterion::*;
        let (d, g, g_target, g_sign) = match self {
            GanLoss::Minimax => (CrossEntropy, CrossEntropy, 0.0, -1.0),
            GanLoss::NonSaturating => (CrossEntropy, CrossEntropy, 1.0, 1.0),
            GanLoss::LeastSquares => (Target(LEAST_SQUARES), Target(LEAST_SQUARES), 1.0, 1.0),
            GanLoss::Hinge => (Target(HINGE), Target(LINEAR_LOSS), 1.0, 1.0),
            GanLoss::Wasserstein => (Target(LINEAR_LOSS), Target(LINEAR_LOSS), 1.0, 1.0),
        };
        Spec {
            d,
            g,
            g_target,
            g_sign,
        }
    }

    /// The loss of that [`Self::name`].
    pub fn from_name(name: &str) -> Option<GanLoss> {
        GanLoss::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether the discriminator's loss is the cross-entropy, whose
    /// targets `--label-noise` moves.
    pub fn is_cross_entropy(self) -> bool {
        matches!(self.spec().d, Criterion::CrossEntropy)
    }

    /// The generator's target.
    pub fn g_target(self) -> f32 {
        self.spec().g_target
    }

    /// Record the discriminator's loss on `logits` `[2B, 1]` against
    /// `targets` (1 for real rows, 0 for fake), with `noise` on the targets
    /// (cross-entropy only): `rows` `[2B]` and `grad`. Returns the factor
    /// from the sum of `rows` to the loss.
    #[allow(clippy::too_many_arguments)]
    pub fn record_d(
        self,
        gpu: &Gpu,
        s: &mut Step,
        logits: &Tensor,
        targets: &Tensor,
        noise: Option<LabelNoise>,
        rows: &Tensor,
        grad: &Tensor,
    ) -> Result<f32> {
        let mean = BceReduction::Mean;
        match (self.spec().d, noise) {
            (Criterion::CrossEntropy, Some(noise)) => {
                bce_rows_label_noise(gpu, s, logits, targets, noise, rows, grad, mean, D_SCALE)
            }
            (_, Some(_)) => Err(self.no_label_noise("gan")),
            (d, None) => d.record(gpu, s, logits, targets, rows, grad, D_SCALE),
        }
    }

    /// Record the generator's loss on the discriminator's `logits` `[B, 1]`
    /// of fakes, `targets` all [`Self::g_target`]: `rows` `[B]` and `grad`.
    /// Returns the factor from the sum of `rows` to the loss.
    pub fn record_g(
        self,
        gpu: &Gpu,
        s: &mut Step,
        logits: &Tensor,
        targets: &Tensor,
        rows: &Tensor,
        grad: &Tensor,
    ) -> Result<f32> {
        let spec = self.spec();
        spec.g
            .record(gpu, s, logits, targets, rows, grad, spec.g_sign)
    }

    /// `(d_loss, g_loss)` of the discriminator's logits on a real batch
    /// and on a fake one (clean targets), through the same ops a training
    /// step records: what its ring would hold for those logits. For the
    /// PyTorch twin check (`tests/it/pytorch_check.rs`).
    pub fn evaluate(self, gpu: &Gpu, real: &[f32], fake: &[f32]) -> Result<(f64, f64)> {
        let (nr, nf) = (real.len(), fake.len());
        let both = [real, fake].concat();
        let t: Vec<f32> = (0..nr + nf).map(|i| (i < nr) as u8 as f32).collect();
        let g_t = vec![self.g_target(); nf];
        let x = Tensor::from_f32(gpu, &[nr + nf, 1], &both, "real|fake logits")?;
        let targets = Tensor::from_f32(gpu, &[nr + nf, 1], &t, "real|fake targets")?;
        let d_rows = Tensor::zeros(gpu, &[nr + nf], "d loss rows")?;
        let d_grad = Tensor::zeros(gpu, &[nr + nf, 1], "d loss grad")?;
        let fx = Tensor::from_f32(gpu, &[nf, 1], fake, "fake logits")?;
        let g_targets = Tensor::from_f32(gpu, &[nf, 1], &g_t, "generator targets")?;
        let g_rows = Tensor::zeros(gpu, &[nf], "g loss rows")?;
        let g_grad = Tensor::zeros(gpu, &[nf, 1], "g loss grad")?;
        let mut s = Step::new("gan losses");
        let d = self.record_d(gpu, &mut s, &x, &targets, None, &d_rows, &d_grad)?;
        let g = self.record_g(gpu, &mut s, &fx, &g_targets, &g_rows, &g_grad)?;
        gpu.run(&[&s])?;
        let total = |rows: Vec<f32>, f: f32| f as f64 * rows.iter().map(|&v| v as f64).sum::<f64>();
        Ok((
            total(d_rows.read_f32(gpu)?, d),
            total(g_rows.read_f32(gpu)?, g),
        ))
    }

    /// f64 reference of [`Self::record_d`] (the targets already noisy).
    pub fn d_cpu<T: Real>(self, logits: &[T], targets: &[T]) -> LossCpu<T> {
        self.spec().d.cpu(logits, targets, D_SCALE as f64)
    }

    /// f64 reference of [`Self::record_g`].
    pub fn g_cpu<T: Real>(self, logits: &[T]) -> LossCpu<T> {
        let spec = self.spec();
        let t = vec![T::from_f64(spec.g_target as f64); logits.len()];
        spec.g.cpu(logits, &t, spec.g_sign as f64)
    }

    /// The refusal of label noise with a loss that has no cross-entropy.
    pub fn no_label_noise(self, op: &'static str) -> Error {
        Error::invalid(
            op,
            format!(
                "--label-noise moves the cross-entropy's targets (--gan-loss minimax or \
                 non-saturating); --gan-loss {} has none",
                self.name()
            ),
        )
    }
}

impl Criterion {
    /// Record the criterion's row pass on `logits` against `targets`,
    /// times `scale` (a batch mean): `rows` and `grad`. Returns the factor
    /// from the sum of `rows` to the loss.
    #[allow(clippy::too_many_arguments)]
    fn record(
        self,
        gpu: &Gpu,
        s: &mut Step,
        logits: &Tensor,
        targets: &Tensor,
        rows: &Tensor,
        grad: &Tensor,
        scale: f32,
    ) -> Result<f32> {
        match self {
            Criterion::CrossEntropy => {
                let mean = BceReduction::Mean;
                bce_rows(gpu, s, logits, targets, rows, Some(grad), mean, scale)
            }
            Criterion::Target(loss) => loss.rows(gpu, s, logits, targets, rows, grad, scale),
        }
    }

    /// f64 reference of [`Criterion::record`].
    fn cpu<T: Real>(self, logits: &[T], targets: &[T], scale: f64) -> LossCpu<T> {
        match self {
            Criterion::CrossEntropy => bce_cpu(logits, targets, 1, BceReduction::Mean, scale),
            Criterion::Target(loss) => loss.cpu(logits, targets, 1, scale),
        }
    }
}
