/* test_emu_kernels.c: the CUDA backend's custom kernels and op drivers, run
 * on the CPU by the fiber emulator (kernels/emu), against the CPU reference ops
 * on small shapes. What this covers that a GPU-less CI could not otherwise:
 * the indexing of every kernel, the block reductions (warp shuffles, shared
 * memory, barriers), the packed-sequence LSTM with mixed lengths, the GEMM
 * orientations of the drivers, and the CSR tables behind the deterministic
 * loss and scatter. It also shows that the emulator catches a missing
 * __syncthreads: a deliberately broken reduction must fail on some seeds. */
#include <string.h>

#include "emu/emu.h"
#include "emu/emu_backend.h"
#include "recompose/common.h"
#include "recompose/ops.h"
#include "recompose/rng.h"
#include "test_util.h"
#include "../kernels/rc_kernels.cuh"

static uint64_t lcg = 12345;
static float frand(void) { /* uniform in [-1, 1), independent of rng.h */
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}
static float *rand_array(size_t n) {
    float *a = rc_xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = frand();
    return a;
}

/* ---- the broken-barrier demonstration ------------------------------------- */

/* rc_block_sum without the barrier between publishing the warp sums and
 * reading them: warp 0 may read a slot before its warp has written it. */
RC_DEV double block_sum_missing_sync(double v, double *scratch) {
    unsigned lane = threadIdx.x % RC_WARP, warp = threadIdx.x / RC_WARP;
    unsigned n_warps = (blockDim.x + RC_WARP - 1) / RC_WARP;
    v = rc_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    if (warp == 0) {
        v = lane < n_warps ? scratch[lane] : 0.0;
        v = rc_warp_sum(v);
    }
    return v;
}

typedef struct {
    int broken;
    double *out;
} sum_args;

RC_KERNEL(k_sum_of_ids, sum_args) {
    RC_SHARED(double, scratch, RC_WARP);
    double v = threadIdx.x + 1.0;
    v = a.broken ? block_sum_missing_sync(v, scratch) : rc_block_sum(v, scratch);
    if (threadIdx.x == 0) a.out[blockIdx.x] = v;
}

static void test_missing_barrier_is_caught(void) {
    const unsigned threads = 96, blocks = 3; /* three warps per block */
    double expect = threads * (threads + 1) / 2.0, out[3];
    int wrong_ok = 0, wrong_broken = 0, seeds = 24;
    uint64_t barriers0 = rc_emu_barrier_count();
    for (int seed = 1; seed <= seeds; seed++) {
        for (int broken = 0; broken <= 1; broken++) {
            rc_emu_seed((uint64_t)seed);
            sum_args a = {broken, out};
            rc_emu_launch(blocks, threads, k_sum_of_ids_emu, &a);
            int bad = 0;
            for (unsigned b = 0; b < blocks; b++) bad |= !(out[b] == expect);
            if (broken) wrong_broken += bad; else wrong_ok += bad;
        }
    }
    CHECK(rc_emu_barrier_count() > barriers0);
    CHECK_MSG(wrong_ok == 0, "correct reduction wrong on %d of %d seeds",
              wrong_ok, seeds);
    CHECK_MSG(wrong_broken > 0, "the missing __syncthreads went unnoticed on "
              "all %d seeds", seeds);
    printf("missing-barrier kernel wrong on %d/%d seeds (correct one: %d)\n",
           wrong_broken, seeds, wrong_ok);
}

/* ---- ops against the CPU reference ---------------------------------------- */

#define CLOSE(name, a, b, n, tol)                                           \
    do {                                                                    \
        double e_ = rc_test_rel_err_f((a), (b), (n));                       \
        CHECK_MSG(e_ < (tol), "%s: rel err %.3g (tol %.1g)", name, e_, (double)(tol)); \
    } while (0)

