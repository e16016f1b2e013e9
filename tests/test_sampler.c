/* test_sampler.c: recomposition tuples and the batch plan.
 *
 * Tuples are checked against the definitions of SPEC section 3; the plan is
 * checked against the tuples it was built from (every step reads the pair of
 * its two frames, no pair twice), and the mean number of distinct pairs per
 * tuple against an exact expectation computed here by enumerating every
 * possible tuple with its probability. */
#include <math.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/sampler.h"
#include "test_util.h"

static const int Ts[] = {2, 3, 4, 5, 8};
#define N_TS ((int)(sizeof Ts / sizeof Ts[0]))

/* ---- tuple shapes ------------------------------------------------------- */

static int is_run(const rc_sequence *s, int start, int from, int to) {
    int step = to >= from ? 1 : -1;
    for (int f = from, k = start; f != to + step; f += step, k++)
        if (s->frames[k] != f) return 0;
    return 1;
}

static void check_full_rev(const rc_tuple *t, int T) {
    CHECK(t->seq[RC_SEQ_FULL].n_frames == T + 1);
    CHECK(is_run(&t->seq[RC_SEQ_FULL], 0, 0, T));
    CHECK(t->seq[RC_SEQ_REV].n_frames == T + 1);
    for (int k = 0; k <= T; k++)
        CHECK(t->seq[RC_SEQ_REV].frames[k] == t->seq[RC_SEQ_FULL].frames[T - k]);
}

/* Returns the interior of skip as a bit mask over 1..T-1. */
static unsigned check_skip(const rc_sequence *s, int T) {
    int n = s->n_frames;
    CHECK(n >= 2 && n <= T);
    CHECK(s->frames[0] == 0);
    CHECK(s->frames[n - 1] == T);
    unsigned mask = 0;
    for (int k = 1; k < n; k++) CHECK(s->frames[k] > s->frames[k - 1]);
    for (int k = 1; k + 1 < n; k++) {
        CHECK(s->frames[k] >= 1 && s->frames[k] <= T - 1);
        mask |= 1u << s->frames[k];
    }
    unsigned everything = ((1u << T) - 1) & ~1u; /* bits 1..T-1 */
    CHECK_MSG(mask != everything, "skip skipped nothing at T=%d", T);
    return mask;
}

/* Returns m, the turning frame. */
static int check_loop(const rc_sequence *s, int T) {
    int n = s->n_frames;
    CHECK(n % 2 == 1 && n >= 3 && n <= 2 * T + 1);
    int m = (n - 1) / 2;
    CHECK(s->frames[0] == 0 && s->frames[n - 1] == 0);
    for (int k = 0; k < n; k++) CHECK(s->frames[k] == s->frames[n - 1 - k]);
    for (int k = 1; k <= m; k++) CHECK(s->frames[k] - s->frames[k - 1] == 1);
    for (int k = m + 1; k < n; k++) CHECK(s->frames[k] - s->frames[k - 1] == -1);
    return m;
}

