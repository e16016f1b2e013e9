/* test_viz_embed.c: `recompose embed` and `recompose neighbors`.
 *
 *  - the .npy writer: headers of 1-, 2- and 5-D arrays read back by an
 *    independent reader (and by NumPy itself when RC_PYTHON has it);
 *  - embed on synthetic clips: shape [N][D], every row equal to
 *    rc_model_embed of the independently rendered held-out clip, sidecar
 *    rows naming the clip key and true motion; --rev rows embed f_T..f_0,
 *    and each window's d(full, rev) against the margin and the median
 *    distance between windows matches a brute-force recomputation;
 *  - embed on a packed shard: sliding windows with the right frame numbers,
 *    times and crop, frames decoded and cropped as documented; --pixel-diff
 *    rows are the box averages of f_T - f_0 recomputed from the pixels;
 *  - neighbors: the k nearest rows of a brute-force search over the
 *    embeddings, in order, with their distances; contact sheets of the
 *    documented size that decode with libpng. */
#include "test_util.h"

#ifndef RC_HAVE_VIZ
int main(void) { TEST_SKIP("built without libpng (RC_HAVE_VIZ)"); }
#else
#include <jansson.h>
#include <sys/stat.h>

#include "test_viz_util.h"

#include "recompose/synth.h"
#include "recompose/viz.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif

#define N_CLIPS 20

static void check_npy_writer(const char *dir) {
    char path[512];
    float v[2 * 3 * 1 * 2 * 2];
    for (int i = 0; i < 24; i++) v[i] = (float)i * 0.5f - 3.0f;
    int64_t shapes[3][5] = {{5}, {3, 4}, {2, 3, 1, 2, 2}};
    int ndims[3] = {1, 2, 5};
    for (int s = 0; s < 3; s++) {
        snprintf(path, sizeof path, "%s/w%d.npy", dir, s);
        CHECK(rc_npy_write_f32(path, ndims[s], shapes[s], v) == 0);
        int nd = 0;
        long long sh[8];
        float *back = viz_read_npy(path, &nd, sh);
        CHECK_MSG(back != NULL, "%s does not read back", path);
        if (!back) continue;
        size_t count = 1;
        CHECK(nd == ndims[s]);
        for (int d = 0; d < nd && d < ndims[s]; d++) {
            CHECK(sh[d] == shapes[s][d]);
            count *= (size_t)sh[d];
        }
        CHECK(!memcmp(back, v, count * sizeof(float)));
        free(back);
    }
    int64_t neg[1] = {-1};
    CHECK(rc_npy_write_f32(path, 1, neg, v) == -1);
    CHECK(rc_npy_write_f32("/nonexistent-dir/x.npy", 1, shapes[0], v) == -1);
}

/* NumPy loads the files with the shapes and a value we know. */
static void check_numpy(const char *dir, const char *prefix, int D, float v) {
    const char *py = getenv("RC_PYTHON");
    if (!py || !*py) {
        printf("RC_PYTHON not set: NumPy check skipped\n");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -c \"import numpy\" 2>/dev/null", py);
    if (system(cmd) != 0) {
        printf("%s has no NumPy: check skipped\n", py);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "'%s' -c \"import numpy as np, sys; "
             "a = np.load('%s.npy'); b = np.load('%s/w1.npy'); "
             "c = np.load('%s/w0.npy'); "
             "ok = a.shape == (%d, %d) and a.dtype == np.float32 and "
             "abs(float(a[3, 2]) - %.9g) <= 1e-6 * max(1, abs(%.9g)) and "
             "b.shape == (3, 4) and float(b[2, 3]) == 2.5 and c.shape == (5,); "
             "sys.exit(0 if ok else 1)\"",
             py, prefix, dir, dir, N_CLIPS, D, (double)v, (double)v);
    CHECK_MSG(system(cmd) == 0, "numpy.load disagrees: %s", cmd);
}

