/* eval.c: held-out evaluation of the motion embedding (SPEC section 7).
 *
 *   clip keys --synth--> frames --sample_tuple--> six sequences per clip
 *     --embedder (trained | random_init | pixel_diff)--> vectors
     --> group-property errors, ridge and kNN probe R^2 (on held-out clips and
 *       on their motions re-rendered on another texture family), retrieval
 *
 * Every clip, tuple and weight follows from the config seed, so an
 * evaluation is a pure function of (config, weights) for a given thread
 * count. Our own parallel sums are ordered (row sums added serially, integer
 * hit counts); BLAS/LAPACK reductions in the probe and the model's forward
 * pass may differ in the last bits between thread counts.
 */
#include "recompose/eval.h"

#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <lapacke.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/action.h"
#include "recompose/common.h"
#include "recompose/rng.h"
#include "recompose/sampler.h"
#include "recompose/synth.h"

#define EVAL_PI 3.14159265358979323846
#define N_TARGETS 3 /* dx, dy, dtheta */

/* ---- small helpers ---------------------------------------------------------- */

static double euclid(const double *a, const double *b, int dim) {
    double s = 0;
    for (int j = 0; j < dim; j++) {
        double d = a[j] - b[j];
        s += d * d;
    }
    return sqrt(s);
}

/* Prefix the current error with `what` (rc_last_error's buffer is reused by
 * rc_set_error, so copy it first). */
static int error_in(const char *what) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rc_last_error());
    return rc_set_error("%s: %s", what, msg);
}

/* ---- ridge regression ------------------------------------------------------- */

/* Column means and 1/std (population) of X [n][dim]. A column whose spread
 * is at rounding level is constant: inv_scale 0 removes it from the fit. */
static void column_standardisation(int n, int dim, const double *X,
                                   double *mean, double *inv_scale) {
    for (int j = 0; j < dim; j++) {
        double m = 0, v = 0;
        for (int i = 0; i < n; i++) m += X[(size_t)i * dim + j];
        m /= n;
        for (int i = 0; i < n; i++) {
            double d = X[(size_t)i * dim + j] - m;
            v += d * d;
        }
        double sd = sqrt(v / n);
        mean[j] = m;
        inv_scale[j] = sd > 1e-12 * fmax(1.0, fabs(m)) ? 1.0 / sd : 0.0;
    }
}

void rc_ridge_free(rc_ridge *r) {
    free(r->mean);
    free(r->inv_scale);
    free(r->weights);
    free(r->intercept);
    memset(r, 0, sizeof *r);
}

int rc_ridge_fit(rc_ridge *r, int n, int dim, const double *X, int n_targets,
                 const double *Y, double lambda) {
    memset(r, 0, sizeof *r);
    if (n < 1 || dim < 1 || n_targets < 1)
        return rc_set_error("ridge fit needs samples, features and targets "
                            "(got n=%d, dim=%d, targets=%d)", n, dim, n_targets);
    if (!(lambda >= 0) || !isfinite(lambda))
        return rc_set_error("ridge lambda must be finite and >= 0, got %g; "
                            "set eval.ridge_lambda", lambda);
    r->dim = dim;
    r->n_targets = n_targets;
    r->mean = rc_xmalloc((size_t)dim * sizeof(double));
    r->inv_scale = rc_xmalloc((size_t)dim * sizeof(double));
    r->weights = rc_xcalloc((size_t)dim * n_targets, sizeof(double));
    r->intercept = rc_xcalloc((size_t)n_targets, sizeof(double));
    column_standardisation(n, dim, X, r->mean, r->inv_scale);

    double *Z = rc_xmalloc((size_t)n * dim * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < dim; j++)
            Z[(size_t)i * dim + j] =
                (X[(size_t)i * dim + j] - r->mean[j]) * r->inv_scale[j];
    /* The unpenalised intercept of centred features is the mean of y. */
    double *Yc = rc_xmalloc((size_t)n * n_targets * sizeof(double));
    for (int t = 0; t < n_targets; t++) {
        double m = 0;
        for (int i = 0; i < n; i++) m += Y[(size_t)i * n_targets + t];
        r->intercept[t] = m / n;
        for (int i = 0; i < n; i++)
            Yc[(size_t)i * n_targets + t] =
                Y[(size_t)i * n_targets + t] - r->intercept[t];
    }
    /* Normal equations (Z^T Z + n lambda I) W = Z^T Yc. A constant feature
     * has a zero column in Z; a unit diagonal pins its weight to 0. */
    double *A = rc_xcalloc((size_t)dim * dim, sizeof(double));
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, n, 1.0, Z, dim,
                0.0, A, dim);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, n_targets, n,
                1.0, Z, dim, Yc, n_targets, 0.0, r->weights, n_targets);
    for (int j = 0; j < dim; j++)
        A[(size_t)j * dim + j] += n * lambda + (r->inv_scale[j] == 0 ? 1.0 : 0.0);
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', dim, n_targets, A,
                                    dim, r->weights, n_targets);
    free(Z);
    free(Yc);
    free(A);
    if (info != 0) {
        rc_ridge_free(r);
        if (info > 0)
            return rc_set_error(
                "ridge normal equations are singular (%d samples, %d features, "
                "lambda %g); set eval.ridge_lambda > 0 or raise "
                "eval.probe_train_clips above the embedding size",
                n, dim, lambda);
        return rc_set_error("LAPACKE_dposv rejected argument %d", (int)-info);
    }
    return 0;
}

