/* test_viz_saliency.c: `recompose saliency` on a tiny model.
 *
 * The gradient the command writes (saliency.npy) must be the gradient of
 * its target in the pixels, sum over clips of d(phi(full), phi(rev)) by
 * default and of ||phi(full)|| with --target norm: checked against central
 * finite differences of that function evaluated with rc_model_embed, both
 * on the pixels of largest gradient and along a random direction through
 * all pixels. The default target is zero without motion, so a static clip
 * must get no saliency at all (while ||phi|| still answers to it). The frames it writes must be the held-out synthetic clips, and the
 * heat-map PNGs must decode (libpng) to the documented sizes, showing the
 * frame where the map is cold. */
#include "test_util.h"

#ifndef RC_HAVE_VIZ
int main(void) { TEST_SKIP("built without libpng (RC_HAVE_VIZ)"); }
#else
#include "model_f64.h"
#include "test_viz_util.h"

#include "recompose/rng.h"
#include "recompose/synth.h"
#include "recompose/viz.h"

#define N_CLIPS 3

static int target = RC_SALIENCY_FULL_REV; /* what norm_sum evaluates */

/* The float32 gradient against a float64 difference: what is left is the
 * gradient's float32 rounding and the ReLU kinks a step crosses. Measured
 * under four OpenBLAS kernel families (Haswell, SkylakeX, Cooperlake,
 * Sandybridge): at most 7e-6. The float32 difference this replaced was off
 * by 1.0e-2 under Cooperlake's kernels. */
#define RC_SALIENCY_FD_TOL 1e-3

/* The saliency target, sum over clips of d(phi(full), phi(rev)) or of
 * ||phi(full)||, evaluated in float64 (model_f64.h) so that a central
 * difference measures the gradient, not float32 rounding. */
static double norm_sum(rc_model *m, const double *w, int T,
                       const double *frames, int D) {
    rc_sequence seqs[2 * N_CLIPS];
    int clip_of[2 * N_CLIPS];
    for (int b = 0; b < N_CLIPS; b++)
        for (int r = 0; r < 2; r++) {
            seqs[2 * b + r].n_frames = T + 1;
            for (int t = 0; t <= T; t++) seqs[2 * b + r].frames[t] = r ? T - t : t;
            clip_of[2 * b + r] = b;
        }
    double emb[2 * N_CLIPS * 16];
    rc_f64_embed(m, w, T, frames, 2 * N_CLIPS, seqs, clip_of, emb);
    double f = 0;
    for (int b = 0; b < N_CLIPS; b++) {
        const double *full = emb + 2 * b * D, *rev = full + D;
        double s = 0;
        for (int k = 0; k < D; k++) {
            double u = target == RC_SALIENCY_NORM ? full[k] : full[k] - rev[k];
            s += u * u;
        }
        f += sqrt(s);
    }
    return f;
}

/* A clip that does not move: d(full, rev) is 0 and so is its gradient,
 * exactly; ||phi|| is not. A moving clip beside it gets saliency. */
static void check_static_clip(rc_model *m, const rc_config *c) {
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    int T = c->clip_steps;
    size_t clip = (size_t)(T + 1) * sc.size * sc.size;
    float *frames = malloc(2 * clip * sizeof(float));
    float *grad = malloc(2 * clip * sizeof(float));
    rc_motion still;
    rc_synth_motion(&sc, rc_synth_clip_key(c->seed, RC_SPLIT_HELDOUT, 0), &still);
    rc_motion moving = still;
    still.vx = still.vy = still.omega = 0;
    moving.vx = 1.5f, moving.vy = -1.0f, moving.omega = 0.05f;
    rc_synth_render(&sc, &still, 0, T + 1, frames);
    rc_synth_render(&sc, &moving, 0, T + 1, frames + clip);
    rc_sequence seqs[4];
    int clip_of[4];
    for (int n = 0; n < 4; n++) {
        seqs[n].n_frames = T + 1;
        for (int t = 0; t <= T; t++) seqs[n].frames[t] = n % 2 ? T - t : t;
        clip_of[n] = n / 2;
    }
    CHECK(rc_model_saliency(m, 2, T, frames, 4, seqs, clip_of,
                            RC_SALIENCY_FULL_REV, NULL, grad) == 0);
    double still_max = 0, moving_max = 0;
    for (size_t i = 0; i < clip; i++) {
        still_max = fmax(still_max, fabs(grad[i]));
        moving_max = fmax(moving_max, fabs(grad[clip + i]));
    }
    printf("static clip: max |saliency| %.3g (moving clip %.3g)\n", still_max,
           moving_max);
    CHECK_MSG(still_max == 0, "static clip has saliency %.3g", still_max);
    CHECK_MSG(moving_max > 1e-4, "moving clip has no saliency (%.3g)", moving_max);
    /* the old target answers to the static clip */
    CHECK(rc_model_saliency(m, 2, T, frames, 2, seqs, clip_of, RC_SALIENCY_NORM,
                            NULL, grad) == 0);
    still_max = 0;
    for (size_t i = 0; i < clip; i++) still_max = fmax(still_max, fabs(grad[i]));
    CHECK_MSG(still_max > 1e-4, "||phi|| of a static clip has no gradient");
    CHECK(rc_model_saliency(m, 2, T, frames, 3, seqs, clip_of,
                            RC_SALIENCY_FULL_REV, NULL, grad) == -1); /* odd */
    free(frames);
    free(grad);
}

