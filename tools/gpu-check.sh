#!/usr/bin/env bash
# gpu-check.sh: everything that needs a real GPU, in one run that must work
# the first time on a bare machine (docs/gpu.md, "Checking a GPU machine").
#
#   tools/gpu-check.sh [--quick] [--no-gpu] [--no-build] [--debs] [build-dir]
#   tools/gpu-check.sh --plan
#
#   0. what the machine has: kernel, CPU, nvidia-smi, nvcc, gcc, cmake,
#      where cudnn.h and the cuDNN, cuBLAS, NCCL and CUDA runtime
#      libraries are (so a failure is diagnosed from this one log)
#   1. configure with the CUDA backend forced on and build (warnings are not
#      errors here: an unknown gcc may add some; CI keeps -Werror)
#   2. the GPU tests (test_cuda_*), the emulated ones, the cross-backend op
#      test (every op on cpu, emu and cuda against the float64 reference)
#      and the trainer on the GPU against the CPU (test_cuda_train.sh)
#   3. bench_cuda, the same model in PyTorch, and the whole trainer on the
#      paper preset; then the CPU backend across the machine's cores
#      (bench_cpu at 1, 2, 4, ... threads; bench/bench_cpu.sh against
#      PyTorch at 2 and at all of them)
#   4. compute-sanitizer memcheck and racecheck over the GPU tests, on the
#      project's kernels (rc_k_*), with what the budget has left (last, so
#      that a slow sanitizer never costs the figures); informational: its
#      findings are in the log, it never fails the check by itself; API
#      errors returned inside cuDNN/cuBLAS are theirs, not ours
#      (--report-api-errors no); skipped with a line saying why where the
#      machine refuses the sanitizer
#   5. a summary table; exit 1 if anything failed, crashed or timed out
#
# --no-gpu: what can run without a GPU (tests/test_gpu_dryrun.sh runs it on
#   every change, in a bare GPU machine's layout): the
#   build, the emulated tests, the emulated trainer against the CPU one, an
#   emulated training run with its figure, the summary. GPU steps report
#   "skipped (no GPU)". Without --no-gpu, a machine with no visible GPU is
#   itself a failure line.
# --quick: the second try when time is short: no sanitizer, shorter
#   benchmark and trainer runs (about half the time).
# --no-build: use the binaries already in build-dir.
# --debs: build against the .debs/ sysroot even where pkg-config finds the
#   libraries (what a GPU image without them does; the dry run in CI).
# --plan: print the time plan (a fresh machine's start, the first try, the
#   retry) against the time a lent GPU machine has (RC_GPU_MACHINE_S,
#   default 900 s) and the longest single command (RC_GPU_CALL_S, 600 s);
#   exit 1 if it does not fit.
#
# Every step runs under a timeout, and the whole check under a budget
# (RC_GPU_CHECK_BUDGET seconds, default 360, 200 with --quick; build
# included):
# a step that would start past it is reported "not run (time budget)". A
# crash (a signal) is reported as CRASH, never as a pass. With $OUT set to a
# folder the whole log is also written to $OUT/gpu-check.log, complete
# when the script returns.
#
# Where the build's C libraries are not installed (GPU images without
# apt) they come from .debs/ (tools/device-deps.sh fetch on a machine
# with apt;
# copy .debs/ along). cuDNN is taken from the CUDA toolkit, else from the
# pip wheels PyTorch installs (site-packages/nvidia/cudnn).
#
# Test hook: RC_GPU_CHECK_INJECT=crash makes the benchmark step crash, so
# that the failure reporting itself is tested (tests/test_gpu_check.sh).
set -u
cd "$(dirname "$0")/.."
root=$(pwd)

QUICK=0 NOGPU=0 NOBUILD=0 DEBS=0 PLAN=0 BUILD=build-gpu
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --no-gpu) NOGPU=1 ;;
        --no-build) NOBUILD=1 ;;
        --debs) DEBS=1 ;;
        --plan) PLAN=1 ;;
        -h|--help) sed -n '2,45p' "$0"; exit 0 ;;
        -*) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) BUILD=$1 ;;
    esac
    shift
