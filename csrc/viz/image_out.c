/* image_out.c: PNG output (libpng) and heat-map colouring. */
#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/viz.h"

int rc_png_write(const char *path, int width, int height, int channels,
                 const uint8_t *pixels) {
    if (width < 1 || height < 1 || (channels != 1 && channels != 3))
        return rc_set_error("%s: cannot write a %dx%dx%d image as PNG", path,
                            width, height, channels);
    FILE *f = fopen(path, "wb");
    if (!f) return rc_set_error("cannot create %s: %s", path, strerror(errno));
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return rc_set_error("%s: libpng could not start", path);
    }
    /* libpng reports errors by longjmp; nothing below allocates that the
     * jump could leak apart from what png_destroy_write_struct frees */
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return rc_set_error("%s: libpng failed writing the image", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 9);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(pixels +
                                             (size_t)y * width * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0)
        return rc_set_error("cannot write %s: %s", path, strerror(errno));
    return 0;
}

static uint8_t to_byte(float v) {
    if (!(v > 0)) return 0;   /* also NaN */
    if (v >= 1) return 255;
    return (uint8_t)(v * 255.0f + 0.5f);
}

void rc_heat_color(float t, uint8_t rgb[3]) {
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    /* matplotlib's "hot": red rises over [0, 3/8], green over [3/8, 3/4],
     * blue over [3/4, 1] */
    rgb[0] = to_byte(t / 0.375f);
    rgb[1] = to_byte((t - 0.375f) / 0.375f);
    rgb[2] = to_byte((t - 0.75f) / 0.25f);
}

void rc_heat_overlay(int S, int C, const float *frame, const float *heat,
                     float heat_max, uint8_t *out) {
    size_t plane = (size_t)S * S;
    for (size_t p = 0; p < plane; p++) {
        float h = heat_max > 0 ? heat[p] / heat_max : 0;
        if (!(h > 0)) h = 0;
        if (h > 1) h = 1;
        uint8_t hot[3];
        rc_heat_color(h, hot);
        float a = 0.75f * h;
        for (int c = 0; c < 3; c++) {
            float base = frame[(C == 3 ? (size_t)c : 0) * plane + p];
            float v = (1 - a) * base + a * (hot[c] / 255.0f);
            out[p * 3 + c] = to_byte(v);
        }
    }
}
