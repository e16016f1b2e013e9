#!/usr/bin/env bash
# bench_cpu.sh: recompose's CPU trainer against the PyTorch reference
# (tests/ref/model_ref.py), on the same batches, weights and thread count.
#
#   bench/bench_cpu.sh [BUILD_DIR] [--reps N] [--threads N] [--tiny-steps N]
#                      [--paper-steps N] [--paper-batch N] [--no-paper]
#                      [--set KEY=VALUE]...   (config overrides, both presets)
#
# For each preset (configs/tiny.ini; configs/paper.ini with a smaller batch,
# default 8, so that a run takes minutes, not hours): `bench_cpu dump` writes
# the batches of steps 0..1 and the initial weights; then N repetitions,
# each running recompose (bench_cpu train) and PyTorch
# (bench_cpu_torch.py) in separate processes, alternating which goes first,
# so that machine load hits both alike. Prints the median tuples/s and peak
# resident memory (getrusage ru_maxrss) of each, their ratios, and whether
# the first step's losses agree (same weights and input: they must). Then
# one `bench_cpu train --ops` run per preset: per-op times and GFLOP/s
# beside OpenBLAS's sgemm rate on this machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${RC_BUILD:-$root/build}
if [[ $# -gt 0 && $1 != --* ]]; then build=$1; shift; fi
reps=5 threads=2 tiny_steps=20 paper_steps=2 paper_batch=8 paper=1 extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --tiny-steps) tiny_steps=$2; shift 2 ;;
    --paper-steps) paper_steps=$2; shift 2 ;;
    --paper-batch) paper_batch=$2; shift 2 ;;
    --no-paper) paper=0; shift ;;
    --set) extra+=(--set "$2"); shift 2 ;;
    *) echo "bench_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bench=$build/bench_cpu
py=${RC_PYTHON:-/usr/bin/python3}
if [[ ! -x $bench ]]; then
  echo "bench_cpu.sh: $bench not found: build first (cmake --build $build --target bench_cpu)" >&2
  exit 2
