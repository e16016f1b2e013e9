/* embed.c: `recompose embed` -- the embedding of every clip (or sliding
 * window) as .npy, with a JSON sidecar naming each row's source and frames.
 *
 * With --rev it also embeds every window played backwards and measures,
 * per window, how far phi(full) lies from phi(rev) against the margin and
 * the median distance between windows (SPEC section 7). --pixel-diff writes
 * the pixel-difference baseline instead of a model's embedding, so that the
 * flow-oracle probes (tools/flow_oracle.py) compare it on the same windows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/eval.h"
#include "viz/viz_internal.h"

static const char *usage_embed =
    "usage: recompose embed CONFIG (--checkpoint FILE | --random-init |\n"
    "                       --pixel-diff)\n"
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
    "  --pixel-diff        the pixel-difference baseline instead of a model:\n"
    "                      f_T - f_0 box averaged to eval.pixel_baseline_size\n"
    "  --out PREFIX        output files PREFIX.npy, PREFIX.json\n"
    "  --set SEC.KEY=VAL   override a config key (repeatable)\n"
    "  --split S           train, val or all (default: val for synthetic,\n"
    "                      all for shards)\n"
    "  --clips N           at most N clips / windows\n"
    "  --stride N          records between window starts (shards; default 1)\n"
    "  --fps F             frame rate of the source, for times in the sidecar\n"
    "  --rev               also embed each clip reversed (PREFIX-rev.npy) and\n"
    "                      report, per window, d(full, rev) against the margin\n"
    "                      and the median distance between windows\n";

static double l2_dist(const float *a, const float *b, int D) {
    double s = 0;
    for (int k = 0; k < D; k++) {
        double d = (double)a[k] - b[k];
        s += d * d;
    }
    return sqrt(s);
}

#define MEDIAN_MAX_PAIRS 4000000 /* 32 MB of distances */

/* Median of d(full_i, full_j) over all pairs of different windows (over
 * every k-th pair when there are more than MEDIAN_MAX_PAIRS): the typical
 * distance between two motions, against which d(full, rev) is judged. NaN
 * with fewer than 2 rows. */
static double median_between(const float *full, int n, int D) {
    if (n < 2) return NAN;
    size_t all = (size_t)n * (n - 1) / 2, p = 0, q = 0;
    size_t every = all > MEDIAN_MAX_PAIRS ? all / MEDIAN_MAX_PAIRS + 1 : 1;
    size_t pairs = (all + every - 1) / every;
    double *d = rc_xmalloc(pairs * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++, q++)
            if (q % every == 0 && p < pairs)
                d[p++] = l2_dist(full + (size_t)i * D, full + (size_t)j * D, D);
    double m = rc_median(d, p);
    free(d);
    return m;
}

/* Fractions of windows (of one split, or all with split < 0) whose
 * d(full, rev) exceeds the margin, the median, and both. */
static json_t *order_fractions(const rc_viz_clipset *cs, const double *d,
                               double margin, double median, int split,
                               double out[3]) {
    int n = 0, m = 0, md = 0, both = 0;
    for (int i = 0; i < cs->n; i++) {
        if (split >= 0 && cs->clips[i].split != split) continue;
        n++;
        m += d[i] > margin;
        md += d[i] > median;
        both += d[i] > margin && d[i] > median;
    }
    json_t *o = json_object();
    json_object_set_new(o, "windows", json_integer(n));
    out[0] = n ? (double)m / n : NAN;
    out[1] = n ? (double)md / n : NAN;
    out[2] = n ? (double)both / n : NAN;
    static const char *const key[3] = {"beyond_margin", "beyond_median",
                                       "beyond_both"};
    for (int k = 0; k < 3; k++)
        json_object_set_new(o, key[k], n ? json_real(out[k]) : json_null());
    return o;
}

/* Full versus reversed, per window (SPEC section 7): d(phi(full),
 * phi(rev)) against the margin and against the median distance between
 * windows, into each item of the sidecar and summarised per split. (No
 * linear classifier pooled over windows: for a code with phi(rev) near the
 * inverse of phi(full) it is at chance by design.) */
