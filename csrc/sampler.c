/* sampler.c: recomposition tuples (SPEC section 3) and the batch plan.
 *
 * A tuple is six frame-index sequences over one clip. The plan turns B tuples
 * into the model's work list: the ordered frame pairs to encode, which pair
 * each step of each sequence reads, and the loss pairs between sequences.
 * Everything here is deterministic given the tuples, so the data of a step is
 * a pure function of (seed, step) as rng.h promises.
 */
#include "recompose/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"

const char *const rc_seq_kind_names[RC_SEQ_KINDS] = {
    "full", "skip", "loop", "ident", "rev", "short"};

const char *const rc_pair_kind_names[RC_PAIR_KINDS] = {
    "full_skip", "loop_ident", "full_rev", "full_ident", "full_short",
    "full_pan", "full_tex", "full_roll", "full_flip", "full_transpose"};

const int rc_pair_kind_seqs[RC_TUPLE_PAIR_KINDS][2] = {
    {RC_SEQ_FULL, RC_SEQ_SKIP},  {RC_SEQ_LOOP, RC_SEQ_IDENT},
    {RC_SEQ_FULL, RC_SEQ_REV},   {RC_SEQ_FULL, RC_SEQ_IDENT},
    {RC_SEQ_FULL, RC_SEQ_SHORT}};

const int rc_pair_kind_positive[RC_PAIR_KINDS] = {1, 1, 0, 0, 0,
                                                  0, 1, 0, 1, 1};
const int rc_pair_kind_map[RC_PAIR_KINDS] = {
    [RC_PAIR_FULL_FLIP] = RC_MAP_FLIP,
    [RC_PAIR_FULL_TRANSPOSE] = RC_MAP_TRANSPOSE};

const int rc_twin_pair_kind[RC_TWIN_KINDS] = {
    RC_PAIR_FULL_PAN, RC_PAIR_FULL_TEX, RC_PAIR_FULL_ROLL, RC_PAIR_FULL_FLIP,
    RC_PAIR_FULL_TRANSPOSE};
int rc_twin_symmetry(int twin_kind) {
    return rc_pair_kind_map[rc_twin_pair_kind[twin_kind]];
}

/* One loop for floats and bytes: a twin is pixels rearranged. */
#define TWIN_FRAMES(type)                                                       \
    do {                                                                        \
        size_t plane = (size_t)S * S;                                           \
        for (size_t p = 0; p < (size_t)n_frames * C; p++) {                     \
            const type *in = (const type *)src + p * plane;                     \
            type *out = (type *)dst + p * plane;                                \
            for (int y = 0; y < S; y++)                                         \
                for (int x = 0; x < S; x++)                                     \
                    out[(size_t)y * S + x] = symmetry == RC_MAP_FLIP            \
                                                 ? in[(size_t)y * S + (S - 1 - x)] \
                                                 : in[(size_t)x * S + y];       \
        }                                                                       \
    } while (0)

void rc_twin_frames(int symmetry, int n_frames, int C, int S,
                    const float *src, float *dst) {
    TWIN_FRAMES(float);
}

void rc_twin_frames_u8(int symmetry, int n_frames, int C, int S,
                       const void *src, void *dst) {
    TWIN_FRAMES(unsigned char);
}

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
    for (int k = 0; k < RC_PAIR_KINDS; k++)
        c->w_kind[k] = k < RC_TUPLE_PAIR_KINDS ? 1.0f : 0.0f;
    c->w_act = 0.0f;
    c->act_kind = RC_ACTION_AFFINE;
    c->act_grid = 4;
    c->act_init = 0.0f;
    c->act_scales = 3;
    c->act_border = 8;
}

int rc_loss_twins(const rc_loss_config *loss, int kinds[RC_TWIN_KINDS]) {
    int n = 0;
    for (int k = 0; k < RC_TWIN_KINDS; k++) {
        int pk = rc_twin_pair_kind[k];
        float w = rc_pair_kind_positive[pk] ? loss->w_pos : loss->w_neg;
        if (loss->w_kind[pk] > 0 && w > 0) kinds[n++] = k;
    }
    return n;
}

int rc_batch_clips(const rc_loss_config *loss, int B) {
    int kinds[RC_TWIN_KINDS];
    return B * (1 + rc_loss_twins(loss, kinds));
}

void rc_pan_velocity(uint64_t clip_key, float max, float *ux, float *uy) {
    rc_rng rng;
    rc_rng_seed(&rng, rc_hash_combine(clip_key, 0x70616e2d76656c6fULL /* "pan-velo" */));
    double a = rc_rng_range(&rng, 0.0, 6.283185307179586);
    double r = rc_rng_range(&rng, 0.5 * max, max);
    *ux = (float)(r * cos(a));
    *uy = (float)(r * sin(a));
}

float rc_roll_rate(uint64_t clip_key, float max) {
    rc_rng rng;
    rc_rng_seed(&rng, rc_hash_combine(clip_key, 0x726f6c6c2d726174ULL /* "roll-rat" */));
    double r = rc_rng_range(&rng, 0.5 * max, max);
    return (float)(rc_rng_int(&rng, 2) ? r : -r);
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
    /* twins: the full sequence of clip B*(1+slot) + b. (Its f_0, f_T alone
     * would be one pair and two frames, but measured worse: docs/RESULTS.md,
     * issue 13 log.) */
    for (int slot = 0; slot < p->n_twins; slot++)
        for (int b = 0; b < p->B; b++) {
            int row = p->B * RC_SEQ_KINDS + slot * p->B + b, clip = p->B * (1 + slot) + b;
            int *steps = p->seq_pair + (size_t)row * (size_t)p->max_steps;
            p->seq_len[row] = p->T;
            for (int t = 0; t < p->T; t++) steps[t] = add_pair(p, clip, t, t + 1);
        }
    free(seen);
}

