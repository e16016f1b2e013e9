/* checkpoint.c: model weights + AdamW state in one safetensors file.
 *
 * Tensors: each model parameter under its PyTorch name (float32, the shape
 * from the model's parameter table), and with an optimizer its moments as
 * "optim.m.<name>" and "optim.v.<name>" (the moments are flat arrays in the
 * model's parameter layout, so rc_param offsets cut them up too).
 * Metadata (all strings): format, step, adam_t, seed, config (INI text),
 * git_commit, versions (JSON), created (UTC).
 *
 * Loading checks everything before it copies anything, so a refused
 * checkpoint leaves the model and optimizer as they were.
 *
 * Hygiene: safetensors.c verifies a CRC32 of every file it reads; here a
 * damaged file is named and the newest good one before it offered, old
 * checkpoints are pruned (keep the last N and the best by "loss"), and
 * temporary files of killed writers are cleaned up.
 */
#include "recompose/checkpoint.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "recompose/action.h"
#include "recompose/common.h"
#include "recompose/safetensors.h"
#include "recompose/train.h"

#define CHECKPOINT_FORMAT "recompose-checkpoint-1"

#ifndef RC_GIT_COMMIT
#define RC_GIT_COMMIT "unknown"
#endif

static const char *const moment_prefix[2] = {"optim.m.", "optim.v."};

/* Data-parallel ranks of the run (rc_checkpoint_set_world_size). */
static int checkpoint_world_size = 1;

void rc_checkpoint_set_world_size(int world_size) {
    checkpoint_world_size = world_size > 0 ? world_size : 1;
}

/* Where the model's buffers live. The optimizer records its backend; a model
 * saved or loaded on its own is on the CPU backend (model.h exposes no
 * backend accessor; every caller creates such models on rc_backend_cpu()). */
static int check_optimizer_size(const char *path, const rc_model *m,
                                const rc_adamw *opt) {
    if (opt && opt->n != rc_model_numel(m))
        return rc_set_error("%s: the optimizer holds %zu parameters but the "
                            "model has %zu", path, opt->n, rc_model_numel(m));
    return 0;
}