static void test_tuples(void) {
    for (int ti = 0; ti < N_TS; ti++) {
        int T = Ts[ti];
        rc_rng rng;
        rc_rng_seed(&rng, 1000 + (uint64_t)T);
        int skip_sizes[RC_MAX_T] = {0}, loop_m[RC_MAX_T + 1] = {0};
        int ident_m[RC_MAX_T + 1] = {0}, short_m[RC_MAX_T + 1] = {0};
        static int subsets[1 << 8];
        memset(subsets, 0, sizeof subsets);
        int draws = 4000;
        for (int d = 0; d < draws; d++) {
            rc_tuple t;
            rc_sample_tuple(T, &rng, &t);
            check_full_rev(&t, T);
            unsigned mask = check_skip(&t.seq[RC_SEQ_SKIP], T);
            skip_sizes[t.seq[RC_SEQ_SKIP].n_frames - 2]++;
            if (T <= 8) subsets[mask]++;
            loop_m[check_loop(&t.seq[RC_SEQ_LOOP], T)]++;
            const rc_sequence *id = &t.seq[RC_SEQ_IDENT];
            CHECK(id->n_frames == 2 && id->frames[0] == id->frames[1]);
            CHECK(id->frames[0] >= 0 && id->frames[0] <= T);
            ident_m[id->frames[0]]++;
            const rc_sequence *sh = &t.seq[RC_SEQ_SHORT];
            int m = sh->n_frames - 1;
            CHECK(m >= 1 && m < T);
            CHECK(is_run(sh, 0, 0, m));
            short_m[m]++;
        }
        /* Every skip size 0..T-2 occurs, about equally often (k uniform). */
        for (int k = 0; k <= T - 2; k++) {
            double expect = (double)draws / (T - 1);
            CHECK_MSG(skip_sizes[k] > 0.8 * expect && skip_sizes[k] < 1.2 * expect,
                      "T=%d skip size %d drawn %d times, expected ~%.0f", T, k,
                      skip_sizes[k], expect);
        }
        /* Every proper subset of 1..T-1 occurs (T <= 5 keeps them frequent). */
        if (T <= 5)
            for (unsigned mask = 0; mask < (1u << T); mask++) {
                unsigned everything = ((1u << T) - 1) & ~1u;
                if ((mask & 1u) || mask == everything) continue;
                CHECK_MSG(subsets[mask] > 0, "T=%d skip subset %#x never drawn", T,
                          mask);
            }
        for (int m = 1; m <= T; m++) CHECK_MSG(loop_m[m] > 0, "loop m=%d", m);
        for (int m = 0; m <= T; m++) CHECK_MSG(ident_m[m] > 0, "ident m=%d", m);
        for (int m = 1; m < T; m++) CHECK_MSG(short_m[m] > 0, "short m=%d", m);
    }
}

static void test_determinism(void) {
    rc_rng a, b;
    rc_rng_seed(&a, 77);
    rc_rng_seed(&b, 77);
    for (int d = 0; d < 100; d++) {
        rc_tuple x, y;
        rc_sample_tuple(5, &a, &x);
        rc_sample_tuple(5, &b, &y);
        CHECK(memcmp(&x, &y, sizeof x) == 0);
    }
}

/* ---- plan --------------------------------------------------------------- */

static void draw_batch(rc_tuple *tuples, int B, int T, uint64_t seed) {
    rc_rng rng;
    rc_rng_seed(&rng, seed);
    for (int b = 0; b < B; b++) rc_sample_tuple(T, &rng, &tuples[b]);
}

/* Every step of every sequence reads the pair of its consecutive frames, of
 * its own clip; pair indices appear in first-use order (dedup) or one per
 * step in walking order (no dedup). Returns the total number of steps. */
static int check_steps(const rc_batch_plan *p, const rc_tuple *tuples, int dedup) {
    int next = 0, steps = 0;
    for (int b = 0; b < p->B; b++)
        for (int k = 0; k < RC_SEQ_KINDS; k++) {
            const rc_sequence *s = &tuples[b].seq[k];
            int row = b * RC_SEQ_KINDS + k;
            CHECK(p->seq_len[row] == s->n_frames - 1);
            const int *sp = p->seq_pair + (size_t)row * p->max_steps;
            for (int t = 0; t < p->max_steps; t++) {
                if (t >= s->n_frames - 1) {
                    CHECK(sp[t] == -1);
                    continue;
                }
                int q = sp[t];
                CHECK(q >= 0 && q < p->n_pairs);
                if (q < 0 || q >= p->n_pairs) continue;
                CHECK(p->pair_clip[q] == b);
                CHECK(p->pair_i[q] == s->frames[t]);
                CHECK(p->pair_j[q] == s->frames[t + 1]);
                if (dedup) {
                    CHECK(q <= next);
                    if (q == next) next++;
                } else {
                    CHECK(q == next);
                    next++;
                }
                steps++;
            }
        }
    CHECK(next == p->n_pairs);
    return steps;
}

