/* test_safetensors.c: the safetensors reader and writer.
 *
 *  - several dtypes and shapes (scalar, empty, 4-D) and metadata round-trip
 *    byte for byte;
 *  - the file layout is decoded by hand (8-byte little-endian length, JSON
 *    header parsed with jansson here, space padding, data offsets) as an
 *    oracle independent of the reader;
 *  - truncated files, corrupted lengths, bad offsets, unsupported dtypes,
 *    garbage JSON and random header corruption are errors naming the file
 *    (and the tensor), never crashes;
 *  - failed writes (missing or unwritable directory, file size limit, target
 *    is a directory) fail cleanly, leave no temporary file and leave an
 *    existing file untouched;
 *  - $RC_PYTHON (json + numpy.frombuffer) reads what we write, when set. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/safetensors.h"
#include "test_util.h"

static char dir[256];

static void path_in_dir(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static unsigned char *slurp(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *size = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *data, size_t n) {
    /* a new file, not a truncated one: ext4 flushes truncated-and-rewritten
     * files on close, which made this test slow */
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

/* Files in dir whose name contains ".tmp." */
static int count_temp_files(const char *d) {
    DIR *dp = opendir(d);
    if (!dp) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(dp);
    return n;
}

/* ---- the reference tensors ------------------------------------------------- */

static float a_data[6];        /* "a"  F32 [2,3]   = i*0.5 - 1 */
static double b_data[4];       /* "b"  F64 [4]     = 1/(i+3) */
static int64_t c_data[1];      /* "c"  I64 []      = -(2^40)-7 */
static float e_data[1];        /* "e"  F32 [0,5]   (empty) */
static float w_data[8];        /* "w4" F32 [1,2,2,2] = i*i - 3.25 */

static void fill_reference(rc_st_tensor *t, rc_st_meta *m) {
    for (int i = 0; i < 6; i++) a_data[i] = (float)i * 0.5f - 1.0f;
    for (int i = 0; i < 4; i++) b_data[i] = 1.0 / (i + 3);
    c_data[0] = -(INT64_C(1) << 40) - 7;
    for (int i = 0; i < 8; i++) w_data[i] = (float)(i * i) - 3.25f;
    /* deliberately not in name order: the writer sorts */
    t[0] = (rc_st_tensor){"w4", RC_DT_F32, 4, {1, 2, 2, 2}, w_data};
    t[1] = (rc_st_tensor){"b", RC_DT_F64, 1, {4}, b_data};
    t[2] = (rc_st_tensor){"a", RC_DT_F32, 2, {2, 3}, a_data};
    t[3] = (rc_st_tensor){"e", RC_DT_F32, 2, {0, 5}, e_data};
    t[4] = (rc_st_tensor){"c", RC_DT_I64, 0, {0}, c_data};
    m[0] = (rc_st_meta){"format", "test-1"};
    m[1] = (rc_st_meta){"quote", "say \"hi\"\nnew line \\ back"};
    m[2] = (rc_st_meta){"unicode", "caf\xc3\xa9 \xe2\x86\x92"};
}

static size_t dtype_size(rc_dtype d) { return d == RC_DT_F32 ? 4 : 8; }

static size_t nbytes(const rc_st_tensor *t) {
    size_t n = dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
    return n;
}

static void test_round_trip(const char *path) {
    rc_st_tensor t[5];
    rc_st_meta m[3];
    fill_reference(t, m);
    CHECK_MSG(rc_safetensors_write(path, t, 5, m, 3) == 0, "%s", rc_last_error());
    rc_st_file *f = rc_safetensors_read(path);
    CHECK_MSG(f != NULL, "%s", rc_last_error());
    if (!f) return;
    CHECK(rc_safetensors_count(f) == 5);
    CHECK(!strcmp(rc_safetensors_path(f), path));
    const char *order[] = {"a", "b", "c", "e", "w4"};
    for (int i = 0; i < 5; i++)
        CHECK(!strcmp(rc_safetensors_get(f, i)->name, order[i]));
    CHECK(rc_safetensors_get(f, 5) == NULL && rc_safetensors_get(f, -1) == NULL);
    for (int i = 0; i < 5; i++) {
        const rc_st_tensor *r = rc_safetensors_find(f, t[i].name);
        CHECK_MSG(r != NULL, "tensor %s missing", t[i].name);
        if (!r) continue;
        CHECK(r->dtype == t[i].dtype && r->ndim == t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++) CHECK(r->shape[d] == t[i].shape[d]);
        CHECK_MSG(memcmp(r->data, t[i].data, nbytes(&t[i])) == 0, "%s", t[i].name);
        CHECK((uintptr_t)r->data % dtype_size(r->dtype) == 0);
    }
    CHECK(rc_safetensors_find(f, "nope") == NULL);
    for (int i = 0; i < 3; i++) {
        const char *v = rc_safetensors_meta(f, m[i].key);
        CHECK_MSG(v && !strcmp(v, m[i].value), "metadata %s", m[i].key);
    }
    CHECK(rc_safetensors_meta(f, "absent") == NULL);
    rc_safetensors_close(f);
}

