#!/usr/bin/env bash
# test_flow_oracle.sh: the optical-flow oracle for real footage
# (tools/flow_oracle.py, tools/oracle_eval.sh) against motion known by
# construction.
#  1. selftest: a texture translated and rotated by known amounts; the oracle
#     must recover the translation within 0.2 px per frame and the rotation
#     within 0.002 rad per frame.
#  2. end to end: footage made here (frame folders whose content moves by a
#     known, changing velocity), packed by `recompose pack`, embedded by
#     `recompose embed` through tools/oracle_eval.sh. The flow targets of
#     every window must match the known net motion inside the crop the
#     sidecar names (0.2 px per frame), and the probe command must give a
#     hand-made embedding that encodes the true motion linearly R^2 near 1
#     for dx and dy, and one that encodes it through a private per-sequence
#     rotation R^2 near 0; an action head whose warp is the true motion
#     (other units, other sign) reads R^2 near 1, shuffled near 0. Every
#     cell of the flow field carries the known motion; the field RSA of the
#     linear code is near 1, of the same code shuffled over windows near 0;
#     a field head whose nodes carry the true motion reads near 1.
#  3. the local targets (grid, where) of a flow field made by hand: a patch
#     moving over part of four cells, a slow drift elsewhere; and the flow
#     read at a field head's nodes, on a known ramp.
# Skips (77) where /usr/bin/python3 lacks OpenCV, NumPy or scikit-learn
# (Debian: python3-opencv python3-numpy python3-sklearn).
set -euo pipefail
PY="${RC_PYTHON:-/usr/bin/python3}"
BIN="${RC_BIN:?}"
if ! "$PY" -c "import cv2, numpy, sklearn" 2>/dev/null; then
  echo "SKIPPED: $PY lacks cv2/numpy/sklearn (python3-opencv python3-numpy python3-sklearn)"
  exit 77
fi
if ! "$BIN" pack --help >/dev/null 2>&1; then
  echo "SKIPPED: this build has no video input (recompose pack)"
  exit 77
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "== selftest"
"$PY" "$ROOT/tools/flow_oracle.py" selftest --dir "$TMP/self"

echo "== footage with known motion"
"$PY" - "$TMP" "$ROOT" <<'PYEOF'
import json, os, sys
import numpy as np, cv2
sys.path.insert(0, os.path.join(sys.argv[2], "tools"))
import flow_oracle as fo
d = sys.argv[1]
rng = np.random.default_rng(3)
truth = {}
for s in range(40):
    base = fo.texture(360, 480, 10 + s)
    v0 = rng.uniform(-2.5, 2.5, 2)
    acc = rng.uniform(-0.15, 0.15, 2)
    pos = np.zeros(2)
    folder = os.path.join(d, "footage", f"seq{s:02d}")
    os.makedirs(folder)
    positions = []
    for k in range(10):
        M = np.float32([[1, 0, pos[0]], [0, 1, pos[1]]])
        img = cv2.warpAffine(base, M, (480, 360), flags=cv2.INTER_CUBIC)
        crop = img[120:240, 160:320]            # 160 x 120, away from borders
        cv2.imwrite(os.path.join(folder, f"f{100 + k:04d}.png"),
                    np.clip(crop, 0, 255).astype(np.uint8))
        positions.append(pos.tolist())
        pos = pos + v0 + acc * k
    truth[f"seq{s:02d}"] = {"first_frame": 100, "positions": positions}
json.dump(truth, open(os.path.join(d, "truth.json"), "w"))
PYEOF
"$BIN" pack "$TMP"/footage/seq* --out "$TMP/shards" --channels 1 --quiet
cat > "$TMP/c.ini" <<EOF
[model]
conv_channels = 8,16
conv_kernels = 5,3
conv_strides = 2,2
feature_dim = 16
hidden = 16
embed_dim = 8
[data]
source = shards
path = $TMP/shards
image_size = 64
channels = 1
clip_steps = 4
frame_stride = 1
resize = 80
val_fraction = 0.4
[eval]
pixel_baseline_size = 8
EOF
RECOMPOSE="$BIN" RC_FLOW_ARGS="--footage $TMP/footage" \
  bash "$ROOT/tools/oracle_eval.sh" "$TMP/c.ini" "$TMP/o" | tee "$TMP/log"

