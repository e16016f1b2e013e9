/* test_ops_grad.c: every CPU op's backward against central finite
 * differences (float64), and the float32 build against the float64 one.
 *
 * Objective: L = sum(r * y) for a fixed random r, so dL/dy = r is what the
 * backward pass receives; the hinge loss is already a scalar. Each analytic
 * gradient must match (L(p+h) - L(p-h)) / 2h with h = 1e-6 to a relative
 * error (max abs difference / max abs FD value) below 1e-6. ReLU inputs are
 * kept at least 0.1 away from 0, and hinge distances away from the margin,
 * so no FD step crosses a kink.
 *
 * Backward outputs are poisoned with NaN beforehand: the ops must overwrite
 * them, never accumulate or leave stale values.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/ops.h"
#include "recompose/rng.h"
#include "test_util.h"
#include "../kernels/shared_math.h"

#define FD_STEP 1e-6
#define FD_TOL 1e-6
/* float32 vs float64: inputs are O(1) and sums run over at most a few
 * hundred terms, so rounding stays within a few 1e-7 of the largest value
 * (measured: <= 3.3e-7); 1e-5 leaves room for other BLAS kernels without
 * hiding a real bug (a wrong index or formula gives O(1e-2..1) errors). */
#define F32_TOL 1e-5

static rc_rng rng;

static double *dalloc(size_t n) {
    double *p = malloc((n ? n : 1) * sizeof(double));
    if (!p) abort();
    return p;
}

static float *falloc(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) abort();
    return p;
}

static double *random_array(size_t n, double lo, double hi) {
    double *p = dalloc(n);
    for (size_t i = 0; i < n; i++) p[i] = rc_rng_range(&rng, lo, hi);
    return p;
}

