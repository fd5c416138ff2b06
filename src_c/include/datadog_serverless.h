/*
 * datadog_serverless.h - embeddable Datadog serverless monitoring core.
 *
 * OVERVIEW
 *   One services instance (dds_services) runs, on one background thread of its own (the "loop
 *   thread", one libevent event_base):
 *     - a DogStatsD server: UDP 127.0.0.1:8125 (and optionally a Unix datagram socket) that parses
 *       metrics, events and service checks, aggregates them exactly like the Datadog Agent (10 s
 *       buckets) and flushes them to the Datadog API;
 *     - a trace mini-agent (HTTP 127.0.0.1:8126), when built and enabled;
 *     - a logs agent (HTTP 127.0.0.1:10517, POST /v1/input), when enabled (off by default);
 *     - on Azure Functions, the enhanced metrics (container CPU, instance), made on the loop and
 *       sent with the DogStatsD metrics.
 *   Everything an instance owns hangs off its handle: two instances in one process work (with
 *   different ports), and starting a new instance after stopping one works.
 *
 * RULES THAT HOLD EVERYWHERE
 *   - Return convention: a call that can fail returns an int, 0 on success, otherwise a dds_errcode
 *     (negative). It then also fills the caller's dds_error (when err is not NULL) with that code
 *     and a message naming the field or the cause. On success *err is left untouched. Filling an
 *     error never allocates.
 *   - A call that fails has no side effect left behind: nothing to free, no callback invoked.
 *   - Ownership: the caller owns what it passes in; the library copies what it keeps (dds_start
 *     copies the whole config, strings included). Pointers handed to a callback are valid only
 *     during that callback. What the library creates is freed by the matching free function, which
 *     accepts NULL.
 *   - Threads: dds_flush, dds_stop, dds_is_running, dds_ports, dds_stats may be called from any
 *     thread, concurrently. Callbacks (status, log) run on the loop thread of the instance (the
 *     log callback also on the thread calling dds_start/dds_stop/dds_config_*). They must not
 *     block for long: ingestion waits while they run.
 *   - Signals: the library installs no signal handler and blocks all signals in its threads, so
 *     SIGINT/SIGTERM reach the host. The host decides when to call dds_stop.
 *   - fork(): an instance belongs to the process that started it. In a forked child it is inert:
 *     dds_is_running is false, dds_flush returns DDS_ERR_NOT_RUNNING, dds_stop returns 0 and
 *     dds_free releases nothing (the child shares the parent's sockets and epoll instance, which
 *     it must not touch). The parent's instance keeps running and sending, so nothing is sent
 *     twice. A child that wants its own services calls dds_start in the child.
 *   - Process-wide state: the one-time library init (libevent threading, libcurl global init, done
 *     by the first dds_start) and the log sink (dds_set_log_fn). Nothing else is global.
 */
#ifndef DATADOG_SERVERLESS_H
#define DATADOG_SERVERLESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DDS_API __attribute__((visibility("default")))
#else
#define DDS_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                      */

