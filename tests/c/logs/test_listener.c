/* test_listener.c - the logs agent's HTTP listener (logs/listener.c) over a real socket: an
 * event_base on its own thread, a blocking raw HTTP/1.1 client written here, and a real batcher
 * behind it. Checks every answer (200, 400 with its reason, 404, 405 with Allow, 411, 413 from the
 * declared length and from a chunked body), what reaches the queue, queue drops counted through
 * HTTP, and a taken port failing as a start error. Every socket has a timeout; loopback only. */
#include "logs/listener.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>

#include "test.h"

#define IO_TIMEOUT_S 5

typedef struct rig {
    struct event_base *base;
    pthread_t th;
    dds__logs_counters c;
    dds__logs_batcher *b;
    dds__logs_listener *l;
    uint16_t port;
} rig;

static void *loop_main(void *arg) {
    event_base_loop(arg, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void rig_start(rig *r, size_t max_entries) {
    memset(r, 0, sizeof(*r));
    r->base = event_base_new();
    dds__logs_batch_config bc = {.url = "http://127.0.0.1:9/api/v2/logs", .max_queued_entries = max_entries};
    r->b = dds__logs_batcher_new(&bc, &r->c);
    dds__logs_listener_config lc = {.port = 0};
    dds_error err = {0};
    r->l = dds__logs_listener_new(r->base, &lc, r->b, &r->c, &err);
    if (!r->l) {
        fprintf(stderr, "listener: %s\n", err.message);
        abort();
    }
    r->port = dds__logs_listener_port(r->l);
    pthread_create(&r->th, NULL, loop_main, r->base);
}

static void on_break(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* Stops the loop: afterwards the batcher may be read from this thread. The break is an event,
 * not a flag: a loop that has not started yet would clear a flag set before it. */
static void rig_join(rig *r) {
    struct timeval zero = {0, 0};
    event_base_once(r->base, -1, EV_TIMEOUT, on_break, r->base, &zero);
    pthread_join(r->th, NULL);
}

static void rig_free(rig *r) {
    dds__logs_listener_free(r->l);
    dds__logs_batcher_free(r->b);
    event_base_free(r->base);
}

typedef struct resp {
    int status;
    char head[4096];
    char body[512];
} resp;

static int connect_to(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) abort();
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        p += w;
        n -= (size_t)w;
    }
}

/* One response: head up to the blank line, then Content-Length bytes of body (bounded). */
static void read_resp(int fd, resp *out) {
    memset(out, 0, sizeof(*out));
    char buf[8192];
    size_t len = 0;
    char *end = NULL;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4)) && len < sizeof(buf)) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    if (!end) return;
    size_t head_len = (size_t)(end + 4 - buf);
    size_t hl = head_len < sizeof(out->head) - 1 ? head_len : sizeof(out->head) - 1;
    memcpy(out->head, buf, hl);
    out->status = atoi(buf + 9);
    size_t clen = 0;
    const char *cl = strcasestr(out->head, "\r\nContent-Length:");
    if (cl) clen = strtoul(cl + 17, NULL, 10);
    if (clen > sizeof(out->body) - 1) clen = sizeof(out->body) - 1;
    while (len < head_len + clen) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
    }
    size_t bl = len - head_len < clen ? len - head_len : clen;
    memcpy(out->body, buf + head_len, bl);
}

static void request(uint16_t port, const char *method, const char *path, const char *body, resp *out) {
    int fd = connect_to(port);
    char head[256];
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", method, path,
                     body ? strlen(body) : 0);
    send_all(fd, head, (size_t)n);
    if (body) send_all(fd, body, strlen(body));
    read_resp(fd, out);
    close(fd);
}

static void raw_request(uint16_t port, const char *text, resp *out) {
    int fd = connect_to(port);
    send_all(fd, text, strlen(text));
    read_resp(fd, out);
    close(fd);
}

#define GOOD "[{\"message\":\"hello\",\"timestamp\":1700000000000,\"service\":\"svc\"},{\"message\":\"b\",\"timestamp\":2}]"

