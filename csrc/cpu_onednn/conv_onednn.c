/* conv_onednn.c: the CPU backend's convolutions by oneDNN (libdnnl).
 *
 * The op table's contract stays NCHW at every entry (x [n][c][h][w],
 * w [c_out][c_in][k][k], y [n][c_out][h'][w']): each call reorders its
 * inputs into the layouts oneDNN's kernels want for that shape (nChw16c
 * and friends, format_tag_any), runs the convolution there and reorders
 * the results back. On small-channel layers (the tiny preset) oneDNN's
 * direct kernels in those layouts run 3-4x faster than im2col + sgemm
 * (bench/RESULTS.md, "Convolutions: ours against oneDNN"), far more than
 * the reorders cost.
 *
 *   forward   x --reorder--> src   w --reorder--> wei
 *             conv(src, wei, b) [+ ReLU post-op] --> dst --reorder--> y
 *   backward  [dy * (y > 0) for the fused entry] --reorder--> diff_dst
 *             backward weights(src, diff_dst) --> diff_wei (reorder), db
 *             backward data(diff_dst, wei) --> diff_src --reorder--> dx
 *
 * Invariants:
 *  - A reorder between equal layouts is skipped: the op reads or writes the
 *    caller's buffer itself.
 *  - Blocked buffers are scratch: nothing lives in them between calls, so
 *    one growable buffer per role serves every layer.
 *  - Primitives are cached per shape (the batch's distinct pairs change the
 *    leading dimension from step to step; oneDNN's own primitive cache
 *    makes a re-created primitive of a seen shape cheap).
 *  - dw and db are overwritten, dx too where asked (nullable), as in the
 *    reference. For a fixed thread count the results are the same from run
 *    to run (oneDNN's CPU reductions have a fixed order).
 *  - Any oneDNN failure falls back to the reference op for that call, with
 *    one message: a missing kernel never stops a run.
 *  - bfloat16 (train.precision = bf16, rc_onednn_set_bf16, only where the
 *    CPU has native bfloat16 arithmetic): the reorders into the kernels'
 *    layouts round x, w and dy to bfloat16 (nearest even); y, dx, dw and
 *    db come out in float32, summed in float32. Nothing else changes: the
 *    callers' tensors, the master weights and AdamW stay float32.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "recompose/common.h"
#include "recompose/ops.h"
#include "cpu_onednn/onednn.h"

/* ---- engine, stream, scratch ------------------------------------------------ */

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int started, broken;
static int use_bf16; /* the operands' type: see the invariants */

/* Scratch roles: one growable buffer each (see the invariants above). A
 * forward and a backward call never overlap, so the backward's source and
 * output gradient reuse the forward's source and output buffers. */
enum { S_SRC, S_WEI, S_DST, S_DDST2, S_DWEI, S_WEI2, S_DSRC, S_MASKED, S_PART,
       S_ROLES, S_SRC2 = S_SRC, S_DDST = S_DST };
static struct {
    void *p;
    size_t bytes;
} scratch[S_ROLES];

static void *scratch_of(int role, size_t bytes) {
    if (scratch[role].bytes < bytes) {
        free(scratch[role].p);
        scratch[role].p = rc_xmalloc(bytes);
        scratch[role].bytes = bytes;
    }
    return scratch[role].p;
}

static int fail_once(const char *what, dnnl_status_t st) {
    if (!broken)
        rc_log("oneDNN: %s failed (status %d); the reference convolutions "
               "take over for the calls it cannot do", what, (int)st);
    broken = 1;
    return -1;
}

