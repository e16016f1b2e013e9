#!/usr/bin/env bash
# test_blas_kernels.sh: train.blas_kernels pins OpenBLAS's kernel family,
# so a run is bitwise the same on every CPU kind that can run that family.
# Two short trainings start under two different kernel families
# (OPENBLAS_CORETYPE: this CPU's and tools/openblas-kernels.sh --other),
# both with train.blas_kernels = Haswell (any x86-64 CPU with AVX2): their
# losses at every step and their final tensors must be bitwise equal, and
# the checkpoint records the family. Without the pin the same two runs are
# shown for comparison (their losses differ in the last bits).
set -u
BIN=${RC_BIN:?RC_BIN not set}
if ! grep -q -w avx2 /proc/cpuinfo 2>/dev/null; then
  echo "SKIPPED: the Haswell kernels need AVX2"; exit 77
fi
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
tmp=$(mktemp -d /tmp/rc_blas_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")/.." && pwd)
first=$("$here/tools/openblas-kernels.sh" "$BIN")
second=$("$here/tools/openblas-kernels.sh" --other "$BIN")
small=(--set data.image_size=32 --set model.conv_channels=8,16,16
       --set model.conv_kernels=5,3,3 --set model.conv_strides=2,2,2
       --set model.feature_dim=16 --set model.hidden=16 --set model.embed_dim=8
       --set train.batch=4 --set train.warmup=1 --set train.threads=2
       --set train.steps=6 --set train.log_every=1)
losses() { grep -o '"loss":[^,]*' "$1/metrics.jsonl"; }
data_of() { local n; n=$(od -An -t u8 -N8 "$1" | tr -d ' '); tail -c +$((9 + n)) "$1"; }
for pin in auto Haswell; do
  for family in "$first" "$second"; do
    OPENBLAS_CORETYPE=$family "$BIN" train configs/tiny.ini --out "$tmp/$pin-$family" \
      "${small[@]}" --set train.blas_kernels=$pin > "$tmp/$pin-$family.log" 2>&1 \
      || { cat "$tmp/$pin-$family.log"; fail "run under $family, pin $pin"; }
  done
done
if losses "$tmp/auto-$first" | cmp -s - <(losses "$tmp/auto-$second"); then
  echo "note: without the pin, $first and $second gave the same losses here"
else
  echo "without the pin, $first and $second differ:"
  paste <(losses "$tmp/auto-$first") <(losses "$tmp/auto-$second") | head -3
fi
losses "$tmp/Haswell-$first" | cmp -s - <(losses "$tmp/Haswell-$second") \
  || fail "train.blas_kernels = Haswell: losses differ between $first and $second"
cmp -s <(data_of "$tmp/Haswell-$first/ckpt-00000006.safetensors") \
       <(data_of "$tmp/Haswell-$second/ckpt-00000006.safetensors") \
  || fail "train.blas_kernels = Haswell: final tensors differ"
for family in "$first" "$second"; do
  grep -q "OpenBLAS kernels Haswell (train.blas_kernels)" "$tmp/Haswell-$family.log" \
    || fail "the run started under $family does not say it runs Haswell"
  grep -a -q 'blas_kernels.\{0,4\}:.\{0,4\}Haswell' "$tmp/Haswell-$family/ckpt-00000006.safetensors" \
    || fail "the checkpoint does not record the Haswell kernels"
done
if [ $fails -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo ok
