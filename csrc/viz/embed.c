/* embed.c: `recompose embed` -- the embedding of every clip (or sliding
 * window) as .npy, with a JSON sidecar naming each row's source and frames.
 *
 * With --rev it also embeds every window played backwards and measures
 * temporal order (SPEC section 7): how far phi(full) lies from phi(rev), and
 * how well a linear probe tells them apart on clips it was not fit on. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/eval.h"
#include "viz/viz_internal.h"

static const char *usage_embed =
    "usage: recompose embed CONFIG (--checkpoint FILE | --random-init)\n"
    "                       --out PREFIX [options]\n"
    "\n"
    "Embed every clip the config's data section names and write\n"
    "PREFIX.npy (float32 [N][D], NumPy format) and PREFIX.json (for each row:\n"
    "source, split, frames and times; true motion for synthetic clips).\n"
    "\n"
    "Synthetic data: the held-out clips `recompose eval` uses (eval.clips of\n"
    "them unless --clips). Shards (data.source = shards): sliding windows of\n"
    "clip_steps+1 frames, data.frame_stride records apart, over every\n"
    "sequence, centre cropped.\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   weights to load\n"
    "  --random-init       the untrained network instead (baseline)\n"
    "  --out PREFIX        output files PREFIX.npy, PREFIX.json\n"
    "  --set SEC.KEY=VAL   override a config key (repeatable)\n"
    "  --split S           train, val or all (default: val for synthetic,\n"
    "                      all for shards)\n"
    "  --clips N           at most N clips / windows\n"
    "  --stride N          records between window starts (shards; default 1)\n"
    "  --fps F             frame rate of the source, for times in the sidecar\n"
    "  --rev               also embed each clip reversed (PREFIX-rev.npy) and\n"
    "                      report temporal-order accuracy\n";

static double l2_dist(const float *a, const float *b, int D) {
    double s = 0;
    for (int k = 0; k < D; k++) {
        double d = (double)a[k] - b[k];
        s += d * d;
    }
    return sqrt(s);
}

/* Which rows fit the probe and which test it: the training/held-out split
 * when both are present, else the first and second half of the rows (for
 * windows of one video: earlier and later footage, overlapping at most at
 * the boundary). Returns a description of the choice. */
static const char *probe_partition(const rc_viz_clipset *cs, int *is_fit) {
    int n_train = 0;
    for (int i = 0; i < cs->n; i++) n_train += cs->clips[i].split == 0;
    if (n_train >= 2 && cs->n - n_train >= 2) {
        for (int i = 0; i < cs->n; i++) is_fit[i] = cs->clips[i].split == 0;
        return "fit on training-split clips, tested on held-out clips";
    }
    for (int i = 0; i < cs->n; i++) is_fit[i] = i < cs->n / 2;
    return "fit on the first half of the rows, tested on the second half";
}

/* Linear probe full (+1) versus rev (-1): ridge regression to the label,
 * accuracy of its sign on the test rows. NaN when too few rows. */
static double order_probe_accuracy(const rc_viz_clipset *cs, const float *full,
                                   const float *rev, int D, double lambda,
                                   const char **how) {
    int n = cs->n;
    int *is_fit = rc_xmalloc(sizeof(int) * (size_t)n);
    *how = probe_partition(cs, is_fit);
    double *X = rc_xmalloc(sizeof(double) * (size_t)2 * n * D);
    double *Y = rc_xmalloc(sizeof(double) * (size_t)2 * n);
    int n_fit = 0;
    for (int i = 0; i < n; i++) n_fit += is_fit[i];
    /* lay out: fit rows [0, 2*n_fit), test rows after */
    int fr = 0, tr = 2 * n_fit;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < 2; o++) {
            const float *e = (o == 0 ? full : rev) + (size_t)i * D;
            int row = is_fit[i] ? fr++ : tr++;
            for (int k = 0; k < D; k++) X[(size_t)row * D + k] = e[k];
            Y[row] = o == 0 ? 1.0 : -1.0;
        }
    double acc = NAN;
    int n_test = 2 * n - 2 * n_fit;
    rc_ridge ridge;
    if (n_fit >= 2 && n_test >= 2 &&
        rc_ridge_fit(&ridge, 2 * n_fit, D, X, 1, Y, lambda) == 0) {
        double *pred = rc_xmalloc(sizeof(double) * (size_t)n_test);
        rc_ridge_predict(&ridge, n_test, X + (size_t)2 * n_fit * D, pred);
        int right = 0;
        for (int r = 0; r < n_test; r++)
            right += (pred[r] > 0) == (Y[2 * n_fit + r] > 0);
        acc = (double)right / n_test;
        free(pred);
        rc_ridge_free(&ridge);
    }
    free(is_fit);
    free(X);
    free(Y);
    return acc;
}

