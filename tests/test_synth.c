/* test_synth.c: synthetic clips with known motion.
 *
 * The motion tests do not trust the renderer's own geometry: they move frame
 * 0 by the convention written in synth.c (content moves by +v pixels per
 * frame and turns by +omega about the window centre) with plain index
 * arithmetic or bilinear interpolation, and compare with the rendered frame. */
#include <string.h>

#include "recompose/common.h"
#include "recompose/synth.h"
#include "test_util.h"

#define N 64
static const double PI = 3.14159265358979323846;

static rc_synth_config gray_config(void) {
    rc_synth_config c = {N, 1, 3.0f, 0.1f, RC_TEXTURE_MIXED};
    return c;
}

static double mean_abs_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - b[i]);
    return s / n;
}

static void test_keys(void) {
    enum { K = 500 };
    static uint64_t train[K], held[K];
    for (int i = 0; i < K; i++) {
        train[i] = rc_synth_clip_key(42, RC_SPLIT_TRAIN, (uint64_t)i);
        held[i] = rc_synth_clip_key(42, RC_SPLIT_HELDOUT, (uint64_t)i);
        CHECK(train[i] != held[i]);
        CHECK(train[i] == rc_synth_clip_key(42, RC_SPLIT_TRAIN, (uint64_t)i));
        CHECK(train[i] != rc_synth_clip_key(43, RC_SPLIT_TRAIN, (uint64_t)i));
    }
    /* no key shared between or within splits */
    int clashes = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            clashes += train[i] == held[j];
            clashes += i < j && (train[i] == train[j] || held[i] == held[j]);
        }
    CHECK(clashes == 0);
}

static void test_motion_ranges(void) {
    rc_synth_config c = gray_config();
    double lo[3] = {1e9, 1e9, 1e9}, hi[3] = {-1e9, -1e9, -1e9};
    uint64_t prev_texture = 0;
    for (int i = 0; i < 2000; i++) {
        rc_motion m;
        rc_synth_motion(&c, rc_synth_clip_key(7, RC_SPLIT_TRAIN, (uint64_t)i), &m);
        double v[3] = {m.vx, m.vy, m.omega};
        CHECK(fabs(m.vx) <= c.max_speed && fabs(m.vy) <= c.max_speed);
        CHECK(fabs(m.omega) <= c.max_rotation);
        for (int k = 0; k < 3; k++) {
            lo[k] = fmin(lo[k], v[k]);
            hi[k] = fmax(hi[k], v[k]);
        }
        CHECK(m.texture_key != prev_texture);
        prev_texture = m.texture_key;
    }
    /* uniform over the whole range, both signs */
    CHECK(lo[0] < -0.95 * c.max_speed && hi[0] > 0.95 * c.max_speed);
    CHECK(lo[1] < -0.95 * c.max_speed && hi[1] > 0.95 * c.max_speed);
    CHECK(lo[2] < -0.95 * c.max_rotation && hi[2] > 0.95 * c.max_rotation);
}

/* Structure tensor of a frame: the texture must have gradients in every
 * direction (not stripes), or motion along an edge would be invisible. */
static void check_rich(const float *f, int n, const char *what) {
    double gxx = 0, gyy = 0, gxy = 0, mean = 0, var = 0;
    for (int y = 1; y < n - 1; y++)
        for (int x = 1; x < n - 1; x++) {
            double gx = 0.5 * (f[y * n + x + 1] - f[y * n + x - 1]);
            double gy = 0.5 * (f[(y + 1) * n + x] - f[(y - 1) * n + x]);
            gxx += gx * gx;
            gyy += gy * gy;
            gxy += gx * gy;
        }
    for (int i = 0; i < n * n; i++) mean += f[i];
    mean /= n * n;
    for (int i = 0; i < n * n; i++) var += (f[i] - mean) * (f[i] - mean);
    double sd = sqrt(var / (n * n));
    double tr = gxx + gyy, det = gxx * gyy - gxy * gxy;
    double lmin = 0.5 * tr - sqrt(fmax(0.0, 0.25 * tr * tr - det));
    double lmax = tr - lmin;
    CHECK_MSG(sd > 0.08, "%s: contrast sd %.3f too low", what, sd);
    CHECK_MSG(lmin > 0.2 * lmax, "%s: gradients one-directional (%.3g vs %.3g)", what,
              lmin, lmax);
    CHECK_MSG(tr / ((n - 2) * (n - 2)) > 1e-3, "%s: nearly flat (%.3g)", what,
              tr / ((n - 2) * (n - 2)));
}

