/* server.c - DogStatsD pipeline glue. In: packets (from the listener or the HTTP proxy). Out:
 * payload lists at flush time. One bad line is counted and logged at a bounded rate and never
 * affects its neighbours; nothing here blocks or allocates per line. */
#include "dogstatsd/server.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "config.h"
#include "error.h"

struct dds__dsd {
    dds__listener *listener;
    dds__agg *agg;
    dds__agg *internal;    /* dds__dsd_add_internal's, made by dds__dsd_enable_internal */
    dds__agg_config internal_cfg;
    dds__dsd_serializer *ser;
    dds__dsd_counters *counters;
    const dds__logger *log;
    double *vals;          /* parser scratch: a line of n bytes holds at most n/2 + 1 values */
    size_t vals_cap;
    dds__ratelimit parse_rl;
    char *metric_ns;       /* owned, without a trailing '.' */
};

static void log_parse_error(dds__dsd *d, int status, const char *line, size_t len) {
    uint64_t skipped = 0;
    if (!dds__ratelimit_allow(&d->parse_rl, dds__mono_ms(), &skipped)) return;
    /* The line is quoted bounded: it is attacker-controlled and may be 64 KiB long. */
    dds__log_warn(d->log, "DogStatsD: dropped a malformed line (%s): \"%.*s%s\" (%llu more dropped since the last message)",
                  dds__parse_status_text(status), (int)(len > 120 ? 120 : len), line, len > 120 ? "..." : "",
                  (unsigned long long)skipped);
}

/* A line of a packet that dds__agg_add_packet did not aggregate: an event, a service check, or a
 * rejected metric line. */
typedef struct other_ctx {
    dds__dsd *d;
    int64_t now_s;
} other_ctx;

static void on_other(void *user, dds__slice line, int st) {
    other_ctx *o = user;
    dds__dsd *d = o->d;
    if (st == DDS__AGG_NOT_METRIC) {
        if (dds__line_kind_of(line) == DDS__LINE_EVENT) {
            dds__event ev;
            if ((st = dds__parse_event(line.ptr, line.len, &ev)) == DDS__PARSE_OK) {
                dds__counter_add(&d->counters->events, 1);
                dds__dsd_serializer_add_event(d->ser, &ev, o->now_s);
                return;
            }
        } else {
            dds__service_check sc;
            if ((st = dds__parse_service_check(line.ptr, line.len, &sc)) == DDS__PARSE_OK) {
                dds__counter_add(&d->counters->service_checks, 1);
                dds__dsd_serializer_add_service_check(d->ser, &sc, o->now_s);
                return;
            }
        }
    }
    dds__counter_add(&d->counters->parse_errors, 1);
    log_parse_error(d, st, line.ptr, line.len);
}

void dds__dsd_process(dds__dsd *d, const char *buf, size_t len) {
    other_ctx o = {d, dds__wall_s()};
    size_t n = dds__agg_add_packet(d->agg, buf, len, d->vals, d->vals_cap, o.now_s, on_other, &o);
    if (n) dds__counter_add(&d->counters->metric_lines, n);
}

static void on_packet(void *user, const char *buf, size_t len) { dds__dsd_process(user, buf, len); }

