//! The verdict rules (src/compare/verdict.rs): each claim's outcome flips
//! between supported, not supported and mixed as its figures change; seed
//! noise makes a difference undecided; short runs get no verdict but on
//! the cost claim, whose noise is its timings' spread. Pure CPU.

use vae_vs_gan::compare::verdict::{
    cost_sufficiency, outcome, sufficiency, verdicts, vote, Outcome, Vote, CLAIMS,
    MAX_KL_TO_UNIFORM,
};
use vae_vs_gan::compare::{Column, Figure, Figures, Stat};

use Column::{Gan, TestVsTrain, Vae};

/// Figures where every claim of the article holds (3 seeds, little noise).
fn article_true() -> Figures {
    let mut f = Figures::default();
    let mut put = |c: Column, fig: Figure, vals: [f64; 3]| {
        for v in vals {
            f.push(c, fig, v);
        }
    };
    put(Gan, Figure::Sharpness, [0.20, 0.21, 0.19]);
    put(Vae, Figure::Sharpness, [0.02, 0.03, 0.02]);
    put(Gan, Figure::Fid, [10.0, 11.0, 12.0]);
    put(Vae, Figure::Fid, [40.0, 41.0, 39.0]);
    put(Gan, Figure::Precision, [0.8, 0.82, 0.78]);
    put(Vae, Figure::Precision, [0.3, 0.31, 0.29]);
    put(Vae, Figure::StepImagesPerSec, [5000.0, 5100.0, 4900.0]);
    put(Gan, Figure::StepImagesPerSec, [900.0, 910.0, 890.0]);
    put(Vae, Figure::StepPeakMib, [100.0, 100.0, 100.0]);
    put(Gan, Figure::StepPeakMib, [300.0, 300.0, 300.0]);
    // The training runs' own figures (each at its own batch, the VAE's
    // with its test set): reported, not voting.
    put(Vae, Figure::TrainImagesPerSec, [5000.0, 5100.0, 4900.0]);
    put(Gan, Figure::TrainImagesPerSec, [900.0, 910.0, 890.0]);
    put(Vae, Figure::PeakGpuMib, [100.0, 100.0, 100.0]);
    put(Gan, Figure::PeakGpuMib, [300.0, 300.0, 300.0]);
    put(Vae, Figure::Params, [70e3, 70e3, 70e3]);
    put(Gan, Figure::Params, [1.28e6, 1.28e6, 1.28e6]);
    put(Vae, Figure::LatentPurity, [0.8, 0.82, 0.81]);
    put(Gan, Figure::LatentPurity, [0.5, 0.52, 0.48]);
    put(Vae, Figure::LatentDigits, [10.0, 10.0, 10.0]);
    put(Gan, Figure::LatentDigits, [6.0, 7.0, 6.0]);
    put(Gan, Figure::KlToUniform, [0.02, 0.03, 0.02]);
    put(Gan, Figure::Recall, [0.7, 0.72, 0.68]);
    put(TestVsTrain, Figure::Recall, [0.9, 0.9, 0.9]);
    f
}

/// `f` with every value of (column, figure) replaced by `vals`.
fn with(f: &Figures, c: Column, fig: Figure, vals: &[f64]) -> Figures {
    let mut out = Figures::default();
    for col in Column::ALL {
        for g in Figure::ALL {
            let src: Vec<f64> = if (col, g) == (c, fig) {
                vals.to_vec()
            } else {
                f.values(col, g).map(|v| v.to_vec()).unwrap_or_default()
            };
            for v in src {
                out.push(col, g, v);
            }
        }
    }
    out
}

fn outcomes(f: &Figures) -> Vec<Outcome> {
    verdicts(f, &Ok(()))
        .into_iter()
        .map(|v| v.outcome)
        .collect()
}

#[test]
fn every_claim_supported_when_the_figures_say_so() {
    let v = verdicts(&article_true(), &Ok(()));
    assert_eq!(v.len(), CLAIMS.len());
    for x in &v {
        assert_eq!(
            x.outcome,
            Outcome::Supported,
            "{}: {:?}",
            x.claim,
            x.evidence
        );
        assert!(x.evidence.iter().all(|e| e.vote == Vote::Favours));
    }
}

