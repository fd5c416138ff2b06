/* Tests of src_c/trace/decode.c and span.c: v0.4 span maps with every field and every
 * leniency the Go agent has (str/bin/nil strings, any integer width, ints for floats, unknown
 * keys, nil containers, invalid UTF-8 repaired), v0.5 string tables and their bounds, v0.7
 * payloads, error messages that say where, and hostile bodies (forged counts, deep nesting,
 * every truncation, random and mutated bytes, a span bomb against the arena limit). Bodies end
 * at a guard page. */
#include "trace/decode.h"
#include "test.h"

/* ---- a small test-local msgpack writer ------------------------------------------------------ */

typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void w_raw(wbuf *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = realloc(w->b, w->cap);
        if (!w->b) abort();
    }
    if (n) memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void w_byte(wbuf *w, uint8_t c) { w_raw(w, &c, 1); }
static void w_tag_be(wbuf *w, uint8_t tag, uint64_t v, int bytes) {
    w_byte(w, tag);
    for (int i = bytes - 1; i >= 0; i--) w_byte(w, (uint8_t)(v >> (8 * i)));
}
static void w_nil(wbuf *w) { w_byte(w, 0xc0); }
static void w_uint(wbuf *w, uint64_t v) {
    if (v < 128) w_byte(w, (uint8_t)v);
    else if (v <= 0xff) w_tag_be(w, 0xcc, v, 1);
    else if (v <= 0xffff) w_tag_be(w, 0xcd, v, 2);
    else if (v <= 0xffffffff) w_tag_be(w, 0xce, v, 4);
    else w_tag_be(w, 0xcf, v, 8);
}
static void w_int(wbuf *w, int64_t v) {
    if (v >= 0) w_uint(w, (uint64_t)v);
    else if (v >= -32) w_byte(w, (uint8_t)(int8_t)v);
    else w_tag_be(w, 0xd3, (uint64_t)v, 8);
}
static void w_f64(wbuf *w, double d) { uint64_t b; memcpy(&b, &d, 8); w_tag_be(w, 0xcb, b, 8); }
static void w_f32(wbuf *w, float f) { uint32_t b; memcpy(&b, &f, 4); w_tag_be(w, 0xca, b, 4); }
static void w_strn(wbuf *w, const char *s, size_t n) {
    if (n < 32) w_byte(w, (uint8_t)(0xa0 | n));
    else if (n <= 0xff) w_tag_be(w, 0xd9, n, 1);
    else if (n <= 0xffff) w_tag_be(w, 0xda, n, 2);
    else w_tag_be(w, 0xdb, n, 4);
    w_raw(w, s, n);
}
static void w_str(wbuf *w, const char *s) { w_strn(w, s, strlen(s)); }
static void w_bin(wbuf *w, const void *p, size_t n) { w_tag_be(w, 0xc4, n, 1); w_raw(w, p, n); }
static void w_arr(wbuf *w, uint32_t n) {
    if (n < 16) w_byte(w, (uint8_t)(0x90 | n));
    else if (n <= 0xffff) w_tag_be(w, 0xdc, n, 2);
    else w_tag_be(w, 0xdd, n, 4);
}
static void w_map(wbuf *w, uint32_t n) {
    if (n < 16) w_byte(w, (uint8_t)(0x80 | n));
    else if (n <= 0xffff) w_tag_be(w, 0xde, n, 2);
    else w_tag_be(w, 0xdf, n, 4);
}
static void w_kv(wbuf *w, const char *k, const char *v) { w_str(w, k); w_str(w, v); }

/* ---- decoding into a guarded body ----------------------------------------------------------- */

typedef struct decoded {
    char *mem;
    size_t len;
    dds__arena arena;
    dds__tracer_payload tp;
    char err[200];
    int rc;
} decoded;

static int decode_limit(decoded *d, dds__trace_format fmt, const void *body, size_t len, size_t limit) {
    d->len = len;
    d->mem = test_guarded_copy(body, len);
    dds__arena_init(&d->arena, 0, limit);
    d->err[0] = '\0';
    d->rc = dds__trace_decode(fmt, (const uint8_t *)d->mem, len, &d->arena, &d->tp, d->err, sizeof(d->err));
    return d->rc;
}
static int decode(decoded *d, dds__trace_format fmt, const wbuf *w) { return decode_limit(d, fmt, w->b, w->n, 0); }
static void release(decoded *d) {
    test_guarded_free(d->mem, d->len);
    dds__arena_free(&d->arena);
}
static bool inside(const decoded *d, dds__slice s) {
    return s.len > 0 && s.ptr >= d->mem && s.ptr + s.len <= d->mem + d->len;
}

/* ---- payload builders ----------------------------------------------------------------------- */

/* A span with every v0.4 field, as a tracer that sends them all would. */
static void w_full_span(wbuf *w, uint64_t trace_id, uint64_t span_id, uint64_t parent_id) {
    w_map(w, 14);
    w_kv(w, "service", "checkout");
    w_kv(w, "name", "http.request");
    w_kv(w, "resource", "GET /cart");
    w_str(w, "trace_id"); w_tag_be(w, 0xcf, trace_id, 8);
    w_str(w, "span_id"); w_uint(w, span_id);
    w_str(w, "parent_id"); w_uint(w, parent_id);
    w_str(w, "start"); w_int(w, 1700000000123456789);
    w_str(w, "duration"); w_int(w, 2500000);
    w_str(w, "error"); w_int(w, 1);
    w_str(w, "meta");
    w_map(w, 3);
    w_kv(w, "http.method", "GET");
    w_kv(w, "http.url", "https://shop.example.com/cart?id=1");
    w_kv(w, "component", "flask");
    w_str(w, "metrics");
    w_map(w, 3);
    w_str(w, "_sampling_priority_v1"); w_int(w, 2);
    w_str(w, "_dd.measured"); w_f64(w, 1.0);
    w_str(w, "rate"); w_f32(w, 0.5f);
    w_kv(w, "type", "web");
    w_str(w, "meta_struct");
    w_map(w, 1);
    w_str(w, "appsec"); w_bin(w, "\x81\xa1" "a\x01", 4);
    w_str(w, "span_links");
    w_arr(w, 1);
    w_map(w, 7);
    w_str(w, "trace_id"); w_uint(w, 0x1111);
    w_str(w, "trace_id_high"); w_tag_be(w, 0xcf, 0xFFFFFFFFFFFFFFFFull, 8);
    w_str(w, "span_id"); w_uint(w, 0x2222);
    w_str(w, "attributes"); w_map(w, 1); w_kv(w, "link.kind", "follows_from");
    w_kv(w, "tracestate", "dd=s:1");
    w_str(w, "flags"); w_tag_be(w, 0xce, 0x80000001u, 4);
    w_str(w, "future_link_field"); w_arr(w, 2); w_map(w, 0); w_nil(w);
}

static void build_v04(wbuf *w) {
    w_arr(w, 2);
    w_arr(w, 1);
    w_full_span(w, 0xFFFFFFFFFFFFFFFFull, 7, 0);
    w_arr(w, 2);
    w_full_span(w, 42, 1, 0);
    w_full_span(w, 42, 2, 1);
}

static void build_v05(wbuf *w) {
    static const char *const table[] = {"", "svc", "web.request", "GET /", "http.method", "GET", "_sampling_priority_v1", "web"};
    w_arr(w, 2);
    w_arr(w, 8);
    for (int i = 0; i < 8; i++) w_str(w, table[i]);
    w_arr(w, 1);
    w_arr(w, 2);
    for (int s = 0; s < 2; s++) {
        w_arr(w, 12);
        w_uint(w, 1);                                /* service */
        w_uint(w, 2);                                /* name */
        w_uint(w, 3);                                /* resource */
        w_tag_be(w, 0xcf, 0xFFFFFFFFFFFFFFFFull, 8); /* trace_id */
        w_uint(w, 100 + (uint64_t)s);                /* span_id */
        w_uint(w, s ? 100 : 0);                      /* parent_id */
        w_int(w, 1700000000000000000);               /* start */
        w_int(w, 1000);                              /* duration */
        w_uint(w, 0);                                /* error */
        w_map(w, 1); w_uint(w, 4); w_uint(w, 5);     /* meta */
        w_map(w, 1); w_uint(w, 6); w_f64(w, 1);      /* metrics */
        w_uint(w, 7);                                /* type */
    }
}

static void build_v07(wbuf *w) {
    w_map(w, 11);
    w_kv(w, "container_id", "cid");
    w_kv(w, "language_name", "python");
    w_kv(w, "language_version", "3.12.1");
    w_kv(w, "tracer_version", "2.9.0");
    w_kv(w, "runtime_id", "4a5b6c");
    w_str(w, "chunks");
    w_arr(w, 3);
    w_map(w, 6);
    w_str(w, "priority"); w_int(w, 2);
    w_kv(w, "origin", "lambda");
    w_str(w, "spans"); w_arr(w, 1); w_full_span(w, 9, 10, 0);
    w_str(w, "tags"); w_map(w, 1); w_kv(w, "_dd.p.dm", "-4");
    w_str(w, "dropped_trace"); w_byte(w, 0xc3);
    w_str(w, "unknown_chunk_key"); w_map(w, 1); w_kv(w, "a", "b");
    w_nil(w);
    w_map(w, 1);
    w_str(w, "spans"); w_arr(w, 2); w_full_span(w, 11, 12, 0); w_nil(w);
    w_str(w, "tags"); w_map(w, 2); w_kv(w, "env", "prod"); w_kv(w, "version", "1.2");
    w_kv(w, "env", "prod");
    w_kv(w, "hostname", "");
    w_kv(w, "app_version", "1.2");
    w_str(w, "unknown_payload_key"); w_arr(w, 2); w_arr(w, 0); w_map(w, 0);
}

/* ---- span helpers (span.c) ------------------------------------------------------------------ */

TEST(span_helpers_last_duplicate_wins) {
    dds__kv meta[] = {{DDS__SLICE_LIT("env"), DDS__SLICE_LIT("a")},
                      {DDS__SLICE_LIT("version"), DDS__SLICE_LIT("1")},
                      {DDS__SLICE_LIT("env"), DDS__SLICE_LIT("b")},
                      {{"", 0}, DDS__SLICE_LIT("empty key")}};
    dds__kvd metrics[] = {{DDS__SLICE_LIT("x"), 1.0}, {DDS__SLICE_LIT("x"), 2.0}};
    dds__span s = {.meta = meta, .nmeta = 4, .metrics = metrics, .nmetrics = 2};
    const dds__slice *v = dds__span_meta_get(&s, "env");
    CHECK(v != NULL);
    if (v) CHECK_EQ_SLICE(*v, "b"); /* a Go map keeps the later value */
    v = dds__span_meta_get(&s, "");
    CHECK(v != NULL);
    if (v) CHECK_EQ_SLICE(*v, "empty key");
    CHECK(dds__span_meta_get(&s, "missing") == NULL);
    CHECK(dds__span_meta_get(&s, "en") == NULL);
    const double *m = dds__span_metric_get(&s, "x");
    CHECK(m && *m == 2.0);
    CHECK(dds__span_metric_get(&s, "y") == NULL);
    dds__span empty = {0};
    CHECK(dds__span_meta_get(&empty, "env") == NULL);
    CHECK(dds__span_metric_get(&empty, "x") == NULL);
}

/* ---- v0.4 ----------------------------------------------------------------------------------- */

static void check_full_span(const decoded *d, const dds__span *s, uint64_t trace_id, uint64_t span_id,
                            uint64_t parent_id) {
    CHECK_EQ_SLICE(s->service, "checkout");
    CHECK_EQ_SLICE(s->name, "http.request");
    CHECK_EQ_SLICE(s->resource, "GET /cart");
    CHECK_EQ_SLICE(s->type, "web");
    CHECK(inside(d, s->service) && inside(d, s->resource)); /* zero copy */
    CHECK(s->trace_id == trace_id);
    CHECK(s->span_id == span_id);
    CHECK(s->parent_id == parent_id);
    CHECK(s->start == 1700000000123456789);
    CHECK(s->duration == 2500000);
    CHECK_EQ_INT(s->error, 1);
    CHECK_EQ_INT(s->nmeta, 3);
    const dds__slice *url = dds__span_meta_get(s, "http.url");
    CHECK(url && inside(d, *url));
    if (url) CHECK_EQ_SLICE(*url, "https://shop.example.com/cart?id=1");
    CHECK_EQ_INT(s->nmetrics, 3);
    const double *m = dds__span_metric_get(s, "_sampling_priority_v1");
    CHECK(m && *m == 2.0);
    m = dds__span_metric_get(s, "_dd.measured");
    CHECK(m && *m == 1.0);
    m = dds__span_metric_get(s, "rate");
    CHECK(m && *m == 0.5);
    CHECK_EQ_INT(s->nmeta_struct, 1);
    if (s->nmeta_struct == 1) {
        CHECK_EQ_SLICE(s->meta_struct[0].key, "appsec");
        CHECK(s->meta_struct[0].value.len == 4 && memcmp(s->meta_struct[0].value.ptr, "\x81\xa1" "a\x01", 4) == 0);
    }
    CHECK_EQ_INT(s->nlinks, 1);
    if (s->nlinks == 1) {
        const dds__span_link *l = &s->links[0];
        CHECK(l->trace_id == 0x1111 && l->span_id == 0x2222);
        CHECK(l->trace_id_high == 0xFFFFFFFFFFFFFFFFull);
        CHECK_EQ_INT(l->nattributes, 1);
        if (l->nattributes == 1) {
            CHECK_EQ_SLICE(l->attributes[0].key, "link.kind");
            CHECK_EQ_SLICE(l->attributes[0].value, "follows_from");
        }
        CHECK_EQ_SLICE(l->tracestate, "dd=s:1");
        CHECK(l->flags == 0x80000001u);
    }
}

