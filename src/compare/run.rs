//! The comparison run (what `examples/compare.rs` runs): train both models
//! per seed (or load them), sample, score everything against the real test
//! images, and write the report, pictures and sample files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;

use crate::compare::figures::{Column, Figure, Figures};
use crate::compare::report::{write_report, Report};
use crate::compare::score::{classify, own_figures, score};
use crate::compare::verdict::{sufficiency, verdicts, MIN_SEEDS};
use crate::data::GpuDataset;
use crate::data::{self, write_idx, Images, Split, PIXELS};
use crate::error::{Error, Result};
use crate::eval::latent;
use crate::gpu::Gpu;
use crate::io::Checkpoint;
use crate::models::classifier::{Classifier, ClassifierConfig};
use crate::models::gan::{DHead, Gan, GanConfig};
use crate::models::vae::{Vae, VaeConfig};
use crate::ops::gather::PixelMap;
use crate::ops::rng::Philox;
use crate::optim::adam::AdamConfig;
use crate::report::{save_grid, scatter_by_class};
use crate::train::gan_run::{train_gan, GanRun};
use crate::train::session::{open_gpu, prior_grid, RunOptions, CHECKPOINT};
use crate::train::vae_run::{train_vae, VaeRun};
use crate::train::{AdapterDesc, Metrics, Preset};

/// The most samples a comparison scores: the train-image baseline uses as
/// many real training images, and there are 60,000.
pub const MAX_SAMPLES: usize = 60_000;
/// The fewest: precision and recall need more than k = 3 points per set.
pub const MIN_SAMPLES: usize = 10;
/// Side of the latent grid over the prior.
pub const GRID: usize = 20;
/// The report files, written last.
pub const REPORT_MD: &str = "report.md";
pub const REPORT_JSON: &str = "report.json";

/// What to compare and where to write it.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    pub preset: Preset,
    /// Seeds `0..seeds`, each a VAE and a GAN trained and scored.
    pub seeds: usize,
    /// Samples scored per model (default: the preset's).
    pub samples: Option<usize>,
    /// Test images the IWAE bound is computed on (default: the preset's).
    pub iwae_images: Option<usize>,
    /// Importance samples per image.
    pub iwae_k: usize,
    pub out: PathBuf,
    /// Score this VAE checkpoint instead of training one.
    pub vae_ckpt: Option<PathBuf>,
    /// Score this GAN checkpoint instead of training one.
    pub gan_ckpt: Option<PathBuf>,
    /// The feature network's weights.
    pub classifier: PathBuf,
    /// The MNIST IDX files.
    pub data_dir: PathBuf,
    /// Replace an earlier comparison (and its training runs) in `out`.
    pub overwrite: bool,
    /// Continue the training runs an earlier comparison in `out` left
    /// (finished ones are reused as they are, interrupted ones continue
    /// from their last epoch, missing ones start), then score everything.
    pub resume: bool,
}

impl CompareOptions {
    /// The preset's comparison into `out`: 3 seeds for the article preset
    /// (what a verdict needs), 1 otherwise.
    pub fn new(preset: Preset, out: &Path) -> CompareOptions {
        CompareOptions {
            preset,
            seeds: if preset == Preset::Article {
                MIN_SEEDS
            } else {
                1
            },
            samples: None,
            iwae_images: None,
            iwae_k: 100,
            out: out.to_path_buf(),
            vae_ckpt: None,
            gan_ckpt: None,
            classifier: PathBuf::from("data/classifier/classifier.safetensors"),
            data_dir: PathBuf::from("data/mnist"),
            overwrite: false,
            resume: false,
        }
    }

    /// `(samples, IWAE images)`: given, else 10,000 and the whole test set;
    /// the smoke preset 2,000 and 200; tiny 64 and 4.
    pub fn sizes(&self) -> (usize, usize) {
        let (s, i) = match self.preset {
            Preset::Smoke => (2_000, 200),
            Preset::Tiny => (64, 4),
            _ => (10_000, 10_000),
        };
        (self.samples.unwrap_or(s), self.iwae_images.unwrap_or(i))
    }

