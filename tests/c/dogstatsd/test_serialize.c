/* test_serialize.c - DogStatsD payloads: what we produce is decompressed and decoded by a small
 * protobuf reader written here (test only) and checked field by field; splitting at each limit;
 * service checks and events JSON; dry-run lines; the pending event bound. */
#include "dogstatsd/serialize.h"

#include <limits.h>
#include <zstd.h>

#include "test.h"

/* ---- protobuf reader (test only) ---- */

typedef struct pbr {
    const uint8_t *p, *end;
    bool err;
} pbr;

static uint64_t pbr_varint(pbr *r) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) break;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    r->err = true;
    return 0;
}

static bool pbr_next(pbr *r, uint32_t *field, unsigned *wt) {
    if (r->err || r->p >= r->end) return false;
    uint64_t key = pbr_varint(r);
    *field = (uint32_t)(key >> 3);
    *wt = (unsigned)(key & 7);
    return !r->err && *field != 0;
}

static pbr pbr_sub(pbr *r) {
    pbr s = {NULL, NULL, true};
    uint64_t n = pbr_varint(r);
    if (r->err || n > (uint64_t)(r->end - r->p)) {
        r->err = true;
        return s;
    }
    s.p = r->p;
    s.end = r->p + n;
    s.err = false;
    r->p += n;
    return s;
}

