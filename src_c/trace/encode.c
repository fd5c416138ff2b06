/* encode.c - the trace intake's wire formats. In: processed tracer payloads, each copied into
 * the pending AgentPayload protobuf (or dry-run JSON) as it is added, and client stats bodies.
 * Out: dds__payload objects, gzip'd, with their headers. Keeps no pointer into what it is given,
 * never blocks, and never aborts: what an allocation failure costs is dropped and counted. */
#include "trace/encode.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/buf.h"
#include "common/crc32.h"
#include "common/jsonw.h"
#include "common/msgpack.h"
#include "common/pbw.h"
#include "transport/compress.h"

#define PATH_TRACES "/api/v0.2/traces"
#define PATH_STATS "/api/v0.2/stats"
#define CT_PROTOBUF "application/x-protobuf"
#define CT_MSGPACK "application/msgpack"
#define CT_JSON "application/json"
/* Go agent defaults (pkg/trace/config New): the samplers' targets it reports in every payload. */
#define TARGET_TPS 10.0
#define ERROR_TPS 10.0
/* Go sends sampler.PriorityNone (math.MinInt8) for a chunk without a sampling decision. */
#define GO_PRIORITY_NONE (-128)
/* Go writer: gzip.BestSpeed. The payloads are flushed every few seconds from a function that
 * may be frozen right after: CPU time matters more than the last few percent of size. */
#define GZIP_LEVEL 1
/* The languages header lists what tracers sent in Datadog-Meta-Lang; a handful in practice.
 * Past these bounds a language is not listed (the spans are still sent). */
#define MAX_LANGS 16
#define MAX_LANG_LEN 32

/* AgentPayload, TracerPayload, TraceChunk, Span, SpanLink field numbers (PROTOCOL.md 3). */
enum { AP_HOSTNAME = 1, AP_ENV = 2, AP_TRACER_PAYLOADS = 5, AP_AGENT_VERSION = 7, AP_TARGET_TPS = 8, AP_ERROR_TPS = 9 };
enum {
    TP_CONTAINER_ID = 1, TP_LANGUAGE_NAME, TP_LANGUAGE_VERSION, TP_TRACER_VERSION, TP_RUNTIME_ID, TP_CHUNKS,
    TP_TAGS, TP_ENV, TP_HOSTNAME, TP_APP_VERSION,
};
enum { TC_PRIORITY = 1, TC_ORIGIN, TC_SPANS, TC_TAGS, TC_DROPPED_TRACE };
enum {
    SP_SERVICE = 1, SP_NAME, SP_RESOURCE, SP_TRACE_ID, SP_SPAN_ID, SP_PARENT_ID, SP_START, SP_DURATION, SP_ERROR,
    SP_META, SP_METRICS, SP_TYPE, SP_META_STRUCT, SP_SPAN_LINKS,
};
enum { SL_TRACE_ID = 1, SL_TRACE_ID_HIGH, SL_SPAN_ID, SL_ATTRIBUTES, SL_TRACESTATE, SL_FLAGS };
enum { MAP_KEY = 1, MAP_VALUE = 2 };

/* One thread at a time (see encode.h). */
struct dds__trace_encoder {
    char *traces_url, *hostname, *env, *agent_version;   /* owned copies */
    bool dry_run;
    size_t flush_bytes;
    dds__buf body;            /* protobuf: the AgentPayload bytes not yet fed to zs (the scalars, then
                               * one field 5 per tracer payload);
                               * dry run: the tracer payloads as JSON objects separated by ',' */
    /* Protobuf only: the pending AgentPayload is gzip'd as it grows, a tracer payload at a time
     * (each is final bytes once encoded: the top-level message has no length prefix), so a
     * flush never compresses megabytes at once on the loop thread, where requests wait. */
    z_stream zs;
    bool zs_live;             /* zs initialized for the pending payload */
    bool z_failed;            /* out of memory while compressing: the pending payload is lost */
    dds__buf zout;            /* gzip bytes so far */
    dds__buf sizes;           /* scratch: the message sizes of the tracer payload being written */
    size_t raw_len;           /* uncompressed bytes already fed to zs */
    uint32_t crc;             /* their CRC-32, for the gzip trailer */
    uint32_t ntp;             /* tracer payloads in body */
    uint32_t nspans;          /* spans in body: the payload's item count */
    char langs[MAX_LANGS][MAX_LANG_LEN + 1];
    uint32_t nlangs;
    uint64_t spans_dropped;   /* lost to allocation failure */
};

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