static void test_lstm_mixed_lengths(void) {
    const rc_backend *emu = rc_backend_emu();
    int S = 6, T = 5, F = 7, H = 5;
    int len[6] = {5, 1, 3, 5, 2, 4};
    rc_lstm_shape s = {S, T, F, H, len};
    float *x = rand_array((size_t)S * T * F);
    float *w_ih = rand_array((size_t)4 * H * F), *w_hh = rand_array((size_t)4 * H * H);
    float *b = rand_array((size_t)4 * H), *dh = rand_array((size_t)S * H);
    float h_ref[30], h_emu[30];
    float *cache_ref = rc_xmalloc(rc_lstm_cache_size(&s) * sizeof(float));
    float *cache_emu = emu->alloc(emu->lstm_cache_size(&s) * sizeof(float));
    rc_lstm_forward_f32(&s, x, w_ih, w_hh, b, h_ref, cache_ref);
    emu->lstm_forward(&s, x, w_ih, w_hh, b, h_emu, cache_emu);
    CLOSE("lstm h_last", h_emu, h_ref, (size_t)S * H, 1e-5);

    size_t nx = (size_t)S * T * F;
    float *dx_ref = rc_xmalloc(nx * sizeof(float)), *dx_emu = rand_array(nx);
    float dwi_ref[140], dwi_emu[140], dwh_ref[100], dwh_emu[100], db_ref[20], db_emu[20];
    rc_lstm_backward_f32(&s, x, w_ih, w_hh, cache_ref, dh, dx_ref, dwi_ref, dwh_ref, db_ref);
    emu->lstm_backward(&s, x, w_ih, w_hh, cache_emu, dh, dx_emu, dwi_emu, dwh_emu, db_emu);
    CLOSE("lstm dx", dx_emu, dx_ref, nx, 1e-5);
    CLOSE("lstm dw_ih", dwi_emu, dwi_ref, (size_t)4 * H * F, 1e-5);
    CLOSE("lstm dw_hh", dwh_emu, dwh_ref, (size_t)4 * H * H, 1e-5);
    CLOSE("lstm db", db_emu, db_ref, (size_t)4 * H, 1e-5);
    /* steps past a sequence's end get exactly zero */
    for (int q = 0; q < S; q++)
        for (int t = len[q]; t < T; t++)
            for (int k = 0; k < F; k++)
                CHECK(dx_emu[((size_t)q * T + t) * F + k] == 0.0f);
    /* the gradient does depend on the padded inputs' neighbours: sanity that
     * the comparison is not vacuous */
    CHECK(rc_test_rel_err_f(dwh_ref, dwh_emu, 1) < 1 && fabsf(dwh_ref[0]) > 0);
    emu->free(cache_emu);
    free(cache_ref); free(dx_ref); free(dx_emu);
    free(x); free(w_ih); free(w_hh); free(b); free(dh);
}

static void test_hinge(void) {
    const rc_backend *emu = rc_backend_emu();
    int n_emb = 14, dim = 12, n_pairs = 12;
    float *emb = rand_array((size_t)n_emb * dim);
    for (int k = 0; k < dim; k++) emb[3 * dim + k] = emb[4 * dim + k]; /* d = 0 */
    rc_loss_pair pairs[12];
    for (int q = 0; q < n_pairs; q++) {
        pairs[q].a = (q * 5) % n_emb;
        pairs[q].b = (q * 3 + 1) % n_emb;
        pairs[q].positive = q % 3 == 0;
        pairs[q].weight = 0.5f + 0.25f * (float)(q % 4);
        pairs[q].map = q % RC_MAPS; /* equivariance pairs among them */
    }
    pairs[1].a = 3; pairs[1].b = 4; pairs[1].positive = 0;  /* hinge at d = 0 */
    pairs[1].map = RC_MAP_NONE;
    pairs[2].a = 5; pairs[2].b = 5; pairs[2].positive = 1;  /* a row with itself */
    pairs[2].map = RC_MAP_NONE;
    for (int squared = 0; squared <= 1; squared++) {
        for (double margin = 0.5; margin < 5; margin *= 4) {
            rc_hinge_params p = {margin, squared, 1.0 / 3};
            float *g_ref = rc_xmalloc((size_t)n_emb * dim * sizeof(float));
            float *g_emu = rand_array((size_t)n_emb * dim);
            double l_ref = rc_hinge_loss_f32(n_emb, dim, emb, n_pairs, pairs, &p, g_ref);
            double l_emu = emu->hinge_loss(n_emb, dim, emb, n_pairs, pairs, &p, g_emu);
            CHECK_MSG(fabs(l_emu - l_ref) <= 1e-5 * fabs(l_ref) + 1e-12,
                      "hinge loss %.9g vs %.9g (squared %d, margin %g)", l_emu,
                      l_ref, squared, margin);
            CLOSE("hinge d_emb", g_emu, g_ref, (size_t)n_emb * dim, 1e-5);
            for (size_t i = 0; i < (size_t)n_emb * dim; i++) CHECK(isfinite(g_emu[i]));
            /* bitwise reproducible under another thread schedule */
            float *g2 = rand_array((size_t)n_emb * dim);
            rc_emu_seed(99 + (uint64_t)squared);
            double l2 = emu->hinge_loss(n_emb, dim, emb, n_pairs, pairs, &p, g2);
            CHECK(l2 == l_emu);
            CHECK(memcmp(g2, g_emu, (size_t)n_emb * dim * sizeof(float)) == 0);
            /* d_emb is nullable */
            CHECK(emu->hinge_loss(n_emb, dim, emb, n_pairs, pairs, &p, NULL) == l_emu);
            free(g_ref); free(g_emu); free(g2);
        }
    }
    free(emb);
}

