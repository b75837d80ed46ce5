//! Datasets: the IDX reader, MNIST / Fashion-MNIST, and a dataset resident
//! on the GPU.

pub mod gpu_dataset;
pub mod idx;
pub mod mnist;

pub use gpu_dataset::GpuDataset;
pub use idx::{read_idx, write_idx, Idx};
pub use mnist::{load, Dataset, Images, Split, PIXELS, SIDE};
