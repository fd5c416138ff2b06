/*
 * Lifecycle and footprint of the C library, as an embedding program sees it.
 *
 *   bench_lifecycle --intake http://127.0.0.1:PORT [--runs N] [--rss-runs M] [--json]
 *
 * The intake is the fake Datadog intake of tests/intake (python -m tests.intake --port 0), which
 * answers every payload after decoding it, on loopback.
 *
 * Measured, N runs in this process (after one warm-up start/stop that does the process-wide
 * one-time init: libevent threading, libcurl/OpenSSL global init), each run a fresh instance
 * with both services on port 0:
 *   start_return  dds_start called -> returned (both listeners bound)
 *   start_ready   dds_start called -> the second READY status delivered (clock read in the callback)
 *   stop_flush    200 DogStatsD lines (20 contexts) sent over UDP and counted by the stats, then
 *                 dds_stop called -> returned: drain, final flush, intake answered, thread joined
 *                 (checked: at least one payload answered, none dropped)
 * Measured in M fresh processes (this program again, --rss-child URL), RSS from /proc/self/statm:
 *   rss_before    in main, before dds_start
 *   first_ready   first dds_start of the process -> both READY (one-time init included)
 *   rss_idle      both READY, then 100 ms idle
 *   rss_100k      100,000 distinct counter contexts sent over UDP to the instance (paced by the
 *                 stats so the socket buffer never overflows), dsd_contexts = 100,000 (the default
 *                 context limit) and dsd_metric_lines counted, then RSS
 *   The child then exits without the final flush (100k series would only load the fake intake).
 * Out: medians (ms, bytes), as text or as one JSON object (--json).
 */
#include "datadog_serverless.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 1000
#define CONTEXTS 100000

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(time_t)(ms / 1000) * 1000) * 1e6)};
    nanosleep(&ts, NULL);
}

