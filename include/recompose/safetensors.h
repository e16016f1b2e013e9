/* safetensors.h: reading and writing the safetensors format.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
 *  ..., "__metadata__": {"key": "string value", ...}}, then the data.
 * We write F32 (and I64 for integer state) tensors, in name order, and read
 * F32/F64/I64. Files are written atomically: temporary file in the same
 * directory, fsync, rename, fsync of the directory. A reader validates the
 * header strictly (offsets in range, contiguous, shapes matching sizes) and
 * names the file and tensor in any error.
 */
#ifndef RECOMPOSE_SAFETENSORS_H
#define RECOMPOSE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { RC_DT_F32 = 0, RC_DT_F64, RC_DT_I64 } rc_dtype;

typedef struct {
    const char *name;
    rc_dtype dtype;
    int ndim;              /* 0..4 */
    int64_t shape[4];
    const void *data;      /* numel * element size bytes, host memory */
} rc_st_tensor;

typedef struct {
    const char *key, *value;
} rc_st_meta;

/* Write atomically. Returns 0 or -1 (error names the path and the cause,
 * e.g. "no space left on device"). */
int rc_safetensors_write(const char *path, const rc_st_tensor *tensors, int n,
                         const rc_st_meta *meta, int n_meta);

typedef struct rc_st_file rc_st_file;

/* Read and validate a whole file. Returns NULL (error set) on failure.
 * Our writer stores a CRC32 of the file in the metadata entry "crc32"
 * (reserved: callers cannot pass it); when present it is verified, and a
 * mismatch is an error "PATH: checksum mismatch ...: the file is damaged". */
rc_st_file *rc_safetensors_read(const char *path);
/* Read and validate only the header (names, shapes, metadata) of a file,
 * without its data or checksum: tensors have data == NULL. For looking at
 * the metadata of many big files. */
rc_st_file *rc_safetensors_read_header(const char *path);
void rc_safetensors_close(rc_st_file *f);

int rc_safetensors_count(const rc_st_file *f);
/* i-th tensor (in file order); data points into the loaded file. */
const rc_st_tensor *rc_safetensors_get(const rc_st_file *f, int i);
const rc_st_tensor *rc_safetensors_find(const rc_st_file *f, const char *name);
/* Metadata value, or NULL. */
const char *rc_safetensors_meta(const rc_st_file *f, const char *key);
const char *rc_safetensors_path(const rc_st_file *f);

#ifdef __cplusplus
}
#endif
#endif
