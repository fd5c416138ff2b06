/* concentrator.c - agent-side trace stats. In: processed tracer payloads (the spans as they are
 * forwarded: normalized, top-level marked, obfuscated). Out: ClientStatsPayload msgpack maps, per
 * tracer metadata, of the 10 s buckets that are done. Every aggregation key is held as its own
 * bytes and compared byte for byte (the hash only picks the slot). Memory is bounded by the key
 * and group limits of concentrator.h; a span that finds no room is counted, never a crash. */
#include "trace/concentrator.h"

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/slice.h"
#include "trace/ddsketch.h"
#include "trace/peer_tags.h"

#define OVERFLOW_VALUE "tracer_blocked_value"
/* Overflow keys (one per bucket and tracer metadata) may go this far past max_keys. */
#define OVERFLOW_RESERVE 64u
/* How many bucket widths a bucket stays open after it starts (libdd-trace-stats buffer_len):
 * spans arrive after they end, and tracers flush every few seconds. */
#define BUFFER_LEN 2
enum { TRILEAN_NOT_SET = 0, TRILEAN_TRUE = 1, TRILEAN_FALSE = 2 };
#define GRPC_NONE 0xffffu

typedef struct group {
    uint8_t *key;          /* lang, tracer version, service, env, version, container id (see put_str) */
    uint32_t key_len;
    uint32_t live;         /* entries of this group */
} group;

typedef struct entry {
    uint64_t hash;
    int64_t bucket;        /* start, ns */
    uint32_t group;
    uint8_t *key;          /* the aggregation key (see build_key); owned */
    uint32_t key_len;
    uint64_t hits, errors, duration, top_level_hits;
    dds__ddsketch ok, err;
} entry;

/* Loop thread only. */
struct dds__concentrator {
    dds__concentrator_counters *counters;
    char *default_env;
    uint32_t max_keys;
    int64_t oldest_ns;      /* spans that end before it are put in its bucket */
    group groups[DDS__STATS_MAX_GROUPS];
    entry **entries;        /* live entries, in creation order */
    uint32_t nentries, entries_cap;
    uint32_t *table;        /* open addressing: index into entries + 1, 0 = empty */
    uint32_t mask;
    size_t key_bytes;
    size_t sketch_bytes;    /* bin capacity of every live sketch */
    dds__buf key;           /* scratch: the key being looked up */
    dds__buf overflow_key;  /* the overflow key's bytes, built once */
    dds__buf sketch;        /* scratch: one encoded sketch */
};

/* ---- key bytes -------------------------------------------------------------------------------- */

static void put_u32(dds__buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    dds__buf_append(b, x, 4);
}
/* Overwrite the u32 put at `at` (once its value is known). */
static void patch_u32(dds__buf *b, size_t at, uint32_t v) {
    if (b->oom) return;
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    memcpy(b->data + at, x, 4);
}
static void put_str(dds__buf *b, dds__slice s) {
    put_u32(b, (uint32_t)s.len);
    dds__buf_append(b, s.ptr, s.len);
}

typedef struct reader { const uint8_t *p; } reader;
static uint32_t get_u32(reader *r) {
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}
static dds__slice get_str(reader *r) {
    uint32_t n = get_u32(r);
    dds__slice s = {(const char *)r->p, n};
    r->p += n;
    return s;
}

/* Aggregation key layout: resource, service, name, type, span.kind, http.method, http endpoint,
 * _dd.svc_src (strings), HTTP status (u32), gRPC status (u32, GRPC_NONE when absent), synthetics
 * (u32), is_trace_root (u32 trilean), peer tag count, then each peer tag as key and value. */
typedef struct agg_key {
    dds__slice resource, service, name, type, span_kind, http_method, http_endpoint, svc_src;
    uint32_t http_status, grpc_status, synthetics, trace_root, npeer;
    reader peers;
} agg_key;

static agg_key read_key(const uint8_t *p) {
    agg_key k;
    reader r = {p};
    k.resource = get_str(&r);
    k.service = get_str(&r);
    k.name = get_str(&r);
    k.type = get_str(&r);
    k.span_kind = get_str(&r);
    k.http_method = get_str(&r);
    k.http_endpoint = get_str(&r);
    k.svc_src = get_str(&r);
    k.http_status = get_u32(&r);
    k.grpc_status = get_u32(&r);
    k.synthetics = get_u32(&r);
    k.trace_root = get_u32(&r);
    k.npeer = get_u32(&r);
    k.peers = r;
    return k;
}

