/* test_resume.c: determinism and exact resume.
 *  - the same config and seed give bitwise identical checkpoints;
 *  - N steps straight == k steps, stop, resume, N-k steps, bit for bit
 *    (weights and optimiser state). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/safetensors.h"
#include "recompose/train.h"
#include "test_util.h"

static void small_config(rc_config *c) {
    rc_config_default(c);
    c->image_size = 32;
    c->n_conv = 3;
    int ch[] = {8, 12, 16}, k[] = {5, 3, 3};
    for (int i = 0; i < 3; i++) {
        c->conv_channels[i] = ch[i];
        c->conv_kernels[i] = k[i];
        c->conv_strides[i] = 2;
    }
    c->feature_dim = 16;
    c->hidden = 16;
    c->embed_dim = 8;
    c->clip_steps = 3;
    c->batch = 4;
    c->steps = 12;
    c->warmup = 3;
    c->log_every = 2;
    c->checkpoint_every = 4;
    c->threads = 2;
}

static int files_identical(const char *a, const char *b) {
    rc_st_file *fa = rc_safetensors_read(a), *fb = rc_safetensors_read(b);
    if (!fa || !fb) {
        fprintf(stderr, "cannot read: %s\n", rc_last_error());
        return 0;
    }
    int same = rc_safetensors_count(fa) == rc_safetensors_count(fb);
    for (int i = 0; same && i < rc_safetensors_count(fa); i++) {
        const rc_st_tensor *ta = rc_safetensors_get(fa, i);
        const rc_st_tensor *tb = rc_safetensors_find(fb, ta->name);
        if (!tb || ta->dtype != tb->dtype || ta->ndim != tb->ndim) {
            same = 0;
            break;
        }
        size_t bytes = ta->dtype == RC_DT_F32 ? 4 : 8;
        for (int d = 0; d < ta->ndim; d++) bytes *= (size_t)ta->shape[d];
        if (memcmp(ta->data, tb->data, bytes) != 0) {
            fprintf(stderr, "tensor %s differs\n", ta->name);
            same = 0;
        }
    }
    const char *sa = rc_safetensors_meta(fa, "step"), *sb = rc_safetensors_meta(fb, "step");
    same = same && sa && sb && !strcmp(sa, sb);
    rc_safetensors_close(fa);
    rc_safetensors_close(fb);
    return same;
}

static int train(const rc_config *c, const char *dir, const char *resume,
                 long long stop_after) {
    rc_train_options o = {.out_dir = dir, .resume = resume,
                          .stop_after = stop_after, .quiet = 1};
    rc_train_result r;
    int s = rc_train(c, &o, &r);
    if (s != 0) fprintf(stderr, "train failed: %s\n", rc_last_error());
    return s;
}

int main(void) {
    char root[] = "/tmp/rc_resume_XXXXXX";
    CHECK(mkdtemp(root) != NULL);
    char a[300], b[300], r[300];
    snprintf(a, sizeof a, "%s/a", root);
    snprintf(b, sizeof b, "%s/b", root);
    snprintf(r, sizeof r, "%s/r", root);
    rc_config c;
    small_config(&c);

    CHECK(train(&c, a, NULL, 0) == 0);
    CHECK(train(&c, b, NULL, 0) == 0);
    char *fa = rc_checkpoint_path(a, 12), *fb = rc_checkpoint_path(b, 12);
    CHECK_MSG(files_identical(fa, fb), "two identical runs differ");

    /* stop at 5 (not a checkpoint multiple: the stop writes one), resume */
    CHECK(train(&c, r, NULL, 5) == 0);
    char *f5 = rc_checkpoint_path(r, 5);
    CHECK_MSG(access(f5, R_OK) == 0, "no checkpoint at the stop step");
    CHECK(train(&c, r, r, 0) == 0);
    char *fr = rc_checkpoint_path(r, 12);
    CHECK_MSG(files_identical(fa, fr), "resumed run differs from straight run");

    /* a different seed gives a different run (the comparison can fail) */
    char d[300];
    snprintf(d, sizeof d, "%s/d", root);
    c.seed = 2;
    CHECK(train(&c, d, NULL, 0) == 0);
    char *fd = rc_checkpoint_path(d, 12);
    CHECK_MSG(!files_identical(fa, fd), "different seeds gave identical runs");

    free(fa); free(fb); free(f5); free(fr); free(fd);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    TEST_DONE();
}
