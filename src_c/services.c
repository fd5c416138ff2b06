/* services.c - lifecycle of one instance: start (bind, then the loop thread), flush and stop
 * commands from any thread, periodic flushes, status events. The only file that knows every
 * pipeline. Other threads reach the loop only through the command queue; nothing here blocks
 * the loop thread, and no command waits on the loop from the loop itself. */
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloud.h"
#include "cloud_gcp.h"
#include "common/clock.h"
#include "config.h"
#include "config_endpoints.h"
#include "dogstatsd/server.h"
#include "enhanced/azure_tags.h"
#include "enhanced/collector.h"
#include "error.h"
#include "log.h"
#include "logs/batch.h"
#include "logs/listener.h"
#include "trace/agent.h"
#include "transport/cacerts.h"
#include "transport/intake.h"

#define DEFAULT_STOP_TIMEOUT_MS 5000
#define MAX_BASE_TAGS 64
/* The "no CA certificates" message: its fixed text (about 300 bytes) and the list of places. */
#define CA_ERROR_MAX (DDS__CACERTS_SEARCHED_MAX + 512)

enum { ST_RUNNING = 1, ST_STOPPING = 2, ST_STOPPED = 3 };
enum { CMD_FLUSH = 1, CMD_STOP = 2 };

/* A request from another thread. Shared by the caller and the loop: refs counts both, the last
 * one to let go frees it (the caller may give up at its timeout while the loop still holds it). */
typedef struct cmd {
    struct cmd *next;
    int kind;
    int64_t deadline_ms;     /* monotonic */
    int result;
    bool done;
    int refs;
    bool heap;               /* flush commands are malloc'd; the stop command is embedded */
} cmd;

/* Every counter of the instance, in one place so dds_stats_get works after stop too. Written on
 * the loop thread only. */
typedef struct counters {
    dds__dsd_counters dsd;
    dds__counter dsd_http_bytes;     /* /dogstatsd/v2/proxy body bytes */
    dds__trace_agent_counters trace;
    dds__intake_counters intake;
    dds__logs_counters logs;
    dds__enhanced_counters enhanced;
} counters;

struct dds_services {
    dds_config cfg;              /* owned deep copy */
    dds__logger log;
    dds__cloud cloud;
    dds_status_fn on_status;
    void *user;
    char *metrics_url;
    char *logs_url;
    /* DD_LOGS_CONFIG_ADDITIONAL_ENDPOINTS: one intake each (own key, own queues), so that a slow
     * or dead extra destination never takes room from the main one. Flush and stop wait for the
     * reliable ones only; what an unreliable one still holds at the end of a stop is dropped. */
    dds__intake *logs_extra[DDS__LOGS_ENDPOINTS_MAX];
    char *logs_extra_url[DDS__LOGS_ENDPOINTS_MAX];
    bool logs_extra_reliable[DDS__LOGS_ENDPOINTS_MAX];
    size_t n_logs_extra;
    char *base_tag_store[MAX_BASE_TAGS];
    dds__slice base_tags[MAX_BASE_TAGS];
    size_t n_base_tags;
    bool dry_run;
    /* Set at start when https requests cannot be verified (no CA certificates found); sent as an
     * ERROR status event by the loop thread after the READY ones. Read-only once the loop runs. */
    char ca_error[CA_ERROR_MAX];
    /* Set at start when the platform's runtime check fails (Azure Functions without its app
     * directory, Flex Consumption without a resource group): the Rust binary exits there; here it
     * is an ERROR status event after the READY ones, and everything keeps running. */
    char cloud_error[512];

    struct event_base *base;
    struct event *cmd_ev;
    struct event *flush_ev;
    struct event *deadline_ev;   /* wakes the loop at the earliest waiting command's deadline */
    dds__dsd *dsd;
    dds__trace_agent *trace;
    dds__intake *intake;
    dds__logs_batcher *logs;
    dds__logs_listener *logs_listener;
    dds__enhanced *enhanced;
    dds__gcp_check *gcp_check;
    counters counters;
    uint16_t dsd_port, trace_port, logs_port;

    pthread_t thread;
    bool thread_started;
    /* After fork() the child has a copy of this struct but no loop thread, and shares the
     * parent's epoll instance and sockets: every call in the child leaves them alone. */
    pid_t owner_pid;
    /* Set by the loop thread itself before its first callback: pthread_create may store
     * `thread` only after the new thread has already run a status callback. */
    pthread_t loop_id;
    _Atomic bool loop_id_set;
    _Atomic int state;
    _Atomic bool stop_requested;

    /* Command queue: mu guards queue, waiting, cmd->done/result/refs; cv signals completion. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cmd *queue;
    cmd *waiting;                /* loop-owned list of commands waiting for the intake to drain */
    cmd stop_cmd;                /* embedded: a stop happens once */
    bool stop_queued;

    /* Serialises dds_stop / dds_free from several threads; never taken on the loop thread. */
    pthread_mutex_t lifecycle_mu;
    bool joined;
    bool stop_finished;          /* loop side: the stop sequence has run (or is running) */
};

/* ---- process-wide init ------------------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_init_rc;

static void global_init(void) {
    if (evthread_use_pthreads() != 0) global_init_rc = -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) global_init_rc = -1;
}

/* ---- status ------------------------------------------------------------------------------------ */

const char *dds_service_name(dds_service_kind kind) {
    switch (kind) {
    case DDS_SERVICE_DOGSTATSD: return "dogstatsd";
    case DDS_SERVICE_TRACE_AGENT: return "trace-agent";
    case DDS_SERVICE_LOGS_AGENT: return "logs-agent";
    default: return "process";
    }
}

static void emit(dds_services *s, dds_status_type type, dds_service_kind svc, uint16_t port, const char *msg) {
    if (!s->on_status) return;
    dds_status st = {.type = type, .service = svc, .port = port, .message = msg};
    s->on_status(&st, s->user);
}

