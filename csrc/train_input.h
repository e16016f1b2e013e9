/* train_input.h: where the trainer's batches come from, per step (private to
 * csrc/; train.c is the user).
 *
 * A batch source (synthetic renderer, or the shard loader's ring) gives the
 * host frames of a step. On the CPU backend the step reads them in place. On
 * a device backend the input goes through a feed (feed.h): the next step's
 * batch is copied while this one computes, and synthetic batches are
 * rendered one step ahead on a thread of their own, so that rendering,
 * copying and compute overlap as decoding, copying and compute do for video.
 */
#ifndef RC_TRAIN_INPUT_H
#define RC_TRAIN_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "recompose/config.h"
#include "recompose/feed.h"
#include "recompose/sampler.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif

/* Renders the frames of a step's batch into `frames` (a pure function of
 * the config and the step). */
typedef void (*rc_render_fn)(const rc_config *c, int64_t step, float *frames);

/* A synthetic source: `render` into buffers from alloc/free (a stage's
 * host allocator when it feeds a device: then three buffers, as the feed
 * holds two steps while the next is rendered; NULL: malloc, one buffer).
 * ahead = 1 renders step + 1 on a background thread once step is taken.
 * Returns 0, or -1 with the error set. */
int rc_synthetic_source_open(rc_batch_source *src, const rc_config *c,
                             size_t bytes, rc_render_fn render, int ahead,
                             void *(*alloc)(size_t, void *),
                             void (*free_fn)(void *, void *));
void rc_synthetic_source_close(rc_batch_source *src);

typedef struct {
    rc_batch_source src;
    rc_feed *feed;  /* NULL: the step reads host memory */
    int u8;         /* the source's batches are bytes */
    size_t values;  /* per batch */
    float *floats;  /* host path with bytes: the converted batch */
} rc_train_input;

/* A batch is `values` floats, or bytes when u8 (converted by the stage's
 * device kernel, or here on the host when there is no stage). stage NULL:
 * host path. Returns 0, or -1 with the error set. */
int rc_train_input_open(rc_train_input *in, const rc_batch_source *src,
                        const rc_stage_ops *stage, size_t values, int u8);
/* The frames the step computes on (device memory with a stage), and
 * (host) the same frames as floats in host memory, NULL where only their
 * bytes went to the device; valid until rc_train_input_end. */
const float *rc_train_input_begin(rc_train_input *in, int64_t step, int64_t end,
                                  const float **host);
void rc_train_input_end(rc_train_input *in, int64_t step);
/* Waits for copies in flight; the source itself is the caller's to close. */
void rc_train_input_close(rc_train_input *in);

/* ---- the data of a step (train_data.c) ---------------------------------------
 * Data-parallel ranks split each step's global batch: rank r of W trains on
 * clips r*B .. r*B+B-1 of the step's W*B. rc_train sets the ranks for the
 * time it runs (0 and 1 otherwise). */
void rc_train_set_data_ranks(int rank, int world);
/* Key of clip b (of this rank's part) of step `step`; for synthetic data it
 * also fixes the clip's texture and motion. */
uint64_t rc_train_clip_key(const rc_config *c, int64_t step, int b);
/* The step's tuples (one per clip, drawn from its key) and batch plan. */
int rc_train_plan_step(const rc_config *c, int64_t step, rc_tuple *tuples,
                       rc_batch_plan *plan);
/* The step's synthetic clips, then their twins (rc_batch_plan's layout). */
void rc_train_render_synthetic(const rc_config *c, int64_t step, float *frames);
/* Validation batch v (0 .. train.val_batches - 1): the same tuples and
 * synthetic clips (and twins) every time, drawn from keys of a split of
 * their own (RC_SPLIT_VALIDATION), whatever the rank. */
uint64_t rc_train_val_clip_key(const rc_config *c, int64_t v, int b);
int rc_train_plan_validation(const rc_config *c, int64_t v, rc_tuple *tuples,
                             rc_batch_plan *plan);
void rc_train_render_validation(const rc_config *c, int64_t v, float *frames);
/* 1 when the step's frames travel as bytes: data.source = shards and
 * data.transfer u8, or auto on a backend with an input stage (a device). */
int rc_train_input_u8(const rc_config *c, const rc_stage_ops *stage);
#ifdef RC_HAVE_VIDEO
/* The shard loader of data.path for this rank (its twins made beside each
 * clip), and the batch-source functions over it. */
rc_loader *rc_train_open_loader(const rc_config *c, rc_dataset **ds,
                                const rc_stage_ops *stage, int u8);
/* The loader of the validation sequences (data.val_fraction), centre
 * crops without flips, floats: batch v is the same at every validation.
 * NULL with the error set, or NULL and *none = 1 when no sequence is held
 * out. */
rc_loader *rc_train_open_val_loader(const rc_config *c, rc_dataset **ds,
                                    int *none);
const void *rc_train_loader_get(void *ctx, int64_t step);
void rc_train_loader_release(void *ctx, int64_t step);
#endif

#endif