TEST(v04_every_field) {
    wbuf w = {0};
    build_v04(&w);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    CHECK_EQ_STR(d.err, "");
    CHECK_EQ_INT(d.tp.nchunks, 2);
    if (d.tp.nchunks == 2) {
        const dds__trace_chunk *c0 = &d.tp.chunks[0], *c1 = &d.tp.chunks[1];
        CHECK_EQ_INT(c0->nspans, 1);
        CHECK_EQ_INT(c1->nspans, 2);
        CHECK(c0->priority == DDS__PRIORITY_NONE && c1->priority == DDS__PRIORITY_NONE);
        CHECK(c0->origin.len == 0 && c0->origin.ptr != NULL && c0->ntags == 0 && !c0->dropped_trace);
        if (c0->nspans == 1) check_full_span(&d, &c0->spans[0], 0xFFFFFFFFFFFFFFFFull, 7, 0);
        if (c1->nspans == 2) {
            check_full_span(&d, &c1->spans[0], 42, 1, 0);
            check_full_span(&d, &c1->spans[1], 42, 2, 1);
        }
    }
    /* v0.4 carries no payload-level fields: the receiver fills them from headers */
    CHECK(d.tp.language_name.len == 0 && d.tp.language_name.ptr != NULL && d.tp.ntags == 0);
    release(&d);
    free(w.b);
}

/* Python omits zero fields (a root's parent_id, error 0, empty meta). */
TEST(v04_omitted_fields_are_zero) {
    wbuf w = {0};
    w_arr(&w, 1);
    w_arr(&w, 2);
    w_map(&w, 0);
    w_map(&w, 6);
    w_str(&w, "trace_id"); w_uint(&w, 5);
    w_str(&w, "meta"); w_nil(&w);
    w_str(&w, "metrics"); w_nil(&w);
    w_str(&w, "meta_struct"); w_nil(&w);
    w_str(&w, "span_links"); w_nil(&w);
    w_str(&w, "parent_id"); w_nil(&w);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    CHECK(d.tp.nchunks == 1 && d.tp.chunks[0].nspans == 2);
    if (d.tp.nchunks == 1 && d.tp.chunks[0].nspans == 2) {
        for (int i = 0; i < 2; i++) {
            const dds__span *s = &d.tp.chunks[0].spans[i];
            CHECK(s->trace_id == (i ? 5u : 0u) && s->span_id == 0 && s->parent_id == 0);
            CHECK(s->start == 0 && s->duration == 0 && s->error == 0);
            CHECK(s->service.len == 0 && s->service.ptr != NULL);
            CHECK(s->name.len == 0 && s->name.ptr != NULL);
            CHECK(s->resource.len == 0 && s->resource.ptr != NULL);
            CHECK(s->type.len == 0 && s->type.ptr != NULL);
            CHECK(s->nmeta == 0 && s->nmetrics == 0 && s->nmeta_struct == 0 && s->nlinks == 0);
        }
    }
    release(&d);
    free(w.b);
}

/* parseStringBytes: str, bin or nil. */
TEST(v04_strings_str_bin_nil) {
    wbuf w = {0};
    char long_resource[300];
    memset(long_resource, 'r', sizeof(long_resource));
    w_arr(&w, 1);
    w_arr(&w, 1);
    w_map(&w, 5);
    w_str(&w, "service"); w_bin(&w, "svc-bin", 7);
    w_str(&w, "name"); w_nil(&w);
    w_str(&w, "resource"); w_strn(&w, long_resource, sizeof(long_resource)); /* str16 */
    w_str(&w, "type"); w_tag_be(&w, 0xd9, 3, 1); w_raw(&w, "sql", 3);       /* str8 */
    w_str(&w, "meta");
    w_map(&w, 3);
    w_bin(&w, "k-bin", 5); w_str(&w, "v");
    w_str(&w, "k-nil"); w_nil(&w);
    w_str(&w, "k-bin-value"); w_bin(&w, "bytes", 5);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    const dds__span *s = d.tp.nchunks ? d.tp.chunks[0].spans : NULL;
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_SLICE(s->service, "svc-bin");
        CHECK_EQ_SLICE(s->name, "");
        CHECK(s->resource.len == 300 && inside(&d, s->resource));
        CHECK_EQ_SLICE(s->type, "sql");
        const dds__slice *v = dds__span_meta_get(s, "k-bin");
        CHECK(v != NULL);
        if (v) CHECK_EQ_SLICE(*v, "v");
        v = dds__span_meta_get(s, "k-nil");
        CHECK(v != NULL);
        if (v) CHECK_EQ_SLICE(*v, "");
        v = dds__span_meta_get(s, "k-bin-value");
        CHECK(v != NULL);
        if (v) CHECK_EQ_SLICE(*v, "bytes");
    }
    release(&d);
    free(w.b);
}

/* Every int/uint width for every integer field; Node's wide types (uint64 ids and start,
 * uint32 error, map32/array32 headers); full-range ids. */
typedef struct int_encoding {
    const char *name;
    uint8_t tag;
    int bytes;
} int_encoding;

static const int_encoding int_encodings[] = {
    {"fixint", 0, 0}, {"uint8", 0xcc, 1}, {"uint16", 0xcd, 2}, {"uint32", 0xce, 4}, {"uint64", 0xcf, 8},
    {"int8", 0xd0, 1}, {"int16", 0xd1, 2}, {"int32", 0xd2, 4}, {"int64", 0xd3, 8},
};

