/* backend.c: the registry of backends (backend.h). */
#include "recompose/backend.h"

#include <string.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "emu/emu_backend.h"

static int configure_cuda(const rc_backend_settings *s) {
    rc_cuda_options o;
    rc_cuda_options_default(&o);
    o.device = s->device;
    o.precision = s->precision;
    o.benchmark = s->benchmark;
    return rc_cuda_configure(&o);
}

static const rc_backend_kind kinds[] = {
    {"cpu", 0, NULL, rc_backend_cpu, NULL},
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
