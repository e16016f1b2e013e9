/* lstm.c: single-layer LSTM over padded sequences of mixed lengths, as
 * torch.nn.LSTM (gate order i, f, g, o) with one bias and a zero initial
 * state; forward and full backpropagation through time.
 *
 * Forward:
 *   pre[s][t] = W_ih x[s][t] + b            one GEMM over all S*T steps
 *   for t = 0..T-1, over the sequences still active (len[s] > t):
 *     pre += W_hh h[s][t-1]                 GEMM over the active rows
 *     i, f, o = sigmoid, g = tanh;  c = f c_prev + i g;  h = o tanh(c)
 *
 * Active rows are gathered into a contiguous block for the recurrent GEMM;
 * copying n_active*H values is cheap beside the 4H*H work per row, and it
 * leaves the cache in the caller's [S][T] order, which lets the backward pass
 * form dW_ih, dW_hh and dx as single GEMMs over all steps.
 *
 * Threads: one OpenMP region per pass, BLAS single-threaded inside it (see
 * rc_blas_serial_begin). In the recurrence each thread owns a slice of the
 * hidden units j in [j0, j1): it computes the recurrent product for the
 * rows of its units in all four gates (four GEMMs on row blocks of W_hh),
 * then their gates, cells and h. The next step needs every unit of h, so
 * there is one barrier per step. Backward mirrors this: a thread owns the
 * gate gradients of its units, and the columns j0..j1 of dh = dpre W_hh
 * (one barrier per step; the active-row gradients are double-buffered so the
 * next step's writes cannot race the current step's readers). The all-steps
 * GEMMs split their output rows between threads. Every output element is
 * computed by one thread in a fixed order: results are bitwise repeatable
 * for a fixed thread count.
 *
 * Cache (elements, in order):
 *   gates [S][T][4H]  post-activation i, f, g, o
 *   cell  [S][T][H]   c after step t
 *   h_in  [S][T][H]   h entering step t (0 at t = 0 and on padded steps)
 *   hp    [S][H]      scratch: active h rows for the recurrent GEMM
 *   rec   [S][4H]     scratch: recurrent GEMM result
 *   dpre  [S][T][4H]  backward scratch: gate pre-activation gradients
 *   dh, dc, dh_rec [S][H] each, dg_act 2 x [S][4H]: backward scratch
 * Backward writes only the scratch parts (so a training step allocates
 * nothing). Padded steps hold zeros (their gates/cells are never read). The
 * size depends on S, T, H only (not on the lengths), so callers can size it
 * once.
 *
 * Padded inputs x[s][t >= len[s]] go through the all-steps GEMMs multiplied
 * by exact zeros, so any finite value there (gather_steps writes 0) leaves
 * every result unchanged; dx is exactly 0 on those steps.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "cpu/real.h"

/* Each thread takes at least this much of a step's recurrent GEMM
 * (multiply-adds): below it the barrier per step costs more than the
 * thread saves. On 2 cores the tiny preset (S 128, H 128: 2^23 per step)
 * runs its LSTM 1.6x faster on two threads than on one
 * (bench/RESULTS.md). */
#define RC_LSTM_MIN_PER_THREAD ((size_t)1 << 21)

/* Sequences handled without allocating the active-row index. */
#define RC_LSTM_IDX_STACK 1024

#if !RC_REAL_DOUBLE
size_t rc_lstm_cache_size(const rc_lstm_shape *s) {
    size_t S = (size_t)s->S, T = (size_t)s->T, H = (size_t)s->H;
    return S * T * 10 * H + S * 16 * H;
}
#endif

typedef struct {
    real *gates, *cell, *h_in, *hp, *rec;
    real *dpre, *dh, *dc, *dh_rec, *dg_act[2];
} lstm_cache_view;

static lstm_cache_view lstm_view(const rc_lstm_shape *s, real *cache) {
    size_t S = (size_t)s->S, T = (size_t)s->T, H = (size_t)s->H;
    lstm_cache_view v;
    v.gates = cache;
    v.cell = v.gates + S * T * 4 * H;
    v.h_in = v.cell + S * T * H;
    v.hp = v.h_in + S * T * H;
    v.rec = v.hp + S * H;
    v.dpre = v.rec + S * 4 * H;
    v.dh = v.dpre + S * T * 4 * H;
    v.dc = v.dh + S * H;
    v.dh_rec = v.dc + S * H;
    v.dg_act[0] = v.dh_rec + S * H;
    v.dg_act[1] = v.dg_act[0] + S * 4 * H;
    return v;
}

