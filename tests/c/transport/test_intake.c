/* test_intake.c - the intake transport against a scripted HTTP/1.1 server on 127.0.0.1 (one
 * thread per connection), driven by an event_base on the test thread. Every loop is bounded. */
#include "transport/intake.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <ucontext.h>

#include "common/clock.h"
#include "test.h"

#define KEY "0123456789abcdef0123456789abcdef"
#define UA "datadog-serverless/test"
#define OK_BODY "{\"status\":\"ok\"}"
#define ERR_BODY "{\"errors\":[\"nope\"]}"

/* ---------------------------------------------------------------------------------------- */
/* Allocation failure injection through libcurl's and libevent's replaceable allocators: only
 * on the test thread, only while armed, exactly the Nth allocation.                          */

static pthread_t inject_thread;
static atomic_bool inject_armed;
static long inject_countdown;  /* test thread only */
static bool inject_hit;

static bool inject_fail(void) {
    if (!atomic_load(&inject_armed) || !pthread_equal(pthread_self(), inject_thread)) return false;
    if (--inject_countdown != 0) return false;
    inject_hit = true;
    return true;
}
static void *hook_malloc(size_t n) { return inject_fail() ? NULL : malloc(n); }
static void *hook_calloc(size_t a, size_t b) { return inject_fail() ? NULL : calloc(a, b); }
static void *hook_realloc(void *p, size_t n) { return inject_fail() ? NULL : realloc(p, n); }
static char *hook_strdup(const char *str) { return inject_fail() ? NULL : strdup(str); }
static void hook_free(void *p) { free(p); }

/* ---------------------------------------------------------------------------------------- */
/* Every log line of the whole run, checked for the key at the end.                            */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char **log_lines;
static size_t log_n, log_cap;

static void capture_log(dds_log_level level, const char *line, void *user) {
    (void)level;
    (void)user;
    pthread_mutex_lock(&log_mu);
    if (log_n == log_cap) {
        size_t cap = log_cap ? log_cap * 2 : 64;
        char **l = realloc(log_lines, cap * sizeof(*l));
        if (l) {
            log_lines = l;
            log_cap = cap;
        }
    }
    if (log_n < log_cap) {
        log_lines[log_n] = strdup(line);
        if (log_lines[log_n]) log_n++;
    }
    pthread_mutex_unlock(&log_mu);
}

/* ---------------------------------------------------------------------------------------- */
/* Scripted HTTP/1.1 server                                                                   */

#define SRV_MAX 64
#define SRV_BUF (3 * 1024 * 1024)

typedef struct behave {
    int status;          /* 0 with close: hang up without answering */
    int delay_ms;        /* before answering (or hanging up) */
    bool close;
    int retry_after_s;   /* >0: send Retry-After */
} behave;

typedef struct rec {
    char *head;          /* request line + headers, up to and including the blank line */
    char method[16];
    char target[512];
    uint8_t *body;
    size_t body_len;
} rec;

typedef struct server {
    int lfd;
    uint16_t port;
    pthread_t acceptor;
    atomic_bool stop;
    pthread_mutex_t mu;
    behave script[SRV_MAX];
    int script_n, script_pos;
    behave dflt;
    rec recs[SRV_MAX];
    int nrecs;
    int conn_fds[SRV_MAX];
    pthread_t conn_threads[SRV_MAX];
    bool conn_started[SRV_MAX];
    int nconns;
    int active, max_active;
} server;

typedef struct conn_arg {
    server *s;
    int idx, fd;
} conn_arg;

static size_t content_length(const char *head, size_t head_len) {
    for (const char *l = head; l < head + head_len;) {
        const char *eol = memmem(l, (size_t)(head + head_len - l), "\r\n", 2);
        if (!eol) break;
        if ((size_t)(eol - l) > 15 && strncasecmp(l, "content-length:", 15) == 0) return strtoul(l + 15, NULL, 10);
        l = eol + 2;
    }
    return 0;
}

static void srv_sleep(server *s, int ms) {
    while (ms > 0 && !atomic_load(&s->stop)) {
        usleep(10 * 1000);
        ms -= 10;
    }
}

static void *conn_main(void *arg) {
    conn_arg *c = arg;
    server *s = c->s;
    char *buf = malloc(SRV_BUF);
    size_t len = 0;
    while (buf) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            if (len == SRV_BUF) goto out;
            ssize_t n = recv(c->fd, buf + len, SRV_BUF - len, 0);
            if (n <= 0) goto out;
            len += (size_t)n;
        }
        size_t head_len = (size_t)(end + 4 - buf);
        size_t clen = content_length(buf, head_len);
        if (clen > SRV_BUF - head_len) goto out;
        while (len < head_len + clen) {
            ssize_t n = recv(c->fd, buf + len, SRV_BUF - len, 0);
            if (n <= 0) goto out;
            len += (size_t)n;
        }
        behave b;
        pthread_mutex_lock(&s->mu);
        if (s->nrecs < SRV_MAX) {
            rec *r = &s->recs[s->nrecs++];
            r->head = strndup(buf, head_len);
            sscanf(buf, "%15s %511s", r->method, r->target);
            r->body = malloc(clen ? clen : 1);
            if (r->body) memcpy(r->body, buf + head_len, clen);
            r->body_len = clen;
        }
        b = s->script_pos < s->script_n ? s->script[s->script_pos++] : s->dflt;
        if (++s->active > s->max_active) s->max_active = s->active;
        pthread_mutex_unlock(&s->mu);
        memmove(buf, buf + head_len + clen, len - head_len - clen);
        len -= head_len + clen;

        srv_sleep(s, b.delay_ms);
        /* Leaves the active count before answering: the client may start its next request as
         * soon as it reads the answer, and that one must not be counted twice. */
        pthread_mutex_lock(&s->mu);
        s->active--;
        pthread_mutex_unlock(&s->mu);
        if (b.close) goto out;
        const char *body = b.status >= 200 && b.status < 300 ? OK_BODY : ERR_BODY;
        char extra[64] = "";
        if (b.retry_after_s > 0) snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", b.retry_after_s);
        char resp[512];
        int n = snprintf(resp, sizeof(resp),
                         "HTTP/1.1 %d Scripted\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                         b.status, strlen(body), extra, body);
        if (send(c->fd, resp, (size_t)n, MSG_NOSIGNAL) != n) goto out;
    }
out:
    pthread_mutex_lock(&s->mu);
    s->conn_fds[c->idx] = -1;
    pthread_mutex_unlock(&s->mu);
    close(c->fd);
    free(buf);
    free(c);
    return NULL;
}