done

t_start=$(date +%s)
# a first try fits 360 s, a --quick second try 200 s (the build is kept)
BUDGET_FULL=360 BUDGET_QUICK=200
BUDGET=${RC_GPU_CHECK_BUDGET:-$([ "$QUICK" = 1 ] && echo $BUDGET_QUICK || echo $BUDGET_FULL)}
deadline=$((t_start + BUDGET))

# ---- the time plan ------------------------------------------------------------------
# A lent machine starts in one to two minutes, counted against its time;
# each command's files travel both ways (about 30 s with the build folder's
# logs). The first try and one retry after a time-out must fit, each try
# inside the longest single command.
if [ "$PLAN" = 1 ]; then
    machine=${RC_GPU_MACHINE_S:-900} call=${RC_GPU_CALL_S:-600} start=120 transfer=30
    total=$((start + BUDGET_FULL + transfer + BUDGET_QUICK + transfer))
    echo "time plan: start $start s + first try $BUDGET_FULL s + retry (--quick) $BUDGET_QUICK s + 2 transfers of $transfer s = $total s of the machine's $machine s; each try within one command of $call s"
    if [ "$total" -le "$machine" ] && [ $((BUDGET_FULL + transfer)) -le "$call" ]; then
        echo "time plan: fits ($((machine - total)) s to spare)"
        exit 0
    fi
    echo "time plan: does NOT fit: lower RC_GPU_CHECK_BUDGET's defaults or the steps' limits"
    exit 1
fi

# ---- the log: complete when the script returns -------------------------------
LOG=""
# every step's whole output, the build logs, CMakeCache and the trainer's
# metrics: in $OUT/gpu-check-logs (or the build folder's)
STEPLOGS="$BUILD/gpu-check-logs"
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    STEPLOGS="$OUT/gpu-check-logs"
    LOG="$OUT/gpu-check.log"
    exec 3>&1 4>&2
    exec > >(tee "$LOG") 2>&1
    tee_pid=$!
fi

declare -a NAMES RESULTS
record() { NAMES+=("$1"); RESULTS+=("$2"); printf '  -> %-36s %s\n' "$1" "$2"; }
mkdir -p "$STEPLOGS" 2>/dev/null || true
# keep NAME OUTPUT: a step's whole output in its own file
keep() { printf '%s\n' "$2" > "$STEPLOGS/$(printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '_').log" 2>/dev/null || true; }
elapsed() { echo $(( $(date +%s) - t_start )); }
section() { printf '\n==== [%4ss] %s\n' "$(elapsed)" "$1"; }

# Seconds a step may take: its own limit, cut to what is left of the budget
# (20 s kept for the summary); 0 when nothing is left.
limit() {
    local left=$((deadline - $(date +%s) - 20))
    if [ "$left" -le 0 ]; then echo 0; elif [ "$1" -lt "$left" ]; then echo "$1"; else echo "$left"; fi
}

# Outcome of an exit status, in the summary's words.
verdict() {
    case $1 in
        0) echo pass ;;
        77) echo "skipped${2:+ ($2)}" ;;
        124) echo "TIMEOUT" ;;
        125|126|127) echo "FAIL (could not run: rc $1)" ;;
        *) if [ "$1" -gt 128 ]; then echo "CRASH (signal $(( $1 - 128 )))"; else echo "FAIL (rc $1)"; fi ;;
    esac
}

# timed SECS CMD...: run CMD under a timeout; its output in $TIMED_OUT, its
# status in $TIMED_RC, 124 also for a step killed after ignoring the
# timeout's TERM (a timeout, not a crash)
timed() {
    local secs=$1 t0; shift; t0=$(date +%s)
    TIMED_OUT=$(timeout -k 10 "$secs" "$@" 2>&1); TIMED_RC=$?
    if [ "$TIMED_RC" = 137 ] && [ $(( $(date +%s) - t0 )) -ge "$secs" ]; then TIMED_RC=124; fi
}

