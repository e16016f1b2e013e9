/* loader.c: decode threads fill a ring of batch buffers with clips.
 *
 * Determinism: clip b of step s is drawn from an RNG keyed by
 * (seed, s, b, attempt) and processed by one thread with a fixed sequence of
 * float operations, so a batch is bitwise the same whatever the thread
 * count, ring depth or timing. Bad records (skip mode) are a property of
 * the data: a clip that touches one is redrawn with attempt + 1, whether the
 * record was already known bad or is found bad now, so skipping too leaves
 * the result independent of timing. */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/rng.h"
#include "recompose/sampler.h"
#include "recompose/video.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define RC_HAVE_SSSE3_PATH 1
#endif

#define MAX_ATTEMPTS 64
#define PURPOSE_CLIP 0x636c6970ULL /* "clip" */

typedef struct {
    int dataset_index;
    const rc_shard *shard;
    const rc_shard_sequence *seq;
    int64_t first_start;  /* cumulative count of clip starts before this one */
    int n_starts;
    int resized_w, resized_h;
    uint32_t bad_base;    /* offset of its records in the bad-flag array */
} usable_seq;

typedef struct {
    void *buf;            /* floats, or bytes with o.u8 */
    int64_t step;
    int done;
    int failed_b;         /* lowest failing clip, -1 none */
    char err[1024];
} ring_slot;

typedef struct {
    rc_loader *l;
    void *jpeg;           /* TurboJPEG handle */
    float *rows;          /* horizontal pass scratch */
    size_t rows_cap;
    pthread_t th;
} worker;

struct rc_loader {
    rc_loader_options o;
    const rc_dataset *d;
    usable_seq *seqs;
    int n_seqs;
    int64_t total_starts;
    int64_t total_frames;
    size_t clip_floats, batch_floats; /* values (floats or bytes) */
    size_t value_bytes;               /* 4, or 1 with o.u8 */
    atomic_uchar *bad_flags;
    atomic_uchar *checked; /* per record: its CRC matched once (the shard
                              is mapped read-only: no need to again) */
    uint32_t n_flags;

    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    ring_slot *slots;
    int64_t base;         /* lowest step not yet released */
    int64_t next_job;     /* next job = step * B + b to hand out */
    int in_flight;
    int pausing, stop;
    worker *workers;
    int n_workers;

    /* bad items */
    int bad_total;
    char **bad_epoch;
    int n_bad_epoch;
    int64_t epoch_reported;
};

void rc_loader_options_default(rc_loader_options *o) {
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->batch = 16;
    o->clip_steps = 4;
    o->frame_stride = 1;
    o->size = 64;
    o->channels = 1;
    o->resize = 0;
    o->random_crop = 1;
    o->flip = 1;
    o->seed = 1;
    o->ring = 4;
    o->on_bad = RC_ON_BAD_FAIL;
    o->validation = 0;
    o->val_fraction = 0.1;
}

/* ---- sampling ------------------------------------------------------------ */

static uint64_t uniform_u64(rc_rng *r, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = rc_rng_next(r);
    while (x >= limit);
    return x % n;
}

