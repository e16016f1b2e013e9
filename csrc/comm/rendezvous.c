/* rendezvous.c: rank 0's bytes to every rank without MPI; see rendezvous.h.
 *
 * TCP: rank 0 accepts world - 1 connections, each opened by a hello (magic,
 * rank, token); when all ranks are there it sends each the payload. A
 * connection refused is retried until the timeout (rank 0 may start last).
 * File: rank 0 writes PATH (whole: a temporary file renamed) with the token,
 * a nonce of this run and the bytes; rank r polls for PATH, reads it and
 * writes PATH.ack.r (rank 0's nonce and its own); once every rank has
 * acknowledged, rank 0 writes PATH.go listing every rank's nonce (or
 * PATH.fail at the timeout), each rank answers PATH.done.r, and rank 0
 * removes the files. Like the TCP way, no rank leaves before all are in,
 * and files a crashed run left behind are never taken for this run's.
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
        /* torchrun's own store listens on MASTER_PORT: the next one is ours */
        snprintf(r->where, sizeof r->where, "tcp://%s:%d", addr, atoi(port) + 1);
        return 1;
    }
    return 0;
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
        int ms = (int)((deadline - rc_now()) * 1000);
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

/* connect() that gives up at the deadline (a host that drops packets would
 * otherwise block for minutes); 0, or -1 with errno set. */
