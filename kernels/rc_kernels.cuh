/* rc_kernels.cuh: the custom kernels of the CUDA backend, in the portable
 * dialect of portable.cuh. Compiled by nvcc (kernels/cuda_backend.cu) and by
 * gcc over the emulator (kernels/emu/emu_backend.c), so CI runs exactly this
 * code on small shapes.
 *
 * Determinism: no kernel accumulates floating point with atomics. Every sum
 * has a fixed assignment of terms to threads and a fixed combination order
 * (warp shuffles, then shared memory in warp order, then a single block over
 * per-block partials), so results are bitwise reproducible for a given grid.
 */
#ifndef RC_KERNELS_RC_KERNELS_CUH
#define RC_KERNELS_RC_KERNELS_CUH

#include "portable.cuh"

/* ---- reductions --------------------------------------------------------- */

RC_DEV double rc_warp_sum(double v) {
    for (int off = RC_WARP / 2; off > 0; off >>= 1) v += RC_SHFL_DOWN(v, off);
    return v;
}

/* Sum of v over the block; the result is valid in thread 0. scratch holds
 * one double per warp. Every thread of the block must call it. */
RC_DEV double rc_block_sum(double v, double *scratch) {
    unsigned lane = threadIdx.x % RC_WARP, warp = threadIdx.x / RC_WARP;
    unsigned n_warps = (blockDim.x + RC_WARP - 1) / RC_WARP;
    v = rc_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    RC_SYNC(); /* the warp sums are visible to warp 0 */
    if (warp == 0) {
        v = lane < n_warps ? scratch[lane] : 0.0;
        v = rc_warp_sum(v);
    }
    RC_SYNC(); /* scratch may be reused by the next call */
    return v;
}

/* Sum of v over the block, returned to every thread. */
RC_DEV double rc_block_sum_all(double v, double *scratch) {
    v = rc_block_sum(v, scratch);
    if (threadIdx.x == 0) scratch[0] = v;
    RC_SYNC(); /* the sum is visible to every thread */
    v = scratch[0];
    RC_SYNC(); /* scratch may be reused by the next call */
    return v;
}

/* partial[blockIdx] = sum of squares of the block's grid-stride share. */
typedef struct {
    size_t n;
    const float *g;
    double *partial;
} rc_sumsq_args;

RC_KERNEL(rc_k_sumsq, rc_sumsq_args) {
    RC_SHARED(double, scratch, RC_WARP);
    double s = 0.0;
    RC_GRID_LOOP(i, a.n) {
        double v = a.g[i];
        s += v * v;
    }
    s = rc_block_sum(s, scratch);
    if (threadIdx.x == 0) a.partial[blockIdx.x] = s;
}

/* out[0] = sum of n partials, by one block in a fixed order. */
typedef struct {
    int n;
    const double *partial;
    double *out;
} rc_reduce_args;

RC_KERNEL(rc_k_reduce_final, rc_reduce_args) {
    RC_SHARED(double, scratch, RC_WARP);
    double s = 0.0;
    for (int i = (int)threadIdx.x; i < a.n; i += (int)blockDim.x)
        s += a.partial[i];
    s = rc_block_sum(s, scratch);
    if (threadIdx.x == 0) a.out[0] = s;
}

/* ---- element-wise -------------------------------------------------------- */

typedef struct {
    size_t n;
    const float *x;
    float *y;
} rc_relu_args;

RC_KERNEL(rc_k_relu_fwd, rc_relu_args) {
    RC_GRID_LOOP(i, a.n) a.y[i] = a.x[i] > 0.0f ? a.x[i] : 0.0f;
}

/* Frames arrive as bytes (the loader's pixels; four times fewer bytes over
 * PCIe than floats) and become floats in [0, 1] here: x * (1/255), a
 * float product, the formula the host uses for bytes (train_input.c), so
 * the same bytes give the same floats on every backend. (The loader's own
 * float output is not rounded to bytes where it resamples.) */
typedef struct {
    size_t n;
    const uint8_t *x;
    float *y;
} rc_u8_args;

RC_KERNEL(rc_k_u8_to_f32, rc_u8_args) {
    RC_GRID_LOOP(i, a.n) a.y[i] = (float)a.x[i] * (1.0f / 255.0f);
}

typedef struct {
    size_t n;
    const float *y, *dy;
    float *dx;
} rc_relu_bwd_args;