echo "== flow targets against the known motion; probes on hand-made codes"
"$PY" - "$TMP" "$ROOT" <<'PYEOF'
import json, os, subprocess, sys
import numpy as np
d, root = sys.argv[1], sys.argv[2]
truth = json.load(open(f"{d}/truth.json"))
flow = json.load(open(f"{d}/o/windows-flow.json"))
side = json.load(open(f"{d}/o/pixel_diff.json"))
rows = flow["rows"]
assert len(rows) == len(side["items"]) > 100, len(rows)
splits = {r["split"] for r in rows}
assert splits == {"train", "heldout"}, splits
worst = 0.0
true_net = []
for r in rows:
    t = truth[r["source"]]
    p = np.array(t["positions"])
    a, b = r["frames"][0] - t["first_frame"], r["frames"][-1] - t["first_frame"]
    net = p[b] - p[a]
    true_net.append(net)
    steps = b - a
    err = max(abs(r["global"]["dx"] - net[0]), abs(r["global"]["dy"] - net[1])) / steps
    worst = max(worst, err)
print(f"flow targets vs known motion: worst error {worst:.3f} px per frame "
      f"over {len(rows)} windows")
assert worst < 0.2, worst
# hand-made codes, same rows and sidecar as the pixel baseline
true_net = np.array(true_net)
rng = np.random.default_rng(0)
A = rng.normal(size=(2, 8))
shared = true_net @ A + 1e-3 * rng.normal(size=(len(rows), 8))
Q = {}
private = np.zeros_like(shared)
for i, r in enumerate(rows):
    if r["source"] not in Q:
        Q[r["source"]] = np.linalg.qr(rng.normal(size=(8, 8)))[0][:2]
    private[i] = true_net[i] @ Q[r["source"]]
for name, X in (("shared", shared), ("private", private)):
    np.save(f"{d}/o/{name}.npy", X.astype(np.float32))
    json.dump(side, open(f"{d}/o/{name}.json", "w"))
# an action head's own warp (embed's action_motion, in the network's pixels:
# the crop scaled to 64 px, and y flipped: the line's R^2 is unit- and
# sign-free), and one whose warp is shuffled over the windows
by_key = {(r["source"], tuple(r["frames"])): i for i, r in enumerate(rows)}
perm = rng.permutation(len(rows))
for name, order in (("head", np.arange(len(rows))), ("badhead", perm)):
    hs = json.loads(json.dumps(side))
    for it in hs["items"]:
        net = true_net[order[by_key[(it["source"], tuple(it["frames"]))]]]
        it["action_motion"] = {"dx": 0.4 * net[0], "dy": -0.4 * net[1],
                               "dtheta": 0.0}
        # a field head moving the whole frame: every node the same motion
        it["action_field"] = {"dx": [0.4 * net[0]] * 16,
                              "dy": [-0.4 * net[1]] * 16}
    np.save(f"{d}/o/{name}.npy", shared.astype(np.float32))
    json.dump(hs, open(f"{d}/o/{name}.json", "w"))
out = subprocess.run(["/usr/bin/python3", f"{root}/tools/flow_oracle.py",
                      "probe", f"{d}/o/windows-flow.json",
                      f"shared={d}/o/shared", f"private={d}/o/private",
                      f"pixel_diff={d}/o/pixel_diff", f"head={d}/o/head",
                      f"badhead={d}/o/badhead", "--out", f"{d}/o/hand.json"],
                     check=True, capture_output=True, text=True).stdout
print(out)
rep = json.load(open(f"{d}/o/hand.json"))["columns"]
for c in ("dx", "dy"):
    s, p = rep["shared"]["ridge_global"][c], rep["private"]["ridge_global"][c]
    sk, pk = rep["shared"]["knn_global"][c], rep["private"]["knn_global"][c]
    print(f"{c}: shared ridge {s:.3f} kNN {sk:.3f}; private ridge {p:.3f} kNN {pk:.3f}")
    assert s > 0.95 and sk > 0.8, (c, s, sk)
    assert p < 0.3 and pk < 0.5, (c, p, pk)
    h, b = rep["head"]["head_heldout"][c], rep["badhead"]["head_all"][c]
    print(f"{c}: action head R^2 {h:.3f}, shuffled head {b:.3f}")
    assert h > 0.95 and b < 0.1, (c, h, b)
    assert rep["shared"]["head_heldout"][c] is None  # no head: n/a
    h, b = rep["head"]["head_field_heldout"][c], rep["badhead"]["head_field_all"][c]
    print(f"{c}: action field R^2 {h:.3f}, shuffled field {b:.3f}")
    assert h > 0.95 and b < 0.1, (c, h, b)
    assert rep["shared"]["head_field_heldout"][c] is None