static double pbr_double(pbr *r) {
    if (r->end - r->p < 8) {
        r->err = true;
        return 0;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static void pbr_str(pbr *r, char *dst, size_t cap) {
    pbr s = pbr_sub(r);
    size_t n = s.err ? 0 : (size_t)(s.end - s.p);
    if (n >= cap) n = cap - 1;
    if (n) memcpy(dst, s.p, n);
    dst[n] = 0;
}

/* ---- decoded messages ---- */

#define MAXN 64

typedef struct dec_series {
    char metric[128];
    char res_type[8][32], res_name[8][32];
    int nres;
    char tags[16][1024];
    int ntags;
    double values[MAXN];
    int64_t ts[MAXN];
    bool value_present[MAXN];
    int npoints;
    int type;
    int64_t interval;
    bool has_meta;
    uint64_t product, category, service;
} dec_series;

static bool decode_origin(pbr o, dec_series *d) {
    uint32_t f;
    unsigned wt;
    while (pbr_next(&o, &f, &wt)) {
        if (f == 4 && wt == 0) d->product = pbr_varint(&o);
        else if (f == 5 && wt == 0) d->category = pbr_varint(&o);
        else if (f == 6 && wt == 0) d->service = pbr_varint(&o);
        else return false;
    }
    return !o.err;
}

static bool decode_metadata(pbr m, dec_series *d) {
    uint32_t f;
    unsigned wt;
    d->has_meta = true;
    while (pbr_next(&m, &f, &wt)) {
        if (f != 1 || wt != 2) return false;
        if (!decode_origin(pbr_sub(&m), d)) return false;
    }
    return !m.err;
}

static bool decode_series(pbr r, dec_series *d) {
    memset(d, 0, sizeof(*d));
    uint32_t f;
    unsigned wt;
    while (pbr_next(&r, &f, &wt)) {
        if (f == 1 && wt == 2) {
            if (d->nres >= 8) return false;
            pbr s = pbr_sub(&r);
            uint32_t g;
            unsigned gw;
            while (pbr_next(&s, &g, &gw)) {
                if (g == 1 && gw == 2) pbr_str(&s, d->res_type[d->nres], 32);
                else if (g == 2 && gw == 2) pbr_str(&s, d->res_name[d->nres], 32);
                else return false;
            }
            if (s.err) return false;
            d->nres++;
        } else if (f == 2 && wt == 2) {
            pbr_str(&r, d->metric, sizeof(d->metric));
        } else if (f == 3 && wt == 2) {
            if (d->ntags >= 16) return false;
            pbr_str(&r, d->tags[d->ntags++], 1024);
        } else if (f == 4 && wt == 2) {
            if (d->npoints >= MAXN) return false;
            pbr s = pbr_sub(&r);
            uint32_t g;
            unsigned gw;
            int i = d->npoints++;
            while (pbr_next(&s, &g, &gw)) {
                if (g == 1 && gw == 1) d->values[i] = pbr_double(&s), d->value_present[i] = true;
                else if (g == 2 && gw == 0) d->ts[i] = (int64_t)pbr_varint(&s);
                else return false;
            }
            if (s.err) return false;
        } else if (f == 5 && wt == 0) {
            d->type = (int)pbr_varint(&r);
        } else if (f == 8 && wt == 0) {
            d->interval = (int64_t)pbr_varint(&r);
        } else if (f == 9 && wt == 2) {
            if (!decode_metadata(pbr_sub(&r), d)) return false;
        } else {
            return false;  /* we never write anything else */
        }
    }
    return !r.err;
}

typedef struct dec_dogsketch {
    int64_t ts, cnt;
    double min, max, avg, sum;
    int32_t k[MAXN];
    uint32_t n[MAXN];
    int nk, nn;
} dec_dogsketch;

typedef struct dec_sketch {
    char metric[128], host[64];
    char tags[16][64];
    int ntags;
    dec_dogsketch ds[8];
    int nds;
    dec_series meta;  /* only the origin fields are used */
} dec_sketch;

static bool decode_dogsketch(pbr r, dec_dogsketch *d) {
    uint32_t f;
    unsigned wt;
    while (pbr_next(&r, &f, &wt)) {
        if (f == 1 && wt == 0) d->ts = (int64_t)pbr_varint(&r);
        else if (f == 2 && wt == 0) d->cnt = (int64_t)pbr_varint(&r);
        else if (f == 3 && wt == 1) d->min = pbr_double(&r);
        else if (f == 4 && wt == 1) d->max = pbr_double(&r);
        else if (f == 5 && wt == 1) d->avg = pbr_double(&r);
        else if (f == 6 && wt == 1) d->sum = pbr_double(&r);
        else if ((f == 7 || f == 8) && wt == 2) {  /* packed */
            pbr s = pbr_sub(&r);
            while (!s.err && s.p < s.end) {
                uint64_t v = pbr_varint(&s);
                if (f == 7) {
                    if (d->nk >= MAXN) return false;
                    d->k[d->nk++] = (int32_t)((v >> 1) ^ (0u - (v & 1)));  /* zigzag decode */
                } else {
                    if (d->nn >= MAXN) return false;
                    d->n[d->nn++] = (uint32_t)v;
                }
            }
            if (s.err) return false;
        } else {
            return false;
        }
    }
    return !r.err;
}

static bool decode_sketch(pbr r, dec_sketch *d) {
    memset(d, 0, sizeof(*d));
    uint32_t f;
    unsigned wt;
    while (pbr_next(&r, &f, &wt)) {
        if (f == 1 && wt == 2) pbr_str(&r, d->metric, sizeof(d->metric));
        else if (f == 2 && wt == 2) pbr_str(&r, d->host, sizeof(d->host));
        else if (f == 4 && wt == 2) {
            if (d->ntags >= 16) return false;
            pbr_str(&r, d->tags[d->ntags++], 64);
        } else if (f == 7 && wt == 2) {
            if (d->nds >= 8) return false;
            if (!decode_dogsketch(pbr_sub(&r), &d->ds[d->nds++])) return false;
        } else if (f == 8 && wt == 2) {
            if (!decode_metadata(pbr_sub(&r), &d->meta)) return false;
        } else {
            return false;
        }
    }
    return !r.err;
}

/* Decompress a zstd body into a malloc'd block (the frame must carry its size). */
static uint8_t *unzstd(const dds__payload *p, size_t *len) {
    unsigned long long n = ZSTD_getFrameContentSize(p->body, p->body_len);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN) return NULL;
    uint8_t *out = malloc(n ? n : 1);
    size_t r = ZSTD_decompress(out, n ? n : 1, p->body, p->body_len);
    if (ZSTD_isError(r) || r != n) {
        free(out);
        return NULL;
    }
    *len = r;
    return out;
}

/* Decode a whole MetricPayload; returns the number of series or -1. */
static int decode_series_payload(const uint8_t *data, size_t len, dec_series *out, int max) {
    pbr r = {data, data + len, false};
    uint32_t f;
    unsigned wt;
    int n = 0;
    while (pbr_next(&r, &f, &wt)) {
        if (f != 1 || wt != 2 || n >= max) return -1;
        if (!decode_series(pbr_sub(&r), &out[n++])) return -1;
    }
    return r.err ? -1 : n;
}

static int decode_sketch_payload(const uint8_t *data, size_t len, dec_sketch *out, int max) {
    pbr r = {data, data + len, false};
    uint32_t f;
    unsigned wt;
    int n = 0;
    while (pbr_next(&r, &f, &wt)) {
        if (f != 1 || wt != 2 || n >= max) return -1;
        if (!decode_sketch(pbr_sub(&r), &out[n++])) return -1;
    }
    return r.err ? -1 : n;
}

/* ---- tiny JSON validator (test only): grammar of RFC 8259, bytes >= 0x80 passed through ---- */

static const char *jv_value(const char *p, const char *e);

static const char *jv_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static const char *jv_string(const char *p, const char *e) {
    if (p >= e || *p != '"') return NULL;
    for (p++; p < e; p++) {
        if (*p == '"') return p + 1;
        if ((unsigned char)*p < 0x20) return NULL;
        if (*p == '\\') {
            if (++p >= e) return NULL;
            if (*p == 'u') {
                if (e - p < 5) return NULL;
                p += 4;
            } else if (!strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
    }
    return NULL;
}

static const char *jv_container(const char *p, const char *e, char close, bool object) {
    p = jv_ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
        p = jv_ws(p, e);
        if (object) {
            if (!(p = jv_string(p, e))) return NULL;
            p = jv_ws(p, e);
            if (p >= e || *p++ != ':') return NULL;
        }
        if (!(p = jv_value(p, e))) return NULL;
        p = jv_ws(p, e);
        if (p >= e) return NULL;
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == close ? p + 1 : NULL;
    }
}

static const char *jv_value(const char *p, const char *e) {
    p = jv_ws(p, e);
    if (p >= e) return NULL;
    if (*p == '{') return jv_container(p, e, '}', true);
    if (*p == '[') return jv_container(p, e, ']', false);
    if (*p == '"') return jv_string(p, e);
    if (e - p >= 4 && !memcmp(p, "true", 4)) return p + 4;
    if (e - p >= 5 && !memcmp(p, "false", 5)) return p + 5;
    if (e - p >= 4 && !memcmp(p, "null", 4)) return p + 4;
    const char *s = p;
    if (*p == '-') p++;
    while (p < e && strchr("0123456789.eE+-", *p)) p++;
    return p > s && (p - s > 1 || s[0] != '-') ? p : NULL;
}

static bool json_ok(const dds__payload *p) {
    const char *s = (const char *)p->body, *e = s + p->body_len;
    const char *end = jv_value(s, e);
    return end && jv_ws(end, e) == e;
}

/* body contains the string */
static bool has(const dds__payload *p, const char *needle) {
    return memmem(p->body, p->body_len, needle, strlen(needle)) != NULL;
}

/* ---- fixtures ---- */

static dds__slice S(const char *s) { return dds__slice_cstr(s); }

static size_t list_len(const dds__payload *p) {
    size_t n = 0;
    for (; p; p = p->next) n++;
    return n;
}

static void free_list(dds__payload *p) {
    while (p) {
        dds__payload *next = p->next;
        dds__payload_free(p);
        p = next;
    }
}

static dds__dsd_serializer_config base_config(void) {
    dds__dsd_serializer_config c;
    memset(&c, 0, sizeof(c));
    c.metrics_base_url = "https://api.example.com/";
    return c;
}

/* A series named name with npoints points (value i+0.5, ts 100+10i) and the given tags. */
static void send_series(dds__agg_sink *sink, const char *name, size_t npoints, const dds__slice *tags, size_t ntags) {
    dds__point pts[MAXN];
    for (size_t i = 0; i < npoints; i++) pts[i] = (dds__point){(double)i + 0.5, 100 + 10 * (int64_t)i};
    dds__series se = {.name = S(name), .tags = tags, .ntags = ntags, .type = DDS__API_GAUGE,
                      .interval = 10, .points = pts, .npoints = npoints};
    sink->series(sink->user, &se);
}

/* ---- series ---- */

TEST(series_fields) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.origin_product = 10, cfg.origin_category = 11, cfg.origin_service = 12;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    CHECK(s != NULL);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);

    const dds__slice tags[] = {S("env:prod"), S("c")};
    const dds__resource res[] = {{S("device"), S("sda")}};
    const dds__point pts[] = {{1.5, 1700000000}, {0.0, 1700000010}, {-2.25, 1700000020}};
    dds__series se = {.name = S("my.rate"), .host = S("myhost"), .tags = tags, .ntags = 2,
                      .resources = res, .nresources = 1, .type = DDS__API_RATE, .interval = 10,
                      .points = pts, .npoints = 3};
    sink.series(sink.user, &se);
    dds__series g = {.name = S("my.gauge"), .type = DDS__API_GAUGE, .interval = 0, .points = pts, .npoints = 1};
    sink.series(sink.user, &g);
    dds__series none = {.name = S("no.points"), .type = DDS__API_GAUGE};
    sink.series(sink.user, &none);  /* nothing to send: skipped */

    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 1);
    if (!list) goto out;
    CHECK_EQ_INT(list->kind, DDS__PK_SERIES);
    CHECK_EQ_STR(list->url, "https://api.example.com/api/v2/series");
    CHECK_EQ_STR(list->content_type, "application/x-protobuf");
    CHECK_EQ_STR(list->content_encoding, "zstd");
    CHECK_EQ_INT(list->items, 2);
    size_t len = 0;
    uint8_t *raw = unzstd(list, &len);
    CHECK(raw != NULL);
    dec_series d[4];
    int n = raw ? decode_series_payload(raw, len, d, 4) : -1;
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_EQ_STR(d[0].metric, "my.rate");
        CHECK_EQ_INT(d[0].nres, 2);
        CHECK_EQ_STR(d[0].res_type[0], "host");  /* the host comes first, as the Go agent sends it */
        CHECK_EQ_STR(d[0].res_name[0], "myhost");
        CHECK_EQ_STR(d[0].res_type[1], "device");
        CHECK_EQ_STR(d[0].res_name[1], "sda");
        CHECK_EQ_INT(d[0].ntags, 2);
        CHECK_EQ_STR(d[0].tags[0], "env:prod");
        CHECK_EQ_STR(d[0].tags[1], "c");
        CHECK_EQ_INT(d[0].npoints, 3);
        CHECK_EQ_DBL(d[0].values[0], 1.5, 0);
        CHECK_EQ_INT(d[0].ts[0], 1700000000);
        CHECK(!d[0].value_present[1]);  /* 0.0 is proto3's default: left out */
        CHECK_EQ_DBL(d[0].values[1], 0.0, 0);
        CHECK_EQ_INT(d[0].ts[1], 1700000010);
        CHECK_EQ_DBL(d[0].values[2], -2.25, 0);
        CHECK_EQ_INT(d[0].type, 2);
        CHECK_EQ_INT(d[0].interval, 10);
        CHECK(d[0].has_meta);
        CHECK_EQ_INT(d[0].product, 10);
        CHECK_EQ_INT(d[0].category, 11);
        CHECK_EQ_INT(d[0].service, 12);

        CHECK_EQ_STR(d[1].metric, "my.gauge");
        CHECK_EQ_INT(d[1].nres, 0);  /* no host: no host resource */
        CHECK_EQ_INT(d[1].ntags, 0);
        CHECK_EQ_INT(d[1].type, 3);
        CHECK_EQ_INT(d[1].interval, 0);
    }
    free(raw);
    CHECK_EQ_INT(dds__counter_get(&ctr.items_too_large), 0);
    CHECK_EQ_INT(dds__counter_get(&ctr.oom), 0);