static int max_len(const rc_tuple *tuples, int B) {
    int m = 0;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < RC_SEQ_KINDS; k++)
            if (tuples[b].seq[k].n_frames - 1 > m) m = tuples[b].seq[k].n_frames - 1;
    return m;
}

/* Distinct (i, j) over the steps of one tuple, by a plain presence table. */
static int distinct_pairs_of(const rc_tuple *t) {
    static char seen[RC_MAX_T + 1][RC_MAX_T + 1];
    memset(seen, 0, sizeof seen);
    int n = 0;
    for (int k = 0; k < RC_SEQ_KINDS; k++)
        for (int f = 0; f + 1 < t->seq[k].n_frames; f++) {
            char *c = &seen[t->seq[k].frames[f]][t->seq[k].frames[f + 1]];
            if (!*c) n++;
            *c = 1;
        }
    return n;
}

static void check_no_duplicates(const rc_batch_plan *p) {
    int side = p->T + 1;
    char *seen = calloc((size_t)p->B * side * side, 1);
    for (int q = 0; q < p->n_pairs; q++) {
        size_t key = ((size_t)p->pair_clip[q] * side + p->pair_i[q]) * side + p->pair_j[q];
        CHECK_MSG(!seen[key], "pair %d (clip %d, %d->%d) encoded twice", q,
                  p->pair_clip[q], p->pair_i[q], p->pair_j[q]);
        seen[key] = 1;
    }
    free(seen);
}

static void check_loss_pairs(const rc_batch_plan *p, const rc_loss_config *lc) {
    CHECK(p->n_loss_pairs == p->B * RC_TUPLE_PAIR_KINDS);
    /* The expected table, spelled out from SPEC section 3. */
    static const int seqs[RC_TUPLE_PAIR_KINDS][3] = {
        {RC_SEQ_FULL, RC_SEQ_SKIP, 1}, {RC_SEQ_LOOP, RC_SEQ_IDENT, 1},
        {RC_SEQ_FULL, RC_SEQ_REV, 0},  {RC_SEQ_FULL, RC_SEQ_IDENT, 0},
        {RC_SEQ_FULL, RC_SEQ_SHORT, 0}};
    int count[RC_TUPLE_PAIR_KINDS] = {0};
    for (int n = 0; n < p->n_loss_pairs; n++) {
        int k = p->loss_pair_kind[n];
        CHECK(k >= 0 && k < RC_TUPLE_PAIR_KINDS);
        if (k < 0 || k >= RC_TUPLE_PAIR_KINDS) continue;
        count[k]++;
        const rc_loss_pair *lp = &p->loss_pairs[n];
        int b = lp->a / RC_SEQ_KINDS;
        CHECK(lp->b / RC_SEQ_KINDS == b); /* same clip only */
        CHECK(lp->a == b * RC_SEQ_KINDS + seqs[k][0]);
        CHECK(lp->b == b * RC_SEQ_KINDS + seqs[k][1]);
        CHECK(lp->positive == seqs[k][2]);
        float w = (seqs[k][2] ? lc->w_pos : lc->w_neg) * lc->w_kind[k];
        CHECK_MSG(lp->weight == w, "loss pair %d kind %s weight %g, want %g", n,
                  rc_pair_kind_names[k], lp->weight, w);
    }
    for (int k = 0; k < RC_TUPLE_PAIR_KINDS; k++) CHECK(count[k] == p->B);
}