static json_t *full_vs_reversed(const rc_config *c, const rc_viz_clipset *cs,
                                const float *full, const float *rev, int D,
                                json_t *items) {
    int n = cs->n;
    double *d = rc_xmalloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n; i++)
        d[i] = l2_dist(full + (size_t)i * D, rev + (size_t)i * D, D);
    double median = median_between(full, n, D), margin = c->loss.margin;
    for (int i = 0; i < n; i++) {
        json_t *it = json_array_get(items, (size_t)i);
        json_object_set_new(it, "d_full_rev", json_real(d[i]));
        json_object_set_new(it, "beyond_margin", json_boolean(d[i] > margin));
        json_object_set_new(it, "beyond_median", json_boolean(d[i] > median));
    }
    double *sorted = rc_xmalloc(sizeof(double) * (size_t)n);
    memcpy(sorted, d, sizeof(double) * (size_t)n);
    double median_fr = rc_median(sorted, (size_t)n);
    json_t *o = json_object();
    json_object_set_new(o, "margin", json_real(margin));
    json_object_set_new(o, "median_dist_between_windows",
                        isfinite(median) ? json_real(median) : json_null());
    json_object_set_new(o, "median_dist_full_rev", json_real(median_fr));
    printf("full versus reversed over %d windows: median d(full, rev) %.4f, "
           "margin %.2f, median d between windows %.4f\n", n, median_fr,
           margin, median);
    printf("  %-10s %8s %14s %14s %12s\n", "split", "windows", "d > margin",
           "d > median", "both");
    static const char *const name[3] = {"all", "train", "heldout"};
    for (int split = -1; split <= 1; split++) {
        double f[3];
        json_t *fr = order_fractions(cs, d, margin, median, split, f);
        int nw = (int)json_integer_value(json_object_get(fr, "windows"));
        json_object_set_new(o, name[split + 1], fr);
        if (nw > 0)
            printf("  %-10s %8d %14.4f %14.4f %12.4f\n", name[split + 1], nw,
                   f[0], f[1], f[2]);
    }
    free(sorted);
    free(d);
    return o;
}

/* The pixel-difference baseline for every clip: f_T - f_0 box averaged
 * (eval.pixel_baseline_size), or f_0 - f_T for the reversed sequence. */
static void pixel_diff_clips(const rc_config *c, const rc_viz_clipset *cs,
                             int reversed, float *out) {
    int p = c->pixel_baseline_size, D = cs->C * p * p;
    size_t fe = (size_t)cs->C * cs->S * cs->S;
    double *v = rc_xmalloc(sizeof(double) * (size_t)D);
    for (int i = 0; i < cs->n; i++) {
        const float *clip = cs->frames + (size_t)i * (cs->T + 1) * fe;
        const float *first = clip, *last = clip + (size_t)cs->T * fe;
        if (reversed) {
            const float *t = first;
            first = last;
            last = t;
        }
        rc_pixel_diff(first, last, cs->C, cs->S, p, v);
        for (int k = 0; k < D; k++) out[(size_t)i * D + k] = (float)v[k];
    }
    free(v);
}

/* With an action head: each item's "action_motion", the head's warp of its
 * phi(full) as dx, dy (pixels of the network's frames) and dtheta
 * (radians), the direct readout a flow oracle compares with its global
 * motion (tools/flow_oracle.py probe); with a field's head also its
 * "action_field", the nodes' displacements, which the oracle compares with
 * the flow's local motion. */
