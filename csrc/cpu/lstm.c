/* lstm.c: single-layer LSTM over padded sequences of mixed lengths, as
 * torch.nn.LSTM (gate order i, f, g, o) with one bias and a zero initial
 * state; forward and full backpropagation through time.
 *
 * Forward:
 *   pre[s][t] = W_ih x[s][t] + b            one GEMM over all S*T steps
 *   for t = 0..T-1, over the sequences still active (len[s] > t):
 *     pre += W_hh h[s][t-1]                 one GEMM over the active rows
 *     i, f, o = sigmoid, g = tanh;  c = f c_prev + i g;  h = o tanh(c)
 *
 * Active rows are gathered into a contiguous block for the recurrent GEMM;
 * copying n_active*H values is cheap beside the 4H*H work per row, and it
 * leaves the cache in the caller's [S][T] order, which lets the backward pass
 * form dW_ih, dW_hh and dx as single GEMMs over all steps.
 *
 * Cache (elements, in order):
 *   gates [S][T][4H]  post-activation i, f, g, o
 *   cell  [S][T][H]   c after step t
 *   h_in  [S][T][H]   h entering step t (0 at t = 0 and on padded steps)
 *   hp    [S][H]      scratch: active h rows for the recurrent GEMM
 *   rec   [S][4H]     scratch: recurrent GEMM result
 * Padded steps hold zeros (their gates/cells are never read). The size
 * depends on S, T, H only (not on the lengths), so callers can size it once.
 *
 * Padded inputs x[s][t >= len[s]] go through the all-steps GEMMs multiplied
 * by exact zeros, so any finite value there (gather_steps writes 0) leaves
 * every result unchanged; dx is exactly 0 on those steps.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "cpu/real.h"

/* Below this many gate values per step the elementwise loop stays serial. */
#define RC_LSTM_OMP_MIN 16384

#if !RC_REAL_DOUBLE
size_t rc_lstm_cache_size(const rc_lstm_shape *s) {
    size_t S = (size_t)s->S, T = (size_t)s->T, H = (size_t)s->H;
    return S * T * 6 * H + S * 5 * H;
}
#endif

typedef struct {
    real *gates, *cell, *h_in, *hp, *rec;
} lstm_cache_view;

static lstm_cache_view lstm_view(const rc_lstm_shape *s, real *cache) {
    size_t S = (size_t)s->S, T = (size_t)s->T, H = (size_t)s->H;
    lstm_cache_view v;
    v.gates = cache;
    v.cell = v.gates + S * T * 4 * H;
    v.h_in = v.cell + S * T * H;
    v.hp = v.h_in + S * T * H;
    v.rec = v.hp + S * H;
    return v;
}

static real sigmoid(real z) { return (real)1 / ((real)1 + RC_EXP(-z)); }

/* Sequences active at step t, in index order; returns how many. */
static int active_at(const rc_lstm_shape *s, int t, int *idx) {
    int n = 0;
    for (int q = 0; q < s->S; q++)
        if (s->len[q] > t) idx[n++] = q;
    return n;
}

