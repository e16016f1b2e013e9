/* test_feed.c: the trainer's device input path (feed.h, train_input.h) on the
 * emulated CUDA stage, whose copies run on a thread after random delays.
 *
 *  - the emulator can fail: a host buffer refilled right after submit (no
 *    wait_host_free) gives torn frames on some trials;
 *  - through the feed, every step sees exactly its own batch, before and
 *    after a simulated compute, although the source poisons each buffer the
 *    moment it is handed back and reuses it two steps later;
 *  - the copy of step + 1 is submitted before step computes (overlap);
 *  - a jump to another step (resume) drops the prefetched one;
 *  - a source error on the prefetched step is reported by its own begin;
 *  - the synthetic source renders ahead on its thread with the same frames
 *    as rendering in turn;
 *  - the source never holds more than two steps, and none after close;
 *  - frames as bytes become x / 255 floats, bitwise the same through the
 *    stage's (emulated) conversion kernel and the host path's conversion.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "recompose/common.h"
#include "recompose/config.h"
#include "recompose/feed.h"
#include "test_util.h"
#include "train_input.h"

#define N_FLOATS 4096

static float value_of(int64_t step, size_t i) {
    return (float)(step * 10007 + (int64_t)i % 997);
}

static int has_batch_of(const float *x, int64_t step) {
    for (size_t i = 0; i < N_FLOATS; i++)
        if (x[i] != value_of(step, i)) return 0;
    return 1;
}

static void sleep_us(int us) {
    struct timespec ts = {0, (long)us * 1000};
    nanosleep(&ts, NULL);
}

/* A source like the shard loader with a ring of two: step s lives in
 * buffer s % 2, and a buffer is poisoned (NaN) when handed back. */
typedef struct {
    float *buf[2];
    int held, max_held;
    int64_t fail_step; /* get of this step fails */
} ring_source;

static const void *ring_get(void *ctx, int64_t step) {
    ring_source *r = ctx;
    if (step == r->fail_step) {
        rc_set_error("frame %lld of clip 3: corrupt JPEG", (long long)step);
        return NULL;
    }
    float *b = r->buf[step % 2];
    for (size_t i = 0; i < N_FLOATS; i++) b[i] = value_of(step, i);
    if (++r->held > r->max_held) r->max_held = r->held;
    return b;
}

static void ring_release(void *ctx, int64_t step) {
    ring_source *r = ctx;
    float *b = r->buf[step % 2];
    for (size_t i = 0; i < N_FLOATS; i++) b[i] = NAN;
    r->held--;
}

static void test_emulator_catches_early_handback(const rc_stage_ops *st) {
    size_t bytes = N_FLOATS * sizeof(float);
    float *host = st->host_alloc(bytes, NULL);
    void *stage = st->create(bytes, 2, 0);
    int torn = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (size_t i = 0; i < N_FLOATS; i++) host[i] = value_of(trial, i);
        int slot = st->submit(stage, host, bytes);
        /* the bug under test: refill without wait_host_free */
        for (size_t i = 0; i < N_FLOATS; i++) host[i] = NAN;
        const float *dev = st->acquire(stage, slot);
        torn += !has_batch_of(dev, trial);
        st->release(stage, slot);
    }
    CHECK_MSG(torn > 0, "20 early refills all went unnoticed: the emulated "
                        "copy is not asynchronous");
    /* and done right, never torn */
    for (int trial = 0; trial < 20; trial++) {
        for (size_t i = 0; i < N_FLOATS; i++) host[i] = value_of(trial, i);
        int slot = st->submit(stage, host, bytes);
        st->wait_host_free(stage, slot);
        for (size_t i = 0; i < N_FLOATS; i++) host[i] = NAN;
        CHECK(has_batch_of(st->acquire(stage, slot), trial));
        st->release(stage, slot);
    }
    st->destroy(stage);
    st->host_free(host, NULL);
}

static void test_feed_steps(const rc_stage_ops *st) {
    size_t bytes = N_FLOATS * sizeof(float);
    ring_source r = {.fail_step = -1};
    for (int i = 0; i < 2; i++) r.buf[i] = st->host_alloc(bytes, NULL);
    rc_batch_source src = {ring_get, ring_release, &r};
    rc_feed *f = rc_feed_create(st, &src, bytes, 0);
    CHECK(f != NULL);
    int64_t end = 40;
    int wrong = 0, late = 0;
    for (int64_t step = 3; step < end; step++) {
        int64_t before = rc_stage_emu_submitted();
        const void *host = NULL;
        const float *dev = rc_feed_begin(f, step, end, &host);
        CHECK(dev != NULL && host != NULL);
        if (!dev) break;
        /* begin submits this step's copy only when it was not prefetched */
        int64_t expect = (step == 3 ? 1 : 0) + (step + 1 < end ? 1 : 0);
        late += rc_stage_emu_submitted() - before != expect;
        wrong += !has_batch_of(dev, step) || !has_batch_of(host, step);
        sleep_us((int)(step % 5) * 100); /* the "compute" */
        wrong += !has_batch_of(dev, step);
        rc_feed_end(f, step);
    }
    CHECK_MSG(wrong == 0, "%d reads saw another step's frames", wrong);
    CHECK_MSG(late == 0, "%d steps did not start the next copy", late);
    CHECK_MSG(r.max_held <= 2, "source held %d steps", r.max_held);
    CHECK(r.held == 0);

    /* a jump: 5 prefetches 6; asking for 20 instead drops it */
    const void *h;
    CHECK(has_batch_of(rc_feed_begin(f, 5, end, &h), 5));
    rc_feed_end(f, 5);
    CHECK(r.held == 1);
    const float *d20 = rc_feed_begin(f, 20, end, &h);
    CHECK(d20 && has_batch_of(d20, 20));
    rc_feed_end(f, 20);

    /* the prefetch of 8 fails: step 7 still trains, 8 reports the error */
    r.fail_step = 8;
    CHECK(rc_feed_begin(f, 7, end, &h) != NULL);
    rc_feed_end(f, 7);
    CHECK(rc_feed_begin(f, 8, end, &h) == NULL);
    CHECK_MSG(strstr(rc_last_error(), "frame 8 of clip 3") != NULL, "error: %s",
              rc_last_error());
    r.fail_step = -1;
    CHECK(has_batch_of(rc_feed_begin(f, 9, end, &h), 9));
    rc_feed_destroy(f); /* with 10 still prefetched */
    CHECK_MSG(r.held == 0, "source still holds %d step(s) after destroy", r.held);
    for (int i = 0; i < 2; i++) st->host_free(r.buf[i], NULL);
}

