/* cuda_backend.cu: the rc_backend on one GPU.
 *
 *  - Convolutions through cuDNN's legacy API: descriptors and the algorithm
 *    of each direction chosen once per shape (cudnnFind*, deterministic
 *    algorithms only for the backward passes) and cached; workspace from the
 *    backend's single scratch arena. TF32 by default, strict float32 or
 *    bfloat16 activations as options (rc_cuda_configure).
 *  - GEMMs through cuBLAS (row-major wrapper), everything else through the
 *    portable custom kernels of rc_kernels.cuh driven by rc_ops.cuh, which CI
 *    runs on the CPU emulator.
 *  - All work on one compute stream; index tables travel through a ring of
 *    page-locked staging slots, so a small upload never waits for the GPU.
 */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recompose/common.h"
#include "recompose/cuda_backend.h"
#include "algo_list.h"

/* ---- checked calls ----------------------------------------------------------- */

static void rc_cuda_die(const char *call, const char *file, int line,
                        const char *what) {
    fprintf(stderr, "recompose: %s:%d: %s failed: %s\n", file, line, call, what);
    fflush(stderr);
    abort();
}

#define RC_CU(call)                                                         \
    do {                                                                    \
        cudaError_t e_ = (call);                                            \
        if (e_ != cudaSuccess)                                              \
            rc_cuda_die(#call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
    } while (0)
#define RC_DNN(call)                                                         \
    do {                                                                     \
        cudnnStatus_t e_ = (call);                                           \
        if (e_ != CUDNN_STATUS_SUCCESS)                                      \
            rc_cuda_die(#call, __FILE__, __LINE__, cudnnGetErrorString(e_)); \
    } while (0)
#define RC_BLAS(call)                                                          \
    do {                                                                       \
        cublasStatus_t e_ = (call);                                            \
        if (e_ != CUBLAS_STATUS_SUCCESS)                                       \
            rc_cuda_die(#call, __FILE__, __LINE__, cublasGetStatusString(e_)); \
    } while (0)

/* ---- backend state -------------------------------------------------------------- */

#define STAGING_SLOTS 8

typedef struct conv_entry {
    struct conv_entry *next;
    rc_conv_shape s;
    int key_mode; /* the rc_precision asked for: the cache key */
    int mode;     /* the one it runs in: key_mode, or TF32 for a layer
                     without a deterministic bfloat16 backward algorithm */
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    /* each pass's candidates, best first, and the one in use (algo_list.h) */
    rc_algo_list fwd, bwd_data, bwd_filter;
    size_t ws_bytes; /* room for any candidate still possible */
} conv_entry;

typedef struct {
    char *host;
    size_t cap, used;
    cudaEvent_t done;
    int in_flight;
} staging_slot;

static struct {
    int ready;
    rc_cuda_options opt;
    cudaStream_t stream, copy_stream;
    cublasHandle_t blas;
    void *blas_ws; /* cuBLAS's one workspace (BLAS_WORKSPACE bytes) */
    cudnnHandle_t dnn;
    char name[400];
    /* scratch arena: chunks never move during an op */
    char *chunk[16];
    size_t chunk_cap[16], chunk_used[16];
    int n_chunks;
    staging_slot staging[STAGING_SLOTS];
    int cur_slot;
    conv_entry *convs;
    /* graph capture */
    int capturing;
    double *scalars_host; /* pinned */
    int n_scalars;
    /* uploads under capture: pinned buffers the graph's copy nodes read at
     * every replay, so they belong to the graph and are never reused */
    void *capture_bufs[512];
    int n_capture_bufs;
} G;

static void staging_begin_op(void);

/* ---- scratch arena ------------------------------------------------------------- */

/* Replace several chunks by one of their total size, so that the arena
 * settles at the size a step needs. Not while a captured graph lives: its
 * kernels hold addresses inside the current chunks. */
static int graphs_alive;

static void arena_consolidate(void) {
    if (G.n_chunks <= 1 || graphs_alive > 0) return;
    size_t total = 0;
    for (int i = 0; i < G.n_chunks; i++) total += G.chunk_cap[i];
    RC_CU(cudaStreamSynchronize(G.stream));
    for (int i = 0; i < G.n_chunks; i++) RC_CU(cudaFree(G.chunk[i]));
    RC_CU(cudaMalloc((void **)&G.chunk[0], total));
    G.chunk_cap[0] = total;
    G.n_chunks = 1;
}

static void rc_dev_scratch_reset(void) {
    staging_begin_op();
    if (!G.capturing) arena_consolidate();
    for (int i = 0; i < G.n_chunks; i++) G.chunk_used[i] = 0;
}

static void *rc_dev_scratch(size_t bytes) {
    bytes = (bytes + 255) & ~(size_t)255;
    for (int i = 0; i < G.n_chunks; i++)
        if (G.chunk_cap[i] - G.chunk_used[i] >= bytes) {
            void *p = G.chunk[i] + G.chunk_used[i];
            G.chunk_used[i] += bytes;
            return p;
        }
    if (G.capturing)
        rc_cuda_die("scratch arena growth", __FILE__, __LINE__,
                    "the arena grew during graph capture; run the step once "
                    "before capturing");
    if (G.n_chunks == 16)
        rc_cuda_die("rc_dev_scratch", __FILE__, __LINE__,
                    "more than 16 scratch chunks in one op");
    size_t cap = bytes < ((size_t)1 << 24) ? ((size_t)1 << 24) : bytes;
    int i = G.n_chunks++;
    RC_CU(cudaMalloc((void **)&G.chunk[i], cap));
    G.chunk_cap[i] = cap;
    G.chunk_used[i] = bytes;
    return G.chunk[i];
}

/* ---- staging ring for host -> device index tables ------------------------------ */

static void staging_begin_op(void) {
    if (G.capturing) return; /* uploads go to the graph's own buffers */
    staging_slot *s = &G.staging[G.cur_slot];
    if (s->in_flight) {
        RC_CU(cudaEventRecord(s->done, G.stream));
        s->in_flight = 0;
    }
    G.cur_slot = (G.cur_slot + 1) % STAGING_SLOTS;
    s = &G.staging[G.cur_slot];
    /* the slot's previous copies were queued STAGING_SLOTS ops ago; only
     * wait if the GPU is that far behind */
    if (!G.capturing) RC_CU(cudaEventSynchronize(s->done));
    s->used = 0;
}

static void *rc_dev_upload(const void *host, size_t bytes) {
    if (G.capturing) {
        if (G.n_capture_bufs == 512)
            rc_cuda_die("upload under capture", __FILE__, __LINE__,
                        "more than 512 index uploads in one captured graph");
        void *pinned;
        RC_CU(cudaHostAlloc(&pinned, bytes ? bytes : 1, cudaHostAllocDefault));
        memcpy(pinned, host, bytes);
        G.capture_bufs[G.n_capture_bufs++] = pinned;
        void *dev = rc_dev_scratch(bytes);
        RC_CU(cudaMemcpyAsync(dev, pinned, bytes, cudaMemcpyHostToDevice, G.stream));
        return dev;
    }
    staging_slot *s = &G.staging[G.cur_slot];
    size_t need = (bytes + 255) & ~(size_t)255;
    if (s->used + need > s->cap) {
        if (G.capturing)
            rc_cuda_die("staging growth", __FILE__, __LINE__,
                        "the staging buffer grew during graph capture");
        /* earlier uploads of this op may still read the old buffer */
        RC_CU(cudaStreamSynchronize(G.stream));
        size_t cap = (s->used + need) * 2 + 4096;
        char *fresh;
        RC_CU(cudaHostAlloc((void **)&fresh, cap, cudaHostAllocDefault));
        if (s->host) RC_CU(cudaFreeHost(s->host));
        s->host = fresh;
        s->cap = cap;
        s->used = 0;
    }
    char *src = s->host + s->used;
    s->used += need;
    memcpy(src, host, bytes);
    void *dev = rc_dev_scratch(bytes);
    RC_CU(cudaMemcpyAsync(dev, src, bytes, cudaMemcpyHostToDevice, G.stream));
    s->in_flight = 1;
    return dev;
}

static void rc_dev_memset0(void *dev, size_t bytes) {
    if (bytes) RC_CU(cudaMemsetAsync(dev, 0, bytes, G.stream));
}

static void rc_dev_download(void *host, const void *dev, size_t bytes) {
    if (G.capturing) {
        /* the value exists only after a replay: rc_cuda_graph_scalar */
        if (bytes != sizeof(double) || G.n_scalars >= 64)
            rc_cuda_die("download under capture", __FILE__, __LINE__,
                        "only up to 64 double scalars can leave a graph");
        RC_CU(cudaMemcpyAsync(G.scalars_host + G.n_scalars++, dev, bytes,
                              cudaMemcpyDeviceToHost, G.stream));
        memset(host, 0, bytes);
        return;
    }
    RC_CU(cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost, G.stream));
    RC_CU(cudaStreamSynchronize(G.stream));
}

/* Row-major C[M][N] = alpha op(A) op(B) + beta C: cuBLAS is column-major, so
 * compute C^T = op(B)^T op(A)^T, i.e. swap the operands. */
static void rc_dev_gemm(int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.0f)
            RC_CU(cudaMemset2DAsync(C, (size_t)ldc * sizeof(float), 0,
                                    (size_t)N * sizeof(float), (size_t)M, G.stream));
        return;
    }
    RC_BLAS(cublasSgemm(G.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                        ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                        A, lda, &beta, C, ldc));
}

