/* synth.h: synthetic clips with known motion (SPEC section 6).
 *
 * A clip is a procedural, periodic texture seen through a fixed square
 * window, moved by a rigid motion per frame: rotation by omega (radians)
 * about the window centre, then translation by (vx, vy) pixels. Frame t shows
 * the texture transformed by t times that motion, so the net motion of the
 * frames a..c is ((c-a)*vx, (c-a)*vy, (c-a)*omega) exactly.
 *
 * Everything about a clip follows from its 64-bit clip key, so clips are
 * reproducible, and the held-out split (a different key domain) is disjoint
 * from training.
 */
#ifndef RECOMPOSE_SYNTH_H
#define RECOMPOSE_SYNTH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rc_split { RC_SPLIT_TRAIN = 0, RC_SPLIT_HELDOUT = 1 };

typedef struct {
    int size;            /* frame width = height, pixels */
    int channels;        /* 1 gray, 3 RGB */
    float max_speed;     /* |vx|, |vy| <= max_speed pixels per frame */
    float max_rotation;  /* |omega| <= max_rotation radians per frame */
} rc_synth_config;

typedef struct {
    float vx, vy, omega; /* per-frame motion */
    uint64_t texture_key;
} rc_motion;

/* Key of clip `index` of `split` for a run seeded with `seed`. */
uint64_t rc_synth_clip_key(uint64_t seed, int split, uint64_t index);

/* Motion parameters of a clip, drawn from its key. */
void rc_synth_motion(const rc_synth_config *c, uint64_t clip_key,
                     rc_motion *m);

/* Render frames first..first+n-1 of a clip: out [n][channels][size][size],
 * values in [0, 1]. Thread-safe (no shared state). */
void rc_synth_render(const rc_synth_config *c, const rc_motion *m, int first,
                     int n, float *out);

#ifdef __cplusplus
}
#endif
#endif
