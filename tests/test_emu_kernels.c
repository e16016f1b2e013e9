/* test_emu_kernels.c: what the fiber emulator (kernels/emu) itself must
 * guarantee for CI's tests of the CUDA kernels to mean anything. The values
 * of every op on the emulated backend are compared with the CPU reference in
 * test_backend_ops; here:
 *  - a missing __syncthreads is caught: a deliberately broken block
 *    reduction must give a wrong sum under some thread schedules;
 *  - the kernels' reductions (block sums, the CSR-ordered loss, the
 *    packed-sequence LSTM's weight gradients) give the same bits under
 *    different schedules, as the GPU's deterministic mode requires. */
#include <string.h>

#include "emu/emu.h"
#include "emu/emu_backend.h"
#include "recompose/common.h"
#include "recompose/ops.h"
#include "recompose/rng.h"
#include "test_util.h"
#include "../kernels/rc_kernels.cuh"

static uint64_t lcg = 12345;
static float frand(void) { /* uniform in [-1, 1), independent of rng.h */
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) / (double)(1 << 24)) * 2.0f - 1.0f;
}
static float *rand_array(size_t n) {
    float *a = rc_xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = frand();
    return a;
}

/* ---- the broken-barrier demonstration ------------------------------------- */

/* rc_block_sum without the barrier between publishing the warp sums and
 * reading them: warp 0 may read a slot before its warp has written it. */
RC_DEV double block_sum_missing_sync(double v, double *scratch) {
    unsigned lane = threadIdx.x % RC_WARP, warp = threadIdx.x / RC_WARP;
    unsigned n_warps = (blockDim.x + RC_WARP - 1) / RC_WARP;
    v = rc_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    if (warp == 0) {
        v = lane < n_warps ? scratch[lane] : 0.0;
        v = rc_warp_sum(v);
    }
    return v;
}

typedef struct {
    int broken;
    double *out;
} sum_args;

RC_KERNEL(k_sum_of_ids, sum_args) {
    RC_SHARED(double, scratch, RC_WARP);
    double v = threadIdx.x + 1.0;
    v = a.broken ? block_sum_missing_sync(v, scratch) : rc_block_sum(v, scratch);
    if (threadIdx.x == 0) a.out[blockIdx.x] = v;
}

static void test_missing_barrier_is_caught(void) {
    const unsigned threads = 96, blocks = 3; /* three warps per block */
    double expect = threads * (threads + 1) / 2.0, out[3];
    int wrong_ok = 0, wrong_broken = 0, seeds = 24;
    uint64_t barriers0 = rc_emu_barrier_count();
    for (int seed = 1; seed <= seeds; seed++) {
        for (int broken = 0; broken <= 1; broken++) {
            rc_emu_seed((uint64_t)seed);
            sum_args a = {broken, out};
            rc_emu_launch(blocks, threads, k_sum_of_ids_emu, &a);
            int bad = 0;
            for (unsigned b = 0; b < blocks; b++) bad |= !(out[b] == expect);
            if (broken) wrong_broken += bad; else wrong_ok += bad;
        }
    }
    CHECK(rc_emu_barrier_count() > barriers0);
    CHECK_MSG(wrong_ok == 0, "correct reduction wrong on %d of %d seeds",
              wrong_ok, seeds);
    CHECK_MSG(wrong_broken > 0, "the missing __syncthreads went unnoticed on "
              "all %d seeds", seeds);
    printf("missing-barrier kernel wrong on %d/%d seeds (correct one: %d)\n",
           wrong_broken, seeds, wrong_ok);
}

/* ---- the thread schedule does not change a result ------------------------------
 * The emulator runs a block's threads in an order drawn from its seed. The
 * reductions (block sums, the CSR-ordered loss and scatter) must give the
 * same bits under every order, as they must on a GPU. */

static void test_hinge_schedule_independent(void) {
    const rc_backend *emu = rc_backend_emu();
    int n_emb = 14, dim = 12, n_pairs = 12;
    float *emb = rand_array((size_t)n_emb * dim);
    rc_loss_pair pairs[12];
    for (int q = 0; q < n_pairs; q++) {
        pairs[q].a = (q * 5) % n_emb;
        pairs[q].b = (q * 3 + 1) % n_emb;
        pairs[q].positive = q % 3 == 0;
        pairs[q].weight = 0.5f + 0.25f * (float)(q % 4);
        pairs[q].map = q % RC_MAPS;
    }
    size_t n = (size_t)n_emb * dim;
    for (int squared = 0; squared <= 1; squared++) {
        rc_hinge_params p = {1.0, squared, 1.0 / 3};
        float *g1 = rand_array(n), *g2 = rand_array(n);
        rc_emu_seed(7);
        double l1 = emu->hinge_loss(n_emb, dim, emb, n_pairs, pairs, &p, g1);
        rc_emu_seed(99 + (uint64_t)squared);
        double l2 = emu->hinge_loss(n_emb, dim, emb, n_pairs, pairs, &p, g2);
        CHECK(l1 == l2 && isfinite(l1) && l1 > 0);
        CHECK(memcmp(g1, g2, n * sizeof(float)) == 0);
        /* d_emb is nullable */
        CHECK(emu->hinge_loss(n_emb, dim, emb, n_pairs, pairs, &p, NULL) == l1);
        free(g1); free(g2);
    }
    free(emb);
}

static void test_lstm_schedule_independent(void) {
    const rc_backend *emu = rc_backend_emu();
    int S = 6, T = 5, F = 7, H = 5;
    int len[6] = {5, 1, 3, 5, 2, 4};
    rc_lstm_shape s = {S, T, F, H, len};
    size_t nx = (size_t)S * T * F, G = 4 * (size_t)H;
    float *x = rand_array(nx), *w_ih = rand_array(G * F), *w_hh = rand_array(G * H);
    float *b = rand_array(G), *dh = rand_array((size_t)S * H);
    float *cache = emu->alloc(emu->lstm_cache_size(&s) * sizeof(float));
    float h[30], dx[2][210], dwi[2][140], dwh[2][100], db[2][20];
    for (int run = 0; run < 2; run++) {
        rc_emu_seed(run ? 1234 : 5);
        emu->lstm_forward(&s, x, w_ih, w_hh, b, h, cache);
        emu->lstm_backward(&s, x, w_ih, w_hh, cache, dh, dx[run], dwi[run],
                           dwh[run], db[run]);
    }
    CHECK(memcmp(dx[0], dx[1], sizeof dx[0]) == 0);
    CHECK(memcmp(dwi[0], dwi[1], sizeof dwi[0]) == 0);
    CHECK(memcmp(dwh[0], dwh[1], sizeof dwh[0]) == 0);
    CHECK(memcmp(db[0], db[1], sizeof db[0]) == 0);
    emu->free(cache);
    free(x); free(w_ih); free(w_hh); free(b); free(dh);
}

int main(void) {
    double t0 = rc_now();
    test_missing_barrier_is_caught();
    test_hinge_schedule_independent();
    test_lstm_schedule_independent();
    printf("emulated kernels: %.2f s\n", rc_now() - t0);
    TEST_DONE();
}