#define RC_THREADS 256
#define RC_MAX_BLOCKS 4096
#define RC_LAUNCH(kernel, blocks, threads, ...)                             \
    do {                                                                    \
        kernel<<<(blocks), (threads), 0, G.stream>>>(__VA_ARGS__);          \
        cudaError_t e_ = cudaGetLastError();                                \
        if (e_ != cudaSuccess)                                              \
            rc_cuda_die(#kernel "<<<>>>", __FILE__, __LINE__,               \
                        cudaGetErrorString(e_));                            \
    } while (0)

#include "rc_ops.cuh"

/* ---- bfloat16 conversion ---------------------------------------------------------- */

__global__ static void k_to_bf16(size_t n, const float *x, __nv_bfloat16 *y) {
    RC_GRID_LOOP(i, n) y[i] = __float2bfloat16(x[i]);
}
__global__ static void k_from_bf16(size_t n, const __nv_bfloat16 *x, float *y) {
    RC_GRID_LOOP(i, n) y[i] = __bfloat162float(x[i]);
}

static __nv_bfloat16 *to_bf16(const float *x, size_t n) {
    __nv_bfloat16 *y = (__nv_bfloat16 *)rc_dev_scratch(n * sizeof(__nv_bfloat16));
    if (n) RC_LAUNCH(k_to_bf16, rc_blocks_for(n), RC_THREADS, n, x, y);
    return y;
}
static void from_bf16(const __nv_bfloat16 *x, size_t n, float *y) {
    if (n) RC_LAUNCH(k_from_bf16, rc_blocks_for(n), RC_THREADS, n, x, y);
}

/* ---- cuDNN convolutions --------------------------------------------------------- */

static int conv_mode(void) { return (int)G.opt.precision; }

/* The math type set on the descriptor before cudnnFind*. cudnnFind* also
 * tries CUDNN_DEFAULT_MATH, which permits TF32 on Ampere and later, so the
 * results are filtered as well (math_allowed). */
