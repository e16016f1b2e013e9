/* bench_loader: frames/s of the clip loader on packed shards, per decode
 * thread and for the whole pool, beside raw TurboJPEG decoding of the same
 * JPEG records in the same run, a Python/PIL loop when available, and the
 * frame rate the paper preset would consume on one H100.
 *
 * Each loader figure twice: floats (the CPU backend's input) and bytes
 * (u8, what a device backend takes: converted on the device), and the
 * decode cores a GPU at the paper preset's step rate would need.
 *
 * usage: bench_loader SHARD_DIR [--seconds X] [--threads N] [--rounds R]
 *                     [--preset tiny|paper] [--gpu-tuples T]
 * (pack vtest first: tools/fetch-footage.sh; results: bench/RESULTS.md) */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/video.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

/* The Python of the PIL baseline: Debian's, like every tool of the project
 * (python3 first on PATH may be another one, without PIL). */
#ifndef RC_BENCH_PYTHON
#define RC_BENCH_PYTHON "/usr/bin/python3"
#endif

typedef struct {
    const char *name;
    int size, channels, resize, clip_steps, batch;
} preset;

#define MAX_ROUNDS 15

/* rc_median of a copy: the rounds are printed in their order afterwards */
static double median(const double *v, int n) {
    double s[MAX_ROUNDS];
    memcpy(s, v, sizeof(double) * (size_t)n);
    return rc_median(s, (size_t)n);
}

static const preset presets[] = {
    {"tiny  (64x64 gray, resize 80, T=4, B=16)", 64, 1, 80, 4, 16},
    {"paper (128x128 RGB, resize 128, T=5, B=64)", 128, 3, 128, 5, 64},
};

/* Raw TurboJPEG: decode every record of the dataset in a loop for `secs`
 * (one thread), at the DCT scale the loader would use (min_w/min_h) or at
 * full size (0, 0). No CRC, no resampling, no float conversion. */
static double raw_decode_fps(const rc_dataset *d, int channels, int resize,
                             int full, double secs) {
    tjhandle h = tjInitDecompress();
    uint8_t *buf = rc_xmalloc((size_t)4096 * 4096 * 3);
    long frames = 0;
    double t0 = rc_now();
    while (rc_now() - t0 < secs) {
        for (int i = 0; i < rc_dataset_n_sequences(d); i++) {
            const rc_shard *sh;
            const rc_shard_sequence *q = rc_dataset_sequence(d, i, &sh);
            int short_side = q->width < q->height ? q->width : q->height;
            int mw = (int)((double)q->width * resize / short_side + 0.5);
            int mh = (int)((double)q->height * resize / short_side + 0.5);
            int n = 0;
            tjscalingfactor *sf = tjGetScalingFactors(&n);
            int sw = q->width, shh = q->height;
            for (int k = 0; !full && k < n; k++) {
                if (sf[k].num > sf[k].denom) continue;
                int cw = TJSCALED(q->width, sf[k]), ch = TJSCALED(q->height, sf[k]);
                if (cw >= mw && ch >= mh && cw * ch < sw * shh) {
                    sw = cw;
                    shh = ch;
                }
            }
            for (uint32_t r = 0; r < q->n_records; r++) {
                const rc_shard_record *rec =
                    rc_shard_get_record(sh, q->first_record + r);
                const uint8_t *p;
                size_t len;
                if (rc_shard_payload(sh, q->first_record + r, &p, &len) != 0)
                    continue;
                (void)rec;
                tjDecompress2(h, p, (unsigned long)len, buf, sw, 0, shh,
                              channels == 1 ? TJPF_GRAY : TJPF_RGB, 0);
                frames++;
            }
        }
    }
    double fps = frames / (rc_now() - t0);
    free(buf);
    tjDestroy(h);
    return fps;
}

