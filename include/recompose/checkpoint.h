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

/* As rc_checkpoint_save, also recording `loss` (the mean training loss
 * since the previous checkpoint; NAN = unknown) in the metadata "loss",
 * which rc_checkpoint_prune uses to find the best checkpoint. */
int rc_checkpoint_save_with_loss(const char *path, rc_model *m,
                                 const rc_adamw *opt, int64_t step,
                                 const rc_config *cfg, double loss);

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

/* Data-parallel training: later saves record "world_size" (ranks) and
 * "global_batch" (train.batch x ranks) in the metadata, which a resume
 * checks. Default 1. */
void rc_checkpoint_set_world_size(int world_size);

/* Checkpoint hygiene.
 *
 * A file that cannot be read as a checkpoint (checksum mismatch, truncated,
 * bad header or metadata) is "damaged": rc_checkpoint_load's error then
 * names it and, for a ckpt-N file, offers the newest good checkpoint before
 * it in the same directory. */

/* Read PATH completely (verifying its checksum) and check that it is a
 * recompose checkpoint. 0 or -1 (error names the file and the damage). */
int rc_checkpoint_verify(const char *path);

/* Newest checkpoint of DIR with a step below `before_step` that verifies,
 * or NULL. Caller frees. */
char *rc_checkpoint_previous_good(const char *dir, int64_t before_step);

/* Delete the checkpoints of DIR except the newest `keep_last` and the best
 * one (lowest metadata "loss"). keep_last <= 0 keeps everything. Returns
 * the number deleted, or -1 (error set). */
int rc_checkpoint_prune(const char *dir, int keep_last);

/* Remove temporary files (ckpt-*.safetensors.tmp.PID) that a killed writer
 * left behind, i.e. those whose PID is no longer running. Returns the
 * number removed. */
int rc_checkpoint_remove_stale_temps(const char *dir);

#ifdef __cplusplus
}
#endif
#endif
