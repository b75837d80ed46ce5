#!/usr/bin/env bash
# The engine's tests and the lab in a browser: run the tiny training runs
# natively (examples/tiny_losses.rs, on SwiftShader and lavapipe), build
# the page (scripts/web/build-page.sh: web/, the portable core without the
# `native` feature, the shared checks of tests/checks and the lab, for
# wasm32), serve it with MNIST's training files and the native runs on
# 127.0.0.1, and in headless Chromium with WebGPU run the tests
# (web/run.mjs: the adapter and every test's line; "N passed, 0 failed")
# and then the lab through its own controls (web/lab.mjs: the tiny
# preset trained to the end, its pictures not blank, its losses finite, a
# screenshot in target/web-lab). Exits 0 only if both pass. Finds or
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

scripts/web/build-page.sh
out=target/web
cp -r "$native" "$out/native"

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
# The lab, through its own controls: the tiny preset to the end.
node web/lab.mjs "http://127.0.0.1:$port/lab.html" "$timeout" target/web-lab
