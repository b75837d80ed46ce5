//! Training to a budget and scoring along the way: where a run stops and
//! scores (the marks, on synthetic positions), where two curves cross (the
//! rules on synthetic series: a crossing, none, a tie within the spread,
//! one seed), whole tiny runs to an image budget (ending mid-epoch, the
//! pauses for the curve changing nothing, a resume of a spent budget
//! training nothing, another budget refused), a seconds budget, the
//! comparison at an equal budget naming it in every verdict line, and the
//! bad budgets refused in one line.

use std::collections::BTreeMap;

use crate::common::*;
use vae_vs_gan::compare::curves::{crossing, mean_curve, Above, Crossing, Series};
use vae_vs_gan::compare::verdict::{Outcome, CLAIMS};
use vae_vs_gan::compare::{compare, CompareOptions, REPORT_JSON, REPORT_MD};
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::train::budget::{
    parse_images, parse_seconds, Budget, CurvePlan, CurvePoint, Marks, Position,
};
use vae_vs_gan::train::gan_run::{train_gan, GanRun};
use vae_vs_gan::train::session::{CHECKPOINT, META_PROGRESS};
use vae_vs_gan::train::vae_run::{train_vae, VaeRun};
use vae_vs_gan::train::{EpochProgress, Preset};

fn at(steps: u64, seconds: f64) -> Position {
    Position { steps, seconds }
}

fn point(steps: u64, seconds: f64) -> CurvePoint {
    CurvePoint {
        steps,
        seconds,
        ..Default::default()
    }
}

/// An image budget of 100 at batch 8 ends at step 13 (the last step
/// whole); a curve of 4 marks stops at steps 4, 7, 10 and 13, and a point
/// is due at the start, at each mark passed and at the end, once each.
#[test]
fn an_image_budget_stops_at_each_mark_and_at_its_end() {
    let m = Marks {
        budget: Some(Budget::Images(100)),
        curve: Some(CurvePlan { points: 4 }),
        batch: 8,
        epoch_steps: 16,
    };
    let mut p = at(0, 0.0);
    let mut stops = Vec::new();
    while !m.spent(p) {
        let (step, secs) = m.next_stop(p);
        assert_eq!(secs, None, "an image budget stops on steps only");
        p = at(step.unwrap(), 0.0);
        stops.push(p.steps);
    }
    assert_eq!(stops, [4, 7, 10, 13]);
    assert!(!m.spent(at(12, 1e9)) && m.spent(at(13, 0.0)));
    assert!(m.point_due(&[], at(0, 0.0)), "the start");
    let taken = [point(0, 0.0)];
    assert!(!m.point_due(&taken, at(0, 0.0)), "once");
    assert!(!m.point_due(&taken, at(3, 0.0)), "no mark passed");
    assert!(m.point_due(&taken, at(4, 0.0)));
    assert!(m.point_due(&[point(10, 0.0)], at(13, 0.0)), "the end");
    // Without a curve no point is ever due; without a budget the epochs end it.
    let plain = Marks {
        curve: None,
        budget: None,
        ..m
    };
    assert!(!plain.point_due(&[], at(0, 0.0)));
    assert_eq!(plain.next_stop(at(3, 0.0)), (Some(16), None));
    assert!(plain.spent(at(16, 0.0)));
}

/// A seconds budget of 10 with 5 marks stops at 2, 4, ... 10 training
/// seconds, whatever the steps.
#[test]
fn a_seconds_budget_stops_on_training_seconds() {
    let m = Marks {
        budget: Some(Budget::Seconds(10.0)),
        curve: Some(CurvePlan { points: 5 }),
        batch: 8,
        epoch_steps: 16,
    };
    assert_eq!(m.next_stop(at(0, 0.0)), (None, Some(2.0)));
    assert_eq!(m.next_stop(at(500, 2.5)), (None, Some(4.0)));
    assert_eq!(m.next_stop(at(900, 9.5)), (None, Some(10.0)));
    assert!(!m.spent(at(1_000_000, 9.99)) && m.spent(at(3, 10.0)));
    assert!(m.point_due(&[point(1, 1.9)], at(2, 2.01)));
    assert!(!m.point_due(&[point(2, 2.01)], at(3, 3.9)));
}

