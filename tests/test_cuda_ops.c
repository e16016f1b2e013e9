/* test_cuda_ops.c: every op of the CUDA backend and a whole training step
 * against the CPU backend, in strict float32 (rel err < 1e-5; algorithms by
 * heuristics, and timed with reuse across batch sizes) and with bfloat16
 * convolutions (< 1e-2); plus the pinned-input path and a captured
 * CUDA graph replaying a step. Skipped (77) where there is no GPU. */
#include <string.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "recompose/model.h"
#include "recompose/train.h"
#include "test_util.h"

static const rc_backend *gpu;
static uint64_t lcg = 777;
static float frand(void) {
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}
static float *rand_host(size_t n) {
    float *a = rc_xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = frand();
    return a;
}
static float *up(const float *h, size_t n) {
    float *d = gpu->alloc((n ? n : 1) * sizeof(float));
    gpu->to_device(d, h, n * sizeof(float));
    return d;
}
static float *down(const float *d, size_t n) {
    float *h = rc_xmalloc((n ? n : 1) * sizeof(float));
    gpu->to_host(h, d, n * sizeof(float));
    return h;
}
static double tol;
static void close_dev(const char *what, const float *dev, const float *ref, size_t n) {
    float *h = down(dev, n);
    double e = rc_test_rel_err_f(h, ref, n);
    CHECK_MSG(e < tol, "%s: rel err %.3g (tol %.0e)", what, e, tol);
    free(h);
}

static void test_conv(int batch) {
    rc_conv_shape s;
    rc_conv_shape_init(&s, batch, 6, 17, 17, 8, 3, 2, 1);
    size_t nx = (size_t)s.n * s.c_in * s.h_in * s.w_in, ny = (size_t)s.n * s.c_out * s.h_out * s.w_out,
           nw = (size_t)s.c_out * s.c_in * s.k * s.k;
    float *x = rand_host(nx), *w = rand_host(nw), *b = rand_host(s.c_out), *dy = rand_host(ny);
    float *ws = rc_xmalloc((rc_conv2d_workspace(&s) + 1) * sizeof(float));
    float *y = rc_xmalloc(ny * 4), *dx = rc_xmalloc(nx * 4), *dw = rc_xmalloc(nw * 4), db[8];
    rc_conv2d_forward_f32(&s, x, w, b, y, ws);
    rc_conv2d_backward_f32(&s, x, w, dy, dx, dw, db, ws);
    float *gx = up(x, nx), *gw = up(w, nw), *gb = up(b, s.c_out), *gdy = up(dy, ny);
    float *gy = gpu->alloc(ny * 4), *gdx = gpu->alloc(nx * 4), *gdw = gpu->alloc(nw * 4),
          *gdb = gpu->alloc(32);
    gpu->conv2d_forward(&s, gx, gw, gb, gy, NULL);
    gpu->conv2d_backward(&s, gx, gw, gdy, gdx, gdw, gdb, NULL);
    close_dev("conv y", gy, y, ny);
    close_dev("conv dx", gdx, dx, nx);
    close_dev("conv dw", gdw, dw, nw);
    close_dev("conv db", gdb, db, s.c_out);
    gpu->free(gx); gpu->free(gw); gpu->free(gb); gpu->free(gdy); gpu->free(gy);
    gpu->free(gdx); gpu->free(gdw); gpu->free(gdb);
    free(x); free(w); free(b); free(dy); free(ws); free(y); free(dx); free(dw);
}

