/* eval.h: how we know the embedding learned motion (SPEC section 7).
 *
 * rc_evaluate() measures, on held-out synthetic clips, the trained model
 * beside two baselines: the same architecture at random initialisation, and
 * the raw pixel difference of a sequence's end frames, box-downsampled.
 * For every one of them:
 *
 *   group-property errors  positive pairs: mean d / mean d between the full
 *                          embeddings of different clips (lower is better);
 *                          negative pairs: fraction with d > loss.margin
 *                          (higher is better)
 *   probes                 phi(full) -> net motion (dx, dy, dtheta), fit
 *                          on training-split clips, R^2 per component on
 *                          the held-out clips: a linear probe (ridge
 *                          regression) and a non-linear one (k-nearest-
 *                          neighbour regression, eval.knn_k). A component
 *                          decodable by neither is not in the code.
 *   across scenes          the held-out motions rendered again on textures
 *                          of another family (eval.cross_texture): the same
 *                          two probes (still fit on the training family)
 *                          tested there, and retrieval with queries from the
 *                          held-out clips and the gallery from their
 *                          re-textured twins. A code private to each clip
 *                          scores near zero here.
 *   retrieval              precision@k of nearest neighbours (Euclidean)
 *                          under 16 motion classes: 8 bins of translation
 *                          direction x rotation sign
 *   action readout         (a model with an action head, loss.w_act) the
 *                          head's own warp of phi(full), read directly:
 *                          R^2 of dx, dy, dtheta against the warp's
 *                          translation (pixels) and rotation angle, each
 *                          by a one-variable least-squares line (the warp
 *                          maps output to source pixels, so its signs and
 *                          scale are fitted, nothing else). n/a otherwise.
 *
 * The metric functions work on plain double arrays and are public so that
 * tests can check them against independent oracles.
 */
#ifndef RECOMPOSE_EVAL_H
#define RECOMPOSE_EVAL_H

#include <stdio.h>

#include "recompose/config.h"
#include "recompose/model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RC_EVAL_MAX_ROWS 3
#define RC_EVAL_CLIP_BATCH 64 /* clips embedded per rc_model_embed call */
/* Probe-fitting clips are training-split clips from this index on. The
 * trainer uses indices step * batch + b, which stay far below it for any
 * practical run (1e9 clips), so the probe never sees a clip trained on. */
#define RC_EVAL_PROBE_INDEX_BASE 1000000000ULL

/* Number of retrieval classes: 8 direction bins x 2 rotation signs. */
#define RC_EVAL_CLASSES 16

typedef struct {
    char name[32];               /* "trained", "random_init", "pixel_diff" */
    double pos_ratio[2];         /* full_skip, loop_ident: mean d / mean d
                                    between full embeddings of different clips */
    double neg_beyond[3];        /* full_rev, full_ident, full_short:
                                    fraction of clips with d > margin */
    double mean_dist_between;    /* the denominator of pos_ratio */
    /* R^2 of dx, dy, dtheta on held-out clips; probes fit on training clips */
    double ridge_r2[3];          /* linear probe */
    double knn_r2[3];            /* k-nearest-neighbour regression */
    double cross_ridge_r2[3];    /* the same probes, tested on the held-out */
    double cross_knn_r2[3];      /*   motions on eval.cross_texture textures */
    double precision_at_k;       /* retrieval among held-out clips */
    double cross_precision_at_k; /* queries held-out, gallery their twins */
    double cross_twin_recall;    /* share of queries whose own twin (same
                                    motion, other texture) is in the top k */
    double action_r2[3];         /* the action head's warp against the true
                                    motion, per component; NAN without head */
} rc_eval_row;

typedef struct {
    int n_rows;
    rc_eval_row rows[RC_EVAL_MAX_ROWS];
    int clips;              /* held-out clips */
    int probe_train_clips;  /* training-split clips the probe is fit on */
    int k;                  /* retrieval k actually used */
    int knn_k;              /* neighbours of the kNN probe */
    int cross_texture;      /* enum rc_texture_family of the twins */
    double margin;          /* loss.margin of the negative fractions */
    double ridge_lambda;    /* eval.ridge_lambda */
    double seconds;         /* wall time of rc_evaluate */
    /* precision@k of the true net motion itself (each component scaled to
     * unit variance): what a perfect motion code would score, since clips
     * near a class boundary have neighbours of the next class */
    double precision_true_motion;
} rc_eval_report;

/* Evaluate `trained` (NULL to skip that row) and the two baselines with the
 * [eval], [data] and [loss] settings of cfg. `trained` must live on the CPU
 * backend (frames are handed to rc_model_embed in host memory) and match the
 * config's image size and channels. Deterministic: for a given thread count
 * a pure function of cfg and the weights. Returns 0, or -1 with an error set. */
int rc_evaluate(const rc_config *cfg, rc_model *trained, rc_eval_report *out);

/* The action head's warp of each embedding phi [n][dim] (the affine map
 * closest to it, for a field) as motion [n][3]: translation dx, dy in
 * pixels of the model's data.image_size frames and rotation angle in
 * radians, the conventions of the synthetic clips' net motion. Returns 0,
 * or 1 (nothing written) when the model has no action head. */