void rc_ridge_predict(const rc_ridge *r, int n, const double *X,
                      double *Y_out) {
    int dim = r->dim, nt = r->n_targets;
    for (int i = 0; i < n; i++) {
        double *y = Y_out + (size_t)i * nt;
        for (int t = 0; t < nt; t++) y[t] = r->intercept[t];
        for (int j = 0; j < dim; j++) {
            double z = (X[(size_t)i * dim + j] - r->mean[j]) * r->inv_scale[j];
            for (int t = 0; t < nt; t++) y[t] += z * r->weights[(size_t)j * nt + t];
        }
    }
}

double rc_r2(int n, const double *y, const double *pred, int stride) {
    double mean = 0;
    for (int i = 0; i < n; i++) mean += y[(size_t)i * stride];
    mean /= n;
    double ss_res = 0, ss_tot = 0;
    for (int i = 0; i < n; i++) {
        double yi = y[(size_t)i * stride];
        double e = yi - pred[(size_t)i * stride];
        ss_res += e * e;
        ss_tot += (yi - mean) * (yi - mean);
    }
    return ss_tot > 0 ? 1.0 - ss_res / ss_tot : NAN;
}

/* ---- retrieval ------------------------------------------------------------- */

typedef struct {
    double d;
    int i;
} neighbour;

static int neighbour_cmp(const void *pa, const void *pb) {
    const neighbour *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* How many of the k nearest neighbours of point q share its label. */
static int same_label_neighbours(int n, int dim, const double *X,
                                 const int *labels, int k, int q,
                                 neighbour *buf) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (i == q) continue;
        buf[m].d = euclid(X + (size_t)q * dim, X + (size_t)i * dim, dim);
        buf[m].i = i;
        m++;
    }
    qsort(buf, (size_t)m, sizeof *buf, neighbour_cmp);
    int hits = 0;
    for (int t = 0; t < k; t++) hits += labels[buf[t].i] == labels[q];
    return hits;
}

int rc_precision_at_k(int n, int dim, const double *X, const int *labels,
                      int k, double *out) {
    if (n < 2 || k < 1 || k > n - 1)
        return rc_set_error("precision@k needs 1 <= k <= points - 1 "
                            "(got k=%d, %d points); lower eval.retrieval_k or "
                            "raise eval.clips", k, n);
    long hits = 0; /* an integer sum: the same for any thread count */
    #pragma omp parallel reduction(+ : hits)
    {
        neighbour *buf = rc_xmalloc((size_t)n * sizeof *buf);
        #pragma omp for schedule(static)
        for (int q = 0; q < n; q++)
            hits += same_label_neighbours(n, dim, X, labels, k, q, buf);
        free(buf);
    }
    *out = (double)hits / ((double)n * k);
    return 0;
}

/* ---- k-nearest-neighbour regression ------------------------------------------ */

/* Indices of the k points of G [ng][dim] nearest to q (ties by lower index),
 * leaving out index `skip` (-1: none), into nearest[k]. buf holds ng. */
static void k_nearest(int ng, int dim, const double *G, const double *q,
                      int skip, int k, neighbour *buf, int *nearest) {
    int m = 0;
    for (int i = 0; i < ng; i++) {
        if (i == skip) continue;
        buf[m].d = euclid(q, G + (size_t)i * dim, dim);
        buf[m].i = i;
        m++;
    }
    qsort(buf, (size_t)m, sizeof *buf, neighbour_cmp);
    for (int t = 0; t < k; t++) nearest[t] = buf[t].i;
}

int rc_knn_regress(int n_fit, int dim, const double *X_fit, int n_targets,
                   const double *Y_fit, int n, const double *X, int k,
                   double *Y_out) {
    if (k < 1 || k > n_fit)
        return rc_set_error("kNN probe needs 1 <= k <= fit points (got k=%d, "
                            "%d points); lower eval.knn_k or raise "
                            "eval.probe_train_clips", k, n_fit);
    #pragma omp parallel
    {
        neighbour *buf = rc_xmalloc((size_t)n_fit * sizeof *buf);
        int *nearest = rc_xmalloc((size_t)k * sizeof(int));
        #pragma omp for schedule(static)
        for (int q = 0; q < n; q++) {
            k_nearest(n_fit, dim, X_fit, X + (size_t)q * dim, -1, k, buf,
                      nearest);
            double *y = Y_out + (size_t)q * n_targets;
            for (int t = 0; t < n_targets; t++) {
                double s = 0; /* in neighbour order: thread-count independent */
                for (int j = 0; j < k; j++)
                    s += Y_fit[(size_t)nearest[j] * n_targets + t];
                y[t] = s / k;
            }
        }
        free(buf);
        free(nearest);
    }
    return 0;
}

int rc_cross_retrieval(int n, int dim, const double *Xq, const double *Xg,
                       const int *labels, int k, double *precision,
                       double *twin_recall) {
    if (n < 1 || k < 1 || k > n)
        return rc_set_error("cross-texture retrieval needs 1 <= k <= gallery "
                            "size (got k=%d, %d clips); lower "
                            "eval.retrieval_k or raise eval.clips", k, n);
    long hits = 0, twins = 0; /* integer sums: any thread count */
    #pragma omp parallel reduction(+ : hits, twins)
    {
        neighbour *buf = rc_xmalloc((size_t)n * sizeof *buf);
        int *nearest = rc_xmalloc((size_t)k * sizeof(int));
        #pragma omp for schedule(static)
        for (int q = 0; q < n; q++) {
            k_nearest(n, dim, Xg, Xq + (size_t)q * dim, -1, k, buf, nearest);
            for (int j = 0; j < k; j++) {
                hits += labels[nearest[j]] == labels[q];
                twins += nearest[j] == q;
            }
        }
        free(buf);
        free(nearest);
    }
    *precision = (double)hits / ((double)n * k);
    *twin_recall = (double)twins / n;
    return 0;
}

