/* test_video_bad: every kind of bad input gives, under on_bad = fail, an
 * error naming the file (and frame), and under skip is counted, listed and
 * kept out of the data, which stays finite and in [0, 1]. */
#include "test_util.h"
#include "test_video_util.h"

#ifndef RC_HAVE_VIDEO
int main(void) { TEST_SKIP("built without video input (RC_HAVE_VIDEO)"); }
#else
#include "data/data_internal.h"
#include <fcntl.h>
#include <sys/stat.h>

static char root[256];
static int counter = 0;

static void path_of(char *buf, size_t n, const char *what) {
    snprintf(buf, n, "%s/%s", root, what);
}

/* Pack `src` under policy; returns rc_pack's result, stats in *st. */
static int pack(const char *src, rc_on_bad on_bad, int encoding,
                rc_pack_stats *st, char *out, size_t outn) {
    snprintf(out, outn, "%s/out%d", root, counter++);
    rc_source_list l = {0};
    if (rc_sources_add(&l, src) != 0) return -2;
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.on_bad = on_bad;
    o.encoding = encoding;
    o.progress = 0;
    int rc = rc_pack(&l, out, &o, st);
    rc_sources_free(&l);
    return rc;
}

static void expect_error(int rc, const char *a, const char *b) {
    const char *e = rc_last_error();
    CHECK_MSG(rc != 0, "expected an error mentioning '%s'", a);
    CHECK_MSG(strstr(e, a) != NULL, "error does not name '%s': %s", a, e);
    if (b) CHECK_MSG(strstr(e, b) != NULL, "error lacks '%s': %s", b, e);
}

/* Corrupting frame 3 of a 10-frame folder: fail names it; skip drops it and
 * splits the sequence into frames 0..2 and 4..9. */
static void folder_case(const char *name, void (*damage)(const char *file),
                        const char *needle, const char *needle2) {
    char dir[600], file[700], out[700];
    path_of(dir, sizeof dir, name);
    CHECK(tv_write_folder(dir, 0, 10, 32, 24, 0) == 0);
    snprintf(file, sizeof file, "%s/frame_0003.jpg", dir);
    damage(file);
    rc_pack_stats st;
    int rc = pack(dir, RC_ON_BAD_FAIL, RC_SHARD_JPEG, &st, out, sizeof out);
    expect_error(rc, needle, needle2);
    rc = pack(dir, RC_ON_BAD_SKIP, RC_SHARD_JPEG, &st, out, sizeof out);
    CHECK_MSG(rc == 0, "%s: %s", name, rc_last_error());
    CHECK_MSG(st.bad == 1 && st.frames == 9 && st.sequences == 2,
              "%s: bad %d frames %lld sequences %d", name, st.bad,
              (long long)st.frames, st.sequences);
}

static void corrupt_jpeg(const char *file) {
    uint8_t *d;
    size_t n;
    CHECK(rc_read_file(file, &d, &n) == 0);
    /* garbage over the entropy-coded data, markers included */
    for (size_t i = n / 3; i < n - 2; i++) d[i] = (uint8_t)(i * 131 + 7);
    tv_write_bytes(file, d, n);
    free(d);
}

static void truncate_jpeg(const char *file) {
    struct stat sb;
    CHECK(stat(file, &sb) == 0);
    CHECK(truncate(file, sb.st_size / 2) == 0);
}

static void remove_frame(const char *file) { CHECK(unlink(file) == 0); }

static void resize_frame(const char *file) {
    rc_image im = tv_frame(3, 40, 24, 3);
    CHECK(rc_image_save_jpeg(file, &im, 90) == 0);
    free(im.pixels);
}

static void test_videos(void) {
    char dir[600], file[700], out[700];
    path_of(dir, sizeof dir, "videos");
    snprintf(file, sizeof file, "mkdir -p %s", dir);
    CHECK(system(file) == 0);
    snprintf(file, sizeof file, "%s/empty.avi", dir);
    tv_write_bytes(file, "", 0);
    snprintf(file, sizeof file, "%s/noise.mp4", dir);
    uint8_t junk[4096];
    for (int i = 0; i < 4096; i++) junk[i] = (uint8_t)(i * 2654435761u >> 13);
    tv_write_bytes(file, junk, sizeof junk);
    CHECK(tv_write_folder(dir, 0, 4, 32, 24, 1) == 0); /* a good source */
    rc_pack_stats st;
    int rc = pack(dir, RC_ON_BAD_FAIL, RC_SHARD_JPEG, &st, out, sizeof out);
    expect_error(rc, "empty.avi", "video");
    rc = pack(dir, RC_ON_BAD_SKIP, RC_SHARD_JPEG, &st, out, sizeof out);
    CHECK_MSG(rc == 0, "%s", rc_last_error());
    CHECK(st.bad == 2 && st.frames == 4);
}

