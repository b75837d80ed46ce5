//! The one register-tiled GEMM template behind dense, conv2d and transposed
//! conv2d, forward and backward.
//!
//! `shaders/gemm.wgsl` holds the tiled loop (`main`) once, and small
//! sections of index functions: where A(m, k) and B(k, n) are read from and
//! where C(m, n) goes. A variant is a list of sections; [`gemm_kernel`]
//! glues them together with the tile constants and generates the unrolled
//! parts of the loop here in Rust (naga bounds every WGSL loop, which stops
//! drivers from unrolling it; docs/PERFORMANCE.md measures what unrolling
//! K buys on lavapipe, 25.4 to 36.7 GFLOP/s on the 512^3 GEMM).
//!
//! Three main loops share the sections ([`Main`]): the register-tiled one
//! (operands staged through workgroup memory, barriers) for wide outputs on
//! GPUs; a barrier-free direct one (each invocation reads its operands
//! from storage) for outputs a few columns wide or rows tall, and for every
//! shape on CPU adapters without subgroups, where workgroup memory only
//! adds loads; and the direct one with each subgroup's column loads shared
//! by broadcasts, for CPU adapters that run subgroups of 8 (lavapipe),
//! where every load is a scalar loop over the SIMD lanes
//! (docs/PERFORMANCE.md).
//!
//! Small GEMMs (few output tiles, long K) are split along K into `nsplit`
//! partial outputs that a second kernel sums in a fixed order: more
//! workgroups, no float atomics, the same bits every run.
//!
//! Four files, one job each: [`policy`] (main loop, tile and split-K
//! choice by shape, for CPU drivers and for GPUs), [`tune`] (timing
//! candidate choices per shape on the device, remembered per adapter),
//! [`codegen`] (the WGSL of a variant at a tile) and [`record`] (recording
//! a call and its split-K reduction).

pub mod codegen;
pub mod policy;
pub mod record;
pub mod tune;

pub use crate::ops::epilogue::{epilogue_kernel, Dropout, EpiKind, Epilogue, Fused};
pub(crate) use codegen::reduce_kernel;
pub use codegen::{gemm_kernel, DySide};
pub use policy::{
    epilogue_test_tiles, gpu_tiles, runs_subgroup_main, test_tiles, Choice, GemmConfig, GemmShape,
    Main, Policy, Tile, AUTO_TILES, GPU_TARGET_WORKGROUPS, MIN_SPLIT_K, SUBGROUP_LANES,
    SUBGROUP_TEST_SHAPES, TARGET_WORKGROUPS,
};
pub use record::BiasGrad;
pub use record::Scratch;
pub(crate) use record::{record, reduce_splits, GemmCall, Geo};
