#!/usr/bin/env bash
# test_learning.sh: training the tiny preset learns motion, every component.
# A shortened run (RC_LEARN_STEPS, default 800 steps; about 3 minutes on 2
# cores) must halve the loss and lift the ridge and kNN probe R^2 (mean over
# dx, dy, dtheta, on held-out clips and on unseen textures), the retrieval
# precision and the unseen-texture twin recall above the random-
# initialisation baseline, and put each of dx, dy and dtheta in the code
# (ridge R^2 >= RC_LEARN_EACH_R2, default 0.5), measured by `recompose eval`.
# Measured at 800 steps, seed 1: 0.96 / 0.89 / 0.81 with OpenBLAS's Haswell
# kernels, 0.97 / 0.94 / 0.91 with its SkylakeX kernels; at 400 steps
# rotation is not in the code yet (0.91 / 0.21 / 0.04), so the run is not
# shorter. test_learning_long runs the whole preset and checks the goal.
set -u
BIN=${RC_BIN:?}
STEPS=${RC_LEARN_STEPS:-800}
MIN_R2=${RC_LEARN_MIN_R2:-}
EACH_R2=${RC_LEARN_EACH_R2:-0.5}
PY=${RC_PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d /tmp/rc_learn_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$BIN" train configs/tiny.ini --out "$tmp/run" --quiet --eval \
  --set train.steps="$STEPS" --set train.warmup=$((STEPS / 15)) \
  --set eval.clips=256 --set eval.probe_train_clips=512 > "$tmp/log" 2>&1 \
  || { cat "$tmp/log"; exit 1; }
cat "$tmp/log" | tail -n 14
"$PY" - "$tmp/run/metrics.jsonl" "$tmp/run/eval.json" "$MIN_R2" "$EACH_R2" <<'PY'
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
C = ("dx", "dy", "dtheta")
def mean(row, *path):
    d = row
    for p in path:
        d = d[p]
    return sum(d[c] for c in C) / 3
for what, path in (("ridge R^2", ("probe_r2", "ridge")),
                   ("kNN R^2", ("probe_r2", "knn")),
                   ("unseen-texture ridge R^2", ("cross_texture", "ridge"))):
    a, b = mean(t, *path), mean(r, *path)
    check(a > b + 0.05, f"{what} (mean of dx, dy, dtheta) {a:.3f} vs random init {b:.3f}")
check(t["precision_at_k"] > r["precision_at_k"],
      f"precision@k {t['precision_at_k']:.3f} vs random init {r['precision_at_k']:.3f}")
tw, rw = t["cross_texture"]["twin_recall_at_k"], r["cross_texture"]["twin_recall_at_k"]
check(tw > rw, f"unseen-texture twin recall {tw:.3f} vs random init {rw:.3f}")
each = float(sys.argv[4])
for c in C:  # no component dropped: the failure the action term removes
    v = t["probe_r2"]["ridge"][c]
    check(v >= each, f"ridge R^2 {c} {v:.3f} >= {each} (random init {r['probe_r2']['ridge'][c]:.3f})")
if sys.argv[3]:
    goal = float(sys.argv[3])
    for probe in ("ridge", "knn"):
        for c in C:
            v = t["probe_r2"][probe][c]
            check(v >= goal, f"{probe} R^2 {c} {v:.3f} >= goal {goal}")
sys.exit(0 if ok else 1)
PY