# run_step NAME SECONDS CMD...: run with a timeout, record the outcome, show
# the tail of its output when it did not pass. On a GPU machine a GPU test
# that skips (77) failed: it found no GPU where there is one.
run_step() {
    local name=$1 secs; secs=$(limit "$2"); shift 2
    if [ "$secs" -le 0 ]; then record "$name" "not run (time budget)"; return 1; fi
    local out rc
    timed "$secs" "$@"; out=$TIMED_OUT rc=$TIMED_RC
    keep "$name" "$out"
    local r; r=$(verdict "$rc" "$(echo "$out" | grep -m1 -o 'SKIPPED.*' | sed 's/^SKIPPED:* *//' | cut -c1-60)")
    if [ "$rc" = 77 ] && [ "$have_gpu" = 1 ] && [[ $name == *cuda* ]]; then
        r="FAIL (skipped on a GPU machine: $(echo "$out" | grep -m1 -o 'SKIPPED.*' | cut -c1-80))"
    fi
    case $r in pass|skipped*) ;; *) echo "$out" | tail -25 ;; esac
    record "$name" "$r"
    return "$rc"
}

finished=0
finish() {
    [ "$finished" = 1 ] && return
    finished=1
    local rc=0
    echo
    echo "==== gpu-check summary ($(elapsed) s of a ${BUDGET} s budget; mode:$([ $NOGPU = 1 ] && echo ' no-gpu')$([ $QUICK = 1 ] && echo ' quick')$([ $NOGPU = 0 ] && [ $QUICK = 0 ] && echo ' full'))"
    for i in "${!NAMES[@]}"; do printf '%-38s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}"; done
    for f in "$BUILD/gpu-check.configure.log" "$BUILD/gpu-check.build.log" \
             "$BUILD/CMakeCache.txt" "$BUILD/gpu-check-train/metrics.jsonl"; do
        [ -f "$f" ] && cp "$f" "$STEPLOGS/$(basename "$(dirname "$f")")-$(basename "$f")" 2>/dev/null
    done
    echo "step logs: $STEPLOGS"
    if [ -n "${BENCH_LINES:-}" ]; then
        echo "---- figures ----"
        echo "$BENCH_LINES" | sed '/^ *$/d'
    fi
    for i in "${!RESULTS[@]}"; do
        # the sanitizer informs; it never fails the check by itself
        case ${NAMES[$i]} in *"(informational)"*) continue ;; esac
        case ${RESULTS[$i]} in FAIL*|ERRORS*|CRASH*|TIMEOUT*|"not run"*) rc=1 ;; esac
    done
    echo "gpu-check: $([ $rc = 0 ] && echo PASSED || echo FAILED)"
    if [ -n "$LOG" ]; then
        # close our end of the pipe and wait until tee has written it all
        exec 1>&3 2>&4 3>&- 4>&-
        wait "$tee_pid" 2>/dev/null
    fi
    exit $rc
}

# an unexpected exit (an unset variable, a signal) still prints the summary
# and completes the log; it counts as a failure
trap 'code=$?; if [ "$finished" = 0 ]; then record "gpu-check itself" "FAIL (exited early, status $code)"; finish; fi' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# ---- 0. the machine ---------------------------------------------------------------
section "the machine"
CUDA=${CUDA_PATH:-/usr/local/cuda}
export PATH="$CUDA/bin:$PATH"
# the Python with PyTorch: $RC_PYTHON, else python3 on PATH (the GPU
# images' pip torch), else Debian's /usr/bin/python3
PY=${RC_PYTHON:-}
if [ -z "$PY" ]; then
    for p in python3 /usr/bin/python3; do
        if "$p" -c 'import torch' >/dev/null 2>&1; then PY=$p; break; fi
    done
    PY=${PY:-python3}