fi
work=$(mktemp -d /tmp/bench_cpu.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores," \
     "load $(cut -d' ' -f1-3 /proc/loadavg); threads $threads; $(date -u +%Y-%m-%dT%H:%MZ);" \
     "commit $(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
# the instruction sets that decide which kernels run, and OpenBLAS's choice
echo "ISA: $("$root/tools/cpu-isa.sh"); OpenBLAS kernels: $("$root/tools/openblas-kernels.sh" "$build/recompose" 2>/dev/null || echo unknown)" \
     "(OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
caps=$(env | { grep -E '^(DNNL_MAX_CPU_ISA|ONEDNN_MAX_CPU_ISA|ATEN_CPU_CAPABILITY)=' || true; } | sort | paste -sd' ')
echo "kernel caps: ${caps:-none} (DNNL_MAX_CPU_ISA caps both sides' oneDNN, ATEN_CPU_CAPABILITY PyTorch's own kernels)"
echo "torch $("$py" -c 'import torch; print(torch.__version__)')," \
     "$(basename "$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)") via $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 | xargs dirname | xargs basename)"

# field VALUE of a result line: field NAME < line
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

run_preset() {
  local name=$1 config=$2 steps=$3 warm=$4; shift 4
  local dir=$work/$name
  mkdir -p "$dir"
  "$bench" dump "$config" "$dir" --batches 2 "$@" >/dev/null
  local sets=() torch_args=()
  for s in "$@"; do sets+=("$s"); done
  : >"$dir/rc.txt"; : >"$dir/torch.txt"
  # PyTorch at its best: a short run in each layout, the faster one raced
  local layout=nchw best=0 l t
  for l in nchw channels_last; do
    t=$(OMP_NUM_THREADS=$threads "$py" "$here/bench_cpu_torch.py" "$dir/config.ini" "$dir" --batches 2 \
          --steps "$(( (steps + 1) / 2 ))" --warmup "$warm" --threads "$threads" --layout "$l" | field tuples_per_s)
    echo "  pytorch probe: $l $t tuples/s" >>"$dir/probe.txt"
    if awk -v a="$t" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$t layout=$l; fi
  done
  for ((r = 0; r < reps; r++)); do
    local rc_cmd=("$bench" train "$config" --batches 2 --steps "$steps" --warmup "$warm" --threads "$threads" "${sets[@]}")
    local pt_cmd=("$py" "$here/bench_cpu_torch.py" "$dir/config.ini" "$dir" --batches 2 --steps "$steps" --warmup "$warm" --threads "$threads" --layout "$layout")
    if ((r % 2 == 0)); then
      "${rc_cmd[@]}" >>"$dir/rc.txt"; OMP_NUM_THREADS=$threads "${pt_cmd[@]}" >>"$dir/torch.txt"
    else
      OMP_NUM_THREADS=$threads "${pt_cmd[@]}" >>"$dir/torch.txt"; "${rc_cmd[@]}" >>"$dir/rc.txt"
    fi
  done
  local rc_tps pt_tps rc_mem pt_mem rc_base pt_base rc_loss pt_loss
  rc_tps=$(field tuples_per_s <"$dir/rc.txt" | median)
  pt_tps=$(field tuples_per_s <"$dir/torch.txt" | median)
  rc_mem=$(field peak_rss_mb <"$dir/rc.txt" | median)
  pt_mem=$(field peak_rss_mb <"$dir/torch.txt" | median)
  rc_base=$(field base_rss_mb <"$dir/rc.txt" | median)
  pt_base=$(field base_rss_mb <"$dir/torch.txt" | median)
  rc_loss=$(field first_loss <"$dir/rc.txt" | head -1)
  pt_loss=$(field first_loss <"$dir/torch.txt" | head -1)
  echo
  echo "== $name ($(basename "$config") $*; $steps timed steps after $warm warm-up, median of $reps runs each)"
  printf '  %-10s %10s %14s %14s %12s\n' "" "tuples/s" "peak RSS MB" "at start MB" "first loss"
  printf '  %-10s %10.2f %14.1f %14.1f %12s\n' recompose "$rc_tps" "$rc_mem" "$rc_base" "$rc_loss"
  printf '  %-10s %10.2f %14.1f %14.1f %12s   (%s, the faster layout here)\n' pytorch "$pt_tps" "$pt_mem" "$pt_base" "$pt_loss" "$layout"
  cat "$dir/probe.txt"
  awk -v a="$rc_tps" -v b="$pt_tps" -v m="$rc_mem" -v n="$pt_mem" -v mb="$rc_base" -v nb="$pt_base" 'BEGIN {
    printf "  ratio      throughput %.2fx (goal >= 2)   peak memory %.2fx (goal <= 1)   above start %.2fx\n",
           a / b, m / n, (m - mb) / (n - nb) }'
  echo "  recompose's convolutions: $(field backend <"$dir/rc.txt" | head -1)," \
       "operands $(field conv_operands <"$dir/rc.txt" | head -1), oneDNN ISA $(field conv_isa <"$dir/rc.txt" | head -1)"
  echo "  runs (tuples/s): recompose $(field tuples_per_s <"$dir/rc.txt" | tr '\n' ' ')| pytorch $(field tuples_per_s <"$dir/torch.txt" | tr '\n' ' ')"
  awk -v a="$rc_loss" -v b="$pt_loss" 'BEGIN { d = a - b; if (d < 0) d = -d;
    if (d > 1e-4 * (b < 0 ? -b : b)) print "  WARNING: first-step losses differ: the two sides do not compute the same thing" }'
}

run_preset tiny "$root/configs/tiny.ini" "$tiny_steps" 2 ${extra[@]+"${extra[@]}"}
if ((paper)); then
  run_preset paper "$root/configs/paper.ini" "$paper_steps" 1 --set "train.batch=$paper_batch" ${extra[@]+"${extra[@]}"}
fi

echo
echo "== per-op profile (recompose, timed inside the training steps; conv and ReLU unfused here)"
echo "-- tiny"
"$bench" train "$root/configs/tiny.ini" --steps "$tiny_steps" --threads "$threads" --ops \
  ${extra[@]+"${extra[@]}"} | tail -n +2
if ((paper)); then
  echo "-- paper (batch $paper_batch)"
  "$bench" train "$root/configs/paper.ini" --set "train.batch=$paper_batch" --steps "$paper_steps" \
    --warmup 1 --batches 2 --threads "$threads" --ops ${extra[@]+"${extra[@]}"} | tail -n +2
fi
