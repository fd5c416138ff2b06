/* test_concentrator.c - agent-side trace stats: eligibility, bucketing on span end, the
 * aggregation key field by field (libdd-trace-stats aggregation.rs cases), counts and sketches,
 * groups per tracer metadata, flush timing and force flush, the key bound and its overflow key,
 * the StatsPayload around it (ClientComputed false), and allocation failures. The output is
 * decoded here with the project's msgpack reader and a small DDSketch protobuf reader. */
#include <limits.h>
#include <stdarg.h>
#include <zlib.h>

#include "common/arena.h"
#include "common/msgpack.h"
#include "test.h"
#include "trace/concentrator.h"
#include "trace/ddsketch.h"
#include "trace/encode.h"

#define S INT64_C(1000000000)
#define T0 (INT64_C(1700000000) * S)  /* aligned on 10 s */

/* ---- span builders ------------------------------------------------------------------------------ */

static dds__arena arena;

static dds__span span(const char *resource, uint64_t sid, uint64_t pid, int64_t start, int64_t dur) {
    return (dds__span){.service = dds__slice_cstr("svc"), .name = dds__slice_cstr("op"),
                       .resource = dds__slice_cstr(resource), .type = dds__slice_cstr("web"), .trace_id = 7,
                       .span_id = sid, .parent_id = pid, .start = start, .duration = dur};
}

static void meta(dds__span *s, const char *k, const char *v) {
    dds__kv *m = dds__arena_calloc(&arena, s->nmeta + 1, sizeof(*m));
    if (s->nmeta) memcpy(m, s->meta, s->nmeta * sizeof(*m));
    m[s->nmeta++] = (dds__kv){dds__slice_cstr(k), dds__slice_cstr(v)};
    s->meta = m;
}

static void metric(dds__span *s, const char *k, double v) {
    dds__kvd *m = dds__arena_calloc(&arena, s->nmetrics + 1, sizeof(*m));
    if (s->nmetrics) memcpy(m, s->metrics, s->nmetrics * sizeof(*m));
    m[s->nmetrics++] = (dds__kvd){dds__slice_cstr(k), v};
    s->metrics = m;
}

static dds__span top(const char *resource, uint64_t sid, uint64_t pid, int64_t start, int64_t dur) {
    dds__span s = span(resource, sid, pid, start, dur);
    metric(&s, "_top_level", 1);
    return s;
}

static dds__tracer_payload payload(dds__span *spans, uint32_t n, const char *lang, const char *env) {
    dds__tracer_payload tp = {0};
    tp.chunks = dds__arena_calloc(&arena, 1, sizeof(dds__trace_chunk));
    tp.chunks[0].spans = spans;
    tp.chunks[0].nspans = n;
    tp.nchunks = 1;
    tp.language_name = dds__slice_cstr(lang);
    tp.tracer_version = dds__slice_cstr("2.0.0");
    tp.env = dds__slice_cstr(env);
    return tp;
}

/* ---- decoded output ------------------------------------------------------------------------------ */

typedef struct sketch_info { double count, zero; uint32_t nbins; bool ok; } sketch_info;

typedef struct gstat {
    char lang[16], env[16], version[16], service[32], container[16];  /* of the ClientStatsPayload */
    uint64_t start, width;                                            /* of the bucket */
    char resource[64], svc[32], name[32], type[16], kind[16], method[16], endpoint[32], srv_src[16], grpc[8];
    uint64_t status, hits, errors, duration, top_level_hits, trace_root;
    bool synthetics;
    char peers[8][96];
    int npeers;
    sketch_info ok, err;
} gstat;

typedef struct out {
    gstat g[64];             /* the first 63 groups (later ones share the last slot) */
    int n, payloads;
    uint64_t groups, hits, errors;
    double ok_count, err_count;  /* sums over every group */
} out;