/* The library version, "MAJOR.MINOR.PATCH". Static storage; never NULL. Any thread. */
DDS_API const char *dds_version(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                       */

typedef enum dds_errcode {
    DDS_OK = 0,
    DDS_ERR_INVALID_CONFIG = -1,     /* "Invalid configuration: <field> ..." */
    DDS_ERR_ENVIRONMENT = -2,        /* "Failed to detect cloud environment" (reserved: detection never fails today) */
    DDS_ERR_TRACE_AGENT_START = -3,  /* "Failed to start trace agent: <cause>" (bind failure, ...) */
    DDS_ERR_DOGSTATSD_START = -4,    /* "Failed to start DogStatsD: <cause>" (port taken, bad socket path, ...) */
    DDS_ERR_ALREADY_STARTED = -5,    /* "Services already started" (bindings: start on a live object) */
    DDS_ERR_NOT_RUNNING = -6,        /* "Services not running" */
    DDS_ERR_SHUTDOWN_TIMEOUT = -7,   /* "Shutdown timeout exceeded" (stop) / "Flush timeout exceeded" (flush) */
    DDS_ERR_RUNTIME = -8,            /* "Runtime error: <cause>" (out of memory, thread creation, ...) */
    DDS_ERR_LOGS_AGENT_START = -9,   /* "Failed to start logs agent: <cause>" (bind failure, ...) */
} dds_errcode;

#define DDS_ERROR_MESSAGE_MAX 256

/* Filled by failing calls. A plain struct the caller allocates (on the stack is fine). */
typedef struct dds_error {
    int code;                             /* a dds_errcode */
    char message[DDS_ERROR_MESSAGE_MAX];  /* NUL-terminated, starts with the prefix shown above */
} dds_error;

/* Stable short name of a code: "ERR_INVALID_CONFIG", "ERR_ALREADY_STARTED", ... ("ERR_UNKNOWN"
 * for an unknown code). Static storage. Bindings use it as the error's `code`. Any thread. */
DDS_API const char *dds_errcode_name(int code);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                                */

typedef enum dds_log_level {
    DDS_LOG_TRACE = 0,
    DDS_LOG_DEBUG = 1,
    DDS_LOG_INFO = 2,
    DDS_LOG_WARN = 3,
    DDS_LOG_ERROR = 4,
    DDS_LOG_OFF = 5,
} dds_log_level;

/*
 * Everything an instance needs. Always set up with dds_config_init (so fields added later get
 * their default), then change what you need. String fields are borrowed: they must stay valid
 * until dds_start returns (dds_start copies them). NULL means "not set".
 * Environment variable of each field in brackets (read by dds_config_from_env only).
 */
typedef struct dds_config {
    /* Datadog account */
    const char *api_key;          /* [DD_API_KEY] NULL or "": nothing is sent; one warning, then one
                                     summary line per payload (endpoint, kind, items, bytes, never
                                     its contents) is written to dry_run_fd */
    const char *site;             /* [DD_SITE] "datadoghq.com"; [A-Za-z0-9._:-]+, a site this version
                                     does not know is used with a warning */
    const char *dd_url;           /* [DD_DD_URL, then DD_URL] metrics intake base URL override */
    const char *https_proxy;      /* [DD_PROXY_HTTPS, then HTTPS_PROXY] proxy for every request */
    const char *tls_ca_path;      /* [DD_TLS_CA_PATH] CA certificates that verify the intake: a PEM
                                     bundle file, or a directory of PEM files; one that does not
                                     exist or cannot be read is a validation error. NULL or "":
                                     found at start, first of $SSL_CERT_FILE, $SSL_CERT_DIR (':'
                                     list), the system bundles (/etc/ssl/certs/ca-certificates.crt,
                                     /etc/pki/tls/certs/ca-bundle.crt, ...), /etc/ssl/certs/.
                                     Found nowhere (with tls_verify): one error log line and status
                                     event at start, and every https request fails (is never sent
                                     unverified); dds_start still succeeds */
    bool tls_verify;              /* [DD_SKIP_SSL_VALIDATION=true clears it] true */
    bool dry_run;                 /* [DD_DRY_RUN, CLI --dry-run] false; when true nothing is sent and
                                     each payload is written in full as one JSON line to dry_run_fd */
    int dry_run_fd;               /* 1 (stdout) */

    /* Logging */
    dds_log_level log_level;      /* [DD_LOG_LEVEL trace|debug|info|warn|error|off] DDS_LOG_INFO */

    /* Unified service tagging and tags added to every metric */
    const char *tags;             /* [DD_TAGS] "k:v,k2:v2" (comma or space separated) */
    const char *env;              /* [DD_ENV] adds env:<env> */
    const char *service;          /* [DD_SERVICE] adds service:<service> */
    const char *version;          /* [DD_VERSION] adds version:<version> */

    /* DogStatsD */
    bool use_dogstatsd;           /* [DD_USE_DOGSTATSD] true */
    int32_t dogstatsd_port;       /* [DD_DOGSTATSD_PORT] 8125; 0 = any free port; 0-65535 */
    const char *dogstatsd_socket; /* [DD_DOGSTATSD_SOCKET] Unix datagram socket path, NULL = none */
    bool dogstatsd_non_local_traffic; /* [DD_DOGSTATSD_NON_LOCAL_TRAFFIC] false: bind 127.0.0.1 */
    uint32_t dogstatsd_buffer_size;   /* [DD_DOGSTATSD_BUFFER_SIZE] 8192 bytes per datagram, 512-65536 */
    uint32_t dogstatsd_so_rcvbuf;     /* [DD_DOGSTATSD_SO_RCVBUF] 0 = ask for 4 MiB, which the kernel
                                         silently caps at net.core.rmem_max (212992 by default) */
    uint32_t dogstatsd_queue_bytes;   /* [DD_DOGSTATSD_QUEUE_BYTES] 4194304: each DogStatsD socket is
                                         read by a thread of its own into a queue of this many bytes
                                         (a datagram takes its size + 8-15), which the loop thread
                                         parses from: a loop thread kept off the CPU by the host's
                                         own code loses nothing that fits. 0 = no thread, the loop
                                         reads the sockets itself; else 2 x (buffer size + 16) to
                                         1 GiB */
    const char *metric_namespace; /* [DD_STATSD_METRIC_NAMESPACE] prefix "<ns>." ; [A-Za-z][A-Za-z0-9_.]* */
    uint32_t context_limit;       /* [DD_DOGSTATSD_CONTEXT_LIMIT] 100000 live contexts; 0 = unlimited */
    uint32_t counter_expiry_s;    /* [DD_DOGSTATSD_EXPIRY_SECONDS] 300: zero-fill window of counters; 0 = off */
    const char *histogram_aggregates;  /* [DD_HISTOGRAM_AGGREGATES] "max,median,avg,count" of max|min|median|avg|sum|count */
    const char *histogram_percentiles; /* [DD_HISTOGRAM_PERCENTILES] "0.95", each in (0,1) */
    bool client_telemetry;        /* [DD_DOGSTATSD_CLIENT_TELEMETRY] true: aggregate
                                     datadog.dogstatsd.client.* like any metric; false drops them */
    uint32_t flush_interval_ms;   /* [DD_DOGSTATSD_FLUSH_INTERVAL_MS] 10000: period of the closed-bucket flush */

    /* Trace mini-agent (served by the trace pipeline) */
    bool use_trace_agent;         /* [DD_APM_ENABLED] true */
    int32_t apm_receiver_port;    /* [DD_APM_RECEIVER_PORT] 8126; 0 = any free port */
    const char *apm_receiver_socket; /* [DD_APM_RECEIVER_SOCKET] Unix stream socket path */
    bool apm_non_local_traffic;   /* [DD_APM_NON_LOCAL_TRAFFIC] false */
    const char *apm_dd_url;       /* [DD_APM_DD_URL] base URL of the traces, stats and pipeline stats
                                     intake, default https://trace.agent.<site> */
    const char *apm_profiling_dd_url; /* [DD_APM_PROFILING_DD_URL] a full URL, as in the Go agent, or a
                                         bare scheme://host[:port] prefix, as in the Rust binary
                                         (/api/v2/profile is appended); default
                                         https://intake.profile.<site>/api/v2/profile */
    const char *apm_telemetry_dd_url; /* [DD_APM_TELEMETRY_DD_URL] base URL, default
                                         https://instrumentation-telemetry-intake.<site> */
    const char *evp_proxy_dd_url;     /* [DD_EVP_PROXY_CONFIG_DD_URL] base URL in place of
                                         https://<X-Datadog-EVP-Subdomain>.<site> */
    uint32_t apm_max_request_bytes;   /* [DD_APM_MAX_PAYLOAD_SIZE] 26214400 (25 MiB): 413 past it */
    bool apm_remove_query_string;     /* [DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING] false */
    bool apm_obfuscate_credit_cards;  /* [DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED] true: Luhn-valid
                                         card numbers in span tags become "?" */
    /* Obfuscation (the Go Agent's defaults, which differ from the Rust binary's: see README
     * "Obfuscation"). SQL resources of "sql" and "cassandra" spans are always obfuscated, and
     * the resource of "redis" and "valkey" spans is always reduced to its command names. */
    bool apm_remove_paths_with_digits; /* [DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS] false:
                                         http.url path segments holding a digit become "?" */
    bool apm_obfuscate_redis;         /* [DD_APM_OBFUSCATION_REDIS_ENABLED] true: the values in
                                         redis.raw_command become "?" (SET k ?, AUTH ?, ...) */
    bool apm_redis_remove_all_args;   /* [DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS] false: every
                                         argument goes ("SET ?") */
    bool apm_obfuscate_valkey;        /* [DD_APM_OBFUSCATION_VALKEY_ENABLED] true: valkey.raw_command, likewise */
    bool apm_valkey_remove_all_args;  /* [DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS] false */
    bool apm_obfuscate_memcached;     /* [DD_APM_OBFUSCATION_MEMCACHED_ENABLED] true: memcached.command
                                         is rewritten, see the next field */
    bool apm_memcached_keep_command;  /* [DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND] false: the tag
                                         becomes ""; true keeps its first line ("set k 0 60 5") */
    bool apm_remove_stack_traces;     /* [DD_APM_OBFUSCATION_REMOVE_STACK_TRACES] false: error.stack
                                         becomes "?" */
    bool apm_obfuscation_cache_enabled; /* [DD_APM_OBFUSCATION_CACHE_ENABLED] true: SQL obfuscation
                                         results are kept across requests (a hit needs the query's
                                         bytes equal: same output, less CPU), as the Go Agent does */
    uint32_t apm_obfuscation_cache_max_size; /* [DD_APM_OBFUSCATION_CACHE_MAX_SIZE] 2097152: bytes the
                                         cache's entries may hold (the Go Agent's default: 5000000) */
    const char *apm_replace_tags;     /* [DD_APM_REPLACE_TAGS] NULL: a JSON list of
                                         {"name","pattern","repl"} rules; name "*" is every tag and
                                         the resource, "resource.name" the resource, else one tag;
                                         pattern is a POSIX extended regex (RE2's \d \w \s
                                         translated), repl may use $1 or ${1}. Checked by
                                         dds_config_validate (at most 64 rules) */
    bool agent_stats_computation_enabled; /* [DD_AGENT_STATS_COMPUTATION_ENABLED] false: when true the
                                         trace agent computes trace stats (hits, errors, latency
                                         sketches per 10 s bucket) from the spans of requests without
                                         Datadog-Client-Computed-Stats, sends them to
                                         /api/v0.2/stats (ClientComputed false), and /info tells
                                         tracers not to drop unsampled traces */

    /* Logs agent: HTTP POST /v1/input (a JSON array of {message, timestamp, ...} entries),
     * batched to the logs intake on the flush tick, on dds_flush and on dds_stop */
    bool logs_enabled;            /* [DD_LOGS_ENABLED] false */
    int32_t logs_port;            /* [DD_LOGS_PORT] 10517; 0 = any free port (dds_logs_port) */
    bool logs_non_local_traffic;  /* [DD_LOGS_NON_LOCAL_TRAFFIC] false: bind 127.0.0.1 */
    const char *logs_dd_url;      /* [DD_LOGS_CONFIG_LOGS_DD_URL] intake override: a URL such as
                                     http://127.0.0.1:9000 (/api/v2/logs is appended) or the Agent's
                                     host:port form (then https://host:port/api/v2/logs); default
                                     https://http-intake.logs.<site>/api/v2/logs */
    bool logs_use_compression;    /* [DD_LOGS_CONFIG_USE_COMPRESSION] true: zstd bodies */
    int32_t logs_compression_level; /* [DD_LOGS_CONFIG_COMPRESSION_LEVEL] 3, 1-19 */
    uint32_t logs_max_queued_bytes; /* [DD_LOGS_MAX_QUEUED_BYTES] 8 MiB of accepted entries waiting
                                       for the next flush (at least 1 MiB); entries past it (or past
                                       100000 entries) are dropped and counted */
    bool logs_opw_enabled;        /* [DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_ENABLED] false: when true
                                     batches go to logs_opw_url instead of the Datadog intake, never
                                     compressed and without DD-PROTOCOL (still with DD-API-KEY) */
    const char *logs_opw_url;     /* [DD_OBSERVABILITY_PIPELINES_WORKER_LOGS_URL] the full http(s) URL
                                     of an Observability Pipelines Worker; required (validation
                                     error) when logs_opw_enabled and logs_enabled are true */
    const char *logs_additional_endpoints; /* [DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS] JSON array of
                                     {"api_key","Host","Port","is_reliable"} (keys in any case; Port
                                     443 and is_reliable true when missing; at most 8): every batch
                                     also goes to https://Host:Port/api/v2/logs with that key, with
                                     its own retries and queues. dds_flush and dds_stop wait for
                                     the reliable ones only. Bad JSON is a validation error; the
                                     keys are never logged */

    /* Azure Functions enhanced metrics: when Azure Functions is detected (FUNCTIONS_EXTENSION_VERSION,
     * FUNCTIONS_WORKER_RUNTIME and WEBSITE_SITE_NAME set), azure.functions.enhanced.cpu.usage
     * (a distribution in nanocores of the container's cgroup CPU time, every 1 s) and
     * azure.functions.enhanced.instance (gauge 1 every 3 s, tagged instance:<name>) are
     * aggregated and sent with the DogStatsD metrics, even when use_dogstatsd is false (then no
     * socket is bound for them) */
    bool enhanced_metrics_enabled; /* [DD_ENHANCED_METRICS_ENABLED] true; false stops the CPU
                                      metric (the instance metric is sent regardless, as the Rust
                                      binary does) */

    /* Transport */
    uint32_t request_timeout_ms;  /* [DD_FORWARDER_TIMEOUT, else DD_FLUSH_TIMEOUT, in seconds] 20000 */
    uint32_t retry_queue_max_bytes; /* [DD_FORWARDER_RETRY_QUEUE_PAYLOADS_MAX_SIZE] 15 MiB */
    uint32_t send_queue_max_bytes;  /* [DD_FORWARDER_SEND_QUEUE_PAYLOADS_MAX_SIZE] 32 MiB of payloads
                                       waiting for their first attempt (every request slot busy: a
                                       slow intake), per intake; past it the oldest are dropped and
                                       counted (send_queue_dropped_*); at least 1024 */
} dds_config;

/* Fill cfg with the defaults shown above. Never fails. Any thread. */
DDS_API void dds_config_init(dds_config *cfg);

/*
 * Overwrite the fields of cfg whose environment variable is set (names above). Strings point
 * into the process environment (getenv): do not change the environment until dds_start returns.
 * A variable that cannot be converted (DD_DOGSTATSD_PORT=abc, DD_USE_DOGSTATSD=maybe) is an
 * error DDS_ERR_INVALID_CONFIG naming the variable; fields read before it keep their new value.
 * Range checks are left to dds_config_validate. Not thread-safe against setenv.
 */
DDS_API int dds_config_from_env(dds_config *cfg, dds_error *err);

/*
 * Check cfg: port ranges, known Datadog site, log level, namespace rules, buffer sizes,
 * histogram aggregates/percentiles, URL overrides (http:// or https://), tls_ca_path (when set:
 * an existing, readable file or directory; stat only, no certificate is read). Returns 0 or
 * DDS_ERR_INVALID_CONFIG with "Invalid configuration: <field> must be ..., got ...".
 * A missing API key is not an error (dds_start warns and runs in dry-run mode). Any thread.
 */
DDS_API int dds_config_validate(const dds_config *cfg, dds_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                    */

typedef struct dds_services dds_services;  /* opaque */

typedef enum dds_status_type {
    DDS_STATUS_READY = 0,    /* a service is bound and serving; `service` says which, `port` its port */
    DDS_STATUS_ERROR = 1,    /* a runtime problem the user should know of (intake rejected the API key,
                                payload dropped, no CA certificates found at start, the platform's
                                runtime check failed: Azure Functions without
                                /home/site/wwwroot/host.json, Flex Consumption without
                                DD_AZURE_RESOURCE_GROUP, Google Cloud Functions whose metadata
                                server does not answer as a serverless one, ...); `message`
                                says what */
    DDS_STATUS_STOPPED = 2,  /* the instance stopped; the last event an instance sends */
} dds_status_type;

typedef enum dds_service_kind {
    DDS_SERVICE_NONE = 0,
    DDS_SERVICE_DOGSTATSD = 1,   /* "dogstatsd" */
    DDS_SERVICE_TRACE_AGENT = 2, /* "trace-agent" */
    DDS_SERVICE_LOGS_AGENT = 3,  /* "logs-agent" */
} dds_service_kind;

typedef struct dds_status {
    dds_status_type type;
    dds_service_kind service;
    uint16_t port;            /* READY: the bound port (0 for a Unix socket only) */
    const char *message;      /* may be NULL; valid during the callback only */
} dds_status;

/* "dogstatsd", "trace-agent", "logs-agent", or "process" for DDS_SERVICE_NONE (an event about the
 * whole instance: STOPPED, no CA certificates found). An ERROR about a payload names the service
 * that produced it. Never NULL. Static storage. */
DDS_API const char *dds_service_name(dds_service_kind kind);

/*
 * Status callback: runs on the loop thread, in order, never concurrently with itself for one
 * instance. It may call dds_stop/dds_flush/dds_stats on its own instance (dds_stop from here
 * starts the stop and returns at once; dds_flush from here returns DDS_ERR_RUNTIME since it
 * would wait on itself). It must not call dds_free on its own instance.
 */
typedef void (*dds_status_fn)(const dds_status *status, void *user);

/*
 * Validate cfg, copy it, bind the sockets, start the loop thread, and return once every enabled
 * listener is bound and serving (READY events are then delivered from the loop thread). On
 * failure nothing is left running, *out is untouched, the callback is never called, and the
 * error says which service failed: DDS_ERR_INVALID_CONFIG, DDS_ERR_DOGSTATSD_START (port taken:
 * "Failed to start DogStatsD: cannot bind UDP 127.0.0.1:8125: Address already in use"),
 * DDS_ERR_TRACE_AGENT_START, DDS_ERR_LOGS_AGENT_START, DDS_ERR_RUNTIME. on_status may be NULL; user is passed back to it.
 * Finding no CA certificates (see tls_ca_path) is not a start failure: the ERROR event about it
 * follows the READY events, and the instance runs without ever sending over an unverified link.
 * Blocks for the bind and the thread start (typically well under a millisecond). Any thread.
 * The returned handle is freed with dds_free.
 */
DDS_API int dds_start(const dds_config *cfg, dds_status_fn on_status, void *user,
                      dds_services **out, dds_error *err);

/*
 * Send everything now: every aggregation bucket (open ones included; the trace stats buckets too
 * when agent_stats_computation_enabled), pending events, service checks, traces and the log
 * entries the logs agent accepted, then wait until the intake has answered every payload (retries included) or
 * timeout_ms has passed. Blocks the caller (not the loop). Returns 0, DDS_ERR_NOT_RUNNING,
 * DDS_ERR_SHUTDOWN_TIMEOUT ("Flush timeout exceeded": payloads still pending stay queued and
 * keep being retried), or DDS_ERR_RUNTIME when called from the status callback. Any thread.
 */
DDS_API int dds_flush(dds_services *s, uint32_t timeout_ms, dds_error *err);

/*
 * Graceful stop: stop accepting, drain what the sockets already hold, flush everything, wait for
 * the intake, stop the loop thread and join it, all bounded by timeout_ms (0 = the default 5000).
 * Idempotent: a second call returns 0 at once. From the status callback it starts the stop and
 * returns 0 without waiting (the thread is joined by a later dds_stop or by dds_free). Returns 0,
 * or DDS_ERR_SHUTDOWN_TIMEOUT when the intake did not answer in time (what was pending is
 * dropped and counted; the thread is still joined). The STOPPED status event is the last one.
 * Any thread.
 */
DDS_API int dds_stop(dds_services *s, uint32_t timeout_ms, dds_error *err);

/* True between a successful dds_start and the start of dds_stop. Any thread, never blocks. */
DDS_API bool dds_is_running(const dds_services *s);

/* The bound ports (0 for a disabled service). Either pointer may be NULL. Any thread. */
DDS_API void dds_ports(const dds_services *s, uint16_t *dogstatsd, uint16_t *trace);

/* The bound port of the logs agent (0 when it is disabled, or s is NULL). Any thread. */
DDS_API uint16_t dds_logs_port(const dds_services *s);

/*
 * Stop (as dds_stop with the default timeout) if still running, join, and release everything.
 * Accepts NULL. Must not be called from the status callback of the same instance. After it
 * returns no callback of this instance runs again.
 */
DDS_API void dds_free(dds_services *s);

/* ------------------------------------------------------------------------------------------ */
/* Stats                                                                                        */

/* Counters since start. Monotonic; read without locks (each is exact, the set is not a snapshot). */
typedef struct dds_stats {
    /* DogStatsD ingest */
    uint64_t dsd_packets;            /* datagrams received (UDP + UDS + HTTP proxy bodies) */
    uint64_t dsd_packets_truncated;  /* datagrams longer than the buffer: dropped whole */
    uint64_t dsd_packets_dropped_queue;  /* datagrams dropped because the receive queue was full */
    uint64_t dsd_packets_dropped_socket; /* datagrams the kernel dropped because the socket's receive
                                            buffer was full (its own count, SO_RXQ_OVFL) */
    uint64_t dsd_bytes;              /* payload bytes received (UDP + UDS + HTTP proxy bodies) */
    uint64_t dsd_metric_lines;       /* metric lines parsed OK */
    uint64_t dsd_events;             /* events parsed OK */
    uint64_t dsd_service_checks;     /* service checks parsed OK */
    uint64_t dsd_parse_errors;       /* lines rejected by the parser (metrics, events, checks) */
    uint64_t dsd_samples;            /* samples aggregated (a packed line counts each value) */
    uint64_t dsd_samples_dropped;    /* NaN/Inf samples, timestamped non-gauge/count samples */
    uint64_t dsd_contexts_dropped;   /* samples dropped because the context limit was reached */
    uint64_t dsd_contexts;           /* live contexts right now (a gauge, not monotonic) */
    uint64_t dsd_events_dropped;     /* events/service checks over the pending bound */
    /* Intake (all payload kinds) */
    uint64_t payloads_sent;          /* answered 2xx */
    uint64_t payloads_retried;       /* retry attempts made */
    uint64_t payloads_dropped;       /* given up: 400/403/413, retry queue overflow, stop deadline, too large */
    uint64_t payload_bytes_sent;     /* body bytes of payloads answered 2xx */
    uint64_t series_sent;            /* metric series in payloads answered 2xx */
    uint64_t sketches_sent;          /* sketches in payloads answered 2xx */
    uint64_t dry_run_payloads;       /* payloads written to the dry-run output */
    /* Trace agent */
    uint64_t trace_requests;         /* trace requests answered 2xx */
    uint64_t trace_spans;            /* spans accepted */
    uint64_t trace_dropped;          /* traces dropped (decode error, invalid ids, bounds) */
    uint64_t trace_spans_dropped;    /* spans dropped in processing or encoding (invalid, out of memory) */
    uint64_t trace_spans_obfuscated; /* sql/cassandra/redis/valkey/memcached spans whose resource or
                                        command tag an obfuscator rewrote */
    uint64_t trace_sql_non_parsable; /* SQL resources the tokenizer rejected: sent as
                                        "Non-parsable SQL query" (they are in trace_spans_obfuscated) */
    /* Agent-computed trace stats (agent_stats_computation_enabled) */
    uint64_t trace_stats_spans;      /* eligible spans aggregated into stats */
    uint64_t trace_stats_spans_overflow; /* of those, aggregated under the overflow key (live-key bound reached) */
    uint64_t trace_stats_spans_dropped;  /* eligible spans lost (tracer-metadata bound, out of memory) */
    uint64_t trace_stats_buckets;    /* 10 s buckets flushed */
    uint64_t trace_stats_keys;       /* aggregation keys (ClientGroupedStats) flushed */
    /* Logs agent */
    uint64_t logs_requests;          /* POST /v1/input requests answered 200 */
    uint64_t logs_entries;           /* entries accepted into the queue */
    uint64_t logs_entries_dropped;   /* entries dropped: over 1 MiB, queue full, out of memory */
    uint64_t logs_bytes;             /* bytes of the entries accepted */
    /* Send queue: payloads waiting for their first attempt, every intake together */
    uint64_t send_queue_bytes;           /* bytes waiting right now (a gauge, not monotonic) */
    uint64_t send_queue_dropped_metrics; /* series, sketches, service checks, events dropped: queue full */
    uint64_t send_queue_dropped_traces;  /* trace and stats payloads dropped: queue full */
    uint64_t send_queue_dropped_logs;    /* logs batches dropped: queue full */
    uint64_t send_queue_dropped_proxy;   /* proxied tracer requests dropped: queue full */
    /* Azure Functions enhanced metrics */
    uint64_t enhanced_samples;       /* CPU and instance samples aggregated */
    uint64_t enhanced_cpu_unavailable; /* 1 s CPU ticks with no readable cgroup counter (or garbage in it) */
} dds_stats;

/* Copy the counters into *out. Any thread, never blocks, works after stop too. */
DDS_API void dds_stats_get(const dds_services *s, dds_stats *out);

/* ------------------------------------------------------------------------------------------ */
/* Logging                                                                                      */

/*
 * Log sink: one call per line, without a trailing newline. `line` is valid during the call only.
 * Runs on whatever thread logs (mostly loop threads), possibly concurrently from several
 * instances: the sink must be thread-safe. The API key is never part of a line.
 */
typedef void (*dds_log_fn)(dds_log_level level, const char *line, void *user);

/*
 * PROCESS-WIDE: set the sink for every instance (NULL restores the default: stderr, one line
 * per write, as "<RFC3339 time> <LEVEL> datadog-serverless: <message>"). Each instance filters
 * by its own log_level before calling the sink. Call it before dds_start; changing it while
 * instances run is safe (the switch is atomic) but the previous sink may still get a line that
 * was being written.
 */
DDS_API void dds_set_log_fn(dds_log_fn fn, void *user);

/* "trace", "debug", "info", "warn", "error", "off". Static storage. */
DDS_API const char *dds_log_level_name(dds_log_level level);

/* ------------------------------------------------------------------------------------------ */
/* The standalone program                                                                        */

/*
 * The whole datadog-serverless-compat program: parse argv (--help, --version, --dry-run), read
 * the DD_* environment, start, run until SIGINT or SIGTERM, stop with a final flush, print a
 * summary on stderr. Returns the exit code: 0 after a graceful stop, 1 when the services could
 * not start or the stop timed out, 2 for a bad argument or configuration (one line on stderr).
 * It blocks SIGINT and SIGTERM in the calling thread and takes them with sigwait; the caller's
 * signal mask is restored before it returns, and a signal taken is not delivered again. Call it
 * from the main thread (bindings release their interpreter lock around it). Blocks.
 */
DDS_API int dds_compat_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* DATADOG_SERVERLESS_H */
