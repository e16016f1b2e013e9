/* test_ops_cpu.c: the CPU ops against independent oracles (direct loops, the
 * formulas written out), the conv chunking, determinism, the optimiser
 * kernels and the backend table.
 *
 * test_ops_grad.c proves that each backward is the derivative of its
 * forward; this file proves that each forward computes the right function
 * (a backward of a wrong forward would pass the FD test). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/ops.h"
#include "recompose/rng.h"
#include "conv_direct.h"
#include "test_util.h"

static rc_rng rng;

static double *random_array(size_t n, double lo, double hi) {
    double *p = malloc((n ? n : 1) * sizeof(double));
    if (!p) abort();
    for (size_t i = 0; i < n; i++) p[i] = rc_rng_range(&rng, lo, hi);
    return p;
}

static float *random_array_f(size_t n, double lo, double hi) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) abort();
    for (size_t i = 0; i < n; i++) p[i] = (float)rc_rng_range(&rng, lo, hi);
    return p;
}

/* ---- conv: direct loops ---------------------------------------------------- */

/* Small shapes in float64: must agree with the direct loops to rounding. */
static void test_conv_direct_f64(int n, int c_in, int h, int w, int c_out,
                                 int k, int stride, int pad) {
    rc_conv_shape s;
    rc_conv_shape_init(&s, n, c_in, h, w, c_out, k, stride, pad);
    size_t nx = (size_t)n * c_in * h * w, nw = (size_t)c_out * c_in * k * k,
           ny = (size_t)n * c_out * s.h_out * s.w_out;
    double *x = random_array(nx, -1, 1), *wt = random_array(nw, -1, 1),
           *b = random_array((size_t)c_out, -1, 1),
           *dy = random_array(ny, -1, 1);
    double *y = malloc(ny * 8), *y_ref = malloc(ny * 8);
    double *ws = malloc((rc_conv2d_workspace(&s) + 1) * 8);
    double *dx = malloc(nx * 8), *dw = malloc(nw * 8), *db = malloc(c_out * 8);
    double *dx_ref = malloc(nx * 8), *dw_ref = malloc(nw * 8),
           *db_ref = malloc(c_out * 8);
    rc_conv2d_forward_f64(&s, x, wt, b, y, ws);
    rc_conv2d_backward_f64(&s, x, wt, dy, dx, dw, db, ws);
    conv_direct(&s, x, wt, b, y_ref);
    conv_direct_backward(&s, x, wt, dy, dx_ref, dw_ref, db_ref);
    double e_y = rc_test_rel_err_d(y, y_ref, ny),
           e_dx = rc_test_rel_err_d(dx, dx_ref, nx),
           e_dw = rc_test_rel_err_d(dw, dw_ref, nw),
           e_db = rc_test_rel_err_d(db, db_ref, (size_t)c_out);
    CHECK_MSG(e_y < 1e-12 && e_dx < 1e-12 && e_dw < 1e-12 && e_db < 1e-12,
              "conv k%d s%d p%d vs direct loops: y %.2g dx %.2g dw %.2g "
              "db %.2g", k, stride, pad, e_y, e_dx, e_dw, e_db);
    free(x); free(wt); free(b); free(dy); free(y); free(y_ref); free(ws);
    free(dx); free(dw); free(db); free(dx_ref); free(dw_ref); free(db_ref);
}

/* A shape big enough that the images are processed in several chunks: the
 * float32 result must still match the direct loops, the workspace must not
 * grow with n, and two runs must agree bit for bit. */
