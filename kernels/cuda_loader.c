/* cuda_loader.c: the CUDA backend's entry points in a CUDA build, forwarded
 * to the plugin librecompose_cuda.so, which is loaded (dlopen) the first
 * time one of them is called. A run that never asks for the GPU never maps
 * the CUDA runtime, cuBLAS, cuDNN or NCCL.
 *
 * Where the plugin is looked for, in order: $RC_CUDA_PLUGIN; the path the
 * build wrote it to; beside the running executable; the loader's search
 * path (LD_LIBRARY_PATH, ...). The plugin resolves the core functions it
 * uses (errors, logging, allocation) from the executable,
 * which exports them (CMake ENABLE_EXPORTS); `plugin_imports` below keeps
 * them linked into every executable even where the executable itself does
 * not call them.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "recompose/ops.h"
#ifdef RC_HAVE_NCCL
#include "comm_nccl.h"
#else
#define RC_NCCL_FUNCS(X, V)
#endif

#ifndef RC_CUDA_PLUGIN_PATH
#define RC_CUDA_PLUGIN_PATH "librecompose_cuda.so"
#endif

/* Core functions the plugin calls: referenced here so that the static
 * core library's objects holding them are linked (and so exported). */
__attribute__((used)) static const void *const plugin_imports[] = {
    (const void *)rc_set_error, (const void *)rc_xmalloc,
    (const void *)rc_xcalloc,
};

static struct {
#define X(ret, name, params, args, fail) ret(*name) params;
#define V(name, params, args) void(*name) params;
    RC_CUDA_FUNCS(X, V)
    RC_NCCL_FUNCS(X, V)
#undef X
#undef V
} plugin;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static void *handle;
static char load_error[1024];

static void *try_open(const char *path, char *tried, size_t cap) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        size_t len = strlen(tried);
        snprintf(tried + len, cap - len, "%s%s", len ? "; " : "", dlerror());
    }
    return h;
}

static void load_plugin(void) {
    char tried[768] = "";
    const char *env = getenv("RC_CUDA_PLUGIN");
    if (env && *env) handle = try_open(env, tried, sizeof tried);
    if (!handle) handle = try_open(RC_CUDA_PLUGIN_PATH, tried, sizeof tried);
    if (!handle) {
        char exe[PATH_MAX], path[PATH_MAX + 32];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = 0;
            char *slash = strrchr(exe, '/');
            if (slash) *slash = 0;
            snprintf(path, sizeof path, "%s/librecompose_cuda.so", exe);
            handle = try_open(path, tried, sizeof tried);
        }
    }
    if (!handle) handle = try_open("librecompose_cuda.so", tried, sizeof tried);
    if (!handle) {
        snprintf(load_error, sizeof load_error,
                 "CUDA backend: cannot load its plugin librecompose_cuda.so "
                 "(%s); set RC_CUDA_PLUGIN to its path, or rebuild", tried);
        return;
    }
    /* a missing function is a plugin from another build: refuse it */
#define LOOKUP(name)                                                            \
    if (!(*(void **)&plugin.name = dlsym(handle, #name)) && !load_error[0])     \
        snprintf(load_error, sizeof load_error,                                 \
                 "CUDA backend: its plugin lacks %s (%s); rebuild", #name,      \
                 dlerror());
#define X(ret, name, params, args, fail) LOOKUP(name)
#define V(name, params, args) LOOKUP(name)
    RC_CUDA_FUNCS(X, V)
    RC_NCCL_FUNCS(X, V)
#undef X
#undef V
#undef LOOKUP
}

/* 0 when the plugin is there; else -1 with the error set. */
static int plugin_ready(void) {
    pthread_once(&load_once, load_plugin);
    return load_error[0] ? rc_set_error("%s", load_error) : 0;
}

int rc_cuda_plugin_error(char *buf, size_t cap) {
    pthread_once(&load_once, load_plugin);
    snprintf(buf, cap, "%s", load_error);
    return load_error[0] ? -1 : 0;
}

/* Pure: answered here, so that options are defined even without a plugin. */
void rc_cuda_options_default(rc_cuda_options *o) { memset(o, 0, sizeof *o); }

/* ---- the forwarding functions ----------------------------------------------
 * Without the plugin, a function reports the error and returns its failure
 * value (no device for rc_cuda_device_count, so the GPU tests skip; -1 or
 * NULL for the others); those returning nothing do nothing (they are only
 * reached after a create or alloc, which already failed). */

#define X(ret, name, params, args, fail)                                        \
    ret name params {                                                           \
        if (plugin_ready() != 0) return fail;                                   \
        return plugin.name args;                                                \
    }
#define V(name, params, args)                                                   \
    void name params {                                                          \
        if (plugin_ready() != 0) return;                                        \
        plugin.name args;                                                       \
    }
RC_CUDA_FUNCS(X, V)
RC_NCCL_FUNCS(X, V)
#undef X
#undef V