static int find_seq(const rc_loader *l, int64_t k) {
    int lo = 0, hi = l->n_seqs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (l->seqs[mid].first_start <= k) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Internal form: `u` is the usable-sequence index. */
static void draw_clip(const rc_loader *l, int64_t step, int b, int attempt,
                      rc_clip_draw *out, int *u) {
    rc_rng r;
    uint64_t key = rc_hash_combine(l->o.seed ^ PURPOSE_CLIP, (uint64_t)step);
    key = rc_hash_combine(key, (uint64_t)b);
    rc_rng_seed(&r, rc_hash_combine(key, (uint64_t)attempt));
    /* every clip start of every sequence is equally likely */
    int64_t k = (int64_t)uniform_u64(&r, (uint64_t)l->total_starts);
    int i = find_seq(l, k);
    const usable_seq *q = &l->seqs[i];
    *u = i;
    out->sequence = q->dataset_index;
    out->start = (int)(k - q->first_start);
    out->resized_w = q->resized_w;
    out->resized_h = q->resized_h;
    int S = l->o.size;
    if (l->o.random_crop) {
        out->crop_x = rc_rng_int(&r, q->resized_w - S + 1);
        out->crop_y = rc_rng_int(&r, q->resized_h - S + 1);
    } else {
        out->crop_x = (q->resized_w - S) / 2;
        out->crop_y = (q->resized_h - S) / 2;
    }
    out->flip = l->o.flip ? (int)(rc_rng_next(&r) >> 63) : 0;
}

void rc_loader_draw(const rc_loader *l, int64_t step, int b, int attempt,
                    rc_clip_draw *out) {
    int u;
    draw_clip(l, step, b, attempt, out, &u);
}

/* ---- resampling ------------------------------------------------------------ */

/* One output sample along an axis: taps over source pixels [first, first+n). */
typedef struct {
    int first, n;
    float w[40];
} axis_tap;

/* Output pixels o = 0..out_n-1 cover resized pixels [offset+o, offset+o+1),
 * i.e. source pixels [(offset+o)*scale, (offset+o+1)*scale), scale =
 * src_n/resized_n. Downscaling averages that footprint (area filter);
 * upscaling interpolates linearly. */
static void build_axis(int out_n, int offset, int resized_n, int src_n,
                       axis_tap *t) {
    double scale = (double)src_n / resized_n;
    for (int o = 0; o < out_n; o++) {
        axis_tap *a = &t[o];
        memset(a, 0, sizeof *a);
        if (scale <= 1.0) {
            double c = (offset + o + 0.5) * scale - 0.5;
            if (c < 0) c = 0;
            if (c > src_n - 1) c = src_n - 1;
            int i0 = (int)floor(c);
            double f = c - i0;
            a->first = i0;
            if (i0 + 1 < src_n && f > 0) {
                a->n = 2;
                a->w[0] = (float)(1 - f);
                a->w[1] = (float)f;
            } else {
                a->n = 1;
                a->w[0] = 1.0f;
            }
            continue;
        }
        double lo = (offset + o) * scale, hi = (offset + o + 1) * scale;
        if (hi > src_n) hi = src_n;
        int i0 = (int)floor(lo), i1 = (int)ceil(hi);
        if (i1 - i0 > 40) i1 = i0 + 40; /* only for > 39x downscaling */
        a->first = i0;
        a->n = i1 - i0;
        double sum = 0;
        for (int i = i0; i < i1; i++) {
            double l0 = i > lo ? i : lo, h0 = i + 1 < hi ? i + 1 : hi;
            a->w[i - i0] = (float)(h0 - l0);
            sum += h0 - l0;
        }
        for (int j = 0; j < a->n; j++) a->w[j] = (float)(a->w[j] / sum);
    }
}

/* 1 if the taps just pick consecutive source pixels (scale 1: the decoder
 * already produced the resized frame), so only crop and flip remain. */
static int axis_is_identity(const axis_tap *a, int n) {
    for (int o = 0; o < n; o++)
        if (a[o].n != 1 || a[o].w[0] != 1.0f || a[o].first != a[0].first + o)
            return 0;
    return 1;
}

/* ---- RGB bytes to planes ----------------------------------------------------
 * The paper preset's frames are only cropped: its per-pixel work is the
 * RGB deinterleave into three planes. Scalar, that is one byte at a time
 * (gcc leaves the stride-3 gather unvectorized): ~20% of a decode thread.
 * With SSSE3 (every x86-64 CPU since 2006, chosen at run time) 16 pixels
 * take nine byte shuffles. The result is the same bytes either way
 * (test_video_loader compares bytes with the scalar float path). */

/* scalar: n pixels of row (RGB) into r, g, b; reversed when flip */
static void deinterleave_rgb_scalar(const uint8_t *row, int n, int flip, uint8_t *r,
                                    uint8_t *g, uint8_t *b) {
    for (int x = 0; x < n; x++) {
        int o = flip ? n - 1 - x : x;
        r[o] = row[3 * x];
        g[o] = row[3 * x + 1];
        b[o] = row[3 * x + 2];
    }
}

#ifdef RC_HAVE_SSSE3_PATH
/* mask[flip][ch][v]: which byte of input vector v goes to each output byte
 * of channel ch (0x80: none); flipped masks write the 16 pixels reversed */
static uint8_t rgb_masks[2][3][3][16];
static int have_ssse3;

static void init_rgb_masks(void) {
    for (int f = 0; f < 2; f++)
        for (int ch = 0; ch < 3; ch++)
            for (int v = 0; v < 3; v++)
                for (int j = 0; j < 16; j++) {
                    int src = 3 * (f ? 15 - j : j) + ch;
                    rgb_masks[f][ch][v][j] = src / 16 == v ? (uint8_t)(src % 16) : 0x80;
                }
    __builtin_cpu_init();
    have_ssse3 = __builtin_cpu_supports("ssse3");
}

__attribute__((target("ssse3"))) static void
deinterleave_rgb_ssse3(const uint8_t *row, int n, int flip, uint8_t *r, uint8_t *g,
                       uint8_t *b) {
    uint8_t *plane[3] = {r, g, b};
    int x = 0;
    for (; x + 16 <= n; x += 16) {
        __m128i in[3];
        for (int v = 0; v < 3; v++)
            in[v] = _mm_loadu_si128((const __m128i *)(row + 3 * x + 16 * v));
        int at = flip ? n - 16 - x : x;
        for (int ch = 0; ch < 3; ch++) {
            __m128i o = _mm_setzero_si128();
            for (int v = 0; v < 3; v++)
                o = _mm_or_si128(o, _mm_shuffle_epi8(
                                        in[v], _mm_loadu_si128((const __m128i *)
                                                                   rgb_masks[flip][ch][v])));
            _mm_storeu_si128((__m128i *)(plane[ch] + at), o);
        }
    }
    /* the rest (n not a multiple of 16): scalar, into the remaining end */
    if (x < n) {
        int rest = n - x;
        if (flip)
            deinterleave_rgb_scalar(row + 3 * x, rest, 1, r, g, b);
        else
            deinterleave_rgb_scalar(row + 3 * x, rest, 0, r + x, g + x, b + x);
    }
}
#endif

static void deinterleave_rgb(const uint8_t *row, int n, int flip, uint8_t *r,
                             uint8_t *g, uint8_t *b) {
#ifdef RC_HAVE_SSSE3_PATH
    if (have_ssse3) {
        deinterleave_rgb_ssse3(row, n, flip, r, g, b);
        return;
    }
#endif
    deinterleave_rgb_scalar(row, n, flip, r, g, b);
}

static void crop_frame_f32(const rc_image *im, int S, int x0, int y0, int flip,
                           float *out) {
    const float inv = 1.0f / 255.0f;
    int C = im->channels;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < S; y++) {
            const uint8_t *row =
                im->pixels + ((size_t)(y0 + y) * im->width + x0) * C + c;
            float *o = out + ((size_t)c * S + y) * S;
            if (flip)
                for (int x = 0; x < S; x++) o[S - 1 - x] = row[x * C] * inv;
            else
                for (int x = 0; x < S; x++) o[x] = row[x * C] * inv;
        }
}

