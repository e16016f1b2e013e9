/* config.c: the run configuration, read from INI files (inih) and --set.
 *
 * Every key lives in one table (config_keys below) with its type, range,
 * default and help text. Everything else is driven by that table: the
 * defaults are the table's default strings parsed by the same code as a file
 * (so a default can never be out of its own range), rc_config_to_ini() writes
 * the table back out, rc_config_describe() prints it, and rc_config_validate()
 * re-checks every field against it before the cross-field rules.
 *
 * Line numbers: the Debian inih is built without INI_HANDLER_LINENO, so the
 * handler is not told its line. ini_parse_stream() returns the line of the
 * first error, which is the line we report. We read the file through a
 * counting fgets-style reader (inih calls it exactly once per line it
 * counts) so that the handler also knows its line: that tells a handler error
 * from an inih syntax error on an earlier line, and lets "duplicate key"
 * name the line of the first assignment.
 */
#include "recompose/config.h"
#include "recompose/backend.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "recompose/common.h"

/* ---- the key table ------------------------------------------------------- */

typedef enum {
    KEY_INT,
    KEY_UINT64,
    KEY_FLOAT,
    KEY_BOOL,
    KEY_ENUM,      /* one of a fixed list of words */
    KEY_INT_LIST,  /* comma-separated ints, 1..RC_MAX_CONV entries */
    KEY_STRING,    /* free text (a path) in char[text_size] */
} key_type;

typedef struct {
    const char *name;
    int value;
} enum_choice;

enum {
    KEY_MIN_OPEN = 1,   /* range is (min, ...: min itself not allowed */
    KEY_MAX_OPEN = 2,   /* range is ..., max): max itself not allowed */
    KEY_SETS_N_CONV = 4 /* the list's length is the number of conv layers */
};

typedef struct {
    const char *section, *name;
    key_type type;
    double min, max;        /* for lists: the range of each entry */
    unsigned flags;
    const char *def;        /* default, as it would be written in a file */
    const char *help;
    size_t offset;          /* of the field in rc_config */
    const enum_choice *choices;   /* KEY_ENUM, ends with {NULL, 0} */
    size_t text_size;       /* KEY_ENUM stored as its name in char[text_size] */
    /* Extra rule for an integer (or list entry): NULL if v is fine, else a
     * phrase such as "must be odd". */
    const char *(*rule)(long long v);
} config_key;

static const enum_choice source_choices[] = {
    {"synthetic", 0}, {"shards", 1}, {NULL, 0}};
/* the names rc_backend_lookup knows (backend.h; test_config checks) */
static const enum_choice device_choices[] = {
    {"cpu", 0}, {"cuda", 1}, {"emu", 2}, {"auto", 3}, {NULL, 0}};
/* OpenBLAS kernel families of x86-64 DYNAMIC_ARCH builds that a run may pin
 * (train.blas_kernels); "auto" leaves OpenBLAS's choice. */
static const enum_choice blas_kernel_choices[] = {
    {"auto", 0}, {"Haswell", 1}, {"SkylakeX", 2}, {"Cooperlake", 3},
    {"Zen", 4}, {"Sandybridge", 5}, {"Nehalem", 6}, {NULL, 0}};
static const enum_choice cpu_conv_choices[] = {
    {"auto", RC_CPU_CONV_AUTO}, {"blas", RC_CPU_CONV_BLAS},
    {"onednn", RC_CPU_CONV_ONEDNN}, {NULL, 0}};
static const enum_choice precision_choices[] = {
    {"tf32", RC_PRECISION_TF32}, {"fp32", RC_PRECISION_FP32},
    {"bf16", RC_PRECISION_BF16}, {NULL, 0}};
static const enum_choice transfer_choices[] = {
    {"auto", RC_TRANSFER_AUTO}, {"float", RC_TRANSFER_FLOAT},
    {"u8", RC_TRANSFER_U8}, {NULL, 0}};
static const enum_choice on_bad_choices[] = {
    {"fail", 0}, {"skip", 1}, {NULL, 0}};
static const enum_choice texture_choices[] = {
    {"mixed", RC_TEXTURE_MIXED}, {"shapes", RC_TEXTURE_SHAPES}, {NULL, 0}};
/* model.pool had a second choice, flatten (encoder.fc over the whole last
 * conv map); it measured worse and was removed (docs/RESULTS.md section 5).
 * The key stays so that configs and checkpoints that name it still load. */
static const enum_choice pool_choices[] = {{"mean", 0}, {NULL, 0}};
static const enum_choice action_choices[] = {
    {"affine", RC_ACTION_AFFINE}, {"expm", RC_ACTION_EXPM},
    {"grid", RC_ACTION_GRID}, {NULL, 0}};
static const enum_choice hinge_choices[] = {{"squared", 1}, {"plain", 0}, {NULL, 0}};

static const char *rule_odd(long long v) {
    return v % 2 == 1 ? NULL : "must be odd";
}

static const char *rule_gray_or_rgb(long long v) {
    return v == 1 || v == 3 ? NULL : "must be 1 (gray) or 3 (RGB)";
}

#define FIELD(f) offsetof(rc_config, f)
#define F_MAX 3.4e38

