//! The VAE-vs-GAN comparison: train or load both models, score their
//! samples and latents with the metrics of [`crate::eval`] through the
//! committed classifier, decide the article's claims, write the report.
//!
//! - [`figures`]: the table of measured values (per seed, mean ± std);
//! - [`score`]: one image set's sample figures;
//! - [`verdict`]: the claims as rules over the figures;
//! - [`report`]: report.md and report.json;
//! - [`run`]: the whole comparison.

pub mod figures;
pub mod report;
pub mod run;
pub mod score;
pub mod verdict;

pub use figures::{Column, Figure, Figures, Stat};
pub use report::Report;
pub use run::{compare, load_gan, load_vae, CompareOptions};
