/* bench_conv_onednn.c: the CPU backend's convolutions against oneDNN's, on
 * the layers of the tiny and paper presets, forward and both backward
 * passes, at the same thread count. Prints per layer the milliseconds of
 * each and the ratio (oneDNN time / ours: below 1, oneDNN is faster):
 *   ours          the CPU backend's op (NCHW, im2col + OpenBLAS sgemm)
 *   dnnl nchw     oneDNN on NCHW tensors, as an op-table entry would get
 *                 them (its reorders, if any, inside the timing)
 *   dnnl blocked  oneDNN in the layouts it picks itself (format_tag_any:
 *                 nChw16c and friends), reorders outside the timing: what
 *                 a whole encoder kept in its layout could reach
 * Before timing a layer, oneDNN's plain forward output is checked against
 * ours on the same data (it must be the same convolution).
 * Measurement only: whether oneDNN is worth an op-table entry
 * (bench/RESULTS.md). Built where libdnnl-dev is found (cmake/onednn.cmake).
 *
 *   bench_conv_onednn [THREADS [REPS]]   (defaults 2 and 5)
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "recompose/backend.h"
#include "recompose/common.h"
#include "recompose/ops.h"
#include "recompose/train.h"

#define DN(call)                                                               \
    do {                                                                       \
        dnnl_status_t st_ = (call);                                            \
        if (st_ != dnnl_success) {                                             \
            fprintf(stderr, "bench_conv_onednn: %s failed (%d) at line %d\n",  \
                    #call, (int)st_, __LINE__);                                \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

typedef struct {
    const char *preset;
    int layer, n, c_in, hw, c_out, k, stride;
} layer_shape;

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static float *filled(size_t n, float scale) {
    float *p = rc_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * (float)((int)(i * 2654435761u % 2001) - 1000) / 1000.0f;
    return p;
}

/* The median of reps timings of fn(ctx), after one warm-up call. */
static double median_ms(int reps, void (*fn)(void *), void *ctx) {
    double t[64];
    if (reps > 64) reps = 64;
    fn(ctx);
    for (int r = 0; r < reps; r++) {
        double t0 = rc_now();
        fn(ctx);
        t[r] = (rc_now() - t0) * 1e3;
    }
    for (int i = 1; i < reps; i++)
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    return t[reps / 2];
}

/* ---- ours ------------------------------------------------------------------- */

typedef struct {
    const rc_backend *be;
    rc_conv_shape s;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *ws;
    int need_dx;
} ours_ctx;

static void ours_fwd(void *p) {
    ours_ctx *c = p;
    c->be->conv2d_forward(&c->s, c->x, c->w, c->b, c->y, c->ws);
}
static void ours_bwd(void *p) {
    ours_ctx *c = p;
    c->be->conv2d_backward(&c->s, c->x, c->w, c->dy, c->need_dx ? c->dx : NULL,
                           c->dw, c->db, c->ws);
}

/* ---- oneDNN --------------------------------------------------------------------- */

typedef struct {
    dnnl_primitive_t fwd, bwd_data, bwd_w;
    dnnl_memory_t src, w, b, dst, dsrc, dw, db, ddst;
    int need_dx;
} dnnl_ctx;

static void dn_fwd(void *p) {
    dnnl_ctx *c = p;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_WEIGHTS, c->w},
                           {DNNL_ARG_BIAS, c->b}, {DNNL_ARG_DST, c->dst}};
    DN(dnnl_primitive_execute(c->fwd, strm, 4, a));
    DN(dnnl_stream_wait(strm));
}
static void dn_bwd(void *p) {
    dnnl_ctx *c = p;
    if (c->need_dx) {
        dnnl_exec_arg_t a[] = {{DNNL_ARG_DIFF_DST, c->ddst}, {DNNL_ARG_WEIGHTS, c->w},
                               {DNNL_ARG_DIFF_SRC, c->dsrc}};
        DN(dnnl_primitive_execute(c->bwd_data, strm, 3, a));
    }
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, c->src}, {DNNL_ARG_DIFF_DST, c->ddst},
                           {DNNL_ARG_DIFF_WEIGHTS, c->dw}, {DNNL_ARG_DIFF_BIAS, c->db}};
    DN(dnnl_primitive_execute(c->bwd_w, strm, 4, a));
    DN(dnnl_stream_wait(strm));
}

static dnnl_memory_t memory_of(dnnl_primitive_desc_t pd, dnnl_query_t q) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, 0);
    dnnl_memory_t m;
    DN(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    /* non-zero data: a denormal-free, realistic pass */
    void *h = NULL;
    DN(dnnl_memory_get_data_handle(m, &h));
    size_t bytes = dnnl_memory_desc_get_size(md);
    float *f = h;
    for (size_t i = 0; i < bytes / sizeof(float); i++)
        f[i] = (float)((int)(i * 2654435761u % 2001) - 1000) * 1e-3f;
    return m;
}

