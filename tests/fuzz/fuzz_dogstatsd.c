/* fuzz_dogstatsd.c - the DogStatsD packet path with arbitrary bytes: packet split, metric /
 * event / service-check parse, aggregation, and the serializer (JSON and protobuf+zstd), as
 * server.c chains them for a UDP datagram or a /dogstatsd/v2/proxy body. Any crash, sanitizer
 * report or leak is a bug. */
#include <stdlib.h>
#include <string.h>

#include "dogstatsd/aggregate.h"
#include "dogstatsd/parse.h"
#include "dogstatsd/serialize.h"

static dds__agg *agg;
static dds__dsd_serializer *ser_pb, *ser_json;
static dds__agg_counters agg_counters;
static dds__dsd_serializer_counters ser_counters;
static double vals[65536 / 2 + 1];
static unsigned runs;

static void setup(void) {
    static const dds__slice base[] = {{"env:fuzz", 8}, {"origin:lambda", 13}};
    dds__agg_config ac;
    memset(&ac, 0, sizeof(ac));
    ac.metric_namespace = (dds__slice){"ns", 2};
    ac.base_tags = base;
    ac.n_base_tags = 2;
    ac.histogram_aggregates = DDS__HAGG_DEFAULT | DDS__HAGG_MIN | DDS__HAGG_SUM;
    ac.percentiles[0] = 0.95;
    ac.percentiles[1] = 0.5;
    ac.n_percentiles = 2;
    ac.counter_expiry_s = 300;
    ac.context_limit = 5000; /* bounded memory across millions of runs */
    ac.client_telemetry = true;
    agg = dds__agg_new(&ac, &agg_counters);
    dds__dsd_serializer_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.metrics_base_url = "http://127.0.0.1:1";
    sc.base_tags = base;
    sc.n_base_tags = 2;
    sc.max_compressed = 2000; /* small limits: splitting is exercised too */
    sc.max_uncompressed = 20000;
    sc.max_points = 50;
    ser_pb = dds__dsd_serializer_new(&sc, &ser_counters);
    sc.dry_run = true;
    ser_json = dds__dsd_serializer_new(&sc, &ser_counters);
    if (!agg || !ser_pb || !ser_json) abort();
}

static void free_list(dds__payload *p) {
    while (p) {
        dds__payload *next = p->next;
        dds__payload_free(p);
        p = next;
    }
}

/* The lines dds__agg_add_packet hands back, in order, against those of the plain split. */
typedef struct other_seq {
    const char *base;
    size_t *off, *len;
    int *st;
    size_t n, cap;
    dds__dsd_serializer *ser;
    int64_t now;
} other_seq;

static void seq_add(other_seq *q, dds__slice line, int st) {
    if (q->n == q->cap) abort(); /* a packet of n bytes has at most n lines */
    q->off[q->n] = (size_t)(line.ptr - q->base);
    q->len[q->n] = line.len;
    q->st[q->n++] = st;
}

/* As server.c: events and service checks to the serializer. */
static void on_other(void *user, dds__slice line, int st) {
    other_seq *q = user;
    seq_add(q, line, st);
    if (st != DDS__AGG_NOT_METRIC) return;
    if (dds__line_kind_of(line) == DDS__LINE_EVENT) {
        dds__event ev;
        if (dds__parse_event(line.ptr, line.len, &ev) == DDS__PARSE_OK) dds__dsd_serializer_add_event(q->ser, &ev, q->now);
    } else {
        dds__service_check sc;
        if (dds__parse_service_check(line.ptr, line.len, &sc) == DDS__PARSE_OK)
            dds__dsd_serializer_add_service_check(q->ser, &sc, q->now);
    }
}

static void seq_init(other_seq *q, const char *base, size_t size) {
    q->base = base;
    q->cap = size + 1;
    q->n = 0;
    q->off = malloc(q->cap * sizeof(size_t));
    q->len = malloc(q->cap * sizeof(size_t));
    q->st = malloc(q->cap * sizeof(int));
    if (!q->off || !q->len || !q->st) abort();
}

static void seq_free(other_seq *q) {
    free(q->off);
    free(q->len);
    free(q->st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!agg) setup();
    /* An exact-size copy: an over-read past the datagram is caught by ASan. */
    char *buf = malloc(size ? size : 1);
    if (size) memcpy(buf, data, size);
    int64_t now = 1795530200 + (int64_t)(runs % 50);
    dds__dsd_serializer *ser = (runs & 1) ? ser_json : ser_pb;

    /* What the plain split and the parser say of every line. dds__agg_add_packet (as server.c
     * calls it) finds a long line's end from the contexts seen under its name rather than by a
     * scan: the lines it does not aggregate, their statuses and its count must be these. */
    other_seq want, got;
    seq_init(&want, buf, size);
    seq_init(&got, buf, size);
    got.ser = ser;
    got.now = now;
    const char *cur = buf, *end = buf + size;
    dds__slice line;
    size_t want_ok = 0;
    while (dds__packet_next_line(&cur, end, &line)) {
        if (dds__line_kind_of(line) != DDS__LINE_METRIC) {
            seq_add(&want, line, DDS__AGG_NOT_METRIC);
            continue;
        }
        dds__metric m;
        size_t n = 0;
        int st = dds__parse_metric(line.ptr, line.len, &m, vals, sizeof(vals) / sizeof(*vals), &n);
        if (st == DDS__PARSE_OK) want_ok++;
        else seq_add(&want, line, st);
    }
    size_t ok = dds__agg_add_packet(agg, buf, size, vals, sizeof(vals) / sizeof(*vals), now, on_other, &got);
    if (ok != want_ok || got.n != want.n) abort();
    for (size_t i = 0; i < want.n; i++)
        if (got.off[i] != want.off[i] || got.len[i] != want.len[i] || got.st[i] != want.st[i]) abort();
    seq_free(&want);
    seq_free(&got);
    free(buf); /* the aggregator and serializer must have copied what they keep */
    if (++runs % 16 == 0) {
        dds__agg_sink sink = dds__dsd_serializer_sink(ser);
        dds__agg_flush(agg, now + ((runs % 64 == 0) ? 400 : 10), (runs % 32) == 0, &sink);
        free_list(dds__dsd_serializer_take(ser));
    }
    return 0;
}
