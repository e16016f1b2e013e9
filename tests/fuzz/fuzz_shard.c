/* fuzz_shard: the shard reader over arbitrary bytes. It must reject bad
 * input with an error, never read outside the buffer, leak or crash; what
 * it accepts must satisfy the index invariants checked here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"
#include "recompose/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_shard(const uint8_t *data, size_t size) {
    rc_shard *s = rc_shard_open_memory(data, size, "fuzz.rcs");
    if (!s) return;
    uint32_t ns = rc_shard_n_sequences(s), nr = rc_shard_n_records(s);
    uint32_t covered = 0;
    for (uint32_t i = 0; i < ns; i++) {
        const rc_shard_sequence *q = rc_shard_get_sequence(s, i);
        if (!q || q->first_record != covered || q->n_records == 0 ||
            strlen(q->name) == 0)
            abort(); /* the reader accepted an inconsistent index */
        covered += q->n_records;
    }
    if (covered != nr) abort();
    /* payload checks and a few decodes (TurboJPEG on whatever is there) */
    for (uint32_t i = 0; i < nr && i < 4; i++) {
        const uint8_t *p;
        size_t n;
        if (rc_shard_payload(s, i, &p, &n) != 0) continue;
        if (p < data || p + n > data + size) abort();
        rc_image im;
        if (rc_shard_decode(s, i, 1, 0, 0, &im) == 0) rc_image_free(&im);
    }
    rc_shard_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_shard(data, size);
    /* Mutations almost never keep the header and index CRC-32s right, which
     * would stop every input at the checksum: also parse a copy whose CRCs
     * are recomputed (docs/shards.md layout), to reach the index checks. */
    if (size < 64) return 0;
    uint8_t *c = malloc(size);
    memcpy(c, data, size);
    uint64_t ioff = rc_get_u64(c + 24);
    if (ioff >= 64 && ioff <= size) {
        rc_put_u64(c + 32, size - ioff);
        rc_put_u32(c + 40, rc_crc32(0, c + ioff, size - ioff));
    }
    rc_put_u32(c + 60, rc_crc32(0, c, 60));
    check_shard(c, size);
    free(c);
    return 0;
}
