/* test_eval.c: the evaluation metrics (csrc/eval.c) against independent
 * oracles: ridge against known linear data and the 1-D closed form, R^2 at
 * its fixed points, kNN regression on a line, a shared versus a private
 * motion code across textures, precision@k and group errors on hand-made
 * sets whose
 * answers are worked out below, the motion classes, and the JSON / table
 * output. The end-to-end rc_evaluate run is in test_eval_e2e.c. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/eval.h"
#include "recompose/rng.h"
#include "recompose/sampler.h"
#include "test_util.h"

/* y = X w + b + noise with features on very different scales and offsets,
 * so that the standardisation is exercised. Weights back in raw units must
 * match w; R^2 ~ 1. */
static void test_ridge_recovers_linear_map(void) {
    enum { N = 300, DIM = 5, NT = 2 };
    static const double w[NT][DIM] = {{1.5, -2.0, 0.25, 0.0, 3.0},
                                      {-0.5, 0.75, 1.0, -1.25, 0.1}};
    static const double b[NT] = {0.7, -3.0};
    static const double scale[DIM] = {1.0, 10.0, 0.01, 100.0, 3.0};
    static const double offset[DIM] = {5.0, -50.0, 0.2, 1000.0, 0.0};
    double *X = malloc(sizeof(double) * N * DIM), *Y = malloc(sizeof(double) * N * NT);
    double *P = malloc(sizeof(double) * N * NT);
    rc_rng rng;
    rc_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < DIM; j++)
            X[i * DIM + j] = offset[j] + scale[j] * rc_rng_normal(&rng);
        for (int t = 0; t < NT; t++) {
            double y = b[t] + 1e-3 * rc_rng_normal(&rng);
            for (int j = 0; j < DIM; j++) y += X[i * DIM + j] * w[t][j];
            Y[i * NT + t] = y;
        }
    }
    rc_ridge r;
    CHECK(rc_ridge_fit(&r, N, DIM, X, NT, Y, 1e-10) == 0);
    rc_ridge_predict(&r, N, X, P);
    for (int t = 0; t < NT; t++) {
        double r2 = rc_r2(N, Y + t, P + t, NT);
        CHECK_MSG(r2 > 0.99999, "target %d R^2 = %.8f", t, r2);
        double b_raw = r.intercept[t];
        for (int j = 0; j < DIM; j++) {
            double w_raw = r.weights[j * NT + t] * r.inv_scale[j];
            b_raw -= w_raw * r.mean[j];
            CHECK_MSG(fabs(w_raw - w[t][j]) < 1e-3 * (1 + fabs(w[t][j])) / scale[j],
                      "w[%d][%d] = %.6f, want %.6f", t, j, w_raw, w[t][j]);
        }
        CHECK_MSG(fabs(b_raw - b[t]) < 1e-2, "b[%d] = %.6f, want %.6f", t,
                  b_raw, b[t]);
    }
    rc_ridge_free(&r);

    /* A huge penalty leaves only the intercept: predictions -> mean, R^2 -> 0. */
    CHECK(rc_ridge_fit(&r, N, DIM, X, NT, Y, 1e9) == 0);
    rc_ridge_predict(&r, N, X, P);
    for (int t = 0; t < NT; t++) {
        double r2 = rc_r2(N, Y + t, P + t, NT);
        CHECK_MSG(fabs(r2) < 1e-6, "huge lambda: target %d R^2 = %g", t, r2);
        double mean = 0;
        for (int i = 0; i < N; i++) mean += Y[i * NT + t];
        mean /= N;
        CHECK(fabs(P[t] - mean) < 1e-6 * (1 + fabs(mean)));
    }
    rc_ridge_free(&r);
    free(X);
    free(Y);
    free(P);
}

/* One feature: the ridge prediction with the penalty n*lambda on the
 * standardised weight works out to ybar + (x - xbar) Sxy / (Sxx (1 + lambda)). */
