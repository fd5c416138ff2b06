/* test_encode.c - AgentPayload protobuf + gzip (decoded here field by field with a small
 * protobuf reader), the languages header, flushing, dry-run lines, the StatsPayload msgpack
 * wrapper (decoded with a small msgpack reader) and its validation, allocation failures. */
#include <limits.h>
#include <zlib.h>

#include "test.h"
#include "trace/encode.h"

/* ---- gunzip --------------------------------------------------------------------------------- */

static uint8_t *gunzip(const uint8_t *z, size_t zlen, size_t *out_len) {
    z_stream zs = {0};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return NULL;
    size_t cap = zlen * 4 + 1024, len = 0;
    uint8_t *out = malloc(cap);
    zs.next_in = (Bytef *)z;
    zs.avail_in = (uInt)zlen;
    int rc;
    do {
        if (len == cap) out = realloc(out, cap *= 2);
        zs.next_out = out + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    *out_len = len;
    return out;
}

/* ---- protobuf reader (sticky error) ------------------------------------------------------------ */

typedef struct pbr { const uint8_t *p; size_t n, i; bool err; } pbr;

static uint64_t pbr_varint(pbr *r) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->err || r->i >= r->n) break;
        uint8_t b = r->p[r->i++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    r->err = true;
    return 0;
}

static bool pbr_next(pbr *r, uint32_t *field, unsigned *wt) {
    if (r->err || r->i >= r->n) return false;
    uint64_t tag = pbr_varint(r);
    *field = (uint32_t)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    return !r->err;
}

static dds__slice pbr_bytes(pbr *r, unsigned wt) {
    if (wt != 2) r->err = true;
    uint64_t n = pbr_varint(r);
    if (r->err || n > r->n - r->i) {
        r->err = true;
        return (dds__slice){"", 0};
    }
    dds__slice s = {(const char *)r->p + r->i, (size_t)n};
    r->i += (size_t)n;
    return s;
}

static uint64_t pbr_u64(pbr *r, unsigned wt) {
    if (wt != 0) r->err = true;
    return pbr_varint(r);
}