static void format_param_shape(char *buf, size_t cap, const rc_param *p) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < p->ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", d ? "," : "",
                                p->shape[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

static void format_tensor_shape(char *buf, size_t cap, const rc_st_tensor *t) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? "," : "",
                                (long long)t->shape[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* ---- saving ----------------------------------------------------------------- */

static char *versions_json(void) {
    json_t *v = json_object();
    json_object_set_new(v, "recompose", json_string(RC_VERSION));
    json_object_set_new(v, "jansson", json_string(JANSSON_VERSION));
    json_object_set_new(v, "openblas", json_string(openblas_get_config()));
    /* float32 results differ in their last bits between kernel families */
    json_object_set_new(v, "blas_kernels", json_string(rc_blas_kernels()));
#ifdef __VERSION__
    json_object_set_new(v, "compiler", json_string(__VERSION__));
#endif
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    return s;
}

static void utc_now(char *buf, size_t cap) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One tensor of n_params: `name` is prefix + parameter name. */
static void describe_param(rc_st_tensor *t, char *name, size_t cap,
                           const char *prefix, const rc_param *p,
                           const float *flat) {
    snprintf(name, cap, "%s%s", prefix, p->name);
    t->name = name;
    t->dtype = RC_DT_F32;
    t->ndim = p->ndim;
    for (int d = 0; d < p->ndim; d++) t->shape[d] = p->shape[d];
    t->data = flat + p->offset;
}

int rc_checkpoint_save(const char *path, rc_model *m, const rc_adamw *opt,
                       int64_t step, const rc_config *cfg) {
    return rc_checkpoint_save_with_loss(path, m, opt, step, cfg, NAN);
}

int rc_checkpoint_save_with_loss(const char *path, rc_model *m,
                                 const rc_adamw *opt, int64_t step,
                                 const rc_config *cfg, double loss) {
    if (check_optimizer_size(path, m, opt) != 0) return -1;
    const rc_backend *be = rc_model_backend(m);
    size_t numel = rc_model_numel(m), bytes = numel * sizeof(float);
    int n_params = rc_model_n_params(m), groups = opt ? 3 : 1;

    /* host copies of the flat buffers: weights, then m and v */
    float *host[3] = {NULL, NULL, NULL};
    host[0] = rc_xmalloc(bytes);
    be->to_host(host[0], rc_model_weights(m), bytes);
    if (opt) {
        host[1] = rc_xmalloc(bytes);
        host[2] = rc_xmalloc(bytes);
        be->to_host(host[1], opt->m, bytes);
        be->to_host(host[2], opt->v, bytes);
    }

    int n = n_params * groups;
    rc_st_tensor *tensors = rc_xcalloc((size_t)n, sizeof *tensors);
    char (*names)[64] = rc_xcalloc((size_t)n, sizeof *names);
    for (int g = 0; g < groups; g++)
        for (int i = 0; i < n_params; i++) {
            int k = g * n_params + i;
            describe_param(&tensors[k], names[k], sizeof names[k],
                           g ? moment_prefix[g - 1] : "", rc_model_param(m, i),
                           host[g]);
        }

    char step_s[32], adam_t_s[32], seed_s[32], created[32], loss_s[40];
    snprintf(loss_s, sizeof loss_s, "%.9g", loss);
    snprintf(step_s, sizeof step_s, "%lld", (long long)step);
    snprintf(adam_t_s, sizeof adam_t_s, "%lld", opt ? (long long)opt->t : 0LL);
    snprintf(seed_s, sizeof seed_s, "%" PRIu64, cfg ? cfg->seed : (uint64_t)0);
    utc_now(created, sizeof created);
    char *config_ini = cfg ? rc_config_to_ini(cfg) : NULL;
    char *versions = versions_json();
    char world_s[16], global_batch_s[32];
    snprintf(world_s, sizeof world_s, "%d", checkpoint_world_size);
    snprintf(global_batch_s, sizeof global_batch_s, "%lld",
             cfg ? (long long)cfg->batch * checkpoint_world_size : 0LL);
    rc_st_meta meta[11];
    int n_meta = 0;
    meta[n_meta++] = (rc_st_meta){"format", CHECKPOINT_FORMAT};
    meta[n_meta++] = (rc_st_meta){"step", step_s};
    if (opt) meta[n_meta++] = (rc_st_meta){"adam_t", adam_t_s};
    if (cfg) {
        meta[n_meta++] = (rc_st_meta){"seed", seed_s};
        meta[n_meta++] = (rc_st_meta){"config", config_ini};
    }
    meta[n_meta++] = (rc_st_meta){"git_commit", RC_GIT_COMMIT};
    meta[n_meta++] = (rc_st_meta){"versions", versions ? versions : "{}"};
    meta[n_meta++] = (rc_st_meta){"created", created};
    if (isfinite(loss)) meta[n_meta++] = (rc_st_meta){"loss", loss_s};
    meta[n_meta++] = (rc_st_meta){"world_size", world_s};
    if (cfg) meta[n_meta++] = (rc_st_meta){"global_batch", global_batch_s};

    int status = rc_safetensors_write(path, tensors, n, meta, n_meta);

    free(versions);
    free(config_ini);
    free(names);
    free(tensors);
    for (int g = 0; g < 3; g++) free(host[g]);
    return status;
}

/* ---- loading ---------------------------------------------------------------- */

static int parse_int64(const char *s, int64_t *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0) return -1;
    *out = v;
    return 0;
}

/* The checkpoint tensor for parameter p (with prefix), checked against p. */
static int match_tensor(const rc_st_file *f, const char *prefix,
                        const rc_param *p, const rc_st_tensor **out) {
    const char *path = rc_safetensors_path(f);
    char name[96], want[64], have[96];
    snprintf(name, sizeof name, "%s%s", prefix, p->name);
    format_param_shape(want, sizeof want, p);
    const rc_st_tensor *t = rc_safetensors_find(f, name);
    if (!t)
        return rc_set_error("%s: tensor %s is missing from the checkpoint but "
                            "the model expects %s; was it saved from another "
                            "model configuration?", path, name, want);
    if (t->dtype != RC_DT_F32)
        return rc_set_error("%s: tensor %s has dtype %s in the checkpoint but "
                            "the model expects F32", path, name,
                            t->dtype == RC_DT_F64 ? "F64" : "I64");
    int same = t->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
    if (!same) {
        format_tensor_shape(have, sizeof have, t);
        return rc_set_error("%s: tensor %s has shape %s in the checkpoint but "
                            "the model expects %s", path, name, have, want);
    }
    *out = t;
    return 0;
}

/* Every tensor of the file must be a parameter or a moment of one. */
static int check_no_extra_tensors(const rc_st_file *f, const rc_model *m) {
    for (int i = 0; i < rc_safetensors_count(f); i++) {
        const char *name = rc_safetensors_get(f, i)->name;
        const char *param = name;
        for (int k = 0; k < 2; k++)
            if (!strncmp(name, moment_prefix[k], strlen(moment_prefix[k])))
                param = name + strlen(moment_prefix[k]);
        if (!rc_model_find_param(m, param) && !strncmp(param, "action.", 7))
            return rc_set_error("%s: tensor %s in the checkpoint is the action "
                                "head of a run trained with loss.w_act > 0; "
                                "use that run's config (RUN/config.ini) or set "
                                "loss.w_act", rc_safetensors_path(f), name);
        if (!rc_model_find_param(m, param))
            return rc_set_error("%s: tensor %s in the checkpoint is not a "
                                "parameter of the model; was it saved from "
                                "another model configuration?",
                                rc_safetensors_path(f), name);
    }
    return 0;
}

static int has_optimizer_state(const rc_st_file *f) {
    for (int i = 0; i < rc_safetensors_count(f); i++) {
        const char *name = rc_safetensors_get(f, i)->name;
        for (int k = 0; k < 2; k++)
            if (!strncmp(name, moment_prefix[k], strlen(moment_prefix[k])))
                return 1;
    }
    return 0;
}

/* The action head (loss.w_act) is the one part of a model that a checkpoint
 * of an older or head-less run may lack: such a load starts the head at
 * the identity warp (as a fresh model) instead of refusing. */
static int is_action_param(const rc_param *p) {
    return !strncmp(p->name, "action.", 7);
}

static int missing_action_head(const rc_st_file *f, const rc_model *m) {
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        if (is_action_param(p) && !rc_safetensors_find(f, p->name)) return 1;
    }
    return 0;
}

