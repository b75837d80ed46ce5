#!/usr/bin/env bash
# Build the engine's portable core (the library without the `native`
# feature) for wasm32-unknown-unknown, the browser's target.
#
# Rust's wasm32 standard library is not prebuilt for this toolchain, so it
# is built from source (cargo's build-std) with Debian's rustc-web 1.96 and
# its sources (rust-web-src): installed here if missing (apt, idempotent).
# rustup's cargo drives the build; the native build is untouched.
#
# Usage: scripts/web/build-core.sh [extra cargo args]
# Output: target/wasm/wasm32-unknown-unknown/release/libvae_vs_gan.rlib
set -euo pipefail
cd "$(dirname "$0")/../.."

RUSTC_WEB=/usr/bin/rustc
RUST_SRC=/usr/lib/rustlib/src/rust/library
if ! { [ -x "$RUSTC_WEB" ] && [ -d "$RUST_SRC" ] && "$RUSTC_WEB" --version | grep -q '^rustc 1\.9[6-9]'; }; then
    echo "Rust for wasm32 not found: installing rustc-web and rust-web-src"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends rustc-web rust-web-src
fi
"$RUSTC_WEB" --version

RUSTC="$RUSTC_WEB" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/wasm \
    cargo build --release --lib --no-default-features \
    --target wasm32-unknown-unknown -Z build-std=std,panic_abort "$@"
echo "built target/wasm/wasm32-unknown-unknown/release/libvae_vs_gan.rlib"
