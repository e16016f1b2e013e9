/* backend.c: the registry of backends (backend.h). */
#include "recompose/backend.h"

#include <string.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "cpu_onednn/onednn.h"
#include "emu/emu_backend.h"

static int configure_cuda(const rc_backend_settings *s) {
    rc_cuda_options o;
    rc_cuda_options_default(&o);
    o.device = s->device;
    o.precision = s->precision;
    o.benchmark = s->benchmark;
    return rc_cuda_configure(&o);
}

rc_backend_settings rc_backend_settings_of(const rc_config *c, int device) {
    rc_backend_settings s = {
        .device = device,
        .precision = (rc_precision)c->precision,
        .benchmark = c->cudnn_benchmark,
        .cpu_conv = (rc_cpu_conv)c->cpu_conv,
        .cpu_isa_avx2 = strcmp(c->blas_kernels, "auto") != 0};
    return s;
}

/* The CPU backend's convolutions: the reference until configured. */
static const rc_backend *cpu_ops = NULL;

/* auto: oneDNN's convolutions where the build has them, but the reference
 * ones when train.blas_kernels pins a kernel family: only those are known
 * to give the same bits on every CPU kind (oneDNN's JIT kernels pick their
 * blocking by the CPU's caches). onednn asked for with a pin: capped at
 * AVX2, the closest it comes. train.precision = bf16: oneDNN's
 * convolutions with bfloat16 operands where the CPU has native bfloat16
 * arithmetic; float32 everywhere else (the run's log says which). */
static int configure_cpu(const rc_backend_settings *s) {
    const rc_backend *be = rc_backend_cpu();
    int want = s->cpu_conv == RC_CPU_CONV_ONEDNN ||
               (s->cpu_conv == RC_CPU_CONV_AUTO && !s->cpu_isa_avx2 &&
                rc_onednn_version());
    if (want) {
        if (s->cpu_isa_avx2 && rc_onednn_version() && rc_onednn_cap_isa_avx2() != 0)
            return -1;
        be = rc_backend_cpu_onednn(); /* NULL without oneDNN, saying why */
    }
    if (!be) return -1;
    rc_onednn_set_bf16(be != rc_backend_cpu() && s->precision == RC_PRECISION_BF16);
    cpu_ops = be;
    return 0;
}

static const rc_backend *cpu_backend_ops(void) {
    return cpu_ops ? cpu_ops : rc_backend_cpu();
}

static const rc_backend_kind kinds[] = {
    {"cpu", 0, configure_cpu, cpu_backend_ops, NULL},
    {"cuda", 1, configure_cuda, rc_backend_cuda, rc_stage_cuda},
    /* the CUDA backend's kernels and input stage, emulated on the CPU */
    {"emu", 0, NULL, rc_backend_emu, rc_stage_emu},
};

const char *const rc_backend_names[] = {"cpu", "cuda", "emu", "auto", NULL};

const rc_backend_kind *rc_backend_lookup(const char *name) {
    if (name && !strcmp(name, "auto"))
        name = rc_cuda_device_count() > 0 ? "cuda" : "cpu";
    for (size_t i = 0; name && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].name, name)) return &kinds[i];
    rc_set_error("unknown backend '%s'; choose cpu, cuda, emu or auto",
                 name ? name : "(none)");
    return NULL;
}
