#!/usr/bin/env bash
# test_dist_mpi.sh: data-parallel training with MPI (CPU backend).
#  - mpirun -np 2 with train.batch=B trains to the same weights as one
#    process with batch 2B: relative error (norm of the difference of all
#    weights over their norm) < 1e-6, with one gradient bucket and with one
#    per parameter (reduction overlapped with the backward pass); a process
#    with batch B alone (no all-reduce) is far off, so the check can fail;
#
#    Why train.eps = 1e-2: float sums in another order (two ranks, or just
#    two OpenMP threads instead of one in one process) change a gradient
#    by ~1e-7 relative, and AdamW with eps = 1e-8 turns the gradient of an
#    element into about lr * sign(g): where g is near zero, rounding flips
#    the sign and moves the weight by 2 lr. head.bias is such a parameter
#    throughout (its exact gradient is 0: the loss depends on differences
#    of embeddings only). With eps = 1e-2 the update is smooth in g, and
#    the weights measure the data-parallel gradient, not that noise: the
#    1-vs-2-rank error is then ~1e-7, the same as 1 vs 2 threads.
#  - only rank 0 writes metrics and checkpoints; the checkpoint records the
#    world size and the global batch;
#  - resuming that checkpoint with another global batch is refused with a
#    message that says what to set; with the same global batch on one
#    process it is accepted and continues.
# Skips (77) when the build or the machine has no MPI.
set -u
BIN=${RC_BIN:?RC_BIN not set}
BUILD=${RC_BUILD:?RC_BUILD not set}
PY=${RC_PYTHON:-/usr/bin/python3}
grep -Eq '^RC_HAVE_MPI:INTERNAL=(ON|TRUE|1)$' "$BUILD/CMakeCache.txt" \
  || { echo "skip: this build has no MPI"; exit 77; }
command -v mpirun > /dev/null || { echo "skip: no mpirun"; exit 77; }
mpirun --version 2>&1 | grep -q "Open MPI" || { echo "skip: not Open MPI"; exit 77; }
"$PY" -c "import numpy" 2> /dev/null || { echo "skip: no numpy"; exit 77; }
# More ranks than cores is fine here; no core binding, so two ranks share
# CI's two cores; root (containers) must be allowed explicitly.
mpi=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS)
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)

fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
expect_contains() { case "$1" in *"$2"*) ;; *) fail "$3: expected '$2' in: $1" ;; esac; }
tmp=$(mktemp -d /tmp/rc_dist_XXXXXX)
trap 'rm -rf "$tmp"' EXIT

small=(--set data.image_size=32 --set "model.conv_channels=8,16,16"
       --set "model.conv_kernels=5,3,3" --set "model.conv_strides=2,2,2"
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.steps=4 --set train.warmup=1 --set train.lr=0.01
       --set train.eps=1e-2 --set train.log_every=2 --set train.checkpoint_every=4
       --set train.threads=1 --quiet)
run() { # name timeout [mpirun args --] recompose args...
  local name=$1 limit=$2; shift 2
  timeout "$limit" "$@" > "$tmp/$name.log" 2>&1
  local rc=$?
  [ $rc -eq 124 ] && echo "(timed out after ${limit}s)" >> "$tmp/$name.log"
  return $rc
}

t0=$(date +%s%N)
run one 60 "$BIN" train configs/tiny.ini --out "$tmp/one" "${small[@]}" \
    --set train.batch=8 || { cat "$tmp/one.log"; fail "single process, batch 8"; }
t1=$(date +%s%N)
run two 60 "${mpi[@]}" -np 2 "$BIN" train configs/tiny.ini --out "$tmp/two" \
    "${small[@]}" --set train.batch=4 || { cat "$tmp/two.log"; fail "mpirun -np 2, batch 4"; }
