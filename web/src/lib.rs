//! The engine's tests in a browser: the portable core on the page's WebGPU,
//! each kernel against its CPU reference and a tiny training run, reported
//! line by line to the page (`scripts/web/test.sh` builds, serves and runs
//! it in headless Chromium).
//!
//! Only the `_async` GPU calls are used: a browser cannot block on its GPU.

use rand::{Rng, SeedableRng};
use vae_vs_gan::data::mnist::Images;
use vae_vs_gan::data::{GpuDataset, PIXELS};
use vae_vs_gan::gpu::StepState;
use vae_vs_gan::models::gan::{DHead, Gan, GanConfig};
use vae_vs_gan::models::vae::{Vae, VaeConfig};
use vae_vs_gan::ops::activation::Activation;
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::{Gpu, GpuOptions, Step, Tensor};
use wasm_bindgen::prelude::*;

thread_local! {
    /// The page's `report(line)` function.
    static REPORT: std::cell::RefCell<Option<js_sys::Function>> = const { std::cell::RefCell::new(None) };
}

/// One line to the page.
fn report_line(line: &str) {
    REPORT.with(|r| {
        if let Some(f) = r.borrow().as_ref() {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_str(line));
        }
    });
}

/// What one test found: `Ok` with a line of figures, or the failure.
type Outcome = std::result::Result<String, String>;

/// Run every test, calling `report(line)` for each line of output; returns
/// the number of failures. The last line is `N passed, M failed`.
#[wasm_bindgen]
pub async fn run_tests(report: js_sys::Function) -> u32 {
    REPORT.with(|r| *r.borrow_mut() = Some(report.clone()));
    // A panic aborts the module (panic = "abort"): say why first.
    std::panic::set_hook(Box::new(|info| {
        report_line(&format!("FAILED panic: {info}"))
    }));
    let say = |line: String| report_line(&line);
    let gpu = match Gpu::open_async(GpuOptions::default()).await {
        Ok(g) => g,
        Err(e) => {
            say(format!("FAILED no device: {e}"));
            say("0 passed, 1 failed".into());
            return 1;
        }
    };
    say(format!(
        "adapter: {}; {}",
        gpu.describe(),
        gpu.describe_kernels()
    ));
    let (mut passed, mut failed) = (0u32, 0u32);
    let tests: [(&str, Outcome); 4] = [
        ("activation forward", activation_forward(&gpu).await),
        ("activation backward", activation_backward(&gpu).await),
        ("vae training steps", train_vae(&gpu).await),
        ("gan training steps", train_gan(&gpu).await),
    ];
    for (name, outcome) in tests {
        match outcome {
            Ok(figures) => {
                passed += 1;
                say(format!("ok {name}: {figures}"));
            }
            Err(why) => {
                failed += 1;
                say(format!("FAILED {name}: {why}"));
            }
        }
    }
    say(format!("{passed} passed, {failed} failed"));
    failed
}

const ALL: [Activation; 4] = [
    Activation::Relu,
    Activation::LeakyRelu(0.2),
    Activation::Sigmoid,
    Activation::Tanh,
];

/// Odd sizes: not multiples of the 256-thread workgroup.
const SIZES: [usize; 3] = [1, 3 * 5 * 13 * 13, 70_001];

fn uniform(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(lo..hi)).collect()
}

/// Worst |got - want| / (atol + rtol |want|); an error past 1 (or NaN).
fn close(what: &str, got: &[f32], want: &[f32], atol: f64, rtol: f64) -> Result<f64, String> {
    if got.len() != want.len() {
        return Err(format!("{what}: {} values, want {}", got.len(), want.len()));
    }
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (*g as f64, *w as f64);
        let r = (g - w).abs() / (atol + rtol * w.abs());
        if r.is_nan() || r > 1.0 {
            return Err(format!("{what}: element {i}: gpu {g}, cpu {w}"));
        }
        worst = worst.max(r);
    }
    Ok(worst)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Every activation on odd sizes against `forward_cpu` (the native
/// tests/it/activation.rs tolerances: one f32 op per element, plus WGSL's
/// `exp` bound for sigmoid and tanh: rtol 1e-5, atol 1e-6).
async fn activation_forward(g: &Gpu) -> Outcome {
    let mut worst = 0.0f64;
    for (k, act) in ALL.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            let x = uniform(n, -8.0, 8.0, 100 + (k * 10 + j) as u64);
            let xt = Tensor::from_f32(g, &[n], &x, "x").map_err(err)?;
            let yt = Tensor::zeros(g, &[n], "y").map_err(err)?;
            yt.poison(g);
            let mut s = Step::new("fwd");
            act.forward(g, &mut s, &xt, &yt).map_err(err)?;
            g.run(&[&s]).map_err(err)?;
            let got = yt.read_f32_async(g).await.map_err(err)?;
            let what = format!("{act:?} forward n={n}");
            worst = worst.max(close(&what, &got, &act.forward_cpu(&x), 1e-6, 1e-5)?);
        }
    }
    Ok(format!("worst {worst:.3} of the tolerance"))
}

