/* test_backend.c: the backend registry (backend.h).
 *  - every train.device the config accepts names a backend (or "auto");
 *  - cpu and emu run here: their op tables are the CPU reference and the
 *    emulated CUDA kernels, emu with its input stage, cpu without;
 *    the CPU table carries its fused conv + ReLU, the emulated one none;
 *  - train.cpu_conv picks the CPU's convolutions (oneDNN's or the
 *    reference's) by the rules of backend.c, train.precision = bf16 their
 *    operands' type; rc_backend_settings_of reads those keys;
 *  - cuda without a GPU: its op table is refused with a message, never a
 *    silent CPU run; auto without a GPU is the CPU;
 *  - an unknown name is refused with the choices. */
#include <stdio.h>
#include <string.h>

#include "recompose/backend.h"
#include "recompose/common.h"
#include "recompose/config.h"
#include "recompose/cuda_backend.h"
#include "cpu_onednn/onednn.h"
#include "test_util.h"

static int contains(const char *s, const char *part) {
    return s && strstr(s, part) != NULL;
}

int main(void) {
    for (int i = 0; rc_backend_names[i]; i++) {
        rc_config c;
        rc_config_default(&c);
        char set[64];
        snprintf(set, sizeof set, "train.device=%s", rc_backend_names[i]);
        CHECK_MSG(rc_config_set(&c, set) == 0, "%s: %s", set, rc_last_error());
        CHECK_MSG(rc_backend_lookup(c.device) != NULL, "%s: %s", c.device,
                  rc_last_error());
    }
    const rc_backend_kind *cpu = rc_backend_lookup("cpu");
    const rc_backend_kind *emu = rc_backend_lookup("emu");
    CHECK(cpu && emu);
    if (cpu && emu) {
        CHECK(cpu->ops() == rc_backend_cpu() && cpu->stage == NULL && !cpu->is_gpu);
        CHECK(cpu->ops()->fused != NULL);
        const rc_backend *e = emu->ops();
        CHECK(e != NULL && strcmp(e->name, "cpu") != 0 && e->fused == NULL);
        CHECK(emu->stage != NULL && emu->stage() != NULL && !emu->is_gpu);
        /* train.cpu_conv: blas is the reference; auto is oneDNN's where the
         * build has it, but the reference under a pinned BLAS family; onednn
         * is oneDNN's, or an error saying how to get it */
        int have = rc_onednn_version() != NULL;
        rc_backend_settings st = {.cpu_conv = RC_CPU_CONV_BLAS};
        CHECK(cpu->configure(&st) == 0 && cpu->ops() == rc_backend_cpu());
        st.cpu_conv = RC_CPU_CONV_AUTO;
        CHECK(cpu->configure(&st) == 0 &&
              !strcmp(cpu->ops()->name, have ? "cpu-onednn" : "cpu"));
        st.cpu_isa_avx2 = 1;
        CHECK(cpu->configure(&st) == 0 && cpu->ops() == rc_backend_cpu());
        st.cpu_isa_avx2 = 0;
        st.cpu_conv = RC_CPU_CONV_ONEDNN;
        if (have) {
            CHECK(cpu->configure(&st) == 0 && !strcmp(cpu->ops()->name, "cpu-onednn"));
            CHECK(cpu->ops()->fused != NULL && cpu->ops()->lstm_forward == rc_backend_cpu()->lstm_forward);
        } else {
            CHECK(cpu->configure(&st) != 0 && contains(rc_last_error(), "libdnnl-dev"));
        }
        /* train.precision = bf16: oneDNN's convolutions take bfloat16
         * operands where the CPU has native bfloat16; the reference and
         * every other precision stay float32 */
        int native = have && rc_onednn_has_bf16();
        st.precision = RC_PRECISION_BF16;
        st.cpu_conv = RC_CPU_CONV_AUTO;
        CHECK(cpu->configure(&st) == 0 && rc_onednn_uses_bf16() == native);
        st.cpu_conv = RC_CPU_CONV_BLAS;
        CHECK(cpu->configure(&st) == 0 && !rc_onednn_uses_bf16());
        st.cpu_conv = RC_CPU_CONV_AUTO;
        st.precision = RC_PRECISION_TF32;
        CHECK(cpu->configure(&st) == 0 && !rc_onednn_uses_bf16());
        printf("bf16 convolutions on this CPU: %s\n", native ? "native" : "no (float32)");
        /* the kernels' ISA as named for benchmark records agrees with
         * the bf16 test (both read oneDNN's effective ISA) */
        const char *isa = rc_onednn_isa();
        int bf16_isa = !strcmp(isa, "avx512_core_bf16") || !strcmp(isa, "avx512_core_amx");
        CHECK(have ? bf16_isa == native && strcmp(isa, "none") != 0 : !strcmp(isa, "none"));
        printf("oneDNN kernels: %s\n", isa);
        st.cpu_conv = RC_CPU_CONV_BLAS;
        CHECK(cpu->configure(&st) == 0);
    }
    /* the settings a run takes from its config */
    rc_config k;
    rc_config_default(&k);
    CHECK(rc_config_set(&k, "train.precision=bf16") == 0 &&
          rc_config_set(&k, "train.cpu_conv=blas") == 0 &&
          rc_config_set(&k, "train.blas_kernels=Haswell") == 0 &&
          rc_config_set(&k, "train.cudnn_benchmark=true") == 0);
    rc_backend_settings from = rc_backend_settings_of(&k, 3);
    CHECK(from.device == 3 && from.precision == RC_PRECISION_BF16 &&
          from.cpu_conv == RC_CPU_CONV_BLAS && from.cpu_isa_avx2 == 1 &&
          from.benchmark == 1);
    rc_config_default(&k);
    from = rc_backend_settings_of(&k, 0);
    CHECK(from.precision == RC_PRECISION_TF32 && from.cpu_conv == RC_CPU_CONV_AUTO &&
          from.cpu_isa_avx2 == 0 && from.benchmark == 0);
    const rc_backend_kind *cuda = rc_backend_lookup("cuda");
    CHECK(cuda && cuda->is_gpu && cuda->configure && cuda->stage);
    if (rc_cuda_device_count() == 0) {
        if (cuda) CHECK(cuda->ops() == NULL && rc_last_error()[0] != '\0');
        CHECK(rc_backend_lookup("auto") == cpu);
    } else {
        CHECK(rc_backend_lookup("auto") == cuda);
    }
    CHECK(rc_backend_lookup("gpu") == NULL &&
          contains(rc_last_error(), "choose cpu, cuda, emu or auto"));
    CHECK(rc_backend_lookup(NULL) == NULL);
    rc_config c;
    rc_config_default(&c);
    CHECK(rc_config_set(&c, "train.device=gpu") != 0 &&
          contains(rc_last_error(), "allowed: cpu, cuda, emu, auto"));
    TEST_DONE();
}