static const config_key config_keys[] = {
    /* [model] */
    {"model", "conv_channels", KEY_INT_LIST, 1, 4096, KEY_SETS_N_CONV,
     "16,32,64,64", "output channels of each conv layer (its length is the "
     "number of layers)", FIELD(conv_channels), NULL, 0, NULL},
    {"model", "conv_kernels", KEY_INT_LIST, 1, 11, 0, "5,3,3,3",
     "square kernel size of each conv layer (odd: padding k/2 keeps it "
     "centred)", FIELD(conv_kernels), NULL,
     0, rule_odd},
    {"model", "conv_strides", KEY_INT_LIST, 1, 4, 0, "2,2,2,2",
     "stride of each conv layer", FIELD(conv_strides), NULL, 0, NULL},
    {"model", "feature_dim", KEY_INT, 1, 65536, 0, "128",
     "F: pair feature size (linear layer after global average pooling)",
     FIELD(feature_dim), NULL, 0, NULL},
    {"model", "hidden", KEY_INT, 1, 65536, 0, "128", "H: LSTM hidden size",
     FIELD(hidden), NULL, 0, NULL},
    {"model", "embed_dim", KEY_INT, 1, 65536, 0, "64",
     "D: motion embedding size", FIELD(embed_dim), NULL, 0, NULL},
    {"model", "pool", KEY_ENUM, 0, 0, 0, "mean",
     "pair encoder pooling before encoder.fc: mean (global average of each "
     "channel; flatten was measured and removed, docs/RESULTS.md section 5)",
     FIELD(pool), pool_choices, 0, NULL},

    /* [data] */
    {"data", "source", KEY_ENUM, 0, 0, 0, "synthetic",
     "where clips come from", FIELD(source), source_choices,
     sizeof(((rc_config *)0)->source), NULL},
    {"data", "path", KEY_STRING, 0, 0, 0, "",
     "shards: a shard file or a directory of *.rcs shards (recompose pack)",
     FIELD(data_path), NULL, sizeof(((rc_config *)0)->data_path), NULL},
    {"data", "frame_stride", KEY_INT, 1, 1000, 0, "1",
     "shards: source frames between consecutive clip frames",
     FIELD(frame_stride), NULL, 0, NULL},
    {"data", "resize", KEY_INT, 0, 8192, 0, "0",
     "shards: scale frames so the short side is this many pixels, then crop "
     "to image_size (0 = image_size)", FIELD(resize), NULL, 0, NULL},
    {"data", "random_crop", KEY_BOOL, 0, 1, 0, "true",
     "shards: random crop (else centred), the same for every frame of a clip",
     FIELD(random_crop), NULL, 0, NULL},
    {"data", "flip", KEY_BOOL, 0, 1, 0, "true",
     "shards: mirror a whole clip horizontally with probability 1/2",
     FIELD(flip), NULL, 0, NULL},
    {"data", "val_fraction", KEY_FLOAT, 0, 1, KEY_MAX_OPEN, "0.1",
     "shards: share of sequences held out for evaluation (by name hash)",
     FIELD(val_fraction), NULL, 0, NULL},
    {"data", "on_bad", KEY_ENUM, 0, 0, 0, "fail",
     "shards: a corrupt record stops training (fail) or is skipped and "
     "listed each epoch (skip)", FIELD(on_bad), on_bad_choices, 0, NULL},
    {"data", "loader_threads", KEY_INT, 0, 1024, 0, "0",
     "shards: decode threads (0 = one per core)", FIELD(loader_threads),
     NULL, 0, NULL},
    {"data", "ring", KEY_INT, 1, 64, 0, "4",
     "shards: batches decoded ahead of training", FIELD(ring), NULL, 0, NULL},
    {"data", "transfer", KEY_ENUM, 0, 0, 0, "auto",
     "shards: the loader's pixels as bytes, converted to float by the "
     "backend (u8: a quarter of the bytes to a GPU, no conversion on the "
     "decode threads), or as floats (float); auto: u8 on a device backend, "
     "float on the CPU", FIELD(transfer), transfer_choices, 0, NULL},
    {"data", "image_size", KEY_INT, 16, 1024, 0, "64",
     "frame width = height in pixels", FIELD(image_size), NULL, 0, NULL},
    {"data", "channels", KEY_INT, 1, 3, 0, "1", "1 gray or 3 RGB",
     FIELD(channels), NULL, 0, rule_gray_or_rgb},
    {"data", "clip_steps", KEY_INT, 2, RC_MAX_T, 0, "4",
     "T: a clip has T+1 frames", FIELD(clip_steps), NULL, 0, NULL},
    {"data", "max_speed", KEY_FLOAT, 0, 64, 0, "2",
     "synthetic: largest |vx|, |vy| in pixels per frame", FIELD(max_speed),
     NULL, 0, NULL},
    {"data", "texture", KEY_ENUM, 0, 0, 0, "mixed",
     "synthetic: texture family of the clips (mixed: fine waves and small "
     "shapes; shapes: smooth shading and large shapes)", FIELD(texture),
     texture_choices, 0, NULL},
    {"data", "pan_speed", KEY_FLOAT, 0, F_MAX, KEY_MIN_OPEN, "2",
     "synthetic: largest pan of a twin clip (loss.w_full_pan), pixels per "
     "frame; each twin's pan is in [pan_speed/2, pan_speed]",
     FIELD(pan_speed), NULL, 0, NULL},
    {"data", "roll_speed", KEY_FLOAT, 0, 3.14159, KEY_MIN_OPEN, "0.1",
     "synthetic: largest roll of a twin clip (loss.w_full_roll), radians "
     "per frame; each twin's roll is in [roll_speed/2, roll_speed]",
     FIELD(roll_speed), NULL, 0, NULL},
    {"data", "max_rotation", KEY_FLOAT, 0, 3.14159, 0, "0.1",
     "synthetic: largest |omega| in radians per frame", FIELD(max_rotation),
     NULL, 0, NULL},

    /* [train] */
    {"train", "device", KEY_ENUM, 0, 0, 0, "cpu",
     "backend: cpu, cuda (the CUDA backend; an error without a GPU), auto "
     "(cuda when a GPU is visible) or emu (the CUDA backend's kernels and "
     "input stage emulated on the CPU: slow, for tests)", FIELD(device),
     device_choices, sizeof(((rc_config *)0)->device), NULL},
    {"train", "blas_kernels", KEY_ENUM, 0, 0, 0, "auto",
     "OpenBLAS kernel family for the CPU's float32 arithmetic: auto (the "
     "library's choice for this CPU) or one to pin, so that runs agree bit "
     "for bit across CPU kinds (Haswell runs on every x86-64 CPU with AVX2; "
     "the process restarts itself with OPENBLAS_CORETYPE set)",
     FIELD(blas_kernels), blas_kernel_choices,
     sizeof(((rc_config *)0)->blas_kernels), NULL},
    {"train", "cpu_conv", KEY_ENUM, 0, 0, 0, "auto",
     "the CPU backend's convolutions: auto (oneDNN's where the build has "
     "it, else blas; blas when train.blas_kernels pins a family, the only "
     "convolutions known to give the same bits on every CPU kind), blas "
     "(the reference: im2col + OpenBLAS sgemm) or onednn (libdnnl: direct "
     "kernels in blocked layouts, 1.6-1.8x faster training on 2 cores; "
     "capped at AVX2 under a pinned family; an error in a build without "
     "it)",
     FIELD(cpu_conv), cpu_conv_choices, 0, NULL},
    {"train", "precision", KEY_ENUM, 0, 0, 0, "tf32",
     "GPU arithmetic: tf32 (cuDNN and cuBLAS may round inputs to TF32), "
     "fp32 (strict float32, what the GPU tests compare at 1e-5) or bf16 "
     "(bfloat16 convolution activations, float32 master weights); on the "
     "CPU, bf16 rounds oneDNN's convolution operands to bfloat16 where the "
     "CPU has native bfloat16 (AVX512-BF16 or AMX), else everything there "
     "is float32", FIELD(precision),
     precision_choices, 0, NULL},
    {"train", "cudnn_benchmark", KEY_BOOL, 0, 1, 0, "false",
     "GPU: choose convolution algorithms by timing them (cudnnFind, as "
     "PyTorch's cudnn.benchmark; faster, but runs may then differ in the "
     "last bits) instead of by cuDNN's heuristics (the same in every run)",
     FIELD(cudnn_benchmark), NULL, 0, NULL},
    {"train", "batch", KEY_INT, 1, 65536, 0, "16", "tuples per step",
     FIELD(batch), NULL, 0, NULL},
    {"train", "steps", KEY_INT, 1, 1000000000, 0, "1500",
     "optimizer steps in the run", FIELD(steps), NULL, 0, NULL},
    {"train", "lr", KEY_FLOAT, 0, 10, KEY_MIN_OPEN, "0.002",
     "peak learning rate", FIELD(lr), NULL, 0, NULL},
    {"train", "min_lr_ratio", KEY_FLOAT, 0, 1, 0, "0.05",
     "learning rate at the end of the cosine, as a fraction of lr",
     FIELD(min_lr_ratio), NULL, 0, NULL},
    {"train", "warmup", KEY_INT, 0, 1000000000, 0, "100",
     "steps of linear warmup", FIELD(warmup), NULL, 0, NULL},
    {"train", "weight_decay", KEY_FLOAT, 0, 1, 0, "0.0001",
     "AdamW decoupled weight decay (weights only, not biases)",
     FIELD(weight_decay), NULL, 0, NULL},
    {"train", "beta1", KEY_FLOAT, 0, 1, KEY_MAX_OPEN, "0.9",
     "AdamW first-moment decay", FIELD(beta1), NULL, 0, NULL},
    {"train", "beta2", KEY_FLOAT, 0, 1, KEY_MAX_OPEN, "0.999",
     "AdamW second-moment decay", FIELD(beta2), NULL, 0, NULL},
    {"train", "eps", KEY_FLOAT, 0, 1, KEY_MIN_OPEN, "1e-08",
     "AdamW epsilon", FIELD(eps), NULL, 0, NULL},
    {"train", "clip_norm", KEY_FLOAT, 0, 1e6, 0, "1",
     "clip gradients to this global norm (0 = off)", FIELD(clip_norm), NULL,
     0, NULL},
    {"train", "seed", KEY_UINT64, 0, 0, 0, "1",
     "seed of weights, data and sampling (any 64-bit unsigned integer)",
     FIELD(seed), NULL, 0, NULL},
    {"train", "threads", KEY_INT, 0, 1024, 0, "0",
     "CPU threads (0 = all cores)", FIELD(threads), NULL, 0, NULL},
    {"train", "dedup", KEY_BOOL, 0, 1, 0, "true",
     "encode each distinct frame pair of a batch once", FIELD(dedup), NULL, 0,
     NULL},
    {"train", "log_every", KEY_INT, 1, 1000000000, 0, "10",
     "steps between metric lines", FIELD(log_every), NULL, 0, NULL},
    {"train", "checkpoint_every", KEY_INT, 1, 1000000000, 0, "500",
     "steps between checkpoints (the last step is always saved)",
     FIELD(checkpoint_every), NULL, 0, NULL},
    {"train", "val_every", KEY_INT, 0, 1000000000, 0, "100",
     "steps between validation losses on held-out data (synthetic: clips of "
     "a split of their own; shards: the data.val_fraction sequences; "
     "0 = off)", FIELD(val_every), NULL, 0, NULL},
    {"train", "val_batches", KEY_INT, 1, 100000, 0, "4",
     "batches of train.batch tuples in each validation (the same ones "
     "every time)", FIELD(val_batches), NULL, 0, NULL},
    {"train", "plot", KEY_BOOL, 0, 1, 0, "true",
     "draw training.png (loss and validation loss) in the output folder at "
     "each checkpoint", FIELD(plot), NULL, 0, NULL},
    {"train", "keep_last", KEY_INT, 0, 1000000000, 0, "5",
     "checkpoints kept: the newest this many plus the best by training loss "
     "(0 = keep all)", FIELD(keep_last), NULL, 0, NULL},
    {"train", "max_bad_steps", KEY_INT, 1, 1000000000, 0, "10",
     "stop after this many steps in a row with a non-finite loss or gradient "
     "(each is skipped)", FIELD(max_bad_steps), NULL, 0, NULL},

    /* [loss] */
    {"loss", "margin", KEY_FLOAT, 0, 1e6, KEY_MIN_OPEN, "1",
     "hinge margin m for negative pairs", FIELD(loss.margin), NULL, 0, NULL},
    {"loss", "hinge", KEY_ENUM, 0, 0, 0, "squared",
     "max(0, m-d)^2 (squared) or max(0, m-d) (plain)", FIELD(loss.squared),
     hinge_choices, 0, NULL},
    {"loss", "w_pos", KEY_FLOAT, 0, 1e6, 0, "1", "weight of positive pairs",
     FIELD(loss.w_pos), NULL, 0, NULL},
    {"loss", "w_neg", KEY_FLOAT, 0, 1e6, 0, "1", "weight of negative pairs",
     FIELD(loss.w_neg), NULL, 0, NULL},
    {"loss", "w_full_skip", KEY_FLOAT, 0, 1e6, 0, "1",
     "extra weight of (full, skip)", FIELD(loss.w_kind[RC_PAIR_FULL_SKIP]),
     NULL, 0, NULL},
    {"loss", "w_loop_ident", KEY_FLOAT, 0, 1e6, 0, "1",
     "extra weight of (loop, ident)", FIELD(loss.w_kind[RC_PAIR_LOOP_IDENT]),
     NULL, 0, NULL},
    {"loss", "w_full_rev", KEY_FLOAT, 0, 1e6, 0, "1",
     "extra weight of (full, rev)", FIELD(loss.w_kind[RC_PAIR_FULL_REV]),
     NULL, 0, NULL},
    {"loss", "w_full_ident", KEY_FLOAT, 0, 1e6, 0, "1",
     "extra weight of (full, ident)", FIELD(loss.w_kind[RC_PAIR_FULL_IDENT]),
     NULL, 0, NULL},
    {"loss", "w_full_short", KEY_FLOAT, 0, 1e6, 0, "1",
     "extra weight of (full, short)", FIELD(loss.w_kind[RC_PAIR_FULL_SHORT]),
     NULL, 0, NULL},
    {"loss", "w_full_pan", KEY_FLOAT, 0, 1e6, 0, "0",
     "weight of the negative pair (full, pan): the clip against itself seen "
     "through a window sliding by data.pan_speed px per frame (synthetic "
     "data; 0 = off, no twin clips rendered)",
     FIELD(loss.w_kind[RC_PAIR_FULL_PAN]), NULL, 0, NULL},
    {"loss", "w_full_tex", KEY_FLOAT, 0, 1e6, 0, "0",
     "weight of the positive pair (full, tex): the clip against the same "
     "motion on another texture (synthetic data; 0 = off, no twin clips "
     "rendered)",
     FIELD(loss.w_kind[RC_PAIR_FULL_TEX]), NULL, 0, NULL},
    {"loss", "w_full_roll", KEY_FLOAT, 0, 1e6, 0, "0",
     "weight of the negative pair (full, roll): the clip against itself seen "
     "through a window turning by data.roll_speed rad per frame (synthetic "
     "data; 0 = off, no twin clips rendered)",
     FIELD(loss.w_kind[RC_PAIR_FULL_ROLL]), NULL, 0, NULL},
    {"loss", "w_full_flip", KEY_FLOAT, 0, 1e6, 0, "0",
     "weight of the equivariance pair (full, flip): the clip mirrored left "
     "to right must embed as the flip map of the clip's embedding (dx and "
     "rotation blocks negated; model.embed_dim a multiple of 4; any data "
     "source; 0 = off)",
     FIELD(loss.w_kind[RC_PAIR_FULL_FLIP]), NULL, 0, NULL},
    {"loss", "w_full_transpose", KEY_FLOAT, 0, 1e6, 0, "0",
     "weight of the equivariance pair (full, transpose): the clip with its "
     "image axes swapped must embed as the transpose map of the clip's "
     "embedding (dx and dy blocks swapped, rotation negated; model.embed_dim "
     "a multiple of 4; any data source; 0 = off)",
     FIELD(loss.w_kind[RC_PAIR_FULL_TRANSPOSE]), NULL, 0, NULL},
    {"loss", "w_act", KEY_FLOAT, 0, 1e6, 0, "0",
     "weight of the action term: a linear head maps each sequence's "
     "embedding to an affine warp that must carry the sequence's first frame "
     "onto its last (SPEC section 4; any data source; 0 = off, no head)",
     FIELD(loss.w_act), NULL, 0, NULL},
    {"loss", "act_kind", KEY_ENUM, 0, 0, 0, "affine",
     "the action head's warp: affine (its six outputs are the warp), expm "
     "(the matrix exponential of them: invertible, the inverse motion is the "
     "negated code) or grid (a field of act_grid x act_grid displacements, "
     "for local motion before a static camera)", FIELD(loss.act_kind),
     action_choices, 0, NULL},
    {"loss", "act_init", KEY_FLOAT, 0, 100, 0, "0",
     "the action head's initial weights, uniform in +-act_init / sqrt(D) "
     "(0: zero, every sequence starts at the identity warp and the term "
     "reaches the code only once the head has grown)", FIELD(loss.act_init),
     NULL, 0, NULL},
    {"loss", "act_grid", KEY_INT, 2, RC_WARP_MAX_GRID, 0, "4",
     "nodes per side of the displacement field of loss.act_kind = grid",
     FIELD(loss.act_grid), NULL, 0, NULL},
    {"loss", "act_scales", KEY_INT, 1, RC_WARP_MAX_SCALES, 0, "3",
     "scales of the action term's image error: average pooling by 1, 2, 4, "
     "... (each must divide data.image_size)", FIELD(loss.act_scales), NULL,
     0, NULL},
    {"loss", "act_border", KEY_INT, 0, 4096, 0, "8",
     "pixels at each edge left out of the action term's image error (where "
     "a warp samples past the frame)", FIELD(loss.act_border), NULL, 0, NULL},
    {"loss", "act_moving", KEY_FLOAT, 0, 1, 0, "0",
     "the action term's error only over the (pooled) pixels whose first and "
     "last frame differ by more than this (0-1 intensity; 0 = every pixel): "
     "for footage where little moves before a static background",
     FIELD(loss.act_moving), NULL, 0, NULL},

    /* [eval] */
    {"eval", "clips", KEY_INT, 2, 1000000, 0, "512",
     "held-out clips for evaluation", FIELD(eval_clips), NULL, 0, NULL},
    {"eval", "probe_train_clips", KEY_INT, 1, 1000000, 0, "1024",
     "training clips the linear probe is fitted on", FIELD(probe_train_clips),
     NULL, 0, NULL},
    {"eval", "ridge_lambda", KEY_FLOAT, 0, 1e6, 0, "0.01",
     "ridge regularisation of the linear probe", FIELD(ridge_lambda), NULL, 0,
     NULL},
    {"eval", "retrieval_k", KEY_INT, 1, 1000, 0, "5",
     "k of precision@k in retrieval", FIELD(retrieval_k), NULL, 0, NULL},
    {"eval", "knn_k", KEY_INT, 1, 1000, 0, "10",
     "neighbours averaged by the k-nearest-neighbour regression probe",
     FIELD(knn_k), NULL, 0, NULL},
    {"eval", "cross_texture", KEY_ENUM, 0, 0, 0, "shapes",
     "texture family the held-out motions are rendered on again for the "
     "cross-scene probes and retrieval (each clip gets a new texture)",
     FIELD(cross_texture), texture_choices, 0, NULL},
    {"eval", "pixel_baseline_size", KEY_INT, 1, 1024, 0, "16",
     "side of the downsampled frames of the pixel-difference baseline",
     FIELD(pixel_baseline_size), NULL, 0, NULL},
};

