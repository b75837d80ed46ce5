//! Training support: checkpoints (more lands with the models).

pub mod checkpoint;
pub mod dataset;

pub use checkpoint::{write_atomic, Checkpoint};
pub use dataset::GpuDataset;