dds__trace_encoder *dds__trace_encoder_new(const dds__trace_encoder_config *cfg) {
    dds__trace_encoder *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->traces_url = dup_or_empty(cfg->traces_url);
    e->hostname = dup_or_empty(cfg->hostname);
    e->env = dup_or_empty(cfg->env);
    e->agent_version = dup_or_empty(cfg->agent_version);
    if (!e->traces_url || !e->hostname || !e->env || !e->agent_version) {
        dds__trace_encoder_free(e);
        return NULL;
    }
    e->dry_run = cfg->dry_run;
    e->flush_bytes = cfg->flush_bytes ? cfg->flush_bytes : DDS__TRACE_FLUSH_BYTES;
    dds__buf_init(&e->body);
    dds__buf_init(&e->zout);
    dds__buf_init(&e->sizes);
    return e;
}

void dds__trace_encoder_free(dds__trace_encoder *e) {
    if (!e) return;
    free(e->traces_url);
    free(e->hostname);
    free(e->env);
    free(e->agent_version);
    dds__buf_free(&e->body);
    if (e->zs_live) deflateEnd(&e->zs);
    dds__buf_free(&e->zout);
    dds__buf_free(&e->sizes);
    free(e);
}

size_t dds__trace_encoder_pending_bytes(const dds__trace_encoder *e) { return e->ntp ? e->raw_len + e->body.len : 0; }

/* The gzip member around the raw deflate stream, as zlib's own wrapper writes it (RFC 1952: no
 * name, no time, XFL 4 for the fastest level, OS 3 = Unix), so the bytes are the same; the
 * CRC-32 is ours (common/crc32.h: folded, several times faster than zlib 1.2.13's). */
static const uint8_t GZIP_HEADER[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, GZIP_LEVEL == 1 ? 4 : 0, 3};

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Feed what body holds to the gzip stream (Z_FINISH ends it) and empty body. On failure the
 * pending payload is marked lost; body is emptied all the same. */
static void z_feed(dds__trace_encoder *e, int mode) {
    if (!e->z_failed && !e->zs_live) {
        memset(&e->zs, 0, sizeof(e->zs));
        if (deflateInit2(&e->zs, GZIP_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK) {
            e->zs_live = true;
            e->crc = 0;
            dds__buf_append(&e->zout, GZIP_HEADER, sizeof(GZIP_HEADER));
            if (e->zout.oom) e->z_failed = true;
        } else {
            e->z_failed = true;
        }
    }
    if (!e->z_failed) {
        e->crc = dds__crc32(e->crc, e->body.data, e->body.len);
        e->zs.next_in = e->body.data;
        e->zs.avail_in = (uInt)e->body.len;
        for (;;) {
            /* Level 1 shrinks spans several times over: a quarter of the input is room enough for
             * most calls, and the loop grows the buffer when it is not. */
            size_t room = e->body.len / 4 + 4096;
            if (!dds__buf_reserve(&e->zout, room)) {
                e->z_failed = true;
                break;
            }
            e->zs.next_out = e->zout.data + e->zout.len;
            e->zs.avail_out = (uInt)room;
            int rc = deflate(&e->zs, mode);
            e->zout.len += room - e->zs.avail_out;
            if (rc == Z_STREAM_END) break;
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                e->z_failed = true;
                break;
            }
            if (e->zs.avail_in == 0 && e->zs.avail_out != 0 && mode != Z_FINISH) break;
        }
        e->raw_len += e->body.len;
        if (mode == Z_FINISH && !e->z_failed) {
            /* The trailer: CRC-32 and the input size modulo 2^32, little endian. */
            uint8_t t[8];
            put_le32(t, e->crc);
            put_le32(t + 4, (uint32_t)e->raw_len);
            dds__buf_append(&e->zout, t, sizeof(t));
            if (e->zout.oom) e->z_failed = true;
        }
    }
    e->body.len = 0;
}

uint64_t dds__trace_encoder_spans_dropped(const dds__trace_encoder *e) { return e->spans_dropped; }

/* ---- protobuf ------------------------------------------------------------------------------ */

/* A tracer payload is written in two passes: the exact size of every nested message first
 * (spans and chunks, kept in sizes), then the bytes, straight into room reserved once, each
 * length prefix written before its body. No message body ever moves and nothing is checked per
 * field; the output is the canonical encoding (minimal varints) that dds__pbw_begin/end write.
 * Every field number here is under 16: a tag is one byte. */