#define TRY(call)                                                              \
    do {                                                                       \
        dnnl_status_t st_ = (call);                                            \
        if (st_ != dnnl_success) return fail_once(#call, st_);                 \
    } while (0)

static int start(void) {
    if (started) return engine ? 0 : -1;
    started = 1;
    TRY(dnnl_engine_create(&engine, dnnl_cpu, 0));
    TRY(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    return 0;
}

/* ---- one cached shape -------------------------------------------------------- */

/* A layout conversion, or none where the two layouts are equal. */
typedef struct {
    dnnl_primitive_t prim;       /* NULL: equal layouts, no copy */
    dnnl_memory_t from, to;
} conversion;

typedef struct {
    rc_conv_shape s;
    int relu, used, has_bwd;
    unsigned long last_use;
    /* the caller's layouts */
    dnnl_memory_desc_t x_md, w_md, b_md, y_md;
    /* forward */
    dnnl_primitive_t fwd;
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    dnnl_memory_t src, wei, bias, dst;
    conversion in_x, in_w, out_y;
    /* backward weights and data */
    dnnl_primitive_t bwd_w, bwd_d;
    dnnl_memory_desc_t src2_md, ddst_md, dwei_md, db_md, ddst2_md, wei2_md, dsrc_md;
    dnnl_memory_t src2, ddst, dwei, db, ddst2, wei2, dsrc;
    conversion in_x2, in_dy, in_dy2, in_w2, out_dw, out_dx;
} conv_entry;

enum { CACHE = 24 };
static conv_entry cache[CACHE];
static unsigned long clock_tick;

static int same_shape(const rc_conv_shape *a, const rc_conv_shape *b) {
    return a->n == b->n && a->c_in == b->c_in && a->h_in == b->h_in &&
           a->w_in == b->w_in && a->c_out == b->c_out && a->k == b->k &&
           a->stride == b->stride && a->pad == b->pad;
}

static void destroy_conversion(conversion *c) {
    if (c->prim) dnnl_primitive_destroy(c->prim);
    if (c->from) dnnl_memory_destroy(c->from);
    if (c->to) dnnl_memory_destroy(c->to);
    memset(c, 0, sizeof *c);
}

static void destroy_entry(conv_entry *e) {
    dnnl_primitive_t p[] = {e->fwd, e->bwd_w, e->bwd_d};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i]) dnnl_primitive_destroy(p[i]);
    dnnl_memory_t m[] = {e->src, e->wei, e->bias, e->dst, e->src2, e->ddst,
                         e->dwei, e->db, e->ddst2, e->wei2, e->dsrc};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    conversion *c[] = {&e->in_x, &e->in_w, &e->out_y, &e->in_x2, &e->in_dy,
                       &e->in_dy2, &e->in_w2, &e->out_dw, &e->out_dx};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) destroy_conversion(c[i]);
    memset(e, 0, sizeof *e);
}

static int memory(dnnl_memory_t *m, const dnnl_memory_desc_t *md) {
    TRY(dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE));
    return 0;
}

/* A conversion from layout a to layout b (none if they are equal). */
static int conversion_make(conversion *c, const dnnl_memory_desc_t *a,
                           const dnnl_memory_desc_t *b) {
    memset(c, 0, sizeof *c);
    if (dnnl_memory_desc_equal(a, b)) return 0;
    dnnl_primitive_desc_t pd;
    TRY(dnnl_reorder_primitive_desc_create(&pd, a, engine, b, engine, NULL));
    dnnl_status_t st = dnnl_primitive_create(&c->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return fail_once("reorder primitive", st);
    if (memory(&c->from, a) || memory(&c->to, b)) return -1;
    return 0;
}

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd,
                                       dnnl_query_t what, int index) {
    return dnnl_primitive_desc_query_md(pd, what, index);
}

