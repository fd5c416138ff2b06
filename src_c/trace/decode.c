/* decode.c - tracer payloads (PROTOCOL.md section 4). In: one request body, /v0.3 or /v0.4
 * (traces of span maps), /v0.5 (string table + 12-item span arrays) or /v0.7 (TracerPayload
 * map). Out: a dds__tracer_payload of slices into the body (or into the arena when repaired)
 * and arrays from the arena. Never allocates outside the arena or per string, never sizes an
 * array from a count the body cannot hold, never reads past the body. */
#include "trace/decode.h"

#include <stdio.h>
#include <string.h>

#include "common/msgpack.h"

#define EMPTY ((dds__slice){"", 0})
#define KEY_IS(k, lit) ((k).len == sizeof(lit) - 1 && memcmp((k).ptr, lit, sizeof(lit) - 1) == 0)

/* The smallest v0.5 span: a 12-item array header and 12 one-byte values. */
#define V05_MIN_SPAN_BYTES 13

/* Omitted fields are zero or empty (Python omits zeros, e.g. a root's parent_id). Empty
 * strings point at "" rather than NULL so nobody downstream hands NULL to memcmp. */
static const dds__span span_init = {.service = {"", 0}, .name = {"", 0}, .resource = {"", 0}, .type = {"", 0}};
static const dds__span_link link_init = {.tracestate = {"", 0}};
/* v0.4/v0.5 chunks get their priority and origin from processing (the root span's
 * _sampling_priority_v1 and _dd.origin); a v0.7 chunk without a priority key gets the same. */
static const dds__trace_chunk chunk_init = {.priority = DDS__PRIORITY_NONE, .origin = {"", 0}};

typedef struct dec {
    dds__mp_reader r;
    dds__arena *arena;
    /* Where we are, for the error message: "<outer> <outer_i>[ span <span_i>]: ". */
    const char *outer; /* "trace", "chunk", "string table entry" or NULL */
    uint32_t outer_i, span_i;
    bool in_span;
    const dds__slice *table; /* v0.5 string table */
    uint32_t ntable;
    char reason[80]; /* reasons that carry numbers; the reader points at it */
} dec;

static void *alloc_array(dec *d, uint32_t n, size_t size) {
    if (n == 0) return NULL;
    void *p = (size_t)n > SIZE_MAX / size ? NULL : dds__arena_alloc(d->arena, (size_t)n * size);
    if (!p) dds__mp_fail(&d->r, "exceeds the memory limit");
    return p;
}

/* ---- shared pieces -------------------------------------------------------------------------- */

static void read_str_map(dec *d, dds__kv **out, uint32_t *nout, const char *key_ctx, const char *value_ctx) {
    dds__mp_reader *r = &d->r;
    uint32_t n = dds__mp_read_map_or_nil(r);
    dds__kv *kv = alloc_array(d, n, sizeof(*kv));
    *out = kv;
    *nout = 0;
    if (!kv) return;
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = key_ctx;
        kv[i].key = dds__mp_read_str(r);
        r->ctx = value_ctx;
        kv[i].value = dds__mp_read_str(r);
    }
    *nout = n;
}

static void read_metrics(dec *d, dds__span *s) {
    dds__mp_reader *r = &d->r;
    uint32_t n = dds__mp_read_map_or_nil(r);
    dds__kvd *kv = alloc_array(d, n, sizeof(*kv));
    s->metrics = kv;
    s->nmetrics = 0;
    if (!kv) return;
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "metrics key";
        kv[i].key = dds__mp_read_str(r);
        r->ctx = "metrics value";
        kv[i].value = dds__mp_read_f64(r);
    }
    s->nmetrics = n;
}

/* meta_struct values are msgpack documents the tracer encoded itself (AppSec, IAST): kept as
 * raw bytes, never UTF-8 checked. The Go agent reads them as bin; str and nil are taken too. */
static void read_meta_struct(dec *d, dds__span *s) {
    dds__mp_reader *r = &d->r;
    uint32_t n = dds__mp_read_map_or_nil(r);
    dds__kv *kv = alloc_array(d, n, sizeof(*kv));
    s->meta_struct = kv;
    s->nmeta_struct = 0;
    if (!kv) return;
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "meta_struct key";
        kv[i].key = dds__mp_read_str(r);
        r->ctx = "meta_struct value";
        kv[i].value = dds__mp_read_bytes(r);
    }
    s->nmeta_struct = n;
}