static void poison(double *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

static void poison_f(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

static float *to_float(const double *p, size_t n) {
    float *f = falloc(n);
    for (size_t i = 0; i < n; i++) f[i] = (float)p[i];
    return f;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Central finite differences of f over every element of p, compared with
 * the analytic gradient g. Returns max |g - fd| / max |fd|. */
typedef double (*objective_fn)(void *ctx);

static double fd_rel_err(objective_fn f, void *ctx, double *p, size_t n,
                         const double *g) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double old = p[i];
        p[i] = old + FD_STEP;
        double lp = f(ctx);
        p[i] = old - FD_STEP;
        double lm = f(ctx);
        p[i] = old;
        double fd = (lp - lm) / (2 * FD_STEP);
        double d = fabs(fd - g[i]);
        if (d > num || isnan(d)) num = isnan(d) ? INFINITY : d;
        if (fabs(fd) > den) den = fabs(fd);
    }
    return num / den;
}

/* Each measured error is printed, so a run shows the margins, not only
 * pass/fail. */
static void check_err(const char *file, int line, const char *kind,
                      const char *what, double err, double tol) {
    printf("%-44s %-10s %.2e\n", what, kind, err);
    if (!(err < tol)) {
        fprintf(stderr, "%s:%d: %s: %s relative error %.3g (limit %.0e)\n",
                file, line, what, kind, err, tol);
        rc_test_failures++;
    }
}
#define CHECK_FD(what, err) \
    check_err(__FILE__, __LINE__, "fd", what, err, FD_TOL)
#define CHECK_F32(what, err) \
    check_err(__FILE__, __LINE__, "f32-f64", what, err, F32_TOL)

/* ---- conv2d -------------------------------------------------------------- */

typedef struct {
    rc_conv_shape s;
    double *x, *w, *b, *r, *y, *ws;
    size_t ny;
} conv_ctx;

static double conv_objective(void *p) {
    conv_ctx *c = p;
    rc_conv2d_forward_f64(&c->s, c->x, c->w, c->b, c->y, c->ws);
    return dot(c->r, c->y, c->ny);
}

static void test_conv(int n, int c_in, int h, int w, int c_out, int k,
                      int stride, int pad) {
    char tag[96];
    snprintf(tag, sizeof tag, "conv n%d c%d %dx%d -> %d k%d s%d p%d", n, c_in,
             h, w, c_out, k, stride, pad);
    conv_ctx c;
    rc_conv_shape_init(&c.s, n, c_in, h, w, c_out, k, stride, pad);
    CHECK_MSG(c.s.h_out == (h + 2 * pad - k) / stride + 1 &&
                  c.s.w_out == (w + 2 * pad - k) / stride + 1,
              "%s: output %dx%d", tag, c.s.h_out, c.s.w_out);
    size_t nx = (size_t)n * c_in * h * w, nw = (size_t)c_out * c_in * k * k;
    c.ny = (size_t)n * c_out * c.s.h_out * c.s.w_out;
    size_t nws = rc_conv2d_workspace(&c.s);
    c.x = random_array(nx, -1, 1);
    c.w = random_array(nw, -1, 1);
    c.b = random_array((size_t)c_out, -1, 1);
    c.r = random_array(c.ny, -1, 1);
    c.y = dalloc(c.ny);
    c.ws = dalloc(nws);
    double *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc((size_t)c_out);
    poison(dx, nx);
    poison(dw, nw);
    poison(db, (size_t)c_out);
    conv_objective(&c);
    rc_conv2d_backward_f64(&c.s, c.x, c.w, c.r, dx, dw, db, c.ws);

    char what[128];
    snprintf(what, sizeof what, "%s dx", tag);
    CHECK_FD(what, fd_rel_err(conv_objective, &c, c.x, nx, dx));
    snprintf(what, sizeof what, "%s dw", tag);
    CHECK_FD(what, fd_rel_err(conv_objective, &c, c.w, nw, dw));
    snprintf(what, sizeof what, "%s db", tag);
    CHECK_FD(what, fd_rel_err(conv_objective, &c, c.b, (size_t)c_out, db));

    /* dx is nullable: the other gradients must not change */
    double *dw2 = dalloc(nw), *db2 = dalloc((size_t)c_out);
    rc_conv2d_backward_f64(&c.s, c.x, c.w, c.r, NULL, dw2, db2, c.ws);
    snprintf(what, sizeof what, "%s dw without dx", tag);
    CHECK_MSG(memcmp(dw, dw2, nw * sizeof(double)) == 0 &&
                  memcmp(db, db2, (size_t)c_out * sizeof(double)) == 0,
              "%s differs", what);

    /* float32 on the same inputs */
    conv_objective(&c);
    float *fx = to_float(c.x, nx), *fw = to_float(c.w, nw),
          *fb = to_float(c.b, (size_t)c_out), *fr = to_float(c.r, c.ny);
    float *fy = falloc(c.ny), *fws = falloc(nws), *fdx = falloc(nx),
          *fdw = falloc(nw), *fdb = falloc((size_t)c_out);
    poison_f(fdx, nx);
    poison_f(fdw, nw);
    poison_f(fdb, (size_t)c_out);
    rc_conv2d_forward_f32(&c.s, fx, fw, fb, fy, fws);
    rc_conv2d_backward_f32(&c.s, fx, fw, fr, fdx, fdw, fdb, fws);
    snprintf(what, sizeof what, "%s y", tag);
    CHECK_F32(what, rc_test_rel_err_fd(fy, c.y, c.ny));
    snprintf(what, sizeof what, "%s dx", tag);
    CHECK_F32(what, rc_test_rel_err_fd(fdx, dx, nx));
    snprintf(what, sizeof what, "%s dw", tag);
    CHECK_F32(what, rc_test_rel_err_fd(fdw, dw, nw));
    snprintf(what, sizeof what, "%s db", tag);
    CHECK_F32(what, rc_test_rel_err_fd(fdb, db, (size_t)c_out));

    free(fx); free(fw); free(fb); free(fr); free(fy); free(fws);
    free(fdx); free(fdw); free(fdb);
    free(dw2); free(db2); free(dx); free(dw); free(db);
    free(c.x); free(c.w); free(c.b); free(c.r); free(c.y); free(c.ws);
}

/* ---- relu and global average pooling --------------------------------------- */

typedef struct {
    size_t n;
    double *x, *y, *r;
} relu_ctx;

static double relu_objective(void *p) {
    relu_ctx *c = p;
    rc_relu_forward_f64(c->n, c->x, c->y);
    return dot(c->r, c->y, c->n);
}

static void test_relu(void) {
    relu_ctx c;
    c.n = 200;
    c.x = dalloc(c.n);
    /* |x| >= 0.1: a step of 1e-6 never crosses the kink at 0 */
    for (size_t i = 0; i < c.n; i++) {
        double mag = rc_rng_range(&rng, 0.1, 1.0);
        c.x[i] = rc_rng_uniform(&rng) < 0.5 ? mag : -mag;
    }
    c.y = dalloc(c.n);
    c.r = random_array(c.n, -1, 1);
    double *dx = dalloc(c.n);
    poison(dx, c.n);
    relu_objective(&c);
    rc_relu_backward_f64(c.n, c.y, c.r, dx);
    CHECK_FD("relu dx", fd_rel_err(relu_objective, &c, c.x, c.n, dx));

    /* in place, as the model uses it */
    relu_objective(&c);
    double *inplace = dalloc(c.n);
    memcpy(inplace, c.x, c.n * sizeof(double));
    rc_relu_forward_f64(c.n, inplace, inplace);
    CHECK(memcmp(inplace, c.y, c.n * sizeof(double)) == 0);
    memcpy(inplace, c.r, c.n * sizeof(double));
    rc_relu_backward_f64(c.n, c.y, inplace, inplace);
    CHECK(memcmp(inplace, dx, c.n * sizeof(double)) == 0);

    float *fx = to_float(c.x, c.n), *fr = to_float(c.r, c.n);
    float *fy = falloc(c.n), *fdx = falloc(c.n);
    rc_relu_forward_f32(c.n, fx, fy);
    rc_relu_backward_f32(c.n, fy, fr, fdx);
    CHECK_F32("relu y", rc_test_rel_err_fd(fy, c.y, c.n));
    CHECK_F32("relu dx", rc_test_rel_err_fd(fdx, dx, c.n));
    free(fx); free(fr); free(fy); free(fdx);
    free(inplace); free(dx); free(c.x); free(c.y); free(c.r);
}

typedef struct {
    int n, c, hw;
    double *x, *y, *r;
} gap_ctx;

static double gap_objective(void *p) {
    gap_ctx *g = p;
    rc_gap_forward_f64(g->n, g->c, g->hw, g->x, g->y);
    return dot(g->r, g->y, (size_t)g->n * g->c);
}

static void test_gap(void) {
    gap_ctx g = {3, 4, 10, NULL, NULL, NULL};
    size_t nx = (size_t)g.n * g.c * g.hw, ny = (size_t)g.n * g.c;
    g.x = random_array(nx, -1, 1);
    g.y = dalloc(ny);
    g.r = random_array(ny, -1, 1);
    double *dx = dalloc(nx);
    poison(dx, nx);
    gap_objective(&g);
    rc_gap_backward_f64(g.n, g.c, g.hw, g.r, dx);
    CHECK_FD("gap dx", fd_rel_err(gap_objective, &g, g.x, nx, dx));

    gap_objective(&g);
    float *fx = to_float(g.x, nx), *fr = to_float(g.r, ny);
    float *fy = falloc(ny), *fdx = falloc(nx);
    rc_gap_forward_f32(g.n, g.c, g.hw, fx, fy);
    rc_gap_backward_f32(g.n, g.c, g.hw, fr, fdx);
    CHECK_F32("gap y", rc_test_rel_err_fd(fy, g.y, ny));
    CHECK_F32("gap dx", rc_test_rel_err_fd(fdx, dx, nx));
    free(fx); free(fr); free(fy); free(fdx);
    free(dx); free(g.x); free(g.y); free(g.r);
}

/* ---- linear ---------------------------------------------------------------- */

typedef struct {
    int n, in, out;
    double *x, *w, *b, *y, *r;
} linear_ctx;

static double linear_objective(void *p) {
    linear_ctx *l = p;
    rc_linear_forward_f64(l->n, l->in, l->out, l->x, l->w, l->b, l->y);
    return dot(l->r, l->y, (size_t)l->n * l->out);
}

static void test_linear(void) {
    linear_ctx l = {5, 7, 3, NULL, NULL, NULL, NULL, NULL};
    size_t nx = (size_t)l.n * l.in, nw = (size_t)l.out * l.in,
           ny = (size_t)l.n * l.out;
    l.x = random_array(nx, -1, 1);
    l.w = random_array(nw, -1, 1);
    l.b = random_array((size_t)l.out, -1, 1);
    l.y = dalloc(ny);
    l.r = random_array(ny, -1, 1);
    double *dx = dalloc(nx), *dw = dalloc(nw), *db = dalloc((size_t)l.out);
    poison(dx, nx);
    poison(dw, nw);
    poison(db, (size_t)l.out);
    linear_objective(&l);
    rc_linear_backward_f64(l.n, l.in, l.out, l.x, l.w, l.r, dx, dw, db);
    CHECK_FD("linear dx", fd_rel_err(linear_objective, &l, l.x, nx, dx));
    CHECK_FD("linear dw", fd_rel_err(linear_objective, &l, l.w, nw, dw));
    CHECK_FD("linear db",
             fd_rel_err(linear_objective, &l, l.b, (size_t)l.out, db));

    linear_objective(&l);
    float *fx = to_float(l.x, nx), *fw = to_float(l.w, nw),
          *fb = to_float(l.b, (size_t)l.out), *fr = to_float(l.r, ny);
    float *fy = falloc(ny), *fdx = falloc(nx), *fdw = falloc(nw),
          *fdb = falloc((size_t)l.out);
    poison_f(fdw, nw);
    poison_f(fdb, (size_t)l.out);
    rc_linear_forward_f32(l.n, l.in, l.out, fx, fw, fb, fy);
    rc_linear_backward_f32(l.n, l.in, l.out, fx, fw, fr, fdx, fdw, fdb);
    CHECK_F32("linear y", rc_test_rel_err_fd(fy, l.y, ny));
    CHECK_F32("linear dx", rc_test_rel_err_fd(fdx, dx, nx));
    CHECK_F32("linear dw", rc_test_rel_err_fd(fdw, dw, nw));
    CHECK_F32("linear db", rc_test_rel_err_fd(fdb, db, (size_t)l.out));
    /* dx nullable */
    poison_f(fdw, nw);
    rc_linear_backward_f32(l.n, l.in, l.out, fx, fw, fr, NULL, fdw, fdb);
    CHECK_F32("linear dw (dx NULL)", rc_test_rel_err_fd(fdw, dw, nw));
    free(fx); free(fw); free(fb); free(fr); free(fy); free(fdx); free(fdw);
    free(fdb);
    free(dx); free(dw); free(db); free(l.x); free(l.w); free(l.b); free(l.y);
    free(l.r);
}

/* ---- LSTM ---------------------------------------------------------------- */

typedef struct {
    rc_lstm_shape s;
    double *x, *w_ih, *w_hh, *b, *h_last, *cache, *r;
} lstm_ctx;

static double lstm_objective(void *p) {
    lstm_ctx *c = p;
    rc_lstm_forward_f64(&c->s, c->x, c->w_ih, c->w_hh, c->b, c->h_last,
                        c->cache);
    return dot(c->r, c->h_last, (size_t)c->s.S * c->s.H);
}

static void test_lstm(void) {
    /* mixed lengths: full, length 1, and two with padded steps */
    static const int len[] = {4, 1, 3, 2, 4};
    lstm_ctx c;
    c.s = (rc_lstm_shape){5, 4, 3, 4, len};
    const int S = c.s.S, T = c.s.T, F = c.s.F, H = c.s.H, G = 4 * H;
    size_t nx = (size_t)S * T * F, nih = (size_t)G * F, nhh = (size_t)G * H,
           nh = (size_t)S * H;
    /* padded steps hold random (finite) values: they must be ignored */
    c.x = random_array(nx, -1, 1);
    c.w_ih = random_array(nih, -0.8, 0.8);
    c.w_hh = random_array(nhh, -0.8, 0.8);
    c.b = random_array((size_t)G, -0.5, 0.5);
    c.h_last = dalloc(nh);
    c.r = random_array(nh, -1, 1);
    size_t ncache = rc_lstm_cache_size(&c.s);
    c.cache = dalloc(ncache);
    double *dx = dalloc(nx), *dih = dalloc(nih), *dhh = dalloc(nhh),
           *db = dalloc((size_t)G);
    poison(dx, nx);
    poison(dih, nih);
    poison(dhh, nhh);
    poison(db, (size_t)G);
    lstm_objective(&c);
    rc_lstm_backward_f64(&c.s, c.x, c.w_ih, c.w_hh, c.cache, c.r, dx, dih, dhh,
                         db);

    CHECK_FD("lstm dx", fd_rel_err(lstm_objective, &c, c.x, nx, dx));
    CHECK_FD("lstm dw_ih", fd_rel_err(lstm_objective, &c, c.w_ih, nih, dih));
    CHECK_FD("lstm dw_hh", fd_rel_err(lstm_objective, &c, c.w_hh, nhh, dhh));
    CHECK_FD("lstm db", fd_rel_err(lstm_objective, &c, c.b, (size_t)G, db));

    int padded_nonzero = 0, valid_zero_rows = 0;
    for (int q = 0; q < S; q++) {
        for (int t = 0; t < T; t++) {
            const double *row = dx + ((size_t)q * T + t) * F;
            int all_zero = 1;
            for (int j = 0; j < F; j++)
                if (row[j] != 0) all_zero = 0;
            if (t >= len[q] && !all_zero) padded_nonzero++;
            if (t < len[q] && all_zero) valid_zero_rows++;
        }
    }
    CHECK_MSG(padded_nonzero == 0, "lstm: %d padded steps got dx != 0",
              padded_nonzero);
    CHECK_MSG(valid_zero_rows == 0, "lstm: %d valid steps got dx == 0",
              valid_zero_rows);

    /* the padded values must not change h_last either */
    lstm_objective(&c);
    double *h_ref = dalloc(nh);
    memcpy(h_ref, c.h_last, nh * sizeof(double));
    for (int q = 0; q < S; q++)
        for (int t = len[q]; t < T; t++)
            for (int j = 0; j < F; j++)
                c.x[((size_t)q * T + t) * F + j] = 1e3 * (j + 1);
    lstm_objective(&c);
    CHECK(memcmp(h_ref, c.h_last, nh * sizeof(double)) == 0);

    /* float32 on the same inputs */
    float *fx = to_float(c.x, nx), *fih = to_float(c.w_ih, nih),
          *fhh = to_float(c.w_hh, nhh), *fb = to_float(c.b, (size_t)G),
          *fr = to_float(c.r, nh);
    float *fh = falloc(nh), *fcache = falloc(ncache), *fdx = falloc(nx),
          *fdih = falloc(nih), *fdhh = falloc(nhh), *fdb = falloc((size_t)G);
    poison_f(fdx, nx);
    poison_f(fdih, nih);
    poison_f(fdhh, nhh);
    poison_f(fdb, (size_t)G);
    rc_lstm_forward_f32(&c.s, fx, fih, fhh, fb, fh, fcache);
    rc_lstm_backward_f32(&c.s, fx, fih, fhh, fcache, fr, fdx, fdih, fdhh, fdb);
    /* f64 gradients for the modified padding equal the ones above: padding
     * is ignored */
    CHECK_F32("lstm h_last", rc_test_rel_err_fd(fh, c.h_last, nh));
    CHECK_F32("lstm dx", rc_test_rel_err_fd(fdx, dx, nx));
    CHECK_F32("lstm dw_ih", rc_test_rel_err_fd(fdih, dih, nih));
    CHECK_F32("lstm dw_hh", rc_test_rel_err_fd(fdhh, dhh, nhh));
    CHECK_F32("lstm db", rc_test_rel_err_fd(fdb, db, (size_t)G));

    free(fx); free(fih); free(fhh); free(fb); free(fr); free(fh); free(fcache);
    free(fdx); free(fdih); free(fdhh); free(fdb);
    free(h_ref); free(dx); free(dih); free(dhh); free(db);
    free(c.x); free(c.w_ih); free(c.w_hh); free(c.b); free(c.h_last);
    free(c.r); free(c.cache);
}

/* ---- hinge loss ----------------------------------------------------------- */

typedef struct {
    int n_emb, dim, n_pairs;
    double *emb;
    const rc_loss_pair *pairs;
    rc_hinge_params p;
} hinge_ctx;

static double hinge_objective(void *p) {
    hinge_ctx *h = p;
    return rc_hinge_loss_f64(h->n_emb, h->dim, h->emb, h->n_pairs, h->pairs,
                             &h->p, NULL);
}

/* The symmetry maps written out as dense matrices from their definition
 * (ops.h: blocks A, B, C, D of dim/4; flip: A, C negated; transpose: A and
 * B swapped, C negated), independently of rc_emb_map_index. */
static void dense_map(int map, int dim, double *M) {
    int q = dim / 4;
    memset(M, 0, sizeof(double) * (size_t)dim * dim);
    for (int k = 0; k < dim; k++) {
        int block = k / q, src = k;
        double sign = 1;
        if (map == RC_MAP_FLIP && (block == 0 || block == 2)) sign = -1;
        if (map == RC_MAP_TRANSPOSE) {
            if (block == 0) src = k + q;
            if (block == 1) src = k - q;
            if (block == 2) sign = -1;
        }
        M[(size_t)k * dim + src] = sign;
    }
}

/* ||emb[a] - M emb[b]|| with M dense */
static double pair_distance(const double *emb, int dim, int a, int b,
                            int map) {
    double M[64 * 64];
    dense_map(map, dim, M);
    double s = 0;
    for (int j = 0; j < dim; j++) {
        double mb = 0;
        for (int k = 0; k < dim; k++)
            mb += M[(size_t)j * dim + k] * emb[(size_t)b * dim + k];
        double e = emb[(size_t)a * dim + j] - mb;
        s += e * e;
    }
    return sqrt(s);
}

/* The maps are symmetric involutions generating the square's symmetry
 * group: M = M^T, M M = I, and flip-then-transpose (a quarter turn) has
 * order 4. Checked on the shared index function against dense_map. */
static void test_emb_maps(void) {
    enum { D = 12 };
    for (int map = RC_MAP_NONE; map < RC_MAPS; map++) {
        double M[D * D];
        dense_map(map, D, M);
        for (int k = 0; k < D; k++) {
            float sign;
            int src = rc_emb_map_index(map, D, k, &sign);
            for (int j = 0; j < D; j++) {
                double want = map == RC_MAP_NONE ? (j == k) : M[k * D + j];
                double got = j == src ? sign : 0;
                CHECK_MSG(got == want, "map %d: M[%d][%d] = %g, expected %g",
                          map, k, j, got, want);
                CHECK_MSG(M[k * D + j] == M[j * D + k] || map == RC_MAP_NONE,
                          "map %d not symmetric", map);
            }
        }
    }
    double F[D * D], T[D * D], R[D * D], P[D * D];
    dense_map(RC_MAP_FLIP, D, F);
    dense_map(RC_MAP_TRANSPOSE, D, T);
    for (int i = 0; i < D; i++) /* R = T F */
        for (int j = 0; j < D; j++) {
            double acc = 0;
            for (int k = 0; k < D; k++) acc += T[i * D + k] * F[k * D + j];
            R[i * D + j] = acc;
        }
    memcpy(P, R, sizeof P);
    for (int power = 2; power <= 4; power++) {
        double N[D * D];
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                double acc = 0;
                for (int k = 0; k < D; k++) acc += P[i * D + k] * R[k * D + j];
                N[i * D + j] = acc;
            }
        memcpy(P, N, sizeof P);
        int identity = 1;
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++)
                if (P[i * D + j] != (i == j)) identity = 0;
        CHECK_MSG(identity == (power == 4), "(flip transpose)^%d %s identity",
                  power, identity ? "is" : "is not");
    }
}

