/* test_config.c: INI loading, --set, validation and the INI round trip.
 *
 *  - the built-in defaults are valid, and configs/tiny.ini (written by hand)
 *    loads to exactly the defaults; configs/paper.ini loads to SPEC §5;
 *  - rc_config_to_ini() parses back to a byte-identical struct (memcmp;
 *    rc_config_default zeroes padding), from any starting config;
 *  - every fixture in tests/data/bad_configs fails with "PATH:LINE:" (lines
 *    counted by hand in the fixture's first-line comment), the key's name and
 *    what is allowed;
 *  - --set applies overrides with the same checks; cross-field validation. */
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/config.h"
#include "test_util.h"

static int contains(const char *haystack, const char *needle) {
    return strstr(haystack, needle) != NULL;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

/* to_ini(c) loaded over `start` must reproduce c exactly. */
static void check_round_trip(const rc_config *c, const rc_config *start,
                             const char *what) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/rc_test_config_%d.ini", (int)getpid());
    char *ini = rc_config_to_ini(c);
    write_file(path, ini);
    rc_config back = *start;
    int status = rc_config_load(&back, path);
    CHECK_MSG(status == 0, "%s: %s", what, rc_last_error());
    CHECK_MSG(memcmp(&back, c, sizeof back) == 0, "%s: round trip differs:\n%s",
              what, ini);
    /* field-by-field spot checks, in case padding ever hid a difference */
    CHECK(back.lr == c->lr && back.eps == c->eps && back.seed == c->seed);
    CHECK(back.n_conv == c->n_conv && back.loss.squared == c->loss.squared);
    /* the text is canonical: writing it again gives the same text */
    char *again = rc_config_to_ini(&back);
    CHECK_MSG(strcmp(ini, again) == 0, "%s: to_ini is not stable", what);
    free(again);
    free(ini);
    unlink(path);
}

static void test_defaults(void) {
    rc_config c;
    rc_config_default(&c);
    CHECK_MSG(rc_config_validate(&c) == 0, "%s", rc_last_error());
    /* SPEC §5 tiny preset */
    CHECK(c.image_size == 64 && c.channels == 1 && c.n_conv == 4);
    int ch[] = {16, 32, 64, 64}, k[] = {5, 3, 3, 3};
    for (int i = 0; i < 4; i++) {
        CHECK(c.conv_channels[i] == ch[i] && c.conv_kernels[i] == k[i] &&
              c.conv_strides[i] == 2);
    }
    CHECK(c.feature_dim == 128 && c.hidden == 128 && c.embed_dim == 64);
    CHECK(c.clip_steps == 4 && c.batch == 16 && c.steps == 1500);
    CHECK(c.lr == 2e-3f && c.warmup == 100 && c.min_lr_ratio == 0.05f);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f);
    CHECK(c.clip_norm == 1.0f && c.seed == 1 && c.threads == 0 && c.dedup == 1);
    CHECK(!strcmp(c.source, "synthetic"));
    CHECK(c.eval_clips == 512 && c.probe_train_clips == 1024 &&
          c.ridge_lambda == 1e-2f && c.retrieval_k == 5 &&
          c.pixel_baseline_size == 16);
    /* the [loss] defaults agree with the sampler's own defaults */
    rc_loss_config l;
    memset(&l, 0, sizeof l);
    rc_loss_config_default(&l);
    CHECK(memcmp(&l, &c.loss, sizeof l) == 0);

    rc_synth_config s;
    rc_config_synth(&c, &s);
    CHECK(s.size == 64 && s.channels == 1 && s.max_speed == 2.0f &&
          s.max_rotation == 0.1f);
}

