/* test_backend_ops.c: every entry of the op table (ops.h, rc_backend), on
 * every backend this machine has, against the CPU reference in float64.
 *
 * One table of cases (below); each case draws inputs (float values, so that
 * only the arithmetic differs), computes the float64 reference with the
 * CPU ops built in double (csrc/cpu/real.h), runs the backend's entry on
 * copies in the backend's memory and compares every output by
 * max|got - ref| / max|ref| against the case's tolerance. Backends: cpu
 * (the float32 build of the reference), cpu-onednn (its convolutions by
 * oneDNN, where the build has it), emu (the CUDA backend's kernels
 * under the emulator), cuda where a GPU is visible (strict float32: TF32
 * and bf16 are checked in test_cuda_ops with their own tolerances). Fused
 * entries are checked where a backend has them.
 *
 * This is the one place where op values are compared across backends. What
 * the others add: test_emu_kernels the emulator's own properties (a missing
 * barrier is caught; results do not depend on the thread schedule),
 * test_cuda_ops the GPU's precision modes, algorithm choice, pinned input
 * and graph replay, test_ops_grad the reference itself against finite
 * differences. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/backend.h"
#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "recompose/ops.h"
#include "recompose/rng.h"
#include "cpu_onednn/onednn.h"
#include "recompose/train.h"
#include "test_util.h"

static rc_rng rng;
static const rc_backend *be;
static double tol_scale = 1; /* loosened for the GPU's reassociation */
static int n_checked;
/* The backend's convolutions round x, w and dy to bfloat16 (train.precision
 * = bf16): the reference then convolves the same rounded operands, so the
 * comparison stays at float32 tolerances. */
static int bf16_operands;

/* v rounded to bfloat16, to nearest even (through float: the values here
 * are floats already). */