static void crop_frame_u8(const rc_image *im, int S, int x0, int y0, int flip,
                          uint8_t *out) {
    int C = im->channels;
    size_t plane = (size_t)S * S;
    for (int y = 0; y < S; y++) {
        const uint8_t *row = im->pixels + ((size_t)(y0 + y) * im->width + x0) * C;
        uint8_t *o = out + (size_t)y * S;
        if (C == 3)
            deinterleave_rgb(row, S, flip, o, o + plane, o + 2 * plane);
        else if (flip)
            for (int x = 0; x < S; x++) o[S - 1 - x] = row[x];
        else
            memcpy(o, row, (size_t)S);
    }
}

/* The identity case without filtering; the values are bitwise those of the
 * general path (1.0f * p * inv == p * inv; a byte stays itself). */
static void crop_frame(const rc_image *im, int S, int x0, int y0, int flip,
                       int u8, void *out) {
    if (u8)
        crop_frame_u8(im, S, x0, y0, flip, out);
    else
        crop_frame_f32(im, S, x0, y0, flip, out);
}

/* Crop, resize, flip and convert one decoded frame to [C][S][S] floats in
 * [0, 1], or (u8) bytes: the filtered value rounded to the nearest byte. */
static void resample_frame(worker *w, const rc_image *im, const axis_tap *ax,
                           const axis_tap *ay, int flip, void *out) {
    int S = w->l->o.size, C = im->channels, u8 = w->l->o.u8;
    if (axis_is_identity(ax, S) && axis_is_identity(ay, S)) {
        crop_frame(im, S, ax[0].first, ay[0].first, flip, u8, out);
        return;
    }
    int y0 = ay[0].first, y1 = ay[S - 1].first + ay[S - 1].n;
    size_t need = (size_t)(y1 - y0) * S * C;
    if (need > w->rows_cap) {
        free(w->rows);
        w->rows = rc_xmalloc(need * sizeof(float));
        w->rows_cap = need;
    }
    /* horizontal pass over the rows the vertical filter will read */
    for (int y = y0; y < y1; y++) {
        const uint8_t *src = im->pixels + (size_t)y * im->width * C;
        float *dst = w->rows + (size_t)(y - y0) * S * C;
        for (int ox = 0; ox < S; ox++) {
            const axis_tap *a = &ax[ox];
            int dx = flip ? S - 1 - ox : ox;
            for (int c = 0; c < C; c++) {
                float acc = 0;
                for (int k = 0; k < a->n; k++)
                    acc += a->w[k] * src[(size_t)(a->first + k) * C + c];
                dst[(size_t)dx * C + c] = acc;
            }
        }
    }
    /* vertical pass into planar [C][S][S], scaled to [0, 1] */
    const float inv = 1.0f / 255.0f;
    for (int oy = 0; oy < S; oy++) {
        const axis_tap *a = &ay[oy];
        for (int x = 0; x < S; x++)
            for (int c = 0; c < C; c++) {
                float acc = 0;
                for (int k = 0; k < a->n; k++)
                    acc += a->w[k] *
                           w->rows[((size_t)(a->first + k - y0) * S + x) * C + c];
                size_t at = ((size_t)c * S + oy) * S + x;
                if (u8) {
                    ((uint8_t *)out)[at] =
                        (uint8_t)(acc <= 0 ? 0 : acc >= 255 ? 255 : (int)(acc + 0.5f));
                } else {
                    float v = acc * inv;
                    ((float *)out)[at] = v < 0 ? 0 : v > 1 ? 1 : v;
                }
            }
    }
}

