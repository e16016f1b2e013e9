/* conv2d.c: 2-D convolution (cross-correlation, as PyTorch) by im2col + GEMM.
 *
 * Images are processed in chunks of nb images. For one chunk:
 *
 *   col  [c_in*k*k][nb*hw]   im2col of the chunk (hw = h_out*w_out)
 *   tmp  [c_out][nb*hw]      the GEMM result, channel-major across the chunk
 *
 *   forward:  tmp = W [c_out][c_in*k*k] * col;   y[img][co] = tmp[co][img] + b
 *   backward: tmp = dy regrouped channel-major
 *             dW += tmp * col^T;   col = W^T * tmp;   dx = col2im(col)
 *
 * One GEMM per chunk (not per image) keeps BLAS efficient for the small
 * feature maps of the last layers. The chunk size depends on the shape only,
 * so the workspace is bounded (RC_CONV_WS_BUDGET elements, or one image if
 * a single image needs more) and results do not depend on the thread count
 * beyond what BLAS itself does. im2col/col2im run in parallel over
 * (image, channel) planes: every output element is written by one thread in a
 * fixed order, so they are deterministic.
 */
#include <string.h>

#include "cpu/real.h"

/* Workspace budget in elements: 32 MB of float32 (64 MB in the float64
 * build, which only the tests use). */
#define RC_CONV_WS_BUDGET ((size_t)8 << 20)

/* Below this many elements, an OpenMP region costs more than it saves. */
#define RC_CONV_OMP_MIN 32768

static size_t conv_hw(const rc_conv_shape *s) {
    return (size_t)s->h_out * (size_t)s->w_out;
}

static size_t conv_ckk(const rc_conv_shape *s) {
    return (size_t)s->c_in * (size_t)s->k * (size_t)s->k;
}

/* Images per chunk: as many as fit the budget, at least one. */
static int conv_chunk_images(const rc_conv_shape *s) {
    size_t per_image = (conv_ckk(s) + (size_t)s->c_out) * conv_hw(s);
    if (per_image == 0) return s->n > 0 ? s->n : 1;
    size_t nb = RC_CONV_WS_BUDGET / per_image;
    if (nb < 1) nb = 1;
    if (s->n > 0 && nb > (size_t)s->n) nb = (size_t)s->n;
    return (int)nb;
}

#if !RC_REAL_DOUBLE
static int conv_out_size(int in, int k, int stride, int pad) {
    if (stride < 1) return 0;
    int span = in + 2 * pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

void rc_conv_shape_init(rc_conv_shape *s, int n, int c_in, int h_in, int w_in,
                        int c_out, int k, int stride, int pad) {
    s->n = n;
    s->c_in = c_in;
    s->h_in = h_in;
    s->w_in = w_in;
    s->c_out = c_out;
    s->k = k;
    s->stride = stride;
    s->pad = pad;
    s->h_out = conv_out_size(h_in, k, stride, pad);
    s->w_out = conv_out_size(w_in, k, stride, pad);
}

size_t rc_conv2d_workspace(const rc_conv_shape *s) {
    size_t nb = (size_t)conv_chunk_images(s);
    return (conv_ckk(s) + (size_t)s->c_out) * conv_hw(s) * nb;
}
#endif

/* Unfold images [img0, img0+nb) of x into col [c_in*k*k][nb*hw]. */
static void im2col(const rc_conv_shape *s, const real *x, int img0, int nb,
                   real *col) {
    const int k = s->k, st = s->stride, pad = s->pad;
    const int h_in = s->h_in, w_in = s->w_in, h_out = s->h_out,
              w_out = s->w_out;
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    const size_t plane_in = (size_t)h_in * w_in;
    const int planes = nb * s->c_in;
    #pragma omp parallel for schedule(static) \
        if ((size_t)planes * k * k * hw > RC_CONV_OMP_MIN)
    for (int pl = 0; pl < planes; pl++) {
        int img = pl / s->c_in, ci = pl % s->c_in;
        const real *src = x + ((size_t)(img0 + img) * s->c_in + ci) * plane_in;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                size_t row = ((size_t)ci * k + ky) * k + kx;
                real *dst = col + row * ld + (size_t)img * hw;
                for (int oy = 0; oy < h_out; oy++) {
                    int iy = oy * st - pad + ky;
                    real *d = dst + (size_t)oy * w_out;
                    if (iy < 0 || iy >= h_in) {
                        memset(d, 0, (size_t)w_out * sizeof(real));
                        continue;
                    }
                    const real *srow = src + (size_t)iy * w_in;
                    for (int ox = 0; ox < w_out; ox++) {
                        int ix = ox * st - pad + kx;
                        d[ox] = (ix >= 0 && ix < w_in) ? srow[ix] : (real)0;
                    }
                }
            }
        }
    }
}

/* Fold col [c_in*k*k][nb*hw] back into dx for images [img0, img0+nb),
 * overwriting them: each input pixel receives the sum of the column entries
 * that read it, in a fixed (ky, kx, oy, ox) order. */