static inline size_t vsize(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint8_t tag(uint32_t field, unsigned wt) { return (uint8_t)(field << 3 | wt); }

/* A length-delimited field of a body of n bytes, tag and length included. */
static inline size_t sz_len(size_t n) { return 1 + vsize(n) + n; }
/* proto3 leaves empty strings and zero numbers out; so do we (the intake reads them as unset). */
static inline size_t sz_str(dds__slice s) { return s.len ? sz_len(s.len) : 0; }
static inline size_t sz_u64(uint64_t v) { return v ? 1 + vsize(v) : 0; }

/* A proto3 map is a repeated {key = 1, value = 2} message; both fields are always written. */
static inline size_t sz_entry(const dds__kv *kv) { return sz_len(kv->key.len) + sz_len(kv->value.len); }
static size_t sz_map(const dds__kv *kv, uint32_t n) {
    size_t t = 0;
    for (uint32_t i = 0; i < n; i++) t += sz_len(sz_entry(&kv[i]));
    return t;
}

static size_t sz_span(const dds__span *s) {
    size_t t = sz_str(s->service) + sz_str(s->name) + sz_str(s->resource) + sz_u64(s->trace_id) +
               sz_u64(s->span_id) + sz_u64(s->parent_id) + sz_u64((uint64_t)s->start) +
               sz_u64((uint64_t)s->duration) + sz_u64((uint64_t)(int64_t)s->error);
    t += sz_map(s->meta, s->nmeta);
    for (uint32_t i = 0; i < s->nmetrics; i++) t += sz_len(sz_len(s->metrics[i].key.len) + 9);
    t += sz_str(s->type) + sz_map(s->meta_struct, s->nmeta_struct);
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const dds__span_link *l = &s->links[i];
        t += sz_len(sz_u64(l->trace_id) + sz_u64(l->trace_id_high) + sz_u64(l->span_id) +
                    sz_map(l->attributes, l->nattributes) + sz_str(l->tracestate) + sz_u64(l->flags));
    }
    return t;
}

static int32_t wire_priority(int32_t p) { return p == DDS__PRIORITY_NONE ? GO_PRIORITY_NONE : p; }

/* The span bodies' sizes (in order), then each chunk's; the tracer payload's body size. */
static size_t sz_tracer_payload(const dds__tracer_payload *tp, size_t *sizes) {
    size_t k = 0, t = 0;
    for (uint32_t i = 0; i < tp->nchunks; i++) {
        const dds__trace_chunk *c = &tp->chunks[i];
        size_t ct = sz_u64((uint64_t)(int64_t)wire_priority(c->priority)) + sz_str(c->origin);
        for (uint32_t j = 0; j < c->nspans; j++) ct += sz_len(sizes[k++] = sz_span(&c->spans[j]));
        ct += sz_map(c->tags, c->ntags) + sz_u64(c->dropped_trace);
        t += sz_len(sizes[k++] = ct);
    }
    return t + sz_str(tp->container_id) + sz_str(tp->language_name) + sz_str(tp->language_version) +
           sz_str(tp->tracer_version) + sz_str(tp->runtime_id) + sz_map(tp->tags, tp->ntags) + sz_str(tp->env) +
           sz_str(tp->hostname) + sz_str(tp->app_version);
}

static inline uint8_t *w_len(uint8_t *p, uint32_t field, size_t n) {
    *p++ = tag(field, DDS__PB_LEN);
    return put_varint(p, n);
}
static inline uint8_t *w_bytes(uint8_t *p, uint32_t field, const char *s, size_t n) {
    p = w_len(p, field, n);
    if (n) memcpy(p, s, n);
    return p + n;
}
static inline uint8_t *w_str(uint8_t *p, uint32_t field, dds__slice s) {
    return s.len ? w_bytes(p, field, s.ptr, s.len) : p;
}
static inline uint8_t *w_u64(uint8_t *p, uint32_t field, uint64_t v) {
    if (!v) return p;
    *p++ = tag(field, DDS__PB_VARINT);
    return put_varint(p, v);
}
static uint8_t *w_map(uint8_t *p, uint32_t field, const dds__kv *kv, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        p = w_len(p, field, sz_entry(&kv[i]));
        p = w_bytes(p, MAP_KEY, kv[i].key.ptr, kv[i].key.len);
        p = w_bytes(p, MAP_VALUE, kv[i].value.ptr, kv[i].value.len);
    }
    return p;
}

static uint8_t *w_span(uint8_t *p, const dds__span *s, size_t size) {
    p = w_len(p, TC_SPANS, size);
    p = w_str(p, SP_SERVICE, s->service);
    p = w_str(p, SP_NAME, s->name);
    p = w_str(p, SP_RESOURCE, s->resource);
    p = w_u64(p, SP_TRACE_ID, s->trace_id);
    p = w_u64(p, SP_SPAN_ID, s->span_id);
    p = w_u64(p, SP_PARENT_ID, s->parent_id);
    p = w_u64(p, SP_START, (uint64_t)s->start);
    p = w_u64(p, SP_DURATION, (uint64_t)s->duration);
    p = w_u64(p, SP_ERROR, (uint64_t)(int64_t)s->error);
    p = w_map(p, SP_META, s->meta, s->nmeta);
    for (uint32_t i = 0; i < s->nmetrics; i++) {
        p = w_len(p, SP_METRICS, sz_len(s->metrics[i].key.len) + 9);
        p = w_bytes(p, MAP_KEY, s->metrics[i].key.ptr, s->metrics[i].key.len);
        *p++ = tag(MAP_VALUE, DDS__PB_I64);
        uint64_t bits;
        memcpy(&bits, &s->metrics[i].value, sizeof(bits));
        for (int b = 0; b < 8; b++) *p++ = (uint8_t)(bits >> (8 * b));
    }
    p = w_str(p, SP_TYPE, s->type);
    p = w_map(p, SP_META_STRUCT, s->meta_struct, s->nmeta_struct);
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const dds__span_link *l = &s->links[i];
        p = w_len(p, SP_SPAN_LINKS,
                  sz_u64(l->trace_id) + sz_u64(l->trace_id_high) + sz_u64(l->span_id) +
                      sz_map(l->attributes, l->nattributes) + sz_str(l->tracestate) + sz_u64(l->flags));
        p = w_u64(p, SL_TRACE_ID, l->trace_id);
        p = w_u64(p, SL_TRACE_ID_HIGH, l->trace_id_high);
        p = w_u64(p, SL_SPAN_ID, l->span_id);
        p = w_map(p, SL_ATTRIBUTES, l->attributes, l->nattributes);
        p = w_str(p, SL_TRACESTATE, l->tracestate);
        p = w_u64(p, SL_FLAGS, l->flags);
    }
    return p;
}

