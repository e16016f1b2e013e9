/* video_absent.c: rc_video_* in a build without FFmpeg (cmake/video.cmake
 * compiles it instead of video.c). Frame folders, packed shards and the
 * loader work as usual; a video file is an error that says how to get
 * video decoding. */
#include "recompose/common.h"
#include "recompose/video.h"

rc_video *rc_video_open(const char *path) {
    rc_set_error("%s: this build cannot decode video files (no FFmpeg); "
                 "install libavformat-dev libavcodec-dev (tools/install-deps.sh) "
                 "and rebuild, or give "
                 "a folder of frames", path);
    return NULL;
}

int rc_video_read(rc_video *v, rc_image *frame) {
    (void)v, (void)frame;
    return rc_set_error("no FFmpeg in this build");
}

int rc_video_width(const rc_video *v) {
    (void)v;
    return 0;
}

int rc_video_height(const rc_video *v) {
    (void)v;
    return 0;
}

void rc_video_close(rc_video *v) { (void)v; }
