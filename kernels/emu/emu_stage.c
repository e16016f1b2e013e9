/* emu_stage.c: the CUDA input stage (rc_cuda_input) emulated on the CPU.
 *
 * Device slots are host memory. A copy thread plays the copy stream: it
 * takes submitted copies in order, waits (as cudaStreamWaitEvent on the
 * slot's "consumed" event does) until the slot's previous batch has been
 * released, sleeps a random while, then copies. Generations per slot stand
 * for the events: submitted, copied and consumed count batches. The random
 * delay is what makes the tests meaningful: a caller that hands a host
 * buffer back before wait_host_free, or reads a slot without acquire, sees
 * the wrong frames on most runs.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recompose/common.h"
#include "recompose/feed.h"
#include "recompose/rng.h"
#include "emu/emu_backend.h"

#define QUEUE_CAP 16

typedef struct {
    float *dev;      /* the frames the step reads */
    uint8_t *raw;    /* u8: where the copy lands, converted at acquire */
    size_t len;      /* bytes of the newest batch submitted */
    uint64_t submitted, copied, consumed; /* generations */
} emu_slot;

typedef struct {
    int slot;
    uint64_t gen;
    const void *host;
    size_t bytes;
} copy_job;

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    emu_slot *slots;
    int n_slots, next_slot;
    size_t cap;
    int u8;
    copy_job queue[QUEUE_CAP];
    int head, count, stop;
    rc_rng rng;
    int max_delay_us;
} emu_stage;

static int g_max_delay_us = 300;
static uint64_t g_seed = 1;
static atomic_llong g_submitted;

void rc_stage_emu_set_delay(int max_delay_us, uint64_t seed) {
    g_max_delay_us = max_delay_us < 0 ? 0 : max_delay_us;
    g_seed = seed;
}

int64_t rc_stage_emu_submitted(void) { return atomic_load(&g_submitted); }

static void sleep_us(int us) {
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void *copy_thread(void *arg) {
    emu_stage *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (st->count == 0 && !st->stop) pthread_cond_wait(&st->cv, &st->mu);
        if (st->count == 0) break; /* stopping, and nothing left to copy */
        copy_job job = st->queue[st->head];
        emu_slot *s = &st->slots[job.slot];
        /* the stream waits until the slot's previous batch is consumed */
        while (s->consumed + 1 < job.gen) pthread_cond_wait(&st->cv, &st->mu);
        int delay = st->max_delay_us
                        ? (int)(rc_rng_next(&st->rng) % (uint64_t)(st->max_delay_us + 1))
                        : 0;
        pthread_mutex_unlock(&st->mu);
        sleep_us(delay);
        memcpy(st->u8 ? (void *)s->raw : (void *)s->dev, job.host, job.bytes);
        pthread_mutex_lock(&st->mu);
        s->copied = job.gen;
        st->head = (st->head + 1) % QUEUE_CAP;
        st->count--;
        pthread_cond_broadcast(&st->cv);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void free_slots(emu_stage *st) {
    for (int i = 0; i < st->n_slots; i++) {
        free(st->slots[i].dev);
        free(st->slots[i].raw);
    }
    free(st->slots);
}

static void *emu_create(size_t bytes, int slots, int u8) {
    if (slots < 1) slots = 2;
    emu_stage *st = rc_xcalloc(1, sizeof *st);
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->n_slots = slots;
    st->cap = bytes;
    st->u8 = u8;
    st->max_delay_us = g_max_delay_us;
    rc_rng_seed(&st->rng, g_seed);
    st->slots = rc_xcalloc((size_t)slots, sizeof *st->slots);
    for (int i = 0; i < slots; i++) {
        size_t dev_bytes = u8 ? bytes * sizeof(float) : bytes;
        st->slots[i].dev = rc_xcalloc(1, dev_bytes ? dev_bytes : 1);
        if (u8) st->slots[i].raw = rc_xcalloc(1, bytes ? bytes : 1);
    }
    if (pthread_create(&st->thread, NULL, copy_thread, st) != 0) {
        rc_set_error("emulated input stage: cannot start its copy thread");
        free_slots(st);
        free(st);
        return NULL;
    }
    return st;
}

static void emu_destroy(void *p) {
    emu_stage *st = p;
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    free_slots(st);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    free(st);
}

static int emu_submit(void *p, const void *host, size_t bytes) {
    emu_stage *st = p;
    if (bytes > st->cap)
        return rc_set_error("emulated input stage: batch of %zu bytes exceeds "
                            "the %zu bytes the slots were created for",
                            bytes, st->cap);
    pthread_mutex_lock(&st->mu);
    while (st->count == QUEUE_CAP) pthread_cond_wait(&st->cv, &st->mu);
    int slot = st->next_slot;
    st->next_slot = (st->next_slot + 1) % st->n_slots;
    copy_job *job = &st->queue[(st->head + st->count) % QUEUE_CAP];
    job->slot = slot;
    job->gen = ++st->slots[slot].submitted;
    job->host = host;
    job->bytes = bytes;
    st->slots[slot].len = bytes;
    st->count++;
    atomic_fetch_add(&g_submitted, 1);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    return slot;
}

/* Block until the slot's newest submitted batch has been copied. */
static void wait_copied(emu_stage *st, int slot) {
    pthread_mutex_lock(&st->mu);
    emu_slot *s = &st->slots[slot];
    while (s->copied != s->submitted) pthread_cond_wait(&st->cv, &st->mu);
    pthread_mutex_unlock(&st->mu);
}

/* The emulated compute runs on the calling thread, so "the compute stream
 * waits for the copy" is a host wait here. */
static const float *emu_acquire(void *p, int slot) {
    emu_stage *st = p;
    wait_copied(st, slot);
    emu_slot *s = &st->slots[slot];
    /* the CUDA stage's conversion kernel, emulated */
    if (st->u8) rc_emu_u8_to_f32(s->len, s->raw, s->dev);
    return s->dev;
}

static void emu_release(void *p, int slot) {
    emu_stage *st = p;
    pthread_mutex_lock(&st->mu);
    /* as an event recorded on the compute stream: whatever was submitted
     * to the slot so far may be overwritten by the next copy */
    st->slots[slot].consumed = st->slots[slot].submitted;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void emu_wait_host_free(void *p, int slot) { wait_copied(p, slot); }

static const rc_stage_ops emu_stage_ops = {
    "emu",      rc_host_alloc,  rc_host_free,  emu_create,        emu_destroy,
    emu_submit, emu_acquire,    emu_release,   emu_wait_host_free,
};

const rc_stage_ops *rc_stage_emu(void) { return &emu_stage_ops; }