    fn seed_dir(&self, seed: usize, model: &str) -> PathBuf {
        self.out.join(format!("seed-{seed}")).join(model)
    }

    /// The training run of `model` ("vae" or "gan") for `seed`.
    fn run_options(&self, seed: usize, model: &str) -> RunOptions {
        let mut r = RunOptions::new(self.preset, &self.seed_dir(seed, model));
        r.seed = seed as u64;
        r.overwrite = self.overwrite;
        r.resume = self.resume && r.out.join(CHECKPOINT).is_file();
        r.data_dir = Some(self.data_dir.clone());
        r
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid("compare", msg.into())
}

/// Bytes of host memory the scoring needs per sample (a few f32 image
/// sets and their features alive at once), for the up-front check.
const HOST_BYTES_PER_SAMPLE: u64 = 10 * (PIXELS as u64) * 4;

fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuse what cannot work before anything is trained or written.
fn check_options(o: &CompareOptions) -> Result<()> {
    let (samples, iwae_images) = o.sizes();
    if o.seeds == 0 {
        return Err(invalid("--seeds must be at least 1"));
    }
    if (o.vae_ckpt.is_some() || o.gan_ckpt.is_some()) && o.seeds > 1 {
        return Err(invalid(
            "--vae-ckpt/--gan-ckpt score one trained model: --seeds must be 1",
        ));
    }
    if !(MIN_SAMPLES..=MAX_SAMPLES).contains(&samples) {
        return Err(invalid(format!(
            "--samples {samples}: must be between {MIN_SAMPLES} and {MAX_SAMPLES} \
             (the train-image baseline scores as many real training images)"
        )));
    }
    let need = samples as u64 * HOST_BYTES_PER_SAMPLE;
    if let Some(avail) = available_memory() {
        if need > avail / 10 * 8 {
            return Err(invalid(format!(
                "--samples {samples} needs about {} MiB of memory to score, but only {} MiB \
                 is available: use fewer samples",
                need >> 20,
                avail >> 20
            )));
        }
    }
    if iwae_images == 0 || iwae_images > 10_000 || o.iwae_k == 0 {
        return Err(invalid(format!(
            "--iwae-images {iwae_images} must be in 1..=10000 (the test set) and --iwae-k {} \
             positive",
            o.iwae_k
        )));
    }
    if o.out.exists() && !o.out.is_dir() {
        return Err(Error::data(&o.out, "--out is a file, not a folder"));
    }
    if o.overwrite && o.resume {
        return Err(invalid(
            "--overwrite replaces the runs in --out, --resume continues them: choose one",
        ));
    }
    if !o.overwrite && !o.resume {
        let mut taken = vec![o.out.join(REPORT_JSON), o.out.join(REPORT_MD)];
        for s in 0..o.seeds {
            if o.vae_ckpt.is_none() {
                taken.push(o.seed_dir(s, "vae").join(CHECKPOINT));
            }
            if o.gan_ckpt.is_none() {
                taken.push(o.seed_dir(s, "gan").join(CHECKPOINT));
            }
        }
        if let Some(p) = taken.iter().find(|p| p.exists()) {
            return Err(Error::data(
                p,
                "this folder already holds a comparison: pass --resume to continue its \
                 training runs, --overwrite to replace it, or choose another --out",
            ));
        }
    }
    Ok(())
}

/// `metrics.json` beside a loaded checkpoint, if there is one.
fn metrics_beside(ckpt: &Path) -> Option<Metrics> {
    Metrics::load(ckpt.parent().unwrap_or(Path::new("."))).ok()
}

fn meta_usize(ck: &Checkpoint, path: &Path, key: &str) -> Result<usize> {
    let v = ck
        .metadata
        .get(key)
        .ok_or_else(|| Error::data(path, format!("checkpoint metadata has no {key:?}")))?;
    v.parse().map_err(|_| {
        Error::data(
            path,
            format!("checkpoint metadata {key} = {v:?} is not a number"),
        )
    })
}

fn expect_model(ck: &Checkpoint, path: &Path, want: &str) -> Result<()> {
    match ck.metadata.get("model") {
        Some(m) if m == want => Ok(()),
        Some(m) => Err(Error::data(
            path,
            format!(
                "checkpoint is of model {m:?}, not the {}",
                want.to_uppercase()
            ),
        )),
        None => Err(Error::data(path, "checkpoint metadata names no model")),
    }
}

/// A VAE from a checkpoint (its latent size from the metadata).
pub fn load_vae(gpu: &Gpu, path: &Path) -> Result<Vae> {
    let ck = Checkpoint::load(path)?;
    expect_model(&ck, path, "vae")?;
    let vae = Vae::new(
        gpu,
        VaeConfig {
            latent: meta_usize(&ck, path, "latent_dim")?,
            batch: 1,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
            // A VAE trained on binarised pixels is scored on binarised pixels.
            binarize: ck.metadata.get("binarize").is_some_and(|b| b == "true"),
        },
    )?;
    vae.restore(gpu, &ck, path)?;
    Ok(vae)
}

/// A GAN from a checkpoint (latent size and head from the metadata).
pub fn load_gan(gpu: &Gpu, path: &Path) -> Result<Gan> {
    let ck = Checkpoint::load(path)?;
    expect_model(&ck, path, "gan")?;
    let head = match ck.metadata.get("d_head") {
        Some(h) => *DHead::value_variants()
            .iter()
            .find(|d| d.name() == h)
            .ok_or_else(|| {
                Error::data(path, format!("checkpoint d_head {h:?} is no known head"))
            })?,
        None => DHead::default(),
    };
    let gan = Gan::new(
        gpu,
        GanConfig {
            latent: meta_usize(&ck, path, "latent_dim")?,
            batch: 1,
            adam_g: AdamConfig::keras(1e-3),
            adam_d: AdamConfig::keras(1e-3),
            seed: 0,
            head,
        },
    )?;
    gan.restore(gpu, &ck, path)?;
    Ok(gan)
}

fn to_unit(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&b| b as f32 / 255.0).collect()
}

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