fi
echo "kernel:    $(uname -srm); $(nproc) cores; $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB memory"}')"
echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'); $(tools/cpu-isa.sh)"
echo "system:    $( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || echo unknown); $(ldd --version 2>/dev/null | head -1 || echo 'glibc unknown')"
if command -v nvidia-smi >/dev/null 2>&1; then
    echo "GPU:       $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -4 | tr '\n' ';')"
else
    echo "GPU:       nvidia-smi not found"
fi
echo "nvcc:      $(nvcc --version 2>/dev/null | tail -1 || echo 'not found')"
echo "gcc:       $(gcc --version 2>/dev/null | head -1 || echo 'not found')"
echo "cmake:     $(cmake --version 2>/dev/null | head -1 || echo 'not found')"
echo "make:      $(make --version 2>/dev/null | head -1 || echo 'not found'); ninja: $(ninja --version 2>/dev/null || echo 'not found')"
echo "python:    $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo "$PY without torch")"
site_nvidia=$("$PY" -c 'import nvidia, os; print(" ".join(nvidia.__path__))' 2>/dev/null)
# the build looks for cuDNN and NCCL wheels in these site-packages first
# (cmake/nvidia_wheels.cmake): the ones of the Python that has PyTorch
RC_PYTHON_SITE=${RC_PYTHON_SITE:-$(for d in $site_nvidia; do dirname "$d"; done | paste -sd';')}
export RC_PYTHON_SITE
# NCCL says why it fails, without the chatter of INFO
export NCCL_DEBUG=${NCCL_DEBUG:-WARN}
echo "cudnn.h:   $(ls "$CUDA"/include/cudnn.h /usr/include/cudnn.h /usr/include/*/cudnn.h \
    $(for d in $site_nvidia; do echo "$d/cudnn/include/cudnn.h"; done) 2>/dev/null | tr '\n' ' ')"
for lib in libcudart.so libcublas.so libcudnn.so libnccl.so; do
    found=$( (ldconfig -p 2>/dev/null | awk -v l="$lib" 'index($1, l) == 1 {print $NF}';
              ls "$CUDA"/lib64/"$lib"* "$CUDA"/lib/"$lib"* "$CUDA"/targets/*/lib/"$lib"* 2>/dev/null;
              for d in $site_nvidia; do ls "$d"/*/lib/"$lib"* 2>/dev/null; done) | sort -u | head -4 | tr '\n' ' ')
    printf '%-10s %s\n' "$lib:" "${found:-not found}"
done