static double pbr_double(pbr *r, unsigned wt) {
    if (wt != 1 || r->n - r->i < 8) {
        r->err = true;
        return 0;
    }
    uint64_t bits = 0;
    for (int k = 0; k < 8; k++) bits |= (uint64_t)r->p[r->i + k] << (8 * k);
    r->i += 8;
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static pbr sub(pbr *r, unsigned wt) {
    dds__slice s = pbr_bytes(r, wt);
    return (pbr){(const uint8_t *)s.ptr, s.len, 0, r->err};
}

/* ---- decoded AgentPayload ----------------------------------------------------------------------- */

enum { MAXKV = 24, MAXLINKS = 4, MAXSPANS = 8, MAXCHUNKS = 4, MAXTPS = 4 };

typedef struct dlink {
    uint64_t tid, tidh, sid, flags;
    dds__kv attrs[MAXKV];
    int nattrs;
    dds__slice tracestate;
} dlink;

typedef struct dspan {
    dds__slice service, name, resource, type;
    uint64_t tid, sid, pid;
    int64_t start, duration, error;
    dds__kv meta[MAXKV];
    int nmeta;
    dds__kvd metrics[MAXKV];
    int nmetrics;
    dds__kv meta_struct[MAXKV];
    int nmeta_struct;
    dlink links[MAXLINKS];
    int nlinks;
} dspan;

typedef struct dchunk {
    int64_t priority;
    dds__slice origin;
    dspan spans[MAXSPANS];
    int nspans;
    dds__kv tags[MAXKV];
    int ntags;
    uint64_t dropped;
} dchunk;

typedef struct dtp {
    dds__slice cid, lang, langv, tracerv, rid, env, host, appv;
    dchunk chunks[MAXCHUNKS];
    int nchunks;
    dds__kv tags[MAXKV];
    int ntags;
} dtp;

typedef struct dap {
    dds__slice host, env, version;
    double target_tps, error_tps;
    bool has_target, has_error, has_rare, has_tags;
    dtp tps[MAXTPS];
    int ntps;
} dap;

/* Every field must be known with the right wire type: an unexpected one fails the decode. */
static void dec_kv(pbr *r, unsigned outer_wt, dds__kv *kv, int *n) {
    pbr e = sub(r, outer_wt);
    dds__kv out = {{"", 0}, {"", 0}};
    uint32_t f;
    unsigned wt;
    while (pbr_next(&e, &f, &wt)) {
        if (f == 1) out.key = pbr_bytes(&e, wt);
        else if (f == 2) out.value = pbr_bytes(&e, wt);
        else e.err = true;
    }
    if (e.err || *n >= MAXKV) r->err = true;
    else kv[(*n)++] = out;
}

static void dec_metric(pbr *r, unsigned outer_wt, dds__kvd *kv, int *n) {
    pbr e = sub(r, outer_wt);
    dds__kvd out = {{"", 0}, 0};
    uint32_t f;
    unsigned wt;
    while (pbr_next(&e, &f, &wt)) {
        if (f == 1) out.key = pbr_bytes(&e, wt);
        else if (f == 2) out.value = pbr_double(&e, wt);
        else e.err = true;
    }
    if (e.err || *n >= MAXKV) r->err = true;
    else kv[(*n)++] = out;
}

static void dec_link(pbr *r, unsigned outer_wt, dlink *l) {
    pbr e = sub(r, outer_wt);
    uint32_t f;
    unsigned wt;
    while (pbr_next(&e, &f, &wt)) {
        switch (f) {
        case 1: l->tid = pbr_u64(&e, wt); break;
        case 2: l->tidh = pbr_u64(&e, wt); break;
        case 3: l->sid = pbr_u64(&e, wt); break;
        case 4: dec_kv(&e, wt, l->attrs, &l->nattrs); break;
        case 5: l->tracestate = pbr_bytes(&e, wt); break;
        case 6: l->flags = pbr_u64(&e, wt); break;
        default: e.err = true;
        }
    }
    if (e.err) r->err = true;
}

static void dec_span(pbr *r, unsigned outer_wt, dspan *s) {
    pbr e = sub(r, outer_wt);
    uint32_t f;
    unsigned wt;
    while (pbr_next(&e, &f, &wt)) {
        switch (f) {
        case 1: s->service = pbr_bytes(&e, wt); break;
        case 2: s->name = pbr_bytes(&e, wt); break;
        case 3: s->resource = pbr_bytes(&e, wt); break;
        case 4: s->tid = pbr_u64(&e, wt); break;
        case 5: s->sid = pbr_u64(&e, wt); break;
        case 6: s->pid = pbr_u64(&e, wt); break;
        case 7: s->start = (int64_t)pbr_u64(&e, wt); break;
        case 8: s->duration = (int64_t)pbr_u64(&e, wt); break;
        case 9: s->error = (int64_t)pbr_u64(&e, wt); break;
        case 10: dec_kv(&e, wt, s->meta, &s->nmeta); break;
        case 11: dec_metric(&e, wt, s->metrics, &s->nmetrics); break;
        case 12: s->type = pbr_bytes(&e, wt); break;
        case 13: dec_kv(&e, wt, s->meta_struct, &s->nmeta_struct); break;
        case 14:
            if (s->nlinks >= MAXLINKS) e.err = true;
            else dec_link(&e, wt, &s->links[s->nlinks++]);
            break;
        default: e.err = true;
        }
    }
    if (e.err) r->err = true;
}

static void dec_chunk(pbr *r, unsigned outer_wt, dchunk *c) {
    pbr e = sub(r, outer_wt);
    uint32_t f;
    unsigned wt;
    while (pbr_next(&e, &f, &wt)) {
        switch (f) {
        case 1: c->priority = (int64_t)pbr_u64(&e, wt); break;
        case 2: c->origin = pbr_bytes(&e, wt); break;
        case 3:
            if (c->nspans >= MAXSPANS) e.err = true;
            else dec_span(&e, wt, &c->spans[c->nspans++]);
            break;
        case 4: dec_kv(&e, wt, c->tags, &c->ntags); break;
        case 5: c->dropped = pbr_u64(&e, wt); break;
        default: e.err = true;
        }
    }
    if (e.err) r->err = true;
}

static void dec_tp(pbr *r, unsigned outer_wt, dtp *t) {
    pbr e = sub(r, outer_wt);
    uint32_t f;
    unsigned wt;
    while (pbr_next(&e, &f, &wt)) {
        switch (f) {
        case 1: t->cid = pbr_bytes(&e, wt); break;
        case 2: t->lang = pbr_bytes(&e, wt); break;
        case 3: t->langv = pbr_bytes(&e, wt); break;
        case 4: t->tracerv = pbr_bytes(&e, wt); break;
        case 5: t->rid = pbr_bytes(&e, wt); break;
        case 6:
            if (t->nchunks >= MAXCHUNKS) e.err = true;
            else dec_chunk(&e, wt, &t->chunks[t->nchunks++]);
            break;
        case 7: dec_kv(&e, wt, t->tags, &t->ntags); break;
        case 8: t->env = pbr_bytes(&e, wt); break;
        case 9: t->host = pbr_bytes(&e, wt); break;
        case 10: t->appv = pbr_bytes(&e, wt); break;
        default: e.err = true;
        }
    }
    if (e.err) r->err = true;
}

static bool dec_agent_payload(const uint8_t *p, size_t n, dap *a) {
    memset(a, 0, sizeof(*a));
    pbr r = {p, n, 0, false};
    uint32_t f;
    unsigned wt;
    while (pbr_next(&r, &f, &wt)) {
        switch (f) {
        case 1: a->host = pbr_bytes(&r, wt); break;
        case 2: a->env = pbr_bytes(&r, wt); break;
        case 5:
            if (a->ntps >= MAXTPS) r.err = true;
            else dec_tp(&r, wt, &a->tps[a->ntps++]);
            break;
        case 6: a->has_tags = true; r.err = true; break;
        case 7: a->version = pbr_bytes(&r, wt); break;
        case 8: a->target_tps = pbr_double(&r, wt), a->has_target = true; break;
        case 9: a->error_tps = pbr_double(&r, wt), a->has_error = true; break;
        case 10: a->has_rare = true; (void)pbr_u64(&r, wt); break;
        default: r.err = true;
        }
    }
    return !r.err && r.i == r.n;
}

/* ---- comparing with the records given to the encoder ------------------------------------------- */

static bool seq(dds__slice a, dds__slice b) { return dds__slice_eq(a, b); }

static bool kv_same(const dds__kv *d, int nd, const dds__kv *s, uint32_t ns) {
    if ((uint32_t)nd != ns) return false;
    for (uint32_t i = 0; i < ns; i++)
        if (!seq(d[i].key, s[i].key) || !seq(d[i].value, s[i].value)) return false;
    return true;
}

static void check_span(const dspan *d, const dds__span *s) {
    CHECK(seq(d->service, s->service) && seq(d->name, s->name) && seq(d->resource, s->resource) &&
          seq(d->type, s->type));
    CHECK(d->tid == s->trace_id && d->sid == s->span_id && d->pid == s->parent_id);
    CHECK(d->start == s->start && d->duration == s->duration);
    CHECK_EQ_INT((int32_t)d->error, s->error);  /* int32 on the wire: sign-extended varint */
    CHECK(kv_same(d->meta, d->nmeta, s->meta, s->nmeta));
    CHECK(kv_same(d->meta_struct, d->nmeta_struct, s->meta_struct, s->nmeta_struct));
    CHECK_EQ_INT(d->nmetrics, s->nmetrics);
    for (uint32_t i = 0; i < s->nmetrics && (int)i < d->nmetrics; i++) {
        CHECK(seq(d->metrics[i].key, s->metrics[i].key));
        CHECK(memcmp(&d->metrics[i].value, &s->metrics[i].value, sizeof(double)) == 0);  /* bit-exact, NaN too */
    }
    CHECK_EQ_INT(d->nlinks, s->nlinks);
    for (uint32_t i = 0; i < s->nlinks && (int)i < d->nlinks; i++) {
        const dlink *dl = &d->links[i];
        const dds__span_link *sl = &s->links[i];
        CHECK(dl->tid == sl->trace_id && dl->tidh == sl->trace_id_high && dl->sid == sl->span_id);
        CHECK(dl->flags == sl->flags && seq(dl->tracestate, sl->tracestate));
        CHECK(kv_same(dl->attrs, dl->nattrs, sl->attributes, sl->nattributes));
    }
}

static void check_tp(const dtp *d, const dds__tracer_payload *s) {
    CHECK(seq(d->cid, s->container_id) && seq(d->lang, s->language_name) && seq(d->langv, s->language_version));
    CHECK(seq(d->tracerv, s->tracer_version) && seq(d->rid, s->runtime_id));
    CHECK(seq(d->env, s->env) && seq(d->host, s->hostname) && seq(d->appv, s->app_version));
    CHECK(kv_same(d->tags, d->ntags, s->tags, s->ntags));
    CHECK_EQ_INT(d->nchunks, s->nchunks);
    for (uint32_t c = 0; c < s->nchunks && (int)c < d->nchunks; c++) {
        const dchunk *dc = &d->chunks[c];
        const dds__trace_chunk *sc = &s->chunks[c];
        int64_t want_priority = sc->priority == DDS__PRIORITY_NONE ? -128 : sc->priority;
        CHECK_EQ_INT((int32_t)dc->priority, want_priority);
        CHECK(seq(dc->origin, sc->origin));
        CHECK(kv_same(dc->tags, dc->ntags, sc->tags, sc->ntags));
        CHECK_EQ_INT(dc->dropped, sc->dropped_trace);
        CHECK_EQ_INT(dc->nspans, sc->nspans);
        for (uint32_t i = 0; i < sc->nspans && (int)i < dc->nspans; i++) check_span(&dc->spans[i], &sc->spans[i]);
    }
}

/* ---- fixtures ----------------------------------------------------------------------------------- */

#define S(lit) DDS__SLICE_LIT(lit)

typedef struct fixture {
    dds__kv meta[4], meta2[2], ms[1], ctags[1], tptags[2], lattrs[2];
    dds__kvd metrics[4];
    dds__span_link link;
    dds__span spans[3];
    dds__trace_chunk chunks[3];
    dds__tracer_payload tp[2];
    char *long_value;
} fixture;

static void fixture_init(fixture *f) {
    memset(f, 0, sizeof(*f));
    f->long_value = malloc(20000);
    for (int i = 0; i < 20000; i++) f->long_value[i] = (char)('a' + i % 26);
    f->meta[0] = (dds__kv){S("http.url"), S("http://x/y")};
    f->meta[1] = (dds__kv){S("empty"), S("")};
    f->meta[2] = (dds__kv){S("long"), dds__slice_make(f->long_value, 20000)};
    f->meta[3] = (dds__kv){S("unicode"), S("\xC3\xA9t\xC3\xA9")};
    f->meta2[0] = (dds__kv){S("a"), S("b")};
    f->meta2[1] = (dds__kv){S("a"), S("c")};  /* a repeated key stays two entries, in order */
    f->ms[0] = (dds__kv){S("_dd.stack"), dds__slice_make("\x81\xa1k\x00\xff", 5)};
    f->metrics[0] = (dds__kvd){S("_top_level"), 1};
    f->metrics[1] = (dds__kvd){S("neg"), -2.5};
    f->metrics[2] = (dds__kvd){S("zero"), 0};
    f->metrics[3] = (dds__kvd){S("nan"), NAN};
    f->lattrs[0] = (dds__kv){S("link.name"), S("follows")};
    f->lattrs[1] = (dds__kv){S("k"), S("v")};
    f->link = (dds__span_link){.trace_id = UINT64_MAX, .trace_id_high = UINT64_C(0x6500000012345678),
                               .span_id = UINT64_C(1) << 63, .attributes = f->lattrs, .nattributes = 2,
                               .tracestate = S("dd=s:1"), .flags = 0x80000001u};
    f->spans[0] = (dds__span){.service = S("svc"), .name = S("web.request"), .resource = S("GET /"), .type = S("web"),
                              .trace_id = UINT64_MAX, .span_id = UINT64_MAX - 1, .parent_id = 0,
                              .start = INT64_C(1700000000123456789), .duration = INT64_MAX, .error = 1,
                              .meta = f->meta, .nmeta = 4, .metrics = f->metrics, .nmetrics = 4,
                              .meta_struct = f->ms, .nmeta_struct = 1, .links = &f->link, .nlinks = 1};
    f->spans[1] = (dds__span){.service = S("db"), .name = S("q"), .resource = S("SELECT ?"), .trace_id = UINT64_MAX,
                              .span_id = 1, .parent_id = UINT64_MAX - 1, .start = 1, .duration = 0, .error = -7,
                              .meta = f->meta2, .nmeta = 2};
    f->spans[2] = (dds__span){.service = S("n"), .name = S("n"), .resource = S("n"), .trace_id = 5, .span_id = 6};
    f->ctags[0] = (dds__kv){S("_dd.p.dm"), S("-4")};
    f->chunks[0] = (dds__trace_chunk){.spans = &f->spans[0], .nspans = 2, .priority = 2, .origin = S("lambda"),
                                      .tags = f->ctags, .ntags = 1};
    f->chunks[1] = (dds__trace_chunk){.spans = &f->spans[2], .nspans = 1, .priority = DDS__PRIORITY_NONE,
                                      .dropped_trace = true};
    f->chunks[2] = (dds__trace_chunk){.spans = &f->spans[2], .nspans = 1, .priority = -1};
    f->tptags[0] = (dds__kv){S("_dd.tags.function"), S("team:a")};
    f->tptags[1] = (dds__kv){S("x"), S("y")};
    f->tp[0] = (dds__tracer_payload){.container_id = S("cid"), .language_name = S("python"),
                                     .language_version = S("3.12"), .tracer_version = S("2.9.0"),
                                     .runtime_id = S("rid-1"), .env = S("prod"), .hostname = S("h1"),
                                     .app_version = S("1.0"), .chunks = f->chunks, .nchunks = 2,
                                     .tags = f->tptags, .ntags = 2};
    f->tp[1] = (dds__tracer_payload){.language_name = S("nodejs"), .chunks = &f->chunks[2], .nchunks = 1};
}

static dds__trace_encoder *encoder(bool dry_run, size_t flush_bytes) {
    dds__trace_encoder_config cfg = {.traces_url = "https://trace.agent.datadoghq.com/api/v0.2/traces",
                                     .hostname = "agent-host", .env = "prod", .agent_version = "0.1.0",
                                     .dry_run = dry_run, .flush_bytes = flush_bytes};
    return dds__trace_encoder_new(&cfg);
}

/* ---- tests ---------------------------------------------------------------------------------- */

TEST(test_roundtrip_fields) {
    fixture f;
    fixture_init(&f);
    dds__trace_encoder *e = encoder(false, 0);
    CHECK(!dds__trace_encoder_add(e, &f.tp[0]));
    CHECK(!dds__trace_encoder_add(e, &f.tp[1]));
    CHECK(dds__trace_encoder_pending_bytes(e) > 20000);
    dds__payload *p = dds__trace_encoder_take(e);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->kind, DDS__PK_TRACES);
        CHECK_EQ_STR(p->url, "https://trace.agent.datadoghq.com/api/v0.2/traces");
        CHECK_EQ_STR(p->content_type, "application/x-protobuf");
        CHECK_EQ_STR(p->content_encoding, "gzip");
        CHECK_EQ_INT(p->items, 4);
        CHECK_EQ_STR(p->extra_headers, "X-Datadog-Reported-Languages: nodejs|python\n");
        size_t len = 0;
        uint8_t *raw = gunzip(p->body, p->body_len, &len);
        CHECK(raw != NULL);
        dap *a = calloc(1, sizeof(*a));
        CHECK(raw && dec_agent_payload(raw, len, a));
        CHECK_EQ_SLICE(a->host, "agent-host");
        CHECK_EQ_SLICE(a->env, "prod");
        CHECK_EQ_SLICE(a->version, "0.1.0");
        CHECK(a->has_target && a->target_tps == 10.0);
        CHECK(a->has_error && a->error_tps == 10.0);
        CHECK(!a->has_rare && !a->has_tags);  /* false / empty: left out, as proto3 */
        CHECK_EQ_INT(a->ntps, 2);
        if (a->ntps == 2) {
            check_tp(&a->tps[0], &f.tp[0]);
            check_tp(&a->tps[1], &f.tp[1]);
            /* a few of the values spelled out, beyond "same as the input" */
            CHECK(a->tps[0].chunks[0].spans[0].tid == UINT64_MAX);
            CHECK(a->tps[0].chunks[0].spans[0].links[0].sid == (UINT64_C(1) << 63));
            CHECK_EQ_INT(a->tps[0].chunks[1].priority, -128);
            CHECK_EQ_INT((int32_t)a->tps[1].chunks[0].priority, -1);
            CHECK_EQ_INT((int32_t)a->tps[0].chunks[0].spans[1].error, -7);
        }
        free(a);
        free(raw);
    }
    dds__payload_free(p);
    CHECK(dds__trace_encoder_take(e) == NULL);
    CHECK_EQ_INT(dds__trace_encoder_pending_bytes(e), 0);
    CHECK_EQ_INT(dds__trace_encoder_spans_dropped(e), 0);
    dds__trace_encoder_free(e);
    free(f.long_value);
}

