/* ops.h: the op interface.
 *
 * Every layer of the model is a pair of functions, forward and backward, over
 * plain arrays in a fixed layout (NCHW, PyTorch's weight layouts). The CPU
 * reference implementations below exist in float32 (suffix _f32) and float64
 * (suffix _f64): the same source file is compiled twice (see csrc/cpu/real.h).
 * The float64 build is what the finite-difference tests differentiate; the
 * float32 build is what training runs and what other backends are checked
 * against.
 *
 * A backend (rc_backend) bundles one implementation of every op behind
 * function pointers, in float32, over memory that the backend allocates. The
 * model code only talks to a backend, so a CUDA backend can slot in beside
 * the CPU one.
 *
 * Gradient convention: backward functions OVERWRITE their outputs (dx, dw,
 * db); a parameter is used exactly once per step, so there is nothing to
 * accumulate. Any output pointer documented as nullable may be NULL to skip
 * that gradient.
 */
#ifndef RECOMPOSE_OPS_H
#define RECOMPOSE_OPS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- 2-D convolution (cross-correlation, like PyTorch), square kernel ---- */
typedef struct {
    int n;                 /* images */
    int c_in, h_in, w_in;  /* input */
    int c_out, k, stride, pad;
    int h_out, w_out;      /* derived by rc_conv_shape_init */
} rc_conv_shape;

void rc_conv_shape_init(rc_conv_shape *s, int n, int c_in, int h_in, int w_in,
                        int c_out, int k, int stride, int pad);
/* Workspace elements (of the op's real type) that forward/backward need. */
size_t rc_conv2d_workspace(const rc_conv_shape *s);
/* Elements of the input x, the output y and the weights w of a shape. */
static inline size_t rc_conv_numel_x(const rc_conv_shape *s) {
    return (size_t)s->n * s->c_in * s->h_in * s->w_in;
}
static inline size_t rc_conv_numel_y(const rc_conv_shape *s) {
    return (size_t)s->n * s->c_out * s->h_out * s->w_out;
}
static inline size_t rc_conv_numel_w(const rc_conv_shape *s) {
    return (size_t)s->c_out * s->c_in * s->k * s->k;
}

/* x [n][c_in][h_in][w_in], w [c_out][c_in][k][k], b [c_out],
 * y [n][c_out][h_out][w_out]. */
#define RC_DECLARE_OPS(real, sfx)                                              \
    void rc_conv2d_forward_##sfx(const rc_conv_shape *s, const real *x,       \
                                 const real *w, const real *b, real *y,       \
                                 real *ws);                                   \
    /* dx nullable */                                                          \
    void rc_conv2d_backward_##sfx(const rc_conv_shape *s, const real *x,      \
                                  const real *w, const real *dy, real *dx,    \
                                  real *dw, real *db, real *ws);              \
    /* conv then ReLU in one pass: y = max(conv(x) + b, 0) */                  \
    void rc_conv2d_relu_forward_##sfx(const rc_conv_shape *s, const real *x,  \
                                      const real *w, const real *b, real *y,  \
                                      real *ws);                              \
    /* backward of conv2d_relu_forward from its output y and dL/dy: the      \
     * ReLU mask (y > 0) is applied on the fly; dx nullable */                 \
    void rc_conv2d_relu_backward_##sfx(const rc_conv_shape *s, const real *x, \
                                       const real *w, const real *y,          \
                                       const real *dy, real *dx, real *dw,    \
                                       real *db, real *ws);                   \
    /* y = max(x, 0); in place allowed */                                      \
    void rc_relu_forward_##sfx(size_t n, const real *x, real *y);             \
    /* dx = dy * (y > 0); uses the forward OUTPUT y; in place allowed */       \
    void rc_relu_backward_##sfx(size_t n, const real *y, const real *dy,      \
                                real *dx);                                    \
    /* global average pool: x [n][c][hw] -> y [n][c] */                        \
    void rc_gap_forward_##sfx(int n, int c, int hw, const real *x, real *y);  \
    void rc_gap_backward_##sfx(int n, int c, int hw, const real *dy,          \
                               real *dx);                                     \
    /* linear: y [n][out] = x [n][in] * W^T + b, W [out][in], b [out] */       \
    void rc_linear_forward_##sfx(int n, int in, int out, const real *x,       \
                                 const real *w, const real *b, real *y);      \
    /* dx nullable */                                                          \
    void rc_linear_backward_##sfx(int n, int in, int out, const real *x,      \
                                  const real *w, const real *dy, real *dx,    \
                                  real *dw, real *db);                        \
    /* LSTM, see rc_lstm_shape */                                              \
    void rc_lstm_forward_##sfx(const rc_lstm_shape *s, const real *x,         \
                               const real *w_ih, const real *w_hh,            \
                               const real *b, real *h_last, real *cache);     \
    /* dx nullable */                                                          \
    void rc_lstm_backward_##sfx(const rc_lstm_shape *s, const real *x,        \
                                const real *w_ih, const real *w_hh,           \
                                const real *cache, const real *dh_last,       \
                                real *dx, real *dw_ih, real *dw_hh,           \
                                real *db);                                    \
    /* contrastive hinge loss, see rc_loss_pair; dE nullable, overwritten */   \
    double rc_hinge_loss_##sfx(int n_emb, int dim, const real *emb,           \
                               int n_pairs, const rc_loss_pair *pairs,        \
                               const rc_hinge_params *p, real *d_emb);        \
    /* each pair's term of rc_hinge_loss, before the scale: the loss is      \
     * scale times their sum in pair order */                                 \
    void rc_hinge_pair_losses_##sfx(int n_emb, int dim, const real *emb,      \
                                    int n_pairs, const rc_loss_pair *pairs,   \
                                    const rc_hinge_params *p, double *loss);

