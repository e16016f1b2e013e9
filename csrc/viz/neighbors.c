/* neighbors.c: `recompose neighbors` -- for query clips, the k nearest clips
 * in embedding space (Euclidean), as JSON and as one contact sheet per query:
 * a row per clip (the query first), its frames left to right, then the
 * signed difference of its last and first frame (gray = no change), which
 * shows the motion in a still picture. A bar left of each row marks the
 * query (blue) and, for synthetic clips, whether a neighbour shares the
 * query's motion class (green) or not (red); real-video neighbours get gray.
 * Where the build draws text (cairo), a caption right of each row says what
 * it is, its distance to the query and where the clip comes from. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/eval.h"
#include "viz/viz_internal.h"

static const char *usage_neighbors =
    "usage: recompose neighbors CONFIG (--checkpoint FILE | --random-init)\n"
    "                           --out DIR [options]\n"
    "\n"
    "Embed the clips the config names (as `recompose embed`), find the k\n"
    "nearest clips of each query and write DIR/neighbors.json and a contact\n"
    "sheet DIR/query-ROW.png per query (rows: the query, then its neighbours\n"
    "nearest first; columns: the frames, then last minus first frame;\n"
    "captions: distance and source of each row).\n"
    "For synthetic clips it also reports precision@k of the motion classes\n"
    "over all clips.\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   weights to load\n"
    "  --random-init       the untrained network instead (baseline)\n"
    "  --out DIR           output directory (created if missing)\n"
    "  --set SEC.KEY=VAL   override a config key (repeatable)\n"
    "  --k K               neighbours per query (default 5)\n"
    "  --queries N         N queries spread evenly over the rows (default 8)\n"
    "  --items I,J,...     these rows as queries instead\n"
    "  --split S           train, val or all (default: val for synthetic,\n"
    "                      all for shards)\n"
    "  --clips N           at most N clips / windows\n"
    "  --stride N          records between window starts (shards; default 1)\n"
    "  --fps F             frame rate of the source, for times in the JSON\n"
    "  --allow-overlap     let windows that share frames with the query be\n"
    "                      its neighbours (by default they are left out:\n"
    "                      they would be found for their pixels, not motion)\n"
    "  --zoom Z            frame magnification in the sheets (default 2)\n";

/* 1 if clip j may be a neighbour of query q. */
static int eligible(const rc_viz_clipset *cs, int q, int j, int allow_overlap) {
    if (j == q) return 0;
    if (cs->synthetic || allow_overlap) return 1;
    const rc_viz_clip *a = &cs->clips[q], *b = &cs->clips[j];
    if (a->sequence != b->sequence) return 1;
    int span = cs->T * cs->frame_stride;
    return abs(a->start - b->start) > span;
}

/* The k nearest eligible rows of q, nearest first (ties: lower row).
 * Returns how many were found (fewer than k when few are eligible). */
static int nearest(const rc_viz_clipset *cs, const float *emb, int D, int q,
                   int k, int allow_overlap, int *idx, double *dist) {
    int found = 0;
    for (int j = 0; j < cs->n; j++) {
        if (!eligible(cs, q, j, allow_overlap)) continue;
        double s = 0;
        for (int d = 0; d < D; d++) {
            double x = (double)emb[(size_t)q * D + d] - emb[(size_t)j * D + d];
            s += x * x;
        }
        s = sqrt(s);
        /* insertion into the sorted top-k; equal distances keep row order */
        if (found == k && s >= dist[k - 1]) continue;
        int pos = found < k ? found : k - 1;
        while (pos > 0 && dist[pos - 1] > s) {
            idx[pos] = idx[pos - 1];
            dist[pos] = dist[pos - 1];
            pos--;
        }
        idx[pos] = j;
        dist[pos] = s;
        if (found < k) found++;
    }
    return found;
}

typedef struct {
    int width, height;
    uint8_t *rgb;
} canvas;

static void fill_rect(canvas *cv, int x0, int y0, int w, int h,
                      const uint8_t col[3]) {
    for (int y = y0; y < y0 + h && y < cv->height; y++)
        for (int x = x0; x < x0 + w && x < cv->width; x++)
            memcpy(cv->rgb + ((size_t)y * cv->width + x) * 3, col, 3);
}

