/* image.c: JPEG (TurboJPEG), PNG (libpng) and resizing (libswscale).
 *
 * Every decoder treats a warning as an error: a truncated JPEG decodes
 * "successfully" into a gray-filled bottom half with only a warning, and
 * such a frame would silently poison training. */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/video.h"

#include <errno.h>
#include <libswscale/swscale.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

void rc_rgb_to_gray(const uint8_t *rgb, size_t pixels, uint8_t *gray) {
    for (size_t i = 0; i < pixels; i++) {
        uint32_t y = 19595u * rgb[3 * i] + 38470u * rgb[3 * i + 1] +
                     7471u * rgb[3 * i + 2] + 32768u;
        gray[i] = (uint8_t)(y >> 16);
    }
}

void rc_gray_to_rgb(const uint8_t *gray, size_t pixels, uint8_t *rgb) {
    for (size_t i = 0; i < pixels; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = gray[i];
}

void rc_image_free(rc_image *im) {
    if (!im) return;
    free(im->pixels);
    memset(im, 0, sizeof *im);
}

int rc_read_file(const char *path, uint8_t **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return rc_set_error("%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return rc_set_error("%s: cannot seek: %s", path, strerror(errno));
    }
    long size = ftell(f);
    rewind(f);
    if (size < 0) {
        fclose(f);
        return rc_set_error("%s: cannot tell size", path);
    }
    uint8_t *buf = rc_xmalloc((size_t)size + 1);
    size_t got = fread(buf, 1, (size_t)size, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)size) {
        free(buf);
        return rc_set_error("%s: read error", path);
    }
    *data = buf;
    *n = got;
    return 0;
}

/* ---- JPEG ------------------------------------------------------------- */

void *rc_jpeg_decoder_new(void) { return tjInitDecompress(); }
void rc_jpeg_decoder_free(void *h) {
    if (h) tjDestroy(h);
}

/* The smallest DCT-domain scale (num/denom) that keeps the image at least
 * min_w x min_h: libjpeg-turbo then skips most of the IDCT work. */
static void choose_scale(int w, int h, int min_w, int min_h, int *sw,
                         int *sh) {
    *sw = w;
    *sh = h;
    if (min_w <= 0 && min_h <= 0) return;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num > sf[i].denom) continue; /* never upscale */
        int cw = TJSCALED(w, sf[i]), ch = TJSCALED(h, sf[i]);
        if (cw >= min_w && ch >= min_h && cw * ch < *sw * *sh) {
            *sw = cw;
            *sh = ch;
        }
    }
}

int rc_jpeg_decode_with(void *h, const uint8_t *data, size_t n, int channels,
                        int min_w, int min_h, const char *what,
                        rc_image *out, int *full_w, int *full_h) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return rc_set_error("%s: channels must be 1 or 3", what);
    if (n < 4 || n > 0x7fffffffUL)
        return rc_set_error("%s: not a JPEG (%zu bytes)", what, n);
    int w = 0, hh = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(h, data, (unsigned long)n, &w, &hh, &subsamp,
                            &cs) != 0)
        return rc_set_error("%s: corrupt JPEG header: %s", what,
                            tjGetErrorStr2(h));
    if (w <= 0 || hh <= 0 || w > 16384 || hh > 16384)
        return rc_set_error("%s: JPEG size %dx%d out of range", what, w, hh);
    if (full_w) *full_w = w;
    if (full_h) *full_h = hh;
    int sw, sh;
    choose_scale(w, hh, min_w, min_h, &sw, &sh);
    uint8_t *px = rc_xmalloc((size_t)sw * sh * channels);
    int pf = channels == 1 ? TJPF_GRAY : TJPF_RGB;
    if (tjDecompress2(h, data, (unsigned long)n, px, sw, 0, sh, pf,
                      TJFLAG_STOPONWARNING) != 0) {
        int code = tjGetErrorCode(h);
        rc_set_error("%s: %s JPEG data: %s", what,
                     code == TJERR_WARNING ? "truncated or corrupt"
                                           : "undecodable",
                     tjGetErrorStr2(h));
        free(px);
        return -1;
    }
    out->width = sw;
    out->height = sh;
    out->channels = channels;
    out->pixels = px;
    return 0;
}

