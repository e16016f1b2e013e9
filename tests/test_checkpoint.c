/* test_checkpoint.c: saving and loading model + AdamW state.
 *
 *  - save a model and optimizer (moments filled with distinct values), load
 *    into fresh ones: weights, m, v bit-identical, step and update count
 *    restored; the metadata holds the config (which parses back to the same
 *    config), seed, format, versions;
 *  - the file is plain safetensors: each parameter under its name with the
 *    model's shape, the moments under optim.m./optim.v.;
 *  - a model of another shape is refused with the exact message, and the
 *    refused load leaves the model untouched;
 *  - model-only save/load works; resuming from a model-only checkpoint says
 *    there is no optimizer state; a foreign tensor is refused;
 *  - a checkpoint without the action head loads into a model with one (the
 *    head at the identity), and the reverse is refused naming loss.w_act;
 *  - rc_checkpoint_latest picks the highest step and ignores temp files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/safetensors.h"
#include "test_util.h"

static char dir[256];

static void small_config(rc_config *c, int conv0_channels) {
    rc_config_default(c);
    char set[64];
    snprintf(set, sizeof set, "model.conv_channels=%d,12,16", conv0_channels);
    const char *sets[] = {set, "model.conv_kernels=5,3,3",
                          "model.conv_strides=2,2,2", "data.image_size=32",
                          "model.feature_dim=16", "model.hidden=16",
                          "model.embed_dim=8", "train.seed=987654321987"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (rc_config_set(c, sets[i]) != 0) {
            fprintf(stderr, "%s\n", rc_last_error());
            exit(1);
        }
}

static rc_model *make_model(const rc_config *c) {
    rc_model_shape s;
    rc_model_shape_from_config(c, &s);
    rc_model *m = rc_model_create(&s, rc_backend_cpu());
    if (!m) {
        fprintf(stderr, "rc_model_create: %s\n", rc_last_error());
        exit(1);
    }
    return m;
}

static void fill_pattern(float *host, size_t n, float scale, float shift) {
    for (size_t i = 0; i < n; i++) host[i] = scale * (float)((i * 7919) % 1013) + shift;
}

static int same_bytes(const rc_backend *be, const float *dev_a,
                      const float *dev_b, size_t n) {
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    be->to_host(a, dev_a, n * sizeof *a);
    be->to_host(b, dev_b, n * sizeof *b);
    int same = memcmp(a, b, n * sizeof *a) == 0;
    free(a);
    free(b);
    return same;
}

static void test_save_load(const char *path) {
    const rc_backend *be = rc_backend_cpu();
    rc_config c;
    small_config(&c, 8);
    rc_model *m = make_model(&c);
    rc_model_init_weights(m, c.seed);
    rc_adamw o;
    rc_adamw_init(&o, &c, rc_model_numel(m), be);
    size_t n = rc_model_numel(m);
    float *host = malloc(n * sizeof *host);
    fill_pattern(host, n, 1e-3f, -0.5f);
    be->to_device(o.m, host, n * sizeof *host);
    fill_pattern(host, n, 1e-6f, 1e-9f);
    be->to_device(o.v, host, n * sizeof *host);
    o.t = 41;
    CHECK_MSG(rc_checkpoint_save(path, m, &o, 42, &c) == 0, "%s", rc_last_error());

    /* a fresh model and optimizer (zero weights and moments) */
    rc_model *m2 = make_model(&c);
    rc_adamw o2;
    rc_adamw_init(&o2, &c, n, be);
    int64_t step = -1;
    CHECK_MSG(rc_checkpoint_load(path, m2, &o2, &step) == 0, "%s", rc_last_error());
    CHECK(step == 42 && o2.t == 41);
    CHECK(same_bytes(be, rc_model_weights(m), rc_model_weights(m2), n));
    CHECK(same_bytes(be, o.m, o2.m, n));
    CHECK(same_bytes(be, o.v, o2.v, n));

    /* the file, read as plain safetensors */
    rc_st_file *f = rc_safetensors_read(path);
    CHECK_MSG(f != NULL, "%s", rc_last_error());
    if (f) {
        int np = rc_model_n_params(m);
        CHECK(rc_safetensors_count(f) == 3 * np);
        be->to_host(host, rc_model_weights(m), n * sizeof *host);
        for (int i = 0; i < np; i++) {
            const rc_param *p = rc_model_param(m, i);
            const rc_st_tensor *t = rc_safetensors_find(f, p->name);
            CHECK_MSG(t && t->dtype == RC_DT_F32 && t->ndim == p->ndim, "%s", p->name);
            if (!t) continue;
            for (int d = 0; d < p->ndim; d++) CHECK(t->shape[d] == p->shape[d]);
            CHECK(!memcmp(t->data, host + p->offset, p->numel * sizeof(float)));
            char name[96];
            snprintf(name, sizeof name, "optim.v.%s", p->name);
            CHECK_MSG(rc_safetensors_find(f, name), "%s missing", name);
        }
        CHECK(rc_safetensors_find(f, "encoder.conv0.weight")->shape[1] == 2);
        const char *fmt = rc_safetensors_meta(f, "format");
        CHECK(fmt && !strcmp(fmt, "recompose-checkpoint-1"));
        CHECK(!strcmp(rc_safetensors_meta(f, "step"), "42"));
        CHECK(!strcmp(rc_safetensors_meta(f, "adam_t"), "41"));
        CHECK(!strcmp(rc_safetensors_meta(f, "seed"), "987654321987"));
        CHECK(rc_safetensors_meta(f, "git_commit") != NULL);
        const char *created = rc_safetensors_meta(f, "created");
        CHECK(created && strlen(created) == 20 && created[19] == 'Z');
        const char *versions = rc_safetensors_meta(f, "versions");
        CHECK(versions && strstr(versions, "\"recompose\":\"" RC_VERSION "\"") &&
              strstr(versions, "jansson") && strstr(versions, "openblas"));
        /* the stored config is the run's config */
        char ini_path[300];
        snprintf(ini_path, sizeof ini_path, "%s/config.ini", dir);
        FILE *out = fopen(ini_path, "w");
        fputs(rc_safetensors_meta(f, "config"), out);
        fclose(out);
        rc_config back;
        rc_config_default(&back);
        CHECK_MSG(rc_config_load(&back, ini_path) == 0, "%s", rc_last_error());
        CHECK(memcmp(&back, &c, sizeof c) == 0);
        rc_safetensors_close(f);
    }

    /* model-only load of a training checkpoint */
    rc_model *m3 = make_model(&c);
    step = -1;
    CHECK_MSG(rc_checkpoint_load(path, m3, NULL, &step) == 0, "%s", rc_last_error());
    CHECK(step == 42 && same_bytes(be, rc_model_weights(m), rc_model_weights(m3), n));

    free(host);
    rc_adamw_free(&o);
    rc_adamw_free(&o2);
    rc_model_free(m);
    rc_model_free(m2);
    rc_model_free(m3);
}

