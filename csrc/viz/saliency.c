/* saliency.c: `recompose saliency` -- where the embedding looks.
 *
 * For each clip, the gradient with respect to every input pixel of a
 * quantity that is zero without motion, d(phi(full), phi(rev)) by default
 * (rc_model_saliency, RC_SALIENCY_FULL_REV; --target norm takes the old
 * ||phi(full)||, which also answers to the output bias and static
 * structure), its magnitude summed over channels laid over the frames as a
 * heat map. The map of a clip is scaled by the 99th percentile
 * of its own magnitudes, so one hot pixel does not wash out the rest.
 *
 * It also measures whether the saliency sits on what moves: a pixel is
 * "moving" when its gray value changes by more than MOTION_THRESHOLD between
 * some two consecutive frames; the lift is (share of saliency on moving
 * pixels) / (share of pixels that move). Lift 1 is no preference; on vtest
 * (static camera) the walking people are the moving pixels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "viz/viz_internal.h"

#define MOTION_THRESHOLD 0.05f /* ~13 gray levels of 255 */
#define HEAT_PERCENTILE 0.99

static const char *usage_saliency =
    "usage: recompose saliency CONFIG (--checkpoint FILE | --random-init)\n"
    "                          --out DIR [options]\n"
    "\n"
    "The gradient of d(phi(S), phi(rev S)) (S = frames 0..T of a clip, rev S\n"
    "the same frames backwards: zero where nothing moves) with respect to\n"
    "the input pixels, for every clip the config names (as `recompose\n"
    "embed`). Writes DIR/saliency.npy (the signed gradient) and\n"
    "DIR/frames.npy (the inputs), both float32 [N][T+1][C][S][S];\n"
    "DIR/saliency.json (per clip: source, frames, how much of the saliency\n"
    "falls on moving pixels); and for the shown clips a heat map over each\n"
    "frame, DIR/clip-ROW-fT.png, and a strip DIR/clip-ROW-strip.png (top:\n"
    "frames, bottom: heat maps; captioned with the clip's source).\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE   weights to load\n"
    "  --random-init       the untrained network instead (baseline)\n"
    "  --out DIR           output directory (created if missing)\n"
    "  --set SEC.KEY=VAL   override a config key (repeatable)\n"
    "  --show N            images for N clips spread over the rows (default 4)\n"
    "  --items I,J,...     images for these rows instead\n"
    "  --split S           train, val or all (default: val for synthetic,\n"
    "                      all for shards)\n"
    "  --clips N           at most N clips / windows (synthetic default 64)\n"
    "  --stride N          records between window starts (shards; default 1)\n"
    "  --fps F             frame rate of the source, for times in the JSON\n"
    "  --zoom Z            pixel magnification of the images (default 2)\n"
    "  --target T          full_rev (default): d(phi(S), phi(rev S));\n"
    "                      norm: ||phi(S)|| (the old target)\n";

/* heat [T+1][S][S] = sum over channels of |gradient| */
static void heat_of_clip(const float *grad, int T, int C, int S, float *heat) {
    size_t plane = (size_t)S * S;
    for (int t = 0; t <= T; t++)
        for (size_t p = 0; p < plane; p++) {
            float h = 0;
            for (int c = 0; c < C; c++)
                h += fabsf(grad[((size_t)t * C + c) * plane + p]);
            heat[(size_t)t * plane + p] = h;
        }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float percentile(const float *v, size_t n, double q) {
    float *s = rc_xmalloc(n * sizeof(float));
    memcpy(s, v, n * sizeof(float));
    qsort(s, n, sizeof(float), cmp_float);
    float r = s[(size_t)(q * (double)(n - 1))];
    free(s);
    return r;
}

/* moving [S][S]: 1 where the gray value changes by more than the threshold
 * between some two consecutive frames. Returns the number of moving pixels. */
static int motion_mask(const float *clip, int T, int C, int S, uint8_t *moving) {
    size_t plane = (size_t)S * S, fe = (size_t)C * plane;
    int count = 0;
    for (size_t p = 0; p < plane; p++) {
        moving[p] = 0;
        for (int t = 0; t < T && !moving[p]; t++) {
            float a = viz_gray(clip + (size_t)t * fe, C, S, (int)p);
            float b = viz_gray(clip + (size_t)(t + 1) * fe, C, S, (int)p);
            moving[p] = fabsf(b - a) > MOTION_THRESHOLD;
        }
        count += moving[p];
    }
    return count;
}

static void zoom_rgb(const uint8_t *in, int S, int zoom, uint8_t *out) {
    int W = S * zoom;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++)
            memcpy(out + ((size_t)y * W + x) * 3,
                   in + ((size_t)(y / zoom) * S + (size_t)(x / zoom)) * 3, 3);
}

