/* test_twins.c: the twin clips of the optional loss terms (SPEC section 4;
 * sampler.h, rc_twin_kind), through rc_make_train_batch, the trainer's own
 * batch maker.
 *  - every twin starts where its clip starts: frame 0 of the pan and roll
 *    twins is frame 0 of the clip, bit for bit (a window that slides or
 *    turns from the same place); the texture twin's is another picture;
 *  - the pan twin is the clip seen through a window sliding by u: where u is
 *    whole pixels, twin frame t at x is clip frame t at x + t*u;
 *  - the texture twin has the clip's motion: a pure translation by whole
 *    pixels moves its frames by the same amount;
 *  - the flip and transpose twins are the clip's pixels mirrored and
 *    transposed, and a clip translating by (1, 2) becomes one translating
 *    by (-1, 2) and (2, 1);
 *  - the plan lays the twins out as documented (slots in rc_twin_kind order)
 *    and its loss pairs join each twin to its own clip's full sequence;
 *  - the loss of a twin batch equals the loss recomputed by hand from the
 *    step's embeddings (rc_hinge_loss over the documented pairs). */
#include <math.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/model.h"
#include "recompose/synth.h"
#include "recompose/train.h"
#include "test_util.h"

static void small_config(rc_config *c) {
    rc_test_small_config(c, 32);
    c->clip_steps = 3;
    c->batch = 4;
    c->loss.w_kind[RC_PAIR_FULL_PAN] = 1.0f;
    c->loss.w_kind[RC_PAIR_FULL_TEX] = 0.5f;
    c->loss.w_kind[RC_PAIR_FULL_ROLL] = 2.0f;
    c->loss.w_kind[RC_PAIR_FULL_FLIP] = 0.75f;
    c->loss.w_kind[RC_PAIR_FULL_TRANSPOSE] = 1.5f;
    c->embed_dim = 8; /* the maps need a multiple of 4 */
}

enum { NT = RC_TWIN_KINDS }; /* small_config enables every twin kind */

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) w = fmax(w, fabs((double)a[i] - b[i]));
    return w;
}

static void check_layout(const rc_config *c, const rc_batch_plan *p) {
    int B = c->batch, T = c->clip_steps;
    CHECK(p->n_twins == NT && p->n_clips == (1 + NT) * B);
    for (int slot = 0; slot < NT; slot++) CHECK(p->twin_kind[slot] == slot);
    CHECK(p->n_seq == B * RC_SEQ_KINDS + NT * B);
    CHECK(p->n_loss_pairs == B * (RC_TUPLE_PAIR_KINDS + NT));
    static const int kind[NT] = {RC_PAIR_FULL_PAN, RC_PAIR_FULL_TEX,
                                 RC_PAIR_FULL_ROLL, RC_PAIR_FULL_FLIP,
                                 RC_PAIR_FULL_TRANSPOSE};
    static const int map[NT] = {RC_MAP_NONE, RC_MAP_NONE, RC_MAP_NONE,
                                RC_MAP_FLIP, RC_MAP_TRANSPOSE};
    static const float weight[NT] = {1.0f, 0.5f, 2.0f, 0.75f, 1.5f};
    for (int slot = 0; slot < NT; slot++)
        for (int b = 0; b < B; b++) {
            int n = B * (RC_TUPLE_PAIR_KINDS + slot) + b;
            int row = B * (RC_SEQ_KINDS + slot) + b;
            const rc_loss_pair *lp = &p->loss_pairs[n];
            CHECK(p->loss_pair_kind[n] == kind[slot]);
            CHECK(lp->a == b * RC_SEQ_KINDS + RC_SEQ_FULL && lp->b == row);
            CHECK(lp->positive == (kind[slot] != RC_PAIR_FULL_PAN &&
                                   kind[slot] != RC_PAIR_FULL_ROLL));
            CHECK(lp->weight == weight[slot]);
            CHECK(lp->map == map[slot]);
            CHECK(p->seq_len[row] == T);
            for (int t = 0; t < T; t++) {
                int q = p->seq_pair[row * p->max_steps + t];
                CHECK(p->pair_clip[q] == B * (1 + slot) + b && p->pair_i[q] == t &&
                      p->pair_j[q] == t + 1);
            }
        }
}

/* Twin frame t at pixel (x, y) against clip frame t at (x + sx*t, y + sy*t)
 * (or, for `self`, twin frame 0 at (x - sx*t, y - sy*t)) inside the window. */
static double shift_error(const float *a, const float *b, int S, int t, int sx,
                          int sy) {
    double w = 0;
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            int x2 = x + sx * t, y2 = y + sy * t;
            if (x2 < 0 || x2 >= S || y2 < 0 || y2 >= S) continue;
            w = fmax(w, fabs((double)a[y * S + x] - b[y2 * S + x2]));
        }
    return w;
}

