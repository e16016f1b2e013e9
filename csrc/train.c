/* train.c: rc_train, a straight list of named steps: join_ranks,
 * build_model, restore, run_steps (train_step then after_step, per step).
 * The data of a step is in train_data.c, the way it reaches the backend in
 * train_input.c, the window statistics, metrics.jsonl and the progress line
 * in train_report.c.
 *
 * The data of step k is a pure function of (seed, k): the clip keys, the
 * tuple sampling and the rendering all derive from them. With the optimiser
 * state, weights and step in the checkpoint, a resumed run is bitwise the
 * same as an uninterrupted one (for the same thread count).
 *
 * Never lose a run (see docs/faults.md): a stop signal finishes the step and
 * checkpoints; a non-finite loss or gradient skips the step, and a streak of
 * them stops with a diagnostic and the checkpoint from before; the output
 * directory is probed at start; a failed write is a storage error.
 */
#include "recompose/train.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cblas.h>

#include "recompose/checkpoint.h"
#include "recompose/comm.h"
#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "recompose/backend.h"
#include "recompose/feed.h"
#include "recompose/model.h"
#include "recompose/optim.h"
#include "recompose/rng.h"
#include "recompose/safetensors.h"
#include "recompose/sampler.h"
#include "recompose/synth.h"
#include "cpu_onednn/onednn.h"
#include "train_input.h"
#include "train_report.h"
#include "train_val.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif
#ifdef RC_HAVE_VIZ
#include "recompose/viz.h"
#endif

const char *rc_blas_kernels(void) { return openblas_get_corename(); }

int rc_pin_blas_kernels(const rc_config *c, char **argv) {
    const char *want = c->blas_kernels;
    if (!want[0] || !strcasecmp(want, "auto")) return 0;
    if (!strcasecmp(rc_blas_kernels(), want)) {
        rc_log("OpenBLAS kernels %s (train.blas_kernels)", rc_blas_kernels());
        return 0;
    }
    if (getenv("RC_BLAS_PINNED"))
        return rc_set_error("train.blas_kernels = %s: OpenBLAS runs its %s "
                            "kernels here even with OPENBLAS_CORETYPE=%s; "
                            "this CPU lacks what the %s kernels need (or "
                            "this OpenBLAS was built without them): choose "
                            "another family or auto", want, rc_blas_kernels(),
                            want, want);
    setenv("OPENBLAS_CORETYPE", want, 1);
    setenv("RC_BLAS_PINNED", "1", 1);
    execv("/proc/self/exe", argv);
    return rc_set_error("train.blas_kernels = %s: cannot restart with "
                        "OPENBLAS_CORETYPE set (%s); set it in the environment "
                        "instead", want, strerror(errno));
}

void rc_set_threads(int threads) {
    if (threads <= 0) threads = rc_default_threads(NULL);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

/* ---- output directory -------------------------------------------------------- */

/* Fail at start, not after an hour of training, if DIR cannot be written:
 * create, write and delete a probe file (access() would not see a read-only
 * file system or, for root, permissions). */
static int check_writable(const char *dir) {
    if (rc_make_dirs(dir) != 0) return -1;
    char probe[1100];
    snprintf(probe, sizeof probe, "%s/.recompose-write-test.%ld", dir,
             (long)getpid());
    FILE *f = fopen(probe, "w");
    int ok = f && fputs("ok\n", f) >= 0;
    int err = errno;
    if (f && fclose(f) != 0 && ok) ok = 0, err = errno;
    if (f) unlink(probe);
    if (!ok)
        return rc_set_error("output directory %s is not writable: %s; fix its "
                            "permissions or choose another --out", dir,
                            strerror(err));
    return 0;
}

/* A checkpoint is written beside the previous one before that is pruned:
 * want room for two, with a margin for metrics and the header. */
static int check_free_space(const char *dir, size_t n_params) {
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) return 0; /* not knowable: find out later */
    double free_b = (double)vfs.f_bavail * (double)vfs.f_frsize;
    double need = 2.0 * (3.0 * (double)n_params * sizeof(float)) + (1 << 20);
    if (free_b < need)
        return rc_set_error("output directory %s has %.1f MB free but a "
                            "checkpoint needs %.1f MB (twice while the next "
                            "one is written); free some space or choose "
                            "another --out", dir, free_b / 1e6, need / 1e6);
    return 0;
}

static int write_text_file(const char *dir, const char *name,
                           const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return rc_set_error("cannot write %s: %s", path, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : rc_set_error("cannot write %s: %s", path, strerror(errno));
}

/* ---- one run per output directory ------------------------------------------------ */

/* The files a run leaves in its directory. */
static int is_run_file(const char *name) {
    static const char *const plain[] = {"metrics.jsonl", "config.ini",
                                        "eval.json", "training.png", NULL};
    for (int i = 0; plain[i]; i++)
        if (!strcmp(name, plain[i])) return 1;
    size_t n = strlen(name);
    return !strncmp(name, "ckpt-", 5) && n > 12 &&
           !strcmp(name + n - 12, ".safetensors");
}

/* Checkpoints and other run files in dir (0 and 0 for a new directory). */
static void count_run_files(const char *dir, int *checkpoints, int *others) {
    *checkpoints = *others = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_run_file(e->d_name)) continue;
        if (!strncmp(e->d_name, "ckpt-", 5)) (*checkpoints)++;
        else if (strcmp(e->d_name, "config.ini")) (*others)++;
    }
    closedir(d);
}