static int forward_make(conv_entry *e) {
    const rc_conv_shape *s = &e->s;
    dnnl_dims_t xd = {s->n, s->c_in, s->h_in, s->w_in},
                wd = {s->c_out, s->c_in, s->k, s->k}, bd = {s->c_out},
                yd = {s->n, s->c_out, s->h_out, s->w_out};
    dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
    TRY(dnnl_memory_desc_init_by_tag(&e->x_md, 4, xd, dnnl_f32, dnnl_nchw));
    TRY(dnnl_memory_desc_init_by_tag(&e->w_md, 4, wd, dnnl_f32, dnnl_oihw));
    TRY(dnnl_memory_desc_init_by_tag(&e->b_md, 1, bd, dnnl_f32, dnnl_x));
    TRY(dnnl_memory_desc_init_by_tag(&e->y_md, 4, yd, dnnl_f32, dnnl_nchw));
    dnnl_data_type_t op = use_bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t any_x, any_w, any_y;
    TRY(dnnl_memory_desc_init_by_tag(&any_x, 4, xd, op, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_w, 4, wd, op, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_y, 4, yd, dnnl_f32, dnnl_format_tag_any));
    dnnl_convolution_desc_t cd;
    TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training,
                                           dnnl_convolution_direct, &any_x, &any_w,
                                           &e->b_md, &any_y, strides, pad, pad));
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (e->relu) {
        TRY(dnnl_post_ops_create(&po));
        TRY(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        TRY(dnnl_primitive_attr_create(&attr));
        TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &cd, attr, engine, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    if (st != dnnl_success) return fail_once("convolution forward", st);
    e->src_md = *query(pd, dnnl_query_src_md, 0);
    e->wei_md = *query(pd, dnnl_query_weights_md, 0);
    e->dst_md = *query(pd, dnnl_query_dst_md, 0);
    st = dnnl_primitive_create(&e->fwd, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return fail_once("convolution forward primitive", st);
    if (memory(&e->src, &e->src_md) || memory(&e->wei, &e->wei_md) ||
        memory(&e->bias, &e->b_md) || memory(&e->dst, &e->dst_md))
        return -1;
    if (conversion_make(&e->in_x, &e->x_md, &e->src_md) ||
        conversion_make(&e->in_w, &e->w_md, &e->wei_md) ||
        conversion_make(&e->out_y, &e->dst_md, &e->y_md))
        return -1;
    return 0;
}

static int channels_last_passes; /* rc_onednn_channels_last_passes */

/* 1 if md pads a few channels (dimension 1) to one whole block: a layer
 * with fewer input channels than the kernels' vector width, such as the
 * first (2 stacked gray frames, or 6 colour channels). */
static int pads_few_channels(const dnnl_memory_desc_t *md) {
    return md->padded_dims[1] > md->dims[1] && md->padded_dims[1] <= 16;
}

/* 1 if oneDNN implements pd with its reference kernels (slow). */
static int is_reference(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
        return 1;
    return impl == NULL || strstr(impl, "ref") != NULL; /* "ref:any", "gemm:ref" */
}

/* The backward-weights pass of a layer whose chosen source layout pads its
 * few input channels to a block (oneDNN's AVX2 kernels on 8 channels: the
 * first layer's 2 channels do 4x the work) in channels-last source and
 * output gradient instead, where oneDNN has a kernel for that other than
 * its reference. On AVX2 this halves the tiny preset's first-layer pass,
 * and on AVX-512 it trades the paper preset's AVX2 kernel on 8-channel
 * blocks for an AVX-512 one (bench/RESULTS.md); where the chosen layout
 * pads nothing (AVX-512's kernel for 2 channels takes plain NCHW), nothing
 * changes. A fixed rule, not a timing, so that a run's arithmetic does not
 * depend on the machine's load. Replaces *wpd or leaves it. */
static void weights_pass_channels_last(const dnnl_convolution_desc_t *wdsc,
                                       const_dnnl_primitive_desc_t hint,
                                       dnnl_primitive_desc_t *wpd) {
    if (!pads_few_channels(query(*wpd, dnnl_query_src_md, 0))) return;
    dnnl_convolution_desc_t d = *wdsc;
    dnnl_dims_t xd, yd;
    memcpy(xd, wdsc->src_desc.dims, sizeof xd);
    memcpy(yd, wdsc->diff_dst_desc.dims, sizeof yd);
    if (dnnl_memory_desc_init_by_tag(&d.src_desc, 4, xd, wdsc->src_desc.data_type, dnnl_nhwc) ||
        dnnl_memory_desc_init_by_tag(&d.diff_dst_desc, 4, yd, wdsc->diff_dst_desc.data_type,
                                     dnnl_nhwc))
        return;
    dnnl_primitive_desc_t alt = NULL;
    if (dnnl_primitive_desc_create(&alt, &d, NULL, engine, hint) != dnnl_success) return;
    if (is_reference(alt)) {
        dnnl_primitive_desc_destroy(alt);
        return;
    }
    dnnl_primitive_desc_destroy(*wpd);
    *wpd = alt;
    channels_last_passes++;
}

static int backward_make(conv_entry *e) {
    const rc_conv_shape *s = &e->s;
    dnnl_dims_t xd = {s->n, s->c_in, s->h_in, s->w_in},
                wd = {s->c_out, s->c_in, s->k, s->k},
                yd = {s->n, s->c_out, s->h_out, s->w_out};
    dnnl_dims_t strides = {s->stride, s->stride}, pad = {s->pad, s->pad};
    /* operands (x, w, dy) in the operand type, results (y, dx, dw) float32 */
    dnnl_data_type_t op = use_bf16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t any_x, any_w, any_y, any_dx, any_dw, any_dy, any_b;
    TRY(dnnl_memory_desc_init_by_tag(&any_x, 4, xd, op, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_w, 4, wd, op, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_y, 4, yd, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_dx, 4, xd, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_dw, 4, wd, dnnl_f32, dnnl_format_tag_any));
    TRY(dnnl_memory_desc_init_by_tag(&any_dy, 4, yd, op, dnnl_format_tag_any));
    any_b = e->b_md;
    /* the forward's description is the backward passes' hint */
    dnnl_convolution_desc_t fd, wdsc, ddsc;
    TRY(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                           dnnl_convolution_direct, &any_x, &any_w,
                                           &any_b, &any_y, strides, pad, pad));
    dnnl_primitive_desc_t hint;
    TRY(dnnl_primitive_desc_create(&hint, &fd, NULL, engine, NULL));
    dnnl_primitive_desc_t wpd = NULL, dpd = NULL;
    dnnl_status_t st = dnnl_convolution_backward_weights_desc_init(
        &wdsc, dnnl_convolution_direct, &any_x, &any_dw, &any_b, &any_dy, strides,
        pad, pad);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&wpd, &wdsc, NULL, engine, hint);
    if (st == dnnl_success) weights_pass_channels_last(&wdsc, hint, &wpd);
    if (st == dnnl_success)
        st = dnnl_convolution_backward_data_desc_init(&ddsc, dnnl_convolution_direct,
                                                      &any_dx, &any_w, &any_dy,
                                                      strides, pad, pad);
    if (st == dnnl_success)
        st = dnnl_primitive_desc_create(&dpd, &ddsc, NULL, engine, hint);
    dnnl_primitive_desc_destroy(hint);
    if (st != dnnl_success) {
        if (wpd) dnnl_primitive_desc_destroy(wpd);
        return fail_once("convolution backward descriptors", st);
    }
    e->src2_md = *query(wpd, dnnl_query_src_md, 0);
    e->ddst_md = *query(wpd, dnnl_query_diff_dst_md, 0);
    e->dwei_md = *query(wpd, dnnl_query_diff_weights_md, 0);
    e->db_md = *query(wpd, dnnl_query_diff_weights_md, 1);
    e->ddst2_md = *query(dpd, dnnl_query_diff_dst_md, 0);
    e->wei2_md = *query(dpd, dnnl_query_weights_md, 0);
    e->dsrc_md = *query(dpd, dnnl_query_diff_src_md, 0);
    st = dnnl_primitive_create(&e->bwd_w, wpd);
    if (st == dnnl_success) st = dnnl_primitive_create(&e->bwd_d, dpd);
    dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_desc_destroy(dpd);
    if (st != dnnl_success) return fail_once("convolution backward primitives", st);
    if (memory(&e->src2, &e->src2_md) || memory(&e->ddst, &e->ddst_md) ||
        memory(&e->dwei, &e->dwei_md) || memory(&e->db, &e->db_md) ||
        memory(&e->ddst2, &e->ddst2_md) || memory(&e->wei2, &e->wei2_md) ||
        memory(&e->dsrc, &e->dsrc_md))
        return -1;
    if (conversion_make(&e->in_x2, &e->x_md, &e->src2_md) ||
        conversion_make(&e->in_dy, &e->y_md, &e->ddst_md) ||
        conversion_make(&e->in_dy2, &e->y_md, &e->ddst2_md) ||
        conversion_make(&e->in_w2, &e->w_md, &e->wei2_md) ||
        conversion_make(&e->out_dw, &e->dwei_md, &e->w_md) ||
        conversion_make(&e->out_dx, &e->dsrc_md, &e->x_md))
        return -1;
    if (!dnnl_memory_desc_equal(&e->db_md, &e->b_md))
        return fail_once("bias gradient layout", dnnl_unimplemented);
    e->has_bwd = 1;
    return 0;
}