static void *accept_main(void *arg) {
    server *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR && !atomic_load(&s->stop)) continue;
            break;
        }
        pthread_mutex_lock(&s->mu);
        if (atomic_load(&s->stop) || s->nconns == SRV_MAX) {
            pthread_mutex_unlock(&s->mu);
            close(fd);
            continue;
        }
        int idx = s->nconns++;
        s->conn_fds[idx] = fd;
        pthread_mutex_unlock(&s->mu);
        conn_arg *c = malloc(sizeof(*c));
        if (c) *c = (conn_arg){.s = s, .idx = idx, .fd = fd};
        if (!c || pthread_create(&s->conn_threads[idx], NULL, conn_main, c) != 0) {
            pthread_mutex_lock(&s->mu);
            s->conn_fds[idx] = -1;
            pthread_mutex_unlock(&s->mu);
            close(fd);
            free(c);
            continue;
        }
        s->conn_started[idx] = true;
    }
    return NULL;
}

static int listen_loopback(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* A loopback port with nothing listening: bound then released. */
static uint16_t dead_port(void) {
    uint16_t port = 0;
    int fd = listen_loopback(&port);
    if (fd >= 0) close(fd);
    return port;
}

static server *srv_start(behave dflt) {
    server *s = calloc(1, sizeof(*s));
    if (!s) abort();
    pthread_mutex_init(&s->mu, NULL);
    s->dflt = dflt;
    s->lfd = listen_loopback(&s->port);
    if (s->lfd < 0 || pthread_create(&s->acceptor, NULL, accept_main, s) != 0) {
        perror("server");
        abort();
    }
    return s;
}

static void srv_script(server *s, int n, const behave *b) {
    pthread_mutex_lock(&s->mu);
    memcpy(s->script, b, (size_t)n * sizeof(*b));
    s->script_n = n;
    s->script_pos = 0;
    pthread_mutex_unlock(&s->mu);
}

static int srv_nrecs(server *s) {
    pthread_mutex_lock(&s->mu);
    int n = s->nrecs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void srv_stop(server *s) {
    atomic_store(&s->stop, true);
    shutdown(s->lfd, SHUT_RDWR);  /* wakes accept() on Linux */
    pthread_join(s->acceptor, NULL);
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nconns; i++)
        if (s->conn_fds[i] >= 0) shutdown(s->conn_fds[i], SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nconns; i++)
        if (s->conn_started[i]) pthread_join(s->conn_threads[i], NULL);
    close(s->lfd);
    for (int i = 0; i < s->nrecs; i++) {
        free(s->recs[i].head);
        free(s->recs[i].body);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* "\r\nName: value\r\n" appears in the head: an exact header line. */
static bool has_line(const rec *r, const char *line) {
    char want[600];
    snprintf(want, sizeof(want), "\r\n%s\r\n", line);
    return r->head && strstr(r->head, want) != NULL;
}

static const rec *find_rec(server *s, const char *target) {
    for (int i = 0; i < s->nrecs; i++)
        if (strcmp(s->recs[i].target, target) == 0) return &s->recs[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Intake fixture                                                                             */

typedef struct ctx ctx;
typedef struct done_rec {
    ctx *t;
    int calls, status, order;
    char resp[256];
    size_t resp_len;
} done_rec;

struct ctx {
    struct event_base *base;
    dds__intake *in;
    dds__intake_counters c;
    dds__logger lg;
    dds__intake_config cfg;
    done_rec done[16];
    int done_seq;
    char errors[16][512];
    dds__payload_kind error_kinds[16];
    int nerrors;
    int drained;
};

static void on_done(void *user, int status, const uint8_t *resp, size_t resp_len) {
    done_rec *d = user;
    d->calls++;
    d->status = status;
    d->order = d->t->done_seq++;
    d->resp_len = resp_len < sizeof(d->resp) - 1 ? resp_len : sizeof(d->resp) - 1;
    if (resp_len) memcpy(d->resp, resp, d->resp_len);
    d->resp[d->resp_len] = '\0';
}

static void on_error(void *user, dds__payload_kind kind, const char *message) {
    ctx *t = user;
    if (t->nerrors < 16) t->error_kinds[t->nerrors] = kind;
    if (t->nerrors < 16) snprintf(t->errors[t->nerrors], sizeof(t->errors[0]), "%s", message);
    t->nerrors++;
}

static void on_drained(void *user) { ((ctx *)user)->drained++; }

static void ctx_init(ctx *t) {
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < 16; i++) t->done[i].t = t;
    /* No secret for log.c to redact: a leak must be caught here, not hidden by the sink. */
    t->lg = (dds__logger){.level = DDS_LOG_TRACE, .secret = NULL};
    t->cfg = (dds__intake_config){
        .api_key = KEY,
        .tls_verify = true,
        .request_timeout_ms = 3000,
        .retry_queue_max_bytes = 1 << 20,
        .user_agent = UA,
        .dry_run_fd = -1,
        .log = &t->lg,
        .on_error = on_error,
        .user = t,
    };
}

static bool ctx_start(ctx *t) {
    t->base = event_base_new();
    if (!t->base) return false;
    t->in = dds__intake_new(t->base, &t->cfg, &t->c);
    if (!t->in) return false;
    dds__intake_set_drained_cb(t->in, on_drained, t);
    return true;
}

static void ctx_free(ctx *t) {
    dds__intake_free(t->in);
    t->in = NULL;
    if (t->base) event_base_free(t->base);
    t->base = NULL;
}

static void spin(ctx *t, int ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    /* The bound on the loop itself must not be the allocation that fails. */
    bool armed = atomic_exchange(&inject_armed, false);
    int rc = event_base_loopexit(t->base, &tv);
    atomic_store(&inject_armed, armed);
    if (rc != 0) abort();
    event_base_loop(t->base, 0);
}

#define LOOP_UNTIL(t, cond, ms)                                                 \
    do {                                                                        \
        int64_t _end = dds__mono_ms() + (ms);                                   \
        while (!(cond) && dds__mono_ms() < _end) spin((t), 10);                 \
    } while (0)

#define CNT(t, name) dds__counter_get(&(t)->c.name)

static char *url_to(uint16_t port, const char *path) {
    char *u = NULL;
    if (asprintf(&u, "http://127.0.0.1:%u%s", port, path) < 0) abort();
    return u;
}

static dds__payload *mk(ctx *t, int id, dds__payload_kind kind, char *url, const void *body, size_t len,
                        const char *encoding, uint32_t items) {
    uint8_t *b = malloc(len ? len : 1);
    if (!b) abort();
    if (len) memcpy(b, body, len);
    dds__payload *p = dds__payload_new(kind, url, b, len, "application/x-protobuf", encoding, items);
    if (!p) abort();
    p->on_done = on_done;
    p->done_user = &t->done[id];
    return p;
}

static dds__payload *mk_simple(ctx *t, int id, uint16_t port, size_t len) {
    char body[512];
    memset(body, 'a' + id % 26, sizeof(body));
    return mk(t, id, DDS__PK_SERIES, url_to(port, "/api/v2/series"), body, len < sizeof(body) ? len : sizeof(body),
              "zstd", 1);
}

static bool has_error(const ctx *t, const char *needle) {
    for (int i = 0; i < t->nerrors && i < 16; i++)
        if (strstr(t->errors[i], needle)) return true;
    return false;
}

/* ---------------------------------------------------------------------------------------- */
/* Tests                                                                                      */

TEST(success_202_headers_body_counters) {
    server *s = srv_start((behave){.status = 202});
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    uint8_t series[300], sketches[50];
    for (size_t i = 0; i < sizeof(series); i++) series[i] = (uint8_t)(i * 7);  /* includes NULs */
    for (size_t i = 0; i < sizeof(sketches); i++) sketches[i] = (uint8_t)(255 - i);
    dds__payload *p = mk(&t, 0, DDS__PK_SERIES, url_to(s->port, "/api/v2/series"), series, sizeof(series), "zstd", 3);
    p->extra_headers = strdup("X-Test: yes\r\nDD-API-KEY: forged\nno colon here\nX-Other: 1");
    dds__intake_submit(t.in, p);
    dds__intake_submit(t.in, mk(&t, 1, DDS__PK_SKETCHES, url_to(s->port, "/api/beta/sketches"), sketches,
                                sizeof(sketches), NULL, 2));
    CHECK_EQ_INT(dds__intake_pending(t.in), 2);
    CHECK_EQ_INT(t.done[0].calls, 0);  /* nothing finishes inside submit */
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0 && t.drained > 0, 5000);
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    CHECK(t.drained >= 1);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(t.done[i].calls, 1);
        CHECK_EQ_INT(t.done[i].status, 202);
        CHECK_EQ_STR(t.done[i].resp, OK_BODY);
    }
    CHECK_EQ_INT(CNT(&t, sent), 2);
    CHECK_EQ_INT(CNT(&t, bytes_sent), sizeof(series) + sizeof(sketches));
    CHECK_EQ_INT(CNT(&t, series_sent), 3);
    CHECK_EQ_INT(CNT(&t, sketches_sent), 2);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_EQ_INT(CNT(&t, dropped), 0);
    CHECK_EQ_INT(t.nerrors, 0);

    CHECK_EQ_INT(srv_nrecs(s), 2);
    const rec *r = find_rec(s, "/api/v2/series");
    CHECK(r != NULL);
    if (r) {
        CHECK_EQ_STR(r->method, "POST");
        CHECK(has_line(r, "DD-API-KEY: " KEY));
        CHECK(has_line(r, "Content-Type: application/x-protobuf"));
        CHECK(has_line(r, "Content-Encoding: zstd"));
        CHECK(has_line(r, "User-Agent: " UA));
        CHECK(has_line(r, "X-Test: yes"));
        CHECK(has_line(r, "X-Other: 1"));
        CHECK(strstr(r->head, "forged") == NULL);   /* a forwarded header never replaces the key */
        CHECK(strstr(r->head, "no colon") == NULL);
        CHECK(strstr(r->head, "Expect:") == NULL);
        CHECK_EQ_INT(r->body_len, sizeof(series));
        CHECK(r->body && memcmp(r->body, series, sizeof(series)) == 0);
    }
    r = find_rec(s, "/api/beta/sketches");
    CHECK(r != NULL);
    if (r) {
        CHECK(has_line(r, "DD-API-KEY: " KEY));
        CHECK(strstr(r->head, "Content-Encoding") == NULL);
        CHECK_EQ_INT(r->body_len, sizeof(sketches));
        CHECK(r->body && memcmp(r->body, sketches, sizeof(sketches)) == 0);
    }
    ctx_free(&t);
    srv_stop(s);
}

TEST(no_api_key_no_header) {
    server *s = srv_start((behave){.status = 200});
    ctx t;
    ctx_init(&t);
    t.cfg.api_key = NULL;
    t.cfg.user_agent = NULL;
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_simple(&t, 0, s->port, 10));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    CHECK_EQ_INT(t.done[0].status, 200);
    CHECK_EQ_INT(srv_nrecs(s), 1);
    if (srv_nrecs(s) == 1) {
        CHECK(strcasestr(s->recs[0].head, "DD-API-KEY") == NULL);
        CHECK(strstr(s->recs[0].head, "\r\nUser-Agent: datadog-serverless") != NULL);
    }
    ctx_free(&t);
    srv_stop(s);
}

static void retried_then_delivered(int n, const behave *script, int want_retried) {
    server *s = srv_start((behave){.status = 202});
    srv_script(s, n, script);
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_simple(&t, 0, s->port, 100));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 8000);
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 202);
    CHECK_EQ_INT(CNT(&t, sent), 1);
    CHECK_EQ_INT(CNT(&t, bytes_sent), 100);
    CHECK_EQ_INT(CNT(&t, retried), want_retried);
    CHECK_EQ_INT(CNT(&t, dropped), 0);
    CHECK_EQ_INT(srv_nrecs(s), n + 1);
    for (int i = 0; i < srv_nrecs(s); i++) CHECK_EQ_INT(s->recs[i].body_len, 100);
    CHECK_EQ_INT(t.nerrors, 0);  /* retries are not the user's problem yet */
    ctx_free(&t);
    srv_stop(s);
}

