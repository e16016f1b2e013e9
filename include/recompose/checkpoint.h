/* checkpoint.h: training state on disk.
 *
 * A checkpoint is one safetensors file holding the model weights under their
 * PyTorch names (so safetensors / torch can load them directly), the AdamW
 * moments as "optim.m.<name>" and "optim.v.<name>", and in its metadata:
 * format version, step, optimizer update count, seed, the full config (INI
 * text), git commit, library versions. Data position and RNG state are
 * functions of (seed, step), so the step restores them exactly.
 */
#ifndef RECOMPOSE_CHECKPOINT_H
#define RECOMPOSE_CHECKPOINT_H

#include <stdint.h>

#include "recompose/config.h"
#include "recompose/model.h"
#include "recompose/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Save model + optimizer (optimizer may be NULL) after `step` completed steps. */
int rc_checkpoint_save(const char *path, rc_model *m, const rc_adamw *opt,
                       int64_t step, const rc_config *cfg);

/* Load into an existing model (and optimizer if not NULL). A missing tensor
 * or one of another shape is refused: "PATH: tensor NAME has shape [a,b] in
 * the checkpoint but the model expects [c,d]". *step receives the step. */
int rc_checkpoint_load(const char *path, rc_model *m, rc_adamw *opt,
                       int64_t *step);

/* Path of the newest checkpoint in DIR ("DIR/ckpt-%08d.safetensors"), or
 * NULL if none. Caller frees. */
char *rc_checkpoint_latest(const char *dir);
/* Path for a step: DIR/ckpt-%08lld.safetensors. Caller frees. */
char *rc_checkpoint_path(const char *dir, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