static void copy(char *dst, size_t cap, dds__slice s) {
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n) memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static sketch_info sketch_of(dds__slice bin) {
    sketch_info si = {0};
    const uint8_t *p = (const uint8_t *)bin.ptr, *end = p + bin.len;
    #define VARINT(v) do { v = 0; for (int sh = 0; p < end; sh += 7) { uint8_t b_ = *p++; v |= (uint64_t)(b_ & 0x7f) << sh; if (!(b_ & 0x80)) break; } } while (0)
    while (p < end) {
        uint64_t tag;
        VARINT(tag);
        if ((tag & 7) == 1) {
            double d;
            memcpy(&d, p, 8);
            p += 8;
            if (tag >> 3 == 4) si.zero = d;
            continue;
        }
        uint64_t len;
        VARINT(len);
        const uint8_t *sub = p, *sub_end = p + len;
        p += len;
        if (tag >> 3 != 2) continue;
        while (sub < sub_end) {
            const uint8_t *save = p, *save_end = end;
            p = sub, end = sub_end;
            uint64_t t2;
            VARINT(t2);
            if (t2 >> 3 == 2) {
                uint64_t l;
                VARINT(l);
                for (uint64_t i = 0; i < l / 8; i++) {
                    double d;
                    memcpy(&d, p + 8 * i, 8);
                    si.count += d;
                    si.nbins++;
                }
                p += l;
            } else {
                uint64_t ignored;
                VARINT(ignored);
                (void)ignored;
            }
            sub = p;
            p = save, end = save_end;
        }
    }
    #undef VARINT
    si.count += si.zero;
    si.ok = true;
    return si;
}

static void read_grouped(dds__mp_reader *r, gstat *g) {
    uint32_t nf = dds__mp_read_map_any(r);
    for (uint32_t f = 0; f < nf && dds__mp_ok(r); f++) {
        dds__slice k = dds__mp_read_str_any(r);
#define IS(lit) (k.len == sizeof(lit) - 1 && memcmp(k.ptr, lit, k.len) == 0)
        if (IS("Service")) copy(g->svc, sizeof(g->svc), dds__mp_read_str_any(r));
        else if (IS("Name")) copy(g->name, sizeof(g->name), dds__mp_read_str_any(r));
        else if (IS("Resource")) copy(g->resource, sizeof(g->resource), dds__mp_read_str_any(r));
        else if (IS("Type")) copy(g->type, sizeof(g->type), dds__mp_read_str_any(r));
        else if (IS("SpanKind")) copy(g->kind, sizeof(g->kind), dds__mp_read_str_any(r));
        else if (IS("HTTPMethod")) copy(g->method, sizeof(g->method), dds__mp_read_str_any(r));
        else if (IS("HTTPEndpoint")) copy(g->endpoint, sizeof(g->endpoint), dds__mp_read_str_any(r));
        else if (IS("srv_src")) copy(g->srv_src, sizeof(g->srv_src), dds__mp_read_str_any(r));
        else if (IS("GRPCStatusCode")) copy(g->grpc, sizeof(g->grpc), dds__mp_read_str_any(r));
        else if (IS("HTTPStatusCode")) g->status = dds__mp_read_u64_any(r);
        else if (IS("Hits")) g->hits = dds__mp_read_u64_any(r);
        else if (IS("Errors")) g->errors = dds__mp_read_u64_any(r);
        else if (IS("Duration")) g->duration = dds__mp_read_u64_any(r);
        else if (IS("TopLevelHits")) g->top_level_hits = dds__mp_read_u64_any(r);
        else if (IS("IsTraceRoot")) g->trace_root = dds__mp_read_u64_any(r);
        else if (IS("Synthetics")) g->synthetics = dds__mp_read_bool(r);
        else if (IS("OkSummary")) g->ok = sketch_of(dds__mp_read_bytes_any(r));
        else if (IS("ErrorSummary")) g->err = sketch_of(dds__mp_read_bytes_any(r));
        else if (IS("PeerTags")) {
            uint32_t n = dds__mp_read_array_any(r);
            for (uint32_t i = 0; i < n; i++) {
                dds__slice v = dds__mp_read_str_any(r);
                if (g->npeers < 8) copy(g->peers[g->npeers++], sizeof(g->peers[0]), v);
            }
        } else dds__mp_skip(r);
    }
}

