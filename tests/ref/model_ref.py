"""model_ref.py: an independent PyTorch implementation of the recompose model
and loss (SPEC sections 1, 3 and 4), used as the oracle of the C/CUDA code.

It is written from the SPEC, not from the C sources, and built from stock
PyTorch pieces (nn.Conv2d, nn.Linear, nn.LSTM over a PackedSequence, autograd)
so that agreement with recompose means something:

    frames --pairs--> conv+ReLU ... --> global average pool --> encoder.fc
           --> per-sequence steps --> LSTM (zero state) --> h_last --> head
           --> phi (the motion embedding) --> contrastive hinge loss

Parameter names are exactly recompose's (include/recompose/model.h):

    encoder.conv{i}.weight/bias, encoder.fc.weight/bias,
    composer.weight_ih, composer.weight_hh, composer.bias,
    head.weight/bias

so `model.load_state_dict(tensors, strict=True)` takes a recompose checkpoint
as it is. recompose keeps one LSTM bias (torch's b_ih + b_hh); here it is fed
to nn.LSTM as bias_ih_l0 beside a bias_hh_l0 of zeros.

A batch is described by an explicit Plan (the counterpart of rc_batch_plan in
include/recompose/sampler.h): the distinct ordered frame pairs, for every
sequence the pair index of each step, and the loss pairs. Each distinct pair
is encoded once and gathered into every step that uses it, so its gradient is
the sum over its uses (autograd does this by itself). sample_tuple() and
build_plan() draw tuples and build plans by the same rules as sampler.h (not
the same random numbers), for benchmarks.

The module also holds a small safetensors reader/writer (the safetensors
package is not a dependency): read_safetensors(), write_safetensors().

Everything works in any dtype / device: model.to(torch.float64) for the
oracle, model.to("cuda") for benchmarks.
"""

from __future__ import annotations

import configparser
import json
import math
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

# ---- model shape ------------------------------------------------------------


@dataclass
class ModelShape:
    """The model's hyper-parameters (rc_model_shape). The pair input has
    2 * in_channels channels; conv layer k pads by conv_kernels[k] // 2."""

    in_channels: int = 1
    image_size: int = 64
    conv_channels: Tuple[int, ...] = (16, 32, 64, 64)
    conv_kernels: Tuple[int, ...] = (5, 3, 3, 3)
    conv_strides: Tuple[int, ...] = (2, 2, 2, 2)
    feature_dim: int = 128
    hidden: int = 128
    embed_dim: int = 64
    pool: str = "mean"  # model.pool: mean (global average), the only one
    # The action head (loss.w_act > 0): a linear map of phi to an affine warp
    # (6 outputs, act_kind affine or expm) or a field of act_grid^2
    # displacements per axis (act_kind grid); 0 outputs: no head.
    action_outputs: int = 0

    def __post_init__(self):
        self.conv_channels = tuple(int(c) for c in self.conv_channels)
        self.conv_kernels = tuple(int(k) for k in self.conv_kernels)
        self.conv_strides = tuple(int(s) for s in self.conv_strides)
        n = len(self.conv_channels)
        if n < 1 or len(self.conv_kernels) != n or len(self.conv_strides) != n:
            raise ValueError(
                "conv_channels, conv_kernels and conv_strides need one entry "
                f"per conv layer; got {self.conv_channels}, "
                f"{self.conv_kernels}, {self.conv_strides}")
        if any(k % 2 == 0 for k in self.conv_kernels):
            raise ValueError(f"conv kernels must be odd: {self.conv_kernels}")
        if self.pool != "mean":
            raise ValueError(f"model.pool is mean (flatten was removed), "
                             f"not {self.pool!r}")

    @staticmethod
    def tiny() -> "ModelShape":
        """SPEC section 5, the CPU default."""
        return ModelShape()

    @staticmethod
    def paper() -> "ModelShape":
        """SPEC section 5, the GPU preset."""
        return ModelShape(in_channels=3, image_size=128,
                          conv_channels=(64, 128, 256, 256, 512),
                          conv_kernels=(5, 3, 3, 3, 3),
                          conv_strides=(2, 2, 2, 2, 1),
                          feature_dim=512, hidden=512, embed_dim=128)

    @staticmethod
    def from_ini(text: str) -> "ModelShape":
        """From recompose's INI config text (as stored in a checkpoint's
        metadata "config"): [model] conv_*, feature_dim, hidden, embed_dim
        and [data] channels, image_size. Missing keys take the defaults."""
        cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"),
                                       interpolation=None)
        cp.read_string(text)
        d = ModelShape()

        def ints(sec, key, default):
            if not cp.has_option(sec, key):
                return default
            return tuple(int(v) for v in cp.get(sec, key).split(","))

        def one(sec, key, default):
            return int(cp.get(sec, key)) if cp.has_option(sec, key) else default

        action = 0
        if cp.has_option("loss", "w_act") and float(cp.get("loss", "w_act")) > 0:
            kind = cp.get("loss", "act_kind").strip() if cp.has_option(
                "loss", "act_kind") else "affine"
            grid = one("loss", "act_grid", 4)
            action = 2 * grid * grid if kind == "grid" else 6

        return ModelShape(
            in_channels=one("data", "channels", d.in_channels),
            image_size=one("data", "image_size", d.image_size),
            conv_channels=ints("model", "conv_channels", d.conv_channels),
            conv_kernels=ints("model", "conv_kernels", d.conv_kernels),
            conv_strides=ints("model", "conv_strides", d.conv_strides),
            feature_dim=one("model", "feature_dim", d.feature_dim),
            hidden=one("model", "hidden", d.hidden),
            embed_dim=one("model", "embed_dim", d.embed_dim),
            pool=(cp.get("model", "pool").strip() if cp.has_option("model", "pool")
                  else d.pool),
            action_outputs=action)


