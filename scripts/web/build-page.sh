#!/usr/bin/env bash
# Build the browser crate (web/: the lab and the engine's tests, on the
# portable core) for wasm32, bind it (wasm-bindgen) and lay out the static
# site in target/web: index.html (the tests), lab.html (the lab), pkg/,
# and per dataset (mnist/, fashion/) its training and test files and its
# classifier. Fashion-MNIST comes from Debian's dataset-fashion-mnist,
# when installed (the lab says how to get it otherwise). Finds or installs what it needs (apt: rustc-web,
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
cp web/index.html web/lab.html web/common.mjs "$out/"
# The pages read the dataset files with the engine's IDX reader.
idx="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"
mkdir -p "$out/mnist"
for f in $idx; do cp "data/mnist/$f" "$out/mnist/"; done
cp data/classifier/classifier.safetensors "$out/mnist/"
fashion=/usr/share/datasets/fashion-mnist
if [ -f "$fashion/t10k-images-idx3-ubyte.gz" ]; then
    mkdir -p "$out/fashion"
    for f in $idx; do cp "$fashion/$f" "$out/fashion/"; done
    cp data/classifier-fashion/classifier.safetensors "$out/fashion/"
else
    echo "Fashion-MNIST not found in $fashion: the lab offers MNIST only (apt-get install dataset-fashion-mnist)"
fi
echo "module: $(stat -c %s "$out/pkg/vae_vs_gan_web_bg.wasm") bytes, $(gzip -c "$out/pkg/vae_vs_gan_web_bg.wasm" | wc -c) gzipped"
