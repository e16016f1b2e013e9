/* test_model.c: properties of the whole model on the CPU backend.
 *  - deduplicating pairs gives the same loss, embeddings and gradients as
 *    encoding every step separately (the sum over uses is exact);
 *  - rc_model_embed of a tuple's sequences equals the embeddings of the
 *    training step;
 *  - a weight-gradient entry matches a central finite difference of the loss;
 *  - the backward pass announces each weight gradient once, when final. */
#include <string.h>

#include "recompose/common.h"
#include "recompose/model.h"
#include "recompose/rng.h"
#include "recompose/train.h"
#include "model_f64.h"
#include "test_util.h"

static void small_config(rc_config *c) {
    rc_test_small_config(c, 24);
    c->threads = 2;
}

/* Gradient announcements (rc_model_on_grad_ready): each parameter once per
 * training step, layer by layer from the head back to the first
 * convolution, and what was announced is already the step's final
 * gradient. */
typedef struct {
    const rc_model *m;
    int n, order[64];
    float *snapshot; /* each parameter's gradient when it was announced */
} announced;

static void record_grad(void *ctx, const rc_param *p) {
    announced *a = ctx;
    if (a->n < 64) a->order[a->n] = (int)(p - rc_model_param(a->m, 0));
    a->n++;
    memcpy(a->snapshot + p->offset,
           rc_model_grads((rc_model *)a->m) + p->offset, p->numel * sizeof(float));
}

static void check_announcements(rc_model *m, const rc_batch_plan *plan,
                                const float *frames, const rc_config *c) {
    size_t n = rc_model_numel(m);
    announced a = {m, 0, {0}, rc_xmalloc(n * sizeof(float))};
    memset(a.snapshot, 0xff, n * sizeof(float)); /* NaN: not announced */
    rc_model_on_grad_ready(m, record_grad, &a);
    rc_model_step(m, plan, frames, &c->loss, 1, NULL);
    int np = rc_model_n_params(m);
    CHECK_MSG(a.n == np, "%d announcements for %d parameters", a.n, np);
    char expect[64][40];
    int n_expect = 0;
    const char *tail[] = {"head.weight", "head.bias", "composer.weight_ih",
                          "composer.weight_hh", "composer.bias",
                          "encoder.fc.weight", "encoder.fc.bias"};
    for (int k = 0; k < 7; k++) snprintf(expect[n_expect++], 40, "%s", tail[k]);
    for (int l = c->n_conv - 1; l >= 0; l--) {
        snprintf(expect[n_expect++], 40, "encoder.conv%d.weight", l);
        snprintf(expect[n_expect++], 40, "encoder.conv%d.bias", l);
    }
    CHECK(n_expect == np);
    for (int i = 0; i < np && i < a.n; i++)
        CHECK_MSG(!strcmp(rc_model_param(m, a.order[i])->name, expect[i]),
                  "announcement %d is %s, expected %s", i,
                  rc_model_param(m, a.order[i])->name, expect[i]);
    CHECK_MSG(!memcmp(a.snapshot, rc_model_grads(m), n * sizeof(float)),
              "a gradient changed after it was announced");
    /* the forward-only step and unsubscribing announce nothing */
    a.n = 0;
    rc_model_step(m, plan, frames, &c->loss, 0, NULL);
    CHECK(a.n == 0);
    rc_model_on_grad_ready(m, NULL, NULL);
    rc_model_step(m, plan, frames, &c->loss, 1, NULL);
    CHECK(a.n == 0);
    free(a.snapshot);
}

/* Directional finite differences of the loss along a random direction
 * through each named parameter tensor, the loss evaluated in float64
 * (model_f64.h): a whole-tensor direction gives a large, smooth signal;
 * fc.weight and the last conv layer check the pooling's wiring. What is
 * left is the float32 gradient's rounding and the ReLU kinks a step of
 * 1e-6 per entry crosses (measured under four OpenBLAS kernel families:
 * at most 3e-5 relative). The conv biases are moved off their initial
 * zero first: with a zero bias, a unit whose inputs are all zero (the
 * border, a dead patch) sits exactly on its ReLU kink, where the two
 * sides of a difference disagree (measured: 1.4e-2 on conv1.bias). */
