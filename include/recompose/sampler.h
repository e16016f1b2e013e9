/* sampler.h: recomposition tuples (SPEC section 3) and the batch plan.
 *
 * A clip has T+1 frames f_0..f_T. A tuple is six sequences of frame indices
 * into that clip (full, skip, loop, ident, rev, short). A batch plan turns B
 * tuples into the work the model does: the list of distinct ordered frame
 * pairs to encode (deduplicated across the batch), for every sequence the
 * pair index of each of its steps, and the loss pairs between sequences.
 */
#ifndef RECOMPOSE_SAMPLER_H
#define RECOMPOSE_SAMPLER_H

#include "recompose/ops.h"
#include "recompose/rng.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RC_MAX_T 32                    /* longest clip: T <= RC_MAX_T */
#define RC_MAX_SEQ_FRAMES (2 * RC_MAX_T + 1) /* loop is the longest: 2m+1 */

enum rc_seq_kind {
    RC_SEQ_FULL = 0,
    RC_SEQ_SKIP,
    RC_SEQ_LOOP,
    RC_SEQ_IDENT,
    RC_SEQ_REV,
    RC_SEQ_SHORT,
    RC_SEQ_KINDS
};

/* Loss pair kinds, in this order everywhere (config weights, logs). The
 * first RC_TUPLE_PAIR_KINDS compare sequences of one tuple (SPEC section 3);
 * the others are the optional terms of SPEC section 4, each on only when its
 * weight is above zero:
 *   full_pan  the clip against itself seen through a window that slides by
 *             a random u per frame (a pan): two sequences of the same frames
 *             whose net motions differ by T*u, a pure translation in a random
 *             direction. A code that drops a translation component cannot
 *             tell them apart when u points along it.
 *   full_roll the clip against itself seen through a window turning by a
 *             random alpha per frame about its centre (a camera roll): net
 *             motions that differ by a rotation T*alpha (the translation
 *             turned with it). A code that drops rotation cannot tell them
 *             apart.
 *   full_tex  (positive) the clip against the same motion on another
 *             texture of the same family: a positive across appearance,
 *             which a code private to each clip cannot satisfy.
 *   full_flip (positive, equivariance) the clip mirrored left to right
 *             against the clip, through the flip map of the embedding
 *             (RC_MAP_FLIP): d = ||phi(full) - M_flip phi(flip full)||. The
 *             mirror negates dx and dtheta; the map says where that shows.
 *   full_transpose (positive, equivariance) the same with the image axes
 *             swapped (dx <-> dy, dtheta negated) and RC_MAP_TRANSPOSE. A
 *             code must then carry dy as it carries dx.
 * Each optional kind comes with a twin of every clip (rc_twin_kind). The
 * flip and transpose twins are the clip's own pixels rearranged, so they
 * exist for real footage too; the others are rendered (synthetic only). */
enum rc_pair_kind {
    RC_PAIR_FULL_SKIP = 0, /* positive */
    RC_PAIR_LOOP_IDENT,    /* positive */
    RC_PAIR_FULL_REV,      /* negative */
    RC_PAIR_FULL_IDENT,    /* negative */
    RC_PAIR_FULL_SHORT,    /* negative */
    RC_PAIR_FULL_PAN,      /* negative, optional (loss.w_full_pan) */
    RC_PAIR_FULL_TEX,      /* positive, optional (loss.w_full_tex) */
    RC_PAIR_FULL_ROLL,     /* negative, optional (loss.w_full_roll) */
    RC_PAIR_FULL_FLIP,     /* positive, mapped, optional (loss.w_full_flip) */
    RC_PAIR_FULL_TRANSPOSE,/* positive, mapped, optional
                              (loss.w_full_transpose) */
    RC_PAIR_KINDS
};
#define RC_TUPLE_PAIR_KINDS 5

/* Twin clips, in this order: a batch of B tuples with twins holds clips
 * 0..B-1, then the B twins of each enabled kind (clip B*(1+slot) + b is the
 * twin of clip b, slot counting the enabled kinds in this order). */
