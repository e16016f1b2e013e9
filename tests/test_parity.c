/* test_parity.c: recompose against an independent PyTorch implementation.
 *
 * tests/ref/fixture.safetensors holds inputs and PyTorch's float64 results
 * (see tests/ref/README.md; regenerate with tests/ref/make_fixture.py). This
 * test runs the float32 CPU code on the same inputs and requires every result
 * to agree with relative error max|got - want| / max|want| < 1e-4:
 *  - op level: one conv2d (forward, dx, dw, db), one LSTM over sequences of
 *    mixed lengths (h_last, dx, dw_ih, dw_hh, db; dx of padding exactly 0),
 *    the hinge loss, squared and plain, with negatives on both sides of the
 *    margin (loss and d_emb);
 *  - the whole model: weights copied in by name, a batch plan filled in by
 *    hand from the fixture's arrays (so the sampler is not under test here),
 *    one rc_model_step with backward: loss, embeddings, every gradient.
 * The fixture is committed: its absence is a failure, not a skip.
 */
#include <stdint.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/model.h"
#include "recompose/ops.h"
#include "recompose/safetensors.h"
#include "recompose/sampler.h"
#include "test_util.h"

#define FIXTURE "tests/ref/fixture.safetensors"
#define TOLERANCE 1e-4

static rc_st_file *fixture;

/* ---- reading the fixture ------------------------------------------------- */

static size_t tensor_numel(const rc_st_tensor *t) {
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

/* A tensor the fixture must have, of this dtype and (unless 0) element
 * count. The fixture is generated together with this test: a missing or
 * mis-shaped tensor means they are out of step, and nothing after it could
 * be trusted, so stop. */
static const rc_st_tensor *need(const char *name, rc_dtype dtype,
                                size_t numel) {
    const rc_st_tensor *t = rc_safetensors_find(fixture, name);
    static const char *const dtype_names[] = {"F32", "F64", "I64"};
    if (!t) {
        fprintf(stderr, "%s: tensor %s missing; regenerate the fixture with "
                "/usr/bin/python3 tests/ref/make_fixture.py\n", FIXTURE, name);
        exit(1);
    }
    if (t->dtype != dtype || (numel && tensor_numel(t) != numel)) {
        fprintf(stderr, "%s: tensor %s is %s with %zu elements; this test "
                "expects %s with %zu\n", FIXTURE, name, dtype_names[t->dtype],
                tensor_numel(t), dtype_names[dtype], numel);
        exit(1);
    }
    return t;
}

/* Copies, not pointers into the file: a float32 tensor may sit at an offset
 * that is not 8-aligned for the doubles after it, and the tests below want
 * buffers they own anyway. */
static float *load_f32(const char *name, size_t numel) {
    const rc_st_tensor *t = need(name, RC_DT_F32, numel);
    float *v = rc_xmalloc(tensor_numel(t) * sizeof *v + 1);
    memcpy(v, t->data, tensor_numel(t) * sizeof *v);
    return v;
}

static double *load_f64(const char *name, size_t numel) {
    const rc_st_tensor *t = need(name, RC_DT_F64, numel);
    double *v = rc_xmalloc(tensor_numel(t) * sizeof *v + 1);
    memcpy(v, t->data, tensor_numel(t) * sizeof *v);
    return v;
}

/* An I64 tensor as ints (all fixture indices are small). */
static int *load_int(const char *name, size_t numel) {
    const rc_st_tensor *t = need(name, RC_DT_I64, numel);
    size_t n = tensor_numel(t);
    int *v = rc_xmalloc(n * sizeof *v + 1);
    for (size_t i = 0; i < n; i++) {
        int64_t x;
        memcpy(&x, (const char *)t->data + i * sizeof x, sizeof x);
        v[i] = (int)x;
    }
    return v;
}

static double load_scalar(const char *name) {
    double *v = load_f64(name, 1);
    double x = v[0];
    free(v);
    return x;
}

/* ---- comparing ------------------------------------------------------------ */

static double max_abs(const double *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

/* max|got - want| / max(max|want|, min_den), printed; NaN counts as failure. */
static void compare(const char *what, const float *got, const double *want,
                    size_t n, double min_den) {
    double num = 0, den = max_abs(want, n);
    if (den < min_den) den = min_den;
    if (den < 1e-30) den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= num)) num = isnan(d) ? INFINITY : d;
    }
    double err = num / den;
    printf("  %-34s rel err %.2e\n", what, err);
    CHECK_MSG(err < TOLERANCE, "%s: float32 recompose vs float64 PyTorch "
              "relative error %.3e (tolerance %.0e)", what, err, TOLERANCE);
}