/* ---- bad items ------------------------------------------------------------ */

static int known_bad(const rc_loader *l, const usable_seq *q, int start) {
    for (int t = 0; t <= l->o.clip_steps; t++) {
        uint32_t r = q->bad_base + (uint32_t)(start + t * l->o.frame_stride);
        if (atomic_load(&l->bad_flags[r])) return 1;
    }
    return 0;
}

static void mark_bad(rc_loader *l, const usable_seq *q, int record,
                     const char *msg) {
    if (atomic_exchange(&l->bad_flags[q->bad_base + (uint32_t)record], 1))
        return; /* another thread listed it already */
    pthread_mutex_lock(&l->mu);
    l->bad_total++;
    l->bad_epoch = realloc(l->bad_epoch,
                           sizeof(char *) * (size_t)(l->n_bad_epoch + 1));
    if (!l->bad_epoch) {
        rc_log("out of memory");
        exit(2);
    }
    size_t n = strlen(msg) + 1;
    l->bad_epoch[l->n_bad_epoch] = rc_xmalloc(n);
    memcpy(l->bad_epoch[l->n_bad_epoch++], msg, n);
    pthread_mutex_unlock(&l->mu);
}

/* ---- one clip ------------------------------------------------------------- */

static int load_clip(worker *w, int64_t step, int b, unsigned char *out) {
    rc_loader *l = w->l;
    int S = l->o.size, C = l->o.channels, T = l->o.clip_steps;
    axis_tap *ax = rc_xmalloc(sizeof(axis_tap) * (size_t)S);
    axis_tap *ay = rc_xmalloc(sizeof(axis_tap) * (size_t)S);
    int rc = -1;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        rc_clip_draw d;
        int u;
        draw_clip(l, step, b, attempt, &d, &u);
        const usable_seq *q = &l->seqs[u];
        if (l->o.on_bad == RC_ON_BAD_SKIP && known_bad(l, q, d.start)) continue;
        int ok = 1, axes_built = 0;
        for (int t = 0; t <= T && ok; t++) {
            int rec = d.start + t * l->o.frame_stride;
            rc_image im;
            atomic_uchar *checked = &l->checked[q->bad_base + (uint32_t)rec];
            if (rc_shard_decode_checked(w->jpeg, q->shard,
                                        q->seq->first_record + (uint32_t)rec, C,
                                        d.resized_w, d.resized_h,
                                        !atomic_load(checked), &im) != 0) {
                if (l->o.on_bad == RC_ON_BAD_FAIL) goto done;
                mark_bad(l, q, rec, rc_last_error());
                ok = 0;
                break;
            }
            atomic_store(checked, 1);
            /* every frame of a sequence decodes to the same size, so the
             * filter taps are built once per clip */
            if (!axes_built) {
                build_axis(S, d.crop_x, d.resized_w, im.width, ax);
                build_axis(S, d.crop_y, d.resized_h, im.height, ay);
                axes_built = 1;
            }
            resample_frame(w, &im, ax, ay, d.flip,
                           out + (size_t)t * C * S * S * l->value_bytes);
            rc_image_free(&im);
        }
        if (ok) {
            rc = 0;
            goto done;
        }
    }
    rc_set_error("step %lld clip %d: %d draws in a row hit bad records "
                 "(%d known bad); most of the data is damaged, re-run "
                 "recompose pack", (long long)step, b, MAX_ATTEMPTS,
                 l->bad_total);
