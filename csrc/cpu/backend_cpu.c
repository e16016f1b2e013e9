/* backend_cpu.c: the CPU reference backend, the float32 ops over host memory.
 *
 * "Device" memory is host memory here: transfers are memcpy and there is
 * nothing to synchronise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/real.h"

#if !RC_REAL_DOUBLE

/* 64 bytes: a cache line, and enough for any SIMD width BLAS uses. */
#define RC_CPU_ALIGN 64

static void *cpu_alloc(size_t bytes) {
    /* aligned_alloc wants a multiple of the alignment */
    size_t rounded = (bytes + RC_CPU_ALIGN - 1) / RC_CPU_ALIGN * RC_CPU_ALIGN;
    if (rounded == 0) rounded = RC_CPU_ALIGN;
    void *p = aligned_alloc(RC_CPU_ALIGN, rounded);
    if (!p) {
        fprintf(stderr, "recompose: out of memory allocating %zu bytes of "
                        "CPU backend memory; reduce train.batch or the model "
                        "size\n", bytes);
        exit(2);
    }
    memset(p, 0, rounded);
    return p;
}

static void cpu_free(void *p) { free(p); }

static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

static void cpu_synchronize(void) {}

static const rc_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .synchronize = cpu_synchronize,
    .conv2d_workspace = rc_conv2d_workspace,
    .conv2d_forward = rc_conv2d_forward_f32,
    .conv2d_backward = rc_conv2d_backward_f32,
    .relu_forward = rc_relu_forward_f32,
    .relu_backward = rc_relu_backward_f32,
    .gap_forward = rc_gap_forward_f32,
    .gap_backward = rc_gap_backward_f32,
    .linear_forward = rc_linear_forward_f32,
    .linear_backward = rc_linear_backward_f32,
    .lstm_cache_size = rc_lstm_cache_size,
    .lstm_forward = rc_lstm_forward_f32,
    .lstm_backward = rc_lstm_backward_f32,
    .hinge_loss = rc_hinge_loss_f32,
    .sum_squares = rc_sum_squares_f32,
    .scale = rc_scale_f32,
    .adamw_update = rc_adamw_update_f32,
    .gather_pairs = rc_gather_pairs_f32,
    .gather_steps = rc_gather_steps_f32,
    .scatter_steps = rc_scatter_steps_f32,
};

const rc_backend *rc_backend_cpu(void) { return &cpu_backend; }

#endif
