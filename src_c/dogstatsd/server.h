/* server.h - the DogStatsD pipeline of one instance: listener -> parse -> aggregate ->
 * serialize. services.c drives it; the trace receiver's /dogstatsd/v2/proxy feeds it packets. */
#ifndef DDS_DOGSTATSD_SERVER_H
#define DDS_DOGSTATSD_SERVER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "common/slice.h"
#include "datadog_serverless.h"
#include "dogstatsd/aggregate.h"
#include "dogstatsd/listener.h"
#include "dogstatsd/serialize.h"
#include "log.h"
#include "transport/payload.h"

struct event_base;

typedef struct dds__dsd_counters {
    dds__listener_counters listener;
    dds__counter metric_lines, events, service_checks, parse_errors, http_packets;
    dds__agg_counters agg;
    dds__agg_counters internal;      /* the aggregator of dds__dsd_add_internal */
    dds__dsd_serializer_counters ser;
} dds__dsd_counters;

typedef struct dds__dsd dds__dsd;

/* Build the pipeline and bind the sockets (caller's thread). base_tags are copied. NULL with
 * err filled on failure. With cfg->use_dogstatsd false nothing is bound (port 0): the pipeline
 * then only aggregates and sends what dds__dsd_add_internal gives it. */
dds__dsd *dds__dsd_new(const dds_config *cfg, const dds__slice *base_tags, size_t n_base_tags,
                       const char *metrics_url, bool dry_run, dds__dsd_counters *counters,
                       const dds__logger *log, dds_error *err);
uint16_t dds__dsd_port(const dds__dsd *d);
int dds__dsd_attach(dds__dsd *d, struct event_base *base);
/* One packet of newline-separated lines (UDP datagram or HTTP proxy body), received now.
 * Loop thread. */
void dds__dsd_process(dds__dsd *d, const char *buf, size_t len);
/* Metrics the library makes itself (Azure Functions enhanced metrics) go to an aggregator of
 * their own: the same 10 s buckets, base tags and payloads, but no metric namespace (a user's
 * DD_STATSD_METRIC_NAMESPACE renames the user's metrics, never Datadog's) and no context limit
 * shared with the user's metrics. dds__dsd_enable_internal creates it (caller's thread, at start;
 * 0 or -1 out of memory); before that dds__dsd_add_internal drops and counts
 * (counters->internal.samples_dropped). add_internal: loop thread, received now. */
int dds__dsd_enable_internal(dds__dsd *d);
void dds__dsd_add_internal(dds__dsd *d, const dds__metric *m, const double *vals, size_t nvals);
/* Read what the sockets already hold (explicit flush: "send what I sent before flushing"). */
void dds__dsd_drain(dds__dsd *d);
/* Stop accepting: process what the sockets and the receive rings hold, then close them. */
void dds__dsd_drain_and_close(dds__dsd *d);
/* Flush (closed buckets, or everything when force) and return the payloads to send. */
dds__payload *dds__dsd_flush(dds__dsd *d, bool force);
void dds__dsd_free(dds__dsd *d);
#endif