static void compare_scalar(const char *what, double got, double want) {
    double err = fabs(got - want) / fmax(fabs(want), 1e-30);
    if (isnan(err)) err = INFINITY;
    printf("  %-34s rel err %.2e (%.9g vs %.9g)\n", what, err, got, want);
    CHECK_MSG(err < TOLERANCE, "%s: %.9g, PyTorch says %.9g (rel err %.3e)",
              what, got, want, err);
}

/* Compare a float32 result with the fixture's float64 tensor `name`. */
static void compare_with(const char *name, const float *got, size_t n) {
    double *want = load_f64(name, n);
    compare(name, got, want, n, 0);
    free(want);
}

/* ---- op level ------------------------------------------------------------ */

static void test_conv2d(void) {
    int *d = load_int("conv.shape", 8);
    rc_conv_shape s;
    rc_conv_shape_init(&s, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
    free(d);
    size_t nx = (size_t)s.n * s.c_in * s.h_in * s.w_in;
    size_t nw = (size_t)s.c_out * s.c_in * s.k * s.k;
    size_t ny = (size_t)s.n * s.c_out * s.h_out * s.w_out;
    float *x = load_f32("conv.x", nx), *w = load_f32("conv.w", nw);
    float *b = load_f32("conv.b", (size_t)s.c_out);
    float *dy = load_f32("conv.dy", ny); /* also checks h_out, w_out */
    float *ws = rc_xmalloc((rc_conv2d_workspace(&s) + 1) * sizeof(float));
    float *y = rc_xmalloc(ny * sizeof(float));
    float *dx = rc_xmalloc(nx * sizeof(float));
    float *dw = rc_xmalloc(nw * sizeof(float));
    float *db = rc_xmalloc((size_t)s.c_out * sizeof(float));

    rc_conv2d_forward_f32(&s, x, w, b, y, ws);
    compare_with("conv.y", y, ny);
    rc_conv2d_backward_f32(&s, x, w, dy, dx, dw, db, ws);
    compare_with("conv.dx", dx, nx);
    compare_with("conv.dw", dw, nw);
    compare_with("conv.db", db, (size_t)s.c_out);

    free(x), free(w), free(b), free(dy), free(ws);
    free(y), free(dx), free(dw), free(db);
}

static void test_lstm(void) {
    int *d = load_int("lstm.dims", 4);
    int S = d[0], T = d[1], F = d[2], H = d[3];
    free(d);
    int *len = load_int("lstm.len", (size_t)S);
    rc_lstm_shape s = {S, T, F, H, len};
    size_t nx = (size_t)S * T * F, nih = (size_t)4 * H * F,
           nhh = (size_t)4 * H * H, nb = (size_t)4 * H, nh = (size_t)S * H;
    float *x = load_f32("lstm.x", nx);
    float *w_ih = load_f32("lstm.w_ih", nih), *w_hh = load_f32("lstm.w_hh", nhh);
    float *b = load_f32("lstm.b", nb), *dh = load_f32("lstm.dh_last", nh);
    float *cache = rc_xmalloc((rc_lstm_cache_size(&s) + 1) * sizeof(float));
    float *h = rc_xmalloc(nh * sizeof(float));
    float *dx = rc_xmalloc(nx * sizeof(float));
    float *dw_ih = rc_xmalloc(nih * sizeof(float));
    float *dw_hh = rc_xmalloc(nhh * sizeof(float));
    float *db = rc_xmalloc(nb * sizeof(float));
    /* the padding of dx must be written as 0, not left alone */
    for (size_t i = 0; i < nx; i++) dx[i] = NAN;

    rc_lstm_forward_f32(&s, x, w_ih, w_hh, b, h, cache);
    compare_with("lstm.h_last", h, nh);
    rc_lstm_backward_f32(&s, x, w_ih, w_hh, cache, dh, dx, dw_ih, dw_hh, db);
    compare_with("lstm.dx", dx, nx);
    compare_with("lstm.dw_ih", dw_ih, nih);
    compare_with("lstm.dw_hh", dw_hh, nhh);
    compare_with("lstm.db", db, nb);
    for (int q = 0; q < S; q++)
        for (int t = len[q]; t < T; t++)
            for (int f = 0; f < F; f++)
                CHECK_MSG(dx[((size_t)q * T + t) * F + f] == 0,
                          "lstm dx of padding step %d of sequence %d "
                          "(length %d) is %g, not 0", t, q, len[q],
                          (double)dx[((size_t)q * T + t) * F + f]);

    free(len), free(x), free(w_ih), free(w_hh), free(b), free(dh);
    free(cache), free(h), free(dx), free(dw_ih), free(dw_hh), free(db);
}

static void test_hinge_loss(void) {
    const rc_st_tensor *e = need("loss.emb", RC_DT_F32, 0);
    CHECK(e->ndim == 2);
    int n = (int)e->shape[0], D = (int)e->shape[1];
    float *emb = load_f32("loss.emb", (size_t)n * D);
    const rc_st_tensor *pt = need("loss.pairs", RC_DT_I64, 0);
    int np = (int)pt->shape[0];
    int *pairs = load_int("loss.pairs", (size_t)np * 3);
    float *weight = load_f32("loss.weight", (size_t)np);
    double *params = load_f64("loss.params", 2);
    rc_loss_pair *lp = rc_xmalloc((size_t)np * sizeof *lp);
    for (int q = 0; q < np; q++)
        lp[q] = (rc_loss_pair){pairs[3 * q], pairs[3 * q + 1], pairs[3 * q + 2],
                               weight[q], RC_MAP_NONE};
    float *d_emb = rc_xmalloc((size_t)n * D * sizeof(float));
    static const char *const tags[2] = {"plain", "sq"};
    for (int squared = 0; squared <= 1; squared++) {
        char name[64];
        rc_hinge_params hp = {params[0], squared, params[1]};
        double L = rc_hinge_loss_f32(n, D, emb, np, lp, &hp, d_emb);
        snprintf(name, sizeof name, "loss.%s.value", tags[squared]);
        compare_scalar(name, L, load_scalar(name));
        snprintf(name, sizeof name, "loss.%s.d_emb", tags[squared]);
        compare_with(name, d_emb, (size_t)n * D);
    }
    free(emb), free(pairs), free(weight), free(params), free(lp), free(d_emb);
}

/* The action term's warp loss against PyTorch's affine_grid (or a field
 * upsampled by grid_sample) + grid_sample (bilinear, border padding,
 * align_corners=False) and avg_pool2d. */
static void test_warp_loss(const char *prefix) {
    char name[64];
#define WARP_NAME(x) (snprintf(name, sizeof name, "%s." x, prefix), name)
    const rc_st_tensor *ft = need(WARP_NAME("frames"), RC_DT_F32, 0);
    CHECK(ft->ndim == 4);
    int n_frames = (int)ft->shape[0], C = (int)ft->shape[1], S = (int)ft->shape[2];
    float *frames = load_f32(WARP_NAME("frames"), (size_t)n_frames * C * S * S);
    const rc_st_tensor *first_t = need(WARP_NAME("first"), RC_DT_I64, 0);
    int n = (int)first_t->shape[0];
    int *first = load_int(WARP_NAME("first"), (size_t)n);
    int *last = load_int(WARP_NAME("last"), (size_t)n);
    double *params = load_f64(WARP_NAME("params"), 5);
    rc_warp_shape ws = {.n = n, .C = C, .S = S, .grid = (int)params[3],
                        .n_scales = (int)params[2], .scales = {1, 2, 4, 8},
                        .border = (int)params[1], .moving = params[4],
                        .scale = params[0]};
    CHECK(rc_warp_shape_check(&ws) == 0);
    size_t np = (size_t)rc_warp_params(&ws);
    float *theta = load_f32(WARP_NAME("theta"), (size_t)n * np);
    float *d_theta = rc_xmalloc((size_t)n * np * sizeof(float));
    double L = rc_warp_loss_f32(&ws, frames, first, last, theta, d_theta);
    compare_scalar(WARP_NAME("value"), L, load_scalar(WARP_NAME("value")));
    compare_with(WARP_NAME("d_theta"), d_theta, (size_t)n * np);
#undef WARP_NAME
    free(frames), free(first), free(last), free(theta), free(params), free(d_theta);
}

/* ---- the whole model --------------------------------------------------------- */

/* PREFIX.shape: in_channels, image_size, n_conv, F, H, D; PREFIX.conv:
 * channels, kernel, stride per layer. */
static void read_model_shape(const char *prefix, rc_model_shape *s) {
    memset(s, 0, sizeof *s);
    char name[96];
    snprintf(name, sizeof name, "%s.shape", prefix);
    int *d = load_int(name, 6);
    s->in_channels = d[0];
    s->image_size = d[1];
    s->n_conv = d[2];
    s->feature_dim = d[3];
    s->hidden = d[4];
    s->embed_dim = d[5];
    free(d);
    if (s->n_conv < 1 || s->n_conv > RC_MAX_CONV) {
        fprintf(stderr, "%s: model.shape has %d conv layers\n", FIXTURE,
                s->n_conv);
        exit(1);
    }
    snprintf(name, sizeof name, "%s.conv", prefix);
    int *conv = load_int(name, (size_t)s->n_conv * 3);
    for (int l = 0; l < s->n_conv; l++) {
        s->conv_channels[l] = conv[3 * l];
        s->conv_kernels[l] = conv[3 * l + 1];
        s->conv_strides[l] = conv[3 * l + 2];
    }
    free(conv);
}

/* Every model parameter from "PREFIX.weight.<name>", shapes checked, and no
 * fixture weight left over (a name recompose does not have). */
static void copy_weights(const char *prefix, rc_model *m, const rc_backend *be) {
    size_t total = rc_model_numel(m);
    float *host = rc_xcalloc(total, sizeof(float));
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        char name[96];
        snprintf(name, sizeof name, "%s.weight.%s", prefix, p->name);
        const rc_st_tensor *t = need(name, RC_DT_F32, p->numel);
        int same = t->ndim == p->ndim;
        for (int k = 0; same && k < p->ndim; k++)
            same = t->shape[k] == p->shape[k];
        CHECK_MSG(same, "%s: the fixture's shape differs from recompose's "
                  "parameter of %zu elements", name, p->numel);
        memcpy(host + p->offset, t->data, p->numel * sizeof(float));
    }
    int in_fixture = 0;
    char head[64];
    snprintf(head, sizeof head, "%s.weight.", prefix);
    for (int i = 0; i < rc_safetensors_count(fixture); i++)
        if (!strncmp(rc_safetensors_get(fixture, i)->name, head, strlen(head)))
            in_fixture++;
    CHECK_MSG(in_fixture == rc_model_n_params(m),
              "the fixture has %d model weights, recompose's model %d: a "
              "parameter is named differently", in_fixture,
              rc_model_n_params(m));
    be->to_device(rc_model_weights(m), host, total * sizeof(float));
    free(host);
}