TEST(retry_500_then_202) {
    behave b[] = {{.status = 500}};
    retried_then_delivered(1, b, 1);
}

TEST(retry_429_and_408) {
    behave b[] = {{.status = 429}, {.status = 408}, {.status = 503}};
    retried_then_delivered(3, b, 3);
}

TEST(retry_after_connection_closed_mid_request) {
    behave b[] = {{.close = true}};
    retried_then_delivered(1, b, 1);
}

/* Past 1 MiB curl would send "Expect: 100-continue" and wait a second for an answer that a
 * plain server never sends. */
TEST(large_body_sent_without_expect) {
    server *s = srv_start((behave){.status = 202});
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    size_t len = 2 * 1024 * 1024;
    uint8_t *body = malloc(len);
    if (!body) abort();
    for (size_t i = 0; i < len; i++) body[i] = (uint8_t)(i * 31 + (i >> 13));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_TRACES, url_to(s->port, "/api/v0.2/traces"), body, len, "gzip", 5));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    CHECK_EQ_INT(t.done[0].status, 202);
    CHECK_EQ_INT(CNT(&t, bytes_sent), len);
    CHECK_EQ_INT(srv_nrecs(s), 1);
    if (srv_nrecs(s) == 1) {
        CHECK(strstr(s->recs[0].head, "Expect") == NULL);
        CHECK_EQ_INT(s->recs[0].body_len, len);
        CHECK(s->recs[0].body && memcmp(s->recs[0].body, body, len) == 0);
    }
    free(body);
    ctx_free(&t);
    srv_stop(s);
}