/* Decode n ClientStatsPayload maps into o (appending). */
static void decode(const dds__buf *b, uint32_t n, out *o) {
    dds__mp_reader r;
    dds__mp_reader_init(&r, b->data, b->len, NULL);
    for (uint32_t p = 0; p < n; p++) {
        gstat head = {0};
        int first = o->n;
        uint32_t nf = dds__mp_read_map_any(&r);
        CHECK_EQ_INT(nf, 14);
        for (uint32_t f = 0; f < nf && dds__mp_ok(&r); f++) {
            dds__slice k = dds__mp_read_str_any(&r);
            if (IS("Env")) copy(head.env, sizeof(head.env), dds__mp_read_str_any(&r));
            else if (IS("Version")) copy(head.version, sizeof(head.version), dds__mp_read_str_any(&r));
            else if (IS("Lang")) copy(head.lang, sizeof(head.lang), dds__mp_read_str_any(&r));
            else if (IS("Service")) copy(head.service, sizeof(head.service), dds__mp_read_str_any(&r));
            else if (IS("ContainerID")) copy(head.container, sizeof(head.container), dds__mp_read_str_any(&r));
            else if (IS("Stats")) {
                uint32_t nb = dds__mp_read_array_any(&r);
                for (uint32_t bi = 0; bi < nb; bi++) {
                    uint32_t bf = dds__mp_read_map_any(&r);
                    uint64_t start = 0, width = 0;
                    for (uint32_t x = 0; x < bf; x++) {
                        dds__slice bk = dds__mp_read_str_any(&r);
                        k = bk;
                        if (IS("Start")) start = dds__mp_read_u64_any(&r);
                        else if (IS("Duration")) width = dds__mp_read_u64_any(&r);
                        else if (IS("Stats")) {
                            uint32_t ng = dds__mp_read_array_any(&r);
                            for (uint32_t gi = 0; gi < ng; gi++) {
                                gstat *g = &o->g[o->n < 63 ? o->n++ : 63];
                                memset(g, 0, sizeof(*g));
                                g->start = start;
                                g->width = width;
                                read_grouped(&r, g);
                                o->groups++;
                                o->hits += g->hits;
                                o->errors += g->errors;
                                o->ok_count += g->ok.count;
                                o->err_count += g->err.count;
                            }
                        } else dds__mp_skip(&r);
                    }
                }
            } else dds__mp_skip(&r);
        }
        for (int i = first; i < o->n; i++) {
            memcpy(o->g[i].lang, head.lang, sizeof(head.lang));
            memcpy(o->g[i].env, head.env, sizeof(head.env));
            memcpy(o->g[i].version, head.version, sizeof(head.version));
            memcpy(o->g[i].service, head.service, sizeof(head.service));
            memcpy(o->g[i].container, head.container, sizeof(head.container));
        }
        o->payloads++;
    }
    CHECK_MSG(dds__mp_ok(&r), "msgpack: %s", r.err ? r.err : "");
    CHECK_EQ_INT(dds__mp_left(&r), 0);
}

static dds__concentrator_counters counters;

static dds__concentrator *conc(uint32_t max_keys) {
    memset(&counters, 0, sizeof(counters));
    dds__concentrator_config cfg = {.default_env = "prod", .max_keys = max_keys, .now_ns = T0};
    return dds__concentrator_new(&cfg, &counters);
}

/* Flush into o; returns payloads. */
static uint32_t flush(dds__concentrator *c, int64_t now, bool force, out *o) {
    dds__buf b;
    dds__buf_init(&b);
    uint32_t n = dds__concentrator_flush(c, now, force, &b);
    CHECK(!b.oom);
    memset(o, 0, sizeof(*o));
    if (n) decode(&b, n, o);
    dds__buf_free(&b);
    return n;
}

static const gstat *find(const out *o, const char *resource) {
    for (int i = 0; i < o->n; i++)
        if (strcmp(o->g[i].resource, resource) == 0) return &o->g[i];
    return NULL;
}

/* ---- tests ---------------------------------------------------------------------------------------- */

TEST(test_eligibility) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span s[9];
    s[0] = top("top", 1, 0, T0, 10);
    s[1] = span("tracer-top", 2, 1, T0, 10);
    metric(&s[1], "_dd.top_level", 1);
    s[2] = span("measured", 3, 1, T0, 10);
    metric(&s[2], "_dd.measured", 1);
    s[3] = span("server", 4, 1, T0, 10);
    meta(&s[3], "span.kind", "SERVER");  /* the kind is compared lower-cased */
    s[4] = span("consumer", 5, 1, T0, 10);
    meta(&s[4], "span.kind", "consumer");
    s[5] = span("internal", 6, 1, T0, 10);
    meta(&s[5], "span.kind", "internal");
    s[6] = span("plain", 7, 1, T0, 10);
    s[7] = top("partial", 8, 1, T0, 10);
    metric(&s[7], "_dd.partial_version", 0);
    s[8] = span("measured-not-1", 9, 1, T0, 10);
    metric(&s[8], "_dd.measured", 2);
    dds__tracer_payload tp = payload(s, 9, "python", "e");
    dds__concentrator_add(c, &tp);
    CHECK_EQ_INT(dds__counter_get(&counters.spans), 5);
    out o;
    CHECK_EQ_INT(flush(c, T0, true, &o), 1);
    CHECK_EQ_INT(o.n, 5);
    const char *in[] = {"top", "tracer-top", "measured", "server", "consumer"};
    for (int i = 0; i < 5; i++) CHECK_MSG(find(&o, in[i]), "%s missing", in[i]);
    CHECK(!find(&o, "internal") && !find(&o, "plain") && !find(&o, "partial") && !find(&o, "measured-not-1"));
    CHECK_EQ_INT(find(&o, "top")->top_level_hits, 1);
    CHECK_EQ_INT(find(&o, "tracer-top")->top_level_hits, 1);
    CHECK_EQ_INT(find(&o, "measured")->top_level_hits, 0);
    CHECK_EQ_STR(find(&o, "server")->kind, "SERVER");
    dds__concentrator_free(c);
}

