/* bench_trace_http.c - trace agent requests per second over loopback with keep-alive, for
 * ~10 KB and ~1 MB v0.4 bodies: the whole path (evhttp read, decode, normalize, encode into the
 * pending AgentPayload, gzip at each 3 s flush). The services run in this process on their own
 * loop thread; this thread is the client, one keep-alive connection, one request at a time.
 * Payloads go to a closed local port, so the encoding and gzip work is done as in production
 * but nothing is stored (failed sends are retried, then dropped at the retry-queue bound).
 *
 * Usage: bench_trace_http [seconds_per_case=3] [rounds=3]
 * Prints req/s, MB/s and spans/s per case (median of the rounds). Both cores are used: the
 * client and the agent share the machine, so compare ratios. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "datadog_serverless.h"
#include "tracegen.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int connect_to(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static void send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) {
            perror("send");
            exit(1);
        }
        c += w;
        n -= (size_t)w;
    }
}

/* Read one response (headers + Content-Length body); returns the status. */
static int read_response(int fd, char *buf, size_t cap) {
    size_t have = 0;
    char *end = NULL;
    while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
        ssize_t r = recv(fd, buf + have, cap - have, 0);
        if (r <= 0) return -1;
        have += (size_t)r;
    }
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    size_t clen = 0;
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (cl && cl < end) clen = strtoul(cl + 17, NULL, 10);
    size_t body_have = have - (size_t)(end + 4 - buf);
    while (body_have < clen) {
        ssize_t r = recv(fd, buf, cap, 0);
        if (r <= 0) return -1;
        body_have += (size_t)r;
    }
    return status;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;

    dds_config cfg;
    dds_config_init(&cfg);
    cfg.api_key = "bench-key";
    cfg.use_dogstatsd = false;
    cfg.apm_receiver_port = 0;
    cfg.apm_dd_url = "http://127.0.0.1:9"; /* nothing listens on the discard port */
    cfg.log_level = DDS_LOG_OFF;
    dds_services *svc;
    dds_error err;
    if (dds_start(&cfg, NULL, NULL, &svc, &err) != 0) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    uint16_t port;
    dds_ports(svc, NULL, &port);

    struct { const char *label; int spans_per_trace, ntraces; } cases[] = {
        {"~10 KB", 10, 2}, {"~1 MB", 100, 19},
    };
    printf("case       body KB    req/s      MB/s     spans/s\n");
    for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
        wbuf body = {0};
        build_v04(&body, cases[c].spans_per_trace, cases[c].ntraces);
        int spans = cases[c].spans_per_trace * cases[c].ntraces;
        char head[256];
        int hn = snprintf(head, sizeof(head),
                          "PUT /v0.4/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/msgpack\r\n"
                          "Datadog-Meta-Lang: python\r\nX-Datadog-Trace-Count: %d\r\nContent-Length: %zu\r\n\r\n",
                          cases[c].ntraces, body.n);
        static char resp[65536];
        double *rps = calloc((size_t)rounds, sizeof(double));
        int fd = connect_to(port);
        for (int r = 0; r < rounds; r++) {
            long done = 0;
            double t0 = now_s(), t;
            do {
                send_all(fd, head, (size_t)hn);
                send_all(fd, body.b, body.n);
                int st = read_response(fd, resp, sizeof(resp));
                if (st != 200) {
                    fprintf(stderr, "unexpected status %d\n", st);
                    return 1;
                }
                done++;
                t = now_s();
            } while (t - t0 < seconds);
            rps[r] = (double)done / (t - t0);
        }
        close(fd);
        qsort(rps, (size_t)rounds, sizeof(double), cmp_dbl);
        double med = rps[rounds / 2];
        printf("%-8s %9.1f %8.0f %9.1f %11.0f\n", cases[c].label, body.n / 1024.0, med, med * (double)body.n / 1e6,
               med * spans);
        free(rps);
        free(body.b);
    }
    dds_stats st;
    dds_stats_get(svc, &st);
    printf("# agent: %llu requests, %llu spans accepted\n", (unsigned long long)st.trace_requests,
           (unsigned long long)st.trace_spans);
    dds_stop(svc, 1000, NULL);
    dds_free(svc);
    return 0;
}
