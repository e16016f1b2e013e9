/* viz.h: looking inside the learned motion (issue 6).
 *
 *   recompose embed      embeddings of clips or sliding windows -> .npy + .json
 *   recompose neighbors  k nearest clips in embedding space + contact sheets
 *   recompose saliency   d d(phi(S), phi(rev S)) / d pixels as heat maps over the frames
 *
 * All three read the same clips: synthetic clips drawn from the config's seed
 * (held-out split by default, true motion recorded), or, with
 * data.source = shards, sliding windows of T+1 frames (frame_stride records
 * apart) over every sequence of the packed dataset at data.path, centre
 * cropped exactly like evaluation frames. The sidecar JSON names, for every
 * row of the .npy, its source, frame numbers and times.
 *
 * Compiled when libpng is found (RC_HAVE_VIZ is then defined on
 * recompose_core); shard input additionally needs RC_HAVE_VIDEO.
 */
#ifndef RECOMPOSE_VIZ_H
#define RECOMPOSE_VIZ_H

#include <stdint.h>

#include "recompose/config.h"
#include "recompose/model.h"
#include "recompose/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- files ------------------------------------------------------------------ */

/* Write a little-endian float32 C-order array as a NumPy .npy file
 * (format version 1.0). ndim 1..8. Returns 0, or -1 with the path in the
 * error. */
int rc_npy_write_f32(const char *path, int ndim, const int64_t *shape,
                     const float *data);

/* Write 8-bit pixels [height][width][channels] (1 gray, 3 RGB) as PNG
 * through libpng. Returns 0 or -1. */
int rc_png_write(const char *path, int width, int height, int channels,
                 const uint8_t *pixels);

/* Heat-map colour of t in [0, 1] (clamped): black -> red -> yellow -> white
 * ("hot"), monotonic in luminance so it reads in gray print too. */
void rc_heat_color(float t, uint8_t rgb[3]);

/* Lay a heat map over a frame: out [S][S][3] = (1 - a) * gray + a * hot(h),
 * a = 0.75 * h, with h = heat / heat_max clamped to [0, 1]. frame is
 * [C][S][S] in [0, 1] (C = 3 is shown in colour, C = 1 in gray); heat [S][S]
 * is non-negative. */
void rc_heat_overlay(int S, int C, const float *frame, const float *heat,
                     float heat_max, uint8_t *out);

/* Text drawn onto an image: `text` (UTF-8) with its top-left corner at
 * (x, y) pixels, in dark gray, 12 px sans-serif (bold when bold). */
typedef struct {
    int x, y, bold;
    char text[192];
} rc_text;

/* 1 when this build draws text and plots (cairo, RC_HAVE_CAIRO). */
int rc_viz_can_draw_text(void);

/* Draw the texts onto rgb [height][width][3]. Returns 0, or 1 (nothing
 * drawn) when the build has no cairo: the image stays as it was. */
int rc_draw_texts(int width, int height, uint8_t *rgb, const rc_text *texts,
                  int n);

/* The training curves of a run: loss per report window and validation loss
 * against step, log-scaled, from metrics.jsonl, as a PNG written whole
 * (a temporary file renamed). 0, or -1 with the error set (also when the
 * build has no cairo). */
int rc_plot_training(const char *metrics_path, const char *png_path,
                     const char *title);

/* ---- clips -------------------------------------------------------------------- */

typedef struct {
    char source[256];        /* "synthetic" or the sequence name */
    int split;               /* 0 training, 1 held-out / validation */
    /* synthetic */
    uint64_t index, key;     /* clip index in its split, clip key */
    float vx, vy, omega;     /* per-frame motion */
    int motion_class;        /* rc_motion_class of the net motion */
    /* shards */
    int sequence;            /* dataset sequence index */
    int start;               /* first record within the sequence */
    int64_t frame_numbers[RC_MAX_T + 1]; /* frame numbers in the source */
    float crop[4];           /* the crop the network sees, as fractions of
                                the source frame: x0, y0, x1, y1 */
} rc_viz_clip;

typedef struct {
    int n, T, C, S;
    int synthetic;
    int frame_stride;        /* records between clip frames (shards) */
    double fps;              /* frames per second of the source, 0 unknown */
    float *frames;           /* [n][T+1][C][S][S] in [0, 1] */
    rc_viz_clip *clips;      /* [n] */
} rc_viz_clipset;

enum { RC_VIZ_SPLIT_TRAIN = 0, RC_VIZ_SPLIT_HELDOUT = 1, RC_VIZ_SPLIT_ALL = 2 };

typedef struct {
    int split;               /* RC_VIZ_SPLIT_*; synthetic "all" = held-out */
    int max_clips;           /* synthetic: clips drawn; shards: cap (0 none) */
    int stride;              /* shards: records between window starts, >= 1 */
    double fps;              /* recorded in the sidecar, and for times */
} rc_viz_select;

/* Load the clips the config's data section names. Returns 0 or -1. */
int rc_viz_clips_load(const rc_config *c, const rc_viz_select *sel,
                      rc_viz_clipset *out);
void rc_viz_clips_free(rc_viz_clipset *cs);

/* Net motion over the clip (synthetic): T * (vx, vy, omega). */
void rc_viz_clip_net_motion(const rc_viz_clipset *cs, int i, double out[3]);

/* One line that says where clip i comes from: its synthetic index and net
 * motion, or its sequence, frame numbers and (with fps) times. */
void rc_viz_clip_caption(const rc_viz_clipset *cs, int i, char *buf, size_t n);

/* Embeddings emb [n][D] of sequence `kind` (RC_SEQ_FULL: f_0..f_T,
 * RC_SEQ_REV: f_T..f_0) of every clip, in batches. Returns 0 or -1. */
int rc_viz_embed_clips(rc_model *m, const rc_viz_clipset *cs, int kind,
                       float *emb);

/* ---- commands (argv[0] is the command name; each has --help) -------------- */
int rc_embed_main(int argc, char **argv);
int rc_neighbors_main(int argc, char **argv);
int rc_saliency_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif
