/* sampler.c: recomposition tuples (SPEC section 3) and the batch plan.
 *
 * A tuple is six frame-index sequences over one clip. The plan turns B tuples
 * into the model's work list: the ordered frame pairs to encode, which pair
 * each step of each sequence reads, and the loss pairs between sequences.
 * Everything here is deterministic given the tuples, so the data of a step is
 * a pure function of (seed, step) as rng.h promises.
 */
#include "recompose/sampler.h"

#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"

const char *const rc_seq_kind_names[RC_SEQ_KINDS] = {
    "full", "skip", "loop", "ident", "rev", "short"};

const char *const rc_pair_kind_names[RC_PAIR_KINDS] = {
    "full_skip", "loop_ident", "full_rev", "full_ident", "full_short"};

const int rc_pair_kind_seqs[RC_PAIR_KINDS][2] = {
    {RC_SEQ_FULL, RC_SEQ_SKIP},  {RC_SEQ_LOOP, RC_SEQ_IDENT},
    {RC_SEQ_FULL, RC_SEQ_REV},   {RC_SEQ_FULL, RC_SEQ_IDENT},
    {RC_SEQ_FULL, RC_SEQ_SHORT}};

const int rc_pair_kind_positive[RC_PAIR_KINDS] = {1, 1, 0, 0, 0};

/* ---- tuples ------------------------------------------------------------- */

static void seq_push(rc_sequence *s, int frame) {
    s->frames[s->n_frames++] = frame;
}

/* f_from, f_from+step, ..., f_to (inclusive), appended. */
static void seq_push_run(rc_sequence *s, int from, int to) {
    int step = to >= from ? 1 : -1;
    for (int f = from; f != to + step; f += step) seq_push(s, f);
}

/* f_0, a sorted uniformly random k-subset of 1..T-1, f_T, where k is uniform
 * in 0..T-2 so that the subset is always proper (skip must skip something).
 * Drawing k first gives every subset size equal weight; a uniform subset
 * would almost always be about half full for larger T. The subset is drawn
 * by selection sampling (Knuth's algorithm S), which emits it in order. */
static void sample_skip(int T, rc_rng *rng, rc_sequence *s) {
    int k = rc_rng_int(rng, T - 1);
    int needed = k;
    seq_push(s, 0);
    for (int f = 1; f <= T - 1 && needed > 0; f++) {
        int remaining = T - f; /* candidates f..T-1 */
        if (rc_rng_int(rng, remaining) < needed) {
            seq_push(s, f);
            needed--;
        }
    }
    seq_push(s, T);
}

void rc_sample_tuple(int T, rc_rng *rng, rc_tuple *out) {
    memset(out, 0, sizeof *out);
    if (T < 2 || T > RC_MAX_T) {
        /* Leave every sequence empty: rc_plan_build rejects them, so a bad T
         * surfaces as an error there instead of as out-of-range frames. */
        rc_set_error("rc_sample_tuple: clip_steps T=%d is outside 2..%d; "
                     "set data.clip_steps in that range",
                     T, RC_MAX_T);
        return;
    }
    seq_push_run(&out->seq[RC_SEQ_FULL], 0, T);

    sample_skip(T, rng, &out->seq[RC_SEQ_SKIP]);

    int m = 1 + rc_rng_int(rng, T);
    seq_push_run(&out->seq[RC_SEQ_LOOP], 0, m);
    seq_push_run(&out->seq[RC_SEQ_LOOP], m - 1, 0);

    m = rc_rng_int(rng, T + 1);
    seq_push(&out->seq[RC_SEQ_IDENT], m);
    seq_push(&out->seq[RC_SEQ_IDENT], m);

    seq_push_run(&out->seq[RC_SEQ_REV], T, 0);

    m = 1 + rc_rng_int(rng, T - 1);
    seq_push_run(&out->seq[RC_SEQ_SHORT], 0, m);
}

void rc_loss_config_default(rc_loss_config *c) {
    c->margin = 1.0f;
    c->squared = 1;
    c->w_pos = 1.0f;
    c->w_neg = 1.0f;
    for (int k = 0; k < RC_PAIR_KINDS; k++) c->w_kind[k] = 1.0f;
}

/* ---- plan --------------------------------------------------------------- */

static int validate_tuples(const rc_tuple *tuples, int B, int T) {
    if (B < 1)
        return rc_set_error("rc_plan_build: batch of %d tuples; need at least "
                            "1 (check train.batch)",
                            B);
    if (T < 2 || T > RC_MAX_T)
        return rc_set_error("rc_plan_build: clip_steps T=%d is outside 2..%d; "
                            "set data.clip_steps in that range",
                            T, RC_MAX_T);
    if (!tuples) return rc_set_error("rc_plan_build: tuples is NULL");
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < RC_SEQ_KINDS; k++) {
            const rc_sequence *s = &tuples[b].seq[k];
            if (s->n_frames < 2 || s->n_frames > RC_MAX_SEQ_FRAMES)
                return rc_set_error(
                    "rc_plan_build: tuple %d sequence '%s' has %d frames; "
                    "need 2..%d (was the tuple drawn with rc_sample_tuple "
                    "for the same T?)",
                    b, rc_seq_kind_names[k], s->n_frames, RC_MAX_SEQ_FRAMES);
            for (int f = 0; f < s->n_frames; f++)
                if (s->frames[f] < 0 || s->frames[f] > T)
                    return rc_set_error(
                        "rc_plan_build: tuple %d sequence '%s' frame %d is "
                        "f_%d, outside the clip f_0..f_%d",
                        b, rc_seq_kind_names[k], f, s->frames[f], T);
        }
    }
    return 0;
}