/* Whether `path` (a checkpoint file or a directory) lies in dir: the same
 * directory, compared by device and inode (any spelling of the path). */
static int resumes_within(const char *path, const char *dir) {
    struct stat want, have;
    if (stat(dir, &want) != 0 || stat(path, &have) != 0) return 0;
    if (!S_ISDIR(have.st_mode)) {
        char parent[1024];
        rc_path_dir(path, parent, sizeof parent);
        if (stat(parent, &have) != 0) return 0;
    }
    return have.st_dev == want.st_dev && have.st_ino == want.st_ino;
}

/* Move every run file of dir into dir/previous-N (the first N free):
 * nothing of the earlier run is deleted. */
static int move_run_aside(const char *dir) {
    char aside[1100];
    for (int n = 1;; n++) {
        snprintf(aside, sizeof aside, "%s/previous-%d", dir, n);
        if (mkdir(aside, 0777) == 0) break;
        if (errno != EEXIST)
            return rc_set_error("cannot create %s: %s", aside, strerror(errno));
    }
    DIR *d = opendir(dir);
    if (!d) return rc_set_error("cannot list %s: %s", dir, strerror(errno));
    struct dirent *e;
    int status = 0;
    while (status == 0 && (e = readdir(d)) != NULL) {
        if (!is_run_file(e->d_name)) continue;
        char from[1400], to[1400];
        snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", aside, e->d_name);
        if (rename(from, to) != 0)
            status = rc_set_error("cannot move %s to %s: %s", from, aside,
                                  strerror(errno));
    }
    closedir(d);
    if (status == 0) rc_log("--force: moved the earlier run's files to %s", aside);
    return status;
}

/* A directory holds one run: a fresh run (or one resumed from elsewhere)
 * refuses a directory with another run's checkpoints or metrics, which it
 * would overwrite and whose checkpoints its pruning would mix with its own,
 * unless --force moves them aside. --resume auto becomes the directory
 * itself when it holds a checkpoint, else a fresh start. Every rank
 * resolves "auto" the same way; rank 0 alone checks and moves. */
static int claim_out_dir(rc_train_options *opt, int is_root) {
    int ckpts, others;
    count_run_files(opt->out_dir, &ckpts, &others);
    if (opt->resume && !strcmp(opt->resume, "auto")) {
        if (ckpts > 0) {
            opt->resume = opt->out_dir;
            return 0;
        }
        opt->resume = NULL;
        if (is_root)
            rc_log("--resume auto: no checkpoint in %s; starting a fresh run",
                   opt->out_dir);
        return 0; /* an attempt that wrote no checkpoint is replaced */
    }
    if (!is_root || (ckpts == 0 && others == 0)) return 0;
    if (opt->resume && resumes_within(opt->resume, opt->out_dir)) return 0;
    if (opt->force) return move_run_aside(opt->out_dir);
    return rc_set_error(
        "%s holds another run (%d checkpoint(s)%s); continue it with --resume "
        "%s (or --resume auto), write this run elsewhere with another --out, "
        "or pass --force to move its files into %s/previous-N/ (nothing is "
        "deleted)", opt->out_dir, ckpts, others ? ", metrics" : "",
        opt->out_dir, opt->out_dir);
}

/* ---- the loop ------------------------------------------------------------------ */

#define GRAD_HISTORY 16

typedef struct {
    const rc_config *cfg;
    const rc_train_options *opt;
    rc_model *model;
    rc_adamw adam;
    rc_comm *comm;
    FILE *metrics;                /* /dev/null on ranks other than 0 */
    rc_train_report report;       /* the steps since the last report */
    double grad_norm;             /* pre-clip norm of the last update */
    double ckpt_loss_sum;        /* training loss since that checkpoint */
    int ckpt_loss_n;
    /* non-finite steps */
    int bad_streak;
    int64_t streak_start;        /* first step of the current streak */
    char bad_inputs[256];        /* clips of the last bad step's batch */
    double grad_norms[GRAD_HISTORY]; /* pre-clip norms of the last good steps */
    int n_grad_norms;
    char *inject;                /* RC_INJECT_NONFINITE, or NULL */
    /* a step's buffers, reserved once */
    rc_train_input *input;
    rc_tuple *tuples;
    rc_batch_plan plan;
    float *emb_host;             /* the step's embeddings, for loss by kind */
    size_t clip_elems;           /* floats per clip of the batch */
    rc_validation *val;          /* NULL: no validation loss */
} trainer;

/* Every rank must hold the same weights and run the same config: a rank
 * that drifted (another config, another checkpoint) would silently train
 * another model. Compared by hash at the start and at every checkpoint. */
static int check_ranks_agree(trainer *t, const char *what) {
    if (rc_comm_size(t->comm) == 1) return 0;
    char *ini = rc_config_to_ini(t->cfg);
    uint64_t h = rc_comm_hash(ini, strlen(ini));
    free(ini);
    if (rc_comm_check_same(t->comm, h, "the config") != 0) return -1;
    size_t bytes = rc_model_numel(t->model) * sizeof(float);
    float *w = rc_xmalloc(bytes);
    rc_model_backend(t->model)->to_host(w, rc_model_weights(t->model), bytes);
    h = rc_comm_hash(w, bytes);
    free(w);
    return rc_comm_check_same(t->comm, h, what);
}

/* training.png beside the checkpoints (train.plot): a plot that fails costs
 * a picture, not the run. */