/* A transport problem belongs to the service whose payload it concerns. */
static void on_intake_error(void *user, dds__payload_kind kind, const char *message) {
    dds_services *s = user;
    dds_service_kind service = DDS_SERVICE_NONE;
    switch (kind) {
    case DDS__PK_SERIES:
    case DDS__PK_SKETCHES:
    case DDS__PK_SERVICE_CHECKS:
    case DDS__PK_EVENTS: service = DDS_SERVICE_DOGSTATSD; break;
    case DDS__PK_TRACES:
    case DDS__PK_STATS:
    case DDS__PK_PROXY: service = DDS_SERVICE_TRACE_AGENT; break;
    case DDS__PK_LOGS: service = DDS_SERVICE_LOGS_AGENT; break;
    }
    emit(s, DDS_STATUS_ERROR, service, 0, message);
}

/* ---- commands ---------------------------------------------------------------------------------- */

static bool on_loop_thread(const dds_services *s) {
    return atomic_load(&s->loop_id_set) && pthread_equal(pthread_self(), s->loop_id);
}

static void cmd_release_locked(cmd *c) {
    if (--c->refs == 0 && c->heap) free(c);
}

/* Loop thread: finish a command and wake its caller. */
static void cmd_complete(dds_services *s, cmd *c, int result) {
    pthread_mutex_lock(&s->mu);
    c->result = result;
    c->done = true;
    pthread_cond_broadcast(&s->cv);
    cmd_release_locked(c);
    pthread_mutex_unlock(&s->mu);
}

static void submit_all(dds_services *s, dds__payload *list) {
    while (list) {
        dds__payload *next = list->next;
        list->next = NULL;
        dds__intake_submit(s->intake, list);
        list = next;
    }
}

static void submit_to(dds__intake *in, dds__payload *list) {
    while (list) {
        dds__payload *next = list->next;
        list->next = NULL;
        dds__intake_submit(in, list);
        list = next;
    }
}

/* What flush and stop wait for: the main intake and the reliable additional logs endpoints. */
static size_t pending_waited(const dds_services *s) {
    size_t n = dds__intake_pending(s->intake);
    for (size_t i = 0; i < s->n_logs_extra; i++)
        if (s->logs_extra_reliable[i]) n += dds__intake_pending(s->logs_extra[i]);
    return n;
}

static void flush_pipelines(dds_services *s, bool force) {
    if (s->dsd) submit_all(s, dds__dsd_flush(s->dsd, force));
    /* Logs have no buckets either: every flush, periodic or not, sends all that is queued. */
    if (s->logs) {
        dds__payload *extra[DDS__LOGS_ENDPOINTS_MAX];
        submit_all(s, dds__logs_batcher_take(s->logs, s->n_logs_extra ? extra : NULL));
        for (size_t i = 0; i < s->n_logs_extra; i++) submit_to(s->logs_extra[i], extra[i]);
    }
    /* Traces have no buckets: a forced flush sends what is pending, the periodic one is the
     * trace agent's own 3 s timer. A forced flush also retries at once what waits in backoff. */
    if (force) {
        if (s->trace) dds__trace_agent_flush(s->trace);
        dds__intake_retry_now(s->intake);
        for (size_t i = 0; i < s->n_logs_extra; i++) dds__intake_retry_now(s->logs_extra[i]);
    }
}

static void arm_deadline(dds_services *s) {
    int64_t earliest = INT64_MAX;
    for (cmd *c = s->waiting; c; c = c->next)
        if (c->deadline_ms < earliest) earliest = c->deadline_ms;
    if (earliest == INT64_MAX) {
        event_del(s->deadline_ev);
        return;
    }
    int64_t d = earliest - dds__mono_ms();
    if (d < 0) d = 0;
    struct timeval tv = {.tv_sec = d / 1000, .tv_usec = (d % 1000) * 1000};
    event_add(s->deadline_ev, &tv);
}

static void finish_stop(dds_services *s, int result);

/* Complete waiting commands: all of them when the intake is drained, the expired ones otherwise. */
static void settle_waiting(dds_services *s, bool drained) {
    int64_t now = dds__mono_ms();
    cmd **pp = &s->waiting;
    while (*pp) {
        cmd *c = *pp;
        if (drained || now >= c->deadline_ms) {
            *pp = c->next;
            c->next = NULL;
            if (c->kind == CMD_STOP) {
                if (!drained) {
                    size_t n = dds__intake_abandon(s->intake);
                    for (size_t i = 0; i < s->n_logs_extra; i++) n += dds__intake_abandon(s->logs_extra[i]);
                    dds__log_warn(&s->log, "stop: the intake did not answer in time; %zu payload(s) dropped", n);
                }
                finish_stop(s, drained ? 0 : DDS_ERR_SHUTDOWN_TIMEOUT);
            } else {
                cmd_complete(s, c, drained ? 0 : DDS_ERR_SHUTDOWN_TIMEOUT);
            }
            pp = &s->waiting; /* finish_stop may have completed others: rescan */
        } else {
            pp = &c->next;
        }
    }
    arm_deadline(s);
}

static void on_drained(void *user) {
    dds_services *s = user;
    /* One intake drained; the others it waits for may still hold payloads. */
    if (s->waiting && pending_waited(s) == 0) settle_waiting(s, true);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds_services *s = arg;
    settle_waiting(s, pending_waited(s) == 0);
}

static void wait_for_intake(dds_services *s, cmd *c) {
    if (pending_waited(s) == 0) {
        c->next = NULL;
        if (c->kind == CMD_STOP)
            finish_stop(s, 0);
        else
            cmd_complete(s, c, 0);
        return;
    }
    c->next = s->waiting;
    s->waiting = c;
    arm_deadline(s);
}

/* Loop thread: the last step of a stop. Every waiting flush is answered, STOPPED is the last
 * status event, and the loop exits. */