/// Seeds of one model: `f(seed, x)` at x = 0, 1, ..., 10.
fn seeds(n: usize, f: impl Fn(usize, f64) -> f64) -> Vec<Series> {
    (0..n)
        .map(|s| (0..=10).map(|i| (i as f64, f(s, i as f64))).collect())
        .collect()
}

fn cross(vae: &[Series], gan: &[Series]) -> Crossing {
    crossing(&mean_curve(vae), &mean_curve(gan), vae, gan)
}

/// The VAE starts higher and falls by 1 per step, the GAN stays at 5 with
/// a seed spread of ±0.1: they cross at x = 5, decided between 4 and 6
/// (within the spread at 5 itself), and each seed crosses near 5.
#[test]
fn curves_that_cross_say_where_with_its_uncertainty() {
    let vae = seeds(3, |s, x| 10.0 - x + 0.1 * s as f64);
    let gan = seeds(3, |s, _| 5.0 + 0.1 * s as f64 - 0.1);
    let c = cross(&vae, &gan);
    let Crossing::Crosses { crossings, pairs } = c.clone() else {
        panic!("{c:?}");
    };
    assert_eq!((crossings.len(), pairs), (1, 3));
    let k = &crossings[0];
    assert!((k.x - 5.1).abs() < 1e-9, "{}", k.x);
    assert_eq!(k.between, (4.0, 6.0));
    assert_eq!(k.before, Above::Vae);
    assert_eq!(k.crossing_pairs, 3);
    let s = k.per_seed.unwrap();
    assert!((s.mean - 5.1).abs() < 1e-9 && s.std < 1e-9, "{s:?}");
    let text = c.describe(vae_vs_gan::compare::curves::Axis::Images);
    assert!(
        text.starts_with("the VAE higher first; cross at 5 images")
            && text.contains("3 of 3 seeds cross")
            && text.ends_with("the GAN higher after"),
        "{text}"
    );
}

/// Curves that cross twice (the VAE dips below the GAN for a while) name
/// both crossings, in order.
#[test]
fn every_crossing_is_named_in_order() {
    let vae = seeds(3, |s, x| (x - 5.0).abs() + 0.01 * s as f64);
    let gan = seeds(3, |s, _| 2.5 + 0.01 * s as f64);
    let Crossing::Crosses { crossings, .. } = cross(&vae, &gan) else {
        panic!("they cross twice");
    };
    let at: Vec<(f64, Above)> = crossings.iter().map(|c| (c.x, c.before)).collect();
    assert_eq!(at, [(2.5, Above::Vae), (7.5, Above::Gan)]);
}

/// No crossing: the GAN above at every x (by more than the spread); a tie:
/// apart by less than the spread everywhere.
#[test]
fn curves_apart_or_tied_do_not_cross() {
    let low = seeds(3, |s, x| x + 0.1 * s as f64);
    let high = seeds(3, |s, x| x + 2.0 + 0.1 * s as f64);
    assert_eq!(cross(&low, &high), Crossing::Apart { above: Above::Gan });
    let noisy = seeds(3, |s, x| x + [0.0, 1.0, -1.0][s]);
    let close = seeds(3, |s, x| x + 0.5 + [0.0, 1.0, -1.0][s]);
    assert_eq!(cross(&noisy, &close), Crossing::Tied);
    // Curves with fewer than two x in common cannot be compared.
    let short: Vec<Series> = vec![vec![(0.0, 1.0)]];
    assert_eq!(cross(&short, &short), Crossing::TooShort);
}

/// One seed has no spread: every difference decides, and the crossing's
/// only uncertainty is the interval between the points around it.
#[test]
fn one_seed_crosses_without_a_spread() {
    let vae = seeds(1, |_, x| 10.0 - x);
    let gan = seeds(1, |_, _| 4.5);
    let Crossing::Crosses { crossings, .. } = cross(&vae, &gan) else {
        panic!("one seed's curves cross");
    };
    let k = &crossings[0];
    assert!((k.x - 5.5).abs() < 1e-9 && k.between == (5.0, 6.0));
    assert_eq!(k.per_seed.unwrap().n, 1);
}

fn tiny_vae(out: &std::path::Path, budget: Budget, curve: Option<usize>) -> VaeRun {
    let mut r = VaeRun::new(Preset::Tiny, out);
    r.common.plots = false;
    r.common.budget = Some(budget);
    r.common.curve = curve.map(|points| CurvePlan { points });
    r
}

