/* test_cuda_plugin.c: a CUDA build keeps its GPU libraries out of CPU runs.
 * The backend is a plugin loaded on first use (kernels/cuda_loader.c):
 *  - before any CUDA call the process has mapped neither the plugin nor
 *    cuDNN, cuBLAS or the CUDA runtime, also after a CPU run's communicator
 *    was made and freed;
 *  - the first call loads the plugin, and every symbol it needs from the
 *    executable resolves (a missing export fails here, in CI, rather than
 *    as a skipped GPU test on a GPU machine);
 *  - the plugin takes from the core only errors and allocation: no
 *    communicator symbol (rc_comm_*), whose struct would otherwise be an ABI
 *    between two link units (nm -D lists what it imports);
 *  - without a GPU the backend says so ("no CUDA device"), naming the cause.
 * Skipped in a build without CUDA. */
#include <stdio.h>
#include <string.h>

#include "recompose/comm.h"
#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "test_util.h"

#ifdef RC_HAVE_CUDA
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/* Path of the mapped plugin from /proc/self/maps, or "" */
static void plugin_path(char *out, size_t cap) {
    out[0] = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "librecompose_cuda")) {
            p[strcspn(p, "\n")] = 0;
            snprintf(out, cap, "%s", p);
            break;
        }
    }
    fclose(f);
}

/* The core symbols (rc_*) the plugin imports, each checked against the
 * list it may use. Returns how many are not allowed; -1 when nm is absent. */
static int foreign_imports(const char *path) {
    static const char *const allowed[] = {"rc_set_error", "rc_xmalloc",
                                          "rc_xcalloc"};
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "nm -D --undefined-only '%s' 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    int bad = 0, lines = 0;
    while (fgets(line, sizeof line, p)) {
        lines++;
        char sym[256];
        if (sscanf(line, " U %255s", sym) != 1 || strncmp(sym, "rc_", 3) != 0)
            continue;
        int ok = 0;
        for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
            ok |= strcmp(sym, allowed[i]) == 0;
        if (!ok) {
            fprintf(stderr, "plugin imports %s from the core\n", sym);
            bad++;
        }
    }
    return pclose(p) != 0 || lines == 0 ? -1 : bad;
}
#endif

int main(void) {
#ifndef RC_HAVE_CUDA
    TEST_SKIP("build without the CUDA backend");
#else
    CHECK_MSG(mapped("libcudnn") == 0, "cuDNN mapped before any CUDA call");
    CHECK_MSG(mapped("libcublas") == 0, "cuBLAS mapped before any CUDA call");
    CHECK_MSG(mapped("libcudart") == 0, "the CUDA runtime mapped before any CUDA call");
    CHECK_MSG(mapped("librecompose_cuda") == 0, "plugin mapped before any CUDA call");
    /* a CPU run's communicator, made and freed, loads nothing of CUDA */
    rc_comm *comm = rc_comm_create(0);
    CHECK(comm != NULL);
    CHECK(rc_comm_device(comm) == 0); /* what rc_train asks for its settings */
    rc_comm_free(comm);
    CHECK_MSG(mapped("librecompose_cuda") == 0,
              "a CPU communicator's free loaded the CUDA plugin");
    char why[1024];
    int rc = rc_cuda_plugin_error(why, sizeof why);
    CHECK_MSG(rc == 0 && why[0] == 0, "plugin did not load: %s", why);
    CHECK(mapped("librecompose_cuda") == 1);
    char path[4096];
    plugin_path(path, sizeof path);
    int bad = foreign_imports(path);
    if (bad < 0)
        printf("nm not found: imports of %s not checked\n", path);
    else
        CHECK_MSG(bad == 0, "%s imports %d core symbol(s) it must not", path, bad);
    int n = rc_cuda_device_count();
    printf("plugin loaded; %d CUDA device(s)\n", n);
    if (n == 0) {
        CHECK(rc_backend_cuda() == NULL);
        CHECK_MSG(strstr(rc_last_error(), "no CUDA device") != NULL,
                  "without a GPU: %s", rc_last_error());
    } else {
        CHECK(rc_backend_cuda() != NULL);
    }
    TEST_DONE();
#endif
}