/* The plan, field by field from the fixture (rc_plan_build is not used: the
 * sampler is tested elsewhere, and this way the PyTorch side and recompose
 * see the very same batch). */
static void read_plan(const char *prefix, int twins, rc_batch_plan *p) {
    memset(p, 0, sizeof *p);
    char name[96];
#define PLAN(field) (snprintf(name, sizeof name, "%s.%s", prefix, field), name)
    int *d = load_int(PLAN("dims"), twins ? 7 : 6);
    p->B = d[0];
    p->T = d[1];
    p->n_pairs = d[2];
    p->n_seq = d[3];
    p->max_steps = d[4];
    p->n_loss_pairs = d[5];
    p->n_clips = twins ? d[6] : d[0];
    free(d);
    p->pair_clip = load_int(PLAN("pair_clip"), (size_t)p->n_pairs);
    p->pair_i = load_int(PLAN("pair_i"), (size_t)p->n_pairs);
    p->pair_j = load_int(PLAN("pair_j"), (size_t)p->n_pairs);
    p->seq_len = load_int(PLAN("seq_len"), (size_t)p->n_seq);
    p->seq_pair = load_int(PLAN("seq_pair"), (size_t)p->n_seq * p->max_steps);
    int *lp = load_int(PLAN("loss_pairs"), (size_t)p->n_loss_pairs * 4);
    float *w = load_f32(PLAN("loss_weight"), (size_t)p->n_loss_pairs);
#undef PLAN
    p->loss_pairs = rc_xmalloc((size_t)p->n_loss_pairs * sizeof *p->loss_pairs);
    p->loss_pair_kind = rc_xmalloc((size_t)p->n_loss_pairs * sizeof(int));
    for (int q = 0; q < p->n_loss_pairs; q++) {
        p->loss_pairs[q] = (rc_loss_pair){lp[4 * q], lp[4 * q + 1],
                                          lp[4 * q + 2], w[q],
                                          rc_pair_kind_map[lp[4 * q + 3]]};
        p->loss_pair_kind[q] = lp[4 * q + 3];
    }
    free(lp);
    free(w);
}