/* The cached entry of a shape, made on first use (least recently used one
 * replaced); NULL where oneDNN cannot do it. */
static conv_entry *entry_of(const rc_conv_shape *s, int relu, int backward) {
    if (start() != 0) return NULL;
    conv_entry *e = NULL, *oldest = &cache[0];
    for (int i = 0; i < CACHE; i++) {
        conv_entry *c = &cache[i];
        if (c->used && c->relu == relu && same_shape(&c->s, s)) {
            e = c;
            break;
        }
        if (!c->used || (oldest->used && c->last_use < oldest->last_use)) oldest = c;
    }
    if (!e) {
        e = oldest;
        if (e->used) destroy_entry(e);
        e->s = *s;
        e->relu = relu;
        e->used = 1;
        if (forward_make(e) != 0) {
            destroy_entry(e);
            return NULL;
        }
    }
    e->last_use = ++clock_tick;
    if (backward && !e->has_bwd && backward_make(e) != 0) return NULL;
    return e;
}

/* ---- execution ----------------------------------------------------------------- */

static int run(dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args) {
    TRY(dnnl_primitive_execute(p, stream, n, args));
    return 0;
}

static int set(dnnl_memory_t m, const void *p) {
    TRY(dnnl_memory_set_data_handle(m, (void *)p));
    return 0;
}