done:
    free(ax);
    free(ay);
    return rc;
}

/* ---- the thread pool and ring ----------------------------------------------- */

static void *worker_main(void *arg) {
    worker *w = arg;
    rc_loader *l = w->l;
    int B = l->o.batch, R = l->o.ring;
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        if (l->next_job < l->base * B) l->next_job = l->base * B;
        int64_t job = l->next_job, step = job / B;
        if (l->pausing || step >= l->base + R) {
            pthread_cond_wait(&l->cv_work, &l->mu);
            continue;
        }
        int b = (int)(job % B);
        ring_slot *s = &l->slots[step % R];
        if (b == 0) { /* first job of a step claims its slot */
            s->step = step;
            s->done = 0;
            s->failed_b = -1;
        }
        l->next_job++;
        l->in_flight++;
        pthread_mutex_unlock(&l->mu);
        size_t clip_bytes = l->clip_floats * l->value_bytes;
        unsigned char *clip = (unsigned char *)s->buf + (size_t)b * clip_bytes;
        int rc = load_clip(w, step, b, clip);
        for (int t = 0; rc == 0 && t < l->o.n_twin_maps; t++) {
            void *twin = (unsigned char *)s->buf + (size_t)(B * (1 + t) + b) * clip_bytes;
            if (l->o.u8)
                rc_twin_frames_u8(l->o.twin_maps[t], l->o.clip_steps + 1,
                                  l->o.channels, l->o.size, clip, twin);
            else
                rc_twin_frames(l->o.twin_maps[t], l->o.clip_steps + 1,
                               l->o.channels, l->o.size, (const float *)clip, twin);
        }
        pthread_mutex_lock(&l->mu);
        if (rc != 0 && (s->failed_b < 0 || b < s->failed_b)) {
            s->failed_b = b;
            snprintf(s->err, sizeof s->err, "%s", rc_last_error());
        }
        s->done++;
        l->in_flight--;
        /* cv_done's waiters wait for a whole slot (rc_loader_get_batch) or
         * for the pool to drain (restart_at): waking them for every clip
         * cost the consumer B futile wake-ups a step, ~3% of a decode
         * thread on the paper preset */
        if (s->done == B || (l->pausing && l->in_flight == 0))
            pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int check_options(const rc_loader_options *o) {
    if (o->batch < 1) return rc_set_error("loader: batch must be >= 1");
    if (o->clip_steps < 1 || o->clip_steps > 1024)
        return rc_set_error("loader: clip_steps must be 1..1024");
    if (o->frame_stride < 1) return rc_set_error("loader: frame_stride >= 1");
    if (o->size < 1 || o->size > 4096) return rc_set_error("loader: size 1..4096");
    if (o->channels != 1 && o->channels != 3)
        return rc_set_error("loader: channels must be 1 or 3");
    if (o->resize != 0 && o->resize < o->size)
        return rc_set_error("loader: resize (%d) must be >= size (%d) or 0",
                            o->resize, o->size);
    if (o->ring < 1) return rc_set_error("loader: ring must be >= 1");
    if (o->n_twin_maps < 0 || o->n_twin_maps > 4)
        return rc_set_error("loader: n_twin_maps must be 0..4");
    for (int t = 0; t < o->n_twin_maps; t++)
        if (o->twin_maps[t] != RC_MAP_FLIP && o->twin_maps[t] != RC_MAP_TRANSPOSE)
            return rc_set_error("loader: twin map %d must be RC_MAP_FLIP or "
                                "RC_MAP_TRANSPOSE", t);
    if (o->threads < 0) return rc_set_error("loader: threads must be >= 0");
    if (!(o->val_fraction >= 0 && o->val_fraction < 1))
        return rc_set_error("loader: val_fraction must be in [0, 1)");
    if ((o->alloc == NULL) != (o->free == NULL))
        return rc_set_error("loader: give both alloc and free, or neither");
    return 0;
}

/* Sequences of this split long enough for a clip, with their resize. */
static int collect_sequences(rc_loader *l) {
    const rc_loader_options *o = &l->o;
    int n = rc_dataset_n_sequences(l->d);
    int span = o->clip_steps * o->frame_stride + 1;
    int R = o->resize ? o->resize : o->size;
    l->seqs = rc_xcalloc((size_t)n, sizeof *l->seqs);
    int in_split = 0;
    for (int i = 0; i < n; i++) {
        const rc_shard *sh;
        const rc_shard_sequence *q = rc_dataset_sequence(l->d, i, &sh);
        if (rc_sequence_is_validation(q->name, o->val_fraction) != o->validation)
            continue;
        in_split++;
        if ((int)q->n_records < span) continue;
        usable_seq *u = &l->seqs[l->n_seqs++];
        u->dataset_index = i;
        u->shard = sh;
        u->seq = q;
        u->n_starts = (int)q->n_records - span + 1;
        u->first_start = l->total_starts;
        l->total_starts += u->n_starts;
        l->total_frames += q->n_records;
        int sh_side = q->width < q->height ? q->width : q->height;
        u->resized_w = q->width == sh_side
                           ? R : (int)((double)q->width * R / sh_side + 0.5);
        u->resized_h = q->height == sh_side
                           ? R : (int)((double)q->height * R / sh_side + 0.5);
        if (u->resized_w < o->size) u->resized_w = o->size;
        if (u->resized_h < o->size) u->resized_h = o->size;
        u->bad_base = l->n_flags;
        l->n_flags += q->n_records;
    }
    if (l->n_seqs == 0)
        return rc_set_error(
            "no %s sequence has the %d frames a clip needs (clip_steps %d x "
            "frame_stride %d + 1): %d of %d sequences are in this split "
            "(val_fraction %.3g); pack longer sequences, lower "
            "data.clip_steps / data.frame_stride, or change data.val_fraction",
            o->validation ? "validation" : "training", span, o->clip_steps,
            o->frame_stride, in_split, n, o->val_fraction);
    return 0;
}

rc_loader *rc_loader_create(const rc_dataset *d, const rc_loader_options *o) {
#ifdef RC_HAVE_SSSE3_PATH
    static pthread_once_t masks_once = PTHREAD_ONCE_INIT;
    pthread_once(&masks_once, init_rgb_masks);
#endif
    if (check_options(o) != 0) return NULL;
    rc_loader *l = rc_xcalloc(1, sizeof *l);
    l->o = *o;
    l->d = d;
    if (!l->o.alloc) {
        l->o.alloc = rc_host_alloc;
        l->o.free = rc_host_free;
    }
    if (collect_sequences(l) != 0) {
        free(l->seqs);
        free(l);
        return NULL;
    }
    l->bad_flags = rc_xcalloc(l->n_flags ? l->n_flags : 1, sizeof(atomic_uchar));
    l->checked = rc_xcalloc(l->n_flags ? l->n_flags : 1, sizeof(atomic_uchar));
    for (uint32_t i = 0; i < l->n_flags; i++) {
        atomic_init(&l->bad_flags[i], 0);
        atomic_init(&l->checked[i], 0);
    }
    l->clip_floats = (size_t)(o->clip_steps + 1) * o->channels * o->size * o->size;
    l->batch_floats = l->clip_floats * (size_t)o->batch * (1 + o->n_twin_maps);
    l->value_bytes = o->u8 ? 1 : sizeof(float);
    l->slots = rc_xcalloc((size_t)o->ring, sizeof *l->slots);
    for (int i = 0; i < o->ring; i++) {
        l->slots[i].buf = l->o.alloc(rc_loader_batch_bytes(l), l->o.alloc_ctx);
        if (!l->slots[i].buf) {
            rc_set_error("loader: cannot allocate %zu bytes of batch buffer",
                         rc_loader_batch_bytes(l));
            rc_loader_destroy(l);
            return NULL;
        }
        l->slots[i].step = -1;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv_work, NULL);
    pthread_cond_init(&l->cv_done, NULL);
    l->n_workers = o->threads;
    if (l->n_workers == 0) l->n_workers = rc_available_cpus();
    l->workers = rc_xcalloc((size_t)l->n_workers, sizeof *l->workers);
    for (int i = 0; i < l->n_workers; i++) {
        worker *w = &l->workers[i];
        w->l = l;
        w->jpeg = rc_jpeg_decoder_new();
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            rc_set_error("loader: cannot start decode thread %d", i);
            l->n_workers = i;
            rc_loader_destroy(l);
            return NULL;
        }
    }
    return l;
}

