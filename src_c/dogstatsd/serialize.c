/* serialize.c - DogStatsD payloads (PROTOCOL.md section 3). In: series and sketches from the
 * aggregator's sink, events and service checks from the parser. Out: a list of dds__payload:
 * protobuf+zstd split at the intake limits, JSON for checks and events, JSON lines in dry-run.
 * Never does I/O, never keeps a pointer into a packet buffer, never aborts on allocation failure
 * (what cannot be built is counted and dropped). */
#include "dogstatsd/serialize.h"

#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/pbw.h"
#include "transport/compress.h"

/* Encoded items laid end to end. Each protobuf item is a complete `repeated ... = 1` field of
 * the top-level message, so any contiguous range of items is a valid payload by itself: a
 * payload over the compressed limit splits without re-encoding. */
typedef struct itemlist {
    dds__buf body;
    size_t *ends;      /* ends[i]: offset just past item i */
    size_t n, cap;
    size_t points;     /* points (or dogsketches) in all items, for the per-payload limit */
} itemlist;

typedef struct batches {
    itemlist *v;
    size_t n, cap;
} batches;

struct dds__dsd_serializer {
    dds__dsd_serializer_counters *ctr;
    char *base_url;                 /* no trailing '/' */
    bool dry_run;
    dds__slice *base_tags;          /* slices into base_tag_mem */
    char *base_tag_mem;
    size_t n_base_tags;
    size_t max_pending, max_compressed, max_uncompressed, max_points;
    uint32_t origin_product, origin_category, origin_service;
    dds__buf scratch;               /* the item being encoded */
    dds__buf text;                  /* unescaped event title/text */
    batches series, sketches;       /* one itemlist per future payload (before compression) */
    itemlist checks;                /* JSON objects, all in one request */
    itemlist events;                /* JSON objects, one request each */
};

/* zstd level of series and sketch payloads. Level 6 is the first whose match finder (lazy2, a
 * window of the whole payload) finds the tag lists repeated across series far apart in a 1 MB
 * payload: 30 % fewer bytes than level 1 on the realistic mix (bench/egress.py), for ~3 ms more
 * per MB compressed, once per 10 s flush. The Rust binary Datadog ships sends level 6 too; the Go
 * Agent defaults to 1 (serializer_zstd_compressor_level); the intake reads any level. */
#define DDS__DSD_ZSTD_LEVEL 6

#define PATH_SERIES "/api/v2/series"
#define PATH_SKETCHES "/api/beta/sketches"
#define PATH_CHECKS "/api/v1/check_run"
#define PATH_EVENTS "/api/v1/events"
#define CT_PROTOBUF "application/x-protobuf"
#define CT_JSON "application/json"

static void count(dds__counter *c) { dds__counter_add(c, 1); }

/* ---- item lists ---- */

static size_t item_start(const itemlist *it, size_t i) { return i ? it->ends[i - 1] : 0; }

static bool itemlist_push(itemlist *it, const uint8_t *p, size_t len, size_t points) {
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 16;
        size_t *e = realloc(it->ends, cap * sizeof(*e));
        if (!e) return false;
        it->ends = e;
        it->cap = cap;
    }
    size_t old = it->body.len;
    dds__buf_append(&it->body, p, len);
    if (it->body.oom) {
        /* A failed realloc leaves the old block intact: keep the items already there. */
        it->body.len = old;
        it->body.oom = false;
        return false;
    }
    it->ends[it->n++] = it->body.len;
    it->points += points;
    return true;
}

static void itemlist_free(itemlist *it) {
    dds__buf_free(&it->body);
    free(it->ends);
    memset(it, 0, sizeof(*it));
}

static itemlist *batches_add(batches *bs) {
    if (bs->n == bs->cap) {
        size_t cap = bs->cap ? bs->cap * 2 : 4;
        itemlist *v = realloc(bs->v, cap * sizeof(*v));
        if (!v) return NULL;
        bs->v = v;
        bs->cap = cap;
    }
    itemlist *it = &bs->v[bs->n++];
    memset(it, 0, sizeof(*it));
    return it;
}