/* Point `inside` at the data of the caller's buffer user in layout c->to:
 * the buffer itself where the layouts are equal, else scratch of the given
 * role filled by the reorder. */
static int convert_in(const conversion *c, const void *user, dnnl_memory_t inside,
                      const dnnl_memory_desc_t *inside_md, int role) {
    if (!c->prim) return set(inside, user);
    void *buf = scratch_of(role, dnnl_memory_desc_get_size(inside_md));
    if (set(c->from, user) || set(c->to, buf) || set(inside, buf)) return -1;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->from}, {DNNL_ARG_TO, c->to}};
    return run(c->prim, 2, a);
}

/* Where a primitive writes an output bound for the caller's buffer user:
 * the buffer itself where the layouts are equal, else scratch of the role
 * (convert_out then reorders it into user). */
static int output_at(const conversion *c, void *user, dnnl_memory_t inside,
                     const dnnl_memory_desc_t *inside_md, int role) {
    if (!c->prim) return set(inside, user);
    return set(inside, scratch_of(role, dnnl_memory_desc_get_size(inside_md)));
}

static int convert_out(const conversion *c, dnnl_memory_t inside, void *user) {
    if (!c->prim) return 0;
    void *buf = NULL;
    TRY(dnnl_memory_get_data_handle(inside, &buf));
    if (set(c->from, buf) || set(c->to, user)) return -1;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_FROM, c->from}, {DNNL_ARG_TO, c->to}};
    return run(c->prim, 2, a);
}

