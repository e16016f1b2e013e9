/* feed.h: the trainer's input stage for a backend that computes on device
 * memory (the CUDA backend, or its CPU emulation).
 *
 *   source (shard loader ring / synthetic renderer), host (pinned) buffers
 *      --submit: async copy on a copy stream--> device slot
 *      --acquire: the compute stream waits for that copy--> the step reads it
 *
 * rc_feed_begin(step) returns the device frames of `step` and, before the
 * step is computed, already starts the copy of step + 1: so the loader's
 * threads decode step + 2 and later, the copy engine moves step + 1, and the
 * GPU computes step, all at once. rc_feed_end(step) marks the step's device
 * slot consumed and hands its host buffer back to the source only once the
 * copy out of it has finished (a pinned buffer refilled under a running DMA
 * would give the step torn frames).
 *
 * The stage (rc_stage_ops) is the device half: the CUDA one (cudaMemcpyAsync
 * on a copy stream, events) and an emulated one whose copies run on a thread
 * after random delays, so that the CPU tests catch a buffer handed back or
 * reused too early.
 */
#ifndef RECOMPOSE_FEED_H
#define RECOMPOSE_FEED_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *name;
    /* Host buffers that the copies read from (page-locked on CUDA). */
    void *(*host_alloc)(size_t bytes, void *ctx);
    void (*host_free)(void *p, void *ctx);
    /* `slots` device buffers for host batches of `bytes` each; NULL with the
     * error set. u8: the batches are bytes (pixels), and each slot turns
     * its copy into `bytes` floats (x / 255, a kernel on the device) as it
     * is acquired; 0: the batches are floats, copied as they are. */
    void *(*create)(size_t bytes, int slots, int u8);
    void (*destroy)(void *stage); /* waits for copies in flight */
    /* Start copying `bytes` of host to the next free slot (in turn); returns
     * the slot, or -1 with the error set. Does not wait for the copy. */
    int (*submit)(void *stage, const void *host, size_t bytes);
    /* The slot's device frames (floats), for work queued after this call:
     * that work runs after the copy (on CUDA the compute stream waits for
     * it) and, for bytes, after their conversion. */
    const float *(*acquire)(void *stage, int slot);
    /* Work queued so far is the last to read the slot; a later submit to the
     * slot waits for it. */
    void (*release)(void *stage, int slot);
    /* Block until the copy into the slot has read all of its host buffer. */
    void (*wait_host_free)(void *stage, int slot);
} rc_stage_ops;

/* The CUDA stage (rc_cuda_input; pinned host memory). Its calls report an
 * error in a build without CUDA. */
const rc_stage_ops *rc_stage_cuda(void);
/* The emulated stage: device slots are host memory, copies run on a thread
 * of their own, each after a random delay of up to `max_delay_us`
 * (rc_stage_emu_set_delay; default 300 us). For tests and train.device=emu. */
const rc_stage_ops *rc_stage_emu(void);
void rc_stage_emu_set_delay(int max_delay_us, uint64_t seed);
/* Copies the emulated stage has started so far, all stages together (tests
 * check that the next step's copy is submitted before a step computes). */
int64_t rc_stage_emu_submitted(void);

/* Where batches come from: get returns the host buffer of `step` (in memory
 * from the stage's host_alloc; NULL with the error set), valid until
 * release(step): floats, or bytes for a feed made with u8. The feed holds
 * at most two steps at a time (step and step + 1) and asks for steps in
 * increasing order. */
typedef struct {
    const void *(*get)(void *ctx, int64_t step);
    void (*release)(void *ctx, int64_t step);
    void *ctx;
} rc_batch_source;

typedef struct rc_feed rc_feed;

/* A feed of host batches of `bytes` through `stage` (two device slots);
 * u8: the batches are bytes, turned into floats on the device. NULL with
 * the error set. */
rc_feed *rc_feed_create(const rc_stage_ops *stage, const rc_batch_source *src,
                        size_t bytes, int u8);
/* Frees the device slots after the copies in flight, and hands back to the
 * source every host buffer the feed still holds. */
void rc_feed_destroy(rc_feed *f);

/* The device frames of `step` (floats), and (host) its host batch, valid until
 * rc_feed_end(step). When step + 1 < end the copy of step + 1 is started
 * before returning. A step other than the one prefetched (a first step, a
 * resume) is fetched then. NULL with the error set when the source failed
 * for `step` (an error fetching step + 1 is reported by the next begin). */
const float *rc_feed_begin(rc_feed *f, int64_t step, int64_t end,
                           const void **host);
/* Call after the step's work that reads the frames has been queued. */
void rc_feed_end(rc_feed *f, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