static void batches_free(batches *bs) {
    for (size_t i = 0; i < bs->n; i++) itemlist_free(&bs->v[i]);
    free(bs->v);
    memset(bs, 0, sizeof(*bs));
}

/* Move the item in s->scratch into the last batch, or a new one when it would push that batch
 * over the points or uncompressed limit (the uncompressed size of a protobuf payload is exactly
 * the sum of its items). The compressed limit is only known after compression, in take(). */
static void add_item(dds__dsd_serializer *s, batches *bs, size_t points) {
    const dds__buf *item = &s->scratch;
    if (item->oom) {
        count(&s->ctr->oom);
        return;
    }
    if (points > s->max_points || item->len > s->max_uncompressed) {
        count(&s->ctr->items_too_large);
        return;
    }
    itemlist *cur = bs->n ? &bs->v[bs->n - 1] : NULL;
    if (!cur || cur->points + points > s->max_points || cur->body.len + item->len > s->max_uncompressed) {
        cur = batches_add(bs);
        if (!cur) {
            count(&s->ctr->oom);
            return;
        }
    }
    if (!itemlist_push(cur, item->data, item->len, points)) count(&s->ctr->oom);
}

/* ---- protobuf encoding ---- */

/* proto3 leaves default values out; the decoders on the other side fill them back in. */
static void pb_str(dds__buf *b, uint32_t field, dds__slice v) {
    if (v.len) dds__pbw_bytes(b, field, v.ptr, v.len);
}
static void pb_i64(dds__buf *b, uint32_t field, int64_t v) {
    if (v) dds__pbw_int64(b, field, v);
}
static void pb_dbl(dds__buf *b, uint32_t field, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    if (bits) dds__pbw_double(b, field, v);  /* -0.0 is not the default: it is written */
}

static void pb_resource(dds__buf *b, dds__slice type, dds__slice name) {
    size_t m = dds__pbw_begin(b, 1);  /* MetricSeries.resources */
    pb_str(b, 1, type);
    pb_str(b, 2, name);
    dds__pbw_end(b, m);
}

/* Metadata { Origin origin = 1 } with Origin { origin_product = 4; _category = 5; _service = 6 } */
static void pb_metadata(const dds__dsd_serializer *s, dds__buf *b, uint32_t field) {
    if (!s->origin_product && !s->origin_category && !s->origin_service) return;
    size_t m = dds__pbw_begin(b, field);
    size_t o = dds__pbw_begin(b, 1);
    if (s->origin_product) dds__pbw_uint64(b, 4, s->origin_product);
    if (s->origin_category) dds__pbw_uint64(b, 5, s->origin_category);
    if (s->origin_service) dds__pbw_uint64(b, 6, s->origin_service);
    dds__pbw_end(b, o);
    dds__pbw_end(b, m);
}

static void encode_series_pb(const dds__dsd_serializer *s, dds__buf *b, const dds__series *se) {
    size_t m = dds__pbw_begin(b, 1);  /* MetricPayload.series */
    /* The Go agent puts the host first among the resources; that is where the backend looks
     * for the series' host (series v2 has no host field). */
    if (se->host.len) pb_resource(b, DDS__SLICE_LIT("host"), se->host);
    for (size_t i = 0; i < se->nresources; i++) pb_resource(b, se->resources[i].type, se->resources[i].name);
    pb_str(b, 2, se->name);
    for (size_t i = 0; i < se->ntags; i++) dds__pbw_bytes(b, 3, se->tags[i].ptr, se->tags[i].len);
    for (size_t i = 0; i < se->npoints; i++) {
        size_t pm = dds__pbw_begin(b, 4);
        pb_dbl(b, 1, se->points[i].value);
        pb_i64(b, 2, se->points[i].ts);
        dds__pbw_end(b, pm);
    }
    pb_i64(b, 5, (int64_t)se->type);
    pb_i64(b, 8, se->interval);
    pb_metadata(s, b, 9);
    dds__pbw_end(b, m);
}