/* The three primitives of a layer; tag = dnnl_nchw (plain) or
 * dnnl_format_tag_any (oneDNN's choice). */
static void dnnl_setup(dnnl_ctx *c, const rc_conv_shape *s, dnnl_format_tag_t tag,
                       int need_dx) {
    memset(c, 0, sizeof *c);
    c->need_dx = need_dx;
    dnnl_dims_t src = {s->n, s->c_in, s->h_in, s->w_in},
                wei = {s->c_out, s->c_in, s->k, s->k}, bia = {s->c_out},
                dst = {s->n, s->c_out, s->h_out, s->w_out};
    dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
    dnnl_memory_desc_t src_md, w_md, b_md, dst_md;
    DN(dnnl_memory_desc_init_by_tag(&src_md, 4, src, dnnl_f32, tag));
    DN(dnnl_memory_desc_init_by_tag(&w_md, 4, wei,
                                    dnnl_f32, tag == dnnl_nchw ? dnnl_oihw : tag));
    DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bia, dnnl_f32, dnnl_x));
    DN(dnnl_memory_desc_init_by_tag(&dst_md, 4, dst, dnnl_f32, tag));
    dnnl_convolution_desc_t fd, bd, wd;
    DN(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                          dnnl_convolution_direct, &src_md, &w_md,
                                          &b_md, &dst_md, strides, pad, pad));
    dnnl_primitive_desc_t fpd, bpd, wpd;
    DN(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    DN(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &src_md,
                                                &w_md, &dst_md, strides, pad, pad));
    DN(dnnl_primitive_desc_create(&bpd, &bd, NULL, eng, fpd));
    DN(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct,
                                                   &src_md, &w_md, &b_md, &dst_md,
                                                   strides, pad, pad));
    DN(dnnl_primitive_desc_create(&wpd, &wd, NULL, eng, fpd));
    c->src = memory_of(fpd, dnnl_query_src_md);
    c->w = memory_of(fpd, dnnl_query_weights_md);
    {   /* the bias: index 1 of the weights query */
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 1);
        DN(dnnl_memory_create(&c->b, md, eng, DNNL_MEMORY_ALLOCATE));
    }
    c->dst = memory_of(fpd, dnnl_query_dst_md);
    c->dsrc = memory_of(bpd, dnnl_query_diff_src_md);
    c->ddst = memory_of(wpd, dnnl_query_diff_dst_md);
    c->dw = memory_of(wpd, dnnl_query_diff_weights_md);
    {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 1);
        DN(dnnl_memory_create(&c->db, md, eng, DNNL_MEMORY_ALLOCATE));
    }
    DN(dnnl_primitive_create(&c->fwd, fpd));
    DN(dnnl_primitive_create(&c->bwd_data, bpd));
    DN(dnnl_primitive_create(&c->bwd_w, wpd));
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_desc_destroy(wpd);
}

static void dnnl_free_ctx(dnnl_ctx *c) {
    dnnl_primitive_destroy(c->fwd);
    dnnl_primitive_destroy(c->bwd_data);
    dnnl_primitive_destroy(c->bwd_w);
    dnnl_memory_t m[] = {c->src, c->w, c->b, c->dst, c->dsrc, c->dw, c->db, c->ddst};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) dnnl_memory_destroy(m[i]);
}

static void *handle(dnnl_memory_t m) {
    void *h = NULL;
    DN(dnnl_memory_get_data_handle(m, &h));
    return h;
}

/* Both compute the same convolution: ours on our data, oneDNN (plain NCHW)
 * on a copy of it; the largest difference relative to the output's scale. */
