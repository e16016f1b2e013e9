/* source.c: what the user points at: video files, folders of numbered
 * frames, manifests, and directories in which to discover those. */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/video.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define RC_MANIFEST_MAX_LINE 4096

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = rc_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = rc_xmalloc(a + b + 2);
    memcpy(p, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

static const char *extension(const char *name) {
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    return (dot && (!slash || dot > slash)) ? dot + 1 : "";
}

static int has_ext(const char *name, const char *const *exts) {
    const char *e = extension(name);
    for (int i = 0; exts[i]; i++)
        if (strcasecmp(e, exts[i]) == 0) return 1;
    return 0;
}

static const char *const video_exts[] = {"avi", "mp4", "mkv", "mov", "webm",
                                         "mpg", "mpeg", "m4v", NULL};
static const char *const image_exts[] = {"jpg", "jpeg", "png", NULL};
static const char *const manifest_exts[] = {"txt", "lst", "list", NULL};

/* ---- manifest ----------------------------------------------------------- */

void rc_manifest_free(rc_manifest *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->paths[i]);
    free(m->paths);
    free(m->lines);
    memset(m, 0, sizeof *m);
}

static void manifest_push(rc_manifest *m, const char *s, size_t n, int line) {
    m->paths = realloc(m->paths, sizeof(char *) * (size_t)(m->n + 1));
    m->lines = realloc(m->lines, sizeof(int) * (size_t)(m->n + 1));
    if (!m->paths || !m->lines) {
        rc_log("out of memory reading a manifest");
        exit(2);
    }
    char *p = rc_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    m->paths[m->n] = p;
    m->lines[m->n] = line;
    m->n++;
}

int rc_manifest_parse(const char *text, size_t len, const char *origin,
                      rc_manifest *out) {
    memset(out, 0, sizeof *out);
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        size_t a = pos, b = end;
        pos = end + 1;
        if (b - a > RC_MANIFEST_MAX_LINE) {
            rc_manifest_free(out);
            return rc_set_error("%s:%d: line longer than %d bytes", origin,
                                line, RC_MANIFEST_MAX_LINE);
        }
        if (b > a && text[b - 1] == '\r') b--; /* CRLF files */
        for (size_t i = a; i < b; i++) {
            unsigned char c = (unsigned char)text[i];
            if (c == 0 || (c < 0x20 && c != '\t') || c == 0x7f) {
                rc_manifest_free(out);
                return rc_set_error(
                    "%s:%d: control byte 0x%02x at column %zu: a manifest is "
                    "text, one path per line",
                    origin, line, c, i - a + 1);
            }
        }
        while (a < b && isspace((unsigned char)text[a])) a++;
        while (b > a && isspace((unsigned char)text[b - 1])) b--;
        if (a == b || text[a] == '#') continue;
        manifest_push(out, text + a, b - a, line);
    }
    return 0;
}

/* ---- source list ---------------------------------------------------------- */

void rc_sources_free(rc_source_list *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        rc_source *s = &l->items[i];
        for (int j = 0; j < s->n_files; j++) free(s->files[j]);
        free(s->files);
        free(s->numbers);
        free(s->path);
        free(s->name);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static rc_source *push_source(rc_source_list *l) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->items = realloc(l->items, sizeof(rc_source) * (size_t)l->cap);
        if (!l->items) {
            rc_log("out of memory listing sources");
            exit(2);
        }
    }
    rc_source *s = &l->items[l->n++];
    memset(s, 0, sizeof *s);
    return s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted entry names of a directory (without . and ..). */
static int list_dir(const char *dir, char ***names, int *n) {
    DIR *d = opendir(dir);
    if (!d) return rc_set_error("%s: cannot open directory: %s", dir,
                                strerror(errno));
    int cap = 64, k = 0;
    char **v = rc_xmalloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden files */
        if (k == cap) {
            cap *= 2;
            v = realloc(v, sizeof(char *) * (size_t)cap);
            if (!v) {
                rc_log("out of memory listing %s", dir);
                exit(2);
            }
        }
        v[k++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)k, sizeof(char *), cmp_str);
    *names = v;
    *n = k;
    return 0;
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* The frame number of a file name: its last run of digits. */
static int frame_number(const char *name, long *num) {
    const char *end = name + strlen(name);
    const char *dot = strrchr(name, '.');
    if (dot) end = dot;
    const char *p = end;
    while (p > name && !isdigit((unsigned char)p[-1])) p--;
    const char *q = p;
    while (q > name && isdigit((unsigned char)q[-1])) q--;
    if (q == p || p - q > 12) return -1;
    long v = 0;
    for (const char *c = q; c < p; c++) v = v * 10 + (*c - '0');
    *num = v;
    return 0;
}

typedef struct {
    long num;
    char *file;
} numbered;

static int cmp_numbered(const void *a, const void *b) {
    long x = ((const numbered *)a)->num, y = ((const numbered *)b)->num;
    return (x > y) - (x < y);
}

