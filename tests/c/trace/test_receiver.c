/* test_receiver.c - the trace receiver over real sockets: an event_base on its own thread, a
 * blocking raw HTTP/1.1 client written here (TCP to 127.0.0.1 and the Unix socket), stub handlers
 * that record their calls, and for the proxies a real intake posting to a scripted upstream HTTP
 * server on 127.0.0.1. Allocation failures are injected through libevent's allocator. Every
 * response read is checked for the agent headers. Every socket has a receive timeout and every
 * wait is bounded; no traffic leaves the loopback. */
#include "trace/receiver.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/clock.h"
#include "common/sha256.h"
#include "test.h"

#define VERSION "7.99.0-test"
#define OUR_KEY "ourkey0123456789abcdef0123456789"
#define CLIENT_KEY "clientkeyXXXXXXXXXXXXXXXXXXXXXXX"
#define MAX_BODY (1024 * 1024)
#define IO_TIMEOUT_S 5
#define RATE_BODY "{\"rate_by_service\":{\"service:,env:\":1}}"

static void sleep_ms(int ms) { usleep((useconds_t)ms * 1000); }

/* ---------------------------------------------------------------------------------------- */
/* Allocation failure injection through libevent's replaceable allocator: only on one thread,
 * only while armed, exactly the Nth allocation.                                              */

static atomic_bool inject_armed, inject_hit;
static pthread_t inject_thread;  /* written before arming */
static atomic_long inject_countdown;

static bool inject_fail(void) {
    if (!atomic_load(&inject_armed) || !pthread_equal(pthread_self(), inject_thread)) return false;
    if (atomic_fetch_sub(&inject_countdown, 1) != 1) return false;
    atomic_store(&inject_hit, true);
    return true;
}
/* libevent 2.1.12's evhttp_request_new frees a half-built request when allocating one of its
 * two header lists (struct evkeyvalq) fails, and evhttp_request_free then walks the NULL list:
 * a segfault inside libevent (seen in CI, backtrace evhttp_clear_headers <- evhttp_request_free
 * <- evhttp_request_new). Allocations of that size are never failed here, so the test measures
 * our code's handling of allocation failures and not that libevent bug. */
static void *hook_malloc(size_t n) {
    return (n != sizeof(struct evkeyvalq) && inject_fail()) ? NULL : malloc(n);
}
static void *hook_realloc(void *p, size_t n) { return inject_fail() ? NULL : realloc(p, n); }
static void hook_free(void *p) { free(p); }

static void inject_arm(pthread_t th, long n) {
    inject_thread = th;
    atomic_store(&inject_countdown, n);
    atomic_store(&inject_hit, false);
    atomic_store(&inject_armed, true);
}
static bool inject_disarm(void) {
    atomic_store(&inject_armed, false);
    return atomic_load(&inject_hit);
}

/* ---------------------------------------------------------------------------------------- */
/* Stub handlers (run on the loop thread; read by the test under the mutex)                   */

typedef struct stub {
    pthread_mutex_t mu;
    int traces_calls, stats_calls, dsd_calls;
    int traces_status, stats_status;
    long inject_after;  /* > 0: the traces handler arms allocation failure injection (answer path) */
    dds__trace_format fmt;
    char *body;  /* last body, NUL-terminated copy */
    size_t body_len;
    char lang[64], lang_version[64], interp[64], tracer_version[64], container_id[64], trace_count[32];
    bool top_level, computed_stats;
} stub;

static void copy_slice(char *dst, size_t cap, dds__slice s) {
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n) memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static void record_body(stub *st, const void *body, size_t len) {
    free(st->body);
    st->body = malloc(len + 1);
    memcpy(st->body, body, len);
    st->body[len] = '\0';
    st->body_len = len;
}

static void record_headers(stub *st, const dds__trace_headers *h) {
    copy_slice(st->lang, sizeof(st->lang), h->lang);
    copy_slice(st->lang_version, sizeof(st->lang_version), h->lang_version);
    copy_slice(st->interp, sizeof(st->interp), h->lang_interpreter);
    copy_slice(st->tracer_version, sizeof(st->tracer_version), h->tracer_version);
    copy_slice(st->container_id, sizeof(st->container_id), h->container_id);
    copy_slice(st->trace_count, sizeof(st->trace_count), h->trace_count);
    st->top_level = h->client_computed_top_level;
    st->computed_stats = h->client_computed_stats;
}

static int stub_traces(void *user, dds__trace_format fmt, const uint8_t *body, size_t len,
                       const dds__trace_headers *h) {
    stub *st = user;
    pthread_mutex_lock(&st->mu);
    st->traces_calls++;
    st->fmt = fmt;
    record_body(st, body, len);
    record_headers(st, h);
    int status = st->traces_status;
    if (st->inject_after > 0) inject_arm(pthread_self(), st->inject_after);
    pthread_mutex_unlock(&st->mu);
    return status;
}

static int stub_stats(void *user, const uint8_t *body, size_t len, const dds__trace_headers *h) {
    stub *st = user;
    pthread_mutex_lock(&st->mu);
    st->stats_calls++;
    record_body(st, body, len);
    record_headers(st, h);
    int status = st->stats_status;
    pthread_mutex_unlock(&st->mu);
    return status;
}

static void stub_dsd(void *user, const char *body, size_t len) {
    stub *st = user;
    pthread_mutex_lock(&st->mu);
    st->dsd_calls++;
    record_body(st, body, len);
    pthread_mutex_unlock(&st->mu);
}

static int stub_get(stub *st, const int *field) {
    pthread_mutex_lock(&st->mu);
    int v = *field;
    pthread_mutex_unlock(&st->mu);
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* Scripted upstream HTTP server for the proxies (one connection at a time)                    */

typedef struct upstream {
    int lfd;
    uint16_t port;
    pthread_t th;
    atomic_bool stop;
    pthread_mutex_t mu;
    int status;
    char resp_body[256];
    int delay_ms;
    int nreqs;      /* requests fully received */
    int answered;   /* answers written */
    char head[8192];
    char *body;
    size_t body_len;
} upstream;

static void *upstream_main(void *arg) {
    upstream *u = arg;
    while (!atomic_load(&u->stop)) {
        struct pollfd pfd = {.fd = u->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int fd = accept(u->lfd, NULL, NULL);
        if (fd < 0) continue;
        struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        size_t cap = 4 * 1024 * 1024, len = 0;
        char *buf = malloc(cap);
        char *end = NULL;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4)) && len < cap) {
            ssize_t n = recv(fd, buf + len, cap - len, 0);
            if (n <= 0) break;
            len += (size_t)n;
        }
        if (!end) {
            free(buf);
            close(fd);
            continue;
        }
        size_t head_len = (size_t)(end + 4 - buf);
        size_t clen = 0;
        for (char *l = buf; l < buf + head_len;) {
            char *eol = memmem(l, (size_t)(buf + head_len - l), "\r\n", 2);
            if (!eol) break;
            if (strncasecmp(l, "content-length:", 15) == 0) clen = strtoul(l + 15, NULL, 10);
            l = eol + 2;
        }
        while (len < head_len + clen && len < cap) {
            ssize_t n = recv(fd, buf + len, cap - len, 0);
            if (n <= 0) break;
            len += (size_t)n;
        }
        pthread_mutex_lock(&u->mu);
        size_t hl = head_len < sizeof(u->head) - 1 ? head_len : sizeof(u->head) - 1;
        memcpy(u->head, buf, hl);
        u->head[hl] = '\0';
        free(u->body);
        u->body_len = len - head_len;
        u->body = malloc(u->body_len + 1);
        memcpy(u->body, buf + head_len, u->body_len);
        u->body[u->body_len] = '\0';
        u->nreqs++;
        int status = u->status, delay = u->delay_ms;
        char body[256];
        snprintf(body, sizeof(body), "%s", u->resp_body);
        pthread_mutex_unlock(&u->mu);
        free(buf);
        for (int waited = 0; waited < delay && !atomic_load(&u->stop); waited += 10) sleep_ms(10);
        char resp[512];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d Scripted\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
                         strlen(body), body);
        ssize_t w = send(fd, resp, (size_t)n, MSG_NOSIGNAL);
        (void)w;
        pthread_mutex_lock(&u->mu);
        u->answered++;
        pthread_mutex_unlock(&u->mu);
        close(fd);
    }
    return NULL;
}

