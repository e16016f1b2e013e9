/* cuda_backend.h: the op interface on one NVIDIA GPU (cuDNN convolutions,
 * cuBLAS GEMMs, custom kernels for the LSTM cell, the loss, AdamW, norms and
 * index moves; see kernels/). Plain C: callable from the C code and tests
 * whether or not the build has CUDA (RC_HAVE_CUDA); without it every entry
 * point reports that the backend is not compiled in.
 *
 * Every CUDA, cuDNN and cuBLAS call is checked; a failure prints the call,
 * the file and the line and aborts (the op interface has no error returns,
 * and a half-finished step on the GPU is never worth continuing).
 */
#ifndef RECOMPOSE_CUDA_BACKEND_H
#define RECOMPOSE_CUDA_BACKEND_H

#include <stddef.h>

#include "recompose/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int device;       /* CUDA device ordinal (default 0) */
    rc_precision precision; /* default RC_PRECISION_TF32 */
    int benchmark;    /* 1: convolution algorithms by timing (cudnnFind*, once
                         per layer, reused for other batch sizes); 0 (default):
                         by cuDNN's heuristics, the same in every run */
} rc_cuda_options;

void rc_cuda_options_default(rc_cuda_options *o);

/* Set the options; call before rc_backend_cuda() or between steps (cached
 * convolution algorithms are re-chosen). Returns 0, or -1 (error set). */
int rc_cuda_configure(const rc_cuda_options *o);

/* In a CUDA build the backend is a plugin (librecompose_cuda.so) loaded on
 * first use: 0 when it loads (buf ""), else -1 with the reason in buf. In a
 * build without CUDA, -1 and "not compiled in". */
int rc_cuda_plugin_error(char *buf, size_t cap);

/* Number of usable devices; 0 when there is none, no driver, or the build
 * has no CUDA (the GPU tests skip on 0). */
int rc_cuda_device_count(void);

/* The backend, or NULL with an error (rc_last_error) when there is no device
 * or the build has no CUDA. Memory from its alloc() is device memory. */
const rc_backend *rc_backend_cuda(void);

/* The backend's compute stream (a cudaStream_t), for work that must order
 * itself against the ops (the NCCL all-reduce); NULL without CUDA. */
void *rc_cuda_stream(void);

/* Name and measured peak rates of the device (for the benchmarks). */
const char *rc_cuda_device_name(void);

/* ---- input: the device half of the batch loader ---------------------------
 * The loader fills page-locked host buffers (rc_cuda_pinned_alloc); submit
 * copies one to a device slot on a separate copy stream and returns at once,
 * so the copy of batch k+1 overlaps the compute of batch k. acquire makes the
 * compute stream wait for that copy (no host wait) and returns the device
 * frames; release marks the slot free once the compute stream has passed the
 * point where the step read it. wait_host_free blocks until the copy out of
 * the pinned buffer has finished, so the loader may refill it. */
void *rc_cuda_pinned_alloc(size_t bytes);
void rc_cuda_pinned_free(void *p);

typedef struct rc_cuda_input rc_cuda_input;
/* u8: batches are bytes, converted to floats on the compute stream at
 * acquire (each slot then holds max_bytes bytes and max_bytes floats). */
rc_cuda_input *rc_cuda_input_create(size_t max_bytes, int slots, int u8);
void rc_cuda_input_free(rc_cuda_input *in);
/* Returns the slot (>= 0) the batch goes to, or -1 (error set). */
int rc_cuda_input_submit(rc_cuda_input *in, const void *pinned, size_t bytes);
const float *rc_cuda_input_acquire(rc_cuda_input *in, int slot);
void rc_cuda_input_release(rc_cuda_input *in, int slot);
void rc_cuda_input_wait_host_free(rc_cuda_input *in, int slot);

/* ---- whole-step CUDA graphs (static shapes) -------------------------------
 * rc_cuda_graph_capture runs fn(ctx) once with the backend's stream under
 * capture and instantiates the result; rc_cuda_graph_launch replays it.
 * Valid when every replay does the same work on the same buffers: same
 * shapes and the same batch plan (index tables are captured with their
 * values); the frames may change (same device buffer). Run fn once without
 * capture first, so that convolution algorithms are chosen and the scratch
 * arena has its size: inside capture nothing may allocate or synchronise.
 * Scalars that ops return (loss, norm) read as 0 during capture; after
 * each launch rc_cuda_graph_scalar(g, i) gives the i-th of them. */
