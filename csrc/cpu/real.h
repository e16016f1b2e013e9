/* real.h: precision switch for the CPU reference ops.
 *
 * Every file in csrc/cpu/ is compiled twice by CMake: once as float32 and
 * once with -DRC_REAL_DOUBLE=1 as float64. Write ops with `real`, name them
 * with RC_FN(name) (-> name_f32 / name_f64) and call BLAS through RC_GEMM /
 * RC_GEMV, so one source serves training (f32) and the finite-difference
 * tests (f64). Symbols shared by both builds (not templated on precision)
 * must be guarded with #if !RC_REAL_DOUBLE so they are defined once.
 */
#ifndef RC_CPU_REAL_H
#define RC_CPU_REAL_H

#include <cblas.h>

#include "recompose/ops.h"

#ifndef RC_REAL_DOUBLE
#define RC_REAL_DOUBLE 0
#endif

#if RC_REAL_DOUBLE
typedef double real;
#define RC_FN(name) name##_f64
#define RC_GEMM cblas_dgemm
#define RC_GEMV cblas_dgemv
#define RC_EXP exp
#define RC_TANH tanh
#define RC_SQRT sqrt
#else
typedef float real;
#define RC_FN(name) name##_f32
#define RC_GEMM cblas_sgemm
#define RC_GEMV cblas_sgemv
#define RC_EXP expf
#define RC_TANH tanhf
#define RC_SQRT sqrtf
#endif

/* OpenBLAS (the pthread build Debian links by default) runs its own thread
 * pool. Ops that split their work across OpenMP threads call BLAS from
 * inside the parallel region and want it single-threaded there, or the two
 * pools spin against each other on every call. rc_blas_serial_begin(1) sets
 * BLAS to one thread and returns the previous count for rc_blas_serial_end;
 * rc_blas_serial_begin(0) changes nothing (for calls that stay serial and
 * may let BLAS thread). Not templated: defined once, in backend_cpu.c. */
int rc_blas_serial_begin(int serial);
void rc_blas_serial_end(int previous);

#endif
