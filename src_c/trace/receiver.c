/* receiver.c - in: HTTP/1.1 requests from tracers on 127.0.0.1 (or 0.0.0.0) and an optional Unix
 * socket. Out: trace, stats and DogStatsD bodies handed to the callbacks, proxied requests handed
 * to the intake, and every answer stamped with Datadog-Agent-Version and Datadog-Agent-State.
 * Must never block the loop: proxies answer from the intake's on_done, never by waiting. */
#include "trace/receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/jsonw.h"
#include "common/sha256.h"
#include "common/tcp.h"
#include "error.h"
#include "trace/peer_tags.h"

#define DEFAULT_MAX_BODY_BYTES (25u * 1024 * 1024)
/* Tracers send a dozen short headers; 64 KiB bounds what one connection can make us hold before
 * a body is even considered (evhttp answers 413 past it). */
#define MAX_HEADERS_BYTES (64 * 1024)
/* DNS allows 253 bytes for a whole name; the subdomain is only the part before <site>. */
#define EVP_SUBDOMAIN_MAX 128
#define DEFAULT_PROXY_TIMEOUT_MS 30000
#define RATE_BY_SERVICE_BODY "{\"rate_by_service\":{\"service:,env:\":1}}"

typedef enum route_kind {
    R_INFO,
    R_TRACES,
    R_STATS,
    R_DOGSTATSD,
    R_PROFILING,
    R_PIPELINE_STATS,
    R_TELEMETRY,
    R_EVP,
} route_kind;

typedef struct route {
    const char *path;
    bool prefix;            /* path ends with '/' and the rest is forwarded */
    route_kind kind;
    dds__trace_format fmt;  /* R_TRACES only */
    uint16_t methods;       /* evhttp_cmd_type bits */
} route;

#define M_WRITE (EVHTTP_REQ_PUT | EVHTTP_REQ_POST)

/* PROTOCOL.md section 4, in the order /info lists them. */
static const route ROUTES[] = {
    {"/v0.3/traces", false, R_TRACES, DDS__TRACE_V04, M_WRITE},
    {"/v0.4/traces", false, R_TRACES, DDS__TRACE_V04, M_WRITE},
    {"/v0.5/traces", false, R_TRACES, DDS__TRACE_V05, M_WRITE},
    {"/v0.7/traces", false, R_TRACES, DDS__TRACE_V07, M_WRITE},
    {"/v0.6/stats", false, R_STATS, 0, M_WRITE},
    {"/profiling/v1/input", false, R_PROFILING, 0, EVHTTP_REQ_POST},
    {"/v0.1/pipeline_stats", false, R_PIPELINE_STATS, 0, EVHTTP_REQ_POST},
    {"/telemetry/proxy/", true, R_TELEMETRY, 0, EVHTTP_REQ_POST},
    {"/evp_proxy/v2/", true, R_EVP, 0, EVHTTP_REQ_POST},
    {"/evp_proxy/v3/", true, R_EVP, 0, EVHTTP_REQ_POST},
    {"/evp_proxy/v4/", true, R_EVP, 0, EVHTTP_REQ_POST},
    {"/dogstatsd/v2/proxy", false, R_DOGSTATSD, 0, EVHTTP_REQ_POST},
    {"/info", false, R_INFO, 0, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD},
};
#define N_ROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))

/* One proxied request waiting for the intake. Owned by the payload's lifecycle: created before
 * the submit, freed in on_done (which the intake calls exactly once, also when it is freed), so
 * on_done always has it. The client side can vanish first: req and evcon are then NULL, and r is
 * NULL once the receiver is freed. content_type/encoding are pointed to by the payload (its
 * fields are "static" strings), hence they live here until on_done. */
typedef struct proxy_call {
    dds__receiver *r;
    struct evhttp_request *req;
    struct evhttp_connection *evcon;
    struct event *deadline;          /* proxy_timeout_ms; freed once the client is answered */
    struct proxy_call *prev, *next;  /* in r->pending */
    char *content_type, *content_encoding;
} proxy_call;

/* Loop thread only (built on the caller's thread before the loop serves it). */
struct dds__receiver {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *tcp_bound, *unix_bound;
    dds__receiver_config cfg;        /* strings point to the owned copies below */
    char *default_env, *agent_version, *profiling_url, *pipeline_stats_url, *telemetry_base_url,
        *evp_base_url, *site, *unix_path;
    dev_t unix_dev;                  /* identity of the socket file we created, so close removes */
    ino_t unix_ino;                  /* ours and never a file someone put there since */
    bool unix_file;
    dds__receiver_handlers h;
    dds__receiver_counters *c;
    dds__receiver_counters own_counters;
    uint16_t port;
    char *info_body;
    size_t info_len;
    char state_hex[DDS__SHA256_HEX_LEN + 1];
    /* Both agent headers as raw lines, for responses evhttp writes on its own (see on_output). */
    char *stamp;
    size_t stamp_len;
    /* What is being written to a connection right now, for on_output: evhttp's own answer
     * (stamp and count it), ours with the agent headers (leave it alone), or ours without them
     * because adding them failed (stamp it, already counted). */
    enum { OUT_NATIVE, OUT_OURS_STAMPED, OUT_OURS_UNSTAMPED } writing;
    proxy_call *pending;
    dds__ratelimit rl_reject, rl_not_found, rl_proxy;
};

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                              */