/* Find and check every tensor the load needs: group 0 the weights, groups 1
 * and 2 the moments (only if want_opt). A missing action head leaves its
 * entries NULL (upload_group fills them). */
static int collect_tensors(const rc_st_file *f, const rc_model *m, int want_opt,
                           const rc_st_tensor **found) {
    int n_params = rc_model_n_params(m);
    int no_head = missing_action_head(f, m);
    if (no_head)
        rc_log("%s has no action head (trained without loss.w_act): the head "
               "starts at the identity warp", rc_safetensors_path(f));
    for (int i = 0; i < n_params; i++) {
        if (no_head && is_action_param(rc_model_param(m, i))) continue;
        if (match_tensor(f, "", rc_model_param(m, i), &found[i]) != 0) return -1;
    }
    if (check_no_extra_tensors(f, m) != 0) return -1;
    if (!want_opt) return 0;
    if (!has_optimizer_state(f))
        return rc_set_error("%s: checkpoint has no optimizer state; cannot "
                            "resume (it can still be evaluated)",
                            rc_safetensors_path(f));
    for (int g = 1; g <= 2; g++)
        for (int i = 0; i < n_params; i++) {
            if (no_head && is_action_param(rc_model_param(m, i))) continue;
            if (match_tensor(f, moment_prefix[g - 1], rc_model_param(m, i),
                             &found[g * n_params + i]) != 0)
                return -1;
        }
    return 0;
}

/* Assemble one flat host buffer from the tensors of group g and upload it.
 * A tensor left NULL (a missing action head) becomes zeros, or for the
 * weights the head's identity bias. */
static void upload_group(const rc_backend *be, const rc_model *m,
                         const rc_st_tensor **group, int weights, float *dst) {
    size_t numel = rc_model_numel(m);
    float *host = rc_xcalloc(numel, sizeof(float));
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        if (group[i])
            memcpy(host + p->offset, group[i]->data, p->numel * sizeof(float));
        else if (weights && !strcmp(p->name, "action.bias"))
            rc_action_identity(rc_model_get_shape(m)->action_kind,
                               (int)p->numel, host + p->offset);
    }
    be->to_device(dst, host, numel * sizeof(float));
    free(host);
}