static cudnnMathType_t conv_math(int mode) {
    return mode == RC_PRECISION_FP32 ? CUDNN_FMA_MATH          /* strict */
           : mode == RC_PRECISION_BF16 ? CUDNN_TENSOR_OP_MATH /* data bf16 */
                       : CUDNN_DEFAULT_MATH;         /* TF32 allowed */
}

static int math_allowed(cudnnMathType_t m) {
    /* strict float32: FMA only (DEFAULT_MATH may round inputs to TF32) */
    if (conv_mode() == RC_PRECISION_FP32) return m == CUDNN_FMA_MATH;
    /* never let cuDNN down-convert float32 tensors to half precision:
     * small backward gradients would underflow */
    return m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

static size_t max_workspace(void) { return (size_t)1 << 30; }

/* cuBLAS's workspace: 32 MiB, what NVIDIA advises for Hopper (4 MiB would
 * do before it) */
#define BLAS_WORKSPACE ((size_t)32 << 20)

/* cudnnFind*'s or cudnnGet*_v7's results (ranked: by time, or by cuDNN's
 * heuristics) that ran, fit the workspace cap, use an allowed math type and,
 * for the backward passes (need_det), are deterministic, best first. The
 * three Perf structs of cuDNN share these fields. */
template <typename Perf>
static void collect_candidates(const Perf *p, int n, int need_det, rc_algo_list *l) {
    rc_algo_list_clear(l);
    for (int i = 0; i < n; i++) {
        if (p[i].status != CUDNN_STATUS_SUCCESS || p[i].memory > max_workspace() ||
            !math_allowed(p[i].mathType) ||
            (need_det && p[i].determinism != CUDNN_DETERMINISTIC))
            continue;
        rc_algo_list_add(l, (int)p[i].algo, (int)p[i].mathType, p[i].memory);
    }
}

/* The workspace of each pass's current candidate (a fallback takes more
 * when its candidate needs it): not the largest of all candidates, which
 * can be an FFT algorithm's gigabyte. */
static size_t current_ws(const rc_algo_list *l) {
    return l->current < l->n ? l->ws[l->current] : 0;
}

static void update_workspace(conv_entry *e) {
    size_t a = current_ws(&e->fwd), b = current_ws(&e->bwd_data),
           c = current_ws(&e->bwd_filter);
    e->ws_bytes = a > b ? (a > c ? a : c) : (b > c ? b : c);
}

/* Same layer, other batch size: every field but n equal. */
static int same_but_n(const rc_conv_shape *a, const rc_conv_shape *b) {
    rc_conv_shape t = *b;
    t.n = a->n;
    return memcmp(a, &t, sizeof t) == 0;
}

/* The workspace of one candidate at this entry's shape; 0 when cuDNN does
 * not support it here. */
enum conv_pass { PASS_FWD, PASS_DATA, PASS_FILTER };
static int pass_workspace(conv_entry *e, enum conv_pass pass, int algo, int math,
                          size_t *ws) {
    RC_DNN(cudnnSetConvolutionMathType(e->conv, (cudnnMathType_t)math));
    cudnnStatus_t st =
        pass == PASS_FWD
            ? cudnnGetConvolutionForwardWorkspaceSize(G.dnn, e->x, e->w, e->conv, e->y,
                                                      (cudnnConvolutionFwdAlgo_t)algo, ws)
        : pass == PASS_DATA
            ? cudnnGetConvolutionBackwardDataWorkspaceSize(
                  G.dnn, e->w, e->y, e->conv, e->x, (cudnnConvolutionBwdDataAlgo_t)algo, ws)
            : cudnnGetConvolutionBackwardFilterWorkspaceSize(
                  G.dnn, e->x, e->y, e->conv, e->w, (cudnnConvolutionBwdFilterAlgo_t)algo,
                  ws);
    return st == CUDNN_STATUS_SUCCESS && *ws <= max_workspace();
}

/* The candidates of a sibling's pass still possible, those cuDNN supports
 * at this batch size, with their workspace here. */
static void reuse_list(conv_entry *e, enum conv_pass pass, const rc_algo_list *from,
                       rc_algo_list *to) {
    rc_algo_list_clear(to);
    for (int i = from->current; i < from->n; i++) {
        size_t ws = 0;
        if (pass_workspace(e, pass, from->algo[i], from->math[i], &ws))
            rc_algo_list_add(to, from->algo[i], from->math[i], ws);
    }
}

/* Each candidate's workspace asked of cuDNN for this shape and its math
 * type (cudnnGet*WorkspaceSize), rather than the ranking's own figure,
 * which for the heuristics (cudnnGet*_v7) is an estimate; a candidate
 * cuDNN then does not support is dropped. */
static void ask_workspaces(conv_entry *e, enum conv_pass pass, rc_algo_list *l) {
    rc_algo_list ranked = *l;
    reuse_list(e, pass, &ranked, l);
}

/* Each pass's candidates for the entry's shape and mode: from cudnnFind*
 * (timed: with benchmark on; the stream is drained first so that queued
 * work does not skew the timings), else from cuDNN's heuristics
 * (cudnnGet*_v7: no timing, so the same choice in every run, and a resumed
 * run stays bitwise equal to a straight one). Returns the name of a pass
 * left without a candidate, or NULL. */
static const char *choose_algorithms(conv_entry *e, int benchmark) {
    enum { MAXALGO = 16 };
    int n = 0;
    cudnnConvolutionFwdAlgoPerf_t fp[MAXALGO];
    cudnnConvolutionBwdDataAlgoPerf_t dp[MAXALGO];
    cudnnConvolutionBwdFilterAlgoPerf_t wp[MAXALGO];
    if (benchmark) RC_CU(cudaStreamSynchronize(G.stream));
    RC_DNN(cudnnSetConvolutionMathType(e->conv, conv_math(e->mode)));
/* One pass: Find (timed) or Get_v7 (heuristics) over the same descriptors. */
#define RC_CHOOSE(FIND, GET, perf, det, list, ...)                                   \
    do {                                                                              \
        if (benchmark)                                                                \
            RC_DNN(FIND(G.dnn, __VA_ARGS__, MAXALGO, &n, perf));                      \
        else                                                                          \
            RC_DNN(GET(G.dnn, __VA_ARGS__, MAXALGO, &n, perf));                       \
        collect_candidates(perf, n, det, list);                                       \
    } while (0)
    RC_CHOOSE(cudnnFindConvolutionForwardAlgorithm, cudnnGetConvolutionForwardAlgorithm_v7,
              fp, 0, &e->fwd, e->x, e->w, e->conv, e->y);
    RC_CHOOSE(cudnnFindConvolutionBackwardDataAlgorithm,
              cudnnGetConvolutionBackwardDataAlgorithm_v7, dp, 1, &e->bwd_data, e->w, e->y,
              e->conv, e->x);
    RC_CHOOSE(cudnnFindConvolutionBackwardFilterAlgorithm,
              cudnnGetConvolutionBackwardFilterAlgorithm_v7, wp, 1, &e->bwd_filter, e->x,
              e->y, e->conv, e->w);
#undef RC_CHOOSE
    ask_workspaces(e, PASS_FWD, &e->fwd);
    ask_workspaces(e, PASS_DATA, &e->bwd_data);
    ask_workspaces(e, PASS_FILTER, &e->bwd_filter);
    RC_DNN(cudnnSetConvolutionMathType(e->conv, conv_math(e->mode)));
    update_workspace(e);
    if (!e->fwd.n) return "forward";
    if (!e->bwd_data.n) return "backward data";
    if (!e->bwd_filter.n) return "backward filter";
    return NULL;
}

/* Take the candidates chosen for the same layer at another batch size (the
 * deduplicated pair count changes every step: a Find per count would stall
 * training for seconds). Only the workspace sizes are asked for this n.
 * Returns 0 when a pass has no candidate left at this n. */
static int reuse_algorithms(conv_entry *e, const conv_entry *from) {
    if (from->mode != e->mode) return 0;
    reuse_list(e, PASS_FWD, &from->fwd, &e->fwd);
    reuse_list(e, PASS_DATA, &from->bwd_data, &e->bwd_data);
    reuse_list(e, PASS_FILTER, &from->bwd_filter, &e->bwd_filter);
    update_workspace(e);
    return e->fwd.n && e->bwd_data.n && e->bwd_filter.n;
}

/* The descriptors of a shape in a mode: bfloat16 tensors for bf16, float
 * otherwise. */
static void set_descriptors(conv_entry *e, int mode) {
    const rc_conv_shape *s = &e->s;
    e->mode = mode;
    cudnnDataType_t dt = mode == RC_PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    RC_DNN(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, dt, s->n, s->c_in,
                                      s->h_in, s->w_in));
    RC_DNN(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NCHW, dt, s->n, s->c_out,
                                      s->h_out, s->w_out));
    RC_DNN(cudnnSetFilter4dDescriptor(e->w, dt, CUDNN_TENSOR_NCHW, s->c_out,
                                      s->c_in, s->k, s->k));
    RC_DNN(cudnnSetConvolution2dDescriptor(e->conv, s->pad, s->pad, s->stride,
                                           s->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
    RC_DNN(cudnnSetConvolutionMathType(e->conv, conv_math(mode)));
}

static void describe_layer(const rc_conv_shape *s, char *buf, size_t cap) {
    snprintf(buf, cap, "convolution %dx%dx%d -> %d channels, kernel %d, stride %d, batch %d",
             s->c_in, s->h_in, s->w_in, s->c_out, s->k, s->stride, s->n);
}

/* Has another batch size of this layer already fallen back from bf16? */
static int layer_fell_back(const rc_conv_shape *s) {
    for (conv_entry *e = G.convs; e; e = e->next)
        if (e->key_mode == RC_PRECISION_BF16 && e->mode != e->key_mode &&
            same_but_n(&e->s, s))
            return 1;
    return 0;
}

/* The cached entry of a shape (most recently used first), made on a miss. */
static conv_entry *conv_lookup(const rc_conv_shape *s) {
    int mode = conv_mode();
    conv_entry **link = &G.convs, *sibling = NULL;
    for (conv_entry *e = G.convs; e; link = &e->next, e = e->next) {
        if (e->key_mode != mode) continue;
        if (memcmp(&e->s, s, sizeof *s) == 0) {
            *link = e->next; /* move to the front */
            e->next = G.convs;
            G.convs = e;
            return e;
        }
        if (!sibling && same_but_n(&e->s, s)) sibling = e;
    }
    if (G.capturing)
        rc_cuda_die("cudnnFind* under capture", __FILE__, __LINE__,
                    "a new convolution shape appeared during graph capture; "
                    "run the step once before capturing");
    conv_entry *e = (conv_entry *)rc_xcalloc(1, sizeof *e);
    e->s = *s;
    e->key_mode = mode;
    RC_DNN(cudnnCreateTensorDescriptor(&e->x));
    RC_DNN(cudnnCreateTensorDescriptor(&e->y));
    RC_DNN(cudnnCreateFilterDescriptor(&e->w));
    RC_DNN(cudnnCreateConvolutionDescriptor(&e->conv));
    /* With heuristics the precision is decided per shape, from cuDNN's
     * answer for it, so a resumed run takes the same one as a straight run
     * (whatever batch sizes came before). Timed choices are not
     * reproducible anyway: there a layer keeps its sibling's precision, so
     * its choice is reused rather than timed again for every batch size. */
    set_descriptors(e, G.opt.benchmark && sibling ? sibling->mode : mode);
    /* timed choices are made once per layer; heuristics are cheap and
     * deterministic per shape, so they are asked for each batch size */
    int benchmark = G.opt.benchmark;
    if (!benchmark || !sibling || !reuse_algorithms(e, sibling)) {
        const char *missing = choose_algorithms(e, benchmark);
        if (missing && e->mode == RC_PRECISION_BF16 && strcmp(missing, "forward") != 0) {
            /* cuDNN has no deterministic bf16 backward algorithm for this
             * shape: it runs in float32 (TF32), the rest stays in bf16;
             * said once per layer (the batch size changes every step) */
            if (!layer_fell_back(s)) {
                char layer[160];
                describe_layer(s, layer, sizeof layer);
                fprintf(stderr, "recompose: CUDA backend: no deterministic bfloat16 %s "
                                "algorithm for the %s: this layer runs in float32 "
                                "(TF32)\n", missing, layer);
            }
            set_descriptors(e, RC_PRECISION_TF32);
            missing = choose_algorithms(e, benchmark);
        }
        if (missing)
            rc_cuda_die(benchmark ? "cudnnFind*" : "cudnnGet*_v7", __FILE__, __LINE__,
                        strcmp(missing, "forward") == 0
                            ? "no usable forward algorithm for this shape and math mode"
                            : "no deterministic backward algorithm for this shape and "
                              "math mode");
    }
    e->next = G.convs;
    G.convs = e;
    return e;
}

static void conv_entry_free(conv_entry *e) {
    cudnnDestroyTensorDescriptor(e->x);
    cudnnDestroyTensorDescriptor(e->y);
    cudnnDestroyFilterDescriptor(e->w);
    cudnnDestroyConvolutionDescriptor(e->conv);
    free(e);
}

static size_t cuda_conv2d_workspace(const rc_conv_shape *s) {
    (void)s;
    return 0; /* the backend's own scratch arena serves cuDNN */
}

/* ---- running a pass, falling back to the next candidate ----------------------- */

/* The operands of one pass (device pointers; bfloat16 ones in bf16 mode). */
typedef struct {
    conv_entry *e;
    enum conv_pass pass;
    const void *a, *b; /* fwd: x, w; data: w, dy; filter: x, dy */
    void *out;         /* fwd: y; data: dx; filter: dw */
    void *ws;          /* ws_cap bytes of scratch */
    size_t ws_cap;
} pass_args;

static int run_pass(void *ctx, int algo, int math, size_t ws_bytes) {
    pass_args *p = (pass_args *)ctx;
    conv_entry *e = p->e;
    const float one = 1.0f, zero = 0.0f;
    /* a fallback candidate may need more room than the one chosen: a new
     * chunk of the arena (chunks never move during an op) */
    if (ws_bytes > p->ws_cap) {
        p->ws = rc_dev_scratch(ws_bytes);
        p->ws_cap = ws_bytes;
    }
    RC_DNN(cudnnSetConvolutionMathType(e->conv, (cudnnMathType_t)math));
    cudnnStatus_t st;
    switch (p->pass) {
    case PASS_FWD:
        st = cudnnConvolutionForward(G.dnn, &one, e->x, p->a, e->w, p->b, e->conv,
                                     (cudnnConvolutionFwdAlgo_t)algo, p->ws, ws_bytes,
                                     &zero, e->y, p->out);
        break;
    case PASS_DATA:
        st = cudnnConvolutionBackwardData(G.dnn, &one, e->w, p->a, e->y, p->b, e->conv,
                                          (cudnnConvolutionBwdDataAlgo_t)algo, p->ws,
                                          ws_bytes, &zero, e->x, p->out);
        break;
    default:
        st = cudnnConvolutionBackwardFilter(G.dnn, &one, e->x, p->a, e->y, p->b, e->conv,
                                            (cudnnConvolutionBwdFilterAlgo_t)algo, p->ws,
                                            ws_bytes, &zero, e->w, p->out);
    }
    return (int)st;
}

static const char *const pass_calls[] = {"cudnnConvolutionForward",
                                         "cudnnConvolutionBackwardData",
                                         "cudnnConvolutionBackwardFilter"};

static void note_failed_algo(void *ctx, const rc_algo_list *l, int failed, int status) {
    pass_args *p = (pass_args *)ctx;
    char layer[160];
    describe_layer(&p->e->s, layer, sizeof layer);
    fprintf(stderr, "recompose: CUDA backend: %s with algorithm %d failed (%s) for the "
                    "%s; %s\n",
            pass_calls[p->pass], l->algo[failed],
            cudnnGetErrorString((cudnnStatus_t)status), layer,
            failed + 1 < l->n ? "trying the next candidate" : "no candidate left");
}

/* Run a pass with its current candidate, falling back in rank order; the
 * one that ran stays current. All failing ends the run, naming the call. */
static void run_with_fallback(pass_args *p, rc_algo_list *l) {
    int status = rc_algo_list_run(l, run_pass, note_failed_algo, p);
    if (status == 0) update_workspace(p->e); /* the candidates now current */
    if (status != 0)
        rc_cuda_die(pass_calls[p->pass], __FILE__, __LINE__,
                    status > 0 ? cudnnGetErrorString((cudnnStatus_t)status)
                               : "every candidate algorithm failed");
}

static void cuda_conv2d_forward(const rc_conv_shape *s, const float *x,
                                const float *w, const float *b, float *y,
                                float *ws_unused) {
    (void)ws_unused;
    conv_entry *e = conv_lookup(s);
    rc_dev_scratch_reset();
    pass_args p = {e, PASS_FWD, x, w, y,
                   e->ws_bytes ? rc_dev_scratch(e->ws_bytes) : NULL, e->ws_bytes};
    if (e->mode == RC_PRECISION_BF16) {
        __nv_bfloat16 *y16 =
            (__nv_bfloat16 *)rc_dev_scratch(rc_conv_numel_y(s) * sizeof(__nv_bfloat16));
        p.a = to_bf16(x, rc_conv_numel_x(s));
        p.b = to_bf16(w, rc_conv_numel_w(s));
        p.out = y16;
        run_with_fallback(&p, &e->fwd);
        from_bf16(y16, rc_conv_numel_y(s), y);
    } else {
        run_with_fallback(&p, &e->fwd);
    }
    rc_op_bias_add(rc_conv_numel_y(s), s->c_out, s->h_out * s->w_out, b, y);
}

static void cuda_conv2d_backward(const rc_conv_shape *s, const float *x,
                                 const float *w, const float *dy, float *dx,
                                 float *dw, float *db, float *ws_unused) {
    (void)ws_unused;
    conv_entry *e = conv_lookup(s);
    rc_dev_scratch_reset();
    size_t cap = e->ws_bytes; /* the passes below may update e->ws_bytes */
    void *ws = cap ? rc_dev_scratch(cap) : NULL;
    rc_op_conv_bias_grad(s->n, s->c_out, s->h_out * s->w_out, dy, db);
    if (e->mode == RC_PRECISION_BF16) {
        __nv_bfloat16 *x16 = to_bf16(x, rc_conv_numel_x(s)), *dy16 = to_bf16(dy, rc_conv_numel_y(s));
        __nv_bfloat16 *g16 = (__nv_bfloat16 *)rc_dev_scratch(
            (rc_conv_numel_w(s) > rc_conv_numel_x(s) ? rc_conv_numel_w(s) : rc_conv_numel_x(s)) * sizeof(__nv_bfloat16));
        pass_args pf = {e, PASS_FILTER, x16, dy16, g16, ws, cap};
        run_with_fallback(&pf, &e->bwd_filter);
        from_bf16(g16, rc_conv_numel_w(s), dw);
        if (dx) {
            __nv_bfloat16 *dx16 =
                (__nv_bfloat16 *)rc_dev_scratch(rc_conv_numel_x(s) * sizeof(__nv_bfloat16));
            pass_args pd = {e, PASS_DATA, to_bf16(w, rc_conv_numel_w(s)), dy16, dx16, ws, cap};
            run_with_fallback(&pd, &e->bwd_data);
            from_bf16(dx16, rc_conv_numel_x(s), dx);
        }
        return;
    }
    pass_args pf = {e, PASS_FILTER, x, dy, dw, ws, cap};
    run_with_fallback(&pf, &e->bwd_filter);
    if (dx) {
        pass_args pd = {e, PASS_DATA, w, dy, dx, ws, cap};
        run_with_fallback(&pd, &e->bwd_data);
    }
}

/* ---- memory --------------------------------------------------------------------- */

static void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    RC_CU(cudaMalloc(&p, bytes ? bytes : 1));
    RC_CU(cudaMemsetAsync(p, 0, bytes ? bytes : 1, G.stream));
    RC_CU(cudaStreamSynchronize(G.stream));
    return p;
}