static void upstream_start(upstream *u, int status, const char *body) {
    memset(u, 0, sizeof(*u));
    pthread_mutex_init(&u->mu, NULL);
    u->status = status;
    snprintf(u->resp_body, sizeof(u->resp_body), "%s", body);
    u->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(u->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(u->lfd, 16) != 0) abort();
    getsockname(u->lfd, (struct sockaddr *)&sa, &sl);
    u->port = ntohs(sa.sin_port);
    pthread_create(&u->th, NULL, upstream_main, u);
}

static void upstream_stop(upstream *u) {
    atomic_store(&u->stop, true);
    pthread_join(u->th, NULL);
    close(u->lfd);
    free(u->body);
    pthread_mutex_destroy(&u->mu);
}

static int upstream_count(upstream *u, const int *field) {
    pthread_mutex_lock(&u->mu);
    int v = *field;
    pthread_mutex_unlock(&u->mu);
    return v;
}

/* Waits (bounded) until the upstream has seen `want` requests. */
static bool upstream_wait(upstream *u, const int *field, int want, int timeout_ms) {
    for (int t = 0; t < timeout_ms; t += 10) {
        if (upstream_count(u, field) >= want) return true;
        sleep_ms(10);
    }
    return upstream_count(u, field) >= want;
}

/* Case-insensitive "Name: value" lookup in a raw header block; value copied into out. */
static bool head_header(const char *head, const char *name, char *out, size_t cap) {
    size_t nl = strlen(name);
    for (const char *l = head; l && *l;) {
        const char *eol = strstr(l, "\r\n");
        if (!eol) break;
        if ((size_t)(eol - l) > nl && strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            size_t n = (size_t)(eol - v) < cap - 1 ? (size_t)(eol - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        l = eol + 2;
    }
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* Raw HTTP client                                                                            */

typedef struct resp {
    int status;
    char head[16384];
    char *body;
    size_t body_len;
    bool closed;  /* the server closed the connection after this response */
} resp;

static int responses_seen, responses_unstamped;
static int io_timeout_ms = IO_TIMEOUT_S * 1000;  /* shortened where a request may go unanswered */

static void set_timeouts(int fd) {
    struct timeval tv = {.tv_sec = io_timeout_ms / 1000, .tv_usec = (io_timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int connect_tcp(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    set_timeouts(fd);
    return fd;
}

static int connect_unix(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    set_timeouts(fd);
    return fd;
}

static bool send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static void resp_free(resp *r) {
    free(r->body);
    r->body = NULL;
}

/* One response: head, then a Content-Length body. Every response must carry both agent headers
 * (counted, checked by the last test). */
static bool read_resp(int fd, resp *out) {
    memset(out, 0, sizeof(*out));
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        if (len == sizeof(buf)) return false;
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n <= 0) return false;
        len += (size_t)n;
    }
    size_t head_len = (size_t)(end + 4 - buf);
    if (head_len >= sizeof(out->head)) return false;
    memcpy(out->head, buf, head_len);
    out->head[head_len] = '\0';
    if (sscanf(out->head, "HTTP/1.%*d %d", &out->status) != 1) return false;
    char v[128];
    size_t clen = head_header(out->head, "Content-Length", v, sizeof(v)) ? strtoul(v, NULL, 10) : 0;
    out->body = malloc(clen + 1);
    size_t have = len - head_len < clen ? len - head_len : clen;
    memcpy(out->body, buf + head_len, have);
    while (have < clen) {
        ssize_t n = recv(fd, out->body + have, clen - have, 0);
        if (n <= 0) return false;
        have += (size_t)n;
    }
    out->body[clen] = '\0';
    out->body_len = clen;
    out->closed = head_header(out->head, "Connection", v, sizeof(v)) && strcasecmp(v, "close") == 0;
    responses_seen++;
    char state[128];
    if (!head_header(out->head, "Datadog-Agent-Version", v, sizeof(v)) || strcmp(v, VERSION) != 0 ||
        !head_header(out->head, "Datadog-Agent-State", state, sizeof(state)) || strlen(state) != 64) {
        responses_unstamped++;
        fprintf(stderr, "  response without the agent headers:\n%s", out->head);
    }
    return true;
}

static bool resp_header(const resp *r, const char *name, char *out, size_t cap) {
    return head_header(r->head, name, out, cap);
}

/* method path, extra header lines ("Name: v\r\n"...), and a body sent with Content-Length
 * (with_length false: no Content-Length at all). One connection per call. */
static bool call_fd(int fd, const char *method, const char *path, const char *headers, const void *body, size_t len,
                    bool with_length, resp *out) {
    char head[8192];
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, path,
                     headers ? headers : "");
    if (with_length) n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    bool ok = send_all(fd, head, (size_t)n) && (len == 0 || send_all(fd, body, len)) && read_resp(fd, out);
    close(fd);
    return ok;
}

static bool call(uint16_t port, const char *method, const char *path, const char *headers, const void *body,
                 size_t len, resp *out) {
    int fd = connect_tcp(port);
    if (fd < 0) return false;
    return call_fd(fd, method, path, headers, body, len, true, out);
}

static int status_of(uint16_t port, const char *method, const char *path, const char *headers, const char *body) {
    resp r;
    if (!call(port, method, path, headers, body, body ? strlen(body) : 0, &r)) return -1;
    int s = r.status;
    resp_free(&r);
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Fixture: base + receiver (+ intake) with the loop on its own thread                        */

typedef struct fixture {
    struct event_base *base;
    dds__receiver *r;
    dds__receiver_counters counters;
    dds__intake *intake;
    dds__intake_counters icounters;
    dds__receiver_handlers handlers;
    dds__receiver_config cfg;
    pthread_t th;
    bool running;
    stub st;
    uint16_t port;
} fixture;

static void *loop_main(void *arg) {
    fixture *f = arg;
    event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void fx_init(fixture *f) {
    memset(f, 0, sizeof(*f));
    pthread_mutex_init(&f->st.mu, NULL);
    f->st.traces_status = 200;
    f->st.stats_status = 200;
    f->base = event_base_new();
    f->handlers = (dds__receiver_handlers){.user = &f->st, .traces = stub_traces, .stats = stub_stats,
                                           .dogstatsd = stub_dsd};
    f->cfg = (dds__receiver_config){.port = 0, .max_body_bytes = MAX_BODY, .statsd_port = 8125,
                                    .default_env = "test-env", .stats_forwarded = true, .agent_version = VERSION};
}

static void fx_with_intake(fixture *f) {
    dds__intake_config ic = {.api_key = OUR_KEY, .tls_verify = false, .request_timeout_ms = 2000,
                             .retry_queue_max_bytes = 1 << 20, .user_agent = "dds-receiver-test"};
    f->intake = dds__intake_new(f->base, &ic, &f->icounters);
    f->cfg.intake = f->intake;
}

static bool fx_start(fixture *f) {
    dds_error err = {0};
    f->r = dds__receiver_new(f->base, &f->cfg, &f->handlers, &f->counters, &err);
    if (!f->r) {
        TEST_FAIL_AT("receiver_new failed: %s", err.message);
        return false;
    }
    f->port = dds__receiver_port(f->r);
    f->running = pthread_create(&f->th, NULL, loop_main, f) == 0;
    return f->running;
}

static void fx_stop_loop(fixture *f) {
    if (!f->running) return;
    /* loopexit, not loopbreak: it is an event, so it also stops a loop that has not started
     * yet (event_base_loop clears a pending break when it starts). */
    event_base_loopexit(f->base, NULL);
    pthread_join(f->th, NULL);
    f->running = false;
}

static void fx_done(fixture *f) {
    fx_stop_loop(f);
    dds__receiver_free(f->r);
    dds__intake_free(f->intake);
    event_base_free(f->base);
    free(f->st.body);
    pthread_mutex_destroy(&f->st.mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Binding                                                                                    */

TEST(port_zero_binds_and_reports) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    CHECK(f.port != 0);
    CHECK_EQ_INT(status_of(f.port, "GET", "/info", NULL, NULL), 200);
    fx_done(&f);
    CHECK_EQ_INT(dds__receiver_port(NULL), 0);
    fx_init(&f);
    f.cfg.port = 70000;
    dds_error err = {0};
    CHECK(dds__receiver_new(f.base, &f.cfg, &f.handlers, NULL, &err) == NULL);
    CHECK_EQ_STR(err.message, "Failed to start trace agent: cannot bind TCP 127.0.0.1:70000: port must be 0-65535");
    fx_done(&f);
    dds__receiver_free(NULL);
}

TEST(taken_port_is_a_start_error) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0);
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    int port = ntohs(sa.sin_port);

    fixture f;
    fx_init(&f);
    f.cfg.port = port;
    dds_error err = {0};
    dds__receiver *r = dds__receiver_new(f.base, &f.cfg, &f.handlers, &f.counters, &err);
    CHECK(r == NULL);
    CHECK_EQ_INT(err.code, DDS_ERR_TRACE_AGENT_START);
    char want[128];
    snprintf(want, sizeof(want), "Failed to start trace agent: cannot bind TCP 127.0.0.1:%d: Address already in use",
             port);
    CHECK_EQ_STR(err.message, want);
    dds__receiver_free(r);
    close(lfd);

    /* A live receiver's port is taken for a second one too. */
    f.cfg.port = 0;
    if (fx_start(&f)) {
        dds__receiver_config c2 = f.cfg;
        c2.port = f.port;
        memset(&err, 0, sizeof(err));
        dds__receiver *r2 = dds__receiver_new(f.base, &c2, &f.handlers, NULL, &err);
        CHECK(r2 == NULL);
        CHECK_EQ_INT(err.code, DDS_ERR_TRACE_AGENT_START);
        CHECK(strstr(err.message, "Address already in use") != NULL);
        dds__receiver_free(r2);
        CHECK_EQ_INT(status_of(f.port, "GET", "/info", NULL, NULL), 200);
    }
    fx_done(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* /info                                                                                      */

TEST(info_body_and_agent_state) {
    upstream u;
    upstream_start(&u, 202, "{}");
    char base_url[64];
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", u.port);
    fixture f;
    fx_init(&f);
    fx_with_intake(&f);
    f.cfg.profiling_url = base_url;
    f.cfg.pipeline_stats_url = base_url;
    f.cfg.telemetry_base_url = base_url;
    f.cfg.evp_base_url = base_url;
    if (!fx_start(&f)) return;
    resp r;
    CHECK(call(f.port, "GET", "/info", NULL, NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"version\":\"" VERSION "\",\"endpoints\":[\"/v0.3/traces\",\"/v0.4/traces\",\"/v0.5/traces\","
             "\"/v0.7/traces\",\"/v0.6/stats\",\"/profiling/v1/input\",\"/v0.1/pipeline_stats\",\"/telemetry/proxy/\","
             "\"/evp_proxy/v2/\",\"/evp_proxy/v3/\",\"/evp_proxy/v4/\",\"/dogstatsd/v2/proxy\",\"/info\"],"
             "\"client_drop_p0s\":true,\"span_meta_structs\":true,\"config\":{\"receiver_port\":%u,"
             "\"statsd_port\":8125,\"max_request_bytes\":%d,\"default_env\":\"test-env\"},\"peer_tags\":[]}",
             f.port, MAX_BODY);
    CHECK_EQ_STR(r.body, want);
    char v[128], hex[65];
    dds__sha256_hex(r.body, r.body_len, hex);
    CHECK(resp_header(&r, "Datadog-Agent-State", v, sizeof(v)));
    CHECK_EQ_STR(v, hex);
    CHECK(resp_header(&r, "Content-Type", v, sizeof(v)));
    CHECK_EQ_STR(v, "application/json");
    resp_free(&r);

    /* The same state on an answer of another route (Python compares it after trace posts). */
    CHECK(call(f.port, "PUT", "/v0.4/traces", NULL, "\x90", 1, &r));
    CHECK(resp_header(&r, "Datadog-Agent-State", v, sizeof(v)));
    CHECK_EQ_STR(v, hex);
    resp_free(&r);
    CHECK_EQ_INT(status_of(f.port, "POST", "/info", NULL, ""), 405);

    /* HEAD: the head only, then the connection carries on with the next request. */
    int fd = connect_tcp(f.port);
    const char *head_req = "HEAD /info HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send_all(fd, head_req, strlen(head_req)));
    char buf[4096];
    size_t got = 0;
    while (got < sizeof(buf) - 1 && !memmem(buf, got, "\r\n\r\n", 4)) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    char *end = strstr(buf, "\r\n\r\n");
    CHECK(end && end[4] == '\0');
    CHECK(strstr(buf, "Datadog-Agent-State: ") != NULL);
    const char *get_req = "GET /info HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send_all(fd, get_req, strlen(get_req)) && read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, want);
    resp_free(&r);
    close(fd);
    fx_done(&f);
    upstream_stop(&u);
}

/* Without the intake, proxies and a NULL dogstatsd handler are neither served nor listed. */
TEST(info_lists_only_what_is_served) {
    fixture f;
    fx_init(&f);
    f.handlers.dogstatsd = NULL;
    f.cfg.stats_forwarded = false;
    f.cfg.default_env = NULL;
    if (!fx_start(&f)) return;
    resp r;
    CHECK(call(f.port, "GET", "/info", NULL, NULL, 0, &r));
    CHECK(strstr(r.body, "\"endpoints\":[\"/v0.3/traces\",\"/v0.4/traces\",\"/v0.5/traces\",\"/v0.7/traces\","
                         "\"/v0.6/stats\",\"/info\"]") != NULL);
    CHECK(strstr(r.body, "\"client_drop_p0s\":false") != NULL);
    CHECK(strstr(r.body, "\"default_env\":\"none\"") != NULL);
    CHECK(strstr(r.body, "proxy") == NULL);
    resp_free(&r);
    CHECK_EQ_INT(status_of(f.port, "POST", "/dogstatsd/v2/proxy", NULL, "a:1|c"), 404);
    CHECK_EQ_INT(status_of(f.port, "POST", "/profiling/v1/input", NULL, "x"), 404);
    CHECK_EQ_INT(status_of(f.port, "POST", "/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: a\r\n", "x"), 404);
    fx_done(&f);
}

/* With agent-computed stats the tracer must keep its P0 traces (and compute no stats): /info
 * says so, and lists the span kinds and peer tags the agent aggregates on. */
TEST(info_when_the_agent_computes_stats) {
    fixture f;
    fx_init(&f);
    f.cfg.stats_computed = true;
    if (!fx_start(&f)) return;
    resp r;
    CHECK(call(f.port, "GET", "/info", NULL, NULL, 0, &r));
    CHECK_EQ_INT(r.status, 200);
    CHECK(strstr(r.body, "\"client_drop_p0s\":false") != NULL);
    CHECK(strstr(r.body, "\"span_kinds_stats_computed\":[\"server\",\"client\",\"producer\",\"consumer\"]") != NULL);
    CHECK(strstr(r.body, "\"peer_tags\":[\"_dd.base_service\",\"active_record.db.vendor\",") != NULL);
    CHECK(strstr(r.body, "\"tablename\",\"topicname\"]") != NULL);
    resp_free(&r);
    fx_done(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* Traces, stats, DogStatsD                                                                   */

TEST(traces_routes_and_methods) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    static const struct {
        const char *path;
        dds__trace_format fmt;
    } routes[] = {{"/v0.3/traces", DDS__TRACE_V04}, {"/v0.4/traces", DDS__TRACE_V04},
                  {"/v0.5/traces", DDS__TRACE_V05}, {"/v0.7/traces", DDS__TRACE_V07}};
    int calls = 0;
    for (size_t i = 0; i < 4; i++) {
        for (int m = 0; m < 2; m++) {
            const char *method = m ? "POST" : "PUT";
            char body[64];
            int bl = snprintf(body, sizeof(body), "payload %zu %s", i, method);
            resp r;
            CHECK(call(f.port, method, routes[i].path, "Content-Type: application/msgpack\r\n", body, (size_t)bl, &r));
            CHECK_MSG(r.status == 200, "%s %s: %d", method, routes[i].path, r.status);
            CHECK_EQ_STR(r.body, RATE_BODY);
            char v[64];
            CHECK(resp_header(&r, "Content-Type", v, sizeof(v)) && strcmp(v, "application/json") == 0);
            resp_free(&r);
            calls++;
            pthread_mutex_lock(&f.st.mu);
            CHECK_EQ_INT(f.st.traces_calls, calls);
            CHECK_EQ_INT(f.st.fmt, routes[i].fmt);
            CHECK(f.st.body && f.st.body_len == (size_t)bl && strcmp(f.st.body, body) == 0);
            pthread_mutex_unlock(&f.st.mu);
        }
        resp r;
        CHECK(call(f.port, "GET", routes[i].path, NULL, NULL, 0, &r));
        CHECK_EQ_INT(r.status, 405);
        char allow[64];
        CHECK(resp_header(&r, "Allow", allow, sizeof(allow)));
        CHECK_EQ_STR(allow, "POST, PUT");
        resp_free(&r);
        CHECK_EQ_INT(status_of(f.port, "DELETE", routes[i].path, NULL, NULL), 405);
        CHECK_EQ_INT(status_of(f.port, "PATCH", routes[i].path, NULL, "x"), 405);
    }
    CHECK_EQ_INT(stub_get(&f.st, &f.st.traces_calls), calls);
    fx_done(&f);
    CHECK_EQ_INT(dds__counter_get(&f.counters.requests), 8 + 12);
    CHECK_EQ_INT(dds__counter_get(&f.counters.rejected), 12);
}

TEST(tracer_headers_parsed) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    CHECK_EQ_INT(status_of(f.port, "PUT", "/v0.4/traces",
                           "Datadog-Meta-Lang: python\r\nDatadog-Meta-Lang-Version: 3.11.4\r\n"
                           "Datadog-Meta-Lang-Interpreter: CPython\r\nDatadog-Meta-Tracer-Version: 2.9.0\r\n"
                           "Datadog-Container-ID: abc123\r\nX-Datadog-Trace-Count: 7\r\n"
                           "Datadog-Client-Computed-Top-Level: yes\r\nDatadog-Client-Computed-Stats: true\r\n",
                           "x"),
                 200);
    pthread_mutex_lock(&f.st.mu);
    CHECK_EQ_STR(f.st.lang, "python");
    CHECK_EQ_STR(f.st.lang_version, "3.11.4");
    CHECK_EQ_STR(f.st.interp, "CPython");
    CHECK_EQ_STR(f.st.tracer_version, "2.9.0");
    CHECK_EQ_STR(f.st.container_id, "abc123");
    CHECK_EQ_STR(f.st.trace_count, "7");
    CHECK(f.st.top_level);
    CHECK(f.st.computed_stats);
    pthread_mutex_unlock(&f.st.mu);

    static const char *const falsy[] = {"false", "FALSE", "0", ""};
    for (size_t i = 0; i < 4; i++) {
        char h[256];
        snprintf(h, sizeof(h), "Datadog-Client-Computed-Top-Level: %s\r\nDatadog-Client-Computed-Stats: %s\r\n",
                 falsy[i], falsy[i]);
        CHECK_EQ_INT(status_of(f.port, "POST", "/v0.5/traces", h, "x"), 200);
        pthread_mutex_lock(&f.st.mu);
        CHECK_MSG(!f.st.top_level && !f.st.computed_stats, "flag \"%s\" read as true", falsy[i]);
        CHECK_EQ_STR(f.st.lang, "");
        pthread_mutex_unlock(&f.st.mu);
    }
    fx_done(&f);
}

TEST(handler_status_passthrough) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    static const int statuses[] = {400, 413, 500};
    for (size_t i = 0; i < 3; i++) {
        pthread_mutex_lock(&f.st.mu);
        f.st.traces_status = statuses[i];
        pthread_mutex_unlock(&f.st.mu);
        resp r;
        CHECK(call(f.port, "PUT", "/v0.4/traces", NULL, "bad", 3, &r));
        CHECK_EQ_INT(r.status, statuses[i]);
        CHECK(strstr(r.body, "rate_by_service") == NULL);
        resp_free(&r);
    }
    fx_done(&f);
    CHECK_EQ_INT(dds__counter_get(&f.counters.rejected), 2);
}

TEST(stats_route) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    resp r;
    CHECK(call(f.port, "PUT", "/v0.6/stats", "Datadog-Meta-Lang: nodejs\r\n", "\x81\xa1x\x01", 4, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    pthread_mutex_lock(&f.st.mu);
    CHECK_EQ_INT(f.st.stats_calls, 1);
    CHECK(f.st.body_len == 4 && memcmp(f.st.body, "\x81\xa1x\x01", 4) == 0);
    CHECK_EQ_STR(f.st.lang, "nodejs");
    f.st.stats_status = 400;
    pthread_mutex_unlock(&f.st.mu);
    CHECK_EQ_INT(status_of(f.port, "POST", "/v0.6/stats", NULL, "junk"), 400);
    CHECK_EQ_INT(status_of(f.port, "GET", "/v0.6/stats", NULL, NULL), 405);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.stats_calls), 2);
    fx_done(&f);
}

TEST(dogstatsd_proxy_route) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    const char *lines = "page.views:1|c|#env:prod\nlatency:12.5|d\n";
    resp r;
    CHECK(call(f.port, "POST", "/dogstatsd/v2/proxy", NULL, lines, strlen(lines), &r));
    CHECK_EQ_INT(r.status, 202);
    CHECK_EQ_STR(r.body, "{}");
    resp_free(&r);
    pthread_mutex_lock(&f.st.mu);
    CHECK_EQ_INT(f.st.dsd_calls, 1);
    CHECK(f.st.body && strcmp(f.st.body, lines) == 0);
    pthread_mutex_unlock(&f.st.mu);
    CHECK_EQ_INT(status_of(f.port, "GET", "/dogstatsd/v2/proxy", NULL, NULL), 405);
    CHECK_EQ_INT(status_of(f.port, "PUT", "/dogstatsd/v2/proxy", NULL, "a:1|c"), 405);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.dsd_calls), 1);
    fx_done(&f);
}

TEST(unknown_paths_are_404) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    /* dd-trace-js polls /v0.7/config whatever /info says: we serve no remote configuration. */
    CHECK_EQ_INT(status_of(f.port, "GET", "/v0.7/config", NULL, NULL), 404);
    CHECK_EQ_INT(status_of(f.port, "POST", "/v0.7/config", NULL, "{}"), 404);
    CHECK_EQ_INT(status_of(f.port, "GET", "/", NULL, NULL), 404);
    CHECK_EQ_INT(status_of(f.port, "PUT", "/v1.0/traces", NULL, "x"), 404);
    CHECK_EQ_INT(status_of(f.port, "PUT", "/v0.4/traces/", NULL, "x"), 404);
    CHECK_EQ_INT(status_of(f.port, "PUT", "/v0.4/tracesX", NULL, "x"), 404);
    CHECK_EQ_INT(status_of(f.port, "GET", "/info/", NULL, NULL), 404);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.traces_calls), 0);
    fx_done(&f);
}

