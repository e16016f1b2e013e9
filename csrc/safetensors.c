/* safetensors.c: the safetensors file format (huggingface/safetensors).
 *
 *   [8 bytes: N, little-endian u64][N bytes: JSON header][data]
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets":
 * [begin, end]}, offsets counted from the first byte after the header, plus
 * an optional "__metadata__" object of string values. We pad the header with
 * spaces so that the data starts at a multiple of 8 bytes, and lay tensors
 * out in name order, back to back.
 *
 * Writing is atomic: the bytes go to PATH.tmp.<pid> in the same directory,
 * which is fsynced and renamed over PATH, then the directory is fsynced. A
 * failed write (disk full, file size limit, ...) removes the temporary file
 * and leaves any previous PATH untouched.
 *
 * Reading loads the whole file and validates the header strictly before
 * handing out pointers into it, so a truncated or corrupted file is an error
 * that names the file and the tensor, never a crash.
 *
 * Checksum: the writer stores a CRC32 (zlib) of the whole file in the
 * metadata entry "crc32" (8 lowercase hex digits; a string, as the format
 * wants, so other readers simply ignore it). It is computed with those 8
 * digits set to '0', i.e. over the header as written with a placeholder,
 * then the data; the digits are patched in afterwards. A reader that finds
 * the entry recomputes it the same way, so a flipped bit anywhere, header
 * or data, is caught. Files from other writers have no entry and are read
 * unverified.
 */
#include "recompose/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recompose/common.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (the format's tensor data is little-endian)"
#endif

/* The reference implementation refuses headers above 100 MB; so do we, so
 * that a corrupted length cannot make us allocate the moon. */
#define ST_MAX_HEADER (100u * 1000u * 1000u)

static const char *const dtype_names[] = {"F32", "F64", "I64"};
static const size_t dtype_sizes[] = {4, 8, 8};

/* The checksum entry as it appears in our compact JSON header. Inside a
 * JSON string a quote is escaped, so this byte sequence can only be the
 * metadata key itself. */
#define CRC_KEY "crc32"
#define CRC_PATTERN "\"" CRC_KEY "\":\""
#define CRC_PLACEHOLDER "00000000"
#define CRC_DIGITS 8

/* Where the 8 digits of the checksum start in a header, or NULL. */
static char *find_crc_digits(char *header, size_t len) {
    size_t plen = strlen(CRC_PATTERN);
    for (size_t i = 0; i + plen + CRC_DIGITS < len; i++)
        if (!memcmp(header + i, CRC_PATTERN, plen) &&
            header[i + plen + CRC_DIGITS] == '"')
            return header + i + plen;
    return NULL;
}

static int dtype_valid(rc_dtype d) { return d >= RC_DT_F32 && d <= RC_DT_I64; }

/* numel * itemsize, or -1 on overflow / invalid shape. */
static int64_t tensor_bytes(rc_dtype dtype, int ndim, const int64_t *shape) {
    uint64_t bytes = dtype_sizes[dtype];
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return -1;
        uint64_t s = (uint64_t)shape[d];
        if (s && bytes > (uint64_t)INT64_MAX / s) return -1;
        bytes *= s;
    }
    return (int64_t)bytes;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", d ? "," : "",
                                (long long)shape[d]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* ---- writing ---------------------------------------------------------------- */

