//! The article's claims as rules over the measured figures.
//!
//! Each claim is decided by a few figures. A figure *favours* the claim
//! when the difference in the claimed direction exceeds the noise between
//! seeds (the sum of the two standard deviations; zero for one seed), is
//! *against* it when the difference exceeds the noise the other way, and
//! is *undecided* otherwise. A claim is supported when every figure favours
//! it, not supported when none does, and mixed otherwise. Thresholds (claim
//! 4) compare the mean alone.
//!
//! A run too short to mean anything (the smoke or tiny preset, or fewer
//! than [`MIN_SEEDS`] seeds) gets no verdict on the claims about trained
//! models: the figures are listed with "insufficient training: no
//! verdict". With a training budget the preset does not say how long the
//! models trained: 3 seeds give verdicts that hold at that budget (and say
//! so), which is the fair question (Lucic et al. 2018 compare GANs at an
//! equal computational budget). The cost claim (claim 2) needs no training: its figures come
//! from the cost probe ([`crate::compare::cost`]), whose speed is timed
//! [`MIN_REPEATS`] or more times per seed, so it is decided on any run,
//! its noise the spread of those timings ([`cost_sufficiency`]).

use serde::Serialize;

use crate::compare::figures::{Column, Figure, Figures, Stat};

/// Seeds a verdict needs.
pub const MIN_SEEDS: usize = 3;
/// Timed repeats of each model's step speed the cost claim needs (its
/// noise is their spread).
pub const MIN_REPEATS: usize = 3;
/// Claim 4: the GAN's predicted digits may be at most this far from
/// uniform (KL, nats; the test set itself is about 0.002 away).
pub const MAX_KL_TO_UNIFORM: f64 = 0.1;
/// Claim 4: the GAN's recall must reach this fraction of the recall of
/// real training images.
pub const MIN_RECALL_FRACTION: f64 = 0.5;

/// How one figure bears on a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    Favours,
    Against,
    Undecided,
}

/// A claim's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Supported,
    NotSupported,
    Mixed,
    /// No verdict, and why (too little training, or a figure is missing).
    NoVerdict(String),
}

impl Outcome {
    pub fn text(&self) -> String {
        match self {
            Outcome::Supported => "supported".into(),
            Outcome::NotSupported => "not supported".into(),
            Outcome::Mixed => "mixed".into(),
            Outcome::NoVerdict(why) => why.clone(),
        }
    }
}

/// One figure's evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub text: String,
    pub vote: Vote,
}

/// A claim of the article, its outcome and the figures that decide it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub claim: &'static str,
    pub outcome: Outcome,
    pub evidence: Vec<Evidence>,
    /// What the verdict holds for: the training and the adapter ("at an
    /// equal budget of 300 s per model on llvmpipe"); empty until the
    /// comparison says ([`Verdict::with_basis`]).
    pub at: String,
}

impl Verdict {
    /// The verdict, holding `at` (see [`Verdict::at`]).
    pub fn with_basis(mut self, at: String) -> Verdict {
        self.at = at;
        self
    }

    /// `claim: outcome (at ...)`: the one line a verdict is told in.
    pub fn line(&self) -> String {
        if self.at.is_empty() {
            format!("{}: {}", self.claim, self.outcome.text())
        } else {
            format!("{}: {} ({})", self.claim, self.outcome.text(), self.at)
        }
    }
}

/// The claims, in the article's order.
pub const CLAIMS: [&str; 4] = [
    "GAN samples are sharper and of higher quality than the VAE's",
    "the VAE trains faster and uses less memory than the GAN",
    "the VAE's latent space is more structured than the GAN's",
    "the GAN covers the data's modes (all ten digits)",
];

/// Is the training long enough for verdicts? `Err` says why not. With a
/// budget (`budgeted`) the preset does not decide how long the models
/// trained: any budget gets verdicts, which hold at that budget.
pub fn sufficiency(preset: &str, seeds: usize, budgeted: bool) -> Result<(), String> {
    if !budgeted && (preset == "smoke" || preset == "tiny") {
        Err(format!(
            "insufficient training: no verdict ({preset} preset)"
        ))
    } else if seeds < MIN_SEEDS {
        Err(format!(
            "insufficient training: no verdict ({seeds} seed(s), need {MIN_SEEDS})"
        ))
    } else {
        Ok(())
    }
}

/// Can the cost claim be decided? Its figures need no training, only the
/// step speed of both models timed at least [`MIN_REPEATS`] times; `Err`
/// says why not.
pub fn cost_sufficiency(fs: &Figures) -> Result<(), String> {
    let timed = |c: Column| fs.stat(c, Figure::StepImagesPerSec).map_or(0, |s| s.n);
    let n = timed(Column::Vae).min(timed(Column::Gan));
    if n >= MIN_REPEATS {
        Ok(())
    } else {
        Err(format!(
            "no verdict: the training steps' speed was timed {n} time(s), need {MIN_REPEATS}"
        ))
    }
}