static double same_output(ours_ctx *o, dnnl_ctx *d) {
    memcpy(handle(d->src), o->x, rc_conv_numel_x(&o->s) * sizeof(float));
    memcpy(handle(d->w), o->w, rc_conv_numel_w(&o->s) * sizeof(float));
    memcpy(handle(d->b), o->b, (size_t)o->s.c_out * sizeof(float));
    ours_fwd(o);
    dn_fwd(d);
    const float *a = o->y, *b = handle(d->dst);
    double worst = 0, scale = 0;
    size_t n = rc_conv_numel_y(&o->s);
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(a[i]));
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    return worst / (scale > 0 ? scale : 1);
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: bench_conv_onednn [THREADS [REPS]]\n\n"
               "The CPU backend's convolutions against oneDNN's on the tiny and\n"
               "paper layers (forward; backward data + weights), median of REPS.\n");
        return 0;
    }
    int threads = argc > 1 ? atoi(argv[1]) : 2, reps = argc > 2 ? atoi(argv[2]) : 5;
    if (threads < 1) threads = 1;
    if (reps < 1) reps = 1;
    omp_set_num_threads(threads);
    rc_set_threads(threads);
    DN(dnnl_engine_create(&eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    const rc_backend *be = rc_backend_cpu();
    /* tiny: 16 tuples x ~18 distinct pairs (twins included); paper at
     * bench_cpu's batch 8: ~13 pairs per tuple */
    static const layer_shape layers[] = {
        {"tiny", 0, 288, 2, 64, 16, 5, 2},   {"tiny", 1, 288, 16, 32, 32, 3, 2},
        {"tiny", 2, 288, 32, 16, 64, 3, 2},  {"tiny", 3, 288, 64, 8, 64, 3, 2},
        {"paper", 0, 104, 6, 128, 64, 5, 2}, {"paper", 1, 104, 64, 64, 128, 3, 2},
        {"paper", 2, 104, 128, 32, 256, 3, 2}, {"paper", 3, 104, 256, 16, 256, 3, 2},
        {"paper", 4, 104, 256, 8, 512, 3, 1},
    };
    printf("threads %d, median of %d; oneDNN %d.%d.%d; ms per call, ratio = oneDNN / ours\n",
           threads, reps, dnnl_version()->major, dnnl_version()->minor,
           dnnl_version()->patch);
    printf("%-6s %5s %9s %9s %9s %7s %9s %7s %9s %9s %9s %7s %9s %7s\n", "preset",
           "layer", "GFLOP", "ours fwd", "nchw fwd", "ratio", "blk fwd", "ratio",
           "ours bwd", "nchw bwd", "ratio", "", "blk bwd", "ratio");
    double sum[2][5] = {{0}};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const layer_shape *L = &layers[i];
        ours_ctx o;
        memset(&o, 0, sizeof o);
        o.be = be;
        rc_conv_shape_init(&o.s, L->n, L->c_in, L->hw, L->hw, L->c_out, L->k, L->stride,
                           L->k / 2);
        o.need_dx = L->layer > 0;
        o.x = filled(rc_conv_numel_x(&o.s), 1);
        o.w = filled(rc_conv_numel_w(&o.s), 0.1f);
        o.b = filled(L->c_out, 0.1f);
        o.y = filled(rc_conv_numel_y(&o.s), 0);
        o.dy = filled(rc_conv_numel_y(&o.s), 1);
        o.dx = filled(rc_conv_numel_x(&o.s), 0);
        o.dw = filled(rc_conv_numel_w(&o.s), 0);
        o.db = filled(L->c_out, 0);
        o.ws = rc_xmalloc(be->conv2d_workspace(&o.s) * sizeof(float) + 64);
        double gf = 2.0 * o.s.n * o.s.c_out * o.s.h_out * o.s.w_out * o.s.c_in * o.s.k *
                    o.s.k / 1e9;
        double of = median_ms(reps, ours_fwd, &o), ob = median_ms(reps, ours_bwd, &o);
        dnnl_ctx plain, blocked;
        dnnl_setup(&plain, &o.s, dnnl_nchw, o.need_dx);
        dnnl_setup(&blocked, &o.s, dnnl_format_tag_any, o.need_dx);
        double err = same_output(&o, &plain);
        if (!(err < 1e-4)) {
            fprintf(stderr, "bench_conv_onednn: %s layer %d: oneDNN's output differs "
                    "from ours (max rel %.3g): not the same convolution\n",
                    L->preset, L->layer, err);
            return 1;
        }
        double pf = median_ms(reps, dn_fwd, &plain), pb = median_ms(reps, dn_bwd, &plain);
        double bf = median_ms(reps, dn_fwd, &blocked), bb = median_ms(reps, dn_bwd, &blocked);
        int p = strcmp(L->preset, "tiny") != 0;
        double v[5] = {of + ob, pf + pb, bf + bb, of, ob};
        for (int k = 0; k < 5; k++) sum[p][k] += v[k];
        printf("%-6s %5d %9.3f %9.2f %9.2f %7.2f %9.2f %7.2f %9.2f %9.2f %9.2f %7s %9.2f %7.2f\n",
               L->preset, L->layer, gf, of, pf, pf / of, bf, bf / of, ob, pb, pb / ob, "",
               bb, bb / ob);
        dnnl_free_ctx(&plain);
        dnnl_free_ctx(&blocked);
        free(o.x), free(o.w), free(o.b), free(o.y), free(o.dy), free(o.dx), free(o.dw),
            free(o.db), free(o.ws);
    }
    for (int p = 0; p < 2; p++)
        printf("%s encoder, fwd + bwd: ours %.1f ms, oneDNN nchw %.1f ms (ratio %.2f), "
               "oneDNN blocked %.1f ms (ratio %.2f)\n", p ? "paper" : "tiny", sum[p][0],
               sum[p][1], sum[p][1] / sum[p][0], sum[p][2], sum[p][2] / sum[p][0]);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