t2=$(date +%s%N)
# 1 KiB buckets: every parameter its own bucket, reduced while the
# backward pass continues
run buckets 60 "${mpi[@]}" -x RC_COMM_BUCKET_BYTES=1024 -np 2 "$BIN" train \
    configs/tiny.ini --out "$tmp/buckets" "${small[@]}" --set train.batch=4 \
  || { cat "$tmp/buckets.log"; fail "mpirun -np 2, small buckets"; }
run alone 60 "$BIN" train configs/tiny.ini --out "$tmp/alone" "${small[@]}" \
    --set train.batch=4 || { cat "$tmp/alone.log"; fail "single process, batch 4"; }
echo "timing: 1 process $(( (t1 - t0) / 1000000 )) ms, 2 ranks $(( (t2 - t1) / 1000000 )) ms"

ck=ckpt-00000004.safetensors
for d in one two buckets alone; do [ -s "$tmp/$d/$ck" ] || fail "$d: no $ck"; done
[ "$(wc -l < "$tmp/two/metrics.jsonl")" -eq 2 ] \
  || fail "metrics.jsonl of the 2-rank run should have 2 lines (rank 0 only)"

"$PY" - "$tmp/one/$ck" "$tmp/alone/$ck" "$tmp/two/$ck" "$tmp/buckets/$ck" <<'PY' \
  || fail "weights differ"
import json, struct, sys
import numpy as np

def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    out = {}
    for name, t in head.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").astype(np.float64)
    return out, meta

def weights(t):
    return np.concatenate([t[k] for k in sorted(t) if not k.startswith("optim.")])

def rel_err(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)

ref, _ = load(sys.argv[1])
alone, _ = load(sys.argv[2])
ok = True
# the control: without the other rank's half of the batch the weights differ
e = rel_err(weights(alone), weights(ref))
print(f"batch 4 alone vs batch 8: relative error {e:.3g} (must be large)")
if not e > 1e-4:
    print("the control run is too close: the comparison cannot tell")
    ok = False
for path in sys.argv[3:]:
    got, meta = load(path)
    if meta.get("world_size") != "2" or meta.get("global_batch") != "8":
        print(f"{path}: metadata world_size={meta.get('world_size')} "
              f"global_batch={meta.get('global_batch')}, expected 2 and 8")
        ok = False
    assert sorted(got) == sorted(ref)
    e = rel_err(weights(got), weights(ref))
    moments = max(rel_err(np.concatenate([got[k] for k in sorted(got) if k.startswith(p)]),
                          np.concatenate([ref[k] for k in sorted(ref) if k.startswith(p)]))
                  for p in ("optim.m.", "optim.v."))
    print(f"{path}: weights relative error {e:.3g}, AdamW moments {moments:.3g}")
    if not e < 1e-6:
        print("  FAIL: weights relative error >= 1e-6")
        ok = False
    if not moments < 1e-5:
        print("  FAIL: moments relative error >= 1e-5")
        ok = False
sys.exit(0 if ok else 1)
PY

# resume: another global batch is refused, the same global batch accepted
out=$(timeout 60 "$BIN" train configs/tiny.ini --out "$tmp/r1" "${small[@]}" \
      --set train.batch=4 --set train.steps=6 --resume "$tmp/two/$ck" 2>&1) \
  && fail "resume with global batch 4 from a global-batch-8 checkpoint accepted"
expect_contains "$out" "world size" "changed world size message"
expect_contains "$out" "train.batch=8" "changed world size advice"
out=$(timeout 60 "$BIN" train configs/tiny.ini --out "$tmp/r2" "${small[@]}" \
      --set train.batch=8 --set train.steps=6 --resume "$tmp/two/$ck" 2>&1) \
  || fail "resume on 1 process with the same global batch refused: $out"
[ -s "$tmp/r2/ckpt-00000006.safetensors" ] || fail "resumed run wrote no step-6 checkpoint"

[ $fails -eq 0 ] || { for f in "$tmp"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }
echo "test_dist_mpi: OK"
