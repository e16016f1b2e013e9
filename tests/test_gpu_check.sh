#!/usr/bin/env bash
# test_gpu_check.sh: tools/gpu-check.sh's own logic, without a GPU. The
# script gets minutes on a bare GPU machine and must report every failure
# the first time, so its reporting is tested here:
#  - a benchmark that crashes (RC_GPU_CHECK_INJECT=crash: a SIGSEGV) is a
#    CRASH line in the summary and the exit status is 1, while the tests
#    that ran still show their own outcome (emulated ones pass, GPU ones
#    are skipped, never passed);
#  - with $OUT set the log is written there and is complete when the
#    script returns (its last line is the verdict);
#  - every step's output is kept in $OUT/gpu-check-logs/;
#  - a step that would start past the time budget is "not run (time
#    budget)" and fails the check.
# (test_gpu_dryrun.sh runs the whole --no-gpu mode, build included, in a
# bare GPU machine's layout.)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=${RC_BUILD:?RC_BUILD not set}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; status=1; }
status=0

mkdir -p "$tmp/out1"
OUT="$tmp/out1" RC_GPU_CHECK_INJECT=crash "$root/tools/gpu-check.sh" --no-gpu --no-build --quick "$build" \
  > "$tmp/run1.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "injected crash: exit status $rc, expected 1"
log="$tmp/out1/gpu-check.log"
[ -s "$log" ] || fail "no log in \$OUT"
grep -Eq '^bench_cuda +CRASH \(signal 11\)' "$log" || fail "the crash is not a CRASH line"
grep -Eq '^test_backend_ops +pass' "$log" || fail "test_backend_ops did not pass"
grep -Eq '^test_emu_kernels +pass' "$log" || fail "test_emu_kernels did not pass"
grep -Eq '^test_cuda_ops +skipped' "$log" || fail "test_cuda_ops not reported as skipped"
grep -Eq '^trainer tiny preset \(emu\) +pass' "$log" || fail "the emulated trainer run did not pass"
grep -Eq '^trainer_tiny.ini +[0-9.]+ tuples/s' "$log" || fail "no trainer figure"
[ "$(tail -n 1 "$log")" = "gpu-check: FAILED" ] || fail "log incomplete: last line '$(tail -n 1 "$log")'"
# every step's own output beside the log
[ -s "$tmp/out1/gpu-check-logs/test_backend_ops.log" ] || fail "no step log for test_backend_ops"
grep -q "device injected" "$tmp/out1/gpu-check-logs/bench_cuda.log" 2>/dev/null ||
  fail "the crashed step's output is not in its log"
grep -Eq '^compute-sanitizer \(informational\) +skipped' "$log" ||
  fail "the sanitizer line is missing or not informational"
grep -q '^kernel:' "$log" && grep -q '^nvcc:' "$log" && grep -q '^libcublas.so:' "$log" ||
  fail "the machine report is missing"

# a budget too small for anything after the first steps
RC_GPU_CHECK_BUDGET=21 "$root/tools/gpu-check.sh" --no-gpu --no-build --quick "$build" > "$tmp/run2.txt" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "budget: exit status $rc, expected 1"
grep -Eq 'not run \(time budget\)' "$tmp/run2.txt" || fail "budget: no step reported as not run"
[ "$(tail -n 1 "$tmp/run2.txt")" = "gpu-check: FAILED" ] || fail "budget: no verdict"

if [ $status -ne 0 ]; then
  echo "---- first run's output"; cat "$tmp/run1.txt"
  exit 1
fi
echo "ok"
