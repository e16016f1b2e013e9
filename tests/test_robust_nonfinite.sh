#!/usr/bin/env bash
# test_robust_nonfinite.sh: non-finite losses and gradients.
#  - a few NaN gradients (injected with RC_INJECT_NONFINITE) are skipped and
#    counted, and the run finishes (exit 0) with finite weights;
#  - train.max_bad_steps in a row stop the run with exit 3 and a diagnostic
#    naming the steps, the tensor, the clips and the gradient clipping, and
#    leave the checkpoint from before the streak: bitwise the weights of an
#    uninterrupted run stopped at that step.
set -u
BIN=${RC_BIN:?RC_BIN not set}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "$3: expected '$2' in: $1" ;; esac; }
tmp=$(mktemp -d /tmp/rc_nan_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.warmup=2 --set train.threads=2
       --set train.steps=12 --set train.log_every=1 --set train.checkpoint_every=4
       --set train.max_bad_steps=3 --quiet)
data_of() { # tensor bytes of a safetensors file (after length and header)
  local n
  n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  tail -c +$((9 + n)) "$1"
}

# two bad steps (< max_bad_steps): skipped, counted, the run goes on
RC_INJECT_NONFINITE=3,4 $BIN train configs/tiny.ini --out "$tmp/few" "${small[@]}" \
  2>"$tmp/few.log"
st=$?
[ "$st" -eq 0 ] || { cat "$tmp/few.log"; fail "two bad steps: exit $st, expected 0"; }
log=$(cat "$tmp/few.log")
expect_contains "$log" "step 3: non-finite gradient, step skipped (1 in a row, 1 in all)" "skip log"
expect_contains "$log" "step 4: non-finite gradient, step skipped (2 in a row, 2 in all)" "skip log"
expect_contains "$log" "2 steps skipped for non-finite loss" "summary"
grep -q '"step":12,.*"skipped_steps":2' "$tmp/few/metrics.jsonl" \
  || fail "metrics.jsonl does not count 2 skipped steps"
$BIN train configs/tiny.ini --out "$tmp/clean" "${small[@]}" 2>/dev/null || fail "clean run"
f=ckpt-00000012.safetensors
cmp -s <(data_of "$tmp/few/$f") <(data_of "$tmp/clean/$f") \
  && fail "skipping two steps changed nothing: were they skipped?"
if [ -x "${RC_PYTHON:-}" ]; then
  "$RC_PYTHON" - "$tmp/few/$f" <<'PY' || fail "non-finite values in the weights"
import json, struct, sys
import numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
data = np.frombuffer(b[8 + n:], dtype='<f4')
assert data.size > 1000 and np.isfinite(data).all()
PY
fi

# a streak of max_bad_steps: stop, diagnose, checkpoint from before
RC_INJECT_NONFINITE=5-100 $BIN train configs/tiny.ini --out "$tmp/streak" "${small[@]}" \
  2>"$tmp/streak.log"
st=$?
[ "$st" -eq 3 ] || { cat "$tmp/streak.log"; fail "streak: exit $st, expected 3"; }
log=$(cat "$tmp/streak.log")
expect_contains "$log" "steps 5..7: 3 steps in a row with a non-finite gradient (train.max_bad_steps = 3)" "streak"
expect_contains "$log" "non-finite gradients: tensor " "tensor named"
expect_contains "$log" "(1 of " "count of bad values"
expect_contains "$log" "clips 0..3 of step 7 (their input values are all finite)" "clips"
expect_contains "$log" "gradient clipped (train.clip_norm = 1) on" "clipping history"
expect_contains "$log" "ckpt-00000005.safetensors (step 5)" "checkpoint from before"
[ -e "$tmp/streak/ckpt-00000008.safetensors" ] && fail "trained past the streak"
$BIN train configs/tiny.ini --out "$tmp/stop5" "${small[@]}" --stop-after 5 2>/dev/null \
  || fail "stop-after 5"
f=ckpt-00000005.safetensors
cmp -s <(data_of "$tmp/streak/$f") <(data_of "$tmp/stop5/$f") \
  || fail "the checkpoint from before the streak is not the step-5 state"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