static double round_bf16(double v) {
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x itself, or a copy rounded to bfloat16 where the backend rounds. */
static double *as_operand(const double *x, size_t n) {
    double *r = rc_xmalloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = bf16_operands ? round_bf16(x[i]) : x[i];
    return r;
}

/* n values drawn uniformly in [lo, hi] and rounded to float. */
static double *draw(size_t n, double lo, double hi) {
    double *x = rc_xmalloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rc_rng_range(&rng, lo, hi);
    return x;
}

static double *zeros(size_t n) { return rc_xcalloc(n ? n : 1, sizeof(double)); }

/* A copy of x in the backend's memory, as float. */
static float *up(const double *x, size_t n) {
    float *h = rc_xmalloc((n ? n : 1) * sizeof *h);
    for (size_t i = 0; i < n; i++) h[i] = (float)x[i];
    float *d = be->alloc((n ? n : 1) * sizeof(float));
    be->to_device(d, h, n * sizeof(float));
    free(h);
    return d;
}

static float *dev_zeros(size_t n) { return be->alloc((n ? n : 1) * sizeof(float)); }

/* Compare a backend buffer with the reference; frees nothing. */
static void expect(const char *op, const char *what, const float *dev,
                   const double *ref, size_t n, double tol) {
    float *h = rc_xmalloc((n ? n : 1) * sizeof *h);
    be->synchronize();
    be->to_host(h, dev, n * sizeof(float));
    double err = rc_test_rel_err_fd(h, ref, n);
    tol *= tol_scale;
    CHECK_MSG(err <= tol, "%s %s %s: rel err %.3g > %.3g", be->name, op, what,
              err, tol);
    printf("  %-5s %-22s %-6s rel err %.2e\n", be->name, op, what, err);
    n_checked++;
    free(h);
}

/* Read a backend buffer into host floats (caller frees). */
static float *down(const float *dev, size_t n) {
    float *h = rc_xmalloc((n ? n : 1) * sizeof *h);
    be->synchronize();
    be->to_host(h, dev, n * sizeof(float));
    return h;
}

static void expect_scalar(const char *op, double got, double ref, double tol) {
    double err = fabs(got - ref) / fmax(fabs(ref), 1e-30);
    tol *= tol_scale;
    CHECK_MSG(err <= tol, "%s %s: %.9g vs %.9g (rel err %.3g)", be->name, op,
              got, ref, err);
    printf("  %-5s %-22s %-6s rel err %.2e\n", be->name, op, "value", err);
    n_checked++;
}

/* ---- convolution, and the fused conv + ReLU where offered ------------------ */

static void conv_shape_case(int n, int c_in, int hw, int c_out, int k, int stride,
                            int pad) {
    rc_conv_shape s;
    rc_conv_shape_init(&s, n, c_in, hw, hw, c_out, k, stride, pad);
    size_t nx = rc_conv_numel_x(&s), nw = rc_conv_numel_w(&s), ny = rc_conv_numel_y(&s);
    double *x = draw(nx, -1, 1), *w = draw(nw, -0.5, 0.5), *b = draw(s.c_out, -0.2, 0.2);
    double *dy = draw(ny, -1, 1);
    /* the operands as the backend's arithmetic sees them */
    double *xo = as_operand(x, nx), *wo = as_operand(w, nw), *dyo = as_operand(dy, ny);
    double *y = zeros(ny), *dx = zeros(nx), *dw = zeros(nw), *db = zeros(s.c_out);
    double *ws = zeros(rc_conv2d_workspace(&s));
    float *gx = up(x, nx), *gw = up(w, nw), *gb = up(b, s.c_out), *gdy = up(dy, ny);
    float *gy = dev_zeros(ny), *gdx = dev_zeros(nx), *gdw = dev_zeros(nw),
          *gdb = dev_zeros(s.c_out), *gws = dev_zeros(be->conv2d_workspace(&s));

    rc_conv2d_forward_f64(&s, xo, wo, b, y, ws);
    be->conv2d_forward(&s, gx, gw, gb, gy, gws);
    expect("conv2d_forward", "y", gy, y, ny, 1e-5);
    rc_conv2d_backward_f64(&s, xo, wo, dyo, dx, dw, db, ws);
    be->conv2d_backward(&s, gx, gw, gdy, gdx, gdw, gdb, gws);
    expect("conv2d_backward", "dx", gdx, dx, nx, 1e-5);
    expect("conv2d_backward", "dw", gdw, dw, nw, 1e-5);
    expect("conv2d_backward", "db", gdb, db, s.c_out, 1e-5);

    if (be->fused) {
        rc_conv2d_relu_forward_f64(&s, xo, wo, b, y, ws);
        be->fused->conv2d_relu_forward(&s, gx, gw, gb, gy, gws);
        expect("conv2d_relu_forward", "y", gy, y, ny, 1e-5);
        /* backward from the reference's own output (the ReLU mask must be
         * the same on both sides) */
        float *gyr = up(y, ny);
        rc_conv2d_relu_backward_f64(&s, xo, wo, y, dyo, dx, dw, db, ws);
        be->fused->conv2d_relu_backward(&s, gx, gw, gyr, gdy, gdx, gdw, gdb, gws);
        expect("conv2d_relu_backward", "dx", gdx, dx, nx, 1e-5);
        expect("conv2d_relu_backward", "dw", gdw, dw, nw, 1e-5);
        expect("conv2d_relu_backward", "db", gdb, db, s.c_out, 1e-5);
        /* deterministic: a second call is bitwise the same */
        float *first = down(gdw, nw);
        be->fused->conv2d_relu_backward(&s, gx, gw, gyr, gdy, gdx, gdw, gdb, gws);
        float *second = down(gdw, nw);
        CHECK_MSG(memcmp(first, second, nw * sizeof(float)) == 0,
                  "%s conv2d_relu_backward: two calls differ", be->name);
        free(first); free(second);
        be->free(gyr);
    }
    be->free(gx); be->free(gw); be->free(gb); be->free(gdy); be->free(gy);
    be->free(gdx); be->free(gdw); be->free(gdb); be->free(gws);
    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
    free(ws); free(xo); free(wo); free(dyo);
}

/* A small odd shape; first layers (two stacked gray frames, or colour
 * pairs: 6 channels, which oneDNN's AVX-512 kernels pad to a block, so
 * that its backward weights pass goes channels-last; 5 x 5); a
 * middle layer whose channels fill a blocked layout (16 -> 32), where a
 * blocked backend reorders in and out; channels that fill one block and
 * part of the next on both sides (20 -> 24) at an odd size (11 x 11). */
static void case_conv(void) {
    conv_shape_case(2, 3, 9, 4, 3, 2, 1);
    conv_shape_case(3, 2, 16, 16, 5, 2, 2);
    conv_shape_case(2, 6, 16, 16, 5, 2, 2);
    conv_shape_case(3, 16, 12, 32, 3, 2, 1);
    conv_shape_case(2, 20, 11, 24, 3, 1, 1);
}

/* ---- element-wise, pooling, linear ---------------------------------------- */

static void case_relu_gap(void) {
    size_t n = 300;
    double *x = draw(n, -1, 1), *dy = draw(n, -1, 1), *y = zeros(n), *dx = zeros(n);
    float *gx = up(x, n), *gdy = up(dy, n), *gy = dev_zeros(n), *gdx = dev_zeros(n);
    rc_relu_forward_f64(n, x, y);
    be->relu_forward(n, gx, gy);
    expect("relu_forward", "y", gy, y, n, 0);
    rc_relu_backward_f64(n, y, dy, dx);
    be->relu_backward(n, gy, gdy, gdx);
    expect("relu_backward", "dx", gdx, dx, n, 0);

    int N = 3, C = 5, HW = 20; /* 300 values */
    double *p = zeros((size_t)N * C), *dp = draw((size_t)N * C, -1, 1);
    float *gp = dev_zeros((size_t)N * C), *gdp = up(dp, (size_t)N * C);
    rc_gap_forward_f64(N, C, HW, x, p);
    be->gap_forward(N, C, HW, gx, gp);
    expect("gap_forward", "y", gp, p, (size_t)N * C, 1e-6);
    rc_gap_backward_f64(N, C, HW, dp, dx);
    be->gap_backward(N, C, HW, gdp, gdx);
    expect("gap_backward", "dx", gdx, dx, n, 1e-6);
    be->free(gx); be->free(gdy); be->free(gy); be->free(gdx); be->free(gp);
    be->free(gdp);
    free(x); free(dy); free(y); free(dx); free(p); free(dp);
}

static void case_linear(void) {
    int n = 7, in = 13, out = 6;
    double *x = draw((size_t)n * in, -1, 1), *w = draw((size_t)out * in, -0.5, 0.5);
    double *b = draw(out, -0.2, 0.2), *dy = draw((size_t)n * out, -1, 1);
    double *y = zeros((size_t)n * out), *dx = zeros((size_t)n * in),
           *dw = zeros((size_t)out * in), *db = zeros(out);
    float *gx = up(x, (size_t)n * in), *gw = up(w, (size_t)out * in), *gb = up(b, out),
          *gdy = up(dy, (size_t)n * out), *gy = dev_zeros((size_t)n * out),
          *gdx = dev_zeros((size_t)n * in), *gdw = dev_zeros((size_t)out * in),
          *gdb = dev_zeros(out);
    rc_linear_forward_f64(n, in, out, x, w, b, y);
    be->linear_forward(n, in, out, gx, gw, gb, gy);
    expect("linear_forward", "y", gy, y, (size_t)n * out, 1e-5);
    rc_linear_backward_f64(n, in, out, x, w, dy, dx, dw, db);
    be->linear_backward(n, in, out, gx, gw, gdy, gdx, gdw, gdb);
    expect("linear_backward", "dx", gdx, dx, (size_t)n * in, 1e-5);
    expect("linear_backward", "dw", gdw, dw, (size_t)out * in, 1e-5);
    expect("linear_backward", "db", gdb, db, out, 1e-5);
    be->free(gx); be->free(gw); be->free(gb); be->free(gdy); be->free(gy);
    be->free(gdx); be->free(gdw); be->free(gdb);
    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
}

/* ---- LSTM: sequences of different lengths ----------------------------------- */

static void case_lstm(void) {
    int len[4] = {5, 2, 4, 1};
    rc_lstm_shape s = {4, 5, 6, 7, len};
    size_t G = 4 * (size_t)s.H, nx = (size_t)s.S * s.T * s.F;
    double *x = draw(nx, -1, 1), *wih = draw(G * s.F, -0.4, 0.4);
    double *whh = draw(G * s.H, -0.4, 0.4), *b = draw(G, -0.2, 0.2);
    double *dh = draw((size_t)s.S * s.H, -1, 1);
    double *h = zeros((size_t)s.S * s.H), *cache = zeros(rc_lstm_cache_size(&s));
    double *dx = zeros(nx), *dwih = zeros(G * s.F), *dwhh = zeros(G * s.H), *db = zeros(G);
    float *gx = up(x, nx), *gwih = up(wih, G * s.F), *gwhh = up(whh, G * s.H),
          *gb = up(b, G), *gdh = up(dh, (size_t)s.S * s.H),
          *gh = dev_zeros((size_t)s.S * s.H), *gcache = dev_zeros(be->lstm_cache_size(&s)),
          *gdx = dev_zeros(nx), *gdwih = dev_zeros(G * s.F),
          *gdwhh = dev_zeros(G * s.H), *gdb = dev_zeros(G);
    rc_lstm_forward_f64(&s, x, wih, whh, b, h, cache);
    be->lstm_forward(&s, gx, gwih, gwhh, gb, gh, gcache);
    expect("lstm_forward", "h_last", gh, h, (size_t)s.S * s.H, 1e-5);
    rc_lstm_backward_f64(&s, x, wih, whh, cache, dh, dx, dwih, dwhh, db);
    be->lstm_backward(&s, gx, gwih, gwhh, gcache, gdh, gdx, gdwih, gdwhh, gdb);
    expect("lstm_backward", "dx", gdx, dx, nx, 1e-5);
    expect("lstm_backward", "dw_ih", gdwih, dwih, G * s.F, 1e-5);
    expect("lstm_backward", "dw_hh", gdwhh, dwhh, G * s.H, 1e-5);
    expect("lstm_backward", "db", gdb, db, G, 1e-5);
    /* steps past a sequence's end get exactly zero */
    float *hdx = down(gdx, nx);
    int padded_nonzero = 0;
    for (int q = 0; q < s.S; q++)
        for (int t = len[q]; t < s.T; t++)
            for (int k = 0; k < s.F; k++)
                padded_nonzero += hdx[((size_t)q * s.T + t) * s.F + k] != 0.0f;
    CHECK_MSG(padded_nonzero == 0, "%s lstm_backward: %d dx values past a "
              "sequence's end are not 0", be->name, padded_nonzero);
    free(hdx);
    be->free(gx); be->free(gwih); be->free(gwhh); be->free(gb); be->free(gdh);
    be->free(gh); be->free(gcache); be->free(gdx); be->free(gdwih);
    be->free(gdwhh); be->free(gdb);
    free(x); free(wih); free(whh); free(b); free(dh); free(h); free(cache);
    free(dx); free(dwih); free(dwhh); free(db);
}

/* ---- the loss: plain, positive, negative and mapped pairs --------------------- */

static void case_hinge(void) {
    enum { N = 10, D = 8, P = 12 };
    double *e = draw((size_t)N * D, -0.4, 0.4), *de = zeros((size_t)N * D);
    for (int k = 0; k < D; k++) e[3 * D + k] = e[4 * D + k]; /* rows 3, 4 alike */
    rc_loss_pair pairs[P];
    for (int q = 0; q < P; q++)
        pairs[q] = (rc_loss_pair){q % N, (3 * q + 1) % N, q % 3 == 0,
                                  0.5f + 0.25f * (float)(q % 4), q % RC_MAPS};
    pairs[1] = (rc_loss_pair){3, 4, 0, 1.0f, RC_MAP_NONE}; /* negative at d = 0 */
    pairs[2] = (rc_loss_pair){5, 5, 1, 1.0f, RC_MAP_NONE}; /* a row with itself */
    float *ge = up(e, (size_t)N * D), *gde = dev_zeros((size_t)N * D);
    for (int squared = 0; squared <= 1; squared++) {
        for (double margin = 0.5; margin < 5; margin *= 4) {
            const char *op = squared ? "hinge_loss squared" : "hinge_loss plain";
            rc_hinge_params hp = {margin, squared, 1.0 / 3};
            double L = rc_hinge_loss_f64(N, D, e, P, pairs, &hp, de);
            double gL = be->hinge_loss(N, D, ge, P, pairs, &hp, gde);
            expect_scalar(op, gL, L, 1e-5);
            expect(op, "d_emb", gde, de, (size_t)N * D, 1e-5);
            /* deterministic: a second call is bitwise the same */
            float *first = down(gde, (size_t)N * D);
            double gL2 = be->hinge_loss(N, D, ge, P, pairs, &hp, gde);
            float *second = down(gde, (size_t)N * D);
            CHECK_MSG(gL2 == gL && memcmp(first, second, (size_t)N * D * 4) == 0,
                      "%s %s: two calls differ", be->name, op);
            free(first); free(second);
        }
    }
    be->free(ge); be->free(gde);
    free(e); free(de);
}

/* ---- the action term: warp loss ------------------------------------------------ */

/* moving > 0: the error only where first and last frame differ (a
 * sequence whose first and last frame are the same adds nothing) */
static void warp_case(int grid, double moving) {
    enum { C = 2, S = 16, FRAMES = 5, N = 6 };
    size_t fe = (size_t)C * S * S;
    rc_warp_shape ws = {.n = N, .C = C, .S = S, .grid = grid, .n_scales = 3,
                        .scales = {1, 2, 4}, .border = 4, .moving = moving,
                        .scale = 0.25};
    int np = rc_warp_params(&ws);
    double *frames = draw(FRAMES * fe, 0, 1), *theta = zeros((size_t)np * N);
    double *dth = zeros((size_t)np * N);
    int first[N] = {0, 1, 2, 3, 4, 2}, last[N] = {1, 2, 2, 0, 3, 4};
    for (int q = 0; q < N; q++) { /* near the identity; the last one also
                                     samples the clamped edge */
        double *a = theta + (size_t)np * q, push = q == N - 1 ? 0.6 : 0;
        if (grid) {
            for (int k = 0; k < np; k++)
                a[k] = (float)(rc_rng_range(&rng, -0.2, 0.2) + (k < np / 2 ? push : 0));
            continue;
        }
        double ang = rc_rng_range(&rng, -0.3, 0.3), z = rc_rng_range(&rng, 0.85, 1.15);
        a[0] = (float)(z * cos(ang)), a[1] = (float)(-z * sin(ang));
        a[3] = (float)(z * sin(ang)), a[4] = (float)(z * cos(ang));
        a[2] = (float)(rc_rng_range(&rng, -0.2, 0.2) + push);
        a[5] = (float)rc_rng_range(&rng, -0.2, 0.2);
    }
    const char *op = grid ? (moving > 0 ? "warp_loss grid moving" : "warp_loss grid")
                          : (moving > 0 ? "warp_loss affine moving" : "warp_loss affine");
    float *gf = up(frames, FRAMES * fe), *gth = up(theta, (size_t)np * N);
    float *gdth = dev_zeros((size_t)np * N);
    double L = rc_warp_loss_f64(&ws, frames, first, last, theta, dth);
    double gL = be->warp_loss(&ws, gf, first, last, gth, gdth);
    /* float32 source coordinates move a sample by ~1e-6 px against the
     * reference's double ones */
    expect_scalar(op, gL, L, 1e-5);
    expect(op, "d_theta", gdth, dth, (size_t)np * N, 1e-4);
    float *one = down(gdth, (size_t)np * N);
    double gL2 = be->warp_loss(&ws, gf, first, last, gth, gdth);
    float *two = down(gdth, (size_t)np * N);
    CHECK_MSG(gL2 == gL && memcmp(one, two, (size_t)np * N * sizeof(float)) == 0,
              "%s %s: two calls differ", be->name, op);
    CHECK(be->warp_loss(&ws, gf, first, last, gth, NULL) == gL);
    free(one); free(two);
    be->free(gf); be->free(gth); be->free(gdth);
    free(frames); free(theta); free(dth);
}

static void case_warp(void) {
    warp_case(0, 0);
    warp_case(3, 0);
    warp_case(0, 0.2);
    warp_case(3, 0.2);
}

/* ---- optimizer entries: against their formulas in double ------------------------ */

static void case_optimizer(void) {
    size_t n = 1000;
    double *g = draw(n, -1, 1), *w = draw(n, -1, 1), *m = draw(n, -0.1, 0.1);
    double *v = draw(n, 0, 0.01);
    float *gg = up(g, n), *gw = up(w, n), *gm = up(m, n), *gv = up(v, n);
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += g[i] * g[i];
    expect_scalar("sum_squares", be->sum_squares(n, gg), ss, 1e-9);

    double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
    double c1 = 1 - pow(b1, 3), c2 = 1 - pow(b2, 3);
    for (size_t i = 0; i < n; i++) { /* torch.optim.AdamW, step 3 */
        w[i] *= 1 - lr * wd;
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        w[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + eps);
    }
    be->adamw_update(n, gw, gg, gm, gv, (float)lr, (float)b1, (float)b2,
                     (float)eps, (float)wd, (float)c1, (float)c2);
    /* float32 moments: v's (1 - beta2) g^2 rounds at about 1e-6 of its
     * largest value */
    expect("adamw_update", "w", gw, w, n, 1e-5);
    expect("adamw_update", "m", gm, m, n, 1e-5);
    expect("adamw_update", "v", gv, v, n, 1e-5);

    for (size_t i = 0; i < n; i++) g[i] = (float)(g[i] * 0.375); /* float product */
    be->scale(n, gg, 0.375f);
    expect("scale", "g", gg, g, n, 0);
    double *y = draw(n, -1, 1);
    float *gy = up(y, n);
    for (size_t i = 0; i < n; i++) y[i] = (float)(y[i] + (float)(-0.625f * (float)g[i]));
    be->axpy(n, -0.625f, gg, gy);
    expect("axpy", "y", gy, y, n, 1e-7);
    be->free(gy);
    free(y);
    be->free(gg); be->free(gw); be->free(gm); be->free(gv);
    free(g); free(w); free(m); free(v);
}

/* ---- index moves of a batch plan ----------------------------------------------- */

static void case_gather(void) {
    int clips = 3, fpc = 4, n_pairs = 5;
    size_t fe = 12, nf = (size_t)clips * fpc * fe;
    int clip[5] = {0, 2, 1, 2, 0}, pi[5] = {0, 3, 1, 0, 2}, pj[5] = {1, 2, 3, 3, 0};
    double *frames = draw(nf, 0, 1), *pairs = zeros((size_t)n_pairs * 2 * fe);
    float *gf = up(frames, nf), *gp = dev_zeros((size_t)n_pairs * 2 * fe);
    rc_gather_pairs_f64(n_pairs, clip, pi, pj, fpc, fe, frames, pairs);
    be->gather_pairs(n_pairs, clip, pi, pj, fpc, fe, gf, gp);
    expect("gather_pairs", "out", gp, pairs, (size_t)n_pairs * 2 * fe, 0);

    int n_seq = 3, max_steps = 4, dim = 6;
    int seq_pair[12] = {0, 1, 2, -1, 3, 3, -1, -1, 4, 0, 1, 2};
    size_t nsd = (size_t)n_seq * max_steps * dim;
    double *feat = draw((size_t)n_pairs * dim, -1, 1), *steps = zeros(nsd);
    double *dsteps = draw(nsd, -1, 1), *dfeat = zeros((size_t)n_pairs * dim);
    float *gfeat = up(feat, (size_t)n_pairs * dim), *gsteps = dev_zeros(nsd),
          *gdsteps = up(dsteps, nsd), *gdfeat = dev_zeros((size_t)n_pairs * dim);
    rc_gather_steps_f64(n_seq, max_steps, seq_pair, dim, feat, steps);
    be->gather_steps(n_seq, max_steps, seq_pair, dim, gfeat, gsteps);
    expect("gather_steps", "out", gsteps, steps, nsd, 0);
    rc_scatter_steps_f64(n_seq, max_steps, seq_pair, dim, dsteps, n_pairs, dfeat);
    be->scatter_steps(n_seq, max_steps, seq_pair, dim, gdsteps, n_pairs, gdfeat);
    expect("scatter_steps", "d_feat", gdfeat, dfeat, (size_t)n_pairs * dim, 1e-7);
    be->free(gf); be->free(gp); be->free(gfeat); be->free(gsteps);
    be->free(gdsteps); be->free(gdfeat);
    free(frames); free(pairs); free(feat); free(steps); free(dsteps); free(dfeat);
}

/* The table: every rc_backend entry is reached by one of these. */
static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    {"conv2d (+ fused conv2d_relu)", case_conv},
    {"relu, gap", case_relu_gap},
    {"linear", case_linear},
    {"lstm", case_lstm},
    {"hinge_loss", case_hinge},
    {"warp_loss", case_warp},
    {"sum_squares, adamw_update, scale, axpy", case_optimizer},
    {"gather_pairs, gather_steps, scatter_steps", case_gather},
};