TEST(retry_after_timeout) {
    server *s = srv_start((behave){.status = 202});
    behave b[] = {{.status = 202, .delay_ms = 3000}};
    srv_script(s, 1, b);
    ctx t;
    ctx_init(&t);
    t.cfg.request_timeout_ms = 300;
    CHECK(ctx_start(&t));
    int64_t t0 = dds__mono_ms();
    dds__intake_submit(t.in, mk_simple(&t, 0, s->port, 10));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    CHECK(dds__mono_ms() - t0 < 2500);  /* the timeout cut the first attempt short */
    CHECK_EQ_INT(t.done[0].status, 202);
    CHECK_EQ_INT(CNT(&t, retried), 1);
    CHECK_EQ_INT(CNT(&t, sent), 1);
    CHECK_EQ_INT(srv_nrecs(s), 2);
    ctx_free(&t);
    srv_stop(s);
}

TEST(drop_403_reports_key_never_retries) {
    server *s = srv_start((behave){.status = 403});
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, url_to(s->port, "/api/v2/series?api_key=" KEY), "x", 1, "zstd", 1));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    spin(&t, 300);  /* time for a retry that must not happen */
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    CHECK_EQ_INT(srv_nrecs(s), 1);
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 403);
    CHECK_EQ_STR(t.done[0].resp, ERR_BODY);
    CHECK_EQ_INT(CNT(&t, dropped), 1);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_EQ_INT(CNT(&t, sent), 0);
    CHECK_EQ_INT(t.nerrors, 1);
    CHECK_EQ_STR(t.errors[0], "intake rejected the API key (HTTP 403): series payload dropped");
    CHECK_EQ_INT(t.error_kinds[0], DDS__PK_SERIES); /* the services name the DogStatsD server for it */
    ctx_free(&t);
    srv_stop(s);
}

TEST(proxied_403_goes_to_the_client_not_to_the_user) {
    server *s = srv_start((behave){.status = 403});
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_PROXY, url_to(s->port, "/api/v2/apmtelemetry"), "{}", 2, NULL, 1));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    spin(&t, 300);
    CHECK_EQ_INT(srv_nrecs(s), 1);
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 403);    /* the tracer gets the upstream's answer */
    CHECK_EQ_STR(t.done[0].resp, ERR_BODY);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_EQ_INT(t.nerrors, 0);             /* no "API key rejected" alert for the user */
    ctx_free(&t);
    srv_stop(s);
}

TEST(retry_now_skips_the_backoff) {
    server *s = srv_start((behave){.status = 500});
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_simple(&t, 0, s->port, 10));
    /* After 5 failures the next backoff is at least 800 ms (1600 ms step, equal jitter). */
    LOOP_UNTIL(&t, srv_nrecs(s) >= 5, 8000);
    CHECK(srv_nrecs(s) >= 5);
    int before = srv_nrecs(s);
    int64_t t0 = dds__mono_ms();
    dds__intake_retry_now(t.in);
    LOOP_UNTIL(&t, srv_nrecs(s) > before, 2000);
    CHECK(srv_nrecs(s) > before);
    CHECK_MSG(dds__mono_ms() - t0 < 400, "next attempt came %lld ms later", (long long)(dds__mono_ms() - t0));
    CHECK_EQ_INT(dds__intake_abandon(t.in), 1);
    ctx_free(&t);
    srv_stop(s);
}

TEST(drop_413_and_400) {
    server *s = srv_start((behave){.status = 202});
    behave b[] = {{.status = 413}, {.status = 400}, {.status = 404}};
    srv_script(s, 3, b);
    ctx t;
    ctx_init(&t);
    t.cfg.max_in_flight = 1;  /* the script is consumed in submit order */
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_simple(&t, 0, s->port, 200));
    /* Credentials in the URL must not reach the error message or the log. */
    char *u = NULL;
    if (asprintf(&u, "http://user:%s@127.0.0.1:%u/api/v1/check_run?api_key=%s", KEY, s->port, KEY) < 0) abort();
    dds__intake_submit(t.in, mk(&t, 1, DDS__PK_SERVICE_CHECKS, u, "[]", 2, NULL, 1));
    dds__intake_submit(t.in, mk_simple(&t, 2, s->port, 20));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    spin(&t, 300);
    CHECK_EQ_INT(srv_nrecs(s), 3);
    CHECK_EQ_INT(t.done[0].status, 413);
    CHECK_EQ_INT(t.done[1].status, 400);
    CHECK_EQ_INT(t.done[2].status, 404);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(t.done[i].calls, 1);
    CHECK_EQ_INT(CNT(&t, dropped), 3);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_EQ_INT(CNT(&t, sent), 0);
    CHECK(has_error(&t, "too large (HTTP 413"));
    CHECK(has_error(&t, "HTTP 400"));
    char where[128];
    snprintf(where, sizeof(where), "(HTTP 400 from http://127.0.0.1:%u/api/v1/check_run)", s->port);
    CHECK(has_error(&t, where));  /* without the userinfo and the query */
    for (int i = 0; i < t.nerrors && i < 16; i++) CHECK_MSG(strstr(t.errors[i], KEY) == NULL, "key in \"%s\"", t.errors[i]);
    ctx_free(&t);
    srv_stop(s);
}

TEST(connection_refused_retried_then_abandoned) {
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_simple(&t, 0, dead_port(), 10));
    LOOP_UNTIL(&t, CNT(&t, retried) >= 2, 5000);
    CHECK(CNT(&t, retried) >= 2);
    CHECK_EQ_INT(dds__intake_pending(t.in), 1);
    CHECK_EQ_INT(t.done[0].calls, 0);
    CHECK_EQ_INT(t.drained, 0);
    CHECK_EQ_INT(dds__intake_abandon(t.in), 1);
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 0);
    CHECK_EQ_INT(CNT(&t, dropped), 1);
    CHECK_EQ_INT(CNT(&t, sent), 0);
    LOOP_UNTIL(&t, t.drained > 0, 1000);
    CHECK_EQ_INT(t.drained, 1);
    CHECK_EQ_INT(dds__intake_abandon(t.in), 0);
    ctx_free(&t);
}