static void test_other_shape_refused(const char *path) {
    const rc_backend *be = rc_backend_cpu();
    rc_config c;
    small_config(&c, 12);   /* the checkpoint has 8 channels in conv0 */
    rc_model *m = make_model(&c);
    rc_model_init_weights(m, 5);
    size_t n = rc_model_numel(m);
    float *before = malloc(n * sizeof *before), *after = malloc(n * sizeof *after);
    be->to_host(before, rc_model_weights(m), n * sizeof *before);
    rc_adamw o;
    rc_adamw_init(&o, &c, n, be);
    int64_t step = -1;
    CHECK(rc_checkpoint_load(path, m, &o, &step) == -1);
    char want[600];
    snprintf(want, sizeof want,
             "%s: tensor encoder.conv0.weight has shape [8,2,5,5] in the "
             "checkpoint but the model expects [12,2,5,5]", path);
    CHECK_MSG(!strcmp(rc_last_error(), want), "\n got: %s\nwant: %s",
              rc_last_error(), want);
    CHECK(rc_checkpoint_load(path, m, NULL, &step) == -1 &&
          !strcmp(rc_last_error(), want));
    be->to_host(after, rc_model_weights(m), n * sizeof *after);
    CHECK(step == -1 && memcmp(before, after, n * sizeof *after) == 0);

    /* an optimizer sized for another model */
    rc_config c8;
    small_config(&c8, 8);
    rc_model *m8 = make_model(&c8);
    CHECK(rc_checkpoint_load(path, m8, &o, &step) == -1 &&
          strstr(rc_last_error(), "optimizer holds"));
    rc_model_free(m8);
    rc_adamw_free(&o);
    rc_model_free(m);
    free(before);
    free(after);
}

