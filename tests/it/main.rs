//! The integration tests: one test binary (`cargo test --release --test it`)
//! with a module per subject, `tests/it/<subject>.rs`, so that the suite
//! links wgpu once instead of once per file. A test's full name is
//! `<module>::<test>` (`dense::dense_forward_and_backward_match_cpu`): run one module
//! with `cargo test --release --test it -- dense::`.
//!
//! Every test here shares one process, and the harness runs them on
//! parallel threads: a test must not change process-wide state (the
//! environment, the training loop's interrupt flag) nor measure it (the
//! resident set, the shared device's counters). Those live in the `global`
//! crate (`tests/global/main.rs`), which runs them one at a time.
//!
//! The kernels' checks against their CPU references, the whole-step
//! checks and the tiny training runs are written once, in `tests/checks/`
//! (module `checks`), as async functions that the browser's tests (web/)
//! run too; the `#[test]`s here wrap them (`common::pass`).
//!
//! The files the tests read (`data/`, `tests/fixtures/`, `src/`) are found
//! under [`common::root`]: `VAE_VS_GAN_ROOT` when set, else the source tree
//! the binary was built from.

// shared helpers; the checks shared with the browser's tests
#[path = "../checks/mod.rs"]
mod checks;
mod common;
mod fixture_loader;
mod gan_check_model;

// one module per subject
mod activation;
mod adam;
mod batch_norm;
mod bce;
mod budget;
mod checkpoint;
mod clamp;
mod classifier;
mod cli;
mod cold_start;
mod compare;
mod conv2d;
mod conv_transpose2d;
mod copy;
mod cost;
mod data;
mod dense;
mod dropout;
mod epilogue;
mod eval;
mod fixtures;
mod gan;
mod gan_options;
mod gan_step;
mod gather;
mod golden;
mod kl;
mod kl_mc;
mod layers;
mod nn;
mod pipelined;
mod pool;
mod pytorch_check;
mod recorder;
mod reduce;
mod reparam;
mod report;
mod rmsprop;
mod rng;
mod shaders;
mod softmax_ce;
mod target_loss;
mod train;
mod vae;
mod vae_step;
mod verdict;
