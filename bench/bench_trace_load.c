/* bench_trace_load.c - an HTTP/1.1 load client for trace agents: N keep-alive connections on
 * loopback, each sending the same trace body again and again (one request in flight per
 * connection, no pipelining), for a bounded time. It measures any agent the same way: ours (the
 * datadog-serverless-compat process, or an in-process instance with --inproc) and a peer such as
 * the Datadog test agent (bench/traces.py runs both).
 *
 * Usage: bench_trace_load (--target 127.0.0.1:PORT | --inproc) [--path /v0.4/traces]
 *          [--gen SPANS_PER_TRACE,TRACES | --body FILE --spans N --traces N] [--conns 4]
 *          [--seconds 2] [--warmup 0.5] [--rounds 1] [--json] [--dump FILE]
 *   --gen      builds a v0.4 body with tracegen.h (deterministic: the same bytes on every run,
 *              whatever the target). 10,2 is ~10 KB, 100,19 ~1 MB (as bench_trace_http).
 *   --body     sends the bytes of FILE (any format: set --path), with --spans/--traces for the
 *              figures and the X-Datadog-Trace-Count header.
 *   --inproc   starts the agent in this process (its own loop thread), intake at a closed port.
 *   --rounds   measurement windows of --seconds each, back to back on the same connections,
 *              after one --warmup window; one result per round.
 *   --dump     writes the body to FILE.
 * Per round: requests answered 2xx per second, spans/s, body MB/s, latency p50/p99 (ms),
 * errors (non-2xx answers, and connections closed or reset mid-request, reopened at once).
 * Only 127.0.0.0/8 targets are accepted. Exits 1 when no connection can be made. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "datadog_serverless.h"
#include "tracegen.h"

#define MAX_CONNS 256
#define MAX_ROUNDS 101
#define RESP_CAP 65536
#define MAX_LAT 2000000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct conn {
    int fd;
    int sending; /* 1: writing the request, 0: reading the answer */
    size_t sent;
    size_t have;
    double t_sent; /* when the request started */
    char resp[RESP_CAP + 1]; /* NUL-terminated after each read */
} conn;

/* the request: head + body, contiguous, shared by every connection */
static uint8_t *req;
static size_t req_n;
static struct sockaddr_in target;
static int epfd;

/* counters of the current window */
static long ok_n, non2xx_n, conn_err_n;
static int first_bad_status;
static double *lat;
static long nlat;
static int counting;

