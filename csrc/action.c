/* action.c: the action head's outputs as warps (action.h).
 *
 * expm: A = exp(M), M = [r0 r1 r2; r3 r4 r5; 0 0 0] (3 x 3, the affine
 * group's Lie algebra); the warp is A's top two rows. Its gradient: for
 * L(A), dL/dM = Lexp(M^T, dL/dA), the Frechet derivative of exp at M^T in
 * the direction G = dL/dA (padded with a zero third row), which is the
 * upper-right block of exp([M^T G; 0 M^T]) (Higham, "Functions of
 * Matrices", 2008, eq. 3.16). dL/dr is then dL/dM's top two rows.
 */
#include "recompose/action.h"

#include <math.h>
#include <string.h>

#include "recompose/sampler.h"

void rc_action_identity(int kind, int n_params, float *out) {
    for (int k = 0; k < n_params; k++)
        out[k] = kind == RC_ACTION_AFFINE && (k == 0 || k == 4) ? 1.0f : 0.0f;
}

void rc_action_affine_fit(int kind, int grid, const float *theta,
                          double out[6]) {
    if (kind != RC_ACTION_GRID) {
        for (int k = 0; k < 6; k++) out[k] = theta[k];
        return;
    }
    /* least squares of (x + dx, y + dy) on (x, y, 1) over the nodes: the
     * nodes form a symmetric grid, so x, y and 1 are orthogonal */
    double sxx = 0, su[3] = {0, 0, 0}, sv[3] = {0, 0, 0};
    for (int j = 0; j < grid; j++)
        for (int i = 0; i < grid; i++) {
            double x = -1 + 2.0 * i / (grid - 1), y = -1 + 2.0 * j / (grid - 1);
            double u = x + theta[j * grid + i], v = y + theta[grid * grid + j * grid + i];
            sxx += x * x;
            su[0] += u * x, su[1] += u * y, su[2] += u;
            sv[0] += v * x, sv[1] += v * y, sv[2] += v;
        }
    double n = (double)grid * grid;
    out[0] = su[0] / sxx, out[1] = su[1] / sxx, out[2] = su[2] / n;
    out[3] = sv[0] / sxx, out[4] = sv[1] / sxx, out[5] = sv[2] / n;
}

static void matmul(int n, const double *a, const double *b, double *c) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
            c[i * n + j] = s;
        }
}

void rc_expm(int n, const double *a, double *out) {
    enum { MAXN = 6 };
    double norm = 0; /* infinity norm */
    for (int i = 0; i < n; i++) {
        double row = 0;
        for (int j = 0; j < n; j++) row += fabs(a[i * n + j]);
        if (row > norm) norm = row;
    }
    int squarings = 0;
    while (norm > 0.25 && squarings < 60) {
        norm *= 0.5;
        squarings++;
    }
    double scale = ldexp(1.0, -squarings);
    double x[MAXN * MAXN], term[MAXN * MAXN], next[MAXN * MAXN];
    for (int i = 0; i < n * n; i++) x[i] = a[i] * scale;
    /* sum of x^k / k!, k <= 18: with ||x|| <= 0.25 the remainder is below
     * 0.25^19 / 19! ~ 1e-28 */
    for (int i = 0; i < n * n; i++) out[i] = term[i] = i % (n + 1) == 0;
    for (int k = 1; k <= 18; k++) {
        matmul(n, term, x, next);
        for (int i = 0; i < n * n; i++) {
            term[i] = next[i] / k;
            out[i] += term[i];
        }
    }
    for (int s = 0; s < squarings; s++) {
        matmul(n, out, out, next);
        memcpy(out, next, (size_t)n * n * sizeof(double));
    }
}

void rc_action_warps(int kind, int n, const float *raw, float *theta) {
    for (int q = 0; q < n; q++) {
        const float *r = raw + 6 * (size_t)q;
        float *t = theta + 6 * (size_t)q;
        if (kind != RC_ACTION_EXPM) {
            memcpy(t, r, 6 * sizeof(float));
            continue;
        }
        double m[9] = {r[0], r[1], r[2], r[3], r[4], r[5], 0, 0, 0}, e[9];
        rc_expm(3, m, e);
        for (int k = 0; k < 6; k++) t[k] = (float)e[k];
    }
}

void rc_action_warps_backward(int kind, int n, const float *raw,
                              const float *d_theta, float *d_raw) {
    for (int q = 0; q < n; q++) {
        const float *r = raw + 6 * (size_t)q, *g = d_theta + 6 * (size_t)q;
        float *d = d_raw + 6 * (size_t)q;
        if (kind != RC_ACTION_EXPM) {
            memcpy(d, g, 6 * sizeof(float));
            continue;
        }
        /* B = [M^T G; 0 M^T], 6 x 6 */
        double b[36] = {0}, e[36];
        double m[9] = {r[0], r[1], r[2], r[3], r[4], r[5], 0, 0, 0};
        double gm[9] = {g[0], g[1], g[2], g[3], g[4], g[5], 0, 0, 0};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                b[i * 6 + j] = m[j * 3 + i];
                b[(i + 3) * 6 + j + 3] = m[j * 3 + i];
                b[i * 6 + j + 3] = gm[i * 3 + j];
            }
        rc_expm(6, b, e);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) d[i * 3 + j] = (float)e[i * 6 + j + 3];
    }
}