int rc_action_head_motion(rc_model *m, int n, int dim, const double *phi,
                          double *motion);

/* A field's head (loss.act_kind = grid) as it is: the displacements of its
 * G x G nodes for each phi, field [n][2][G][G] (the x plane, then y; node
 * (i, j) at x = -1 + 2i/(G-1), y = -1 + 2j/(G-1) of the frame), in pixels
 * of the model's frames, signed as rc_action_head_motion's translation (a
 * field whose nodes all hold d reads as the motion d there). Returns 0, or
 * 1 (nothing written) without a field head. */
int rc_action_head_field(rc_model *m, int n, int dim, const double *phi,
                         double *field);

/* Aligned table: one line per metric, one column per row of the report.
 * Non-finite values (e.g. R^2 of a target with no variance) print as n/a. */
void rc_eval_print_table(FILE *out, const rc_eval_report *r);

/* The report as JSON (non-finite values as null). Returns 0 or -1. */
int rc_eval_write_json(const char *path, const rc_eval_report *r);

/* ---- metric building blocks ------------------------------------------------ */

/* Ridge regression with intercept on standardised features. Fitting
 * minimises (1/n) sum_i ||y_i - b - W^T z_i||^2 + lambda ||W||^2, where
 * z = (x - mean) * inv_scale with the fit data's mean and standard deviation:
 * lambda is a per-sample penalty in standardised units, so its meaning does
 * not depend on the number of fit samples or the scale of the features.
 * The intercept is not penalised (b = mean of y). Features that are constant
 * on the fit data get inv_scale 0 and weight 0. */
typedef struct {
    int dim, n_targets;
    double *mean;       /* [dim] */
    double *inv_scale;  /* [dim] 1/std, 0 for constant features */
    double *weights;    /* [dim][n_targets], standardised units */
    double *intercept;  /* [n_targets] */
} rc_ridge;

/* X [n][dim], Y [n][n_targets] row-major. lambda >= 0 (with lambda = 0 the
 * fit needs n > number of non-constant features). Returns 0 or -1. */
int rc_ridge_fit(rc_ridge *r, int n, int dim, const double *X, int n_targets,
                 const double *Y, double lambda);
/* Y_out [n][n_targets] = b + W^T z(X). */
void rc_ridge_predict(const rc_ridge *r, int n, const double *X, double *Y_out);
void rc_ridge_free(rc_ridge *r);

/* Coefficient of determination of pred for y (both [n], element stride
 * `stride`): 1 - SS_res / SS_tot with SS_tot about the mean of y. NaN when y
 * is constant (R^2 undefined). */
double rc_r2(int n, const double *y, const double *pred, int stride);

/* Mean over the n points of X [n][dim] of the fraction of its k nearest
 * neighbours (Euclidean, the point itself excluded, ties broken by lower
 * index) that share its label. Needs 1 <= k <= n - 1. Returns 0 or -1. */
int rc_precision_at_k(int n, int dim, const double *X, const int *labels,
                      int k, double *out);

/* k-nearest-neighbour regression: Y_out [n][n_targets] is the mean target
 * of the k points of X_fit [n_fit][dim] nearest (Euclidean, ties by lower
 * index) to each row of X [n][dim]. Needs 1 <= k <= n_fit. Returns 0 or -1. */
int rc_knn_regress(int n_fit, int dim, const double *X_fit, int n_targets,
                   const double *Y_fit, int n, const double *X, int k,
                   double *Y_out);

/* Retrieval across two renderings of the same n motions: query i is Xq row
 * i, the gallery is Xg [n][dim] whose row i is query i's twin; labels [n]
 * are shared. precision: mean share of each query's k nearest gallery rows
 * with its label; twin_recall: share of queries whose twin is among them.
 * Needs 1 <= k <= n. Returns 0 or -1. */
int rc_cross_retrieval(int n, int dim, const double *Xq, const double *Xg,
                       const int *labels, int k, double *precision,
                       double *twin_recall);

/* Group-property errors from embeddings emb [n][RC_SEQ_KINDS][dim] (one
 * tuple per clip, rows in enum rc_seq_kind order); n >= 2. pos_ratio[] and
 * neg_beyond[] follow the positive and the negative kinds of enum
 * rc_pair_kind in order. mean_between (nullable) receives the mean distance
 * between the full embeddings of all pairs of different clips; when it is 0
 * the ratios are NaN. Returns 0 or -1. */
int rc_group_errors(int n, int dim, const double *emb, double margin,
                    double pos_ratio[2], double neg_beyond[3],
                    double *mean_between);

/* The pixel-difference baseline of a sequence: the box average of its last
 * minus its first frame (both [C][S][S]) into p x p cells per channel,
 * out [C][p][p]. Cells have integer bounds floor(b*S/p)..floor((b+1)*S/p),
 * so S need not be a multiple of p. A sequence that ends where it starts
 * gives exactly 0. */
void rc_pixel_diff(const float *first, const float *last, int C, int S, int p,
                   double *out);

/* Retrieval class of a net motion: direction bin of atan2(dy, dx) (8 bins of
 * 45 degrees starting at -180) times 2, plus 1 if dtheta >= 0. */
int rc_motion_class(double dx, double dy, double dtheta);

#ifdef __cplusplus
}
#endif
#endif
