/* shared_math.h: per-element arithmetic of the CUDA kernels, written once
 * for the device build (nvcc) and for their CPU emulation (gcc), so that the
 * emulated kernels CI runs compute exactly what the GPU does.
 *
 * The CPU reference (csrc/cpu/) does not use these formulas: it is the
 * oracle the kernels are tested against (test_emu_kernels, test_cuda_ops),
 * so its LSTM cell, hinge term and AdamW are written independently (AdamW
 * in another, algebraically equal, order). A formula wrong here shows up as
 * a difference from the reference instead of in both. The one thing the
 * reference does take from here is a definition, not arithmetic: the
 * embedding maps of the equivariance pairs (rc_emb_map_index), which are
 * checked on their own against dense matrices (test_ops_grad).
 */
#ifndef RC_KERNELS_SHARED_MATH_H
#define RC_KERNELS_SHARED_MATH_H

#include <math.h>

#include "recompose/ops.h" /* enum rc_emb_map */

#ifdef __CUDACC__
#define RC_HD __host__ __device__ inline
#else
#define RC_HD static inline
#endif

RC_HD float rc_sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

/* One LSTM cell element (gate order i, f, g, o as torch.nn.LSTM): from the
 * four pre-activations and the previous cell state, the activated gates, the
 * new cell state and the new hidden state. */
typedef struct {
    float i, f, g, o, c, h;
} rc_lstm_cell;

RC_HD rc_lstm_cell rc_lstm_cell_forward(float pi, float pf, float pg, float po,
                                        float c_prev) {
    rc_lstm_cell r;
    r.i = rc_sigmoidf(pi);
    r.f = rc_sigmoidf(pf);
    r.g = tanhf(pg);
    r.o = rc_sigmoidf(po);
    r.c = r.f * c_prev + r.i * r.g;
    r.h = r.o * tanhf(r.c);
    return r;
}

/* Backward of one cell element: given the activated gates, c and c_prev of
 * the forward step and the incoming gradients dh (from the output and the
 * next step's recurrence) and dc (carried from the next step), the gradients
 * of the four pre-activations and of c_prev. */
typedef struct {
    float di, df, dg, d_o, dc_prev;
} rc_lstm_cell_grad;

RC_HD rc_lstm_cell_grad rc_lstm_cell_backward(float i, float f, float g,
                                              float o, float c, float c_prev,
                                              float dh, float dc_next) {
    rc_lstm_cell_grad r;
    float tc = tanhf(c);
    float dc = dc_next + dh * o * (1.0f - tc * tc);
    r.d_o = dh * tc * o * (1.0f - o);
    r.di = dc * g * i * (1.0f - i);
    r.df = dc * c_prev * f * (1.0f - f);
    r.dg = dc * i * (1.0f - g * g);
    r.dc_prev = dc * f;
    return r;
}

/* Contrastive hinge term of one pair (SPEC section 4) from its squared
 * distance d2: the pair's loss and the coefficient k such that
 * dL/d emb[a] = k * (emb[a] - emb[b]) and dL/d emb[b] = -k * (same). */
typedef struct {
    double loss;
    float coef;
} rc_hinge_term;

RC_HD rc_hinge_term rc_hinge_pair(double d2, int positive, double weight,
                                  double margin, int squared, double scale,
                                  double eps) {
    rc_hinge_term r;
    if (positive) {
        r.loss = scale * weight * d2;
        r.coef = (float)(2.0 * scale * weight);
        return r;
    }
    double d = sqrt(d2);
    double gap = margin - d;
    if (gap <= 0.0) {
        r.loss = 0.0;
        r.coef = 0.0f;
        return r;
    }
    /* d(d)/d(emb[a]) = (emb[a]-emb[b]) / d; the floor keeps d = 0 finite */
    double dsafe = d > eps ? d : eps;
    if (squared) {
        r.loss = scale * weight * gap * gap;
        r.coef = (float)(-2.0 * scale * weight * gap / dsafe);
    } else {
        r.loss = scale * weight * gap;
        r.coef = (float)(-scale * weight / dsafe);
    }
    return r;
}

/* The symmetry maps of the equivariance pairs (rc_loss_pair.map): signed
 * permutations M of the embedding, one per image symmetry, chosen so that
 * the embedding can carry motion the way the symmetry acts on it. With
 * q = dim / 4 (dim a multiple of 4 whenever a map is used) the embedding is
 * four blocks A = [0, q), B = [q, 2q), C = [2q, 3q), D = [3q, 4q):
 *   flip      (horizontal mirror: dx, dtheta -> -dx, -dtheta; dy kept)
 *             A -> -A, B -> B, C -> -C, D -> D
 *   transpose (swap of the image axes: dx <-> dy, dtheta -> -dtheta)
 *             A <-> B, C -> -C, D -> D
 * so (A, B) can hold the translation as a vector, C what changes sign with
 * the handedness (rotation), D what no symmetry changes (speed, length).
 * Both maps are symmetric involutions (M = M^T = M^-1) and generate the
 * symmetry group of the square (flip then transpose is a quarter turn), so
 * d(a, b) = ||emb[a] - M emb[b]|| = ||M emb[a] - emb[b]|| and the gradient
 * of a pair with respect to either row r is k * (emb[r] - M emb[other]).
 * Returns the index j with (M x)[k] = *sign * x[j]. */
