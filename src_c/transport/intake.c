/* intake.c - in: payloads submitted on the loop thread. Out: HTTP POSTs to the Datadog intake
 * through libcurl's multi interface driven by the instance's event_base, each payload finished
 * exactly once (on_done) as sent, dropped or abandoned. Must never block the loop. */
#include "transport/intake.h"

#include <assert.h>
#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/clock.h"

/* Proxies forward the intake's answer to their client; anything past this is an error page or
 * worse, and holding it would let one response cost more memory than the payload itself. */
#define RESP_MAX_BYTES (64 * 1024)
#define BACKOFF_BASE_MS 100
#define BACKOFF_CAP_MS 10000
#define DEFAULT_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MAX_MS 5000
/* How long past its own timeout (half of it, at most this) a transfer may stay in curl's hands.
 * curl enforces the timeout itself; the watchdog only catches a transfer curl lost track of (an
 * allocation failure inside curl_multi_socket_action can leave it with neither a watched socket
 * nor a timer, and then nothing would ever finish it). */
#define WATCHDOG_GRACE_MAX_MS 2000
#define DEFAULT_MAX_IN_FLIGHT 8
/* The bound of the queue of payloads not attempted yet. Without one, an intake that accepts
 * connections and answers slowly would let memory grow with every flush; 32 MiB holds many
 * flushes' worth of metrics, traces and logs and one largest proxied request (25 MiB). */
#define DEFAULT_QUEUE_MAX_BYTES (32u * 1024 * 1024)
#define DEFAULT_USER_AGENT "datadog-serverless"
/* Loopback never goes through a proxy from the environment: the tests and local agents live there. */
#define LOOPBACK_NOPROXY "127.0.0.1,localhost,::1"
/* The CA bundle given to libcurl when none was found at start. /dev/null is not a directory, so
 * nothing can ever exist under it: loading it fails on every TLS backend (CURLE_SSL_CACERT_BADFILE
 * with OpenSSL and mbedTLS alike), where leaving the option unset would let an OpenSSL libcurl
 * fall back to its compiled-in bundle and a mbedTLS one connect with no trust anchor at all. */
#define NO_CA_BUNDLE "/dev/null/no-ca-certificates-found"

/* Zeroes a secret before its memory is freed. explicit_bzero would do, but it is glibc 2.25 and
 * release builds run on 2.17: a memset through a volatile pointer is never optimized away. */
static void wipe(char *p, size_t n) {
    static void *(*const volatile memset_v)(void *, int, size_t) = memset;
    memset_v(p, 0, n);
}

/* One concurrent transfer slot. The easy handle is reset and reused across requests rather than
 * recreated: curl_easy_reset keeps its live connections and TLS session cache, and the multi
 * handle pools the connections between transfers. */
typedef struct req {
    dds__intake *in;
    CURL *easy;
    struct curl_slist *headers;
    dds__payload *p;  /* NULL while the slot is idle */
    int64_t deadline_ms;  /* watchdog: past this the transfer is taken back from curl */
    uint8_t *resp;
    size_t resp_len, resp_cap;
    char errbuf[CURL_ERROR_SIZE];
} req;

/* A socket curl asked us to watch. Kept in a list so that a socket curl never told us to forget
 * cannot leak its event past dds__intake_free. */
typedef struct sock {
    struct event *ev;
    struct sock *prev, *next;
} sock;

typedef struct plist {
    dds__payload *head, *tail;
    size_t n;
} plist;

/* Loop thread only. */
struct dds__intake {
    struct event_base *base;
    CURLM *multi;
    struct event *curl_timer;   /* curl's single timeout */
    struct event *wake_timer;   /* earliest backoff expiry or watchdog deadline */
    struct event *kick;         /* deferred dispatch after submit */
    struct event *drained_ev;   /* deferred drained callback */
    dds__intake_config cfg;     /* strings point to the owned copies below */
    char *api_key, *user_agent, *https_proxy, *ca_file, *ca_dir;
    char *key_header;           /* "DD-API-KEY: ..."; wiped on free */
    dds__intake_counters *c;
    dds__intake_counters own_counters;
    plist queue;                /* never attempted, FIFO */
    size_t queue_bytes, queue_max;
    plist doomed;               /* pushed out of a full queue by a submit; dropped from the loop,
                                   since nothing may finish inside dds__intake_submit */
    plist retry;                /* failed at least once, in order of failure: head is the oldest */
    size_t retry_bytes;
    req *reqs;
    uint32_t max_in_flight, in_flight;
    sock *socks;
    uint64_t rng;
    void (*drained_cb)(void *user);
    void *drained_user;
    dds__ratelimit rl_key, rl_too_large, rl_rejected, rl_overflow, rl_queue_full, rl_retry, rl_error;
};

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                              */

static void plist_push(plist *l, dds__payload *p) {
    p->next = NULL;
    if (l->tail) l->tail->next = p;
    else l->head = p;
    l->tail = p;
    l->n++;
}

