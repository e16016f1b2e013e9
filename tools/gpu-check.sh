#!/usr/bin/env bash
# gpu-check.sh: everything that needs a real GPU, in one run.
#   1. configure with the CUDA backend forced on and build
#   2. the GPU tests (tests/test_cuda_*), the emulated ones and the
#      cross-backend op test (tests/test_backend_ops.c: every op on cpu, emu
#      and cuda against the float64 reference)
#   3. compute-sanitizer memcheck and racecheck over the GPU tests
#   4. the benchmarks (bench_cuda) and the same model in PyTorch
#   5. a summary table
# cuDNN is taken from /usr/local/cuda, else from the pip wheels PyTorch
# installs (site-packages/nvidia/cudnn). Where the C libraries of the build
# are not installed (the lent GPU machines have no apt), they come from
# .debs/ (tools/device-deps.sh fetch, here; carry .debs there).
# With $OUT set (the device tool), the whole log is also written to
# $OUT/gpu-check.log. RC_GPU_SANITIZE=0 skips compute-sanitizer.
# Usage: tools/gpu-check.sh [build-dir]
set -u
cd "$(dirname "$0")/.."
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    exec > >(tee "$OUT/gpu-check.log") 2>&1
fi
if ! pkg-config --exists openblas lapacke inih jansson zlib 2>/dev/null; then
    echo "build libraries not installed: unpacking .debs/ (tools/device-deps.sh)"
    . tools/device-deps.sh use || exit 1
fi
BUILD=${1:-build-gpu}
CUDA=${CUDA_PATH:-/usr/local/cuda}
PY=${RC_PYTHON:-python3}
export PATH="$CUDA/bin:$PATH"
declare -a NAMES RESULTS

record() { NAMES+=("$1"); RESULTS+=("$2"); }

cudnn_root=""
if [ ! -e "$CUDA/include/cudnn.h" ]; then
    pipdir=$("$PY" -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null ||
             "$PY" -c 'import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null)
    if [ -n "$pipdir" ] && [ -e "$pipdir/include/cudnn.h" ]; then
        cudnn_root=$pipdir
        # the wheel ships libcudnn.so.9 without the unversioned link
        [ -e "$pipdir/lib/libcudnn.so" ] || ln -sf libcudnn.so.9 "$pipdir/lib/libcudnn.so" 2>/dev/null ||
            { mkdir -p "$BUILD/cudnn-link"; ln -sf "$pipdir/lib/libcudnn.so.9" "$BUILD/cudnn-link/libcudnn.so"; }
        export LD_LIBRARY_PATH="$pipdir/lib:${LD_LIBRARY_PATH:-}"
        echo "cuDNN from $pipdir"
    fi
fi

t0=$(date +%s)
if cmake -S . -B "$BUILD" -DRC_CUDA=ON -DRC_WERROR=ON ${cudnn_root:+-DCUDNN_ROOT="$cudnn_root"} \
      > "$BUILD.configure.log" 2>&1 && cmake --build "$BUILD" -j"$(nproc)" > "$BUILD.build.log" 2>&1; then
    record build "ok ($(( $(date +%s) - t0 )) s)"
else
    record build "FAILED (see $BUILD.configure.log / $BUILD.build.log)"
    tail -30 "$BUILD.build.log" "$BUILD.configure.log" 2>/dev/null
    printf '%-28s %s\n' "${NAMES[@]/%/}" 2>/dev/null; exit 1
fi

for t in "$BUILD"/test_cuda_* "$BUILD"/test_emu_* "$BUILD"/test_backend_ops; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out=$("$t" 2>&1); rc=$?
    case $rc in 0) r=pass ;; 77) r=skipped ;; *) r="FAIL (rc $rc)"; echo "$out" | tail -20 ;; esac
    record "$name" "$r"
done

# the trainer on the GPU against the CPU backend (script tests)
for t in tests/test_cuda_*.sh; do
    [ -e "$t" ] || continue
    name=$(basename "$t" .sh)
    out=$(RC_BIN="$BUILD/recompose" RC_PYTHON="$PY" bash "$t" 2>&1); rc=$?
    case $rc in 0) r=pass ;; 77) r=skipped ;; *) r="FAIL (rc $rc)"; echo "$out" | tail -20 ;; esac
    record "$name" "$r"
done

SAN=$(command -v compute-sanitizer || echo "$CUDA/bin/compute-sanitizer")
for t in "$BUILD"/test_cuda_*; do
    [ -x "$t" ] && [ "${RC_GPU_SANITIZE:-1}" != 0 ] || continue
    for tool in memcheck racecheck; do
        out=$("$SAN" --tool "$tool" --error-exitcode 9 "$t" 2>&1); rc=$?
        case $rc in 0) r=clean ;; 77) r=skipped ;; *) r="ERRORS (rc $rc)"; echo "$out" | grep -m 20 -E "=====|Error" ;; esac
        record "$(basename "$t") $tool" "$r"
    done
done

bench=$("$BUILD/bench_cuda" 20 2>&1); echo "$bench"
torch=$("$PY" bench/bench_torch.py 20 2>&1 | tail -1); echo "$torch"
# the whole trainer (synthetic rendering on a thread, pinned feed, AdamW,
# metrics): tuples/s of its last 40 steps, beside bench_cuda's bare loop
rm -rf "$BUILD/train-paper"
if "$BUILD/recompose" train configs/paper.ini --out "$BUILD/train-paper" --quiet \
      --set train.device=cuda --set train.cudnn_benchmark=true \
      --set train.steps=100 --set train.warmup=10 \
      --set train.log_every=40 --set train.checkpoint_every=100 > "$BUILD/train-paper.log" 2>&1; then
    tps=$("$PY" -c 'import json,sys; print("%.1f" % json.loads(open(sys.argv[1]).readlines()[-1])["tuples_per_s"])' \
          "$BUILD/train-paper/metrics.jsonl")
    bench="$bench
trainer_paper $tps tuples/s"
    record "trainer paper preset (100 steps)" "ok"
else
    tail -5 "$BUILD/train-paper.log"
    record "trainer paper preset (100 steps)" "FAIL"
fi

echo
echo "==== gpu-check summary ===="
for i in "${!NAMES[@]}"; do printf '%-34s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"; done
echo "---- benchmarks ----"
echo "$bench" | awk 'NF >= 3 && $1 != "device" { printf "%-34s %s %s %s %s\n", $1, $2, $3, $4, $5 }'
echo "$torch" | awk '$1 == "torch_train_paper" { printf "%-34s %s %s\n", $1, $2, $3 }'
echo "$bench" | grep -m1 '^device'
for r in "${RESULTS[@]}"; do case $r in FAIL*|ERRORS*) exit 1 ;; esac; done
exit 0