static double loader_fps(const rc_dataset *d, const preset *p, int threads,
                         int u8, double secs) {
    rc_loader_options o;
    rc_loader_options_default(&o);
    o.threads = threads;
    o.u8 = u8;
    o.batch = p->batch;
    o.clip_steps = p->clip_steps;
    o.size = p->size;
    o.channels = p->channels;
    o.resize = p->resize;
    o.val_fraction = 0;
    o.ring = 4;
    rc_loader *l = rc_loader_create(d, &o);
    if (!l) {
        fprintf(stderr, "bench_loader: %s\n", rc_last_error());
        exit(1);
    }
    /* warm up: threads started, every ring buffer touched once (page
     * faults are a start-up cost, not a per-frame one), then time */
    int64_t step = 0;
    for (; step <= o.ring; step++) {
        if (!rc_loader_get_batch(l, step)) {
            fprintf(stderr, "bench_loader: %s\n", rc_last_error());
            exit(1);
        }
        rc_loader_release(l, step);
    }
    int64_t first = step;
    double t0 = rc_now();
    while (rc_now() - t0 < secs) {
        if (!rc_loader_get_batch(l, step)) {
            fprintf(stderr, "bench_loader: %s\n", rc_last_error());
            exit(1);
        }
        rc_loader_release(l, step);
        step++;
    }
    double dt = rc_now() - t0;
    double fps = (double)(step - first) * p->batch * (p->clip_steps + 1) / dt;
    rc_loader_destroy(l);
    return fps;
}

