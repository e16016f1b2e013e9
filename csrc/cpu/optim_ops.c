/* optim_ops.c: the elementwise kernels of the optimiser (float32 only):
 * sum of squares for the global gradient norm, scaling for clipping, and the
 * AdamW update.
 *
 * The sum of squares is split into blocks whose size depends on n only;
 * blocks are summed in parallel and the partial sums added in block order,
 * so the result is the same for any thread count and any schedule. */
#include <math.h>

#include "cpu/real.h"

#if !RC_REAL_DOUBLE

#define RC_OPT_OMP_MIN 65536
#define RC_SUMSQ_MAX_BLOCKS 256
#define RC_SUMSQ_MIN_BLOCK 16384

double rc_sum_squares_f32(size_t n, const float *g) {
    size_t block = (n + RC_SUMSQ_MAX_BLOCKS - 1) / RC_SUMSQ_MAX_BLOCKS;
    if (block < RC_SUMSQ_MIN_BLOCK) block = RC_SUMSQ_MIN_BLOCK;
    int n_blocks = (int)((n + block - 1) / block);
    double partial[RC_SUMSQ_MAX_BLOCKS];
    #pragma omp parallel for schedule(static) if (n_blocks > 1)
    for (int bi = 0; bi < n_blocks; bi++) {
        size_t lo = (size_t)bi * block;
        size_t hi = lo + block < n ? lo + block : n;
        double acc = 0;
        for (size_t i = lo; i < hi; i++) acc += (double)g[i] * (double)g[i];
        partial[bi] = acc;
    }
    double total = 0;
    for (int bi = 0; bi < n_blocks; bi++) total += partial[bi];
    return total;
}

void rc_scale_f32(size_t n, float *g, float alpha) {
    #pragma omp parallel for schedule(static) if (n > RC_OPT_OMP_MIN)
    for (size_t i = 0; i < n; i++) g[i] *= alpha;
}

void rc_axpy_f32(size_t n, float alpha, const float *x, float *y) {
    #pragma omp parallel for schedule(static) if (n > RC_OPT_OMP_MIN)
    for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

/* The operation order of torch.optim.AdamW (single-tensor path):
 *   w *= 1 - lr*wd                          (decoupled decay, first)
 *   m = m*b1 + (1-b1)*g;  v = v*b2 + (1-b2)*g*g
 *   w += -(lr/c1) * m / (sqrt(v)/sqrt(c2) + eps)
 * Scalar factors are formed in double and rounded to float once, as
 * PyTorch does with its Python-float hyperparameters. */
void rc_adamw_update_f32(size_t n, float *w, const float *g, float *m,
                         float *v, float lr, float beta1, float beta2,
                         float eps, float weight_decay, float c1, float c2) {
    const float decay = (float)(1.0 - (double)lr * weight_decay);
    const float a1 = (float)(1.0 - (double)beta1);
    const float a2 = (float)(1.0 - (double)beta2);
    const float neg_step = (float)(-(double)lr / c1);
    const float c2_sqrt = (float)sqrt((double)c2);
    #pragma omp parallel for schedule(static) if (n > RC_OPT_OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float wi = w[i] * decay;
        float mi = m[i] * beta1 + a1 * g[i];
        float vi = v[i] * beta2 + a2 * g[i] * g[i];
        float denom = sqrtf(vi) / c2_sqrt + eps;
        w[i] = wi + neg_step * mi / denom;
        m[i] = mi;
        v[i] = vi;
    }
}

#endif