RC_KERNEL(rc_k_relu_bwd, rc_relu_bwd_args) {
    RC_GRID_LOOP(i, a.n) a.dx[i] = a.y[i] > 0.0f ? a.dy[i] : 0.0f;
}

typedef struct {
    size_t n;
    float *g;
    float alpha;
} rc_scale_args;

RC_KERNEL(rc_k_scale, rc_scale_args) {
    RC_GRID_LOOP(i, a.n) a.g[i] *= a.alpha;
}

typedef struct {
    size_t n;
    float alpha;
    const float *x;
    float *y;
} rc_axpy_args;

RC_KERNEL(rc_k_axpy, rc_axpy_args) {
    RC_GRID_LOOP(i, a.n) a.y[i] += a.alpha * a.x[i];
}

typedef struct {
    size_t n;
    float *w;
    const float *g;
    float *m, *v;
    float lr, beta1, beta2, eps, wd, c1, c2;
} rc_adamw_args;

RC_KERNEL(rc_k_adamw, rc_adamw_args) {
    RC_GRID_LOOP(i, a.n)
        rc_adamw_elem(&a.w[i], a.g[i], &a.m[i], &a.v[i], a.lr, a.beta1,
                      a.beta2, a.eps, a.wd, a.c1, a.c2);
}

/* ---- pooling and biases -------------------------------------------------- */

/* y[nc] = mean of x[nc][0..hw) (one thread per output, fixed order). */
typedef struct {
    size_t nc;
    int hw;
    const float *x;
    float *y;
} rc_gap_args;

RC_KERNEL(rc_k_gap_fwd, rc_gap_args) {
    RC_GRID_LOOP(i, a.nc) {
        const float *src = a.x + i * (size_t)a.hw;
        float s = 0.0f;
        for (int k = 0; k < a.hw; k++) s += src[k];
        a.y[i] = s / (float)a.hw;
    }
}

typedef struct {
    size_t n; /* nc * hw */
    int hw;
    const float *dy;
    float *dx;
} rc_gap_bwd_args;

RC_KERNEL(rc_k_gap_bwd, rc_gap_bwd_args) {
    RC_GRID_LOOP(i, a.n) a.dx[i] = a.dy[i / (size_t)a.hw] / (float)a.hw;
}

/* y[r][c] += b[c] for rows x cols, or y[n][c][hw] += b[c] with inner = hw. */
typedef struct {
    size_t n;   /* all elements */
    int cols;   /* channels */
    int inner;  /* 1 for a row-major matrix, hw for NCHW */
    const float *b;
    float *y;
} rc_bias_args;

RC_KERNEL(rc_k_bias_add, rc_bias_args) {
    RC_GRID_LOOP(i, a.n) a.y[i] += a.b[(i / (size_t)a.inner) % (size_t)a.cols];
}

/* out[c] = sum over rows r of x[r][c] (one thread per column, rows in
 * order): the bias gradient of a linear layer and of the LSTM. */
typedef struct {
    int rows, cols;
    const float *x;
    float *out;
} rc_colsum_args;

RC_KERNEL(rc_k_col_sum, rc_colsum_args) {
    RC_GRID_LOOP(c, (size_t)a.cols) {
        double s = 0.0;
        for (int r = 0; r < a.rows; r++) s += a.x[(size_t)r * a.cols + c];
        a.out[c] = (float)s;
    }
}

/* db[c] = sum of dy[n][c][hw] over n and hw: one block per channel. */
typedef struct {
    int n, c, hw;
    const float *dy;
    float *db;
} rc_bias_grad_args;

RC_KERNEL(rc_k_bias_grad_nchw, rc_bias_grad_args) {
    RC_SHARED(double, scratch, RC_WARP);
    for (int ch = (int)blockIdx.x; ch < a.c; ch += (int)gridDim.x) {
        size_t per_ch = (size_t)a.n * a.hw;
        double s = 0.0;
        for (size_t k = threadIdx.x; k < per_ch; k += blockDim.x) {
            size_t img = k / (size_t)a.hw, px = k % (size_t)a.hw;
            s += a.dy[(img * a.c + ch) * (size_t)a.hw + px];
        }
        s = rc_block_sum(s, scratch);
        if (threadIdx.x == 0) a.db[ch] = (float)s;
    }
}

