/* encode.h - AgentPayload protobuf + gzip for POST /api/v0.2/traces (PROTOCOL.md section 3),
 * and the StatsPayload msgpack + gzip wrapper for /api/v0.2/stats. In: processed tracer
 * payloads (copied into the pending protobuf at add time, so their request may go). Out:
 * dds__payload objects. One thread at a time (the trace agent hands the encoder between its loop
 * and its encode thread); no I/O. */
#ifndef DDS_TRACE_ENCODE_H
#define DDS_TRACE_ENCODE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "trace/span.h"
#include "transport/payload.h"

#define DDS__TRACE_FLUSH_BYTES (3200u * 1000u)

typedef struct dds__trace_encoder_config {
    const char *traces_url;          /* "https://trace.agent.<site>/api/v0.2/traces" or override; copied */
    const char *hostname;            /* AgentPayload.hostName (may be ""); copied */
    const char *env;                 /* AgentPayload.env (DD_ENV, may be ""); copied */
    const char *agent_version;       /* AgentPayload.agentVersion; copied */
    bool dry_run;                    /* one JSON line per payload instead of protobuf + gzip */
    size_t flush_bytes;              /* 0 = DDS__TRACE_FLUSH_BYTES */
} dds__trace_encoder_config;

typedef struct dds__trace_encoder dds__trace_encoder;

dds__trace_encoder *dds__trace_encoder_new(const dds__trace_encoder_config *cfg);
void dds__trace_encoder_free(dds__trace_encoder *e);
/* Encode tp into the pending AgentPayload. Returns true when the pending size reached
 * flush_bytes (the caller should take and send now). */
bool dds__trace_encoder_add(dds__trace_encoder *e, const dds__tracer_payload *tp);
size_t dds__trace_encoder_pending_bytes(const dds__trace_encoder *e);
/* The pending AgentPayload as a payload (gzip, headers incl. X-Datadog-Reported-Languages), or
 * NULL when nothing is pending. */
dds__payload *dds__trace_encoder_take(dds__trace_encoder *e);
/* Spans lost to allocation failure so far (a tracer payload that could not be encoded, or a
 * pending AgentPayload that could not be compressed or wrapped: take() then returns NULL and
 * the pending data is gone). The encoder's thread; the caller copies it into its counters. */
uint64_t dds__trace_encoder_spans_dropped(const dds__trace_encoder *e);

/* Wrap one client stats body (a msgpack ClientStatsPayload, validated here) into a StatsPayload
 * {AgentHostname, AgentEnv, Stats: [it], AgentVersion, ClientComputed: true, SplitPayload: false},
 * gzip'd, for stats_url. NULL with err filled when the body is not a msgpack map. */
dds__payload *dds__trace_stats_payload(const uint8_t *body, size_t len, const char *stats_url, const char *hostname,
                                       const char *env, const char *agent_version, bool dry_run, char *err,
                                       size_t errcap);

/* The same StatsPayload around our own stats (the concentrator's): n ClientStatsPayload msgpack
 * maps back to back in items (trusted, not validated), ClientComputed false. Dry run shows them
 * in full as JSON. NULL when n is 0 or out of memory. */
dds__payload *dds__trace_stats_payload_computed(const uint8_t *items, size_t len, uint32_t n, const char *stats_url,
                                                const char *hostname, const char *env, const char *agent_version,
                                                bool dry_run);
#endif
