/* model_f64.h: the whole model evaluated in float64, for finite differences.
 *
 * A central difference (f(x + h v) - f(x - h v)) / 2h of a float32 network
 * carries the rounding noise of two float32 evaluations divided by 2h: with
 * the steps a ReLU network allows (h ~ 1e-3), that noise is of the order of
 * the derivative's last percent, and how large it is depends on which BLAS
 * kernels the CPU picks (measured: rel err 2e-4 with OpenBLAS's Haswell
 * kernels, 1.0e-2 with its Cooperlake kernels, on the same machine). So the
 * tests differentiate the function in float64 instead: the model's float32
 * weights, widened, run through the float64 build of every CPU op (the
 * same source files as training, csrc/cpu/real.h). Its rounding is ~1e-16,
 * and what is left of a difference against the float32 gradient is the
 * float32 gradient's own rounding and the ReLU kinks a step crosses.
 *
 * The model must be on a backend whose weights can be read with to_host.
 */
#ifndef RC_TEST_MODEL_F64_H
#define RC_TEST_MODEL_F64_H

#include <stdlib.h>
#include <string.h>

#include "recompose/action.h"
#include "recompose/common.h"
#include "recompose/model.h"
#include "recompose/ops.h"
#include "recompose/sampler.h"

static inline double *rc_f64_widen(const float *x, size_t n) {
    double *y = rc_xmalloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) y[i] = x[i];
    return y;
}

/* The weights of m, widened, at the model's flat-buffer offsets. */
static inline double *rc_f64_weights(const rc_model *m) {
    size_t n = rc_model_numel(m);
    float *w = rc_xmalloc(n * sizeof(float));
    const rc_backend *be = rc_model_backend(m);
    be->to_host(w, rc_model_weights((rc_model *)m), n * sizeof(float));
    double *wd = rc_f64_widen(w, n);
    free(w);
    return wd;
}

static inline const double *rc_f64_param(const rc_model *m, const double *w,
                                         const char *name) {
    const rc_param *p = rc_model_find_param(m, name);
    if (!p) {
        fprintf(stderr, "model_f64.h: no parameter %s\n", name);
        abort();
    }
    return w + p->offset;
}

/* phi [n_seq][D] for weights w (rc_f64_weights, perhaps perturbed) of the
 * sequences of a plan-shaped description: pairs (clip, i, j) of clips of
 * frames_per_clip frames [C][S][S], and for each sequence its steps' pair
 * indices (seq_pair [n_seq][max_steps], -1 padding). Weights and frames
 * are float64 so that a finite difference perturbs them exactly. */
static inline void rc_f64_forward(const rc_model *m, const double *w,
                                  int n_pairs, const int *pair_clip,
                                  const int *pair_i, const int *pair_j,
                                  int frames_per_clip, const double *fr,
                                  int n_seq, int max_steps, const int *seq_len,
                                  const int *seq_pair, double *emb) {
    const rc_model_shape *s = rc_model_get_shape(m);
    size_t fe = (size_t)s->in_channels * s->image_size * s->image_size;
    double *x = rc_xmalloc((size_t)n_pairs * 2 * fe * sizeof(double));
    rc_gather_pairs_f64(n_pairs, pair_clip, pair_i, pair_j, frames_per_clip,
                        fe, fr, x);
    int c_in = 2 * s->in_channels, size = s->image_size;
    char name[48];
    for (int l = 0; l < s->n_conv; l++) {
        rc_conv_shape cs;
        rc_conv_shape_init(&cs, n_pairs, c_in, size, size, s->conv_channels[l],
                           s->conv_kernels[l], s->conv_strides[l],
                           s->conv_kernels[l] / 2);
        double *y = rc_xmalloc(rc_conv_numel_y(&cs) * sizeof(double));
        size_t ws_n = rc_conv2d_workspace(&cs);
        double *ws = rc_xmalloc((ws_n ? ws_n : 1) * sizeof(double));
        snprintf(name, sizeof name, "encoder.conv%d.weight", l);
        const double *cw = rc_f64_param(m, w, name);
        snprintf(name, sizeof name, "encoder.conv%d.bias", l);
        rc_conv2d_forward_f64(&cs, x, cw, rc_f64_param(m, w, name), y, ws);
        rc_relu_forward_f64(rc_conv_numel_y(&cs), y, y);
        free(ws);
        free(x);
        x = y;
        c_in = cs.c_out;
        size = cs.h_out;
    }
    int F = s->feature_dim, H = s->hidden, D = s->embed_dim;
    double *pooled = rc_xmalloc((size_t)n_pairs * c_in * sizeof(double));
    double *feat = rc_xmalloc((size_t)n_pairs * F * sizeof(double));
    rc_gap_forward_f64(n_pairs, c_in, size * size, x, pooled);
    rc_linear_forward_f64(n_pairs, c_in, F, pooled,
                          rc_f64_param(m, w, "encoder.fc.weight"),
                          rc_f64_param(m, w, "encoder.fc.bias"), feat);
    double *steps = rc_xmalloc((size_t)n_seq * max_steps * F * sizeof(double));
    rc_gather_steps_f64(n_seq, max_steps, seq_pair, F, feat, steps);
    rc_lstm_shape ls = {n_seq, max_steps, F, H, seq_len};
    double *cache = rc_xmalloc(rc_lstm_cache_size(&ls) * sizeof(double));
    double *h = rc_xmalloc((size_t)n_seq * H * sizeof(double));
    rc_lstm_forward_f64(&ls, steps, rc_f64_param(m, w, "composer.weight_ih"),
                        rc_f64_param(m, w, "composer.weight_hh"),
                        rc_f64_param(m, w, "composer.bias"), h, cache);
    rc_linear_forward_f64(n_seq, H, D, h, rc_f64_param(m, w, "head.weight"),
                          rc_f64_param(m, w, "head.bias"), emb);
    free(h); free(cache); free(steps); free(feat); free(pooled); free(x);
}