static int connect_until(int fd, const struct sockaddr *a, socklen_t n, double deadline) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
    int rc = connect(fd, a, n);
    if (rc != 0 && errno == EINPROGRESS) {
        int ms = (int)((deadline - rc_now()) * 1000);
        struct pollfd pf = {fd, POLLOUT, 0};
        if (ms <= 0 || poll(&pf, 1, ms) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            errno = err;
            return -1;
        }
        rc = 0;
    }
    fcntl(fd, F_SETFL, flags); /* io_all polls anyway */
    return rc;
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
    int *conn = rc_xmalloc((size_t)world * sizeof *conn);
    for (int i = 0; i < world; i++) conn[i] = -1;
    unsigned char *arrived = rc_xcalloc((size_t)world, 1);
    arrived[0] = 1;
    int n_arrived = 1, status = 0;
    double deadline = rc_now() + r->timeout_s;
    while (n_arrived < world && status == 0) {
        int ms = (int)((deadline - rc_now()) * 1000);
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
        if (io_all(c, &h, sizeof h, 0, rc_now() + 10) != 0 || h.magic != HELLO_MAGIC) {
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
            io_all(c, &refuse, sizeof refuse, 1, rc_now() + 1);
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
    /* all there: each gets the payload (a length first); else they get 0
     * (data NULL: rank 0 itself failed, and says so to every rank) */
    uint32_t len = status == 0 && data ? (uint32_t)bytes : 0;
    for (int i = 1; i < world; i++) {
        if (conn[i] < 0) continue;
        if (io_all(conn[i], &len, sizeof len, 1, rc_now() + 10) != 0 ||
            (len && io_all(conn[i], (void *)data, bytes, 1, rc_now() + 10) != 0)) {
            if (status == 0)
                status = rc_set_error("rendezvous %s: sending to rank %d failed", r->where, i);
        }
    }
    /* every rank confirms it holds the bytes: a rank that went away in the
     * meantime is found here, not as a hang inside NCCL */
    for (int i = 1; i < world && status == 0 && len; i++) {
        unsigned char ack = 0;
        if (io_all(conn[i], &ack, 1, 0, rc_now() + 30) != 0 || ack != 1)
            status = rc_set_error("rendezvous %s: rank %d did not confirm the id "
                                  "(it stopped during the rendezvous?)", r->where, i);
    }
    /* then go (1) or stop (0) to every rank: none goes on into NCCL unless
     * all confirmed */
    unsigned char go = status == 0 && len ? 1 : 0;
    for (int i = 1; i < world && len; i++)
        if (conn[i] >= 0) io_all(conn[i], &go, 1, 1, rc_now() + 10);
    for (int i = 1; i < world; i++)
        if (conn[i] >= 0) close(conn[i]);
    close(fd);
    free(conn);
    free(arrived);
    if (status == 0 && !data)
        status = rc_set_error("rendezvous %s: rank 0 had nothing to share", r->where);
    return status;
}

static int tcp_join(const rc_rendezvous *r, const char *host, const char *port, int rank,
                    void *data, size_t bytes) {
    double deadline = rc_now() + r->timeout_s;
    char last[256] = "no attempt";
    while (rc_now() < deadline) {
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
            if (fd >= 0 && connect_until(fd, a->ai_addr, a->ai_addrlen,
                                         rc_now() + 5) != 0) {
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
        /* connected: wait for rank 0's answer as long as it may take (its
         * own deadline may be later than ours; it always answers or
         * closes by then) */
        double answer_by = rc_now() + 2 * r->timeout_s + 60;
        int ok = io_all(fd, &h, sizeof h, 1, rc_now() + 10) == 0 &&
                 io_all(fd, &len, sizeof len, 0, answer_by) == 0;
        if (ok && len == bytes) ok = io_all(fd, data, bytes, 0, answer_by) == 0;
        unsigned char go = 0;
        if (ok && len == bytes) {
            unsigned char ack = 1;
            ok = io_all(fd, &ack, 1, 1, rc_now() + 10) == 0 &&
                 io_all(fd, &go, 1, 0, rc_now() + 60) == 0;
        }
        close(fd);
        if (ok && len == bytes && go == 1) return 0;
        if (ok && len == bytes)
            return rc_set_error("rendezvous %s: rank 0 stopped the start (another "
                                "rank did not confirm: see rank 0's message)",
                                r->where);
        if (ok && len == 0)
            return rc_set_error("rendezvous %s: rank 0 gave up (it failed, another "
                                "rank is missing, or a peer was refused: see rank "
                                "0's message)", r->where);
        return rc_set_error("rendezvous %s: rank 0 did not answer rank %d within "
                            "%g s%s", r->where, rank, r->timeout_s,
                            ok ? " with the expected size" : "");
    }
    return rc_set_error("rendezvous %s: rank %d cannot reach rank 0 within %g s (%s): "
                        "is rank 0 running, and is MASTER_ADDR / RC_RENDEZVOUS its "
                        "address?", r->where, rank, r->timeout_s, last);
}

/* ---- file ------------------------------------------------------------------------ */

/* Every file is written whole (to NAME.tmp, then renamed). Rank 0's PATH
 * holds the token, its nonce (fresh each run) and the bytes; rank r's ack
 * holds rank 0's nonce and its own; PATH.go lists every rank's nonce, so a
 * rank never takes a .go (or bytes) left by another run for its own. */

static void make_nonce(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, cap, "%lx%09ld.%d", (long)ts.tv_sec, ts.tv_nsec, (int)getpid());
}

static int write_whole(const char *path, const char *text, const void *data,
                       size_t bytes) {
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    int ok = fputs(text, f) >= 0;
    if (data) {
        uint32_t len = (uint32_t)bytes;
        ok = ok && fwrite(&len, sizeof len, 1, f) == 1 && fwrite(data, 1, bytes, f) == bytes;
    }
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Rank 0's file: 1 read (nonce set), 2 rank 0 gave up (nonce set), 0 not
 * there or another job's, -1 malformed. */
static int read_published(const char *path, const char *token, char *nonce, size_t ncap,
                          void *data, size_t bytes) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char line[200], n[64];
    int status = 0;
    if (fgets(line, sizeof line, f) && (line[strcspn(line, "\n")] = 0, 1) &&
        strcmp(line, token) == 0 && fgets(n, sizeof n, f)) {
        n[strcspn(n, "\n")] = 0;
        uint32_t len = 0;
        if (fread(&len, sizeof len, 1, f) != 1)
            status = -1;
        else if (len == 0)
            status = 2;
        else
            status = len == bytes && fread(data, 1, bytes, f) == bytes ? 1 : -1;
        if (status > 0) snprintf(nonce, ncap, "%.63s", n);
    }
    fclose(f);
    return status;
}

static void rank_file(char *buf, size_t cap, const char *path, const char *kind, int r) {
    snprintf(buf, cap, "%s.%s.%d", path, kind, r);
}

/* The first line of a small file, or "" */
static void first_line(const char *path, char *buf, size_t cap) {
    buf[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (!fgets(buf, (int)cap, f)) buf[0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    fclose(f);
}

static void remove_files(const char *path, int world) {
    char p[700];
    for (int i = 1; i < world; i++) {
        rank_file(p, sizeof p, path, "ack", i);
        unlink(p);
        rank_file(p, sizeof p, path, "done", i);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s.go", path);
    unlink(p);
    snprintf(p, sizeof p, "%s.fail", path);
    unlink(p);
    unlink(path);
}

/* Until every rank's PATH.KIND.r starts with "nonce" (its content after
 * that into got[r], when got is given), or the deadline. Returns how many
 * are missing, listed in `missing`. */
static int wait_for_ranks(const char *path, const char *kind, const char *nonce,
                          int world, double deadline, char (*got)[64], char *missing,
                          size_t cap) {
    unsigned char *arrived = rc_xcalloc((size_t)world, 1);
    arrived[0] = 1;
    int left = world - 1;
    size_t nl = strlen(nonce);
    while (left > 0) {
        for (int i = 1; i < world; i++) {
            if (arrived[i]) continue;
            char p[700], line[200];
            rank_file(p, sizeof p, path, kind, i);
            first_line(p, line, sizeof line);
            if (strncmp(line, nonce, nl) != 0 || (line[nl] != ' ' && line[nl] != 0))
                continue;
            if (got) snprintf(got[i], 64, "%s", line[nl] ? line + nl + 1 : "");
            arrived[i] = 1;
            left--;
        }
        if (left == 0 || rc_now() > deadline) break;
        nap_ms(20);
    }
    if (left) list_missing(arrived, world, missing, cap);
    free(arrived);
    return left;
}

/* Rank 0: publish, wait for every rank's ack (they hold the bytes), write
 * go with every rank's nonce, wait until all have seen it, clean up. A
 * missing rank: fail instead, so that no rank goes on to wait in NCCL. */
static int file_serve(const rc_rendezvous *r, const char *path, int world,
                      const void *data, size_t bytes) {
    remove_files(path, world); /* of a run that died */
    char nonce[64], head[300];
    make_nonce(nonce, sizeof nonce);
    snprintf(head, sizeof head, "%s\n%s\n", r->token, nonce);
    uint32_t zero = 0;
    if (write_whole(path, head, data ? data : (const void *)&zero, data ? bytes : 0) != 0)
        return rc_set_error("rendezvous %s: rank 0 cannot write %s: %s (a directory "
                            "every rank sees?)", r->where, path, strerror(errno));
    if (!data) /* rank 0 failed: the file says so, and the others stop */
        return rc_set_error("rendezvous %s: rank 0 had nothing to share", r->where);
    char (*got)[64] = rc_xcalloc((size_t)world, sizeof *got);
    char missing[256], p[700];
    int left = wait_for_ranks(path, "ack", nonce, world, rc_now() + r->timeout_s, got,
                              missing, sizeof missing);
    snprintf(p, sizeof p, "%s.%s", path, left ? "fail" : "go");
    size_t cap = 300 + (size_t)world * 80, len = 0;
    char *text = rc_xmalloc(cap);
    len += (size_t)snprintf(text, cap, "%s %s\n", r->token, nonce);
    for (int i = 1; !left && i < world; i++)
        len += (size_t)snprintf(text + len, cap - len, "%d %s\n", i, got[i]);
    int written = write_whole(p, text, NULL, 0) == 0;
    free(text);
    free(got);
    if (!written && !left) {
        unlink(path);
        return rc_set_error("rendezvous %s: rank 0 cannot write %s: %s", r->where, p,
                            strerror(errno));
    }
    if (left) {
        unlink(path);
        return rc_set_error("rendezvous %s: rank%s %s did not arrive within %g s (did "
                            "every rank start? do they all see %s?)", r->where,
                            left > 1 ? "s" : "", missing, r->timeout_s, path);
    }
    /* every rank polls for go; the files go once all have seen it */
    if (wait_for_ranks(path, "done", nonce, world, rc_now() + 60, NULL, missing,
                       sizeof missing))
        rc_log("rendezvous %s: rank(s) %s did not confirm go within 60 s; going on",
               r->where, missing);
    remove_files(path, world);
    return 0;
}

/* go is ours when its first line is "token nonce0" and it lists this
 * rank with its own nonce */
static int go_is_ours(const char *path, const char *token, const char *nonce0, int rank,
                      const char *mine) {
    char p[700], want[300], line[300];
    snprintf(p, sizeof p, "%s.go", path);
    FILE *f = fopen(p, "r");
    if (!f) return 0;
    snprintf(want, sizeof want, "%s %s", token, nonce0);
    int ours = fgets(line, sizeof line, f) && (line[strcspn(line, "\n")] = 0, 1) &&
               strcmp(line, want) == 0;
    snprintf(want, sizeof want, "%d %s", rank, mine);
    int listed = 0;
    while (ours && !listed && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        listed = strcmp(line, want) == 0;
    }
    fclose(f);
    return ours && listed;
}

static int file_join(const rc_rendezvous *r, const char *path, int rank, void *data,
                     size_t bytes) {
    char mine[64], nonce0[64] = "", seen[64], p[700], text[200], fail[300];
    make_nonce(mine, sizeof mine);
    double deadline = rc_now() + r->timeout_s, answer_by = 0;
    unsigned char *fresh = rc_xmalloc(bytes ? bytes : 1);
    int status = 0, first = 1;
    char stale_fail[64] = ""; /* a failure record there before we looked */
    for (;;) {
        /* (re-)read rank 0's file: a newer one (another nonce) replaces a
         * stale one read before rank 0 started */
        int got = read_published(path, r->token, seen, sizeof seen, fresh, bytes);
        if (got < 0) {
            status = rc_set_error("rendezvous %s: %s is not a rendezvous file of "
                                  "this size (%zu bytes expected)", r->where, path, bytes);
            break;
        }
        if (got == 2 && first) /* a failed run's, the same job restarted? */
            snprintf(stale_fail, sizeof stale_fail, "%s", seen);
        first = 0;
        if (got == 2 && strcmp(seen, nonce0) != 0 && strcmp(seen, stale_fail) != 0) {
            status = rc_set_error("rendezvous %s: rank 0 failed before it could "
                                  "share (see rank 0's message)", r->where);
            break;
        }
        if (got == 1 && strcmp(seen, nonce0) != 0) {
            snprintf(nonce0, sizeof nonce0, "%s", seen);
            memcpy(data, fresh, bytes);
            rank_file(p, sizeof p, path, "ack", rank);
            snprintf(text, sizeof text, "%s %s\n", nonce0, mine);
            if (write_whole(p, text, NULL, 0) != 0) {
                status = rc_set_error("rendezvous %s: rank %d cannot write %s: %s",
                                      r->where, rank, p, strerror(errno));
                break;
            }
            answer_by = rc_now() + r->timeout_s + 10;
        }
        if (nonce0[0]) {
            if (go_is_ours(path, r->token, nonce0, rank, mine)) break;
            snprintf(p, sizeof p, "%s.fail", path);
            first_line(p, text, sizeof text);
            snprintf(fail, sizeof fail, "%s %s", r->token, nonce0);
            if (strcmp(text, fail) == 0) {
                status = rc_set_error("rendezvous %s: rank 0 gave up (another rank "
                                      "is missing: see rank 0's message)", r->where);
                break;
            }
            if (rc_now() > answer_by) {
                status = rc_set_error("rendezvous %s: rank 0 did not say go within "
                                      "%g s", r->where, r->timeout_s + 10);
                break;
            }
        } else if (rc_now() > deadline) {
            status = rc_set_error("rendezvous %s: rank 0 did not publish %s within "
                                  "%g s (is rank 0 running? does it see the same "
                                  "file system? a file of another job has another "
                                  "token)", r->where, path, r->timeout_s);
            break;
        }
        nap_ms(20);
    }
    free(fresh);
    if (status == 0) {
        rank_file(p, sizeof p, path, "done", rank);
        snprintf(text, sizeof text, "%s\n", nonce0);
        write_whole(p, text, NULL, 0);
    }
    return status;
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
