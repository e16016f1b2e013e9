/* model.c: the motion embedding phi and its training step (SPEC sections 1, 4).
 *
 *   frames --gather--> pair inputs [P][2C][S][S]
 *          --conv+ReLU x L--> GAP --fc--> pair features [P][F]
 *          --gather steps--> LSTM inputs [n_seq][max_steps][F]
 *          --LSTM--> h_last [n_seq][H] --head--> phi [n_seq][D] --> loss
 *
 * P counts DISTINCT ordered pairs of the batch: a pair shared by several
 * sequences is encoded once, and its gradient is the sum over its uses
 * (scatter_steps). All work goes through the backend's op table; buffers are
 * sized once for the largest batch seen, so a training step allocates nothing.
 */
#include "recompose/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/action.h"
#include "recompose/common.h"
#include "recompose/rng.h"

typedef struct {
    rc_conv_shape shape;  /* n is set per batch */
    int w_param, b_param; /* indices into the param table */
} conv_layer;

struct rc_model {
    rc_model_shape shape;
    const rc_backend *be;
    const rc_backend_fused *fused; /* NULL: conv and ReLU run separately */
    int n_params;
    rc_param params[RC_MAX_PARAMS];
    size_t numel;
    float *w, *g;

    conv_layer conv[RC_MAX_CONV];
    int fc_w, fc_b, lstm_wih, lstm_whh, lstm_b, head_w, head_b;
    int act_w, act_b; /* the action head; -1 without */
    int c_last; /* channels after the last conv */

    /* activation buffers, capacity in pairs / sequences / steps */
    int cap_pairs, cap_seq, cap_steps;
    float *x_in;               /* [P][2C][S][S] */
    float *act[RC_MAX_CONV];   /* post-ReLU outputs of each conv */
    float *pooled, *feat;      /* [P][C_last], [P][F] */
    float *steps_in;           /* [n_seq][max_steps][F] */
    float *lstm_cache;
    float *h_last, *emb;       /* [n_seq][H], [n_seq][D] */
    float *d_emb, *d_h, *d_steps, *d_feat, *d_pooled;
    float *d_buf[2];           /* ping-pong conv gradients */
    float *conv_ws;
    size_t conv_ws_elems, lstm_cache_elems;
    /* the action term: head outputs, warps and their gradients [n_seq][6]
     * and the head's gradient into phi [n_seq][D] (backend memory); each
     * sequence's first and last frame (host) */
    float *act_raw, *act_theta, *d_theta, *d_raw, *d_emb_act;
    float *host_raw, *host_theta; /* [n_seq][6] host scratch */
    int *act_first, *act_last;
    double last_action_loss;
    double grad_phi[2]; /* |dL/dphi| of the hinge loss and the action term */

    rc_grad_ready_fn grad_ready; /* NULL: nobody listens */
    void *grad_ready_ctx;
};

/* ---- parameter table ---------------------------------------------------- */

static int add_param(rc_model *m, const char *name, int ndim, const int *shape,
                     int decay) {
    rc_param *p = &m->params[m->n_params];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->numel *= (size_t)shape[i];
    }
    p->offset = m->numel;
    p->decay = decay;
    m->numel += p->numel;
    return m->n_params++;
}

static void build_param_table(rc_model *m) {
    const rc_model_shape *s = &m->shape;
    char name[48];
    int c_in = 2 * s->in_channels, size = s->image_size;
    for (int l = 0; l < s->n_conv; l++) {
        int co = s->conv_channels[l], k = s->conv_kernels[l];
        int wshape[4] = {co, c_in, k, k};
        snprintf(name, sizeof name, "encoder.conv%d.weight", l);
        m->conv[l].w_param = add_param(m, name, 4, wshape, 1);
        snprintf(name, sizeof name, "encoder.conv%d.bias", l);
        m->conv[l].b_param = add_param(m, name, 1, &co, 0);
        rc_conv_shape_init(&m->conv[l].shape, 1, c_in, size, size, co, k,
                           s->conv_strides[l], k / 2);
        size = m->conv[l].shape.h_out;
        c_in = co;
    }
    m->c_last = c_in;
    int F = s->feature_dim, H = s->hidden, D = s->embed_dim, G = 4 * H;
    m->fc_w = add_param(m, "encoder.fc.weight", 2, (int[]){F, c_in}, 1);
    m->fc_b = add_param(m, "encoder.fc.bias", 1, &F, 0);
    m->lstm_wih = add_param(m, "composer.weight_ih", 2, (int[]){G, F}, 1);
    m->lstm_whh = add_param(m, "composer.weight_hh", 2, (int[]){G, H}, 1);
    m->lstm_b = add_param(m, "composer.bias", 1, &G, 0);
    m->head_w = add_param(m, "head.weight", 2, (int[]){D, H}, 1);
    m->head_b = add_param(m, "head.bias", 1, &D, 0);
    m->act_w = m->act_b = -1;
    if (s->action_head) {
        int P = rc_action_params(s->action_kind, s->action_grid);
        m->act_w = add_param(m, "action.weight", 2, (int[]){P, D}, 1);
        m->act_b = add_param(m, "action.bias", 1, &P, 0);
    }
}

