/* train_val.c: the validation loss of a training run, on data the run never
 * trains on: synthetic clips of a key split of their own
 * (RC_SPLIT_VALIDATION), or the sequences data.val_fraction holds out of a
 * packed dataset. The same train.val_batches batches every time, so that
 * successive values are comparable, and the same on every rank (each rank
 * computes them; no collective is needed).
 *
 * A validation pass is a forward pass of the training loss (hinge plus the
 * action term, twins included) through the model as it stands: it reads
 * the weights and writes only the model's scratch buffers, which the next
 * training step overwrites, so a run with validation trains the same bits
 * as one without.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "train_input.h"
#include "train_val.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif

struct rc_validation {
    const rc_config *cfg;
    const rc_backend *be;
    size_t values;        /* floats per batch: clips and twins */
    float *host;          /* one batch, host memory */
    float *frames;        /* the same in the backend's memory */
    rc_tuple *tuples;
    rc_batch_plan plan;
#ifdef RC_HAVE_VIDEO
    rc_dataset *dataset;  /* shards: the validation sequences' loader */
    rc_loader *loader;
#endif
};

static int open_source(rc_validation *v, int *none) {
    const rc_config *c = v->cfg;
    *none = 0;
    if (strcmp(c->source, "shards")) return 0;
#ifdef RC_HAVE_VIDEO
    v->loader = rc_train_open_val_loader(c, &v->dataset, none);
    return v->loader || *none ? 0 : -1;
#else
    return rc_set_error("validation on shards needs video input");
#endif
}

int rc_validation_open(rc_validation **out, const rc_config *c,
                       const rc_backend *be, int verbose) {
    *out = NULL;
    if (c->val_every <= 0) return 0;
    rc_validation *v = rc_xmalloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->cfg = c;
    v->be = be;
    int none;
    if (open_source(v, &none) != 0) {
        free(v);
        return -1;
    }
    if (none) {
        if (verbose)
            rc_log("validation off: no sequence of %s is held out "
                   "(data.val_fraction %.2g); raise data.val_fraction for a "
                   "validation loss", c->data_path, c->val_fraction);
        free(v);
        return 0;
    }
    size_t clip = (size_t)(c->clip_steps + 1) * c->channels * c->image_size *
                  c->image_size;
    v->values = (size_t)rc_batch_clips(&c->loss, c->batch) * clip;
    v->host = rc_xmalloc(v->values * sizeof(float));
    v->frames = be->alloc(v->values * sizeof(float));
    v->tuples = rc_xmalloc((size_t)c->batch * sizeof *v->tuples);
    if (verbose)
        rc_log("validation: %d batch(es) of %d tuples of %s every %d steps",
               c->val_batches, c->batch,
               strcmp(c->source, "shards") ? "held-out synthetic clips"
                                           : "the held-out sequences",
               c->val_every);
    *out = v;
    return 0;
}

/* Frames of validation batch i into v->host. */
static int load_batch(rc_validation *v, int i) {
#ifdef RC_HAVE_VIDEO
    if (v->loader) return rc_loader_copy_batch(v->loader, i, v->host);
#endif
    rc_train_render_validation(v->cfg, i, v->host);
    return 0;
}

double rc_validation_loss(rc_validation *v, rc_model *m) {
    const rc_config *c = v->cfg;
    double sum = 0;
    for (int i = 0; i < c->val_batches; i++) {
        if (load_batch(v, i) != 0) return NAN;
        if (rc_train_plan_validation(c, i, v->tuples, &v->plan) != 0) return NAN;
        v->be->to_device(v->frames, v->host, v->values * sizeof(float));
        sum += rc_model_step(m, &v->plan, v->frames, &c->loss, 0, NULL);
    }
    return sum / c->val_batches;
}

void rc_validation_close(rc_validation *v) {
    if (!v) return;
#ifdef RC_HAVE_VIDEO
    if (v->loader) rc_loader_destroy(v->loader);
    if (v->dataset) rc_dataset_close(v->dataset);
#endif
    rc_plan_free(&v->plan);
    free(v->tuples);
    v->be->free(v->frames);
    free(v->host);
    free(v);
}
