//! A whole VAE training run (what `examples/train_vae.rs` runs): data,
//! model, resume, the epoch loop, per-epoch outputs and the final plots.
//! In the library so tests can run it end to end.

use std::path::Path;

use crate::data::GpuDataset;
use crate::data::{self, Split, PIXELS};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::preset::run_metadata;
use crate::models::prior::GRID;
use crate::models::vae::{Vae, VaeConfig, VaeOptions, SLOT_KL, SLOT_RECON};
use crate::optim::adam::AdamConfig;
use crate::report::{line_plot, save_grid, scatter_by_class};
use crate::train::budget::PointFigures;
use crate::train::session::{check_out, check_run, create_out, prior_grid, RunOptions, Session};
use crate::train::{EpochMetrics, Metrics, Preset};

/// The name of a curve point's test negative ELBO (500 test images, as
/// each epoch's), the comparison's `test_neg_elbo` figure.
pub const POINT_TEST_NEG_ELBO: &str = "test_neg_elbo";

/// A VAE run: the common options and the VAE's own.
#[derive(Clone, Debug)]
pub struct VaeRun {
    pub common: RunOptions,
    /// The VAE's options (binarised pixels, the KL estimator).
    pub options: VaeOptions,
}

impl VaeRun {
    /// The preset's run into `out`.
    pub fn new(preset: Preset, out: &Path) -> VaeRun {
        VaeRun {
            common: RunOptions::new(preset, out),
            options: VaeOptions::default(),
        }
    }
}

/// Train (or continue, with `resume`) and return the metrics; every epoch
/// writes its sample grid, `metrics.json` and the checkpoint into `out`.
pub fn train_vae(gpu: &Gpu, run: &VaeRun) -> Result<(Vae, Metrics)> {
    train_vae_scored(gpu, run, &mut |_, _| Ok(PointFigures::new()))
}

