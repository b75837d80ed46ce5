//! The training loop's schedule: two chunks in flight, one blocking wait
//! per log interval, and the same numbers as the old schedule.
//!
//! Each test opens a device of its own: [`Gpu::blocking_waits`] counts
//! every wait on a device, and the shared test device serves other tests
//! in parallel.

use crate::common::{bits, mnist_dir};
use vae_vs_gan::data::{self, Dataset, GpuDataset, Split};
use vae_vs_gan::gpu::{LimitsPolicy, StepLosses, StepState};
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::models::gan::{Gan, GanConfig};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::ops::activation::Activation;
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::train::run::LOG_INTERVAL;
use vae_vs_gan::train::{run_epoch, EpochOutcome, EpochPlan, EpochRun};
use vae_vs_gan::{Gpu, GpuOptions, Step, Tensor};

fn own_gpu() -> Gpu {
    Gpu::with_options(GpuOptions {
        limits: LimitsPolicy::WebGpuDefaults,
        timestamps: false,
        kernels: None,
        autotune: None,
        subgroups: true,
    })
    .expect("an adapter")
}

fn images(n: usize) -> data::Images {
    data::load(Dataset::Mnist, &mnist_dir(), Split::Train, Some(n)).unwrap()
}

fn epoch(gpu: &Gpu, step: &Step, state: &StepState, data: &GpuDataset, batch: usize) -> EpochRun {
    let plan = EpochPlan {
        seed: 11,
        epoch: 0,
        batch,
        names: &["a", "b"],
        from: None,
        until_step: None,
        until_seconds: None,
    };
    let pb = indicatif::ProgressBar::hidden();
    match run_epoch(gpu, step, state, data, &plan, &pb).unwrap() {
        EpochOutcome::Done(run) => run,
        EpochOutcome::Interrupted(_) | EpochOutcome::Paused(_) => {
            panic!("nothing asked for an interrupt or a pause")
        }
    }
}

/// 250 steps of a step that costs next to nothing (two activations, two
/// ring writes, the counter advance: the wait count does not depend on
/// what a step computes), batch 1 over 250 images, ring of
/// [`LOG_INTERVAL`] = 100 steps: the epoch blocks at most
/// `steps / 100 + 1` times, the constant 1 being the last, partial log
/// interval (250 = 100 + 100 + 50: three waits). Nothing else waits: the
/// epoch's start needs no read (the first chunk's counter says where it
/// began), the shuffle is a queue write. Counted by the device, not by the
/// loop (`EpochRun::blocking_waits` must agree). The old loop blocked
/// 1 + 3 * ceil(250 / 16) = 49 times here.
#[test]
fn an_epoch_blocks_once_per_log_interval() {
    let g = own_gpu();
    let steps = 250;
    let data = GpuDataset::upload(&g, &images(steps), "waits").unwrap();
    let state = StepState::new(&g, 2, LOG_INTERVAL, 0).unwrap();
    let x = Tensor::from_f32(&g, &[1], &[0.5], "x").unwrap();
    let loss = Tensor::zeros(&g, &[1], "loss").unwrap();
    let mut step = Step::new("toy");
    Activation::Sigmoid
        .forward(&g, &mut step, &x, &loss)
        .unwrap();
    state.record_loss(&g, &mut step, &loss, 0).unwrap();
    Activation::Tanh.forward(&g, &mut step, &x, &loss).unwrap();
    state.record_loss(&g, &mut step, &loss, 1).unwrap();
    state.record_advance(&g, &mut step).unwrap();

    let before = g.blocking_waits();
    let run = epoch(&g, &step, &state, &data, 1);
    let waits = g.blocking_waits() - before;
    assert_eq!(run.steps, steps);
    assert_eq!(run.global_steps, steps as u64);
    assert_eq!(
        run.blocking_waits, waits,
        "the loop reports the device's count"
    );
    let bound = (steps / LOG_INTERVAL + 1) as u64;
    assert!(
        waits <= bound,
        "{waits} blocking waits for {steps} steps (bound {bound})"
    );
    let want = [
        Activation::Sigmoid.apply(0.5) as f32 as f64,
        Activation::Tanh.apply(0.5) as f32 as f64,
    ];
    assert_eq!(run.mean_losses.len(), 2);
    for (got, want) in run.mean_losses.iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "mean loss {got}, want {want}");
    }
    // A second epoch continues the counter (no read at its start either).
    let run = epoch(&g, &step, &state, &data, 1);
    assert_eq!(run.global_steps, 2 * steps as u64);
    assert!(run.blocking_waits <= bound);
}

