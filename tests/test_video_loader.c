/* test_video_loader: batches are a pure function of (seed, step): bitwise
 * the same with 1 or 4 decode threads, any ring depth and any request
 * order; their content is the drawn crop/flip of the frames written
 * (exact for raw records at scale 1, within codec error for JPEG with
 * DCT-domain downscaling); the split is by sequence. */
#include "test_util.h"
#include "test_video_util.h"

#ifndef RC_HAVE_VIDEO
int main(void) { TEST_SKIP("built without video input (RC_HAVE_VIDEO)"); }
#else

enum { B = 3, T = 3, STRIDE = 2, S = 24 };

static void pack_dir(const char *src, const char *out, int encoding,
                     int channels, int segment) {
    rc_source_list l = {0};
    CHECK_MSG(rc_sources_add(&l, src) == 0, "%s", rc_last_error());
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.encoding = encoding;
    o.channels = channels;
    o.segment_frames = segment;
    o.quality = 95;
    o.progress = 0;
    CHECK_MSG(rc_pack(&l, out, &o, NULL) == 0, "%s", rc_last_error());
    rc_sources_free(&l);
}

static rc_loader_options base_options(void) {
    rc_loader_options o;
    rc_loader_options_default(&o);
    o.batch = B;
    o.clip_steps = T;
    o.frame_stride = STRIDE;
    o.size = S;
    o.channels = 3;
    o.resize = 30;        /* = the frames' short side: scale 1 */
    o.seed = 1234;
    o.val_fraction = 0;
    return o;
}

static float *batches(const rc_dataset *d, rc_loader_options o, int threads,
                      int ring, const int *steps, int n) {
    o.threads = threads;
    o.ring = ring;
    rc_loader *l = rc_loader_create(d, &o);
    CHECK_MSG(l != NULL, "%s", rc_last_error());
    if (!l) return NULL;
    size_t nf = rc_loader_batch_floats(l);
    float *out = malloc(nf * sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++)
        CHECK(rc_loader_copy_batch(l, steps[i], out + nf * (size_t)i) == 0);
    rc_loader_destroy(l);
    return out;
}