static void finish_stop(dds_services *s, int result) {
    while (s->waiting) {
        cmd *c = s->waiting;
        s->waiting = c->next;
        if (c->kind == CMD_FLUSH) cmd_complete(s, c, pending_waited(s) ? DDS_ERR_SHUTDOWN_TIMEOUT : 0);
    }
    atomic_store(&s->state, ST_STOPPED);
    emit(s, DDS_STATUS_STOPPED, DDS_SERVICE_NONE, 0, result ? "stopped: shutdown timeout exceeded" : "stopped");
    event_base_loopbreak(s->base);
    pthread_mutex_lock(&s->mu);
    s->stop_cmd.result = result;
    s->stop_cmd.done = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void begin_stop(dds_services *s, cmd *c) {
    if (s->stop_finished) return;
    s->stop_finished = true;
    event_del(s->flush_ev);
    dds__enhanced_stop(s->enhanced);
    /* Stop accepting first; requests already being served finish on this loop before the
     * intake is waited for. What the kernel already holds was sent before stop was called:
     * read it, then close. */
    if (s->trace) dds__trace_agent_close(s->trace);
    if (s->logs_listener) dds__logs_listener_close(s->logs_listener);
    if (s->dsd) dds__dsd_drain_and_close(s->dsd);
    flush_pipelines(s, true);
    wait_for_intake(s, c);
}

static void on_command(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dds_services *s = arg;
    pthread_mutex_lock(&s->mu);
    cmd *list = s->queue;
    s->queue = NULL;
    pthread_mutex_unlock(&s->mu);
    /* The queue is LIFO-linked; restore arrival order. */
    cmd *ordered = NULL;
    while (list) {
        cmd *next = list->next;
        list->next = ordered;
        ordered = list;
        list = next;
    }
    while (ordered) {
        cmd *c = ordered;
        ordered = c->next;
        c->next = NULL;
        if (c->kind == CMD_STOP) {
            begin_stop(s, c);
        } else if (s->stop_finished) {
            cmd_complete(s, c, DDS_ERR_NOT_RUNNING);
        } else {
            /* A datagram sent right before the flush may still sit in the socket: it belongs to
             * this flush, as it does to a stop. */
            if (s->dsd) dds__dsd_drain(s->dsd);
            flush_pipelines(s, true);
            wait_for_intake(s, c);
        }
    }
}

/* Any thread: queue c and wake the loop. */
static void cmd_post(dds_services *s, cmd *c) {
    pthread_mutex_lock(&s->mu);
    c->next = s->queue;
    s->queue = c;
    pthread_mutex_unlock(&s->mu);
    event_active(s->cmd_ev, EV_READ, 0);
}

/* Caller thread: wait for c until its deadline (plus grace for the loop to act on it). */
static int cmd_wait(dds_services *s, cmd *c, int64_t grace_ms) {
    int64_t until = c->deadline_ms + grace_ms;
    pthread_mutex_lock(&s->mu);
    while (!c->done) {
        int64_t left = until - dds__mono_ms();
        if (left <= 0) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    int rc = c->done ? c->result : DDS_ERR_SHUTDOWN_TIMEOUT;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- loop thread ------------------------------------------------------------------------------- */

static void on_flush_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    flush_pipelines(arg, false);
}

static void *loop_main(void *arg) {
    dds_services *s = arg;
    s->loop_id = pthread_self();
    atomic_store(&s->loop_id_set, true);
    if (s->trace) emit(s, DDS_STATUS_READY, DDS_SERVICE_TRACE_AGENT, s->trace_port, "trace-agent ready");
    if (s->dsd && s->cfg.use_dogstatsd) emit(s, DDS_STATUS_READY, DDS_SERVICE_DOGSTATSD, s->dsd_port, "dogstatsd ready");
    if (s->logs_listener) emit(s, DDS_STATUS_READY, DDS_SERVICE_LOGS_AGENT, s->logs_port, "logs-agent ready");
    if (s->ca_error[0]) emit(s, DDS_STATUS_ERROR, DDS_SERVICE_NONE, 0, s->ca_error);
    if (s->cloud_error[0]) emit(s, DDS_STATUS_ERROR, DDS_SERVICE_NONE, 0, s->cloud_error);
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* The metadata server's address: 169.254.169.254:80, or GCE_METADATA_HOST (the variable Google's
 * own client libraries honour, for emulators and tests) when it is a numeric address with an
 * optional port: "127.0.0.1:8080", "[::1]:8080". Anything else is one warning and the default
 * (nothing is ever looked up: the loop must not block). */
static void gcp_metadata_address(dds_services *s, char *out, size_t cap, uint16_t *port) {
    snprintf(out, cap, "%s", DDS__GCP_METADATA_ADDRESS);
    *port = 80;
    const char *v = getenv("GCE_METADATA_HOST");
    if (!v || !v[0]) return;
    char host[64];
    const char *colon = NULL;
    if (v[0] == '[') {
        const char *end = strchr(v, ']');
        if (!end || (size_t)(end - v - 1) >= sizeof(host)) goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)(end - v - 1), v + 1);
        if (end[1] == ':') colon = end + 1;
        else if (end[1]) goto bad;
    } else {
        colon = strrchr(v, ':');
        if (colon && strchr(v, ':') != colon) colon = NULL; /* a bare IPv6 address */
        size_t n = colon ? (size_t)(colon - v) : strlen(v);
        if (n >= sizeof(host)) goto bad;
        snprintf(host, sizeof(host), "%.*s", (int)n, v);
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1) goto bad;
    if (colon) {
        char *end = NULL;
        long p = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || p < 1 || p > 65535) goto bad;
        *port = (uint16_t)p;
    }
    snprintf(out, cap, "%s", host);
    return;
bad:
    dds__log_warn(&s->log, "GCE_METADATA_HOST '%.64s' is not a numeric address[:port]: checking %s:80 instead", v,
                  DDS__GCP_METADATA_ADDRESS);
}

/* ---- start ------------------------------------------------------------------------------------- */

static void add_base_tag(dds_services *s, const char *fmt, const char *a, size_t alen) {
    if (s->n_base_tags == MAX_BASE_TAGS) return;
    char *t = NULL;
    if (asprintf(&t, fmt, (int)alen, a) < 0) return;
    s->base_tag_store[s->n_base_tags] = t;
    s->base_tags[s->n_base_tags] = dds__slice_cstr(t);
    s->n_base_tags++;
}