static void cuda_free(void *p) {
    if (!p) return;
    RC_CU(cudaStreamSynchronize(G.stream));
    RC_CU(cudaFree(p));
}

static void cuda_to_device(void *dst, const void *src, size_t bytes) {
    RC_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, G.stream));
    RC_CU(cudaStreamSynchronize(G.stream));
}

static void cuda_to_host(void *dst, const void *src, size_t bytes) {
    RC_CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, G.stream));
    RC_CU(cudaStreamSynchronize(G.stream));
}

static void cuda_synchronize(void) { RC_CU(cudaStreamSynchronize(G.stream)); }

static const rc_backend cuda_backend = {
    "cuda",
    cuda_alloc,
    cuda_free,
    cuda_to_device,
    cuda_to_host,
    cuda_synchronize,
    cuda_conv2d_workspace,
    cuda_conv2d_forward,
    cuda_conv2d_backward,
    RC_OPS_SHARED_ENTRIES,
    NULL, /* fused: cuDNN's conv and a ReLU kernel */
};

/* ---- setup ----------------------------------------------------------------------- */

static void apply_math_mode(void) {
    RC_BLAS(cublasSetMathMode(G.blas, G.opt.precision == RC_PRECISION_FP32 ? CUBLAS_PEDANTIC_MATH
                                                        : CUBLAS_TF32_TENSOR_OP_MATH));
    while (G.convs) { /* algorithms depend on the math mode */
        conv_entry *n = G.convs->next;
        conv_entry_free(G.convs);
        G.convs = n;
    }
}

