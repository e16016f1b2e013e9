/* test_video_decode: JPEG and PNG frames and a video file decode to the
 * pixels that were written (PNG exactly, JPEG and MJPEG within codec error),
 * gray is BT.601 luminance, and DCT-domain scaling gives the requested size. */
#include "test_util.h"
#include "test_video_util.h"

#ifndef RC_HAVE_VIDEO
int main(void) { TEST_SKIP("built without video input (RC_HAVE_VIDEO)"); }
#else
#include "data/data_internal.h"

static void test_png_exact(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/a.png", dir);
    rc_image src = tv_frame(3, 37, 21, 3);
    CHECK(rc_image_save_png(path, &src) == 0);
    rc_image im;
    CHECK(rc_image_load(path, 3, &im) == 0);
    CHECK(im.width == 37 && im.height == 21 && im.channels == 3);
    CHECK(memcmp(im.pixels, src.pixels, 37 * 21 * 3) == 0);
    rc_image_free(&im);
    /* gray = (19595 R + 38470 G + 7471 B + 32768) >> 16, computed here */
    CHECK(rc_image_load(path, 1, &im) == 0);
    int bad = 0;
    for (int i = 0; i < 37 * 21; i++) {
        const uint8_t *p = src.pixels + 3 * i;
        int y = (19595 * p[0] + 38470 * p[1] + 7471 * p[2] + 32768) >> 16;
        bad += im.pixels[i] != y;
    }
    CHECK_MSG(bad == 0, "%d gray pixels differ from BT.601 luminance", bad);
    rc_image_free(&im);
    free(src.pixels);
}

static void test_jpeg_close(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/a.jpg", dir);
    rc_image src = tv_frame(5, 64, 48, 3);
    CHECK(rc_image_save_jpeg(path, &src, 95) == 0);
    rc_image im;
    CHECK(rc_image_load(path, 3, &im) == 0);
    CHECK(im.width == 64 && im.height == 48);
    double mad = tv_mad(im.pixels, src.pixels, 64 * 48 * 3);
    CHECK_MSG(mad < 3.0, "JPEG q95 mean abs error %.2f", mad);
    rc_image_free(&im);
    /* gray decode (JPEG's Y) vs luminance of the source */
    CHECK(rc_image_load(path, 1, &im) == 0);
    uint8_t *g = malloc(64 * 48);
    rc_rgb_to_gray(src.pixels, 64 * 48, g);
    mad = tv_mad(im.pixels, g, 64 * 48);
    CHECK_MSG(mad < 2.0, "gray JPEG mean abs error %.2f", mad);
    rc_image_free(&im);
    free(g);
    /* DCT-domain downscaling: the smallest scale keeping >= 30x20 of 64x48
     * is 1/2 (32x24); its pixels are close to an area average */
    uint8_t *data;
    size_t n;
    CHECK(rc_read_file(path, &data, &n) == 0);
    void *h = rc_jpeg_decoder_new();
    int fw = 0, fh = 0;
    CHECK(rc_jpeg_decode_with(h, data, n, 3, 30, 20, "a.jpg", &im, &fw,
                              &fh) == 0);
    CHECK(im.width == 32 && im.height == 24 && fw == 64 && fh == 48);
    rc_image area;
    CHECK(rc_image_resize(&src, 32, 24, 3, &area) == 0);
    mad = tv_mad(im.pixels, area.pixels, 32 * 24 * 3);
    CHECK_MSG(mad < 4.0, "DCT-scaled decode vs area average: %.2f", mad);
    rc_image_free(&area);
    rc_image_free(&im);
    rc_jpeg_decoder_free(h);
    free(data);
    free(src.pixels);
}

static void test_resize_area(void) {
    /* 2x downscale with area averaging = mean of each 2x2 block */
    rc_image src = tv_frame(0, 40, 30, 3), r;
    CHECK(rc_image_resize(&src, 20, 15, 3, &r) == 0);
    int worst = 0;
    for (int y = 0; y < 15; y++)
        for (int x = 0; x < 20; x++)
            for (int c = 0; c < 3; c++) {
                int s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        s += src.pixels[((2 * y + dy) * 40 + 2 * x + dx) * 3 + c];
                int d = abs(r.pixels[(y * 20 + x) * 3 + c] - (s + 2) / 4);
                if (d > worst) worst = d;
            }
    CHECK_MSG(worst <= 1, "area resize off by %d", worst);
    rc_image_free(&r);
    free(src.pixels);
}

static void test_video(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/clip.avi", dir);
    int rc = tv_write_video(path, 12, 48, 32);
    if (rc == 77) {
        fprintf(stderr, "note: no MJPEG encoder, video part skipped\n");
        return;
    }
    CHECK(rc == 0);
    rc_video *v = rc_video_open(path);
    CHECK_MSG(v != NULL, "%s", rc_last_error());
    if (!v) return;
    CHECK(rc_video_width(v) == 48 && rc_video_height(v) == 32);
    int frames = 0;
    double worst = 0;
    rc_image im;
    while ((rc = rc_video_read(v, &im)) == 1) {
        rc_image ref = tv_frame(frames, 48, 32, 3);
        double mad = tv_mad(im.pixels, ref.pixels, 48 * 32 * 3);
        if (mad > worst) worst = mad;
        /* and each frame is nearer its own reference than the next one */
        rc_image next = tv_frame(frames + 1, 48, 32, 3);
        CHECK(mad < tv_mad(im.pixels, next.pixels, 48 * 32 * 3));
        free(ref.pixels);
        free(next.pixels);
        rc_image_free(&im);
        frames++;
    }
    CHECK(rc == 0);
    CHECK_MSG(frames == 12, "decoded %d frames, wrote 12", frames);
    CHECK_MSG(worst < 6.0, "video frame mean abs error %.2f", worst);
    rc_video_close(v);
}

int main(void) {
    char *dir = tv_tmpdir();
    test_png_exact(dir);
    test_jpeg_close(dir);
    test_resize_area();
    test_video(dir);
    tv_rmrf(dir);
    free(dir);
    TEST_DONE();
}
#endif