# The loader's path: wherever this image keeps the CUDA runtime, cuBLAS,
# cuDNN and NCCL (the plugin's RUNPATH names the build's; this covers a
# run elsewhere and the libraries they load in turn).
for d in "$CUDA/lib64" "$CUDA/lib" $(for s in $site_nvidia; do ls -d "$s"/*/lib 2>/dev/null; done); do
    [ -d "$d" ] && LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

have_gpu=0 gpu_by_build=0
if [ "$NOGPU" = 0 ] && nvidia-smi -L >/dev/null 2>&1; then have_gpu=1; fi
if [ "$NOGPU" = 0 ] && [ "$have_gpu" = 0 ]; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        record "GPU visible" "FAIL (nvidia-smi -L found none; --no-gpu for the CPU-only check)"
    else
        gpu_by_build=1  # no nvidia-smi here: the build counts the devices
    fi
fi

# ---- 1. build -----------------------------------------------------------------------
section "build ($BUILD)"
if [ "$NOBUILD" = 1 ]; then
    [ -x "$BUILD/recompose" ] || { record build "FAIL (--no-build but no $BUILD/recompose)"; finish; }
    record build "skipped (--no-build)"
else
    if [ "$DEBS" = 1 ] || ! pkg-config --exists openblas lapacke inih jansson zlib 2>/dev/null; then
        if [ "$DEBS" = 1 ]; then echo "--debs: the build's libraries from .debs/ (tools/device-deps.sh)"
        else echo "build libraries not installed: unpacking .debs/ (tools/device-deps.sh)"; fi
        . tools/device-deps.sh use || { record "build libraries" "FAIL (no .debs/: run tools/device-deps.sh fetch where apt works)"; finish; }
    fi
    cudnn_root=""
    if [ ! -e "$CUDA/include/cudnn.h" ]; then
        for d in $site_nvidia; do
            if [ -e "$d/cudnn/include/cudnn.h" ]; then
                cudnn_root=$d/cudnn
                # the wheel ships libcudnn.so.9 without the unversioned link
                [ -e "$cudnn_root/lib/libcudnn.so" ] || ln -sf libcudnn.so.9 "$cudnn_root/lib/libcudnn.so" 2>/dev/null ||
                    { mkdir -p "$BUILD/cudnn-link"; ln -sf "$cudnn_root/lib/libcudnn.so.9" "$BUILD/cudnn-link/libcudnn.so"; }
                echo "cuDNN from $cudnn_root"
                break
            fi
        done
    fi
    cuda_mode=ON
    [ "$NOGPU" = 1 ] && ! command -v nvcc >/dev/null 2>&1 && cuda_mode=AUTO
    # -Werror only where CI sets it; on a fresh GPU build warnings are not errors
    werror=() generator=()
    [ -e "$BUILD/CMakeCache.txt" ] || werror=(-DRC_WERROR=OFF)
    # an image may have ninja (pip's) and no make
    if [ ! -e "$BUILD/CMakeCache.txt" ] && ! command -v make >/dev/null 2>&1; then
        command -v ninja >/dev/null 2>&1 ||
            { record build "FAIL (neither make nor ninja: install one, e.g. pip install ninja)"; finish; }
        generator=(-G Ninja)
        echo "no make here: configuring with Ninja"
    fi
    mkdir -p "$BUILD"
    secs=$(limit 300)
    [ "$secs" -gt 0 ] || { record build "not run (time budget)"; finish; }
    if timeout "$secs" cmake -S . -B "$BUILD" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release -DRC_CUDA=$cuda_mode ${werror[@]+"${werror[@]}"} \
            ${cudnn_root:+-DCUDNN_ROOT="$cudnn_root"} > "$BUILD/gpu-check.configure.log" 2>&1 &&
       secs=$(limit 300) && [ "$secs" -gt 0 ] &&
       timeout "$secs" cmake --build "$BUILD" -j"$(nproc)" > "$BUILD/gpu-check.build.log" 2>&1; then
        record build "ok ($(grep -c -i 'warning' "$BUILD/gpu-check.build.log") warning lines)"
        grep -m1 "CUDA backend:" "$BUILD/gpu-check.configure.log"
        grep -m1 -E "oneDNN convolutions|without oneDNN" "$BUILD/gpu-check.configure.log"
        grep -m1 "Distributed training: NCCL" "$BUILD/gpu-check.configure.log" ||
            grep -m1 "Distributed training:" "$BUILD/gpu-check.configure.log"
    elif [ "$(limit 1)" -le 0 ]; then
        record build "not run to the end (time budget)"
        finish
    else
        # the first errors say what broke; a parallel build's last lines rarely do
        grep -m5 -n -i -E "error|fatal" "$BUILD/gpu-check.configure.log" "$BUILD/gpu-check.build.log" 2>/dev/null
        tail -15 "$BUILD/gpu-check.configure.log" "$BUILD/gpu-check.build.log" 2>/dev/null
        record build "FAIL (logs: $BUILD/gpu-check.configure.log, $BUILD/gpu-check.build.log)"
        finish
    fi
fi
BIN="$BUILD/recompose"
features=$("$BIN" version 2>/dev/null | awk '/^features:/ {$1 = ""; print substr($0, 2)}')
echo "build features: ${features:-unknown}"
if [ "$gpu_by_build" = 1 ]; then
    n=$("$BIN" version --devices 2>/dev/null | awk '/^CUDA devices:/ {print $3}')
    echo "CUDA devices (no nvidia-smi; the build's count): ${n:-unknown}"
    if [ "${n:-0}" -gt 0 ] 2>/dev/null; then have_gpu=1; else
        record "GPU visible" "FAIL (no nvidia-smi, and the build sees no CUDA device; --no-gpu for the CPU-only check)"
    fi
fi
if [ "$NOGPU" = 0 ]; then
    echo "plugin RUNPATH: $(readelf -d "$BUILD/librecompose_cuda.so" 2>/dev/null | awk '/RUNPATH|RPATH/ {print $NF}')"
fi

# ---- 2. tests -------------------------------------------------------------------------
section "tests"
for t in test_cuda_plugin test_backend_ops test_emu_kernels test_emu_step test_cuda_ops; do
    [ -x "$BUILD/$t" ] || { record "$t" "FAIL (not built)"; continue; }
    run_step "$t" 240 "$BUILD/$t"
done
for t in test_train_emu test_cuda_train; do
    [ "$t" = test_train_emu ] && [ "$QUICK" = 1 ] && continue
    run_step "$t" 240 env RC_BIN="$BIN" RC_PYTHON="$PY" RC_BUILD="$BUILD" bash "tests/$t.sh"
done

# Footage to the device: test_cuda_train (and test_train_emu) train from a
# packed shard with the pixels as bytes (data.transfer auto: u8 on a
# device) wherever the build has video input.
case " $features " in
    *" +video "*) record "footage (shards, bytes to the device)" "in test_cuda_train / test_train_emu" ;;
    *) record "footage (shards, bytes to the device)" "skipped (no video input in this build: libturbojpeg, libpng, libswscale missing; tools/device-deps.sh fetch, then --debs)" ;;
esac

# ---- 3. benchmarks and the trainer ----------------------------------------------------------
section "benchmarks"
BENCH_LINES=""
steps=20; [ "$QUICK" = 1 ] && steps=8
if [ "${RC_GPU_CHECK_INJECT:-}" = crash ]; then
    run_step "bench_cuda" 60 bash -c 'echo "device injected"; kill -SEGV $$'
elif [ "$have_gpu" = 0 ]; then
    record "bench_cuda" "skipped (no GPU)"
else
    secs=$(limit 180); bench="" rc=0
    if [ "$secs" -gt 0 ]; then
        timed "$secs" "$BUILD/bench_cuda" "$steps"; bench=$TIMED_OUT rc=$TIMED_RC
        echo "$bench"
        record "bench_cuda" "$(verdict $rc)"
    else
        record "bench_cuda" "not run (time budget)"
    fi
    BENCH_LINES=$(echo "$bench" | awk 'NF >= 3 && $1 != "device" { printf "%-38s %s %s %s %s\n", $1, $2, $3, $4, $5 }'
                  echo "$bench" | grep -m1 '^device')
    secs=$(limit 180); torch=""
    if [ "$secs" -gt 0 ]; then
        # the same distinct pairs per step as the C trainer's step
        pairs=$(echo "$bench" | awk '$1 == "train_paper_pairs_per_step" {print $2}')
        timed "$secs" "$PY" bench/bench_torch.py "$steps" ${pairs:+"$pairs"}; torch=$TIMED_OUT rc=$TIMED_RC
        echo "$torch" | tail -3
        record "bench_torch.py (PyTorch peer)" "$(verdict $rc)"
    else
        record "bench_torch.py (PyTorch peer)" "not run (time budget)"
    fi
    BENCH_LINES="$BENCH_LINES
$(echo "$torch" | awk '$1 == "torch_train_paper" { printf "%-38s %s %s %s %s %s %s\n", $1, $2, $3, $4, $5, $6, $7 }')"
fi

# The whole trainer (rendering on a thread, the feed, AdamW, metrics): its
# tuples/s over the last window. Paper preset on the GPU, where one CPU
# thread renders the synthetic clips and caps the figure far below the
# device step (render-bound: bench_cuda gives the step's own rate); on the
# emulator a few steps of the tiny one (the same path, CPU-sized).
if [ "$have_gpu" = 1 ]; then
    tr_name="trainer paper preset (cuda)"; tr_steps=30; [ "$QUICK" = 1 ] && tr_steps=12
    tr_args=(configs/paper.ini --set train.device=cuda --set train.cudnn_benchmark=true
             --set train.warmup=10 --set train.log_every=$((tr_steps * 2 / 5)))
else
    tr_name="trainer tiny preset (emu)"; tr_steps=4
    tr_args=(configs/tiny.ini --set train.device=emu --set train.warmup=1 --set train.log_every=2)
fi
rm -rf "$BUILD/gpu-check-train"
if run_step "$tr_name" 240 "$BIN" train "${tr_args[@]}" --out "$BUILD/gpu-check-train" --quiet \
        --set train.steps=$tr_steps --set train.checkpoint_every=$tr_steps; then
    tps=$("$PY" -c 'import json, sys; print("%.1f" % json.loads(open(sys.argv[1]).readlines()[-1])["tuples_per_s"])' \
          "$BUILD/gpu-check-train/metrics.jsonl" 2>/dev/null)
    if [ -z "$tps" ]; then
        record "$tr_name: metrics.jsonl" "FAIL (no tuples_per_s in $BUILD/gpu-check-train/metrics.jsonl)"
    else
        BENCH_LINES="$BENCH_LINES
$(printf '%-38s %s tuples/s%s' "trainer_${tr_args[0]##*/}" "$tps" "$([ "$have_gpu" = 1 ] && echo ' (render-bound)')")"
    fi