static void embed_direct(rc_model *m, int T, const float *frames, int rev,
                         float *emb) {
    rc_sequence s;
    s.n_frames = T + 1;
    for (int t = 0; t <= T; t++) s.frames[t] = rev ? T - t : t;
    int clip_of = 0;
    CHECK(rc_model_embed(m, 1, T, frames, 1, &s, &clip_of, emb) == 0);
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* --rev: every item's d_full_rev is ||full - rev|| of the .npy rows, its
 * flags compare it with the margin and with the median of all pairwise
 * distances between full rows (recomputed here by brute force), and the
 * summary's fractions count those flags. */
static void check_full_vs_reversed(json_t *side, const float *emb,
                                   const float *rev, int D, double margin) {
    json_t *fr = side ? json_object_get(side, "full_vs_reversed") : NULL;
    json_t *items = side ? json_object_get(side, "items") : NULL;
    CHECK(json_is_object(fr) && json_array_size(items) == N_CLIPS);
    if (!json_is_object(fr) || json_array_size(items) != N_CLIPS) return;
    double between[N_CLIPS * (N_CLIPS - 1) / 2];
    int np = 0;
    for (int i = 0; i < N_CLIPS; i++)
        for (int j = i + 1; j < N_CLIPS; j++) {
            double s = 0;
            for (int k = 0; k < D; k++) {
                double x = (double)emb[i * D + k] - emb[j * D + k];
                s += x * x;
            }
            between[np++] = sqrt(s);
        }
    qsort(between, (size_t)np, sizeof(double), cmp_dbl);
    double median = 0.5 * (between[np / 2 - 1] + between[np / 2]); /* np even */
    CHECK(fabs(json_real_value(json_object_get(fr, "median_dist_between_windows")) -
               median) < 1e-6 * fmax(1, median));
    int beyond_both = 0;
    for (int i = 0; i < N_CLIPS; i++) {
        double s = 0;
        for (int k = 0; k < D; k++) {
            double x = (double)emb[i * D + k] - rev[i * D + k];
            s += x * x;
        }
        double d = sqrt(s);
        json_t *it = json_array_get(items, (size_t)i);
        CHECK(fabs(json_real_value(json_object_get(it, "d_full_rev")) - d) <
              1e-6 * fmax(1, d));
        CHECK(json_is_true(json_object_get(it, "beyond_margin")) == (d > margin));
        CHECK(json_is_true(json_object_get(it, "beyond_median")) == (d > median));
        beyond_both += d > margin && d > median;
    }
    json_t *all = json_object_get(fr, "all");
    CHECK(json_integer_value(json_object_get(all, "windows")) == N_CLIPS);
    CHECK(fabs(json_real_value(json_object_get(all, "beyond_both")) -
               (double)beyond_both / N_CLIPS) < 1e-12);
    CHECK(json_object_get(fr, "probe_accuracy") == NULL); /* the dropped classifier */
}

static void check_synthetic(const char *dir, rc_model *m, const rc_config *c,
                            float *emb_out) {
    char cfg[512], ckpt[512], prefix[512], path[600];
    snprintf(cfg, sizeof cfg, "%s/tiny.ini", dir);
    snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
    snprintf(prefix, sizeof prefix, "%s/emb", dir);
    const char *args[] = {"embed", cfg, "--checkpoint", ckpt, "--out", prefix,
                          "--clips", "20", "--rev", NULL};
    CHECK(viz_run(rc_embed_main, args) == 0);
    int T = c->clip_steps, S = c->image_size, D = c->embed_dim, nd = 0;
    long long sh[8];
    snprintf(path, sizeof path, "%s.npy", prefix);
    float *emb = viz_read_npy(path, &nd, sh);
    snprintf(path, sizeof path, "%s-rev.npy", prefix);
    int nd_r = 0;
    long long sh_r[8];
    float *rev = viz_read_npy(path, &nd_r, sh_r);
    CHECK(emb && rev);
    if (!emb || !rev) return;
    CHECK(nd == 2 && sh[0] == N_CLIPS && sh[1] == D);
    CHECK(nd_r == 2 && sh_r[0] == N_CLIPS && sh_r[1] == D);
    snprintf(path, sizeof path, "%s.json", prefix);
    json_error_t jerr;
    json_t *side = json_load_file(path, 0, &jerr);
    CHECK_MSG(side != NULL, "%s: %s", path, jerr.text);
    json_t *items = side ? json_object_get(side, "items") : NULL;
    CHECK(json_array_size(items) == N_CLIPS);
    CHECK(side && json_integer_value(json_object_get(side, "step")) == 7);
    check_full_vs_reversed(side, emb, rev, D, c->loss.margin);

    rc_synth_config sc;
    rc_config_synth(c, &sc);
    float *frames = malloc(sizeof(float) * (size_t)(T + 1) * S * S);
    float ref[16], ref_rev[16];
    double worst = 0;
    for (int i = 0; i < N_CLIPS; i++) {
        uint64_t key = rc_synth_clip_key(c->seed, RC_SPLIT_HELDOUT, (uint64_t)i);
        rc_motion mo;
        rc_synth_motion(&sc, key, &mo);
        rc_synth_render(&sc, &mo, 0, T + 1, frames);
        embed_direct(m, T, frames, 0, ref);
        embed_direct(m, T, frames, 1, ref_rev);
        worst = fmax(worst, rc_test_rel_err_f(emb + i * D, ref, (size_t)D));
        worst = fmax(worst, rc_test_rel_err_f(rev + i * D, ref_rev, (size_t)D));
        json_t *it = json_array_get(items, (size_t)i);
        char want[32];
        snprintf(want, sizeof want, "0x%016llx", (unsigned long long)key);
        const char *got = json_string_value(json_object_get(it, "clip_key"));
        CHECK_MSG(got && !strcmp(got, want), "row %d key %s, want %s", i,
                  got ? got : "(none)", want);
        CHECK(fabs(json_real_value(json_object_get(it, "vx")) - mo.vx) < 1e-6);
        CHECK(fabs(json_real_value(json_object_get(it, "net_dtheta")) -
                   T * mo.omega) < 1e-5);
        CHECK(json_array_size(json_object_get(it, "frames")) == (size_t)T + 1);
    }
    printf("embed vs rc_model_embed per clip: max rel err %.2e\n", worst);
    CHECK_MSG(worst < 1e-4, "embeddings differ from rc_model_embed (%.3g)",
              worst);
    memcpy(emb_out, emb, sizeof(float) * N_CLIPS * D);
    check_numpy(dir, prefix, D, emb[3 * D + 2]);
    json_decref(side);
    free(frames);
    free(emb);
    free(rev);
}

static void check_neighbors(const char *dir, const rc_config *c,
                            const float *emb) {
    char cfg[512], ckpt[512], out[512], path[600];
    snprintf(cfg, sizeof cfg, "%s/tiny.ini", dir);
    snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
    snprintf(out, sizeof out, "%s/nb", dir);
    const char *args[] = {"neighbors", cfg, "--checkpoint", ckpt, "--out", out,
                          "--clips", "20", "--k", "3", "--items", "0,7",
                          "--zoom", "1", NULL};
    CHECK(viz_run(rc_neighbors_main, args) == 0);
    snprintf(path, sizeof path, "%s/neighbors.json", out);
    json_error_t jerr;
    json_t *side = json_load_file(path, 0, &jerr);
    CHECK_MSG(side != NULL, "%s: %s", path, jerr.text);
    if (!side) return;
    json_t *queries = json_object_get(side, "queries");
    CHECK(json_array_size(queries) == 2);
    int D = c->embed_dim, qrows[2] = {0, 7};
    for (int qi = 0; qi < 2 && qi < (int)json_array_size(queries); qi++) {
        int q = qrows[qi];
        /* brute force: sort all other rows by distance */
        double d[N_CLIPS];
        int order[N_CLIPS], n = 0;
        for (int j = 0; j < N_CLIPS; j++) {
            double s = 0;
            for (int k = 0; k < D; k++) {
                double x = (double)emb[q * D + k] - emb[j * D + k];
                s += x * x;
            }
            d[j] = sqrt(s);
            if (j != q) order[n++] = j;
        }
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && d[order[b - 1]] > d[order[b]]; b--) {
                int t = order[b];
                order[b] = order[b - 1];
                order[b - 1] = t;
            }
        json_t *o = json_array_get(queries, (size_t)qi);
        json_t *nb = json_object_get(o, "neighbors");
        CHECK(json_integer_value(json_object_get(json_object_get(o, "query"),
                                                 "row")) == q);
        CHECK(json_array_size(nb) == 3);
        for (int r = 0; r < 3 && r < (int)json_array_size(nb); r++) {
            json_t *e = json_array_get(nb, (size_t)r);
            int row = (int)json_integer_value(json_object_get(e, "row"));
            double dist = json_real_value(json_object_get(e, "distance"));
            CHECK_MSG(row == order[r], "query %d neighbour %d: row %d, brute "
                      "force %d", q, r, row, order[r]);
            CHECK(fabs(dist - d[order[r]]) <= 1e-5 * fmax(1, d[order[r]]));
        }
        snprintf(path, sizeof path, "%s/query-%05d.png", out, q);
        int w, h;
        unsigned char *px = viz_read_png(path, &w, &h);
        CHECK_MSG(px != NULL, "%s does not decode", path);
        int S = c->image_size, T = c->clip_steps;
        int frames_w = 8 + 4 + (T + 2) * (S + 4);
        int text_w = rc_viz_can_draw_text() ? 380 : 0;
        CHECK(px && w == frames_w + text_w && h == 4 * (S + 4) + 4);
        /* a caption right of each row (dark text on white), when drawn */
        for (int r = 0; px && text_w && r < 4; r++) {
            int dark = 0;
            for (int y = 4 + r * (S + 4); y < 4 + r * (S + 4) + S; y++)
                for (int x = frames_w; x < w; x++)
                    dark += px[((size_t)y * w + x) * 3] < 128;
            CHECK_MSG(dark > 20, "query %d row %d: no caption (%d dark px)",
                      q, r, dark);
        }
        free(px);
    }
    json_t *p = json_object_get(side, "precision_at_k_all_clips");
    CHECK(json_is_real(p) && json_real_value(p) >= 0 && json_real_value(p) <= 1);
    json_decref(side);
}

