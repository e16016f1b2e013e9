/* fuzz_manifest: the manifest parser over arbitrary bytes. Accepted paths
 * are non-empty, trimmed, not comments, and on increasing lines. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rc_manifest m;
    if (rc_manifest_parse((const char *)data, size, "fuzz.txt", &m) != 0)
        return 0;
    int last = 0;
    for (int i = 0; i < m.n; i++) {
        const char *p = m.paths[i];
        size_t n = strlen(p);
        if (n == 0 || p[0] == '#' || isspace((unsigned char)p[0]) ||
            isspace((unsigned char)p[n - 1]) || m.lines[i] <= last)
            abort();
        last = m.lines[i];
    }
    rc_manifest_free(&m);
    return 0;
}
