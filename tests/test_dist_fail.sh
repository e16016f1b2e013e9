#!/usr/bin/env bash
# test_dist_fail.sh: a rank that fails ends the whole job, with a message,
# instead of leaving the other ranks waiting in the next all-reduce.
#  - rank 1 hits an error at step 2 (RC_FAULT_RANK/RC_FAULT_STEP): mpirun
#    exits non-zero well within the time limit, and the output names the
#    rank, the world size and the error;
#  - rank 1 dies by SIGKILL at step 2 (RC_FAULT_KIND=kill): the same, with
#    the launcher's report of the dead process.
# Skips (77) when the build or the machine has no MPI.
set -u
BIN=${RC_BIN:?RC_BIN not set}
BUILD=${RC_BUILD:?RC_BUILD not set}
grep -Eq '^RC_HAVE_MPI:INTERNAL=(ON|TRUE|1)$' "$BUILD/CMakeCache.txt" \
  || { echo "skip: this build has no MPI"; exit 77; }
command -v mpirun > /dev/null || { echo "skip: no mpirun"; exit 77; }
mpirun --version 2>&1 | grep -q "Open MPI" || { echo "skip: not Open MPI"; exit 77; }
mpi=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "$3: expected '$2' in: $1" ;; esac; }
tmp=$(mktemp -d /tmp/rc_distfail_XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Many steps: a job that did not stop at the fault would run far past the
# time limit, so "exited in time" really means "stopped at the fault".
small=(--set data.image_size=32 --set "model.conv_channels=8,16,16"
       --set "model.conv_kernels=5,3,3" --set "model.conv_strides=2,2,2"
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=2 --set train.steps=100000 --set train.warmup=2
       --set train.log_every=1 --set train.checkpoint_every=100000
       --set train.threads=1 --quiet)
LIMIT=60

for kind in error kill; do
  start=$(date +%s)
  out=$(RC_FAULT_RANK=1 RC_FAULT_STEP=2 RC_FAULT_KIND=$kind timeout $LIMIT \
        "${mpi[@]}" -x RC_FAULT_RANK -x RC_FAULT_STEP -x RC_FAULT_KIND -np 2 \
        "$BIN" train configs/tiny.ini --out "$tmp/$kind" "${small[@]}" 2>&1)
  rc=$?
  secs=$(( $(date +%s) - start ))
  echo "fault '$kind': exit $rc after ${secs} s"
  [ $rc -ne 124 ] || fail "$kind: the job hung (killed after ${LIMIT} s)"
  [ $rc -ne 0 ] || fail "$kind: the job exited 0 although rank 1 failed"
  expect_contains "$out" "step 2" "$kind: the failing step"
  if [ "$kind" = error ]; then
    expect_contains "$out" "rank 1 of 2 failed" "$kind: which rank failed"
    expect_contains "$out" "fault injected at step 2" "$kind: the rank's error"
    expect_contains "$out" "aborting all 2 ranks" "$kind: what happens next"
  fi
  # the run stopped at the fault: rank 0 logged step 1 at most, maybe 2
  n=$(wc -l < "$tmp/$kind/metrics.jsonl" 2> /dev/null || echo 0)
  [ "$n" -le 3 ] || fail "$kind: rank 0 logged $n steps after rank 1 failed at step 2"
  [ $fails -eq 0 ] || echo "$out"
done

[ $fails -eq 0 ] || exit 1
echo "test_dist_fail: OK"