void rc_model_shape_from_config(const rc_config *c, rc_model_shape *s) {
    memset(s, 0, sizeof *s);
    s->in_channels = c->channels;
    s->image_size = c->image_size;
    s->n_conv = c->n_conv;
    for (int i = 0; i < c->n_conv; i++) {
        s->conv_channels[i] = c->conv_channels[i];
        s->conv_kernels[i] = c->conv_kernels[i];
        s->conv_strides[i] = c->conv_strides[i];
    }
    s->feature_dim = c->feature_dim;
    s->hidden = c->hidden;
    s->embed_dim = c->embed_dim;
    s->action_head = c->loss.w_act > 0;
    s->action_kind = c->loss.act_kind;
    s->action_grid = c->loss.act_grid;
    s->action_init = c->loss.act_init;
}

rc_model *rc_model_create(const rc_model_shape *s, const rc_backend *be) {
    if (s->n_conv < 1 || s->n_conv > RC_MAX_CONV) {
        rc_set_error("model needs 1..%d conv layers, got %d", RC_MAX_CONV,
                     s->n_conv);
        return NULL;
    }
    rc_model *m = rc_xcalloc(1, sizeof *m);
    m->shape = *s;
    m->be = be;
    m->fused = be->fused;
    build_param_table(m);
    if (m->conv[s->n_conv - 1].shape.h_out < 1) {
        rc_set_error("image_size %d is too small for %d stride-2 layers",
                     s->image_size, s->n_conv);
        free(m);
        return NULL;
    }
    m->w = be->alloc(m->numel * sizeof(float));
    m->g = be->alloc(m->numel * sizeof(float));
    return m;
}

static void free_buffers(rc_model *m) {
    const rc_backend *be = m->be;
    float **bufs[] = {&m->x_in,    &m->pooled,   &m->feat,     &m->steps_in,
                      &m->lstm_cache, &m->h_last, &m->emb,     &m->d_emb,
                      &m->d_h,     &m->d_steps,  &m->d_feat,   &m->d_pooled,
                      &m->d_buf[0], &m->d_buf[1], &m->conv_ws,
                      &m->act_raw, &m->act_theta, &m->d_theta, &m->d_raw,
                      &m->d_emb_act};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (*bufs[i]) be->free(*bufs[i]);
        *bufs[i] = NULL;
    }
    for (int l = 0; l < m->shape.n_conv; l++) {
        if (m->act[l]) be->free(m->act[l]);
        m->act[l] = NULL;
    }
    free(m->host_raw);
    free(m->host_theta);
    free(m->act_first);
    free(m->act_last);
    m->host_raw = m->host_theta = NULL;
    m->act_first = m->act_last = NULL;
    m->cap_pairs = m->cap_seq = m->cap_steps = 0;
}

void rc_model_free(rc_model *m) {
    if (!m) return;
    free_buffers(m);
    m->be->free(m->w);
    m->be->free(m->g);
    free(m);
}

/* ---- initialisation ------------------------------------------------------ */

static int param_fan_in(const rc_param *p) {
    int fan = 1;
    for (int i = 1; i < p->ndim; i++) fan *= p->shape[i];
    return fan;
}