static void test_ridge_1d_closed_form(void) {
    static const double x[6] = {1, 2, 4, 7, 8, 13};
    static const double y[6] = {2.5, 2.0, 5.5, 6.0, 9.5, 11.0};
    const double lambda = 0.5;
    double xbar = 0, ybar = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < 6; i++) xbar += x[i] / 6, ybar += y[i] / 6;
    for (int i = 0; i < 6; i++) {
        sxx += (x[i] - xbar) * (x[i] - xbar);
        sxy += (x[i] - xbar) * (y[i] - ybar);
    }
    rc_ridge r;
    CHECK(rc_ridge_fit(&r, 6, 1, x, 1, y, lambda) == 0);
    double q[3] = {0.0, 5.0, 20.0}, p[3];
    rc_ridge_predict(&r, 3, q, p);
    for (int i = 0; i < 3; i++) {
        double want = ybar + (q[i] - xbar) * sxy / (sxx * (1 + lambda));
        CHECK_MSG(fabs(p[i] - want) < 1e-12 * (1 + fabs(want)),
                  "x=%g: ridge %.15g, closed form %.15g", q[i], p[i], want);
    }
    rc_ridge_free(&r);
}

/* A constant feature carries nothing: it gets weight 0 and does not make the
 * unpenalised system singular. Bad lambdas are refused with a message. */
static void test_ridge_edge_cases(void) {
    double X[4 * 2] = {1, 5, 2, 5, 3, 5, 4, 5}; /* column 1 constant */
    double Y[4] = {3, 5, 7, 9};                  /* 2 x + 1 */
    rc_ridge r;
    CHECK(rc_ridge_fit(&r, 4, 2, X, 1, Y, 0.0) == 0);
    CHECK(r.inv_scale[1] == 0 && r.weights[1] == 0);
    double p[4];
    rc_ridge_predict(&r, 4, X, p);
    CHECK(rc_test_rel_err_d(p, Y, 4) < 1e-12);
    rc_ridge_free(&r);
    CHECK(rc_ridge_fit(&r, 4, 2, X, 1, Y, -1.0) == -1);
    CHECK(strstr(rc_last_error(), "eval.ridge_lambda") != NULL);
    CHECK(rc_ridge_fit(&r, 4, 2, X, 1, Y, NAN) == -1);
}

static void test_r2_fixed_points(void) {
    double y[5] = {1, -2, 4, 0.5, 3};
    double mean[5], worse[5];
    double m = (1 - 2 + 4 + 0.5 + 3) / 5.0;
    for (int i = 0; i < 5; i++) mean[i] = m, worse[i] = y[i] + 10;
    CHECK(rc_r2(5, y, y, 1) == 1.0);
    CHECK(fabs(rc_r2(5, y, mean, 1)) < 1e-15);
    CHECK(rc_r2(5, y, worse, 1) < 0); /* worse than the mean: negative */
    double c[3] = {2, 2, 2};
    CHECK(isnan(rc_r2(3, c, c, 1)));  /* undefined without variance */
    /* stride picks the column of an interleaved array */
    double yy[6] = {1, 9, 2, 9, 3, 9}, pp[6] = {1, 0, 2, 0, 3, 0};
    CHECK(rc_r2(3, yy, pp, 2) == 1.0);
}