/* ---- index moves --------------------------------------------------------- */

/* out[p] = concat(frames[clip[p]][i[p]], frames[clip[p]][j[p]]). */
typedef struct {
    int n_pairs, frames_per_clip;
    size_t frame_elems;
    const int *clip, *fi, *fj;
    const float *frames;
    float *out;
} rc_gather_pairs_args;

RC_KERNEL(rc_k_gather_pairs, rc_gather_pairs_args) {
    size_t per_pair = 2 * a.frame_elems;
    RC_GRID_LOOP(idx, (size_t)a.n_pairs * per_pair) {
        size_t p = idx / per_pair, k = idx % per_pair;
        int second = k >= a.frame_elems;
        int frame = second ? a.fj[p] : a.fi[p];
        size_t src = ((size_t)a.clip[p] * a.frames_per_clip + frame) *
                         a.frame_elems +
                     (second ? k - a.frame_elems : k);
        a.out[idx] = a.frames[src];
    }
}

/* out[slot] = feat[seq_pair[slot]] or 0 where the slot is -1. */
typedef struct {
    size_t n_slots;
    int dim;
    const int *seq_pair;
    const float *feat;
    float *out;
} rc_gather_steps_args;

RC_KERNEL(rc_k_gather_steps, rc_gather_steps_args) {
    RC_GRID_LOOP(idx, a.n_slots * (size_t)a.dim) {
        size_t slot = idx / (size_t)a.dim, k = idx % (size_t)a.dim;
        int p = a.seq_pair[slot];
        a.out[idx] = p < 0 ? 0.0f : a.feat[(size_t)p * a.dim + k];
    }
}

/* d_feat[p] = sum of d_steps over the slots that use p, listed in CSR form
 * (off[p]..off[p+1]) in sequence-then-step order: the same order as the CPU
 * reference, no atomics. */
typedef struct {
    int n_pairs, dim;
    const int *off, *slots;
    const float *d_steps;
    float *d_feat;
} rc_scatter_args;

RC_KERNEL(rc_k_scatter_csr, rc_scatter_args) {
    RC_GRID_LOOP(idx, (size_t)a.n_pairs * a.dim) {
        size_t p = idx / (size_t)a.dim, k = idx % (size_t)a.dim;
        float s = 0.0f;
        for (int u = a.off[p]; u < a.off[p + 1]; u++)
            s += a.d_steps[(size_t)a.slots[u] * a.dim + k];
        a.d_feat[idx] = s;
    }
}

/* out[r] = x[row_src[r]] (pack), or x[row_src[r]] = in[r] (unpack). */
typedef struct {
    int n_rows, dim;
    const int *row_src;
    const float *src;
    float *dst;
    int unpack;
} rc_rows_args;

RC_KERNEL(rc_k_move_rows, rc_rows_args) {
    RC_GRID_LOOP(idx, (size_t)a.n_rows * a.dim) {
        size_t r = idx / (size_t)a.dim, k = idx % (size_t)a.dim;
        size_t other = (size_t)a.row_src[r] * a.dim + k;
        if (a.unpack)
            a.dst[other] = a.src[idx];
        else
            a.dst[idx] = a.src[other];
    }
}

/* ---- LSTM steps ------------------------------------------------------------
 * Rows are the sequences still running at step t, longest first (packed
 * layout, see rc_ops.cuh), so a step touches only live sequences. */

typedef struct {
    int rows, H, t, rows_next;
    float *act;          /* [rows][4H]: pre-activations in, gates out */
    float *c;            /* [rows][H] */
    const float *c_prev; /* [rows][H] of step t-1, NULL at t = 0 */
    const float *b;      /* [4H] */
    float *h_next_in;    /* [rows_next][H]: h feeds step t+1's GEMM */
    const int *len, *perm;
    float *h_last;       /* [S][H], original sequence order */
} rc_lstm_fwd_args;

