#!/usr/bin/env bash
# test_torch_load.sh: a recompose checkpoint loads into the PyTorch reference
# model (tests/ref/model_ref.py) with load_state_dict(strict=True), and the
# loaded model reproduces recompose's embeddings of the same inputs is
# covered by test_parity; here: names, shapes and dtypes are what PyTorch
# expects, and a mismatched model is refused.
set -u
BIN=${RC_BIN:?}
PY=${RC_PYTHON:-/usr/bin/python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "SKIPPED: no PyTorch for $PY"; exit 77
fi
tmp=$(mktemp -d /tmp/rc_tload_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$BIN" train configs/tiny.ini --out "$tmp/run" --quiet \
  --set train.steps=2 --set train.warmup=1 --set train.batch=2 \
  --set data.image_size=32 > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
ck="$tmp/run/ckpt-00000002.safetensors"
out=$("$PY" tests/ref/load_checkpoint.py "$ck" 2>&1) || { echo "FAIL: $out"; exit 1; }
echo "$out"
# the same checkpoint against a model of another hidden size must be refused
"$BIN" config configs/tiny.ini --set data.image_size=32 --set model.hidden=96 > "$tmp/other.ini"
if "$PY" tests/ref/load_checkpoint.py "$ck" --config "$tmp/other.ini" > "$tmp/o" 2>&1; then
  echo "FAIL: a checkpoint of another shape loaded"; cat "$tmp/o"; exit 1
fi
grep -q "composer.weight_hh" "$tmp/o" || { echo "FAIL: mismatch not named"; cat "$tmp/o"; exit 1; }
# a run with the action term: its head loads too (a field of 3 x 3 nodes)
"$BIN" train configs/tiny.ini --out "$tmp/act" --quiet \
  --set train.steps=2 --set train.warmup=1 --set train.batch=2 \
  --set data.image_size=32 --set loss.w_act=1 --set loss.act_kind=grid \
  --set loss.act_grid=3 > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
out=$("$PY" tests/ref/load_checkpoint.py "$tmp/act/ckpt-00000002.safetensors" 2>&1) \
  || { echo "FAIL: $out"; exit 1; }
echo "with the action head: $out"
echo ok