extern "C" void rc_cuda_options_default(rc_cuda_options *o) {
    memset(o, 0, sizeof *o);
}

extern "C" int rc_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" error */
        return 0;
    }
    return n;
}

static int init_once(void) {
    if (G.ready) return 0;
    int n = rc_cuda_device_count();
    if (n <= 0)
        return rc_set_error("CUDA backend: no CUDA device (cudaGetDeviceCount "
                            "found none); use the CPU backend");
    if (G.opt.device < 0 || G.opt.device >= n)
        return rc_set_error("CUDA backend: device %d requested, %d present",
                            G.opt.device, n);
    RC_CU(cudaSetDevice(G.opt.device));
    cudaDeviceProp prop;
    RC_CU(cudaGetDeviceProperties(&prop, G.opt.device));
    snprintf(G.name, sizeof G.name, "%s (sm_%d%d, %d SMs)", prop.name, prop.major,
             prop.minor, prop.multiProcessorCount);
    RC_CU(cudaStreamCreateWithFlags(&G.stream, cudaStreamNonBlocking));
    RC_CU(cudaStreamCreateWithFlags(&G.copy_stream, cudaStreamNonBlocking));
    RC_BLAS(cublasCreate(&G.blas));
    RC_BLAS(cublasSetStream(G.blas, G.stream));
    /* One fixed workspace, set after the stream (cublasSetStream resets it
     * to the default pool): cuBLAS then chooses the same kernels in the
     * eager step and under graph capture, where it cannot take memory from
     * its pool, so a replayed step is bitwise the eager one. */
    RC_CU(cudaMalloc(&G.blas_ws, BLAS_WORKSPACE));
    RC_BLAS(cublasSetWorkspace(G.blas, G.blas_ws, BLAS_WORKSPACE));
    RC_DNN(cudnnCreate(&G.dnn));
    RC_DNN(cudnnSetStream(G.dnn, G.stream));
    for (int i = 0; i < STAGING_SLOTS; i++)
        RC_CU(cudaEventCreateWithFlags(&G.staging[i].done, cudaEventDisableTiming));
    RC_CU(cudaHostAlloc((void **)&G.scalars_host, 64 * sizeof(double),
                        cudaHostAllocDefault));
    apply_math_mode();
    G.ready = 1;
    return 0;
}

