#!/usr/bin/env bash
# The VAE-vs-GAN lab in your browser: build the page (scripts/web/
# build-page.sh) and serve target/web on 127.0.0.1 until Ctrl-C. Open the
# URL it prints in a browser with WebGPU (Chrome, Edge, Safari 26, Firefox
# with WebGPU on). The page is static files: target/web can be hosted
# anywhere that serves files over http(s).
#
# Usage: scripts/web/serve.sh [port, default 8000]
set -euo pipefail
cd "$(dirname "$0")/../.."
port="${1:-8000}"
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "error: port $port: give a number from 1 to 65535" >&2
    exit 2
fi
# A busy port is said before the build, in one line.
if ! python3 -c "import socket, sys; s = socket.socket(); s.bind(('127.0.0.1', $port))" 2>/dev/null; then
    echo "error: port $port on 127.0.0.1 is in use (or not allowed): pass another, e.g. scripts/web/serve.sh 8080" >&2
    exit 1
fi
scripts/web/build-page.sh
echo "the lab: http://127.0.0.1:$port/lab.html (the engine's tests: http://127.0.0.1:$port/index.html); Ctrl-C stops"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory target/web
