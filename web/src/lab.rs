//! The VAE-vs-GAN lab (web/lab.html): both models of a preset trained side
//! by side on this page's WebGPU, with the engine's own kernels, data
//! reader and training steps. The page drives it: [`lab_start`] builds both
//! models, [`lab_train`] runs a few steps of one of them and returns its
//! losses, [`lab_samples`] draws its sample grid; the page interleaves the
//! two models, times each call with its own clock, and pauses or stops
//! between calls. Nothing here blocks: every read-back is awaited.
//!
//! The lab lives in one slot of this thread (a page trains one pair at a
//! time); a call takes it out while it awaits and puts it back after,
//! failed or not, so a failed call loses nothing already trained, and a
//! call that overlaps another is refused instead of racing it.

use std::cell::RefCell;
use std::path::Path;

use vae_vs_gan::data::mnist::{images_from_bytes, Images};
use vae_vs_gan::data::{GpuDataset, PIXELS};
use vae_vs_gan::gpu::{Step, StepState};
use vae_vs_gan::models::gan::{Gan, SLOT_D, SLOT_G};
use vae_vs_gan::models::preset::Preset;
use vae_vs_gan::models::vae::{Vae, SLOT_KL, SLOT_RECON};
use vae_vs_gan::{Gpu, GpuOptions};
use wasm_bindgen::prelude::*;

/// Most steps one [`lab_train`] call runs (one submit, one read-back):
/// the size of each model's loss ring.
pub const MAX_STEPS_PER_CALL: usize = 50;
/// Samples in a grid, and the seed of their fixed latents.
const GRID: usize = 10;
const SAMPLE_SEED: u64 = 1000;

enum Model {
    Vae(Box<Vae>),
    Gan(Box<Gan>),
}

/// One model in training.
struct Trainee {
    name: &'static str,
    model: Model,
    state: StepState,
    step: Step,
    data: GpuDataset,
    seed: u64,
    batch: usize,
    epochs: usize,
    /// Steps done.
    done: usize,
}

impl Trainee {
    /// `model` with its training data on the device, its step state and
    /// its recorded training step, no step run yet.
    fn new(
        gpu: &Gpu,
        model: Model,
        images: &Images,
        seed: u64,
        batch: usize,
        epochs: usize,
    ) -> vae_vs_gan::Result<Trainee> {
        let name = match model {
            Model::Vae(_) => "VAE",
            Model::Gan(_) => "GAN",
        };
        let data = GpuDataset::upload(gpu, images, &format!("{} train", name.to_lowercase()))?;
        let state = StepState::new(gpu, 2, MAX_STEPS_PER_CALL, 0)?;
        let step = match &model {
            Model::Vae(v) => v.train_step(gpu, &state, &data)?.step,
            Model::Gan(g) => g.train_step(gpu, &state, &data)?.step,
        };
        Ok(Trainee {
            name,
            model,
            state,
            step,
            data,
            seed,
            batch,
            epochs,
            done: 0,
        })
    }

    fn per_epoch(&self) -> usize {
        self.data.batches(self.batch)
    }

    fn total(&self) -> usize {
        self.per_epoch() * self.epochs
    }

    /// The loss slots' names, in slot order.
    fn loss_names(&self) -> [&'static str; 2] {
        match self.model {
            Model::Vae(_) => {
                let mut n = [""; 2];
                n[SLOT_RECON] = "recon";
                n[SLOT_KL] = "kl";
                n
            }
            Model::Gan(_) => {
                let mut n = [""; 2];
                n[SLOT_G] = "g_loss";
                n[SLOT_D] = "d_loss";
                n
            }
        }
    }

