//! Soak: 100 tiny epochs (one step each) of the VAE and of the GAN in one
//! process, each epoch what a training run does per epoch (the shuffle
//! upload, the recorded step, the loss readback, an inference submit for
//! the sample grid; every 10th epoch a checkpoint's worth of readbacks),
//! with the engine's tensor bytes and the process's resident memory
//! sampled after every epoch.
//!
//! Bound: after 20 warm-up epochs (pipelines compiled, allocator pools
//! filled), the engine's tensor bytes must not change at all, and the
//! resident set may grow by at most 16 MiB over the next 80 epochs. A leak
//! of one buffer per epoch the size of a sample batch's activations (8
//! images: 1.3 MB through the VAE's decoder, 2 MB through the generator;
//! over 100 MB in 80 epochs), or per checkpoint of its readbacks (the GAN's
//! parameters are 5 MB: 40 MB over 8 checkpoints), would exceed it, as
//! would lavapipe's growth of 0.5 MB a submitted step that this test once
//! found (docs/PERFORMANCE.md); lavapipe's buffers live in host memory, so
//! a leaked GPU buffer shows in the resident set too.
//!
//! In the `global` test crate, and run alone there ([`crate::alone`]), so
//! no other test's memory is counted.

use crate::common::*;
use vae_vs_gan::data::{self, Dataset, GpuDataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::gan::{Gan, GanConfig};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::run::LOG_INTERVAL;
use vae_vs_gan::train::{run_epoch, EpochOutcome, EpochPlan};
use vae_vs_gan::{Gpu, Step};

const EPOCHS: usize = 100;
const WARM_UP: usize = 20;
const RSS_GROWTH_BOUND: u64 = 16 << 20;

/// Resident set size of this process, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Run `EPOCHS` epochs of `step` with `per_epoch` (the epoch's other work)
/// after each; returns (tensor bytes, resident bytes) per epoch.
fn soak(
    gpu: &Gpu,
    step: &Step,
    state: &StepState,
    data: &GpuDataset,
    batch: usize,
    mut per_epoch: impl FnMut(usize),
) -> Vec<(u64, u64)> {
    let names = ["a", "b"];
    let pb = indicatif::ProgressBar::hidden();
    (0..EPOCHS)
        .map(|epoch| {
            let plan = EpochPlan {
                seed: 3,
                epoch,
                batch,
                names: &names,
                from: None,
                until_step: None,
                until_seconds: None,
            };
            let out = run_epoch(gpu, step, state, data, &plan, &pb).unwrap();
            assert!(matches!(out, EpochOutcome::Done(_)));
            per_epoch(epoch);
            (gpu.allocated_bytes(), rss_bytes())
        })
        .collect()
}

fn check_flat(model: &str, samples: &[(u64, u64)]) {
    let (bytes0, rss0) = samples[WARM_UP - 1];
    let rss_max = samples[WARM_UP..].iter().map(|s| s.1).max().unwrap();
    let growth = rss_max.saturating_sub(rss0);
    eprintln!(
        "{model}: tensor bytes {bytes0}; resident {:.1} MiB after warm-up, at most {:.1} MiB \
         over epochs {WARM_UP}..{EPOCHS} (+{:.2} MiB)",
        rss0 as f64 / 1048576.0,
        rss_max as f64 / 1048576.0,
        growth as f64 / 1048576.0
    );
    for (i, s) in samples.iter().enumerate().skip(WARM_UP) {
        assert_eq!(s.0, bytes0, "{model}: tensor bytes changed at epoch {i}");
    }
    assert!(
        growth <= RSS_GROWTH_BOUND,
        "{model}: resident memory grew {growth} bytes after warm-up (bound {RSS_GROWTH_BOUND})"
    );
}

fn images(n: usize) -> data::Images {
    data::load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(n)).unwrap()
}

#[test]
fn soak_100_epochs_of_vae_and_gan_hold_memory_flat() {
    let _process = crate::alone();
    let g = gpu();
    let batch = 8;
    let data = GpuDataset::upload(g, &images(batch), "soak").unwrap();

    let vae = Vae::new(
        g,
        VaeConfig {
            latent: 2,
            batch,
            adam: AdamConfig::keras(1e-3),
            seed: 1,
            ..VaeConfig::default()
        },
    )
    .unwrap();
    let state = StepState::new(g, 2, LOG_INTERVAL, 0).unwrap();
    let ts = vae.train_step(g, &state, &data).unwrap();
    let s = soak(g, &ts.step, &state, &data, batch, |epoch| {
        vae.sample(g, 8, 5).unwrap();
        if epoch % 10 == 0 {
            vae.checkpoint(g).unwrap();
        }
    });
    check_flat("VAE", &s);
    drop(ts);

    let gan = Gan::new(
        g,
        GanConfig {
            latent: 2,
            batch,
            adam_g: AdamConfig::keras(1e-3),
            adam_d: AdamConfig::keras(1e-3),
            seed: 1,
            head: Default::default(),
            ..GanConfig::default()
        },
    )
    .unwrap();
    let state = StepState::new(g, 2, LOG_INTERVAL, 0).unwrap();
    let ts = gan.train_step(g, &state, &data).unwrap();
    let s = soak(g, &ts.step, &state, &data, batch, |epoch| {
        gan.sample(g, 8, 5).unwrap();
        if epoch % 10 == 0 {
            gan.checkpoint(g).unwrap();
        }
    });
    check_flat("GAN", &s);
}
