/* Tests of src_c/services.c: the lifecycle rules of the public header, observed through real
 * sockets. Payloads go to a pipe (dry-run mode), so what would be sent is read back here. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "datadog_serverless.h"
#include "test.h"

#define MAX_EVENTS 32

typedef struct recorder {
    pthread_mutex_t mu;
    int n;
    dds_status_type types[MAX_EVENTS];
    dds_service_kind services[MAX_EVENTS];
    uint16_t ports[MAX_EVENTS];
    dds_services *stop_me;      /* when set, READY calls dds_stop on it (from the loop thread) */
    int stop_rc, flush_rc;
    bool try_flush;
} recorder;

static void record(const dds_status *st, void *user) {
    recorder *r = user;
    pthread_mutex_lock(&r->mu);
    if (r->n < MAX_EVENTS) {
        r->types[r->n] = st->type;
        r->services[r->n] = st->service;
        r->ports[r->n] = st->port;
        r->n++;
    }
    dds_services *s = r->stop_me;
    pthread_mutex_unlock(&r->mu);
    if (st->type == DDS_STATUS_READY && r->try_flush && s) r->flush_rc = dds_flush(s, 100, NULL);
    if (st->type == DDS_STATUS_READY && s) r->stop_rc = dds_stop(s, 1000, NULL);
}

static void recorder_init(recorder *r) {
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->stop_rc = r->flush_rc = 12345;
}

static int wait_events(recorder *r, int n, int ms) {
    for (int i = 0; i < ms; i++) {
        pthread_mutex_lock(&r->mu);
        int have = r->n;
        pthread_mutex_unlock(&r->mu);
        if (have >= n) return have;
        usleep(1000);
    }
    return r->n;
}

static void base_config(dds_config *c, int out_fd) {
    dds_config_init(c);
    c->dogstatsd_port = 0;
    c->dry_run = true;
    c->dry_run_fd = out_fd;
    c->log_level = DDS_LOG_WARN;
    c->use_trace_agent = false;
}

static void send_udp(uint16_t port, const char *msg, size_t len) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sendto(fd, msg, len, 0, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
}

/* Everything readable from the pipe now (non-blocking), NUL-terminated, caller frees. */
static char *drain_pipe(int fd) {
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap + 1);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, out + len, cap - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    out[len] = '\0';
    return out;
}

TEST(start_flush_stop_delivers_and_reports) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    recorder r;
    recorder_init(&r);
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, &err), 0);
    CHECK(s != NULL);
    CHECK(dds_is_running(s));
    uint16_t port = 0, tport = 1;
    dds_ports(s, &port, &tport);
    CHECK(port != 0);
    CHECK_EQ_INT(tport, 0);
    wait_events(&r, 1, 2000);
    CHECK_EQ_INT(r.types[0], DDS_STATUS_READY);
    CHECK_EQ_INT(r.services[0], DDS_SERVICE_DOGSTATSD);
    CHECK_EQ_INT(r.ports[0], port);

    const char *pkt = "lifecycle.count:2|c|#a:b\nlifecycle.gauge:7|g\nbroken-line\n";
    send_udp(port, pkt, strlen(pkt));
    dds_stats st;
    for (int i = 0; i < 2000; i++) {
        dds_stats_get(s, &st);
        if (st.dsd_metric_lines >= 2) break;
        usleep(1000);
    }
    CHECK_EQ_INT(st.dsd_metric_lines, 2);
    CHECK_EQ_INT(st.dsd_parse_errors, 1);
    CHECK_EQ_INT(st.dsd_packets, 1);
    CHECK_EQ_INT(dds_flush(s, 2000, &err), 0);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "\"lifecycle.count\"") != NULL);
    CHECK(strstr(out, "\"lifecycle.gauge\"") != NULL);
    CHECK(strstr(out, "/api/v2/series") != NULL);
    free(out);

    CHECK_EQ_INT(dds_stop(s, 2000, &err), 0);
    CHECK(!dds_is_running(s));
    CHECK_EQ_INT(dds_stop(s, 2000, &err), 0);                      /* idempotent */
    CHECK_EQ_INT(dds_flush(s, 100, &err), DDS_ERR_NOT_RUNNING);    /* after stop */
    CHECK(strstr(err.message, "Services not running") != NULL);
    wait_events(&r, 2, 1000);
    CHECK_EQ_INT(r.types[r.n - 1], DDS_STATUS_STOPPED);           /* last event */
    dds_stats_get(s, &st);                                          /* works after stop */
    CHECK_EQ_INT(st.dsd_metric_lines, 2);
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