int rc_image_decode_jpeg(const uint8_t *data, size_t n, int channels,
                         const char *what, rc_image *out) {
    void *h = rc_jpeg_decoder_new();
    if (!h) return rc_set_error("%s: cannot create a JPEG decoder", what);
    int rc = rc_jpeg_decode_with(h, data, n, channels, 0, 0, what, out, NULL, NULL);
    rc_jpeg_decoder_free(h);
    return rc;
}

int rc_image_encode_jpeg(const rc_image *im, int quality, uint8_t **data,
                         size_t *n) {
    tjhandle h = tjInitCompress();
    if (!h) return rc_set_error("cannot create a JPEG encoder");
    unsigned char *buf = NULL;
    unsigned long size = 0;
    int gray = im->channels == 1;
    int rc = tjCompress2(h, im->pixels, im->width, 0, im->height,
                         gray ? TJPF_GRAY : TJPF_RGB, &buf, &size,
                         gray ? TJSAMP_GRAY : TJSAMP_420, quality, 0);
    if (rc != 0) {
        rc_set_error("JPEG encoding failed: %s", tjGetErrorStr2(h));
        tjDestroy(h);
        return -1;
    }
    tjDestroy(h);
    /* hand back a malloc'd copy so callers free() uniformly */
    *data = rc_xmalloc(size);
    memcpy(*data, buf, size);
    *n = size;
    tjFree(buf);
    return 0;
}

static int write_file(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return rc_set_error("%s: cannot create: %s", path, strerror(errno));
    size_t put = fwrite(data, 1, n, f);
    if (fclose(f) != 0 || put != n)
        return rc_set_error("%s: write failed: %s", path, strerror(errno));
    return 0;
}

int rc_image_save_jpeg(const char *path, const rc_image *im, int quality) {
    uint8_t *d;
    size_t n;
    if (rc_image_encode_jpeg(im, quality, &d, &n) != 0) return -1;
    int rc = write_file(path, d, n);
    free(d);
    return rc;
}

/* ---- PNG -------------------------------------------------------------- */

int rc_image_decode_png(const uint8_t *data, size_t n, int channels,
                        const char *what, rc_image *out) {
    memset(out, 0, sizeof *out);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, n))
        return rc_set_error("%s: corrupt PNG: %s", what, img.message);
    if (img.width == 0 || img.height == 0 || img.width > 16384 ||
        img.height > 16384) {
        png_image_free(&img);
        return rc_set_error("%s: PNG size %ux%u out of range", what,
                            img.width, img.height);
    }
    /* Always read RGB and convert to gray ourselves: libpng's own RGB->gray
     * works in linear light and would disagree with JPEG's luminance. */
    img.format = PNG_FORMAT_RGB;
    size_t pixels = (size_t)img.width * img.height;
    uint8_t *rgb = rc_xmalloc(pixels * 3);
    if (!png_image_finish_read(&img, NULL, rgb, 0, NULL)) {
        rc_set_error("%s: corrupt or truncated PNG data: %s", what,
                     img.message);
        free(rgb);
        png_image_free(&img);
        return -1;
    }
    out->width = (int)img.width;
    out->height = (int)img.height;
    out->channels = channels;
    if (channels == 1) {
        out->pixels = rc_xmalloc(pixels);
        rc_rgb_to_gray(rgb, pixels, out->pixels);
        free(rgb);
    } else {
        out->pixels = rgb;
    }
    return 0;
}

int rc_image_save_png(const char *path, const rc_image *im) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)im->width;
    img.height = (png_uint_32)im->height;
    img.format = im->channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&img, path, 0, im->pixels, 0, NULL))
        return rc_set_error("%s: cannot write PNG: %s", path, img.message);
    return 0;
}

