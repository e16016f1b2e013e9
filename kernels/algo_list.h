/* algo_list.h: a convolution pass's candidate algorithms and the one in use
 * (plain C, shared by kernels/cuda_backend.cu and tests/test_algo_list.c, so
 * that the fallback logic the GPU needs is tested without one).
 *
 * cuDNN ranks the algorithms of a pass (by timing or by heuristics); the
 * candidates are those allowed (math type, workspace cap, deterministic for
 * the backward passes), best first. An algorithm that cuDNN offered can
 * still fail when it executes (an unsupported corner, a resource limit): the
 * pass then tries the next candidate, and the one that ran is remembered,
 * so later calls start there and the choice stays fixed for the run. A pass
 * with no candidate left fails with the last status.
 *
 * Invariants: 0 <= current <= n; current == n means every candidate failed.
 * Entries below current failed once and are never tried again.
 */
#ifndef RECOMPOSE_ALGO_LIST_H
#define RECOMPOSE_ALGO_LIST_H

#include <stddef.h>

#define RC_ALGO_CANDIDATES 8

typedef struct {
    int algo[RC_ALGO_CANDIDATES]; /* cuDNN's algorithm enum */
    int math[RC_ALGO_CANDIDATES]; /* its cudnnMathType_t */
    size_t ws[RC_ALGO_CANDIDATES]; /* its workspace, bytes */
    int n, current;
} rc_algo_list;

static inline void rc_algo_list_clear(rc_algo_list *l) {
    l->n = 0;
    l->current = 0;
}

/* Append a candidate (ranked after those already there); 0 when full. */
static inline int rc_algo_list_add(rc_algo_list *l, int algo, int math, size_t ws) {
    if (l->n >= RC_ALGO_CANDIDATES) return 0;
    l->algo[l->n] = algo;
    l->math[l->n] = math;
    l->ws[l->n] = ws;
    l->n++;
    return 1;
}

/* Run the pass: run(ctx, algo, math, ws) returns 0 (ran) or a non-zero
 * status. On a failure the next candidate is tried, note(ctx, failed
 * candidate index, status) told first. Returns 0 once one ran (it stays
 * current), else the last status (or -1 with no candidate at all). */
static inline int rc_algo_list_run(rc_algo_list *l,
                                   int (*run)(void *ctx, int algo, int math, size_t ws),
                                   void (*note)(void *ctx, const rc_algo_list *l,
                                                int failed, int status),
                                   void *ctx) {
    int status = -1;
    while (l->current < l->n) {
        int i = l->current;
        status = run(ctx, l->algo[i], l->math[i], l->ws[i]);
        if (status == 0) return 0;
        if (note) note(ctx, l, i, status);
        l->current++;
    }
    return status;
}

#endif