static dds__payload *plist_pop(plist *l) {
    dds__payload *p = l->head;
    if (!p) return NULL;
    l->head = p->next;
    if (!l->head) l->tail = NULL;
    p->next = NULL;
    l->n--;
    return p;
}

/* prev is p's predecessor or NULL when p is the head. */
static void plist_unlink(plist *l, dds__payload *prev, dds__payload *p) {
    if (prev) prev->next = p->next;
    else l->head = p->next;
    if (l->tail == p) l->tail = prev;
    p->next = NULL;
    l->n--;
}

static void queue_push(dds__intake *in, dds__payload *p) {
    plist_push(&in->queue, p);
    in->queue_bytes += p->body_len;
    dds__counter_add(&in->c->queue_bytes, p->body_len);
}

static dds__payload *queue_pop(dds__intake *in) {
    dds__payload *p = plist_pop(&in->queue);
    if (!p) return NULL;
    in->queue_bytes -= p->body_len;
    /* Unsigned wrap-around subtracts: the gauge may be shared by several intakes. */
    dds__counter_add(&in->c->queue_bytes, (uint64_t)0 - p->body_len);
    return p;
}

static uint64_t next_random(dds__intake *in) {
    uint64_t x = in->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    in->rng = x;
    return x;
}

/* Overwrite every occurrence of the key with stars: a last line of defence for text we did not
 * write ourselves (curl's error buffer, URLs), whatever the sink does with it. */
static void redact(char *msg, const char *secret, bool truncated) {
    if (!secret || !*secret) return;
    size_t n = strlen(secret), len = strlen(msg);
    for (char *hit = strstr(msg, secret); hit; hit = strstr(hit + n, secret)) memset(hit, '*', n);
    if (!truncated) return;
    /* A message cut at the end of its buffer can end with the first characters of the key,
     * which no later redaction (log.c's included) would recognise. */
    for (size_t k = n - 1 < len ? n - 1 : len; k > 0; k--) {
        if (memcmp(msg + len - k, secret, k) == 0) {
            memset(msg + len - k, '*', k);
            break;
        }
    }
}

/* scheme://host[:port]/path only: userinfo (proxy or basic-auth credentials) and the query
 * (where an api_key= could sit) never reach a log line. */
static void url_for_log(const char *url, char *out, size_t cap) {
    if (!url) {
        snprintf(out, cap, "(no url)");
        return;
    }
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    size_t auth_len = strcspn(auth, "/?#");
    const char *host = auth;
    for (const char *q = auth; q < auth + auth_len; q++)
        if (*q == '@') host = q + 1;
    const char *path = auth + auth_len;
    size_t path_len = strcspn(path, "?#");
    snprintf(out, cap, "%.*s%.*s%.*s", (int)(auth - url), url, (int)(auth + auth_len - host), host,
             (int)path_len, path);
}

static const char *kind_name(const dds__payload *p) {
    const char *n = dds__payload_kind_name(p->kind);
    return n ? n : "unknown";
}

static void vformat(const dds__intake *in, char *msg, size_t cap, const char *fmt, va_list ap) {
    int n = vsnprintf(msg, cap, fmt, ap);
    if (n < 0) snprintf(msg, cap, "(unformattable message)");
    redact(msg, in->api_key, n >= 0 && (size_t)n >= cap);
}

