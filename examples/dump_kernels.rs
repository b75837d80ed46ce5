//! Write every distinct WGSL module the engine can compile into a folder,
//! one `<key>.wgsl` file per module, for a second compiler to check
//! (`node tools/tint_check.mjs DIR`: Chrome's Tint, which enforces WGSL's
//! uniformity analysis; naga, the crate's own, does not).
//!
//! `cargo run --release --example dump_kernels -- DIR` (or `--out DIR`;
//! default `target/kernels`)
//!
//! The modules are those of `vae_vs_gan::all_kernels()` (every kernel
//! family at representative parameters: what tests/it/shaders.rs validates
//! with naga) plus every module the three models compile (read back from
//! the pipeline cache, `Gpu::compiled_kernels`) under both kernel policies
//! (`gpu`: a discrete GPU's GEMM choices, `cpu`: a CPU driver's), with
//! latent sizes 2 and 100 and batch sizes 1, 8, 32, 128, 256 and 512 (and
//! 12 and 500, the chunks inference on 512 images runs in): the VAE's
//! training and evaluation steps (with each KL estimator: `--kl analytic`,
//! `--kl mc`), the GAN's training step (both discriminator heads; and with
//! the article's options on, `--label-noise` and `--fresh-noise-for-g`,
//! whose loss kernel and extra draw are their own modules), the
//! classifier's training step, recorded, not run; and once per policy on 1 and on 8 images, run, the inference
//! calls: VAE encode, decode, decode_logits, sample; GAN sample,
//! discriminate; classifier features_and_probs. Inference is the training
//! forward at the chunk size, so its GEMMs are those of the training step
//! at that batch; running it at 512 images compiled nothing that this
//! does not (checked once: ~8 minutes on lavapipe, against ~10 s).
//!
//! Files are named after the kernel key with the characters a shell or a
//! file system could trip on mapped (`[`, `,` -> `.`, `]` dropped, others
//! outside `A-Za-z0-9_.+=-` -> `_`); two keys mapping to one name are
//! refused. The folder is created if missing and marked as this
//! example's (`.dump_kernels`); in a marked folder the `.wgsl` files of
//! the last run are replaced, so none is left stale. A folder that holds
//! `.wgsl` files and no mark is refused (the checker would check them too,
//! and `shaders/` would be overwritten), as is a path that is a file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use vae_vs_gan::data::{self, Dataset, GpuDataset, Images, Split};
use vae_vs_gan::gpu::{KernelPolicy, LimitsPolicy, StepState};
use vae_vs_gan::models::classifier::{Classifier, ClassifierConfig};
use vae_vs_gan::models::gan::{DHead, Gan, GanConfig, GanOptions};
use vae_vs_gan::models::gan_loss::GanLoss;
use vae_vs_gan::models::vae::{KlEstimator, Vae, VaeConfig, VaeOptions};
use vae_vs_gan::models::CHUNK;
use vae_vs_gan::optim::adam::AdamConfig;
use vae_vs_gan::{Gpu, GpuOptions};

/// Batch sizes the models are built at (the presets use 8, 32 and 256).
const BATCHES: [usize; 6] = [1, 8, 32, 128, 256, 512];
/// Latent sizes (2: the article's; 100: the DCGAN tutorial's).
const LATENTS: [usize; 2] = [2, 100];
/// Most images an inference call here runs on. Inference is the training
/// step's forward at the chunk size: its GEMMs are those of the training
/// step at that batch (recorded, see [`model_batches`]), and its other
/// kernels (sigmoid, eval-mode batch norm, ...) do not depend on shapes.
/// Running it is what costs: lavapipe runs the `gpu` policy's kernels
/// slowly (all of it at 512 images took ~8 minutes on 2 cores).
const INFER_RUN: usize = 8;

/// The batch sizes to record steps at: [`BATCHES`] and the chunk sizes
/// inference on that many images runs at (`models::CHUNK` = 500 images per
/// submit: 512 -> 500 + 12), so the chunks' GEMMs are compiled too.
fn model_batches() -> BTreeSet<usize> {
    let mut v = BTreeSet::new();
    for b in BATCHES {
        v.insert(b);
        v.insert(b.min(CHUNK));
        if b > CHUNK && b % CHUNK != 0 {
            v.insert(b % CHUNK);
        }
    }
    v
}

