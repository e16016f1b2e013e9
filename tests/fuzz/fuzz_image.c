/* fuzz_image: the JPEG (TurboJPEG) and PNG (libpng) decoders and the
 * resizer (libswscale) over arbitrary bytes. Bad input must be an error
 * naming the frame; a decoded image must have a sane size and fully
 * readable pixels, and resizing it must give exactly the requested size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_image(const rc_image *im, int channels) {
    if (im->width <= 0 || im->height <= 0 || im->channels != channels ||
        !im->pixels)
        abort();
    volatile unsigned sum = 0;
    size_t n = (size_t)im->width * im->height * channels;
    for (size_t i = 0; i < n; i++) sum += im->pixels[i]; /* in bounds? */
    rc_image small;
    memset(&small, 0, sizeof small);
    int w = 1 + im->width % 17, h = 1 + im->height % 13;
    if (rc_image_resize(im, w, h, 4 - channels, &small) == 0) {
        if (small.width != w || small.height != h || small.channels != 4 - channels)
            abort();
        rc_image_free(&small);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > 1 << 18) return 0;
    for (int channels = 1; channels <= 3; channels += 2) {
        rc_image im;
        memset(&im, 0, sizeof im);
        int ok = data[0] == 0x89 /* PNG signature */
                     ? rc_image_decode_png(data, size, channels, "fuzz frame", &im)
                     : rc_image_decode_jpeg(data, size, channels, "fuzz frame", &im);
        if (ok == 0) {
            /* only frames of at most 16 Mpixel reach training */
            if ((size_t)im.width * im.height <= (1u << 24)) check_image(&im, channels);
            rc_image_free(&im);
        } else if (!strstr(rc_last_error(), "fuzz frame")) {
            abort();
        }
    }
    return 0;
}