__attribute__((format(printf, 3, 4)))
static void logf_(const dds__intake *in, dds_log_level level, const char *fmt, ...) {
    if (!DDS__LOG_ENABLED(in->cfg.log, level)) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vformat(in, msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dds__log(in->cfg.log, level, "%s", msg);
}

/* Rate-limited problem report: one log line and, when notify (the payload concerned) is set, one
 * on_error call naming its kind, per limiter interval, carrying how many similar reports were
 * skipped meanwhile. */
__attribute__((format(printf, 5, 6)))
static void report(dds__intake *in, dds__ratelimit *rl, dds_log_level level, const dds__payload *notify,
                   const char *fmt, ...) {
    uint64_t skipped = 0;
    if (!dds__ratelimit_allow(rl, dds__mono_ms(), &skipped)) return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vformat(in, msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (skipped) {
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof(msg) - len, " (%llu similar since the last report)",
                 (unsigned long long)skipped);
    }
    if (DDS__LOG_ENABLED(in->cfg.log, level)) dds__log(in->cfg.log, level, "%s", msg);
    if (notify && in->cfg.on_error) in->cfg.on_error(in->cfg.user, notify->kind, msg);
}

/* ---------------------------------------------------------------------------------------- */
/* Finishing payloads                                                                         */

size_t dds__intake_pending(const dds__intake *in) {
    return in ? in->queue.n + in->in_flight + in->retry.n + in->doomed.n : 0;
}

/* Deferred so that the drained callback never runs inside submit, abandon or a curl callback:
 * whoever is waiting for the drain sees it from the loop, with pending re-checked. */
static void note_finished(dds__intake *in) {
    if (dds__intake_pending(in) == 0 && in->drained_cb) event_active(in->drained_ev, EV_TIMEOUT, 0);
}

/* Ownership of p ends here. Callers update the pending bookkeeping before calling. */
static void finish(dds__intake *in, dds__payload *p, int status, const uint8_t *resp, size_t resp_len) {
    dds__payload_done_fn done = p->on_done;
    p->on_done = NULL;
    if (done) done(p->done_user, status, resp, resp_len);
    dds__payload_free(p);
    note_finished(in);
}

static void drop(dds__intake *in, dds__payload *p, int status, const uint8_t *resp, size_t resp_len) {
    dds__counter_add(&in->c->dropped, 1);
    finish(in, p, status, resp, resp_len);
}

/* Payloads the full queue pushed out, dropped now that we are back on the loop. */
static void drop_doomed(dds__intake *in) {
    dds__payload *p;
    while ((p = plist_pop(&in->doomed))) {
        dds__counter_add(&in->c->queue_dropped[p->kind < DDS__PK_KINDS ? p->kind : DDS__PK_PROXY], 1);
        report(in, &in->rl_queue_full, DDS_LOG_WARN, p,
               "send queue full (%zu bytes max, the intake is not keeping up): %s payload (%zu bytes) dropped",
               in->queue_max, kind_name(p), p->body_len);
        drop(in, p, 0, NULL, 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Retry queue                                                                                */

static int64_t backoff_ms(dds__intake *in, uint32_t attempts, int64_t retry_after_s) {
    int64_t span = BACKOFF_CAP_MS;
    if (attempts >= 1 && attempts - 1 < 8) span = (int64_t)BACKOFF_BASE_MS << (attempts - 1);
    if (span > BACKOFF_CAP_MS) span = BACKOFF_CAP_MS;
    /* Equal jitter: at least half the step, so retries of one burst spread out without ever
     * collapsing to an immediate retry. */
    int64_t delay = span / 2 + (int64_t)(next_random(in) % (uint64_t)(span / 2 + 1));
    if (retry_after_s > 0) {
        int64_t ra = retry_after_s > BACKOFF_CAP_MS / 1000 ? BACKOFF_CAP_MS : retry_after_s * 1000;
        if (ra > delay) delay = ra;
    }
    return delay;
}

/* The retry queue holds bytes, not payloads: PROTOCOL.md bounds it by size and drops the
 * oldest first, because the newest data is the most useful once the intake is back. */
static void hold_for_retry(dds__intake *in, dds__payload *p, int64_t retry_after_s) {
    size_t max = in->cfg.retry_queue_max_bytes;
    if (p->body_len > max) {
        /* Evicting everything else could not make room for it. */
        report(in, &in->rl_overflow, DDS_LOG_WARN, p,
               "retry queue full (%zu bytes max): %s payload (%zu bytes) dropped", max, kind_name(p),
               p->body_len);
        drop(in, p, 0, NULL, 0);
        return;
    }
    dds__counter_add(&in->c->retried, 1);
    p->next_attempt_ms = dds__mono_ms() + backoff_ms(in, p->attempts, retry_after_s);
    plist_push(&in->retry, p);
    in->retry_bytes += p->body_len;
    while (in->retry_bytes > max) {
        dds__payload *old = plist_pop(&in->retry);
        in->retry_bytes -= old->body_len;
        report(in, &in->rl_overflow, DDS_LOG_WARN, old,
               "retry queue full (%zu bytes max): oldest %s payload (%zu bytes) dropped", max,
               kind_name(old), old->body_len);
        drop(in, old, 0, NULL, 0);
    }
}

static dds__payload *take_due_retry(dds__intake *in, int64_t now) {
    dds__payload *prev = NULL;
    for (dds__payload *p = in->retry.head; p; prev = p, p = p->next) {
        if (p->next_attempt_ms > now) continue;
        plist_unlink(&in->retry, prev, p);
        in->retry_bytes -= p->body_len;
        return p;
    }
    return NULL;
}

static void arm_wake_timer(dds__intake *in, int64_t now) {
    int64_t earliest = INT64_MAX;
    for (const dds__payload *p = in->retry.head; p; p = p->next)
        if (p->next_attempt_ms > now && p->next_attempt_ms < earliest) earliest = p->next_attempt_ms;
    /* Due payloads without a free slot need no timer: the next completion dispatches them. */
    for (uint32_t i = 0; i < in->max_in_flight; i++)
        if (in->reqs[i].p && in->reqs[i].deadline_ms < earliest) earliest = in->reqs[i].deadline_ms;
    if (earliest == INT64_MAX) {
        evtimer_del(in->wake_timer);
        return;
    }
    int64_t wait = earliest > now ? earliest - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(wait / 1000), .tv_usec = (suseconds_t)(wait % 1000) * 1000};
    evtimer_add(in->wake_timer, &tv);
}

/* ---------------------------------------------------------------------------------------- */
/* Starting a request                                                                         */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp) {
    req *r = userp;
    size_t n = size * nmemb;
    size_t room = RESP_MAX_BYTES - r->resp_len;
    size_t take = n < room ? n : room;
    if (take > r->resp_cap - r->resp_len) {
        size_t cap = r->resp_cap ? r->resp_cap : 1024;
        while (cap < r->resp_len + take) cap *= 2;
        if (cap > RESP_MAX_BYTES) cap = RESP_MAX_BYTES;
        uint8_t *b = realloc(r->resp, cap);
        if (!b) return n;  /* the answer still counts; only its body is lost */
        r->resp = b;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, data, take);
    r->resp_len += take;
    return n;  /* the rest is read and discarded: failing here would turn a 2xx into an error */
}

/* curl_slist_append leaves the list untouched when it fails, so a failure must be remembered
 * rather than detected from the returned pointer alone. */
static void add_header(struct curl_slist **list, bool *failed, const char *line) {
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l) *failed = true;
    else *list = l;
}

static void add_header_kv(struct curl_slist **list, bool *failed, const char *name, const char *value) {
    char stack[256];
    size_t need = strlen(name) + 2 + strlen(value) + 1;
    char *line = need <= sizeof(stack) ? stack : malloc(need);
    if (!line) {
        *failed = true;
        return;
    }
    snprintf(line, need, "%s: %s", name, value);
    add_header(list, failed, line);
    if (line != stack) free(line);
}

/* Headers we set or that frame the request: a forwarded client header must not replace the
 * API key or change how the body is delimited. */
static bool reserved_header(const char *line, size_t name_len) {
    static const char *const names[] = {"dd-api-key", "content-type", "content-encoding",
                                        "content-length", "user-agent", "host",
                                        "transfer-encoding", "expect", "connection"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == name_len && strncasecmp(line, names[i], name_len) == 0) return true;
    return false;
}

static void add_extra_headers(struct curl_slist **list, bool *failed, const char *extra) {
    for (const char *line = extra; line && *line;) {
        size_t len = strcspn(line, "\n");
        size_t use = len;
        if (use && line[use - 1] == '\r') use--;
        const char *colon = memchr(line, ':', use);
        /* A line without a name, with a stray CR, or naming a reserved header is skipped. */
        if (colon && colon > line && !memchr(line, '\r', use) && !reserved_header(line, (size_t)(colon - line))) {
            char *h = strndup(line, use);
            if (!h) *failed = true;
            else add_header(list, failed, h);
            free(h);
        }
        line += len;
        if (*line == '\n') line++;
    }
}

static struct curl_slist *build_headers(const dds__intake *in, const dds__payload *p) {
    struct curl_slist *list = NULL;
    bool failed = false;
    if (in->key_header) add_header(&list, &failed, in->key_header);
    add_header_kv(&list, &failed, "Content-Type", p->content_type ? p->content_type : "application/octet-stream");
    if (p->content_encoding) add_header_kv(&list, &failed, "Content-Encoding", p->content_encoding);
    add_header_kv(&list, &failed, "User-Agent", in->user_agent);
    /* curl would otherwise wait up to a second for "100 Continue" before sending large bodies. */
    add_header(&list, &failed, "Expect:");
    add_extra_headers(&list, &failed, p->extra_headers);
    if (failed) {
        curl_slist_free_all(list);
        return NULL;
    }
    return list;
}

static uint32_t request_timeout_ms(const dds__intake *in) {
    return in->cfg.request_timeout_ms ? in->cfg.request_timeout_ms : DEFAULT_TIMEOUT_MS;
}

static uint32_t watchdog_grace_ms(const dds__intake *in) {
    uint32_t grace = request_timeout_ms(in) / 2 + 100;
    return grace < WATCHDOG_GRACE_MAX_MS ? grace : WATCHDOG_GRACE_MAX_MS;
}

/* One log line per report: some TLS backends end their error text with a newline (mbedTLS) or
 * put several lines in it. Control characters become spaces, trailing ones go. */
static void one_line(char *msg) {
    size_t n = 0;
    for (char *c = msg; *c; c++, n++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
    while (n > 0 && msg[n - 1] == ' ') msg[--n] = '\0';
}

static bool no_ca_found(const dds__intake *in) { return in->cfg.tls_verify && !in->ca_file && !in->ca_dir; }

/* Set on every request: curl_easy_reset brings back libcurl's compiled-in CA defaults. The option
 * not chosen is set to NULL so that only the certificates found at start are trusted. A TLS
 * backend without CA directories refuses CURLOPT_CAPATH, NULL included; it has no default
 * directory to clear either, so only a chosen directory must be accepted. A failure here fails
 * the request, never the verification. */
static bool set_trust(const dds__intake *in, CURL *e) {
    if (!in->cfg.tls_verify) return true;
    const char *file = no_ca_found(in) ? NO_CA_BUNDLE : in->ca_file;
    if (curl_easy_setopt(e, CURLOPT_CAINFO, file) != CURLE_OK) return false;
    if (curl_easy_setopt(e, CURLOPT_CAPATH, in->ca_dir) != CURLE_OK && in->ca_dir) return false;
#if LIBCURL_VERSION_NUM >= 0x073400
    /* An https:// proxy is verified with the same certificates. */
    if (in->https_proxy) {
        if (curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, file) != CURLE_OK) return false;
        if (curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, in->ca_dir) != CURLE_OK && in->ca_dir) return false;
    }
#endif
    return true;
}