out:
    free_list(list);
    CHECK(dds__dsd_serializer_take(s) == NULL);  /* nothing pending any more */
    dds__dsd_serializer_free(s);
}

TEST(series_without_origin_has_no_metadata) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.metrics_base_url = NULL;  /* default site */
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    send_series(&sink, "a", 1, NULL, 0);
    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK(list != NULL);
    if (list) {
        CHECK_EQ_STR(list->url, "https://api.datadoghq.com/api/v2/series");
        size_t len;
        uint8_t *raw = unzstd(list, &len);
        dec_series d;
        CHECK_EQ_INT(raw ? decode_series_payload(raw, len, &d, 1) : -1, 1);
        CHECK(!d.has_meta);
        CHECK_EQ_DBL(d.values[0], 0.5, 0);
        free(raw);
    }
    free_list(list);
    dds__dsd_serializer_free(s);
}

/* ---- sketches ---- */

TEST(sketch_fields) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.origin_product = 10;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);

    const int16_t k1[] = {-1409, 0, 1338, 1338, 32767};
    const uint16_t n1[] = {1, 2, 65535, 5, 1};
    const int16_t k2[] = {1383};
    const uint16_t n2[] = {300};
    const dds__sketch_point pts[] = {
        {.ts = 1700000000, .cnt = 65544, .min = -3, .max = 1e300, .sum = 70000.5, .avg = 1.25,
         .keys = k1, .counts = n1, .nbins = 5},
        {.ts = 1700000010, .cnt = 300, .min = 2, .max = 2, .sum = 600, .avg = 2, .keys = k2, .counts = n2, .nbins = 1},
    };
    const dds__slice tags[] = {S("a:b"), S("env:prod")};
    dds__sketch_series sk = {.name = S("my.dist"), .host = S("h1"), .tags = tags, .ntags = 2, .points = pts, .npoints = 2};
    sink.sketch(sink.user, &sk);
    dds__sketch_series empty = {.name = S("e")};
    sink.sketch(sink.user, &empty);

    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 1);
    if (list) {
        CHECK_EQ_INT(list->kind, DDS__PK_SKETCHES);
        CHECK_EQ_STR(list->url, "https://api.example.com/api/beta/sketches");
        CHECK_EQ_STR(list->content_type, "application/x-protobuf");
        CHECK_EQ_STR(list->content_encoding, "zstd");
        CHECK_EQ_INT(list->items, 1);
        size_t len;
        uint8_t *raw = unzstd(list, &len);
        dec_sketch d;
        CHECK_EQ_INT(raw ? decode_sketch_payload(raw, len, &d, 1) : -1, 1);
        CHECK_EQ_STR(d.metric, "my.dist");
        CHECK_EQ_STR(d.host, "h1");
        CHECK_EQ_INT(d.ntags, 2);
        CHECK_EQ_STR(d.tags[1], "env:prod");
        CHECK_EQ_INT(d.nds, 2);
        CHECK_EQ_INT(d.ds[0].ts, 1700000000);
        CHECK_EQ_INT(d.ds[0].cnt, 65544);
        CHECK_EQ_DBL(d.ds[0].min, -3, 0);
        CHECK_EQ_DBL(d.ds[0].max, 1e300, 0);
        CHECK_EQ_DBL(d.ds[0].sum, 70000.5, 0);
        CHECK_EQ_DBL(d.ds[0].avg, 1.25, 0);
        CHECK_EQ_INT(d.ds[0].nk, 5);
        CHECK_EQ_INT(d.ds[0].nn, 5);
        for (int i = 0; i < 5 && i < d.ds[0].nk; i++) {
            CHECK_EQ_INT(d.ds[0].k[i], k1[i]);
            CHECK_EQ_INT(d.ds[0].n[i], n1[i]);
        }
        CHECK_EQ_INT(d.ds[1].nk, 1);
        CHECK_EQ_INT(d.ds[1].k[0], 1383);
        CHECK_EQ_INT(d.ds[1].n[0], 300);
        CHECK(d.meta.has_meta && d.meta.product == 10 && d.meta.category == 0);
        free(raw);
    }
    free_list(list);
    dds__dsd_serializer_free(s);
}