static void test_optimizer_ops(void) {
    const rc_backend *emu = rc_backend_emu();
    size_t n = 1000;
    float *g = rand_array(n);
    double ss_ref = rc_sum_squares_f32(n, g), ss_emu = emu->sum_squares(n, g);
    CHECK_MSG(fabs(ss_emu - ss_ref) <= 1e-12 * ss_ref, "sum squares %.17g vs %.17g",
              ss_emu, ss_ref);
    float *w_ref = rand_array(n), *m_ref = rand_array(n), *v_ref = rand_array(n);
    for (size_t i = 0; i < n; i++) v_ref[i] = fabsf(v_ref[i]);
    float *w_emu = rc_xmalloc(n * 4), *m_emu = rc_xmalloc(n * 4), *v_emu = rc_xmalloc(n * 4);
    memcpy(w_emu, w_ref, n * 4); memcpy(m_emu, m_ref, n * 4); memcpy(v_emu, v_ref, n * 4);
    for (int step = 0; step < 3; step++) {
        rc_adamw_update_f32(n, w_ref, g, m_ref, v_ref, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.19f, 0.003f);
        emu->adamw_update(n, w_emu, g, m_emu, v_emu, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 0.19f, 0.003f);
    }
    CLOSE("adamw w", w_emu, w_ref, n, 1e-6);
    CLOSE("adamw m", m_emu, m_ref, n, 1e-6);
    CLOSE("adamw v", v_emu, v_ref, n, 1e-6);
    float *g2 = rc_xmalloc(n * 4);
    memcpy(g2, g, n * 4);
    rc_scale_f32(n, g, 0.37f);
    emu->scale(n, g2, 0.37f);
    CHECK(memcmp(g, g2, n * 4) == 0);
    free(g); free(g2); free(w_ref); free(m_ref); free(v_ref);
    free(w_emu); free(m_emu); free(v_emu);
}

