/* train_data.c: the data of a training step, a pure function of (seed,
 * step): the clip keys of this rank's part of the global batch, the
 * recomposition tuples and batch plan, synthetic clips and their twins, and
 * the shard loader that gives real footage (train_input.h declares what
 * train.c uses).
 */
#include "recompose/train.h"

#include <stdint.h>
#include <stdlib.h>

#include "recompose/common.h"
#include "recompose/rng.h"
#include "recompose/sampler.h"
#include "recompose/synth.h"
#include "train_input.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif

/* Data-parallel ranks split each step's global batch: rank r of W trains on
 * clips r*B .. r*B+B-1 of the step's W*B, so W ranks of train.batch = B see
 * exactly the clips and tuples of one process with batch W*B. Set by
 * rc_train (one training per process at a time); 0 and 1 otherwise. */
static int data_rank = 0, data_world = 1;

void rc_train_set_data_ranks(int rank, int world) {
    data_rank = rank;
    data_world = world;
}

/* Key of clip b (of this rank's part) of training step `step`. For
 * synthetic data it also determines the clip's texture and motion. */
uint64_t rc_train_clip_key(const rc_config *c, int64_t step, int b) {
    uint64_t global_batch = (uint64_t)c->batch * (uint64_t)data_world;
    return rc_synth_clip_key(c->seed, RC_SPLIT_TRAIN,
                             (uint64_t)step * global_batch +
                                 (uint64_t)data_rank * (uint64_t)c->batch +
                                 (uint64_t)b);
}

/* Key of clip b of validation batch v: a split of its own, the same
 * clips at every validation and on every rank. */
uint64_t rc_train_val_clip_key(const rc_config *c, int64_t v, int b) {
    return rc_synth_clip_key(c->seed, RC_SPLIT_VALIDATION,
                             (uint64_t)v * (uint64_t)c->batch + (uint64_t)b);
}

static uint64_t batch_clip_key(const rc_config *c, int validation, int64_t i,
                               int b) {
    return validation ? rc_train_val_clip_key(c, i, b)
                      : rc_train_clip_key(c, i, b);
}

/* The recomposition tuples of a batch: one per clip, drawn from its key. */
static int plan_batch(const rc_config *c, int validation, int64_t i,
                      rc_tuple *tuples, rc_batch_plan *plan) {
    for (int b = 0; b < c->batch; b++) {
        rc_rng rng;
        rc_rng_seed(&rng, rc_hash_combine(batch_clip_key(c, validation, i, b),
                                          0x7475706cULL /* "tupl" */));
        rc_sample_tuple(c->clip_steps, &rng, &tuples[b]);
    }
    rc_plan_free(plan);
    return rc_plan_build(plan, tuples, c->batch, c->clip_steps, &c->loss,
                         c->dedup);
}

int rc_train_plan_step(const rc_config *c, int64_t step, rc_tuple *tuples,
                       rc_batch_plan *plan) {
    return plan_batch(c, 0, step, tuples, plan);
}

int rc_train_plan_validation(const rc_config *c, int64_t v, rc_tuple *tuples,
                             rc_batch_plan *plan) {
    return plan_batch(c, 1, v, tuples, plan);
}

/* The motion of twin `kind` of a clip (sampler.h, rc_twin_kind):
 *   pan      the clip seen through a window sliding by u per frame, which is
 *            the same texture moving at v - u (synth.h: content moves by +v)
 *   texture  the same motion on another texture of the training family
 *   roll     the clip seen through a window turning by alpha per frame */
static void twin_motion(const rc_config *c, uint64_t key, int kind,
                        rc_motion *m) {
    if (kind == RC_TWIN_PAN) {
        float ux, uy;
        rc_pan_velocity(key, c->pan_speed, &ux, &uy);
        m->vx -= ux;
        m->vy -= uy;
    } else if (kind == RC_TWIN_ROLL) {
        m->roll = rc_roll_rate(key, c->roll_speed);
    } else {
        rc_motion orig = *m;
        rc_synth_retexture(&orig, 2, c->texture, m);
    }
}

/* Clips b = 0..B-1 of the step, then the twins: clip B*(1+slot) + b is twin
 * `slot` of clip b (rc_batch_plan), rendered with its own motion or, for a
 * symmetry twin, clip b's frames rearranged. */
static void render_batch(const rc_config *c, int validation, int64_t index,
                         float *frames) {
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    size_t clip_elems = (size_t)(c->clip_steps + 1) * sc.channels * sc.size *
                        sc.size;
    int B = c->batch, kinds[RC_TWIN_KINDS];
    int n = B * (1 + rc_loss_twins(&c->loss, kinds));
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        int kind = i >= B ? kinds[i / B - 1] : -1;
        uint64_t key = batch_clip_key(c, validation, index, i % B);
        float *out = frames + (size_t)i * clip_elems;
        if (kind >= 0 && rc_twin_symmetry(kind) != RC_MAP_NONE)
            continue; /* made from clip b once it is rendered, below */
        rc_motion motion;
        rc_synth_motion(&sc, key, &motion);
        if (kind >= 0) twin_motion(c, key, kind, &motion);
        rc_synth_render(&sc, &motion, 0, c->clip_steps + 1, out);
    }
    #pragma omp parallel for schedule(static)
    for (int i = B; i < n; i++) {
        int sym = rc_twin_symmetry(kinds[i / B - 1]);
        if (sym == RC_MAP_NONE) continue;
        rc_twin_frames(sym, c->clip_steps + 1, sc.channels, sc.size,
                       frames + (size_t)(i % B) * clip_elems,
                       frames + (size_t)i * clip_elems);
    }
}