/* AgentPayload field 5: one TracerPayload, appended to b (sticky oom). sizes: scratch. */
static void pb_tracer_payload(dds__buf *b, dds__buf *sizes, const dds__tracer_payload *tp) {
    size_t n = tp->nchunks;
    for (uint32_t i = 0; i < tp->nchunks; i++) n += tp->chunks[i].nspans;
    if (n > SIZE_MAX / sizeof(size_t)) {
        b->oom = true;
        return;
    }
    sizes->len = 0;
    if (!dds__buf_reserve(sizes, n * sizeof(size_t))) {
        sizes->oom = false;
        b->oom = true;
        return;
    }
    size_t *sz = (size_t *)(void *)sizes->data;
    size_t body = sz_tracer_payload(tp, sz);
    if (!dds__buf_reserve(b, sz_len(body))) return;
    uint8_t *start = b->data + b->len, *p = w_len(start, AP_TRACER_PAYLOADS, body);
    p = w_str(p, TP_CONTAINER_ID, tp->container_id);
    p = w_str(p, TP_LANGUAGE_NAME, tp->language_name);
    p = w_str(p, TP_LANGUAGE_VERSION, tp->language_version);
    p = w_str(p, TP_TRACER_VERSION, tp->tracer_version);
    p = w_str(p, TP_RUNTIME_ID, tp->runtime_id);
    size_t k = 0;
    for (uint32_t i = 0; i < tp->nchunks; i++) {
        const dds__trace_chunk *c = &tp->chunks[i];
        /* The chunk's size follows its spans' in sizes. */
        p = w_len(p, TP_CHUNKS, sz[k + c->nspans]);
        p = w_u64(p, TC_PRIORITY, (uint64_t)(int64_t)wire_priority(c->priority));
        p = w_str(p, TC_ORIGIN, c->origin);
        for (uint32_t j = 0; j < c->nspans; j++) p = w_span(p, &c->spans[j], sz[k++]);
        k++;
        p = w_map(p, TC_TAGS, c->tags, c->ntags);
        p = w_u64(p, TC_DROPPED_TRACE, c->dropped_trace);
    }
    p = w_map(p, TP_TAGS, tp->tags, tp->ntags);
    p = w_str(p, TP_ENV, tp->env);
    p = w_str(p, TP_HOSTNAME, tp->hostname);
    p = w_str(p, TP_APP_VERSION, tp->app_version);
    assert((size_t)(p - start) == sz_len(body));
    b->len += (size_t)(p - start);
    /* A payload of very many spans does not keep its scratch. */
    if (sizes->cap > (1u << 20)) dds__buf_free(sizes);
}

/* The AgentPayload's own fields: known at creation, written first so take() has nothing to
 * prepend (no copy of a 3 MB body). */
static void pb_str(dds__buf *b, uint32_t field, const char *s) {
    if (s[0]) dds__pbw_bytes(b, field, s, strlen(s));
}

static void pb_agent_header(const dds__trace_encoder *e, dds__buf *b) {
    pb_str(b, AP_HOSTNAME, e->hostname);
    pb_str(b, AP_ENV, e->env);
    pb_str(b, AP_AGENT_VERSION, e->agent_version);
    dds__pbw_double(b, AP_TARGET_TPS, TARGET_TPS);
    dds__pbw_double(b, AP_ERROR_TPS, ERROR_TPS);
}

/* ---- dry-run JSON (same names as the protobuf fields) ---------------------------------------- */

static void js_str(dds__jsonw *w, const char *k, dds__slice s) {
    dds__jsonw_key(w, k);
    dds__jsonw_string(w, s.ptr, s.len);
}

