#!/usr/bin/env bash
# test_warp_optimum.sh: tools/warp_optimum.py finds the motion where the
# action term's error can: clips of a texture translated by known, different
# velocities (no static background, no occlusion), a sidecar written by hand
# as recompose embed writes it. For one step the best 4 x 4 field must lower
# the error well below the identity's and follow the optical flow's field
# (R^2 > 0.75 for dx and dy; nodes in the border, outside the error, pull it
# below 1). Skips (77) where /usr/bin/python3 lacks OpenCV,
# NumPy or PyTorch (python3-opencv python3-numpy python3-torch).
set -euo pipefail
PY="${RC_PYTHON:-/usr/bin/python3}"
if ! "$PY" -c "import cv2, numpy, torch" 2>/dev/null; then
  echo "SKIPPED: $PY lacks cv2/numpy/torch (python3-opencv python3-numpy python3-torch)"
  exit 77
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$PY" - "$TMP" "$ROOT" <<'PYEOF'
import json, os, sys
import numpy as np
sys.path.insert(0, os.path.join(sys.argv[2], "tools"))
import flow_oracle as fo
d = sys.argv[1]
rng = np.random.default_rng(5)
base = fo.texture(480, 640, 2)
items = []
for s in range(16):
    vx, vy = rng.uniform(-3, 3, 2)   # source px per frame; the crop is 320 px
    name = f"c{s:02d}"
    fo.write_clip(os.path.join(d, "footage", name), base, 3, vx, vy, 0.0)
    items.append({"row": s, "source": name, "split": "train",
                  "frames": [0, 1, 2], "crop": [0.0, 0.0, 1.0, 1.0]})
json.dump({"data_source": "shards", "data_path": os.path.join(d, "x"),
           "image_size": 64, "items": items}, open(os.path.join(d, "w.json"), "w"))
PYEOF
"$PY" "$ROOT/tools/warp_optimum.py" "$TMP/w.json" --footage "$TMP/footage" \
  --steps 1 --grid 4 --moving 0 --border 8 --every 1 --iters 300 | tee "$TMP/out"
awk '$1 == "1" {
  ok = ($4 < 0.3 * $2) && ($5 > 0.75) && ($6 > 0.75)
  printf "identity %s, best %s, R^2 %s %s: %s\n", $2, $4, $5, $6, ok ? "ok" : "FAIL"
  found = 1; exit !ok }
  END { if (!found) { print "no row for k = 1"; exit 1 } }' "$TMP/out"