static void test_plan(void) {
    rc_loss_config lc;
    rc_loss_config_default(&lc);
    CHECK(lc.margin == 1.0f && lc.squared == 1 && lc.w_pos == 1.0f && lc.w_neg == 1.0f);
    lc.w_pos = 0.5f;
    lc.w_neg = 2.0f;
    for (int k = 0; k < RC_TUPLE_PAIR_KINDS; k++) lc.w_kind[k] = 1.0f + 0.25f * k;
    int twins[RC_TWIN_KINDS];
    CHECK(lc.w_kind[RC_PAIR_FULL_PAN] == 0 && rc_loss_twins(&lc, twins) == 0);
    for (int ti = 0; ti < N_TS; ti++) {
        int T = Ts[ti], B = 37;
        rc_tuple tuples[37];
        draw_batch(tuples, B, T, 500 + (uint64_t)T);
        rc_batch_plan dp, np;
        CHECK(rc_plan_build(&dp, tuples, B, T, &lc, 1) == 0);
        CHECK(rc_plan_build(&np, tuples, B, T, &lc, 0) == 0);
        CHECK(dp.B == B && dp.T == T && dp.n_seq == B * RC_SEQ_KINDS &&
              dp.n_clips == B);
        CHECK(dp.max_steps == max_len(tuples, B));
        check_no_duplicates(&dp);
        int steps = check_steps(&dp, tuples, 1);
        CHECK(check_steps(&np, tuples, 0) == steps);
        CHECK(np.n_pairs == steps);
        int distinct = 0;
        for (int b = 0; b < B; b++) distinct += distinct_pairs_of(&tuples[b]);
        CHECK_MSG(dp.n_pairs == distinct, "T=%d dedup plan has %d pairs, tuples have %d distinct",
                  T, dp.n_pairs, distinct);
        check_loss_pairs(&dp, &lc);
        check_loss_pairs(&np, &lc);
        rc_plan_free(&dp);
        rc_plan_free(&np);
        CHECK(dp.pair_i == NULL && dp.n_pairs == 0);
    }
}

/* ---- expected distinct pairs, by enumeration ----------------------------- */

static double choose(int n, int k) {
    double c = 1;
    for (int i = 0; i < k; i++) c = c * (n - i) / (i + 1);
    return c;
}

static void set_run(rc_sequence *s, int from, int to) {
    int step = to >= from ? 1 : -1;
    s->n_frames = 0;
    for (int f = from; f != to + step; f += step) s->frames[s->n_frames++] = f;
}

/* E[distinct pairs per tuple] over every (skip subset, loop m, ident m,
 * short m) with its probability under SPEC section 3 and sampler.h. */
static double expected_distinct(int T) {
    double total = 0;
    rc_tuple t;
    memset(&t, 0, sizeof t);
    set_run(&t.seq[RC_SEQ_FULL], 0, T);
    set_run(&t.seq[RC_SEQ_REV], T, 0);
    unsigned everything = ((1u << T) - 1) & ~1u;
    for (unsigned mask = 0; mask <= everything; mask += 2) {
        if (mask == everything) continue;
        int k = __builtin_popcount(mask);
        double p_skip = 1.0 / ((T - 1) * choose(T - 1, k));
        rc_sequence *sk = &t.seq[RC_SEQ_SKIP];
        sk->n_frames = 0;
        sk->frames[sk->n_frames++] = 0;
        for (int f = 1; f < T; f++)
            if (mask & (1u << f)) sk->frames[sk->n_frames++] = f;
        sk->frames[sk->n_frames++] = T;
        for (int lm = 1; lm <= T; lm++) {
            rc_sequence *lp = &t.seq[RC_SEQ_LOOP];
            lp->n_frames = 0;
            for (int f = 0; f <= lm; f++) lp->frames[lp->n_frames++] = f;
            for (int f = lm - 1; f >= 0; f--) lp->frames[lp->n_frames++] = f;
            for (int im = 0; im <= T; im++) {
                t.seq[RC_SEQ_IDENT].n_frames = 2;
                t.seq[RC_SEQ_IDENT].frames[0] = t.seq[RC_SEQ_IDENT].frames[1] = im;
                for (int sm = 1; sm < T; sm++) {
                    set_run(&t.seq[RC_SEQ_SHORT], 0, sm);
                    double p = p_skip / T / (T + 1) / (T - 1);
                    total += p * distinct_pairs_of(&t);
                }
            }
        }
    }
    return total;
}

