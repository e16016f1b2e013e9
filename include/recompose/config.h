/* config.h: run configuration.
 *
 * Config files are INI (parsed by inih). Every key is validated: an unknown
 * section or key, a value of the wrong type or out of range stops with
 * "FILE:LINE: ..." and what is allowed. `--set section.key=value` overrides
 * apply after the file, with the same checks (reported as "--set ...").
 *
 * The full key list, types, ranges and defaults live in one table in
 * csrc/config.c; rc_config_describe() prints it (used by --help).
 */
#ifndef RECOMPOSE_CONFIG_H
#define RECOMPOSE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "recompose/sampler.h"
#include "recompose/synth.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RC_MAX_CONV 8

/* data.transfer: how the loader's pixels reach the backend */
enum rc_transfer { RC_TRANSFER_AUTO = 0, RC_TRANSFER_FLOAT = 1, RC_TRANSFER_U8 = 2 };

typedef struct {
    /* [model] */
    int n_conv;                      /* derived: length of conv_channels */
    int conv_channels[RC_MAX_CONV];  /* model.conv_channels = 16,32,64,64 */
    int conv_kernels[RC_MAX_CONV];   /* model.conv_kernels  = 5,3,3,3 */
    int conv_strides[RC_MAX_CONV];   /* model.conv_strides  = 2,2,2,2 */
    int feature_dim;                 /* model.feature_dim F */
    int hidden;                      /* model.hidden H */
    int embed_dim;                   /* model.embed_dim D */
    int pool;                        /* model.pool: 0 mean (the only one) */

    /* [data] */
    char source[32];                 /* data.source = synthetic */
    int image_size;                  /* data.image_size */
    int channels;                    /* data.channels 1 or 3 */
    int clip_steps;                  /* data.clip_steps T (clip has T+1 frames) */
    float max_speed;                 /* data.max_speed px/frame */
    float max_rotation;              /* data.max_rotation rad/frame */
    int texture;                     /* data.texture: enum rc_texture_family */
    float pan_speed;                 /* data.pan_speed px/frame (pan twins) */
    float roll_speed;                /* data.roll_speed rad/frame (roll twins) */
    char data_path[512];             /* data.path (source = shards) */
    int frame_stride;                /* data.frame_stride */
    int resize;                      /* data.resize (0 = image_size) */
    int random_crop, flip;           /* data.random_crop, data.flip (bool) */
    float val_fraction;              /* data.val_fraction */
    int on_bad;                      /* data.on_bad: 0 fail, 1 skip */
    int loader_threads;              /* data.loader_threads (0 = per core) */
    int ring;                        /* data.ring */
    int transfer;                    /* data.transfer: enum rc_transfer */

    /* [train] */
    int batch;                       /* train.batch tuples per step */
    int steps;                       /* train.steps */
    float lr;                        /* train.lr peak */
    float min_lr_ratio;              /* train.min_lr_ratio end of cosine */
    int warmup;                      /* train.warmup steps */
    float weight_decay;              /* train.weight_decay */
    float beta1, beta2, eps;         /* train.beta1, beta2, eps */
    float clip_norm;                 /* train.clip_norm (0 = off) */
    uint64_t seed;                   /* train.seed */
    int threads;                     /* train.threads (0 = all cores) */
    int dedup;                       /* train.dedup (bool) */
    char device[16];                 /* train.device: a backend.h name */
    char blas_kernels[16];           /* train.blas_kernels: "auto" or an
                                        OpenBLAS kernel family */
    int cpu_conv;                    /* train.cpu_conv: enum rc_cpu_conv */
    int precision;                   /* train.precision: enum rc_precision */
    int cudnn_benchmark;             /* train.cudnn_benchmark (bool) */
    int log_every;                   /* train.log_every steps */
    int checkpoint_every;            /* train.checkpoint_every steps */
    int val_every;                   /* train.val_every steps (0 = off) */
    int val_batches;                 /* train.val_batches per validation */
    int plot;                        /* train.plot: training.png (bool) */
    int keep_last;                   /* train.keep_last checkpoints (0 = all) */
    int max_bad_steps;               /* train.max_bad_steps non-finite in a row */

    /* [loss] */
    rc_loss_config loss;             /* loss.margin, loss.hinge, loss.w_pos,
                                        loss.w_neg, loss.w_full_skip, ... */

    /* [eval] */
    int eval_clips;                  /* eval.clips held-out clips */
    int probe_train_clips;           /* eval.probe_train_clips */
    float ridge_lambda;              /* eval.ridge_lambda */
    int retrieval_k;                 /* eval.retrieval_k */
    int knn_k;                       /* eval.knn_k */
    int cross_texture;               /* eval.cross_texture: rc_texture_family */
    int pixel_baseline_size;         /* eval.pixel_baseline_size */
} rc_config;

/* Defaults = the tiny preset. */
void rc_config_default(rc_config *c);

/* Load an INI file over the current values. Returns 0, or -1 with an error
 * "PATH:LINE: message" (or "PATH: message" for I/O errors). */
int rc_config_load(rc_config *c, const char *path);

/* Apply one "section.key=value" override. Returns 0 or -1 (error set). */
int rc_config_set(rc_config *c, const char *assignment);

/* Cross-field checks (e.g. conv lists of equal length, batch >= 1). */
int rc_config_validate(const rc_config *c);

/* Write the whole config as INI text (every key, canonical form). The text
 * parses back to an identical config. Caller frees. */
char *rc_config_to_ini(const rc_config *c);

/* Print every key with type, range and default (for --help). */
void rc_config_describe(FILE *out);

/* Synthetic-data settings derived from the config. */
void rc_config_synth(const rc_config *c, rc_synth_config *s);

#ifdef __cplusplus
}
#endif
#endif