/* ---- splitting ---- */

typedef struct split_result {
    int seen[256];      /* times each input index was delivered */
    int payloads;
    size_t max_points, max_raw, max_z;
    bool order_ok, decode_ok, items_ok;
} split_result;

/* Decode every series payload of list; names are "m.<index>". */
static void collect(dds__payload *list, split_result *r) {
    memset(r, 0, sizeof(*r));
    r->order_ok = r->decode_ok = r->items_ok = true;
    int last = -1;
    static dec_series d[256];
    for (dds__payload *p = list; p; p = p->next) {
        r->payloads++;
        if (p->body_len > r->max_z) r->max_z = p->body_len;
        size_t len;
        uint8_t *raw = unzstd(p, &len);
        int n = raw ? decode_series_payload(raw, len, d, 256) : -1;
        free(raw);
        if (n < 0) {
            r->decode_ok = false;
            continue;
        }
        if (len > r->max_raw) r->max_raw = len;
        if ((uint32_t)n != p->items) r->items_ok = false;
        size_t pts = 0;
        for (int i = 0; i < n; i++) {
            int idx = atoi(d[i].metric + 2);
            if (idx < 0 || idx >= 256) continue;
            r->seen[idx]++;
            if (idx <= last) r->order_ok = false;
            last = idx;
            pts += (size_t)d[i].npoints;
        }
        if (pts > r->max_points) r->max_points = pts;
    }
}