TEST(test_counts_durations_and_sketches) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span s[5];
    for (int i = 0; i < 5; i++) {
        s[i] = top("GET /x", 10 + (uint64_t)i, 0, T0 + i * S / 10, (i + 1) * 1000000);
        s[i].error = i >= 3;  /* two errors */
    }
    s[4].duration = 0;  /* the zero bin */
    dds__tracer_payload tp = payload(s, 5, "go", "e");
    dds__concentrator_add(c, &tp);
    out o;
    CHECK_EQ_INT(flush(c, T0, true, &o), 1);
    CHECK_EQ_INT(o.n, 1);
    const gstat *g = &o.g[0];
    CHECK_EQ_INT(g->hits, 5);
    CHECK_EQ_INT(g->errors, 2);
    CHECK_EQ_INT(g->top_level_hits, 5);
    CHECK_EQ_INT(g->duration, 1000000 + 2000000 + 3000000 + 4000000);
    CHECK(g->ok.ok && g->err.ok);
    CHECK(g->ok.count == 3 && g->err.count == 2);
    CHECK(g->err.zero == 1 && g->ok.zero == 0);
    CHECK_EQ_INT(g->ok.nbins, dds__ddsketch_index(3e6) - dds__ddsketch_index(1e6) + 1);
    CHECK_EQ_INT(g->start, (uint64_t)T0);
    CHECK_EQ_INT(g->width, (uint64_t)DDS__STATS_BUCKET_NS);
    CHECK_EQ_INT(g->trace_root, 1);  /* TRUE */
    CHECK_EQ_INT(dds__counter_get(&counters.buckets), 1);
    CHECK_EQ_INT(dds__counter_get(&counters.keys), 1);
    dds__concentrator_free(c);
}

TEST(test_buckets_align_on_span_end_and_flush_when_done) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span s[4];
    s[0] = top("a", 1, 0, T0 + 1 * S, 2 * S);               /* ends T0+3s: bucket T0 */
    s[1] = top("a", 2, 0, T0 + 8 * S, 3 * S);               /* starts in T0, ends T0+11s: bucket T0+10s */
    s[2] = top("a", 3, 0, T0 + 25 * S, 1 * S);              /* bucket T0+20s */
    s[3] = top("a", 4, 0, T0 - 100 * S, S);                 /* older than the oldest bucket: T0 */
    dds__tracer_payload tp = payload(s, 4, "go", "e");
    dds__concentrator_add(c, &tp);
    CHECK_EQ_INT(dds__concentrator_live_keys(c), 3);
    out o;
    /* at T0+29s only the bucket that started 20 s ago or more is done */
    CHECK_EQ_INT(flush(c, T0 + 29 * S, false, &o), 1);
    CHECK_EQ_INT(o.n, 1);
    CHECK_EQ_INT(o.g[0].start, (uint64_t)T0);
    CHECK_EQ_INT(o.g[0].hits, 2);
    CHECK_EQ_INT(flush(c, T0 + 29 * S, false, &o), 0);
    CHECK_EQ_INT(flush(c, T0 + 30 * S, false, &o), 1);
    CHECK_EQ_INT(o.n, 1);
    CHECK_EQ_INT(o.g[0].start, (uint64_t)(T0 + 10 * S));
    /* the flush moved the oldest bucket to T0+20s: a late span of T0+5s goes there */
    dds__span late = top("a", 5, 0, T0 + 4 * S, S);
    tp = payload(&late, 1, "go", "e");
    dds__concentrator_add(c, &tp);
    CHECK_EQ_INT(dds__concentrator_live_keys(c), 1);
    /* force: everything open */
    CHECK_EQ_INT(flush(c, T0 + 31 * S, true, &o), 1);
    CHECK_EQ_INT(o.n, 1);
    CHECK_EQ_INT(o.g[0].start, (uint64_t)(T0 + 20 * S));
    CHECK_EQ_INT(o.g[0].hits, 2);
    CHECK_EQ_INT(dds__concentrator_live_keys(c), 0);
    CHECK_EQ_INT(dds__counter_get(&counters.buckets), 3);
    dds__concentrator_free(c);
}