RC_KERNEL(rc_k_lstm_fwd_step, rc_lstm_fwd_args) {
    int H = a.H;
    RC_GRID_LOOP(idx, (size_t)a.rows * H) {
        int r = (int)(idx / (size_t)H), j = (int)(idx % (size_t)H);
        float *g = a.act + (size_t)r * 4 * H;
        float cp = a.c_prev ? a.c_prev[(size_t)r * H + j] : 0.0f;
        rc_lstm_cell cell = rc_lstm_cell_forward(
            g[j] + a.b[j], g[H + j] + a.b[H + j], g[2 * H + j] + a.b[2 * H + j],
            g[3 * H + j] + a.b[3 * H + j], cp);
        g[j] = cell.i;
        g[H + j] = cell.f;
        g[2 * H + j] = cell.g;
        g[3 * H + j] = cell.o;
        a.c[idx] = cell.c;
        if (r < a.rows_next) a.h_next_in[idx] = cell.h;
        if (a.len[r] == a.t + 1) a.h_last[(size_t)a.perm[r] * H + j] = cell.h;
    }
}

typedef struct {
    int rows, H, t, rows_next;
    const float *act, *c, *c_prev; /* as in the forward step */
    const float *dh_rec;  /* [rows_next][H]: from step t+1's recurrence */
    const float *dh_last; /* [S][H], original order */
    const int *len, *perm;
    float *dc;            /* [S][H] carried cell gradient (in/out) */
    float *dgates;        /* [rows][4H] out: pre-activation gradients */
} rc_lstm_bwd_args;

RC_KERNEL(rc_k_lstm_bwd_step, rc_lstm_bwd_args) {
    int H = a.H;
    RC_GRID_LOOP(idx, (size_t)a.rows * H) {
        int r = (int)(idx / (size_t)H), j = (int)(idx % (size_t)H);
        const float *g = a.act + (size_t)r * 4 * H;
        float dh = 0.0f, dc_next = 0.0f;
        if (r < a.rows_next) {
            dh = a.dh_rec[idx];
            dc_next = a.dc[idx];
        }
        if (a.len[r] == a.t + 1) dh += a.dh_last[(size_t)a.perm[r] * H + j];
        float cp = a.c_prev ? a.c_prev[idx] : 0.0f;
        rc_lstm_cell_grad d = rc_lstm_cell_backward(
            g[j], g[H + j], g[2 * H + j], g[3 * H + j], a.c[idx], cp, dh,
            dc_next);
        float *dg = a.dgates + (size_t)r * 4 * H;
        dg[j] = d.di;
        dg[H + j] = d.df;
        dg[2 * H + j] = d.dg;
        dg[3 * H + j] = d.d_o;
        a.dc[idx] = d.dc_prev;
    }
}

/* ---- contrastive hinge loss --------------------------------------------------
 * One block per embedding row e. The pairs touching e are listed in CSR form
 * (inc_off[e]..inc_off[e+1]) in pair order. For each, the block reduces the
 * squared distance, thread 0 turns it into the pair's loss and coefficient
 * (shared_math.h), and every thread adds coef * (emb[e] - emb[other]) to its
 * components of d_emb[e], which only this block writes: the gradient of a
 * row is summed in pair order, and each pair's loss is counted by the block
 * of its first row. loss_part[e] is then reduced by rc_k_reduce_final.
 * An equivariance pair (map[p] != RC_MAP_NONE) compares a row with the other
 * row's image under the map, M emb[other]; M is a symmetric involution, so
 * the same expression serves both rows (shared_math.h, rc_emb_map_index). */
typedef struct {
    int n_emb, dim;
    const float *emb;
    const int *pa, *pb, *positive, *map;
    const float *weight;
    const int *inc_off, *inc_pair;
    double margin, scale, eps;
    int squared;
    float *d_emb;      /* nullable */
    double *loss_part; /* [n_emb] */
} rc_hinge_args;

