//! Quality as training goes: each model's curve points over seeds, their
//! mean and spread against images, GEMM work or seconds, and where the two
//! models' curves cross.
//!
//! Seeds are matched point by point (the k-th point of every seed is at
//! the same mark of the same budget); a model's curve is the mean over
//! seeds of each point's x and of its figure, with the sample standard
//! deviation of the figure. Two curves are compared on the union of their
//! x values where both are defined, each interpolated linearly. At an x
//! where the difference of the means exceeds the sum of the two spreads
//! (the verdicts' noise rule, [`crate::compare::verdict::vote`]) one model
//! is *decided* above the other; the curves *cross* when the decided side
//! changes. The crossing is where the mean difference reaches zero between
//! the last x decided one way and the first decided the other; its
//! uncertainty is that interval, and the spread of each seed's own
//! crossing (seed i's VAE against seed i's GAN).

use std::path::Path;

use serde::Serialize;

use crate::compare::figures::{key, Figure, Stat};
use crate::error::Result;
use crate::report::plot::{band_panels, Band, Panel};
use crate::train::budget::CurvePoint;

/// The figures a curve shows, in the report's order.
pub const CURVE_FIGURES: [Figure; 6] = [
    Figure::Fid,
    Figure::Precision,
    Figure::Recall,
    Figure::KlToUniform,
    Figure::Sharpness,
    Figure::TestNegElbo,
];

/// What a curve is plotted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    Images,
    GemmGflop,
    Seconds,
}

impl Axis {
    pub const ALL: [Axis; 3] = [Axis::Images, Axis::GemmGflop, Axis::Seconds];

    /// The axis label.
    pub fn label(self) -> &'static str {
        match self {
            Axis::Images => "training images seen",
            Axis::GemmGflop => "GEMM work (GFLOP)",
            Axis::Seconds => "training seconds",
        }
    }

    /// The unit after a number.
    pub fn unit(self) -> &'static str {
        match self {
            Axis::Images => "images",
            Axis::GemmGflop => "GFLOP",
            Axis::Seconds => "s",
        }
    }

    /// Where point `p` is on this axis.
    pub fn of(self, p: &CurvePoint) -> f64 {
        match self {
            Axis::Images => p.images as f64,
            Axis::GemmGflop => p.gemm_gflop,
            Axis::Seconds => p.seconds,
        }
    }
}

/// One seed's curve of one figure: `(x, value)` in training order.
pub type Series = Vec<(f64, f64)>;

/// Each seed's series of figure `f` against `axis` (points without the
/// figure left out; seeds without any left out).
pub fn series(seeds: &[Vec<CurvePoint>], axis: Axis, f: Figure) -> Vec<Series> {
    let name = key(f);
    seeds
        .iter()
        .map(|pts| {
            pts.iter()
                .filter_map(|p| Some((axis.of(p), *p.figures.get(&name)?)))
                .collect::<Series>()
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// A point of a mean curve: mean x, and the figure's mean and spread.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MeanPoint {
    pub x: f64,
    pub y: Stat,
}

/// The mean curve over seeds, point by point (as far as every seed goes).
pub fn mean_curve(seeds: &[Series]) -> Vec<MeanPoint> {
    let len = seeds.iter().map(Vec::len).min().unwrap_or(0);
    (0..len)
        .map(|k| {
            let xs: Vec<f64> = seeds.iter().map(|s| s[k].0).collect();
            let ys: Vec<f64> = seeds.iter().map(|s| s[k].1).collect();
            MeanPoint {
                x: Stat::of(&xs).mean,
                y: Stat::of(&ys),
            }
        })
        .collect()
}

/// Linear interpolation of `(x, y)` knots (x increasing) at `x`; `None`
/// outside them.
fn at(knots: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = knots.iter().position(|k| k.0 >= x)?;
    let (x1, y1) = knots[i];
    if x1 == x || i == 0 {
        return (x1 == x).then_some(y1);
    }
    let (x0, y0) = knots[i - 1];
    Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
}

/// Which model's figure is higher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Above {
    Vae,
    Gan,
}

impl Above {
    fn other(self) -> Above {
        match self {
            Above::Vae => Above::Gan,
            Above::Gan => Above::Vae,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Above::Vae => "VAE",
            Above::Gan => "GAN",
        }
    }
}

/// One change of the model decided higher.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cross {
    /// Where the mean difference reaches zero.
    pub x: f64,
    /// The last x decided for `before` and the first decided against.
    pub between: (f64, f64),
    /// The model higher before the crossing.
    pub before: Above,
    /// Each seed pair's own crossing nearest `x`: mean and spread, over
    /// the pairs whose curves cross at all.
    pub per_seed: Option<Stat>,
    /// How many seed pairs cross at all.
    pub crossing_pairs: usize,
}