fi

# ---- the CPU backend across this machine's cores --------------------------------------
# A GPU machine has more cores than CI's two: the CPU trainer's scaling on
# the tiny preset (1, 2, 4, ... threads up to all of them: bench_cpu) and
# its ratio to PyTorch's best layout at 2 threads and at all of them
# (bench/bench_cpu.sh, tiny only), with the kernels' instruction set and
# the CPU in the header, for bench/RESULTS.md.
section "CPU backend across cores"
ncpu=$(nproc) cpu_steps=10
[ "$NOGPU" = 1 ] && cpu_steps=3
[ "$QUICK" = 1 ] && cpu_steps=5
if [ ! -x "$BUILD/bench_cpu" ]; then
    record "CPU scaling (bench_cpu, tiny)" "FAIL (not built)"
elif [ "$(limit 30)" -le 0 ]; then
    record "CPU scaling (bench_cpu, tiny)" "not run (time budget)"
else
    cpu_threads="" t=1
    while [ "$t" -lt "$ncpu" ]; do cpu_threads="$cpu_threads $t"; t=$((t * 2)); done
    cpu_threads="$cpu_threads $ncpu" cpu_rc=0 cpu_out=""
    for t in $cpu_threads; do
        secs=$(limit 30)
        if [ "$secs" -le 0 ]; then cpu_rc=124; break; fi
        timed "$secs" "$BUILD/bench_cpu" train configs/tiny.ini --batches 2 --steps "$cpu_steps" --warmup 2 --threads "$t"
        cpu_out="$cpu_out$TIMED_OUT