#ifdef RC_HAVE_VIDEO
/* A raw gray shard: one sequence of 9 frames of 16x16 with frame numbers
 * 100..108; windows of T+1 = 4 frames, frame_stride 2 -> starts 0, 1, 2. */
static void check_shards(const char *dir, rc_model *m, const rc_config *c) {
    enum { NREC = 9, S = 16 };
    char shards[512], shard[600], cfg[600], ckpt[512], prefix[512], path[700];
    snprintf(shards, sizeof shards, "%s/shards", dir);
    mkdir(shards, 0777);
    snprintf(shard, sizeof shard, "%s/shard-00000.rcs", shards);
    uint8_t px[NREC][S * S];
    for (int r = 0; r < NREC; r++)
        for (int p = 0; p < S * S; p++)
            px[r][p] = (uint8_t)((p * 7 + r * 31 + (p / S) * (p % S)) % 256);
    rc_shard_writer *w = rc_shard_writer_open(shard, RC_SHARD_RAW);
    CHECK(w && rc_shard_writer_begin(w, "walk", S, S, 1) == 0);
    for (int r = 0; w && r < NREC; r++)
        CHECK(rc_shard_writer_add(w, px[r], S * S, 100 + r) == 0);
    CHECK(w && rc_shard_writer_close(w) == 0);
    snprintf(cfg, sizeof cfg, "%s/shards.ini", dir);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "%s[data]\nsource = shards\npath = %s\nframe_stride = 2\n"
               "resize = 16\n", viz_tiny_ini, shards);
    fclose(f);
    snprintf(ckpt, sizeof ckpt, "%s/tiny.safetensors", dir);
    snprintf(prefix, sizeof prefix, "%s/win", dir);
    /* a training-only term of synthetic clips (tiny.ini's pan twins) does
     * not stop the embedding of footage */
    const char *args[] = {"embed", cfg, "--checkpoint", ckpt, "--out", prefix,
                          "--fps", "10", "--set", "loss.w_full_pan=1", NULL};
    CHECK(viz_run(rc_embed_main, args) == 0);
    int nd = 0, T = c->clip_steps, D = c->embed_dim;
    long long sh[8];
    snprintf(path, sizeof path, "%s.npy", prefix);
    float *emb = viz_read_npy(path, &nd, sh);
    CHECK(emb && nd == 2 && sh[0] == 3 && sh[1] == D);
    snprintf(path, sizeof path, "%s.json", prefix);
    json_error_t jerr;
    json_t *side = json_load_file(path, 0, &jerr);
    CHECK_MSG(side != NULL, "%s: %s", path, jerr.text);
    json_t *items = side ? json_object_get(side, "items") : NULL;
    CHECK(json_array_size(items) == 3);
    float frames[4 * S * S], ref[16];
    for (int s = 0; s < 3 && emb && (int)json_array_size(items) == 3; s++) {
        json_t *it = json_array_get(items, (size_t)s);
        CHECK(!strcmp(json_string_value(json_object_get(it, "source")), "walk"));
        json_t *fr = json_object_get(it, "frames"), *tm = json_object_get(it, "times_s");
        for (int t = 0; t <= T; t++) {
            int rec = s + 2 * t;
            CHECK(json_integer_value(json_array_get(fr, (size_t)t)) == 100 + rec);
            CHECK(fabs(json_real_value(json_array_get(tm, (size_t)t)) -
                       (100 + rec) / 10.0) < 1e-9);
            for (int p = 0; p < S * S; p++)
                frames[t * S * S + p] = px[rec][p] / 255.0f;
        }
        embed_direct(m, T, frames, 0, ref);
        double e = rc_test_rel_err_f(emb + s * D, ref, (size_t)D);
        CHECK_MSG(e < 1e-4, "window %d: embedding differs (rel %.3g)", s, e);
        /* resize 16 of a 16x16 frame: the crop is the whole frame */
        json_t *crop = json_object_get(it, "crop");
        CHECK(json_array_size(crop) == 4 &&
              json_real_value(json_array_get(crop, 0)) == 0 &&
              json_real_value(json_array_get(crop, 3)) == 1);
    }
    /* --pixel-diff: rows are the box-averaged f_T - f_0, computed here from
     * the raw pixels (pixel_baseline_size 4 of 16: 4x4 boxes) */
    const char *args_px[] = {"embed", cfg, "--pixel-diff", "--out", prefix,
                             "--set", "eval.pixel_baseline_size=4", NULL};
    CHECK(viz_run(rc_embed_main, args_px) == 0);
    snprintf(path, sizeof path, "%s.npy", prefix);
    float *pd = viz_read_npy(path, &nd, sh);
    CHECK(pd && nd == 2 && sh[0] == 3 && sh[1] == 16);
    for (int s = 0; pd && s < 3; s++)
        for (int b = 0; b < 16; b++) {
            double sum = 0;
            for (int y = (b / 4) * 4; y < (b / 4) * 4 + 4; y++)
                for (int x = (b % 4) * 4; x < (b % 4) * 4 + 4; x++)
                    sum += px[s + 2 * T][y * S + x] / 255.0 - px[s][y * S + x] / 255.0;
            CHECK_MSG(fabs(pd[s * 16 + b] - sum / 16) < 1e-5, "window %d box %d: "
                      "%.6f, want %.6f", s, b, pd[s * 16 + b], sum / 16);
        }
    free(pd);
    const char *args2[] = {"embed", cfg, "--checkpoint", ckpt, "--out", prefix,
                           "--stride", "2", NULL};
    CHECK(viz_run(rc_embed_main, args2) == 0);
    free(emb);
    snprintf(path, sizeof path, "%s.npy", prefix);
    emb = viz_read_npy(path, &nd, sh);
    CHECK(emb && sh[0] == 2); /* starts 0 and 2 */
    free(emb);
    json_decref(side);
}
#endif