static void test_precision_at_k(void) {
    /* 4 tight clusters far apart, 10 points each: every neighbour within k=5
     * is from the own cluster. */
    enum { C = 4, PER = 10, N = C * PER, DIM = 3 };
    double X[N * DIM];
    int lab[N];
    rc_rng rng;
    rc_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        lab[i] = i % C;
        for (int j = 0; j < DIM; j++)
            X[i * DIM + j] = 100.0 * ((lab[i] >> (j % 2)) & 1) * (j + 1) +
                             0.1 * rc_rng_normal(&rng);
    }
    double p;
    CHECK(rc_precision_at_k(N, DIM, X, lab, 5, &p) == 0 && p == 1.0);
    /* k = 19 reaches beyond the 9 cluster mates: exactly 9/19 per query. */
    CHECK(rc_precision_at_k(N, DIM, X, lab, 19, &p) == 0);
    CHECK_MSG(fabs(p - 9.0 / 19.0) < 1e-15, "p = %.17g", p);

    /* Points on a line: 0,1,2 (A) and 10,11 (B), k = 2. The A points see
     * only A neighbours (3 x 1); 10 sees 11 and 2, 11 sees 10 and 2
     * (2 x 1/2): (3 + 1) / 5 = 0.8. */
    double line[5] = {0, 1, 2, 10, 11};
    int ll[5] = {0, 0, 0, 1, 1};
    CHECK(rc_precision_at_k(5, 1, line, ll, 2, &p) == 0);
    CHECK_MSG(fabs(p - 0.8) < 1e-15, "line: p = %.17g, want 0.8", p);

    /* Ties go to the lower index: x = 0 (A), -1 (B), 1 (A), k = 1. Point 0
     * has -1 and 1 at distance 1 and takes index 1 (B): miss. -1 -> 0: miss.
     * 1 -> 0: hit. 1/3. */
    double tie[3] = {0, -1, 1};
    int tl[3] = {0, 1, 0};
    CHECK(rc_precision_at_k(3, 1, tie, tl, 1, &p) == 0);
    CHECK_MSG(fabs(p - 1.0 / 3.0) < 1e-15, "ties: p = %.17g", p);

    CHECK(rc_precision_at_k(5, 1, line, ll, 5, &p) == -1); /* k > n-1 */
    CHECK(rc_precision_at_k(5, 1, line, ll, 0, &p) == -1);
}

/* Embeddings [3 clips][6 kinds][2] built so that every distance is a
 * 3-4-5 multiple; the expected values are worked out by hand. */
static void set2(double *emb, int clip, int kind, double a, double b) {
    emb[(clip * RC_SEQ_KINDS + kind) * 2 + 0] = a;
    emb[(clip * RC_SEQ_KINDS + kind) * 2 + 1] = b;
}

static void test_group_errors(void) {
    double emb[3 * RC_SEQ_KINDS * 2];
    static const double full[3][2] = {{0, 0}, {3, 4}, {6, 8}};
    for (int c = 0; c < 3; c++) {
        double fx = full[c][0], fy = full[c][1];
        set2(emb, c, RC_SEQ_FULL, fx, fy);
        set2(emb, c, RC_SEQ_SKIP, fx + 0.6, fy + 0.8); /* d = 1 */
        set2(emb, c, RC_SEQ_SHORT, fx, fy);            /* d = 0 */
    }
    /* loop vs ident: d = 0, 5, 2 */
    set2(emb, 0, RC_SEQ_LOOP, 7, 7), set2(emb, 0, RC_SEQ_IDENT, 7, 7);
    set2(emb, 1, RC_SEQ_LOOP, 0, 0), set2(emb, 1, RC_SEQ_IDENT, 3, 4);
    set2(emb, 2, RC_SEQ_LOOP, 1, 1), set2(emb, 2, RC_SEQ_IDENT, 1, 3);
    /* rev vs full: d = 2, 1 (exactly the margin: not beyond), 0.5 */
    set2(emb, 0, RC_SEQ_REV, 2, 0);
    set2(emb, 1, RC_SEQ_REV, 3, 5);
    set2(emb, 2, RC_SEQ_REV, 6.3, 8.4);
    /* ident vs full: sqrt(98), 0, sqrt(50) -> 2 of 3 beyond */

    double pos[2], neg[3], between;
    CHECK(rc_group_errors(3, 2, emb, 1.0, pos, neg, &between) == 0);
    /* full pairwise distances 5, 10, 5: mean 20/3 */
    CHECK_MSG(fabs(between - 20.0 / 3.0) < 1e-12, "between = %.17g", between);
    CHECK_MSG(fabs(pos[0] - 1.0 / (20.0 / 3.0)) < 1e-12, "full_skip %.17g", pos[0]);
    CHECK_MSG(fabs(pos[1] - (7.0 / 3.0) / (20.0 / 3.0)) < 1e-12,
              "loop_ident %.17g", pos[1]);
    CHECK_MSG(fabs(neg[0] - 1.0 / 3.0) < 1e-15, "full_rev %.17g", neg[0]);
    CHECK_MSG(fabs(neg[1] - 2.0 / 3.0) < 1e-15, "full_ident %.17g", neg[1]);
    CHECK_MSG(neg[2] == 0.0, "full_short %.17g", neg[2]);

    /* A collapsed embedding (all full equal) has no scale: ratios NaN. */
    for (int c = 0; c < 3; c++) set2(emb, c, RC_SEQ_FULL, 1, 1);
    CHECK(rc_group_errors(3, 2, emb, 1.0, pos, neg, NULL) == 0);
    CHECK(isnan(pos[0]) && isnan(pos[1]));
    CHECK(rc_group_errors(1, 2, emb, 1.0, pos, neg, NULL) == -1);
}

