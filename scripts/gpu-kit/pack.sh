#!/usr/bin/env bash
# Build and pack the GPU kit into target/gpu-kit/ (see scripts/gpu-kit/README.md):
# every test binary, the examples and the bench binaries in release, stripped;
# what they read at run time (data/mnist, data/classifier, tests/fixtures, the
# sources the layering test reads, the PyTorch twins); and Debian's Vulkan
# loader (libvulkan.so.1), so the kit runs on a machine with a GPU driver but
# no loader. Everything but run.sh goes into one xz archive, which run.sh
# unpacks where it runs. Fails if the kit is over 60 MiB.
#
#   scripts/gpu-kit/pack.sh            # then: target/gpu-kit/run.sh OUT
set -euo pipefail
cd "$(dirname "$0")/../.."

kit=target/gpu-kit
stage=target/gpu-kit-stage
limit=$((60 * 1024 * 1024))
rm -rf "$kit" "$stage"
mkdir -p "$kit" "$stage"/{deps,examples,benches,lib}

# Executables cargo built, as "kind<TAB>name<TAB>path" lines.
executables() {
    python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["target"]["kind"][0], m["target"]["name"], m["executable"], sep="\t")
'
}

echo "building the tests, examples and benches (release)"
{
    cargo test --release --no-run --message-format=json
    cargo build --release --examples --message-format=json
    cargo bench --no-run --message-format=json
} 2>/dev/null | executables | sort -u >"$stage/.built"

n=0
while IFS=$'\t' read -r kind name path; do
    case "$kind" in
    test | lib) dir=deps ;;
    example) dir=examples ;;
    bench) dir=benches ;;
    *) continue ;;
    esac
    # tests keep their hashed file name (`example()` finds the examples
    # from deps/.. as cargo lays them out); the others their target name
    dest="$stage/$dir/$name"
    [ "$dir" = deps ] && dest="$stage/deps/$(basename "$path")"
    cp "$path" "$dest"
    strip "$dest"
    n=$((n + 1))
done <"$stage/.built"
rm "$stage/.built"
echo "$n binaries stripped"

# What the binaries read at run time, in the source tree's layout (run.sh
# runs them from the unpacked folder with VAE_VS_GAN_ROOT pointing at it).
mkdir -p "$stage/data" "$stage/tests" "$stage/tools" "$stage/scripts"
cp -r data/mnist data/classifier data/classifier-fashion "$stage/data/"
# the Fashion-MNIST test set (Debian's dataset-fashion-mnist) for the
# classifier's re-score test
fashion=/usr/share/datasets/fashion-mnist
if [ ! -f "$fashion/t10k-images-idx3-ubyte.gz" ]; then
    echo "pack.sh: $fashion missing: apt-get install dataset-fashion-mnist" >&2
    exit 1
fi
mkdir -p "$stage/data/fashion-mnist"
cp "$fashion"/t10k-* "$stage/data/fashion-mnist/"
cp -r tests/fixtures "$stage/tests/"
cp -r src shaders Cargo.toml README.md "$stage/"
cp tools/torch_speed.py tools/check_with_pytorch.py "$stage/tools/"
cp scripts/gpu-kit/summary.py "$stage/scripts/"

# Debian's Vulkan loader: the system's when it comes from libvulkan1, else
# the package itself.
loader=/usr/lib/x86_64-linux-gnu/libvulkan.so.1
if [ -e "$loader" ] && dpkg -S "$loader" 2>/dev/null | grep -q '^libvulkan1'; then
    cp -L "$loader" "$stage/lib/libvulkan.so.1"
else
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download libvulkan1 >/dev/null && dpkg -x libvulkan1_*.deb x)
    cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$stage/lib/"
    rm -rf "$tmp"
fi

XZ_OPT="-6 -T0" tar -C "$stage" -cJf "$kit/kit.tar.xz" .
rm -rf "$stage"
cp scripts/gpu-kit/run.sh scripts/gpu-kit/README.md "$kit/"
chmod +x "$kit/run.sh"

size=$(du -sb "$kit" | cut -f1)
echo "target/gpu-kit: $((size / 1024 / 1024)) MiB ($size bytes; limit 60 MiB)"
if [ "$size" -gt "$limit" ]; then
    echo "the kit is over 60 MiB: it would not travel" >&2
    exit 1
fi
