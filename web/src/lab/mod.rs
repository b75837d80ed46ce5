//! The VAE-vs-GAN lab (web/lab.html): both models of a preset trained side
//! by side on this page's WebGPU, with the engine's own kernels, data
//! reader, training steps, checkpoints and comparison figures. The page
//! drives it:
//! - [`lab_open`] opens the device with a dataset and its classifier;
//! - [`lab_start`] builds both models of a preset, [`lab_load`] one model
//!   from a checkpoint file (native or downloaded here);
//! - [`lab_train`] runs a few steps of one model and returns its losses;
//! - [`lab_samples`] and [`lab_latents`] draw its sample and latent grids;
//! - [`lab_score`] and [`lab_baselines`] measure it and the baselines as
//!   the native comparison does;
//! - [`lab_keep`] keeps its checkpoint, [`lab_checkpoint`] gives the
//!   safetensors file (the kept one once the device is lost);
//! - [`lab_status`] says what each place holds and whether the device is
//!   lost.
//!
//! The page interleaves the two models, times each call with its own
//! clock, and pauses or stops between calls. Nothing here blocks: every
//! read-back is awaited.
//!
//! The lab lives in one slot of this thread (a page holds one lab); a call
//! takes it out while it awaits and puts it back after, failed or not, so
//! a failed call loses nothing already trained, and a call that overlaps
//! another is refused instead of racing it.

mod slot;

use std::cell::RefCell;
use std::future::Future;
use std::path::Path;

use vae_vs_gan::compare::score::{baselines_async, classify_async, POINT_SAMPLES};
use vae_vs_gan::compare::{Column, Figure, Figures};
use vae_vs_gan::data::mnist::{images_from_bytes, Images};
use vae_vs_gan::data::{Dataset, GpuDataset, PIXELS};
use vae_vs_gan::io::Checkpoint;
use vae_vs_gan::models::classifier::Classifier;
use vae_vs_gan::models::gan::{Gan, GanConfig, GanOptions};
use vae_vs_gan::models::gan_loss::GanLoss;
use vae_vs_gan::models::preset::{run_metadata, Preset};
use vae_vs_gan::models::vae::Vae;
use vae_vs_gan::{Gpu, GpuOptions};
use wasm_bindgen::prelude::*;

pub use slot::MAX_STEPS_PER_CALL;
use slot::{Model, Picture, Reference, Slot, Training};

/// The device, the dataset, its classifier and the two models' places.
struct Lab {
    gpu: Gpu,
    dataset: Dataset,
    /// The training images, all of them (each preset takes its first).
    train: Images,
    /// The first [`POINT_SAMPLES`] test images.
    test: Images,
    classifier: Classifier,
    /// The scoring reference, built at the first score.
    reference: Option<Reference>,
    /// The VAE's place, then the GAN's.
    slots: [Option<Slot>; 2],
}

