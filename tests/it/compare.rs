//! The comparison end to end on the GPU (tiny preset): every promised file
//! is written and well formed, the report says "no verdict" for a short
//! run, the sample IDX files read back, loaded checkpoints are scored as
//! trained ones, and bad input is refused before anything is written.

use std::path::Path;

use crate::common::*;
use vae_vs_gan::compare::options::default_classifier;
use vae_vs_gan::compare::verdict::CLAIMS;
use vae_vs_gan::compare::{bernoulli_draws, REPORT_JSON, REPORT_MD};
use vae_vs_gan::compare::{compare, Column, CompareOptions, Figure};
use vae_vs_gan::data::read_idx;
use vae_vs_gan::train::Preset;

fn tiny(out: &Path) -> CompareOptions {
    let mut o = CompareOptions::new(Preset::Tiny, out);
    // the library's default paths are relative to the working directory
    o.classifier = Some(root().join(o.classifier()));
    o.data_dir = Some(root().join(o.data_dir()));
    o.iwae_k = 8;
    o
}

#[test]
fn compare_tiny_writes_the_whole_report() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("cmp");
    // Two seeds: every model figure is a mean of two values, every
    // baseline of one (baselines do not depend on the seed).
    let mut two = tiny(&out);
    two.seeds = 2;
    let r = compare(g, &two).unwrap();
    for m in ["vae", "gan"] {
        assert!(out
            .join(format!("seed-1/{m}/checkpoint.safetensors"))
            .is_file());
    }
    let fid_stat = |c| r.figures.stat(c, Figure::Fid).unwrap();
    assert_eq!((fid_stat(Column::Vae).n, fid_stat(Column::Gan).n), (2, 2));
    assert_eq!(fid_stat(Column::TestVsTrain).n, 1);
    let v = r.figures.values(Column::Vae, Figure::Fid).unwrap();
    assert_ne!(v[0], v[1], "two seeds train two different VAEs");
    for f in [
        REPORT_MD,
        REPORT_JSON,
        "samples.png",
        "latent_grid_vae.png",
        "latent_grid_gan.png",
        "latent_scatter_vae.png",
        "loss_vae.png",
        "loss_gan.png",
        "seed-0/vae/checkpoint.safetensors",
        "seed-0/gan/checkpoint.safetensors",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for m in ["vae", "gan"] {
        let idx = read_idx(&out.join(format!("{m}-samples-idx3-ubyte")), None).unwrap();
        assert_eq!(idx.dims, vec![64, 28, 28], "{m}");
        assert!(idx.data.iter().any(|&b| b > 0), "{m} samples are all black");
    }
    // Every model and baseline figure is there and finite.
    let f = &r.figures;
    for (c, fig) in [
        (Column::Vae, Figure::Fid),
        (Column::Vae, Figure::IwaeNll),
        (Column::Vae, Figure::TestNegElbo),
        (Column::Vae, Figure::LatentKnnAccuracy),
        (Column::Vae, Figure::LatentPurity),
        (Column::Vae, Figure::TrainImagesPerSec),
        (Column::VaeBernoulli, Figure::Precision),
        (Column::Gan, Figure::Recall),
        (Column::Gan, Figure::LatentDigits),
        (Column::Gan, Figure::PeakGpuMib),
        (Column::Vae, Figure::StepImagesPerSec),
        (Column::Gan, Figure::StepImagesPerSec),
        (Column::Vae, Figure::StepPeakMib),
        (Column::Gan, Figure::StepPeakMib),
        (Column::Vae, Figure::GemmMflopPerImage),
        (Column::Gan, Figure::GemmMflopPerImage),
        (Column::TestVsTrain, Figure::Fid),
        (Column::TestSet, Figure::Sharpness),
        (Column::UniformNoise, Figure::InceptionScore),
        (Column::RepeatedDigit, Figure::Recall),
    ] {
        let s = f
            .stat(c, fig)
            .unwrap_or_else(|| panic!("{c:?} {fig:?} missing"));
        assert!(s.mean.is_finite(), "{c:?} {fig:?} = {}", s.mean);
    }
    // The bound is tighter than the ELBO (k = 8, 4 images: a loose check).
    let (elbo, iwae) = (
        f.stat(Column::Vae, Figure::TestNegElbo).unwrap().mean,
        f.stat(Column::Vae, Figure::IwaeNll).unwrap().mean,
    );
    assert!(iwae < elbo + 20.0, "IWAE {iwae} vs ELBO {elbo}");
    // Negative controls: one repeated digit covers nothing; real training
    // images are far closer to the test set than noise.
    assert_eq!(
        f.stat(Column::RepeatedDigit, Figure::Recall).unwrap().mean,
        0.0
    );
    let fid = |c| f.stat(c, Figure::Fid).unwrap().mean;
    assert!(fid(Column::TestVsTrain) < 0.5 * fid(Column::UniformNoise));

    let md = std::fs::read_to_string(out.join(REPORT_MD)).unwrap();
    assert!(md.contains("| figure | unit |"), "{md}");
    // The summary opens the report: three lines, verdicts first.
    let summary: Vec<&str> = md.lines().skip(2).take(3).collect();
    assert!(
        summary[0].starts_with("- **Verdicts**: claim 1: no verdict"),
        "{md}"
    );
    assert!(
        summary[0].contains("Why none: insufficient training"),
        "{md}"
    );
    assert!(
        summary[1].starts_with("- **Where**: ") && summary[1].contains("MNIST"),
        "{md}"
    );
    assert!(
        summary[2].starts_with("- **Cost**: ") && summary[2].contains("batch 8"),
        "{md}"
    );
    for section in [
        "## How to read this",
        "## Settings",
        "## Differences from the article",
        "## What the figures are",
    ] {
        assert!(md.contains(section), "{section} missing: {md}");
    }
    // The settings come from the checkpoints: both presets, both batch
    // sizes, the GAN's head.
    assert!(md.contains("| preset | tiny | tiny |"), "{md}");
    assert!(md.contains("| batch size | 8 | 8 |"), "{md}");
    assert!(
        md.contains("| discriminator head | – | global_max_pool |"),
        "{md}"
    );
    assert!(
        md.contains(
            "| optimizer constants | Adam: beta1 0.9, beta2 0.999, eps 1e-7 (Keras epsilon) |"
        ),
        "{md}"
    );
    assert!(md.contains(" ± "), "two seeds show mean ± std: {md}");
    assert!(
        md.contains("llvmpipe") || md.contains(&g.info.name),
        "adapter named"
    );
    assert_eq!(
        md.matches("insufficient training: no verdict (tiny preset)")
            .count(),
        4,
        "once per claim about trained models and once in the summary: {md}"
    );
    // The cost claim needs no training: decided from the probe's timings.
    let cost_line = md
        .lines()
        .find(|l| l.starts_with(&format!("- **{}**: ", CLAIMS[1])))
        .expect("the cost claim's line");
    assert!(
        ["supported", "not supported", "mixed"]
            .iter()
            .any(|o| cost_line.contains(&format!(": {o} (the training steps timed at batch 8 on "))),
        "{cost_line}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(REPORT_JSON)).unwrap()).unwrap();
    assert_eq!(json["preset"], "tiny");
    assert!(json["figures"]["gan"]["fid"]["mean"]
        .as_f64()
        .unwrap()
        .is_finite());
    assert_eq!(json["verdicts"].as_array().unwrap().len(), 4);
    assert_eq!(json["dataset"], "mnist");
    assert_eq!(json["cost_batch"], 8, "the tiny preset's batch");
    assert!(
        json["figures"]["gan"]["step_peak_mib"]["mean"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(json["settings"].as_array().unwrap().len() >= 6);

    // Running again into the same folder is refused; nothing is touched.
    let before = std::fs::read(out.join(REPORT_JSON)).unwrap();
    let e = compare(g, &tiny(&out))
        .expect_err("must refuse")
        .to_string();
    assert!(e.contains("--overwrite") && e.contains("--resume"), "{e}");
    assert_eq!(std::fs::read(out.join(REPORT_JSON)).unwrap(), before);

    // --resume reuses the finished runs (no epoch trained: the checkpoints
    // stay byte for byte) and scores them to the same figures, training
    // speed and memory carried over from their metrics.json.
    let ck = out.join("seed-1/gan/checkpoint.safetensors");
    let ck_before = std::fs::read(&ck).unwrap();
    let mut again = two.clone();
    again.resume = true;
    let r3 = compare(g, &again).unwrap();
    assert_eq!(std::fs::read(&ck).unwrap(), ck_before, "nothing retrained");
    for (c, fig) in [
        (Column::Vae, Figure::Fid),
        (Column::Gan, Figure::Fid),
        (Column::Vae, Figure::IwaeNll),
        (Column::Gan, Figure::TrainImagesPerSec),
        (Column::Gan, Figure::PeakGpuMib),
    ] {
        assert_eq!(
            r.figures.values(c, fig),
            r3.figures.values(c, fig),
            "{c:?} {fig:?}"
        );
    }
    again.overwrite = true;
    let e = compare(g, &again).expect_err("must refuse").to_string();
    assert!(e.contains("choose one"), "{e}");

    // Loading the trained checkpoints scores them without training; a
    // checkpoint of the other model is refused before anything is written.
    let loaded = d.path().join("loaded");
    let mut o = tiny(&loaded);
    o.vae_ckpt = Some(out.join("seed-0/vae/checkpoint.safetensors"));
    o.gan_ckpt = Some(out.join("seed-0/gan/checkpoint.safetensors"));
    let r2 = compare(g, &o).unwrap();
    assert!(!loaded.join("seed-0").exists(), "nothing trained");
    // The same weights, sample seed and reference: seed 0's figures again.
    for (c, fig) in [
        (Column::Gan, Figure::Params),
        (Column::Gan, Figure::Fid),
        (Column::Vae, Figure::Fid),
    ] {
        let (a, b) = (
            r.figures.values(c, fig).unwrap()[0],
            r2.figures.values(c, fig).unwrap()[0],
        );
        assert!(
            (a - b).abs() <= 1e-9 * a.abs(),
            "{c:?} {fig:?}: trained {a}, loaded {b}"
        );
    }
    // metrics.json beside the checkpoint gives the training figures.
    assert!(r2
        .figures
        .stat(Column::Gan, Figure::TrainImagesPerSec)
        .is_some());

    let wrong = d.path().join("wrong");
    let mut o = tiny(&wrong);
    o.vae_ckpt = Some(out.join("seed-0/gan/checkpoint.safetensors"));
    let e = compare(g, &o).expect_err("must refuse").to_string();
    assert!(e.contains("not the VAE"), "{e}");
    assert!(!wrong.join(REPORT_JSON).exists() && !wrong.join("seed-0").exists());

    // A comparison that fails once under way (--overwrite, then a seed's
    // run folder that is a file) keeps the earlier report as it was: the
    // new one would replace it atomically, last.
    let (md, js) = (
        std::fs::read(out.join(REPORT_MD)).unwrap(),
        std::fs::read(out.join(REPORT_JSON)).unwrap(),
    );
    let vae_dir = out.join("seed-0/vae");
    std::fs::rename(&vae_dir, out.join("seed-0/vae.kept")).unwrap();
    std::fs::write(&vae_dir, b"in the way").unwrap();
    let mut over = two.clone();
    over.overwrite = true;
    let e = compare(g, &over).expect_err("must fail").to_string();
    assert!(e.contains("is a file"), "{e}");
    assert_eq!(std::fs::read(out.join(REPORT_MD)).unwrap(), md);
    assert_eq!(std::fs::read(out.join(REPORT_JSON)).unwrap(), js);
}

#[test]
fn compare_refuses_bad_options_before_writing() {
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    // --out is a file: kept as it was.
    let file = d.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    let e = compare(g, &tiny(&file))
        .expect_err("must refuse")
        .to_string();
    assert!(e.contains("--out is a file"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    let out = d.path().join("o");
    for (set, want) in [
        (
            (|o: &mut CompareOptions| o.samples = Some(10_000_000)) as fn(&mut CompareOptions),
            "--samples 10000000",
        ),
        (|o| o.samples = Some(3), "--samples 3"),
        (|o| o.seeds = 0, "--seeds"),
        (
            |o| o.preset = vae_vs_gan::train::Preset::Dcgan,
            "dcgan is a GAN preset and has no VAE: pass --vae-preset",
        ),
        (|o| o.iwae_k = 0, "--iwae-k"),
        (|o| o.iwae_k = 1_000_000_000, "--iwae-k 1000000000 needs"),
        (|o| o.iwae_images = Some(20_000), "--iwae-images"),
        (
            |o| {
                o.seeds = 2;
                o.vae_ckpt = Some("x.safetensors".into());
            },
            "--seeds must be 1",
        ),
        (
            |o| o.vae_ckpt = Some("/nonexistent/vae.safetensors".into()),
            "nonexistent",
        ),
        (
            |o| o.classifier = Some("/nonexistent/c.safetensors".into()),
            "nonexistent",
        ),
        (|o| o.preset = Preset::Dcgan, "dcgan"),
        (|o| o.cost_batch = 0, "--cost-batch 0"),
        (|o| o.gan.label_noise = -0.5, "--label-noise -0.5"),
        (|o| o.gan.label_noise = f32::NAN, "--label-noise NaN"),
        (|o| o.cost_batch = 1000, "--cost-batch 1000"),
        (
            // MNIST's classifier for Fashion-MNIST: refused by name.
            |o| {
                o.dataset = vae_vs_gan::data::Dataset::Fashion;
                o.data_dir = None;
            },
            "trained on mnist, not fashion",
        ),
        (
            // Fashion-MNIST's own classifier, but no files: how to get them.
            |o| {
                let fashion = vae_vs_gan::data::Dataset::Fashion;
                o.dataset = fashion;
                o.classifier = Some(root().join(default_classifier(fashion)));
                o.data_dir = Some("/nonexistent/fashion".into());
            },
            "apt-get install dataset-fashion-mnist",
        ),
    ] {
        let mut o = tiny(&out);
        set(&mut o);
        let e = compare(g, &o).expect_err("must refuse").to_string();
        assert!(e.contains(want), "{want}: {e}");
        assert!(!out.exists(), "{want}: wrote {}", out.display());
    }
    // An --out that cannot be written (its parent is a file) is refused
    // before any work, not after the scoring.
    let e = compare(g, &tiny(&file.join("run")))
        .expect_err("must refuse")
        .to_string();
    assert!(e.contains("cannot write there"), "{e}");
}

#[test]
fn bernoulli_draws_follow_the_means() {
    let means = [0.0f32, 1.0, 0.25];
    let rows: Vec<f32> = means.iter().copied().cycle().take(3 * 20_000).collect();
    let d = bernoulli_draws(&rows, 4);
    assert!(d.iter().all(|&v| v == 0.0 || v == 1.0));
    for (j, &p) in means.iter().enumerate() {
        let m = d.iter().skip(j).step_by(3).sum::<f32>() / 20_000.0;
        // 4 standard deviations of a mean of 20,000 draws (<= 0.0035).
        assert!((m - p).abs() <= 0.014, "p {p}: mean {m}");
    }
    assert_eq!(d, bernoulli_draws(&rows, 4), "deterministic per seed");
    assert_ne!(d, bernoulli_draws(&rows, 5));
}

/// A VAE checkpoint keeps its pixel convention: one trained on binarised
/// pixels is loaded (and scored) binarised, one trained on grey levels not.
#[test]
fn loaded_vae_keeps_its_binarisation() {
    use vae_vs_gan::compare::load_vae;
    use vae_vs_gan::train::vae_run::{train_vae, VaeRun};
    let g = gpu();
    let d = tempfile::tempdir().unwrap();
    for binarize in [true, false] {
        let out = d.path().join(format!("b{binarize}"));
        let mut run = VaeRun::new(Preset::Tiny, &out);
        run.options.binarize = binarize;
        run.common.epochs = Some(1);
        run.common.plots = false;
        train_vae(g, &run).unwrap();
        let vae = load_vae(g, &out.join("checkpoint.safetensors")).unwrap();
        assert_eq!(vae.config.options.binarize, binarize);
        assert_eq!(vae.config.latent, 2);
    }
}

/// Each model trains with its own preset (`--vae-preset`, `--gan-preset`,
/// both `--preset` by default); the report names both, and a short preset
/// on either side means no verdict.
#[test]
fn compare_takes_a_preset_per_model() {
    use vae_vs_gan::train::Preset;
    let d = tempfile::tempdir().unwrap();
    let mut o = CompareOptions::new(Preset::Article, d.path());
    assert_eq!(
        (o.vae_preset(), o.gan_preset()),
        (Preset::Article, Preset::Article)
    );
    assert_eq!(o.preset_label(), "article");
    o.gan_preset = Some(Preset::Dcgan);
    assert_eq!(o.preset_label(), "vae article, gan dcgan");
    assert_eq!(o.weakest_preset(), Preset::Article, "both full presets");
    o.vae_preset = Some(Preset::Smoke);
    assert_eq!(o.weakest_preset(), Preset::Smoke, "a smoke VAE: no verdict");
    let gan = o.run_options(0, "gan", None).unwrap();
    let vae = o.run_options(0, "vae", None).unwrap();
    assert_eq!((vae.preset, gan.preset), (Preset::Smoke, Preset::Dcgan));
}

#[test]
fn settings_rows_follow_the_checkpoints() {
    use std::collections::BTreeMap;
    use vae_vs_gan::compare::settings::rows;
    let m = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let vae = m(&[
        ("model", "vae"),
        ("preset", "article"),
        ("batch", "32"),
        ("lr", "0.0001"),
        ("metrics", "{...}"),
        ("zeta", "1"),
    ]);
    let gan = m(&[
        ("model", "gan"),
        ("preset", "dcgan"),
        ("batch", "256"),
        ("d_head", "flatten"),
    ]);
    let r = rows(&vae, &gan);
    let names: Vec<&str> = r.iter().map(|s| s.name.as_str()).collect();
    // Known keys in their order, unknown ones after under their own name;
    // the model's name and the run's history are not settings.
    assert_eq!(
        names,
        [
            "preset",
            "batch size",
            "Adam learning rate",
            "discriminator head",
            "zeta"
        ]
    );
    assert_eq!((r[1].vae.as_str(), r[1].gan.as_str()), ("32", "256"));
    assert_eq!((r[3].vae.as_str(), r[3].gan.as_str()), ("–", "flatten"));
}

/// The differences from the article are in README.md as in every report:
/// one text, so they cannot drift apart.
#[test]
fn readme_lists_the_differences_from_the_article() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let text = vae_vs_gan::compare::report::DIFFERENCES;
    assert!(text.starts_with("## Differences from the article"));
    assert!(
        readme.contains(text.trim()),
        "README.md must hold src/compare/differences.md verbatim"
    );
}