TEST(retry_queue_bound_drops_oldest) {
    /* Retry-After keeps every failed payload waiting for the whole test, so the queue's order
     * is the order of the failures. */
    server *s = srv_start((behave){.status = 503, .retry_after_s = 5});
    ctx t;
    ctx_init(&t);
    t.cfg.retry_queue_max_bytes = 250;
    t.cfg.max_in_flight = 1;
    CHECK(ctx_start(&t));
    for (int i = 0; i < 4; i++) dds__intake_submit(t.in, mk_simple(&t, i, s->port, 100));
    LOOP_UNTIL(&t, CNT(&t, retried) >= 4, 5000);
    CHECK_EQ_INT(CNT(&t, retried), 4);
    CHECK_EQ_INT(CNT(&t, dropped), 2);
    CHECK_EQ_INT(dds__intake_pending(t.in), 2);
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 0);
    CHECK_EQ_INT(t.done[1].calls, 1);
    CHECK_EQ_INT(t.done[1].status, 0);
    CHECK(t.done[0].order < t.done[1].order);
    CHECK_EQ_INT(t.done[2].calls, 0);
    CHECK_EQ_INT(t.done[3].calls, 0);
    CHECK(has_error(&t, "retry queue full (250 bytes max): oldest series payload (100 bytes) dropped"));
    CHECK_EQ_INT(srv_nrecs(s), 4);

    /* Larger than the whole bound: dropped itself rather than evicting what fits. */
    dds__intake_submit(t.in, mk_simple(&t, 4, s->port, 300));
    LOOP_UNTIL(&t, t.done[4].calls > 0, 5000);
    CHECK_EQ_INT(t.done[4].status, 0);
    CHECK_EQ_INT(CNT(&t, dropped), 3);
    CHECK_EQ_INT(t.done[2].calls + t.done[3].calls, 0);
    CHECK_EQ_INT(dds__intake_pending(t.in), 2);

    CHECK_EQ_INT(dds__intake_abandon(t.in), 2);
    CHECK_EQ_INT(t.done[2].calls, 1);
    CHECK_EQ_INT(t.done[3].calls, 1);
    CHECK_EQ_INT(CNT(&t, dropped), 5);
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    ctx_free(&t);
    srv_stop(s);
}

static dds__payload *mk_anon(ctx *t, uint16_t port, size_t len) {
    dds__payload *p = mk_simple(t, 0, port, len);
    p->on_done = NULL;
    return p;
}

TEST(send_queue_bound_with_a_slow_intake) {
    /* An intake that accepts every connection and answers each request only after 1 s. */
    server *s = srv_start((behave){.status = 202, .delay_ms = 1000});
    ctx t;
    ctx_init(&t);
    t.cfg.max_in_flight = 2;
    t.cfg.queue_max_bytes = 500;
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_anon(&t, s->port, 100));
    dds__intake_submit(t.in, mk_anon(&t, s->port, 100));
    LOOP_UNTIL(&t, srv_nrecs(s) >= 2, 3000);
    CHECK_EQ_INT(CNT(&t, queue_bytes), 0);  /* both in flight */
    uint64_t peak = 0;
    for (int i = 0; i < 30; i++) {
        dds__intake_submit(t.in, mk_anon(&t, s->port, 100));
        if (CNT(&t, queue_bytes) > peak) peak = CNT(&t, queue_bytes);
        if (i % 5 == 4) spin(&t, 20);  /* several flush ticks while the intake is slow */
    }
    spin(&t, 20);
    CHECK(peak <= 500);
    CHECK_EQ_INT(CNT(&t, queue_bytes), 500);
    CHECK_EQ_INT(CNT(&t, queue_dropped[DDS__PK_SERIES]), 25);
    CHECK_EQ_INT(CNT(&t, dropped), 25);
    CHECK_EQ_INT(dds__intake_pending(t.in), 7);
    CHECK(has_error(&t, "send queue full (500 bytes max, the intake is not keeping up): series payload (100 bytes) dropped"));
    CHECK_EQ_INT(t.nerrors, 1);  /* one report per interval, however many drops */

    /* A small one pushes out the oldest; one larger than the bound while others wait is
     * dropped itself rather than emptying the queue. */
    dds__intake_submit(t.in, mk(&t, 1, DDS__PK_LOGS, url_to(s->port, "/api/v2/logs"), "x", 1, NULL, 1));
    char big[600];
    memset(big, 'b', sizeof(big));
    dds__intake_submit(t.in, mk(&t, 2, DDS__PK_LOGS, url_to(s->port, "/api/v2/logs"), big, sizeof(big), NULL, 1));
    CHECK_EQ_INT(t.done[2].calls, 0);  /* nothing finishes inside submit, a drop included */
    spin(&t, 20);
    CHECK_EQ_INT(t.done[2].calls, 1);
    CHECK_EQ_INT(t.done[2].status, 0);
    CHECK_EQ_INT(CNT(&t, queue_dropped[DDS__PK_LOGS]), 1);
    CHECK_EQ_INT(CNT(&t, queue_dropped[DDS__PK_SERIES]), 26);
    CHECK_EQ_INT(CNT(&t, queue_bytes), 401);

    /* What stayed is delivered once the intake answers. */
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 15000);
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    CHECK_EQ_INT(CNT(&t, queue_bytes), 0);
    CHECK_EQ_INT(CNT(&t, sent), 7);
    CHECK_EQ_INT(t.done[1].calls, 1);
    CHECK_EQ_INT(t.done[1].status, 202);
    CHECK_EQ_INT(srv_nrecs(s), 7);
    ctx_free(&t);
    srv_stop(s);
}

TEST(send_queue_alone_takes_one_oversized_payload) {
    server *s = srv_start((behave){.status = 202});
    ctx t;
    ctx_init(&t);
    t.cfg.queue_max_bytes = 100;
    CHECK(ctx_start(&t));
    char big[400];
    memset(big, 'c', sizeof(big));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_PROXY, url_to(s->port, "/p"), big, sizeof(big), NULL, 0));
    LOOP_UNTIL(&t, t.done[0].calls > 0, 5000);
    CHECK_EQ_INT(t.done[0].status, 202);
    CHECK_EQ_INT(CNT(&t, dropped), 0);
    ctx_free(&t);
    srv_stop(s);
}

TEST(nothing_lost_when_the_intake_is_a_little_slow) {
    server *s = srv_start((behave){.status = 202, .delay_ms = 60});
    ctx t;
    ctx_init(&t);
    t.cfg.max_in_flight = 2;  /* the default bound */
    CHECK(ctx_start(&t));
    for (int i = 0; i < 40; i++) {
        dds__intake_submit(t.in, mk_anon(&t, s->port, 500));
        if (i % 10 == 9) spin(&t, 50);
    }
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 15000);
    CHECK_EQ_INT(CNT(&t, sent), 40);
    CHECK_EQ_INT(CNT(&t, dropped), 0);
    CHECK_EQ_INT(CNT(&t, queue_bytes), 0);
    CHECK_EQ_INT(srv_nrecs(s), 40);
    ctx_free(&t);
    srv_stop(s);
}

TEST(max_in_flight_respected) {
    server *s = srv_start((behave){.status = 202, .delay_ms = 150});
    ctx t;
    ctx_init(&t);
    t.cfg.max_in_flight = 2;
    CHECK(ctx_start(&t));
    for (int i = 0; i < 6; i++) dds__intake_submit(t.in, mk_simple(&t, i, s->port, 30));
    CHECK_EQ_INT(dds__intake_pending(t.in), 6);
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 8000);
    CHECK_EQ_INT(CNT(&t, sent), 6);
    CHECK_EQ_INT(srv_nrecs(s), 6);
    pthread_mutex_lock(&s->mu);
    int max_active = s->max_active;
    pthread_mutex_unlock(&s->mu);
    CHECK_EQ_INT(max_active, 2);
    /* FIFO: the first two submitted finish before the last two. */
    CHECK(t.done[0].order < t.done[4].order && t.done[1].order < t.done[5].order);
    ctx_free(&t);
    srv_stop(s);
}

