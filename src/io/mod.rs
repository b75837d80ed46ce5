//! Files: checkpoints (safetensors with PyTorch names and layouts) and the
//! atomic write every output file goes through. Below the layers that save
//! and load (nn, models, train, report, data), above only `error`.

pub mod atomic;
pub mod checkpoint;
pub mod file;

pub use atomic::{remove_stale_temps, write_atomic};
pub use checkpoint::Checkpoint;