#define N_KEYS ((int)(sizeof config_keys / sizeof config_keys[0]))

static const char *const sections[] = {"model", "data", "train", "loss", "eval"};
#define N_SECTIONS ((int)(sizeof sections / sizeof sections[0]))

static void *field_of(rc_config *c, const config_key *k) {
    return (char *)c + k->offset;
}

static const void *const_field_of(const rc_config *c, const config_key *k) {
    return (const char *)c + k->offset;
}

static const config_key *find_key(const char *section, const char *name) {
    for (int i = 0; i < N_KEYS; i++)
        if (!strcmp(config_keys[i].section, section) &&
            !strcmp(config_keys[i].name, name))
            return &config_keys[i];
    return NULL;
}

static int key_index(const config_key *k) { return (int)(k - config_keys); }

static int is_section(const char *s) {
    for (int i = 0; i < N_SECTIONS; i++)
        if (!strcmp(sections[i], s)) return 1;
    return 0;
}

/* ---- messages -------------------------------------------------------------- */

/* A small append-only text buffer for building messages. */
typedef struct {
    char *buf;
    size_t cap, len;
} text;

static void text_add(text *t, const char *fmt, ...) RC_PRINTF(2, 3);
static void text_add(text *t, const char *fmt, ...) {
    if (t->len >= t->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
    if (t->len >= t->cap) t->len = t->cap - 1;
}

/* "[a, b]", "(a, b]", ... */
static void add_range(text *t, const config_key *k) {
    text_add(t, "%c%.10g, %.10g%c", k->flags & KEY_MIN_OPEN ? '(' : '[', k->min,
             k->max, k->flags & KEY_MAX_OPEN ? ')' : ']');
}

static void add_choices(text *t, const enum_choice *c) {
    for (int i = 0; c[i].name; i++) text_add(t, "%s%s", i ? ", " : "", c[i].name);
}

/* What a key accepts, e.g. "a number in (0, 10]". */
static void add_expectation(text *t, const config_key *k) {
    switch (k->type) {
    case KEY_INT:
        text_add(t, "an integer in ");
        add_range(t, k);
        break;
    case KEY_UINT64:
        text_add(t, "an unsigned 64-bit integer");
        break;
    case KEY_FLOAT:
        text_add(t, "a number in ");
        add_range(t, k);
        break;
    case KEY_BOOL:
        text_add(t, "true/false (also yes/no, 1/0)");
        break;
    case KEY_ENUM:
        text_add(t, "one of: ");
        add_choices(t, k->choices);
        break;
    case KEY_INT_LIST:
        text_add(t, "a comma-separated list of 1 to %d integers, each in ",
                 RC_MAX_CONV);
        add_range(t, k);
        break;
    case KEY_STRING:
        text_add(t, "text of at most %zu characters", k->text_size - 1);
        break;
    }
    if (k->rule == rule_odd) text_add(t, " and odd");
}

static int levenshtein(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = tolower((unsigned char)a[i - 1]) ==
                       tolower((unsigned char)b[j - 1]) ? 0 : 1;
            int best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The known key closest to section.name (by the full name, or by the bare
 * name so that "lr" under [model] still finds train.lr), or NULL if none is
 * plausibly what was meant. */
static const config_key *closest_key(const char *section, const char *name) {
    char full[160];
    snprintf(full, sizeof full, "%s.%s", section, name);
    const config_key *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < N_KEYS; i++) {
        const config_key *k = &config_keys[i];
        char kfull[160];
        snprintf(kfull, sizeof kfull, "%s.%s", k->section, k->name);
        int d = levenshtein(full, kfull);
        int dn = levenshtein(name, k->name);
        if (dn < d) d = dn;
        if (d < best_d) {
            best_d = d;
            best = k;
        }
    }
    int allowed = ((int)strlen(name) + 1) / 3;
    if (allowed < 1) allowed = 1;
    if (best_d <= allowed) return best;
    /* "batch_size" for batch: a known key that starts the unknown one */
    for (int i = 0; i < N_KEYS; i++) {
        size_t len = strlen(config_keys[i].name);
        if (len >= 3 && !strncmp(config_keys[i].name, name, len))
            return &config_keys[i];
    }
    return NULL;
}

static void add_unknown_key(text *t, const char *section, const char *name) {
    text_add(t, "unknown key %s.%s", section, name);
    const config_key *k = closest_key(section, name);
    if (k) {
        text_add(t, "; did you mean %s.%s?", k->section, k->name);
        if (strcmp(k->section, section))
            text_add(t, " (it belongs in section [%s])", k->section);
    } else if (is_section(section)) {
        text_add(t, "; keys in [%s]:", section);
        const char *sep = " ";
        for (int i = 0; i < N_KEYS; i++)
            if (!strcmp(config_keys[i].section, section)) {
                text_add(t, "%s%s", sep, config_keys[i].name);
                sep = ", ";
            }
    }
    text_add(t, " ('recompose keys' lists every key)");
}

static void add_unknown_section(text *t, const char *section) {
    text_add(t, "unknown section [%s]", section);
    int best = -1, best_d = 3;
    for (int i = 0; i < N_SECTIONS; i++) {
        int d = levenshtein(section, sections[i]);
        if (d < best_d) {
            best_d = d;
            best = i;
        }
    }
    if (best >= 0) text_add(t, "; did you mean [%s]?", sections[best]);
    text_add(t, " (sections: ");
    for (int i = 0; i < N_SECTIONS; i++)
        text_add(t, "%s%s", i ? ", " : "", sections[i]);
    text_add(t, ")");
}

/* ---- parsing one value ------------------------------------------------------ */

/* Each parser writes a message into `why` on failure and returns -1. */

static int parse_long(const char *s, long long *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int check_int_value(const config_key *k, long long v, text *why) {
    if (v < (long long)k->min || v > (long long)k->max) {
        text_add(why, "%lld must be in ", v);
        add_range(why, k);
        return -1;
    }
    const char *broken = k->rule ? k->rule(v) : NULL;
    if (broken) {
        text_add(why, "%lld %s", v, broken);
        return -1;
    }
    return 0;
}

static int check_float_value(const config_key *k, float v, text *why) {
    /* compare as floats: the field is a float, and 3.14159 as a float is a
     * little above 3.14159 as a double */
    float lo = (float)k->min, hi = (float)k->max;
    int low = k->flags & KEY_MIN_OPEN ? v <= lo : v < lo;
    int high = k->flags & KEY_MAX_OPEN ? v >= hi : v > hi;
    if (!isfinite(v) || low || high) {
        text_add(why, "%.9g must be in ", (double)v);
        add_range(why, k);
        return -1;
    }
    return 0;
}

static int parse_int_key(rc_config *c, const config_key *k, const char *value,
                         text *why) {
    long long v;
    if (parse_long(value, &v) != 0) {
        text_add(why, "'%s' is not an integer; expected ", value);
        add_expectation(why, k);
        return -1;
    }
    if (check_int_value(k, v, why) != 0) return -1;
    *(int *)field_of(c, k) = (int)v;
    return 0;
}

static int parse_uint64_key(rc_config *c, const config_key *k,
                            const char *value, text *why) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    /* strtoull accepts "-1" (and wraps it): refuse any sign explicitly */
    if (!isdigit((unsigned char)value[0]) || errno || *end) {
        text_add(why, "'%s' is not %s", value,
                 "an unsigned 64-bit integer (0 to 18446744073709551615)");
        return -1;
    }
    *(uint64_t *)field_of(c, k) = (uint64_t)v;
    return 0;
}

static int parse_float_key(rc_config *c, const config_key *k,
                           const char *value, text *why) {
    char *end;
    errno = 0;
    /* strtof, not strtod + cast: the text written by rc_config_to_ini
     * (%.9g of a float) must come back as exactly the same float. */
    float v = strtof(value, &end);
    if (!*value || isspace((unsigned char)*value) || *end || errno == ERANGE) {
        text_add(why, errno == ERANGE && !*end && *value
                          ? "'%s' is beyond the range of a float; expected "
                          : "'%s' is not a number; expected ", value);
        add_expectation(why, k);
        return -1;
    }
    if (check_float_value(k, v, why) != 0) return -1;
    *(float *)field_of(c, k) = v;
    return 0;
}

static int parse_bool_key(rc_config *c, const config_key *k,
                          const char *value, text *why) {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(value, yes[i])) {
            *(int *)field_of(c, k) = 1;
            return 0;
        }
        if (!strcasecmp(value, no[i])) {
            *(int *)field_of(c, k) = 0;
            return 0;
        }
    }
    text_add(why, "'%s' is not a boolean; expected ", value);
    add_expectation(why, k);
    return -1;
}

