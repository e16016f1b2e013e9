/* bench_cuda.c: the CUDA backend's kernels and a whole training step.
 * Prints one line per measurement, "name value unit [reference]", beside the
 * device's measured copy bandwidth and GEMM rate, then the end-to-end
 * training rate on the paper preset (tuples/s). tools/gpu-check.sh runs it
 * next to the same model in PyTorch (bench/bench_torch.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/backend.h"
#include "recompose/cuda_backend.h"
#include "recompose/model.h"
#include "recompose/optim.h"
#include "recompose/train.h"

static const rc_backend *be;

static float *dev_fill(size_t n, float v) {
    float *h = rc_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = v * (float)((i % 97) - 48) / 48.0f;
    float *d = be->alloc(n * sizeof(float));
    be->to_device(d, h, n * sizeof(float));
    free(h);
    return d;
}

#define TIME(reps, body)                                   \
    ({                                                     \
        body;                                              \
        be->synchronize();                                 \
        double t0_ = rc_now();                             \
        for (int r_ = 0; r_ < (reps); r_++) { body; }      \
        be->synchronize();                                 \
        (rc_now() - t0_) / (reps);                         \
    })

static void paper_config(rc_config *c) {
    rc_config_default(c);
    c->image_size = 128;
    c->channels = 3;
    c->n_conv = 5;
    int ch[5] = {64, 128, 256, 256, 512}, k[5] = {5, 3, 3, 3, 3}, st[5] = {2, 2, 2, 2, 1};
    for (int i = 0; i < 5; i++) {
        c->conv_channels[i] = ch[i];
        c->conv_kernels[i] = k[i];
        c->conv_strides[i] = st[i];
    }
    c->feature_dim = 512;
    c->hidden = 512;
    c->embed_dim = 128;
    c->clip_steps = 5;
    c->batch = 64;
}

/* One batch through an input slot: copy, (convert,) release. */
static void input_round(rc_cuda_input *in, const void *host, size_t bytes) {
    int slot = rc_cuda_input_submit(in, host, bytes);
    (void)rc_cuda_input_acquire(in, slot);
    rc_cuda_input_release(in, slot);
}

/* End to end on the paper preset: dedup plans, forward + backward +
 * AdamW, on the backend as configured; tuples/s over `steps` timed steps
 * (after two of warm-up, where algorithms are chosen). */
