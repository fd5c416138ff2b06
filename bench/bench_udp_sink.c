/* bench_udp_sink.c - the receiving side of the ingest benchmark (bench/ingest.py), a process of
 * its own that the bench drives on stdin.
 *
 * Usage: bench_udp_sink ours [--rcvbuf BYTES] [--queue BYTES] [--log-level 0-5 (trace..off, default 3: warn)]
 *        bench_udp_sink drain [--mpd X] [--rcvbuf BYTES]
 *
 *   ours   the library: dds_start with DogStatsD on 127.0.0.1, port 0 (any free port), trace
 *          agent off, SO_RCVBUF as the CLI leaves it (dogstatsd_so_rcvbuf = 0: 4 MiB asked, capped by
 *          rmem_max) unless --rcvbuf is given; --queue sets dogstatsd_queue_bytes (0: no receive
 *          thread, the loop reads the socket itself). The metrics are really sent: dd_url points at a
 *          minimal HTTP intake on 127.0.0.1 inside this process (a thread that reads each
 *          request and answers 202), so parse, aggregation, protobuf serialization, zstd
 *          compression and the libcurl POST all stay in the measured path. The intake thread's
 *          own CPU time is reported apart (intake_cpu_s) so it can be taken out: in production
 *          the intake is another machine.
 *   drain  a bare recvmmsg loop (batches of 32, 8 KiB buffers, as the library's listener) that
 *          counts datagrams and bytes: the kernel's limit on this machine. Metrics are counted by
 *          counting the lines of each datagram (memchr for '\n'), unless --mpd X is given
 *          (then metrics = datagrams * X).
 *
 * Both print "ready port=N rcvbuf=B" on stdout once bound (B: the socket's SO_RCVBUF as the
 * kernel reports it), then read commands on stdin, one a line:
 *   stats  one JSON line: {"datagrams":..,"metrics":..,"bytes":..,"truncated":..,
 *          "parse_errors":..,"cpu_s":..,"intake_cpu_s":..}; counters since start, cpu_s the
 *          process's user+system time (getrusage RUSAGE_SELF). Before it reads the counters the
 *          socket is drained: ours calls dds_flush (which drains the socket, then flushes every
 *          bucket to the intake and waits for the answers), drain reads until EAGAIN.
 *   quit   stop (ours: dds_stop) and exit 0. End of stdin does the same.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "datadog_serverless.h"

#define DGRAM_MAX 8192
#define BATCH 32

static double cpu_of(int who) {
    struct rusage ru;
    if (getrusage(who, &ru) != 0) return -1;
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static int bind_loopback(int type, uint16_t *port) {
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int rcvbuf_of(int fd) {
    int v = 0;
    socklen_t len = sizeof(v);
    return getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0 ? v : -1;
}

/* The SO_RCVBUF of this process's UDP socket bound to 127.0.0.1:port (the library keeps its fd
 * to itself: found through /proc/self/fd). */
static int rcvbuf_of_port(uint16_t port) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int found = -1;
    struct dirent *e;
    while ((e = readdir(d)) && found < 0) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d)) continue;
        int type = 0;
        socklen_t tl = sizeof(type);
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) continue;
        if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 || sa.sin_family != AF_INET) continue;
        if (ntohs(sa.sin_port) == port) found = rcvbuf_of(fd);
    }
    closedir(d);
    return found;
}

/* ---- stdin commands ------------------------------------------------------------------------ */

/* Reads one command line from stdin (blocking); returns 0 at end of input. */
static int read_cmd(char *out, size_t cap) {
    if (!fgets(out, (int)cap, stdin)) return 0;
    out[strcspn(out, "\r\n")] = '\0';
    return 1;
}

/* ---- a minimal HTTP intake for `ours` -------------------------------------------------------- */

#define INTAKE_CONNS 16
#define INTAKE_HDR_MAX 65536

typedef struct conn {
    int fd;
    size_t have;        /* header bytes buffered */
    size_t body_left;   /* body bytes still to skip */
    char *hdr;
} conn;

typedef struct intake {
    int lfd, stop_pipe[2];
    uint16_t port;
    pthread_t thread;
    _Atomic uint64_t requests;
    _Atomic double cpu_s; /* this thread's CPU time (RUSAGE_THREAD), updated after each answer */
    conn conns[INTAKE_CONNS];
} intake;

