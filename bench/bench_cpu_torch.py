"""bench_cpu_torch.py: the PyTorch side of bench/bench_cpu.sh.

Trains the reference model of tests/ref/model_ref.py (same model, same loss,
the action term included)
on the batches that `bench_cpu dump` wrote (the frames and plans that
recompose's trainer uses at steps 0..K-1) from the same initial weights, with
the same optimiser work (global-norm clipping, AdamW without decay on biases)
and the same thread count, and prints one line in bench_cpu's format:

    torch tuples_per_s X step_ms X peak_rss_mb X first_loss X last_loss X ...

usage: bench_cpu_torch.py CONFIG DIR [--batches K] [--steps N] [--warmup W]

CONFIG is the effective config `bench_cpu dump` wrote beside the batches
(DIR/config.ini: overrides included), for the model's shape and the loss
(the hinge and, where loss.w_act > 0, the action term).

                          [--threads N] [--layout nchw|channels_last]

--layout channels_last keeps the convolution weights (and so oneDNN's
activations) channels-last, PyTorch's faster layout on many CPUs;
bench_cpu.sh tries both and races recompose against the faster.

The first loss is computed from identical weights and input, so it must
agree with recompose's to float32 rounding: bench_cpu.sh checks it.
"""

import argparse
import configparser
import os
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "ref"))
import model_ref  # noqa: E402


def load_batch(path):
    t, meta = model_ref.read_safetensors(path)
    shape = tuple(int(v) for v in meta["frames_shape"].split(","))
    i64 = lambda name: torch.from_numpy(t[name].astype(np.int64))
    # B tuples; the frames hold their clips and the clips' twins
    B = int(meta.get("batch", shape[0]))
    plan = model_ref.Plan(
        B=B, T=shape[1] - 1,
        pair_clip=i64("pair_clip"), pair_i=i64("pair_i"), pair_j=i64("pair_j"),
        seq_len=i64("seq_len"), seq_pair=i64("seq_pair"),
        loss_a=i64("loss_a"), loss_b=i64("loss_b"),
        loss_positive=i64("loss_positive"),
        loss_weight=torch.from_numpy(t["loss_weight"]),
        loss_kind=(i64("loss_kind") if "loss_kind" in t
                   else torch.zeros(len(t["loss_a"]), dtype=torch.int64)),
        n_clips=shape[0])
    frames = torch.from_numpy(t["frames"].reshape(shape))
    return frames, plan


def under_bf16_autocast(convolve):
    """convolve (an Encoder's conv + ReLU stack) under CPU autocast:
    bfloat16 operands and activations; Encoder.forward pools and applies
    fc in float32."""
    def run(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return convolve(x)
    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("dir")
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layout", choices=["nchw", "channels_last"], default="nchw")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    # peak RSS once Python and torch are loaded, before any work
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    with open(a.config) as f:
        text = f.read()
    shape = model_ref.ModelShape.from_ini(text)
    cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    cp.read_string(text)
    get = lambda sec, key, d: cp.getfloat(sec, key) if cp.has_option(sec, key) else d
    loss_cfg = model_ref.LossConfig.from_ini(text)

    batches = [load_batch(os.path.join(a.dir, f"batch{k}.safetensors"))
               for k in range(a.batches)]
    model = model_ref.RecomposeRef(shape)
    init, _ = model_ref.read_safetensors(os.path.join(a.dir, "init.safetensors"))
    model.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()},
                          strict=True)
    if a.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": get("train", "weight_decay", 1e-4)},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=get("train", "lr", 2e-3),
        betas=(get("train", "beta1", 0.9), get("train", "beta2", 0.999)),
        eps=get("train", "eps", 1e-8))
    clip = get("train", "clip_norm", 1.0)
    # train.precision = bf16: the encoder's convolutions under PyTorch's CPU
    # autocast (bfloat16 operands and activations through oneDNN), the rest
    # in float32, as the C side rounds its convolutions' operands
    bf16 = cp.has_option("train", "precision") and \
        cp.get("train", "precision").strip() == "bf16"
    if bf16:
        model.encoder.convolve = under_bf16_autocast(model.encoder.convolve)

    warm, first, last, t0, pairs = a.warmup, float("nan"), float("nan"), 0.0, 0
    for s in range(warm + a.steps):
        if s == warm:
            t0 = time.perf_counter()
        frames, plan = batches[s % a.batches]
        loss, _ = model_ref.step_loss(model, frames, plan, loss_cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if s == 0:
            first = loss.item()
        last = loss.item()
        if s >= warm:
            pairs += plan.n_pairs
    dt = time.perf_counter() - t0
    B = batches[0][1].B
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch tuples_per_s {a.steps * B / dt:.2f} "
          f"step_ms {dt / a.steps * 1e3:.2f} peak_rss_mb {rss:.1f} "
          f"base_rss_mb {base:.1f} "
          f"first_loss {first:.6f} last_loss {last:.6f} "
          f"pairs_per_tuple {pairs / a.steps / B:.2f} "
          f"threads {torch.get_num_threads()} layout {a.layout} "
          f"mkldnn {int(torch.backends.mkldnn.is_available())} "
          f"precision {'bf16' if bf16 else 'fp32'}")


if __name__ == "__main__":
    main()