static void test_preset_files(void) {
    rc_config defaults, tiny, paper;
    rc_config_default(&defaults);
    rc_config_default(&paper);
    /* tiny.ini over the paper preset: every key is in the file */
    CHECK_MSG(rc_config_load(&paper, "configs/paper.ini") == 0, "%s",
              rc_last_error());
    tiny = paper;
    CHECK_MSG(rc_config_load(&tiny, "configs/tiny.ini") == 0, "%s",
              rc_last_error());
    /* ... but for the optional loss terms it switches on (chosen by
     * measurement, docs/RESULTS.md section 5; off built in, since they need
     * synthetic data) */
    rc_config paper_loss = paper;
    CHECK_MSG(rc_config_load(&paper_loss, "configs/tiny-paper-loss.ini") == 0,
              "%s", rc_last_error());
    CHECK_MSG(memcmp(&paper_loss, &defaults, sizeof paper_loss) == 0,
              "configs/tiny-paper-loss.ini is not the built-in defaults (the "
              "paper's loss)");
    defaults.loss.w_kind[RC_PAIR_FULL_TEX] = 1;
    defaults.loss.w_kind[RC_PAIR_FULL_PAN] = 1;
    defaults.loss.w_act = 10; /* docs/RESULTS.md section 7 */
    CHECK_MSG(memcmp(&tiny, &defaults, sizeof tiny) == 0,
              "configs/tiny.ini differs from the built-in defaults");

    CHECK_MSG(rc_config_validate(&paper) == 0, "%s", rc_last_error());
    CHECK(paper.image_size == 128 && paper.channels == 3 && paper.n_conv == 5);
    int ch[] = {64, 128, 256, 256, 512}, k[] = {5, 3, 3, 3, 3},
        st[] = {2, 2, 2, 2, 1};
    for (int i = 0; i < 5; i++)
        CHECK(paper.conv_channels[i] == ch[i] && paper.conv_kernels[i] == k[i] &&
              paper.conv_strides[i] == st[i]);
    for (int i = 5; i < RC_MAX_CONV; i++)
        CHECK(paper.conv_channels[i] == 0 && paper.conv_kernels[i] == 0);
    CHECK(paper.feature_dim == 512 && paper.hidden == 512 &&
          paper.embed_dim == 128 && paper.clip_steps == 5 && paper.batch == 64);
}