/// [`train_vae`], with `score` measuring the model at each point of the
/// run's curve ([`RunOptions::curve`]); the point also gets the test
/// negative ELBO ([`POINT_TEST_NEG_ELBO`]).
pub fn train_vae_scored(
    gpu: &Gpu,
    run: &VaeRun,
    score: &mut dyn FnMut(&Gpu, &Vae) -> Result<PointFigures>,
) -> Result<(Vae, Metrics)> {
    let opts = &run.common;
    let (preset, out) = (opts.preset, opts.out.as_path());
    let p = preset.vae()?;
    let dataset = opts.dataset;
    let dir = opts.data_dir();
    // what the device held before this run: not this run's memory
    let others = gpu.allocated_bytes();
    check_out(out, opts.resume, opts.overwrite)?;
    let config = VaeConfig {
        latent: opts.latent_dim.unwrap_or(p.latent),
        batch: opts.batch_size.unwrap_or(p.batch),
        adam: AdamConfig::keras(opts.lr.unwrap_or(p.lr)),
        seed: opts.seed,
        options: run.options.clone(),
    };
    let epochs = opts.epochs.unwrap_or(p.epochs);
    check_run(
        opts,
        epochs,
        config.batch,
        config.latent,
        &[("--lr", config.adam.lr)],
    )?;
    let train = data::load(
        dataset,
        &dir,
        Split::Train,
        opts.train_images.or(p.train_images),
    )?;
    let test = data::load(dataset, &dir, Split::Test, p.test_images)?;
    let train_gpu = GpuDataset::upload(gpu, &train, "train")?;
    let test_gpu = GpuDataset::upload(gpu, &test, "test")?;
    let vae = Vae::new(gpu, config.clone())?;
    eprintln!(
        "VAE: latent {}, batch {}, lr {}, KL {}, {} parameters; {} training and {} test images of {}",
        config.latent,
        config.batch,
        config.adam.lr,
        config.options.kl.name(),
        vae.param_count(),
        train.len(),
        test.len(),
        dataset.name()
    );

    let meta = opts.with_common(run_metadata(
        preset,
        train.len(),
        dataset,
        config.settings(),
    ));
    let mut session = Session::start(
        gpu,
        out,
        opts.resume,
        "vae",
        preset,
        vae.param_count(),
        meta,
        |ck, path| vae.restore(gpu, ck, path),
    )?
    .excluding(others);
    let ts = vae.train_step(gpu, &session.state, &train_gpu)?;
    // Every refusal (the checkpoint's settings, a batch larger than the
    // data) came before this: a refused run leaves no folder behind.
    create_out(out, opts.resume, opts.overwrite)?;
    let schedule = opts.schedule(config.seed, config.batch, epochs, &["recon", "kl"]);
    session.run_epochs(
        &ts.step,
        &train_gpu,
        schedule,
        || vae.checkpoint(gpu),
        |epoch, run| {
            let train_loss = run.mean_losses[SLOT_RECON] + run.mean_losses[SLOT_KL];
            let test_loss = vae.test_loss(gpu, &test_gpu, 500)?;
            println!("Epoch: {}, Loss: {:.4}", epoch + 1, test_loss);
            eprintln!(
                "  train loss {train_loss:.4} (recon {:.4}, kl {:.4}), {:.1} s, {:.0} images/s",
                run.mean_losses[SLOT_RECON],
                run.mean_losses[SLOT_KL],
                run.seconds,
                run.images_per_sec
            );
            if !test_loss.is_finite() {
                return Err(Error::NonFinite {
                    loss: "test".into(),
                    value: test_loss as f32,
                    epoch: epoch + 1,
                    step: run.steps,
                    global_step: run.global_steps,
                });
            }
            save_grid(
                &out.join(format!("samples_epoch_{:03}.png", epoch + 1)),
                &vae.sample(gpu, 100, config.seed)?,
                28,
                10,
                10,
                0.0,
                1.0,
            )?;
            let m = EpochMetrics {
                epoch: epoch + 1,
                train_loss: Some(train_loss),
                test_loss: Some(test_loss),
                seconds: run.seconds,
                images_per_sec: run.images_per_sec,
                ..Default::default()
            };
            Ok(m)
        },
        || {
            let mut figures = score(gpu, &vae)?;
            let elbo = vae.test_loss(gpu, &test_gpu, 500)?;
            figures.insert(POINT_TEST_NEG_ELBO.into(), elbo);
            Ok(figures)
        },
    )?;
    let metrics = session.metrics;
    if opts.plots {
        final_plots(gpu, &vae, &metrics, &test, out)?;
    }
    Ok((vae, metrics))
}

/// The training and test negative ELBO per epoch.
pub fn plot_losses(m: &Metrics, path: &Path) -> Result<()> {
    line_plot(
        path,
        "VAE negative ELBO",
        "epoch",
        "nats per image",
        &[
            ("train".into(), m.curve(|e| e.train_loss)),
            ("test".into(), m.curve(|e| e.test_loss)),
        ],
    )
}

/// Loss curves, test images vs reconstructions, and for a 2-D latent the
/// manifold and the scatter of the test set's latent means.
fn final_plots(gpu: &Gpu, vae: &Vae, m: &Metrics, test: &data::Images, out: &Path) -> Result<()> {
    plot_losses(m, &out.join("loss.png"))?;
    let n = test.len().min(10);
    let imgs = test.unit_pixels(n);
    let rec = vae.reconstruct(gpu, &imgs)?;
    let both: Vec<f32> = imgs.iter().chain(&rec).copied().collect();
    save_grid(&out.join("reconstructions.png"), &both, 28, 2, n, 0.0, 1.0)?;
    if vae.config.latent == 2 {
        save_grid(
            &out.join("latent_manifold.png"),
            &vae.decode(gpu, &prior_grid(GRID))?,
            28,
            20,
            20,
            0.0,
            1.0,
        )?;
        let k = test.len().min(5000);
        let all = test.unit_pixels(k);
        let mut means = Vec::with_capacity(2 * k);
        for chunk in all.chunks(500 * PIXELS) {
            means.extend(vae.encode(gpu, chunk)?.0);
        }
        let points: Vec<(f32, f32)> = means.chunks(2).map(|c| (c[0], c[1])).collect();
        scatter_by_class(
            &out.join("latent_scatter.png"),
            "test set latent means",
            &points,
            &test.labels[..k],
        )?;
    }
    Ok(())
}
