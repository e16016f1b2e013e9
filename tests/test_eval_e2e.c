/* test_eval_e2e.c: rc_evaluate end to end on a small config (32x32 frames,
 * 24 held-out clips): the report is complete and finite, deterministic, a
 * "trained" model with the baseline's weights reproduces the baseline row
 * bit for bit, and the pixel-difference row matches an independent
 * recomputation from rendered end frames. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/config.h"
#include "recompose/eval.h"
#include "recompose/model.h"
#include "recompose/synth.h"
#include "test_util.h"

static void small_config(rc_config *c) {
    rc_config_default(c);
    c->image_size = 32;
    c->eval_clips = 24;
    c->probe_train_clips = 96;
    c->retrieval_k = 3;
    c->ridge_lambda = 1e-2f;
    c->pixel_baseline_size = 8;
}

static rc_model *model_with_seed(const rc_config *c, uint64_t seed) {
    rc_model_shape s;
    rc_model_shape_from_config(c, &s);
    rc_model *m = rc_model_create(&s, rc_backend_cpu());
    if (m) rc_model_init_weights(m, seed);
    return m;
}

/* Everything but the name and the wall time, as raw bytes. */
static int same_metrics(const rc_eval_row *a, const rc_eval_row *b) {
    return !memcmp(a->pos_ratio, b->pos_ratio, sizeof a->pos_ratio) &&
           !memcmp(a->neg_beyond, b->neg_beyond, sizeof a->neg_beyond) &&
           !memcmp(a->ridge_r2, b->ridge_r2, sizeof a->ridge_r2) &&
           !memcmp(a->knn_r2, b->knn_r2, sizeof a->knn_r2) &&
           !memcmp(a->cross_ridge_r2, b->cross_ridge_r2, sizeof a->cross_ridge_r2) &&
           !memcmp(a->cross_knn_r2, b->cross_knn_r2, sizeof a->cross_knn_r2) &&
           a->mean_dist_between == b->mean_dist_between &&
           a->precision_at_k == b->precision_at_k &&
           a->cross_precision_at_k == b->cross_precision_at_k &&
           a->cross_twin_recall == b->cross_twin_recall;
}

static void check_row_sane(const rc_eval_row *row) {
    for (int i = 0; i < 2; i++)
        CHECK_MSG(isfinite(row->pos_ratio[i]) && row->pos_ratio[i] >= 0,
                  "%s pos_ratio[%d] = %g", row->name, i, row->pos_ratio[i]);
    for (int i = 0; i < 3; i++)
        CHECK_MSG(row->neg_beyond[i] >= 0 && row->neg_beyond[i] <= 1,
                  "%s neg_beyond[%d] = %g", row->name, i, row->neg_beyond[i]);
    const double *r2[4] = {row->ridge_r2, row->knn_r2, row->cross_ridge_r2,
                           row->cross_knn_r2};
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < 3; i++)
            CHECK_MSG(isfinite(r2[p][i]) && r2[p][i] <= 1,
                      "%s probe %d R^2[%d] = %g", row->name, p, i, r2[p][i]);
    const double frac[3] = {row->precision_at_k, row->cross_precision_at_k,
                            row->cross_twin_recall};
    for (int i = 0; i < 3; i++)
        CHECK_MSG(frac[i] >= 0 && frac[i] <= 1, "%s retrieval %d = %g",
                  row->name, i, frac[i]);
    CHECK_MSG(isfinite(row->mean_dist_between) && row->mean_dist_between > 0,
              "%s mean_dist_between = %g", row->name, row->mean_dist_between);
}

/* The pixel baseline recomputed from scratch: phi(full) is the 4x4 box
 * average of f_T - f_0; ident and loop are 0, skip equals full (same end
 * frames) and rev is -full. */