static void test_determinism_and_range(void) {
    rc_synth_config c = gray_config();
    enum { F = 3 };
    static float a[F * N * N], b[F * N * N], d[F * N * N];
    rc_motion m, m2;
    rc_synth_motion(&c, rc_synth_clip_key(1, RC_SPLIT_TRAIN, 5), &m);
    rc_synth_motion(&c, rc_synth_clip_key(1, RC_SPLIT_TRAIN, 6), &m2);
    rc_synth_render(&c, &m, 0, F, a);
    rc_synth_render(&c, &m, 0, F, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* frames first..first+n-1 are the same frames whatever the batch */
    rc_synth_render(&c, &m, 1, 1, d);
    CHECK(memcmp(d, a + N * N, sizeof(float) * N * N) == 0);
    rc_synth_render(&c, &m2, 0, F, d);
    CHECK(mean_abs_diff(a, d, N * N) > 0.05);
    for (int i = 0; i < F * N * N; i++) CHECK(a[i] >= 0.0f && a[i] <= 1.0f);
    for (int k = 0; k < 20; k++) {
        rc_motion mk;
        rc_synth_motion(&c, rc_synth_clip_key(11, RC_SPLIT_HELDOUT, (uint64_t)k), &mk);
        rc_synth_render(&c, &mk, 0, 1, d);
        for (int i = 0; i < N * N; i++) CHECK(d[i] >= 0.0f && d[i] <= 1.0f);
        char what[32];
        snprintf(what, sizeof what, "held-out clip %d", k);
        check_rich(d, N, what);
    }
}

static void test_rgb(void) {
    rc_synth_config c = {48, 3, 2.0f, 0.05f, RC_TEXTURE_MIXED};
    int n = 48;
    static float f[3 * 48 * 48];
    rc_motion m;
    rc_synth_motion(&c, rc_synth_clip_key(3, RC_SPLIT_TRAIN, 0), &m);
    rc_synth_render(&c, &m, 0, 1, f);
    double mean[3] = {0}, cov[3][3] = {{0}};
    for (int i = 0; i < 3 * n * n; i++) CHECK(f[i] >= 0.0f && f[i] <= 1.0f);
    for (int ch = 0; ch < 3; ch++) {
        for (int i = 0; i < n * n; i++) mean[ch] += f[ch * n * n + i];
        mean[ch] /= n * n;
    }
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int i = 0; i < n * n; i++)
                cov[a][b] += (f[a * n * n + i] - mean[a]) * (f[b * n * n + i] - mean[b]);
    for (int a = 0; a < 3; a++)
        for (int b = a + 1; b < 3; b++) {
            double r = cov[a][b] / sqrt(cov[a][a] * cov[b][b]);
            /* correlated like natural colour, yet not three copies of gray */
            CHECK_MSG(r > 0.3 && r < 0.995, "channels %d,%d correlation %.3f", a, b, r);
        }
}

/* Pure translation by integer (vx, vy): frame t at (x, y) is frame 0 at
 * (x - t*vx, y - t*vy) wherever both lie in the window; for every texture
 * family. */
