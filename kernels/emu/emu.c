/* emu.c: fiber scheduler behind emu.h. See emu.h for the model. */
#include "emu/emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "recompose/common.h"

#define EMU_WARP 32
#define EMU_STACK (128 * 1024)
#define EMU_SHARED (48 * 1024)
#define EMU_MAX_THREADS 1024

enum { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

typedef struct {
    ucontext_t ctx;
    int state;
    size_t shared_off;
} emu_thread;

rc_dim3 rc_emu_thread_idx, rc_emu_block_idx, rc_emu_block_dim, rc_emu_grid_dim;

static uint64_t rng_state = 1;
static uint64_t barrier_releases;
static ucontext_t scheduler;
static emu_thread *threads;
static unsigned n_threads, current;
static char *stacks;
static unsigned char shared_mem[EMU_SHARED] __attribute__((aligned(64)));
static double warp_slots[EMU_MAX_THREADS];
static rc_emu_entry kernel_fn;
static const void *kernel_args;

void rc_emu_seed(uint64_t seed) { rng_state = seed ? seed : 1; }
uint64_t rc_emu_barrier_count(void) { return barrier_releases; }

static unsigned next_random(unsigned bound) {
    /* xorshift64*: quality is irrelevant, reproducibility is the point */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (unsigned)((rng_state * 2685821657736338717ULL) >> 33) % bound;
}

static void shuffle(unsigned *v, unsigned n) {
    for (unsigned i = n; i > 1; i--) {
        unsigned j = next_random(i);
        unsigned t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static void fiber_main(void) {
    kernel_fn(kernel_args);
    threads[current].state = DONE;
    /* returning resumes uc_link, the scheduler */
}

static void yield_at(int state) {
    threads[current].state = state;
    swapcontext(&threads[current].ctx, &scheduler);
}

void rc_emu_syncthreads(void) { yield_at(AT_BLOCK_BARRIER); }

double rc_emu_shfl_down(double v, unsigned delta) {
    unsigned me = current, lane = me % EMU_WARP;
    warp_slots[me] = v;
    yield_at(AT_WARP_BARRIER);       /* every lane has published */
    double out = v;
    if (lane + delta < EMU_WARP && me + delta < n_threads)
        out = warp_slots[me + delta];
    yield_at(AT_WARP_BARRIER);       /* every lane has read */
    return out;
}

void *rc_emu_shared(size_t bytes) {
    emu_thread *t = &threads[current];
    size_t off = t->shared_off;
    t->shared_off = off + ((bytes + 15) & ~(size_t)15);
    if (t->shared_off > EMU_SHARED) {
        fprintf(stderr, "emu: kernel asks for more than %d bytes of shared "
                        "memory\n", EMU_SHARED);
        abort();
    }
    return shared_mem + off;
}

/* Release the threads waiting at a barrier once every live thread of its
 * scope has arrived. Returns the number released. */
static unsigned release_barriers(void) {
    unsigned live = 0, at_block = 0, released = 0;
    for (unsigned i = 0; i < n_threads; i++) {
        if (threads[i].state != DONE) live++;
        if (threads[i].state == AT_BLOCK_BARRIER) at_block++;
    }
    if (live > 0 && at_block == live) {
        for (unsigned i = 0; i < n_threads; i++)
            if (threads[i].state == AT_BLOCK_BARRIER) threads[i].state = RUNNABLE;
        barrier_releases++;
        return at_block;
    }
    for (unsigned w = 0; w * EMU_WARP < n_threads; w++) {
        unsigned lo = w * EMU_WARP, hi = lo + EMU_WARP;
        if (hi > n_threads) hi = n_threads;
        unsigned wl = 0, ww = 0;
        for (unsigned i = lo; i < hi; i++) {
            if (threads[i].state != DONE) wl++;
            if (threads[i].state == AT_WARP_BARRIER) ww++;
        }
        if (wl > 0 && ww == wl) {
            for (unsigned i = lo; i < hi; i++) threads[i].state = RUNNABLE;
            released += ww;
            barrier_releases++;
        }
    }
    return released;
}

static void run_block(void) {
    unsigned order[EMU_MAX_THREADS];
    memset(shared_mem, 0xff, sizeof shared_mem); /* NaN in every float */
    for (unsigned i = 0; i < n_threads; i++) {
        emu_thread *t = &threads[i];
        t->state = RUNNABLE;
        t->shared_off = 0;
        getcontext(&t->ctx);
        t->ctx.uc_stack.ss_sp = stacks + (size_t)i * EMU_STACK;
        t->ctx.uc_stack.ss_size = EMU_STACK;
        t->ctx.uc_link = &scheduler;
        makecontext(&t->ctx, fiber_main, 0);
    }
    for (;;) {
        unsigned n = 0;
        for (unsigned i = 0; i < n_threads; i++)
            if (threads[i].state == RUNNABLE) order[n++] = i;
        if (n == 0) {
            int all_done = 1;
            for (unsigned i = 0; i < n_threads; i++)
                if (threads[i].state != DONE) all_done = 0;
            if (all_done) return;
            if (release_barriers() == 0) {
                fprintf(stderr, "emu: deadlock in block %u: some threads wait "
                                "at a barrier that others never reach "
                                "(divergent __syncthreads or shuffle)\n",
                        rc_emu_block_idx.x);
                abort();
            }
            continue;
        }
        shuffle(order, n);
        for (unsigned k = 0; k < n; k++) {
            current = order[k];
            unsigned flat = current;
            rc_emu_thread_idx.x = flat % rc_emu_block_dim.x;
            rc_emu_thread_idx.y = 0;
            rc_emu_thread_idx.z = 0;
            swapcontext(&scheduler, &threads[current].ctx);
        }
    }
}

void rc_emu_launch(unsigned blocks, unsigned nthreads, rc_emu_entry fn,
                   const void *args) {
    if (blocks == 0 || nthreads == 0) return;
    if (nthreads > EMU_MAX_THREADS) {
        fprintf(stderr, "emu: block of %u threads exceeds %d\n", nthreads,
                EMU_MAX_THREADS);
        abort();
    }
    n_threads = nthreads;
    threads = rc_xcalloc(nthreads, sizeof *threads);
    stacks = rc_xmalloc((size_t)nthreads * EMU_STACK);
    kernel_fn = fn;
    kernel_args = args;
    rc_emu_block_dim.x = nthreads;
    rc_emu_block_dim.y = rc_emu_block_dim.z = 1;
    rc_emu_grid_dim.x = blocks;
    rc_emu_grid_dim.y = rc_emu_grid_dim.z = 1;
    unsigned *block_order = rc_xmalloc(blocks * sizeof *block_order);
    for (unsigned b = 0; b < blocks; b++) block_order[b] = b;
    shuffle(block_order, blocks);
    for (unsigned b = 0; b < blocks; b++) {
        rc_emu_block_idx.x = block_order[b];
        rc_emu_block_idx.y = rc_emu_block_idx.z = 0;
        run_block();
    }
    free(block_order);
    free(stacks);
    free(threads);
    threads = NULL;
}