static void check_pixel_row(const rc_config *c, const rc_eval_row *row) {
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    int n = c->eval_clips, S = sc.size, p = c->pixel_baseline_size, T = c->clip_steps;
    int box = S / p, dim = sc.channels * p * p;
    size_t fe = (size_t)sc.channels * S * S;
    float *frames = malloc((T + 1) * fe * sizeof(float));
    double *v = calloc((size_t)n * dim, sizeof(double));
    int beyond_ident = 0, beyond_rev = 0;
    for (int i = 0; i < n; i++) {
        rc_motion m;
        rc_synth_motion(&sc, rc_synth_clip_key(c->seed, RC_SPLIT_HELDOUT, i), &m);
        rc_synth_render(&sc, &m, 0, T + 1, frames);
        double norm2 = 0;
        for (int ch = 0; ch < sc.channels; ch++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    size_t o = ((size_t)ch * S + y) * S + x;
                    v[(size_t)i * dim + (ch * p + y / box) * p + x / box] +=
                        ((double)frames[T * fe + o] - frames[o]) / (box * box);
                }
        for (int j = 0; j < dim; j++) norm2 += v[(size_t)i * dim + j] * v[(size_t)i * dim + j];
        beyond_ident += sqrt(norm2) > c->loss.margin;
        beyond_rev += 2 * sqrt(norm2) > c->loss.margin;
    }
    double sum = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double d2 = 0;
            for (int k = 0; k < dim; k++) {
                double d = v[(size_t)i * dim + k] - v[(size_t)j * dim + k];
                d2 += d * d;
            }
            sum += sqrt(d2);
        }
    double between = sum / (n * (n - 1) / 2.0);
    CHECK_MSG(fabs(row->mean_dist_between - between) < 1e-9 * between,
              "pixel mean distance %.12g, recomputed %.12g",
              row->mean_dist_between, between);
    CHECK_MSG(row->pos_ratio[0] == 0.0, "pixel full_skip %g", row->pos_ratio[0]);
    CHECK_MSG(row->pos_ratio[1] == 0.0, "pixel loop_ident %g", row->pos_ratio[1]);
    CHECK_MSG(row->neg_beyond[0] == (double)beyond_rev / n, "pixel full_rev %g vs %g",
              row->neg_beyond[0], (double)beyond_rev / n);
    CHECK_MSG(row->neg_beyond[1] == (double)beyond_ident / n,
              "pixel full_ident %g vs %g", row->neg_beyond[1],
              (double)beyond_ident / n);
    free(frames);
    free(v);
}

/* The ceiling of retrieval, recomputed here: the held-out clips' true net
 * motion (from their keys), each component over its standard deviation,
 * and for each clip the share of its k nearest others (ties: lower index)
 * in its motion class. */
static void check_true_motion(const rc_config *c, const rc_eval_report *r) {
    enum { MAXN = 64 };
    int n = c->eval_clips, k = r->k;
    CHECK(n <= MAXN);
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    double y[MAXN][3], sd[3] = {0, 0, 0}, mean[3] = {0, 0, 0};
    int lab[MAXN];
    for (int i = 0; i < n; i++) {
        rc_motion m;
        rc_synth_motion(&sc, rc_synth_clip_key(c->seed, RC_SPLIT_HELDOUT, i), &m);
        y[i][0] = c->clip_steps * (double)m.vx;
        y[i][1] = c->clip_steps * (double)m.vy;
        y[i][2] = c->clip_steps * (double)m.omega;
        lab[i] = rc_motion_class(y[i][0], y[i][1], y[i][2]);
        for (int d = 0; d < 3; d++) mean[d] += y[i][d] / n;
    }
    for (int i = 0; i < n; i++)
        for (int d = 0; d < 3; d++) sd[d] += (y[i][d] - mean[d]) * (y[i][d] - mean[d]) / n;
    for (int d = 0; d < 3; d++) sd[d] = sqrt(sd[d]);
    int hits = 0;
    for (int i = 0; i < n; i++) {
        int used[MAXN] = {0};
        used[i] = 1;
        for (int t = 0; t < k; t++) {
            int best = -1;
            double best_d = INFINITY;
            for (int j = 0; j < n; j++) {
                if (used[j]) continue;
                double d2 = 0;
                for (int d = 0; d < 3; d++) {
                    double e = (y[i][d] - y[j][d]) / sd[d];
                    d2 += e * e;
                }
                if (d2 < best_d) best_d = d2, best = j;
            }
            used[best] = 1;
            hits += lab[best] == lab[i];
        }
    }
    double want = (double)hits / ((double)n * k);
    CHECK_MSG(fabs(r->precision_true_motion - want) < 1e-12,
              "precision of the true motion %.6f, recomputed %.6f",
              r->precision_true_motion, want);
    CHECK(want > 0.3); /* a code of the motion itself finds its class */
}