static int parse_enum_key(rc_config *c, const config_key *k,
                          const char *value, text *why) {
    for (int i = 0; k->choices[i].name; i++) {
        if (strcmp(value, k->choices[i].name)) continue;
        if (k->text_size)
            snprintf((char *)field_of(c, k), k->text_size, "%s", value);
        else
            *(int *)field_of(c, k) = k->choices[i].value;
        return 0;
    }
    text_add(why, "'%s' is not allowed; allowed: ", value);
    add_choices(why, k->choices);
    return -1;
}

/* The conv lists share one length, n_conv. Entries past the length are kept
 * at zero so that a config has one canonical form (rc_config_to_ini writes
 * n_conv entries; reading them back must give the same struct), and so that
 * a list shorter than conv_channels shows up as a zero entry in validation. */
static void zero_list_tail(rc_config *c, const config_key *k, int from) {
    int *list = field_of(c, k);
    for (int i = from; i < RC_MAX_CONV; i++) list[i] = 0;
}

static int parse_int_list_key(rc_config *c, const config_key *k,
                              const char *value, int *len_out, text *why) {
    int entries[RC_MAX_CONV], n = 0;
    const char *p = value;
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        size_t len = (size_t)(end - p);
        while (len && isspace((unsigned char)p[len - 1])) len--;
        char item[32];
        long long v;
        if (n == RC_MAX_CONV) {
            text_add(why, "'%s' has more than %d entries; expected ", value,
                     RC_MAX_CONV);
            add_expectation(why, k);
            return -1;
        }
        snprintf(item, sizeof item, "%.*s", (int)(len < 31 ? len : 31), p);
        if (len == 0 || len > 30 || parse_long(item, &v) != 0) {
            text_add(why, "entry %d '%s' of '%s' is not an integer; expected ",
                     n + 1, item, value);
            add_expectation(why, k);
            return -1;
        }
        if (check_int_value(k, v, why) != 0) {
            text_add(why, " (entry %d of '%s')", n + 1, value);
            return -1;
        }
        entries[n++] = (int)v;
        if (!*end) break;
        p = end + 1;
    }
    int *list = field_of(c, k);
    for (int i = 0; i < n; i++) list[i] = entries[i];
    if (k->flags & KEY_SETS_N_CONV) {
        c->n_conv = n;
        for (int i = 0; i < N_KEYS; i++)
            if (config_keys[i].type == KEY_INT_LIST)
                zero_list_tail(c, &config_keys[i], n);
    } else {
        zero_list_tail(c, k, n);
    }
    *len_out = n;
    return 0;
}