TEST(v04_integers_any_width) {
    for (size_t e = 0; e < sizeof(int_encodings) / sizeof(int_encodings[0]); e++) {
        const int_encoding *enc = &int_encodings[e];
        wbuf w = {0};
        w_tag_be(&w, 0xdd, 1, 4); /* array32 */
        w_tag_be(&w, 0xdd, 1, 4);
        w_tag_be(&w, 0xdf, 6, 4); /* map32 */
        static const char *const keys[] = {"trace_id", "span_id", "parent_id", "start", "duration", "error"};
        for (int k = 0; k < 6; k++) {
            w_str(&w, keys[k]);
            if (enc->tag) w_tag_be(&w, enc->tag, (uint64_t)(k + 1) * 10, enc->bytes);
            else w_byte(&w, (uint8_t)((k + 1) * 10));
        }
        decoded d;
        CHECK_MSG(decode(&d, DDS__TRACE_V04, &w) == 0, "%s: %s", enc->name, d.err);
        if (d.rc == 0) {
            const dds__span *s = &d.tp.chunks[0].spans[0];
            CHECK_MSG(s->trace_id == 10 && s->span_id == 20 && s->parent_id == 30, "%s ids", enc->name);
            CHECK_MSG(s->start == 40 && s->duration == 50 && s->error == 60, "%s numbers", enc->name);
        }
        release(&d);
        free(w.b);
    }

    /* full uint64 ids, negative int64 ids cast (old Java), negative start and duration kept */
    wbuf w = {0};
    w_arr(&w, 1);
    w_arr(&w, 1);
    w_map(&w, 5);
    w_str(&w, "trace_id"); w_tag_be(&w, 0xcf, 0xFFFFFFFFFFFFFFFFull, 8);
    w_str(&w, "span_id"); w_tag_be(&w, 0xd3, (uint64_t)-2, 8);
    w_str(&w, "parent_id"); w_tag_be(&w, 0xcf, 1ull << 63, 8);
    w_str(&w, "start"); w_tag_be(&w, 0xd3, (uint64_t)INT64_MIN, 8);
    w_str(&w, "duration"); w_byte(&w, 0xff);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    if (d.rc == 0) {
        const dds__span *s = &d.tp.chunks[0].spans[0];
        CHECK(s->trace_id == 0xFFFFFFFFFFFFFFFFull);
        CHECK(s->span_id == 0xFFFFFFFFFFFFFFFEull);
        CHECK(s->parent_id == 1ull << 63);
        CHECK(s->start == INT64_MIN);
        CHECK(s->duration == -1);
    }
    release(&d);
    free(w.b);
}

TEST(v04_metrics_any_number) {
    wbuf w = {0};
    w_arr(&w, 1);
    w_arr(&w, 1);
    w_map(&w, 1);
    w_str(&w, "metrics");
    w_map(&w, 8);
    w_str(&w, "fixint"); w_byte(&w, 7);
    w_str(&w, "negfix"); w_byte(&w, 0xfb);
    w_str(&w, "u64"); w_tag_be(&w, 0xcf, 1ull << 40, 8);
    w_str(&w, "i16"); w_tag_be(&w, 0xd1, (uint16_t)-1000, 2);
    w_str(&w, "f32"); w_f32(&w, 0.25f);
    w_str(&w, "f64"); w_f64(&w, 3.5);
    w_str(&w, "nil"); w_nil(&w);
    w_bin(&w, "binkey", 6); w_f64(&w, -1);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    if (d.rc == 0) {
        const dds__span *s = &d.tp.chunks[0].spans[0];
        static const struct { const char *k; double v; } want[] = {
            {"fixint", 7}, {"negfix", -5}, {"u64", 1099511627776.0}, {"i16", -1000},
            {"f32", 0.25}, {"f64", 3.5}, {"nil", 0}, {"binkey", -1},
        };
        CHECK_EQ_INT(s->nmetrics, 8);
        for (size_t i = 0; i < 8; i++) {
            const double *m = dds__span_metric_get(s, want[i].k);
            CHECK_MSG(m && *m == want[i].v, "metric %s", want[i].k);
        }
    }
    release(&d);
    free(w.b);
}

TEST(v04_unknown_keys_skipped) {
    wbuf w = {0};
    w_arr(&w, 1);
    w_arr(&w, 1);
    w_map(&w, 8);
    w_str(&w, "span_events"); /* not decoded here: skipped whole */
    w_arr(&w, 2);
    w_map(&w, 3);
    w_kv(&w, "name", "exception");
    w_str(&w, "time_unix_nano"); w_tag_be(&w, 0xcf, 1700000000000000000ull, 8);
    w_str(&w, "attributes"); w_map(&w, 1); w_str(&w, "arr"); w_map(&w, 2); w_str(&w, "type"); w_int(&w, 4);
    w_str(&w, "array_value"); w_map(&w, 1); w_str(&w, "values"); w_arr(&w, 2); w_f64(&w, 1); w_bin(&w, "x", 1);
    w_nil(&w);
    w_kv(&w, "service", "kept-1");
    w_str(&w, "x"); w_byte(&w, 0xc3);
    w_str(&w, "nested"); w_map(&w, 1); w_str(&w, "m"); w_map(&w, 1); w_str(&w, "a"); w_arr(&w, 1); w_arr(&w, 0);
    w_str(&w, "ext"); w_tag_be(&w, 0xc7, 2, 1); w_byte(&w, 1); w_raw(&w, "ab", 2);
    w_str(&w, "servic"); w_str(&w, "same length family, not a field");
    w_str(&w, "span_idx"); w_f64(&w, 1); /* a float where span_id would refuse it */
    w_kv(&w, "name", "kept-2");
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    if (d.rc == 0) {
        const dds__span *s = &d.tp.chunks[0].spans[0];
        CHECK_EQ_SLICE(s->service, "kept-1");
        CHECK_EQ_SLICE(s->name, "kept-2");
        CHECK(s->span_id == 0);
    }
    release(&d);
    free(w.b);
}

/* Go's repairUTF8: one U+FFFD per byte that starts no valid sequence; the copy goes to the
 * arena, valid strings stay in the body. */
TEST(v04_invalid_utf8_repaired) {
    wbuf w = {0};
    w_arr(&w, 1);
    w_arr(&w, 1);
    w_map(&w, 3);
    w_kv(&w, "service", "caf\xe9");
    w_kv(&w, "name", "ok \xe2\x82\xac");
    w_str(&w, "meta");
    w_map(&w, 1);
    w_kv(&w, "k\xff", "\xe2\x82" "A");
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    if (d.rc == 0) {
        const dds__span *s = &d.tp.chunks[0].spans[0];
        CHECK_EQ_SLICE(s->service, "caf\xef\xbf\xbd");
        CHECK(!inside(&d, s->service));
        CHECK_EQ_SLICE(s->name, "ok \xe2\x82\xac");
        CHECK(inside(&d, s->name));
        CHECK_EQ_SLICE(s->meta[0].key, "k\xef\xbf\xbd");
        CHECK_EQ_SLICE(s->meta[0].value, "\xef\xbf\xbd\xef\xbf\xbd" "A");
    }
    release(&d);
    free(w.b);
}