TEST(stop_drains_what_the_socket_already_holds) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    dds_services *s = NULL;
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, NULL), 0);
    uint16_t port;
    dds_ports(s, &port, NULL);
    /* Sent and then stopped at once: the datagrams sit in the socket buffer when stop starts. */
    char line[64];
    for (int i = 0; i < 200; i++) {
        int n = snprintf(line, sizeof(line), "drain.m%d:1|c", i);
        send_udp(port, line, (size_t)n);
    }
    CHECK_EQ_INT(dds_stop(s, 3000, NULL), 0);
    dds_stats st;
    dds_stats_get(s, &st);
    CHECK_EQ_INT(st.dsd_metric_lines, 200);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "\"drain.m0\"") != NULL);
    CHECK(strstr(out, "\"drain.m199\"") != NULL);
    free(out);
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

TEST(stop_from_status_callback) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    recorder r;
    recorder_init(&r);
    r.try_flush = true;
    dds_services *s = NULL;
    /* The callback may run before dds_start returns: hold it until stop_me is set. */
    pthread_mutex_lock(&r.mu);
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, NULL), 0);
    r.stop_me = s;
    pthread_mutex_unlock(&r.mu);
    wait_events(&r, 2, 3000);
    CHECK_EQ_INT(r.stop_rc, 0);
    CHECK_EQ_INT(r.flush_rc, DDS_ERR_RUNTIME); /* would wait on itself */
    CHECK_EQ_INT(r.types[r.n - 1], DDS_STATUS_STOPPED);
    CHECK(!dds_is_running(s));
    CHECK_EQ_INT(dds_stop(s, 1000, NULL), 0); /* joins */
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

TEST(start_after_stop_and_two_instances) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    dds_services *a = NULL, *b = NULL;
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &a, NULL), 0);
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &b, NULL), 0);
    uint16_t pa, pb;
    dds_ports(a, &pa, NULL);
    dds_ports(b, &pb, NULL);
    CHECK(pa != pb);
    send_udp(pa, "inst.a:1|c", 10);
    send_udp(pb, "inst.b:1|c", 10);
    CHECK_EQ_INT(dds_stop(a, 2000, NULL), 0);
    CHECK_EQ_INT(dds_stop(b, 2000, NULL), 0);
    dds_free(a);
    dds_free(b);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "\"inst.a\"") != NULL);
    CHECK(strstr(out, "\"inst.b\"") != NULL);
    free(out);
    /* Start again on the very port the stopped instance used. */
    c.dogstatsd_port = pa;
    dds_services *again = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &again, &err), 0);
    if (again) {
        uint16_t pp;
        dds_ports(again, &pp, NULL);
        CHECK_EQ_INT(pp, pa);
        dds_free(again); /* free without stop: stops first */
    }
    close(p[0]);
    close(p[1]);
}

TEST(taken_port_is_a_clear_start_error) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    dds_config c;
    base_config(&c, 1);
    c.dogstatsd_port = ntohs(sa.sin_port);
    recorder r;
    recorder_init(&r);
    dds_services *s = (dds_services *)0x1;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, &err), DDS_ERR_DOGSTATSD_START);
    CHECK(s == (dds_services *)0x1); /* untouched */
    CHECK(strstr(err.message, "Failed to start DogStatsD: cannot bind UDP 127.0.0.1:") != NULL);
    CHECK(strstr(err.message, "Address already in use") != NULL);
    usleep(20000);
    CHECK_EQ_INT(r.n, 0); /* a failed call never invokes its callback */
    close(fd);
}

TEST(invalid_config_fails_start) {
    dds_config c;
    base_config(&c, 1);
    c.dogstatsd_port = 70000;
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(s == NULL);
    CHECK_EQ_STR(err.message, "Invalid configuration: dogstatsd_port must be 0-65535, got 70000");
    CHECK_EQ_INT(dds_stop(NULL, 0, &err), DDS_ERR_NOT_RUNNING);
    CHECK(!dds_is_running(NULL));
    dds_free(NULL);
}

TEST(unix_socket_and_truncation) {
    int p[2];
    CHECK(pipe(p) == 0);
    char path[64];
    snprintf(path, sizeof(path), "/tmp/dds-test-%d.sock", (int)getpid());
    dds_config c;
    base_config(&c, p[1]);
    c.dogstatsd_socket = path;
    c.dogstatsd_buffer_size = 512;
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, &err), 0);
    if (!s) return;
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    const char *m = "uds.metric:3|g";
    CHECK(sendto(fd, m, strlen(m), 0, (struct sockaddr *)&sa, sizeof(sa)) == (ssize_t)strlen(m));
    close(fd);
    /* A datagram larger than the 512-byte buffer is counted and dropped; its neighbour is kept. */
    char big[1000];
    memset(big, 'x', sizeof(big));
    memcpy(big, "trunc.metric:1|c\n", 17);
    uint16_t port;
    dds_ports(s, &port, NULL);
    send_udp(port, big, sizeof(big));
    send_udp(port, "after.trunc:1|c", 15);
    CHECK_EQ_INT(dds_stop(s, 2000, NULL), 0);
    dds_stats st;
    dds_stats_get(s, &st);
    CHECK_EQ_INT(st.dsd_packets_truncated, 1);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "\"uds.metric\"") != NULL);
    CHECK(strstr(out, "\"after.trunc\"") != NULL);
    CHECK(strstr(out, "trunc.metric") == NULL);
    free(out);
    CHECK(access(path, F_OK) != 0); /* socket file removed at stop */
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

