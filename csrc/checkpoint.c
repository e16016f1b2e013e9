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
 */
#include "recompose/checkpoint.h"

#include <cblas.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "recompose/common.h"
#include "recompose/safetensors.h"

#define CHECKPOINT_FORMAT "recompose-checkpoint-1"

#ifndef RC_GIT_COMMIT
#define RC_GIT_COMMIT "unknown"
#endif

static const char *const moment_prefix[2] = {"optim.m.", "optim.v."};

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

    char step_s[32], adam_t_s[32], seed_s[32], created[32];
    snprintf(step_s, sizeof step_s, "%lld", (long long)step);
    snprintf(adam_t_s, sizeof adam_t_s, "%lld", opt ? (long long)opt->t : 0LL);
    snprintf(seed_s, sizeof seed_s, "%" PRIu64, cfg ? cfg->seed : (uint64_t)0);
    utc_now(created, sizeof created);
    char *config_ini = cfg ? rc_config_to_ini(cfg) : NULL;
    char *versions = versions_json();
    rc_st_meta meta[8];
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

/* Find and check every tensor the load needs: group 0 the weights, groups 1
 * and 2 the moments (only if want_opt). */
static int collect_tensors(const rc_st_file *f, const rc_model *m, int want_opt,
                           const rc_st_tensor **found) {
    int n_params = rc_model_n_params(m);
    for (int i = 0; i < n_params; i++)
        if (match_tensor(f, "", rc_model_param(m, i), &found[i]) != 0) return -1;
    if (check_no_extra_tensors(f, m) != 0) return -1;
    if (!want_opt) return 0;
    if (!has_optimizer_state(f))
        return rc_set_error("%s: checkpoint has no optimizer state; cannot "
                            "resume (it can still be evaluated)",
                            rc_safetensors_path(f));
    for (int g = 1; g <= 2; g++)
        for (int i = 0; i < n_params; i++)
            if (match_tensor(f, moment_prefix[g - 1], rc_model_param(m, i),
                             &found[g * n_params + i]) != 0)
                return -1;
    return 0;
}

/* Assemble one flat host buffer from the tensors of group g and upload it. */
static void upload_group(const rc_backend *be, const rc_model *m,
                         const rc_st_tensor **group, float *dst) {
    size_t numel = rc_model_numel(m);
    float *host = rc_xmalloc(numel * sizeof(float));
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        memcpy(host + p->offset, group[i]->data, p->numel * sizeof(float));
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

int rc_checkpoint_load(const char *path, rc_model *m, rc_adamw *opt,
                       int64_t *step) {
    if (check_optimizer_size(path, m, opt) != 0) return -1;
    rc_st_file *f = rc_safetensors_read(path);
    if (!f) return -1;
    int n_params = rc_model_n_params(m);
    const rc_st_tensor **found = rc_xcalloc((size_t)n_params * 3, sizeof *found);
    int64_t saved_step = 0, adam_t = 0;
    int status = read_metadata(f, &saved_step);
    if (status == 0) status = collect_tensors(f, m, opt != NULL, found);
    if (status == 0 && opt) status = read_adam_t(f, &adam_t);
    if (status == 0) {
        const rc_backend *be = rc_model_backend(m);
        upload_group(be, m, found, rc_model_weights(m));
        if (opt) {
            upload_group(be, m, found + n_params, opt->m);
            upload_group(be, m, found + 2 * n_params, opt->v);
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