TEST(v04_nil_spans_skipped_and_empty_traces_kept) {
    wbuf w = {0};
    w_arr(&w, 3);
    w_arr(&w, 3);
    w_nil(&w);
    w_map(&w, 1); w_kv(&w, "name", "only");
    w_nil(&w);
    w_arr(&w, 0);
    w_nil(&w);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    CHECK_EQ_INT(d.tp.nchunks, 3);
    if (d.tp.nchunks == 3) {
        CHECK_EQ_INT(d.tp.chunks[0].nspans, 1);
        CHECK_EQ_SLICE(d.tp.chunks[0].spans[0].name, "only");
        CHECK_EQ_INT(d.tp.chunks[1].nspans, 0);
        CHECK_EQ_INT(d.tp.chunks[2].nspans, 0);
    }
    release(&d);

    /* an empty payload, and bytes after the payload (ignored, as Go ignores UnmarshalMsg's rest) */
    w.n = 0;
    w_arr(&w, 0);
    w_raw(&w, "\xc1garbage", 8);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), 0);
    CHECK_EQ_INT(d.tp.nchunks, 0);
    release(&d);
    free(w.b);
}

/* Errors name the trace, the span and the field, then what is wrong with it. */
typedef void (*builder)(wbuf *w);

static void e_meta_value_float(wbuf *w) {
    w_arr(w, 2);
    w_arr(w, 1); w_map(w, 0);
    w_arr(w, 1); w_map(w, 2); w_kv(w, "name", "n"); w_str(w, "meta"); w_map(w, 1); w_str(w, "k"); w_f64(w, 1);
}
static void e_float_trace_id(wbuf *w) {
    w_arr(w, 1); w_arr(w, 3); w_map(w, 0); w_map(w, 0);
    w_map(w, 1); w_str(w, "trace_id"); w_f64(w, 12345);
}
static void e_error_overflow(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "error"); w_tag_be(w, 0xce, 0x80000000u, 4);
}
static void e_start_overflow(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "start"); w_tag_be(w, 0xcf, 1ull << 63, 8);
}
static void e_payload_map(wbuf *w) { w_map(w, 0); }
static void e_trace_str(wbuf *w) { w_arr(w, 1); w_str(w, "x"); }
static void e_span_array(wbuf *w) { w_arr(w, 1); w_arr(w, 1); w_arr(w, 0); }
static void e_name_past_end(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "name"); w_tag_be(w, 0xdb, 1000, 4); w_raw(w, "abc", 3);
}
static void e_metrics_str(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "metrics"); w_map(w, 1); w_str(w, "m"); w_str(w, "1.5");
}
static void e_key_int(wbuf *w) { w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_byte(w, 1); w_byte(w, 1); }
static void e_link_flags_negative(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "span_links"); w_arr(w, 1); w_map(w, 1);
    w_str(w, "flags"); w_byte(w, 0xff);
}
static void e_meta_struct_int(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "meta_struct"); w_map(w, 1); w_str(w, "k"); w_byte(w, 1);
}
static void e_deep_unknown(wbuf *w) {
    w_arr(w, 1); w_arr(w, 1); w_map(w, 1); w_str(w, "deep");
    for (int i = 0; i < 100000; i++) w_arr(w, 1);
    w_nil(w);
}

static const struct {
    const char *name;
    builder build;
    const char *want;
} v04_errors[] = {
    {"meta value float", e_meta_value_float, "trace 1 span 0: meta value is not a string (got float64)"},
    {"float id (Go refuses)", e_float_trace_id, "trace 0 span 2: trace_id is not an integer (got float64)"},
    {"error over int32", e_error_overflow, "trace 0 span 0: error overflows int32"},
    {"start over int64", e_start_overflow, "trace 0 span 0: start overflows int64"},
    {"payload map", e_payload_map, "payload is not an array (got fixmap)"},
    {"trace string", e_trace_str, "trace 0: trace is not an array (got fixstr)"},
    {"span array", e_span_array, "trace 0 span 0: span is not a map (got fixarray)"},
    {"name past end", e_name_past_end, "trace 0 span 0: name declares a length past the end of the body"},
    {"metric string", e_metrics_str, "trace 0 span 0: metrics value is not a number (got fixstr)"},
    {"int key", e_key_int, "trace 0 span 0: span key is not a string (got positive fixint)"},
    {"negative link flags", e_link_flags_negative, "trace 0 span 0: span link flags is negative"},
    {"meta_struct int", e_meta_struct_int, "trace 0 span 0: meta_struct value is not a string (got positive fixint)"},
    {"deep unknown value", e_deep_unknown, "trace 0 span 0: value of an unknown span key nests deeper than 64 levels"},
};

TEST(v04_errors_say_where) {
    for (size_t i = 0; i < sizeof(v04_errors) / sizeof(v04_errors[0]); i++) {
        wbuf w = {0};
        v04_errors[i].build(&w);
        decoded d;
        CHECK_MSG(decode(&d, DDS__TRACE_V04, &w) == -1, "%s decoded", v04_errors[i].name);
        CHECK_MSG(strcmp(d.err, v04_errors[i].want) == 0, "%s: got \"%s\"", v04_errors[i].name, d.err);
        release(&d);
        free(w.b);
    }
    /* a small errcap truncates, NULL err is fine */
    wbuf w = {0};
    e_meta_value_float(&w);
    char small[8];
    dds__arena a;
    dds__arena_init(&a, 0, 0);
    dds__tracer_payload tp;
    CHECK_EQ_INT(dds__trace_decode(DDS__TRACE_V04, w.b, w.n, &a, &tp, small, sizeof(small)), -1);
    CHECK_EQ_STR(small, "trace 1");
    CHECK_EQ_INT(dds__trace_decode(DDS__TRACE_V04, w.b, w.n, &a, &tp, NULL, 0), -1);
    CHECK_EQ_INT(dds__trace_decode((dds__trace_format)9, w.b, w.n, &a, &tp, small, sizeof(small)), -1);
    CHECK_EQ_INT(dds__trace_decode(DDS__TRACE_V04, NULL, 0, &a, &tp, small, sizeof(small)), -1);
    dds__arena_free(&a);
    free(w.b);
}

/* ---- v0.5 ----------------------------------------------------------------------------------- */