/* Fields with default values are left out (proto3): a span of zeros is an empty message. */
TEST(test_defaults_omitted) {
    dds__span s = {0};
    dds__trace_chunk c = {.spans = &s, .nspans = 1, .priority = 0};
    dds__tracer_payload tp = {.chunks = &c, .nchunks = 1};
    dds__trace_encoder_config cfg = {.traces_url = "http://x/api/v0.2/traces"};
    dds__trace_encoder *e = dds__trace_encoder_new(&cfg);
    dds__trace_encoder_add(e, &tp);
    dds__payload *p = dds__trace_encoder_take(e);
    size_t len = 0;
    uint8_t *raw = p ? gunzip(p->body, p->body_len, &len) : NULL;
    /* targetTPS (tag 0x41 + 8 bytes), errorTPS (0x49 + 8), then 0x2a 04 | 0x32 02 | 0x1a 00 */
    static const uint8_t tail[] = {0x2a, 0x04, 0x32, 0x02, 0x1a, 0x00};
    CHECK(raw && len == 18 + sizeof(tail));
    if (raw && len == 18 + sizeof(tail)) {
        CHECK(raw[0] == 0x41 && raw[9] == 0x49);
        CHECK(memcmp(raw + 18, tail, sizeof(tail)) == 0);
    }
    CHECK(p && p->extra_headers == NULL);  /* no language: no header */
    free(raw);
    dds__payload_free(p);
    dds__trace_encoder_free(e);
}