/* Classes: 8 bins of 45 degrees from -180, times 2, + (dtheta >= 0). */
static void test_motion_class(void) {
    for (int deg = -177; deg < 180; deg += 10) { /* never on a bin edge */
        double a = deg * 3.14159265358979323846 / 180.0;
        int bin = (deg + 180) / 45;
        CHECK_MSG(rc_motion_class(2 * cos(a), 2 * sin(a), 0.1) == 2 * bin + 1,
                  "%d degrees", deg);
        CHECK(rc_motion_class(2 * cos(a), 2 * sin(a), -0.1) == 2 * bin);
    }
    CHECK(rc_motion_class(-1, 0, 0) == 15); /* +180 joins the last bin */
    int seen[RC_EVAL_CLASSES] = {0};
    for (int i = 0; i < 64; i++) {
        double a = (i + 0.5) * 2 * 3.14159265358979323846 / 32;
        int c = rc_motion_class(cos(a), sin(a), i % 2 ? 1 : -1);
        CHECK(c >= 0 && c < RC_EVAL_CLASSES);
        if (c >= 0 && c < RC_EVAL_CLASSES) seen[c]++;
    }
    for (int c = 0; c < RC_EVAL_CLASSES; c++) CHECK_MSG(seen[c] > 0, "class %d", c);
}

/* kNN regression against answers worked out by hand on a line. */
static void test_knn_regress(void) {
    static const double xf[5] = {0, 1, 2, 10, 11}, yf[5] = {1, 2, 3, 40, 50};
    static const double xq[3] = {0.9, 10.4, 6.0};
    double y[3];
    CHECK(rc_knn_regress(5, 1, xf, 1, yf, 3, xq, 1, y) == 0);
    CHECK(y[0] == 2 && y[1] == 40 && y[2] == 3); /* 6.0: 2 and 10 tie, lower index */
    CHECK(rc_knn_regress(5, 1, xf, 1, yf, 3, xq, 2, y) == 0);
    /* 0.9: 1 and 0; 10.4: 10 and 11; 6.0: 2 and 10 tie at 4 (both taken) */
    CHECK(y[0] == 1.5 && y[1] == 45 && y[2] == 21.5);
    CHECK(rc_knn_regress(5, 1, xf, 1, yf, 1, xq, 5, y) == 0 && y[0] == 96.0 / 5);
    CHECK(rc_knn_regress(5, 1, xf, 1, yf, 1, xq, 6, y) == -1);
    CHECK(strstr(rc_last_error(), "eval.knn_k") != NULL);
}

/* Embeddings made by hand for N clips with motion (dx, dy), each on its own
 * texture, and the same motions on other textures (the twins):
 *   shared   phi = A (dx, dy) + tiny noise, the same A for every texture:
 *            a motion code; both probes R^2 ~ 1 on the twins, and each
 *            query's nearest twin is its own.
 *   private  phi = Q_texture (dx, dy) with a random orthonormal Q per
 *            texture: full and rev are still 2|motion| apart within a clip,
 *            but nothing is shared; R^2 ~ 0 on the twins, twin recall at
 *            chance. */