/// How two curves lie against each other.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Crossing {
    /// Fewer than two x where both curves are defined.
    TooShort,
    /// Within the spread of the seeds at every x.
    Tied,
    /// One model above wherever the two are apart.
    Apart { above: Above },
    /// The decided side changes, once or more, in order; `pairs` seed
    /// pairs were compared.
    Crosses { crossings: Vec<Cross>, pairs: usize },
}

/// Where `vae` and `gan` (each a mean curve) cross, with each seed pair's
/// own crossings (`vae_seeds[i]` against `gan_seeds[i]`).
pub fn crossing(
    vae: &[MeanPoint],
    gan: &[MeanPoint],
    vae_seeds: &[Series],
    gan_seeds: &[Series],
) -> Crossing {
    let knots = |c: &[MeanPoint], f: fn(&Stat) -> f64| -> Vec<(f64, f64)> {
        c.iter().map(|p| (p.x, f(&p.y))).collect()
    };
    let (vm, vs) = (knots(vae, |s| s.mean), knots(vae, |s| s.std));
    let (gm, gs) = (knots(gan, |s| s.mean), knots(gan, |s| s.std));
    // (x, mean difference VAE - GAN, noise): the std knots share the
    // mean knots' x
    let noise = on_common(&vs, &gs, |a, b| a + b);
    let diffs: Vec<(f64, f64, f64)> = on_common(&vm, &gm, |a, b| a - b)
        .into_iter()
        .zip(noise)
        .map(|((x, d), (_, n))| (x, d, n))
        .collect();
    if diffs.len() < 2 {
        return Crossing::TooShort;
    }
    let side = |d: f64| if d > 0.0 { Above::Vae } else { Above::Gan };
    let decided: Vec<(f64, Above)> = diffs
        .iter()
        .filter(|(_, d, noise)| d.abs() > *noise)
        .map(|&(x, d, _)| (x, side(d)))
        .collect();
    let Some(&(_, first)) = decided.first() else {
        return Crossing::Tied;
    };
    // each seed pair's zeros of its own difference
    let seed_zeros: Vec<Vec<f64>> = vae_seeds
        .iter()
        .zip(gan_seeds)
        .map(|(v, g)| zeros(&on_common(v, g, |a, b| a - b)))
        .collect();
    let crossings: Vec<Cross> = decided
        .windows(2)
        .filter(|w| w[0].1 != w[1].1)
        .map(|w| {
            let between = (w[0].0, w[1].0);
            let inside: Vec<(f64, f64)> = diffs
                .iter()
                .filter(|(x, _, _)| *x >= between.0 && *x <= between.1)
                .map(|&(x, d, _)| (x, d))
                .collect();
            let x = zeros(&inside).first().copied().unwrap_or(between.1);
            let nearest: Vec<f64> = seed_zeros
                .iter()
                .filter_map(|z| {
                    z.iter()
                        .copied()
                        .min_by(|a, b| (a - x).abs().total_cmp(&(b - x).abs()))
                })
                .collect();
            Cross {
                x,
                between,
                before: w[0].1,
                per_seed: (!nearest.is_empty()).then(|| Stat::of(&nearest)),
                crossing_pairs: nearest.len(),
            }
        })
        .collect();
    if crossings.is_empty() {
        return Crossing::Apart { above: first };
    }
    Crossing::Crosses {
        crossings,
        pairs: vae_seeds.len().min(gan_seeds.len()),
    }
}

