/* bench_cpu.c: training throughput, peak memory and per-op rates of the CPU
 * backend, for bench/bench_cpu.sh (which runs the PyTorch reference beside
 * it and prints the ratios).
 *
 *   bench_cpu dump  CONFIG DIR [--batches K]
 *       writes the batches of steps 0..K-1 (frames and plan, exactly what
 *       rc_make_train_batch gives the trainer) and the initial weights to
 *       DIR/batch{k}.safetensors and DIR/init.safetensors, so that
 *       bench/bench_cpu_torch.py trains on identical input.
 *   bench_cpu train CONFIG [--batches K] [--steps N] [--warmup W]
 *                   [--threads N] [--ops]
 *       trains N steps (after W untimed warm-up steps, default 2) cycling over the
 *       same K batches: forward, backward, clipping and AdamW, as
 *       rc_train does. Prints one line "recompose tuples_per_s X ..." with
 *       the peak resident memory of this process (getrusage). With --ops it
 *       also prints per-op times and GFLOP/s, measured inside the same steps
 *       through a timing wrapper around the backend, beside the sgemm rate
 *       of OpenBLAS on this machine.
 *
 * Batches are made before the clock starts: the benchmark measures the
 * model and optimiser, not synthetic rendering (the PyTorch side loads the
 * same frames from the dump).
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "recompose/backend.h"
#include "recompose/common.h"
#include "recompose/config.h"
#include "recompose/model.h"
#include "recompose/optim.h"
#include "recompose/safetensors.h"
#include "cpu_onednn/onednn.h"
#include "recompose/sampler.h"
#include "recompose/train.h"

/* ---- per-op timing through a wrapped backend ----------------------------- */

enum { OP_CONV_FWD, OP_CONV_BWD, OP_LSTM_FWD, OP_LSTM_BWD, OP_LOSS, OP_WARP,
       OP_LINEAR, OP_ELEMWISE, OP_GATHER, OP_OPTIM, OP_COUNT };
static const char *const op_names[OP_COUNT] = {
    "conv forward", "conv backward", "LSTM forward", "LSTM backward", "loss",
    "action warp loss", "linear fwd+bwd", "relu+pool", "gather/scatter",
    "clip+AdamW"};

static double op_seconds[OP_COUNT], op_flops[OP_COUNT];
static int timing_on;
static const rc_backend *inner;

#define TIMED(op, flops, call)                                                 \
    do {                                                                       \
        double t0_ = timing_on ? rc_now() : 0;                                 \
        call;                                                                  \
        if (timing_on) {                                                       \
            op_seconds[op] += rc_now() - t0_;                                  \
            op_flops[op] += (flops);                                           \
        }                                                                      \
    } while (0)

static double conv_flops(const rc_conv_shape *s) {
    return 2.0 * s->n * s->c_out * s->h_out * s->w_out * s->c_in * s->k * s->k;
}

/* Useful LSTM work: the input projection of every real step, the recurrent
 * product of every step after the first (padded steps excluded, whatever an
 * implementation does with them). */
static void lstm_work(const rc_lstm_shape *s, double *in_flops,
                      double *rec_flops) {
    double steps = 0, rec = 0;
    for (int q = 0; q < s->S; q++) {
        steps += s->len[q];
        rec += s->len[q] - 1;
    }
    *in_flops = 2.0 * steps * 4 * s->H * s->F;
    *rec_flops = 2.0 * rec * 4 * s->H * s->H;
}