static void plot_curves(const trainer *t) {
#ifdef RC_HAVE_VIZ
    if (!t->cfg->plot || !rc_viz_can_draw_text()) return;
    char metrics[1024], png[1024], title[256];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", t->opt->out_dir);
    snprintf(png, sizeof png, "%s/training.png", t->opt->out_dir);
    const char *name = strrchr(t->opt->out_dir, '/');
    snprintf(title, sizeof title, "%s: seed %llu, batch %d x %d rank(s)",
             name && name[1] ? name + 1 : t->opt->out_dir,
             (unsigned long long)t->cfg->seed, t->cfg->batch,
             rc_comm_size(t->comm));
    if (rc_plot_training(metrics, png, title) != 0)
        rc_log("warning: no training.png: %s", rc_last_error());
#else
    (void)t;
#endif
}

static int save_checkpoint(trainer *t, int64_t step, rc_train_result *res) {
    if (check_ranks_agree(t, "the weights at the checkpoint") != 0) return -1;
    if (rc_comm_rank(t->comm) != 0) { /* rank 0 alone writes */
        t->ckpt_loss_sum = 0;
        t->ckpt_loss_n = 0;
        return 0;
    }
    char *path = rc_checkpoint_path(t->opt->out_dir, step);
    double loss = t->ckpt_loss_n ? t->ckpt_loss_sum / t->ckpt_loss_n : NAN;
    int status = rc_checkpoint_save_with_loss(path, t->model, &t->adam, step,
                                              t->cfg, loss);
    if (status == 0) {
        snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s", path);
        t->ckpt_loss_sum = 0;
        t->ckpt_loss_n = 0;
        /* a failed prune costs disk, not the run: warn and go on */
        if (rc_checkpoint_prune(t->opt->out_dir, t->cfg->keep_last) < 0)
            rc_log("warning: %s", rc_last_error());
        plot_curves(t);
    } else {
        res->stop = RC_STOP_STORAGE;
    }
    free(path);
    return status;
}

/* ---- stop signals --------------------------------------------------------------- */

static volatile sig_atomic_t stop_signal = 0;
static const int stop_signals[] = {SIGTERM, SIGINT, SIGUSR1};
#define N_STOP_SIGNALS 3

typedef struct {
    struct sigaction stop[N_STOP_SIGNALS], xfsz;
} saved_handlers;

/* First signal: note it; the loop checkpoints after the current step.
 * Second: leave at once; the atomic writes keep the last checkpoint whole. */
static void on_stop_signal(int sig) {
    if (stop_signal) {
        static const char msg[] = "\nrecompose: second signal, exiting at "
                                  "once; the last complete checkpoint is "
                                  "intact\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(128 + sig);
    }
    stop_signal = sig;
}

static void install_handlers(saved_handlers *saved) {
    stop_signal = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < N_STOP_SIGNALS; i++)
        sigaction(stop_signals[i], &sa, &saved->stop[i]);
    /* past a file size limit, write() fails with EFBIG instead of a kill */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &sa, &saved->xfsz);
}

static void restore_handlers(const saved_handlers *saved) {
    for (int i = 0; i < N_STOP_SIGNALS; i++)
        sigaction(stop_signals[i], &saved->stop[i], NULL);
    sigaction(SIGXFSZ, &saved->xfsz, NULL);
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    default: return "a signal";
    }
}

int rc_train_exit_status(const rc_train_result *res) {
    switch (res->stop) {
    case RC_STOP_DONE: return 0;
    case RC_STOP_NONFINITE: return RC_EXIT_NONFINITE;
    case RC_STOP_STORAGE: return RC_EXIT_STORAGE;
    case RC_STOP_SIGNAL: return RC_EXIT_INTERRUPTED;
    default: return RC_EXIT_ERROR;
    }
}

/* ---- non-finite steps ------------------------------------------------------------ */

/* Is `step` listed in spec "S[-E][,S[-E]]..."? */
static int step_listed(const char *spec, int64_t step) {
    const char *p = spec;
    while (*p) {
        char *end;
        long long lo = strtoll(p, &end, 10), hi = lo;
        if (end == p) return 0;
        if (*end == '-') hi = strtoll(end + 1, &end, 10);
        if (step >= lo && step <= hi) return 1;
        if (*end != ',') return 0;
        p = end + 1;
    }
    return 0;
}

/* Test hook: poison the first gradient value of the listed steps. */
static void inject_faults(trainer *t, int64_t step) {
    if (!t->inject || !step_listed(t->inject, step)) return;
    float nan_value = NAN;
    rc_model_backend(t->model)->to_device(rc_model_grads(t->model), &nan_value,
                                          sizeof nan_value);
}

/* Bit 1: the loss is non-finite; bit 2: a gradient is. */
static int nonfinite_kind(trainer *t, double loss) {
    const rc_backend *be = rc_model_backend(t->model);
    /* a double sum of float squares overflows only for a non-finite value */
    double sq = be->sum_squares(rc_model_numel(t->model), rc_model_grads(t->model));
    return (isfinite(loss) ? 0 : 1) | (isfinite(sq) ? 0 : 2);
}

/* Which clips of the batch have non-finite input values (a decoding or
 * rendering fault), with their keys for synthetic data. */
