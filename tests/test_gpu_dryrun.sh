#!/usr/bin/env bash
# test_gpu_dryrun.sh: tools/gpu-check.sh in its no-GPU mode, in the layout
# of a bare GPU machine, from a fresh build folder:
#  - env -i: nothing from this shell's environment; where ninja is
#    installed, no make on PATH (the check must configure with Ninja);
#  - a CUDA toolkit without cuDNN or NCCL (links to this machine's toolkit,
#    its cudnn* and nccl* files left out; nvcc copied, so that it finds its
#    root there), and no system NCCL;
#  - cuDNN and NCCL only as PyTorch's pip wheels have them (site-packages/
#    nvidia/{cudnn,nccl}: headers and the versioned libcudnn*.so.9,
#    libnccl.so.2, no unversioned link), found by the check through the
#    Python that imports them;
#  - the build's C libraries from the .debs/ sysroot (--debs; .debs/ of the
#    checkout, else fetched into a temporary folder).
# The check must pass, CUDA, cuDNN and NCCL must all be found in the
# wheels (the configure's lines and the plugin's RUNPATH), the build must
# have video input from the sysroot (footage reaches the device), and the
# time plan (gpu-check.sh --plan) must fit and agree with docs/gpu.md.
# Skips (77) without nvcc, cuDNN and NCCL to lay out, or without .debs/
# and a network to fetch them.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cuda=$(readlink -f "${CUDA_PATH:-/usr/local/cuda}")
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

[ -x "$cuda/bin/nvcc" ] || { echo "SKIPPED: no CUDA toolkit at $cuda"; exit 77; }
lib=$cuda/lib
[ -d "$lib" ] || lib=$cuda/lib64
ls "$lib"/libcudnn.so.9 "$lib"/libnccl.so.2 "$cuda"/include/cudnn.h "$cuda"/include/nccl.h \
  >/dev/null 2>&1 || { echo "SKIPPED: no cuDNN 9 and NCCL 2 in $cuda to lay out as wheels"; exit 77; }

