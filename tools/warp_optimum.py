#!/usr/bin/python3
"""warp_optimum.py: what the action term's image error rewards on footage,
with no network in the way (SPEC section 4, "The code acts on images").

For windows that `recompose embed` wrote (its sidecar names the source, the
frames and the crop), take the first frame and the frame k steps later as
the network sees them (the crop scaled to the model's image size, gray),
and find for every window on its own the G x G field of displacements that
minimises the action term's error (bilinear warp of the first frame, error
pooled by 1, 2, 4 inside the border, optionally only where the frames
change: loss.act_kind = grid, act_scales, act_border, act_moving), by Adam
on the field itself, optionally with a penalty lam * mean(d^2) on the
displacements (pixels). Beside it, the field made from OpenCV DIS optical
flow of the same pair (backward, averaged over each node's cell) and the
identity. Prints per k: the error of each, and the R^2 of one line through
every node of the best field against the flow's. If the best field does
not follow the flow, no head can learn the motion from this error: the
optimum of the objective is something else.

Usage:
  tools/warp_optimum.py SIDECAR.json [--footage DIR] [--steps 1,4]
                        [--grid 8] [--moving 0.05] [--border 8]
                        [--penalty 0] [--every 3] [--iters 400]

Needs Debian's python3-opencv, python3-numpy and python3-torch (for
/usr/bin/python3).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow_oracle as fo  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "tests", "ref"))
import model_ref as ref  # noqa: E402


def network_frames(src, items, k, size):
    """Frame k of each window, gray in [0, 1], the crop scaled to size."""
    import cv2
    out = []
    for it in items:
        img = src[it["source"]][it["frames"][k]]
        h, w = img.shape
        x0, y0, x1, y1 = fo.crop_box(it.get("crop"), w, h)
        out.append(cv2.resize(img[y0:y1, x0:x1], (size, size),
                              interpolation=cv2.INTER_AREA) / 255.0)
    return np.array(out, np.float32)[:, None]


class WarpError:
    """The action term's error per window (the mean over windows of
    tests/ref/model_ref.py's warp_error, which the parity fixture checks
    against the C code): a field of G x G node displacements (normalised
    units, corner to corner) warping each first frame onto its last, the
    pooled squared error inside the border at scales 1, 2, 4; with moving
    > 0 only where the frames change."""

    def __init__(self, first, last, grid, moving, border, scales=(1, 2, 4)):
        import torch
        self.first, self.last = torch.tensor(first), torch.tensor(last)
        self.n, self.S, self.G = first.shape[0], first.shape[-1], grid
        self.moving, self.border, self.scales = moving, border, scales

    def __call__(self, d):
        """Mean error per window of the fields d [n][2 G^2]."""
        return ref.warp_error(self.first, self.last, d, self.G, self.scales,
                              self.border, self.moving) / self.n


def flow_field(first, last, grid):
    """The field OpenCV DIS flow gives the same pair: backward flow (last to
    first, where the warp samples), averaged over each node's cell, in the
    warp's normalised units."""
    import cv2
    import torch
    import torch.nn.functional as F
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    u8 = lambda x: np.clip(np.round(x[0] * 255), 0, 255).astype(np.uint8)
    bw = np.stack([dis.calc(u8(b), u8(a), None) for a, b in zip(first, last)])
    S = first.shape[-1]
    f = F.interpolate(torch.tensor(bw).permute(0, 3, 1, 2), size=(grid, grid),
                      mode="area") * 2 / S
    return f.reshape(len(first), -1)


def best_field(err, penalty, iters):
    import torch
    d = torch.zeros(err.n, 2 * err.G * err.G, requires_grad=True)
    opt = torch.optim.Adam([d], lr=0.003)
    for _ in range(iters):
        opt.zero_grad()
        px = d * err.S / 2
        loss = err(d) + penalty * (px ** 2).mean(1).mean()
        loss.backward()
        opt.step()
    return d.detach()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sidecar")
    ap.add_argument("--footage", help="default: data/footage beside the "
                    "sidecar's data path")
    ap.add_argument("--steps", default="1,4", help="k: steps of the window "
                    "from its first frame")
    ap.add_argument("--grid", type=int, default=8)
    ap.add_argument("--moving", type=float, default=0.05)
    ap.add_argument("--border", type=int, default=8)
    ap.add_argument("--penalty", type=float, default=0.0)
    ap.add_argument("--every", type=int, default=3, help="every n-th window")
    ap.add_argument("--iters", type=int, default=400)
    args = ap.parse_args()
    try:
        import cv2  # noqa: F401
        import torch
    except ImportError as e:
        fo.fail(f"{e.name} is missing: install Debian's python3-opencv and "
                f"python3-torch and run this with /usr/bin/python3")
    torch.manual_seed(0)
    side = json.load(open(args.sidecar))
    if side.get("data_source") != "shards" or not side.get("items"):
        fo.fail(f"{args.sidecar}: not a sidecar of real footage")
    items = side["items"][::args.every]
    footage = args.footage or os.path.join(
        os.path.dirname(os.path.normpath(side.get("data_path", "."))), "footage")
    steps = [int(k) for k in args.steps.split(",")]
    short = min(len(it["frames"]) for it in items) - 1
    if max(steps) > short:
        fo.fail(f"--steps {args.steps}: windows have {short} steps")
    src = {}
    for it in items:
        if it["source"] not in src:
            src[it["source"]] = fo.Frames(fo.source_path(it["source"], footage))
    for name, frames in src.items():
        frames.preload(sorted({it["frames"][k] for it in items
                               if it["source"] == name for k in [0] + steps}))
    size = int(side.get("image_size", 64))
    first = network_frames(src, items, 0, size)
    print(f"warp_optimum: {len(items)} windows, {size} px, {args.grid} x "
          f"{args.grid} field, moving {args.moving}, border {args.border}, "
          f"penalty {args.penalty}; errors per window (mean), R^2 of the best "
          f"field against the flow's (one line through every node)")
    print(f"{'k':>3} {'identity':>10} {'flow field':>11} {'best':>10} "
          f"{'R^2 dx':>7} {'R^2 dy':>7} {'|best| px':>10} {'|flow| px':>10}")
    for k in steps:
        last = network_frames(src, items, k, size)
        err = WarpError(first, last, args.grid, args.moving, args.border)
        flow = flow_field(first, last, args.grid)
        d = best_field(err, args.penalty, args.iters)
        zero = torch.zeros_like(d)
        e = [float(err(x)) for x in (zero, flow, d)]
        dd = d.numpy().reshape(len(items), 2, -1)
        rr = flow.numpy().reshape(len(items), 2, -1)
        r2 = [fo.line_r2(dd[:, c].ravel(), rr[:, c].ravel()) for c in (0, 1)]
        r2 = [float("nan") if v is None else v for v in r2]
        print(f"{k:>3} {e[0]:10.5f} {e[1]:11.5f} {e[2]:10.5f} {r2[0]:7.3f} "
              f"{r2[1]:7.3f} {np.abs(dd).mean() * size / 2:10.2f} "
              f"{np.abs(rr).mean() * size / 2:10.2f}", flush=True)


if __name__ == "__main__":
    main()
