#!/usr/bin/python3
"""flow_oracle.py: what a motion embedding of real footage knows, measured
against classical optical flow that nobody here wrote (SPEC section 7,
"Motion against an independent oracle").

  flow   For every window `recompose embed` wrote (its JSON sidecar names the
         source, the frame numbers and the crop the network saw), compute
         OpenCV optical flow (DIS by default, or Farneback) between its
         consecutive frames on the *source* frames at full resolution, and
         from it the window's net motion inside the crop:
           global  median flow dx, dy (pixels), and from a similarity fit
                   (cv2.estimateAffinePartial2D, RANSAC) rotation (radians,
                   positive turns +x towards +y as in the synthetic clips)
                   and log scale: the camera's motion
           field   an 8 x 8 field over the crop, per cell the flow (dx, dy)
                   averaged over all its pixels, and the share of them that
                   move (|flow| above a threshold)
         each summed over the window's steps (the moving share averaged).
         The probe's local targets come from the field: grid, a G x G grid
         of the cells' mean flow (where things move and which way), and
         where, the cells' moving share (where things move, either way).
  probe  Fit a ridge (linear) and a k-nearest-neighbour (non-linear) probe
         from each embedding to those targets on training-split windows and
         report R^2 on held-out windows: a table and JSON, one column per
         embedding (trained, random init, pixel baseline, ...). Short
         recordings hold out only a sequence or two, so it also reports
         leave-one-sequence-out R^2 over every window (LOSO). Field RSA
         fits nothing: the rank correlation, over pairs of windows with no
         frames in common, of code distance and flow-field distance (a few
         sequences, each with its walkers elsewhere, leave a fitted local
         probe too little to learn from; a ranking needs no fit). Where the
         model has an action head (embed writes its warp per window as
         action_motion), the head's own dx, dy and rotation are compared
         with the flow's global motion directly, no probe fit: the R^2 of
         a fitted line (squared correlation), held-out windows and all.
  selftest
         The oracle's own accuracy on clips whose motion is known: a
         textured image translated, and rotated, by known amounts.

Usage:
  tools/flow_oracle.py flow PREFIX.json [--footage DIR] [--out FLOW.json]
  tools/flow_oracle.py probe FLOW.json NAME=PREFIX [NAME=PREFIX ...]
                       [--k 10] [--ridge-lambda cv|L] [--out PROBE.json]
  tools/flow_oracle.py selftest [--dir DIR]

Needs Debian's python3-opencv, python3-numpy and python3-sklearn (for
/usr/bin/python3; tools/install-deps.sh installs them).
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - reported, not a traceback
    cv2 = None


def fail(msg):
    print(f"flow_oracle: error: {msg}", file=sys.stderr)
    sys.exit(1)


def need_cv2():
    if cv2 is None:
        fail("OpenCV for Python is missing; install Debian's python3-opencv "
             "(tools/install-deps.sh) and run this with /usr/bin/python3")


# ---- sources -----------------------------------------------------------------

VIDEO_EXT = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
IMAGE_EXT = (".jpg", ".jpeg", ".png")


def source_path(name, footage):
    """The file or folder a packed sequence came from: its name without the
    segment suffix '#k' (recompose pack --segment-frames), under footage."""
    base = re.sub(r"#\d+$", "", name)
    for cand in (os.path.join(footage, base), base):
        if os.path.exists(cand):
            return cand
    fail(f"source '{base}' (sequence '{name}') is not under {footage}; pass "
         f"--footage DIR, the folder holding the files you packed "
         f"(tools/fetch-footage.sh unpacks them into data/footage)")


class Frames:
    """Gray full-resolution frames of one source by frame number (the video's
    decode index, or a frame file's last run of digits, as recompose pack
    numbers them), read once and kept."""

    def __init__(self, path):
        self.path = path
        self.cache = {}
        if os.path.isdir(path):
            self.files = {}
            for f in os.listdir(path):
                digits = re.findall(r"\d+", os.path.splitext(f)[0])
                if f.lower().endswith(IMAGE_EXT) and digits:
                    self.files[int(digits[-1])] = os.path.join(path, f)
            if not self.files:
                fail(f"{path}: no numbered .jpg/.png frames")
        elif path.lower().endswith(VIDEO_EXT):
            self.files = None
        else:
            fail(f"{path}: neither a frame folder nor a video file")

    def _read_video(self, wanted):
        cap = cv2.VideoCapture(self.path)
        if not cap.isOpened():
            fail(f"{self.path}: OpenCV cannot open this video")
        last, n = max(wanted), 0
        while n <= last:
            ok, img = cap.read()
            if not ok:
                fail(f"{self.path}: the video ends at frame {n - 1}, but the "
                     f"sidecar names frame {last}; was it packed from this "
                     f"file?")
            if n in wanted:
                self.cache[n] = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            n += 1
        cap.release()

    def preload(self, numbers):
        missing = set(numbers) - set(self.cache)
        if not missing:
            return
        if self.files is None:
            self._read_video(missing)
            return
        for n in missing:
            if n not in self.files:
                fail(f"{self.path}: no frame numbered {n}")
            img = cv2.imread(self.files[n], cv2.IMREAD_GRAYSCALE)
            if img is None:
                fail(f"{self.files[n]}: OpenCV cannot decode this frame")
            self.cache[n] = img

    def __getitem__(self, n):
        return self.cache[n]


# ---- flow and its summaries --------------------------------------------------

def make_flow(method):
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        return lambda a, b: dis.calc(a, b, None)
    if method == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(
            a, b, None, 0.5, 5, 21, 5, 7, 1.5, 0)
    fail(f"unknown flow method '{method}' (dis or farneback)")


def crop_box(crop, w, h):
    """Fractions [x0, y0, x1, y1] of the frame -> integer pixel bounds."""
    if crop is None:
        return 0, 0, w, h
    x0, y0 = int(round(crop[0] * w)), int(round(crop[1] * h))
    x1, y1 = int(round(crop[2] * w)), int(round(crop[3] * h))
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def similarity(flow, box, step=8):
    """Rotation (radians) and log scale of the similarity that best maps a
    grid of points in the box to where the flow carries them (RANSAC)."""
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0 + step // 2:y1:step, x0 + step // 2:x1:step]
    src = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    cx, cy = 0.5 * (x0 + x1 - 1), 0.5 * (y0 + y1 - 1)
    d = flow[ys.ravel(), xs.ravel()]
    centred = src - np.float32([cx, cy])
    M, _ = cv2.estimateAffinePartial2D(centred, centred + d,
                                       method=cv2.RANSAC,
                                       ransacReprojThreshold=1.0)
    if M is None:
        return 0.0, 0.0
    return (math.atan2(M[1, 0], M[0, 0]),
            math.log(max(math.hypot(M[0, 0], M[1, 0]), 1e-6)))


FIELD = 8  # the stored field's side: cells of any grid G dividing it


def cell_slices(h, w, g):
    return [(slice(gy * h // g, (gy + 1) * h // g),
             slice(gx * w // g, (gx + 1) * w // g))
            for gy in range(g) for gx in range(g)]


def step_targets(flow, box, moving):
    """One step's summaries inside the crop: the global motion, and the
    FIELD x FIELD field of per-cell (mean dx, mean dy, share moving) over
    *all* the cell's pixels, so a cell where little moves carries little
    flow (a mean over its moving pixels alone would turn three noisy pixels
    into a walker's full speed)."""
    x0, y0, x1, y1 = box
    f = flow[y0:y1, x0:x1]
    dx, dy = float(np.median(f[..., 0])), float(np.median(f[..., 1]))
    rot, logs = similarity(flow, box)
    moves = np.hypot(f[..., 0], f[..., 1]) > moving
    h, w = moves.shape
    field = np.array([[f[sl][..., 0].mean(), f[sl][..., 1].mean(),
                       moves[sl].mean()] for sl in cell_slices(h, w, FIELD)])
    return np.array([dx, dy, rot, logs]), field, float(moves.mean())


def grid_targets(field, g):
    """Probe targets from the stored per-window fields ([n, FIELD^2, 3]):
      grid   per cell of a g x g grid, the flow (dx, dy) summed over the
             window's steps and averaged over the cell's pixels: where
             things move, how much of the cell, and which way
      where  per cell, the share of pixels that move (> the threshold) per
             step: where things move, whichever way"""
    if FIELD % g:
        fail(f"--grid {g} must divide the stored field's side {FIELD}")
    n, b = len(field), FIELD // g
    f = field.reshape(n, g, b, g, b, 3).mean((2, 4)).reshape(n, g * g, 3)
    return f[..., :2].reshape(n, -1), f[..., 2]


GLOBAL_NAMES = ["dx", "dy", "rotation", "log_scale"]


def cmd_flow(args):
    need_cv2()
    side = json.load(open(args.sidecar))
    items = side.get("items")
    if side.get("data_source") != "shards" or not items:
        fail(f"{args.sidecar}: not a sidecar of real footage (recompose embed "
             f"with data.source = shards)")
    footage = args.footage or os.path.join(
        os.path.dirname(os.path.normpath(side.get("data_path", "."))), "footage")
    flow_of = make_flow(args.method)
    sources, cache = {}, {}
    # every frame a source's windows need, read in one pass per source
    # (a video is decoded once, in order; the frames are kept in memory)
    needed = {}
    for it in items:
        needed.setdefault(it["source"], set()).update(it["frames"])
    for name, numbers in needed.items():
        sources[name] = Frames(source_path(name, footage))
        sources[name].preload(sorted(numbers))
    rows = []
    for it in items:
        name = it["source"]
        src = sources[name]
        frames = it["frames"]
        g, field, moving_share = np.zeros(4), 0, []
        h, w = src[frames[0]].shape
        box = crop_box(it.get("crop"), w, h)
        for a, b in zip(frames[:-1], frames[1:]):
            key = (name, a, b)
            if key not in cache:
                flow = flow_of(src[a], src[b])
                cache[key] = step_targets(flow, box, args.moving)
            sg, sf, ms = cache[key]
            g = g + sg
            field = field + sf
            moving_share.append(ms)
        field = np.array(field)
        field[:, 2] /= len(frames) - 1  # moving share: per step, not summed
        rows.append({"row": it["row"], "source": name, "split": it["split"],
                     "frames": frames,
                     "global": dict(zip(GLOBAL_NAMES, map(float, g))),
                     "field": [round(float(v), 5) for v in np.ravel(field)],
                     "moving_share": float(np.mean(moving_share))})
        if len(rows) % 100 == 0:
            print(f"flow_oracle: {len(rows)} of {len(items)} windows, "
                  f"{len(cache)} flows", file=sys.stderr)
    out = args.out or re.sub(r"\.json$", "", args.sidecar) + "-flow.json"
    json.dump({"sidecar": args.sidecar, "footage": footage,
               "method": args.method, "field_side": FIELD,
               "moving_threshold_px": args.moving,
               "units": "source pixels (radians, log scale) summed over the "
                        "window's steps, inside the crop the network saw",
               "global_names": GLOBAL_NAMES,
               "field_layout": "row-major cells of a field_side square "
                               "over the crop; per cell dx, dy (mean over "
                               "its pixels, summed over steps) and the share "
                               "of its pixels moving per step",
               "rows": rows}, open(out, "w"), indent=1)
    ms = np.mean([r["moving_share"] for r in rows])
    print(f"flow_oracle: {len(rows)} windows ({len(cache)} flows, "
          f"{args.method}) -> {out}; {100 * ms:.1f}% of crop pixels move "
          f"more than {args.moving} px per step")


# ---- probes ------------------------------------------------------------------

def r2_scores(y, pred):
    """R^2 per column, and pooled over the columns with variance
    (1 - sum SS_res / sum SS_tot)."""
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    ss_res = ((y - pred) ** 2).sum(0)
    ok = ss_tot > 1e-12
    per = np.where(ok, 1 - ss_res / np.where(ok, ss_tot, 1), np.nan)
    pooled = 1 - ss_res[ok].sum() / ss_tot[ok].sum() if ok.any() else float("nan")
    return per, pooled


LAMBDAS = [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4]


def fit_predict(X_fit, Y_fit, groups, X_test, k, lam):
    """Ridge and kNN predictions for X_test, and the ridge lambda used.
    The ridge objective is recompose eval's: lambda per sample on
    standardised features, intercept unpenalised. lam None: chosen from
    LAMBDAS by 5-fold cross-validation on the fit rows, folds grouped by
    source sequence (overlapping windows of one sequence never straddle a
    fold), so that a wide embedding (the pixel baseline) is not judged by an
    overfit probe."""
    from sklearn.linear_model import Ridge, RidgeCV
    from sklearn.model_selection import GroupKFold
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler
    sc = StandardScaler().fit(X_fit)
    Z = sc.transform(X_fit)
    n = len(X_fit)
    if lam is None:
        folds = min(5, len(set(groups)))
        if folds >= 2:
            cv = list(GroupKFold(n_splits=folds).split(Z, Y_fit, groups))
            fit_n = min(len(tr) for tr, _ in cv)
            # per-sample lambda: alpha scales with the rows a fold fits on
            pick = RidgeCV(alphas=[l * fit_n for l in LAMBDAS], cv=cv).fit(Z, Y_fit)
            lam = pick.alpha_ / fit_n
        else:
            lam = 1e-2
    ridge = Ridge(alpha=lam * n).fit(Z, Y_fit)
    knn = KNeighborsRegressor(n_neighbors=min(k, n)).fit(X_fit, Y_fit)
    return ridge.predict(sc.transform(X_test)), knn.predict(X_test), lam


def leave_one_sequence_out(X, Y, groups, k, lam):
    """Ridge and kNN predictions for every window from probes fit on the
    windows of all other sequences (the ridge lambda chosen once by grouped
    cross-validation over all windows when lam is None). Uses every window
    of a short recording, not only the held-out split's few sequences; the
    model itself may have trained on a test sequence's frames (never on its
    flow)."""
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if lam is None:
        _, _, lam = fit_predict(X, Y, groups, X[:1], k, None)
    # alpha for the mean fold size (folds differ by a sequence's windows),
    # k no larger than the smallest fold's fit set
    _, counts = np.unique(groups, return_counts=True)
    n_fit = len(X) - counts.mean()
    cv = LeaveOneGroupOut()
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=lam * n_fit))
    pr = cross_val_predict(ridge, X, Y, groups=groups, cv=cv)
    knn = KNeighborsRegressor(n_neighbors=max(1, min(k, len(X) - counts.max())))
    pk = cross_val_predict(knn, X, Y, groups=groups, cv=cv)
    return pr, pk, lam