enum rc_twin_kind {
    RC_TWIN_PAN = 0,       /* pair kind full_pan */
    RC_TWIN_TEXTURE,       /* pair kind full_tex */
    RC_TWIN_ROLL,          /* pair kind full_roll */
    RC_TWIN_FLIP,          /* pair kind full_flip: frames mirrored */
    RC_TWIN_TRANSPOSE,     /* pair kind full_transpose: frames transposed */
    RC_TWIN_KINDS
};
extern const int rc_twin_pair_kind[RC_TWIN_KINDS];
/* The image symmetry (enum rc_emb_map) that makes a twin of this kind from
 * the clip's own frames: its pair kind's map, RC_MAP_NONE for a rendered
 * twin. */
int rc_twin_symmetry(int twin_kind);

/* A symmetry twin of n_frames frames [C][S][S]: dst = the frames mirrored
 * left to right (RC_MAP_FLIP) or with rows and columns swapped
 * (RC_MAP_TRANSPOSE). src and dst do not overlap. */
void rc_twin_frames(int symmetry, int n_frames, int C, int S,
                    const float *src, float *dst);
/* The same for frames of bytes. */
void rc_twin_frames_u8(int symmetry, int n_frames, int C, int S,
                       const void *src, void *dst);

extern const char *const rc_seq_kind_names[RC_SEQ_KINDS];
extern const char *const rc_pair_kind_names[RC_PAIR_KINDS];
/* For each pair kind within a tuple: the two sequence kinds. */
extern const int rc_pair_kind_seqs[RC_TUPLE_PAIR_KINDS][2];
/* For each pair kind: whether it is positive, and its embedding map
 * (rc_loss_pair.map). */
extern const int rc_pair_kind_positive[RC_PAIR_KINDS];
extern const int rc_pair_kind_map[RC_PAIR_KINDS];

typedef struct {
    int n_frames;                    /* >= 2 */
    int frames[RC_MAX_SEQ_FRAMES];   /* indices into the clip, 0..T */
} rc_sequence;

typedef struct {
    rc_sequence seq[RC_SEQ_KINDS];
} rc_tuple;

/* Draw one tuple for a clip of T+1 frames (T >= 2):
 *  full  f_0..f_T
 *  skip  f_0, sorted random proper subset of f_1..f_{T-1}, f_T
 *  loop  f_0..f_m, f_{m-1}..f_0, m uniform in 1..T
 *  ident f_m, f_m, m uniform in 0..T
 *  rev   f_T..f_0
 *  short f_0..f_m, m uniform in 1..T-1 */
void rc_sample_tuple(int T, rc_rng *rng, rc_tuple *out);

/* Per-kind loss weights and hinge settings (from the [loss] config). */
typedef struct {
    float margin;
    int squared;                       /* 1 squared hinge, 0 plain */
    float w_pos, w_neg;
    float w_kind[RC_PAIR_KINDS];       /* per pair kind: 1 for the tuple's,
                                          0 (off) for the optional ones */
    /* The action term (SPEC section 4, "The code acts on images"): every
     * sequence's embedding, through a linear head, warps its first frame
     * onto its last (ops.h, rc_warp_shape). 0 = off (no head). */
    float w_act;
    int act_kind;                      /* enum rc_action_kind */
    int act_grid;                      /* G of RC_ACTION_GRID */
    int act_scales;                    /* pooling factors 1, 2, .., 2^(n-1) */
    int act_border;                    /* pixels left out at each edge */
    float act_moving;                  /* > 0: the error only where the
                                          first and last frame differ by
                                          more than this */
    float act_init;                    /* the head's initial weights:
                                          U(+-act_init / sqrt(D)); 0 = zero */
} rc_loss_config;

/* How the action head's outputs r become the warp A (ops.h):
 *   AFFINE  A = r directly; the head starts at the identity (1 0 0 0 1 0)
 *   EXPM    A = the top two rows of expm([r0 r1 r2; r3 r4 r5; 0 0 0]), an
 *           element of the Lie algebra of the affine group mapped to the
 *           group: invertible by construction, inverse motion = -r; the
 *           head starts at r = 0 (expm = identity)
 *   GRID    a field of G x G displacements [2][G][G] (loss.act_grid), for
 *           local motion (walkers before a static camera); 2 G^2 outputs,
 *           starting at 0 (no displacement) */
