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

pub mod cost;
pub mod curves;
pub mod figures;
pub mod load;
pub mod measure;
pub mod options;
pub mod output;
pub mod report;
pub mod run;
pub mod runs;
pub mod score;
pub mod settings;
pub mod verdict;

pub use figures::{Column, Figure, Figures, Stat};
pub use load::{load_gan, load_vae};
pub use measure::bernoulli_draws;
pub use options::CompareOptions;
pub use report::Report;
pub use report::{REPORT_JSON, REPORT_MD};
pub use run::compare;