typedef struct rc_cuda_graph rc_cuda_graph;
rc_cuda_graph *rc_cuda_graph_capture(void (*fn)(void *ctx), void *ctx);
int rc_cuda_graph_launch(rc_cuda_graph *g);   /* synchronises */
double rc_cuda_graph_scalar(const rc_cuda_graph *g, int i);
int rc_cuda_graph_n_scalars(const rc_cuda_graph *g);
void rc_cuda_graph_free(rc_cuda_graph *g);

/* ---- benchmark helpers ----------------------------------------------------
 * Measured device-to-device copy bandwidth (GB/s, read + write bytes) and
 * float32 GEMM rate (TFLOP/s, n x n x n, current math mode). */
double rc_cuda_measure_copy_gbs(size_t bytes);
double rc_cuda_measure_gemm_tflops(int n);

/* ---- the entry list ----------------------------------------------------------
 * Every function above except rc_cuda_options_default and
 * rc_cuda_plugin_error, once: X(return type, name, parameters, arguments,
 * value returned when there is no backend) or V(name, parameters,
 * arguments) for those returning nothing. The CUDA build's loader forwards
 * each to the plugin (kernels/cuda_loader.c), a build without CUDA
 * answers each with that value (kernels/cuda_absent.c), and the
 * declarations generated below make the compiler check the list against
 * the documented declarations above. An entry point is added here and
 * above, and nowhere else. */
#define RC_CUDA_FUNCS(X, V)                                                     \
    X(int, rc_cuda_configure, (const rc_cuda_options *o), (o), -1)              \
    X(int, rc_cuda_device_count, (void), (), 0)                                 \
    X(const rc_backend *, rc_backend_cuda, (void), (), NULL)                    \
    X(void *, rc_cuda_stream, (void), (), NULL)                                 \
    X(const char *, rc_cuda_device_name, (void), (), "none")                    \
    X(void *, rc_cuda_pinned_alloc, (size_t bytes), (bytes), NULL)              \
    V(rc_cuda_pinned_free, (void *p), (p))                                      \
    X(rc_cuda_input *, rc_cuda_input_create,                                  \
      (size_t max_bytes, int slots, int u8), (max_bytes, slots, u8), NULL)      \
    V(rc_cuda_input_free, (rc_cuda_input * in), (in))                           \
    X(int, rc_cuda_input_submit, (rc_cuda_input * in, const void *p, size_t n), \
      (in, p, n), -1)                                                           \
    X(const float *, rc_cuda_input_acquire, (rc_cuda_input * in, int slot),     \
      (in, slot), NULL)                                                         \
    V(rc_cuda_input_release, (rc_cuda_input * in, int slot), (in, slot))        \
    V(rc_cuda_input_wait_host_free, (rc_cuda_input * in, int slot), (in, slot)) \
    X(rc_cuda_graph *, rc_cuda_graph_capture, (void (*fn)(void *), void *ctx),  \
      (fn, ctx), NULL)                                                          \
    X(int, rc_cuda_graph_launch, (rc_cuda_graph * g), (g), -1)                  \
    X(double, rc_cuda_graph_scalar, (const rc_cuda_graph *g, int i), (g, i), 0) \
    X(int, rc_cuda_graph_n_scalars, (const rc_cuda_graph *g), (g), 0)           \
    V(rc_cuda_graph_free, (rc_cuda_graph * g), (g))                             \
    X(double, rc_cuda_measure_copy_gbs, (size_t bytes), (bytes), 0)             \
    X(double, rc_cuda_measure_gemm_tflops, (int n), (n), 0)

#define RC_CUDA_DECLARE_X(ret, name, params, args, fail) ret name params;
#define RC_CUDA_DECLARE_V(name, params, args) void name params;
RC_CUDA_FUNCS(RC_CUDA_DECLARE_X, RC_CUDA_DECLARE_V)
#undef RC_CUDA_DECLARE_X
#undef RC_CUDA_DECLARE_V

#ifdef __cplusplus
}
#endif
#endif