static void check_directional(rc_model *m, const rc_batch_plan *plan,
                              const float *frames, const rc_config *c,
                              const char *const *names, int n_names,
                              double step) {
    rc_rng rng;
    rc_rng_seed(&rng, 11);
    for (int l = 0; l < c->n_conv; l++) {
        char bias[40];
        snprintf(bias, sizeof bias, "encoder.conv%d.bias", l);
        const rc_param *p = rc_model_find_param(m, bias);
        for (size_t i = 0; i < p->numel; i++)
            rc_model_weights(m)[p->offset + i] = (float)rc_rng_range(&rng, -0.05, 0.05);
    }
    size_t n = rc_model_numel(m);
    float *grad = rc_xmalloc(n * sizeof(float));
    rc_model_step(m, plan, frames, &c->loss, 1, NULL);
    memcpy(grad, rc_model_grads(m), n * sizeof(float));
    double *wd = rc_f64_weights(m);
    size_t clip = (size_t)(c->clip_steps + 1) * c->channels * c->image_size * c->image_size;
    double *fd_frames = rc_f64_widen(frames, plan->n_clips * clip);
    for (int k = 0; k < n_names; k++) {
        const rc_param *p = rc_model_find_param(m, names[k]);
        CHECK(p != NULL);
        if (!p) continue;
        double *save = rc_xmalloc(p->numel * sizeof(double));
        double *v = rc_xmalloc(p->numel * sizeof(double));
        memcpy(save, wd + p->offset, p->numel * sizeof(double));
        double gv = 0, vv = 0;
        for (size_t i = 0; i < p->numel; i++) {
            v[i] = rc_rng_normal(&rng);
            gv += (double)grad[p->offset + i] * v[i];
            vv += v[i] * v[i];
        }
        double h = step / sqrt(vv / p->numel); /* step per entry, rms */
        for (size_t i = 0; i < p->numel; i++) wd[p->offset + i] = save[i] + h * v[i];
        double lp = rc_f64_plan_loss(m, wd, plan, fd_frames, &c->loss);
        for (size_t i = 0; i < p->numel; i++) wd[p->offset + i] = save[i] - h * v[i];
        double lm = rc_f64_plan_loss(m, wd, plan, fd_frames, &c->loss);
        memcpy(wd + p->offset, save, p->numel * sizeof(double));
        double fd = (lp - lm) / (2 * h);
        double rel = fabs(fd - gv) / fmax(fabs(fd), 1e-12);
        printf("%-22s directional derivative %.8g, finite difference %.8g "
               "(rel %.2e)\n", names[k], gv, fd, rel);
        CHECK_MSG(rel < 1e-4, "%s: directional finite difference %g vs "
                  "analytic %g", names[k], fd, gv);
        free(save);
        free(v);
    }
    free(wd);
    free(fd_frames);
    free(grad);
}

/* The action term (loss.w_act): the model's step against the float64
 * function, through the head, the warp and the whole network; with the
 * head at its initial identity, the term is the image error of the
 * unwarped first frames. */
static void check_action(int kind) {
    rc_config c;
    small_config(&c);
    c.loss.w_act = 10;
    c.loss.act_kind = kind;
    c.loss.act_border = 4;
    c.loss.act_grid = 3;
    CHECK(rc_config_validate(&c) == 0);
    rc_model_shape shape;
    rc_model_shape_from_config(&c, &shape);
    rc_model *m = rc_model_create(&shape, rc_backend_cpu());
    rc_model_init_weights(m, 5);
    size_t clip = (size_t)(c.clip_steps + 1) * c.channels * c.image_size * c.image_size;
    float *frames = rc_xmalloc(c.batch * clip * sizeof(float));
    rc_batch_plan plan;
    memset(&plan, 0, sizeof plan);
    CHECK(rc_make_train_batch(&c, 3, frames, &plan) == 0);
    double L = rc_model_step(m, &plan, frames, &c.loss, 0, NULL);
    double La = rc_model_action_loss(m);
    double *wd = rc_f64_weights(m), *fr = rc_f64_widen(frames, plan.n_clips * clip);
    double L64 = rc_f64_plan_loss(m, wd, &plan, fr, &c.loss);
    printf("action %s: loss %.8g (action %.8g), float64 %.8g\n",
           kind == RC_ACTION_EXPM ? "expm" : kind == RC_ACTION_GRID ? "grid" : "affine",
           L, La, L64);
    CHECK_MSG(La > 0 && fabs(L - L64) < 1e-5 * L64, "action loss %.9g vs "
              "float64 %.9g", L, L64);
    /* a head that is not at the identity, so that the term reaches phi */
    const rc_param *aw = rc_model_find_param(m, "action.weight");
    CHECK(aw != NULL && aw->numel == (size_t)rc_action_params(kind, 3) * c.embed_dim);
    rc_rng rng;
    rc_rng_seed(&rng, 3);
    for (size_t i = 0; i < aw->numel; i++)
        rc_model_weights(m)[aw->offset + i] = (float)rc_rng_range(&rng, -0.05, 0.05);
    const char *names[] = {"action.weight", "action.bias", "head.weight",
                           "composer.weight_ih", "encoder.conv0.weight"};
    /* bilinear sampling is piecewise linear with kinks at whole source
     * pixels, and near the identity warp every sample sits close to one:
     * a smaller step (measured rel err 1.4e-3 at 1e-5 per entry, 2.6e-4 at
     * 1e-6, 1.6e-7 at 1e-7 and 1e-8; float64 rounding is no limit there) */
    check_directional(m, &plan, frames, &c, names, 5, 1e-8);
    free(wd); free(fr); free(frames);
    rc_plan_free(&plan);
    rc_model_free(m);
}