TEST(v05_string_table) {
    wbuf w = {0};
    build_v05(&w);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), 0);
    CHECK_EQ_STR(d.err, "");
    CHECK_EQ_INT(d.tp.nchunks, 1);
    if (d.rc == 0 && d.tp.nchunks == 1) {
        const dds__trace_chunk *c = &d.tp.chunks[0];
        CHECK(c->priority == DDS__PRIORITY_NONE && c->origin.len == 0);
        CHECK_EQ_INT(c->nspans, 2);
        for (uint32_t i = 0; i < c->nspans; i++) {
            const dds__span *s = &c->spans[i];
            CHECK_EQ_SLICE(s->service, "svc");
            CHECK(inside(&d, s->service));
            CHECK_EQ_SLICE(s->name, "web.request");
            CHECK_EQ_SLICE(s->resource, "GET /");
            CHECK_EQ_SLICE(s->type, "web");
            CHECK(s->trace_id == 0xFFFFFFFFFFFFFFFFull);
            CHECK(s->span_id == 100 + i);
            CHECK(s->parent_id == (i ? 100u : 0u));
            CHECK(s->start == 1700000000000000000 && s->duration == 1000 && s->error == 0);
            const dds__slice *m = dds__span_meta_get(s, "http.method");
            CHECK(m != NULL);
            if (m) CHECK_EQ_SLICE(*m, "GET");
            const double *p = dds__span_metric_get(s, "_sampling_priority_v1");
            CHECK(p && *p == 1.0);
        }
    }
    release(&d);
    free(w.b);
}

/* A v0.5 span with one item changed: which (0-11), and how it is written. */
static void w_v05_with(wbuf *w, uint32_t table_size, int nitems, int field, void (*write)(wbuf *)) {
    w_arr(w, 2);
    w_arr(w, table_size);
    for (uint32_t i = 0; i < table_size; i++) w_str(w, i ? "s" : "");
    w_arr(w, 1);
    w_arr(w, 1);
    w_arr(w, (uint32_t)nitems);
    for (int i = 0; i < nitems; i++) {
        if (i == field) write(w);
        else if (i == 9 || i == 10) w_map(w, 0);
        else w_byte(w, i < 3 || i == 11 ? 1 : 5);
    }
}
static void w_v05_span_ok(wbuf *w) { /* 13 bytes, the smallest valid v0.5 span */
    w_arr(w, 12);
    for (int i = 0; i < 12; i++) w_byte(w, i == 9 || i == 10 ? 0x80 : 0);
}
static void write_index_8(wbuf *w) { w_byte(w, 8); }
static void write_index_7(wbuf *w) { w_byte(w, 7); }
static void write_index_neg(wbuf *w) { w_byte(w, 0xff); }
static void write_index_huge(wbuf *w) { w_tag_be(w, 0xcf, 1ull << 32, 8); }
static void write_meta_bad_value(wbuf *w) { w_map(w, 1); w_byte(w, 1); w_byte(w, 8); }
static void write_meta_nil(wbuf *w) { w_nil(w); }
static void write_metrics_str(wbuf *w) { w_map(w, 1); w_byte(w, 1); w_str(w, "x"); }
static void write_id_max(wbuf *w) { w_tag_be(w, 0xcf, 0xFFFFFFFFFFFFFFFFull, 8); }
static void write_error_f64(wbuf *w) { w_f64(w, 1); }

TEST(v05_index_bounds_and_span_length) {
    static const struct {
        const char *name;
        int nitems, field;
        void (*write)(wbuf *);
        const char *want; /* NULL = decodes */
    } rows[] = {
        {"service index == table size", 12, 0, write_index_8, "trace 0 span 0: service index 8 is out of range (string table has 8)"},
        {"service index == size - 1", 12, 0, write_index_7, NULL},
        {"type index == table size", 12, 11, write_index_8, "trace 0 span 0: type index 8 is out of range (string table has 8)"},
        {"negative index", 12, 1, write_index_neg, "trace 0 span 0: name is negative"},
        {"index over uint32", 12, 2, write_index_huge, "trace 0 span 0: resource overflows uint32"},
        {"meta value index", 12, 9, write_meta_bad_value, "trace 0 span 0: meta value index 8 is out of range (string table has 8)"},
        {"nil meta", 12, 9, write_meta_nil, NULL},
        {"metrics value string", 12, 10, write_metrics_str, "trace 0 span 0: metrics value is not a number (got fixstr)"},
        {"full uint64 id", 12, 3, write_id_max, NULL},
        {"float error", 12, 8, write_error_f64, "trace 0 span 0: error is not an integer (got float64)"},
        {"11 items", 11, -1, NULL, "trace 0 span 0: span has 11 items, not 12"},
        {"13 items", 13, -1, NULL, "trace 0 span 0: span has 13 items, not 12"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        wbuf w = {0};
        w_v05_with(&w, 8, rows[i].nitems, rows[i].field, rows[i].write);
        decoded d;
        int rc = decode(&d, DDS__TRACE_V05, &w);
        if (rows[i].want) {
            CHECK_MSG(rc == -1, "%s decoded", rows[i].name);
            CHECK_MSG(strcmp(d.err, rows[i].want) == 0, "%s: got \"%s\"", rows[i].name, d.err);
        } else {
            CHECK_MSG(rc == 0, "%s: %s", rows[i].name, d.err);
        }
        release(&d);
        free(w.b);
    }
}

TEST(v05_payload_shape) {
    wbuf w = {0};
    decoded d;
    /* not 2 items */
    w_arr(&w, 3); w_arr(&w, 0); w_arr(&w, 0); w_arr(&w, 0);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), -1);
    CHECK_EQ_STR(d.err, "payload is not an array of 2 items (string table, traces)");
    release(&d);
    /* a table entry that is not a string */
    w.n = 0;
    w_arr(&w, 2); w_arr(&w, 3); w_str(&w, ""); w_str(&w, "a"); w_byte(&w, 4); w_arr(&w, 0);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), -1);
    CHECK_EQ_STR(d.err, "string table entry 2: value is not a string (got positive fixint)");
    release(&d);
    /* table entries: bin, nil and invalid UTF-8 (repaired) */
    w.n = 0;
    w_arr(&w, 2); w_arr(&w, 3); w_nil(&w); w_bin(&w, "bin", 3); w_str(&w, "\xff" "x");
    w_arr(&w, 1); w_arr(&w, 1); w_arr(&w, 12);
    w_byte(&w, 0); w_byte(&w, 1); w_byte(&w, 2);
    for (int i = 3; i < 9; i++) w_byte(&w, 1);
    w_nil(&w); w_nil(&w); w_byte(&w, 0);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), 0);
    if (d.rc == 0) {
        const dds__span *s = &d.tp.chunks[0].spans[0];
        CHECK_EQ_SLICE(s->service, "");
        CHECK_EQ_SLICE(s->name, "bin");
        CHECK_EQ_SLICE(s->resource, "\xef\xbf\xbd" "x");
    }
    release(&d);
    /* an empty table: any index is out of range */
    w.n = 0;
    w_v05_with(&w, 0, 12, -1, NULL);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), -1);
    CHECK_EQ_STR(d.err, "trace 0 span 0: service index 1 is out of range (string table has 0)");
    release(&d);
    /* a forged span count: the array is sized from the bytes left (13 per span), not the count */
    w.n = 0;
    w_arr(&w, 2); w_arr(&w, 1); w_str(&w, ""); w_arr(&w, 1); w_tag_be(&w, 0xdd, 1000, 4);
    for (int i = 0; i < 100; i++) w_v05_span_ok(&w); /* 1300 bytes: the reader's bound passes */
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), -1);
    CHECK_EQ_STR(d.err, "trace 0 span 100: span is truncated");
    CHECK(d.arena.total <= 64 * 1024); /* one block; 1000 span records would not fit in it */
    CHECK(1000 * sizeof(dds__span) > 64 * 1024);
    release(&d);
    w.n = 0;
    w_arr(&w, 2); w_arr(&w, 0); w_arr(&w, 2); w_arr(&w, 0); w_tag_be(&w, 0xdd, 0x7fffffffu, 4);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), -1);
    CHECK_EQ_STR(d.err, "trace 1: trace declares more items than the bytes left can hold");
    release(&d);
    free(w.b);
}

