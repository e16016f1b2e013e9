/* shard.c: the packed shard format (docs/shards.md): writer and mmap reader.
 *
 * Layout: 64-byte header | record payloads | index (sequence table, record
 * table, name strings). The header and the index carry CRC-32s, and every
 * record its own, so a truncated file, a flipped bit or an index pointing
 * outside the file is found before any byte reaches training. */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/video.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR_SIZE 64
#define SEQ_ENTRY 32
#define REC_ENTRY 32
#define SHARD_VERSION 1
#define MAX_NAME 4096
static const uint8_t shard_magic[8] = {'R', 'C', 'S', 'H', 'A', 'R', 'D', 0};

/* ---- writer ------------------------------------------------------------ */

struct rc_shard_writer {
    char *path, *tmp;
    FILE *f;
    int encoding;
    uint64_t pos;                 /* bytes written so far */
    rc_shard_sequence *seqs;
    char **names;
    uint32_t n_seq, cap_seq;
    rc_shard_record *recs;
    uint32_t n_rec, cap_rec;
};

static void writer_free(rc_shard_writer *w) {
    for (uint32_t i = 0; i < w->n_seq; i++) free(w->names[i]);
    free(w->names);
    free(w->seqs);
    free(w->recs);
    free(w->path);
    free(w->tmp);
    free(w);
}

rc_shard_writer *rc_shard_writer_open(const char *path, int encoding) {
    if (encoding != RC_SHARD_RAW && encoding != RC_SHARD_JPEG) {
        rc_set_error("%s: unknown record encoding %d", path, encoding);
        return NULL;
    }
    rc_shard_writer *w = rc_xcalloc(1, sizeof *w);
    size_t n = strlen(path);
    w->path = rc_xmalloc(n + 1);
    memcpy(w->path, path, n + 1);
    w->tmp = rc_xmalloc(n + 5);
    snprintf(w->tmp, n + 5, "%s.tmp", path);
    w->encoding = encoding;
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        rc_set_error("%s: cannot create: %s", w->tmp, strerror(errno));
        writer_free(w);
        return NULL;
    }
    uint8_t zero[HDR_SIZE] = {0}; /* the real header is written on close */
    if (fwrite(zero, 1, HDR_SIZE, w->f) != HDR_SIZE) {
        rc_set_error("%s: write failed: %s", w->tmp, strerror(errno));
        rc_shard_writer_abort(w);
        return NULL;
    }
    w->pos = HDR_SIZE;
    return w;
}

int rc_shard_writer_begin(rc_shard_writer *w, const char *name, int width,
                          int height, int channels) {
    size_t len = strlen(name);
    if (len == 0 || len > MAX_NAME)
        return rc_set_error("%s: sequence name must be 1..%d bytes", w->path,
                            MAX_NAME);
    if (width < 1 || height < 1 || width > 16384 || height > 16384 ||
        (channels != 1 && channels != 3))
        return rc_set_error("%s: sequence %s: bad frame shape %dx%dx%d",
                            w->path, name, width, height, channels);
    if (w->n_seq == w->cap_seq) {
        w->cap_seq = w->cap_seq ? 2 * w->cap_seq : 16;
        w->seqs = realloc(w->seqs, sizeof *w->seqs * w->cap_seq);
        w->names = realloc(w->names, sizeof *w->names * w->cap_seq);
        if (!w->seqs || !w->names) {
            rc_log("out of memory in the shard writer");
            exit(2);
        }
    }
    rc_shard_sequence *s = &w->seqs[w->n_seq];
    w->names[w->n_seq] = rc_xmalloc(len + 1);
    memcpy(w->names[w->n_seq], name, len + 1);
    s->name = w->names[w->n_seq];
    s->width = width;
    s->height = height;
    s->channels = channels;
    s->first_record = w->n_rec;
    s->n_records = 0;
    w->n_seq++;
    return 0;
}

