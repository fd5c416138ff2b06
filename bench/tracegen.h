/* tracegen.h - realistic tracer payloads for the trace benchmarks: a minimal msgpack writer and
 * v0.4 / v0.5 / v0.7 bodies of web-service traces (64-bit random ids, ~10 meta entries of real sizes,
 * 3 metrics; child spans are database calls). Included by bench_trace_*.c only. */
#ifndef DDS_BENCH_TRACEGEN_H
#define DDS_BENCH_TRACEGEN_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a minimal msgpack writer --------------------------------------------------------------- */

typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void w_raw(wbuf *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 4096;
        w->b = realloc(w->b, w->cap);
        if (!w->b) abort();
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void w_byte(wbuf *w, uint8_t c) { w_raw(w, &c, 1); }
static void w_tag_be(wbuf *w, uint8_t tag, uint64_t v, int bytes) {
    w_byte(w, tag);
    for (int i = bytes - 1; i >= 0; i--) w_byte(w, (uint8_t)(v >> (8 * i)));
}
static void w_uint(wbuf *w, uint64_t v) {
    if (v < 128) w_byte(w, (uint8_t)v);
    else if (v <= 0xff) w_tag_be(w, 0xcc, v, 1);
    else if (v <= 0xffff) w_tag_be(w, 0xcd, v, 2);
    else if (v <= 0xffffffff) w_tag_be(w, 0xce, v, 4);
    else w_tag_be(w, 0xcf, v, 8);
}
static void w_f64(wbuf *w, double d) { uint64_t b; memcpy(&b, &d, 8); w_tag_be(w, 0xcb, b, 8); }
static void w_str(wbuf *w, const char *s) {
    size_t n = strlen(s);
    if (n < 32) w_byte(w, (uint8_t)(0xa0 | n));
    else if (n <= 0xff) w_tag_be(w, 0xd9, n, 1);
    else w_tag_be(w, 0xda, n, 2);
    w_raw(w, s, n);
}
static void w_arr(wbuf *w, uint32_t n) {
    if (n < 16) w_byte(w, (uint8_t)(0x90 | n));
    else if (n <= 0xffff) w_tag_be(w, 0xdc, n, 2);
    else w_tag_be(w, 0xdd, n, 4);
}
static void w_map(wbuf *w, uint32_t n) {
    if (n < 16) w_byte(w, (uint8_t)(0x80 | n));
    else w_tag_be(w, 0xde, n, 2);
}

/* ---- realistic spans ------------------------------------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef struct span_text {
    const char *service, *name, *resource, *type;
    const char *meta_keys[12], *meta_values[12];
    int nmeta;
    char url[128];
} span_text;

static const char *const user_agent =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
static const char *const runtime_id = "8c3f5a1e-2b4d-4f6a-9e7c-1d2b3a4c5d6e";

static void make_text(span_text *t, bool root, uint64_t user) {
    int n = 0;
    if (root) {
        snprintf(t->url, sizeof(t->url), "https://api.example.com/v1/users/%llu/orders?limit=50&cursor=eyJpZCI6%llu",
                 (unsigned long long)user, (unsigned long long)(user * 7919));
        t->service = "checkout-service";
        t->name = "express.request";
        t->resource = "GET /v1/users/:id/orders";
        t->type = "web";
        t->meta_keys[n] = "http.url", t->meta_values[n++] = t->url;
        t->meta_keys[n] = "http.method", t->meta_values[n++] = "GET";
        t->meta_keys[n] = "http.status_code", t->meta_values[n++] = "200";
        t->meta_keys[n] = "http.route", t->meta_values[n++] = "/v1/users/:id/orders";
        t->meta_keys[n] = "http.useragent", t->meta_values[n++] = user_agent;
        t->meta_keys[n] = "span.kind", t->meta_values[n++] = "server";
        t->meta_keys[n] = "_dd.p.dm", t->meta_values[n++] = "-0";
    } else {
        t->service = "checkout-service-postgres";
        t->name = "pg.query";
        t->resource = "SELECT id, total, status FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT 50";
        t->type = "sql";
        t->meta_keys[n] = "db.type", t->meta_values[n++] = "postgres";
        t->meta_keys[n] = "db.name", t->meta_values[n++] = "orders";
        t->meta_keys[n] = "db.user", t->meta_values[n++] = "checkout_rw";
        t->meta_keys[n] = "out.host", t->meta_values[n++] = "orders-db.internal.example.com";
        t->meta_keys[n] = "span.kind", t->meta_values[n++] = "client";
        t->meta_keys[n] = "peer.service", t->meta_values[n++] = "orders-db";
    }
    t->meta_keys[n] = "component", t->meta_values[n++] = root ? "express" : "pg";
    t->meta_keys[n] = "runtime-id", t->meta_values[n++] = runtime_id;
    t->meta_keys[n] = "language", t->meta_values[n++] = "javascript";
    t->meta_keys[n] = "env", t->meta_values[n++] = "production";
    t->meta_keys[n] = "version", t->meta_values[n++] = "1.42.0";
    t->nmeta = n;
}

static const char *const metric_keys[3] = {"_sampling_priority_v1", "_dd.measured", "process_id"};

static void w_metric_value(wbuf *w, int k) {
    if (k == 1) w_f64(w, 1.0);
    else w_uint(w, k == 0 ? 1 : 4242);
}

/* One span as a v0.4 / v0.7 map (the key order and the smallest encodings of Python's encoder). */
static void w_span_map(wbuf *w, uint64_t trace_id, uint64_t root_id, uint64_t start, int s) {
    span_text tx;
    make_text(&tx, s == 0, rnd() % 100000);
    w_map(w, s == 0 ? 11 : 12); /* a root omits parent_id, as Python does */
    w_str(w, "service"); w_str(w, tx.service);
    w_str(w, "name"); w_str(w, tx.name);
    w_str(w, "resource"); w_str(w, tx.resource);
    w_str(w, "trace_id"); w_uint(w, trace_id);
    w_str(w, "span_id"); w_uint(w, s == 0 ? root_id : rnd());
    if (s) { w_str(w, "parent_id"); w_uint(w, root_id); }
    w_str(w, "start"); w_uint(w, start + (uint64_t)s * 1000);
    w_str(w, "duration"); w_uint(w, 100000 + rnd() % 5000000);
    w_str(w, "error"); w_uint(w, 0);
    w_str(w, "type"); w_str(w, tx.type);
    w_str(w, "meta");
    w_map(w, (uint32_t)tx.nmeta);
    for (int m = 0; m < tx.nmeta; m++) { w_str(w, tx.meta_keys[m]); w_str(w, tx.meta_values[m]); }
    w_str(w, "metrics");
    w_map(w, 3);
    for (int k = 0; k < 3; k++) { w_str(w, metric_keys[k]); w_metric_value(w, k); }
}

static __attribute__((unused)) void build_v04(wbuf *w, int spans_per_trace, int ntraces) {
    w_arr(w, (uint32_t)ntraces);
    for (int t = 0; t < ntraces; t++) {
        uint64_t trace_id = rnd(), root_id = rnd(), start = 1700000000000000000ull + rnd() % 1000000000000ull;
        w_arr(w, (uint32_t)spans_per_trace);
        for (int s = 0; s < spans_per_trace; s++) w_span_map(w, trace_id, root_id, start, s);
    }
}

/* A v0.7 TracerPayload: the payload-level fields once, then one chunk per trace (priority,
 * origin, the spans as v0.4 maps, tags, dropped_trace). */
static __attribute__((unused)) void build_v07(wbuf *w, int spans_per_trace, int ntraces) {
    w_map(w, 10);
    w_str(w, "container_id"); w_str(w, "");
    w_str(w, "language_name"); w_str(w, "javascript");
    w_str(w, "language_version"); w_str(w, "v20.11.1");
    w_str(w, "tracer_version"); w_str(w, "5.2.0");
    w_str(w, "runtime_id"); w_str(w, runtime_id);
    w_str(w, "env"); w_str(w, "production");
    w_str(w, "hostname"); w_str(w, "");
    w_str(w, "app_version"); w_str(w, "1.42.0");
    w_str(w, "tags"); w_map(w, 0);
    w_str(w, "chunks");
    w_arr(w, (uint32_t)ntraces);
    for (int t = 0; t < ntraces; t++) {
        uint64_t trace_id = rnd(), root_id = rnd(), start = 1700000000000000000ull + rnd() % 1000000000000ull;
        w_map(w, 5);
        w_str(w, "priority"); w_uint(w, 1);
        w_str(w, "origin"); w_str(w, "");
        w_str(w, "spans");
        w_arr(w, (uint32_t)spans_per_trace);
        for (int s = 0; s < spans_per_trace; s++) w_span_map(w, trace_id, root_id, start, s);
        w_str(w, "tags"); w_map(w, 1); w_str(w, "_dd.p.dm"); w_str(w, "-0");
        w_str(w, "dropped_trace"); w_byte(w, 0xc2);
    }
}

/* The string table, as a tracer builds it: each distinct string once. */
typedef struct table {
    char **s;
    uint32_t n, cap;
} table;

static uint32_t intern(table *t, const char *s) {
    for (uint32_t i = t->n; i-- > 0;)
        if (strcmp(t->s[i], s) == 0) return i;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->s = realloc(t->s, t->cap * sizeof(char *));
        if (!t->s) abort();
    }
    t->s[t->n] = strdup(s);
    return t->n++;
}