TEST(dry_run_writes_lines) {
    int fds[2];
    CHECK(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    ctx t;
    ctx_init(&t);
    t.cfg.dry_run = true;
    t.cfg.dry_run_fd = fds[1];
    CHECK(ctx_start(&t));
    uint16_t port = dead_port();  /* sending anything would fail and retry */
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, url_to(port, "/a"), "alpha", 5, NULL, 4));
    dds__intake_submit(t.in, mk(&t, 1, DDS__PK_EVENTS, url_to(port, "/b"), "", 0, NULL, 1));
    dds__intake_submit(t.in, mk(&t, 2, DDS__PK_TRACES, url_to(port, "/c"), "ga\0mma", 6, "gzip", 1));
    CHECK_EQ_INT(dds__intake_pending(t.in), 3);
    CHECK_EQ_INT(t.done[0].calls, 0);
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0 && t.drained > 0, 3000);
    CHECK_EQ_INT(dds__intake_pending(t.in), 0);
    CHECK_EQ_INT(CNT(&t, dry_run), 3);
    CHECK_EQ_INT(CNT(&t, sent), 0);
    CHECK_EQ_INT(CNT(&t, series_sent), 0);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_EQ_INT(CNT(&t, dropped), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(t.done[i].calls, 1);
        CHECK_EQ_INT(t.done[i].status, 202);
    }
    CHECK(t.drained >= 1);
    char got[64];
    ssize_t n = read(fds[0], got, sizeof(got));
    static const char want[] = "alpha\n\nga\0mma\n";
    CHECK_EQ_INT(n, sizeof(want) - 1);
    CHECK(n == sizeof(want) - 1 && memcmp(got, want, sizeof(want) - 1) == 0);
    ctx_free(&t);
    close(fds[0]);
    close(fds[1]);
}

TEST(configured_proxy_carries_every_request) {
    server *proxy = srv_start((behave){.status = 202});
    ctx t;
    ctx_init(&t);
    char *purl = url_to(proxy->port, "");
    t.cfg.https_proxy = purl;
    CHECK(ctx_start(&t));
    free(purl);  /* the intake keeps its own copy */
    setenv("no_proxy", "intake.invalid", 1);  /* a configured proxy is not overridden by the environment */
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, strdup("http://intake.invalid/api/v2/series"), "p", 1, "zstd", 1));
    LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
    unsetenv("no_proxy");
    CHECK_EQ_INT(t.done[0].status, 202);
    CHECK_EQ_INT(srv_nrecs(proxy), 1);
    if (srv_nrecs(proxy) == 1) {
        CHECK_EQ_STR(proxy->recs[0].target, "http://intake.invalid/api/v2/series");
        CHECK(has_line(&proxy->recs[0], "DD-API-KEY: " KEY));
    }
    ctx_free(&t);
    srv_stop(proxy);
}

TEST(free_with_requests_in_flight) {
    server *s = srv_start((behave){.status = 202, .delay_ms = 2000});
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk_simple(&t, 0, s->port, 10));
    dds__intake_submit(t.in, mk_simple(&t, 1, s->port, 10));
    LOOP_UNTIL(&t, srv_nrecs(s) == 2, 5000);
    CHECK_EQ_INT(dds__intake_pending(t.in), 2);
    dds__intake_free(t.in);
    t.in = NULL;
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[1].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 0);
    CHECK_EQ_INT(CNT(&t, dropped), 2);
    CHECK_EQ_INT(t.drained, 0);  /* nobody is left to tell */
    ctx_free(&t);
    srv_stop(s);
}

/* Exit codes of one allocation-failure run (a child process). */
enum { RUN_NOT_HIT = 0, RUN_DELIVERED = 1, RUN_DROPPED = 2, RUN_CHECK_FAILED = 3, RUN_LIBCURL_FPE = 77, RUN_OTHER_FPE = 78 };

/* libcurl 7.88's singlesocket() destroys a socket entry's transfer hash when adding to it runs
 * out of memory but keeps the entry; the next add computes "hash % 0". That crash is libcurl's,
 * reported as such rather than failing this test; any other signal is ours. */
static void on_child_fpe(int sig, siginfo_t *si, void *uctx) {
    (void)sig;
    (void)uctx;
    void *pc = si->si_addr;
#if defined(__x86_64__) && defined(REG_RIP)
    /* valgrind hands the handler a made-up si_addr but the real program counter. */
    pc = (void *)((ucontext_t *)uctx)->uc_mcontext.gregs[REG_RIP];
#endif
    Dl_info info;
    bool in_curl = dladdr(pc, &info) && info.dli_fname && strstr(info.dli_fname, "libcurl");
    _exit(in_curl ? RUN_LIBCURL_FPE : RUN_OTHER_FPE);
}

static void quiet_libevent(int severity, const char *msg) {
    (void)severity;
    (void)msg;
}

static int alloc_failure_run(int n) {
    test_cur_failed = 0;  /* a failure the parent already recorded is not this run's */
    struct sigaction sa = {.sa_sigaction = on_child_fpe, .sa_flags = SA_SIGINFO};
    sigaction(SIGFPE, &sa, NULL);
    event_set_log_callback(quiet_libevent);  /* its own allocation failures are expected here */
    server *s = srv_start((behave){.status = 202});
    ctx t;
    ctx_init(&t);
    t.cfg.request_timeout_ms = 300;  /* bounds the watchdog too: a lost transfer costs ~0.5 s */
    inject_thread = pthread_self();
    inject_countdown = n;
    inject_hit = false;
    atomic_store(&inject_armed, true);
    bool started = ctx_start(&t);
    if (started) {
        dds__payload *p = mk_simple(&t, 0, s->port, 50);
        p->extra_headers = strdup("X-Test: yes\n");
        dds__intake_submit(t.in, p);
        LOOP_UNTIL(&t, dds__intake_pending(t.in) == 0, 5000);
        CHECK_MSG(dds__intake_pending(t.in) == 0, "failing allocation %d: payload stuck", n);
    }
    atomic_store(&inject_armed, false);
    ctx_free(&t);
    srv_stop(s);
    bool dropped = false;
    if (started) {
        CHECK_MSG(t.done[0].calls == 1, "failing allocation %d: on_done called %d times", n, t.done[0].calls);
        bool sent = CNT(&t, sent) == 1 && CNT(&t, dropped) == 0 && t.done[0].status == 202;
        dropped = CNT(&t, sent) == 0 && CNT(&t, dropped) == 1 && t.done[0].status == 0;
        CHECK_MSG(sent || dropped, "failing allocation %d: sent %d dropped %d status %d", n, (int)CNT(&t, sent),
                  (int)CNT(&t, dropped), t.done[0].status);
    }
    if (test_cur_failed) return RUN_CHECK_FAILED;
    if (!inject_hit) return RUN_NOT_HIT;
    return dropped ? RUN_DROPPED : RUN_DELIVERED;
}

