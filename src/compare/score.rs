//! Score a set of 28x28 images (values in [0, 1]) against the real test
//! reference, through the committed classifier: FID, precision and recall
//! in its 128-d feature space, the predicted-digit histogram, the
//! classifier Inception Score, and sharpness.

use crate::compare::figures::{Column, Figure, Figures};
use crate::eval::{coverage, fid, prdc, sharpness};
use crate::gpu::Gpu;
use crate::models::classifier::{argmax, Classifier, CLASSES, FEATURES};
use crate::Result;

/// The classifier's view of one image set.
pub struct Classified {
    pub features: Vec<f32>,
    pub probs: Vec<f32>,
    /// The most probable digit of each image.
    pub labels: Vec<u32>,
}

/// Run the classifier over `pixels`.
pub fn classify(gpu: &Gpu, classifier: &Classifier, pixels: &[f32]) -> Result<Classified> {
    let (features, probs) = classifier.features_and_probs(gpu, pixels)?;
    let labels = probs.chunks(CLASSES).map(|r| argmax(r) as u32).collect();
    Ok(Classified {
        features,
        probs,
        labels,
    })
}

/// Coverage, IS and sharpness: the figures that need no second set.
pub fn own_figures(figs: &mut Figures, col: Column, c: &Classified, pixels: &[f32]) -> Result<()> {
    let hist = coverage::class_histogram(&c.labels)?;
    figs.push(
        col,
        Figure::CoverageEntropy,
        coverage::histogram_entropy(&hist)?,
    );
    figs.push(col, Figure::KlToUniform, coverage::kl_to_uniform(&hist)?);
    figs.push(
        col,
        Figure::InceptionScore,
        coverage::inception_score(&c.probs)?,
    );
    figs.push(
        col,
        Figure::Sharpness,
        sharpness::mean_squared_laplacian(pixels)?,
    );
    Ok(())
}

/// Every sample figure of `pixels` into column `col`, against the real
/// images' features `reference`; returns the classifier's view for further
/// use (histograms, latent grids).
pub fn score(
    gpu: &Gpu,
    classifier: &Classifier,
    reference: &[f32],
    figs: &mut Figures,
    col: Column,
    pixels: &[f32],
) -> Result<Classified> {
    let c = classify(gpu, classifier, pixels)?;
    figs.push(
        col,
        Figure::Fid,
        fid::fid(reference, &c.features, FEATURES)?,
    );
    let pr = prdc::precision_recall(reference, &c.features, FEATURES, prdc::DEFAULT_K)?;
    figs.push(col, Figure::Precision, pr.precision);
    figs.push(col, Figure::Recall, pr.recall);
    own_figures(figs, col, &c, pixels)?;
    Ok(c)
}
