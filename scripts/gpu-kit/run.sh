#!/usr/bin/env bash
# The GPU kit's one command (see README.md beside it): every GPU figure of
# vae-vs-gan, with PyTorch's twin of each training step on the same GPU, in
# one run of at most --minutes (default 9), everything under OUT.
#
#   run.sh OUT [--minutes N] [--resume PREV_OUT] [--dry-run]
#
# Steps, in order, each timed, its output kept, and skipped (said so in
# OUT/steps.tsv and summary.md) when the budget left is too short:
#   adapters     the full `adapters` listing, and nvidia-smi's GPU name
#   tests-gpu    the whole test suite under the GPU kernel policy
#   tests-cpu    ... and under the CPU driver's policy
#   steps-B      whole-step benches (VAE, GAN both heads, classifier) at
#                batch B = 32, 128, 512: images/s, ms per step, dispatches,
#                peak memory; at 32 also with the autotuner off
#   kernels      GEMM and conv kernel benches (GFLOP/s per kernel)
#   torch        tools/torch_speed.py: PyTorch's eager and CUDA-graph twins
#                of the same steps at the same batches (skipped, and said
#                so, without torch or CUDA)
#   cold, warm   process start to the first finished step ("ready in"),
#                train_vae and train_gan, with empty caches, then again
#   compare      the article's VAE against the dcgan GAN, 3 seeds, as many
#                epochs as fit, interrupted cleanly at the budget's end;
#                `--resume PREV_OUT` continues it from PREV_OUT's archive
#   summary      OUT/summary.md and OUT/summary.json, written last, atomically
# OUT ends with at most 8 files of at most 16 MiB: summary.md, summary.json,
# logs.tar.xz (every step's output, the step table steps.tsv, the adapter
# listing, the comparison's report and pictures), and the comparison's
# state as compare.tar.xz, in 15 MiB parts (compare.tar.xz.part-NN) when
# larger, at most 5: a state larger than that is not kept (said in the
# step table), and a later --resume cannot continue it.
#
# --dry-run: the same plumbing on whatever adapter there is (a CPU driver
# in CI) at tiny sizes, in under 5 minutes: a few test modules, batch 8,
# one second per bench, the tiny preset.
set -euo pipefail

usage() { echo "usage: $0 OUT [--minutes N] [--resume PREV_OUT] [--dry-run]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1; shift
minutes=9 resume="" dry=0
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) minutes=${2:?}; shift 2 ;;
    --resume) resume=${2:?}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    *) usage ;;
    esac
done
case "$minutes" in '' | *[!0-9]*) echo "--minutes takes a whole number" >&2; exit 2 ;; esac
if [ -n "$resume" ] && ! ls "$resume"/compare.tar.xz* >/dev/null 2>&1; then
    echo "--resume $resume: no compare.tar.xz there to continue" >&2
    exit 2
fi
start=$(date +%s)
deadline=$((start + minutes * 60))
left() { echo $((deadline - $(date +%s))); }

kit=$(cd "$(dirname "$0")" && pwd)
if [ -e "$out" ] && [ -n "$(ls -A "$out" 2>/dev/null)" ]; then
    echo "$out is not empty: give run.sh a new folder (nothing there is replaced)" >&2
    exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -n "$resume" ]; then resume=$(cd "$resume" && pwd); fi
work=$(mktemp -d "${TMPDIR:-/tmp}/vae-vs-gan-kit.XXXXXX")
logs="$work/logs"
mkdir -p "$logs"
tar -C "$work" -xJf "$kit/kit.tar.xz"
cd "$work"
export VAE_VS_GAN_ROOT="$work"
export VAE_VS_GAN_FASHION_DIR="$work/data/fashion-mnist"
export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work/xdg}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 0700 "$XDG_RUNTIME_DIR"
export CRITERION_HOME="$work/criterion"
# the engine's caches in the work folder: the cold runs empty their own
export VAE_VS_GAN_CACHE_DIR="$work/cache"
table="$logs/steps.tsv"
printf 'step\tstatus\tseconds\tnote\n' >"$table"

# step NAME NEED_SECONDS CMD...: run CMD (its output to logs/NAME.log) with
# at most the budget left, or skip it when less than NEED_SECONDS is left.
step() {
    local name=$1 need=$2; shift 2
    local l; l=$(left)
    if [ "$l" -lt "$need" ]; then
        printf '%s\tskipped\t0\tneeds ~%s s, %s s left\n' "$name" "$need" "$l" >>"$table"
        echo "== $name: skipped (needs ~$need s, $l s left)"
        return 0
    fi
    echo "== $name ($l s left)"
    local t0 rc=0; t0=$(date +%s)
    # job control: the step and its watchdog each get a process group, so
    # an interrupt at the budget's end reaches the step's programs (which
    # stop cleanly: the training runs checkpoint first)
    set -m
    "$@" >"$logs/$name.log" 2>&1 &
    local pid=$!
    (sleep "$l"; echo timeout >"$logs/$name.timeout"; kill -INT -- -"$pid"
        sleep 30; kill -KILL -- -"$pid") >/dev/null 2>&1 &
    local dog=$!
    set +m
    wait "$pid" || rc=$?
    kill -- -"$dog" 2>/dev/null || true
    wait "$dog" 2>/dev/null || true
    local dt=$(($(date +%s) - t0)) status=ok
    [ "$rc" -eq 0 ] || status="failed(rc=$rc)"
    [ -e "$logs/$name.timeout" ] && status=timeout
    printf '%s\t%s\t%s\t\n' "$name" "$status" "$dt" >>"$table"
    echo "   $status in $dt s"
}

