//! Whole-step numerics of the GAN: 3 training steps of the tiny preset on
//! 64 real MNIST images, each against one step of the f64 CPU reference
//! from the GPU's own state, for both discriminator heads (the shared
//! check, tests/checks/gan_step.rs, which also runs in the browser, has the
//! tolerances and why); and what the article's options cost in recorded
//! dispatches. The options' own whole steps are gan_options'.

use crate::checks::gan_step::{self as check, configs, option_configs, tiny};
use crate::common::*;
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{load, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::gan::{DHead, Gan, GanConfig, GanOptions};
use vae_vs_gan::train::preset::Preset;

/// The tiny preset's training images (the first 64 of MNIST's).
fn images() -> Images {
    let n = Preset::Tiny.gan().train_images;
    load(Dataset::Mnist, &mnist_dir(), Split::Train, n).unwrap()
}

/// The check of `configs()` (or `option_configs()`) entry `name`.
pub fn matches_cpu(name: &str) {
    let (_, cfg) = configs()
        .into_iter()
        .chain(option_configs())
        .find(|(n, _)| *n == name)
        .unwrap();
    pass(check::matches_cpu(gpu(), &images(), cfg));
}

#[test]
fn gan_step_matches_cpu_reference_max_pool_head() {
    matches_cpu("max-pool head");
}

#[test]
fn gan_step_matches_cpu_reference_flatten_head() {
    matches_cpu("flatten head");
}

/// What the options cost in recorded dispatches: label noise none (drawn in
/// the loss kernel, one dispatch as the plain loss), fresh noise for G one
/// draw plus a generator forward. With both off the step records what it
/// did before the options existed: the plain loss kernel (the step's own
/// numerics unchanged; tests/it/bce.rs checks that the noise kernel at 0 is
/// the plain kernel bit for bit).
#[test]
fn gan_step_options_cost_what_they_add() {
    let g = gpu();
    let imgs = images();
    let data = GpuDataset::upload(g, &imgs, "train").unwrap();
    let state = StepState::new(g, 2, 1, 0).unwrap();
    let stats = |cfg: GanConfig| {
        let gan = Gan::new(g, cfg).unwrap();
        let s = gan.train_step(g, &state, &data).unwrap().step.stats();
        (s.dispatches, s.bind_groups)
    };
    let base = tiny(DHead::GlobalMaxPool);
    let default = stats(base.clone());
    let with = |options: GanOptions| GanConfig {
        options,
        ..base.clone()
    };
    let noisy = stats(with(GanOptions {
        label_noise: 0.05,
        ..GanOptions::default()
    }));
    let fresh = stats(with(GanOptions {
        fresh_noise_for_g: true,
        ..GanOptions::default()
    }));
    eprintln!("gan step (dispatches, bind groups): default {default:?}, label noise {noisy:?}, fresh noise for G {fresh:?}");
    assert_eq!(default, noisy, "label noise costs no dispatch");
    assert!(
        fresh.0 > default.0 + 1,
        "fresh noise: a draw and a generator forward more"
    );
    // A negative or NaN noise is refused when the model is built.
    for bad in [-0.05f32, f32::NAN] {
        let e = Gan::new(
            g,
            with(GanOptions {
                label_noise: bad,
                ..GanOptions::default()
            }),
        )
        .err()
        .expect("refused")
        .to_string();
        assert!(e.contains("--label-noise") && e.contains(">= 0"), "{e}");
    }
}