static void t_conv_fwd(const rc_conv_shape *s, const float *x, const float *w,
                       const float *b, float *y, float *ws) {
    TIMED(OP_CONV_FWD, conv_flops(s), inner->conv2d_forward(s, x, w, b, y, ws));
}
static void t_conv_bwd(const rc_conv_shape *s, const float *x, const float *w,
                       const float *dy, float *dx, float *dw, float *db,
                       float *ws) {
    TIMED(OP_CONV_BWD, conv_flops(s) * (dx ? 2 : 1),
          inner->conv2d_backward(s, x, w, dy, dx, dw, db, ws));
}
static void t_relu_fwd(size_t n, const float *x, float *y) {
    TIMED(OP_ELEMWISE, 0, inner->relu_forward(n, x, y));
}
static void t_relu_bwd(size_t n, const float *y, const float *dy, float *dx) {
    TIMED(OP_ELEMWISE, 0, inner->relu_backward(n, y, dy, dx));
}
static void t_gap_fwd(int n, int c, int hw, const float *x, float *y) {
    TIMED(OP_ELEMWISE, 0, inner->gap_forward(n, c, hw, x, y));
}
static void t_gap_bwd(int n, int c, int hw, const float *dy, float *dx) {
    TIMED(OP_ELEMWISE, 0, inner->gap_backward(n, c, hw, dy, dx));
}
static void t_lin_fwd(int n, int in, int out, const float *x, const float *w,
                      const float *b, float *y) {
    TIMED(OP_LINEAR, 2.0 * n * in * out,
          inner->linear_forward(n, in, out, x, w, b, y));
}
static void t_lin_bwd(int n, int in, int out, const float *x, const float *w,
                      const float *dy, float *dx, float *dw, float *db) {
    TIMED(OP_LINEAR, 2.0 * n * in * out * (dx ? 2 : 1),
          inner->linear_backward(n, in, out, x, w, dy, dx, dw, db));
}
static void t_lstm_fwd(const rc_lstm_shape *s, const float *x,
                       const float *w_ih, const float *w_hh, const float *b,
                       float *h_last, float *cache) {
    double fi, fr;
    lstm_work(s, &fi, &fr);
    TIMED(OP_LSTM_FWD, fi + fr,
          inner->lstm_forward(s, x, w_ih, w_hh, b, h_last, cache));
}
static void t_lstm_bwd(const rc_lstm_shape *s, const float *x,
                       const float *w_ih, const float *w_hh, const float *cache,
                       const float *dh_last, float *dx, float *dw_ih,
                       float *dw_hh, float *db) {
    double fi, fr;
    lstm_work(s, &fi, &fr);
    TIMED(OP_LSTM_BWD, (dx ? 2 : 1) * fi + 2 * fr,
          inner->lstm_backward(s, x, w_ih, w_hh, cache, dh_last, dx, dw_ih,
                               dw_hh, db));
}
static double t_loss(int n_emb, int dim, const float *emb, int n_pairs,
                     const rc_loss_pair *pairs, const rc_hinge_params *p,
                     float *d_emb) {
    double L;
    TIMED(OP_LOSS, 0,
          L = inner->hinge_loss(n_emb, dim, emb, n_pairs, pairs, p, d_emb));
    return L;
}
static double t_warp(const rc_warp_shape *s, const float *frames, const int *first,
                     const int *last, const float *theta, float *d_theta) {
    double L;
    TIMED(OP_WARP, 0, L = inner->warp_loss(s, frames, first, last, theta, d_theta));
    return L;
}
static double t_sumsq(size_t n, const float *g) {
    double r;
    TIMED(OP_OPTIM, 0, r = inner->sum_squares(n, g));
    return r;
}
static void t_scale(size_t n, float *g, float a) {
    TIMED(OP_OPTIM, 0, inner->scale(n, g, a));
}
static void t_adamw(size_t n, float *w, const float *g, float *m, float *v,
                    float lr, float b1, float b2, float eps, float wd, float c1,
                    float c2) {
    TIMED(OP_OPTIM, 0,
          inner->adamw_update(n, w, g, m, v, lr, b1, b2, eps, wd, c1, c2));
}
static void t_gpairs(int n, const int *pc, const int *pi, const int *pj,
                     int fpc, size_t fe, const float *frames, float *out) {
    TIMED(OP_GATHER, 0, inner->gather_pairs(n, pc, pi, pj, fpc, fe, frames, out));
}
static void t_gsteps(int ns, int ms, const int *sp, int dim, const float *feat,
                     float *out) {
    TIMED(OP_GATHER, 0, inner->gather_steps(ns, ms, sp, dim, feat, out));
}
static void t_ssteps(int ns, int ms, const int *sp, int dim, const float *d,
                     int np, float *df) {
    TIMED(OP_GATHER, 0, inner->scatter_steps(ns, ms, sp, dim, d, np, df));
}