static void col2im(const rc_conv_shape *s, const real *col, int img0, int nb,
                   real *dx) {
    const int k = s->k, st = s->stride, pad = s->pad;
    const int h_in = s->h_in, w_in = s->w_in, h_out = s->h_out,
              w_out = s->w_out;
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    const size_t plane_in = (size_t)h_in * w_in;
    const int planes = nb * s->c_in;
    #pragma omp parallel for schedule(static) \
        if ((size_t)planes * k * k * hw > RC_CONV_OMP_MIN)
    for (int pl = 0; pl < planes; pl++) {
        int img = pl / s->c_in, ci = pl % s->c_in;
        real *dst = dx + ((size_t)(img0 + img) * s->c_in + ci) * plane_in;
        memset(dst, 0, plane_in * sizeof(real));
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                size_t row = ((size_t)ci * k + ky) * k + kx;
                const real *src = col + row * ld + (size_t)img * hw;
                for (int oy = 0; oy < h_out; oy++) {
                    int iy = oy * st - pad + ky;
                    if (iy < 0 || iy >= h_in) continue;
                    const real *srow = src + (size_t)oy * w_out;
                    real *drow = dst + (size_t)iy * w_in;
                    for (int ox = 0; ox < w_out; ox++) {
                        int ix = ox * st - pad + kx;
                        if (ix >= 0 && ix < w_in) drow[ix] += srow[ox];
                    }
                }
            }
        }
    }
}

/* y[img0+img][co][p] = tmp[co][img*hw + p] + b[co] */
static void scatter_output(const rc_conv_shape *s, const real *tmp,
                           const real *b, int img0, int nb, real *y) {
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    const int planes = nb * s->c_out;
    #pragma omp parallel for schedule(static) \
        if ((size_t)planes * hw > RC_CONV_OMP_MIN)
    for (int pl = 0; pl < planes; pl++) {
        int img = pl / s->c_out, co = pl % s->c_out;
        const real *src = tmp + (size_t)co * ld + (size_t)img * hw;
        real *dst = y + ((size_t)(img0 + img) * s->c_out + co) * hw;
        real bias = b ? b[co] : (real)0;
        for (size_t p = 0; p < hw; p++) dst[p] = src[p] + bias;
    }
}

/* tmp[co][img*hw + p] = dy[img0+img][co][p] */
static void gather_output_grad(const rc_conv_shape *s, const real *dy,
                               int img0, int nb, real *tmp) {
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    const int planes = nb * s->c_out;
    #pragma omp parallel for schedule(static) \
        if ((size_t)planes * hw > RC_CONV_OMP_MIN)
    for (int pl = 0; pl < planes; pl++) {
        int img = pl / s->c_out, co = pl % s->c_out;
        memcpy(tmp + (size_t)co * ld + (size_t)img * hw,
               dy + ((size_t)(img0 + img) * s->c_out + co) * hw,
               hw * sizeof(real));
    }
}

void RC_FN(rc_conv2d_forward)(const rc_conv_shape *s, const real *x,
                              const real *w, const real *b, real *y,
                              real *ws) {
    const int nb_max = conv_chunk_images(s);
    const size_t hw = conv_hw(s), ckk = conv_ckk(s);
    real *col = ws;
    real *tmp = ws + ckk * hw * (size_t)nb_max;
    for (int img0 = 0; img0 < s->n; img0 += nb_max) {
        int nb = s->n - img0 < nb_max ? s->n - img0 : nb_max;
        int cols = nb * (int)hw;
        im2col(s, x, img0, nb, col);
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->c_out, cols,
                (int)ckk, 1, w, (int)ckk, col, cols, 0, tmp, cols);
        scatter_output(s, tmp, b, img0, nb, y);
    }
}

/* db[co] = sum over images and positions of dy, in a fixed order. */
static void conv_bias_grad(const rc_conv_shape *s, const real *dy, real *db) {
    const size_t hw = conv_hw(s);
    #pragma omp parallel for schedule(static) \
        if ((size_t)s->n * s->c_out * hw > RC_CONV_OMP_MIN)
    for (int co = 0; co < s->c_out; co++) {
        double acc = 0;
        for (int img = 0; img < s->n; img++) {
            const real *p = dy + ((size_t)img * s->c_out + co) * hw;
            for (size_t i = 0; i < hw; i++) acc += p[i];
        }
        db[co] = (real)acc;
    }
}

void RC_FN(rc_conv2d_backward)(const rc_conv_shape *s, const real *x,
                               const real *w, const real *dy, real *dx,
                               real *dw, real *db, real *ws) {
    const int nb_max = conv_chunk_images(s);
    const size_t hw = conv_hw(s), ckk = conv_ckk(s);
    real *col = ws;
    real *tmp = ws + ckk * hw * (size_t)nb_max;
    if (s->n <= 0) {
        memset(dw, 0, (size_t)s->c_out * ckk * sizeof(real));
        if (db) memset(db, 0, (size_t)s->c_out * sizeof(real));
        return;
    }
    for (int img0 = 0; img0 < s->n; img0 += nb_max) {
        int nb = s->n - img0 < nb_max ? s->n - img0 : nb_max;
        int cols = nb * (int)hw;
        im2col(s, x, img0, nb, col);
        gather_output_grad(s, dy, img0, nb, tmp);
        /* dW [c_out][ckk] (+)= tmp [c_out][cols] * col^T [cols][ckk];
         * the first chunk overwrites, later ones accumulate. */
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, s->c_out, (int)ckk,
                cols, 1, tmp, cols, col, cols, img0 == 0 ? 0 : 1, dw,
                (int)ckk);
        if (dx) {
            /* col [ckk][cols] = W^T [ckk][c_out] * tmp [c_out][cols] */
            RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, cols,
                    s->c_out, 1, w, (int)ckk, tmp, cols, 0, col, cols);
            col2im(s, col, img0, nb, dx);
        }
    }
    if (db) conv_bias_grad(s, dy, db);
}