static int read_metadata(const rc_st_file *f, int64_t *step) {
    const char *path = rc_safetensors_path(f);
    const char *format = rc_safetensors_meta(f, "format");
    if (!format || strcmp(format, CHECKPOINT_FORMAT))
        return rc_set_error("%s: not a recompose checkpoint (metadata format "
                            "is %s%s%s, expected %s)", path, format ? "'" : "",
                            format ? format : "missing", format ? "'" : "",
                            CHECKPOINT_FORMAT);
    /* rc_safetensors_read verified the CRC if there is one; a checkpoint
     * must have one, or a flipped bit in its key would turn checking off */
    if (!rc_safetensors_meta(f, "crc32"))
        return rc_set_error("%s: metadata crc32 (the checksum) is missing: the "
                            "file is damaged, rewritten by another tool, or "
                            "older than checksummed checkpoints", path);
    if (parse_int64(rc_safetensors_meta(f, "step"), step) != 0)
        return rc_set_error("%s: metadata step is missing or not a "
                            "non-negative integer", path);
    return 0;
}

static int read_adam_t(const rc_st_file *f, int64_t *adam_t) {
    if (parse_int64(rc_safetensors_meta(f, "adam_t"), adam_t) != 0)
        return rc_set_error("%s: checkpoint has optimizer moments but its "
                            "metadata adam_t (the update count) is missing or "
                            "invalid; cannot resume", rc_safetensors_path(f));
    return 0;
}

static int64_t checkpoint_step_of(const char *name);

/* After a damaged PATH: keep its error and, if it is DIR/ckpt-N, add the
 * newest good checkpoint of DIR before N. Always returns -1. */
static int offer_previous_good(const char *path) {
    char damage[1024];
    snprintf(damage, sizeof damage, "%s", rc_last_error());
    const char *slash = strrchr(path, '/');
    int64_t step = checkpoint_step_of(slash ? slash + 1 : path);
    if (step < 0) return rc_set_error("%s", damage);
    char dir[1024];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    char *good = rc_checkpoint_previous_good(dir, step);
    if (!good)
        return rc_set_error("%s; there is no good checkpoint before it in %s",
                            damage, dir);
    rc_set_error("%s; the previous good checkpoint is %s: move the damaged "
                 "file aside, or resume with --resume %s", damage, good, good);
    free(good);
    return -1;
}

int rc_checkpoint_load(const char *path, rc_model *m, rc_adamw *opt,
                       int64_t *step) {
    if (check_optimizer_size(path, m, opt) != 0) return -1;
    rc_st_file *f = rc_safetensors_read(path);
    if (!f) return offer_previous_good(path);
    int n_params = rc_model_n_params(m);
    const rc_st_tensor **found = rc_xcalloc((size_t)n_params * 3, sizeof *found);
    int64_t saved_step = 0, adam_t = 0;
    int status = read_metadata(f, &saved_step);
    if (status != 0) {
        free(found);
        rc_safetensors_close(f);
        return offer_previous_good(path);
    }
    status = collect_tensors(f, m, opt != NULL, found);
    if (status == 0 && opt) status = read_adam_t(f, &adam_t);
    if (status == 0) {
        const rc_backend *be = rc_model_backend(m);
        upload_group(be, m, found, 1, rc_model_weights(m));
        if (opt) {
            upload_group(be, m, found + n_params, 0, opt->m);
            upload_group(be, m, found + 2 * n_params, 0, opt->v);
            opt->t = adam_t;
        }
        if (step) *step = saved_step;
    }
    free(found);
    rc_safetensors_close(f);
    return status;
}

/* ---- file names ------------------------------------------------------------- */

char *rc_checkpoint_path(const char *dir, int64_t step) {
    size_t cap = strlen(dir) + 64;
    char *p = rc_xmalloc(cap);
    snprintf(p, cap, "%s/ckpt-%08lld.safetensors", dir, (long long)step);
    return p;
}

/* Step of a file named exactly ckpt-<digits>.safetensors, else -1 (this
 * skips temporary files, ckpt-N.safetensors.tmp.<pid>). */
static int64_t checkpoint_step_of(const char *name) {
    static const char prefix[] = "ckpt-", suffix[] = ".safetensors";
    if (strncmp(name, prefix, sizeof prefix - 1)) return -1;
    const char *digits = name + sizeof prefix - 1, *p = digits;
    while (*p >= '0' && *p <= '9') p++;
    if (p == digits || p - digits > 18 || strcmp(p, suffix)) return -1;
    return strtoll(digits, NULL, 10);
}

