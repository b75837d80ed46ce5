//! The comparison run (what `examples/compare.rs` runs): train both models
//! per seed (or load them), sample, score everything against the real test
//! images, and write the report, pictures and sample files.

use std::time::Instant;

use crate::compare::cost::probe_data;
use crate::compare::curves::Curves;
use crate::compare::figures::{Column, Figures};
use crate::compare::load::{load_classifier, load_gan, load_vae};
use crate::compare::measure::{
    baselines, bernoulli_draws, elapsed, gan_seed, vae_seed, PointScorer, Reference, POINT_SAMPLES,
};
use crate::compare::options::{check_options, check_resumed_runs, invalid, CompareOptions};
use crate::compare::output::{write_pictures, Pictures};
use crate::compare::report::{write_report, Report};
use crate::compare::runs;
use crate::compare::score::{classify, own_figures, score};
use crate::compare::settings::settings;
use crate::compare::verdict::{sufficiency, verdicts, CLAIMS};
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::train::session::CHECKPOINT;
use crate::train::AdapterDesc;

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
        opts.vae_preset().vae()?;
    }
    let classifier = load_classifier(gpu, &opts.classifier(), opts.dataset)?;
    let dir = opts.data_dir();
    let test = data::load(opts.dataset, &dir, Split::Test, None)?;
    let train = data::load(opts.dataset, &dir, Split::Train, Some(samples))?;
    if train.len() < samples {
        return Err(invalid(format!(
            "--samples {samples}: only {} training images for the baseline",
            train.len()
        )));
    }
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| Error::data(&opts.out, format!("cannot create output folder: {e}")))?;
    // Before any run starts: the runs this comparison trains carry its id.
    let id = runs::begin(&opts.out, opts.resume)?;
    let id = id.as_deref();
    check_resumed_runs(opts, id)?;
    // An earlier report stays until the new one replaces it (atomically,
    // last): an interrupted comparison loses nothing already written.

    eprintln!("compare: scoring the real-data baselines ({samples} images each)");
    let pixels = test.unit_pixels(samples);
    let ref_c = classify(gpu, &classifier, &pixels)?;
    let mut figs = Figures::default();
    own_figures(&mut figs, Column::TestSet, &ref_c, &pixels)?;
    // The cost probes' images: the Wasserstein GAN's step reads one batch
    // per critic iteration (a loaded GAN's settings are its own).
    let critic_iterations = match &loaded_gan {
        Some(gan) => gan.config.critic_iterations(),
        None => opts.gan.wasserstein().map_or(1, |w| w.n_critic as usize),
    };
    let real = Reference {
        test,
        pixels,
        features: ref_c.features,
        probe: probe_data(gpu, &train, opts.cost_batch, critic_iterations)?,
        cost_batch: opts.cost_batch,
    };
    baselines(gpu, &classifier, &real, &train, samples, &mut figs)?;
    eprintln!("  done at {}", elapsed(t0));

    let mut pics = Pictures::default();
    let mut curves = Curves::default();
    let mut sources = (String::new(), String::new());
    for seed in 0..opts.seeds {
        eprintln!("compare: seed {seed} of {}", opts.seeds);
        let first = seed == 0;
        let points = PointScorer {
            classifier: &classifier,
            reference: &real.features,
            n: samples.min(POINT_SAMPLES),
            seed: 5000 + seed as u64,
        };
        let s = vae_seed(gpu, opts, seed, id, loaded_vae.as_ref(), &real, &points)?;
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
        curves.vae.push(s.curve());
        sources.0 = s.source.clone();
        if first {
            pics.vae_samples = s.samples;
            pics.vae_draws = draws;
            pics.vae_grid = s.grid;
            pics.vae_means = s.means;
            pics.vae_metrics = s.metrics;
        }
        eprintln!("  VAE scored at {}", elapsed(t0));
        let s = gan_seed(gpu, opts, seed, id, loaded_gan.as_ref(), &real, &points)?;
        score(
            gpu,
            &classifier,
            &real.features,
            &mut figs,
            Column::Gan,
            &s.samples,
        )?;
        s.push_into(&mut figs, gpu, &classifier, Column::Gan)?;
        curves.gan.push(s.curve());
        sources.1 = s.source.clone();
        if first {
            pics.gan_samples = s.samples;
            pics.gan_grid = s.grid;
            pics.gan_metrics = s.metrics;
        }
        eprintln!("  GAN scored at {}", elapsed(t0));
    }

    write_pictures(&opts.out, &pics, &real.test)?;
    let ckpt = |loaded: &Option<std::path::PathBuf>, model: &str| {
        loaded
            .clone()
            .unwrap_or_else(|| opts.seed_dir(0, model).join(CHECKPOINT))
    };
    let settings = settings(&ckpt(&opts.vae_ckpt, "vae"), &ckpt(&opts.gan_ckpt, "gan"))?;
    let curve_pictures = curves.write_pictures(&opts.out)?;
    let enough = sufficiency(
        opts.weakest_preset().name(),
        opts.seeds,
        opts.budget.is_some(),
    );
    let adapter = AdapterDesc::of(gpu);
    let when = if opts.budget.is_some() { "at" } else { "after" };
    let trained = format!("{when} {} on {}", opts.training_words(), adapter.name);
    let timed = format!(
        "the training steps timed at batch {} on {}",
        opts.cost_batch, adapter.name
    );
    let verdicts = verdicts(&figs, &enough)
        .into_iter()
        .map(|v| {
            let at = if v.claim == CLAIMS[1] {
                &timed
            } else {
                &trained
            };
            v.with_basis(at.clone())
        })
        .collect();
    let report = Report {
        adapter,
        training: opts.training_words(),
        curves,
        curve_pictures,
        dataset: opts.dataset.name().to_string(),
        preset: opts.preset_label(),
        settings,
        cost_batch: opts.cost_batch,
        seeds: opts.seeds,
        samples,
        reference_images: real.n_ref(),
        iwae_images,
        iwae_k: opts.iwae_k,
        vae_source: sources.0,
        gan_source: sources.1,
        verdicts,
        figures: figs,
        seconds: t0.elapsed().as_secs_f64(),
    };
    write_report(&opts.out, &report)?;
    Ok(report)
}