/* Fails the 1st, 2nd, ... allocation made by libcurl or libevent (intake.c's own allocations go
 * through libc and are not covered) until a run no longer reaches the failure. Each run is a
 * child process, so that LeakSanitizer checks it alone and a crash ends only that run. Every run
 * must end with the payload finished exactly once: delivered, or dropped and counted. */
TEST(allocation_failures_never_crash_or_lose_track) {
    int n, dropped = 0, curl_fpe = 0, bad = 0;
    for (n = 1; n < 2000 && bad < 5; n++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            TEST_FAIL_AT("fork: %s", strerror(errno));
            return;
        }
        if (pid == 0) exit(alloc_failure_run(n));  /* exit, not _exit: LeakSanitizer runs at exit */
        int st = 0;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code == RUN_NOT_HIT) break;
        if (code == RUN_DROPPED) dropped++;
        else if (code == RUN_LIBCURL_FPE) curl_fpe++;
        else if (code != RUN_DELIVERED) {
            TEST_FAIL_AT("failing allocation %d: run ended with code %d", n, code);
            bad++;  /* the first few say what broke; the rest would only bury them */
        }
    }
    CHECK(bad > 0 || (n > 20 && n < 2000));
    fprintf(stderr, "  %d allocations failed in turn: payload dropped in %d runs, libcurl division by zero in %d\n",
            n - 1, dropped, curl_fpe);
}

/* ---------------------------------------------------------------------------------------- */
/* TLS trust: only the CA certificates found at start, never libcurl's compiled-in default     */

/* `openssl s_server` as an HTTPS sink: it completes the handshake and writes whatever the client
 * sends to its stdout (a file here), and never answers. Seeing "POST /..." in that file proves a
 * request went through a verified handshake; its absence with a certificate error proves not. */
typedef struct tls_sink {
    pid_t pid;
    int stdin_w;         /* held open: s_server quits at the end of its stdin */
    uint16_t port;
    char out[128];
} tls_sink;

static bool read_file(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    /* Binary-safe for strstr: what s_server echoes is text, its NULs are not. */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0') buf[i] = ' ';
    buf[n] = '\0';
    return true;
}

static bool make_cert(const char *dir, const char *name) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -nodes -days 1 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
             "-keyout %s/%s.key -out %s/%s.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
             ">/dev/null 2>&1", dir, name, dir, name);
    return system(cmd) == 0;
}

static bool tls_sink_start(tls_sink *t, const char *dir, const char *name) {
    memset(t, 0, sizeof(*t));
    snprintf(t->out, sizeof(t->out), "%s/%s.out", dir, name);
    char cert[128], key[128];
    snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    int in[2];
    if (pipe(in) != 0) return false;
    fflush(NULL);
    t->pid = fork();
    if (t->pid < 0) return false;
    if (t->pid == 0) {
        int out = open(t->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(out, 1);
        dup2(devnull, 2);
        close(in[1]);
        execlp("openssl", "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    t->stdin_w = in[1];
    char buf[4096];
    for (int i = 0; i < 500; i++) {
        unsigned port = 0;
        const char *acc;
        if (read_file(t->out, buf, sizeof(buf)) && (acc = strstr(buf, "ACCEPT 127.0.0.1:")) != NULL &&
            sscanf(acc, "ACCEPT 127.0.0.1:%u", &port) == 1 && port > 0) {
            t->port = (uint16_t)port;
            return true;
        }
        usleep(10 * 1000);
    }
    return false;
}

static bool tls_sink_saw(const tls_sink *t, const char *needle) {
    static char buf[64 * 1024];
    return read_file(t->out, buf, sizeof(buf)) && strstr(buf, needle) != NULL;
}

static void tls_sink_stop(tls_sink *t) {
    if (t->pid > 0) {
        kill(t->pid, SIGTERM);
        while (waitpid(t->pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    if (t->stdin_w > 0) close(t->stdin_w);
    t->pid = 0;
    t->stdin_w = 0;
}

static char *https_url_to(uint16_t port, const char *path) {
    char *u = NULL;
    if (asprintf(&u, "https://127.0.0.1:%u%s", port, path) < 0) abort();
    return u;
}

/* What libcurl trusts when CURLOPT_CAINFO is left alone (NULL for a build without one, such as
 * libcurl+mbedTLS). */
static const char *libcurl_default_bundle(void) {
    static char path[256];
    path[0] = '\0';
#if LIBCURL_VERSION_NUM >= 0x075400
    CURL *e = curl_easy_init();
    char *p = NULL;
    if (e && curl_easy_getinfo(e, CURLINFO_CAINFO, &p) == CURLE_OK && p) snprintf(path, sizeof(path), "%s", p);
    if (e) curl_easy_cleanup(e);
#endif
    return path[0] ? path : NULL;
}

/* One transfer with libcurl left at its defaults: true when the handshake with the sink passed
 * (the sink then never answers, so the transfer times out instead of failing verification). */
static bool libcurl_default_trusts(uint16_t port) {
    CURL *e = curl_easy_init();
    if (!e) return false;
    char *url = https_url_to(port, "/premise");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 1000L);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_cleanup(e);
    free(url);
    return rc == CURLE_OPERATION_TIMEDOUT;
}

typedef struct tls_case {
    char dir[64];          /* scratch directory of certificates and sink output */
    const char *bundle;    /* libcurl's compiled-in default bundle, or NULL */
} tls_case;

/* In a child where libcurl's default bundle holds the sink's certificate (so libcurl left alone
 * WOULD trust the sink). */
static void no_ca_found_never_falls_back_to_libcurls_default(void *arg) {
    tls_case *tc = arg;
    char cert[128], cmd[512];
    snprintf(cert, sizeof(cert), "%s/sink.pem", tc->dir);
    tls_sink sink;
    if (!tls_sink_start(&sink, tc->dir, "sink")) {
        TEST_FAIL_AT("openssl s_server did not start");
        tls_sink_stop(&sink);
        return;
    }
    if (tc->bundle) {
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", cert, tc->bundle);
        CHECK(system(cmd) == 0);
        CHECK_MSG(libcurl_default_trusts(sink.port), "premise: libcurl's default %s should trust the sink", tc->bundle);
    }

    /* Nothing found (both NULL): the request fails at once, as an untrusted certificate does:
     * dropped, never retried, reported, and nothing reaches the sink. */
    ctx t;
    ctx_init(&t);
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, https_url_to(sink.port, "/api/v2/series"), "x", 1, "zstd", 1));
    LOOP_UNTIL(&t, t.done[0].calls == 1, 5000);
    spin(&t, 200); /* time for a retry that must not happen */
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(t.done[0].status, 0);
    CHECK_EQ_INT(CNT(&t, sent), 0);
    CHECK_EQ_INT(CNT(&t, dropped), 1);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_MSG(has_error(&t, "no CA certificates were found at start"), "errors: %d, first: %s", t.nerrors,
              t.nerrors ? t.errors[0] : "");
    CHECK(!tls_sink_saw(&sink, "POST /api/v2/series"));
    ctx_free(&t);

    /* The sink's own certificate as the bundle found at start: the request goes through. */
    ctx_init(&t);
    t.cfg.ca_file = cert;
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, https_url_to(sink.port, "/api/v2/series"), "x", 1, "zstd", 1));
    LOOP_UNTIL(&t, tls_sink_saw(&sink, "POST /api/v2/series"), 5000);
    CHECK(tls_sink_saw(&sink, "POST /api/v2/series"));
    ctx_free(&t);
    tls_sink_stop(&sink);
}

TEST(no_ca_found_fails_https_even_where_libcurl_would_trust) {
    tls_case tc = {.bundle = libcurl_default_bundle()};
    snprintf(tc.dir, sizeof(tc.dir), "/tmp/dds-intake-tls-XXXXXX");
    if (!mkdtemp(tc.dir) || !make_cert(tc.dir, "sink")) {
        TEST_FAIL_AT("could not make a test certificate with the openssl command");
        return;
    }
    /* A tmpfs over the default bundle's directory, so the sink's certificate can stand in for
     * the system's without touching them. */
    char bundle_dir[256] = "";
    if (tc.bundle) {
        snprintf(bundle_dir, sizeof(bundle_dir), "%s", tc.bundle);
        *strrchr(bundle_dir, '/') = '\0';
    }
    const char *dirs[] = {bundle_dir[0] ? bundle_dir : NULL, NULL};
    if (!tc.bundle) fprintf(stderr, "  libcurl has no default CA bundle here: only the refusal is checked\n");
    test_with_tmpfs_over(dirs, no_ca_found_never_falls_back_to_libcurls_default, &tc);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tc.dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", tc.dir);
}

TEST(untrusted_certificate_dropped_at_once_not_retried) {
    char dir[] = "/tmp/dds-intake-tls-XXXXXX";
    if (!mkdtemp(dir) || !make_cert(dir, "sink") || !make_cert(dir, "other")) {
        TEST_FAIL_AT("could not make test certificates with the openssl command");
        return;
    }
    tls_sink sink;
    CHECK(tls_sink_start(&sink, dir, "sink"));
    char other[64];
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    ctx t;
    ctx_init(&t);
    t.cfg.ca_file = other; /* a bundle, just not the one that signed the sink */
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, https_url_to(sink.port, "/api/v2/series"), "x", 1, "zstd", 1));
    LOOP_UNTIL(&t, t.done[0].calls == 1, 5000);
    spin(&t, 200);
    CHECK_EQ_INT(t.done[0].calls, 1);
    CHECK_EQ_INT(CNT(&t, dropped), 1);
    CHECK_EQ_INT(CNT(&t, retried), 0);
    CHECK_MSG(has_error(&t, "certificate"), "errors: %d, first: %s", t.nerrors, t.nerrors ? t.errors[0] : "");
    /* One line, whatever the TLS backend put in its error text (mbedTLS ends it with a newline). */
    for (int i = 0; i < t.nerrors && i < 16; i++) CHECK_MSG(!strpbrk(t.errors[i], "\r\n"), "\"%s\"", t.errors[i]);
    CHECK(!tls_sink_saw(&sink, "POST /api/v2/series"));
    ctx_free(&t);

    /* tls_verify off (DD_SKIP_SSL_VALIDATION): no CA needed, the request goes through. */
    ctx_init(&t);
    t.cfg.tls_verify = false;
    CHECK(ctx_start(&t));
    dds__intake_submit(t.in, mk(&t, 0, DDS__PK_SERIES, https_url_to(sink.port, "/api/v2/series"), "x", 1, "zstd", 1));
    LOOP_UNTIL(&t, tls_sink_saw(&sink, "POST /api/v2/series"), 5000);
    CHECK(tls_sink_saw(&sink, "POST /api/v2/series"));
    ctx_free(&t);
    tls_sink_stop(&sink);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "  could not remove %s\n", dir);
}

