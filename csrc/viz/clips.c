/* clips.c: the clips the viz commands look at.
 *
 * Synthetic: clip i of the held-out (or training) split of the config's seed,
 * exactly the clips `recompose eval` measures, with their true motion.
 * Shards: every window of T+1 frames, frame_stride records apart, starting
 * every `stride` records, over every sequence of the chosen split. Frames are
 * scaled so the short side is data.resize and centre cropped, as training
 * frames are before their random crop; each record is decoded once per
 * sequence and shared by the windows that use it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/eval.h"
#include "recompose/synth.h"
#include "recompose/viz.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif

void rc_viz_clips_free(rc_viz_clipset *cs) {
    free(cs->frames);
    free(cs->clips);
    memset(cs, 0, sizeof *cs);
}

void rc_viz_clip_net_motion(const rc_viz_clipset *cs, int i, double out[3]) {
    const rc_viz_clip *k = &cs->clips[i];
    out[0] = (double)cs->T * k->vx;
    out[1] = (double)cs->T * k->vy;
    out[2] = (double)cs->T * k->omega;
}

void rc_viz_clip_caption(const rc_viz_clipset *cs, int i, char *buf, size_t n) {
    const rc_viz_clip *k = &cs->clips[i];
    if (cs->synthetic) {
        double net[3];
        rc_viz_clip_net_motion(cs, i, net);
        snprintf(buf, n, "%s clip %llu: dx %+.1f px, dy %+.1f px, dtheta %+.3f rad",
                 k->split ? "held-out" : "training",
                 (unsigned long long)k->index, net[0], net[1], net[2]);
        return;
    }
    int len = snprintf(buf, n, "%s, frames %lld-%lld", k->source,
                       (long long)k->frame_numbers[0],
                       (long long)k->frame_numbers[cs->T]);
    if (cs->fps > 0 && len > 0 && (size_t)len < n)
        snprintf(buf + len, n - (size_t)len, " (%.2f-%.2f s)",
                 (double)k->frame_numbers[0] / cs->fps,
                 (double)k->frame_numbers[cs->T] / cs->fps);
}

static int load_synthetic(const rc_config *c, const rc_viz_select *sel,
                          rc_viz_clipset *cs) {
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    int split = sel->split == RC_VIZ_SPLIT_TRAIN ? RC_SPLIT_TRAIN
                                                 : RC_SPLIT_HELDOUT;
    /* training-split clips come from the probe's range, never trained on */
    uint64_t base = split == RC_SPLIT_TRAIN ? RC_EVAL_PROBE_INDEX_BASE : 0;
    int n = sel->max_clips > 0 ? sel->max_clips : c->eval_clips;
    size_t clip_elems = (size_t)(cs->T + 1) * cs->C * cs->S * cs->S;
    cs->synthetic = 1;
    cs->n = n;
    cs->frames = rc_xmalloc(clip_elems * (size_t)n * sizeof(float));
    cs->clips = rc_xcalloc((size_t)n, sizeof *cs->clips);
    for (int i = 0; i < n; i++) {
        rc_viz_clip *k = &cs->clips[i];
        rc_motion mo;
        snprintf(k->source, sizeof k->source, "synthetic");
        k->split = split;
        k->index = base + (uint64_t)i;
        k->key = rc_synth_clip_key(c->seed, split, k->index);
        rc_synth_motion(&sc, k->key, &mo);
        k->vx = mo.vx;
        k->vy = mo.vy;
        k->omega = mo.omega;
        k->motion_class = rc_motion_class((double)cs->T * mo.vx,
                                          (double)cs->T * mo.vy,
                                          (double)cs->T * mo.omega);
        for (int t = 0; t <= cs->T; t++) k->frame_numbers[t] = t;
        rc_synth_render(&sc, &mo, 0, cs->T + 1,
                        cs->frames + (size_t)i * clip_elems);
    }
    return 0;
}

#ifdef RC_HAVE_VIDEO
/* The loader's resize rule: short side -> R, the other side in proportion,
 * neither below the crop size. */
static void resized_size(const rc_shard_sequence *q, int R, int S, int *w,
                         int *h) {
    int side = q->width < q->height ? q->width : q->height;
    *w = q->width == side ? R : (int)((double)q->width * R / side + 0.5);
    *h = q->height == side ? R : (int)((double)q->height * R / side + 0.5);
    if (*w < S) *w = S;
    if (*h < S) *h = S;
}

/* Decode record r of a sequence into [C][S][S] floats, centre cropped. */
static int decode_frame(const rc_shard *sh, const rc_shard_sequence *q,
                        uint32_t r, int C, int S, int R, float *out) {
    int rw, rh;
    resized_size(q, R, S, &rw, &rh);
    rc_image im, small;
    if (rc_shard_decode(sh, q->first_record + r, C, rw, rh, &im) != 0)
        return -1;
    int rc = rc_image_resize(&im, rw, rh, C, &small);
    rc_image_free(&im);
    if (rc != 0) return -1;
    int x0 = (rw - S) / 2, y0 = (rh - S) / 2;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                out[((size_t)c * S + y) * S + x] =
                    small.pixels[((size_t)(y0 + y) * rw + x0 + x) * C + c] /
                    255.0f;
    rc_image_free(&small);
    return 0;
}