RC_HD int rc_emb_map_index(int map, int dim, int k, float *sign) {
    int q = dim / 4, block = q > 0 ? k / q : 4;
    *sign = 1.0f;
    if (map == RC_MAP_NONE || block > 3) return k;
    if (block == 2) { /* C: odd under both */
        *sign = -1.0f;
        return k;
    }
    if (map == RC_MAP_FLIP) {
        if (block == 0) *sign = -1.0f;
        return k;
    }
    if (block == 0) return k + q; /* transpose: A <-> B */
    if (block == 1) return k - q;
    return k;
}

/* One AdamW element (torch.optim.AdamW): decoupled decay, then the moment
 * updates and the bias-corrected step. c1 = 1-beta1^t, c2 = 1-beta2^t. */
RC_HD void rc_adamw_elem(float *w, float g, float *m, float *v, float lr,
                         float beta1, float beta2, float eps, float wd,
                         float c1, float c2) {
    float wv = *w * (1.0f - lr * wd);
    float mv = beta1 * *m + (1.0f - beta1) * g;
    float vv = beta2 * *v + (1.0f - beta2) * g * g;
    *m = mv;
    *v = vv;
    *w = wv - lr * (mv / c1) / (sqrtf(vv / c2) + eps);
}

/* The cell of a field of n_nodes x n_nodes nodes at -1 + 2k/(n_nodes-1)
 * (ops.h, rc_warp_shape) holding coordinate t of [-1, 1]: its first node, and in
 * *frac the weight of the next. */
RC_HD int rc_warp_field_cell(float t, int n_nodes, float *frac) {
    float p = (t + 1.0f) * 0.5f * (float)(n_nodes - 1);
    int k = (int)floorf(p);
    k = k < 0 ? 0 : k > n_nodes - 2 ? n_nodes - 2 : k;
    *frac = p - (float)k;
    return k;
}

/* The four nodes around (x, y) in a n_nodes x n_nodes field and their bilinear
 * weights. */
RC_HD void rc_warp_field_nodes(float x, float y, int n_nodes, int node[4],
                               float w[4]) {
    float fx, fy;
    int kx = rc_warp_field_cell(x, n_nodes, &fx), ky = rc_warp_field_cell(y, n_nodes, &fy);
    node[0] = ky * n_nodes + kx;
    node[1] = node[0] + 1;
    node[2] = node[0] + n_nodes;
    node[3] = node[2] + 1;
    w[0] = (1.0f - fx) * (1.0f - fy);
    w[1] = fx * (1.0f - fy);
    w[2] = (1.0f - fx) * fy;
    w[3] = fx * fy;
}

/* Where output pixel (i, j) of an S x S frame samples the first frame under
 * the warp a (ops.h, rc_warp_shape: grid 0 an affine map a[0..5], else a
 * field [2][grid][grid]): the source point in pixel
 * units, clamped to [0, S-1] (in_x, in_y = 0 where the clamp acts), as the
 * top-left pixel (x0, y0) of its 2 x 2 neighbourhood, its right and lower
 * neighbours (x1, y1: the same pixel at the last column or row, where the
 * weight fx or fy is 0) and the fractional offsets. */
typedef struct {
    int x0, y0, x1, y1, in_x, in_y;
    float fx, fy;
} rc_warp_point;

RC_HD float rc_warp_clamp(float u, int S, int *inside) {
    *inside = u >= 0.0f && u <= (float)(S - 1);
    return u < 0.0f ? 0.0f : u > (float)(S - 1) ? (float)(S - 1) : u;
}

RC_HD rc_warp_point rc_warp_locate(const float *a, int grid, int i, int j,
                                   int S) {
    rc_warp_point p;
    float half_s = 0.5f * (float)S;
    float x = ((float)i + 0.5f) / half_s - 1.0f;
    float y = ((float)j + 0.5f) / half_s - 1.0f;
    float xs, ys;
    if (grid) {
        int node[4];
        float w[4];
        rc_warp_field_nodes(x, y, grid, node, w);
        xs = x;
        ys = y;
        for (int k = 0; k < 4; k++) {
            xs += w[k] * a[node[k]];
            ys += w[k] * a[grid * grid + node[k]];
        }
    } else {
        xs = a[0] * x + a[1] * y + a[2];
        ys = a[3] * x + a[4] * y + a[5];
    }
    /* [-1, 1] -> pixel (t + 1) S/2 - 1/2 */
    float u = rc_warp_clamp((xs + 1.0f) * half_s - 0.5f, S, &p.in_x);
    float v = rc_warp_clamp((ys + 1.0f) * half_s - 0.5f, S, &p.in_y);
    p.x0 = (int)floorf(u);
    p.y0 = (int)floorf(v);
    p.fx = u - (float)p.x0;
    p.fy = v - (float)p.y0;
    p.x1 = p.x0 < S - 1 ? p.x0 + 1 : p.x0;
    p.y1 = p.y0 < S - 1 ? p.y0 + 1 : p.y0;
    return p;
}

/* The bilinear value of plane f at p, and (slopes != NULL) its derivatives
 * along the source's pixel x and y. */
RC_HD float rc_warp_sample(const float *f, int S, rc_warp_point p,
                           float *slope_x, float *slope_y) {
    float v00 = f[p.y0 * S + p.x0], v01 = f[p.y0 * S + p.x1];
    float v10 = f[p.y1 * S + p.x0], v11 = f[p.y1 * S + p.x1];
    if (slope_x) {
        *slope_x = (v01 - v00) + p.fy * ((v11 - v10) - (v01 - v00));
        *slope_y = (v10 - v00) + p.fx * ((v11 - v01) - (v10 - v00));
    }
    float top = v00 + p.fx * (v01 - v00), bottom = v10 + p.fx * (v11 - v10);
    return top + p.fy * (bottom - top);
}

#endif
