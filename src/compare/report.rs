//! `report.md` and `report.json`: the figures table with its baselines,
//! the verdict on each claim, notes on what the figures mean, and the
//! pictures. Written atomically, after everything else.

use std::path::Path;

use crate::compare::curves::Curves;
use crate::compare::figures::{Figure, Figures};
use crate::compare::verdict::{Verdict, Vote};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::train::AdapterDesc;

/// The report files, written last.
pub const REPORT_MD: &str = "report.md";
pub const REPORT_JSON: &str = "report.json";

/// One row of the report's Settings table: a setting and its value for
/// each model (`–` where it does not apply).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Setting {
    pub name: String,
    pub vae: String,
    pub gan: String,
}

/// The differences between the article's code and the engine's training,
/// each with why: a section of report.md, and of README.md (a test keeps
/// the two the same).
pub const DIFFERENCES: &str = include_str!("differences.md");

/// Everything a comparison measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub adapter: AdapterDesc,
    /// How long the models trained, in words ("an equal budget of 300 s
    /// per model", "the smoke preset's training").
    pub training: String,
    /// Each model's curve per seed (empty without a budget or curve).
    pub curves: Curves,
    /// The curve pictures written, with their figures.
    pub curve_pictures: Vec<(String, Figure)>,
    /// The dataset's name (`mnist`, `fashion`).
    pub dataset: String,
    pub preset: String,
    /// Each model's settings, from its checkpoint (the first seed's).
    pub settings: Vec<Setting>,
    /// The batch size of the cost claim's step measurements.
    pub cost_batch: usize,
    pub seeds: usize,
    /// Samples scored per model (and per baseline).
    pub samples: usize,
    /// Real test images the sets are compared with.
    pub reference_images: usize,
    pub iwae_images: usize,
    pub iwae_k: usize,
    /// Where the models came from (trained folder or checkpoint path).
    pub vae_source: String,
    pub gan_source: String,
    pub figures: Figures,
    pub verdicts: Vec<Verdict>,
    /// Wall-clock time of the whole comparison.
    pub seconds: f64,
}