static bool configure(dds__intake *in, req *r, dds__payload *p) {
    CURL *e = r->easy;
    uint32_t timeout = request_timeout_ms(in);
    uint32_t connect_timeout = timeout < CONNECT_TIMEOUT_MAX_MS ? timeout : CONNECT_TIMEOUT_MAX_MS;
    r->errbuf[0] = '\0';
    r->resp_len = 0;
    curl_slist_free_all(r->headers);
    r->headers = build_headers(in, p);
    if (!r->headers) return false;
    if (curl_easy_setopt(e, CURLOPT_URL, p->url) != CURLE_OK) return false;
#if LIBCURL_VERSION_NUM >= 0x075500
    if (curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) return false;
#else
    curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* A configured proxy carries every request, whatever no_proxy says in the environment. */
    if (in->https_proxy) {
        if (curl_easy_setopt(e, CURLOPT_PROXY, in->https_proxy) != CURLE_OK ||
            curl_easy_setopt(e, CURLOPT_NOPROXY, "") != CURLE_OK)
            return false;
    } else if (curl_easy_setopt(e, CURLOPT_NOPROXY, LOOPBACK_NOPROXY) != CURLE_OK) {
        return false;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_timeout);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, in->cfg.tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, in->cfg.tls_verify ? 2L : 0L);
    if (!set_trust(in, e)) return false;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)p->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, p->body ? (const char *)p->body : "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    return true;
}

