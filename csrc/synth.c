/* synth.c: synthetic clips with known rigid motion (SPEC section 6).
 *
 * The texture is a function on the plane with period P = size pixels in both
 * texture axes, evaluated analytically at every pixel (no raster, so no
 * resampling error: a frame is exactly the moved texture, up to float
 * rounding). It is the sum of
 *   - plane waves a_k cos(2 pi/P k.p + phi_k) with random integer frequency
 *     vectors k (integer so the sum is P-periodic), log-uniform |k| up to a
 *     family's highest frequency and amplitude |k|^-slope (a 1/f-like
 *     spectrum: structure at every scale), then
 *   - rectangles and ellipses composited on top, with edges one pixel wide
 *     (sharp, but not aliased), for edges and corners where the aperture
 *     problem does not hide the motion.
 * How many of each, and the spectrum, are the texture family's (synth.h).
 * With 3 channels every wave and shape has its own colour near gray, so the
 * channels are correlated like natural images.
 *
 * Motion convention. Image x is the column (rightwards), y the row
 * (downwards); c = ((size-1)/2, (size-1)/2) is the window centre. The texture
 * is a rigid sheet whose origin sits at c in frame 0. In frame t its origin
 * is at c + t*(vx, vy) and it is turned by t*omega about that origin, so
 * texture point p appears at pixel
 *     x = c + t*v + R(t*omega) p,   R(a) = [cos a, -sin a; sin a, cos a],
 * and pixel x of frame t shows texture point p = R(-t*omega)(x - c - t*v).
 * Content thus moves by +v pixels per frame (vx > 0: rightwards, vy > 0:
 * downwards) and turns by omega per frame (omega > 0 turns +x towards +y,
 * i.e. clockwise on screen). Between frames a and c the pose changes by
 * exactly ((c-a)vx, (c-a)vy, (c-a)omega).
 *
 * Speed: a plane wave's phase is affine in (x, y), so cos(A(x) + B(y)) =
 * cosA cosB - sinA sinB with A, B tabulated once per frame: 2*size sincos per
 * wave and frame, then 3 flops per wave and pixel.
 */
#include "recompose/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/rng.h"

#define RC_SYNTH_WAVES 40    /* most waves of any family */
#define RC_SYNTH_SHAPES 40   /* most shapes of any family */
#define RC_SYNTH_CONTRAST 2.5  /* standard deviations mapped to [0, 1] */

/* What tells the families apart (enum rc_texture_family, synth.h). MIXED's
 * numbers are the ones every trained model so far has seen: changing them
 * changes every synthetic clip. */
typedef struct {
    int waves, shapes;
    double max_freq;     /* cycles per pixel of the finest wave */
    double slope;        /* amplitude ~ |k|^-slope */
    double shape_max;    /* largest half extent, as a fraction of the period */
} texture_family;

static const texture_family families[RC_TEXTURE_FAMILIES] = {
    [RC_TEXTURE_MIXED] = {40, 10, 0.18, 0.6, 0.10},
    [RC_TEXTURE_SHAPES] = {8, 40, 0.05, 1.0, 0.16},
};

const char *const rc_texture_family_names[RC_TEXTURE_FAMILIES] = {
    [RC_TEXTURE_MIXED] = "mixed",
    [RC_TEXTURE_SHAPES] = "shapes",
};

/* Domain tags, so that keys drawn for different purposes never coincide. */
#define TAG_CLIP 0x636c69702d6b6579ULL    /* "clip-key" */
#define TAG_MOTION 0x6d6f74696f6e2d31ULL  /* "motion-1" */
#define TAG_TEXTURE 0x746578747572652dULL /* "texture-" */
#define TAG_RETEXTURE 0x7265746578747572ULL /* "retextur" */

static const double TWO_PI = 6.283185307179586;

typedef struct {
    double kx, ky, phase;
    double *amp; /* [channels] amplitude times colour weight */
} synth_wave;

typedef struct {
    double cx, cy;      /* centre in texture coordinates, [0, P) */
    double ux, uy;      /* unit axis of the shape */
    double hx, hy;      /* half extents along its axes */
    double reach;       /* bounding radius incl. the 1-pixel edge */
    int ellipse;        /* 0 rectangle, 1 ellipse */
    double opacity;
    double *colour;     /* [channels] */
} synth_shape;