static void read_link(dec *d, dds__span_link *l) {
    dds__mp_reader *r = &d->r;
    *l = link_init;
    uint32_t n = dds__mp_read_map(r);
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "span link key";
        dds__slice k = dds__mp_read_bytes(r);
        if (KEY_IS(k, "trace_id")) {
            r->ctx = "span link trace_id";
            l->trace_id = dds__mp_read_u64(r);
        } else if (KEY_IS(k, "trace_id_high")) {
            r->ctx = "span link trace_id_high";
            l->trace_id_high = dds__mp_read_u64(r);
        } else if (KEY_IS(k, "span_id")) {
            r->ctx = "span link span_id";
            l->span_id = dds__mp_read_u64(r);
        } else if (KEY_IS(k, "attributes")) {
            r->ctx = "span link attributes";
            read_str_map(d, &l->attributes, &l->nattributes, "span link attribute key",
                         "span link attribute value");
        } else if (KEY_IS(k, "tracestate")) {
            r->ctx = "span link tracestate";
            l->tracestate = dds__mp_read_str(r);
        } else if (KEY_IS(k, "flags")) {
            r->ctx = "span link flags";
            l->flags = dds__mp_read_u32(r);
        } else {
            r->ctx = "value of an unknown span link key";
            dds__mp_skip(r);
        }
    }
}

static void read_links(dec *d, dds__span *s) {
    dds__mp_reader *r = &d->r;
    uint32_t n = dds__mp_read_array_or_nil(r);
    dds__span_link *links = alloc_array(d, n, sizeof(*links));
    uint32_t k = 0;
    s->links = links;
    s->nlinks = 0;
    if (!links) return;
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "span link";
        if (dds__mp_try_nil(r)) continue; /* the Go agent keeps a nil *SpanLink; nothing to forward */
        read_link(d, &links[k++]);
    }
    s->nlinks = k;
}

/* ---- v0.4 span map (also the spans of a v0.7 chunk) ----------------------------------------- */

static void read_span_map(dec *d, dds__span *s) {
    dds__mp_reader *r = &d->r;
    *s = span_init;
    r->ctx = "span";
    uint32_t n = dds__mp_read_map(r);
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "span key";
        dds__slice k = dds__mp_read_bytes(r);
        /* The length picks at most three candidates; memcmp of a constant size is inlined. */
        switch (k.len) {
        case 4:
            if (KEY_IS(k, "name")) { r->ctx = "name"; s->name = dds__mp_read_str(r); continue; }
            if (KEY_IS(k, "meta")) {
                r->ctx = "meta";
                read_str_map(d, &s->meta, &s->nmeta, "meta key", "meta value");
                continue;
            }
            if (KEY_IS(k, "type")) { r->ctx = "type"; s->type = dds__mp_read_str(r); continue; }
            break;
        case 5:
            if (KEY_IS(k, "start")) { r->ctx = "start"; s->start = dds__mp_read_i64(r); continue; }
            if (KEY_IS(k, "error")) { r->ctx = "error"; s->error = dds__mp_read_i32(r); continue; }
            break;
        case 7:
            if (KEY_IS(k, "service")) { r->ctx = "service"; s->service = dds__mp_read_str(r); continue; }
            if (KEY_IS(k, "span_id")) { r->ctx = "span_id"; s->span_id = dds__mp_read_u64(r); continue; }
            if (KEY_IS(k, "metrics")) { r->ctx = "metrics"; read_metrics(d, s); continue; }
            break;
        case 8:
            if (KEY_IS(k, "resource")) { r->ctx = "resource"; s->resource = dds__mp_read_str(r); continue; }
            if (KEY_IS(k, "trace_id")) { r->ctx = "trace_id"; s->trace_id = dds__mp_read_u64(r); continue; }
            if (KEY_IS(k, "duration")) { r->ctx = "duration"; s->duration = dds__mp_read_i64(r); continue; }
            break;
        case 9:
            if (KEY_IS(k, "parent_id")) { r->ctx = "parent_id"; s->parent_id = dds__mp_read_u64(r); continue; }
            break;
        case 10:
            if (KEY_IS(k, "span_links")) { r->ctx = "span_links"; read_links(d, s); continue; }
            break;
        case 11:
            if (KEY_IS(k, "meta_struct")) { r->ctx = "meta_struct"; read_meta_struct(d, s); continue; }
            break;
        default:
            break;
        }
        r->ctx = "value of an unknown span key";
        dds__mp_skip(r);
    }
}