static void test_hinge(int squared) {
    /* rows 0..3 near each other (distances < margin), row 4 far away (beyond
     * the margin), row 5 a copy of row 2 (a negative at d = 0), row 7 a copy
     * of row 6 (a positive at d = 0), row 8 at distance 1.3 from row 0 (a
     * negative just beyond the margin: its loss must be 0, not (m - d)^2) */
    enum { N = 9, DIM = 8 };
    static const rc_loss_pair pairs[] = {
        {0, 1, 1, 1.0f, 0},  {2, 3, 1, 0.5f, 0},  /* positives */
        {0, 2, 0, 1.0f, 0},  {1, 3, 0, 2.0f, 0},  /* negatives within margin */
        {0, 4, 0, 1.0f, 0},  {4, 3, 0, 1.5f, 0},  /* negatives beyond margin */
        {2, 5, 0, 1.0f, 0},                    /* negative at d = 0 */
        {6, 7, 1, 1.0f, 0},                    /* positive at d = 0 */
        {1, 0, 0, 0.25f, 0},                   /* reversed order, row reused */
        {0, 8, 0, 1.0f, 0},                    /* just beyond the margin */
        {1, 2, 1, 0.75f, RC_MAP_FLIP},         /* equivariance positives */
        {3, 0, 1, 1.25f, RC_MAP_TRANSPOSE},
        {2, 1, 0, 1.0f, RC_MAP_TRANSPOSE},     /* a mapped negative */
    };
    const int n_pairs = (int)(sizeof pairs / sizeof pairs[0]);
    hinge_ctx h = {N, DIM, n_pairs, NULL, pairs, {1.0, squared, 1.0 / 3}};
    h.emb = random_array((size_t)N * DIM, -0.2, 0.2);
    for (int j = 0; j < DIM; j++) {
        h.emb[4 * DIM + j] += 2.0;
        h.emb[5 * DIM + j] = h.emb[2 * DIM + j];
        h.emb[7 * DIM + j] = h.emb[6 * DIM + j];
        h.emb[8 * DIM + j] = h.emb[j] + 1.3 / sqrt((double)DIM);
    }
    const char *kind = squared ? "squared" : "plain";
    /* no FD step may cross the margin */
    for (int q = 0; q < n_pairs; q++) {
        double d = pair_distance(h.emb, DIM, pairs[q].a, pairs[q].b,
                                 pairs[q].map);
        CHECK_MSG(fabs(d - h.p.margin) > 1e-3, "pair %d at the margin", q);
    }

    /* loss against the formula written out */
    double expect = 0;
    for (int q = 0; q < n_pairs; q++) {
        double d = pair_distance(h.emb, DIM, pairs[q].a, pairs[q].b,
                                 pairs[q].map);
        double gap = h.p.margin - d > 0 ? h.p.margin - d : 0;
        expect += pairs[q].weight *
                  (pairs[q].positive ? d * d : squared ? gap * gap : gap);
    }
    expect *= h.p.scale;

    size_t ne = (size_t)N * DIM;
    double *g = dalloc(ne);
    poison(g, ne);
    double loss = rc_hinge_loss_f64(N, DIM, h.emb, n_pairs, pairs, &h.p, g);
    CHECK_MSG(fabs(loss - expect) <= 1e-12 * fabs(expect),
              "hinge %s: loss %.17g, formula %.17g", kind, loss, expect);
    int finite = 1;
    for (size_t i = 0; i < ne; i++)
        if (!isfinite(g[i])) finite = 0;
    CHECK_MSG(finite, "hinge %s: non-finite gradient (d = 0 pair)", kind);
    CHECK_FD(squared ? "hinge squared d_emb" : "hinge plain d_emb",
             fd_rel_err(hinge_objective, &h, h.emb, ne, g));

    /* a lone negative pair at d = 0: loss w*m^2 (or w*m), gradient 0 */
    rc_loss_pair zero = {2, 5, 0, 1.0f, 0};
    double g0[N * DIM];
    double l0 = rc_hinge_loss_f64(N, DIM, h.emb, 1, &zero, &h.p, g0);
    double l0_expect =
        h.p.scale * (squared ? h.p.margin * h.p.margin : h.p.margin);
    CHECK_MSG(fabs(l0 - l0_expect) < 1e-15, "hinge %s d=0: loss %.17g", kind,
              l0);
    int zero_grad = 1;
    for (size_t i = 0; i < ne; i++)
        if (g0[i] != 0) zero_grad = 0;
    CHECK_MSG(zero_grad, "hinge %s d=0: gradient not exactly 0", kind);

    /* float32 */
    float *femb = to_float(h.emb, ne), *fg = falloc(ne);
    poison_f(fg, ne);
    double floss = rc_hinge_loss_f32(N, DIM, femb, n_pairs, pairs, &h.p, fg);
    CHECK_MSG(fabs(floss - loss) < F32_TOL * fabs(loss),
              "hinge %s f32 loss %.9g vs %.9g", kind, floss, loss);
    CHECK_F32(squared ? "hinge squared d_emb" : "hinge plain d_emb",
              rc_test_rel_err_fd(fg, g, ne));
    /* d_emb nullable */
    double floss2 = rc_hinge_loss_f32(N, DIM, femb, n_pairs, pairs, &h.p, NULL);
    CHECK(floss2 == floss);
    free(femb); free(fg); free(g); free(h.emb);
}