/// `f(a(x), b(x))` of two piecewise-linear curves at every x of either
/// where both are defined, in order.
fn on_common(a: &[(f64, f64)], b: &[(f64, f64)], f: fn(f64, f64) -> f64) -> Vec<(f64, f64)> {
    common_xs(a, b)
        .into_iter()
        .filter_map(|x| Some((x, f(at(a, x)?, at(b, x)?))))
        .collect()
}

/// The x values of both knot lists where both are defined, in order.
fn common_xs(a: &[(f64, f64)], b: &[(f64, f64)]) -> Vec<f64> {
    let (Some(a0), Some(b0), Some(a1), Some(b1)) = (a.first(), b.first(), a.last(), b.last())
    else {
        return Vec::new();
    };
    let (lo, hi) = (a0.0.max(b0.0), a1.0.min(b1.0));
    let mut xs: Vec<f64> = a
        .iter()
        .chain(b)
        .map(|k| k.0)
        .filter(|&x| x >= lo && x <= hi)
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    xs
}

/// Where the piecewise-linear `d` changes sign, in order (a zero between
/// a positive and a negative value; touching zero is not a change).
fn zeros(d: &[(f64, f64)]) -> Vec<f64> {
    let nonzero: Vec<(f64, f64)> = d.iter().copied().filter(|k| k.1 != 0.0).collect();
    nonzero
        .windows(2)
        .filter_map(|w| {
            let ((x0, d0), (x1, d1)) = (w[0], w[1]);
            (d0.signum() != d1.signum()).then(|| x0 + (x1 - x0) * d0 / (d0 - d1))
        })
        .collect()
}

impl Crossing {
    /// The crossing in words, `x` in `axis`'s unit.
    pub fn describe(&self, axis: Axis) -> String {
        let u = axis.unit();
        let n = |v: f64| show_x(v, axis);
        match self {
            Crossing::TooShort => "too few points to compare".into(),
            Crossing::Tied => "within the seeds' spread throughout".into(),
            Crossing::Apart { above } => format!(
                "no crossing: the {} higher wherever they are apart",
                above.name()
            ),
            Crossing::Crosses { crossings, pairs } => {
                let each: Vec<String> = crossings
                    .iter()
                    .map(|c| {
                        let seeds = match c.per_seed {
                            Some(s) if s.n > 1 => format!(
                                "; per seed {} ± {} {u}, {} of {pairs} seeds cross",
                                n(s.mean),
                                n(s.std),
                                c.crossing_pairs
                            ),
                            Some(s) => format!(
                                "; {} of {pairs} seeds cross (at {} {u})",
                                c.crossing_pairs,
                                n(s.mean)
                            ),
                            None => format!("; no single seed's curves cross ({pairs} seeds)"),
                        };
                        format!(
                            "at {} {u} (decided between {} and {} {u}{seeds}), the {} \
                             higher after",
                            n(c.x),
                            n(c.between.0),
                            n(c.between.1),
                            c.before.other().name()
                        )
                    })
                    .collect();
                let first = crossings[0].before.name();
                format!("the {first} higher first; cross {}", each.join("; then "))
            }
        }
    }
}

/// An x value at a precision that suits its axis.
fn show_x(v: f64, axis: Axis) -> String {
    match axis {
        Axis::Images => format!("{v:.0}"),
        Axis::GemmGflop | Axis::Seconds => {
            if v.abs() >= 100.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        }
    }
}

/// Every seed's curve of each model, in seed order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Curves {
    pub vae: Vec<Vec<CurvePoint>>,
    pub gan: Vec<Vec<CurvePoint>>,
}

impl Curves {
    /// No model has a point.
    pub fn is_empty(&self) -> bool {
        self.vae.iter().chain(&self.gan).all(Vec::is_empty)
    }

    /// How the two models' curves of `f` against `axis` lie.
    pub fn crossing(&self, f: Figure, axis: Axis) -> Crossing {
        let (v, g) = (series(&self.vae, axis, f), series(&self.gan, axis, f));
        crossing(&mean_curve(&v), &mean_curve(&g), &v, &g)
    }