/// What a model leaves for the pictures (first seed only).
#[derive(Default)]
struct Pictures {
    vae_samples: Vec<f32>,
    vae_draws: Vec<f32>,
    gan_samples: Vec<f32>,
    vae_grid: Option<Vec<f32>>,
    gan_grid: Option<Vec<f32>>,
    vae_means: Option<Vec<f32>>,
    vae_metrics: Option<Metrics>,
    gan_metrics: Option<Metrics>,
}

/// The data every seed is scored on.
struct Real {
    test: Images,
    /// The reference: the first test images, in [0, 1] pixels...
    pixels: Vec<f32>,
    /// ... and in the classifier's feature space.
    features: Vec<f32>,
}

impl Real {
    /// How many test images the reference holds.
    fn n_ref(&self) -> usize {
        self.pixels.len() / PIXELS
    }
}

fn elapsed(t: Instant) -> String {
    format!("{:.0} s", t.elapsed().as_secs_f64())
}

/// Run the comparison on `gpu` (the classifier and scoring; each model
/// trains on a device of its own so its peak memory is its own). Writes
/// everything into `opts.out`, the report last; returns the report.
pub fn compare(gpu: &Gpu, opts: &CompareOptions) -> Result<Report> {
    let t0 = Instant::now();
    check_options(opts)?;
    let (samples, iwae_images) = opts.sizes();
    // Fail fast: wrong checkpoints, missing data or classifier.
    let loaded_vae = opts
        .vae_ckpt
        .as_deref()
        .map(|p| load_vae(gpu, p))
        .transpose()?;
    let loaded_gan = opts
        .gan_ckpt
        .as_deref()
        .map(|p| load_gan(gpu, p))
        .transpose()?;
    if loaded_vae.is_none() {
        opts.preset.vae()?;
    }
    let classifier = Classifier::new(
        gpu,
        ClassifierConfig {
            batch: 1,
            adam: AdamConfig::keras(1e-3),
            seed: 0,
        },
    )?;
    classifier.restore(gpu, &Checkpoint::load(&opts.classifier)?, &opts.classifier)?;
    let test = data::load(data::Dataset::Mnist, &opts.data_dir, Split::Test, None)?;
    let train = data::load(
        data::Dataset::Mnist,
        &opts.data_dir,
        Split::Train,
        Some(samples),
    )?;
    if train.len() < samples {
        return Err(invalid(format!(
            "--samples {samples}: only {} training images for the baseline",
            train.len()
        )));
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::data(&opts.out, format!("cannot create output folder: {e}")))?;
    for f in [REPORT_MD, REPORT_JSON] {
        let _ = std::fs::remove_file(opts.out.join(f));
    }

    eprintln!("compare: scoring the real-data baselines ({samples} images each)");
    let pixels = to_unit(&test.pixels[..samples.min(test.len()) * PIXELS]);
    let ref_c = classify(gpu, &classifier, &pixels)?;
    let mut figs = Figures::default();
    own_figures(&mut figs, Column::TestSet, &ref_c, &pixels)?;
    let real = Real {
        test,
        pixels,
        features: ref_c.features,
    };
    baselines(gpu, &classifier, &real, &train, samples, &mut figs)?;
    eprintln!("  done at {}", elapsed(t0));

    let mut pics = Pictures::default();
    let mut sources = (String::new(), String::new());
    for seed in 0..opts.seeds {
        eprintln!("compare: seed {seed} of {}", opts.seeds);
        let first = seed == 0;
        let s = vae_seed(
            gpu,
            opts,
            seed,
            loaded_vae.as_ref(),
            &real,
            iwae_images,
            samples,
        )?;
        score(
            gpu,
            &classifier,
            &real.features,
            &mut figs,
            Column::Vae,
            &s.samples,
        )?;
        let draws = bernoulli_draws(&s.samples, 2000 + seed as u64);
        score(
            gpu,
            &classifier,
            &real.features,
            &mut figs,
            Column::VaeBernoulli,
            &draws,
        )?;
        s.push_into(&mut figs, gpu, &classifier, Column::Vae)?;
        sources.0 = s.source.clone();
        if first {
            pics.vae_samples = s.samples;
            pics.vae_draws = draws;
            pics.vae_grid = s.grid;
            pics.vae_means = s.means;
            pics.vae_metrics = s.metrics;
        }
        eprintln!("  VAE scored at {}", elapsed(t0));
        let s = gan_seed(gpu, opts, seed, loaded_gan.as_ref(), samples)?;
        score(
            gpu,
            &classifier,
            &real.features,
            &mut figs,
            Column::Gan,
            &s.samples,
        )?;
        s.push_into(&mut figs, gpu, &classifier, Column::Gan)?;
        sources.1 = s.source.clone();
        if first {
            pics.gan_samples = s.samples;
            pics.gan_grid = s.grid;
            pics.gan_metrics = s.metrics;
        }
        eprintln!("  GAN scored at {}", elapsed(t0));
    }

    write_pictures(&opts.out, &pics, &real.test)?;
    let enough = sufficiency(opts.preset.name(), opts.seeds);
    let report = Report {
        adapter: AdapterDesc::of(gpu),
        preset: opts.preset.name().into(),
        seeds: opts.seeds,
        samples,
        reference_images: real.n_ref(),
        iwae_images,
        iwae_k: opts.iwae_k,
        vae_source: sources.0,
        gan_source: sources.1,
        verdicts: verdicts(&figs, &enough),
        figures: figs,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_report(&opts.out, &report)?;
    Ok(report)
}

/// Scores of the baselines: real training images, noise, a constant image,
/// one repeated digit.
fn baselines(
    gpu: &Gpu,
    classifier: &Classifier,
    real: &Real,
    train: &Images,
    n: usize,
    figs: &mut Figures,
) -> Result<()> {
    let r = &real.features;
    let train_px = to_unit(&train.pixels[..n * PIXELS]);
    score(gpu, classifier, r, figs, Column::TestVsTrain, &train_px)?;
    let first: Vec<f32> = train_px[..PIXELS].to_vec();
    drop(train_px);
    let noise = Philox::new(0x5eed, 10).uniform_cpu(0, n * PIXELS);
    score(gpu, classifier, r, figs, Column::UniformNoise, &noise)?;
    drop(noise);
    let px = &real.pixels;
    let grey = (px.iter().map(|&v| v as f64).sum::<f64>() / px.len() as f64) as f32;
    score(
        gpu,
        classifier,
        r,
        figs,
        Column::ConstantImage,
        &vec![grey; n * PIXELS],
    )?;
    let repeated: Vec<f32> = first.iter().copied().cycle().take(n * PIXELS).collect();
    score(gpu, classifier, r, figs, Column::RepeatedDigit, &repeated)?;
    Ok(())
}

/// One model's outputs for one seed, in [0, 1] pixels.
struct ModelSeed {
    samples: Vec<f32>,
    /// The decoded 20x20 prior grid (2-D latents only).
    grid: Option<Vec<f32>>,
    /// The reference test images' latent means (VAE).
    means: Option<Vec<f32>>,
    metrics: Option<Metrics>,
    /// Trained in this run (with its folder), or the checkpoint loaded.
    source: String,
    /// Figures measured on the model's own device.
    own: Vec<(Figure, f64)>,
}

impl ModelSeed {
    /// Push the model's own figures, and classify its latent grid.
    fn push_into(&self, figs: &mut Figures, gpu: &Gpu, c: &Classifier, col: Column) -> Result<()> {
        for &(f, v) in &self.own {
            figs.push(col, f, v);
        }
        if let Some(m) = &self.metrics {
            training_figures(figs, col, m);
        }
        if let Some(g) = &self.grid {
            let labels = classify(gpu, c, g)?.labels;
            figs.push(
                col,
                Figure::LatentPurity,
                latent::neighbour_purity(&labels, GRID)?,
            );
            figs.push(
                col,
                Figure::LatentDigits,
                latent::distinct_classes(&labels)? as f64,
            );
        }
        Ok(())
    }
}

/// Where a model comes from, and what `measure` learns from it: the
/// loaded checkpoint on the main device (with `metrics.json` beside it, if
/// any), or a model trained now by `train` on a device of its own (so the
/// run's peak memory is its alone).
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
            let own = open_gpu()?;
            let (m, metrics) = train(&own)?;
            let source = format!("trained: {}", trained_in.display());
            measure(&own, &m, Some(metrics), source)
        }
    }
}