static void encode_sketch_pb(const dds__dsd_serializer *s, dds__buf *b, const dds__sketch_series *sk) {
    size_t m = dds__pbw_begin(b, 1);  /* SketchPayload.sketches */
    pb_str(b, 1, sk->name);
    pb_str(b, 2, sk->host);
    for (size_t i = 0; i < sk->ntags; i++) dds__pbw_bytes(b, 4, sk->tags[i].ptr, sk->tags[i].len);
    for (size_t i = 0; i < sk->npoints; i++) {
        const dds__sketch_point *p = &sk->points[i];
        size_t dm = dds__pbw_begin(b, 7);
        pb_i64(b, 1, p->ts);
        pb_i64(b, 2, p->cnt);
        pb_dbl(b, 3, p->min);
        pb_dbl(b, 4, p->max);
        pb_dbl(b, 5, p->avg);
        pb_dbl(b, 6, p->sum);
        if (p->nbins) {
            size_t km = dds__pbw_begin(b, 7);  /* packed sint32 */
            for (size_t j = 0; j < p->nbins; j++) dds__pbw_varint(b, dds__pbw_zigzag32(p->keys[j]));
            dds__pbw_end(b, km);
            size_t nm = dds__pbw_begin(b, 8);  /* packed uint32 */
            for (size_t j = 0; j < p->nbins; j++) dds__pbw_varint(b, p->counts[j]);
            dds__pbw_end(b, nm);
        }
        dds__pbw_end(b, dm);
    }
    pb_metadata(s, b, 8);
    dds__pbw_end(b, m);
}

/* ---- JSON encoding (dry run, checks, events) ---- */

static void json_str(dds__jsonw *w, const char *key, dds__slice v) {
    dds__jsonw_key(w, key);
    dds__jsonw_string(w, v.ptr, v.len);
}

static const char *api_type_name(dds__api_type t) {
    switch (t) {
    case DDS__API_COUNT: return "count";
    case DDS__API_RATE: return "rate";
    case DDS__API_GAUGE: return "gauge";
    }
    return "unspecified";
}

static void json_resource(dds__jsonw *w, dds__slice type, dds__slice name) {
    dds__jsonw_object_begin(w);
    json_str(w, "type", type);
    json_str(w, "name", name);
    dds__jsonw_object_end(w);
}

static void encode_series_json(dds__buf *b, const dds__series *se) {
    dds__jsonw w;
    dds__jsonw_init(&w, b);
    dds__jsonw_object_begin(&w);
    json_str(&w, "metric", se->name);
    dds__jsonw_key(&w, "type");
    dds__jsonw_cstr(&w, api_type_name(se->type));
    dds__jsonw_key(&w, "interval");
    dds__jsonw_int(&w, se->interval);
    dds__jsonw_key(&w, "points");
    dds__jsonw_array_begin(&w);
    for (size_t i = 0; i < se->npoints; i++) {
        dds__jsonw_object_begin(&w);
        dds__jsonw_key(&w, "timestamp");
        dds__jsonw_int(&w, se->points[i].ts);
        dds__jsonw_key(&w, "value");
        dds__jsonw_double(&w, se->points[i].value);
        dds__jsonw_object_end(&w);
    }
    dds__jsonw_array_end(&w);
    dds__jsonw_key(&w, "tags");
    dds__jsonw_array_begin(&w);
    for (size_t i = 0; i < se->ntags; i++) dds__jsonw_string(&w, se->tags[i].ptr, se->tags[i].len);
    dds__jsonw_array_end(&w);
    dds__jsonw_key(&w, "resources");
    dds__jsonw_array_begin(&w);
    if (se->host.len) json_resource(&w, DDS__SLICE_LIT("host"), se->host);
    for (size_t i = 0; i < se->nresources; i++) json_resource(&w, se->resources[i].type, se->resources[i].name);
    dds__jsonw_array_end(&w);
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) b->oom = true;
}