#define STRIP_CAPTION 38 /* caption band above a strip (builds with text) */

/* The strip's caption: the clip, then how to read the picture. */
static void strip_captions(const rc_viz_clipset *cs, int row, float heat_max,
                           double on_moving, double lift, rc_text out[2]) {
    char where[160];
    rc_viz_clip_caption(cs, row, where, sizeof where);
    snprintf(out[0].text, sizeof out[0].text, "row %d: %s", row, where);
    char share[64] = "";
    if (lift > 0)
        snprintf(share, sizeof share, "; %.0f%% on moving pixels (lift %.2f)",
                 100 * on_moving, lift);
    snprintf(out[1].text, sizeof out[1].text,
             "top: frames 0-%d; bottom: saliency, white at %.3g%s", cs->T,
             heat_max, share);
    out[0].x = out[1].x = 2;
    out[0].y = 2;
    out[1].y = 19;
    out[0].bold = 1;
    out[1].bold = 0;
}

/* Per-frame overlays and the strip of one clip (captioned above when the
 * build draws text). */
static int write_clip_images(const char *dir, int row, const float *clip,
                             const float *heat, float heat_max, int T, int C,
                             int S, int zoom, const rc_text caption[2]) {
    size_t plane = (size_t)S * S, fe = (size_t)C * plane;
    int band = rc_viz_can_draw_text() ? STRIP_CAPTION : 0;
    int W = S * zoom, gap = 4, sw = (T + 1) * (W + gap) - gap;
    int sh = band + 2 * W + gap;
    uint8_t *small = rc_xmalloc(plane * 3), *big = rc_xmalloc((size_t)W * W * 3);
    uint8_t *strip = rc_xmalloc((size_t)sw * sh * 3);
    float *zero = rc_xcalloc(plane, sizeof(float));
    memset(strip, 255, (size_t)sw * sh * 3);
    int rc = 0;
    for (int t = 0; t <= T && rc == 0; t++) {
        const float *frame = clip + (size_t)t * fe;
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: the frame alone (overlay of a zero map), 1: heat map */
            rc_heat_overlay(S, C, frame, pass ? heat + (size_t)t * plane : zero,
                            heat_max, small);
            zoom_rgb(small, S, zoom, big);
            int x0 = t * (W + gap), y0 = band + pass * (W + gap);
            for (int y = 0; y < W; y++)
                memcpy(strip + ((size_t)(y0 + y) * sw + x0) * 3,
                       big + (size_t)y * W * 3, (size_t)W * 3);
        }
        char path[2048];
        snprintf(path, sizeof path, "%s/clip-%05d-f%d.png", dir, row, t);
        rc = rc_png_write(path, W, W, 3, big);
    }
    if (rc == 0) {
        char path[2048];
        snprintf(path, sizeof path, "%s/clip-%05d-strip.png", dir, row);
        if (band) rc_draw_texts(sw, sh, strip, caption, 2);
        rc = rc_png_write(path, sw, sh, 3, strip);
    }
    free(small);
    free(big);
    free(strip);
    free(zero);
    return rc;
}