#[derive(Parser, Debug)]
#[command(about = "Write every distinct WGSL module the engine can compile as DIR/<key>.wgsl")]
struct Args {
    /// Output folder (created if missing).
    dir: Option<PathBuf>,
    /// Output folder, the same as DIR.
    #[arg(long, conflicts_with = "dir")]
    out: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    vae_vs_gan::train::cli::exit_code(run())
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = args
        .out
        .or(args.dir)
        .unwrap_or_else(|| PathBuf::from("target/kernels"));
    check_dir(&dir)?; // before the work, and again before writing
    let t0 = Instant::now();

    // key -> source, every distinct module
    let mut modules: BTreeMap<String, String> = BTreeMap::new();
    for k in vae_vs_gan::all_kernels() {
        add(&mut modules, k.key, k.source.into_owned(), "all_kernels")?;
    }
    let n_all = modules.len();

    let images = data::load(
        Dataset::Mnist,
        &Dataset::Mnist.default_dir(),
        Split::Train,
        Some(*BATCHES.iter().max().expect("batches")),
    )
    .context("MNIST training images (data/mnist)")?;
    // the CPU policy with subgroups (the subgroup main, where the adapter
    // runs subgroups of 8) and without (the direct main it falls back to)
    for (policy, subgroups) in [
        (KernelPolicy::Gpu, true),
        (KernelPolicy::Cpu, true),
        (KernelPolicy::Cpu, false),
    ] {
        let t = Instant::now();
        let gpu = Gpu::with_options(GpuOptions {
            kernels: Some(policy),
            // the WebGPU limits, as the test suite: what every device has
            limits: LimitsPolicy::WebGpuDefaults,
            timestamps: false,
            autotune: None,
            subgroups,
        })?;
        let dataset = GpuDataset::upload(&gpu, &images, "x")?;
        let mut inferred = BTreeSet::new();
        for batch in model_batches() {
            let n = batch.min(INFER_RUN);
            let infer = inferred.insert(n).then_some(n);
            models(&gpu, &images, &dataset, batch, infer)
                .with_context(|| format!("{} kernels, batch {batch}", policy.name()))?;
        }
        let compiled = gpu.compiled_kernels();
        eprintln!(
            "{} kernels ({}) on {}: {} modules compiled in {:.1} s",
            policy.name(),
            if subgroups {
                "subgroups where the device has them"
            } else {
                "no subgroups"
            },
            gpu.describe(),
            compiled.len(),
            t.elapsed().as_secs_f64()
        );
        for (key, source) in compiled {
            add(&mut modules, key, source, policy.name())?;
        }
    }