/* Parse `value` for key k into c. On failure `why` says what was wrong and
 * what is allowed, prefixed by the key's name. *list_len receives the number
 * of entries of a list (0 for scalars). */
static int parse_string_key(rc_config *c, const config_key *k,
                            const char *value, text *why) {
    if (strlen(value) >= k->text_size) {
        text_add(why, "'%.40s...' is too long; expected ", value);
        add_expectation(why, k);
        return -1;
    }
    snprintf((char *)field_of(c, k), k->text_size, "%s", value);
    return 0;
}

static int apply_value(rc_config *c, const config_key *k, const char *value,
                       int *list_len, text *why) {
    size_t mark = why->len;
    text_add(why, "%s.%s = ", k->section, k->name);
    *list_len = 0;
    int status = -1;
    switch (k->type) {
    case KEY_INT: status = parse_int_key(c, k, value, why); break;
    case KEY_UINT64: status = parse_uint64_key(c, k, value, why); break;
    case KEY_FLOAT: status = parse_float_key(c, k, value, why); break;
    case KEY_BOOL: status = parse_bool_key(c, k, value, why); break;
    case KEY_ENUM: status = parse_enum_key(c, k, value, why); break;
    case KEY_INT_LIST:
        status = parse_int_list_key(c, k, value, list_len, why);
        break;
    case KEY_STRING: status = parse_string_key(c, k, value, why); break;
    }
    if (status == 0) why->len = mark, why->buf[mark] = '\0';
    return status;
}