static void pil_loop(const char *dir, const preset *p, double secs) {
    if (system(RC_BENCH_PYTHON " -c 'import PIL' >/dev/null 2>&1") != 0) {
        printf("  Python + PIL loop:            (" RC_BENCH_PYTHON " with PIL not available)\n");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             RC_BENCH_PYTHON " bench/bench_pil.py '%s' %d %d %d %.1f", dir, p->size,
             p->channels, p->resize, secs);
    FILE *f = popen(cmd, "r");
    char line[256];
    double fps = 0;
    char note[200] = "";
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "fps %lf", &fps) == 1 && strchr(line, '('))
            snprintf(note, sizeof note, " %s", strchr(line, '('));
    if (f) pclose(f);
    if (fps > 0)
        printf("  Python + PIL loop, 1 thread:  %9.0f frames/s%s", fps,
               note[0] ? note : "\n");
    else
        printf("  Python + PIL loop:            (failed; run it by hand: %s)\n",
               cmd);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        fprintf(stderr, "usage: bench_loader SHARD_DIR [--seconds X] "
                        "[--threads N] [--rounds R] [--preset tiny|paper] "
                        "[--gpu-tuples T (bench_cuda's train_paper tuples/s)]\n");
        return 2;
    }
    double secs = 1.0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int pool = (int)(cores > 0 ? cores : 1);
    double gpu_tuples = 0;
    int rounds = 5;
    const char *only = NULL;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) pool = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--gpu-tuples")) gpu_tuples = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--preset")) only = argv[i + 1];
        else {
            fprintf(stderr, "bench_loader: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "bench_loader: --rounds must be 1..%d\n", MAX_ROUNDS);
        return 2;
    }
    if (only && strcmp(only, "tiny") != 0 && strcmp(only, "paper") != 0) {
        fprintf(stderr, "bench_loader: --preset is tiny or paper, not %s\n", only);
        return 2;
    }
    rc_dataset *d = rc_dataset_open(argv[1], RC_ON_BAD_FAIL);
    if (!d) {
        fprintf(stderr, "bench_loader: %s\n", rc_last_error());
        return 1;
    }
    const rc_shard *sh;
    const rc_shard_sequence *q0 = rc_dataset_sequence(d, 0, &sh);
    if (rc_shard_encoding(sh) != RC_SHARD_JPEG) {
        fprintf(stderr, "bench_loader: the shards must hold JPEG records\n");
        return 1;
    }
    printf("shards: %s (%d sequences, frames %dx%dx%d JPEG)\n", argv[1],
           rc_dataset_n_sequences(d), q0->width, q0->height, q0->channels);
    printf("cores: %ld, pool threads: %d, %.1f s per measurement, one-thread "
           "comparison in %d interleaved rounds\n\n", cores, pool, secs, rounds);
    double paper_u8_per_thread = 0;
    for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++) {
        const preset *p = &presets[k];
        if (only && strncmp(p->name, only, strlen(only)) != 0) continue;
        printf("%s\n", p->name);
        /* one decode thread against raw TurboJPEG (full size and at the
         * loader's scale), in interleaved rounds: this VM's decode rate drifts by 20% within a
         * minute, so a ratio of two measurements taken a minute apart says
         * more about the drift than the loader; each round's ratio pairs
         * measurements seconds apart, and the median of rounds is printed */
        double full_r[MAX_ROUNDS], raw_r[MAX_ROUNDS], one_r[MAX_ROUNDS];
        double one8_r[MAX_ROUNDS], ratio_r[MAX_ROUNDS], ratio8_r[MAX_ROUNDS];
        double full_ratio_r[MAX_ROUNDS], full_ratio8_r[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++) {
            full_r[r] = raw_decode_fps(d, p->channels, p->resize, 1, secs);
            raw_r[r] = raw_decode_fps(d, p->channels, p->resize, 0, secs);
            one_r[r] = loader_fps(d, p, 1, 0, secs);
            one8_r[r] = loader_fps(d, p, 1, 1, secs);
            ratio_r[r] = one_r[r] / raw_r[r];
            ratio8_r[r] = one8_r[r] / raw_r[r];
            full_ratio_r[r] = one_r[r] / full_r[r];
            full_ratio8_r[r] = one8_r[r] / full_r[r];
        }
        double raw_full = median(full_r, rounds);
        double raw_dct = median(raw_r, rounds), one = median(one_r, rounds);
        double one8 = median(one8_r, rounds);
        double all = loader_fps(d, p, pool, 0, secs);
        double all8 = loader_fps(d, p, pool, 1, secs);
        printf("  raw TurboJPEG, full size:     %9.0f frames/s\n", raw_full);
        printf("  raw TurboJPEG, loader's scale:%9.0f frames/s\n", raw_dct);
        printf("  loader, 1 decode thread:      %9.0f frames/s  (ratio %.2f "
               "to raw at the same scale, %.2f to full size)  floats\n",
               one, median(ratio_r, rounds), median(full_ratio_r, rounds));
        printf("  loader, 1 decode thread:      %9.0f frames/s  (ratio %.2f "
               "to raw at the same scale, %.2f to full size)  bytes (u8)\n",
               one8, median(ratio8_r, rounds), median(full_ratio8_r, rounds));
        if (rounds > 1) {
            printf("    rounds (raw, floats, bytes frames/s -> bytes ratio):");
            for (int r = 0; r < rounds; r++)
                printf(" %.0f %.0f %.0f -> %.2f%s", raw_r[r], one_r[r],
                       one8_r[r], ratio8_r[r], r + 1 < rounds ? " |" : "\n");
        }
        printf("  loader, %2d decode threads:    %9.0f frames/s  (%.0f per "
               "thread)  floats\n", pool, all, all / pool);
        printf("  loader, %2d decode threads:    %9.0f frames/s  (%.0f per "
               "thread)  bytes (u8)\n", pool, all8, all8 / pool);
        if (p == &presets[sizeof presets / sizeof presets[0] - 1])
            paper_u8_per_thread = one8;
        pil_loop(argv[1], p, secs);
        printf("\n");
    }
    if (paper_u8_per_thread <= 0) { /* the paper preset was not measured */
        rc_dataset_close(d);
        return 0;
    }
    /* SPEC section 5: the paper preset costs ~1.5 TFLOP and 384 decoded
     * frames per step (64 tuples x 6 frames). H100 SXM dense peaks:
     * BF16 989 TFLOP/s, TF32 495 TFLOP/s. */
    const double tflop_step = 1.5, frames_step = 384;
    const struct {
        const char *what;
        double peak, frac;
    } gpu[] = {{"BF16 tensor cores, 989 TFLOP/s peak, at 40%", 989.0, 0.40},
               {"TF32 tensor cores, 495 TFLOP/s peak, at 40%", 494.7, 0.40},
               {"FP32 (no tensor cores), 67 TFLOP/s peak, at 60%", 66.9, 0.60}};
    printf("paper preset on one H100 or H200 (the same dense peaks; 1.5 TFLOP "
           "and 384 frames per step), and the decode threads of this machine's "
           "kind it needs (loader with bytes, %.0f frames/s per thread):\n",
           paper_u8_per_thread);
    for (size_t i = 0; i < sizeof gpu / sizeof gpu[0]; i++) {
        double steps = gpu[i].peak * gpu[i].frac / tflop_step;
        printf("  %-50s %6.1f steps/s -> %8.0f frames/s -> %5.0f decode cores\n",
               gpu[i].what, steps, steps * frames_step,
               steps * frames_step / paper_u8_per_thread);
    }
    if (gpu_tuples > 0) {
        /* bench_cuda's train_paper line: tuples/s of the real step on the GPU */
        double steps = gpu_tuples / 64.0;
        printf("  %-50s %6.1f steps/s -> %8.0f frames/s -> %5.0f decode cores\n",
               "measured by bench_cuda (--gpu-tuples)", steps, steps * frames_step,
               steps * frames_step / paper_u8_per_thread);
    }
    rc_dataset_close(d);
    return 0;
}
