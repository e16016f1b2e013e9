/* test_util.h: minimal assertions for the C tests.
 * A test is a program: exit 0 = pass, 1 = fail, 77 = skipped (ctest's
 * SKIP_RETURN_CODE). Each CHECK prints file:line and the failed expression. */
#ifndef RC_TEST_UTIL_H
#define RC_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int rc_test_failures __attribute__((unused)) = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            rc_test_failures++;                                              \
        }                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                 \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                  \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
            rc_test_failures++;                                              \
        }                                                                    \
    } while (0)

/* Relative error of two arrays: max|a-b| / max(max|b|, tiny). */
static inline double rc_test_rel_err_d(const double *a, const double *b,
                                       size_t n) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > num || isnan(d)) num = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / den;
}

static inline double rc_test_rel_err_f(const float *a, const float *b,
                                       size_t n) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > num || isnan(d)) num = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / den;
}

/* The same with a in float32 and b in float64 (a float32 op against its
 * float64 twin or a float64 oracle). */
static inline double rc_test_rel_err_fd(const float *a, const double *b,
                                        size_t n) {
    double num = 0, den = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num || isnan(d)) num = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return num / den;
}

#ifdef RECOMPOSE_CONFIG_H
/* A model small enough for whole training steps in a unit test: two conv
 * layers (6, 8 channels; kernels 5, 3; stride 2), F 12, H 10, D 6, on
 * image_size x image_size frames, clips of 4 steps, batch 3. */
static inline void rc_test_small_config(rc_config *c, int image_size) {
    rc_config_default(c);
    c->image_size = image_size;
    c->n_conv = 2;
    c->conv_channels[0] = 6;
    c->conv_channels[1] = 8;
    c->conv_kernels[0] = 5;
    c->conv_kernels[1] = 3;
    c->conv_strides[0] = 2;
    c->conv_strides[1] = 2;
    c->feature_dim = 12;
    c->hidden = 10;
    c->embed_dim = 6;
    c->clip_steps = 4;
    c->batch = 3;
}
#endif

#define TEST_SKIP(...)                                                       \
    do {                                                                     \
        fprintf(stderr, "SKIPPED: ");                                        \
        fprintf(stderr, __VA_ARGS__);                                        \
        fputc('\n', stderr);                                                 \
        exit(77);                                                            \
    } while (0)

#define TEST_DONE()                                                          \
    do {                                                                     \
        if (rc_test_failures) {                                              \
            fprintf(stderr, "%d check(s) failed\n", rc_test_failures);       \
            return 1;                                                        \
        }                                                                    \
        printf("ok\n");                                                      \
        return 0;                                                            \
    } while (0)

#endif