enum { PC_N = 600, PC_DIM = 8 };

static void embed_motion(int private_code, rc_rng *rng, const double m[2],
                         const double A[PC_DIM][2], double *out) {
    double Q[PC_DIM][2];
    if (private_code) {
        /* Gram-Schmidt of two Gaussian columns: a texture's own 2-D frame */
        double n0 = 0, n1 = 0, dot = 0;
        for (int j = 0; j < PC_DIM; j++) {
            Q[j][0] = rc_rng_normal(rng);
            Q[j][1] = rc_rng_normal(rng);
        }
        for (int j = 0; j < PC_DIM; j++) n0 += Q[j][0] * Q[j][0];
        for (int j = 0; j < PC_DIM; j++) Q[j][0] /= sqrt(n0);
        for (int j = 0; j < PC_DIM; j++) dot += Q[j][0] * Q[j][1];
        for (int j = 0; j < PC_DIM; j++) Q[j][1] -= dot * Q[j][0];
        for (int j = 0; j < PC_DIM; j++) n1 += Q[j][1] * Q[j][1];
        for (int j = 0; j < PC_DIM; j++) Q[j][1] /= sqrt(n1);
    }
    for (int j = 0; j < PC_DIM; j++) {
        const double *a = private_code ? Q[j] : A[j];
        out[j] = a[0] * m[0] + a[1] * m[1] + 1e-4 * rc_rng_normal(rng);
    }
}

static void check_code(int private_code) {
    static double fit[PC_N][PC_DIM], held[PC_N][PC_DIM], twin[PC_N][PC_DIM];
    static double yfit[PC_N][2], yheld[PC_N][2], pred[PC_N][2];
    static int label[PC_N];
    double A[PC_DIM][2];
    rc_rng rng;
    rc_rng_seed(&rng, 7 + private_code);
    for (int j = 0; j < PC_DIM; j++) {
        A[j][0] = rc_rng_normal(&rng);
        A[j][1] = rc_rng_normal(&rng);
    }
    for (int i = 0; i < PC_N; i++) {
        for (int t = 0; t < 2; t++) {
            yfit[i][t] = rc_rng_range(&rng, -8, 8);
            yheld[i][t] = rc_rng_range(&rng, -8, 8);
        }
        label[i] = rc_motion_class(yheld[i][0], yheld[i][1], 0);
        embed_motion(private_code, &rng, yfit[i], A, fit[i]);
        embed_motion(private_code, &rng, yheld[i], A, held[i]);
        embed_motion(private_code, &rng, yheld[i], A, twin[i]);
    }
    rc_ridge r;
    CHECK(rc_ridge_fit(&r, PC_N, PC_DIM, &fit[0][0], 2, &yfit[0][0], 1e-3) == 0);
    rc_ridge_predict(&r, PC_N, &twin[0][0], &pred[0][0]);
    rc_ridge_free(&r);
    for (int t = 0; t < 2; t++) {
        double r2 = rc_r2(PC_N, &yheld[0][t], &pred[0][t], 2);
        if (private_code) CHECK_MSG(fabs(r2) < 0.1, "private ridge R^2 %g", r2);
        else CHECK_MSG(r2 > 0.999, "shared ridge R^2 %g", r2);
    }
    CHECK(rc_knn_regress(PC_N, PC_DIM, &fit[0][0], 2, &yfit[0][0], PC_N,
                         &twin[0][0], 10, &pred[0][0]) == 0);
    for (int t = 0; t < 2; t++) {
        double r2 = rc_r2(PC_N, &yheld[0][t], &pred[0][t], 2);
        if (private_code) CHECK_MSG(fabs(r2) < 0.15, "private kNN R^2 %g", r2);
        else CHECK_MSG(r2 > 0.95, "shared kNN R^2 %g", r2);
    }
    double prec, twins;
    CHECK(rc_cross_retrieval(PC_N, PC_DIM, &held[0][0], &twin[0][0], label, 5,
                             &prec, &twins) == 0);
    if (private_code) {
        /* chance: 5 of 600 for the twin, about 1/8 for the class */
        CHECK_MSG(twins < 0.05 && prec < 0.25, "private: twin %g, precision %g",
                  twins, prec);
    } else {
        CHECK_MSG(twins == 1.0 && prec > 0.8, "shared: twin %g, precision %g",
                  twins, prec);
    }
}