void rc_model_init_weights(rc_model *m, uint64_t seed) {
    /* Conv layers: He (Kaiming) uniform, bound sqrt(6/fan_in), zero bias.
     * PyTorch's default (bound 1/sqrt(fan_in), random bias) shrinks the
     * signal at every ReLU layer until the biases dominate: measured here,
     * 18 of 64 last-layer channels were never active at initialisation, and
     * training then tended to learn one axis of translation only.
     * Linear layers keep PyTorch's default U(+-1/sqrt(fan_in)); the LSTM
     * U(+-1/sqrt(H)) with the forget-gate bias at 1 (remember by default). */
    float *host = rc_xcalloc(m->numel, sizeof(float));
    int H = m->shape.hidden;
    for (int i = 0; i < m->n_params; i++) {
        const rc_param *p = &m->params[i];
        int is_conv = strncmp(p->name, "encoder.conv", 12) == 0;
        int is_lstm = strncmp(p->name, "composer.", 9) == 0;
        double bound;
        if (is_conv && p->ndim == 1) {
            continue; /* zero conv bias */
        } else if (is_conv) {
            bound = sqrt(6.0 / (double)param_fan_in(p));
        } else if (is_lstm) {
            bound = 1.0 / sqrt((double)H);
        } else {
            /* a bias takes the fan-in of the weight listed just before it */
            const rc_param *w = p->ndim == 1 && i > 0 ? &m->params[i - 1] : p;
            bound = 1.0 / sqrt((double)param_fan_in(w));
        }
        rc_rng rng;
        rc_rng_seed(&rng, rc_hash_combine(seed, 0x1417ULL + (uint64_t)i));
        for (size_t k = 0; k < p->numel; k++)
            host[p->offset + k] = (float)rc_rng_range(&rng, -bound, bound);
        if (is_lstm && p->ndim == 1)
            for (int k = H; k < 2 * H; k++) host[p->offset + k] = 1.0f;
    }
    /* The action head's bias is the identity warp. Its weight is zero
     * (loss.act_init = 0: every sequence starts at the identity) or small
     * and random, so that from the first step the term's gradient reaches
     * every direction of the code, not only those the head has already
     * learned to read. */
    if (m->act_w >= 0) {
        const rc_param *p = &m->params[m->act_w];
        rc_rng rng;
        rc_rng_seed(&rng, rc_hash_combine(seed, 0x61637431ULL /* "act1" */));
        double bound = m->shape.action_init / sqrt((double)m->shape.embed_dim);
        for (size_t k = 0; k < p->numel; k++)
            host[p->offset + k] = bound > 0 ? (float)rc_rng_range(&rng, -bound, bound) : 0.0f;
        rc_action_identity(m->shape.action_kind,
                           (int)m->params[m->act_b].numel,
                           host + m->params[m->act_b].offset);
    }
    m->be->to_device(m->w, host, m->numel * sizeof(float));
    free(host);
}

/* ---- accessors ------------------------------------------------------------ */

const rc_model_shape *rc_model_get_shape(const rc_model *m) { return &m->shape; }
const rc_backend *rc_model_backend(const rc_model *m) { return m->be; }
int rc_model_n_params(const rc_model *m) { return m->n_params; }
const rc_param *rc_model_param(const rc_model *m, int i) {
    return i >= 0 && i < m->n_params ? &m->params[i] : NULL;
}
const rc_param *rc_model_find_param(const rc_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return &m->params[i];
    return NULL;
}
size_t rc_model_numel(const rc_model *m) { return m->numel; }
float *rc_model_weights(rc_model *m) { return m->w; }
float *rc_model_grads(rc_model *m) { return m->g; }

static float *W(rc_model *m, int param) { return m->w + m->params[param].offset; }
static float *G(rc_model *m, int param) { return m->g + m->params[param].offset; }

/* ---- buffers -------------------------------------------------------------- */

static size_t frame_elems(const rc_model *m) {
    return (size_t)m->shape.in_channels * m->shape.image_size *
           m->shape.image_size;
}

static size_t conv_out_elems(const conv_layer *c) {
    return (size_t)c->shape.c_out * c->shape.h_out * c->shape.w_out;
}

/* Grow buffers to hold n_pairs pairs and n_seq sequences of max_steps steps.
 * The number of distinct pairs varies a little from batch to batch; training
 * reserves the batch's upper bound up front (rc_model_reserve), so a step
 * never allocates. */