static void test_layers(void) {
    const rc_backend *emu = rc_backend_emu();
    int n = 5, c = 6, hw = 7, in = 11, out = 4;
    size_t nx = (size_t)n * c * hw;
    float *x = rand_array(nx), *y_ref = rc_xmalloc(nx * 4), *y_emu = rc_xmalloc(nx * 4);
    rc_relu_forward_f32(nx, x, y_ref);
    emu->relu_forward(nx, x, y_emu);
    CHECK(memcmp(y_ref, y_emu, nx * 4) == 0);
    float *dy = rand_array(nx), *dx_ref = rc_xmalloc(nx * 4), *dx_emu = rc_xmalloc(nx * 4);
    rc_relu_backward_f32(nx, y_ref, dy, dx_ref);
    emu->relu_backward(nx, y_ref, dy, dx_emu);
    CHECK(memcmp(dx_ref, dx_emu, nx * 4) == 0);
    float p_ref[30], p_emu[30];
    rc_gap_forward_f32(n, c, hw, x, p_ref);
    emu->gap_forward(n, c, hw, x, p_emu);
    CLOSE("gap forward", p_emu, p_ref, (size_t)n * c, 1e-6);
    rc_gap_backward_f32(n, c, hw, p_ref, dx_ref);
    emu->gap_backward(n, c, hw, p_ref, dx_emu);
    CLOSE("gap backward", dx_emu, dx_ref, nx, 1e-6);

    float *lx = rand_array((size_t)n * in), *lw = rand_array((size_t)out * in);
    float *lb = rand_array(out), ly_ref[20], ly_emu[20];
    rc_linear_forward_f32(n, in, out, lx, lw, lb, ly_ref);
    emu->linear_forward(n, in, out, lx, lw, lb, ly_emu);
    CLOSE("linear forward", ly_emu, ly_ref, (size_t)n * out, 1e-6);
    float ldx_ref[55], ldx_emu[55], ldw_ref[44], ldw_emu[44], ldb_ref[4], ldb_emu[4];
    rc_linear_backward_f32(n, in, out, lx, lw, ly_ref, ldx_ref, ldw_ref, ldb_ref);
    emu->linear_backward(n, in, out, lx, lw, ly_ref, ldx_emu, ldw_emu, ldb_emu);
    CLOSE("linear dx", ldx_emu, ldx_ref, (size_t)n * in, 1e-6);
    CLOSE("linear dw", ldw_emu, ldw_ref, (size_t)out * in, 1e-6);
    CLOSE("linear db", ldb_emu, ldb_ref, (size_t)out, 1e-6);

    /* convolution with the bias done by the backend's kernels */
    rc_conv_shape cs;
    rc_conv_shape_init(&cs, 2, 3, 9, 9, 5, 3, 2, 1);
    size_t cx = (size_t)cs.n * cs.c_in * cs.h_in * cs.w_in;
    size_t cy = (size_t)cs.n * cs.c_out * cs.h_out * cs.w_out;
    size_t cw = (size_t)cs.c_out * cs.c_in * cs.k * cs.k;
    float *xx = rand_array(cx), *ww = rand_array(cw), *bb = rand_array(cs.c_out);
    float *ws = rc_xmalloc((rc_conv2d_workspace(&cs) + 1) * 4);
    float *yr = rc_xmalloc(cy * 4), *ye = rc_xmalloc(cy * 4);
    rc_conv2d_forward_f32(&cs, xx, ww, bb, yr, ws);
    emu->conv2d_forward(&cs, xx, ww, bb, ye, ws);
    CLOSE("conv forward", ye, yr, cy, 1e-6);
    float *dyc = rand_array(cy), *dxr = rc_xmalloc(cx * 4), *dxe = rc_xmalloc(cx * 4);
    float *dwr = rc_xmalloc(cw * 4), *dwe = rc_xmalloc(cw * 4), dbr[5], dbe[5];
    rc_conv2d_backward_f32(&cs, xx, ww, dyc, dxr, dwr, dbr, ws);
    emu->conv2d_backward(&cs, xx, ww, dyc, dxe, dwe, dbe, ws);
    CLOSE("conv db (bias-grad kernel)", dbe, dbr, 5, 1e-6);
    free(xx); free(ww); free(bb); free(ws); free(yr); free(ye); free(dyc);
    free(dxr); free(dxe); free(dwr); free(dwe);
    free(x); free(y_ref); free(y_emu); free(dy); free(dx_ref); free(dx_emu);
    free(lx); free(lw); free(lb);
}

static void test_index_moves(void) {
    const rc_backend *emu = rc_backend_emu();
    int clips = 3, fpc = 4, fe = 10, P = 7;
    float *frames = rand_array((size_t)clips * fpc * fe);
    int pc[7] = {0, 2, 1, 0, 2, 1, 1}, pi[7] = {0, 3, 1, 2, 0, 3, 2},
        pj[7] = {1, 2, 0, 3, 3, 1, 2};
    float out_ref[140], out_emu[140];
    rc_gather_pairs_f32(P, pc, pi, pj, fpc, (size_t)fe, frames, out_ref);
    emu->gather_pairs(P, pc, pi, pj, fpc, (size_t)fe, frames, out_emu);
    CHECK(memcmp(out_ref, out_emu, sizeof out_ref) == 0);

    int n_seq = 4, steps = 3, dim = 5;
    int seq_pair[12] = {0, 1, 2, 3, -1, -1, 1, 1, 0, 6, 2, -1};
    float *feat = rand_array((size_t)P * dim), st_ref[60], st_emu[60];
    rc_gather_steps_f32(n_seq, steps, seq_pair, dim, feat, st_ref);
    emu->gather_steps(n_seq, steps, seq_pair, dim, feat, st_emu);
    CHECK(memcmp(st_ref, st_emu, sizeof st_ref) == 0);
    float *d_steps = rand_array((size_t)n_seq * steps * dim), df_ref[35], df_emu[35];
    rc_scatter_steps_f32(n_seq, steps, seq_pair, dim, d_steps, P, df_ref);
    emu->scatter_steps(n_seq, steps, seq_pair, dim, d_steps, P, df_emu);
    /* same summation order as the reference: bitwise equal */
    CHECK(memcmp(df_ref, df_emu, sizeof df_ref) == 0);
    for (int k = 0; k < dim; k++) CHECK(df_emu[4 * dim + k] == 0.0f); /* unused */
    free(frames); free(feat); free(d_steps);
}

int main(void) {
    double t0 = rc_now();
    test_missing_barrier_is_caught();
    test_lstm_mixed_lengths();
    test_hinge();
    test_optimizer_ops();
    test_layers();
    test_index_moves();
    printf("emulated kernels: %.2f s\n", rc_now() - t0);
    TEST_DONE();
}