extern "C" int rc_cuda_configure(const rc_cuda_options *o) {
    if ((unsigned)o->precision > RC_PRECISION_BF16)
        return rc_set_error("CUDA backend: unknown precision %d", (int)o->precision);
    if (G.ready && o->device != G.opt.device)
        return rc_set_error("CUDA backend: the device cannot change after start");
    G.opt = *o;
    if (G.ready) apply_math_mode();
    return 0;
}

extern "C" const rc_backend *rc_backend_cuda(void) {
    if (init_once() != 0) return NULL;
    return &cuda_backend;
}

extern "C" void *rc_cuda_stream(void) {
    return init_once() == 0 ? (void *)G.stream : NULL;
}

extern "C" const char *rc_cuda_device_name(void) {
    return init_once() == 0 ? G.name : "none";
}

/* ---- input slots --------------------------------------------------------------------- */

struct rc_cuda_input {
    int n, next; /* slots, and the one the next submit copies to */
    size_t cap;  /* bytes of a host batch */
    int u8;      /* batches are bytes: raw[slot] is copied, dev[slot] made */
    float **dev;
    uint8_t **raw;
    size_t *len; /* bytes of the batch last submitted to each slot */
    cudaEvent_t *copied, *consumed;
};

extern "C" void *rc_cuda_pinned_alloc(size_t bytes) {
    if (init_once() != 0) return NULL;
    void *p = NULL;
    RC_CU(cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault));
    return p;
}