/* ---- defaults ----------------------------------------------------------------- */

void rc_config_default(rc_config *c) {
    /* zero first: padding included, so that configs compare with memcmp */
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_KEYS; i++) {
        char buf[256];
        text why = {buf, sizeof buf, 0};
        int len;
        if (apply_value(c, &config_keys[i], config_keys[i].def, &len, &why)) {
            /* the table contradicts itself: a bug, caught by test_config */
            fprintf(stderr, "recompose: bad default in csrc/config.c: %s\n", buf);
            abort();
        }
    }
}

/* ---- paths ------------------------------------------------------------------------ */

/* A relative path key (data.path) means a place relative to the file that
 * names it, or to the working directory for --set: it is stored absolute,
 * so that the config.ini a run saves, and any command reading it, finds
 * the same place from any directory. base: the directory to resolve
 * against (NULL: the working directory). */
static int make_absolute(char *path, size_t cap, const char *base_dir,
                         const char *what) {
    if (!path[0] || path[0] == '/') return 0;
    char cwd[4096], joined[8192];
    if (!getcwd(cwd, sizeof cwd))
        return rc_set_error("%s: cannot resolve the relative path '%s': %s",
                            what, path, strerror(errno));
    if (!base_dir || !base_dir[0] || !strcmp(base_dir, "."))
        snprintf(joined, sizeof joined, "%s/%s", cwd, path);
    else if (base_dir[0] == '/')
        snprintf(joined, sizeof joined, "%s/%s", base_dir, path);
    else
        snprintf(joined, sizeof joined, "%s/%s/%s", cwd, base_dir, path);
    if (strlen(joined) >= cap)
        return rc_set_error("%s: the path '%s' made absolute is longer than "
                            "%zu characters", what, joined, cap - 1);
    snprintf(path, cap, "%s", joined);
    return 0;
}

/* ---- files -------------------------------------------------------------------- */

typedef struct {
    rc_config *cfg;
    FILE *fp;
    int line;              /* lines read so far = the line being handled */
    int line_indented;     /* that line starts with blank space */
    int failed;            /* the handler already reported an error */
    int error_line;
    char message[768];
    int set_line[N_KEYS];  /* line that set each key in this file, or 0 */
    int list_len[N_KEYS];
} ini_context;

/* fgets for inih that counts lines: inih calls it once per line it numbers. */
static char *counting_reader(char *str, int num, void *stream) {
    ini_context *ctx = stream;
    char *s = fgets(str, num, ctx->fp);
    if (s) {
        ctx->line++;
        ctx->line_indented = s[0] == ' ' || s[0] == '\t';
    }
    return s;
}

/* The message is already in ctx->message; inih gets 0 = error. */
static int fail_at_line(ini_context *ctx) {
    ctx->failed = 1;
    ctx->error_line = ctx->line;
    return 0;
}

static int ini_handler_fn(void *user, const char *section, const char *name,
                          const char *value) {
    ini_context *ctx = user;
    if (ctx->failed) return 0;   /* report only the first error */
    text msg = {ctx->message, sizeof ctx->message, 0};
    if (!*section) {
        const config_key *k = closest_key("", name);
        text_add(&msg, "key '%s' is outside any section", name);
        if (k) text_add(&msg, "; put it under [%s]", k->section);
        else text_add(&msg, "; start the file with a section such as [train]");
        return fail_at_line(ctx);
    }
    if (!is_section(section)) {
        add_unknown_section(&msg, section);
        return fail_at_line(ctx);
    }
    const config_key *k = find_key(section, name);
    if (!k) {
        add_unknown_key(&msg, section, name);
        return fail_at_line(ctx);
    }
    int i = key_index(k);
    if (ctx->set_line[i]) {
        if (ctx->line_indented)
            text_add(&msg, "this line is indented, so it continues the value "
                     "of %s.%s from line %d; remove the indentation",
                     section, name, ctx->set_line[i]);
        else
            text_add(&msg, "duplicate key %s.%s (already set on line %d); "
                     "keep one", section, name, ctx->set_line[i]);
        return fail_at_line(ctx);
    }
    if (apply_value(ctx->cfg, k, value, &ctx->list_len[i], &msg) != 0)
        return fail_at_line(ctx);
    ctx->set_line[i] = ctx->line;
    return 1;
}

/* Number of leading non-zero entries of a conv list. */
static int list_length(const rc_config *c, const config_key *k) {
    const int *list = const_field_of(c, k);
    int n = 0;
    while (n < RC_MAX_CONV && list[n]) n++;
    return n;
}

/* A file that touches the conv lists must leave them all with n_conv entries:
 * a 3-entry conv_channels beside the 4-entry default kernels is a mistake. */
