/* conv_direct.h: the convolution written as its definition, in double: the
 * oracle the CPU convolution tests (im2col + GEMM, chunked, threaded) are
 * checked against. Layouts as in ops.h: x [n][c_in][h][w], w
 * [c_out][c_in][k][k], y [n][c_out][h_out][w_out]. */
#ifndef RC_TEST_CONV_DIRECT_H
#define RC_TEST_CONV_DIRECT_H

#include <string.h>

#include "recompose/ops.h"

/* Input position of output o at kernel tap kk, and whether it is inside. */
static inline int conv_direct_in(const rc_conv_shape *s, int o, int kk, int size,
                                 int *pos) {
    *pos = o * s->stride - s->pad + kk;
    return *pos >= 0 && *pos < size;
}

static inline size_t conv_direct_xi(const rc_conv_shape *s, int n, int ci, int iy,
                                    int ix) {
    return (((size_t)n * s->c_in + ci) * s->h_in + iy) * s->w_in + ix;
}
static inline size_t conv_direct_wi(const rc_conv_shape *s, int co, int ci, int ky,
                                    int kx) {
    return (((size_t)co * s->c_in + ci) * s->k + ky) * s->k + kx;
}
static inline size_t conv_direct_yi(const rc_conv_shape *s, int n, int co, int oy,
                                    int ox) {
    return (((size_t)n * s->c_out + co) * s->h_out + oy) * s->w_out + ox;
}

static inline void conv_direct(const rc_conv_shape *s, const double *x,
                               const double *w, const double *b, double *y) {
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->c_out; co++)
            for (int oy = 0; oy < s->h_out; oy++)
                for (int ox = 0; ox < s->w_out; ox++) {
                    double acc = b[co];
                    for (int ci = 0; ci < s->c_in; ci++)
                        for (int ky = 0; ky < s->k; ky++)
                            for (int kx = 0; kx < s->k; kx++) {
                                int iy, ix;
                                if (conv_direct_in(s, oy, ky, s->h_in, &iy) &&
                                    conv_direct_in(s, ox, kx, s->w_in, &ix))
                                    acc += x[conv_direct_xi(s, n, ci, iy, ix)] *
                                           w[conv_direct_wi(s, co, ci, ky, kx)];
                            }
                    y[conv_direct_yi(s, n, co, oy, ox)] = acc;
                }
}

/* dx, dw and (when db is not NULL) db for upstream gradient dy. */
static inline void conv_direct_backward(const rc_conv_shape *s, const double *x,
                                        const double *w, const double *dy,
                                        double *dx, double *dw, double *db) {
    memset(dx, 0, (size_t)s->n * s->c_in * s->h_in * s->w_in * sizeof(double));
    memset(dw, 0, (size_t)s->c_out * s->c_in * s->k * s->k * sizeof(double));
    if (db) memset(db, 0, (size_t)s->c_out * sizeof(double));
    for (int n = 0; n < s->n; n++)
        for (int co = 0; co < s->c_out; co++)
            for (int oy = 0; oy < s->h_out; oy++)
                for (int ox = 0; ox < s->w_out; ox++) {
                    double g = dy[conv_direct_yi(s, n, co, oy, ox)];
                    if (db) db[co] += g;
                    for (int ci = 0; ci < s->c_in; ci++)
                        for (int ky = 0; ky < s->k; ky++)
                            for (int kx = 0; kx < s->k; kx++) {
                                int iy, ix;
                                if (!conv_direct_in(s, oy, ky, s->h_in, &iy) ||
                                    !conv_direct_in(s, ox, kx, s->w_in, &ix))
                                    continue;
                                size_t xi = conv_direct_xi(s, n, ci, iy, ix),
                                       wi = conv_direct_wi(s, co, ci, ky, kx);
                                dx[xi] += g * w[wi];
                                dw[wi] += g * x[xi];
                            }
                }
}

#endif
