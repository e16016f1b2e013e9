/* feed.c: double-buffered input of the trainer on a device backend (see
 * feed.h). At most two steps are held: the one being computed and the next,
 * whose copy runs meanwhile. */
#include "recompose/feed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"

#define FEED_SLOTS 2

typedef struct {
    int used;
    int64_t step;
    int slot;          /* device slot, -1 when fetching failed */
    const void *host;  /* the source's buffer */
    char err[512];     /* why fetching failed */
} feed_entry;

struct rc_feed {
    const rc_stage_ops *ops;
    rc_batch_source src;
    void *stage;
    size_t bytes;
    feed_entry e[FEED_SLOTS];
};

rc_feed *rc_feed_create(const rc_stage_ops *stage, const rc_batch_source *src,
                        size_t bytes, int u8) {
    void *st = stage->create(bytes, FEED_SLOTS, u8);
    if (!st) return NULL;
    rc_feed *f = rc_xcalloc(1, sizeof *f);
    f->ops = stage;
    f->src = *src;
    f->stage = st;
    f->bytes = bytes;
    return f;
}

static feed_entry *find_entry(rc_feed *f, int64_t step) {
    for (int i = 0; i < FEED_SLOTS; i++)
        if (f->e[i].used && f->e[i].step == step) return &f->e[i];
    return NULL;
}

/* Hand an entry's host buffer back: only after its copy has read it all. */
static void drop_entry(rc_feed *f, feed_entry *e) {
    if (e->slot >= 0) {
        f->ops->wait_host_free(f->stage, e->slot);
        f->ops->release(f->stage, e->slot);
        f->src.release(f->src.ctx, e->step);
    }
    memset(e, 0, sizeof *e);
}

/* Get the host batch of `step` from the source and start its copy. A
 * failure is kept in the entry, to be reported when the step is begun. */
static void fetch(rc_feed *f, int64_t step) {
    feed_entry *e = NULL;
    for (int i = 0; i < FEED_SLOTS && !e; i++)
        if (!f->e[i].used) e = &f->e[i];
    if (!e) { /* begin/end out of order: a bug in the caller */
        rc_log("internal error: input feed asked to hold more than %d steps",
               FEED_SLOTS);
        abort();
    }
    e->used = 1;
    e->step = step;
    e->slot = -1;
    e->host = f->src.get(f->src.ctx, step);
    if (e->host) {
        e->slot = f->ops->submit(f->stage, e->host, f->bytes);
        if (e->slot < 0) f->src.release(f->src.ctx, step);
    }
    if (e->slot < 0) snprintf(e->err, sizeof e->err, "%s", rc_last_error());
}

const float *rc_feed_begin(rc_feed *f, int64_t step, int64_t end,
                           const void **host) {
    feed_entry *e = find_entry(f, step);
    if (!e) {
        /* not the prefetched step (the first one, or a jump): start over */
        for (int i = 0; i < FEED_SLOTS; i++)
            if (f->e[i].used) drop_entry(f, &f->e[i]);
        fetch(f, step);
        e = find_entry(f, step);
    }
    if (e->slot < 0) {
        rc_set_error("%s", e->err);
        memset(e, 0, sizeof *e);
        return NULL;
    }
    const float *dev = f->ops->acquire(f->stage, e->slot);
    /* the next step's copy now overlaps this step's compute */
    if (step + 1 < end && !find_entry(f, step + 1)) fetch(f, step + 1);
    if (host) *host = e->host;
    return dev;
}

void rc_feed_end(rc_feed *f, int64_t step) {
    feed_entry *e = find_entry(f, step);
    if (e) drop_entry(f, e);
}

void rc_feed_destroy(rc_feed *f) {
    if (!f) return;
    for (int i = 0; i < FEED_SLOTS; i++)
        if (f->e[i].used) drop_entry(f, &f->e[i]);
    f->ops->destroy(f->stage);
    free(f);
}

/* ---- the CUDA stage: rc_cuda_input with page-locked host buffers ---------- */

static void *cuda_host_alloc(size_t bytes, void *ctx) {
    (void)ctx;
    return rc_cuda_pinned_alloc(bytes);
}
static void cuda_host_free(void *p, void *ctx) {
    (void)ctx;
    rc_cuda_pinned_free(p);
}
static void *cuda_create(size_t bytes, int slots, int u8) {
    return rc_cuda_input_create(bytes, slots, u8);
}
static void cuda_destroy(void *st) { rc_cuda_input_free(st); }
static int cuda_submit(void *st, const void *host, size_t bytes) {
    return rc_cuda_input_submit(st, host, bytes);
}
static const float *cuda_acquire(void *st, int slot) {
    return rc_cuda_input_acquire(st, slot);
}
static void cuda_release(void *st, int slot) { rc_cuda_input_release(st, slot); }
static void cuda_wait_host_free(void *st, int slot) {
    rc_cuda_input_wait_host_free(st, slot);
}

static const rc_stage_ops cuda_stage = {
    "cuda",       cuda_host_alloc, cuda_host_free, cuda_create,        cuda_destroy,
    cuda_submit, cuda_acquire,    cuda_release,   cuda_wait_host_free,
};

const rc_stage_ops *rc_stage_cuda(void) { return &cuda_stage; }