def load_embedding(prefix, flow_rows):
    side = json.load(open(prefix + ".json"))
    X = np.load(prefix + ".npy").astype(np.float64)
    by_key = {(it["source"], tuple(it["frames"])): i
              for i, it in enumerate(side["items"])}
    idx = []
    for r in flow_rows:
        key = (r["source"], tuple(r["frames"]))
        if key not in by_key:
            fail(f"{prefix}.json has no window {key[0]} frames {list(key[1])}; "
                 f"embed the same windows the flow was computed for")
        idx.append(by_key[key])
    items = [side["items"][i] for i in idx]
    head = None  # the action head's own warp, where the model has one
    if all("action_motion" in it for it in items):
        head = np.array([[it["action_motion"][c] for c in HEAD_NAMES]
                         for it in items], dtype=np.float64)
    field = None  # a field head's node displacements [n, 2, G * G]
    if all("action_field" in it for it in items):
        field = np.array([[it["action_field"]["dx"], it["action_field"]["dy"]]
                          for it in items], dtype=np.float64)
    return X[idx], side.get("checkpoint", "?"), head, field


# The action head's motion (recompose embed: action_motion) against the
# oracle's global motion: no probe is fit, the head reads the motion itself.
HEAD_NAMES = ["dx", "dy", "dtheta"]
HEAD_TARGETS = ["dx", "dy", "rotation"]


