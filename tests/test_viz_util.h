/* test_viz_util.h: shared pieces of the viz tests -- a tiny model on disk,
 * an independent .npy reader and a PNG reader (libpng's simplified API). */
#ifndef RC_TEST_VIZ_UTIL_H
#define RC_TEST_VIZ_UTIL_H

#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/config.h"
#include "recompose/model.h"

/* A model small enough for finite differences in milliseconds. */
static const char *viz_tiny_ini =
    "[model]\n"
    "conv_channels = 4,8\n"
    "conv_kernels = 3,3\n"
    "conv_strides = 2,2\n"
    "feature_dim = 8\n"
    "hidden = 8\n"
    "embed_dim = 6\n"
    "[data]\n"
    "image_size = 16\n"
    "clip_steps = 3\n"
    "[train]\n"
    "threads = 1\n";

/* mkdtemp a directory, write DIR/tiny.ini (plus `extra` INI text) and
 * DIR/tiny.safetensors (random weights from `seed`, scaled by `gain` so the
 * embedding is not vanishingly small). Returns 0 or -1. */
static int viz_make_tiny(char *dir, size_t cap, const char *extra,
                         uint64_t seed, float gain) {
    snprintf(dir, cap, "/tmp/rc-viz-test-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.ini", dir);
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(viz_tiny_ini, f);
    if (extra) fputs(extra, f);
    fclose(f);
    rc_config c;
    rc_config_default(&c);
    if (rc_config_load(&c, path) != 0) return -1;
    rc_model_shape s;
    rc_model_shape_from_config(&c, &s);
    rc_model *m = rc_model_create(&s, rc_backend_cpu());
    rc_model_init_weights(m, seed);
    float *w = rc_model_weights(m);
    for (size_t i = 0; i < rc_model_numel(m); i++) w[i] *= gain;
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    int rc = rc_checkpoint_save(path, m, NULL, 7, &c);
    rc_model_free(m);
    return rc;
}

static rc_model *viz_load_tiny(const char *dir, rc_config *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/tiny.ini", dir);
    rc_config_default(c);
    if (rc_config_load(c, path) != 0) return NULL;
    rc_model_shape s;
    rc_model_shape_from_config(c, &s);
    rc_model *m = rc_model_create(&s, rc_backend_cpu());
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    int64_t step;
    if (rc_checkpoint_load(path, m, NULL, &step) != 0) {
        rc_model_free(m);
        return NULL;
    }
    return m;
}

/* Minimal .npy reader written from the format description (not sharing
 * code with the writer): checks magic, version 1.0, '<f4', C order, and
 * parses the shape tuple. Returns malloc'd data or NULL. */
static float *viz_read_npy(const char *path, int *ndim, long long shape[8]) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) ||
        pre[6] != 1 || pre[7] != 0) {
        fclose(f);
        return NULL;
    }
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    char *h = calloc(1, hlen + 1);
    if (fread(h, 1, hlen, f) != hlen || (10 + hlen) % 64 != 0 ||
        h[hlen - 1] != '\n' || !strstr(h, "'descr': '<f4'") ||
        !strstr(h, "'fortran_order': False")) {
        free(h);
        fclose(f);
        return NULL;
    }
    const char *p = strstr(h, "'shape': (");
    *ndim = 0;
    size_t count = 1;
    if (p) {
        p += strlen("'shape': (");
        while (*p && *p != ')') {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p) break;
            shape[(*ndim)++] = v;
            count *= (size_t)v;
            p = end;
            while (*p == ',' || *p == ' ') p++;
        }
    }
    free(h);
    float *data = malloc(count * sizeof(float) + 1);
    if (fread(data, sizeof(float), count, f) != count || fgetc(f) != EOF) {
        free(data);
        fclose(f);
        return NULL;
    }
    fclose(f);
    return data;
}

/* Decode a PNG with libpng into RGB (malloc'd); NULL if unreadable. */
static unsigned char *viz_read_png(const char *path, int *w, int *h) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path)) return NULL;
    im.format = PNG_FORMAT_RGB;
    unsigned char *buf = malloc(PNG_IMAGE_SIZE(im));
    if (!png_image_finish_read(&im, NULL, buf, 0, NULL)) {
        free(buf);
        png_image_free(&im);
        return NULL;
    }
    *w = (int)im.width;
    *h = (int)im.height;
    return buf;
}

/* Run a *_main with a NULL-terminated argument list. */
static int viz_run(int (*main_fn)(int, char **), const char *const *args) {
    char *argv[64];
    int argc = 0;
    while (args[argc] && argc < 63) {
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    return main_fn(argc, argv);
}

#endif