/* ---- v0.7 ----------------------------------------------------------------------------------- */

TEST(v07_tracer_payload) {
    wbuf w = {0};
    build_v07(&w);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V07, &w), 0);
    CHECK_EQ_STR(d.err, "");
    dds__tracer_payload *tp = &d.tp;
    CHECK_EQ_SLICE(tp->container_id, "cid");
    CHECK_EQ_SLICE(tp->language_name, "python");
    CHECK_EQ_SLICE(tp->language_version, "3.12.1");
    CHECK_EQ_SLICE(tp->tracer_version, "2.9.0");
    CHECK_EQ_SLICE(tp->runtime_id, "4a5b6c");
    CHECK_EQ_SLICE(tp->env, "prod");
    CHECK_EQ_SLICE(tp->hostname, "");
    CHECK_EQ_SLICE(tp->app_version, "1.2");
    CHECK_EQ_INT(tp->ntags, 2);
    if (tp->ntags == 2) {
        CHECK_EQ_SLICE(tp->tags[1].key, "version");
        CHECK_EQ_SLICE(tp->tags[1].value, "1.2");
    }
    CHECK_EQ_INT(tp->nchunks, 2); /* the nil chunk is dropped */
    if (tp->nchunks == 2) {
        const dds__trace_chunk *c = &tp->chunks[0];
        CHECK_EQ_INT(c->priority, 2);
        CHECK_EQ_SLICE(c->origin, "lambda");
        CHECK(c->dropped_trace);
        CHECK_EQ_INT(c->ntags, 1);
        if (c->ntags == 1) CHECK_EQ_SLICE(c->tags[0].value, "-4");
        CHECK_EQ_INT(c->nspans, 1);
        if (c->nspans == 1) check_full_span(&d, &c->spans[0], 9, 10, 0);
        c = &tp->chunks[1];
        CHECK(c->priority == DDS__PRIORITY_NONE); /* absent: processing derives it */
        CHECK(c->origin.len == 0 && !c->dropped_trace);
        CHECK_EQ_INT(c->nspans, 1);
        if (c->nspans == 1) check_full_span(&d, &c->spans[0], 11, 12, 0);
    }
    release(&d);
    free(w.b);
}

static void e07_span_meta(wbuf *w) {
    w_map(w, 1); w_str(w, "chunks"); w_arr(w, 2); w_map(w, 0);
    w_map(w, 1); w_str(w, "spans"); w_arr(w, 2); w_map(w, 0); w_map(w, 1); w_str(w, "meta"); w_arr(w, 0);
}
static void e07_priority_str(wbuf *w) {
    w_map(w, 1); w_str(w, "chunks"); w_arr(w, 1); w_map(w, 1); w_str(w, "priority"); w_str(w, "1");
}
static void e07_env_int(wbuf *w) { w_map(w, 2); w_kv(w, "hostname", "h"); w_str(w, "env"); w_byte(w, 3); }
static void e07_tags_value(wbuf *w) { w_map(w, 1); w_str(w, "tags"); w_map(w, 1); w_str(w, "k"); w_arr(w, 0); }
static void e07_dropped_int(wbuf *w) {
    w_map(w, 1); w_str(w, "chunks"); w_arr(w, 1); w_map(w, 1); w_str(w, "dropped_trace"); w_byte(w, 1);
}
static void e07_array(wbuf *w) { w_arr(w, 0); }

TEST(v07_errors_say_where) {
    static const struct { const char *name; builder build; const char *want; } rows[] = {
        {"span meta array", e07_span_meta, "chunk 1 span 1: meta is not a map (got fixarray)"},
        {"priority string", e07_priority_str, "chunk 0: priority is not an integer (got fixstr)"},
        {"env int", e07_env_int, "env is not a string (got positive fixint)"},
        {"tags value", e07_tags_value, "tags value is not a string (got fixarray)"},
        {"dropped_trace int", e07_dropped_int, "chunk 0: dropped_trace is not a boolean (got positive fixint)"},
        {"payload array", e07_array, "payload is not a map (got fixarray)"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        wbuf w = {0};
        rows[i].build(&w);
        decoded d;
        CHECK_MSG(decode(&d, DDS__TRACE_V07, &w) == -1, "%s decoded", rows[i].name);
        CHECK_MSG(strcmp(d.err, rows[i].want) == 0, "%s: got \"%s\"", rows[i].name, d.err);
        release(&d);
        free(w.b);
    }
}

/* ---- hostile bodies ------------------------------------------------------------------------- */

/* Forged counts fail before anything is sized from them: the arena stays empty. */
TEST(hostile_forged_counts) {
    static const uint8_t bodies[][12] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff, 0x90, 0x90, 0x90},                   /* 2^32-1 traces */
        {0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x80, 0x80},                   /* 2^32-1 spans */
        {0x91, 0x91, 0xdf, 0x80, 0x00, 0x00, 0x00, 0xa1, 0x61, 0x01},       /* a span map of 2^31 entries */
        {0x91, 0x91, 0x81, 0xa4, 'm', 'e', 't', 'a', 0xdf, 0x7f, 0xff, 0xff}, /* meta of 2^31-1 entries */
        {0x91, 0x91, 0x81, 0xa4, 'n', 'a', 'm', 'e', 0xdb, 0xff, 0xff, 0xff}, /* a name past the end */
    };
    static const size_t lens[] = {8, 8, 10, 12, 12};
    for (size_t i = 0; i < 5; i++) {
        decoded d;
        CHECK_MSG(decode_limit(&d, DDS__TRACE_V04, bodies[i], lens[i], 0) == -1, "body %zu decoded", i);
        CHECK_MSG(d.arena.total <= 64 * 1024, "body %zu reserved %zu bytes", i, d.arena.total);
        release(&d);
    }
    static const uint8_t v05[] = {0x92, 0xdd, 0xff, 0xff, 0xff, 0xff, 0x90};      /* a huge string table */
    static const uint8_t v05b[] = {0x92, 0x90, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x90}; /* huge traces */
    static const uint8_t v07[] = {0x81, 0xa6, 'c', 'h', 'u', 'n', 'k', 's', 0xdd, 0xff, 0xff, 0xff, 0xff};
    decoded d;
    CHECK_EQ_INT(decode_limit(&d, DDS__TRACE_V05, v05, sizeof(v05), 0), -1);
    CHECK(d.arena.total == 0);
    release(&d);
    CHECK_EQ_INT(decode_limit(&d, DDS__TRACE_V05, v05b, sizeof(v05b), 0), -1);
    CHECK(d.arena.total == 0);
    release(&d);
    CHECK_EQ_INT(decode_limit(&d, DDS__TRACE_V07, v07, sizeof(v07), 0), -1);
    CHECK(d.arena.total == 0);
    release(&d);
}