def line_r2(x, y):
    """R^2 of y against the least-squares line through (x, y): the squared
    correlation (units and sign free: the head's pixels are the network's,
    the flow's the source's)."""
    x, y = x - x.mean(), y - y.mean()
    sxx, syy = (x * x).sum(), (y * y).sum()
    return float((x * y).sum() ** 2 / (sxx * syy)) if sxx > 0 and syy > 0 else None


def disjoint_pairs(rows, sel):
    """Index pairs (i, j), i < j, of the selected windows whose frame spans
    do not overlap within one sequence: overlapping windows are alike in
    every code and in the flow for the trivial reason that they show the
    same frames."""
    idx = np.flatnonzero(sel)
    a, b = np.triu_indices(len(idx), 1)
    a, b = idx[a], idx[b]
    src = np.array([r["source"] for r in rows])
    lo = np.array([min(r["frames"]) for r in rows])
    hi = np.array([max(r["frames"]) for r in rows])
    overlap = (src[a] == src[b]) & (lo[a] <= hi[b]) & (lo[b] <= hi[a])
    return a[~overlap], b[~overlap]


def field_rsa(X, F, pairs):
    """Spearman rank correlation, over window pairs, between the distance of
    their codes and the distance of their flow fields: 1 where a code orders
    windows by how alike their local motion is, 0 where it is unrelated. No
    probe is fit, so a short recording's handful of sequences (each with
    its walkers in other places) has nothing to overfit."""
    from scipy.stats import spearmanr
    a, b = pairs
    if len(a) < 3:
        return None
    dX = np.linalg.norm(X[a] - X[b], axis=1)
    dF = np.linalg.norm(F[a] - F[b], axis=1)
    return float(spearmanr(dX, dF).correlation)


