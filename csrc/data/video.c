/* video.c: decoding video files with FFmpeg (libavformat + libavcodec),
 * frames converted to RGB24 with libswscale. */
#include "recompose/common.h"
#include "recompose/video.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdlib.h>
#include <string.h>

struct rc_video {
    char *path;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int stream;
    int draining;   /* end of file reached, flushing the decoder */
    int finished;
    long frames;    /* frames returned so far */
};

static const char *av_err(int e, char *buf, size_t n) {
    av_strerror(e, buf, n);
    return buf;
}

void rc_video_close(rc_video *v) {
    if (!v) return;
    sws_freeContext(v->sws);
    av_frame_free(&v->frame);
    av_packet_free(&v->pkt);
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
    free(v->path);
    free(v);
}

rc_video *rc_video_open(const char *path) {
    char eb[128];
    /* FFmpeg's own log would interleave with our progress bar; our errors
     * carry the path and the reason instead. */
    av_log_set_level(AV_LOG_FATAL);
    rc_video *v = rc_xcalloc(1, sizeof *v);
    v->path = strdup(path);
    int e = avformat_open_input(&v->fmt, path, NULL, NULL);
    if (e < 0) {
        rc_set_error("%s: cannot open video: %s", path, av_err(e, eb, sizeof eb));
        rc_video_close(v);
        return NULL;
    }
    e = avformat_find_stream_info(v->fmt, NULL);
    if (e < 0) {
        rc_set_error("%s: unreadable video: %s", path, av_err(e, eb, sizeof eb));
        rc_video_close(v);
        return NULL;
    }
    const AVCodec *codec = NULL;
    v->stream = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (v->stream < 0 || !codec) {
        rc_set_error("%s: no decodable video stream", path);
        rc_video_close(v);
        return NULL;
    }
    v->dec = avcodec_alloc_context3(codec);
    avcodec_parameters_to_context(v->dec, v->fmt->streams[v->stream]->codecpar);
    v->dec->thread_count = 1; /* packing parallelises over files, not frames */
    e = avcodec_open2(v->dec, codec, NULL);
    if (e < 0 || v->dec->width <= 0 || v->dec->height <= 0) {
        rc_set_error("%s: cannot open the %s decoder: %s", path, codec->name,
                     e < 0 ? av_err(e, eb, sizeof eb) : "no frame size");
        rc_video_close(v);
        return NULL;
    }
    v->pkt = av_packet_alloc();
    v->frame = av_frame_alloc();
    return v;
}

int rc_video_width(const rc_video *v) { return v->dec->width; }
int rc_video_height(const rc_video *v) { return v->dec->height; }

static int convert_frame(rc_video *v, rc_image *out) {
    AVFrame *f = v->frame;
    if (f->width <= 0 || f->height <= 0 || f->width > 16384 || f->height > 16384)
        return rc_set_error("%s: frame %ld has size %dx%d", v->path, v->frames,
                            f->width, f->height);
    v->sws = sws_getCachedContext(v->sws, f->width, f->height, f->format,
                                  f->width, f->height, AV_PIX_FMT_RGB24,
                                  SWS_BILINEAR, NULL, NULL, NULL);
    if (!v->sws)
        return rc_set_error("%s: frame %ld: cannot convert pixel format %d",
                            v->path, v->frames, f->format);
    int stride = (f->width * 3 + 63) & ~63;
    uint8_t *buf = rc_xcalloc((size_t)stride * f->height + 64, 1);
    uint8_t *dst[4] = {buf, NULL, NULL, NULL};
    int ds[4] = {stride, 0, 0, 0};
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0,
              f->height, dst, ds);
    out->width = f->width;
    out->height = f->height;
    out->channels = 3;
    out->pixels = rc_xmalloc((size_t)f->width * f->height * 3);
    for (int y = 0; y < f->height; y++)
        memcpy(out->pixels + (size_t)y * f->width * 3, buf + (size_t)y * stride,
               (size_t)f->width * 3);
    free(buf);
    v->frames++;
    return 1;
}

int rc_video_read(rc_video *v, rc_image *out) {
    char eb[128];
    memset(out, 0, sizeof *out);
    while (!v->finished) {
        int e = avcodec_receive_frame(v->dec, v->frame);
        if (e == 0) {
            int rc = convert_frame(v, out);
            av_frame_unref(v->frame);
            return rc;
        }
        if (e == AVERROR_EOF) {
            v->finished = 1;
            break;
        }
        if (e != AVERROR(EAGAIN))
            return rc_set_error("%s: frame %ld: decode error: %s", v->path,
                                v->frames, av_err(e, eb, sizeof eb));
        if (v->draining)
            return rc_set_error("%s: decoder stalled after frame %ld", v->path,
                                v->frames);
        /* the decoder wants input */
        e = av_read_frame(v->fmt, v->pkt);
        if (e == AVERROR_EOF) {
            v->draining = 1;
            avcodec_send_packet(v->dec, NULL);
            continue;
        }
        if (e < 0)
            return rc_set_error("%s: read error after frame %ld: %s", v->path,
                                v->frames, av_err(e, eb, sizeof eb));
        if (v->pkt->stream_index == v->stream) {
            e = avcodec_send_packet(v->dec, v->pkt);
            av_packet_unref(v->pkt);
            if (e < 0 && e != AVERROR(EAGAIN))
                return rc_set_error("%s: frame %ld: corrupt packet: %s",
                                    v->path, v->frames, av_err(e, eb, sizeof eb));
        } else {
            av_packet_unref(v->pkt);
        }
    }
    return 0;
}