typedef struct {
    int channels;
    double period;
    const texture_family *family;
    synth_wave wave[RC_SYNTH_WAVES];
    synth_shape shape[RC_SYNTH_SHAPES];
    double *scale;     /* [channels] 1 / (contrast * std of the wave sum) */
    double *storage;   /* backs every per-channel array above */
} synth_texture;

/* ---- keys and motion ---------------------------------------------------- */

uint64_t rc_synth_clip_key(uint64_t seed, int split, uint64_t index) {
    uint64_t h = rc_hash_combine(rc_hash_combine(seed, TAG_CLIP),
                                 (uint64_t)(unsigned)split);
    h = rc_hash_combine(h, index);
    /* The low bit is the split: train and held-out keys are disjoint by
     * construction, not merely with overwhelming probability. */
    return (h & ~(uint64_t)1) | (uint64_t)(split != RC_SPLIT_TRAIN);
}

void rc_synth_motion(const rc_synth_config *c, uint64_t clip_key,
                     rc_motion *m) {
    rc_rng rng;
    rc_rng_seed(&rng, rc_hash_combine(clip_key, TAG_MOTION));
    m->vx = (float)rc_rng_range(&rng, -c->max_speed, c->max_speed);
    m->vy = (float)rc_rng_range(&rng, -c->max_speed, c->max_speed);
    m->omega = (float)rc_rng_range(&rng, -c->max_rotation, c->max_rotation);
    m->texture_key = rc_hash_combine(clip_key, TAG_TEXTURE);
    m->texture_family = c->texture;
    m->roll = 0.0f;
}

void rc_synth_retexture(const rc_motion *m, uint64_t salt, int family,
                        rc_motion *out) {
    *out = *m;
    out->texture_key = rc_hash_combine(rc_hash_combine(m->texture_key,
                                                       TAG_RETEXTURE), salt);
    out->texture_family = family;
}

/* ---- texture ------------------------------------------------------------ */

/* A random integer frequency vector with log-uniform length in [1, kmax]. */
static void draw_frequency(rc_rng *rng, double kmax, double *kx, double *ky) {
    for (;;) {
        double r = exp(rc_rng_range(rng, 0.0, log(kmax)));
        double a = rc_rng_range(rng, 0.0, TWO_PI);
        *kx = floor(r * cos(a) + 0.5);
        *ky = floor(r * sin(a) + 0.5);
        if (*kx != 0.0 || *ky != 0.0) return;
    }
}

/* One channel's weight around a shared gray level `base`: every channel
 * starts from the same base, so channels are correlated; gray gets `base`. */
static double tint(rc_rng *rng, int channels, double base, double spread) {
    return channels == 1 ? base : base + spread * rc_rng_normal(rng);
}

static void draw_waves(synth_texture *tx, rc_rng *rng, double **mem) {
    int C = tx->channels;
    double kmax = fmax(2.0, tx->family->max_freq * tx->period);
    double *var = *mem;
    *mem += C;
    memset(var, 0, sizeof(double) * (size_t)C);
    for (int w = 0; w < tx->family->waves; w++) {
        synth_wave *wv = &tx->wave[w];
        draw_frequency(rng, kmax, &wv->kx, &wv->ky);
        wv->phase = rc_rng_range(rng, 0.0, TWO_PI);
        double a = pow(hypot(wv->kx, wv->ky), -tx->family->slope);
        wv->amp = *mem;
        *mem += C;
        for (int ch = 0; ch < C; ch++) {
            wv->amp[ch] = a * tint(rng, C, 1.0, 0.25);
            var[ch] += 0.5 * wv->amp[ch] * wv->amp[ch];
        }
    }
    for (int ch = 0; ch < C; ch++)
        tx->scale[ch] = 1.0 / (2.0 * RC_SYNTH_CONTRAST * sqrt(var[ch]));
}