static void test_translation(void) {
    rc_synth_config c = gray_config();
    enum { F = 4 };
    static float f[F * N * N];
    static const int v[][2] = {{2, -1}, {-3, 0}, {0, 1}};
    for (int k = 0; k < 3 * RC_TEXTURE_FAMILIES; k++) {
        rc_motion m = {(float)v[k % 3][0], (float)v[k % 3][1], 0.0f,
                       1234 + (uint64_t)k, k / 3, 0.0f};
        rc_synth_render(&c, &m, 0, F, f);
        for (int t = 1; t < F; t++) {
            double worst = 0, moved = 0;
            int count = 0;
            for (int y = 0; y < N; y++)
                for (int x = 0; x < N; x++) {
                    int x0 = x - t * v[k % 3][0], y0 = y - t * v[k % 3][1];
                    if (x0 < 0 || x0 >= N || y0 < 0 || y0 >= N) continue;
                    double ft = f[t * N * N + y * N + x];
                    worst = fmax(worst, fabs(ft - f[y0 * N + x0]));
                    moved += fabs(ft - f[y * N + x]);
                    count++;
                }
            CHECK_MSG(worst < 1e-5, "%s v=(%d,%d) t=%d: max error %.3g",
                      rc_texture_family_names[k / 3], v[k % 3][0], v[k % 3][1],
                      t, worst);
            /* and the frame did change: the test is not vacuous */
            CHECK_MSG(moved / count > 0.02, "t=%d moved only %.4f", t, moved / count);
        }
    }
}

/* Rotation by a multiple of 90 degrees about the centre ((N-1)/2, (N-1)/2)
 * maps pixels onto pixels, so it is checked exactly. Content turns by
 * +omega per frame: the point at offset q from the centre in frame 0 is at
 * R(t*omega) q in frame t. R(90deg) (qx, qy) = (-qy, qx). */
static void test_rotation_exact(void) {
    rc_synth_config c = gray_config();
    static float f[5 * N * N];
    rc_motion m = {0.0f, 0.0f, (float)(PI / 4), 99, RC_TEXTURE_MIXED, 0.0f};
    rc_synth_render(&c, &m, 0, 5, f);
    const float *f0 = f, *f2 = f + 2 * N * N, *f4 = f + 4 * N * N;
    double w90 = 0, w180 = 0;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            /* frame 0 pixel (x, y): q = (x - c, y - c) -> (-(y - c), x - c) */
            int x90 = N - 1 - y, y90 = x;
            w90 = fmax(w90, fabs(f2[y90 * N + x90] - f0[y * N + x]));
            w180 = fmax(w180, fabs(f4[(N - 1 - y) * N + (N - 1 - x)] - f0[y * N + x]));
        }
    /* angles are float(pi/4) * t, not exactly 90 degrees: 2e-8 rad moves a
     * pixel at radius 45 by 1e-6 px */
    CHECK_MSG(w90 < 1e-4, "90 degrees: max error %.3g", w90);
    CHECK_MSG(w180 < 1e-4, "180 degrees: max error %.3g", w180);
    CHECK(mean_abs_diff(f0, f2, N * N) > 0.03);
}

/* A window turning by roll per frame about its centre: with the texture at
 * rest (v = 0, omega = 0) frame t is frame 0 turned by -t*roll, and a roll
 * of pi/4 turns frame 2 by exactly -90 degrees: the point at offset q in
 * frame 0 is at R(-90deg) q = (qy, -qx). With a translation, a window
 * turning with the content (omega = roll) shows the texture unturned,
 * moving along R(-t*roll) t*v: a window turned by +90 degrees sees content
 * that moves right on the canvas move up. */
static void test_roll_exact(void) {
    rc_synth_config c = gray_config();
    static float f[3 * N * N], g[3 * N * N];
    rc_motion m = {0.0f, 0.0f, 0.0f, 99, RC_TEXTURE_MIXED, (float)(PI / 4)};
    rc_synth_render(&c, &m, 0, 3, f);
    double w = 0;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            int xr = y, yr = N - 1 - x; /* (qx, qy) -> (qy, -qx) */
            w = fmax(w, fabs(f[2 * N * N + yr * N + xr] - f[y * N + x]));
        }
    CHECK_MSG(w < 1e-4, "roll pi/4, frame 2: max error %.3g", w);
    /* omega = roll = pi/2, v = (2, 0): frame 1 is frame 0 shifted by
     * R(-pi/2) (2, 0) = (0, -2), i.e. 2 px up, unturned */
    rc_motion t = {2.0f, 0.0f, (float)(PI / 2), 99, RC_TEXTURE_MIXED, (float)(PI / 2)};
    rc_synth_render(&c, &t, 0, 2, g);
    double worst = 0, moved = 0;
    for (int y = 0; y + 2 < N; y++)
        for (int x = 0; x < N; x++) {
            worst = fmax(worst, fabs(g[N * N + y * N + x] - g[(y + 2) * N + x]));
            moved = fmax(moved, fabs(g[N * N + y * N + x] - g[y * N + x]));
        }
    CHECK_MSG(worst < 1e-4, "roll with translation: max error %.3g", worst);
    CHECK(moved > 0.05);
}