int rc_motion_class(double dx, double dy, double dtheta) {
    double bin_width = 2 * EVAL_PI / 8;
    int bin = (int)floor((atan2(dy, dx) + EVAL_PI) / bin_width);
    if (bin < 0) bin = 0;
    if (bin > 7) bin = 7; /* atan2 = +pi belongs with -pi */
    return 2 * bin + (dtheta >= 0);
}

/* ---- group-property errors ----------------------------------------------------- */

static const double *seq_emb(const double *emb, int dim, int clip, int kind) {
    return emb + ((size_t)clip * RC_SEQ_KINDS + kind) * dim;
}

/* Mean of d(full_i, full_j) over all i < j. Row sums in parallel, then
 * summed serially: deterministic for any thread count. */
static double mean_full_distance(int n, int dim, const double *emb) {
    double *row = rc_xcalloc((size_t)n, sizeof(double));
    #pragma omp parallel for schedule(dynamic, 8)
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            row[i] += euclid(seq_emb(emb, dim, i, RC_SEQ_FULL),
                             seq_emb(emb, dim, j, RC_SEQ_FULL), dim);
    double s = 0;
    for (int i = 0; i < n; i++) s += row[i];
    free(row);
    return s / ((double)n * (n - 1) / 2);
}

int rc_group_errors(int n, int dim, const double *emb, double margin,
                    double pos_ratio[2], double neg_beyond[3],
                    double *mean_between) {
    if (n < 2)
        return rc_set_error("group errors need at least 2 clips, got %d; "
                            "raise eval.clips", n);
    double between = mean_full_distance(n, dim, emb);
    if (mean_between) *mean_between = between;
    int n_pos = 0, n_neg = 0;
    for (int kind = 0; kind < RC_TUPLE_PAIR_KINDS; kind++) {
        int a = rc_pair_kind_seqs[kind][0], b = rc_pair_kind_seqs[kind][1];
        double sum_d = 0;
        int beyond = 0;
        for (int i = 0; i < n; i++) {
            double d = euclid(seq_emb(emb, dim, i, a), seq_emb(emb, dim, i, b), dim);
            sum_d += d;
            beyond += d > margin;
        }
        if (rc_pair_kind_positive[kind]) {
            if (n_pos == 2) return rc_set_error("eval expects 2 positive pair kinds");
            pos_ratio[n_pos++] = between > 0 ? sum_d / n / between : NAN;
        } else {
            if (n_neg == 3) return rc_set_error("eval expects 3 negative pair kinds");
            neg_beyond[n_neg++] = (double)beyond / n;
        }
    }
    return 0;
}

/* ---- the clips --------------------------------------------------------------- */

typedef struct {
    int n;
    int seqs_per_clip;   /* RC_SEQ_KINDS (held-out) or 1: full only (probe) */
    uint64_t *key;       /* [n] */
    rc_motion *motion;   /* [n] */
    rc_tuple *tuple;     /* [n] */
    double *target;      /* [n][3] net motion of full: T * (vx, vy, omega) */
    int *label;          /* [n] retrieval class */
} clip_set;

/* Clip i of the set is clip first_index + i of `split`. Its tuple comes from
 * the same hash of the clip key as in training (train.c). */
static void clip_set_alloc(clip_set *cs, int n, int seqs_per_clip) {
    cs->n = n;
    cs->seqs_per_clip = seqs_per_clip;
    cs->key = rc_xmalloc((size_t)n * sizeof *cs->key);
    cs->motion = rc_xmalloc((size_t)n * sizeof *cs->motion);
    cs->tuple = rc_xmalloc((size_t)n * sizeof *cs->tuple);
    cs->target = rc_xmalloc((size_t)n * N_TARGETS * sizeof(double));
    cs->label = rc_xmalloc((size_t)n * sizeof(int));
}

static void clip_set_init(clip_set *cs, const rc_config *cfg,
                          const rc_synth_config *sc, int split,
                          uint64_t first_index, int n, int seqs_per_clip) {
    int T = cfg->clip_steps;
    clip_set_alloc(cs, n, seqs_per_clip);
    for (int i = 0; i < n; i++) {
        cs->key[i] = rc_synth_clip_key(cfg->seed, split, first_index + (uint64_t)i);
        rc_synth_motion(sc, cs->key[i], &cs->motion[i]);
        rc_rng rng;
        rc_rng_seed(&rng, rc_hash_combine(cs->key[i], 0x7475706cULL /* "tupl" */));
        rc_sample_tuple(T, &rng, &cs->tuple[i]);
        double *y = cs->target + (size_t)i * N_TARGETS;
        y[0] = (double)T * cs->motion[i].vx;
        y[1] = (double)T * cs->motion[i].vy;
        y[2] = (double)T * cs->motion[i].omega;
        cs->label[i] = rc_motion_class(y[0], y[1], y[2]);
    }
}

/* The motions of src rendered on new textures of `family`: the same keys,
 * tuples, targets and labels (full sequences only). */
static void clip_set_retextured(clip_set *cs, const clip_set *src, int family) {
    int n = src->n;
    clip_set_alloc(cs, n, 1);
    memcpy(cs->key, src->key, (size_t)n * sizeof *cs->key);
    memcpy(cs->tuple, src->tuple, (size_t)n * sizeof *cs->tuple);
    memcpy(cs->target, src->target, (size_t)n * N_TARGETS * sizeof(double));
    memcpy(cs->label, src->label, (size_t)n * sizeof(int));
    for (int i = 0; i < n; i++)
        rc_synth_retexture(&src->motion[i], 1, family, &cs->motion[i]);
}

static void clip_set_free(clip_set *cs) {
    free(cs->key);
    free(cs->motion);
    free(cs->tuple);
    free(cs->target);
    free(cs->label);
}

