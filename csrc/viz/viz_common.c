/* viz_common.c: argument parsing, model loading and sidecar JSON shared by
 * `recompose embed`, `neighbors` and `saliency`. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "recompose/checkpoint.h"
#include "recompose/common.h"
#include "recompose/eval.h"
#include "recompose/train.h"
#include "viz/viz_internal.h"

static int usage_error(const viz_args *a, const char *fmt, const char *arg) {
    fprintf(stderr, "recompose %s: ", a->command);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", a->usage);
    return 2;
}

/* Whole-word membership of `opt` in the space-separated list `allowed`. */
static int option_allowed(const char *allowed, const char *opt) {
    size_t n = strlen(opt);
    for (const char *p = strstr(allowed, opt); p; p = strstr(p + 1, opt))
        if ((p == allowed || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static int parse_positive(const viz_args *a, const char *opt, const char *v,
                          int min, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < min || x > 1000000000L) {
        fprintf(stderr, "recompose %s: %s needs an integer >= %d, got '%s'\n",
                a->command, opt, min, v);
        return 2;
    }
    *out = (int)x;
    return 0;
}

static int parse_split(const viz_args *a, const char *v, int *out) {
    if (!strcmp(v, "train")) *out = RC_VIZ_SPLIT_TRAIN;
    else if (!strcmp(v, "val") || !strcmp(v, "heldout"))
        *out = RC_VIZ_SPLIT_HELDOUT;
    else if (!strcmp(v, "all")) *out = RC_VIZ_SPLIT_ALL;
    else return usage_error(a, "--split is train, val or all, not '%s'", v);
    return 0;
}

/* One "--option value" pair; returns 0 or 2. */
static int parse_valued(viz_args *a, const char *opt, const char *v) {
    if (!strcmp(opt, "--checkpoint")) a->checkpoint = v;
    else if (!strcmp(opt, "--out")) a->out = v;
    else if (!strcmp(opt, "--items")) a->items = v;
    else if (!strcmp(opt, "--target")) {
        if (!strcmp(v, "full_rev")) a->target = RC_SALIENCY_FULL_REV;
        else if (!strcmp(v, "norm")) a->target = RC_SALIENCY_NORM;
        else return usage_error(a, "--target is full_rev or norm, not '%s'", v);
    }
    else if (!strcmp(opt, "--set")) {
        if (a->n_sets == VIZ_MAX_SETS)
            return usage_error(a, "too many --set options%s", "");
        a->sets[a->n_sets++] = v;
    } else if (!strcmp(opt, "--split")) return parse_split(a, v, &a->sel.split);
    else if (!strcmp(opt, "--clips"))
        return parse_positive(a, opt, v, 1, &a->sel.max_clips);
    else if (!strcmp(opt, "--stride"))
        return parse_positive(a, opt, v, 1, &a->sel.stride);
    else if (!strcmp(opt, "--k")) return parse_positive(a, opt, v, 1, &a->k);
    else if (!strcmp(opt, "--queries") || !strcmp(opt, "--show"))
        return parse_positive(a, opt, v, 1, &a->n_queries);
    else if (!strcmp(opt, "--zoom"))
        return parse_positive(a, opt, v, 1, &a->zoom);
    else if (!strcmp(opt, "--fps")) {
        char *end;
        a->sel.fps = strtod(v, &end);
        if (*end || end == v || !(a->sel.fps > 0))
            return usage_error(a, "--fps needs a positive number, got '%s'", v);
    } else return usage_error(a, "unknown option '%s'", opt);
    return 0;
}

int viz_parse_args(int argc, char **argv, const char *usage,
                   const char *allowed, viz_args *a) {
    const char *command = argc > 0 ? argv[0] : "viz";
    memset(a, 0, sizeof *a);
    a->command = command;
    a->usage = usage;
    a->sel.split = -1; /* the command picks its default */
    a->sel.stride = 1;
    a->k = 5;
    a->zoom = 2;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return 1;
        }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (a->config_path)
                return usage_error(a, "unexpected argument '%s'", arg);
            a->config_path = arg;
            continue;
        }
        if (!option_allowed(allowed, arg))
            return usage_error(a, "unknown option '%s'", arg);
        if (!strcmp(arg, "--random-init")) a->random_init = 1;
        else if (!strcmp(arg, "--rev")) a->rev = 1;
        else if (!strcmp(arg, "--pixel-diff")) a->pixel_diff = 1;
        else if (!strcmp(arg, "--allow-overlap")) a->allow_overlap = 1;
        else if (i + 1 >= argc)
            return usage_error(a, "option '%s' needs a value", arg);
        else {
            int rc = parse_valued(a, arg, argv[++i]);
            if (rc) return rc;
        }
    }
    if (!a->config_path) return usage_error(a, "missing CONFIG file%s", "");
    if (!a->out) return usage_error(a, "missing --out%s", "");
    int weights = (a->checkpoint != NULL) + a->random_init + a->pixel_diff;
    if (weights == 0)
        return usage_error(a, "give --checkpoint FILE (or --random-init for "
                              "the untrained baseline)%s", "");
    if (weights > 1)
        return usage_error(a, "--checkpoint, --random-init and --pixel-diff "
                              "exclude each other%s", "");
    return 0;
}