static req *free_slot(dds__intake *in) {
    for (uint32_t i = 0; i < in->max_in_flight; i++)
        if (!in->reqs[i].p) return &in->reqs[i];
    return NULL;
}

/* Takes p (already off every list). On failure p is dropped: the causes (allocation, a URL
 * curl refuses) would fail the same way on every retry. */
static void start(dds__intake *in, dds__payload *p) {
    req *r = free_slot(in);
    assert(r);
    if (!r->easy) r->easy = curl_easy_init();
    else curl_easy_reset(r->easy);
    if (!r->easy || !configure(in, r, p)) goto fail;
    if (curl_multi_add_handle(in->multi, r->easy) != CURLM_OK) {
        /* A callback failing inside add_handle can leave the handle attached. */
        curl_multi_remove_handle(in->multi, r->easy);
        goto fail;
    }
    r->p = p;
    r->deadline_ms = dds__mono_ms() + request_timeout_ms(in) + watchdog_grace_ms(in);
    p->attempts++;
    in->in_flight++;
    return;
fail:
    report(in, &in->rl_error, DDS_LOG_ERROR, p, "could not start a request for a %s payload: dropped",
           kind_name(p));
    drop(in, p, 0, NULL, 0);
}

/* Writes body + '\n' with one writev per try, so that concurrent writers to the same fd (a
 * pipe, stdout) never interleave inside a line as long as the pipe takes it whole. */
