/* train_report.h: what a training run tells its user as it goes (private to
 * csrc/; train.c is the user): the statistics of the steps since the last
 * report (a window), one line of metrics.jsonl and the progress line per
 * report.
 *
 * Every rank keeps its own window; the report averages the loss by pair
 * kind over the ranks (a collective: every rank reports at the same steps).
 * The total loss is already the ranks' mean when it is added.
 */
#ifndef RC_TRAIN_REPORT_H
#define RC_TRAIN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "recompose/comm.h"
#include "recompose/sampler.h"

typedef struct {
    FILE *metrics;        /* metrics.jsonl (/dev/null on ranks other than 0) */
    int progress;         /* print the progress line */
    int tty;              /* ... rewritten in place (stderr is a terminal) */
    int64_t first_step, total_steps;
    int batch;            /* tuples per step on this rank */
    double train_start, window_start;
    /* the good steps since the last report */
    double loss, pairs_per_tuple, loss_by_kind[RC_PAIR_KINDS], loss_action;
    double grad_phi[2];
    int n;
} rc_train_report;

void rc_train_report_init(rc_train_report *r, FILE *metrics, int progress,
                          int64_t first_step, int64_t total_steps, int batch);

/* A step whose update was applied: its loss (the ranks' mean), its distinct
 * pairs per tuple and this rank's loss by pair kind and action term (in
 * metrics.jsonl's loss_by_kind as "action"; with the kinds it adds up to
 * the loss), and the norms of dL/dphi from the hinge loss and the action
 * term (rc_model_term_grad_norms; metrics.jsonl's grad_phi). */
void rc_train_report_add(rc_train_report *r, double loss,
                         double pairs_per_tuple,
                         const double loss_by_kind[RC_PAIR_KINDS],
                         double loss_action, const double grad_phi[2]);

typedef struct {
    int64_t step;        /* steps done */
    double lr, grad_norm;
    int64_t skipped_steps;
    int last;            /* the run's last report: end the progress line */
    double val_loss;     /* validation loss at this step, NAN: none */
} rc_report_point;

/* Leave `seconds` (a validation pass) out of the window's throughput. */
void rc_train_report_pause(rc_train_report *r, double seconds);

/* Write the window's means (metrics.jsonl, progress line) and start a new
 * window. Returns the window's mean loss, or NAN when it had no good step
 * (then nothing is written). Collective over the ranks of comm. */
double rc_train_report_window(rc_train_report *r, rc_comm *comm,
                              const rc_report_point *at);

#endif
