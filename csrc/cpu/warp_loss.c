/* warp_loss.c: the action term of SPEC section 4 ("The code acts on
 * images") and its gradient with respect to the affine warp parameters.
 * The contract is in ops.h (rc_warp_shape); here, how it is computed.
 *
 * Per sequence, in three passes over the frame (passes 1 and 3 only
 * inside the border, where pass 2 scores):
 *  1. warp: for every output pixel the source point in [-1, 1] coordinates
 *     (the affine map, or the point plus the field's bilinear value),
 *     in pixel units u = (x_src + 1) S/2 - 1/2 (and v), clamped to
 *     [0, S-1]; the bilinear value from the 2 x 2 pixels around it (a
 *     neighbour past the last pixel has weight 0 there).
 *  2. error: for each pooling factor k, the k x k block means of the warped
 *     and of the last frame inside the border; the error's derivative with
 *     respect to a block mean is spread evenly over its k x k pixels, so
 *     dW[pixel] collects 2 (pool(W) - pool(last)) / (count k^2) per scale.
 *  3. back to theta: dW times the bilinear value's slope along u (and v),
 *     zero where the clamp was active, times du/dx_src = S/2, times
 *     d x_src / d theta: (x, y, 1) for an affine row's three parameters,
 *     the four bilinear weights of the nodes around (x, y) for a field.
 * Sequences are independent (one OpenMP thread each); within one, every
 * sum runs in pixel order in double: the result does not depend on the
 * thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "cpu/real.h"

#if !RC_REAL_DOUBLE
int rc_warp_shape_check(const rc_warp_shape *s) {
    if (s->n_scales < 1 || s->n_scales > RC_WARP_MAX_SCALES)
        return rc_set_error("the action term needs 1..%d scales, got %d",
                            RC_WARP_MAX_SCALES, s->n_scales);
    for (int k = 0; k < s->n_scales; k++) {
        int f = s->scales[k];
        if (f < 1 || s->S % f != 0)
            return rc_set_error("action scale %d does not divide the frame "
                                "size %d; choose factors of %d", f, s->S, s->S);
        int inner = s->S / f - 2 * (s->border / f);
        if (inner < 1)
            return rc_set_error("action border %d leaves no pixel of a %dx%d "
                                "frame at scale %d; lower loss.act_border",
                                s->border, s->S, s->S, f);
    }
    if (s->border < 0)
        return rc_set_error("action border %d is negative", s->border);
    if (s->grid != 0 && (s->grid < 2 || s->grid > RC_WARP_MAX_GRID))
        return rc_set_error("action grid %d is outside 2..%d", s->grid,
                            RC_WARP_MAX_GRID);
    return 0;
}
#endif

/* floor(t) for t well inside int's range, without a libm call (SSE2, the
 * x86-64 baseline, has no rounding instruction): the same value. */
static inline int floor_int(double t) {
    int k = (int)t;
    return k > t ? k - 1 : k;
}

/* Source coordinate in pixel units of normalised coordinate t, clamped to
 * [0, S-1]; *inside = 0 where the clamp acts (no gradient flows). */
static double source_pixel(double t, int S, int *inside) {
    double u = ((t + 1.0) * S - 1.0) * 0.5;
    *inside = 1;
    if (u < 0) {
        *inside = 0;
        return 0;
    }
    if (u > S - 1) {
        *inside = 0;
        return S - 1;
    }
    return u;
}

/* The pixel (x0, y0) and the interpolation weights of a source point. */
typedef struct {
    int x0, y0, x1, y1;
    double fx, fy;
    int in_x, in_y;
} bilinear;

/* The node cell of a field of G x G nodes at -1 + 2k/(G-1) that holds
 * coordinate t in [-1, 1]: its first node and the weight of the next. */
static int field_cell(double t, int G, double *frac) {
    double p = (t + 1) * 0.5 * (G - 1);
    int k = floor_int(p);
    if (k < 0) k = 0;
    if (k > G - 2) k = G - 2;
    *frac = p - k;
    return k;
}