def field_at_nodes(field, g):
    """The flow field [n, FIELD^2, 3] bilinearly interpolated at the g x g
    nodes of a field head (corner to corner of the crop; the stored cells'
    centres are at (k + 0.5) / FIELD): [n, 2, g * g], dx then dy."""
    n = len(field)
    f = field[..., :2].reshape(n, FIELD, FIELD, 2)
    u = np.clip(np.linspace(0, 1, g) * FIELD - 0.5, 0, FIELD - 1)
    k0 = np.minimum(np.floor(u).astype(int), FIELD - 2)
    t = u - k0
    def lerp(a, axis):  # along one axis of the cells
        lo, hi = np.take(a, k0, axis), np.take(a, k0 + 1, axis)
        shape = [1] * a.ndim
        shape[axis] = g
        return lo + (hi - lo) * t.reshape(shape)
    nodes = lerp(lerp(f, 1), 2)  # [n, g (rows), g (columns), 2]
    return nodes.reshape(n, g * g, 2).transpose(0, 2, 1)


def head_field_r2(head_field, flow_nodes, sel):
    """R^2 of one fitted line through every (head, flow) pair of the selected
    windows' nodes, for dx and for dy: does the head move the walkers where
    and as the flow says (units and sign free, as line_r2)?"""
    if head_field is None:
        return {t: None for t in ("dx", "dy")}
    return {t: line_r2(head_field[sel, c].ravel(), flow_nodes[sel, c].ravel())
            for c, t in enumerate(("dx", "dy"))}


