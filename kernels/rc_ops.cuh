/* rc_ops.cuh: the host side of every op of the CUDA backend that is built
 * from custom kernels and GEMMs (everything but the cuDNN convolutions).
 * Included by kernels/cuda_backend.cu (CUDA, cuBLAS) and by
 * kernels/emu/emu_backend.c (emulator, OpenBLAS), so that the packing of
 * sequences, the per-step loop, the GEMM orientations and the index tables
 * are the code CI runs, not a copy of it. Must stay valid C11 and C++17.
 *
 * The including file defines, before including this one:
 *   RC_LAUNCH(kernel, blocks, threads, args)   launch a 1-D kernel
 *   RC_THREADS, RC_MAX_BLOCKS                  block size, grid cap
 *   rc_dev_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
 *       row-major C[M][N] = alpha op(A) op(B) + beta C on device memory
 *   rc_dev_scratch(bytes)   device memory valid until the next op starts
 *   rc_dev_scratch_reset()  start of an op: scratch may be reused
 *   rc_dev_upload(host, bytes)  scratch holding a copy of host memory
 *   rc_dev_memset0(dev, bytes), rc_dev_download(host, dev, bytes)
 */
#ifndef RC_KERNELS_RC_OPS_CUH
#define RC_KERNELS_RC_OPS_CUH

#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/ops.h"
#include "rc_kernels.cuh"

static unsigned rc_blocks_for(size_t n) {
    size_t b = (n + RC_THREADS - 1) / RC_THREADS;
    if (b < 1) b = 1;
    if (b > RC_MAX_BLOCKS) b = RC_MAX_BLOCKS;
    return (unsigned)b;
}

/* ---- element-wise, pooling, linear ------------------------------------- */

static void rc_op_relu_forward(size_t n, const float *x, float *y) {
    rc_relu_args a = {n, x, y};
    if (n) RC_LAUNCH(rc_k_relu_fwd, rc_blocks_for(n), RC_THREADS, a);
}

static void rc_op_u8_to_f32(size_t n, const uint8_t *x, float *y) {
    rc_u8_args a = {n, x, y};
    if (n) RC_LAUNCH(rc_k_u8_to_f32, rc_blocks_for(n), RC_THREADS, a);
}

static void rc_op_relu_backward(size_t n, const float *y, const float *dy,
                                float *dx) {
    rc_relu_bwd_args a = {n, y, dy, dx};
    if (n) RC_LAUNCH(rc_k_relu_bwd, rc_blocks_for(n), RC_THREADS, a);
}

static void rc_op_gap_forward(int n, int c, int hw, const float *x, float *y) {
    rc_gap_args a = {(size_t)n * c, hw, x, y};
    if (a.nc) RC_LAUNCH(rc_k_gap_fwd, rc_blocks_for(a.nc), RC_THREADS, a);
}

static void rc_op_gap_backward(int n, int c, int hw, const float *dy,
                               float *dx) {
    rc_gap_bwd_args a = {(size_t)n * c * hw, hw, dy, dx};
    if (a.n) RC_LAUNCH(rc_k_gap_bwd, rc_blocks_for(a.n), RC_THREADS, a);
}

static void rc_op_bias_add(size_t n, int cols, int inner, const float *b,
                           float *y) {
    rc_bias_args a = {n, cols, inner, b, y};
    if (n) RC_LAUNCH(rc_k_bias_add, rc_blocks_for(n), RC_THREADS, a);
}

static void rc_op_col_sum(int rows, int cols, const float *x, float *out) {
    rc_colsum_args a = {rows, cols, x, out};
    if (cols) RC_LAUNCH(rc_k_col_sum, rc_blocks_for((size_t)cols), RC_THREADS, a);
}

/* Bias gradient of an NCHW convolution output. */
static void rc_op_conv_bias_grad(int n, int c, int hw, const float *dy,
                                 float *db) {
    rc_bias_grad_args a = {n, c, hw, dy, db};
    unsigned blocks = c < RC_MAX_BLOCKS ? (unsigned)c : RC_MAX_BLOCKS;
    if (c) RC_LAUNCH(rc_k_bias_grad_nchw, blocks, RC_THREADS, a);
}

