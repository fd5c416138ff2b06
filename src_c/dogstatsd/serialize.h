/* serialize.h - DogStatsD payloads (PROTOCOL.md section 3): series v2 protobuf + zstd split at
 * the limits, sketches protobuf + zstd, service checks JSON, events JSON (one per request); in
 * dry-run mode one JSON line per payload instead. In: aggregated series (as an agg sink),
 * parsed events and checks. Out: a list of dds__payload. Loop thread only; no I/O. */
#ifndef DDS_DOGSTATSD_SERIALIZE_H
#define DDS_DOGSTATSD_SERIALIZE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "dogstatsd/aggregate.h"
#include "dogstatsd/parse.h"
#include "transport/payload.h"

#define DDS__SERIES_MAX_COMPRESSED 512000u
#define DDS__SERIES_MAX_UNCOMPRESSED 5242880u
#define DDS__SERIES_MAX_POINTS 10000u

typedef struct dds__dsd_serializer_config {
    const char *metrics_base_url;    /* "https://api.datadoghq.com" or the DD_DD_URL override; copied */
    bool dry_run;                    /* JSON lines instead of protobuf+zstd */
    const dds__slice *base_tags;     /* added to events and service checks; copied */
    size_t n_base_tags;
    size_t max_pending_events;       /* events + checks held between flushes; 0 = 10000 */
    /* Series metadata origin (0 = leave Metadata out). */
    uint32_t origin_product, origin_category, origin_service;
    /* Limits (0 = the DDS__SERIES_MAX_* defaults; tests lower them to exercise splitting). */
    size_t max_compressed, max_uncompressed, max_points;
} dds__dsd_serializer_config;

typedef struct dds__dsd_serializer_counters {
    dds__counter items_too_large;    /* a single series/sketch over the limits alone: dropped */
    dds__counter events_dropped;     /* events/checks over max_pending_events */
    dds__counter oom;                /* allocation failures (payload lost) */
} dds__dsd_serializer_counters;

typedef struct dds__dsd_serializer dds__dsd_serializer;

dds__dsd_serializer *dds__dsd_serializer_new(const dds__dsd_serializer_config *cfg,
                                             dds__dsd_serializer_counters *counters);
void dds__dsd_serializer_free(dds__dsd_serializer *s);

/* A sink for dds__agg_flush that encodes into s. */
dds__agg_sink dds__dsd_serializer_sink(dds__dsd_serializer *s);

/* Copy an event / service check (base tags added, "\\n" unescaped, now_s when no timestamp).
 * 0, or -1 when dropped at the bound (counted). */
int dds__dsd_serializer_add_event(dds__dsd_serializer *s, const dds__event *ev, int64_t now_s);
int dds__dsd_serializer_add_service_check(dds__dsd_serializer *s, const dds__service_check *sc, int64_t now_s);

/* Finish what the sink and the add calls collected and hand every payload over as a list
 * (p->next), caller owns it; NULL when nothing is pending. */
dds__payload *dds__dsd_serializer_take(dds__dsd_serializer *s);
#endif
