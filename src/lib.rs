//! vae-vs-gan: a GPU training engine written as hand-written WGSL compute
//! shaders driven through wgpu, with a plain-Rust CPU reference for every
//! kernel.
//!
//! Three layers (see docs/ARCHITECTURE.md):
//! 1. kernels: `shaders/*.wgsl`, one file per kernel family;
//! 2. ops: `src/ops/*.rs`, each op's GPU dispatch beside its CPU reference;
//! 3. models and training steps, recorded into a [`gpu::Step`]
//!    ([`models`], [`train`]).
//!
//! On top: the comparison metrics ([`eval`]) and the VAE-vs-GAN comparison
//! with its report ([`compare`], `examples/compare.rs`).

pub mod compare;
pub mod data;
pub mod error;
pub mod eval;
pub mod gpu;
pub mod io;
pub mod models;
pub mod nn;
pub mod ops;
pub mod optim;
pub mod report;
pub mod shaders;
#[cfg(feature = "native")]
pub mod train;

pub use error::{Error, Result};

/// Every kernel the engine compiles, with representative parameters: the
/// ops', the optimizers' and the step state's. The naga validation test
/// parses, validates and translates each of them.
pub fn all_kernels() -> Vec<gpu::Kernel> {
    let mut v = ops::kernels();
    v.extend(optim::adam::kernels());
    v.extend(optim::rmsprop::kernels());
    v.extend(gpu::state::kernels());
    v.extend(gpu::step_end::kernels());
    v
}
pub use gpu::{DType, Gpu, GpuOptions, Step, Tensor};