/* ---- LSTM ----
 * S sequences, each of length len[s] in 1..T, inputs padded to T steps:
 * x [S][T][F] (steps t >= len[s] are ignored and get dx = 0).
 * Gate order i, f, g, o (as torch.nn.LSTM). w_ih [4H][F], w_hh [4H][H],
 * b [4H] (a single bias; PyTorch's b_ih + b_hh). Zero initial state.
 * h_last [S][H] is h at step len[s]-1 of each sequence.
 * cache holds what backward needs: rc_lstm_cache_size() elements. */
typedef struct {
    int S, T, F, H;
    const int *len; /* [S] */
} rc_lstm_shape;
size_t rc_lstm_cache_size(const rc_lstm_shape *s);

/* ---- Contrastive hinge loss (SPEC section 4) ----
 * For each pair (a, b): d = ||emb[a] - M emb[b]||_2, M the identity or, for
 * an equivariance pair, the pair's symmetry map (kernels/shared_math.h,
 * rc_emb_map_index; the embedding size is then a multiple of 4),
 *   positive: weight * d^2
 *   negative: weight * max(0, margin - d)^2   (squared hinge, default)
 *             weight * max(0, margin - d)     (plain hinge)
 * Loss = scale * sum over pairs. The caller folds w_pos / w_neg and per-kind
 * weights into `weight` and 1/B into `scale`. At d = 0 the gradient of the
 * hinge term uses d = max(d, RC_HINGE_EPS): finite, never NaN. */
#define RC_HINGE_EPS 1e-12
/* The symmetry map of a pair (kernels/shared_math.h, rc_emb_map_index). */
enum rc_emb_map {
    RC_MAP_NONE = 0,
    RC_MAP_FLIP,      /* horizontal mirror of the frames */
    RC_MAP_TRANSPOSE, /* swap of the image axes */
    RC_MAPS
};
typedef struct {
    int a, b;       /* rows of emb */
    int positive;   /* 1: pull together, 0: push beyond margin */
    float weight;
    int map;        /* RC_MAP_NONE (0), RC_MAP_FLIP or RC_MAP_TRANSPOSE */
} rc_loss_pair;

typedef struct {
    double margin;
    int squared;    /* 1: squared hinge (default), 0: plain hinge */
    double scale;   /* typically 1/B */
} rc_hinge_params;

/* ---- The action of the code on the frames (SPEC section 4) ----
 * For each sequence q, its first frame (frames + first[q] * C*S*S), warped
 * by theta[q], is compared with its last frame (frames + last[q] * C*S*S).
 * The warped frame at output pixel (i, j) (column i, row j) is the first
 * frame sampled bilinearly at a source point (u, v), in the coordinates
 * x = (2i + 1)/S - 1, y = (2j + 1)/S - 1 (pixel centres in [-1, 1], as
 * PyTorch's affine_grid and grid_sample with align_corners=False):
 *   grid = 0: theta[q] = (a11 a12 a13 a21 a22 a23), 6 numbers, an affine map
 *             (u, v) = (a11 x + a12 y + a13, a21 x + a22 y + a23);
 *   grid = G: theta[q] = a field of displacements [2][G][G] (x, then y) at
 *             the nodes -1 + 2k/(G-1) of a G x G grid over [-1, 1]^2,
 *             (u, v) = (x, y) + the field interpolated bilinearly at (x, y)
 *             (grid_sample of the field with align_corners=True).
 * A source point outside the frame is clamped to its edge
 * (padding_mode="border", with zero gradient through the clamp). The
 * identity (1 0 0 0 1 0), or a zero field, copies the frame exactly. For each pooling factor k of `scales` (k divides S),
 * both frames are average-pooled over k x k blocks and
 *   err_k(q) = mean over channels and over the pooled pixels at least
 *              border / k (rounded down) from every edge of
 *              (pool_k(warped) - pool_k(last))^2
 * Loss = scale * sum over q and k of err_k(q). d_theta [n][params], nullable,
 * overwritten with dLoss/dtheta; each sequence's gradient is a sum in a
 * fixed order: deterministic. first and last are host memory. */
