/* pack.c: sources -> shard files (resized, encoded frames plus an index).
 *
 * A bad frame never ends up in a shard. Under on_bad = skip it ends the
 * current segment: the frames before and after it become two sequences, so
 * no clip sampled later can span the hole. */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/video.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rc_pack_options_default(rc_pack_options *o) {
    memset(o, 0, sizeof *o);
    o->size = 0;
    o->channels = 3;
    o->encoding = RC_SHARD_JPEG;
    o->quality = 90;
    o->segment_frames = 0;
    o->shard_bytes = 256ull << 20;
    o->on_bad = RC_ON_BAD_FAIL;
    o->progress = 1;
}

typedef struct {
    const rc_pack_options *o;
    const char *out_dir;
    rc_shard_writer *w;
    rc_pack_stats *st;
    int shard_index;
    /* the sequence being written */
    const rc_source *src;
    int segment;          /* segment index within the source */
    int seg_frames;       /* frames in the current segment */
    int seg_open;         /* a sequence has been begun in the writer */
    int ref_w, ref_h;     /* the source's frame size (first good frame) */
    int out_w, out_h;     /* packed frame size */
    /* bad items (skip mode) */
    char **bad;
    int n_bad, cap_bad;
    /* progress */
    int n_sources, done_sources;
    double last_draw;
} packer;

static void note_bad(packer *p, const char *msg) {
    if (p->n_bad == p->cap_bad) {
        p->cap_bad = p->cap_bad ? 2 * p->cap_bad : 16;
        p->bad = realloc(p->bad, sizeof(char *) * (size_t)p->cap_bad);
        if (!p->bad) {
            rc_log("out of memory");
            exit(2);
        }
    }
    size_t n = strlen(msg) + 1;
    p->bad[p->n_bad] = rc_xmalloc(n);
    memcpy(p->bad[p->n_bad++], msg, n);
    p->st->bad++;
}

/* A bad item: fail stops (error already set), skip lists it and ends the
 * current segment. Returns 0 to go on, -1 to stop. */
static int bad_item(packer *p) {
    if (p->o->on_bad == RC_ON_BAD_FAIL) return -1;
    note_bad(p, rc_last_error());
    if (p->seg_frames > 0) {
        p->segment++;
        p->seg_frames = 0;
        p->seg_open = 0;
    }
    return 0;
}

static void draw_progress(packer *p, int final) {
    if (!p->o->progress) return;
    double now = rc_now();
    if (!final && (now - p->last_draw < 0.1 || !isatty(2))) return;
    p->last_draw = now;
    int width = 30;
    double frac = p->n_sources ? (double)p->done_sources / p->n_sources : 1.0;
    int fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\rpack [%s] %d/%d sources  %lld frames  %.1f MB  %d bad",
            bar, p->done_sources, p->n_sources, (long long)p->st->frames,
            (double)p->st->bytes / 1e6, p->st->bad);
    if (final) fputc('\n', stderr);
    fflush(stderr);
}

static int open_next_shard(packer *p) {
    char path[4096];
    snprintf(path, sizeof path, "%s/shard-%05d.rcs", p->out_dir,
             p->shard_index);
    p->w = rc_shard_writer_open(path, p->o->encoding);
    if (!p->w) return -1;
    p->shard_index++;
    p->st->shards++;
    return 0;
}

static int close_shard(packer *p) {
    if (!p->w) return 0;
    int rc = rc_shard_writer_close(p->w);
    p->w = NULL;
    return rc;
}

static void packed_size(const packer *p, int w, int h, int *ow, int *oh) {
    int s = p->o->size;
    if (s <= 0) {
        *ow = w;
        *oh = h;
    } else if (w <= h) {
        *ow = s;
        *oh = (int)((double)h * s / w + 0.5);
    } else {
        *oh = s;
        *ow = (int)((double)w * s / h + 0.5);
    }
}

/* Begin the current segment in the writer (lazily, at its first frame). */
static int begin_segment(packer *p) {
    if (p->w && rc_shard_writer_bytes(p->w) >= p->o->shard_bytes) {
        if (close_shard(p) != 0) return -1;
    }
    if (!p->w && open_next_shard(p) != 0) return -1;
    char name[4200];
    if (p->segment == 0 && p->o->segment_frames == 0)
        snprintf(name, sizeof name, "%s", p->src->name);
    else
        snprintf(name, sizeof name, "%s#%d", p->src->name, p->segment);
    if (rc_shard_writer_begin(p->w, name, p->out_w, p->out_h,
                              p->o->channels) != 0)
        return -1;
    p->st->sequences++;
    p->seg_open = 1;
    return 0;
}

