/* comm_internal.h: the parts of a communicator that comm.c (environment,
 * buckets, the gradient subscription) shares with the MPI and NCCL
 * transports. */
#ifndef RECOMPOSE_COMM_INTERNAL_H
#define RECOMPOSE_COMM_INTERNAL_H

#include "recompose/comm.h"

typedef struct rc_nccl rc_nccl; /* kernels/comm_nccl.h */

typedef struct {
    size_t offset, n;   /* range of the flat gradient buffer, in floats */
    size_t ready;       /* floats written by the backward pass so far */
    int started;        /* reduction issued */
} rc_bucket;

struct rc_comm {
    const char *kind;          /* "single", "mpi", "nccl" */
    int rank, size, local_rank;
    int use_gpu;

    /* gradients */
    const rc_backend *be;      /* the attached model's */
    float *grads;
    size_t n_grads;
    rc_bucket *buckets;        /* [0] ends the buffer: the first finished */
    int n_buckets, next_bucket;
    int active;                /* between grads_begin and grads_end */
    void *cuda_stream;

    /* fault injection (tests) */
    int fault_rank;
    int64_t fault_step;
    char fault_kind[16];

    void *mpi;                 /* transport state, owned by comm_mpi.c */
    rc_nccl *nccl;             /* the CUDA plugin's NCCL transport */
};

#ifdef RC_HAVE_MPI
/* comm_mpi.c. init sets rank, size and local_rank. */
int rc_mpi_init(rc_comm *c, int expected_size);
void rc_mpi_finalize(rc_comm *c);
void rc_mpi_abort(rc_comm *c);
double rc_mpi_sum(rc_comm *c, double v);
void rc_mpi_max_u64(rc_comm *c, uint64_t *v, int n);
void rc_mpi_broadcast(rc_comm *c, void *buf, size_t bytes, int root);
/* Sum a host buffer over the ranks in place, without waiting. */
void rc_mpi_reduce_start(rc_comm *c, int bucket, float *buf, size_t n);
void rc_mpi_reduce_progress(rc_comm *c);
void rc_mpi_reduce_wait(rc_comm *c);
#endif

#endif