tmp=$(mktemp -d /tmp/rc_dryrun_XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- the time plan ----------------------------------------------------------------
plan=$("$root/tools/gpu-check.sh" --plan) || fail "the time plan does not fit: $plan"
echo "$plan"
first=$(sed -n 's/.*first try \([0-9]*\) s.*/\1/p' <<<"$plan")
retry=$(sed -n 's/.*retry (--quick) \([0-9]*\) s.*/\1/p' <<<"$plan")
grep -q "budget of $first s" "$root/docs/gpu.md" || fail "docs/gpu.md does not give the first try's $first s"
grep -q "fits $retry s" "$root/docs/gpu.md" || fail "docs/gpu.md does not give the retry's $retry s"

# ---- the machine's layout -----------------------------------------------------------
# farm SRC DST: DST holds links to SRC's entries, cuDNN's and NCCL's left out
farm() {
  mkdir -p "$2"
  for f in "$1"/*; do
    case $(basename "$f") in *cudnn*|*nccl*) ;; *) ln -s "$f" "$2/" ;; esac
  done
}
tk=$tmp/cuda
mkdir -p "$tk"
for e in "$cuda"/*; do
  n=$(basename "$e")
  if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$tk/$n"; continue; fi
  case $n in
    bin) farm "$e" "$tk/bin"; rm "$tk/bin/nvcc"; cp "$e/nvcc" "$tk/bin/" ;;
    include|lib|lib64) farm "$e" "$tk/$n" ;;
    targets) for t in "$e"/*; do
               for d in include lib; do [ -d "$t/$d" ] && farm "$t/$d" "$tk/targets/$(basename "$t")/$d"; done
             done ;;
    *) ln -s "$e" "$tk/$n" ;;
  esac
done
site=$tmp/site
wheel=$site/nvidia
mkdir -p "$wheel"/cudnn/include "$wheel"/cudnn/lib "$wheel"/nccl/include "$wheel"/nccl/lib
for f in "$cuda"/include/cudnn*.h; do ln -s "$f" "$wheel/cudnn/include/"; done
for f in "$lib"/libcudnn*.so.9; do ln -s "$(readlink -f "$f")" "$wheel/cudnn/lib/$(basename "$f")"; done
for f in "$cuda"/include/nccl*.h; do ln -s "$f" "$wheel/nccl/include/"; done
ln -s "$(readlink -f "$lib/libnccl.so.2")" "$wheel/nccl/lib/libnccl.so.2"

debs=$root/.debs
if ! ls "$debs"/*.deb >/dev/null 2>&1; then
  debs=$tmp/debs
  RC_DEBS_DIR=$debs bash "$root/tools/device-deps.sh" fetch > "$tmp/fetch.log" 2>&1 ||
    { cat "$tmp/fetch.log"; echo "SKIPPED: no .debs/ and none could be fetched"; exit 77; }
fi

# where ninja is installed, a PATH without make (pip images have ninja and
# may lack make): the check must configure with Ninja
path="$tk/bin:/usr/bin:/bin" no_make=0
if command -v ninja >/dev/null 2>&1; then
  mkdir -p "$tmp/usrbin"
  for f in /usr/bin/*; do [ "$(basename "$f")" = make ] || ln -s "$f" "$tmp/usrbin/"; done
  path="$tk/bin:$tmp/usrbin" no_make=1
fi

# ---- the check, as on that machine ----------------------------------------------------
mkdir -p "$tmp/out"
env -i PATH="$path" HOME="$tmp" CUDA_PATH="$tk" PYTHONPATH="$site" \
    RC_DEBS_DIR="$debs" RC_SYSROOT="$tmp/sysroot" OUT="$tmp/out" \
    "$root/tools/gpu-check.sh" --no-gpu --debs "$tmp/build" > "$tmp/run.log" 2>&1
rc=$?
log=$tmp/out/gpu-check.log
[ "$rc" = 0 ] || fail "the check failed (exit $rc)"
[ "$(tail -n 1 "$log")" = "gpu-check: PASSED" ] || fail "no PASSED verdict: $(tail -n 1 "$log")"
grep -q "^device-deps: libraries from $tmp/sysroot" "$log" || fail "the .debs sysroot was not used"
grep -q "CUDA backend: on (.*cuDNN $wheel/cudnn/lib/libcudnn" "$log" || fail "cuDNN not taken from the wheel"
grep -q "Distributed training: NCCL $wheel/nccl/lib/libnccl.so.2" "$log" || fail "NCCL not taken from the wheel"
grep -q "^libnccl.so: *$wheel/nccl/lib/libnccl.so.2 *$" "$log" || fail "the machine report sees another NCCL"
features=$(sed -n 's/^build features: //p' "$log")
grep -q "oneDNN convolutions for the CPU backend ($tmp/sysroot/" "$log" || fail "oneDNN not taken from the .debs sysroot"
for f in +video +cuda +nccl; do
  [[ " $features " == *" $f "* ]] || fail "the build lacks $f ($features)"
done
grep -Eq '^footage \(shards, bytes to the device\) +in test_cuda_train' "$log" || fail "footage does not reach the device"
runpath=$(readelf -d "$tmp/build/librecompose_cuda.so" 2>/dev/null | awk '/RUNPATH|RPATH/ {print $NF}')
[[ $runpath == *"$wheel/cudnn/lib"* && $runpath == *"$wheel/nccl/lib"* ]] ||
  fail "the plugin's RUNPATH does not name the wheels: $runpath"
if [ "$no_make" = 1 ]; then
  grep -q "no make here: configuring with Ninja" "$log" || fail "without make the check did not use Ninja"
fi
for t in test_backend_ops test_emu_kernels test_train_emu "CPU scaling \(bench_cpu, tiny\)"; do
  grep -Eq "^$t +pass" "$log" || fail "$t did not pass"
done
# the CPU figures, with oneDNN's kernels (the sysroot's libdnnl at run time)
grep -Eq '^cpu_tiny_threads_2 +[0-9.]+ tuples/s \(cpu-onednn, oneDNN ISA [a-z0-9_]+\)' "$log" ||
  fail "no CPU figure with oneDNN's convolutions at 2 threads"
if grep -q '^python: .* torch ' "$log"; then
  grep -Eq "^CPU vs PyTorch, tiny, 2 threads +pass" "$log" || fail "the CPU comparison with PyTorch did not pass"
  grep -Eq '^cpu_tiny_vs_torch_threads_2 +recompose [0-9.]+, PyTorch [a-z_]+ [0-9.]+ tuples/s: [0-9.]+x' "$log" ||
    fail "no CPU ratio to PyTorch at 2 threads"
fi

if [ "$fails" -ne 0 ]; then
  echo "---- the check's output"; cat "$tmp/run.log"
  exit 1
fi
echo "dry run: the check passes in a bare GPU machine's layout (cuDNN and NCCL from wheels, libraries from .debs)"
