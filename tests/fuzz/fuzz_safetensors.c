/* fuzz_safetensors: the safetensors reader (whole file and header only)
 * over arbitrary bytes. It must refuse bad input with an error naming the
 * file, never read outside the file, leak or crash; a file it accepts must
 * hold each tensor inside the data, and writing it back and reading that
 * again must give the same tensors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* rc_safetensors_read reads a path: scratch files in $RC_FUZZ_TMP. */
static const char *scratch(int k) {
    static char path[2][512];
    if (!path[k][0])
        snprintf(path[k], sizeof path[k], "%s/rc_fuzz_st_%d.%ld.safetensors",
                 getenv("RC_FUZZ_TMP") ? getenv("RC_FUZZ_TMP") : "/tmp", k,
                 (long)getpid());
    return path[k];
}

static size_t numel_bytes(const rc_st_tensor *t) {
    size_t n = t->dtype == RC_DT_F32 ? 4 : 8;
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

static void check_error_names(const char *path) {
    if (strncmp(rc_last_error(), path, strlen(path))) {
        fprintf(stderr, "error does not name the file: %s\n", rc_last_error());
        abort();
    }
}

/* Rewrite an accepted file and compare the copy tensor by tensor. */
static void check_rewrite(const rc_st_file *f) {
    int n = rc_safetensors_count(f);
    rc_st_tensor *t = calloc((size_t)n + 1, sizeof *t);
    volatile unsigned sum = 0;
    for (int i = 0; i < n; i++) {
        t[i] = *rc_safetensors_get(f, i);
        const unsigned char *p = t[i].data;
        for (size_t k = 0; k < numel_bytes(&t[i]); k++) sum += p[k]; /* in bounds? */
    }
    if (rc_safetensors_write(scratch(1), t, n, NULL, 0) != 0) {
        /* only names the reader took but the writer refuses, e.g. one
         * called "__metadata__"-like or not UTF-8, may fail */
        free(t);
        return;
    }
    rc_st_file *g = rc_safetensors_read(scratch(1));
    if (!g || rc_safetensors_count(g) != n) abort();
    for (int i = 0; i < n; i++) {
        const rc_st_tensor *b = rc_safetensors_find(g, t[i].name);
        if (!b || b->dtype != t[i].dtype || b->ndim != t[i].ndim ||
            memcmp(b->shape, t[i].shape, sizeof b->shape[0] * (size_t)b->ndim) ||
            memcmp(b->data, t[i].data, numel_bytes(b)))
            abort();
    }
    rc_safetensors_close(g);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *fp = fopen(scratch(0), "wb");
    if (!fp || fwrite(data, 1, size, fp) != size || fclose(fp) != 0) abort();
    rc_st_file *h = rc_safetensors_read_header(scratch(0));
    if (h) rc_safetensors_close(h);
    else check_error_names(scratch(0));
    rc_st_file *f = rc_safetensors_read(scratch(0));
    if (!f) {
        check_error_names(scratch(0));
        return 0;
    }
    if (!h) abort(); /* the whole file is fine but its header is not? */
    check_rewrite(f);
    rc_safetensors_close(f);
    return 0;
}
