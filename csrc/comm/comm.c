/* comm.c: the communicator every build has: launcher detection, the
 * single-process case, and gradient buckets filled as the model announces
 * finished weight gradients (rc_model_on_grad_ready).
 *
 * The transports (comm_mpi.c; the CUDA plugin's NCCL transport,
 * kernels/comm_nccl.h) only move bytes; which range is
 * reduced when, and in what order, is decided here, identically on every
 * rank, because collectives must be issued in the same order everywhere.
 */
#include "comm_internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "rendezvous.h"
#ifdef RC_HAVE_NCCL
#include "comm_nccl.h"
#endif

/* About 4 buckets for the paper model (18 MB of gradients): small enough
 * that only the last (the first convolutions) waits after the backward pass,
 * large enough that each all-reduce runs at bandwidth (docs/scaling.md). */
#define DEFAULT_BUCKET_BYTES (4u << 20)

/* One communicator per process (MPI is initialised once). */
static rc_comm *the_comm;

/* ---- launcher environment --------------------------------------------------- */

static int env_int(const char *name, int fallback) {
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end;
    long v = strtol(s, &end, 10);
    return *end ? fallback : (int)v;
}

/* World size the launcher announced: Open MPI's mpirun, Hydra (MPICH,
 * Intel MPI), a Slurm job step started by srun, or torchrun (WORLD_SIZE).
 * The batch script itself has SLURM_NTASKS but no SLURM_STEP_NUM_TASKS: it
 * is not a rank. */
/* Started by torchrun's agent (also inside an srun step, whose Slurm
 * variables then describe the agents, not the ranks). */
static int under_torchrun(void) {
    return getenv("TORCHELASTIC_RUN_ID") || getenv("LOCAL_WORLD_SIZE");
}

static int launcher_world_size(const char **who) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
                                       "SLURM_STEP_NUM_TASKS", "WORLD_SIZE"};
    if (under_torchrun() && env_int("WORLD_SIZE", 0) > 0) {
        *who = "WORLD_SIZE";
        return env_int("WORLD_SIZE", 1);
    }
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        int n = env_int(vars[i], 0);
        if (n > 0) {
            *who = vars[i];
            return n;
        }
    }
    *who = NULL;
    return 1;
}

static int launcher_rank(void) {
    if (under_torchrun() && env_int("RANK", -1) >= 0) return env_int("RANK", 0);
    int r = env_int("OMPI_COMM_WORLD_RANK", -1);
    if (r < 0) r = env_int("PMI_RANK", -1);
    if (r < 0) r = env_int("SLURM_PROCID", -1);
    if (r < 0) r = env_int("RANK", 0);
    return r;
}

#ifdef RC_HAVE_NCCL
/* This rank's place on its node, from the launcher (MPI computes its own). */
static int launcher_local_rank(void) {
    if (under_torchrun() && env_int("LOCAL_RANK", -1) >= 0) return env_int("LOCAL_RANK", 0);
    int r = env_int("OMPI_COMM_WORLD_LOCAL_RANK", -1);
    if (r < 0) r = env_int("SLURM_LOCALID", -1);
    if (r < 0) r = env_int("LOCAL_RANK", 0);
    return r;
}
#endif

static void read_fault_settings(rc_comm *c) {
    c->fault_rank = env_int("RC_FAULT_RANK", -1);
    c->fault_step = env_int("RC_FAULT_STEP", 1);
    const char *kind = getenv("RC_FAULT_KIND");
    snprintf(c->fault_kind, sizeof c->fault_kind, "%s",
             kind && *kind ? kind : "error");
}

/* ---- create / free ------------------------------------------------------------ */

#ifdef RC_HAVE_NCCL
/* Every rank's GPU joins one NCCL clique: rank 0 makes the id, and MPI
 * (rv NULL) or the rendezvous carries it to the others. */
