/* emu.h: a CPU emulation of the CUDA execution model, so that the custom
 * kernels in kernels/ build and run under gcc in CI (no GPU there).
 *
 * A launch runs the blocks of the grid one after another, in a random
 * (seeded) order. Each thread of a block is a fiber (ucontext) with its own
 * stack. A fiber runs until it reaches a barrier (__syncthreads, or the warp
 * exchange inside a shuffle) or returns; between barriers the scheduler
 * resumes the runnable threads in a freshly shuffled order. Shared memory is
 * filled with NaN bytes at block start. A kernel that reads shared memory
 * another thread wrote without a barrier in between therefore sees NaN or a
 * stale value on most seeds, which is what the tests rely on to catch
 * missing synchronisation. A barrier that not every live thread reaches
 * (divergent __syncthreads) aborts with a message instead of hanging.
 */
#ifndef RC_EMU_EMU_H
#define RC_EMU_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    unsigned x, y, z;
} rc_dim3;

/* Identity of the running fiber and of its block (what CUDA's built-in
 * variables read). Valid only inside a kernel launched by rc_emu_launch. */
extern rc_dim3 rc_emu_thread_idx, rc_emu_block_idx, rc_emu_block_dim,
    rc_emu_grid_dim;

typedef void (*rc_emu_entry)(const void *args);

/* Run fn(args) as a 1-D grid of `blocks` blocks of `threads` threads. */
void rc_emu_launch(unsigned blocks, unsigned threads, rc_emu_entry fn,
                   const void *args);

/* Seed of the scheduling order (default 1). */
void rc_emu_seed(uint64_t seed);

/* __syncthreads(): wait until every live thread of the block arrives. */
void rc_emu_syncthreads(void);

/* __shfl_down_sync(0xffffffff, v, delta) within the 32-lane warp. */
double rc_emu_shfl_down(double v, unsigned delta);

/* A __shared__ array: every thread of the block gets the same address for
 * the n-th call in its kernel body, as all threads declare the same arrays
 * in the same order. */
void *rc_emu_shared(size_t bytes);

/* Number of launches and of barrier releases so far (tests check that the
 * emulator actually ran the synchronised path). */
uint64_t rc_emu_barrier_count(void);

#ifdef __cplusplus
}
#endif
#endif
