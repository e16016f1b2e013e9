/* linear.c: fully connected layer, y = x W^T + b, as torch.nn.Linear. */
#include <string.h>

#include "cpu/real.h"

/* y [n][out] = x [n][in] * W^T [in][out] + b */
void RC_FN(rc_linear_forward)(int n, int in, int out, const real *x,
                              const real *w, const real *b, real *y) {
    if (n <= 0 || out <= 0) return;
    for (int i = 0; i < n; i++) {
        real *row = y + (size_t)i * out;
        if (b)
            memcpy(row, b, (size_t)out * sizeof(real));
        else
            memset(row, 0, (size_t)out * sizeof(real));
    }
    if (in > 0)
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1, x, in,
                w, in, 1, y, out);
}

void RC_FN(rc_linear_backward)(int n, int in, int out, const real *x,
                               const real *w, const real *dy, real *dx,
                               real *dw, real *db) {
    if (n <= 0) {
        /* no rows: every gradient is zero (outputs are overwritten) */
        memset(dw, 0, (size_t)out * in * sizeof(real));
        if (db) memset(db, 0, (size_t)out * sizeof(real));
        return;
    }
    /* dW [out][in] = dy^T [out][n] * x [n][in] */
    RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1, dy, out, x,
            in, 0, dw, in);
    /* db[j] = sum over rows of dy[.][j], in row order */
    if (db) {
        for (int j = 0; j < out; j++) {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + j];
            db[j] = (real)acc;
        }
    }
    /* dx [n][in] = dy [n][out] * W [out][in] */
    if (dx)
        RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1, dy,
                out, w, in, 0, dx, in);
}