static void test_model_only(void) {
    const rc_backend *be = rc_backend_cpu();
    char path[300];
    snprintf(path, sizeof path, "%s/model_only.safetensors", dir);
    rc_config c;
    small_config(&c, 8);
    rc_model *m = make_model(&c);
    rc_model_init_weights(m, 77);
    CHECK_MSG(rc_checkpoint_save(path, m, NULL, 7, &c) == 0, "%s", rc_last_error());
    rc_model *m2 = make_model(&c);
    int64_t step = 0;
    CHECK_MSG(rc_checkpoint_load(path, m2, NULL, &step) == 0, "%s", rc_last_error());
    CHECK(step == 7 && same_bytes(be, rc_model_weights(m), rc_model_weights(m2),
                                  rc_model_numel(m)));
    rc_st_file *f = rc_safetensors_read(path);
    CHECK(f && rc_safetensors_count(f) == rc_model_n_params(m) &&
          rc_safetensors_meta(f, "adam_t") == NULL);
    rc_safetensors_close(f);

    /* resuming needs the optimizer state */
    rc_adamw o;
    rc_adamw_init(&o, &c, rc_model_numel(m), be);
    CHECK(rc_checkpoint_load(path, m2, &o, &step) == -1);
    CHECK_MSG(strstr(rc_last_error(), path) &&
              strstr(rc_last_error(), "checkpoint has no optimizer state; cannot resume"),
              "%s", rc_last_error());
    rc_adamw_free(&o);

    /* a tensor the model does not have; a missing one; a wrong dtype */
    size_t n = rc_model_numel(m);
    float *w = malloc(n * sizeof *w);
    be->to_host(w, rc_model_weights(m), n * sizeof *w);
    int np = rc_model_n_params(m);
    rc_st_tensor *t = calloc((size_t)np + 1, sizeof *t);
    for (int i = 0; i < np; i++) {
        const rc_param *p = rc_model_param(m, i);
        t[i] = (rc_st_tensor){p->name, RC_DT_F32, p->ndim, {0}, w + p->offset};
        for (int d = 0; d < p->ndim; d++) t[i].shape[d] = p->shape[d];
    }
    t[np] = (rc_st_tensor){"decoder.weight", RC_DT_F32, 1, {2}, w};
    rc_st_meta meta[2] = {{"format", "recompose-checkpoint-1"}, {"step", "3"}};
    CHECK(rc_safetensors_write(path, t, np + 1, meta, 2) == 0);
    CHECK(rc_checkpoint_load(path, m2, NULL, &step) == -1);
    CHECK_MSG(strstr(rc_last_error(), "tensor decoder.weight in the checkpoint is "
                     "not a parameter of the model"), "%s", rc_last_error());
    CHECK(rc_safetensors_write(path, t + 1, np - 1, meta, 2) == 0);
    CHECK(rc_checkpoint_load(path, m2, NULL, &step) == -1);
    CHECK_MSG(strstr(rc_last_error(), "tensor encoder.conv0.weight is missing "
                     "from the checkpoint but the model expects [8,2,5,5]"),
              "%s", rc_last_error());
    /* head.bias (D = 8) as float64 */
    double *d8 = calloc(8, sizeof *d8);
    CHECK(!strcmp(t[np - 1].name, "head.bias") && t[np - 1].shape[0] == 8);
    t[np - 1].dtype = RC_DT_F64;
    t[np - 1].data = d8;
    CHECK(rc_safetensors_write(path, t, np, meta, 2) == 0);
    CHECK(rc_checkpoint_load(path, m2, NULL, &step) == -1);
    CHECK_MSG(strstr(rc_last_error(), "tensor head.bias has dtype F64 in the "
                     "checkpoint but the model expects F32"), "%s", rc_last_error());
    /* not a checkpoint at all */
    rc_st_meta other[1] = {{"format", "pt"}};
    CHECK(rc_safetensors_write(path, t, 1, other, 1) == 0);
    CHECK(rc_checkpoint_load(path, m2, NULL, &step) == -1 &&
          strstr(rc_last_error(), "not a recompose checkpoint"));
    free(d8);
    free(t);
    free(w);
    rc_model_free(m);
    rc_model_free(m2);
}

