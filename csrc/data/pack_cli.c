/* pack_cli.c: `recompose pack SOURCE... --out DIR [options]`. */
#include "recompose/common.h"
#include "recompose/video.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pack_usage(FILE *f) {
    fputs(
        "usage: recompose pack SOURCE... --out DIR [options]\n"
        "\n"
        "Pack video files (.avi .mp4 .mkv .mov .webm .mpg), folders of\n"
        "numbered JPEG/PNG frames, manifests (one path per line) or\n"
        "directories to search into shard files DIR/shard-NNNNN.rcs\n"
        "(format: docs/shards.md). Each source, or each segment of one, is a\n"
        "sequence; the train/validation split is by sequence.\n"
        "\n"
        "options:\n"
        "  --out DIR            output folder (created; must hold no shards)\n"
        "  --size N             resize so the short side is N pixels\n"
        "                       (default: keep the source size)\n"
        "  --channels 1|3       gray (luminance) or RGB (default 3)\n"
        "  --format jpeg|raw    record encoding (default jpeg)\n"
        "  --quality Q          JPEG quality 1..100 (default 90)\n"
        "  --segment-frames N   cut each source into sequences of N frames\n"
        "                       (lets one long video give train and\n"
        "                       validation sequences; default 0 = whole)\n"
        "  --shard-mb M         start a new shard past M MiB (default 256)\n"
        "  --on-bad fail|skip   a bad frame or file stops (default), or is\n"
        "                       listed at the end and left out\n"
        "  --quiet              no progress bar\n"
        "  -h, --help           this text\n",
        f);
}

static int parse_int(const char *opt, const char *v, long lo, long hi,
                     long *out) {
    char *end;
    errno = 0;
    long x = strtol(v ? v : "", &end, 10);
    if (!v || !*v || *end || errno || x < lo || x > hi)
        return rc_set_error("pack: %s needs an integer in %ld..%ld, got '%s'",
                            opt, lo, hi, v ? v : "");
    *out = x;
    return 0;
}

/* The train/validation split is by sequence name (data.val_fraction, 0.1
 * by default): a pack whose sequences all land on one side gives a run
 * nothing to validate on, or nothing to train on. Said now, not at the
 * end of a training run. */
static void warn_one_split(const char *out) {
    const double val_fraction = 0.1;
    rc_dataset *d = rc_dataset_open(out, RC_ON_BAD_FAIL);
    if (!d) return;
    int n = rc_dataset_n_sequences(d), val = 0;
    for (int i = 0; i < n; i++)
        val += rc_sequence_is_validation(rc_dataset_sequence(d, i, NULL)->name,
                                         val_fraction);
    rc_dataset_close(d);
    if (val > 0 && val < n) return;
    fprintf(stderr, "recompose pack: warning: all %d sequence(s) fall in the %s "
                    "split at data.val_fraction = %.1f (the split is by "
                    "sequence); cut long videos with --segment-frames N, add "
                    "sequences, or set data.val_fraction in the config\n", n,
            val ? "validation" : "training", val_fraction);
}

int rc_pack_main(int argc, char **argv) {
    rc_pack_options o;
    rc_pack_options_default(&o);
    const char *out = NULL;
    const char **srcs = rc_xcalloc((size_t)(argc > 0 ? argc : 1),
                                   sizeof(char *));
    int n_src = 0, rc = 0;
    /* argv[0] is "pack" (or the program name): options start at 1 */
    for (int i = 1; rc == 0 && i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            pack_usage(stdout);
            free(srcs);
            return 0;
        } else if (!strcmp(a, "--out")) {
            if (!v) rc = rc_set_error("pack: --out needs a folder");
            out = v;
            i++;
        } else if (!strcmp(a, "--size")) {
            rc = parse_int(a, v, 1, 16384, &x);
            o.size = (int)x;
            i++;
        } else if (!strcmp(a, "--channels")) {
            rc = parse_int(a, v, 1, 3, &x);
            if (rc == 0 && x == 2) rc = rc_set_error("pack: --channels is 1 or 3");
            o.channels = (int)x;
            i++;
        } else if (!strcmp(a, "--format")) {
            if (v && !strcmp(v, "jpeg")) o.encoding = RC_SHARD_JPEG;
            else if (v && !strcmp(v, "raw")) o.encoding = RC_SHARD_RAW;
            else rc = rc_set_error("pack: --format is jpeg or raw");
            i++;
        } else if (!strcmp(a, "--quality")) {
            rc = parse_int(a, v, 1, 100, &x);
            o.quality = (int)x;
            i++;
        } else if (!strcmp(a, "--segment-frames")) {
            rc = parse_int(a, v, 0, 1L << 30, &x);
            o.segment_frames = (int)x;
            i++;
        } else if (!strcmp(a, "--shard-mb")) {
            rc = parse_int(a, v, 1, 1L << 20, &x);
            o.shard_bytes = (uint64_t)x << 20;
            i++;
        } else if (!strcmp(a, "--on-bad")) {
            rc = rc_on_bad_parse(v ? v : "", &o.on_bad);
            i++;
        } else if (!strcmp(a, "--quiet")) {
            o.progress = 0;
        } else if (a[0] == '-' && a[1] != 0) {
            rc = rc_set_error("pack: unknown option %s (see recompose pack "
                              "--help)", a);
        } else {
            srcs[n_src++] = a;
        }
    }
    if (rc == 0 && !out) rc = rc_set_error("pack: --out DIR is required");
    if (rc == 0 && n_src == 0)
        rc = rc_set_error("pack: no SOURCE given (see recompose pack --help)");
    rc_source_list l = {0};
    for (int i = 0; rc == 0 && i < n_src; i++) rc = rc_sources_add(&l, srcs[i]);
    rc_pack_stats st;
    if (rc == 0) rc = rc_pack(&l, out, &o, &st);
    if (rc == 0) {
        printf("packed %d sequence(s), %lld frames, %.1f MB into %d shard(s) "
               "in %s%s\n", st.sequences, (long long)st.frames,
               (double)st.bytes / 1e6, st.shards, out,
               st.bad ? " (bad items skipped: see above)" : "");
        warn_one_split(out);
    } else
        fprintf(stderr, "recompose pack: %s\n", rc_last_error());
    rc_sources_free(&l);
    free(srcs);
    return rc == 0 ? 0 : 1;
}
