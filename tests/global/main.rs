//! The integration tests that change or measure process-wide state, in a
//! test binary of their own (`cargo test --release --test global`), apart
//! from the `it` crate's tests, which run on parallel threads of one
//! process:
//!
//! - `interrupt`: sets the training loop's interrupt flag, which stops
//!   every epoch running in the process;
//! - `tune`: its cache test sets `VAE_VS_GAN_CACHE_DIR`, which every device
//!   opened meanwhile reads (pipeline cache, tuning table);
//! - `soak`: measures the process's resident set and the shared device's
//!   tensor bytes, which any other test running beside it would move.
//!
//! Within this binary the harness runs tests on parallel threads too, so
//! each test first takes [`PROCESS`]: [`alone`] (the write side) where it
//! changes or measures process-wide state, so that no other test of this
//! binary runs meanwhile; [`beside_others`] (the read side) where it only
//! needs not to overlap those.
//!
//! The shared helpers are the `it` crate's files, included by path.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

#[path = "../checks/mod.rs"]
mod checks;
#[path = "../it/common.rs"]
mod common;

mod interrupt;
mod soak;
mod tune;

/// Held by every test of this binary for its whole run; see the crate's
/// doc.
static PROCESS: RwLock<()> = RwLock::new(());

/// For a test that changes or measures process-wide state: no other test
/// of this binary runs while the guard lives. A test that failed holding
/// it does not block the others (the poison is ignored).
pub fn alone() -> RwLockWriteGuard<'static, ()> {
    PROCESS.write().unwrap_or_else(|e| e.into_inner())
}

/// For any other test of this binary: it runs beside others like it, never
/// beside an [`alone`] one.
pub fn beside_others() -> RwLockReadGuard<'static, ()> {
    PROCESS.read().unwrap_or_else(|e| e.into_inner())
}