static void test_lstm_loss_optim(void) {
    int S = 7, T = 5, F = 9, H = 6;
    int len[7] = {5, 2, 1, 5, 3, 4, 2};
    rc_lstm_shape s = {S, T, F, H, len};
    size_t nx = (size_t)S * T * F;
    float *x = rand_host(nx), *wi = rand_host(4 * H * F), *wh = rand_host(4 * H * H),
          *b = rand_host(4 * H), *dh = rand_host(S * H);
    float h[42], dx[315], dwi[216], dwh[144], db[24];
    float *cache = rc_xmalloc(rc_lstm_cache_size(&s) * 4);
    rc_lstm_forward_f32(&s, x, wi, wh, b, h, cache);
    rc_lstm_backward_f32(&s, x, wi, wh, cache, dh, dx, dwi, dwh, db);
    float *gx = up(x, nx), *gwi = up(wi, 4 * H * F), *gwh = up(wh, 4 * H * H), *gb = up(b, 4 * H),
          *gdh = up(dh, S * H), *gh = gpu->alloc(S * H * 4),
          *gc = gpu->alloc(gpu->lstm_cache_size(&s) * 4), *gdx = gpu->alloc(nx * 4),
          *gdwi = gpu->alloc(4 * H * F * 4), *gdwh = gpu->alloc(4 * H * H * 4), *gdb = gpu->alloc(4 * H * 4);
    gpu->lstm_forward(&s, gx, gwi, gwh, gb, gh, gc);
    gpu->lstm_backward(&s, gx, gwi, gwh, gc, gdh, gdx, gdwi, gdwh, gdb);
    close_dev("lstm h", gh, h, S * H);
    close_dev("lstm dx", gdx, dx, nx);
    close_dev("lstm dw_ih", gdwi, dwi, 4 * H * F);
    close_dev("lstm dw_hh", gdwh, dwh, 4 * H * H);
    close_dev("lstm db", gdb, db, 4 * H);

    int ne = 13, dim = 8, np = 10;
    float *emb = rand_host(ne * dim), d_emb[104];
    rc_loss_pair pairs[10];
    for (int q = 0; q < np; q++) {
        pairs[q].a = (q * 4) % ne; pairs[q].b = (q * 7 + 2) % ne;
        pairs[q].positive = q % 2; pairs[q].weight = 1.0f + 0.5f * (q % 3);
        pairs[q].map = (q / 2) % RC_MAPS; /* equivariance pairs among them */
    }
    rc_hinge_params hp = {2.0, 1, 0.5};
    double l = rc_hinge_loss_f32(ne, dim, emb, np, pairs, &hp, d_emb);
    float *ge = up(emb, ne * dim), *gde = gpu->alloc(ne * dim * 4);
    double gl = gpu->hinge_loss(ne, dim, ge, np, pairs, &hp, gde);
    CHECK_MSG(fabs(gl - l) < 1e-5 * fabs(l), "hinge loss %.9g vs %.9g", gl, l);
    close_dev("hinge d_emb", gde, d_emb, ne * dim);
    CHECK(gpu->hinge_loss(ne, dim, ge, np, pairs, &hp, gde) == gl); /* deterministic */

    size_t n = 100003;
    float *g = rand_host(n), *w = rand_host(n), *m = rand_host(n), *v = rand_host(n);
    for (size_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    float *gg = up(g, n), *gw = up(w, n), *gm = up(m, n), *gv = up(v, n);
    double ss = rc_sum_squares_f32(n, g), gss = gpu->sum_squares(n, gg);
    CHECK_MSG(fabs(gss - ss) < 1e-9 * ss, "sum squares %.12g vs %.12g", gss, ss);
    rc_adamw_update_f32(n, w, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.001f);
    gpu->adamw_update(n, gw, gg, gm, gv, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.001f);
    close_dev("adamw w", gw, w, n);
    close_dev("adamw m", gm, m, n);
    close_dev("adamw v", gv, v, n);
    free(x); free(wi); free(wh); free(b); free(dh); free(cache); free(emb);
    free(g); free(w); free(m); free(v);
    float *all[] = {gx, gwi, gwh, gb, gdh, gh, gc, gdx, gdwi, gdwh, gdb, ge, gde, gg, gw, gm, gv};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
}

typedef struct {
    rc_model *m;
    rc_batch_plan *plan;
    const float *frames;
    const rc_config *c;
} step_ctx;
static void run_step(void *p) {
    step_ctx *s = p;
    rc_model_step(s->m, s->plan, s->frames, &s->c->loss, 1, NULL);
}

static void test_training_step(void) {
    rc_config c;
    rc_config_default(&c);
    c.batch = 4;
    rc_model_shape shape;
    rc_model_shape_from_config(&c, &shape);
    rc_model *cpu = rc_model_create(&shape, rc_backend_cpu());
    rc_model *dev = rc_model_create(&shape, gpu);
    rc_model_init_weights(cpu, 3);
    rc_model_init_weights(dev, 3);
    size_t clip = (size_t)(c.clip_steps + 1) * c.channels * c.image_size * c.image_size;
    size_t bytes = c.batch * clip * sizeof(float);
    float *frames = rc_xmalloc(bytes);
    rc_batch_plan plan;
    memset(&plan, 0, sizeof plan);
    CHECK(rc_make_train_batch(&c, 1, frames, &plan) == 0);
    /* frames through the pinned input path */
    float *pinned = rc_cuda_pinned_alloc(bytes);
    memcpy(pinned, frames, bytes);
    rc_cuda_input *in = rc_cuda_input_create(bytes, 2);
    int slot = rc_cuda_input_submit(in, pinned, bytes);
    CHECK(slot >= 0);
    const float *gframes = rc_cuda_input_acquire(in, slot);
    double lc = rc_model_step(cpu, &plan, frames, &c.loss, 1, NULL);
    double lg = rc_model_step(dev, &plan, gframes, &c.loss, 1, NULL);
    rc_cuda_input_release(in, slot);
    CHECK_MSG(fabs(lg - lc) < tol * fabs(lc), "step loss %.9g vs %.9g", lg, lc);
    size_t n = rc_model_numel(cpu);
    float *gg = down(rc_model_grads(dev), n);
    for (int i = 0; i < rc_model_n_params(cpu); i++) {
        const rc_param *p = rc_model_param(cpu, i);
        if (strcmp(p->name, "head.bias") == 0) continue; /* zero up to rounding */
        double e = rc_test_rel_err_f(gg + p->offset, rc_model_grads(cpu) + p->offset, p->numel);
        CHECK_MSG(e < tol, "step gradient of %s: rel err %.3g", p->name, e);
    }
    /* the same step as a captured graph */
    step_ctx ctx = {dev, &plan, gframes, &c};
    rc_cuda_graph *g = rc_cuda_graph_capture(run_step, &ctx);
    CHECK(g != NULL);
    if (g) {
        CHECK(rc_cuda_graph_launch(g) == 0);
        CHECK(rc_cuda_graph_n_scalars(g) == 1);
        CHECK_MSG(rc_cuda_graph_scalar(g, 0) == lg, "graph loss %.9g vs %.9g",
                  rc_cuda_graph_scalar(g, 0), lg);
        float *g2 = down(rc_model_grads(dev), n);
        CHECK(memcmp(g2, gg, n * sizeof(float)) == 0);
        free(g2);
        rc_cuda_graph_free(g);
    }
    free(gg);
    rc_cuda_input_free(in);
    rc_cuda_pinned_free(pinned);
    rc_plan_free(&plan);
    free(frames);
    rc_model_free(cpu);
    rc_model_free(dev);
}

int main(void) {
    if (rc_cuda_device_count() <= 0) TEST_SKIP("no CUDA device");
    rc_set_threads(2);
    /* strict fp32 by heuristics; bf16; strict fp32 by timed choice, where
     * a layer's algorithms are found once and reused at other batch sizes */
    for (int mode = 0; mode <= 2; mode++) {
        int bf16 = mode == 1;
        rc_cuda_options o;
        rc_cuda_options_default(&o);
        o.precision = bf16 ? RC_PRECISION_BF16 : RC_PRECISION_FP32;
        o.benchmark = mode == 2;
        CHECK(rc_cuda_configure(&o) == 0);
        gpu = rc_backend_cuda();
        if (!gpu) TEST_SKIP("%s", rc_last_error());
        tol = bf16 ? 1e-2 : 1e-5;
        printf("%s, %s%s\n", rc_cuda_device_name(),
               bf16 ? "bf16 convolutions" : "strict fp32",
               o.benchmark ? ", timed algorithm choice" : "");
        test_conv(3);
        if (mode == 2) {
            test_conv(5);
            test_conv(2);
        }
        test_lstm_loss_optim();
        test_training_step();
    }
    TEST_DONE();
}
