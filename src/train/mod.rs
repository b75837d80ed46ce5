//! Training runs: presets, the command-line options every run takes, the
//! epoch loop, the session (resume, checkpoints, metrics), and the metrics
//! file.

pub mod budget;
pub mod cli;
pub mod gan_run;
pub mod interrupt;
pub mod metrics;
pub mod options;
pub mod out;
pub use crate::models::preset;
pub use crate::models::prior;
pub mod run;
pub mod session;
pub mod vae_run;

pub use metrics::{AdapterDesc, EpochMetrics, Metrics};
pub use preset::{GanPreset, Preset, VaePreset};
pub use run::{progress_bar, run_epoch, EpochOutcome, EpochPlan, EpochProgress, EpochRun};