/* An array of span maps into c->spans. A nil entry is skipped: the Go agent decodes it as a
 * nil *Span, which carries nothing. */
static void read_span_array(dec *d, dds__trace_chunk *c) {
    dds__mp_reader *r = &d->r;
    uint32_t n = dds__mp_read_array_or_nil(r);
    dds__span *spans = alloc_array(d, n, sizeof(*spans));
    uint32_t k = 0;
    c->spans = spans;
    c->nspans = 0;
    if (!spans) return;
    d->in_span = true;
    for (uint32_t i = 0; i < n; i++) {
        d->span_i = i;
        r->ctx = "span";
        if (dds__mp_try_nil(r)) continue;
        read_span_map(d, &spans[k++]);
        if (!dds__mp_ok(r)) return; /* keep span_i for the message */
    }
    d->in_span = false;
    c->nspans = k;
}

/* ---- v0.3 / v0.4 ---------------------------------------------------------------------------- */

static void decode_v04(dec *d, dds__tracer_payload *out) {
    dds__mp_reader *r = &d->r;
    r->ctx = "payload";
    uint32_t n = dds__mp_read_array(r);
    dds__trace_chunk *chunks = alloc_array(d, n, sizeof(*chunks));
    if (!chunks) return;
    for (uint32_t i = 0; i < n; i++) {
        d->outer = "trace";
        d->outer_i = i;
        chunks[i] = chunk_init;
        r->ctx = "trace";
        read_span_array(d, &chunks[i]);
        if (!dds__mp_ok(r)) return;
    }
    d->outer = NULL;
    out->chunks = chunks;
    out->nchunks = n;
}

/* ---- v0.5 ----------------------------------------------------------------------------------- */

/* A string-table index, read as the Go agent's dictionaryString does (msgp.ReadUint32Bytes:
 * any non-negative integer encoding); out of range is a decode error, never a clamp. */
static dds__slice table_str(dec *d, const char *what) {
    dds__mp_reader *r = &d->r;
    r->ctx = what;
    uint32_t i = dds__mp_read_u32(r);
    if (i < d->ntable) return d->table[i];
    if (dds__mp_ok(r)) {
        snprintf(d->reason, sizeof(d->reason), "index %u is out of range (string table has %u)", i, d->ntable);
        dds__mp_fail(r, d->reason);
    }
    return EMPTY;
}

static void read_span_v05(dec *d, dds__span *s) {
    dds__mp_reader *r = &d->r;
    *s = span_init;
    r->ctx = "span";
    uint32_t n = dds__mp_read_array(r);
    if (n != 12) {
        /* decoder_v05.go: "encoded span needs exactly 12 elements in array" */
        if (dds__mp_ok(r)) {
            snprintf(d->reason, sizeof(d->reason), "has %u items, not 12", n);
            dds__mp_fail(r, d->reason);
        }
        return;
    }
    s->service = table_str(d, "service");
    s->name = table_str(d, "name");
    s->resource = table_str(d, "resource");
    r->ctx = "trace_id";
    s->trace_id = dds__mp_read_u64(r);
    r->ctx = "span_id";
    s->span_id = dds__mp_read_u64(r);
    r->ctx = "parent_id";
    s->parent_id = dds__mp_read_u64(r);
    r->ctx = "start";
    s->start = dds__mp_read_i64(r);
    r->ctx = "duration";
    s->duration = dds__mp_read_i64(r);
    r->ctx = "error";
    s->error = dds__mp_read_i32(r);

    r->ctx = "meta";
    uint32_t nmeta = dds__mp_read_map_or_nil(r);
    dds__kv *meta = alloc_array(d, nmeta, sizeof(*meta));
    if (nmeta && !meta) return;
    for (uint32_t i = 0; i < nmeta; i++) {
        meta[i].key = table_str(d, "meta key");
        meta[i].value = table_str(d, "meta value");
    }
    s->meta = meta;
    s->nmeta = nmeta;

    r->ctx = "metrics";
    uint32_t nmetrics = dds__mp_read_map_or_nil(r);
    dds__kvd *metrics = alloc_array(d, nmetrics, sizeof(*metrics));
    if (nmetrics && !metrics) return;
    for (uint32_t i = 0; i < nmetrics; i++) {
        metrics[i].key = table_str(d, "metrics key");
        r->ctx = "metrics value";
        metrics[i].value = dds__mp_read_f64(r);
    }
    s->metrics = metrics;
    s->nmetrics = nmetrics;

    s->type = table_str(d, "type");
}

