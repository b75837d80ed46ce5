//! Datasets: the IDX reader and MNIST / Fashion-MNIST.

pub mod idx;
pub mod mnist;

pub use idx::{read_idx, write_idx, Idx};
pub use mnist::{load, Dataset, Images, Split, PIXELS, SIDE};
