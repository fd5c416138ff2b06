/* agent.h - the trace mini-agent of one instance: receiver -> decode -> process -> encode ->
 * intake, plus stats and the forwarding proxies. services.c drives it. */
#ifndef DDS_TRACE_AGENT_H
#define DDS_TRACE_AGENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloud.h"
#include "common/counter.h"
#include "datadog_serverless.h"
#include "log.h"
#include "trace/concentrator.h"
#include "trace/process.h"
#include "trace/receiver.h"
#include "transport/intake.h"

struct event_base;

typedef struct dds__trace_agent_counters {
    dds__receiver_counters receiver;
    dds__trace_process_counters process;
    dds__counter requests_ok;        /* trace requests answered 200 */
    dds__counter decode_errors;      /* trace requests answered 400 */
    dds__counter traces_rejected;    /* traces in those requests (X-Datadog-Trace-Count, else 1) */
    dds__counter spans;              /* spans accepted after processing */
    dds__counter stats_payloads;     /* /v0.6/stats bodies forwarded */
    dds__counter spans_dropped_encoding; /* mirror of the encoder's count (spans lost out of memory) */
    dds__counter spans_dropped_encoding_loop; /* the same, the loop's own encoder */
    dds__concentrator_counters stats;    /* agent-computed stats (DD_AGENT_STATS_COMPUTATION_ENABLED) */
} dds__trace_agent_counters;

typedef struct dds__trace_agent dds__trace_agent;

/* Build the agent and bind its listener (caller's thread). dogstatsd: the /dogstatsd/v2/proxy
 * sink (NULL when DogStatsD is off: the endpoint then answers 404). NULL with err filled
 * (DDS_ERR_TRACE_AGENT_START on a bind failure). */
dds__trace_agent *dds__trace_agent_new(struct event_base *base, const dds_config *cfg, const dds__cloud *cloud,
                                       dds__intake *intake, bool dry_run, uint16_t statsd_port,
                                       void (*dogstatsd)(void *user, const char *body, size_t len), void *dsd_user,
                                       dds__trace_agent_counters *counters, const dds__logger *log, dds_error *err);
uint16_t dds__trace_agent_port(const dds__trace_agent *a);
/* Send what is pending now: the encoder's AgentPayload and, when the agent computes stats,
 * every stats bucket, open ones included (dds_flush and dds_stop). Loop thread. */
void dds__trace_agent_flush(dds__trace_agent *a);
/* Google Cloud Functions: the project and region of the metadata server, as every later span's
 * gcrfx.location, gcrfx.project_id and gcrfx.resource_name
 * (projects/<project>/locations/<region>/functions/<function>). Copied. Loop thread. */
void dds__trace_agent_set_gcp(dds__trace_agent *a, const char *project_id, const char *region);
/* Stop accepting connections; requests already being served finish. */
void dds__trace_agent_close(dds__trace_agent *a);
void dds__trace_agent_free(dds__trace_agent *a);
#endif