/// Train (or take the loaded) VAE of `seed` and measure it.
fn vae_seed(
    gpu: &Gpu,
    opts: &CompareOptions,
    seed: usize,
    loaded: Option<&Vae>,
    real: &Real,
    iwae_images: usize,
    samples: usize,
) -> Result<ModelSeed> {
    let t = Instant::now();
    let run = VaeRun {
        common: opts.run_options(seed, "vae"),
        binarize: false,
    };
    let from_ckpt = loaded.zip(opts.vae_ckpt.as_deref());
    let train = |g: &Gpu| train_vae(g, &run);
    with_model(
        gpu,
        from_ckpt,
        train,
        &run.common.out,
        |g, vae, metrics, source| {
            let mut own = vec![(Figure::Params, vae.param_count() as f64)];
            // The last epoch's test ELBO of a run trained here; computed afresh
            // for a loaded checkpoint.
            let elbo = match metrics.as_ref().and_then(|m| m.epochs.last()?.test_loss) {
                Some(l) if loaded.is_none() => l,
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
        binarize: vae.config.binarize,
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
fn gan_seed(
    gpu: &Gpu,
    opts: &CompareOptions,
    seed: usize,
    loaded: Option<&Gan>,
    samples: usize,
) -> Result<ModelSeed> {
    let run = GanRun {
        common: opts.run_options(seed, "gan"),
        lr_d: None,
        head: None,
    };
    let from_ckpt = loaded.zip(opts.gan_ckpt.as_deref());
    let train = |g: &Gpu| train_gan(g, &run);
    with_model(
        gpu,
        from_ckpt,
        train,
        &run.common.out,
        |g, gan, metrics, source| {
            let unit =
                |v: Vec<f32>| -> Vec<f32> { v.into_iter().map(|x| (x + 1.0) * 0.5).collect() };
            let samples_px = unit(gan.sample(g, samples, 1000 + seed as u64)?);
            let grid = (gan.config.latent == 2)
                .then(|| gan.generate(g, &prior_grid(GRID)).map(unit))
                .transpose()?;
            Ok(ModelSeed {
                samples: samples_px,
                grid,
                means: None,
                metrics,
                source,
                own: vec![(Figure::Params, gan.param_count() as f64)],
            })
        },
    )
}

/// Rounded to bytes, for the IDX sample files.
fn to_bytes(px: &[f32]) -> Vec<u8> {
    px.iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Sample grids side by side, latent grids and scatter, loss curves, and
/// the samples as IDX files (the first seed's).
fn write_pictures(out: &Path, p: &Pictures, test: &Images) -> Result<()> {
    const SPACER: f32 = 0.25;
    let tile = |set: &[f32], i: usize| -> Vec<f32> {
        set.get(i * PIXELS..(i + 1) * PIXELS)
            .map(|t| t.to_vec())
            .unwrap_or_else(|| vec![SPACER; PIXELS])
    };
    let mut side = Vec::new();
    for r in 0..10 {
        for (k, set) in [&p.vae_samples, &p.vae_draws, &p.gan_samples]
            .iter()
            .enumerate()
        {
            if k > 0 {
                side.extend(vec![SPACER; PIXELS]);
            }
            for c in 0..10 {
                side.extend(tile(set, r * 10 + c));
            }
        }
    }
    save_grid(&out.join("samples.png"), &side, 28, 10, 32, 0.0, 1.0)?;
    for (name, grid) in [("vae", &p.vae_grid), ("gan", &p.gan_grid)] {
        if let Some(g) = grid {
            save_grid(
                &out.join(format!("latent_grid_{name}.png")),
                g,
                28,
                GRID,
                GRID,
                0.0,
                1.0,
            )?;
        }
    }
    if let Some(m) = &p.vae_means {
        let pts: Vec<(f32, f32)> = m.chunks(2).map(|c| (c[0], c[1])).collect();
        scatter_by_class(
            &out.join("latent_scatter_vae.png"),
            "VAE: test images' latent means",
            &pts,
            &test.labels[..pts.len()],
        )?;
    }
    if let Some(m) = &p.vae_metrics {
        crate::train::vae_run::plot_losses(m, &out.join("loss_vae.png"))?;
    }
    if let Some(m) = &p.gan_metrics {
        crate::train::gan_run::plot_losses(m, &out.join("loss_gan.png"))?;
    }
    for (name, set) in [("vae", &p.vae_samples), ("gan", &p.gan_samples)] {
        write_idx(
            &out.join(format!("{name}-samples-idx3-ubyte")),
            &[set.len() / PIXELS, 28, 28],
            &to_bytes(set),
        )?;
    }
    Ok(())
}