/* Blit a [C][S][S] image (values mapped by scale/offset to [0, 1]) zoomed. */
static void blit(canvas *cv, int x0, int y0, int S, int C, int zoom,
                 const float *img, float scale, float offset) {
    size_t plane = (size_t)S * S;
    for (int y = 0; y < S * zoom; y++)
        for (int x = 0; x < S * zoom; x++) {
            size_t p = (size_t)(y / zoom) * S + (size_t)(x / zoom);
            uint8_t *o = cv->rgb + ((size_t)(y0 + y) * cv->width + x0 + x) * 3;
            for (int c = 0; c < 3; c++) {
                float v = img[(C == 3 ? (size_t)c : 0) * plane + p] * scale +
                          offset;
                v = v < 0 ? 0 : v > 1 ? 1 : v;
                o[c] = (uint8_t)(v * 255.0f + 0.5f);
            }
        }
}

#define SHEET_GAP 4
#define SHEET_BAR 8
#define SHEET_TEXT 380 /* caption column, where the build can draw text */

/* The caption of sheet row r (0: the query, r: its r-th neighbour): what
 * the row is, where the clip comes from, and its distance. */
static int row_captions(const rc_viz_clipset *cs, int q, int row, int r,
                        double dist, int x, int y, rc_text *out) {
    int n = 0;
    if (r == 0)
        snprintf(out[n].text, sizeof out[n].text, "query (row %d)", row);
    else
        snprintf(out[n].text, sizeof out[n].text,
                 "neighbour %d: distance %.4g%s", r, dist,
                 !cs->synthetic ? ""
                 : cs->clips[row].motion_class == cs->clips[q].motion_class
                     ? ", same motion class" : ", other motion class");
    out[n].bold = r == 0;
    out[n].x = x;
    out[n++].y = y;
    rc_viz_clip_caption(cs, row, out[n].text, sizeof out[n].text);
    out[n].bold = 0;
    out[n].x = x;
    out[n++].y = y + 16;
    return n;
}

static int write_sheet(const char *path, const rc_viz_clipset *cs, int q,
                       const int *idx, const double *dist, int found,
                       int zoom) {
    int S = cs->S, C = cs->C, T = cs->T, cell = S * zoom;
    size_t fe = (size_t)C * S * S, clip_elems = (size_t)(T + 1) * fe;
    int text = rc_viz_can_draw_text();
    int frames_w = SHEET_BAR + SHEET_GAP + (T + 2) * (cell + SHEET_GAP);
    rc_text *captions = rc_xmalloc((size_t)(found + 1) * 2 * sizeof *captions);
    int n_captions = 0;
    canvas cv;
    cv.width = frames_w + (text ? SHEET_TEXT : 0);
    cv.height = (found + 1) * (cell + SHEET_GAP) + SHEET_GAP;
    cv.rgb = rc_xmalloc((size_t)cv.width * cv.height * 3);
    memset(cv.rgb, 255, (size_t)cv.width * cv.height * 3);
    float *diff = rc_xmalloc(fe * sizeof(float));
    static const uint8_t blue[3] = {40, 90, 220}, green[3] = {30, 170, 60},
                         red[3] = {220, 40, 40}, gray[3] = {150, 150, 150};
    for (int r = 0; r <= found; r++) {
        int row = r == 0 ? q : idx[r - 1];
        int y = SHEET_GAP + r * (cell + SHEET_GAP);
        const uint8_t *mark = r == 0 ? blue : !cs->synthetic ? gray
                              : cs->clips[row].motion_class ==
                                        cs->clips[q].motion_class
                                  ? green : red;
        fill_rect(&cv, 0, y, SHEET_BAR, cell, mark);
        const float *clip = cs->frames + (size_t)row * clip_elems;
        for (int t = 0; t <= T; t++)
            blit(&cv, SHEET_BAR + SHEET_GAP + t * (cell + SHEET_GAP), y, S, C,
                 zoom, clip + (size_t)t * fe, 1.0f, 0.0f);
        for (size_t p = 0; p < fe; p++)
            diff[p] = clip[(size_t)T * fe + p] - clip[p];
        /* difference in [-0.5, 0.5] -> [0, 1]; larger changes saturate */
        blit(&cv, SHEET_BAR + SHEET_GAP + (T + 1) * (cell + SHEET_GAP), y, S,
             C, zoom, diff, 1.0f, 0.5f);
        n_captions += row_captions(cs, q, row, r, r ? dist[r - 1] : 0,
                                   frames_w + 4, y + 4, captions + n_captions);
    }
    if (text) rc_draw_texts(cv.width, cv.height, cv.rgb, captions, n_captions);
    int rc = rc_png_write(path, cv.width, cv.height, 3, cv.rgb);
    free(captions);
    free(diff);
    free(cv.rgb);
    return rc;
}