RC_KERNEL(rc_k_hinge, rc_hinge_args) {
    RC_SHARED(double, scratch, RC_WARP);
    RC_SHARED(float, coef, 1);
    for (int e = (int)blockIdx.x; e < a.n_emb; e += (int)gridDim.x) {
        const float *me = a.emb + (size_t)e * a.dim;
        float *grad = a.d_emb ? a.d_emb + (size_t)e * a.dim : NULL;
        if (grad)
            for (int k = (int)threadIdx.x; k < a.dim; k += (int)blockDim.x)
                grad[k] = 0.0f;
        double loss = 0.0;
        for (int q = a.inc_off[e]; q < a.inc_off[e + 1]; q++) {
            int p = a.inc_pair[q];
            int other = a.pa[p] == e ? a.pb[p] : a.pa[p];
            const float *ot = a.emb + (size_t)other * a.dim;
            int map = a.map[p];
            double part = 0.0;
            for (int k = (int)threadIdx.x; k < a.dim; k += (int)blockDim.x) {
                float sign;
                int src = rc_emb_map_index(map, a.dim, k, &sign);
                double diff = (double)me[k] - (double)(sign * ot[src]);
                part += diff * diff;
            }
            double d2 = rc_block_sum(part, scratch);
            if (threadIdx.x == 0) {
                rc_hinge_term h = rc_hinge_pair(d2, a.positive[p], a.weight[p],
                                                a.margin, a.squared, a.scale,
                                                a.eps);
                coef[0] = h.coef;
                if (a.pa[p] == e) loss += h.loss;
            }
            RC_SYNC(); /* coef is visible */
            float k_coef = coef[0];
            if (grad)
                for (int k = (int)threadIdx.x; k < a.dim; k += (int)blockDim.x) {
                    float sign;
                    int src = rc_emb_map_index(map, a.dim, k, &sign);
                    grad[k] += k_coef * (me[k] - sign * ot[src]);
                }
            RC_SYNC(); /* everyone read coef before the next pair writes it */
        }
        if (threadIdx.x == 0) a.loss_part[e] = loss;
    }
}

/* ---- the action term: warp loss (ops.h, rc_warp_shape) -----------------------
 * One block per sequence q, in three passes separated by block barriers:
 *  1. every thread warps its share of the first frame's pixels into
 *     warped[q] (rc_warp_locate / rc_warp_sample, shared_math.h);
 *  2. every thread takes its share of the pooled pixels of each scale,
 *     adds their squared error to its loss and stores, for each, the
 *     derivative share 2 diff / (count k^2) that every full-resolution pixel
 *     of the block receives (0 outside the border) in pooled[q];
 *  3. every thread sums, over its pixels, the gradient of the six warp
 *     parameters (the pixel's pooled shares times the sample's slopes, zero
 *     through the clamp), and the block reduces the six sums in a fixed
 *     order (rc_block_sum).
 * Loss and gradient of a sequence are written by its block alone: no
 * atomics, bitwise reproducible for a given block size. */
typedef struct {
    int n, C, S, grid, n_params, n_scales, border, pooled_total;
    int scales[RC_WARP_MAX_SCALES];
    double scale;
    double moving;     /* > 0: only pooled pixels whose first and last frame
                          differ by more than this (ops.h) */
    const float *frames, *theta;
    const int *first, *last;
    float *warped;     /* [n][C][S][S] scratch */
    float *pooled;     /* [n][pooled_total] scratch */
    float *d_theta;    /* [n][6], nullable */
    double *loss_part; /* [n], unscaled */
} rc_warp_args;

/* |pool_k(first) - pool_k(last)| at pooled pixel (pi, pj) of the plane at
 * offset `at0`: how much that block changes over the sequence. */
RC_DEV double rc_warp_pooled_change(const float *src, const float *dst, size_t at0,
                                    int S, int k, int pi, int pj) {
    double ss = 0.0, sd = 0.0;
    for (int dj = 0; dj < k; dj++)
        for (int di = 0; di < k; di++) {
            size_t at = at0 + (size_t)(pj * k + dj) * S + pi * k + di;
            ss += src[at];
            sd += dst[at];
        }
    double d = (ss - sd) / ((double)k * k);
    return d < 0 ? -d : d;
}

