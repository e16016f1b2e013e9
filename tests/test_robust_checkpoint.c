/* test_robust_checkpoint.c: checkpoint hygiene.
 *
 *  - the CRC32 catches damage: single bit flips at header and data
 *    positions and truncations are all refused, naming the file (data
 *    flips as "checksum mismatch"), and a refused load leaves the model
 *    untouched;
 *  - a damaged newest checkpoint is named and the newest good one before it
 *    offered (skipping another damaged one);
 *  - header-only reads give the metadata of a file without its data;
 *  - pruning keeps the newest N and the one with the lowest loss, and
 *    keep_last = 0 keeps everything;
 *  - temporary files of dead writers are removed, a live writer's kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/safetensors.h"
#include "test_util.h"

static char dir[256];

static rc_model *make_model(rc_config *c) {
    rc_config_default(c);
    const char *sets[] = {"model.conv_channels=4,8", "model.conv_kernels=3,3",
                          "model.conv_strides=2,2", "data.image_size=16",
                          "model.feature_dim=8", "model.hidden=8",
                          "model.embed_dim=4"};
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        if (rc_config_set(c, sets[i]) != 0) {
            fprintf(stderr, "%s\n", rc_last_error());
            exit(1);
        }
    rc_model_shape s;
    rc_model_shape_from_config(c, &s);
    rc_model *m = rc_model_create(&s, rc_backend_cpu());
    if (!m) exit(1);
    rc_model_init_weights(m, 7);
    return m;
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static int starts_with(const char *s, const char *prefix) {
    return !strncmp(s, prefix, strlen(prefix));
}

/* Flip bits all over a copy of a good checkpoint: each copy is refused. */
static void test_damage_detected(rc_model *m, const rc_config *c) {
    char good[300], bad[300];
    snprintf(good, sizeof good, "%s/good.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    rc_adamw opt;
    rc_adamw_init(&opt, c, rc_model_numel(m), rc_backend_cpu());
    CHECK_MSG(rc_checkpoint_save(good, m, &opt, 3, c) == 0, "%s", rc_last_error());
    CHECK_MSG(rc_checkpoint_verify(good) == 0, "%s", rc_last_error());
    size_t n = 0;
    unsigned char *b = slurp(good, &n);
    CHECK(b && n > 1000);
    size_t header = 8 + ((size_t)b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16);

    float *before = malloc(rc_model_numel(m) * sizeof(float));
    memcpy(before, rc_model_weights(m), rc_model_numel(m) * sizeof(float));
    int tried = 0, mismatches = 0, data_flips = 0;
    for (size_t at = 0; at < n; at += at < header ? 7 : 97) {
        for (int bit = 0; bit < 8; bit += 3) {
            b[at] ^= (unsigned char)(1u << bit);
            spit(bad, b, n);
            b[at] ^= (unsigned char)(1u << bit);
            int64_t step = -1;
            int status = rc_checkpoint_load(bad, m, &opt, &step);
            tried++;
            /* the CRC covers every byte, the header's padding included */
            CHECK_MSG(status == -1, "flip of bit %d at byte %zu accepted", bit, at);
            if (status == 0) continue;
            CHECK_MSG(starts_with(rc_last_error(), bad), "error lacks the path: %s",
                      rc_last_error());
            if (at >= header)
                CHECK_MSG(strstr(rc_last_error(), "checksum mismatch"),
                          "data flip at %zu: %s", at, rc_last_error());
            mismatches += strstr(rc_last_error(), "checksum mismatch") != NULL;
            data_flips += at >= header;
        }
    }
    fprintf(stderr, "%d flips refused, %d as checksum mismatches (%d in the data)\n",
            tried, mismatches, data_flips);
    CHECK(tried > 300 && data_flips > 100 && mismatches >= data_flips);
    CHECK(memcmp(before, rc_model_weights(m), rc_model_numel(m) * sizeof(float)) == 0);
    for (size_t cut = 0; cut < n; cut += n / 17 + 1) {
        spit(bad, b, cut);
        CHECK_MSG(rc_checkpoint_verify(bad) == -1, "truncated to %zu accepted", cut);
    }
    spit(bad, b, n); /* an undamaged copy still loads */
    CHECK_MSG(rc_checkpoint_verify(bad) == 0, "%s", rc_last_error());
    free(before);
    free(b);
    rc_adamw_free(&opt);
}

/* ckpt-2, 4, 6 good; damage 6, then 4 too. */
static void test_previous_good_offered(rc_model *m, const rc_config *c) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/offer", dir);
    mkdir(sub, 0777);
    for (int s = 2; s <= 6; s += 2) {
        char *p = rc_checkpoint_path(sub, s);
        CHECK(rc_checkpoint_save(p, m, NULL, s, c) == 0);
        free(p);
    }
    char *p6 = rc_checkpoint_path(sub, 6), *p4 = rc_checkpoint_path(sub, 4),
         *p2 = rc_checkpoint_path(sub, 2);
    size_t n;
    unsigned char *b = slurp(p6, &n);
    b[n - 5] ^= 0x10;
    spit(p6, b, n);
    free(b);
    int64_t step;
    CHECK(rc_checkpoint_load(p6, m, NULL, &step) == -1);
    const char *e = rc_last_error();
    CHECK_MSG(starts_with(e, p6) && strstr(e, "checksum mismatch") &&
              strstr(e, "the previous good checkpoint is") && strstr(e, p4),
              "%s", e);
    b = slurp(p4, &n);
    spit(p4, b, n / 2); /* truncated */
    free(b);
    CHECK(rc_checkpoint_load(p6, m, NULL, &step) == -1);
    e = rc_last_error();
    CHECK_MSG(strstr(e, p2) && !strstr(e, p4), "%s", e);
    char *good = rc_checkpoint_previous_good(sub, 100);
    CHECK_MSG(good && !strcmp(good, p2), "%s", good ? good : "NULL");
    free(good);
    CHECK(rc_checkpoint_previous_good(sub, 2) == NULL);
    free(p6);
    free(p4);
    free(p2);
}