# the field: the whole crop moves, so every cell's mean flow is the net
# motion and every pixel moves
field = np.array([r["field"] for r in rows]).reshape(len(rows), -1, 3)
cell_err = max(np.abs(field[i, :, :2] - true_net[i]).max()
               / (r["frames"][-1] - r["frames"][0]) for i, r in enumerate(rows))
print(f"field cells vs known motion: worst error {cell_err:.3f} px per frame")
assert cell_err < 0.3, cell_err
fast = np.abs(true_net).max(1) / [r["frames"][-1] - r["frames"][0] for r in rows] > 1
assert field[fast, :, 2].min() > 0.9, field[fast, :, 2].min()
# field RSA: the linear code orders window pairs as their motion does; the
# same code shuffled over the windows does not
rsa_s = rep["shared"]["field_rsa"]
np.save(f"{d}/o/shuffled.npy", shared[perm].astype(np.float32))
json.dump(side, open(f"{d}/o/shuffled.json", "w"))
subprocess.run(["/usr/bin/python3", f"{root}/tools/flow_oracle.py", "probe",
                f"{d}/o/windows-flow.json", f"shuffled={d}/o/shuffled",
                "--out", f"{d}/o/shuf.json"], check=True, capture_output=True)
rsa_x = json.load(open(f"{d}/o/shuf.json"))["columns"]["shuffled"]["field_rsa"]
print(f"field RSA held out / all: shared {rsa_s['heldout']:.3f} / "
      f"{rsa_s['all']:.3f}, shuffled {rsa_x['heldout']:.3f} / {rsa_x['all']:.3f}")
assert rsa_s["heldout"] > 0.8 and rsa_s["all"] > 0.8, rsa_s
assert abs(rsa_x["heldout"]) < 0.25 and abs(rsa_x["all"]) < 0.15, rsa_x
o = json.load(open(f"{d}/o/oracle.json"))["columns"]
assert set(o) == {"random_init", "pixel_diff"}, set(o)
for col in o.values():
    assert col["ridge_grid"] is not None and "dx" in col["knn_global"]
    assert col["ridge_where"] is not None and col["field_rsa"]["all"] is not None
print("ok")
PYEOF

echo "== local targets of a known flow field"
"$PY" - "$ROOT" <<'PYEOF'
import os, sys
import numpy as np
sys.path.insert(0, os.path.join(sys.argv[1], "tools"))
import flow_oracle as fo
# an 80 x 80 crop inside a 100 x 100 flow; a patch over crop rows 10-29 and
# columns 0-39 moves by (3, -1), a slow drift (0.2 px, below the moving
# threshold) elsewhere. 4 x 4 grid, 20 px cells: cells (0,0), (0,1), (1,0),
# (1,1) are half patch, half drift
flow = np.zeros((100, 100, 2), np.float32)
flow[10:90, 10:90] = (0.2, 0.0)
flow[20:40, 10:50] = (3.0, -1.0)
g, field, share = fo.step_targets(flow, (10, 10, 90, 90), 0.5)
grid, where = fo.grid_targets(field[None], 4)
grid, where = grid.reshape(4, 4, 2), where.reshape(4, 4)
want = np.zeros((4, 4, 2))
want[...] = (0.2, 0.0)
want[:2, :2] = 0.5 * np.array([3.0, -1.0]) + 0.5 * np.array([0.2, 0.0])
want_where = np.zeros((4, 4))
want_where[:2, :2] = 0.5
assert np.abs(grid - want).max() < 1e-5, grid
assert np.abs(where - want_where).max() < 1e-6, where
assert abs(share - 800 / 6400) < 1e-6, share
assert abs(g[0] - 0.2) < 1e-6 and abs(g[1]) < 1e-6, g  # median: the drift
# a field head's nodes read the flow where they are: a ramp along x (dx =
# the cell's column) and along y (dy = its row), at nodes 0, 1/3, 2/3, 1 of
# the crop, cells centred at (k + 0.5) / 8, clamped at the outer centres
ky, kx = np.mgrid[0:fo.FIELD, 0:fo.FIELD]
ramp = np.stack([kx, ky, np.zeros_like(kx)], -1).reshape(1, -1, 3).astype(float)
nodes = fo.field_at_nodes(ramp, 4).reshape(2, 4, 4)
u = np.array([0.0, 8 / 3 - 0.5, 16 / 3 - 0.5, 7.0])
assert np.abs(nodes[0] - u[None, :]).max() < 1e-9, nodes[0]
assert np.abs(nodes[1] - u[:, None]).max() < 1e-9, nodes[1]
print("ok")
PYEOF