static char *dup_or_null(const char *s, bool *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = true;
    return d;
}

/* Proxy targets are joined with "/" + rest: a trailing slash in the configuration would double it. */
static char *dup_url(const char *s, bool *oom) {
    char *d = dup_or_null(s, oom);
    if (!d) return NULL;
    size_t n = strlen(d);
    while (n > 0 && d[n - 1] == '/') d[--n] = '\0';
    return d;
}

/* The version lands in a raw header line (on_output): nothing may break the line. */
static void sanitize_header_value(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f) *s = '_';
}

static bool header_value_ok(const char *v) {
    for (; *v; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || (unsigned char)*v == 0x7f) return false;
    return true;
}

static const char *method_name(enum evhttp_cmd_type m) {
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

static void allow_header(char *out, size_t cap, uint16_t methods) {
    out[0] = '\0';
    size_t n = 0;
    for (uint16_t bit = 1; bit && bit <= EVHTTP_REQ_PATCH; bit = (uint16_t)(bit << 1)) {
        if (!(methods & bit)) continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", method_name((enum evhttp_cmd_type)bit));
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

static const char *request_path(struct evhttp_request *req) {
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *p = u ? evhttp_uri_get_path(u) : NULL;
    return p && *p ? p : "/";
}

/* One line per limiter interval; the count of lines skipped meanwhile rides on the next one. */
__attribute__((format(printf, 4, 5)))
static void log_limited(const dds__receiver *r, dds__ratelimit *rl, dds_log_level lvl, const char *fmt, ...) {
    uint64_t skipped = 0;
    if (!DDS__LOG_ENABLED(r->cfg.log, lvl) || !dds__ratelimit_allow(rl, dds__mono_ms(), &skipped)) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (skipped) dds__log(r->cfg.log, lvl, "%s (%llu similar since the last report)", msg, (unsigned long long)skipped);
    else dds__log(r->cfg.log, lvl, "%s", msg);
}

/* ---------------------------------------------------------------------------------------- */
/* Answering                                                                                  */

static void count_answer(dds__receiver *r, int status) {
    dds__counter_add(&r->c->requests, 1);
    if (status >= 400 && status < 500) dds__counter_add(&r->c->rejected, 1);
}

/* Every answer we write goes through here. The agent headers go in as ordinary headers; when
 * that fails (allocation), on_output writes them raw instead, so they are never half there. */
static void reply(dds__receiver *r, struct evhttp_request *req, int status, const char *content_type,
                  const void *body, size_t len, bool close_conn, const char *allow) {
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    bool stamped = evhttp_add_header(oh, "Datadog-Agent-Version", r->agent_version) == 0 &&
                   evhttp_add_header(oh, "Datadog-Agent-State", r->state_hex) == 0;
    if (!stamped) {
        evhttp_remove_header(oh, "Datadog-Agent-Version");
        evhttp_remove_header(oh, "Datadog-Agent-State");
    }
    if (allow) evhttp_add_header(oh, "Allow", allow);
    if (close_conn) evhttp_add_header(oh, "Connection", "close");
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    /* evhttp 2.1 writes whatever body it is given, HEAD or not: a HEAD answer must stay a head,
     * or the body would be read as the start of the next response on this connection. */
    bool head_only = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    if (len > 0 && !head_only && evbuffer_add(out, body, len) != 0) {
        /* A 200 without its body would be read as success with nothing in it. */
        status = 503;
        len = 0;
    }
    if (len > 0 && content_type) evhttp_add_header(oh, "Content-Type", content_type);
    /* evhttp adds it too, but ignores its own allocation failure there and would send a body
     * nobody can delimit; set here first, either attempt succeeding is enough. */
    char clen[24];
    snprintf(clen, sizeof(clen), "%zu", len);
    evhttp_add_header(oh, "Content-Length", clen);
    count_answer(r, status);
    /* evhttp writes the whole head synchronously inside evhttp_send_reply. */
    r->writing = stamped ? OUT_OURS_STAMPED : OUT_OURS_UNSTAMPED;
    evhttp_send_reply(req, status, NULL, NULL);
    r->writing = OUT_NATIVE;
}

/* Transient by nature: 503 tells a tracer to try again later rather than drop its data as bad. */
static void reply_oom(dds__receiver *r, struct evhttp_request *req) {
    static const char msg[] = "out of memory\n";
    log_limited(r, &r->rl_reject, DDS_LOG_ERROR, "trace receiver: out of memory answering %s %.200s",
                method_name(evhttp_request_get_command(req)), request_path(req));
    reply(r, req, 503, "text/plain; charset=utf-8", msg, sizeof(msg) - 1, false, NULL);
}

/* An error answer with a one-line explanation, logged at a bounded rate. 404s come from tracers
 * probing endpoints we do not serve (dd-trace-js polls /v0.7/config every few seconds): debug. */
static void reject(dds__receiver *r, struct evhttp_request *req, int status, const char *why, bool close_conn,
                   const char *allow) {
    bool not_found = status == 404;
    log_limited(r, not_found ? &r->rl_not_found : &r->rl_reject, not_found ? DDS_LOG_DEBUG : DDS_LOG_WARN,
                "trace receiver: %s %.200s answered %d: %s", method_name(evhttp_request_get_command(req)),
                request_path(req), status, why);
    char line[256];
    int n = snprintf(line, sizeof(line), "%s\n", why);
    reply(r, req, status, "text/plain; charset=utf-8", line, n > 0 ? (size_t)n : 0, close_conn, allow);
}

/* evhttp answers some requests itself and never calls us: 413 when a body or the headers exceed
 * their limit (it stops reading there, which is the point), 400 for a malformed request, 417.
 * Its error page clears the output headers, so the agent headers are added here instead: this
 * callback watches each connection's output buffer, and evhttp writes a response's status line
 * with a single add, before anything else of that response. A status line not already followed
 * by our headers gets the two header lines appended right behind it. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg) {
    dds__receiver *r = arg;
    if (r->writing == OUT_OURS_STAMPED || info->n_added < 14 || info->n_added > 128) return;
    size_t total = evbuffer_get_length(buf);
    if (info->n_added > total) return;
    char line[129];
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(buf, &pos, total - info->n_added, EVBUFFER_PTR_SET) != 0) return;
    ev_ssize_t got = evbuffer_copyout_from(buf, &pos, line, info->n_added);
    if (got != (ev_ssize_t)info->n_added) return;
    line[got] = '\0';
    /* "HTTP/1.x NNN reason\r\n" and nothing else: a header line, a body or "100 Continue\r\n\r\n"
     * never matches. */
    if (strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' || line[12] != ' ') return;
    if (line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9') return;
    char *crlf = strstr(line, "\r\n");
    if (!crlf || crlf[2] != '\0') return;
    int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (status < 200) return;
    evbuffer_add(buf, r->stamp, r->stamp_len);
    if (r->writing == OUT_OURS_UNSTAMPED) return;
    count_answer(r, status);
    if (status >= 400)
        log_limited(r, &r->rl_reject, DDS_LOG_WARN, "trace receiver: request answered %d by the HTTP layer (%s)",
                    status, status == 413 ? "body over max_request_bytes, or headers too large" : "malformed request");
}

/* Our bufferevent for each accepted connection, only to watch its output (on_output). When this
 * fails evhttp makes its own, and only the stamp on its own error pages is lost. */
static struct bufferevent *make_bev(struct event_base *base, void *arg) {
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev && !evbuffer_add_cb(bufferevent_get_output(bev), on_output, arg)) {
        bufferevent_free(bev);
        return NULL;
    }
    return bev;
}

/* ---------------------------------------------------------------------------------------- */
/* Request bodies and tracer headers                                                          */

/* The whole body as one contiguous run (evhttp has already read it, within the limit). */
static bool body_of(struct evhttp_request *req, const uint8_t **out, size_t *len) {
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    *len = n;
    if (n == 0) {
        *out = (const uint8_t *)"";
        return true;
    }
    *out = evbuffer_pullup(in, -1);
    return *out != NULL;
}

static dds__slice header_slice(const struct evkeyvalq *h, const char *name) {
    return dds__slice_cstr(evhttp_find_header(h, name));
}

static bool header_flag(const struct evkeyvalq *h, const char *name) {
    const char *v = evhttp_find_header(h, name);
    return v && *v && strcasecmp(v, "false") != 0 && strcmp(v, "0") != 0;
}

static void tracer_headers(struct evhttp_request *req, dds__trace_headers *t) {
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    t->lang = header_slice(h, "Datadog-Meta-Lang");
    t->lang_version = header_slice(h, "Datadog-Meta-Lang-Version");
    t->lang_interpreter = header_slice(h, "Datadog-Meta-Lang-Interpreter");
    t->tracer_version = header_slice(h, "Datadog-Meta-Tracer-Version");
    t->container_id = header_slice(h, "Datadog-Container-ID");
    t->trace_count = header_slice(h, "X-Datadog-Trace-Count");
    t->client_computed_top_level = header_flag(h, "Datadog-Client-Computed-Top-Level");
    t->client_computed_stats = header_flag(h, "Datadog-Client-Computed-Stats");
    t->request = req;
}

/* A kept body is an evbuffer of our own that the request's chains moved into (evbuffer_add_buffer
 * relinks chains, it does not copy). It has no callbacks and no lock: one thread at a time. */
dds__kept_body *dds__receiver_keep_body(const dds__trace_headers *h, const uint8_t **body) {
    if (!h || !h->request) return NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(h->request);
    if (evbuffer_get_length(in) == 0) return NULL;
    struct evbuffer *own = evbuffer_new();
    if (!own) return NULL;
    if (evbuffer_add_buffer(own, in) != 0) {
        evbuffer_free(own);
        return NULL;
    }
    /* body_of pulled the body up into one chain: this finds it where it is, without copying. */
    const uint8_t *p = evbuffer_pullup(own, -1);
    if (!p) {
        evbuffer_add_buffer(in, own);
        evbuffer_free(own);
        return NULL;
    }
    *body = p;
    return (dds__kept_body *)own;
}

void dds__receiver_kept_body_free(dds__kept_body *k) {
    if (k) evbuffer_free((struct evbuffer *)k);
}

/* evhttp reads a request without Content-Length and without chunked framing as having no body
 * (RFC 7230 3.3.3), so the handler would see an empty payload where the client sent one. */
static bool length_missing(struct evhttp_request *req) {
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    if (evhttp_find_header(h, "Content-Length")) return false;
    const char *te = evhttp_find_header(h, "Transfer-Encoding");
    return !(te && strcasecmp(te, "chunked") == 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Local endpoints                                                                            */

static void serve_traces(dds__receiver *r, struct evhttp_request *req, dds__trace_format fmt) {
    const uint8_t *body;
    size_t len;
    if (!body_of(req, &body, &len)) {
        reply_oom(r, req);
        return;
    }
    dds__trace_headers th;
    tracer_headers(req, &th);
    int status = r->h.traces(r->h.user, fmt, body, len, &th);
    switch (status) {
    case 200:
        reply(r, req, 200, "application/json", RATE_BY_SERVICE_BODY, sizeof(RATE_BY_SERVICE_BODY) - 1, false, NULL);
        return;
    case 400: reject(r, req, 400, "could not decode the traces payload", false, NULL); return;
    case 413: reject(r, req, 413, "traces payload too large", false, NULL); return;
    default:
        if (status >= 400 && status < 600) {
            reject(r, req, status, "traces payload refused", false, NULL);
            return;
        }
        reply(r, req, 500, "text/plain; charset=utf-8", "internal error\n", 15, false, NULL);
        return;
    }
}

static void serve_stats(dds__receiver *r, struct evhttp_request *req) {
    const uint8_t *body;
    size_t len;
    if (!body_of(req, &body, &len)) {
        reply_oom(r, req);
        return;
    }
    dds__trace_headers th;
    tracer_headers(req, &th);
    int status = r->h.stats(r->h.user, body, len, &th);
    if (status == 200) reply(r, req, 200, NULL, NULL, 0, false, NULL);
    else if (status >= 400 && status < 500) reject(r, req, status, "could not decode the stats payload", false, NULL);
    else reply(r, req, 500, "text/plain; charset=utf-8", "internal error\n", 15, false, NULL);
}

static void serve_dogstatsd(dds__receiver *r, struct evhttp_request *req) {
    const uint8_t *body;
    size_t len;
    if (!body_of(req, &body, &len)) {
        reply_oom(r, req);
        return;
    }
    r->h.dogstatsd(r->h.user, (const char *)body, len);
    reply(r, req, 202, "application/json", "{}", 2, false, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Proxies                                                                                    */

/* Request headers a proxy forwards, matched case-insensitively by exact name or by prefix. The
 * rest stays here: cookies, authorization, hop-by-hop headers, Host. Content-Type and
 * Content-Encoding travel in the payload's own fields (the intake sets them). */
static const char *const FORWARD_EXACT[] = {
    "DD-EVP-ORIGIN", "DD-EVP-ORIGIN-VERSION", "Datadog-Container-ID", "Datadog-Entity-ID",
    "Datadog-External-Env", "DD-Request-Id", "DD-Session-ID", "DD-Root-Session-ID", "DD-Parent-Session-ID",
};
static const char *const FORWARD_PREFIX[] = {
    "DD-Telemetry-", "DD-Client-Library-", "X-Datadog-", "Datadog-Meta-",
};

static bool forwarded_header(const char *name) {
    /* Never a credential, whatever prefix it hides behind (DD-API-KEY, X-Datadog-Api-Key, an
     * application key): the intake adds our own API key. Also not our routing header. */
    if (strcasestr(name, "key") || strcasecmp(name, "X-Datadog-EVP-Subdomain") == 0) return false;
    for (size_t i = 0; i < sizeof(FORWARD_EXACT) / sizeof(FORWARD_EXACT[0]); i++)
        if (strcasecmp(name, FORWARD_EXACT[i]) == 0) return true;
    for (size_t i = 0; i < sizeof(FORWARD_PREFIX) / sizeof(FORWARD_PREFIX[0]); i++)
        if (strncasecmp(name, FORWARD_PREFIX[i], strlen(FORWARD_PREFIX[i])) == 0) return true;
    return false;
}

/* "Name: value\n" lines for the payload, or NULL when none; *oom on allocation failure. */
static char *forward_headers(struct evhttp_request *req, bool *oom) {
    dds__buf b;
    dds__buf_init(&b);
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    for (const struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        if (!forwarded_header(kv->key) || !header_value_ok(kv->value)) continue;
        dds__buf_puts(&b, kv->key);
        dds__buf_puts(&b, ": ");
        dds__buf_puts(&b, kv->value);
        dds__buf_putc(&b, '\n');
    }
    dds__buf_putc(&b, '\0');
    if (b.oom || b.len == 1) {
        if (b.oom) *oom = true;  /* never cleared here: the caller accumulates failures in it */
        dds__buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)dds__buf_steal(&b, &len);
}

/* What follows a proxy prefix becomes the upstream path. Only RFC 3986 path characters minus
 * '%' (so no encoded "..") and no ".." at all: the client must not walk out of the intake's API. */
static bool rest_path_ok(const char *s) {
    if (strstr(s, "..")) return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (!strchr("-._~/:@!$&'()*+,;=", c)) return false;
    }
    return true;
}

/* The query is passed through as is: pchar, '/', '?', and percent escapes (harmless there). */
static bool query_ok(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (!strchr("-._~/:@!$&'()*+,;=?%", c)) return false;
    }
    return true;
}

static bool subdomain_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > EVP_SUBDOMAIN_MAX || s[0] == '.' || s[0] == '-' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static void proxy_unlink(proxy_call *pc) {
    dds__receiver *r = pc->r;
    if (!r) return;
    if (pc->prev) pc->prev->next = pc->next;
    else r->pending = pc->next;
    if (pc->next) pc->next->prev = pc->prev;
    pc->prev = pc->next = NULL;
}

/* The client will not be answered from here on (answered, gone, or the receiver is going). */
static void proxy_detach_client(proxy_call *pc) {
    if (pc->evcon) evhttp_connection_set_closecb(pc->evcon, NULL, NULL);
    pc->req = NULL;
    pc->evcon = NULL;
    if (pc->deadline) event_free(pc->deadline);
    pc->deadline = NULL;
}

static void proxy_call_free(proxy_call *pc) {
    if (pc->deadline) event_free(pc->deadline);
    free(pc->content_type);
    free(pc->content_encoding);
    free(pc);
}

/* evhttp frees the connection and its pending request together (client gone, receiver freed). */
static void on_client_gone(struct evhttp_connection *evcon, void *arg) {
    (void)evcon;
    proxy_detach_client(arg);
}

static void proxy_answer(proxy_call *pc, int status, const uint8_t *resp, size_t resp_len, int upstream_status) {
    dds__receiver *r = pc->r;
    struct evhttp_request *req = pc->req;
    proxy_detach_client(pc);
    if (status == 502 || status == 504) {
        dds__counter_add(&r->c->proxy_failed, 1);
        log_limited(r, &r->rl_proxy, DDS_LOG_WARN,
                    "trace receiver: proxied request failed (upstream HTTP %d), answered %d", upstream_status, status);
    }
    const char *ct = resp_len > 0 && (resp[0] == '{' || resp[0] == '[') ? "application/json" : "text/plain";
    reply(r, req, status, ct, resp, resp_len, false, NULL);
}

/* The intake is still at it (retrying, or a slow upstream): the client gets 504 now; the
 * proxy_call waits for on_done, which then only frees it. */
static void on_proxy_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    proxy_call *pc = arg;
    static const char msg[] = "upstream did not answer in time\n";
    if (pc->r && pc->req) proxy_answer(pc, 504, (const uint8_t *)msg, sizeof(msg) - 1, 0);
}

/* The intake is done (sent, dropped or abandoned): the client gets the upstream's status and
 * body, 502 when there was none. Ownership of pc ends here. */
static void on_proxy_done(void *user, int http_status, const uint8_t *resp, size_t resp_len) {
    proxy_call *pc = user;
    if (pc->r && pc->req) {
        static const char msg[] = "upstream request failed\n";
        if (http_status >= 200 && http_status <= 599)
            proxy_answer(pc, http_status, resp, resp_len, http_status);
        else
            proxy_answer(pc, 502, (const uint8_t *)msg, sizeof(msg) - 1, http_status);
    }
    proxy_unlink(pc);
    proxy_call_free(pc);
}

/* Takes url. The body is copied: the request (and its buffer) may be gone before the intake
 * is done with the payload. */
static void start_proxy(dds__receiver *r, struct evhttp_request *req, char *url) {
    proxy_call *pc = NULL;
    uint8_t *body = NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    bool oom = !url;
    if (!oom && len > 0) {
        body = malloc(len);
        oom = !body || evbuffer_copyout(in, body, len) != (ev_ssize_t)len;
    }
    if (!oom) pc = calloc(1, sizeof(*pc));
    if (!pc) goto oom;
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ct = evhttp_find_header(h, "Content-Type");
    const char *ce = evhttp_find_header(h, "Content-Encoding");
    if (ct && header_value_ok(ct)) pc->content_type = dup_or_null(ct, &oom);
    if (ce && header_value_ok(ce)) pc->content_encoding = dup_or_null(ce, &oom);
    char *extra = forward_headers(req, &oom);
    if (oom) {
        free(extra);
        goto oom;
    }
    dds__payload *p = dds__payload_new(DDS__PK_PROXY, url, body, len, pc->content_type, pc->content_encoding, 0);
    url = NULL;
    body = NULL;
    if (!p) {
        free(extra);
        goto oom;
    }
    p->extra_headers = extra;
    pc->deadline = evtimer_new(r->base, on_proxy_deadline, pc);
    uint32_t ms = r->cfg.proxy_timeout_ms ? r->cfg.proxy_timeout_ms : DEFAULT_PROXY_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    if (!pc->deadline || evtimer_add(pc->deadline, &tv) != 0) {
        dds__payload_free(p);  /* on_done not set yet: frees url, body and extra only */
        goto oom;
    }
    p->on_done = on_proxy_done;
    p->done_user = pc;
    pc->r = r;
    pc->req = req;
    pc->evcon = evhttp_request_get_connection(req);
    if (pc->evcon) evhttp_connection_set_closecb(pc->evcon, on_client_gone, pc);
    pc->next = r->pending;
    if (r->pending) r->pending->prev = pc;
    r->pending = pc;
    dds__counter_add(&r->c->proxied, 1);
    dds__intake_submit(r->cfg.intake, p);
    return;
oom:
    free(url);
    free(body);
    if (pc) proxy_call_free(pc);
    reply_oom(r, req);
}

/* base + "/" + rest [+ "?" + query]; NULL on allocation failure. */
static char *join_url(const char *base, const char *rest, const char *query) {
    dds__buf b;
    dds__buf_init(&b);
    dds__buf_puts(&b, base);
    dds__buf_putc(&b, '/');
    dds__buf_puts(&b, rest);
    if (query && *query) {
        dds__buf_putc(&b, '?');
        dds__buf_puts(&b, query);
    }
    dds__buf_putc(&b, '\0');
    if (b.oom) {
        dds__buf_free(&b);
        return NULL;
    }
    size_t len;
    return (char *)dds__buf_steal(&b, &len);
}

static void serve_proxy(dds__receiver *r, struct evhttp_request *req, const route *rt, const char *path) {
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *query = u ? evhttp_uri_get_query(u) : NULL;
    const char *rest = path + strlen(rt->path);
    char *url = NULL;
    switch (rt->kind) {
    case R_PROFILING: url = strdup(r->profiling_url); break;
    case R_PIPELINE_STATS: url = strdup(r->pipeline_stats_url); break;
    case R_TELEMETRY:
        if (!rest_path_ok(rest) || (query && !query_ok(query))) {
            reject(r, req, 400, "invalid telemetry proxy path", false, NULL);
            return;
        }
        url = join_url(r->telemetry_base_url, rest, query);
        break;
    case R_EVP: {
        const char *sub = evhttp_find_header(evhttp_request_get_input_headers(req), "X-Datadog-EVP-Subdomain");
        if (!sub || !subdomain_ok(sub)) {
            reject(r, req, 400, sub ? "invalid X-Datadog-EVP-Subdomain" : "missing X-Datadog-EVP-Subdomain", false,
                   NULL);
            return;
        }
        if (!rest_path_ok(rest) || (query && !query_ok(query))) {
            reject(r, req, 400, "invalid EVP proxy path", false, NULL);
            return;
        }
        /* The subdomain is required even with an override URL: the request is the same either
         * way, and a tracer that omits it is broken against a real agent too. */
        if (r->evp_base_url) {
            url = join_url(r->evp_base_url, rest, query);
        } else {
            char *origin = NULL;
            if (asprintf(&origin, "https://%s.%s", sub, r->site) >= 0) {
                url = join_url(origin, rest, query);
                free(origin);
            }
        }
        break;
    }
    default: break;
    }
    start_proxy(r, req, url);
}

/* ---------------------------------------------------------------------------------------- */
/* Routing                                                                                    */

static bool route_served(const dds__receiver *r, const route *rt) {
    bool proxy_ok = r->cfg.intake != NULL;
    switch (rt->kind) {
    case R_INFO: return true;
    case R_TRACES: return r->h.traces != NULL;
    case R_STATS: return r->h.stats != NULL;
    case R_DOGSTATSD: return r->h.dogstatsd != NULL;
    case R_PROFILING: return proxy_ok && r->profiling_url;
    case R_PIPELINE_STATS: return proxy_ok && r->pipeline_stats_url;
    case R_TELEMETRY: return proxy_ok && r->telemetry_base_url;
    case R_EVP: return proxy_ok && (r->evp_base_url || (r->site && *r->site));
    }
    return false;
}

static const route *find_route(const dds__receiver *r, const char *path) {
    for (size_t i = 0; i < N_ROUTES; i++) {
        const route *rt = &ROUTES[i];
        bool hit = rt->prefix ? strncmp(path, rt->path, strlen(rt->path)) == 0 : strcmp(path, rt->path) == 0;
        if (hit) return route_served(r, rt) ? rt : NULL;
    }
    return NULL;
}

static void on_request(struct evhttp_request *req, void *arg) {
    dds__receiver *r = arg;
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    /* Browsers mark a request a page makes to another site; no tracer sends this header. Without
     * the check any web page could post to the local agent (and through its proxies, with our
     * API key). */
    const char *fetch_site = evhttp_find_header(h, "Sec-Fetch-Site");
    if (fetch_site && strcasecmp(fetch_site, "cross-site") == 0) {
        reject(r, req, 403, "cross-site browser requests are refused", false, NULL);
        return;
    }
    const char *path = request_path(req);
    const route *rt = find_route(r, path);
    if (!rt) {
        reject(r, req, 404, "not found", false, NULL);
        return;
    }
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!(rt->methods & m)) {
        char allow[64];
        allow_header(allow, sizeof(allow), rt->methods);
        reject(r, req, 405, "method not allowed", false, allow);
        return;
    }
    if ((m & M_WRITE) && length_missing(req)) {
        /* Whatever body follows is unframed: close rather than read it as the next request. */
        reject(r, req, 411, "Content-Length required", true, NULL);
        return;
    }
    switch (rt->kind) {
    case R_INFO: reply(r, req, 200, "application/json", r->info_body, r->info_len, false, NULL); return;
    case R_TRACES: serve_traces(r, req, rt->fmt); return;
    case R_STATS: serve_stats(r, req); return;
    case R_DOGSTATSD: serve_dogstatsd(r, req); return;
    default: serve_proxy(r, req, rt, path); return;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* /info                                                                                      */

static bool build_info(dds__receiver *r) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "version");
    dds__jsonw_cstr(&w, r->agent_version);
    dds__jsonw_key(&w, "endpoints");
    dds__jsonw_array_begin(&w);
    /* Exactly what we serve: Python switches protocols on what it finds listed. */
    for (size_t i = 0; i < N_ROUTES; i++)
        if (route_served(r, &ROUTES[i])) dds__jsonw_cstr(&w, ROUTES[i].path);
    dds__jsonw_array_end(&w);
    /* Stats computed here need every trace, P0 ones included: the tracer must not drop them (and
     * then does not compute stats of its own). */
    dds__jsonw_key(&w, "client_drop_p0s");
    dds__jsonw_bool(&w, !r->cfg.stats_computed && r->cfg.stats_forwarded && r->h.stats != NULL);
    dds__jsonw_key(&w, "span_meta_structs");
    dds__jsonw_bool(&w, true);
    dds__jsonw_key(&w, "config");
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "receiver_port");
    dds__jsonw_uint(&w, r->port);
    dds__jsonw_key(&w, "statsd_port");
    dds__jsonw_uint(&w, r->cfg.statsd_port);
    dds__jsonw_key(&w, "max_request_bytes");
    dds__jsonw_uint(&w, r->cfg.max_body_bytes);
    dds__jsonw_key(&w, "default_env");
    dds__jsonw_cstr(&w, r->default_env ? r->default_env : "none");
    dds__jsonw_object_end(&w);
    dds__jsonw_key(&w, "peer_tags");
    dds__jsonw_array_begin(&w);
    if (r->cfg.stats_computed)
        for (size_t i = 0; i < dds__peer_tag_nkeys; i++) dds__jsonw_cstr(&w, dds__peer_tag_keys[i]);
    dds__jsonw_array_end(&w);
    if (r->cfg.stats_computed) {
        /* The span kinds the concentrator computes stats for besides top-level and measured spans
         * (the Rust agent's list, in its order). */
        static const char *const kinds[] = {"server", "client", "producer", "consumer"};
        dds__jsonw_key(&w, "span_kinds_stats_computed");
        dds__jsonw_array_begin(&w);
        for (size_t i = 0; i < 4; i++) dds__jsonw_cstr(&w, kinds[i]);
        dds__jsonw_array_end(&w);
    }
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) {
        dds__buf_free(&b);
        return false;
    }
    r->info_body = (char *)dds__buf_steal(&b, &r->info_len);
    /* Python ddtrace re-fetches /info after each trace response unless this digest matches. */
    dds__sha256_hex(r->info_body, r->info_len, r->state_hex);
    int n = asprintf(&r->stamp, "Datadog-Agent-Version: %s\r\nDatadog-Agent-State: %s\r\n", r->agent_version,
                     r->state_hex);
    if (n < 0) {
        r->stamp = NULL;
        return false;
    }
    r->stamp_len = (size_t)n;
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Sockets                                                                                    */

/* Takes fd: on failure it is closed. */
static struct evhttp_bound_socket *serve_fd(dds__receiver *r, int fd) {
    /* backlog 0: the socket already listens (we called listen to report its error precisely). */
    struct evconnlistener *l = evconnlistener_new(r->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                                  0, fd);
    if (!l) {
        close(fd);
        return NULL;
    }
    struct evhttp_bound_socket *bound = evhttp_bind_listener(r->http, l);
    if (!bound) evconnlistener_free(l);
    return bound;
}

static int bind_tcp(dds__receiver *r, int *fd_out, dds_error *err) {
    const char *host = r->cfg.non_local ? "0.0.0.0" : "127.0.0.1";
    if (r->cfg.port < 0 || r->cfg.port > 65535)
        return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "cannot bind TCP %s:%d: port must be 0-65535", host,
                              (int)r->cfg.port);
    int fd = dds__tcp_listen(r->cfg.non_local, r->cfg.port, &r->port);
    if (fd < 0)
        return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "cannot bind TCP %s:%d: %s", host, (int)r->cfg.port,
                              strerror(-fd));
    *fd_out = fd;
    return 0;
}