int rc_image_load(const char *path, int channels, rc_image *out) {
    uint8_t *data;
    size_t n;
    memset(out, 0, sizeof *out);
    if (rc_read_file(path, &data, &n) != 0) return -1;
    int rc;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a,
                                       '\n'};
    if (n >= 8 && memcmp(data, png_sig, 8) == 0)
        rc = rc_image_decode_png(data, n, channels, path, out);
    else if (n >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        rc = rc_image_decode_jpeg(data, n, channels, path, out);
    else if (n == 0)
        rc = rc_set_error("%s: empty file", path);
    else
        rc = rc_set_error("%s: neither a JPEG nor a PNG file", path);
    free(data);
    return rc;
}

/* ---- resizing --------------------------------------------------------- */

int rc_image_resize(const rc_image *in, int width, int height, int channels,
                    rc_image *out) {
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0)
        return rc_set_error("resize to %dx%d: size must be positive", width,
                            height);
    /* Scale in the input's channel count, then convert: swscale's own
     * RGB->GRAY uses limited-range video coefficients. */
    int c = in->channels;
    uint8_t *scaled;
    if (width == in->width && height == in->height) {
        size_t bytes = (size_t)width * height * c;
        scaled = rc_xmalloc(bytes);
        memcpy(scaled, in->pixels, bytes);
    } else {
        enum AVPixelFormat pf = c == 1 ? AV_PIX_FMT_GRAY8 : AV_PIX_FMT_RGB24;
        struct SwsContext *sws =
            sws_getContext(in->width, in->height, pf, width, height, pf,
                           SWS_AREA | SWS_ACCURATE_RND, NULL, NULL, NULL);
        if (!sws)
            return rc_set_error("cannot resize %dx%d to %dx%d", in->width,
                                in->height, width, height);
        /* swscale's SIMD paths read and write whole aligned blocks: give
         * them padded rows, then compact. */
        int sstride = (in->width * c + 63) & ~63;
        int dstride = (width * c + 63) & ~63;
        uint8_t *src = rc_xcalloc((size_t)sstride * in->height + 64, 1);
        uint8_t *dst = rc_xcalloc((size_t)dstride * height + 64, 1);
        for (int y = 0; y < in->height; y++)
            memcpy(src + (size_t)y * sstride,
                   in->pixels + (size_t)y * in->width * c,
                   (size_t)in->width * c);
        const uint8_t *sp[4] = {src, NULL, NULL, NULL};
        uint8_t *dp[4] = {dst, NULL, NULL, NULL};
        int ss[4] = {sstride, 0, 0, 0}, ds[4] = {dstride, 0, 0, 0};
        sws_scale(sws, sp, ss, 0, in->height, dp, ds);
        sws_freeContext(sws);
        scaled = rc_xmalloc((size_t)width * height * c);
        for (int y = 0; y < height; y++)
            memcpy(scaled + (size_t)y * width * c, dst + (size_t)y * dstride,
                   (size_t)width * c);
        free(src);
        free(dst);
    }
    out->width = width;
    out->height = height;
    out->channels = channels;
    size_t pixels = (size_t)width * height;
    if (channels == c) {
        out->pixels = scaled;
    } else if (channels == 1) {
        out->pixels = rc_xmalloc(pixels);
        rc_rgb_to_gray(scaled, pixels, out->pixels);
        free(scaled);
    } else {
        out->pixels = rc_xmalloc(pixels * 3);
        rc_gray_to_rgb(scaled, pixels, out->pixels);
        free(scaled);
    }
    return 0;
}

int rc_on_bad_parse(const char *s, rc_on_bad *out) {
    if (strcmp(s, "fail") == 0) {
        *out = RC_ON_BAD_FAIL;
        return 0;
    }
    if (strcmp(s, "skip") == 0) {
        *out = RC_ON_BAD_SKIP;
        return 0;
    }
    return rc_set_error("on_bad = '%s': expected fail or skip", s);
}
