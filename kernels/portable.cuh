/* portable.cuh: the small dialect the custom kernels are written in, so that
 * one kernel body compiles as CUDA under nvcc and as C under gcc on top of
 * the fiber emulator (kernels/emu/emu.h).
 *
 * A kernel takes one argument struct by value:
 *     RC_KERNEL(rc_k_name, rc_name_args) { ... a.field ... }
 * Inside it: threadIdx/blockIdx/blockDim/gridDim (.x only: all launches are
 * 1-D), RC_SYNC() for __syncthreads, RC_SHARED(type, name, n) for a
 * __shared__ array, RC_SHFL_DOWN(v, delta) for a full-warp shuffle of a
 * float or double. Device helpers are RC_DEV functions.
 * The launch macro RC_LAUNCH is defined by the including file (CUDA: <<<>>>
 * on the backend's stream with a check; emulation: rc_emu_launch).
 */
#ifndef RC_KERNELS_PORTABLE_CUH
#define RC_KERNELS_PORTABLE_CUH

#include <stddef.h>
#include <stdint.h>

#include "shared_math.h"

#define RC_WARP 32

#ifdef __CUDACC__

#define RC_DEV static __device__ __forceinline__
#define RC_SYNC() __syncthreads()
#define RC_SHARED(type, name, n) __shared__ type name[n]
#define RC_SHFL_DOWN(v, delta) __shfl_down_sync(0xffffffffu, (v), (delta))
#define RC_KERNEL(name, T) static __global__ void name(const T a)

#else /* CPU emulation */

#include "emu/emu.h"

#define threadIdx rc_emu_thread_idx
#define blockIdx rc_emu_block_idx
#define blockDim rc_emu_block_dim
#define gridDim rc_emu_grid_dim
#define RC_DEV static inline
#define RC_SYNC() rc_emu_syncthreads()
#define RC_SHARED(type, name, n) \
    type *name = (type *)rc_emu_shared(sizeof(type) * (size_t)(n))
#define RC_SHFL_DOWN(v, delta) rc_emu_shfl_down((v), (delta))
/* The emulator calls name##_emu(&args) in every fiber. */
#define RC_KERNEL(name, T)                                         \
    static void name(const T a);                                   \
    static __attribute__((unused)) void name##_emu(const void *p) { \
        name(*(const T *)p);                                       \
    }                                                              \
    static void name(const T a)

#endif

/* Grid-stride loop over [0, n). */
#define RC_GRID_LOOP(i, n)                                                   \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)blockDim.x * gridDim.x)

#endif