static void test_distinct_pairs(void) {
    for (int T = 4; T <= 5; T++) {
        double exact = expected_distinct(T);
        enum { B = 64, BATCHES = 150 };
        static rc_tuple tuples[B];
        long pairs = 0;
        for (int s = 0; s < BATCHES; s++) {
            draw_batch(tuples, B, T, 9000 + (uint64_t)s * 31 + (uint64_t)T);
            rc_batch_plan p;
            CHECK(rc_plan_build(&p, tuples, B, T, NULL, 1) == 0);
            pairs += p.n_pairs;
            rc_plan_free(&p);
        }
        double mean = (double)pairs / (B * BATCHES);
        printf("T=%d: mean distinct pairs per tuple %.3f (exact expectation %.3f)\n",
               T, mean, exact);
        /* The per-tuple count has a standard deviation below 2, so over
         * 9600 tuples the mean is within 0.06 of its expectation (3 sigma). */
        CHECK_MSG(fabs(mean - exact) < 0.06, "T=%d mean %.3f vs %.3f", T, mean, exact);
        if (T == 5) CHECK_MSG(exact > 12 && exact < 14, "SPEC says about 13: %.3f", exact);
    }
}

/* ---- bad input ---------------------------------------------------------- */

static void test_errors(void) {
    rc_rng rng;
    rc_rng_seed(&rng, 3);
    rc_tuple t;
    rc_batch_plan p;
    rc_sample_tuple(1, &rng, &t); /* T = 1: no proper skip exists */
    CHECK(rc_plan_build(&p, &t, 1, 1, NULL, 1) == -1);
    CHECK(strstr(rc_last_error(), "T=1") != NULL);
    rc_plan_free(&p);
    CHECK(rc_plan_build(&p, &t, 1, 4, NULL, 1) == -1); /* empty sequences */
    CHECK(strstr(rc_last_error(), "frames") != NULL);
    rc_plan_free(&p);

    rc_sample_tuple(4, &rng, &t);
    CHECK(rc_plan_build(&p, &t, 0, 4, NULL, 1) == -1);
    CHECK(strstr(rc_last_error(), "batch") != NULL);
    rc_plan_free(&p);
    CHECK(rc_plan_build(&p, &t, 1, RC_MAX_T + 1, NULL, 1) == -1);
    rc_plan_free(&p);

    t.seq[RC_SEQ_SKIP].frames[1] = 5; /* beyond f_4 */
    CHECK(rc_plan_build(&p, &t, 1, 4, NULL, 0) == -1);
    CHECK(strstr(rc_last_error(), "f_5") != NULL);
    rc_plan_free(&p);
    t.seq[RC_SEQ_SKIP].frames[1] = -1;
    CHECK(rc_plan_build(&p, &t, 1, 4, NULL, 0) == -1);
    rc_plan_free(&p);

    rc_batch_plan zero;
    memset(&zero, 0, sizeof zero);
    rc_plan_free(&zero); /* safe on a zeroed plan */
    rc_plan_free(&zero);
}

static void test_names(void) {
    static const char *seq[] = {"full", "skip", "loop", "ident", "rev", "short"};
    static const char *pair[] = {"full_skip", "loop_ident", "full_rev",
                                 "full_ident", "full_short"};
    for (int k = 0; k < RC_SEQ_KINDS; k++) CHECK(strcmp(rc_seq_kind_names[k], seq[k]) == 0);
    for (int k = 0; k < RC_TUPLE_PAIR_KINDS; k++) {
        CHECK(strcmp(rc_pair_kind_names[k], pair[k]) == 0);
        /* the pair name is the two sequence names joined by '_' */
        char joined[32];
        snprintf(joined, sizeof joined, "%s_%s", rc_seq_kind_names[rc_pair_kind_seqs[k][0]],
                 rc_seq_kind_names[rc_pair_kind_seqs[k][1]]);
        CHECK(strcmp(joined, pair[k]) == 0);
        CHECK(rc_pair_kind_positive[k] == (k < 2));
    }
    CHECK(!strcmp(rc_pair_kind_names[RC_PAIR_FULL_PAN], "full_pan"));
    CHECK(rc_pair_kind_positive[RC_PAIR_FULL_PAN] == 0);
    CHECK(!strcmp(rc_pair_kind_names[RC_PAIR_FULL_TEX], "full_tex"));
    CHECK(rc_pair_kind_positive[RC_PAIR_FULL_TEX] == 1);
}