/* Query rows: --items, else N spread evenly over the rows. */
static int pick_queries(const viz_args *a, int n, int **out) {
    if (a->items) return viz_parse_items(a->items, n, out);
    int nq = a->n_queries < n ? a->n_queries : n;
    int *v = rc_xmalloc(sizeof(int) * (size_t)nq);
    for (int i = 0; i < nq; i++) v[i] = (int)((long long)i * n / nq);
    *out = v;
    return nq;
}

static json_t *class_precision(const rc_config *c, const rc_viz_clipset *cs,
                               const float *emb, int D, int k) {
    if (!cs->synthetic || cs->n < 2) return NULL;
    int kk = k < cs->n - 1 ? k : cs->n - 1;
    double *X = rc_xmalloc(sizeof(double) * (size_t)cs->n * D);
    int *labels = rc_xmalloc(sizeof(int) * (size_t)cs->n);
    for (size_t i = 0; i < (size_t)cs->n * D; i++) X[i] = emb[i];
    for (int i = 0; i < cs->n; i++) labels[i] = cs->clips[i].motion_class;
    double p = NAN;
    int rc = rc_precision_at_k(cs->n, D, X, labels, kk, &p);
    free(X);
    free(labels);
    if (rc != 0) return NULL;
    printf("precision@%d of motion classes over %d clips: %.4f\n", kk, cs->n, p);
    (void)c;
    return json_real(p);
}

int rc_neighbors_main(int argc, char **argv) {
    viz_args a;
    int rc = viz_parse_args(argc, argv, usage_neighbors,
                            "--checkpoint --random-init --out --set --split "
                            "--clips --stride --fps --k --queries --items "
                            "--allow-overlap --zoom", &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (a.n_queries == 0) a.n_queries = 8; /* --queries default */
    rc_config c;
    rc_model *m;
    int64_t step;
    rc_viz_clipset cs;
    if (viz_open(&a, &c, 0, 1, &m, &step, &cs) != 0) return viz_fail(&a);
    int D = c.embed_dim, k = a.k, *queries = NULL;
    float *emb = rc_xmalloc(sizeof(float) * (size_t)cs.n * D);
    int status = rc_viz_embed_clips(m, &cs, RC_SEQ_FULL, emb);
    int nq = status == 0 ? pick_queries(&a, cs.n, &queries) : -1;
    if (nq < 0) status = -1;
    json_t *side = viz_sidecar_header(&a, &c, &cs, step), *list = json_array();
    json_object_set_new(side, "k", json_integer(k));
    json_object_set_new(side, "metric", json_string("euclidean"));
    int *idx = rc_xmalloc(sizeof(int) * (size_t)k);
    double *dist = rc_xmalloc(sizeof(double) * (size_t)k);
    double same_sum = 0;
    for (int qi = 0; qi < nq && status == 0; qi++) {
        int q = queries[qi];
        int found = nearest(&cs, emb, D, q, k, a.allow_overlap, idx, dist);
        char path[2048], name[64];
        snprintf(name, sizeof name, "query-%05d.png", q);
        snprintf(path, sizeof path, "%s/%s", a.out, name);
        status = write_sheet(path, &cs, q, idx, dist, found, a.zoom);
        json_t *o = json_object(), *nb = json_array();
        json_object_set_new(o, "query", viz_clip_json(&cs, q));
        json_object_set_new(o, "sheet", json_string(name));
        int same = 0;
        for (int r = 0; r < found; r++) {
            json_t *e = viz_clip_json(&cs, idx[r]);
            json_object_set_new(e, "distance", json_real(dist[r]));
            json_array_append_new(nb, e);
            same += cs.clips[idx[r]].motion_class == cs.clips[q].motion_class;
        }
        json_object_set_new(o, "neighbors", nb);
        if (cs.synthetic && found > 0) {
            json_object_set_new(o, "same_class_fraction",
                                json_real((double)same / found));
            same_sum += (double)same / found;
        }
        json_array_append_new(list, o);
    }
    if (status == 0) {
        json_object_set_new(side, "queries", list);
        json_t *p = class_precision(&c, &cs, emb, D, k);
        if (p) {
            json_object_set_new(side, "precision_at_k_all_clips", p);
            json_object_set_new(side, "same_class_fraction_queries",
                                json_real(nq ? same_sum / nq : NAN));
        }
        char path[2048];
        snprintf(path, sizeof path, "%s/neighbors.json", a.out);
        status = viz_write_json(path, side);
        if (status == 0)
            rc_log("%d queries, k = %d: %s (and query-*.png)", nq, k, path);
    } else {
        json_decref(list);
    }
    json_decref(side);
    free(idx);
    free(dist);
    free(queries);
    free(emb);
    rc_viz_clips_free(&cs);
    rc_model_free(m);
    return status == 0 ? 0 : viz_fail(&a);
}