static void test_manifest(void) {
    char m[1024], dir[600];
    path_of(dir, sizeof dir, "m");
    snprintf(m, sizeof m, "mkdir -p %s", dir);
    CHECK(system(m) == 0);
    path_of(m, sizeof m, "m/list.txt");
    const char *text = "# sources\n\nnowhere/video.avi\n";
    tv_write_bytes(m, text, strlen(text));
    rc_source_list l = {0};
    expect_error(rc_sources_add(&l, m), "list.txt:3", "nowhere/video.avi");
    rc_sources_free(&l);
    /* a binary file taken for a manifest is refused clearly */
    tv_write_bytes(m, "RIFF\0\0\0\0AVI ", 12);
    expect_error(rc_sources_add(&l, m), "list.txt:1", "control byte");
    rc_sources_free(&l);
}

/* Two raw sequences in two shards; returns the shard dir in out. */
static void two_sequences(char *out, size_t outn) {
    char src[600];
    path_of(src, sizeof src, "good");
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/a", src);
    snprintf(b, sizeof b, "%s/b", src);
    CHECK(tv_write_folder(a, 0, 6, 32, 24, 1) == 0);
    CHECK(tv_write_folder(b, 0, 12, 32, 24, 1) == 0);
    snprintf(out, outn, "%s/pairs", root);
    rc_source_list l = {0};
    CHECK(rc_sources_add(&l, src) == 0);
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.encoding = RC_SHARD_RAW;
    o.shard_bytes = 1; /* one sequence per shard */
    o.progress = 0;
    CHECK(rc_pack(&l, out, &o, NULL) == 0);
    rc_sources_free(&l);
}

static rc_loader_options loader_options(rc_on_bad on_bad, int threads) {
    rc_loader_options o;
    rc_loader_options_default(&o);
    o.batch = 4;
    o.clip_steps = 3;
    o.size = 16;
    o.channels = 1;
    o.val_fraction = 0;
    o.on_bad = on_bad;
    o.threads = threads;
    o.ring = 2;
    return o;
}

