/* optim.c: AdamW (decoupled weight decay, as torch.optim.AdamW), global-norm
 * gradient clipping, linear warmup then cosine decay. */
#include "recompose/optim.h"

#include <math.h>
#include <string.h>

#include "recompose/common.h"

int rc_adamw_init(rc_adamw *o, const rc_config *c, size_t n,
                  const rc_backend *be) {
    memset(o, 0, sizeof *o);
    o->lr = c->lr;
    o->min_lr_ratio = c->min_lr_ratio;
    o->weight_decay = c->weight_decay;
    o->beta1 = c->beta1;
    o->beta2 = c->beta2;
    o->eps = c->eps;
    o->clip_norm = c->clip_norm;
    o->warmup = c->warmup;
    o->total_steps = c->steps;
    o->n = n;
    o->be = be;
    o->m = be->alloc(n * sizeof(float));
    o->v = be->alloc(n * sizeof(float));
    return 0;
}

void rc_adamw_free(rc_adamw *o) {
    if (o->m) o->be->free(o->m);
    if (o->v) o->be->free(o->v);
    o->m = o->v = NULL;
}

float rc_lr_at(const rc_adamw *o, int64_t step) {
    if (o->warmup > 0 && step < o->warmup)
        return o->lr * (float)(step + 1) / (float)o->warmup;
    int64_t decay_steps = o->total_steps - o->warmup;
    if (decay_steps <= 0) return o->lr;
    double progress = (double)(step - o->warmup) / (double)decay_steps;
    if (progress > 1.0) progress = 1.0;
    double cosine = 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    double floor_ratio = o->min_lr_ratio;
    return (float)(o->lr * (floor_ratio + (1.0 - floor_ratio) * cosine));
}

double rc_adamw_step(rc_adamw *o, rc_model *m, int64_t step) {
    const rc_backend *be = o->be;
    float *w = rc_model_weights(m), *g = rc_model_grads(m);
    double norm = sqrt(be->sum_squares(o->n, g));
    if (o->clip_norm > 0 && norm > o->clip_norm)
        be->scale(o->n, g, (float)(o->clip_norm / (norm + 1e-6)));

    o->t++;
    float c1 = (float)(1.0 - pow(o->beta1, (double)o->t));
    float c2 = (float)(1.0 - pow(o->beta2, (double)o->t));
    float lr = rc_lr_at(o, step);
    /* per tensor, because biases take no weight decay */
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        size_t off = p->offset;
        be->adamw_update(p->numel, w + off, g + off, o->m + off, o->v + off,
                         lr, o->beta1, o->beta2, o->eps,
                         p->decay ? o->weight_decay : 0.0f, c1, c2);
    }
    return norm;
}