int main(void) {
    rc_config c;
    small_config(&c);
    rc_set_threads(2);
    int B = c.batch, T = c.clip_steps, S = c.image_size;
    CHECK(rc_batch_clips(&c.loss, B) == (1 + NT) * B);
    size_t fe = (size_t)S * S, clip = (size_t)(T + 1) * fe;
    float *frames = rc_xmalloc((1 + NT) * B * clip * sizeof(float));
    rc_batch_plan plan;
    memset(&plan, 0, sizeof plan);
    CHECK(rc_make_train_batch(&c, 9, frames, &plan) == 0);
    check_layout(&c, &plan);
    for (int b = 0; b < B; b++) {
        const float *orig = frames + (size_t)b * clip;
        const float *pan = frames + (size_t)(B + b) * clip;
        const float *tex = frames + (size_t)(2 * B + b) * clip;
        const float *roll = frames + (size_t)(3 * B + b) * clip;
        const float *flip = frames + (size_t)(4 * B + b) * clip;
        const float *tr = frames + (size_t)(5 * B + b) * clip;
        /* the symmetry twins are the clip's pixels mirrored / transposed */
        for (int t = 0; t <= T; t++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    float v = orig[t * fe + y * S + x];
                    CHECK(flip[t * fe + y * S + (S - 1 - x)] == v);
                    CHECK(tr[t * fe + x * S + y] == v);
                }
        CHECK(!memcmp(orig, pan, fe * sizeof(float)));
        CHECK(!memcmp(orig, roll, fe * sizeof(float)));
        CHECK(max_abs_diff(orig, tex, fe) > 0.1);
        for (int t = 1; t <= T; t++) {
            CHECK(max_abs_diff(orig + t * fe, pan + t * fe, fe) > 0.05);
            CHECK(max_abs_diff(orig + t * fe, roll + t * fe, fe) > 0.05);
        }
    }

    /* Whole-pixel motions, set through the renderer the batch maker uses:
     * a pan of u = (2, -1) on a texture at rest, and the texture twin of a
     * clip translating by (1, 2). */
    rc_synth_config sc;
    rc_config_synth(&c, &sc);
    rc_motion still = {0.0f, 0.0f, 0.0f, 1234, RC_TEXTURE_MIXED, 0.0f};
    rc_motion panned = still;
    panned.vx -= 2.0f; /* the window slides by u: content moves by -u */
    panned.vy -= -1.0f;
    float *a = rc_xmalloc(clip * sizeof(float)), *d = rc_xmalloc(clip * sizeof(float));
    rc_synth_render(&sc, &still, 0, T + 1, a);
    rc_synth_render(&sc, &panned, 0, T + 1, d);
    for (int t = 1; t <= T; t++) {
        double e = shift_error(d + t * fe, a + t * fe, S, t, 2, -1);
        CHECK_MSG(e < 1e-5, "pan frame %d: window content off by %.3g", t, e);
    }
    rc_motion moving = {1.0f, 2.0f, 0.0f, 77, RC_TEXTURE_MIXED, 0.0f}, twin;
    rc_synth_retexture(&moving, 2, RC_TEXTURE_MIXED, &twin);
    rc_synth_render(&sc, &twin, 0, T + 1, d);
    for (int t = 1; t <= T; t++) {
        double e = shift_error(d + t * fe, d, S, t, -1, -2);
        CHECK_MSG(e < 1e-5, "texture twin frame %d does not move by (1, 2): %.3g",
                  t, e);
    }
    /* and the symmetry twins of that clip move by (-1, 2) (mirror) and
     * (2, 1) (transpose): the motion the flip and transpose maps stand for */
    float *sym = rc_xmalloc(clip * sizeof(float));
    rc_twin_frames(RC_MAP_FLIP, T + 1, 1, S, d, sym);
    for (int t = 1; t <= T; t++) {
        double e = shift_error(sym + t * fe, sym, S, t, 1, -2);
        CHECK_MSG(e < 1e-5, "mirrored frame %d does not move by (-1, 2): %.3g",
                  t, e);
    }
    rc_twin_frames(RC_MAP_TRANSPOSE, T + 1, 1, S, d, sym);
    for (int t = 1; t <= T; t++) {
        double e = shift_error(sym + t * fe, sym, S, t, -2, -1);
        CHECK_MSG(e < 1e-5, "transposed frame %d does not move by (2, 1): %.3g",
                  t, e);
    }
    free(sym);

    /* The step's loss over the twin pairs, recomputed from its embeddings. */
    rc_model_shape shape;
    rc_model_shape_from_config(&c, &shape);
    rc_model *m = rc_model_create(&shape, rc_backend_cpu());
    rc_model_init_weights(m, 3);
    float *emb = rc_xmalloc((size_t)plan.n_seq * c.embed_dim * sizeof(float));
    double L = rc_model_step(m, &plan, frames, &c.loss, 1, emb);
    rc_hinge_params hp = {c.loss.margin, c.loss.squared, 1.0 / B};
    double by_hand = rc_hinge_loss_f32(plan.n_seq, c.embed_dim, emb,
                                       plan.n_loss_pairs, plan.loss_pairs, &hp, NULL);
    CHECK_MSG(fabs(L - by_hand) < 1e-5 * fmax(1, fabs(L)), "loss %.7f, by hand %.7f",
              L, by_hand);
    double kinds[RC_PAIR_KINDS], sum = 0;
    rc_plan_loss_by_kind(&plan, emb, c.embed_dim, &c.loss, kinds);
    for (int k = 0; k < RC_PAIR_KINDS; k++) sum += kinds[k];
    CHECK(fabs(sum - L) < 1e-5 * fmax(1, fabs(L)));
    for (int k = RC_TUPLE_PAIR_KINDS; k < RC_PAIR_KINDS; k++)
        CHECK_MSG(kinds[k] > 0, "no loss from kind %s", rc_pair_kind_names[k]);

    rc_model_free(m);
    rc_plan_free(&plan);
    free(frames);
    free(a);
    free(d);
    free(emb);
    TEST_DONE();
}