static void decode_v05(dec *d, dds__tracer_payload *out) {
    dds__mp_reader *r = &d->r;
    r->ctx = "payload";
    uint32_t n = dds__mp_read_array(r);
    /* Go reads the two items whatever the header says; libdatadog (the Rust mini-agent)
     * requires exactly 2, and so do we: any other count is a broken tracer. */
    if (n != 2) {
        if (dds__mp_ok(r)) dds__mp_fail(r, "is not an array of 2 items (string table, traces)");
        return;
    }

    r->ctx = "string table";
    uint32_t ntable = dds__mp_read_array(r);
    dds__slice *table = alloc_array(d, ntable, sizeof(*table));
    if (ntable && !table) return;
    d->outer = "string table entry";
    for (uint32_t i = 0; i < ntable; i++) {
        d->outer_i = i;
        r->ctx = "value";
        table[i] = dds__mp_read_str(r);
    }
    if (!dds__mp_ok(r)) return;
    d->outer = NULL;
    d->table = table;
    d->ntable = ntable;

    r->ctx = "traces";
    uint32_t ntraces = dds__mp_read_array(r);
    dds__trace_chunk *chunks = alloc_array(d, ntraces, sizeof(*chunks));
    if (ntraces && !chunks) return;
    for (uint32_t t = 0; t < ntraces; t++) {
        d->outer = "trace";
        d->outer_i = t;
        chunks[t] = chunk_init;
        r->ctx = "trace";
        uint32_t nspans = dds__mp_read_array(r);
        if (!dds__mp_ok(r)) return;
        /* The reader's bound is one byte per item, but a v0.5 span takes at least 13: at most
         * left/13 spans can decode, so a forged count gets an array one slot longer than that,
         * and decoding fails inside it with the precise reason ("span has 11 items"). */
        size_t fit = dds__mp_left(r) / V05_MIN_SPAN_BYTES + 1;
        uint32_t cap = nspans < fit ? nspans : (uint32_t)fit;
        dds__span *spans = alloc_array(d, cap, sizeof(*spans));
        if (cap && !spans) return;
        d->in_span = true;
        for (uint32_t i = 0; i < nspans; i++) {
            d->span_i = i;
            if (i == cap) { /* unreachable, as argued above */
                dds__mp_fail(r, "declares more spans than the bytes left can hold");
                return;
            }
            read_span_v05(d, &spans[i]);
            if (!dds__mp_ok(r)) return;
        }
        d->in_span = false;
        chunks[t].spans = spans;
        chunks[t].nspans = nspans;
    }
    d->outer = NULL;
    out->chunks = chunks;
    out->nchunks = ntraces;
}

/* ---- v0.7 ----------------------------------------------------------------------------------- */

static void read_chunk(dec *d, dds__trace_chunk *c) {
    dds__mp_reader *r = &d->r;
    *c = chunk_init;
    uint32_t n = dds__mp_read_map(r);
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "chunk key";
        dds__slice k = dds__mp_read_bytes(r);
        if (KEY_IS(k, "priority")) {
            r->ctx = "priority";
            if (!dds__mp_try_nil(r)) c->priority = dds__mp_read_i32(r);
        } else if (KEY_IS(k, "origin")) {
            r->ctx = "origin";
            c->origin = dds__mp_read_str(r);
        } else if (KEY_IS(k, "spans")) {
            r->ctx = "spans";
            read_span_array(d, c);
        } else if (KEY_IS(k, "tags")) {
            r->ctx = "tags";
            read_str_map(d, &c->tags, &c->ntags, "tags key", "tags value");
        } else if (KEY_IS(k, "dropped_trace")) {
            r->ctx = "dropped_trace";
            c->dropped_trace = dds__mp_read_bool(r);
        } else {
            r->ctx = "value of an unknown chunk key";
            dds__mp_skip(r);
        }
    }
}