static int bind_unix(dds__receiver *r, int *fd_out, dds_error *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(r->unix_path);
    if (n == 0 || n >= sizeof(sa.sun_path))
        return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "Unix socket path must be 1-%zu bytes: %s",
                              sizeof(sa.sun_path) - 1, r->unix_path);
    memcpy(sa.sun_path, r->unix_path, n + 1);
    struct stat st;
    if (lstat(r->unix_path, &st) == 0) {
        /* A socket file left by a dead process is replaced; a live one (someone accepts a
         * connect) or any other kind of file is an error, never silently removed. */
        bool live = false;
        if (S_ISSOCK(st.st_mode)) {
            int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
            if (probe >= 0) close(probe);
        }
        if (!S_ISSOCK(st.st_mode) || live)
            return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "cannot bind Unix socket %s: %s", r->unix_path,
                                  live ? "in use by another process" : "path exists and is not a socket");
        unlink(r->unix_path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        close(fd);
        return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "cannot bind Unix socket %s: %s", r->unix_path,
                              strerror(e));
    }
    if (lstat(r->unix_path, &st) == 0) {
        r->unix_dev = st.st_dev;
        r->unix_ino = st.st_ino;
        r->unix_file = true;
    }
    if (listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return dds__error_set(err, DDS_ERR_TRACE_AGENT_START, "cannot listen on Unix socket %s: %s", r->unix_path,
                              strerror(e));
    }
    *fd_out = fd;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Lifecycle                                                                                  */

