/* listener.c - in: HTTP/1.1 requests on 127.0.0.1 (or 0.0.0.0):DD_LOGS_PORT. Out: the entries of
 * each valid POST /v1/input body, queued in the batcher, and a short answer (200 ok, 400 with the
 * reason, 404, 405, 411, 413). Never blocks the loop; a bad body never queues any of its entries. */
#include "logs/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/tcp.h"
#include "error.h"
#include "logs/json.h"

#define INPUT_PATH "/v1/input"
/* Log forwarders send a few short headers; this bounds what a connection can make us hold
 * before its body is considered (evhttp answers 413 past it). */
#define MAX_HEADERS_BYTES (64 * 1024)

struct dds__logs_listener {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    dds__logs_listener_config cfg;
    dds__logs_batcher *batcher;
    dds__logs_counters *c;
    uint16_t port;
    dds__ratelimit rl_reject;
};

static void reply(struct evhttp_request *req, int status, const char *text, bool close_conn, const char *allow) {
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (allow) evhttp_add_header(oh, "Allow", allow);
    if (close_conn) evhttp_add_header(oh, "Connection", "close");
    evhttp_add_header(oh, "Content-Type", "text/plain; charset=utf-8");
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    /* evhttp 2.1 writes a body for HEAD too, which the client would read as the start of the
     * next response on this connection. */
    size_t len = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD ? 0 : strlen(text);
    if (len && evbuffer_add(out, text, len) != 0) status = 503; /* a 200 without "ok" would read as success */
    evhttp_send_reply(req, status, NULL, NULL);
}

static void reject(dds__logs_listener *l, struct evhttp_request *req, int status, const char *why, bool close_conn,
                   const char *allow) {
    dds__counter_add(&l->c->rejected, 1);
    uint64_t skipped;
    if (dds__ratelimit_allow(&l->rl_reject, dds__mono_ms(), &skipped))
        dds__log_warn(l->cfg.log, "logs agent: request answered %d: %s (%llu more rejected since the last message)",
                      status, why, (unsigned long long)skipped);
    reply(req, status, why, close_conn, allow);
}

/* evhttp reads a request without Content-Length and without chunked framing as having no body
 * (RFC 7230 3.3.3): refuse it rather than answer for a body we never saw. */
static bool length_missing(struct evhttp_request *req) {
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    if (evhttp_find_header(h, "Content-Length")) return false;
    const char *te = evhttp_find_header(h, "Transfer-Encoding");
    return !(te && strcasecmp(te, "chunked") == 0);
}

static void queue_entry(void *user, const char *entry, size_t len) {
    dds__logs_batcher_add(user, entry, len);
}

static void on_request(struct evhttp_request *req, void *arg) {
    dds__logs_listener *l = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    if (!path || strcmp(path, INPUT_PATH) != 0) {
        reject(l, req, 404, "not found", false, NULL);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reject(l, req, 405, "method not allowed", false, "POST");
        return;
    }
    if (length_missing(req)) {
        /* Whatever follows is unframed: close rather than read it as the next request. */
        reject(l, req, 411, "Content-Length required", true, NULL);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (!body) {
        reply(req, 503, "out of memory", false, NULL);
        return;
    }
    char why[DDS__LOGS_JSON_WHY_MAX];
    if (dds__logs_json_entries(body, len, queue_entry, l->batcher, why) < 0) {
        reject(l, req, 400, why, false, NULL);
        return;
    }
    dds__counter_add(&l->c->requests, 1);
    reply(req, 200, "ok", false, NULL);
}

static int bind_tcp(dds__logs_listener *l, int *fd_out, dds_error *err) {
    const char *host = l->cfg.non_local ? "0.0.0.0" : "127.0.0.1";
    if (l->cfg.port < 0 || l->cfg.port > 65535)
        return dds__error_set(err, DDS_ERR_LOGS_AGENT_START, "cannot bind TCP %s:%d: port must be 0-65535", host,
                              (int)l->cfg.port);
    int fd = dds__tcp_listen(l->cfg.non_local, l->cfg.port, &l->port);
    if (fd < 0)
        return dds__error_set(err, DDS_ERR_LOGS_AGENT_START, "cannot bind TCP %s:%d: %s", host, (int)l->cfg.port,
                              strerror(-fd));
    *fd_out = fd;
    return 0;
}

dds__logs_listener *dds__logs_listener_new(struct event_base *base, const dds__logs_listener_config *cfg,
                                           dds__logs_batcher *batcher, dds__logs_counters *counters, dds_error *err) {
    int fd = -1;
    dds__logs_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    l->base = base;
    l->cfg = *cfg;
    if (!l->cfg.max_body_bytes) l->cfg.max_body_bytes = DDS__LOGS_MAX_BODY_BYTES;
    l->batcher = batcher;
    l->c = counters;
    l->rl_reject.interval_ms = 10000;
    l->http = evhttp_new(base);
    if (!l->http) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    /* Every method reaches on_request so a wrong one gets our 405, not evhttp's 501. */
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* Enforced by evhttp while reading: a declared Content-Length over it is answered 413 before
     * any body byte is read, a chunked body as soon as its chunks pass it. */
    evhttp_set_max_body_size(l->http, (ev_ssize_t)l->cfg.max_body_bytes);
    evhttp_set_max_headers_size(l->http, MAX_HEADERS_BYTES);
    evhttp_set_default_content_type(l->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(l->http, on_request, l);
    if (bind_tcp(l, &fd, err) != 0) goto fail;
    struct evconnlistener *el =
        evconnlistener_new(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (!el) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    fd = -1; /* the listener owns it now */
    l->bound = evhttp_bind_listener(l->http, el);
    if (!l->bound) {
        evconnlistener_free(el);
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    return l;
fail:
    if (fd >= 0) close(fd);
    dds__logs_listener_free(l);
    return NULL;
}

uint16_t dds__logs_listener_port(const dds__logs_listener *l) { return l ? l->port : 0; }

void dds__logs_listener_close(dds__logs_listener *l) {
    if (!l || !l->bound) return;
    evhttp_del_accept_socket(l->http, l->bound);
    l->bound = NULL;
}

void dds__logs_listener_free(dds__logs_listener *l) {
    if (!l) return;
    dds__logs_listener_close(l);
    if (l->http) evhttp_free(l->http);
    free(l);
}
