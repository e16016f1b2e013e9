/* test_video_pack: sources -> shards -> records read back. Raw records are
 * byte-exact to the PNG pixels written; JPEG records are within codec error
 * of an area-averaged resize; segments, shard roll-over, discovery,
 * manifests and the CLI behave as documented. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "test_video_util.h"

#ifndef RC_HAVE_VIDEO
int main(void) { TEST_SKIP("built without video input (RC_HAVE_VIDEO)"); }
#else

static int have_video = 1;

/* Find sequence `name` in a dataset; returns its index or -1. */
static int find_seq(const rc_dataset *d, const char *name) {
    for (int i = 0; i < rc_dataset_n_sequences(d); i++)
        if (!strcmp(rc_dataset_sequence(d, i, NULL)->name, name)) return i;
    return -1;
}

static void test_raw_exact(const char *root) {
    char frames[600], video[600], manifest[600], out[600];
    snprintf(frames, sizeof frames, "%s/src/walk", root);
    snprintf(video, sizeof video, "%s/src/clip.avi", root);
    snprintf(manifest, sizeof manifest, "%s/src/list.txt", root);
    snprintf(out, sizeof out, "%s/raw", root);
    CHECK(tv_write_folder(frames, 7, 6, 40, 30, 1) == 0);
    int vr = tv_write_video(video, 10, 48, 32);
    if (vr == 77) have_video = 0;
    const char *text = have_video ? "# test data\n walk \n\nclip.avi\r\n"
                                  : "# test data\nwalk\n";
    tv_write_bytes(manifest, text, strlen(text));

    rc_source_list l = {0};
    CHECK_MSG(rc_sources_add(&l, manifest) == 0, "%s", rc_last_error());
    CHECK(l.n == 1 + have_video);
    /* a video under an extension the list does not know (.ts, .flv, none)
     * is decoded, not read as a manifest; binary junk is neither */
    if (have_video) {
        char odd[620], cmd[1300];
        snprintf(odd, sizeof odd, "%s/src/clip-copy.ts", root);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", video, odd);
        CHECK(system(cmd) == 0);
        rc_source_list v = {0};
        CHECK_MSG(rc_sources_add(&v, odd) == 0, "%s", rc_last_error());
        CHECK(v.n == 1);
        rc_sources_free(&v);
        unlink(odd);
    }
    {
        char junk[620];
        snprintf(junk, sizeof junk, "%s/junk.bin", root);
        const char bytes[] = {0x00, 0x01, 0x7f, 0x10, 'x'};
        tv_write_bytes(junk, bytes, sizeof bytes);
        rc_source_list v = {0};
        CHECK(rc_sources_add(&v, junk) == -1);
        CHECK_MSG(strstr(rc_last_error(), "neither a video FFmpeg can open nor a manifest"),
                  "%s", rc_last_error());
        rc_sources_free(&v);
        unlink(junk);
    }
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.encoding = RC_SHARD_RAW;
    o.progress = 0;
    rc_pack_stats st;
    CHECK_MSG(rc_pack(&l, out, &o, &st) == 0, "%s", rc_last_error());
    CHECK(st.frames == 6 + 10 * have_video && st.bad == 0);
    rc_sources_free(&l);

    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK_MSG(d != NULL, "%s", rc_last_error());
    if (!d) return;
    int w = find_seq(d, "walk");
    CHECK(w >= 0);
    const rc_shard *sh;
    const rc_shard_sequence *q = rc_dataset_sequence(d, w, &sh);
    CHECK(q->n_records == 6 && q->width == 40 && q->height == 30);
    for (uint32_t r = 0; r < q->n_records; r++) {
        const rc_shard_record *rec = rc_shard_get_record(sh, q->first_record + r);
        CHECK(rec->frame_number == 7 + (int64_t)r);
        rc_image im, ref = tv_frame(7 + (int)r, 40, 30, 3);
        CHECK(rc_shard_decode(sh, q->first_record + r, 3, 0, 0, &im) == 0);
        CHECK_MSG(memcmp(im.pixels, ref.pixels, 40 * 30 * 3) == 0,
                  "raw record %u differs from the PNG pixels", r);
        rc_image_free(&im);
        free(ref.pixels);
    }
    if (have_video) {
        int v = find_seq(d, "clip.avi");
        CHECK(v >= 0);
        q = rc_dataset_sequence(d, v, &sh);
        CHECK(q->n_records == 10 && q->width == 48 && q->height == 32);
        /* raw records hold exactly what the video decoder produced */
        rc_video *vid = rc_video_open(video);
        rc_image fr, im;
        for (uint32_t r = 0; vid && r < q->n_records; r++) {
            CHECK(rc_video_read(vid, &fr) == 1);
            CHECK(rc_shard_decode(sh, q->first_record + r, 3, 0, 0, &im) == 0);
            CHECK(memcmp(im.pixels, fr.pixels, 48 * 32 * 3) == 0);
            rc_image_free(&im);
            rc_image_free(&fr);
        }
        rc_video_close(vid);
    }
    rc_dataset_close(d);

    /* packing into a folder that holds shards is refused */
    CHECK(rc_sources_add(&l, frames) == 0);
    CHECK(rc_pack(&l, out, &o, &st) != 0);
    CHECK(strstr(rc_last_error(), "already holds shards") != NULL);
    rc_sources_free(&l);
}