static void test_conv_chunked(void) {
    const int n = 3, c_in = 32, h = 64, w = 64, c_out = 4, k = 5;
    rc_conv_shape s;
    rc_conv_shape_init(&s, n, c_in, h, w, c_out, k, 1, 2);
    size_t hw = (size_t)s.h_out * s.w_out;
    size_t one_chunk = ((size_t)c_in * k * k + c_out) * hw * n;
    size_t ws_n = rc_conv2d_workspace(&s);
    CHECK_MSG(ws_n < one_chunk,
              "workspace %zu: expected chunking below %zu for this test",
              ws_n, one_chunk);
    rc_conv_shape big = s;
    big.n = 1000;
    size_t ws_1000 = rc_conv2d_workspace(&big);
    big.n = 100000;
    CHECK_MSG(rc_conv2d_workspace(&big) == ws_1000,
              "workspace grows with n: %zu at n=1000, %zu at n=100000",
              ws_1000, rc_conv2d_workspace(&big));
    CHECK_MSG(ws_1000 * sizeof(float) <= ((size_t)32 << 20),
              "workspace %zu floats above 32 MB", ws_1000);

    size_t nx = (size_t)n * c_in * h * w, nw = (size_t)c_out * c_in * k * k,
           ny = (size_t)n * c_out * hw;
    double *x = random_array(nx, -1, 1), *wt = random_array(nw, -0.1, 0.1),
           *b = random_array((size_t)c_out, -1, 1),
           *dy = random_array(ny, -1, 1);
    float *fx = malloc(nx * 4), *fw = malloc(nw * 4), *fb = malloc(c_out * 4),
          *fdy = malloc(ny * 4);
    for (size_t i = 0; i < nx; i++) fx[i] = (float)x[i];
    for (size_t i = 0; i < nw; i++) fw[i] = (float)wt[i];
    for (int i = 0; i < c_out; i++) fb[i] = (float)b[i];
    for (size_t i = 0; i < ny; i++) fdy[i] = (float)dy[i];
    /* the oracle sees exactly the float inputs */
    for (size_t i = 0; i < nx; i++) x[i] = fx[i];
    for (size_t i = 0; i < nw; i++) wt[i] = fw[i];
    for (int i = 0; i < c_out; i++) b[i] = fb[i];
    for (size_t i = 0; i < ny; i++) dy[i] = fdy[i];

    float *ws = malloc(ws_n * 4);
    float *y = malloc(ny * 4), *dx = malloc(nx * 4), *dw = malloc(nw * 4),
          *db = malloc(c_out * 4);
    float *y2 = malloc(ny * 4), *dx2 = malloc(nx * 4), *dw2 = malloc(nw * 4),
          *db2 = malloc(c_out * 4);
    double t0 = rc_now();
    rc_conv2d_forward_f32(&s, fx, fw, fb, y, ws);
    rc_conv2d_backward_f32(&s, fx, fw, fdy, dx, dw, db, ws);
    double t1 = rc_now();
    rc_conv2d_forward_f32(&s, fx, fw, fb, y2, ws);
    rc_conv2d_backward_f32(&s, fx, fw, fdy, dx2, dw2, db2, ws);
    CHECK_MSG(memcmp(y, y2, ny * 4) == 0 && memcmp(dx, dx2, nx * 4) == 0 &&
                  memcmp(dw, dw2, nw * 4) == 0 && memcmp(db, db2, c_out * 4) == 0,
              "chunked conv: two runs differ");

    double *y_ref = malloc(ny * 8), *dx_ref = malloc(nx * 8),
           *dw_ref = malloc(nw * 8), *db_ref = malloc(c_out * 8);
    conv_direct(&s, x, wt, b, y_ref);
    conv_direct_backward(&s, x, wt, dy, dx_ref, dw_ref, db_ref);
    double e_y = rc_test_rel_err_fd(y, y_ref, ny), e_dx = rc_test_rel_err_fd(dx, dx_ref, nx),
           e_dw = rc_test_rel_err_fd(dw, dw_ref, nw),
           e_db = rc_test_rel_err_fd(db, db_ref, (size_t)c_out);
    printf("chunked conv f32 vs direct: y %.2e dx %.2e dw %.2e db %.2e "
           "(fwd+bwd %.3f s, workspace %zu floats)\n",
           e_y, e_dx, e_dw, e_db, t1 - t0, ws_n);
    /* sums of 800 (y, dx) to 12288 (dw) float products */
    CHECK_MSG(e_y < 1e-5 && e_dx < 1e-5 && e_dw < 1e-5 && e_db < 1e-5,
              "chunked conv vs direct: y %.2g dx %.2g dw %.2g db %.2g", e_y,
              e_dx, e_dw, e_db);
    free(x); free(wt); free(b); free(dy); free(fx); free(fw); free(fb);
    free(fdy); free(ws); free(y); free(dx); free(dw); free(db); free(y2);
    free(dx2); free(dw2); free(db2); free(y_ref); free(dx_ref); free(dw_ref);
    free(db_ref);
}

/* ---- gap, linear -------------------------------------------------------- */