int viz_load_config(const viz_args *a, rc_config *c) {
    rc_config_default(c);
    if (rc_config_load(c, a->config_path) != 0) return -1;
    for (int i = 0; i < a->n_sets; i++)
        if (rc_config_set(c, a->sets[i]) != 0) return -1;
    /* The rendered twins (pan, texture, roll) are terms of training on
     * synthetic clips, not part of the model: a checkpoint trained with
     * them embeds footage all the same. (The action head, loss.w_act, is
     * part of the model and stays.) */
    if (!strcmp(c->source, "shards")) {
        c->loss.w_kind[RC_PAIR_FULL_PAN] = 0;
        c->loss.w_kind[RC_PAIR_FULL_TEX] = 0;
        c->loss.w_kind[RC_PAIR_FULL_ROLL] = 0;
    }
    return rc_config_validate(c);
}

rc_model *viz_load_model(const viz_args *a, const rc_config *c,
                         int64_t *step) {
    rc_set_threads(c->threads);
    rc_model_shape shape;
    rc_model_shape_from_config(c, &shape);
    rc_model *m = rc_model_create(&shape, rc_backend_cpu());
    if (!m) return NULL;
    *step = 0;
    if (a->random_init) {
        /* the same initialisation training starts from */
        rc_model_init_weights(m, c->seed);
        return m;
    }
    if (rc_checkpoint_load(a->checkpoint, m, NULL, step) != 0) {
        rc_model_free(m);
        return NULL;
    }
    return m;
}

int viz_open(viz_args *a, rc_config *c, int synthetic_clips, int out_dir,
             rc_model **m, int64_t *step, rc_viz_clipset *cs) {
    if (viz_load_config(a, c) != 0) return -1;
    int synthetic = !strcmp(c->source, "synthetic");
    if (a->sel.split < 0)
        a->sel.split = synthetic ? RC_VIZ_SPLIT_HELDOUT : RC_VIZ_SPLIT_ALL;
    if (synthetic && a->sel.max_clips == 0) a->sel.max_clips = synthetic_clips;
    if (out_dir && viz_make_dir(a->out) != 0) return -1;
    *m = NULL;
    *step = 0;
    if (!a->pixel_diff && !(*m = viz_load_model(a, c, step))) return -1;
    if (rc_viz_clips_load(c, &a->sel, cs) != 0) {
        rc_model_free(*m);
        *m = NULL;
        return -1;
    }
    return 0;
}

int viz_fail(const viz_args *a) {
    fprintf(stderr, "recompose %s: error: %s\n", a->command, rc_last_error());
    return 1;
}

json_t *viz_clip_json(const rc_viz_clipset *cs, int i) {
    const rc_viz_clip *k = &cs->clips[i];
    json_t *o = json_object();
    json_object_set_new(o, "row", json_integer(i));
    json_object_set_new(o, "source", json_string(k->source));
    json_object_set_new(o, "split",
                        json_string(k->split ? "heldout" : "train"));
    if (cs->synthetic) {
        char key[32];
        snprintf(key, sizeof key, "0x%016llx", (unsigned long long)k->key);
        double net[3];
        rc_viz_clip_net_motion(cs, i, net);
        json_object_set_new(o, "clip_index", json_integer((json_int_t)k->index));
        json_object_set_new(o, "clip_key", json_string(key));
        json_object_set_new(o, "vx", json_real(k->vx));
        json_object_set_new(o, "vy", json_real(k->vy));
        json_object_set_new(o, "omega", json_real(k->omega));
        json_object_set_new(o, "net_dx", json_real(net[0]));
        json_object_set_new(o, "net_dy", json_real(net[1]));
        json_object_set_new(o, "net_dtheta", json_real(net[2]));
        json_object_set_new(o, "motion_class", json_integer(k->motion_class));
        json_t *fr = json_array();
        for (int t = 0; t <= cs->T; t++) json_array_append_new(fr, json_integer(t));
        json_object_set_new(o, "frames", fr);
        return o;
    }
    json_object_set_new(o, "sequence", json_integer(k->sequence));
    json_object_set_new(o, "start_record", json_integer(k->start));
    json_t *fr = json_array(), *tm = json_array();
    for (int t = 0; t <= cs->T; t++) {
        json_array_append_new(fr, json_integer(k->frame_numbers[t]));
        json_array_append_new(tm, cs->fps > 0
                                      ? json_real((double)k->frame_numbers[t] /
                                                  cs->fps)
                                      : json_null());
    }
    json_object_set_new(o, "frames", fr);
    json_object_set_new(o, "times_s", tm);
    json_t *crop = json_array();
    for (int j = 0; j < 4; j++) json_array_append_new(crop, json_real(k->crop[j]));
    json_object_set_new(o, "crop", crop);
    return o;
}

