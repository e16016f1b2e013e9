#!/usr/bin/python3
"""2-D maps of motion embeddings written by `recompose embed`.

usage: tools/plot_embeddings.py PREFIX --out map.png [--no-tsne] [--title T]

Reads PREFIX.npy (float32 [N][D]) and PREFIX.json (the sidecar) and draws the
embeddings projected to 2-D by PCA and by t-SNE, side by side. Synthetic
clips are coloured by the direction of their true net translation (a cyclic
colour map: similar colours, similar directions), with the marker showing
the rotation sign (o: counter-clockwise, x: clockwise) and the size the
speed. Real footage is coloured by time in the source (frame number when the
sidecar has no times), one marker shape per sequence. Needs matplotlib and
scikit-learn (Debian: python3-matplotlib python3-sklearn); run with
/usr/bin/python3.
"""
import argparse
import os
import json
import math
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

MARKERS = "o^sDvP*Xh<>p"


def load(prefix):
    for ext in (".npy", ".json"):
        if not os.path.isfile(prefix + ext):
            sys.exit(f"{prefix}{ext}: not found; give the PREFIX that "
                     f"'recompose embed --out PREFIX' wrote (PREFIX.npy, "
                     f"PREFIX.json)")
    emb = np.load(prefix + ".npy")
    with open(prefix + ".json") as f:
        side = json.load(f)
    items = side["items"]
    if emb.ndim != 2 or emb.shape[0] != len(items):
        sys.exit(f"{prefix}: {emb.shape} embeddings but {len(items)} sidecar rows")
    return emb.astype(np.float64), side, items


def projections(emb, tsne, seed):
    out = []
    pca = PCA(n_components=2, random_state=seed)
    p = pca.fit_transform(emb)
    ev = pca.explained_variance_ratio_
    out.append((p, f"PCA ({100 * ev[0]:.0f}% + {100 * ev[1]:.0f}% of variance)"))
    if tsne and emb.shape[0] >= 5:
        perp = max(2.0, min(30.0, (emb.shape[0] - 1) / 3.0))
        t = TSNE(n_components=2, perplexity=perp, init="pca",
                 random_state=seed).fit_transform(emb)
        out.append((t, f"t-SNE (perplexity {perp:.0f})"))
    return out


def draw_synthetic(ax, xy, items):
    ang = np.array([math.atan2(it["net_dy"], it["net_dx"]) for it in items])
    speed = np.array([math.hypot(it["net_dx"], it["net_dy"]) for it in items])
    rot = np.array([it["net_dtheta"] for it in items])
    size = 8 + 40 * speed / max(speed.max(), 1e-9)
    sc = None
    for sign, marker in ((1, "o"), (-1, "x")):
        m = (rot >= 0) if sign > 0 else (rot < 0)
        sc = ax.scatter(xy[m, 0], xy[m, 1], c=ang[m], cmap="hsv", vmin=-math.pi,
                        vmax=math.pi, s=size[m], marker=marker, linewidths=0.8,
                        alpha=0.85)
    return sc, "direction of net translation (rad)"


def draw_real(ax, xy, items):
    times = [it.get("times_s") for it in items]
    if all(t and t[0] is not None for t in times):
        c = np.array([0.5 * (t[0] + t[-1]) for t in times])
        label = "time in the source (s, window centre)"
    else:
        c = np.array([0.5 * (it["frames"][0] + it["frames"][-1]) for it in items])
        label = "frame number in the source (window centre)"
    sources = sorted({it["source"] for it in items})
    sc = None
    for k, s in enumerate(sources):
        m = np.array([it["source"] == s for it in items])
        sc = ax.scatter(xy[m, 0], xy[m, 1], c=c[m], cmap="viridis",
                        vmin=c.min(), vmax=c.max(), s=12,
                        marker=MARKERS[k % len(MARKERS)], alpha=0.85,
                        label=s if len(sources) <= 12 else None)
    if 1 < len(sources) <= 12:
        ax.legend(fontsize=6, markerscale=0.8, loc="best")
    return sc, label


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("prefix", help="PREFIX of PREFIX.npy and PREFIX.json")
    ap.add_argument("--out", required=True, help="PNG (or SVG) to write")
    ap.add_argument("--no-tsne", action="store_true", help="PCA only")
    ap.add_argument("--title", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dpi", type=int, default=80)
    a = ap.parse_args()
    emb, side, items = load(a.prefix)
    synthetic = side.get("data_source") == "synthetic"
    panels = projections(emb, not a.no_tsne, a.seed)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6),
                             squeeze=False)
    for ax, (xy, name) in zip(axes[0], panels):
        sc, label = (draw_synthetic if synthetic else draw_real)(ax, xy, items)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=list(axes[0]), label=label, shrink=0.85)
    title = a.title or f"{len(items)} clips, {side.get('checkpoint')} (step {side.get('step')})"
    fig.suptitle(title, fontsize=10)
    fig.savefig(a.out, dpi=a.dpi)
    print(f"plot_embeddings: wrote {a.out}")


if __name__ == "__main__":
    main()