static void test_gap_linear_direct(void) {
    const int n = 4, c = 3, hw = 5, in = 6, out = 2;
    double *x = random_array((size_t)n * c * hw, -1, 1), y[12];
    rc_gap_forward_f64(n, c, hw, x, y);
    double err = 0;
    for (int p = 0; p < n * c; p++) {
        double m = 0;
        for (int i = 0; i < hw; i++) m += x[(size_t)p * hw + i];
        err = fmax(err, fabs(y[p] - m / hw));
    }
    CHECK_MSG(err < 1e-15, "gap vs mean: %.2g", err);

    double *xl = random_array((size_t)n * in, -1, 1),
           *w = random_array((size_t)out * in, -1, 1),
           *b = random_array((size_t)out, -1, 1), yl[8];
    rc_linear_forward_f64(n, in, out, xl, w, b, yl);
    err = 0;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int j = 0; j < in; j++) acc += xl[i * in + j] * w[o * in + j];
            err = fmax(err, fabs(yl[i * out + o] - acc));
        }
    CHECK_MSG(err < 1e-14, "linear vs x W^T + b: %.2g", err);
    free(x); free(xl); free(w); free(b);
}

/* ---- LSTM: written-out recurrence ---------------------------------------- */

static double sigm(double z) { return 1 / (1 + exp(-z)); }

/* One sequence of length len, torch.nn.LSTM equations, zero initial state. */
static void direct_lstm(int F, int H, int len, const double *x,
                        const double *w_ih, const double *w_hh,
                        const double *b, double *h_out) {
    double h[64] = {0}, c[64] = {0}, z[256];
    for (int t = 0; t < len; t++) {
        for (int r = 0; r < 4 * H; r++) {
            double acc = b[r];
            for (int j = 0; j < F; j++) acc += w_ih[r * F + j] * x[t * F + j];
            for (int j = 0; j < H; j++) acc += w_hh[r * H + j] * h[j];
            z[r] = acc;
        }
        for (int j = 0; j < H; j++) {
            double i = sigm(z[j]), f = sigm(z[H + j]), g = tanh(z[2 * H + j]),
                   o = sigm(z[3 * H + j]);
            c[j] = f * c[j] + i * g;
            h[j] = o * tanh(c[j]);
        }
    }
    memcpy(h_out, h, (size_t)H * sizeof(double));
}

static void test_lstm_direct(void) {
    static const int len[] = {3, 5, 1, 2, 5, 4};
    const int S = 6, T = 5, F = 4, H = 6, G = 4 * H;
    rc_lstm_shape s = {S, T, F, H, len};
    double *x = random_array((size_t)S * T * F, -1, 1),
           *w_ih = random_array((size_t)G * F, -0.7, 0.7),
           *w_hh = random_array((size_t)G * H, -0.7, 0.7),
           *b = random_array((size_t)G, -0.5, 0.5),
           *dh = random_array((size_t)S * H, -1, 1);
    double *cache = malloc(rc_lstm_cache_size(&s) * 8), h_last[36],
           h_ref[6];
    rc_lstm_forward_f64(&s, x, w_ih, w_hh, b, h_last, cache);
    double err = 0;
    for (int q = 0; q < S; q++) {
        direct_lstm(F, H, len[q], x + (size_t)q * T * F, w_ih, w_hh, b, h_ref);
        err = fmax(err, rc_test_rel_err_d(h_last + q * H, h_ref, (size_t)H));
    }
    CHECK_MSG(err < 1e-13, "lstm vs written-out recurrence: %.2g", err);

    /* A batch of mixed lengths is the same as each sequence alone: outputs
     * per sequence, and parameter gradients summed over sequences. */
    double *dx = malloc((size_t)S * T * F * 8), *dih = malloc(G * F * 8),
           *dhh = malloc(G * H * 8), *db = malloc(G * 8);
    rc_lstm_backward_f64(&s, x, w_ih, w_hh, cache, dh, dx, dih, dhh, db);
    double *sum_ih = calloc(G * F, 8), *sum_hh = calloc(G * H, 8),
           *sum_b = calloc(G, 8), *dx_one = malloc((size_t)T * F * 8),
           *dih1 = malloc(G * F * 8), *dhh1 = malloc(G * H * 8),
           *db1 = malloc(G * 8), h1[6];
    double e_h = 0, e_dx = 0;
    for (int q = 0; q < S; q++) {
        rc_lstm_shape one = {1, len[q], F, H, &len[q]};
        const double *xq = x + (size_t)q * T * F;
        double *c1 = malloc(rc_lstm_cache_size(&one) * 8);
        rc_lstm_forward_f64(&one, xq, w_ih, w_hh, b, h1, c1);
        rc_lstm_backward_f64(&one, xq, w_ih, w_hh, c1, dh + q * H, dx_one,
                             dih1, dhh1, db1);
        e_h = fmax(e_h, rc_test_rel_err_d(h_last + q * H, h1, (size_t)H));
        e_dx = fmax(e_dx, rc_test_rel_err_d(dx + (size_t)q * T * F, dx_one,
                                            (size_t)len[q] * F));
        for (int i = 0; i < G * F; i++) sum_ih[i] += dih1[i];
        for (int i = 0; i < G * H; i++) sum_hh[i] += dhh1[i];
        for (int i = 0; i < G; i++) sum_b[i] += db1[i];
        free(c1);
    }
    double e_ih = rc_test_rel_err_d(dih, sum_ih, (size_t)G * F),
           e_hh = rc_test_rel_err_d(dhh, sum_hh, (size_t)G * H),
           e_b = rc_test_rel_err_d(db, sum_b, (size_t)G);
    CHECK_MSG(e_h < 1e-13 && e_dx < 1e-13 && e_ih < 1e-13 && e_hh < 1e-13 &&
                  e_b < 1e-13,
              "lstm batch vs one sequence at a time: h %.2g dx %.2g "
              "dw_ih %.2g dw_hh %.2g db %.2g", e_h, e_dx, e_ih, e_hh, e_b);
    free(x); free(w_ih); free(w_hh); free(b); free(dh); free(cache); free(dx);
    free(dih); free(dhh); free(db); free(sum_ih); free(sum_hh); free(sum_b);
    free(dx_one); free(dih1); free(dhh1); free(db1);
}

