#!/usr/bin/python3
"""Training curves from recompose's metrics.jsonl.

usage: tools/plot_training.py RUN_DIR [RUN_DIR...] --out curves.png [--smooth N]

Each RUN_DIR holds metrics.jsonl (one JSON object per logged step, written
by `recompose train`). Plots the loss (raw and smoothed by a running mean of
N log points), the learning rate, the global gradient norm before clipping,
and throughput, one line per run; where the runs logged it, the loss split
by pair kind (positives and negatives apart, smoothed), which shows the
constraints a run satisfies and those it gives up. Needs matplotlib (Debian:
python3-matplotlib); run with /usr/bin/python3.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    rows = []
    if not os.path.isfile(path):
        sys.exit(f"{run_dir}: no metrics.jsonl here; give a run directory "
                 f"(recompose train --out DIR)")
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e}); is the run still writing?")
    if not rows:
        sys.exit(f"{path}: no metrics yet")
    return rows


# the pair kinds that pull together (sampler.h, rc_pair_kind_positive)
POSITIVE_KINDS = ("full_skip", "loop_ident", "full_tex")


def running_mean(values, n):
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > n:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def series(rows, key):
    pts = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("runs", nargs="+", help="training output directories")
    ap.add_argument("--out", required=True, help="PNG (or SVG) to write")
    ap.add_argument("--smooth", type=int, default=10,
                    help="running mean over this many log points (default 10)")
    ap.add_argument("--labels", help="comma-separated run labels")
    ap.add_argument("--dpi", type=int, default=80)
    a = ap.parse_args()
    labels = a.labels.split(",") if a.labels else [os.path.basename(os.path.normpath(r)) for r in a.runs]
    if len(labels) != len(a.runs):
        sys.exit("--labels needs one label per run")
    runs = [read_metrics(r) for r in a.runs]
    by_kind = all("loss_by_kind" in rows[-1] for rows in runs)
    fig, ax = plt.subplots(3 if by_kind else 2, 2,
                           figsize=(9, 9 if by_kind else 6))
    styles = ["-", "--", ":", "-."]
    for i, (rows, label) in enumerate(zip(runs, labels)):
        s, loss = series(rows, "loss")
        line, = ax[0, 0].plot(s, loss, alpha=0.25, lw=0.8)
        ax[0, 0].plot(s, running_mean(loss, a.smooth), color=line.get_color(),
                      lw=1.6, label=label)
        ax[0, 1].plot(*series(rows, "lr"), label=label)
        ax[1, 0].plot(*series(rows, "grad_norm"), lw=0.8, label=label)
        ax[1, 1].plot(*series(rows, "tuples_per_s"), lw=0.8, label=label)
        if by_kind:
            steps = [r["step"] for r in rows]
            for k, kind in enumerate(rows[-1]["loss_by_kind"]):
                # rows logged before a kind existed (a resumed run) count 0
                v = running_mean([r.get("loss_by_kind", {}).get(kind, 0.0)
                                  for r in rows], a.smooth)
                positive = kind in POSITIVE_KINDS
                # colour: the pair kind; line style: the run
                ax[2, 0 if positive else 1].plot(
                    steps, v, ls=styles[i % len(styles)], lw=1.2, color=f"C{k}",
                    label=kind if len(runs) == 1 else f"{label}: {kind}")
    ax[0, 0].set_title(f"loss (light: per log point, dark: mean of {a.smooth})")
    ax[0, 0].set_yscale("log")
    ax[0, 1].set_title("learning rate")
    ax[1, 0].set_title("gradient norm (before clipping)")
    ax[1, 0].set_yscale("log")
    ax[1, 1].set_title("throughput (tuples / s)")
    if by_kind:
        ax[2, 0].set_title("positive pairs: w d^2 (pulled together)")
        ax[2, 1].set_title("negative pairs: hinge (pushed apart)")
        for x in ax[2]:
            x.set_yscale("log")
            x.legend(fontsize=7)
    for x in ax.flat:
        x.set_xlabel("step")
        x.grid(alpha=0.3)
    ax[0, 0].legend()
    fig.tight_layout()
    fig.savefig(a.out, dpi=a.dpi)
    print(f"plot_training: wrote {a.out}")


if __name__ == "__main__":
    main()
