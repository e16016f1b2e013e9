/* video.h: real video input (frame folders, video files, packed shards) and
 * the clip loader that feeds training from them.
 *
 * Pipeline:  sources --(rc_pack / `recompose pack`)--> shard files
 *            shard files --(rc_dataset_open, mmap)--> rc_loader --> batches
 *
 * Sources are a video file (FFmpeg), a folder of numbered JPEG or PNG frames
 * (TurboJPEG, libpng), a manifest file listing such paths, or a directory in
 * which they are discovered. Each source (or each segment of it, see
 * rc_pack_options.segment_frames) is one *sequence*; the train/validation
 * split is decided per sequence by a hash of its name, never per frame.
 *
 * Bad input never crashes and never silently poisons training. Under
 * RC_ON_BAD_FAIL the first bad item stops with an error naming the file and
 * frame; under RC_ON_BAD_SKIP bad items are counted and listed (per epoch by
 * the loader, at the end by the packer) and sampling moves on.
 *
 * Only compiled when the build found TurboJPEG, libpng and FFmpeg
 * (RC_HAVE_VIDEO is then defined on recompose_core and its users).
 */
#ifndef RECOMPOSE_VIDEO_H
#define RECOMPOSE_VIDEO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "recompose/ops.h" /* enum rc_emb_map: the twin maps */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { RC_ON_BAD_FAIL = 0, RC_ON_BAD_SKIP = 1 } rc_on_bad;
/* "fail" or "skip". Returns 0, or -1 with an error listing the choices. */
int rc_on_bad_parse(const char *s, rc_on_bad *out);

/* ---- Images: 8-bit interleaved pixels, rows top to bottom -------------- */
typedef struct {
    int width, height, channels; /* channels 1 (gray) or 3 (RGB) */
    uint8_t *pixels;             /* [height][width][channels], malloc'd */
} rc_image;

void rc_image_free(rc_image *im);
/* Decode a JPEG held in memory into `channels` (1 = luminance, 3 = RGB).
 * A corrupt or truncated stream (any libjpeg warning included) is an error
 * naming `what`. */
int rc_image_decode_jpeg(const uint8_t *data, size_t n, int channels,
                         const char *what, rc_image *out);
int rc_image_decode_png(const uint8_t *data, size_t n, int channels,
                        const char *what, rc_image *out);
/* Load a JPEG or PNG file (recognised by its signature). */
int rc_image_load(const char *path, int channels, rc_image *out);
/* Encode to a malloc'd JPEG (quality 1..100). */
int rc_image_encode_jpeg(const rc_image *im, int quality, uint8_t **data,
                         size_t *n);
int rc_image_save_jpeg(const char *path, const rc_image *im, int quality);
int rc_image_save_png(const char *path, const rc_image *im);
/* Resize with area averaging (libswscale) to width x height and convert to
 * `channels` (gray = BT.601 luminance, as JPEG's Y). out is allocated. */
int rc_image_resize(const rc_image *in, int width, int height, int channels,
                    rc_image *out);

/* ---- Video files (FFmpeg) ------------------------------------------------ */
typedef struct rc_video rc_video;
/* Open the first video stream of a file. An empty or unreadable file, or one
 * without a decodable video stream, is an error naming the path. */
rc_video *rc_video_open(const char *path);
/* Next frame as RGB at the native size. Returns 1 (frame), 0 (end of
 * stream) or -1 (decode error naming the path and frame number). */
int rc_video_read(rc_video *v, rc_image *frame);
int rc_video_width(const rc_video *v);
int rc_video_height(const rc_video *v);
void rc_video_close(rc_video *v);

/* ---- Sources --------------------------------------------------------------- */
typedef enum { RC_SOURCE_FRAMES = 0, RC_SOURCE_VIDEO = 1 } rc_source_kind;

typedef struct {
    rc_source_kind kind;
    char *path;      /* folder or video file */
    char *name;      /* sequence name: the path as given / relative to root */
    int n_files;     /* frame folders: image files sorted by frame number */
    char **files;
    long *numbers;   /* the frame number parsed from each file name */
} rc_source;

typedef struct {
    int n, cap;
    rc_source *items;
} rc_source_list;

/* Add what `arg` names: a video file (.avi .mp4 .mkv .mov .webm .mpg), a
 * folder of numbered frames, a manifest (any other regular file), or a
 * directory searched recursively for frame folders and video files (sorted,
 * so the result does not depend on directory order). */
int rc_sources_add(rc_source_list *l, const char *arg);
void rc_sources_free(rc_source_list *l);

/* Manifest: UTF-8 text, one path per line (relative paths are relative to
 * the manifest's folder), '#' starts a comment, blank lines ignored,
 * surrounding whitespace trimmed. */
