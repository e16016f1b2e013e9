/* comm.h: data-parallel communication between training processes (ranks).
 *
 * One interface, three implementations (csrc/comm/):
 *   single  world size 1, no MPI at all (always built);
 *   mpi     CPU backend: gradients summed with MPI_Allreduce (RC_HAVE_MPI);
 *   nccl    CUDA backend: ncclAllReduce on its own stream, the ncclUniqueId
 *           carried by MPI or, without MPI, by a TCP or file rendezvous
 *           (csrc/comm/rendezvous.h), each rank bound to GPU local_rank
 *           (RC_HAVE_NCCL).
 *
 * Ranks start with mpirun or srun (MPI), or, for GPU ranks, torchrun or
 * srun with RC_RENDEZVOUS; rc_comm_create reads the launcher's environment
 * (OMPI_COMM_WORLD_SIZE, PMI_SIZE, SLURM_STEP_NUM_TASKS, WORLD_SIZE) and
 * only calls MPI_Init when the process is one of several MPI ranks.
 *
 * Gradients are reduced in buckets while the backward pass still runs:
 * rc_comm_attach() subscribes to the model's gradient announcements
 * (rc_model_on_grad_ready), each of which marks a parameter's range of the
 * flat gradient buffer ready; the backend is not touched, so its fused ops
 * serve every world size. When a whole
 * bucket is ready it is reduced (MPI_Iallreduce, or ncclAllReduce on the
 * communication stream). Buckets are cut at parameter boundaries from the
 * end of the buffer, the order in which the backward pass finishes them,
 * and are always started in that order, so every rank issues the same
 * collectives in the same order.
 *
 * A step:   rc_comm_grads_begin(c);
 *           loss = rc_model_step(m, ..., backward = 1, ...);
 *           loss = rc_comm_grads_end(c, loss);   mean gradient and loss
 * After rc_comm_grads_end every rank holds the same gradient: the sum over
 * ranks divided by the world size, which equals the gradient of one process
 * training on the union of the ranks' batches (each rank's loss is scaled
 * by 1/B_rank). The loss is the mean over ranks, NAN if any rank's is.
 */
#ifndef RECOMPOSE_COMM_H
#define RECOMPOSE_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "recompose/model.h"
#include "recompose/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rc_comm rc_comm;

/* Create the communicator of this process. use_gpu = 1 picks NCCL when the
 * world has several ranks (and binds this rank to GPU local_rank via
 * rc_cuda_configure, so call it before rc_backend_cuda()); 0 picks MPI.
 * One communicator per process: a second call returns the first (its
 * use_gpu must match). NULL with an error when the launcher started several
 * ranks but this build has no MPI (or no NCCL for use_gpu), or MPI fails. */
rc_comm *rc_comm_create(int use_gpu);

/* Shut down after a successful run: wait for outstanding work, finalize
 * MPI. Collective: every rank must call it (rc_train does, at its end). */
void rc_comm_free(rc_comm *c);

/* A rank that cannot go on: print "recompose: rank R of W failed: MSG" and
 * end the whole job (MPI_Abort), so the other ranks do not wait forever in
 * the next collective. With world size 1 it only returns. */
void rc_comm_fail(rc_comm *c, const char *msg);

const char *rc_comm_kind(const rc_comm *c);  /* "single", "mpi", "nccl" */
int rc_comm_rank(const rc_comm *c);
int rc_comm_size(const rc_comm *c);
/* The CUDA device ordinal of this rank: its local rank, or 0 where the
 * process sees a single GPU (the launcher gave each rank its own). */
int rc_comm_device(const rc_comm *c);

/* ---- gradients -------------------------------------------------------------
 * rc_comm_attach: reduce model m's gradients. The buckets are cut from its
 * parameter table (about bucket_bytes each; 0 = RC_COMM_BUCKET_BYTES or
 * 4 MiB) and filled as its backward pass announces finished gradients. */
int rc_comm_attach(rc_comm *c, rc_model *m, size_t bucket_bytes);
void rc_comm_grads_begin(rc_comm *c);
double rc_comm_grads_end(rc_comm *c, double local_loss);

/* CUDA stream (cudaStream_t) the backend computes on. With it, buckets are
 * ordered after the gradient kernels by events; without it (NULL, the
 * default) the host waits for the compute stream before each bucket. */
void rc_comm_set_cuda_stream(rc_comm *c, void *stream);

/* ---- small host-side collectives -------------------------------------------- */
double rc_comm_sum(rc_comm *c, double v);
/* 0 if every rank passed the same value; else -1 with an error naming
 * `what` and the ranks' minimum and maximum. */
int rc_comm_check_same(rc_comm *c, uint64_t value, const char *what);
/* Host memory, from rank `root` to all. */
void rc_comm_broadcast(rc_comm *c, void *buf, size_t bytes, int root);

/* FNV-1a of a buffer, for rc_comm_check_same. */
uint64_t rc_comm_hash(const void *buf, size_t bytes);

/* Fault injection for the tests: with RC_FAULT_RANK=r (and RC_FAULT_STEP=k,
 * default 1) rank r fails at step k: RC_FAULT_KIND=error (default) returns
 * -1 with an error, kill dies by SIGKILL. 0 everywhere else. */
int rc_comm_fault_point(const rc_comm *c, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