# ---- the model -----------------------------------------------------------------


class Encoder(nn.Module):
    """Pair encoder: [P][2C][S][S] -> [P][F]. conv{k} + ReLU, global average
    pooling, then the linear encoder.fc (no activation)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        self.n_conv = len(shape.conv_channels)
        c_in = 2 * shape.in_channels
        for k, (c_out, ks, st) in enumerate(zip(shape.conv_channels,
                                                shape.conv_kernels,
                                                shape.conv_strides)):
            setattr(self, f"conv{k}",
                    nn.Conv2d(c_in, c_out, ks, stride=st, padding=ks // 2))
            c_in = c_out
        self.fc = nn.Linear(c_in, shape.feature_dim)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The conv{k} + ReLU stack alone (what train.precision = bf16
        rounds): [P][2C][S][S] -> [P][C_last][s][s]."""
        for k in range(self.n_conv):
            x = F.relu(getattr(self, f"conv{k}")(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convolve(x).float().mean(dim=(2, 3)))


class Composer(nn.Module):
    """LSTM over the pair features of each sequence, from a zero state;
    returns h at each sequence's last step. Parameters under recompose's
    names; the computation is torch.nn.LSTM on a PackedSequence.

    The nn.LSTM is deliberately NOT a registered submodule (its parameter
    names would leak into the state dict): it holds no parameters of its own,
    and each forward assigns ours to its weight slots. nn.LSTM keeps its flat
    weight list in step with such assignments (RNNBase.__setattr__)."""

    def __init__(self, feature_dim: int, hidden: int):
        super().__init__()
        self.feature_dim, self.hidden = feature_dim, hidden
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden, feature_dim))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden, hidden))
        self.bias = nn.Parameter(torch.empty(4 * hidden))
        lstm = nn.LSTM(feature_dim, hidden, batch_first=True)
        for name in lstm._flat_weights_names:
            delattr(lstm, name)
        object.__setattr__(self, "_lstm", lstm)

    def forward(self, steps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """steps [S][T][F] (padding ignored), lengths [S] in 1..T -> [S][H]."""
        lstm = self._lstm
        zero = torch.zeros_like(self.bias)
        for name, value in zip(lstm._flat_weights_names,
                               (self.weight_ih, self.weight_hh, self.bias, zero)):
            setattr(lstm, name, value)
        packed = pack_padded_sequence(steps, lengths.to("cpu", torch.int64),
                                      batch_first=True, enforce_sorted=False)
        _, (h_n, _) = lstm(packed)
        return h_n[0]  # unsorted back to the input order by nn.LSTM


class RecomposeRef(nn.Module):
    """phi: encoder -> composer -> head."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.encoder = Encoder(shape)
        self.composer = Composer(shape.feature_dim, shape.hidden)
        self.head = nn.Linear(shape.hidden, shape.embed_dim)
        if shape.action_outputs:
            self.action = nn.Linear(shape.embed_dim, shape.action_outputs)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, generator: Optional[torch.Generator] = None):
        """PyTorch's default initialisation, as recompose does it: conv and
        linear weights and biases U(+-1/sqrt(fan_in of the weight)), the LSTM
        U(+-1/sqrt(H))."""
        for name, p in self.named_parameters():
            if name.startswith("composer."):
                bound = 1.0 / math.sqrt(self.shape.hidden)
            else:
                w = self.get_parameter(name.rsplit(".", 1)[0] + ".weight")
                bound = 1.0 / math.sqrt(w[0].numel())
            p.uniform_(-bound, bound, generator=generator)

    def encode_pairs(self, frames: torch.Tensor, plan: "Plan") -> torch.Tensor:
        """frames [B][T+1][C][S][S] -> features [n_pairs][F] of the plan's
        distinct pairs, frame i stacked before frame j along channels."""
        clip, i, j = (t.to(frames.device) for t in
                      (plan.pair_clip, plan.pair_i, plan.pair_j))
        x = torch.cat([frames[clip, i], frames[clip, j]], dim=1)
        return self.encoder(x)

    def forward(self, frames: torch.Tensor, plan: "Plan") -> torch.Tensor:
        """Embeddings [n_seq][D] of the plan's sequences."""
        feat = self.encode_pairs(frames, plan)
        seq_pair = plan.seq_pair.to(feat.device)
        valid = (seq_pair >= 0).unsqueeze(-1).to(feat.dtype)
        steps = feat[seq_pair.clamp(min=0)] * valid  # [n_seq][T][F]
        return self.head(self.composer(steps, plan.seq_len))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- the loss -----------------------------------------------------------------


# Embedding maps of the equivariance pairs (ops.h enum rc_emb_map).
MAP_NONE, MAP_FLIP, MAP_TRANSPOSE = 0, 1, 2


def emb_map_matrix(kind: int, dim: int, dtype=torch.float64) -> torch.Tensor:
    """The signed permutation M of a map: the embedding as four blocks A, B,
    C, D of dim/4; flip negates A and C; transpose swaps A and B and negates
    C (what a horizontal mirror and a swap of the image axes do to dx, dy
    and dtheta)."""
    q = dim // 4
    eye = torch.eye(dim, dtype=dtype)
    if kind == MAP_NONE:
        return eye
    if dim % 4:
        raise ValueError(f"a map needs an embedding size divisible by 4, got {dim}")
    M = eye.clone()
    M[2 * q:3 * q] *= -1
    if kind == MAP_FLIP:
        M[:q] *= -1
    else:
        M[:q], M[q:2 * q] = eye[q:2 * q].clone(), eye[:q].clone()
    return M


def hinge_loss(emb: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
               positive: torch.Tensor, weight: torch.Tensor, margin: float,
               squared: bool = True, scale: float = 1.0,
               maps: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Contrastive hinge loss (SPEC section 4) over loss pairs (a, b):
    d = ||emb[a] - M emb[b]|| (M the pair's map, the identity without maps);
    positive: weight * d^2; negative: weight * max(0, margin - d)^2 (squared)
    or weight * max(0, margin - d) (plain); the sum times scale.
    At d = 0 the gradient is zero, never NaN: d^2 is a sum of squares and
    the square root of a negative pair's d^2 is taken above 1e-24 (the
    clamp passes no gradient at 0)."""
    other = emb[b]
    if maps is not None and bool((maps != MAP_NONE).any()):
        D = emb.shape[1]
        Ms = torch.stack([emb_map_matrix(k, D, emb.dtype).to(emb.device)
                          for k in (MAP_NONE, MAP_FLIP, MAP_TRANSPOSE)])
        other = torch.einsum("pij,pj->pi", Ms[maps], other)
    diff = emb[a] - other
    d2 = (diff * diff).sum(dim=1)
    pos = positive.to(torch.bool)
    weight = weight.to(emb.dtype)
    terms = torch.zeros_like(d2)
    terms = terms + torch.where(pos, weight * d2, torch.zeros_like(d2))
    neg_d = torch.where(pos, torch.ones_like(d2), d2).clamp(min=1e-24).sqrt()
    gap = torch.clamp(margin - neg_d, min=0)
    neg = weight * (gap * gap if squared else gap)
    terms = terms + torch.where(pos, torch.zeros_like(d2), neg)
    return terms.sum() * scale


# ---- recomposition tuples and the batch plan ----------------------------------

SEQ_KINDS = ("full", "skip", "loop", "ident", "rev", "short")
PAIR_KINDS = ("full_skip", "loop_ident", "full_rev", "full_ident", "full_short",
              "full_pan", "full_tex", "full_roll", "full_flip", "full_transpose")
TUPLE_PAIR_KINDS = 5  # the first five compare sequences of one tuple
PAIR_KIND_SEQS = ((0, 1), (2, 3), (0, 4), (0, 3), (0, 5))
PAIR_KIND_POSITIVE = (1, 1, 0, 0, 0, 0, 1, 0, 1, 1)
PAIR_KIND_MAP = (0,) * 8 + (MAP_FLIP, MAP_TRANSPOSE)
# Twin kinds (sampler.h, rc_twin_kind) in order, and the pair kind of each:
# pan (negative), texture (positive), roll (negative), flip and transpose
# (positive, through their maps).
TWIN_PAIR_KINDS = (5, 6, 7, 8, 9)


@dataclass
class LossConfig:
    margin: float = 1.0
    squared: bool = True
    w_pos: float = 1.0
    w_neg: float = 1.0
    w_kind: Tuple[float, ...] = (1.0,) * TUPLE_PAIR_KINDS + (0.0,) * 5
    # the action term (loss.w_act and the act_* keys; 0 = off)
    w_act: float = 0.0
    act_kind: str = "affine"
    act_grid: int = 4
    act_scales: int = 3
    act_border: int = 8
    act_moving: float = 0.0

    @staticmethod
    def from_ini(text: str) -> "LossConfig":
        """The [loss] keys this module computes, from a config's INI text
        (defaults as recompose's for keys it does not give)."""
        cp = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
        cp.read_string(text)
        get = lambda key, conv, d: conv(cp.get("loss", key)) if cp.has_option("loss", key) else d
        return LossConfig(
            margin=get("margin", float, 1.0),
            squared=get("hinge", str, "squared") == "squared",
            w_act=get("w_act", float, 0.0), act_kind=get("act_kind", str, "affine"),
            act_grid=get("act_grid", int, 4), act_scales=get("act_scales", int, 3),
            act_border=get("act_border", int, 8), act_moving=get("act_moving", float, 0.0))

    def twins(self) -> List[int]:
        """The twin kinds this config enables (pair weight above zero)."""
        w = lambda k: self.w_pos if PAIR_KIND_POSITIVE[k] else self.w_neg
        return [t for t, k in enumerate(TWIN_PAIR_KINDS)
                if len(self.w_kind) > k and self.w_kind[k] > 0 and w(k) > 0]


@dataclass
class Plan:
    """The work of one batch (rc_batch_plan). Sequence s of tuple b is row
    b * 6 + kind; with twins, row 6B + slot*B + b is the full sequence of
    clip B*(1+slot) + b; seq_pair is padded
    with -1; loss pairs are (a, b) rows of the embeddings."""

    B: int
    T: int
    pair_clip: torch.Tensor     # [n_pairs] int64
    pair_i: torch.Tensor
    pair_j: torch.Tensor
    seq_len: torch.Tensor       # [n_seq] steps of each sequence
    seq_pair: torch.Tensor      # [n_seq][max_steps], -1 padded
    loss_a: torch.Tensor        # [n_loss_pairs]
    loss_b: torch.Tensor
    loss_positive: torch.Tensor
    loss_weight: torch.Tensor   # float32, as rc_loss_pair.weight
    loss_kind: torch.Tensor

    n_clips: int = 0            # clips the frames hold (B without twins)

    @property
    def n_pairs(self) -> int:
        return int(self.pair_clip.numel())

    @property
    def n_seq(self) -> int:
        return int(self.seq_len.numel())


def sample_tuple(T: int, rng: np.random.Generator) -> List[List[int]]:
    """The six sequences (frame indices into a clip f_0..f_T) of one tuple,
    drawn by the rules of rc_sample_tuple (sampler.h):
    full f_0..f_T; skip f_0, a sorted random proper subset of f_1..f_{T-1}
    whose size is uniform in 0..T-2, f_T; loop f_0..f_m..f_0, m in 1..T;
    ident f_m, f_m, m in 0..T; rev f_T..f_0; short f_0..f_m, m in 1..T-1."""
    if T < 2:
        raise ValueError(f"a tuple needs T >= 2 (clips of 3+ frames), got {T}")
    full = list(range(T + 1))
    k = int(rng.integers(0, T - 1))
    inner = sorted(int(f) for f in rng.choice(np.arange(1, T), size=k,
                                              replace=False))
    skip = [0] + inner + [T]
    m = int(rng.integers(1, T + 1))
    loop = list(range(m + 1)) + list(range(m - 1, -1, -1))
    m = int(rng.integers(0, T + 1))
    ident = [m, m]
    rev = list(range(T, -1, -1))
    m = int(rng.integers(1, T))
    short = list(range(m + 1))
    return [full, skip, loop, ident, rev, short]


def build_plan(tuples: Sequence[Sequence[Sequence[int]]], T: int,
               loss: Optional[LossConfig] = None, dedup: bool = True) -> Plan:
    """rc_plan_build: the distinct (clip, i, j) pairs in order of first
    appearance (tuple by tuple, sequence kinds in order, steps in order),
    the step table, and one loss pair of each kind per tuple with weight
    (w_pos or w_neg) * w_kind[kind]. dedup=False encodes every step. Twins
    (loss.twins()): after the tuples, for each enabled twin kind (slot) and
    tuple b the full sequence of clip B*(1+slot) + b, never deduplicated with another clip's pairs, and a loss
    pair of the twin's kind between it and tuple b's full sequence."""
    loss = loss or LossConfig()
    B = len(tuples)
    twins = loss.twins()
    pairs: List[Tuple[int, int, int]] = []
    index: Dict[Tuple[int, int, int], int] = {}
    max_steps = max(len(s) - 1 for t in tuples for s in t)
    seq_len, seq_pair = [], []
    for b, tup in enumerate(tuples):
        if len(tup) != len(SEQ_KINDS):
            raise ValueError(f"tuple {b} has {len(tup)} sequences, expected 6")
        for s in tup:
            if len(s) < 2 or min(s) < 0 or max(s) > T:
                raise ValueError(f"tuple {b}: bad sequence {list(s)} for T={T}")
            row = []
            for i, j in zip(s[:-1], s[1:]):
                key = (b, int(i), int(j))
                if not dedup or key not in index:
                    index[key] = len(pairs)
                    pairs.append(key)
                row.append(index[key] if dedup else len(pairs) - 1)
            seq_len.append(len(row))
            seq_pair.append(row + [-1] * (max_steps - len(row)))
    steps = [(t, t + 1) for t in range(T)]
    for slot in range(len(twins)):
        for b in range(B):
            row = []
            for i, j in steps:
                pairs.append((B * (1 + slot) + b, i, j))
                row.append(len(pairs) - 1)
            seq_len.append(len(row))
            seq_pair.append(row + [-1] * (max_steps - len(row)))
    la, lb, lpos, lw, lk = [], [], [], [], []
    for b in range(B):
        for k, (sa, sb) in enumerate(PAIR_KIND_SEQS):
            pos = PAIR_KIND_POSITIVE[k]
            la.append(b * 6 + sa)
            lb.append(b * 6 + sb)
            lpos.append(pos)
            lw.append(np.float32(loss.w_pos if pos else loss.w_neg) *
                      np.float32(loss.w_kind[k]))
            lk.append(k)
    for slot, t in enumerate(twins):
        k = TWIN_PAIR_KINDS[t]
        pos = PAIR_KIND_POSITIVE[k]
        for b in range(B):
            la.append(b * 6)
            lb.append(6 * B + slot * B + b)
            lpos.append(pos)
            lw.append(np.float32(loss.w_pos if pos else loss.w_neg) *
                      np.float32(loss.w_kind[k]))
            lk.append(k)
    i64 = lambda v: torch.tensor(v, dtype=torch.int64)
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    return Plan(B=B, T=T, pair_clip=torch.from_numpy(p[:, 0].copy()),
                pair_i=torch.from_numpy(p[:, 1].copy()),
                pair_j=torch.from_numpy(p[:, 2].copy()),
                seq_len=i64(seq_len), seq_pair=i64(seq_pair),
                loss_a=i64(la), loss_b=i64(lb), loss_positive=i64(lpos),
                loss_weight=torch.tensor(np.asarray(lw, dtype=np.float32)),
                loss_kind=i64(lk), n_clips=B * (1 + len(twins)))


def sample_plan(B: int, T: int, rng: np.random.Generator,
                loss: Optional[LossConfig] = None, dedup: bool = True) -> Plan:
    return build_plan([sample_tuple(T, rng) for _ in range(B)], T, loss, dedup)


# ---- the action term (SPEC section 4) -----------------------------------------


def action_warps(raw: torch.Tensor, kind: str) -> torch.Tensor:
    """The action head's outputs [n][P] as warp parameters: an affine map's
    six entries and a field's node displacements as they are; for expm the
    top two rows of the matrix exponential of [[r0 r1 r2], [r3 r4 r5],
    [0 0 0]] (invertible: the negated code is the inverse motion)."""
    if kind != "expm":
        return raw
    n = raw.shape[0]
    m = torch.cat([raw.view(n, 2, 3), raw.new_zeros(n, 1, 3)], dim=1)
    return torch.linalg.matrix_exp(m)[:, :2, :].reshape(n, 6)


def warp_grid(th: torch.Tensor, n: int, C: int, S: int, field: int):
    """The sampling grid of the warps th: an affine map per sequence
    (affine_grid), or the pixel centres plus a field of field x field
    displacements interpolated bilinearly (grid_sample of the field,
    align_corners=True: the nodes span [-1, 1] corner to corner)."""
    eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=th.dtype,
                       device=th.device).expand(n, 2, 3)
    if not field:
        return F.affine_grid(th.view(n, 2, 3), [n, C, S, S], align_corners=False)
    base = F.affine_grid(eye, [n, C, S, S], align_corners=False)
    disp = F.grid_sample(th.view(n, 2, field, field), base, mode="bilinear",
                         padding_mode="border", align_corners=True)
    return base + disp.permute(0, 2, 3, 1)


def warp_error(first: torch.Tensor, last: torch.Tensor, theta: torch.Tensor,
               field: int, scales: Sequence[int], border: int,
               moving: float = 0.0) -> torch.Tensor:
    """The action term's error, summed over the n sequences and the scales,
    unscaled: each first frame [n][C][S][S] warped by its theta (grid_sample,
    bilinear, border padding, align_corners=False), then per pooling factor
    k the mean squared difference of the k x k block means of the warped and
    the last frame inside border / k. moving > 0 (loss.act_moving): only
    over the pooled pixels whose first and last frame differ by more than
    it, decided in float64 on the frames as given (a sequence with none
    adds nothing)."""
    n, C, S, _ = first.shape
    warped = F.grid_sample(first, warp_grid(theta, n, C, S, field), mode="bilinear",
                           padding_mode="border", align_corners=False)
    L = 0
    for k in scales:
        m, P = border // k, S // k
        diff = F.avg_pool2d(warped, k) - F.avg_pool2d(last, k)
        err = diff[:, :, m:P - m, m:P - m].pow(2)
        if moving > 0:
            chg = (F.avg_pool2d(first.detach().double(), k) -
                   F.avg_pool2d(last.detach().double(), k))
            mask = (chg[:, :, m:P - m, m:P - m].abs() > moving).to(err.dtype)
            per = (err * mask).sum(dim=(1, 2, 3)) / mask.sum(dim=(1, 2, 3)).clamp(min=1)
            L = L + per.sum()
        else:
            L = L + err.mean(dim=(1, 2, 3)).sum()
    return L


def action_loss(model: RecomposeRef, frames: torch.Tensor, plan: Plan,
                emb: torch.Tensor, loss: LossConfig) -> torch.Tensor:
    """The action term of a step: every sequence's phi, through the action
    head, warps the sequence's first frame (frame i of its first pair) onto
    its last (frame j of its last pair); weight w_act over the number of
    sequences (a mean over sequences)."""
    dev = frames.device
    seq_pair, seq_len = plan.seq_pair.to(dev), plan.seq_len.to(dev)
    clip, pi, pj = (t.to(dev) for t in (plan.pair_clip, plan.pair_i, plan.pair_j))
    n = seq_pair.shape[0]
    p0 = seq_pair[:, 0]
    p1 = seq_pair[torch.arange(n, device=dev), seq_len - 1]
    first, last = frames[clip[p0], pi[p0]], frames[clip[p1], pj[p1]]
    theta = action_warps(model.action(emb), loss.act_kind)
    field = loss.act_grid if loss.act_kind == "grid" else 0
    scales = [1 << k for k in range(loss.act_scales)]
    return (loss.w_act / n) * warp_error(first, last, theta, field, scales,
                                         loss.act_border, loss.act_moving)


def step_loss(model: RecomposeRef, frames: torch.Tensor, plan: Plan,
              loss: LossConfig) -> Tuple[torch.Tensor, torch.Tensor]:
    """rc_model_step's forward: (loss, embeddings [n_seq][D]); the hinge
    loss is scaled by 1/B, and with loss.w_act > 0 the action term is added.
    Call .backward() on the loss for the gradients."""
    emb = model(frames, plan)
    dev = emb.device
    L = hinge_loss(emb, plan.loss_a.to(dev), plan.loss_b.to(dev),
                   plan.loss_positive.to(dev), plan.loss_weight.to(dev),
                   loss.margin, loss.squared, 1.0 / plan.B,
                   torch.tensor([PAIR_KIND_MAP[k] for k in plan.loss_kind.tolist()],
                                dtype=torch.int64, device=dev))
    if loss.w_act > 0:
        if not hasattr(model, "action"):
            raise ValueError("loss.w_act > 0 but the model has no action head "
                             "(ModelShape.action_outputs = 0)")
        L = L + action_loss(model, frames, plan, emb, loss)
    return L, emb


# ---- safetensors ------------------------------------------------------------------

_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8")}


def write_safetensors(path: str, tensors: Dict[str, np.ndarray],
                      metadata: Optional[Dict[str, str]] = None) -> None:
    """8-byte little-endian header length, JSON header padded with spaces to
    a multiple of 8, then the tensors' little-endian bytes back to back:
    8-byte types first, then float32, each group in name order (as the
    safetensors package does), so that every tensor starts at a multiple of
    its element size. Arrays must be float32, float64 or int64."""
    names = {v: k for k, v in _DTYPES.items()}
    typed = []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dt = names.get(arr.dtype.newbyteorder("<"))
        if dt is None:
            raise TypeError(f"tensor {name}: dtype {arr.dtype} is not F32/F64/I64")
        typed.append((-_DTYPES[dt].itemsize, name, dt, arr))
    header, blobs, offset = {}, [], 0
    for _, name, dt, arr in sorted(typed, key=lambda e: (e[0], e[1])):
        data = arr.astype(_DTYPES[dt], copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """(tensors, metadata) of a safetensors file with F32/F64/I64 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, h in header.items():
        if h["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype "
                             f"{h['dtype']}")
        begin, end = h["data_offsets"]
        dt = _DTYPES[h["dtype"]]
        shape = tuple(h["shape"])
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise ValueError(f"{path}: tensor {name}: shape {list(shape)} does "
                             f"not match its {end - begin} bytes")
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(shape).copy()
    return out, meta