static void check_frames_are_heldout_clips(const rc_config *c,
                                           const float *frames, size_t clip) {
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    float *ref = malloc(clip * sizeof(float));
    for (int i = 0; i < N_CLIPS; i++) {
        rc_motion mo;
        rc_synth_motion(&sc, rc_synth_clip_key(c->seed, RC_SPLIT_HELDOUT, (uint64_t)i),
                        &mo);
        rc_synth_render(&sc, &mo, 0, c->clip_steps + 1, ref);
        CHECK_MSG(!memcmp(ref, frames + i * clip, clip * sizeof(float)),
                  "frames.npy clip %d is not held-out clip %d", i, i);
    }
    free(ref);
}

/* Central differences at the pixels of largest |gradient|. The step moves
 * one pixel by 1e-3 of its range: too small to cross many ReLU kinks, and
 * in float64 far above rounding. */
static void check_top_pixels(rc_model *m, const double *w, int T, double *x,
                             const float *g, size_t n, int D) {
    enum { TOP = 8 };
    size_t top[TOP];
    for (int k = 0; k < TOP; k++) {
        size_t best = 0;
        float bv = -1;
        for (size_t i = 0; i < n; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= top[j] == i;
            if (!taken && fabsf(g[i]) > bv) {
                bv = fabsf(g[i]);
                best = i;
            }
        }
        top[k] = best;
    }
    const double eps = 1e-3;
    double worst = 0;
    for (int k = 0; k < TOP; k++) {
        size_t i = top[k];
        double keep = x[i];
        x[i] = keep + eps;
        double fp = norm_sum(m, w, T, x, D);
        x[i] = keep - eps;
        double fm = norm_sum(m, w, T, x, D);
        x[i] = keep;
        double fd = (fp - fm) / (2 * eps);
        double rel = fabs(fd - g[i]) / fmax(fabs(fd), 1e-12);
        if (rel > worst) worst = rel;
        CHECK_MSG(rel < RC_SALIENCY_FD_TOL, "pixel %zu: gradient %.6g, finite "
                  "difference %.6g (rel err %.3g)", i, g[i], fd, rel);
    }
    printf("top-%d pixels: worst rel err %.2e\n", TOP, worst);
}

/* Directional derivative along a random direction through every pixel. */
static void check_direction(rc_model *m, const double *w, int T,
                            const double *x, const float *g, size_t n, int D) {
    rc_rng r;
    rc_rng_seed(&r, 99);
    double *v = malloc(n * sizeof(double)), *xp = malloc(n * sizeof(double));
    double gv = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = rc_rng_normal(&r);
        gv += (double)g[i] * v[i];
    }
    /* a move through every pixel at once: small, so that it crosses few
     * ReLU kinks; in float64 rounding is no limit */
    const double eps = 1e-5;
    for (size_t i = 0; i < n; i++) xp[i] = x[i] + eps * v[i];
    double fp = norm_sum(m, w, T, xp, D);
    for (size_t i = 0; i < n; i++) xp[i] = x[i] - eps * v[i];
    double fm = norm_sum(m, w, T, xp, D);
    double fd = (fp - fm) / (2 * eps);
    double rel = fabs(fd - gv) / fmax(fabs(fd), 1e-12);
    printf("random direction: <g, v> %.6g, finite difference %.6g (rel %.2e)\n",
           gv, fd, rel);
    CHECK_MSG(rel < RC_SALIENCY_FD_TOL, "directional derivative %.6g vs %.6g",
              gv, fd);
    free(v);
    free(xp);
}

