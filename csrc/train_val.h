/* train_val.h: the validation loss of a training run (private to csrc/;
 * train.c is the user). See train_val.c for what is held out and why the
 * pass does not change what the run trains. */
#ifndef RC_TRAIN_VAL_H
#define RC_TRAIN_VAL_H

#include "recompose/backend.h"
#include "recompose/config.h"
#include "recompose/model.h"

typedef struct rc_validation rc_validation;

/* *out = NULL when validation is off (train.val_every = 0, or a dataset
 * that holds no sequence out: said when verbose). 0, or -1 with the error
 * set. */
int rc_validation_open(rc_validation **out, const rc_config *c,
                       const rc_backend *be, int verbose);
/* The mean loss of the model over the validation batches (NAN when a batch
 * cannot be read or the loss is not finite). */
double rc_validation_loss(rc_validation *v, rc_model *m);
void rc_validation_close(rc_validation *v);

#endif
