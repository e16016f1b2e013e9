/* main.c: the `recompose` command line.
 *
 *   recompose train CONFIG --out DIR [--set k=v]... [--resume PATH] [--eval]
 *   recompose eval  CONFIG --checkpoint FILE --out DIR [--set k=v]...
 *   recompose config CONFIG [--set k=v]...      print the effective config
 *   recompose keys                              list every config key
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cblas.h>

#include "recompose/cuda_backend.h"
#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/config.h"
#include "recompose/eval.h"
#include "recompose/model.h"
#include "recompose/train.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif
#ifdef RC_HAVE_VIZ
#include "recompose/viz.h"
#endif

static const char *usage_main =
    "usage: recompose COMMAND [ARGS]\n"
    "\n"
    "Learn a representation of image motion by recomposing sequences.\n"
    "\n"
    "commands:\n"
    "  train CONFIG --out DIR     train; checkpoints and metrics.jsonl in DIR\n"
    "  eval CONFIG --checkpoint FILE --out DIR\n"
    "                             evaluate on held-out clips; DIR/eval.json\n"
    "  pack SOURCE... --out DIR   pack videos / frame folders into shards\n"
    "  embed CONFIG --checkpoint FILE --out PREFIX\n"
    "                             embeddings of clips as .npy + .json sidecar\n"
    "  neighbors CONFIG --checkpoint FILE --out DIR\n"
    "                             nearest clips in embedding space, contact sheets\n"
    "  saliency CONFIG --checkpoint FILE --out DIR\n"
    "                             where the motion is: d d(phi(S), phi(rev S)) / d pixels\n"
    "  config CONFIG              print the effective configuration\n"
    "  keys                       list every configuration key\n"
    "  version [--devices]        print the version, BLAS kernels and build\n"
    "                             features (--devices: the CUDA devices seen)\n"
    "\n"
    "Run 'recompose COMMAND --help' for a command's options.\n";

static const char *usage_train =
    "usage: recompose train CONFIG --out DIR [options]\n"
    "\n"
    "Train on the data the config names (built-in synthetic clips by default).\n"
    "Writes DIR/ckpt-NNNNNNNN.safetensors, DIR/metrics.jsonl, DIR/config.ini.\n"
    "\n"
    "options:\n"
    "  --out DIR           output directory (created if missing)\n"
    "  --set SEC.KEY=VAL   override a config key (repeatable), e.g.\n"
    "                      --set train.lr=3e-4 --set train.steps=200\n"
    "  --resume PATH       continue from a checkpoint file, or the newest\n"
    "                      checkpoint in a directory; bitwise identical to an\n"
    "                      uninterrupted run with the same thread count\n"
    "  --resume auto       continue from DIR's newest checkpoint when it has\n"
    "                      one, else start fresh (one job script for the\n"
    "                      first submission and every requeue)\n"
    "  --force             DIR holds another run: move its files into\n"
    "                      DIR/previous-N/ (without it, such a DIR is refused)\n"
    "  --stop-after N      stop (with a checkpoint) after global step N\n"
    "  --eval              evaluate the final weights (as 'recompose eval')\n"
    "  --quiet             no progress output\n"
    "\n"
    "SIGTERM, SIGINT or SIGUSR1 (Slurm's warning): finish the step, write a\n"
    "checkpoint and exit 75; a second signal exits at once (128 + signal).\n"
    "A kill at any moment leaves the last complete checkpoint loadable.\n"
    "\n"
    "exit status:\n"
    "  0   done\n"
    "  1   error (config, data, checkpoint to resume from; message says which)\n"
    "  2   usage error\n"
    "  3   train.max_bad_steps steps in a row had a non-finite loss or\n"
    "      gradient; the checkpoint from before them is written\n"
    "  4   output directory unwritable or full, or a checkpoint write failed\n"
    "      (earlier checkpoints are intact; nothing truncated is left)\n"
    "  75  stopped by a signal after writing a checkpoint: --resume DIR\n"
    "  128+N  killed by a second signal N while stopping\n"
    "See docs/faults.md.\n";

static const char *usage_eval =
    "usage: recompose eval CONFIG --checkpoint FILE --out DIR [--set K=V]...\n"
    "\n"
    "Evaluate a checkpoint on held-out synthetic clips (SPEC section 7):\n"
    "group-property errors; R^2 of (dx, dy, dtheta) by a ridge (linear)\n"
    "and a k-nearest-neighbour probe (eval.knn_k), on held-out clips and on\n"
    "the same motions rendered on another texture family\n"
    "(eval.cross_texture); retrieval precision@k, and across the two\n"
    "texture families; beside the random-initialisation and\n"
    "pixel-difference baselines. Prints a table and writes DIR/eval.json.\n";

static const char *usage_config =
    "usage: recompose config CONFIG [--set SEC.KEY=VAL]...\n"
    "\n"
    "Validate CONFIG and print the effective configuration as INI.\n";

static char **process_argv; /* for train.blas_kernels' restart */