int rc_shard_writer_add(rc_shard_writer *w, const uint8_t *data, size_t n,
                        int64_t frame_number) {
    if (w->n_seq == 0)
        return rc_set_error("%s: record added before any sequence", w->path);
    if (n == 0 || n > 0xffffffffu)
        return rc_set_error("%s: record of %zu bytes", w->path, n);
    if (w->n_rec == 0xffffffffu)
        return rc_set_error("%s: too many records", w->path);
    if (w->n_rec == w->cap_rec) {
        w->cap_rec = w->cap_rec ? 2 * w->cap_rec : 256;
        w->recs = realloc(w->recs, sizeof *w->recs * w->cap_rec);
        if (!w->recs) {
            rc_log("out of memory in the shard writer");
            exit(2);
        }
    }
    if (fwrite(data, 1, n, w->f) != n)
        return rc_set_error("%s: write failed: %s", w->tmp, strerror(errno));
    rc_shard_record *r = &w->recs[w->n_rec++];
    r->sequence = w->n_seq - 1;
    r->frame_number = frame_number;
    r->offset = w->pos;
    r->size = (uint32_t)n;
    r->crc32 = rc_crc32(0, data, n);
    w->seqs[w->n_seq - 1].n_records++;
    w->pos += n;
    return 0;
}

uint64_t rc_shard_writer_bytes(const rc_shard_writer *w) { return w->pos; }

void rc_shard_writer_abort(rc_shard_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    writer_free(w);
}

static uint8_t *build_index(const rc_shard_writer *w, uint64_t *size) {
    uint64_t strings = 0;
    for (uint32_t i = 0; i < w->n_seq; i++) strings += strlen(w->names[i]);
    uint64_t n = (uint64_t)SEQ_ENTRY * w->n_seq + (uint64_t)REC_ENTRY * w->n_rec +
                 strings;
    uint8_t *ix = rc_xcalloc(n ? n : 1, 1);
    uint8_t *str = ix + (uint64_t)SEQ_ENTRY * w->n_seq +
                   (uint64_t)REC_ENTRY * w->n_rec;
    uint32_t soff = 0;
    for (uint32_t i = 0; i < w->n_seq; i++) {
        const rc_shard_sequence *s = &w->seqs[i];
        uint8_t *e = ix + (uint64_t)SEQ_ENTRY * i;
        uint32_t len = (uint32_t)strlen(w->names[i]);
        rc_put_u32(e + 0, soff);
        rc_put_u32(e + 4, len);
        rc_put_u32(e + 8, (uint32_t)s->width);
        rc_put_u32(e + 12, (uint32_t)s->height);
        rc_put_u32(e + 16, (uint32_t)s->channels);
        rc_put_u32(e + 20, s->first_record);
        rc_put_u32(e + 24, s->n_records);
        memcpy(str + soff, w->names[i], len);
        soff += len;
    }
    uint8_t *rt = ix + (uint64_t)SEQ_ENTRY * w->n_seq;
    for (uint32_t i = 0; i < w->n_rec; i++) {
        const rc_shard_record *r = &w->recs[i];
        uint8_t *e = rt + (uint64_t)REC_ENTRY * i;
        rc_put_u64(e + 0, r->offset);
        rc_put_u32(e + 8, r->size);
        rc_put_u32(e + 12, r->crc32);
        rc_put_u32(e + 16, r->sequence);
        rc_put_u64(e + 24, (uint64_t)r->frame_number);
    }
    *size = n;
    return ix;
}

int rc_shard_writer_close(rc_shard_writer *w) {
    /* sequences without records would only confuse readers */
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->n_seq; i++) {
        if (w->seqs[i].n_records == 0) {
            free(w->names[i]);
            continue;
        }
        w->seqs[k] = w->seqs[i];
        w->names[k] = w->names[i];
        for (uint32_t r = 0; r < w->seqs[k].n_records; r++)
            w->recs[w->seqs[k].first_record + r].sequence = k;
        k++;
    }
    w->n_seq = k;
    uint64_t isize;
    uint8_t *ix = build_index(w, &isize);
    uint8_t hdr[HDR_SIZE] = {0};
    memcpy(hdr, shard_magic, 8);
    rc_put_u32(hdr + 8, SHARD_VERSION);
    rc_put_u32(hdr + 12, (uint32_t)w->encoding);
    rc_put_u32(hdr + 16, w->n_seq);
    rc_put_u32(hdr + 20, w->n_rec);
    rc_put_u64(hdr + 24, w->pos);
    rc_put_u64(hdr + 32, isize);
    rc_put_u32(hdr + 40, rc_crc32(0, ix, isize));
    rc_put_u32(hdr + 60, rc_crc32(0, hdr, 60));
    int ok = fwrite(ix, 1, isize, w->f) == isize && fflush(w->f) == 0 &&
             fseek(w->f, 0, SEEK_SET) == 0 &&
             fwrite(hdr, 1, HDR_SIZE, w->f) == HDR_SIZE && fflush(w->f) == 0 &&
             fsync(fileno(w->f)) == 0;
    free(ix);
    int rc = 0;
    if (!ok) rc = rc_set_error("%s: write failed: %s", w->tmp, strerror(errno));
    if (fclose(w->f) != 0 && rc == 0)
        rc = rc_set_error("%s: close failed: %s", w->tmp, strerror(errno));
    w->f = NULL;
    if (rc == 0 && rename(w->tmp, w->path) != 0)
        rc = rc_set_error("%s: cannot rename to %s: %s", w->tmp, w->path,
                          strerror(errno));
    if (rc != 0) unlink(w->tmp);
    writer_free(w);
    return rc;
}

