/* rng.c: splitmix64 hashing and xoshiro256** generation. */
#include "recompose/rng.h"

#include <math.h>

uint64_t rc_hash64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t rc_hash_combine(uint64_t a, uint64_t b) {
    return rc_hash64(a ^ rc_hash64(b + 0x632be59bd9b4e019ULL));
}

void rc_rng_seed(rc_rng *r, uint64_t key) {
    uint64_t x = key;
    for (int i = 0; i < 4; i++) {
        x = rc_hash64(x + (uint64_t)i);
        r->s[i] = x;
    }
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t rc_rng_next(rc_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rc_rng_uniform(rc_rng *r) {
    return (double)(rc_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double rc_rng_range(rc_rng *r, double lo, double hi) {
    return lo + (hi - lo) * rc_rng_uniform(r);
}

int rc_rng_int(rc_rng *r, int n) {
    /* rejection sampling: no modulo bias */
    uint64_t bound = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do {
        x = rc_rng_next(r);
    } while (x >= limit);
    return (int)(x % bound);
}

double rc_rng_normal(rc_rng *r) {
    double u1 = rc_rng_uniform(r), u2 = rc_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
