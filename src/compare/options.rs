//! The comparison's options, and the checks that refuse what cannot work
//! before anything is trained or written.

use std::path::{Path, PathBuf};

use crate::compare::cost::DEFAULT_COST_BATCH;
use crate::compare::report::{REPORT_JSON, REPORT_MD};
use crate::compare::runs::{run_state, RunState};
use crate::compare::verdict::MIN_SEEDS;
use crate::data::{Dataset, PIXELS};
use crate::error::{Error, Result};
use crate::models::gan::GanOptions;
use crate::models::vae::VaeOptions;
use crate::train::budget::{Budget, CurvePlan, DEFAULT_POINTS, MAX_POINTS};
use crate::train::session::{check_writable, saved_setting, RunOptions, CHECKPOINT};
use crate::train::Preset;

/// The most samples a comparison scores: the train-image baseline uses as
/// many real training images, and there are 60,000.
pub const MAX_SAMPLES: usize = 60_000;
/// The fewest: precision and recall need more than k = 3 points per set.
pub const MIN_SAMPLES: usize = 10;

/// What to compare and where to write it.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// The comparison's preset: sample counts, and each model's preset
    /// unless `vae_preset` / `gan_preset` say otherwise.
    pub preset: Preset,
    /// The VAE's training preset (default: `preset`).
    pub vae_preset: Option<Preset>,
    /// The GAN's training preset (default: `preset`), e.g. `dcgan`, the
    /// setting GANs are usually judged in, beside the article's VAE.
    pub gan_preset: Option<Preset>,
    /// Seeds `0..seeds`, each a VAE and a GAN trained and scored.
    pub seeds: usize,
    /// Samples scored per model (default: the preset's).
    pub samples: Option<usize>,
    /// Test images the IWAE bound is computed on (default: the preset's).
    pub iwae_images: Option<usize>,
    /// Importance samples per image.
    pub iwae_k: usize,
    pub out: PathBuf,
    /// Score this VAE checkpoint instead of training one.
    pub vae_ckpt: Option<PathBuf>,
    /// Score this GAN checkpoint instead of training one.
    pub gan_ckpt: Option<PathBuf>,
    /// The dataset both models learn and are scored on.
    pub dataset: Dataset,
    /// The feature network's weights (default: the dataset's committed
    /// classifier, [`default_classifier`]).
    pub classifier: Option<PathBuf>,
    /// The dataset's IDX files (default: [`Dataset::default_dir`]).
    pub data_dir: Option<PathBuf>,
    /// The VAE's options every seed's VAE trains with.
    pub vae: VaeOptions,
    /// The GAN's options every seed's GAN trains with.
    pub gan: GanOptions,
    /// The batch size both training steps are measured at for the cost
    /// claim ([`crate::compare::cost`]): 32, the article's, or 8 for the
    /// tiny preset.
    pub cost_batch: usize,
    /// Replace an earlier comparison (and its training runs) in `out`.
    pub overwrite: bool,
    /// Continue the training runs an earlier comparison in `out` left
    /// (finished ones are reused as they are, interrupted ones continue
    /// from their last epoch, missing ones start), then score everything.
    pub resume: bool,
    /// Train each model, per seed, until this budget is spent instead of
    /// for its preset's epochs ([`crate::train::budget`]).
    pub budget: Option<Budget>,
    /// Score each model at this many marks along its training (default:
    /// [`DEFAULT_POINTS`] with a budget, none without).
    pub curve_points: Option<usize>,
}

impl CompareOptions {
    /// The preset's comparison into `out`: 3 seeds for the article preset
    /// (what a verdict needs), 1 otherwise.
    pub fn new(preset: Preset, out: &Path) -> CompareOptions {
        CompareOptions {
            preset,
            vae_preset: None,
            gan_preset: None,
            seeds: if preset == Preset::Article {
                MIN_SEEDS
            } else {
                1
            },
            samples: None,
            iwae_images: None,
            iwae_k: 100,
            out: out.to_path_buf(),
            vae_ckpt: None,
            gan_ckpt: None,
            dataset: Dataset::Mnist,
            vae: VaeOptions::default(),
            gan: GanOptions::default(),
            classifier: None,
            data_dir: None,
            // the tiny preset's own batch: tests stay small
            cost_batch: if preset == Preset::Tiny {
                8
            } else {
                DEFAULT_COST_BATCH
            },
            overwrite: false,
            resume: false,
            budget: None,
            curve_points: None,
        }
    }

    /// The training runs' curve: with a budget or `--curve-points`.
    pub fn curve(&self) -> Option<CurvePlan> {
        match (self.curve_points, self.budget) {
            (Some(points), _) => Some(CurvePlan { points }),
            (None, Some(_)) => Some(CurvePlan {
                points: DEFAULT_POINTS,
            }),
            (None, None) => None,
        }
    }