TEST(test_key_fields) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span s[12];
    int n = 0;
    s[n] = top("route", 1, 0, T0, 5);
    meta(&s[n], "http.method", "GET");
    meta(&s[n], "http.route", "/api/v1/users");
    meta(&s[n], "_dd.svc_src", "m");
    meta(&s[n], "http.status_code", "418");
    meta(&s[n++], "_dd.origin", "synthetics-browser");
    s[n] = top("endpoint", 2, 1, T0, 5);
    meta(&s[n], "http.route", "/users/create");
    meta(&s[n], "http.endpoint", "/users/create2");
    metric(&s[n++], "http.status_code", 503);
    s[n] = top("badstatus", 3, 1, T0, 5);
    meta(&s[n++], "http.status_code", "x");
    s[n] = top("grpc-name", 4, 1, T0, 5);
    meta(&s[n++], "rpc.grpc.status_code", "OK");
    s[n] = top("grpc-num", 5, 1, T0, 5);
    meta(&s[n++], "rpc.grpc.status_code", "14");
    s[n] = top("grpc-prefix", 6, 1, T0, 5);
    meta(&s[n++], "grpc.code", "StatusCode.UNAVAILABLE");
    s[n] = top("grpc-meta-first", 7, 1, T0, 5);
    meta(&s[n], "rpc.grpc.status_code", "PERMISSION_DENIED");
    metric(&s[n++], "rpc.grpc.status_code", 2);
    s[n] = top("grpc-metric", 8, 1, T0, 5);
    metric(&s[n++], "grpc.code", 3);
    s[n] = top("grpc-lower", 9, 1, T0, 5);
    meta(&s[n++], "grpc.status.code", "not_found");
    s[n] = top("grpc-bad", 10, 1, T0, 5);
    meta(&s[n++], "grpc.code", "BOGUS");
    dds__tracer_payload tp = payload(s, (uint32_t)n, "go", "e");
    dds__concentrator_add(c, &tp);
    out o;
    flush(c, T0, true, &o);
    CHECK_EQ_INT(o.n, n);
    const gstat *g = find(&o, "route");
    CHECK(g && !strcmp(g->method, "GET") && !strcmp(g->endpoint, "/api/v1/users") && !strcmp(g->srv_src, "m"));
    CHECK(g && g->status == 418 && g->synthetics && g->trace_root == 1 && !strcmp(g->svc, "svc") &&
          !strcmp(g->name, "op") && !strcmp(g->type, "web") && g->grpc[0] == '\0');
    g = find(&o, "endpoint");
    CHECK(g && !strcmp(g->endpoint, "/users/create2") && g->status == 503 && !g->synthetics && g->trace_root == 2);
    CHECK(find(&o, "badstatus") && find(&o, "badstatus")->status == 0);
    CHECK_EQ_STR(find(&o, "grpc-name")->grpc, "0");
    CHECK_EQ_STR(find(&o, "grpc-num")->grpc, "14");
    CHECK_EQ_STR(find(&o, "grpc-prefix")->grpc, "14");
    CHECK_EQ_STR(find(&o, "grpc-meta-first")->grpc, "7");
    CHECK_EQ_STR(find(&o, "grpc-metric")->grpc, "3");
    CHECK_EQ_STR(find(&o, "grpc-lower")->grpc, "5");
    CHECK_EQ_STR(find(&o, "grpc-bad")->grpc, "");
    dds__concentrator_free(c);
}

TEST(test_peer_tags_by_kind) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span s[4];
    s[0] = span("client", 1, 9, T0, 5);
    meta(&s[0], "span.kind", "client");
    meta(&s[0], "peer.hostname", "10.1.2.3");
    meta(&s[0], "db.system", "postgresql");
    meta(&s[0], "not.a.peer.tag", "x");
    meta(&s[0], "_dd.base_service", "base");
    s[1] = span("server", 2, 9, T0, 5);
    meta(&s[1], "span.kind", "server");
    meta(&s[1], "db.system", "postgresql");
    meta(&s[1], "_dd.base_service", "base");
    s[2] = span("producer-127", 3, 9, T0, 5);
    meta(&s[2], "span.kind", "producer");
    meta(&s[2], "out.host", "127.0.0.1");
    s[3] = top("internal-no-base", 4, 0, T0, 5);
    meta(&s[3], "peer.service", "p");
    dds__tracer_payload tp = payload(s, 4, "go", "e");
    dds__concentrator_add(c, &tp);
    out o;
    flush(c, T0, true, &o);
    const gstat *g = find(&o, "client");
    CHECK(g && g->npeers == 3);
    if (g && g->npeers == 3) {  /* in key order */
        CHECK_EQ_STR(g->peers[0], "_dd.base_service:base");
        CHECK_EQ_STR(g->peers[1], "db.system:postgresql");
        CHECK_EQ_STR(g->peers[2], "peer.hostname:blocked-ip-address");
    }
    g = find(&o, "server");
    CHECK(g && g->npeers == 1 && !strcmp(g->peers[0], "_dd.base_service:base"));
    g = find(&o, "producer-127");
    CHECK(g && g->npeers == 1 && !strcmp(g->peers[0], "out.host:127.0.0.1"));
    g = find(&o, "internal-no-base");
    CHECK(g && g->npeers == 0);
    dds__concentrator_free(c);
}