/* ---- reader ------------------------------------------------------------ */

struct rc_shard {
    char *path;
    const uint8_t *data;
    size_t size;
    int mapped;
    int encoding;
    uint32_t n_seq, n_rec;
    rc_shard_sequence *seqs;
    char *names;        /* NUL-separated copies of the names */
    rc_shard_record *recs;
};

void rc_shard_close(rc_shard *s) {
    if (!s) return;
    if (s->mapped && s->data) munmap((void *)s->data, s->size);
    free(s->seqs);
    free(s->names);
    free(s->recs);
    free(s->path);
    free(s);
}

static rc_shard *shard_fail(rc_shard *s) {
    rc_shard_close(s);
    return NULL;
}

/* Validate and decode the header and index; every offset is checked
 * against the file size before use (this is the fuzzed surface). */
static int parse_shard(rc_shard *s) {
    const char *p = s->path;
    const uint8_t *d = s->data;
    if (s->size < HDR_SIZE)
        return rc_set_error("%s: truncated shard (%zu bytes, header is %d); "
                            "re-run recompose pack", p, s->size, HDR_SIZE);
    if (memcmp(d, shard_magic, 8) != 0)
        return rc_set_error("%s: not a recompose shard (bad magic)", p);
    if (rc_get_u32(d + 60) != rc_crc32(0, d, 60))
        return rc_set_error("%s: header checksum mismatch: the file is "
                            "corrupt; re-run recompose pack", p);
    uint32_t version = rc_get_u32(d + 8);
    if (version != SHARD_VERSION)
        return rc_set_error("%s: shard format version %u, this build reads %d",
                            p, version, SHARD_VERSION);
    s->encoding = (int)rc_get_u32(d + 12);
    if (s->encoding != RC_SHARD_RAW && s->encoding != RC_SHARD_JPEG)
        return rc_set_error("%s: unknown record encoding %d", p, s->encoding);
    s->n_seq = rc_get_u32(d + 16);
    s->n_rec = rc_get_u32(d + 20);
    uint64_t ioff = rc_get_u64(d + 24), isize = rc_get_u64(d + 32);
    if (ioff < HDR_SIZE || ioff > s->size || isize != s->size - ioff)
        return rc_set_error(
            "%s: truncated or damaged shard: the index should span bytes "
            "%llu..%llu but the file has %zu bytes; re-run recompose pack", p,
            (unsigned long long)ioff, (unsigned long long)(ioff + isize),
            s->size);
    uint64_t tables = (uint64_t)SEQ_ENTRY * s->n_seq +
                      (uint64_t)REC_ENTRY * s->n_rec;
    if (tables > isize)
        return rc_set_error("%s: index too small for %u sequences and %u "
                            "records", p, s->n_seq, s->n_rec);
    const uint8_t *ix = d + ioff;
    if (rc_get_u32(d + 40) != rc_crc32(0, ix, isize))
        return rc_set_error("%s: index checksum mismatch: the file is corrupt; "
                            "re-run recompose pack", p);
    uint64_t strings_len = isize - tables;
    const uint8_t *str = ix + tables;
    s->seqs = rc_xcalloc(s->n_seq ? s->n_seq : 1, sizeof *s->seqs);
    s->recs = rc_xcalloc(s->n_rec ? s->n_rec : 1, sizeof *s->recs);
    /* names may overlap in the string table: size the copies by a first
     * pass over the (range-checked) lengths */
    uint64_t names_bytes = 1;
    for (uint32_t i = 0; i < s->n_seq; i++) {
        const uint8_t *e = ix + (uint64_t)SEQ_ENTRY * i;
        uint32_t off = rc_get_u32(e), len = rc_get_u32(e + 4);
        if (len == 0 || len > MAX_NAME || (uint64_t)off + len > strings_len)
            return rc_set_error("%s: sequence %u: bad name", p, i);
        names_bytes += (uint64_t)len + 1;
    }
    s->names = rc_xmalloc(names_bytes);
    size_t name_pos = 0;
    uint32_t expect_first = 0;
    for (uint32_t i = 0; i < s->n_seq; i++) {
        const uint8_t *e = ix + (uint64_t)SEQ_ENTRY * i;
        uint32_t off = rc_get_u32(e), len = rc_get_u32(e + 4);
        rc_shard_sequence *q = &s->seqs[i];
        q->width = (int)rc_get_u32(e + 8);
        q->height = (int)rc_get_u32(e + 12);
        q->channels = (int)rc_get_u32(e + 16);
        q->first_record = rc_get_u32(e + 20);
        q->n_records = rc_get_u32(e + 24);
        if (len == 0 || len > MAX_NAME || (uint64_t)off + len > strings_len ||
            memchr(str + off, 0, len))
            return rc_set_error("%s: sequence %u: bad name", p, i);
        memcpy(s->names + name_pos, str + off, len);
        s->names[name_pos + len] = 0;
        q->name = s->names + name_pos;
        name_pos += len + 1;
        if (rc_get_u32(e + 8) - 1 >= 16384 || rc_get_u32(e + 12) - 1 >= 16384 ||
            (q->channels != 1 && q->channels != 3))
            return rc_set_error("%s: sequence %s: bad frame shape", p, q->name);
        if (q->first_record != expect_first || q->n_records == 0 ||
            q->n_records > s->n_rec - q->first_record)
            return rc_set_error("%s: sequence %s: bad record range", p, q->name);
        expect_first += q->n_records;
    }
    if (expect_first != s->n_rec)
        return rc_set_error("%s: %u records belong to no sequence", p,
                            s->n_rec - expect_first);
    const uint8_t *rt = ix + (uint64_t)SEQ_ENTRY * s->n_seq;
    for (uint32_t i = 0; i < s->n_rec; i++) {
        const uint8_t *e = rt + (uint64_t)REC_ENTRY * i;
        rc_shard_record *r = &s->recs[i];
        r->offset = rc_get_u64(e);
        r->size = rc_get_u32(e + 8);
        r->crc32 = rc_get_u32(e + 12);
        r->sequence = rc_get_u32(e + 16);
        r->frame_number = (int64_t)rc_get_u64(e + 24);
        if (r->sequence >= s->n_seq ||
            i - s->seqs[r->sequence].first_record >=
                s->seqs[r->sequence].n_records)
            return rc_set_error("%s: record %u: bad sequence index", p, i);
        if (r->offset < HDR_SIZE || r->offset > ioff || r->size == 0 ||
            r->size > ioff - r->offset)
            return rc_set_error("%s: record %u (sequence %s, frame %lld) "
                                "points outside the payload area", p, i,
                                s->seqs[r->sequence].name,
                                (long long)r->frame_number);
        const rc_shard_sequence *q = &s->seqs[r->sequence];
        if (s->encoding == RC_SHARD_RAW &&
            r->size != (uint64_t)q->width * q->height * q->channels)
            return rc_set_error("%s: record %u (sequence %s, frame %lld): %u "
                                "bytes, a %dx%dx%d raw frame has %llu", p, i,
                                q->name, (long long)r->frame_number, r->size,
                                q->width, q->height, q->channels,
                                (unsigned long long)q->width * q->height *
                                    q->channels);
    }
    return 0;
}

