//! Optimizers: a GPU kernel and a CPU reference of each update.

pub mod adam;