/* Decode the file without the reader: length, JSON (jansson, here), padding,
 * offsets, data bytes. */
static void test_layout_by_hand(const char *path) {
    rc_st_tensor t[5];
    rc_st_meta m[3];
    fill_reference(t, m);
    size_t size = 0;
    unsigned char *b = slurp(path, &size);
    CHECK(b && size >= 8);
    if (!b) return;
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);
    CHECK_MSG(n % 8 == 0 && 8 + n <= size, "header length %llu", (unsigned long long)n);
    CHECK(b[8] == '{');
    size_t end = 8 + n;
    while (end > 8 && b[end - 1] == ' ') end--;
    CHECK(b[end - 1] == '}' && 8 + n - end < 8);   /* < 8 spaces of padding */
    json_error_t err;
    json_t *h = json_loadb((const char *)b + 8, end - 8, 0, &err);
    CHECK_MSG(h != NULL, "jansson: %s", err.text);
    if (!h) {
        free(b);
        return;
    }
    json_t *meta = json_object_get(h, "__metadata__");
    for (int i = 0; i < 3; i++)
        CHECK(!strcmp(json_string_value(json_object_get(meta, m[i].key)), m[i].value));
    size_t expect_offset = 0, total = 0;
    const char *order[] = {"a", "b", "c", "e", "w4"};
    const char *dt[] = {"F32", "F64", "I64"};
    for (int k = 0; k < 5; k++) {
        const rc_st_tensor *ref = NULL;
        for (int i = 0; i < 5; i++)
            if (!strcmp(t[i].name, order[k])) ref = &t[i];
        json_t *e = json_object_get(h, order[k]);
        CHECK_MSG(e != NULL, "%s not in header", order[k]);
        if (!e || !ref) continue;
        CHECK(!strcmp(json_string_value(json_object_get(e, "dtype")), dt[ref->dtype]));
        json_t *shape = json_object_get(e, "shape");
        CHECK((int)json_array_size(shape) == ref->ndim);
        for (int d = 0; d < ref->ndim; d++)
            CHECK(json_integer_value(json_array_get(shape, d)) == ref->shape[d]);
        json_t *off = json_object_get(e, "data_offsets");
        size_t lo = (size_t)json_integer_value(json_array_get(off, 0));
        size_t hi = (size_t)json_integer_value(json_array_get(off, 1));
        CHECK_MSG(lo == expect_offset && hi - lo == nbytes(ref), "%s [%zu,%zu]",
                  order[k], lo, hi);
        CHECK(8 + n + hi <= size &&
              memcmp(b + 8 + n + lo, ref->data, nbytes(ref)) == 0);
        expect_offset = hi;
        total += nbytes(ref);
    }
    CHECK(json_object_size(h) == 6);
    CHECK(size == 8 + n + total);
    json_decref(h);
    free(b);
}

/* ---- malformed files -------------------------------------------------------- */

/* A file from a header string and data bytes, padded like ours. */
static void make_file(const char *path, const char *header, const void *data,
                      size_t data_len) {
    size_t hl = strlen(header), padded = (hl + 7) / 8 * 8;
    size_t total = 8 + padded + data_len;
    unsigned char *b = calloc(1, total);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(b + 8, header, hl);
    memset(b + 8 + hl, ' ', padded - hl);
    if (data_len) memcpy(b + 8 + padded, data, data_len);
    spit(path, b, total);
    free(b);
}