static rc_shard *shard_new(const char *name) {
    rc_shard *s = rc_xcalloc(1, sizeof *s);
    size_t n = strlen(name);
    s->path = rc_xmalloc(n + 1);
    memcpy(s->path, name, n + 1);
    return s;
}

rc_shard *rc_shard_open_memory(const uint8_t *data, size_t n,
                               const char *name) {
    rc_shard *s = shard_new(name);
    s->data = data;
    s->size = n;
    if (parse_shard(s) != 0) return shard_fail(s);
    return s;
}

rc_shard *rc_shard_open(const char *path) {
    rc_shard *s = shard_new(path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        rc_set_error("%s: cannot open shard: %s", path, strerror(errno));
        return shard_fail(s);
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        rc_set_error("%s: not a regular file", path);
        return shard_fail(s);
    }
    s->size = (size_t)st.st_size;
    if (s->size >= HDR_SIZE) {
        void *m = mmap(NULL, s->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            rc_set_error("%s: mmap failed: %s", path, strerror(errno));
            return shard_fail(s);
        }
        s->data = m;
        s->mapped = 1;
    }
    close(fd);
    if (parse_shard(s) != 0) return shard_fail(s);
    return s;
}

int rc_shard_encoding(const rc_shard *s) { return s->encoding; }
uint32_t rc_shard_n_sequences(const rc_shard *s) { return s->n_seq; }
uint32_t rc_shard_n_records(const rc_shard *s) { return s->n_rec; }
const rc_shard_sequence *rc_shard_get_sequence(const rc_shard *s, uint32_t i) {
    return i < s->n_seq ? &s->seqs[i] : NULL;
}
const rc_shard_record *rc_shard_get_record(const rc_shard *s, uint32_t i) {
    return i < s->n_rec ? &s->recs[i] : NULL;
}

