/* comm_nccl.c: the NCCL transport for the CUDA backend (built when CMake
 * finds CUDA, NCCL and MPI).
 *
 * MPI starts the ranks, tells each its node-local rank (its GPU) and
 * broadcasts rank 0's ncclUniqueId. Gradient buckets are summed with
 * ncclAllReduce on a stream of their own, so the reduction of the head and
 * LSTM gradients runs while the compute stream is still in the convolution
 * backward. Each bucket waits for the gradient kernels that wrote it: by an
 * event on the compute stream when rc_comm_set_cuda_stream gave it, else by
 * a host wait on the backend (rc_backend.synchronize).
 *
 * NCCL reports some failures (a peer that died, a network error) only
 * asynchronously: the wait polls ncclCommGetAsyncError so a broken job ends
 * with a message instead of hanging in cudaStreamSynchronize.
 */
#include "comm_internal.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t ready, done;
    int device;
} nccl_state;

#define CUDA_OK(call, what)                                                  \
    do {                                                                     \
        cudaError_t e_ = (call);                                             \
        if (e_ != cudaSuccess)                                               \
            return rc_set_error("%s: %s (%s:%d)", what, cudaGetErrorString(e_), \
                                __FILE__, __LINE__);                         \
    } while (0)

#define NCCL_OK(call, what)                                                  \
    do {                                                                     \
        ncclResult_t r_ = (call);                                            \
        if (r_ != ncclSuccess)                                               \
            return rc_set_error("%s: %s (%s:%d)", what, ncclGetErrorString(r_), \
                                __FILE__, __LINE__);                         \
    } while (0)

/* Inside a bucket launch there is no error return: end the job. */
static void fail_now(rc_comm *c) { rc_comm_fail(c, rc_last_error()); }

static int bind_device(rc_comm *c, nccl_state *s) {
    int n = 0;
    CUDA_OK(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    if (n < 1) return rc_set_error("no CUDA device on this node");
    if (n > 1 && c->local_rank >= n)
        return rc_set_error("node-local rank %d but this node has %d GPU(s): "
                            "start at most %d ranks per node",
                            c->local_rank, n, n);
    s->device = rc_comm_device(c);
    CUDA_OK(cudaSetDevice(s->device), "cudaSetDevice");
    /* the backend must compute on the same GPU */
    rc_cuda_options o;
    rc_cuda_options_default(&o);
    o.device = s->device;
    return rc_cuda_configure(&o);
}

int rc_nccl_init(rc_comm *c) {
    nccl_state *s = rc_xcalloc(1, sizeof *s);
    c->nccl = s;
    if (bind_device(c, s) != 0) return -1;
    ncclUniqueId id;
    if (c->rank == 0) NCCL_OK(ncclGetUniqueId(&id), "ncclGetUniqueId");
    rc_comm_broadcast(c, &id, sizeof id, 0);
    NCCL_OK(ncclCommInitRank(&s->comm, c->size, id, c->rank), "ncclCommInitRank");
    CUDA_OK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking),
            "cudaStreamCreate (gradient reduction)");
    CUDA_OK(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming),
            "cudaEventCreate");
    CUDA_OK(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming),
            "cudaEventCreate");
    return 0;
}

void rc_nccl_free(rc_comm *c) {
    nccl_state *s = c->nccl;
    if (s->stream) cudaStreamSynchronize(s->stream);
    if (s->comm) ncclCommDestroy(s->comm);
    if (s->ready) cudaEventDestroy(s->ready);
    if (s->done) cudaEventDestroy(s->done);
    if (s->stream) cudaStreamDestroy(s->stream);
    free(s);
    c->nccl = NULL;
}

void rc_nccl_abort(rc_comm *c) {
    nccl_state *s = c->nccl;
    if (s && s->comm) ncclCommAbort(s->comm);
    if (s) s->comm = NULL;
}

static int launch(rc_comm *c, float *buf, size_t n) {
    nccl_state *s = c->nccl;
    if (c->cuda_stream) {
        cudaStream_t compute = (cudaStream_t)c->cuda_stream;
        CUDA_OK(cudaEventRecord(s->ready, compute), "cudaEventRecord");
        CUDA_OK(cudaStreamWaitEvent(s->stream, s->ready, 0), "cudaStreamWaitEvent");
    } else {
        c->be->synchronize();
    }
    NCCL_OK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, s->comm, s->stream),
            "ncclAllReduce (gradients)");
    return 0;
}

void rc_nccl_reduce_start(rc_comm *c, int bucket, float *buf, size_t n) {
    (void)bucket;
    if (launch(c, buf, n) != 0) fail_now(c);
}

int rc_nccl_reduce_wait(rc_comm *c) {
    nccl_state *s = c->nccl;
    const struct timespec nap = {0, 50 * 1000}; /* 50 us */
    for (;;) {
        cudaError_t e = cudaStreamQuery(s->stream);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady)
            return rc_set_error("gradient all-reduce: %s", cudaGetErrorString(e));
        ncclResult_t async;
        NCCL_OK(ncclCommGetAsyncError(s->comm, &async), "ncclCommGetAsyncError");
        if (async != ncclSuccess && async != ncclInProgress)
            return rc_set_error("gradient all-reduce: NCCL reports %s (a rank "
                                "died or the network failed)",
                                ncclGetErrorString(async));
        nanosleep(&nap, NULL);
    }
    if (c->cuda_stream) {
        /* the update kernels on the compute stream read the sums */
        CUDA_OK(cudaEventRecord(s->done, s->stream), "cudaEventRecord");
        CUDA_OK(cudaStreamWaitEvent((cudaStream_t)c->cuda_stream, s->done, 0),
                "cudaStreamWaitEvent");
    }
    return 0;
}
