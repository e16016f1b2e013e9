/* conv2d.c: 2-D convolution (cross-correlation, as PyTorch) by im2col + GEMM,
 * parallel across images.
 *
 * The images of a call are split into one contiguous range per thread; each
 * thread works through its range in chunks of nb images with single-threaded
 * BLAS. For one chunk:
 *
 *   col  [c_in*k*k][nb*hw]   im2col of the chunk (hw = h_out*w_out)
 *   tmp  [c_out][nb*hw]      the GEMM result, channel-major across the chunk
 *
 *   forward:  tmp = W [c_out][c_in*k*k] * col;  y[img][co] = tmp[co][img] + b
 *             (then max(., 0) in the same pass for the fused ReLU variant)
 *   backward: tmp = dy regrouped channel-major (masked by y > 0 for the
 *             fused ReLU variant)
 *             dW_t += tmp * col^T;   col = W^T * tmp;   dx = col2im(col)
 *
 * Why this shape of parallelism: on a small machine the cost of the first
 * version (every helper and every GEMM split across threads) was the
 * hand-offs: OpenBLAS's own thread pool and OpenMP's spun against each other
 * at every call (profiled: more time in sched_yield and barrier spins than
 * in the GEMM kernel). Here each call is one OpenMP region with no inner
 * synchronisation; BLAS runs single-threaded inside it.
 *
 * Determinism: a thread's image range depends only on n and the thread
 * count. Each thread sums its dW into its own buffer (thread 0 directly into
 * dw), and the buffers are added in thread order afterwards, so results are
 * bitwise repeatable for a fixed thread count.
 *
 * Workspace: a fixed budget (RC_CONV_WS_BUDGET elements, or what one thread
 * needs for one image if that is more), shared out among the threads at run
 * time; if the budget cannot hold one image per thread, fewer threads run.
 * So the workspace never grows with n or with the thread count.
 */
#include <omp.h>
#include <string.h>

#include "cpu/real.h"

/* Workspace budget in elements: 32 MB of float32 (64 MB in the float64
 * build, which only the tests use). Pages a call does not use are never
 * touched (the backend allocates lazily zeroed memory). */
#define RC_CONV_WS_BUDGET ((size_t)8 << 20)

/* Elements per thread per chunk: col + tmp of a chunk stay within about 2 MB
 * of float32, so im2col's output is still in cache when the GEMM reads it. */
#define RC_CONV_CHUNK_TARGET ((size_t)512 << 10)

/* Below this much work (multiply-adds) a call runs on one thread. */
#define RC_CONV_PAR_MIN ((size_t)1 << 20)

static size_t conv_hw(const rc_conv_shape *s) {
    return (size_t)s->h_out * (size_t)s->w_out;
}

static size_t conv_ckk(const rc_conv_shape *s) {
    return (size_t)s->c_in * (size_t)s->k * (size_t)s->k;
}

/* col + tmp of one image */
static size_t conv_per_image(const rc_conv_shape *s) {
    return (conv_ckk(s) + (size_t)s->c_out) * conv_hw(s);
}

/* dW and db of one thread (threads other than the first) */
static size_t conv_partial(const rc_conv_shape *s) {
    return (size_t)s->c_out * conv_ckk(s) + (size_t)s->c_out;
}