TEST(test_flush_threshold) {
    fixture f;
    fixture_init(&f);
    dds__trace_encoder *e = encoder(false, 1000);
    CHECK(dds__trace_encoder_take(e) == NULL);
    CHECK(!dds__trace_encoder_add(e, &f.tp[1]));            /* small */
    size_t small = dds__trace_encoder_pending_bytes(e);
    CHECK(small > 0 && small < 1000);
    CHECK(dds__trace_encoder_add(e, &f.tp[0]));             /* 20 kB: take now */
    /* an empty tracer payload (every chunk dropped) adds nothing */
    dds__tracer_payload empty = {.language_name = S("ruby")};
    size_t before = dds__trace_encoder_pending_bytes(e);
    CHECK(dds__trace_encoder_add(e, &empty));
    CHECK_EQ_INT(dds__trace_encoder_pending_bytes(e), before);
    dds__payload *p = dds__trace_encoder_take(e);
    CHECK(p && p->items == 4);
    CHECK(p && strstr(p->extra_headers, "ruby") == NULL);
    dds__payload_free(p);
    CHECK_EQ_INT(dds__trace_encoder_pending_bytes(e), 0);
    /* the next payload starts over, header included */
    dds__trace_encoder_add(e, &f.tp[1]);
    CHECK_EQ_INT(dds__trace_encoder_pending_bytes(e), small);
    p = dds__trace_encoder_take(e);
    size_t len = 0;
    uint8_t *raw = p ? gunzip(p->body, p->body_len, &len) : NULL;
    dap *a = calloc(1, sizeof(*a));
    CHECK(raw && dec_agent_payload(raw, len, a) && a->ntps == 1);
    CHECK_EQ_STR(p ? p->extra_headers : "", "X-Datadog-Reported-Languages: nodejs\n");
    free(a);
    free(raw);
    dds__payload_free(p);
    dds__trace_encoder_free(e);
    free(f.long_value);
}