/* 100000 levels of arrays (and maps) where each format expects something else, and inside an
 * unknown key: all fail quickly, without recursion. */
TEST(hostile_deep_nesting) {
    wbuf w = {0};
    for (int i = 0; i < 100000; i++) w_arr(&w, 1);
    w_nil(&w);
    decoded d;
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V04, &w), -1);
    CHECK_EQ_STR(d.err, "trace 0 span 0: span is not a map (got fixarray)");
    release(&d);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V05, &w), -1);
    release(&d);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V07, &w), -1);
    release(&d);

    w.n = 0;
    w_map(&w, 1);
    w_str(&w, "unknown");
    for (int i = 0; i < 100000; i++) { w_map(&w, 1); w_byte(&w, 0); }
    w_nil(&w);
    CHECK_EQ_INT(decode(&d, DDS__TRACE_V07, &w), -1);
    CHECK_EQ_STR(d.err, "value of an unknown payload key nests deeper than 64 levels");
    release(&d);
    free(w.b);
}

/* Every proper prefix of a valid payload fails cleanly (each ends at a guard page). */
TEST(hostile_every_truncation) {
    static const struct { dds__trace_format fmt; void (*build)(wbuf *); } payloads[] = {
        {DDS__TRACE_V04, build_v04}, {DDS__TRACE_V05, build_v05}, {DDS__TRACE_V07, build_v07},
    };
    for (size_t p = 0; p < 3; p++) {
        wbuf w = {0};
        payloads[p].build(&w);
        decoded d;
        CHECK_EQ_INT(decode(&d, payloads[p].fmt, &w), 0);
        release(&d);
        int decoded_prefixes = 0;
        for (size_t len = 0; len < w.n; len++) {
            if (decode_limit(&d, payloads[p].fmt, w.b, len, 0) != -1) decoded_prefixes++;
            else if (d.err[0] == '\0') decoded_prefixes += 1000; /* a failure must say why */
            release(&d);
        }
        CHECK_MSG(decoded_prefixes == 0, "format %d: %d prefixes of %zu decoded", payloads[p].fmt,
                  decoded_prefixes, w.n);
        free(w.b);
    }
}

/* Random bytes, and valid payloads with random bytes changed: never a crash or an over-read,
 * whatever the result. Fixed seed. */
TEST(hostile_random_and_mutated) {
    uint64_t rng = 0x9E3779B97F4A7C15ull;
#define NEXT() (rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17, rng)
    static const dds__trace_format fmts[] = {DDS__TRACE_V04, DDS__TRACE_V05, DDS__TRACE_V07};
    uint8_t buf[512];
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = NEXT() % sizeof(buf);
        /* start like a payload so the decoders get past the first byte */
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)(NEXT() >> 24);
        if (n > 2) {
            buf[0] = iter % 3 == 2 ? 0x81 : 0x92;
            buf[1] = 0x91;
        }
        decoded d;
        if (decode_limit(&d, fmts[iter % 3], buf, n, 1 << 20) == 0) ok++;
        else failed++;
        release(&d);
    }
    static void (*const builds[])(wbuf *) = {build_v04, build_v05, build_v07};
    for (int iter = 0; iter < 3000; iter++) {
        wbuf w = {0};
        builds[iter % 3](&w);
        int flips = 1 + (int)(NEXT() % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = NEXT() % w.n;
            w.b[at] = (uint8_t)(NEXT() >> 32);
        }
        decoded d;
        if (decode_limit(&d, fmts[iter % 3], w.b, w.n, 1 << 20) == 0) ok++;
        else failed++;
        release(&d);
        free(w.b);
    }
#undef NEXT
    CHECK(ok + failed == 6000);
    CHECK(failed > 0 && ok > 0);
}

/* A body of empty span maps is the worst case for output per input byte; the arena limit
 * turns it into a clean failure instead of a huge allocation. */
TEST(hostile_span_bomb_hits_arena_limit) {
    size_t nspans = 1000000;
    wbuf w = {0};
    w_arr(&w, 1);
    w_arr(&w, (uint32_t)nspans);
    for (size_t i = 0; i < nspans; i++) w_map(&w, 0);
    size_t limit = 4 * w.n + (1u << 20);
    decoded d;
    CHECK_EQ_INT(decode_limit(&d, DDS__TRACE_V04, w.b, w.n, limit), -1);
    CHECK_EQ_STR(d.err, "trace 0: trace exceeds the memory limit");
    CHECK(d.arena.oom);
    CHECK(d.arena.total <= limit);
    release(&d);
    /* without a limit it is a valid (if useless) payload */
    CHECK_EQ_INT(decode_limit(&d, DDS__TRACE_V04, w.b, w.n, 0), 0);
    CHECK(d.tp.nchunks == 1 && d.tp.chunks[0].nspans == nspans);
    release(&d);
    free(w.b);
}

int main(void) {
    RUN(span_helpers_last_duplicate_wins);
    RUN(v04_every_field);
    RUN(v04_omitted_fields_are_zero);
    RUN(v04_strings_str_bin_nil);
    RUN(v04_integers_any_width);
    RUN(v04_metrics_any_number);
    RUN(v04_unknown_keys_skipped);
    RUN(v04_invalid_utf8_repaired);
    RUN(v04_nil_spans_skipped_and_empty_traces_kept);
    RUN(v04_errors_say_where);
    RUN(v05_string_table);
    RUN(v05_index_bounds_and_span_length);
    RUN(v05_payload_shape);
    RUN(v07_tracer_payload);
    RUN(v07_errors_say_where);
    RUN(hostile_forged_counts);
    RUN(hostile_deep_nesting);
    RUN(hostile_every_truncation);
    RUN(hostile_random_and_mutated);
    RUN(hostile_span_bomb_hits_arena_limit);
    return TEST_REPORT();
}