/* Saliency of all clips, in batches: grad [n][T+1][C][S][S]. For the
 * full_rev target each clip gives two sequences, full then rev. */
static int saliency_all(rc_model *m, const rc_viz_clipset *cs, int target,
                        float *grad) {
    size_t clip_elems = (size_t)(cs->T + 1) * cs->C * cs->S * cs->S;
    enum { BATCH = 32 };
    rc_sequence seqs[2 * BATCH];
    int clip_of[2 * BATCH];
    int per_clip = target == RC_SALIENCY_FULL_REV ? 2 : 1;
    for (int first = 0; first < cs->n; first += BATCH) {
        int nb = cs->n - first < BATCH ? cs->n - first : BATCH, n = 0;
        for (int b = 0; b < nb; b++)
            for (int r = 0; r < per_clip; r++, n++) {
                seqs[n].n_frames = cs->T + 1;
                for (int t = 0; t <= cs->T; t++)
                    seqs[n].frames[t] = r ? cs->T - t : t;
                clip_of[n] = b;
            }
        if (rc_model_saliency(m, nb, cs->T,
                              cs->frames + (size_t)first * clip_elems, n, seqs,
                              clip_of, target, NULL,
                              grad + (size_t)first * clip_elems) != 0)
            return -1;
    }
    return 0;
}

static int pick_shown(const viz_args *a, int n, int **out) {
    if (a->items) return viz_parse_items(a->items, n, out);
    int k = a->n_queries < n ? a->n_queries : n;
    int *v = rc_xmalloc(sizeof(int) * (size_t)k);
    for (int i = 0; i < k; i++) v[i] = (int)((long long)i * n / k);
    *out = v;
    return k;
}

