/* test_emu_step.c: a whole training step (forward, loss, backward) through
 * the emulated CUDA backend (kernels/emu: the CUDA backend's kernels and
 * drivers on the CPU, OpenBLAS for cuBLAS, the CPU convolution for cuDNN)
 * against the CPU backend, on a small model and a real batch plan with
 * deduplicated pairs and mixed sequence lengths. */
#include <string.h>

#include "emu/emu_backend.h"
#include "recompose/backend.h"
#include "recompose/common.h"
#include "recompose/model.h"
#include "recompose/train.h"
#include "test_util.h"

int main(void) {
    rc_config c;
    rc_config_default(&c);
    c.image_size = 20;
    c.n_conv = 2;
    c.conv_channels[0] = 4;
    c.conv_channels[1] = 6;
    c.conv_kernels[0] = 5;
    c.conv_kernels[1] = 3;
    c.conv_strides[0] = 2;
    c.conv_strides[1] = 2;
    c.feature_dim = 10;
    c.hidden = 8;
    c.embed_dim = 5;
    c.clip_steps = 4;
    c.batch = 2;
    rc_set_threads(2);
    double t0 = rc_now();
    rc_model_shape shape;
    rc_model_shape_from_config(&c, &shape);
    rc_model *cpu = rc_model_create(&shape, rc_backend_lookup("cpu")->ops());
    rc_model *emu = rc_model_create(&shape, rc_backend_lookup("emu")->ops());
    rc_model_init_weights(cpu, 11);
    rc_model_init_weights(emu, 11);
    size_t n = rc_model_numel(cpu);
    CHECK(memcmp(rc_model_weights(cpu), rc_model_weights(emu), n * sizeof(float)) == 0);

    size_t clip = (size_t)(c.clip_steps + 1) * c.channels * c.image_size * c.image_size;
    float *frames = rc_xmalloc(c.batch * clip * sizeof(float));
    rc_batch_plan plan;
    memset(&plan, 0, sizeof plan);
    CHECK(rc_make_train_batch(&c, 5, frames, &plan) == 0);
    int mixed = 0;
    for (int s = 1; s < plan.n_seq; s++) mixed |= plan.seq_len[s] != plan.seq_len[0];
    CHECK(mixed);

    size_t ne = (size_t)plan.n_seq * c.embed_dim;
    float *e_cpu = rc_xmalloc(ne * sizeof(float)), *e_emu = rc_xmalloc(ne * sizeof(float));
    double l_cpu = rc_model_step(cpu, &plan, frames, &c.loss, 1, e_cpu);
    double l_emu = rc_model_step(emu, &plan, frames, &c.loss, 1, e_emu);
    CHECK_MSG(isfinite(l_cpu) && l_cpu > 0, "cpu loss %g", l_cpu);
    CHECK_MSG(fabs(l_emu - l_cpu) <= 1e-5 * fabs(l_cpu), "loss %.9g vs %.9g", l_emu, l_cpu);
    double ee = rc_test_rel_err_f(e_emu, e_cpu, ne);
    CHECK_MSG(ee < 1e-5, "embeddings rel err %g", ee);
    for (int i = 0; i < rc_model_n_params(cpu); i++) {
        const rc_param *p = rc_model_param(cpu, i);
        const float *ge = rc_model_grads(emu) + p->offset, *gc = rc_model_grads(cpu) + p->offset;
        double e = rc_test_rel_err_f(ge, gc, p->numel);
        if (strcmp(p->name, "head.bias") == 0) {
            /* the loss gradient sums to zero over the embeddings (each pair
             * adds +k(a-b) and -k(a-b)), so this gradient is rounding noise
             * around 0: check it is tiny next to the weight gradient */
            const rc_param *hw = rc_model_find_param(cpu, "head.weight");
            double big = 0, diff = 0;
            for (size_t k = 0; k < hw->numel; k++)
                big = fmax(big, fabs(rc_model_grads(cpu)[hw->offset + k]));
            for (size_t k = 0; k < p->numel; k++) diff = fmax(diff, fabs(ge[k] - gc[k]));
            e = diff / big;
        }
        CHECK_MSG(e < 1e-5, "gradient of %s: emulated vs cpu rel err %g", p->name, e);
    }
    printf("loss cpu %.9g emu %.9g, %d pairs, %d sequences, %.2f s\n", l_cpu, l_emu,
           plan.n_pairs, plan.n_seq, rc_now() - t0);
    rc_plan_free(&plan);
    free(frames); free(e_cpu); free(e_emu);
    rc_model_free(cpu);
    rc_model_free(emu);
    TEST_DONE();
}