static void run_backend_in(const char *name, rc_cpu_conv cpu_conv,
                           rc_precision precision) {
    const rc_backend_kind *kind = rc_backend_lookup(name);
    CHECK(kind != NULL);
    if (!kind) return;
    rc_backend_settings st = {.precision = precision, .cpu_conv = cpu_conv};
    if (kind->configure)
        CHECK_MSG(kind->configure(&st) == 0, "%s", rc_last_error());
    /* other summation orders than the CPU reference's */
    tol_scale = kind->is_gpu ? 10 : 1;
    be = kind->ops();
    CHECK_MSG(be != NULL, "%s: %s", name, rc_last_error());
    if (!be) return;
    printf("backend %s\n", be->name);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rc_rng_seed(&rng, 20261130 + c); /* the same inputs on every backend */
        cases[c].run();
    }
}

static void run_backend(const char *name, rc_cpu_conv cpu_conv) {
    run_backend_in(name, cpu_conv, RC_PRECISION_FP32);
}

int main(void) {
    rc_set_threads(2);
    run_backend("cpu", RC_CPU_CONV_BLAS);
    if (rc_onednn_version()) {
        run_backend("cpu", RC_CPU_CONV_ONEDNN);
        /* the same with every convolution split into calls of one image
         * (the weight gradients summed over the calls) */
        rc_onednn_set_chunk_bytes(1);
        printf("(oneDNN convolutions one image per call)\n");
        run_backend("cpu", RC_CPU_CONV_ONEDNN);
        rc_onednn_set_chunk_bytes(0);
        if (rc_onednn_has_bf16()) {
            printf("(oneDNN convolutions in bfloat16: train.precision = bf16)\n");
            bf16_operands = 1;
            run_backend_in("cpu", RC_CPU_CONV_ONEDNN, RC_PRECISION_BF16);
            CHECK_MSG(rc_onednn_uses_bf16(), "bf16 asked for, native here, not used");
            bf16_operands = 0;
            run_backend("cpu", RC_CPU_CONV_ONEDNN); /* and back to float32 */
            CHECK(!rc_onednn_uses_bf16());
        } else
            printf("backend cpu-onednn in bfloat16: this CPU has no native "
                   "bfloat16 arithmetic (skipped)\n");
        /* oneDNN itself computed them, not the fallback to the reference */
        CHECK_MSG(!rc_onednn_failed(), "a oneDNN call failed: the reference "
                  "stood in for it");
        /* its AVX2 and AVX-512 float32 kernels pad a 6-channel source to a
         * block: the 6-channel first layer's backward weights ran in the
         * channels-last kernel (so the comparisons above covered it) */
        const char *isa = rc_onednn_isa();
        printf("oneDNN kernels %s: %d backward-weights passes channels-last\n", isa,
               rc_onednn_channels_last_passes());
        if (!strncmp(isa, "avx2", 4) || !strncmp(isa, "avx512_core", 11))
            CHECK_MSG(rc_onednn_channels_last_passes() > 0,
                      "no backward-weights pass went channels-last on %s", isa);
    } else
        printf("backend cpu-onednn: not in this build (skipped)\n");
    run_backend("emu", RC_CPU_CONV_AUTO);
    if (rc_cuda_device_count() > 0)
        run_backend("cuda", RC_CPU_CONV_AUTO);
    else
        printf("backend cuda: no GPU here (skipped)\n");
    printf("%d comparisons\n", n_checked);
    TEST_DONE();
}