/* ---- determinism of the parallel paths ------------------------------------ */

static void test_determinism(void) {
    /* big enough for the OpenMP branches of lstm and the loss */
    static int len[48];
    const int S = 48, T = 5, F = 64, H = 128, G = 4 * H;
    for (int q = 0; q < S; q++) len[q] = 1 + q % T;
    rc_lstm_shape s = {S, T, F, H, len};
    float *x = random_array_f((size_t)S * T * F, -1, 1),
          *w_ih = random_array_f((size_t)G * F, -0.1, 0.1),
          *w_hh = random_array_f((size_t)G * H, -0.1, 0.1),
          *b = random_array_f((size_t)G, -0.1, 0.1),
          *dh = random_array_f((size_t)S * H, -1, 1);
    size_t nc = rc_lstm_cache_size(&s);
    float *cache = malloc(nc * 4), *h[2], *dx[2], *dih[2], *dhh[2], *db[2];
    for (int r = 0; r < 2; r++) {
        h[r] = malloc((size_t)S * H * 4);
        dx[r] = malloc((size_t)S * T * F * 4);
        dih[r] = malloc((size_t)G * F * 4);
        dhh[r] = malloc((size_t)G * H * 4);
        db[r] = malloc((size_t)G * 4);
        rc_lstm_forward_f32(&s, x, w_ih, w_hh, b, h[r], cache);
        rc_lstm_backward_f32(&s, x, w_ih, w_hh, cache, dh, dx[r], dih[r],
                             dhh[r], db[r]);
    }
    CHECK_MSG(memcmp(h[0], h[1], (size_t)S * H * 4) == 0 &&
                  memcmp(dx[0], dx[1], (size_t)S * T * F * 4) == 0 &&
                  memcmp(dih[0], dih[1], (size_t)G * F * 4) == 0 &&
                  memcmp(dhh[0], dhh[1], (size_t)G * H * 4) == 0 &&
                  memcmp(db[0], db[1], (size_t)G * 4) == 0,
              "lstm: two runs differ");
    for (int r = 0; r < 2; r++) {
        free(h[r]); free(dx[r]); free(dih[r]); free(dhh[r]); free(db[r]);
    }

    /* loss: many pairs sharing rows, so the scatter order matters */
    const int n_emb = 300, dim = 64, n_pairs = 2000;
    float *emb = random_array_f((size_t)n_emb * dim, -0.1, 0.1);
    rc_loss_pair *pairs = malloc(n_pairs * sizeof *pairs);
    for (int q = 0; q < n_pairs; q++) {
        pairs[q].a = rc_rng_int(&rng, n_emb);
        pairs[q].b = rc_rng_int(&rng, n_emb);
        pairs[q].positive = q % 3 == 0;
        pairs[q].weight = 1.0f;
        pairs[q].map = q % RC_MAPS;
    }
    rc_hinge_params p = {1.0, 1, 1.0 / 64};
    float *g0 = malloc((size_t)n_emb * dim * 4),
          *g1 = malloc((size_t)n_emb * dim * 4);
    double l0 = rc_hinge_loss_f32(n_emb, dim, emb, n_pairs, pairs, &p, g0);
    double l1 = rc_hinge_loss_f32(n_emb, dim, emb, n_pairs, pairs, &p, g1);
    CHECK_MSG(l0 == l1 && memcmp(g0, g1, (size_t)n_emb * dim * 4) == 0,
              "hinge loss: two runs differ");
    free(emb); free(pairs); free(g0); free(g1);
    free(x); free(w_ih); free(w_hh); free(b); free(dh); free(cache);
}

