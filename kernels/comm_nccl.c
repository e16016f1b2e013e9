/* comm_nccl.c: the NCCL transport of the CUDA plugin (built when CMake finds
 * CUDA and NCCL); see comm_nccl.h for its contract with the communicator.
 *
 * Gradient buckets are summed with ncclAllReduce on a stream of their own,
 * so the reduction of the head and LSTM gradients runs while the compute
 * stream is still in the convolution backward. Each bucket waits for the
 * gradient kernels that wrote it by an event on the compute stream.
 *
 * Without MPI it also carries the communicator's few host collectives (the
 * loss, config and weight hashes, the stop flag) through a small device
 * buffer: they are rare (per step: the loss) and tiny.
 *
 * NCCL reports some failures (a peer that died, a network error) only
 * asynchronously: the wait polls ncclCommGetAsyncError so a broken job ends
 * with a message instead of hanging in cudaStreamSynchronize.
 */
#include "comm_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recompose/common.h"

_Static_assert(sizeof(ncclUniqueId) == RC_NCCL_ID_BYTES,
               "RC_NCCL_ID_BYTES must be sizeof(ncclUniqueId)");

struct rc_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t ready, done;
    void *staging;        /* device copy of host collectives' values */
    size_t staging_bytes;
};

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

int rc_nccl_unique_id(unsigned char id[RC_NCCL_ID_BYTES]) {
    ncclUniqueId u;
    NCCL_OK(ncclGetUniqueId(&u), "ncclGetUniqueId");
    memcpy(id, &u, sizeof u);
    return 0;
}

static int join(rc_nccl *t, const unsigned char id[RC_NCCL_ID_BYTES], int rank,
                int size, int device) {
    CUDA_OK(cudaSetDevice(device), "cudaSetDevice");
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    NCCL_OK(ncclCommInitRank(&t->comm, size, u, rank), "ncclCommInitRank");
    CUDA_OK(cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking),
            "cudaStreamCreate (gradient reduction)");
    CUDA_OK(cudaEventCreateWithFlags(&t->ready, cudaEventDisableTiming),
            "cudaEventCreate");
    CUDA_OK(cudaEventCreateWithFlags(&t->done, cudaEventDisableTiming),
            "cudaEventCreate");
    return 0;
}

rc_nccl *rc_nccl_create(const unsigned char id[RC_NCCL_ID_BYTES], int rank,
                        int size, int device) {
    rc_nccl *t = rc_xcalloc(1, sizeof *t);
    if (join(t, id, rank, size, device) != 0) {
        rc_nccl_free(t);
        return NULL;
    }
    return t;
}

void rc_nccl_free(rc_nccl *t) {
    if (!t) return;
    if (t->stream) cudaStreamSynchronize(t->stream);
    if (t->comm) ncclCommDestroy(t->comm);
    if (t->ready) cudaEventDestroy(t->ready);
    if (t->done) cudaEventDestroy(t->done);
    if (t->stream) cudaStreamDestroy(t->stream);
    if (t->staging) cudaFree(t->staging);
    free(t);
}

void rc_nccl_abort(rc_nccl *t) {
    if (t && t->comm) ncclCommAbort(t->comm);
    if (t) t->comm = NULL;
}

int rc_nccl_reduce_start(rc_nccl *t, void *compute_stream, float *buf, size_t n) {
    if (compute_stream) {
        CUDA_OK(cudaEventRecord(t->ready, (cudaStream_t)compute_stream),
                "cudaEventRecord");
        CUDA_OK(cudaStreamWaitEvent(t->stream, t->ready, 0), "cudaStreamWaitEvent");
    }
    NCCL_OK(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, t->comm, t->stream),
            "ncclAllReduce (gradients)");
    return 0;
}

/* Until the transport's stream is idle, watching for NCCL's asynchronous
 * errors (a peer that died) instead of blocking in a synchronize. */
static int wait_stream(rc_nccl *t) {
    const struct timespec nap = {0, 50 * 1000}; /* 50 us */
    for (;;) {
        cudaError_t e = cudaStreamQuery(t->stream);
        if (e == cudaSuccess) break;
        if (e != cudaErrorNotReady)
            return rc_set_error("gradient all-reduce: %s", cudaGetErrorString(e));
        ncclResult_t async;
        NCCL_OK(ncclCommGetAsyncError(t->comm, &async), "ncclCommGetAsyncError");
        if (async != ncclSuccess && async != ncclInProgress)
            return rc_set_error("gradient all-reduce: NCCL reports %s (a rank "
                                "died or the network failed)",
                                ncclGetErrorString(async));
        nanosleep(&nap, NULL);
    }
    return 0;
}

int rc_nccl_reduce_wait(rc_nccl *t, void *compute_stream) {
    if (wait_stream(t) != 0) return -1;
    if (compute_stream) {
        /* the update kernels on the compute stream read the sums */
        CUDA_OK(cudaEventRecord(t->done, t->stream), "cudaEventRecord");
        CUDA_OK(cudaStreamWaitEvent((cudaStream_t)compute_stream, t->done, 0),
                "cudaStreamWaitEvent");
    }
    return 0;
}

static int stage(rc_nccl *t, size_t bytes) {
    if (bytes <= t->staging_bytes) return 0;
    if (t->staging) cudaFree(t->staging);
    t->staging = NULL;
    t->staging_bytes = 0;
    CUDA_OK(cudaMalloc(&t->staging, bytes), "cudaMalloc (host collectives)");
    t->staging_bytes = bytes;
    return 0;
}

/* Wait for the collective first, polling NCCL's asynchronous errors (a
 * copy into pageable memory queued behind it would block the host in the
 * driver, where a dead peer hangs it), then copy the idle buffer back. */
static int copy_back(rc_nccl *t, void *buf, size_t bytes) {
    if (wait_stream(t) != 0) return -1;
    CUDA_OK(cudaMemcpy(buf, t->staging, bytes, cudaMemcpyDeviceToHost),
            "cudaMemcpy (host collective)");
    return 0;
}

int rc_nccl_host_allreduce(rc_nccl *t, void *buf, size_t n, int op) {
    size_t bytes = n * 8; /* double or uint64_t */
    if (stage(t, bytes) != 0) return -1;
    CUDA_OK(cudaMemcpyAsync(t->staging, buf, bytes, cudaMemcpyHostToDevice, t->stream),
            "cudaMemcpyAsync (host collective)");
    NCCL_OK(ncclAllReduce(t->staging, t->staging, n,
                          op == RC_NCCL_MAX_U64 ? ncclUint64 : ncclFloat64,
                          op == RC_NCCL_MAX_U64 ? ncclMax : ncclSum, t->comm, t->stream),
            "ncclAllReduce (host values)");
    return copy_back(t, buf, bytes);
}

int rc_nccl_host_broadcast(rc_nccl *t, void *buf, size_t bytes, int root) {
    if (stage(t, bytes) != 0) return -1;
    CUDA_OK(cudaMemcpyAsync(t->staging, buf, bytes, cudaMemcpyHostToDevice, t->stream),
            "cudaMemcpyAsync (host collective)");
    NCCL_OK(ncclBroadcast(t->staging, t->staging, bytes, ncclUint8, root, t->comm,
                          t->stream),
            "ncclBroadcast (host values)");
    return copy_back(t, buf, bytes);
}
