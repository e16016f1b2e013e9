/* action.h: the action head's outputs as warps (SPEC section 4, "The code
 * acts on images"; enum rc_action_kind in sampler.h).
 *
 * The head maps a sequence's embedding linearly to six numbers r; the warp
 * the action term applies (ops.h, rc_warp_shape) is A = r (affine) or the
 * top two rows of expm([r0 r1 r2; r3 r4 r5; 0 0 0]) (expm). These few
 * numbers per sequence are mapped on the host in float64, whatever the
 * backend: the map is tiny next to the warp it feeds.
 */
#ifndef RECOMPOSE_ACTION_H
#define RECOMPOSE_ACTION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Outputs of the head: 6, or 2 G^2 for a field (RC_ACTION_GRID). */
static inline int rc_action_params(int kind, int grid) {
    return kind == 2 /* RC_ACTION_GRID */ ? 2 * grid * grid : 6;
}

/* The head's bias at initialisation (with a zero weight, every sequence
 * starts at the identity warp): (1 0 0 0 1 0) for affine, 0 for expm and
 * for a field; n_params values. */
void rc_action_identity(int kind, int n_params, float *out);

/* The affine map closest (least squares over the field's nodes) to the
 * warp theta of a head's kind: theta itself for affine and expm warps. */
void rc_action_affine_fit(int kind, int grid, const float *theta,
                          double out[6]);

/* theta [n][6] = the warps of the head outputs raw [n][6] (expm; the other
 * kinds use the outputs as they are). */
void rc_action_warps(int kind, int n, const float *raw, float *theta);

/* d_raw [n][6] = dL/draw from dL/dtheta at the same raw (the adjoint of the
 * map's derivative: for expm, the Frechet derivative of expm at M^T
 * applied to dL/dA). */
void rc_action_warps_backward(int kind, int n, const float *raw,
                              const float *d_theta, float *d_raw);

/* expm of an n x n row-major matrix (n <= 6), float64: scaling and
 * squaring over a Taylor series. */
void rc_expm(int n, const double *a, double *out);

#ifdef __cplusplus
}
#endif
#endif
