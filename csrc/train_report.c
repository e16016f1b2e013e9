/* train_report.c: the window statistics, metrics.jsonl and the progress
 * line of a training run; see train_report.h. */
#include "train_report.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "recompose/common.h"

void rc_train_report_init(rc_train_report *r, FILE *metrics, int progress,
                          int64_t first_step, int64_t total_steps, int batch) {
    memset(r, 0, sizeof *r);
    r->metrics = metrics;
    r->progress = progress;
    r->tty = progress && isatty(fileno(stderr));
    r->first_step = first_step;
    r->total_steps = total_steps;
    r->batch = batch;
    r->train_start = r->window_start = rc_now();
}

void rc_train_report_add(rc_train_report *r, double loss,
                         double pairs_per_tuple,
                         const double loss_by_kind[RC_PAIR_KINDS],
                         double loss_action, const double grad_phi[2]) {
    r->loss += loss;
    r->loss_action += loss_action;
    r->grad_phi[0] += grad_phi[0];
    r->grad_phi[1] += grad_phi[1];
    r->pairs_per_tuple += pairs_per_tuple;
    for (int k = 0; k < RC_PAIR_KINDS; k++) r->loss_by_kind[k] += loss_by_kind[k];
    r->n++;
}

void rc_train_report_pause(rc_train_report *r, double seconds) {
    r->window_start += seconds;
}

static void format_duration(double s, char *buf, size_t n) {
    if (s < 0 || !isfinite(s)) s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%dh%02dm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
}

static void write_metrics_line(FILE *f, const rc_report_point *at, double loss,
                               const double loss_by_kind[RC_PAIR_KINDS],
                               double loss_action, const double grad_phi[2],
                               double pairs_per_tuple, double tuples_per_s,
                               double elapsed) {
    json_t *j = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:I}", "step",
                          (json_int_t)at->step, "loss", loss, "lr", at->lr,
                          "grad_norm", at->grad_norm,
                          "distinct_pairs_per_tuple", pairs_per_tuple,
                          "tuples_per_s", tuples_per_s, "elapsed_s", elapsed,
                          "skipped_steps", (json_int_t)at->skipped_steps);
    json_t *kinds = json_object();
    for (int k = 0; k < RC_PAIR_KINDS; k++)
        json_object_set_new(kinds, rc_pair_kind_names[k], json_real(loss_by_kind[k]));
    json_object_set_new(kinds, "action", json_real(loss_action));
    json_object_set_new(j, "loss_by_kind", kinds);
    json_t *g = json_object();
    json_object_set_new(g, "hinge", json_real(grad_phi[0]));
    json_object_set_new(g, "action", json_real(grad_phi[1]));
    json_object_set_new(j, "grad_phi", g);
    if (!isnan(at->val_loss))
        json_object_set_new(j, "val_loss", json_real(at->val_loss));
    char *line = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fprintf(f, "%s\n", line);
    fflush(f);
    free(line);
    json_decref(j);
}

static void write_progress_line(const rc_train_report *r,
                                const rc_report_point *at, double loss,
                                double tuples_per_s, double pairs_per_tuple) {
    double elapsed = rc_now() - r->train_start;
    double rate = (double)(at->step - r->first_step) / (elapsed > 0 ? elapsed : 1);
    char eta[32], val[48] = "";
    format_duration(rate > 0 ? (double)(r->total_steps - at->step) / rate : 0,
                    eta, sizeof eta);
    if (r->tty) {
        if (!isnan(at->val_loss))
            snprintf(val, sizeof val, "  val %.4f", at->val_loss);
        fprintf(stderr,
                "\r\033[Kstep %lld/%lld  loss %.4f%s  lr %.2e  |g| %.3g  %.1f "
                "tuples/s  %.1f pairs/tuple  ETA %s",
                (long long)at->step, (long long)r->total_steps, loss, val,
                at->lr, at->grad_norm, tuples_per_s, pairs_per_tuple, eta);
        if (at->last) fputc('\n', stderr);
    } else {
        if (!isnan(at->val_loss))
            snprintf(val, sizeof val, " val_loss %.5f", at->val_loss);
        fprintf(stderr,
                "recompose: step %lld/%lld loss %.5f%s lr %.3e grad_norm %.4g "
                "tuples/s %.1f pairs/tuple %.2f eta %s\n",
                (long long)at->step, (long long)r->total_steps, loss, val,
                at->lr, at->grad_norm, tuples_per_s, pairs_per_tuple, eta);
    }
    fflush(stderr);
}

double rc_train_report_window(rc_train_report *r, rc_comm *comm,
                              const rc_report_point *at) {
    if (r->n == 0) return NAN;
    double now = rc_now();
    int world = rc_comm_size(comm);
    double loss = r->loss / r->n, pairs_per_tuple = r->pairs_per_tuple / r->n;
    double tuples_per_s = (double)r->n * r->batch * world / (now - r->window_start);
    /* this rank's tuples, averaged over the ranks like the loss */
    double by_kind[RC_PAIR_KINDS];
    for (int k = 0; k < RC_PAIR_KINDS; k++)
        by_kind[k] = rc_comm_sum(comm, r->loss_by_kind[k] / r->n) / world;
    double action = rc_comm_sum(comm, r->loss_action / r->n) / world;
    double grad_phi[2];
    for (int k = 0; k < 2; k++)
        grad_phi[k] = rc_comm_sum(comm, r->grad_phi[k] / r->n) / world;
    write_metrics_line(r->metrics, at, loss, by_kind, action, grad_phi,
                       pairs_per_tuple, tuples_per_s, now - r->train_start);
    if (r->progress)
        write_progress_line(r, at, loss, tuples_per_s, pairs_per_tuple);
    r->loss = r->pairs_per_tuple = r->loss_action = 0;
    r->grad_phi[0] = r->grad_phi[1] = 0;
    memset(r->loss_by_kind, 0, sizeof r->loss_by_kind);
    r->n = 0;
    r->window_start = now;
    return loss;
}