static void js_map(dds__jsonw *w, const char *k, const dds__kv *kv, uint32_t n) {
    dds__jsonw_key(w, k);
    dds__jsonw_object_begin(w);
    for (uint32_t i = 0; i < n; i++) {
        dds__jsonw_keyn(w, kv[i].key.ptr, kv[i].key.len);
        dds__jsonw_string(w, kv[i].value.ptr, kv[i].value.len);
    }
    dds__jsonw_object_end(w);
}

static void js_span(dds__jsonw *w, const dds__span *s) {
    dds__jsonw_object_begin(w);
    js_str(w, "service", s->service);
    js_str(w, "name", s->name);
    js_str(w, "resource", s->resource);
    dds__jsonw_key(w, "traceID");
    dds__jsonw_uint(w, s->trace_id);
    dds__jsonw_key(w, "spanID");
    dds__jsonw_uint(w, s->span_id);
    dds__jsonw_key(w, "parentID");
    dds__jsonw_uint(w, s->parent_id);
    dds__jsonw_key(w, "start");
    dds__jsonw_int(w, s->start);
    dds__jsonw_key(w, "duration");
    dds__jsonw_int(w, s->duration);
    dds__jsonw_key(w, "error");
    dds__jsonw_int(w, s->error);
    js_map(w, "meta", s->meta, s->nmeta);
    dds__jsonw_key(w, "metrics");
    dds__jsonw_object_begin(w);
    for (uint32_t i = 0; i < s->nmetrics; i++) {
        dds__jsonw_keyn(w, s->metrics[i].key.ptr, s->metrics[i].key.len);
        dds__jsonw_double(w, s->metrics[i].value);
    }
    dds__jsonw_object_end(w);
    js_str(w, "type", s->type);
    /* meta_struct values are msgpack bytes: JSON shows their size only. */
    dds__jsonw_key(w, "meta_struct");
    dds__jsonw_object_begin(w);
    for (uint32_t i = 0; i < s->nmeta_struct; i++) {
        dds__jsonw_keyn(w, s->meta_struct[i].key.ptr, s->meta_struct[i].key.len);
        dds__jsonw_uint(w, s->meta_struct[i].value.len);
    }
    dds__jsonw_object_end(w);
    dds__jsonw_key(w, "spanLinks");
    dds__jsonw_array_begin(w);
    for (uint32_t i = 0; i < s->nlinks; i++) {
        const dds__span_link *l = &s->links[i];
        dds__jsonw_object_begin(w);
        dds__jsonw_key(w, "traceID");
        dds__jsonw_uint(w, l->trace_id);
        dds__jsonw_key(w, "traceID_high");
        dds__jsonw_uint(w, l->trace_id_high);
        dds__jsonw_key(w, "spanID");
        dds__jsonw_uint(w, l->span_id);
        js_map(w, "attributes", l->attributes, l->nattributes);
        js_str(w, "tracestate", l->tracestate);
        dds__jsonw_key(w, "flags");
        dds__jsonw_uint(w, l->flags);
        dds__jsonw_object_end(w);
    }
    dds__jsonw_array_end(w);
    dds__jsonw_object_end(w);
}

static void js_tracer_payload(dds__jsonw *w, const dds__tracer_payload *tp) {
    dds__jsonw_object_begin(w);
    js_str(w, "containerID", tp->container_id);
    js_str(w, "languageName", tp->language_name);
    js_str(w, "languageVersion", tp->language_version);
    js_str(w, "tracerVersion", tp->tracer_version);
    js_str(w, "runtimeID", tp->runtime_id);
    dds__jsonw_key(w, "chunks");
    dds__jsonw_array_begin(w);
    for (uint32_t i = 0; i < tp->nchunks; i++) {
        const dds__trace_chunk *c = &tp->chunks[i];
        dds__jsonw_object_begin(w);
        dds__jsonw_key(w, "priority");
        dds__jsonw_int(w, wire_priority(c->priority));
        js_str(w, "origin", c->origin);
        dds__jsonw_key(w, "spans");
        dds__jsonw_array_begin(w);
        for (uint32_t j = 0; j < c->nspans; j++) js_span(w, &c->spans[j]);
        dds__jsonw_array_end(w);
        js_map(w, "tags", c->tags, c->ntags);
        dds__jsonw_key(w, "droppedTrace");
        dds__jsonw_bool(w, c->dropped_trace);
        dds__jsonw_object_end(w);
    }
    dds__jsonw_array_end(w);
    js_map(w, "tags", tp->tags, tp->ntags);
    js_str(w, "env", tp->env);
    js_str(w, "hostname", tp->hostname);
    js_str(w, "appVersion", tp->app_version);
    dds__jsonw_object_end(w);
}

/* ---- encoder ------------------------------------------------------------------------------- */

/* Only names a header can carry safely (letters, digits, ". _ + -"): the value comes from a
 * request header and ends up in ours. */