static rc_backend timing_backend(const rc_backend *be) {
    inner = be;
    rc_backend t = *be;
    t.name = "cpu+timing";
    t.conv2d_forward = t_conv_fwd;
    t.conv2d_backward = t_conv_bwd;
    /* conv and ReLU timed one by one: the fused entries would bypass the
     * timers (this profile has always run them separately) */
    t.fused = NULL;
    t.relu_forward = t_relu_fwd;
    t.relu_backward = t_relu_bwd;
    t.gap_forward = t_gap_fwd;
    t.gap_backward = t_gap_bwd;
    t.linear_forward = t_lin_fwd;
    t.linear_backward = t_lin_bwd;
    t.lstm_forward = t_lstm_fwd;
    t.lstm_backward = t_lstm_bwd;
    t.hinge_loss = t_loss;
    t.warp_loss = t_warp;
    t.sum_squares = t_sumsq;
    t.scale = t_scale;
    t.adamw_update = t_adamw;
    t.gather_pairs = t_gpairs;
    t.gather_steps = t_gsteps;
    t.scatter_steps = t_ssteps;
    return t;
}

/* ---- batches ---------------------------------------------------------------- */

typedef struct {
    float *frames;
    rc_batch_plan plan;
} batch;

static size_t clip_elems(const rc_config *c) {
    return (size_t)(c->clip_steps + 1) * c->channels * c->image_size *
           c->image_size;
}

static batch *make_batches(const rc_config *c, int k) {
    batch *b = rc_xcalloc((size_t)k, sizeof *b);
    for (int i = 0; i < k; i++) {
        /* the clips and their twins (tiny.ini renders two per clip) */
        b[i].frames = rc_xmalloc((size_t)rc_batch_clips(&c->loss, c->batch) *
                                 clip_elems(c) * sizeof(float));
        if (rc_make_train_batch(c, i, b[i].frames, &b[i].plan) != 0) {
            fprintf(stderr, "bench_cpu: batch %d: %s\n", i, rc_last_error());
            exit(1);
        }
    }
    return b;
}

static void free_batches(batch *b, int k) {
    for (int i = 0; i < k; i++) {
        free(b[i].frames);
        rc_plan_free(&b[i].plan);
    }
    free(b);
}

/* ---- dump --------------------------------------------------------------------- */

static int64_t *to_i64(const int *v, size_t n) {
    int64_t *o = rc_xmalloc((n ? n : 1) * sizeof *o);
    for (size_t i = 0; i < n; i++) o[i] = v[i];
    return o;
}