void rc_loader_destroy(rc_loader *l) {
    if (!l) return;
    if (l->workers) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->n_workers; i++) {
            pthread_join(l->workers[i].th, NULL);
            rc_jpeg_decoder_free(l->workers[i].jpeg);
            free(l->workers[i].rows);
        }
        free(l->workers);
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_done);
    }
    for (int i = 0; l->slots && i < l->o.ring; i++)
        if (l->slots[i].buf) l->o.free(l->slots[i].buf, l->o.alloc_ctx);
    free(l->slots);
    for (int i = 0; i < l->n_bad_epoch; i++) free(l->bad_epoch[i]);
    free(l->bad_epoch);
    free(l->bad_flags);
    free(l->checked);
    free(l->seqs);
    free(l);
}

size_t rc_loader_batch_floats(const rc_loader *l) { return l->batch_floats; }
size_t rc_loader_batch_bytes(const rc_loader *l) {
    return l->batch_floats * l->value_bytes;
}

int64_t rc_loader_epoch_steps(const rc_loader *l) {
    int64_t per_step = (int64_t)l->o.batch * (l->o.clip_steps + 1);
    int64_t e = l->total_frames / per_step;
    return e > 0 ? e : 1;
}

/* Restart the pipeline at `step` (called with the lock held). */
static void restart_at(rc_loader *l, int64_t step) {
    l->pausing = 1;
    while (l->in_flight > 0) pthread_cond_wait(&l->cv_done, &l->mu);
    for (int i = 0; i < l->o.ring; i++) l->slots[i].step = -1;
    l->base = step;
    l->next_job = step * l->o.batch;
    l->pausing = 0;
    pthread_cond_broadcast(&l->cv_work);
}