static int check_conv_lists(const ini_context *ctx, const char *path) {
    const config_key *channels = find_key("model", "conv_channels");
    int any = 0;
    for (int i = 0; i < N_KEYS; i++)
        if (config_keys[i].type == KEY_INT_LIST && ctx->set_line[i]) any = 1;
    if (!any) return 0;
    const rc_config *c = ctx->cfg;
    for (int i = 0; i < N_KEYS; i++) {
        const config_key *k = &config_keys[i];
        if (k->type != KEY_INT_LIST || k == channels) continue;
        int len = ctx->set_line[i] ? ctx->list_len[i] : list_length(c, k);
        if (len == c->n_conv) continue;
        int ci = key_index(channels);
        int line = ctx->set_line[i] > ctx->set_line[ci] ? ctx->set_line[i]
                                                        : ctx->set_line[ci];
        return rc_set_error("%s:%d: model.%s has %d entries but "
                            "model.conv_channels has %d (one per conv layer)%s",
                            path, line, k->name, len, c->n_conv,
                            ctx->set_line[i] ? "" : "; set it in this file too");
    }
    return 0;
}

int rc_config_load(rc_config *c, const char *path) {
    ini_context *ctx = rc_xcalloc(1, sizeof *ctx);
    ctx->cfg = c;
    ctx->fp = fopen(path, "r");
    if (!ctx->fp) {
        int err = errno;
        free(ctx);
        return rc_set_error("%s: cannot open config file: %s", path,
                            strerror(err));
    }
    int first_error = ini_parse_stream(counting_reader, ctx, ini_handler_fn, ctx);
    int read_error = ferror(ctx->fp);
    fclose(ctx->fp);
    int status = 0;
    if (read_error) {
        status = rc_set_error("%s: read error", path);
    } else if (first_error > 0 && ctx->failed && ctx->error_line == first_error) {
        status = rc_set_error("%s:%d: %s", path, first_error, ctx->message);
    } else if (first_error > 0) {
        status = rc_set_error("%s:%d: cannot parse this line; expected "
                              "'key = value', '[section]' or a comment "
                              "(starting with ; or #)", path, first_error);
    } else if (first_error < 0) {
        status = rc_set_error("%s: cannot read config file (inih error %d)",
                              path, first_error);
    } else {
        status = check_conv_lists(ctx, path);
    }
    const config_key *dp = find_key("data", "path");
    if (status == 0 && ctx->set_line[dp - config_keys]) {
        char dir[4096], what[4200];
        rc_path_dir(path, dir, sizeof dir);
        snprintf(what, sizeof what, "%s:%d: data.path", path,
                 ctx->set_line[dp - config_keys]);
        status = make_absolute(c->data_path, sizeof c->data_path, dir, what);
    }
    free(ctx);
    return status;
}

/* ---- --set ---------------------------------------------------------------------- */

static void trim_copy(char *dst, size_t cap, const char *s, size_t len) {
    while (len && isspace((unsigned char)*s)) s++, len--;
    while (len && isspace((unsigned char)s[len - 1])) len--;
    snprintf(dst, cap, "%.*s", (int)len, s);
}

int rc_config_set(rc_config *c, const char *assignment) {
    char buf[768];
    text msg = {buf, sizeof buf, 0};
    const char *eq = strchr(assignment, '=');
    char key[128], section[64], value[512];
    if (!eq) {
        return rc_set_error("--set %s: expected section.key=value, "
                            "e.g. --set train.lr=3e-4", assignment);
    }
    trim_copy(key, sizeof key, assignment, (size_t)(eq - assignment));
    trim_copy(value, sizeof value, eq + 1, strlen(eq + 1));
    char *dot = strchr(key, '.');
    if (!dot || dot == key || !dot[1]) {
        return rc_set_error("--set %s: '%s' is not section.key (e.g. train.lr)",
                            assignment, key);
    }
    snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
    const char *name = dot + 1;
    const config_key *k = find_key(section, name);
    if (!k) {
        if (is_section(section)) add_unknown_key(&msg, section, name);
        else add_unknown_section(&msg, section);
        return rc_set_error("--set %s: %s", assignment, buf);
    }
    int len;
    if (apply_value(c, k, value, &len, &msg) != 0)
        return rc_set_error("--set %s: %s", assignment, buf);
    if (k->type == KEY_STRING) { /* a path: relative to the working directory */
        char what[600];
        snprintf(what, sizeof what, "--set %s", assignment);
        return make_absolute((char *)c + k->offset, k->text_size, NULL, what);
    }
    return 0;
}

/* ---- validation ------------------------------------------------------------------- */

/* Re-check one field against its table entry (fields may have been set in
 * code rather than parsed). */
static int validate_key(const rc_config *c, const config_key *k, text *why) {
    text_add(why, "%s.%s = ", k->section, k->name);
    switch (k->type) {
    case KEY_INT:
        return check_int_value(k, *(const int *)const_field_of(c, k), why);
    case KEY_FLOAT:
        return check_float_value(k, *(const float *)const_field_of(c, k), why);
    case KEY_UINT64:
    case KEY_STRING:
        return 0;
    case KEY_BOOL: {
        int v = *(const int *)const_field_of(c, k);
        if (v == 0 || v == 1) return 0;
        text_add(why, "%d; expected 0 or 1", v);
        return -1;
    }
    case KEY_ENUM:
        for (int i = 0; k->choices[i].name; i++) {
            if (k->text_size ? !strcmp(const_field_of(c, k), k->choices[i].name)
                             : *(const int *)const_field_of(c, k) ==
                                   k->choices[i].value)
                return 0;
        }
        text_add(why, "invalid value; allowed: ");
        add_choices(why, k->choices);
        return -1;
    case KEY_INT_LIST: {
        const int *list = const_field_of(c, k);
        for (int i = 0; i < c->n_conv; i++) {
            if (list[i] == 0) {
                text_add(why, "%d entries, but model.conv_channels has %d "
                         "(one per conv layer)", i, c->n_conv);
                return -1;
            }
            if (check_int_value(k, list[i], why) != 0) {
                text_add(why, " (entry %d)", i + 1);
                return -1;
            }
        }
        return 0;
    }
    }
    return 0;
}

/* Spatial size after the conv stack (padding k/2, as the model does). */
static int final_spatial_size(const rc_config *c, char *trace, size_t cap) {
    text t = {trace, cap, 0};
    int s = c->image_size;
    text_add(&t, "%d", s);
    for (int l = 0; l < c->n_conv && s >= 1; l++) {
        int k = c->conv_kernels[l], pad = k / 2;
        s = (s + 2 * pad - k) / c->conv_strides[l] + 1;
        text_add(&t, " -> %d", s);
    }
    return s;
}