TEST(split_at_max_points) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.max_points = 3;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    const size_t npoints[] = {1, 2, 1, 3, 2, 4 /* alone over the limit */, 1, 1, 1, 1, 2};
    const size_t N = sizeof(npoints) / sizeof(npoints[0]);
    for (size_t i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m.%zu", i);
        send_series(&sink, name, npoints[i], NULL, 0);
    }
    dds__payload *list = dds__dsd_serializer_take(s);
    split_result r;
    collect(list, &r);
    CHECK(r.decode_ok && r.items_ok && r.order_ok);
    CHECK(r.max_points <= 3);
    CHECK(r.payloads >= 6);  /* 18 points kept, at most 3 a payload */
    for (size_t i = 0; i < N; i++) CHECK_EQ_INT(r.seen[i], i == 5 ? 0 : 1);
    CHECK_EQ_INT(dds__counter_get(&ctr.items_too_large), 1);
    free_list(list);
    dds__dsd_serializer_free(s);
}

TEST(split_at_max_uncompressed) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.max_uncompressed = 300;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    const dds__slice tags[] = {S("service:checkout-api"), S("env:production"), S("version:1.2.3")};
    char big[400];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    const dds__slice big_tags[] = {S(big)};
    const size_t N = 50;
    for (size_t i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m.%zu", i);
        if (i == 7) send_series(&sink, name, 1, big_tags, 1);  /* alone over 300 bytes */
        else send_series(&sink, name, 1 + i % 3, tags, 3);
    }
    dds__payload *list = dds__dsd_serializer_take(s);
    split_result r;
    collect(list, &r);
    CHECK(r.decode_ok && r.items_ok && r.order_ok);
    CHECK(r.max_raw <= 300);
    CHECK(r.payloads > 1);
    for (size_t i = 0; i < N; i++) CHECK_EQ_INT(r.seen[i], i == 7 ? 0 : 1);
    CHECK_EQ_INT(dds__counter_get(&ctr.items_too_large), 1);
    free_list(list);
    dds__dsd_serializer_free(s);
}

TEST(split_at_max_compressed) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.max_compressed = 200;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    /* Random tags barely compress, so the compressed limit is the one that bites. */
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint32_t x = 88172645u;
    const size_t N = 40;
    for (size_t i = 0; i < N; i++) {
        char tag[1024];
        size_t tl = i == 13 ? 600 : 40;  /* 13: compresses to over 200 bytes even alone */
        for (size_t j = 0; j < tl; j++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            tag[j] = alphabet[x % 62];
        }
        tag[tl] = 0;
        const dds__slice tags[] = {S(tag)};
        char name[16];
        snprintf(name, sizeof(name), "m.%zu", i);
        send_series(&sink, name, 1, tags, 1);
    }
    dds__payload *list = dds__dsd_serializer_take(s);
    split_result r;
    collect(list, &r);
    CHECK(r.decode_ok && r.items_ok && r.order_ok);
    CHECK(r.max_z <= 200);
    CHECK(r.payloads > 2);
    for (size_t i = 0; i < N; i++) CHECK_EQ_INT(r.seen[i], i == 13 ? 0 : 1);
    CHECK_EQ_INT(dds__counter_get(&ctr.items_too_large), 1);
    free_list(list);
    dds__dsd_serializer_free(s);
}

TEST(default_limits_keep_many_series_in_one_payload) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    const dds__slice tags[] = {S("env:prod")};
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m.%d", i);
        send_series(&sink, name, 2, tags, 1);
    }
    dds__payload *list = dds__dsd_serializer_take(s);
    split_result r;
    collect(list, &r);
    CHECK_EQ_INT(r.payloads, 1);
    CHECK(r.decode_ok && r.items_ok && r.order_ok);
    for (int i = 0; i < 200; i++) CHECK_EQ_INT(r.seen[i], 1);
    free_list(list);
    dds__dsd_serializer_free(s);
}

/* ---- service checks and events ---- */