static void rc_op_linear_forward(int n, int in, int out, const float *x,
                                 const float *w, const float *b, float *y) {
    if (n == 0 || out == 0) return;
    rc_dev_gemm(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    rc_op_bias_add((size_t)n * out, out, 1, b, y);
}

static void rc_op_linear_backward(int n, int in, int out, const float *x,
                                  const float *w, const float *dy, float *dx,
                                  float *dw, float *db) {
    rc_dev_gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    rc_op_col_sum(n, out, dy, db);
    if (dx) rc_dev_gemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

/* ---- norms and AdamW --------------------------------------------------------- */

static double rc_op_sum_squares(size_t n, const float *g) {
    rc_dev_scratch_reset();
    unsigned blocks = rc_blocks_for(n);
    double *partial = (double *)rc_dev_scratch(blocks * sizeof(double));
    double *out = (double *)rc_dev_scratch(sizeof(double));
    rc_sumsq_args a = {n, g, partial};
    RC_LAUNCH(rc_k_sumsq, blocks, RC_THREADS, a);
    rc_reduce_args r = {(int)blocks, partial, out};
    RC_LAUNCH(rc_k_reduce_final, 1, RC_THREADS, r);
    double host = 0.0;
    rc_dev_download(&host, out, sizeof host);
    return host;
}

static void rc_op_scale(size_t n, float *g, float alpha) {
    rc_scale_args a = {n, g, alpha};
    if (n) RC_LAUNCH(rc_k_scale, rc_blocks_for(n), RC_THREADS, a);
}

static void rc_op_axpy(size_t n, float alpha, const float *x, float *y) {
    rc_axpy_args a = {n, alpha, x, y};
    if (n) RC_LAUNCH(rc_k_axpy, rc_blocks_for(n), RC_THREADS, a);
}

static void rc_op_adamw_update(size_t n, float *w, const float *g, float *m,
                               float *v, float lr, float beta1, float beta2,
                               float eps, float weight_decay, float c1,
                               float c2) {
    rc_adamw_args a = {n, w, g, m, v, lr, beta1, beta2, eps, weight_decay, c1, c2};
    if (n) RC_LAUNCH(rc_k_adamw, rc_blocks_for(n), RC_THREADS, a);
}

/* ---- index moves ------------------------------------------------------------- */

static void rc_op_gather_pairs(int n_pairs, const int *pair_clip,
                               const int *pair_i, const int *pair_j,
                               int frames_per_clip, size_t frame_elems,
                               const float *frames, float *out) {
    if (n_pairs <= 0) return;
    rc_dev_scratch_reset();
    size_t bytes = (size_t)n_pairs * sizeof(int);
    rc_gather_pairs_args a = {n_pairs, frames_per_clip, frame_elems,
                              (const int *)rc_dev_upload(pair_clip, bytes),
                              (const int *)rc_dev_upload(pair_i, bytes),
                              (const int *)rc_dev_upload(pair_j, bytes),
                              frames, out};
    RC_LAUNCH(rc_k_gather_pairs, rc_blocks_for((size_t)n_pairs * 2 * frame_elems),
              RC_THREADS, a);
}

static void rc_op_gather_steps(int n_seq, int max_steps, const int *seq_pair,
                               int dim, const float *feat, float *out) {
    size_t slots = (size_t)n_seq * max_steps;
    if (slots == 0) return;
    rc_dev_scratch_reset();
    rc_gather_steps_args a = {
        slots, dim, (const int *)rc_dev_upload(seq_pair, slots * sizeof(int)),
        feat, out};
    RC_LAUNCH(rc_k_gather_steps, rc_blocks_for(slots * dim), RC_THREADS, a);
}

/* The uses of each pair as a CSR table, in slot order (= sequence, then
 * step), so that the device sums them in the CPU reference's order. */
static void rc_op_scatter_steps(int n_seq, int max_steps, const int *seq_pair,
                                int dim, const float *d_steps, int n_pairs,
                                float *d_feat) {
    if (n_pairs <= 0) return;
    size_t slots = (size_t)n_seq * max_steps;
    int *off = (int *)rc_xcalloc((size_t)n_pairs + 1, sizeof(int));
    int *list = (int *)rc_xmalloc((slots ? slots : 1) * sizeof(int));
    for (size_t u = 0; u < slots; u++)
        if (seq_pair[u] >= 0) off[seq_pair[u] + 1]++;
    for (int p = 0; p < n_pairs; p++) off[p + 1] += off[p];
    int *fill = (int *)rc_xmalloc((size_t)n_pairs * sizeof(int));
    memcpy(fill, off, (size_t)n_pairs * sizeof(int));
    for (size_t u = 0; u < slots; u++)
        if (seq_pair[u] >= 0) list[fill[seq_pair[u]]++] = (int)u;
    rc_dev_scratch_reset();
    rc_scatter_args a = {
        n_pairs, dim,
        (const int *)rc_dev_upload(off, ((size_t)n_pairs + 1) * sizeof(int)),
        (const int *)rc_dev_upload(list, (slots ? slots : 1) * sizeof(int)),
        d_steps, d_feat};
    RC_LAUNCH(rc_k_scatter_csr, rc_blocks_for((size_t)n_pairs * dim),
              RC_THREADS, a);
    free(fill);
    free(list);
    free(off);
}

/* ---- LSTM -----------------------------------------------------------------------
 * Packed layout (as PyTorch's PackedSequence): sequences sorted by length,
 * longest first (stable), and the rows of all steps laid out step-major:
 * step t holds rows off[t] .. off[t]+n[t], n[t] = sequences longer than t,
 * in sorted order. A step's GEMM and kernel then cover only the sequences
 * still running, and the input projection of every step is one GEMM.
 *
 * The cache is [xp: S*T][F], [act: S*T][4H] (gates after the forward),
 * [c: S*T][H], [hin: S*T][H], where hin row off[t]+r is the h that step t
 * of that sequence reads (zero at t = 0): the recurrent GEMM of step t and
 * the weight gradient of W_hh both read it as one contiguous block. */
typedef struct {
    int S, T, N, steps;
    int *perm;      /* [S] sorted position -> sequence */
    int *len;       /* [S] lengths in sorted order */
    int *n_at;      /* [T+1] rows at step t (n_at[T] = 0) */
    int *off_at;    /* [T+1] first row of step t */
    int *row_src;   /* [N] packed row -> row of x [S*T] */
} rc_lstm_plan;

static void rc_lstm_plan_free(rc_lstm_plan *p) {
    free(p->perm);
    free(p->len);
    free(p->n_at);
    free(p->off_at);
    free(p->row_src);
}

static void rc_lstm_plan_build(const rc_lstm_shape *s, rc_lstm_plan *p) {
    int S = s->S, T = s->T;
    p->S = S;
    p->T = T;
    p->perm = (int *)rc_xmalloc(((size_t)S + 1) * sizeof(int));
    p->len = (int *)rc_xmalloc(((size_t)S + 1) * sizeof(int));
    p->n_at = (int *)rc_xcalloc((size_t)T + 1, sizeof(int));
    p->off_at = (int *)rc_xcalloc((size_t)T + 1, sizeof(int));
    int k = 0;
    for (int L = T; L >= 0; L--)
        for (int q = 0; q < S; q++) {
            int len = s->len[q] < 0 ? 0 : s->len[q] > T ? T : s->len[q];
            if (len != L) continue;
            p->perm[k] = q;
            p->len[k++] = len;
        }
    p->N = 0;
    p->steps = 0;
    for (int t = 0; t < T; t++) {
        int n = 0;
        while (n < S && p->len[n] > t) n++;
        p->n_at[t] = n;
        p->off_at[t] = p->N;
        p->N += n;
        if (n) p->steps = t + 1;
    }
    p->off_at[T] = p->N;
    p->row_src = (int *)rc_xmalloc(((size_t)p->N + 1) * sizeof(int));
    for (int t = 0; t < T; t++)
        for (int r = 0; r < p->n_at[t]; r++)
            p->row_src[p->off_at[t] + r] = p->perm[r] * T + t;
}

static size_t rc_op_lstm_cache_size(const rc_lstm_shape *s) {
    return (size_t)s->S * s->T * ((size_t)s->F + 6 * (size_t)s->H);
}

typedef struct {
    float *xp, *act, *c, *hin;
} rc_lstm_cache_view;

static rc_lstm_cache_view rc_lstm_cache_split(const rc_lstm_shape *s,
                                              const float *cache) {
    size_t rows = (size_t)s->S * s->T;
    rc_lstm_cache_view v;
    v.xp = (float *)cache;
    v.act = v.xp + rows * s->F;
    v.c = v.act + rows * 4 * s->H;
    v.hin = v.c + rows * s->H;
    return v;
}

static void rc_op_lstm_forward(const rc_lstm_shape *s, const float *x,
                               const float *w_ih, const float *w_hh,
                               const float *b, float *h_last, float *cache) {
    int F = s->F, H = s->H;
    rc_lstm_plan p;
    rc_lstm_plan_build(s, &p);
    rc_lstm_cache_view v = rc_lstm_cache_split(s, cache);
    rc_dev_scratch_reset();
    const int *d_perm = (const int *)rc_dev_upload(p.perm, (size_t)(p.S + 1) * sizeof(int));
    const int *d_len = (const int *)rc_dev_upload(p.len, (size_t)(p.S + 1) * sizeof(int));
    const int *d_rows = (const int *)rc_dev_upload(p.row_src, (size_t)(p.N + 1) * sizeof(int));
    /* a sequence of length 0 (outside the contract) keeps h_last = 0 */
    rc_dev_memset0(h_last, (size_t)s->S * H * sizeof(float));
    if (p.N > 0) {
        rc_rows_args pack = {p.N, F, d_rows, x, v.xp, 0};
        RC_LAUNCH(rc_k_move_rows, rc_blocks_for((size_t)p.N * F), RC_THREADS, pack);
        /* input projection of every step at once */
        rc_dev_gemm(0, 1, p.N, 4 * H, F, 1.0f, v.xp, F, w_ih, F, 0.0f, v.act, 4 * H);
        rc_dev_memset0(v.hin, (size_t)p.n_at[0] * H * sizeof(float));
    }
    for (int t = 0; t < p.steps; t++) {
        int rows = p.n_at[t], row0 = p.off_at[t];
        float *act = v.act + (size_t)row0 * 4 * H;
        if (t > 0)
            rc_dev_gemm(0, 1, rows, 4 * H, H, 1.0f, v.hin + (size_t)row0 * H, H,
                        w_hh, H, 1.0f, act, 4 * H);
        rc_lstm_fwd_args a = {
            rows, H, t, p.n_at[t + 1], act, v.c + (size_t)row0 * H,
            t > 0 ? v.c + (size_t)p.off_at[t - 1] * H : NULL, b,
            v.hin + (size_t)p.off_at[t + 1] * H, d_len, d_perm, h_last};
        RC_LAUNCH(rc_k_lstm_fwd_step, rc_blocks_for((size_t)rows * H), RC_THREADS, a);
    }
    rc_lstm_plan_free(&p);
}

static void rc_op_lstm_backward(const rc_lstm_shape *s, const float *x,
                                const float *w_ih, const float *w_hh,
                                const float *cache, const float *dh_last,
                                float *dx, float *dw_ih, float *dw_hh,
                                float *db) {
    int F = s->F, H = s->H, G4 = 4 * s->H;
    rc_lstm_plan p;
    rc_lstm_plan_build(s, &p);
    rc_lstm_cache_view v = rc_lstm_cache_split(s, cache);
    rc_dev_scratch_reset();
    const int *d_perm = (const int *)rc_dev_upload(p.perm, (size_t)(p.S + 1) * sizeof(int));
    const int *d_len = (const int *)rc_dev_upload(p.len, (size_t)(p.S + 1) * sizeof(int));
    const int *d_rows = (const int *)rc_dev_upload(p.row_src, (size_t)(p.N + 1) * sizeof(int));
    float *dgates = (float *)rc_dev_scratch(((size_t)p.N + 1) * G4 * sizeof(float));
    float *dh_rec = (float *)rc_dev_scratch(((size_t)s->S + 1) * H * sizeof(float));
    float *dc = (float *)rc_dev_scratch(((size_t)s->S + 1) * H * sizeof(float));
    rc_dev_memset0(dc, (size_t)s->S * H * sizeof(float));
    for (int t = p.steps - 1; t >= 0; t--) {
        int rows = p.n_at[t], row0 = p.off_at[t], next = p.n_at[t + 1];
        if (next > 0) /* dh of step t from step t+1's gates: dG W_hh */
            rc_dev_gemm(0, 0, next, H, G4, 1.0f, dgates + (size_t)p.off_at[t + 1] * G4,
                        G4, w_hh, H, 0.0f, dh_rec, H);
        rc_lstm_bwd_args a = {
            rows, H, t, next, v.act + (size_t)row0 * G4, v.c + (size_t)row0 * H,
            t > 0 ? v.c + (size_t)p.off_at[t - 1] * H : NULL, dh_rec, dh_last,
            d_len, d_perm, dc, dgates + (size_t)row0 * G4};
        RC_LAUNCH(rc_k_lstm_bwd_step, rc_blocks_for((size_t)rows * H), RC_THREADS, a);
    }
    /* weight gradients over all live rows at once */
    rc_dev_gemm(1, 0, G4, F, p.N, 1.0f, dgates, G4, v.xp, F, 0.0f, dw_ih, F);
    rc_dev_gemm(1, 0, G4, H, p.N, 1.0f, dgates, G4, v.hin, H, 0.0f, dw_hh, H);
    rc_op_col_sum(p.N, G4, dgates, db);
    if (dx) {
        /* padded steps get dx = 0 */
        rc_dev_memset0(dx, (size_t)s->S * s->T * F * sizeof(float));
        if (p.N > 0) {
            float *dxp = (float *)rc_dev_scratch((size_t)p.N * F * sizeof(float));
            rc_dev_gemm(0, 0, p.N, F, G4, 1.0f, dgates, G4, w_ih, F, 0.0f, dxp, F);
            rc_rows_args unpack = {p.N, F, d_rows, dxp, dx, 1};
            RC_LAUNCH(rc_k_move_rows, rc_blocks_for((size_t)p.N * F), RC_THREADS,
                      unpack);
        }
    }
    (void)x;
    rc_lstm_plan_free(&p);
}

/* ---- contrastive hinge loss ------------------------------------------------ */

#ifndef RC_HINGE_THREADS
#define RC_HINGE_THREADS 128
#endif

static double rc_op_hinge_loss(int n_emb, int dim, const float *emb,
                               int n_pairs, const rc_loss_pair *pairs,
                               const rc_hinge_params *hp, float *d_emb) {
    if (n_emb <= 0) return 0.0;
    size_t np = (size_t)(n_pairs > 0 ? n_pairs : 0) + 1;
    int *pa = (int *)rc_xmalloc(np * sizeof(int));
    int *pb = (int *)rc_xmalloc(np * sizeof(int));
    int *pos = (int *)rc_xmalloc(np * sizeof(int));
    int *map = (int *)rc_xmalloc(np * sizeof(int));
    float *w = (float *)rc_xmalloc(np * sizeof(float));
    int *inc_off = (int *)rc_xcalloc((size_t)n_emb + 1, sizeof(int));
    int *inc = (int *)rc_xmalloc(2 * np * sizeof(int));
    for (int q = 0; q < n_pairs; q++) {
        pa[q] = pairs[q].a;
        pb[q] = pairs[q].b;
        pos[q] = pairs[q].positive;
        map[q] = pairs[q].map;
        w[q] = pairs[q].weight;
        inc_off[pairs[q].a + 1]++;
        if (pairs[q].b != pairs[q].a) inc_off[pairs[q].b + 1]++;
    }
    for (int e = 0; e < n_emb; e++) inc_off[e + 1] += inc_off[e];
    int *fill = (int *)rc_xmalloc(((size_t)n_emb + 1) * sizeof(int));
    memcpy(fill, inc_off, (size_t)n_emb * sizeof(int));
    for (int q = 0; q < n_pairs; q++) {
        inc[fill[pairs[q].a]++] = q;
        if (pairs[q].b != pairs[q].a) inc[fill[pairs[q].b]++] = q;
    }
    rc_dev_scratch_reset();
    double *part = (double *)rc_dev_scratch((size_t)n_emb * sizeof(double));
    double *out = (double *)rc_dev_scratch(sizeof(double));
    rc_hinge_args a = {
        n_emb, dim, emb,
        (const int *)rc_dev_upload(pa, np * sizeof(int)),
        (const int *)rc_dev_upload(pb, np * sizeof(int)),
        (const int *)rc_dev_upload(pos, np * sizeof(int)),
        (const int *)rc_dev_upload(map, np * sizeof(int)),
        (const float *)rc_dev_upload(w, np * sizeof(float)),
        (const int *)rc_dev_upload(inc_off, ((size_t)n_emb + 1) * sizeof(int)),
        (const int *)rc_dev_upload(inc, 2 * np * sizeof(int)),
        hp->margin, hp->scale, RC_HINGE_EPS, hp->squared, d_emb, part};
    unsigned blocks = n_emb < RC_MAX_BLOCKS ? (unsigned)n_emb : RC_MAX_BLOCKS;
    RC_LAUNCH(rc_k_hinge, blocks, RC_HINGE_THREADS, a);
    rc_reduce_args r = {n_emb, part, out};
    RC_LAUNCH(rc_k_reduce_final, 1, RC_THREADS, r);
    double loss = 0.0;
    rc_dev_download(&loss, out, sizeof loss);
    free(fill);
    free(inc);
    free(inc_off);
    free(w);
    free(map);
    free(pos);
    free(pb);
    free(pa);
    return loss;
}


/* ---- the action term: warp loss -------------------------------------------- */

#ifndef RC_WARP_THREADS
#define RC_WARP_THREADS 256
#endif

static double rc_op_warp_loss(const rc_warp_shape *s, const float *frames,
                              const int *first, const int *last,
                              const float *theta, float *d_theta) {
    if (s->n <= 0) return 0.0;
    size_t fe = (size_t)s->C * s->S * s->S;
    int pooled_total = 0;
    for (int k = 0; k < s->n_scales; k++)
        pooled_total += s->C * (s->S / s->scales[k]) * (s->S / s->scales[k]);
    rc_dev_scratch_reset();
    rc_warp_args a;
    memset(&a, 0, sizeof a);
    a.n = s->n;
    a.C = s->C;
    a.S = s->S;
    a.grid = s->grid;
    a.n_params = rc_warp_params(s);
    a.n_scales = s->n_scales;
    a.border = s->border;
    a.pooled_total = pooled_total;
    for (int k = 0; k < s->n_scales; k++) a.scales[k] = s->scales[k];
    a.scale = s->scale;
    a.moving = s->moving;
    a.frames = frames;
    a.theta = theta;
    a.first = (const int *)rc_dev_upload(first, (size_t)s->n * sizeof(int));
    a.last = (const int *)rc_dev_upload(last, (size_t)s->n * sizeof(int));
    a.warped = (float *)rc_dev_scratch((size_t)s->n * fe * sizeof(float));
    a.pooled = (float *)rc_dev_scratch((size_t)s->n * pooled_total * sizeof(float));
    a.d_theta = d_theta;
    a.loss_part = (double *)rc_dev_scratch((size_t)s->n * sizeof(double));
    double *out = (double *)rc_dev_scratch(sizeof(double));
    unsigned blocks = s->n < RC_MAX_BLOCKS ? (unsigned)s->n : RC_MAX_BLOCKS;
    RC_LAUNCH(rc_k_warp_loss, blocks, RC_WARP_THREADS, a);
    rc_reduce_args r = {s->n, a.loss_part, out};
    RC_LAUNCH(rc_k_reduce_final, 1, RC_THREADS, r);
    double loss = 0.0;
    rc_dev_download(&loss, out, sizeof loss);
    return loss * s->scale;
}

/* The rc_backend entries (in ops.h order, after the convolutions) that the
 * CUDA backend and its emulation share: one list, so that an op added here
 * reaches both tables. */
#define RC_OPS_SHARED_ENTRIES                                               \
    rc_op_relu_forward, rc_op_relu_backward, rc_op_gap_forward,             \
        rc_op_gap_backward, rc_op_linear_forward, rc_op_linear_backward,     \
        rc_op_lstm_cache_size, rc_op_lstm_forward, rc_op_lstm_backward,      \
        rc_op_hinge_loss, rc_op_warp_loss, rc_op_sum_squares, rc_op_scale, rc_op_axpy, \
        rc_op_adamw_update, \
        rc_op_gather_pairs, rc_op_gather_steps, rc_op_scatter_steps

#endif
