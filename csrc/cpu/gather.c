/* gather.c: index moves between a batch's frames, its distinct pairs and its
 * sequences' steps. Deduplication lives here: a pair encoded once is read by
 * every step that uses it (gather) and receives the sum of their gradients
 * (scatter), which is exactly what encoding it once per use would give. */
#include <string.h>

#include "cpu/real.h"

void RC_FN(rc_gather_pairs)(int n_pairs, const int *pair_clip,
                            const int *pair_i, const int *pair_j,
                            int frames_per_clip, size_t frame_elems,
                            const real *frames, real *out) {
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < n_pairs; p++) {
        const real *clip = frames + (size_t)pair_clip[p] * frames_per_clip *
                                        frame_elems;
        real *dst = out + (size_t)p * 2 * frame_elems;
        memcpy(dst, clip + (size_t)pair_i[p] * frame_elems,
               frame_elems * sizeof(real));
        memcpy(dst + frame_elems, clip + (size_t)pair_j[p] * frame_elems,
               frame_elems * sizeof(real));
    }
}

void RC_FN(rc_gather_steps)(int n_seq, int max_steps, const int *seq_pair,
                            int dim, const real *feat, real *out) {
    for (int s = 0; s < n_seq; s++) {
        for (int t = 0; t < max_steps; t++) {
            int p = seq_pair[(size_t)s * max_steps + t];
            real *dst = out + ((size_t)s * max_steps + t) * dim;
            if (p < 0)
                memset(dst, 0, (size_t)dim * sizeof(real));
            else
                memcpy(dst, feat + (size_t)p * dim, (size_t)dim * sizeof(real));
        }
    }
}

void RC_FN(rc_scatter_steps)(int n_seq, int max_steps, const int *seq_pair,
                             int dim, const real *d_steps, int n_pairs,
                             real *d_feat) {
    /* Serial on purpose: the sum order over uses is fixed (sequence order,
     * then step order), so results are bitwise reproducible. The data is
     * small (sequences x steps x F). */
    memset(d_feat, 0, (size_t)n_pairs * dim * sizeof(real));
    for (int s = 0; s < n_seq; s++) {
        for (int t = 0; t < max_steps; t++) {
            int p = seq_pair[(size_t)s * max_steps + t];
            if (p < 0) continue;
            const real *src = d_steps + ((size_t)s * max_steps + t) * dim;
            real *dst = d_feat + (size_t)p * dim;
            for (int k = 0; k < dim; k++) dst[k] += src[k];
        }
    }
}