TEST(service_checks_json) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    const dds__slice base[] = {S("env:prod")};
    cfg.base_tags = base;
    cfg.n_base_tags = 1;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    /* the check's slices point into a buffer that is overwritten right after the add */
    char packet[256];
    strcpy(packet, "my.check|a:b,,host:taghost|all \"good\"|h1");
    dds__service_check sc = {.name = {packet, 8}, .status = 2, .timestamp = 0,
                             .tags = {packet + 9, 17}, .message = {packet + 27, 10}};
    CHECK_EQ_INT(dds__dsd_serializer_add_service_check(s, &sc, 1700000123), 0);
    dds__service_check sc2 = {.name = {packet, 8}, .status = 0, .timestamp = 1600000000,
                              .hostname = {packet + 38, 2}};
    CHECK_EQ_INT(dds__dsd_serializer_add_service_check(s, &sc2, 1700000123), 0);
    memset(packet, '#', sizeof(packet));

    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 1);
    if (list) {
        CHECK_EQ_INT(list->kind, DDS__PK_SERVICE_CHECKS);
        CHECK_EQ_STR(list->url, "https://api.example.com/api/v1/check_run");
        CHECK_EQ_STR(list->content_type, "application/json");
        CHECK(list->content_encoding == NULL);
        CHECK_EQ_INT(list->items, 2);
        CHECK(json_ok(list));
        CHECK(list->body_len && list->body[0] == '[' && list->body[list->body_len - 1] == ']');
        CHECK(has(list, "{\"check\":\"my.check\",\"timestamp\":1700000123,\"status\":2,"
                        "\"message\":\"all \\\"good\\\"\",\"tags\":[\"a:b\",\"env:prod\"],\"host_name\":\"taghost\"}"));
        CHECK(has(list, "{\"check\":\"my.check\",\"timestamp\":1600000000,\"status\":0,"
                        "\"message\":\"\",\"tags\":[\"env:prod\"],\"host_name\":\"h1\"}"));
        CHECK(!has(list, "#"));
    }
    free_list(list);
    dds__dsd_serializer_free(s);
}

TEST(events_json) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    const dds__slice base[] = {S("env:prod"), S("service:api")};
    cfg.base_tags = base;
    cfg.n_base_tags = 2;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    char packet[256];
    strcpy(packet, "Deploy\\ndone|line1\\nline2 \\x|k1|src|t1,t2");
    dds__event ev = {.title = {packet, 12}, .text = {packet + 13, 15}, .timestamp = 0,
                     .aggregation_key = {packet + 29, 2}, .source_type_name = {packet + 32, 3},
                     .priority = DDS__PRIO_LOW, .alert_type = DDS__ALERT_ERROR, .tags = {packet + 36, 5}};
    CHECK_EQ_INT(dds__dsd_serializer_add_event(s, &ev, 1700000123), 0);
    dds__event ev2 = {.title = {"T", 1}, .text = {packet, 0}, .timestamp = 1600000000,
                      .hostname = {packet + 29, 2}, .alert_type = DDS__ALERT_SUCCESS};
    CHECK_EQ_INT(dds__dsd_serializer_add_event(s, &ev2, 1700000123), 0);
    memset(packet, '#', sizeof(packet));

    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 2);  /* one request per event */
    if (list_len(list) == 2) {
        dds__payload *a = list, *b = list->next;
        for (dds__payload *p = list; p; p = p->next) {
            CHECK_EQ_INT(p->kind, DDS__PK_EVENTS);
            CHECK_EQ_STR(p->url, "https://api.example.com/api/v1/events");
            CHECK_EQ_STR(p->content_type, "application/json");
            CHECK(p->content_encoding == NULL);
            CHECK_EQ_INT(p->items, 1);
            CHECK(json_ok(p));
            CHECK(p->body[0] == '{');
        }
        /* a literal backslash-n became a newline (JSON-escaped as \n); other escapes stay */
        CHECK(has(a, "\"title\":\"Deploy\\ndone\""));
        CHECK(has(a, "\"text\":\"line1\\nline2 \\\\x\""));
        CHECK(has(a, "\"date_happened\":1700000123"));
        CHECK(has(a, "\"priority\":\"low\""));
        CHECK(has(a, "\"alert_type\":\"error\""));
        CHECK(has(a, "\"aggregation_key\":\"k1\""));
        CHECK(has(a, "\"source_type_name\":\"src\""));
        CHECK(has(a, "\"tags\":[\"t1\",\"t2\",\"env:prod\",\"service:api\"]"));
        CHECK(!has(a, "\"host\""));  /* empty optional strings are left out */
        CHECK(has(b, "\"title\":\"T\""));
        CHECK(has(b, "\"text\":\"\""));
        CHECK(has(b, "\"date_happened\":1600000000"));
        CHECK(has(b, "\"priority\":\"normal\""));
        CHECK(has(b, "\"alert_type\":\"success\""));
        CHECK(has(b, "\"host\":\"k1\""));
        CHECK(!has(b, "aggregation_key") && !has(b, "source_type_name"));
    }
    free_list(list);
    dds__dsd_serializer_free(s);
}