typedef struct { dds_services *s; atomic_int ok, not_running, other; } flusher_arg;

static void *flusher(void *arg) {
    flusher_arg *f = arg;
    for (int i = 0; i < 50; i++) {
        int rc = dds_flush(f->s, 1000, NULL);
        if (rc == 0) atomic_fetch_add(&f->ok, 1);
        else if (rc == DDS_ERR_NOT_RUNNING) atomic_fetch_add(&f->not_running, 1);
        else atomic_fetch_add(&f->other, 1);
    }
    return NULL;
}

TEST(concurrent_flush_and_stop) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    dds_services *s = NULL;
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, NULL), 0);
    flusher_arg f = {.s = s};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, flusher, &f);
    usleep(5000);
    CHECK_EQ_INT(dds_stop(s, 2000, NULL), 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK_EQ_INT(atomic_load(&f.other), 0);
    CHECK_EQ_INT(atomic_load(&f.ok) + atomic_load(&f.not_running), 200);
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

typedef struct { pthread_mutex_t mu; char lines[8192]; } log_capture;

static void capture_log(dds_log_level level, const char *line, void *user) {
    (void)level;
    log_capture *lc = user;
    pthread_mutex_lock(&lc->mu);
    size_t n = strlen(lc->lines);
    snprintf(lc->lines + n, sizeof(lc->lines) - n, "%s\n", line);
    pthread_mutex_unlock(&lc->mu);
}

TEST(api_key_never_logged_and_stop_is_bounded) {
    /* A port with nothing listening: every send fails and is retried until stop's deadline. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    close(fd);

    static log_capture lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dds_set_log_fn(capture_log, &lc);
    dds_config c;
    base_config(&c, 1);
    c.dry_run = false;
    c.api_key = "SUPERSECRETAPIKEY0123456789";
    c.dd_url = url;
    c.log_level = DDS_LOG_TRACE;
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, &err), 0);
    if (!s) return;
    uint16_t port;
    dds_ports(s, &port, NULL);
    send_udp(port, "secret.test:1|c", 15);
    usleep(20000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = dds_stop(s, 600, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    CHECK_EQ_INT(rc, DDS_ERR_SHUTDOWN_TIMEOUT);
    CHECK(strstr(err.message, "Shutdown timeout exceeded") != NULL);
    CHECK_MSG(ms < 600 + 1500, "stop took %.0f ms for a 600 ms timeout", ms);
    dds_stats st;
    dds_stats_get(s, &st);
    CHECK(st.payloads_dropped >= 1);
    CHECK(st.payloads_retried >= 1);
    dds_free(s);
    dds_set_log_fn(NULL, NULL);
    pthread_mutex_lock(&lc.mu);
    CHECK(strlen(lc.lines) > 0); /* trace level did log */
    CHECK_MSG(strstr(lc.lines, "SUPERSECRETAPIKEY") == NULL, "API key found in logs:\n%s", lc.lines);
    pthread_mutex_unlock(&lc.mu);
}

/* A raw HTTP/1.1 PUT of body to 127.0.0.1:port; returns the status code (0 on failure). */
static int http_put(uint16_t port, const char *path, const void *body, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return 0;
    }
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/msgpack\r\n"
                     "Datadog-Meta-Lang: c\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", path, len);
    if (write(fd, head, (size_t)n) != n || write(fd, body, len) != (ssize_t)len) {
        close(fd);
        return 0;
    }
    char resp[512] = {0};
    ssize_t got = read(fd, resp, sizeof(resp) - 1);
    close(fd);
    int status = 0;
    if (got > 12) sscanf(resp, "HTTP/1.1 %d", &status);
    return status;
}

/* A raw HTTP/1.1 request; returns the status code (0 on failure). */
static int http_post(uint16_t port, const char *method, const char *path, const char *body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return 0;
    }
    char head[256];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, len);
    if (write(fd, head, (size_t)n) != n || write(fd, body, len) != (ssize_t)len) {
        close(fd);
        return 0;
    }
    char resp[512] = {0};
    ssize_t got = read(fd, resp, sizeof(resp) - 1);
    close(fd);
    int status = 0;
    if (got > 12) sscanf(resp, "HTTP/1.1 %d", &status);
    return status;
}