static void ensure_capacity(rc_model *m, int n_pairs, int n_seq, int max_steps) {
    if (n_pairs <= m->cap_pairs && n_seq <= m->cap_seq &&
        max_steps <= m->cap_steps)
        return;
    int P = n_pairs > m->cap_pairs ? n_pairs : m->cap_pairs;
    int S = n_seq > m->cap_seq ? n_seq : m->cap_seq;
    int T = max_steps > m->cap_steps ? max_steps : m->cap_steps;
    free_buffers(m);
    const rc_backend *be = m->be;
    const rc_model_shape *s = &m->shape;
    size_t F = (size_t)s->feature_dim, H = (size_t)s->hidden,
           D = (size_t)s->embed_dim;
    size_t max_act = 2 * frame_elems(m);
    m->x_in = be->alloc((size_t)P * 2 * frame_elems(m) * sizeof(float));
    m->conv_ws_elems = 0;
    for (int l = 0; l < s->n_conv; l++) {
        conv_layer *c = &m->conv[l];
        c->shape.n = P;
        size_t e = conv_out_elems(c);
        if (e > max_act) max_act = e;
        m->act[l] = be->alloc((size_t)P * e * sizeof(float));
        size_t ws = be->conv2d_workspace(&c->shape);
        if (ws > m->conv_ws_elems) m->conv_ws_elems = ws;
    }
    m->conv_ws = be->alloc((m->conv_ws_elems ? m->conv_ws_elems : 1) *
                           sizeof(float));
    m->pooled = be->alloc((size_t)P * m->c_last * sizeof(float));
    m->d_pooled = be->alloc((size_t)P * m->c_last * sizeof(float));
    m->feat = be->alloc((size_t)P * F * sizeof(float));
    m->d_feat = be->alloc((size_t)P * F * sizeof(float));
    m->steps_in = be->alloc((size_t)S * T * F * sizeof(float));
    m->d_steps = be->alloc((size_t)S * T * F * sizeof(float));
    /* the cache size depends on the padded shape only, not on lengths */
    rc_lstm_shape ls = {S, T, (int)F, (int)H, NULL};
    m->lstm_cache_elems = be->lstm_cache_size(&ls);
    m->lstm_cache = be->alloc(m->lstm_cache_elems * sizeof(float));
    m->h_last = be->alloc((size_t)S * H * sizeof(float));
    m->d_h = be->alloc((size_t)S * H * sizeof(float));
    m->emb = be->alloc((size_t)S * D * sizeof(float));
    m->d_emb = be->alloc((size_t)S * D * sizeof(float));
    m->d_buf[0] = be->alloc((size_t)P * max_act * sizeof(float));
    m->d_buf[1] = be->alloc((size_t)P * max_act * sizeof(float));
    if (m->act_w >= 0) {
        size_t A = m->params[m->act_b].numel;
        m->act_raw = be->alloc((size_t)S * A * sizeof(float));
        m->act_theta = be->alloc((size_t)S * A * sizeof(float));
        m->d_theta = be->alloc((size_t)S * A * sizeof(float));
        m->d_raw = be->alloc((size_t)S * A * sizeof(float));
        m->d_emb_act = be->alloc((size_t)S * D * sizeof(float));
        m->host_raw = rc_xmalloc((size_t)S * A * sizeof(float));
        m->host_theta = rc_xmalloc((size_t)S * A * sizeof(float));
        m->act_first = rc_xmalloc((size_t)S * sizeof(int));
        m->act_last = rc_xmalloc((size_t)S * sizeof(int));
    }
    m->cap_pairs = P;
    m->cap_seq = S;
    m->cap_steps = T;
}

/* ---- forward / backward --------------------------------------------------- */

/* Forward through encoder, composer and head for the plan's pairs and
 * sequences; leaves phi in m->emb. */