static int compare_tensor_names(const void *a, const void *b) {
    const rc_st_tensor *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int check_tensors_to_write(const char *path, const rc_st_tensor **sorted,
                                  int n) {
    for (int i = 0; i < n; i++) {
        const rc_st_tensor *t = sorted[i];
        if (!t->name || !*t->name || !strcmp(t->name, "__metadata__"))
            return rc_set_error("%s: tensor %d has no usable name", path, i);
        if (i > 0 && !strcmp(sorted[i - 1]->name, t->name))
            return rc_set_error("%s: tensor %s appears twice", path, t->name);
        if (!dtype_valid(t->dtype))
            return rc_set_error("%s: tensor %s has an unknown dtype %d", path,
                                t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > 4)
            return rc_set_error("%s: tensor %s has %d dimensions; 0 to 4 "
                                "supported", path, t->name, t->ndim);
        if (tensor_bytes(t->dtype, t->ndim, t->shape) < 0)
            return rc_set_error("%s: tensor %s has an invalid shape", path,
                                t->name);
    }
    return 0;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes; NULL if
 * jansson refuses a name or value (not valid UTF-8). */
static char *build_header(const rc_st_tensor **sorted, int n,
                          const rc_st_meta *meta, int n_meta, size_t *len_out) {
    json_t *root = json_object();
    int bad = 0;
    json_t *m = json_object();
    for (int i = 0; i < n_meta; i++)
        bad |= json_object_set_new(m, meta[i].key, json_string(meta[i].value));
    bad |= json_object_set_new(m, CRC_KEY, json_string(CRC_PLACEHOLDER));
    bad |= json_object_set_new(root, "__metadata__", m);
    int64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const rc_st_tensor *t = sorted[i];
        int64_t bytes = tensor_bytes(t->dtype, t->ndim, t->shape);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *entry = json_pack("{s:s, s:o, s:[I,I]}", "dtype",
                                  dtype_names[t->dtype], "shape", shape,
                                  "data_offsets", (json_int_t)offset,
                                  (json_int_t)(offset + bytes));
        bad |= json_object_set_new(root, t->name, entry);
        offset += bytes;
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return NULL;
    size_t len = strlen(text), padded = (len + 7) / 8 * 8;
    char *header = rc_xmalloc(padded);
    memcpy(header, text, len);
    memset(header + len, ' ', padded - len);
    free(text);
    *len_out = padded;
    return header;
}

static int write_all(int fd, const void *data, size_t bytes) {
    const char *p = data;
    while (bytes > 0) {
        size_t chunk = bytes < ((size_t)1 << 30) ? bytes : ((size_t)1 << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        bytes -= (size_t)w;
    }
    return 0;
}

static const char *write_hint(int err) {
    if (err == ENOSPC) return "; free some disk space or write elsewhere";
    if (err == EDQUOT) return "; the disk quota is exhausted";
    if (err == EFBIG) return "; the file size limit (ulimit -f) is too small";
    return "";
}

/* CRC32 of the file to be written (header with the placeholder, then the
 * data), patched into the header's checksum digits. */
static void stamp_checksum(char *header, size_t header_len,
                           const rc_st_tensor **sorted, int n) {
    char *digits = find_crc_digits(header, header_len);
    uint32_t crc = rc_crc32(0, header, header_len);
    for (int i = 0; i < n; i++) {
        int64_t bytes = tensor_bytes(sorted[i]->dtype, sorted[i]->ndim,
                                     sorted[i]->shape);
        if (bytes > 0) crc = rc_crc32(crc, sorted[i]->data, (size_t)bytes);
    }
    char hex[CRC_DIGITS + 1];
    snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
    memcpy(digits, hex, CRC_DIGITS);
}

static int write_contents(int fd, const char *header, size_t header_len,
                          const rc_st_tensor **sorted, int n) {
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)(header_len >> (8 * i));
    if (write_all(fd, len_le, 8) || write_all(fd, header, header_len)) return -1;
    for (int i = 0; i < n; i++) {
        int64_t bytes = tensor_bytes(sorted[i]->dtype, sorted[i]->ndim,
                                     sorted[i]->shape);
        if (bytes > 0 && write_all(fd, sorted[i]->data, (size_t)bytes)) return -1;
    }
    return fsync(fd);
}

/* Make the rename durable: fsync the directory that holds PATH. */
static int sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int status = fsync(fd);
    /* some file systems cannot fsync a directory; nothing more to do there */
    if (status != 0 && (errno == EINVAL || errno == ENOTSUP)) status = 0;
    int err = errno;
    close(fd);
    errno = err;
    return status;
}

int rc_safetensors_write(const char *path, const rc_st_tensor *tensors, int n,
                         const rc_st_meta *meta, int n_meta) {
    if (n < 0 || n_meta < 0)
        return rc_set_error("%s: negative tensor or metadata count", path);
    const rc_st_tensor **sorted = rc_xmalloc((size_t)(n ? n : 1) * sizeof *sorted);
    for (int i = 0; i < n; i++) sorted[i] = &tensors[i];
    qsort(sorted, (size_t)n, sizeof *sorted, compare_tensor_names);
    for (int i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value) {
            free(sorted);
            return rc_set_error("%s: metadata entry %d has no key or value",
                                path, i);
        }
        if (!strcmp(meta[i].key, CRC_KEY)) {
            free(sorted);
            return rc_set_error("%s: metadata key %s is reserved for the "
                                "file's checksum", path, CRC_KEY);
        }
    }
    if (check_tensors_to_write(path, sorted, n) != 0) {
        free(sorted);
        return -1;
    }
    size_t header_len = 0;
    char *header = build_header(sorted, n, meta, n_meta, &header_len);
    if (!header) {
        free(sorted);
        return rc_set_error("%s: cannot encode the header (tensor names and "
                            "metadata must be valid UTF-8)", path);
    }
    stamp_checksum(header, header_len, sorted, n);

    size_t tmp_cap = strlen(path) + 32;
    char *tmp = rc_xmalloc(tmp_cap);
    snprintf(tmp, tmp_cap, "%s.tmp.%ld", path, (long)getpid());
    int status = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        status = rc_set_error("%s: cannot create temporary file %s: %s", path,
                              tmp, strerror(errno));
    } else {
        int failed = write_contents(fd, header, header_len, sorted, n);
        int err = errno;
        if (close(fd) != 0 && !failed) failed = 1, err = errno;
        if (!failed && rename(tmp, path) != 0) failed = 1, err = errno;
        if (failed) {
            unlink(tmp);
            status = rc_set_error("%s: write failed: %s%s (nothing was "
                                  "replaced)", path, strerror(err),
                                  write_hint(err));
        } else if (sync_parent_dir(path) != 0) {
            status = rc_set_error("%s: written, but syncing its directory "
                                  "failed: %s", path, strerror(errno));
        }
    }
    free(tmp);
    free(header);
    free(sorted);
    return status;
}