dds__dsd *dds__dsd_new(const dds_config *cfg, const dds__slice *base_tags, size_t n_base_tags,
                       const char *metrics_url, bool dry_run, dds__dsd_counters *counters,
                       const dds__logger *log, dds_error *err) {
    dds__dsd *d = calloc(1, sizeof(*d));
    if (!d) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        return NULL;
    }
    d->counters = counters;
    d->log = log;
    d->parse_rl.interval_ms = 10000;
    /* HTTP proxy bodies can be longer than a datagram: lines are bounded by the packet, so size
     * the scratch for the largest datagram and let longer HTTP lines be rejected as too many. */
    d->vals_cap = 65536 / 2 + 1;
    d->vals = malloc(d->vals_cap * sizeof(double));

    dds__agg_config ac;
    memset(&ac, 0, sizeof(ac));
    if (cfg->metric_namespace && cfg->metric_namespace[0]) {
        d->metric_ns = strdup(cfg->metric_namespace);
        if (d->metric_ns) {
            size_t n = strlen(d->metric_ns);
            while (n > 0 && d->metric_ns[n - 1] == '.') d->metric_ns[--n] = '\0';
            ac.metric_namespace = dds__slice_make(d->metric_ns, n);
        }
    }
    ac.base_tags = base_tags;
    ac.n_base_tags = n_base_tags;
    dds__config_histogram_aggregates(cfg->histogram_aggregates, &ac.histogram_aggregates, NULL, 0);
    dds__config_histogram_percentiles(cfg->histogram_percentiles, ac.percentiles, DDS__MAX_PERCENTILES,
                                      &ac.n_percentiles, NULL, 0);
    ac.counter_expiry_s = cfg->counter_expiry_s;
    /* Go agent: an idle context is kept 20 s before release, so a metric sent every flush
     * interval does not rebuild its context each time. */
    ac.context_expiry_s = 20;
    ac.context_limit = cfg->context_limit;
    ac.client_telemetry = cfg->client_telemetry;
    /* Kept for dds__dsd_enable_internal, which runs before dds__dsd_new's caller lets base_tags
     * go (the aggregator copies them). */
    d->internal_cfg = ac;
    d->internal_cfg.metric_namespace = dds__slice_make(NULL, 0);
    /* A handful of contexts (two metrics); the bound only guards against a bug. */
    d->internal_cfg.context_limit = 1000;
    d->internal_cfg.client_telemetry = true;

    dds__dsd_serializer_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.metrics_base_url = metrics_url;
    sc.dry_run = dry_run;
    sc.base_tags = base_tags;
    sc.n_base_tags = n_base_tags;

    if (!d->vals || (cfg->metric_namespace && cfg->metric_namespace[0] && !d->metric_ns) ||
        !(d->agg = dds__agg_new(&ac, &counters->agg)) || !(d->ser = dds__dsd_serializer_new(&sc, &counters->ser))) {
        dds__error_set(err, DDS_ERR_RUNTIME, "out of memory");
        goto fail;
    }
    dds__listener_config lc = {
        .udp_enabled = true,
        .non_local = cfg->dogstatsd_non_local_traffic,
        .port = cfg->dogstatsd_port,
        .unix_path = (cfg->dogstatsd_socket && cfg->dogstatsd_socket[0]) ? cfg->dogstatsd_socket : NULL,
        .buffer_size = cfg->dogstatsd_buffer_size,
        .so_rcvbuf = cfg->dogstatsd_so_rcvbuf,
        .queue_bytes = cfg->dogstatsd_queue_bytes,
    };
    if (!cfg->use_dogstatsd) return d;
    d->listener = dds__listener_new(&lc, on_packet, d, &counters->listener, log, err);
    if (!d->listener) goto fail;
    return d;
fail:
    dds__dsd_free(d);
    return NULL;
}

uint16_t dds__dsd_port(const dds__dsd *d) { return dds__listener_port(d->listener); }

int dds__dsd_attach(dds__dsd *d, struct event_base *base) {
    return d->listener ? dds__listener_attach(d->listener, base) : 0;
}

int dds__dsd_enable_internal(dds__dsd *d) {
    if (!d->internal) d->internal = dds__agg_new(&d->internal_cfg, &d->counters->internal);
    return d->internal ? 0 : -1;
}

void dds__dsd_add_internal(dds__dsd *d, const dds__metric *m, const double *vals, size_t nvals) {
    if (!d->internal) {
        dds__counter_add(&d->counters->internal.samples_dropped, nvals);
        return;
    }
    dds__agg_add(d->internal, m, vals, nvals, dds__wall_s());
}

void dds__dsd_drain(dds__dsd *d) {
    if (d->listener) dds__listener_drain(d->listener);
}

void dds__dsd_drain_and_close(dds__dsd *d) {
    if (!d->listener) return;
    dds__listener_drain_and_close(d->listener);
}

dds__payload *dds__dsd_flush(dds__dsd *d, bool force) {
    dds__agg_sink sink = dds__dsd_serializer_sink(d->ser);
    int64_t now = dds__wall_s();
    dds__agg_flush(d->agg, now, force, &sink);
    if (d->internal) dds__agg_flush(d->internal, now, force, &sink);
    return dds__dsd_serializer_take(d->ser);
}

void dds__dsd_free(dds__dsd *d) {
    if (!d) return;
    dds__listener_free(d->listener);
    dds__agg_free(d->agg);
    dds__agg_free(d->internal);
    dds__dsd_serializer_free(d->ser);
    free(d->vals);
    free(d->metric_ns);
    free(d);
}