static void note_bad_inputs(trainer *t, int64_t step, const float *batch,
                            size_t clip_elems) {
    const rc_config *c = t->cfg;
    int synthetic = strcmp(c->source, "shards") != 0;
    size_t len = (size_t)snprintf(t->bad_inputs, sizeof t->bad_inputs,
                                  "clips 0..%d of step %lld", c->batch - 1,
                                  (long long)step);
    int n_bad = 0;
    for (int b = 0; batch && b < c->batch && len < sizeof t->bad_inputs; b++) {
        const float *x = batch + (size_t)b * clip_elems;
        size_t i = 0;
        while (i < clip_elems && isfinite(x[i])) i++;
        if (i == clip_elems) continue;
        len += (size_t)snprintf(t->bad_inputs + len, sizeof t->bad_inputs - len,
                                "%s clip %d", n_bad++ ? "," : "; non-finite "
                                "pixels in", b);
        if (synthetic && len < sizeof t->bad_inputs)
            len += (size_t)snprintf(t->bad_inputs + len,
                                    sizeof t->bad_inputs - len, " (key %016llx)",
                                    (unsigned long long)rc_train_clip_key(c, step, b));
    }
    if (n_bad == 0 && len < sizeof t->bad_inputs)
        snprintf(t->bad_inputs + len, sizeof t->bad_inputs - len,
                 batch ? " (their input values are all finite)"
                       : " (their pixels went to the device as bytes: all finite)");
}

static void remember_grad_norm(trainer *t, double norm) {
    t->grad_norms[t->n_grad_norms % GRAD_HISTORY] = norm;
    t->n_grad_norms++;
}

/* "tensor NAME (k of n values)" for the first parameters whose gradient is
 * not finite. */
static void describe_bad_gradients(trainer *t, char *buf, size_t cap) {
    size_t numel = rc_model_numel(t->model), len = 0;
    float *g = rc_xmalloc(numel * sizeof *g);
    rc_model_backend(t->model)->to_host(g, rc_model_grads(t->model),
                                        numel * sizeof *g);
    int listed = 0, more = 0;
    buf[0] = 0;
    for (int i = 0; i < rc_model_n_params(t->model); i++) {
        const rc_param *p = rc_model_param(t->model, i);
        size_t bad = 0;
        for (size_t k = 0; k < p->numel; k++) bad += !isfinite(g[p->offset + k]);
        if (!bad) continue;
        if (listed == 3) {
            more++;
            continue;
        }
        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len,
                                    "%stensor %s (%zu of %zu values)",
                                    listed ? ", " : "", p->name, bad, p->numel);
        listed++;
    }
    if (more && len < cap)
        snprintf(buf + len, cap - len, " and %d more tensors", more);
    if (!listed) snprintf(buf, cap, "none");
    free(g);
}

/* "clipped on k of the last n steps, last pre-clip norm G" */
static void describe_grad_clipping(const trainer *t, char *buf, size_t cap) {
    int n = t->n_grad_norms < GRAD_HISTORY ? t->n_grad_norms : GRAD_HISTORY;
    if (n == 0) {
        snprintf(buf, cap, "no good step before it in this run");
        return;
    }
    int clipped = 0;
    for (int i = 0; i < n; i++)
        clipped += t->cfg->clip_norm > 0 && t->grad_norms[i] > t->cfg->clip_norm;
    double last = t->grad_norms[(t->n_grad_norms - 1) % GRAD_HISTORY];
    snprintf(buf, cap, "gradient clipped (train.clip_norm = %g) on %d of the "
             "last %d good steps, last pre-clip norm %.4g",
             (double)t->cfg->clip_norm, clipped, n, last);
}

/* A streak of max_bad_steps: checkpoint the weights from before it (no
 * update was applied since) and stop with the diagnostic. */
static int stop_nonfinite(trainer *t, int64_t step, double loss, int kind,
                          rc_train_result *res) {
    char tensors[512], clipping[160];
    describe_bad_gradients(t, tensors, sizeof tensors);
    describe_grad_clipping(t, clipping, sizeof clipping);
    res->stop = RC_STOP_NONFINITE;
    char *path = rc_checkpoint_path(t->opt->out_dir, t->streak_start);
    int saved = save_checkpoint(t, t->streak_start, res) == 0;
    res->stop = RC_STOP_NONFINITE;
    char where[700];
    if (saved)
        snprintf(where, sizeof where, "the weights from before it are in %s "
                 "(step %lld): resume from it after lowering train.lr or "
                 "fixing the data", path, (long long)t->streak_start);
    else
        snprintf(where, sizeof where, "and saving the checkpoint from before "
                 "it failed: %s", rc_last_error());
    free(path);
    return rc_set_error("steps %lld..%lld: %d steps in a row with a non-finite "
                        "%s (train.max_bad_steps = %d); at step %lld the loss "
                        "was %g, non-finite gradients: %s; %s; %s; %s",
                        (long long)t->streak_start, (long long)step,
                        t->bad_streak,
                        kind == 1 ? "loss" : kind == 2 ? "gradient"
                                                       : "loss and gradient",
                        t->cfg->max_bad_steps, (long long)step, loss, tensors,
                        t->bad_inputs, clipping, where);
}

/* A checkpoint records its world size and global batch (none: an older,
 * single-process one). The data of a step depends only on the global batch,
 * so another world size with the same global batch continues exactly as
 * the original run would have; another global batch would change the data
 * order and the gradient scale, and is refused. */
