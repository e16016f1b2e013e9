/* dataset.c: a set of shards opened for training, and the sequence split. */
#include "recompose/common.h"
#include "data/data_internal.h"
#include "recompose/rng.h"
#include "recompose/video.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    const rc_shard *shard;
    uint32_t index;
} seq_ref;

struct rc_dataset {
    rc_shard **shards;
    int n_shards;
    seq_ref *seqs;
    int n_seq;
    char **bad;
    int n_bad;
};

int rc_sequence_is_validation(const char *name, double val_fraction) {
    /* FNV-1a then splitmix: the split depends on the name alone */
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    double u = (double)(rc_hash64(h) >> 11) * (1.0 / 9007199254740992.0);
    return u < val_fraction;
}

void rc_dataset_close(rc_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n_shards; i++) rc_shard_close(d->shards[i]);
    for (int i = 0; i < d->n_bad; i++) free(d->bad[i]);
    free(d->shards);
    free(d->seqs);
    free(d->bad);
    free(d);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int add_shard(rc_dataset *d, const char *path, rc_on_bad on_bad) {
    rc_shard *s = rc_shard_open(path);
    if (!s) {
        if (on_bad == RC_ON_BAD_FAIL) return -1;
        const char *e = rc_last_error();
        size_t n = strlen(e) + 1;
        d->bad = realloc(d->bad, sizeof(char *) * (size_t)(d->n_bad + 1));
        if (!d->bad) {
            rc_log("out of memory");
            exit(2);
        }
        d->bad[d->n_bad] = rc_xmalloc(n);
        memcpy(d->bad[d->n_bad++], e, n);
        rc_log("skipping shard (data.on_bad = skip): %s", e);
        return 0;
    }
    d->shards = realloc(d->shards, sizeof(rc_shard *) * (size_t)(d->n_shards + 1));
    if (!d->shards) {
        rc_log("out of memory");
        exit(2);
    }
    d->shards[d->n_shards++] = s;
    return 0;
}

static int add_dir(rc_dataset *d, const char *dir, rc_on_bad on_bad) {
    DIR *dh = opendir(dir);
    if (!dh) return rc_set_error("%s: cannot open: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dh)) != NULL) {
        size_t k = strlen(e->d_name);
        if (k <= 4 || strcmp(e->d_name + k - 4, ".rcs") != 0) continue;
        names = realloc(names, sizeof(char *) * (size_t)(n + 1));
        if (!names) {
            rc_log("out of memory");
            exit(2);
        }
        names[n] = rc_xmalloc(strlen(dir) + k + 2);
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(dh);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    int rc = n == 0 ? rc_set_error("%s: no shards (*.rcs) here; create them "
                                   "with `recompose pack SOURCE --out %s`",
                                   dir, dir)
                    : 0;
    for (int i = 0; rc == 0 && i < n; i++) rc = add_shard(d, names[i], on_bad);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

rc_dataset *rc_dataset_open(const char *path, rc_on_bad on_bad) {
    rc_dataset *d = rc_xcalloc(1, sizeof *d);
    struct stat st;
    int rc;
    if (stat(path, &st) != 0)
        rc = rc_set_error("%s: %s (data path of packed shards)", path,
                          strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = add_dir(d, path, on_bad);
    else
        rc = add_shard(d, path, on_bad);
    if (rc != 0) {
        rc_dataset_close(d);
        return NULL;
    }
    for (int i = 0; i < d->n_shards; i++)
        d->n_seq += (int)rc_shard_n_sequences(d->shards[i]);
    d->seqs = rc_xcalloc((size_t)(d->n_seq ? d->n_seq : 1), sizeof *d->seqs);
    int k = 0;
    for (int i = 0; i < d->n_shards; i++)
        for (uint32_t j = 0; j < rc_shard_n_sequences(d->shards[i]); j++) {
            d->seqs[k].shard = d->shards[i];
            d->seqs[k++].index = j;
        }
    if (d->n_seq == 0) {
        rc_set_error("%s: no readable sequence in the shards%s", path,
                     d->n_bad ? " (every shard was bad, see above)" : "");
        rc_dataset_close(d);
        return NULL;
    }
    return d;
}

int rc_dataset_n_sequences(const rc_dataset *d) { return d->n_seq; }

const rc_shard_sequence *rc_dataset_sequence(const rc_dataset *d, int i,
                                             const rc_shard **shard) {
    if (i < 0 || i >= d->n_seq) return NULL;
    if (shard) *shard = d->seqs[i].shard;
    return rc_shard_get_sequence(d->seqs[i].shard, d->seqs[i].index);
}

int rc_dataset_n_bad_shards(const rc_dataset *d) { return d->n_bad; }
const char *rc_dataset_bad_shard(const rc_dataset *d, int i) {
    return i >= 0 && i < d->n_bad ? d->bad[i] : NULL;
}