static void touch(const char *name) {
    char p[400];
    snprintf(p, sizeof p, "%s/ckdir/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

static void test_latest(void) {
    char d[300];
    snprintf(d, sizeof d, "%s/ckdir", dir);
    mkdir(d, 0755);
    CHECK(rc_checkpoint_latest(d) == NULL);
    char *p = rc_checkpoint_path(d, 12);
    char want[400];
    snprintf(want, sizeof want, "%s/ckpt-00000012.safetensors", d);
    CHECK(!strcmp(p, want));
    free(p);
    touch("ckpt-00000004.safetensors");
    touch("ckpt-00000012.safetensors");
    touch("ckpt-00000100.safetensors.tmp.1234");
    touch("ckpt-00000200.safetensors.bak");
    touch("ckpt-.safetensors");
    touch("other-00000300.safetensors");
    touch("ckpt-x0000400.safetensors");
    p = rc_checkpoint_latest(d);
    CHECK_MSG(p && !strcmp(p, want), "latest: %s", p ? p : "(null)");
    free(p);
    /* numeric, not lexicographic: step 1e8 has nine digits */
    touch("ckpt-100000000.safetensors");
    p = rc_checkpoint_latest(d);
    CHECK(p && strstr(p, "/ckpt-100000000.safetensors"));
    free(p);
    CHECK(rc_checkpoint_latest("/nonexistent/dir") == NULL);
}

/* The action head (loss.w_act): a checkpoint without it (an older run, or
 * one trained without the term) loads into a model with it, weights and
 * moments alike, the head at the identity warp and every other tensor as
 * saved; a checkpoint with it is refused by a model without it, naming the
 * key to set. */
static void test_action_head(void) {
    const rc_backend *be = rc_backend_cpu();
    char path[300];
    snprintf(path, sizeof path, "%s/no_head.safetensors", dir);
    rc_config plain, act;
    small_config(&plain, 8);
    act = plain;
    act.loss.w_act = 10;
    act.loss.act_border = 4;
    rc_model *m = make_model(&plain), *ma = make_model(&act);
    rc_model_init_weights(m, 77);
    CHECK(rc_model_find_param(m, "action.weight") == NULL);
    rc_adamw o, oa;
    rc_adamw_init(&o, &plain, rc_model_numel(m), be);
    rc_adamw_init(&oa, &act, rc_model_numel(ma), be);
    fill_pattern(o.m, rc_model_numel(m), 1e-3f, 0.5f);
    CHECK_MSG(rc_checkpoint_save(path, m, &o, 9, &plain) == 0, "%s", rc_last_error());
    fill_pattern(rc_model_weights(ma), rc_model_numel(ma), 1.0f, 3.0f);
    fill_pattern(oa.m, rc_model_numel(ma), 1.0f, 3.0f);
    int64_t step = 0;
    CHECK_MSG(rc_checkpoint_load(path, ma, &oa, &step) == 0, "%s", rc_last_error());
    CHECK(step == 9);
    for (int i = 0; i < rc_model_n_params(m); i++) {
        const rc_param *p = rc_model_param(m, i);
        const rc_param *q = rc_model_find_param(ma, p->name);
        CHECK(q && q->numel == p->numel &&
              !memcmp(rc_model_weights(ma) + q->offset,
                      rc_model_weights(m) + p->offset, p->numel * sizeof(float)) &&
              !memcmp(oa.m + q->offset, o.m + p->offset, p->numel * sizeof(float)));
    }
    const rc_param *aw = rc_model_find_param(ma, "action.weight");
    const rc_param *ab = rc_model_find_param(ma, "action.bias");
    CHECK(aw && ab);
    const float *w = rc_model_weights(ma);
    static const float identity[6] = {1, 0, 0, 0, 1, 0};
    for (size_t k = 0; k < aw->numel; k++)
        CHECK(w[aw->offset + k] == 0 && oa.m[aw->offset + k] == 0 &&
              oa.v[aw->offset + k] == 0);
    CHECK(!memcmp(w + ab->offset, identity, sizeof identity));

    /* and the other way: a head the model does not have */
    CHECK_MSG(rc_checkpoint_save(path, ma, NULL, 10, &act) == 0, "%s", rc_last_error());
    CHECK(rc_checkpoint_load(path, m, NULL, &step) == -1);
    CHECK_MSG(strstr(rc_last_error(), "action head of a run trained with "
                     "loss.w_act > 0"), "%s", rc_last_error());
    rc_adamw_free(&o);
    rc_adamw_free(&oa);
    rc_model_free(m);
    rc_model_free(ma);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rc_test_checkpoint_%d", (int)getpid());
    mkdir(dir, 0755);
    char path[300];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    test_save_load(path);
    test_other_shape_refused(path);
    test_model_only();
    test_action_head();
    test_latest();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
    TEST_DONE();
}
