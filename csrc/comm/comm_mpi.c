/* comm_mpi.c: the MPI transport (built when CMake finds MPI).
 *
 * Gradients of the CPU backend live in host memory: each bucket is summed
 * in place with MPI_Iallreduce as soon as the backward pass has written it,
 * and MPI_Testall at every later hook lets the library progress it while
 * the backward pass goes on. The NCCL transport uses this one for the
 * host-side collectives and to broadcast its unique id.
 */
#include "comm_internal.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "recompose/common.h"

typedef struct {
    int we_initialised;          /* MPI_Init was ours, so is MPI_Finalize */
    MPI_Request *requests;       /* one per bucket */
    int n_requests;
} mpi_state;

/* Every failing MPI call ends the job: a rank that stops answering leaves
 * the others waiting in the next collective. */
static void check_mpi(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fprintf(stderr, "recompose: %s failed: %s\n", what, msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* Ranks on this node: the size of the shared-memory sub-communicator. */
static int node_local_rank(void) {
    MPI_Comm node;
    int local = 0;
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0,
                                  MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    MPI_Comm_rank(node, &local);
    MPI_Comm_free(&node);
    return local;
}

/* rc_train frees its communicator (MPI_Finalize) when it ends cleanly; this
 * finalizes MPI at exit where a run ended otherwise without aborting. A rank
 * that fails calls MPI_Abort instead and never gets here. */
static void finalize_at_exit(void) {
    int initialised = 0, finalized = 0;
    MPI_Initialized(&initialised);
    MPI_Finalized(&finalized);
    if (initialised && !finalized) MPI_Finalize();
}

int rc_mpi_init(rc_comm *c, int expected_size) {
    int initialised = 0, provided = 0;
    MPI_Initialized(&initialised);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized)
        return rc_set_error("MPI was shut down by an earlier training run in "
                            "this process: under mpirun, a process trains "
                            "once");
    if (!initialised &&
        MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return rc_set_error("MPI_Init failed");
    /* Failures end the job with a message rather than returning codes that
     * a rank could ignore while its peers wait. */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    if (c->size != expected_size) {
        /* e.g. srun without MPI support (--mpi=pmix): every process is a
         * singleton rank 0 and would write the same checkpoints */
        int size = c->size;
        if (!initialised) MPI_Finalize();
        return rc_set_error("the launcher announced %d ranks but MPI sees %d: "
                            "start with mpirun, or srun --mpi=pmix (see "
                            "`srun --mpi=list`) with an MPI built for Slurm",
                            expected_size, size);
    }
    c->local_rank = node_local_rank();
    mpi_state *s = rc_xcalloc(1, sizeof *s);
    s->we_initialised = !initialised;
    if (s->we_initialised) atexit(finalize_at_exit);
    c->mpi = s;
    return 0;
}

void rc_mpi_finalize(rc_comm *c) {
    mpi_state *s = c->mpi;
    free(s->requests);
    if (s->we_initialised) {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }
    free(s);
    c->mpi = NULL;
}

void rc_mpi_abort(rc_comm *c) {
    (void)c;
    MPI_Abort(MPI_COMM_WORLD, 1);
}

double rc_mpi_sum(rc_comm *c, double v) {
    (void)c;
    double out = 0;
    check_mpi(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
              "MPI_Allreduce (loss)");
    return out;
}

void rc_mpi_max_u64(rc_comm *c, uint64_t *v, int n) {
    (void)c;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_UINT64_T, MPI_MAX,
                            MPI_COMM_WORLD),
              "MPI_Allreduce (consistency check)");
}

void rc_mpi_broadcast(rc_comm *c, void *buf, size_t bytes, int root) {
    (void)c;
    /* MPI counts are int: send in pieces of at most 1 GiB */
    char *p = buf;
    while (bytes > 0) {
        int n = bytes > (1u << 30) ? (1 << 30) : (int)bytes;
        check_mpi(MPI_Bcast(p, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
        p += n;
        bytes -= (size_t)n;
    }
}

static void ensure_requests(mpi_state *s, int n) {
    if (s->n_requests >= n) return;
    s->requests = realloc(s->requests, (size_t)n * sizeof *s->requests);
    if (!s->requests) {
        rc_log("out of memory for %d MPI requests", n);
        exit(2);
    }
    for (int i = s->n_requests; i < n; i++) s->requests[i] = MPI_REQUEST_NULL;
    s->n_requests = n;
}

void rc_mpi_reduce_start(rc_comm *c, int bucket, float *buf, size_t n) {
    mpi_state *s = c->mpi;
    ensure_requests(s, c->n_buckets);
    if (n > (size_t)2147483647) {
        /* buckets are cut at parameter boundaries; one parameter of 2^31
         * floats would need MPI 4 large counts */
        fprintf(stderr, "recompose: gradient bucket of %zu floats exceeds "
                        "MPI's int count\n", n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM,
                             MPI_COMM_WORLD, &s->requests[bucket]),
              "MPI_Iallreduce (gradients)");
}

void rc_mpi_reduce_progress(rc_comm *c) {
    mpi_state *s = c->mpi;
    int done = 0;
    if (s->n_requests)
        check_mpi(MPI_Testall(s->n_requests, s->requests, &done,
                              MPI_STATUSES_IGNORE),
                  "MPI_Testall (gradients)");
}

void rc_mpi_reduce_wait(rc_comm *c) {
    mpi_state *s = c->mpi;
    if (s->n_requests)
        check_mpi(MPI_Waitall(s->n_requests, s->requests, MPI_STATUSES_IGNORE),
                  "MPI_Waitall (gradients)");
}
