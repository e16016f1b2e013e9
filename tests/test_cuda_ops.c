/* test_cuda_ops.c: what the GPU adds to the cross-backend op test
 * (test_backend_ops, which checks every op in strict float32 with cuDNN's
 * heuristic algorithms): convolutions with bfloat16 (< 1e-2) and with
 * algorithms chosen by timing and reused across batch sizes (< 1e-5), a
 * whole training step against the CPU backend in each mode, the
 * pinned-input path (frames as floats, and as bytes converted on the
 * device, bitwise the host's conversion) and a captured CUDA graph
 * replaying a step. Skipped (77) where there is no GPU. */
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

/* Frames as bytes through the input slots: the device's conversion is
 * bitwise the host's x * (1/255). */
static void test_u8_input(void) {
    size_t n = 3 * 65536 + 17;
    unsigned char *pinned = rc_cuda_pinned_alloc(n);
    for (size_t i = 0; i < n; i++) pinned[i] = (unsigned char)(i * 131 + 7);
    rc_cuda_input *in = rc_cuda_input_create(n, 2, 1);
    int slot = rc_cuda_input_submit(in, pinned, n);
    CHECK(slot >= 0);
    const float *dev = rc_cuda_input_acquire(in, slot);
    float *got = down(dev, n);
    rc_cuda_input_release(in, slot);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += got[i] != (float)pinned[i] * (1.0f / 255.0f);
    CHECK_MSG(bad == 0, "u8 input: %zu of %zu values differ from the host conversion", bad, n);
    free(got);
    rc_cuda_input_free(in);
    rc_cuda_pinned_free(pinned);
}

/* One training step on the device against the CPU; with capture, the same
 * step again as a captured CUDA graph, replayed. */
static void test_training_step(int capture) {
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
    rc_cuda_input *in = rc_cuda_input_create(bytes, 2, 0);
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
    rc_cuda_graph *g = capture ? rc_cuda_graph_capture(run_step, &ctx) : NULL;
    CHECK(!capture || g != NULL);
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
        if (mode != 0) test_conv(3); /* mode 0: test_backend_ops */
        if (mode == 2) {
            test_conv(5);
            test_conv(2);
        }
        test_training_step(0);
    }
    test_u8_input();
    /* Graph capture last, in strict fp32: a capture the driver refuses
     * (cuDNN's legacy API under capture has not met a GPU yet) can leave
     * the context in an error state, and must not cost the checks above. */
    rc_cuda_options o;
    rc_cuda_options_default(&o);
    o.precision = RC_PRECISION_FP32;
    CHECK(rc_cuda_configure(&o) == 0);
    gpu = rc_backend_cuda();
    tol = 1e-5;
    if (gpu) test_training_step(1);
    TEST_DONE();
}
