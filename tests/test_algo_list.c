/* test_algo_list.c: the cuDNN algorithm fallback of the CUDA backend
 * (kernels/algo_list.h) against a fake pass whose candidates fail on
 * command, so the logic a GPU needs is checked where there is none:
 *  - the first candidate that runs is used, and stays in use: later calls
 *    start at it and never retry those that failed;
 *  - each failure is reported once, with its candidate and status;
 *  - when all fail, the pass fails with the last status, every later call
 *    fails at once (no candidate is re-run). */
#include <stdio.h>
#include <string.h>

#include "algo_list.h"
#include "test_util.h"

typedef struct {
    int fails_until;    /* candidates (algo ids) below this fail */
    int ran[16];        /* calls per algo id */
    int notes, last_failed, last_status;
} fake;

static int fake_run(void *ctx, int algo, int math, size_t ws) {
    fake *f = ctx;
    (void)math, (void)ws;
    f->ran[algo]++;
    return algo < f->fails_until ? 100 + algo : 0;
}

static void fake_note(void *ctx, const rc_algo_list *l, int failed, int status) {
    fake *f = ctx;
    (void)l;
    f->notes++;
    f->last_failed = failed;
    f->last_status = status;
}

static void fill(rc_algo_list *l, int n) {
    rc_algo_list_clear(l);
    for (int i = 0; i < n; i++) CHECK(rc_algo_list_add(l, i, 0, (size_t)(1000 * (n - i))));
}

int main(void) {
    rc_algo_list l;
    fake f;

    /* the best one runs: no fallback, no note */
    fill(&l, 3);
    memset(&f, 0, sizeof f);
    CHECK(rc_algo_list_run(&l, fake_run, fake_note, &f) == 0);
    CHECK(l.current == 0 && f.notes == 0 && f.ran[0] == 1);

    /* the first two fail: the third runs and is kept */
    fill(&l, 4);
    memset(&f, 0, sizeof f);
    f.fails_until = 2;
    CHECK(rc_algo_list_run(&l, fake_run, fake_note, &f) == 0);
    CHECK(l.current == 2 && f.notes == 2 && f.last_failed == 1 && f.last_status == 101);
    CHECK(l.ws[l.current] == 2000); /* the backend reserves the current one's */
    for (int k = 0; k < 5; k++) CHECK(rc_algo_list_run(&l, fake_run, fake_note, &f) == 0);
    CHECK(f.ran[0] == 1 && f.ran[1] == 1 && f.ran[2] == 6 && f.ran[3] == 0);
    CHECK(f.notes == 2);

    /* all fail: the last status, and no candidate runs again */
    fill(&l, 3);
    memset(&f, 0, sizeof f);
    f.fails_until = 99;
    CHECK(rc_algo_list_run(&l, fake_run, fake_note, &f) == 102);
    CHECK(l.current == 3 && f.notes == 3);
    CHECK(rc_algo_list_run(&l, fake_run, fake_note, &f) == -1);
    CHECK(f.ran[0] == 1 && f.ran[1] == 1 && f.ran[2] == 1);

    /* no candidate at all; a full list refuses more */
    rc_algo_list_clear(&l);
    CHECK(rc_algo_list_run(&l, fake_run, NULL, &f) == -1);
    fill(&l, RC_ALGO_CANDIDATES);
    CHECK(rc_algo_list_add(&l, 99, 0, 1) == 0 && l.n == RC_ALGO_CANDIDATES);
    TEST_DONE();
}
