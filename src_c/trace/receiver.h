/* receiver.h - the trace agent's HTTP server (PROTOCOL.md section 4) on the loop's event_base:
 * routing, /info, body limits enforced while reading, status codes, Datadog-Agent-Version and
 * Datadog-Agent-State on every response, cross-site browser requests refused, and the
 * forwarding proxies (profiling, pipeline stats, telemetry, EVP) submitted to the intake with
 * our API key. Trace, stats and DogStatsD bodies are handed to callbacks. Loop thread only. */
#ifndef DDS_TRACE_RECEIVER_H
#define DDS_TRACE_RECEIVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "common/slice.h"
#include "datadog_serverless.h"
#include "log.h"
#include "trace/decode.h"
#include "transport/intake.h"

struct event_base;

/* Tracer headers, as slices valid during the callback (empty when absent). */
typedef struct dds__trace_headers {
    dds__slice lang;                      /* Datadog-Meta-Lang */
    dds__slice lang_version;              /* Datadog-Meta-Lang-Version */
    dds__slice lang_interpreter;          /* Datadog-Meta-Lang-Interpreter */
    dds__slice tracer_version;            /* Datadog-Meta-Tracer-Version */
    dds__slice container_id;              /* Datadog-Container-ID */
    dds__slice trace_count;               /* X-Datadog-Trace-Count */
    bool client_computed_top_level;       /* Datadog-Client-Computed-Top-Level: non-empty, not "false"/"0" */
    bool client_computed_stats;           /* Datadog-Client-Computed-Stats: same rule */
    void *request;                        /* the request, for dds__receiver_keep_body (NULL: cannot keep) */
} dds__trace_headers;

/* A trace body kept past its request (dds__receiver_keep_body). */
typedef struct dds__kept_body dds__kept_body;

typedef struct dds__receiver_handlers {
    void *user;
    /* A complete traces body. Returns the HTTP status to answer: 200 (the receiver then answers
     * {"rate_by_service":{"service:,env:":1}}), 400 (decode error), 413, 500. */
    int (*traces)(void *user, dds__trace_format fmt, const uint8_t *body, size_t len, const dds__trace_headers *h);
    /* A /v0.6/stats body (msgpack ClientStatsPayload). Returns 200 or 400. */
    int (*stats)(void *user, const uint8_t *body, size_t len, const dds__trace_headers *h);
    /* A /dogstatsd/v2/proxy body: newline-separated DogStatsD lines. NULL = endpoint not served (404). */
    void (*dogstatsd)(void *user, const char *body, size_t len);
} dds__receiver_handlers;

typedef struct dds__receiver_config {
    int32_t port;                         /* 0 = any free port */
    bool non_local;                       /* bind 0.0.0.0 instead of 127.0.0.1 */
    const char *unix_path;                /* Unix stream socket, NULL = none */
    uint32_t max_body_bytes;              /* 413 past it, enforced while reading (chunked too) */
    uint16_t statsd_port;                 /* for /info config.statsd_port */
    const char *default_env;              /* for /info config.default_env (DD_ENV or "none") */
    bool stats_forwarded;                 /* /info client_drop_p0s (true only while stats are served and forwarded) */
    bool stats_computed;                  /* the agent computes stats: /info client_drop_p0s false (tracers
                                             must send every trace), span_kinds_stats_computed, peer_tags */
    const char *agent_version;            /* Datadog-Agent-Version and /info version */
    /* Proxy targets: full URLs without a trailing '/'. */
    const char *profiling_url;            /* e.g. https://intake.profile.<site>/api/v2/profile */
    const char *pipeline_stats_url;       /* e.g. https://trace.agent.<site>/api/v0.1/pipeline_stats */
    const char *telemetry_base_url;       /* e.g. https://instrumentation-telemetry-intake.<site> */
    const char *evp_base_url;             /* DD_EVP_PROXY_CONFIG_DD_URL, or NULL: https://<subdomain>.<site> */
    const char *site;                     /* for the EVP default */
    dds__intake *intake;                  /* proxies submit their requests here (with our API key) */
    const dds__logger *log;
    /* Added: a proxied request the intake has not finished by then is answered 504 (the intake
     * keeps retrying network errors and 5xx, which would otherwise hold the client). 0 = 30000. */
    uint32_t proxy_timeout_ms;
} dds__receiver_config;

typedef struct dds__receiver_counters {
    dds__counter requests;                /* requests answered (any status) */
    dds__counter rejected;                /* 4xx answered: bad route, 400, 403, 411, 413 */
    dds__counter proxied;                 /* proxy requests forwarded */
    dds__counter proxy_failed;            /* proxy requests answered 502/504 */
} dds__receiver_counters;

typedef struct dds__receiver dds__receiver;

/* Bind now (caller's thread), so a taken port is a start error (DDS_ERR_TRACE_AGENT_START:
 * "cannot bind TCP 127.0.0.1:8126: Address already in use"). Config strings are copied. */
dds__receiver *dds__receiver_new(struct event_base *base, const dds__receiver_config *cfg,
                                 const dds__receiver_handlers *handlers, dds__receiver_counters *counters,
                                 dds_error *err);
uint16_t dds__receiver_port(const dds__receiver *r);
/* Stop accepting connections and close the listening sockets (the Unix socket file is
 * removed); requests already being served finish. Idempotent. */
void dds__receiver_close(dds__receiver *r);
/* During the traces callback: keep the body for later (another thread may read and free it).
 * Its bytes move out of the request without a copy; *body (the callback's body pointer) is
 * updated to where they are, which is where they were unless the move had to copy. NULL (and
 * *body untouched, the body still the request's) when out of memory or when there is nothing
 * to keep. Loop thread. */
dds__kept_body *dds__receiver_keep_body(const dds__trace_headers *h, const uint8_t **body);
/* Frees a kept body. Any thread (one at a time). Accepts NULL. */
void dds__receiver_kept_body_free(dds__kept_body *k);
/* Closes everything; pending proxy requests are answered 503 or dropped. Accepts NULL. */
void dds__receiver_free(dds__receiver *r);
#endif