/* ---- embedders --------------------------------------------------------------- */

typedef struct {
    rc_eval_row *row;
    rc_model *model;   /* NULL: pixel difference of the end frames */
    int dim;
    double *emb[3];    /* per clip set (held-out, probe, cross):
                          [n][seqs_per_clip][dim] */
} embedder;

void rc_pixel_diff(const float *first, const float *last, int C, int S,
                   int p, double *out) {
    for (int c = 0; c < C; c++)
        for (int by = 0; by < p; by++)
            for (int bx = 0; bx < p; bx++) {
                int y0 = by * S / p, y1 = (by + 1) * S / p;
                int x0 = bx * S / p, x1 = (bx + 1) * S / p;
                double s = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        size_t o = ((size_t)c * S + y) * S + x;
                        s += (double)last[o] - (double)first[o];
                    }
                out[((size_t)c * p + by) * p + bx] = s / ((y1 - y0) * (x1 - x0));
            }
}

static void pixel_diff_embed(const rc_synth_config *sc, int p, int T,
                             const float *frames, int n,
                             const rc_sequence *seqs, const int *clip_of,
                             double *out) {
    int C = sc->channels, S = sc->size;
    size_t fe = (size_t)C * S * S;
    int dim = C * p * p;
    #pragma omp parallel for schedule(static)
    for (int s = 0; s < n; s++) {
        const float *clip = frames + (size_t)clip_of[s] * (T + 1) * fe;
        const rc_sequence *q = &seqs[s];
        rc_pixel_diff(clip + (size_t)q->frames[0] * fe,
                       clip + (size_t)q->frames[q->n_frames - 1] * fe, C, S, p,
                       out + (size_t)s * dim);
    }
}

static int model_embed(rc_model *m, int n_clips, int T, const float *frames,
                       int n, const rc_sequence *seqs, const int *clip_of,
                       int dim, float *scratch, double *out) {
    if (rc_model_embed(m, n_clips, T, frames, n, seqs, clip_of, scratch) != 0)
        return -1;
    for (size_t i = 0; i < (size_t)n * dim; i++) out[i] = scratch[i];
    return 0;
}

/* Frames, sequence list and per-embedder outputs for one batch of clips. */
typedef struct {
    const rc_config *cfg;
    rc_synth_config sc;
    size_t clip_elems;
    float *frames;       /* [RC_EVAL_CLIP_BATCH][T+1][C][S][S] */
    rc_sequence *seqs;   /* [RC_EVAL_CLIP_BATCH * RC_SEQ_KINDS] */
    int *clip_of;
    float *scratch;      /* model output, [seqs][max dim] */
} batch_work;

static void render_clips(batch_work *w, const clip_set *cs, int start, int nb) {
    int T = w->cfg->clip_steps;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++)
        rc_synth_render(&w->sc, &cs->motion[start + b], 0, T + 1,
                        w->frames + (size_t)b * w->clip_elems);
}

/* The sequences of clips start..start+nb-1: all six kinds, or full only. */
static int collect_sequences(batch_work *w, const clip_set *cs, int start,
                             int nb) {
    int n = 0;
    for (int b = 0; b < nb; b++)
        for (int k = 0; k < cs->seqs_per_clip; k++) {
            w->seqs[n] = cs->tuple[start + b].seq[k];
            w->clip_of[n] = b;
            n++;
        }
    return n;
}

static int embed_clip_set(batch_work *w, const clip_set *cs, int set,
                          embedder *e, int n_emb) {
    int T = w->cfg->clip_steps;
    for (int start = 0; start < cs->n; start += RC_EVAL_CLIP_BATCH) {
        int nb = cs->n - start < RC_EVAL_CLIP_BATCH ? cs->n - start
                                                    : RC_EVAL_CLIP_BATCH;
        render_clips(w, cs, start, nb);
        int n = collect_sequences(w, cs, start, nb);
        for (int k = 0; k < n_emb; k++) {
            double *out = e[k].emb[set] +
                          (size_t)start * cs->seqs_per_clip * e[k].dim;
            if (!e[k].model) {
                pixel_diff_embed(&w->sc, w->cfg->pixel_baseline_size, T,
                                 w->frames, n, w->seqs, w->clip_of, out);
            } else if (model_embed(e[k].model, nb, T, w->frames, n, w->seqs,
                                   w->clip_of, e[k].dim, w->scratch, out) != 0) {
                return error_in(e[k].row->name);
            }
        }
    }
    return 0;
}

/* A diverged model gives NaN/inf embeddings, which would surface as a
 * LAPACK failure far from the cause: say so here instead. */
static int check_finite(const embedder *e, const clip_set *cs, int set) {
    static const char *const set_name[3] = {"held-out", "probe-training",
                                            "cross-texture"};
    size_t per_clip = (size_t)cs->seqs_per_clip * e->dim;
    for (int i = 0; i < cs->n; i++)
        for (size_t j = 0; j < per_clip; j++)
            if (!isfinite(e->emb[set][(size_t)i * per_clip + j]))
                return rc_set_error(
                    "%s: non-finite embedding for %s clip %d; the weights "
                    "have probably diverged (try a lower train.lr)",
                    e->row->name, set_name[set], i);
    return 0;
}

/* ---- scoring ----------------------------------------------------------------- */

/* R^2 per target of pred [n][N_TARGETS] for y [n][N_TARGETS]. */
static void r2_per_target(int n, const double *y, const double *pred,
                          double out[N_TARGETS]) {
    for (int t = 0; t < N_TARGETS; t++)
        out[t] = rc_r2(n, y + t, pred + t, N_TARGETS);
}

/* Ridge and kNN probes fit on the probe set, tested on the rows X [n][dim]
 * whose true motions are y. */