    /// Up to `steps` more steps, within the current epoch (each epoch
    /// starts with its seeded shuffle, as natively); the last step's losses.
    async fn train(&mut self, gpu: &Gpu, steps: usize) -> vae_vs_gan::Result<Vec<f32>> {
        let per_epoch = self.per_epoch();
        let in_epoch = self.done % per_epoch;
        if in_epoch == 0 {
            self.data.shuffle(gpu, self.seed, self.done / per_epoch)?;
        }
        let n = steps
            .clamp(1, MAX_STEPS_PER_CALL)
            .min(per_epoch - in_epoch)
            .min(self.total() - self.done);
        let chunk: Vec<&Step> = std::iter::repeat_n(&self.step, n).collect();
        let snap = self
            .state
            .submit(gpu, &chunk)?
            .wait_async(gpu, &format!("training the {}", self.name))
            .await?;
        let rows = snap.losses(self.done as u64)?;
        self.done += n;
        Ok(rows.last().map(|r| r.values.clone()).unwrap_or_default())
    }

    /// The fixed latents' samples as a 10x10 grid, RGBA, 280x280.
    async fn grid(&self, gpu: &Gpu) -> vae_vs_gan::Result<Vec<u8>> {
        let n = GRID * GRID;
        let (px, lo) = match &self.model {
            Model::Vae(v) => (v.sample_async(gpu, n, SAMPLE_SEED).await?, 0.0),
            Model::Gan(g) => (g.sample_async(gpu, n, SAMPLE_SEED).await?, -1.0),
        };
        let side = 28 * GRID;
        let mut rgba = vec![255u8; side * side * 4];
        for (i, img) in px.chunks(PIXELS).enumerate() {
            let (gy, gx) = (i / GRID, i % GRID);
            for (p, &v) in img.iter().enumerate() {
                let (y, x) = (gy * 28 + p / 28, gx * 28 + p % 28);
                let grey = ((v - lo) / (1.0 - lo) * 255.0).round().clamp(0.0, 255.0) as u8;
                rgba[(y * side + x) * 4..][..3].fill(grey);
            }
        }
        Ok(rgba)
    }
}

/// Both models and their device.
struct Lab {
    gpu: Gpu,
    models: Vec<Trainee>,
}