static double train_paper_rate(int steps, int *pairs_per_step) {
    rc_config c;
    paper_config(&c);
    rc_model_shape shape;
    rc_model_shape_from_config(&c, &shape);
    rc_model *model = rc_model_create(&shape, be);
    rc_model_init_weights(model, 1);
    rc_adamw opt;
    rc_adamw_init(&opt, &c, rc_model_numel(model), be);
    size_t bytes = (size_t)c.batch * (c.clip_steps + 1) * c.channels * c.image_size * c.image_size * 4;
    /* two batches rendered ahead, alternated: the CPU synthesis of frames
     * is the loader's cost, not the GPU's, and is measured elsewhere */
    float *pinned[2];
    rc_batch_plan plan[2];
    int max_pairs = 0;
    for (int k = 0; k < 2; k++) {
        pinned[k] = rc_cuda_pinned_alloc(bytes);
        memset(&plan[k], 0, sizeof plan[k]);
        rc_make_train_batch(&c, k, pinned[k], &plan[k]);
        if (plan[k].n_pairs > max_pairs) max_pairs = plan[k].n_pairs;
    }
    rc_model_reserve(model, max_pairs, plan[0].n_seq, 2 * c.clip_steps + 1);
    rc_cuda_input *in = rc_cuda_input_create(bytes, 2, 0);
    double t0 = 0;
    for (int s = 0; s < steps + 2; s++) {
        if (s == 2) { be->synchronize(); t0 = rc_now(); } /* warm-up: algorithms */
        int slot = rc_cuda_input_submit(in, pinned[s % 2], bytes);
        const float *frames = rc_cuda_input_acquire(in, slot);
        rc_model_step(model, &plan[s % 2], frames, &c.loss, 1, NULL);
        rc_adamw_step(&opt, model, s);
        rc_cuda_input_release(in, slot);
    }
    be->synchronize();
    double tuples = (double)steps * c.batch / (rc_now() - t0);
    *pairs_per_step = (plan[0].n_pairs + plan[1].n_pairs) / 2;
    rc_cuda_input_free(in);
    for (int k = 0; k < 2; k++) {
        rc_cuda_pinned_free(pinned[k]);
        rc_plan_free(&plan[k]);
    }
    rc_adamw_free(&opt);
    rc_model_free(model);
    return tuples;
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: bench_cuda [STEPS]\n\n"
               "The CUDA backend against cuDNN/cuBLAS rates and the PyTorch peer\n"
               "(bench/bench_torch.py) on the tiny and paper presets; STEPS timed\n"
               "steps each (default 20). Needs a GPU (exit 77 without one).\n");
        return 0;
    }
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    if (rc_cuda_device_count() <= 0) {
        fprintf(stderr, "bench_cuda: no CUDA device\n");
        return 77;
    }
    /* the trainer's way to the backend: the registry */
    const rc_backend_kind *cuda = rc_backend_lookup("cuda");
    /* timed algorithm choice, as the PyTorch peer's cudnn.benchmark = True */
    rc_backend_settings st = {.device = 0, .precision = RC_PRECISION_TF32,
                              .benchmark = 1};
    be = cuda && cuda->configure(&st) == 0 ? cuda->ops() : NULL;
    if (!be) {
        fprintf(stderr, "bench_cuda: %s\n", rc_last_error());
        return 1;
    }
    printf("device %s\n", rc_cuda_device_name());
    double copy = rc_cuda_measure_copy_gbs((size_t)1 << 30);
    double gemm_tf32 = rc_cuda_measure_gemm_tflops(8192);
    st.precision = RC_PRECISION_FP32;
    cuda->configure(&st);
    double gemm_fp32 = rc_cuda_measure_gemm_tflops(8192);
    st.precision = RC_PRECISION_TF32;
    cuda->configure(&st);
    printf("copy_bandwidth %.1f GB/s\n", copy);
    printf("gemm_tf32 %.1f TFLOP/s\n", gemm_tf32);
    printf("gemm_fp32 %.1f TFLOP/s\n", gemm_fp32);

    size_t n = (size_t)64 << 20;
    float *w = dev_fill(n, 1), *g = dev_fill(n, 0.1f), *m = dev_fill(n, 0), *v = dev_fill(n, 0);
    double t = TIME(10, be->relu_forward(n, g, m));
    printf("relu_forward %.1f GB/s [copy %.1f]\n", 8.0 * n / t / 1e9, copy);
    t = TIME(10, be->adamw_update(n, w, g, m, v, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.001f));
    printf("adamw %.1f GB/s [copy %.1f]\n", 28.0 * n / t / 1e9, copy);
    t = TIME(10, (void)be->sum_squares(n, g));
    printf("grad_norm %.1f GB/s [copy %.1f]\n", 4.0 * n / t / 1e9, copy);
    be->free(w); be->free(g); be->free(m); be->free(v);

    /* the input stage: frames as bytes (copied, then converted by a kernel)
     * against frames as floats (copied), per value */
    size_t nv = (size_t)64 << 20;
    void *host = rc_cuda_pinned_alloc(nv * sizeof(float));
    memset(host, 7, nv * sizeof(float));
    rc_cuda_input *in8 = rc_cuda_input_create(nv, 2, 1);
    rc_cuda_input *in32 = rc_cuda_input_create(nv * sizeof(float), 2, 0);
    double t8 = TIME(10, input_round(in8, host, nv));
    double t32 = TIME(10, input_round(in32, host, nv * sizeof(float)));
    printf("input_u8 %.1f Gvalues/s [float input %.1f]\n", nv / t8 / 1e9, nv / t32 / 1e9);
    rc_cuda_input_free(in8);
    rc_cuda_input_free(in32);
    rc_cuda_pinned_free(host);

    /* LSTM of the paper preset: 64 tuples x 6 sequences, up to 10 steps */
    int S = 384, T = 10, F = 512, H = 512;
    int *len = rc_xmalloc(S * sizeof(int));
    long live = 0;
    for (int s = 0; s < S; s++) { len[s] = 1 + (s * 7) % T; live += len[s]; }
    rc_lstm_shape ls = {S, T, F, H, len};
    float *x = dev_fill((size_t)S * T * F, 1), *wih = dev_fill((size_t)4 * H * F, 0.05f),
          *whh = dev_fill((size_t)4 * H * H, 0.05f), *b = dev_fill(4 * H, 0.1f),
          *h = dev_fill((size_t)S * H, 0), *cache = dev_fill(be->lstm_cache_size(&ls), 0),
          *dx = dev_fill((size_t)S * T * F, 0), *dwi = dev_fill((size_t)4 * H * F, 0),
          *dwh = dev_fill((size_t)4 * H * H, 0), *db = dev_fill(4 * H, 0);
    double flops = 2.0 * live * 4 * H * (F + H) * 3; /* fwd + 2x bwd */
    t = TIME(10, be->lstm_forward(&ls, x, wih, whh, b, h, cache);
             be->lstm_backward(&ls, x, wih, whh, cache, h, dx, dwi, dwh, db));
    printf("lstm_fwd_bwd %.1f TFLOP/s [gemm_tf32 %.1f]\n", flops / t / 1e12, gemm_tf32);

    int ne = S, dim = 128, np = 64 * 5;
    rc_loss_pair *pairs = rc_xmalloc(np * sizeof *pairs);
    for (int q = 0; q < np; q++) {
        pairs[q].a = (q / 5) * 6; pairs[q].b = (q / 5) * 6 + 1 + q % 5;
        pairs[q].positive = q % 5 < 2; pairs[q].weight = 1;
        pairs[q].map = RC_MAP_NONE;
    }
    rc_hinge_params hp = {1.0, 1, 1.0 / 64};
    float *emb = dev_fill((size_t)ne * dim, 1), *demb = dev_fill((size_t)ne * dim, 0);
    t = TIME(20, (void)be->hinge_loss(ne, dim, emb, np, pairs, &hp, demb));
    printf("hinge_loss %.1f us/call\n", t * 1e6);

    rc_conv_shape cs;
    rc_conv_shape_init(&cs, 832, 64, 64, 64, 128, 3, 2, 1);
    float *cx = dev_fill((size_t)cs.n * cs.c_in * cs.h_in * cs.w_in, 1),
          *cw = dev_fill((size_t)cs.c_out * cs.c_in * 9, 0.05f), *cb = dev_fill(cs.c_out, 0.1f),
          *cy = dev_fill((size_t)cs.n * cs.c_out * cs.h_out * cs.w_out, 0);
    double cflops = 2.0 * cs.n * cs.c_out * cs.h_out * cs.w_out * cs.c_in * 9;
    t = TIME(5, be->conv2d_forward(&cs, cx, cw, cb, cy, NULL));
    printf("conv_forward %.1f TFLOP/s [gemm_tf32 %.1f]\n", cflops / t / 1e12, gemm_tf32);
    be->free(cx); be->free(cw); be->free(cb); be->free(cy);

    /* end to end: paper preset, in TF32 and in bf16 (the precision the
     * GPU projections in bench/RESULTS.md assume) */
    int step_pairs = 0;
    double tf32 = train_paper_rate(steps, &step_pairs);
    printf("train_paper %.1f tuples/s\n", tf32);
    printf("train_paper_pairs_per_step %d pairs\n", step_pairs);
    st.precision = RC_PRECISION_BF16;
    if (cuda->configure(&st) == 0) {
        be = cuda->ops();
        printf("train_paper_bf16 %.1f tuples/s [tf32 %.1f]\n",
               train_paper_rate(steps, &step_pairs), tf32);
    } else {
        printf("train_paper_bf16 n/a (%s)\n", rc_last_error());
    }
    return 0;
}