static void test_jpeg_resized(const char *root) {
    char frames[600], out[600];
    snprintf(frames, sizeof frames, "%s/src/walk", root);
    snprintf(out, sizeof out, "%s/jpeg", root);
    rc_source_list l = {0};
    CHECK(rc_sources_add(&l, frames) == 0);
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.size = 16;
    o.quality = 95;
    o.progress = 0;
    CHECK(rc_pack(&l, out, &o, NULL) == 0);
    rc_sources_free(&l);
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK(d && rc_dataset_n_sequences(d) == 1);
    if (!d) return;
    const rc_shard *sh;
    const rc_shard_sequence *q = rc_dataset_sequence(d, 0, &sh);
    /* short side 30 -> 16, long side 40 * 16 / 30 = 21.3 -> 21 */
    CHECK(q->width == 21 && q->height == 16 && q->n_records == 6);
    CHECK(rc_shard_encoding(sh) == RC_SHARD_JPEG);
    for (uint32_t r = 0; r < q->n_records; r++) {
        rc_image im, ref = tv_frame(7 + (int)r, 40, 30, 3), small;
        CHECK(rc_image_resize(&ref, 21, 16, 3, &small) == 0);
        CHECK(rc_shard_decode(sh, r, 3, 0, 0, &im) == 0);
        double mad = tv_mad(im.pixels, small.pixels, 21 * 16 * 3);
        CHECK_MSG(mad < 4.0, "JPEG record %u: mean abs error %.2f", r, mad);
        rc_image_free(&im);
        rc_image_free(&small);
        free(ref.pixels);
    }
    rc_dataset_close(d);
}

static void test_segments_and_shards(const char *root) {
    char src[600], out[600];
    snprintf(src, sizeof src, "%s/src", root); /* discovery: walk/ + clip.avi */
    snprintf(out, sizeof out, "%s/seg", root);
    rc_source_list l = {0};
    CHECK_MSG(rc_sources_add(&l, src) == 0, "%s", rc_last_error());
    CHECK(l.n == 1 + have_video);
    /* sorted: clip.avi before walk; names relative to the given folder */
    if (have_video) {
        CHECK(!strcmp(l.items[0].name, "src/clip.avi"));
        CHECK(!strcmp(l.items[1].name, "src/walk"));
    }
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.segment_frames = 4;
    o.shard_bytes = 1; /* every sequence starts a new shard */
    o.progress = 0;
    rc_pack_stats st;
    CHECK(rc_pack(&l, out, &o, &st) == 0);
    rc_sources_free(&l);
    /* walk: 6 frames -> 4 + 2; clip: 10 -> 4 + 4 + 2 */
    CHECK_MSG(st.sequences == 2 + 3 * have_video, "%d sequences",
              st.sequences);
    CHECK(st.shards == st.sequences);
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK(d && rc_dataset_n_sequences(d) == st.sequences);
    if (!d) return;
    int i1 = find_seq(d, "src/walk#1");
    CHECK(i1 >= 0 && rc_dataset_sequence(d, i1, NULL)->n_records == 2);
    if (have_video) {
        int i2 = find_seq(d, "src/clip.avi#2");
        CHECK(i2 >= 0 && rc_dataset_sequence(d, i2, NULL)->n_records == 2);
    }
    rc_dataset_close(d);
}