static void note_language(dds__trace_encoder *e, dds__slice lang) {
    if (lang.len == 0 || lang.len > MAX_LANG_LEN) return;
    for (size_t i = 0; i < lang.len; i++) {
        char c = lang.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '+' || c == '-';
        if (!ok) return;
    }
    for (uint32_t i = 0; i < e->nlangs; i++)
        if (strlen(e->langs[i]) == lang.len && memcmp(e->langs[i], lang.ptr, lang.len) == 0) return;
    if (e->nlangs == MAX_LANGS) return;
    memcpy(e->langs[e->nlangs], lang.ptr, lang.len);
    e->langs[e->nlangs][lang.len] = '\0';
    e->nlangs++;
}

bool dds__trace_encoder_add(dds__trace_encoder *e, const dds__tracer_payload *tp) {
    uint64_t spans = 0;
    for (uint32_t i = 0; i < tp->nchunks; i++) spans += tp->chunks[i].nspans;
    if (tp->nchunks == 0) return dds__trace_encoder_pending_bytes(e) >= e->flush_bytes;

    size_t before = e->body.len;
    bool ok;
    if (e->dry_run) {
        if (e->ntp > 0) dds__buf_putc(&e->body, ',');
        dds__jsonw w;
        dds__jsonw_init(&w, &e->body);
        js_tracer_payload(&w, tp);
        ok = dds__jsonw_ok(&w);
    } else {
        if (e->ntp == 0) {
            e->body.len = 0;
            pb_agent_header(e, &e->body);
        }
        pb_tracer_payload(&e->body, &e->sizes, tp);
        ok = !e->body.oom;
    }
    if (!ok || spans > UINT32_MAX - e->nspans) {
        /* Back to the state before this payload: what is pending stays valid. The buffer kept its
         * bytes when the allocation failed, so clearing the flag is safe. */
        e->body.len = e->ntp ? before : 0;
        e->body.oom = false;
        e->spans_dropped += spans;
        return dds__trace_encoder_pending_bytes(e) >= e->flush_bytes;
    }
    e->ntp++;
    e->nspans += (uint32_t)spans;
    note_language(e, tp->language_name);
    if (!e->dry_run) z_feed(e, Z_NO_FLUSH);
    return dds__trace_encoder_pending_bytes(e) >= e->flush_bytes;
}

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* "X-Datadog-Reported-Languages: go|python\n": Go joins info.Languages() (sorted) with '|'. */
static char *languages_header(dds__trace_encoder *e) {
    if (e->nlangs == 0) return NULL;
    qsort(e->langs, e->nlangs, sizeof(e->langs[0]), cmp_str);
    dds__buf h;
    dds__buf_init(&h);
    dds__buf_puts(&h, "X-Datadog-Reported-Languages: ");
    for (uint32_t i = 0; i < e->nlangs; i++) {
        if (i) dds__buf_putc(&h, '|');
        dds__buf_puts(&h, e->langs[i]);
    }
    dds__buf_puts(&h, "\n");
    dds__buf_putc(&h, '\0');
    if (h.oom) {
        dds__buf_free(&h);
        return NULL;
    }
    size_t len;
    return (char *)dds__buf_steal(&h, &len);
}

/* {"dry_run":true,"endpoint":...,"payload":{AgentPayload fields,"tracerPayloads":[...]}} */
static dds__payload *take_dry_run(dds__trace_encoder *e) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__payload_dry_run_begin(&w, PATH_TRACES);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "hostName");
    dds__jsonw_cstr(&w, e->hostname);
    dds__jsonw_key(&w, "env");
    dds__jsonw_cstr(&w, e->env);
    dds__jsonw_key(&w, "agentVersion");
    dds__jsonw_cstr(&w, e->agent_version);
    dds__jsonw_key(&w, "targetTPS");
    dds__jsonw_double(&w, TARGET_TPS);
    dds__jsonw_key(&w, "errorTPS");
    dds__jsonw_double(&w, ERROR_TPS);
    dds__jsonw_key(&w, "rareSamplerEnabled");
    dds__jsonw_bool(&w, false);
    dds__jsonw_key(&w, "tracerPayloads");
    dds__jsonw_array_begin(&w);
    /* The pending body is the array's items already joined by ',' (written by this file with
     * this writer), handed over as one raw run. */
    dds__jsonw_raw(&w, (const char *)e->body.data, e->body.len);
    dds__jsonw_array_end(&w);
    dds__jsonw_object_end(&w);
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) {
        dds__buf_free(&b);
        return NULL;
    }
    size_t len;
    uint8_t *body = dds__buf_steal(&b, &len);
    return dds__payload_new(DDS__PK_TRACES, strdup(e->traces_url), body, len, CT_JSON, NULL, e->nspans);
}

