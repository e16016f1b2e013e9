/* train_input.c: the trainer's per-step input (see train_input.h). */
#include "train_input.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"

/* ---- synthetic batches ------------------------------------------------------
 * Three buffers: with a feed the step being computed and the prefetched next
 * one are held while the background thread renders the one after. */
#define SYNTH_BUFS 3

typedef struct {
    const rc_config *cfg;
    rc_render_fn render;
    float *buf[SYNTH_BUFS];
    int n_bufs;
    void (*free_fn)(void *, void *);
    int ahead;
    /* the render-ahead thread: job is the step it is asked to render (-1:
     * none), rendered the last step it finished */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t job, rendered;
    int stop;
} synth_source;

static float *synth_buffer(synth_source *s, int64_t step) {
    return s->buf[step % s->n_bufs];
}

static void *render_thread(void *arg) {
    synth_source *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->job < 0 && !s->stop) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) break;
        int64_t step = s->job;
        pthread_mutex_unlock(&s->mu);
        s->render(s->cfg, step, synth_buffer(s, step));
        pthread_mutex_lock(&s->mu);
        s->rendered = step;
        s->job = -1;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void wait_idle(synth_source *s) {
    while (s->job >= 0) pthread_cond_wait(&s->cv, &s->mu);
}

static const void *synth_get(void *ctx, int64_t step) {
    synth_source *s = ctx;
    if (!s->ahead) {
        s->render(s->cfg, step, synth_buffer(s, step));
        return synth_buffer(s, step);
    }
    pthread_mutex_lock(&s->mu);
    if (s->rendered != step && s->job != step) {
        /* not rendered ahead (the first step, or a jump): render it now */
        wait_idle(s);
        s->job = step;
        pthread_cond_broadcast(&s->cv);
    }
    wait_idle(s);
    /* Render the next step meanwhile. Its buffer held step - 2, which the
     * caller has handed back by now (it holds at most step - 1 and step). */
    s->job = step + 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return synth_buffer(s, step);
}

static void synth_release(void *ctx, int64_t step) {
    (void)ctx;
    (void)step;
}

static void *default_alloc(size_t bytes, void *ctx) {
    (void)ctx;
    return rc_xmalloc(bytes ? bytes : 1);
}
static void default_free(void *p, void *ctx) {
    (void)ctx;
    free(p);
}

int rc_synthetic_source_open(rc_batch_source *src, const rc_config *c,
                             size_t bytes, rc_render_fn render, int ahead,
                             void *(*alloc)(size_t, void *),
                             void (*free_fn)(void *, void *)) {
    synth_source *s = rc_xcalloc(1, sizeof *s);
    s->cfg = c;
    s->render = render;
    s->ahead = ahead;
    s->free_fn = alloc ? free_fn : default_free;
    s->job = s->rendered = -1;
    /* Read in place (no stage allocator, nothing ahead), one buffer does:
     * the step is computed before the next one is rendered. A feed copies
     * asynchronously and holds two steps, so it needs three. */
    s->n_bufs = ahead || alloc ? SYNTH_BUFS : 1;
    for (int i = 0; i < s->n_bufs; i++) {
        s->buf[i] = (alloc ? alloc : default_alloc)(bytes, NULL);
        if (!s->buf[i]) {
            for (int j = 0; j < i; j++) s->free_fn(s->buf[j], NULL);
            free(s);
            return -1;
        }
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (ahead && pthread_create(&s->thread, NULL, render_thread, s) != 0) {
        s->ahead = 0;
        rc_log("cannot start the synthetic render thread; rendering each "
               "step in turn");
    }
    src->get = synth_get;
    src->release = synth_release;
    src->ctx = s;
    return 0;
}

void rc_synthetic_source_close(rc_batch_source *src) {
    synth_source *s = src->ctx;
    if (!s) return;
    if (s->ahead) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; i < s->n_bufs; i++) s->free_fn(s->buf[i], NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    src->ctx = NULL;
}

/* ---- the input of a step -------------------------------------------------- */

int rc_train_input_u8(const rc_config *c, const rc_stage_ops *stage) {
    if (strcmp(c->source, "shards") != 0) return 0; /* rendered as floats */
    return c->transfer == RC_TRANSFER_U8 || (c->transfer == RC_TRANSFER_AUTO && stage);
}

int rc_train_input_open(rc_train_input *in, const rc_batch_source *src,
                        const rc_stage_ops *stage, size_t values, int u8) {
    memset(in, 0, sizeof *in);
    in->src = *src;
    in->u8 = u8;
    in->values = values;
    if (stage) {
        in->feed = rc_feed_create(stage, src, values * (u8 ? 1 : sizeof(float)), u8);
        return in->feed ? 0 : -1;
    }
    if (u8) in->floats = rc_xmalloc((values ? values : 1) * sizeof(float));
    return 0;
}

/* Bytes to floats on the host: x * (1/255), the device kernel's formula
 * (rc_k_u8_to_f32), so both backends see the same bits. */
static void bytes_to_floats(size_t n, const unsigned char *x, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i] * (1.0f / 255.0f);
}

const float *rc_train_input_begin(rc_train_input *in, int64_t step, int64_t end,
                                  const float **host) {
    if (in->feed) {
        const void *h = NULL;
        const float *dev = rc_feed_begin(in->feed, step, end, &h);
        *host = in->u8 ? NULL : h;
        return dev;
    }
    const void *batch = in->src.get(in->src.ctx, step);
    if (!batch) return NULL;
    if (in->u8) {
        bytes_to_floats(in->values, batch, in->floats);
        batch = in->floats;
    }
    *host = batch;
    return batch;
}

void rc_train_input_end(rc_train_input *in, int64_t step) {
    if (in->feed)
        rc_feed_end(in->feed, step);
    else
        in->src.release(in->src.ctx, step);
}

void rc_train_input_close(rc_train_input *in) {
    rc_feed_destroy(in->feed);
    in->feed = NULL;
    free(in->floats);
    in->floats = NULL;
}