static void expect_read_error(const char *path, const char *what,
                              const char *needle) {
    rc_st_file *f = rc_safetensors_read(path);
    CHECK_MSG(f == NULL, "%s: accepted", what);
    if (f) {
        rc_safetensors_close(f);
        return;
    }
    const char *e = rc_last_error();
    CHECK_MSG(!strncmp(e, path, strlen(path)), "%s: error lacks the path: %s",
              what, e);
    CHECK_MSG(strstr(e, needle) != NULL, "%s: '%s' not in: %s", what, needle, e);
}

static void test_malformed(const char *good) {
    char p[512];
    path_in_dir(p, sizeof p, "bad.safetensors");
    size_t size = 0;
    unsigned char *b = slurp(good, &size);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)b[i] << (8 * i);

    /* truncations: at every interesting length */
    size_t cuts[] = {0, 3, 8, 8 + n / 2, 8 + n, size - 1};
    const char *cut_msg[] = {"too short", "too short", "header length",
                             "header length", "run past", "run past"};
    for (int i = 0; i < 6; i++) {
        spit(p, b, cuts[i]);
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", cuts[i]);
        expect_read_error(p, what, cut_msg[i]);
    }
    /* extra bytes after the data */
    unsigned char *longer = calloc(1, size + 8);
    memcpy(longer, b, size);
    spit(p, longer, size + 8);
    expect_read_error(p, "trailing bytes", "account for");
    free(longer);

    /* corrupted header length */
    unsigned char *c = malloc(size);
    memcpy(c, b, size);
    c[7] = 0x80;   /* 2^63 + n */
    spit(p, c, size);
    expect_read_error(p, "huge header length", "header length");
    memcpy(c, b, size);
    c[0] = (unsigned char)(n + 1);   /* cuts the JSON off by one byte... */
    c[1] = (unsigned char)((n + 1) >> 8);
    spit(p, c, size);
    rc_st_file *f = rc_safetensors_read(p);   /* ...must not be accepted */
    CHECK(f == NULL);
    rc_safetensors_close(f);
    free(c);

    float data[4] = {1, 2, 3, 4};
    struct {
        const char *header, *needle;
    } bad[] = {
        {"{not json", "not valid JSON"},
        {"[1,2,3]", "not a JSON object"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,32]}}", "x: data_offsets [0, 32] run past"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,0]}}", "tensor x: data_offsets must be"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", "tensor x: data_offsets [0, 16] hold 16 bytes but F32 with shape [3] needs 12"},
        {"{\"x\":{\"dtype\":\"BF16\",\"shape\":[8],\"data_offsets\":[0,16]}}", "tensor x has dtype BF16; supported: F32, F64, I64"},
        {"{\"x\":{\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor x: entry needs dtype"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", "tensor x: shape entry 0"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,4],\"data_offsets\":[0,16]}}", "tensor x has 5 dimensions"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"y\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}", "tensor y: data_offsets [4, 16] overlap"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}", "tensor y: 4 unused bytes"},
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", "duplicate"},
        {"{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]},"
         "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "x: data offset 4 is not aligned"},
        {"{\"__metadata__\":{\"k\":3},\"x\":{\"dtype\":\"F32\",\"shape\":[4],"
         "\"data_offsets\":[0,16]}}", "metadata k is not a string"},
        {"{\"x\":[1]}", "tensor x: header entry is not an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_file(p, bad[i].header, data, sizeof data);
        expect_read_error(p, bad[i].header, bad[i].needle);
    }
    /* the hand-made layout is readable when the header is right */
    make_file(p, "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
              data, sizeof data);
    f = rc_safetensors_read(p);
    CHECK_MSG(f && rc_safetensors_count(f) == 1 &&
              !memcmp(rc_safetensors_find(f, "x")->data, data, 16),
              "%s", rc_last_error());
    rc_safetensors_close(f);
    /* a header not padded to 8 (other writers) still gives aligned data */
    {
        const char *h = "{\"x\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
        double dd[2] = {1.5, -2.25};
        size_t hl = strlen(h), total = 8 + hl + 16;
        unsigned char *raw = calloc(1, total);
        for (int i = 0; i < 8; i++) raw[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        memcpy(raw + 8, h, hl);
        memcpy(raw + 8 + hl, dd, 16);
        spit(p, raw, total);
        free(raw);
        CHECK(hl % 8 != 0);
        f = rc_safetensors_read(p);
        CHECK_MSG(f != NULL, "%s", rc_last_error());
        if (f) {
            const rc_st_tensor *x = rc_safetensors_find(f, "x");
            CHECK((uintptr_t)x->data % 8 == 0 && !memcmp(x->data, dd, 16));
        }
        rc_safetensors_close(f);
    }
    expect_read_error("/nonexistent/dir/file.safetensors", "missing file",
                      "No such file");

    /* random corruption of header bytes: an error or a valid file, no crash */
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    unsigned char *fz = malloc(size);
    int rejected = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(fz, b, size);
        for (int k = 0; k < 1 + it % 3; k++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            size_t pos = (size_t)(s % (8 + n));
            fz[pos] = (unsigned char)(s >> 32);
        }
        spit(p, fz, size);
        rc_st_file *g = rc_safetensors_read(p);
        if (!g) {
            rejected++;
            CHECK(!strncmp(rc_last_error(), p, strlen(p)));
        }
        rc_safetensors_close(g);
    }
    CHECK(rejected > 1000);
    free(fz);
    free(b);
}