/* ---- the synthetic source through rc_train_input ----------------------------- */

static void render_slowly(const rc_config *c, int64_t step, float *frames) {
    (void)c;
    for (size_t i = 0; i < N_FLOATS; i++) {
        frames[i] = value_of(step, i);
        if (i == N_FLOATS / 2) sleep_us(200); /* half written for a while */
    }
}

static void test_synthetic_input(const rc_stage_ops *st, int ahead) {
    rc_config c;
    rc_config_default(&c);
    size_t bytes = N_FLOATS * sizeof(float);
    rc_batch_source src;
    CHECK(rc_synthetic_source_open(&src, &c, bytes, render_slowly, ahead,
                                   st ? st->host_alloc : NULL,
                                   st ? st->host_free : NULL) == 0);
    rc_train_input in;
    CHECK(rc_train_input_open(&in, &src, st, N_FLOATS, 0) == 0);
    int wrong = 0;
    int64_t end = 30;
    for (int64_t step = 0; step < end; step++) {
        if (step == 12) step = 17; /* a resume somewhere else */
        const float *host = NULL;
        const float *x = rc_train_input_begin(&in, step, end, &host);
        CHECK(x != NULL);
        if (!x) break;
        wrong += !has_batch_of(x, step) || !has_batch_of(host, step);
        sleep_us(150);
        wrong += !has_batch_of(x, step);
        rc_train_input_end(&in, step);
    }
    CHECK_MSG(wrong == 0, "synthetic input (stage %s, ahead %d): %d reads saw "
                          "another step's frames",
              st ? st->name : "none", ahead, wrong);
    rc_train_input_close(&in);
    rc_synthetic_source_close(&src);
}

/* ---- frames as bytes ------------------------------------------------------------- */

static unsigned char byte_of(int64_t step, size_t i) {
    return (unsigned char)(step * 31 + (int64_t)i * 7);
}

/* the device's (emulated kernel's) and the host's conversion: x * (1/255) */
static int has_bytes_of(const float *x, int64_t step) {
    for (size_t i = 0; i < N_FLOATS; i++)
        if (x[i] != (float)byte_of(step, i) * (1.0f / 255.0f)) return 0;
    return 1;
}

typedef struct {
    unsigned char *buf[2];
} byte_ring;

static const void *byte_get(void *ctx, int64_t step) {
    byte_ring *r = ctx;
    unsigned char *b = r->buf[step % 2];
    for (size_t i = 0; i < N_FLOATS; i++) b[i] = byte_of(step, i);
    return b;
}

static void byte_release(void *ctx, int64_t step) {
    byte_ring *r = ctx;
    memset(r->buf[step % 2], 0xAB, N_FLOATS); /* poisoned when handed back */
}

/* Bytes through the stage (converted by its kernel, emulated here) and
 * through the host path (converted on the host) give the same floats. */
static void test_u8_input(const rc_stage_ops *st) {
    byte_ring r;
    for (int i = 0; i < 2; i++)
        r.buf[i] = st ? st->host_alloc(N_FLOATS, NULL) : rc_xmalloc(N_FLOATS);
    rc_batch_source src = {byte_get, byte_release, &r};
    rc_train_input in;
    CHECK(rc_train_input_open(&in, &src, st, N_FLOATS, 1) == 0);
    int wrong = 0;
    int64_t end = 20;
    for (int64_t step = 0; step < end; step++) {
        const float *host = NULL;
        const float *x = rc_train_input_begin(&in, step, end, &host);
        CHECK(x != NULL);
        if (!x) break;
        wrong += !has_bytes_of(x, step);
        /* the host floats exist only where the host converted */
        wrong += st ? host != NULL : !has_bytes_of(host, step);
        sleep_us(100);
        wrong += !has_bytes_of(x, step);
        rc_train_input_end(&in, step);
    }
    CHECK_MSG(wrong == 0, "bytes (stage %s): %d wrong reads", st ? st->name : "none",
              wrong);
    rc_train_input_close(&in);
    for (int i = 0; i < 2; i++) {
        if (st)
            st->host_free(r.buf[i], NULL);
        else
            free(r.buf[i]);
    }
}

int main(void) {
    const rc_stage_ops *st = rc_stage_emu();
    rc_stage_emu_set_delay(400, 7);
    test_emulator_catches_early_handback(st);
    test_feed_steps(st);
    test_synthetic_input(st, 1);
    test_synthetic_input(st, 0);
    test_synthetic_input(NULL, 0);
    test_u8_input(st);
    test_u8_input(NULL);
    /* no delay at all: the other extreme of timing */
    rc_stage_emu_set_delay(0, 1);
    test_feed_steps(st);
    test_synthetic_input(st, 1);
    TEST_DONE();
}
