//! Score a set of 28x28 images (values in [0, 1]) against the real test
//! reference, through the committed classifier: FID, precision and recall
//! in its 128-d feature space, the predicted-digit histogram, the
//! classifier Inception Score, and sharpness; the baselines every model
//! is read against; a 2-D latent grid's structure. Portable: the native
//! comparison calls the blocking forms, the browser's lab awaits the
//! futures.

use crate::compare::figures::{Column, Figure, Figures};
use crate::data::PIXELS;
use crate::eval::{coverage, fid, latent, prdc, sharpness};
use crate::gpu::Gpu;
use crate::models::classifier::{argmax, Classifier, CLASSES, FEATURES};
use crate::ops::rng::Philox;
use crate::Result;

/// The most samples a curve point scores (and the browser's lab scores
/// per model): enough for FID and precision and recall to rank models,
/// few enough that 16 points cost little beside the training.
pub const POINT_SAMPLES: usize = 1000;

/// The classifier's view of one image set.
pub struct Classified {
    pub features: Vec<f32>,
    pub probs: Vec<f32>,
    /// The most probable digit of each image.
    pub labels: Vec<u32>,
}

/// Run the classifier over `pixels`.
pub fn classify(gpu: &Gpu, classifier: &Classifier, pixels: &[f32]) -> Result<Classified> {
    pollster::block_on(classify_async(gpu, classifier, pixels))
}

/// [`classify`] as a future, which a browser awaits.
pub async fn classify_async(
    gpu: &Gpu,
    classifier: &Classifier,
    pixels: &[f32],
) -> Result<Classified> {
    let (features, probs) = classifier.features_and_probs_async(gpu, pixels).await?;
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
    pollster::block_on(score_async(gpu, classifier, reference, figs, col, pixels))
}

/// [`score`] as a future, which a browser awaits.
pub async fn score_async(
    gpu: &Gpu,
    classifier: &Classifier,
    reference: &[f32],
    figs: &mut Figures,
    col: Column,
    pixels: &[f32],
) -> Result<Classified> {
    let c = classify_async(gpu, classifier, pixels).await?;
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

/// Scores of the baselines a model is read against, each against the
/// real test images (their `reference_pixels` in [0, 1] and their
/// classifier `reference` features): real training images `train` (in
/// [0, 1]: what a perfect generator would get), uniform noise, a constant
/// image at the test images' mean grey level, and the first training image
/// repeated (total mode collapse), as many of each as `train` holds.
pub async fn baselines_async(
    gpu: &Gpu,
    classifier: &Classifier,
    reference: &[f32],
    reference_pixels: &[f32],
    train: &[f32],
    figs: &mut Figures,
) -> Result<()> {
    let n = train.len() / PIXELS;
    let r = reference;
    score_async(gpu, classifier, r, figs, Column::TestVsTrain, train).await?;
    let noise = Philox::new(0x5eed, 10).uniform_cpu(0, n * PIXELS);
    score_async(gpu, classifier, r, figs, Column::UniformNoise, &noise).await?;
    drop(noise);
    let px = reference_pixels;
    let grey = (px.iter().map(|&v| v as f64).sum::<f64>() / px.len() as f64) as f32;
    let constant = vec![grey; n * PIXELS];
    score_async(gpu, classifier, r, figs, Column::ConstantImage, &constant).await?;
    drop(constant);
    let first = &train[..PIXELS.min(train.len())];
    let repeated: Vec<f32> = first.iter().copied().cycle().take(n * PIXELS).collect();
    score_async(gpu, classifier, r, figs, Column::RepeatedDigit, &repeated).await?;
    Ok(())
}

/// The structure of a decoded `side x side` latent grid (`grid`, images
/// in [0, 1], rows top to bottom) into column `col`: the share of
/// same-class neighbours and how many classes appear, by the classifier's
/// labels.
pub async fn latent_figures_async(
    gpu: &Gpu,
    classifier: &Classifier,
    grid: &[f32],
    side: usize,
    figs: &mut Figures,
    col: Column,
) -> Result<()> {
    let labels = classify_async(gpu, classifier, grid).await?.labels;
    figs.push(
        col,
        Figure::LatentPurity,
        latent::neighbour_purity(&labels, side)?,
    );
    figs.push(
        col,
        Figure::LatentDigits,
        latent::distinct_classes(&labels)? as f64,
    );
    Ok(())
}
