/* hinge_loss.c: the contrastive hinge loss of SPEC section 4 and its
 * closed-form gradient with respect to the embeddings.
 *
 * For a pair (a, b) with u = emb[a] - emb[b] and d = ||u||:
 *   positive:        L = w d^2           dL/du = 2 w u
 *   negative, d < m: L = w (m - d)^2     dL/du = -2 w (m - d) u / d
 *                    L = w (m - d)       dL/du = -w u / d        (plain)
 *   negative, d >= m: 0
 * and dL/d emb[a] = +dL/du, dL/d emb[b] = -dL/du, all times `scale`. The
 * division uses max(d, RC_HINGE_EPS): at d = 0, u = 0 and the gradient is 0,
 * finite.
 *
 * An equivariance pair compares emb[a] with M emb[b], M a symmetric signed
 * permutation (shared_math.h): u = emb[a] - M emb[b], and the gradient of
 * either row r is k (emb[r] - M emb[other]), for M = I the formulas above.
 *
 * Pairs are independent, so their distances and gradient coefficients are
 * computed in parallel; the loss sum and the scatter into d_emb (rows are
 * shared between pairs) then run serially in pair order: deterministic.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "cpu/real.h"
#include "../../kernels/shared_math.h"

#define RC_HINGE_OMP_MIN 4096

/* Loss of one pair and coefficient k with dL/du = k u (both unscaled). */
static double pair_term(double d2, const rc_loss_pair *pr,
                        const rc_hinge_params *p, double *k) {
    double w = pr->weight;
    if (pr->positive) {
        *k = 2 * w;
        return w * d2;
    }
    double d = sqrt(d2);
    if (d >= p->margin) {
        *k = 0;
        return 0;
    }
    double gap = p->margin - d;
    double d_safe = d > RC_HINGE_EPS ? d : RC_HINGE_EPS;
    if (p->squared) {
        *k = -2 * w * gap / d_safe;
        return w * gap * gap;
    }
    *k = -w / d_safe;
    return w * gap;
}

/* (M v)[j] for the pair's map. */
static double mapped(int map, int dim, const real *v, int j) {
    float sign;
    int src = rc_emb_map_index(map, dim, j, &sign);
    return (double)sign * (double)v[src];
}

/* ||u - M v||^2 */
static double squared_distance(int map, int dim, const real *u,
                               const real *v) {
    double acc = 0;
    for (int j = 0; j < dim; j++) {
        double e = (double)u[j] - mapped(map, dim, v, j);
        acc += e * e;
    }
    return acc;
}

/* Each pair's loss and gradient coefficient, unscaled, in parallel. */
static void pair_terms(int dim, const real *emb, int n_pairs,
                       const rc_loss_pair *pairs, const rc_hinge_params *p,
                       double *loss, double *coef) {
    #pragma omp parallel for schedule(static) \
        if ((size_t)n_pairs * dim > RC_HINGE_OMP_MIN)
    for (int q = 0; q < n_pairs; q++) {
        const rc_loss_pair *pr = &pairs[q];
        double d2 = squared_distance(pr->map, dim, emb + (size_t)pr->a * dim,
                                     emb + (size_t)pr->b * dim);
        loss[q] = pair_term(d2, pr, p, &coef[q]);
    }
}

void RC_FN(rc_hinge_pair_losses)(int n_emb, int dim, const real *emb,
                                 int n_pairs, const rc_loss_pair *pairs,
                                 const rc_hinge_params *p, double *loss) {
    (void)n_emb;
    if (n_pairs <= 0) return;
    double *coef = rc_xmalloc((size_t)n_pairs * sizeof(double));
    pair_terms(dim, emb, n_pairs, pairs, p, loss, coef);
    free(coef);
}

double RC_FN(rc_hinge_loss)(int n_emb, int dim, const real *emb, int n_pairs,
                            const rc_loss_pair *pairs,
                            const rc_hinge_params *p, real *d_emb) {
    if (d_emb) memset(d_emb, 0, (size_t)n_emb * dim * sizeof(real));
    if (n_pairs <= 0) return 0;
    double *loss = rc_xmalloc((size_t)n_pairs * sizeof(double));
    double *coef = rc_xmalloc((size_t)n_pairs * sizeof(double));
    pair_terms(dim, emb, n_pairs, pairs, p, loss, coef);

    double total = 0;
    for (int q = 0; q < n_pairs; q++) total += loss[q];

    if (d_emb) {
        for (int q = 0; q < n_pairs; q++) {
            double k = coef[q] * p->scale;
            if (k == 0) continue;
            const rc_loss_pair *pr = &pairs[q];
            const real *ea = emb + (size_t)pr->a * dim;
            const real *eb = emb + (size_t)pr->b * dim;
            real *ga = d_emb + (size_t)pr->a * dim;
            real *gb = d_emb + (size_t)pr->b * dim;
            if (pr->map == RC_MAP_NONE) {
                for (int j = 0; j < dim; j++) {
                    real g = (real)(k * ((double)ea[j] - (double)eb[j]));
                    ga[j] += g;
                    gb[j] -= g;
                }
                continue;
            }
            for (int j = 0; j < dim; j++) {
                ga[j] += (real)(k * ((double)ea[j] - mapped(pr->map, dim, eb, j)));
                gb[j] += (real)(k * ((double)eb[j] - mapped(pr->map, dim, ea, j)));
            }
        }
    }
    free(coef);
    free(loss);
    return total * p->scale;
}