    /// Seconds spent scoring the points, each model's over all seeds.
    pub fn scoring_seconds(&self) -> (f64, f64) {
        let sum = |s: &[Vec<CurvePoint>]| s.iter().flatten().map(|p| p.score_seconds).sum();
        (sum(&self.vae), sum(&self.gan))
    }

    /// `{"vae": [[points] per seed], "gan": ..., "crossings": {figure:
    /// {axis: crossing}}}` for report.json.
    pub fn to_json(&self) -> serde_json::Value {
        let mut crossings = serde_json::Map::new();
        for f in CURVE_FIGURES {
            let by_axis: serde_json::Map<String, serde_json::Value> = Axis::ALL
                .into_iter()
                .map(|a| {
                    let c = self.crossing(f, a);
                    let v = serde_json::json!({"text": c.describe(a), "crossing": c});
                    (key(a), v)
                })
                .collect();
            crossings.insert(key(f), serde_json::Value::Object(by_axis));
        }
        serde_json::json!({"vae": self.vae, "gan": self.gan, "crossings": crossings})
    }

    /// The bands of `f` against `axis`: one per model that has the figure.
    fn bands(&self, f: Figure, axis: Axis) -> Vec<Band> {
        [("VAE", &self.vae), ("GAN", &self.gan)]
            .into_iter()
            .filter_map(|(name, seeds)| {
                let m = mean_curve(&series(seeds, axis, f));
                (!m.is_empty()).then(|| Band {
                    name: name.into(),
                    points: m.iter().map(|p| (p.x, p.y.mean, p.y.std)).collect(),
                })
            })
            .collect()
    }

    /// One picture per figure, `curve_<figure>.png` in `out`: the figure
    /// against images, GEMM work and seconds side by side; returns the
    /// files written with their figures.
    pub fn write_pictures(&self, out: &Path) -> Result<Vec<(String, Figure)>> {
        let mut files = Vec::new();
        for f in CURVE_FIGURES {
            let panels: Vec<Panel> = Axis::ALL
                .into_iter()
                .map(|a| Panel {
                    x_label: a.label().into(),
                    bands: self.bands(f, a),
                })
                .collect();
            if panels.iter().all(|p| p.bands.is_empty()) {
                continue;
            }
            let (label, unit) = f.label();
            let file = format!("curve_{}.png", key(f));
            band_panels(
                &out.join(&file),
                &format!("{label}: mean and spread over seeds"),
                unit,
                &panels,
            )?;
            files.push((file, f));
        }
        Ok(files)
    }

    /// The report's section on the curves: what was scored and when, where
    /// the curves cross, and the pictures (`pictures`, from
    /// [`Curves::write_pictures`]).
    pub fn markdown(&self, pictures: &[(String, Figure)]) -> String {
        let points = self.vae.first().map_or(0, Vec::len);
        let (sv, sg) = self.scoring_seconds();
        let mut m = format!(
            "Each model was scored at {points} points of its training (the start, evenly \
             spaced marks, the end), on {} samples from fixed latents each: the sample \
             figures through the classifier, and the VAE's test negative ELBO on 500 test \
             images. Training stopped meanwhile: the seconds are the training loop's alone. \
             The scoring took {sv:.0} s for the VAE and {sg:.0} s for the GAN, all seeds \
             together. A curve is the mean over seeds point by point, its band ± one standard \
             deviation; two curves cross where the model decided above (the difference \
             beyond the sum of the spreads) changes.\n\n",
            crate::compare::measure::POINT_SAMPLES
        );
        m += "| figure | against images | against GEMM work | against seconds |\n|---|---|---|---|\n";
        for f in CURVE_FIGURES {
            let cells: Vec<String> = Axis::ALL
                .into_iter()
                .map(|a| match self.crossing(f, a) {
                    Crossing::TooShort if f == Figure::TestNegElbo => "VAE only".into(),
                    c => c.describe(a),
                })
                .collect();
            m += &format!("| {} | {} |\n", f.label().0, cells.join(" | "));
        }
        m += "\n";
        for (file, f) in pictures {
            m += &format!("![{}]({file})\n\n", f.label().0);
        }
        m
    }
}