impl Report {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "adapter": self.adapter,
            "training": self.training,
            "curves": self.curves.to_json(),
            "dataset": self.dataset,
            "preset": self.preset,
            "settings": self.settings,
            "cost_batch": self.cost_batch,
            "seeds": self.seeds,
            "samples": self.samples,
            "reference_images": self.reference_images,
            "iwae_images": self.iwae_images,
            "iwae_k": self.iwae_k,
            "vae_source": self.vae_source,
            "gan_source": self.gan_source,
            "seconds": self.seconds,
            "figures": self.figures.to_json(),
            "verdicts": self.verdicts,
        })
    }

    /// The figures table, one row per figure measured for some column.
    pub fn table(&self) -> String {
        let f = &self.figures;
        let cols = f.columns();
        let mut t = String::from("| figure | unit |");
        for c in &cols {
            t += &format!(" {} |", c.title());
        }
        t += "\n|---|---|";
        t += &"---:|".repeat(cols.len());
        t += "\n";
        for fig in Figure::ALL {
            if cols.iter().all(|&c| f.stat(c, fig).is_none()) {
                continue;
            }
            let (label, unit) = fig.label();
            t += &format!("| {label} | {unit} |");
            for &c in &cols {
                let cell = f
                    .stat(c, fig)
                    .map(|s| s.show(fig.decimals()))
                    .unwrap_or_else(|| "–".into());
                t += &format!(" {cell} |");
            }
            t += "\n";
        }
        t
    }

    /// The dataset as a reader knows it.
    fn dataset_title(&self) -> &str {
        match self.dataset.as_str() {
            "fashion" => "Fashion-MNIST",
            _ => "MNIST",
        }
    }

    /// Three lines: the verdicts, and the adapter and settings in brief.
    pub fn summary(&self) -> String {
        let mut verdicts: Vec<String> = Vec::new();
        let mut none: Option<String> = None;
        for (i, v) in self.verdicts.iter().enumerate() {
            match &v.outcome {
                crate::compare::verdict::Outcome::NoVerdict(why) => {
                    none.get_or_insert_with(|| why.clone());
                    verdicts.push(format!("claim {}: no verdict", i + 1));
                }
                o => verdicts.push(format!("claim {} {}", i + 1, o.text())),
            }
        }
        let mut m = format!("- **Verdicts**: {}.", verdicts.join("; "));
        if let Some(why) = none {
            m += &format!(" Why none: {why}.");
        }
        m += "\n";
        let a = &self.adapter;
        m += &format!(
            "- **Where**: {} ({}, {}); {}, preset `{}`, {} seed(s), {} samples per model.\n",
            a.name,
            a.backend,
            a.device_type,
            self.dataset_title(),
            self.preset,
            self.seeds,
            self.samples
        );
        m += &format!(
            "- **Cost**: both training steps measured alike at batch {} (speed, memory without \
             the datasets, GEMM work); the parameter count is reported, not voting.\n",
            self.cost_batch
        );
        m
    }

    /// The Settings table: every recorded setting of each model.
    pub fn settings_table(&self) -> String {
        let mut t = String::from("| setting | VAE | GAN |\n|---|---|---|\n");
        for s in &self.settings {
            t += &format!("| {} | {} | {} |\n", s.name, s.vae, s.gan);
        }
        t
    }

    /// The whole `report.md`.
    pub fn markdown(&self) -> String {
        let a = &self.adapter;
        let mut m = format!("# VAE vs GAN on {}: measured\n\n", self.dataset_title());
        m += &self.summary();
        m += "\n";
        m += &format!(
            "Adapter: **{}** ({}, {}). Preset `{}`, trained for {}; {} seed(s) (mean ± \
             sample standard deviation over seeds where there are several). {} samples per model, scored \
             against the first {} {} test images; IWAE bound with k = {} on the first {} \
             test images. Whole comparison: {:.0} s.\n\n",
            a.name,
            a.backend,
            a.device_type,
            self.preset,
            self.training,
            self.seeds,
            self.samples,
            self.reference_images,
            self.dataset_title(),
            self.iwae_k,
            self.iwae_images,
            self.seconds
        );
        m += &format!("VAE: {}. GAN: {}.\n\n", self.vae_source, self.gan_source);
        m += HOW_TO_READ;
        m += "\n## Figures\n\n";
        m += &format!(
            "Each cell is the mean over seeds, and after ± the sample standard deviation over \
             seeds where there are several (baselines do not depend on the seed: one value; the \
             step speed is over every timed submit of every seed). {}The cost batch is {}.\n\n",
            if self.seeds == 1 {
                "With one seed there is no spread, so nothing says how much of a difference is \
                 seed noise. "
            } else {
                ""
            },
            self.cost_batch
        );
        m += &self.table();
        if !self.curves.is_empty() {
            m += "\n## Quality as training goes\n\n";
            m += &self.curves.markdown(&self.curve_pictures);
        }
        m += "\n## The article's claims\n\n";
        for v in &self.verdicts {
            m += &format!("- **{}**: {} ({})\n", v.claim, v.outcome.text(), v.at);
            for e in &v.evidence {
                let mark = match e.vote {
                    Vote::Favours => "favours the claim",
                    Vote::Against => "against the claim",
                    Vote::Undecided => "within the noise",
                };
                m += &format!("  - {} — {mark}\n", e.text);
            }
        }
        m += "\n## Settings\n\n";
        m += "Each model's settings as its checkpoint records them (the first seed's; later \
              seeds differ only in the seed).\n\n";
        m += &self.settings_table();
        m += "\n";
        m += DIFFERENCES;
        m += NOTES;
        m += "\n## Pictures (first seed)\n\n";
        m +=
            "Samples: VAE decoder means | VAE Bernoulli draws | GAN\n\n![samples](samples.png)\n\n";
        for (file, what) in [
            (
                "latent_grid_vae.png",
                "VAE decoded over a 20x20 grid of prior quantiles",
            ),
            ("latent_grid_gan.png", "GAN generated over the same grid"),
            (
                "latent_scatter_vae.png",
                "VAE: latent means of the test images",
            ),
            ("loss_vae.png", "VAE loss curves"),
            ("loss_gan.png", "GAN loss curves"),
        ] {
            m += &format!("{what}:\n\n![{what}]({file})\n\n");
        }
        m
    }
}

const HOW_TO_READ: &str = "## How to read this