#[test]
fn claim_1_sharpness_and_quality_flips() {
    let f = article_true();
    // One figure against: mixed.
    let f1 = with(&f, Vae, Figure::Sharpness, &[0.5, 0.5, 0.5]);
    assert_eq!(outcomes(&f1)[0], Outcome::Mixed);
    // All three against: not supported.
    let f2 = with(&f1, Vae, Figure::Fid, &[5.0, 5.0, 5.0]);
    let f3 = with(&f2, Vae, Figure::Precision, &[0.95, 0.95, 0.95]);
    assert_eq!(outcomes(&f3)[0], Outcome::NotSupported);
    // The other claims are untouched.
    assert_eq!(outcomes(&f3)[1], Outcome::Supported);
}

#[test]
fn claim_2_speed_and_memory_flips() {
    let f = article_true();
    // Only the step's speed flips: mixed.
    let speed = with(&f, Gan, Figure::StepImagesPerSec, &[9000.0, 9000.0, 9000.0]);
    assert_eq!(outcomes(&speed)[1], Outcome::Mixed);
    // Only the step's memory flips: mixed.
    let memory = with(&f, Gan, Figure::StepPeakMib, &[50.0, 50.0, 50.0]);
    assert_eq!(outcomes(&memory)[1], Outcome::Mixed);
    // Both: not supported.
    let both = with(&speed, Gan, Figure::StepPeakMib, &[50.0, 50.0, 50.0]);
    assert_eq!(outcomes(&both)[1], Outcome::NotSupported);
    // The other claims are untouched.
    assert_eq!(outcomes(&both)[0], Outcome::Supported);
}

#[test]
fn claim_2_ignores_parameters_and_the_runs_own_figures() {
    let f = article_true();
    // The parameter count and the training runs' speed and peak (each at
    // its own batch, the VAE's with its test set) are reported only:
    // flipping all of them changes nothing.
    let mut g = with(&f, Gan, Figure::Params, &[1e3, 1e3, 1e3]);
    g = with(
        &g,
        Gan,
        Figure::TrainImagesPerSec,
        &[9000.0, 9000.0, 9000.0],
    );
    g = with(&g, Gan, Figure::PeakGpuMib, &[50.0, 50.0, 50.0]);
    assert_eq!(outcomes(&g)[1], Outcome::Supported);
    let v = &verdicts(&g, &Ok(()))[1];
    assert_eq!(v.evidence.len(), 2, "{:?}", v.evidence);
    // Without the step figures (a comparison that could not measure
    // them) there is no verdict, whatever the runs' figures say.
    let mut none = with(&f, Vae, Figure::StepImagesPerSec, &[]);
    none = with(&none, Gan, Figure::StepImagesPerSec, &[]);
    assert!(matches!(outcomes(&none)[1], Outcome::NoVerdict(_)));
}

#[test]
fn claim_3_latent_structure_flips_and_needs_2d_latents() {
    let f = article_true();
    let f1 = with(&f, Gan, Figure::LatentPurity, &[0.9, 0.9, 0.9]);
    assert_eq!(outcomes(&f1)[2], Outcome::Mixed);
    let f2 = with(&f1, Gan, Figure::LatentDigits, &[10.0, 10.0, 10.0]);
    // Equal digit counts are undecided, purity against: nothing favours.
    assert_eq!(outcomes(&f2)[2], Outcome::NotSupported);
    // No GAN grid (latent not 2-D): not tested.
    let f3 = with(&f, Gan, Figure::LatentPurity, &[]);
    assert!(matches!(&outcomes(&f3)[2], Outcome::NoVerdict(w) if w.contains("2-D")));
}

#[test]
fn claim_4_mode_coverage_thresholds_flip() {
    let f = article_true();
    let collapsed = with(&f, Gan, Figure::KlToUniform, &[MAX_KL_TO_UNIFORM + 0.5; 3]);
    assert_eq!(outcomes(&collapsed)[3], Outcome::Mixed);
    // Recall below half of the train images' 0.9.
    let both = with(&collapsed, Gan, Figure::Recall, &[0.40, 0.41, 0.42]);
    assert_eq!(outcomes(&both)[3], Outcome::NotSupported);
    let just = with(&f, Gan, Figure::Recall, &[0.47, 0.46, 0.45]);
    assert_eq!(outcomes(&just)[3], Outcome::Supported);
}