/* /dogstatsd/v2/proxy bodies (dd-trace-js runtime metrics) join the UDP pipeline. */
static void on_dsd_proxy(void *user, const char *body, size_t len) {
    dds_services *s = user;
    dds__counter_add(&s->counters.dsd.http_packets, 1);
    dds__counter_add(&s->counters.dsd_http_bytes, len);
    dds__dsd_process(s->dsd, body, len);
}

static void add_dd_tag(void *user, const char *tag, size_t len) { add_base_tag(user, "%.*s", tag, len); }

static void build_base_tags(dds_services *s) {
    const dds_config *c = &s->cfg;
    dds__config_each_tag(c->tags, add_dd_tag, s);
    if (c->env && c->env[0]) add_base_tag(s, "env:%.*s", c->env, strlen(c->env));
    if (c->service && c->service[0]) add_base_tag(s, "service:%.*s", c->service, strlen(c->service));
    if (c->version && c->version[0]) add_base_tag(s, "version:%.*s", c->version, strlen(c->version));
    if (s->cloud.origin) {
        add_base_tag(s, "origin:%.*s", s->cloud.origin, strlen(s->cloud.origin));
        add_base_tag(s, "dd.origin:%.*s", s->cloud.origin, strlen(s->cloud.origin));
    }
}

/* Caller thread, once per instance before the intake exists: the CA certificates the intake
 * verifies with. Nothing to look for when verification is off or nothing is ever sent. Finding
 * nothing does not fail the start (the listeners are what the host waits for): it is said once,
 * loudly, and the intake then fails every https request rather than send it unverified. */
static void choose_ca(dds_services *s, dds__cacerts *ca) {
    memset(ca, 0, sizeof(*ca));
    if (!s->cfg.tls_verify || s->dry_run) return;
    dds__cacerts_find(s->cfg.tls_ca_path, ca);
    dds__log_debug(&s->log, "CA certificates: looked at %s", ca->searched);
    if (ca->kind != DDS__CACERTS_NONE) {
        dds__log_info(&s->log, "TLS: verifying the intake with the CA certificates of %s %s (%s)",
                      ca->kind == DDS__CACERTS_FILE ? "the bundle" : "the directory", ca->path, ca->source);
        return;
    }
    if (!dds__config_any_https(&s->cfg)) {
        dds__log_debug(&s->log, "TLS: no CA certificates found, none needed: every intake URL is http://");
        return;
    }
    snprintf(s->ca_error, sizeof(s->ca_error),
             "no CA certificates found to verify the intake's TLS certificate: every https request will fail "
             "(nothing is sent unverified) until you " DDS__CACERTS_HOW_TO_SET "; looked at: %s",
             ca->searched);
    dds__log_error(&s->log, "%s", s->ca_error);
}

/* The enhanced metrics' samples, as a metric line would give them, to the DogStatsD pipeline's
 * own aggregator for the library's metrics. */
static void on_enhanced_sample(void *user, const char *name, bool distribution, double value, const char *tags,
                               size_t tags_len) {
    dds_services *s = user;
    dds__metric m = {
        .name = dds__slice_cstr(name),
        .type = distribution ? DDS__MT_DISTRIBUTION : DDS__MT_GAUGE,
        .sample_rate = 1.0,
        .tags = dds__slice_make(tags, tags_len),
    };
    dds__dsd_add_internal(s->dsd, &m, &value, 1);
}

/* Loop thread: the Google metadata check's answer. A failure is where the Rust binary exits: here
 * it is said (log line, ERROR event) and everything keeps running, without the gcrfx.* tags. */
static void on_gcp_checked(void *user, dds__gcp_result result, const dds__gcp_metadata *md, const char *why) {
    dds_services *s = user;
    if (result == DDS__GCP_UNREACHABLE || result == DDS__GCP_NOT_SERVERLESS) {
        char msg[512];
        snprintf(msg, sizeof(msg), "Google Cloud Functions detected, but %s (" DDS__GCP_METADATA_HOST " at "
                                   DDS__GCP_METADATA_ADDRESS "): this does not look like a Cloud Functions "
                                   "runtime; running anyway, without the gcrfx.* span tags", why);
        dds__log_error(&s->log, "%s", msg);
        emit(s, DDS_STATUS_ERROR, DDS_SERVICE_NONE, 0, msg);
        return;
    }
    if (result == DDS__GCP_TIMEOUT)
        dds__log_warn(&s->log, "Google metadata server: no answer in %d ms: project and region \"unknown\"",
                      DDS__GCP_METADATA_TIMEOUT_MS);
    else
        dds__log_debug(&s->log, "Google metadata: project %s, region %s", md->project_id, md->region);
    dds__trace_agent_set_gcp(s->trace, md->project_id, md->region);
}

/* Caller thread, at start: say what detection found, read the Azure App Service facts spans
 * carry, and run the platform's runtime check. */
static void check_cloud(dds_services *s) {
    if (s->cloud.conflict[0] && s->cloud.kind == DDS__CLOUD_NONE)
        dds__log_warn(&s->log, "cloud detection: %s: running as no serverless environment, without origin tags",
                      s->cloud.conflict);
    else if (s->cloud.conflict[0])
        dds__log_warn(&s->log, "cloud detection: %s", s->cloud.conflict);
    if (s->cloud.kind != DDS__CLOUD_AZURE_FUNCTION) return;
    dds__azure_function_span_tags(&s->cloud);
    if (dds__cloud_verify_azure(DDS__CLOUD_AZURE_ROOT, s->cloud_error, sizeof(s->cloud_error)) != 0)
        dds__log_error(&s->log, "%s", s->cloud_error);
}

/* One intake per additional logs endpoint, configured as the main one but with its own key.
 * The endpoints were checked by dds_config_validate. */
