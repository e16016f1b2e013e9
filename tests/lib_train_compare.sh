# lib_train_compare.sh: shared by the tests that train one small model on
# two backends and compare the runs (sourced; not a test itself). Sets BIN,
# PY, a scratch directory $tmp (removed at exit) and fail(); count in $fails.
set -u
BIN=${RC_BIN:?RC_BIN not set}
PY=${RC_PYTHON:-/usr/bin/python3}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=$(mktemp -d /tmp/rc_train_cmp_XXXXXX)
trap "${KEEP_TMP:+:} rm -rf \"\$tmp\"" EXIT

small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.steps=8 --set train.warmup=2
       --set train.log_every=1 --set train.checkpoint_every=4
       --set train.threads=2 --quiet)

# run NAME CONFIG [--set ...]: train into $tmp/NAME, log in $tmp/NAME.log
run() {
  local name=$1 cfg=$2
  shift 2
  "$BIN" train "$cfg" --out "$tmp/$name" "${small[@]}" "$@" > "$tmp/$name.log" 2>&1 \
    || { cat "$tmp/$name.log"; fail "train $name"; }
}

# same_losses A B TOL [STEPS]: per-step losses of two metrics.jsonl agree to
# a relative TOL (over the first STEPS steps, default all)
same_losses() {
  "$PY" - "$1" "$2" "$3" "${4:-0}" <<'PY'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
tol, steps = float(sys.argv[3]), int(sys.argv[4])
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
if steps: a, b = a[:steps], b[:steps]
worst = 0.0
for x, y in zip(a, b):
    assert x["step"] == y["step"]
    rel = abs(x["loss"] - y["loss"]) / abs(x["loss"])
    worst = max(worst, rel)
    assert rel < tol, f"step {x['step']}: loss {x['loss']} vs {y['loss']} (rel {rel:.2e} >= {tol})"
print(f"{len(a)} steps agree (worst rel {worst:.1e} < {tol}); last loss "
      f"{a[-1]['loss']:.6f} vs {b[-1]['loss']:.6f}")
PY
}

# same_tensors A B: two checkpoints hold bitwise the same tensors (the
# metadata, with its time stamp and CRC, aside)
same_tensors() {
  "$PY" - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
            for k, v in head.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys() and len(a) > 0
diff = [k for k in a if a[k] != b[k]]
assert not diff, f"tensors differ: {diff}"
print(f"{len(a)} tensors bitwise equal")
PY
}

# make_shards DIR: 40 gray PNG frames of a drifting pattern (zlib + struct:
# no imaging library), packed into DIR/shards; sets video=(--set ...)
make_shards() {
  "$PY" - "$1/frames" <<'PY'
import math, os, struct, sys, zlib
d = sys.argv[1]
os.makedirs(d)
W = H = 48
def png(path, rows):
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    def chunk(t, data):
        c = t + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
for i in range(40):
    rows = [[int(128 + 60 * math.sin(0.3 * (x - 1.5 * i)) + 50 * math.cos(0.2 * (y + i)))
             for x in range(W)] for y in range(H)]
    png(f"{d}/{i:05d}.png", rows)
PY
  "$BIN" pack "$1/frames" --out "$1/shards" --channels 1 > "$1/pack.log" 2>&1 \
    || { cat "$1/pack.log"; fail "pack"; }
  # (tiny.ini's twin terms are for synthetic clips only)
  video=(--set data.source=shards --set data.path="$1/shards"
         --set loss.w_full_tex=0 --set loss.w_full_pan=0
         --set data.resize=32 --set data.loader_threads=2 --set data.ring=2)
}