/* Add one decoded source frame. `what` names it ("FILE" or "VIDEO frame N"). */
static int add_frame(packer *p, const rc_image *im, long number,
                     const char *what) {
    if (p->ref_w == 0) {
        p->ref_w = im->width;
        p->ref_h = im->height;
        packed_size(p, im->width, im->height, &p->out_w, &p->out_h);
    } else if (im->width != p->ref_w || im->height != p->ref_h) {
        rc_set_error("%s: frame is %dx%d, the sequence's frames are %dx%d",
                     what, im->width, im->height, p->ref_w, p->ref_h);
        return bad_item(p);
    }
    if (p->o->segment_frames > 0 && p->seg_frames >= p->o->segment_frames) {
        p->segment++;
        p->seg_frames = 0;
        p->seg_open = 0;
    }
    if (!p->seg_open && begin_segment(p) != 0) return -1;
    rc_image r;
    if (rc_image_resize(im, p->out_w, p->out_h, p->o->channels, &r) != 0)
        return -1;
    int rc;
    if (p->o->encoding == RC_SHARD_JPEG) {
        uint8_t *jpg;
        size_t n;
        rc = rc_image_encode_jpeg(&r, p->o->quality, &jpg, &n);
        if (rc == 0) {
            rc = rc_shard_writer_add(p->w, jpg, n, number);
            p->st->bytes += (int64_t)n;
            free(jpg);
        }
    } else {
        size_t n = (size_t)r.width * r.height * r.channels;
        rc = rc_shard_writer_add(p->w, r.pixels, n, number);
        p->st->bytes += (int64_t)n;
    }
    rc_image_free(&r);
    if (rc != 0) return -1;
    p->seg_frames++;
    p->st->frames++;
    draw_progress(p, 0);
    return 0;
}

static void start_source(packer *p, const rc_source *s) {
    p->src = s;
    p->segment = 0;
    p->seg_frames = 0;
    p->seg_open = 0;
    p->ref_w = p->ref_h = 0;
}

static int pack_frames(packer *p, const rc_source *s) {
    if (s->n_files == 0) {
        rc_set_error("%s: no frames", s->path);
        return bad_item(p);
    }
    for (int i = 0; i < s->n_files; i++) {
        if (i > 0 && s->numbers[i] != s->numbers[i - 1] + 1) {
            long a = s->numbers[i - 1] + 1, b = s->numbers[i] - 1;
            if (a == b)
                rc_set_error("%s: frame %ld is missing (between %s and %s)",
                             s->path, a, s->files[i - 1], s->files[i]);
            else
                rc_set_error("%s: frames %ld..%ld are missing (between %s "
                             "and %s)", s->path, a, b, s->files[i - 1],
                             s->files[i]);
            if (bad_item(p) != 0) return -1;
        }
        rc_image im;
        if (rc_image_load(s->files[i], p->o->channels, &im) != 0) {
            if (bad_item(p) != 0) return -1;
            continue;
        }
        int rc = add_frame(p, &im, s->numbers[i], s->files[i]);
        rc_image_free(&im);
        if (rc != 0) return -1;
    }
    return 0;
}

static int pack_video(packer *p, const rc_source *s) {
    rc_video *v = rc_video_open(s->path);
    if (!v) return bad_item(p);
    long n = 0;
    int rc = 0;
    for (;;) {
        rc_image im;
        int r = rc_video_read(v, &im);
        if (r == 0) break;
        if (r < 0) { /* the decoder cannot resync reliably: stop here */
            rc = bad_item(p);
            break;
        }
        char what[4200];
        snprintf(what, sizeof what, "%s: frame %ld", s->path, n);
        rc = add_frame(p, &im, n, what);
        rc_image_free(&im);
        if (rc != 0) break;
        n++;
    }
    rc_video_close(v);
    if (rc == 0 && n == 0) {
        rc_set_error("%s: the video has no frames", s->path);
        rc = bad_item(p);
    }
    return rc;
}