/* Runs last: every line any test logged, at every level. */
TEST(api_key_never_logged) {
    pthread_mutex_lock(&log_mu);
    if (getenv("TEST_INTAKE_SHOW_LOG"))
        for (size_t i = 0; i < log_n; i++) fprintf(stderr, "  log: %s\n", log_lines[i]);
    CHECK(log_n > 10);  /* the other tests did log: the check below is not vacuous */
    for (size_t i = 0; i < log_n; i++) CHECK_MSG(strstr(log_lines[i], KEY) == NULL, "key in log line \"%s\"", log_lines[i]);
    pthread_mutex_unlock(&log_mu);
}

int main(void) {
    /* Both allocators must be replaced before either library allocates anything. */
    inject_thread = pthread_self();
    event_set_mem_functions(hook_malloc, hook_realloc, hook_free);
    curl_global_init_mem(CURL_GLOBAL_DEFAULT, hook_malloc, hook_free, hook_realloc, hook_strdup, hook_calloc);
    /* A proxy from the environment would swallow the test traffic: loopback must bypass it. */
    char proxy_env[64];
    snprintf(proxy_env, sizeof(proxy_env), "http://127.0.0.1:%u", dead_port());
    setenv("http_proxy", proxy_env, 1);
    setenv("ALL_PROXY", proxy_env, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    dds_set_log_fn(capture_log, NULL);

    RUN(success_202_headers_body_counters);
    RUN(no_api_key_no_header);
    RUN(retry_500_then_202);
    RUN(retry_429_and_408);
    RUN(retry_after_connection_closed_mid_request);
    RUN(large_body_sent_without_expect);
    RUN(retry_after_timeout);
    RUN(drop_403_reports_key_never_retries);
    RUN(proxied_403_goes_to_the_client_not_to_the_user);
    RUN(retry_now_skips_the_backoff);
    RUN(drop_413_and_400);
    RUN(connection_refused_retried_then_abandoned);
    RUN(retry_queue_bound_drops_oldest);
    RUN(max_in_flight_respected);
    RUN(send_queue_bound_with_a_slow_intake);
    RUN(send_queue_alone_takes_one_oversized_payload);
    RUN(nothing_lost_when_the_intake_is_a_little_slow);
    RUN(dry_run_writes_lines);
    RUN(configured_proxy_carries_every_request);
    RUN(free_with_requests_in_flight);
    RUN(allocation_failures_never_crash_or_lose_track);
    RUN(no_ca_found_fails_https_even_where_libcurl_would_trust);
    RUN(untrusted_certificate_dropped_at_once_not_retried);
    RUN(api_key_never_logged);

    dds_set_log_fn(NULL, NULL);
    for (size_t i = 0; i < log_n; i++) free(log_lines[i]);
    free(log_lines);
    curl_global_cleanup();
    return TEST_REPORT();
}
