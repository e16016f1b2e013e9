/* common.c: error state, logging, checked allocation, clock. */
/* sched_getaffinity and CPU_COUNT are GNU extensions */
#define _GNU_SOURCE
#include "recompose/common.h"

#include <sched.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static _Thread_local char rc_error_buf[1024];

int rc_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rc_error_buf, sizeof rc_error_buf, fmt, ap);
    va_end(ap);
    return -1;
}

const char *rc_last_error(void) {
    return rc_error_buf[0] ? rc_error_buf : "unknown error";
}

void rc_log(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("recompose: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void out_of_memory(size_t bytes) {
    fprintf(stderr, "recompose: out of memory allocating %zu bytes; "
                    "reduce train.batch or the model size\n", bytes);
    exit(2);
}

void *rc_xrealloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) out_of_memory(bytes);
    return q;
}

void *rc_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) out_of_memory(bytes);
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rc_median(double *v, size_t n) {
    if (n == 0) return NAN;
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void *rc_host_alloc(size_t bytes, void *ctx) {
    (void)ctx;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        rc_set_error("out of memory allocating %zu bytes of host buffer", bytes);
        return NULL;
    }
    return p;
}

void rc_host_free(void *p, void *ctx) {
    (void)ctx;
    free(p);
}

void *rc_xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "recompose: out of memory allocating %zu x %zu bytes; "
                        "reduce train.batch or the model size\n", count, size);
        exit(2);
    }
    return p;
}

double rc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint32_t rc_crc32(uint32_t crc, const void *data, size_t n) {
    const unsigned char *p = data;
    uLong c = crc;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

int rc_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int rc_default_threads(const char **why) {
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if ((*end == 0 || *end == ',') && n > 0 && n < 100000) {
            if (why) *why = "OMP_NUM_THREADS";
            return (int)n;
        }
    }
    if (why) *why = "the CPUs this process may use";
    return rc_available_cpus();
}

void rc_path_dir(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, cap, ".");
    else if (slash == path) snprintf(dir, cap, "/");
    else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

int rc_make_dirs(const char *path) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return rc_set_error("path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return rc_set_error("cannot create directory %s: %s", buf,
                                strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return rc_set_error("cannot create directory %s: %s", buf,
                            strerror(errno));
    return 0;
}