static int check_resume_layout(const trainer *t, const char *path) {
    rc_st_file *f = rc_safetensors_read(path);
    if (!f) return -1;
    const char *ws = rc_safetensors_meta(f, "world_size");
    const char *gb = rc_safetensors_meta(f, "global_batch");
    long long old_world = ws ? atoll(ws) : 1, old_global = gb ? atoll(gb) : 0;
    rc_safetensors_close(f);
    int world = rc_comm_size(t->comm);
    long long global = (long long)t->cfg->batch * world;
    if (old_global <= 0 || old_global == global) {
        if (old_world != world)
            rc_log("%s: written by %lld rank(s), resumed on %d with the same "
                   "global batch %lld", path, old_world, world, global);
        return 0;
    }
    char advice[160] = "";
    if (old_global % world == 0)
        snprintf(advice, sizeof advice, "resume with --set train.batch=%lld "
                 "(per rank) to keep it, or ", old_global / world);
    return rc_set_error("%s: trained with world size %lld x train.batch %lld "
                        "= global batch %lld, but this run has world size %d "
                        "x train.batch %d = %lld; %sstart %lld rank(s) of "
                        "train.batch=%lld (train.batch is per rank)",
                        path, old_world, old_global / old_world, old_global,
                        world, t->cfg->batch, global, advice, old_world,
                        old_global / old_world);
}

static int resume_from(trainer *t, const char *where, int64_t *step,
                       rc_train_result *res) {
    char *path = NULL;
    struct stat st;
    if (stat(where, &st) == 0 && S_ISDIR(st.st_mode)) {
        path = rc_checkpoint_latest(where);
        if (!path)
            return rc_set_error("--resume %s: no checkpoint (ckpt-*.safetensors) "
                                "in that directory", where);
    } else {
        path = strdup(where);
    }
    int status = rc_checkpoint_load(path, t->model, &t->adam, step);
    if (status == 0) status = check_resume_layout(t, path);
    if (status == 0) {
        rc_log("resumed from %s at step %lld", path, (long long)*step);
        /* a run resumed at its end trains nothing: its checkpoint is this */
        snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s", path);
        res->steps_done = *step;
    }
    free(path);
    return status;
}

/* ---- the steps of rc_train ------------------------------------------------------ */

/* Configure and start the backend of train.device for this rank (its GPU,
 * its arithmetic); *stage is its input stage (NULL: host frames). NULL with
 * the error set. */
static const rc_backend *start_backend(const rc_backend_kind *kind,
                                       rc_comm *comm, const rc_config *c,
                                       const rc_stage_ops **stage) {
    /* a GPU per rank */
    rc_backend_settings settings = rc_backend_settings_of(c, rc_comm_device(comm));
    if (kind->configure && kind->configure(&settings) != 0) return NULL;
    const rc_backend *be = kind->ops();
    if (!be) return NULL;
    /* a device backend takes its input through a feed: copies overlap */
    *stage = kind->stage ? kind->stage() : NULL;
    if (kind->is_gpu) {
        /* the gradient all-reduce waits for the backward pass by an event
         * on this stream, not by a host synchronisation per bucket */
        rc_comm_set_cuda_stream(comm, rc_cuda_stream());
        static const char *const arithmetic[] = {"TF32", "strict float32",
                                                 "bfloat16"};
        rc_log("training on the GPU (CUDA backend, %s on %s)",
               arithmetic[settings.precision], rc_cuda_device_name());
    } else if (*stage) {
        rc_log("training on the emulated CUDA backend (its kernels and input "
               "stage on the CPU; slow, for tests)");
    } else if (!strcmp(be->name, "cpu-onednn")) {
        rc_log("CPU convolutions by oneDNN %s in %s, its %s kernels "
               "(train.cpu_conv, train.precision)", rc_onednn_version(),
               rc_onednn_uses_bf16() ? "bfloat16" : "float32", rc_onednn_isa());
        if (settings.precision == RC_PRECISION_BF16 && !rc_onednn_uses_bf16())
            rc_log("train.precision = bf16: oneDNN has no native bfloat16 "
                   "kernels here (the CPU lacks AVX512-BF16 and AMX, or a "
                   "pinned train.blas_kernels caps oneDNN at AVX2), so the "
                   "convolutions run in float32");
    } else {
        rc_log("CPU convolutions by im2col + OpenBLAS, the reference "
               "(train.cpu_conv)");
        if (settings.precision == RC_PRECISION_BF16)
            rc_log("train.precision = bf16: the reference convolutions are "
                   "float32; bfloat16 needs oneDNN's (train.cpu_conv = onednn, "
                   "or auto without a pinned train.blas_kernels)");
    }
    return be;
}

/* Rank 0 writes config.ini and opens metrics.jsonl (appending on resume);
 * the other ranks write nothing. 0, or -1 (a storage error). */
static int open_outputs(trainer *t, int64_t step, int is_root) {
    const rc_train_options *opt = t->opt;
    char *ini = rc_config_to_ini(t->cfg);
    int status = is_root ? write_text_file(opt->out_dir, "config.ini", ini) : 0;
    free(ini);
    if (status != 0) return -1;
    char metrics_path[1024];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", opt->out_dir);
    t->metrics = fopen(is_root ? metrics_path : "/dev/null", step > 0 ? "a" : "w");
    if (!t->metrics)
        return rc_set_error("cannot open %s: %s", metrics_path, strerror(errno));
    return 0;
}

/* Where the step's frames come from: the shard loader (data.source =
 * shards) or the synthetic renderer, into the stage's host buffers when
 * there is a stage. 0, or -1 with the error set. */
typedef struct {
    rc_batch_source source;
    int shards;
    void *dataset, *loader;
} batch_origin;

