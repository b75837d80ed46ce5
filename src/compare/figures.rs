//! The comparison's table: one value per seed for each (column, figure)
//! (the step speed: one per timed submit),
//! aggregated as mean and sample standard deviation.

use std::collections::BTreeMap;

use serde::Serialize;

/// A column of the table: a model's samples or a baseline set of images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// VAE samples: the decoder's means (Bernoulli probabilities).
    Vae,
    /// VAE samples: binary images drawn from those Bernoulli means.
    VaeBernoulli,
    Gan,
    /// Real training images scored against the test reference: what a
    /// perfect generator would get.
    TestVsTrain,
    /// The test reference images themselves (only figures that need no
    /// second set: sharpness, coverage, IS).
    TestSet,
    UniformNoise,
    /// Every image the test set's mean grey level.
    ConstantImage,
    /// The first training image, repeated: total mode collapse.
    RepeatedDigit,
}

impl Column {
    pub const ALL: [Column; 8] = [
        Column::Vae,
        Column::VaeBernoulli,
        Column::Gan,
        Column::TestVsTrain,
        Column::TestSet,
        Column::UniformNoise,
        Column::ConstantImage,
        Column::RepeatedDigit,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Vae => "VAE (decoder means)",
            Column::VaeBernoulli => "VAE (Bernoulli draws)",
            Column::Gan => "GAN",
            Column::TestVsTrain => "train images (baseline)",
            Column::TestSet => "test images (reference)",
            Column::UniformNoise => "uniform noise",
            Column::ConstantImage => "constant image",
            Column::RepeatedDigit => "one repeated digit",
        }
    }
}

/// A row of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    Params,
    /// The training step alone at the cost batch ([`crate::compare::cost`]):
    /// one value per timed submit (several per seed), so its spread is the
    /// timing's own.
    StepImagesPerSec,
    /// The training step's own memory at the cost batch.
    StepPeakMib,
    /// GEMM work per training image, from the recorded dispatches.
    GemmMflopPerImage,
    TrainImagesPerSec,
    SecondsPerEpoch,
    PeakGpuMib,
    Fid,
    Precision,
    Recall,
    CoverageEntropy,
    KlToUniform,
    InceptionScore,
    Sharpness,
    TestNegElbo,
    IwaeNll,
    LatentPurity,
    LatentDigits,
    LatentKnnAccuracy,
}

impl Figure {
    pub const ALL: [Figure; 19] = [
        Figure::Params,
        Figure::StepImagesPerSec,
        Figure::StepPeakMib,
        Figure::GemmMflopPerImage,
        Figure::TrainImagesPerSec,
        Figure::SecondsPerEpoch,
        Figure::PeakGpuMib,
        Figure::Fid,
        Figure::Precision,
        Figure::Recall,
        Figure::CoverageEntropy,
        Figure::KlToUniform,
        Figure::InceptionScore,
        Figure::Sharpness,
        Figure::TestNegElbo,
        Figure::IwaeNll,
        Figure::LatentPurity,
        Figure::LatentDigits,
        Figure::LatentKnnAccuracy,
    ];

    /// Row label and unit.
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            Figure::Params => ("parameters", "count"),
            Figure::StepImagesPerSec => ("training step speed at the cost batch", "images/s"),
            Figure::StepPeakMib => (
                "training step memory at the cost batch (datasets excluded)",
                "MiB",
            ),
            Figure::GemmMflopPerImage => ("GEMM work per training image", "MFLOP"),
            Figure::TrainImagesPerSec => ("training run speed (own batch)", "images/s"),
            Figure::SecondsPerEpoch => ("time per epoch", "s"),
            Figure::PeakGpuMib => ("training run peak GPU memory (own batch)", "MiB"),
            Figure::Fid => (
                "FID (classifier features, lower is better)",
                "squared units",
            ),
            Figure::Precision => ("precision (k = 3)", "fraction"),
            Figure::Recall => ("recall (k = 3)", "fraction"),
            Figure::CoverageEntropy => ("predicted-class entropy (max 2.303)", "nats"),
            Figure::KlToUniform => ("KL(predicted classes ‖ uniform)", "nats"),
            Figure::InceptionScore => ("classifier Inception Score (max 10)", "unitless"),
            Figure::Sharpness => ("sharpness (mean squared Laplacian)", "(intensity/px^2)^2"),
            Figure::TestNegElbo => ("test negative ELBO", "nats/image"),
            Figure::IwaeNll => ("IWAE bound on -log p(x)", "nats/image"),
            Figure::LatentPurity => ("20x20 latent grid: same-class neighbours", "fraction"),
            Figure::LatentDigits => ("20x20 latent grid: classes present", "of 10"),
            Figure::LatentKnnAccuracy => ("test latent means: 5-NN class accuracy", "fraction"),
        }
    }

    /// Decimal places in the table.
    pub fn decimals(self) -> usize {
        match self {
            Figure::Params | Figure::LatentDigits | Figure::PeakGpuMib => 0,
            Figure::TrainImagesPerSec
            | Figure::SecondsPerEpoch
            | Figure::StepImagesPerSec
            | Figure::StepPeakMib
            | Figure::GemmMflopPerImage => 1,
            Figure::Fid | Figure::TestNegElbo | Figure::IwaeNll => 2,
            Figure::Sharpness => 5,
            _ => 3,
        }
    }
}

/// Mean and spread of one figure over seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub std: f64,
    pub n: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Stat { mean, std, n }
    }

    /// `mean` or `mean ± std` at `decimals` places.
    pub fn show(&self, decimals: usize) -> String {
        // `+ 0.0` turns a negative zero into a plain one.
        let mean = self.mean + 0.0;
        if self.n > 1 {
            format!("{mean:.decimals$} ± {:.decimals$}", self.std)
        } else {
            format!("{mean:.decimals$}")
        }
    }
}

/// Every measured value, per seed.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    values: BTreeMap<(Column, Figure), Vec<f64>>,
}

impl Figures {
    /// Add one seed's value.
    pub fn push(&mut self, column: Column, figure: Figure, value: f64) {
        self.values.entry((column, figure)).or_default().push(value);
    }

    pub fn values(&self, column: Column, figure: Figure) -> Option<&[f64]> {
        self.values.get(&(column, figure)).map(|v| v.as_slice())
    }

    pub fn stat(&self, column: Column, figure: Figure) -> Option<Stat> {
        self.values(column, figure)
            .filter(|v| !v.is_empty())
            .map(Stat::of)
    }

    /// Columns with at least one figure, in table order.
    pub fn columns(&self) -> Vec<Column> {
        Column::ALL
            .into_iter()
            .filter(|&c| Figure::ALL.iter().any(|&f| self.stat(c, f).is_some()))
            .collect()
    }

    /// `{column: {figure: {mean, std, n, values}}}` for report.json.
    pub fn to_json(&self) -> serde_json::Value {
        let mut cols = serde_json::Map::new();
        for c in self.columns() {
            let mut rows = serde_json::Map::new();
            for f in Figure::ALL {
                if let (Some(s), Some(v)) = (self.stat(c, f), self.values(c, f)) {
                    rows.insert(
                        key(f),
                        serde_json::json!({"mean": s.mean, "std": s.std, "n": s.n, "values": v}),
                    );
                }
            }
            cols.insert(key(c), serde_json::Value::Object(rows));
        }
        serde_json::Value::Object(cols)
    }
}

/// The snake_case name serde gives a unit variant.
pub fn key<T: Serialize>(v: T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}
