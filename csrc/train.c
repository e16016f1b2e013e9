/* train.c: the training loop.
 *
 * The data of step k is a pure function of (seed, k): the clip keys, the
 * tuple sampling and the rendering all derive from them. With the optimiser
 * state, weights and step in the checkpoint, a resumed run is bitwise the
 * same as an uninterrupted one (for the same thread count).
 */
#include "recompose/train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>

#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/model.h"
#include "recompose/optim.h"
#include "recompose/rng.h"
#include "recompose/sampler.h"
#include "recompose/synth.h"
#ifdef RC_HAVE_VIDEO
#include "recompose/video.h"
#endif

void rc_set_threads(int threads) {
    if (threads <= 0) threads = omp_get_num_procs();
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

/* ---- data ------------------------------------------------------------------ */

/* Key of clip b of training step `step`. For synthetic data it also
 * determines the clip's texture and motion. */
static uint64_t train_clip_key(const rc_config *c, int64_t step, int b) {
    return rc_synth_clip_key(c->seed, RC_SPLIT_TRAIN,
                             (uint64_t)step * (uint64_t)c->batch + (uint64_t)b);
}

/* The recomposition tuples of a step: one per clip, drawn from its key. */
static int plan_for_step(const rc_config *c, int64_t step, rc_tuple *tuples,
                         rc_batch_plan *plan) {
    for (int b = 0; b < c->batch; b++) {
        rc_rng rng;
        rc_rng_seed(&rng, rc_hash_combine(train_clip_key(c, step, b),
                                          0x7475706cULL /* "tupl" */));
        rc_sample_tuple(c->clip_steps, &rng, &tuples[b]);
    }
    rc_plan_free(plan);
    return rc_plan_build(plan, tuples, c->batch, c->clip_steps, &c->loss,
                         c->dedup);
}

static void render_synthetic_batch(const rc_config *c, int64_t step,
                                   float *frames) {
    rc_synth_config sc;
    rc_config_synth(c, &sc);
    size_t clip_elems = (size_t)(c->clip_steps + 1) * sc.channels * sc.size *
                        sc.size;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < c->batch; b++) {
        rc_motion motion;
        rc_synth_motion(&sc, train_clip_key(c, step, b), &motion);
        rc_synth_render(&sc, &motion, 0, c->clip_steps + 1,
                        frames + (size_t)b * clip_elems);
    }
}

int rc_make_train_batch(const rc_config *c, int64_t step, float *frames,
                        rc_batch_plan *plan) {
    render_synthetic_batch(c, step, frames);
    rc_tuple *tuples = rc_xmalloc((size_t)c->batch * sizeof *tuples);
    int status = plan_for_step(c, step, tuples, plan);
    free(tuples);
    return status;
}

/* ---- real footage ------------------------------------------------------------- */

#ifdef RC_HAVE_VIDEO
static rc_loader *open_shard_loader(const rc_config *c, rc_dataset **ds) {
    *ds = rc_dataset_open(c->data_path, c->on_bad ? RC_ON_BAD_SKIP
                                                   : RC_ON_BAD_FAIL);
    if (!*ds) return NULL;
    rc_loader_options o;
    rc_loader_options_default(&o);
    o.threads = c->loader_threads;
    o.batch = c->batch;
    o.clip_steps = c->clip_steps;
    o.frame_stride = c->frame_stride;
    o.size = c->image_size;
    o.channels = c->channels;
    o.resize = c->resize;
    o.random_crop = c->random_crop;
    o.flip = c->flip;
    o.seed = c->seed;
    o.ring = c->ring;
    o.on_bad = c->on_bad ? RC_ON_BAD_SKIP : RC_ON_BAD_FAIL;
    o.validation = 0;
    o.val_fraction = c->val_fraction;
    rc_loader *l = rc_loader_create(*ds, &o);
    if (!l) {
        rc_dataset_close(*ds);
        *ds = NULL;
    }
    return l;
}
#endif

/* ---- output directory -------------------------------------------------------- */