static int open_batch_origin(batch_origin *o, const rc_config *c,
                             const rc_stage_ops *stage, size_t batch_bytes, int u8) {
    memset(o, 0, sizeof *o);
    o->shards = !strcmp(c->source, "shards");
    if (o->shards) {
#ifdef RC_HAVE_VIDEO
        o->loader = rc_train_open_loader(c, (rc_dataset **)&o->dataset, stage, u8);
        if (!o->loader) return -1;
        o->source = (rc_batch_source){rc_train_loader_get,
                                      rc_train_loader_release, o->loader};
        return 0;
#else
        (void)stage, (void)batch_bytes, (void)u8;
        return rc_set_error("data.source = shards needs video input, but "
                            "this build has none (install FFmpeg, "
                            "TurboJPEG and libpng dev packages: "
                            "tools/install-deps.sh, then rebuild)");
#endif
    }
    return rc_synthetic_source_open(&o->source, c, batch_bytes,
                                    rc_train_render_synthetic, stage != NULL,
                                    stage ? stage->host_alloc : NULL,
                                    stage ? stage->host_free : NULL);
}

static void close_batch_origin(batch_origin *o) {
#ifdef RC_HAVE_VIDEO
    if (o->shards) {
        rc_loader_report_bad(o->loader, stderr);
        rc_loader_destroy(o->loader);
        rc_dataset_close(o->dataset);
        return;
    }
#endif
    rc_synthetic_source_close(&o->source);
}

/* ---- one step, and what follows it ------------------------------------------------ */

/* A non-finite loss or gradient: never apply the update; count the step,
 * and after train.max_bad_steps of them in a row stop (-1, res->stop says
 * so) with the checkpoint from before the streak. */
static int skip_step(trainer *t, int64_t step, double loss, int bad,
                     rc_train_result *res) {
    res->skipped_steps++;
    if (t->bad_streak++ == 0) t->streak_start = step;
    rc_log("step %lld: non-finite %s, step skipped (%d in a row, %lld in all)",
           (long long)step,
           bad == 1 ? "loss" : bad == 2 ? "gradient" : "loss and gradient",
           t->bad_streak, (long long)res->skipped_steps);
    if (t->bad_streak >= t->cfg->max_bad_steps)
        return stop_nonfinite(t, step, loss, bad, res);
    return 0;
}

static void apply_update(trainer *t, int64_t step, double loss) {
    const rc_config *c = t->cfg;
    t->bad_streak = 0;
    t->grad_norm = rc_adamw_step(&t->adam, t->model, step);
    remember_grad_norm(t, t->grad_norm);
    t->ckpt_loss_sum += loss;
    t->ckpt_loss_n++;
    double by_kind[RC_PAIR_KINDS];
    rc_plan_loss_by_kind(&t->plan, t->emb_host, c->embed_dim, &c->loss, by_kind);
    double grad_phi[2];
    rc_model_term_grad_norms(t->model, grad_phi);
    rc_train_report_add(&t->report, loss, (double)t->plan.n_pairs / c->batch,
                        by_kind, rc_model_action_loss(t->model), grad_phi);
}

/* Step `step`: its batch through the model, the gradients reduced over the
 * ranks, then the update or a skipped step. 0, or -1 with the error set. */
static int train_step(trainer *t, int64_t step, int64_t end,
                      rc_train_result *res) {
    const rc_config *c = t->cfg;
    if (rc_comm_fault_point(t->comm, step) != 0) return -1;
    /* on a device backend: device frames, and the copy of the next step's
     * batch already started */
    const float *host_batch = NULL;
    const float *batch = rc_train_input_begin(t->input, step, end, &host_batch);
    if (!batch) return -1;
    if (rc_train_plan_step(c, step, t->tuples, &t->plan) != 0) return -1;
    rc_comm_grads_begin(t->comm);
    double loss = rc_model_step(t->model, &t->plan, batch, &c->loss, 1,
                                t->emb_host);
    /* the mean gradient and loss over the ranks, before anything reads
     * them: every rank then takes the same decisions below */
    loss = rc_comm_grads_end(t->comm, loss);
    inject_faults(t, step);
    int bad = nonfinite_kind(t, loss);
    if (bad) note_bad_inputs(t, step, host_batch, t->clip_elems);
    rc_train_input_end(t->input, step);
    if (bad) return skip_step(t, step, loss, bad, res);
    apply_update(t, step, loss);
    return 0;
}

/* A signal to one rank stops all of them after the same step. */
static void agree_on_stop_signal(rc_comm *comm) {
    if (rc_comm_size(comm) > 1 && rc_comm_sum(comm, stop_signal != 0) > 0 &&
        !stop_signal)
        stop_signal = SIGTERM;
}

static void report_window(trainer *t, int64_t step, int64_t end,
                          double val_loss, rc_train_result *res) {
    rc_report_point at = {step, rc_lr_at(&t->adam, step - 1), t->grad_norm,
                          res->skipped_steps, step == end, val_loss};
    double loss = rc_train_report_window(&t->report, t->comm, &at);
    if (isnan(loss)) return; /* no good step in the window */
    if (isnan(res->first_loss)) res->first_loss = loss;
    res->final_loss = loss;
}

/* After `step` steps: the report and the checkpoint when due, and the stop
 * a signal asked for. 0: go on; 1: stop here; -1: error. */
