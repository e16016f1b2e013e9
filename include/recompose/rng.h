/* rng.h: deterministic random numbers.
 *
 * Everything random in a run is derived from (seed, purpose, indices) with a
 * hash, never from a shared stream whose position depends on timing or thread
 * count. That is what makes runs bitwise reproducible and resume exact: the
 * data of step k is a pure function of (seed, k).
 */
#ifndef RECOMPOSE_RNG_H
#define RECOMPOSE_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t s[4]; /* xoshiro256** state */
} rc_rng;

/* splitmix64 finaliser: a good 64-bit mixing function. */
uint64_t rc_hash64(uint64_t x);
/* Hash of several words, order-sensitive. */
uint64_t rc_hash_combine(uint64_t a, uint64_t b);

/* Seed a generator from a 64-bit key (typically a rc_hash_combine chain). */
void rc_rng_seed(rc_rng *r, uint64_t key);
uint64_t rc_rng_next(rc_rng *r);
/* Uniform in [0, 1). */
double rc_rng_uniform(rc_rng *r);
/* Uniform in [lo, hi). */
double rc_rng_range(rc_rng *r, double lo, double hi);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
int rc_rng_int(rc_rng *r, int n);
/* Standard normal (Box-Muller). */
double rc_rng_normal(rc_rng *r);

#ifdef __cplusplus
}
#endif
#endif
