/* model.h: the motion embedding phi (SPEC section 1) and its training step.
 *
 * Parameters live in one flat float buffer (and gradients in another of the
 * same layout), described by a table of named tensors. The names follow
 * PyTorch conventions so that checkpoints load into the reference model in
 * tests/ref/ with load_state_dict:
 *   encoder.conv{i}.weight [c_out][c_in][k][k], encoder.conv{i}.bias
 *   encoder.fc.weight [F][C_last], encoder.fc.bias [F]
 *   composer.weight_ih [4H][F], composer.weight_hh [4H][H], composer.bias [4H]
 *   head.weight [D][H], head.bias [D]
 *   action.weight [P][D], action.bias [P]   (only with loss.w_act > 0: the
 *       action head, which maps phi to a warp of the frames; P = 6, or
 *       2 G^2 for a field; action.h)
 */
#ifndef RECOMPOSE_MODEL_H
#define RECOMPOSE_MODEL_H

#include <stddef.h>

#include "recompose/config.h"
#include "recompose/ops.h"
#include "recompose/sampler.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RC_MAX_PARAMS 32

typedef struct {
    char name[48];
    int ndim;
    int shape[4];
    size_t offset;   /* into the flat buffer, in floats */
    size_t numel;
    int decay;       /* 1 if weight decay applies (weights, not biases) */
} rc_param;

typedef struct {
    int in_channels;   /* channels of one frame (pair input has twice that) */
    int image_size;
    int n_conv;
    int conv_channels[RC_MAX_CONV], conv_kernels[RC_MAX_CONV],
        conv_strides[RC_MAX_CONV];
    int feature_dim, hidden, embed_dim;
    int action_head;   /* 1: the action head exists (loss.w_act > 0) */
    int action_kind;   /* enum rc_action_kind: how its outputs warp */
    int action_grid;   /* G of a field (RC_ACTION_GRID) */
    float action_init; /* initial weight scale of the head (loss.act_init) */
} rc_model_shape;

typedef struct rc_model rc_model;

void rc_model_shape_from_config(const rc_config *c, rc_model_shape *s);

/* Create a model on a backend; weights are zero until rc_model_init_weights
 * or a checkpoint load. */
rc_model *rc_model_create(const rc_model_shape *s, const rc_backend *be);
void rc_model_free(rc_model *m);

/* Initialise from seed: He-uniform conv weights with zero bias, PyTorch
 * defaults for linear layers, LSTM U(+-1/sqrt(H)) with forget-gate bias 1. */
void rc_model_init_weights(rc_model *m, uint64_t seed);

const rc_model_shape *rc_model_get_shape(const rc_model *m);
/* The backend whose memory holds the weights, gradients and activations. */
const rc_backend *rc_model_backend(const rc_model *m);
/* 1 when the convolutions run with their ReLU fused (rc_backend_fused). */
int rc_model_conv_fused(const rc_model *m);
int rc_model_n_params(const rc_model *m);
const rc_param *rc_model_param(const rc_model *m, int i);
const rc_param *rc_model_find_param(const rc_model *m, const char *name);
size_t rc_model_numel(const rc_model *m);
float *rc_model_weights(rc_model *m);   /* flat, rc_model_numel() floats */
float *rc_model_grads(rc_model *m);

/* Gradient announcements: during rc_model_step's backward pass, fn(ctx, p)
 * is called once per parameter p as soon as its gradient (the numel floats
 * at rc_model_grads() + p->offset) is final for the step; nothing writes
 * them again before the next step. Parameters finish layer by layer from
 * the last (head) back to the first convolution, weight then bias (the
 * parameter table's layers in reverse order). A communicator subscribes to start reducing gradients while
 * the backward pass goes on (comm.h); the backend's ops, fused ones
 * included, stay as they are. fn = NULL unsubscribes. The saliency and
 * embedding passes announce nothing. */
typedef void (*rc_grad_ready_fn)(void *ctx, const rc_param *p);
void rc_model_on_grad_ready(rc_model *m, rc_grad_ready_fn fn, void *ctx);

/* Size the activation buffers for batches of up to n_pairs distinct pairs,
 * n_seq sequences and max_steps steps, so that steps do not allocate. */
void rc_model_reserve(rc_model *m, int n_pairs, int n_seq, int max_steps);

/* One forward (and optionally backward) pass over a batch.
 * frames: [B][T+1][C][S][S] in the backend's memory, the clips of the plan.
 * Returns the loss: the hinge loss, plus with loss->w_act > 0 (and an
 * action head) the action term over every sequence of the plan, whose
 * share rc_model_action_loss() tells afterwards. With backward != 0 the gradients are written (overwritten)
 * into rc_model_grads(). If emb_out is not NULL it receives the embeddings
 * [n_seq][D] (host memory). Returns NAN on a non-finite loss (no error). */
double rc_model_step(rc_model *m, const rc_batch_plan *plan,
                     const float *frames, const rc_loss_config *loss,
                     int backward, float *emb_out);

/* The action term's share of the last rc_model_step's loss (0 without). */
double rc_model_action_loss(const rc_model *m);

/* The norms of the gradient with respect to the embeddings phi that the
 * last rc_model_step's backward pass took from each term: out[0] the hinge
 * loss, out[1] the action term (0 without). How hard each term pulls on
 * the code (metrics.jsonl, grad_phi). */
void rc_model_term_grad_norms(const rc_model *m, double out[2]);

/* Embeddings of arbitrary sequences without a loss (evaluation, export).
 * seqs: n sequences of frame indices into clip clip_of[i];
 * frames as in rc_model_step for n_clips clips of T+1 frames each.
 * emb_out [n][D] host memory. */
int rc_model_embed(rc_model *m, int n_clips, int T, const float *frames,
                   int n, const rc_sequence *seqs, const int *clip_of,
                   float *emb_out);

/* What saliency differentiates (SPEC section 7, "Where it looks"):
 *   RC_SALIENCY_FULL_REV  sum_k d(phi(S_2k), phi(S_2k+1)): the sequences come
 *                         in pairs, a clip and its reversal. Zero without
 *                         motion (a static clip's full and reversed
 *                         sequences are the same pixels), blind to the
 *                         output bias and to whatever full and rev share:
 *                         the default. Where d is at float rounding level
 *                         (d <= 1e-5 max(|phi|)) there is no direction and
 *                         the pair contributes 0.
 *   RC_SALIENCY_NORM      sum_s ||phi(S_s)||, the old target: it also
 *                         carries the output bias and the response to
 *                         static structure. */
enum rc_saliency_target { RC_SALIENCY_FULL_REV = 0, RC_SALIENCY_NORM = 1 };

/* Saliency: the gradient of the target with respect to the input frames,
 * for the same arguments as rc_model_embed (n even for FULL_REV).
 * d_frames [n_clips][T+1][C][S][S] host memory, overwritten; emb_out may be
 * NULL. Overwrites the model's parameter gradients. */
int rc_model_saliency(rc_model *m, int n_clips, int T, const float *frames,
                      int n, const rc_sequence *seqs, const int *clip_of,
                      int target, float *emb_out, float *d_frames);

#ifdef __cplusplus
}
#endif
#endif