/// `a` against `b` where the claim says `a` is higher (`higher`) or lower.
pub fn vote(a: Stat, b: Stat, higher: bool) -> Vote {
    let d = if higher {
        a.mean - b.mean
    } else {
        b.mean - a.mean
    };
    let noise = a.std + b.std;
    if d > noise {
        Vote::Favours
    } else if d < -noise {
        Vote::Against
    } else {
        Vote::Undecided
    }
}

/// The outcome of a claim's votes.
pub fn outcome(votes: &[Vote]) -> Outcome {
    let favours = votes.iter().filter(|&&v| v == Vote::Favours).count();
    if favours == votes.len() && !votes.is_empty() {
        Outcome::Supported
    } else if favours == 0 {
        Outcome::NotSupported
    } else {
        Outcome::Mixed
    }
}

fn name(f: Figure) -> &'static str {
    f.label().0
}

/// Figure `f` of `a` vs `b`, claimed higher (or lower) for `a`.
fn pair(fs: &Figures, f: Figure, a: Column, b: Column, higher: bool) -> Option<Evidence> {
    let (sa, sb) = (fs.stat(a, f)?, fs.stat(b, f)?);
    let d = f.decimals();
    let v = vote(sa, sb, higher);
    Some(Evidence {
        text: format!(
            "{}: {} {} vs {} {} ({} is better)",
            name(f),
            a.title(),
            sa.show(d),
            b.title(),
            sb.show(d),
            if higher { "higher" } else { "lower" }
        ),
        vote: v,
    })
}

/// Figure `f` of `c` against a threshold: `at_most` or at least `t`.
fn limit(fs: &Figures, f: Figure, c: Column, t: f64, at_most: bool, why: &str) -> Option<Evidence> {
    let s = fs.stat(c, f)?;
    let ok = if at_most { s.mean <= t } else { s.mean >= t };
    Some(Evidence {
        text: format!(
            "{}: {} {} ({} {:.3}{why})",
            name(f),
            c.title(),
            s.show(f.decimals()),
            if at_most {
                "needs at most"
            } else {
                "needs at least"
            },
            t
        ),
        vote: if ok { Vote::Favours } else { Vote::Against },
    })
}

fn decide(
    claim: &'static str,
    evidence: Option<Vec<Evidence>>,
    missing: &str,
    enough: &Result<(), String>,
) -> Verdict {
    let Some(evidence) = evidence else {
        return Verdict {
            claim,
            outcome: Outcome::NoVerdict(missing.into()),
            evidence: Vec::new(),
            at: String::new(),
        };
    };
    let outcome = match enough {
        Ok(()) => outcome(&evidence.iter().map(|e| e.vote).collect::<Vec<_>>()),
        Err(why) => Outcome::NoVerdict(why.clone()),
    };
    Verdict {
        claim,
        outcome,
        evidence,
        at: String::new(),
    }
}

/// The verdict on each of [`CLAIMS`]; `enough` is [`sufficiency`]'s answer
/// (claim 2 takes [`cost_sufficiency`]'s instead).
pub fn verdicts(fs: &Figures, enough: &Result<(), String>) -> Vec<Verdict> {
    use Column::{Gan, TestVsTrain, Vae};
    let quality = (|| {
        Some(vec![
            pair(fs, Figure::Sharpness, Gan, Vae, true)?,
            pair(fs, Figure::Fid, Gan, Vae, false)?,
            pair(fs, Figure::Precision, Gan, Vae, true)?,
        ])
    })();
    let cost = (|| {
        Some(vec![
            pair(fs, Figure::StepImagesPerSec, Vae, Gan, true)?,
            pair(fs, Figure::StepPeakMib, Vae, Gan, false)?,
        ])
    })();
    let latent = (|| {
        Some(vec![
            pair(fs, Figure::LatentPurity, Vae, Gan, true)?,
            pair(fs, Figure::LatentDigits, Vae, Gan, true)?,
        ])
    })();
    let modes = (|| {
        let real_recall = fs.stat(TestVsTrain, Figure::Recall)?.mean;
        Some(vec![
            limit(fs, Figure::KlToUniform, Gan, MAX_KL_TO_UNIFORM, true, "")?,
            limit(
                fs,
                Figure::Recall,
                Gan,
                MIN_RECALL_FRACTION * real_recall,
                false,
                &format!(", {MIN_RECALL_FRACTION} x the train images' {real_recall:.3}"),
            )?,
        ])
    })();
    vec![
        decide(
            CLAIMS[0],
            quality,
            "not tested: sample figures missing",
            enough,
        ),
        decide(
            CLAIMS[1],
            cost,
            "not tested: the training steps' speed or memory was not measured",
            &cost_sufficiency(fs),
        ),
        decide(
            CLAIMS[2],
            latent,
            "not tested: both latents must be 2-D",
            enough,
        ),
        decide(
            CLAIMS[3],
            modes,
            "not tested: GAN coverage figures missing",
            enough,
        ),
    ]
}