TEST(test_one_payload_per_tracer_metadata) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span a[2] = {top("r", 1, 0, T0, 5), top("r", 2, 0, T0, 5)};
    meta(&a[0], "_dd.base_service", "other");     /* not the root: the last span with parent 0 is */
    meta(&a[1], "_dd.base_service", "base-svc");
    dds__tracer_payload tp = payload(a, 2, "python", "");  /* no env: the default */
    tp.app_version = dds__slice_cstr("1.2");
    tp.container_id = dds__slice_cstr("cid");
    dds__concentrator_add(c, &tp);
    dds__span b = top("r", 3, 0, T0, 5);
    tp = payload(&b, 1, "nodejs", "staging");
    dds__concentrator_add(c, &tp);
    dds__span b2 = top("r", 4, 0, T0, 7);
    tp = payload(&b2, 1, "nodejs", "staging");
    dds__concentrator_add(c, &tp);
    out o;
    CHECK_EQ_INT(flush(c, T0, true, &o), 2);
    CHECK_EQ_INT(o.n, 3);
    for (int i = 0; i < o.n; i++) {
        const gstat *g = &o.g[i];
        if (!strcmp(g->lang, "python")) {
            CHECK_EQ_STR(g->env, "prod");
            CHECK_EQ_STR(g->service, "base-svc");
            CHECK_EQ_STR(g->version, "1.2");
            CHECK_EQ_STR(g->container, "cid");
            CHECK_EQ_INT(g->hits, 1);  /* two keys: the base service is a peer tag */
        } else {
            CHECK_EQ_STR(g->lang, "nodejs");
            CHECK_EQ_STR(g->env, "staging");
            CHECK_EQ_STR(g->service, "");
            CHECK_EQ_INT(g->hits, 2);
            CHECK_EQ_INT(g->duration, 12);
        }
    }
    /* groups are freed with their last key: metadata churn cannot fill the group bound */
    for (int i = 0; i < 3 * DDS__STATS_MAX_GROUPS; i++) {
        char lang[16];
        snprintf(lang, sizeof(lang), "l%d", i);
        dds__span x = top("r", 5, 0, T0, 5);
        tp = payload(&x, 1, lang, "e");
        dds__concentrator_add(c, &tp);
        flush(c, T0, true, &o);
        CHECK_EQ_INT(o.n, 1);
    }
    CHECK_EQ_INT(dds__counter_get(&counters.spans_dropped), 0);
    /* but more metadata at once than the bound: counted drops */
    for (int i = 0; i < DDS__STATS_MAX_GROUPS + 3; i++) {
        char *lang = dds__arena_alloc(&arena, 16);
        snprintf(lang, 16, "m%d", i);
        dds__span *x = dds__arena_calloc(&arena, 1, sizeof(*x));
        *x = top("r", 5, 0, T0, 5);
        tp = payload(x, 1, lang, "e");
        dds__concentrator_add(c, &tp);
    }
    CHECK_EQ_INT(dds__counter_get(&counters.spans_dropped), 3);
    CHECK_EQ_INT(flush(c, T0, true, &o), DDS__STATS_MAX_GROUPS);
    dds__concentrator_free(c);
}