static void test_shared_versus_private_code(void) {
    check_code(0);
    check_code(1);
    double x[2] = {0, 1};
    int lab[2] = {0, 0};
    double p, t;
    CHECK(rc_cross_retrieval(2, 1, x, x, lab, 3, &p, &t) == -1);
    CHECK(rc_cross_retrieval(2, 1, x, x, lab, 1, &p, &t) == 0 && t == 1 && p == 1);
}

static void test_output(void) {
    rc_eval_report r;
    memset(&r, 0, sizeof r);
    r.n_rows = 2;
    r.clips = 10, r.probe_train_clips = 20, r.k = 3, r.margin = 1, r.ridge_lambda = 0.01;
    snprintf(r.rows[0].name, sizeof r.rows[0].name, "trained");
    snprintf(r.rows[1].name, sizeof r.rows[1].name, "pixel_diff");
    r.rows[0].pos_ratio[0] = 0.125;
    r.rows[0].ridge_r2[2] = NAN;
    r.rows[0].cross_twin_recall = 0.375;
    r.knn_k = 7;
    r.rows[1].neg_beyond[2] = 0.75;
    r.rows[1].precision_at_k = 0.5;

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rc_eval_print_table(f, &r);
    fclose(f);
    CHECK(strstr(text, "trained") && strstr(text, "pixel_diff"));
    CHECK(strstr(text, "n/a") != NULL);
    CHECK(strstr(text, "0.1250") && strstr(text, "0.7500"));
    CHECK(strstr(text, "precision@3") != NULL);
    CHECK(strstr(text, "kNN(7) R^2 dy") != NULL);
    CHECK(strstr(text, "0.3750") != NULL);
    free(text);

    char path[] = "/tmp/test_eval_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECK(rc_eval_write_json(path, &r) == 0);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    CHECK_MSG(root != NULL, "%s", err.text);
    if (root) {
        json_t *rows = json_object_get(root, "rows");
        CHECK(json_array_size(rows) == 2);
        json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
        CHECK(!strcmp(json_string_value(json_object_get(r0, "name")), "trained"));
        CHECK(json_real_value(json_object_get(
                  json_object_get(r0, "positive_ratio"), "full_skip")) == 0.125);
        CHECK(json_is_null(json_object_get(
            json_object_get(json_object_get(r0, "probe_r2"), "ridge"), "dtheta")));
        CHECK(json_real_value(json_object_get(json_object_get(r0, "cross_texture"),
                                              "twin_recall_at_k")) == 0.375);
        CHECK(json_real_value(json_object_get(
                  json_object_get(r1, "negative_beyond_margin"), "full_short")) == 0.75);
        CHECK(json_integer_value(json_object_get(root, "k")) == 3);
        json_decref(root);
    }
    remove(path);
    CHECK(rc_eval_write_json("/nonexistent-dir/eval.json", &r) == -1);
    CHECK(strstr(rc_last_error(), "/nonexistent-dir/eval.json") != NULL);
}

int main(void) {
    test_ridge_recovers_linear_map();
    test_ridge_1d_closed_form();
    test_ridge_edge_cases();
    test_r2_fixed_points();
    test_precision_at_k();
    test_group_errors();
    test_motion_class();
    test_knn_regress();
    test_shared_versus_private_code();
    test_output();
    TEST_DONE();
}