def cmd_probe(args):
    flow = json.load(open(args.flow))
    rows = flow["rows"]
    split = np.array([r["split"] == "train" for r in rows])
    all_groups = np.array([r["source"] for r in rows])
    groups = all_groups[split]
    lam = None if args.ridge_lambda == "cv" else float(args.ridge_lambda)
    if split.sum() < 2 or (~split).sum() < 2:
        fail(f"{args.flow}: needs training and held-out windows "
             f"({split.sum()} and {(~split).sum()}); embed with --split all")
    G = np.array([[r["global"][n] for n in flow["global_names"]] for r in rows])
    if any("field" not in r for r in rows):
        fail(f"{args.flow}: written by an older flow_oracle.py (no per-cell "
             f"field); run its flow command again")
    field = np.array([r["field"] for r in rows]).reshape(len(rows), -1, 3)
    grid, where = grid_targets(field, args.grid)
    targets = {"global": G, "grid": grid, "where": where}
    flow_field = field[..., :2].reshape(len(rows), -1)
    rsa_pairs = {"heldout": disjoint_pairs(rows, ~split),
                 "all": disjoint_pairs(rows, np.ones(len(rows), bool))}
    report = {"flow": args.flow, "k": args.k, "ridge_lambda": args.ridge_lambda,
              "train_windows": int(split.sum()),
              "heldout_windows": int((~split).sum()),
              "sequences": len(set(all_groups)), "columns": {}}
    lines = []
    for spec in args.embeddings:
        if "=" not in spec:
            fail(f"'{spec}': give embeddings as NAME=PREFIX")
        name, prefix = spec.split("=", 1)
        X, ckpt, head, head_field = load_embedding(prefix, rows)
        col = {"prefix": prefix, "checkpoint": ckpt}
        flow_nodes = (None if head_field is None else
                      field_at_nodes(field, math.isqrt(head_field.shape[2])))
        for where, sel in (("head_field_heldout", ~split),
                           ("head_field_all", slice(None))):
            col[where] = head_field_r2(head_field, flow_nodes, sel)
        gi = [flow["global_names"].index(t) for t in HEAD_TARGETS]
        for where, sel in (("head_heldout", ~split), ("head_all", slice(None))):
            col[where] = {t: (None if head is None else
                              line_r2(head[sel, k], G[sel, gi[k]]))
                          for k, t in enumerate(HEAD_TARGETS)}
        for tname, Y in targets.items():
            pr, pk, used = fit_predict(X[split], Y[split], groups, X[~split],
                                       args.k, lam)
            col[f"ridge_lambda_{tname}"] = used
            lr, lk, _ = leave_one_sequence_out(X, Y, all_groups, args.k, lam)
            for probe, pred, truth in (("ridge", pr, Y[~split]),
                                       ("knn", pk, Y[~split]),
                                       ("loso_ridge", lr, Y),
                                       ("loso_knn", lk, Y)):
                per, pooled = r2_scores(truth, pred)
                if tname == "global":
                    col[f"{probe}_global"] = {
                        n: (None if np.isnan(v) else float(v))
                        for n, v in zip(flow["global_names"], per)}
                else:
                    col[f"{probe}_{tname}"] = float(pooled)
        col["field_rsa"] = {where: field_rsa(X, flow_field, pairs)
                            for where, pairs in rsa_pairs.items()}
        report["columns"][name] = col
    names = list(report["columns"])
    print(f"flow-oracle probes: fit on {report['train_windows']} training "
          f"windows, R^2 on {report['heldout_windows']} held-out windows "
          f"(ridge lambda {args.ridge_lambda}, kNN k {args.k}; "
          f"flow: {flow['method']}; grid: {args.grid}x{args.grid} cells' mean "
          f"flow, where: their share of moving pixels, each R^2 pooled over "
          f"the cells); LOSO: every window, probes fit on the other "
          f"{report['sequences'] - 1} sequences; field RSA: rank correlation "
          f"of code distance and flow-field distance over pairs of windows "
          f"that share no frames (held-out, and all); action head: the model's "
          f"own warp against the flow, a fitted line's R^2 (held-out windows, "
          f"and all; field: a field head's nodes against the flow there), n/a "
          f"without a head")
    print(f"{'metric':<31}" + "".join(f" {n:>12}" for n in names))
    labels = {"ridge": "ridge", "knn": "kNN", "loso_ridge": "LOSO ridge",
              "loso_knn": "LOSO kNN"}
    for probe in ("ridge", "knn", "loso_ridge", "loso_knn"):
        for n in flow["global_names"]:
            lines.append((f"{labels[probe]} R^2 {n}",
                          [report["columns"][c][f"{probe}_global"][n] for c in names]))
        for tname in ("grid", "where"):
            lines.append((f"{labels[probe]} R^2 {tname}",
                          [report["columns"][c][f"{probe}_{tname}"]
                           for c in names]))
    for where, label in (("heldout", ""), ("all", ", all")):
        lines.append((f"field RSA{label}",
                      [report["columns"][c]["field_rsa"][where] for c in names]))
    for where, label in (("head_heldout", "head"), ("head_all", "head, all")):
        for t in HEAD_TARGETS:
            lines.append((f"action {label} R^2 {t}",
                          [report["columns"][c][where][t] for c in names]))
    for where, label in (("head_field_heldout", "field"),
                         ("head_field_all", "field, all")):
        for t in ("dx", "dy"):
            lines.append((f"action {label} R^2 {t}",
                          [report["columns"][c][where][t] for c in names]))
    for tname in targets:
        lines.append((f"ridge lambda ({tname})",
                      [report["columns"][c][f"ridge_lambda_{tname}"] for c in names]))
    for label, vals in lines:
        print(f"{label:<31}" + "".join(
            f" {'n/a':>12}" if v is None or (isinstance(v, float) and math.isnan(v))
            else f" {v:12.4g}" if label.startswith("ridge lambda") else f" {v:12.4f}"
            for v in vals))
    out = args.out or re.sub(r"\.json$", "", args.flow) + "-probe.json"
    json.dump(report, open(out, "w"), indent=1,
              default=lambda v: None)
    print(f"flow_oracle: wrote {out}")