/* The weights in a kernel's layout, converted once per call of the op: the
 * chunks of one call share them, and the scratch of the role still holds
 * the previous chunk's conversion where that was to the same layout. */
typedef struct {
    int done;                /* scratch of the role holds w in layout md */
    dnnl_memory_desc_t md;
} weights_memo;

static int convert_weights(const conversion *c, const float *w, dnnl_memory_t inside,
                           const dnnl_memory_desc_t *inside_md, int role,
                           weights_memo *memo) {
    if (c->prim && memo->done && dnnl_memory_desc_equal(&memo->md, inside_md))
        return set(inside, scratch[role].p);
    if (convert_in(c, w, inside, inside_md, role)) return -1;
    memo->done = c->prim != NULL;
    memo->md = *inside_md;
    return 0;
}

static int forward_chunk(const rc_conv_shape *s, int relu, const float *x,
                         const float *w, const float *b, float *y,
                         weights_memo *wm) {
    conv_entry *e = entry_of(s, relu, 0);
    if (!e) return -1;
    if (convert_in(&e->in_x, x, e->src, &e->src_md, S_SRC) ||
        convert_weights(&e->in_w, w, e->wei, &e->wei_md, S_WEI, wm) || set(e->bias, b) ||
        output_at(&e->out_y, y, e->dst, &e->dst_md, S_DST))
        return -1;
    dnnl_exec_arg_t a[] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei},
                           {DNNL_ARG_BIAS, e->bias}, {DNNL_ARG_DST, e->dst}};
    if (run(e->fwd, 4, a) || convert_out(&e->out_y, e->dst, y)) return -1;
    TRY(dnnl_stream_wait(stream));
    return 0;
}

static int backward_chunk(const rc_conv_shape *s, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db,
                          weights_memo *wm) {
    conv_entry *e = entry_of(s, 0, 1);
    if (!e) return -1;
    if (convert_in(&e->in_x2, x, e->src2, &e->src2_md, S_SRC2) ||
        convert_in(&e->in_dy, dy, e->ddst, &e->ddst_md, S_DDST) ||
        output_at(&e->out_dw, dw, e->dwei, &e->dwei_md, S_DWEI) || set(e->db, db))
        return -1;
    dnnl_exec_arg_t aw[] = {{DNNL_ARG_SRC, e->src2}, {DNNL_ARG_DIFF_DST, e->ddst},
                            {DNNL_ARG_DIFF_WEIGHTS, e->dwei}, {DNNL_ARG_DIFF_BIAS, e->db}};
    if (run(e->bwd_w, 4, aw) || convert_out(&e->out_dw, e->dwei, dw)) return -1;
    if (dx) {
        /* the weights pass's output gradient where the layouts agree */
        void *ddst = NULL;
        TRY(dnnl_memory_get_data_handle(e->ddst, &ddst));
        if (dnnl_memory_desc_equal(&e->ddst2_md, &e->ddst_md)
                ? set(e->ddst2, ddst)
                : convert_in(&e->in_dy2, dy, e->ddst2, &e->ddst2_md, S_DDST2))
            return -1;
        if (convert_weights(&e->in_w2, w, e->wei2, &e->wei2_md, S_WEI2, wm) ||
            output_at(&e->out_dx, dx, e->dsrc, &e->dsrc_md, S_DSRC))
            return -1;
        dnnl_exec_arg_t ad[] = {{DNNL_ARG_DIFF_DST, e->ddst2}, {DNNL_ARG_WEIGHTS, e->wei2},
                                {DNNL_ARG_DIFF_SRC, e->dsrc}};
        if (run(e->bwd_d, 3, ad) || convert_out(&e->out_dx, e->dsrc, dx)) return -1;
    }
    TRY(dnnl_stream_wait(stream));
    return 0;
}