thread_local! {
    static LAB: RefCell<Option<Lab>> = const { RefCell::new(None) };
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// An engine error as the page shows it: a lost device without the
/// native advice to restart the program (the page says what to do).
fn engine_err(e: vae_vs_gan::Error) -> JsError {
    match e {
        vae_vs_gan::Error::DeviceLost { context, reason } => js_err(format!(
            "the GPU device was lost while {context} ({reason})"
        )),
        e => js_err(e),
    }
}

/// Run `call` on the lab, taken out of its slot while it awaits and put
/// back after, failed or not.
async fn with_lab<T, F>(call: impl FnOnce(Lab) -> F) -> Result<T, JsError>
where
    F: Future<Output = (Lab, Result<T, JsError>)>,
{
    let lab = LAB.with(|l| l.borrow_mut().take()).ok_or_else(|| {
        js_err("the lab is not open, or busy with another call: press Train or load a checkpoint")
    })?;
    let (lab, out) = call(lab).await;
    LAB.with(|l| *l.borrow_mut() = Some(lab));
    out
}

fn slot(lab: &Lab, model: usize) -> Result<&Slot, JsError> {
    match lab.slots.get(model) {
        Some(Some(s)) => Ok(s),
        Some(None) => Err(js_err(format!(
            "no {} yet: press Train, or load its checkpoint",
            ["VAE", "GAN"][model]
        ))),
        None => Err(js_err(format!("no model {model}: 0 is the VAE, 1 the GAN"))),
    }
}

fn dataset(name: &str) -> Result<Dataset, JsError> {
    [Dataset::Mnist, Dataset::Fashion]
        .into_iter()
        .find(|d| d.name() == name)
        .ok_or_else(|| js_err(format!("unknown dataset {name:?}: choose mnist or fashion")))
}

/// Open this page's WebGPU adapter with `dataset` (`mnist`, `fashion`):
/// its training and test files' bytes (read by the engine's IDX reader)
/// and its classifier's safetensors bytes. Replaces a lab already open
/// (and what it held). Returns [`lab_status`]: the adapter, whether it
/// is a fallback (CPU) adapter, no models yet.
#[wasm_bindgen]
pub async fn lab_open(
    dataset_name: String,
    train_images: Vec<u8>,
    train_labels: Vec<u8>,
    test_images: Vec<u8>,
    test_labels: Vec<u8>,
    classifier: Vec<u8>,
) -> Result<String, JsError> {
    LAB.with(|l| l.borrow_mut().take());
    let dataset = dataset(&dataset_name)?;
    let load = |images: &[u8], labels: &[u8], split: &str, limit: Option<usize>| {
        images_from_bytes(
            images,
            Path::new(&format!("{}/{split}-images-idx3-ubyte.gz", dataset.name())),
            labels,
            Path::new(&format!("{}/{split}-labels-idx1-ubyte.gz", dataset.name())),
            limit,
        )
        .map_err(engine_err)
    };
    let train = load(&train_images, &train_labels, "train", None)?;
    let test = load(&test_images, &test_labels, "t10k", Some(POINT_SAMPLES))?;
    let gpu = Gpu::open_async(GpuOptions::default())
        .await
        .map_err(engine_err)?;
    let path = Path::new("classifier.safetensors");
    let ck = Checkpoint::from_bytes(&classifier, path).map_err(engine_err)?;
    let classifier = Classifier::from_checkpoint(&gpu, &ck, path).map_err(engine_err)?;
    LAB.with(|l| {
        *l.borrow_mut() = Some(Lab {
            gpu,
            dataset,
            train,
            test,
            classifier,
            reference: None,
            slots: [None, None],
        })
    });
    lab_status()
}

/// Build both models of `preset` (`tiny`, `smoke`, `article`; `dcgan` is
/// the GAN's preset, beside the article's VAE) with `seed`, the GAN with
/// `gan_loss` (`--gan-loss`'s names), no step run yet, in place of what
/// the lab held. Returns [`lab_status`].
#[wasm_bindgen]
pub async fn lab_start(preset: String, seed: u32, gan_loss: String) -> Result<String, JsError> {
    with_lab(|mut lab| async move {
        let out = start(&mut lab, &preset, seed as u64, &gan_loss);
        (lab, out)
    })
    .await?;
    lab_status()
}

fn start(lab: &mut Lab, preset: &str, seed: u64, gan_loss: &str) -> Result<(), JsError> {
    let loss = GanLoss::from_name(gan_loss).ok_or_else(|| {
        let names: Vec<&str> = GanLoss::ALL.iter().map(|l| l.name()).collect();
        js_err(format!(
            "unknown GAN loss {gan_loss:?}: choose {}",
            names.join(", ")
        ))
    })?;
    let (vae_preset, gan_preset) = match preset {
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
    let gpu = &lab.gpu;
    let v = vae_preset.vae().map_err(engine_err)?;
    let g = gan_preset.gan();
    let first = |limit: Option<usize>| {
        let n = limit.unwrap_or(lab.train.len()).min(lab.train.len());
        Images {
            pixels: lab.train.pixels[..n * PIXELS].to_vec(),
            labels: lab.train.labels[..n].to_vec(),
        }
    };
    let build = |model: Model,
                 preset: Preset,
                 images: Images,
                 batch: usize,
                 epochs: usize,
                 settings: Vec<(String, String)>|
     -> vae_vs_gan::Result<Slot> {
        let training = Training::new(gpu, &model, &images, seed, batch, epochs)?;
        let own = match &model {
            Model::Gan(_) => format!(", {} loss", loss.name()),
            Model::Vae(_) => String::new(),
        };
        Ok(Slot {
            source: format!("{} preset, seed {seed}{own}", preset.name()),
            meta: run_metadata(preset, images.len(), lab.dataset, settings)
                .into_iter()
                .chain([(
                    "trained_in".into(),
                    format!("browser lab: {}", gpu.describe()),
                )])
                .collect(),
            model,
            training: Some(training),
            kept: None,
        })
    };
    let vc = v.config(seed);
    let vae = Model::Vae(Box::new(Vae::new(gpu, vc.clone()).map_err(engine_err)?));
    let vae = build(
        vae,
        vae_preset,
        first(v.train_images),
        v.batch,
        v.epochs,
        vc.settings(),
    )
    .map_err(engine_err)?;
    let gc = GanConfig {
        options: GanOptions {
            loss,
            ..GanOptions::default()
        },
        ..g.config(seed)
    };
    let gan = Model::Gan(Box::new(Gan::new(gpu, gc.clone()).map_err(engine_err)?));
    // an epoch counts the real images a step reads (the Wasserstein GAN's
    // critic reads n_critic batches)
    let gan = build(
        gan,
        gan_preset,
        first(g.train_images),
        gc.images_per_step(),
        g.epochs,
        gc.settings(),
    )
    .map_err(engine_err)?;
    lab.slots = [Some(vae), Some(gan)];
    Ok(())
}

/// Load the checkpoint file `name` (its bytes) into place `model` (0 the
/// VAE, 1 the GAN) to sample, explore and score it; a file of another
/// model, size or format is refused naming it, and the place keeps what
/// it held. Returns [`lab_status`].
#[wasm_bindgen]
pub async fn lab_load(model: usize, name: String, bytes: Vec<u8>) -> Result<String, JsError> {
    with_lab(|mut lab| async move {
        let out = match model {
            0 | 1 => Model::load(&lab.gpu, model, &name, &bytes)
                .map(|(m, ck)| {
                    lab.slots[model] = Some(Slot {
                        model: m,
                        training: None,
                        source: format!("loaded from {name}"),
                        meta: ck.metadata,
                        kept: None,
                    })
                })
                .map_err(engine_err),
            _ => Err(js_err(format!("no model {model}: 0 is the VAE, 1 the GAN"))),
        };
        (lab, out)
    })
    .await?;
    lab_status()
}

/// What the lab holds, as JSON: the adapter, whether the device is lost
/// (and why), and per place: the model's name, where it comes from, its
/// parameters, loss names, steps, and for a model in training its batch,
/// steps per epoch, epochs and steps in all; the steps of its kept
/// checkpoint.
#[wasm_bindgen]
pub fn lab_status() -> Result<String, JsError> {
    LAB.with(|l| {
        let l = l.borrow();
        let lab = l
            .as_ref()
            .ok_or_else(|| js_err("the lab is not open, or busy with another call"))?;
        let places: Vec<serde_json::Value> = lab
            .slots
            .iter()
            .map(|s| match s {
                None => serde_json::Value::Null,
                Some(s) => serde_json::json!({
                    "name": s.model.name(),
                    "source": s.source,
                    "params": s.model.param_count(),
                    "losses": s.model.loss_names(),
                    "steps": s.steps(),
                    "training": s.training.as_ref().map(|t| serde_json::json!({
                        "batch": t.batch,
                        "steps_per_epoch": t.per_epoch(),
                        "epochs": t.epochs,
                        "total": t.total(),
                    })),
                    "kept_steps": s.kept.as_ref().and_then(|k| k.metadata.get("steps")),
                }),
            })
            .collect();
        Ok(serde_json::json!({
            "adapter": lab.gpu.describe(),
            "fallback": lab.gpu.is_cpu(),
            "dataset": lab.dataset.name(),
            "lost": lab.gpu.lost(),
            "models": places,
        })
        .to_string())
    })
}

/// Train model `model` (0 the VAE, 1 the GAN) up to `steps` more steps (at
/// most [`MAX_STEPS_PER_CALL`], within its current epoch). Returns JSON:
/// steps done and in all, the epoch, the last step's losses by name, and
/// whether the model has finished its preset's epochs. A NaN or infinite
/// loss is an error naming it and its step; the model keeps what it had.
#[wasm_bindgen]
pub async fn lab_train(model: usize, steps: usize) -> Result<String, JsError> {
    with_lab(|mut lab| async move {
        let out = train_one(&mut lab, model, steps).await;
        (lab, out)
    })
    .await
}

async fn train_one(lab: &mut Lab, model: usize, steps: usize) -> Result<String, JsError> {
    slot(lab, model)?;
    let gpu = &lab.gpu;
    let s = lab.slots[model].as_mut().expect("checked above");
    let name = s.model.name();
    let names = s.model.loss_names();
    let t = s.training.as_mut().ok_or_else(|| {
        js_err(format!(
            "the {name} was loaded from a checkpoint: it samples, it does not train here"
        ))
    })?;
    if t.done >= t.total() {
        return Err(js_err(format!("the {name} has finished its epochs")));
    }
    let losses = t.run(gpu, steps, name).await.map_err(engine_err)?;
    if let Some((loss, v)) = names.iter().zip(&losses).find(|(_, v)| !v.is_finite()) {
        return Err(js_err(format!(
            "the {name}'s {loss} is {v} at step {}: training diverged",
            t.done
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

/// Model `model`'s 100 samples from fixed latents as a 10x10 grid: RGBA
/// bytes of a square picture (302 pixels a side).
#[wasm_bindgen]
pub async fn lab_samples(model: usize) -> Result<Vec<u8>, JsError> {
    picture(model, Picture::Samples).await
}

/// Model `model`'s 20x20 grid over its 2-D latent's prior quantiles: RGBA
/// bytes of a square picture (602 pixels a side).
#[wasm_bindgen]
pub async fn lab_latents(model: usize) -> Result<Vec<u8>, JsError> {
    picture(model, Picture::Latents).await
}

async fn picture(model: usize, which: Picture) -> Result<Vec<u8>, JsError> {
    with_lab(|lab| async move {
        let out = match slot(&lab, model) {
            Ok(s) => s.picture(&lab.gpu, which).await.map_err(engine_err),
            Err(e) => Err(e),
        };
        (lab, out)
    })
    .await
}

/// The figures of `figs`' column `col` as JSON rows: key, label, unit,
/// decimals and value.
fn figure_rows(figs: &Figures, col: Column) -> serde_json::Value {
    Figure::ALL
        .into_iter()
        .filter_map(|f| {
            let s = figs.stat(col, f)?;
            let (label, unit) = f.label();
            Some(serde_json::json!({
                "key": vae_vs_gan::compare::figures::key(f),
                "label": label,
                "unit": unit,
                "decimals": f.decimals(),
                "value": s.mean,
            }))
        })
        .collect()
}

/// The reference the models are scored against: the test images'
/// pixels, their classifier features and their device copy; built once.
async fn reference(lab: &mut Lab) -> vae_vs_gan::Result<&Reference> {
    if lab.reference.is_none() {
        let pixels = lab.test.unit_pixels(lab.test.len());
        let features = classify_async(&lab.gpu, &lab.classifier, &pixels)
            .await?
            .features;
        let data = GpuDataset::upload(&lab.gpu, &lab.test, "test")?;
        lab.reference = Some(Reference {
            pixels,
            features,
            data,
        });
    }
    Ok(lab.reference.as_ref().expect("just built"))
}

/// Score model `model` as a point of the native comparison's curves: its
/// samples' FID, precision, recall, class coverage, Inception Score and
/// sharpness against the first 1,000 test images through the committed
/// classifier; the VAE's test negative ELBO on them; a 2-D latent grid's
/// structure. Returns JSON rows ([`figure_rows`]).
#[wasm_bindgen]
pub async fn lab_score(model: usize) -> Result<String, JsError> {
    with_lab(|mut lab| async move {
        let out = score_one(&mut lab, model).await;
        (lab, out)
    })
    .await
}

async fn score_one(lab: &mut Lab, model: usize) -> Result<String, JsError> {
    slot(lab, model)?;
    reference(lab).await.map_err(engine_err)?;
    let (gpu, classifier) = (&lab.gpu, &lab.classifier);
    let reference = lab.reference.as_ref().expect("built above");
    let s = slot(lab, model)?;
    let col = [Column::Vae, Column::Gan][model];
    let mut figs = Figures::default();
    s.score(gpu, classifier, reference, &mut figs, col)
        .await
        .map_err(engine_err)?;
    Ok(figure_rows(&figs, col).to_string())
}

/// The native report's baselines, scored as [`lab_score`] scores a model:
/// 1,000 real training images, uniform noise, a constant grey image, one
/// repeated digit. Returns JSON: per baseline its title and figure rows.
#[wasm_bindgen]
pub async fn lab_baselines() -> Result<String, JsError> {
    with_lab(|mut lab| async move {
        let out = baselines(&mut lab).await;
        (lab, out)
    })
    .await
}

async fn baselines(lab: &mut Lab) -> Result<String, JsError> {
    reference(lab).await.map_err(engine_err)?;
    let reference = lab.reference.as_ref().expect("built above");
    let train = lab.train.unit_pixels(POINT_SAMPLES);
    let mut figs = Figures::default();
    baselines_async(
        &lab.gpu,
        &lab.classifier,
        &reference.features,
        &reference.pixels,
        &train,
        &mut figs,
    )
    .await
    .map_err(engine_err)?;
    let cols: Vec<serde_json::Value> = [
        Column::TestVsTrain,
        Column::UniformNoise,
        Column::ConstantImage,
        Column::RepeatedDigit,
    ]
    .into_iter()
    .map(|c| serde_json::json!({"title": c.title(), "figures": figure_rows(&figs, c)}))
    .collect();
    Ok(serde_json::Value::Array(cols).to_string())
}

/// Keep model `model`'s checkpoint now (the page keeps one whenever it
/// redraws the samples): what [`lab_checkpoint`] gives once the device
/// is lost.
#[wasm_bindgen]
pub async fn lab_keep(model: usize) -> Result<(), JsError> {
    with_lab(|mut lab| async move {
        let gpu = &lab.gpu;
        let out = match lab.slots.get_mut(model).and_then(Option::as_mut) {
            Some(s) => s.keep(gpu).await.map_err(engine_err),
            None => Err(js_err(format!("no model in place {model}"))),
        };
        (lab, out)
    })
    .await
}

/// Model `model`'s checkpoint as the safetensors file the native tools
/// write and read (`compare --vae-ckpt/--gan-ckpt` scores it): its
/// weights, Adam moments (and the GAN's running statistics) in PyTorch
/// names and layouts, and its run's settings as metadata. Once the device
/// is lost: the checkpoint kept last ([`lab_keep`]).
#[wasm_bindgen]
pub async fn lab_checkpoint(model: usize) -> Result<Vec<u8>, JsError> {
    with_lab(|lab| async move {
        let out = checkpoint(&lab, model).await;
        (lab, out)
    })
    .await
}

async fn checkpoint(lab: &Lab, model: usize) -> Result<Vec<u8>, JsError> {
    let s = slot(lab, model)?;
    let name = s.model.name().to_lowercase();
    let path = format!("{name}.safetensors");
    let ck = match (lab.gpu.lost(), &s.kept) {
        (None, _) => s.checkpoint(&lab.gpu).await.map_err(engine_err)?,
        (Some(_), Some(kept)) => kept.clone(),
        (Some(why), None) => {
            return Err(js_err(format!(
                "the GPU device was lost ({why}) before the {} was kept: nothing to download",
                s.model.name()
            )))
        }
    };
    ck.to_bytes(Path::new(&path)).map_err(engine_err)
}

/// Destroy the device, as a driver reset would lose it: how the page's
/// test checks what a visitor sees then.
#[wasm_bindgen]
pub fn lab_lose_device() -> Result<(), JsError> {
    LAB.with(|l| match l.borrow().as_ref() {
        Some(lab) => {
            lab.gpu.device.destroy();
            Ok(())
        }
        None => Err(js_err("the lab is not open, or busy with another call")),
    })
}