static int probe_r2(const rc_config *cfg, const clip_set *probe,
                    const double *probe_emb, int dim, int n, const double *X,
                    const double *y, double ridge_r2[N_TARGETS],
                    double knn_r2[N_TARGETS]) {
    double *pred = rc_xmalloc((size_t)n * N_TARGETS * sizeof(double));
    rc_ridge ridge;
    int status = rc_ridge_fit(&ridge, probe->n, dim, probe_emb, N_TARGETS,
                              probe->target, cfg->ridge_lambda);
    if (status == 0) {
        rc_ridge_predict(&ridge, n, X, pred);
        rc_ridge_free(&ridge);
        r2_per_target(n, y, pred, ridge_r2);
        status = rc_knn_regress(probe->n, dim, probe_emb, N_TARGETS,
                                probe->target, n, X, cfg->knn_k, pred);
    }
    if (status == 0) r2_per_target(n, y, pred, knn_r2);
    free(pred);
    return status;
}

/* R^2 of y (every stride-th value) against the least-squares line through
 * (x, y): the squared correlation. NAN when x or y does not vary. */
static double line_r2(int n, const double *x, int xstride, const double *y,
                      int stride) {
    double mx = 0, my = 0;
    for (int i = 0; i < n; i++) {
        mx += x[(size_t)i * xstride];
        my += y[(size_t)i * stride];
    }
    mx /= n;
    my /= n;
    double sxx = 0, sxy = 0, syy = 0;
    for (int i = 0; i < n; i++) {
        double dx = x[(size_t)i * xstride] - mx, dy = y[(size_t)i * stride] - my;
        sxx += dx * dx;
        sxy += dx * dy;
        syy += dy * dy;
    }
    return sxx > 0 && syy > 0 ? sxy * sxy / (sxx * syy) : NAN;
}

/* The head's raw outputs (the affine matrix, the Lie-algebra element, or
 * the field's node displacements) for each phi: raw [n][P]. Returns P, or 0
 * when the model has no action head. */
static int action_head_outputs(rc_model *m, int n, int dim, const double *phi,
                               double **raw_out) {
    const rc_param *pw = m ? rc_model_find_param(m, "action.weight") : NULL;
    const rc_param *pb = m ? rc_model_find_param(m, "action.bias") : NULL;
    if (!pw || !pb) return 0;
    size_t numel = rc_model_numel(m);
    float *w = rc_xmalloc(numel * sizeof(float));
    rc_model_backend(m)->to_host(w, rc_model_weights(m), numel * sizeof(float));
    int P = (int)pb->numel;
    double *raw = rc_xmalloc((size_t)n * P * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int k = 0; k < P; k++) {
            double v = w[pb->offset + k];
            for (int j = 0; j < dim; j++)
                v += (double)w[pw->offset + (size_t)k * dim + j] * phi[(size_t)i * dim + j];
            raw[(size_t)i * P + k] = (float)v; /* the head computes in float */
        }
    free(w);
    *raw_out = raw;
    return P;
}

int rc_action_head_motion(rc_model *m, int n, int dim, const double *phi,
                          double *motion) {
    double *raw;
    int P = action_head_outputs(m, n, dim, phi, &raw);
    if (!P) return 1;
    const rc_model_shape *s = rc_model_get_shape(m);
    for (int i = 0; i < n; i++) {
        const double *r = raw + (size_t)i * P;
        double a[6];
        if (s->action_kind == RC_ACTION_EXPM) {
            float theta[6], warp[6];
            for (int k = 0; k < 6; k++) theta[k] = (float)r[k];
            rc_action_warps(s->action_kind, 1, theta, warp);
            for (int k = 0; k < 6; k++) a[k] = warp[k];
        } else if (s->action_kind == RC_ACTION_GRID) { /* the closest affine map */
            float *node = rc_xmalloc((size_t)P * sizeof(float));
            for (int k = 0; k < P; k++) node[k] = (float)r[k];
            rc_action_affine_fit(s->action_kind, s->action_grid, node, a);
            free(node);
        } else {
            for (int k = 0; k < 6; k++) a[k] = r[k];
        }
        double half = 0.5 * s->image_size;
        motion[i * 3] = a[2] * half;
        motion[i * 3 + 1] = a[5] * half;
        motion[i * 3 + 2] = atan2(a[3] - a[1], a[0] + a[4]);
    }
    free(raw);
    return 0;
}

int rc_action_head_field(rc_model *m, int n, int dim, const double *phi,
                         double *field) {
    const rc_model_shape *s = m ? rc_model_get_shape(m) : NULL;
    if (!s || s->action_kind != RC_ACTION_GRID) return 1;
    double *raw;
    int P = action_head_outputs(m, n, dim, phi, &raw);
    if (!P) return 1;
    double half = 0.5 * s->image_size;
    for (size_t i = 0; i < (size_t)n * P; i++) field[i] = raw[i] * half;
    free(raw);
    return 0;
}

/* The action readout (eval.h): the head's warp of each held-out phi(full),
 * as translation in pixels and rotation angle, against the true motion. */
static void action_readout(rc_model *m, int n, int dim, const double *full,
                           const double *target, double r2[N_TARGETS]) {
    for (int t = 0; t < N_TARGETS; t++) r2[t] = NAN;
    double *motion = rc_xmalloc((size_t)n * 3 * sizeof(double));
    if (rc_action_head_motion(m, n, dim, full, motion) == 0)
        for (int t = 0; t < N_TARGETS; t++)
            r2[t] = line_r2(n, motion + t, 3, target + t, N_TARGETS);
    free(motion);
}

/* All metrics of one embedder. For pixel_diff the margin of the negative
 * fractions is in units of mean intensity change per cell, not embedding
 * units: those fractions are scale-dependent and say little on their own;
 * the ratios, R^2 and precision@k are comparable across rows. */