"
        [ "$TIMED_RC" = 0 ] || { cpu_rc=$TIMED_RC; break; }
        BENCH_LINES="$BENCH_LINES
$(echo "$TIMED_OUT" | awk -v t="$t" '$1 == "recompose" { for (i = 1; i < NF; i++) v[$i] = $(i + 1);
            printf "%-38s %s tuples/s (%s, oneDNN ISA %s)", "cpu_tiny_threads_" t, v["tuples_per_s"], v["backend"], v["conv_isa"] }')"
    done
    keep "CPU scaling (bench_cpu)" "$cpu_out"
    [ "$cpu_rc" = 0 ] || echo "$cpu_out" | tail -10
    record "CPU scaling (bench_cpu, tiny)" "$(verdict $cpu_rc)"
    for t in $(printf '%s\n' 2 "$ncpu" | sort -un); do
        [ "$t" -le "$ncpu" ] || continue
        name="CPU vs PyTorch, tiny, $t threads"
        if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
            record "$name" "skipped (no PyTorch in $PY)"
        elif run_step "$name" 120 env RC_PYTHON="$PY" bash bench/bench_cpu.sh "$BUILD" --no-paper --reps 1 \
                --threads "$t" --tiny-steps "$cpu_steps"; then
            BENCH_LINES="$BENCH_LINES
