/* comm_nccl.h: the NCCL transport, as the CUDA plugin offers it to the
 * communicator (csrc/comm/comm.c). Internal: an interface between two link
 * units of one build, not a public API.
 *
 * Everything the transport needs comes in as arguments (the unique id, the
 * rank, the world size, the GPU, the compute stream), so the plugin holds no
 * pointer into the communicator and calls none of its functions: errors come
 * back as -1 (or NULL) with rc_set_error's message, and the communicator
 * decides what a failure ends.
 *
 * Bootstrap: one rank calls rc_nccl_unique_id; the communicator carries the
 * bytes to every rank (MPI broadcast, or a rendezvous without MPI); each rank
 * then calls rc_nccl_create with them.
 */
#ifndef RECOMPOSE_COMM_NCCL_H
#define RECOMPOSE_COMM_NCCL_H

#include <stddef.h>

/* sizeof(ncclUniqueId) (NCCL_UNIQUE_ID_BYTES; comm_nccl.c checks it) */
#define RC_NCCL_ID_BYTES 128

typedef struct rc_nccl rc_nccl;

enum { RC_NCCL_SUM_F64 = 0, RC_NCCL_MAX_U64 = 1 };

/* The plugin's NCCL entry points, written once: the forwarding functions of
 * kernels/cuda_loader.c are generated from it. X(ret, name, params, args,
 * failure value); V(name, params, args) for those returning nothing. */
#define RC_NCCL_FUNCS(X, V)                                                     \
    /* a fresh id, on one rank: 0, or -1 (error set) */                         \
    X(int, rc_nccl_unique_id, (unsigned char id[RC_NCCL_ID_BYTES]), (id), -1)   \
    /* join the clique on GPU `device`; NULL (error set) on failure */          \
    X(rc_nccl *, rc_nccl_create,                                                \
      (const unsigned char id[RC_NCCL_ID_BYTES], int rank, int size,            \
       int device),                                                             \
      (id, rank, size, device), NULL)                                           \
    V(rc_nccl_free, (rc_nccl * t), (t))                                         \
    /* end every collective of this rank now (a peer failed) */                 \
    V(rc_nccl_abort, (rc_nccl * t), (t))                                        \
    /* Sum buf[0..n) over the ranks in place, without waiting. The reduction    \
     * is ordered after the work already queued on compute_stream (a           \
     * cudaStream_t); with NULL the caller has synchronized the device. */      \
    X(int, rc_nccl_reduce_start,                                                \
      (rc_nccl * t, void *compute_stream, float *buf, size_t n),                \
      (t, compute_stream, buf, n), -1)                                          \
    /* Wait for every started reduction; compute_stream (if not NULL) then     \
     * waits for them too. -1 (error set) when NCCL reports a failure. */       \
    X(int, rc_nccl_reduce_wait, (rc_nccl * t, void *compute_stream),           \
      (t, compute_stream), -1)                                                  \
    /* Host values over the ranks, in place, waiting (the communicator's       \
     * small collectives when there is no MPI): RC_NCCL_SUM_F64 sums n          \
     * doubles, RC_NCCL_MAX_U64 takes the maximum of n uint64_t. */             \
    X(int, rc_nccl_host_allreduce, (rc_nccl * t, void *buf, size_t n, int op),  \
      (t, buf, n, op), -1)                                                      \
    /* bytes of root's buf to every rank, waiting */                            \
    X(int, rc_nccl_host_broadcast, (rc_nccl * t, void *buf, size_t bytes,       \
                                    int root),                                  \
      (t, buf, bytes, root), -1)

#define X(ret, name, params, args, fail) ret name params;
#define V(name, params, args) void name params;
RC_NCCL_FUNCS(X, V)
#undef X
#undef V

#endif
