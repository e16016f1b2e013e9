/* fuzz_config: the INI config parser (inih + the key table) and --set
 * overrides over arbitrary bytes. Bad input must be an error, never a
 * crash; an accepted config must validate or be refused cleanly, and its
 * canonical INI text (rc_config_to_ini) must load back to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"
#include "recompose/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* rc_config_load reads a path: one scratch file per process, in
 * $RC_FUZZ_TMP (a RAM disk where the smoke test finds one). */
static const char *scratch(const char *tag) {
    static char path[2][512];
    int k = tag[0] == 'r';
    if (!path[k][0])
        snprintf(path[k], sizeof path[k], "%s/rc_fuzz_config_%s.%ld.ini",
                 getenv("RC_FUZZ_TMP") ? getenv("RC_FUZZ_TMP") : "/tmp", tag,
                 (long)getpid());
    return path[k];
}

static int write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void check_round_trip(const rc_config *c) {
    char *ini = rc_config_to_ini(c);
    if (write_file(scratch("rt"), ini, strlen(ini)) != 0) abort();
    rc_config back;
    rc_config_default(&back);
    if (rc_config_load(&back, scratch("rt")) != 0) {
        fprintf(stderr, "canonical INI does not load back: %s\n%s",
                rc_last_error(), ini);
        abort();
    }
    char *again = rc_config_to_ini(&back);
    if (strcmp(ini, again)) {
        fprintf(stderr, "round trip changed the config:\n%s---\n%s", ini, again);
        abort();
    }
    free(again);
    free(ini);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    rc_config c;
    rc_config_default(&c);
    if (write_file(scratch("in"), data, size) != 0) abort();
    if (rc_config_load(&c, scratch("in")) == 0) {
        (void)rc_config_validate(&c);
        check_round_trip(&c);
    } else if (!strstr(rc_last_error(), scratch("in"))) {
        fprintf(stderr, "error does not name the file: %s\n", rc_last_error());
        abort();
    }
    /* the same bytes as one --set override */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    rc_config_default(&c);
    if (rc_config_set(&c, text) == 0) check_round_trip(&c);
    free(text);
    return 0;
}
