#!/usr/bin/env bash
# test_train_emu.sh: the trainer's GPU path without a GPU.
# train.device = emu runs the CUDA backend's kernels and its input stage
# (double-buffered feed, copies on a thread after random delays, synthetic
# batches rendered ahead on a thread, the loader decoding into the stage's
# host buffers) on the CPU. Its run must match the CPU backend's loss at
# every step, on synthetic data (with and without twin clips) and on packed
# footage (with its flip and transpose twins; its pixels through the stage
# as bytes, converted by the stage's kernel), and a stopped and resumed emu
# run must end bitwise where a straight one does.
. "$(dirname "$0")/lib_train_compare.sh"

run cpu configs/tiny.ini --set train.device=cpu
run emu configs/tiny.ini --set train.device=emu
grep -q "emulated CUDA backend" "$tmp/emu.log" || fail "emu run did not say which backend"
same_losses "$tmp/cpu/metrics.jsonl" "$tmp/emu/metrics.jsonl" 1e-5 || fail "synthetic: emu vs cpu"

# with every twin kind: pan, texture, roll, flip and transpose (six times
# the clips through the feed; the flip and transpose pairs through their
# embedding maps in the hinge kernel)
twins=(--set loss.w_full_pan=1 --set loss.w_full_tex=1 --set loss.w_full_roll=1
       --set loss.w_full_flip=1 --set loss.w_full_transpose=0.5)
run tcpu configs/tiny.ini --set train.device=cpu "${twins[@]}"
run temu configs/tiny.ini --set train.device=emu "${twins[@]}"
same_losses "$tmp/tcpu/metrics.jsonl" "$tmp/temu/metrics.jsonl" 1e-5 || fail "twins: emu vs cpu"

# stop after step 3 (a checkpoint is written at the stop), resume: the same
# end state as the straight emu run
run emu_r configs/tiny.ini --set train.device=emu --stop-after 3
run emu_r configs/tiny.ini --set train.device=emu --resume "$tmp/emu_r"
same_tensors "$tmp/emu/ckpt-00000008.safetensors" "$tmp/emu_r/ckpt-00000008.safetensors" \
  || fail "emu: stopped and resumed run differs from the straight run"

if "$BIN" pack --help >/dev/null 2>&1; then
  make_shards "$tmp"
  # footage with its symmetry twins, made by the loader in the stage's
  # host buffers
  sym=(--set loss.w_full_flip=1 --set loss.w_full_transpose=1)
  # The emu run takes the pixels as bytes through its stage (data.transfer
  # = auto: u8 on a device) and converts them with the stage's kernel; the
  # CPU run told to take bytes too converts them on the host: the same
  # values, so the same losses. The CPU run with floats (resampled values
  # not rounded to bytes) differs only by that rounding.
  run vcpu configs/tiny.ini --set train.device=cpu --set data.transfer=u8 "${video[@]}" "${sym[@]}"
  run vemu configs/tiny.ini --set train.device=emu "${video[@]}" "${sym[@]}"
  same_losses "$tmp/vcpu/metrics.jsonl" "$tmp/vemu/metrics.jsonl" 1e-5 || fail "shards: emu vs cpu"
  run vcpuf configs/tiny.ini --set train.device=cpu --set data.transfer=float "${video[@]}" "${sym[@]}"
  same_losses "$tmp/vcpu/metrics.jsonl" "$tmp/vcpuf/metrics.jsonl" 1e-3 || fail "shards: bytes vs floats"
else
  echo "no video input in this build: footage part not run"
fi

[ "$fails" -eq 0 ] && echo ok
exit $((fails > 0))
