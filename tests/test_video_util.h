/* test_video_util.h: test footage generated on the spot (no network):
 * smooth moving patterns written as PNG/JPEG frame folders (libpng,
 * TurboJPEG) and as an MJPEG AVI (libavcodec + libavformat). */
#ifndef RC_TEST_VIDEO_UTIL_H
#define RC_TEST_VIDEO_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/video.h"

#ifdef RC_HAVE_VIDEO
#ifdef RC_HAVE_FFMPEG
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#endif
#include <libswscale/swscale.h>

/* Pixel (x, y, channel c) of frame f: smooth, so JPEG keeps it well, and
 * moving by 2 px per frame, so frames differ. */
static inline uint8_t tv_pixel(int f, int x, int y, int c) {
    double v = 128 + 70 * sin(0.11 * (x - 2 * f) + 0.9 * c) +
               45 * cos(0.07 * y + 0.4 * c);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static inline rc_image tv_frame(int f, int w, int h, int channels) {
    rc_image im = {w, h, channels, malloc((size_t)w * h * channels)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < channels; c++)
                im.pixels[((size_t)y * w + x) * channels + c] =
                    tv_pixel(f, x, y, c);
    return im;
}

static inline char *tv_tmpdir(void) {
    char tmpl[] = "/tmp/rcvideo-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) {
        perror("mkdtemp");
        exit(1);
    }
    return strdup(d);
}

static inline void tv_rmrf(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* Frames first..first+n-1 into dir/frame_%04d.{png,jpg} (created). */
static inline int tv_write_folder(const char *dir, int first, int n, int w,
                                  int h, int png) {
    char path[700];
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    if (system(path) != 0) return -1;
    for (int f = first; f < first + n; f++) {
        rc_image im = tv_frame(f, w, h, 3);
        snprintf(path, sizeof path, "%s/frame_%04d.%s", dir, f,
                 png ? "png" : "jpg");
        int rc = png ? rc_image_save_png(path, &im)
                     : rc_image_save_jpeg(path, &im, 95);
        free(im.pixels);
        if (rc != 0) return -1;
    }
    return 0;
}

static inline void tv_write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* An MJPEG AVI of n frames (w, h even). Returns 0, or 77 when this FFmpeg
 * build has no MJPEG encoder or AVI muxer. */
static inline int tv_write_video(const char *path, int n, int w, int h) {
#ifndef RC_HAVE_FFMPEG
    (void)path, (void)n, (void)w, (void)h;
    return 77; /* no FFmpeg in this build: no video files */
#else
    av_log_set_level(AV_LOG_ERROR);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVFormatContext *oc = NULL;
    if (!codec || avformat_alloc_output_context2(&oc, NULL, "avi", path) < 0)
        return 77;
    AVStream *st = avformat_new_stream(oc, NULL);
    AVCodecContext *cc = avcodec_alloc_context3(codec);
    cc->width = w;
    cc->height = h;
    cc->time_base = (AVRational){1, 25};
    cc->pix_fmt = AV_PIX_FMT_YUVJ444P;
    cc->flags |= AV_CODEC_FLAG_QSCALE;
    cc->global_quality = FF_QP2LAMBDA * 1;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER)
        cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (avcodec_open2(cc, codec, NULL) < 0) {
        cc->pix_fmt = AV_PIX_FMT_YUVJ420P;
        if (avcodec_open2(cc, codec, NULL) < 0) return 77;
    }
    avcodec_parameters_from_context(st->codecpar, cc);
    st->time_base = cc->time_base;
    if (avio_open(&oc->pb, path, AVIO_FLAG_WRITE) < 0 ||
        avformat_write_header(oc, NULL) < 0)
        return -1;
    struct SwsContext *sws =
        sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, cc->pix_fmt,
                       SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                       NULL, NULL, NULL);
    AVFrame *fr = av_frame_alloc();
    fr->format = cc->pix_fmt;
    fr->width = w;
    fr->height = h;
    av_frame_get_buffer(fr, 0);
    AVPacket *pkt = av_packet_alloc();
    for (int f = 0; f <= n; f++) {
        if (f < n) {
            rc_image im = tv_frame(f, w, h, 3);
            const uint8_t *src[4] = {im.pixels, NULL, NULL, NULL};
            int ss[4] = {w * 3, 0, 0, 0};
            av_frame_make_writable(fr);
            sws_scale(sws, src, ss, 0, h, fr->data, fr->linesize);
            free(im.pixels);
            fr->pts = f;
            fr->quality = cc->global_quality;
            avcodec_send_frame(cc, fr);
        } else {
            avcodec_send_frame(cc, NULL);
        }
        while (avcodec_receive_packet(cc, pkt) == 0) {
            av_packet_rescale_ts(pkt, cc->time_base, st->time_base);
            pkt->stream_index = st->index;
            av_interleaved_write_frame(oc, pkt);
        }
    }
    av_write_trailer(oc);
    avio_closep(&oc->pb);
    av_packet_free(&pkt);
    av_frame_free(&fr);
    sws_freeContext(sws);
    avcodec_free_context(&cc);
    avformat_free_context(oc);
    return 0;
#endif
}

/* Mean absolute difference of two byte buffers. */
static inline double tv_mad(const uint8_t *a, const uint8_t *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs((double)a[i] - (double)b[i]);
    return s / (double)(n ? n : 1);
}
#endif /* RC_HAVE_VIDEO */
#endif