static void forward(rc_model *m, const rc_batch_plan *plan, const float *frames) {
    const rc_backend *be = m->be;
    const rc_model_shape *s = &m->shape;
    int P = plan->n_pairs;
    ensure_capacity(m, P, plan->n_seq, plan->max_steps);

    be->gather_pairs(P, plan->pair_clip, plan->pair_i, plan->pair_j,
                     plan->T + 1, frame_elems(m), frames, m->x_in);
    const float *x = m->x_in;
    for (int l = 0; l < s->n_conv; l++) {
        conv_layer *c = &m->conv[l];
        c->shape.n = P;
        if (m->fused) {
            /* one pass over the output instead of two */
            m->fused->conv2d_relu_forward(&c->shape, x, W(m, c->w_param),
                                    W(m, c->b_param), m->act[l], m->conv_ws);
        } else {
            be->conv2d_forward(&c->shape, x, W(m, c->w_param),
                               W(m, c->b_param), m->act[l], m->conv_ws);
            be->relu_forward((size_t)P * conv_out_elems(c), m->act[l],
                             m->act[l]);
        }
        x = m->act[l];
    }
    const conv_layer *last = &m->conv[s->n_conv - 1];
    be->gap_forward(P, m->c_last, last->shape.h_out * last->shape.w_out, x,
                    m->pooled);
    be->linear_forward(P, m->c_last, s->feature_dim, m->pooled, W(m, m->fc_w),
                       W(m, m->fc_b), m->feat);

    be->gather_steps(plan->n_seq, plan->max_steps, plan->seq_pair,
                     s->feature_dim, m->feat, m->steps_in);
    rc_lstm_shape ls = {plan->n_seq, plan->max_steps, s->feature_dim,
                        s->hidden, plan->seq_len};
    be->lstm_forward(&ls, m->steps_in, W(m, m->lstm_wih), W(m, m->lstm_whh),
                     W(m, m->lstm_b), m->h_last, m->lstm_cache);
    be->linear_forward(plan->n_seq, s->hidden, s->embed_dim, m->h_last,
                       W(m, m->head_w), W(m, m->head_b), m->emb);
}

int rc_model_conv_fused(const rc_model *m) { return m->fused != NULL; }

void rc_model_on_grad_ready(rc_model *m, rc_grad_ready_fn fn, void *ctx) {
    m->grad_ready = fn;
    m->grad_ready_ctx = ctx;
}

/* The gradient of parameter `param` is final (rc_model_on_grad_ready). */
static void grad_final(const rc_model *m, int announce, int param) {
    if (announce && m->grad_ready)
        m->grad_ready(m->grad_ready_ctx, &m->params[param]);
}

/* Backward from m->d_emb. d_input, if not NULL, receives the gradient with
 * respect to the pair inputs [P][2C][S][S] (saliency); training passes NULL,
 * skips that work and announces each finished weight gradient. */
static void backward(rc_model *m, const rc_batch_plan *plan, float *d_input) {
    const rc_backend *be = m->be;
    const rc_model_shape *s = &m->shape;
    int P = plan->n_pairs, announce = d_input == NULL;

    if (m->act_w >= 0 && announce) { /* the action head's, from action_term */
        grad_final(m, announce, m->act_w);
        grad_final(m, announce, m->act_b);
    }
    be->linear_backward(plan->n_seq, s->hidden, s->embed_dim, m->h_last,
                        W(m, m->head_w), m->d_emb, m->d_h, G(m, m->head_w),
                        G(m, m->head_b));
    grad_final(m, announce, m->head_w);
    grad_final(m, announce, m->head_b);
    rc_lstm_shape ls = {plan->n_seq, plan->max_steps, s->feature_dim,
                        s->hidden, plan->seq_len};
    be->lstm_backward(&ls, m->steps_in, W(m, m->lstm_wih), W(m, m->lstm_whh),
                      m->lstm_cache, m->d_h, m->d_steps, G(m, m->lstm_wih),
                      G(m, m->lstm_whh), G(m, m->lstm_b));
    grad_final(m, announce, m->lstm_wih);
    grad_final(m, announce, m->lstm_whh);
    grad_final(m, announce, m->lstm_b);
    be->scatter_steps(plan->n_seq, plan->max_steps, plan->seq_pair,
                      s->feature_dim, m->d_steps, P, m->d_feat);
    const conv_layer *last = &m->conv[s->n_conv - 1];
    float *dy = m->d_buf[0];
    be->linear_backward(P, m->c_last, s->feature_dim, m->pooled, W(m, m->fc_w),
                        m->d_feat, m->d_pooled, G(m, m->fc_w), G(m, m->fc_b));
    grad_final(m, announce, m->fc_w);
    grad_final(m, announce, m->fc_b);
    be->gap_backward(P, m->c_last, last->shape.h_out * last->shape.w_out,
                     m->d_pooled, dy);
    for (int l = s->n_conv - 1; l >= 0; l--) {
        conv_layer *c = &m->conv[l];
        const float *x = l > 0 ? m->act[l - 1] : m->x_in;
        float *dx = l > 0 ? (dy == m->d_buf[0] ? m->d_buf[1] : m->d_buf[0])
                          : d_input;
        if (m->fused) {
            m->fused->conv2d_relu_backward(&c->shape, x, W(m, c->w_param),
                                     m->act[l], dy, dx, G(m, c->w_param),
                                     G(m, c->b_param), m->conv_ws);
        } else {
            be->relu_backward((size_t)P * conv_out_elems(c), m->act[l], dy,
                              dy);
            be->conv2d_backward(&c->shape, x, W(m, c->w_param), dy, dx,
                                G(m, c->w_param), G(m, c->b_param),
                                m->conv_ws);
        }
        grad_final(m, announce, c->w_param);
        grad_final(m, announce, c->b_param);
        dy = dx;
    }
}

