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

#endif