static void build_overflow_key(dds__buf *b) {
    for (int i = 0; i < 8; i++) put_str(b, DDS__SLICE_LIT(OVERFLOW_VALUE));
    put_u32(b, 0);
    put_u32(b, GRPC_NONE);
    put_u32(b, 0);
    put_u32(b, TRILEAN_NOT_SET);
    put_u32(b, 1);
    put_str(b, DDS__SLICE_LIT(OVERFLOW_VALUE));
    put_str(b, DDS__SLICE_LIT(""));
}

/* ---- span fields -------------------------------------------------------------------------------- */

static dds__slice meta(const dds__span *s, const char *key) {
    const dds__slice *v = dds__span_meta_get(s, key);
    return v ? *v : (dds__slice){"", 0};
}

static bool metric_is(const dds__span *s, const char *key, double want) {
    const double *v = dds__span_metric_get(s, key);
    return v && *v == want;
}

static bool ieq(dds__slice s, const char *lit) {
    size_t n = strlen(lit);
    if (s.len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return false;
    }
    return true;
}

static bool is_top_level(const dds__span *s) { return metric_is(s, "_top_level", 1) || metric_is(s, "_dd.top_level", 1); }

/* libdd-trace-stats is_span_eligible with the kinds the Rust agent lists in /info. */
static bool eligible(const dds__span *s) {
    const double *partial = dds__span_metric_get(s, "_dd.partial_version");
    if (partial && *partial >= 0) return false;
    if (is_top_level(s) || metric_is(s, "_dd.measured", 1)) return true;
    dds__slice kind = meta(s, "span.kind");
    return ieq(kind, "server") || ieq(kind, "client") || ieq(kind, "producer") || ieq(kind, "consumer");
}

/* Rust str::parse::<u64>: an optional '+', then decimal digits only, no overflow past max. */
static bool parse_uint(dds__slice v, uint64_t max, uint64_t *out) {
    size_t i = 0;
    if (v.len && v.ptr[0] == '+') i = 1;
    if (i == v.len) return false;
    uint64_t n = 0;
    for (; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9') return false;
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
        if (n > max) return false;
    }
    *out = n;
    return true;
}

static uint32_t http_status(const dds__span *s) {
    const double *m = dds__span_metric_get(s, "http.status_code");
    if (m) {  /* Rust `as u32`: saturating, NaN is 0 */
        double d = *m;
        if (!(d > 0)) return 0;
        return d >= 4294967295.0 ? UINT32_MAX : (uint32_t)d;
    }
    uint64_t v;
    return parse_uint(meta(s, "http.status_code"), UINT32_MAX, &v) ? (uint32_t)v : 0;
}

static const char *const GRPC_KEYS[] = {"rpc.grpc.status_code", "grpc.code", "rpc.grpc.status.code", "grpc.status.code"};

static const struct { const char *name; uint32_t code; } GRPC_NAMES[] = {
    {"OK", 0}, {"CANCELLED", 1}, {"CANCELED", 1}, {"UNKNOWN", 2}, {"INVALID_ARGUMENT", 3}, {"INVALIDARGUMENT", 3},
    {"DEADLINE_EXCEEDED", 4}, {"DEADLINEEXCEEDED", 4}, {"NOT_FOUND", 5}, {"NOTFOUND", 5}, {"ALREADY_EXISTS", 6},
    {"ALREADYEXISTS", 6}, {"PERMISSION_DENIED", 7}, {"PERMISSIONDENIED", 7}, {"UNAUTHENTICATED", 16},
    {"RESOURCE_EXHAUSTED", 8}, {"RESOURCEEXHAUSTED", 8}, {"FAILED_PRECONDITION", 9}, {"FAILEDPRECONDITION", 9},
    {"ABORTED", 10}, {"OUT_OF_RANGE", 11}, {"OUTOFRANGE", 11}, {"UNIMPLEMENTED", 12}, {"INTERNAL", 13},
    {"UNAVAILABLE", 14}, {"DATA_LOSS", 15}, {"DATALOSS", 15},
};

