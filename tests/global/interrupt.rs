//! An interrupt in the middle of an epoch with two chunks in flight: the
//! loop submits nothing more, finishes and reads the chunks in flight, and
//! says how far it got; continuing from there ends bit-identical to an
//! epoch never interrupted. In the `global` test crate, and run alone
//! there ([`crate::alone`]): the interrupt flag is the process's, and would
//! stop other tests' epochs.

use crate::common::mnist_dir;
use vae_vs_gan::data::{self, Dataset, GpuDataset, Split};
use vae_vs_gan::gpu::{LimitsPolicy, StepState};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::{interrupt, run_epoch, EpochOutcome, EpochPlan, EpochProgress};
use vae_vs_gan::{Gpu, GpuOptions};

const BATCH: usize = 8;
const STEPS: usize = 30;
/// Ring capacity, so steps per chunk.
const CHUNK: usize = 2;

fn vae(g: &Gpu) -> Vae {
    Vae::new(
        g,
        VaeConfig {
            latent: 2,
            batch: BATCH,
            adam: AdamConfig::keras(1e-3),
            seed: 9,
            ..VaeConfig::default()
        },
    )
    .unwrap()
}

fn plan(from: Option<EpochProgress>) -> EpochPlan<'static> {
    EpochPlan {
        seed: 2,
        epoch: 0,
        batch: BATCH,
        names: &["recon", "kl"],
        from,
        until_step: None,
        until_seconds: None,
    }
}

/// A helper thread asks for the stop once the loop has read its first
/// chunk (its first blocking wait), while the next chunks are in flight or
/// about to be; where exactly it lands does not matter, only that it lands
/// mid-epoch (15 chunks of 2 VAE steps leave plenty of time) and that the
/// continued epoch then matches.
#[test]
fn an_epoch_interrupted_with_chunks_in_flight_resumes_bit_identically() {
    let _process = crate::alone();
    let g = Gpu::with_options(GpuOptions {
        limits: LimitsPolicy::WebGpuDefaults,
        timestamps: false,
        kernels: None,
        autotune: None,
        subgroups: true,
    })
    .unwrap();
    let images = data::load(
        Dataset::Mnist,
        &mnist_dir(),
        Split::Train,
        Some(BATCH * STEPS),
    )
    .unwrap();
    let data = GpuDataset::upload(&g, &images, "train").unwrap();
    let pb = indicatif::ProgressBar::hidden();

    let straight_vae = vae(&g);
    let straight_state = StepState::new(&g, 2, CHUNK, 0).unwrap();
    let ts = straight_vae.train_step(&g, &straight_state, &data).unwrap();
    let EpochOutcome::Done(straight) =
        run_epoch(&g, &ts.step, &straight_state, &data, &plan(None), &pb).unwrap()
    else {
        panic!("not interrupted")
    };

    let stopped_vae = vae(&g);
    let state = StepState::new(&g, 2, CHUNK, 0).unwrap();
    let ts = stopped_vae.train_step(&g, &state, &data).unwrap();
    interrupt::clear();
    let base = g.blocking_waits();
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            while g.blocking_waits() == base {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            interrupt::request();
        });
        run_epoch(&g, &ts.step, &state, &data, &plan(None), &pb).unwrap()
    });
    interrupt::clear();
    let EpochOutcome::Interrupted(progress) = outcome else {
        panic!("the interrupt did not land mid-epoch")
    };
    eprintln!("interrupted after {} of {STEPS} steps", progress.steps);
    assert!(
        progress.steps > 0 && progress.steps < STEPS && progress.steps % CHUNK == 0,
        "stopped after {} steps: whole chunks, some but not all",
        progress.steps
    );
    assert_eq!(
        state.steps_done(&g).unwrap(),
        progress.steps as u64,
        "every submitted chunk ran and was counted"
    );
    let EpochOutcome::Done(resumed) =
        run_epoch(&g, &ts.step, &state, &data, &plan(Some(progress)), &pb).unwrap()
    else {
        panic!("the continued epoch was interrupted")
    };
    assert_eq!(resumed.global_steps, STEPS as u64);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&straight.mean_losses),
        bits(&resumed.mean_losses),
        "mean losses"
    );
    assert_eq!(
        straight_vae.checkpoint(&g).unwrap().tensors,
        stopped_vae.checkpoint(&g).unwrap().tensors,
        "parameters and Adam moments"
    );
}