TEST(logs_agent_lifecycle) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    c.use_dogstatsd = false;
    c.logs_enabled = true;
    c.logs_port = 0;
    recorder r;
    recorder_init(&r);
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, &err), 0);
    uint16_t port = dds_logs_port(s);
    CHECK(port != 0);
    CHECK_EQ_INT(dds_logs_port(NULL), 0);
    wait_events(&r, 1, 2000);
    CHECK_EQ_INT(r.types[0], DDS_STATUS_READY);
    CHECK_EQ_INT(r.services[0], DDS_SERVICE_LOGS_AGENT);
    CHECK_EQ_INT(r.ports[0], port);

    CHECK_EQ_INT(http_post(port, "POST", "/v1/input", "[{\"message\":\"first\",\"timestamp\":1}]"), 200);
    CHECK_EQ_INT(http_post(port, "POST", "/v1/input", "[{\"message\":\"bad\"}]"), 400);
    CHECK_EQ_INT(http_post(port, "GET", "/v1/input", ""), 405);
    CHECK_EQ_INT(http_post(port, "POST", "/v2/input", "[]"), 404);
    CHECK_EQ_INT(dds_flush(s, 2000, &err), 0);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "{\"dry_run\":true,\"endpoint\":\"/api/v2/logs\",\"payload\":[{\"message\":\"first\",\"timestamp\":1}]}\n") != NULL);
    free(out);

    /* Accepted, then stop: delivered by the stop's flush. */
    CHECK_EQ_INT(http_post(port, "POST", "/v1/input", "[{\"message\":\"last\",\"timestamp\":2,\"k\":[1]}]"), 200);
    CHECK_EQ_INT(dds_stop(s, 2000, &err), 0);
    out = drain_pipe(p[0]);
    CHECK(strstr(out, "\"payload\":[{\"message\":\"last\",\"timestamp\":2,\"k\":[1]}]") != NULL);
    free(out);
    dds_stats st;
    dds_stats_get(s, &st);
    CHECK_EQ_INT(st.logs_requests, 2);
    CHECK_EQ_INT(st.logs_entries, 2);
    CHECK_EQ_INT(st.logs_entries_dropped, 0);
    CHECK(st.logs_bytes > 40);
    CHECK_EQ_INT(st.dry_run_payloads, 2);
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

TEST(logs_port_taken_is_a_start_error) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    dds_config c;
    base_config(&c, 1);
    c.logs_enabled = true;
    c.logs_port = ntohs(sa.sin_port);
    recorder r;
    recorder_init(&r);
    dds_services *s = (dds_services *)0x1;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, &err), DDS_ERR_LOGS_AGENT_START);
    CHECK(s == (dds_services *)0x1);
    char want[128];
    snprintf(want, sizeof(want), "Failed to start logs agent: cannot bind TCP 127.0.0.1:%u: Address already in use",
             ntohs(sa.sin_port));
    CHECK_EQ_STR(err.message, want);
    usleep(20000);
    CHECK_EQ_INT(r.n, 0);
    close(fd);
}

TEST(trace_agent_lifecycle) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    c.use_trace_agent = true;
    c.apm_receiver_port = 0;
    recorder r;
    recorder_init(&r);
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, &err), 0);
    if (!s) return;
    uint16_t dport, tport;
    dds_ports(s, &dport, &tport);
    CHECK(tport != 0 && dport != 0 && tport != dport);
    wait_events(&r, 2, 2000);
    bool trace_ready = false, dsd_ready = false;
    for (int i = 0; i < r.n; i++) {
        if (r.types[i] == DDS_STATUS_READY && r.services[i] == DDS_SERVICE_TRACE_AGENT && r.ports[i] == tport)
            trace_ready = true;
        if (r.types[i] == DDS_STATUS_READY && r.services[i] == DDS_SERVICE_DOGSTATSD && r.ports[i] == dport)
            dsd_ready = true;
    }
    CHECK(trace_ready && dsd_ready);

    /* [[{"trace_id":7,"span_id":9,"name":"op"}]] in msgpack */
    static const unsigned char trace[] = {0x91, 0x91, 0x83, 0xa8, 't', 'r', 'a', 'c', 'e', '_', 'i', 'd', 0x07,
                                          0xa7, 's', 'p', 'a', 'n', '_', 'i', 'd', 0x09,
                                          0xa4, 'n', 'a', 'm', 'e', 0xa2, 'o', 'p'};
    CHECK_EQ_INT(http_put(tport, "/v0.4/traces", trace, sizeof(trace)), 200);
    CHECK_EQ_INT(http_put(tport, "/v0.4/traces", "\xc1", 1), 400); /* never-used byte: decode error */
    /* /dogstatsd/v2/proxy bodies count as DogStatsD input: packets and bytes alike. */
    const char *dsd_body = "proxied.metric:1|c\nproxied.gauge:2|g";
    CHECK_EQ_INT(http_post(tport, "POST", "/dogstatsd/v2/proxy", dsd_body), 202);
    CHECK_EQ_INT(dds_flush(s, 2000, &err), 0);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "/api/v0.2/traces") != NULL);
    CHECK(strstr(out, "\"op\"") != NULL);
    free(out);
    dds_stats st;
    dds_stats_get(s, &st);
    CHECK_EQ_INT(st.trace_requests, 1);
    CHECK_EQ_INT(st.trace_spans, 1);
    CHECK_EQ_INT(st.trace_dropped, 1);
    CHECK_EQ_INT(st.dsd_packets, 1);
    CHECK_EQ_INT(st.dsd_bytes, strlen(dsd_body));
    CHECK_EQ_INT(st.dsd_metric_lines, 2);
    CHECK_EQ_INT(st.send_queue_bytes, 0);
    CHECK_EQ_INT(st.send_queue_dropped_metrics + st.send_queue_dropped_traces + st.send_queue_dropped_logs +
                     st.send_queue_dropped_proxy, 0);
    CHECK_EQ_INT(dds_stop(s, 2000, &err), 0);
    CHECK_EQ_INT(http_put(tport, "/v0.4/traces", trace, sizeof(trace)), 0); /* no longer accepting */
    dds_free(s);

    /* A taken TCP port is a trace-agent start error, and nothing is left running. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    c.apm_receiver_port = ntohs(sa.sin_port);
    s = NULL;
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, &err), DDS_ERR_TRACE_AGENT_START);
    CHECK(s == NULL);
    CHECK(strstr(err.message, "Failed to start trace agent: cannot bind TCP 127.0.0.1:") != NULL);
    CHECK(strstr(err.message, "Address already in use") != NULL);
    close(fd);
    close(p[0]);
    close(p[1]);
}

/* ---- large trace bodies: encoded by the trace agent's encode thread ---------------------------- */

