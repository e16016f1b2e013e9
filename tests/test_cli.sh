#!/usr/bin/env bash
# test_cli.sh: the recompose command line, end to end.
#  - every command answers --help;
#  - config errors name FILE:LINE and the key; bad --set names the override;
#  - a short train writes checkpoints, metrics.jsonl and config.ini;
#  - eval prints the table and writes eval.json (valid JSON, three rows);
#  - a checkpoint of another shape is refused naming the tensor and shapes;
#  - a run into another run's directory is refused unless --force (which
#    moves the old files aside); --resume auto starts or continues;
#  - a torchrun-style launch of CPU ranks is refused, naming the variable.
set -u
BIN=${RC_BIN:?RC_BIN not set}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_contains() { # haystack needle what
  case "$1" in *"$2"*) ;; *) fail "$3: expected '$2' in: $1" ;; esac
}
tmp=$(mktemp -d /tmp/rc_cli_XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for cmd in "" train eval config; do
  out=$($BIN $cmd --help 2>&1) || fail "recompose $cmd --help exited non-zero"
  expect_contains "$out" "usage: recompose" "help of '$cmd'"
done
out=$($BIN frobnicate 2>&1); [ $? -eq 2 ] || fail "unknown command should exit 2"
expect_contains "$out" "unknown command 'frobnicate'" "unknown command"

# config errors: file:line and the key
out=$($BIN config tests/data/bad_configs/unknown_key.ini 2>&1) && fail "bad config accepted"
expect_contains "$out" "tests/data/bad_configs/unknown_key.ini:5:" "unknown key line"
expect_contains "$out" "lrr" "unknown key name"
out=$($BIN config configs/tiny.ini --set train.lr=fast 2>&1) && fail "bad --set accepted"
expect_contains "$out" "--set train.lr=fast" "bad --set"
out=$($BIN config missing.ini 2>&1) && fail "missing file accepted"
expect_contains "$out" "missing.ini" "missing file"
out=$($BIN train configs/tiny.ini 2>&1); [ $? -eq 2 ] || fail "train without --out should exit 2"
expect_contains "$out" "missing --out" "train without --out"

# torchrun's environment starts GPU ranks; CPU ranks are MPI's: said, not
# ignored (each would otherwise train alone as rank 0)
out=$(WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=1 $BIN train configs/tiny.ini \
      --out "$tmp/torchrun" --set train.device=cpu 2>&1) && fail "torchrun-style CPU ranks accepted"
expect_contains "$out" "WORLD_SIZE = 2 (a torchrun-style launch)" "torchrun env on the CPU"

# the effective config round-trips through the CLI
$BIN config configs/tiny.ini --set train.steps=700 > "$tmp/eff.ini" || fail "config print"
out=$($BIN config "$tmp/eff.ini" 2>&1) || fail "printed config does not load: $out"
expect_contains "$out" "steps = 700" "override in printed config"

# a short training run on a small model, then eval
small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.steps=6 --set train.warmup=2
       --set train.log_every=2 --set train.checkpoint_every=3
       --set eval.clips=32 --set eval.probe_train_clips=64)
$BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" > "$tmp/train.log" 2>&1 \
  || { cat "$tmp/train.log"; fail "train"; }
# what a practitioner wants to know at start: threads, ranks, parameters,
# output folder, data
for want in "grad_norm " "compute thread(s)" "1 rank(s)" "parameters (the action head's included); output $tmp/run" "data: synthetic clips of 5 frames, 32x32"; do
  expect_contains "$(cat "$tmp/train.log")" "$want" "start summary"
done
for f in ckpt-00000003.safetensors ckpt-00000006.safetensors metrics.jsonl config.ini; do
  [ -s "$tmp/run/$f" ] || fail "missing $f"
done
[ "$(wc -l < "$tmp/run/metrics.jsonl")" -eq 3 ] || fail "metrics.jsonl should have 3 lines"
out=$($BIN eval configs/tiny.ini --checkpoint "$tmp/run/ckpt-00000006.safetensors" \
      --out "$tmp/ev" "${small[@]}" 2>&1) || fail "eval: $out"
expect_contains "$out" "random_init" "eval table"
expect_contains "$out" "pixel_diff" "eval table"
if [ -n "${RC_PYTHON:-}" ] && [ -x "$RC_PYTHON" ]; then
  "$RC_PYTHON" - "$tmp/run/metrics.jsonl" "$tmp/ev/eval.json" <<'PY' || fail "JSON outputs"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["step"] for r in rows] == [2, 4, 6], rows
assert all(r["loss"] > 0 and r["distinct_pairs_per_tuple"] > 3 for r in rows)
ev = json.load(open(sys.argv[2]))
names = [r["name"] for r in ev["rows"]]
assert names == ["trained", "random_init", "pixel_diff"], names
PY
fi

# a checkpoint of another shape is refused with the tensor and both shapes
out=$($BIN eval configs/tiny.ini --checkpoint "$tmp/run/ckpt-00000006.safetensors" \
      --out "$tmp/ev2" "${small[@]}" --set model.conv_channels=8,16,24 2>&1) \
  && fail "wrong-shape checkpoint accepted"
expect_contains "$out" "tensor encoder.conv2.weight has shape [16,16,3,3] in the checkpoint but the model expects [24,16,3,3]" "shape error"

# resume continues the step count, appending to metrics.jsonl
cp "$tmp/run/metrics.jsonl" "$tmp/metrics.before"
$BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --set train.steps=9 \
  --resume "$tmp/run" > "$tmp/resume.log" 2>&1 || { cat "$tmp/resume.log"; fail "resume"; }