static void conn_close(conn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->have = c->body_left = 0;
}

static int conn_answer(intake *in, conn *c) {
    static const char resp[] = "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                               "Content-Length: 2\r\n\r\n{}";
    if (send(c->fd, resp, sizeof(resp) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(resp) - 1)) return -1;
    atomic_fetch_add(&in->requests, 1);
    atomic_store(&in->cpu_s, cpu_of(RUSAGE_THREAD));
    return 0;
}

/* Consumes the headers c holds: a request whose body is all in is answered 202 at once, else
 * once its last body byte is skipped (intake_main). Returns -1 to close the connection. */
static int conn_step(intake *in, conn *c) {
    while (!c->body_left) {
        char *end = c->have >= 4 ? memmem(c->hdr, c->have, "\r\n\r\n", 4) : NULL;
        if (!end) return c->have >= INTAKE_HDR_MAX ? -1 : 0;
        size_t hlen = (size_t)(end + 4 - c->hdr);
        size_t clen = 0;
        for (char *p = c->hdr; p < end; p++) {
            if ((p == c->hdr || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) {
                clen = strtoul(p + 15, NULL, 10);
                break;
            }
        }
        size_t extra = c->have - hlen;
        size_t take = extra < clen ? extra : clen;
        memmove(c->hdr, c->hdr + hlen + take, extra - take);
        c->have = extra - take;
        c->body_left = clen - take;
        if (!c->body_left && conn_answer(in, c) != 0) return -1;
    }
    return 0;
}

static void *intake_main(void *arg) {
    intake *in = arg;
    static char skip[1 << 16];
    for (;;) {
        struct pollfd pf[INTAKE_CONNS + 2];
        int map[INTAKE_CONNS + 2];
        int n = 0;
        pf[n] = (struct pollfd){.fd = in->stop_pipe[0], .events = POLLIN};
        map[n++] = -2;
        pf[n] = (struct pollfd){.fd = in->lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < INTAKE_CONNS; i++)
            if (in->conns[i].fd >= 0) {
                pf[n] = (struct pollfd){.fd = in->conns[i].fd, .events = POLLIN};
                map[n++] = i;
            }
        if (poll(pf, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pf[0].revents) break;
        if (pf[1].revents & POLLIN) {
            int fd = accept4(in->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < INTAKE_CONNS && slot < 0; i++)
                    if (in->conns[i].fd < 0) slot = i;
                if (slot < 0) close(fd);
                else in->conns[slot].fd = fd;
            }
        }
        for (int k = 2; k < n; k++) {
            if (!pf[k].revents) continue;
            conn *c = &in->conns[map[k]];
            ssize_t r;
            if (c->body_left) {
                size_t want = c->body_left < sizeof(skip) ? c->body_left : sizeof(skip);
                r = recv(c->fd, skip, want, 0);
                if (r > 0) {
                    c->body_left -= (size_t)r;
                    if (!c->body_left && conn_answer(in, c) != 0) r = -1;
                }
            } else {
                r = recv(c->fd, c->hdr + c->have, INTAKE_HDR_MAX - c->have, 0);
                if (r > 0) c->have += (size_t)r;
            }
            if (r <= 0 || conn_step(in, c) != 0) conn_close(c);
        }
    }
    for (int i = 0; i < INTAKE_CONNS; i++) conn_close(&in->conns[i]);
    return NULL;
}

static int intake_start(intake *in) {
    memset(in, 0, sizeof(*in));
    for (int i = 0; i < INTAKE_CONNS; i++) {
        in->conns[i].fd = -1;
        in->conns[i].hdr = malloc(INTAKE_HDR_MAX);
        if (!in->conns[i].hdr) return -1;
    }
    in->lfd = bind_loopback(SOCK_STREAM, &in->port);
    if (in->lfd < 0 || listen(in->lfd, 16) != 0 || pipe(in->stop_pipe) != 0) return -1;
    return pthread_create(&in->thread, NULL, intake_main, in) == 0 ? 0 : -1;
}

static void intake_stop(intake *in) {
    if (write(in->stop_pipe[1], "x", 1) != 1) perror("intake stop");
    pthread_join(in->thread, NULL);
    close(in->lfd);
    close(in->stop_pipe[0]);
    close(in->stop_pipe[1]);
    for (int i = 0; i < INTAKE_CONNS; i++) free(in->conns[i].hdr);
}

/* ---- ours ------------------------------------------------------------------------------------ */

static void on_status(const dds_status *st, void *user) {
    (void)user;
    if (st->type == DDS_STATUS_ERROR && st->message) fprintf(stderr, "bench_udp_sink: library error: %s\n", st->message);
}

static int run_ours(uint32_t rcvbuf, long queue_bytes, int log_level) {
    static intake in;
    if (intake_start(&in) != 0) {
        perror("bench_udp_sink: intake");
        return 1;
    }
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", in.port);
    dds_config cfg;
    dds_config_init(&cfg);
    cfg.api_key = "0123456789abcdef0123456789abcdef"; /* not a dry run: payloads go to the intake */
    cfg.dd_url = url;
    cfg.dogstatsd_port = 0;
    cfg.dogstatsd_so_rcvbuf = rcvbuf; /* 0: as the CLI (4 MiB asked, capped by rmem_max) */
    if (queue_bytes >= 0) cfg.dogstatsd_queue_bytes = (uint32_t)queue_bytes; /* 0: no receive thread */
    cfg.use_trace_agent = false;
    cfg.log_level = (dds_log_level)log_level;
    dds_services *svc = NULL;
    dds_error err;
    if (dds_start(&cfg, on_status, NULL, &svc, &err) != 0) {
        fprintf(stderr, "bench_udp_sink: %s\n", err.message);
        intake_stop(&in);
        return 1;
    }
    uint16_t port = 0;
    dds_ports(svc, &port, NULL);
    printf("ready port=%u rcvbuf=%d intake_port=%u\n", port, rcvbuf_of_port(port), in.port);
    fflush(stdout);
    char cmd[256];
    int rc = 0;
    while (read_cmd(cmd, sizeof(cmd))) {
        if (!strcmp(cmd, "quit")) break;
        if (strcmp(cmd, "stats") != 0) {
            printf("{\"error\":\"unknown command\"}\n");
            fflush(stdout);
            continue;
        }
        int frc = dds_flush(svc, 10000, &err);
        dds_stats st;
        dds_stats_get(svc, &st);
        double cpu = cpu_of(RUSAGE_SELF);
        printf("{\"datagrams\":%llu,\"metrics\":%llu,\"bytes\":%llu,\"truncated\":%llu,\"parse_errors\":%llu,"
               "\"cpu_s\":%.6f,\"intake_cpu_s\":%.6f,\"payloads_sent\":%llu,\"payloads_dropped\":%llu,"
               "\"intake_requests\":%llu,\"flush_rc\":%d}\n",
               (unsigned long long)st.dsd_packets, (unsigned long long)st.dsd_metric_lines,
               (unsigned long long)st.dsd_bytes, (unsigned long long)st.dsd_packets_truncated,
               (unsigned long long)st.dsd_parse_errors, cpu, atomic_load(&in.cpu_s),
               (unsigned long long)st.payloads_sent, (unsigned long long)st.payloads_dropped,
               (unsigned long long)atomic_load(&in.requests), frc);
        fflush(stdout);
    }
    if (dds_stop(svc, 5000, &err) != 0) {
        fprintf(stderr, "bench_udp_sink: %s\n", err.message);
        rc = 1;
    }
    dds_free(svc);
    intake_stop(&in);
    return rc;
}

/* ---- drain ----------------------------------------------------------------------------------- */

typedef struct drain_counts {
    uint64_t datagrams, metrics, bytes, truncated;
} drain_counts;

static uint64_t count_lines(const char *p, size_t n) {
    if (!n) return 0;
    uint64_t lines = 1;
    const char *end = p + n;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
        p++;
        if (p < end) lines++; /* a trailing newline does not start a line */
    }
    return lines;
}