TEST(test_languages_header) {
    const char *langs[] = {"python", "go", "python", "bad\nX-Inject: 1", "dotnet", "", "go"};
    dds__trace_encoder *e = encoder(false, 0);
    dds__span s = {.trace_id = 1, .span_id = 1};
    dds__trace_chunk c = {.spans = &s, .nspans = 1};
    for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++) {
        dds__tracer_payload tp = {.language_name = dds__slice_cstr(langs[i]), .chunks = &c, .nchunks = 1};
        dds__trace_encoder_add(e, &tp);
    }
    dds__payload *p = dds__trace_encoder_take(e);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_STR(p->extra_headers, "X-Datadog-Reported-Languages: dotnet|go|python\n");
        CHECK_EQ_INT(p->items, 7);
    }
    dds__payload_free(p);
    dds__trace_encoder_free(e);
}

TEST(test_dry_run_line) {
    dds__kv meta[1] = {{S("k"), S("v\"q")}};
    dds__kvd metrics[1] = {{S("_top_level"), 1}};
    dds__span s = {.service = S("svc"), .name = S("op"), .resource = S("r"), .trace_id = UINT64_MAX, .span_id = 2,
                   .start = 3, .duration = 4, .meta = meta, .nmeta = 1, .metrics = metrics, .nmetrics = 1};
    dds__trace_chunk c = {.spans = &s, .nspans = 1, .priority = DDS__PRIORITY_NONE};
    dds__tracer_payload tp = {.language_name = S("go"), .chunks = &c, .nchunks = 1, .env = S("e")};
    dds__trace_encoder *e = encoder(true, 0);
    dds__trace_encoder_add(e, &tp);
    dds__trace_encoder_add(e, &tp);
    dds__payload *p = dds__trace_encoder_take(e);
    const char *span =
        "{\"service\":\"svc\",\"name\":\"op\",\"resource\":\"r\",\"traceID\":18446744073709551615,\"spanID\":2,"
        "\"parentID\":0,\"start\":3,\"duration\":4,\"error\":0,\"meta\":{\"k\":\"v\\\"q\"},"
        "\"metrics\":{\"_top_level\":1},"
        "\"type\":\"\",\"meta_struct\":{},\"spanLinks\":[]}";
    char tpjson[1024], want[4096];
    snprintf(tpjson, sizeof(tpjson),
             "{\"containerID\":\"\",\"languageName\":\"go\",\"languageVersion\":\"\",\"tracerVersion\":\"\","
             "\"runtimeID\":\"\",\"chunks\":[{\"priority\":-128,\"origin\":\"\",\"spans\":[%s],\"tags\":{},"
             "\"droppedTrace\":false}],\"tags\":{},\"env\":\"e\",\"hostname\":\"\",\"appVersion\":\"\"}",
             span);
    snprintf(want, sizeof(want),
             "{\"dry_run\":true,\"endpoint\":\"/api/v0.2/traces\",\"payload\":{\"hostName\":\"agent-host\","
             "\"env\":\"prod\",\"agentVersion\":\"0.1.0\",\"targetTPS\":10,\"errorTPS\":10,"
             "\"rareSamplerEnabled\":false,\"tracerPayloads\":[%s,%s]}}",
             tpjson, tpjson);
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->kind, DDS__PK_TRACES);
        CHECK_EQ_STR(p->content_type, "application/json");
        CHECK(p->content_encoding == NULL);
        CHECK_EQ_INT(p->items, 2);
        CHECK(p->body_len == strlen(want) && memcmp(p->body, want, p->body_len) == 0);
        if (p->body_len != strlen(want) || memcmp(p->body, want, p->body_len) != 0)
            fprintf(stderr, "  got  %.*s\n  want %s\n", (int)p->body_len, (const char *)p->body, want);
        CHECK(memchr(p->body, '\n', p->body_len) == NULL);  /* the intake adds the newline */
    }
    dds__payload_free(p);
    dds__trace_encoder_free(e);
}