typedef struct {
    int n;
    char **paths;   /* as written (trimmed) */
    int *lines;     /* 1-based line of each path */
} rc_manifest;
/* Parse manifest text; `origin` names it in errors ("ORIGIN:LINE: ...").
 * Refuses NUL bytes, control characters and lines over 4096 bytes. */
int rc_manifest_parse(const char *text, size_t len, const char *origin,
                      rc_manifest *out);
void rc_manifest_free(rc_manifest *m);

/* ---- Shards (format: docs/shards.md) ------------------------------------- */
enum { RC_SHARD_RAW = 0, RC_SHARD_JPEG = 1 };

typedef struct rc_shard_writer rc_shard_writer;
/* Writes to PATH.tmp and renames to PATH on close (fsync'd). */
rc_shard_writer *rc_shard_writer_open(const char *path, int encoding);
/* Start a sequence of frames of one size and channel count. */
int rc_shard_writer_begin(rc_shard_writer *w, const char *name, int width,
                          int height, int channels);
/* Append one record (encoded frame) to the current sequence. */
int rc_shard_writer_add(rc_shard_writer *w, const uint8_t *data, size_t n,
                        int64_t frame_number);
uint64_t rc_shard_writer_bytes(const rc_shard_writer *w);
int rc_shard_writer_close(rc_shard_writer *w);
void rc_shard_writer_abort(rc_shard_writer *w);

typedef struct {
    const char *name;
    int width, height, channels;
    uint32_t first_record, n_records;
} rc_shard_sequence;

typedef struct {
    uint32_t sequence;
    int64_t frame_number;   /* the frame's number in its source */
    uint64_t offset;        /* byte offset in the shard */
    uint32_t size, crc32;
} rc_shard_record;

typedef struct rc_shard rc_shard;
/* mmap and validate header and index (a truncated file, bad magic or an
 * index that points outside the file is an error naming the path). Record
 * payload checksums are checked on access by rc_shard_payload. */
rc_shard *rc_shard_open(const char *path);
/* The same over a caller-owned buffer (fuzzing, tests). */
rc_shard *rc_shard_open_memory(const uint8_t *data, size_t n,
                               const char *name);
void rc_shard_close(rc_shard *s);
int rc_shard_encoding(const rc_shard *s);
uint32_t rc_shard_n_sequences(const rc_shard *s);
uint32_t rc_shard_n_records(const rc_shard *s);
const rc_shard_sequence *rc_shard_get_sequence(const rc_shard *s, uint32_t i);
const rc_shard_record *rc_shard_get_record(const rc_shard *s, uint32_t i);
/* Payload of record i after checking its CRC-32; -1 names shard, sequence
 * and frame on a mismatch. */
int rc_shard_payload(const rc_shard *s, uint32_t i, const uint8_t **data,
                     size_t *n);
/* Decode record i to 8-bit pixels with `channels`; for JPEG records the
 * decoder may downscale in the DCT domain by the largest factor that keeps
 * both sides >= min_w x min_h (0 = full size). */
int rc_shard_decode(const rc_shard *s, uint32_t i, int channels, int min_w,
                    int min_h, rc_image *out);

/* ---- Packing --------------------------------------------------------------- */
typedef struct {
    int size;            /* resize so the short side is `size`; 0 = keep */
    int channels;        /* 1 or 3 */
    int encoding;        /* RC_SHARD_JPEG or RC_SHARD_RAW */
    int quality;         /* JPEG quality, default 90 */
    int segment_frames;  /* cut sequences into segments of this many frames
                            (each its own sequence "NAME#k"); 0 = whole */
    uint64_t shard_bytes;/* start a new shard past this size (default 256 MiB) */
    rc_on_bad on_bad;
    int progress;        /* progress bar on stderr */
} rc_pack_options;

typedef struct {
    int sequences, shards;
    int64_t frames, bytes;
    int bad;             /* bad items skipped (on_bad = skip) */
} rc_pack_stats;

void rc_pack_options_default(rc_pack_options *o);
/* Pack sources into out_dir/shard-NNNNN.rcs. Under skip, a bad frame ends
 * the current segment (frames on both sides stay, never spliced together)
 * and is listed on stderr at the end. */
int rc_pack(const rc_source_list *sources, const char *out_dir,
            const rc_pack_options *o, rc_pack_stats *stats);
/* `recompose pack SOURCE... --out DIR [options]`; --help lists options. */
int rc_pack_main(int argc, char **argv);

/* ---- Dataset and split ----------------------------------------------------- */
typedef struct rc_dataset rc_dataset;
/* Open a shard file or every *.rcs file of a directory. Under skip an
 * unreadable or truncated shard is listed and left out; under fail it is an
 * error. A dataset with no sequence is an error. */