dds__receiver *dds__receiver_new(struct event_base *base, const dds__receiver_config *cfg,
                                 const dds__receiver_handlers *handlers, dds__receiver_counters *counters,
                                 dds_error *err) {
    int tcp_fd = -1, unix_fd = -1;
    dds__receiver *r = calloc(1, sizeof(*r));
    if (!r) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    r->base = base;
    r->cfg = *cfg;
    if (handlers) r->h = *handlers;
    r->c = counters ? counters : &r->own_counters;
    if (r->cfg.max_body_bytes == 0) r->cfg.max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    bool oom = false;
    r->default_env = dup_or_null(cfg->default_env, &oom);
    r->agent_version = dup_or_null(cfg->agent_version ? cfg->agent_version : dds_version(), &oom);
    r->profiling_url = dup_url(cfg->profiling_url, &oom);
    r->pipeline_stats_url = dup_url(cfg->pipeline_stats_url, &oom);
    r->telemetry_base_url = dup_url(cfg->telemetry_base_url, &oom);
    r->evp_base_url = dup_url(cfg->evp_base_url, &oom);
    r->site = dup_or_null(cfg->site, &oom);
    r->unix_path = dup_or_null(cfg->unix_path, &oom);
    r->http = oom ? NULL : evhttp_new(base);
    if (!r->http) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    sanitize_header_value(r->agent_version);
    r->cfg.default_env = r->default_env;
    r->cfg.agent_version = r->agent_version;
    r->cfg.profiling_url = r->profiling_url;
    r->cfg.pipeline_stats_url = r->pipeline_stats_url;
    r->cfg.telemetry_base_url = r->telemetry_base_url;
    r->cfg.evp_base_url = r->evp_base_url;
    r->cfg.site = r->site;
    r->cfg.unix_path = r->unix_path;

    /* Every method reaches on_request so a wrong one gets our 405 (with the agent headers), not
     * evhttp's 501. */
    evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* evhttp enforces this while reading: a declared Content-Length over it is refused before any
     * body byte is read, a chunked body as soon as the declared chunk sizes pass it. */
    evhttp_set_max_body_size(r->http, (ev_ssize_t)r->cfg.max_body_bytes);
    evhttp_set_max_headers_size(r->http, MAX_HEADERS_BYTES);
    evhttp_set_default_content_type(r->http, "text/plain; charset=utf-8");
    evhttp_set_gencb(r->http, on_request, r);
    evhttp_set_bevcb(r->http, make_bev, r);
    r->rl_reject.interval_ms = 10000;
    r->rl_not_found.interval_ms = 60000;
    r->rl_proxy.interval_ms = 10000;

    /* Bound first, served last: /info carries the bound port, and a request served before it
     * is built would have no /info body or agent state to answer with. */
    if (bind_tcp(r, &tcp_fd, err) != 0) goto fail;
    if (r->unix_path && bind_unix(r, &unix_fd, err) != 0) goto fail;
    if (!build_info(r)) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    r->tcp_bound = serve_fd(r, tcp_fd);
    tcp_fd = -1;
    if (!r->tcp_bound) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    if (unix_fd >= 0) {
        r->unix_bound = serve_fd(r, unix_fd);
        unix_fd = -1;
        if (!r->unix_bound) {
            dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
            goto fail;
        }
    }
    dds__log_debug(r->cfg.log, "trace receiver: listening on %s:%u%s%s", r->cfg.non_local ? "0.0.0.0" : "127.0.0.1",
                   r->port, r->unix_path ? " and " : "", r->unix_path ? r->unix_path : "");
    return r;
fail:
    if (tcp_fd >= 0) close(tcp_fd);
    if (unix_fd >= 0) close(unix_fd);
    dds__receiver_free(r);
    return NULL;
}

