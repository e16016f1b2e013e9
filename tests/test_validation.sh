#!/usr/bin/env bash
# test_validation.sh: the validation loss (train.val_every, val_batches).
#   - it is written to metrics.jsonl at every val_every-th step and at the
#     last, and shown on the progress line;
#   - it does not change what the run trains: with and without validation
#     the losses at every step and the final tensors are bitwise equal;
#   - it is measured on a fixed set: a run stopped and resumed gives the
#     same validation loss, bit for bit, as an uninterrupted one;
#   - training.png is drawn at each checkpoint (train.plot), not without;
#   - on footage it uses the sequences data.val_fraction holds out, and says
#     when there is none (validation off, training goes on).
. "$(dirname "$0")/lib_train_compare.sh"

val_at() { # val_at RUN: "step value" per validation line of metrics.jsonl
  "$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if "val_loss" in r: print(r["step"], repr(r["val_loss"]))' "$tmp/$1/metrics.jsonl"
}
loud=()
for a in "${small[@]}"; do [ "$a" = --quiet ] || loud+=("$a"); done
losses() { grep -o '"step":[0-9]*,"loss":[^,]*' "$tmp/$1/metrics.jsonl"; }

run with configs/tiny.ini --set train.val_every=3 --set train.val_batches=2
run without configs/tiny.ini --set train.val_every=0
steps=$(val_at with | cut -d' ' -f1 | tr '\n' ' ')
[ "$steps" = "3 6 8 " ] || fail "validation at steps '$steps', expected '3 6 8 '"
val_at without | grep -q . && fail "train.val_every = 0 still validated"
val_at with | awk '{ if (!($2 > 0 && $2 < 100)) exit 1 }' \
  || fail "validation loss out of range: $(val_at with | tr '\n' ' ')"
losses with | cmp -s - <(losses without) \
  || { paste <(losses with) <(losses without) | head -3; fail "validation changed the training losses"; }
same_tensors "$tmp/with/ckpt-00000008.safetensors" \
  "$tmp/without/ckpt-00000008.safetensors" || fail "validation changed the weights"

# training.png at the checkpoints (train.plot), where the build can draw
if "$BIN" version | grep -q '+plots'; then
  [ -s "$tmp/with/training.png" ] || fail "no training.png with train.plot on"
  run noplot configs/tiny.ini --set train.plot=false
  [ -e "$tmp/noplot/training.png" ] && fail "training.png with train.plot = false"
else
  echo "note: this build draws no plots (no cairo); training.png not checked"
fi

# stopped after step 4, resumed to 8: the same validation losses
run part configs/tiny.ini --set train.val_every=3 --set train.val_batches=2 --stop-after 4
"$BIN" train configs/tiny.ini --out "$tmp/part" "${small[@]}" --set train.val_every=3 \
  --set train.val_batches=2 --resume "$tmp/part" > "$tmp/part2.log" 2>&1 \
  || { cat "$tmp/part2.log"; fail "resume"; }
[ "$(val_at part | grep -v '^4 ')" = "$(val_at with)" ] \
  || fail "resumed validation differs: $(val_at part | tr '\n' ' ') vs $(val_at with | tr '\n' ' ')"

# the progress line (not --quiet) shows it
"$BIN" train configs/tiny.ini --out "$tmp/loud" "${loud[@]}" --set train.val_every=4 \
  > "$tmp/loud.log" 2>&1 || { cat "$tmp/loud.log"; fail "train loud"; }
grep -q "step 4/8 loss [0-9.]* val_loss [0-9.]" "$tmp/loud.log" \
  || { cat "$tmp/loud.log"; fail "no validation loss on the progress line"; }
grep -q "validation: 4 batch(es) of 4 tuples of held-out synthetic clips every 4 steps" \
  "$tmp/loud.log" || fail "no validation line at start"

# footage: four sequences; at data.val_fraction 0.5 the hash of the names
# holds out seq0 alone
if "$BIN" pack --help > /dev/null 2>&1; then
  make_shards "$tmp/a"
  mkdir -p "$tmp/seqs"
  for s in seq0 seq1 seq2 seq3; do cp -r "$tmp/a/frames" "$tmp/seqs/$s"; done
  "$BIN" pack "$tmp/seqs"/* --out "$tmp/four" --channels 1 > "$tmp/pack4.log" 2>&1 \
    || { cat "$tmp/pack4.log"; fail "pack four"; }
  shards=("${video[@]}")
  shards[3]="data.path=$tmp/four"
  "$BIN" train configs/tiny.ini --out "$tmp/shards" "${loud[@]}" "${shards[@]}" \
    --set data.val_fraction=0.5 --set train.val_every=4 > "$tmp/shards.log" 2>&1 \
    || { cat "$tmp/shards.log"; fail "train on shards"; }
  held=$(sed -n 's/.*training on \([0-9]*\) .*, \([0-9]*\) held out.*/\2/p' "$tmp/shards.log")
  if [ "${held:-0}" -ge 1 ] && [ "$held" -le 3 ]; then
    grep -q "validation: 4 batch(es) of 4 tuples of the held-out sequences" "$tmp/shards.log" \
      || fail "no validation on the $held held-out sequence(s)"
    [ "$(val_at shards | wc -l)" = 2 ] || fail "shards: validation lines: $(val_at shards | tr '\n' ' ')"
  else
    fail "expected 1-3 of 4 sequences held out at val_fraction 0.5, got '${held:-}'"
  fi
  "$BIN" train configs/tiny.ini --out "$tmp/noval" "${loud[@]}" "${shards[@]}" \
    --set data.val_fraction=0 --set train.val_every=4 > "$tmp/noval.log" 2>&1 \
    || { cat "$tmp/noval.log"; fail "train with nothing held out"; }
  grep -q "validation off: no sequence of .* is held out (data.val_fraction 0)" "$tmp/noval.log" \
    || { cat "$tmp/noval.log"; fail "no 'validation off' message"; }
else
  echo "note: no video input in this build, footage part skipped"
fi

[ "$fails" -eq 0 ] && echo "validation: all checks passed"
exit "$fails"