/// Every activation's backward against `backward_cpu`, as the forward.
async fn activation_backward(g: &Gpu) -> Outcome {
    let mut worst = 0.0f64;
    for (k, act) in ALL.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            let x = uniform(n, -8.0, 8.0, 200 + (k * 10 + j) as u64);
            let dy = uniform(n, -1.0, 1.0, 300 + (k * 10 + j) as u64);
            let saved = if act.backward_uses_output() {
                act.forward_cpu(&x)
            } else {
                x.clone()
            };
            let st = Tensor::from_f32(g, &[n], &saved, "saved").map_err(err)?;
            let dyt = Tensor::from_f32(g, &[n], &dy, "dy").map_err(err)?;
            let dxt = Tensor::zeros(g, &[n], "dx").map_err(err)?;
            dxt.poison(g);
            let mut s = Step::new("bwd");
            act.backward(g, &mut s, &st, &dyt, &dxt).map_err(err)?;
            g.run(&[&s]).map_err(err)?;
            let got = dxt.read_f32_async(g).await.map_err(err)?;
            let what = format!("{act:?} backward n={n}");
            worst = worst.max(close(
                &what,
                &got,
                &act.backward_cpu(&saved, &dy),
                1e-6,
                1e-5,
            )?);
        }
    }
    Ok(format!("worst {worst:.3} of the tolerance"))
}

/// 64 images of random pixels (the page ships no dataset yet).
fn images() -> Images {
    let mut r = rand::rngs::StdRng::seed_from_u64(5);
    Images {
        pixels: (0..64 * PIXELS).map(|_| r.random::<u8>()).collect(),
        labels: (0..64).map(|i| (i % 10) as u8).collect(),
    }
}

/// Steps of the tiny training runs below.
const STEPS: usize = 4;

/// Record a model's training step with `record` on the 64 images, run it
/// [`STEPS`] times in one submit, and require every loss finite.
async fn train_tiny(
    g: &Gpu,
    record: impl FnOnce(&StepState, &GpuDataset) -> vae_vs_gan::Result<Step>,
) -> Outcome {
    let data = GpuDataset::upload(g, &images(), "train").map_err(err)?;
    data.shuffle(g, 3, 0).map_err(err)?;
    let state = StepState::new(g, 2, STEPS, 0).map_err(err)?;
    let step = record(&state, &data).map_err(err)?;
    g.run(&[&step; STEPS]).map_err(err)?;
    let snap = state.snapshot_async(g).await.map_err(err)?;
    if snap.steps_done != STEPS as u64 {
        return Err(format!("{} steps done, want {STEPS}", snap.steps_done));
    }
    let losses = snap.losses(0).map_err(err)?;
    let all: Vec<f32> = losses.iter().flat_map(|l| l.values.clone()).collect();
    if all.is_empty() || all.iter().any(|v| !v.is_finite()) {
        return Err(format!("losses {all:?}"));
    }
    Ok(format!("{STEPS} steps, losses {all:?}"))
}

/// The tiny VAE (batch 8, latent 2): every loss finite.
async fn train_vae(g: &Gpu) -> Outcome {
    train_tiny(g, |state, data| {
        let config = VaeConfig {
            latent: 2,
            batch: 8,
            adam: AdamConfig::keras(1e-3),
            seed: 7,
            binarize: false,
            kl: Default::default(),
        };
        Ok(Vae::new(g, config)?.train_step(g, state, data)?.step)
    })
    .await
}

/// The tiny GAN (batch 8, latent 2, max-pool head): every loss finite.
async fn train_gan(g: &Gpu) -> Outcome {
    train_tiny(g, |state, data| {
        let config = GanConfig {
            latent: 2,
            batch: 8,
            adam_g: AdamConfig::keras(1e-3),
            adam_d: AdamConfig::keras(1e-3),
            seed: 7,
            head: DHead::GlobalMaxPool,
            label_noise: 0.0,
            fresh_noise_for_g: false,
        };
        Ok(Gan::new(g, config)?.train_step(g, state, data)?.step)
    })
    .await
}
