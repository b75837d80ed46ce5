#!/usr/bin/env bash
# Build the engine's portable core (the library without the `native`
# feature) for wasm32-unknown-unknown, the browser's target
# (scripts/web/toolchain.sh finds or installs the toolchain).
#
# Usage: scripts/web/build-core.sh [extra cargo args]
# Output: target/wasm/wasm32-unknown-unknown/release/libvae_vs_gan.rlib
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/web/toolchain.sh
CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo build --lib --no-default-features "${WASM_BUILD[@]}" "$@"
echo "built target/wasm/wasm32-unknown-unknown/release/libvae_vs_gan.rlib"