static void add_action_motion(json_t *side, json_t *items, rc_model *m,
                              const rc_viz_clipset *cs, const float *emb,
                              int D) {
    double *phi = rc_xmalloc((size_t)cs->n * D * sizeof(double));
    double *motion = rc_xmalloc((size_t)cs->n * 3 * sizeof(double));
    for (size_t i = 0; i < (size_t)cs->n * D; i++) phi[i] = emb[i];
    if (rc_action_head_motion(m, cs->n, D, phi, motion) == 0) {
        json_object_set_new(side, "action_motion",
                            json_string("the action head's warp of phi(full): "
                                        "dx, dy in pixels of the network's "
                                        "frames, dtheta in radians"));
        for (int i = 0; i < cs->n; i++) {
            const double *v = motion + (size_t)i * 3;
            json_object_set_new(json_array_get(items, (size_t)i), "action_motion",
                                json_pack("{s:f, s:f, s:f}", "dx", v[0], "dy",
                                          v[1], "dtheta", v[2]));
        }
    }
    const rc_model_shape *sh = rc_model_get_shape(m);
    int G = sh->action_grid, P = 2 * G * G;
    double *field = G > 0 ? rc_xmalloc((size_t)cs->n * P * sizeof(double)) : NULL;
    if (field && rc_action_head_field(m, cs->n, D, phi, field) == 0) {
        json_object_set_new(side, "action_field",
                            json_pack("{s:s, s:i}", "about",
                                      "the field head's node displacements "
                                      "(dx, then dy; row-major G x G nodes "
                                      "from corner to corner of the frame), "
                                      "pixels of the network's frames",
                                      "grid", G));
        for (int i = 0; i < cs->n; i++) {
            json_t *dx = json_array(), *dy = json_array();
            for (int k = 0; k < G * G; k++) {
                json_array_append_new(dx, json_real(field[(size_t)i * P + k]));
                json_array_append_new(dy, json_real(field[(size_t)i * P + G * G + k]));
            }
            json_object_set_new(json_array_get(items, (size_t)i), "action_field",
                                json_pack("{s:o, s:o}", "dx", dx, "dy", dy));
        }
    }
    free(field);
    free(phi);
    free(motion);
}

int rc_embed_main(int argc, char **argv) {
    viz_args a;
    int rc = viz_parse_args(argc, argv, usage_embed,
                            "--checkpoint --random-init --out --set --split "
                            "--clips --stride --fps --rev --pixel-diff", &a);
    if (rc) return rc == 1 ? 0 : rc;
    rc_config c;
    rc_model *m;
    int64_t step;
    rc_viz_clipset cs;
    if (viz_open(&a, &c, 0, 0, &m, &step, &cs) != 0) return viz_fail(&a);
    int D = a.pixel_diff ? cs.C * c.pixel_baseline_size * c.pixel_baseline_size
                         : c.embed_dim;
    float *emb = rc_xmalloc(sizeof(float) * (size_t)cs.n * D);
    float *rev = a.rev ? rc_xmalloc(sizeof(float) * (size_t)cs.n * D) : NULL;
    double t0 = rc_now();
    int status = 0;
    if (a.pixel_diff) {
        pixel_diff_clips(&c, &cs, 0, emb);
        if (rev) pixel_diff_clips(&c, &cs, 1, rev);
    } else {
        status = rc_viz_embed_clips(m, &cs, RC_SEQ_FULL, emb);
        if (status == 0 && rev)
            status = rc_viz_embed_clips(m, &cs, RC_SEQ_REV, rev);
    }
    json_t *side = NULL;
    char path[2048];
    int64_t shape[2] = {cs.n, D};
    if (status == 0) { /* the prefix's folder */
        rc_path_dir(a.out, path, sizeof path);
        status = rc_make_dirs(path);
    }
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
        json_object_set_new(side, "embedding",
                            json_string(a.pixel_diff ? "pixel_diff" : "model"));
        json_object_set_new(side, "dim", json_integer(D));
        json_t *items = json_array();
        for (int i = 0; i < cs.n; i++)
            json_array_append_new(items, viz_clip_json(&cs, i));
        if (!a.pixel_diff) add_action_motion(side, items, m, &cs, emb, D);
        if (rev)
            json_object_set_new(side, "full_vs_reversed",
                                full_vs_reversed(&c, &cs, emb, rev, D, items));
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
