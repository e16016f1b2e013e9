/* train.h: the training loop. */
#ifndef RECOMPOSE_TRAIN_H
#define RECOMPOSE_TRAIN_H

#include <stdint.h>

#include "recompose/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *out_dir;     /* checkpoints, metrics.jsonl, config.ini */
    const char *resume;      /* checkpoint file or directory, or NULL */
    int64_t stop_after;      /* stop after this global step (< steps), 0 = no */
    int quiet;               /* no progress line */
} rc_train_options;

typedef struct {
    int64_t steps_done;      /* global step reached */
    double final_loss;       /* mean loss of the last log window */
    double first_loss;       /* mean loss of the first log window */
    double seconds;
    int64_t skipped_steps;   /* non-finite losses */
    char last_checkpoint[512];
} rc_train_result;

/* Apply train.threads to OpenMP and OpenBLAS. */
void rc_set_threads(int threads);

/* Frames and plan of training step `step`: a pure function of (config, step).
 * frames: [B][T+1][C][S][S] host buffer; plan is (re)built. */
int rc_make_train_batch(const rc_config *c, int64_t step, float *frames,
                        rc_batch_plan *plan);

int rc_train(const rc_config *c, const rc_train_options *opt,
             rc_train_result *res);

#ifdef __cplusplus
}
#endif
#endif
