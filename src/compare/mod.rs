//! The VAE-vs-GAN comparison: train or load both models, score their
//! samples and latents with the metrics of [`crate::eval`] through the
//! committed classifier, decide the article's claims, write the report.
//!
//! - [`figures`]: the table of measured values (per seed, mean ± std);
//! - [`curves`]: quality as training goes, and where the curves cross;
//! - [`score`]: one image set's sample figures;
//! - [`verdict`]: the claims as rules over the figures;
//! - [`report`]: report.md and report.json;
//! - [`options`]: what to compare, and the up-front refusals;
//! - [`load`]: models from checkpoints;
//! - [`measure`]: the baselines and each model's figures per seed;
//! - [`cost`]: each model's training step measured alike (speed, memory,
//!   GEMM work) at one batch size;
//! - [`output`]: the pictures and sample files;
//! - [`settings`]: each model's settings, from its checkpoint;
//! - [`runs`]: which training runs in the folder are this comparison's;
//! - [`run`]: the whole comparison.
//!
//! Without the `native` feature only the table ([`figures`]) and the
//! scoring of image sets ([`score`]) are built: the browser's lab scores
//! its models with them.

#[cfg(feature = "native")]
pub mod cost;
#[cfg(feature = "native")]
pub mod curves;
pub mod figures;
#[cfg(feature = "native")]
pub mod load;
#[cfg(feature = "native")]
pub mod measure;
#[cfg(feature = "native")]
pub mod options;
#[cfg(feature = "native")]
pub mod output;
#[cfg(feature = "native")]
pub mod report;
#[cfg(feature = "native")]
pub mod run;
#[cfg(feature = "native")]
pub mod runs;
pub mod score;
#[cfg(feature = "native")]
pub mod settings;
#[cfg(feature = "native")]
pub mod verdict;

pub use figures::{Column, Figure, Figures, Stat};
#[cfg(feature = "native")]
pub use load::{load_gan, load_vae};
#[cfg(feature = "native")]
pub use measure::bernoulli_draws;
#[cfg(feature = "native")]
pub use options::CompareOptions;
#[cfg(feature = "native")]
pub use report::Report;
#[cfg(feature = "native")]
pub use report::{REPORT_JSON, REPORT_MD};
#[cfg(feature = "native")]
pub use run::compare;