static void free_plan(rc_batch_plan *p) {
    free(p->pair_clip), free(p->pair_i), free(p->pair_j);
    free(p->seq_len), free(p->seq_pair);
    free(p->loss_pairs), free(p->loss_pair_kind);
}

/* One training step: case "model" (plan under plan.*) or "twins" (the same
 * weights, a batch with all twin kinds, plan under twins.plan.*). */
static void test_model_step(const char *P) {
    const rc_backend *be = rc_backend_cpu();
    int twins = !strcmp(P, "twins");
    const char *weights = twins ? "model" : P;
    char name[96];
#define CASE(field) (snprintf(name, sizeof name, "%s.%s", P, field), name)
    rc_model_shape shape;
    read_model_shape(weights, &shape);
    rc_model *m = rc_model_create(&shape, be);
    CHECK_MSG(m != NULL, "rc_model_create: %s", rc_last_error());
    if (!m) return;
    copy_weights(weights, m, be);

    rc_batch_plan plan;
    char plan_prefix[32];
    snprintf(plan_prefix, sizeof plan_prefix, "%s", !strcmp(P, "model") ? "plan" : P);
    if (strcmp(P, "model")) strcat(plan_prefix, ".plan");
    read_plan(plan_prefix, twins, &plan);
    if (twins) { /* the fixture exercises every twin kind, maps included */
        int seen[RC_PAIR_KINDS] = {0};
        for (int q = 0; q < plan.n_loss_pairs; q++)
            seen[plan.loss_pair_kind[q]]++;
        for (int k = RC_TUPLE_PAIR_KINDS; k < RC_PAIR_KINDS; k++)
            CHECK_MSG(seen[k] == plan.B, "twins fixture: %d pairs of kind %s",
                      seen[k], rc_pair_kind_names[k]);
    }
    int D = shape.embed_dim;
    size_t frame = (size_t)shape.in_channels * shape.image_size * shape.image_size;
    size_t n_frames = (size_t)plan.n_clips * (plan.T + 1) * frame;
    float *host_frames = load_f32(CASE("frames"), n_frames);
    float *frames = be->alloc(n_frames * sizeof(float));
    be->to_device(frames, host_frames, n_frames * sizeof(float));

    rc_loss_config loss;
    rc_loss_config_default(&loss);
    float *margin = load_f32(CASE("margin"), 1);
    int *squared = load_int(CASE("squared"), 1);
    loss.margin = margin[0];
    loss.squared = squared[0];
    free(margin);
    free(squared);

    float *emb = rc_xmalloc((size_t)plan.n_seq * D * sizeof(float));
    double L = rc_model_step(m, &plan, frames, &loss, 1, emb);
    double want_loss = load_scalar(CASE("loss"));
    compare_scalar(name, L, want_loss);
    compare_with(CASE("emb"), emb, (size_t)plan.n_seq * D);

    size_t total = rc_model_numel(m);
    float *grads = rc_xmalloc(total * sizeof(float));
    be->to_host(grads, rc_model_grads(m), total * sizeof(float));
    /* head.bias's gradient is the sum of d loss / d emb over the sequences,
     * zero in exact arithmetic (each loss pair adds +g and -g): measure it
     * against the size of the terms it sums, not against itself. */
    double *d_emb = load_f64(CASE("d_emb"), (size_t)plan.n_seq * D);
    double zero_sum_floor = max_abs(d_emb, (size_t)plan.n_seq * D);
    free(d_emb);
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        snprintf(name, sizeof name, "%s.grad.%s", P, p->name);
        double *want = load_f64(name, p->numel);
        double min_den = strcmp(p->name, "head.bias") ? 0 : zero_sum_floor;
        compare(name, grads + p->offset, want, p->numel, min_den);
        free(want);
    }

    free(grads), free(emb), free(host_frames);
    be->free(frames);
    free_plan(&plan);
    rc_model_free(m);
#undef CASE
}

int main(void) {
    fixture = rc_safetensors_read(FIXTURE);
    if (!fixture) {
        fprintf(stderr, "cannot read the committed PyTorch fixture: %s\n"
                "(run from the repository root; regenerate with "
                "/usr/bin/python3 tests/ref/make_fixture.py)\n",
                rc_last_error());
        return 1;
    }
    const char *format = rc_safetensors_meta(fixture, "format");
    CHECK_MSG(format && !strcmp(format, "recompose-parity-fixture-1"),
              "%s: metadata format is %s", FIXTURE, format ? format : "missing");

    printf("conv2d\n");
    test_conv2d();
    printf("lstm\n");
    test_lstm();
    printf("hinge loss\n");
    test_hinge_loss();
    printf("warp loss (action term): affine, and a 3 x 3 field\n");
    test_warp_loss("warp");
    test_warp_loss("warpgrid");
    printf("warp loss over the pixels that change (loss.act_moving)\n");
    test_warp_loss("warpmoving");
    test_warp_loss("warpgridmoving");
    printf("model step\n");
    test_model_step("model");
    printf("model step with pan, texture, roll, flip and transpose twins\n");
    test_model_step("twins");

    rc_safetensors_close(fixture);
    TEST_DONE();
}