/* A number 0-255, or a status name (upper or lower case, "StatusCode." prefix allowed). */
static bool grpc_from_text(dds__slice v, uint32_t *code) {
    uint64_t n;
    if (parse_uint(v, 255, &n)) {
        *code = (uint32_t)n;
        return true;
    }
    if (dds__slice_has_prefix(v, "StatusCode.", 11)) v.ptr += 11, v.len -= 11;
    char up[32];
    if (v.len > sizeof(up)) return false;  /* longer than every name */
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if ((unsigned char)c >= 0x80) return false;
        up[i] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    for (size_t k = 0; k < sizeof(GRPC_NAMES) / sizeof(GRPC_NAMES[0]); k++) {
        if (strlen(GRPC_NAMES[k].name) == v.len && memcmp(GRPC_NAMES[k].name, up, v.len) == 0) {
            *code = GRPC_NAMES[k].code;
            return true;
        }
    }
    return false;
}

/* The first of the four keys that holds a status in meta; then the same keys in metrics (whole
 * numbers 0-255). */
static uint32_t grpc_status(const dds__span *s) {
    uint32_t code;
    for (size_t k = 0; k < 4; k++) {
        const dds__slice *v = dds__span_meta_get(s, GRPC_KEYS[k]);
        if (v && grpc_from_text(*v, &code)) return code;
    }
    for (size_t k = 0; k < 4; k++) {
        const double *m = dds__span_metric_get(s, GRPC_KEYS[k]);
        if (m && *m >= 0 && *m <= 255 && *m == (double)(uint32_t)*m) return (uint32_t)*m;
    }
    return GRPC_NONE;
}

static void build_key(dds__buf *b, const dds__span *s) {
    dds__slice kind = meta(s, "span.kind");
    const dds__slice *endpoint = dds__span_meta_get(s, "http.endpoint");
    if (!endpoint) endpoint = dds__span_meta_get(s, "http.route");
    dds__slice origin = meta(s, "_dd.origin");
    put_str(b, s->resource);
    put_str(b, s->service);
    put_str(b, s->name);
    put_str(b, s->type);
    put_str(b, kind);
    put_str(b, meta(s, "http.method"));
    put_str(b, endpoint ? *endpoint : (dds__slice){"", 0});
    put_str(b, meta(s, "_dd.svc_src"));
    put_u32(b, http_status(s));
    put_u32(b, grpc_status(s));
    put_u32(b, dds__slice_has_prefix(origin, "synthetics", 10));
    put_u32(b, s->parent_id == 0 ? TRILEAN_TRUE : TRILEAN_FALSE);
    size_t count_at = b->len;
    put_u32(b, 0);
    uint32_t n = 0;
    if (ieq(kind, "client") || ieq(kind, "producer") || ieq(kind, "consumer")) {
        for (size_t k = 0; k < dds__peer_tag_nkeys; k++) {
            const dds__slice *v = dds__span_meta_get(s, dds__peer_tag_keys[k]);
            if (!v) continue;
            put_str(b, dds__slice_cstr(dds__peer_tag_keys[k]));
            size_t len_at = b->len;
            put_u32(b, 0);
            dds__peer_tag_quantize(*v, b);
            patch_u32(b, len_at, (uint32_t)(b->len - len_at - 4));
            n++;
        }
    } else {
        /* Other spans carry only the base service, when a service override set it. */
        const dds__slice *base = dds__span_meta_get(s, "_dd.base_service");
        if (base) {
            put_str(b, DDS__SLICE_LIT("_dd.base_service"));
            put_str(b, *base);
            n = 1;
        }
    }
    patch_u32(b, count_at, n);
}

/* ---- table ------------------------------------------------------------------------------------ */

static uint64_t slot_hash(const uint8_t *key, size_t len, int64_t bucket, uint32_t gi) {
    return dds__hash64(key, len, (uint64_t)bucket * DDS__HASH_K1 ^ ((uint64_t)gi << 32));
}