/* phi of n arbitrary sequences (as rc_model_embed), every step encoded on
 * its own (no deduplication: it changes nothing in the value). */
static inline void rc_f64_embed(const rc_model *m, const double *w, int T,
                                const double *frames, int n,
                                const rc_sequence *seqs, const int *clip_of,
                                double *emb) {
    int max_steps = 0;
    for (int k = 0; k < n; k++)
        if (seqs[k].n_frames - 1 > max_steps) max_steps = seqs[k].n_frames - 1;
    size_t cap = (size_t)n * max_steps;
    int *pc = rc_xmalloc(cap * sizeof(int)), *pi = rc_xmalloc(cap * sizeof(int));
    int *pj = rc_xmalloc(cap * sizeof(int)), *sp = rc_xmalloc(cap * sizeof(int));
    int *len = rc_xmalloc((size_t)n * sizeof(int));
    int P = 0;
    for (int k = 0; k < n; k++) {
        len[k] = seqs[k].n_frames - 1;
        for (int t = 0; t < max_steps; t++) {
            if (t >= len[k]) {
                sp[(size_t)k * max_steps + t] = -1;
                continue;
            }
            pc[P] = clip_of[k];
            pi[P] = seqs[k].frames[t];
            pj[P] = seqs[k].frames[t + 1];
            sp[(size_t)k * max_steps + t] = P++;
        }
    }
    rc_f64_forward(m, w, P, pc, pi, pj, T + 1, frames, n, max_steps, len, sp,
                   emb);
    free(pc); free(pi); free(pj); free(sp); free(len);
}

/* The action term of rc_model_step (model.c, action_term) in float64, for
 * the embeddings emb [n_seq][D] of a plan; written from the contract
 * (action.h, ops.h), not from model.c. */
static inline double rc_f64_action_loss(const rc_model *m, const double *w,
                                        const rc_batch_plan *plan,
                                        const double *frames,
                                        const rc_loss_config *loss,
                                        const double *emb) {
    const rc_model_shape *s = rc_model_get_shape(m);
    int n = plan->n_seq, D = s->embed_dim;
    int P = rc_action_params(s->action_kind, s->action_grid);
    int *first = rc_xmalloc((size_t)n * sizeof(int));
    int *last = rc_xmalloc((size_t)n * sizeof(int));
    double *theta = rc_xmalloc((size_t)n * P * sizeof(double));
    const double *aw = rc_f64_param(m, w, "action.weight");
    const double *ab = rc_f64_param(m, w, "action.bias");
    for (int q = 0; q < n; q++) {
        /* the sequence's first and last frames, from its first and last
         * steps' pairs */
        const int *sp = plan->seq_pair + (size_t)q * plan->max_steps;
        int a = sp[0], b = sp[plan->seq_len[q] - 1];
        first[q] = plan->pair_clip[a] * (plan->T + 1) + plan->pair_i[a];
        last[q] = plan->pair_clip[b] * (plan->T + 1) + plan->pair_j[b];
        double *r = theta + (size_t)q * P;
        for (int k = 0; k < P; k++) {
            r[k] = ab[k];
            for (int j = 0; j < D; j++) r[k] += aw[k * D + j] * emb[(size_t)q * D + j];
        }
        if (s->action_kind == RC_ACTION_EXPM) {
            double mm[9] = {r[0], r[1], r[2], r[3], r[4], r[5], 0, 0, 0}, e[9];
            rc_expm(3, mm, e);
            memcpy(r, e, 6 * sizeof(double));
        }
    }
    rc_warp_shape ws;
    rc_loss_warp_shape(loss, s->in_channels, s->image_size, n, &ws);
    double L = rc_warp_loss_f64(&ws, frames, first, last, theta, NULL);
    free(first); free(last); free(theta);
    return L;
}

/* The loss of rc_model_step for a plan, in float64. */
static inline double rc_f64_plan_loss(const rc_model *m, const double *w,
                                      const rc_batch_plan *plan,
                                      const double *frames,
                                      const rc_loss_config *loss) {
    int D = rc_model_get_shape(m)->embed_dim;
    double *emb = rc_xmalloc((size_t)plan->n_seq * D * sizeof(double));
    rc_f64_forward(m, w, plan->n_pairs, plan->pair_clip, plan->pair_i,
                   plan->pair_j, plan->T + 1, frames, plan->n_seq, plan->max_steps, plan->seq_len, plan->seq_pair,
                   emb);
    rc_hinge_params hp = {loss->margin, loss->squared, 1.0 / plan->B};
    double L = rc_hinge_loss_f64(plan->n_seq, D, emb, plan->n_loss_pairs,
                                 plan->loss_pairs, &hp, NULL);
    if (rc_model_get_shape(m)->action_head && loss->w_act > 0)
        L += rc_f64_action_loss(m, w, plan, frames, loss, emb);
    free(emb);
    return L;
}

#endif
