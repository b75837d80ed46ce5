//! What each seed measures: the real-data baselines, and each model's
//! samples, latent grid and own figures, trained here or loaded.

use std::path::Path;
use std::time::Instant;

use crate::compare::cost::{gan_step_cost, vae_step_cost, StepCost};
use crate::compare::figures::{key, Column, Figure, Figures, Stat};
use crate::compare::load::metrics_beside;
use crate::compare::options::CompareOptions;
use crate::compare::score::{baselines_async, latent_figures_async, score};
use crate::data::{GpuDataset, Images, PIXELS};
use crate::error::Result;
use crate::eval::latent;
use crate::gpu::Gpu;
use crate::models::classifier::Classifier;
use crate::models::gan::{to_pixels, Gan};
use crate::models::prior::prior_grid;
use crate::models::vae::Vae;
use crate::ops::gather::PixelMap;
use crate::ops::rng::Philox;
use crate::train::budget::PointFigures;
use crate::train::gan_run::{train_gan_scored, GanRun};
use crate::train::vae_run::{train_vae_scored, VaeRun};
use crate::train::Metrics;

pub use crate::compare::score::POINT_SAMPLES;
pub use crate::models::prior::GRID;

/// Binary images drawn pixel by pixel from Bernoulli means.
pub fn bernoulli_draws(means: &[f32], seed: u64) -> Vec<f32> {
    let u = Philox::new(seed, 9).uniform_cpu(0, means.len());
    means
        .iter()
        .zip(u)
        .map(|(&p, u)| if u < p { 1.0 } else { 0.0 })
        .collect()
}

/// Training-run figures from a model's metrics.
fn training_figures(figs: &mut Figures, col: Column, m: &Metrics) {
    if !m.epochs.is_empty() {
        let n = m.epochs.len() as f64;
        let ips = m.epochs.iter().map(|e| e.images_per_sec).sum::<f64>() / n;
        let secs = m.epochs.iter().map(|e| e.seconds).sum::<f64>() / n;
        figs.push(col, Figure::TrainImagesPerSec, ips);
        figs.push(col, Figure::SecondsPerEpoch, secs);
    }
    // The training steps' own high-water mark; older metrics.json files
    // only have the one that includes evaluation.
    let peak = match m.peak_train_gpu_bytes {
        0 => m.peak_gpu_bytes,
        p => p,
    };
    figs.push(col, Figure::PeakGpuMib, peak as f64 / (1 << 20) as f64);
}

/// The cost figures of one model's step ([`crate::compare::cost`]): the
/// speed once per timed repeat.
fn cost_figures(model: &str, c: StepCost) -> Vec<(Figure, f64)> {
    let speed = Stat::of(&c.images_per_sec);
    eprintln!(
        "  {model} training step at batch {}: {} images/s ({} timed submits), {:.1} MiB, \
         {:.1} MFLOP per image",
        c.batch,
        speed.show(1),
        speed.n,
        c.peak_bytes as f64 / (1 << 20) as f64,
        c.gemm_flops_per_image * 1e-6
    );
    let mut figs: Vec<(Figure, f64)> = c
        .images_per_sec
        .iter()
        .map(|&v| (Figure::StepImagesPerSec, v))
        .collect();
    figs.push((Figure::StepPeakMib, c.peak_bytes as f64 / (1 << 20) as f64));
    figs.push((Figure::GemmMflopPerImage, c.gemm_flops_per_image * 1e-6));
    figs
}

/// The data every seed is scored on.
pub(crate) struct Reference {
    pub test: Images,
    /// The reference: the first test images, in [0, 1] pixels...
    pub pixels: Vec<f32>,
    /// ... and in the classifier's feature space.
    pub features: Vec<f32>,
    /// The images the cost probes gather their batches from
    /// ([`crate::compare::cost::probe_data`]).
    pub probe: GpuDataset,
    /// The batch the cost probes measure (`--cost-batch`).
    pub cost_batch: usize,
}

impl Reference {
    /// How many test images the reference holds.
    pub fn n_ref(&self) -> usize {
        self.pixels.len() / PIXELS
    }
}

pub(crate) fn elapsed(t: Instant) -> String {
    format!("{:.0} s", t.elapsed().as_secs_f64())
}

/// Scores of the baselines ([`baselines_async`]), `n` images each.
pub(crate) fn baselines(
    gpu: &Gpu,
    classifier: &Classifier,
    real: &Reference,
    train: &Images,
    n: usize,
    figs: &mut Figures,
) -> Result<()> {
    pollster::block_on(baselines_async(
        gpu,
        classifier,
        &real.features,
        &real.pixels,
        &train.unit_pixels(n),
        figs,
    ))
}