/// A budget of 100 images at the tiny preset's batch 8 is 13 steps: one
/// epoch of 8 and 5 steps of the second, saved mid-epoch. Scoring the
/// curve on the way (4 marks, the start and the end) pauses the training
/// without changing it: the weights equal those of the run without a
/// curve, bit for bit. Each point says where it was taken; resuming the
/// spent budget trains nothing; resuming it with another budget is refused
/// naming both.
#[test]
fn an_image_budget_ends_mid_epoch_and_its_curve_changes_nothing() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let (plain, scored) = (d.path().join("plain"), d.path().join("scored"));
    train_vae(g, &tiny_vae(&plain, Budget::Images(100), None)).unwrap();
    let (_, m) = train_vae(g, &tiny_vae(&scored, Budget::Images(100), Some(4))).unwrap();
    let (a, b) = (
        Checkpoint::load(&plain.join(CHECKPOINT)).unwrap(),
        Checkpoint::load(&scored.join(CHECKPOINT)).unwrap(),
    );
    assert_eq!(a.tensors, b.tensors, "the pauses change no weight");
    assert_eq!(b.metadata["steps"], "13");
    assert_eq!(b.metadata["epoch"], "1");
    assert_eq!(b.metadata["budget"], "100 images");
    let p: EpochProgress = serde_json::from_str(&b.metadata[META_PROGRESS]).unwrap();
    assert_eq!(p.steps, 5, "the second epoch's first 5 steps");
    let steps: Vec<u64> = m.curve.iter().map(|p| p.steps).collect();
    assert_eq!(steps, [0, 4, 7, 10, 13]);
    let flops = m.train_step.unwrap().gemm_flops as f64 * 1e-9;
    for (i, p) in m.curve.iter().enumerate() {
        assert_eq!(p.images, p.steps * 8);
        assert!((p.gemm_gflop - p.steps as f64 * flops).abs() <= 1e-12 * p.gemm_gflop);
        assert!(p.figures["test_neg_elbo"].is_finite() && p.score_seconds > 0.0);
        if i > 0 {
            assert!(p.seconds > m.curve[i - 1].seconds, "training seconds grow");
        }
    }
    assert_eq!(m.curve[0].seconds, 0.0);
    // Resuming the spent budget (as the comparison does) trains nothing.
    let mut again = tiny_vae(&scored, Budget::Images(100), Some(4));
    again.common.resume = true;
    again.common.reuse_finished = true;
    let (_, m2) = train_vae(g, &again).unwrap();
    assert_eq!(m2.curve, m.curve);
    let c = Checkpoint::load(&scored.join(CHECKPOINT)).unwrap();
    assert_eq!((c.tensors, &c.metadata["steps"]), (b.tensors, &"13".into()));
    // Another budget is refused, naming both.
    let mut other = tiny_vae(&scored, Budget::Images(200), Some(4));
    other.common.resume = true;
    assert_err_mentions(train_vae(g, &other), &["100 images", "200 images"]);
}

/// A seconds budget trains until the training loop's clock passes it (the
/// step in flight completes), across epochs, with a point at the end.
#[test]
fn a_seconds_budget_trains_until_its_clock_is_spent() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let mut r = GanRun::new(Preset::Tiny, d.path());
    r.common.plots = false;
    r.common.budget = Some(Budget::Seconds(1.0));
    r.common.curve = Some(CurvePlan { points: 2 });
    let (_, m) = train_gan(g, &r).unwrap();
    let last = m.curve.last().unwrap();
    assert!(last.seconds >= 1.0, "{last:?}");
    // the start, the mark at 0.5 s (unless one step passed both marks),
    // the end
    assert!((2..=3).contains(&m.curve.len()), "{:?}", m.curve);
    assert_eq!(m.curve[0].steps, 0);
    assert!(m.curve.iter().rev().skip(1).all(|p| p.seconds < 1.0));
    let c = Checkpoint::load(&d.path().join(CHECKPOINT)).unwrap();
    assert_eq!(c.metadata["steps"], last.steps.to_string());
    assert_eq!(c.metadata["budget"], "1 s");
}

