/* linear.c: fully connected layer, y = x W^T + b, as torch.nn.Linear.
 *
 * Parallel over output blocks with single-threaded BLAS (see
 * rc_blas_serial_begin in real.h): the forward pass and dx split the rows,
 * dW and db split the output features. Every element is computed by one
 * thread in a fixed order, so results are bitwise repeatable for a fixed
 * thread count. */
#include <omp.h>
#include <string.h>

#include "cpu/real.h"

/* Below this many multiply-adds a call runs on one thread. */
#define RC_LINEAR_PAR_MIN ((size_t)1 << 22)

static int linear_threads(int n, int in, int out) {
    size_t work = (size_t)n * (size_t)in * (size_t)out;
    return work < RC_LINEAR_PAR_MIN ? 1 : omp_get_max_threads();
}

static void split(int n, int t, int nt, int *lo, int *hi) {
    *lo = (int)((long long)n * t / nt);
    *hi = (int)((long long)n * (t + 1) / nt);
}

/* y [n][out] = x [n][in] * W^T [in][out] + b */
void RC_FN(rc_linear_forward)(int n, int in, int out, const real *x,
                              const real *w, const real *b, real *y) {
    if (n <= 0 || out <= 0) return;
    const int nt = linear_threads(n, in, out);
    int blas = rc_blas_serial_begin(1);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int lo, hi;
        split(n, omp_get_thread_num(), nt, &lo, &hi);
        for (int i = lo; i < hi; i++) {
            real *row = y + (size_t)i * out;
            if (b)
                memcpy(row, b, (size_t)out * sizeof(real));
            else
                memset(row, 0, (size_t)out * sizeof(real));
        }
        if (in > 0 && hi > lo)
            RC_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, out, in,
                    1, x + (size_t)lo * in, in, w, in, 1, y + (size_t)lo * out,
                    out);
    }
    rc_blas_serial_end(blas);
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
    const int nt = linear_threads(n, in, out);
    int blas = rc_blas_serial_begin(1);
    #pragma omp parallel num_threads(nt) if (nt > 1)
    {
        const int t = omp_get_thread_num();
        int o0, o1, r0, r1;
        split(out, t, nt, &o0, &o1);
        split(n, t, nt, &r0, &r1);
        /* dW [out][in] = dy^T [out][n] * x [n][in], rows o0..o1 */
        if (o1 > o0)
            RC_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, o1 - o0, in, n, 1,
                    dy + o0, out, x, in, 0, dw + (size_t)o0 * in, in);
        /* db[j] = sum over rows of dy[.][j], in row order */
        if (db) {
            for (int j = o0; j < o1; j++) {
                double acc = 0;
                for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + j];
                db[j] = (real)acc;
            }
        }
        /* dx [n][in] = dy [n][out] * W [out][in], rows r0..r1 */
        if (dx && r1 > r0)
            RC_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, r1 - r0, in,
                    out, 1, dy + (size_t)r0 * out, out, w, in, 0,
                    dx + (size_t)r0 * in, in);
    }
    rc_blas_serial_end(blas);
}