/* ---- the action term: warp loss ---------------------------------------- */

typedef struct {
    rc_warp_shape s;
    const double *frames;
    const int *first, *last;
    double *theta;
} warp_ctx;

static double warp_objective(void *p) {
    warp_ctx *w = p;
    return rc_warp_loss_f64(&w->s, w->frames, w->first, w->last, w->theta, NULL);
}

/* The source point of pixel (i, j) under a warp, written out here from the
 * contract in ops.h (an affine map, or the point plus a bilinear field). */
static void warp_source(const double *a, int grid, int S, int i, int j,
                        double *u, double *v) {
    double x = (2.0 * i + 1) / S - 1, y = (2.0 * j + 1) / S - 1;
    if (!grid) {
        *u = a[0] * x + a[1] * y + a[2];
        *v = a[3] * x + a[4] * y + a[5];
    } else {
        double px = (x + 1) / 2 * (grid - 1), py = (y + 1) / 2 * (grid - 1);
        int kx = (int)fmin(floor(px), grid - 2), ky = (int)fmin(floor(py), grid - 2);
        double fx = px - kx, fy = py - ky;
        *u = x, *v = y;
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
                double wgt = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
                int node = (ky + dy) * grid + kx + dx;
                *u += wgt * a[node];
                *v += wgt * a[grid * grid + node];
            }
    }
    *u = ((*u + 1) * S - 1) / 2; /* pixel units */
    *v = ((*v + 1) * S - 1) / 2;
}

