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
    rc_feed *feed; /* NULL: the step reads host memory */
} rc_train_input;

/* stage NULL: host path. Returns 0, or -1 with the error set. */
int rc_train_input_open(rc_train_input *in, const rc_batch_source *src,
                        const rc_stage_ops *stage, size_t bytes);
/* The frames the step computes on (device memory with a stage), and
 * (host) the same frames in host memory; valid until rc_train_input_end. */
const float *rc_train_input_begin(rc_train_input *in, int64_t step, int64_t end,
                                  const float **host);
void rc_train_input_end(rc_train_input *in, int64_t step);
/* Waits for copies in flight; the source itself is the caller's to close. */
void rc_train_input_close(rc_train_input *in);

#endif
