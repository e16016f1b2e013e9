#!/usr/bin/env bash
# test_robust_signals.sh: stop signals end a run cleanly.
#  - SIGTERM, SIGINT and SIGUSR1 each: the trainer finishes the step, writes
#    a checkpoint at that step, says how to resume and exits 75;
#  - resuming from it ends bitwise equal to an uninterrupted run;
#  - a second signal while stopping exits at once with 128 + signal, and the
#    last complete checkpoint still loads.
set -u
BIN=${RC_BIN:?RC_BIN not set}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "$3: expected '$2' in: $1" ;; esac; }
tmp=$(mktemp -d /tmp/rc_sig_XXXXXX)
trap 'rm -rf "$tmp"' EXIT

small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.warmup=2 --set train.threads=2
       --set train.log_every=1 --set train.checkpoint_every=1000 --quiet)
data_of() { # tensor bytes of a safetensors file (after length and header)
  local n
  n=$(od -An -t u8 -N8 "$1" | tr -d ' ')
  tail -c +$((9 + n)) "$1"
}
# Start a run in the background and wait until it has logged a step.
start_run() { # dir steps
  $BIN train configs/tiny.ini --out "$1" "${small[@]}" --set train.steps="$2" \
    2>"$1.log" &
  pid=$!
  for _ in $(seq 1 300); do
    [ -s "$1/metrics.jsonl" ] && return 0
    sleep 0.02
  done
  fail "$1: no step logged"
}

STEPS=400
for sig in TERM INT USR1; do
  dir="$tmp/$sig"
  start_run "$dir" $STEPS
  kill -s "$sig" "$pid"
  wait "$pid"; st=$?
  [ "$st" -eq 75 ] || fail "SIG$sig: exit $st, expected 75"
  log=$(cat "$dir.log")
  expect_contains "$log" "SIG$sig: stopped after step" "SIG$sig message"
  expect_contains "$log" "--resume $dir" "SIG$sig resume hint"
  ck=$(ls "$dir"/ckpt-*.safetensors 2>/dev/null | tail -1)
  [ -n "$ck" ] || { fail "SIG$sig: no checkpoint"; continue; }
  step=$(basename "$ck" .safetensors); step=$((10#${step#ckpt-}))
  [ "$step" -ge 1 ] && [ "$step" -lt $STEPS ] || fail "SIG$sig: checkpoint step $step"
  # the checkpoint is at the last logged step: the step was finished
  last=$(tail -1 "$dir/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/')
  [ "$last" = "$step" ] || fail "SIG$sig: checkpoint at $step, last logged step $last"
done

# Resume the SIGTERM run for 3 more steps (same train.steps, so the same
# schedule): an uninterrupted run stopped there has the same tensors.
dir="$tmp/TERM"
ck=$(ls "$dir"/ckpt-*.safetensors | tail -1)
step=$(basename "$ck" .safetensors); step=$((10#${step#ckpt-}))
target=$((step + 3))
$BIN train configs/tiny.ini --out "$dir" "${small[@]}" --set train.steps=$STEPS \
  --resume "$dir" --stop-after $target 2>"$tmp/resume.log" \
  || { cat "$tmp/resume.log"; fail "resume after SIGTERM"; }
$BIN train configs/tiny.ini --out "$tmp/straight" "${small[@]}" \
  --set train.steps=$STEPS --stop-after $target 2>"$tmp/straight.log" \
  || fail "uninterrupted run"
f=$(printf 'ckpt-%08d.safetensors' $target)
cmp -s <(data_of "$dir/$f") <(data_of "$tmp/straight/$f") \
  || fail "resumed run differs from the uninterrupted one at step $target"

# A second signal exits at once. Big steps (the full tiny model, 128 tuples:
# most of a second each even on a fast machine), so that both signals
# arrive within one step (no training.png: drawn after each checkpoint, it
# would leave the first signal time to stop the run before the second).
dir="$tmp/twice"
big=(--set train.batch=128 --set train.warmup=2 --set train.threads=2
     --set train.log_every=1 --set train.plot=false --quiet)
$BIN train configs/tiny.ini --out "$dir" "${big[@]}" --set train.steps=$STEPS \
  --set train.checkpoint_every=1 2>"$dir.log" &
pid=$!
for _ in $(seq 1 500); do
  ls "$dir"/ckpt-*.safetensors >/dev/null 2>&1 && break
  sleep 0.02
done
kill -TERM "$pid"; sleep 0.1; kill -TERM "$pid"  # one pending signal would absorb the other
wait "$pid"; st=$?
[ "$st" -eq 143 ] || fail "second SIGTERM: exit $st, expected 143"
expect_contains "$(cat "$dir.log")" "second signal" "second-signal message"
$BIN train configs/tiny.ini --out "$dir" "${big[@]}" --set train.steps=$STEPS \
  --resume "$dir" --stop-after 1 2>"$tmp/r2.log"
st=$?
# --stop-after 1 is already reached: the resume only has to load
[ "$st" -eq 0 ] || { cat "$tmp/r2.log"; fail "resume after a double signal: exit $st"; }
expect_contains "$(cat "$tmp/r2.log")" "resumed from" "resume after a double signal"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