/* ---- chunks of the batch --------------------------------------------------------- */

/* Images per call: as many as keep a layer's largest blocked tensor within
 * chunk_bytes (16 MB; channels padded to 16), so that the scratch stays small
 * whatever the batch (the paper preset at batch 64 has ~830 pairs: 870 MB
 * per buffer for its first layer's output in one call), and the leading
 * dimension of most calls is the same from step to step. */
static size_t chunk_bytes = (size_t)16 << 20;

void rc_onednn_set_chunk_bytes(size_t bytes) {
    chunk_bytes = bytes ? bytes : (size_t)16 << 20;
}

static int chunk_images(const rc_conv_shape *s) {
    size_t pad_in = (size_t)(s->c_in + 15) / 16 * 16, pad_out = (size_t)(s->c_out + 15) / 16 * 16;
    size_t in = pad_in * s->h_in * s->w_in, out = pad_out * s->h_out * s->w_out;
    size_t per = (in > out ? in : out) * sizeof(float);
    size_t n = chunk_bytes / (per ? per : 1);
    return n < 1 ? 1 : n > (size_t)s->n ? s->n : (int)n;
}

static rc_conv_shape chunk_shape(const rc_conv_shape *s, int n) {
    rc_conv_shape c = *s;
    c.n = n;
    return c;
}

static int forward(const rc_conv_shape *s, int relu, const float *x, const float *w,
                   const float *b, float *y) {
    int step = chunk_images(s);
    size_t per_x = rc_conv_numel_x(s) / s->n, per_y = rc_conv_numel_y(s) / s->n;
    weights_memo wm = {0};
    for (int i = 0; i < s->n; i += step) {
        int n = s->n - i < step ? s->n - i : step;
        rc_conv_shape c = chunk_shape(s, n);
        if (forward_chunk(&c, relu, x + (size_t)i * per_x, w, b, y + (size_t)i * per_y, &wm))
            return -1;
    }
    return 0;
}

/* Chunk by chunk; the weight and bias gradients of later chunks are
 * summed into the first's (in chunk order: deterministic). With y (the
 * fused entry's ReLU output), each chunk's dy is masked by y > 0 first. */
static int backward(const rc_conv_shape *s, const float *x, const float *w,
                    const float *y, const float *dy, float *dx, float *dw,
                    float *db) {
    int step = chunk_images(s);
    size_t per_x = rc_conv_numel_x(s) / s->n, per_y = rc_conv_numel_y(s) / s->n;
    size_t nw = rc_conv_numel_w(s);
    float *part = NULL;
    weights_memo wm = {0};
    for (int i = 0; i < s->n; i += step) {
        int n = s->n - i < step ? s->n - i : step;
        rc_conv_shape c = chunk_shape(s, n);
        if (i > 0 && !part) part = scratch_of(S_PART, (nw + (size_t)s->c_out) * sizeof(float));
        float *cw = i ? part : dw, *cb = i ? part + nw : db;
        const float *cdy = dy + (size_t)i * per_y;
        if (y) { /* the ReLU's backward: dy where y > 0, else 0 */
            size_t m = (size_t)n * per_y;
            const float *cy = y + (size_t)i * per_y;
            float *masked = scratch_of(S_MASKED, m * sizeof(float));
            rc_relu_backward_f32(m, cy, cdy, masked);
            cdy = masked;
        }
        if (backward_chunk(&c, x + (size_t)i * per_x, w, cdy,
                           dx ? dx + (size_t)i * per_x : NULL, cw, cb, &wm))
            return -1;
        if (i) {
#pragma omp parallel for schedule(static)
            for (size_t k = 0; k < nw; k++) dw[k] += cw[k];
            for (int k = 0; k < s->c_out; k++) db[k] += cb[k];
        }
    }
    return 0;
}

