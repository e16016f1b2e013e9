#!/usr/bin/env bash
# The OpenBLAS kernel family a run gets on this CPU, or another one the CPU
# also runs.
#
#   tools/openblas-kernels.sh [BIN]           the family BIN's OpenBLAS picks
#   tools/openblas-kernels.sh --other [BIN]   a different family this CPU
#                                             supports (for OPENBLAS_CORETYPE)
#
# BIN is the recompose binary (default build/recompose); OPENBLAS_CORETYPE
# in the environment is honoured, as in any run. Float32 results differ in
# their last bits between families, so the test suite runs its numerical
# tests once as the machine gives them and once under --other: a tolerance
# that only holds for one family's rounding fails here, not on the next CPU.
set -euo pipefail
other=0
if [ "${1:-}" = "--other" ]; then other=1; shift; fi
bin=${1:-build/recompose}
current=$("$bin" version | sed -n 's/^BLAS: .*; kernels \(.*\)$/\1/p')
if [ -z "$current" ]; then
  echo "openblas-kernels.sh: '$bin version' names no kernel family" >&2
  exit 1
fi
if [ "$other" = 0 ]; then echo "$current"; exit 0; fi

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
# Families x86-64 OpenBLAS builds with DYNAMIC_ARCH carry, most capable
# first, each with the instructions its kernels use.
candidates=()
has avx512f avx512bw avx512vl avx512dq && candidates+=(SkylakeX)
has avx2 fma && candidates+=(Haswell)
has avx && candidates+=(Sandybridge)
candidates+=(Nehalem)
# Families that share their float32 GEMM kernels count as one: Cooperlake
# and Sapphire Rapids run SkylakeX's, Zen runs Haswell's.
group() {
  case "${1,,}" in
    skylakex|cooperlake|sapphirerapids) echo avx512 ;;
    haswell|zen) echo avx2 ;;
    *) echo "${1,,}" ;;
  esac
}
for c in "${candidates[@]}"; do
  if [ "$(group "$c")" != "$(group "$current")" ]; then echo "$c"; exit 0; fi
done
echo "openblas-kernels.sh: no family other than $current runs here" >&2
exit 1