static real sigmoid(real z) { return (real)1 / ((real)1 + RC_EXP(-z)); }

/* Sequences ordered by length, longest first (ties in index order): the
 * sequences active at step t (len > t) are then the first n_active(t) of
 * them, so one order serves every step and no thread ever rewrites it. */
static void order_by_length(const rc_lstm_shape *s, int *idx) {
    int n = 0;
    for (int L = s->T; L >= 1; L--)
        for (int q = 0; q < s->S; q++)
            if ((L == s->T ? s->len[q] >= L : s->len[q] == L)) idx[n++] = q;
}

/* order_by_length into `stack` when S fits, else into a malloc'd array (the
 * caller frees it when it is not `stack`). */
static int *sequences_by_length(const rc_lstm_shape *s,
                                int stack[RC_LSTM_IDX_STACK]) {
    int *idx = s->S <= RC_LSTM_IDX_STACK ? stack
                                         : rc_xmalloc((size_t)s->S * sizeof(int));
    order_by_length(s, idx);
    return idx;
}

static int n_active(const rc_lstm_shape *s, int t) {
    int n = 0;
    for (int q = 0; q < s->S; q++)
        if (s->len[q] > t) n++;
    return n;
}

static int lstm_threads(const rc_lstm_shape *s) {
    size_t work = (size_t)s->S * 4 * s->H * s->H;
    int nt = omp_get_max_threads();
    /* enough work and at least 8 hidden units per thread */
    while (nt > 1 && (work / (size_t)nt < RC_LSTM_MIN_PER_THREAD || s->H / nt < 8)) nt--;
    return nt < 1 ? 1 : nt;
}

/* [lo, hi) of n items for thread t of nt, in multiples of 8 where possible
 * (whole SIMD vectors per thread). */
static void split(int n, int t, int nt, int *lo, int *hi) {
    int blocks = (n + 7) / 8;
    *lo = (int)((long long)blocks * t / nt) * 8;
    *hi = (int)((long long)blocks * (t + 1) / nt) * 8;
    if (*lo > n) *lo = n;
    if (*hi > n) *hi = n;
}

/* out[rows][G] = bias + x[rows][F] W_ih^T for rows [r0, r1) */
static void input_projection(const real *x, const real *w_ih, const real *b,
                             int F, int G, size_t r0, size_t r1, real *out) {
    if (r0 >= r1) return;
    for (size_t r = r0; r < r1; r++)
        memcpy(out + r * G, b, (size_t)G * sizeof(real));
    RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(r1 - r0), G, F, 1,
            x + r0 * F, F, w_ih, F, 1, out + r0 * G, G);
}

/* Gates, cell and h of units [j0, j1) for the n active rows of step t. */
static void forward_units(const rc_lstm_shape *s, lstm_cache_view *c,
                          const int *idx, int n, int t, int j0, int j1,
                          real *h_last) {
    const int T = s->T, H = s->H, G = 4 * H;
    for (int k = 0; k < n; k++) {
        const int q = idx[k];
        const size_t st = (size_t)q * T + t;
        real *gt = c->gates + st * G;
        const real *rec = t > 0 ? c->rec + (size_t)k * G : NULL;
        const real *c_prev = t > 0 ? c->cell + (st - 1) * H : NULL;
        real *c_now = c->cell + st * H;
        /* h entering the next step, or the sequence's final output */
        real *h_out = t + 1 < s->len[q] ? c->h_in + (st + 1) * H
                                        : h_last + (size_t)q * H;
        for (int j = j0; j < j1; j++) {
            real zi = gt[j], zf = gt[H + j], zg = gt[2 * H + j],
                 zo = gt[3 * H + j];
            if (rec) {
                zi += rec[j];
                zf += rec[H + j];
                zg += rec[2 * H + j];
                zo += rec[3 * H + j];
            }
            real gi = sigmoid(zi), gf = sigmoid(zf), gg = RC_TANH(zg),
                 go = sigmoid(zo);
            real cn = gi * gg + (c_prev ? gf * c_prev[j] : (real)0);
            gt[j] = gi;
            gt[H + j] = gf;
            gt[2 * H + j] = gg;
            gt[3 * H + j] = go;
            c_now[j] = cn;
            h_out[j] = go * RC_TANH(cn);
        }
    }
}