static int score(const rc_config *cfg, const clip_set *held,
                 const clip_set *probe, const clip_set *cross,
                 const embedder *e, int k) {
    rc_eval_row *row = e->row;
    int n = held->n, dim = e->dim;
    if (rc_group_errors(n, dim, e->emb[0], cfg->loss.margin, row->pos_ratio,
                        row->neg_beyond, &row->mean_dist_between) != 0)
        return error_in(row->name);

    double *full = rc_xmalloc((size_t)n * dim * sizeof(double));
    for (int i = 0; i < n; i++)
        memcpy(full + (size_t)i * dim, seq_emb(e->emb[0], dim, i, RC_SEQ_FULL),
               (size_t)dim * sizeof(double));
    int status = probe_r2(cfg, probe, e->emb[1], dim, n, full, held->target,
                          row->ridge_r2, row->knn_r2);
    if (status == 0)
        status = probe_r2(cfg, probe, e->emb[1], dim, cross->n, e->emb[2],
                          cross->target, row->cross_ridge_r2,
                          row->cross_knn_r2);
    if (status == 0)
        status = rc_precision_at_k(n, dim, full, held->label, k,
                                   &row->precision_at_k);
    if (status == 0)
        status = rc_cross_retrieval(n, dim, full, e->emb[2], held->label, k,
                                    &row->cross_precision_at_k,
                                    &row->cross_twin_recall);
    action_readout(e->model, n, dim, full, held->target, row->action_r2);
    free(full);
    return status == 0 ? 0 : error_in(row->name);
}

/* ---- rc_evaluate ------------------------------------------------------------- */

static int check_eval_config(const rc_config *cfg, rc_model *trained) {
    if (cfg->clip_steps < 2 || cfg->clip_steps > RC_MAX_T)
        return rc_set_error("eval: data.clip_steps %d is outside 2..%d",
                            cfg->clip_steps, RC_MAX_T);
    if (cfg->eval_clips < 2)
        return rc_set_error("eval: eval.clips is %d; distances between clips "
                            "need at least 2", cfg->eval_clips);
    if (cfg->probe_train_clips < 1)
        return rc_set_error("eval: eval.probe_train_clips is %d; the probe "
                            "needs at least 1 clip to fit", cfg->probe_train_clips);
    if (cfg->retrieval_k < 1)
        return rc_set_error("eval: eval.retrieval_k is %d; it must be >= 1",
                            cfg->retrieval_k);
    if (cfg->knn_k < 1 || cfg->knn_k > cfg->probe_train_clips)
        return rc_set_error("eval: eval.knn_k %d must be in 1..eval."
                            "probe_train_clips (%d)", cfg->knn_k,
                            cfg->probe_train_clips);
    if (cfg->pixel_baseline_size < 1 || cfg->pixel_baseline_size > cfg->image_size)
        return rc_set_error("eval: eval.pixel_baseline_size %d must be in "
                            "1..data.image_size (%d)", cfg->pixel_baseline_size,
                            cfg->image_size);
    if (trained) {
        const rc_model_shape *s = rc_model_get_shape(trained);
        if (s->image_size != cfg->image_size || s->in_channels != cfg->channels)
            return rc_set_error(
                "eval: the model takes %dx%d frames with %d channel(s) but the "
                "config renders %dx%d with %d; use the config it was trained with",
                s->image_size, s->image_size, s->in_channels, cfg->image_size,
                cfg->image_size, cfg->channels);
    }
    return 0;
}

static void add_embedder(embedder *e, rc_eval_row *row, const char *name,
                         rc_model *model, int dim, const clip_set *held,
                         const clip_set *probe) {
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", name);
    e->row = row;
    e->model = model;
    e->dim = dim;
    e->emb[0] = rc_xmalloc((size_t)held->n * held->seqs_per_clip * dim * sizeof(double));
    e->emb[1] = rc_xmalloc((size_t)probe->n * probe->seqs_per_clip * dim * sizeof(double));
    e->emb[2] = rc_xmalloc((size_t)held->n * dim * sizeof(double));
}

/* The ceiling of retrieval: precision@k of the held-out clips' true net
 * motion, each component scaled to unit variance. */
static int true_motion_precision(const clip_set *held, int k,
                                 rc_eval_report *out) {
    int n = held->n;
    double mean[N_TARGETS] = {0}, var[N_TARGETS] = {0};
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_TARGETS; c++) mean[c] += held->target[i * N_TARGETS + c] / n;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_TARGETS; c++) {
            double d = held->target[i * N_TARGETS + c] - mean[c];
            var[c] += d * d / n;
        }
    double *X = rc_xmalloc((size_t)n * N_TARGETS * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int c = 0; c < N_TARGETS; c++)
            X[i * N_TARGETS + c] = var[c] > 0 ? held->target[i * N_TARGETS + c] /
                                                    sqrt(var[c]) : 0;
    int status = rc_precision_at_k(n, N_TARGETS, X, held->label, k,
                                   &out->precision_true_motion);
    free(X);
    return status;
}