static int window_count(int n_records, int span, int stride) {
    return n_records < span ? 0 : (n_records - span) / stride + 1;
}

static int sequence_selected(const rc_config *c, const rc_viz_select *sel,
                             const char *name) {
    if (sel->split == RC_VIZ_SPLIT_ALL) return 1;
    int val = rc_sequence_is_validation(name, c->val_fraction);
    return val == (sel->split == RC_VIZ_SPLIT_HELDOUT);
}

static int load_shards(const rc_config *c, const rc_viz_select *sel,
                       rc_viz_clipset *cs) {
    rc_dataset *d = rc_dataset_open(c->data_path, c->on_bad ? RC_ON_BAD_SKIP
                                                            : RC_ON_BAD_FAIL);
    if (!d) return -1;
    int T = cs->T, C = cs->C, S = cs->S, fs = c->frame_stride;
    int R = c->resize ? c->resize : S, span = T * fs + 1;
    int stride = sel->stride > 0 ? sel->stride : 1;
    int n_seq = rc_dataset_n_sequences(d), total = 0;
    for (int i = 0; i < n_seq; i++) {
        const rc_shard *sh;
        const rc_shard_sequence *q = rc_dataset_sequence(d, i, &sh);
        if (sequence_selected(c, sel, q->name))
            total += window_count((int)q->n_records, span, stride);
    }
    if (sel->max_clips > 0 && total > sel->max_clips) total = sel->max_clips;
    if (total == 0) {
        rc_dataset_close(d);
        return rc_set_error("%s: no sequence of the chosen split has the %d "
                            "frames a window needs (clip_steps %d x "
                            "frame_stride %d + 1); try --split all",
                            c->data_path, span, T, fs);
    }
    size_t fe = (size_t)C * S * S, clip_elems = (size_t)(T + 1) * fe;
    cs->n = total;
    cs->frame_stride = fs;
    cs->frames = rc_xmalloc(clip_elems * (size_t)total * sizeof(float));
    cs->clips = rc_xcalloc((size_t)total, sizeof *cs->clips);
    int row = 0, rc = 0;
    for (int i = 0; i < n_seq && row < total && rc == 0; i++) {
        const rc_shard *sh;
        const rc_shard_sequence *q = rc_dataset_sequence(d, i, &sh);
        int nw = window_count((int)q->n_records, span, stride);
        if (!sequence_selected(c, sel, q->name) || nw == 0) continue;
        if (q->channels != 1 && q->channels != 3) continue;
        /* decode every record once */
        float *seq_frames = rc_xmalloc(fe * q->n_records * sizeof(float));
        for (uint32_t r = 0; r < q->n_records && rc == 0; r++)
            rc = decode_frame(sh, q, r, C, S, R, seq_frames + r * fe);
        int val = rc_sequence_is_validation(q->name, c->val_fraction);
        int rw, rh;
        resized_size(q, R, S, &rw, &rh);
        for (int w = 0; w < nw && row < total && rc == 0; w++, row++) {
            rc_viz_clip *k = &cs->clips[row];
            snprintf(k->source, sizeof k->source, "%s", q->name);
            /* decode_frame's centre crop, in fractions of the frame: the
             * same region of the full-resolution source */
            k->crop[0] = (float)((rw - S) / 2) / (float)rw;
            k->crop[1] = (float)((rh - S) / 2) / (float)rh;
            k->crop[2] = (float)((rw - S) / 2 + S) / (float)rw;
            k->crop[3] = (float)((rh - S) / 2 + S) / (float)rh;
            k->split = val;
            k->sequence = i;
            k->start = w * stride;
            for (int t = 0; t <= T; t++) {
                uint32_t r = (uint32_t)(k->start + t * fs);
                k->frame_numbers[t] =
                    rc_shard_get_record(sh, q->first_record + r)->frame_number;
                memcpy(cs->frames + (size_t)row * clip_elems + (size_t)t * fe,
                       seq_frames + r * fe, fe * sizeof(float));
            }
        }
        free(seq_frames);
    }
    cs->n = row;
    rc_dataset_close(d);
    return rc;
}
#endif

int rc_viz_clips_load(const rc_config *c, const rc_viz_select *sel,
                      rc_viz_clipset *out) {
    memset(out, 0, sizeof *out);
    out->T = c->clip_steps;
    out->C = c->channels;
    out->S = c->image_size;
    out->fps = sel->fps;
    out->frame_stride = 1;
    if (c->clip_steps < 1 || c->clip_steps > RC_MAX_T)
        return rc_set_error("data.clip_steps %d is outside 1..%d",
                            c->clip_steps, RC_MAX_T);
    int rc;
    if (!strcmp(c->source, "synthetic")) {
        rc = load_synthetic(c, sel, out);
    } else if (!strcmp(c->source, "shards")) {
#ifdef RC_HAVE_VIDEO
        rc = load_shards(c, sel, out);
#else
        rc = rc_set_error("data.source = shards needs real video input, "
                          "which this build left out (see cmake output for "
                          "the missing libraries)");
#endif
    } else {
        rc = rc_set_error("data.source '%s' is neither synthetic nor shards",
                          c->source);
    }
    if (rc != 0) rc_viz_clips_free(out);
    return rc;
}