static int make_dirs(const char *path) {
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return rc_set_error("output path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return rc_set_error("cannot create directory %s: %s", buf,
                                strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return rc_set_error("cannot create directory %s: %s", buf,
                            strerror(errno));
    return 0;
}

/* Fail at start, not after an hour of training, if DIR cannot be written. */
static int check_writable(const char *dir) {
    if (make_dirs(dir) != 0) return -1;
    if (access(dir, W_OK) != 0)
        return rc_set_error("output directory %s is not writable: %s", dir,
                            strerror(errno));
    return 0;
}

static int write_text_file(const char *dir, const char *name,
                           const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) return rc_set_error("cannot write %s: %s", path, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : rc_set_error("cannot write %s: %s", path, strerror(errno));
}

/* ---- progress ---------------------------------------------------------------- */

typedef struct {
    int tty;
    double start;
    int64_t first_step;
} progress;

static void format_duration(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%dh%02dm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
}

static void progress_report(const progress *pr, int64_t step, int64_t total,
                            double loss, double tuples_per_s, double lr,
                            double pairs_per_tuple, int final_line) {
    double elapsed = rc_now() - pr->start;
    double rate = (double)(step - pr->first_step) / (elapsed > 0 ? elapsed : 1);
    char eta[32];
    format_duration(rate > 0 ? (double)(total - step) / rate : 0, eta, sizeof eta);
    if (pr->tty) {
        fprintf(stderr,
                "\r\033[Kstep %lld/%lld  loss %.4f  lr %.2e  %.1f tuples/s  "
                "%.1f pairs/tuple  ETA %s",
                (long long)step, (long long)total, loss, lr, tuples_per_s,
                pairs_per_tuple, eta);
        if (final_line) fputc('\n', stderr);
    } else {
        fprintf(stderr,
                "recompose: step %lld/%lld loss %.5f lr %.3e tuples/s %.1f "
                "pairs/tuple %.2f eta %s\n",
                (long long)step, (long long)total, loss, lr, tuples_per_s,
                pairs_per_tuple, eta);
    }
    fflush(stderr);
}

/* ---- the loop ------------------------------------------------------------------ */

typedef struct {
    const rc_config *cfg;
    const rc_train_options *opt;
    rc_model *model;
    rc_adamw adam;
    FILE *metrics;
} trainer;

static int save_checkpoint(trainer *t, int64_t step, rc_train_result *res) {
    char *path = rc_checkpoint_path(t->opt->out_dir, step);
    int status = rc_checkpoint_save(path, t->model, &t->adam, step, t->cfg);
    if (status == 0)
        snprintf(res->last_checkpoint, sizeof res->last_checkpoint, "%s", path);
    free(path);
    return status;
}

static int resume_from(trainer *t, const char *where, int64_t *step) {
    char *path = NULL;
    struct stat st;
    if (stat(where, &st) == 0 && S_ISDIR(st.st_mode)) {
        path = rc_checkpoint_latest(where);
        if (!path)
            return rc_set_error("--resume %s: no checkpoint (ckpt-*.safetensors) "
                                "in that directory", where);
    } else {
        path = strdup(where);
    }
    int status = rc_checkpoint_load(path, t->model, &t->adam, step);
    if (status == 0)
        rc_log("resumed from %s at step %lld", path, (long long)*step);
    free(path);
    return status;
}

static void log_metrics(trainer *t, int64_t step, double loss, double lr,
                        double grad_norm, double pairs_per_tuple,
                        double tuples_per_s, double elapsed, int64_t skipped) {
    json_t *j = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "step",
                          (json_int_t)step, "loss", loss, "lr", lr, "grad_norm",
                          grad_norm, "distinct_pairs_per_tuple", pairs_per_tuple,
                          "tuples_per_s", tuples_per_s, "elapsed_s", elapsed,
                          "skipped_steps", (json_int_t)skipped);
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fprintf(t->metrics, "%s\n", line);
    fflush(t->metrics);
    free(line);
    json_decref(j);
}

