/* data_internal.h: helpers shared by the files of csrc/data/ (not a public
 * contract: the loader, packer and shard code use them with each other). */
#ifndef RECOMPOSE_DATA_INTERNAL_H
#define RECOMPOSE_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "recompose/video.h"


/* BT.601 luminance of interleaved RGB, exactly libjpeg's Y (so a gray JPEG
 * decode and an RGB decode converted here agree up to codec error). */
void rc_rgb_to_gray(const uint8_t *rgb, size_t pixels, uint8_t *gray);
void rc_gray_to_rgb(const uint8_t *gray, size_t pixels, uint8_t *rgb);

/* JPEG decoding with a caller-owned TurboJPEG handle (one per thread).
 * min_w/min_h > 0: decode at the smallest DCT scale keeping both sides at
 * least that large. */
int rc_jpeg_decode_with(void *tjhandle, const uint8_t *data, size_t n,
                        int channels, int min_w, int min_h, const char *what,
                        rc_image *out, int *full_w, int *full_h);
void *rc_jpeg_decoder_new(void);
void rc_jpeg_decoder_free(void *tjhandle);

/* Read a whole file (malloc'd). */
int rc_read_file(const char *path, uint8_t **data, size_t *n);

/* Little-endian integer packing for the shard format. */
static inline void rc_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rc_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t rc_get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline uint64_t rc_get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Decode shard record i with a caller-owned JPEG handle (NULL for raw). */
int rc_shard_decode_with(void *tjhandle, const rc_shard *s, uint32_t i,
                         int channels, int min_w, int min_h, rc_image *out);
/* The same; check_crc = 0 skips the record's CRC, for a caller that has
 * checked this record of this (read-only, mapped) shard before. */
int rc_shard_decode_checked(void *tjhandle, const rc_shard *s, uint32_t i,
                            int channels, int min_w, int min_h, int check_crc,
                            rc_image *out);

#endif