    /// How long each model trained, in words: `an equal budget of 300 s
    /// per model` or `the smoke preset's epochs`.
    pub fn training_words(&self) -> String {
        match self.budget {
            Some(b) => format!("an equal budget of {} per model", b.describe()),
            None => format!("the {} preset's epochs", self.preset_label()),
        }
    }

    /// `(samples, IWAE images)`: given, else 10,000 and the whole test set;
    /// the smoke preset 2,000 and 200; tiny 64 and 4.
    pub fn sizes(&self) -> (usize, usize) {
        let (s, i) = match self.preset {
            Preset::Smoke => (2_000, 200),
            Preset::Tiny => (64, 4),
            _ => (10_000, 10_000),
        };
        (self.samples.unwrap_or(s), self.iwae_images.unwrap_or(i))
    }

    /// The dataset's folder.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| self.dataset.default_dir())
    }

    /// The classifier's weights.
    pub fn classifier(&self) -> PathBuf {
        self.classifier
            .clone()
            .unwrap_or_else(|| default_classifier(self.dataset))
    }

    /// The preset the VAE trains with.
    pub fn vae_preset(&self) -> Preset {
        self.vae_preset.unwrap_or(self.preset)
    }

    /// The preset the GAN trains with.
    pub fn gan_preset(&self) -> Preset {
        self.gan_preset.unwrap_or(self.preset)
    }

    /// The presets in words: `article`, or `vae article, gan dcgan`.
    pub fn preset_label(&self) -> String {
        let (v, g) = (self.vae_preset(), self.gan_preset());
        if v == g {
            v.name().to_string()
        } else {
            format!("vae {}, gan {}", v.name(), g.name())
        }
    }

    /// The preset of the two models trained least (smoke or tiny, if
    /// either is): what decides whether there can be a verdict.
    pub fn weakest_preset(&self) -> Preset {
        let short = |p: Preset| matches!(p, Preset::Smoke | Preset::Tiny);
        [self.vae_preset(), self.gan_preset()]
            .into_iter()
            .find(|&p| short(p))
            .unwrap_or(self.vae_preset())
    }

    pub(crate) fn seed_dir(&self, seed: usize, model: &str) -> PathBuf {
        self.out.join(format!("seed-{seed}")).join(model)
    }

    /// The training run of `model` ("vae" or "gan") for `seed`, at that
    /// model's preset, for the comparison `id` ([`crate::compare::runs`]):
    /// with `--resume`, a run of this comparison continues and one of a
    /// replaced comparison is trained anew.
    pub fn run_options(&self, seed: usize, model: &str, id: Option<&str>) -> Result<RunOptions> {
        let preset = if model == "gan" {
            self.gan_preset()
        } else {
            self.vae_preset()
        };
        let mut r = RunOptions::new(preset, &self.seed_dir(seed, model));
        r.seed = seed as u64;
        // Only a resume asks whose a run is: an overwrite replaces every
        // run, and a new comparison has none (check_options).
        let state = if self.resume {
            run_state(&r.out, id)?
        } else {
            RunState::Missing
        };
        if let RunState::Stale(ck) = &state {
            eprintln!(
                "compare: {} is a run of the comparison this one replaced: training it anew",
                ck.display()
            );
        }
        r.resume = state == RunState::Own;
        r.overwrite = self.overwrite || matches!(state, RunState::Stale(_));
        r.comparison = id.map(str::to_string);
        r.dataset = self.dataset;
        r.data_dir = Some(self.data_dir());
        r.reuse_finished = true;
        r.budget = self.budget;
        r.curve = self.curve();
        Ok(r)
    }
}

