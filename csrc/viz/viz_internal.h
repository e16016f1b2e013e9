/* viz_internal.h: what the three viz commands share (argument parsing, model
 * loading, the sidecar's description of clips). Not a public contract. */
#ifndef RECOMPOSE_VIZ_INTERNAL_H
#define RECOMPOSE_VIZ_INTERNAL_H

#include <jansson.h>

#include "recompose/config.h"
#include "recompose/model.h"
#include "recompose/viz.h"

#define VIZ_MAX_SETS 64

typedef struct {
    const char *command;         /* argv[0] */
    const char *usage;
    const char *config_path, *checkpoint, *out;
    int random_init;             /* --random-init: untrained weights */
    const char *sets[VIZ_MAX_SETS];
    int n_sets;
    rc_viz_select sel;
    /* command-specific integers and strings */
    int k;                       /* neighbors --k */
    int n_queries;               /* --queries / --show N (0: default) */
    int rev;                     /* embed --rev */
    int pixel_diff;              /* embed --pixel-diff: the baseline, no model */
    int target;                  /* saliency --target: enum rc_saliency_target */
    int zoom;                    /* saliency --zoom */
    const char *items;           /* --items i,j,... */
    int allow_overlap;           /* neighbors --allow-overlap */
} viz_args;

/* Parse argv[1..]; `allowed` is a space-separated list of the options the
 * command takes. Returns 0, 1 after printing --help, or 2 after a usage
 * error (printed). */
int viz_parse_args(int argc, char **argv, const char *usage,
                   const char *allowed, viz_args *a);

/* Config file + --set overrides, validated. */
int viz_load_config(const viz_args *a, rc_config *c);

/* The common start of the viz commands: the config, the default split
 * (held-out clips of synthetic data, all clips of real footage), with
 * synthetic_clips as the default --clips for synthetic data (0: the
 * selection's own), the output folder when out_dir, the model and the
 * clips. Returns 0, or -1 with the error set (nothing left allocated). */
int viz_open(viz_args *a, rc_config *c, int synthetic_clips, int out_dir,
             rc_model **m, int64_t *step, rc_viz_clipset *cs);

/* A CPU model with the checkpoint's weights (or rc_model_init_weights from
 * the config's seed under --random-init). *step receives the checkpoint's
 * step (0 for random init). NULL on error. Under --pixel-diff viz_open
 * leaves *m NULL instead. */
rc_model *viz_load_model(const viz_args *a, const rc_config *c, int64_t *step);

/* Print "recompose CMD: error: ..." and return 1. */
int viz_fail(const viz_args *a);

/* JSON description of clip i: source, split, frames and times (shards) or
 * the clip key and true motion (synthetic). */
json_t *viz_clip_json(const rc_viz_clipset *cs, int i);

/* The header every sidecar starts with: command, config, checkpoint, step,
 * clip geometry and source. */
json_t *viz_sidecar_header(const viz_args *a, const rc_config *c,
                           const rc_viz_clipset *cs, int64_t step);

/* Write json to path (indented). Returns 0 or -1. */
int viz_write_json(const char *path, json_t *j);

/* mkdir -p for one level; an existing directory is fine. */
int viz_make_dir(const char *path);

/* Parse "i,j,k" into indices < n (malloc'd). Returns count or -1. */
int viz_parse_items(const char *s, int n, int **out);

/* Gray value in [0, 1] of pixel p of frame [C][S][S] (mean over channels). */
static inline float viz_gray(const float *frame, int C, int S, int p) {
    float g = 0;
    for (int c = 0; c < C; c++) g += frame[(size_t)c * S * S + p];
    return g / (float)C;
}

#endif
