#!/usr/bin/env bash
# The engine's tests in a browser: run the tiny training runs natively
# (examples/tiny_losses.rs, on SwiftShader and lavapipe), build the test
# crate (web/, the portable core without the `native` feature, and the
# shared checks of tests/checks) for wasm32, bind it (wasm-bindgen), serve
# web/index.html with MNIST's training files and the native runs on
# 127.0.0.1, and run it in headless Chromium with WebGPU (web/run.mjs).
# Prints the adapter and every test's line; exits 0 only on "N passed, 0
# failed". Finds or installs what it needs (apt:
# rustc-web, rust-web-src, chromium; crates.io: wasm-bindgen-cli at
# web/Cargo.lock's version; npm: web/package-lock.json) and stops the
# server it started.
#
# Usage: scripts/web/test.sh [timeout seconds for the page, default 600]
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout="${1:-600}"

if [ ! -x /usr/lib/chromium/chromium ]; then
    echo "Chromium not found: installing chromium"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
# wasm-bindgen's command line must be the version the crate links.
bindgen=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print }' web/Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $bindgen"; then
    echo "wasm-bindgen $bindgen not found: installing wasm-bindgen-cli from crates.io"
    cargo install wasm-bindgen-cli --version "$bindgen" --no-default-features
fi
npm ci --prefix web --no-audit --no-fund

# The tiny runs natively, which the browser's own are compared with: on
# SwiftShader (the driver under Chromium's WebGPU here, from
# chromium-common) and on the default adapter (lavapipe).
cargo build --release --example tiny_losses
native=target/web-native-runs
mkdir -p "$native"
VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
    target/release/examples/tiny_losses >"$native/same-driver.json"
target/release/examples/tiny_losses >"$native/other-driver.json"
cat "$native"/*.json

source scripts/web/toolchain.sh
(cd web && CARGO_TARGET_DIR="$WASM_TARGET_DIR" cargo build "${WASM_BUILD[@]}")
out=target/web
rm -rf "$out" && mkdir -p "$out"
wasm-bindgen --target web --out-dir "$out/pkg" \
    "$WASM_TARGET_DIR/wasm32-unknown-unknown/release/vae_vs_gan_web.wasm"
cp web/index.html "$out/"
# The whole-step tests train on MNIST's first 64 training images.
mkdir -p "$out/mnist"
cp data/mnist/train-images-idx3-ubyte.gz data/mnist/train-labels-idx1-ubyte.gz "$out/mnist/"
cp -r "$native" "$out/native"
echo "module: $(stat -c %s "$out/pkg/vae_vs_gan_web_bg.wasm") bytes, $(gzip -c "$out/pkg/vae_vs_gan_web_bg.wasm" | wc -c) gzipped"

# Serve on a free port of 127.0.0.1 (ES modules do not load from file://).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$out" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/index.html')" 2>/dev/null && break
    sleep 0.1
done
node web/run.mjs "http://127.0.0.1:$port/index.html" "$timeout"
