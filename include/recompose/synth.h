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

/* Key domains: training clips, the held-out clips of evaluation, and the
 * validation clips a run's validation loss is measured on during training
 * (held out too: their keys have the low bit of a non-training split). */
enum rc_split { RC_SPLIT_TRAIN = 0, RC_SPLIT_HELDOUT = 1, RC_SPLIT_VALIDATION = 2 };

/* Texture families: two generators with different image statistics, so
 * that evaluation can ask whether a motion code learned on one holds on the
 * other (SPEC section 7, consistency across scenes).
 *   MIXED   40 plane waves with a 1/f-like spectrum up to 0.18 cycles per
 *           pixel, 10 small shapes on top: fine texture everywhere (the
 *           training default)
 *   SHAPES  8 smooth waves up to 0.05 cycles per pixel (soft shading), 40
 *           larger, contrasted shapes: flat regions and edges */
enum rc_texture_family {
    RC_TEXTURE_MIXED = 0,
    RC_TEXTURE_SHAPES = 1,
    RC_TEXTURE_FAMILIES
};
extern const char *const rc_texture_family_names[RC_TEXTURE_FAMILIES];

typedef struct {
    int size;            /* frame width = height, pixels */
    int channels;        /* 1 gray, 3 RGB */
    float max_speed;     /* |vx|, |vy| <= max_speed pixels per frame */
    float max_rotation;  /* |omega| <= max_rotation radians per frame */
    int texture;         /* enum rc_texture_family of the clips drawn */
} rc_synth_config;

typedef struct {
    float vx, vy, omega; /* per-frame motion */
    uint64_t texture_key;
    int texture_family;  /* enum rc_texture_family */
    float roll;          /* the window turns by roll radians per frame about
                            its centre (a camera roll; 0 for every clip drawn
                            by rc_synth_motion): frame t shows the texture
                            turned by t*(omega - roll) about the point
                            c + R(-t*roll) t*v: a window displacement d is
                            the canvas displacement R(t*roll) d */
} rc_motion;

/* Key of clip `index` of `split` for a run seeded with `seed`. */
uint64_t rc_synth_clip_key(uint64_t seed, int split, uint64_t index);

/* Motion parameters of a clip, drawn from its key; its texture is of the
 * config's family. */
void rc_synth_motion(const rc_synth_config *c, uint64_t clip_key,
                     rc_motion *m);

/* The same motion on another texture: a texture key derived from m's and
 * `salt` (different salts give different textures), of family `family`. */
void rc_synth_retexture(const rc_motion *m, uint64_t salt, int family,
                        rc_motion *out);

/* Render frames first..first+n-1 of a clip: out [n][channels][size][size],
 * values in [0, 1]. Thread-safe (no shared state). */
void rc_synth_render(const rc_synth_config *c, const rc_motion *m, int first,
                     int n, float *out);

#ifdef __cplusplus
}
#endif
#endif