/* ---- failed writes ------------------------------------------------------------ */

static void test_failed_writes(const char *good) {
    float big_data[1];
    rc_st_tensor t = {"x", RC_DT_F32, 1, {1}, big_data};
    big_data[0] = 1;

    /* missing directory */
    char missing[512];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.safetensors", dir);
    CHECK(rc_safetensors_write(missing, &t, 1, NULL, 0) == -1);
    CHECK_MSG(!strncmp(rc_last_error(), missing, strlen(missing)) &&
              strstr(rc_last_error(), "No such file"), "%s", rc_last_error());

    /* unwritable directory (root writes anywhere: then use /proc) */
    char ro[512], ro_file[600];
    path_in_dir(ro, sizeof ro, "readonly");
    mkdir(ro, 0755);
    if (geteuid() != 0) {
        chmod(ro, 0555);
        snprintf(ro_file, sizeof ro_file, "%s/x.safetensors", ro);
    } else {
        snprintf(ro_file, sizeof ro_file, "/proc/rc_test_%d.safetensors",
                 (int)getpid());
    }
    CHECK(rc_safetensors_write(ro_file, &t, 1, NULL, 0) == -1);
    CHECK_MSG(!strncmp(rc_last_error(), ro_file, strlen(ro_file)) &&
              strstr(rc_last_error(), "cannot create temporary file"),
              "%s", rc_last_error());
    CHECK(count_temp_files(ro) == 0);
    chmod(ro, 0755);

    /* the target path is a directory: rename fails, the temp file goes */
    char as_dir[512];
    path_in_dir(as_dir, sizeof as_dir, "is_a_dir.safetensors");
    mkdir(as_dir, 0755);
    CHECK(rc_safetensors_write(as_dir, &t, 1, NULL, 0) == -1);
    CHECK_MSG(strstr(rc_last_error(), "write failed"), "%s", rc_last_error());
    CHECK(count_temp_files(dir) == 0);

    /* a write that runs out of room (file size limit, as a full disk would):
     * the existing file keeps its exact bytes, no temporary file remains */
    size_t before_size = 0;
    unsigned char *before = slurp(good, &before_size);
    size_t n = 1 << 18;   /* 1 MiB of floats */
    float *big = calloc(n, sizeof *big);
    for (size_t i = 0; i < n; i++) big[i] = (float)i;
    rc_st_tensor bt = {"big", RC_DT_F32, 1, {(int64_t)n}, big};
    struct rlimit old, small;
    getrlimit(RLIMIT_FSIZE, &old);
    small = old;
    small.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    int status = rc_safetensors_write(good, &bt, 1, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old);
    CHECK(status == -1);
    CHECK_MSG(strstr(rc_last_error(), "write failed: File too large") &&
              strstr(rc_last_error(), "nothing was replaced"), "%s", rc_last_error());
    size_t after_size = 0;
    unsigned char *after = slurp(good, &after_size);
    CHECK(after && after_size == before_size &&
          memcmp(before, after, before_size) == 0);
    CHECK(count_temp_files(dir) == 0);
    /* and with room it succeeds, replacing the file */
    CHECK(rc_safetensors_write(good, &bt, 1, NULL, 0) == 0);
    rc_st_file *f = rc_safetensors_read(good);
    CHECK(f && rc_safetensors_count(f) == 1 &&
          !memcmp(rc_safetensors_find(f, "big")->data, big, n * 4));
    rc_safetensors_close(f);
    free(before);
    free(after);
    free(big);

    /* invalid requests are refused before touching the disk */
    rc_st_tensor dup[2] = {t, t};
    CHECK(rc_safetensors_write(good, dup, 2, NULL, 0) == -1 &&
          strstr(rc_last_error(), "tensor x appears twice"));
    rc_st_tensor meta_name = {"__metadata__", RC_DT_F32, 1, {1}, big_data};
    CHECK(rc_safetensors_write(good, &meta_name, 1, NULL, 0) == -1);
    rc_st_tensor neg = {"n", RC_DT_F32, 1, {-1}, big_data};
    CHECK(rc_safetensors_write(good, &neg, 1, NULL, 0) == -1);
    rc_st_meta bad_utf8 = {"k", "\xff\xfe"};
    CHECK(rc_safetensors_write(good, &t, 1, &bad_utf8, 1) == -1 &&
          strstr(rc_last_error(), "UTF-8"));
    CHECK(count_temp_files(dir) == 0);
}