/* Text lands where it is asked for: dark pixels right of and below (x, y),
 * within a line's height, nowhere else. */
static void check_draw_texts(void) {
    enum { W = 240, H = 60 };
    uint8_t *rgb = malloc((size_t)W * H * 3);
    memset(rgb, 255, (size_t)W * H * 3);
    rc_text t[2] = {{10, 5, 0, "query (row 7)"}, {120, 35, 1, "distance 0.5"}};
    int drawn = rc_draw_texts(W, H, rgb, t, 2) == 0;
    CHECK(drawn == rc_viz_can_draw_text());
    int inside[2] = {0, 0}, outside = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (rgb[((size_t)y * W + x) * 3] > 160) continue;
            int k = -1;
            for (int i = 0; i < 2; i++)
                if (x >= t[i].x && x < t[i].x + 110 && y >= t[i].y &&
                    y < t[i].y + 17)
                    k = i;
            if (k < 0) outside++;
            else inside[k]++;
        }
    if (drawn) {
        CHECK_MSG(inside[0] > 30 && inside[1] > 30, "text pixels %d, %d",
                  inside[0], inside[1]);
    } else {
        CHECK(inside[0] == 0 && inside[1] == 0);
    }
    CHECK_MSG(outside == 0, "%d dark pixels outside the text boxes", outside);
    free(rgb);
}