rc_dataset *rc_dataset_open(const char *path, rc_on_bad on_bad);
void rc_dataset_close(rc_dataset *d);
int rc_dataset_n_sequences(const rc_dataset *d);
const rc_shard_sequence *rc_dataset_sequence(const rc_dataset *d, int i,
                                             const rc_shard **shard);
/* Shards that could not be opened (skip mode), with their error. */
int rc_dataset_n_bad_shards(const rc_dataset *d);
const char *rc_dataset_bad_shard(const rc_dataset *d, int i);
/* 1 if the sequence belongs to validation: a hash of its name below
 * val_fraction. Independent of seed, order and the other sequences. */
int rc_sequence_is_validation(const char *name, double val_fraction);

/* ---- Loader ------------------------------------------------------------- */
typedef struct {
    int threads;         /* decode threads; 0 = one per core */
    int batch;           /* clips per batch B */
    int clip_steps;      /* T: a clip has T+1 frames */
    int frame_stride;    /* source frames between clip frames, >= 1 */
    int size;            /* output frames are size x size */
    int channels;        /* 1 luminance, 3 RGB */
    int resize;          /* the frame is scaled so its short side is `resize`
                            (>= size; 0 = size), then cropped to size x size */
    int random_crop;     /* 1 random crop, 0 centre crop */
    int flip;            /* 1 random horizontal flip (p = 0.5) */
    /* Symmetry twins (sampler.h): after the B clips, for each of the
     * n_twin_maps maps (enum rc_emb_map, not RC_MAP_NONE), B more clips,
     * clip B*(1+slot) + b being clip b mirrored or transposed. */
    int n_twin_maps;
    int twin_maps[4];
    /* 1: the batch is bytes, [B'][T+1][C][S][S] uint8 (a resampled value
     * rounded to the nearest byte), for a device that converts them (four
     * times fewer bytes to copy, no conversion on the decode threads);
     * 0: floats in [0, 1] (byte / 255 of the same values when no resampling
     * happens). */
    int u8;
    uint64_t seed;
    int ring;            /* batch buffers in flight, >= 1 (default 4) */
    rc_on_bad on_bad;
    int validation;      /* 0 train sequences, 1 validation sequences */
    double val_fraction; /* share of sequences held out, [0, 1) */
    /* Batch buffer allocator (e.g. cudaHostAlloc for pinned memory in a CUDA
     * build); NULL = aligned malloc. */
    void *(*alloc)(size_t bytes, void *ctx);
    void (*free)(void *p, void *ctx);
    void *alloc_ctx;
} rc_loader_options;

void rc_loader_options_default(rc_loader_options *o);

/* Where clip b of step `step` comes from, before any bad-record resampling:
 * attempt 0 is the first draw, attempt k the k-th replacement. */
typedef struct {
    int sequence;        /* dataset sequence index */
    int start;           /* first record within the sequence */
    int crop_x, crop_y;  /* crop origin in the resized frame */
    int resized_w, resized_h;
    int flip;
} rc_clip_draw;

typedef struct rc_loader rc_loader;
rc_loader *rc_loader_create(const rc_dataset *d, const rc_loader_options *o);
void rc_loader_destroy(rc_loader *l);
/* Values per batch: B * (1 + n_twin_maps) * (T+1) * C * S * S. */
size_t rc_loader_batch_floats(const rc_loader *l);
/* Bytes per batch: the values times 4, or times 1 with u8. */
size_t rc_loader_batch_bytes(const rc_loader *l);
/* The batch of `step`: [B'][T+1][C][S][S] floats in [0, 1] or bytes (B' = B times
 * 1 + n_twin_maps: the clips, then their twins), a pure function
 * of (dataset, options, seed, step), whatever the thread count, ring depth
 * or timing. The pointer stays valid until rc_loader_release(step). Steps
 * are expected in increasing order (the ring prefetches ahead); asking for
 * another step restarts the pipeline there. NULL on error (message set). */
const void *rc_loader_get_batch(rc_loader *l, int64_t step);
void rc_loader_release(rc_loader *l, int64_t step);
/* Convenience: get, copy to out, release. */
int rc_loader_copy_batch(rc_loader *l, int64_t step, void *out);
/* The draw of clip b of `step` at `attempt` (pure; for tests and logs). */
void rc_loader_draw(const rc_loader *l, int64_t step, int b, int attempt,
                    rc_clip_draw *out);
/* Steps per epoch: usable frames / (B * (T+1)), at least 1. */
int64_t rc_loader_epoch_steps(const rc_loader *l);
/* Bad records met so far (distinct), and since the last report. */
int rc_loader_bad_total(const rc_loader *l);
/* Print "N bad item(s) this epoch" and each item to out, then start a new
 * list. The loader also logs this itself when a step ends an epoch. */
int rc_loader_report_bad(rc_loader *l, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