$(echo "$TIMED_OUT" | awk -v t="$t" '$1 == "recompose" && !r { r = $2 } $1 == "pytorch" && !p { p = $2; l = $(NF - 4); gsub(/[(,]/, "", l) }
            $1 == "ratio" && !x { x = $3 }
            END { printf "%-38s recompose %s, PyTorch %s %s tuples/s: %s", "cpu_tiny_vs_torch_threads_" t, r, l, p, x }')"
        fi
    done
fi

# ---- 4. compute-sanitizer (last: a slow sanitizer never costs the figures) ----
# Informational: it reports on the project's kernels (rc_k_*; cuDNN's and
# cuBLAS's are theirs), within what the budget has left, and never fails
# the check by itself: its findings are read in the log.
section "compute-sanitizer"
SAN=$(command -v compute-sanitizer || echo "$CUDA/bin/compute-sanitizer")
san="compute-sanitizer (informational)"
if [ "$have_gpu" = 0 ]; then
    record "$san" "skipped (no GPU)"
elif [ "$QUICK" = 1 ] || [ "${RC_GPU_SANITIZE:-1}" = 0 ]; then
    record "$san" "skipped (--quick or RC_GPU_SANITIZE=0)"
elif [ ! -x "$SAN" ]; then
    record "$san" "skipped (not found)"
else
    filter=()
    if "$SAN" --help 2>/dev/null | grep -q -- '--kernel-name'; then
        filter=(--kernel-name kns=rc_k_)
    elif "$SAN" --help 2>/dev/null | grep -q -- '--filter'; then
        filter=(--filter kns=rc_k_)
    fi
    # a probe: a machine may refuse the sanitizer (no debugger access)
    secs=$(limit 60); probe="" prc=124
    if [ "$secs" -ge 20 ]; then
        timed "$secs" "$SAN" --tool memcheck --report-api-errors no "$BUILD/test_cuda_plugin"
        probe=$TIMED_OUT prc=$TIMED_RC
        keep "sanitizer probe" "$probe"
    fi
    if [ "$secs" -lt 20 ]; then
        record "$san" "skipped (no time left in the budget)"
    elif [ "$prc" = 124 ]; then
        record "$san" "skipped (its probe over test_cuda_plugin took over $secs s)"
    elif [ $prc -ne 0 ]; then
        record "$san" "skipped (refused here: $(echo "$probe" | grep -m1 -v '^=* *$' | cut -c1-80))"
    else
        # racecheck only where shared memory is (every kernel runs in
        # test_backend_ops; test_cuda_ops adds the bf16 and graph paths)
        for spec in "memcheck test_backend_ops" "racecheck test_backend_ops" "memcheck test_cuda_ops"; do
            set -- $spec
            name="$2 $1 (informational)"
            secs=$(limit 120)
            if [ "$secs" -lt 20 ]; then record "$name" "skipped (no time left in the budget)"; continue; fi
            timed "$secs" "$SAN" --tool "$1" ${filter[@]+"${filter[@]}"} --report-api-errors no \
                --error-exitcode 9 "$BUILD/$2"
            out=$TIMED_OUT rc=$TIMED_RC
            keep "$name" "$out"
            case $rc in
                0) r=clean ;;
                9) r="ERRORS (read the log)"; echo "$out" | grep -m 20 -E "=====" ;;
                124) r="stopped at $secs s (budget)" ;;
                *) r=$(verdict $rc); echo "$out" | tail -10 ;;
            esac
            record "$name" "$r"
        done
    fi
fi

finish