static double bilinear(const float *f, double x, double y) {
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double ax = x - x0, ay = y - y0;
    const float *p = f + y0 * N + x0;
    return (1 - ay) * ((1 - ax) * p[0] + ax * p[1]) + ay * ((1 - ax) * p[N] + ax * p[N + 1]);
}

/* Worst discrete |f_xx| + |f_yy| over the 4x4 pixels around a cell. */
static double curvature_near(const float *f, int x0, int y0) {
    double worst = 0;
    for (int y = y0 - 1; y <= y0 + 2; y++)
        for (int x = x0 - 1; x <= x0 + 2; x++) {
            if (x < 1 || y < 1 || x > N - 2 || y > N - 2) continue;
            double fxx = f[y * N + x + 1] - 2 * f[y * N + x] + f[y * N + x - 1];
            double fyy = f[(y + 1) * N + x] - 2 * f[y * N + x] + f[(y - 1) * N + x];
            worst = fmax(worst, fabs(fxx) + fabs(fyy));
        }
    return worst;
}

/* Mean |frame t - frame 0 turned by angle| over the central disc, where
 * frame 0 is read by bilinear interpolation; *bound is the mean of the
 * bilinear interpolation error bound (|f_xx| + |f_yy|) / 8 (unit grid),
 * with the curvature estimated by second differences near each sample. */
static double rotation_error(const float *f0, const float *ft, double angle,
                             double *bound, double *p99_ratio) {
    double ctr = 0.5 * (N - 1), r = 0.5 * N - 3, sum = 0, bsum = 0;
    double cs = cos(angle), sn = sin(angle);
    int count = 0, over = 0;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            double qx = x - ctr, qy = y - ctr;
            if (qx * qx + qy * qy > r * r) continue;
            /* frame t at q shows what frame 0 showed at R(-angle) q */
            double sx = ctr + cs * qx + sn * qy, sy = ctr - sn * qx + cs * qy;
            double e = fabs(ft[y * N + x] - bilinear(f0, sx, sy));
            double b = curvature_near(f0, (int)floor(sx), (int)floor(sy)) / 8;
            sum += e;
            bsum += b;
            over += e > 2 * b + 2e-3;
            count++;
        }
    *bound = bsum / count;
    *p99_ratio = (double)over / count;
    return sum / count;
}

static void test_rotation_interpolated(void) {
    rc_synth_config c = gray_config();
    static float f[4 * N * N];
    static const float omegas[] = {0.05f, -0.08f, 0.3f};
    for (int k = 0; k < 3; k++) {
        rc_motion m = {0.0f, 0.0f, omegas[k], 555 + (uint64_t)k, RC_TEXTURE_MIXED,
                       0.0f};
        rc_synth_render(&c, &m, 0, 4, f);
        for (int t = 1; t < 4; t += 2) {
            double angle = t * (double)omegas[k], bound, over, b2, o2;
            const float *ft = f + t * N * N;
            double err = rotation_error(f, ft, angle, &bound, &over);
            double wrong_sign = rotation_error(f, ft, -angle, &b2, &o2);
            double still = rotation_error(f, ft, 0.0, &b2, &o2);
            printf("rotation %.2f rad: mean error %.4f (bilinear bound %.4f, "
                   "%.2f%% beyond 2x), turned the wrong way %.4f, unturned %.4f\n",
                   angle, err, bound, 100 * over, wrong_sign, still);
            CHECK_MSG(err <= bound, "omega %.2f t %d: mean error %.4f above bound %.4f",
                      omegas[k], t, err, bound);
            CHECK_MSG(over < 0.01, "omega %.2f t %d: %.2f%% of pixels beyond 2x bound",
                      omegas[k], t, 100 * over);
            CHECK(err < 0.25 * wrong_sign && err < 0.25 * still);
        }
    }
}