/* The first folder of dir's path that does not exist yet (in first_new),
 * or "" when dir exists: what a failed pack removes again. */
static void first_missing_dir(const char *dir, char *first_new, size_t n) {
    first_new[0] = 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    struct stat st;
    if (stat(buf, &st) == 0) return;
    for (char *q = buf + 1;; q++) {
        if (*q != '/' && *q) continue;
        char c = *q;
        *q = 0;
        if (stat(buf, &st) != 0) {
            snprintf(first_new, n, "%s", buf);
            return;
        }
        if (!c) return;
        *q = c;
    }
}

/* A failed pack leaves nothing behind: its shards, and the folders it
 * made (only empty ones: rmdir removes nothing else). */
static void remove_partial_output(const packer *p, const char *first_new) {
    char path[4096];
    for (int i = 0; i < p->shard_index; i++) {
        snprintf(path, sizeof path, "%s/shard-%05d.rcs", p->out_dir, i);
        remove(path);
    }
    if (!first_new[0]) return;
    snprintf(path, sizeof path, "%s", p->out_dir);
    size_t keep = strlen(first_new);
    while (strlen(path) >= keep) {
        if (rmdir(path) != 0) break;
        char *slash = strrchr(path, '/');
        if (!slash || slash == path) break;
        *slash = 0;
    }
}

static int make_out_dir(const char *dir) {
    if (rc_make_dirs(dir) != 0) return -1;
    DIR *d = opendir(dir);
    if (!d) return rc_set_error("%s: cannot open: %s", dir, strerror(errno));
    struct dirent *e;
    int stale = 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 4 && strcmp(e->d_name + n - 4, ".rcs") == 0) stale = 1;
    }
    closedir(d);
    if (stale)
        return rc_set_error("%s already holds shards (*.rcs): remove them or "
                            "choose another --out, so old and new data do "
                            "not mix", dir);
    return 0;
}

static int check_unique_names(const rc_source_list *l) {
    for (int i = 0; i < l->n; i++)
        for (int j = i + 1; j < l->n; j++)
            if (strcmp(l->items[i].name, l->items[j].name) == 0)
                return rc_set_error(
                    "%s and %s would both be sequence '%s': sequence names "
                    "decide the train/validation split and must differ; list "
                    "them in a manifest with distinct relative paths",
                    l->items[i].path, l->items[j].path, l->items[i].name);
    return 0;
}

int rc_pack(const rc_source_list *sources, const char *out_dir,
            const rc_pack_options *o, rc_pack_stats *stats) {
    rc_pack_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (o->channels != 1 && o->channels != 3)
        return rc_set_error("pack: channels must be 1 or 3");
    if (o->quality < 1 || o->quality > 100)
        return rc_set_error("pack: JPEG quality must be 1..100");
    if (sources->n == 0) return rc_set_error("pack: no sources");
    if (check_unique_names(sources) != 0) return -1;
    char first_new[4096];
    first_missing_dir(out_dir, first_new, sizeof first_new);
    if (make_out_dir(out_dir) != 0) return -1;
    packer p;
    memset(&p, 0, sizeof p);
    p.o = o;
    p.out_dir = out_dir;
    p.st = stats;
    p.n_sources = sources->n;
    int rc = 0;
    for (int i = 0; rc == 0 && i < sources->n; i++) {
        const rc_source *s = &sources->items[i];
        start_source(&p, s);
        rc = s->kind == RC_SOURCE_VIDEO ? pack_video(&p, s) : pack_frames(&p, s);
        p.done_sources++;
        draw_progress(&p, 0);
    }
    if (rc == 0) rc = close_shard(&p);
    if (p.w) rc_shard_writer_abort(p.w);
    draw_progress(&p, 1);
    if (rc == 0 && stats->frames == 0)
        rc = rc_set_error("pack: no usable frames in any source");
    if (p.n_bad > 0) {
        fprintf(stderr, "recompose pack: %d bad item(s) skipped:\n", p.n_bad);
        for (int i = 0; i < p.n_bad; i++) fprintf(stderr, "  %s\n", p.bad[i]);
    }
    for (int i = 0; i < p.n_bad; i++) free(p.bad[i]);
    free(p.bad);
    if (rc != 0) remove_partial_output(&p, first_new);
    return rc;
}