static int fail(const char *what) {
    fprintf(stderr, "recompose: error: %s%s%s\n", what ? what : "",
            what ? ": " : "", rc_last_error());
    return 1;
}

static int usage_error(const char *usage, const char *fmt, const char *arg) {
    fprintf(stderr, "recompose: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

static int wants_help(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

typedef struct {
    const char *config_path, *out, *checkpoint, *resume;
    long long stop_after;
    int eval, quiet, force;
    const char *sets[64];
    int n_sets;
} cli_args;

/* Parse "CONFIG [--flag value]..." for a subcommand. `allowed` lists the
 * flags the subcommand accepts. Returns 0, or 2 after printing usage. */
static int parse_args(int argc, char **argv, const char *usage,
                      const char *allowed, cli_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (arg[0] != '-') {
            if (a->config_path)
                return usage_error(usage, "unexpected argument '%s'", arg);
            a->config_path = arg;
            continue;
        }
        if (!strstr(allowed, arg))
            return usage_error(usage, "unknown option '%s'", arg);
        if (!strcmp(arg, "--eval")) {
            a->eval = 1;
        } else if (!strcmp(arg, "--quiet")) {
            a->quiet = 1;
        } else if (!strcmp(arg, "--force")) {
            a->force = 1;
        } else if (!has_value) {
            return usage_error(usage, "option '%s' needs a value", arg);
        } else if (!strcmp(arg, "--out")) {
            a->out = argv[++i];
        } else if (!strcmp(arg, "--checkpoint")) {
            a->checkpoint = argv[++i];
        } else if (!strcmp(arg, "--resume")) {
            a->resume = argv[++i];
        } else if (!strcmp(arg, "--stop-after")) {
            char *end;
            a->stop_after = strtoll(argv[++i], &end, 10);
            if (*end || a->stop_after < 1)
                return usage_error(usage, "--stop-after needs a positive "
                                          "step number, got '%s'", argv[i]);
        } else if (!strcmp(arg, "--set")) {
            if (a->n_sets == 64)
                return usage_error(usage, "too many --set options%s", "");
            a->sets[a->n_sets++] = argv[++i];
        } else {
            return usage_error(usage, "unknown option '%s'", arg);
        }
    }
    if (!a->config_path)
        return usage_error(usage, "missing CONFIG file%s", "");
    return 0;
}

static int load_config(const cli_args *a, rc_config *c) {
    rc_config_default(c);
    if (rc_config_load(c, a->config_path) != 0) return -1;
    for (int i = 0; i < a->n_sets; i++)
        if (rc_config_set(c, a->sets[i]) != 0) return -1;
    return rc_config_validate(c);
}

/* recompose eval measures held-out synthetic clips with known motion; a
 * footage config has no such ground truth. */
static int footage_eval_refused(const rc_config *c) {
    if (strcmp(c->source, "shards")) return 0;
    rc_set_error("eval measures held-out synthetic clips, whose true motion "
                 "is known; this config trains on footage (data.source = "
                 "shards). For footage: tools/oracle_eval.sh CONFIG OUTDIR "
                 "NAME=CHECKPOINT (probes against optical flow), recompose "
                 "embed --rev (full versus reversed) and recompose saliency");
    return 1;
}

static int run_eval(const rc_config *c, const char *checkpoint,
                    const char *out_dir) {
    rc_set_threads(c->threads);
    rc_model_shape shape;
    rc_model_shape_from_config(c, &shape);
    rc_model *m = rc_model_create(&shape, rc_backend_cpu());
    if (!m) return fail("eval");
    int64_t step = 0;
    if (rc_checkpoint_load(checkpoint, m, NULL, &step) != 0) {
        rc_model_free(m);
        return fail(NULL);
    }
    if (rc_make_dirs(out_dir) != 0) {
        rc_model_free(m);
        return fail(NULL);
    }
    rc_log("evaluating %s (step %lld)", checkpoint, (long long)step);
    rc_eval_report report;
    int status = rc_evaluate(c, m, &report);
    rc_model_free(m);
    if (status != 0) return fail("eval");
    rc_eval_print_table(stdout, &report);
    char path[1024];
    snprintf(path, sizeof path, "%s/eval.json", out_dir);
    if (rc_eval_write_json(path, &report) != 0) return fail(NULL);
    rc_log("wrote %s", path);
    return 0;
}

static int cmd_train(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(usage_train, stdout);
        return 0;
    }
    cli_args a;
    int rc = parse_args(argc, argv, usage_train,
                        "--out --set --resume --stop-after --eval --quiet --force",
                        &a);
    if (rc) return rc;
    if (!a.out) return usage_error(usage_train, "missing --out DIR%s", "");
    rc_config c;
    if (load_config(&a, &c) != 0) return fail(NULL);
    if (rc_pin_blas_kernels(&c, process_argv) != 0) return fail(NULL);
    rc_train_options opt = {.out_dir = a.out, .resume = a.resume,
                            .stop_after = a.stop_after, .quiet = a.quiet,
                            .force = a.force};
    rc_train_result res;
    if (rc_train(&c, &opt, &res) != 0) {
        fail("train");
        return rc_train_exit_status(&res);
    }
    if (res.stop == RC_STOP_SIGNAL) return rc_train_exit_status(&res);
    /* Under mpirun every rank gets here; rank 0 alone reports and evaluates */
    if (res.rank != 0) return 0;
    if (isnan(res.first_loss))
        rc_log("nothing to train: %s is at step %lld of train.steps %d",
               res.last_checkpoint, (long long)res.steps_done, c.steps);
    else {
        char val[48] = "";
        if (!isnan(res.val_loss))
            snprintf(val, sizeof val, " (validation %.4f)", res.val_loss);
        rc_log("trained to step %lld in %.1f s: loss %.4f -> %.4f%s; "
               "checkpoint %s", (long long)res.steps_done, res.seconds,
               res.first_loss, res.final_loss, val, res.last_checkpoint);
    }
    if (res.skipped_steps)
        rc_log("%lld steps skipped for non-finite loss",
               (long long)res.skipped_steps);
    if (a.eval && footage_eval_refused(&c)) {
        rc_log("--eval skipped: %s", rc_last_error());
        return 0;
    }
    if (a.eval) return run_eval(&c, res.last_checkpoint, a.out);
    return 0;
}

static int cmd_eval(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(usage_eval, stdout);
        return 0;
    }
    cli_args a;
    int rc = parse_args(argc, argv, usage_eval, "--checkpoint --out --set", &a);
    if (rc) return rc;
    if (!a.checkpoint)
        return usage_error(usage_eval, "missing --checkpoint FILE%s", "");
    if (!a.out) return usage_error(usage_eval, "missing --out DIR%s", "");
    rc_config c;
    if (load_config(&a, &c) != 0) return fail(NULL);
    if (rc_pin_blas_kernels(&c, process_argv) != 0) return fail(NULL);
    if (footage_eval_refused(&c)) return fail("eval");
    return run_eval(&c, a.checkpoint, a.out);
}