static void draw_shapes(synth_texture *tx, rc_rng *rng, double **mem) {
    int C = tx->channels;
    double P = tx->period;
    for (int s = 0; s < tx->family->shapes; s++) {
        synth_shape *sh = &tx->shape[s];
        sh->cx = rc_rng_range(rng, 0.0, P);
        sh->cy = rc_rng_range(rng, 0.0, P);
        double a = rc_rng_range(rng, 0.0, TWO_PI);
        sh->ux = cos(a);
        sh->uy = sin(a);
        /* Half extents from 1.5 px to shape_max * P (at most P/6): the
         * shape plus its edge stays inside one period cell, so wrapping
         * never cuts it. */
        double hmax = fmax(2.0, P * tx->family->shape_max);
        sh->hx = rc_rng_range(rng, 1.5, hmax);
        sh->hy = rc_rng_range(rng, 1.5, hmax);
        sh->reach = hypot(sh->hx, sh->hy) + 1.0;
        sh->ellipse = rc_rng_int(rng, 2);
        sh->opacity = rc_rng_range(rng, 0.6, 1.0);
        double level = rc_rng_uniform(rng);
        sh->colour = *mem;
        *mem += C;
        for (int ch = 0; ch < C; ch++)
            sh->colour[ch] = fmin(1.0, fmax(0.0, tint(rng, C, level, 0.2)));
    }
}

static void texture_init(synth_texture *tx, uint64_t key, int family,
                         int channels, int size) {
    rc_rng rng;
    rc_rng_seed(&rng, key);
    tx->channels = channels;
    tx->period = size;
    if (family < 0 || family >= RC_TEXTURE_FAMILIES) family = RC_TEXTURE_MIXED;
    tx->family = &families[family];
    size_t n = (size_t)channels * (2 + tx->family->waves + tx->family->shapes);
    tx->storage = rc_xmalloc(sizeof(double) * n);
    double *mem = tx->storage;
    tx->scale = mem;
    mem += channels;
    draw_waves(tx, &rng, &mem);
    draw_shapes(tx, &rng, &mem);
}

static void texture_free(synth_texture *tx) { free(tx->storage); }

/* Signed distance (approximate for ellipses) from shape-local (u, w) to the
 * boundary, negative inside. */
static double shape_distance(const synth_shape *sh, double u, double w) {
    if (!sh->ellipse) return fmax(fabs(u) - sh->hx, fabs(w) - sh->hy);
    double r = sqrt((u / sh->hx) * (u / sh->hx) + (w / sh->hy) * (w / sh->hy));
    return (r - 1.0) * fmin(sh->hx, sh->hy);
}

/* Nearest periodic image of d in [-P/2, P/2). */
static double wrap(double d, double P) { return d - P * floor(d / P + 0.5); }

/* ---- rendering ---------------------------------------------------------- */

typedef struct {
    int size;
    double cos_t, sin_t; /* rotation R(theta) of this frame */
    double ox, oy;       /* texture origin in pixels: c + t*v */
    double *cos_a, *sin_a, *cos_b, *sin_b; /* [waves][size] */
    double *acc;         /* [channels][size] one row of wave sums */
} frame_work;

/* Phase of wave k at pixel (x, y) is
 *   2 pi/P (R(theta)k) . (x - ox, y - oy) + phi = A(x) + B(y),
 * because k . R(-theta) q = (R(theta) k) . q. Tabulate cos/sin of A and B. */
static void tabulate_waves(const synth_texture *tx, frame_work *fw) {
    int N = fw->size;
    double f = TWO_PI / tx->period;
    for (int w = 0; w < tx->family->waves; w++) {
        const synth_wave *wv = &tx->wave[w];
        double kx = fw->cos_t * wv->kx - fw->sin_t * wv->ky;
        double ky = fw->sin_t * wv->kx + fw->cos_t * wv->ky;
        double *ca = fw->cos_a + (size_t)w * N, *sa = fw->sin_a + (size_t)w * N;
        double *cb = fw->cos_b + (size_t)w * N, *sb = fw->sin_b + (size_t)w * N;
        for (int i = 0; i < N; i++) {
            double a = f * kx * (i - fw->ox) + wv->phase;
            double b = f * ky * (i - fw->oy);
            ca[i] = cos(a);
            sa[i] = sin(a);
            cb[i] = cos(b);
            sb[i] = sin(b);
        }
    }
}

/* Wave sums of row y for every channel into fw->acc. */
static void row_waves(const synth_texture *tx, frame_work *fw, int y) {
    int N = fw->size, C = tx->channels;
    memset(fw->acc, 0, sizeof(double) * (size_t)C * (size_t)N);
    for (int w = 0; w < tx->family->waves; w++) {
        const double *ca = fw->cos_a + (size_t)w * N;
        const double *sa = fw->sin_a + (size_t)w * N;
        double cb = fw->cos_b[(size_t)w * N + y];
        double sb = fw->sin_b[(size_t)w * N + y];
        for (int ch = 0; ch < C; ch++) {
            double amp = tx->wave[w].amp[ch];
            double *acc = fw->acc + (size_t)ch * N;
            for (int x = 0; x < N; x++)
                acc[x] += amp * (ca[x] * cb - sa[x] * sb);
        }
    }
}