const void *rc_loader_get_batch(rc_loader *l, int64_t step) {
    if (step < 0) {
        rc_set_error("loader: negative step %lld", (long long)step);
        return NULL;
    }
    pthread_mutex_lock(&l->mu);
    if (step < l->base || step >= l->base + l->o.ring) restart_at(l, step);
    ring_slot *s = &l->slots[step % l->o.ring];
    while (!(s->step == step && s->done == l->o.batch))
        pthread_cond_wait(&l->cv_done, &l->mu);
    const void *out = s->buf;
    if (s->failed_b >= 0) {
        rc_set_error("%s", s->err);
        out = NULL;
    }
    pthread_mutex_unlock(&l->mu);
    return out;
}

void rc_loader_release(rc_loader *l, int64_t step) {
    pthread_mutex_lock(&l->mu);
    if (step + 1 > l->base) l->base = step + 1;
    pthread_cond_broadcast(&l->cv_work);
    int64_t e = rc_loader_epoch_steps(l);
    int report = (step + 1) % e == 0 && l->n_bad_epoch > 0 &&
                 (step + 1) / e > l->epoch_reported;
    if (report) l->epoch_reported = (step + 1) / e;
    pthread_mutex_unlock(&l->mu);
    if (report) rc_loader_report_bad(l, stderr);
}