/* The action term (SPEC section 4): every sequence's phi, through the
 * action head, warps the sequence's first frame onto its last.
 *   phi --head--> raw [n][P] --(expm: host, rc_action_warps)--> theta
 *       --warp_loss(first frame, last frame)--> L_act, d_theta
 *       --(host) backward of the warps--> d_raw --head backward--> d phi
 * With backward, the head's weight gradients are written and d phi is
 * added to m->d_emb (which holds the hinge loss's). */
static double action_term(rc_model *m, const rc_batch_plan *plan,
                          const float *frames, const rc_loss_config *loss,
                          int backward_pass) {
    const rc_backend *be = m->be;
    int n = plan->n_seq, D = m->shape.embed_dim, F1 = plan->T + 1;
    int P = (int)m->params[m->act_b].numel;
    for (int q = 0; q < n; q++) {
        const int *steps = plan->seq_pair + (size_t)q * plan->max_steps;
        int p0 = steps[0], p1 = steps[plan->seq_len[q] - 1];
        m->act_first[q] = plan->pair_clip[p0] * F1 + plan->pair_i[p0];
        m->act_last[q] = plan->pair_clip[p1] * F1 + plan->pair_j[p1];
    }
    be->linear_forward(n, D, P, m->emb, W(m, m->act_w), W(m, m->act_b),
                       m->act_raw);
    size_t bytes = (size_t)n * P * sizeof(float);
    const float *theta = m->act_raw;
    if (m->shape.action_kind == RC_ACTION_EXPM) {
        be->to_host(m->host_raw, m->act_raw, bytes);
        rc_action_warps(m->shape.action_kind, n, m->host_raw, m->host_theta);
        be->to_device(m->act_theta, m->host_theta, bytes);
        theta = m->act_theta;
    }
    rc_warp_shape ws;
    rc_loss_warp_shape(loss, m->shape.in_channels, m->shape.image_size, n, &ws);
    double L = be->warp_loss(&ws, frames, m->act_first, m->act_last, theta,
                             backward_pass ? m->d_theta : NULL);
    if (!backward_pass || !isfinite(L)) return L;
    const float *d_raw = m->d_theta;
    if (m->shape.action_kind == RC_ACTION_EXPM) {
        be->to_host(m->host_theta, m->d_theta, bytes);
        rc_action_warps_backward(m->shape.action_kind, n, m->host_raw,
                                 m->host_theta, m->host_theta);
        be->to_device(m->d_raw, m->host_theta, bytes);
        d_raw = m->d_raw;
    }
    be->linear_backward(n, D, P, m->emb, W(m, m->act_w), d_raw, m->d_emb_act,
                        G(m, m->act_w), G(m, m->act_b));
    m->grad_phi[1] = sqrt(be->sum_squares((size_t)n * D, m->d_emb_act));
    be->axpy((size_t)n * D, 1.0f, m->d_emb_act, m->d_emb);
    return L;
}

double rc_model_action_loss(const rc_model *m) { return m->last_action_loss; }

void rc_model_term_grad_norms(const rc_model *m, double out[2]) {
    out[0] = m->grad_phi[0];
    out[1] = m->grad_phi[1];
}

