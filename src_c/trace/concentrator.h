/* concentrator.h - agent-side trace stats (PARITY.md section 2): spans, after processing and
 * obfuscation, aggregated into 10 s buckets per tracer metadata and aggregation key, flushed as
 * the msgpack ClientStatsPayloads of a StatsPayload with ClientComputed=false. Loop thread only;
 * no I/O (the trace agent wraps, compresses and submits what it returns). */
#ifndef DDS_TRACE_CONCENTRATOR_H
#define DDS_TRACE_CONCENTRATOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/counter.h"
#include "trace/span.h"

#define DDS__STATS_BUCKET_NS (10ll * 1000 * 1000 * 1000)
/* Live aggregation keys (every bucket and tracer together). Each holds two sketches of at most
 * 8 KiB, so the bound also bounds their memory; a new key past it is aggregated under the
 * overflow key, whose fields all read "tracer_blocked_value" (libdd-trace-stats does the same
 * past its own cardinality limit): hits stay right, only their attribution is lost. */
#define DDS__STATS_MAX_KEYS 2048
/* Bytes of aggregation keys held (resource names and peer tags can be long): past it, new keys
 * go to the overflow key too. */
#define DDS__STATS_MAX_KEY_BYTES (4u << 20)
/* Bytes of sketch bins held (two sketches per key, up to 8 KiB each): past it sketches stop
 * growing and fold new values into the bins they have (their lowest ones collapse), so adversarial
 * durations cannot make 2048 keys take 32 MiB. Counts stay exact; only latency precision is lost. */
#define DDS__STATS_MAX_SKETCH_BYTES (4u << 20)
/* Distinct tracer metadata (language, tracer version, service, env, version, container id) at
 * once: a process has one or two; past the bound the spans are dropped and counted. */
#define DDS__STATS_MAX_GROUPS 64

typedef struct dds__concentrator_counters {
    dds__counter spans;            /* eligible spans aggregated (overflow key included) */
    dds__counter spans_overflow;   /* of those, aggregated under the overflow key */
    dds__counter spans_dropped;    /* eligible spans lost: group bound, out of memory */
    dds__counter buckets;          /* ClientStatsBuckets flushed */
    dds__counter keys;             /* ClientGroupedStats flushed */
} dds__concentrator_counters;

typedef struct dds__concentrator_config {
    const char *default_env;       /* ClientStatsPayload.Env of payloads without one; NULL or "" = "none"; copied */
    uint32_t max_keys;             /* 0 = DDS__STATS_MAX_KEYS */
    int64_t now_ns;                /* wall clock at creation: older spans go to its bucket */
} dds__concentrator_config;

typedef struct dds__concentrator dds__concentrator;

dds__concentrator *dds__concentrator_new(const dds__concentrator_config *cfg, dds__concentrator_counters *counters);
/* Accepts NULL. Spans of buckets still held (a flush that failed) are counted as dropped. */
void dds__concentrator_free(dds__concentrator *c);

/* Aggregate the eligible spans of a processed tracer payload (top level, measured, or span.kind
 * server/client/producer/consumer; partial snapshots excluded). Copies what it keeps. */
void dds__concentrator_add(dds__concentrator *c, const dds__tracer_payload *tp);

/* Take the buckets that are done at now_ns (started at least two bucket widths ago), or every
 * bucket when force: their ClientStatsPayload msgpack maps, one per tracer metadata, are
 * appended to out and their number returned (0: nothing to send, out untouched). The buckets
 * are gone either way; on out->oom their spans are counted as dropped. */
uint32_t dds__concentrator_flush(dds__concentrator *c, int64_t now_ns, bool force, dds__buf *out);

/* Live aggregation keys, and bytes of sketch bins held (for tests and the bounds). */
uint32_t dds__concentrator_live_keys(const dds__concentrator *c);
size_t dds__concentrator_sketch_bytes(const dds__concentrator *c);
#endif