/* ---- reading ---------------------------------------------------------------- */

struct rc_st_file {
    char *path;
    unsigned char *bytes;     /* the whole file (header_only: 8 + header) */
    size_t size;              /* bytes held */
    size_t file_size;         /* bytes on disk */
    int header_only;          /* tensors have data == NULL */
    unsigned char *data_copy; /* the data, if it does not start 8-aligned */
    int n;
    rc_st_tensor *tensors;    /* in data order */
    int n_meta;
    rc_st_meta *meta;
};

void rc_safetensors_close(rc_st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free((char *)f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free((char *)f->meta[i].key);
        free((char *)f->meta[i].value);
    }
    free(f->tensors);
    free(f->meta);
    free(f->bytes);
    free(f->data_copy);
    free(f->path);
    free(f);
}

static int read_whole_file(rc_st_file *f) {
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return rc_set_error("%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return rc_set_error("%s: not a regular file", f->path);
    }
    f->size = f->file_size = (size_t)st.st_size;
    /* +1: malloc(0) aside, a buffer is 16-byte aligned, which the tensors'
     * data (8-aligned offsets from an 8-aligned start) relies on. */
    f->bytes = rc_xmalloc(f->size + 1);
    size_t got = fread(f->bytes, 1, f->size, fp);
    int err = ferror(fp);
    fclose(fp);
    if (err || got != f->size)
        return rc_set_error("%s: read error (got %zu of %zu bytes)", f->path,
                            got, f->size);
    return 0;
}