/* ---- an independent reader: python + numpy ------------------------------------- */

static const char *python_check =
    "import json, struct, sys\n"
    "import numpy as np\n"
    "b = open(sys.argv[1], 'rb').read()\n"
    "n = struct.unpack('<Q', b[:8])[0]\n"
    "h = json.loads(b[8:8 + n])\n"
    "meta = h.pop('__metadata__')\n"
    "import zlib\n"  /* the CRC32 of the file with the digits zeroed */
    "crc = meta.pop('crc32')\n"
    "z = b[8:8 + n].replace(('\"crc32\":\"%s\"' % crc).encode(),\n"
    "                       b'\"crc32\":\"00000000\"')\n"
    "assert '%08x' % zlib.crc32(z + b[8 + n:]) == crc, crc\n"
    "assert meta == {'format': 'test-1', 'quote': 'say \"hi\"\\nnew line \\\\ back',\n"
    "                'unicode': 'caf\\u00e9 \\u2192'}, meta\n"
    "data = b[8 + n:]\n"
    "kinds = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8'}\n"
    "def get(name):\n"
    "    e = h[name]\n"
    "    lo, hi = e['data_offsets']\n"
    "    return np.frombuffer(data[lo:hi], dtype=kinds[e['dtype']]).reshape(e['shape'])\n"
    "assert sorted(h) == ['a', 'b', 'c', 'e', 'w4']\n"
    "assert np.array_equal(get('a'), (np.arange(6, dtype='f4') * 0.5 - 1).reshape(2, 3))\n"
    "assert np.array_equal(get('b'), 1.0 / (np.arange(4) + 3))\n"
    "assert get('c').shape == () and int(get('c')) == -(2**40) - 7\n"
    "assert get('e').shape == (0, 5)\n"
    "i = np.arange(8, dtype='f4')\n"
    "assert np.array_equal(get('w4'), (i * i - 3.25).reshape(1, 2, 2, 2))\n"
    "print('python ok')\n";

static void test_python_reads(const char *path) {
    const char *py = getenv("RC_PYTHON");
    if (!py || !*py || access(py, X_OK) != 0) {
        fprintf(stderr, "note: RC_PYTHON not set; skipping the python check\n");
        return;
    }
    char script[512], cmd[2048];
    path_in_dir(script, sizeof script, "check.py");
    spit(script, python_check, strlen(python_check));
    snprintf(cmd, sizeof cmd, "'%s' -c 'import numpy' 2>/dev/null", py);
    if (system(cmd) != 0) {
        fprintf(stderr, "note: %s has no numpy; skipping the python check\n", py);
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", py, script, path);
    CHECK_MSG(system(cmd) == 0, "python could not read %s", path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/rc_test_safetensors_%d", (int)getpid());
    mkdir(dir, 0755);
    char good[512];
    path_in_dir(good, sizeof good, "good.safetensors");

    test_round_trip(good);
    test_layout_by_hand(good);
    test_python_reads(good);
    test_malformed(good);
    test_failed_writes(good);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "note: could not remove %s\n", dir);
    TEST_DONE();
}