tests=(deps/*)
adapters() {
    examples/adapters
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    else
        echo "nvidia-smi: not present"
    fi
}
# every test binary under one kernel policy; a dry run only a few modules
suite() {
    local policy=$1 rc=0 t
    for t in "${tests[@]}"; do
        echo "## $t"
        if [ "$dry" = 1 ]; then
            VAE_VS_GAN_KERNELS=$policy "$t" recorder:: dense:: adam:: || rc=$?
        else
            VAE_VS_GAN_KERNELS=$policy "$t" || rc=$?
        fi
    done
    return $rc
}
steps_bench() { STEP_BENCH_BATCH=$1 benches/steps --bench; }
torch_speed() {
    python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)' || {
        echo "skipped: PyTorch with CUDA is not available here"
        return 0
    }
    python3 tools/torch_speed.py --out "$work/torch_speed.json" --batches "$batches_csv"
}
first_step() {
    local m
    for m in vae gan; do
        examples/train_$m --preset tiny --epochs 1 --overwrite --out "$work/runs/$m-$1"
    done
}
# cold: empty caches (the engine's, Mesa's and NVIDIA's shader caches);
# warm: the same caches again, as the cold run left them
with_caches() {
    local c="$work/cold-cache"
    VAE_VS_GAN_CACHE_DIR="$c/vae-vs-gan" XDG_CACHE_HOME="$c" \
        __GL_SHADER_DISK_CACHE_PATH="$c/nvidia" first_step "$1"
}
cold() {
    rm -rf "$work/cold-cache" && mkdir -p "$work/cold-cache"
    with_caches cold
}
warm() { with_caches warm; }
compare_run() {
    local args=(--out "$work/compare")
    if [ "$dry" = 1 ]; then
        args+=(--preset tiny --seeds 1)
    else
        args+=(--preset article --gan-preset dcgan --seeds 3)
    fi
    if [ -n "$resume" ]; then
        cat "$resume"/compare.tar.xz* | tar -C "$work" -xJf -
        args+=(--resume)
    else
        args+=(--overwrite)
    fi
    examples/compare "${args[@]}"
}

if [ "$dry" = 1 ]; then
    batches=(8) batches_csv=8
    export STEP_BENCH_SECS=1 KERNEL_BENCH_FILTER="gemm 512x512x512"
    need_tests=20 need_bench=20 need_first=20 need_compare=30
else
    batches=(32 128 512) batches_csv=32,128,512
    need_tests=60 need_bench=45 need_first=30 need_compare=60
fi

step adapters 5 adapters
step tests-gpu "$need_tests" suite gpu
step tests-cpu "$need_tests" suite cpu
for b in "${batches[@]}"; do
    step "steps-$b" "$need_bench" steps_bench "$b"
done
step "steps-${batches[0]}-autotune-off" "$need_bench" \
    env VAE_VS_GAN_AUTOTUNE=off STEP_BENCH_BATCH="${batches[0]}" benches/steps --bench
step kernels "$need_bench" benches/kernels --bench
step torch "$need_bench" torch_speed
step cold "$need_first" cold
step warm "$need_first" warm
# the comparison gets what is left but the summary's half minute
deadline=$((deadline - 30))
step compare "$need_compare" compare_run
deadline=$((deadline + 30))

# the comparison's state, for --resume: 15 MiB parts if it is larger, at
# most 5 (with summary.md, summary.json and logs.tar.xz, 8 files)
part=$((15 * 1024 * 1024))
if [ -d "$work/compare" ]; then
    mkdir -p "$logs/compare"
    cp "$work"/compare/report.* "$work"/compare/*.png "$logs/compare/" 2>/dev/null || true
    tar -C "$work" -cJf "$work/compare.tar.xz" compare
    size=$(stat -c %s "$work/compare.tar.xz")
    if [ "$size" -gt $((5 * part)) ]; then
        printf 'compare-state\tnot kept\t0\t%s MiB, over the 75 MiB OUT has room for: a --resume cannot continue this run\n' \
            "$((size / 1024 / 1024))" >>"$table"
    elif [ "$size" -gt "$part" ]; then
        split -b 15M -d "$work/compare.tar.xz" "$out/compare.tar.xz.part-"
    else
        cp "$work/compare.tar.xz" "$out/"
    fi
fi
cp "$work/torch_speed.json" "$logs/" 2>/dev/null || true
python3 scripts/summary.py --logs "$logs" --steps "$table" \
    --compare "$work/compare" --minutes "$minutes" --dry-run "$dry" --out "$out"
tar -C "$work" -cJf "$out/logs.tar.xz" logs
echo "wrote $out/summary.md ($(($(date +%s) - start)) s)"
rm -rf "$work"