static int add_pair(rc_batch_plan *p, int clip, int i, int j) {
    int n = p->n_pairs++;
    p->pair_clip[n] = clip;
    p->pair_i[n] = i;
    p->pair_j[n] = j;
    return n;
}

/* Fill seq_len/seq_pair and the pair list. With dedup, `seen` maps (i, j) of
 * the current clip to its pair index; pairs of different clips never
 * coincide, so the table is reset per tuple and the numbering is the order
 * of first appearance. */
static void plan_pairs(rc_batch_plan *p, const rc_tuple *tuples, int dedup) {
    int side = p->T + 1;
    int *seen = rc_xmalloc(sizeof(int) * (size_t)side * (size_t)side);
    for (int b = 0; b < p->B; b++) {
        for (int i = 0; i < side * side; i++) seen[i] = -1;
        for (int k = 0; k < RC_SEQ_KINDS; k++) {
            const rc_sequence *s = &tuples[b].seq[k];
            int row = b * RC_SEQ_KINDS + k;
            int *steps = p->seq_pair + (size_t)row * (size_t)p->max_steps;
            p->seq_len[row] = s->n_frames - 1;
            for (int t = 0; t + 1 < s->n_frames; t++) {
                int i = s->frames[t], j = s->frames[t + 1];
                int *slot = &seen[i * side + j];
                if (!dedup) {
                    steps[t] = add_pair(p, b, i, j);
                } else {
                    if (*slot < 0) *slot = add_pair(p, b, i, j);
                    steps[t] = *slot;
                }
            }
        }
    }
    free(seen);
}

static void plan_loss_pairs(rc_batch_plan *p, const rc_loss_config *loss) {
    for (int b = 0; b < p->B; b++) {
        for (int k = 0; k < RC_PAIR_KINDS; k++) {
            int n = b * RC_PAIR_KINDS + k;
            int positive = rc_pair_kind_positive[k];
            rc_loss_pair *lp = &p->loss_pairs[n];
            lp->a = b * RC_SEQ_KINDS + rc_pair_kind_seqs[k][0];
            lp->b = b * RC_SEQ_KINDS + rc_pair_kind_seqs[k][1];
            lp->positive = positive;
            lp->weight = (positive ? loss->w_pos : loss->w_neg) * loss->w_kind[k];
            p->loss_pair_kind[n] = k;
        }
    }
}

int rc_plan_build(rc_batch_plan *plan, const rc_tuple *tuples, int B, int T,
                  const rc_loss_config *loss, int dedup) {
    memset(plan, 0, sizeof *plan);
    if (validate_tuples(tuples, B, T)) return -1;
    rc_loss_config defaults;
    if (!loss) {
        rc_loss_config_default(&defaults);
        loss = &defaults;
    }

    plan->B = B;
    plan->T = T;
    plan->n_seq = B * RC_SEQ_KINDS;
    size_t total_steps = 0;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < RC_SEQ_KINDS; k++) {
            int len = tuples[b].seq[k].n_frames - 1;
            total_steps += (size_t)len;
            if (len > plan->max_steps) plan->max_steps = len;
        }

    /* Without dedup there is one pair per step: that bounds both modes. */
    plan->pair_clip = rc_xmalloc(sizeof(int) * total_steps);
    plan->pair_i = rc_xmalloc(sizeof(int) * total_steps);
    plan->pair_j = rc_xmalloc(sizeof(int) * total_steps);
    plan->seq_len = rc_xmalloc(sizeof(int) * (size_t)plan->n_seq);
    size_t grid = (size_t)plan->n_seq * (size_t)plan->max_steps;
    plan->seq_pair = rc_xmalloc(sizeof(int) * grid);
    for (size_t i = 0; i < grid; i++) plan->seq_pair[i] = -1;
    plan_pairs(plan, tuples, dedup);

    plan->n_loss_pairs = B * RC_PAIR_KINDS;
    plan->loss_pairs =
        rc_xmalloc(sizeof(rc_loss_pair) * (size_t)plan->n_loss_pairs);
    plan->loss_pair_kind = rc_xmalloc(sizeof(int) * (size_t)plan->n_loss_pairs);
    plan_loss_pairs(plan, loss);
    return 0;
}

void rc_plan_loss_by_kind(const rc_batch_plan *plan, const float *emb,
                          int dim, const rc_loss_config *loss,
                          double out[RC_PAIR_KINDS]) {
    rc_loss_pair *pairs = rc_xmalloc((size_t)plan->n_loss_pairs * sizeof *pairs);
    rc_hinge_params hp = {loss->margin, loss->squared, 1.0 / plan->B};
    for (int kind = 0; kind < RC_PAIR_KINDS; kind++) {
        int n = 0;
        for (int i = 0; i < plan->n_loss_pairs; i++)
            if (plan->loss_pair_kind[i] == kind) pairs[n++] = plan->loss_pairs[i];
        out[kind] = n ? rc_hinge_loss_f32(plan->n_seq, dim, emb, n, pairs, &hp,
                                          NULL)
                      : 0.0;
    }
    free(pairs);
}

void rc_plan_free(rc_batch_plan *plan) {
    if (!plan) return;
    free(plan->pair_clip);
    free(plan->pair_i);
    free(plan->pair_j);
    free(plan->seq_len);
    free(plan->seq_pair);
    free(plan->loss_pairs);
    free(plan->loss_pair_kind);
    memset(plan, 0, sizeof *plan);
}
