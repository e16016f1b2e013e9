/* emu_backend.h: the CUDA backend's custom kernels and op drivers run on the
 * CPU through the fiber emulator (emu.h), as a complete rc_backend.
 *
 * Everything the CUDA backend computes with its own kernels (LSTM, loss,
 * AdamW, norms, index moves, pooling, biases) is the same source here; the
 * GEMMs are OpenBLAS instead of cuBLAS and the convolutions are the CPU
 * reference instead of cuDNN (with the bias and bias gradient done by the
 * backend's own kernels, as on the GPU). Tests compare it with the CPU
 * backend op by op and for whole training steps. Slow: for small shapes.
 */
#ifndef RC_EMU_BACKEND_H
#define RC_EMU_BACKEND_H

#include "recompose/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

const rc_backend *rc_backend_emu(void);

/* The bias helpers the CUDA backend wraps around cuDNN, for direct tests. */
void rc_emu_conv_bias_add(int n, int c, int hw, const float *b, float *y);
void rc_emu_conv_bias_grad(int n, int c, int hw, const float *dy, float *db);
/* The input stage's byte-to-float kernel (rc_k_u8_to_f32). */
void rc_emu_u8_to_f32(size_t n, const unsigned char *x, float *y);

#ifdef __cplusplus
}
#endif
#endif
