/* test_rendezvous.c: ranks without MPI agree on rank 0's bytes (the NCCL id
 * of a torchrun- or srun-started GPU job), over TCP and over a shared file,
 * with real processes (fork) on this machine:
 *  - every rank of 4 ends with rank 0's 128 random bytes, whoever starts
 *    first (rank 0 last is the usual case: the others retry);
 *  - a missing peer: rank 0 fails within the timeout naming the missing
 *    rank, and the rank that did come is told rank 0 gave up;
 *  - a missing rank 0: the others fail within the timeout, naming the
 *    address;
 *  - a peer of another job (token) is refused, not joined;
 *  - a rank 0 that failed before it had an id tells the others at once;
 *  - files a crashed run left behind (bytes and a go) are not taken for
 *    this run's;
 *  - the file way leaves no file behind. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "comm/rendezvous.h"
#include "recompose/common.h"
#include "test_util.h"

enum { ID = 128, MAXR = 8 };

/* A port nobody listens on now (bound, then released). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &n) != 0)
        return 29500 + (int)(getpid() % 1000);
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

typedef struct {
    int status;              /* rc_rendezvous_share's return */
    unsigned char data[ID];
    char error[600];
} outcome;

/* Start ranks listed in `ranks` (n of them) of a world, each in a child
 * after delay_ms[i]; gather each one's outcome through a pipe. */
static void run_ranks(const rc_rendezvous *r, int world, const int *ranks,
                      const int *delay_ms, int n, const unsigned char *payload,
                      outcome *out) {
    int fds[MAXR][2];
    pid_t pid[MAXR];
    for (int i = 0; i < n; i++) {
        if (pipe(fds[i]) != 0) abort();
        pid[i] = fork();
        if (pid[i] == 0) {
            close(fds[i][0]);
            struct timespec ts = {delay_ms[i] / 1000, (long)(delay_ms[i] % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            outcome o;
            memset(&o, 0, sizeof o);
            if (ranks[i] == 0) memcpy(o.data, payload, ID);
            o.status = rc_rendezvous_share(r, ranks[i], world, o.data, ID);
            if (o.status != 0) snprintf(o.error, sizeof o.error, "%s", rc_last_error());
            ssize_t w = write(fds[i][1], &o, sizeof o);
            _exit(w == (ssize_t)sizeof o ? 0 : 1);
        }
        close(fds[i][1]);
    }
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].status = -99;
        ssize_t got = read(fds[i][0], &out[i], sizeof out[i]);
        if (got != (ssize_t)sizeof out[i]) out[i].status = -99;
        close(fds[i][0]);
        waitpid(pid[i], NULL, 0);
    }
}

static void all_agree(const char *how, rc_rendezvous *r) {
    unsigned char payload[ID];
    srand((unsigned)time(NULL));
    for (int i = 0; i < ID; i++) payload[i] = (unsigned char)(rand() & 255);
    int ranks[4] = {1, 2, 3, 0}, delay[4] = {0, 50, 0, 300}; /* rank 0 last */
    outcome o[4];
    double t0 = rc_now();
    run_ranks(r, 4, ranks, delay, 4, payload, o);
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(o[i].status == 0, "%s: rank %d: %s", how, ranks[i], o[i].error);
        CHECK_MSG(memcmp(o[i].data, payload, ID) == 0, "%s: rank %d got other bytes",
                  how, ranks[i]);
    }
    printf("%s: 4 ranks agree in %.2f s\n", how, rc_now() - t0);
}

static void missing_peer(const char *how, rc_rendezvous *r) {
    unsigned char payload[ID] = {1, 2, 3};
    int ranks[2] = {0, 1}, delay[2] = {0, 0};
    outcome o[2];
    r->timeout_s = 1.0;
    double t0 = rc_now();
    run_ranks(r, 3, ranks, delay, 2, payload, o);
    double took = rc_now() - t0;
    CHECK_MSG(o[0].status != 0 && strstr(o[0].error, "rank 2 of 3 did not arrive"),
              "%s: rank 0 with a missing peer: status %d, '%s'", how, o[0].status,
              o[0].error);
    CHECK_MSG(o[1].status != 0, "%s: rank 1 should fail when rank 0 gives up", how);
    CHECK_MSG(took < 6, "%s: missing peer took %.1f s with a 1 s timeout", how, took);
    printf("%s, missing peer: rank 0: %s\n  rank 1: %s\n", how, o[0].error, o[1].error);
}

static void missing_root(const char *how, rc_rendezvous *r) {
    int ranks[1] = {1}, delay[1] = {0};
    outcome o[1];
    r->timeout_s = 1.0;
    run_ranks(r, 2, ranks, delay, 1, NULL, o);
    CHECK_MSG(o[0].status != 0 && strstr(o[0].error, "rank 0"),
              "%s: no rank 0: status %d, '%s'", how, o[0].status, o[0].error);
    printf("%s, no rank 0: %s\n", how, o[0].error);
}

/* rank 1 of another job meets this job's rank 0: refused */
static void other_job(rc_rendezvous *r) {
    unsigned char payload[ID] = {9};
    rc_rendezvous stranger = *r;
    snprintf(stranger.token, sizeof stranger.token, "another-job");
    r->timeout_s = stranger.timeout_s = 3.0;
    int fds[2];
    if (pipe(fds) != 0) abort();
    pid_t p = fork();
    if (p == 0) {
        unsigned char d[ID];
        int st = rc_rendezvous_share(&stranger, 1, 2, d, ID);
        char c = st == 0 ? 'y' : 'n';
        ssize_t w = write(fds[1], &c, 1);
        _exit(w == 1 ? 0 : 1);
    }
    close(fds[1]);
    unsigned char d[ID];
    memcpy(d, payload, ID);
    int st = rc_rendezvous_share(r, 0, 2, d, ID);
    char c = '?';
    if (read(fds[0], &c, 1) != 1) c = '?';
    close(fds[0]);
    waitpid(p, NULL, 0);
    CHECK_MSG(st != 0 && strstr(rc_last_error(), "token"),
              "rank 0 should refuse another job's peer: %d '%s'", st, rc_last_error());
    CHECK_MSG(c == 'n', "the other job's rank joined (%c)", c);
}

