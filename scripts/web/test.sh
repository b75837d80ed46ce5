#!/usr/bin/env bash
# The engine's tests and the lab in a browser: run the tiny training runs
# natively (examples/tiny_losses.rs, on SwiftShader and lavapipe), build
# the page (scripts/web/build-page.sh: web/, the portable core without the
# `native` feature, the shared checks of tests/checks and the lab, for
# wasm32), serve it with MNIST's training files and the native runs on
# 127.0.0.1, and in headless Chromium with WebGPU run the tests
# (web/run.mjs: the adapter and every test's line; "N passed, 0 failed")
# and then the lab through its own controls (web/lab.mjs: the tiny
# preset trained to the end, its pictures not blank, its losses finite,
# its figures, checkpoints downloaded, a native checkpoint loaded and a
# wrong one refused, a lost device, a screenshot in target/web-lab); the
# two checkpoints the page downloaded are then scored natively
# (`compare --vae-ckpt --gan-ckpt`). Exits 0 only if all pass. Finds or
# installs what it needs (apt: rustc-web, rust-web-src, chromium;
# crates.io: wasm-bindgen-cli at web/Cargo.lock's version; npm:
# web/package-lock.json) and stops the server it started.
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
# The lab's test trains Fashion-MNIST too (build-page.sh serves it).
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    echo "Fashion-MNIST not found: installing dataset-fashion-mnist"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist
fi
npm ci --prefix web --no-audit --no-fund

# The tiny runs natively, which the browser's own are compared with: on
# SwiftShader (the driver under Chromium's WebGPU here, from
# chromium-common) and on the default adapter (lavapipe).
cargo build --release --example tiny_losses --example train_vae --example compare
native=target/web-native-runs
mkdir -p "$native"
VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
    target/release/examples/tiny_losses >"$native/same-driver.json"
target/release/examples/tiny_losses >"$native/other-driver.json"
cat "$native"/*.json
# The native checkpoint the lab loads.
target/release/examples/train_vae --preset tiny --out "$native/vae-tiny" --overwrite >/dev/null

scripts/web/build-page.sh
out=target/web
cp -r "$native" "$out/native"

# Serve on a free port of 127.0.0.1 (ES modules do not load from file://).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$out" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/index.html')" 2>/dev/null && break
    sleep 0.1
done
node web/run.mjs "http://127.0.0.1:$port/index.html" "$timeout"
# The lab, through its own controls: the tiny preset to the end.
node web/lab.mjs "http://127.0.0.1:$port/lab.html" "$native/vae-tiny/checkpoint.safetensors" \
    "$timeout" target/web-lab
# The page's checkpoints, scored by the native comparison.
target/release/examples/compare --preset tiny --vae-ckpt target/web-lab/vae.safetensors \
    --gan-ckpt target/web-lab/gan.safetensors --samples 500 --iwae-images 50 \
    --out target/web-lab/compare --overwrite
test -s target/web-lab/compare/report.md
echo "the page's checkpoints scored natively: target/web-lab/compare/report.md"