static int dump_batch(const rc_config *c, const batch *b, const char *path) {
    const rc_batch_plan *p = &b->plan;
    size_t nl = (size_t)p->n_loss_pairs;
    int *la = rc_xmalloc(nl * sizeof(int)), *lb = rc_xmalloc(nl * sizeof(int)),
        *lp = rc_xmalloc(nl * sizeof(int));
    float *lw = rc_xmalloc(nl * sizeof(float));
    for (size_t i = 0; i < nl; i++) {
        la[i] = p->loss_pairs[i].a;
        lb[i] = p->loss_pairs[i].b;
        lp[i] = p->loss_pairs[i].positive;
        lw[i] = p->loss_pairs[i].weight;
    }
    int *lk = rc_xmalloc((nl ? nl : 1) * sizeof(int));
    for (size_t i = 0; i < nl; i++) lk[i] = p->loss_pair_kind[i];
    int64_t *arr[9] = {
        to_i64(p->pair_clip, (size_t)p->n_pairs), to_i64(p->pair_i, (size_t)p->n_pairs),
        to_i64(p->pair_j, (size_t)p->n_pairs), to_i64(p->seq_len, (size_t)p->n_seq),
        to_i64(p->seq_pair, (size_t)p->n_seq * p->max_steps), to_i64(la, nl),
        to_i64(lb, nl), to_i64(lp, nl), to_i64(lk, nl)};
    rc_st_tensor t[] = {
        {"frames", RC_DT_F32, 1, {0}, b->frames},
        {"pair_clip", RC_DT_I64, 1, {p->n_pairs}, arr[0]},
        {"pair_i", RC_DT_I64, 1, {p->n_pairs}, arr[1]},
        {"pair_j", RC_DT_I64, 1, {p->n_pairs}, arr[2]},
        {"seq_len", RC_DT_I64, 1, {p->n_seq}, arr[3]},
        {"seq_pair", RC_DT_I64, 2, {p->n_seq, p->max_steps}, arr[4]},
        {"loss_a", RC_DT_I64, 1, {(int64_t)nl}, arr[5]},
        {"loss_b", RC_DT_I64, 1, {(int64_t)nl}, arr[6]},
        {"loss_positive", RC_DT_I64, 1, {(int64_t)nl}, arr[7]},
        {"loss_weight", RC_DT_F32, 1, {(int64_t)nl}, lw},
        {"loss_kind", RC_DT_I64, 1, {(int64_t)nl}, arr[8]},
    };
    /* rc_st_tensor holds at most 4 dims: frames go flat, with their shape
     * [clips][T+1][C][S][S] in the metadata (clips: the B tuples' clips and
     * their twins) */
    t[0].shape[0] = (int64_t)p->n_clips * (int64_t)clip_elems(c);
    char shape[128], tuples[32];
    snprintf(shape, sizeof shape, "%d,%d,%d,%d,%d", p->n_clips, c->clip_steps + 1,
             c->channels, c->image_size, c->image_size);
    snprintf(tuples, sizeof tuples, "%d", c->batch);
    rc_st_meta meta[] = {{"frames_shape", shape}, {"batch", tuples}};
    int status = rc_safetensors_write(path, t, (int)(sizeof t / sizeof t[0]),
                                      meta, 2);
    for (int i = 0; i < 9; i++) free(arr[i]);
    free(lk);
    free(la);
    free(lb);
    free(lp);
    free(lw);
    return status;
}

static int dump_weights(rc_model *m, const char *path) {
    int n = rc_model_n_params(m);
    rc_st_tensor *t = rc_xcalloc((size_t)n, sizeof *t);
    const float *w = rc_model_weights(m);
    for (int i = 0; i < n; i++) {
        const rc_param *p = rc_model_param(m, i);
        t[i].name = p->name;
        t[i].dtype = RC_DT_F32;
        t[i].ndim = p->ndim;
        for (int d = 0; d < p->ndim; d++) t[i].shape[d] = p->shape[d];
        t[i].data = w + p->offset;
    }
    int status = rc_safetensors_write(path, t, n, NULL, 0);
    free(t);
    return status;
}

static int cmd_dump(const rc_config *c, const char *dir, int k) {
    batch *b = make_batches(c, k);
    char path[1024];
    for (int i = 0; i < k; i++) {
        snprintf(path, sizeof path, "%s/batch%d.safetensors", dir, i);
        if (dump_batch(c, &b[i], path) != 0) goto fail;
    }
    rc_model_shape shape;
    rc_model_shape_from_config(c, &shape);
    rc_model *m = rc_model_create(&shape, rc_backend_lookup("cpu")->ops());
    if (!m) goto fail;
    rc_model_init_weights(m, c->seed);
    snprintf(path, sizeof path, "%s/init.safetensors", dir);
    int status = dump_weights(m, path);
    rc_model_free(m);
    if (status != 0) goto fail;
    /* the effective config (overrides included): the PyTorch side reads its
     * model and loss from it */
    snprintf(path, sizeof path, "%s/config.ini", dir);
    char *ini = rc_config_to_ini(c);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(ini, f) >= 0;
    if (f && fclose(f) != 0) ok = 0;
    free(ini);
    if (!ok) {
        rc_set_error("%s: cannot write the config: %s", path, strerror(errno));
        goto fail;
    }
    free_batches(b, k);
    return 0;
fail:
    fprintf(stderr, "bench_cpu dump: %s\n", rc_last_error());
    free_batches(b, k);
    return 1;
}