    write_all(&dir, &modules)?;
    println!(
        "{} WGSL modules ({} from all_kernels(), {} more compiled by the models) written to {} in {:.1} s",
        modules.len(),
        n_all,
        modules.len() - n_all,
        dir.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Add one module; a key seen before must come with the same source.
fn add(
    modules: &mut BTreeMap<String, String>,
    key: String,
    source: String,
    from: &str,
) -> anyhow::Result<()> {
    match modules.get(&key) {
        Some(old) if *old != source => bail!(
            "kernel key {key:?} names two different sources ({from}): \
             the pipeline cache would reuse the wrong module"
        ),
        Some(_) => Ok(()),
        None => {
            modules.insert(key, source);
            Ok(())
        }
    }
}

/// Build the three models at `batch` and record their training (and the
/// VAE's evaluation) steps, so the pipeline cache compiles them; with
/// `infer`, also run each model's inference on that many images.
fn models(
    gpu: &Gpu,
    images: &Images,
    dataset: &GpuDataset,
    batch: usize,
    infer: Option<usize>,
) -> anyhow::Result<()> {
    let adam = AdamConfig::keras(1e-3);
    let pixels: Vec<f32> = images.pixels[..infer.unwrap_or(0) * data::PIXELS]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    let signed: Vec<f32> = pixels.iter().map(|&p| p * 2.0 - 1.0).collect();

    for latent in LATENTS {
        for kl in [KlEstimator::Mc, KlEstimator::Analytic] {
            let vae = Vae::new(
                gpu,
                VaeConfig {
                    latent,
                    batch,
                    adam,
                    seed: 0,
                    options: VaeOptions {
                        kl,
                        ..VaeOptions::default()
                    },
                },
            )?;
            let state = StepState::new(gpu, 2, 16, 0)?;
            drop(vae.train_step(gpu, &state, dataset)?);
            drop(vae.eval_step(gpu, &state, dataset, batch)?);
        }
        let vae = Vae::new(
            gpu,
            VaeConfig {
                latent,
                batch,
                adam,
                seed: 0,
                ..VaeConfig::default()
            },
        )?;
        if let Some(n) = infer {
            let (mu, _) = vae.encode(gpu, &pixels)?;
            vae.decode(gpu, &mu)?;
            vae.decode_logits(gpu, &mu)?;
            vae.sample(gpu, n, 1)?;
        }
    }

    for latent in LATENTS {
        for head in [DHead::GlobalMaxPool, DHead::Flatten] {
            // the article's options (label noise, fresh noise for G) add
            // kernels only (their GEMMs are the default step's): recorded
            // at one head, before the default
            let article = GanOptions {
                label_noise: 0.05,
                fresh_noise_for_g: true,
                ..GanOptions::default()
            };
            // each loss adds its kernels only, recorded at one head too
            // (the Wasserstein GAN at one critic iteration: more record
            // the same kernels, and need n_critic batches of images)
            let losses = GanLoss::ALL.map(|loss| GanOptions {
                loss,
                n_critic: (loss == GanLoss::Wasserstein).then_some(1),
                ..GanOptions::default()
            });
            let options = match head {
                DHead::GlobalMaxPool => [&[article][..], &losses].concat(),
                _ => vec![GanOptions::default()],
            };
            let mut last = None;
            for options in options {
                let gan = Gan::new(
                    gpu,
                    GanConfig {
                        latent,
                        batch,
                        adam_g: adam,
                        adam_d: adam,
                        seed: 0,
                        head,
                        options,
                    },
                )?;
                let state = StepState::new(gpu, 2, 16, 0)?;
                drop(gan.train_step(gpu, &state, dataset)?);
                last = Some(gan);
            }
            if let (Some(n), Some(gan)) = (infer, &last) {
                gan.sample(gpu, n, 1)?;
                gan.discriminate(gpu, &signed)?;
            }
        }
    }

    let net = Classifier::new(
        gpu,
        ClassifierConfig {
            batch,
            adam,
            seed: 0,
        },
    )?;
    let state = StepState::new(gpu, 1, 16, 0)?;
    drop(net.train_step(gpu, &state, dataset)?);
    if infer.is_some() {
        net.features_and_probs(gpu, &pixels)?;
    }
    Ok(())
}

/// A file name for a kernel key (see the module doc).
fn file_name(key: &str) -> String {
    let mut s = String::with_capacity(key.len() + 5);
    for c in key.chars() {
        match c {
            '[' | ',' => s.push('.'),
            ']' => {}
            c if c.is_ascii_alphanumeric() || "_.+=-".contains(c) => s.push(c),
            _ => s.push('_'),
        }
    }
    s.push_str(".wgsl");
    s
}

/// Marker file of a folder this example wrote: its `.wgsl` files are this
/// example's to replace.
const MARKER: &str = ".dump_kernels";

/// `.wgsl` files directly in `dir` (none when it does not exist).
fn wgsl_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "wgsl") && path.is_file() {
            v.push(path);
        }
    }
    v.sort();
    Ok(v)
}

/// Refuse a folder that holds `.wgsl` files this example did not write
/// (the checker would check them too; `shaders/` would be overwritten).
fn check_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{} is a file, not a folder: give a folder to write the .wgsl files into",
            dir.display()
        );
    }
    let files = wgsl_files(dir)?;
    if let Some(first) = files.first() {
        if !dir.join(MARKER).is_file() {
            bail!(
                "{} already holds {} .wgsl file(s) (e.g. {}) that dump_kernels did not write: \
                 give an empty or new folder",
                dir.display(),
                files.len(),
                first.display()
            );
        }
    }
    Ok(())
}

/// Write one file per module into `dir`, replacing the `.wgsl` files of an
/// earlier run.
fn write_all(dir: &Path, modules: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    for key in modules.keys() {
        let name = file_name(key);
        if name.len() > 240 {
            bail!(
                "kernel key {key:?} makes a file name of {} bytes",
                name.len()
            );
        }
        if let Some(other) = names.insert(name.clone(), key) {
            bail!("kernel keys {other:?} and {key:?} both map to the file name {name}");
        }
    }
    check_dir(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "Written by `cargo run --example dump_kernels`: its .wgsl files are replaced on every run.\n",
    )
    .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    for old in wgsl_files(dir)? {
        std::fs::remove_file(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    for (name, key) in &names {
        let path = dir.join(name);
        std::fs::write(&path, &modules[*key])
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
