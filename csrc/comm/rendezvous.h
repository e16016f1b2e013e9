/* rendezvous.h: ranks started without MPI (torchrun-style environment, or
 * srun without an MPI) agree on a few bytes from rank 0: the NCCL unique id,
 * as llm.c does. Internal to csrc/comm/.
 *
 * Two ways to meet, both plain POSIX:
 *   tcp://HOST:PORT  rank 0 listens on PORT; the others connect to HOST
 *                    (torchrun's MASTER_ADDR and MASTER_PORT + 1: its own
 *                    store listens on MASTER_PORT);
 *   file:///PATH     rank 0 writes PATH atomically on a file system every
 *                    rank sees; each rank acknowledges beside it and rank 0
 *                    removes the files once all have read.
 * Rank 0 returns only when every rank has arrived, so a missing peer is an
 * error here ("rank 2 of 4 did not arrive within 300 s") rather than a hang
 * inside ncclCommInitRank. The others return once they hold rank 0's bytes.
 * A token (the job's id, or "") is checked on both sides so that a file or
 * listener left by another run is refused.
 */
#ifndef RC_RENDEZVOUS_H
#define RC_RENDEZVOUS_H

#include <stddef.h>

typedef struct {
    char where[512];   /* "tcp://HOST:PORT" or "file:///PATH" */
    char token[128];   /* the job's identity: both sides must agree */
    double timeout_s;  /* how long to wait for the others */
} rc_rendezvous;

/* From the environment: RC_RENDEZVOUS (tcp://... or file://...), else
 * MASTER_ADDR and MASTER_PORT (tcp); the token from TORCHELASTIC_RUN_ID or
 * SLURM_JOB_ID.SLURM_STEP_ID; RC_RENDEZVOUS_TIMEOUT seconds (default 300).
 * Returns 1 when an address was found, 0 when none is set. */
int rc_rendezvous_from_env(rc_rendezvous *r);

/* Every rank calls it; rank 0's `bytes` bytes at data end up in every
 * rank's data. Rank 0 with data NULL failed before it had anything to
 * share: the others are told so (rather than waiting out the timeout), and
 * every rank returns -1. 0, or -1 with the error set (naming the missing
 * ranks, the address and what to check). */
int rc_rendezvous_share(const rc_rendezvous *r, int rank, int world, void *data,
                        size_t bytes);

#endif