json_t *viz_sidecar_header(const viz_args *a, const rc_config *c,
                           const rc_viz_clipset *cs, int64_t step) {
    json_t *j = json_object();
    json_object_set_new(j, "command", json_string(a->command));
    json_object_set_new(j, "config", json_string(a->config_path));
    json_object_set_new(j, "checkpoint",
                        json_string(a->checkpoint  ? a->checkpoint
                                    : a->pixel_diff ? "pixel-diff"
                                                    : "random-init"));
    json_object_set_new(j, "step", json_integer((json_int_t)step));
    json_object_set_new(j, "data_source", json_string(c->source));
    if (!cs->synthetic) {
        json_object_set_new(j, "data_path", json_string(c->data_path));
        json_object_set_new(j, "frame_stride", json_integer(cs->frame_stride));
        json_object_set_new(j, "window_stride", json_integer(a->sel.stride));
        json_object_set_new(j, "fps", cs->fps > 0 ? json_real(cs->fps)
                                                  : json_null());
    } else {
        json_object_set_new(j, "seed", json_integer((json_int_t)c->seed));
    }
    json_object_set_new(j, "clips", json_integer(cs->n));
    json_object_set_new(j, "clip_frames", json_integer(cs->T + 1));
    json_object_set_new(j, "image_size", json_integer(cs->S));
    json_object_set_new(j, "channels", json_integer(cs->C));
    json_object_set_new(j, "embed_dim", json_integer(c->embed_dim));
    return j;
}

int viz_write_json(const char *path, json_t *j) {
    if (json_dump_file(j, path, JSON_INDENT(1) | JSON_REAL_PRECISION(9)) != 0)
        return rc_set_error("cannot write %s", path);
    return 0;
}

int viz_make_dir(const char *path) { return rc_make_dirs(path); }

int viz_parse_items(const char *s, int n, int **out) {
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int *v = rc_xmalloc(sizeof(int) * (size_t)cap), count = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p || x < 0 || x >= n || (*end && *end != ',')) {
            free(v);
            return rc_set_error("--items '%s': each item is a clip row "
                                "0..%d, separated by commas", s, n - 1);
        }
        v[count++] = (int)x;
        p = *end ? end + 1 : end;
    }
    *out = v;
    return count;
}

/* ---- embeddings in batches ---------------------------------------------- */

static void clip_sequence(int kind, int T, rc_sequence *s) {
    s->n_frames = T + 1;
    for (int t = 0; t <= T; t++)
        s->frames[t] = kind == RC_SEQ_REV ? T - t : t;
}

int rc_viz_embed_clips(rc_model *m, const rc_viz_clipset *cs, int kind,
                       float *emb) {
    if (kind != RC_SEQ_FULL && kind != RC_SEQ_REV)
        return rc_set_error("viz: only full and rev sequences are embedded");
    int D = rc_model_get_shape(m)->embed_dim;
    size_t clip_elems = (size_t)(cs->T + 1) * cs->C * cs->S * cs->S;
    rc_sequence *seqs = rc_xmalloc(sizeof *seqs * RC_EVAL_CLIP_BATCH);
    int *clip_of = rc_xmalloc(sizeof(int) * RC_EVAL_CLIP_BATCH);
    int rc = 0;
    for (int first = 0; first < cs->n && rc == 0; first += RC_EVAL_CLIP_BATCH) {
        int nb = cs->n - first < RC_EVAL_CLIP_BATCH ? cs->n - first
                                                    : RC_EVAL_CLIP_BATCH;
        for (int b = 0; b < nb; b++) {
            clip_sequence(kind, cs->T, &seqs[b]);
            clip_of[b] = b;
        }
        rc = rc_model_embed(m, nb, cs->T, cs->frames + (size_t)first * clip_elems,
                            nb, seqs, clip_of, emb + (size_t)first * D);
    }
    free(seqs);
    free(clip_of);
    return rc;
}