TEST(cross_site_refused) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    CHECK_EQ_INT(status_of(f.port, "POST", "/v0.4/traces", "Sec-Fetch-Site: cross-site\r\n", "x"), 403);
    CHECK_EQ_INT(status_of(f.port, "GET", "/info", "Sec-Fetch-Site: Cross-Site\r\n", NULL), 403);
    CHECK_EQ_INT(status_of(f.port, "POST", "/dogstatsd/v2/proxy", "Sec-Fetch-Site: cross-site\r\n", "a:1|c"), 403);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.traces_calls), 0);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.dsd_calls), 0);
    CHECK_EQ_INT(status_of(f.port, "POST", "/v0.4/traces", "Sec-Fetch-Site: same-origin\r\n", "x"), 200);
    CHECK_EQ_INT(status_of(f.port, "POST", "/v0.4/traces", "Sec-Fetch-Site: none\r\n", "x"), 200);
    fx_done(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* Framing and limits                                                                         */

TEST(length_required) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    /* evhttp itself reads such a request as bodiless and hands it over: the 411 is ours, and the
     * connection is closed since the bytes that follow are unframed. */
    int fd = connect_tcp(f.port);
    resp r;
    CHECK(call_fd(fd, "POST", "/v0.4/traces", NULL, "\x90", 1, false, &r));
    CHECK_EQ_INT(r.status, 411);
    CHECK(r.closed);
    resp_free(&r);
    fd = connect_tcp(f.port);
    CHECK(call_fd(fd, "PUT", "/v0.6/stats", NULL, NULL, 0, false, &r));
    CHECK_EQ_INT(r.status, 411);
    resp_free(&r);
    fd = connect_tcp(f.port);
    CHECK(call_fd(fd, "POST", "/v0.4/traces", "Transfer-Encoding: gzip\r\n", NULL, 0, false, &r));
    CHECK_EQ_INT(r.status, 411);
    resp_free(&r);
    /* An explicit empty body is framed. */
    CHECK_EQ_INT(status_of(f.port, "POST", "/v0.4/traces", NULL, ""), 200);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.traces_calls), 1);
    fx_done(&f);
}

