"""bench_torch.py: the paper-preset model of recompose in PyTorch on the same
GPU, for tools/gpu-check.sh to print beside bench_cuda's train_paper line.

Same work per step as the C trainer: P distinct frame pairs (6x128x128;
the second argument, the C trainer's train_paper_pairs_per_step from
bench_cuda, else 13 per tuple)
through conv(5x5/2, 64) conv(3x3/2, 128) conv(3x3/2, 256) conv(3x3/2, 256)
conv(3x3/1, 512) with ReLU, global average pool, linear to F=512; 6 sequences
per tuple gathered from the pair features, a packed LSTM (H=512) with mixed
lengths, a linear head to D=128, the contrastive hinge loss over 5 pairs per
tuple, backward and AdamW. TF32 on, as the C default.
Usage: bench_torch.py [STEPS [PAIRS_PER_STEP]]
Prints "torch_train_paper <tuples/s> tuples/s [<P> pairs per step]"."""
import sys
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

B, T, P_PER_TUPLE = 64, 5, 13
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 20
dev = torch.device("cuda")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cudnn.benchmark = True

chans, kernels, strides = [64, 128, 256, 256, 512], [5, 3, 3, 3, 3], [2, 2, 2, 2, 1]
layers, c_in = [], 6
for c, k, s in zip(chans, kernels, strides):
    layers += [nn.Conv2d(c_in, c, k, s, k // 2), nn.ReLU()]
    c_in = c
encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 512))
lstm = nn.LSTM(512, 512, batch_first=True)
head = nn.Linear(512, 128)
model = nn.ModuleList([encoder, lstm, head]).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

P = int(sys.argv[2]) if len(sys.argv) > 2 else B * P_PER_TUPLE
S = B * 6
x = torch.rand(P, 6, 128, 128, device=dev)
g = torch.Generator().manual_seed(0)
lengths = torch.randint(1, 2 * T + 1, (S,), generator=g)
lengths[::6] = 2 * T
max_len = int(lengths.max())
steps_idx = torch.randint(0, P, (S, max_len), generator=g).to(dev)
a_idx = torch.arange(B, device=dev).repeat_interleave(5) * 6
b_idx = a_idx + torch.arange(1, 6, device=dev).repeat(B)
positive = (torch.arange(B * 5, device=dev) % 5) < 2


def step():
    feat = encoder(x)
    seq = feat[steps_idx]
    packed = pack_padded_sequence(seq, lengths, batch_first=True, enforce_sorted=False)
    _, (h, _) = lstm(packed)
    emb = head(h[-1])
    d = (emb[a_idx] - emb[b_idx]).norm(dim=1)
    loss = torch.where(positive, d * d, torch.clamp(1.0 - d, min=0) ** 2).sum() / B
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


for _ in range(3):
    step()
torch.cuda.synchronize()
t0 = time.time()
for _ in range(steps):
    step()
torch.cuda.synchronize()
print(f"torch_train_paper {steps * B / (time.time() - t0):.1f} tuples/s [{P} pairs per step]")