/// One model's outputs for one seed, in [0, 1] pixels.
pub(crate) struct ModelSeed {
    pub samples: Vec<f32>,
    /// The decoded 20x20 prior grid (2-D latents only).
    pub grid: Option<Vec<f32>>,
    /// The reference test images' latent means (VAE).
    pub means: Option<Vec<f32>>,
    pub metrics: Option<Metrics>,
    /// Trained in this run (with its folder), or the checkpoint loaded.
    pub source: String,
    /// Figures measured on the model's own device.
    pub own: Vec<(Figure, f64)>,
}

impl ModelSeed {
    /// The model's curve: its training run's points (none for a loaded
    /// checkpoint or a run without a curve).
    pub fn curve(&self) -> Vec<crate::train::budget::CurvePoint> {
        self.metrics
            .as_ref()
            .map_or(Vec::new(), |m| m.curve.clone())
    }

    /// Push the model's own figures, and classify its latent grid.
    pub fn push_into(
        &self,
        figs: &mut Figures,
        gpu: &Gpu,
        c: &Classifier,
        col: Column,
    ) -> Result<()> {
        for &(f, v) in &self.own {
            figs.push(col, f, v);
        }
        if let Some(m) = &self.metrics {
            training_figures(figs, col, m);
        }
        if let Some(g) = &self.grid {
            pollster::block_on(latent_figures_async(gpu, c, g, GRID, figs, col))?;
        }
        Ok(())
    }
}

/// Where a model comes from, and what `measure` learns from it: the
/// loaded checkpoint (with `metrics.json` beside it, if any), or a model
/// trained now by `train`. Both on the one device of the comparison, so
/// every model and seed reuses the pipelines the first one built; the
/// training run counts its peak memory from what was allocated when it
/// began ([`crate::train::session::Session`]), so the comparison's own
/// tensors are not in it.
fn with_model<M>(
    gpu: &Gpu,
    loaded: Option<(&M, &Path)>,
    train: impl FnOnce(&Gpu) -> Result<(M, Metrics)>,
    trained_in: &Path,
    measure: impl FnOnce(&Gpu, &M, Option<Metrics>, String) -> Result<ModelSeed>,
) -> Result<ModelSeed> {
    match loaded {
        Some((m, path)) => measure(gpu, m, metrics_beside(path), path.display().to_string()),
        None => {
            let (m, metrics) = train(gpu)?;
            let source = format!("trained: {}", trained_in.display());
            measure(gpu, &m, Some(metrics), source)
        }
    }
}

/// What scores a model's samples at each point of its curve: the sample
/// figures ([`score`]) of `n` samples from fixed latents, through the
/// comparison's classifier, against the real test images' features.
pub(crate) struct PointScorer<'a> {
    pub classifier: &'a Classifier,
    pub reference: &'a [f32],
    pub n: usize,
    /// The fixed latents' seed.
    pub seed: u64,
}

impl PointScorer<'_> {
    /// Every sample figure of `pixels`, by name ([`crate::compare::figures::key`]).
    fn figures(&self, gpu: &Gpu, pixels: &[f32]) -> Result<PointFigures> {
        let mut figs = Figures::default();
        score(
            gpu,
            self.classifier,
            self.reference,
            &mut figs,
            Column::Vae,
            pixels,
        )?;
        Ok(Figure::ALL
            .into_iter()
            .filter_map(|f| Some((key(f), figs.stat(Column::Vae, f)?.mean)))
            .collect())
    }
}