static void encode_sketch_json(dds__buf *b, const dds__sketch_series *sk) {
    dds__jsonw w;
    dds__jsonw_init(&w, b);
    dds__jsonw_object_begin(&w);
    json_str(&w, "metric", sk->name);
    json_str(&w, "host", sk->host);
    dds__jsonw_key(&w, "tags");
    dds__jsonw_array_begin(&w);
    for (size_t i = 0; i < sk->ntags; i++) dds__jsonw_string(&w, sk->tags[i].ptr, sk->tags[i].len);
    dds__jsonw_array_end(&w);
    dds__jsonw_key(&w, "dogsketches");
    dds__jsonw_array_begin(&w);
    for (size_t i = 0; i < sk->npoints; i++) {
        const dds__sketch_point *p = &sk->points[i];
        dds__jsonw_object_begin(&w);
        dds__jsonw_key(&w, "ts");
        dds__jsonw_int(&w, p->ts);
        dds__jsonw_key(&w, "cnt");
        dds__jsonw_int(&w, p->cnt);
        dds__jsonw_key(&w, "min");
        dds__jsonw_double(&w, p->min);
        dds__jsonw_key(&w, "max");
        dds__jsonw_double(&w, p->max);
        dds__jsonw_key(&w, "avg");
        dds__jsonw_double(&w, p->avg);
        dds__jsonw_key(&w, "sum");
        dds__jsonw_double(&w, p->sum);
        dds__jsonw_key(&w, "k");
        dds__jsonw_array_begin(&w);
        for (size_t j = 0; j < p->nbins; j++) dds__jsonw_int(&w, p->keys[j]);
        dds__jsonw_array_end(&w);
        dds__jsonw_key(&w, "n");
        dds__jsonw_array_begin(&w);
        for (size_t j = 0; j < p->nbins; j++) dds__jsonw_uint(&w, p->counts[j]);
        dds__jsonw_array_end(&w);
        dds__jsonw_object_end(&w);
    }
    dds__jsonw_array_end(&w);
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) b->oom = true;
}

/* ---- sink ---- */

static void on_series(void *user, const dds__series *se) {
    dds__dsd_serializer *s = user;
    if (se->npoints == 0) return;
    dds__buf_reset(&s->scratch);
    if (s->dry_run) encode_series_json(&s->scratch, se);
    else encode_series_pb(s, &s->scratch, se);
    add_item(s, &s->series, se->npoints);
}

static void on_sketch(void *user, const dds__sketch_series *sk) {
    dds__dsd_serializer *s = user;
    if (sk->npoints == 0) return;
    dds__buf_reset(&s->scratch);
    if (s->dry_run) encode_sketch_json(&s->scratch, sk);
    else encode_sketch_pb(s, &s->scratch, sk);
    add_item(s, &s->sketches, sk->npoints);
}

dds__agg_sink dds__dsd_serializer_sink(dds__dsd_serializer *s) {
    return (dds__agg_sink){.user = s, .series = on_series, .sketch = on_sketch};
}

/* ---- events and service checks ---- */

static bool next_tag(dds__slice *rest, dds__slice *tag) {
    while (rest->len) {
        const char *comma = memchr(rest->ptr, ',', rest->len);
        size_t n = comma ? (size_t)(comma - rest->ptr) : rest->len;
        *tag = dds__slice_make(rest->ptr, n);
        rest->ptr += comma ? n + 1 : n;
        rest->len -= comma ? n + 1 : n;
        if (n) return true;  /* empty tags (`#a,,b`) are dropped, as for metrics */
    }
    return false;
}

/* The tags array: the client's tags without `host:` (which, as in the Go agent, becomes the
 * host when no h: field was given), then the base tags. Returns the host found in the tags. */
static dds__slice json_tags(const dds__dsd_serializer *s, dds__jsonw *w, dds__slice raw) {
    dds__slice host = {NULL, 0}, tag;
    dds__jsonw_key(w, "tags");
    dds__jsonw_array_begin(w);
    while (next_tag(&raw, &tag)) {
        if (dds__slice_has_prefix(tag, "host:", 5)) {
            host = dds__slice_make(tag.ptr + 5, tag.len - 5);
            continue;
        }
        dds__jsonw_string(w, tag.ptr, tag.len);
    }
    for (size_t i = 0; i < s->n_base_tags; i++) dds__jsonw_string(w, s->base_tags[i].ptr, s->base_tags[i].len);
    dds__jsonw_array_end(w);
    return host;
}