char *rc_checkpoint_latest(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        rc_set_error("%s: cannot list checkpoints: %s", dir, strerror(errno));
        return NULL;
    }
    int64_t best = -1;
    char *path = NULL;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s = checkpoint_step_of(e->d_name);
        if (s <= best) continue;
        best = s;
        size_t cap = strlen(dir) + strlen(e->d_name) + 2;
        free(path);
        path = rc_xmalloc(cap);
        snprintf(path, cap, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (!path)
        rc_set_error("%s: no checkpoint (ckpt-*.safetensors) in this directory",
                     dir);
    return path;
}

/* ---- hygiene ---------------------------------------------------------------- */

int rc_checkpoint_verify(const char *path) {
    rc_st_file *f = rc_safetensors_read(path);
    if (!f) return -1;
    int64_t step;
    int status = read_metadata(f, &step);
    rc_safetensors_close(f);
    return status;
}

typedef struct {
    int64_t step;
    char *path;
} ckpt_entry;

static int compare_entries(const void *a, const void *b) {
    const ckpt_entry *x = a, *y = b;
    return x->step < y->step ? -1 : x->step > y->step;
}

/* Every ckpt-N file of DIR, sorted by step. Returns the count, or -1. */
static int list_checkpoints(const char *dir, ckpt_entry **out) {
    DIR *d = opendir(dir);
    if (!d)
        return rc_set_error("%s: cannot list checkpoints: %s", dir,
                            strerror(errno));
    ckpt_entry *list = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t s = checkpoint_step_of(e->d_name);
        if (s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ckpt_entry *grown = realloc(list, (size_t)cap * sizeof *list);
            if (!grown) {
                rc_log("out of memory listing %s", dir);
                exit(2);
            }
            list = grown;
        }
        list[n].step = s;
        list[n].path = rc_checkpoint_path(dir, s);
        n++;
    }
    closedir(d);
    qsort(list, (size_t)n, sizeof *list, compare_entries);
    *out = list;
    return n;
}

static void free_entries(ckpt_entry *list, int n) {
    for (int i = 0; i < n; i++) free(list[i].path);
    free(list);
}

char *rc_checkpoint_previous_good(const char *dir, int64_t before_step) {
    ckpt_entry *list = NULL;
    int n = list_checkpoints(dir, &list);
    char *good = NULL;
    for (int i = n - 1; i >= 0 && !good; i--)
        if (list[i].step < before_step && rc_checkpoint_verify(list[i].path) == 0)
            good = strdup(list[i].path);
    if (n > 0) free_entries(list, n);
    return good;
}

/* The "loss" metadata of a checkpoint (header only), or NAN. */
static double checkpoint_loss(const char *path) {
    rc_st_file *f = rc_safetensors_read_header(path);
    if (!f) return NAN;
    const char *s = rc_safetensors_meta(f, "loss");
    double loss = NAN;
    if (s) {
        char *end;
        loss = strtod(s, &end);
        if (*end) loss = NAN;
    }
    rc_safetensors_close(f);
    return loss;
}

int rc_checkpoint_prune(const char *dir, int keep_last) {
    if (keep_last <= 0) return 0;
    ckpt_entry *list = NULL;
    int n = list_checkpoints(dir, &list);
    if (n < 0) return -1;
    int best = -1, removed = 0, status = 0;
    double best_loss = INFINITY;
    for (int i = 0; i < n; i++) {
        double loss = checkpoint_loss(list[i].path);
        if (isfinite(loss) && loss < best_loss) best_loss = loss, best = i;
    }
    for (int i = 0; i < n - keep_last; i++) {
        if (i == best) continue;
        if (unlink(list[i].path) == 0) removed++;
        else if (errno != ENOENT)
            status = rc_set_error("%s: cannot delete an old checkpoint: %s",
                                  list[i].path, strerror(errno));
    }
    free_entries(list, n);
    return status == 0 ? removed : -1;
}

/* PID of a temporary file name ckpt-N.safetensors.tmp.PID, else -1. */
static long temp_file_pid(const char *name) {
    static const char marker[] = ".safetensors.tmp.";
    if (strncmp(name, "ckpt-", 5)) return -1;
    const char *m = strstr(name, marker);
    if (!m) return -1;
    const char *digits = m + sizeof marker - 1;
    char *end;
    long pid = strtol(digits, &end, 10);
    return end != digits && !*end && pid > 0 ? pid : -1;
}

int rc_checkpoint_remove_stale_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = temp_file_pid(e->d_name);
        /* a live writer (another process on this output) keeps its file */
        if (pid < 0 || (pid != (long)getpid() && kill((pid_t)pid, 0) == 0))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0) removed++;
    }
    closedir(d);
    return removed;
}
