//! Whole training steps in images per second: the VAE's, the GAN's (one
//! discriminator and one generator update; with the article's global-max-
//! pool head, `gan_train_step`, and the TF tutorial's flatten head,
//! `gan_flatten_train_step`) and the classifier's, each recorded once and
//! submitted `reps` at a time as the training loop does.
//!
//! `cargo bench --bench steps` (about 4 minutes on lavapipe).
//! Env: `STEP_BENCH_BATCH` (default 32, the article's), `STEP_BENCH_REPS`
//! (steps per submit, default 4; training uses 16), `STEP_BENCH_FILTER`
//! (substring of the bench names: vae, gan, classifier),
//! `STEP_BENCH_SECS` (criterion's measurement time per step, default 5).
//!
//! The images/s here are the step's own; the examples' figures also count
//! the per-interval loss readback and the per-epoch shuffle.
//!
//! One line per step: `images/s NAME: X best Y (...) | dispatches D
//! bind_groups G bytes_bound B peak_bytes P`: the step's recorded counts
//! (`Step::stats`) and the engine's peak memory from building the model to
//! the end of its bench (weights, gradients, optimizer state, activations,
//! scratch, and the bench's 8 batches of images), after the `|` as
//! `key value` pairs.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use vae_vs_gan::data::GpuDataset;
use vae_vs_gan::data::{load, Dataset, Split};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::classifier::{Classifier, ClassifierConfig};
use vae_vs_gan::models::gan::{DHead, Gan, GanConfig};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::{Gpu, Step};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: a number")))
        .unwrap_or(default)
}

/// Time `step` submitted `reps` times per submit; print the median images/s.
fn bench_step(c: &mut Criterion, gpu: &Gpu, name: &str, step: &Step, batch: usize) {
    if let Ok(f) = std::env::var("STEP_BENCH_FILTER") {
        if !name.contains(&f) {
            return;
        }
    }
    let reps = env("STEP_BENCH_REPS", 4);
    let steps: Vec<&Step> = std::iter::repeat_n(step, reps).collect();
    gpu.run(&steps).expect("warm-up run"); // compiles, first touch
    let times = RefCell::new(Vec::new());
    let mut group = c.benchmark_group("steps");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(env("STEP_BENCH_SECS", 5) as u64))
        .throughput(Throughput::Elements((batch * reps) as u64));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                gpu.run(&steps).expect("run");
            }
            let dt = t0.elapsed();
            times
                .borrow_mut()
                .push(dt.as_secs_f64() / (iters * reps as u64) as f64);
            dt
        })
    });
    group.finish();
    let mut t = times.into_inner();
    t.sort_by(|a, b| a.total_cmp(b));
    let median = t[t.len() / 2];
    let st = step.stats();
    println!(
        "images/s {name}: {:.1} best {:.1} (median {:.1} ms per step of {batch}, {reps} per submit, {}) \
         | dispatches {} bind_groups {} bytes_bound {} peak_bytes {}",
        batch as f64 / median,
        batch as f64 / t[0],
        median * 1e3,
        gpu.describe(),
        st.dispatches,
        st.bind_groups,
        st.bytes_bound,
        gpu.peak_bytes()
    );
}

fn steps(c: &mut Criterion) {
    let gpu = Gpu::new().expect("an adapter (see README: mesa-vulkan-drivers on a CPU)");
    let batch = env("STEP_BENCH_BATCH", 32);
    let images = load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Train,
        Some(batch * 8),
    )
    .expect("MNIST in data/mnist");
    let data = GpuDataset::upload(&gpu, &images, "train").expect("upload");
    let adam = AdamConfig::keras(1e-3);

    gpu.reset_peak();
    let vae = Vae::new(
        &gpu,
        VaeConfig {
            latent: 2,
            batch,
            adam,
            seed: 0,
            ..VaeConfig::default()
        },
    )
    .expect("vae");
    let state = StepState::new(&gpu, 2, 64, 0).expect("state");
    let ts = vae.train_step(&gpu, &state, &data).expect("vae step");
    bench_step(c, &gpu, "vae_train_step", &ts.step, batch);
    drop((ts, vae, state));

    for (name, head) in [
        ("gan_train_step", DHead::GlobalMaxPool),
        ("gan_flatten_train_step", DHead::Flatten),
    ] {
        gpu.reset_peak();
        let gan = Gan::new(
            &gpu,
            GanConfig {
                latent: 2,
                batch,
                adam_g: adam,
                adam_d: adam,
                seed: 0,
                head,
                ..GanConfig::default()
            },
        )
        .expect("gan");
        let state = StepState::new(&gpu, 2, 64, 0).expect("state");
        let ts = gan.train_step(&gpu, &state, &data).expect("gan step");
        bench_step(c, &gpu, name, &ts.step, batch);
    }

    gpu.reset_peak();
    let net = Classifier::new(
        &gpu,
        ClassifierConfig {
            batch,
            adam,
            seed: 0,
        },
    )
    .expect("classifier");
    let state = StepState::new(&gpu, 1, 64, 0).expect("state");
    let ts = net
        .train_step(&gpu, &state, &data)
        .expect("classifier step");
    bench_step(c, &gpu, "classifier_train_step", &ts.step, batch);
}

criterion_group!(benches, steps);
criterion_main!(benches);