static int start_logs_extra(dds_services *s, const dds__intake_config *main_ic, dds_error *err) {
    dds__logs_endpoint eps[DDS__LOGS_ENDPOINTS_MAX];
    size_t n = 0;
    char why[DDS__ENDPOINTS_WHY_MAX];
    int rc = 0;
    if (dds__logs_endpoints_parse(s->cfg.logs_additional_endpoints, eps, DDS__LOGS_ENDPOINTS_MAX, &n, why) != 0)
        return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "logs_additional_endpoints is not valid: %s", why);
    for (size_t i = 0; i < n; i++) {
        dds__intake_config ic = *main_ic;
        ic.api_key = eps[i].api_key;  /* copied by the intake, which redacts it from its own lines */
        char *url = NULL;
        if (asprintf(&url, "https://%s:%u" DDS__LOGS_INTAKE_PATH, eps[i].host, (unsigned)eps[i].port) < 0) url = NULL;
        dds__intake *in = url ? dds__intake_new(s->base, &ic, &s->counters.intake) : NULL;
        if (!in) {
            free(url);
            rc = dds__error_set(err, DDS_ERR_RUNTIME, "cannot create the HTTP client of a logs endpoint");
            break;
        }
        s->logs_extra[s->n_logs_extra] = in;
        s->logs_extra_url[s->n_logs_extra] = url;
        s->logs_extra_reliable[s->n_logs_extra] = eps[i].is_reliable;
        s->n_logs_extra++;
        if (eps[i].is_reliable) dds__intake_set_drained_cb(in, on_drained, s);
    }
    dds__logs_endpoints_wipe(eps, n);
    return rc;
}

static void services_destroy(dds_services *s) {
    if (!s) return;
    /* The intake first: abandoning its payloads answers the trace receiver's pending proxy
     * requests, which must still exist then. */
    dds__intake_free(s->intake);
    for (size_t i = 0; i < s->n_logs_extra; i++) {
        dds__intake_free(s->logs_extra[i]);
        free(s->logs_extra_url[i]);
    }
    dds__trace_agent_free(s->trace);
    dds__logs_listener_free(s->logs_listener);
    dds__logs_batcher_free(s->logs);
    dds__enhanced_free(s->enhanced);
    dds__gcp_check_free(s->gcp_check);
    dds__dsd_free(s->dsd);
    if (s->cmd_ev) event_free(s->cmd_ev);
    if (s->flush_ev) event_free(s->flush_ev);
    if (s->deadline_ev) event_free(s->deadline_ev);
    if (s->base) event_base_free(s->base);
    for (size_t i = 0; i < s->n_base_tags; i++) free(s->base_tag_store[i]);
    free(s->metrics_url);
    free(s->logs_url);
    dds__config_release(&s->cfg);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->lifecycle_mu);
    free(s);
}

