#!/usr/bin/env bash
# bench_dist_cpu.sh: data-parallel CPU training (MPI) against one process
# training the same global batch, in the same run.
#
#   bench/bench_dist_cpu.sh [BUILD_DIR] [--ranks N] [--steps N] [--reps N]
#                           [--config FILE]
#
# Each repetition runs `mpirun -np N recompose train` with train.batch = B/N
# and train.threads = cores/N (one core per rank on a 2-core machine), then
# one process with train.batch = B and train.threads = cores, alternating
# which goes first. Both train the same global batch of the same data, so
# their tuples/s compare directly; prints the medians and the ratio
# (ranks / single), and what the root rank says about its convolutions
# (fused or separate). Needs Open MPI's mpirun and an MPI build.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${RC_BUILD:-$root/build}
if [[ $# -gt 0 && $1 != --* ]]; then build=$1; shift; fi
ranks=2 steps=60 reps=3 config=$root/configs/tiny.ini
while [[ $# -gt 0 ]]; do
  case $1 in
    --ranks) ranks=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    *) echo "bench_dist_cpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin=${RC_BIN:-$build/recompose}
[[ -x $bin ]] || { echo "bench_dist_cpu.sh: $bin not found: build first" >&2; exit 2; }
command -v mpirun > /dev/null || { echo "bench_dist_cpu.sh: no mpirun" >&2; exit 2; }
grep -Eq '^RC_HAVE_MPI:INTERNAL=(ON|TRUE|1)$' "$build/CMakeCache.txt" 2> /dev/null \
  || { echo "bench_dist_cpu.sh: $build has no MPI (install libopenmpi-dev, reconfigure)" >&2; exit 2; }
cores=$(nproc)
batch=$("$bin" config "$config" | awk -F' = ' '/^batch = /{print $2; exit}')
(( batch % ranks == 0 )) || { echo "bench_dist_cpu.sh: train.batch $batch not divisible by $ranks ranks" >&2; exit 2; }
per_rank_threads=$(( cores / ranks > 0 ? cores / ranks : 1 ))
mpi=(mpirun -np "$ranks" --oversubscribe --bind-to none)
[[ $(id -u) = 0 ]] && mpi+=(--allow-run-as-root)
work=$(mktemp -d /tmp/bench_dist.XXXXXX)
trap 'rm -rf "$work"' EXIT
(( steps >= 2 )) || { echo "bench_dist_cpu.sh: --steps must be at least 2" >&2; exit 2; }
# the rate is measured between the first and the last log line: about six
# lines whatever the run's length
log_every=$(( steps / 6 > 0 ? steps / 6 : 1 ))
common=(--set train.steps="$steps" --set train.warmup=1 --set train.log_every="$log_every"
        --set train.checkpoint_every=1000000)

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores," \
     "load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ);" \
     "commit $(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
echo "config $(basename "$config"), global batch $batch, $steps steps;" \
     "$ranks ranks x $per_rank_threads thread(s) vs 1 process x $cores thread(s)"

tuples_per_s() { # metrics.jsonl: global tuples per second after the first log line
  /usr/bin/python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$1')]
if len(rows) < 2 or rows[-1]['elapsed_s'] <= rows[0]['elapsed_s']:
    sys.exit('bench_dist_cpu.sh: $1 has fewer than two timed log lines; use more --steps')
a, b = rows[0], rows[-1]
print(f\"{(b['step'] - a['step']) * $batch / (b['elapsed_s'] - a['elapsed_s']):.2f}\")"
}

dist=() single=()
for ((r = 0; r < reps; r++)); do
  for which in $( ((r % 2)) && echo "single dist" || echo "dist single"); do
    out=$work/$which-$r
    if [[ $which = dist ]]; then
      OMP_NUM_THREADS=$per_rank_threads "${mpi[@]}" -x OMP_NUM_THREADS "$bin" train "$config" \
        --out "$out" "${common[@]}" --set train.batch=$((batch / ranks)) \
        --set train.threads="$per_rank_threads" > "$out.log" 2>&1 \
        || { cat "$out.log"; echo "bench_dist_cpu.sh: the $ranks-rank run failed" >&2; exit 1; }
      dist+=("$(tuples_per_s "$out/metrics.jsonl")")
      path=$(grep -o 'convolution and ReLU [a-z]*' "$out.log" | head -1 || true)
    else
      "$bin" train "$config" --out "$out" "${common[@]}" --set train.threads="$cores" \
        > "$out.log" 2>&1 || { cat "$out.log"; echo "bench_dist_cpu.sh: the single run failed" >&2; exit 1; }
      single+=("$(tuples_per_s "$out/metrics.jsonl")")
    fi
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
md=$(median "${dist[@]}") ms=$(median "${single[@]}")
echo "tuples/s, $ranks ranks:   ${dist[*]} (median $md)"
echo "tuples/s, 1 process: ${single[*]} (median $ms)"
echo "ratio ranks / single: $(awk -v a="$md" -v b="$ms" 'BEGIN {printf "%.2f", a / b}')"
echo "root rank: ${path:-convolution path not reported (a build before the gradient hook)}"
