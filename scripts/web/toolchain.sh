# Sourced by the scripts in scripts/web: finds (or installs, with apt,
# idempotently) Rust for wasm32-unknown-unknown and exports what cargo
# needs to build for it.
#
# Rust's wasm32 standard library is not prebuilt for this toolchain, so it
# is built from source (cargo's build-std) with Debian's rustc-web 1.96
# and its sources (rust-web-src); rustup's cargo drives the build and
# rustup's rust-lld links. The native build is untouched.
RUSTC_WEB=/usr/bin/rustc
RUST_SRC=/usr/lib/rustlib/src/rust/library
if ! { [ -x "$RUSTC_WEB" ] && [ -d "$RUST_SRC" ] && "$RUSTC_WEB" --version | grep -q '^rustc 1\.9[6-9]'; }; then
    echo "Rust for wasm32 not found: installing rustc-web and rust-web-src"
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rustc-web rust-web-src
fi
"$RUSTC_WEB" --version
LLD=$(ls "$("$(rustup which rustc)" --print sysroot)"/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-lld)
export RUSTC="$RUSTC_WEB" RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$LLD"
WASM_TARGET_DIR=$PWD/target/wasm
WASM_BUILD=(--release --target wasm32-unknown-unknown -Z build-std=std,panic_abort)
