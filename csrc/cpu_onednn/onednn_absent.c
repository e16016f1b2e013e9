/* onednn_absent.c: a build without oneDNN (libdnnl-dev not found, or
 * -DRC_ONEDNN=OFF): the CPU backend keeps its reference convolutions. */
#include "recompose/common.h"
#include "cpu_onednn/onednn.h"

const rc_backend *rc_backend_cpu_onednn(void) {
    rc_set_error("train.cpu_conv = onednn, but this build has no oneDNN: "
                 "install libdnnl-dev (tools/install-deps.sh) and rebuild, or "
                 "set train.cpu_conv = blas");
    return NULL;
}

int rc_onednn_cap_isa_avx2(void) { return 0; }

int rc_onednn_failed(void) { return 0; }

int rc_onednn_channels_last_passes(void) { return 0; }

int rc_onednn_has_bf16(void) { return 0; }

int rc_onednn_set_bf16(int want) {
    (void)want;
    return 0;
}

int rc_onednn_uses_bf16(void) { return 0; }

void rc_onednn_set_chunk_bytes(size_t bytes) { (void)bytes; }

const char *rc_onednn_isa(void) { return "none"; }

const char *rc_onednn_version(void) { return NULL; }