static void test_determinism(const rc_dataset *d) {
    int seq[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int shuffled[8] = {5, 2, 7, 0, 1, 6, 3, 4};
    rc_loader_options o = base_options();
    size_t nf = (size_t)B * (T + 1) * 3 * S * S;
    float *a = batches(d, o, 1, 1, seq, 8);
    float *b = batches(d, o, 4, 3, seq, 8);
    float *c = batches(d, o, 2, 8, shuffled, 8);
    if (!a || !b || !c) return;
    CHECK_MSG(memcmp(a, b, nf * 8 * sizeof(float)) == 0,
              "1 thread/ring 1 and 4 threads/ring 3 differ");
    for (int i = 0; i < 8; i++)
        CHECK_MSG(memcmp(a + nf * (size_t)shuffled[i], c + nf * (size_t)i,
                         nf * sizeof(float)) == 0,
                  "step %d differs when requested out of order", shuffled[i]);
    /* another seed gives other batches */
    o.seed = 99;
    float *e = batches(d, o, 2, 2, seq, 1);
    CHECK(e && memcmp(a, e, nf * sizeof(float)) != 0);
    free(a);
    free(b);
    free(c);
    free(e);
}

/* Symmetry twins: the batch grows by B clips per map, the first B clips
 * are the batch without twins bit for bit (over several threads), and twin
 * clip B*(1+t) + b is clip b mirrored or transposed, pixel for pixel. */
static void test_twin_maps(const rc_dataset *d) {
    int seq[3] = {0, 1, 2};
    rc_loader_options o = base_options();
    size_t clip = (size_t)(T + 1) * 3 * S * S, nf = (size_t)B * clip;
    float *plain = batches(d, o, 2, 2, seq, 3);
    o.n_twin_maps = 2;
    o.twin_maps[0] = RC_MAP_TRANSPOSE;
    o.twin_maps[1] = RC_MAP_FLIP;
    float *tw = batches(d, o, 3, 2, seq, 3);
    if (!plain || !tw) return;
    for (int i = 0; i < 3; i++) {
        const float *p = plain + nf * i, *w = tw + 3 * nf * i;
        CHECK_MSG(memcmp(p, w, nf * sizeof(float)) == 0,
                  "step %d: the clips change when twins are added", i);
        for (int b = 0; b < B; b++) {
            const float *x = w + clip * b, *tr = w + clip * (B + b),
                        *fl = w + clip * (2 * B + b);
            for (int f = 0; f < (T + 1) * 3; f++)
                for (int y = 0; y < S; y++)
                    for (int xx = 0; xx < S; xx++) {
                        size_t at = (size_t)f * S * S;
                        float v = x[at + (size_t)y * S + xx];
                        CHECK(tr[at + (size_t)xx * S + y] == v);
                        CHECK(fl[at + (size_t)y * S + (S - 1 - xx)] == v);
                    }
        }
    }
    o.twin_maps[1] = RC_MAP_NONE; /* not a symmetry: refused */
    CHECK(rc_loader_create(d, &o) == NULL);
    CHECK(strstr(rc_last_error(), "twin map 1") != NULL);
    free(plain);
    free(tw);
}

/* Bytes (u8) against floats from the same draws: where the frame is only
 * cropped (and flipped, and twinned) they are the same pixels exactly,
 * byte * (1/255) == float; where it is resampled the byte is the filtered
 * value rounded, within half a level of the float. */
static void test_bytes(const rc_dataset *d) {
    int seq[3] = {0, 1, 2};
    for (int resample = 0; resample <= 1; resample++) {
        rc_loader_options o = base_options();
        if (resample) o.resize = 37; /* 40x30 -> 49x37: filtered */
        o.n_twin_maps = 2;
        o.twin_maps[0] = RC_MAP_TRANSPOSE;
        o.twin_maps[1] = RC_MAP_FLIP;
        float *f = batches(d, o, 2, 2, seq, 3);
        o.u8 = 1;
        o.threads = 3;
        o.ring = 2;
        rc_loader *l = rc_loader_create(d, &o);
        CHECK_MSG(l != NULL, "%s", rc_last_error());
        if (!l || !f) return;
        size_t nf = rc_loader_batch_floats(l);
        CHECK(rc_loader_batch_bytes(l) == nf);
        unsigned char *u = malloc(nf);
        size_t off = 0, worst = 0;
        double worst_err = 0;
        for (int i = 0; i < 3; i++) {
            CHECK(rc_loader_copy_batch(l, seq[i], u) == 0);
            const float *fi = f + nf * (size_t)i;
            for (size_t k = 0; k < nf; k++) {
                float v = (float)u[k] * (1.0f / 255.0f);
                double e = fabs((double)v - fi[k]);
                if (e > worst_err) worst_err = e, worst = k;
                off += resample ? e > 0.5 / 255 + 1e-6 : v != fi[k];
            }
        }
        CHECK_MSG(off == 0, "%s: %zu bytes off the floats (worst %.3g at %zu)",
                  resample ? "resampled" : "cropped", off, worst_err, worst);
        printf("bytes vs floats, %s: worst %.3g\n", resample ? "resampled" : "cropped",
               worst_err);
        rc_loader_destroy(l);
        free(u);
        free(f);
    }
}

/* Frame number of record `start` of dataset sequence i. */
static int first_number(const rc_dataset *d, int i) {
    const rc_shard *sh;
    const rc_shard_sequence *q = rc_dataset_sequence(d, i, &sh);
    return (int)rc_shard_get_record(sh, q->first_record)->frame_number;
}

static void test_content_raw(const rc_dataset *d, int channels) {
    rc_loader_options o = base_options();
    o.channels = channels;
    o.threads = 2;
    rc_loader *l = rc_loader_create(d, &o);
    CHECK(l != NULL);
    if (!l) return;
    int flips = 0, wrong = 0;
    for (int step = 0; step < 6; step++) {
        const float *x = rc_loader_get_batch(l, step);
        CHECK(x != NULL);
        if (!x) break;
        for (int b = 0; b < B; b++) {
            rc_clip_draw dr;
            rc_loader_draw(l, step, b, 0, &dr);
            flips += dr.flip;
            CHECK(dr.resized_w == 40 && dr.resized_h == 30);
            int f0 = first_number(d, dr.sequence) + dr.start;
            for (int t = 0; t <= T; t++)
                for (int c = 0; c < channels; c++)
                    for (int y = 0; y < S; y++)
                        for (int xo = 0; xo < S; xo++) {
                            int sx = dr.crop_x + (dr.flip ? S - 1 - xo : xo);
                            int sy = dr.crop_y + y, f = f0 + t * STRIDE;
                            int p;
                            if (channels == 3) {
                                p = tv_pixel(f, sx, sy, c);
                            } else {
                                p = (19595 * tv_pixel(f, sx, sy, 0) +
                                     38470 * tv_pixel(f, sx, sy, 1) +
                                     7471 * tv_pixel(f, sx, sy, 2) + 32768) >> 16;
                            }
                            float want = (float)p * (1.0f / 255.0f);
                            float got = x[((((size_t)b * (T + 1) + t) * channels +
                                           c) * S + y) * S + xo];
                            wrong += got != want;
                        }
        }
        rc_loader_release(l, step);
    }
    CHECK_MSG(wrong == 0, "%d values differ from the drawn crop of the "
              "frames written (channels %d)", wrong, channels);
    CHECK_MSG(flips > 0 && flips < 6 * B, "flip drawn %d of %d times", flips,
              6 * B);
    rc_loader_destroy(l);
}

static void test_jpeg_dct_scaled(const char *root) {
    char src[600], out[600];
    snprintf(src, sizeof src, "%s/big", root);
    snprintf(out, sizeof out, "%s/big_shards", root);
    CHECK(tv_write_folder(src, 0, 8, 64, 48, 0) == 0);
    pack_dir(src, out, RC_SHARD_JPEG, 3, 0);
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK(d != NULL);
    if (!d) return;
    rc_loader_options o = base_options();
    o.size = 16;
    o.resize = 24;   /* 64x48 -> 32x24: decoded at DCT scale 1/2 */
    o.clip_steps = 2;
    o.frame_stride = 1;
    rc_loader *l = rc_loader_create(d, &o);
    CHECK(l != NULL);
    if (!l) return;
    const float *x = rc_loader_get_batch(l, 0);
    CHECK(x != NULL);
    double err = 0;
    int n = 0;
    for (int b = 0; x && b < B; b++) {
        rc_clip_draw dr;
        rc_loader_draw(l, 0, b, 0, &dr);
        CHECK(dr.resized_w == 32 && dr.resized_h == 24);
        for (int t = 0; t <= 2; t++) {
            rc_image ref = tv_frame(dr.start + t, 64, 48, 3), small;
            CHECK(rc_image_resize(&ref, 32, 24, 3, &small) == 0);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 16; y++)
                    for (int xo = 0; xo < 16; xo++) {
                        int sx = dr.crop_x + (dr.flip ? 15 - xo : xo);
                        float want = small.pixels[((dr.crop_y + y) * 32 + sx) * 3 + c] / 255.0f;
                        float got = x[((((size_t)b * 3 + t) * 3 + c) * 16 + y) * 16 + xo];
                        err += fabs(got - want);
                        n++;
                    }
            rc_image_free(&small);
            free(ref.pixels);
        }
    }
    CHECK_MSG(n > 0 && err / n < 0.02, "DCT-scaled clip mean abs error %.4f",
              n ? err / n : 0.0);
    rc_loader_release(l, 0);
    rc_loader_destroy(l);
    rc_dataset_close(d);
}