/// A difference smaller than the seeds' spread decides nothing.
#[test]
fn seed_noise_makes_a_difference_undecided() {
    let a = Stat::of(&[1.0, 2.0, 3.0]);
    let b = Stat::of(&[1.5, 2.5, 3.5]);
    assert_eq!(vote(a, b, true), Vote::Undecided);
    assert_eq!(vote(a, b, false), Vote::Undecided);
    let c = Stat::of(&[10.0, 10.1, 9.9]);
    assert_eq!(vote(c, a, true), Vote::Favours);
    assert_eq!(vote(c, a, false), Vote::Against);
    // Single seeds have no spread: any difference counts.
    assert_eq!(
        vote(Stat::of(&[1.01]), Stat::of(&[1.0]), true),
        Vote::Favours
    );
    // Noisy FIDs overlapping: claim 1 loses a favouring figure -> mixed.
    let f = with(&article_true(), Gan, Figure::Fid, &[10.0, 60.0, 35.0]);
    assert_eq!(outcomes(&f)[0], Outcome::Mixed);
}

#[test]
fn outcome_rules() {
    use Vote::*;
    assert_eq!(outcome(&[Favours, Favours]), Outcome::Supported);
    assert_eq!(outcome(&[Favours, Undecided]), Outcome::Mixed);
    assert_eq!(outcome(&[Favours, Against]), Outcome::Mixed);
    assert_eq!(outcome(&[Undecided, Against]), Outcome::NotSupported);
    assert_eq!(outcome(&[Undecided, Undecided]), Outcome::NotSupported);
}

/// Short runs get no verdict on the claims about trained models; the cost
/// claim, decided by the cost probe alone, gets one on any run.
#[test]
fn short_runs_get_no_verdict_but_on_the_cost_claim() {
    assert!(sufficiency("article", 3, false).is_ok());
    for (preset, seeds) in [("smoke", 5), ("tiny", 3), ("article", 2), ("article", 1)] {
        let why = sufficiency(preset, seeds, false).unwrap_err();
        assert!(
            why.starts_with("insufficient training: no verdict"),
            "{why}"
        );
        for (i, v) in verdicts(&article_true(), &Err(why.clone()))
            .into_iter()
            .enumerate()
        {
            let want = match i {
                1 => Outcome::Supported,
                _ => Outcome::NoVerdict(why.clone()),
            };
            assert_eq!(v.outcome, want, "claim {}", i + 1);
            assert!(!v.evidence.is_empty(), "the figures are still listed");
        }
    }
}

/// The cost claim on one seed: its noise is the spread of the timed
/// repeats, so a speed difference within it decides nothing, and fewer
/// than MIN_REPEATS timings give no verdict.
#[test]
fn cost_claim_on_one_seed_takes_the_repeats_spread() {
    let one_seed = |vae: &[f64], gan: &[f64]| {
        let mut f = Figures::default();
        for &v in vae {
            f.push(Vae, Figure::StepImagesPerSec, v);
        }
        for &v in gan {
            f.push(Gan, Figure::StepImagesPerSec, v);
        }
        f.push(Vae, Figure::StepPeakMib, 40.0);
        f.push(Gan, Figure::StepPeakMib, 110.0);
        let enough = sufficiency("smoke", 1, false);
        verdicts(&f, &enough).swap_remove(1).outcome
    };
    let clear = one_seed(&[500.0, 510.0, 490.0, 505.0, 495.0], &[50.0, 51.0, 49.0]);
    assert_eq!(clear, Outcome::Supported);
    // Speeds overlapping within their timings' spread: the speed figure is
    // undecided, memory still favours: mixed.
    let overlap = one_seed(&[100.0, 130.0, 70.0], &[95.0, 125.0, 65.0]);
    assert_eq!(overlap, Outcome::Mixed);
    // Timed twice: no verdict, saying why.
    let few = one_seed(&[500.0, 510.0], &[50.0, 51.0, 49.0]);
    assert!(
        matches!(&few, Outcome::NoVerdict(w) if w.contains("timed 2 time(s)")),
        "{few:?}"
    );
    assert!(cost_sufficiency(&Figures::default()).is_err());
}