int dds_start(const dds_config *cfg, dds_status_fn on_status, void *user, dds_services **out, dds_error *err) {
    int rc = dds_config_validate(cfg, err);
    if (rc) return rc;
    if (!out) return dds__error_set(err, DDS_ERR_INVALID_CONFIG, "out must not be NULL");
    pthread_once(&global_once, global_init);
    if (global_init_rc != 0) return dds__error_set(err, DDS_ERR_RUNTIME, "libevent/libcurl initialisation failed");

    dds_services *s = calloc(1, sizeof(*s));
    if (!s) return dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lifecycle_mu, NULL);
    if (dds__config_dup(&s->cfg, cfg) != 0) {
        rc = dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    s->on_status = on_status;
    s->user = user;
    s->log.level = s->cfg.log_level;
    s->log.secret = s->cfg.api_key;
    s->dry_run = dds__config_is_dry_run(&s->cfg);
    dds__cloud_detect(&s->cloud);
    check_cloud(s);
    build_base_tags(s);
    s->metrics_url = dds__config_metrics_url(&s->cfg);
    if (!s->metrics_url) {
        rc = dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }

    s->base = event_base_new();
    if (!s->base) {
        rc = dds__error_set(err, DDS_ERR_RUNTIME, "cannot create the event loop");
        goto fail;
    }
    s->cmd_ev = event_new(s->base, -1, 0, on_command, s);
    s->flush_ev = event_new(s->base, -1, EV_PERSIST, on_flush_timer, s);
    s->deadline_ev = event_new(s->base, -1, 0, on_deadline, s);
    if (!s->cmd_ev || !s->flush_ev || !s->deadline_ev) {
        rc = dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }

    dds__cacerts cacerts;
    choose_ca(s, &cacerts);
    char ua[64];
    snprintf(ua, sizeof(ua), "datadog-serverless/%s", dds_version());
    dds__intake_config ic = {
        .api_key = s->cfg.api_key,
        .https_proxy = s->cfg.https_proxy,
        .tls_verify = s->cfg.tls_verify,
        .ca_file = cacerts.kind == DDS__CACERTS_FILE ? cacerts.path : NULL,
        .ca_dir = cacerts.kind == DDS__CACERTS_DIR ? cacerts.path : NULL,
        .request_timeout_ms = s->cfg.request_timeout_ms,
        .retry_queue_max_bytes = s->cfg.retry_queue_max_bytes,
        .queue_max_bytes = s->cfg.send_queue_max_bytes,
        .user_agent = ua,
        .dry_run = s->dry_run,
        .dry_run_summary = s->dry_run && !s->cfg.dry_run,
        .dry_run_fd = s->cfg.dry_run_fd,
        .log = &s->log,
        .on_error = on_intake_error,
        .user = s,
    };
    s->intake = dds__intake_new(s->base, &ic, &s->counters.intake);
    if (!s->intake) {
        rc = dds__error_set(err, DDS_ERR_RUNTIME, "cannot create the HTTP client");
        goto fail;
    }
    dds__intake_set_drained_cb(s->intake, on_drained, s);

    /* The enhanced metrics need the DogStatsD pipeline even with use_dogstatsd false (as in the
     * Rust binary, which starts its aggregator regardless): it then binds no socket. */
    const bool enhanced = s->cloud.kind == DDS__CLOUD_AZURE_FUNCTION;
    if (s->cfg.use_dogstatsd || enhanced) {
        s->dsd = dds__dsd_new(&s->cfg, s->base_tags, s->n_base_tags, s->metrics_url, s->dry_run,
                              &s->counters.dsd, &s->log, err);
        if (!s->dsd) {
            rc = err ? err->code : DDS_ERR_DOGSTATSD_START;
            goto fail;
        }
        if (dds__dsd_attach(s->dsd, s->base) != 0) {
            rc = dds__error_set(err, DDS_ERR_DOGSTATSD_START, "cannot register the socket with the event loop");
            goto fail;
        }
        s->dsd_port = dds__dsd_port(s->dsd);
    }
    if (enhanced) {
        dds__enhanced_config ec = {
            .cpu_enabled = s->cfg.enhanced_metrics_enabled,
            .submit = on_enhanced_sample,
            .user = s,
            .log = &s->log,
        };
        if (dds__dsd_enable_internal(s->dsd) != 0 ||
            !(s->enhanced = dds__enhanced_new(s->base, &ec, &s->counters.enhanced))) {
            rc = dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
            goto fail;
        }
        dds__log_info(&s->log, "Azure Functions enhanced metrics: %s%s every 1 s, %s every 3 s; tags: %s",
                      DDS__ENHANCED_CPU_METRIC,
                      s->cfg.enhanced_metrics_enabled ? "" : " (off: DD_ENHANCED_METRICS_ENABLED)",
                      DDS__ENHANCED_INSTANCE_METRIC, dds__enhanced_tags(s->enhanced));
    }
    if (s->cfg.use_trace_agent) {
        s->trace = dds__trace_agent_new(s->base, &s->cfg, &s->cloud, s->intake, s->dry_run, s->dsd_port,
                                        s->cfg.use_dogstatsd ? on_dsd_proxy : NULL, s, &s->counters.trace, &s->log,
                                        err);
        if (!s->trace) {
            rc = err ? err->code : DDS_ERR_TRACE_AGENT_START;
            goto fail;
        }
        s->trace_port = dds__trace_agent_port(s->trace);
    }

    /* The Rust binary checks the metadata server only for its trace agent (the gcrfx.* tags); the
     * check runs on the loop, so start never waits on it. */
    if (s->cloud.kind == DDS__CLOUD_GCP_FUNCTION && s->trace) {
        char address[64];
        uint16_t port = 80;
        gcp_metadata_address(s, address, sizeof(address), &port);
        s->gcp_check = dds__gcp_check_start(s->base, address, port, DDS__GCP_METADATA_PATH,
                                            DDS__GCP_METADATA_TIMEOUT_MS, on_gcp_checked, s);
        if (!s->gcp_check) {
            rc = dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
            goto fail;
        }
    }

    if (s->cfg.logs_enabled) {
        bool opw = s->cfg.logs_opw_enabled;
        s->logs_url = opw ? strdup(s->cfg.logs_opw_url) : dds__config_logs_url(&s->cfg);
        if ((rc = start_logs_extra(s, &ic, err))) goto fail;
        dds__logs_batch_config bc = {
            .url = s->logs_url,
            .opw = opw,
            .extra_urls = (const char *const *)s->logs_extra_url,
            .n_extra = s->n_logs_extra,
            .compress = s->cfg.logs_use_compression,
            .compression_level = s->cfg.logs_compression_level,
            .dry_run = s->dry_run,
            .max_queued_bytes = s->cfg.logs_max_queued_bytes,
            .log = &s->log,
        };
        s->logs = s->logs_url ? dds__logs_batcher_new(&bc, &s->counters.logs) : NULL;
        if (!s->logs) {
            rc = dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
            goto fail;
        }
        dds__logs_listener_config lc = {
            .port = s->cfg.logs_port,
            .non_local = s->cfg.logs_non_local_traffic,
            .log = &s->log,
        };
        s->logs_listener = dds__logs_listener_new(s->base, &lc, s->logs, &s->counters.logs, err);
        if (!s->logs_listener) {
            rc = err ? err->code : DDS_ERR_LOGS_AGENT_START;
            goto fail;
        }
        s->logs_port = dds__logs_listener_port(s->logs_listener);
    }

    struct timeval every = {.tv_sec = s->cfg.flush_interval_ms / 1000,
                            .tv_usec = (s->cfg.flush_interval_ms % 1000) * 1000};
    event_add(s->flush_ev, &every);

    /* Log what a newcomer needs to know, once, before the thread exists. */
    if (s->cfg.dry_run)
        dds__log_info(&s->log, "dry-run mode: each payload is written in full as one JSON line to fd %d "
                               "instead of being sent", s->cfg.dry_run_fd);
    else if (!s->cfg.api_key || !s->cfg.api_key[0])
        dds__log_warn(&s->log, "DD_API_KEY is not set: nothing is sent to Datadog; one summary line per payload "
                               "is written to fd %d (endpoint, items, bytes); set DD_DRY_RUN=true (the CLI's "
                               "--dry-run) to see the payloads in full", s->cfg.dry_run_fd);
    if (!dds__config_site_known(s->cfg.site))
        dds__log_warn(&s->log, "DD_SITE '%s' is not a Datadog site this version knows (datadoghq.com, "
                               "us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, ddog-gov.com, ap1.datadoghq.com, "
                               "ap2.datadoghq.com): using it as given", s->cfg.site);
    static const char *const windows_only[] = {"DD_DOGSTATSD_WINDOWS_PIPE_NAME", "DD_APM_WINDOWS_PIPE_NAME"};
    for (size_t i = 0; i < sizeof(windows_only) / sizeof(*windows_only); i++)
        if (getenv(windows_only[i]) && getenv(windows_only[i])[0])
            dds__log_warn(&s->log, "%s is set, but named pipes are Windows only: ignored (the %s listens on %s)",
                          windows_only[i], i == 0 ? "DogStatsD server" : "trace agent",
                          i == 0 ? "UDP, DD_DOGSTATSD_PORT" : "TCP, DD_APM_RECEIVER_PORT");
    if (s->cloud.kind == DDS__CLOUD_NONE)
        dds__log_info(&s->log, "no serverless environment detected (AWS Lambda, Azure Functions, Google Cloud "
                               "Functions, Azure Spring Apps): running anyway, without origin tags");
    else
        dds__log_info(&s->log, "detected %s%s%s", s->cloud.display_name, s->cloud.function_name[0] ? ", function " : "",
                      s->cloud.function_name);

    /* The loop thread gets every signal blocked so SIGINT/SIGTERM go to the host's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    s->owner_pid = getpid();
    atomic_store(&s->state, ST_RUNNING);
    int prc = pthread_create(&s->thread, NULL, loop_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (prc != 0) {
        atomic_store(&s->state, 0);
        rc = dds__error_set(err, DDS_ERR_RUNTIME, "cannot create the loop thread: %s", strerror(prc));
        goto fail;
    }
    s->thread_started = true;
    pthread_setname_np(s->thread, "dds-loop");
    if (s->trace) {
        if (s->cfg.apm_receiver_socket && s->cfg.apm_receiver_socket[0])
            dds__log_info(&s->log, "trace agent listening on %s:%u and unix://%s",
                          s->cfg.apm_non_local_traffic ? "0.0.0.0" : "127.0.0.1", s->trace_port,
                          s->cfg.apm_receiver_socket);
        else
            dds__log_info(&s->log, "trace agent listening on %s:%u",
                          s->cfg.apm_non_local_traffic ? "0.0.0.0" : "127.0.0.1", s->trace_port);
    }
    if (s->dsd && s->cfg.use_dogstatsd) {
        if (s->cfg.dogstatsd_socket && s->cfg.dogstatsd_socket[0])
            dds__log_info(&s->log, "DogStatsD listening on %s:%u and unix://%s",
                          s->cfg.dogstatsd_non_local_traffic ? "0.0.0.0" : "127.0.0.1", s->dsd_port,
                          s->cfg.dogstatsd_socket);
        else
            dds__log_info(&s->log, "DogStatsD listening on %s:%u",
                          s->cfg.dogstatsd_non_local_traffic ? "0.0.0.0" : "127.0.0.1", s->dsd_port);
    }
    if (s->logs_listener) {
        /* The worker's URL is the user's own and may carry credentials: it is not repeated. */
        dds__log_info(&s->log, "logs agent listening on %s:%u, sending to %s",
                      s->cfg.logs_non_local_traffic ? "0.0.0.0" : "127.0.0.1", s->logs_port,
                      s->cfg.logs_opw_enabled ? "the Observability Pipelines Worker (logs_opw_url)" : s->logs_url);
        for (size_t i = 0; i < s->n_logs_extra; i++)
            dds__log_info(&s->log, "logs agent: every batch also goes to %s (%s)", s->logs_extra_url[i],
                          s->logs_extra_reliable[i] ? "reliable: flush and stop wait for it"
                                                    : "unreliable: best effort, flush and stop do not wait");
    }
    *out = s;
    return 0;