static void test_header_only(rc_model *m, const rc_config *c) {
    char path[300];
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    CHECK(rc_checkpoint_save_with_loss(path, m, NULL, 9, c, 0.25) == 0);
    rc_st_file *f = rc_safetensors_read_header(path);
    CHECK_MSG(f != NULL, "%s", rc_last_error());
    if (!f) return;
    CHECK(rc_safetensors_count(f) == rc_model_n_params(m));
    CHECK(rc_safetensors_get(f, 0)->data == NULL);
    CHECK(!strcmp(rc_safetensors_meta(f, "step"), "9"));
    CHECK(!strcmp(rc_safetensors_meta(f, "loss"), "0.25"));
    rc_safetensors_close(f);
}

static int exists(const char *sub, int step) {
    char *p = rc_checkpoint_path(sub, step);
    int e = access(p, F_OK) == 0;
    free(p);
    return e;
}

static void test_prune(rc_model *m, const rc_config *c) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/prune", dir);
    mkdir(sub, 0777);
    const double loss[] = {5, 4, 1, 3, 3, 2, 2, 2};
    for (int s = 1; s <= 8; s++) {
        char *p = rc_checkpoint_path(sub, s);
        CHECK(rc_checkpoint_save_with_loss(p, m, NULL, s, c, loss[s - 1]) == 0);
        free(p);
    }
    CHECK(rc_checkpoint_prune(sub, 0) == 0);
    for (int s = 1; s <= 8; s++) CHECK(exists(sub, s));
    CHECK_MSG(rc_checkpoint_prune(sub, 3) == 4, "%s", rc_last_error());
    const int kept[] = {0, 0, 0, 1, 0, 0, 1, 1, 1}; /* best 3, newest 6..8 */
    for (int s = 1; s <= 8; s++)
        CHECK_MSG(exists(sub, s) == kept[s], "step %d", s);
    CHECK(rc_checkpoint_prune(sub, 3) == 0);
}

static void test_stale_temps(void) {
    char sub[300], dead_tmp[400], live_tmp[400], other[400];
    snprintf(sub, sizeof sub, "%s/temps", dir);
    mkdir(sub, 0777);
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* now a pid that runs nothing */
    snprintf(dead_tmp, sizeof dead_tmp, "%s/ckpt-00000005.safetensors.tmp.%ld",
             sub, (long)child);
    snprintf(live_tmp, sizeof live_tmp, "%s/ckpt-00000005.safetensors.tmp.%ld",
             sub, (long)getppid());
    snprintf(other, sizeof other, "%s/notes.tmp.%ld", sub, (long)child);
    spit(dead_tmp, (const unsigned char *)"x", 1);
    spit(live_tmp, (const unsigned char *)"x", 1);
    spit(other, (const unsigned char *)"x", 1);
    CHECK(rc_checkpoint_remove_stale_temps(sub) == 1);
    CHECK(access(dead_tmp, F_OK) != 0);
    CHECK(access(live_tmp, F_OK) == 0);
    CHECK(access(other, F_OK) == 0);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rc_robust_ckpt_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    rc_config c;
    rc_model *m = make_model(&c);
    test_damage_detected(m, &c);
    test_previous_good_offered(m, &c);
    test_header_only(m, &c);
    test_prune(m, &c);
    test_stale_temps();
    rc_model_free(m);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
