/* driver.c: runs a libFuzzer target without libFuzzer (for gcc-only
 * machines): replays every file of the given corpus folders, then N random
 * mutations of them (bit flips, byte changes, truncation, duplication).
 * usage: fuzz_x [-runs N] [-seed S] DIR...   (exit 0 = no crash) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    uint8_t *d;
    size_t n;
} blob;

static uint64_t rng_state = 88172645463325252ULL;
static uint64_t next_rand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int load(const char *path, blob *b) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    b->d = malloc((size_t)n + 1);
    b->n = fread(b->d, 1, (size_t)n, f);
    fclose(f);
    return 0;
}

static void run_copy(const uint8_t *d, size_t n) {
    /* an exact-size heap copy, so overreads hit the allocation's end */
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, d, n);
    LLVMFuzzerTestOneInput(c, n);
    free(c);
}

int main(int argc, char **argv) {
    long runs = 2000;
    blob *corpus = NULL;
    int nc = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-runs") && i + 1 < argc) { runs = atol(argv[++i]); continue; }
        if (!strcmp(argv[i], "-seed") && i + 1 < argc) { rng_state = strtoull(argv[++i], NULL, 10) | 1; continue; }
        DIR *dh = opendir(argv[i]);
        if (!dh) { fprintf(stderr, "%s: not a folder\n", argv[i]); return 2; }
        struct dirent *e;
        while ((e = readdir(dh)) != NULL) {
            if (e->d_name[0] == '.') continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            corpus = realloc(corpus, sizeof(blob) * (size_t)(nc + 1));
            if (load(p, &corpus[nc]) == 0) nc++;
        }
        closedir(dh);
    }
    if (nc == 0) { fprintf(stderr, "empty corpus\n"); return 2; }
    for (int i = 0; i < nc; i++) run_copy(corpus[i].d, corpus[i].n);
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    for (long r = 0; r < runs; r++) {
        blob *b = &corpus[next_rand() % (uint64_t)nc];
        size_t n = b->n < cap ? b->n : cap;
        memcpy(buf, b->d, n);
        int edits = 1 + (int)(next_rand() % 8);
        for (int k = 0; k < edits && n > 0; k++) {
            size_t at = next_rand() % n;
            switch (next_rand() % 5) {
            case 0: buf[at] ^= (uint8_t)(1u << (next_rand() % 8)); break;
            case 1: buf[at] = (uint8_t)next_rand(); break;
            case 2: n = at; break;                          /* truncate */
            case 3: buf[at] = (uint8_t)(next_rand() % 2 ? 0 : 0xff); break;
            default:                                         /* duplicate a span */
                if (n < cap / 2) { size_t len = next_rand() % (n - at) + 1; memmove(buf + at + len, buf + at, n - at); n += len; }
            }
        }
        run_copy(buf, n);
    }
    printf("replayed %d corpus files and %ld mutations\n", nc, runs);
    free(buf);
    for (int i = 0; i < nc; i++) free(corpus[i].d);
    free(corpus);
    return 0;
}