double rc_model_step(rc_model *m, const rc_batch_plan *plan,
                     const float *frames, const rc_loss_config *loss,
                     int backward_pass, float *emb_out) {
    forward(m, plan, frames);
    rc_hinge_params hp = {loss->margin, loss->squared, 1.0 / plan->B};
    double L = m->be->hinge_loss(plan->n_seq, m->shape.embed_dim, m->emb,
                                 plan->n_loss_pairs, plan->loss_pairs, &hp,
                                 backward_pass ? m->d_emb : NULL);
    m->last_action_loss = 0;
    m->grad_phi[0] = m->grad_phi[1] = 0;
    if (backward_pass && isfinite(L))
        m->grad_phi[0] = sqrt(m->be->sum_squares(
            (size_t)plan->n_seq * m->shape.embed_dim, m->d_emb));
    if (m->act_w >= 0 && loss->w_act > 0) {
        m->last_action_loss = action_term(m, plan, frames, loss, backward_pass);
        L += m->last_action_loss;
    }
    if (emb_out)
        m->be->to_host(emb_out, m->emb,
                       (size_t)plan->n_seq * m->shape.embed_dim * sizeof(float));
    if (!isfinite(L)) return NAN;
    if (backward_pass) backward(m, plan, NULL);
    return L;
}

/* ---- embedding of arbitrary sequences -------------------------------------- */

/* A plan (no loss pairs) for arbitrary sequences, pairs deduplicated. */
static int build_sequence_plan(int n_clips, int T, int n,
                               const rc_sequence *seqs, const int *clip_of,
                               rc_batch_plan *plan) {
    int F1 = T + 1;
    memset(plan, 0, sizeof *plan);
    plan->B = n_clips;
    plan->n_clips = n_clips;
    plan->T = T;
    plan->n_seq = n;
    for (int s = 0; s < n; s++) {
        if (seqs[s].n_frames < 2)
            return rc_set_error("sequence %d has %d frames; needs at least 2",
                                s, seqs[s].n_frames);
        if (clip_of[s] < 0 || clip_of[s] >= n_clips)
            return rc_set_error("sequence %d refers to clip %d of %d", s,
                                clip_of[s], n_clips);
        if (seqs[s].n_frames - 1 > plan->max_steps)
            plan->max_steps = seqs[s].n_frames - 1;
    }
    size_t max_pairs = (size_t)n * plan->max_steps;
    plan->pair_clip = rc_xmalloc(max_pairs * sizeof(int));
    plan->pair_i = rc_xmalloc(max_pairs * sizeof(int));
    plan->pair_j = rc_xmalloc(max_pairs * sizeof(int));
    plan->seq_len = rc_xmalloc((size_t)n * sizeof(int));
    plan->seq_pair = rc_xmalloc(max_pairs * sizeof(int));
    /* pair id table: (clip, i, j) -> index, -1 if not yet seen */
    size_t table_n = (size_t)n_clips * F1 * F1;
    int *table = rc_xmalloc(table_n * sizeof(int));
    memset(table, 0xff, table_n * sizeof(int));
    int status = 0;
    for (int s = 0; s < n && status == 0; s++) {
        plan->seq_len[s] = seqs[s].n_frames - 1;
        for (int t = 0; t < plan->max_steps; t++) {
            int *slot = &plan->seq_pair[(size_t)s * plan->max_steps + t];
            *slot = -1;
            if (t >= plan->seq_len[s]) continue;
            int i = seqs[s].frames[t], j = seqs[s].frames[t + 1];
            if (i < 0 || i > T || j < 0 || j > T) {
                status = rc_set_error("sequence %d uses frame %d outside 0..%d",
                                      s, i < 0 || i > T ? i : j, T);
                break;
            }
            size_t key = ((size_t)clip_of[s] * F1 + i) * F1 + j;
            if (table[key] < 0) {
                table[key] = plan->n_pairs;
                plan->pair_clip[plan->n_pairs] = clip_of[s];
                plan->pair_i[plan->n_pairs] = i;
                plan->pair_j[plan->n_pairs] = j;
                plan->n_pairs++;
            }
            *slot = table[key];
        }
    }
    free(table);
    if (status != 0) rc_plan_free(plan);
    return status;
}

int rc_model_embed(rc_model *m, int n_clips, int T, const float *frames, int n,
                   const rc_sequence *seqs, const int *clip_of,
                   float *emb_out) {
    rc_batch_plan plan;
    if (build_sequence_plan(n_clips, T, n, seqs, clip_of, &plan) != 0)
        return -1;
    forward(m, &plan, frames);
    m->be->to_host(emb_out, m->emb,
                   (size_t)n * m->shape.embed_dim * sizeof(float));
    rc_plan_free(&plan);
    return 0;
}