expect_contains "$(cat "$tmp/resume.log")" "resumed from" "resume log"
[ -s "$tmp/run/ckpt-00000009.safetensors" ] || fail "resume did not reach step 9"

n_resumed=$(wc -l < "$tmp/run/metrics.jsonl")
[ "$n_resumed" -gt 3 ] && [ "$(head -n 3 "$tmp/run/metrics.jsonl")" = "$(cat "$tmp/metrics.before")" ] \
  || fail "a resumed run must append to metrics.jsonl"

# one run per directory: a fresh run into a run's directory is refused
# (naming the choices) and changes nothing; --force moves the old run into
# previous-1/ and deletes nothing; --resume auto starts fresh in an empty
# directory and continues where a checkpoint is
before=$(ls -l "$tmp/run" | md5sum)
out=$($BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" 2>&1) \
  && fail "a run into another run's directory was accepted"
for want in "holds another run" "--resume $tmp/run" "another --out" "--force"; do
  expect_contains "$out" "$want" "refusal"
done
[ "$(ls -l "$tmp/run" | md5sum)" = "$before" ] || fail "the refused run changed the directory"
$BIN train configs/tiny.ini --out "$tmp/run" "${small[@]}" --force \
  > "$tmp/force.log" 2>&1 || { cat "$tmp/force.log"; fail "--force"; }
for f in ckpt-00000009.safetensors ckpt-00000006.safetensors metrics.jsonl config.ini; do
  [ -s "$tmp/run/previous-1/$f" ] || fail "--force lost the earlier run's $f"
done
[ "$(wc -l < "$tmp/run/previous-1/metrics.jsonl")" -eq "$n_resumed" ] || fail "--force changed the old metrics"
[ "$(wc -l < "$tmp/run/metrics.jsonl")" -eq 3 ] || fail "the new run's metrics.jsonl"
[ ! -e "$tmp/run/ckpt-00000009.safetensors" ] || fail "the old run's checkpoint is still beside the new one"
$BIN train configs/tiny.ini --out "$tmp/auto" "${small[@]}" --resume auto \
  > "$tmp/auto.log" 2>&1 || { cat "$tmp/auto.log"; fail "--resume auto in a new directory"; }
expect_contains "$(cat "$tmp/auto.log")" "starting a fresh run" "--resume auto, fresh"
$BIN train configs/tiny.ini --out "$tmp/auto" "${small[@]}" --set train.steps=9 \
  --resume auto > "$tmp/auto2.log" 2>&1 || { cat "$tmp/auto2.log"; fail "--resume auto"; }
expect_contains "$(cat "$tmp/auto2.log")" "resumed from $tmp/auto/ckpt-00000006.safetensors" "--resume auto, continue"
# a finished run resumed again trains nothing, says so, and still evaluates
$BIN train configs/tiny.ini --out "$tmp/auto" "${small[@]}" --set train.steps=9 \
  --resume auto --eval > "$tmp/auto3.log" 2>&1 || { cat "$tmp/auto3.log"; fail "--resume auto of a finished run"; }
expect_contains "$(cat "$tmp/auto3.log")" "nothing to train: $tmp/auto/ckpt-00000009.safetensors is at step 9" "finished run"
[ -s "$tmp/auto/eval.json" ] || fail "a finished run's --eval wrote no eval.json"

# commands create their output folders, nested ones too; eval of a footage
# config says what it measures and where footage is measured; a warmup
# longer than the run names both keys
out=$($BIN eval configs/tiny.ini --checkpoint "$tmp/run/ckpt-00000006.safetensors" \
      --out "$tmp/new/deeper/ev" "${small[@]}" 2>&1) || fail "eval into a new nested folder: $out"
[ -s "$tmp/new/deeper/ev/eval.json" ] || fail "eval did not create its nested --out"
out=$($BIN eval configs/dlib.ini --checkpoint "$tmp/run/ckpt-00000006.safetensors" \
      --out "$tmp/ev-footage" 2>&1) && fail "eval of a footage config ran"
expect_contains "$out" "tools/oracle_eval.sh" "eval of footage names the footage evaluation"
out=$($BIN config configs/tiny.ini --set train.steps=50 2>&1) && fail "warmup > steps accepted"
expect_contains "$out" "--set train.steps=50 --set train.warmup=3" "warmup hint"

# threads come from the CPUs the process may use (taskset, Slurm's
# --cpus-per-task, cgroups) unless OMP_NUM_THREADS says otherwise; the log
# says which, with the OpenBLAS kernel family, which the checkpoint records
one=(--set train.steps=1 --set train.warmup=1)
out=$(env -u OMP_NUM_THREADS taskset -c 0 $BIN train configs/tiny.ini \
      --out "$tmp/cpu1" "${small[@]}" "${one[@]}" 2>&1) || fail "taskset run: $out"
expect_contains "$out" "1 compute thread(s) (from the CPUs this process may use; 1 CPU(s) available), OpenBLAS kernels $("$(dirname "$0")/../tools/openblas-kernels.sh" "$BIN")" "threads under taskset"
out=$(OMP_NUM_THREADS=1 $BIN train configs/tiny.ini --out "$tmp/omp1" \
      "${small[@]}" "${one[@]}" 2>&1) || fail "OMP_NUM_THREADS run: $out"
expect_contains "$out" "1 compute thread(s) (from OMP_NUM_THREADS" "threads from OMP_NUM_THREADS"
grep -a -q '\\"blas_kernels\\":' "$tmp/omp1/ckpt-00000001.safetensors" \
  || grep -a -q '"blas_kernels"' "$tmp/omp1/ckpt-00000001.safetensors" \
  || fail "the checkpoint does not record the BLAS kernel family"

if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