/* rank 0 failed before it had an id: the others hear it at once */
static void root_failed(const char *how, rc_rendezvous *r) {
    int ranks[2] = {1, 0}, delay[2] = {0, 100};
    outcome o[2];
    r->timeout_s = 20;
    double t0 = rc_now();
    /* run_ranks gives rank 0 the payload; a NULL payload is rank 0 failing */
    int fds[2];
    if (pipe(fds) != 0) abort();
    pid_t p = fork();
    if (p == 0) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        int st = rc_rendezvous_share(r, 0, 2, NULL, ID);
        char c = st != 0 ? 'f' : 'o';
        ssize_t w = write(fds[1], &c, 1);
        _exit(w == 1 ? 0 : 1);
    }
    close(fds[1]);
    run_ranks(r, 2, ranks, delay, 1, NULL, o);
    char c = '?';
    if (read(fds[0], &c, 1) != 1) c = '?';
    close(fds[0]);
    waitpid(p, NULL, 0);
    CHECK_MSG(c == 'f', "%s: rank 0 without data should fail", how);
    CHECK_MSG(o[0].status != 0 && (strstr(o[0].error, "gave up") || strstr(o[0].error, "failed")),
              "%s: rank 1 should hear rank 0 failed: %d '%s'", how, o[0].status, o[0].error);
    CHECK_MSG(rc_now() - t0 < 10, "%s: rank 1 waited %.1f s", how, rc_now() - t0);
    printf("%s, rank 0 failed: %s\n", how, o[0].error);
}

/* files a crashed run left (its bytes, and a go listing rank 1) are not
 * taken for this run's */
static void stale_files(rc_rendezvous *r, const char *path) {
    FILE *f = fopen(path, "wb");
    uint32_t len = ID;
    unsigned char old[ID];
    memset(old, 0xEE, ID);
    fprintf(f, "%s\nold-nonce\n", r->token);
    fwrite(&len, sizeof len, 1, f);
    fwrite(old, 1, ID, f);
    fclose(f);
    char go[700];
    snprintf(go, sizeof go, "%s.go", path);
    f = fopen(go, "w");
    fprintf(f, "%s old-nonce\n1 whatever\n", r->token);
    fclose(f);
    unsigned char payload[ID];
    for (int i = 0; i < ID; i++) payload[i] = (unsigned char)(i * 3 + 1);
    int ranks[2] = {1, 0}, delay[2] = {0, 400}; /* rank 1 reads the stale file first */
    outcome o[2];
    r->timeout_s = 20;
    run_ranks(r, 2, ranks, delay, 2, payload, o);
    CHECK_MSG(o[0].status == 0 && o[1].status == 0, "stale files: %s / %s", o[0].error,
              o[1].error);
    CHECK_MSG(memcmp(o[0].data, payload, ID) == 0, "stale files: rank 1 took the old bytes");

    /* the failure record of a rank 0 that failed in an earlier run of the
     * same job (a restart): not taken for this run's */
    f = fopen(path, "wb");
    uint32_t zero = 0;
    fprintf(f, "%s\nfailed-nonce\n", r->token);
    fwrite(&zero, sizeof zero, 1, f);
    fclose(f);
    run_ranks(r, 2, ranks, delay, 2, payload, o);
    CHECK_MSG(o[0].status == 0 && o[1].status == 0, "stale failure: %s / %s", o[0].error,
              o[1].error);
    CHECK(memcmp(o[0].data, payload, ID) == 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    rc_rendezvous r;
    memset(&r, 0, sizeof r);
    r.timeout_s = 20;
    snprintf(r.token, sizeof r.token, "test-%d", (int)getpid());

    snprintf(r.where, sizeof r.where, "tcp://127.0.0.1:%d", free_port());
    all_agree("tcp", &r);
    snprintf(r.where, sizeof r.where, "tcp://localhost:%d", free_port());
    missing_peer("tcp", &r);
    snprintf(r.where, sizeof r.where, "tcp://127.0.0.1:%d", free_port());
    missing_root("tcp", &r);
    snprintf(r.where, sizeof r.where, "tcp://127.0.0.1:%d", free_port());
    other_job(&r);
    snprintf(r.where, sizeof r.where, "tcp://127.0.0.1:%d", free_port());
    root_failed("tcp", &r);

    char dir[] = "/tmp/rc_rdzv_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    r.timeout_s = 20;
    snprintf(r.where, sizeof r.where, "file://%s/id", dir);
    all_agree("file", &r);
    missing_peer("file", &r);
    missing_root("file", &r);
    root_failed("file", &r);
    char stale[400];
    snprintf(stale, sizeof stale, "%s/id", dir);
    stale_files(&r, stale);
    char probe[600];
    snprintf(probe, sizeof probe, "%s/id", dir);
    struct stat st;
    CHECK_MSG(stat(probe, &st) != 0, "the rendezvous file was left behind");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);

    r.timeout_s = 1;
    snprintf(r.where, sizeof r.where, "udp://x:1");
    unsigned char d[ID];
    CHECK(rc_rendezvous_share(&r, 1, 2, d, ID) != 0 && strstr(rc_last_error(), "tcp://"));
    TEST_DONE();
}
