#!/usr/bin/env bash
# test_cuda_train.sh: training on the GPU against the CPU backend (skipped
# where there is no GPU). The CUDA run takes its input through the pinned
# feed (loader or synthetic renderer -> cudaMemcpyAsync on the copy stream).
#  - strict float32: per-step losses within 1e-4 of the CPU run (8 steps of
#    AdamW on top of per-op differences ~1e-6), synthetic and footage;
#  - bf16 convolutions: the first step's loss within 1e-2;
#  - a stopped and resumed GPU run ends bitwise where a straight one does
#    (the kernels are deterministic);
#  - a torchrun-style launch (no MPI) at world size 1 trains through NCCL
#    with the plain GPU run's losses.
. "$(dirname "$0")/lib_train_compare.sh"

probe=$("$BIN" train configs/tiny.ini --out "$tmp/probe" --set train.device=cuda \
        --set train.steps=1 --set train.warmup=0 --quiet 2>&1)
if [ $? -ne 0 ]; then
  case $probe in
    *"no CUDA device"*|*"not compiled in"*|*"CUDA driver"*)
      echo "SKIPPED: no GPU here ($probe)"; exit 77 ;;
  esac
  echo "$probe"; fail "a one-step GPU run failed"; exit 1
fi

run cpu configs/tiny.ini --set train.device=cpu
run gpu configs/tiny.ini --set train.device=cuda --set train.precision=fp32
grep -q "training on the GPU" "$tmp/gpu.log" || fail "GPU run did not say so"
same_losses "$tmp/cpu/metrics.jsonl" "$tmp/gpu/metrics.jsonl" 1e-4 || fail "synthetic: fp32 GPU vs cpu"
run gpu_bf16 configs/tiny.ini --set train.device=cuda --set train.precision=bf16
same_losses "$tmp/cpu/metrics.jsonl" "$tmp/gpu_bf16/metrics.jsonl" 1e-2 1 || fail "synthetic: bf16 GPU vs cpu"

run gpu_r configs/tiny.ini --set train.device=cuda --set train.precision=fp32 --stop-after 3
run gpu_r configs/tiny.ini --set train.device=cuda --set train.precision=fp32 --resume "$tmp/gpu_r"
same_tensors "$tmp/gpu/ckpt-00000008.safetensors" "$tmp/gpu_r/ckpt-00000008.safetensors" \
  || fail "GPU: stopped and resumed run differs from the straight run"

# NCCL without MPI: a torchrun-style launch at world size 1 trains through
# the NCCL transport (gradient buckets, host collectives) and must give the
# plain GPU run's losses (an all-reduce over one rank is a copy)
small_loud=()
for a in "${small[@]}"; do [ "$a" = --quiet ] || small_loud+=("$a"); done
WORLD_SIZE=1 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$((20000 + RANDOM % 20000)) \
  "$BIN" train configs/tiny.ini --out "$tmp/nccl1" "${small_loud[@]}" --set train.device=cuda \
  --set train.precision=fp32 > "$tmp/nccl1.log" 2>&1 || { cat "$tmp/nccl1.log"; fail "train nccl1"; }
grep -q "1 rank(s) (nccl)" "$tmp/nccl1.log" || fail "torchrun-style run did not use NCCL"
same_losses "$tmp/gpu/metrics.jsonl" "$tmp/nccl1/metrics.jsonl" 1e-6 || fail "NCCL at world size 1 vs plain GPU"

if "$BIN" pack --help >/dev/null 2>&1; then
  make_shards "$tmp"
  run vcpu configs/tiny.ini --set train.device=cpu "${video[@]}"
  run vgpu configs/tiny.ini --set train.device=cuda --set train.precision=fp32 "${video[@]}"
  same_losses "$tmp/vcpu/metrics.jsonl" "$tmp/vgpu/metrics.jsonl" 1e-4 || fail "shards: fp32 GPU vs cpu"
fi

[ "$fails" -eq 0 ] && echo ok
exit $((fails > 0))