/* This rank's GPU is there: 0, or -1 with the error set. */
static int check_gpu(const rc_comm *c) {
    int n = rc_cuda_device_count();
    if (n < 1) return rc_set_error("no CUDA device on this node");
    if (n > 1 && c->local_rank >= n)
        return rc_set_error("node-local rank %d but this node has %d GPU(s): "
                            "start at most %d ranks per node",
                            c->local_rank, n, n);
    return 0;
}

/* Rank 0 failed before it had an id: it still meets the others, to tell
 * them (rather than let them wait out the timeout). Returns -1. */
static int rendezvous_fail(const rc_comm *c, const rc_rendezvous *rv) {
    char why[1024];
    snprintf(why, sizeof why, "%s", rc_last_error());
    if (c->rank == 0) rc_rendezvous_share(rv, 0, c->size, NULL, RC_NCCL_ID_BYTES);
    return rc_set_error("%s", why);
}

static int init_nccl(rc_comm *c, const rc_rendezvous *rv) {
    if (check_gpu(c) != 0) return rv ? rendezvous_fail(c, rv) : -1;
    unsigned char id[RC_NCCL_ID_BYTES] = {0};
    int have_id = c->rank != 0 || rc_nccl_unique_id(id) == 0;
    if (rv) {
        if (!have_id) return rendezvous_fail(c, rv);
        if (rc_rendezvous_share(rv, c->rank, c->size, id, sizeof id) != 0) return -1;
    } else {
#ifdef RC_HAVE_MPI
        /* a collective, so that no rank waits in the broadcast for an id
         * that rank 0 could not make */
        if (rc_mpi_sum(c, have_id) != c->size)
            return have_id ? rc_set_error("rank 0 could not create the NCCL id")
                           : -1;
        rc_mpi_broadcast(c, id, sizeof id, 0);
#endif
    }
    c->nccl = rc_nccl_create(id, c->rank, c->size, rc_comm_device(c));
    return c->nccl ? 0 : -1;
}
#endif

/* GPU ranks without MPI: torchrun's environment (RANK, WORLD_SIZE,
 * LOCAL_RANK, MASTER_ADDR, MASTER_PORT), or srun's with RC_RENDEZVOUS. Any
 * world size, 1 included: a one-GPU job then trains through NCCL too. */
static int init_rendezvous(rc_comm *c, int world, const rc_rendezvous *rv) {
#ifdef RC_HAVE_NCCL
    c->size = world;
    c->rank = launcher_rank();
    c->local_rank = launcher_local_rank();
    if (c->rank < 0 || c->rank >= world)
        return rc_set_error("rank %d outside the world of %d the launcher "
                            "announced", c->rank, world);
    if (init_nccl(c, rv) != 0) return -1;
    c->kind = "nccl";
    return 0;
#else
    (void)c, (void)rv;
    return rc_set_error("%s is set for %d GPU rank(s), but this build has no "
                        "NCCL: install NCCL and rebuild with CUDA",
                        rv->where, world);
#endif
}

static int init_transport(rc_comm *c, int world, const char *who) {
    if (!c->use_gpu && !strcmp(who, "WORLD_SIZE"))
        return rc_set_error("WORLD_SIZE = %d (a torchrun-style launch): CPU ranks "
                            "are started by mpirun or srun with an MPI; torchrun "
                            "and RC_RENDEZVOUS start GPU ranks (train.device = "
                            "cuda)", world);
#ifdef RC_HAVE_MPI
    if (rc_mpi_init(c, world) != 0) return -1;
    c->kind = "mpi";
    if (!c->use_gpu) return 0;
#ifdef RC_HAVE_NCCL
    if (init_nccl(c, NULL) != 0) {
        rc_mpi_abort(c);
        return -1;
    }
    c->kind = "nccl";
    return 0;
#else
    return rc_set_error("%s = %d ranks on GPUs, but this build has no NCCL: "
                        "install NCCL (libnccl-dev) and rebuild with CUDA",
                        who, world);
#endif
#else
    (void)c;
    return rc_set_error("%s = %d: the launcher started %d ranks, but this "
                        "build has no MPI, so each would train alone; install "
                        "an MPI (libopenmpi-dev) and rebuild, run one "
                        "process, or for GPU ranks give a rendezvous "
                        "(MASTER_ADDR and MASTER_PORT, or RC_RENDEZVOUS)",
                        who, world, world);
#endif
}