/* The source point of (x, y) in [-1, 1] coordinates. */
static void source_point(const rc_warp_shape *s, const real *a, double x,
                         double y, double *xs, double *ys) {
    if (!s->grid) {
        *xs = a[0] * x + a[1] * y + a[2];
        *ys = a[3] * x + a[4] * y + a[5];
        return;
    }
    int G = s->grid;
    double fx, fy;
    int kx = field_cell(x, G, &fx), ky = field_cell(y, G, &fy);
    const real *dx = a, *dy = a + G * G;
    double w[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
    int at[4] = {ky * G + kx, ky * G + kx + 1, (ky + 1) * G + kx, (ky + 1) * G + kx + 1};
    *xs = x;
    *ys = y;
    for (int k = 0; k < 4; k++) {
        *xs += w[k] * dx[at[k]];
        *ys += w[k] * dy[at[k]];
    }
}

/* Adds the gradient of a pixel whose source point's derivatives are
 * (gx, gy) (per unit of [-1, 1] coordinates) to g [params]. */
static void add_source_gradient(const rc_warp_shape *s, double x, double y,
                                double gx, double gy, double *g) {
    if (!s->grid) {
        g[0] += gx * x;
        g[1] += gx * y;
        g[2] += gx;
        g[3] += gy * x;
        g[4] += gy * y;
        g[5] += gy;
        return;
    }
    int G = s->grid;
    double fx, fy;
    int kx = field_cell(x, G, &fx), ky = field_cell(y, G, &fy);
    double w[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
    int at[4] = {ky * G + kx, ky * G + kx + 1, (ky + 1) * G + kx, (ky + 1) * G + kx + 1};
    for (int k = 0; k < 4; k++) {
        g[at[k]] += w[k] * gx;
        g[G * G + at[k]] += w[k] * gy;
    }
}

static bilinear locate(const rc_warp_shape *s, const real *a, double x,
                       double y) {
    bilinear b;
    int S = s->S;
    double xs, ys;
    source_point(s, a, x, y, &xs, &ys);
    double u = source_pixel(xs, S, &b.in_x);
    double v = source_pixel(ys, S, &b.in_y);
    b.x0 = floor_int(u);
    b.y0 = floor_int(v);
    b.fx = u - b.x0;
    b.fy = v - b.y0;
    b.x1 = b.x0 + 1 < S ? b.x0 + 1 : b.x0; /* weight fx = 0 there */
    b.y1 = b.y0 + 1 < S ? b.y0 + 1 : b.y0;
    return b;
}

/* |pool_k(first) - pool_k(last)| of the k x k block at pooled pixel
 * (pi, pj) of the plane at offset at0: how much it changes. */
static double block_change(const real *src, const real *dst, size_t at0,
                           int S, int k, int pi, int pj) {
    double ss = 0, sd = 0;
    for (int dj = 0; dj < k; dj++)
        for (int di = 0; di < k; di++) {
            size_t at = at0 + (size_t)(pj * k + dj) * S + pi * k + di;
            ss += src[at];
            sd += dst[at];
        }
    return fabs(ss - sd) / ((double)k * k);
}

/* Pooled pixels (over channels, inside the border) at pooling factor k
 * whose first and last frame differ by more than s->moving. */
static double moving_count(const rc_warp_shape *s, const real *src,
                           const real *dst, int k) {
    int S = s->S, P = S / k, m = s->border / k;
    size_t plane = (size_t)S * S;
    double n = 0;
    for (int c = 0; c < s->C; c++)
        for (int pj = m; pj < P - m; pj++)
            for (int pi = m; pi < P - m; pi++)
                n += block_change(src, dst, c * plane, S, k, pi, pj) > s->moving;
    return n;
}

/* The loss of one sequence (unscaled) and, if dth != NULL, its gradient.
 * warped and d_warped are scratch of C*S*S doubles, points of S*S source
 * points (pass 1 locates each pixel's, pass 3 reuses them). */
static double sequence_loss(const rc_warp_shape *s, const real *src,
                            const real *dst, const real *th, real *dth,
                            double *warped, double *d_warped, bilinear *points) {
    int C = s->C, S = s->S;
    size_t plane = (size_t)S * S;
    /* Scored blocks lie inside [lo, S - lo) in both directions: passes 1
     * and 3 skip the border, whose warped pixels nothing reads. */
    int lo = S;
    for (int q = 0; q < s->n_scales; q++) {
        int k = s->scales[q], edge = s->border / k * k;
        if (edge < lo) lo = edge;
    }
    int hi = S - lo;

    for (int j = lo; j < hi; j++) {
        double y = (2.0 * j + 1) / S - 1;
        for (int i = lo; i < hi; i++) {
            double x = (2.0 * i + 1) / S - 1;
            bilinear b = points[(size_t)j * S + i] = locate(s, th, x, y);
            for (int c = 0; c < C; c++) {
                const real *f = src + c * plane;
                double top = (1 - b.fx) * f[b.y0 * S + b.x0] + b.fx * f[b.y0 * S + b.x1];
                double bot = (1 - b.fx) * f[b.y1 * S + b.x0] + b.fx * f[b.y1 * S + b.x1];
                warped[c * plane + (size_t)j * S + i] = (1 - b.fy) * top + b.fy * bot;
            }
        }
    }

    double loss = 0;
    if (dth) memset(d_warped, 0, C * plane * sizeof(double));
    for (int q = 0; q < s->n_scales; q++) {
        int k = s->scales[q], P = S / k, m = s->border / k;
        double count = (double)C * (P - 2 * m) * (P - 2 * m);
        double inv_area = 1.0 / ((double)k * k);
        if (s->moving > 0) count = moving_count(s, src, dst, k);
        if (count == 0) continue;
        for (int c = 0; c < C; c++)
            for (int pj = m; pj < P - m; pj++)
                for (int pi = m; pi < P - m; pi++) {
                    if (s->moving > 0 &&
                        !(block_change(src, dst, c * plane, S, k, pi, pj) > s->moving))
                        continue;
                    double sw = 0, sd = 0;
                    for (int dj = 0; dj < k; dj++)
                        for (int di = 0; di < k; di++) {
                            size_t at = c * plane + (size_t)(pj * k + dj) * S + pi * k + di;
                            sw += warped[at];
                            sd += dst[at];
                        }
                    double diff = (sw - sd) * inv_area;
                    loss += diff * diff / count;
                    if (!dth) continue;
                    double g = 2 * diff / count * inv_area;
                    for (int dj = 0; dj < k; dj++)
                        for (int di = 0; di < k; di++)
                            d_warped[c * plane + (size_t)(pj * k + dj) * S + pi * k + di] += g;
                }
    }
    if (!dth) return loss;

    int np = rc_warp_params(s);
    double g[2 * RC_WARP_MAX_GRID * RC_WARP_MAX_GRID] = {0};
    for (int j = lo; j < hi; j++) {
        double y = (2.0 * j + 1) / S - 1;
        for (int i = lo; i < hi; i++) {
            double x = (2.0 * i + 1) / S - 1;
            const bilinear b = points[(size_t)j * S + i];
            double du = 0, dv = 0; /* dLoss / d source pixel coordinate */
            int reached = 0;
            for (int c = 0; c < C; c++) {
                double dw = d_warped[c * plane + (size_t)j * S + i];
                if (dw == 0) continue;
                reached = 1;
                const real *f = src + c * plane;
                double v00 = f[b.y0 * S + b.x0], v01 = f[b.y0 * S + b.x1];
                double v10 = f[b.y1 * S + b.x0], v11 = f[b.y1 * S + b.x1];
                du += dw * ((1 - b.fy) * (v01 - v00) + b.fy * (v11 - v10));
                dv += dw * ((1 - b.fx) * (v10 - v00) + b.fx * (v11 - v01));
            }
            if (!reached) continue; /* outside every scored block: adds 0 */
            du *= b.in_x ? 0.5 * S : 0;
            dv *= b.in_y ? 0.5 * S : 0;
            add_source_gradient(s, x, y, du, dv, g);
        }
    }
    for (int k = 0; k < np; k++) dth[k] = (real)(g[k] * s->scale);
    return loss;
}

double RC_FN(rc_warp_loss)(const rc_warp_shape *s, const real *frames,
                           const int *first, const int *last,
                           const real *theta, real *d_theta) {
    size_t fe = (size_t)s->C * s->S * s->S, np = (size_t)rc_warp_params(s);
    double *per_seq = rc_xcalloc(s->n > 0 ? (size_t)s->n : 1, sizeof(double));
#pragma omp parallel
    {
        double *warped = rc_xmalloc(fe * sizeof(double));
        double *d_warped = d_theta ? rc_xmalloc(fe * sizeof(double)) : NULL;
        bilinear *points = rc_xmalloc((size_t)s->S * s->S * sizeof *points);
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < s->n; q++)
            per_seq[q] = sequence_loss(s, frames + (size_t)first[q] * fe,
                                       frames + (size_t)last[q] * fe,
                                       theta + np * q,
                                       d_theta ? d_theta + np * q : NULL,
                                       warped, d_warped, points);
        free(warped);
        free(points);
        free(d_warped);
    }
    double loss = 0;
    for (int q = 0; q < s->n; q++) loss += per_seq[q];
    free(per_seq);
    return loss * s->scale;
}
