/* backend.h: the backends a run trains on, by name.
 *
 * A backend is three things that must travel together: its op table
 * (ops.h, rc_backend, fused entries included), its input stage (feed.h,
 * rc_stage_ops: how frames reach its memory; NULL where they stay in host
 * memory) and the settings applied once before its first op. The trainer
 * picks one by train.device through rc_backend_lookup, so a backend is
 * added here and nowhere else.
 */
#ifndef RECOMPOSE_BACKEND_H
#define RECOMPOSE_BACKEND_H

#include "recompose/config.h"
#include "recompose/feed.h"
#include "recompose/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU backend's convolutions (train.cpu_conv). */
typedef enum {
    RC_CPU_CONV_AUTO = 0,   /* oneDNN's where the build has it, else BLAS;
                               BLAS when cpu_isa_avx2 (a pinned BLAS family) */
    RC_CPU_CONV_BLAS,       /* the reference: im2col + OpenBLAS sgemm */
    RC_CPU_CONV_ONEDNN      /* oneDNN's (an error without it) */
} rc_cpu_conv;

typedef struct {
    int device;             /* GPU ordinal of this rank */
    rc_precision precision;
    int benchmark;          /* time convolution algorithms (cudnnFind) */
    rc_cpu_conv cpu_conv;   /* the CPU backend's convolutions */
    int cpu_isa_avx2;       /* cap the CPU kernels at AVX2 (train.blas_kernels
                               pinned: the same arithmetic on every CPU) */
} rc_backend_settings;

/* The settings a run of config c applies (train.precision,
 * train.cudnn_benchmark, train.cpu_conv, train.blas_kernels), for the GPU
 * of ordinal device. */
rc_backend_settings rc_backend_settings_of(const rc_config *c, int device);

typedef struct {
    const char *name;       /* "cpu", "cuda", "emu" */
    int is_gpu;             /* needs a GPU (and NCCL between ranks) */
    /* Apply settings before the first op; NULL: nothing to set. 0 or -1
     * with an error. */
    int (*configure)(const rc_backend_settings *s);
    /* The op table (as configured; the defaults where configure was not
     * called); NULL with an error when it cannot run here. */
    const rc_backend *(*ops)(void);
    /* The input stage; NULL: frames in host memory. */
    const rc_stage_ops *(*stage)(void);
} rc_backend_kind;

/* "cpu", "cuda", "emu", or "auto" (cuda where a GPU is visible, else cpu).
 * NULL with an error naming the choices for any other name. */
const rc_backend_kind *rc_backend_lookup(const char *name);

/* The names rc_backend_lookup knows, "auto" last; NULL-terminated. */
extern const char *const rc_backend_names[];

#ifdef __cplusplus
}
#endif
#endif