/// Train (or take the loaded) VAE of `seed` and measure it.
pub(crate) fn vae_seed(
    gpu: &Gpu,
    opts: &CompareOptions,
    seed: usize,
    id: Option<&str>,
    loaded: Option<&Vae>,
    real: &Reference,
    points: &PointScorer,
) -> Result<ModelSeed> {
    let t = Instant::now();
    let (samples, iwae_images) = opts.sizes();
    let run = VaeRun {
        common: opts.run_options(seed, "vae", id)?,
        options: opts.vae.clone(),
    };
    let from_ckpt = loaded.zip(opts.vae_ckpt.as_deref());
    let train = |g: &Gpu| {
        train_vae_scored(g, &run, &mut |g, vae| {
            points.figures(g, &vae.sample(g, points.n, points.seed)?)
        })
    };
    with_model(
        gpu,
        from_ckpt,
        train,
        &run.common.out,
        |g, vae, metrics, source| {
            let mut own = vec![(Figure::Params, vae.param_count() as f64)];
            own.extend(cost_figures(
                "VAE",
                vae_step_cost(g, &vae.config, &real.probe, real.cost_batch)?,
            ));
            // The last epoch's test ELBO of a run trained here; computed afresh
            // for a loaded checkpoint, and after a budget (which ends
            // mid-epoch as a rule).
            let elbo = match metrics.as_ref().and_then(|m| m.epochs.last()?.test_loss) {
                Some(l) if loaded.is_none() && opts.budget.is_none() => l,
                _ => vae.test_loss(g, &GpuDataset::upload(g, &real.test, "test")?, 500)?,
            };
            own.push((Figure::TestNegElbo, elbo));
            let nll = iwae_with_progress(g, vae, &real.test, iwae_images, opts.iwae_k, seed)?;
            own.push((Figure::IwaeNll, nll));
            let samples_px = vae.sample(g, samples, 1000 + seed as u64)?;
            let (means, _) = vae.encode(g, &real.pixels)?;
            let labels: Vec<u32> = real.test.labels[..real.n_ref()]
                .iter()
                .map(|&l| l as u32)
                .collect();
            own.push((
                Figure::LatentKnnAccuracy,
                latent::knn_accuracy(&means, vae.config.latent, &labels, latent::KNN_K)?,
            ));
            let two_d = vae.config.latent == 2;
            let grid = two_d
                .then(|| vae.decode(g, &prior_grid(GRID)))
                .transpose()?;
            eprintln!("  VAE sampled and measured in {}", elapsed(t));
            Ok(ModelSeed {
                samples: samples_px,
                grid,
                means: two_d.then_some(means),
                metrics,
                source,
                own,
            })
        },
    )
}

/// The mean IWAE bound (nats) on the first `n` test images, with a
/// progress bar.
fn iwae_with_progress(
    g: &Gpu,
    vae: &Vae,
    test: &Images,
    n: usize,
    k: usize,
    seed: usize,
) -> Result<f64> {
    // The pixels as the VAE's likelihood sees them (binarised if it was
    // trained so), as its test ELBO does.
    let map = PixelMap {
        binarize: vae.config.options.binarize,
        ..PixelMap::UNIT
    };
    let x: Vec<f32> = test.pixels[..n * PIXELS]
        .iter()
        .map(|&b| map.apply(b) as f32)
        .collect();
    let pb = indicatif::ProgressBar::new(n as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "IWAE bound, k = {k} [{{bar:30}}] {{pos}}/{{len}} images eta {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let nll = vae.iwae_nll(g, &x, k, 3000 + seed as u64, |done| {
        pb.set_position(done as u64)
    })?;
    pb.finish_and_clear();
    Ok(nll.iter().sum::<f64>() / nll.len() as f64)
}

/// Train (or take the loaded) GAN of `seed` and sample it.
pub(crate) fn gan_seed(
    gpu: &Gpu,
    opts: &CompareOptions,
    seed: usize,
    id: Option<&str>,
    loaded: Option<&Gan>,
    real: &Reference,
    points: &PointScorer,
) -> Result<ModelSeed> {
    let (samples, _) = opts.sizes();
    let run = GanRun {
        common: opts.run_options(seed, "gan", id)?,
        lr_d: None,
        head: None,
        options: opts.gan.clone(),
    };
    let from_ckpt = loaded.zip(opts.gan_ckpt.as_deref());
    let train = |g: &Gpu| {
        train_gan_scored(g, &run, &mut |g, gan| {
            points.figures(g, &to_pixels(gan.sample(g, points.n, points.seed)?))
        })
    };
    with_model(
        gpu,
        from_ckpt,
        train,
        &run.common.out,
        |g, gan, metrics, source| {
            let samples_px = to_pixels(gan.sample(g, samples, 1000 + seed as u64)?);
            let grid = (gan.config.latent == 2)
                .then(|| gan.generate(g, &prior_grid(GRID)).map(to_pixels))
                .transpose()?;
            let mut own = vec![(Figure::Params, gan.param_count() as f64)];
            own.extend(cost_figures(
                "GAN",
                gan_step_cost(g, &gan.config, &real.probe, real.cost_batch)?,
            ));
            Ok(ModelSeed {
                samples: samples_px,
                grid,
                means: None,
                metrics,
                source,
                own,
            })
        },
    )
}