#define RC_WARP_MAX_SCALES 4
#define RC_WARP_MAX_GRID 8
typedef struct {
    int n;                            /* sequences */
    int C, S;                         /* channels, side of a frame */
    int grid;                         /* 0: affine; 2..RC_WARP_MAX_GRID: a
                                         field of G x G displacements */
    int n_scales;
    int scales[RC_WARP_MAX_SCALES];   /* pooling factors, each dividing S */
    int border;                       /* pixels at full resolution */
    double moving;                    /* > 0: only pooled pixels whose first
                                         and last frame differ by more than
                                         this count (mean over those) */
    double scale;
} rc_warp_shape;
/* 0, or -1 with an error naming what does not fit (a scale that does not
 * divide S, a border that leaves no pixel, a grid out of range). */
int rc_warp_shape_check(const rc_warp_shape *s);
/* Numbers per sequence in theta: 6, or 2 G^2 for a field. */
static inline int rc_warp_params(const rc_warp_shape *s) {
    return s->grid ? 2 * s->grid * s->grid : 6;
}

#define RC_DECLARE_WARP(real, sfx)                                             \
    double rc_warp_loss_##sfx(const rc_warp_shape *s, const real *frames,     \
                              const int *first, const int *last,              \
                              const real *theta, real *d_theta);
RC_DECLARE_WARP(float, f32)
RC_DECLARE_WARP(double, f64)

RC_DECLARE_OPS(float, f32)
RC_DECLARE_OPS(double, f64)

/* ---- Index moves of a batch plan (csrc/cpu/gather.c) ----
 * gather_pairs: out[p] = concat(frames[clip][i], frames[clip][j]) along
 *   channels, each frame frame_elems values, clips of frames_per_clip frames.
 * gather_steps: out[s][t] = feat[seq_pair[s][t]] (dim values), 0 where -1.
 * scatter_steps: d_feat[p] = sum of d_steps[s][t] over the steps that use p
 *   (overwrites d_feat; summed in a fixed order: deterministic). */
#define RC_DECLARE_GATHER(real, sfx)                                           \
    void rc_gather_pairs_##sfx(int n_pairs, const int *pair_clip,             \
                               const int *pair_i, const int *pair_j,          \
                               int frames_per_clip, size_t frame_elems,       \
                               const real *frames, real *out);                \
    void rc_gather_steps_##sfx(int n_seq, int max_steps, const int *seq_pair, \
                               int dim, const real *feat, real *out);         \
    void rc_scatter_steps_##sfx(int n_seq, int max_steps,                     \
                                const int *seq_pair, int dim,                 \
                                const real *d_steps, int n_pairs,             \
                                real *d_feat);
RC_DECLARE_GATHER(float, f32)
RC_DECLARE_GATHER(double, f64)

/* ---- AdamW and gradient norm (float32 only) ---- */
/* Sum of squares of g, accumulated in double, deterministic. */
double rc_sum_squares_f32(size_t n, const float *g);
void rc_scale_f32(size_t n, float *g, float alpha);
/* y += alpha x (a second loss term's gradient added to the first's). */
void rc_axpy_f32(size_t n, float alpha, const float *x, float *y);
/* One AdamW update of n parameters; bias-corrections c1 = 1-beta1^t,
 * c2 = 1-beta2^t are passed in. Decoupled weight decay: w -= lr*wd*w. */
void rc_adamw_update_f32(size_t n, float *w, const float *g, float *m,
                         float *v, float lr, float beta1, float beta2,
                         float eps, float weight_decay, float c1, float c2);

/* ---- Backend interface (float32) ---- */

/* Arithmetic of a GPU run (train.precision, rc_cuda_options). On the CPU
 * only bf16 changes anything: oneDNN's convolutions then take bfloat16
 * operands where the CPU has native bfloat16 (cpu_onednn/onednn.h). */