static void mp_str(unsigned char **w, const char *str, size_t n) {
    if (n < 32) {
        *(*w)++ = (unsigned char)(0xa0 | n);
    } else {
        *(*w)++ = 0xda;
        *(*w)++ = (unsigned char)(n >> 8);
        *(*w)++ = (unsigned char)n;
    }
    memcpy(*w, str, n);
    *w += n;
}

static void mp_u32(unsigned char **w, uint32_t v) {
    *(*w)++ = 0xce;
    *(*w)++ = (unsigned char)(v >> 24);
    *(*w)++ = (unsigned char)(v >> 16);
    *(*w)++ = (unsigned char)(v >> 8);
    *(*w)++ = (unsigned char)v;
}

/* A v0.4 body of ntraces traces of nspans spans each (span ids 1..nspans, trace ids from
 * first_trace), every span with a 600-byte meta value: ~700 bytes a span. */
static unsigned char *big_body(uint32_t first_trace, uint32_t ntraces, uint32_t nspans, size_t *len) {
    char pad[600];
    memset(pad, 'x', sizeof(pad));
    unsigned char *b = malloc((size_t)ntraces * nspans * 720 + 64), *w = b;
    *w++ = 0xdc;
    *w++ = (unsigned char)(ntraces >> 8);
    *w++ = (unsigned char)ntraces;
    for (uint32_t t = 0; t < ntraces; t++) {
        *w++ = 0xdc;
        *w++ = (unsigned char)(nspans >> 8);
        *w++ = (unsigned char)nspans;
        for (uint32_t i = 0; i < nspans; i++) {
            *w++ = 0x86;
            mp_str(&w, "trace_id", 8);
            mp_u32(&w, first_trace + t);
            mp_str(&w, "span_id", 7);
            mp_u32(&w, i + 1);
            mp_str(&w, "parent_id", 9);
            mp_u32(&w, i);
            mp_str(&w, "name", 4);
            mp_str(&w, "big.op", 6);
            mp_str(&w, "service", 7);
            mp_str(&w, "svc", 3);
            mp_str(&w, "meta", 4);
            *w++ = 0x81;
            mp_str(&w, "pad", 3);
            mp_str(&w, pad, 600);
        }
    }
    *len = (size_t)(w - b);
    return b;
}

typedef struct big_sender {
    uint16_t port;
    uint32_t first_trace, bodies, ntraces, nspans;
    int ok;
} big_sender;

static void *big_send(void *arg) {
    big_sender *bs = arg;
    for (uint32_t k = 0; k < bs->bodies; k++) {
        size_t len;
        unsigned char *b = big_body(bs->first_trace + k * bs->ntraces, bs->ntraces, bs->nspans, &len);
        if (http_put(bs->port, "/v0.4/traces", b, len) == 200) bs->ok++;
        free(b);
    }
    return NULL;
}

