#!/usr/bin/env bash
# Build the browser crate (web/: the lab and the engine's tests, on the
# portable core) for wasm32, bind it (wasm-bindgen) and lay out the static
# site in target/web: index.html (the tests), lab.html (the lab), pkg/ and
# MNIST's training files. Finds or installs what it needs (apt: rustc-web,
# rust-web-src; crates.io: wasm-bindgen-cli at web/Cargo.lock's version).
# scripts/web/test.sh and scripts/web/serve.sh start with it.
#
# Usage: scripts/web/build-page.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

# wasm-bindgen's command line must be the version the crate links.
bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' web/Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $bindgen"; then
    echo "wasm-bindgen $bindgen not found: installing wasm-bindgen-cli from crates.io"
    cargo install wasm-bindgen-cli --version "$bindgen" --no-default-features
fi
source scripts/web/toolchain.sh
(cd web && CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo build "${WASM_BUILD[@]}")
out=target/web
rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out/pkg" \
    "$WASM_TARGET_DIR/wasm32-unknown-unknown/release/vae_vs_gan_web.wasm"
cp web/index.html web/lab.html "$out/"
# The page reads MNIST's training files with the engine's IDX reader.
mkdir -p "$out/mnist"
cp data/mnist/train-images-idx3-ubyte.gz data/mnist/train-labels-idx1-ubyte.gz "$out/mnist/"
echo "module: $(stat -c %s "$out/pkg/vae_vs_gan_web_bg.wasm") bytes, $(gzip -c "$out/pkg/vae_vs_gan_web_bg.wasm" | wc -c) gzipped"