int rc_loader_copy_batch(rc_loader *l, int64_t step, void *out) {
    const void *b = rc_loader_get_batch(l, step);
    if (!b) return -1;
    memcpy(out, b, rc_loader_batch_bytes(l));
    rc_loader_release(l, step);
    return 0;
}

int rc_loader_bad_total(const rc_loader *l) {
    rc_loader *m = (rc_loader *)l; /* the lock is not part of the value */
    pthread_mutex_lock(&m->mu);
    int n = m->bad_total;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int rc_loader_report_bad(rc_loader *l, FILE *out) {
    pthread_mutex_lock(&l->mu);
    int n = l->n_bad_epoch;
    /* with data.on_bad = fail a bad item ends the run with its own error:
     * a summary of skipped items would describe a setting not in use */
    if (out && l->o.on_bad == RC_ON_BAD_SKIP) {
        fprintf(out, "recompose: data.on_bad = skip: %d bad item(s) this "
                     "epoch (%d in total), skipped:\n", n, l->bad_total);
        for (int i = 0; i < n; i++) fprintf(out, "  %s\n", l->bad_epoch[i]);
    }
    for (int i = 0; i < n; i++) free(l->bad_epoch[i]);
    free(l->bad_epoch);
    l->bad_epoch = NULL;
    l->n_bad_epoch = 0;
    pthread_mutex_unlock(&l->mu);
    return n;
}