static int payload_of(const rc_shard *s, uint32_t i, int check_crc,
                      const uint8_t **data, size_t *n) {
    if (i >= s->n_rec)
        return rc_set_error("%s: record %u out of range", s->path, i);
    const rc_shard_record *r = &s->recs[i];
    const uint8_t *p = s->data + r->offset;
    if (check_crc && rc_crc32(0, p, r->size) != r->crc32)
        return rc_set_error("%s: sequence %s, frame %lld (record %u): "
                            "checksum mismatch; the shard is corrupt, re-run "
                            "recompose pack",
                            s->path, s->seqs[r->sequence].name,
                            (long long)r->frame_number, i);
    *data = p;
    *n = r->size;
    return 0;
}

int rc_shard_payload(const rc_shard *s, uint32_t i, const uint8_t **data,
                     size_t *n) {
    return payload_of(s, i, 1, data, n);
}

int rc_shard_decode_with(void *h, const rc_shard *s, uint32_t i, int channels,
                         int min_w, int min_h, rc_image *out) {
    return rc_shard_decode_checked(h, s, i, channels, min_w, min_h, 1, out);
}

int rc_shard_decode_checked(void *h, const rc_shard *s, uint32_t i, int channels,
                            int min_w, int min_h, int check_crc, rc_image *out) {
    memset(out, 0, sizeof *out);
    const uint8_t *p;
    size_t n;
    if (payload_of(s, i, check_crc, &p, &n) != 0) return -1;
    const rc_shard_record *r = &s->recs[i];
    const rc_shard_sequence *q = &s->seqs[r->sequence];
    char what[600];
    snprintf(what, sizeof what, "%s: sequence %s, frame %lld", s->path,
             q->name, (long long)r->frame_number);
    if (s->encoding == RC_SHARD_RAW) {
        size_t px = (size_t)q->width * q->height;
        out->width = q->width;
        out->height = q->height;
        out->channels = channels;
        out->pixels = rc_xmalloc(px * channels);
        if (channels == q->channels)
            memcpy(out->pixels, p, n);
        else if (channels == 1)
            rc_rgb_to_gray(p, px, out->pixels);
        else
            rc_gray_to_rgb(p, px, out->pixels);
        return 0;
    }
    int fw = 0, fh = 0;
    if (rc_jpeg_decode_with(h, p, n, channels, min_w, min_h, what, out, &fw,
                            &fh) != 0)
        return -1;
    if (fw != q->width || fh != q->height) {
        rc_image_free(out);
        return rc_set_error("%s: frame is %dx%d, the sequence is %dx%d", what,
                            fw, fh, q->width, q->height);
    }
    return 0;
}

int rc_shard_decode(const rc_shard *s, uint32_t i, int channels, int min_w,
                    int min_h, rc_image *out) {
    void *h = s->encoding == RC_SHARD_JPEG ? rc_jpeg_decoder_new() : NULL;
    int rc = rc_shard_decode_with(h, s, i, channels, min_w, min_h, out);
    rc_jpeg_decoder_free(h);
    return rc;
}