void RC_FN(rc_lstm_forward)(const rc_lstm_shape *s, const real *x,
                            const real *w_ih, const real *w_hh, const real *b,
                            real *h_last, real *cache) {
    const int S = s->S, T = s->T, F = s->F, H = s->H, G = 4 * H;
    if (S <= 0 || T <= 0) return;
    lstm_cache_view c = lstm_view(s, cache);
    const size_t steps = (size_t)S * T;
    int idx_stack[RC_LSTM_IDX_STACK];
    int *idx = sequences_by_length(s, idx_stack);
    const int nt = lstm_threads(s);
    int blas = rc_blas_serial_begin(1);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int th = omp_get_thread_num();
        int j0, j1;
        split(H, th, nt, &j0, &j1);
        /* zero cells and h_in (h_in at t = 0 and padded steps stay 0), and
         * project the inputs: each thread its own rows */
        size_t r0 = steps * th / nt, r1 = steps * (th + 1) / nt;
        memset(c.cell + r0 * H, 0, (r1 - r0) * H * sizeof(real));
        memset(c.h_in + r0 * H, 0, (r1 - r0) * H * sizeof(real));
        input_projection(x, w_ih, b, F, G, r0, r1, c.gates);
        #pragma omp barrier
        for (int t = 0; t < T; t++) {
            const int n = n_active(s, t);
            if (n == 0) break;
            if (t > 0) {
                /* gather my units of h of the active rows */
                #pragma omp barrier
                for (int k = 0; k < n; k++)
                    memcpy(c.hp + (size_t)k * H + j0,
                           c.h_in + ((size_t)idx[k] * T + t) * H + j0,
                           (size_t)(j1 - j0) * sizeof(real));
                #pragma omp barrier
                /* rec[:, gate*H + j0 .. j1) = hp W_hh[gate*H + j0 .. j1)^T */
                if (j1 > j0)
                    for (int gate = 0; gate < 4; gate++)
                        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n,
                                j1 - j0, H, 1, c.hp, H,
                                w_hh + ((size_t)gate * H + j0) * H, H, 0,
                                c.rec + (size_t)gate * H + j0, G);
            }
            forward_units(s, &c, idx, n, t, j0, j1, h_last);
        }
        #pragma omp barrier
        /* padded steps: zero gates so the cache holds no stale values */
        for (int q = th; q < S; q += nt)
            for (int t = s->len[q]; t < T; t++)
                memset(c.gates + ((size_t)q * T + t) * G, 0,
                       (size_t)G * sizeof(real));
    }
    rc_blas_serial_end(blas);
    if (idx != idx_stack) free(idx);
}

/* Gate gradients of units [j0, j1) for the n active rows of step t; writes
 * dpre, the compact copy dg (rows in active order) and dc for step t-1. */
static void backward_units(const rc_lstm_shape *s, lstm_cache_view *c,
                           const int *idx, int n, int t, int j0, int j1,
                           const real *dh_last, real *dg) {
    const int T = s->T, H = s->H, G = 4 * H;
    for (int k = 0; k < n; k++) {
        const int q = idx[k];
        const size_t st = (size_t)q * T + t;
        const int last = t == s->len[q] - 1;
        const real *gt = c->gates + st * G;
        const real *c_now = c->cell + st * H;
        const real *c_prev = t > 0 ? c->cell + (st - 1) * H : NULL;
        /* the last step's h is h_last; earlier ones feed step t+1 */
        const real *dh_t = last ? dh_last + (size_t)q * H : c->dh + (size_t)q * H;
        real *dc_q = c->dc + (size_t)q * H;
        real *dp = c->dpre + st * G;
        real *dgk = dg + (size_t)k * G;
        for (int j = j0; j < j1; j++) {
            real gi = gt[j], gf = gt[H + j], gg = gt[2 * H + j],
                 go = gt[3 * H + j];
            real tc = RC_TANH(c_now[j]);
            /* no gradient flows into a sequence's last step from later */
            real dct = dh_t[j] * go * ((real)1 - tc * tc) +
                       (last ? (real)0 : dc_q[j]);
            real cp = c_prev ? c_prev[j] : (real)0;
            real a = dct * gg * gi * ((real)1 - gi);
            real f = dct * cp * gf * ((real)1 - gf);
            real g = dct * gi * ((real)1 - gg * gg);
            real o = dh_t[j] * tc * go * ((real)1 - go);
            dp[j] = dgk[j] = a;
            dp[H + j] = dgk[H + j] = f;
            dp[2 * H + j] = dgk[2 * H + j] = g;
            dp[3 * H + j] = dgk[3 * H + j] = o;
            dc_q[j] = dct * gf; /* into step t-1 */
        }
    }
}