/// The old schedule: one submit per step, waited for, then the step's
/// losses read (the loop before two chunks in flight, at its finest).
fn one_step_at_a_time(
    g: &Gpu,
    step: &Step,
    state: &StepState,
    data: &GpuDataset,
    steps: usize,
) -> Vec<StepLosses> {
    data.shuffle(g, 11, 0).unwrap();
    let mut rows = Vec::new();
    for s in 0..steps as u64 {
        g.run(&[step]).unwrap();
        rows.extend(state.read_losses(g, s).unwrap());
    }
    rows
}

/// The mean of each slot over `rows`, summed in step order as the loop does.
fn means(rows: &[StepLosses]) -> Vec<f64> {
    let mut sums = vec![0.0f64; rows[0].values.len()];
    for r in rows {
        for (s, &v) in sums.iter_mut().zip(&r.values) {
            *s += v as f64;
        }
    }
    sums.iter().map(|s| s / rows.len() as f64).collect()
}

/// Compare one epoch through `run_epoch` (ring of `capacity` steps, so
/// chunks of `capacity` with two in flight) against the old schedule on a
/// twin model: every loss and every checkpointed tensor bit-identical.
/// The step counter on the GPU picks each batch, each RNG draw and Adam's
/// step, so the schedule cannot change a bit; this checks that it does not.
fn same_as_one_step_at_a_time(
    name: &str,
    batch: usize,
    steps: usize,
    capacity: usize,
    build: impl Fn(&Gpu, &StepState, &GpuDataset) -> (Step, Box<dyn Fn(&Gpu) -> Checkpoint>),
) {
    let g = own_gpu();
    let data = GpuDataset::upload(&g, &images(batch * steps), name).unwrap();

    let old_state = StepState::new(&g, 2, steps, 0).unwrap();
    let (old_step, old_ck) = build(&g, &old_state, &data);
    let rows = one_step_at_a_time(&g, &old_step, &old_state, &data, steps);
    assert_eq!(rows.len(), steps);

    let state = StepState::new(&g, 2, capacity, 0).unwrap();
    let (new_step, new_ck) = build(&g, &state, &data);
    let run = epoch(&g, &new_step, &state, &data, batch);
    assert_eq!(run.steps, steps);
    let chunks = steps.div_ceil(capacity) as u64;
    assert_eq!(run.blocking_waits, chunks, "{name}: one wait per chunk");

    let (a, b) = (means(&rows), run.mean_losses.clone());
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        "{name}: mean losses {a:?} (one step per submit) vs {b:?} (chunks of {capacity})"
    );
    // The last `capacity` steps' losses are still in the ring: row by row.
    let tail = state.read_losses(&g, (steps - capacity) as u64).unwrap();
    assert_eq!(tail.len(), capacity);
    for r in &tail {
        assert_eq!(
            bits(&rows[r.step as usize].values),
            bits(&r.values),
            "{name}: losses of step {}",
            r.step
        );
    }
    let (ca, cb) = (old_ck(&g), new_ck(&g));
    assert!(!ca.tensors.is_empty());
    assert_eq!(
        ca.tensors, cb.tensors,
        "{name}: parameters and Adam moments"
    );
}

/// The VAE: 30 steps of batch 8 in chunks of 4 (7 full chunks and one of
/// 2, two in flight).
#[test]
fn vae_chunks_in_flight_equal_one_step_per_submit() {
    same_as_one_step_at_a_time("vae", 8, 30, 4, |g, st, data| {
        let vae = Vae::new(
            g,
            VaeConfig {
                latent: 2,
                batch: 8,
                adam: AdamConfig::keras(1e-3),
                seed: 4,
                ..VaeConfig::default()
            },
        )
        .unwrap();
        let ts = vae.train_step(g, st, data).unwrap();
        (ts.step, Box::new(move |g: &Gpu| vae.checkpoint(g).unwrap()))
    });
}

/// The GAN (noise drawn on the GPU from the counter): 7 steps of batch 4
/// in chunks of 2.
#[test]
fn gan_chunks_in_flight_equal_one_step_per_submit() {
    same_as_one_step_at_a_time("gan", 4, 7, 2, |g, st, data| {
        let gan = Gan::new(
            g,
            GanConfig {
                latent: 2,
                batch: 4,
                adam_g: AdamConfig::keras(1e-3),
                adam_d: AdamConfig::keras(1e-3),
                seed: 4,
                head: Default::default(),
                ..GanConfig::default()
            },
        )
        .unwrap();
        let ts = gan.train_step(g, st, data).unwrap();
        (ts.step, Box::new(move |g: &Gpu| gan.checkpoint(g).unwrap()))
    });
}