int rc_saliency_main(int argc, char **argv) {
    viz_args a;
    int rc = viz_parse_args(argc, argv, usage_saliency,
                            "--checkpoint --random-init --out --set --split "
                            "--clips --stride --fps --show --items --zoom "
                            "--target", &a);
    if (rc) return rc == 1 ? 0 : rc;
    if (a.n_queries == 0) a.n_queries = 4; /* --show default */
    rc_config c;
    rc_model *m;
    int64_t step;
    rc_viz_clipset cs;
    /* a gradient per pixel: 64 synthetic clips unless --clips says */
    if (viz_open(&a, &c, 64, 1, &m, &step, &cs) != 0) return viz_fail(&a);
    int T = cs.T, C = cs.C, S = cs.S, *shown = NULL;
    size_t plane = (size_t)S * S, clip_elems = (size_t)(T + 1) * C * plane;
    float *grad = rc_xmalloc(clip_elems * (size_t)cs.n * sizeof(float));
    float *heat = rc_xmalloc((size_t)(T + 1) * plane * sizeof(float));
    uint8_t *moving = rc_xmalloc(plane);
    int status = saliency_all(m, &cs, a.target, grad);
    double *lifts = rc_xmalloc(sizeof(double) * (size_t)cs.n);
    int n_lifts = 0;
    int64_t shape[5] = {cs.n, T + 1, C, S, S};
    char path[2048];
    if (status == 0) {
        snprintf(path, sizeof path, "%s/saliency.npy", a.out);
        status = rc_npy_write_f32(path, 5, shape, grad);
    }
    if (status == 0) {
        snprintf(path, sizeof path, "%s/frames.npy", a.out);
        status = rc_npy_write_f32(path, 5, shape, cs.frames);
    }
    int n_shown = status == 0 ? pick_shown(&a, cs.n, &shown) : -1;
    if (n_shown < 0) status = -1;
    json_t *side = viz_sidecar_header(&a, &c, &cs, step), *items = json_array();
    json_object_set_new(side, "motion_threshold", json_real(MOTION_THRESHOLD));
    json_object_set_new(side, "target",
                        json_string(a.target == RC_SALIENCY_NORM
                                        ? "norm: ||phi(S)||"
                                        : "full_rev: d(phi(S), phi(rev S))"));
    double mass_moving = 0, mass_all = 0, area_moving = 0;
    for (int i = 0; i < cs.n && status == 0; i++) {
        const float *clip = cs.frames + (size_t)i * clip_elems;
        heat_of_clip(grad + (size_t)i * clip_elems, T, C, S, heat);
        int n_moving = motion_mask(clip, T, C, S, moving);
        double on = 0, all = 0;
        for (int t = 0; t <= T; t++)
            for (size_t p = 0; p < plane; p++) {
                double h = heat[(size_t)t * plane + p];
                all += h;
                if (moving[p]) on += h;
            }
        mass_moving += on;
        mass_all += all;
        area_moving += (double)n_moving / (double)plane;
        json_t *o = viz_clip_json(&cs, i);
        double area = (double)n_moving / (double)plane;
        json_object_set_new(o, "moving_area", json_real(area));
        json_object_set_new(o, "saliency_on_moving",
                            json_real(all > 0 ? on / all : 0));
        json_object_set_new(o, "lift", area > 0 && all > 0
                                           ? json_real(on / all / area)
                                           : json_null());
        if (area > 0 && all > 0) lifts[n_lifts++] = on / all / area;
        for (int s = 0; s < n_shown; s++)
            if (shown[s] == i) {
                float hmax = percentile(heat, (size_t)(T + 1) * plane,
                                        HEAT_PERCENTILE);
                rc_text caption[2];
                strip_captions(&cs, i, hmax, all > 0 ? on / all : 0,
                               area > 0 && all > 0 ? on / all / area : 0,
                               caption);
                status = write_clip_images(a.out, i, clip, heat, hmax, T, C, S,
                                           a.zoom, caption);
                json_object_set_new(o, "heat_scale", json_real(hmax));
                json_object_set_new(o, "images", json_true());
            }
        json_array_append_new(items, o);
    }
    if (status == 0) {
        double area = area_moving / cs.n, share = mass_all > 0
                                                      ? mass_moving / mass_all
                                                      : 0;
        json_object_set_new(side, "moving_area", json_real(area));
        json_object_set_new(side, "saliency_on_moving", json_real(share));
        json_object_set_new(side, "lift", area > 0 ? json_real(share / area)
                                                   : json_null());
        double median_lift = NAN, above_one = NAN;
        if (n_lifts > 0) {
            median_lift = rc_median(lifts, (size_t)n_lifts);
            int above = 0;
            for (int i = 0; i < n_lifts; i++) above += lifts[i] > 1;
            above_one = (double)above / n_lifts;
        }
        json_object_set_new(side, "median_clip_lift", n_lifts
                                ? json_real(median_lift) : json_null());
        json_object_set_new(side, "clips_with_lift_above_1", n_lifts
                                ? json_real(above_one) : json_null());
        json_object_set_new(side, "items", items);
        snprintf(path, sizeof path, "%s/saliency.json", a.out);
        status = viz_write_json(path, side);
        printf("saliency of %s over %d clips: %.1f%% of pixels move, %.1f%% of "
               "the saliency falls on them (lift %.2f; per clip: median %.2f, "
               "above 1 in %.0f%% of %d clips with motion)\n",
               a.target == RC_SALIENCY_NORM ? "||phi||" : "d(full, rev)",
               cs.n, 100 * area, 100 * share, area > 0 ? share / area : NAN,
               median_lift, 100 * above_one, n_lifts);
        if (status == 0)
            rc_log("wrote %s/saliency.npy, frames.npy, saliency.json and "
                   "images of %d clips", a.out, n_shown);
    } else {
        json_decref(items);
    }
    json_decref(side);
    free(shown);
    free(lifts);
    free(grad);
    free(heat);
    free(moving);
    rc_viz_clips_free(&cs);
    rc_model_free(m);
    return status == 0 ? 0 : viz_fail(&a);
}