TEST(pending_event_bound) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.max_pending_events = 3;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__event ev = {.title = S("t"), .text = S("x")};
    dds__service_check sc = {.name = S("c"), .status = 1};
    CHECK_EQ_INT(dds__dsd_serializer_add_event(s, &ev, 1), 0);
    CHECK_EQ_INT(dds__dsd_serializer_add_service_check(s, &sc, 1), 0);
    CHECK_EQ_INT(dds__dsd_serializer_add_event(s, &ev, 1), 0);
    CHECK_EQ_INT(dds__dsd_serializer_add_event(s, &ev, 1), -1);
    CHECK_EQ_INT(dds__dsd_serializer_add_service_check(s, &sc, 1), -1);
    CHECK_EQ_INT(dds__counter_get(&ctr.events_dropped), 2);
    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 3);  /* one check_run + two events */
    free_list(list);
    /* a take empties the queue: room again */
    CHECK_EQ_INT(dds__dsd_serializer_add_event(s, &ev, 1), 0);
    list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 1);
    free_list(list);
    dds__dsd_serializer_free(s);  /* also frees whatever would still be pending */
}

/* ---- dry run ---- */

static bool one_line(const dds__payload *p) { return memchr(p->body, '\n', p->body_len) == NULL; }

TEST(dry_run_lines) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.dry_run = true;
    cfg.origin_product = 10;  /* not part of the dry-run JSON */
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    const dds__slice tags[] = {S("env:prod")};
    const dds__point pts[] = {{1.5, 100}, {NAN, 110}};
    dds__series se = {.name = S("my.rate"), .host = S("myhost"), .tags = tags, .ntags = 1,
                      .type = DDS__API_RATE, .interval = 10, .points = pts, .npoints = 2};
    sink.series(sink.user, &se);
    const int16_t k[] = {-1409, 0, 1338};
    const uint16_t n[] = {1, 2, 3};
    const dds__sketch_point sp = {.ts = 100, .cnt = 6, .min = -3, .max = 1, .sum = 0.5, .avg = 0.25,
                                  .keys = k, .counts = n, .nbins = 3};
    dds__sketch_series sk = {.name = S("my.dist"), .points = &sp, .npoints = 1};
    sink.sketch(sink.user, &sk);
    dds__service_check sc = {.name = S("c"), .status = 3, .timestamp = 5};
    dds__dsd_serializer_add_service_check(s, &sc, 1);
    dds__event ev = {.title = S("t"), .text = S("x"), .timestamp = 7};
    dds__dsd_serializer_add_event(s, &ev, 1);

    dds__payload *list = dds__dsd_serializer_take(s);
    CHECK_EQ_INT(list_len(list), 4);
    for (dds__payload *p = list; p; p = p->next) {
        CHECK_EQ_STR(p->content_type, "application/json");
        CHECK(p->content_encoding == NULL);
        CHECK(json_ok(p));
        CHECK(one_line(p));
        CHECK_EQ_INT(p->items, 1);
    }
    if (list_len(list) == 4) {
        dds__payload *ps = list, *pk = list->next, *pc = pk->next, *pe = pc->next;
        CHECK_EQ_INT(ps->kind, DDS__PK_SERIES);
        CHECK_EQ_STR(ps->url, "https://api.example.com/api/v2/series");
        CHECK(has(ps, "{\"dry_run\":true,\"endpoint\":\"/api/v2/series\",\"payload\":{\"series\":[{"));
        CHECK(has(ps, "\"metric\":\"my.rate\",\"type\":\"rate\",\"interval\":10,"
                      "\"points\":[{\"timestamp\":100,\"value\":1.5},{\"timestamp\":110,\"value\":null}],"
                      "\"tags\":[\"env:prod\"],\"resources\":[{\"type\":\"host\",\"name\":\"myhost\"}]}"));
        CHECK_EQ_INT(pk->kind, DDS__PK_SKETCHES);
        CHECK(has(pk, "{\"dry_run\":true,\"endpoint\":\"/api/beta/sketches\",\"payload\":{\"sketches\":[{"));
        CHECK(has(pk, "\"dogsketches\":[{\"ts\":100,\"cnt\":6,\"min\":-3,\"max\":1,\"avg\":0.25,\"sum\":0.5,"
                      "\"k\":[-1409,0,1338],\"n\":[1,2,3]}]"));
        CHECK(has(pk, "\"metric\":\"my.dist\",\"host\":\"\",\"tags\":[]"));
        CHECK_EQ_INT(pc->kind, DDS__PK_SERVICE_CHECKS);
        CHECK(has(pc, "{\"dry_run\":true,\"endpoint\":\"/api/v1/check_run\",\"payload\":[{\"check\":\"c\",\"timestamp\":5,\"status\":3"));
        CHECK_EQ_INT(pe->kind, DDS__PK_EVENTS);
        CHECK(has(pe, "{\"dry_run\":true,\"endpoint\":\"/api/v1/events\",\"payload\":{\"title\":\"t\",\"text\":\"x\",\"date_happened\":7"));
    }
    free_list(list);
    dds__dsd_serializer_free(s);
}

/* ---- payload ownership ---- */

static int done_calls, done_status;
static void on_done(void *user, int http_status, const uint8_t *resp, size_t resp_len) {
    (void)resp, (void)resp_len;
    done_calls += *(int *)user;
    done_status = http_status;
}