static void read_chunks(dec *d, dds__tracer_payload *out) {
    dds__mp_reader *r = &d->r;
    uint32_t n = dds__mp_read_array_or_nil(r);
    dds__trace_chunk *chunks = alloc_array(d, n, sizeof(*chunks));
    uint32_t k = 0;
    out->chunks = chunks;
    out->nchunks = 0;
    if (!chunks) return;
    for (uint32_t i = 0; i < n; i++) {
        d->outer = "chunk";
        d->outer_i = i;
        r->ctx = "chunk";
        if (dds__mp_try_nil(r)) continue; /* a nil *TraceChunk in Go */
        read_chunk(d, &chunks[k++]);
        if (!dds__mp_ok(r)) return;
    }
    d->outer = NULL;
    out->nchunks = k;
}

static void decode_v07(dec *d, dds__tracer_payload *out) {
    dds__mp_reader *r = &d->r;
    r->ctx = "payload";
    uint32_t n = dds__mp_read_map(r);
    for (uint32_t i = 0; i < n; i++) {
        r->ctx = "payload key";
        dds__slice k = dds__mp_read_bytes(r);
        dds__slice *field = NULL;
        const char *name = NULL;
        if (KEY_IS(k, "container_id")) field = &out->container_id, name = "container_id";
        else if (KEY_IS(k, "language_name")) field = &out->language_name, name = "language_name";
        else if (KEY_IS(k, "language_version")) field = &out->language_version, name = "language_version";
        else if (KEY_IS(k, "tracer_version")) field = &out->tracer_version, name = "tracer_version";
        else if (KEY_IS(k, "runtime_id")) field = &out->runtime_id, name = "runtime_id";
        else if (KEY_IS(k, "env")) field = &out->env, name = "env";
        else if (KEY_IS(k, "hostname")) field = &out->hostname, name = "hostname";
        else if (KEY_IS(k, "app_version")) field = &out->app_version, name = "app_version";
        if (field) {
            r->ctx = name;
            *field = dds__mp_read_str(r);
        } else if (KEY_IS(k, "chunks")) {
            r->ctx = "chunks";
            read_chunks(d, out);
        } else if (KEY_IS(k, "tags")) {
            r->ctx = "tags";
            read_str_map(d, &out->tags, &out->ntags, "tags key", "tags value");
        } else {
            r->ctx = "value of an unknown payload key";
            dds__mp_skip(r);
        }
        if (!dds__mp_ok(r)) return;
    }
}

/* ---- entry point ---------------------------------------------------------------------------- */

static void format_error(const dec *d, char *err, size_t errcap) {
    const dds__mp_reader *r = &d->r;
    char where[64] = "";
    if (d->outer && d->in_span)
        snprintf(where, sizeof(where), "%s %u span %u: ", d->outer, d->outer_i, d->span_i);
    else if (d->outer)
        snprintf(where, sizeof(where), "%s %u: ", d->outer, d->outer_i);
    char got[40] = "";
    if (r->err_byte >= 0) snprintf(got, sizeof(got), " (got %s)", dds__mp_type_name((uint8_t)r->err_byte));
    snprintf(err, errcap, "%s%s %s%s", where, r->err_ctx ? r->err_ctx : "payload", r->err, got);
}

/* Bytes after the payload's value are ignored, as the Go receiver ignores what UnmarshalMsg
 * leaves over. */
int dds__trace_decode(dds__trace_format fmt, const uint8_t *body, size_t len, dds__arena *arena,
                      dds__tracer_payload *out, char *err, size_t errcap) {
    dec d;
    memset(&d, 0, offsetof(dec, reason));
    d.arena = arena;
    dds__mp_reader_init(&d.r, body, len, arena);
    *out = (dds__tracer_payload){
        .container_id = EMPTY, .language_name = EMPTY, .language_version = EMPTY, .tracer_version = EMPTY,
        .runtime_id = EMPTY, .env = EMPTY, .hostname = EMPTY, .app_version = EMPTY,
    };
    switch (fmt) {
    case DDS__TRACE_V04: decode_v04(&d, out); break;
    case DDS__TRACE_V05: decode_v05(&d, out); break;
    case DDS__TRACE_V07: decode_v07(&d, out); break;
    default:
        if (err && errcap) snprintf(err, errcap, "unknown trace format %d", (int)fmt);
        return -1;
    }
    if (dds__mp_ok(&d.r)) return 0;
    if (err && errcap) format_error(&d, err, errcap);
    return -1;
}