static void set_loss_pair(rc_batch_plan *p, const rc_loss_config *loss, int n,
                          int kind, int a, int b) {
    int positive = rc_pair_kind_positive[kind];
    rc_loss_pair *lp = &p->loss_pairs[n];
    lp->a = a;
    lp->b = b;
    lp->positive = positive;
    lp->weight = (positive ? loss->w_pos : loss->w_neg) * loss->w_kind[kind];
    lp->map = rc_pair_kind_map[kind];
    p->loss_pair_kind[n] = kind;
}

static void plan_loss_pairs(rc_batch_plan *p, const rc_loss_config *loss) {
    for (int b = 0; b < p->B; b++)
        for (int k = 0; k < RC_TUPLE_PAIR_KINDS; k++)
            set_loss_pair(p, loss, b * RC_TUPLE_PAIR_KINDS + k, k,
                          b * RC_SEQ_KINDS + rc_pair_kind_seqs[k][0],
                          b * RC_SEQ_KINDS + rc_pair_kind_seqs[k][1]);
    for (int slot = 0; slot < p->n_twins; slot++)
        for (int b = 0; b < p->B; b++)
            set_loss_pair(p, loss, p->B * (RC_TUPLE_PAIR_KINDS + slot) + b,
                          rc_twin_pair_kind[p->twin_kind[slot]],
                          b * RC_SEQ_KINDS + RC_SEQ_FULL,
                          p->B * (RC_SEQ_KINDS + slot) + b);
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
    plan->n_twins = rc_loss_twins(loss, plan->twin_kind);
    plan->n_clips = B * (1 + plan->n_twins);
    int twins = plan->n_clips - B;
    plan->n_seq = B * RC_SEQ_KINDS + twins;
    size_t total_steps = (size_t)twins * (size_t)T;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < RC_SEQ_KINDS; k++) {
            int len = tuples[b].seq[k].n_frames - 1;
            total_steps += (size_t)len;
            if (len > plan->max_steps) plan->max_steps = len;
        }
    if (twins && plan->max_steps < T) plan->max_steps = T; /* twin rows */

    /* Without dedup there is one pair per step: that bounds both modes. */
    plan->pair_clip = rc_xmalloc(sizeof(int) * total_steps);
    plan->pair_i = rc_xmalloc(sizeof(int) * total_steps);
    plan->pair_j = rc_xmalloc(sizeof(int) * total_steps);
    plan->seq_len = rc_xmalloc(sizeof(int) * (size_t)plan->n_seq);
    size_t grid = (size_t)plan->n_seq * (size_t)plan->max_steps;
    plan->seq_pair = rc_xmalloc(sizeof(int) * grid);
    for (size_t i = 0; i < grid; i++) plan->seq_pair[i] = -1;
    plan_pairs(plan, tuples, dedup);

    plan->n_loss_pairs = B * RC_TUPLE_PAIR_KINDS + twins;
    plan->loss_pairs =
        rc_xmalloc(sizeof(rc_loss_pair) * (size_t)plan->n_loss_pairs);
    plan->loss_pair_kind = rc_xmalloc(sizeof(int) * (size_t)plan->n_loss_pairs);
    plan_loss_pairs(plan, loss);
    return 0;
}

void rc_plan_loss_by_kind(const rc_batch_plan *plan, const float *emb,
                          int dim, const rc_loss_config *loss,
                          double out[RC_PAIR_KINDS]) {
    /* every pair's term once, then per kind the sum in pair order times the
     * scale: what rc_hinge_loss gives over that kind's pairs alone */
    int n = plan->n_loss_pairs;
    double *terms = rc_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *terms);
    rc_hinge_params hp = {loss->margin, loss->squared, 1.0 / plan->B};
    rc_hinge_pair_losses_f32(plan->n_seq, dim, emb, n, plan->loss_pairs, &hp,
                             terms);
    double sum[RC_PAIR_KINDS] = {0};
    for (int i = 0; i < n; i++) sum[plan->loss_pair_kind[i]] += terms[i];
    for (int kind = 0; kind < RC_PAIR_KINDS; kind++) out[kind] = sum[kind] * hp.scale;
    free(terms);
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

void rc_loss_warp_shape(const rc_loss_config *loss, int C, int S, int n,
                        rc_warp_shape *out) {
    memset(out, 0, sizeof *out);
    out->n = n;
    out->C = C;
    out->S = S;
    out->n_scales = loss->act_scales;
    for (int k = 0; k < loss->act_scales && k < RC_WARP_MAX_SCALES; k++)
        out->scales[k] = 1 << k;
    out->border = loss->act_border;
    out->grid = loss->act_kind == RC_ACTION_GRID ? loss->act_grid : 0;
    out->moving = loss->act_moving;
    out->scale = n > 0 ? loss->w_act / n : 0.0;
}