/* The action head's readout (rc_action_head_motion) has a known answer: a
 * head with zero weight outputs its bias for every phi. Biases that encode
 * one rigid motion -- rotation a, translation (tx, ty) in the warp's [-1, 1]
 * units -- in each kind of action (the affine matrix; the displacements of
 * a 4 x 4 field at its nodes; the Lie-algebra element whose exponential it
 * is, the logarithm computed here) must all read dx = tx S/2,
 * dy = ty S/2 pixels and dtheta = a. */
static void check_action_readout(const rc_config *base) {
    const double a = 0.1, tx = 0.05, ty = -0.03, c = cos(a), s = sin(a);
    enum { G = 4 };
    for (int kind = 0; kind < 3; kind++) {
        rc_config cfg = *base;
        cfg.loss.w_act = 10;
        cfg.loss.act_kind = kind;
        cfg.loss.act_grid = G;
        rc_model *m = model_with_seed(&cfg, 5);
        const rc_param *pw = rc_model_find_param(m, "action.weight");
        const rc_param *pb = rc_model_find_param(m, "action.bias");
        CHECK(pw && pb);
        if (!pw || !pb) continue;
        float *w = rc_model_weights(m);
        memset(w + pw->offset, 0, pw->numel * sizeof(float));
        float *b = w + pb->offset;
        if (kind == RC_ACTION_AFFINE) {
            const float A[6] = {(float)c, (float)-s, (float)tx,
                                (float)s, (float)c, (float)ty};
            memcpy(b, A, sizeof A);
        } else if (kind == RC_ACTION_GRID) {
            for (int j = 0; j < G; j++)
                for (int i = 0; i < G; i++) {
                    double x = -1 + 2.0 * i / (G - 1), y = -1 + 2.0 * j / (G - 1);
                    b[j * G + i] = (float)((c - 1) * x - s * y + tx);
                    b[G * G + j * G + i] = (float)(s * x + (c - 1) * y + ty);
                }
        } else { /* expm: t = V u with V = [p -q; q p], p = s/a, q = (1-c)/a */
            double p = s / a, q = (1 - c) / a, det = p * p + q * q;
            double u = (p * tx + q * ty) / det, v = (-q * tx + p * ty) / det;
            const float L[6] = {0, (float)-a, (float)u, (float)a, 0, (float)v};
            memcpy(b, L, sizeof L);
        }
        double *phi = malloc(2 * (size_t)cfg.embed_dim * sizeof(double));
        double motion[2 * 3];
        for (int i = 0; i < 2 * cfg.embed_dim; i++) phi[i] = 0.3 * i - 2;
        CHECK(rc_action_head_motion(m, 2, cfg.embed_dim, phi, motion) == 0);
        double half = 0.5 * cfg.image_size;
        for (int i = 0; i < 2; i++)
            CHECK_MSG(fabs(motion[3 * i] - tx * half) < 1e-5 &&
                      fabs(motion[3 * i + 1] - ty * half) < 1e-5 &&
                      fabs(motion[3 * i + 2] - a) < 1e-6,
                      "kind %d: motion (%g, %g, %g), want (%g, %g, %g)", kind,
                      motion[3 * i], motion[3 * i + 1], motion[3 * i + 2],
                      tx * half, ty * half, a);
        /* the field as it is: the nodes' displacements in pixels, and only
         * for a field's head */
        double field[2 * 2 * G * G];
        int rf = rc_action_head_field(m, 2, cfg.embed_dim, phi, field);
        CHECK(rf == (kind == RC_ACTION_GRID ? 0 : 1));
        if (rf == 0)
            for (int i = 0; i < 2; i++)
                for (int k = 0; k < 2 * G * G; k++)
                    CHECK_MSG(fabs(field[i * 2 * G * G + k] - b[k] * half) < 1e-9,
                              "field node %d: %g, want %g", k,
                              field[i * 2 * G * G + k], b[k] * half);
        free(phi);
        rc_model_free(m);
    }
    rc_model *none = model_with_seed(base, 5); /* no head: nothing to read */
    double *phi = calloc((size_t)base->embed_dim, sizeof(double)), motion[3];
    CHECK(rc_action_head_motion(none, 1, base->embed_dim, phi, motion) == 1);
    CHECK(rc_action_head_field(none, 1, base->embed_dim, phi, motion) == 1);
    free(phi);
    rc_model_free(none);
}