static int open_conn(conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

static void want(conn *c, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void start_request(conn *c) {
    c->sending = 1;
    c->sent = 0;
    c->have = 0;
    c->t_sent = now_s();
    want(c, EPOLLOUT);
}

/* The connection broke: count it (mid-request), reopen, start over. -1 when it cannot reopen. */
static int reopen(conn *c) {
    if (counting) conn_err_n++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    if (open_conn(c) != 0) return -1;
    start_request(c);
    return 0;
}

/* Length of a complete answer in c->resp (headers + body), 0 while incomplete, -1 when bad. */
static long answer_len(conn *c, int *status, int *closes) {
    char *end = memmem(c->resp, c->have, "\r\n\r\n", 4);
    if (!end) return c->have >= RESP_CAP ? -1 : 0;
    size_t hlen = (size_t)(end + 4 - c->resp);
    *status = 0;
    if (sscanf(c->resp, "HTTP/1.%*d %d", status) != 1) return -1;
    *closes = 0;
    size_t clen = 0;
    int chunked = 0;
    for (char *line = strstr(c->resp, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        char *h = line + 2, *eol = strstr(h, "\r\n");
        const char *v;
        if (strncasecmp(h, "Content-Length:", 15) == 0) clen = strtoul(h + 15, NULL, 10);
        else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0 && (v = strcasestr(h, "chunked")) && v < eol) chunked = 1;
        else if (strncasecmp(h, "Connection:", 11) == 0 && strncasecmp(h + 11 + strspn(h + 11, " "), "close", 5) == 0) *closes = 1;
    }
    if (chunked) { /* small answers only: done at the last chunk */
        char *last = memmem(end + 4, c->have - hlen, "0\r\n\r\n", 5);
        if (!last) return c->have >= RESP_CAP ? -1 : 0;
        return (long)(last + 5 - c->resp);
    }
    if (hlen + clen > RESP_CAP) return -1;
    return c->have >= hlen + clen ? (long)(hlen + clen) : 0;
}

/* Drive one connection after an epoll event. -1 when it is lost for good. */
static int step(conn *c) {
    for (int guard = 0; guard < 64; guard++) {
        if (c->sending) {
            ssize_t w = send(c->fd, req + c->sent, req_n - c->sent, MSG_NOSIGNAL);
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
            if (w <= 0) return reopen(c);
            c->sent += (size_t)w;
            if (c->sent < req_n) continue;
            c->sending = 0;
            want(c, EPOLLIN);
        }
        ssize_t r = recv(c->fd, c->resp + c->have, RESP_CAP - c->have, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (r <= 0) return reopen(c);
        c->have += (size_t)r;
        c->resp[c->have] = 0;
        int status = 0, closes = 0;
        long n = answer_len(c, &status, &closes);
        if (n == 0) continue;
        if (n < 0) return reopen(c);
        if ((size_t)n != c->have) return reopen(c); /* bytes past the answer: not HTTP/1.1 as we speak it */
        if (counting) {
            if (status >= 200 && status < 300) {
                ok_n++;
                if (nlat < MAX_LAT) lat[nlat++] = now_s() - c->t_sent;
            } else {
                non2xx_n++;
                if (!first_bad_status) first_bad_status = status;
            }
        }
        if (closes) {
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            if (open_conn(c) != 0) return -1;
        }
        start_request(c);
        return 0; /* the next request goes out on the EPOLLOUT event */
    }
    return 0;
}

/* Run the connections until `until`; returns the number still alive. */
static int drive(conn *conns, int nconns, int *alive, double until) {
    struct epoll_event evs[MAX_CONNS];
    int live = *alive;
    for (;;) {
        double left = until - now_s();
        if (left <= 0 || live == 0) break;
        int timeout = (int)(left * 1000) + 1;
        int n = epoll_wait(epfd, evs, MAX_CONNS, timeout > 100 ? 100 : timeout);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (step(c) != 0) {
                if (c->fd >= 0) close(c->fd);
                c->fd = -1;
                live--;
            }
        }
    }
    (void)conns;
    (void)nconns;
    *alive = live;
    return live;
}

static int usage(void) {
    fprintf(stderr, "usage: bench_trace_load (--target 127.0.0.1:PORT | --inproc) [--path /v0.4/traces]\n"
                    "         [--gen SPANS_PER_TRACE,TRACES | --body FILE --spans N --traces N] [--conns 4]\n"
                    "         [--seconds 2] [--warmup 0.5] [--rounds 1] [--json] [--dump FILE]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *target_s = NULL, *path = "/v0.4/traces", *body_file = NULL, *dump = NULL;
    int inproc = 0, json = 0, conns_n = 4, rounds = 1, gen_per = 0, gen_traces = 0;
    long spans = 0, traces = 0;
    double seconds = 2.0, warmup = 0.5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--inproc") == 0) inproc = 1;
        else if (strcmp(a, "--json") == 0) json = 1;
        else if (!v) return usage();
        else if (strcmp(a, "--target") == 0) target_s = v, i++;
        else if (strcmp(a, "--path") == 0) path = v, i++;
        else if (strcmp(a, "--body") == 0) body_file = v, i++;
        else if (strcmp(a, "--dump") == 0) dump = v, i++;
        else if (strcmp(a, "--gen") == 0) {
            if (sscanf(v, "%d,%d", &gen_per, &gen_traces) != 2) return usage();
            i++;
        } else if (strcmp(a, "--spans") == 0) spans = atol(v), i++;
        else if (strcmp(a, "--traces") == 0) traces = atol(v), i++;
        else if (strcmp(a, "--conns") == 0) conns_n = atoi(v), i++;
        else if (strcmp(a, "--rounds") == 0) rounds = atoi(v), i++;
        else if (strcmp(a, "--seconds") == 0) seconds = atof(v), i++;
        else if (strcmp(a, "--warmup") == 0) warmup = atof(v), i++;
        else return usage();
    }
    if (!!target_s == !!inproc || !!body_file == (gen_per > 0)) return usage();
    if (conns_n < 1 || conns_n > MAX_CONNS || rounds < 1 || rounds > MAX_ROUNDS || !(seconds > 0 && seconds <= 60) ||
        !(warmup >= 0 && warmup <= 60))
        return usage();

    /* the body */
    wbuf body = {0};
    if (gen_per > 0) {
        if (gen_per > 100000 || gen_traces < 1 || gen_traces > 100000) return usage();
        build_v04(&body, gen_per, gen_traces);
        spans = (long)gen_per * gen_traces;
        traces = gen_traces;
    } else {
        FILE *fp = fopen(body_file, "rb");
        if (!fp) {
            perror(body_file);
            return 1;
        }
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) w_raw(&body, chunk, n);
        fclose(fp);
    }
    if (dump) {
        FILE *fp = fopen(dump, "wb");
        if (!fp || fwrite(body.b, 1, body.n, fp) != body.n || fclose(fp) != 0) {
            perror(dump);
            return 1;
        }
    }

    /* the agent: external (loopback only) or in this process */
    dds_services *svc = NULL;
    char host[64] = "127.0.0.1";
    unsigned port = 0;
    if (inproc) {
        dds_config cfg;
        dds_config_init(&cfg);
        cfg.api_key = "bench-key";
        cfg.use_dogstatsd = false;
        cfg.apm_receiver_port = 0;
        cfg.apm_dd_url = "http://127.0.0.1:9"; /* nothing listens on the discard port */
        cfg.log_level = DDS_LOG_OFF;
        dds_error err;
        if (dds_start(&cfg, NULL, NULL, &svc, &err) != 0) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        uint16_t p;
        dds_ports(svc, NULL, &p);
        port = p;
    } else {
        const char *colon = strrchr(target_s, ':');
        if (!colon || (size_t)(colon - target_s) >= sizeof(host)) return usage();
        memcpy(host, target_s, (size_t)(colon - target_s));
        host[colon - target_s] = 0;
        if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
        port = (unsigned)atoi(colon + 1);
    }
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1 || port == 0 || port > 65535 ||
        (ntohl(target.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "target must be 127.x.x.x:PORT\n");
        return 2;
    }

    /* the request */
    char head[512];
    int hn = snprintf(head, sizeof(head),
                      "PUT %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/msgpack\r\n"
                      "Datadog-Meta-Lang: python\r\nDatadog-Meta-Lang-Version: 3.11.7\r\n"
                      "Datadog-Meta-Tracer-Version: 4.16.0\r\nX-Datadog-Trace-Count: %ld\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      path, host, port, traces, body.n);
    req_n = (size_t)hn + body.n;
    req = malloc(req_n);
    lat = malloc(MAX_LAT * sizeof(double));
    conn *conns = calloc((size_t)conns_n, sizeof(conn));
    if (!req || !lat || !conns) abort();
    memcpy(req, head, (size_t)hn);
    memcpy(req + hn, body.b, body.n);

    epfd = epoll_create1(0);
    int alive = 0;
    for (int i = 0; i < conns_n; i++) {
        if (open_conn(&conns[i]) != 0) {
            fprintf(stderr, "cannot connect to %s:%u: %s\n", host, port, strerror(errno));
            return 1;
        }
        start_request(&conns[i]);
        alive++;
    }
    if (!json)
        printf("target %s:%u %s, body %.1f KB, %ld spans, %d connections\n"
               "round    req/s    spans/s     MB/s   p50 ms   p99 ms  errors\n",
               host, port, path, body.n / 1024.0, spans, conns_n);
    counting = 0;
    drive(conns, conns_n, &alive, now_s() + warmup);
    int rc = 0;
    for (int r = 0; r < rounds && alive > 0; r++) {
        ok_n = non2xx_n = conn_err_n = 0;
        first_bad_status = 0;
        nlat = 0;
        counting = 1;
        double t0 = now_s();
        drive(conns, conns_n, &alive, t0 + seconds);
        double t = now_s() - t0;
        counting = 0;
        qsort(lat, (size_t)nlat, sizeof(double), cmp_dbl);
        double p50 = nlat ? lat[nlat / 2] * 1e3 : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] * 1e3 : 0;
        double rps = (double)ok_n / t;
        long errors = non2xx_n + conn_err_n;
        if (json)
            printf("{\"round\":%d,\"target\":\"%s:%u\",\"path\":\"%s\",\"body_bytes\":%zu,\"spans\":%ld,\"traces\":%ld,"
                   "\"conns\":%d,\"seconds\":%.3f,\"requests\":%ld,\"req_s\":%.1f,\"spans_s\":%.0f,\"mb_s\":%.2f,"
                   "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%ld,\"non2xx\":%ld,\"conn_errors\":%ld,"
                   "\"first_bad_status\":%d,\"alive\":%d}\n",
                   r, host, port, path, body.n, spans, traces, conns_n, t, ok_n, rps, rps * (double)spans,
                   rps * (double)body.n / 1e6, p50, p99, errors, non2xx_n, conn_err_n, first_bad_status, alive);
        else
            printf("%5d %8.1f %10.0f %8.1f %8.2f %8.2f %7ld%s\n", r, rps, rps * (double)spans, rps * (double)body.n / 1e6,
                   p50, p99, errors, first_bad_status ? " (non-2xx seen)" : "");
        fflush(stdout);
    }
    if (alive == 0) {
        fprintf(stderr, "every connection was lost\n");
        rc = 1;
    }
    for (int i = 0; i < conns_n; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    close(epfd);
    if (svc) {
        dds_stats st;
        dds_stats_get(svc, &st);
        if (!json)
            printf("# agent: %llu requests, %llu spans accepted\n", (unsigned long long)st.trace_requests,
                   (unsigned long long)st.trace_spans);
        dds_stop(svc, 1000, NULL);
        dds_free(svc);
    }
    free(conns);
    free(lat);
    free(req);
    free(body.b);
    return rc;
}