static bool pending_full(dds__dsd_serializer *s) {
    if (s->events.n + s->checks.n < s->max_pending) return false;
    count(&s->ctr->events_dropped);
    return true;
}

/* The scratch item, complete and valid, joins list: 0, or -1 (counted) when memory ran out. */
static int commit_json(dds__dsd_serializer *s, const dds__jsonw *w, itemlist *list) {
    if (!dds__jsonw_ok(w) || !itemlist_push(list, s->scratch.data, s->scratch.len, 0)) {
        count(&s->ctr->oom);
        return -1;
    }
    return 0;
}

static void json_unescaped(dds__dsd_serializer *s, dds__jsonw *w, const char *key, dds__slice v) {
    dds__buf_reset(&s->text);
    dds__jsonw_key(w, key);
    if (!dds__buf_reserve(&s->text, v.len)) {
        w->err = true;
        return;
    }
    size_t n = v.len ? dds__unescape_newlines((char *)s->text.data, v.ptr, v.len) : 0;
    dds__jsonw_string(w, (const char *)s->text.data, n);
}

int dds__dsd_serializer_add_event(dds__dsd_serializer *s, const dds__event *ev, int64_t now_s) {
    if (pending_full(s)) return -1;
    dds__buf_reset(&s->scratch);
    dds__jsonw w;
    dds__jsonw_init(&w, &s->scratch);
    dds__jsonw_object_begin(&w);
    json_unescaped(s, &w, "title", ev->title);
    json_unescaped(s, &w, "text", ev->text);
    dds__jsonw_key(&w, "date_happened");
    dds__jsonw_int(&w, ev->timestamp ? ev->timestamp : now_s);
    dds__jsonw_key(&w, "priority");
    dds__jsonw_cstr(&w, ev->priority == DDS__PRIO_LOW ? "low" : "normal");
    dds__slice tag_host = json_tags(s, &w, ev->tags);
    dds__slice host = ev->hostname.len ? ev->hostname : tag_host;
    if (host.len) json_str(&w, "host", host);
    static const char *const alert[] = {"info", "error", "warning", "success"};
    dds__jsonw_key(&w, "alert_type");
    dds__jsonw_cstr(&w, (unsigned)ev->alert_type < 4 ? alert[ev->alert_type] : "info");
    if (ev->aggregation_key.len) json_str(&w, "aggregation_key", ev->aggregation_key);
    if (ev->source_type_name.len) json_str(&w, "source_type_name", ev->source_type_name);
    dds__jsonw_object_end(&w);
    return commit_json(s, &w, &s->events);
}

int dds__dsd_serializer_add_service_check(dds__dsd_serializer *s, const dds__service_check *sc, int64_t now_s) {
    if (pending_full(s)) return -1;
    dds__buf_reset(&s->scratch);
    dds__jsonw w;
    dds__jsonw_init(&w, &s->scratch);
    dds__jsonw_object_begin(&w);
    json_str(&w, "check", sc->name);
    dds__jsonw_key(&w, "timestamp");
    dds__jsonw_int(&w, sc->timestamp ? sc->timestamp : now_s);
    dds__jsonw_key(&w, "status");
    dds__jsonw_int(&w, sc->status);
    /* The message goes as sent: the Go agent does not unescape it either. */
    json_str(&w, "message", sc->message);
    dds__slice tag_host = json_tags(s, &w, sc->tags);
    json_str(&w, "host_name", sc->hostname.len ? sc->hostname : tag_host);
    dds__jsonw_object_end(&w);
    return commit_json(s, &w, &s->checks);
}

/* ---- take ---- */

typedef struct out_list {
    dds__payload *head;
    dds__payload **tail;
} out_list;

static void emit(dds__dsd_serializer *s, out_list *out, dds__payload_kind kind, const char *path,
                 uint8_t *body, size_t len, const char *ctype, const char *cenc, size_t items) {
    size_t ul = strlen(s->base_url), pl = strlen(path);
    char *url = malloc(ul + pl + 1);
    if (url) {
        memcpy(url, s->base_url, ul);
        memcpy(url + ul, path, pl + 1);
    }
    dds__payload *p = dds__payload_new(kind, url, body, len, ctype, cenc, (uint32_t)items);
    if (!p) {
        count(&s->ctr->oom);
        return;
    }
    *out->tail = p;
    out->tail = &p->next;
}