fail:
    services_destroy(s);
    return rc;
}

/* ---- flush / stop / free ------------------------------------------------------------------------ */

static bool forked_child(const dds_services *s) { return s->owner_pid != getpid(); }

int dds_flush(dds_services *s, uint32_t timeout_ms, dds_error *err) {
    if (!s || atomic_load(&s->state) != ST_RUNNING || forked_child(s))
        return dds__error_set(err, DDS_ERR_NOT_RUNNING, NULL);
    if (on_loop_thread(s))
        return dds__error_set(err, DDS_ERR_RUNTIME, "dds_flush cannot wait on its own loop thread (called from the status callback)");
    cmd *c = calloc(1, sizeof(*c));
    if (!c) return dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
    c->kind = CMD_FLUSH;
    c->heap = true;
    c->deadline_ms = dds__mono_ms() + timeout_ms;
    c->refs = 2;
    cmd_post(s, c);
    int rc = cmd_wait(s, c, 200);
    pthread_mutex_lock(&s->mu);
    cmd_release_locked(c);
    pthread_mutex_unlock(&s->mu);
    if (rc == DDS_ERR_SHUTDOWN_TIMEOUT)
        return dds__error_set(err, rc, "Flush timeout exceeded (%u ms): payloads still pending stay queued", timeout_ms);
    if (rc) return dds__error_set(err, rc, NULL);
    return 0;
}

/* Queue the one stop command. Returns true for the caller that queued it. */
static bool request_stop(dds_services *s, int64_t deadline_ms) {
    if (atomic_exchange(&s->stop_requested, true)) return false;
    atomic_store(&s->state, ST_STOPPING);
    s->stop_cmd.kind = CMD_STOP;
    s->stop_cmd.deadline_ms = deadline_ms;
    s->stop_cmd.refs = 1;
    cmd_post(s, &s->stop_cmd);
    return true;
}

static int join_bounded(dds_services *s, int64_t until_ms) {
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t left = until_ms - dds__mono_ms();
        if (left < 0) left = 0;
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        int rc = pthread_timedjoin_np(s->thread, NULL, &ts);
        if (rc == 0) return 0;
        if (rc != ETIMEDOUT && rc != EINTR) return -1;
        if (dds__mono_ms() >= until_ms) return -1;
    }
}

int dds_stop(dds_services *s, uint32_t timeout_ms, dds_error *err) {
    if (!s) return dds__error_set(err, DDS_ERR_NOT_RUNNING, NULL);
    if (forked_child(s)) return 0; /* the parent's instance: nothing of it runs here */
    if (timeout_ms == 0) timeout_ms = DEFAULT_STOP_TIMEOUT_MS;
    int64_t deadline = dds__mono_ms() + timeout_ms;
    if (on_loop_thread(s)) {
        /* From the status callback: the loop cannot wait for itself. Start the stop; the thread
         * is joined by a later dds_stop or by dds_free. */
        request_stop(s, deadline);
        return 0;
    }
    pthread_mutex_lock(&s->lifecycle_mu);
    if (s->joined) {
        pthread_mutex_unlock(&s->lifecycle_mu);
        return 0;
    }
    bool first = request_stop(s, deadline);
    /* Grace after the deadline: the loop abandons the intake at the deadline and then exits. */
    int rc = cmd_wait(s, &s->stop_cmd, first ? 1000 : (int64_t)timeout_ms + 1000);
    if (join_bounded(s, dds__mono_ms() + 2000) == 0) s->joined = true;
    pthread_mutex_unlock(&s->lifecycle_mu);
    if (!first) return 0;  /* a stop started elsewhere; it reports its own result */
    if (rc == DDS_ERR_SHUTDOWN_TIMEOUT)
        return dds__error_set(err, rc, "Shutdown timeout exceeded (%u ms): pending payloads dropped", timeout_ms);
    if (rc) return dds__error_set(err, rc, NULL);
    return 0;
}