int rc_config_validate(const rc_config *c) {
    char buf[768];
    text why = {buf, sizeof buf, 0};
    if (c->n_conv < 1 || c->n_conv > RC_MAX_CONV)
        return rc_set_error("config: model.conv_channels has %d entries; "
                            "allowed 1 to %d", c->n_conv, RC_MAX_CONV);
    for (int i = 0; i < N_KEYS; i++) {
        why.len = 0;
        if (validate_key(c, &config_keys[i], &why) != 0)
            return rc_set_error("config: %s", buf);
    }
    char trace[256];
    if (final_spatial_size(c, trace, sizeof trace) < 1)
        return rc_set_error("config: data.image_size %d does not survive the "
                            "conv strides (sizes %s); use fewer or smaller "
                            "strides or a larger image", c->image_size, trace);
    if (c->warmup > c->steps)
        return rc_set_error("config: train.warmup (%d) must be <= train.steps "
                            "(%d); for a short run set both, e.g. --set "
                            "train.steps=%d --set train.warmup=%d", c->warmup,
                            c->steps, c->steps, c->steps / 15 > 0 ? c->steps / 15 : 1);
    if (!strcmp(c->source, "shards") && !c->data_path[0])
        return rc_set_error("config: data.source = shards needs data.path "
                            "(a directory of shards written by 'recompose "
                            "pack')");
    /* (the optional pair kinds come with twin clips: rc_loss_twins; the
     * test here needs no sampler, so that config.c links alone) */
    int rendered_twins = c->loss.w_kind[RC_PAIR_FULL_PAN] > 0 ||
                         c->loss.w_kind[RC_PAIR_FULL_TEX] > 0 ||
                         c->loss.w_kind[RC_PAIR_FULL_ROLL] > 0;
    if (!strcmp(c->source, "shards") && rendered_twins)
        return rc_set_error("config: loss.w_full_pan, w_full_roll and "
                            "w_full_tex need data.source = synthetic (their "
                            "twins are rendered); set them to 0 for footage "
                            "(configs/tiny.ini sets w_full_tex and w_full_pan "
                            "to 1; w_full_flip and w_full_transpose work on "
                            "footage)");
    int mapped = c->loss.w_kind[RC_PAIR_FULL_FLIP] > 0 ||
                 c->loss.w_kind[RC_PAIR_FULL_TRANSPOSE] > 0;
    if (mapped && c->embed_dim % 4 != 0)
        return rc_set_error("config: loss.w_full_flip and w_full_transpose "
                            "split the embedding into four equal blocks; "
                            "model.embed_dim = %d is not a multiple of 4",
                            c->embed_dim);
    if (c->loss.w_act > 0) { /* the warp loss's shape (ops.h, rc_warp_shape) */
        int f = 1 << (c->loss.act_scales - 1); /* the coarsest pooling */
        if (c->image_size % f != 0)
            return rc_set_error("config: loss.act_scales = %d pools by up to "
                                "%d px, which does not divide data.image_size "
                                "%d; lower act_scales", c->loss.act_scales, f,
                                c->image_size);
        if (c->image_size / f - 2 * (c->loss.act_border / f) < 1)
            return rc_set_error("config: loss.act_border = %d leaves no pixel "
                                "of a %dx%d frame; lower it", c->loss.act_border,
                                c->image_size, c->image_size);
    }
    if (c->resize != 0 && c->resize < c->image_size)
        return rc_set_error("config: data.resize (%d) must be 0 or >= "
                            "data.image_size (%d)", c->resize, c->image_size);
    if (c->pixel_baseline_size > c->image_size)
        return rc_set_error("config: eval.pixel_baseline_size (%d) must be <= "
                            "data.image_size (%d)", c->pixel_baseline_size,
                            c->image_size);
    if (c->ridge_lambda == 0 && c->probe_train_clips <= c->embed_dim)
        return rc_set_error("config: with eval.ridge_lambda = 0 the probe needs "
                            "more training clips (eval.probe_train_clips = %d) "
                            "than embedding dimensions (model.embed_dim = %d); "
                            "raise one or set ridge_lambda > 0",
                            c->probe_train_clips, c->embed_dim);
    return 0;
}

/* ---- writing --------------------------------------------------------------------- */

/* The shortest decimal that reads back as the same float: 2e-3 prints as
 * 0.002, not 0.00200000009. 9 significant digits always suffice. */
static void write_float(FILE *f, float v) {
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    fputs(buf, f);
}

static void write_value(FILE *f, const rc_config *c, const config_key *k) {
    const void *p = const_field_of(c, k);
    switch (k->type) {
    case KEY_INT: fprintf(f, "%d", *(const int *)p); break;
    case KEY_UINT64: fprintf(f, "%" PRIu64, *(const uint64_t *)p); break;
    case KEY_FLOAT: write_float(f, *(const float *)p); break;
    case KEY_BOOL: fputs(*(const int *)p ? "true" : "false", f); break;
    case KEY_STRING: fputs((const char *)p, f); break;
    case KEY_ENUM:
        if (k->text_size) {
            fputs((const char *)p, f);
        } else {
            const char *name = "invalid";
            for (int i = 0; k->choices[i].name; i++)
                if (k->choices[i].value == *(const int *)p) name = k->choices[i].name;
            fputs(name, f);
        }
        break;
    case KEY_INT_LIST:
        for (int i = 0; i < c->n_conv; i++)
            fprintf(f, "%s%d", i ? "," : "", ((const int *)p)[i]);
        break;
    }
}

char *rc_config_to_ini(const rc_config *c) {
    char *out = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&out, &size);
    if (!f) {
        fprintf(stderr, "recompose: out of memory writing the config\n");
        exit(2);
    }
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(f, "%s[%s]\n", s ? "\n" : "", sections[s]);
        for (int i = 0; i < N_KEYS; i++) {
            const config_key *k = &config_keys[i];
            if (strcmp(k->section, sections[s])) continue;
            fprintf(f, "%s = ", k->name);
            write_value(f, c, k);
            fputc('\n', f);
        }
    }
    fclose(f);
    return out;
}

static const char *type_name(key_type t) {
    switch (t) {
    case KEY_INT: return "int";
    case KEY_UINT64: return "uint64";
    case KEY_FLOAT: return "float";
    case KEY_BOOL: return "bool";
    case KEY_ENUM: return "enum";
    case KEY_INT_LIST: return "int list";
    case KEY_STRING: return "string";
    }
    return "?";
}

void rc_config_describe(FILE *out) {
    fprintf(out, "Configuration keys (INI: [section] then key = value; "
                 "override with --set section.key=value):\n");
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(out, "\n[%s]\n", sections[s]);
        for (int i = 0; i < N_KEYS; i++) {
            const config_key *k = &config_keys[i];
            if (strcmp(k->section, sections[s])) continue;
            char range[160];
            text t = {range, sizeof range, 0};
            range[0] = '\0';
            if (k->type == KEY_INT || k->type == KEY_FLOAT) {
                add_range(&t, k);
            } else if (k->type == KEY_INT_LIST) {
                text_add(&t, "1..%d entries in ", RC_MAX_CONV);
                add_range(&t, k);
                if (k->rule == rule_odd) text_add(&t, ", odd");
            } else if (k->type == KEY_ENUM) {
                add_choices(&t, k->choices);
            } else if (k->type == KEY_BOOL) {
                text_add(&t, "true, false");
            } else if (k->type == KEY_STRING) {
                text_add(&t, "text");
            } else {
                text_add(&t, "0..2^64-1");
            }
            if (k->type == KEY_INT && k->rule == rule_gray_or_rgb)
                snprintf(range, sizeof range, "1 or 3");
            fprintf(out, "  %s.%s\n      %s, %s, default %s\n      %s\n",
                    k->section, k->name, type_name(k->type), range, k->def,
                    k->help);
        }
    }
}

void rc_config_synth(const rc_config *c, rc_synth_config *s) {
    memset(s, 0, sizeof *s);
    s->size = c->image_size;
    s->channels = c->channels;
    s->max_speed = c->max_speed;
    s->max_rotation = c->max_rotation;
    s->texture = c->texture;
}