/* Distance of a sequence's source points from the interpolation's kinks
 * (whole pixels, where the bilinear slope jumps, and the clamp at the
 * edges): a finite-difference step must not cross one. */
static double warp_kink_distance(const double *a, int grid, int S) {
    double worst = 1;
    for (int j = 0; j < S; j++)
        for (int i = 0; i < S; i++) {
            double uv[2];
            warp_source(a, grid, S, i, j, &uv[0], &uv[1]);
            for (int k = 0; k < 2; k++) {
                double t = uv[k], f = t - floor(t);
                double d = fmin(f, 1 - f);
                if (fabs(t) < d) d = fabs(t);
                if (fabs(t - (S - 1)) < d) d = fabs(t - (S - 1));
                if (d < worst) worst = d;
            }
        }
    return worst;
}

/* A random warp near the identity clear of every kink: for grid = 0 a small
 * rotation, zoom and shift (with `push` added to the x shift, so that part
 * of the frame samples the clamped edge), for a field small displacements
 * plus `push` in x. */
static void warp_draw(double *a, int grid, int S, double push) {
    do {
        if (!grid) {
            double ang = rc_rng_range(&rng, -0.2, 0.2), z = rc_rng_range(&rng, 0.9, 1.1);
            a[0] = z * cos(ang), a[1] = -z * sin(ang);
            a[3] = z * sin(ang), a[4] = z * cos(ang);
            a[2] = rc_rng_range(&rng, -0.2, 0.2) + push;
            a[5] = rc_rng_range(&rng, -0.2, 0.2);
        } else {
            for (int k = 0; k < 2 * grid * grid; k++)
                a[k] = rc_rng_range(&rng, -0.15, 0.15) + (k < grid * grid ? push : 0);
        }
    } while (warp_kink_distance(a, grid, S) < 1e-3);
}