/* ---- optimiser kernels ----------------------------------------------------- */

static void test_sum_squares_scale(void) {
    const size_t n = 1000003;
    float *g = random_array_f(n, -1, 1);
    double serial = 0;
    for (size_t i = 0; i < n; i++) serial += (double)g[i] * g[i];
    double s1 = rc_sum_squares_f32(n, g), s2 = rc_sum_squares_f32(n, g);
    CHECK_MSG(fabs(s1 - serial) <= 1e-12 * serial,
              "sum_squares %.17g vs serial %.17g", s1, serial);
    CHECK(s1 == s2);
    CHECK(rc_sum_squares_f32(0, g) == 0);
    CHECK(rc_sum_squares_f32(1, g) == (double)g[0] * g[0]);

    float *h = malloc(n * 4);
    memcpy(h, g, n * 4);
    rc_scale_f32(n, h, 0.25f);
    int exact = 1;
    for (size_t i = 0; i < n; i++)
        if (h[i] != g[i] * 0.25f) exact = 0;
    CHECK_MSG(exact, "scale: g * 0.25 not exact");
    free(g); free(h);
}

/* AdamW, written from the paper / torch.optim.AdamW documentation in double:
 *   w <- w - lr*wd*w
 *   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
 *   w <- w - lr * (m / c1) / (sqrt(v / c2) + eps)                          */
static void test_adamw(void) {
    const size_t n = 100003;
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
    float *w = random_array_f(n, -1, 1), *m = calloc(n, 4), *v = calloc(n, 4);
    double *wd_ref = malloc(n * 8), *md = calloc(n, 8), *vd = calloc(n, 8);
    for (size_t i = 0; i < n; i++) wd_ref[i] = w[i];
    double err_step = 0, err_m = 0, err_v = 0;
    for (int t = 1; t <= 4; t++) {
        /* gradients of varied size, some exactly 0 */
        float *g = random_array_f(n, -2, 2);
        for (size_t i = 0; i < n; i += 7) g[i] = 0;
        float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
        double *w_before = malloc(n * 8);
        for (size_t i = 0; i < n; i++) w_before[i] = wd_ref[i];
        rc_adamw_update_f32(n, w, g, m, v, lr, b1, b2, eps, wd, c1, c2);
        double step_num = 0, step_den = 1e-30;
        for (size_t i = 0; i < n; i++) {
            double gi = g[i];
            wd_ref[i] -= (double)lr * wd * wd_ref[i];
            md[i] = b1 * md[i] + (1 - (double)b1) * gi;
            vd[i] = b2 * vd[i] + (1 - (double)b2) * gi * gi;
            wd_ref[i] -= lr * (md[i] / c1) / (sqrt(vd[i] / c2) + eps);
            /* compare the update, not w itself: w is O(1), the step 1e-2 */
            double step_ref = wd_ref[i] - w_before[i];
            double step = (double)w[i] - w_before[i];
            step_num = fmax(step_num, fabs(step - step_ref));
            step_den = fmax(step_den, fabs(step_ref));
            err_m = fmax(err_m, fabs(m[i] - md[i]));
            err_v = fmax(err_v, fabs(v[i] - vd[i]));
            /* float w as the next step's input, like the optimiser's */
            wd_ref[i] = w[i];
        }
        err_step = fmax(err_step, step_num / step_den);
        free(g);
        free(w_before);
    }
    printf("adamw vs formula: step %.2e, m %.2e, v %.2e\n", err_step, err_m,
           err_v);
    /* float32 rounding of w (~6e-8) against steps of ~1e-2 */
    CHECK_MSG(err_step < 1e-4, "adamw step error %.3g", err_step);
    CHECK_MSG(err_m < 1e-6 && err_v < 1e-6, "adamw moments m %.3g v %.3g",
              err_m, err_v);

    /* decay is decoupled: with g = 0 and no history only w *= 1 - lr*wd */
    float w1[3] = {1.0f, -2.0f, 0.5f}, z[3] = {0}, m1[3] = {0}, v1[3] = {0};
    rc_adamw_update_f32(3, w1, z, m1, v1, lr, b1, b2, eps, wd, 1 - b1, 1 - b2);
    CHECK(fabs(w1[0] - (1.0 - lr * wd)) < 1e-7);
    CHECK(fabs(w1[1] + 2.0 * (1.0 - lr * wd)) < 1e-7);
    CHECK(m1[0] == 0 && v1[0] == 0);
    free(w); free(m); free(v); free(wd_ref); free(md); free(vd);
}