/* Composite the shapes over pixel value v[ch] (stride N) at texture point
 * (px, py). */
static void pixel_shapes(const synth_texture *tx, double px, double py,
                         double *v, int stride) {
    double P = tx->period;
    for (int s = 0; s < tx->family->shapes; s++) {
        const synth_shape *sh = &tx->shape[s];
        double dx = wrap(px - sh->cx, P), dy = wrap(py - sh->cy, P);
        if (fabs(dx) > sh->reach || fabs(dy) > sh->reach) continue;
        double u = dx * sh->ux + dy * sh->uy;
        double w = -dx * sh->uy + dy * sh->ux;
        /* Coverage ramps over one pixel across the boundary. */
        double alpha = 0.5 - shape_distance(sh, u, w);
        if (alpha <= 0.0) continue;
        alpha = fmin(alpha, 1.0) * sh->opacity;
        for (int ch = 0; ch < tx->channels; ch++) {
            double *p = v + (size_t)ch * stride;
            *p += alpha * (sh->colour[ch] - *p);
        }
    }
}

static void render_frame(const synth_texture *tx, frame_work *fw, float *out) {
    int N = fw->size, C = tx->channels;
    tabulate_waves(tx, fw);
    for (int y = 0; y < N; y++) {
        row_waves(tx, fw, y);
        for (int ch = 0; ch < C; ch++) {
            double *acc = fw->acc + (size_t)ch * N;
            for (int x = 0; x < N; x++)
                acc[x] = fmin(1.0, fmax(0.0, 0.5 + acc[x] * tx->scale[ch]));
        }
        double qy = y - fw->oy;
        for (int x = 0; x < N; x++) {
            double qx = x - fw->ox;
            /* p = R(-theta) q */
            double px = fw->cos_t * qx + fw->sin_t * qy;
            double py = -fw->sin_t * qx + fw->cos_t * qy;
            pixel_shapes(tx, px, py, fw->acc + x, N);
        }
        for (int ch = 0; ch < C; ch++) {
            const double *acc = fw->acc + (size_t)ch * N;
            float *row = out + ((size_t)ch * N + (size_t)y) * N;
            for (int x = 0; x < N; x++) row[x] = (float)acc[x];
        }
    }
}

void rc_synth_render(const rc_synth_config *c, const rc_motion *m, int first,
                     int n, float *out) {
    int N = c->size, C = c->channels;
    if (N <= 0 || C <= 0 || n <= 0) return;
    synth_texture tx;
    texture_init(&tx, m->texture_key, m->texture_family, C, N);

    frame_work fw;
    fw.size = N;
    size_t table = (size_t)RC_SYNTH_WAVES * (size_t)N;
    double *mem = rc_xmalloc(sizeof(double) * (4 * table + (size_t)C * N));
    fw.cos_a = mem;
    fw.sin_a = mem + table;
    fw.cos_b = mem + 2 * table;
    fw.sin_b = mem + 3 * table;
    fw.acc = mem + 4 * table;

    double centre = 0.5 * (N - 1);
    size_t frame_elems = (size_t)C * (size_t)N * (size_t)N;
    for (int f = 0; f < n; f++) {
        double t = (double)first + f;
        /* Angles and offsets in double from the float parameters, so frame t
         * is exactly t times the per-frame motion. */
        double theta = t * ((double)m->omega - (double)m->roll);
        fw.cos_t = cos(theta);
        fw.sin_t = sin(theta);
        /* the origin's path t*v seen from the window, which has turned by
         * t*roll: R(-t*roll) t*v; exactly t*v without roll (cos 0 = 1,
         * sin 0 = 0) */
        double cr = cos(t * (double)m->roll), sr = sin(t * (double)m->roll);
        fw.ox = centre + (cr * (t * (double)m->vx) + sr * (t * (double)m->vy));
        fw.oy = centre + (-sr * (t * (double)m->vx) + cr * (t * (double)m->vy));
        render_frame(&tx, &fw, out + (size_t)f * frame_elems);
    }
    free(mem);
    texture_free(&tx);
}
