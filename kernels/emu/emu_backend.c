/* emu_backend.c: rc_backend over the emulator; see emu_backend.h. */
#include "emu/emu_backend.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "emu/emu.h"
#include "recompose/common.h"

/* Small blocks and grids: every emulated thread is a fiber, so fewer threads
 * run faster, while two warps per block still exercise the cross-warp half
 * of every block reduction. */
#define RC_THREADS 64
#define RC_MAX_BLOCKS 6
#define RC_HINGE_THREADS 64
#define RC_WARP_THREADS 64
#define RC_LAUNCH(kernel, blocks, threads, args) \
    rc_emu_launch((blocks), (threads), kernel##_emu, &(args))

/* ---- "device" memory: host memory; scratch freed at the next op ---------- */

typedef struct scratch_block {
    struct scratch_block *next;
    max_align_t data[];
} scratch_block;

static scratch_block *scratch_head;

static void rc_dev_scratch_reset(void) {
    while (scratch_head) {
        scratch_block *n = scratch_head->next;
        free(scratch_head);
        scratch_head = n;
    }
}

static void *rc_dev_scratch(size_t bytes) {
    scratch_block *b = rc_xmalloc(sizeof *b + bytes + 1);
    /* fill with NaN bytes: a kernel that reads scratch it never wrote fails */
    memset(b->data, 0xff, bytes + 1);
    b->next = scratch_head;
    scratch_head = b;
    return b->data;
}

static void *rc_dev_upload(const void *host, size_t bytes) {
    void *d = rc_dev_scratch(bytes);
    memcpy(d, host, bytes);
    return d;
}

static void rc_dev_memset0(void *dev, size_t bytes) { memset(dev, 0, bytes); }

static void rc_dev_download(void *host, const void *dev, size_t bytes) {
    memcpy(host, dev, bytes);
}

static void rc_dev_gemm(int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* BLAS leaves C untouched for K = 0 only if beta = 1 */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc);
}

#include "../rc_ops.cuh"

/* ---- backend table ---------------------------------------------------------- */

static void *emu_alloc(size_t bytes) { return rc_xcalloc(1, bytes ? bytes : 1); }
static void emu_free(void *p) { free(p); }
static void emu_copy(void *dst, const void *src, size_t bytes) {
    memcpy(dst, src, bytes);
}
static void emu_synchronize(void) {}

void rc_emu_conv_bias_add(int n, int c, int hw, const float *b, float *y) {
    rc_op_bias_add((size_t)n * c * hw, c, hw, b, y);
}

void rc_emu_conv_bias_grad(int n, int c, int hw, const float *dy, float *db) {
    rc_op_conv_bias_grad(n, c, hw, dy, db);
}

void rc_emu_u8_to_f32(size_t n, const unsigned char *x, float *y) {
    rc_op_u8_to_f32(n, x, y);
}

/* Convolutions: the CPU reference with a zero bias, then the bias through
 * the backend's kernels, which is how the CUDA backend wraps cuDNN. */
static void emu_conv2d_forward(const rc_conv_shape *s, const float *x,
                               const float *w, const float *b, float *y,
                               float *ws) {
    float *zero = rc_xcalloc((size_t)s->c_out, sizeof(float));
    rc_conv2d_forward_f32(s, x, w, zero, y, ws);
    free(zero);
    rc_emu_conv_bias_add(s->n, s->c_out, s->h_out * s->w_out, b, y);
}

static void emu_conv2d_backward(const rc_conv_shape *s, const float *x,
                                const float *w, const float *dy, float *dx,
                                float *dw, float *db, float *ws) {
    float *db_cpu = rc_xmalloc((size_t)s->c_out * sizeof(float));
    rc_conv2d_backward_f32(s, x, w, dy, dx, dw, db_cpu, ws);
    free(db_cpu);
    rc_emu_conv_bias_grad(s->n, s->c_out, s->h_out * s->w_out, dy, db);
}

static const rc_backend emu_backend = {
    "emulated-cuda",
    emu_alloc,
    emu_free,
    emu_copy,
    emu_copy,
    emu_synchronize,
    rc_conv2d_workspace,
    emu_conv2d_forward,
    emu_conv2d_backward,
    RC_OPS_SHARED_ENTRIES,
    NULL, /* fused: none, as the CUDA backend */
};

const rc_backend *rc_backend_emu(void) { return &emu_backend; }