static size_t count_of(const char *hay, const char *needle) {
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* Everything in a file, NUL-terminated; caller frees. */
static char *read_file_all(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return NULL;
    char *out = calloc(1, (size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = pread(fd, out + got, (size_t)st.st_size - got, (off_t)got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    return out;
}

/* Bodies over the hand-off size (~140 KB), from 3 connections at once, with small bodies in
 * between: every span accepted is in the output after dds_flush, and after dds_stop, with exact
 * counters; more than 3.2 MB of spans, so the encode thread completes payloads on its own too. */
TEST(trace_agent_large_bodies_all_delivered) {
    char path[] = "/tmp/dds_test_trace_big_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    unlink(path);
    dds_config c;
    base_config(&c, fd);
    c.use_trace_agent = true;
    c.apm_receiver_port = 0;
    c.use_dogstatsd = false;
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, &err), 0);
    if (!s) {
        close(fd);
        return;
    }
    uint16_t dport, tport;
    dds_ports(s, &dport, &tport);
    const uint32_t ntraces = 4, nspans = 50, bodies = 8;
    for (int round = 0; round < 2; round++) {
        big_sender bs[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            bs[i] = (big_sender){.port = tport, .first_trace = 1 + (uint32_t)(round * 3 + i) * 1000,
                                 .bodies = bodies, .ntraces = ntraces, .nspans = nspans};
            CHECK(pthread_create(&th[i], NULL, big_send, &bs[i]) == 0);
        }
        size_t small_len;
        unsigned char *small = big_body(900000 + (uint32_t)round, 1, 2, &small_len);
        int small_ok = 0;
        for (int i = 0; i < 5; i++) small_ok += http_put(tport, "/v0.4/traces", small, small_len) == 200;
        free(small);
        int ok = small_ok;
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            ok += bs[i].ok;
        }
        CHECK_EQ_INT(ok, 3 * (int)bodies + 5);
        uint64_t want_spans = (uint64_t)(round + 1) * (3 * bodies * ntraces * nspans + 5 * 2);
        if (round == 0) CHECK_EQ_INT(dds_flush(s, 5000, &err), 0);
        else CHECK_EQ_INT(dds_stop(s, 5000, &err), 0);
        dds_stats st;
        dds_stats_get(s, &st);
        CHECK_EQ_INT(st.trace_requests, (uint64_t)(round + 1) * (3 * bodies + 5));
        CHECK_EQ_INT(st.trace_spans, want_spans);
        CHECK_EQ_INT(st.trace_spans_dropped, 0);
        char *out = read_file_all(fd);
        CHECK(out != NULL);
        if (out) {
            CHECK_EQ_INT(count_of(out, "\"spanID\""), want_spans);
            CHECK(count_of(out, "/api/v0.2/traces") >= 2 * (size_t)(round + 1));
        }
        free(out);
    }
    dds_free(s);
    close(fd);
}

TEST(forked_child_leaves_the_parents_instance_alone) {
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    dds_services *s = NULL;
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, NULL), 0);
    if (!s) return;
    uint16_t port;
    dds_ports(s, &port, NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* Child: every call returns at once and leaves the parent's objects alone. */
        int bad = 0;
        if (dds_is_running(s)) bad |= 1;
        if (dds_flush(s, 1000, NULL) != DDS_ERR_NOT_RUNNING) bad |= 2;
        if (dds_stop(s, 1000, NULL) != 0) bad |= 4;
        dds_free(s);
        _exit(bad);
    }
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Parent: still running, still receiving and sending. */
    CHECK(dds_is_running(s));
    send_udp(port, "after.fork:1|c", 14);
    usleep(20000);
    CHECK_EQ_INT(dds_flush(s, 2000, NULL), 0);
    char *out = drain_pipe(p[0]);
    CHECK(strstr(out, "\"after.fork\"") != NULL);
    free(out);
    CHECK_EQ_INT(dds_stop(s, 2000, NULL), 0);
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

/* ---- no CA certificates ---------------------------------------------------------------------- */

typedef struct status_log {
    pthread_mutex_t mu;
    int n;
    dds_status_type types[MAX_EVENTS];
    char messages[MAX_EVENTS][1024];
} status_log;

static void keep_status(const dds_status *st, void *user) {
    status_log *sl = user;
    pthread_mutex_lock(&sl->mu);
    if (sl->n < MAX_EVENTS) {
        sl->types[sl->n] = st->type;
        snprintf(sl->messages[sl->n], sizeof(sl->messages[0]), "%s", st->message ? st->message : "");
        sl->n++;
    }
    pthread_mutex_unlock(&sl->mu);
}