/* training.png: the loss curve (blue) always, the validation curve
 * (orange) only when metrics.jsonl has validation losses. */
static int count_color(const unsigned char *px, int w, int h, int r, int g,
                       int b) {
    int n = 0;
    for (size_t i = 0; i < (size_t)w * h; i++)
        n += abs(px[3 * i] - r) < 40 && abs(px[3 * i + 1] - g) < 40 &&
             abs(px[3 * i + 2] - b) < 40;
    return n;
}

static void check_plot(const char *dir) {
    char metrics[512], png[512];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", dir);
    snprintf(png, sizeof png, "%s/training.png", dir);
    for (int with_val = 0; with_val < 2; with_val++) {
        FILE *f = fopen(metrics, "w");
        for (int s = 10; s <= 200; s += 10)
            fprintf(f, "{\"step\":%d,\"loss\":%g%s}\n", s, 4.0 / (1 + s / 20.0),
                    with_val && s % 50 == 0 ? ",\"val_loss\":0.9" : "");
        fprintf(f, "{\"step\":210,\"loss\":0.3"); /* a torn last line */
        fclose(f);
        remove(png);
        int rc = rc_plot_training(metrics, png, "test run");
        if (!rc_viz_can_draw_text()) {
            CHECK(rc == -1 && strstr(rc_last_error(), "cairo"));
            return;
        }
        CHECK_MSG(rc == 0, "plot: %s", rc_last_error());
        int w, h;
        unsigned char *px = viz_read_png(png, &w, &h);
        CHECK(px && w == 720 && h == 420);
        if (!px) return;
        int blue = count_color(px, w, h, 31, 89, 191);
        int orange = count_color(px, w, h, 230, 115, 13);
        CHECK_MSG(blue > 200, "loss curve: %d blue pixels", blue);
        CHECK_MSG(with_val ? orange > 100 : orange == 0,
                  "validation curve: %d orange pixels (with_val %d)", orange,
                  with_val);
        free(px);
    }
    snprintf(metrics, sizeof metrics, "%s/no-such-run/metrics.jsonl", dir);
    CHECK(rc_plot_training(metrics, png, "x") == -1 &&
          strstr(rc_last_error(), "no-such-run"));
}

int main(void) {
    char dir[256];
    check_draw_texts();
    CHECK(viz_make_tiny(dir, sizeof dir, NULL, 11, 3.0f) == 0);
    check_npy_writer(dir);
    check_plot(dir);
    rc_config c;
    rc_model *m = viz_load_tiny(dir, &c);
    CHECK(m != NULL);
    if (!m) TEST_DONE();
    float emb[N_CLIPS * 16];
    check_synthetic(dir, m, &c, emb);
    check_neighbors(dir, &c, emb);
#ifdef RC_HAVE_VIDEO
    check_shards(dir, m, &c);
#endif
    const char *bad[] = {"embed", "nonexistent.ini", "--random-init", "--out",
                         "/tmp/x", NULL};
    CHECK(viz_run(rc_embed_main, bad) == 1);
    const char *bad2[] = {"neighbors", "x.ini", "--random-init", "--out", "/tmp/x",
                          "--bogus", NULL};
    CHECK(viz_run(rc_neighbors_main, bad2) == 2);
    rc_model_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
#endif