rc_comm *rc_comm_create(int use_gpu) {
    if (the_comm) {
        if (the_comm->use_gpu != use_gpu) {
            rc_set_error("communicator already created for the %s; one "
                         "process trains on one kind of device",
                         the_comm->use_gpu ? "GPU" : "CPU");
            return NULL;
        }
        return the_comm;
    }
    rc_comm *c = rc_xcalloc(1, sizeof *c);
    c->kind = "single";
    c->size = 1;
    c->use_gpu = use_gpu;
    read_fault_settings(c);
    const char *who;
    int world = launcher_world_size(&who);
    rc_rendezvous rv;
    int status = 0;
#ifdef RC_HAVE_NCCL
    int nccl_built = 1;
#else
    int nccl_built = 0; /* a lone GPU run needs no NCCL: MASTER_ADDR ignored */
#endif
    if (use_gpu && rc_rendezvous_from_env(&rv) && (world > 1 || nccl_built))
        status = init_rendezvous(c, world, &rv);
    else if (world > 1)
        status = init_transport(c, world, who);
    if (status != 0) {
        /* name the rank even though MPI could not: the launcher knows it */
        char msg[1024];
        snprintf(msg, sizeof msg, "rank %d: %s", launcher_rank(),
                 rc_last_error());
        rc_set_error("%s", msg);
        free(c);
        return NULL;
    }
    the_comm = c;
    return c;
}

static void free_buckets(rc_comm *c) {
    free(c->buckets);
    c->buckets = NULL;
    c->n_buckets = 0;
}

void rc_comm_free(rc_comm *c) {
    if (!c) return;
#ifdef RC_HAVE_NCCL
    /* guarded: a call would load the CUDA plugin into a CPU run */
    if (c->nccl) rc_nccl_free(c->nccl);
    c->nccl = NULL;
#endif
#ifdef RC_HAVE_MPI
    if (c->mpi) rc_mpi_finalize(c);
#endif
    free_buckets(c);
    if (the_comm == c) the_comm = NULL;
    free(c);
}

void rc_comm_fail(rc_comm *c, const char *msg) {
    /* one process alone returns its error; with NCCL even one rank ends
     * here, since its reductions have no error return to the trainer */
    if (!c || (c->size == 1 && !c->nccl)) return;
    fprintf(stderr, "recompose: rank %d of %d failed: %s\n"
                    "recompose: aborting all %d ranks\n",
            c->rank, c->size, msg, c->size);
    fflush(stderr);
#ifdef RC_HAVE_NCCL
    if (c->nccl) rc_nccl_abort(c->nccl);
#endif
#ifdef RC_HAVE_MPI
    if (c->mpi) rc_mpi_abort(c);
#endif
    exit(1); /* not reached with MPI */
}

const char *rc_comm_kind(const rc_comm *c) { return c->kind; }
int rc_comm_rank(const rc_comm *c) { return c->rank; }
int rc_comm_size(const rc_comm *c) { return c->size; }
int rc_comm_device(const rc_comm *c) {
    /* a CPU run asks the CUDA plugin nothing (it would load it) */
    if (!c->use_gpu) return 0;
    /* a launcher that shows each rank only its own GPU (Slurm
     * --gpus-per-task=1, CUDA_VISIBLE_DEVICES per rank): ordinal 0 */
    return rc_cuda_device_count() == 1 ? 0 : c->local_rank;
}
void rc_comm_set_cuda_stream(rc_comm *c, void *stream) { c->cuda_stream = stream; }

/* Gradients go through the transport: several ranks, or NCCL at any world
 * size (a one-GPU torchrun job exercises the same path as a cluster). */
static int reduces(const rc_comm *c) { return c->size > 1 || c->nccl != NULL; }

/* ---- buckets -------------------------------------------------------------------- */