- **FID here is not the published FID.** It is the Fréchet distance between Gaussians fitted \
to the 128 features of this project's own LeNet classifier (trained on the same dataset), \
not Inception-v3's 2048. Its scale only means something next to the baselines in the same \
table: *train images* is what a perfect generator scores (the floor, sampling noise only), \
*uniform noise*, *constant image* and *one repeated digit* are what failures score. A model \
is good to the extent its FID is near the first and far from the others.
- **A verdict needs enough training**: the article preset (or dcgan for the GAN) and at \
least 3 seeds, or a training budget (`--budget-seconds`, `--budget-images`) and at least 3 \
seeds, when the verdicts hold at that budget and say so: what a model does with more \
training is another question, which the curves below begin to answer. A figure favours a claim only when the difference exceeds the sum of the two \
models' seed standard deviations; a claim is supported when every figure that decides it \
favours it, not supported when none does, mixed otherwise.
- **Cost** is decided by the training steps measured alike at one batch size (speed, and \
memory without the datasets); the training runs' own speed and peak are listed too, at each \
model's own batch size. It needs no training, so it gets a verdict on any run: its speed is \
timed several times per seed, and a speed difference favours the claim only when it exceeds \
the sum of the two models' standard deviations over those timings.
";
const NOTES: &str = "
## What the figures are

- **VAE samples are the decoder's means** (per-pixel Bernoulli probabilities, grey \
levels), as the article shows them. The *Bernoulli draws* column scores binary images \
sampled from those means: what the VAE's likelihood actually generates.
- **FID, precision and recall** are computed in the 128-d penultimate layer of the \
project's own LeNet classifier (data/classifier, 99.14% MNIST test accuracy; \
data/classifier-fashion for Fashion-MNIST), not Inception-v3: they rank models on this \
data but are not comparable with published FIDs. Precision \
and recall use k = 3 nearest-neighbour manifolds (Kynkäänniemi et al. 2019).
- **Classes** are MNIST's ten digits, or Fashion-MNIST's ten kinds of garment: the \
rows say *class* for either.
- **Coverage**: entropy of the classifier's predicted classes over the samples (ln 10 = \
2.303 when all ten are equally common) and its KL to uniform; the Inception Score is \
exp E[KL(p(y|x) || p(y))] with the same classifier (10 at best).
- **Sharpness**: mean over images and interior pixels of the squared 4-neighbour \
Laplacian, pixels in [0, 1]; compare with the real test images' value.
- **Test negative ELBO and IWAE bound** treat the grey-level pixels as Bernoulli targets \
(the article's loss), in nats per image; they are not comparable with published \
binarised-MNIST likelihoods. The IWAE figure is an upper bound on -log p(x), tighter than \
the negative ELBO.
- **Latent structure** (2-D latents): a 20x20 grid over the prior's quantiles (5% to 95%) \
is decoded and classified; *same-class neighbours* is the fraction of adjacent cells given \
the same class (about 0.1 for unrelated neighbours), *classes present* how many of the ten \
appear. The VAE's 5-NN accuracy is leave-one-out over the reference test images' latent \
means.
- **Speed and memory that vote** are the *training step* rows: each model's training step \
rebuilt at the cost batch with its other settings, timed alone (median of three submits \
after a warm-up), and its memory the high-water mark of the engine's buffer accounting \
while it was built and run: weights, gradients, Adam moments, activations, scratch and \
loss state, datasets excluded for both. *GEMM work* is the floating-point operations of \
the matrix products the recorded step dispatches, per training image, as the kernels \
execute them (padding taps included, element-wise work not counted): a GAN image costs a \
generator pass and three discriminator passes forward and back, a VAE image one encoder \
and decoder pass.
- **Training run speed and peak** are each run's own: images per second averaged over \
epochs at the model's own batch size, and the high-water mark during its training steps \
(evaluation excluded), the uploaded datasets included (the VAE's test set too, for its \
per-epoch ELBO). Reported, not voting.
- **Baselines**: real training images scored like samples (what a perfect generator \
gets), the test images themselves (sharpness and coverage of real digits), uniform noise, \
a constant image and one training digit repeated (negative controls).
- **Reading precision**: it counts samples inside *any* real point's k-NN ball, and a few \
outlying real digits have large balls; in this feature space uniform noise lands inside \
some of them (see its column). Read precision together with FID and recall, never alone.
";

/// Write `report.json` then `report.md` into `out`, atomically.
pub fn write_report(out: &Path, r: &Report) -> Result<()> {
    let path = out.join(REPORT_JSON);
    let json = serde_json::to_string_pretty(&r.to_json())
        .map_err(|e| Error::data(&path, e.to_string()))?;
    write_atomic(&path, json.as_bytes())?;
    write_atomic(&out.join(REPORT_MD), r.markdown().as_bytes())
}