/* {"dry_run":true,"endpoint":<path>,"payload":<key ? {key:[items]} : [items] or the one item>} */
static void emit_dry_run(dds__dsd_serializer *s, out_list *out, dds__payload_kind kind, const char *path,
                         const char *key, bool array, const itemlist *it, size_t lo, size_t hi) {
    dds__buf b;
    dds__buf_init(&b);
    dds__jsonw w;
    dds__jsonw_init(&w, &b);
    dds__payload_dry_run_begin(&w, path);
    if (key) {
        dds__jsonw_object_begin(&w);
        dds__jsonw_key(&w, key);
    }
    if (array) dds__jsonw_array_begin(&w);
    for (size_t i = lo; i < hi; i++) {
        size_t st = item_start(it, i);
        dds__jsonw_raw(&w, (const char *)it->body.data + st, it->ends[i] - st);
    }
    if (array) dds__jsonw_array_end(&w);
    if (key) dds__jsonw_object_end(&w);
    dds__jsonw_object_end(&w);
    if (!dds__jsonw_ok(&w)) {
        dds__buf_free(&b);
        count(&s->ctr->oom);
        return;
    }
    size_t len;
    uint8_t *body = dds__buf_steal(&b, &len);
    emit(s, out, kind, path, body, len, CT_JSON, NULL, hi - lo);
}

/* Compress items [lo, hi) as one payload; over the compressed limit, halve and retry. The
 * halves are re-compressed from scratch: splits are rare (the uncompressed limit is 10x the
 * compressed one and metrics compress well), so nothing cleverer is worth its code. */
static void emit_compressed(dds__dsd_serializer *s, out_list *out, dds__payload_kind kind, const char *path,
                            const itemlist *it, size_t lo, size_t hi) {
    size_t st = item_start(it, lo);
    uint8_t *z;
    size_t zlen;
    if (dds__zstd_compress(it->body.data + st, it->ends[hi - 1] - st, DDS__DSD_ZSTD_LEVEL, &z, &zlen) != 0) {
        count(&s->ctr->oom);
        return;
    }
    if (zlen <= s->max_compressed) {
        emit(s, out, kind, path, z, zlen, CT_PROTOBUF, "zstd", hi - lo);
        return;
    }
    free(z);
    if (hi - lo == 1) {
        count(&s->ctr->items_too_large);
        return;
    }
    size_t mid = lo + (hi - lo) / 2;
    emit_compressed(s, out, kind, path, it, lo, mid);
    emit_compressed(s, out, kind, path, it, mid, hi);
}

static void take_batches(dds__dsd_serializer *s, out_list *out, batches *bs, dds__payload_kind kind,
                         const char *path, const char *key) {
    for (size_t i = 0; i < bs->n; i++) {
        const itemlist *it = &bs->v[i];
        if (it->n == 0) continue;
        if (s->dry_run) emit_dry_run(s, out, kind, path, key, true, it, 0, it->n);
        else emit_compressed(s, out, kind, path, it, 0, it->n);
    }
    batches_free(bs);
}

static void take_checks(dds__dsd_serializer *s, out_list *out) {
    itemlist *it = &s->checks;
    if (it->n == 0) return;
    if (s->dry_run) {
        emit_dry_run(s, out, DDS__PK_SERVICE_CHECKS, PATH_CHECKS, NULL, true, it, 0, it->n);
    } else {
        dds__buf b;
        dds__buf_init(&b);
        dds__jsonw w;
        dds__jsonw_init(&w, &b);
        dds__jsonw_array_begin(&w);
        for (size_t i = 0; i < it->n; i++) {
            size_t st = item_start(it, i);
            dds__jsonw_raw(&w, (const char *)it->body.data + st, it->ends[i] - st);
        }
        dds__jsonw_array_end(&w);
        if (dds__jsonw_ok(&w)) {
            size_t len;
            uint8_t *body = dds__buf_steal(&b, &len);
            emit(s, out, DDS__PK_SERVICE_CHECKS, PATH_CHECKS, body, len, CT_JSON, NULL, it->n);
        } else {
            dds__buf_free(&b);
            count(&s->ctr->oom);
        }
    }
    itemlist_free(it);
}