extern "C" void rc_cuda_pinned_free(void *p) {
    if (p) RC_CU(cudaFreeHost(p));
}

extern "C" rc_cuda_input *rc_cuda_input_create(size_t max_bytes, int slots, int u8) {
    if (init_once() != 0) return NULL;
    if (slots < 1) slots = 2;
    rc_cuda_input *in = (rc_cuda_input *)rc_xcalloc(1, sizeof *in);
    in->n = slots;
    in->cap = max_bytes;
    in->u8 = u8;
    in->dev = (float **)rc_xcalloc((size_t)slots, sizeof(float *));
    in->raw = (uint8_t **)rc_xcalloc((size_t)slots, sizeof(uint8_t *));
    in->len = (size_t *)rc_xcalloc((size_t)slots, sizeof(size_t));
    in->copied = (cudaEvent_t *)rc_xcalloc((size_t)slots, sizeof(cudaEvent_t));
    in->consumed = (cudaEvent_t *)rc_xcalloc((size_t)slots, sizeof(cudaEvent_t));
    size_t floats_bytes = (u8 ? max_bytes * sizeof(float) : max_bytes);
    for (int i = 0; i < slots; i++) {
        RC_CU(cudaMalloc((void **)&in->dev[i], floats_bytes ? floats_bytes : 1));
        if (u8) RC_CU(cudaMalloc((void **)&in->raw[i], max_bytes ? max_bytes : 1));
        RC_CU(cudaEventCreateWithFlags(&in->copied[i], cudaEventDisableTiming));
        RC_CU(cudaEventCreateWithFlags(&in->consumed[i], cudaEventDisableTiming));
    }
    return in;
}

extern "C" void rc_cuda_input_free(rc_cuda_input *in) {
    if (!in) return;
    RC_CU(cudaDeviceSynchronize());
    for (int i = 0; i < in->n; i++) {
        RC_CU(cudaFree(in->dev[i]));
        if (in->raw[i]) RC_CU(cudaFree(in->raw[i]));
        RC_CU(cudaEventDestroy(in->copied[i]));
        RC_CU(cudaEventDestroy(in->consumed[i]));
    }
    free(in->dev);
    free(in->raw);
    free(in->len);
    free(in->copied);
    free(in->consumed);
    free(in);
}

extern "C" int rc_cuda_input_submit(rc_cuda_input *in, const void *pinned,
                                    size_t bytes) {
    if (bytes > in->cap)
        return rc_set_error("CUDA input: batch of %zu bytes exceeds the %zu "
                            "bytes the slots were created for",
                            bytes, in->cap);
    int slot = in->next;
    in->next = (in->next + 1) % in->n;
    /* the copy may not overwrite a slot a queued step still reads */
    RC_CU(cudaStreamWaitEvent(G.copy_stream, in->consumed[slot], 0));
    void *dst = in->u8 ? (void *)in->raw[slot] : (void *)in->dev[slot];
    RC_CU(cudaMemcpyAsync(dst, pinned, bytes, cudaMemcpyHostToDevice, G.copy_stream));
    RC_CU(cudaEventRecord(in->copied[slot], G.copy_stream));
    in->len[slot] = bytes;
    return slot;
}

extern "C" const float *rc_cuda_input_acquire(rc_cuda_input *in, int slot) {
    RC_CU(cudaStreamWaitEvent(G.stream, in->copied[slot], 0));
    /* bytes become floats on the compute stream, after the copy: the
     * step's first kernel */
    if (in->u8) rc_op_u8_to_f32(in->len[slot], in->raw[slot], in->dev[slot]);
    return in->dev[slot];
}

