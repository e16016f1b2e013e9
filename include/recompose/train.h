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
    const char *resume;      /* checkpoint file or directory, "auto" (the
                                newest checkpoint of out_dir when it holds
                                one, else a fresh start), or NULL */
    int force;               /* out_dir holds another run: move its files
                                into out_dir/previous-N/ instead of refusing */
    int64_t stop_after;      /* stop after this global step (< steps), 0 = no */
    int quiet;               /* no progress line */
} rc_train_options;

/* Why rc_train stopped, and the exit status `recompose train` gives for it
 * (rc_train_exit_status). docs/faults.md lists the faults behind each. */
typedef enum {
    RC_STOP_DONE = 0,    /* reached train.steps or --stop-after        exit 0 */
    RC_STOP_ERROR,       /* bad config, data, checkpoint to resume     exit 1 */
    RC_STOP_NONFINITE,   /* train.max_bad_steps non-finite steps in a row,
                            checkpoint from before them written        exit 3 */
    RC_STOP_STORAGE,     /* output directory unwritable, full, or a
                            write failed (nothing truncated is left)   exit 4 */
    RC_STOP_SIGNAL       /* SIGTERM, SIGINT or SIGUSR1: step finished,
                            checkpoint written, resume with --resume  exit 75 */
} rc_stop_reason;

#define RC_EXIT_ERROR 1
#define RC_EXIT_USAGE 2
#define RC_EXIT_NONFINITE 3
#define RC_EXIT_STORAGE 4
#define RC_EXIT_INTERRUPTED 75  /* EX_TEMPFAIL: "try again" (resume) */
/* A second signal while stopping exits at once with 128 + the signal. */

typedef struct {
    int64_t steps_done;      /* global step reached */
    double final_loss;       /* mean loss of the last log window */
    double first_loss;       /* mean loss of the first log window */
    double val_loss;         /* the last validation loss (NAN: none) */
    double seconds;
    int64_t skipped_steps;   /* non-finite losses */
    char last_checkpoint[512];
    rc_stop_reason stop;
    int signal;              /* RC_STOP_SIGNAL: which signal */
    int rank, world;         /* this process among the data-parallel ranks
                                (rank 0 writes; 0 and 1 when alone) */
} rc_train_result;

/* Exit status of `recompose train` for a result (see rc_stop_reason). */
int rc_train_exit_status(const rc_train_result *res);

/* The kernel family OpenBLAS chose for this CPU ("Haswell", "SkylakeX",
 * "Cooperlake", ...; OPENBLAS_CORETYPE overrides its choice). Results of a
 * float32 run differ in their last bits between families. */
const char *rc_blas_kernels(void);

/* train.blas_kernels: when it names a family other than the one OpenBLAS
 * runs, set OPENBLAS_CORETYPE and execute this program again with argv
 * (OpenBLAS reads the variable when it loads): does not return then.
 * Returns 0 when the family is already right (or "auto"), -1 with an error
 * when the CPU cannot run it. */
int rc_pin_blas_kernels(const rc_config *c, char **argv);

/* Apply train.threads to OpenMP and OpenBLAS (0: rc_default_threads, the
 * process's CPU affinity or OMP_NUM_THREADS). */
void rc_set_threads(int threads);

/* Frames and plan of training step `step`: a pure function of (config, step).
 * frames: [rc_batch_clips][T+1][C][S][S] host buffer (B clips, 2B with pan
 * twins); plan is (re)built. */
int rc_make_train_batch(const rc_config *c, int64_t step, float *frames,
                        rc_batch_plan *plan);

/* Train. Returns 0 when done or stopped by a signal (res->stop says which),
 * -1 on failure (error set, res->stop the kind). While it runs, SIGTERM,
 * SIGINT and SIGUSR1 ask it to stop after the current step with a
 * checkpoint (a second one exits at once), and SIGXFSZ is ignored so that
 * a file size limit is a write error (EFBIG), not a crash. The previous
 * handlers are restored on return. The communicator (MPI, NCCL) is shut
 * down when training ends cleanly on every rank; under mpirun a process
 * trains once.
 *
 * Fault injection for tests: the environment variable RC_INJECT_NONFINITE
 * = "S[-E][,...]" makes the gradient of those 0-based steps NaN. */
int rc_train(const rc_config *c, const rc_train_options *opt,
             rc_train_result *res);

#ifdef __cplusplus
}
#endif
#endif
