/* test_cuda_plugin.c: a CUDA build keeps its GPU libraries out of CPU runs.
 * The backend is a plugin loaded on first use (csrc/cuda/cuda_loader.c):
 *  - before any CUDA call the process has mapped neither the plugin nor
 *    cuDNN, cuBLAS or the CUDA runtime;
 *  - the first call loads the plugin, and every symbol it needs from the
 *    executable resolves (a missing export fails here, in CI, rather than
 *    as a skipped GPU test on a GPU machine);
 *  - without a GPU the backend says so ("no CUDA device"), naming the cause.
 * Skipped in a build without CUDA. */
#include <stdio.h>
#include <string.h>

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
#endif

int main(void) {
#ifndef RC_HAVE_CUDA
    TEST_SKIP("build without the CUDA backend");
#else
    CHECK_MSG(mapped("libcudnn") == 0, "cuDNN mapped before any CUDA call");
    CHECK_MSG(mapped("libcublas") == 0, "cuBLAS mapped before any CUDA call");
    CHECK_MSG(mapped("libcudart") == 0, "the CUDA runtime mapped before any CUDA call");
    CHECK_MSG(mapped("librecompose_cuda") == 0, "plugin mapped before any CUDA call");
    char why[1024];
    int rc = rc_cuda_plugin_error(why, sizeof why);
    CHECK_MSG(rc == 0 && why[0] == 0, "plugin did not load: %s", why);
    CHECK(mapped("librecompose_cuda") == 1);
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
