//! Training support: checkpoints (more lands with the models).

pub mod checkpoint;

pub use checkpoint::{write_atomic, Checkpoint};