/* ---- backend table -------------------------------------------------------- */

static void test_backend(void) {
    const rc_backend *be = rc_backend_cpu();
    CHECK(be != NULL && strcmp(be->name, "cpu") == 0);
    CHECK(be->conv2d_workspace == rc_conv2d_workspace);
    CHECK(be->conv2d_forward == rc_conv2d_forward_f32);
    CHECK(be->conv2d_backward == rc_conv2d_backward_f32);
    CHECK(be->relu_forward == rc_relu_forward_f32);
    CHECK(be->relu_backward == rc_relu_backward_f32);
    CHECK(be->gap_forward == rc_gap_forward_f32);
    CHECK(be->gap_backward == rc_gap_backward_f32);
    CHECK(be->linear_forward == rc_linear_forward_f32);
    CHECK(be->linear_backward == rc_linear_backward_f32);
    CHECK(be->lstm_cache_size == rc_lstm_cache_size);
    CHECK(be->lstm_forward == rc_lstm_forward_f32);
    CHECK(be->lstm_backward == rc_lstm_backward_f32);
    CHECK(be->hinge_loss == rc_hinge_loss_f32);
    CHECK(be->sum_squares == rc_sum_squares_f32);
    CHECK(be->scale == rc_scale_f32);
    CHECK(be->adamw_update == rc_adamw_update_f32);
    CHECK(be->gather_pairs == rc_gather_pairs_f32);
    CHECK(be->gather_steps == rc_gather_steps_f32);
    CHECK(be->scatter_steps == rc_scatter_steps_f32);

    static const size_t sizes[] = {0, 1, 3, 64, 1000, 1 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = be->alloc(sizes[i]);
        CHECK(p != NULL && ((uintptr_t)p % 64) == 0);
        int zero = 1;
        for (size_t j = 0; j < sizes[i]; j++)
            if (p[j]) zero = 0;
        CHECK_MSG(zero, "alloc(%zu) not zero-filled", sizes[i]);
        be->free(p);
    }
    float src[5] = {1, 2, 3, 4, 5}, back[5] = {0};
    float *dev = be->alloc(sizeof src);
    be->to_device(dev, src, sizeof src);
    be->synchronize();
    be->to_host(back, dev, sizeof src);
    CHECK(memcmp(src, back, sizeof src) == 0);
    be->free(dev);
}

int main(void) {
    rc_rng_seed(&rng, 77);
    test_conv_direct_f64(2, 3, 9, 9, 4, 5, 2, 2);
    test_conv_direct_f64(2, 4, 8, 7, 5, 3, 2, 1);
    test_conv_direct_f64(1, 2, 5, 6, 3, 3, 1, 1);
    test_conv_direct_f64(2, 3, 7, 7, 2, 3, 3, 1);
    test_conv_direct_f64(1, 2, 4, 4, 3, 1, 1, 0);
    test_conv_chunked();
    test_gap_linear_direct();
    test_lstm_direct();
    test_determinism();
    test_sum_squares_scale();
    test_adamw();
    test_backend();
    TEST_DONE();
}