static void check_images(const char *dir, const float *frames, int T, int S) {
    int zoom = 2, W = S * zoom, w, h;
    char path[1024];
    for (int t = 0; t <= T; t++) {
        snprintf(path, sizeof path, "%s/clip-00001-f%d.png", dir, t);
        unsigned char *px = viz_read_png(path, &w, &h);
        CHECK_MSG(px != NULL, "%s does not decode", path);
        if (!px) continue;
        CHECK(w == W && h == W);
        free(px);
    }
    snprintf(path, sizeof path, "%s/clip-00001-strip.png", dir);
    unsigned char *strip = viz_read_png(path, &w, &h);
    CHECK_MSG(strip != NULL, "%s does not decode", path);
    if (!strip) return;
    int band = rc_viz_can_draw_text() ? 38 : 0; /* caption above */
    CHECK(w == (T + 1) * (W + 4) - 4 && h == band + 2 * W + 4);
    int dark = 0;
    for (int y = 0; y < band; y++)
        for (int x = 0; x < w; x++) dark += strip[((size_t)y * w + x) * 3] < 128;
    CHECK_MSG(band == 0 || dark > 50, "strip caption: %d dark pixels", dark);
    /* top row of the strip: the frames themselves, gray, zoomed */
    const float *f0 = frames + (size_t)(T + 1) * S * S; /* clip 1, frame 0 */
    int bad = 0;
    for (int y = 0; y < W; y++)
        for (int x = 0; x < W; x++) {
            const unsigned char *p = strip + ((size_t)(band + y) * w + x) * 3;
            int want = (int)(f0[(y / zoom) * S + x / zoom] * 255.0f + 0.5f);
            bad += abs(p[0] - want) > 1 || p[0] != p[1] || p[1] != p[2];
        }
    CHECK_MSG(bad == 0, "%d strip pixels differ from frame 0", bad);
    free(strip);
}

/* One run of the command with target `t`, checked against finite
 * differences of that target. */
static void check_command(const char *dir, rc_model *m, const rc_config *cp,
                          int t) {
    const rc_config c = *cp;
    char cfg[512], ckpt[512], out[512];
    snprintf(cfg, sizeof cfg, "%s/tiny.ini", dir);
    snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
    snprintf(out, sizeof out, "%s/sal-%d", dir, t);
    const char *args[] = {"saliency", cfg, "--checkpoint", ckpt, "--out", out,
                          "--clips", "3", "--items", "1", "--target",
                          t == RC_SALIENCY_NORM ? "norm" : "full_rev", NULL};
    CHECK(viz_run(rc_saliency_main, args) == 0);
    target = t;
    printf("target %s:\n", t == RC_SALIENCY_NORM ? "norm" : "full_rev");
    int T = c.clip_steps, S = c.image_size, D = c.embed_dim;
    size_t clip = (size_t)(T + 1) * S * S, n = clip * N_CLIPS;
    char path[600];
    int nd_g = 0, nd_f = 0;
    long long sg[8], sf[8];
    snprintf(path, sizeof path, "%s/saliency.npy", out);
    float *g = viz_read_npy(path, &nd_g, sg);
    snprintf(path, sizeof path, "%s/frames.npy", out);
    float *x = viz_read_npy(path, &nd_f, sf);
    CHECK(g && x);
    if (!g || !x) return;
    CHECK(nd_g == 5 && sg[0] == N_CLIPS && sg[1] == T + 1 && sg[2] == 1 &&
          sg[3] == S && sg[4] == S);
    CHECK(nd_f == 5 && !memcmp(sf, sg, sizeof(long long) * 5));

    check_frames_are_heldout_clips(&c, x, clip);
    double gmax = 0;
    for (size_t i = 0; i < n; i++) gmax = fmax(gmax, fabs(g[i]));
    CHECK_MSG(gmax > 1e-4, "gradient vanishes (max %.3g)", gmax);
    double *w = rc_f64_weights(m), *xd = rc_f64_widen(x, n);
    check_top_pixels(m, w, T, xd, g, n, D);
    check_direction(m, w, T, xd, g, n, D);
    free(w);
    free(xd);
    check_images(out, x, T, S);
    free(g);
    free(x);
}

int main(void) {
    char dir[256];
    CHECK(viz_make_tiny(dir, sizeof dir, NULL, 5, 3.0f) == 0);
    char cfg[512], out[512];
    snprintf(cfg, sizeof cfg, "%s/tiny.ini", dir);
    snprintf(out, sizeof out, "%s/sal", dir);
    rc_config c;
    rc_model *m = viz_load_tiny(dir, &c);
    CHECK(m != NULL);
    if (!m) TEST_DONE();
    check_command(dir, m, &c, RC_SALIENCY_FULL_REV);
    check_command(dir, m, &c, RC_SALIENCY_NORM);
    check_static_clip(m, &c);

    /* usage errors */
    const char *bad1[] = {"saliency", cfg, "--out", out, NULL};
    CHECK(viz_run(rc_saliency_main, bad1) == 2); /* no weights named */
    const char *bad2[] = {"saliency", cfg, "--random-init", "--out", out,
                          "--zoom", "0", NULL};
    CHECK(viz_run(rc_saliency_main, bad2) == 2);
    const char *bad3[] = {"saliency", cfg, "--random-init", "--out", out,
                          "--target", "speed", NULL};
    CHECK(viz_run(rc_saliency_main, bad3) == 2);
    const char *help[] = {"saliency", "--help", NULL};
    CHECK(viz_run(rc_saliency_main, help) == 0);

    rc_model_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
#endif