/* Parameter gradients over all steps at once (padded rows of dpre are
 * zero), for gate rows [g0, g1): dW_ih, dW_hh, db. */
static void weight_grads(const rc_lstm_shape *s, const lstm_cache_view *c,
                         const real *x, int g0, int g1, real *dw_ih,
                         real *dw_hh, real *db) {
    const int F = s->F, H = s->H, G = 4 * H;
    const size_t steps = (size_t)s->S * s->T;
    if (g0 >= g1) return;
    RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, g1 - g0, F, (int)steps, 1,
            c->dpre + g0, G, x, F, 0, dw_ih + (size_t)g0 * F, F);
    RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, g1 - g0, H, (int)steps, 1,
            c->dpre + g0, G, c->h_in, H, 0, dw_hh + (size_t)g0 * H, H);
    /* column sums in step order, in double: deterministic */
    for (int j = g0; j < g1; j++) {
        double acc = 0;
        for (size_t r = 0; r < steps; r++) acc += c->dpre[r * G + j];
        db[j] = (real)acc;
    }
}

void RC_FN(rc_lstm_backward)(const rc_lstm_shape *s, const real *x,
                             const real *w_ih, const real *w_hh,
                             const real *cache, const real *dh_last, real *dx,
                             real *dw_ih, real *dw_hh, real *db) {
    const int S = s->S, T = s->T, F = s->F, H = s->H, G = 4 * H;
    const size_t steps = (size_t)S * T;
    if (S <= 0 || T <= 0) {
        memset(dw_ih, 0, (size_t)G * F * sizeof(real));
        memset(dw_hh, 0, (size_t)G * H * sizeof(real));
        memset(db, 0, (size_t)G * sizeof(real));
        return;
    }
    /* forward's part of the cache is only read; the scratch part is ours */
    lstm_cache_view c = lstm_view(s, (real *)cache);
    int idx_stack[RC_LSTM_IDX_STACK];
    int *idx = sequences_by_length(s, idx_stack);
    const int nt = lstm_threads(s);
    int blas = rc_blas_serial_begin(1);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int th = omp_get_thread_num();
        int j0, j1;
        split(H, th, nt, &j0, &j1);
        /* padded steps of dpre are zero so the all-steps GEMMs ignore them */
        for (int q = th; q < S; q += nt)
            for (int t = s->len[q]; t < T; t++)
                memset(c.dpre + ((size_t)q * T + t) * G, 0,
                       (size_t)G * sizeof(real));
        for (int t = T - 1; t >= 0; t--) {
            const int n = n_active(s, t);
            if (n == 0) continue;
            real *dg = c.dg_act[t & 1];
            backward_units(s, &c, idx, n, t, j0, j1, dh_last, dg);
            if (t == 0) break;
            #pragma omp barrier
            /* dh_{t-1}[:, j0..j1) of the active rows = dg W_hh[:, j0..j1) */
            if (j1 > j0) {
                RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, j1 - j0,
                        G, 1, dg, G, w_hh + j0, H, 0, c.dh_rec + j0, H);
                for (int k = 0; k < n; k++)
                    memcpy(c.dh + (size_t)idx[k] * H + j0,
                           c.dh_rec + (size_t)k * H + j0,
                           (size_t)(j1 - j0) * sizeof(real));
            }
        }
        #pragma omp barrier
        int g0, g1;
        split(G, th, nt, &g0, &g1);
        weight_grads(s, &c, x, g0, g1, dw_ih, dw_hh, db);
        if (dx) {
            size_t r0 = steps * th / nt, r1 = steps * (th + 1) / nt;
            if (r1 > r0)
                RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        (int)(r1 - r0), F, G, 1, c.dpre + r0 * G, G, w_ih, F,
                        0, dx + r0 * F, F);
        }
    }
    rc_blas_serial_end(blas);
    if (idx != idx_stack) free(idx);
}