# ---- self-test: the oracle's own accuracy ------------------------------------

def texture(h, w, seed):
    """Smoothed noise at several scales: structure everywhere, no edges."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w))
    for s in (2, 5, 11, 23):
        img += cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), s) * s
    img = (img - img.mean()) / img.std()
    return np.clip(128 + 40 * img, 0, 255)


def write_clip(folder, base, n, vx, vy, omega):
    """Frames k = 0..n-1 of `base` moved by k * (vx, vy) px and turned by
    k * omega about the centre, cropped to the middle (no borders)."""
    os.makedirs(folder, exist_ok=True)
    H, W = base.shape
    h, w = H // 2, W // 2
    c = ((W - 1) / 2, (H - 1) / 2)
    for k in range(n):
        M = cv2.getRotationMatrix2D(c, -math.degrees(k * omega), 1.0)
        M[:, 2] += (k * vx, k * vy)
        img = cv2.warpAffine(base, M, (W, H), flags=cv2.INTER_CUBIC)
        crop = img[H // 4:H // 4 + h, W // 4:W // 4 + w]
        cv2.imwrite(os.path.join(folder, f"frame_{k:04d}.png"),
                    np.clip(crop, 0, 255).astype(np.uint8))


def cmd_selftest(args):
    need_cv2()
    import tempfile
    d = args.dir or tempfile.mkdtemp(prefix="flow_oracle_")
    n, worst = 5, 0.0
    base = texture(480, 640, 1)
    cases = [("shift", 1.7, -0.6, 0.0), ("shift2", -2.4, 1.3, 0.0),
             ("turn", 0.0, 0.0, 0.02), ("both", 1.0, 0.5, -0.015)]
    items = []
    for name, vx, vy, om in cases:
        write_clip(os.path.join(d, "footage", name), base, n, vx, vy, om)
        items.append({"row": len(items), "source": name, "split": "train",
                      "frames": list(range(n)), "crop": [0.25, 0.25, 0.75, 0.75]})
    side = os.path.join(d, "clips.json")
    json.dump({"data_source": "shards", "data_path": os.path.join(d, "x"),
               "items": items}, open(side, "w"))
    ns = argparse.Namespace(sidecar=side, footage=os.path.join(d, "footage"),
                            out=None, method=args.method, moving=0.5)
    cmd_flow(ns)
    res = json.load(open(os.path.join(d, "clips-flow.json")))["rows"]
    ok = True
    print(f"{'clip':<8} {'true dx':>8} {'dx':>8} {'true dy':>8} {'dy':>8} "
          f"{'true rot':>9} {'rot':>9}   (net over {n - 1} steps)")
    for (name, vx, vy, om), r in zip(cases, res):
        g = r["global"]
        T = n - 1
        # the centre turns in place, so the median flow is the translation
        err_px = max(abs(g["dx"] - T * vx), abs(g["dy"] - T * vy)) / T
        err_rot = abs(g["rotation"] - T * om) / T
        print(f"{name:<8} {T * vx:8.3f} {g['dx']:8.3f} {T * vy:8.3f} "
              f"{g['dy']:8.3f} {T * om:9.4f} {g['rotation']:9.4f}")
        worst = max(worst, err_px)
        ok = ok and err_px < 0.2 and err_rot < 0.002
    print(f"worst translation error {worst:.3f} px per frame (must be < 0.2)")
    if not ok:
        fail("the flow oracle does not recover the known motion")
    print("selftest: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flow", help="flow targets for embedded windows")
    f.add_argument("sidecar", help="PREFIX.json written by recompose embed")
    f.add_argument("--footage", help="folder holding the packed sources "
                   "(default: data/footage beside the sidecar's data.path)")
    f.add_argument("--out", help="default: PREFIX-flow.json")
    f.add_argument("--method", default="dis", choices=["dis", "farneback"])
    f.add_argument("--moving", type=float, default=0.5,
                   help="pixels per step above which a pixel moves")
    p = sub.add_parser("probe", help="ridge and kNN probes to flow targets")
    p.add_argument("flow", help="FLOW.json written by the flow command")
    p.add_argument("embeddings", nargs="+", metavar="NAME=PREFIX")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--grid", type=int, default=4,
                   help=f"G of the G x G grid targets (a divisor of {FIELD})")
    p.add_argument("--ridge-lambda", default="cv",
                   help="per-sample ridge penalty on standardised features, "
                   "or cv (default): chosen per embedding and target by "
                   "5-fold cross-validation grouped by sequence")
    p.add_argument("--out", help="default: FLOW-probe.json")
    s = sub.add_parser("selftest", help="accuracy on known motion")
    s.add_argument("--dir", help="keep the clips here")
    s.add_argument("--method", default="dis", choices=["dis", "farneback"])
    args = ap.parse_args()
    {"flow": cmd_flow, "probe": cmd_probe, "selftest": cmd_selftest}[args.cmd](args)


if __name__ == "__main__":
    main()