void rc_train_render_synthetic(const rc_config *c, int64_t step,
                               float *frames) {
    render_batch(c, 0, step, frames);
}

void rc_train_render_validation(const rc_config *c, int64_t v, float *frames) {
    render_batch(c, 1, v, frames);
}

int rc_make_train_batch(const rc_config *c, int64_t step, float *frames,
                        rc_batch_plan *plan) {
    rc_train_render_synthetic(c, step, frames);
    rc_tuple *tuples = rc_xmalloc((size_t)c->batch * sizeof *tuples);
    int status = rc_train_plan_step(c, step, tuples, plan);
    free(tuples);
    return status;
}

/* ---- real footage ------------------------------------------------------------- */

#ifdef RC_HAVE_VIDEO
/* Sequences of the dataset held out for validation. */
static int count_validation(const rc_config *c, const rc_dataset *ds,
                            long long *frames, long long *val_frames) {
    int n = rc_dataset_n_sequences(ds), val = 0;
    *frames = *val_frames = 0;
    for (int i = 0; i < n; i++) {
        const rc_shard_sequence *q = rc_dataset_sequence(ds, i, NULL);
        int v = rc_sequence_is_validation(q->name, c->val_fraction);
        val += v;
        *frames += q->n_records;
        *val_frames += v ? q->n_records : 0;
    }
    return val;
}

/* What training and validation loaders share: the clip geometry and the
 * symmetry twins of the loss (config.c allows no rendered twins here). */
static void loader_options(const rc_config *c, rc_loader_options *o) {
    rc_loader_options_default(o);
    o->threads = c->loader_threads;
    o->batch = c->batch;
    o->clip_steps = c->clip_steps;
    o->frame_stride = c->frame_stride;
    o->size = c->image_size;
    o->channels = c->channels;
    o->resize = c->resize;
    int kinds[RC_TWIN_KINDS], n = rc_loss_twins(&c->loss, kinds);
    for (int t = 0; t < n; t++)
        o->twin_maps[o->n_twin_maps++] = rc_twin_symmetry(kinds[t]);
    o->on_bad = c->on_bad ? RC_ON_BAD_SKIP : RC_ON_BAD_FAIL;
    o->val_fraction = c->val_fraction;
}

static rc_loader *create_loader(rc_dataset **ds, const rc_loader_options *o) {
    rc_loader *l = rc_loader_create(*ds, o);
    if (!l) {
        rc_dataset_close(*ds);
        *ds = NULL;
    }
    return l;
}

rc_loader *rc_train_open_loader(const rc_config *c, rc_dataset **ds,
                                    const rc_stage_ops *stage, int u8) {
    *ds = rc_dataset_open(c->data_path, c->on_bad ? RC_ON_BAD_SKIP
                                                   : RC_ON_BAD_FAIL);
    if (!*ds) return NULL;
    if (data_rank == 0) { /* what the run trains on */
        long long frames, val_frames;
        int n = rc_dataset_n_sequences(*ds);
        int val = count_validation(c, *ds, &frames, &val_frames);
        rc_log("data: %s: %d sequence(s), %lld frames; training on %d "
               "(%lld frames), %d held out (data.val_fraction %.2g)",
               c->data_path, n, frames, n - val, frames - val_frames, val,
               c->val_fraction);
    }
    rc_loader_options o;
    loader_options(c, &o);
    o.random_crop = c->random_crop;
    o.flip = c->flip;
    /* the loader draws clips by (seed, step, b) for its own batch: other
     * ranks draw from streams of their own (statistically, not clip for
     * clip, the data of one process with the global batch) */
    o.seed = data_rank ? rc_hash_combine(c->seed, (uint64_t)data_rank) : c->seed;
    o.ring = c->ring;
    o.u8 = u8;
    if (stage) {
        /* decode straight into page-locked buffers, so the copy to the
         * device is one DMA; the feed holds two steps at once */
        o.alloc = stage->host_alloc;
        o.free = stage->host_free;
        if (o.ring < 2) o.ring = 2;
    }
    o.validation = 0;
    return create_loader(ds, &o);
}

rc_loader *rc_train_open_val_loader(const rc_config *c, rc_dataset **ds,
                                    int *none) {
    *none = 0;
    *ds = rc_dataset_open(c->data_path, c->on_bad ? RC_ON_BAD_SKIP
                                                   : RC_ON_BAD_FAIL);
    if (!*ds) return NULL;
    long long frames, val_frames;
    if (count_validation(c, *ds, &frames, &val_frames) == 0) {
        *none = 1;
        rc_dataset_close(*ds);
        *ds = NULL;
        return NULL;
    }
    rc_loader_options o;
    loader_options(c, &o);
    o.random_crop = 0; /* the crop evaluation sees */
    o.flip = 0;
    o.seed = c->seed;  /* the same clips on every rank and every time */
    o.ring = 1;
    o.validation = 1;
    return create_loader(ds, &o);
}

const void *rc_train_loader_get(void *ctx, int64_t step) {
    return rc_loader_get_batch(ctx, step);
}
void rc_train_loader_release(void *ctx, int64_t step) {
    rc_loader_release(ctx, step);
}
#endif