typedef enum {
    RC_PRECISION_TF32 = 0, /* cuDNN and cuBLAS may round inputs to TF32 */
    RC_PRECISION_FP32,     /* strict float32 */
    RC_PRECISION_BF16      /* bfloat16 convolution activations and weights,
                              float32 accumulation, master weights,
                              gradients and optimizer state */
} rc_precision;

/* Fused ops a backend may offer (rc_backend.fused). */
typedef struct {
    /* y = max(conv(x) + b, 0) */
    void (*conv2d_relu_forward)(const rc_conv_shape *s, const float *x,
                                const float *w, const float *b, float *y,
                                float *ws);
    /* backward of conv2d_relu_forward from its output y; dx nullable */
    void (*conv2d_relu_backward)(const rc_conv_shape *s, const float *x,
                                 const float *w, const float *y,
                                 const float *dy, float *dx, float *dw,
                                 float *db, float *ws);
} rc_backend_fused;

typedef struct rc_backend {
    const char *name;
    void *(*alloc)(size_t bytes);              /* zero-filled */
    void (*free)(void *p);
    void (*to_device)(void *dst, const void *src, size_t bytes);
    void (*to_host)(void *dst, const void *src, size_t bytes);
    void (*synchronize)(void);

    size_t (*conv2d_workspace)(const rc_conv_shape *s);
    void (*conv2d_forward)(const rc_conv_shape *s, const float *x,
                           const float *w, const float *b, float *y, float *ws);
    void (*conv2d_backward)(const rc_conv_shape *s, const float *x,
                            const float *w, const float *dy, float *dx,
                            float *dw, float *db, float *ws);
    void (*relu_forward)(size_t n, const float *x, float *y);
    void (*relu_backward)(size_t n, const float *y, const float *dy, float *dx);
    void (*gap_forward)(int n, int c, int hw, const float *x, float *y);
    void (*gap_backward)(int n, int c, int hw, const float *dy, float *dx);
    void (*linear_forward)(int n, int in, int out, const float *x,
                           const float *w, const float *b, float *y);
    void (*linear_backward)(int n, int in, int out, const float *x,
                            const float *w, const float *dy, float *dx,
                            float *dw, float *db);
    size_t (*lstm_cache_size)(const rc_lstm_shape *s);
    void (*lstm_forward)(const rc_lstm_shape *s, const float *x,
                         const float *w_ih, const float *w_hh, const float *b,
                         float *h_last, float *cache);
    void (*lstm_backward)(const rc_lstm_shape *s, const float *x,
                          const float *w_ih, const float *w_hh,
                          const float *cache, const float *dh_last, float *dx,
                          float *dw_ih, float *dw_hh, float *db);
    double (*hinge_loss)(int n_emb, int dim, const float *emb, int n_pairs,
                         const rc_loss_pair *pairs, const rc_hinge_params *p,
                         float *d_emb);
    /* the action term (rc_warp_loss_f32); first, last host memory */
    double (*warp_loss)(const rc_warp_shape *s, const float *frames,
                        const int *first, const int *last, const float *theta,
                        float *d_theta);
    double (*sum_squares)(size_t n, const float *g);
    void (*scale)(size_t n, float *g, float alpha);
    void (*axpy)(size_t n, float alpha, const float *x, float *y);
    void (*adamw_update)(size_t n, float *w, const float *g, float *m, float *v,
                         float lr, float beta1, float beta2, float eps,
                         float weight_decay, float c1, float c2);
    /* Index moves of the deduplicated batch (see sampler.h rc_batch_plan);
     * index arrays are host memory. */
    void (*gather_pairs)(int n_pairs, const int *pair_clip, const int *pair_i,
                         const int *pair_j, int frames_per_clip,
                         size_t frame_elems, const float *frames, float *out);
    void (*gather_steps)(int n_seq, int max_steps, const int *seq_pair,
                         int dim, const float *feat, float *out);
    void (*scatter_steps)(int n_seq, int max_steps, const int *seq_pair,
                          int dim, const float *d_steps, int n_pairs,
                          float *d_feat);
    /* Optional: fused versions of conv2d + relu sharing conv2d_workspace
     * (NULL: the model runs them one after the other). A wrapper that
     * replaces the conv2d entries must replace or clear this too. */
    const rc_backend_fused *fused;
} rc_backend;

/* The CPU reference backend (OpenBLAS + OpenMP). */
const rc_backend *rc_backend_cpu(void);


#ifdef __cplusplus
}
#endif
#endif
