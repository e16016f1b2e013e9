#!/usr/bin/env bash
# test_robust_storage.sh: storage faults and damaged checkpoints, end to end.
#  - an output directory that cannot be created is refused at start (exit 4);
#  - a checkpoint write that runs out of room (a file size limit: the same
#    error path as a full disk) exits 4 with a clear message, leaves no
#    temporary or truncated file, and the earlier checkpoints still resume;
#  - a damaged checkpoint is named on resume (exit 1) and the previous good
#    one is offered; resuming from the offered one works;
#  - leftovers of a killed writer (*.tmp.PID) are removed at start.
set -u
BIN=${RC_BIN:?RC_BIN not set}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "$3: expected '$2' in: $1" ;; esac; }
tmp=$(mktemp -d /tmp/rc_storage_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.warmup=2 --set train.threads=2
       --set train.steps=8 --set train.log_every=2 --set train.checkpoint_every=2
       --set train.keep_last=0 --quiet)

# unwritable output: a regular file where a directory should be
touch "$tmp/file"
out=$($BIN train configs/tiny.ini --out "$tmp/file/run" "${small[@]}" 2>&1)
st=$?
[ "$st" -eq 4 ] || fail "unwritable --out: exit $st, expected 4"
expect_contains "$out" "cannot create directory $tmp/file/run" "unwritable --out"

# run to step 4, then continue under a file size limit below a checkpoint
$BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --stop-after 4 2>/dev/null \
  || fail "first run"
size=$(stat -c %s "$tmp/run/ckpt-00000004.safetensors")
limit=$((size / 1024 / 2))   # KiB blocks: half a checkpoint
out=$( (ulimit -f "$limit"; $BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" \
        --resume "$tmp/run") 2>&1)
st=$?
[ "$st" -eq 4 ] || fail "write past the size limit: exit $st, expected 4: $out"
expect_contains "$out" "ckpt-00000006.safetensors: write failed: File too large" "write error"
expect_contains "$out" "(nothing was replaced)" "write error"
[ -e "$tmp/run/ckpt-00000006.safetensors" ] && fail "a failed write left ckpt-6"
ls "$tmp/run"/*.tmp.* >/dev/null 2>&1 && fail "temporary file left: $(ls "$tmp/run")"
out=$($BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --resume "$tmp/run" 2>&1) \
  || fail "resume after the storage error: $out"
expect_contains "$out" "resumed from $tmp/run/ckpt-00000004.safetensors" "resume after storage error"

# a damaged newest checkpoint: named, the previous good one offered
ck8="$tmp/run/ckpt-00000008.safetensors"
printf '\x55' | dd of="$ck8" bs=1 seek=$(( $(stat -c %s "$ck8") - 100 )) conv=notrunc 2>/dev/null
out=$($BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --set train.steps=10 \
      --resume "$tmp/run" 2>&1)
st=$?
[ "$st" -eq 1 ] || fail "damaged checkpoint: exit $st, expected 1"
expect_contains "$out" "$ck8: checksum mismatch" "damage named"
expect_contains "$out" "the previous good checkpoint is $tmp/run/ckpt-00000006.safetensors" "previous offered"
out=$($BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --set train.steps=10 \
      --resume "$tmp/run/ckpt-00000006.safetensors" 2>&1) || fail "resume from the offered one: $out"
[ -s "$tmp/run/ckpt-00000010.safetensors" ] || fail "no step 10 after resuming from the offered one"

# temporary files of a dead writer are cleaned up; a live one's are kept
( exit 0 ) & dead=$!; wait $dead
touch "$tmp/run/ckpt-00000012.safetensors.tmp.$dead" "$tmp/run/ckpt-00000012.safetensors.tmp.$$"
out=$($BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --set train.steps=10 \
      --resume "$tmp/run" 2>&1) || fail "resume with leftovers: $out"
expect_contains "$out" "removed 1 unfinished checkpoint file" "stale temp removed"
[ -e "$tmp/run/ckpt-00000012.safetensors.tmp.$dead" ] && fail "dead writer's temp kept"
[ -e "$tmp/run/ckpt-00000012.safetensors.tmp.$$" ] || fail "live writer's temp removed"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
