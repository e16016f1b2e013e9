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
int rc_cuda_configure(const rc_cuda_options *o) { (void)o; return rc_set_error("%s", why); }
int rc_cuda_plugin_error(char *buf, size_t cap) {
    snprintf(buf, cap, "%s", why);
    return -1;
}
int rc_cuda_device_count(void) { return 0; }
const rc_backend *rc_backend_cuda(void) { rc_set_error("%s", why); return NULL; }
void *rc_cuda_stream(void) { return NULL; }
const char *rc_cuda_device_name(void) { return "none"; }
void *rc_cuda_pinned_alloc(size_t bytes) { (void)bytes; rc_set_error("%s", why); return NULL; }
void rc_cuda_pinned_free(void *p) { (void)p; }
rc_cuda_input *rc_cuda_input_create(size_t max_bytes, int slots) {
    (void)max_bytes; (void)slots; rc_set_error("%s", why); return NULL;
}
void rc_cuda_input_free(rc_cuda_input *in) { (void)in; }
int rc_cuda_input_submit(rc_cuda_input *in, const void *pinned, size_t bytes) {
    (void)in; (void)pinned; (void)bytes; return rc_set_error("%s", why);
}
const float *rc_cuda_input_acquire(rc_cuda_input *in, int slot) { (void)in; (void)slot; return NULL; }
void rc_cuda_input_release(rc_cuda_input *in, int slot) { (void)in; (void)slot; }
void rc_cuda_input_wait_host_free(rc_cuda_input *in, int slot) { (void)in; (void)slot; }
rc_cuda_graph *rc_cuda_graph_capture(void (*fn)(void *ctx), void *ctx) {
    (void)fn; (void)ctx; rc_set_error("%s", why); return NULL;
}
int rc_cuda_graph_launch(rc_cuda_graph *g) { (void)g; return rc_set_error("%s", why); }
double rc_cuda_graph_scalar(const rc_cuda_graph *g, int i) { (void)g; (void)i; return 0.0; }
int rc_cuda_graph_n_scalars(const rc_cuda_graph *g) { (void)g; return 0; }
void rc_cuda_graph_free(rc_cuda_graph *g) { (void)g; }
double rc_cuda_measure_copy_gbs(size_t bytes) { (void)bytes; return 0.0; }
double rc_cuda_measure_gemm_tflops(int n) { (void)n; return 0.0; }