static void test_bad_checksum(const char *dir) {
    char shard[1024];
    snprintf(shard, sizeof shard, "%s/shard-00000.rcs", dir); /* sequence a */
    rc_shard *s = rc_shard_open(shard);
    CHECK(s && !strcmp(rc_shard_get_sequence(s, 0)->name, "good/a"));
    if (!s) return;
    /* record 2 lies in every clip of a (6 frames, clips of 4) */
    uint64_t off = rc_shard_get_record(s, 2)->offset + 17;
    rc_shard_close(s);
    int fd = open(shard, O_RDWR);
    uint8_t byte;
    CHECK(pread(fd, &byte, 1, (off_t)off) == 1);
    byte ^= 0x40;
    CHECK(pwrite(fd, &byte, 1, (off_t)off) == 1);
    close(fd);

    rc_dataset *d = rc_dataset_open(dir, RC_ON_BAD_FAIL);
    CHECK(d != NULL); /* the index is intact: found when the record is read */
    if (!d) return;
    rc_loader_options o = loader_options(RC_ON_BAD_FAIL, 2);
    rc_loader *l = rc_loader_create(d, &o);
    int failed = 0;
    for (int step = 0; l && step < 10 && !failed; step++) {
        const float *x = rc_loader_get_batch(l, step);
        if (!x) {
            failed = 1;
            expect_error(-1, "shard-00000.rcs", "good/a, frame 2");
            CHECK(strstr(rc_last_error(), "checksum") != NULL);
        } else {
            rc_loader_release(l, step);
        }
    }
    CHECK_MSG(failed, "a corrupt record was never reported under fail");
    /* under fail there is no summary of skipped items to print */
    FILE *summary = tmpfile();
    CHECK(summary != NULL);
    if (l && summary) {
        rc_loader_report_bad(l, summary);
        CHECK_MSG(ftell(summary) == 0, "data.on_bad = fail printed a skip summary");
    }
    if (summary) fclose(summary);
    rc_loader_destroy(l);

    /* skip: the same batches with 1 and 3 threads, finite, in [0, 1], and
     * the bad record counted once and listed */
    float *ref = NULL;
    char log[1024];
    snprintf(log, sizeof log, "%s/stderr.txt", root);
    for (int threads = 1; threads <= 3; threads += 2) {
        o = loader_options(RC_ON_BAD_SKIP, threads);
        l = rc_loader_create(d, &o);
        CHECK(l != NULL);
        if (!l) break;
        /* 18 frames, 16 per step: every step ends an epoch, and the loader
         * lists the epoch's bad items itself, on stderr: capture it */
        CHECK(rc_loader_epoch_steps(l) == 1);
        fflush(stderr);
        int saved = dup(2), lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(lf, 2);
        size_t nf = rc_loader_batch_floats(l);
        float *x = malloc(nf * 10 * sizeof(float));
        for (int step = 0; step < 10; step++)
            CHECK(rc_loader_copy_batch(l, step, x + nf * (size_t)step) == 0);
        fflush(stderr);
        dup2(saved, 2);
        close(lf);
        close(saved);
        int bad_values = 0;
        for (size_t i = 0; i < nf * 10; i++)
            bad_values += !(x[i] >= 0.0f && x[i] <= 1.0f);
        CHECK(bad_values == 0);
        CHECK(rc_loader_bad_total(l) == 1);
        uint8_t *text;
        size_t tn;
        CHECK(rc_read_file(log, &text, &tn) == 0);
        text[tn] = 0;
        CHECK_MSG(strstr((char *)text, "good/a, frame 2") &&
                      strstr((char *)text, "1 bad item(s) this epoch"),
                  "epoch report: %s", (char *)text);
        free(text);
        CHECK(rc_loader_report_bad(l, NULL) == 0); /* listed already */
        if (!ref) ref = x;
        else {
            CHECK_MSG(memcmp(ref, x, nf * 10 * sizeof(float)) == 0,
                      "skip-mode batches depend on the thread count");
            free(x);
        }
        rc_loader_destroy(l);
    }
    free(ref);
    rc_dataset_close(d);
}

static void test_truncated_shard(const char *dir) {
    char shard[1024];
    snprintf(shard, sizeof shard, "%s/shard-00001.rcs", dir); /* sequence b */
    struct stat sb;
    CHECK(stat(shard, &sb) == 0);
    CHECK(truncate(shard, sb.st_size - 100) == 0);
    rc_dataset *d = rc_dataset_open(dir, RC_ON_BAD_FAIL);
    CHECK(d == NULL);
    expect_error(-1, "shard-00001.rcs", "truncated");
    d = rc_dataset_open(dir, RC_ON_BAD_SKIP);
    CHECK(d != NULL);
    if (!d) return;
    CHECK(rc_dataset_n_bad_shards(d) == 1 && rc_dataset_n_sequences(d) == 1);
    CHECK(strstr(rc_dataset_bad_shard(d, 0), "shard-00001.rcs") != NULL);
    rc_dataset_close(d);
    /* a shard cut inside the header */
    CHECK(truncate(shard, 10) == 0);
    rc_shard *s = rc_shard_open(shard);
    CHECK(s == NULL);
    expect_error(-1, "shard-00001.rcs", "truncated");
}

int main(void) {
    char *r = tv_tmpdir();
    snprintf(root, sizeof root, "%s", r);
    free(r);
    folder_case("corrupt", corrupt_jpeg, "frame_0003.jpg", "JPEG");
    folder_case("truncated", truncate_jpeg, "frame_0003.jpg", "JPEG");
    folder_case("missing", remove_frame, "frame 3 is missing", "missing/");
    folder_case("othersize", resize_frame, "frame_0003.jpg", "40x24");
    test_videos();
    test_manifest();
    char dir[700];
    two_sequences(dir, sizeof dir);
    test_bad_checksum(dir);
    test_truncated_shard(dir);
    tv_rmrf(root);
    TEST_DONE();
}
#endif