TEST(answers) {
    rig r;
    rig_start(&r, 0);
    resp a;
    request(r.port, "POST", "/v1/input", GOOD, &a);
    CHECK_EQ_INT(a.status, 200);
    CHECK_EQ_STR(a.body, "ok");
    request(r.port, "POST", "/v1/input?x=1", "[]", &a);
    CHECK_EQ_INT(a.status, 200);
    CHECK_EQ_STR(a.body, "ok");
    request(r.port, "POST", "/v1/input", "[{\"message\":\"m\",\"timestamp\":1.5}]", &a);
    CHECK_EQ_INT(a.status, 400);
    CHECK_EQ_STR(a.body, "entry 1: timestamp must be an integer (Unix ms)");
    request(r.port, "POST", "/v1/input", "not json", &a);
    CHECK_EQ_INT(a.status, 400);
    CHECK(strncmp(a.body, "invalid JSON", 12) == 0);
    request(r.port, "GET", "/v1/input", NULL, &a);
    CHECK_EQ_INT(a.status, 405);
    CHECK(strcasestr(a.head, "\r\nAllow: POST\r\n") != NULL);
    request(r.port, "PUT", "/v1/input", "[]", &a);
    CHECK_EQ_INT(a.status, 405);
    /* HEAD gets a head only: a second request on the same connection is answered on its own. */
    int fd = connect_to(r.port);
    const char *two = "HEAD /v1/input HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /v1/input HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n[]";
    send_all(fd, two, strlen(two));
    char buf[2048] = {0};
    size_t got = 0;
    while (got < sizeof(buf) - 1 && !strstr(buf, "\r\n\r\nok")) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    CHECK(strncmp(buf, "HTTP/1.1 405 ", 13) == 0);
    const char *second = strstr(buf + 1, "HTTP/1.1 ");
    CHECK(second && strncmp(second, "HTTP/1.1 200 ", 13) == 0);
    CHECK(strstr(buf, "method not allowed") == NULL);
    request(r.port, "POST", "/v1/other", "[]", &a);
    CHECK_EQ_INT(a.status, 404);
    request(r.port, "GET", "/", NULL, &a);
    CHECK_EQ_INT(a.status, 404);
    raw_request(r.port, "POST /v1/input HTTP/1.1\r\nHost: x\r\n\r\n", &a);
    CHECK_EQ_INT(a.status, 411);
    rig_join(&r);
    CHECK_EQ_INT(dds__counter_get(&r.c.requests), 3);
    CHECK_EQ_INT(dds__counter_get(&r.c.entries), 2);
    CHECK_EQ_INT(dds__counter_get(&r.c.rejected), 8);
    /* Only the good body's entries, as posted. */
    dds__payload *p = dds__logs_batcher_take(r.b, NULL);
    CHECK(p && !p->next);
    if (p) {
        char *s = strndup((const char *)p->body, p->body_len);
        CHECK_EQ_STR(s, "[{\"message\":\"hello\",\"timestamp\":1700000000000,\"service\":\"svc\"},{\"message\":\"b\",\"timestamp\":2}]");
        free(s);
    }
    dds__payload_free(p);
    rig_free(&r);
}

TEST(over_4_mib_is_413_while_reading) {
    rig r;
    rig_start(&r, 0);
    resp a;
    /* Declared: refused before any body byte is sent. */
    char head[256];
    snprintf(head, sizeof(head), "POST /v1/input HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
             DDS__LOGS_MAX_BODY_BYTES + 1);
    raw_request(r.port, head, &a);
    CHECK_EQ_INT(a.status, 413);
    /* Chunked: refused at the chunk size that passes the limit, before its data arrives. */
    raw_request(r.port, "POST /v1/input HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[  \r\n400001\r\n",
                &a);
    CHECK_EQ_INT(a.status, 413);
    /* Exactly 4 MiB is fine: a valid body padded with whitespace. */
    size_t n = DDS__LOGS_MAX_BODY_BYTES;
    char *body = malloc(n + 1);
    memset(body, ' ', n);
    memcpy(body, GOOD, strlen(GOOD));
    body[n] = '\0';
    request(r.port, "POST", "/v1/input", body, &a);
    CHECK_EQ_INT(a.status, 200);
    free(body);
    rig_join(&r);
    CHECK_EQ_INT(dds__counter_get(&r.c.entries), 2);
    rig_free(&r);
}

TEST(queue_drops_are_counted_and_the_request_still_ok) {
    rig r;
    rig_start(&r, 3);
    resp a;
    request(r.port, "POST", "/v1/input", GOOD, &a);
    CHECK_EQ_INT(a.status, 200);
    request(r.port, "POST", "/v1/input", GOOD, &a);
    CHECK_EQ_INT(a.status, 200);
    rig_join(&r);
    CHECK_EQ_INT(dds__counter_get(&r.c.entries), 3);
    CHECK_EQ_INT(dds__counter_get(&r.c.entries_dropped), 1);
    CHECK_EQ_INT(dds__logs_batcher_queued_entries(r.b), 3);
    rig_free(&r);
}

TEST(taken_port_is_a_start_error) {
    rig r;
    rig_start(&r, 0);
    rig_join(&r);
    dds__logs_listener_config lc = {.port = r.port};
    dds_error err = {0};
    dds__logs_listener *second = dds__logs_listener_new(r.base, &lc, r.b, &r.c, &err);
    CHECK(second == NULL);
    CHECK_EQ_INT(err.code, DDS_ERR_LOGS_AGENT_START);
    char want[128];
    snprintf(want, sizeof(want), "Failed to start logs agent: cannot bind TCP 127.0.0.1:%u: Address already in use",
             r.port);
    CHECK_EQ_STR(err.message, want);
    rig_free(&r);
}

TEST(close_stops_accepting) {
    rig r;
    rig_start(&r, 0);
    rig_join(&r);
    dds__logs_listener_close(r.l);
    dds__logs_listener_close(r.l);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(r.port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0);
    close(fd);
    rig_free(&r);
}

int main(void) {
    evthread_use_pthreads();
    RUN(answers);
    RUN(over_4_mib_is_413_while_reading);
    RUN(queue_drops_are_counted_and_the_request_still_ok);
    RUN(taken_port_is_a_start_error);
    RUN(close_stops_accepting);
    return TEST_REPORT();
}