/* loss.act_moving: the error only where first and last frame differ.
 * Finite differences of d_theta with the mask on; and a known answer: a
 * last frame that is the first plus 0.5 on a 4 x 4 patch aligned to every
 * pooling block has, under the identity, an error of 0.5^2 on exactly the
 * pixels it counts at each of the 3 scales: loss = scale * 3 * 0.25. */
static void test_warp_moving(int grid) {
    enum { C = 2, S = 16, N_FRAMES = 4, N = 4 };
    size_t fe = (size_t)C * S * S;
    double *frames = random_array(N_FRAMES * fe, 0, 1);
    int first[N] = {0, 1, 2, 3}, last[N] = {1, 2, 2, 0};
    warp_ctx w = {{.n = N, .C = C, .S = S, .grid = grid, .n_scales = 3,
                   .scales = {1, 2, 4}, .border = 4, .moving = 0.2, .scale = 0.37},
                  frames, first, last, NULL};
    int np = rc_warp_params(&w.s);
    double *theta = dalloc((size_t)N * np), *g = dalloc((size_t)N * np);
    for (int q = 0; q < N; q++) warp_draw(theta + q * np, grid, S, 0);
    w.theta = theta;
    double loss = rc_warp_loss_f64(&w.s, frames, first, last, theta, g);
    CHECK(isfinite(loss) && loss > 0);
    char what[64];
    snprintf(what, sizeof what, "warp moving (grid %d) d_theta", grid);
    CHECK_FD(what, fd_rel_err(warp_objective, &w, theta, (size_t)N * np, g));

    double *pair = dalloc(2 * fe);
    memcpy(pair, frames, fe * sizeof(double));
    memcpy(pair + fe, frames, fe * sizeof(double));
    for (int c = 0; c < C; c++)
        for (int j = 4; j < 8; j++)
            for (int i = 8; i < 12; i++) pair[fe + (size_t)c * S * S + j * S + i] += 0.5;
    double *id = dalloc(np);
    for (int k = 0; k < np; k++) id[k] = !grid && (k == 0 || k == 4);
    rc_warp_shape one = w.s;
    one.n = 1;
    int f0 = 0, f1 = 1;
    double got = rc_warp_loss_f64(&one, pair, &f0, &f1, id, NULL);
    CHECK_MSG(fabs(got - one.scale * 3 * 0.25) < 1e-12, "moving patch: loss %.12g, "
              "want %.12g", got, one.scale * 3 * 0.25);
    one.moving = 0; /* every pixel: the patch is a quarter of the 8 x 8
                       interior at every scale, its error diluted 4 times */
    double all = rc_warp_loss_f64(&one, pair, &f0, &f1, id, NULL);
    CHECK_MSG(fabs(all - got / 4) < 1e-12, "all pixels: %.12g, want %.12g", all, got / 4);
    one.moving = 0.2; /* nothing moves: nothing to explain */
    CHECK(rc_warp_loss_f64(&one, pair, &f0, &f0, id, NULL) == 0);
    free(frames); free(theta); free(g); free(pair); free(id);
}