static int count_lines_with(const char *lines, const char *needle) {
    int n = 0;
    for (const char *p = strstr(lines, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Starts with cfg in this process's (private, /etc-less) view, sends one metric, flushes, stops
 * (both must finish in time when prompt is set). Returns how many ERROR events mentioned the
 * missing certificates; lc gets the log lines, st the final counters. */
static int run_without_ca(dds_config *c, log_capture *lc, dds_stats *st, bool prompt) {
    static status_log sl;
    memset(&sl, 0, sizeof(sl));
    pthread_mutex_init(&sl.mu, NULL);
    memset(lc->lines, 0, sizeof(lc->lines));
    dds_set_log_fn(capture_log, lc);
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(c, keep_status, &sl, &s, &err), 0);
    if (!s) return -1;
    uint16_t port;
    dds_ports(s, &port, NULL);
    send_udp(port, "no.ca:1|c", 9);
    usleep(20000);
    /* The payload fails at once (never retried), so the flush and the stop finish in time. */
    int flush_rc = dds_flush(s, prompt ? 3000 : 200, &err);
    int stop_rc = dds_stop(s, prompt ? 3000 : 300, &err);
    if (prompt) {
        CHECK_EQ_INT(flush_rc, 0);
        CHECK_EQ_INT(stop_rc, 0);
    }
    dds_stats_get(s, st);
    dds_free(s);
    dds_set_log_fn(NULL, NULL);
    int n = 0;
    pthread_mutex_lock(&sl.mu);
    for (int i = 0; i < sl.n; i++)
        if (sl.types[i] == DDS_STATUS_ERROR && strstr(sl.messages[i], "no CA certificates found")) {
            n++;
            CHECK(strstr(sl.messages[i], "DD_TLS_CA_PATH") != NULL);
            CHECK(strstr(sl.messages[i], "SSL_CERT_FILE") != NULL);
            CHECK(strstr(sl.messages[i], "/etc/ssl/certs/ca-certificates.crt (missing)") != NULL);
            CHECK(strstr(sl.messages[i], "/etc/ssl/certs/ (missing)") != NULL);
            CHECK(i > 0 && sl.types[i - 1] == DDS_STATUS_READY); /* after the READY events */
        }
    CHECK(sl.n > 0 && sl.types[sl.n - 1] == DDS_STATUS_STOPPED);
    pthread_mutex_unlock(&sl.mu);
    return n;
}

static void without_ca(void *arg) {
    (void)arg;
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    /* A listening socket that never accepts: the kernel completes the TCP connection, so the
     * request reaches TLS setup, where it must fail; past it, it would wait for an answer and
     * time out (and be retried), which the counters below would show. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 16) == 0);
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char https_url[64], http_url[64];
    snprintf(https_url, sizeof(https_url), "https://127.0.0.1:%d", ntohs(sa.sin_port));
    snprintf(http_url, sizeof(http_url), "http://127.0.0.1:%d", ntohs(sa.sin_port));

    static log_capture lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    dds_config c;
    dds_stats st;
    base_config(&c, 1);
    c.dry_run = false;
    c.api_key = "0123456789abcdef0123456789abcdef";
    c.dd_url = https_url;
    c.log_level = DDS_LOG_INFO;
    /* Nothing found, https, verifying: one error line, one ERROR event, the data is still
     * accepted and counted, and the payload is dropped, never sent and never retried. */
    CHECK_EQ_INT(run_without_ca(&c, &lc, &st, true), 1);
    CHECK_EQ_INT(count_lines_with(lc.lines, "no CA certificates found"), 1);
    CHECK_EQ_INT(st.dsd_metric_lines, 1);
    CHECK_EQ_INT(st.payloads_sent, 0);
    CHECK(st.payloads_dropped >= 1);
    CHECK_EQ_INT(st.payloads_retried, 0);
    CHECK_MSG(strstr(lc.lines, "no CA certificates were found at start") != NULL, "log:\n%s", lc.lines);

    /* The same with an explicit path is a start error instead (validation), not a silent search. */
    c.tls_ca_path = "/etc/ssl/certs/ca-certificates.crt";
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, NULL, NULL, &s, &err), DDS_ERR_INVALID_CONFIG);
    CHECK(strstr(err.message, "tls_ca_path") != NULL);
    CHECK(s == NULL);
    c.tls_ca_path = NULL;

    /* No error when no CA is needed: verification off, only http:// URLs, or dry run. */
    c.request_timeout_ms = 200;
    c.tls_verify = false;
    CHECK_EQ_INT(run_without_ca(&c, &lc, &st, false), 0);
    CHECK_EQ_INT(count_lines_with(lc.lines, "no CA certificates found"), 0);
    c.tls_verify = true;
    c.dd_url = http_url;
    CHECK_EQ_INT(run_without_ca(&c, &lc, &st, false), 0);
    CHECK_EQ_INT(count_lines_with(lc.lines, "no CA certificates found"), 0);
    c.dd_url = https_url;
    c.dry_run = true;
    int p[2];
    CHECK(pipe(p) == 0);
    c.dry_run_fd = p[1];
    CHECK_EQ_INT(run_without_ca(&c, &lc, &st, true), 0);
    CHECK_EQ_INT(count_lines_with(lc.lines, "no CA certificates found"), 0);
    CHECK_EQ_INT(st.dry_run_payloads, 1);
    close(p[0]);
    close(p[1]);
    close(fd);
}

TEST(no_ca_certificates_is_an_error_event_not_a_start_failure) {
    static const char *const over_etc[] = {"/etc", NULL};
    test_with_tmpfs_over(over_etc, without_ca, NULL);
}