/* Pan twins (loss.w_full_pan > 0): clip B + b is the twin of clip b; its
 * full sequence is row B*RC_SEQ_KINDS + b, encoded from the twin's own
 * frames (never deduplicated with clip b's pairs), and one negative pair per
 * tuple joins it to clip b's full sequence. The pan is in [max/2, max]. */
static void test_pan_twins(void) {
    enum { B = 5, T = 4 };
    rc_tuple tuples[B];
    draw_batch(tuples, B, T, 77);
    rc_loss_config lc;
    rc_loss_config_default(&lc);
    lc.w_neg = 2.0f;
    lc.w_kind[RC_PAIR_FULL_PAN] = 0.5f;
    int twins[RC_TWIN_KINDS];
    CHECK(rc_loss_twins(&lc, twins) == 1 && twins[0] == RC_TWIN_PAN &&
          rc_batch_clips(&lc, B) == 2 * B);
    rc_batch_plan p, plain;
    CHECK(rc_plan_build(&p, tuples, B, T, &lc, 1) == 0);
    lc.w_kind[RC_PAIR_FULL_PAN] = 0;
    CHECK(rc_plan_build(&plain, tuples, B, T, &lc, 1) == 0);
    CHECK(p.n_clips == 2 * B && p.n_seq == B * RC_SEQ_KINDS + B);
    CHECK(p.n_pairs == plain.n_pairs + B * T);
    CHECK(p.n_loss_pairs == B * RC_TUPLE_PAIR_KINDS + B);
    for (int b = 0; b < B; b++) {
        int row = B * RC_SEQ_KINDS + b;
        CHECK(p.seq_len[row] == T);
        for (int t = 0; t < T; t++) {
            int q = p.seq_pair[row * p.max_steps + t];
            CHECK(p.pair_clip[q] == B + b && p.pair_i[q] == t && p.pair_j[q] == t + 1);
        }
        const rc_loss_pair *lp = &p.loss_pairs[B * RC_TUPLE_PAIR_KINDS + b];
        CHECK(p.loss_pair_kind[B * RC_TUPLE_PAIR_KINDS + b] == RC_PAIR_FULL_PAN);
        CHECK(lp->a == b * RC_SEQ_KINDS + RC_SEQ_FULL && lp->b == row);
        CHECK(!lp->positive && lp->weight == 2.0f * 0.5f);
    }
    /* the first B*RC_SEQ_KINDS rows and their pairs are as without twins */
    for (int q = 0; q < plain.n_pairs; q++)
        CHECK(p.pair_clip[q] == plain.pair_clip[q] && p.pair_i[q] == plain.pair_i[q] &&
              p.pair_j[q] == plain.pair_j[q]);
    rc_plan_free(&p);
    rc_plan_free(&plain);
    double min_r = 1e9, max_r = 0, mean_ux = 0;
    for (uint64_t k = 0; k < 2000; k++) {
        float ux, uy, ux2, uy2;
        rc_pan_velocity(k * 7919, 3.0f, &ux, &uy);
        rc_pan_velocity(k * 7919, 3.0f, &ux2, &uy2);
        CHECK(ux == ux2 && uy == uy2);
        double r = hypot(ux, uy);
        min_r = fmin(min_r, r);
        max_r = fmax(max_r, r);
        mean_ux += ux / 2000;
    }
    CHECK_MSG(min_r >= 1.5 - 1e-5 && max_r <= 3.0 + 1e-5 && max_r > 2.9 && min_r < 1.6,
              "pan lengths %.3f..%.3f", min_r, max_r);
    CHECK_MSG(fabs(mean_ux) < 0.15, "pan directions biased (mean ux %.3f)", mean_ux);
}

