//! Training support: checkpoints, the GPU-resident dataset, presets, the
//! epoch loop and the metrics file.

pub mod checkpoint;
pub mod cli;
pub mod dataset;
pub mod gan_run;
pub mod metrics;
pub mod preset;
pub mod run;
pub mod session;
pub mod vae_run;

pub use checkpoint::{write_atomic, Checkpoint};
pub use dataset::GpuDataset;
pub use metrics::{AdapterDesc, EpochMetrics, Metrics};
pub use preset::{GanPreset, Preset, VaePreset};
pub use run::{progress_bar, run_epoch, EpochRun};