static int parse_dtype(const char *s, rc_dtype *out) {
    for (int d = 0; d < 3; d++)
        if (!strcmp(s, dtype_names[d])) {
            *out = (rc_dtype)d;
            return 0;
        }
    return -1;
}

static int parse_metadata(rc_st_file *f, json_t *m) {
    if (!json_is_object(m))
        return rc_set_error("%s: __metadata__ is not an object", f->path);
    f->meta = rc_xcalloc(json_object_size(m) + 1, sizeof *f->meta);
    const char *key;
    json_t *value;
    json_object_foreach(m, key, value) {
        if (!json_is_string(value))
            return rc_set_error("%s: metadata %s is not a string (safetensors "
                                "metadata values are strings)", f->path, key);
        f->meta[f->n_meta].key = strdup(key);
        f->meta[f->n_meta].value = strdup(json_string_value(value));
        f->n_meta++;
    }
    return 0;
}

/* Read a non-negative JSON integer. */
static int json_size(json_t *v, int64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Validate one header entry and fill t (data not yet set); begin/end are the
 * data offsets. */
static int parse_entry(const rc_st_file *f, const char *name, json_t *e,
                       size_t data_size, rc_st_tensor *t, int64_t *begin,
                       int64_t *end) {
    const char *p = f->path;
    if (!json_is_object(e))
        return rc_set_error("%s: tensor %s: header entry is not an object", p, name);
    json_t *dtype = json_object_get(e, "dtype");
    json_t *shape = json_object_get(e, "shape");
    json_t *offsets = json_object_get(e, "data_offsets");
    if (!json_is_string(dtype) || !json_is_array(shape) || !json_is_array(offsets))
        return rc_set_error("%s: tensor %s: entry needs dtype (string), shape "
                            "and data_offsets (arrays)", p, name);
    if (parse_dtype(json_string_value(dtype), &t->dtype) != 0)
        return rc_set_error("%s: tensor %s has dtype %s; supported: F32, F64, "
                            "I64", p, name, json_string_value(dtype));
    size_t ndim = json_array_size(shape);
    if (ndim > 4)
        return rc_set_error("%s: tensor %s has %zu dimensions; at most 4 are "
                            "supported", p, name, ndim);
    t->ndim = (int)ndim;
    for (size_t d = 0; d < ndim; d++)
        if (json_size(json_array_get(shape, d), &t->shape[d]) != 0)
            return rc_set_error("%s: tensor %s: shape entry %zu is not a "
                                "non-negative integer", p, name, d);
    if (json_array_size(offsets) != 2 ||
        json_size(json_array_get(offsets, 0), begin) != 0 ||
        json_size(json_array_get(offsets, 1), end) != 0 || *end < *begin)
        return rc_set_error("%s: tensor %s: data_offsets must be [begin, end] "
                            "with 0 <= begin <= end", p, name);
    if ((uint64_t)*end > data_size)
        return rc_set_error("%s: tensor %s: data_offsets [%lld, %lld] run past "
                            "the %zu data bytes of the file (truncated?)", p,
                            name, (long long)*begin, (long long)*end, data_size);
    int64_t want = tensor_bytes(t->dtype, t->ndim, t->shape);
    char sh[96];
    format_shape(sh, sizeof sh, t->ndim, t->shape);
    if (want < 0 || want != *end - *begin)
        return rc_set_error("%s: tensor %s: data_offsets [%lld, %lld] hold %lld "
                            "bytes but %s with shape %s needs %lld", p, name,
                            (long long)*begin, (long long)*end,
                            (long long)(*end - *begin),
                            dtype_names[t->dtype], sh, (long long)want);
    if (*begin % (int64_t)dtype_sizes[t->dtype] != 0)
        return rc_set_error("%s: tensor %s: data offset %lld is not aligned to "
                            "its %zu-byte elements", p, name, (long long)*begin,
                            dtype_sizes[t->dtype]);
    return 0;
}

typedef struct {
    int64_t begin, end;
    int index;
} span;

static int compare_spans(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index - y->index;
}

/* Tensors must tile the data exactly: no overlap, no gap, nothing after. */
static int check_layout(rc_st_file *f, span *spans, rc_st_tensor *unordered,
                        size_t data_size) {
    qsort(spans, (size_t)f->n, sizeof *spans, compare_spans);
    int64_t at = 0;
    for (int i = 0; i < f->n; i++) {
        const char *name = unordered[spans[i].index].name;
        if (spans[i].begin < at)
            return rc_set_error("%s: tensor %s: data_offsets [%lld, %lld] "
                                "overlap the previous tensor", f->path, name,
                                (long long)spans[i].begin, (long long)spans[i].end);
        if (spans[i].begin > at)
            return rc_set_error("%s: tensor %s: %lld unused bytes before its "
                                "data; tensors must be contiguous", f->path,
                                name, (long long)(spans[i].begin - at));
        at = spans[i].end;
    }
    if ((uint64_t)at != data_size)
        return rc_set_error("%s: %zu bytes of data but the tensors account for "
                            "%lld", f->path, data_size, (long long)at);
    return 0;
}

static int parse_header(rc_st_file *f) {
    if (f->size < 8)
        return rc_set_error("%s: %zu bytes; too short for a safetensors file "
                            "(truncated?)", f->path, f->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | f->bytes[i];
    if (n > ST_MAX_HEADER || n > f->file_size - 8)
        return rc_set_error("%s: header length %llu does not fit in the %zu-byte "
                            "file (corrupted or not a safetensors file)", f->path,
                            (unsigned long long)n, f->file_size);
    size_t data_start = 8 + (size_t)n, data_size = f->file_size - data_start;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->bytes + 8, (size_t)n,
                              JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return rc_set_error("%s: header is not valid JSON: %s (header byte %d)",
                            f->path, jerr.text, jerr.position);
    /* Our writer pads the header so that the data start is 8-aligned; other
     * writers may not, and the tensors must be aligned to be read as floats. */
    const unsigned char *data = f->bytes + data_start;
    if (data_start % 8 != 0 && !f->header_only) {
        f->data_copy = rc_xmalloc(data_size + 1);
        memcpy(f->data_copy, data, data_size);
        data = f->data_copy;
    }
    int status = 0;
    if (!json_is_object(root)) {
        status = rc_set_error("%s: header is not a JSON object", f->path);
        goto done;
    }
    size_t count = json_object_size(root);
    rc_st_tensor *unordered = rc_xcalloc(count + 1, sizeof *unordered);
    span *spans = rc_xcalloc(count + 1, sizeof *spans);
    const char *name;
    json_t *entry;
    json_object_foreach(root, name, entry) {
        if (!strcmp(name, "__metadata__")) {
            if ((status = parse_metadata(f, entry)) != 0) break;
            continue;
        }
        rc_st_tensor *t = &unordered[f->n];
        t->name = strdup(name);
        spans[f->n].index = f->n;
        f->n++;
        status = parse_entry(f, name, entry, data_size, t, &spans[f->n - 1].begin,
                             &spans[f->n - 1].end);
        if (status != 0) break;
        t->data = f->header_only ? NULL : data + spans[f->n - 1].begin;
    }
    if (status == 0) status = check_layout(f, spans, unordered, data_size);
    /* file order = data order */
    f->tensors = rc_xcalloc((size_t)f->n + 1, sizeof *f->tensors);
    for (int i = 0; i < f->n; i++)
        f->tensors[i] = unordered[status == 0 ? spans[i].index : i];
    free(unordered);
    free(spans);
done:
    json_decref(root);
    return status;
}

/* Recompute the CRC32 of a file that carries one (see the top of the file). */
static int verify_checksum(rc_st_file *f) {
    const char *stored = rc_safetensors_meta(f, CRC_KEY);
    if (!stored) return 0; /* another writer's file: nothing to verify */
    size_t header_len = (size_t)f->bytes[0] | (size_t)f->bytes[1] << 8 |
                        (size_t)f->bytes[2] << 16 | (size_t)f->bytes[3] << 24;
    char *header = rc_xmalloc(header_len + 1);
    memcpy(header, f->bytes + 8, header_len);
    char *digits = find_crc_digits(header, header_len);
    int status = 0;
    if (strlen(stored) != CRC_DIGITS || !digits ||
        memcmp(digits, stored, CRC_DIGITS)) {
        status = rc_set_error("%s: metadata crc32 '%s' is malformed or not "
                              "where this writer puts it: the file is damaged "
                              "or was rewritten by another tool", f->path,
                              stored);
    } else {
        memcpy(digits, CRC_PLACEHOLDER, CRC_DIGITS);
        uint32_t crc = rc_crc32(0, header, header_len);
        crc = rc_crc32(crc, f->bytes + 8 + header_len,
                           f->size - 8 - header_len);
        char hex[CRC_DIGITS + 1];
        snprintf(hex, sizeof hex, "%08x", (unsigned)crc);
        if (strcmp(hex, stored))
            status = rc_set_error("%s: checksum mismatch (stored crc32 %s, "
                                  "computed %s): the file is damaged", f->path,
                                  stored, hex);
    }
    free(header);
    return status;
}

rc_st_file *rc_safetensors_read(const char *path) {
    rc_st_file *f = rc_xcalloc(1, sizeof *f);
    f->path = strdup(path);
    if (read_whole_file(f) != 0 || parse_header(f) != 0 ||
        verify_checksum(f) != 0) {
        rc_safetensors_close(f);
        return NULL;
    }
    return f;
}

/* Only the length and the header: for metadata of big files. */
static int read_header_bytes(rc_st_file *f) {
    FILE *fp = fopen(f->path, "rb");
    if (!fp) return rc_set_error("%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    unsigned char len_le[8];
    int status = 0;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        status = rc_set_error("%s: not a regular file", f->path);
    } else if (fread(len_le, 1, 8, fp) != 8) {
        status = rc_set_error("%s: %lld bytes; too short for a safetensors "
                              "file (truncated?)", f->path,
                              (long long)st.st_size);
    } else {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len_le[i];
        f->file_size = (size_t)st.st_size;
        if (n > ST_MAX_HEADER || n > f->file_size - 8) {
            f->size = 8; /* parse_header reports the bad length */
            f->bytes = rc_xmalloc(8);
            memcpy(f->bytes, len_le, 8);
        } else {
            f->size = 8 + (size_t)n;
            f->bytes = rc_xmalloc(f->size + 1);
            memcpy(f->bytes, len_le, 8);
            if (fread(f->bytes + 8, 1, (size_t)n, fp) != (size_t)n)
                status = rc_set_error("%s: read error in the header", f->path);
        }
    }
    fclose(fp);
    return status;
}

rc_st_file *rc_safetensors_read_header(const char *path) {
    rc_st_file *f = rc_xcalloc(1, sizeof *f);
    f->path = strdup(path);
    f->header_only = 1;
    if (read_header_bytes(f) != 0 || parse_header(f) != 0) {
        rc_safetensors_close(f);
        return NULL;
    }
    return f;
}

int rc_safetensors_count(const rc_st_file *f) { return f->n; }

const rc_st_tensor *rc_safetensors_get(const rc_st_file *f, int i) {
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const rc_st_tensor *rc_safetensors_find(const rc_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *rc_safetensors_meta(const rc_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta[i].key, key)) return f->meta[i].value;
    return NULL;
}

const char *rc_safetensors_path(const rc_st_file *f) { return f->path; }