static void test_split(const char *root) {
    char out[600], src[600];
    snprintf(src, sizeof src, "%s/frames", root);
    snprintf(out, sizeof out, "%s/segments", root);
    pack_dir(src, out, RC_SHARD_RAW, 3, 8); /* 20+12 frames -> 3+2 segments */
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK(d && rc_dataset_n_sequences(d) == 5);
    if (!d) return;
    /* the split is a function of the name alone */
    int val = 0;
    for (int i = 0; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof name, "video%d.avi", i);
        int v = rc_sequence_is_validation(name, 0.3);
        CHECK(v == rc_sequence_is_validation(name, 0.3));
        CHECK(!v || rc_sequence_is_validation(name, 0.5)); /* nested */
        val += v;
    }
    CHECK_MSG(val > 240 && val < 360, "%d of 1000 in validation at 0.3", val);
    /* train and validation loaders draw from disjoint sequence sets */
    rc_loader_options o = base_options();
    o.clip_steps = 2;
    o.frame_stride = 1;
    o.val_fraction = 0.5;
    int n_val = 0;
    for (int i = 0; i < 5; i++)
        n_val += rc_sequence_is_validation(rc_dataset_sequence(d, i, NULL)->name, 0.5);
    for (int split = 0; split < 2; split++) {
        o.validation = split;
        rc_loader *l = rc_loader_create(d, &o);
        if ((split && n_val == 0) || (!split && n_val == 5)) {
            CHECK(l == NULL);
            continue;
        }
        CHECK_MSG(l != NULL, "%s", rc_last_error());
        for (int step = 0; l && step < 20; step++)
            for (int b = 0; b < B; b++) {
                rc_clip_draw dr;
                rc_loader_draw(l, step, b, 0, &dr);
                const char *name = rc_dataset_sequence(d, dr.sequence, NULL)->name;
                CHECK(rc_sequence_is_validation(name, 0.5) == split);
            }
        rc_loader_destroy(l);
    }
    rc_dataset_close(d);
}

int main(void) {
    char *root = tv_tmpdir();
    char src[600], a[600], b[600], out[600];
    snprintf(src, sizeof src, "%s/frames", root);
    snprintf(a, sizeof a, "%s/frames/a", root);
    snprintf(b, sizeof b, "%s/frames/b", root);
    snprintf(out, sizeof out, "%s/shards", root);
    CHECK(tv_write_folder(a, 0, 20, 40, 30, 1) == 0);
    CHECK(tv_write_folder(b, 100, 12, 40, 30, 1) == 0);
    pack_dir(src, out, RC_SHARD_RAW, 3, 0);
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK_MSG(d != NULL, "%s", rc_last_error());
    if (d) {
        test_determinism(d);
        test_twin_maps(d);
        test_bytes(d);
        test_content_raw(d, 3);
        test_content_raw(d, 1);
        rc_dataset_close(d);
    }
    test_jpeg_dct_scaled(root);
    test_split(root);
    tv_rmrf(root);
    free(root);
    TEST_DONE();
}
#endif