static void start_bucket(rc_comm *c, int k) {
    rc_bucket *b = &c->buckets[k];
    b->started = 1;
    float *buf = c->grads + b->offset;
#ifdef RC_HAVE_NCCL
    if (c->nccl) {
        /* without the compute stream, the gradient kernels must be done */
        if (!c->cuda_stream) c->be->synchronize();
        if (rc_nccl_reduce_start(c->nccl, c->cuda_stream, buf, b->n) != 0)
            rc_comm_fail(c, rc_last_error());
        return;
    }
#endif
#ifdef RC_HAVE_MPI
    if (c->mpi) rc_mpi_reduce_start(c, k, buf, b->n);
#else
    (void)buf;
#endif
}

/* Start every bucket, in order, whose whole range is written. */
static void start_ready_buckets(rc_comm *c) {
    while (c->next_bucket < c->n_buckets &&
           c->buckets[c->next_bucket].ready >= c->buckets[c->next_bucket].n)
        start_bucket(c, c->next_bucket++);
#ifdef RC_HAVE_MPI
    if (c->mpi && !c->nccl) rc_mpi_reduce_progress(c);
#endif
}

/* The backward pass finished n gradient floats at p. */
static void mark_ready(rc_comm *c, const float *p, size_t n) {
    if (!c->active || !p || p < c->grads || p >= c->grads + c->n_grads) return;
    size_t off = (size_t)(p - c->grads);
    for (int k = 0; k < c->n_buckets; k++) {
        rc_bucket *b = &c->buckets[k];
        if (off < b->offset || off >= b->offset + b->n) continue;
        if (b->started) {
            /* The reduction already read this range: overlapping would sum
             * a half-written gradient. The model must write each gradient
             * once per step; a change that breaks this must not go unseen. */
            rc_log("gradient bucket %d written after its reduction started "
                   "(offset %zu): the backward pass wrote a weight gradient "
                   "twice in one step, which bucketed reduction cannot "
                   "handle; this is a bug in the model's backward pass",
                   k, off);
            abort();
        }
        b->ready += n;
        break;
    }
    start_ready_buckets(c);
}

/* Cut the parameter table into buckets from the end (the backward pass
 * finishes the head first and the first convolution last). */
static void cut_buckets(rc_comm *c, rc_model *m, size_t bucket_floats) {
    int np = rc_model_n_params(m);
    c->buckets = rc_xcalloc((size_t)np, sizeof *c->buckets);
    c->n_buckets = 0;
    rc_bucket *cur = NULL;
    for (int i = np - 1; i >= 0; i--) {
        const rc_param *p = rc_model_param(m, i);
        if (!cur || cur->n >= bucket_floats) {
            cur = &c->buckets[c->n_buckets++];
            cur->offset = p->offset + p->numel;
            cur->n = 0;
        }
        /* parameters are contiguous, so the bucket grows downwards */
        cur->offset = p->offset;
        cur->n += p->numel;
    }
}

static size_t bucket_bytes_setting(size_t requested) {
    if (requested) return requested;
    const char *s = getenv("RC_COMM_BUCKET_BYTES");
    if (s && *s) {
        long long v = strtoll(s, NULL, 10);
        if (v > 0) return (size_t)v;
    }
    return DEFAULT_BUCKET_BYTES;
}

/* The model announced a finished weight gradient. */
static void on_grad_ready(void *ctx, const rc_param *p) {
    rc_comm *c = ctx;
    mark_ready(c, c->grads + p->offset, p->numel);
}

int rc_comm_attach(rc_comm *c, rc_model *m, size_t bucket_bytes) {
    free_buckets(c);
    c->be = rc_model_backend(m);
    c->grads = rc_model_grads(m);
    c->n_grads = rc_model_numel(m);
    if (!reduces(c)) return 0;
    size_t floats = bucket_bytes_setting(bucket_bytes) / sizeof(float);
    cut_buckets(c, m, floats ? floats : 1);
    rc_model_on_grad_ready(m, on_grad_ready, c);
    return 0;
}