thread_local! {
    static LAB: RefCell<Option<Lab>> = const { RefCell::new(None) };
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// Take the lab out of its slot for one call.
fn take() -> Result<Lab, JsError> {
    LAB.with(|l| l.borrow_mut().take()).ok_or_else(|| {
        js_err("the lab is not started, or busy with another call: press Train first")
    })
}

fn put(lab: Lab) {
    LAB.with(|l| *l.borrow_mut() = Some(lab));
}

/// Open this page's WebGPU adapter and build both models of `preset`
/// (`tiny`, `smoke`, `article`; `dcgan` is the GAN's preset, beside the
/// article's VAE) with `seed`, on the MNIST training files' bytes (read
/// by the engine's IDX reader). Replaces a lab already started. Returns
/// JSON: the adapter, whether it is a fallback (CPU) adapter, and per
/// model its name, parameters, batch, steps per epoch, epochs and loss
/// names.
#[wasm_bindgen]
pub async fn lab_start(
    preset: String,
    seed: u32,
    images: Vec<u8>,
    labels: Vec<u8>,
) -> Result<String, JsError> {
    LAB.with(|l| l.borrow_mut().take());
    let (vae_preset, gan_preset) = match preset.as_str() {
        "tiny" => (Preset::Tiny, Preset::Tiny),
        "smoke" => (Preset::Smoke, Preset::Smoke),
        "article" => (Preset::Article, Preset::Article),
        "dcgan" => (Preset::Article, Preset::Dcgan),
        other => {
            return Err(js_err(format!(
                "unknown preset {other:?}: choose tiny, smoke, article or dcgan"
            )))
        }
    };
    let gpu = Gpu::open_async(GpuOptions::default())
        .await
        .map_err(js_err)?;
    let v = vae_preset.vae().map_err(js_err)?;
    let g = gan_preset.gan();
    let seed = seed as u64;
    let load = |limit: Option<usize>| {
        images_from_bytes(
            &images,
            Path::new("train-images-idx3-ubyte.gz"),
            &labels,
            Path::new("train-labels-idx1-ubyte.gz"),
            limit,
        )
    };
    let vae = Vae::new(&gpu, v.config(seed)).map_err(js_err)?;
    let vae = Trainee::new(
        &gpu,
        Model::Vae(Box::new(vae)),
        &load(v.train_images).map_err(js_err)?,
        seed,
        v.batch,
        v.epochs,
    )
    .map_err(js_err)?;
    let gan = Gan::new(&gpu, g.config(seed)).map_err(js_err)?;
    let gan = Trainee::new(
        &gpu,
        Model::Gan(Box::new(gan)),
        &load(g.train_images).map_err(js_err)?,
        seed,
        g.batch,
        g.epochs,
    )
    .map_err(js_err)?;
    let models = vec![vae, gan];
    let info = serde_json::json!({
        "adapter": gpu.describe(),
        "fallback": format!("{:?}", gpu.info.device_type) == "Cpu",
        "models": models.iter().map(|m| serde_json::json!({
            "name": m.name,
            "params": match &m.model { Model::Vae(v) => v.param_count(), Model::Gan(g) => g.param_count() },
            "batch": m.batch,
            "steps_per_epoch": m.per_epoch(),
            "epochs": m.epochs,
            "losses": m.loss_names(),
        })).collect::<Vec<_>>(),
    });
    put(Lab { gpu, models });
    Ok(info.to_string())
}

/// Train model `model` (0 the VAE, 1 the GAN) up to `steps` more steps (at
/// most [`MAX_STEPS_PER_CALL`], within its current epoch). Returns JSON:
/// steps done and in all, the epoch, the last step's losses by name, and
/// whether the model has finished its preset's epochs. A NaN or infinite
/// loss is an error naming it and its step; the model keeps what it had.
#[wasm_bindgen]
pub async fn lab_train(model: usize, steps: usize) -> Result<String, JsError> {
    let mut lab = take()?;
    let out = train_one(&mut lab, model, steps).await;
    put(lab);
    out
}

async fn train_one(lab: &mut Lab, model: usize, steps: usize) -> Result<String, JsError> {
    let gpu = &lab.gpu;
    let t = lab
        .models
        .get_mut(model)
        .ok_or_else(|| js_err(format!("no model {model}: 0 is the VAE, 1 the GAN")))?;
    if t.done >= t.total() {
        return Err(js_err(format!("the {} has finished its epochs", t.name)));
    }
    let losses = t.train(gpu, steps).await.map_err(js_err)?;
    let names = t.loss_names();
    if let Some((name, v)) = names.iter().zip(&losses).find(|(_, v)| !v.is_finite()) {
        return Err(js_err(format!(
            "the {}'s {name} is {v} at step {}: training diverged",
            t.name, t.done
        )));
    }
    let by_name: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .zip(&losses)
        .map(|(n, v)| (n.to_string(), serde_json::json!(v)))
        .collect();
    Ok(serde_json::json!({
        "done": t.done,
        "total": t.total(),
        "epoch": (t.done - 1) / t.per_epoch() + 1,
        "epochs": t.epochs,
        "images": t.done * t.batch,
        "losses": by_name,
        "finished": t.done >= t.total(),
    })
    .to_string())
}

/// Model `model`'s 100 samples from fixed latents as a 10x10 grid of
/// 28x28 images: RGBA bytes of a 280x280 picture.
#[wasm_bindgen]
pub async fn lab_samples(model: usize) -> Result<Vec<u8>, JsError> {
    let lab = take()?;
    let out = match lab.models.get(model) {
        Some(t) => t.grid(&lab.gpu).await.map_err(js_err),
        None => Err(js_err(format!("no model {model}: 0 is the VAE, 1 the GAN"))),
    };
    put(lab);
    out
}