/* ---- stats -------------------------------------------------------------------------------------- */

/* A minimal msgpack reader for what the wrapper writes. */
typedef struct mpr { const uint8_t *p; size_t n, i; bool err; } mpr;

static uint64_t mp_be(mpr *r, unsigned w) {
    if (r->n - r->i < w) {
        r->err = true;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned k = 0; k < w; k++) v = (v << 8) | r->p[r->i + k];
    r->i += w;
    return v;
}

static uint32_t mp_map(mpr *r) {
    uint8_t t = r->i < r->n ? r->p[r->i++] : 0;
    if (t >= 0x80 && t <= 0x8f) return t & 0x0f;
    if (t == 0xde) return (uint32_t)mp_be(r, 2);
    r->err = true;
    return 0;
}

static uint32_t mp_array(mpr *r) {
    uint8_t t = r->i < r->n ? r->p[r->i++] : 0;
    if (t >= 0x90 && t <= 0x9f) return t & 0x0f;
    if (t == 0xdc) return (uint32_t)mp_be(r, 2);
    r->err = true;
    return 0;
}

static dds__slice mp_str(mpr *r) {
    uint8_t t = r->i < r->n ? r->p[r->i++] : 0;
    uint64_t len;
    if (t >= 0xa0 && t <= 0xbf) len = t & 0x1f;
    else if (t == 0xd9) len = mp_be(r, 1);
    else if (t == 0xda) len = mp_be(r, 2);
    else if (t == 0xdb) len = mp_be(r, 4);
    else len = (r->err = true, 0);
    if (r->err || len > r->n - r->i) {
        r->err = true;
        return (dds__slice){"", 0};
    }
    dds__slice s = {(const char *)r->p + r->i, (size_t)len};
    r->i += (size_t)len;
    return s;
}

static bool mp_str_is(mpr *r, const char *want) {
    dds__slice s = mp_str(r);
    bool ok = !r->err && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
    if (!ok) fprintf(stderr, "  msgpack string \"%.*s\", want \"%s\"\n", (int)s.len, s.ptr, want);
    return ok;
}

static int mp_bool(mpr *r) {
    uint8_t t = r->i < r->n ? r->p[r->i++] : 0;
    if (t == 0xc3) return 1;
    if (t == 0xc2) return 0;
    r->err = true;
    return -1;
}

/* {"Hostname":"h","Env":"e","Version":"v","Stats":[{"Start":1,"Duration":10000000000,"Stats":[]}],
 *  "Lang":"python","TracerVersion":"2.9","RuntimeID":"r","Sequence":7} */
static const uint8_t CLIENT_STATS[] = {
    0x88, 0xa8, 'H', 'o', 's', 't', 'n', 'a', 'm', 'e', 0xa1, 'h', 0xa3, 'E', 'n', 'v', 0xa1, 'e',
    0xa7, 'V', 'e', 'r', 's', 'i', 'o', 'n', 0xa1, 'v', 0xa5, 'S', 't', 'a', 't', 's', 0x91, 0x83,
    0xa5, 'S', 't', 'a', 'r', 't', 0x01, 0xa8, 'D', 'u', 'r', 'a', 't', 'i', 'o', 'n', 0xcf, 0x00,
    0x00, 0x00, 0x02, 0x54, 0x0b, 0xe4, 0x00, 0xa5, 'S', 't', 'a', 't', 's', 0x90, 0xa4, 'L', 'a',
    'n', 'g', 0xa6, 'p', 'y', 't', 'h', 'o', 'n', 0xad, 'T', 'r', 'a', 'c', 'e', 'r', 'V', 'e', 'r',
    's', 'i', 'o', 'n', 0xa3, '2', '.', '9', 0xa9, 'R', 'u', 'n', 't', 'i', 'm', 'e', 'I', 'D', 0xa1,
    'r', 0xa8, 'S', 'e', 'q', 'u', 'e', 'n', 'c', 'e', 0x07,
};