TEST(payload_ownership) {
    /* NULL url (a failed strdup upstream): the body is still freed (ASan checks the leak) */
    uint8_t *body = malloc(10);
    CHECK(dds__payload_new(DDS__PK_SERIES, NULL, body, 10, "a", NULL, 1) == NULL);
    dds__payload *p = dds__payload_new(DDS__PK_EVENTS, strdup("http://x/"), malloc(3), 3, "application/json", NULL, 1);
    CHECK(p != NULL);
    int one = 1;
    p->on_done = on_done;
    p->done_user = &one;
    p->extra_headers = strdup("X-A: b\n");
    done_status = -1;
    dds__payload_free(p);
    CHECK_EQ_INT(done_calls, 1);
    CHECK_EQ_INT(done_status, 0);
    dds__payload_free(NULL);
    CHECK_EQ_STR(dds__payload_kind_name(DDS__PK_SERIES), "series");
    CHECK_EQ_STR(dds__payload_kind_name(DDS__PK_SKETCHES), "sketches");
    CHECK_EQ_STR(dds__payload_kind_name(DDS__PK_PROXY), "proxy");
}

/* ---- allocation failures ---- */

/* Fail exactly the Nth allocation, for N = 1, 2, ... until a run makes fewer than N: every run
 * must end without a crash, with valid payloads, and with every lost item accounted for.
 * Needs to replace malloc, which ASan/TSan/MSan own: only in builds without them (glibc);
 * -DDDS_TEST_NO_ALLOC_HOOK turns it off for other malloc-replacing tools. */
#include "alloc_hook.h"
#ifdef ALLOC_HOOK

static int oom_run(bool dry_run) {
    dds__dsd_serializer_counters ctr = {0};
    dds__dsd_serializer_config cfg = base_config();
    cfg.dry_run = dry_run;
    cfg.max_points = 4;  /* several payloads */
    const dds__slice base[] = {S("env:prod")};
    cfg.base_tags = base;
    cfg.n_base_tags = 1;
    dds__dsd_serializer *s = dds__dsd_serializer_new(&cfg, &ctr);
    if (!s) return 0;
    dds__agg_sink sink = dds__dsd_serializer_sink(s);
    const dds__slice tags[] = {S("a:b")};
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof(name), "m.%d", i);
        send_series(&sink, name, 2, tags, 1);
    }
    const int16_t k[] = {1, 2};
    const uint16_t n[] = {3, 4};
    const dds__sketch_point sp = {.ts = 1, .cnt = 7, .keys = k, .counts = n, .nbins = 2};
    dds__sketch_series sk = {.name = S("d"), .points = &sp, .npoints = 1};
    sink.sketch(sink.user, &sk);
    dds__service_check sc = {.name = S("c"), .status = 1, .tags = S("x,y")};
    dds__event ev = {.title = S("t\\n"), .text = S("x"), .tags = S("x")};
    int add_failed = 0;
    add_failed += dds__dsd_serializer_add_service_check(s, &sc, 1) != 0;
    add_failed += dds__dsd_serializer_add_event(s, &ev, 1) != 0;
    add_failed += dds__dsd_serializer_add_event(s, &ev, 1) != 0;
    dds__payload *list = dds__dsd_serializer_take(s);
    uint32_t items = 0;
    alloc_paused = true;
    for (dds__payload *p = list; p; p = p->next) {
        items += p->items;
        if (dry_run || p->kind >= DDS__PK_SERVICE_CHECKS) CHECK(json_ok(p));
        if (!dry_run && p->kind == DDS__PK_SERIES) {
            size_t len;
            uint8_t *raw = unzstd(p, &len);
            static dec_series d[8];
            CHECK(raw && decode_series_payload(raw, len, d, 8) == (int)p->items);
            free(raw);
        }
    }
    /* 6 series + 1 sketch + 1 check + 2 events: whatever is missing was counted */
    alloc_paused = false;
    if (items != 10) CHECK(dds__counter_get(&ctr.oom) > 0 || add_failed > 0);
    CHECK_EQ_INT(dds__counter_get(&ctr.items_too_large), 0);
    free_list(list);
    dds__dsd_serializer_free(s);
    return (int)items;
}

static void oom_step(void *dry) { oom_run(*(bool *)dry); }

TEST(allocation_failures) {
    if (test_under_valgrind()) {
        fprintf(stderr, "  skipped under valgrind (it owns the allocator)\n");
        return;
    }
    for (int dry = 0; dry < 2; dry++) {
        bool d = dry;
        CHECK_EQ_INT(oom_run(d), 10);  /* reference run */
        long total = alloc_fail_each(oom_step, &d, 100000, d ? "serializer, dry run" : "serializer");
        if (total == 0) return;  /* malloc is not ours: nothing to inject */
        CHECK(total >= 10);
    }
}
#else
TEST(allocation_failures) {}
#endif

int main(void) {
    RUN(allocation_failures);
    RUN(series_fields);
    RUN(series_without_origin_has_no_metadata);
    RUN(sketch_fields);
    RUN(split_at_max_points);
    RUN(split_at_max_uncompressed);
    RUN(split_at_max_compressed);
    RUN(default_limits_keep_many_series_in_one_payload);
    RUN(service_checks_json);
    RUN(events_json);
    RUN(pending_event_bound);
    RUN(dry_run_lines);
    RUN(payload_ownership);
    return TEST_REPORT();
}
