#!/usr/bin/env bash
# test_bench_peer.sh: bench/bench_cpu.sh races recompose against the PyTorch
# reference (tests/ref/model_ref.py, stock PyTorch ops) only if both compute
# the same thing. For each kind of action term (affine; a 3 x 3 field with
# the error only where the frames change; expm), with a head that starts
# away from the identity (loss.act_init = 1): `bench_cpu dump` writes the
# batches, the initial weights and the effective config; three training
# steps on each side (a constant learning rate: the PyTorch side has no
# schedule) must give the same first loss (to float32 rounding)
# and the same loss after two AdamW updates (1e-4 relative: the gradients
# of every term agree too); then the affine case in bfloat16 where the CPU
# has it. Skips (77) without PyTorch for /usr/bin/python3.
set -u
BUILD=${RC_BUILD:?}
PY=${RC_PYTHON:-/usr/bin/python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$PY" -c "import torch" 2>/dev/null || { echo "SKIPPED: no PyTorch for $PY"; exit 77; }
[ -x "$BUILD/bench_cpu" ] || { echo "FAIL: $BUILD/bench_cpu not built"; exit 1; }
tmp=$(mktemp -d /tmp/rc_peer_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
f32_first=0
field() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
close() { # close A B TOL: |A - B| <= TOL * max(|A|, |B|)
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d;
    m = (a < 0 ? -a : a); n = (b < 0 ? -b : b); if (n > m) m = n; exit !(d <= t * m) }'
}
small=(--set train.batch=2 --set data.image_size=32 --set loss.w_act=10 --set loss.act_init=1
       --set train.warmup=0 --set train.min_lr_ratio=1)
for case in "affine" "grid --set loss.act_grid=3 --set loss.act_moving=0.05" "expm"; do
  read -r kind rest <<<"$case"
  sets=("${small[@]}" --set loss.act_kind="$kind")
  # shellcheck disable=SC2206
  [ -n "$rest" ] && sets+=($rest)
  dir=$tmp/$kind
  mkdir -p "$dir"
  "$BUILD/bench_cpu" dump "$ROOT/configs/tiny.ini" "$dir" --batches 1 "${sets[@]}" > /dev/null || { echo "FAIL: dump $kind"; fails=$((fails + 1)); continue; }
  rc=$("$BUILD/bench_cpu" train "$ROOT/configs/tiny.ini" --batches 1 --steps 3 --warmup 0 --threads 2 "${sets[@]}")
  pt=$(OMP_NUM_THREADS=2 "$PY" "$ROOT/bench/bench_cpu_torch.py" "$dir/config.ini" "$dir" --batches 1 --steps 3 --warmup 0 --threads 2)
  f1=$(field first_loss <<<"$rc") f2=$(field first_loss <<<"$pt")
  l1=$(field last_loss <<<"$rc") l2=$(field last_loss <<<"$pt")
  echo "$kind: first loss recompose $f1, pytorch $f2; after two updates $l1, $l2"
  [ "$kind" = affine ] && f32_first=$f1
  close "$f1" "$f2" 2e-6 || { echo "FAIL: $kind: first losses differ"; fails=$((fails + 1)); }
  close "$l1" "$l2" 1e-4 || { echo "FAIL: $kind: losses after two updates differ"; fails=$((fails + 1)); }
  close "$f1" "$l1" 1e-3 && { echo "FAIL: $kind: the loss did not move (nothing trained?)"; fails=$((fails + 1)); }
done
# train.precision = bf16 where this CPU has native bfloat16 arithmetic: both
# sides round the convolutions' operands to bfloat16 (the peer keeps its
# activations in bfloat16 too), so the losses agree to bfloat16's precision,
# and differ from the float32 run's (the rounding happened)
sets=("${small[@]}" --set loss.act_kind=affine --set train.precision=bf16)
dir=$tmp/bf16
mkdir -p "$dir"
if ! "$BUILD/bench_cpu" dump "$ROOT/configs/tiny.ini" "$dir" --batches 1 "${sets[@]}" > /dev/null; then
  echo "FAIL: dump bf16"; fails=$((fails + 1))
else
  rc=$("$BUILD/bench_cpu" train "$ROOT/configs/tiny.ini" --batches 1 --steps 3 --warmup 0 --threads 2 "${sets[@]}")
  if [ "$(field conv_operands <<<"$rc")" != bf16 ]; then
    echo "bf16: this CPU has no native bfloat16 arithmetic (skipped)"
  else
    pt=$(OMP_NUM_THREADS=2 "$PY" "$ROOT/bench/bench_cpu_torch.py" "$dir/config.ini" "$dir" --batches 1 --steps 3 --warmup 0 --threads 2)
    f1=$(field first_loss <<<"$rc") f2=$(field first_loss <<<"$pt")
    l1=$(field last_loss <<<"$rc") l2=$(field last_loss <<<"$pt")
    echo "bf16: first loss recompose $f1, pytorch $f2 (float32: $f32_first); after two updates $l1, $l2"
    close "$f1" "$f2" 2e-3 || { echo "FAIL: bf16: first losses differ"; fails=$((fails + 1)); }
    close "$l1" "$l2" 1e-2 || { echo "FAIL: bf16: losses after two updates differ"; fails=$((fails + 1)); }
    close "$f1" "$f32_first" 1e-8 && { echo "FAIL: bf16: the loss is the float32 one (nothing rounded?)"; fails=$((fails + 1)); }
  fi
fi
[ "$fails" -eq 0 ] && echo ok
exit $((fails > 0))