static void test_warp(int grid) {
    enum { C = 2, S = 16, N_FRAMES = 4, N = 4 };
    size_t fe = (size_t)C * S * S;
    double *frames = random_array(N_FRAMES * fe, 0, 1);
    int first[N] = {0, 1, 2, 3}, last[N] = {1, 2, 2, 0};
    warp_ctx w = {{.n = N, .C = C, .S = S, .grid = grid, .n_scales = 3,
                   .scales = {1, 2, 4}, .border = 4, .scale = 0.37},
                  frames, first, last, NULL};
    CHECK(rc_warp_shape_check(&w.s) == 0);
    int np = rc_warp_params(&w.s);
    char what[64];
    double *theta = dalloc((size_t)N * np), *g = dalloc((size_t)N * np);
    for (int q = 0; q < N; q++) warp_draw(theta + q * np, grid, S, q == N - 1 ? 0.5 : 0);
    w.theta = theta;
    poison(g, (size_t)N * np);
    double loss = rc_warp_loss_f64(&w.s, frames, first, last, theta, g);
    CHECK(isfinite(loss) && loss > 0);
    snprintf(what, sizeof what, "warp (grid %d) d_theta", grid);
    CHECK_FD(what, fd_rel_err(warp_objective, &w, theta, (size_t)N * np, g));
    float *ff = to_float(frames, N_FRAMES * fe), *ft = to_float(theta, (size_t)N * np);
    float *fg = falloc((size_t)N * np);
    double floss = rc_warp_loss_f32(&w.s, ff, first, last, ft, fg);
    CHECK_MSG(fabs(floss - loss) < F32_TOL * loss, "warp f32 loss %.9g vs %.9g",
              floss, loss);
    CHECK_F32(what, rc_test_rel_err_fd(fg, g, (size_t)N * np));
    CHECK(rc_warp_loss_f32(&w.s, ff, first, last, ft, NULL) == floss);

    /* known answers: the identity copies the frame (loss 0 against itself,
     * gradient 0); a frame shifted by whole pixels is matched exactly by
     * the translation that undoes it, inside a border wider than the shift
     * (for a field: the same displacement at every node) */
    double *id = dalloc(np), *gid = dalloc(np);
    for (int k = 0; k < np; k++) id[k] = !grid && (k == 0 || k == 4);
    int same = 1;
    rc_warp_shape one = w.s;
    one.n = 1;
    CHECK(rc_warp_loss_f64(&one, frames, &same, &same, id, gid) == 0);
    for (int k = 0; k < np; k++) CHECK(gid[k] == 0);
    double *shifted = dalloc(2 * fe);
    memcpy(shifted, frames, fe * sizeof(double));
    for (int c = 0; c < C; c++) /* last(x, y) = first(x + 3, y - 2) */
        for (int j = 0; j < S; j++)
            for (int i = 0; i < S; i++) {
                int si = i + 3 < S ? i + 3 : S - 1, sj = j - 2 >= 0 ? j - 2 : 0;
                shifted[fe + (size_t)c * S * S + j * S + i] =
                    frames[(size_t)c * S * S + sj * S + si];
            }
    int f0 = 0, f1 = 1;
    double *shift = dalloc(np);
    if (!grid) {
        double aff[6] = {1, 0, 2.0 * 3 / S, 0, 1, -2.0 * 2 / S};
        memcpy(shift, aff, sizeof aff);
    } else {
        for (int k = 0; k < np; k++) shift[k] = k < grid * grid ? 2.0 * 3 / S : -2.0 * 2 / S;
    }
    double ls = rc_warp_loss_f64(&one, shifted, &f0, &f1, shift, NULL);
    double l0 = rc_warp_loss_f64(&one, shifted, &f0, &f1, id, NULL);
    CHECK_MSG(ls < 1e-28 && l0 > 1e-3, "shift by (3, -2) px: loss %.3g "
              "(identity %.3g)", ls, l0);
    /* shapes that cannot work are refused */
    rc_warp_shape bad = w.s;
    bad.scales[1] = 3;
    CHECK(rc_warp_shape_check(&bad) == -1);
    bad = w.s;
    bad.border = 8;
    CHECK(rc_warp_shape_check(&bad) == -1);
    bad = w.s;
    bad.grid = 1;
    CHECK(rc_warp_shape_check(&bad) == -1);
    free(shifted); free(shift); free(id); free(gid); free(ff); free(ft); free(fg);
    free(frames); free(theta); free(g);
}

int main(void) {
    rc_rng_seed(&rng, 20240611);
    test_conv(2, 3, 9, 9, 4, 5, 2, 2);   /* first layer: k5 s2 */
    test_conv(2, 4, 8, 7, 5, 3, 2, 1);   /* k3 s2, non-square input */
    test_conv(3, 2, 6, 6, 3, 3, 1, 1);   /* stride 1 (paper's last layer) */
    test_conv(1, 3, 8, 8, 2, 3, 2, 0);   /* no pad, rows left over */
    test_conv(2, 2, 7, 7, 3, 5, 1, 0);   /* k5 s1 */
    test_relu();
    test_gap();
    test_linear();
    test_lstm();
    test_emb_maps();
    test_hinge(1);
    test_hinge(0);
    test_warp(0);
    test_warp(3);
    test_warp_moving(0);
    test_warp_moving(3);
    TEST_DONE();
}
