#!/usr/bin/env bash
# test_learning.sh: training the tiny preset learns motion.
# A short run (RC_LEARN_STEPS, default 400 steps; about a minute on 2 cores)
# must lower the loss and lift the linear-probe R^2 of translation and the
# retrieval precision above the random-initialisation baseline, measured by
# `recompose eval` on held-out clips. test_learning_long runs the whole
# preset and checks the quality goal.
set -u
BIN=${RC_BIN:?}
STEPS=${RC_LEARN_STEPS:-400}
MIN_R2=${RC_LEARN_MIN_R2:-}
PY=${RC_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d /tmp/rc_learn_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$BIN" train configs/tiny.ini --out "$tmp/run" --quiet --eval \
  --set train.steps="$STEPS" --set train.warmup=$((STEPS / 15)) \
  --set eval.clips=256 --set eval.probe_train_clips=512 > "$tmp/log" 2>&1 \
  || { cat "$tmp/log"; exit 1; }
cat "$tmp/log" | tail -n 14
"$PY" - "$tmp/run/metrics.jsonl" "$tmp/run/eval.json" "$MIN_R2" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
first, last = rows[0]["loss"], rows[-1]["loss"]
ev = {r["name"]: r for r in json.load(open(sys.argv[2]))["rows"]}
t, r = ev["trained"], ev["random_init"]
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond
check(last < 0.5 * first, f"loss {first:.3f} -> {last:.3f} (must halve)")
check(t["probe_r2"]["translation"] > r["probe_r2"]["translation"] + 0.05,
      f"probe R^2 translation {t['probe_r2']['translation']:.3f} vs random init {r['probe_r2']['translation']:.3f}")
check(t["precision_at_k"] > r["precision_at_k"],
      f"precision@k {t['precision_at_k']:.3f} vs random init {r['precision_at_k']:.3f}")
if sys.argv[3]:
    check(t["probe_r2"]["translation"] >= float(sys.argv[3]),
          f"probe R^2 translation {t['probe_r2']['translation']:.3f} >= goal {sys.argv[3]}")
sys.exit(0 if ok else 1)
PY
