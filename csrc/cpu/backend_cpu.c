/* backend_cpu.c: the CPU reference backend, the float32 ops over host memory.
 *
 * "Device" memory is host memory here: transfers are memcpy and there is
 * nothing to synchronise. */
/* MAP_ANONYMOUS is not POSIX 2008 */
#define _DEFAULT_SOURCE 1
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "cpu/real.h"

#if !RC_REAL_DOUBLE

/* 64 bytes: a cache line, and enough for any SIMD width BLAS uses. */
#define RC_CPU_ALIGN 64

/* Zero-filled memory whose pages the kernel zeroes on first touch: buffers
 * sized for the largest possible batch (the model reserves for every pair of
 * every sequence being distinct) then cost resident memory only for the part
 * a batch actually uses. Large blocks come straight from mmap (calloc would
 * do the same only while glibc's dynamic mmap threshold lets it; once a
 * large block has been freed, calloc serves from the heap and memsets, which
 * touched every page: 216 MB resident for the tiny preset instead of 63).
 * Every block starts with a header of one alignment unit that records how
 * it was obtained, for cpu_free. */
#define RC_CPU_MMAP_MIN ((size_t)1 << 20)

typedef struct {
    void *raw;      /* calloc's pointer, or NULL for an mmap block */
    size_t mapped;  /* bytes mapped (mmap blocks) */
} cpu_block;

static void *cpu_alloc(size_t bytes) {
    size_t total = bytes + RC_CPU_ALIGN;
    unsigned char *base;
    cpu_block hdr = {NULL, 0};
    if (total >= RC_CPU_MMAP_MIN) {
        void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        base = m == MAP_FAILED ? NULL : m;  /* page aligned */
        hdr.mapped = total;
    } else {
        unsigned char *raw = calloc(1, total + RC_CPU_ALIGN);
        hdr.raw = raw;
        base = raw ? (unsigned char *)(((uintptr_t)raw + RC_CPU_ALIGN - 1) &
                                       ~(uintptr_t)(RC_CPU_ALIGN - 1))
                   : NULL;
    }
    if (!base) {
        fprintf(stderr, "recompose: out of memory allocating %zu bytes of "
                        "CPU backend memory; reduce train.batch or the model "
                        "size\n", bytes);
        exit(2);
    }
    memcpy(base, &hdr, sizeof hdr);
    return base + RC_CPU_ALIGN;
}

static void cpu_free(void *p) {
    if (!p) return;
    unsigned char *base = (unsigned char *)p - RC_CPU_ALIGN;
    cpu_block hdr;
    memcpy(&hdr, base, sizeof hdr);
    if (hdr.raw)
        free(hdr.raw);
    else
        munmap(base, hdr.mapped);
}

int rc_blas_serial_begin(int serial) {
    if (!serial) return 0;
    int previous = openblas_get_num_threads();
    if (previous != 1) openblas_set_num_threads(1);
    return previous;
}

void rc_blas_serial_end(int previous) {
    if (previous > 1) openblas_set_num_threads(previous);
}

static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

static void cpu_synchronize(void) {}

static const rc_backend_fused cpu_fused = {
    .conv2d_relu_forward = rc_conv2d_relu_forward_f32,
    .conv2d_relu_backward = rc_conv2d_relu_backward_f32,
};

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
    .warp_loss = rc_warp_loss_f32,
    .sum_squares = rc_sum_squares_f32,
    .scale = rc_scale_f32,
    .axpy = rc_axpy_f32,
    .adamw_update = rc_adamw_update_f32,
    .gather_pairs = rc_gather_pairs_f32,
    .gather_steps = rc_gather_steps_f32,
    .scatter_steps = rc_scatter_steps_f32,
    .fused = &cpu_fused,
};

const rc_backend *rc_backend_cpu(void) { return &cpu_backend; }


#endif