/// Budgets that are not a positive number, or a budget beside a fixed
/// epoch count or a checkpoint to score, are refused in one line.
#[test]
fn bad_budgets_are_refused() {
    for bad in ["0", "-1", "abc", "inf", "NaN", ""] {
        let e = parse_seconds(bad).unwrap_err();
        assert!(e.contains("positive number of seconds"), "{e}");
    }
    assert_eq!(parse_seconds("2.5"), Ok(2.5));
    for bad in ["0", "-5", "1.5", "lots"] {
        let e = parse_images(bad).unwrap_err();
        assert!(e.contains("positive whole number of images"), "{e}");
    }
    assert_eq!(parse_images("60000"), Ok(60000));
    assert_err_mentions(
        Budget::from_flags(Some(1.0), Some(8)),
        &["--budget-seconds", "--budget-images", "give one"],
    );
    let d = tempfile::tempdir().unwrap();
    let mut r = tiny_vae(d.path(), Budget::Images(64), None);
    r.common.epochs = Some(3);
    assert_err_mentions(
        train_vae(gpu(), &r),
        &["--epochs 3", "64 images", "give one"],
    );
    let mut o = CompareOptions::new(Preset::Tiny, &d.path().join("cmp"));
    o.budget = Some(Budget::Seconds(5.0));
    o.vae_ckpt = Some(d.path().join("x.safetensors"));
    assert_err_mentions(compare(gpu(), &o), &["budget", "--vae-ckpt"]);
    let mut o = CompareOptions::new(Preset::Tiny, &d.path().join("cmp"));
    o.curve_points = Some(1);
    assert_err_mentions(compare(gpu(), &o), &["--curve-points 1"]);
    assert!(!d.path().join("cmp").exists(), "nothing written");
}

fn tiny_compare(out: &std::path::Path, budget: Budget) -> CompareOptions {
    let mut o = CompareOptions::new(Preset::Tiny, out);
    o.classifier = Some(root().join(o.classifier()));
    o.data_dir = Some(root().join(o.data_dir()));
    o.iwae_k = 8;
    o.seeds = 3;
    o.budget = Some(budget);
    o.curve_points = Some(4);
    o
}

/// The comparison at an equal budget of 48 images per model, 3 seeds:
/// verdicts on every claim (the tiny preset does not stop them), each line
/// naming the budget and the adapter (claim 2: the timed steps), the
/// curves of every seed in report.json with their crossings, a picture per
/// figure; a resume with another budget is refused before anything is
/// scored, the report intact.
#[test]
fn compare_at_a_budget_names_it_in_every_verdict() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmp");
    let r = compare(g, &tiny_compare(&out, Budget::Images(48))).unwrap();
    let adapter = &g.info.name;
    for v in &r.verdicts {
        assert!(
            !matches!(v.outcome, Outcome::NoVerdict(_)),
            "{}: {:?}",
            v.claim,
            v.outcome
        );
        let want = if v.claim == CLAIMS[1] {
            format!("the training steps timed at batch 8 on {adapter}")
        } else {
            format!("at an equal budget of 48 images per model on {adapter}")
        };
        assert!(v.line().ends_with(&format!("({want})")), "{}", v.line());
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(REPORT_JSON)).unwrap()).unwrap();
    for model in ["vae", "gan"] {
        let seeds = json["curves"][model].as_array().unwrap();
        assert_eq!(seeds.len(), 3);
        for s in seeds {
            let steps: Vec<u64> = s
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["steps"].as_u64().unwrap())
                .collect();
            assert_eq!(steps, [0, 2, 3, 5, 6], "48 images: 6 steps of 8, 4 marks");
            let figures: &BTreeMap<String, serde_json::Value> =
                &serde_json::from_value(s[4]["figures"].clone()).unwrap();
            assert!(figures.contains_key("fid") && figures.contains_key("recall"));
        }
    }
    assert!(json["curves"]["crossings"]["fid"]["images"]["text"].is_string());
    let md = std::fs::read_to_string(out.join(REPORT_MD)).unwrap();
    assert!(md.contains("## Quality as training goes"));
    for f in [
        "fid",
        "precision",
        "recall",
        "kl_to_uniform",
        "sharpness",
        "test_neg_elbo",
    ] {
        assert!(out.join(format!("curve_{f}.png")).is_file(), "{f}");
    }
    let mut other = tiny_compare(&out, Budget::Images(96));
    other.resume = true;
    assert_err_mentions(compare(g, &other), &["48 images", "96 images", "--budget"]);
    assert_eq!(std::fs::read_to_string(out.join(REPORT_MD)).unwrap(), md);
}