enum rc_action_kind { RC_ACTION_AFFINE = 0, RC_ACTION_EXPM = 1, RC_ACTION_GRID = 2 };

/* The twin kinds a loss config enables (those whose pair weight is above
 * zero), in order, into kinds[]; returns how many. */
int rc_loss_twins(const rc_loss_config *loss, int kinds[RC_TWIN_KINDS]);

/* Clips a batch of B tuples needs frames for: B * (1 + enabled twins). */
int rc_batch_clips(const rc_loss_config *loss, int B);

/* The pan of the twin of the clip with key clip_key, pixels per frame: a
 * uniform direction and a length uniform in [max/2, max] (so the two net
 * motions always differ by at least T*max/2). */
void rc_pan_velocity(uint64_t clip_key, float max, float *ux, float *uy);

/* The roll of the roll twin of a clip, radians per frame: a random sign
 * and a size uniform in [max/2, max]. */
float rc_roll_rate(uint64_t clip_key, float max);

/* The work of one batch. Sequence s of tuple b is row b*RC_SEQ_KINDS + kind;
 * with twins, row B*RC_SEQ_KINDS + slot*B + b is the full sequence of clip
 * B*(1+slot) + b (twin `slot` of clip b). */
typedef struct {
    int B, T;
    int n_clips;        /* clips the frames hold: rc_batch_clips */
    int n_twins;        /* enabled twin kinds */
    int twin_kind[RC_TWIN_KINDS]; /* enum rc_twin_kind of each slot */
    int n_pairs;        /* distinct ordered pairs to encode */
    int *pair_clip;     /* [n_pairs] tuple (clip) index */
    int *pair_i;        /* [n_pairs] first frame index in the clip */
    int *pair_j;        /* [n_pairs] second frame index */
    int n_seq;          /* B * RC_SEQ_KINDS */
    int max_steps;      /* longest sequence, in pairs (frames - 1) */
    int *seq_len;       /* [n_seq] steps (pairs) of each sequence */
    int *seq_pair;      /* [n_seq][max_steps] pair index of each step; -1 pad */
    int n_loss_pairs;   /* B * (RC_TUPLE_PAIR_KINDS + n_twins) */
    rc_loss_pair *loss_pairs;
    int *loss_pair_kind; /* [n_loss_pairs] enum rc_pair_kind */
} rc_batch_plan;

/* Build the plan. dedup = 1 encodes each distinct (clip, i, j) once;
 * dedup = 0 encodes every step of every sequence separately (the oracle the
 * tests compare deduplication against). Returns 0 or -1 (error set). */
int rc_plan_build(rc_batch_plan *plan, const rc_tuple *tuples, int B, int T,
                  const rc_loss_config *loss, int dedup);
void rc_plan_free(rc_batch_plan *plan);

/* The loss of a plan split by pair kind: out[kind] is that kind's share of
 * the batch loss (the same hinge, weights and 1/B scale as the step, so the
 * kinds add up to the step's loss). emb [n_seq][dim] host memory, as
 * rc_model_step's emb_out. Shows which constraints a run satisfies and
 * which it gives up (metrics.jsonl, loss_by_kind). */
void rc_plan_loss_by_kind(const rc_batch_plan *plan, const float *emb,
                          int dim, const rc_loss_config *loss,
                          double out[RC_PAIR_KINDS]);

/* The warp-loss shape of the action term for n sequences of frames with C
 * channels of S x S (scale w_act / n: the term is a mean over sequences). */
void rc_loss_warp_shape(const rc_loss_config *loss, int C, int S, int n,
                        rc_warp_shape *out);

/* Default loss config: margin 1, squared hinge, the tuple's weights 1, the
 * optional terms off. */
void rc_loss_config_default(rc_loss_config *c);

#ifdef __cplusplus
}
#endif
#endif
