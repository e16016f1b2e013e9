/* common.h: error reporting, logging and small helpers shared by every module.
 *
 * Convention: a function that can fail returns int (0 = success, -1 = error)
 * and records a human-readable message with rc_set_error(). The caller that
 * finally gives up prints rc_last_error(). Messages name the file, line, tensor
 * or frame at fault and, where possible, what to do about it.
 */
#ifndef RECOMPOSE_COMMON_H
#define RECOMPOSE_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RC_VERSION "0.1.0"

#if defined(__GNUC__)
#define RC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RC_PRINTF(a, b)
#endif

/* Record an error message (thread-local). Always returns -1 so that
 * `return rc_set_error(...)` reads naturally. */
int rc_set_error(const char *fmt, ...) RC_PRINTF(1, 2);
const char *rc_last_error(void);

/* Log a line to stderr, prefixed with "recompose: ". */
void rc_log(const char *fmt, ...) RC_PRINTF(1, 2);

/* malloc/calloc that print a clear message and exit(2) when memory runs out:
 * a half-initialised model is never useful, so we do not propagate OOM. */
void *rc_xmalloc(size_t bytes);
void *rc_xcalloc(size_t count, size_t size);
void *rc_xrealloc(void *p, size_t bytes);

/* Median of v[0..n-1] (the mean of the two middle values for even n),
 * sorting v in place. NaN for n = 0. */
double rc_median(double *v, size_t n);

/* Batch buffers in plain host memory, 64-byte aligned, with the
 * (bytes, ctx) shape of rc_loader_options.alloc and rc_stage_ops.host_alloc:
 * NULL with the error set when memory runs out (the caller owns the
 * message about what it was for); rc_host_free releases one. */
void *rc_host_alloc(size_t bytes, void *ctx);
void rc_host_free(void *p, void *ctx);

/* CRC-32 (zlib's polynomial) of n bytes, continuing from crc (0 to start):
 * checkpoints and shards both checksum with it. */
uint32_t rc_crc32(uint32_t crc, const void *data, size_t n);

/* The CPUs this process may run on (its affinity mask: Slurm's
 * --cpus-per-task, taskset, a cgroup's cpuset), at least 1. */
int rc_available_cpus(void);

/* Threads for a "0 = automatic" setting: OMP_NUM_THREADS when it is set to
 * a positive number, else rc_available_cpus(). *why (nullable) says which. */
int rc_default_threads(const char **why);

/* The directory part of a path into dir: "." for a bare name, "/" for a
 * name in the root. */
void rc_path_dir(const char *path, char *dir, size_t cap);

/* mkdir -p: create path and every missing parent. 0, or -1 with an error
 * naming the directory that could not be made. */
int rc_make_dirs(const char *path);

/* Wall clock in seconds (monotonic). */
double rc_now(void);

#ifdef __cplusplus
}
#endif
#endif
