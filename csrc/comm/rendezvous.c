/* rendezvous.c: rank 0's bytes to every rank without MPI; see rendezvous.h.
 *
 * TCP: rank 0 accepts world - 1 connections, each opened by a hello (magic,
 * rank, token); when all ranks are there it sends each the payload. A
 * connection refused is retried until the timeout (rank 0 may start last).
 * File: rank 0 writes PATH.tmp and renames it to PATH (atomic on one file
 * system); rank r polls for PATH, reads it, checks the token and writes
 * PATH.ack.r; once every rank has acknowledged, rank 0 writes PATH.go (or
 * PATH.fail at the timeout), each rank answers PATH.done.r, and rank 0
 * removes the files. Like the TCP way, no rank leaves before all are in.
 */
#include "rendezvous.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "recompose/common.h"

#define HELLO_MAGIC 0x52435256u /* "RCRV" */

int rc_rendezvous_from_env(rc_rendezvous *r) {
    memset(r, 0, sizeof *r);
    const char *t = getenv("RC_RENDEZVOUS_TIMEOUT");
    r->timeout_s = t && *t ? atof(t) : 300;
    if (r->timeout_s <= 0) r->timeout_s = 300;
    const char *run = getenv("TORCHELASTIC_RUN_ID"), *job = getenv("SLURM_JOB_ID");
    if (run && *run)
        snprintf(r->token, sizeof r->token, "%s", run);
    else if (job && *job)
        snprintf(r->token, sizeof r->token, "%s.%s", job,
                 getenv("SLURM_STEP_ID") ? getenv("SLURM_STEP_ID") : "");
    const char *where = getenv("RC_RENDEZVOUS");
    if (where && *where) {
        snprintf(r->where, sizeof r->where, "%s", where);
        return 1;
    }
    const char *addr = getenv("MASTER_ADDR"), *port = getenv("MASTER_PORT");
    if (addr && *addr && port && *port) {
        snprintf(r->where, sizeof r->where, "tcp://%s:%s", addr, port);
        return 1;
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "ranks 2, 5 of 8" for the ranks whose flag is 0 */
static void list_missing(const unsigned char *arrived, int world, char *buf, size_t cap) {
    size_t len = 0;
    int n = 0;
    buf[0] = 0;
    for (int i = 1; i < world && len < cap; i++) {
        if (arrived[i]) continue;
        if (n == 8) {
            len += (size_t)snprintf(buf + len, cap - len, ", ...");
            break;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", n ? ", " : "", i);
        n++;
    }
    if (len < cap)
        snprintf(buf + len, cap - len, " of %d", world);
}

/* ---- tcp ------------------------------------------------------------------------- */

typedef struct {
    uint32_t magic, rank;
    char token[128];
} hello;

/* Write or read exactly n bytes before the deadline; 0 or -1. */
static int io_all(int fd, void *buf, size_t n, int writing, double deadline) {
    char *p = buf;
    while (n > 0) {
        int ms = (int)((deadline - now_s()) * 1000);
        if (ms <= 0) return -1;
        struct pollfd pf = {fd, (short)(writing ? POLLOUT : POLLIN), 0};
        if (poll(&pf, 1, ms) <= 0) return -1;
        ssize_t k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int split_host_port(const char *hp, char *host, size_t cap, char *port, size_t pcap) {
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp || !colon[1]) return -1;
    size_t hl = (size_t)(colon - hp);
    if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') { /* [IPv6]:port */
        hp++;
        hl -= 2;
    }
    if (hl >= cap) return -1;
    memcpy(host, hp, hl);
    host[hl] = 0;
    snprintf(port, pcap, "%s", colon + 1);
    return 0;
}

static int tcp_serve(const rc_rendezvous *r, const char *port, int world,
                     const void *data, size_t bytes) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_INET6;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int fd = -1;
    if (getaddrinfo(NULL, port, &hints, &ai) == 0) {
        fd = socket(ai->ai_family, ai->ai_socktype, 0);
        if (fd >= 0) {
            int zero = 0, one = 1;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* IPv4 too */
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(ai);
    }
    if (fd < 0) { /* no IPv6 here: IPv4 alone */
        hints.ai_family = AF_INET;
        if (getaddrinfo(NULL, port, &hints, &ai) != 0)
            return rc_set_error("rendezvous %s: bad port", r->where);
        fd = socket(ai->ai_family, ai->ai_socktype, 0);
        int one = 1;
        if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        int ok = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0;
        int err = errno;
        freeaddrinfo(ai);
        if (!ok) {
            if (fd >= 0) close(fd);
            return rc_set_error("rendezvous %s: rank 0 cannot listen on port %s: %s "
                                "(another job on it? set MASTER_PORT or RC_RENDEZVOUS "
                                "to a free port)", r->where, port, strerror(err));
        }
    }
    int *conn = rc_xcalloc((size_t)world, sizeof *conn);
    unsigned char *arrived = rc_xcalloc((size_t)world, 1);
    arrived[0] = 1;
    int n_arrived = 1, status = 0;
    double deadline = now_s() + r->timeout_s;
    while (n_arrived < world && status == 0) {
        int ms = (int)((deadline - now_s()) * 1000);
        struct pollfd pf = {fd, POLLIN, 0};
        if (ms <= 0 || poll(&pf, 1, ms) <= 0) {
            if (ms > 0 && errno == EINTR) continue;
            char missing[256];
            list_missing(arrived, world, missing, sizeof missing);
            status = rc_set_error("rendezvous %s: rank%s %s did not arrive within %g s "
                                  "(did every rank start? can they reach this host "
                                  "and port?)", r->where,
                                  world - n_arrived > 1 ? "s" : "", missing, r->timeout_s);
            break;
        }
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        hello h;
        if (io_all(c, &h, sizeof h, 0, now_s() + 10) != 0 || h.magic != HELLO_MAGIC) {
            close(c); /* not one of ours (a port scan, another program) */
            continue;
        }
        h.token[sizeof h.token - 1] = 0;
        if (strcmp(h.token, r->token) != 0 || h.rank == 0 || h.rank >= (uint32_t)world ||
            arrived[h.rank]) {
            const char *why = strcmp(h.token, r->token) != 0 ? "another job's token"
                              : h.rank == 0 || h.rank >= (uint32_t)world
                                  ? "a rank outside this world"
                                  : "a rank that already arrived";
            uint32_t refuse = 0;
            io_all(c, &refuse, sizeof refuse, 1, now_s() + 1);
            close(c);
            status = rc_set_error("rendezvous %s: a peer claiming rank %u came with %s "
                                  "(token '%s', here '%s'): two jobs on one address?",
                                  r->where, h.rank, why, h.token, r->token);
            break;
        }
        conn[h.rank] = c;
        arrived[h.rank] = 1;
        n_arrived++;
    }
    /* all there: each gets the payload (a length first); else they get 0 */
    uint32_t len = status == 0 ? (uint32_t)bytes : 0;
    for (int i = 1; i < world; i++) {
        if (!conn[i]) continue;
        if (io_all(conn[i], &len, sizeof len, 1, now_s() + 10) != 0 ||
            (len && io_all(conn[i], (void *)data, bytes, 1, now_s() + 10) != 0)) {
            if (status == 0)
                status = rc_set_error("rendezvous %s: sending to rank %d failed", r->where, i);
        }
        close(conn[i]);
    }
    close(fd);
    free(conn);
    free(arrived);
    return status;
}

static int tcp_join(const rc_rendezvous *r, const char *host, const char *port, int rank,
                    void *data, size_t bytes) {
    double deadline = now_s() + r->timeout_s;
    char last[256] = "no attempt";
    while (now_s() < deadline) {
        struct addrinfo hints = {0}, *ai = NULL, *a;
        hints.ai_socktype = SOCK_STREAM;
        int g = getaddrinfo(host, port, &hints, &ai);
        if (g != 0) {
            snprintf(last, sizeof last, "%s", gai_strerror(g));
            nap_ms(200);
            continue;
        }
        int fd = -1;
        for (a = ai; a && fd < 0; a = a->ai_next) {
            fd = socket(a->ai_family, a->ai_socktype, 0);
            if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
                snprintf(last, sizeof last, "%s", strerror(errno));
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(ai);
        if (fd < 0) {
            nap_ms(200); /* rank 0 not listening yet */
            continue;
        }
        hello h = {HELLO_MAGIC, (uint32_t)rank, {0}};
        snprintf(h.token, sizeof h.token, "%s", r->token);
        uint32_t len = 0;
        int ok = io_all(fd, &h, sizeof h, 1, deadline) == 0 &&
                 io_all(fd, &len, sizeof len, 0, deadline + 5) == 0;
        if (ok && len == bytes) ok = io_all(fd, data, bytes, 0, deadline + 5) == 0;
        close(fd);
        if (ok && len == bytes) return 0;
        if (ok && len == 0)
            return rc_set_error("rendezvous %s: rank 0 gave up (another rank is "
                                "missing, or a peer was refused: see rank 0's "
                                "message)", r->where);
        return rc_set_error("rendezvous %s: rank 0 did not answer rank %d within "
                            "%g s%s", r->where, rank, r->timeout_s,
                            ok ? " with the expected size" : "");
    }
    return rc_set_error("rendezvous %s: rank %d cannot reach rank 0 within %g s (%s): "
                        "is rank 0 running, and is MASTER_ADDR / RC_RENDEZVOUS its "
                        "address?", r->where, rank, r->timeout_s, last);
}

/* ---- file ------------------------------------------------------------------------ */

static int write_file_atomic(const char *path, const char *token, const void *data,
                             size_t bytes) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    uint32_t len = (uint32_t)bytes;
    int ok = fprintf(f, "%s\n", token) > 0 && fwrite(&len, sizeof len, 1, f) == 1 &&
             fwrite(data, 1, bytes, f) == bytes;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/* 1: read and the token matches; 0: not there (yet) or another run's; -1
 * on a malformed file */
static int read_file(const char *path, const char *token, void *data, size_t bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char line[160];
    uint32_t len = 0;
    int status = 0;
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, token) == 0)
            status = fread(&len, sizeof len, 1, f) == 1 && len == bytes &&
                             fread(data, 1, bytes, f) == bytes
                         ? 1
                         : -1;
    }
    fclose(f);
    return status;
}

/* A marker file holding the token (PATH.go, PATH.fail). */
static void write_marker(const char *path, const char *suffix, const char *token) {
    char p[640];
    snprintf(p, sizeof p, "%s.%s", path, suffix);
    char tmp[660];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%s\n", token);
    if (fclose(f) == 0) rename(tmp, p);
}

static int marker_is_ours(const char *path, const char *suffix, const char *token) {
    char p[640], line[160];
    snprintf(p, sizeof p, "%s.%s", path, suffix);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    int ours = fgets(line, sizeof line, f) && (line[strcspn(line, "\n")] = 0, 1) &&
               strcmp(line, token) == 0;
    fclose(f);
    return ours;
}

static void remove_files(const char *path, int world) {
    char p[640];
    for (int i = 1; i < world; i++) {
        snprintf(p, sizeof p, "%s.ack.%d", path, i);
        unlink(p);
        snprintf(p, sizeof p, "%s.done.%d", path, i);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s.go", path);
    unlink(p);
    snprintf(p, sizeof p, "%s.fail", path);
    unlink(p);
    unlink(path);
}

/* Wait for PATH.KIND.r of every rank; 0, or the count still missing (with
 * their list in missing) at the deadline. */
static int wait_for_ranks(const char *path, const char *kind, int world,
                          double deadline, char *missing, size_t cap) {
    unsigned char *arrived = rc_xcalloc((size_t)world, 1);
    arrived[0] = 1;
    int left = world - 1;
    char p[640];
    while (left > 0) {
        for (int i = 1; i < world; i++) {
            if (arrived[i]) continue;
            snprintf(p, sizeof p, "%s.%s.%d", path, kind, i);
            struct stat st;
            if (stat(p, &st) == 0) {
                arrived[i] = 1;
                left--;
            }
        }
        if (left == 0 || now_s() > deadline) break;
        nap_ms(20);
    }
    if (left) list_missing(arrived, world, missing, cap);
    free(arrived);
    return left;
}

/* Rank 0: publish, wait until every rank has read it (ack), say go, wait
 * until every rank has seen go (done), clean up. On a missing rank, say
 * fail instead, so that no rank goes on to wait in NCCL for it. */
static int file_serve(const rc_rendezvous *r, const char *path, int world,
                      const void *data, size_t bytes) {
    remove_files(path, world); /* of a run that died */
    if (write_file_atomic(path, r->token, data, bytes) != 0)
        return rc_set_error("rendezvous %s: rank 0 cannot write %s: %s (a directory "
                            "every rank sees?)", r->where, path, strerror(errno));
    char missing[256];
    int left = wait_for_ranks(path, "ack", world, now_s() + r->timeout_s, missing,
                              sizeof missing);
    if (left) {
        write_marker(path, "fail", r->token);
        unlink(path);
        return rc_set_error("rendezvous %s: rank%s %s did not arrive within %g s (did "
                            "every rank start? do they all see %s?)", r->where,
                            left > 1 ? "s" : "", missing, r->timeout_s, path);
    }
    write_marker(path, "go", r->token);
    /* every rank polls for go; the files go once all have seen it */
    wait_for_ranks(path, "done", world, now_s() + 60, missing, sizeof missing);
    remove_files(path, world);
    return 0;
}

static int touch(const char *path, const char *kind, int rank) {
    char p[640];
    snprintf(p, sizeof p, "%s.%s.%d", path, kind, rank);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

static int file_join(const rc_rendezvous *r, const char *path, int rank, void *data,
                     size_t bytes) {
    double deadline = now_s() + r->timeout_s;
    for (;;) {
        int got = read_file(path, r->token, data, bytes);
        if (got < 0)
            return rc_set_error("rendezvous %s: %s is not a rendezvous file of this "
                                "size (%zu bytes expected)", r->where, path, bytes);
        if (got == 1) break;
        if (now_s() > deadline)
            return rc_set_error("rendezvous %s: rank 0 did not publish %s within %g s "
                                "(is rank 0 running? does it see the same file "
                                "system? a file of another run has another token)",
                                r->where, path, r->timeout_s);
        nap_ms(20);
    }
    if (touch(path, "ack", rank) != 0)
        return rc_set_error("rendezvous %s: rank %d cannot write beside %s: %s", r->where,
                            rank, path, strerror(errno));
    /* go once every rank is there; fail when rank 0 gave up on one */
    deadline = now_s() + r->timeout_s + 10;
    for (;;) {
        if (marker_is_ours(path, "go", r->token)) break;
        if (marker_is_ours(path, "fail", r->token))
            return rc_set_error("rendezvous %s: rank 0 gave up (another rank is "
                                "missing: see rank 0's message)", r->where);
        if (now_s() > deadline)
            return rc_set_error("rendezvous %s: rank 0 did not say go within %g s",
                                r->where, r->timeout_s + 10);
        nap_ms(20);
    }
    touch(path, "done", rank);
    return 0;
}

int rc_rendezvous_share(const rc_rendezvous *r, int rank, int world, void *data,
                        size_t bytes) {
    if (world <= 1) return 0;
    if (rank < 0 || rank >= world)
        return rc_set_error("rendezvous: rank %d outside a world of %d", rank, world);
    if (!strncmp(r->where, "file://", 7)) {
        const char *path = r->where + 7;
        return rank == 0 ? file_serve(r, path, world, data, bytes)
                         : file_join(r, path, rank, data, bytes);
    }
    if (!strncmp(r->where, "tcp://", 6)) {
        char host[256], port[32];
        if (split_host_port(r->where + 6, host, sizeof host, port, sizeof port) != 0)
            return rc_set_error("rendezvous %s: expected tcp://HOST:PORT", r->where);
        return rank == 0 ? tcp_serve(r, port, world, data, bytes)
                         : tcp_join(r, host, port, rank, data, bytes);
    }
    return rc_set_error("rendezvous '%s': expected tcp://HOST:PORT or file:///PATH "
                        "(RC_RENDEZVOUS, or MASTER_ADDR and MASTER_PORT)", r->where);
}