/* ---- the op-table entries ---------------------------------------------------- */

static void conv_forward(const rc_conv_shape *s, const float *x, const float *w,
                         const float *b, float *y, float *ws) {
    if (broken || forward(s, 0, x, w, b, y) != 0)
        rc_conv2d_forward_f32(s, x, w, b, y, ws);
}

static void conv_backward(const rc_conv_shape *s, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db,
                          float *ws) {
    if (broken || backward(s, x, w, NULL, dy, dx, dw, db) != 0)
        rc_conv2d_backward_f32(s, x, w, dy, dx, dw, db, ws);
}

static void conv_relu_forward(const rc_conv_shape *s, const float *x,
                              const float *w, const float *b, float *y, float *ws) {
    if (broken || forward(s, 1, x, w, b, y) != 0)
        rc_conv2d_relu_forward_f32(s, x, w, b, y, ws);
}

static void conv_relu_backward(const rc_conv_shape *s, const float *x,
                               const float *w, const float *y, const float *dy,
                               float *dx, float *dw, float *db, float *ws) {
    if (broken || backward(s, x, w, y, dy, dx, dw, db) != 0)
        rc_conv2d_relu_backward_f32(s, x, w, y, dy, dx, dw, db, ws);
}

static const rc_backend_fused onednn_fused = {
    .conv2d_relu_forward = conv_relu_forward,
    .conv2d_relu_backward = conv_relu_backward,
};

static rc_backend onednn_backend;

const rc_backend *rc_backend_cpu_onednn(void) {
    if (!onednn_backend.name) {
        onednn_backend = *rc_backend_cpu();
        onednn_backend.name = "cpu-onednn";
        onednn_backend.conv2d_forward = conv_forward;
        onednn_backend.conv2d_backward = conv_backward;
        onednn_backend.fused = &onednn_fused;
    }
    return &onednn_backend;
}

int rc_onednn_cap_isa_avx2(void) {
    dnnl_status_t st = dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2);
    if (st != dnnl_success)
        return rc_set_error("oneDNN: cannot cap its kernels at AVX2 (status %d; "
                            "called after its first convolution?)", (int)st);
    return 0;
}

int rc_onednn_failed(void) { return broken; }

int rc_onednn_channels_last_passes(void) { return channels_last_passes; }

int rc_onednn_has_bf16(void) {
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *rc_onednn_isa(void) {
    static const struct {
        unsigned isa;
        const char *name;
    } known[] = { /* the first whose bits the effective ISA holds (avx2_vnni
                   * and avx512_core hold neither's: the order of the two
                   * does not matter) */
        {dnnl_cpu_isa_avx512_core_amx, "avx512_core_amx"},
        {dnnl_cpu_isa_avx512_core_bf16, "avx512_core_bf16"},
        {dnnl_cpu_isa_avx512_core_vnni, "avx512_core_vnni"},
        {dnnl_cpu_isa_avx512_core, "avx512_core"},
        {dnnl_cpu_isa_avx2_vnni, "avx2_vnni"},
        {dnnl_cpu_isa_avx2, "avx2"},
        {dnnl_cpu_isa_avx, "avx"},
        {dnnl_cpu_isa_sse41, "sse41"},
    };
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if ((isa & known[i].isa) == known[i].isa) return known[i].name;
    return "none";
}

int rc_onednn_set_bf16(int want) {
    int on = want && rc_onednn_has_bf16();
    if (on != use_bf16) /* entries of the other type are of no use now */
        for (int i = 0; i < CACHE; i++)
            if (cache[i].used) destroy_entry(&cache[i]);
    use_bf16 = on;
    return on;
}

int rc_onednn_uses_bf16(void) { return use_bf16; }

const char *rc_onednn_version(void) {
    static char v[32];
    const dnnl_version_t *d = dnnl_version();
    snprintf(v, sizeof v, "%d.%d.%d", d->major, d->minor, d->patch);
    return v;
}