void RC_FN(rc_lstm_forward)(const rc_lstm_shape *s, const real *x,
                            const real *w_ih, const real *w_hh, const real *b,
                            real *h_last, real *cache) {
    const int S = s->S, T = s->T, F = s->F, H = s->H, G = 4 * H;
    if (S <= 0 || T <= 0) return;
    lstm_cache_view c = lstm_view(s, cache);
    const size_t steps = (size_t)S * T;
    memset(c.cell, 0, steps * H * sizeof(real));
    memset(c.h_in, 0, steps * H * sizeof(real));

    /* input projection of every step, padded ones included (discarded) */
    for (size_t r = 0; r < steps; r++)
        memcpy(c.gates + r * G, b, (size_t)G * sizeof(real));
    RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)steps, G, F, 1, x,
            F, w_ih, F, 1, c.gates, G);

    int *idx = rc_xmalloc((size_t)S * sizeof(int));
    for (int t = 0; t < T; t++) {
        int n = active_at(s, t, idx);
        if (n == 0) break;
        if (t > 0) {
            for (int k = 0; k < n; k++)
                memcpy(c.hp + (size_t)k * H,
                       c.h_in + ((size_t)idx[k] * T + t) * H,
                       (size_t)H * sizeof(real));
            RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, G, H, 1, c.hp,
                    H, w_hh, H, 0, c.rec, G);
        }
        #pragma omp parallel for schedule(static) \
            if ((size_t)n * G > RC_LSTM_OMP_MIN)
        for (int k = 0; k < n; k++) {
            const int q = idx[k];
            const size_t st = (size_t)q * T + t;
            real *gt = c.gates + st * G;
            const real *rec = t > 0 ? c.rec + (size_t)k * G : NULL;
            const real *c_prev = t > 0 ? c.cell + (st - 1) * H : NULL;
            real *c_now = c.cell + st * H;
            /* h entering the next step, or the sequence's final output */
            real *h_out = t + 1 < s->len[q] ? c.h_in + (st + 1) * H
                                            : h_last + (size_t)q * H;
            for (int j = 0; j < H; j++) {
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
    free(idx);

    /* padded steps: zero gates so the cache holds no stale values */
    for (int q = 0; q < S; q++)
        for (int t = s->len[q]; t < T; t++)
            memset(c.gates + ((size_t)q * T + t) * G, 0,
                   (size_t)G * sizeof(real));
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
    lstm_cache_view c = lstm_view(s, (real *)cache); /* read only below */

    /* dpre [S][T][4H]: gradient of the gate pre-activations; zero on padded
     * steps so the all-steps GEMMs below ignore them. */
    real *dpre = rc_xcalloc(steps * G, sizeof(real));
    real *dh = rc_xmalloc((size_t)S * H * sizeof(real));   /* dL/dh_t */
    real *dc = rc_xcalloc((size_t)S * H, sizeof(real));     /* from t+1 */
    real *dg_act = rc_xmalloc((size_t)S * G * sizeof(real)); /* active rows */
    real *dh_rec = rc_xmalloc((size_t)S * H * sizeof(real));
    int *idx = rc_xmalloc((size_t)S * sizeof(int));

    for (int t = T - 1; t >= 0; t--) {
        int n = active_at(s, t, idx);
        if (n == 0) continue;
        #pragma omp parallel for schedule(static) \
            if ((size_t)n * G > RC_LSTM_OMP_MIN)
        for (int k = 0; k < n; k++) {
            const int q = idx[k];
            const size_t st = (size_t)q * T + t;
            const int last = t == s->len[q] - 1;
            const real *gt = c.gates + st * G;
            const real *c_now = c.cell + st * H;
            const real *c_prev = t > 0 ? c.cell + (st - 1) * H : NULL;
            /* the last step's h is h_last; earlier ones feed step t+1 */
            const real *dh_t = last ? dh_last + (size_t)q * H
                                    : dh + (size_t)q * H;
            real *dc_q = dc + (size_t)q * H;
            real *dp = dpre + st * G;
            for (int j = 0; j < H; j++) {
                real gi = gt[j], gf = gt[H + j], gg = gt[2 * H + j],
                     go = gt[3 * H + j];
                real tc = RC_TANH(c_now[j]);
                /* dc_q is still 0 at a sequence's last step: t runs
                 * downwards and this is the first step of q it visits */
                real dct = dh_t[j] * go * ((real)1 - tc * tc) + dc_q[j];
                real cp = c_prev ? c_prev[j] : (real)0;
                dp[j] = dct * gg * gi * ((real)1 - gi);
                dp[H + j] = dct * cp * gf * ((real)1 - gf);
                dp[2 * H + j] = dct * gi * ((real)1 - gg * gg);
                dp[3 * H + j] = dh_t[j] * tc * go * ((real)1 - go);
                dc_q[j] = dct * gf; /* into step t-1 */
            }
            memcpy(dg_act + (size_t)k * G, dp, (size_t)G * sizeof(real));
        }
        if (t == 0) break;
        /* dh_{t-1} of the active rows = dpre_t * W_hh */
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, H, G, 1, dg_act,
                G, w_hh, H, 0, dh_rec, H);
        for (int k = 0; k < n; k++)
            memcpy(dh + (size_t)idx[k] * H, dh_rec + (size_t)k * H,
                   (size_t)H * sizeof(real));
    }

    /* parameter gradients over all steps at once (padded rows are zero) */
    RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, G, F, (int)steps, 1, dpre,
            G, x, F, 0, dw_ih, F);
    RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, (int)steps, 1, dpre,
            G, c.h_in, H, 0, dw_hh, H);
    for (int j = 0; j < G; j++) db[j] = 0;
    {
        /* column sums in step order, in double: deterministic */
        double *acc = rc_xcalloc((size_t)G, sizeof(double));
        for (size_t r = 0; r < steps; r++)
            for (int j = 0; j < G; j++) acc[j] += dpre[r * G + j];
        for (int j = 0; j < G; j++) db[j] = (real)acc[j];
        free(acc);
    }
    if (dx)
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)steps, F, G, 1,
                dpre, G, w_ih, F, 0, dx, F);

    free(idx);
    free(dh_rec);
    free(dg_act);
    free(dc);
    free(dh);
    free(dpre);
}