static entry *find(dds__concentrator *c, uint64_t h, int64_t bucket, uint32_t g, const uint8_t *key, size_t len,
                   uint32_t *slot) {
    uint32_t i = (uint32_t)h & c->mask;
    for (; c->table[i]; i = (i + 1) & c->mask) {
        entry *e = c->entries[c->table[i] - 1];
        if (e->hash == h && e->bucket == bucket && e->group == g && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
    *slot = i;
    return NULL;
}

static entry *create(dds__concentrator *c, uint64_t h, int64_t bucket, uint32_t g, const uint8_t *key, size_t len,
                     uint32_t slot) {
    entry *e = calloc(1, sizeof(*e));
    uint8_t *k = malloc(len ? len : 1);
    if (!e || !k) {
        free(e);
        free(k);
        return NULL;
    }
    memcpy(k, key, len);
    e->hash = h;
    e->bucket = bucket;
    e->group = g;
    e->key = k;
    e->key_len = (uint32_t)len;
    dds__ddsketch_init(&e->ok);
    dds__ddsketch_init(&e->err);
    c->entries[c->nentries++] = e;
    c->table[slot] = c->nentries;
    c->key_bytes += len;
    c->groups[g].live++;
    return e;
}

static void entry_free(dds__concentrator *c, entry *e) {
    c->key_bytes -= e->key_len;
    c->sketch_bytes -= ((size_t)e->ok.cap + e->err.cap) * sizeof(uint32_t);
    group *g = &c->groups[e->group];
    if (--g->live == 0) {
        free(g->key);
        g->key = NULL;
        g->key_len = 0;
    }
    dds__ddsketch_free(&e->ok);
    dds__ddsketch_free(&e->err);
    free(e->key);
    free(e);
}

static void rebuild_table(dds__concentrator *c) {
    memset(c->table, 0, ((size_t)c->mask + 1) * sizeof(*c->table));
    for (uint32_t n = 0; n < c->nentries; n++) {
        uint32_t i = (uint32_t)c->entries[n]->hash & c->mask;
        while (c->table[i]) i = (i + 1) & c->mask;
        c->table[i] = n + 1;
    }
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

static int64_t align(int64_t t) { return t - t % DDS__STATS_BUCKET_NS; }

dds__concentrator *dds__concentrator_new(const dds__concentrator_config *cfg, dds__concentrator_counters *counters) {
    dds__concentrator *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->counters = counters;
    c->max_keys = cfg->max_keys ? cfg->max_keys : DDS__STATS_MAX_KEYS;
    c->oldest_ns = align(cfg->now_ns > 0 ? cfg->now_ns : 0);
    c->default_env = strdup(cfg->default_env && cfg->default_env[0] ? cfg->default_env : "none");
    c->entries_cap = c->max_keys + OVERFLOW_RESERVE;
    uint32_t cap = 16;
    while (cap < c->entries_cap * 2) cap *= 2;
    c->mask = cap - 1;
    c->entries = calloc(c->entries_cap, sizeof(*c->entries));
    c->table = calloc(cap, sizeof(*c->table));
    dds__buf_init(&c->key);
    dds__buf_init(&c->overflow_key);
    dds__buf_init(&c->sketch);
    build_overflow_key(&c->overflow_key);
    if (!c->default_env || !c->entries || !c->table || c->overflow_key.oom) {
        dds__concentrator_free(c);
        return NULL;
    }
    return c;
}

void dds__concentrator_free(dds__concentrator *c) {
    if (!c) return;
    /* Whatever a last flush could not take (out of memory) is lost here: counted. */
    uint64_t lost = 0;
    for (uint32_t i = 0; i < c->nentries; i++) {
        lost += c->entries[i]->hits;
        entry_free(c, c->entries[i]);
    }
    if (c->counters) dds__counter_add(&c->counters->spans_dropped, lost);
    for (uint32_t g = 0; g < DDS__STATS_MAX_GROUPS; g++) free(c->groups[g].key);
    free(c->entries);
    free(c->table);
    free(c->default_env);
    dds__buf_free(&c->key);
    dds__buf_free(&c->overflow_key);
    dds__buf_free(&c->sketch);
    free(c);
}

uint32_t dds__concentrator_live_keys(const dds__concentrator *c) { return c->nentries; }
size_t dds__concentrator_sketch_bytes(const dds__concentrator *c) { return c->sketch_bytes; }

/* ---- add -------------------------------------------------------------------------------------- */

/* The Rust agent's metadata service: _dd.base_service of the root span of the first chunk whose
 * root has a non-empty one. Root: the last span with parent 0, else the first whose parent is not
 * in the chunk (as the trace processing picks it). */
static dds__slice payload_service(const dds__tracer_payload *tp) {
    for (uint32_t i = 0; i < tp->nchunks; i++) {
        const dds__trace_chunk *ch = &tp->chunks[i];
        const dds__span *root = NULL;
        for (uint32_t j = ch->nspans; j-- > 0 && !root;)
            if (ch->spans[j].parent_id == 0) root = &ch->spans[j];
        /* Without a parent-0 span, the search is quadratic in the chunk: bounded to chunks a
         * tracer flushes in parts, where the first span is the usual answer. */
        for (uint32_t j = 0; !root && j < ch->nspans && j < 64; j++) {
            bool parent_in = false;
            for (uint32_t k = 0; k < ch->nspans && !parent_in; k++) parent_in = ch->spans[k].span_id == ch->spans[j].parent_id;
            if (!parent_in) root = &ch->spans[j];
        }
        if (!root) continue;
        const dds__slice *base = dds__span_meta_get(root, "_dd.base_service");
        if (base && base->len) return *base;
    }
    return (dds__slice){"", 0};
}

/* The group of this payload's metadata, created on first use; -1 when the group bound is reached
 * or out of memory. */
static int find_group(dds__concentrator *c, const uint8_t *key, size_t len) {
    int free_slot = -1;
    for (int g = 0; g < DDS__STATS_MAX_GROUPS; g++) {
        group *gr = &c->groups[g];
        if (!gr->key) {
            if (free_slot < 0) free_slot = g;
            continue;
        }
        if (gr->key_len == len && memcmp(gr->key, key, len) == 0) return g;
    }
    if (free_slot < 0) return -1;
    uint8_t *k = malloc(len ? len : 1);
    if (!k) return -1;
    memcpy(k, key, len);
    c->groups[free_slot] = (group){.key = k, .key_len = (uint32_t)len, .live = 0};
    return free_slot;
}

/* One eligible span into (bucket, group, its key), or the overflow key past the bounds. Returns
 * false when the span could not be counted. */
static bool add_span(dds__concentrator *c, int g, const dds__span *s) {
    int64_t start = s->start > 0 ? s->start : 0, dur = s->duration > 0 ? s->duration : 0;
    int64_t end = start > INT64_MAX - dur ? INT64_MAX : start + dur;
    int64_t bucket = align(end);
    if (bucket < c->oldest_ns) bucket = c->oldest_ns;

    dds__buf_reset(&c->key);
    build_key(&c->key, s);
    if (c->key.oom) return false;
    uint32_t slot;
    uint64_t h = slot_hash(c->key.data, c->key.len, bucket, (uint32_t)g);
    entry *e = find(c, h, bucket, (uint32_t)g, c->key.data, c->key.len, &slot);
    if (!e && c->nentries < c->max_keys && c->key_bytes + c->key.len <= DDS__STATS_MAX_KEY_BYTES)
        e = create(c, h, bucket, (uint32_t)g, c->key.data, c->key.len, slot);
    if (!e) {
        const dds__buf *o = &c->overflow_key;
        h = slot_hash(o->data, o->len, bucket, (uint32_t)g);
        e = find(c, h, bucket, (uint32_t)g, o->data, o->len, &slot);
        if (!e && c->nentries < c->entries_cap) e = create(c, h, bucket, (uint32_t)g, o->data, o->len, slot);
        if (!e) return false;
        dds__counter_add(&c->counters->spans_overflow, 1);
    }
    /* The sketch first: a value it cannot take leaves the counts as they were, so hits and the
     * sketches' counts always agree. */
    dds__ddsketch *sk = s->error ? &e->err : &e->ok;
    uint32_t cap_before = sk->cap;
    uint32_t limit = c->sketch_bytes < DDS__STATS_MAX_SKETCH_BYTES ? DDS__DDSKETCH_MAX_BINS : sk->cap;
    int rc = dds__ddsketch_add_bounded(sk, (double)dur, limit);
    c->sketch_bytes += ((size_t)sk->cap - cap_before) * sizeof(uint32_t);
    if (rc != 0) return false;
    e->hits++;
    e->duration += (uint64_t)dur;
    if (s->error) e->errors++;
    if (is_top_level(s)) e->top_level_hits++;
    return true;
}

void dds__concentrator_add(dds__concentrator *c, const dds__tracer_payload *tp) {
    int g = -2;  /* not looked up yet: payloads without eligible spans make no group */
    uint64_t added = 0, dropped = 0;
    for (uint32_t i = 0; i < tp->nchunks; i++) {
        const dds__trace_chunk *ch = &tp->chunks[i];
        for (uint32_t j = 0; j < ch->nspans; j++) {
            const dds__span *s = &ch->spans[j];
            if (!eligible(s)) continue;
            if (g == -2) {
                dds__buf_reset(&c->key);
                put_str(&c->key, tp->language_name);
                put_str(&c->key, tp->tracer_version);
                put_str(&c->key, payload_service(tp));
                put_str(&c->key, tp->env.len ? tp->env : dds__slice_cstr(c->default_env));
                put_str(&c->key, tp->app_version);
                put_str(&c->key, tp->container_id);
                g = c->key.oom ? -1 : find_group(c, c->key.data, c->key.len);
            }
            if (g >= 0 && add_span(c, g, s)) added++;
            else dropped++;
        }
    }
    /* A group made for spans that all failed would never be flushed, so never freed. */
    if (g >= 0 && c->groups[g].live == 0) {
        free(c->groups[g].key);
        c->groups[g].key = NULL;
    }
    dds__counter_add(&c->counters->spans, added);
    dds__counter_add(&c->counters->spans_dropped, dropped);
}

/* ---- flush ------------------------------------------------------------------------------------ */

static void mp_head(dds__buf *b, uint8_t fix, uint8_t fix_max, uint8_t m16, uint8_t m32, uint32_t n) {
    if (n <= fix_max) {
        dds__buf_putc(b, (uint8_t)(fix | n));
    } else if (n <= 0xffff) {
        uint8_t h[3] = {m16, (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, 3);
    } else {
        uint8_t h[5] = {m32, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, 5);
    }
}
static void mp_map(dds__buf *b, uint32_t n) { mp_head(b, 0x80, 15, 0xde, 0xdf, n); }
static void mp_array(dds__buf *b, uint32_t n) { mp_head(b, 0x90, 15, 0xdc, 0xdd, n); }
static void mp_str_head(dds__buf *b, size_t n) {
    if (n < 32) {
        dds__buf_putc(b, (uint8_t)(0xa0 | n));
    } else if (n <= 0xff) {
        uint8_t h[2] = {0xd9, (uint8_t)n};
        dds__buf_append(b, h, 2);
    } else if (n <= 0xffff) {
        uint8_t h[3] = {0xda, (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, 3);
    } else {
        uint8_t h[5] = {0xdb, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, 5);
    }
}
static void mp_str(dds__buf *b, dds__slice s) {
    mp_str_head(b, s.len);
    dds__buf_append(b, s.ptr, s.len);
}
static void mp_key(dds__buf *b, const char *k) { mp_str(b, dds__slice_cstr(k)); }
static void mp_uint(dds__buf *b, uint64_t v) {
    if (v < 128) {
        dds__buf_putc(b, (uint8_t)v);
    } else if (v <= 0xff) {
        uint8_t h[2] = {0xcc, (uint8_t)v};
        dds__buf_append(b, h, 2);
    } else if (v <= 0xffff) {
        uint8_t h[3] = {0xcd, (uint8_t)(v >> 8), (uint8_t)v};
        dds__buf_append(b, h, 3);
    } else if (v <= 0xffffffffu) {
        uint8_t h[5] = {0xce, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        dds__buf_append(b, h, 5);
    } else {
        uint8_t h[9] = {0xcf};
        for (int i = 0; i < 8; i++) h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        dds__buf_append(b, h, 9);
    }
}
static void mp_bool(dds__buf *b, bool v) { dds__buf_putc(b, v ? 0xc3 : 0xc2); }
static void mp_bin(dds__buf *b, const uint8_t *p, size_t n) {
    if (n <= 0xff) {
        uint8_t h[2] = {0xc4, (uint8_t)n};
        dds__buf_append(b, h, 2);
    } else if (n <= 0xffff) {
        uint8_t h[3] = {0xc5, (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, 3);
    } else {
        uint8_t h[5] = {0xc6, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
        dds__buf_append(b, h, 5);
    }
    dds__buf_append(b, p, n);
}

static void write_sketch(dds__concentrator *c, dds__buf *b, const dds__ddsketch *s) {
    dds__buf_reset(&c->sketch);
    dds__ddsketch_encode(s, &c->sketch);
    if (c->sketch.oom) {
        b->oom = true;
        return;
    }
    mp_bin(b, c->sketch.data, c->sketch.len);
}

/* One ClientGroupedStats, the field names of the Go and Rust msgpack encodings. */
static void write_grouped(dds__concentrator *c, dds__buf *b, const entry *e) {
    agg_key k = read_key(e->key);
    mp_map(b, 21);
    mp_key(b, "Service"), mp_str(b, k.service);
    mp_key(b, "Name"), mp_str(b, k.name);
    mp_key(b, "Resource"), mp_str(b, k.resource);
    mp_key(b, "HTTPStatusCode"), mp_uint(b, k.http_status);
    mp_key(b, "Type"), mp_str(b, k.type);
    mp_key(b, "DBType"), mp_str(b, DDS__SLICE_LIT(""));
    mp_key(b, "Hits"), mp_uint(b, e->hits);
    mp_key(b, "Errors"), mp_uint(b, e->errors);
    mp_key(b, "Duration"), mp_uint(b, e->duration);
    mp_key(b, "OkSummary"), write_sketch(c, b, &e->ok);
    mp_key(b, "ErrorSummary"), write_sketch(c, b, &e->err);
    mp_key(b, "Synthetics"), mp_bool(b, k.synthetics != 0);
    mp_key(b, "TopLevelHits"), mp_uint(b, e->top_level_hits);
    mp_key(b, "SpanKind"), mp_str(b, k.span_kind);
    mp_key(b, "PeerTags");
    mp_array(b, k.npeer);
    reader r = k.peers;
    for (uint32_t i = 0; i < k.npeer; i++) {
        dds__slice key = get_str(&r), val = get_str(&r);
        /* "key:value", or the key alone when the value is empty (the overflow sentinel) */
        mp_str_head(b, key.len + (val.len ? 1 + val.len : 0));
        dds__buf_append(b, key.ptr, key.len);
        if (val.len) {
            dds__buf_putc(b, ':');
            dds__buf_append(b, val.ptr, val.len);
        }
    }
    mp_key(b, "IsTraceRoot"), mp_uint(b, k.trace_root);
    char grpc[4] = "";
    size_t glen = 0;
    if (k.grpc_status != GRPC_NONE) {
        uint32_t v = k.grpc_status;
        if (v >= 100) grpc[glen++] = (char)('0' + v / 100);
        if (v >= 10) grpc[glen++] = (char)('0' + v / 10 % 10);
        grpc[glen++] = (char)('0' + v % 10);
    }
    mp_key(b, "GRPCStatusCode"), mp_str(b, dds__slice_make(grpc, glen));
    mp_key(b, "HTTPMethod"), mp_str(b, k.http_method);
    mp_key(b, "HTTPEndpoint"), mp_str(b, k.http_endpoint);
    mp_key(b, "srv_src"), mp_str(b, k.svc_src);
    mp_key(b, "SpanDerivedPrimaryTags"), mp_array(b, 0);
}

static int by_group_bucket(const void *pa, const void *pb) {
    const entry *a = *(entry *const *)pa, *b = *(entry *const *)pb;
    if (a->group != b->group) return a->group < b->group ? -1 : 1;
    if (a->bucket != b->bucket) return a->bucket < b->bucket ? -1 : 1;
    return 0;
}

/* The ClientStatsPayload of one group: sel[0..n) are its entries, sorted by bucket. */
static void write_payload(dds__concentrator *c, dds__buf *b, entry *const *sel, uint32_t n, uint64_t *nbuckets) {
    reader r = {c->groups[sel[0]->group].key};
    dds__slice lang = get_str(&r), tracer_version = get_str(&r), service = get_str(&r), env = get_str(&r),
               version = get_str(&r), container_id = get_str(&r);
    uint32_t buckets = 0;
    for (uint32_t i = 0; i < n; i++) buckets += i == 0 || sel[i]->bucket != sel[i - 1]->bucket;
    *nbuckets += buckets;
    mp_map(b, 14);
    mp_key(b, "Hostname"), mp_str(b, DDS__SLICE_LIT(""));
    mp_key(b, "Env"), mp_str(b, env);
    mp_key(b, "Version"), mp_str(b, version);
    mp_key(b, "Stats");
    mp_array(b, buckets);
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        while (j < n && sel[j]->bucket == sel[i]->bucket) j++;
        mp_map(b, 4);
        mp_key(b, "Start"), mp_uint(b, (uint64_t)sel[i]->bucket);
        mp_key(b, "Duration"), mp_uint(b, (uint64_t)DDS__STATS_BUCKET_NS);
        mp_key(b, "Stats");
        mp_array(b, j - i);
        for (uint32_t k = i; k < j; k++) write_grouped(c, b, sel[k]);
        mp_key(b, "AgentTimeShift"), mp_uint(b, 0);
        i = j;
    }
    mp_key(b, "Lang"), mp_str(b, lang);
    mp_key(b, "TracerVersion"), mp_str(b, tracer_version);
    mp_key(b, "RuntimeID"), mp_str(b, DDS__SLICE_LIT(""));
    mp_key(b, "Sequence"), mp_uint(b, 0);
    mp_key(b, "AgentAggregation"), mp_str(b, DDS__SLICE_LIT(""));
    mp_key(b, "Service"), mp_str(b, service);
    mp_key(b, "ContainerID"), mp_str(b, container_id);
    mp_key(b, "Tags"), mp_array(b, 0);
    mp_key(b, "GitCommitSha"), mp_str(b, DDS__SLICE_LIT(""));
    mp_key(b, "ImageTag"), mp_str(b, DDS__SLICE_LIT(""));
}

uint32_t dds__concentrator_flush(dds__concentrator *c, int64_t now_ns, bool force, dds__buf *out) {
    /* A bucket is done once it started BUFFER_LEN widths ago (libdd-trace-stats keeps a bucket
     * while start > now - BUFFER_LEN * width). */
    int64_t done_before = now_ns - BUFFER_LEN * DDS__STATS_BUCKET_NS;
    int64_t aligned = align(now_ns > 0 ? now_ns : 0);
    c->oldest_ns = force ? aligned : aligned - (BUFFER_LEN - 1) * DDS__STATS_BUCKET_NS;
    if (c->nentries == 0) return 0;

    entry **sel = malloc(c->nentries * sizeof(*sel));
    if (!sel) return 0;  /* the buckets stay for the next flush */
    uint32_t nsel = 0, kept = 0;
    for (uint32_t i = 0; i < c->nentries; i++) {
        entry *e = c->entries[i];
        if (force || e->bucket <= done_before) sel[nsel++] = e;
        else c->entries[kept++] = e;
    }
    c->nentries = kept;
    rebuild_table(c);
    if (nsel == 0) {
        free(sel);
        return 0;
    }
    qsort(sel, nsel, sizeof(*sel), by_group_bucket);

    size_t start_len = out->len;
    uint32_t npayloads = 0;
    uint64_t nbuckets = 0, spans = 0;
    for (uint32_t i = 0; i < nsel;) {
        uint32_t j = i;
        while (j < nsel && sel[j]->group == sel[i]->group) j++;
        write_payload(c, out, sel + i, j - i, &nbuckets);
        npayloads++;
        i = j;
    }
    for (uint32_t i = 0; i < nsel; i++) {
        spans += sel[i]->hits;
        entry_free(c, sel[i]);
    }
    free(sel);
    if (out->oom) {
        out->len = start_len;
        dds__counter_add(&c->counters->spans_dropped, spans);
        return 0;
    }
    dds__counter_add(&c->counters->buckets, nbuckets);
    dds__counter_add(&c->counters->keys, nsel);
    return npayloads;
}