/* ---- train ---------------------------------------------------------------------- */

static long peak_rss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* sgemm GFLOP/s of OpenBLAS for C[m][n] = A[m][k] B[k][n], best of a few. */
static double sgemm_gflops(int m, int n, int k) {
    float *a = rc_xcalloc((size_t)m * k, sizeof(float));
    float *b = rc_xcalloc((size_t)k * n, sizeof(float));
    float *cc = rc_xcalloc((size_t)m * n, sizeof(float));
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
    double flops = 2.0 * m * n * k, best = 1e30;
    int reps = (int)(2e9 / flops) + 1;
    if (reps > 50) reps = 50;
    for (int trial = 0; trial < 3; trial++) {
        double t0 = rc_now();
        for (int r = 0; r < reps; r++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1,
                        a, k, b, n, 0, cc, n);
        double dt = (rc_now() - t0) / reps;
        if (dt < best) best = dt;
    }
    free(a);
    free(b);
    free(cc);
    return flops / best * 1e-9;
}

static void print_ops(int steps, int B) {
    double total = 0;
    for (int i = 0; i < OP_COUNT; i++) total += op_seconds[i];
    printf("per-op time over %d steps (%d tuples each), per step:\n", steps, B);
    for (int i = 0; i < OP_COUNT; i++) {
        double ms = op_seconds[i] / steps * 1e3;
        printf("  %-16s %9.2f ms  %5.1f%%", op_names[i], ms,
               100 * op_seconds[i] / (total > 0 ? total : 1));
        if (op_flops[i] > 0)
            printf("  %7.2f GFLOP/s (%.3f GFLOP)",
                   op_flops[i] / op_seconds[i] * 1e-9, op_flops[i] / steps * 1e-9);
        printf("\n");
    }
    printf("  %-16s %9.2f ms\n", "sum of ops", total / steps * 1e3);
}

/* Peak RSS before any work: what loading the binary and its libraries cost
 * (with a CUDA-enabled build that includes mapping cuBLAS, cuDNN, NCCL). */
static long base_rss_kb;

static int cmd_train(const rc_config *c, int k, int steps, int warm, int ops) {
    /* the CPU backend as a run of this config configures it
     * (train.cpu_conv, train.blas_kernels, train.precision) */
    const rc_backend_kind *kind = rc_backend_lookup("cpu");
    rc_backend_settings st = rc_backend_settings_of(c, 0);
    if (kind->configure(&st) != 0) {
        fprintf(stderr, "bench_cpu: %s\n", rc_last_error());
        return 1;
    }
    const rc_backend *cpu = kind->ops();
    rc_backend timed = timing_backend(cpu);
    const rc_backend *be = ops ? &timed : cpu;
    batch *b = make_batches(c, k);
    rc_model_shape shape;
    rc_model_shape_from_config(c, &shape);
    rc_model *m = rc_model_create(&shape, be);
    if (!m) {
        fprintf(stderr, "bench_cpu: %s\n", rc_last_error());
        return 1;
    }
    rc_model_init_weights(m, c->seed);
    rc_adamw adam;
    rc_adamw_init(&adam, c, rc_model_numel(m), be);
    int twins = rc_batch_clips(&c->loss, c->batch) - c->batch;
    rc_model_reserve(m, c->batch * RC_SEQ_KINDS * 2 * c->clip_steps +
                            twins * c->clip_steps,
                     c->batch * RC_SEQ_KINDS + twins, 2 * c->clip_steps);
    double first_loss = NAN, last_loss = NAN, t0 = 0, pairs = 0;
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm) {
            memset(op_seconds, 0, sizeof op_seconds);
            memset(op_flops, 0, sizeof op_flops);
            timing_on = ops;
            t0 = rc_now();
        }
        const batch *bt = &b[s % k];
        double L = rc_model_step(m, &bt->plan, bt->frames, &c->loss, 1, NULL);
        if (s == 0) first_loss = L;
        last_loss = L;
        if (s >= warm) pairs += bt->plan.n_pairs;
        if (isfinite(L)) rc_adamw_step(&adam, m, s);
    }
    double dt = rc_now() - t0;
    timing_on = 0;
    printf("recompose tuples_per_s %.2f step_ms %.2f peak_rss_mb %.1f "
           "base_rss_mb %.1f first_loss %.6f last_loss %.6f "
           "pairs_per_tuple %.2f threads %d backend %s conv_operands %s conv_isa %s\n",
           (double)steps * c->batch / dt, dt / steps * 1e3,
           peak_rss_kb() / 1024.0, base_rss_kb / 1024.0, first_loss, last_loss,
           pairs / steps / c->batch, omp_get_max_threads(), cpu->name,
           rc_onednn_uses_bf16() ? "bf16" : "fp32",
           strcmp(cpu->name, "cpu-onednn") == 0 ? rc_onednn_isa() : "none");
    if (ops) {
        print_ops(steps, c->batch);
        /* the largest GEMM of the encoder forward (layer 0: c_out x
         * (c_in*k*k) times the im2col of a chunk), and a square one */
        int n_img = c->batch * 8;
        int hw = (c->image_size / 2) * (c->image_size / 2);
        int ckk0 = 2 * c->channels * c->conv_kernels[0] * c->conv_kernels[0];
        int cols = n_img * hw > (1 << 20) ? (1 << 20) : n_img * hw;
        printf("OpenBLAS sgemm, %d threads: %dx%dx%d (conv0 shape) %.1f GFLOP/s, "
               "512x512x512 %.1f GFLOP/s, 1024^3 %.1f GFLOP/s\n",
               omp_get_max_threads(), c->conv_channels[0], cols, ckk0,
               sgemm_gflops(c->conv_channels[0], cols, ckk0),
               sgemm_gflops(512, 512, 512), sgemm_gflops(1024, 1024, 1024));
    }
    rc_adamw_free(&adam);
    rc_model_free(m);
    free_batches(b, k);
    return 0;
}

