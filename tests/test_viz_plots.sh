#!/usr/bin/env bash
# test_viz_plots.sh: tools/plot_training.py and tools/plot_embeddings.py
# write decodable PNGs of the expected kind from a metrics.jsonl and from an
# embedding .npy + sidecar (synthetic and real-footage sidecars). Skips when
# RC_PYTHON lacks matplotlib or scikit-learn (Debian: python3-matplotlib
# python3-sklearn).
set -euo pipefail
PY="${RC_PYTHON:-/usr/bin/python3}"
if ! "$PY" -c "import matplotlib, sklearn, numpy" 2>/dev/null; then
  echo "SKIPPED: $PY lacks matplotlib/sklearn/numpy"
  exit 77
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" - "$TMP" <<'PYEOF'
import json, math, os, sys
import numpy as np
d = sys.argv[1]
os.makedirs(f"{d}/run", exist_ok=True)
with open(f"{d}/run/metrics.jsonl", "w") as f:
    for s in range(10, 210, 10):
        kinds = {k: 0.6 / (1 + s / (30 + 10 * i)) for i, k in enumerate(
            ("full_skip", "loop_ident", "full_rev", "full_ident", "full_short"))}
        f.write(json.dumps({"step": s, "loss": 3.0 / (1 + s / 50), "lr": 1e-3,
                            "grad_norm": 1.0, "tuples_per_s": 20.0,
                            "loss_by_kind": kinds}) + "\n")
rng = np.random.default_rng(0)
items = []
for i in range(40):
    a = 2 * math.pi * i / 40
    items.append({"row": i, "source": "synthetic", "net_dx": math.cos(a),
                  "net_dy": math.sin(a), "net_dtheta": (-1) ** i * 0.1,
                  "frames": [0, 1, 2, 3, 4]})
np.save(f"{d}/syn.npy", rng.normal(size=(40, 8)).astype(np.float32))
json.dump({"data_source": "synthetic", "items": items}, open(f"{d}/syn.json", "w"))
items = [{"row": i, "source": f"vid#{i // 20}", "frames": [i, i + 2],
          "times_s": [i / 10, (i + 2) / 10]} for i in range(40)]
np.save(f"{d}/real.npy", rng.normal(size=(40, 8)).astype(np.float32))
json.dump({"data_source": "shards", "items": items}, open(f"{d}/real.json", "w"))
PYEOF
"$PY" "$ROOT/tools/plot_training.py" "$TMP/run" --out "$TMP/curves.png"
"$PY" "$ROOT/tools/plot_embeddings.py" "$TMP/syn" --out "$TMP/syn.png"
"$PY" "$ROOT/tools/plot_embeddings.py" "$TMP/real" --out "$TMP/real.png" --no-tsne
"$PY" - "$TMP" <<'PYEOF'
import struct, sys, zlib
for name in ("curves", "syn", "real"):
    p = f"{sys.argv[1]}/{name}.png"
    data = open(p, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", p
    w, h = struct.unpack(">II", data[16:24])
    assert w > 200 and h > 200, (p, w, h)
    # walk the chunks: every CRC must match and the image data must inflate
    pos, idat = 8, b""
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) & 0xffffffff == crc, (p, kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + n
    assert len(zlib.decompress(idat)) >= w * h, p
print("ok")
PYEOF
# a missing run folder or embedding prefix: a message naming it, no traceback
for tool in plot_training.py plot_embeddings.py; do
  out=$("$PY" "$ROOT/tools/$tool" "$TMP/missing" --out "$TMP/x.png" 2>&1) \
    && { echo "FAIL: $tool accepted a missing input"; exit 1; }
  case "$out" in
    *Traceback*) echo "FAIL: $tool printed a traceback: $out"; exit 1 ;;
    *"$TMP/missing"*) ;;
    *) echo "FAIL: $tool did not name the missing input: $out"; exit 1 ;;
  esac
done
echo "missing inputs: ok"
