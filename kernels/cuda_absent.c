/* cuda_absent.c: the CUDA backend's entry points in a build without CUDA
 * (RC_CUDA=OFF, or nvcc/cuDNN not found). They report, rather than crash,
 * so that the CLI and the GPU tests can say why there is no GPU backend. */
#include "recompose/common.h"
#include "recompose/cuda_backend.h"

#include <stdio.h>
#include <string.h>

static const char *why = "CUDA backend not compiled in (configured with "
                         "RC_CUDA=OFF, or nvcc/cuDNN were not found); "
                         "reconfigure with -DRC_CUDA=ON on a CUDA machine";

void rc_cuda_options_default(rc_cuda_options *o) { memset(o, 0, sizeof *o); }
int rc_cuda_plugin_error(char *buf, size_t cap) {
    snprintf(buf, cap, "%s", why);
    return -1;
}
/* Every entry of the list answers with its failure value and the reason
 * (rc_cuda_device_count: 0 devices, so the GPU tests skip). */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define X(ret, name, params, args, fail)                                        \
    ret name params {                                                           \
        rc_set_error("%s", why);                                                \
        return fail;                                                            \
    }
#define V(name, params, args)                                                   \
    void name params {}
RC_CUDA_FUNCS(X, V)
#undef X
#undef V