/* The loss split by kind, against terms worked out by hand: every tuple's
 * six embeddings are placed so that each pair kind has a known distance.
 *   full (0,0)  skip (0.5,0)   full_skip  d 0.5  w 2 x 0.25      = 0.5
 *   loop (3,0)  ident (3,0.2)  loop_ident d 0.2  w 1 x 0.04      = 0.04
 *   rev (0.3,0)                full_rev   d 0.3  (1 - 0.3)^2     = 0.49
 *   ident (3,0.2)              full_ident d > 1                  = 0
 *   short (0,0.6)              full_short d 0.6  w 3 x 0.16     = 0.48
 * The same for each of B tuples, and the loss scale is 1/B, so each kind's
 * share is its term; the plain hinge takes w (1 - d) for the negatives. */
static void test_loss_by_kind(void) {
    enum { B = 3, T = 4, D = 2 };
    static const float at[RC_SEQ_KINDS][D] = {
        [RC_SEQ_FULL] = {0, 0},   [RC_SEQ_SKIP] = {0.5f, 0},
        [RC_SEQ_LOOP] = {3, 0},   [RC_SEQ_IDENT] = {3, 0.2f},
        [RC_SEQ_REV] = {0.3f, 0}, [RC_SEQ_SHORT] = {0, 0.6f}};
    rc_rng rng;
    rc_rng_seed(&rng, 5);
    rc_tuple tuples[B];
    for (int b = 0; b < B; b++) rc_sample_tuple(T, &rng, &tuples[b]);
    for (int squared = 1; squared >= 0; squared--) {
        rc_loss_config lc;
        rc_loss_config_default(&lc);
        lc.squared = squared;
        lc.w_kind[RC_PAIR_FULL_SKIP] = 2;
        lc.w_kind[RC_PAIR_FULL_SHORT] = 3;
        rc_batch_plan plan;
        CHECK(rc_plan_build(&plan, tuples, B, T, &lc, 1) == 0);
        float emb[B * RC_SEQ_KINDS * D];
        for (int s = 0; s < plan.n_seq; s++)
            for (int j = 0; j < D; j++) emb[s * D + j] = at[s % RC_SEQ_KINDS][j];
        double got[RC_PAIR_KINDS];
        rc_plan_loss_by_kind(&plan, emb, D, &lc, got);
        double want[RC_PAIR_KINDS] = {0.5, 0.04, 0.49, 0, 0.48};
        if (!squared) { /* positives are w d^2 either way */
            want[2] = 0.7, want[4] = 3 * 0.4;
        }
        double sum = 0;
        for (int k = 0; k < RC_PAIR_KINDS; k++) {
            CHECK_MSG(fabs(got[k] - want[k]) < 1e-6, "%s hinge, %s: %.7f, want %.7f",
                      squared ? "squared" : "plain", rc_pair_kind_names[k],
                      got[k], want[k]);
            sum += got[k];
        }
        rc_hinge_params hp = {lc.margin, lc.squared, 1.0 / B};
        double total = rc_hinge_loss_f32(plan.n_seq, D, emb, plan.n_loss_pairs,
                                         plan.loss_pairs, &hp, NULL);
        CHECK_MSG(fabs(sum - total) < 1e-6, "kinds add to %.7f, loss %.7f", sum, total);
        rc_plan_free(&plan);
    }
}

int main(void) {
    double t0 = rc_now();
    test_loss_by_kind();
    test_pan_twins();
    test_names();
    test_tuples();
    test_determinism();
    test_plan();
    test_distinct_pairs();
    test_errors();
    printf("test_sampler: %.2f s\n", rc_now() - t0);
    TEST_DONE();
}
