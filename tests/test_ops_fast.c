/* test_ops_fast.c: the multi-threaded and fused paths of the CPU ops against
 * plain oracles.
 *
 * Shapes here are large enough that conv2d, the LSTM and linear split their
 * work across threads (the other op tests use small shapes that run on one
 * thread). Checked:
 *   - conv2d forward/backward on 2 threads against direct loops in double;
 *   - the fused conv+ReLU ops against conv2d followed by relu (and
 *     relu_backward followed by conv2d_backward);
 *   - 2 threads against 1 thread for conv2d, LSTM and linear (rounding of
 *     the split dW sums only), and two 2-thread runs bitwise equal (the
 *     determinism training resume relies on).
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/ops.h"
#include "recompose/rng.h"
#include "conv_direct.h"
#include "test_util.h"

static rc_rng rng;

static float *frand(size_t n, double lo, double hi) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) abort();
    for (size_t i = 0; i < n; i++) p[i] = (float)rc_rng_range(&rng, lo, hi);
    return p;
}

static float *fnew(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) abort();
    return p;
}

/* float32 data widened to double, for the direct-loop oracle */
static double *widen(const float *a, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    if (!d) abort();
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

static void test_conv(void) {
    rc_conv_shape s;
    /* 1.1M multiply-adds: above the threading threshold; odd n so the thread
     * ranges differ in size; stride 2 and padding exercise im2col's edges */
    rc_conv_shape_init(&s, 9, 8, 21, 19, 16, 3, 2, 1);
    size_t nx = (size_t)s.n * s.c_in * s.h_in * s.w_in;
    size_t nw = (size_t)s.c_out * s.c_in * s.k * s.k;
    size_t ny = (size_t)s.n * s.c_out * s.h_out * s.w_out;
    float *x = frand(nx, -1, 1), *w = frand(nw, -0.3, 0.3),
          *b = frand((size_t)s.c_out, -0.2, 0.2), *dy = frand(ny, -1, 1);
    float *ws = fnew(rc_conv2d_workspace(&s));
    double *y_ref = malloc(ny * sizeof(double)), *dx_ref = malloc(nx * sizeof(double)),
           *dw_ref = malloc(nw * sizeof(double));
    double *xd = widen(x, nx), *wd = widen(w, nw), *bd = widen(b, (size_t)s.c_out),
           *dyd = widen(dy, ny);
    conv_direct(&s, xd, wd, bd, y_ref);
    conv_direct_backward(&s, xd, wd, dyd, dx_ref, dw_ref, NULL);
    free(xd); free(wd); free(bd); free(dyd);

    float *y[3], *dx[3], *dw[3], *db[3];
    int threads[3] = {2, 2, 1};
    for (int r = 0; r < 3; r++) {
        omp_set_num_threads(threads[r]);
        y[r] = fnew(ny);
        dx[r] = fnew(nx);
        dw[r] = fnew(nw);
        db[r] = fnew((size_t)s.c_out);
        rc_conv2d_forward_f32(&s, x, w, b, y[r], ws);
        rc_conv2d_backward_f32(&s, x, w, dy, dx[r], dw[r], db[r], ws);
    }
    omp_set_num_threads(2);
    CHECK_MSG(rc_test_rel_err_fd(y[0], y_ref, ny) < 1e-5, "conv y vs direct: %g",
              rc_test_rel_err_fd(y[0], y_ref, ny));
    CHECK_MSG(rc_test_rel_err_fd(dx[0], dx_ref, nx) < 1e-5, "conv dx vs direct: %g",
              rc_test_rel_err_fd(dx[0], dx_ref, nx));
    CHECK_MSG(rc_test_rel_err_fd(dw[0], dw_ref, nw) < 1e-5, "conv dw vs direct: %g",
              rc_test_rel_err_fd(dw[0], dw_ref, nw));
    CHECK(memcmp(y[0], y[1], ny * 4) == 0 && memcmp(dx[0], dx[1], nx * 4) == 0 &&
          memcmp(dw[0], dw[1], nw * 4) == 0 && memcmp(db[0], db[1], s.c_out * 4) == 0);
    CHECK(rc_test_rel_err_f(dw[0], dw[2], nw) < 1e-5);
    CHECK(rc_test_rel_err_f(db[0], db[2], (size_t)s.c_out) < 1e-5);
    CHECK(rc_test_rel_err_f(dx[0], dx[2], nx) < 1e-6);

    /* fused conv + ReLU against conv, then relu */
    float *yr = fnew(ny), *yf = fnew(ny);
    memcpy(yr, y[0], ny * 4);
    rc_relu_forward_f32(ny, yr, yr);
    rc_conv2d_relu_forward_f32(&s, x, w, b, yf, ws);
    CHECK_MSG(memcmp(yr, yf, ny * 4) == 0, "fused conv+relu forward differs");
    size_t positive = 0;
    for (size_t i = 0; i < ny; i++) positive += yf[i] > 0;
    CHECK(positive > ny / 4 && positive < ny * 3 / 4); /* the mask matters */
    float *dym = fnew(ny), *dx_u = fnew(nx), *dw_u = fnew(nw), *db_u = fnew(s.c_out),
          *dx_f = fnew(nx), *dw_f = fnew(nw), *db_f = fnew(s.c_out);
    rc_relu_backward_f32(ny, yr, dy, dym);
    rc_conv2d_backward_f32(&s, x, w, dym, dx_u, dw_u, db_u, ws);
    rc_conv2d_relu_backward_f32(&s, x, w, yf, dy, dx_f, dw_f, db_f, ws);
    CHECK(rc_test_rel_err_f(dx_f, dx_u, nx) < 1e-6);
    CHECK(rc_test_rel_err_f(dw_f, dw_u, nw) < 1e-6);
    CHECK(rc_test_rel_err_f(db_f, db_u, (size_t)s.c_out) < 1e-6);
    /* dx nullable in the fused backward too */
    rc_conv2d_relu_backward_f32(&s, x, w, yf, dy, NULL, dw_f, db_f, ws);
    CHECK(rc_test_rel_err_f(dw_f, dw_u, nw) < 1e-6);

    for (int r = 0; r < 3; r++) {
        free(y[r]); free(dx[r]); free(dw[r]); free(db[r]);
    }
    free(yr); free(yf); free(dym); free(dx_u); free(dw_u); free(db_u);
    free(dx_f); free(dw_f); free(db_f);
    free(x); free(w); free(b); free(dy); free(ws); free(y_ref); free(dx_ref);
    free(dw_ref);
}

static void test_lstm(void) {
    /* S * 4H * H = 2^24: the threaded recurrence */
    enum { S = 64, T = 3, F = 24, H = 256 };
    int len[S];
    for (int q = 0; q < S; q++) len[q] = 1 + (q * 7) % T;
    rc_lstm_shape s = {S, T, F, H, len};
    size_t nx = (size_t)S * T * F, G = 4 * H;
    float *x = frand(nx, -1, 1), *wi = frand(G * F, -0.1, 0.1),
          *wh = frand(G * H, -0.06, 0.06), *b = frand(G, -0.1, 0.1),
          *dh = frand((size_t)S * H, -1, 1);
    for (int q = 0; q < S; q++)
        for (int t = len[q]; t < T; t++)
            memset(x + ((size_t)q * T + t) * F, 0, F * sizeof(float));
    float *cache = fnew(rc_lstm_cache_size(&s));
    float *h[3], *dx[3], *dwi[3], *dwh[3], *db[3];
    int threads[3] = {2, 2, 1};
    for (int r = 0; r < 3; r++) {
        omp_set_num_threads(threads[r]);
        h[r] = fnew((size_t)S * H);
        dx[r] = fnew(nx);
        dwi[r] = fnew(G * F);
        dwh[r] = fnew(G * H);
        db[r] = fnew(G);
        rc_lstm_forward_f32(&s, x, wi, wh, b, h[r], cache);
        rc_lstm_backward_f32(&s, x, wi, wh, cache, dh, dx[r], dwi[r], dwh[r], db[r]);
    }
    omp_set_num_threads(2);
    CHECK(memcmp(h[0], h[1], (size_t)S * H * 4) == 0);
    CHECK(memcmp(dx[0], dx[1], nx * 4) == 0);
    CHECK(memcmp(dwh[0], dwh[1], G * H * 4) == 0);
    CHECK_MSG(rc_test_rel_err_f(h[0], h[2], (size_t)S * H) < 1e-5, "lstm h 2 vs 1 thread: %g",
              rc_test_rel_err_f(h[0], h[2], (size_t)S * H));
    CHECK(rc_test_rel_err_f(dx[0], dx[2], nx) < 1e-5);
    CHECK(rc_test_rel_err_f(dwi[0], dwi[2], G * F) < 1e-5);
    CHECK_MSG(rc_test_rel_err_f(dwh[0], dwh[2], G * H) < 1e-5, "lstm dw_hh: %g",
              rc_test_rel_err_f(dwh[0], dwh[2], G * H));
    CHECK(rc_test_rel_err_f(db[0], db[2], G) < 1e-5);
    /* padded steps get exactly zero gradient */
    for (int q = 0; q < S; q++)
        for (int t = len[q]; t < T; t++)
            for (int k = 0; k < F; k++) CHECK(dx[0][((size_t)q * T + t) * F + k] == 0.0f);
    for (int r = 0; r < 3; r++) {
        free(h[r]); free(dx[r]); free(dwi[r]); free(dwh[r]); free(db[r]);
    }
    free(x); free(wi); free(wh); free(b); free(dh); free(cache);
}

static void test_linear(void) {
    enum { N = 300, IN = 128, OUT = 160 }; /* 6.1M multiply-adds: threaded */
    float *x = frand((size_t)N * IN, -1, 1), *w = frand((size_t)OUT * IN, -0.1, 0.1),
          *b = frand(OUT, -0.1, 0.1), *dy = frand((size_t)N * OUT, -1, 1);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r == 0 ? 2 : 1);
        y[r] = fnew((size_t)N * OUT);
        dx[r] = fnew((size_t)N * IN);
        dw[r] = fnew((size_t)OUT * IN);
        db[r] = fnew(OUT);
        rc_linear_forward_f32(N, IN, OUT, x, w, b, y[r]);
        rc_linear_backward_f32(N, IN, OUT, x, w, dy, dx[r], dw[r], db[r]);
    }
    omp_set_num_threads(2);
    /* every element is one thread's dot product: identical either way up to
     * BLAS's blocking */
    CHECK(rc_test_rel_err_f(y[0], y[1], (size_t)N * OUT) < 1e-6);
    CHECK(rc_test_rel_err_f(dx[0], dx[1], (size_t)N * IN) < 1e-6);
    CHECK(rc_test_rel_err_f(dw[0], dw[1], (size_t)OUT * IN) < 1e-6);
    CHECK(rc_test_rel_err_f(db[0], db[1], OUT) < 1e-6);
    /* one output checked by hand */
    double acc = b[5];
    for (int k = 0; k < IN; k++) acc += (double)x[(size_t)7 * IN + k] * w[(size_t)5 * IN + k];
    CHECK(fabs(y[0][(size_t)7 * OUT + 5] - acc) < 1e-5);
    for (int r = 0; r < 2; r++) {
        free(y[r]); free(dx[r]); free(dw[r]); free(db[r]);
    }
    free(x); free(w); free(b); free(dy);
}

int main(void) {
    rc_rng_seed(&rng, 20261124);
    omp_set_num_threads(2);
    test_conv();
    test_lstm();
    test_linear();
    CHECK(rc_backend_cpu()->fused != NULL);
    TEST_DONE();
}
