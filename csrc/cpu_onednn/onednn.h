/* onednn.h: the CPU backend with oneDNN's convolutions (conv_onednn.c), or
 * its absence (onednn_absent.c) in a build without libdnnl. */
#ifndef RC_CPU_ONEDNN_H
#define RC_CPU_ONEDNN_H

#include <stddef.h>

#include "recompose/ops.h"

/* The CPU backend's op table with oneDNN's convolutions (plain and fused
 * with ReLU; NCHW at the entries, oneDNN's layouts inside); every other
 * entry the reference's. NULL with an error where the build has no
 * oneDNN. */
const rc_backend *rc_backend_cpu_onednn(void);

/* Cap oneDNN's kernels at AVX2, so that its arithmetic is the same on every
 * x86-64 CPU with AVX2 (train.blas_kernels pinned). Must precede the first
 * convolution. 0, or -1 with an error. */
int rc_onednn_cap_isa_avx2(void);

/* 1 where oneDNN's kernels on this CPU (as capped) have native bfloat16
 * arithmetic: AVX512-BF16 or AMX. */
int rc_onednn_has_bf16(void);

/* Convolutions with bfloat16 operands (x, w and dy rounded to bfloat16 to
 * nearest even; y, dx, dw and db summed and returned in float32:
 * train.precision = bf16) where want and the CPU has native bfloat16
 * arithmetic, else float32. Returns 1 if bfloat16 is now in use. */
int rc_onednn_set_bf16(int want);

/* 1 while the convolutions run with bfloat16 operands, else 0. */
int rc_onednn_uses_bf16(void);

/* 1 once a oneDNN call has failed (the reference convolutions took over
 * from then on; the log said so), else 0. */
int rc_onednn_failed(void);

/* Test hook: how many backward-weights passes were built channels-last
 * (a few input channels that the chosen layout would pad to a block). */
int rc_onednn_channels_last_passes(void);

/* Test hook: the bytes a call's largest blocked tensor may take (the batch
 * is split into calls of that many images; 0: the default, 16 MB). */
void rc_onednn_set_chunk_bytes(size_t bytes);

/* The instruction set oneDNN's kernels use on this CPU, as capped (by
 * train.blas_kernels or the DNNL_MAX_CPU_ISA variable): "avx512_core_amx",
 * "avx512_core_bf16", "avx512_core_vnni", "avx512_core", "avx2_vnni",
 * "avx2", "avx", "sse41"; "none" without oneDNN. For benchmark records: the
 * same figure means different kernels on different CPUs. */
const char *rc_onednn_isa(void);

/* "2.6.3", or NULL without oneDNN. */
const char *rc_onednn_version(void);

#endif