extern "C" void rc_cuda_input_release(rc_cuda_input *in, int slot) {
    RC_CU(cudaEventRecord(in->consumed[slot], G.stream));
}

extern "C" void rc_cuda_input_wait_host_free(rc_cuda_input *in, int slot) {
    RC_CU(cudaEventSynchronize(in->copied[slot]));
}

/* ---- graphs ------------------------------------------------------------------------- */

struct rc_cuda_graph {
    void **pinned;
    int n_pinned;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    int n_scalars;
    double scalars[64];
};

extern "C" rc_cuda_graph *rc_cuda_graph_capture(void (*fn)(void *ctx), void *ctx) {
    if (init_once() != 0) return NULL;
    arena_consolidate();
    RC_CU(cudaStreamSynchronize(G.stream));
    rc_cuda_graph *g = (rc_cuda_graph *)rc_xcalloc(1, sizeof *g);
    graphs_alive++;
    G.capturing = 1;
    G.n_scalars = 0;
    G.n_capture_bufs = 0;
    /* relaxed: the pinned upload buffers are allocated while capturing */
    RC_CU(cudaStreamBeginCapture(G.stream, cudaStreamCaptureModeRelaxed));
    fn(ctx);
    RC_CU(cudaStreamEndCapture(G.stream, &g->graph));
    G.capturing = 0;
    g->n_pinned = G.n_capture_bufs;
    g->pinned = (void **)rc_xcalloc((size_t)g->n_pinned + 1, sizeof(void *));
    memcpy(g->pinned, G.capture_bufs, (size_t)g->n_pinned * sizeof(void *));
    g->n_scalars = G.n_scalars;
    RC_CU(cudaGraphInstantiate(&g->exec, g->graph, 0));
    return g;
}

extern "C" int rc_cuda_graph_launch(rc_cuda_graph *g) {
    RC_CU(cudaGraphLaunch(g->exec, G.stream));
    RC_CU(cudaStreamSynchronize(G.stream));
    memcpy(g->scalars, G.scalars_host, (size_t)g->n_scalars * sizeof(double));
    return 0;
}

extern "C" double rc_cuda_graph_scalar(const rc_cuda_graph *g, int i) {
    return i >= 0 && i < g->n_scalars ? g->scalars[i] : 0.0;
}

extern "C" int rc_cuda_graph_n_scalars(const rc_cuda_graph *g) { return g->n_scalars; }

extern "C" void rc_cuda_graph_free(rc_cuda_graph *g) {
    if (!g) return;
    RC_CU(cudaGraphExecDestroy(g->exec));
    RC_CU(cudaGraphDestroy(g->graph));
    for (int i = 0; i < g->n_pinned; i++) RC_CU(cudaFreeHost(g->pinned[i]));
    free(g->pinned);
    free(g);
    graphs_alive--;
}

/* ---- benchmark helpers --------------------------------------------------------------- */

extern "C" double rc_cuda_measure_copy_gbs(size_t bytes) {
    if (init_once() != 0) return 0.0;
    void *a, *b;
    RC_CU(cudaMalloc(&a, bytes));
    RC_CU(cudaMalloc(&b, bytes));
    cudaEvent_t t0, t1;
    RC_CU(cudaEventCreate(&t0));
    RC_CU(cudaEventCreate(&t1));
    RC_CU(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, G.stream));
    const int reps = 20;
    RC_CU(cudaEventRecord(t0, G.stream));
    for (int i = 0; i < reps; i++)
        RC_CU(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, G.stream));
    RC_CU(cudaEventRecord(t1, G.stream));
    RC_CU(cudaEventSynchronize(t1));
    float ms = 0;
    RC_CU(cudaEventElapsedTime(&ms, t0, t1));
    RC_CU(cudaEventDestroy(t0));
    RC_CU(cudaEventDestroy(t1));
    RC_CU(cudaFree(a));
    RC_CU(cudaFree(b));
    return 2.0 * bytes * reps / (ms * 1e-3) / 1e9;
}

/* x[i] = a value in [-1, 1) hashed from i: GEMM inputs a tensor core
 * really multiplies (zeros can run faster than data on some parts). */
__global__ void rc_k_fill_hashed(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u;
        h ^= h >> 16;
        h *= 2246822519u;
        h ^= h >> 13;
        x[i] = (float)(h >> 8) * (1.0f / 8388608.0f) - 1.0f;
    }
}

extern "C" double rc_cuda_measure_gemm_tflops(int n) {
    if (init_once() != 0) return 0.0;
    size_t bytes = (size_t)n * n * sizeof(float);
    float *a, *b, *c;
    RC_CU(cudaMalloc((void **)&a, bytes));
    RC_CU(cudaMalloc((void **)&b, bytes));
    RC_CU(cudaMalloc((void **)&c, bytes));
    size_t count = (size_t)n * n;
    rc_k_fill_hashed<<<1024, 256, 0, G.stream>>>(a, count);
    rc_k_fill_hashed<<<1024, 256, 0, G.stream>>>(b, count);
    RC_CU(cudaGetLastError());
    cudaEvent_t t0, t1;
    RC_CU(cudaEventCreate(&t0));
    RC_CU(cudaEventCreate(&t1));
    rc_dev_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    const int reps = 10;
    RC_CU(cudaEventRecord(t0, G.stream));
    for (int i = 0; i < reps; i++) rc_dev_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    RC_CU(cudaEventRecord(t1, G.stream));
    RC_CU(cudaEventSynchronize(t1));
    float ms = 0;
    RC_CU(cudaEventElapsedTime(&ms, t0, t1));
    RC_CU(cudaEventDestroy(t0));
    RC_CU(cudaEventDestroy(t1));
    RC_CU(cudaFree(a));
    RC_CU(cudaFree(b));
    RC_CU(cudaFree(c));
    return 2.0 * n * (double)n * n * reps / (ms * 1e-3) / 1e12;
}