TEST(test_stats_wrapper) {
    char err[128] = "";
    char *body = test_guarded_copy(CLIENT_STATS, sizeof(CLIENT_STATS));
    char host[40];
    memset(host, 'x', sizeof(host) - 1);  /* 39 bytes: a str8, not a fixstr */
    host[sizeof(host) - 1] = '\0';
    dds__payload *p = dds__trace_stats_payload((const uint8_t *)body, sizeof(CLIENT_STATS),
                                               "https://trace.agent.datadoghq.com/api/v0.2/stats", host, "prod",
                                               "0.1.0", false, err, sizeof(err));
    CHECK(p != NULL);
    if (p) {
        CHECK_EQ_INT(p->kind, DDS__PK_STATS);
        CHECK_EQ_STR(p->url, "https://trace.agent.datadoghq.com/api/v0.2/stats");
        CHECK_EQ_STR(p->content_type, "application/msgpack");
        CHECK_EQ_STR(p->content_encoding, "gzip");
        size_t len = 0;
        uint8_t *raw = gunzip(p->body, p->body_len, &len);
        CHECK(raw != NULL);
        mpr r = {raw, raw ? len : 0, 0, false};
        CHECK_EQ_INT(mp_map(&r), 6);
        CHECK(mp_str_is(&r, "AgentHostname"));
        CHECK(mp_str_is(&r, host));
        CHECK(mp_str_is(&r, "AgentEnv"));
        CHECK(mp_str_is(&r, "prod"));
        CHECK(mp_str_is(&r, "Stats"));
        CHECK_EQ_INT(mp_array(&r), 1);
        CHECK(!r.err && len - r.i >= sizeof(CLIENT_STATS) && memcmp(raw + r.i, CLIENT_STATS,
         sizeof(CLIENT_STATS)) == 0);
        r.i += sizeof(CLIENT_STATS);
        CHECK(mp_str_is(&r, "AgentVersion"));
        CHECK(mp_str_is(&r, "0.1.0"));
        CHECK(mp_str_is(&r, "ClientComputed"));
        CHECK_EQ_INT(mp_bool(&r), 1);
        CHECK(mp_str_is(&r, "SplitPayload"));
        CHECK_EQ_INT(mp_bool(&r), 0);
        CHECK(!r.err && r.i == len);
        free(raw);
    }
    dds__payload_free(p);

    /* dry run: one JSON line with the endpoint and the size */
    p = dds__trace_stats_payload((const uint8_t *)body, sizeof(CLIENT_STATS), "http://x/api/v0.2/stats", "h", "",
                                 NULL, true, err, sizeof(err));
    CHECK(p != NULL);
    if (p) {
        char want[512];
        snprintf(want, sizeof(want),
                 "{\"dry_run\":true,\"endpoint\":\"/api/v0.2/stats\",\"payload\":{\"AgentHostname\":\"h\","
                 "\"AgentEnv\":\"\","
                 "\"AgentVersion\":\"\",\"ClientComputed\":true,\"SplitPayload\":false,\"stats_msgpack_bytes\":%zu}}",
                 sizeof(CLIENT_STATS));
        CHECK(p->body_len == strlen(want) && memcmp(p->body, want, p->body_len) == 0);
        CHECK_EQ_STR(p->content_type, "application/json");
        CHECK(p->content_encoding == NULL && p->kind == DDS__PK_STATS);
    }
    dds__payload_free(p);
    test_guarded_free(body, sizeof(CLIENT_STATS));
}