/* ---- main ----------------------------------------------------------------------- */

static int usage(void) {
    fprintf(stderr,
            "usage: bench_cpu dump CONFIG DIR [--batches K] [--set K=V]...\n"
            "       bench_cpu train CONFIG [--batches K] [--steps N] "
            "[--warmup N] [--threads N] [--ops] [--set K=V]...\n");
    return 2;
}

int main(int argc, char **argv) {
    base_rss_kb = peak_rss_kb();
    if (argc < 3) return usage();
    const char *cmd = argv[1], *dir = NULL;
    int k = 2, steps = 20, warm = 2, threads = 2, ops = 0;
    rc_config c;
    rc_config_default(&c);
    if (rc_config_load(&c, argv[2]) != 0) {
        fprintf(stderr, "bench_cpu: %s\n", rc_last_error());
        return 1;
    }
    int i = 3;
    if (!strcmp(cmd, "dump")) {
        if (argc < 4) return usage();
        dir = argv[3];
        i = 4;
    } else if (strcmp(cmd, "train") != 0) {
        return usage();
    }
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--ops")) {
            ops = 1;
        } else if (i + 1 < argc && !strcmp(argv[i], "--batches")) {
            k = atoi(argv[++i]);
        } else if (i + 1 < argc && !strcmp(argv[i], "--steps")) {
            steps = atoi(argv[++i]);
        } else if (i + 1 < argc && !strcmp(argv[i], "--warmup")) {
            warm = atoi(argv[++i]);
        } else if (i + 1 < argc && !strcmp(argv[i], "--threads")) {
            threads = atoi(argv[++i]);
        } else if (i + 1 < argc && !strcmp(argv[i], "--set")) {
            if (rc_config_set(&c, argv[++i]) != 0) {
                fprintf(stderr, "bench_cpu: %s\n", rc_last_error());
                return 1;
            }
        } else {
            return usage();
        }
    }
    if (k < 1 || steps < 1 || warm < 0) return usage();
    c.threads = threads;
    rc_set_threads(threads);
    return dir ? cmd_dump(&c, dir, k) : cmd_train(&c, k, steps, warm, ops);
}
