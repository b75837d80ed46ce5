//! A whole GAN training run (what `examples/train_gan.rs` runs): data,
//! model, resume, the epoch loop, per-epoch outputs and the final plots.

use std::path::Path;

use crate::data::GpuDataset;
use crate::data::{self, Split};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::models::gan::{DHead, Gan, GanConfig, GanOptions, SLOT_D, SLOT_G};
use crate::models::preset::run_metadata;
use crate::models::prior::GRID;
use crate::optim::adam::AdamConfig;
use crate::report::{line_plot, save_grid};
use crate::train::budget::PointFigures;
use crate::train::session::{check_out, check_run, create_out, prior_grid, RunOptions, Session};
use crate::train::{EpochMetrics, Metrics, Preset};

/// A GAN run: the common options and the GAN's own.
#[derive(Clone, Debug)]
pub struct GanRun {
    pub common: RunOptions,
    /// The discriminator's learning rate, overriding `common.lr`.
    pub lr_d: Option<f32>,
    /// The discriminator's head (default: the preset's).
    pub head: Option<DHead>,
    /// The GAN's options (label noise, fresh latents for G, ...).
    pub options: GanOptions,
}

impl GanRun {
    /// The preset's run into `out`.
    pub fn new(preset: Preset, out: &Path) -> GanRun {
        GanRun {
            common: RunOptions::new(preset, out),
            lr_d: None,
            head: None,
            options: GanOptions::default(),
        }
    }
}

/// Train (or continue, with `resume`) and return the metrics; every epoch
/// writes its sample grid, `metrics.json` and the checkpoint into `out`.
pub fn train_gan(gpu: &Gpu, run: &GanRun) -> Result<(Gan, Metrics)> {
    train_gan_scored(gpu, run, &mut |_, _| Ok(PointFigures::new()))
}

/// [`train_gan`], with `score` measuring the model at each point of the
/// run's curve ([`RunOptions::curve`]).
pub fn train_gan_scored(
    gpu: &Gpu,
    run: &GanRun,
    score: &mut dyn FnMut(&Gpu, &Gan) -> Result<PointFigures>,
) -> Result<(Gan, Metrics)> {
    let opts = &run.common;
    let (preset, out) = (opts.preset, opts.out.as_path());
    let p = preset.gan();
    let dir = opts.data_dir();
    // what the device held before this run: not this run's memory
    let others = gpu.allocated_bytes();
    check_out(out, opts.resume, opts.overwrite)?;
    run.options.check("train")?;
    if let (Some(_), Some(flag)) = (
        run.options.wasserstein(),
        [("--lr", opts.lr), ("--lr-d", run.lr_d)]
            .into_iter()
            .find_map(|(f, v)| v.map(|_| f)),
    ) {
        return Err(Error::invalid(
            "train",
            format!(
                "{flag} sets Adam's learning rate; the Wasserstein GAN trains with RMSProp: \
                 set its rate with --rmsprop-lr"
            ),
        ));
    }
    let lr_g = opts.lr.unwrap_or(p.lr_g);
    let config = GanConfig {
        latent: opts.latent_dim.unwrap_or(p.latent),
        batch: opts.batch_size.unwrap_or(p.batch),
        adam_g: AdamConfig::keras(lr_g),
        adam_d: AdamConfig::keras(run.lr_d.or(opts.lr).unwrap_or(p.lr_d)),
        seed: opts.seed,
        head: run.head.unwrap_or(p.head),
        options: run.options.clone(),
    };
    let epochs = opts.epochs.unwrap_or(p.epochs);
    check_run(
        opts,
        epochs,
        config.batch,
        config.latent,
        &[("--lr", config.adam_g.lr), ("--lr-d", config.adam_d.lr)],
    )?;
    let train = data::load(
        opts.dataset,
        &dir,
        Split::Train,
        opts.train_images.or(p.train_images),
    )?;
    let train_gpu = GpuDataset::upload(gpu, &train, "train")?;
    let gan = Gan::new(gpu, config.clone())?;
    eprintln!(
        "GAN: latent {}, batch {}, {}, head {}, label noise {}, {} latents for G's update, \
         {} parameters (G {}, D {}); {} training images of {}",
        config.latent,
        config.batch,
        match config.options.wasserstein() {
            Some(w) => format!(
                "Wasserstein: {} critic steps per G step, clip {}, RMSProp lr {}",
                w.n_critic, w.clip, w.lr
            ),
            None => format!(
                "{} loss, Adam lr G {} D {}",
                config.options.loss.name(),
                config.adam_g.lr,
                config.adam_d.lr
            ),
        },
        config.head.name(),
        config.options.label_noise,
        if config.options.fresh_noise_for_g {
            "fresh"
        } else {
            "shared"
        },
        gan.param_count(),
        gan.generator_param_count(),
        gan.discriminator_param_count(),
        train.len(),
        opts.dataset.name()
    );
    let meta = run_metadata(preset, train.len(), opts.dataset, config.settings());
    let meta = opts.with_common(meta);
    let mut session = Session::start(
        gpu,
        out,
        opts.resume,
        "gan",
        preset,
        gan.param_count(),
        meta,
        |ck, path| gan.restore(gpu, ck, path),
    )?
    .excluding(others);
    let ts = gan.train_step(gpu, &session.state, &train_gpu)?;
    // Every refusal (the checkpoint's settings, a batch larger than the
    // data) came before this: a refused run leaves no folder behind.
    create_out(out, opts.resume, opts.overwrite)?;
    // An epoch's steps, an image budget and images/s count the real images
    // a step reads (the Wasserstein GAN's critic reads n_critic batches).
    let per_step = config.images_per_step();
    let schedule = opts.schedule(config.seed, per_step, epochs, &["g_loss", "d_loss"]);
    session.run_epochs(
        &ts.step,
        &train_gpu,
        schedule,
        || gan.checkpoint(gpu),
        |epoch, run| {
            let (g, d) = (run.mean_losses[SLOT_G], run.mean_losses[SLOT_D]);
            println!(
                "Epoch {} Generator Loss: {g:.4}, Discriminator Loss: {d:.4}",
                epoch + 1
            );
            eprintln!("  {:.1} s, {:.0} images/s", run.seconds, run.images_per_sec);
            save_grid(
                &out.join(format!("samples_epoch_{:03}.png", epoch + 1)),
                &gan.sample(gpu, 100, config.seed)?,
                28,
                10,
                10,
                -1.0,
                1.0,
            )?;
            let m = EpochMetrics {
                epoch: epoch + 1,
                g_loss: Some(g),
                d_loss: Some(d),
                seconds: run.seconds,
                images_per_sec: run.images_per_sec,
                ..Default::default()
            };
            Ok(m)
        },
        || score(gpu, &gan),
    )?;
    let metrics = session.metrics;
    if opts.plots {
        plot_losses(&metrics, &out.join("loss.png"))?;
        if config.latent == 2 {
            save_grid(
                &out.join("latent_manifold.png"),
                &gan.generate(gpu, &prior_grid(GRID))?,
                28,
                20,
                20,
                -1.0,
                1.0,
            )?;
        }
    }
    Ok((gan, metrics))
}

/// The generator's and discriminator's losses per epoch.
pub fn plot_losses(m: &Metrics, path: &Path) -> Result<()> {
    line_plot(
        path,
        "GAN losses",
        "epoch",
        "binary cross-entropy",
        &[
            ("generator".into(), m.curve(|e| e.g_loss)),
            ("discriminator".into(), m.curve(|e| e.d_loss)),
        ],
    )
}