static dds__payload *take_protobuf(dds__trace_encoder *e) {
    z_feed(e, Z_FINISH);
    if (e->zs_live) deflateEnd(&e->zs);
    e->zs_live = false;
    bool failed = e->z_failed;
    e->z_failed = false;
    e->raw_len = 0;
    if (failed) {
        dds__buf_free(&e->zout);
        return NULL;
    }
    size_t zlen;
    uint8_t *z = dds__buf_steal(&e->zout, &zlen);
    uint8_t *fit = realloc(z, zlen ? zlen : 1); /* the retry queue counts body bytes: hold no more */
    if (fit) z = fit;
    dds__payload *p = dds__payload_new(DDS__PK_TRACES, strdup(e->traces_url), z, zlen, CT_PROTOBUF, "gzip",
                                       e->nspans);
    if (p) p->extra_headers = languages_header(e);  /* the header is optional: NULL just omits it */
    return p;
}

dds__payload *dds__trace_encoder_take(dds__trace_encoder *e) {
    if (e->ntp == 0) return NULL;
    dds__payload *p = e->dry_run ? take_dry_run(e) : take_protobuf(e);
    /* Whatever happened, the pending data is gone: keeping it after a failure would only grow it
     * and fail again. */
    if (!p) e->spans_dropped += e->nspans;
    dds__buf_reset(&e->body);
    e->ntp = 0;
    e->nspans = 0;
    e->nlangs = 0;
    return p;
}

/* ---- stats --------------------------------------------------------------------------------- */

static void mp_str(dds__buf *b, const char *s) {
    size_t n = strlen(s);
    if (n < 32) {
        dds__buf_putc(b, (uint8_t)(0xa0 | n));
    } else if (n <= 0xff) {
        dds__buf_putc(b, 0xd9);
        dds__buf_putc(b, (uint8_t)n);
    } else if (n <= 0xffff) {
        dds__buf_putc(b, 0xda);
        dds__buf_putc(b, (uint8_t)(n >> 8));
        dds__buf_putc(b, (uint8_t)n);
    } else {
        uint8_t h[5] = {0xdb, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, sizeof(h));
    }
    dds__buf_append(b, s, n);
}

/* Our own msgpack (the concentrator's maps) as JSON for the dry-run line: maps with string keys,
 * arrays, strings, integers, booleans; bin (the sketches) as base64, like the fake intake shows
 * them. Depth is bounded by what the concentrator writes; deeper input ends as null. */
static void js_base64(dds__jsonw *w, const uint8_t *p, size_t n) {
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    dds__buf t;
    dds__buf_init(&t);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {A[v >> 18 & 63], A[v >> 12 & 63], i + 1 < n ? A[v >> 6 & 63] : '=', i + 2 < n ? A[v & 63] : '='};
        dds__buf_append(&t, q, 4);
    }
    if (t.oom) w->b->oom = true;
    else dds__jsonw_string(w, (const char *)t.data, t.len);
    dds__buf_free(&t);
}

static void js_msgpack(dds__jsonw *w, dds__mp_reader *r, int depth) {
    dds__mp_type t = dds__mp_peek(r);
    if (depth > 8) t = DDS__MP_NONE;
    switch (t) {
    case DDS__MP_MAP: {
        uint32_t n = dds__mp_read_map_any(r);
        dds__jsonw_object_begin(w);
        for (uint32_t i = 0; i < n && dds__mp_ok(r); i++) {
            dds__slice k = dds__mp_read_str_any(r);
            dds__jsonw_keyn(w, k.ptr ? k.ptr : "", k.len);
            js_msgpack(w, r, depth + 1);
        }
        dds__jsonw_object_end(w);
        return;
    }
    case DDS__MP_ARRAY: {
        uint32_t n = dds__mp_read_array_any(r);
        dds__jsonw_array_begin(w);
        for (uint32_t i = 0; i < n && dds__mp_ok(r); i++) js_msgpack(w, r, depth + 1);
        dds__jsonw_array_end(w);
        return;
    }
    case DDS__MP_STR: {
        dds__slice v = dds__mp_read_str_any(r);
        dds__jsonw_string(w, v.ptr ? v.ptr : "", v.len);
        return;
    }
    case DDS__MP_BIN: {
        dds__slice v = dds__mp_read_bytes_any(r);
        js_base64(w, (const uint8_t *)v.ptr, v.len);
        return;
    }
    case DDS__MP_UINT: dds__jsonw_uint(w, dds__mp_read_u64_any(r)); return;
    case DDS__MP_INT: dds__jsonw_int(w, dds__mp_read_i64_any(r)); return;
    case DDS__MP_BOOL: dds__jsonw_bool(w, dds__mp_read_bool(r)); return;
    default:
        dds__mp_skip(r);
        dds__jsonw_null(w);
        return;
    }
}

/* items: n ClientStatsPayload maps back to back. The tracer's (client computed) are shown by
 * size only, ours in full. */