TEST(test_key_bound_goes_to_overflow_key) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(4);
    dds__span s[7];
    for (int i = 0; i < 7; i++) {
        char *r = dds__arena_alloc(&arena, 8);
        snprintf(r, 8, "r%d", i % 6);
        s[i] = top(r, 1 + (uint64_t)i, 0, T0, 100);
    }
    s[6].error = 1;  /* r0 again: an existing key still merges */
    dds__tracer_payload tp = payload(s, 7, "go", "e");
    dds__concentrator_add(c, &tp);
    CHECK_EQ_INT(dds__concentrator_live_keys(c), 5);
    CHECK_EQ_INT(dds__counter_get(&counters.spans), 7);
    CHECK_EQ_INT(dds__counter_get(&counters.spans_overflow), 2);
    out o;
    flush(c, T0, true, &o);
    CHECK_EQ_INT(o.n, 5);
    const gstat *g = find(&o, "tracer_blocked_value");
    CHECK(g != NULL);
    if (g) {
        CHECK_EQ_INT(g->hits, 2);
        CHECK_EQ_STR(g->svc, "tracer_blocked_value");
        CHECK_EQ_STR(g->endpoint, "tracer_blocked_value");
        CHECK_EQ_INT(g->trace_root, 0);
        CHECK(g->npeers == 1 && !strcmp(g->peers[0], "tracer_blocked_value"));
        CHECK(g->ok.count == 2);
    }
    CHECK(find(&o, "r0") && find(&o, "r0")->hits == 2 && find(&o, "r0")->errors == 1);
    CHECK(!find(&o, "r4") && !find(&o, "r5"));
    /* after the flush the room is back */
    dds__span again = top("r5", 9, 0, T0, 1);
    tp = payload(&again, 1, "go", "e");
    dds__concentrator_add(c, &tp);
    flush(c, T0, true, &o);
    CHECK(o.n == 1 && find(&o, "r5"));
    dds__concentrator_free(c);
}

TEST(test_sketch_memory_is_bounded) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    /* 2048 keys whose durations each span 1 ns .. 10 min, ok and error: unbounded they would hold
     * about 32 MiB of bins */
    dds__span s = top("r", 1, 0, T0, 1);
    dds__tracer_payload tp = payload(&s, 1, "go", "e");
    char res[16];
    uint64_t n = 0;
    for (int d = 0; d < 1300; d += 7) {
        for (int i = 0; i < DDS__STATS_MAX_KEYS; i++) {
            snprintf(res, sizeof(res), "r%d", i);
            s.resource = dds__slice_cstr(res);
            s.duration = (int64_t)exp(d * 0.0156);
            s.error = (d / 7) & 1;
            dds__concentrator_add(c, &tp);
            n++;
        }
    }
    CHECK_EQ_INT(dds__concentrator_live_keys(c), DDS__STATS_MAX_KEYS);
    CHECK_MSG(dds__concentrator_sketch_bytes(c) <= DDS__STATS_MAX_SKETCH_BYTES + 2 * 2048 * 4,
              "%zu bytes of bins", dds__concentrator_sketch_bytes(c));
    CHECK_EQ_INT(dds__counter_get(&counters.spans), n);
    CHECK_EQ_INT(dds__counter_get(&counters.spans_dropped), 0);
    /* counts stay exact: every value is in a sketch */
    out *o = calloc(1, sizeof(*o));
    CHECK_EQ_INT(flush(c, T0, true, o), 1);
    CHECK_EQ_INT(o->groups, DDS__STATS_MAX_KEYS);
    CHECK_EQ_INT(o->hits, n);
    CHECK(o->ok_count + o->err_count == (double)n && o->err_count == (double)o->errors);
    free(o);
    CHECK_EQ_INT(dds__concentrator_sketch_bytes(c), 0);
    dds__concentrator_free(c);
}

static uint8_t *gunzip(const uint8_t *z, size_t zlen, size_t *out_len) {
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return NULL;
    size_t cap = zlen * 8 + 4096;
    uint8_t *o = malloc(cap);
    zs.next_in = (Bytef *)z;
    zs.avail_in = (uInt)zlen;
    zs.next_out = o;
    zs.avail_out = (uInt)cap;
    int rc = inflate(&zs, Z_FINISH);
    *out_len = cap - zs.avail_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(o);
        return NULL;
    }
    return o;
}