static int after_step(trainer *t, int64_t step, int64_t end,
                      rc_train_result *res) {
    const rc_config *c = t->cfg;
    agree_on_stop_signal(t->comm);
    int val_due = t->val && (step % c->val_every == 0 || step == end);
    double val_loss = NAN;
    if (val_due) {
        double start = rc_now();
        val_loss = rc_validation_loss(t->val, t->model);
        res->val_loss = val_loss;
        rc_train_report_pause(&t->report, rc_now() - start);
    }
    if (step % c->log_every == 0 || step == end || val_due)
        report_window(t, step, end, val_loss, res);
    if (step % c->checkpoint_every == 0 || step == end || stop_signal)
        if (save_checkpoint(t, step, res) != 0) return -1;
    if (!stop_signal) return 0;
    res->stop = RC_STOP_SIGNAL;
    res->signal = (int)stop_signal;
    rc_log("%s: stopped after step %lld with checkpoint %s; continue with "
           "--resume %s", signal_name(res->signal), (long long)step,
           res->last_checkpoint, t->opt->out_dir);
    return 1;
}

/* ---- rc_train ---------------------------------------------------------------------- */

/* Every rank says how many threads it runs and why: eight ranks of one
 * node that each take every core slow each other down, and this line is
 * where a user sees it. */
static void log_threads(const rc_config *c, const rc_train_result *res) {
    const char *why = "train.threads";
    int n = c->threads > 0 ? c->threads : rc_default_threads(&why);
    int decode = c->loader_threads > 0 ? c->loader_threads : rc_available_cpus();
    char rank[32] = "";
    if (res->world > 1) snprintf(rank, sizeof rank, "rank %d: ", res->rank);
    rc_log("%s%d compute thread(s) (from %s; %d CPU(s) available), OpenBLAS "
           "kernels %s", rank, n, why, rc_available_cpus(), rc_blas_kernels());
    if (!strcmp(c->source, "shards"))
        rc_log("%s%d decode thread(s) (from %s)", rank, decode,
               c->loader_threads > 0 ? "data.loader_threads"
                                     : "the CPUs this process may use");
}

/* Join the ranks (under mpirun or srun: one of several data-parallel ranks;
 * rank 0 alone writes checkpoints, metrics and progress, and train.batch is
 * per rank) and check the output directory. 0, or -1 with the error set. */
static int join_ranks(trainer *t, const rc_backend_kind *kind,
                      rc_train_options *rank_opt, rc_train_result *res) {
    t->comm = rc_comm_create(kind->is_gpu);
    if (!t->comm) return -1;
    int is_root = rc_comm_rank(t->comm) == 0;
    res->rank = rc_comm_rank(t->comm);
    res->world = rc_comm_size(t->comm);
    if (!is_root) rank_opt->quiet = 1;
    t->opt = rank_opt;
    if (is_root && check_writable(rank_opt->out_dir) != 0) {
        res->stop = RC_STOP_STORAGE;
        rc_comm_fail(t->comm, rc_last_error());
        return -1;
    }
    if (claim_out_dir(rank_opt, is_root) != 0) {
        rc_comm_fail(t->comm, rc_last_error());
        return -1;
    }
    int stale = is_root ? rc_checkpoint_remove_stale_temps(rank_opt->out_dir) : 0;
    if (stale > 0)
        rc_log("removed %d unfinished checkpoint file(s) of an interrupted "
               "run in %s", stale, rank_opt->out_dir);
    return 0;
}

/* The backend, the model on it (attached to the communicator, with its
 * initial weights) and the optimizer. 0, or -1 with the error set. */
static int build_model(trainer *t, const rc_backend_kind *kind,
                       const rc_stage_ops **stage) {
    const rc_config *c = t->cfg;
    const rc_backend *be = start_backend(kind, t->comm, c, stage);
    if (!be) return -1;
    int world = rc_comm_size(t->comm);
    rc_train_set_data_ranks(rc_comm_rank(t->comm), world);
    rc_checkpoint_set_world_size(world);
    rc_model_shape shape;
    rc_model_shape_from_config(c, &shape);
    t->model = rc_model_create(&shape, be);
    if (!t->model || rc_comm_attach(t->comm, t->model, 0) != 0) return -1;
    rc_model_init_weights(t->model, c->seed);
    if (!t->opt->quiet) {
        rc_log("%d rank(s) (%s), %s backend, convolution and ReLU %s", world,
               rc_comm_kind(t->comm), be->name,
               rc_model_conv_fused(t->model) ? "fused" : "separate");
        const rc_param *ah = rc_model_find_param(t->model, "action.weight");
        rc_log("model: %zu parameters%s; output %s", rc_model_numel(t->model),
               ah ? " (the action head's included)" : "", t->opt->out_dir);
#ifdef RC_HAVE_VIZ
        int can_plot = rc_viz_can_draw_text();
#else
        int can_plot = 0;
#endif
        if (c->plot && !can_plot)
            rc_log("train.plot: this build cannot draw (no cairo), so no "
                   "training.png; tools/plot_training.py plots metrics.jsonl");
        if (strcmp(c->source, "shards"))
            rc_log("data: synthetic clips of %d frames, %dx%d, rendered per "
                   "step; %d tuples per step (x %d rank(s))", c->clip_steps + 1,
                   c->image_size, c->image_size, c->batch, world);
    }
    rc_adamw_init(&t->adam, c, rc_model_numel(t->model), be);
    return 0;
}

/* Where the run starts: the checkpoint it resumes from, checked to agree
 * over the ranks, and the output files. 0, or -1 (res->stop says why). */