/* The families: rich images both, different statistics (the shapes family
 * has flat regions: more pixels with almost no horizontal gradient), and a
 * re-textured clip keeps its motion on a new texture. */
static double flat_share(const float *f, int n) {
    int flat = 0;
    for (int y = 0; y < n; y++)
        for (int x = 0; x + 1 < n; x++) flat += fabs(f[y * n + x + 1] - f[y * n + x]) < 0.005;
    return (double)flat / (n * (n - 1));
}

static void test_texture_families(void) {
    rc_synth_config c = gray_config();
    static float a[N * N], b[N * N], d[N * N];
    double grad[RC_TEXTURE_FAMILIES] = {0};
    for (int k = 0; k < 20; k++) {
        rc_motion m, t;
        rc_synth_motion(&c, rc_synth_clip_key(4, RC_SPLIT_HELDOUT, (uint64_t)k), &m);
        CHECK(m.texture_family == RC_TEXTURE_MIXED);
        rc_synth_retexture(&m, 1, RC_TEXTURE_SHAPES, &t);
        CHECK(t.vx == m.vx && t.vy == m.vy && t.omega == m.omega);
        CHECK(t.texture_key != m.texture_key && t.texture_family == RC_TEXTURE_SHAPES);
        rc_synth_render(&c, &m, 0, 1, a);
        rc_synth_render(&c, &t, 0, 1, b);
        CHECK_MSG(mean_abs_diff(a, b, N * N) > 0.05, "clip %d: twin looks the same", k);
        check_rich(b, N, "shapes family");
        grad[0] += flat_share(a, N) / 20;
        grad[1] += flat_share(b, N) / 20;
        /* salt picks the texture; the family alone does too */
        rc_motion t2;
        rc_synth_retexture(&m, 2, RC_TEXTURE_SHAPES, &t2);
        rc_synth_render(&c, &t2, 0, 1, d);
        CHECK(mean_abs_diff(b, d, N * N) > 0.05);
    }
    printf("share of flat pixels: mixed %.3f, shapes %.3f\n", grad[0], grad[1]);
    CHECK_MSG(grad[1] > 1.5 * grad[0], "families alike: %.3f vs %.3f", grad[1], grad[0]);
}

static void test_timing(void) {
    rc_synth_config c = gray_config();
    enum { F = 80 };
    static float f[F * N * N];
    rc_motion m;
    rc_synth_motion(&c, rc_synth_clip_key(5, RC_SPLIT_TRAIN, 1), &m);
    double t0 = rc_now();
    for (int b = 0; b < 16; b++) rc_synth_render(&c, &m, 0, 5, f + b * 5 * N * N);
    double gray = (rc_now() - t0) / F * 1e3;
    rc_synth_config rgb = {128, 3, 3.0f, 0.1f, RC_TEXTURE_MIXED};
    static float g[3 * 128 * 128 * 6];
    t0 = rc_now();
    rc_synth_render(&rgb, &m, 0, 6, g);
    double color = (rc_now() - t0) / 6 * 1e3;
    printf("render: %.3f ms per 64x64 gray frame, %.3f ms per 128x128 RGB frame\n", gray,
           color);
}

int main(void) {
    double t0 = rc_now();
    test_keys();
    test_motion_ranges();
    test_determinism_and_range();
    test_rgb();
    test_translation();
    test_rotation_exact();
    test_rotation_interpolated();
    test_roll_exact();
    test_texture_families();
    test_timing();
    printf("test_synth: %.2f s\n", rc_now() - t0);
    TEST_DONE();
}