int main(void) {
    rc_set_threads(2);
    rc_config c;
    small_config(&c);
    rc_model_shape shape;
    rc_model_shape_from_config(&c, &shape);
    rc_model *m = rc_model_create(&shape, rc_backend_cpu());
    CHECK(m != NULL);
    rc_model_init_weights(m, 7);
    size_t n = rc_model_numel(m);

    size_t clip = (size_t)(c.clip_steps + 1) * c.channels * c.image_size * c.image_size;
    float *frames = rc_xmalloc(c.batch * clip * sizeof(float));
    rc_batch_plan dedup, plain;
    memset(&dedup, 0, sizeof dedup);
    memset(&plain, 0, sizeof plain);
    c.dedup = 1;
    CHECK(rc_make_train_batch(&c, 3, frames, &dedup) == 0);
    c.dedup = 0;
    CHECK(rc_make_train_batch(&c, 3, frames, &plain) == 0);
    CHECK_MSG(dedup.n_pairs < plain.n_pairs, "dedup %d pairs, plain %d",
              dedup.n_pairs, plain.n_pairs);

    int n_emb = dedup.n_seq * c.embed_dim;
    float *emb_a = rc_xmalloc(n_emb * sizeof(float));
    float *emb_b = rc_xmalloc(n_emb * sizeof(float));
    float *grad_a = rc_xmalloc(n * sizeof(float));
    double la = rc_model_step(m, &dedup, frames, &c.loss, 1, emb_a);
    memcpy(grad_a, rc_model_grads(m), n * sizeof(float));
    check_announcements(m, &dedup, frames, &c);
    double lb = rc_model_step(m, &plain, frames, &c.loss, 1, emb_b);
    const float *grad_b = rc_model_grads(m);
    CHECK(isfinite(la) && la > 0);
    CHECK_MSG(fabs(la - lb) <= 1e-6 * fabs(lb), "loss %.9g vs %.9g", la, lb);
    double e_emb = rc_test_rel_err_f(emb_a, emb_b, n_emb);
    CHECK_MSG(e_emb < 1e-6, "embeddings differ: %g", e_emb);
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        double e = rc_test_rel_err_f(grad_a + p->offset, grad_b + p->offset, p->numel);
        /* head.bias's gradient is a zero sum (each loss pair adds +g and -g):
         * rounding noise, compared in absolute terms */
        if (!strcmp(p->name, "head.bias")) {
            e = 0;
            for (size_t j = 0; j < p->numel; j++)
                e = fmax(e, fabs(grad_a[p->offset + j] - grad_b[p->offset + j]));
        }
        CHECK_MSG(e < 1e-5, "gradient of %s: dedup vs plain rel err %g", p->name, e);
    }

    /* rc_model_embed on the same sequences gives the same embeddings */
    int n_seq = dedup.n_seq;
    rc_sequence *seqs = rc_xmalloc(n_seq * sizeof *seqs);
    int *clip_of = rc_xmalloc(n_seq * sizeof(int));
    for (int s = 0; s < n_seq; s++) {
        /* reconstruct frame indices from the plan's pairs */
        seqs[s].n_frames = dedup.seq_len[s] + 1;
        for (int t = 0; t < dedup.seq_len[s]; t++) {
            int p = dedup.seq_pair[s * dedup.max_steps + t];
            seqs[s].frames[t] = dedup.pair_i[p];
            seqs[s].frames[t + 1] = dedup.pair_j[p];
            clip_of[s] = dedup.pair_clip[p];
        }
    }
    float *emb_c = rc_xmalloc(n_emb * sizeof(float));
    CHECK(rc_model_embed(m, c.batch, c.clip_steps, frames, n_seq, seqs, clip_of, emb_c) == 0);
    double e_embed = rc_test_rel_err_f(emb_c, emb_a, n_emb);
    CHECK_MSG(e_embed < 1e-6, "rc_model_embed vs step embeddings: %g", e_embed);

    /* Directional finite differences of the loss, in float64. */
    const char *names[] = {"encoder.conv0.weight", "encoder.conv1.weight",
                           "encoder.conv1.bias", "encoder.fc.weight",
                           "composer.weight_hh", "head.weight"};
    check_directional(m, &dedup, frames, &c, names, 6, 1e-6);
    check_action(RC_ACTION_AFFINE);
    check_action(RC_ACTION_EXPM);
    check_action(RC_ACTION_GRID);

    free(frames); free(emb_a); free(emb_b); free(emb_c); free(grad_a);
    free(seqs); free(clip_of);
    rc_plan_free(&dedup);
    rc_plan_free(&plain);
    rc_model_free(m);
    TEST_DONE();
}