TEST(test_stats_payload_is_client_computed_false) {
    dds__arena_reset(&arena);
    dds__concentrator *c = conc(0);
    dds__span s = top("r", 1, 0, T0, 5);
    dds__tracer_payload tp = payload(&s, 1, "go", "e");
    dds__concentrator_add(c, &tp);
    dds__buf b;
    dds__buf_init(&b);
    uint32_t n = dds__concentrator_flush(c, T0, true, &b);
    CHECK_EQ_INT(n, 1);
    dds__payload *p = dds__trace_stats_payload_computed(b.data, b.len, n, "http://x/api/v0.2/stats", "", "agent-env",
                                                        "9.9", false);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_STR(p->content_type, "application/msgpack");
        CHECK_EQ_STR(p->content_encoding, "gzip");
        size_t len = 0;
        uint8_t *raw = gunzip(p->body, p->body_len, &len);
        CHECK(raw != NULL);
        dds__mp_reader r;
        dds__mp_reader_init(&r, raw, len, NULL);
        uint32_t nf = dds__mp_read_map_any(&r);
        CHECK_EQ_INT(nf, 6);
        bool cc = true, seen = false;
        for (uint32_t i = 0; i < nf; i++) {
            dds__slice k = dds__mp_read_str_any(&r);
            if (IS("ClientComputed")) cc = dds__mp_read_bool(&r), seen = true;
            else if (IS("Stats")) {
                CHECK_EQ_INT(dds__mp_read_array_any(&r), 1);
                dds__mp_skip(&r);
            }
            else dds__mp_skip(&r);
        }
        CHECK(seen && !cc);
        CHECK(dds__mp_ok(&r) && dds__mp_left(&r) == 0);
        free(raw);
        dds__payload_free(p);
    }
    /* dry run: the stats in full */
    p = dds__trace_stats_payload_computed(b.data, b.len, n, "http://x/api/v0.2/stats", "", "agent-env", "9.9", true);
    CHECK(p != NULL);
    if (p) {
        char *line = strndup((const char *)p->body, p->body_len);
        CHECK(strstr(line, "\"ClientComputed\":false") != NULL);
        CHECK(strstr(line, "\"Resource\":\"r\"") != NULL);
        CHECK(strstr(line, "\"Hits\":1") != NULL);
        CHECK(strstr(line, "\"OkSummary\":\"") != NULL);
        free(line);
        dds__payload_free(p);
    }
    CHECK(dds__trace_stats_payload_computed(b.data, b.len, 0, "u", "", "", "", false) == NULL);
    dds__buf_free(&b);
    dds__concentrator_free(c);
}

/* ---- allocation failures ---------------------------------------------------------------------- */

#include "alloc_hook.h"
#ifdef ALLOC_HOOK

/* Every eligible span is either flushed (hits) or counted as dropped; nothing leaks. */
static void oom_run(dds__span *s, uint32_t n) {
    dds__concentrator_counters k = {0};
    dds__concentrator_config cfg = {.default_env = "e", .now_ns = T0};
    dds__concentrator *c = dds__concentrator_new(&cfg, &k);
    if (!c) return;
    dds__tracer_payload tp = payload(s, n, "go", "e");
    dds__concentrator_add(c, &tp);
    dds__buf b;
    dds__buf_init(&b);
    uint32_t np = dds__concentrator_flush(c, T0, true, &b);
    long fail = alloc_fail_at;
    alloc_fail_at = -1;
    uint64_t hits = 0;
    if (np && !b.oom) {
        out *o = calloc(1, sizeof(*o));
        decode(&b, np, o);
        for (int i = 0; i < o->n; i++) hits += o->g[i].hits;
        free(o);
    }
    alloc_fail_at = fail;
    dds__buf_free(&b);
    dds__concentrator_free(c);
    CHECK_MSG(hits + dds__counter_get(&k.spans_dropped) == n, "fail at %ld: %llu flushed + %llu dropped != %u", fail,
              (unsigned long long)hits, (unsigned long long)dds__counter_get(&k.spans_dropped), n);
}

typedef struct oom_arg {
    dds__span *s;
    uint32_t n;
} oom_arg;
static void oom_step(void *p) {
    oom_arg *a = p;
    oom_run(a->s, a->n);
}

TEST(test_allocation_failures) {
    if (test_under_valgrind()) return;
    dds__arena_reset(&arena);
    dds__span s[6];
    for (int i = 0; i < 6; i++) {
        char *r = dds__arena_alloc(&arena, 8);
        snprintf(r, 8, "r%d", i % 3);
        s[i] = top(r, 1 + (uint64_t)i, 0, T0 + i * 11 * S, 1000 * (i + 1));
        meta(&s[i], "span.kind", "client");
        meta(&s[i], "peer.hostname", "10.0.0.1,db,10.0.0.2");
    }
    oom_arg a = {.s = s, .n = 6};
    long total = alloc_fail_each(oom_step, &a, 10000, "concentrator");
    CHECK(total == 0 || total >= 10);
}
#else
TEST(test_allocation_failures) {}
#endif

int main(void) {
    dds__arena_init(&arena, 64 * 1024, 64u << 20);
    RUN(test_eligibility);
    RUN(test_counts_durations_and_sketches);
    RUN(test_buckets_align_on_span_end_and_flush_when_done);
    RUN(test_key_fields);
    RUN(test_peer_tags_by_kind);
    RUN(test_one_payload_per_tracer_metadata);
    RUN(test_key_bound_goes_to_overflow_key);
    RUN(test_stats_payload_is_client_computed_false);
    RUN(test_sketch_memory_is_bounded);
    RUN(test_allocation_failures);
    dds__arena_free(&arena);
    return TEST_REPORT();
}