static int restore(trainer *t, int64_t *step, rc_train_result *res) {
    int is_root = rc_comm_rank(t->comm) == 0;
    if (is_root && check_free_space(t->opt->out_dir, rc_model_numel(t->model)) != 0) {
        res->stop = RC_STOP_STORAGE;
        return -1;
    }
    if (t->opt->resume && resume_from(t, t->opt->resume, step, res) != 0) return -1;
    if (check_ranks_agree(t, "the initial weights") != 0) return -1;
    if (open_outputs(t, *step, is_root) != 0) {
        res->stop = RC_STOP_STORAGE;
        return -1;
    }
    return 0;
}

/* The step buffers: tuples, plan and model scratch, reserved once. The
 * longest sequence is the loop (2T pairs); a tuple has at most 6 sequences
 * x 2T steps distinct pairs, and each twin clip T more. */
static void reserve_step_buffers(trainer *t) {
    const rc_config *c = t->cfg;
    int B = c->batch, T = c->clip_steps;
    int twins = rc_batch_clips(&c->loss, B) - B;
    t->tuples = rc_xmalloc((size_t)B * sizeof *t->tuples);
    memset(&t->plan, 0, sizeof t->plan);
    rc_model_reserve(t->model, B * RC_SEQ_KINDS * 2 * T + twins * T,
                     B * RC_SEQ_KINDS + twins, 2 * T);
    t->emb_host = rc_xmalloc((size_t)(B * RC_SEQ_KINDS + twins) * c->embed_dim *
                             sizeof(float));
}

static void free_step_buffers(trainer *t) {
    free(t->tuples);
    free(t->emb_host);
    rc_plan_free(&t->plan);
}

/* Steps `step` .. end of the run, reading batches from `stage`'s input (or
 * host memory). 0, or -1 with the error set. */
static int run_steps(trainer *t, const rc_stage_ops *stage, int64_t step,
                     rc_train_result *res) {
    const rc_config *c = t->cfg;
    t->clip_elems = (size_t)(c->clip_steps + 1) * c->channels * c->image_size *
                    c->image_size;
    size_t values = (size_t)rc_batch_clips(&c->loss, c->batch) * t->clip_elems;
    int u8 = rc_train_input_u8(c, stage); /* pixels as bytes */
    batch_origin origin;
    if (open_batch_origin(&origin, c, stage, values * sizeof(float), u8) != 0) return -1;
    rc_train_input input;
    if (rc_train_input_open(&input, &origin.source, stage, values, u8) != 0) {
        close_batch_origin(&origin);
        return -1;
    }
    t->input = &input;
    reserve_step_buffers(t);
    if (rc_validation_open(&t->val, c, rc_model_backend(t->model),
                           !t->opt->quiet) != 0) {
        free_step_buffers(t);
        rc_train_input_close(&input);
        t->input = NULL;
        close_batch_origin(&origin);
        return -1;
    }
    int64_t end = c->steps;
    if (t->opt->stop_after > 0 && t->opt->stop_after < end) end = t->opt->stop_after;
    rc_train_report_init(&t->report, t->metrics, !t->opt->quiet, step, c->steps,
                         c->batch);
    double start = rc_now();
    int status = 0;
    while (step < end && status == 0) {
        status = train_step(t, step, end, res);
        if (status == 0) status = after_step(t, ++step, end, res);
    }
    if (status >= 0 && res->stop != RC_STOP_SIGNAL) res->stop = RC_STOP_DONE;
    res->steps_done = step;
    res->seconds = rc_now() - start;
    rc_validation_close(t->val);
    t->val = NULL;
    free_step_buffers(t);
    rc_train_input_close(&input);
    t->input = NULL;
    close_batch_origin(&origin);
    return status < 0 ? -1 : 0;
}

int rc_train(const rc_config *c, const rc_train_options *opt,
             rc_train_result *res) {
    memset(res, 0, sizeof *res);
    res->stop = RC_STOP_ERROR;
    res->first_loss = NAN;
    res->val_loss = NAN;
    if (rc_config_validate(c) != 0) return -1;
    const rc_backend_kind *kind = rc_backend_lookup(c->device);
    if (!kind) return -1;
    trainer t = {.cfg = c, .inject = getenv("RC_INJECT_NONFINITE")};
    rc_train_options rank_opt = *opt;
    if (join_ranks(&t, kind, &rank_opt, res) != 0) return -1;
    if (!opt->quiet) log_threads(c, res);
    rc_set_threads(c->threads);
    const rc_stage_ops *stage = NULL;
    if (build_model(&t, kind, &stage) != 0) {
        rc_comm_fail(t.comm, rc_last_error());
        return -1;
    }
    saved_handlers handlers;
    install_handlers(&handlers);

    int64_t step = 0;
    int status = restore(&t, &step, res);
    if (status == 0) status = run_steps(&t, stage, step, res);

    if (t.metrics) fclose(t.metrics);
    restore_handlers(&handlers);
    rc_adamw_free(&t.adam);
    rc_model_free(t.model);
    /* A rank that stops alone leaves the others waiting in the next
     * all-reduce: end the whole job. (All ranks stop together on a
     * non-finite streak or a signal: they decide on reduced values.) */
    if (status != 0 && res->stop != RC_STOP_NONFINITE)
        rc_comm_fail(t.comm, rc_last_error());
    /* every rank gets here together (a lone failure ended the job above):
     * the communicator's last collective is behind us */
    rc_comm_free(t.comm);
    rc_train_set_data_ranks(0, 1);
    return status;
}