static size_t conv_ws_elems(const rc_conv_shape *s) {
    size_t one = conv_per_image(s) + conv_partial(s);
    return one > RC_CONV_WS_BUDGET ? one : RC_CONV_WS_BUDGET;
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

size_t rc_conv2d_workspace(const rc_conv_shape *s) { return conv_ws_elems(s); }
#endif

/* How a call is shared out: threads, and images per chunk per thread. */
typedef struct {
    int threads, nb;
    size_t per_thread; /* workspace elements of one thread: col, tmp, partial */
} conv_plan;

static conv_plan conv_plan_for(const rc_conv_shape *s, int backward) {
    conv_plan p;
    size_t per_img = conv_per_image(s), budget = conv_ws_elems(s);
    size_t partial = backward ? conv_partial(s) : 0;
    size_t work = (size_t)s->n * s->c_out * conv_ckk(s) * conv_hw(s);
    int t = work < RC_CONV_PAR_MIN ? 1 : omp_get_max_threads();
    if (t > s->n) t = s->n;
    if (t < 1) t = 1;
    while (t > 1 && (size_t)t * (per_img + partial) > budget) t--;
    size_t share = budget / (size_t)t - partial;
    size_t nb = RC_CONV_CHUNK_TARGET / (per_img ? per_img : 1);
    if (nb > share / (per_img ? per_img : 1)) nb = share / (per_img ? per_img : 1);
    if (nb < 1) nb = 1;
    int per = (s->n + t - 1) / t;
    if (nb > (size_t)per) nb = (size_t)per;
    p.threads = t;
    p.nb = (int)nb;
    p.per_thread = nb * per_img + partial;
    return p;
}

/* Images [lo, hi) of thread `t` of `nt`. */
static void thread_range(int n, int t, int nt, int *lo, int *hi) {
    *lo = (int)((long long)n * t / nt);
    *hi = (int)((long long)n * (t + 1) / nt);
}

/* Output columns [*ox0, *ox1) whose input column, at kernel column kx,
 * falls inside the image (the others read padding). */
static void inside_columns(const rc_conv_shape *s, int kx, int *ox0, int *ox1) {
    const int st = s->stride, pad = s->pad;
    int lo = 0, hi = s->w_out;
    while (lo < s->w_out && lo * st - pad + kx < 0) lo++;
    while (hi > lo && (hi - 1) * st - pad + kx >= s->w_in) hi--;
    *ox0 = lo;
    *ox1 = hi;
}

/* Unfold images [img0, img0+nb) of x into col [c_in*k*k][nb*hw]. */
static void im2col(const rc_conv_shape *s, const real *x, int img0, int nb,
                   real *col) {
    const int k = s->k, st = s->stride, pad = s->pad;
    const int h_in = s->h_in, w_in = s->w_in, h_out = s->h_out,
              w_out = s->w_out;
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    const size_t plane_in = (size_t)h_in * w_in;
    for (int img = 0; img < nb; img++) {
        for (int ci = 0; ci < s->c_in; ci++) {
            const real *src =
                x + ((size_t)(img0 + img) * s->c_in + ci) * plane_in;
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    size_t row = ((size_t)ci * k + ky) * k + kx;
                    real *dst = col + row * ld + (size_t)img * hw;
                    int ox0, ox1;
                    inside_columns(s, kx, &ox0, &ox1);
                    for (int oy = 0; oy < h_out; oy++) {
                        int iy = oy * st - pad + ky;
                        real *d = dst + (size_t)oy * w_out;
                        if (iy < 0 || iy >= h_in) {
                            memset(d, 0, (size_t)w_out * sizeof(real));
                            continue;
                        }
                        const real *srow = src + (size_t)iy * w_in;
                        const int off = kx - pad;
                        for (int ox = 0; ox < ox0; ox++) d[ox] = 0;
                        if (st == 1) {
                            memcpy(d + ox0, srow + ox0 + off,
                                   (size_t)(ox1 - ox0) * sizeof(real));
                        } else {
                            for (int ox = ox0; ox < ox1; ox++)
                                d[ox] = srow[ox * st + off];
                        }
                        for (int ox = ox1; ox < w_out; ox++) d[ox] = 0;
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
    for (int img = 0; img < nb; img++) {
        for (int ci = 0; ci < s->c_in; ci++) {
            real *dst = dx + ((size_t)(img0 + img) * s->c_in + ci) * plane_in;
            memset(dst, 0, plane_in * sizeof(real));
            for (int ky = 0; ky < k; ky++) {
                for (int kx = 0; kx < k; kx++) {
                    size_t row = ((size_t)ci * k + ky) * k + kx;
                    const real *src = col + row * ld + (size_t)img * hw;
                    int ox0, ox1;
                    inside_columns(s, kx, &ox0, &ox1);
                    for (int oy = 0; oy < h_out; oy++) {
                        int iy = oy * st - pad + ky;
                        if (iy < 0 || iy >= h_in) continue;
                        const real *srow = src + (size_t)oy * w_out;
                        real *drow = dst + (size_t)iy * w_in;
                        const int off = kx - pad;
                        for (int ox = ox0; ox < ox1; ox++)
                            drow[ox * st + off] += srow[ox];
                    }
                }
            }
        }
    }
}

/* y[img0+img][co][p] = tmp[co][img*hw + p] + b[co], then max(., 0) if relu */
static void scatter_output(const rc_conv_shape *s, const real *tmp,
                           const real *b, int img0, int nb, int relu, real *y) {
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    for (int img = 0; img < nb; img++) {
        for (int co = 0; co < s->c_out; co++) {
            const real *src = tmp + (size_t)co * ld + (size_t)img * hw;
            real *dst = y + ((size_t)(img0 + img) * s->c_out + co) * hw;
            real bias = b ? b[co] : (real)0;
            if (relu) {
                for (size_t p = 0; p < hw; p++) {
                    real v = src[p] + bias;
                    dst[p] = v > 0 ? v : (real)0;
                }
            } else {
                for (size_t p = 0; p < hw; p++) dst[p] = src[p] + bias;
            }
        }
    }
}

/* tmp[co][img*hw + p] = dy[img0+img][co][p], times (y > 0) if y is given */
static void gather_output_grad(const rc_conv_shape *s, const real *dy,
                               const real *y, int img0, int nb, real *tmp) {
    const size_t hw = conv_hw(s), ld = (size_t)nb * hw;
    for (int img = 0; img < nb; img++) {
        for (int co = 0; co < s->c_out; co++) {
            size_t off = ((size_t)(img0 + img) * s->c_out + co) * hw;
            real *dst = tmp + (size_t)co * ld + (size_t)img * hw;
            if (y) { /* unconditional loads: a vector select, not a
                      * branch on y's random sign (activations.c) */
                #pragma omp simd
                for (size_t p = 0; p < hw; p++) {
                    real g = dy[off + p];
                    dst[p] = y[off + p] > 0 ? g : (real)0;
                }
            } else {
                memcpy(dst, dy + off, hw * sizeof(real));
            }
        }
    }
}

static void conv_forward(const rc_conv_shape *s, const real *x, const real *w,
                         const real *b, real *y, real *ws, int relu) {
    const conv_plan cp = conv_plan_for(s, 0);
    const size_t hw = conv_hw(s), ckk = conv_ckk(s);
    int blas_threads = rc_blas_serial_begin(cp.threads > 1);
    #pragma omp parallel num_threads(cp.threads) if (cp.threads > 1)
    {
        int t = omp_get_thread_num(), lo, hi;
        thread_range(s->n, t, cp.threads, &lo, &hi);
        real *col = ws + (size_t)t * cp.per_thread;
        real *tmp = col + ckk * hw * (size_t)cp.nb;
        for (int img0 = lo; img0 < hi; img0 += cp.nb) {
            int nb = hi - img0 < cp.nb ? hi - img0 : cp.nb;
            int cols = nb * (int)hw;
            im2col(s, x, img0, nb, col);
            RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->c_out, cols,
                    (int)ckk, 1, w, (int)ckk, col, cols, 0, tmp, cols);
            scatter_output(s, tmp, b, img0, nb, relu, y);
        }
    }
    rc_blas_serial_end(blas_threads);
}

void RC_FN(rc_conv2d_forward)(const rc_conv_shape *s, const real *x,
                              const real *w, const real *b, real *y,
                              real *ws) {
    conv_forward(s, x, w, b, y, ws, 0);
}

void RC_FN(rc_conv2d_relu_forward)(const rc_conv_shape *s, const real *x,
                                   const real *w, const real *b, real *y,
                                   real *ws) {
    conv_forward(s, x, w, b, y, ws, 1);
}

/* db_t[co] = sum over images [lo, hi) and positions of dy (masked by y > 0
 * if y is given), in a fixed order, accumulated in double. */
static void conv_bias_grad(const rc_conv_shape *s, const real *dy,
                           const real *y, int lo, int hi, real *db) {
    const size_t hw = conv_hw(s);
    for (int co = 0; co < s->c_out; co++) {
        double acc = 0;
        for (int img = lo; img < hi; img++) {
            size_t off = ((size_t)img * s->c_out + co) * hw;
            if (y) {
                for (size_t i = 0; i < hw; i++)
                    if (y[off + i] > 0) acc += dy[off + i];
            } else {
                for (size_t i = 0; i < hw; i++) acc += dy[off + i];
            }
        }
        db[co] = (real)acc;
    }
}

/* One thread's images [lo, hi): dw_t, db_t overwritten; dx rows written. */
static void conv_backward_range(const rc_conv_shape *s, const real *x,
                                const real *w, const real *dy, const real *y,
                                real *dx, real *dw_t, real *db_t, int lo,
                                int hi, int nb_max, real *col) {
    const size_t hw = conv_hw(s), ckk = conv_ckk(s);
    real *tmp = col + ckk * hw * (size_t)nb_max;
    if (lo >= hi) {
        memset(dw_t, 0, (size_t)s->c_out * ckk * sizeof(real));
        if (db_t) memset(db_t, 0, (size_t)s->c_out * sizeof(real));
        return;
    }
    for (int img0 = lo; img0 < hi; img0 += nb_max) {
        int nb = hi - img0 < nb_max ? hi - img0 : nb_max;
        int cols = nb * (int)hw;
        im2col(s, x, img0, nb, col);
        gather_output_grad(s, dy, y, img0, nb, tmp);
        /* dW [c_out][ckk] (+)= tmp [c_out][cols] * col^T [cols][ckk];
         * the first chunk overwrites, later ones accumulate. */
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, s->c_out, (int)ckk,
                cols, 1, tmp, cols, col, cols, img0 == lo ? 0 : 1, dw_t,
                (int)ckk);
        if (dx) {
            /* col [ckk][cols] = W^T [ckk][c_out] * tmp [c_out][cols] */
            RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ckk, cols,
                    s->c_out, 1, w, (int)ckk, tmp, cols, 0, col, cols);
            col2im(s, col, img0, nb, dx);
        }
    }
    if (db_t) conv_bias_grad(s, dy, y, lo, hi, db_t);
}

static void conv_backward(const rc_conv_shape *s, const real *x,
                          const real *w, const real *dy, const real *y,
                          real *dx, real *dw, real *db, real *ws) {
    const size_t ckk = conv_ckk(s), nw = (size_t)s->c_out * ckk;
    if (s->n <= 0) {
        memset(dw, 0, nw * sizeof(real));
        if (db) memset(db, 0, (size_t)s->c_out * sizeof(real));
        return;
    }
    const conv_plan cp = conv_plan_for(s, 1);
    const size_t chunk = cp.per_thread - conv_partial(s);
    int blas_threads = rc_blas_serial_begin(cp.threads > 1);
    #pragma omp parallel num_threads(cp.threads) if (cp.threads > 1)
    {
        int t = omp_get_thread_num(), lo, hi;
        thread_range(s->n, t, cp.threads, &lo, &hi);
        real *col = ws + (size_t)t * cp.per_thread;
        /* thread 0 writes dw/db directly; the others into their partials */
        real *dw_t = t == 0 ? dw : col + chunk;
        real *db_t = db ? (t == 0 ? db : col + chunk + nw) : NULL;
        conv_backward_range(s, x, w, dy, y, dx, dw_t, db_t, lo, hi, cp.nb, col);
        if (cp.threads > 1) {
            #pragma omp barrier
            /* add the partials in thread order; each thread sums a slice */
            size_t e0 = nw * (size_t)t / (size_t)cp.threads,
                   e1 = nw * (size_t)(t + 1) / (size_t)cp.threads;
            for (int u = 1; u < cp.threads; u++) {
                const real *p = ws + (size_t)u * cp.per_thread + chunk;
                for (size_t e = e0; e < e1; e++) dw[e] += p[e];
            }
            if (db && t == 0) {
                for (int u = 1; u < cp.threads; u++) {
                    const real *p = ws + (size_t)u * cp.per_thread + chunk + nw;
                    for (int co = 0; co < s->c_out; co++) db[co] += p[co];
                }
            }
        }
    }
    rc_blas_serial_end(blas_threads);
}

void RC_FN(rc_conv2d_backward)(const rc_conv_shape *s, const real *x,
                               const real *w, const real *dy, real *dx,
                               real *dw, real *db, real *ws) {
    conv_backward(s, x, w, dy, NULL, dx, dw, db, ws);
}

void RC_FN(rc_conv2d_relu_backward)(const rc_conv_shape *s, const real *x,
                                    const real *w, const real *y,
                                    const real *dy, real *dx, real *dw,
                                    real *db, real *ws) {
    conv_backward(s, x, w, dy, y, dx, dw, db, ws);
}
