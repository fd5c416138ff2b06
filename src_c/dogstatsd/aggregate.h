/* aggregate.h - DogStatsD aggregation (PROTOCOL.md section 2, following the Go agent).
 * In: parsed metric lines (slices into the packet buffer: copied here where their lifetime ends).
 * Out: series and sketches, handed to a sink at flush time. Loop thread only; no locks, no I/O. */
#ifndef DDS_DOGSTATSD_AGGREGATE_H
#define DDS_DOGSTATSD_AGGREGATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/counter.h"
#include "common/slice.h"
#include "dogstatsd/parse.h"

#define DDS__BUCKET_SECONDS 10

typedef enum dds__api_type { DDS__API_COUNT = 1, DDS__API_RATE = 2, DDS__API_GAUGE = 3 } dds__api_type;

typedef struct dds__resource { dds__slice type, name; } dds__resource;
typedef struct dds__point { double value; int64_t ts; } dds__point;

/* One series as the serializer sees it. Every pointer is valid during the sink call only. */
typedef struct dds__series {
    dds__slice name;                 /* namespace and suffix (".max", ...) applied */
    dds__slice host;                 /* from a host: tag, else empty */
    const dds__slice *tags;          /* deduplicated, no empty tag, no host: tag, base tags included */
    size_t ntags;
    const dds__resource *resources;  /* device:<d> -> {"device", d}; dd.internal.resource:<t>:<n> -> {t, n} */
    size_t nresources;               /* (the host resource is the serializer's business) */
    dds__api_type type;
    int64_t interval;                /* 10 */
    const dds__point *points;        /* ascending timestamps */
    size_t npoints;
} dds__series;

/* One Dogsketch (one bucket of one distribution context). */
typedef struct dds__sketch_point {
    int64_t ts;                      /* bucket start */
    int64_t cnt;
    double min, max, sum, avg;
    const int16_t *keys;             /* ascending; a key may repeat (uint16 count spill) */
    const uint16_t *counts;
    size_t nbins;
} dds__sketch_point;

typedef struct dds__sketch_series {
    dds__slice name, host;
    const dds__slice *tags;
    size_t ntags;
    const dds__sketch_point *points;
    size_t npoints;
} dds__sketch_series;

typedef struct dds__agg_sink {
    void *user;
    void (*series)(void *user, const dds__series *s);
    void (*sketch)(void *user, const dds__sketch_series *s);
} dds__agg_sink;

/* Histogram aggregate flags */
enum {
    DDS__HAGG_MAX = 1u << 0, DDS__HAGG_MIN = 1u << 1, DDS__HAGG_MEDIAN = 1u << 2,
    DDS__HAGG_AVG = 1u << 3, DDS__HAGG_SUM = 1u << 4, DDS__HAGG_COUNT = 1u << 5,
};
#define DDS__HAGG_DEFAULT (DDS__HAGG_MAX | DDS__HAGG_MEDIAN | DDS__HAGG_AVG | DDS__HAGG_COUNT)
#define DDS__MAX_PERCENTILES 16

typedef struct dds__agg_config {
    dds__slice metric_namespace;     /* empty = none; else "<ns>." is prefixed (the '.' is added here) */
    const dds__slice *base_tags;     /* added to every series/sketch; copied by dds__agg_new */
    size_t n_base_tags;
    uint32_t histogram_aggregates;   /* DDS__HAGG_* mask */
    double percentiles[DDS__MAX_PERCENTILES]; /* each in (0,1), e.g. 0.95 -> ".95percentile" */
    size_t n_percentiles;
    uint32_t counter_expiry_s;       /* zero-fill window; 0 = off */
    uint32_t context_limit;          /* 0 = unlimited */
    bool client_telemetry;           /* false: drop datadog.dogstatsd.client.* (counted in dropped) */
    /* Added: keep a context with nothing to emit this long after its last sample, so a steady
     * sender does not re-create (hash, allocate, copy) its contexts after every flush. The Go
     * agent's dogstatsd_context_expiry_seconds is 20. 0 = release at the first flush that leaves
     * the context empty. Idle contexts still count against context_limit. */
    uint32_t context_expiry_s;
} dds__agg_config;

typedef struct dds__agg_counters {
    dds__counter samples;            /* samples aggregated */
    dds__counter samples_dropped;    /* NaN/Inf, timestamped non-gauge/count, client telemetry when off */
    dds__counter contexts_dropped;   /* samples refused at the context limit */
    dds__counter contexts;           /* live contexts (gauge) */
} dds__agg_counters;

typedef struct dds__agg dds__agg;

/* NULL on allocation failure. counters is owned by the caller and must outlive the aggregator. */
dds__agg *dds__agg_new(const dds__agg_config *cfg, dds__agg_counters *counters);
void dds__agg_free(dds__agg *a);

/* Add one parsed line received at now_s (unix seconds): vals/nvals as given by the parser
 * (ignored for sets). Copies what it keeps. Never fails loudly: drops are counted. */
void dds__agg_add(dds__agg *a, const dds__metric *m, const double *vals, size_t nvals, int64_t now_s);

/* Parse one metric line (no '\n') and aggregate it: dds__parse_metric then dds__agg_add, with
 * the same result, but a line whose exact bytes were seen before is aggregated without its tag
 * list being scanned (see dds__parse_metric_open). vals/cap: the parser's scratch (a line of n
 * bytes holds at most n/2 + 1 values). Returns the parse status: on DDS__PARSE_OK the line was
 * aggregated, otherwise it was rejected and nothing was counted. */
int dds__agg_add_line(dds__agg *a, const char *line, size_t len, double *vals, size_t cap, int64_t now_s);

/* Every line of a packet (a datagram, an HTTP body; split as dds__packet_next_line does): the
 * metric lines are aggregated as dds__agg_add_line would, and every other line is handed to
 * other(user, line, status) in packet order: status DDS__AGG_NOT_METRIC for an event or a service
 * check (dds__line_kind_of), else the parse status that rejected a metric line. Returns the number
 * of metric lines aggregated. Faster than the split then dds__agg_add_line: a long line whose
 * context was seen before is not scanned for its '\n' first; its context is found by its name
 * (an index by name, type and tag-list length), and the byte compare with that context's own
 * bytes proves where the line ends (no context holds a '\n'). */
enum { DDS__AGG_NOT_METRIC = -1 };
typedef void (*dds__agg_other_fn)(void *user, dds__slice line, int status);
size_t dds__agg_add_packet(dds__agg *a, const char *buf, size_t len, double *vals, size_t cap, int64_t now_s,
                           dds__agg_other_fn other, void *user);

/* Emit every bucket whose end (start + 10) <= now_s, or every bucket when force, then forget
 * them; counters keep zero-filling for counter_expiry_s after their last sample; contexts with
 * nothing left are released. Timestamped samples are emitted at every flush. */
void dds__agg_flush(dds__agg *a, int64_t now_s, bool force, const dds__agg_sink *sink);
#endif