/* Azure Functions with DD_USE_DOGSTATSD=false: no socket, no dogstatsd READY, but the enhanced
 * metrics are aggregated and sent (as in the Rust binary), without the user's metric namespace;
 * the missing /home/site/wwwroot is an ERROR event, not an exit. In a private mount namespace:
 * /sys/fs/cgroup holds a v1 counter the test moves, /home is empty. */
static void azure_enhanced_child(void *arg) {
    (void)arg;
    mkdir("/sys/fs/cgroup/cpu", 0755);
    int fd = open("/sys/fs/cgroup/cpu/cpuacct.usage", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, "1000\n", 5) == 5);
    close(fd);
    setenv("FUNCTIONS_EXTENSION_VERSION", "~4", 1);
    setenv("FUNCTIONS_WORKER_RUNTIME", "node", 1);
    setenv("WEBSITE_SITE_NAME", "my-func", 1);
    setenv("WEBSITE_OWNER_NAME", "sub-1+my-rg-EastUSwebspace-Linux", 1);
    setenv("COMPUTERNAME", "Host-A", 1);
    setenv("DD_SERVERLESS_COMPAT_VERSION", "9.9.9", 1);
    int p[2];
    CHECK(pipe(p) == 0);
    dds_config c;
    base_config(&c, p[1]);
    c.use_dogstatsd = false;
    c.metric_namespace = "ns";
    c.log_level = DDS_LOG_OFF;
    recorder r;
    recorder_init(&r);
    dds_services *s = NULL;
    dds_error err = {0};
    CHECK_EQ_INT(dds_start(&c, record, &r, &s, &err), 0);
    if (!s) return;
    uint16_t port = 1;
    dds_ports(s, &port, NULL);
    CHECK_EQ_INT(port, 0);
    usleep(1500 * 1000);
    fd = open("/sys/fs/cgroup/cpu/cpuacct.usage", O_WRONLY | O_TRUNC);
    CHECK(fd >= 0 && write(fd, "500001000\n", 10) == 10);  /* half a core between t=1 and t=2 */
    close(fd);
    usleep(1800 * 1000);                                     /* past t=3: the instance gauge */
    CHECK_EQ_INT(dds_flush(s, 2000, &err), 0);
    dds_stats st;
    dds_stats_get(s, &st);
    CHECK(st.enhanced_samples >= 2);
    CHECK_EQ_INT(st.enhanced_cpu_unavailable, 0);
    CHECK_EQ_INT(st.dsd_packets, 0);
    char *out = drain_pipe(p[0]);
    CHECK_MSG(strstr(out, "\"azure.functions.enhanced.cpu.usage\"") != NULL, "%s", out);
    CHECK(strstr(out, "\"azure.functions.enhanced.instance\"") != NULL);
    CHECK(strstr(out, "ns.azure") == NULL);
    CHECK(strstr(out, "instance:host-a") != NULL);
    CHECK(strstr(out, "resource_group:my-rg") != NULL);
    CHECK(strstr(out, "serverless_compat_version:9.9.9") != NULL);
    CHECK(strstr(out, "origin:azurefunction") != NULL);
    CHECK(strstr(out, "/api/beta/sketches") != NULL);
    CHECK(strstr(out, "/api/v2/series") != NULL);
    free(out);
    CHECK_EQ_INT(dds_stop(s, 2000, &err), 0);
    bool ready_dsd = false, wwwroot_error = false;
    for (int i = 0; i < r.n; i++) {
        ready_dsd |= r.types[i] == DDS_STATUS_READY && r.services[i] == DDS_SERVICE_DOGSTATSD;
        wwwroot_error |= r.types[i] == DDS_STATUS_ERROR;
    }
    CHECK(!ready_dsd);
    CHECK(wwwroot_error);
    dds_free(s);
    close(p[0]);
    close(p[1]);
}

TEST(azure_enhanced_metrics_without_dogstatsd) {
    static const char *const dirs[] = {"/sys/fs/cgroup", "/home", NULL};
    if (!test_with_tmpfs_over(dirs, azure_enhanced_child, NULL)) fprintf(stderr, "  (skipped)\n");
}

int main(void) {
    RUN(start_flush_stop_delivers_and_reports);
    RUN(stop_drains_what_the_socket_already_holds);
    RUN(stop_from_status_callback);
    RUN(start_after_stop_and_two_instances);
    RUN(taken_port_is_a_clear_start_error);
    RUN(invalid_config_fails_start);
    RUN(unix_socket_and_truncation);
    RUN(concurrent_flush_and_stop);
    RUN(api_key_never_logged_and_stop_is_bounded);
    RUN(trace_agent_lifecycle);
    RUN(trace_agent_large_bodies_all_delivered);
    RUN(logs_agent_lifecycle);
    RUN(logs_port_taken_is_a_start_error);
    RUN(forked_child_leaves_the_parents_instance_alone);
    RUN(no_ca_certificates_is_an_error_event_not_a_start_failure);
    RUN(azure_enhanced_metrics_without_dogstatsd);
    return TEST_REPORT();
}