static dds__payload *stats_dry_run(const uint8_t *items, size_t len, uint32_t n, bool client_computed,
                                   const char *stats_url, const char *hostname, const char *env,
                                   const char *agent_version) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__payload_dry_run_begin(&w, PATH_STATS);
    dds__jsonw_object_begin(&w);
    dds__jsonw_key(&w, "AgentHostname");
    dds__jsonw_cstr(&w, hostname);
    dds__jsonw_key(&w, "AgentEnv");
    dds__jsonw_cstr(&w, env);
    dds__jsonw_key(&w, "AgentVersion");
    dds__jsonw_cstr(&w, agent_version);
    dds__jsonw_key(&w, "ClientComputed");
    dds__jsonw_bool(&w, client_computed);
    dds__jsonw_key(&w, "SplitPayload");
    dds__jsonw_bool(&w, false);
    if (client_computed) {
        dds__jsonw_key(&w, "stats_msgpack_bytes");
        dds__jsonw_uint(&w, len);
    } else {
        dds__jsonw_key(&w, "Stats");
        dds__jsonw_array_begin(&w);
        dds__mp_reader r;
        dds__mp_reader_init(&r, items, len, NULL);
        for (uint32_t i = 0; i < n && dds__mp_ok(&r); i++) js_msgpack(&w, &r, 0);
        dds__jsonw_array_end(&w);
    }
    dds__jsonw_object_end(&w);
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) {
        dds__buf_free(&b);
        return NULL;
    }
    size_t out_len;
    uint8_t *out = dds__buf_steal(&b, &out_len);
    return dds__payload_new(DDS__PK_STATS, strdup(stats_url), out, out_len, CT_JSON, NULL, 1);
}

/* Go pb.StatsPayload as msgp encodes it: a map keyed by the Go field names, in field order, with
 * the n ClientStatsPayload maps of items as Stats. */
static dds__payload *stats_wrap(const uint8_t *items, size_t len, uint32_t n, bool client_computed,
                                const char *stats_url, const char *hostname, const char *env,
                                const char *agent_version, bool dry_run) {
    hostname = hostname ? hostname : "";
    env = env ? env : "";
    agent_version = agent_version ? agent_version : "";
    stats_url = stats_url ? stats_url : "";
    if (dry_run) return stats_dry_run(items, len, n, client_computed, stats_url, hostname, env, agent_version);
    dds__buf b;
    dds__buf_init(&b);
    dds__buf_putc(&b, 0x86);
    mp_str(&b, "AgentHostname");
    mp_str(&b, hostname);
    mp_str(&b, "AgentEnv");
    mp_str(&b, env);
    mp_str(&b, "Stats");
    if (n < 16) {
        dds__buf_putc(&b, (uint8_t)(0x90 | n));
    } else {
        uint8_t h[5] = {0xdd, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(&b, h, sizeof(h));
    }
    dds__buf_append(&b, items, len);
    mp_str(&b, "AgentVersion");
    mp_str(&b, agent_version);
    mp_str(&b, "ClientComputed");
    dds__buf_putc(&b, client_computed ? 0xc3 : 0xc2);
    mp_str(&b, "SplitPayload");
    dds__buf_putc(&b, 0xc2);
    uint8_t *z = NULL;
    size_t zlen = 0;
    bool ok = !b.oom && dds__gzip_compress(b.data, b.len, GZIP_LEVEL, &z, &zlen) == 0;
    dds__buf_free(&b);
    return ok ? dds__payload_new(DDS__PK_STATS, strdup(stats_url), z, zlen, CT_MSGPACK, "gzip", n) : NULL;
}

dds__payload *dds__trace_stats_payload(const uint8_t *body, size_t len, const char *stats_url, const char *hostname,
                                       const char *env, const char *agent_version, bool dry_run, char *err,
                                       size_t errcap) {
    const char *why = NULL;
    dds__mp_reader r;
    dds__mp_reader_init(&r, body, body ? len : 0, NULL);
    if (dds__mp_peek(&r) != DDS__MP_MAP) {
        why = len ? "is not a msgpack map" : "is empty";
    } else {
        dds__mp_skip(&r);  /* iterative and depth-bounded: checks the map is whole */
        if (!dds__mp_ok(&r)) why = r.err;
        /* The body goes inside our array verbatim: anything after the map would corrupt it. */
        else if (dds__mp_left(&r) > 0) why = "has bytes after the msgpack map";
    }
    if (why) {
        if (err && errcap) snprintf(err, errcap, "stats body %s", why);
        return NULL;
    }
    dds__payload *p = stats_wrap(body, len, 1, true, stats_url, hostname, env, agent_version, dry_run);
    if (!p && err && errcap) snprintf(err, errcap, "out of memory");
    return p;
}

dds__payload *dds__trace_stats_payload_computed(const uint8_t *items, size_t len, uint32_t n, const char *stats_url,
                                                const char *hostname, const char *env, const char *agent_version,
                                                bool dry_run) {
    if (n == 0) return NULL;
    return stats_wrap(items, len, n, false, stats_url, hostname, env, agent_version, dry_run);
}
