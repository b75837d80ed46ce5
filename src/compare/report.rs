//! `report.md` and `report.json`: the figures table with its baselines,
//! the verdict on each claim, notes on what the figures mean, and the
//! pictures. Written atomically, after everything else.

use std::path::Path;

use crate::compare::figures::{Figure, Figures};
use crate::compare::verdict::{Verdict, Vote};
use crate::error::{Error, Result};
use crate::io::write_atomic;
use crate::train::AdapterDesc;

/// The report files, written last.
pub const REPORT_MD: &str = "report.md";
pub const REPORT_JSON: &str = "report.json";

/// Everything a comparison measured.
#[derive(Clone, Debug)]
pub struct Report {
    pub adapter: AdapterDesc,
    pub preset: String,
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
            "preset": self.preset,
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

    /// The whole `report.md`.
    pub fn markdown(&self) -> String {
        let a = &self.adapter;
        let mut m = String::from("# VAE vs GAN on MNIST: measured\n\n");
        m += &format!(
            "Adapter: **{}** ({}, {}). Preset `{}`, {} seed(s) (mean ± sample standard \
             deviation over seeds where there are several). {} samples per model, scored \
             against the first {} MNIST test images; IWAE bound with k = {} on the first {} \
             test images. Whole comparison: {:.0} s.\n\n",
            a.name,
            a.backend,
            a.device_type,
            self.preset,
            self.seeds,
            self.samples,
            self.reference_images,
            self.iwae_k,
            self.iwae_images,
            self.seconds
        );
        m += &format!("VAE: {}. GAN: {}.\n\n", self.vae_source, self.gan_source);
        m += "## Figures\n\n";
        m += &self.table();
        m += "\n## The article's claims\n\n";
        for v in &self.verdicts {
            m += &format!("- **{}**: {}\n", v.claim, v.outcome.text());
            for e in &v.evidence {
                let mark = match e.vote {
                    Vote::Favours => "favours the claim",
                    Vote::Against => "against the claim",
                    Vote::Undecided => "within seed noise",
                };
                m += &format!("  - {} — {mark}\n", e.text);
            }
        }
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

const NOTES: &str = "
## What the figures are

- **VAE samples are the decoder's means** (per-pixel Bernoulli probabilities, grey \
levels), as the article shows them. The *Bernoulli draws* column scores binary images \
sampled from those means: what the VAE's likelihood actually generates.
- **FID, precision and recall** are computed in the 128-d penultimate layer of the \
project's own LeNet classifier (data/classifier, 99.14% test accuracy), not Inception-v3: \
they rank models on this data but are not comparable with published MNIST FIDs. Precision \
and recall use k = 3 nearest-neighbour manifolds (Kynkäänniemi et al. 2019).
- **Coverage**: entropy of the classifier's predicted digits over the samples (ln 10 = \
2.303 when all ten are equally common) and its KL to uniform; the Inception Score is \
exp E[KL(p(y|x) || p(y))] with the same classifier (10 at best).
- **Sharpness**: mean over images and interior pixels of the squared 4-neighbour \
Laplacian, pixels in [0, 1]; compare with the real test images' value.
- **Test negative ELBO and IWAE bound** treat the grey-level pixels as Bernoulli targets \
(the article's loss), in nats per image; they are not comparable with published \
binarised-MNIST likelihoods. The IWAE figure is an upper bound on -log p(x), tighter than \
the negative ELBO.
- **Latent structure** (2-D latents): a 20x20 grid over the prior's quantiles (5% to 95%) \
is decoded and classified; *same-digit neighbours* is the fraction of adjacent cells given \
the same digit (about 0.1 for unrelated neighbours), *digits present* how many of the ten \
appear. The VAE's 5-NN accuracy is leave-one-out over the reference test images' latent \
means.
- **Speed and memory** come from the training runs: images per second averaged over \
epochs, and the engine's own high-water mark of GPU buffer bytes during the training \
steps (evaluation excluded), each model on a device of its own (the uploaded datasets \
included). A GAN training image costs a generator and two discriminator passes, a VAE \
image one encoder and decoder pass.
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
