/* collector.h - Azure Functions enhanced metrics (PARITY.md section 4): two timers on the loop
 * that feed the DogStatsD aggregator through a callback:
 *   azure.functions.enhanced.cpu.usage  distribution, nanocores, every 1 s (cgroup CPU counter)
 *   azure.functions.enhanced.instance   gauge 1, every 3 s, tagged instance:<name> */
#ifndef DDS_ENHANCED_COLLECTOR_H
#define DDS_ENHANCED_COLLECTOR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "log.h"

struct event_base;

#define DDS__ENHANCED_CPU_METRIC "azure.functions.enhanced.cpu.usage"
#define DDS__ENHANCED_INSTANCE_METRIC "azure.functions.enhanced.instance"
#define DDS__ENHANCED_CPU_INTERVAL_MS 1000
#define DDS__ENHANCED_INSTANCE_INTERVAL_MS 3000

/* One sample for the aggregator: a distribution (else a gauge) of name with the comma-joined
 * tags. Loop thread; every pointer valid during the call only. */
typedef void (*dds__enhanced_submit_fn)(void *user, const char *name, bool distribution, double value,
                                        const char *tags, size_t tags_len);

typedef struct dds__enhanced_config {
    bool cpu_enabled;                /* DD_ENHANCED_METRICS_ENABLED */
    dds__enhanced_submit_fn submit;
    void *user;
    const dds__logger *log;          /* not owned, outlives the collector */
} dds__enhanced_config;

typedef struct dds__enhanced_counters {
    dds__counter samples;            /* samples handed to the aggregator (both metrics) */
    dds__counter cpu_unavailable;    /* CPU ticks with no readable cgroup counter, or garbage in it */
    dds__counter cpu_skipped;        /* CPU ticks skipped: the counter went down, or no time elapsed */
} dds__enhanced_counters;

/* The CPU rate between two readings (the first reading only primes). Exposed for tests. */
typedef struct dds__cpu_rate {
    bool primed;
    uint64_t last_ns;                /* cumulative CPU time */
    int64_t last_mono_ns;
} dds__cpu_rate;

typedef enum { DDS__CPU_PRIMED, DDS__CPU_RATE, DDS__CPU_SKIPPED } dds__cpu_step;

/* Feed one reading taken at mono_ns. DDS__CPU_RATE with *nanocores = delta CPU ns / delta
 * elapsed s; DDS__CPU_PRIMED for the first reading; DDS__CPU_SKIPPED when the counter went down
 * or no time elapsed. The state always moves to this reading. */
dds__cpu_step dds__cpu_rate_step(dds__cpu_rate *st, uint64_t usage_ns, int64_t mono_ns, double *nanocores);

typedef struct dds__enhanced dds__enhanced;

/* Read the tags and the instance name from the environment (caller's thread, at start) and arm
 * the timers on base. The instance timer needs an instance name: without one it is not armed
 * (a warning says so). NULL on allocation failure. */
dds__enhanced *dds__enhanced_new(struct event_base *base, const dds__enhanced_config *cfg,
                                 dds__enhanced_counters *counters);
/* The common tags, comma-joined (for logs and tests). */
const char *dds__enhanced_tags(const dds__enhanced *e);
/* Disarm both timers (stop: nothing is collected after the final flush). Loop thread. */
void dds__enhanced_stop(dds__enhanced *e);
void dds__enhanced_free(dds__enhanced *e);  /* accepts NULL */
#endif