static bool write_line(int fd, const uint8_t *body, size_t len) {
    static const char newline = '\n';
    struct iovec iov[2] = {{.iov_base = (void *)body, .iov_len = len},
                           {.iov_base = (void *)&newline, .iov_len = 1}};
    struct iovec *v = iov;
    int n = 2;
    while (n > 0) {
        ssize_t w = writev(fd, v, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        size_t left = (size_t)w;
        while (n > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return true;
}

/* {"dry_run":true,"summary":true,"endpoint":"/api/v2/series","kind":"series","items":3,"bytes":412}:
 * what would have been sent, without a tag, span or log line of it (no API key: stdout is often
 * the platform's log, and the payloads would copy everything there). bytes is the size of the
 * payload as built here (its JSON rendering). */
static bool write_summary(int fd, const dds__payload *p) {
    const char *path = p->url ? strstr(p->url, "://") : NULL;
    path = path ? strchr(path + 3, '/') : NULL;
    if (!path) path = "/";
    size_t plen = strcspn(path, "?\"\\");
    char line[512];
    int n = snprintf(line, sizeof(line),
                     "{\"dry_run\":true,\"summary\":true,\"endpoint\":\"%.*s\",\"kind\":\"%s\",\"items\":%u,"
                     "\"bytes\":%zu}",
                     (int)(plen > 256 ? 256 : plen), path, kind_name(p), (unsigned)p->items, p->body_len);
    if (n < 0 || (size_t)n >= sizeof(line)) return false;
    return write_line(fd, (const uint8_t *)line, (size_t)n);
}

static void dry_run_all(dds__intake *in) {
    dds__payload *p;
    while ((p = queue_pop(in))) {
        bool ok = in->cfg.dry_run_summary ? write_summary(in->cfg.dry_run_fd, p)
                                          : write_line(in->cfg.dry_run_fd, p->body, p->body_len);
        if (!ok) {
            report(in, &in->rl_error, DDS_LOG_ERROR, NULL, "dry run: writing a %s payload failed (%s): dropped",
                   kind_name(p), strerror(errno));
            drop(in, p, 0, NULL, 0);
            continue;
        }
        dds__counter_add(&in->c->dry_run, 1);
        finish(in, p, 202, NULL, 0);
    }
}

/* Fill the free slots: retries whose backoff expired first (older data), then new payloads. */
static void pump(dds__intake *in) {
    drop_doomed(in);
    if (in->cfg.dry_run) {
        dry_run_all(in);
        return;
    }
    int64_t now = dds__mono_ms();
    while (in->in_flight < in->max_in_flight) {
        dds__payload *p = take_due_retry(in, now);
        if (!p) p = queue_pop(in);
        if (!p) break;
        start(in, p);
    }
    arm_wake_timer(in, now);
}

/* ---------------------------------------------------------------------------------------- */
/* Completion                                                                                 */

static bool retryable_status(long status) {
    return status < 100 || status == 408 || status == 429 || status >= 500;
}

/* Errors that would repeat identically on every attempt are not worth a place in the queue. A
 * certificate that fails verification is one of them: the trust anchors are fixed at start and
 * the intake's certificate does not change between retries, so holding the payload would only
 * turn a TLS problem into a stop that times out. */
static bool retryable_curl(CURLcode rc) {
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
        return false;
    default:
        return true;
    }
}

static void count_sent(dds__intake *in, const dds__payload *p) {
    dds__counter_add(&in->c->sent, 1);
    dds__counter_add(&in->c->bytes_sent, p->body_len);
    if (p->kind == DDS__PK_SERIES) dds__counter_add(&in->c->series_sent, p->items);
    else if (p->kind == DDS__PK_SKETCHES) dds__counter_add(&in->c->sketches_sent, p->items);
}

static void transfer_done(dds__intake *in, req *r, CURLcode rc) {
    long status = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
#if LIBCURL_VERSION_NUM >= 0x074200
    curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
#endif
    curl_multi_remove_handle(in->multi, r->easy);
    dds__payload *p = r->p;
    r->p = NULL;
    in->in_flight--;

    char where[256];
    url_for_log(p->url, where, sizeof(where));
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        count_sent(in, p);
        logf_(in, DDS_LOG_DEBUG, "sent %s payload (%zu bytes) to %s: HTTP %ld", kind_name(p), p->body_len,
              where, status);
        finish(in, p, (int)status, r->resp, r->resp_len);
        return;
    }
    if (rc != CURLE_OK) {
        one_line(r->errbuf);
        const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
        /* curl would name NO_CA_BUNDLE, which means nothing to the user. */
        if (rc == CURLE_SSL_CACERT_BADFILE && no_ca_found(in))
            why = "no CA certificates were found at start to verify it with";
        if (!retryable_curl(rc)) {
            report(in, &in->rl_error, DDS_LOG_ERROR, p, "could not send a %s payload to %s (%s): dropped",
                   kind_name(p), where, why);
            drop(in, p, 0, NULL, 0);
            return;
        }
        report(in, &in->rl_retry, DDS_LOG_WARN, NULL, "sending a %s payload to %s failed (%s), attempt %u: will retry",
               kind_name(p), where, why, p->attempts);
        hold_for_retry(in, p, 0);
        return;
    }
    if (retryable_status(status)) {
        report(in, &in->rl_retry, DDS_LOG_WARN, NULL, "intake answered HTTP %ld to a %s payload (%s), attempt %u: will retry",
               status, kind_name(p), where, p->attempts);
        hold_for_retry(in, p, (int64_t)retry_after);
        return;
    }
    /* 400, 403, 413 and every other answer that is neither success nor worth retrying: PROTOCOL.md
     * drops them. The status and body go to on_done so a proxy can forward the rejection. */
    if (p->kind == DDS__PK_PROXY)
        /* A proxied request's answer belongs to the tracer that made it, which gets it through
         * on_done; it says nothing certain about our API key, so the user is not alerted. */
        report(in, &in->rl_rejected, DDS_LOG_WARN, NULL,
               "upstream answered HTTP %ld to a proxied request to %s: passed back to the client", status, where);
    else if (status == 403)
        report(in, &in->rl_key, DDS_LOG_ERROR, p, "intake rejected the API key (HTTP 403): %s payload dropped",
               kind_name(p));
    else if (status == 413)
        report(in, &in->rl_too_large, DDS_LOG_ERROR, p,
               "intake rejected a %s payload as too large (HTTP 413, %zu bytes): dropped", kind_name(p), p->body_len);
    else
        report(in, &in->rl_rejected, DDS_LOG_ERROR, p, "intake rejected a %s payload (HTTP %ld from %s): dropped",
               kind_name(p), status, where);
    drop(in, p, (int)status, r->resp, r->resp_len);
}

/* A transfer curl should have finished long ago is failed as a timeout, hence retried. */
static void reap_overdue(dds__intake *in, int64_t now) {
    for (uint32_t i = 0; i < in->max_in_flight; i++) {
        req *r = &in->reqs[i];
        if (!r->p || r->deadline_ms > now) continue;
        snprintf(r->errbuf, sizeof(r->errbuf), "no outcome %u ms past the request timeout", watchdog_grace_ms(in));
        transfer_done(in, r, CURLE_OPERATION_TIMEDOUT);
    }
}

static void read_completions(dds__intake *in) {
    CURLMsg *msg;
    int left;
    bool finished_any = false;
    while ((msg = curl_multi_info_read(in->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        /* msg dies with curl_multi_remove_handle: copy what we need first. */
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        req *r = (req *)priv;
        /* An abandon from an earlier on_done may have emptied the slot already. */
        if (r && r->p) {
            transfer_done(in, r, rc);
            finished_any = true;
        }
    }
    /* Without a completion no slot was freed and no retry added: nothing to dispatch or re-arm. */
    if (finished_any) pump(in);
}

/* ---------------------------------------------------------------------------------------- */
/* libcurl <-> libevent glue                                                                  */

static void on_socket_ready(evutil_socket_t fd, short what, void *arg) {
    dds__intake *in = arg;
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(in->multi, fd, flags, &running);
    read_completions(in);
}

static void on_curl_timer_fired(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__intake *in = arg;
    int running = 0;
    curl_multi_socket_action(in->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    read_completions(in);
}

/* curl must not be re-entered from here: only (re)arm the timer. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    dds__intake *in = userp;
    if (timeout_ms < 0) {
        evtimer_del(in->curl_timer);
        return 0;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(in->curl_timer, &tv) == 0 ? 0 : -1;
}

static void sock_free(dds__intake *in, sock *s) {
    if (s->prev) s->prev->next = s->next;
    else in->socks = s->next;
    if (s->next) s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)easy;
    dds__intake *in = userp;
    sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) sock_free(in, s);
        return 0;
    }
    short kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return -1;
        s->ev = event_new(in->base, fd, kind, on_socket_ready, in);
        if (!s->ev) {
            free(s);
            return -1;
        }
        s->next = in->socks;
        if (in->socks) in->socks->prev = s;
        in->socks = s;
        curl_multi_assign(in->multi, fd, s);
    } else {
        /* event_assign is only legal on an event that is not pending. */
        event_del(s->ev);
        event_assign(s->ev, in->base, fd, kind, on_socket_ready, in);
    }
    return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    pump(arg);
}

void dds__intake_retry_now(dds__intake *in) {
    /* The user asked to send everything now (flush before a freeze, or stop): a payload
     * waiting out its backoff would otherwise outlive the caller's deadline, intake back or not. */
    int64_t now = dds__mono_ms();
    for (dds__payload *p = in->retry.head; p; p = p->next) p->next_attempt_ms = now;
    pump(in);
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__intake *in = arg;
    reap_overdue(in, dds__mono_ms());
    pump(in);
}

static void on_drained(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds__intake *in = arg;
    if (dds__intake_pending(in) == 0 && in->drained_cb) in->drained_cb(in->drained_user);
}

/* ---------------------------------------------------------------------------------------- */
/* Public (internal) API                                                                      */

static char *dup_or_null(const char *s) {
    return (s && *s) ? strdup(s) : NULL;
}

dds__intake *dds__intake_new(struct event_base *base, const dds__intake_config *cfg,
                             dds__intake_counters *counters) {
    if (!base || !cfg) return NULL;
    dds__intake *in = calloc(1, sizeof(*in));
    if (!in) return NULL;
    in->base = base;
    in->cfg = *cfg;
    in->c = counters ? counters : &in->own_counters;
    in->max_in_flight = cfg->max_in_flight ? cfg->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
    in->queue_max = cfg->queue_max_bytes ? cfg->queue_max_bytes : DEFAULT_QUEUE_MAX_BYTES;
    in->rng = (uint64_t)dds__mono_ms() ^ (uint64_t)(uintptr_t)in ^ 0x9e3779b97f4a7c15ULL;
    if (!in->rng) in->rng = 1;

    in->api_key = dup_or_null(cfg->api_key);
    in->user_agent = strdup(cfg->user_agent && *cfg->user_agent ? cfg->user_agent : DEFAULT_USER_AGENT);
    in->https_proxy = dup_or_null(cfg->https_proxy);
    in->ca_file = dup_or_null(cfg->ca_file);
    in->ca_dir = dup_or_null(cfg->ca_dir);
    if ((cfg->api_key && *cfg->api_key && !in->api_key) || !in->user_agent ||
        (cfg->https_proxy && *cfg->https_proxy && !in->https_proxy) ||
        (cfg->ca_file && *cfg->ca_file && !in->ca_file) || (cfg->ca_dir && *cfg->ca_dir && !in->ca_dir))
        goto fail;
    if (in->api_key) {
        if (strpbrk(in->api_key, "\r\n")) {
            /* A line break would let the key inject headers; without it the intake answers 403
             * and the user hears about it from there. */
            logf_(in, DDS_LOG_ERROR, "the API key contains a line break: sending without it");
        } else if (asprintf(&in->key_header, "DD-API-KEY: %s", in->api_key) < 0) {
            in->key_header = NULL;
            goto fail;
        }
    }
    in->cfg.api_key = in->api_key;
    in->cfg.user_agent = in->user_agent;
    in->cfg.https_proxy = in->https_proxy;
    in->cfg.ca_file = in->ca_file;
    in->cfg.ca_dir = in->ca_dir;

    in->reqs = calloc(in->max_in_flight, sizeof(*in->reqs));
    if (!in->reqs) goto fail;
    for (uint32_t i = 0; i < in->max_in_flight; i++) in->reqs[i].in = in;

    in->multi = curl_multi_init();
    in->curl_timer = evtimer_new(base, on_curl_timer_fired, in);
    in->wake_timer = evtimer_new(base, on_wake, in);
    in->kick = event_new(base, -1, 0, on_kick, in);
    in->drained_ev = event_new(base, -1, 0, on_drained, in);
    if (!in->multi || !in->curl_timer || !in->wake_timer || !in->kick || !in->drained_ev) goto fail;
    curl_multi_setopt(in->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(in->multi, CURLMOPT_SOCKETDATA, in);
    curl_multi_setopt(in->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(in->multi, CURLMOPT_TIMERDATA, in);
    return in;
fail:
    dds__intake_free(in);
    return NULL;
}

void dds__intake_submit(dds__intake *in, dds__payload *p) {
    if (!p) return;
    assert(p->next == NULL);
    if (!in) {
        dds__payload_free(p);
        return;
    }
    p->attempts = 0;
    /* Dispatch from the loop, not from here: the caller may be mid-flush and submitting more. */
    event_active(in->kick, EV_TIMEOUT, 0);
    if (in->cfg.dry_run) {
        /* Written out on the next loop turn, whatever the intake does. */
        queue_push(in, p);
        return;
    }
    if (p->body_len > in->queue_max && in->queue.n > 0) {
        /* Evicting everything else could not make room for it. */
        plist_push(&in->doomed, p);
        return;
    }
    queue_push(in, p);
    /* Oldest first, as in the retry queue: the newest data is the most useful once the intake
     * keeps up again. p itself stays: it fits alone or is the only one waiting. */
    while (in->queue_bytes > in->queue_max && in->queue.head != p) plist_push(&in->doomed, queue_pop(in));
}

void dds__intake_set_drained_cb(dds__intake *in, void (*cb)(void *user), void *user) {
    in->drained_cb = cb;
    in->drained_user = user;
}

size_t dds__intake_abandon(dds__intake *in) {
    if (!in) return 0;
    size_t n = 0;
    dds__payload *p;
    /* Detach everything before the first on_done runs: a callback that submits again must find
     * consistent counts, and what it submits is not part of this abandon. */
    plist queued = in->queue, retrying = in->retry, doomed = in->doomed;
    memset(&in->doomed, 0, sizeof(in->doomed));
    dds__counter_add(&in->c->queue_bytes, (uint64_t)0 - in->queue_bytes);
    in->queue_bytes = 0;
    memset(&in->queue, 0, sizeof(in->queue));
    memset(&in->retry, 0, sizeof(in->retry));
    in->retry_bytes = 0;
    plist flying = {0};
    for (uint32_t i = 0; in->reqs && i < in->max_in_flight; i++) {
        req *r = &in->reqs[i];
        if (!r->p) continue;
        curl_multi_remove_handle(in->multi, r->easy);
        plist_push(&flying, r->p);
        r->p = NULL;
        in->in_flight--;
    }
    while ((p = plist_pop(&flying)) || (p = plist_pop(&retrying)) || (p = plist_pop(&queued)) ||
           (p = plist_pop(&doomed))) {
        drop(in, p, 0, NULL, 0);
        n++;
    }
    if (n) logf_(in, DDS_LOG_WARN, "gave up on %zu payloads still pending for the intake", n);
    return n;
}

void dds__intake_free(dds__intake *in) {
    if (!in) return;
    in->drained_cb = NULL;
    dds__intake_abandon(in);
    for (uint32_t i = 0; in->reqs && i < in->max_in_flight; i++) {
        req *r = &in->reqs[i];
        if (r->easy) curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->resp);
    }
    /* Closes the pooled connections, which may still call on_curl_socket: the events and the
     * socket list must outlive it. */
    if (in->multi) curl_multi_cleanup(in->multi);
    while (in->socks) sock_free(in, in->socks);
    if (in->curl_timer) event_free(in->curl_timer);
    if (in->wake_timer) event_free(in->wake_timer);
    if (in->kick) event_free(in->kick);
    if (in->drained_ev) event_free(in->drained_ev);
    if (in->key_header) wipe(in->key_header, strlen(in->key_header));
    if (in->api_key) wipe(in->api_key, strlen(in->api_key));
    free(in->key_header);
    free(in->api_key);
    free(in->user_agent);
    free(in->https_proxy);
    free(in->ca_file);
    free(in->ca_dir);
    free(in->reqs);
    free(in);
}