/// The committed classifier of `dataset` (relative to the repository
/// root): data/classifier for MNIST, data/classifier-fashion for
/// Fashion-MNIST.
pub fn default_classifier(dataset: Dataset) -> PathBuf {
    match dataset {
        Dataset::Mnist => PathBuf::from("data/classifier/classifier.safetensors"),
        Dataset::Fashion => PathBuf::from("data/classifier-fashion/classifier.safetensors"),
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::invalid("compare", msg.into())
}

/// Bytes of host memory the scoring needs per sample (a few f32 image
/// sets and their features alive at once), for the up-front check.
const HOST_BYTES_PER_SAMPLE: u64 = 10 * (PIXELS as u64) * 4;

fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Refuse what cannot work before anything is trained or written.
pub(crate) fn check_options(o: &CompareOptions) -> Result<()> {
    let (samples, iwae_images) = o.sizes();
    if o.vae_ckpt.is_none() && o.vae_preset().vae().is_err() {
        return Err(invalid(format!(
            "{} is a GAN preset and has no VAE: pass --vae-preset article (or smoke, \
             tiny) beside it",
            o.vae_preset().name()
        )));
    }
    o.gan.check("compare")?;
    if o.seeds == 0 {
        return Err(invalid("--seeds must be at least 1"));
    }
    if (o.vae_ckpt.is_some() || o.gan_ckpt.is_some()) && o.seeds > 1 {
        return Err(invalid(
            "--vae-ckpt/--gan-ckpt score one trained model: --seeds must be 1",
        ));
    }
    if o.budget.is_some() && (o.vae_ckpt.is_some() || o.gan_ckpt.is_some()) {
        return Err(invalid(
            "a budget says how long to train both models; --vae-ckpt/--gan-ckpt score models \
             already trained: give one or the other",
        ));
    }
    if let Some(p) = o.curve_points {
        if !(2..=MAX_POINTS).contains(&p) {
            return Err(invalid(format!(
                "--curve-points {p}: must be in 2..={MAX_POINTS}"
            )));
        }
    }
    if !(MIN_SAMPLES..=MAX_SAMPLES).contains(&samples) {
        return Err(invalid(format!(
            "--samples {samples}: must be between {MIN_SAMPLES} and {MAX_SAMPLES} \
             (the train-image baseline scores as many real training images)"
        )));
    }
    if o.cost_batch == 0 || o.cost_batch > samples {
        return Err(invalid(format!(
            "--cost-batch {}: must be between 1 and --samples ({samples})",
            o.cost_batch
        )));
    }
    let need = samples as u64 * HOST_BYTES_PER_SAMPLE;
    if let Some(avail) = available_memory() {
        if need > avail / 10 * 8 {
            return Err(invalid(format!(
                "--samples {samples} needs about {} MiB of memory to score, but only {} MiB \
                 is available: use fewer samples",
                need >> 20,
                avail >> 20
            )));
        }
    }
    if iwae_images == 0 || iwae_images > 10_000 || o.iwae_k == 0 {
        return Err(invalid(format!(
            "--iwae-images {iwae_images} must be in 1..=10000 (the test set) and --iwae-k {} \
             positive",
            o.iwae_k
        )));
    }
    // The host memory one image's k decoded latents take (logits and
    // their log-likelihoods), against what is available.
    let iwae_need = o.iwae_k as u64 * (PIXELS as u64 + 2) * 8;
    if let Some(avail) = available_memory() {
        if iwae_need > avail / 10 * 8 {
            return Err(invalid(format!(
                "--iwae-k {} needs about {} MiB of memory per image, but only {} MiB is \
                 available: use a smaller k (the IWAE paper uses 5000)",
                o.iwae_k,
                iwae_need >> 20,
                avail >> 20
            )));
        }
    }
    if o.out.exists() && !o.out.is_dir() {
        return Err(Error::data(&o.out, "--out is a file, not a folder"));
    }
    check_writable(&o.out)?;
    if o.overwrite && o.resume {
        return Err(invalid(
            "--overwrite replaces the runs in --out, --resume continues them: choose one",
        ));
    }
    if !o.overwrite && !o.resume {
        let mut taken = vec![o.out.join(REPORT_JSON), o.out.join(REPORT_MD)];
        for s in 0..o.seeds {
            if o.vae_ckpt.is_none() {
                taken.push(o.seed_dir(s, "vae").join(CHECKPOINT));
            }
            if o.gan_ckpt.is_none() {
                taken.push(o.seed_dir(s, "gan").join(CHECKPOINT));
            }
        }
        if let Some(p) = taken.iter().find(|p| p.exists()) {
            return Err(Error::data(
                p,
                "this folder already holds a comparison: pass --resume to continue its \
                 training runs, --overwrite to replace it, or choose another --out",
            ));
        }
    }
    Ok(())
}

/// Refuse to `--resume` training runs with a budget or curve other than
/// theirs, naming both, before anything is scored or trained.
pub(crate) fn check_resumed_runs(o: &CompareOptions, id: Option<&str>) -> Result<()> {
    if !o.resume {
        return Ok(());
    }
    for seed in 0..o.seeds {
        for model in ["vae", "gan"] {
            let dir = o.seed_dir(seed, model);
            if run_state(&dir, id)? != RunState::Own {
                continue;
            }
            let path = dir.join(CHECKPOINT);
            let meta = crate::io::Checkpoint::load(&path)?.metadata;
            let mut r = RunOptions::new(o.preset, &dir);
            (r.budget, r.curve) = (o.budget, o.curve());
            for (key, want) in r.length_meta() {
                let flag = match key {
                    "budget" => "--budget-seconds/--budget-images",
                    _ => "--curve-points",
                };
                let saved = saved_setting(&meta, key).unwrap_or_else(|| "none".into());
                if saved != want {
                    return Err(Error::data(
                        &path,
                        format!(
                            "this run was trained with {key} {saved}, the resumed comparison asks \
                             for {want}: resume with the same {flag} (or start another --out)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}
