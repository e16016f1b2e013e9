/* optim.h: AdamW with global-norm clipping and a warmup + cosine schedule. */
#ifndef RECOMPOSE_OPTIM_H
#define RECOMPOSE_OPTIM_H

#include <stdint.h>

#include "recompose/config.h"
#include "recompose/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float lr, min_lr_ratio, weight_decay, beta1, beta2, eps, clip_norm;
    int warmup, total_steps;
    size_t n;       /* parameters */
    float *m, *v;   /* first and second moments, backend memory */
    int64_t t;      /* updates taken so far */
    const rc_backend *be;
} rc_adamw;

int rc_adamw_init(rc_adamw *o, const rc_config *c, size_t n,
                  const rc_backend *be);
void rc_adamw_free(rc_adamw *o);

/* Learning rate for 0-based step `step`: linear warmup over `warmup` steps
 * to lr, then cosine to lr*min_lr_ratio at total_steps. */
float rc_lr_at(const rc_adamw *o, int64_t step);

/* Clip the model's gradients by global norm, then update its weights with
 * the learning rate of `step`. Returns the pre-clip gradient norm. */
double rc_adamw_step(rc_adamw *o, rc_model *m, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