/* Temporal-order measures into the sidecar, and printed. */
static json_t *temporal_order(const rc_config *c, const rc_viz_clipset *cs,
                              const float *full, const float *rev, int D) {
    int n = cs->n, beyond = 0;
    double sum_fr = 0;
    for (int i = 0; i < n; i++) {
        double d = l2_dist(full + (size_t)i * D, rev + (size_t)i * D, D);
        sum_fr += d;
        beyond += d > c->loss.margin;
    }
    /* mean distance between the full embeddings of different clips: the
     * scale against which d(full, rev) is judged (as rc_group_errors) */
    double sum_between = 0;
    long long pairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++, pairs++)
            sum_between += l2_dist(full + (size_t)i * D, full + (size_t)j * D, D);
    const char *how = "";
    double acc = order_probe_accuracy(cs, full, rev, D, c->ridge_lambda, &how);
    double mean_fr = sum_fr / n;
    double mean_between = pairs ? sum_between / (double)pairs : NAN;
    json_t *o = json_object();
    json_object_set_new(o, "mean_dist_full_rev", json_real(mean_fr));
    json_object_set_new(o, "mean_dist_between_clips",
                        isfinite(mean_between) ? json_real(mean_between)
                                               : json_null());
    json_object_set_new(o, "ratio_full_rev_to_between",
                        mean_between > 0 ? json_real(mean_fr / mean_between)
                                         : json_null());
    json_object_set_new(o, "fraction_beyond_margin",
                        json_real((double)beyond / n));
    json_object_set_new(o, "margin", json_real(c->loss.margin));
    json_object_set_new(o, "probe_accuracy",
                        isfinite(acc) ? json_real(acc) : json_null());
    json_object_set_new(o, "probe", json_string(how));
    printf("temporal order over %d clips:\n", n);
    printf("  mean d(full, rev)               %.4f\n", mean_fr);
    printf("  mean d(full, full') other clips %.4f (ratio %.3f)\n",
           mean_between, mean_fr / mean_between);
    printf("  d(full, rev) > margin %.2f       %.4f\n", c->loss.margin,
           (double)beyond / n);
    printf("  linear probe full vs rev        %.4f (%s)\n", acc, how);
    return o;
}

int rc_embed_main(int argc, char **argv) {
    viz_args a;
    int rc = viz_parse_args(argc, argv, usage_embed,
                            "--checkpoint --random-init --out --set --split "
                            "--clips --stride --fps --rev", &a);
    if (rc) return rc == 1 ? 0 : rc;
    rc_config c;
    rc_model *m;
    int64_t step;
    rc_viz_clipset cs;
    if (viz_open(&a, &c, 0, 0, &m, &step, &cs) != 0) return viz_fail(&a);
    int D = c.embed_dim;
    float *emb = rc_xmalloc(sizeof(float) * (size_t)cs.n * D);
    float *rev = a.rev ? rc_xmalloc(sizeof(float) * (size_t)cs.n * D) : NULL;
    double t0 = rc_now();
    int status = rc_viz_embed_clips(m, &cs, RC_SEQ_FULL, emb);
    if (status == 0 && rev) status = rc_viz_embed_clips(m, &cs, RC_SEQ_REV, rev);
    json_t *side = NULL;
    char path[2048];
    int64_t shape[2] = {cs.n, D};
    if (status == 0) {
        snprintf(path, sizeof path, "%s.npy", a.out);
        status = rc_npy_write_f32(path, 2, shape, emb);
    }
    if (status == 0 && rev) {
        snprintf(path, sizeof path, "%s-rev.npy", a.out);
        status = rc_npy_write_f32(path, 2, shape, rev);
    }
    if (status == 0) {
        side = viz_sidecar_header(&a, &c, &cs, step);
        json_object_set_new(side, "npy", json_string("full"));
        json_object_set_new(side, "sequence",
                            json_string("full: frames 0..T of each clip"));
        if (rev)
            json_object_set_new(side, "temporal_order",
                                temporal_order(&c, &cs, emb, rev, D));
        json_t *items = json_array();
        for (int i = 0; i < cs.n; i++)
            json_array_append_new(items, viz_clip_json(&cs, i));
        json_object_set_new(side, "items", items);
        snprintf(path, sizeof path, "%s.json", a.out);
        status = viz_write_json(path, side);
        json_decref(side);
    }
    if (status == 0)
        rc_log("embedded %d clips (D = %d) in %.1f s: %s.npy, %s.json", cs.n,
               D, rc_now() - t0, a.out, a.out);
    free(emb);
    free(rev);
    rc_viz_clips_free(&cs);
    rc_model_free(m);
    return status == 0 ? 0 : viz_fail(&a);
}