static __attribute__((unused)) void build_v05(wbuf *w, int spans_per_trace, int ntraces) {
    table tab = {0};
    wbuf traces = {0};
    intern(&tab, "");
    w_arr(&traces, (uint32_t)ntraces);
    for (int t = 0; t < ntraces; t++) {
        uint64_t trace_id = rnd(), root_id = rnd(), start = 1700000000000000000ull + rnd() % 1000000000000ull;
        w_arr(&traces, (uint32_t)spans_per_trace);
        for (int s = 0; s < spans_per_trace; s++) {
            span_text tx;
            make_text(&tx, s == 0, rnd() % 100000);
            w_arr(&traces, 12);
            w_uint(&traces, intern(&tab, tx.service));
            w_uint(&traces, intern(&tab, tx.name));
            w_uint(&traces, intern(&tab, tx.resource));
            w_uint(&traces, trace_id);
            w_uint(&traces, s == 0 ? root_id : rnd());
            w_uint(&traces, s == 0 ? 0 : root_id);
            w_uint(&traces, start + (uint64_t)s * 1000);
            w_uint(&traces, 100000 + rnd() % 5000000);
            w_uint(&traces, 0);
            w_map(&traces, (uint32_t)tx.nmeta);
            for (int m = 0; m < tx.nmeta; m++) {
                w_uint(&traces, intern(&tab, tx.meta_keys[m]));
                w_uint(&traces, intern(&tab, tx.meta_values[m]));
            }
            w_map(&traces, 3);
            for (int k = 0; k < 3; k++) { w_uint(&traces, intern(&tab, metric_keys[k])); w_metric_value(&traces, k); }
            w_uint(&traces, intern(&tab, tx.type));
        }
    }
    w_arr(w, 2);
    w_arr(w, tab.n);
    for (uint32_t i = 0; i < tab.n; i++) {
        w_str(w, tab.s[i]);
        free(tab.s[i]);
    }
    w_raw(w, traces.b, traces.n);
    free(tab.s);
    free(traces.b);
}

#endif
