/* span.h - span records as decoded from tracer payloads (PROTOCOL.md section 4) and forwarded
 * as protobuf (section 3, "Traces"). Strings are slices: into the request body (zero copy) or
 * into the request's arena (when repaired, normalized or added). Everything in one tracer
 * payload lives as long as that body and that arena. */
#ifndef DDS_TRACE_SPAN_H
#define DDS_TRACE_SPAN_H
#include <stdbool.h>
#include <stdint.h>

#include "common/slice.h"

typedef struct dds__kv { dds__slice key, value; } dds__kv;          /* meta, tags, link attributes */
typedef struct dds__kvd { dds__slice key; double value; } dds__kvd; /* metrics */
/* meta_struct values are raw bytes (already msgpack-encoded by the tracer). */

typedef struct dds__span_link {
    uint64_t trace_id, trace_id_high, span_id;
    dds__kv *attributes;
    uint32_t nattributes;
    dds__slice tracestate;
    uint32_t flags;
} dds__span_link;

typedef struct dds__span {
    dds__slice service, name, resource, type;
    uint64_t trace_id, span_id, parent_id;
    int64_t start, duration;       /* ns */
    int32_t error;
    dds__kv *meta;                 /* arrays from the arena; n may be changed by processing */
    uint32_t nmeta;
    dds__kvd *metrics;
    uint32_t nmetrics;
    dds__kv *meta_struct;          /* value = raw bytes */
    uint32_t nmeta_struct;
    dds__span_link *links;
    uint32_t nlinks;
} dds__span;

typedef struct dds__trace_chunk {
    dds__span *spans;
    uint32_t nspans;
    int32_t priority;              /* PRIORITY_NONE when unknown */
    dds__slice origin;
    dds__kv *tags;
    uint32_t ntags;
    bool dropped_trace;
} dds__trace_chunk;

#define DDS__PRIORITY_NONE INT32_MIN

typedef struct dds__tracer_payload {
    dds__slice container_id, language_name, language_version, tracer_version, runtime_id;
    dds__slice env, hostname, app_version;
    dds__trace_chunk *chunks;
    uint32_t nchunks;
    dds__kv *tags;
    uint32_t ntags;
} dds__tracer_payload;

/* Helpers used by processing and enrichment (implemented in span.c). */
const dds__slice *dds__span_meta_get(const dds__span *s, const char *key);
const double *dds__span_metric_get(const dds__span *s, const char *key);
#endif