/* Reads until the socket is empty or max_batches batches were read (0 = no bound); returns 0,
 * or -1 on an unexpected error. */
static int drain_socket(int fd, struct mmsghdr *msgs, char *bufs, double mpd, drain_counts *c, int max_batches) {
    for (int b = 0; !max_batches || b < max_batches; b++) {
        int r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EINTR) continue;
            return -1;
        }
        for (int i = 0; i < r; i++) {
            size_t len = msgs[i].msg_len;
            c->datagrams++;
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                c->truncated++;
                continue;
            }
            c->bytes += len;
            if (mpd <= 0) c->metrics += count_lines(bufs + (size_t)i * DGRAM_MAX, len);
        }
        if (r < BATCH) return 0;
    }
    return 0;
}

static int run_drain(double mpd, uint32_t rcvbuf) {
    uint16_t port = 0;
    int fd = bind_loopback(SOCK_DGRAM, &port);
    if (fd < 0) {
        perror("bench_udp_sink: bind");
        return 1;
    }
    if (rcvbuf) {
        int v = (int)rcvbuf;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    }
    char *bufs = malloc((size_t)BATCH * DGRAM_MAX);
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    if (!bufs) return 1;
    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < BATCH; i++) {
        iovs[i].iov_base = bufs + (size_t)i * DGRAM_MAX;
        iovs[i].iov_len = DGRAM_MAX;
        msgs[i].msg_hdr.msg_iov = &iovs[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready port=%u rcvbuf=%d\n", port, rcvbuf_of(fd));
    fflush(stdout);
    drain_counts c = {0};
    char line[256];
    size_t have = 0;
    int rc = 0, done = 0;
    /* One thread, like the library's loop: poll the socket and stdin. */
    while (!done) {
        struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) continue;
            rc = 1;
            break;
        }
        if ((pf[0].revents & POLLIN) && drain_socket(fd, msgs, bufs, mpd, &c, 64) != 0) {
            perror("bench_udp_sink: recvmmsg");
            rc = 1;
            break;
        }
        if (!pf[1].revents) continue;
        ssize_t r = read(0, line + have, sizeof(line) - 1 - have);
        if (r <= 0) break; /* end of stdin: quit */
        have += (size_t)r;
        char *nl;
        while ((nl = memchr(line, '\n', have))) {
            *nl = '\0';
            if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
            if (!strcmp(line, "quit")) {
                done = 1;
                break;
            }
            if (!strcmp(line, "stats")) {
                if (drain_socket(fd, msgs, bufs, mpd, &c, 0) != 0) rc = 1;
                uint64_t metrics = mpd > 0 ? (uint64_t)((double)c.datagrams * mpd + 0.5) : c.metrics;
                printf("{\"datagrams\":%llu,\"metrics\":%llu,\"bytes\":%llu,\"truncated\":%llu,\"parse_errors\":0,"
                       "\"cpu_s\":%.6f,\"intake_cpu_s\":0}\n",
                       (unsigned long long)c.datagrams, (unsigned long long)metrics, (unsigned long long)c.bytes,
                       (unsigned long long)c.truncated, cpu_of(RUSAGE_SELF));
            } else {
                printf("{\"error\":\"unknown command\"}\n");
            }
            fflush(stdout);
            size_t used = (size_t)(nl + 1 - line);
            memmove(line, nl + 1, have - used);
            have -= used;
        }
        if (have >= sizeof(line) - 1) have = 0; /* an overlong line: dropped */
    }
    close(fd);
    free(bufs);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs("usage: bench_udp_sink ours|drain [--mpd X] [--rcvbuf BYTES] [--queue BYTES] [--log-level 0-5]\n", stderr);
        return 2;
    }
    double mpd = 0;
    uint32_t rcvbuf = 0;
    long queue_bytes = -1; /* -1: the default */
    int log_level = DDS_LOG_WARN;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--mpd")) mpd = strtod(argv[i + 1], NULL);
        else if (!strcmp(argv[i], "--rcvbuf")) rcvbuf = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--queue")) queue_bytes = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--log-level")) log_level = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_udp_sink: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!strcmp(argv[1], "ours")) return run_ours(rcvbuf, queue_bytes, log_level);
    if (!strcmp(argv[1], "drain")) return run_drain(mpd, rcvbuf);
    fprintf(stderr, "bench_udp_sink: unknown mode %s\n", argv[1]);
    return 2;
}