int rc_evaluate(const rc_config *cfg, rc_model *trained, rc_eval_report *out) {
    double t0 = rc_now();
    memset(out, 0, sizeof *out);
    if (check_eval_config(cfg, trained) != 0) return -1;
    int k = cfg->retrieval_k;
    if (k > cfg->eval_clips - 1) {
        rc_log("eval: eval.retrieval_k %d exceeds eval.clips - 1; using k = %d",
               k, cfg->eval_clips - 1);
        k = cfg->eval_clips - 1;
    }
    out->clips = cfg->eval_clips;
    out->probe_train_clips = cfg->probe_train_clips;
    out->k = k;
    out->knn_k = cfg->knn_k;
    out->cross_texture = cfg->cross_texture;
    out->margin = cfg->loss.margin;
    out->ridge_lambda = cfg->ridge_lambda;

    rc_model_shape shape;
    rc_model_shape_from_config(cfg, &shape);
    rc_model *random_init = rc_model_create(&shape, rc_backend_cpu());
    if (!random_init) return error_in("eval: random_init baseline");
    rc_model_init_weights(random_init, cfg->seed + 12345);

    batch_work w = {.cfg = cfg};
    rc_config_synth(cfg, &w.sc);
    clip_set held, probe, cross;
    clip_set_init(&held, cfg, &w.sc, RC_SPLIT_HELDOUT, 0, cfg->eval_clips,
                  RC_SEQ_KINDS);
    clip_set_init(&probe, cfg, &w.sc, RC_SPLIT_TRAIN, RC_EVAL_PROBE_INDEX_BASE,
                  cfg->probe_train_clips, 1);
    clip_set_retextured(&cross, &held, cfg->cross_texture);

    embedder e[RC_EVAL_MAX_ROWS];
    int n_emb = 0, model_dim = shape.embed_dim; /* widest model output */
    if (trained) {
        int dim = rc_model_get_shape(trained)->embed_dim;
        if (dim > model_dim) model_dim = dim;
        add_embedder(&e[n_emb], &out->rows[n_emb], "trained", trained, dim,
                     &held, &probe);
        n_emb++;
    }
    add_embedder(&e[n_emb], &out->rows[n_emb], "random_init", random_init,
                 shape.embed_dim, &held, &probe);
    n_emb++;
    int p = cfg->pixel_baseline_size;
    add_embedder(&e[n_emb], &out->rows[n_emb], "pixel_diff", NULL,
                 w.sc.channels * p * p, &held, &probe);
    n_emb++;

    int max_seqs = RC_EVAL_CLIP_BATCH * RC_SEQ_KINDS;
    w.clip_elems = (size_t)(cfg->clip_steps + 1) * w.sc.channels * w.sc.size * w.sc.size;
    w.frames = rc_xmalloc(RC_EVAL_CLIP_BATCH * w.clip_elems * sizeof(float));
    w.seqs = rc_xmalloc((size_t)max_seqs * sizeof *w.seqs);
    w.clip_of = rc_xmalloc((size_t)max_seqs * sizeof(int));
    w.scratch = rc_xmalloc((size_t)max_seqs * model_dim * sizeof(float));

    int status = embed_clip_set(&w, &held, 0, e, n_emb);
    if (status == 0) status = embed_clip_set(&w, &probe, 1, e, n_emb);
    if (status == 0) status = embed_clip_set(&w, &cross, 2, e, n_emb);
    for (int i = 0; i < n_emb && status == 0; i++) {
        status = check_finite(&e[i], &held, 0);
        if (status == 0) status = check_finite(&e[i], &probe, 1);
        if (status == 0) status = check_finite(&e[i], &cross, 2);
    }
    for (int i = 0; i < n_emb && status == 0; i++)
        status = score(cfg, &held, &probe, &cross, &e[i], k);
    out->n_rows = status == 0 ? n_emb : 0;
    if (status == 0) status = true_motion_precision(&held, k, out);

    for (int i = 0; i < n_emb; i++) {
        for (int set = 0; set < 3; set++) free(e[i].emb[set]);
    }
    free(w.frames);
    free(w.seqs);
    free(w.clip_of);
    free(w.scratch);
    clip_set_free(&held);
    clip_set_free(&probe);
    clip_set_free(&cross);
    rc_model_free(random_init);
    out->seconds = rc_now() - t0;
    return status;
}

/* ---- output ------------------------------------------------------------------ */

/* One line of the table: its label (printf format taking an int: k, knn_k or
 * nothing), which direction is better, and the value's offset in a row. */
typedef struct {
    const char *label;
    int label_arg;      /* 0 none, 1 retrieval k, 2 knn k */
    const char *better;
    size_t offset;      /* of a double in rc_eval_row */
} metric_line;

#define ROW(f) offsetof(rc_eval_row, f)
static const metric_line metric_lines[] = {
    {"full_skip d / d(clips)", 0, "lower", ROW(pos_ratio[0])},
    {"loop_ident d / d(clips)", 0, "lower", ROW(pos_ratio[1])},
    {"full_rev frac d > margin", 0, "higher", ROW(neg_beyond[0])},
    {"full_ident frac d > margin", 0, "higher", ROW(neg_beyond[1])},
    {"full_short frac d > margin", 0, "higher", ROW(neg_beyond[2])},
    {"ridge R^2 dx", 0, "higher", ROW(ridge_r2[0])},
    {"ridge R^2 dy", 0, "higher", ROW(ridge_r2[1])},
    {"ridge R^2 dtheta", 0, "higher", ROW(ridge_r2[2])},
    {"kNN(%d) R^2 dx", 2, "higher", ROW(knn_r2[0])},
    {"kNN(%d) R^2 dy", 2, "higher", ROW(knn_r2[1])},
    {"kNN(%d) R^2 dtheta", 2, "higher", ROW(knn_r2[2])},
    {"xtex ridge R^2 dx", 0, "higher", ROW(cross_ridge_r2[0])},
    {"xtex ridge R^2 dy", 0, "higher", ROW(cross_ridge_r2[1])},
    {"xtex ridge R^2 dtheta", 0, "higher", ROW(cross_ridge_r2[2])},
    {"xtex kNN(%d) R^2 dx", 2, "higher", ROW(cross_knn_r2[0])},
    {"xtex kNN(%d) R^2 dy", 2, "higher", ROW(cross_knn_r2[1])},
    {"xtex kNN(%d) R^2 dtheta", 2, "higher", ROW(cross_knn_r2[2])},
    {"action head R^2 dx", 0, "higher", ROW(action_r2[0])},
    {"action head R^2 dy", 0, "higher", ROW(action_r2[1])},
    {"action head R^2 dtheta", 0, "higher", ROW(action_r2[2])},
    {"precision@%d", 1, "higher", ROW(precision_at_k)},
    {"xtex precision@%d", 1, "higher", ROW(cross_precision_at_k)},
    {"xtex twin in top %d", 1, "higher", ROW(cross_twin_recall)},
    {"mean d(clips)", 0, "", ROW(mean_dist_between)},
};
#define N_METRIC_LINES ((int)(sizeof metric_lines / sizeof metric_lines[0]))