TEST(chunked_body_within_limit) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    int fd = connect_tcp(f.port);
    const char *req = "PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
    CHECK(send_all(fd, req, strlen(req)));
    resp r;
    CHECK(read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    close(fd);
    pthread_mutex_lock(&f.st.mu);
    CHECK(f.st.body && strcmp(f.st.body, "hello, world") == 0);
    pthread_mutex_unlock(&f.st.mu);
    fx_done(&f);
}

TEST(oversized_content_length_413) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    /* Only the head is sent: the answer must come from the declared length alone. */
    int fd = connect_tcp(f.port);
    char head[256];
    int n = snprintf(head, sizeof(head), "PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                     30 * 1024 * 1024);
    CHECK(send_all(fd, head, (size_t)n));
    resp r;
    CHECK(read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 413);
    resp_free(&r);
    close(fd);
    /* One byte over the limit, body sent too: the server answers from the length and hangs up
     * without reading the body, so a send may fail (reset) before the answer is read. */
    size_t len = MAX_BODY + 1;
    char *big = calloc(1, len);
    fd = connect_tcp(f.port);
    n = snprintf(head, sizeof(head), "PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", len);
    CHECK(send_all(fd, head, (size_t)n));
    (void)send_all(fd, big, len);
    CHECK(read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 413);
    close(fd);
    free(big);
    resp_free(&r);
    /* Exactly at the limit is fine. */
    big = calloc(1, MAX_BODY);
    CHECK(call(f.port, "PUT", "/v0.4/traces", NULL, big, MAX_BODY, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    free(big);
    pthread_mutex_lock(&f.st.mu);
    CHECK_EQ_INT(f.st.traces_calls, 1);
    CHECK_EQ_INT(f.st.body_len, MAX_BODY);
    pthread_mutex_unlock(&f.st.mu);
    fx_done(&f);
    CHECK(dds__counter_get(&f.counters.rejected) >= 1);
}

/* A 30 MiB chunked upload against a 1 MiB limit: the answer (413) must come while the client is
 * still sending, and the server keeps serving afterwards. */
TEST(oversized_chunked_413_cut_early) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    int fd = connect_tcp(f.port);
    const char *head = "POST /v0.4/traces HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(send_all(fd, head, strlen(head)));
    size_t chunk = 64 * 1024, total = 30u * 1024 * 1024, sent = 0;
    char *frame = malloc(chunk + 16);
    int hl = snprintf(frame, 16, "%zx\r\n", chunk);
    memset(frame + hl, 'z', chunk);
    memcpy(frame + hl + chunk, "\r\n", 2);
    size_t frame_len = (size_t)hl + chunk + 2;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    bool answered = false;
    int64_t deadline = dds__mono_ms() + 10000;
    size_t off = 0;  /* within the current frame */
    while (sent < total && dds__mono_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLOUT};
        if (poll(&pfd, 1, 100) <= 0) continue;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            answered = true;
            break;
        }
        ssize_t w = send(fd, frame + off, frame_len - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        if (w <= 0) {
            answered = true;  /* the server hung up: its answer should be waiting */
            break;
        }
        off += (size_t)w;
        if (off == frame_len) {
            off = 0;
            sent += chunk;
        }
    }
    free(frame);
    fcntl(fd, F_SETFL, flags);
    CHECK_MSG(answered, "no answer after %zu bytes", sent);
    CHECK_MSG(sent < total / 2, "cut only after %zu bytes", sent);
    resp r;
    CHECK(read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 413);
    resp_free(&r);
    close(fd);
    CHECK_EQ_INT(stub_get(&f.st, &f.st.traces_calls), 0);
    /* Still serving, on a new connection. */
    CHECK_EQ_INT(status_of(f.port, "PUT", "/v0.4/traces", NULL, "ok"), 200);
    CHECK_EQ_INT(status_of(f.port, "GET", "/info", NULL, NULL), 200);
    fx_done(&f);
    CHECK(dds__counter_get(&f.counters.rejected) >= 1);
}