/* Fill a frame-folder source from the image files among `names`. */
static int make_frame_source(rc_source_list *l, const char *dir,
                             const char *name, char **names, int n) {
    int k = 0;
    numbered *v = rc_xmalloc(sizeof(numbered) * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        if (!has_ext(names[i], image_exts)) continue;
        char *full = join_path(dir, names[i]);
        if (frame_number(names[i], &v[k].num) != 0) {
            rc_set_error("%s: no frame number in the file name; frames must "
                         "be numbered (e.g. frame_0001.jpg)", full);
            free(full);
            for (int j = 0; j < k; j++) free(v[j].file);
            free(v);
            return -1;
        }
        v[k++].file = full;
    }
    qsort(v, (size_t)k, sizeof *v, cmp_numbered);
    for (int i = 1; i < k; i++) {
        if (v[i].num == v[i - 1].num) {
            rc_set_error("%s and %s: both are frame %ld", v[i - 1].file,
                         v[i].file, v[i].num);
            for (int j = 0; j < k; j++) free(v[j].file);
            free(v);
            return -1;
        }
    }
    rc_source *s = push_source(l);
    s->kind = RC_SOURCE_FRAMES;
    s->path = xstrdup(dir);
    s->name = xstrdup(name);
    s->n_files = k;
    s->files = rc_xmalloc(sizeof(char *) * (size_t)(k ? k : 1));
    s->numbers = rc_xmalloc(sizeof(long) * (size_t)(k ? k : 1));
    for (int i = 0; i < k; i++) {
        s->files[i] = v[i].file;
        s->numbers[i] = v[i].num;
    }
    free(v);
    return 0;
}

static void add_video(rc_source_list *l, const char *path, const char *name) {
    rc_source *s = push_source(l);
    s->kind = RC_SOURCE_VIDEO;
    s->path = xstrdup(path);
    s->name = xstrdup(name);
}

/* Recursive discovery under `dir`; names are `prefix/relative path`. */
static int discover(rc_source_list *l, const char *dir, const char *name,
                    int depth) {
    if (depth > 16) return rc_set_error("%s: directories nested too deep", dir);
    char **names = NULL;
    int n = 0;
    if (list_dir(dir, &names, &n) != 0) return -1;
    int images = 0;
    for (int i = 0; i < n; i++) images += has_ext(names[i], image_exts);
    int rc = 0;
    if (images > 0) rc = make_frame_source(l, dir, name, names, n);
    for (int i = 0; rc == 0 && i < n; i++) {
        char *full = join_path(dir, names[i]);
        char *sub = join_path(name, names[i]);
        struct stat st;
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
            rc = discover(l, full, sub, depth + 1);
        else if (has_ext(names[i], video_exts))
            add_video(l, full, sub);
        free(full);
        free(sub);
    }
    free_names(names, n);
    return rc;
}

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    return p;
}

static int add_manifest(rc_source_list *l, const char *path);

/* Whether the file's first 4 KiB are text (no NUL or control bytes other
 * than tab, CR and LF): what a manifest is and a video is not. */
static int looks_like_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 1; /* the manifest reader reports the error */
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] < 0x20 && buf[i] != '\t' && buf[i] != '\r' && buf[i] != '\n')
            return 0;
    return 1;
}

/* `name` is the sequence name for a direct video file or frame folder. */
static int add_path(rc_source_list *l, const char *path, const char *name,
                    int allow_manifest) {
    struct stat st;
    if (stat(path, &st) != 0)
        return rc_set_error("%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        int before = l->n;
        /* strip trailing slashes from the name so "d/" and "d" agree */
        char *nm = xstrdup(name);
        size_t k = strlen(nm);
        while (k > 1 && nm[k - 1] == '/') nm[--k] = 0;
        int rc = discover(l, path, nm, 0);
        free(nm);
        if (rc != 0) return -1;
        if (l->n == before)
            return rc_set_error("%s: no frame folders (numbered .jpg/.png) or "
                                "video files found", path);
        return 0;
    }
    if (!S_ISREG(st.st_mode))
        return rc_set_error("%s: not a file or directory", path);
    if (has_ext(path, video_exts)) {
        add_video(l, path, name);
        return 0;
    }
    if (has_ext(path, image_exts))
        return rc_set_error("%s: a single image is not a sequence; give its "
                            "folder instead", path);
    /* A manifest's extension (.txt, .lst) names a manifest. Any other: a
     * manifest is text; anything else FFmpeg can open (.ts, .flv, .gif, a
     * video without extension, ...) is a video. */
    if (!has_ext(path, manifest_exts) && !looks_like_text(path)) {
        rc_video *v = rc_video_open(path);
        if (v) {
            rc_video_close(v);
            add_video(l, path, name);
            return 0;
        }
        return rc_set_error("%s: neither a video FFmpeg can open nor a "
                            "manifest (a text file, one path per line)", path);
    }
    if (!allow_manifest)
        return rc_set_error("%s: manifests may not include manifests", path);
    return add_manifest(l, path);
}

static int add_manifest(rc_source_list *l, const char *path) {
    uint8_t *text;
    size_t n;
    if (rc_read_file(path, &text, &n) != 0) return -1;
    rc_manifest m;
    int rc = rc_manifest_parse((const char *)text, n, path, &m);
    free(text);
    if (rc != 0) return -1;
    if (m.n == 0) {
        rc_manifest_free(&m);
        return rc_set_error("%s: the manifest lists no sources", path);
    }
    /* relative entries are relative to the manifest's folder */
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    for (int i = 0; rc == 0 && i < m.n; i++) {
        char *full = m.paths[i][0] == '/' ? xstrdup(m.paths[i])
                                          : join_path(dir, m.paths[i]);
        struct stat st;
        if (stat(full, &st) != 0) {
            rc = rc_set_error("%s:%d: '%s' does not exist (looked for %s)",
                              path, m.lines[i], m.paths[i], full);
        } else if (add_path(l, full, m.paths[i], 0) != 0) {
            char inner[900];
            snprintf(inner, sizeof inner, "%s", rc_last_error());
            rc = rc_set_error("%s:%d: %s", path, m.lines[i], inner);
        }
        free(full);
    }
    free(dir);
    rc_manifest_free(&m);
    return rc;
}

int rc_sources_add(rc_source_list *l, const char *arg) {
    return add_path(l, arg, base_name(arg), 1);
}