uint16_t dds__receiver_port(const dds__receiver *r) { return r ? r->port : 0; }

void dds__receiver_close(dds__receiver *r) {
    if (!r) return;
    if (r->tcp_bound) evhttp_del_accept_socket(r->http, r->tcp_bound);
    if (r->unix_bound) evhttp_del_accept_socket(r->http, r->unix_bound);
    r->tcp_bound = r->unix_bound = NULL;
    if (r->unix_file) {
        /* Only the file we created: another instance may have replaced it since. */
        struct stat st;
        if (lstat(r->unix_path, &st) == 0 && st.st_dev == r->unix_dev && st.st_ino == r->unix_ino)
            unlink(r->unix_path);
        r->unix_file = false;
    }
}

void dds__receiver_free(dds__receiver *r) {
    if (!r) return;
    dds__receiver_close(r);
    /* Pending proxies are dropped: evhttp_free closes their connections at once, so an answer
     * written now would never leave. Each proxy_call stays alive until the intake's on_done,
     * which then only frees it. */
    while (r->pending) {
        proxy_call *pc = r->pending;
        proxy_detach_client(pc);  /* also frees its timer: the base may go before the intake */
        proxy_unlink(pc);
        pc->r = NULL;
    }
    if (r->http) evhttp_free(r->http);
    free(r->default_env);
    free(r->agent_version);
    free(r->profiling_url);
    free(r->pipeline_stats_url);
    free(r->telemetry_base_url);
    free(r->evp_base_url);
    free(r->site);
    free(r->unix_path);
    free(r->info_body);
    free(r->stamp);
    free(r);
}