static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, int n) {
    if (n <= 0) return -1;
    qsort(xs, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

/* ---- READY tracking ------------------------------------------------------------------------ */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
    double ready_at; /* when the last READY arrived */
} waiter;

static void on_status(const dds_status *st, void *user) {
    waiter *w = user;
    if (st->type != DDS_STATUS_READY) return;
    double t = now_s();
    pthread_mutex_lock(&w->mu);
    w->ready++;
    w->ready_at = t;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_init(waiter *w) {
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void waiter_destroy(waiter *w) {
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Waits (at most 5 s) for both READY events; returns the time the second arrived, or -1. */
static double wait_ready(waiter *w) {
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    pthread_mutex_lock(&w->mu);
    while (w->ready < 2)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) break;
    double t = w->ready >= 2 ? w->ready_at : -1;
    pthread_mutex_unlock(&w->mu);
    return t;
}

/* ---- the instance ---------------------------------------------------------------------------- */

static void config(dds_config *cfg, const char *url) {
    dds_config_init(cfg);
    cfg->api_key = "bench-key-0123456789abcdef";
    cfg->dd_url = url;
    cfg->apm_dd_url = url;
    cfg->dogstatsd_port = 0;
    cfg->apm_receiver_port = 0;
    cfg->log_level = DDS_LOG_WARN;
}

static int start(const char *url, waiter *w, dds_services **out, double *t_return, double *t_ready) {
    dds_config cfg;
    dds_error err;
    config(&cfg, url);
    waiter_init(w);
    double t0 = now_s();
    if (dds_start(&cfg, on_status, w, out, &err) != 0) {
        fprintf(stderr, "dds_start: %s\n", err.message);
        return -1;
    }
    double t1 = now_s();
    double tr = wait_ready(w);
    if (tr < 0) {
        fprintf(stderr, "bench_lifecycle: no READY from both services within 5 s\n");
        return -1;
    }
    if (t_return) *t_return = t1 - t0;
    if (t_ready) *t_ready = tr - t0;
    return 0;
}

static int udp_socket(const dds_services *s, struct sockaddr_in *to) {
    uint16_t port = 0;
    dds_ports(s, &port, NULL);
    memset(to, 0, sizeof(*to));
    to->sin_family = AF_INET;
    to->sin_port = htons(port);
    to->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return socket(AF_INET, SOCK_DGRAM, 0);
}

static uint64_t lines_counted(const dds_services *s) {
    dds_stats st;
    dds_stats_get(s, &st);
    return st.dsd_metric_lines;
}

/* Waits (bounded) until the stats count `want` metric lines. */
static int wait_lines(const dds_services *s, uint64_t want, double timeout_s) {
    double dl = now_s() + timeout_s;
    while (lines_counted(s) < want) {
        if (now_s() > dl) return -1;
        sleep_ms(0.2);
    }
    return 0;
}

/* 200 lines of 20 contexts, 25 datagrams of 8 lines: what the stop has to flush. */
static int send_small_load(const dds_services *s) {
    struct sockaddr_in to;
    int fd = udp_socket(s, &to);
    if (fd < 0) return -1;
    char buf[1024];
    for (int d = 0; d < 25; d++) {
        size_t n = 0;
        for (int k = 0; k < 8; k++) {
            int i = d * 8 + k;
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%sbench.metric.%d:%d|c|#k:%d", k ? "\n" : "", i % 20, i,
                                  i % 5);
        }
        sendto(fd, buf, n, 0, (struct sockaddr *)&to, sizeof(to));
    }
    close(fd);
    return wait_lines(s, 200, 5);
}

/* ---- 100k contexts --------------------------------------------------------------------------- */

/* Line i of the context set: 100 metric names x 1000 values of one tag, two constant tags. The
 * same format is used by bench_python.py and bench_node.js. */
static int context_line(char *out, size_t cap, int i) {
    return snprintf(out, cap, "footprint.metric.%d:1|c|#ctx:%d,env:bench,service:footprint", i % 100, i / 100);
}

/* Sends the CONTEXTS lines, packed into datagrams of at most 8000 bytes, keeping at most 800
 * lines (6 datagrams) sent and not yet counted (the default 208 KiB socket buffer holds them). Up to 3 passes, in case
 * a datagram was lost anyway; returns 0 once dsd_contexts reaches CONTEXTS. */
static int send_contexts(const dds_services *s, dds_stats *final) {
    struct sockaddr_in to;
    int fd = udp_socket(s, &to);
    if (fd < 0) return -1;
    char buf[8192], line[128];
    int rc = -1;
    for (int pass = 0; pass < 3 && rc != 0; pass++) {
        uint64_t base = lines_counted(s), sent = 0;
        size_t n = 0;
        int in_buf = 0;
        double deadline = now_s() + 20;
        for (int i = 0; i <= CONTEXTS; i++) {
            int len = i < CONTEXTS ? context_line(line, sizeof(line), i) : 0;
            if (n && (i == CONTEXTS || n + 1 + (size_t)len > 8000)) {
                while (sent > lines_counted(s) - base + 800 && now_s() < deadline) sleep_ms(0.1);
                sendto(fd, buf, n, 0, (struct sockaddr *)&to, sizeof(to));
                sent += (uint64_t)in_buf;
                n = 0;
                in_buf = 0;
            }
            if (i == CONTEXTS) break;
            if (n) buf[n++] = '\n';
            memcpy(buf + n, line, (size_t)len);
            n += (size_t)len;
            in_buf++;
        }
        /* Counted, or nothing more arriving for 0.5 s. */
        uint64_t last = lines_counted(s);
        double quiet = now_s();
        while (lines_counted(s) - base < sent && now_s() - quiet < 0.5) {
            sleep_ms(1);
            uint64_t c = lines_counted(s);
            if (c != last) last = c, quiet = now_s();
        }
        dds_stats_get(s, final);
        if (getenv("BENCH_DEBUG"))
            fprintf(stderr, "pass %d: sent %llu, lines %llu, contexts %llu, parse errors %llu, packets %llu, truncated %llu, samples dropped %llu\n", pass,
                    (unsigned long long)sent, (unsigned long long)final->dsd_metric_lines,
                    (unsigned long long)final->dsd_contexts, (unsigned long long)final->dsd_parse_errors,
                    (unsigned long long)final->dsd_packets, (unsigned long long)final->dsd_packets_truncated,
                    (unsigned long long)final->dsd_samples_dropped);
        if (final->dsd_contexts >= CONTEXTS) rc = 0;
    }
    close(fd);
    return rc;
}

static int rss_child(const char *url) {
    long before = rss_bytes();
    waiter w;
    dds_services *s = NULL;
    double t_ready = 0;
    if (start(url, &w, &s, NULL, &t_ready) != 0) return 1;
    sleep_ms(100);
    long idle = rss_bytes();
    dds_stats st;
    memset(&st, 0, sizeof(st));
    int ok = send_contexts(s, &st) == 0;
    sleep_ms(20);
    long ctx = rss_bytes();
    printf("{\"rss_before\": %ld, \"rss_idle\": %ld, \"rss_100k\": %ld, \"first_ready_s\": %.9f, "
           "\"contexts\": %llu, \"lines\": %llu, \"contexts_dropped\": %llu, \"ok\": %s}\n",
           before, idle, ctx, t_ready, (unsigned long long)st.dsd_contexts, (unsigned long long)st.dsd_metric_lines,
           (unsigned long long)st.dsd_contexts_dropped, ok ? "true" : "false");
    fflush(stdout);
    /* No final flush: 100k series would only keep the fake intake decoding. The process ends. */
    _exit(ok ? 0 : 1);
}

/* ---- driver ------------------------------------------------------------------------------------ */

static int lifecycle_run(const char *url, double *t_return, double *t_ready, double *t_stop) {
    waiter w;
    dds_services *s = NULL;
    if (start(url, &w, &s, t_return, t_ready) != 0) return -1;
    int rc = 0;
    if (send_small_load(s) != 0) {
        fprintf(stderr, "bench_lifecycle: the 200 lines were not all counted\n");
        rc = -1;
    }
    dds_error err;
    double t0 = now_s();
    if (dds_stop(s, 5000, &err) != 0) {
        fprintf(stderr, "dds_stop: %s\n", err.message);
        rc = -1;
    }
    *t_stop = now_s() - t0;
    dds_stats st;
    dds_stats_get(s, &st);
    if (st.payloads_sent < 1 || st.payloads_dropped) {
        fprintf(stderr, "bench_lifecycle: payloads sent %llu, dropped %llu\n", (unsigned long long)st.payloads_sent,
                (unsigned long long)st.payloads_dropped);
        rc = -1;
    }
    dds_free(s);
    waiter_destroy(&w);
    return rc;
}

int main(int argc, char **argv) {
    const char *url = NULL;
    int runs = 20, rss_runs = 3, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rss-child") && i + 1 < argc) return rss_child(argv[i + 1]);
        if (!strcmp(argv[i], "--intake") && i + 1 < argc) url = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rss-runs") && i + 1 < argc) rss_runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "usage: %s --intake URL [--runs N] [--rss-runs M] [--json]\n", argv[0]);
            return 2;
        }
    }
    if (!url || runs < 1 || runs > MAX_RUNS || rss_runs < 1 || rss_runs > MAX_RUNS) {
        fprintf(stderr, "usage: %s --intake URL [--runs 1-%d] [--rss-runs 1-%d] [--json]\n", argv[0], MAX_RUNS,
                MAX_RUNS);
        return 2;
    }

    /* RSS children first: fresh processes, nothing of this one's runs in them. */
    static double before[MAX_RUNS], idle[MAX_RUNS], ctx[MAX_RUNS], first[MAX_RUNS];
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0) return 1;
    self[len] = 0;
    int nrss = 0;
    for (int r = 0; r < rss_runs; r++) {
        char cmd[8400];
        snprintf(cmd, sizeof(cmd), "'%s' --rss-child '%s'", self, url);
        FILE *p = popen(cmd, "r");
        if (!p) return 1;
        char out[1024] = {0};
        size_t got = fread(out, 1, sizeof(out) - 1, p);
        int status = pclose(p);
        out[got] = 0;
        long b, i0, c;
        double fr;
        const char *q;
        if (status != 0 || !(q = strstr(out, "\"rss_before\"")) ||
            sscanf(q, "\"rss_before\": %ld, \"rss_idle\": %ld, \"rss_100k\": %ld, \"first_ready_s\": %lf", &b, &i0,
                   &c, &fr) != 4) {
            fprintf(stderr, "bench_lifecycle: RSS child failed (status %d): %s\n", status, out);
            return 1;
        }
        before[nrss] = (double)b;
        idle[nrss] = (double)(i0 - b);
        ctx[nrss] = (double)(c - b);
        first[nrss] = fr;
        nrss++;
    }

    static double t_ret[MAX_RUNS], t_ready[MAX_RUNS], t_stop[MAX_RUNS];
    double w0, w1, w2;
    if (lifecycle_run(url, &w0, &w1, &w2) != 0) return 1; /* warm-up: the one-time init */
    for (int r = 0; r < runs; r++)
        if (lifecycle_run(url, &t_ret[r], &t_ready[r], &t_stop[r]) != 0) return 1;

    double m_ret = median(t_ret, runs), m_ready = median(t_ready, runs), m_stop = median(t_stop, runs);
    double m_first = median(first, nrss), m_before = median(before, nrss), m_idle = median(idle, nrss),
           m_ctx = median(ctx, nrss);
    if (json) {
        printf("{\"version\": \"%s\", \"runs\": %d, \"rss_runs\": %d, \"start_return_ms\": %.4f, "
               "\"start_ready_ms\": %.4f, \"stop_flush_ms\": %.4f, \"first_start_ready_ms\": %.4f, "
               "\"rss_before_bytes\": %.0f, \"rss_idle_added_bytes\": %.0f, \"rss_100k_added_bytes\": %.0f}\n",
               dds_version(), runs, nrss, m_ret * 1e3, m_ready * 1e3, m_stop * 1e3, m_first * 1e3, m_before, m_idle,
               m_ctx);
    } else {
        printf("datadog-serverless %s, C, medians of %d lifecycle runs and %d fresh processes\n", dds_version(), runs,
               nrss);
        printf("dds_start returns (both bound)              : %.3f ms\n", m_ret * 1e3);
        printf("dds_start to both READY                     : %.3f ms\n", m_ready * 1e3);
        printf("dds_stop, 200 lines pending, flushed, joined: %.3f ms\n", m_stop * 1e3);
        printf("first start of a process to both READY      : %.3f ms\n", m_first * 1e3);
        printf("RSS before start                            : %.2f MiB\n", m_before / 1048576);
        printf("RSS added, idle                             : %.2f MiB\n", m_idle / 1048576);
        printf("RSS added, 100k live contexts               : %.2f MiB\n", m_ctx / 1048576);
    }
    return 0;
}