/* A pack that fails (a corrupt frame under on_bad = fail) after it has
 * written a shard leaves nothing behind: not the shard, not the folders it
 * made; a folder that was there keeps what it held. */
static void test_failed_pack(const char *root) {
    char good[600], bad[600], junk[700], out[700], made[600], keep[800];
    snprintf(good, sizeof good, "%s/fail/a_good", root);
    snprintf(bad, sizeof bad, "%s/fail/b_broken", root);
    CHECK(tv_write_folder(good, 0, 4, 40, 30, 1) == 0);
    CHECK(tv_write_folder(bad, 0, 3, 40, 30, 1) == 0);
    snprintf(junk, sizeof junk, "%s/frame_0001.png", bad);
    tv_write_bytes(junk, "\x89PNG\r\n\x1a\n garbage", 17);
    snprintf(made, sizeof made, "%s/fail/new", root);
    snprintf(out, sizeof out, "%s/nested/out", made);
    rc_pack_options o;
    rc_pack_options_default(&o);
    o.shard_bytes = 1; /* a shard per sequence: a_good's is closed first */
    o.progress = 0;
    for (int existing = 0; existing < 2; existing++) {
        if (existing) {
            CHECK(rc_make_dirs(out) == 0);
            snprintf(keep, sizeof keep, "%s/notes.txt", out);
            tv_write_bytes(keep, "mine", 4);
        }
        rc_source_list l = {0};
        CHECK(rc_sources_add(&l, good) == 0 && rc_sources_add(&l, bad) == 0);
        rc_pack_stats st;
        CHECK(rc_pack(&l, out, &o, &st) != 0);
        CHECK_MSG(strstr(rc_last_error(), "frame_0001.png") != NULL, "%s",
                  rc_last_error());
        CHECK(st.shards >= 1); /* it had written one */
        rc_sources_free(&l);
        struct stat sb;
        char shard[800];
        snprintf(shard, sizeof shard, "%s/shard-00000.rcs", out);
        CHECK(stat(shard, &sb) != 0);
        if (existing)
            CHECK(stat(keep, &sb) == 0);
        else
            CHECK_MSG(stat(made, &sb) != 0, "%s left behind", made);
    }
}

static void test_cli(const char *root) {
    char frames[600], out[600];
    snprintf(frames, sizeof frames, "%s/src/walk", root);
    snprintf(out, sizeof out, "%s/cli", root);
    /* into a new nested folder; one sequence lands in one split: warned */
    snprintf(out, sizeof out, "%s/cli/nested", root);
    char *ok[] = {"pack", frames, "--out", out, "--size", "20", "--channels",
                  "1", "--format", "raw", "--quiet"};
    char err_path[700];
    snprintf(err_path, sizeof err_path, "%s/pack-stderr.txt", root);
    fflush(stderr);
    int saved = dup(2), fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(saved >= 0 && fd >= 0 && dup2(fd, 2) == 2);
    CHECK(rc_pack_main(11, ok) == 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    char err[2048] = "";
    FILE *ef = fopen(err_path, "r");
    CHECK(ef != NULL);
    if (ef) {
        err[fread(err, 1, sizeof err - 1, ef)] = 0;
        fclose(ef);
    }
    CHECK_MSG(strstr(err, "fall in the training split"),
              "no warning that the only sequence is in one split: '%s'", err);
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    CHECK(d != NULL);
    if (d) {
        const rc_shard_sequence *q = rc_dataset_sequence(d, 0, NULL);
        CHECK(q->channels == 1 && q->height == 20 && q->width == 27);
        rc_dataset_close(d);
    }
    char *bad[] = {"pack", frames, "--out", out, "--frobnicate"};
    CHECK(rc_pack_main(5, bad) == 1);
    CHECK(strstr(rc_last_error(), "--frobnicate") != NULL);
    char *noout[] = {"pack", frames};
    CHECK(rc_pack_main(2, noout) == 1);
    char *help[] = {"pack", "--help"};
    CHECK(rc_pack_main(2, help) == 0);
}

int main(void) {
    char *root = tv_tmpdir();
    test_raw_exact(root);
    test_jpeg_resized(root);
    test_segments_and_shards(root);
    test_failed_pack(root);
    test_cli(root);
    tv_rmrf(root);
    free(root);
    TEST_DONE();
}
#endif
