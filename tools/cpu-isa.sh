#!/usr/bin/env bash
# cpu-isa.sh: the instruction sets of this CPU that decide which kernels
# OpenBLAS, oneDNN and PyTorch run (fma avx2 avx512f avx512_bf16
# avx512_vnni amx_bf16, those present), one line; "none of avx2/avx512"
# where it has none of them. For benchmark records (bench/bench_cpu.sh,
# tools/gpu-check.sh).
isa=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' |
      grep -xE 'avx2|fma|avx512f|avx512_bf16|amx_bf16|avx512_vnni' | paste -sd' ')
echo "${isa:-none of avx2/avx512}"