int main(void) {
    rc_config c;
    small_config(&c);
    double t0 = rc_now();
    CHECK(c.loss.w_act == 0); /* the defaults have no head */
    check_action_readout(&c);

    /* A "trained" model that has the baseline's weights must score exactly
     * like the baseline. */
    rc_model *same = model_with_seed(&c, c.seed + 12345);
    CHECK(same != NULL);
    rc_eval_report r1;
    int st = rc_evaluate(&c, same, &r1);
    CHECK_MSG(st == 0, "%s", rc_last_error());
    if (st == 0) {
        CHECK(r1.n_rows == 3 && r1.clips == 24 && r1.probe_train_clips == 96 &&
              r1.k == 3);
        CHECK(!strcmp(r1.rows[0].name, "trained"));
        CHECK(!strcmp(r1.rows[1].name, "random_init"));
        CHECK(!strcmp(r1.rows[2].name, "pixel_diff"));
        for (int i = 0; i < r1.n_rows; i++) check_row_sane(&r1.rows[i]);
        CHECK(same_metrics(&r1.rows[0], &r1.rows[1]));
        check_pixel_row(&c, &r1.rows[2]);
        check_true_motion(&c, &r1);
        rc_eval_print_table(stdout, &r1);
    }
    rc_model_free(same);

    /* Different weights give a different row; the baselines do not move. */
    rc_model *other = model_with_seed(&c, 777);
    rc_eval_report r2;
    st = rc_evaluate(&c, other, &r2);
    CHECK_MSG(st == 0, "%s", rc_last_error());
    if (st == 0) {
        CHECK(!same_metrics(&r2.rows[0], &r2.rows[1]));
        CHECK(same_metrics(&r2.rows[1], &r1.rows[1]));
        CHECK(same_metrics(&r2.rows[2], &r1.rows[2]));
    }
    rc_model_free(other);

    /* Without a trained model only the baselines are reported. */
    rc_eval_report r3;
    CHECK(rc_evaluate(&c, NULL, &r3) == 0);
    CHECK(r3.n_rows == 2 && !strcmp(r3.rows[0].name, "random_init") &&
          same_metrics(&r3.rows[0], &r1.rows[1]));

    /* A model for other frames is refused with a message naming the fix. */
    rc_config big = c;
    big.image_size = 64;
    rc_model *wrong = model_with_seed(&big, 1);
    CHECK(rc_evaluate(&c, wrong, &r3) == -1);
    CHECK(strstr(rc_last_error(), "config") != NULL);
    rc_model_free(wrong);

    /* k larger than the clips allow is clamped, not an error. */
    c.retrieval_k = 100;
    CHECK(rc_evaluate(&c, NULL, &r3) == 0 && r3.k == c.eval_clips - 1);
    c.retrieval_k = 3;
    c.pixel_baseline_size = 33;
    CHECK(rc_evaluate(&c, NULL, &r3) == -1);
    CHECK(strstr(rc_last_error(), "pixel_baseline_size") != NULL);

    printf("e2e: %.2f s\n", rc_now() - t0);
    TEST_DONE();
}