static double metric_value(const rc_eval_row *row, const metric_line *l) {
    return *(const double *)((const char *)row + l->offset);
}

void rc_eval_print_table(FILE *out, const rc_eval_report *r) {
    fprintf(out, "held-out clips %d, probes fit on %d training clips "
            "(ridge lambda %g, kNN k %d), margin %g, %.1f s\n"
            "xtex: the held-out motions on '%s' textures, probes still fit "
            "on the training clips\n", r->clips, r->probe_train_clips,
            r->ridge_lambda, r->knn_k, r->margin, r->seconds,
            rc_texture_family_names[r->cross_texture]);
    fprintf(out, "precision@%d of the true motion itself (what a perfect "
            "code scores): %.4f\n", r->k, r->precision_true_motion);
    fprintf(out, "%-28s %-7s", "metric", "better");
    for (int c = 0; c < r->n_rows; c++) fprintf(out, " %12s", r->rows[c].name);
    fputc('\n', out);
    for (int i = 0; i < N_METRIC_LINES; i++) {
        const metric_line *l = &metric_lines[i];
        char label[48];
        snprintf(label, sizeof label, l->label,
                 l->label_arg == 1 ? r->k : r->knn_k);
        fprintf(out, "%-28s %-7s", label, l->better);
        for (int c = 0; c < r->n_rows; c++) {
            double v = metric_value(&r->rows[c], l);
            if (isfinite(v)) fprintf(out, " %12.4f", v);
            else fprintf(out, " %12s", "n/a");
        }
        fputc('\n', out);
    }
}

/* JSON has no NaN or infinity: write null for them. */
static json_t *json_number(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *components_json(const double v[N_TARGETS]) {
    json_t *o = json_object();
    json_object_set_new(o, "dx", json_number(v[0]));
    json_object_set_new(o, "dy", json_number(v[1]));
    json_object_set_new(o, "dtheta", json_number(v[2]));
    return o;
}

static json_t *row_to_json(const rc_eval_row *row) {
    json_t *pos = json_object(), *neg = json_object();
    int ip = 0, in = 0;
    for (int kind = 0; kind < RC_TUPLE_PAIR_KINDS; kind++) {
        if (rc_pair_kind_positive[kind] && ip < 2)
            json_object_set_new(pos, rc_pair_kind_names[kind],
                                json_number(row->pos_ratio[ip++]));
        else if (!rc_pair_kind_positive[kind] && in < 3)
            json_object_set_new(neg, rc_pair_kind_names[kind],
                                json_number(row->neg_beyond[in++]));
    }
    json_t *probe = json_object(), *cross = json_object();
    json_object_set_new(probe, "ridge", components_json(row->ridge_r2));
    json_object_set_new(probe, "knn", components_json(row->knn_r2));
    json_object_set_new(cross, "ridge", components_json(row->cross_ridge_r2));
    json_object_set_new(cross, "knn", components_json(row->cross_knn_r2));
    json_object_set_new(cross, "precision_at_k",
                        json_number(row->cross_precision_at_k));
    json_object_set_new(cross, "twin_recall_at_k",
                        json_number(row->cross_twin_recall));
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(row->name));
    json_object_set_new(o, "positive_ratio", pos);
    json_object_set_new(o, "negative_beyond_margin", neg);
    json_object_set_new(o, "mean_dist_between_clips",
                        json_number(row->mean_dist_between));
    json_object_set_new(o, "probe_r2", probe);
    json_object_set_new(o, "action_r2", components_json(row->action_r2));
    json_object_set_new(o, "precision_at_k", json_number(row->precision_at_k));
    json_object_set_new(o, "cross_texture", cross);
    return o;
}

int rc_eval_write_json(const char *path, const rc_eval_report *r) {
    json_t *root = json_object();
    json_object_set_new(root, "clips", json_integer(r->clips));
    json_object_set_new(root, "probe_train_clips", json_integer(r->probe_train_clips));
    json_object_set_new(root, "k", json_integer(r->k));
    json_object_set_new(root, "knn_k", json_integer(r->knn_k));
    json_object_set_new(root, "cross_texture",
                        json_string(rc_texture_family_names[r->cross_texture]));
    json_object_set_new(root, "margin", json_number(r->margin));
    json_object_set_new(root, "ridge_lambda", json_number(r->ridge_lambda));
    json_object_set_new(root, "seconds", json_number(r->seconds));
    json_object_set_new(root, "precision_at_k_true_motion",
                        json_number(r->precision_true_motion));
    json_t *rows = json_array();
    for (int i = 0; i < r->n_rows; i++)
        json_array_append_new(rows, row_to_json(&r->rows[i]));
    json_object_set_new(root, "rows", rows);
    errno = 0;
    int status = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (status != 0)
        return rc_set_error("cannot write %s: %s", path,
                            errno ? strerror(errno) : "jansson write error");
    return 0;
}