uint16_t dds_logs_port(const dds_services *s) { return s ? s->logs_port : 0; }

bool dds_is_running(const dds_services *s) {
    return s && atomic_load(&s->state) == ST_RUNNING && !forked_child(s);
}

void dds_ports(const dds_services *s, uint16_t *dogstatsd, uint16_t *trace) {
    if (dogstatsd) *dogstatsd = s ? s->dsd_port : 0;
    if (trace) *trace = s ? s->trace_port : 0;
}

void dds_stats_get(const dds_services *s, dds_stats *out) {
    memset(out, 0, sizeof(*out));
    if (!s) return;
    const dds__dsd_counters *d = &s->counters.dsd;
    const dds__intake_counters *in = &s->counters.intake;
    out->dsd_packets = dds__counter_get(&d->listener.packets) + dds__counter_get(&d->http_packets);
    out->dsd_packets_truncated = dds__counter_get(&d->listener.truncated);
    out->dsd_packets_dropped_queue =
        dds__counter_get(&d->listener.queue_dropped[0]) + dds__counter_get(&d->listener.queue_dropped[1]);
    out->dsd_packets_dropped_socket =
        dds__counter_get(&d->listener.socket_dropped[0]) + dds__counter_get(&d->listener.socket_dropped[1]);
    out->dsd_bytes = dds__counter_get(&d->listener.bytes) + dds__counter_get(&s->counters.dsd_http_bytes);
    out->dsd_metric_lines = dds__counter_get(&d->metric_lines);
    out->dsd_events = dds__counter_get(&d->events);
    out->dsd_service_checks = dds__counter_get(&d->service_checks);
    out->dsd_parse_errors = dds__counter_get(&d->parse_errors);
    out->dsd_samples = dds__counter_get(&d->agg.samples);
    out->dsd_samples_dropped = dds__counter_get(&d->agg.samples_dropped);
    out->dsd_contexts_dropped = dds__counter_get(&d->agg.contexts_dropped);
    out->dsd_contexts = dds__counter_get(&d->agg.contexts);
    out->dsd_events_dropped = dds__counter_get(&d->ser.events_dropped);
    out->payloads_sent = dds__counter_get(&in->sent);
    out->payloads_retried = dds__counter_get(&in->retried);
    out->payloads_dropped = dds__counter_get(&in->dropped) + dds__counter_get(&d->ser.items_too_large) +
                            dds__counter_get(&d->ser.oom);
    out->payload_bytes_sent = dds__counter_get(&in->bytes_sent);
    out->series_sent = dds__counter_get(&in->series_sent);
    out->sketches_sent = dds__counter_get(&in->sketches_sent);
    out->dry_run_payloads = dds__counter_get(&in->dry_run);
    const dds__trace_agent_counters *t = &s->counters.trace;
    out->trace_requests = dds__counter_get(&t->requests_ok);
    out->trace_spans = dds__counter_get(&t->spans);
    out->trace_dropped = dds__counter_get(&t->traces_rejected) + dds__counter_get(&t->process.traces_dropped);
    out->trace_spans_dropped = dds__counter_get(&t->process.spans_dropped) + dds__counter_get(&t->spans_dropped_encoding) +
                               dds__counter_get(&t->spans_dropped_encoding_loop);
    out->trace_spans_obfuscated = dds__counter_get(&t->process.spans_obfuscated);
    out->trace_sql_non_parsable = dds__counter_get(&t->process.sql_non_parsable);
    out->trace_stats_spans = dds__counter_get(&t->stats.spans);
    out->trace_stats_spans_overflow = dds__counter_get(&t->stats.spans_overflow);
    out->trace_stats_spans_dropped = dds__counter_get(&t->stats.spans_dropped);
    out->trace_stats_buckets = dds__counter_get(&t->stats.buckets);
    out->trace_stats_keys = dds__counter_get(&t->stats.keys);
    const dds__logs_counters *lg = &s->counters.logs;
    out->logs_requests = dds__counter_get(&lg->requests);
    out->logs_entries = dds__counter_get(&lg->entries);
    out->logs_entries_dropped = dds__counter_get(&lg->entries_dropped);
    out->logs_bytes = dds__counter_get(&lg->bytes);
    out->send_queue_bytes = dds__counter_get(&in->queue_bytes);
    const dds__counter *qd = in->queue_dropped;
    out->send_queue_dropped_metrics = dds__counter_get(&qd[DDS__PK_SERIES]) + dds__counter_get(&qd[DDS__PK_SKETCHES]) +
                                      dds__counter_get(&qd[DDS__PK_SERVICE_CHECKS]) +
                                      dds__counter_get(&qd[DDS__PK_EVENTS]);
    out->send_queue_dropped_traces = dds__counter_get(&qd[DDS__PK_TRACES]) + dds__counter_get(&qd[DDS__PK_STATS]);
    out->send_queue_dropped_logs = dds__counter_get(&qd[DDS__PK_LOGS]);
    out->send_queue_dropped_proxy = dds__counter_get(&qd[DDS__PK_PROXY]);
    out->enhanced_samples = dds__counter_get(&s->counters.enhanced.samples);
    out->enhanced_cpu_unavailable = dds__counter_get(&s->counters.enhanced.cpu_unavailable);
}

void dds_free(dds_services *s) {
    if (!s) return;
    /* Releasing in a forked child would remove the parent's sockets from the shared epoll set
     * and unlink its Unix socket: the child's copy is left to the process's exit. */
    if (forked_child(s)) return;
    if (s->thread_started && !s->joined) {
        dds_stop(s, DEFAULT_STOP_TIMEOUT_MS, NULL);
        if (!s->joined) {
            /* The loop is stuck (a status callback that never returns?): freeing under it would
             * crash the host, so leak the instance rather than free memory still in use. */
            dds__log_error(&s->log, "dds_free: the loop thread did not exit; the instance is leaked");
            return;
        }
    }
    services_destroy(s);
}