static int cmd_config(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        fputs(usage_config, stdout);
        return 0;
    }
    cli_args a;
    int rc = parse_args(argc, argv, usage_config, "--set", &a);
    if (rc) return rc;
    rc_config c;
    if (load_config(&a, &c) != 0) return fail(NULL);
    char *ini = rc_config_to_ini(&c);
    fputs(ini, stdout);
    free(ini);
    return 0;
}

/* 1 when macro m is defined as 1 (its expansion is the string "1"), 0
 * when it is not defined (the string is its own name). */
#define RC_FEATURE(m) (sizeof(RC_FEATURE_STR(m)) == 2)
#define RC_FEATURE_STR(m) RC_FEATURE_STR2(m)
#define RC_FEATURE_STR2(m) #m

/* What this build can do: the optional parts CMake found (CMakeLists.txt). */
static void print_features(void) {
    static const struct { const char *name; int on; } f[] = {
        {"video", RC_FEATURE(RC_HAVE_VIDEO)}, {"ffmpeg", RC_FEATURE(RC_HAVE_FFMPEG)},
        {"viz", RC_FEATURE(RC_HAVE_VIZ)},
        {"plots", RC_FEATURE(RC_HAVE_CAIRO)}, {"cuda", RC_FEATURE(RC_HAVE_CUDA)},
        {"nccl", RC_FEATURE(RC_HAVE_NCCL)}, {"mpi", RC_FEATURE(RC_HAVE_MPI)},
        {"onednn", RC_FEATURE(RC_HAVE_ONEDNN)},
    };
    printf("features:");
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        printf(" %s%s", f[i].on ? "+" : "-", f[i].name);
    printf("\n");
}

int main(int argc, char **argv) {
    process_argv = argv;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_main, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "config")) return cmd_config(argc - 2, argv + 2);
#ifdef RC_HAVE_VIZ
    if (!strcmp(cmd, "embed")) return rc_embed_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "neighbors")) return rc_neighbors_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "saliency")) return rc_saliency_main(argc - 1, argv + 1);
#endif
    if (!strcmp(cmd, "pack")) {
#ifdef RC_HAVE_VIDEO
        return rc_pack_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "recompose: this build has no video input; install "
                        "the FFmpeg, TurboJPEG and libpng development "
                        "packages (tools/install-deps.sh) and rebuild\n");
        return 2;
#endif
    }
    if (!strcmp(cmd, "keys")) {
        rc_config_describe(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("recompose %s\n", RC_VERSION);
        printf("BLAS: %s; kernels %s\n", openblas_get_config(), rc_blas_kernels());
        print_features();
#ifdef RC_HAVE_CUDA
        /* the GPUs this build sees (loads the CUDA plugin; 0 without a
         * driver): what a machine without nvidia-smi has */
        if (argc > 2 && !strcmp(argv[2], "--devices"))
            printf("CUDA devices: %d\n", rc_cuda_device_count());
#endif
        return 0;
    }
    fprintf(stderr, "recompose: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