void rc_comm_grads_begin(rc_comm *c) {
    if (!reduces(c)) return;
    for (int k = 0; k < c->n_buckets; k++) {
        c->buckets[k].ready = 0;
        c->buckets[k].started = 0;
    }
    c->next_bucket = 0;
    c->active = 1;
}

double rc_comm_grads_end(rc_comm *c, double local_loss) {
    if (!reduces(c)) return local_loss;
    /* A rank whose loss was not finite skipped its backward pass: it still
     * joins every reduction (in the same order), then all skip the update
     * because the summed loss is NAN. */
    while (c->next_bucket < c->n_buckets) start_bucket(c, c->next_bucket++);
    c->active = 0;
#ifdef RC_HAVE_NCCL
    if (c->nccl && rc_nccl_reduce_wait(c->nccl, c->cuda_stream) != 0)
        rc_comm_fail(c, rc_last_error());
#endif
#ifdef RC_HAVE_MPI
    if (c->mpi && !c->nccl) rc_mpi_reduce_wait(c);
#endif
    /* sum, then divide: the mean of the ranks' gradients, each of which is
     * already scaled by 1/B_rank, is the gradient of the global batch */
    c->be->scale(c->n_grads, c->grads, 1.0f / (float)c->size);
    return rc_comm_sum(c, local_loss) / c->size;
}

/* ---- host collectives ---------------------------------------------------------------- */

double rc_comm_sum(rc_comm *c, double v) {
#ifdef RC_HAVE_MPI
    if (c->mpi) return rc_mpi_sum(c, v);
#endif
#ifdef RC_HAVE_NCCL
    if (c->nccl && c->size > 1 &&
        rc_nccl_host_allreduce(c->nccl, &v, 1, RC_NCCL_SUM_F64) != 0)
        rc_comm_fail(c, rc_last_error());
#endif
    (void)c;
    return v;
}

int rc_comm_check_same(rc_comm *c, uint64_t value, const char *what) {
    if (c->size == 1) return 0;
    uint64_t v[2] = {value, ~value}; /* max of ~v is ~min of v */
#ifdef RC_HAVE_MPI
    if (c->mpi) rc_mpi_max_u64(c, v, 2);
#endif
#ifdef RC_HAVE_NCCL
    if (!c->mpi && c->nccl && rc_nccl_host_allreduce(c->nccl, v, 2, RC_NCCL_MAX_U64) != 0)
        rc_comm_fail(c, rc_last_error());
#endif
    uint64_t hi = v[0], lo = ~v[1];
    if (hi == lo) return 0;
    return rc_set_error("%s differs between the ranks (rank %d has %016llx; "
                        "the ranks range from %016llx to %016llx): every rank "
                        "must run the same binary with the same config and "
                        "read the same checkpoint",
                        what, c->rank, (unsigned long long)value,
                        (unsigned long long)lo, (unsigned long long)hi);
}

void rc_comm_broadcast(rc_comm *c, void *buf, size_t bytes, int root) {
#ifdef RC_HAVE_MPI
    if (c->mpi) {
        rc_mpi_broadcast(c, buf, bytes, root);
        return;
    }
#endif
#ifdef RC_HAVE_NCCL
    if (c->nccl && c->size > 1 && rc_nccl_host_broadcast(c->nccl, buf, bytes, root) != 0)
        rc_comm_fail(c, rc_last_error());
#endif
    (void)c, (void)buf, (void)bytes, (void)root;
}

uint64_t rc_comm_hash(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- fault injection ------------------------------------------------------------------- */

int rc_comm_fault_point(const rc_comm *c, int64_t step) {
    if (c->fault_rank != c->rank || step != c->fault_step) return 0;
    if (!strcmp(c->fault_kind, "kill")) {
        fprintf(stderr, "recompose: rank %d: RC_FAULT_KIND=kill at step %lld\n",
                c->rank, (long long)step);
        fflush(stderr);
        raise(SIGKILL);
    }
    return rc_set_error("rank %d: fault injected at step %lld (RC_FAULT_RANK=%d)",
                        c->rank, (long long)step, c->fault_rank);
}