RC_KERNEL(rc_k_warp_loss, rc_warp_args) {
    RC_SHARED(double, scratch, RC_WARP);
    int S = a.S, C = a.C;
    size_t plane = (size_t)S * S, fe = (size_t)C * plane;
    for (int q = (int)blockIdx.x; q < a.n; q += (int)gridDim.x) {
        const float *th = a.theta + (size_t)a.n_params * q;
        const float *src = a.frames + (size_t)a.first[q] * fe;
        const float *dst = a.frames + (size_t)a.last[q] * fe;
        float *warped = a.warped + (size_t)q * fe;
        float *pooled = a.pooled + (size_t)q * a.pooled_total;
        for (int p = (int)threadIdx.x; p < S * S; p += (int)blockDim.x) {
            rc_warp_point pt = rc_warp_locate(th, a.grid, p % S, p / S, S);
            for (int c = 0; c < C; c++)
                warped[c * plane + p] = rc_warp_sample(src + c * plane, S, pt,
                                                       NULL, NULL);
        }
        RC_SYNC(); /* the warped frame is complete */
        double loss = 0.0;
        int off = 0;
        for (int sc = 0; sc < a.n_scales; sc++) {
            int k = a.scales[sc], P = S / k, m = a.border / k;
            double count = (double)C * (P - 2 * m) * (P - 2 * m);
            double area = (double)k * k;
            if (a.moving > 0) { /* the pooled pixels that change, counted */
                double mine = 0.0;
                for (int idx = (int)threadIdx.x; idx < C * P * P; idx += (int)blockDim.x) {
                    int c = idx / (P * P), pj = idx / P % P, pi = idx % P;
                    if (pj < m || pj >= P - m || pi < m || pi >= P - m) continue;
                    mine += rc_warp_pooled_change(src, dst, c * plane, S, k, pi, pj) > a.moving;
                }
                count = rc_block_sum_all(mine, scratch);
            }
            for (int idx = (int)threadIdx.x; idx < C * P * P; idx += (int)blockDim.x) {
                int c = idx / (P * P), pj = idx / P % P, pi = idx % P;
                if (pj < m || pj >= P - m || pi < m || pi >= P - m || count == 0 ||
                    (a.moving > 0 &&
                     !(rc_warp_pooled_change(src, dst, c * plane, S, k, pi, pj) > a.moving))) {
                    pooled[off + idx] = 0.0f;
                    continue;
                }
                double sw = 0.0, sd = 0.0;
                for (int dj = 0; dj < k; dj++)
                    for (int di = 0; di < k; di++) {
                        size_t at = c * plane + (size_t)(pj * k + dj) * S + pi * k + di;
                        sw += warped[at];
                        sd += dst[at];
                    }
                double diff = (sw - sd) / area;
                loss += diff * diff / count;
                pooled[off + idx] = (float)(2.0 * diff / (count * area));
            }
            off += C * P * P;
        }
        RC_SYNC(); /* the pooled shares are complete */
        loss = rc_block_sum(loss, scratch);
        if (threadIdx.x == 0) a.loss_part[q] = loss;
        if (!a.d_theta) continue;
        double g[2 * RC_WARP_MAX_GRID * RC_WARP_MAX_GRID];
        for (int k = 0; k < a.n_params; k++) g[k] = 0.0;
        float half_s = 0.5f * (float)S;
        for (int p = (int)threadIdx.x; p < S * S; p += (int)blockDim.x) {
            int i = p % S, j = p / S;
            rc_warp_point pt = rc_warp_locate(th, a.grid, i, j, S);
            float du = 0.0f, dv = 0.0f;
            for (int c = 0; c < C; c++) {
                float dw = 0.0f;
                int o = 0;
                for (int sc = 0; sc < a.n_scales; sc++) {
                    int k = a.scales[sc], P = S / k;
                    dw += pooled[o + c * P * P + (j / k) * P + i / k];
                    o += C * P * P;
                }
                if (dw == 0.0f) continue;
                float sx, sy;
                rc_warp_sample(src + c * plane, S, pt, &sx, &sy);
                du += dw * sx;
                dv += dw * sy;
            }
            du = pt.in_x ? du * half_s : 0.0f;
            dv = pt.in_y ? dv * half_s : 0.0f;
            float x = ((float)i + 0.5f) / half_s - 1.0f, y = ((float)j + 0.5f) / half_s - 1.0f;
            if (a.grid) { /* d source / d node = the node's bilinear weight */
                int node[4];
                float w[4];
                rc_warp_field_nodes(x, y, a.grid, node, w);
                for (int k = 0; k < 4; k++) {
                    g[node[k]] += (double)w[k] * du;
                    g[a.grid * a.grid + node[k]] += (double)w[k] * dv;
                }
            } else {
                g[0] += (double)du * x;
                g[1] += (double)du * y;
                g[2] += du;
                g[3] += (double)dv * x;
                g[4] += (double)dv * y;
                g[5] += dv;
            }
        }
        for (int k = 0; k < a.n_params; k++) {
            double t = rc_block_sum(g[k], scratch);
            if (threadIdx.x == 0)
                a.d_theta[(size_t)a.n_params * q + k] = (float)(t * a.scale);
        }
    }
}

#endif