static void test_round_trip(void) {
    rc_config d, p, odd;
    rc_config_default(&d);
    rc_config_default(&p);
    CHECK(rc_config_load(&p, "configs/paper.ini") == 0);
    check_round_trip(&d, &p, "defaults over paper");
    check_round_trip(&p, &d, "paper over defaults");

    /* values that are not short decimals, extremes and non-default enums */
    rc_config_default(&odd);
    const char *sets[] = {
        "train.lr=3e-4", "train.eps=1.2345678e-9", "train.beta2=0.99999988",
        "train.seed=18446744073709551615", "train.dedup=no",
        "loss.hinge=plain", "loss.margin=0.1", "loss.w_full_rev=0.333333343",
        "model.conv_channels=8,12,16", "model.conv_kernels=7,1,3",
        "model.conv_strides=1,3,4", "data.max_rotation=3.14159",
        "eval.ridge_lambda=0", "train.clip_norm=0",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
        CHECK_MSG(rc_config_set(&odd, sets[i]) == 0, "%s: %s", sets[i],
                  rc_last_error());
    CHECK_MSG(rc_config_validate(&odd) == 0, "%s", rc_last_error());
    CHECK(odd.lr == strtof("3e-4", NULL) && odd.seed == UINT64_MAX);
    CHECK(odd.dedup == 0 && odd.loss.squared == 0 && odd.n_conv == 3);
    check_round_trip(&odd, &d, "odd values over defaults");
    check_round_trip(&odd, &p, "odd values over paper");
}

typedef struct {
    const char *file;
    int line;
    const char *key;        /* the key (or section) named */
    const char *allowed;    /* what the message says is allowed */
} bad_case;

static void test_bad_configs(void) {
    static const bad_case cases[] = {
        {"unknown_key", 5, "train.lrr", "did you mean train.lr?"},
        {"wrong_type", 4, "train.batch", "not an integer; expected an integer in [1, 65536]"},
        {"out_of_range", 6, "data.image_size", "8 must be in [16, 1024]"},
        {"bad_enum", 4, "loss.hinge", "allowed: squared, plain"},
        {"unknown_section", 4, "[trian]", "did you mean [train]?"},
        {"duplicate_key", 5, "train.lr", "already set on line 3"},
        {"even_kernel", 3, "model.conv_kernels", "must be odd"},
        {"conv_lengths", 4, "model.conv_kernels", "has 4 entries but model.conv_channels has 3"},
        {"syntax_error", 4, "", "expected 'key = value'"},
        {"no_section", 2, "lr", "put it under [train]"},
        {"indented", 4, "train.lr", "remove the indentation"},
        {"negative_seed", 3, "train.seed", "not an unsigned 64-bit integer"},
        {"syntax_first", 3, "", "cannot parse this line"},
        {"key_error_first", 3, "train.lrr", "did you mean train.lr?"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *b = &cases[i];
        char path[256], where[300];
        snprintf(path, sizeof path, "tests/data/bad_configs/%s.ini", b->file);
        snprintf(where, sizeof where, "%s:%d: ", path, b->line);
        CHECK_MSG(access(path, R_OK) == 0, "fixture %s missing", path);
        rc_config c;
        rc_config_default(&c);
        int status = rc_config_load(&c, path);
        const char *e = rc_last_error();
        CHECK_MSG(status == -1, "%s loaded", path);
        CHECK_MSG(!strncmp(e, where, strlen(where)), "%s: expected prefix '%s', got: %s",
                  b->file, where, e);
        CHECK_MSG(contains(e, b->key), "%s: '%s' not in: %s", b->file, b->key, e);
        CHECK_MSG(contains(e, b->allowed), "%s: '%s' not in: %s", b->file,
                  b->allowed, e);
    }
    /* the fixture directory holds no file this test does not know about */
    FILE *ls = popen("ls tests/data/bad_configs | wc -l", "r");
    int n = 0;
    CHECK(ls && fscanf(ls, "%d", &n) == 1);
    if (ls) pclose(ls);
    CHECK_MSG(n == (int)(sizeof cases / sizeof cases[0]),
              "%d fixtures, %zu cases", n, sizeof cases / sizeof cases[0]);
}

static void test_missing_file(void) {
    rc_config c;
    rc_config_default(&c);
    CHECK(rc_config_load(&c, "tests/data/no_such_config.ini") == -1);
    CHECK_MSG(!strncmp(rc_last_error(), "tests/data/no_such_config.ini: ", 31) &&
              contains(rc_last_error(), "No such file"),
              "%s", rc_last_error());
}

static void check_set_fails(const char *assignment, const char *expect) {
    rc_config c;
    rc_config_default(&c);
    char prefix[300];
    snprintf(prefix, sizeof prefix, "--set %s: ", assignment);
    CHECK_MSG(rc_config_set(&c, assignment) == -1, "%s accepted", assignment);
    CHECK_MSG(!strncmp(rc_last_error(), prefix, strlen(prefix)),
              "prefix '%s' not in: %s", prefix, rc_last_error());
    CHECK_MSG(contains(rc_last_error(), expect), "'%s' not in: %s", expect,
              rc_last_error());
}

static void test_set(void) {
    rc_config c;
    rc_config_default(&c);
    CHECK(rc_config_set(&c, "train.lr=3e-4") == 0 && c.lr == 3e-4f);
    CHECK(rc_config_set(&c, "  train.batch =  32 ") == 0 && c.batch == 32);
    CHECK(rc_config_set(&c, "train.dedup=YES") == 0 && c.dedup == 1);
    CHECK(rc_config_set(&c, "train.dedup=0") == 0 && c.dedup == 0);
    CHECK(rc_config_set(&c, "train.dedup=true") == 0 && c.dedup == 1);
    CHECK(rc_config_set(&c, "loss.hinge=plain") == 0 && c.loss.squared == 0);
    CHECK(rc_config_set(&c, "loss.w_full_short=2.5") == 0 &&
          c.loss.w_kind[RC_PAIR_FULL_SHORT] == 2.5f);
    CHECK(rc_config_set(&c, "train.seed=12345678901234") == 0 &&
          c.seed == 12345678901234ULL);
    CHECK(rc_config_set(&c, "data.channels=3") == 0 && c.channels == 3);
    CHECK(rc_config_set(&c, "model.conv_channels=4, 8 ,16,32,64") == 0 &&
          c.n_conv == 5 && c.conv_channels[4] == 64 && c.conv_kernels[4] == 0);
    /* kernels still have 4 entries for 5 layers */
    CHECK(rc_config_validate(&c) == -1 &&
          contains(rc_last_error(), "model.conv_kernels") &&
          contains(rc_last_error(), "4 entries, but model.conv_channels has 5"));
    CHECK(rc_config_set(&c, "model.conv_kernels=3,3,3,3,3") == 0);
    CHECK(rc_config_set(&c, "model.conv_strides=2,2,2,2,2") == 0);
    CHECK_MSG(rc_config_validate(&c) == 0, "%s", rc_last_error());

    check_set_fails("train.lrr=1", "did you mean train.lr?");
    check_set_fails("model.lr=1", "did you mean train.lr? (it belongs in section [train])");
    check_set_fails("trian.lr=1", "unknown section [trian]; did you mean [train]?");
    check_set_fails("train.batch=abc", "train.batch = 'abc' is not an integer");
    check_set_fails("train.batch=0", "must be in [1, 65536]");
    check_set_fails("train.batch=2.5", "not an integer");
    check_set_fails("train.batch=99999999999999999999", "not an integer");
    check_set_fails("train.lr=0", "0 must be in (0, 10]");
    check_set_fails("train.lr=nan", "must be in (0, 10]");
    check_set_fails("train.lr=inf", "must be in (0, 10]");
    check_set_fails("train.lr=", "is not a number");
    check_set_fails("train.eps=1e-60", "beyond the range of a float");
    check_set_fails("train.beta1=1", "must be in [0, 1)");
    check_set_fails("loss.margin=0", "must be in (0, 1000000]");
    check_set_fails("loss.hinge=square", "allowed: squared, plain");
    check_set_fails("data.source=video", "allowed: synthetic");
    check_set_fails("data.channels=2", "must be 1 (gray) or 3 (RGB)");
    check_set_fails("data.clip_steps=1", "must be in [2, 32]");
    check_set_fails("train.seed=-1", "not an unsigned 64-bit integer");
    check_set_fails("train.dedup=maybe", "not a boolean");
    check_set_fails("model.conv_kernels=5,3,,3", "entry 3");
    check_set_fails("model.conv_kernels=5,3,3,2", "must be odd");
    check_set_fails("model.conv_channels=1,1,1,1,1,1,1,1,1", "more than 8 entries");
    check_set_fails("train.lr", "expected section.key=value");
    check_set_fails("lr=1", "is not section.key");
}

static void test_validate(void) {
    rc_config c;
    rc_config_default(&c);
    c.warmup = c.steps + 1;
    CHECK(rc_config_validate(&c) == -1 && contains(rc_last_error(), "train.warmup"));

    rc_config_default(&c);
    c.pixel_baseline_size = 65;
    CHECK(rc_config_validate(&c) == -1 &&
          contains(rc_last_error(), "eval.pixel_baseline_size"));

    rc_config_default(&c);
    c.ridge_lambda = 0;
    c.probe_train_clips = c.embed_dim;
    CHECK(rc_config_validate(&c) == -1 && contains(rc_last_error(), "ridge_lambda"));
    c.probe_train_clips = c.embed_dim + 1;
    CHECK_MSG(rc_config_validate(&c) == 0, "%s", rc_last_error());

    /* rendered twins need synthetic clips; symmetry twins work on footage
     * and need an embedding of four equal blocks */
    rc_config_default(&c);
    snprintf(c.source, sizeof c.source, "shards");
    snprintf(c.data_path, sizeof c.data_path, "somewhere");
    c.loss.w_kind[RC_PAIR_FULL_PAN] = 1;
    CHECK(rc_config_validate(&c) == -1 && contains(rc_last_error(), "w_full_pan"));
    c.loss.w_kind[RC_PAIR_FULL_PAN] = 0;
    c.loss.w_kind[RC_PAIR_FULL_TRANSPOSE] = 1;
    CHECK_MSG(rc_config_validate(&c) == 0, "%s", rc_last_error());
    c.embed_dim = 30;
    CHECK(rc_config_validate(&c) == -1 && contains(rc_last_error(), "multiple of 4"));

    /* fields set in code are checked against the same ranges as the file */
    rc_config_default(&c);
    c.hidden = 0;
    CHECK(rc_config_validate(&c) == -1 && contains(rc_last_error(), "model.hidden") &&
          contains(rc_last_error(), "must be in [1, 65536]"));
    rc_config_default(&c);
    c.loss.squared = 7;
    CHECK(rc_config_validate(&c) == -1 &&
          contains(rc_last_error(), "allowed: squared, plain"));
    rc_config_default(&c);
    c.conv_kernels[2] = 4;
    CHECK(rc_config_validate(&c) == -1 && contains(rc_last_error(), "must be odd"));
    rc_config_default(&c);
    c.n_conv = 0;
    CHECK(rc_config_validate(&c) == -1);
    /* fewer layers set in code (as tests do): the extra entries are unused */
    rc_config_default(&c);
    c.n_conv = 2;
    CHECK_MSG(rc_config_validate(&c) == 0, "%s", rc_last_error());
}

static void test_describe(void) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    rc_config_describe(f);
    fclose(f);
    /* every key of the INI text is described, with its default */
    rc_config c;
    rc_config_default(&c);
    char *ini = rc_config_to_ini(&c), *save = NULL;
    char section[32] = "";
    int keys = 0;
    for (char *line = strtok_r(ini, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '[') {
            snprintf(section, sizeof section, "%.*s", (int)strlen(line) - 2, line + 1);
            continue;
        }
        char name[64], full[128];
        CHECK(sscanf(line, "%63s =", name) == 1);
        snprintf(full, sizeof full, "  %s.%s\n", section, name);
        CHECK_MSG(contains(buf, full), "describe lacks %s", full);
        keys++;
    }
    CHECK(keys == 79);
    CHECK(contains(buf, "train.lr\n      float, (0, 10], default 0.002\n"));
    CHECK(contains(buf, "loss.hinge\n      enum, squared, plain, default squared"));
    free(ini);
    free(buf);
}

/* A relative data.path is relative to the config file that names it, and
 * a --set one to the working directory: both are stored absolute, so the
 * config.ini a run saves finds the data from any directory. */
static void test_relative_paths(void) {
    char cwd[4096], dir[64], ini[128], want[4300];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(dir, sizeof dir, "/tmp/rc_test_paths_%d", (int)getpid());
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST);
    snprintf(ini, sizeof ini, "%s/sub.ini", dir);
    FILE *f = fopen(ini, "w");
    CHECK(f != NULL);
    if (!f) return;
    fputs("[data]\nsource = shards\npath = footage/shards\n", f);
    fclose(f);
    /* loaded through a relative name, from another directory */
    CHECK(chdir("/tmp") == 0);
    rc_config c;
    rc_config_default(&c);
    CHECK_MSG(rc_config_load(&c, ini + 5) == 0, "%s", rc_last_error());
    snprintf(want, sizeof want, "%s/footage/shards", dir);
    CHECK_MSG(!strcmp(c.data_path, want), "data.path %s, expected %s", c.data_path, want);
    char *text = rc_config_to_ini(&c);
    snprintf(want, sizeof want, "path = %s/footage/shards\n", dir);
    CHECK_MSG(contains(text, want), "config.ini does not store the absolute path");
    free(text);
    /* --set: relative to the working directory; absolute stays */
    CHECK(rc_config_set(&c, "data.path=here/x") == 0);
    CHECK(!strcmp(c.data_path, "/tmp/here/x"));
    CHECK(rc_config_set(&c, "data.path=/abs/y") == 0);
    CHECK(!strcmp(c.data_path, "/abs/y"));
    CHECK(chdir(cwd) == 0);
    unlink(ini);
    rmdir(dir);
}

int main(void) {
    test_defaults();
    test_preset_files();
    test_round_trip();
    test_bad_configs();
    test_missing_file();
    test_set();
    test_validate();
    test_describe();
    test_relative_paths();
    TEST_DONE();
}