static void take_events(dds__dsd_serializer *s, out_list *out) {
    itemlist *it = &s->events;
    for (size_t i = 0; i < it->n; i++) {
        if (s->dry_run) {
            emit_dry_run(s, out, DDS__PK_EVENTS, PATH_EVENTS, NULL, false, it, i, i + 1);
            continue;
        }
        size_t st = item_start(it, i), len = it->ends[i] - st;
        uint8_t *body = malloc(len);
        if (!body) {
            count(&s->ctr->oom);
            continue;
        }
        memcpy(body, it->body.data + st, len);
        emit(s, out, DDS__PK_EVENTS, PATH_EVENTS, body, len, CT_JSON, NULL, 1);
    }
    itemlist_free(it);
}

dds__payload *dds__dsd_serializer_take(dds__dsd_serializer *s) {
    out_list out = {NULL, NULL};
    out.tail = &out.head;
    take_batches(s, &out, &s->series, DDS__PK_SERIES, PATH_SERIES, "series");
    take_batches(s, &out, &s->sketches, DDS__PK_SKETCHES, PATH_SKETCHES, "sketches");
    take_checks(s, &out);
    take_events(s, &out);
    /* Scratch memory would otherwise stay at the size of the largest item until the next
     * flush: a frozen serverless instance should hold as little as possible. */
    dds__buf_free(&s->scratch);
    dds__buf_free(&s->text);
    return out.head;
}

/* ---- lifecycle ---- */

dds__dsd_serializer *dds__dsd_serializer_new(const dds__dsd_serializer_config *cfg,
                                             dds__dsd_serializer_counters *counters) {
    dds__dsd_serializer *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->ctr = counters;
    s->dry_run = cfg->dry_run;
    s->max_pending = cfg->max_pending_events ? cfg->max_pending_events : 10000;
    s->max_compressed = cfg->max_compressed ? cfg->max_compressed : DDS__SERIES_MAX_COMPRESSED;
    s->max_uncompressed = cfg->max_uncompressed ? cfg->max_uncompressed : DDS__SERIES_MAX_UNCOMPRESSED;
    s->max_points = cfg->max_points ? cfg->max_points : DDS__SERIES_MAX_POINTS;
    s->origin_product = cfg->origin_product;
    s->origin_category = cfg->origin_category;
    s->origin_service = cfg->origin_service;

    const char *base = cfg->metrics_base_url ? cfg->metrics_base_url : "https://api.datadoghq.com";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') bl--;  /* "https://x/" + "/api/..." would give "//api" */
    s->base_url = strndup(base, bl);
    if (!s->base_url) goto fail;

    if (cfg->n_base_tags) {
        size_t total = 0;
        for (size_t i = 0; i < cfg->n_base_tags; i++) total += cfg->base_tags[i].len;
        s->base_tags = calloc(cfg->n_base_tags, sizeof(*s->base_tags));
        s->base_tag_mem = malloc(total ? total : 1);
        if (!s->base_tags || !s->base_tag_mem) goto fail;
        char *p = s->base_tag_mem;
        for (size_t i = 0; i < cfg->n_base_tags; i++) {
            dds__slice t = cfg->base_tags[i];
            if (t.len) memcpy(p, t.ptr, t.len);
            s->base_tags[i] = dds__slice_make(p, t.len);
            p += t.len;
        }
        s->n_base_tags = cfg->n_base_tags;
    }
    return s;
fail:
    dds__dsd_serializer_free(s);
    return NULL;
}

void dds__dsd_serializer_free(dds__dsd_serializer *s) {
    if (!s) return;
    batches_free(&s->series);
    batches_free(&s->sketches);
    itemlist_free(&s->checks);
    itemlist_free(&s->events);
    dds__buf_free(&s->scratch);
    dds__buf_free(&s->text);
    free(s->base_tags);
    free(s->base_tag_mem);
    free(s->base_url);
    free(s);
}