/* d target / d phi for rc_model_saliency, in place over emb [n][D]. */
static void norm_gradient(float *emb, int n, size_t D) {
    /* d ||phi|| / d phi = phi / ||phi|| (0 at phi = 0: no direction) */
    for (int s = 0; s < n; s++) {
        float *e = emb + (size_t)s * D;
        double norm = 0;
        for (size_t k = 0; k < D; k++) norm += (double)e[k] * e[k];
        norm = sqrt(norm);
        for (size_t k = 0; k < D; k++) e[k] = norm > 0 ? (float)(e[k] / norm) : 0.0f;
    }
}

static void pair_distance_gradient(float *emb, int n, size_t D) {
    /* d ||a - b|| / da = (a - b) / d = -d/db */
    for (int s = 0; s + 1 < n; s += 2) {
        float *a = emb + (size_t)s * D, *b = a + D;
        double d2 = 0, na = 0, nb = 0;
        for (size_t k = 0; k < D; k++) {
            double u = (double)a[k] - b[k];
            d2 += u * u;
            na += (double)a[k] * a[k];
            nb += (double)b[k] * b[k];
        }
        double d = sqrt(d2), scale = sqrt(fmax(na, nb));
        for (size_t k = 0; k < D; k++) {
            float g = d > 1e-5 * scale && d > 0 ? (float)((a[k] - b[k]) / d) : 0.0f;
            a[k] = g;
            b[k] = -g;
        }
    }
}

int rc_model_saliency(rc_model *m, int n_clips, int T, const float *frames,
                      int n, const rc_sequence *seqs, const int *clip_of,
                      int target, float *emb_out, float *d_frames) {
    const rc_backend *be = m->be;
    if (target != RC_SALIENCY_FULL_REV && target != RC_SALIENCY_NORM)
        return rc_set_error("saliency: unknown target %d", target);
    if (target == RC_SALIENCY_FULL_REV && n % 2 != 0)
        return rc_set_error("saliency of d(full, rev) needs the sequences in "
                            "pairs; got %d sequences", n);
    rc_batch_plan plan;
    if (build_sequence_plan(n_clips, T, n, seqs, clip_of, &plan) != 0)
        return -1;
    forward(m, &plan, frames);
    size_t D = (size_t)m->shape.embed_dim, fe = frame_elems(m);
    size_t n_emb = (size_t)n * D;
    float *emb = rc_xmalloc(n_emb * sizeof(float));
    be->to_host(emb, m->emb, n_emb * sizeof(float));
    if (emb_out) memcpy(emb_out, emb, n_emb * sizeof(float));
    if (target == RC_SALIENCY_NORM) norm_gradient(emb, n, D);
    else pair_distance_gradient(emb, n, D);
    be->to_device(m->d_emb, emb, n_emb * sizeof(float));
    size_t in_elems = (size_t)plan.n_pairs * 2 * fe;
    float *d_in = be->alloc(in_elems * sizeof(float));
    backward(m, &plan, d_in);
    /* each pair input is (frame i, frame j): route both halves back */
    float *d_host = rc_xmalloc(in_elems * sizeof(float));
    be->to_host(d_host, d_in, in_elems * sizeof(float));
    memset(d_frames, 0, (size_t)n_clips * (T + 1) * fe * sizeof(float));
    for (int p = 0; p < plan.n_pairs; p++) {
        float *clip = d_frames + (size_t)plan.pair_clip[p] * (T + 1) * fe;
        const float *src = d_host + (size_t)p * 2 * fe;
        float *fi = clip + (size_t)plan.pair_i[p] * fe;
        float *fj = clip + (size_t)plan.pair_j[p] * fe;
        for (size_t k = 0; k < fe; k++) fi[k] += src[k];
        for (size_t k = 0; k < fe; k++) fj[k] += src[fe + k];
    }
    free(d_host);
    be->free(d_in);
    free(emb);
    rc_plan_free(&plan);
    return 0;
}

void rc_model_reserve(rc_model *m, int n_pairs, int n_seq, int max_steps) {
    ensure_capacity(m, n_pairs, n_seq, max_steps);
}