int rc_train(const rc_config *c, const rc_train_options *opt,
             rc_train_result *res) {
    memset(res, 0, sizeof *res);
    if (rc_config_validate(c) != 0) return -1;
    if (check_writable(opt->out_dir) != 0) return -1;
    rc_set_threads(c->threads);

    trainer t = {.cfg = c, .opt = opt};
    const rc_backend *be = rc_backend_cpu();
    rc_model_shape shape;
    rc_model_shape_from_config(c, &shape);
    t.model = rc_model_create(&shape, be);
    if (!t.model) return -1;
    rc_model_init_weights(t.model, c->seed);
    rc_adamw_init(&t.adam, c, rc_model_numel(t.model), be);

    int status = 0;
    int64_t step = 0;
    if (opt->resume && (status = resume_from(&t, opt->resume, &step)) != 0)
        goto done;

    char *ini = rc_config_to_ini(c);
    status = write_text_file(opt->out_dir, "config.ini", ini);
    free(ini);
    if (status != 0) goto done;

    char metrics_path[1024];
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", opt->out_dir);
    t.metrics = fopen(metrics_path, step > 0 ? "a" : "w");
    if (!t.metrics) {
        status = rc_set_error("cannot open %s: %s", metrics_path, strerror(errno));
        goto done;
    }

    int B = c->batch, T = c->clip_steps;
    size_t clip_elems = (size_t)(T + 1) * c->channels * c->image_size * c->image_size;
    int use_shards = !strcmp(c->source, "shards");
    void *dataset = NULL, *loader = NULL;
    if (use_shards) {
#ifdef RC_HAVE_VIDEO
        loader = open_shard_loader(c, (rc_dataset **)&dataset);
        if (!loader) {
            status = -1;
            fclose(t.metrics);
            goto done;
        }
#else
        status = rc_set_error("data.source = shards needs video input, but "
                              "this build has none (install FFmpeg, "
                              "TurboJPEG and libpng dev packages: "
                              "tools/install-deps.sh, then rebuild)");
        fclose(t.metrics);
        goto done;
#endif
    }
    float *frames = use_shards ? NULL
                               : rc_xmalloc((size_t)B * clip_elems * sizeof(float));
    rc_tuple *tuples = rc_xmalloc((size_t)B * sizeof *tuples);
    rc_batch_plan plan;
    memset(&plan, 0, sizeof plan);
    /* The longest sequence is the loop (2T pairs); a tuple has at most
     * 6 sequences x 2T steps distinct pairs. Reserve once. */
    rc_model_reserve(t.model, B * RC_SEQ_KINDS * 2 * T, B * RC_SEQ_KINDS, 2 * T);

    int64_t end = c->steps;
    if (opt->stop_after > 0 && opt->stop_after < end) end = opt->stop_after;
    progress pr = {.tty = !opt->quiet && isatty(STDERR_FILENO), .start = rc_now(),
                   .first_step = step};
    double window_loss = 0, window_pairs = 0, grad_norm = 0;
    int window_n = 0;
    double window_start = rc_now(), train_start = rc_now();
    res->first_loss = NAN;

    while (step < end) {
        const float *batch = frames;
        if (use_shards) {
#ifdef RC_HAVE_VIDEO
            batch = rc_loader_get_batch(loader, step);
            if (!batch) {
                status = -1;
                break;
            }
#endif
        } else {
            render_synthetic_batch(c, step, frames);
        }
        if ((status = plan_for_step(c, step, tuples, &plan)) != 0) break;
        double loss = rc_model_step(t.model, &plan, batch, &c->loss, 1, NULL);
#ifdef RC_HAVE_VIDEO
        if (use_shards) rc_loader_release(loader, step);
#endif
        if (!isfinite(loss)) {
            /* Never apply a non-finite update: skip the step and count it. */
            res->skipped_steps++;
            rc_log("step %lld: non-finite loss, step skipped (%lld so far)",
                   (long long)step, (long long)res->skipped_steps);
        } else {
            grad_norm = rc_adamw_step(&t.adam, t.model, step);
            window_loss += loss;
            window_pairs += (double)plan.n_pairs / B;
            window_n++;
        }
        step++;
        int log_now = step % c->log_every == 0 || step == end;
        if (log_now && window_n > 0) {
            double now = rc_now();
            double mean_loss = window_loss / window_n;
            double tps = (double)window_n * B / (now - window_start);
            double ppt = window_pairs / window_n;
            float lr = rc_lr_at(&t.adam, step - 1);
            if (isnan(res->first_loss)) res->first_loss = mean_loss;
            res->final_loss = mean_loss;
            log_metrics(&t, step, mean_loss, lr, grad_norm, ppt, tps,
                        now - train_start, res->skipped_steps);
            if (!opt->quiet)
                progress_report(&pr, step, c->steps, mean_loss, tps, lr, ppt,
                                step == end);
            window_loss = window_pairs = 0;
            window_n = 0;
            window_start = now;
        }
        if (step % c->checkpoint_every == 0 || step == end) {
            if ((status = save_checkpoint(&t, step, res)) != 0) break;
        }
    }
    res->steps_done = step;
    res->seconds = rc_now() - train_start;
#ifdef RC_HAVE_VIDEO
    if (use_shards) {
        rc_loader_report_bad(loader, stderr);
        rc_loader_destroy(loader);
        rc_dataset_close(dataset);
    }
#endif
    (void)dataset;
    (void)loader;
    free(frames);
    free(tuples);
    rc_plan_free(&plan);
    fclose(t.metrics);

done:
    rc_adamw_free(&t.adam);
    rc_model_free(t.model);
    return status;
}