TEST(test_stats_validation) {
    static const uint8_t nested_deep_prefix[] = {0x81, 0xa1, 'k'};
    const struct { const char *what; const uint8_t *b; size_t n; bool ok; } rows[] = {
        {"empty map", (const uint8_t *)"\x80", 1, true},
        {"map16", (const uint8_t *)"\xde\x00\x01\xa1k\xc0", 6, true},
        {"map32", (const uint8_t *)"\xdf\x00\x00\x00\x01\xa1k\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 16, true},
        {"every scalar type",
         (const uint8_t *)"\x8a\x01\xc4\x01z\x02\xc7\x01\x05z\x03\xd4\x05z\x04\xd8\x05zzzzzzzzzzzzzzzz"
                          "\x05\xca\x00\x00\x00"
                          "\x00\x06\xd3\x00\x00\x00\x00\x00\x00\x00\x00\x07\xff"
                          "\x08\xdc\x00\x01\xc3\x09\xda\x00\x01z\x0a"
                          "\xc6\x00\x00\x00\x01z",
         68, true},
        {"array", (const uint8_t *)"\x91\x01", 2, false},
        {"string", (const uint8_t *)"\xa1k", 2, false},
        {"nil", (const uint8_t *)"\xc0", 1, false},
        {"empty body", (const uint8_t *)"", 0, false},
        {"truncated value", (const uint8_t *)"\x81\xa1k", 3, false},
        {"truncated string", (const uint8_t *)"\x81\xa5k", 3, false},
        {"trailing bytes", (const uint8_t *)"\x80\x80", 2, false},
        {"0xc1 inside", (const uint8_t *)"\x81\xa1k\xc1", 4, false},
        {"map32 claims 2^32-1 entries", (const uint8_t *)"\xdf\xff\xff\xff\xff\x01\x01", 7, false},
        {"str32 claims 4 GiB", (const uint8_t *)"\x81\xa1k\xdb\xff\xff\xff\xff", 8, false},
        {"bin32 length cut", (const uint8_t *)"\x81\xa1k\xc6\x00\x00", 6, false},
        {"ext8 missing type", (const uint8_t *)"\x81\xa1k\xc7\x01", 5, false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char err[128] = "";
        char *b = test_guarded_copy(rows[i].b, rows[i].n);
        dds__payload *p = dds__trace_stats_payload((const uint8_t *)b, rows[i].n, "http://x/s", "h", "e", "v", false,
                                                   err, sizeof(err));
        CHECK_MSG((p != NULL) == rows[i].ok, "%s: got %s (%s)", rows[i].what, p ? "accepted" : "rejected", err);
        if (!rows[i].ok) CHECK_MSG(strncmp(err, "stats body ", 11) == 0, "%s: err \"%s\"", rows[i].what, err);
        dds__payload_free(p);
        test_guarded_free(b, rows[i].n);
    }
    /* nesting: 40 levels pass; 100000 are refused quickly (msgpack.h bounds skip at 64 levels,
     * far past the 4 of a real ClientStatsPayload) */
    size_t depths[] = {40, 100000};
    for (int d = 0; d < 2; d++) {
        size_t depth = depths[d], n = sizeof(nested_deep_prefix) + depth + 1;
        uint8_t *deep = malloc(n);
        memcpy(deep, nested_deep_prefix, sizeof(nested_deep_prefix));
        memset(deep + sizeof(nested_deep_prefix), 0x91, depth);
        deep[n - 1] = 0xc0;
        char err[128];
        dds__payload *p = dds__trace_stats_payload(deep, n, "http://x/s", "h", "e", "v", false, err, sizeof(err));
        CHECK((p != NULL) == (d == 0));
        dds__payload_free(p);
        deep[n - 1] = 0x91;  /* now the innermost array lacks its element */
        p = dds__trace_stats_payload(deep, n, "http://x/s", "h", "e", "v", false, err, sizeof(err));
        CHECK(p == NULL);
        free(deep);
    }
}

/* ---- allocation failures ---------------------------------------------------------------------- */

/* Fail exactly the Nth allocation, N = 1, 2, ...: no crash, no leak, and every span either sent
 * or counted in spans_dropped. Replaces malloc, which the sanitizers own: only in builds without
 * them (glibc); -DDDS_TEST_NO_ALLOC_HOOK turns it off for other malloc-replacing tools. */
#include "alloc_hook.h"
#ifdef ALLOC_HOOK

/* Returns spans delivered; checks the accounting. */
static uint32_t oom_run(bool dry_run, const fixture *f) {
    uint32_t delivered = 0;
    dds__trace_encoder *e = encoder(dry_run, 0);
    if (!e) return 0;
    dds__trace_encoder_add(e, &f->tp[0]);
    dds__trace_encoder_add(e, &f->tp[1]);
    dds__payload *p = dds__trace_encoder_take(e);
    alloc_paused = true;
    if (p) {
        delivered = p->items;
        if (!dry_run) {
            size_t len = 0;
            uint8_t *raw = gunzip(p->body, p->body_len, &len);
            dap *a = calloc(1, sizeof(*a));
            CHECK(raw && dec_agent_payload(raw, len, a));
            int spans = 0;
            for (int t = 0; t < a->ntps; t++)
                for (int c = 0; c < a->tps[t].nchunks; c++) spans += a->tps[t].chunks[c].nspans;
            CHECK_EQ_INT(spans, p->items);
            free(a);
            free(raw);
        }
    }
    CHECK_EQ_INT(delivered + dds__trace_encoder_spans_dropped(e), 4);
    alloc_paused = false;
    dds__payload_free(p);
    dds__trace_encoder_free(e);
    return delivered;
}

static dds__payload *oom_stats(void) {
    char err[64];
    return dds__trace_stats_payload(CLIENT_STATS, sizeof(CLIENT_STATS), "http://x/s", "h", "e", "v", false, err,
                                    sizeof(err));
}

typedef struct oom_arg {
    bool dry;
    const fixture *f;
} oom_arg;
static void oom_step(void *p) {
    const oom_arg *a = p;
    oom_run(a->dry, a->f);
}

TEST(test_allocation_failures) {
    if (test_under_valgrind()) {
        fprintf(stderr, "  skipped under valgrind (it owns the allocator)\n");
        return;
    }
    fixture f;
    alloc_paused = true;
    fixture_init(&f);
    alloc_paused = false;
    for (int dry = 0; dry < 2; dry++) {
        oom_arg a = {.dry = dry, .f = &f};
        CHECK_EQ_INT(oom_run(a.dry, &f), 4);  /* reference run */
        long total = alloc_fail_each(oom_step, &a, 100000, dry ? "encoder, dry run" : "encoder");
        if (total == 0) break;  /* malloc is not ours (valgrind): nothing to inject */
        CHECK(total >= 5);
    }
    for (long n = 1; n < 1000; n++) {
        alloc_seen = 0;
        alloc_fail_at = n;
        long live_at_start = alloc_live;
        dds__payload *p = oom_stats();
        long seen = alloc_seen;
        alloc_fail_at = -1;
        dds__payload_free(p);
        CHECK_EQ_INT(alloc_live, live_at_start);
        if (seen < n) {
            CHECK(p != NULL);
            break;
        }
    }
    alloc_paused = true;
    free(f.long_value);
    alloc_paused = false;
}
#else
TEST(test_allocation_failures) {}
#endif

int main(void) {
    RUN(test_roundtrip_fields);
    RUN(test_defaults_omitted);
    RUN(test_flush_threshold);
    RUN(test_languages_header);
    RUN(test_dry_run_line);
    RUN(test_stats_wrapper);
    RUN(test_stats_validation);
    RUN(test_allocation_failures);
    return TEST_REPORT();
}
