/* npy.c: NumPy's .npy format, version 1.0, for float32 arrays.
 *
 * Layout (numpy/lib/format.py): the magic "\x93NUMPY", version bytes 1 0, a
 * little-endian u16 header length, then an ASCII Python dict literal
 * {'descr': '<f4', 'fortran_order': False, 'shape': (a, b), } padded with
 * spaces and ending in '\n' so that the data starts at a multiple of 64
 * bytes, then the raw C-order data. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/viz.h"

static int host_is_little_endian(void) {
    const uint16_t probe = 1;
    return *(const uint8_t *)&probe == 1;
}

/* The dict text padded to a 64-byte boundary; returns its length or -1. */
static int npy_header_text(int ndim, const int64_t *shape, char *out,
                           size_t cap) {
    char dims[256] = "";
    size_t used = 0;
    for (int i = 0; i < ndim; i++) {
        int w = snprintf(dims + used, sizeof dims - used, "%lld,%s",
                         (long long)shape[i], i + 1 < ndim ? " " : "");
        if (w < 0 || (size_t)w >= sizeof dims - used) return -1;
        used += (size_t)w;
    }
    /* a one-element tuple needs its trailing comma; longer ones drop it */
    if (ndim > 1 && used > 0 && dims[used - 1] == ',') dims[--used] = '\0';
    int len = snprintf(out, cap,
                       "{'descr': '<f4', 'fortran_order': False, "
                       "'shape': (%s), }", dims);
    if (len < 0 || (size_t)len >= cap) return -1;
    size_t total = 10 + (size_t)len + 1; /* preamble + dict + '\n' */
    size_t pad = (64 - total % 64) % 64;
    if ((size_t)len + pad + 1 >= cap) return -1;
    memset(out + len, ' ', pad);
    out[len + pad] = '\n';
    return len + (int)pad + 1;
}

int rc_npy_write_f32(const char *path, int ndim, const int64_t *shape,
                     const float *data) {
    if (ndim < 1 || ndim > 8)
        return rc_set_error("%s: .npy arrays need 1..8 dimensions, not %d",
                            path, ndim);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return rc_set_error("%s: negative dimension %lld", path,
                                (long long)shape[i]);
        count *= (size_t)shape[i];
    }
    char header[512];
    int hlen = npy_header_text(ndim, shape, header, sizeof header);
    if (hlen < 0) return rc_set_error("%s: .npy header too long", path);
    FILE *f = fopen(path, "wb");
    if (!f) return rc_set_error("cannot create %s: %s", path, strerror(errno));
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                       (uint8_t)(hlen & 0xff), (uint8_t)(hlen >> 8)};
    int ok = fwrite(pre, 1, sizeof pre, f) == sizeof pre &&
             fwrite(header, 1, (size_t)hlen, f) == (size_t)hlen;
    if (ok && host_is_little_endian()) {
        ok = fwrite(data, sizeof(float), count, f) == count;
    } else {
        /* big-endian host: swap each value to the '<f4' byte order */
        for (size_t i = 0; ok && i < count; i++) {
            uint8_t b[4], s[4];
            memcpy(b, &data[i], 4);
            for (int k = 0; k < 4; k++) s[k] = b[3 - k];
            ok = fwrite(s, 1, 4, f) == 4;
        }
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) return rc_set_error("cannot write %s: %s", path, strerror(errno));
    return 0;
}