/* evhttp's own error pages (here a malformed request line) carry the agent headers too. */
TEST(native_errors_stamped) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    int fd = connect_tcp(f.port);
    const char *bad = "GARBAGE\r\n\r\n";
    CHECK(send_all(fd, bad, strlen(bad)));
    resp r;
    CHECK(read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 400);
    resp_free(&r);
    close(fd);
    /* "100 Continue" is left alone (an interim answer), the final one is ours. */
    fd = connect_tcp(f.port);
    const char *expect = "PUT /v0.4/traces HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    CHECK(send_all(fd, expect, strlen(expect)));
    char interim[64] = {0};
    size_t got = 0;
    while (got < 25) {
        ssize_t n = recv(fd, interim + got, 25 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    CHECK_EQ_STR(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(send_all(fd, "hello", 5) && read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    close(fd);
    /* Keep-alive: two requests on one connection, both stamped. */
    fd = connect_tcp(f.port);
    const char *two = "GET /info HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send_all(fd, two, strlen(two)) && read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    CHECK(send_all(fd, two, strlen(two)) && read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 200);
    resp_free(&r);
    close(fd);
    fx_done(&f);
}

/* ---------------------------------------------------------------------------------------- */
/* Unix socket                                                                                */

TEST(unix_socket) {
    char path[108];
    snprintf(path, sizeof(path), "/tmp/dds-test-receiver-%d.sock", (int)getpid());
    unlink(path);
    /* A stale socket file (bound, then its owner gone) is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    CHECK(bind(stale, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    close(stale);

    fixture f;
    fx_init(&f);
    f.cfg.unix_path = path;
    if (!fx_start(&f)) return;
    int fd = connect_unix(path);
    CHECK(fd >= 0);
    resp r;
    if (fd >= 0) {
        CHECK(call_fd(fd, "GET", "/info", NULL, NULL, 0, true, &r));
        CHECK_EQ_INT(r.status, 200);
        resp_free(&r);
    }
    fd = connect_unix(path);
    if (fd >= 0) {
        CHECK(call_fd(fd, "POST", "/v0.5/traces", NULL, "abc", 3, true, &r));
        CHECK_EQ_INT(r.status, 200);
        CHECK_EQ_STR(r.body, RATE_BODY);
        resp_free(&r);
    }
    CHECK_EQ_INT(stub_get(&f.st, &f.st.traces_calls), 1);

    /* A live socket is never taken over. */
    fixture g;
    fx_init(&g);
    g.cfg.unix_path = path;
    dds_error err = {0};
    dds__receiver *r2 = dds__receiver_new(g.base, &g.cfg, &g.handlers, NULL, &err);
    CHECK(r2 == NULL);
    CHECK(strstr(err.message, "in use by another process") != NULL);
    dds__receiver_free(r2);
    fx_done(&f);
    struct stat st;
    CHECK_MSG(lstat(path, &st) != 0, "socket file left behind");

    /* Nor is a file that is not a socket. */
    FILE *fp = fopen(path, "w");
    fputs("precious", fp);
    fclose(fp);
    memset(&err, 0, sizeof(err));
    r2 = dds__receiver_new(g.base, &g.cfg, &g.handlers, NULL, &err);
    CHECK(r2 == NULL);
    CHECK_EQ_INT(err.code, DDS_ERR_TRACE_AGENT_START);
    CHECK(strstr(err.message, "not a socket") != NULL);
    dds__receiver_free(r2);
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    unlink(path);
    fx_done(&g);
}

/* ---------------------------------------------------------------------------------------- */
/* Proxies                                                                                    */

typedef struct proxy_fx {
    fixture f;
    upstream u;
    char url[64];
} proxy_fx;

static bool pfx_start(proxy_fx *p, int upstream_status, const char *upstream_body) {
    upstream_start(&p->u, upstream_status, upstream_body);
    snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", p->u.port);
    fx_init(&p->f);
    fx_with_intake(&p->f);
    static char profiling[96], pipeline[96];
    snprintf(profiling, sizeof(profiling), "%s/api/v2/profile", p->url);
    snprintf(pipeline, sizeof(pipeline), "%s/api/v0.1/pipeline_stats/", p->url);  /* trailing '/' trimmed */
    p->f.cfg.profiling_url = profiling;
    p->f.cfg.pipeline_stats_url = pipeline;
    p->f.cfg.telemetry_base_url = p->url;
    p->f.cfg.evp_base_url = p->url;
    p->f.cfg.site = "datadoghq.test";
    p->f.cfg.proxy_timeout_ms = 3000;
    return fx_start(&p->f);
}

static void pfx_done(proxy_fx *p) {
    fx_done(&p->f);
    upstream_stop(&p->u);
}

/* The first line and the headers the upstream saw. */
static void upstream_last(upstream *u, char *line, size_t cap, char *head, size_t head_cap, char *body,
                          size_t body_cap) {
    pthread_mutex_lock(&u->mu);
    const char *eol = strstr(u->head, "\r\n");
    size_t n = eol ? (size_t)(eol - u->head) : 0;
    if (n >= cap) n = cap - 1;
    memcpy(line, u->head, n);
    line[n] = '\0';
    snprintf(head, head_cap, "%s", u->head);
    if (body) snprintf(body, body_cap, "%s", u->body ? u->body : "");
    pthread_mutex_unlock(&u->mu);
}

#define CLIENT_HEADERS                                                                                        \
    "Content-Type: application/json\r\nContent-Encoding: gzip\r\nDD-API-KEY: " CLIENT_KEY "\r\n"             \
    "X-Datadog-Api-Key: " CLIENT_KEY "\r\nCookie: session=1\r\nAuthorization: Bearer t\r\n"                    \
    "DD-EVP-ORIGIN: dd-trace-py\r\nDD-EVP-ORIGIN-VERSION: 2.9.0\r\nDD-Telemetry-Request-Type: app-started\r\n" \
    "DD-Client-Library-Language: python\r\nDatadog-Container-ID: cid42\r\nX-Datadog-Trace-Count: 3\r\n"

static void check_forwarded_headers(const char *head) {
    char v[256];
    CHECK(head_header(head, "DD-API-KEY", v, sizeof(v)) && strcmp(v, OUR_KEY) == 0);
    CHECK_MSG(strstr(head, CLIENT_KEY) == NULL, "client key forwarded:\n%s", head);
    CHECK(!head_header(head, "X-Datadog-Api-Key", v, sizeof(v)));
    CHECK(!head_header(head, "Cookie", v, sizeof(v)));
    CHECK(!head_header(head, "Authorization", v, sizeof(v)));
    CHECK(!head_header(head, "X-Datadog-EVP-Subdomain", v, sizeof(v)));
    CHECK(head_header(head, "Content-Type", v, sizeof(v)) && strcmp(v, "application/json") == 0);
    CHECK(head_header(head, "Content-Encoding", v, sizeof(v)) && strcmp(v, "gzip") == 0);
    CHECK(head_header(head, "DD-EVP-ORIGIN", v, sizeof(v)) && strcmp(v, "dd-trace-py") == 0);
    CHECK(head_header(head, "DD-EVP-ORIGIN-VERSION", v, sizeof(v)) && strcmp(v, "2.9.0") == 0);
    CHECK(head_header(head, "DD-Telemetry-Request-Type", v, sizeof(v)) && strcmp(v, "app-started") == 0);
    CHECK(head_header(head, "DD-Client-Library-Language", v, sizeof(v)) && strcmp(v, "python") == 0);
    CHECK(head_header(head, "Datadog-Container-ID", v, sizeof(v)) && strcmp(v, "cid42") == 0);
    CHECK(head_header(head, "X-Datadog-Trace-Count", v, sizeof(v)) && strcmp(v, "3") == 0);
}

TEST(proxies_forward) {
    proxy_fx p;
    if (!pfx_start(&p, 202, "{\"accepted\":true}")) return;
    static const struct {
        const char *path, *want_line, *extra;
    } rows[] = {
        {"/profiling/v1/input", "POST /api/v2/profile HTTP/1.1", ""},
        {"/v0.1/pipeline_stats", "POST /api/v0.1/pipeline_stats HTTP/1.1", ""},
        {"/telemetry/proxy/api/v2/apmtelemetry", "POST /api/v2/apmtelemetry HTTP/1.1", ""},
        {"/evp_proxy/v2/api/v2/citestcycle", "POST /api/v2/citestcycle HTTP/1.1",
         "X-Datadog-EVP-Subdomain: citestcycle-intake\r\n"},
        {"/evp_proxy/v3/api/v2/git/repository/search_commits?a=1&b=%20x",
         "POST /api/v2/git/repository/search_commits?a=1&b=%20x HTTP/1.1", "X-Datadog-EVP-Subdomain: api\r\n"},
        {"/evp_proxy/v4/api/v2/llmobs", "POST /api/v2/llmobs HTTP/1.1", "X-Datadog-EVP-Subdomain: llmobs-intake.x\r\n"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char headers[2048], body[64];
        snprintf(headers, sizeof(headers), "%s%s", CLIENT_HEADERS, rows[i].extra);
        int bl = snprintf(body, sizeof(body), "{\"row\":%zu}", i);
        resp r;
        CHECK(call(p.f.port, "POST", rows[i].path, headers, body, (size_t)bl, &r));
        CHECK_MSG(r.status == 202, "%s: %d", rows[i].path, r.status);
        CHECK_EQ_STR(r.body, "{\"accepted\":true}");
        resp_free(&r);
        char line[512], head[8192], got_body[128];
        upstream_last(&p.u, line, sizeof(line), head, sizeof(head), got_body, sizeof(got_body));
        CHECK_EQ_STR(line, rows[i].want_line);
        CHECK_EQ_STR(got_body, body);
        check_forwarded_headers(head);
    }
    CHECK_EQ_INT(upstream_count(&p.u, &p.u.nreqs), 6);
    CHECK_EQ_INT(status_of(p.f.port, "GET", "/profiling/v1/input", NULL, NULL), 405);
    CHECK_EQ_INT(status_of(p.f.port, "PUT", "/telemetry/proxy/api/v2/apmtelemetry", NULL, "x"), 405);
    pfx_done(&p);
    CHECK_EQ_INT(dds__counter_get(&p.f.counters.proxied), 6);
    CHECK_EQ_INT(dds__counter_get(&p.f.counters.proxy_failed), 0);
}

TEST(proxy_upstream_status_passthrough) {
    proxy_fx p;
    if (!pfx_start(&p, 403, "{\"errors\":[\"Forbidden\"]}")) return;
    resp r;
    CHECK(call(p.f.port, "POST", "/telemetry/proxy/api/v2/apmtelemetry", "Content-Type: application/json\r\n", "{}", 2,
               &r));
    CHECK_EQ_INT(r.status, 403);
    CHECK_EQ_STR(r.body, "{\"errors\":[\"Forbidden\"]}");
    resp_free(&r);
    pthread_mutex_lock(&p.u.mu);
    p.u.status = 400;
    snprintf(p.u.resp_body, sizeof(p.u.resp_body), "bad payload");
    pthread_mutex_unlock(&p.u.mu);
    CHECK(call(p.f.port, "POST", "/profiling/v1/input", "Content-Type: multipart/form-data; boundary=x\r\n", "--x--", 5,
               &r));
    CHECK_EQ_INT(r.status, 400);
    CHECK_EQ_STR(r.body, "bad payload");
    resp_free(&r);
    char line[256], head[8192];
    upstream_last(&p.u, line, sizeof(line), head, sizeof(head), NULL, 0);
    char v[128];
    CHECK(head_header(head, "Content-Type", v, sizeof(v)) && strcmp(v, "multipart/form-data; boundary=x") == 0);
    pfx_done(&p);
}

TEST(evp_validation) {
    proxy_fx p;
    if (!pfx_start(&p, 202, "{}")) return;
    static const struct {
        const char *path, *headers;
    } bad[] = {
        {"/evp_proxy/v2/api/v2/x", ""},                                               /* no subdomain */
        {"/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: \r\n"},                  /* empty */
        {"/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: evil.com/x\r\n"},        /* '/' */
        {"/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: a..b\r\n"},              /* ".." */
        {"/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: a_b\r\n"},               /* '_' */
        {"/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: user@host\r\n"},         /* '@' */
        {"/evp_proxy/v2/api/v2/x", "X-Datadog-EVP-Subdomain: .lead\r\n"},
        {"/evp_proxy/v2/api/v2/x",
         "X-Datadog-EVP-Subdomain: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"},                   /* 134 bytes */
        {"/evp_proxy/v2/../v0.4/traces", "X-Datadog-EVP-Subdomain: api\r\n"},
        {"/evp_proxy/v2/api/../../x", "X-Datadog-EVP-Subdomain: api\r\n"},
        {"/evp_proxy/v2/api/%2e%2e/x", "X-Datadog-EVP-Subdomain: api\r\n"},
        {"/evp_proxy/v2/api/v2/x?q=\"", "X-Datadog-EVP-Subdomain: api\r\n"},
        {"/telemetry/proxy/../api", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int s = status_of(p.f.port, "POST", bad[i].path, bad[i].headers, "{}");
        CHECK_MSG(s == 400, "row %zu (%s): got %d", i, bad[i].path, s);
    }
    CHECK_EQ_INT(upstream_count(&p.u, &p.u.nreqs), 0);
    CHECK_EQ_INT(status_of(p.f.port, "POST", "/evp_proxy/v2/api/v2/ok", "X-Datadog-EVP-Subdomain: api-1.eu\r\n", "{}"),
                 202);
    CHECK_EQ_INT(upstream_count(&p.u, &p.u.nreqs), 1);
    pfx_done(&p);
    CHECK_EQ_INT(dds__counter_get(&p.f.counters.proxied), 1);
}

/* The client hangs up while the upstream is still thinking: nothing may touch the freed request
 * when the answer comes back, and the receiver keeps serving. */
TEST(proxy_client_disconnects_first) {
    proxy_fx p;
    if (!pfx_start(&p, 202, "{}")) return;
    pthread_mutex_lock(&p.u.mu);
    p.u.delay_ms = 300;
    pthread_mutex_unlock(&p.u.mu);
    for (int i = 0; i < 2; i++) {
        int fd = connect_tcp(p.f.port);
        const char *req =
            "POST /telemetry/proxy/api/v2/apmtelemetry HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        CHECK(send_all(fd, req, strlen(req)));
        CHECK(upstream_wait(&p.u, &p.u.nreqs, i + 1, 3000));
        if (i == 1) shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    CHECK(upstream_wait(&p.u, &p.u.answered, 2, 3000));
    sleep_ms(200);  /* on_done runs on the loop once curl has the answers */
    pthread_mutex_lock(&p.u.mu);
    p.u.delay_ms = 0;
    pthread_mutex_unlock(&p.u.mu);
    CHECK_EQ_INT(status_of(p.f.port, "POST", "/telemetry/proxy/api/v2/apmtelemetry", NULL, "{}"), 202);
    CHECK_EQ_INT(status_of(p.f.port, "GET", "/info", NULL, NULL), 200);
    pfx_done(&p);
}

/* An upstream that never answers in time: the client gets 504 at proxy_timeout_ms. */
TEST(proxy_timeout_504) {
    proxy_fx p;
    if (!pfx_start(&p, 202, "{}")) return;
    pthread_mutex_lock(&p.u.mu);
    p.u.delay_ms = 1500;
    pthread_mutex_unlock(&p.u.mu);
    fx_stop_loop(&p.f);
    dds__receiver_free(p.f.r);
    p.f.cfg.proxy_timeout_ms = 300;
    CHECK(fx_start(&p.f));
    int64_t t0 = dds__mono_ms();
    resp r;
    CHECK(call(p.f.port, "POST", "/profiling/v1/input", NULL, "x", 1, &r));
    int64_t took = dds__mono_ms() - t0;
    CHECK_EQ_INT(r.status, 504);
    CHECK_MSG(took >= 250 && took < 1400, "answered after %lld ms", (long long)took);
    resp_free(&r);
    CHECK(upstream_wait(&p.u, &p.u.answered, 1, 3000));
    sleep_ms(100);
    pfx_done(&p);
    CHECK_EQ_INT(dds__counter_get(&p.f.counters.proxy_failed), 1);
}

/* Unreachable upstream: the intake keeps retrying the connection error; the client still gets
 * an answer (504) in bounded time. */
TEST(proxy_unreachable_upstream) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v2/profile", ntohs(sa.sin_port));
    fixture f;
    fx_init(&f);
    fx_with_intake(&f);
    f.cfg.profiling_url = url;
    f.cfg.proxy_timeout_ms = 400;
    if (fx_start(&f)) {
        CHECK_EQ_INT(status_of(f.port, "POST", "/profiling/v1/input", NULL, "x"), 504);
        CHECK_EQ_INT(status_of(f.port, "GET", "/info", NULL, NULL), 200);
    }
    fx_done(&f);
    close(lfd);
}

static void on_drained(void *user) { atomic_store((atomic_bool *)user, true); }

/* The receiver goes away while a proxy is pending: the intake's later on_done must find nothing
 * of it. */
TEST(proxy_pending_at_free) {
    proxy_fx p;
    if (!pfx_start(&p, 202, "{}")) return;
    pthread_mutex_lock(&p.u.mu);
    p.u.delay_ms = 400;
    pthread_mutex_unlock(&p.u.mu);
    int fd = connect_tcp(p.f.port);
    const char *req = "POST /v0.1/pipeline_stats HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
    CHECK(send_all(fd, req, strlen(req)));
    CHECK(upstream_wait(&p.u, &p.u.nreqs, 1, 3000));
    fx_stop_loop(&p.f);
    dds__receiver_free(p.f.r);
    p.f.r = NULL;
    /* Let the intake finish on the same base, without the receiver. */
    atomic_bool drained = false;
    dds__intake_set_drained_cb(p.f.intake, on_drained, &drained);
    p.f.running = pthread_create(&p.f.th, NULL, loop_main, &p.f) == 0;
    CHECK(upstream_wait(&p.u, &p.u.answered, 1, 3000));
    for (int i = 0; i < 300 && !atomic_load(&drained); i++) sleep_ms(10);
    fx_stop_loop(&p.f);
    CHECK_EQ_INT(dds__intake_pending(p.f.intake), 0);
    char buf[16];
    CHECK(recv(fd, buf, sizeof(buf), 0) <= 0);  /* closed without an answer */
    close(fd);
    pfx_done(&p);
}

/* Also freed with a proxy pending in the intake and the intake freed last (abandon). */
TEST(proxy_abandoned_by_intake) {
    proxy_fx p;
    if (!pfx_start(&p, 202, "{}")) return;
    pthread_mutex_lock(&p.u.mu);
    p.u.delay_ms = 400;
    pthread_mutex_unlock(&p.u.mu);
    int fd = connect_tcp(p.f.port);
    const char *req = "POST /v0.1/pipeline_stats HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
    CHECK(send_all(fd, req, strlen(req)));
    CHECK(upstream_wait(&p.u, &p.u.nreqs, 1, 3000));
    /* Intake first: on_done(0) answers the client 502 from inside the abandon. */
    fx_stop_loop(&p.f);
    dds__intake_free(p.f.intake);
    p.f.intake = NULL;
    p.f.running = pthread_create(&p.f.th, NULL, loop_main, &p.f) == 0;
    resp r;
    CHECK(read_resp(fd, &r));
    CHECK_EQ_INT(r.status, 502);
    resp_free(&r);
    close(fd);
    pfx_done(&p);
    CHECK_EQ_INT(dds__counter_get(&p.f.counters.proxy_failed), 1);
}

/* ---------------------------------------------------------------------------------------- */
/* Logging                                                                                    */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];
static int log_lines;

static void capture_log(dds_log_level level, const char *line, void *user) {
    (void)level;
    (void)user;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(log_text);
    snprintf(log_text + n, sizeof(log_text) - n, "%s\n", line);
    log_lines++;
    pthread_mutex_unlock(&log_mu);
}

/* A burst of bad requests gives one warning line, not one per request. */
TEST(rejections_logged_at_bounded_rate) {
    dds__logger lg = {.level = DDS_LOG_WARN, .secret = OUR_KEY};
    dds_set_log_fn(capture_log, NULL);
    fixture f;
    fx_init(&f);
    f.cfg.log = &lg;
    if (fx_start(&f)) {
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(status_of(f.port, "GET", "/v0.4/traces", NULL, NULL), 405);
        for (int i = 0; i < 5; i++) CHECK_EQ_INT(status_of(f.port, "GET", "/nope", NULL, NULL), 404);
    }
    fx_done(&f);
    dds_set_log_fn(NULL, NULL);
    pthread_mutex_lock(&log_mu);
    CHECK_EQ_INT(log_lines, 1);  /* 404s log at debug only */
    CHECK(strstr(log_text, "GET /v0.4/traces answered 405") != NULL);
    pthread_mutex_unlock(&log_mu);
    CHECK_EQ_INT(dds__counter_get(&f.counters.rejected), 10);
    CHECK_EQ_INT(dds__counter_get(&f.counters.requests), 10);
}

/* Without an override the EVP target is https://<subdomain>.<site>. The site here is
 * "localhost:<closed port>": curl resolves *.localhost to the loopback itself, the connection is
 * refused, and the intake's retry warning names the URL it tried. */
TEST(evp_default_target_url) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    char site[64], want[128];
    snprintf(site, sizeof(site), "localhost:%u", ntohs(sa.sin_port));
    snprintf(want, sizeof(want), "https://citestcycle-intake.localhost:%u/api/v2/citestcycle", ntohs(sa.sin_port));
    dds__logger lg = {.level = DDS_LOG_WARN, .secret = OUR_KEY};
    pthread_mutex_lock(&log_mu);
    log_text[0] = '\0';
    log_lines = 0;
    pthread_mutex_unlock(&log_mu);
    dds_set_log_fn(capture_log, NULL);
    fixture f;
    fx_init(&f);
    dds__intake_config ic = {.api_key = OUR_KEY, .request_timeout_ms = 2000, .retry_queue_max_bytes = 1 << 20,
                             .log = &lg};
    f.intake = dds__intake_new(f.base, &ic, &f.icounters);
    f.cfg.intake = f.intake;
    f.cfg.site = site;
    f.cfg.proxy_timeout_ms = 500;
    if (fx_start(&f))
        CHECK_EQ_INT(status_of(f.port, "POST", "/evp_proxy/v2/api/v2/citestcycle?x=1",
                               "X-Datadog-EVP-Subdomain: citestcycle-intake\r\n", "{}"),
                     504);
    fx_done(&f);
    dds_set_log_fn(NULL, NULL);
    close(lfd);
    pthread_mutex_lock(&log_mu);
    CHECK_MSG(strstr(log_text, want) != NULL, "no attempt at %s in:\n%s", want, log_text);
    CHECK(strstr(log_text, OUR_KEY) == NULL);
    pthread_mutex_unlock(&log_mu);
}

/* ---------------------------------------------------------------------------------------- */

TEST(close_stops_accepting) {
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    uint16_t port = f.port;
    CHECK_EQ_INT(status_of(port, "GET", "/info", NULL, NULL), 200);
    fx_stop_loop(&f);
    dds__receiver_close(f.r);
    dds__receiver_close(f.r);
    f.running = pthread_create(&f.th, NULL, loop_main, &f) == 0;
    CHECK(connect_tcp(port) < 0);
    fx_done(&f);
}

/* receiver_new with the Nth libevent allocation failing, for every N until none fails: a clean
 * DDS_ERR_RUNTIME each time, nothing left behind (LeakSanitizer checks at exit). */
TEST(new_survives_allocation_failures) {
    if (test_under_valgrind()) {
        fprintf(stderr, "  skipped under valgrind (it owns the allocator)\n");
        return;
    }
    char path[108];
    snprintf(path, sizeof(path), "/tmp/dds-test-receiver-oom-%d.sock", (int)getpid());
    int failures = 0;
    bool completed = false;
    for (long n = 1; n < 500 && !completed; n++) {
        fixture f;
        fx_init(&f);
        f.cfg.unix_path = path;
        dds_error err = {0};
        inject_arm(pthread_self(), n);
        dds__receiver *r = dds__receiver_new(f.base, &f.cfg, &f.handlers, NULL, &err);
        completed = !inject_disarm();
        if (!r) {
            failures++;
            CHECK_MSG(err.code == DDS_ERR_RUNTIME, "n=%ld: %s", n, err.message);
            struct stat st;
            CHECK_MSG(lstat(path, &st) != 0, "n=%ld: socket file left behind", n);
        }
        dds__receiver_free(r);
        fx_done(&f);
    }
    CHECK(completed);
    CHECK(failures > 3);
    unlink(path);
}

/* The answer path (reply, headers, body) with the Nth libevent allocation failing, armed from
 * inside the handler: libevent 2.1.12 itself crashes on some allocation failures while accepting
 * and parsing (evhttp_request_new frees NULL headers), so only what follows our callback is
 * injected. An answer may be lost or degraded; nothing may crash or leak, and the receiver
 * answers normally once the failures stop. */
TEST(answers_survive_allocation_failures) {
    if (test_under_valgrind()) {
        fprintf(stderr, "  skipped under valgrind (it owns the allocator)\n");
        return;
    }
    fixture f;
    fx_init(&f);
    if (!fx_start(&f)) return;
    io_timeout_ms = 500;
    bool completed = false;
    int answered = 0;
    for (long n = 1; n < 200 && !completed; n++) {
        pthread_mutex_lock(&f.st.mu);
        f.st.inject_after = n;
        pthread_mutex_unlock(&f.st.mu);
        resp r;
        if (call(f.port, "PUT", "/v0.4/traces", NULL, "\x90", 1, &r)) {
            CHECK_MSG(r.status == 200 || r.status == 503, "n=%ld: %d", n, r.status);
            if (r.status == 200) CHECK_EQ_STR(r.body, RATE_BODY);
            answered++;
            resp_free(&r);
        }
        pthread_mutex_lock(&f.st.mu);
        f.st.inject_after = 0;
        pthread_mutex_unlock(&f.st.mu);
        completed = !inject_disarm();
        CHECK_MSG(status_of(f.port, "GET", "/info", NULL, NULL) == 200, "n=%ld: not serving after", n);
    }
    io_timeout_ms = IO_TIMEOUT_S * 1000;
    CHECK(completed);
    CHECK(answered > 0);
    fx_done(&f);
}

TEST(every_response_stamped) {
    CHECK(responses_seen > 100);
    CHECK_EQ_INT(responses_unstamped, 0);
}

/* libevent reports each injected allocation failure on stderr: expected here, and noise. */
static void quiet_libevent(int severity, const char *msg) {
    (void)severity;
    (void)msg;
}

int main(void) {
    event_set_mem_functions(hook_malloc, hook_realloc, hook_free);  /* before any libevent allocation */
    event_set_log_callback(quiet_libevent);
    evthread_use_pthreads();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(port_zero_binds_and_reports);
    RUN(taken_port_is_a_start_error);
    RUN(info_body_and_agent_state);
    RUN(info_lists_only_what_is_served);
    RUN(info_when_the_agent_computes_stats);
    RUN(traces_routes_and_methods);
    RUN(tracer_headers_parsed);
    RUN(handler_status_passthrough);
    RUN(stats_route);
    RUN(dogstatsd_proxy_route);
    RUN(unknown_paths_are_404);
    RUN(cross_site_refused);
    RUN(length_required);
    RUN(chunked_body_within_limit);
    RUN(oversized_content_length_413);
    RUN(oversized_chunked_413_cut_early);
    RUN(native_errors_stamped);
    RUN(unix_socket);
    RUN(proxies_forward);
    RUN(proxy_upstream_status_passthrough);
    RUN(evp_validation);
    RUN(proxy_client_disconnects_first);
    RUN(proxy_timeout_504);
    RUN(proxy_unreachable_upstream);
    RUN(proxy_pending_at_free);
    RUN(proxy_abandoned_by_intake);
    RUN(rejections_logged_at_bounded_rate);
    RUN(evp_default_target_url);
    RUN(close_stops_accepting);
    RUN(new_survives_allocation_failures);
    RUN(answers_survive_allocation_failures);
    RUN(every_response_stamped);
    curl_global_cleanup();
    return TEST_REPORT();
}
